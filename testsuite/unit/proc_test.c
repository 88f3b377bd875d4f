/*
 * proc_test: the smaps cache of src/proc.c (esky-shell's snapshots read
 * smaps, a walk of the page tables, only when maps changed). A child
 * process stands still between commands from the test, as a stopped
 * program would: its smaps read through the cache equal a fresh read,
 * an unchanged map is a hit, a new mapping or an mprotect is a miss, and
 * another pid never gets the cached answer.
 */
#define UNIT_NAME "proc_test"
#define MAX_REPORTS 20
#include "unit_test.h"

#include "proc.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int cmd_fd, ack_fd;

/* The child: does what each byte asks, then answers one byte. */
static void child(int in, int out)
{
	static char *region;
	char c;

	while (read(in, &c, 1) == 1) {
		if (c == 'm')
			region = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				      -1, 0);
		else if (c == 'p')
			mprotect(region, 1 << 20, PROT_READ);
		if (write(out, &c, 1) != 1)
			_exit(1);
	}
	_exit(0);
}

static void ask(char c)
{
	if (write(cmd_fd, &c, 1) != 1 || read(ack_fd, &c, 1) != 1)
		harness_error("the child does not answer");
}

/* The cached read equals a fresh read of smaps; hits and misses as expected. */
static void check_read(const char *what, pid_t pid, struct esky_maps_cache *c, uint64_t hits,
		       uint64_t misses)
{
	struct esky_vma *a, *b;
	size_t na, nb;

	if (esky_proc_read_smaps_cached(pid, c, &a, &na))
		harness_error("%s: cannot read the maps of pid %d", what, (int)pid);
	if (esky_proc_read_maps(pid, true, &b, &nb))
		harness_error("%s: cannot read the smaps of pid %d", what, (int)pid);
	CHECK(na == nb, "%s: %zu mappings through the cache, %zu in smaps", what, na, nb);
	for (size_t i = 0; i < na && i < nb; i++) {
		CHECK(a[i].start == b[i].start && a[i].end == b[i].end && a[i].prot == b[i].prot &&
			      a[i].vmflags == b[i].vmflags,
		      "%s: mapping %zu differs (%#" PRIx64 "-%#" PRIx64 " flags %#x, smaps %#" PRIx64
		      "-%#" PRIx64 " flags %#x)",
		      what, i, a[i].start, a[i].end, a[i].vmflags, b[i].start, b[i].end, b[i].vmflags);
		CHECK((!a[i].path && !b[i].path) || (a[i].path && b[i].path && !strcmp(a[i].path, b[i].path)),
		      "%s: mapping %zu has another path", what, i);
		CHECK(a[i].path != b[i].path || !a[i].path, "%s: mapping %zu's path is shared", what, i);
	}
	CHECK(na && (a[0].vmflags & ESKY_VMF_HAS_VMFLAGS), "%s: no VmFlags came through", what);
	CHECK_U64("hits", c->hits, hits);
	CHECK_U64("misses", c->misses, misses);
	esky_vmas_free(a, na);
	esky_vmas_free(b, nb);
}

int main(void)
{
	struct esky_maps_cache c = { 0 };
	int to[2], from[2], status;
	pid_t pid, other;

	if (pipe(to) || pipe(from))
		harness_error("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		harness_error("fork: %s", strerror(errno));
	if (pid == 0) {
		close(to[1]);
		close(from[0]);
		child(to[0], from[1]);
	}
	close(to[0]);
	close(from[1]);
	cmd_fd = to[1];
	ack_fd = from[0];
	ask('.');

	check_read("first read", pid, &c, 0, 1);
	check_read("map unchanged", pid, &c, 1, 1);
	check_read("map unchanged again", pid, &c, 2, 1);
	ask('m');
	check_read("after mmap", pid, &c, 2, 2);
	check_read("unchanged after mmap", pid, &c, 3, 2);
	ask('p');
	check_read("after mprotect", pid, &c, 3, 3);

	/* Another process, even one with the same map text, is read afresh. */
	other = fork();
	if (other == 0) {
		pause();
		_exit(0);
	}
	check_read("another pid", other, &c, 3, 4);
	kill(other, SIGKILL);
	waitpid(other, &status, 0);

	esky_maps_cache_clear(&c);
	CHECK(!c.maps && !c.vmas && !c.n, "clear left something");
	check_read("after clear", pid, &c, 3, 5);
	esky_maps_cache_clear(&c);

	close(cmd_fd);
	waitpid(pid, &status, 0);
	if (failures) {
		fprintf(stderr, "proc_test: %u of %u checks failed\n", failures, checks);
		return EXIT_FAIL;
	}
	printf("proc_test: %u checks passed\n", checks);
	return EXIT_PASS;
}
