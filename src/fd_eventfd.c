/*
 * eventfd: its counter and its semaphore mode. fdinfo (since 3.8) shows
 * "eventfd-count: %16llx" (hexadecimal, padded), and since 6.5
 * "eventfd-semaphore: 0|1"; without that line the mode cannot be known
 * and is taken as a plain counter.
 */
#include "fdobj.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int esky_fd_eventfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out)
{
	const char *count = esky_fdinfo_field(src->fdinfo, "eventfd-count");
	const char *sem = esky_fdinfo_field(src->fdinfo, "eventfd-semaphore");

	if (!count)
		return esky_error(-EOPNOTSUPP, "fd %d is an eventfd whose counter this kernel does "
				  "not show: esky cannot save it", src->fd);
	out->o.kind = ESKY_IMG_OBJ_EVENTFD;
	out->o.v[0] = strtoull(count, NULL, 16);
	out->o.v[1] = sem && *sem == '1';
	return 0;
}

int esky_fd_eventfd_thaw(const struct esky_img_fdobj *o, int fds[2])
{
	/* eventfd's initial value is an unsigned int: a larger counter is written after. */
	unsigned init = o->v[0] <= 0xffffffffu ? (unsigned)o->v[0] : 0;
	int fd = eventfd(init, EFD_CLOEXEC | (o->v[1] ? EFD_SEMAPHORE : 0));

	if (fd < 0)
		return esky_error(-errno, "cannot make an eventfd: %s", strerror(errno));
	if (o->v[0] > 0xffffffffu) {
		uint64_t v = o->v[0];

		if (v == UINT64_MAX || write(fd, &v, sizeof(v)) != sizeof(v)) {
			close(fd);
			return esky_error(-EINVAL, "cannot set an eventfd's counter to %llu",
					  (unsigned long long)o->v[0]);
		}
	}
	fds[0] = fd;
	return 0;
}
