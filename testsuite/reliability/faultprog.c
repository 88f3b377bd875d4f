/*
 * faultprog: the program of faults-test.sh. Holds MIB MiB of checkable
 * data, beats every 20 ms through beat() (a place to break at), and can
 * end itself at a set moment, so that a test can have it die while esky
 * checkpoints it.
 *
 *   faultprog [-x FILE] [-d MS:HOW] MIB
 *
 *   -x FILE    at each beat, if FILE exists: check the data, print
 *              "memory ok" (exit 0) or "memory BAD at OFFSET" (exit 1)
 *   -d MS:HOW  MS ms after "ready" (a real-time timer, which runs on while
 *              the program is stopped), end: HOW is exit (status 3), segv
 *              (a null write: SIGSEGV) or kill (SIGKILL to itself)
 *
 * stdout: "beat N" each beat, one write(2) each. stderr: "ready" once the
 * data is filled. Exit 2 on a usage error.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SEED 0x9e3779b97f4a7c15ULL /* any non-zero xorshift64 state */

static uint64_t *data;
static size_t words;
static const char *how = "exit";

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void say(const char *s)
{
	if (write(STDOUT_FILENO, s, strlen(s)) < 0)
		_exit(1);
}

static void on_alarm(int sig)
{
	(void)sig;
	if (!strcmp(how, "segv"))
		*(volatile int *)0 = 1;
	if (!strcmp(how, "kill"))
		kill(getpid(), SIGKILL);
	_exit(3);
}

static int check(void)
{
	uint64_t s = SEED;
	char line[64];

	for (size_t i = 0; i < words; i++) {
		if (data[i] != xorshift64(&s)) {
			snprintf(line, sizeof(line), "memory BAD at %zu\n", i * 8);
			say(line);
			return 1;
		}
	}
	say("memory ok\n");
	return 0;
}

/* One beat: a function of its own, for breakpoints. */
__attribute__((noinline)) void beat(unsigned long n);
__attribute__((noinline)) void beat(unsigned long n)
{
	char line[32];

	snprintf(line, sizeof(line), "beat %lu\n", n);
	say(line);
}

int main(int argc, char **argv)
{
	const char *marker = NULL;
	long die_ms = -1;
	struct timespec next;
	uint64_t s = SEED;
	unsigned long n = 0;
	int c;

	while ((c = getopt(argc, argv, "x:d:")) != -1) {
		char *colon;

		switch (c) {
		case 'x':
			marker = optarg;
			break;
		case 'd':
			die_ms = strtol(optarg, &colon, 10);
			if (*colon != ':' || die_ms < 0)
				goto usage;
			how = colon + 1;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	words = strtoul(argv[optind], NULL, 10) * (1 << 20) / 8;
	data = mmap(NULL, words * 8 + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (data == MAP_FAILED)
		return 2;
	for (size_t i = 0; i < words; i++)
		data[i] = xorshift64(&s);
	if (die_ms >= 0) {
		struct itimerval it = { .it_value = { die_ms / 1000, (die_ms % 1000) * 1000 } };

		signal(SIGALRM, on_alarm);
		if (die_ms == 0)
			on_alarm(SIGALRM);
		setitimer(ITIMER_REAL, &it, NULL);
	}
	fprintf(stderr, "ready\n");
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		if (marker && access(marker, F_OK) == 0)
			return check();
		beat(++n);
		next.tv_nsec += 20 * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL))
			;
	}
usage:
	fprintf(stderr, "usage: faultprog [-x FILE] [-d MS:exit|segv|kill] MIB\n");
	return 2;
}
