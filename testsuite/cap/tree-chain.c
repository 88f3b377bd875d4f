/* Ten checkpoints in a row of a parent with two children alive across all of them (each resumed tree is checkpointed again): at every step each child keeps its pid and parent and carries its work on from where it was (a PRNG and a list on its heap), one of them forks and reaps a short-lived grandchild, and the parent's own state is right too. */
#define _GNU_SOURCE
#include <sys/wait.h>

#include "cap.h"

#define STEPS 10
#define NCHILD 2
#define ROUNDS 1000		/* PRNG steps per step */

/* A child's answer to a step request. */
struct answer {
	pid_t pid, ppid;
	int step;
	unsigned long long state;	/* its PRNG */
	unsigned long long sum;		/* of its list, checked */
	int nodes;
};

struct node {
	struct node *next;
	unsigned long long value;
	unsigned char pad[120];
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

static unsigned long long seed_of(int idx)
{
	return 1000 + (unsigned long long)idx;
}

/* Child idx: at each 's' does one more step of its work and answers. */
static void child(int idx, int req, int ans)
{
	unsigned long long s = seed_of(idx);
	struct node *head = NULL;
	pid_t me = getpid(), parent = getppid();
	int st;

	put_byte(ans, 'r');
	for (int step = 1;; step++) {
		struct answer a = { .step = step };
		struct node *n;
		int c = get_byte(req);

		if (c == 'x')
			_exit(30 + idx);
		if (c != 's')
			_exit(3);
		CHECK_INT(getpid(), me);
		CHECK_INT(getppid(), parent);
		for (int i = 0; i < ROUNDS; i++)
			cap_rand(&s);
		n = malloc(sizeof(*n));
		CHECK(n != NULL);
		n->value = s;
		cap_fill(n->pad, sizeof(n->pad), s);
		n->next = head;
		head = n;
		for (n = head; n; n = n->next) {
			CHECK_FILL(n->pad, sizeof(n->pad), n->value);
			a.sum += n->value;
			a.nodes++;
		}
		if (idx == 0) {
			/* A process made after (each) resume, reaped. */
			pid_t g = fork();

			CHECK_SYS(g);
			if (g == 0)
				_exit(step);
			CHECK_INT(waitpid(g, &st, 0), g);
			CHECK(WIFEXITED(st));
			CHECK_INT(WEXITSTATUS(st), step);
		}
		a.pid = getpid();
		a.ppid = getppid();
		a.state = s;
		CHECK_INT(write(ans, &a, sizeof(a)), sizeof(a));
	}
}

int main(void)
{
	int req[NCHILD], ans[NCHILD], st;
	pid_t pids[NCHILD], me = getpid();
	unsigned long long expect[NCHILD], mine = 77, mine_expect = 77;

	for (int i = 0; i < NCHILD; i++) {
		int rq[2], an[2];

		CHECK_SYS(pipe(rq));
		CHECK_SYS(pipe(an));
		fflush(stdout);
		pids[i] = fork();
		CHECK_SYS(pids[i]);
		if (pids[i] == 0) {
			/* Only its own pipes: EOF when the parent is gone. */
			for (int fd = 3; fd < 256; fd++)
				if (fd != rq[0] && fd != an[1])
					close(fd);
			child(i, rq[0], an[1]);
		}
		close(rq[0]);
		close(an[1]);
		req[i] = rq[1];
		ans[i] = an[0];
		CHECK_INT(get_byte(ans[i]), 'r');
		expect[i] = seed_of(i);
	}
	printf("%d children\n", NCHILD);

	for (int step = 1; step <= STEPS; step++) {
		unsigned long long sum[NCHILD] = { 0 };

		for (int i = 0; i < NCHILD; i++)
			put_byte(req[i], 's');
		for (int i = 0; i < NCHILD; i++) {
			struct answer a;

			CHECK_INT(read(ans[i], &a, sizeof(a)), sizeof(a));
			for (int r = 0; r < ROUNDS; r++)
				cap_rand(&expect[i]);
			CHECK_INT(a.step, step);
			CHECK_INT(a.pid, pids[i]);
			CHECK_INT(a.ppid, me);
			CHECK_INT(a.state, expect[i]);
			CHECK_INT(a.nodes, step);
			sum[i] = a.sum;
		}
		cap_rand(&mine);
		printf("step %d: %llx %llx %llx\n", step, sum[0], sum[1], mine);

		/* Both children blocked in read on their pipes. */
		cap_sync();

		CHECK_INT(getpid(), me);
		for (int i = 0; i < NCHILD; i++)
			CHECK_INT(waitpid(pids[i], &st, WNOHANG), 0);
		cap_rand(&mine_expect);
		CHECK_INT(mine, mine_expect);
	}

	for (int i = 0; i < NCHILD; i++) {
		put_byte(req[i], 'x');
		CHECK_INT(waitpid(pids[i], &st, 0), pids[i]);
		CHECK(WIFEXITED(st));
		CHECK_INT(WEXITSTATUS(st), 30 + i);
	}
	CHECK_INT(waitpid(-1, &st, WNOHANG), -1);
	CHECK_INT(errno, ECHILD);
	printf("both children reaped after %d steps\n", STEPS);
	return 0;
}
