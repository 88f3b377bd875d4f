/* A memfd (name, contents, offset, seals) and a deleted file (contents, offset, shown as "PATH (deleted)") come back; their contents are saved in the checkpoint. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cap.h"

int main(void)
{
	char big[20000], buf[64], link[256];
	ssize_t n;
	int mf, df;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	mf = memfd_create("cap-memfd", MFD_ALLOW_SEALING);
	CHECK_SYS(mf);
	CHECK_INT(write(mf, big, sizeof(big)), (int)sizeof(big));
	CHECK_INT(lseek(mf, 100, SEEK_SET), 100);
	CHECK_SYS(fcntl(mf, F_ADD_SEALS, F_SEAL_SHRINK));
	df = open("deleted.dat", O_RDWR | O_CREAT | O_TRUNC, 0640);
	CHECK_SYS(df);
	CHECK_INT(write(df, "gone but open", 13), 13);
	CHECK_INT(lseek(df, 5, SEEK_SET), 5);
	CHECK_SYS(unlink("deleted.dat"));
	printf("a memfd and a deleted file\n");

	cap_sync();

	n = readlink("/proc/self/fd/3", link, sizeof(link) - 1);
	CHECK_INT(n > 0, 1);
	link[n] = '\0';
	CHECK_STR(link, "/memfd:cap-memfd (deleted)");
	CHECK_INT(lseek(mf, 0, SEEK_CUR), 100);
	CHECK_INT(read(mf, buf, 4), 4);
	CHECK_MEM(buf, "wxyz", 4);
	CHECK_INT(pread(mf, buf, 3, 19999 - 2), 3);
	CHECK_MEM(buf, big + 19997, 3);
	CHECK_INT(fcntl(mf, F_GET_SEALS), F_SEAL_SHRINK);
	CHECK_INT(ftruncate(mf, 10), -1);
	printf("memfd: ok\n");
	n = readlink("/proc/self/fd/4", link, sizeof(link) - 1);
	CHECK_INT(n > 0, 1);
	link[n] = '\0';
	CHECK_INT(strstr(link, "/deleted.dat (deleted)") != NULL, 1);
	CHECK_INT(lseek(df, 0, SEEK_CUR), 5);
	CHECK_INT(read(df, buf, 8), 8);
	CHECK_MEM(buf, "but open", 8);
	CHECK_INT(access("deleted.dat", F_OK), -1);
	printf("deleted file: ok\n");
	return 0;
}
