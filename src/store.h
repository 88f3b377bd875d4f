/*
 * The snapshot store of esky-shell: a directory holding one image per
 * snapshot (snap-N.img, incremental images referring to their parent's
 * file by name) and `tree`, the list of snapshots with their parent,
 * cause, location and size. No ptrace, no process: files only.
 *
 * `tree` is text: "esky-store 1", then "current N", "next N", an optional
 * "program PATH ARGS..." line and one line per snapshot, tab-separated. It is rewritten atomically (temporary file + rename) under an
 * flock of the directory's `lock` file, so that two sessions on one store
 * do not lose each other's snapshots.
 */
#ifndef ESKY_STORE_H
#define ESKY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct esky_store;

/* Why a snapshot was taken. */
enum esky_snap_cause {
	ESKY_SNAP_MANUAL = 0,
	ESKY_SNAP_BREAK,
	ESKY_SNAP_TIMER,
};

struct esky_snapinfo {
	int id;
	int parent;            /* 0: none */
	enum esky_snap_cause cause;
	uint64_t run_ns;       /* program run time when taken */
	uint64_t bytes;        /* size of its file */
	uint64_t created_ns;   /* wall clock */
	char *location;        /* "step at walk.c:60" */
	char *note;            /* the user's note, or "" */
};

/*
 * The highest snapshot id: the shell reads numbers up to 10^9, and the
 * next id after it is still an int.
 */
#define ESKY_STORE_MAX_ID 1000000000

/*
 * Open the store at dir, creating it (and the directory, 0700) if create
 * is set. A store of another user (the directory, its tree, lock or any
 * image: trust.h) is refused unless trust has ESKY_TRUST_FORCE and the
 * user is root.
 */
int esky_store_open(const char *dir, bool create, unsigned trust, struct esky_store **out);
/* Create a fresh store in a new directory under base (e.g. ./.esky); base must be the user's. */
int esky_store_create_fresh(const char *base, unsigned trust, struct esky_store **out);
void esky_store_close(struct esky_store *st);

const char *esky_store_dir(const struct esky_store *st);

/* Read the tree file again (another session may have added snapshots). */
int esky_store_reload(struct esky_store *st);

/* The snapshots, sorted by id. Valid until the next call that changes the store. */
const struct esky_snapinfo *esky_store_list(const struct esky_store *st, size_t *n);
const struct esky_snapinfo *esky_store_get(const struct esky_store *st, int id);

/* The snapshot the program last came from, 0 if none. */
int esky_store_current(const struct esky_store *st);
int esky_store_set_current(struct esky_store *st, int id);

/*
 * The program last run on the store, with its arguments (argv[0] is its
 * path), so that a later session given only the store can run it again.
 * NULL if none was recorded.
 */
int esky_store_set_program(struct esky_store *st, char *const *argv);
char *const *esky_store_program(const struct esky_store *st);
/* Reserve the next id; *path (malloc'd) is where its image goes. */
int esky_store_reserve(struct esky_store *st, int *id, char **path);
/*
 * Give back a reserved id that was never used, if no id was reserved
 * after it (then the next snapshot takes it; otherwise it stays a gap).
 */
int esky_store_unreserve(struct esky_store *st, int id);
/* The file name of snapshot id, relative to the store (for parent hints). */
void esky_store_file_name(int id, char *buf, size_t n);
/* The id a snapshot's file name says (snap-N.img, N in 1..ESKY_STORE_MAX_ID), or 0. */
int esky_store_file_id(const char *name);
/* The path of snapshot id's image, malloc'd. */
char *esky_store_path(const struct esky_store *st, int id);

/* Record a written snapshot (its file must exist) and make it current. */
int esky_store_add(struct esky_store *st, const struct esky_snapinfo *si);

/*
 * Delete snapshot id and every snapshot below it (their images refer to
 * its pages). The ids removed are returned in *removed (malloc'd).
 */
int esky_store_forget(struct esky_store *st, int id, int **removed, size_t *n);

const char *esky_snap_cause_name(enum esky_snap_cause c);

/*
 * A store read from text alone: len bytes of a tree file, name naming it
 * in messages. It has no directory: only list, get, current, program,
 * format and close work on it (for the fuzzer and tests). 0, or -EBADMSG
 * with a one-line esky_error() starting with name ("NAME:3: damaged
 * line"), or -ENOMEM. What it promises, as every load of a tree file:
 * ids from 1 to ESKY_STORE_MAX_ID, each once, sorted; the next id above
 * them all and at most ESKY_STORE_MAX_ID + 1; no tab or newline in a
 * string.
 */
int esky_store_parse(const char *text, size_t len, const char *name, struct esky_store **out);

/*
 * The text of st's tree file as it is written: *text malloc'd and
 * NUL-terminated, *len bytes without the NUL. 0 or -ENOMEM.
 */
int esky_store_format(const struct esky_store *st, char **text, size_t *len);

/*
 * Whether the file at path (existing or not) belongs to an esky-shell
 * store: its directory, symbolic links resolved, holds a `tree` that
 * starts with "esky-store 1", and its name is one the store gives its
 * files (snap-N.img, tree, lock, their temporary files). Files only, no
 * lock taken. When true and store_dir is not NULL, *store_dir gets the
 * store's directory as path spells it (malloc'd; NULL if out of memory).
 */
bool esky_store_owns(const char *path, char **store_dir);

#endif
