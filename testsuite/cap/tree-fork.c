/* A child forked without exec is frozen and resumed with its parent: both keep their pids, the child's getppid() is still the parent, it answers a request through pipes after the resume from the memory it had, and the parent's waitpid() collects its exit status. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>

#include "cap.h"

#define CHILD_STATUS 42
#define HEAP_SIZE (256 * 1024)
#define HEAP_SEED 0x7265656672ULL

/* The child's answer to a request 'q'. */
struct answer {
	pid_t pid;		/* getpid() */
	pid_t ppid;		/* getppid() */
	pid_t saved_pid;	/* getpid() when it started */
	unsigned long long sum;	/* of its heap buffer, checked */
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

static unsigned long long sum_of(const unsigned char *p, size_t n)
{
	unsigned long long s = 0;

	for (size_t i = 0; i < n; i++)
		s = s * 31 + p[i];
	return s;
}

/* The child: blocked in read(req) between requests; EOF (the parent is
 * gone, killed by the harness) ends it quietly. */
static void child(int req, int ans)
{
	pid_t me = getpid();
	unsigned char *heap = malloc(HEAP_SIZE);
	unsigned long long sum;

	CHECK(heap != NULL);
	cap_fill(heap, HEAP_SIZE, HEAP_SEED);
	sum = sum_of(heap, HEAP_SIZE);
	put_byte(ans, 'r');
	for (;;) {
		struct answer a;

		switch (get_byte(req)) {
		case 'q':
			CHECK_FILL(heap, HEAP_SIZE, HEAP_SEED);
			a = (struct answer){ .pid = getpid(), .ppid = getppid(),
					     .saved_pid = me,
					     .sum = sum_of(heap, HEAP_SIZE) };
			CHECK_INT(a.sum, sum);
			CHECK_INT(write(ans, &a, sizeof(a)), sizeof(a));
			break;
		case 'x':
			_exit(CHILD_STATUS);
		default:
			_exit(3);
		}
	}
}

/* Ask the child for its ids and check them against what fork() gave. */
static void ask(int req, int ans, pid_t pid, pid_t parent)
{
	struct answer a;

	put_byte(req, 'q');
	CHECK_INT(read(ans, &a, sizeof(a)), sizeof(a));
	CHECK_INT(a.pid, pid);
	CHECK_INT(a.saved_pid, pid);
	CHECK_INT(a.ppid, parent);
}

int main(void)
{
	int req[2], ans[2], st;
	pid_t me = getpid(), pid;

	CHECK_SYS(pipe(req));
	CHECK_SYS(pipe(ans));
	fflush(stdout);
	pid = fork();
	CHECK_SYS(pid);
	if (pid == 0) {
		close(req[1]);
		close(ans[0]);
		child(req[0], ans[1]);
	}
	close(req[0]);
	close(ans[1]);
	CHECK_INT(get_byte(ans[0]), 'r');
	ask(req[1], ans[0], pid, me);
	printf("child started, blocked in read on a pipe\n");

	cap_sync();

	CHECK_INT(getpid(), me);
	CHECK_INT(waitpid(pid, &st, WNOHANG), 0);	/* still alive */
	ask(req[1], ans[0], pid, me);
	printf("after the resume: same pids, the child's parent, its memory: ok\n");
	put_byte(req[1], 'x');
	CHECK_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), CHILD_STATUS);
	CHECK_INT(waitpid(-1, &st, WNOHANG), -1);
	CHECK_INT(errno, ECHILD);
	printf("child reaped: exit status %d\n", WEXITSTATUS(st));
	return 0;
}
