/* Each child's fds 0 and 1 come back as what they were: a child whose stdin and stdout are pipes from the parent (dup2) still talks through them after the resume (it does not get esky's stdio), and a child that kept the inherited stdout still writes into the program's output, in order with the parent's. */
#define _GNU_SOURCE
#include <sys/wait.h>

#include "cap.h"

#define PIPED_STATUS 12
#define INHERIT_STATUS 13

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

/* Read one line (without its newline) from fd into buf; "" at EOF. */
static void read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	int c;

	while ((c = get_byte(fd)) >= 0 && c != '\n')
		if (n < size - 1)
			buf[n++] = (char)c;
	buf[n] = '\0';
}

/* The piped child: lines from its fd 0, answers on its fd 1, until "bye"
 * (or EOF: the parent is gone). */
static void piped_child(void)
{
	char line[64], out[96];

	for (;;) {
		read_line(0, line, sizeof(line));
		if (strcmp(line, "bye") == 0)
			_exit(PIPED_STATUS);
		if (!line[0])
			_exit(3);
		snprintf(out, sizeof(out), "piped child got %s\n", line);
		cap_write_all(1, out, strlen(out));
	}
}

/* The child on the inherited stdout: at each 'p' on req, one line on fd 1
 * (the program's stdout), then 'd' on ans. */
static void inherit_child(int req, int ans)
{
	for (int n = 1;; n++) {
		char out[64];

		switch (get_byte(req)) {
		case 'p':
			snprintf(out, sizeof(out),
				 "line %d from the child on inherited stdout\n",
				 n);
			cap_write_all(1, out, strlen(out));
			put_byte(ans, 'd');
			break;
		case 'x':
			_exit(INHERIT_STATUS);
		default:
			_exit(3);
		}
	}
}

static void talk(int to, int from, const char *word)
{
	char line[80], expect[80];

	cap_write_all(to, word, strlen(word));
	cap_write_all(to, "\n", 1);
	read_line(from, line, sizeof(line));
	snprintf(expect, sizeof(expect), "piped child got %s", word);
	CHECK_STR(line, expect);
	printf("%s\n", line);
}

/* The other child prints a line between ours: flush ours first. */
static void let_print(int req, int ans)
{
	fflush(stdout);
	put_byte(req, 'p');
	CHECK_INT(get_byte(ans), 'd');
}

int main(void)
{
	int in[2], out[2], req[2], ans[2], st;
	pid_t piped, inherit;

	CHECK_SYS(pipe(in));
	CHECK_SYS(pipe(out));
	fflush(stdout);
	piped = fork();
	CHECK_SYS(piped);
	if (piped == 0) {
		CHECK_SYS(dup2(in[0], 0));
		CHECK_SYS(dup2(out[1], 1));
		for (int fd = 3; fd < 256; fd++)
			close(fd);
		piped_child();
	}
	close(in[0]);
	close(out[1]);

	CHECK_SYS(pipe(req));
	CHECK_SYS(pipe(ans));
	fflush(stdout);
	inherit = fork();
	CHECK_SYS(inherit);
	if (inherit == 0) {
		for (int fd = 3; fd < 256; fd++)
			if (fd != req[0] && fd != ans[1])
				close(fd);
		inherit_child(req[0], ans[1]);
	}
	close(req[0]);
	close(ans[1]);

	talk(in[1], out[0], "one");
	let_print(req[1], ans[0]);
	printf("before the sync\n");

	cap_sync();

	printf("after the resume\n");
	talk(in[1], out[0], "two");
	let_print(req[1], ans[0]);
	cap_write_all(in[1], "bye\n", 4);
	put_byte(req[1], 'x');
	CHECK_INT(waitpid(piped, &st, 0), piped);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), PIPED_STATUS);
	CHECK_INT(waitpid(inherit, &st, 0), inherit);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), INHERIT_STATUS);
	printf("both children reaped\n");
	return 0;
}
