/* Open objects other than files: dispatch to the kinds, see fdobj.h. */
#include "fdobj.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static const char *const kind_names[] = {
	[ESKY_IMG_OBJ_PIPE] = "pipe",	      [ESKY_IMG_OBJ_EVENTFD] = "eventfd",
	[ESKY_IMG_OBJ_TIMERFD] = "timerfd",   [ESKY_IMG_OBJ_SIGNALFD] = "signalfd",
	[ESKY_IMG_OBJ_MEMFD] = "memfd",	      [ESKY_IMG_OBJ_DELETED] = "deleted file",
	[ESKY_IMG_OBJ_EPOLL] = "epoll",	      [ESKY_IMG_OBJ_UNIX] = "Unix socket",
	[ESKY_IMG_OBJ_UNIX_LISTEN] = "listening Unix socket", [ESKY_IMG_OBJ_INOTIFY] = "inotify",
	[ESKY_IMG_OBJ_SYSV_SHM] = "System V shared memory", [ESKY_IMG_OBJ_FIFO] = "FIFO",
};

const char *esky_fdobj_kind_name(uint32_t kind)
{
	if (kind <= ESKY_IMG_OBJ_LAST && kind_names[kind])
		return kind_names[kind];
	return "unknown object";
}

const char *esky_fdinfo_field(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p;) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			p += klen + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

int esky_fdobj_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out)
{
	const char *l = src->link;

	memset(out, 0, sizeof(*out));
	out->o.id = (uint64_t)src->st->st_ino;
	if (!strncmp(l, "pipe:", 5))
		return esky_fd_pipe_freeze(src, out);
	if (!strcmp(l, "anon_inode:[eventfd]"))
		return esky_fd_eventfd_freeze(src, out);
	if (!strcmp(l, "anon_inode:[timerfd]"))
		return esky_fd_timerfd_freeze(src, out);
	if (!strcmp(l, "anon_inode:[signalfd]"))
		return esky_fd_signalfd_freeze(src, out);
	if (!strcmp(l, "anon_inode:[eventpoll]"))
		return esky_fd_epoll_freeze(src, out);
	if (!strcmp(l, "anon_inode:inotify"))
		return esky_fd_inotify_freeze(src, out);
	if (!strncmp(l, "socket:", 7))
		return esky_fd_unix_freeze(src, out);
	if (S_ISREG(src->st->st_mode) &&
	    (!strncmp(l, "/memfd:", 7) || strstr(l, " (deleted)")))
		return esky_fd_memfd_freeze(src, out);
	return -ENOTSUP;
}

int esky_fdobj_thaw(const struct esky_img_fdobj *o, const char *name, const void *data,
		    int fds[2])
{
	fds[0] = fds[1] = -1;
	switch (o->kind) {
	case ESKY_IMG_OBJ_PIPE:
		return esky_fd_pipe_thaw(o, data, fds);
	case ESKY_IMG_OBJ_EVENTFD:
		return esky_fd_eventfd_thaw(o, fds);
	case ESKY_IMG_OBJ_TIMERFD:
		return esky_fd_timerfd_thaw(o, fds);
	case ESKY_IMG_OBJ_SIGNALFD:
		return esky_fd_signalfd_thaw(o, fds);
	case ESKY_IMG_OBJ_EPOLL:
		return esky_fd_epoll_thaw(o, fds);
	case ESKY_IMG_OBJ_INOTIFY:
		return esky_fd_inotify_thaw(o, data, fds);
	case ESKY_IMG_OBJ_SYSV_SHM:
		return 0; /* made by the agent, in the program's IPC namespace; no fd */
	case ESKY_IMG_OBJ_FIFO:
		return esky_fd_fifo_thaw(o, name, data, fds);
	case ESKY_IMG_OBJ_MEMFD:
	case ESKY_IMG_OBJ_DELETED:
		return esky_fd_memfd_thaw(o, name, data, fds);
	default:
		return esky_error(-EINVAL, "unknown kind of object %u", o->kind);
	}
}

static bool is_unix(uint32_t kind)
{
	return kind == ESKY_IMG_OBJ_UNIX || kind == ESKY_IMG_OBJ_UNIX_LISTEN;
}

int esky_fdobj_thaw_all(const struct esky_fdobj_in *objs, size_t n, int *fds)
{
	int ret = 0;

	for (size_t i = 0; i < 2 * n; i++)
		fds[i] = -1;
	/* Each kind alone, but Unix sockets all together (pairs, connections). */
	for (size_t i = 0; i < n && !ret; i++)
		if (!is_unix(objs[i].o->kind))
			ret = esky_fdobj_thaw(objs[i].o, objs[i].name, objs[i].data, &fds[2 * i]);
	if (!ret)
		ret = esky_fd_unix_thaw_all(objs, n, fds);
	if (ret) {
		for (size_t i = 0; i < 2 * n; i++) {
			if (fds[i] >= 0)
				close(fds[i]);
			fds[i] = -1;
		}
	}
	return ret;
}

void esky_fdobj_thaw_undo(const struct esky_fdobj_in *objs, size_t n, const int *fds)
{
	esky_fd_unix_thaw_undo(objs, n, fds);
}

int esky_fdobj_check(const struct esky_fdobj_in *obj)
{
	return is_unix(obj->o->kind) ? esky_fd_unix_check(obj) : 0;
}

int esky_fdobj_end(const struct esky_img_fdobj *o, unsigned open_flags)
{
	/* A pipe's write end is the fd opened for writing; every other kind has one. */
	return o->kind == ESKY_IMG_OBJ_PIPE && (open_flags & O_ACCMODE) == O_WRONLY;
}
