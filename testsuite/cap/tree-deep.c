/* A chain of generations (child, grandchild, great-grandchild) comes back whole: after the resume each process still has its pid and its parent (getppid), a request passed down the chain comes back up with every generation's answer, and each parent reaps its own child's exit status. */
#define _GNU_SOURCE
#include <sys/wait.h>

#include "cap.h"

#define DEPTH 3			/* generations below the main process */

/* One generation's part of the answer. */
struct ids {
	pid_t pid, ppid;
	pid_t saved_pid, saved_ppid;	/* as they were when it started */
};

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

/* Read exactly n bytes (the answer of a generation comes in two writes). */
static void read_full(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			cap_fail(__FILE__, __LINE__, "read: %s",
				 r ? strerror(errno) : "EOF");
		p += r;
		n -= (size_t)r;
	}
}

/* Generation level's exit status. */
static int status_of(int level)
{
	return 20 + level;
}

/*
 * Start generation level (1..DEPTH) as a child of the caller, talking
 * through *req and *ans (the caller's ends). Each generation starts the
 * next, then answers 'q' with its ids followed by those of the ones below,
 * and on 'x' passes it down, reaps its child and exits.
 */
static pid_t start(int level, int *req, int *ans)
{
	int rq[2], an[2];
	pid_t pid, parent = getpid();

	CHECK_SYS(pipe(rq));
	CHECK_SYS(pipe(an));
	fflush(stdout);
	pid = fork();
	CHECK_SYS(pid);
	if (pid) {
		close(rq[0]);
		close(an[1]);
		*req = rq[1];
		*ans = an[0];
		return pid;
	}

	/* In generation level: only its own pipes, up and down. */
	struct ids me = { .saved_pid = getpid(), .saved_ppid = parent };
	int up_req = rq[0], up_ans = an[1], down_req = -1, down_ans = -1, st;
	pid_t child = 0;

	for (int fd = 3; fd < 256; fd++)
		if (fd != up_req && fd != up_ans)
			close(fd);
	CHECK_INT(getppid(), parent);
	if (level < DEPTH) {
		child = start(level + 1, &down_req, &down_ans);
		CHECK_INT(get_byte(down_ans), 'r');
	}
	put_byte(up_ans, 'r');
	for (;;) {
		struct ids below[DEPTH];
		int n = DEPTH - level;

		switch (get_byte(up_req)) {
		case 'q':
			me.pid = getpid();
			me.ppid = getppid();
			if (child) {
				put_byte(down_req, 'q');
				read_full(down_ans, below,
					  (size_t)n * sizeof(below[0]));
			}
			CHECK_INT(write(up_ans, &me, sizeof(me)), sizeof(me));
			if (child)
				CHECK_INT(write(up_ans, below,
						(size_t)n * sizeof(below[0])),
					  (size_t)n * sizeof(below[0]));
			break;
		case 'x':
			if (child) {
				put_byte(down_req, 'x');
				CHECK_INT(waitpid(child, &st, 0), child);
				CHECK(WIFEXITED(st));
				CHECK_INT(WEXITSTATUS(st), status_of(level + 1));
			}
			_exit(status_of(level));
		default:
			_exit(3);
		}
	}
}

/* Ask the chain for its ids; the first time, fill pids[] from them. */
static void check_chain(int req, int ans, pid_t *pids)
{
	struct ids got[DEPTH];

	put_byte(req, 'q');
	read_full(ans, got, sizeof(got));
	for (int i = 0; i < DEPTH; i++) {
		if (!pids[i + 1])
			pids[i + 1] = got[i].saved_pid;
		CHECK_INT(got[i].pid, pids[i + 1]);
		CHECK_INT(got[i].saved_pid, pids[i + 1]);
		CHECK_INT(got[i].ppid, pids[i]);
		CHECK_INT(got[i].saved_ppid, pids[i]);
	}
}

int main(void)
{
	pid_t pids[DEPTH + 1] = { getpid() }, child;
	int req, ans, st;

	child = start(1, &req, &ans);
	CHECK_INT(get_byte(ans), 'r');
	check_chain(req, ans, pids);
	CHECK_INT(pids[1], child);
	printf("%d generations below the main process\n", DEPTH);

	cap_sync();

	CHECK_INT(getpid(), pids[0]);
	check_chain(req, ans, pids);
	printf("after the resume: each pid and parent: ok\n");
	put_byte(req, 'x');
	CHECK_INT(waitpid(child, &st, 0), child);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), status_of(1));
	printf("each generation reaped its child\n");
	return 0;
}
