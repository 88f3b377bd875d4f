/*
 * Open objects other than files: pipes, eventfd, timerfd, signalfd, epoll,
 * memfd and deleted files. Each kind lives in its own file (fd_pipe.c,
 * fd_eventfd.c, ...) with its freeze and its thaw side by side; this is
 * their common interface. The records are in image_format.h
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

/* Which end of the object an fd with these open flags is (0 or 1). */
int esky_fdobj_end(const struct esky_img_fdobj *o, unsigned open_flags);

/* The kind's name, for messages and esky info ("pipe", "eventfd", ...). */
const char *esky_fdobj_kind_name(uint32_t kind);

/* ---- the kinds (one file each) ---- */
int esky_fd_pipe_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_pipe_thaw(const struct esky_img_fdobj *o, const void *data, int fds[2]);
int esky_fd_eventfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_eventfd_thaw(const struct esky_img_fdobj *o, int fds[2]);
int esky_fd_timerfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_timerfd_thaw(const struct esky_img_fdobj *o, int fds[2]);
int esky_fd_signalfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_signalfd_thaw(const struct esky_img_fdobj *o, int fds[2]);
int esky_fd_epoll_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_epoll_thaw(const struct esky_img_fdobj *o, int fds[2]);
int esky_fd_memfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out);
int esky_fd_memfd_thaw(const struct esky_img_fdobj *o, const char *name, const void *data,
		       int fds[2]);

/* A "key: value" line of an fdinfo text: the value's start, or NULL. */
const char *esky_fdinfo_field(const char *text, const char *key);

#endif
