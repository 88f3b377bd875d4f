/*
 * epoll: its registrations, from fdinfo lines
 * "tfd: %8d events: %8x data: %16llx pos:%lli ino:%lx sdev:%x". Each is
 * added again on resume (epoll_ctl ADD) by the restore agent once every
 * fd is at its number, so that the registration's key (open file, fd
 * number) is the program's. A registration whose fd the program closed
 * (the key's number no longer names that file) is refused by dump.
 */
#include "fdobj.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int esky_fd_epoll_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out)
{
	struct esky_img_epoll_reg *regs = NULL;
	size_t n = 0;

	out->o.kind = ESKY_IMG_OBJ_EPOLL;
	for (const char *p = strstr(src->fdinfo, "tfd:"); p; p = strstr(p + 4, "tfd:")) {
		int tfd;
		unsigned events;
		unsigned long long data;
		struct esky_img_epoll_reg *nr;

		if (sscanf(p, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3) {
			free(regs);
			return esky_error(-EOPNOTSUPP, "fd %d is an epoll whose registrations this "
					  "kernel does not show: esky cannot save it", src->fd);
		}
		nr = realloc(regs, (n + 1) * sizeof(*nr));
		if (!nr) {
			free(regs);
			return -ENOMEM;
		}
		regs = nr;
		regs[n++] = (struct esky_img_epoll_reg){ tfd, events, data };
	}
	out->data = regs;
	out->data_len = n * sizeof(*regs);
	return 0;
}

int esky_fd_epoll_thaw(const struct esky_img_fdobj *o, int fds[2])
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		return esky_error(-errno, "cannot make an epoll instance: %s", strerror(errno));
	fds[0] = fd;
	return 0;
}
