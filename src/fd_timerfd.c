/*
 * timerfd: clock, time to the next expiry, interval, and expirations not
 * yet read. fdinfo (since 3.17) shows "clockid: N", "ticks: N",
 * "it_value: (S, NS)" (time left, relative) and "it_interval: (S, NS)".
 * The time left is armed again relative to the resume: the timer does not
 * count the time the program was frozen (as the interval timers).
 * Unread expirations come back with TFD_IOC_SET_TICKS
 * (CONFIG_CHECKPOINT_RESTORE).
 */
#include "fdobj.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static int parse_ts(const char *s, uint64_t *ns)
{
	unsigned long long sec, nsec;

	if (!s || sscanf(s, "(%llu, %llu)", &sec, &nsec) != 2)
		return -EINVAL;
	*ns = sec * 1000000000ULL + nsec;
	return 0;
}

int esky_fd_timerfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out)
{
	const char *clk = esky_fdinfo_field(src->fdinfo, "clockid");
	const char *ticks = esky_fdinfo_field(src->fdinfo, "ticks");
	unsigned long long c, t;

	out->o.kind = ESKY_IMG_OBJ_TIMERFD;
	if (!clk || !ticks || sscanf(clk, "%llu", &c) != 1 || sscanf(ticks, "%llu", &t) != 1 ||
	    parse_ts(esky_fdinfo_field(src->fdinfo, "it_value"), &out->o.v[2]) ||
	    parse_ts(esky_fdinfo_field(src->fdinfo, "it_interval"), &out->o.v[3]))
		return esky_error(-EOPNOTSUPP, "fd %d is a timerfd whose state this kernel does not "
				  "show: esky cannot save it", src->fd);
	out->o.v[0] = c;
	out->o.v[1] = t;
	return 0;
}

int esky_fd_timerfd_thaw(const struct esky_img_fdobj *o, int fds[2])
{
	struct itimerspec its = {
		.it_value = { (time_t)(o->v[2] / 1000000000ULL), (long)(o->v[2] % 1000000000ULL) },
		.it_interval = { (time_t)(o->v[3] / 1000000000ULL), (long)(o->v[3] % 1000000000ULL) },
	};
	int fd = timerfd_create((int)o->v[0], TFD_CLOEXEC);

	if (fd < 0)
		return esky_error(-errno, "cannot make a timerfd on clock %" PRIu64 ": %s", o->v[0],
				  strerror(errno));
	if ((o->v[2] && timerfd_settime(fd, 0, &its, NULL) < 0) ||
	    (o->v[1] && ioctl(fd, TFD_IOC_SET_TICKS, &o->v[1]) < 0)) {
		int err = errno;

		close(fd);
		return esky_error(-err, "cannot set a timerfd again: %s", strerror(err));
	}
	fds[0] = fd;
	return 0;
}
