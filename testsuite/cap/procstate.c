/* Process state survives: the current directory (also when it is not the start directory), the umask, and the personality. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <sys/personality.h>
#include <sys/stat.h>

#include "cap.h"

int main(void)
{
	char cwd[PATH_MAX], now[PATH_MAX];
	struct stat st, st2;
	int pers;

	CHECK_SYS(mkdir("a directory", 0755));
	CHECK_SYS(mkdir("a directory/sub", 0755));
	CHECK_SYS(chdir("a directory/sub"));
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_SYS(stat(".", &st));
	umask(0027);
	pers = personality(0xffffffff);
	CHECK_SYS(pers);
	printf("set up\n");

	cap_sync();

	CHECK(getcwd(now, sizeof(now)) != NULL);
	CHECK_STR(now, cwd);
	CHECK_SYS(stat(".", &st2));
	CHECK_INT(st2.st_ino, st.st_ino);
	CHECK_INT(st2.st_dev, st.st_dev);
	CHECK_INT(umask(0027), 0027);
	{
		int fd = open("created", O_WRONLY | O_CREAT | O_EXCL, 0666);

		CHECK_SYS(fd);
		CHECK_SYS(fstat(fd, &st));
		CHECK_INT(st.st_mode & 0777, 0640);
		close(fd);
	}
	CHECK_SYS(stat("../sub/created", &st));
	CHECK_INT(personality(0xffffffff), pers);
	printf("cwd, umask, personality: ok\n");
	return 0;
}
