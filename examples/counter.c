/*
 * counter: print 1, 2, 3, ... one number a line, with a pause after each.
 *
 *   counter [N [MS]]
 *
 * Stops after N lines (forever when N is 0 or absent); pauses MS
 * milliseconds after each line (200 by default). `counter 30` takes six
 * seconds: long enough to checkpoint it by hand from another terminal.
 * A resumed counter carries on from the number where it was frozen, which
 * is the whole point of the example.
 */
/* nanosleep() under -std=c11 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define DEFAULT_PAUSE_MS 200

static int parse_count(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || end == s || *end != '\0' || s[0] == '-')
		return -1;
	return 0;
}

/* Sleep ms milliseconds, carrying on after a signal interrupts the sleep. */
static void pause_ms(unsigned long ms)
{
	struct timespec left = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_nsec = (long)(ms % 1000) * 1000000L,
	};

	while (nanosleep(&left, &left) != 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	unsigned long n = 0, ms = DEFAULT_PAUSE_MS, i;

	if (argc > 3 || (argc > 1 && parse_count(argv[1], &n) < 0) ||
	    (argc > 2 && parse_count(argv[2], &ms) < 0)) {
		fprintf(stderr, "usage: counter [N [MS]]: print N lines (0: forever), one every MS ms\n");
		return 2;
	}

	/* Each number must reach a pipe at once: scripts wait for lines. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (i = 1; n == 0 || i <= n; i++) {
		printf("%lu\n", i);
		pause_ms(ms);
	}
	return 0;
}
