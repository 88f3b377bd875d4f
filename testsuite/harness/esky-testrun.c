/*
 * esky-testrun: run one capability test program plainly and under esky,
 * and compare the two transcripts (stdout + exit status).
 *
 *   esky-testrun --esky PATH [options] -- PROGRAM [ARGS...]
 *
 * Exit status: 0 pass, 1 fail, 77 skip, 99 harness error (as strace's tests).
 *
 * The program announces each sync point with a line on its stderr (see
 * testsuite/cap/cap.h):
 *
 *   @@sync          it then blocks reading one line ("go") from fd 0;
 *   @@sync nowait   it then blocks in another syscall, named by
 *                   --sync-syscall NR, and reads nothing.
 *
 * Every wait below is for an event: a line on a pipe, a process exit, the
 * checkpoint file appearing under its name (esky renames it into place
 * only when complete), /proc/PID/syscall showing the program blocked in
 * the expected syscall. Polling is used for the last two because there is
 * no notification for them; it never decides the outcome by elapsed time,
 * except for the overall --timeout.
 *
 * Modes (zdtm-like):
 *   default         plain run; then esky start, and at every sync point a
 *                   checkpoint, kill of the original (program and esky),
 *                   esky resume, and so on down the chain; compare.
 *   --nocr          the plain run only (checks the test itself).
 *   --norst         checkpoint at every sync point but never kill/resume.
 *   --attach        run the program without esky; the first checkpoint is
 *                   taken with `esky checkpoint PID`, then kill and resume.
 *   --resume-twice  after the first checkpoint, resume the same file twice.
 *   --expect-refusal REGEX
 *                   at every sync point SIGUSR1 must give an `esky:` line
 *                   matching REGEX and no file; the program carries on.
 *
 * Other options: --pty (stdin is a pseudo-terminal), --lazy (esky resume
 * --lazy), --sync-syscall NR,
 * --user (as root, run everything as uid/gid 65534 from copies in a fresh
 * directory), --copy FILE (copied too, for --user), --timeout SEC (60; on
 * expiry kill everything and exit 99), --keep DIR (work files and
 * transcripts), --env NAME=VALUE, --exit-status N (the plain run's
 * expected exit status, 0 by default; any other is a failure of the test
 * itself, and 77 a skip).
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_SKIP 77
#define EXIT_HARNESS 99

#define USER_ID 65534		/* nobody/nogroup on Debian */
#define POLL_FILE_MS 3		/* checkpoint file and /proc polling period */
#define MAX_RUNS 16

/* A growable byte buffer (a transcript). */
struct buf {
	char *p;
	size_t len, cap;
};

/*
 * One process group we started: esky (start/resume/checkpoint) or the
 * program itself (plain run, --attach original).
 */
struct run {
	const char *name;	/* "plain", "cr.1", ... for messages */
	pid_t pid;		/* group leader */
	bool is_esky;		/* the program is a child of pid */
	int in_fd;		/* stdin: pipe write end or pty master */
	int out_fd, err_fd;	/* -1 once at EOF */
	struct buf out;		/* everything read from stdout */
	char line[8192];	/* partial stderr line */
	size_t line_len;
	int markers;		/* sync markers seen */
	int handled;		/* of which the harness has dealt with */
	bool nowait[1024];	/* marker i was "@@sync nowait" */
	int esky_lines;		/* esky's error lines seen */
	char last_esky[512];	/* the last of them */
	int refusals;		/* esky: lines matching --expect-refusal */
	bool exited;
	int status;		/* wait status */
	bool live;		/* in the table of groups to kill on timeout */
};

enum mode { MODE_CR, MODE_NOCR, MODE_NORST, MODE_TWICE, MODE_REFUSAL };

static struct {
	const char *esky;
	enum mode mode;
	bool attach;
	bool pty;
	bool lazy;      /* esky resume --lazy */
	bool user;		/* --user given and we are root */
	long sync_syscall;	/* -1: none */
	int timeout;
	int exit_status;	/* the plain run's expected status */
	const char *keep;
	regex_t refusal_re;
	char **envs;
	int nenvs;
	char **copies;
	int ncopies;
	char **prog_argv;
	/* derived */
	char base[PATH_MAX];	/* work directory */
	bool base_is_temp;
	char esky_path[PATH_MAX];
	struct timespec deadline;
	bool failed_keep;	/* keep base on exit */
} opt = { .sync_syscall = -1, .timeout = 60 };

static struct run *runs[MAX_RUNS];

static void kill_all(void);

