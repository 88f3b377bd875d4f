/*
 * End-to-end tests of the esky command on bad input and unsupported
 * programs (issue 3). Each case is one CTest test:
 *
 *   errors_test [-v] --esky ESKY --victim PROG --victim-b PROG CASE
 *
 * (-v prints what each command said and its exit status.)
 * PROG is errors-victim (errors-victim.c); the -b build differs only in a
 * string, hence in its build-id. Every refusal must give one line on
 * stderr, `esky: <command>: ...`, naming the object and the cause (checked
 * with a regular expression over the whole line), a nonzero exit status,
 * no program output (a resume gets "go" on its stdin in advance: a program
 * resumed by mistake would say so), no process left in esky's process
 * group, and nothing lost: the checkpoint file unchanged and no other file
 * appearing in the directory (a temporary file, a half-written checkpoint).
 * A refused checkpoint must leave the program running unharmed: it is told
 * "go" afterwards and must print the right lines and exit 0.
 *
 * Every wait is for an event: a line on a pipe, a process exit (pidfd).
 * Each wait gives up after WAIT_MS and fails the test (kills what was
 * started); no test decides anything by elapsed time otherwise.
 *
 * Cases: see the table at the end. Exit status: 0 pass, 1 fail, 77 skip,
 * 99 harness error. The work directory is kept on failure.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image_format.h"

#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_SKIP 77
#define EXIT_HARNESS 99

#define WAIT_MS 10000		/* any single wait; far above what any step needs */
#define MAX_PROCS 16

static const char *esky, *victim, *victim_b;
static char dir[4096];
static unsigned failures;
static bool verbose;

/* ---- reporting ---- */

static void fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	failures++;
	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)

static void cleanup(void);

static void harness_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void harness_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "errors_test: harness error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	fprintf(stderr, "work directory %s kept\n", dir);
	exit(EXIT_HARNESS);
}

static void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void skip(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "SKIP: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(EXIT_SKIP);
}

/* ---- buffers, files, paths ---- */

struct buf {
	char *data;
	size_t len, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->data = realloc(b->data, b->cap);
		if (!b->data)
			harness_error("out of memory");
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		harness_error("out of memory");
	return s;
}

static char *in_dir(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void read_file(const char *path, struct buf *b)
{
	char chunk[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	b->len = 0;
	buf_add(b, "", 0);
	if (fd < 0)
		harness_error("%s: %s", path, strerror(errno));
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(b, chunk, (size_t)n);
	close(fd);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len) || close(fd) < 0)
		harness_error("cannot write %s: %s", path, strerror(errno));
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	struct buf b = { 0 };

	read_file(from, &b);
	unlink(to);
	write_file(to, b.data, b.len);
	if (chmod(to, mode) < 0)
		harness_error("chmod %s: %s", to, strerror(errno));
	free(b.data);
}

static void flip_byte(const char *path, uint64_t off)
{
	unsigned char c;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0 || pread(fd, &c, 1, (off_t)off) != 1)
		harness_error("%s: cannot read byte %llu", path, (unsigned long long)off);
	c ^= 0x40;
	if (pwrite(fd, &c, 1, (off_t)off) != 1)
		harness_error("%s: cannot write byte %llu", path, (unsigned long long)off);
	close(fd);
}

/* The sorted names in the work directory, one a line (what must not change). */
static char *listing(void)
{
	struct dirent **names;
	struct buf b = { 0 };
	int n = scandir(dir, &names, NULL, alphasort);

	if (n < 0)
		harness_error("scandir %s: %s", dir, strerror(errno));
	buf_add(&b, "", 0);
	for (int i = 0; i < n; i++) {
		buf_add(&b, names[i]->d_name, strlen(names[i]->d_name));
		buf_add(&b, "\n", 1);
		free(names[i]);
	}
	free(names);
	return b.data;
}

/* A regular expression that matches s literally. */
static char *re_quote(const char *s)
{
	struct buf b = { 0 };

	buf_add(&b, "", 0);
	for (; *s; s++) {
		if (strchr("\\^$.[]|()*+?{}", *s))
			buf_add(&b, "\\", 1);
		buf_add(&b, s, 1);
	}
	return b.data;
}

static bool line_matches(const char *re, const char *s)
{
	regex_t r;
	bool m;

	if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB))
		harness_error("bad regular expression: %s", re);
	m = regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return m;
}

/* ---- processes ---- */

struct proc {
	const char *name;     /* for messages */
	pid_t pid;            /* also its process group */
	int pidfd;
	int in;               /* its stdin, or -1 */
	int fd[2];            /* its stdout and stderr, -1 at end of file */
	struct buf b[2];
	size_t seen[2];       /* bytes of b already matched by wait_line */
	bool reaped;
	int status;
};

enum { OUT = 0, ERR = 1 };

/*
 * The processes spawned, for cleanup() at exit. Every struct proc is a
 * static variable: cleanup() runs after the function that spawned it has
 * returned (a struct proc on the stack left a dangling pointer here: UBSan
 * saw garbage in reaped, and kill_group() could have killed the process
 * group of whatever number was left there).
 */
static struct proc *procs[MAX_PROCS];

/*
 * Start argv in a new process group with its stdout and stderr on pipes.
 * stdin: input given now and closed (input != NULL), or a pipe kept open
 * (p->in). env: NAME=VALUE strings to add, NULL-terminated, or NULL.
 */
