/* A program that points its stdout at a file of its own (dup2) keeps writing to that file after the resume, at its offset, while a copy of the first stdout still reaches the transcript. */
#define _GNU_SOURCE
#include <fcntl.h>

#include "cap.h"

int main(void)
{
	char buf[32];
	int out, log;

	out = dup(1); /* the transcript from now on */
	CHECK_SYS(out);
	log = open("redirect.log", O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK_SYS(log);
	CHECK_INT(dup2(log, 1), 1);
	CHECK_SYS(close(log));
	CHECK_INT(write(1, "before\n", 7), 7);
	dprintf(out, "stdout points at redirect.log\n");

	cap_sync();

	CHECK_INT(write(1, "after\n", 6), 6);
	CHECK_INT(lseek(1, 0, SEEK_CUR), 13);
	CHECK_INT(pread(1, buf, sizeof(buf), 0), 13);
	CHECK_MEM(buf, "before\nafter\n", 13);
	dprintf(out, "redirect.log holds before and after: ok\n");
	return 0;
}
