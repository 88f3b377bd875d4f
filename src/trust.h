/*
 * What esky accepts from other users (doc/security.md): checkpoint files
 * and stores must belong to the user who runs esky, a process to freeze
 * must run with that user's credentials and no others (no setuid or
 * setgid program, no mixed real/effective/saved ids, no capabilities it
 * was not born with), and an image is resumed only by the user it was
 * taken as. Root may accept what belongs to another user with --force
 * (ESKY_TRUST_FORCE); nothing accepts a privileged process.
 *
 * "The user" is the real uid and gid of esky (esky refuses to run set-id:
 * esky_trust_self). Files are judged by the owner of what was opened
 * (fstat of the fd: a symbolic link counts as the file it names), paths
 * by stat before they are read.
 *
 * Every check returns 0, or -EPERM with one esky_error() line naming the
 * object, its owner and what the user can do. No ptrace here: files and
 * /proc only.
 */
#ifndef ESKY_TRUST_H
#define ESKY_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct esky_image;

/* Root accepts (with a warning) what belongs to another user. */
#define ESKY_TRUST_FORCE 0x1u
/* With FORCE: no warning (the caller said it once for the whole store). */
#define ESKY_TRUST_QUIET 0x2u

/* esky itself must not run set-id: real, effective and saved ids equal. */
int esky_trust_self(void);

/*
 * The file at path, if it is a regular file (symbolic links followed),
 * belongs to the user. A missing or special file passes: its opener says
 * what is wrong with it. Called before the file is read, so that another
 * user's checkpoint is refused before a byte of it is parsed.
 */
int esky_trust_path(const char *path, unsigned flags);

/* The open file fd (name for messages) belongs to the user. */
int esky_trust_fd(int fd, const char *name, unsigned flags);

/* Every image of a chain (esky_image_open_chain) belongs to the user. */
int esky_trust_chain(struct esky_image *const *chain, size_t n, unsigned flags);

/*
 * The image (every process of a tree file) was taken as the user who
 * runs esky now (uid and gid): resuming it as another user is refused,
 * root with FORCE resumes it anyway (as root).
 */
int esky_trust_image_creds(const struct esky_image *img, unsigned flags);

/*
 * A process to freeze, with its threads and descendants: each runs the
 * user's credentials (uid and gid, real, effective, saved and fs all the
 * same and the user's), no setuid or setgid program, and no capability
 * when the user is not root. FORCE lets root freeze another user's
 * process whose ids agree; a set-id program or mixed ids are refused
 * always. Reads /proc only; the process is not stopped or touched.
 */
int esky_trust_process(pid_t pid, unsigned flags);

/*
 * A directory esky writes into (a folder of stores, a --chain or snap
 * directory) belongs to the user; symbolic links followed. Missing passes.
 */
int esky_trust_dir(const char *dir, unsigned flags);

/*
 * A snapshot store: the directory (symbolic links followed), its tree and
 * lock files and every snapshot image in it belong to the user. A missing
 * directory passes (it will be made, 0700).
 */
int esky_trust_store_dir(const char *dir, unsigned flags);

/*
 * The chain of a store's snapshot (esky_image_open_chain of snap-N.img):
 * each image names its parent by a plain snap-M.img, never a path that
 * leads out of the store. -EPERM with esky_error() otherwise.
 */
int esky_trust_store_chain(struct esky_image *const *chain, size_t n);

/*
 * Whether a snapshot file name read from a store is one the store itself
 * gives (snap-N.img, N from 1 to 10^9, no other character): a name that
 * could leave the store directory is never one.
 */
bool esky_trust_snap_name(const char *name);

#endif