static void spawn(struct proc *p, const char *name, char *const argv[], const char *input,
		  char *const env[])
{
	int in[2], out[2], err[2];

	memset(p, 0, sizeof(*p));
	p->name = name;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		harness_error("pipe: %s", strerror(errno));
	/* Input goes in before the fork: a program that ends at once must not make it EPIPE. */
	if (input && write(in[1], input, strlen(input)) != (ssize_t)strlen(input))
		harness_error("cannot write the input of %s", name);
	p->pid = fork();
	if (p->pid < 0)
		harness_error("fork: %s", strerror(errno));
	if (p->pid == 0) {
		setpgid(0, 0);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		/* nothing of ours (or of ctest's) leaks into the program: fd 3 is its first */
		syscall(SYS_close_range, 3, ~0U, 0);
		for (; env && *env; env++)
			putenv(*env);
		execvp(argv[0], argv);
		dprintf(2, "errors_test: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(EXIT_HARNESS);
	}
	setpgid(p->pid, p->pid);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	p->in = in[1];
	p->fd[OUT] = out[0];
	p->fd[ERR] = err[0];
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (p->pidfd < 0)
		harness_error("pidfd_open: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		buf_add(&p->b[i], "", 0);
		fcntl(p->fd[i], F_SETFL, O_NONBLOCK);
	}
	if (input) {
		close(p->in);
		p->in = -1;
	}
	for (int i = 0; i < MAX_PROCS; i++)
		if (!procs[i] || procs[i] == p) {
			procs[i] = p;
			break;
		}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read what is there; wait up to ms for more. false on timeout. */
static bool pump(struct proc *p, int64_t deadline)
{
	struct pollfd pfd[2];
	int n = 0, map[2];
	int64_t left = deadline - now_ms();

	for (int i = 0; i < 2; i++)
		if (p->fd[i] >= 0) {
			pfd[n].fd = p->fd[i];
			pfd[n].events = POLLIN;
			map[n++] = i;
		}
	if (!n)
		return true;
	if (left <= 0)
		return false;
	if (poll(pfd, (nfds_t)n, (int)left) <= 0)
		return now_ms() < deadline;
	for (int k = 0; k < n; k++) {
		char chunk[4096];
		ssize_t r;

		if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		r = read(pfd[k].fd, chunk, sizeof(chunk));
		if (r > 0) {
			buf_add(&p->b[map[k]], chunk, (size_t)r);
		} else if (r == 0 || errno != EAGAIN) {
			close(p->fd[map[k]]);
			p->fd[map[k]] = -1;
		}
	}
	return true;
}

/*
 * Wait for a line of stream (OUT or ERR) matching re (whole-line regex);
 * lines before it are passed over. The matching line is returned
 * (malloc'd), or NULL at end of file or timeout.
 */
static char *wait_line(struct proc *p, int stream, const char *re)
{
	int64_t deadline = now_ms() + WAIT_MS;

	for (;;) {
		char *start = p->b[stream].data + p->seen[stream];
		char *nl = strchr(start, '\n');

		if (nl) {
			char *line = strndup(start, (size_t)(nl - start));

			p->seen[stream] += (size_t)(nl - start) + 1;
			if (line_matches(re, line))
				return line;
			free(line);
			continue;
		}
		if (p->fd[stream] < 0 || !pump(p, deadline))
			return NULL;
	}
}

static int exit_code(const struct proc *p)
{
	return WIFEXITED(p->status) ? WEXITSTATUS(p->status) : 128 + WTERMSIG(p->status);
}

static void kill_group(struct proc *p)
{
	if (p->pid > 0)
		kill(-p->pid, SIGKILL);
}

/*
 * Close its stdin, read everything until end of file, reap it. false (and
 * the whole group killed) if that takes more than WAIT_MS.
 */
static bool finish(struct proc *p)
{
	int64_t deadline = now_ms() + WAIT_MS;
	struct pollfd pfd;

	if (p->in >= 0) {
		close(p->in);
		p->in = -1;
	}
	while (p->fd[OUT] >= 0 || p->fd[ERR] >= 0)
		if (!pump(p, deadline))
			goto out_timeout;
	pfd.fd = p->pidfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0)) != 1)
		goto out_timeout;
	if (waitpid(p->pid, &p->status, 0) != p->pid)
		harness_error("waitpid %d: %s", p->pid, strerror(errno));
	p->reaped = true;
	close(p->pidfd);
	if (verbose)
		fprintf(stderr, "-- %s: exit %d\n-- stdout:\n%s-- stderr:\n%s", p->name,
			exit_code(p), buf_str(&p->b[OUT]), buf_str(&p->b[ERR]));
	return true;

out_timeout:
	kill_group(p);
	return false;
}

static void send_line(struct proc *p, const char *s)
{
	if (p->in < 0 || write(p->in, s, strlen(s)) != (ssize_t)strlen(s))
		harness_error("cannot write to the stdin of %s", p->name);
}

/* Something of its process group still alive (a program resumed or started by mistake)? */
static bool group_alive(const struct proc *p)
{
	return kill(-p->pid, 0) == 0;
}

static void cleanup(void)
{
	for (int i = 0; i < MAX_PROCS; i++)
		if (procs[i] && procs[i]->pid > 0) {
			kill_group(procs[i]);
			if (!procs[i]->reaped)
				waitpid(procs[i]->pid, NULL, 0);
			procs[i]->reaped = true;
		}
}

