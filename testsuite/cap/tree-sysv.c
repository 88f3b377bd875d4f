/* A System V segment attached in a parent and (through fork) in its child is one segment again after the resume, with its shmid: what one writes the other reads, shmctl counts both attachments, and it goes once both detach after the program removed it. */
#define _GNU_SOURCE
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>

#include "cap.h"

int main(void)
{
	int req[2], ans[2], id, st;
	unsigned char *seg, c;
	struct shmid_ds ds;
	pid_t child;

	id = shmget(IPC_PRIVATE, 2 * 4096, 0600 | IPC_CREAT);
	CHECK_SYS(id);
	seg = shmat(id, NULL, 0);
	CHECK(seg != (void *)-1);
	cap_fill(seg, 2 * 4096, 9);
	CHECK_SYS(pipe(req));
	CHECK_SYS(pipe(ans));
	fflush(stdout);
	child = fork();
	CHECK_SYS(child);
	if (child == 0) {
		close(req[1]);
		close(ans[0]);
		while (read(req[0], &c, 1) == 1) {
			unsigned char seen = seg[100];

			seg[5000] = (unsigned char)(seen + 1);
			CHECK_INT(write(ans[1], &seen, 1), 1);
		}
		CHECK_SYS(shmdt(seg));
		_exit(0);
	}
	close(req[0]);
	close(ans[1]);
	CHECK_SYS(shmctl(id, IPC_RMID, NULL));
	printf("a segment attached in parent and child, removed\n");

	cap_sync();

	CHECK_SYS(shmctl(id, IPC_STAT, &ds));
	printf("same shmid, attached %lu times, removed: %s\n", (unsigned long)ds.shm_nattch,
	       ds.shm_perm.mode & SHM_DEST ? "yes" : "no");
	for (int round = 0; round < 3; round++) {
		seg[100] = (unsigned char)(60 + round);
		CHECK_INT(write(req[1], "?", 1), 1);
		CHECK_INT(read(ans[0], &c, 1), 1);
		printf("round %d: the child read %d, wrote %d\n", round, c, seg[5000]);
	}
	close(req[1]);
	CHECK_INT(waitpid(child, &st, 0), child);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK_SYS(shmdt(seg));
	CHECK(shmctl(id, IPC_STAT, &ds) < 0);
	printf("both detached: gone\n");
	return 0;
}
