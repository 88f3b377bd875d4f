/*
 * echoio: the program of the redirect session (redirect.esky). Prints its
 * arguments, the variable ESKY_X and its working directory, then copies
 * standard input line by line: "in: LINE" to standard output and
 * "err: LINE" to standard error, each flushed so that 2>&1 keeps them in
 * order; last, how many lines it read.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int lines;

/* One line of standard input (a place for a breakpoint). */
static void got_line(const char *line)
{
	lines++;
	printf("in: %s", line);
	fflush(stdout);
	fprintf(stderr, "err: %s", line);
}

int main(int argc, char **argv)
{
	const char *x = getenv("ESKY_X");
	char buf[4096];

	for (int i = 1; i < argc; i++)
		printf("arg %d: %s\n", i, argv[i]);
	if (x)
		printf("ESKY_X = %s\n", x);
	else
		printf("ESKY_X unset\n");
	if (getcwd(buf, sizeof(buf)))
		printf("cwd: %s\n", buf);
	fflush(stdout);
	while (fgets(buf, sizeof(buf), stdin))
		got_line(buf);
	printf("%d lines\n", lines);
	return 0;
}