/* Count the lines of a buffer, and whether it ends with a newline. */
static size_t line_count(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* ---- the checks ---- */

/*
 * p ran to its end (finish) and refused: nonzero exit status (or exactly
 * status if >= 0), stderr one line matching re, nothing on stdout, nothing
 * of its group left.
 */
static void check_refusal_at(int line, struct proc *p, bool finished, int status, const char *re)
{
	const char *err = buf_str(&p->b[ERR]);

	if (!finished) {
		fail_at(__FILE__, line, "%s: expected it to end, found it still running after %d ms "
			"(killed); stderr so far: %s", p->name, WAIT_MS, err);
		return;
	}
	if (status >= 0 ? exit_code(p) != status : exit_code(p) == 0)
		fail_at(__FILE__, line, "%s: expected exit status %s%d, found %d", p->name,
			status >= 0 ? "" : "nonzero, not ", status >= 0 ? status : 0, exit_code(p));
	if (line_count(err) != 1 || err[strlen(err) - 1] != '\n')
		fail_at(__FILE__, line, "%s: expected one line on stderr matching /%s/, found %zu "
			"lines: \"%s\"", p->name, re, line_count(err), err);
	else {
		char *l = strndup(err, strlen(err) - 1);

		if (!line_matches(re, l))
			fail_at(__FILE__, line, "%s: expected stderr matching /%s/, found \"%s\"",
				p->name, re, l);
		free(l);
	}
	if (p->b[OUT].len)
		fail_at(__FILE__, line, "%s: expected no program output, found \"%s\"", p->name,
			buf_str(&p->b[OUT]));
	if (group_alive(p)) {
		fail_at(__FILE__, line, "%s: expected no process left, found its process group %d "
			"alive (killed)", p->name, p->pid);
		kill_group(p);
	}
}

#define check_refusal(p, finished, status, ...)                                   \
	do {                                                                       \
		char *re_ = xasprintf(__VA_ARGS__);                                \
		check_refusal_at(__LINE__, p, finished, status, re_);              \
		free(re_);                                                         \
	} while (0)

/* The directory holds the same names as before, and the file the same bytes. */
static void check_nothing_lost_at(int line, const char *before, const char *path,
				  const struct buf *content)
{
	char *after = listing();

	if (strcmp(before, after))
		fail_at(__FILE__, line, "the work directory changed: expected\n%sfound\n%s", before,
			after);
	free(after);
	if (path && content) {
		struct buf now = { 0 };
		struct stat st;

		if (stat(path, &st) < 0) {
			fail_at(__FILE__, line, "%s: expected unchanged, found %s", path, strerror(errno));
			return;
		}
		read_file(path, &now);
		if (now.len != content->len || memcmp(now.data, content->data, now.len))
			fail_at(__FILE__, line, "%s: expected unchanged (%zu bytes), found changed "
				"(%zu bytes)", path, content->len, now.len);
		free(now.data);
	}
}

#define check_nothing_lost(before, path, content) \
	check_nothing_lost_at(__LINE__, before, path, content)

/* Its stdout is exactly expected (lines joined with \n, ending with \n). */
static void check_output_at(int line, const struct proc *p, const char *expected)
{
	if (strcmp(buf_str(&p->b[OUT]), expected))
		fail_at(__FILE__, line, "%s: expected output \"%s\", found \"%s\"", p->name, expected,
			buf_str(&p->b[OUT]));
}

#define check_output(p, expected) check_output_at(__LINE__, p, expected)

/* ---- steps ---- */

/*
 * Take a checkpoint of `victim mode [file]` under esky start, to cp, then
 * let the original finish. prog: the program to run (a copy of victim).
 */
static void make_checkpoint(const char *prog, const char *mode, const char *file, const char *cp)
{
	char *argv[] = { (char *)esky, "start", "-o", (char *)cp, (char *)prog, (char *)mode,
			 (char *)file, NULL };
	static struct proc p;
	char *re = xasprintf("^ready %s", mode), *l;

	spawn(&p, "esky start (making the checkpoint)", argv, NULL, NULL);
	l = wait_line(&p, OUT, re);
	if (!l)
		harness_error("the program did not get ready; stderr: %s", buf_str(&p.b[ERR]));
	free(l);
	kill(p.pid, SIGUSR1);
	l = wait_line(&p, ERR, "^esky: checkpoint written to ");
	if (!l)
		harness_error("no checkpoint written; stderr: %s", buf_str(&p.b[ERR]));
	free(l);
	send_line(&p, "go\n");
	if (!finish(&p) || exit_code(&p) != 0)
		harness_error("the checkpointed program did not finish well (status %d); stderr: %s",
			      exit_code(&p), buf_str(&p.b[ERR]));
	free(re);
}

/* The header of an image file and the offset of one of its sections. */
static const struct esky_img_section *find_section(const struct buf *img, uint32_t type)
{
	const struct esky_img_header *h = (const void *)img->data;

	if (img->len < sizeof(*h))
		harness_error("checkpoint too short");
	for (unsigned i = 0; i < h->section_n && i < ESKY_IMG_MAX_SECTIONS; i++)
		if (h->sections[i].type == type)
			return &h->sections[i];
	return NULL;
}

/* ---- cases: bad input to resume and info ---- */

/*
 * Run `esky resume -f path` (with "go" in advance on its stdin) or
 * `esky info path`: it must refuse with the message re_tail after
 * "esky: CMD: ", and lose nothing.
 */
static void refuse_input_at(int line, const char *cmd, const char *path, const char *re_tail)
{
	char *resume_argv[] = { (char *)esky, "resume", "-f", (char *)path, NULL };
	char *info_argv[] = { (char *)esky, "info", (char *)path, NULL };
	bool resume = !strcmp(cmd, "resume");
	char *before = listing(), *name = xasprintf("esky %s %s", cmd, path), *re;
	struct buf content = { 0 };
	struct stat st;
	static struct proc p;
	bool ok;

	if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
		read_file(path, &content);
	spawn(&p, name, resume ? resume_argv : info_argv, "go\n", NULL);
	ok = finish(&p);
	re = xasprintf("^esky: %s: %s$", cmd, re_tail);
	check_refusal_at(line, &p, ok, -1, re);
	check_nothing_lost_at(line, before, content.data ? path : NULL, &content);
	free(re);
	free(content.data);
	free(before);
	free(name);
}

#define refuse_input(cmd, path, ...)                                  \
	do {                                                          \
		char *t_ = xasprintf(__VA_ARGS__);                    \
		refuse_input_at(__LINE__, cmd, path, t_);             \
		free(t_);                                             \
	} while (0)

static void input_case(const char *cmd, const char *kind)
{
	char *cp = in_dir("cp"), *qcp = re_quote(cp), *damaged = in_dir("damaged");
	char *qd = re_quote(damaged);
	struct buf img = { 0 };

	if (!strcmp(kind, "missing")) {
		refuse_input(cmd, cp, "%s: No such file or directory", qcp);
		goto out;
	}
	if (!strcmp(kind, "empty")) {
		write_file(cp, "", 0);
		refuse_input(cmd, cp, "%s: not an esky checkpoint \\(0 bytes\\)", qcp);
		goto out;
	}
	if (!strcmp(kind, "text")) {
		static const char text[] = "#!/bin/sh\necho this is a shell script, not a checkpoint\n";

		write_file(cp, text, sizeof(text) - 1);
		refuse_input(cmd, cp, "%s: not an esky checkpoint", qcp);
		write_file(cp, "hi\n", 3);
		refuse_input(cmd, cp, "%s: not an esky checkpoint \\(3 bytes\\)", qcp);
		goto out;
	}
	if (!strcmp(kind, "directory")) {
		if (mkdir(cp, 0700) < 0)
			harness_error("mkdir %s: %s", cp, strerror(errno));
		refuse_input(cmd, cp, "%s: not a regular file", qcp);
		goto out;
	}
	if (!strcmp(kind, "fifo")) {
		if (mkfifo(cp, 0600) < 0)
			harness_error("mkfifo %s: %s", cp, strerror(errno));
		refuse_input(cmd, cp, "%s: not a regular file", qcp);
		goto out;
	}

	/* The rest damage a real checkpoint. */
	make_checkpoint(victim, "plain", NULL, cp);
	read_file(cp, &img);
	if (!strcmp(kind, "truncated")) {
		const struct esky_img_section *s = find_section(&img, ESKY_SEC_VMAS);
		size_t cuts[] = { 1, 7, 8, 100, ESKY_IMG_HEADER_SIZE - 1, ESKY_IMG_HEADER_SIZE,
				  ESKY_IMG_HEADER_SIZE + 1, 0, img.len / 2, img.len - 1 };

		if (!s)
			harness_error("no VMAS section in the checkpoint");
		cuts[7] = s->offset + s->size / 2;
		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			size_t n = cuts[i];

			write_file(damaged, img.data, n);
			if (n < 8)
				refuse_input(cmd, damaged, "%s: not an esky checkpoint \\(%zu bytes\\)", qd,
					     n);
			else if (n < ESKY_IMG_HEADER_SIZE)
				refuse_input(cmd, damaged, "%s: truncated: %zu bytes, less than its "
					     "header", qd, n);
			else
				refuse_input(cmd, damaged, "%s: truncated: %zu bytes, the header says "
					     "%zu", qd, n, img.len);
		}
	} else if (!strcmp(kind, "flip-header")) {
		/* magic, version, file size, a section's offset, the pad, the checksum */
		static const uint64_t at[] = { 0, 8, 16, 112 + 32 + 8, 2000, 4095 };

		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			write_file(damaged, img.data, img.len);
			flip_byte(damaged, at[i]);
			if (at[i] < 8)
				refuse_input(cmd, damaged, "%s: not an esky checkpoint", qd);
			else if (at[i] < 12)
				refuse_input(cmd, damaged, "%s: checkpoint format version %u; this esky "
					     "reads %u to %u", qd, ESKY_IMG_VERSION ^ 0x40u,
					     ESKY_IMG_VERSION_MIN, ESKY_IMG_VERSION);
			else
				refuse_input(cmd, damaged, "%s: damaged: header checksum mismatch", qd);
		}
	} else if (!strcmp(kind, "flip-meta")) {
		static const uint32_t types[] = { ESKY_SEC_CORE, ESKY_SEC_STRINGS, ESKY_SEC_VMAS,
						  ESKY_SEC_FILES, ESKY_SEC_FDS, ESKY_SEC_PAGEMAP,
						  ESKY_SEC_PAGEHASH, ESKY_SEC_META };
		static const char *const names[] = { "CORE", "STRINGS", "VMAS", "FILES", "FDS",
						     "PAGEMAP", "PAGEHASH", "META" };

		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			const struct esky_img_section *s = find_section(&img, types[i]);

			if (!s)
				harness_error("no %s section in the checkpoint", names[i]);
			write_file(damaged, img.data, img.len);
			flip_byte(damaged, s->offset + s->size / 2);
			refuse_input(cmd, damaged, "%s: damaged: %s checksum mismatch", qd, names[i]);
		}
	} else if (!strcmp(kind, "flip-pages")) {
		const struct esky_img_section *s = find_section(&img, ESKY_SEC_PAGES);

		if (!s || !s->size)
			harness_error("no page data in the checkpoint");
		/* the first page, the middle of the last one */
		write_file(damaged, img.data, img.len);
		flip_byte(damaged, s->offset);
		refuse_input(cmd, damaged, "%s: damaged: page data for 0x[0-9a-f]+ \\(file offset "
			     "%llu\\) checksum mismatch", qd, (unsigned long long)s->offset);
		write_file(damaged, img.data, img.len);
		flip_byte(damaged, s->offset + s->size - 2000);
		refuse_input(cmd, damaged, "%s: damaged: page data for 0x[0-9a-f]+ \\(file offset "
			     "%llu\\) checksum mismatch", qd,
			     (unsigned long long)(s->offset + s->size - 4096));
	} else if (!strcmp(kind, "junk")) {
		struct buf j = { 0 };

		buf_add(&j, img.data, img.len);
		buf_add(&j, "trailing junk\n", 14);
		write_file(damaged, j.data, j.len);
		refuse_input(cmd, damaged, "%s: damaged: 14 stray bytes at the end", qd);
		free(j.data);
	} else {
		harness_error("unknown input case %s", kind);
	}
