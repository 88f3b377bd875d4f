/* Unix socketpairs whose ends are in parent and child keep their queued data: a stream pair with bytes queued each way and a datagram pair with three datagrams queued (their boundaries kept) at the sync, the child blocked on a pipe, are read after the resume, once, and the pairs still join the two processes. */
#define _GNU_SOURCE
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "cap.h"

#define STREAM_DOWN 5000	/* parent -> child */
#define STREAM_UP 3001		/* child -> parent */
#define CHILD_STATUS 15

static const char *const dgrams[] = { "first", "second datagram", "3" };

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

static int queued(int fd)
{
	int n = -1;

	CHECK_SYS(ioctl(fd, FIONREAD, &n));
	return n;
}

/* Read exactly n bytes from a stream socket. */
static void read_full(int fd, unsigned char *buf, size_t n)
{
	while (n) {
		ssize_t r = read(fd, buf, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			cap_fail(__FILE__, __LINE__, "read: %s",
				 r ? strerror(errno) : "EOF");
		buf += r;
		n -= (size_t)r;
	}
}

static void child(int st, int dg, int go, int ready)
{
	static unsigned char buf[STREAM_DOWN + 1];
	char d[64];

	cap_fill(buf, STREAM_UP, 0x5eed);
	CHECK_INT(write(st, buf, STREAM_UP), STREAM_UP);
	for (size_t i = 0; i < sizeof(dgrams) / sizeof(dgrams[0]); i++)
		CHECK_INT(send(dg, dgrams[i], strlen(dgrams[i]), 0),
			  strlen(dgrams[i]));
	put_byte(ready, 'r');

	/* Blocked here at the sync. */
	if (get_byte(go) != 'g')
		_exit(3);
	read_full(st, buf, STREAM_DOWN);
	CHECK_FILL(buf, STREAM_DOWN, 0xd0);
	CHECK_INT(recv(st, buf, 1, MSG_DONTWAIT), -1);	/* nothing more */
	CHECK_INT(errno, EAGAIN);
	/* An answer each way, through each pair. */
	CHECK_INT(recv(dg, d, sizeof(d), 0), 4);
	CHECK_MEM(d, "ping", 4);
	CHECK_INT(send(dg, "pong", 4, 0), 4);
	CHECK_INT(write(st, "done", 4), 4);
	_exit(CHILD_STATUS);
}

int main(void)
{
	static unsigned char buf[STREAM_DOWN + STREAM_UP];
	int st[2], dg[2], go[2], ready[2], status;
	char d[64];
	pid_t pid;

	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, st));
	CHECK_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg));
	CHECK_SYS(pipe(go));
	CHECK_SYS(pipe(ready));
	fflush(stdout);
	pid = fork();
	CHECK_SYS(pid);
	if (pid == 0) {
		close(st[0]);
		close(dg[0]);
		close(go[1]);
		close(ready[0]);
		child(st[1], dg[1], go[0], ready[1]);
	}
	close(st[1]);
	close(dg[1]);
	close(go[0]);
	close(ready[1]);
	cap_fill(buf, STREAM_DOWN, 0xd0);
	CHECK_INT(write(st[0], buf, STREAM_DOWN), STREAM_DOWN);
	CHECK_INT(get_byte(ready[0]), 'r');
	CHECK_INT(queued(st[0]), STREAM_UP);
	printf("stream pair: %d bytes queued to the child, %d to the parent; "
	       "datagram pair: 3 datagrams queued\n", STREAM_DOWN, STREAM_UP);

	cap_sync();

	CHECK_INT(queued(st[0]), STREAM_UP);
	read_full(st[0], buf, STREAM_UP);
	CHECK_FILL(buf, STREAM_UP, 0x5eed);
	CHECK_INT(recv(st[0], buf, 1, MSG_DONTWAIT), -1);
	CHECK_INT(errno, EAGAIN);
	printf("stream to the parent: %d bytes, once: ok\n", STREAM_UP);
	for (size_t i = 0; i < sizeof(dgrams) / sizeof(dgrams[0]); i++) {
		CHECK_INT(recv(dg[0], d, sizeof(d), 0), strlen(dgrams[i]));
		CHECK_MEM(d, dgrams[i], strlen(dgrams[i]));
	}
	CHECK_INT(recv(dg[0], d, sizeof(d), MSG_DONTWAIT), -1);
	CHECK_INT(errno, EAGAIN);
	printf("datagrams: three, each whole, once: ok\n");

	CHECK_INT(send(dg[0], "ping", 4, 0), 4);
	put_byte(go[1], 'g');
	CHECK_INT(recv(dg[0], d, sizeof(d), 0), 4);
	CHECK_MEM(d, "pong", 4);
	read_full(st[0], buf, 4);
	CHECK_MEM(buf, "done", 4);
	CHECK_INT(read(st[0], buf, 1), 0);		/* the child is gone */
	CHECK_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), CHILD_STATUS);
	printf("stream to the child: %d bytes, once; both pairs join the "
	       "two: ok\n", STREAM_DOWN);
	return 0;
}
