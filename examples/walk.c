/*
 * walk: a walker on a small grid, one step at a time.
 *
 * An example to try esky and esky-shell on. It is deterministic: its own
 * PRNG with a fixed seed, no clock in the output, so two runs print the same
 * lines and a resumed run prints what the original would have printed. Each
 * step prints one line; the last line is a summary.
 *
 *   walk [--slow] [--steps N] [--seed S]
 *
 * --slow makes each step take about 50 ms, so that timer snapshots of
 * esky-shell have something to catch.
 *
 * The unit test of the location naming (testsuite/unit/debuginfo_test.c)
 * resolves every line of this file: it needs no change when this file does.
 */
/* nanosleep() under -std=c11 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GRID_W 8
#define GRID_H 6
#define DEFAULT_STEPS 20
#define DEFAULT_SEED 2463534242u /* any non-zero value works for xorshift */
#define SLOW_STEP_NS 50000000L   /* 50 ms */

enum dir { NORTH, EAST, SOUTH, WEST };

static const char dir_names[] = "NESW";
static const int dir_dx[] = { 0, 1, 0, -1 };
static const int dir_dy[] = { -1, 0, 1, 0 };

struct walker {
	int x, y;
	enum dir dir;
	uint32_t rng;       /* xorshift32 state, never 0 */
	unsigned steps;
	long total;         /* sum of the scores of the cells entered */
	unsigned fresh;     /* cells entered for the first time */
	unsigned visits[GRID_H][GRID_W];
};

/* xorshift32 (Marsaglia): small, fast and the same on every machine. */
static uint32_t rng_next(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/*
 * Points for entering (x, y): every cell has a base value from 1 to 10, a
 * fresh cell is worth twice its value, a visited one less each time.
 */
static int score(const struct walker *w, int x, int y)
{
	int base = (x * 7 + y * 13) % 10 + 1;
	unsigned seen = w->visits[y][x];

	if (seen == 0)
		return 2 * base;
	return base / (int)(seen + 1);
}

static int inside(int x, int y)
{
	return x >= 0 && x < GRID_W && y >= 0 && y < GRID_H;
}

/* One step: maybe turn, turn back at a wall, move, and count the points. */
static void step(struct walker *w)
{
	uint32_t r = rng_next(&w->rng);
	int nx, ny;

	switch (r % 4) {
	case 0:
		w->dir = (w->dir + 1) % 4;      /* turn right */
		break;
	case 1:
		w->dir = (w->dir + 3) % 4;      /* turn left */
		break;
	default:
		break;                          /* straight on */
	}

	nx = w->x + dir_dx[w->dir];
	ny = w->y + dir_dy[w->dir];
	if (!inside(nx, ny)) {
		w->dir = (w->dir + 2) % 4;
		nx = w->x + dir_dx[w->dir];
		ny = w->y + dir_dy[w->dir];
	}

	w->x = nx;
	w->y = ny;
	if (w->visits[ny][nx] == 0)
		w->fresh++;
	w->total += score(w, nx, ny);
	w->visits[ny][nx]++;
	w->steps++;
}

/* Sleep ns nanoseconds, carrying on after a signal interrupts the sleep. */
static void nap(long ns)
{
	struct timespec left = { .tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L };

	while (nanosleep(&left, &left) != 0 && errno == EINTR)
		;
}

static int parse_uint(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	if (errno || end == s || *end != '\0' || s[0] == '-')
		return -1;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: walk [--slow] [--steps N] [--seed S]\n");
}

int main(int argc, char **argv)
{
	struct walker w;
	unsigned long steps = DEFAULT_STEPS, seed = DEFAULT_SEED;
	int slow = 0;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--slow") == 0) {
			slow = 1;
		} else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
			if (parse_uint(argv[++i], &steps) < 0)
				goto bad_arg;
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			if (parse_uint(argv[++i], &seed) < 0 || (uint32_t)seed == 0)
				goto bad_arg;
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			goto bad_arg;
		}
	}

	/* One line per step must reach a pipe at once: esky waits for lines. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	memset(&w, 0, sizeof(w));
	w.x = GRID_W / 2;
	w.y = GRID_H / 2;
	w.dir = NORTH;
	w.rng = (uint32_t)seed;
	w.visits[w.y][w.x] = 1;
	w.fresh = 1;

	for (i = 0; i < (int)steps; i++) {
		step(&w);
		printf("step %2u: at (%d,%d) facing %c, score %ld\n", w.steps, w.x,
		       w.y, dir_names[w.dir], w.total);
		if (slow)
			nap(SLOW_STEP_NS);
	}

	printf("done: %u steps, %u of %d cells seen, score %ld\n", w.steps,
	       w.fresh, GRID_W * GRID_H, w.total);
	return 0;

bad_arg:
	fprintf(stderr, "walk: bad argument '%s'\n", argv[i]);
	usage(stderr);
	return 2;
}
