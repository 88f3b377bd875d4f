/* Pipes between parent and child keep the data in flight: bytes written and not yet read at the sync, one pipe each way (the child blocked on a third), are there after the resume, in order and once (FIONREAD counts them, then EOF), and the pipes still join the two processes. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "cap.h"

#define DOWN_N 40000		/* parent -> child, below the 64 KiB capacity */
#define UP_N 30001		/* child -> parent */
#define DOWN_SEED 0xd0d0ULL
#define UP_SEED 0x0b0bULL
#define CHILD_STATUS 11

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

static int in_pipe(int fd)
{
	int n = -1;

	CHECK_SYS(ioctl(fd, FIONREAD, &n));
	return n;
}

/* Read from fd until EOF into buf (at most size bytes); returns the count. */
static size_t read_all(int fd, unsigned char *buf, size_t size)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = read(fd, buf + n, size - n);

		if (r < 0 && errno == EINTR)
			continue;
		CHECK_SYS(r);
		if (r == 0)
			return n;
		n += (size_t)r;
		CHECK(n < size);	/* never more than was written */
	}
}

static void child(int down, int up, int go, int ready)
{
	static unsigned char buf[2 * DOWN_N];

	cap_fill(buf, UP_N, UP_SEED);
	CHECK_INT(write(up, buf, UP_N), UP_N);
	put_byte(ready, 'r');

	/* Blocked here at the sync. */
	if (get_byte(go) != 'g')
		_exit(3);
	CHECK_INT(in_pipe(down), DOWN_N);
	CHECK_INT(read_all(down, buf, sizeof(buf)), DOWN_N);
	CHECK_FILL(buf, DOWN_N, DOWN_SEED);
	/* The way back still reaches the parent. */
	CHECK_INT(write(up, "child done", 10), 10);
	_exit(CHILD_STATUS);
}

int main(void)
{
	static unsigned char buf[2 * UP_N];
	int down[2], up[2], go[2], ready[2], st;
	pid_t pid;

	CHECK_SYS(pipe(down));
	CHECK_SYS(pipe(up));
	CHECK_SYS(pipe(go));
	CHECK_SYS(pipe(ready));
	fflush(stdout);
	pid = fork();
	CHECK_SYS(pid);
	if (pid == 0) {
		close(down[1]);
		close(up[0]);
		close(go[1]);
		close(ready[0]);
		child(down[0], up[1], go[0], ready[1]);
	}
	close(down[0]);
	close(up[1]);
	close(go[0]);
	close(ready[1]);
	cap_fill(buf, DOWN_N, DOWN_SEED);
	CHECK_INT(write(down[1], buf, DOWN_N), DOWN_N);
	CHECK_INT(get_byte(ready[0]), 'r');
	/* FIONREAD works on either end of a pipe. */
	CHECK_INT(in_pipe(down[1]), DOWN_N);
	CHECK_INT(in_pipe(up[0]), UP_N);
	printf("%d bytes in flight to the child, %d to the parent\n", DOWN_N,
	       UP_N);

	cap_sync();

	CHECK_INT(in_pipe(up[0]), UP_N);
	CHECK_INT(in_pipe(down[1]), DOWN_N);
	CHECK_INT(read(up[0], buf, sizeof(buf)), UP_N);
	CHECK_FILL(buf, UP_N, UP_SEED);
	CHECK_INT(in_pipe(up[0]), 0);
	printf("to the parent: %d bytes, in order: ok\n", UP_N);
	CHECK_SYS(close(down[1]));		/* the child reads to EOF */
	put_byte(go[1], 'g');
	CHECK_INT(read_all(up[0], buf, sizeof(buf)), 10);
	CHECK_MEM(buf, "child done", 10);
	CHECK_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), CHILD_STATUS);
	printf("to the child: %d bytes, in order, once: ok\n", DOWN_N);
	return 0;
}
