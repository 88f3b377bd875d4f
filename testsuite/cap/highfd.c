/* An fd numbered above the soft RLIMIT_NOFILE of the esky that resumes the program (the program raised its own limit, as servers do) is restored, and the program's limit with it. Run under prlimit --nofile=256: by CTest. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/resource.h>

#include "cap.h"

#define HIGH_FD 3000

int main(void)
{
	struct rlimit rl, now;
	char buf[8];
	int fd;

	CHECK_SYS(getrlimit(RLIMIT_NOFILE, &rl));
	if (rl.rlim_max <= HIGH_FD) {
		printf("hard RLIMIT_NOFILE %llu is too low for fd %d\n",
		       (unsigned long long)rl.rlim_max, HIGH_FD);
		return 77;
	}
	rl.rlim_cur = HIGH_FD + 1;
	CHECK_SYS(setrlimit(RLIMIT_NOFILE, &rl));
	fd = open("highfd.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK_SYS(fd);
	CHECK_INT(dup2(fd, HIGH_FD), HIGH_FD);
	CHECK_SYS(close(fd));
	CHECK_INT(write(HIGH_FD, "abc", 3), 3);
	printf("fd %d open, soft limit %d\n", HIGH_FD, HIGH_FD + 1);

	cap_sync();

	CHECK_INT(write(HIGH_FD, "def", 3), 3);
	CHECK_INT(pread(HIGH_FD, buf, 6, 0), 6);
	CHECK_MEM(buf, "abcdef", 6);
	CHECK_SYS(getrlimit(RLIMIT_NOFILE, &now));
	printf("fd %d writes at its offset: ok; soft limit %llu\n", HIGH_FD,
	       (unsigned long long)now.rlim_cur);
	return 0;
}