out:
	free(img.data);
	free(cp);
	free(qcp);
	free(damaged);
	free(qd);
}

/* ---- cases: files that changed since the checkpoint ---- */

/* Resume cp with "go" on stdin; returns the finished process. */
static bool resume(struct proc *p, const char *cp, bool force, char *const env[])
{
	char *argv[] = { (char *)esky, "resume", "-f", (char *)cp, force ? "--force" : NULL, NULL };

	spawn(p, force ? "esky resume --force" : "esky resume", argv, "go\n", env);
	return finish(p);
}

/* A resume that must work: stdout exactly out, stderr exactly lines matching re (or none). */
static void check_resumed_at(int line, struct proc *p, bool finished, const char *out,
			     const char *re)
{
	const char *err = buf_str(&p->b[ERR]);

	if (!finished) {
		fail_at(__FILE__, line, "%s: expected it to end, found it running after %d ms "
			"(killed)", p->name, WAIT_MS);
		return;
	}
	if (exit_code(p) != 0)
		fail_at(__FILE__, line, "%s: expected exit status 0, found %d; stderr: %s", p->name,
			exit_code(p), err);
	check_output_at(line, p, out);
	if (!re && *err)
		fail_at(__FILE__, line, "%s: expected nothing on stderr, found \"%s\"", p->name, err);
	if (re) {
		char *l = strndup(err, *err ? strlen(err) - 1 : 0);

		if (line_count(err) != 1 || !line_matches(re, l))
			fail_at(__FILE__, line, "%s: expected one line on stderr matching /%s/, found "
				"\"%s\"", p->name, re, err);
		free(l);
	}
}

