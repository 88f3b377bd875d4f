/* Process groups and sessions inside the tree survive: a child leading a group of its own (setpgid) with a grandchild in it keeps that group (getpgid of each, from inside and from the parent), kill(-pgid, SIGUSR1) after the resume reaches both and nobody else (each reports what it received through its pipe), and a child that called setsid() still leads its session and group. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>

#include "cap.h"

#define G_STATUS 5		/* the grandchild's exit status */
#define C_STATUS 6		/* the group leader's, once it reaped G */
#define S_STATUS 7		/* the session leader's */

/* A process's answer to a request 'q'. */
struct answer {
	pid_t pid, ppid, pgrp, sid;
	int usr1;		/* SIGUSR1 received so far */
};

struct peer {
	pid_t pid;
	int req, ans;		/* the parent's ends */
};

static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

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

/* Close every fd above stdio but a and b: a process holds only its own
 * pipes, so that each sees EOF when the one that talks to it is gone. */
static void close_others(int a, int b)
{
	for (int fd = 3; fd < 256; fd++)
		if (fd != a && fd != b)
			close(fd);
}

/* Answer requests until 'x' (then reap child, if any, and exit with
 * status) or EOF (the parent is gone: exit quietly). A SIGUSR1 is counted
 * by the handler and shows in the next answer: a signal pending when the
 * request arrives is handled before read() returns to us. */
static void worker(int req, int ans, pid_t child, int child_status,
		   int status)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	int st;

	sigemptyset(&sa.sa_mask);
	CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));
	put_byte(ans, 'r');
	for (;;) {
		struct answer a;

		switch (get_byte(req)) {
		case 'q':
			a = (struct answer){ .pid = getpid(), .ppid = getppid(),
					     .pgrp = getpgrp(),
					     .sid = getsid(0),
					     .usr1 = usr1_count };
			CHECK_INT(write(ans, &a, sizeof(a)), sizeof(a));
			break;
		case 'x':
			if (child > 0) {
				CHECK_INT(waitpid(child, &st, 0), child);
				CHECK(WIFEXITED(st));
				CHECK_INT(WEXITSTATUS(st), child_status);
			}
			_exit(status);
		default:
			_exit(3);
		}
	}
}

static void ask(const struct peer *p, struct answer *a)
{
	put_byte(p->req, 'q');
	CHECK_INT(read(p->ans, a, sizeof(*a)), sizeof(*a));
}

/* The ids of the group leader c, its child g and the session leader s. */
static void check_ids(const struct peer *c, struct peer *g,
		      const struct peer *s, int usr1)
{
	struct answer ac, ag, as;
	pid_t me = getpid(), sid = getsid(0);

	ask(c, &ac);
	ask(g, &ag);
	ask(s, &as);
	if (!g->pid)
		g->pid = ag.pid;
	/* The group leader and its child, in the parent's session. */
	CHECK_INT(ac.pid, c->pid);
	CHECK_INT(ac.ppid, me);
	CHECK_INT(ac.pgrp, c->pid);
	CHECK_INT(ac.sid, sid);
	CHECK_INT(ag.pid, g->pid);
	CHECK_INT(ag.ppid, c->pid);
	CHECK_INT(ag.pgrp, c->pid);
	CHECK_INT(ag.sid, sid);
	CHECK_INT(getpgid(c->pid), c->pid);
	CHECK_INT(getpgid(g->pid), c->pid);
	CHECK(getpgrp() != c->pid);
	/* The session leader. */
	CHECK_INT(as.pid, s->pid);
	CHECK_INT(as.ppid, me);
	CHECK_INT(as.pgrp, s->pid);
	CHECK_INT(as.sid, s->pid);
	CHECK_INT(getpgid(s->pid), s->pid);
	CHECK_INT(getsid(s->pid), s->pid);
	CHECK(sid != s->pid);
	/* Who received SIGUSR1. */
	CHECK_INT(ac.usr1, usr1);
	CHECK_INT(ag.usr1, usr1);
	CHECK_INT(as.usr1, 0);
	CHECK_INT(usr1_count, 0);
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	int c_req[2], c_ans[2], g_req[2], g_ans[2], s_req[2], s_ans[2], st;
	struct peer c, g, s;
	pid_t gpid;

	sigemptyset(&sa.sa_mask);
	CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));
	CHECK_SYS(pipe(c_req));
	CHECK_SYS(pipe(c_ans));
	CHECK_SYS(pipe(g_req));
	CHECK_SYS(pipe(g_ans));

	/* The group leader C and, in its group, its child G. */
	fflush(stdout);
	c.pid = fork();
	CHECK_SYS(c.pid);
	if (c.pid == 0) {
		CHECK_SYS(setpgid(0, 0));
		gpid = fork();
		CHECK_SYS(gpid);
		if (gpid == 0) {
			close_others(g_req[0], g_ans[1]);
			worker(g_req[0], g_ans[1], 0, 0, G_STATUS);
		}
		close_others(c_req[0], c_ans[1]);
		worker(c_req[0], c_ans[1], gpid, G_STATUS, C_STATUS);
	}
	/* Either of the two calls may come first (the shell's way). */
	if (setpgid(c.pid, c.pid) && errno != EACCES)
		CHECK_SYS(-1);
	c.req = c_req[1];
	c.ans = c_ans[0];
	g = (struct peer){ .req = g_req[1], .ans = g_ans[0] };
	close(c_req[0]);
	close(c_ans[1]);
	close(g_req[0]);
	close(g_ans[1]);
	CHECK_INT(get_byte(c.ans), 'r');
	CHECK_INT(get_byte(g.ans), 'r');

	/* The session leader S. */
	CHECK_SYS(pipe(s_req));
	CHECK_SYS(pipe(s_ans));
	fflush(stdout);
	s.pid = fork();
	CHECK_SYS(s.pid);
	if (s.pid == 0) {
		CHECK_INT(setsid(), getpid());
		close_others(s_req[0], s_ans[1]);
		worker(s_req[0], s_ans[1], 0, 0, S_STATUS);
	}
	s.req = s_req[1];
	s.ans = s_ans[0];
	close(s_req[0]);
	close(s_ans[1]);
	CHECK_INT(get_byte(s.ans), 'r');

	check_ids(&c, &g, &s, 0);
	printf("a group of two, a session of one\n");

	cap_sync();

	check_ids(&c, &g, &s, 0);
	printf("after the resume: the same groups and session: ok\n");
	CHECK_SYS(kill(-c.pid, SIGUSR1));
	check_ids(&c, &g, &s, 1);
	printf("kill(-pgid, SIGUSR1) reached the group and nobody else: ok\n");

	put_byte(g.req, 'x');
	put_byte(c.req, 'x');
	put_byte(s.req, 'x');
	CHECK_INT(waitpid(c.pid, &st, 0), c.pid);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), C_STATUS);
	CHECK_INT(waitpid(s.pid, &st, 0), s.pid);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), S_STATUS);
	printf("all reaped\n");
	return 0;
}
