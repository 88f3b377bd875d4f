/* Named pipes (FIFOs) come back: each fd reopened by its path with its mode, the bytes in flight still in the FIFO, once; a FIFO open read-write in one fd; one whose write end is a child's (a tree), which writes on after the resume. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "cap.h"

static char dir[] = "./fifos-XXXXXX";

int main(void)
{
	char a[64], b[64], c[64], buf[128], cmd[96];
	int rd, wr, rw, crd, go[2], st;
	pid_t child;
	ssize_t n;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	snprintf(c, sizeof(c), "%s/c", dir);
	CHECK_SYS(mkfifo(a, 0600));
	CHECK_SYS(mkfifo(b, 0600));
	CHECK_SYS(mkfifo(c, 0600));
	rd = open(a, O_RDONLY | O_NONBLOCK);
	CHECK_SYS(rd);
	wr = open(a, O_WRONLY);
	CHECK_SYS(wr);
	CHECK_INT(write(wr, "in flight", 9), 9);
	rw = open(b, O_RDWR);
	CHECK_SYS(rw);
	CHECK_INT(write(rw, "held", 4), 4);
	CHECK_SYS(pipe(go));
	fflush(stdout);
	child = fork();
	CHECK_SYS(child);
	if (child == 0) {
		int cw = open(c, O_WRONLY);
		char x;

		CHECK_SYS(cw);
		close(go[1]);
		CHECK_INT(write(cw, "before", 6), 6);
		CHECK_INT(read(go[0], &x, 1), 1);
		CHECK_INT(write(cw, " after", 6), 6);
		_exit(0);
	}
	close(go[0]);
	crd = open(c, O_RDONLY);
	CHECK_SYS(crd);
	/* The child's first bytes are in the FIFO before the sync. */
	for (int i = 0; i < 500; i++) {
		int avail = 0;
		struct timespec t = { 0, 10000000 };

		CHECK_SYS(ioctl(crd, FIONREAD, &avail));
		if (avail == 6)
			break;
		nanosleep(&t, NULL);
	}
	printf("three FIFOs with bytes in flight\n");

	cap_sync();

	n = read(rd, buf, sizeof(buf));
	printf("a: %.*s\n", (int)n, buf);
	CHECK(read(rd, buf, sizeof(buf)) < 0 && errno == EAGAIN);
	CHECK_INT(write(wr, "more", 4), 4);
	n = read(rd, buf, sizeof(buf));
	printf("a again: %.*s\n", (int)n, buf);
	n = read(rw, buf, sizeof(buf));
	printf("b (read-write): %.*s\n", (int)n, buf);
	CHECK_INT(write(go[1], "g", 1), 1);
	CHECK_INT(waitpid(child, &st, 0), child);
	n = read(crd, buf, sizeof(buf));
	printf("c, from the child: %.*s\n", (int)n, buf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_INT(system(cmd), 0);
	return 0;
}
