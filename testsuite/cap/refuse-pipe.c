/* esky refuses to checkpoint a process holding one end of a pipe (the other closed: esky cannot tell it from another process's), says so on one line, writes no file, and the pipe (and the data in it) still works afterwards. */
#define _GNU_SOURCE
#include "cap.h"

int main(void)
{
	int p[2];
	char buf[16];

	CHECK_SYS(pipe(p));
	CHECK_INT(write(p[1], "in the pipe", 11), 11);
	CHECK_SYS(close(p[1]));
	printf("pipe open\n");

	cap_sync();

	CHECK_INT(read(p[0], buf, sizeof(buf)), 11);
	CHECK_MEM(buf, "in the pipe", 11);
	printf("pipe works\n");
	return 0;
}
