/*
 * soak: a counter whose state a checkpoint or a rewind must bring back
 * exactly, for the long runs of soak-test.sh (issue 12).
 *
 *   soak [-g DIR] N
 *
 * Step i (1..N) first checks that its 1 MiB heap holds what steps 1..i-1
 * left there (step j writes page j % 256 with a pattern of j), then writes
 * page i % 256, adds to a running total, prints "step i total T" and
 * calls step_done() (where esky-shell stops: break step_done). With -g,
 * step i waits until the file DIR/go.i exists (polled every millisecond
 * with access(), which holds no fd): a harness checkpoints the program
 * between steps, at a state it knows. The global counter is i after
 * step i (print counter). A damaged heap prints "step i: memory BAD at
 * page P" and exits 1.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGES 256
#define PAGE 4096

volatile unsigned long counter;
static uint64_t total;
static uint64_t *heap;

/* The pattern step j leaves in page p (j 0: the initial one). */
static uint64_t word(unsigned long j, size_t p, size_t w)
{
	return (j * 0x9e3779b97f4a7c15ULL) ^ (p << 32) ^ w;
}

/* The step that last wrote page p before step i, or 0. */
static unsigned long last_writer(unsigned long i, size_t p)
{
	unsigned long j;

	if (i <= 1)
		return 0;
	j = (i - 1) - ((i - 1) % PAGES) + p;
	if (j > i - 1)
		j -= PAGES;
	return j >= 1 && j <= i - 1 ? j : 0;
}

/* Where esky-shell stops: the step is printed and the state complete. */
void step_done(unsigned long i);
void __attribute__((noinline)) step_done(unsigned long i)
{
	__asm__ volatile("" : : "r"(i) : "memory");
}

static void wait_go(const char *dir, unsigned long i)
{
	char path[4096];
	struct timespec ms = { 0, 1000000 };

	snprintf(path, sizeof(path), "%s/go.%lu", dir, i);
	while (access(path, F_OK) != 0)
		nanosleep(&ms, NULL);
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	unsigned long n, i;

	if (argc == 4 && !strcmp(argv[1], "-g")) {
		dir = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: soak [-g DIR] N\n");
		return 2;
	}
	n = strtoul(argv[1], NULL, 10);
	setvbuf(stdout, NULL, _IOLBF, 0);
	heap = malloc(PAGES * PAGE);
	if (!heap)
		return 99;
	for (size_t p = 0; p < PAGES; p++)
		for (size_t w = 0; w < PAGE / 8; w++)
			heap[p * PAGE / 8 + w] = word(0, p, w);
	for (i = 1; i <= n; i++) {
		size_t q = i % PAGES;

		if (dir)
			wait_go(dir, i);
		for (size_t p = 0; p < PAGES; p++) {
			unsigned long j = last_writer(i, p);

			for (size_t w = 0; w < PAGE / 8; w++)
				if (heap[p * PAGE / 8 + w] != word(j, p, w)) {
					printf("step %lu: memory BAD at page %zu\n", i, p);
					return 1;
				}
		}
		for (size_t w = 0; w < PAGE / 8; w++)
			heap[q * PAGE / 8 + w] = word(i, q, w);
		total = total * 31 + i * i;
		counter = i;
		printf("step %lu total %llu\n", i, (unsigned long long)total);
		step_done(i);
	}
	return 0;
}