#define check_resumed(p, finished, out, ...)                                  \
	do {                                                                  \
		char *r_ = xasprintf(__VA_ARGS__);                            \
		check_resumed_at(__LINE__, p, finished, out, *r_ ? r_ : NULL); \
		free(r_);                                                     \
	} while (0)

static void changed_case(const char *kind)
{
	char *cp = in_dir("cp"), *prog = in_dir("prog"), *data = in_dir("data");
	char *qprog = re_quote(prog), *qdata = re_quote(data), *qcp = re_quote(cp), *before;
	struct buf content = { 0 };
	static struct proc p;
	bool ok;

	copy_file(victim, prog, 0755);
	if (!strcmp(kind, "exe-rebuilt") || !strcmp(kind, "exe-appended")) {
		make_checkpoint(prog, "plain", NULL, cp);
		if (!strcmp(kind, "exe-rebuilt")) {
			/* The other build: same layout, another string, another build-id. */
			copy_file(victim_b, prog, 0755);
		} else {
			int fd = open(prog, O_WRONLY | O_APPEND | O_CLOEXEC);

			if (fd < 0 || write(fd, "", 1) != 1 || close(fd) < 0)
				harness_error("cannot append to %s", prog);
		}
		before = listing();
		read_file(cp, &content);
		ok = resume(&p, cp, false, NULL);
		if (!strcmp(kind, "exe-rebuilt"))
			check_refusal(&p, ok, -1, "^esky: resume: %s changed since the checkpoint "
				      "\\(build-id [0-9a-f]{12}\\.\\.\\. -> [0-9a-f]{12}\\.\\.\\.\\); "
				      "--force resumes anyway$", qprog);
		else
			check_refusal(&p, ok, -1, "^esky: resume: %s changed since the checkpoint "
				      "\\(size [0-9]+ -> [0-9]+\\); --force resumes anyway$", qprog);
		check_nothing_lost(before, cp, &content);
		/* --force: a warning, and the program carries on (same code, same layout). */
		ok = resume(&p, cp, true, NULL);
		check_resumed(&p, ok, !strcmp(kind, "exe-rebuilt") ?
			      "go plain variant-b\ndone plain\n" : "go plain variant-a\ndone plain\n",
			      "^esky: warning: %s changed since the checkpoint \\((build-id|size) "
			      "[^)]*\\); resuming anyway \\(--force\\)$", qprog);
		free(before);
	} else if (!strcmp(kind, "mapped-changed") || !strcmp(kind, "mapped-grown") ||
		   !strcmp(kind, "mapped-touched") || !strcmp(kind, "mapped-vanished")) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = 1000000000 } };

		write_file(data, "first line of the data\nsecond line\n", 35);
		make_checkpoint(prog, "mmap", data, cp);
		before = listing();
		read_file(cp, &content);
		if (!strcmp(kind, "mapped-changed")) {
			/* same size, other bytes */
			write_file(data, "FIRST line of the data\nsecond line\n", 35);
			ok = resume(&p, cp, false, NULL);
			check_refusal(&p, ok, -1, "^esky: resume: %s changed since the checkpoint "
				      "\\(modified since the checkpoint \\(mtime changed, contents "
				      "differ\\)\\); --force resumes anyway$", qdata);
		} else if (!strcmp(kind, "mapped-grown")) {
			write_file(data, "first line of the data\nsecond line\nthird\n", 41);
			ok = resume(&p, cp, false, NULL);
			check_refusal(&p, ok, -1, "^esky: resume: %s changed since the checkpoint "
				      "\\(size 35 -> 41\\); --force resumes anyway$", qdata);
		} else if (!strcmp(kind, "mapped-vanished")) {
			unlink(data);
			free(before);
			before = listing();
			ok = resume(&p, cp, false, NULL);
			check_refusal(&p, ok, -1, "^esky: resume: %s: %s vanished since the "
				      "checkpoint$", qcp, qdata);
		} else {
			/* touched: the same bytes written again, another mtime */
			write_file(data, "first line of the data\nsecond line\n", 35);
			if (utimensat(AT_FDCWD, data, ts, 0) < 0)
				harness_error("utimensat: %s", strerror(errno));
			ok = resume(&p, cp, false, NULL);
			check_resumed(&p, ok, "go mmap first line of the data\ndone mmap\n", "%s", "");
		}
		check_nothing_lost(before, cp, &content);
		free(before);
	} else if (!strcmp(kind, "written-grew")) {
		int fd;

		make_checkpoint(prog, "write", data, cp);
		/* The original wrote "before\nafter\n"; someone appends more. */
		fd = open(data, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (fd < 0 || write(fd, "appended by another\n", 20) != 20 || close(fd) < 0)
			harness_error("cannot append to %s", data);
		ok = resume(&p, cp, false, NULL);
		/* at checkpoint time the file had "before\n" (7 bytes); now 33 */
		check_resumed(&p, ok, "go write at 13\ndone write\n",
			      "^esky: %s changed since the checkpoint \\(size 7 -> 33\\): the program "
			      "had it open for writing$", qdata);
	} else if (!strcmp(kind, "socket-stale") || !strcmp(kind, "socket-in-the-way")) {
		/* The original left its socket file: stale, it is replaced; another file is not. */
		make_checkpoint(prog, "listen", data, cp);
		if (!strcmp(kind, "socket-stale")) {
			ok = resume(&p, cp, false, NULL);
			check_resumed(&p, ok, "go listen accepted\ndone listen\n", "%s", "");
		} else {
			unlink(data);
			write_file(data, "not a socket\n", 13);
			before = listing();
			read_file(cp, &content);
			ok = resume(&p, cp, false, NULL);
			check_refusal(&p, ok, -1, "^esky: resume: %s is in the way of the program's "
				      "listening Unix stream socket \\(it is a regular file, not a "
				      "socket\\): move it away to resume$", qdata);
			check_nothing_lost(before, cp, &content);
			free(before);
		}
	} else if (!strcmp(kind, "socket-live")) {
		/* The checkpointed program still listens there: the resume must not take its name. */
		char *argv[] = { (char *)esky, "start", "-o", cp, prog, "listen", data, NULL };
		static struct proc orig;
		char *l;

		spawn(&orig, "esky start", argv, NULL, NULL);
		l = wait_line(&orig, OUT, "^ready listen");
		if (!l)
			harness_error("the program did not get ready; stderr: %s", buf_str(&orig.b[ERR]));
		free(l);
		kill(orig.pid, SIGUSR1);
		l = wait_line(&orig, ERR, "^esky: checkpoint written to ");
		if (!l)
			harness_error("no checkpoint written; stderr: %s", buf_str(&orig.b[ERR]));
		free(l);
		ok = resume(&p, cp, false, NULL);
		check_refusal(&p, ok, -1, "^esky: resume: %s is the name of a live socket "
			      "\\(socket:\\[[0-9]+\\]; does the checkpointed program still run\\?\\): the "
			      "program's listening Unix stream socket cannot be bound there again$",
			      qdata);
		send_line(&orig, "go\n");
		ok = finish(&orig);
		if (!ok || exit_code(&orig) != 0)
			FAIL("the original: expected it to go on listening and finish, found status %d",
			     exit_code(&orig));
		check_output(&orig, "ready listen\ngo listen accepted\ndone listen\n");
	} else {
		harness_error("unknown case %s", kind);
	}
	free(content.data);
	free(cp);
	free(prog);
	free(data);
	free(qprog);
	free(qdata);
	free(qcp);
}

