/* Children that called exec are frozen and resumed with their parent: the test program exec'd again in "child mode" (/proc/self/exe) answers through its pipes with its pid and parent and dies of the parent's SIGTERM (waitpid sees WTERMSIG SIGTERM); /bin/sh -c 'read x; ...' blocked on a pipe reads the parent's line after the resume and exits 4. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "cap.h"

#define SH_STATUS 4

/* The exec'd child's answer to a request 'q'. */
struct answer {
	pid_t pid, ppid;
	pid_t saved_pid;	/* getpid() right after the exec */
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

/* Child mode: cap-tree-exec child REQ_FD ANS_FD PARENT_PID. Blocked in
 * read(REQ_FD) between requests; EOF (the parent is gone) ends it. */
static int child_mode(char **argv)
{
	int req = atoi(argv[2]), ans = atoi(argv[3]);
	pid_t parent = atoi(argv[4]), me = getpid();

	CHECK_INT(getppid(), parent);
	put_byte(ans, 'r');
	for (;;) {
		struct answer a;

		switch (get_byte(req)) {
		case 'q':
			a = (struct answer){ .pid = getpid(), .ppid = getppid(),
					     .saved_pid = me };
			CHECK_INT(write(ans, &a, sizeof(a)), sizeof(a));
			break;
		default:
			_exit(3);
		}
	}
}

static void ask(int req, int ans, pid_t pid, pid_t parent)
{
	struct answer a;

	put_byte(req, 'q');
	CHECK_INT(read(ans, &a, sizeof(a)), sizeof(a));
	CHECK_INT(a.pid, pid);
	CHECK_INT(a.saved_pid, pid);
	CHECK_INT(a.ppid, parent);
}

/* Read one line (without its newline) from fd into buf. */
static void read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	int c;

	while ((c = get_byte(fd)) >= 0 && c != '\n')
		if (n < size - 1)
			buf[n++] = (char)c;
	buf[n] = '\0';
}

int main(int argc, char **argv)
{
	int req[2], ans[2], sh_in[2], sh_out[2], st;
	pid_t me = getpid(), pid, sh;
	char line[64];

	if (argc == 5 && strcmp(argv[1], "child") == 0)
		return child_mode(argv);
	CHECK_INT(argc, 1);

	/* 1. The test program exec'd again, in child mode. */
	CHECK_SYS(pipe(req));
	CHECK_SYS(pipe(ans));
	fflush(stdout);
	pid = fork();
	CHECK_SYS(pid);
	if (pid == 0) {
		char a1[16], a2[16], a3[16];

		close(req[1]);
		close(ans[0]);
		snprintf(a1, sizeof(a1), "%d", req[0]);
		snprintf(a2, sizeof(a2), "%d", ans[1]);
		snprintf(a3, sizeof(a3), "%d", (int)me);
		execl("/proc/self/exe", argv[0], "child", a1, a2, a3,
		      (char *)NULL);
		cap_fail(__FILE__, __LINE__, "exec /proc/self/exe: %s",
			 strerror(errno));
	}
	close(req[0]);
	close(ans[1]);
	CHECK_INT(get_byte(ans[0]), 'r');
	ask(req[1], ans[0], pid, me);
	printf("exec'd child started\n");

	/* 2. A shell blocked reading a line from a pipe. */
	CHECK_SYS(pipe2(sh_in, O_CLOEXEC));
	CHECK_SYS(pipe2(sh_out, O_CLOEXEC));
	fflush(stdout);
	sh = fork();
	CHECK_SYS(sh);
	if (sh == 0) {
		CHECK_SYS(dup2(sh_in[0], 0));
		CHECK_SYS(dup2(sh_out[1], 1));
		/* Not the other child's pipes: its EOF is the parent's death. */
		close(req[1]);
		close(ans[0]);
		execl("/bin/sh", "sh", "-c",
		      "echo ready; read x; echo \"got $x\"; exit 4",
		      (char *)NULL);
		cap_fail(__FILE__, __LINE__, "exec /bin/sh: %s",
			 strerror(errno));
	}
	close(sh_in[0]);
	close(sh_out[1]);
	read_line(sh_out[0], line, sizeof(line));
	CHECK_STR(line, "ready");
	printf("sh started\n");

	cap_sync();

	CHECK_INT(getpid(), me);
	CHECK_INT(waitpid(pid, &st, WNOHANG), 0);
	CHECK_INT(waitpid(sh, &st, WNOHANG), 0);
	ask(req[1], ans[0], pid, me);
	printf("exec'd child: same pid and parent: ok\n");
	CHECK_SYS(kill(pid, SIGTERM));
	CHECK_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st));
	CHECK_INT(WTERMSIG(st), SIGTERM);
	printf("exec'd child: killed by SIGTERM\n");

	CHECK_INT(write(sh_in[1], "hello\n", 6), 6);
	read_line(sh_out[0], line, sizeof(line));
	CHECK_STR(line, "got hello");
	CHECK_INT(waitpid(sh, &st, 0), sh);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), SH_STATUS);
	printf("sh: read \"hello\", exit status %d\n", WEXITSTATUS(st));
	CHECK_INT(waitpid(-1, &st, WNOHANG), -1);
	CHECK_INT(errno, ECHILD);
	return 0;
}
