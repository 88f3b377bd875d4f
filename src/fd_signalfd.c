/* signalfd: its signal mask, shown by fdinfo as "sigmask: %016llx". */
#include "fdobj.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

int esky_fd_signalfd_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out)
{
	const char *mask = esky_fdinfo_field(src->fdinfo, "sigmask");

	if (!mask)
		return esky_error(-EOPNOTSUPP, "fd %d is a signalfd whose mask this kernel does not "
				  "show: esky cannot save it", src->fd);
	out->o.kind = ESKY_IMG_OBJ_SIGNALFD;
	out->o.v[0] = strtoull(mask, NULL, 16);
	return 0;
}

int esky_fd_signalfd_thaw(const struct esky_img_fdobj *o, int fds[2])
{
	/* The raw syscall takes the kernel's 8-byte mask as it was read. */
	uint64_t mask = o->v[0];
	long fd = syscall(SYS_signalfd4, -1, &mask, sizeof(mask), SFD_CLOEXEC);

	if (fd < 0)
		return esky_error(-errno, "cannot make a signalfd: %s", strerror(errno));
	fds[0] = (int)fd;
	return 0;
}
