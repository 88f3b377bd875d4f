/*
 * memfds and deleted files: their contents are saved whole (they exist
 * nowhere else). On resume a memfd is made again with its name and seals;
 * a deleted file is created again at the path it had (O_EXCL) and
 * unlinked at once, so that /proc/PID/fd shows "PATH (deleted)" as
 * before; where that path is taken or its directory is gone, a memfd of
 * the same base name holds the contents.
 */
#include "fdobj.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int esky_fd_memfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out)
{
	const char *l = src->link;
	bool memfd = !strncmp(l, "/memfd:", 7);
	const char *end = strstr(l, " (deleted)");
	char path[64];
	char *buf;
	size_t len;
	int fd, ret;

	out->o.kind = memfd ? ESKY_IMG_OBJ_MEMFD : ESKY_IMG_OBJ_DELETED;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)src->pid, src->fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return esky_error(-errno, "fd %d is %s, which esky cannot read: %s", src->fd, l,
				  strerror(errno));
	len = (size_t)src->st->st_size;
	buf = malloc(len ? len : 1);
	ret = buf ? esky_pread_all(fd, buf, len, 0) : -ENOMEM;
	if (!ret && memfd) {
		int seals = fcntl(fd, F_GET_SEALS);

		out->o.v[0] = seals > 0 ? (uint64_t)seals : 0;
	}
	close(fd);
	if (ret) {
		free(buf);
		return esky_error(ret, "fd %d: cannot read %s: %s", src->fd, l, strerror(-ret));
	}
	if (!memfd)
		out->o.v[0] = src->st->st_mode & 07777;
	out->data = buf;
	out->data_len = len;
	/* The name without "/memfd:" and " (deleted)". */
	{
		const char *from = memfd ? l + 7 : l;
		size_t n = end && end > from ? (size_t)(end - from) : strlen(from);

		out->name = strndup(from, n);
		if (!out->name) {
			free(buf);
			out->data = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

static int fill(int fd, const void *data, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = write(fd, (const char *)data + done, len - done);

		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += (size_t)w;
	}
	return 0;
}

int esky_fd_memfd_thaw(const struct esky_img_fdobj *o, const char *name, const void *data,
		       int fds[2])
{
	const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
	int fd = -1, ret;

	if (o->kind == ESKY_IMG_OBJ_DELETED && name[0] == '/') {
		fd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)(o->v[0] & 07777));
		if (fd >= 0)
			unlink(name);
	}
	if (fd < 0)
		fd = memfd_create(base, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return esky_error(-errno, "cannot make %s again: %s", name, strerror(errno));
	ret = fill(fd, data, o->data_len);
	if (!ret && o->kind == ESKY_IMG_OBJ_MEMFD && o->v[0] &&
	    fcntl(fd, F_ADD_SEALS, (int)o->v[0]) < 0)
		ret = -errno;
	if (ret) {
		close(fd);
		return esky_error(ret, "cannot fill %s again: %s", name, strerror(-ret));
	}
	fds[0] = fd;
	return 0;
}
