/*
 * worker: a benchmark target that computes, and writes pages of its memory
 * as it goes, so that a harness can tell how much slower it runs under a
 * checkpointer than without one: the CPU time a fixed amount of work
 * takes. Time the program stands stopped (a snapshot) is no CPU time of
 * its own; what the checkpointer costs it while it runs (a write-protect
 * fault at the first write to a page after each snapshot, the kernel's
 * work for it) is.
 *
 *   worker [-u UNITS] [-w PAGES] [MIB]
 *
 *   MIB      memory to hold, filled with xorshift64 data (default 1024)
 *   -u N     units of work (default 50000; a unit is ~0.1 ms of arithmetic
 *            here, so ~5 s in all)
 *   -w N     pages written (one word changed in each, spread over the
 *            memory) per 100 units: ~N pages per 10 ms of work (default
 *            25: ~1 MiB per 100 ms, as heartbeat -W 5 at 2 ms beats)
 *
 * Output on stdout at the end: "work UNITS units cpu NS wall NS" (CPU time
 * of the process, CLOCK_PROCESS_CPUTIME_ID; wall time, CLOCK_MONOTONIC).
 * "ready" goes to stderr once the memory is filled.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define SPINS 60000 /* xorshift rounds per unit: ~0.1 ms here */

static uint64_t xorshift64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long parse_num(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0) {
		fprintf(stderr, "worker: %s: not a number: %s\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	long units = 50000, per100 = 25, mib = 1024;
	uint64_t *mem, seed = 88172645463325252ULL, wsel = 1, sink = 0;
	size_t pages, words;
	int64_t cpu0, wall0;
	int c;

	while ((c = getopt(argc, argv, "u:w:h")) != -1) {
		switch (c) {
		case 'u':
			units = parse_num(optarg, "-u");
			break;
		case 'w':
			per100 = parse_num(optarg, "-w");
			break;
		default:
			fprintf(stderr, "usage: worker [-u UNITS] [-w PAGES] [MIB]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind < argc)
		mib = parse_num(argv[optind], "MIB");
	if (mib < 1 || optind + 1 < argc) {
		fprintf(stderr, "worker: want at least 1 MiB\n");
		return 2;
	}
	pages = ((size_t)mib << 20) / PAGE;
	words = ((size_t)mib << 20) / sizeof(uint64_t);
	mem = mmap(NULL, (size_t)mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "worker: cannot map %ld MiB: %s\n", mib, strerror(errno));
		return 2;
	}
	for (size_t i = 0; i < words; i++)
		mem[i] = xorshift64(&seed);
	fprintf(stderr, "ready\n");

	cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	wall0 = now_ns(CLOCK_MONOTONIC);
	for (long u = 0; u < units; u++) {
		for (int k = 0; k < SPINS; k++)
			sink += xorshift64(&seed);
		/* per100 pages per 100 units, spread over the units */
		if ((u * per100) / 100 != ((u + 1) * per100) / 100) {
			volatile uint64_t *w = mem + (xorshift64(&wsel) % pages) * (PAGE / 8);

			*w += (uint64_t)u | 1;
		}
	}
	printf("work %ld units cpu %lld wall %lld (%llu)\n", units,
	       (long long)(now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0),
	       (long long)(now_ns(CLOCK_MONOTONIC) - wall0), (unsigned long long)(sink & 1));
	return 0;
}