/* ---- cases: checkpoint refused, the program carries on ---- */

static const struct {
	const char *mode;
	const char *re;       /* the cause, after "esky: checkpoint: " */
	const char *go;       /* the program's lines after "go" */
} refusals[] = {
	{ "socket", "fd 3 is a Unix stream socket connected to another process \\(peer "
		    "socket:\\[[0-9]+\\]\\): esky cannot save it",
	  "go socket hello\ndone socket\n" },
	{ "pipe", "fd 3 is a pipe \\(pipe:\\[[0-9]+\\]\\) whose other end is not in the program "
		  "\\(closed, or another process's\\): esky cannot save it",
	  "go pipe in the pipe\ndone pipe\n" },
	{ "inotify", "fd 3 is inotify watching inode [0-9]+ on device [0-9]+:[0-9]+ \\(watch 1\\), "
		     "whose path esky cannot find to watch it again",
	  "go inotify 1\ndone inotify\n" },
	{ "timer", "pid [0-9]+ has 1 POSIX timer \\(timer_create\\): .*", "go timer armed\ndone timer\n" },
};

/*
 * how: "signal" (esky start, SIGUSR1 to esky) or "attach" (the program
 * runs alone, esky checkpoint PID).
 */
static void refuse_case(const char *mode, const char *how)
{
	char *cp = in_dir("cp"), *file = in_dir("file"), *qfile = re_quote(file);
	char *ready = xasprintf("^ready %s$", mode), *before, *l, *re, *cause = NULL, *out;
	size_t k;
	static struct proc p, c;
	bool ok;

	for (k = 0; k < sizeof(refusals) / sizeof(refusals[0]); k++)
		if (!strcmp(refusals[k].mode, mode))
			break;
	if (k == sizeof(refusals) / sizeof(refusals[0]))
		harness_error("unknown refusal %s", mode);
	if (strstr(refusals[k].re, "%s"))
		cause = xasprintf(refusals[k].re, qfile);
	else
		cause = xasprintf("%s", refusals[k].re);
	out = xasprintf("ready %s\n%s", mode, refusals[k].go);

	if (!strcmp(how, "signal")) {
		char *argv[] = { (char *)esky, "start", "-o", cp, (char *)victim, (char *)mode, file,
				 NULL };

		spawn(&p, "esky start", argv, NULL, NULL);
		l = wait_line(&p, OUT, ready);
		if (!l)
			harness_error("the program did not get ready; stderr: %s", buf_str(&p.b[ERR]));
		free(l);
		before = listing();
		kill(p.pid, SIGUSR1);
		re = xasprintf("^esky: checkpoint: %s$", cause);
		l = wait_line(&p, ERR, "^esky: ");
		if (!l)
			FAIL("esky start: expected a refusal on stderr after SIGUSR1, found none (stderr "
			     "\"%s\")", buf_str(&p.b[ERR]));
		else if (!line_matches(re, l))
			FAIL("esky start: expected a refusal matching /%s/, found \"%s\"", re, l);
		free(l);
		free(re);
		/* Nothing written: the directory is as it was (no cp, no temporary). */
		check_nothing_lost(before, NULL, NULL);
		send_line(&p, "go\n");
		ok = finish(&p);
		if (!ok)
			FAIL("esky start: expected the program to finish after \"go\", found it hung "
			     "(killed)");
		else if (exit_code(&p) != 0)
			FAIL("esky start: expected exit status 0 (the program's), found %d",
			     exit_code(&p));
		check_output(&p, out);
		if (line_count(buf_str(&p.b[ERR])) != 1)
			FAIL("esky start: expected one line on stderr, found \"%s\"", buf_str(&p.b[ERR]));
		check_nothing_lost(before, NULL, NULL);
		free(before);
	} else {
		char *argv[] = { (char *)victim, (char *)mode, file, NULL };
		char pid[16];
		char *cargv[] = { (char *)esky, "checkpoint", pid, "-o", cp, NULL };

		spawn(&p, "the program", argv, NULL, NULL);
		l = wait_line(&p, OUT, ready);
		if (!l)
			harness_error("the program did not get ready; stderr: %s", buf_str(&p.b[ERR]));
		free(l);
		before = listing();
		snprintf(pid, sizeof(pid), "%d", p.pid);
		spawn(&c, "esky checkpoint", cargv, "", NULL);
		ok = finish(&c);
		check_refusal(&c, ok, -1, "^esky: checkpoint: %s$", cause);
		check_nothing_lost(before, NULL, NULL);
		send_line(&p, "go\n");
		ok = finish(&p);
		if (!ok)
			FAIL("the program: expected it to finish after \"go\", found it hung (killed)");
		else if (exit_code(&p) != 0)
			FAIL("the program: expected exit status 0, found %d; stderr \"%s\"",
			     exit_code(&p), buf_str(&p.b[ERR]));
		check_output(&p, out);
		free(before);
	}
	free(out);
	free(cause);
	free(ready);
	free(cp);
	free(file);
	free(qfile);
}

