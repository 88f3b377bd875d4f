/* A pipe with both ends in the program (a self-pipe) comes back with the data in flight, its capacity, and each end's O_NONBLOCK and close-on-exec flags; fds sharing an end still share it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/ioctl.h>

#include "cap.h"

int main(void)
{
	int a[2], b[2], dupped;
	char buf[256];
	int avail = -1;

	CHECK_SYS(pipe2(a, O_NONBLOCK | O_CLOEXEC));
	CHECK_SYS(pipe(b));
	CHECK_INT(fcntl(a[1], F_SETPIPE_SZ, 1 << 17), 1 << 17);
	CHECK_INT(write(a[1], "self-pipe data", 14), 14);
	/* An empty pipe, and one whose reader dups its end. */
	dupped = dup(b[0]);
	CHECK_SYS(dupped);
	printf("two pipes, one with 14 bytes in flight\n");

	cap_sync();

	CHECK_INT(ioctl(a[0], FIONREAD, &avail), 0);
	CHECK_INT(avail, 14);
	CHECK_INT(fcntl(a[1], F_GETPIPE_SZ), 1 << 17);
	CHECK_INT(fcntl(a[0], F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	CHECK_INT(fcntl(a[0], F_GETFD), FD_CLOEXEC);
	CHECK_INT(fcntl(b[0], F_GETFL) & O_NONBLOCK, 0);
	CHECK_INT(fcntl(b[0], F_GETFD), 0);
	CHECK_INT(read(a[0], buf, sizeof(buf)), 14);
	CHECK_MEM(buf, "self-pipe data", 14);
	CHECK_INT(read(a[0], buf, sizeof(buf)), -1);
	CHECK_INT(errno, EAGAIN);
	printf("data in flight: ok\n");
	/* The ends are one pipe again: what goes in one comes out of the other. */
	CHECK_INT(write(b[1], "xyz", 3), 3);
	CHECK_INT(read(dupped, buf, 1), 1);
	CHECK_INT(read(b[0], buf + 1, 2), 2);
	CHECK_MEM(buf, "xyz", 3);
	CHECK_SYS(close(b[1]));
	CHECK_INT(read(b[0], buf, 1), 0);
	printf("ends joined: ok\n");
	return 0;
}
