/* Memory survives: private anonymous (with holes, read-only parts, a region moved with mremap, and MADV_DONTFORK and MADV_WIPEONFORK regions, which a fork-based dump must not lose), private file-backed with dirty pages, shared file-backed (writes after resume reach the file), shared anonymous, PROT_NONE guards that still fault, a deep stack, and a heap where malloc, sbrk and brk keep working. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cap.h"

#define PG 4096UL

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t faults;

static void on_segv(int sig)
{
	(void)sig;
	faults++;
	siglongjmp(fault_jmp, 1);
}

/* Does reading (or writing) *p fault? */
static int faults_on(volatile char *p, int write)
{
	if (sigsetjmp(fault_jmp, 1))
		return 1;
	if (write)
		*p = 1;
	else
		(void)*p;
	return 0;
}

/* A file of n pages with the pattern of seed, opened O_RDWR. */
static int make_file(const char *name, size_t n, unsigned long long seed)
{
	char *buf = malloc(n);
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	CHECK(buf != NULL);
	CHECK_SYS(fd);
	cap_fill(buf, n, seed);
	CHECK_INT(write(fd, buf, n), (long)n);
	free(buf);
	return fd;
}

/* Recursion deep across the sync: every frame checks its own data. */
static unsigned long recurse(int depth)
{
	volatile unsigned char frame[512];
	unsigned long sum = 0;

	cap_fill((void *)frame, sizeof(frame), (unsigned long long)depth * 77);
	if (depth == 0)
		cap_sync();
	else
		sum = recurse(depth - 1);
	CHECK_FILL(frame, sizeof(frame), (unsigned long long)depth * 77);
	for (size_t i = 0; i < sizeof(frame); i += 64)
		sum += frame[i];
	return sum;
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_segv, .sa_flags = SA_NODEFER };
	char *anon, *ro, *priv, *shared, *shanon, *guard, *big, *rd;
	char *moved, *dontfork, *wipeonfork;
	char *blocks[64], *sbrk0, *brk1;
	int privfd, sharedfd, fd;
	char page[PG], expect[PG];
	unsigned long stack_sum;

	CHECK_SYS(sigaction(SIGSEGV, &sa, NULL));
	sigemptyset(&sa.sa_mask);

	/* Private anonymous: 64 pages, every other one touched. */
	anon = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(anon != MAP_FAILED);
	for (int i = 0; i < 64; i += 2)
		cap_fill(anon + i * PG, PG, 1000 + i);
	/* Read-only private anonymous, filled before mprotect. */
	ro = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(ro != MAP_FAILED);
	cap_fill(ro, 4 * PG, 2000);
	CHECK_SYS(mprotect(ro, 4 * PG, PROT_READ));
	/* A big region, sparse: one page in 256 touched (16 MiB). */
	big = mmap(NULL, 4096 * PG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(big != MAP_FAILED);
	for (int i = 0; i < 4096; i += 256)
		cap_fill(big + i * PG, 64, 3000 + i);

	/* Moved with mremap: its pages are anonymous ones that came from
	 * elsewhere. */
	moved = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(moved != MAP_FAILED);
	cap_fill(moved, 4 * PG, 2500);
	moved = mremap(moved, 4 * PG, 16 * PG, MREMAP_MAYMOVE);
	CHECK(moved != MAP_FAILED);
	cap_fill(moved + 12 * PG, PG, 2600);
	/* Regions a child process would not see (or see zeroed). */
	dontfork = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	wipeonfork = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(dontfork != MAP_FAILED && wipeonfork != MAP_FAILED);
	cap_fill(dontfork, 4 * PG, 2700);
	cap_fill(wipeonfork, 4 * PG, 2800);
	CHECK_SYS(madvise(dontfork, 4 * PG, MADV_DONTFORK));
	CHECK_SYS(madvise(wipeonfork, 4 * PG, MADV_WIPEONFORK));

	/* Private file mapping with dirty pages 1 and 3 of 8. */
	privfd = make_file("private.dat", 8 * PG, 4000);
	priv = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, privfd,
		    0);
	CHECK(priv != MAP_FAILED);
	CHECK_SYS(close(privfd));
	cap_fill(priv + 1 * PG, PG, 4100);
	cap_fill(priv + 3 * PG + 100, 200, 4300);
	/* A read-only private file mapping (like a library's .rodata). */
	fd = open("private.dat", O_RDONLY | O_CLOEXEC);
	CHECK_SYS(fd);
	rd = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE, fd, 4 * PG);
	CHECK(rd != MAP_FAILED);
	CHECK_SYS(close(fd));

	/* Shared file mapping, written before the sync. */
	sharedfd = make_file("shared.dat", 4 * PG, 5000);
	shared = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
		      sharedfd, 0);
	CHECK(shared != MAP_FAILED);
	CHECK_SYS(close(sharedfd));
	memcpy(shared + 10, "written before the sync", 23);

	/* Shared anonymous. */
	shanon = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shanon != MAP_FAILED);
	cap_fill(shanon, 5 * PG, 6000);

	/* Guard: 3 pages, the middle one PROT_NONE. */
	guard = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(guard != MAP_FAILED);
	CHECK_SYS(mprotect(guard + PG, PG, PROT_NONE));
	guard[0] = 'a';
	guard[2 * PG] = 'c';

	/* Heap: small and large (mmap'ed) blocks, and the break. */
	for (int i = 0; i < 64; i++) {
		size_t sz = (size_t)(i % 8 == 7 ? 300000 : 16 + i * 40);

		blocks[i] = malloc(sz);
		CHECK(blocks[i] != NULL);
		cap_fill(blocks[i], sz, 7000 + i);
	}
	for (int i = 0; i < 64; i += 3) {
		free(blocks[i]);
		blocks[i] = NULL;
	}
	sbrk0 = sbrk(0);
	CHECK(sbrk0 != (void *)-1);

	printf("memory set up\n");
	/* The sync point is at the bottom of a deep recursion. */
	stack_sum = recurse(1000);
	printf("stack: %lu\n", stack_sum);

	/* Private anonymous. */
	for (int i = 0; i < 64; i++) {
		if (i % 2 == 0) {
			CHECK_FILL(anon + i * PG, PG, 1000 + i);
		} else {
			memset(expect, 0, PG);
			CHECK_MEM(anon + i * PG, expect, PG);
		}
	}
	cap_fill(anon + PG, PG, 1);	/* still writable */
	CHECK_FILL(ro, 4 * PG, 2000);
	CHECK_INT(faults_on(ro + PG, 1), 1);
	for (int i = 0; i < 4096; i++) {
		if (i % 256 == 0)
			CHECK_FILL(big + i * PG, 64, 3000 + i);
		else
			CHECK_INT(big[i * PG + 17], 0);
	}
	CHECK_FILL(moved, 4 * PG, 2500);
	CHECK_FILL(moved + 12 * PG, PG, 2600);
	CHECK_INT(moved[5 * PG], 0);
	CHECK_FILL(dontfork, 4 * PG, 2700);
	CHECK_FILL(wipeonfork, 4 * PG, 2800);
	printf("private anonymous: ok\n");

	/* Private file: dirty pages kept, clean pages from the file, file
	 * itself untouched. */
	cap_fill(expect, PG, 0);
	for (int i = 0; i < 8; i++) {
		char filepage[PG];

		fd = open("private.dat", O_RDONLY | O_CLOEXEC);
		CHECK_SYS(fd);
		CHECK_INT(pread(fd, filepage, PG, i * (off_t)PG), (long)PG);
		CHECK_SYS(close(fd));
		if (i == 1) {
			CHECK_FILL(priv + PG, PG, 4100);
		} else if (i == 3) {
			CHECK_FILL(priv + 3 * PG + 100, 200, 4300);
			CHECK_MEM(priv + 3 * PG, filepage, 100);
			CHECK_MEM(priv + 3 * PG + 300, filepage + 300,
				  PG - 300);
		} else {
			CHECK_MEM(priv + i * PG, filepage, PG);
		}
		if (i >= 4 && i < 6)
			CHECK_MEM(rd + (i - 4) * PG, filepage, PG);
	}
	{
		char whole[8 * PG];

		fd = open("private.dat", O_RDONLY | O_CLOEXEC);
		CHECK_INT(read(fd, whole, sizeof(whole)), (long)sizeof(whole));
		close(fd);
		CHECK_FILL(whole, sizeof(whole), 4000);
	}
	CHECK_INT(faults_on(rd, 1), 1);
	priv[5 * PG] = 'x';	/* copy-on-write still works */
	printf("private file: ok\n");

	/* Shared file: old write visible, new writes reach the file, and
	 * writes to the file show in the mapping. */
	CHECK_MEM(shared + 10, "written before the sync", 23);
	memcpy(shared + 2 * PG + 5, "written after the resume", 24);
	CHECK_SYS(msync(shared, 4 * PG, MS_SYNC));
	fd = open("shared.dat", O_RDWR | O_CLOEXEC);
	CHECK_SYS(fd);
	CHECK_INT(pread(fd, page, 23, 10), 23);
	CHECK_MEM(page, "written before the sync", 23);
	CHECK_INT(pread(fd, page, 24, 2 * PG + 5), 24);
	CHECK_MEM(page, "written after the resume", 24);
	CHECK_INT(pwrite(fd, "through the fd", 14, 3 * PG), 14);
	CHECK_MEM(shared + 3 * PG, "through the fd", 14);
	CHECK_SYS(close(fd));
	printf("shared file: ok\n");

	/* Shared anonymous: content, and still shared (the 's' in maps). */
	CHECK_FILL(shanon, 5 * PG, 6000);
	memset(expect, 0, PG);
	CHECK_MEM(shanon + 6 * PG, expect, PG);
	{
		char line[512], want[64];
		FILE *f = fopen("/proc/self/maps", "r");
		int found = 0;

		snprintf(want, sizeof(want), "%lx-", (unsigned long)shanon);
		CHECK(f != NULL);
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, want, strlen(want)) == 0) {
				found = 1;
				CHECK(strstr(line, " rw-s ") != NULL);
			}
		fclose(f);
		CHECK(found);
	}
	shanon[7 * PG] = 1;
	printf("shared anonymous: ok\n");

	/* Guard pages still fault; their neighbours do not. */
	CHECK_INT(guard[0], 'a');
	CHECK_INT(guard[2 * PG], 'c');
	CHECK_INT(faults_on(guard + PG, 0), 1);
	CHECK_INT(faults_on(guard + PG + 100, 1), 1);
	CHECK_INT(faults_on(guard + 2 * PG - 1, 0), 1);
	CHECK_INT(faults_on(guard + PG - 1, 1), 0);
	CHECK_INT(faults_on(guard + 2 * PG, 1), 0);
	printf("guard: ok, %d faults\n", (int)faults);

	/* Heap: blocks intact, break unchanged, malloc/free/sbrk work. */
	for (int i = 0; i < 64; i++) {
		size_t sz = (size_t)(i % 8 == 7 ? 300000 : 16 + i * 40);

		if (blocks[i])
			CHECK_FILL(blocks[i], sz, 7000 + i);
	}
	CHECK(sbrk(0) == sbrk0);
	for (int i = 0; i < 64; i++) {
		free(blocks[i]);
		blocks[i] = malloc(1000 + (size_t)i * 100);
		CHECK(blocks[i] != NULL);
		cap_fill(blocks[i], 1000 + (size_t)i * 100, 8000 + i);
	}
	for (int i = 0; i < 64; i++)
		CHECK_FILL(blocks[i], 1000 + (size_t)i * 100, 8000 + i);
	brk1 = sbrk(64 * PG);
	CHECK(brk1 != (void *)-1);
	memset(brk1, 0x5a, 64 * PG);
	CHECK(sbrk(0) == brk1 + 64 * PG);
	CHECK_SYS(brk(brk1));
	CHECK(sbrk(0) == brk1);
	{
		char *big2 = malloc(8 << 20);	/* mmap'ed by malloc */

		CHECK(big2 != NULL);
		memset(big2, 1, 8 << 20);
		free(big2);
	}
	printf("heap: ok\n");

	/* Munmap works on restored mappings. */
	CHECK_SYS(munmap(anon, 64 * PG));
	CHECK_SYS(munmap(big, 4096 * PG));
	CHECK_SYS(munmap(priv, 8 * PG));
	CHECK_SYS(munmap(shared, 4 * PG));
	printf("done\n");
	return 0;
}
