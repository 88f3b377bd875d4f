/* System V shared memory comes back attached where it was, with its contents, its shmid (shmctl on the ids the program kept works), its key, mode and size; a segment attached twice is one segment (a write through one address is seen through the other); a read-only attachment stays read-only; a segment the program removed while attached stays attached and is gone once detached. */
#define _GNU_SOURCE
#include <signal.h>
#include <setjmp.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include "cap.h"

static sigjmp_buf fault;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(fault, 1);
}

int main(void)
{
	int a, b, gone;
	key_t key = (key_t)(0x45730000 | (getpid() & 0xffff));
	char *pa, *pa2, *pb, *pro, *pg;
	struct shmid_ds ds;
	volatile int faulted = 0;

	a = shmget(IPC_PRIVATE, 3 * 4096, 0600 | IPC_CREAT);
	CHECK_SYS(a);
	/* A key another run left behind (killed before its IPC_RMID): the next one. */
	while ((b = shmget(key, 10000, 0640 | IPC_CREAT | IPC_EXCL)) < 0 && errno == EEXIST)
		key++;
	CHECK_SYS(b);
	gone = shmget(IPC_PRIVATE, 4096, 0600 | IPC_CREAT);
	CHECK_SYS(gone);
	pa = shmat(a, NULL, 0);
	pa2 = shmat(a, NULL, 0);
	pb = shmat(b, NULL, 0);
	pro = shmat(b, NULL, SHM_RDONLY);
	pg = shmat(gone, NULL, 0);
	CHECK(pa != (void *)-1 && pa2 != (void *)-1 && pb != (void *)-1 && pro != (void *)-1 &&
	      pg != (void *)-1);
	cap_fill(pa, 3 * 4096, 11);
	cap_fill(pb, 10000, 22);
	strcpy(pg, "removed but attached");
	CHECK_SYS(shmctl(gone, IPC_RMID, NULL));
	printf("3 segments, 5 attachments\n");

	cap_sync();

	CHECK_FILL(pa, 3 * 4096, 11);
	CHECK_FILL(pb, 10000, 22);
	CHECK_FILL(pa2, 3 * 4096, 11);
	CHECK_FILL(pro, 10000, 22);
	printf("contents kept, through every attachment\n");
	pa[5000] = 'x';
	pb[9999] = 'y';
	printf("shared: %c %c\n", pa2[5000], pro[9999]);
	CHECK_SYS(shmctl(a, IPC_STAT, &ds));
	printf("segment a: size %zu, mode %o, attached %lu times\n", ds.shm_segsz,
	       ds.shm_perm.mode & 0777, (unsigned long)ds.shm_nattch);
	CHECK_SYS(shmctl(b, IPC_STAT, &ds));
	printf("segment b: size %zu, mode %o, key kept: %s\n", ds.shm_segsz,
	       ds.shm_perm.mode & 0777, ds.shm_perm.__key == key ? "yes" : "no");
	CHECK_INT(shmget(key, 0, 0), b);
	printf("%s\n", pg);
	CHECK(shmctl(gone, IPC_STAT, &ds) == 0 && (ds.shm_perm.mode & SHM_DEST));
	printf("the removed segment is still marked removed\n");
	signal(SIGSEGV, on_segv);
	if (!sigsetjmp(fault, 1))
		pro[0] = 'z';
	else
		faulted = 1;
	printf("read-only attachment: %s\n", faulted ? "write refused" : "written!");
	CHECK_SYS(shmdt(pg));
	CHECK(shmctl(gone, IPC_STAT, &ds) < 0 && (errno == EINVAL || errno == EIDRM));
	printf("detached: gone\n");
	CHECK_SYS(shmdt(pa));
	CHECK_SYS(shmdt(pa2));
	CHECK_SYS(shmdt(pb));
	CHECK_SYS(shmdt(pro));
	CHECK_SYS(shmctl(a, IPC_RMID, NULL));
	CHECK_SYS(shmctl(b, IPC_RMID, NULL));
	return 0;
}
