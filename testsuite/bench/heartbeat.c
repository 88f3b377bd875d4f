/*
 * heartbeat: a benchmark target that holds N MiB of random data and beats
 * every 20 ms, reporting the time between beats, so that a harness can tell
 * how long a checkpointer stopped it and how soon a restore brought it back.
 *
 *   heartbeat [-p MS] [-t MS] [-b] [-x FILE] [-w PAGES | -W PAGES] [MIB]
 *
 *   MIB      memory to hold, filled with xorshift64 data (default 1024)
 *   -p MS    beat period (default 20)
 *   -t MS    report gaps longer than this (default 30; 0: every beat)
 *   -b       also print every beat
 *   -x FILE  restore mode: at each beat, if FILE exists the process was
 *            restored: print "resumed", check the memory against the
 *            generator and exit (0 if it is intact). The harness creates
 *            FILE once the original process is gone and before it starts
 *            the restore.
 *   -w N     at each beat, write N pages of the data back unchanged (the
 *            content stays checkable; each first write after a fork costs a
 *            copy-on-write fault, as it would in a busy program)
 *   -W N     at each beat, change one word in each of N pages (so that a
 *            checkpointer comparing contents sees them changed too); the
 *            data is then no longer the generator's, so not with -x
 *
 * Why a file and not a long gap: a gap cannot tell a restore from a long
 * stop (CRIU's dump --leave-running and DMTCP stop the program for seconds
 * and let it go on), and CRIU restores into a time namespace whose
 * CLOCK_MONOTONIC carries on from the dump, so the monotonic gap of a
 * restored process can be short. One access(2) per beat costs nothing here
 * and holds no fd that a checkpointer would have to save.
 *
 * Output, one line per write(2) to stdout (no stdio buffering, so lines
 * reach a file even if the process is killed right after; open it with
 * O_APPEND so that a restored process, whose fd offset is the one of the
 * checkpoint, adds to it instead of writing over the original's lines):
 *
 *   gap START LEN        a beat LEN ns (CLOCK_MONOTONIC) after the previous
 *                        one, which was at START (CLOCK_REALTIME, ns since
 *                        the epoch)
 *   beat N T             (-b) beat number N at T (CLOCK_REALTIME ns)
 *   resumed T GAP        (-x) first beat after a restore, at T
 *                        (CLOCK_REALTIME ns), GAP ns of CLOCK_REALTIME
 *                        after the last beat before the checkpoint; no
 *                        "gap" line is printed for this beat
 *   memory ok | memory BAD at OFFSET   (-x) the data after the restore
 *
 * "ready" goes to stderr once the memory is filled. Beats use absolute
 * CLOCK_MONOTONIC deadlines: after a stop, the first beat comes as soon as
 * the process runs again, so a gap is S..S+period for a stop of S (and one
 * period for none), and a restored process beats at once (under CRIU's time
 * namespace, within one period).
 *
 * Exit status: 0, or 1 when the memory is damaged after a restore, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SEED 0x9e3779b97f4a7c15ULL /* any non-zero xorshift64 state */
#define NS_PER_MS 1000000LL
#define PAGE 4096

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static int64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Write one whole line to fd 1; a closed or full stdout is not our problem. */
static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	size_t n, done = 0;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	n = (size_t)len < sizeof(buf) ? (size_t)len : sizeof(buf) - 1;
	while (done < n) {
		ssize_t w = write(1, buf + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		done += (size_t)w;
	}
}

static void fill(uint64_t *p, size_t words)
{
	uint64_t s = SEED;

	for (size_t i = 0; i < words; i++)
		p[i] = xorshift64(&s);
}

/* Index of the first word that differs from the generator, or words. */
static size_t check(const uint64_t *p, size_t words)
{
	uint64_t s = SEED;

	for (size_t i = 0; i < words; i++)
		if (p[i] != xorshift64(&s))
			return i;
	return words;
}

static long parse_num(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0) {
		fprintf(stderr, "heartbeat: %s: not a number: '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	long period_ms = 20, gap_ms = 30, dirty = 0, mib = 1024;
	const char *marker = NULL;
	int every = 0, change = 0, c;
	int64_t period, prev, next, prev_real;
	uint64_t *mem, wsel = 1;
	size_t bytes, words, pages;

	while ((c = getopt(argc, argv, "p:t:bx:w:W:h")) != -1) {
		switch (c) {
		case 'p':
			period_ms = parse_num(optarg, "-p");
			break;
		case 't':
			gap_ms = parse_num(optarg, "-t");
			break;
		case 'b':
			every = 1;
			break;
		case 'x':
			marker = optarg;
			break;
		case 'w':
			dirty = parse_num(optarg, "-w");
			break;
		case 'W':
			dirty = parse_num(optarg, "-W");
			change = 1;
			break;
		default:
			fprintf(stderr, "usage: heartbeat [-p MS] [-t MS] [-b] [-x FILE] "
					"[-w PAGES | -W PAGES] [MIB]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind < argc)
		mib = parse_num(argv[optind], "MIB");
	if (change && marker) {
		fprintf(stderr, "heartbeat: -W changes the data that -x checks\n");
		return 2;
	}
	if (period_ms < 1 || mib < 1 || optind + 1 < argc) {
		fprintf(stderr, "heartbeat: want a period of at least 1 ms and at least 1 MiB\n");
		return 2;
	}
	bytes = (size_t)mib << 20;
	words = bytes / sizeof(uint64_t);
	pages = bytes / PAGE;
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "heartbeat: cannot map %ld MiB: %s\n", mib, strerror(errno));
		return 2;
	}
	fill(mem, words);
	fprintf(stderr, "ready\n");

	period = period_ms * NS_PER_MS;
	prev = now_ns(CLOCK_MONOTONIC);
	prev_real = now_ns(CLOCK_REALTIME);
	next = prev + period;
	for (uint64_t n = 1;; n++) {
		struct timespec ts = { .tv_sec = next / 1000000000LL,
				       .tv_nsec = next % 1000000000LL };
		int64_t now, real, gap, real_gap;

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		now = now_ns(CLOCK_MONOTONIC);
		real = now_ns(CLOCK_REALTIME);
		gap = now - prev;
		real_gap = real - prev_real;
		if (marker && access(marker, F_OK) == 0) {
			size_t bad;

			out("resumed %lld %lld\n", (long long)real, (long long)real_gap);
			bad = check(mem, words);
			if (bad == words) {
				out("memory ok\n");
				return 0;
			}
			out("memory BAD at %zu\n", bad * sizeof(uint64_t));
			return 1;
		}
		if (gap > gap_ms * NS_PER_MS || gap < 0)
			out("gap %lld %lld\n", (long long)prev_real, (long long)gap);
		if (every)
			out("beat %llu %lld\n", (unsigned long long)n, (long long)real);
		for (long i = 0; i < dirty; i++) {
			volatile uint64_t *w = mem + (xorshift64(&wsel) % pages) * (PAGE / 8);

			if (change)
				*w += n; /* a new value in the page */
			else
				*w = *w; /* same value: a write fault, the data stays checkable */
		}
		prev = now;
		prev_real = real;
		next += period;
		if (next <= now)
			next = now + period; /* after a stop: no burst of catch-up beats */
	}
}
