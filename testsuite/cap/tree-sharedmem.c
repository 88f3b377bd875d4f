/* Anonymous memory shared by a parent and its child (MAP_SHARED across fork) is one memory again after the resume: its contents are kept, and what one writes the other reads, both ways; memory the child mapped privately stays its own. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/wait.h>

#include "cap.h"

#define LEN (3 * 4096)

int main(void)
{
	int req[2], ans[2], st;
	unsigned char *shared, c;
	pid_t child;

	shared = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shared != MAP_FAILED);
	cap_fill(shared, LEN, 5);
	CHECK_SYS(pipe(req));
	CHECK_SYS(pipe(ans));
	fflush(stdout);
	child = fork();
	CHECK_SYS(child);
	if (child == 0) {
		unsigned char *own = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		close(req[1]);
		close(ans[0]);
		CHECK(own != MAP_FAILED);
		own[0] = 'o';
		/* Each request: read a byte the parent wrote, answer by writing one back. */
		while (read(req[0], &c, 1) == 1) {
			unsigned char seen = shared[5000];

			shared[9000] = (unsigned char)(seen + 1);
			CHECK_INT(own[0], 'o');
			CHECK_INT(write(ans[1], &seen, 1), 1);
		}
		_exit(0);
	}
	close(req[0]);
	close(ans[1]);
	printf("memory shared with a child\n");

	cap_sync();

	CHECK_FILL(shared, LEN, 5);
	printf("contents kept\n");
	for (int round = 0; round < 3; round++) {
		shared[5000] = (unsigned char)(40 + round);
		CHECK_INT(write(req[1], "?", 1), 1);
		CHECK_INT(read(ans[0], &c, 1), 1);
		printf("round %d: the child read %d, wrote %d\n", round, c, shared[9000]);
	}
	close(req[1]);
	CHECK_INT(waitpid(child, &st, 0), child);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return 0;
}