static void die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("esky-testrun: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	kill_all();
	if (code != EXIT_PASS && code != EXIT_SKIP && opt.base[0])
		fprintf(stderr, "esky-testrun: files kept in %s\n", opt.base);
	exit(code);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...)
{
	va_list ap;

	fputs("esky-testrun: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			die(EXIT_HARNESS, "out of memory");
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void buf_addf(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static bool past_deadline(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > opt.deadline.tv_sec ||
	       (now.tv_sec == opt.deadline.tv_sec &&
		now.tv_nsec >= opt.deadline.tv_nsec);
}

static void kill_run(struct run *r)
{
	if (r->live && !r->exited)
		kill(-r->pid, SIGKILL);
}

static void kill_all(void)
{
	for (int i = 0; i < MAX_RUNS; i++)
		if (runs[i])
			kill_run(runs[i]);
}

static void check_deadline(void)
{
	if (past_deadline()) {
		opt.failed_keep = true;
		die(EXIT_HARNESS, "timeout (%d s) expired: killed everything",
		    opt.timeout);
	}
}

static void set_cloexec(int fd)
{
	fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void reap(struct run *r)
{
	int st;

	if (r->exited)
		return;
	if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
		r->exited = true;
		r->status = st;
	}
}

/*
 * An error of esky: "esky: COMMAND: message", as opposed to its news
 * ("esky: checkpoint written to ...") and warnings ("esky: warning: ...").
 */
static bool is_esky_error(const char *line)
{
	const char *p = line + 6;

	if (strncmp(line, "esky: ", 6) != 0 ||
	    strncmp(p, "warning:", 8) == 0)
		return false;
	while ((*p >= 'a' && *p <= 'z') || *p == '-')
		p++;
	return p > line + 6 && p[0] == ':' && p[1] == ' ';
}

/* A line from the run's stderr: a marker, an esky message, or other. */
static void handle_err_line(struct run *r, char *line)
{
	if (strncmp(line, "@@sync", 6) == 0 &&
	    (line[6] == '\0' || line[6] == ' ')) {
		if (r->markers < 1024)
			r->nowait[r->markers] = strcmp(line + 6, " nowait") == 0;
		r->markers++;
		return;
	}
	if (is_esky_error(line)) {
		r->esky_lines++;
		snprintf(r->last_esky, sizeof(r->last_esky), "%s", line);
		if (opt.mode == MODE_REFUSAL &&
		    regexec(&opt.refusal_re, line, 0, NULL, 0) == 0)
			r->refusals++;
	}
	fprintf(stderr, "[%s] %s\n", r->name, line);
}

static void read_err(struct run *r)
{
	char tmp[4096];
	ssize_t n = read(r->err_fd, tmp, sizeof(tmp));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (r->line_len) {
			r->line[r->line_len] = '\0';
			handle_err_line(r, r->line);
			r->line_len = 0;
		}
		close(r->err_fd);
		r->err_fd = -1;
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (tmp[i] == '\n' || r->line_len == sizeof(r->line) - 1) {
			r->line[r->line_len] = '\0';
			handle_err_line(r, r->line);
			r->line_len = 0;
			if (tmp[i] == '\n')
				continue;
		}
		r->line[r->line_len++] = tmp[i];
	}
}

static void read_out(struct run *r)
{
	char tmp[4096];
	ssize_t n = read(r->out_fd, tmp, sizeof(tmp));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(r->out_fd);
		r->out_fd = -1;
		return;
	}
	buf_add(&r->out, tmp, (size_t)n);
}

/*
 * Read what the run has written, for at most timeout_ms, and reap it if it
 * has exited. Returns at the first input or when the time is up.
 */
static void pump(struct run *r, int timeout_ms)
{
	struct pollfd pfd[2];
	int n = 0, out_i = -1, err_i = -1;

	check_deadline();
	if (r->out_fd >= 0) {
		out_i = n;
		pfd[n++] = (struct pollfd){ .fd = r->out_fd, .events = POLLIN };
	}
	if (r->err_fd >= 0) {
		err_i = n;
		pfd[n++] = (struct pollfd){ .fd = r->err_fd, .events = POLLIN };
	}
	if (n == 0) {
		reap(r);
		if (!r->exited)
			poll(NULL, 0, timeout_ms);
		reap(r);
		return;
	}
	if (poll(pfd, (nfds_t)n, timeout_ms) > 0) {
		if (out_i >= 0 && pfd[out_i].revents)
			read_out(r);
		if (err_i >= 0 && pfd[err_i].revents)
			read_err(r);
	}
	reap(r);
}

/* Wait for the run to exit with both pipes at EOF. */
static void finish(struct run *r)
{
	while (r->out_fd >= 0 || r->err_fd >= 0)
		pump(r, 100);
	while (!r->exited) {
		check_deadline();
		pump(r, 10);
	}
	if (r->in_fd >= 0) {
		close(r->in_fd);
		r->in_fd = -1;
	}
	r->live = false;
}

/* Kill the run's process group and collect what it had written. */
static void kill_and_finish(struct run *r)
{
	kill(-r->pid, SIGKILL);
	finish(r);
}

static void send_go(struct run *r)
{
	if (write(r->in_fd, "go\n", 3) != 3)
		note("%s: cannot write \"go\" to stdin: %s", r->name,
		     strerror(errno));
}

/*
 * Exit status as the transcript shows it: esky exits with the program's
 * status, or 128+signal when a signal killed it.
 */
static int exit_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

static void drop_privileges(void)
{
	if (setgroups(0, NULL) || setgid(USER_ID) || setuid(USER_ID)) {
		dprintf(2, "esky-testrun: cannot become uid %d: %s\n", USER_ID,
			strerror(errno));
		_exit(127);
	}
}

/*
 * Start argv in its own process group, stdin from a pipe (or a pty), stdout
 * and stderr to pipes, in directory dir. Exec errors come back through a
 * close-on-exec pipe and are harness errors.
 */
static struct run *spawn(const char *name, char **argv, const char *dir,
			 bool is_esky, bool null_stdin)
{
	int in[2] = { -1, -1 }, out[2], err[2], ep[2];
	int master = -1, slave = -1, child_err = 0;
	struct run *r = calloc(1, sizeof(*r));
	pid_t pid;
	ssize_t n;
	int i;

	if (!r)
		die(EXIT_HARNESS, "out of memory");
	if (pipe(out) || pipe(err) || pipe2(ep, O_CLOEXEC))
		die(EXIT_HARNESS, "pipe: %s", strerror(errno));
	if (null_stdin) {
		in[0] = open("/dev/null", O_RDONLY);
	} else if (opt.pty) {
		struct termios tio;

		master = posix_openpt(O_RDWR | O_NOCTTY);
		if (master < 0 || grantpt(master) || unlockpt(master))
			die(EXIT_HARNESS, "pty: %s", strerror(errno));
		slave = open(ptsname(master), O_RDWR | O_NOCTTY);
		if (slave < 0)
			die(EXIT_HARNESS, "open %s: %s", ptsname(master),
			    strerror(errno));
		/* No echo: nobody reads the master side. */
		if (tcgetattr(slave, &tio) == 0) {
			tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
			tcsetattr(slave, TCSANOW, &tio);
		}
		if (opt.user && fchown(slave, USER_ID, USER_ID))
			die(EXIT_HARNESS, "chown pty: %s", strerror(errno));
		in[0] = slave;
		in[1] = master;
	} else if (pipe(in)) {
		die(EXIT_HARNESS, "pipe: %s", strerror(errno));
	}

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die(EXIT_HARNESS, "fork: %s", strerror(errno));
	if (pid == 0) {
		setpgid(0, 0);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		if (ep[1] != 3) {
			dup2(ep[1], 3);
			ep[1] = 3;
		}
		fcntl(3, F_SETFD, FD_CLOEXEC);
		/* Nothing but stdio: the program must be checkpointable. */
		for (int fd = 4; fd < 1024; fd++)
			close(fd);
		signal(SIGPIPE, SIG_DFL);
		if (opt.user)
			drop_privileges();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(127);
		if (dir && chdir(dir)) {
			child_err = errno;
			goto fail;
		}
		for (i = 0; i < opt.nenvs; i++)
			putenv(opt.envs[i]);
		execv(argv[0], argv);
		child_err = errno;
fail:
		n = write(3, &child_err, sizeof(child_err));
		(void)n;
		_exit(127);
	}
	setpgid(pid, pid);
	close(ep[1]);
	close(out[1]);
	close(err[1]);
	if (in[0] >= 0)
		close(in[0]);
	n = read(ep[0], &child_err, sizeof(child_err));
	close(ep[0]);
	if (n == sizeof(child_err))
		die(EXIT_HARNESS, "cannot run %s: %s", argv[0],
		    strerror(child_err));

	r->name = name;
	r->pid = pid;
	r->is_esky = is_esky;
	r->in_fd = in[1];
	r->out_fd = out[0];
	r->err_fd = err[0];
	set_cloexec(r->out_fd);
	set_cloexec(r->err_fd);
	if (r->in_fd >= 0)
		set_cloexec(r->in_fd);
	r->live = true;
	for (i = 0; i < MAX_RUNS; i++) {
		if (!runs[i] || !runs[i]->live) {
			runs[i] = r;
			break;
		}
	}
	if (i == MAX_RUNS)
		die(EXIT_HARNESS, "too many runs");
	return r;
}

/* The first child of process pid (of any of its threads), or 0. */
static pid_t first_child(pid_t parent)
{
	char path[64], buf[384];
	DIR *d;
	struct dirent *de;
	pid_t pid = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", parent);
	d = opendir(path);
	if (!d)
		return 0;
	while (!pid && (de = readdir(d))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(buf, sizeof(buf), "%s/%s/children", path, de->d_name);
		f = fopen(buf, "r");
		if (!f)
			continue;
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	closedir(d);
	return pid;
}

/*
 * The program's pid: the run itself, or esky's (first) child, or that
 * child's child when it is the init of the PID namespace esky resumes a
 * threaded program in.
 */
static pid_t program_pid(struct run *r)
{
	char path[64], comm[32] = "";
	pid_t pid;
	FILE *f;

	if (!r->is_esky)
		return r->pid;
	pid = first_child(r->pid);
	if (!pid)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if (f) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
	}
	return strcmp(comm, "esky-ns-init\n") ? pid : first_child(pid);
}

/* Is the program blocked in syscall nr (with fd 0 as first arg, if want_fd0)? */
static bool blocked_in(pid_t pid, long nr, bool want_fd0)
{
	char path[64], buf[512];
	long got;
	unsigned long arg0;
	int fd, n;
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return false;
	buf[len] = '\0';
	n = sscanf(buf, "%ld %lx", &got, &arg0);
	if (n < 1 || got != nr)
		return false;
	return !want_fd0 || (n == 2 && arg0 == 0);
}

/*
 * After marker number `k` of run r: wait until the program is blocked in
 * the syscall the marker announced (read on fd 0, or --sync-syscall).
 */
static void wait_blocked(struct run *r, bool nowait)
{
	long nr = nowait ? opt.sync_syscall : 0;
	int markers = r->markers;

	if (nowait && nr < 0)
		die(EXIT_HARNESS, "%s: \"@@sync nowait\" needs --sync-syscall NR",
		    r->name);
	for (;;) {
		pid_t pid = program_pid(r);

		if (pid > 0 && blocked_in(pid, nr, !nowait))
			return;
		pump(r, POLL_FILE_MS);
		if (r->exited || r->markers != markers) {
			opt.failed_keep = true;
			die(EXIT_FAIL, "%s: the program went past its sync point "
			    "before it was seen blocked in syscall %ld", r->name,
			    nr);
		}
	}
}

/*
 * Wait for the run's next marker and count it as handled; false when the
 * run ends first. *nowait tells the kind of marker.
 */
static bool next_marker(struct run *r, bool *nowait)
{
	while (r->markers <= r->handled) {
		if (r->out_fd < 0 && r->err_fd < 0) {
			finish(r);
			if (r->markers <= r->handled)
				return false;
		}
		pump(r, 1000);
	}
	*nowait = r->handled < 1024 && r->nowait[r->handled];
	r->handled++;
	return true;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/*
 * SIGUSR1 has been sent to esky: wait until the checkpoint file appears
 * under its name, failing if esky dies or prints an esky: line instead.
 */
static void wait_checkpoint_file(struct run *r, const char *path)
{
	int lines = r->esky_lines;

	for (;;) {
		if (exists(path))
			return;
		pump(r, POLL_FILE_MS);
		if (r->esky_lines != lines) {
			opt.failed_keep = true;
			die(EXIT_FAIL, "%s: checkpoint failed: %s", r->name,
			    r->last_esky);
		}
		if (r->exited) {
			opt.failed_keep = true;
			die(EXIT_FAIL, "%s: esky exited (status %d) without "
			    "writing %s", r->name, exit_code(r->status), path);
		}
	}
}

static char *ckpt_path(const char *tag, int k)
{
	char *p;

	if (asprintf(&p, "%s/checkpoint.%s%d", opt.base, tag, k) < 0)
		die(EXIT_HARNESS, "out of memory");
	return p;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* A fresh, empty working directory for a run (or a chain of runs). */
static char *run_dir(const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", opt.base, name) < 0)
		die(EXIT_HARNESS, "out of memory");
	if (exists(p))
		nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (mkdir(p, 0755) && errno != EEXIST)
		die(EXIT_HARNESS, "mkdir %s: %s", p, strerror(errno));
	if (opt.user && chown(p, USER_ID, USER_ID))
		die(EXIT_HARNESS, "chown %s: %s", p, strerror(errno));
	return p;
}

static char **make_argv(const char *a0, const char *a1, const char *a2,
			const char *a3, const char *a4, const char *a5,
			bool with_prog)
{
	const char *pre[] = { a0, a1, a2, a3, a4, a5 };
	int n = 0, np = 0, i;
	char **v;

	while (opt.prog_argv[np])
		np++;
	v = calloc(6 + (size_t)np + 1, sizeof(*v));
	if (!v)
		die(EXIT_HARNESS, "out of memory");
	for (i = 0; i < 6 && pre[i]; i++)
		v[n++] = (char *)pre[i];
	if (with_prog)
		for (i = 0; i < np; i++)
			v[n++] = opt.prog_argv[i];
	v[n] = NULL;
	return v;
}

static char **esky_start_argv(const char *out)
{
	return make_argv(opt.esky_path, "start", "-o", out, "--", NULL, true);
}

static char **esky_resume_argv(const char *in, const char *out)
{
	char **v = make_argv(opt.esky_path, "resume", "-f", in, "-o", out, false);

	/* --lazy: esky resume --lazy -f IN -o OUT (make_argv left room for the program's args). */
	if (opt.lazy) {
		memmove(v + 3, v + 2, 5 * sizeof(*v));
		v[2] = "--lazy";
	}
	return v;
}

/* The transcript: stdout, then the exit status on a line of its own. */
static void transcript(struct buf *t, const struct buf *out, int st)
{
	if (out->len)
		buf_add(t, out->p, out->len);
	if (out->len && out->p[out->len - 1] != '\n')
		buf_addf(t, "\n\\ no newline at end of stdout\n");
	buf_addf(t, "--- exit status %d\n", exit_code(st));
}

static void write_file(const char *name, const struct buf *b)
{
	char path[PATH_MAX + 256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", opt.base, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, b->p, b->len) != (ssize_t)b->len)
		note("cannot write %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Print the first line where a and b differ; false if they do. */
static bool compare(const char *what, const struct buf *plain,
		    const struct buf *got)
{
	const char *a = plain->p, *b = got->p;
	int line = 1;
	char name[128];

	if (plain->len == got->len && memcmp(a, b, plain->len) == 0)
		return true;
	write_file("plain.out", plain);
	snprintf(name, sizeof(name), "%s.out", what);
	write_file(name, got);
	opt.failed_keep = true;
	for (;;) {
		const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
		size_t la = ea ? (size_t)(ea - a) : strlen(a);
		size_t lb = eb ? (size_t)(eb - b) : strlen(b);

		if (la != lb || memcmp(a, b, la) || !ea || !eb) {
			note("FAIL: %s transcript differs from the plain run "
			     "at line %d:", what, line);
			note("  plain: %.*s", la > 300 ? 300 : (int)la, a);
			note("  %s: %.*s", what, lb > 300 ? 300 : (int)lb, b);
			note("  (diff %s/plain.out %s/%s)", opt.base, opt.base,
			     name);
			return false;
		}
		a = ea + 1;
		b = eb + 1;
		line++;
	}
}

/* The plain run: "go" at each marker, no checkpoint. */
static void plain_run(struct buf *t)
{
	struct run *r;
	int code;
	bool nowait;

	r = spawn("plain", opt.prog_argv, run_dir("plain"), false, false);
	while (next_marker(r, &nowait))
		if (!nowait)
			send_go(r);
	transcript(t, &r->out, r->status);
	code = exit_code(r->status);
	if (code == EXIT_SKIP)
		die(EXIT_SKIP, "the program skipped itself (exit 77)");
	if (code != opt.exit_status) {
		write_file("plain.out", t);
		opt.failed_keep = true;
		die(EXIT_FAIL, "FAIL: the plain run exited with status %d, "
		    "not %d (transcript in %s/plain.out)", code,
		    opt.exit_status, opt.base);
	}
	if (r->handled == 0 && opt.mode != MODE_NOCR)
		die(EXIT_HARNESS, "the program has no sync point");
}

/* Run `esky checkpoint PID -o FILE` and check it wrote the file. */
static void attach_checkpoint(struct run *prog, const char *file)
{
	char pidstr[32];
	char **argv;
	struct run *c;

	snprintf(pidstr, sizeof(pidstr), "%d", prog->pid);
	argv = make_argv(opt.esky_path, "checkpoint", pidstr, "-o", file,
			 NULL, false);
	c = spawn("esky-checkpoint", argv, NULL, false, true);
	finish(c);
	fwrite(c->out.p ? c->out.p : "", 1, c->out.len, stderr);
	if (exit_code(c->status) != 0 || !exists(file)) {
		opt.failed_keep = true;
		die(EXIT_FAIL, "esky checkpoint %d exited with status %d%s%s",
		    prog->pid, exit_code(c->status),
		    exists(file) ? "" : " and wrote no file",
		    c->last_esky[0] ? ": " : "");
	}
	reap(prog);
	if (prog->exited) {
		opt.failed_keep = true;
		die(EXIT_FAIL, "the program died after `esky checkpoint` "
		    "(status %d)", exit_code(prog->status));
	}
}

/*
 * Handle sync marker number k of run r when the checkpoint must be
 * refused: SIGUSR1, wait for the refusal line, check that no file (nor a
 * temporary one) appeared.
 */
static void expect_refusal(struct run *r, const char *file, int k)
{
	int before = r->refusals, lines = r->esky_lines;
	DIR *d;
	struct dirent *de;

	kill(r->pid, SIGUSR1);
	while (r->refusals == before) {
		pump(r, 100);
		if (r->esky_lines != lines && r->refusals == before) {
			opt.failed_keep = true;
			die(EXIT_FAIL, "%s: sync point %d: esky's message does "
			    "not match the expected refusal: %s", r->name, k,
			    r->last_esky);
		}
		if (exists(file)) {
			opt.failed_keep = true;
			die(EXIT_FAIL, "%s: sync point %d: esky wrote %s "
			    "instead of refusing", r->name, k, file);
		}
		if (r->exited) {
			opt.failed_keep = true;
			die(EXIT_FAIL, "%s: esky exited (status %d) instead of "
			    "refusing", r->name, exit_code(r->status));
		}
	}
	if (exists(file)) {
		opt.failed_keep = true;
		die(EXIT_FAIL, "%s: esky refused but wrote %s", r->name, file);
	}
	d = opendir(opt.base);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "checkpoint", 10) == 0 ||
		    strncmp(de->d_name, ".checkpoint", 11) == 0) {
			opt.failed_keep = true;
			die(EXIT_FAIL, "%s: esky refused but left %s/%s",
			    r->name, opt.base, de->d_name);
		}
	}
	if (d)
		closedir(d);
}

/* Names of runs, kept for messages: "resume.3", ... */
static const char *run_name(const char *what, int k)
{
	char *p;

	if (asprintf(&p, "%s.%d", what, k) < 0)
		die(EXIT_HARNESS, "out of memory");
	return p;
}

/* Resume file as the rest of a run, typing "go" at every sync point. */
static struct run *resume_to_end(const char *name, const char *file,
				 const char *out_file, const char *dir,
				 bool first_nowait)
{
	struct run *r = spawn(name, esky_resume_argv(file, out_file), dir,
			      true, false);
	bool nowait;

	if (!first_nowait)
		send_go(r);
	while (next_marker(r, &nowait))
		if (!nowait)
			send_go(r);
	return r;
}

/*
 * The checkpointed runs. The transcript of a chain is the stdout of each
 * original up to its kill, followed by that of the next resume, and so on;
 * the exit status is the last esky's.
 */
static int cr_runs(const struct buf *plain)
{
	struct buf out = { 0 }, t = { 0 };
	struct run *r;
	char *dir = run_dir("cr");
	int k = 0, cycle = 0, checkpoints = 0;
	bool kill_resume = opt.mode == MODE_CR || opt.mode == MODE_TWICE;
	bool nowait, first_nowait = false;
	const char *what;

	if (opt.attach)
		r = spawn("attach", opt.prog_argv, dir, false, false);
	else
		r = spawn("cr", esky_start_argv(ckpt_path("", 1)), dir, true,
			  false);

	while (next_marker(r, &nowait)) {
		/* --attach: the program is not under esky until resumed. */
		bool use_attach = opt.attach && !r->is_esky;
		/* esky start -o ck.1, resume -f ck.1 -o ck.2, ... */
		char *file = ckpt_path("", kill_resume ? ++k : 1);

		wait_blocked(r, nowait);
		if (opt.mode == MODE_REFUSAL) {
			if (use_attach)
				die(EXIT_HARNESS, "--attach and "
				    "--expect-refusal do not mix");
			expect_refusal(r, file, k);
			if (!nowait)
				send_go(r);
			continue;
		}
		if (use_attach) {
			attach_checkpoint(r, file);
		} else {
			kill(r->pid, SIGUSR1);
			wait_checkpoint_file(r, file);
		}
		checkpoints++;
		if (!kill_resume) {
			/* --norst: the original carries on; the next SIGUSR1
			 * writes the same name again. */
			unlink(file);
			if (!nowait)
				send_go(r);
			continue;
		}
		kill_and_finish(r);
		buf_add(&out, r->out.p ? r->out.p : "", r->out.len);
		cycle++;
		if (opt.mode == MODE_TWICE) {
			first_nowait = nowait;
			break;
		}
		r = spawn(run_name("resume", cycle),
			  esky_resume_argv(file, ckpt_path("", k + 1)), dir,
			  true, false);
		if (!nowait)
			send_go(r);
	}

	if (opt.mode == MODE_TWICE) {
		int failed = 0;

		if (cycle == 0)
			die(EXIT_HARNESS, "no checkpoint was taken");
		for (int i = 1; i <= 2; i++) {
			struct buf o2 = { 0 }, t2 = { 0 };
			const char *name = run_name("resume-twice", i);

			r = resume_to_end(name, ckpt_path("", 1),
					  ckpt_path("twice.", i), dir,
					  first_nowait);
			buf_add(&o2, out.p ? out.p : "", out.len);
			buf_add(&o2, r->out.p ? r->out.p : "", r->out.len);
			transcript(&t2, &o2, r->status);
			if (!compare(name, plain, &t2))
				failed = 1;
		}
		if (!failed)
			note("resumed the first checkpoint twice: transcripts "
			     "match");
		return failed ? EXIT_FAIL : EXIT_PASS;
	}

	buf_add(&out, r->out.p ? r->out.p : "", r->out.len);
	transcript(&t, &out, r->status);
	if (r->handled == 0 && cycle == 0)
		die(EXIT_HARNESS, "the program reached no sync point");
	if (opt.mode == MODE_REFUSAL)
		checkpoints = r->refusals;
	what = opt.mode == MODE_CR ? "cr" : opt.mode == MODE_NORST ? "norst" :
	       "refusal";
	if (!compare(what, plain, &t))
		return EXIT_FAIL;
	note("%s: %d checkpoint(s)%s, %d resume(s): transcripts match", what,
	     checkpoints, opt.mode == MODE_REFUSAL ? " refused" : "", cycle);
	return EXIT_PASS;
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	struct stat st;
	int in, out;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st))
		die(EXIT_HARNESS, "--user: cannot read %s: %s", from,
		    strerror(errno));
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		   (st.st_mode & 0111) ? 0755 : 0644);
	if (out < 0)
		die(EXIT_HARNESS, "--user: cannot create %s: %s", to,
		    strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			die(EXIT_HARNESS, "--user: write %s: %s", to,
			    strerror(errno));
	if (n < 0)
		die(EXIT_HARNESS, "--user: read %s: %s", from, strerror(errno));
	if (fchown(out, USER_ID, USER_ID) ||
	    fchmod(out, (st.st_mode & 0111) ? 0755 : 0644))
		die(EXIT_HARNESS, "--user: chown %s: %s", to, strerror(errno));
	close(in);
	close(out);
}

/* Copy path into base/bin and return the copy's name. */
static char *copy_in(const char *path)
{
	char *to, *dup = strdup(path);

	if (!dup || asprintf(&to, "%s/bin/%s", opt.base, basename(dup)) < 0)
		die(EXIT_HARNESS, "out of memory");
	copy_file(path, to);
	free(dup);
	return to;
}

/*
 * --user as root: everything runs as nobody from a fresh 0755 directory it
 * owns, with copies of esky, its agent, the program (unless it is a system
 * program under /usr or /bin, which interpreters need in place to find their
 * libraries) and the --copy files; arguments naming them are rewritten.
 */
static void setup_user(void)
{
	char bin[PATH_MAX + 8], agent[PATH_MAX], *dup;
	const char *p0 = opt.prog_argv[0];

	snprintf(bin, sizeof(bin), "%s/bin", opt.base);
	if (mkdir(bin, 0755) || chown(bin, USER_ID, USER_ID))
		die(EXIT_HARNESS, "mkdir %s: %s", bin, strerror(errno));
	if (opt.mode != MODE_NOCR) {
		dup = strdup(opt.esky_path);
		snprintf(agent, sizeof(agent), "%s/esky-agent", dirname(dup));
		free(dup);
		snprintf(opt.esky_path, sizeof(opt.esky_path), "%s",
			 copy_in(opt.esky_path));
		if (exists(agent))
			copy_in(agent);
		else
			note("--user: no %s to copy", agent);
	}
	if (strncmp(p0, "/usr/", 5) != 0 && strncmp(p0, "/bin/", 5) != 0)
		opt.prog_argv[0] = copy_in(p0);
	for (int i = 0; i < opt.ncopies; i++) {
		char *to = copy_in(opt.copies[i]);

		for (int j = 1; opt.prog_argv[j]; j++)
			if (strcmp(opt.prog_argv[j], opt.copies[i]) == 0)
				opt.prog_argv[j] = to;
	}
}

static void usage(void)
{
	fputs("usage: esky-testrun --esky PATH [options] -- PROGRAM [ARGS...]\n"
	      "  --nocr                 plain run only\n"
	      "  --norst                checkpoint at each sync point, never "
	      "kill/resume\n"
	      "  --attach               first checkpoint with `esky checkpoint "
	      "PID`\n"
	      "  --resume-twice         resume the first checkpoint twice\n"
	      "  --expect-refusal REGEX esky must refuse to checkpoint\n"
	      "  --pty                  stdin is a pseudo-terminal\n"
	      "  --lazy                 esky resume --lazy\n"
	      "  --sync-syscall NR      \"@@sync nowait\" blocks in syscall NR\n"
	      "  --user                 as root, run as uid/gid 65534\n"
	      "  --copy FILE            with --user, copy FILE too\n"
	      "  --timeout SEC          default 60; exit 99 on expiry\n"
	      "  --keep DIR             keep work files and transcripts in DIR\n"
	      "  --env NAME=VALUE       set in the program's environment\n"
	      "  --exit-status N        the program's expected status (0)\n",
	      stderr);
	exit(EXIT_HARNESS);
}

static void parse_args(int argc, char **argv)
{
	int i;
	bool user = false, nocr = false;

	opt.envs = calloc((size_t)argc, sizeof(char *));
	opt.copies = calloc((size_t)argc, sizeof(char *));
	if (!opt.envs || !opt.copies)
		die(EXIT_HARNESS, "out of memory");
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--esky") == 0 && more) {
			opt.esky = argv[++i];
		} else if (strcmp(a, "--nocr") == 0) {
			nocr = true;
		} else if (strcmp(a, "--norst") == 0) {
			opt.mode = MODE_NORST;
		} else if (strcmp(a, "--resume-twice") == 0) {
			opt.mode = MODE_TWICE;
		} else if (strcmp(a, "--expect-refusal") == 0 && more) {
			int rc = regcomp(&opt.refusal_re, argv[++i],
					 REG_EXTENDED | REG_NOSUB | REG_ICASE);

			if (rc)
				die(EXIT_HARNESS, "bad regex %s", argv[i]);
			opt.mode = MODE_REFUSAL;
		} else if (strcmp(a, "--attach") == 0) {
			opt.attach = true;
		} else if (strcmp(a, "--pty") == 0) {
			opt.pty = true;
		} else if (strcmp(a, "--lazy") == 0) {
			opt.lazy = true;
		} else if (strcmp(a, "--sync-syscall") == 0 && more) {
			opt.sync_syscall = strtol(argv[++i], NULL, 0);
		} else if (strcmp(a, "--user") == 0) {
			user = true;
		} else if (strcmp(a, "--copy") == 0 && more) {
			opt.copies[opt.ncopies++] = argv[++i];
		} else if (strcmp(a, "--timeout") == 0 && more) {
			opt.timeout = atoi(argv[++i]);
		} else if (strcmp(a, "--exit-status") == 0 && more) {
			opt.exit_status = atoi(argv[++i]);
		} else if (strcmp(a, "--keep") == 0 && more) {
			opt.keep = argv[++i];
		} else if (strcmp(a, "--env") == 0 && more) {
			opt.envs[opt.nenvs++] = argv[++i];
		} else {
			usage();
		}
	}
	if (i >= argc)
		usage();
	opt.prog_argv = argv + i;
	/* --nocr wins over the other modes: the test itself is checked. */
	if (nocr)
		opt.mode = MODE_NOCR;
	opt.user = user && geteuid() == 0;
	if (opt.timeout <= 0)
		opt.timeout = 60;
	if (opt.mode != MODE_NOCR) {
		if (!opt.esky)
			usage();
		if (!realpath(opt.esky, opt.esky_path))
			die(EXIT_HARNESS, "esky %s: %s", opt.esky,
			    strerror(errno));
	}
}

