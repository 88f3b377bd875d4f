/*
 * Pipes with both ends in the program (a self-pipe, a pipe it has not
 * handed to anyone yet), with the data in flight. Freeze opens the pipe
 * again through /proc/PID/fd/N (a pipe opened by path behaves as a FIFO:
 * O_RDONLY | O_NONBLOCK does not wait for a writer) and copies its data
 * with tee(2), which leaves it in the pipe: the program, if it runs on,
 * reads it as if nothing happened. A pipe with one end outside the
 * program is refused by dump, which sees all the fds.
 */
#include "fdobj.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

int esky_fd_pipe_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out)
{
	char path[64];
	int in = -1, tmp[2] = { -1, -1 }, avail = 0, cap, ret = 0;
	size_t got = 0;
	char *buf = NULL;

	out->o.kind = ESKY_IMG_OBJ_PIPE;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)src->pid, src->fd);
	in = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (in < 0)
		return esky_error(-errno, "fd %d is a pipe esky cannot open again: %s", src->fd,
				  strerror(errno));
	cap = fcntl(in, F_GETPIPE_SZ);
	if (cap < 0 || ioctl(in, FIONREAD, &avail) < 0) {
		ret = esky_error(-errno, "fd %d: cannot read the pipe's size: %s", src->fd,
				 strerror(errno));
		goto out_close;
	}
	out->o.v[0] = (uint64_t)cap;
	if (!avail)
		goto out_close;
	if (pipe2(tmp, O_CLOEXEC | O_NONBLOCK) < 0 || fcntl(tmp[1], F_SETPIPE_SZ, cap) < 0) {
		ret = esky_error(-errno, "fd %d: cannot copy the pipe's data: %s", src->fd,
				 strerror(errno));
		goto out_close;
	}
	buf = malloc((size_t)avail);
	if (!buf) {
		ret = -ENOMEM;
		goto out_close;
	}
	/* tee duplicates what is buffered, from its start, without consuming it. */
	{
		ssize_t t = tee(in, tmp[1], (size_t)avail, SPLICE_F_NONBLOCK);

		if (t != avail || read(tmp[0], buf, (size_t)t) != t) {
			ret = esky_error(t < 0 ? -errno : -EIO, "fd %d: cannot copy the pipe's data: %s",
					 src->fd, t < 0 ? strerror(errno) : "short copy");
			goto out_close;
		}
		got = (size_t)t;
	}
	out->data = buf;
	out->data_len = got;
	buf = NULL;
out_close:
	free(buf);
	if (tmp[0] >= 0) {
		close(tmp[0]);
		close(tmp[1]);
	}
	close(in);
	return ret;
}

int esky_fd_pipe_thaw(const struct esky_img_fdobj *o, const void *data, int fds[2])
{
	size_t done = 0;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return esky_error(-errno, "cannot make a pipe: %s", strerror(errno));
	/* The capacity it had, at least enough for the data (may be refused: then the default). */
	if (o->v[0] && fcntl(fds[1], F_SETPIPE_SZ, (int)o->v[0]) < 0 && o->data_len > 65536) {
		int err = errno;

		close(fds[0]);
		close(fds[1]);
		fds[0] = fds[1] = -1;
		return esky_error(-err, "cannot make a pipe of %llu bytes again: %s",
				  (unsigned long long)o->v[0], strerror(err));
	}
	while (done < o->data_len) {
		ssize_t w = write(fds[1], (const char *)data + done, o->data_len - done);

		if (w <= 0) {
			int err = w < 0 ? errno : EIO;

			close(fds[0]);
			close(fds[1]);
			fds[0] = fds[1] = -1;
			return esky_error(-err, "cannot put a pipe's data back: %s", strerror(err));
		}
		done += (size_t)w;
	}
	return 0;
}

/*
 * A named pipe (FIFO): the same bytes in flight as a pipe's, and its path.
 * The program's fds on it are files reopened by path at resume; this
 * object holds the FIFO open meanwhile (so that their opens do not wait
 * for the other side) with the bytes in it.
 */
int esky_fd_fifo_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out)
{
	int ret = esky_fd_pipe_freeze(src, out);

	if (ret)
		return ret;
	out->o.kind = ESKY_IMG_OBJ_FIFO;
	out->name = strdup(src->link);
	return out->name ? 0 : -ENOMEM;
}

int esky_fd_fifo_thaw(const struct esky_img_fdobj *o, const char *name, const void *data,
		      int fds[2])
{
	struct stat st;
	int hold = open(name, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	size_t done = 0;

	if (hold < 0)
		return esky_error(-errno, "cannot open the FIFO %s again: %s", name, strerror(errno));
	if (fstat(hold, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(hold);
		return esky_error(-ENOTSUP, "%s is no longer a FIFO", name);
	}
	if (o->v[0])
		fcntl(hold, F_SETPIPE_SZ, (int)o->v[0]);
	while (done < o->data_len) {
		ssize_t w = write(hold, (const char *)data + done, o->data_len - done);

		if (w <= 0) {
			int err = w < 0 ? errno : EIO;

			close(hold);
			return esky_error(-err, "cannot put the bytes of the FIFO %s back: %s", name,
					  strerror(err));
		}
		done += (size_t)w;
	}
	fds[0] = hold;
	return 0;
}
