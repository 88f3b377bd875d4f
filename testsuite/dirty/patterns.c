/*
 * Writes memory in the patterns dirty-page tracking must not miss, one
 * step at a time, and prints a hash of all it holds at each step (in
 * report(), where esky-shell snapshots it): single pages, page edges, a
 * huge range, mprotect'ed and mremap'ed regions, memory unmapped and
 * mapped again, discarded pages (MADV_DONTNEED), pages the kernel writes
 * (read() into a buffer), the heap and the stack. Deterministic: the same
 * lines in every run, and after every rewind.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096UL
#define STEPS 50

static uint8_t *scatter, *edges, *huge, *prot, *moving, *remapped, *readbuf, *discard;
static size_t moving_len = 16 * PG;
static uint8_t *heap;
static uint32_t rng = 12345;

static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* FNV-1a on 8-byte words (every length here is a multiple of 8). */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < n / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ULL;
	return h;
}

static void *map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(99);
	}
	return p;
}

/* Where esky-shell snapshots: the hash is computed after, from what memory holds. */
static __attribute__((noinline)) void report(int step, const uint8_t *stack)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = fnv(h, scatter, 256 * PG);
	h = fnv(h, edges, 8 * PG);
	h = fnv(h, huge, 256 * PG);
	h = fnv(h, prot, 4 * PG);
	h = fnv(h, moving, moving_len);
	h = fnv(h, remapped, 8 * PG);
	h = fnv(h, readbuf, 3 * PG);
	h = fnv(h, discard, 16 * PG);
	h = fnv(h, heap, 64 * 1024);
	h = fnv(h, stack, 3 * PG);
	h ^= rng;
	printf("step %2d: %016llx\n", step, (unsigned long long)h);
}

int main(void)
{
	uint8_t stack[3 * PG];
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = open("patterns.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("patterns.dat");
		return 99;
	}
	for (int i = 0; i < 64; i++) {
		uint8_t b[PG];

		for (size_t k = 0; k < PG; k++)
			b[k] = (uint8_t)(i * 31 + k);
		if (write(fd, b, PG) != (ssize_t)PG)
			return 99;
	}
	scatter = map(256 * PG);
	edges = map(8 * PG);
	huge = map(256 * PG);
	prot = map(4 * PG);
	moving = map(moving_len);
	remapped = map(8 * PG);
	readbuf = map(3 * PG);
	discard = map(16 * PG);
	heap = malloc(64 * 1024);
	memset(heap, 0, 64 * 1024);
	memset(stack, 0, sizeof(stack));
	memset(discard, 0x5a, 16 * PG);

	for (int step = 0; step < STEPS; step++) {
		switch (step % 9) {
		case 0: /* single bytes in random pages */
			for (int k = 0; k < 20; k++)
				scatter[(next() % 256) * PG + next() % PG] = (uint8_t)next();
			break;
		case 1: /* across page edges */
			for (int k = 1; k < 8; k++)
				memset(edges + k * PG - 3, step + k, 6);
			break;
		case 2: /* a huge range at once */
			memset(huge, step, 256 * PG);
			break;
		case 3: /* written, made read-only, writable again */
			prot[step] = (uint8_t)step;
			mprotect(prot, 4 * PG, PROT_READ);
			mprotect(prot + PG, PG, PROT_READ | PROT_WRITE);
			prot[PG + step] = (uint8_t)~step;
			mprotect(prot, 4 * PG, PROT_READ | PROT_WRITE);
			prot[3 * PG + step] = 7;
			break;
		case 4: { /* moved and grown by mremap, the new part written */
			uint8_t *m = mremap(moving, moving_len, moving_len + 4 * PG, MREMAP_MAYMOVE);

			if (m == MAP_FAILED)
				return 99;
			moving = m;
			memset(moving + moving_len, step, 4 * PG);
			moving_len += 4 * PG;
			moving[next() % moving_len] = (uint8_t)step;
			break;
		}
		case 5: /* unmapped and mapped again at the same place */
			munmap(remapped, 8 * PG);
			if (mmap(remapped, 8 * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
				return 99;
			remapped[step * 13] = (uint8_t)step;
			break;
		case 6: /* written by the kernel: read() into a buffer across pages */
			if (pread(fd, readbuf + 100 + step, 2 * PG, (off_t)(step * PG)) != (ssize_t)(2 * PG))
				return 99;
			break;
		case 7: /* discarded: zero again */
			madvise(discard + (step % 4) * 4 * PG, 2 * PG, MADV_DONTNEED);
			discard[(step % 16) * PG] = (uint8_t)step;
			break;
		case 8: /* heap and stack */
			heap[next() % (64 * 1024)] = (uint8_t)step;
			stack[next() % sizeof(stack)] = (uint8_t)step;
			break;
		}
		report(step, stack);
	}
	close(fd);
	printf("done\n");
	return 0;
}
