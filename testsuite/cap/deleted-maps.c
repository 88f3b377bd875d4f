/* Private mappings of files that exist nowhere else come back with their contents: a deleted file, a memfd, and the program's own executable, deleted while it runs (a program rebuilt under it). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cap.h"

static const char marker[] = "still here after the rebuild";

int main(int argc, char **argv)
{
	char *file, *mf, *ro;
	int fd, m;

	/* First run: copy this program and run the copy, which deletes itself. */
	if (argc < 2) {
		char buf[65536];
		ssize_t n;
		int in = open("/proc/self/exe", O_RDONLY), out;

		CHECK_SYS(in);
		out = open("deleted-maps-copy", O_WRONLY | O_CREAT | O_TRUNC, 0700);
		CHECK_SYS(out);
		while ((n = read(in, buf, sizeof(buf))) > 0)
			CHECK_INT(write(out, buf, (size_t)n), (int)n);
		close(in);
		close(out);
		execl("./deleted-maps-copy", "deleted-maps-copy", "copy", (char *)NULL);
		CHECK_SYS(-1);
	}
	CHECK_SYS(unlink("deleted-maps-copy"));

	fd = open("deleted-map.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(fd);
	CHECK_SYS(ftruncate(fd, 3 * 4096));
	CHECK_INT(pwrite(fd, "file page 1", 11, 4096), 11);
	CHECK_INT(pwrite(fd, "file page 2", 11, 8192), 11);
	file = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ro = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(file != MAP_FAILED && ro != MAP_FAILED);
	memcpy(file, "written privately", 17);
	close(fd);
	CHECK_SYS(unlink("deleted-map.dat"));

	m = memfd_create("cap-mapped", 0);
	CHECK_SYS(m);
	CHECK_SYS(ftruncate(m, 4096));
	CHECK_INT(pwrite(m, "memfd contents", 14, 0), 14);
	mf = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, m, 0);
	CHECK(mf != MAP_FAILED);
	close(m);
	printf("a deleted file, a memfd and a deleted program, mapped\n");

	cap_sync();

	CHECK_MEM(file, "written privately", 17);
	CHECK_MEM(file + 4096, "file page 1", 11);
	CHECK_MEM(ro + 4096, "file page 1", 11);
	CHECK_MEM(ro + 8192, "file page 2", 11);
	CHECK_INT(ro[100], 0);
	CHECK_MEM(mf, "memfd contents", 14);
	printf("deleted file and memfd mappings: ok\n");
	/* The program's own text and data, from a file that is gone. */
	CHECK_STR(marker, "still here after the rebuild");
	printf("deleted program: ok\n");
	memcpy(file + 8192, "more", 4);
	CHECK_MEM(file + 8192, "more page 2", 11);
	return 0;
}