int main(int argc, char **argv)
{
	struct buf plain = { 0 };
	int rc = EXIT_PASS;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	clock_gettime(CLOCK_MONOTONIC, &opt.deadline);
	opt.deadline.tv_sec += opt.timeout;

	if (access(opt.prog_argv[0], X_OK)) {
		note("SKIP: %s: %s", opt.prog_argv[0], strerror(errno));
		return EXIT_SKIP;
	}
	/* Runs happen in directories of their own: make it absolute. */
	if (opt.prog_argv[0][0] != '/') {
		char *abs = realpath(opt.prog_argv[0], NULL);

		if (!abs)
			die(EXIT_HARNESS, "%s: %s", opt.prog_argv[0],
			    strerror(errno));
		opt.prog_argv[0] = abs;
	}
	if (opt.keep) {
		if (mkdir(opt.keep, 0755) && errno != EEXIST)
			die(EXIT_HARNESS, "mkdir %s: %s", opt.keep,
			    strerror(errno));
		if (!realpath(opt.keep, opt.base))
			die(EXIT_HARNESS, "%s: %s", opt.keep, strerror(errno));
	} else {
		const char *tmp = getenv("TMPDIR");

		snprintf(opt.base, sizeof(opt.base), "%s/esky-testrun.XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(opt.base))
			die(EXIT_HARNESS, "mkdtemp: %s", strerror(errno));
		opt.base_is_temp = true;
	}
	if (opt.user) {
		if (chown(opt.base, USER_ID, USER_ID) ||
		    chmod(opt.base, 0755))
			die(EXIT_HARNESS, "chown %s: %s", opt.base,
			    strerror(errno));
		setup_user();
	}

	plain_run(&plain);
	if (opt.keep)
		write_file("plain.out", &plain);
	if (opt.mode == MODE_NOCR) {
		note("plain run passed");
	} else {
		rc = cr_runs(&plain);
	}

	if (rc == EXIT_PASS && opt.base_is_temp && !opt.failed_keep)
		nftw(opt.base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else if (rc != EXIT_PASS)
		note("files kept in %s", opt.base);
	return rc;
}
