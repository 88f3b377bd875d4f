/*
 * Open objects other than files: pipes, eventfd, timerfd, signalfd, epoll,
 * inotify, memfd and deleted files, Unix sockets. Each kind lives in its own file
 * (fd_pipe.c, fd_eventfd.c, ...) with its freeze and its thaw side by
 * side; this is their common interface. The records are in image_format.h
 * (struct esky_img_fdobj, ESKY_IMG_OBJ_*).
 *
 * Freeze reads the object through /proc (the process is stopped): its
 * fdinfo, or a new open file of it (/proc/PID/fd/N) that esky reads without
 * disturbing the program (tee(2) copies a pipe's data without consuming it).
 * Thaw makes the object again in the monitor; its fds are passed to the
 * restore agent, which puts them at the program's numbers.
 */
#ifndef ESKY_FDOBJ_H
#define ESKY_FDOBJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "image_format.h"

/* One fd of the stopped program, as dump found it. */
struct esky_fdobj_src {
	pid_t pid;
	int fd;
	const char *link;     /* readlink of /proc/PID/fd/FD */
	const char *fdinfo;   /* the text of /proc/PID/fdinfo/FD */
	const struct stat *st; /* stat of /proc/PID/fd/FD (the object) */
	unsigned flags;       /* open flags from fdinfo */
};

/* What freezing an object gives: its record and its bytes (malloc'd or NULL). */
struct esky_fdobj_frozen {
	struct esky_img_fdobj o;
	char *name;           /* for o.name, malloc'd, or NULL */
	void *data;
	size_t data_len;
};

/*
 * Freeze the object behind one fd. -ENOTSUP if esky has no kind for it
 * (the caller refuses it with its own message); 0, or -errno with
 * esky_error() naming the fd and the cause.
 */
int esky_fdobj_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);

/*
 * Make the object again. Kinds with one end give it in fds[0]; a pipe
 * gives its read end in fds[0] and its write end in fds[1]. Other entries
 * are -1. The fds are the monitor's (close-on-exec set): the caller passes
 * them on. name is the object's name string. 0 or -errno with esky_error().
 */
int esky_fdobj_thaw(const struct esky_img_fdobj *o, const char *name, const void *data,
		    int fds[2]);

/* One object of an image, for esky_fdobj_thaw_all. */
struct esky_fdobj_in {
	const struct esky_img_fdobj *o;
	const char *name;     /* its name string ("" if none) */
	const void *data;     /* its bytes in BLOBS */
};

/*
 * Make every object of an image again, in one call: objects made together
 * (the two ends of a Unix socket pair, a connection and the listening
 * socket it goes through) see each other. objs[i] gives its fds in
 * fds[2 * i] and fds[2 * i + 1], as esky_fdobj_thaw. On failure every fd
 * made is closed and -1 again, names bound undone, and esky_error() names
 * the object: 0 or -errno.
 */
int esky_fdobj_thaw_all(const struct esky_fdobj_in *objs, size_t n, int *fds);

/*
 * Undo what esky_fdobj_thaw_all did outside its fds when the resume fails
 * after it: the socket files it bound (removed if still theirs). The fds
 * are still open; the caller closes them after.
 */
void esky_fdobj_thaw_undo(const struct esky_fdobj_in *objs, size_t n, const int *fds);

/*
 * What can be checked before any process exists: a name a socket is bound
 * to again must be free (no file in the way that is not a stale socket, no
 * live socket there). 0 or -errno with esky_error().
 */
int esky_fdobj_check(const struct esky_fdobj_in *obj);

/* Which end of the object an fd with these open flags is (0 or 1). */
int esky_fdobj_end(const struct esky_img_fdobj *o, unsigned open_flags);

/* The kind's name, for messages and esky info ("pipe", "eventfd", ...). */
const char *esky_fdobj_kind_name(uint32_t kind);

/* ---- the kinds (one file each) ---- */
int esky_fd_pipe_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_pipe_thaw(const struct esky_img_fdobj *o, const void *data, int fds[2]);
int esky_fd_fifo_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_fifo_thaw(const struct esky_img_fdobj *o, const char *name, const void *data,
		      int fds[2]);
int esky_fd_eventfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_eventfd_thaw(const struct esky_img_fdobj *o, int fds[2]);
int esky_fd_timerfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_timerfd_thaw(const struct esky_img_fdobj *o, int fds[2]);
int esky_fd_signalfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_signalfd_thaw(const struct esky_img_fdobj *o, int fds[2]);
int esky_fd_epoll_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_epoll_thaw(const struct esky_img_fdobj *o, int fds[2]);
int esky_fd_inotify_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_inotify_thaw(const struct esky_img_fdobj *o, const void *data, int fds[2]);
int esky_fd_memfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_memfd_thaw(const struct esky_img_fdobj *o, const char *name, const void *data,
		       int fds[2]);

/*
 * Unix sockets (fd_unix.c): freeze one socket (any other family is refused
 * there, named); check one against its peer among the program's objects
 * (peer NULL: not one of them); thaw all of an image's sockets together
 * (objs: all the image's objects, other kinds are skipped).
 */
int esky_fd_unix_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_unix_check_peer(const struct esky_fdobj_frozen *fz, int fd,
			    const struct esky_fdobj_frozen *peer);
int esky_fd_unix_thaw_all(const struct esky_fdobj_in *objs, size_t n, int *fds);
void esky_fd_unix_thaw_undo(const struct esky_fdobj_in *objs, size_t n, const int *fds);
int esky_fd_unix_check(const struct esky_fdobj_in *obj);

/* A "key: value" line of an fdinfo text: the value's start, or NULL. */
const char *esky_fdinfo_field(const char *text, const char *key);

#endif
