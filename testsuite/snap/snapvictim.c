/*
 * A program for esky snap's tests: reads lines from stdin and answers
 * each through handle() (the place to snapshot), writes a note to
 * stderr, and exits with the status the input asks for ("exit N"), or
 * the number of lines read. With --wait it says "waiting" after the
 * first line and waits for a signal.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long total;

static void handle(const char *line, long n)
{
	total += (long)strlen(line);
	printf("%ld: %s (total %ld)\n", n, line, total);
}

int main(int argc, char **argv)
{
	int wait_for_signal = argc > 1 && !strcmp(argv[1], "--wait");
	char line[256];
	long n = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "exit ", 5)) {
			fprintf(stderr, "snapvictim: exit %s\n", line + 5);
			return atoi(line + 5);
		}
		handle(line, ++n);
		if (wait_for_signal && n == 1) {
			printf("waiting\n");
			pause();
		}
	}
	fprintf(stderr, "snapvictim: %ld lines\n", n);
	return (int)n;
}
