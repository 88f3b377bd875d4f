/* A checkpoint taken in a read on a terminal (run with --pty): the resumed program reads the next line from the terminal of the esky that resumed it, and its stdin is still a terminal with working termios. */
#define _GNU_SOURCE
#include <termios.h>

#include "cap.h"

int main(void)
{
	struct termios tio;

	if (!isatty(0))
		cap_skip("stdin is not a terminal (run with --pty)");
	CHECK_SYS(tcgetattr(0, &tio));
	printf("terminal: canonical %d\n", !!(tio.c_lflag & ICANON));

	cap_sync();

	CHECK_INT(isatty(0), 1);
	CHECK_SYS(tcgetattr(0, &tio));
	printf("terminal: canonical %d\n", !!(tio.c_lflag & ICANON));
	/* A second line, read after the resume. */
	cap_sync();
	printf("second line read\n");
	return 0;
}
