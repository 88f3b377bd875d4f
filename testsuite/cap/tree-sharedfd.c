/* A file opened before fork stays one open file in parent and child after the resume (one offset: their writes in turn interleave in the file, each sees the other's move; one set of status flags; kcmp says the same file), and a file opened after fork in each process separately keeps two offsets of its own. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cap.h"

#define SHARED_FD 10		/* opened before fork */
#define OWN_FD 11		/* opened after fork, by each process */
#define TURNS 4
#define CHILD_STATUS 9

static int get_byte(int fd)
{
	unsigned char c;
	ssize_t r;

	do
		r = read(fd, &c, 1);
	while (r < 0 && errno == EINTR);
	return r == 1 ? c : -1;
}

static void put_byte(int fd, int c)
{
	unsigned char b = (unsigned char)c;

	CHECK_INT(write(fd, &b, 1), 1);
}

static off_t pos(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

/* Open path at fd number want. */
static void open_at(const char *path, int flags, int want)
{
	int fd = open(path, flags, 0644);

	CHECK_SYS(fd);
	CHECK_INT(dup2(fd, want), want);
	CHECK_SYS(close(fd));
}

/*
 * kcmp(KCMP_FILE) of our fd a and fd b of pid: 0 when they are one open
 * file. -1 with ENOSYS where the kernel has no kcmp: the check is then
 * left out (the plain run does the same).
 */
static long same_file(pid_t pid, int a, int b)
{
	return syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, a, b);
}

static void check_kcmp(pid_t child)
{
	long r = same_file(child, SHARED_FD, SHARED_FD);

	if (r == -1 && errno == ENOSYS)
		return;
	CHECK_INT(r, 0);
	CHECK(same_file(child, OWN_FD, OWN_FD) > 0);
	CHECK(same_file(child, SHARED_FD, OWN_FD) > 0);
}

/*
 * The child: in turn with the parent (told by a byte on its pipe), it
 * writes through the shared file, where the parent left the offset.
 */
static void child(int go, int done)
{
	char s[3];

	/* After the parent wrote its own "pppp" at the start of the file. */
	if (get_byte(go) != 'g')
		_exit(3);
	open_at("tree-own.dat", O_RDWR, OWN_FD);
	/* Its own offset starts at 0, whatever the parent did. */
	CHECK_INT(pos(OWN_FD), 0);
	CHECK_INT(write(OWN_FD, "c", 1), 1);
	CHECK_INT(pos(SHARED_FD), 2);
	CHECK_INT(write(SHARED_FD, "C:", 2), 2);
	put_byte(done, 'r');

	/* Blocked here at the sync. */
	if (get_byte(go) != 'g')
		_exit(3);
	CHECK_INT(pos(OWN_FD), 1);
	CHECK_INT(write(OWN_FD, "cc", 2), 2);
	CHECK_INT(pos(OWN_FD), 3);
	for (int i = 0; i < TURNS; i++) {
		if (i > 0 && get_byte(go) != 'g')
			_exit(3);
		CHECK_INT(pos(SHARED_FD), 4 + 4 * i + 2);
		snprintf(s, sizeof(s), "C%d", i);
		CHECK_INT(write(SHARED_FD, s, 2), 2);
		put_byte(done, 'd');
	}
	/* The parent set O_APPEND on its descriptor: the open file's flag. */
	if (get_byte(go) != 'g')
		_exit(3);
	CHECK_INT(fcntl(SHARED_FD, F_GETFL) & O_APPEND, O_APPEND);
	CHECK_INT(fcntl(OWN_FD, F_GETFL) & O_APPEND, 0);
	_exit(CHILD_STATUS);
}

int main(void)
{
	int go[2], done[2], st;
	char buf[64], s[3];
	pid_t pid;

	/* Both files exist before the fork; only one is open. */
	open_at("tree-own.dat", O_RDWR | O_CREAT | O_TRUNC, OWN_FD);
	CHECK_SYS(close(OWN_FD));
	open_at("tree-shared.dat", O_RDWR | O_CREAT | O_TRUNC, SHARED_FD);
	CHECK_INT(write(SHARED_FD, "P:", 2), 2);
	CHECK_SYS(pipe(go));
	CHECK_SYS(pipe(done));
	fflush(stdout);
	pid = fork();
	CHECK_SYS(pid);
	if (pid == 0) {
		close(go[1]);
		close(done[0]);
		child(go[0], done[1]);
	}
	close(go[0]);
	close(done[1]);
	open_at("tree-own.dat", O_RDWR, OWN_FD);
	CHECK_INT(write(OWN_FD, "pppp", 4), 4);
	put_byte(go[1], 'g');
	CHECK_INT(get_byte(done[0]), 'r');
	/* The child's write moved our offset too; not our own file's. */
	CHECK_INT(pos(SHARED_FD), 4);
	CHECK_INT(pos(OWN_FD), 4);
	check_kcmp(pid);
	printf("one shared file at offset 4, one file open twice\n");

	cap_sync();

	CHECK_INT(pos(SHARED_FD), 4);
	CHECK_INT(pos(OWN_FD), 4);
	check_kcmp(pid);
	for (int i = 0; i < TURNS; i++) {
		CHECK_INT(pos(SHARED_FD), 4 + 4 * i);
		snprintf(s, sizeof(s), "P%d", i);
		CHECK_INT(write(SHARED_FD, s, 2), 2);
		put_byte(go[1], 'g');
		CHECK_INT(get_byte(done[0]), 'd');
		CHECK_INT(pos(SHARED_FD), 4 + 4 * i + 4);
	}
	CHECK_INT(pread(SHARED_FD, buf, sizeof(buf), 0), 20);
	CHECK_MEM(buf, "P:C:P0C0P1C1P2C2P3C3", 20);
	printf("turns through the shared file: one offset: ok\n");

	/* Our own descriptor of tree-own.dat is still at 4, the child's was
	 * at 1 and is at 3 now. */
	CHECK_INT(pos(OWN_FD), 4);
	CHECK_INT(write(OWN_FD, "P", 1), 1);
	CHECK_INT(pread(OWN_FD, buf, sizeof(buf), 0), 5);
	CHECK_MEM(buf, "cccpP", 5);
	printf("separate opens: two offsets: ok\n");

	CHECK_SYS(fcntl(SHARED_FD, F_SETFL, O_APPEND));
	put_byte(go[1], 'g');
	CHECK_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), CHILD_STATUS);
	printf("one set of status flags: ok\n");
	return 0;
}