/* ---- cases: programs, agents, paths and pids that do not work ---- */

static void misc_case(const char *kind)
{
	char *cp = in_dir("cp"), *qcp = re_quote(cp), *before = listing();
	static struct proc p, c;
	bool ok;

	if (!strcmp(kind, "start-nonexistent")) {
		char *argv[] = { (char *)esky, "start", "-o", cp, "/nonexistent", NULL };

		spawn(&p, "esky start /nonexistent", argv, "go\n", NULL);
		ok = finish(&p);
		check_refusal(&p, ok, 127, "^esky: start: cannot run /nonexistent: No such file or "
			      "directory$");
		check_nothing_lost(before, NULL, NULL);
	} else if (!strcmp(kind, "start-not-executable")) {
		char *f = in_dir("notexec"), *argv[] = { (char *)esky, "start", "-o", cp, f, NULL };

		write_file(f, "#!/bin/sh\necho should not run\n", 30);
		free(before);
		before = listing();
		spawn(&p, "esky start notexec", argv, "go\n", NULL);
		ok = finish(&p);
		check_refusal(&p, ok, 127, "^esky: start: cannot run %s: Permission denied$",
			      re_quote(f));
		check_nothing_lost(before, NULL, NULL);
		free(f);
	} else if (!strcmp(kind, "no-agent")) {
		char *env[] = { "ESKY_AGENT=/nonexistent", NULL };
		struct buf content = { 0 };

		make_checkpoint(victim, "plain", NULL, cp);
		free(before);
		before = listing();
		read_file(cp, &content);
		ok = resume(&p, cp, false, env);
		check_refusal(&p, ok, -1, "^esky: resume: ESKY_AGENT=/nonexistent: No such file or "
			      "directory$");
		check_nothing_lost(before, cp, &content);
		free(content.data);
	} else if (!strcmp(kind, "unwritable-signal")) {
		char *argv[] = { (char *)esky, "start", "-o", "/nonexistent-dir/cp", (char *)victim,
				 "plain", NULL };
		char *l;

		spawn(&p, "esky start -o /nonexistent-dir/cp", argv, NULL, NULL);
		l = wait_line(&p, OUT, "^ready plain");
		if (!l)
			harness_error("the program did not get ready; stderr: %s", buf_str(&p.b[ERR]));
		free(l);
		kill(p.pid, SIGUSR1);
		l = wait_line(&p, ERR, "^esky: ");
		if (!l || !line_matches("^esky: checkpoint: cannot write /nonexistent-dir/cp: No such file "
				    "or directory$", l))
			FAIL("esky start: expected \"esky: checkpoint: cannot write "
			     "/nonexistent-dir/cp: No such file or directory\", found \"%s\"",
			     l ? l : buf_str(&p.b[ERR]));
		free(l);
		send_line(&p, "go\n");
		ok = finish(&p);
		if (!ok || exit_code(&p) != 0)
			FAIL("esky start: expected the program to carry on and exit 0, found %s %d",
			     ok ? "status" : "it hung, status", ok ? exit_code(&p) : -1);
		check_output(&p, "ready plain variant-a\ngo plain variant-a\ndone plain\n");
		if (line_count(buf_str(&p.b[ERR])) != 1)
			FAIL("esky start: expected one line on stderr, found \"%s\"", buf_str(&p.b[ERR]));
		check_nothing_lost(before, NULL, NULL);
	} else if (!strcmp(kind, "unwritable-attach")) {
		char *argv[] = { (char *)victim, "plain", NULL };
		char pid[16], *l;
		char *cargv[] = { (char *)esky, "checkpoint", pid, "-o", "/nonexistent-dir/cp", NULL };

		spawn(&p, "the program", argv, NULL, NULL);
		l = wait_line(&p, OUT, "^ready plain");
		if (!l)
			harness_error("the program did not get ready; stderr: %s", buf_str(&p.b[ERR]));
		free(l);
		snprintf(pid, sizeof(pid), "%d", p.pid);
		spawn(&c, "esky checkpoint -o /nonexistent-dir/cp", cargv, "", NULL);
		ok = finish(&c);
		check_refusal(&c, ok, -1, "^esky: checkpoint: cannot write /nonexistent-dir/cp: No "
			      "such file or directory$");
		send_line(&p, "go\n");
		ok = finish(&p);
		if (!ok || exit_code(&p) != 0)
			FAIL("the program: expected it to carry on and exit 0, found %s %d",
			     ok ? "status" : "it hung, status", ok ? exit_code(&p) : -1);
		check_output(&p, "ready plain variant-a\ngo plain variant-a\ndone plain\n");
		check_nothing_lost(before, NULL, NULL);
	} else if (!strcmp(kind, "no-such-pid")) {
		char pid[16];
		char *argv[] = { (char *)esky, "checkpoint", pid, "-o", cp, NULL };
		pid_t gone = fork();

		if (gone < 0)
			harness_error("fork: %s", strerror(errno));
		if (!gone)
			_exit(0);
		waitpid(gone, NULL, 0);
		/* a pid just freed: nothing has it (pids are not reused at once) */
		snprintf(pid, sizeof(pid), "%d", gone);
		spawn(&p, "esky checkpoint of a pid that does not exist", argv, "", NULL);
		ok = finish(&p);
		check_refusal(&p, ok, -1, "^esky: checkpoint: cannot attach to pid %d: No such "
			      "process$", gone);
		check_nothing_lost(before, NULL, NULL);
	} else if (!strcmp(kind, "pid1-unprivileged")) {
		char *out = xasprintf("%s/cp", dir);
		char *argv_root[] = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
				      (char *)esky, "checkpoint", "1", "-o", out, NULL };
		char *argv_user[] = { (char *)esky, "checkpoint", "1", "-o", out, NULL };

		if (geteuid() == 0 && access("/usr/bin/setpriv", X_OK) && access("/bin/setpriv", X_OK))
			skip("running as root and setpriv is missing");
		if (geteuid() == 0 && chmod(dir, 0777) < 0)
			harness_error("chmod %s: %s", dir, strerror(errno));
		spawn(&p, "esky checkpoint 1 (unprivileged)", geteuid() == 0 ? argv_root : argv_user,
		      "", NULL);
		ok = finish(&p);
		check_refusal(&p, ok, -1, "^esky: checkpoint: cannot attach to pid 1: not permitted "
			      "\\(.*\\)$");
		check_nothing_lost(before, NULL, NULL);
		free(out);
	} else {
		harness_error("unknown case %s", kind);
	}
	free(before);
	free(cp);
	free(qcp);
}

