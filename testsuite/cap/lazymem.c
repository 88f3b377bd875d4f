/*
 * Memory that a lazy resume (esky resume --lazy) is still bringing in when
 * the program goes on: right after the sync point, before checking
 * anything, it forks (the child checks its copy), drops part of a region
 * with madvise(MADV_DONTNEED) (zeros then), moves one with mremap (to a
 * free place, and one over another region), unmaps half of another, and has the kernel read from and write into pages not
 * in yet (write(2) and read(2) on a pipe). Then every byte is checked.
 * Without esky, or resumed whole, the same happens and prints the same.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "cap.h"

#define MIB (1UL << 20)

/* Word i of a region of seed: where a page lands does not change what it holds. */
static uint64_t word(uint64_t seed, uint64_t i)
{
	uint64_t x = (seed << 40) ^ (i + 0x9e3779b97f4a7c15ULL);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	return x;
}

static void *region(size_t len, uint64_t seed)
{
	uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		cap_fail(__FILE__, __LINE__, "mmap %zu: %s", len, strerror(errno));
	for (size_t i = 0; i < len / 8; i++)
		p[i] = word(seed, i);
	return p;
}

/* Bytes [from, to) of region p (of seed) hold the pattern; 0: yes, else the first bad offset + 1. */
static size_t bad_pattern(const void *p, uint64_t seed, size_t from, size_t to)
{
	const uint64_t *w = p;

	for (size_t i = from / 8; i < to / 8; i++)
		if (w[i] != word(seed, i))
			return i * 8 + 1;
	return 0;
}

static size_t bad_zero(const void *p, size_t from, size_t to)
{
	const uint64_t *w = p;

	for (size_t i = from / 8; i < to / 8; i++)
		if (w[i])
			return i * 8 + 1;
	return 0;
}

#define CHECK_PATTERN(p, seed, from, to)                                                    \
	do {                                                                                \
		size_t b_ = bad_pattern(p, seed, from, to);                                 \
		if (b_)                                                                     \
			cap_fail(__FILE__, __LINE__, "%s: byte %zu is not the pattern", #p, \
				 b_ - 1);                                                   \
	} while (0)

int main(void)
{
	char *a = region(32 * MIB, 1), *b = region(8 * MIB, 2), *c = region(8 * MIB, 3);
	char *d = region(8 * MIB, 4), *e = region(4 * MIB, 5);
	char *f = region(4 * MIB, 6), *g = region(4 * MIB, 7);
	/* Where b moves to: reserved now, so that the move is to a place of our choosing. */
	char *b2 = mmap(NULL, 8 * MIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int pfd[2], status;
	pid_t child;

	CHECK(b2 != MAP_FAILED);
	CHECK_SYS(pipe(pfd));
	printf("regions ready\n");

	cap_sync();

	/* At once, while a lazy resume is still bringing the pages in. */
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		/* The child's copy: every page it did not have yet must still come. */
		_exit(bad_pattern(a, 1, 0, 32 * MIB) || bad_pattern(e, 5, 0, 4 * MIB) ? 1 : 0);
	}
	CHECK_SYS(madvise(c + 3 * MIB, MIB, MADV_DONTNEED));
	CHECK(mremap(b, 8 * MIB, 8 * MIB, MREMAP_MAYMOVE | MREMAP_FIXED, b2) == b2);
	CHECK_SYS(munmap(d + 4 * MIB, 4 * MIB));
	/* f over g: g's pages still to come must not be brought over f's. */
	CHECK(mremap(f, 4 * MIB, 4 * MIB, MREMAP_MAYMOVE | MREMAP_FIXED, g) == g);
	/* The kernel reads pages not in yet (write), and writes into others (read). */
	CHECK_INT(write(pfd[1], e + MIB, 64 * 1024), 64 * 1024);
	CHECK_INT(read(pfd[0], e + 3 * MIB, 64 * 1024), 64 * 1024);

	CHECK_SYS(waitpid(child, &status, 0));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	printf("the child saw its memory whole\n");
	CHECK_PATTERN(a, 1, 0, 32 * MIB);
	CHECK_PATTERN(b2, 2, 0, 8 * MIB);
	CHECK_PATTERN(g, 6, 0, 4 * MIB);
	printf("moved regions whole\n");
	CHECK_PATTERN(c, 3, 0, 3 * MIB);
	{
		size_t z = bad_zero(c, 3 * MIB, 4 * MIB);

		if (z)
			cap_fail(__FILE__, __LINE__, "c: byte %zu after MADV_DONTNEED is not 0", z - 1);
	}
	CHECK_PATTERN(c, 3, 4 * MIB, 8 * MIB);
	printf("dropped part reads zeros, the rest whole\n");
	CHECK_PATTERN(d, 4, 0, 4 * MIB);
	printf("unmapped half gone, the other whole\n");
	CHECK_PATTERN(e, 5, 0, 3 * MIB);
	CHECK_MEM(e + 3 * MIB, e + MIB, 64 * 1024);
	CHECK_PATTERN(e, 5, 3 * MIB + 64 * 1024, 4 * MIB);
	printf("what the kernel read and wrote is right\n");
	return 0;
}
