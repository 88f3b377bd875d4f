/* A character device whose only state is the file position survives: /dev/cpu/0/cpuid (the position selects the cpuid leaf) reads the same leaf after the resume. Skipped where it cannot be opened (not root, no cpuid driver). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>

#include "cap.h"

#define LEAF 0x80000002	/* the first third of the processor brand string */

int main(void)
{
	uint32_t before[4], after[4];
	int fd = open("/dev/cpu/0/cpuid", O_RDONLY);

	if (fd < 0)
		cap_skip("/dev/cpu/0/cpuid: %s", strerror(errno));
	CHECK_INT(pread(fd, before, 16, LEAF), 16);
	CHECK_INT(lseek(fd, LEAF, SEEK_SET), LEAF);
	printf("position set\n");

	cap_sync();

	CHECK_INT(lseek(fd, 0, SEEK_CUR), LEAF);
	CHECK_INT(read(fd, after, 16), 16);
	CHECK_MEM(after, before, 16);
	printf("same leaf read: ok\n");
	return 0;
}
