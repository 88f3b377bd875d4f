/* Descriptors that share one open file (dup, dup2, F_DUPFD_CLOEXEC) still share it after the resume: one offset and one set of status flags, each with its own close-on-exec flag. */
#define _GNU_SOURCE
#include <fcntl.h>

#include "cap.h"

int main(void)
{
	int a, b, c, d;
	char buf[16];

	a = open("shared-offset.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK_SYS(a);
	CHECK_INT(write(a, "0123456789abcdef", 16), 16);
	CHECK_INT(lseek(a, 2, SEEK_SET), 2);
	b = dup(a);
	CHECK_SYS(b);
	c = dup2(a, 50);
	CHECK_INT(c, 50);
	d = fcntl(a, F_DUPFD_CLOEXEC, 60);
	CHECK_INT(d, 60);
	printf("four descriptors, one file\n");

	cap_sync();

	CHECK_INT(lseek(a, 0, SEEK_CUR), 2);
	CHECK_INT(read(b, buf, 3), 3);		/* moves the offset of all */
	CHECK_MEM(buf, "234", 3);
	CHECK_INT(lseek(a, 0, SEEK_CUR), 5);
	CHECK_INT(lseek(c, 0, SEEK_CUR), 5);
	CHECK_INT(read(d, buf, 2), 2);
	CHECK_MEM(buf, "56", 2);
	CHECK_INT(lseek(b, 0, SEEK_CUR), 7);
	printf("one offset: ok\n");

	/* Status flags belong to the open file: set on one, seen on all. */
	CHECK_SYS(fcntl(c, F_SETFL, O_APPEND));
	CHECK_INT(fcntl(a, F_GETFL) & O_APPEND, O_APPEND);
	CHECK_INT(fcntl(d, F_GETFL) & O_APPEND, O_APPEND);
	CHECK_INT(write(b, "X", 1), 1);
	CHECK_INT(lseek(a, 0, SEEK_CUR), 17);
	printf("one set of status flags: ok\n");

	/* Descriptor flags are each descriptor's own. */
	CHECK_INT(fcntl(a, F_GETFD), 0);
	CHECK_INT(fcntl(b, F_GETFD), 0);
	CHECK_INT(fcntl(c, F_GETFD), 0);
	CHECK_INT(fcntl(d, F_GETFD), FD_CLOEXEC);
	printf("close-on-exec flags: ok\n");
	return 0;
}