/* ---- main ---- */

static void rm_tree(const char *path)
{
	struct dirent **names;
	int n = scandir(path, &names, NULL, NULL);

	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
			char *p = xasprintf("%s/%s", path, names[i]->d_name);
			struct stat st;

			if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
				rm_tree(p);
			else
				unlink(p);
			free(p);
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	rmdir(path);
}

static void usage(void)
{
	fprintf(stderr, "usage: errors_test [-v] --esky ESKY --victim PROG --victim-b PROG CASE\n"
			"cases: (resume|info).(missing|empty|text|directory|fifo|truncated|"
			"flip-header|flip-meta|flip-pages|junk)\n"
			"       changed.(exe-rebuilt|exe-appended|mapped-changed|mapped-grown|"
			"mapped-touched|mapped-vanished|written-grew|socket-stale|socket-in-the-way|"
			"socket-live)\n"
			"       refuse.(socket|pipe|inotify|timer).(signal|attach)\n"
			"       misc.(start-nonexistent|start-not-executable|no-agent|"
			"unwritable-signal|unwritable-attach|no-such-pid|pid1-unprivileged)\n");
	exit(EXIT_HARNESS);
}

int main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR"), *c = NULL;
	char *kind, *sub;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--esky") && i + 1 < argc)
			esky = argv[++i];
		else if (!strcmp(argv[i], "--victim") && i + 1 < argc)
			victim = argv[++i];
		else if (!strcmp(argv[i], "--victim-b") && i + 1 < argc)
			victim_b = argv[++i];
		else if (!strcmp(argv[i], "-v"))
			verbose = true;
		else if (argv[i][0] != '-' && !c)
			c = argv[i];
		else
			usage();
	}
	if (!esky || !victim || !victim_b || !c)
		usage();
	signal(SIGPIPE, SIG_IGN);
	/* world-searchable: the unprivileged case runs esky as another user in it */
	snprintf(dir, sizeof(dir), "%s/esky-errors.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		harness_error("mkdtemp: %s", strerror(errno));
	kind = strdup(c);
	sub = strchr(kind, '.');
	if (!sub)
		usage();
	*sub++ = '\0';
	if (!strcmp(kind, "resume") || !strcmp(kind, "info")) {
		input_case(kind, sub);
	} else if (!strcmp(kind, "changed")) {
		changed_case(sub);
	} else if (!strcmp(kind, "refuse")) {
		char *how = strchr(sub, '.');

		if (!how)
			usage();
		*how++ = '\0';
		refuse_case(sub, how);
	} else if (!strcmp(kind, "misc")) {
		misc_case(sub);
	} else {
		usage();
	}
	cleanup();
	free(kind);
	if (failures) {
		fprintf(stderr, "FAIL: %s: %u failed checks (work directory %s kept)\n", c, failures,
			dir);
		return EXIT_FAIL;
	}
	rm_tree(dir);
	fprintf(stderr, "PASS: %s\n", c);
	return EXIT_PASS;
}
