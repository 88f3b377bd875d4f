/*
 * A debugging session of esky-shell, see session.h: the session and its
 * program (arguments, environment, stdio, directory), starting and waiting
 * for it, the run loop (run, continue, stepi, the stops of breakpoints,
 * watchpoints and the timer) and threads.
 */
#include "session_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

int sess_no_process(void)
{
	return esky_error(-ESRCH, "the program is not running (run, start or rewind N)");
}

void sess_notify(struct esky_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!s->notify)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->notify(s->notify_ctx, line);
}

static int session_new(const char *store_dir, unsigned trust,
		       const struct esky_snapfile_sink *sink, struct esky_session **out)
{
	struct esky_session *s = calloc(1, sizeof(*s));
	sigset_t set;
	int ret = 0;

	if (!s)
		return -ENOMEM;
	/* Before the shell ignores SIGPIPE: the program must not inherit that. */
	esky_tracee_note_inherited_signals();
	s->next_bp = 1;
	s->track_pages = true;
	s->in_place = true;
	s->timer_fd = s->intr_fd = s->sig_fd = -1;
	s->trust = trust;
	if (sink)
		s->sink = *sink;
	else
		ret = store_dir ? esky_store_open(store_dir, true, trust, &s->store)
				: esky_store_create_fresh(".esky", trust, &s->store);
	if (!sink && ret)
		goto out_free;
	/* Program stops arrive as SIGCHLD, read from a signalfd beside the timer. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	s->intr_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->sig_fd < 0 || s->timer_fd < 0 || s->intr_fd < 0) {
		ret = esky_error(-errno, "cannot set up the session: %s", strerror(errno));
		goto out_free;
	}
	s->lineage = 0;
	*out = s;
	return 0;
out_free:
	esky_session_free(s);
	return ret;
}

int esky_session_new(const char *store_dir, struct esky_session **out)
{
	return session_new(store_dir, 0, NULL, out);
}

int esky_session_new_trust(const char *store_dir, unsigned trust, struct esky_session **out)
{
	return session_new(store_dir, trust, NULL, out);
}

int esky_session_new_files(const struct esky_snapfile_sink *sink, struct esky_session **out)
{
	if (!sink || !sink->name)
		return -EINVAL;
	return session_new(NULL, 0, sink, out);
}

void esky_session_pass_signals(struct esky_session *s, bool on)
{
	s->pass_signals = on;
	if (s->t)
		esky_target_report_signals(s->t, !on);
}

pid_t esky_session_pid(const struct esky_session *s)
{
	return esky_session_alive(s) ? esky_target_pid(s->t) : 0;
}



int esky_session_thread(const struct esky_session *s)
{
	if (!esky_session_alive(s) || esky_target_thread_count(s->t) < 2)
		return 0;
	return sess_program_tid(esky_target_thread(s->t));
}

/* The store-only commands, in a session that writes files (esky snap). */
int sess_no_store(void)
{
	return esky_error(-ENOTSUP, "this session keeps no snapshot store");
}

static void free_redirects(struct esky_redirect *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *)r[i].path);
	free(r);
}

static void free_strings(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void sess_drop_process(struct esky_session *s)
{
	sess_stop_tracking(s);
	if (s->t)
		esky_target_free(s->t);
	s->t = NULL;
	s->nsites = 0;
	/* An interrupt asked of the old process will never come. */
	s->pending = PENDING_NONE;
}


void esky_session_free(struct esky_session *s)
{
	if (!s)
		return;
	if (s->unrecorded && sess_record_snapshot(s))
		esky_error_clear();
	sess_release_spare(s);
	sess_drop_process(s);
	for (size_t i = 0; i < s->nbps; i++)
		sess_free_bp(&s->bps[i]);
	free(s->bps);
	for (size_t i = 0; i < s->nwatches; i++)
		free(s->watches[i].spec);
	free(s->watches);
	free(s->info);
	free(s->sites);
	free(s->code);
	free(s->hashes);
	free_strings(s->args);
	free_redirects(s->redirs, s->nredirs);
	free_strings(s->env);
	free(s->cwd);
	free(s->own_cwd);
	free(s->program);
	free(s->agent);
	for (size_t i = 0; i < s->nlibs; i++) {
		free(s->libs[i].path);
		if (s->libs[i].di)
			esky_debuginfo_close(s->libs[i].di);
	}
	free(s->libs);
	if (s->di)
		esky_debuginfo_close(s->di);
	if (s->store)
		esky_store_close(s->store);
	for (int *fd = &s->timer_fd; fd <= &s->sig_fd; fd++)
		if (*fd >= 0)
			close(*fd);
	free(s);
}

void esky_session_set_notify(struct esky_session *s, esky_session_notify_fn fn, void *ctx)
{
	s->notify = fn;
	s->notify_ctx = ctx;
}

const char *esky_session_store_dir(const struct esky_session *s)
{
	return s->store ? esky_store_dir(s->store) : NULL;
}

int esky_session_interrupt_fd(const struct esky_session *s)
{
	return s->intr_fd;
}

/* PROGRAM as execvp would find it, made absolute. */
static char *find_program(const char *name)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(name, '/') || !path)
		return realpath(name, NULL);
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t len = colon ? (size_t)(colon - path) : strlen(path);

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, len ? path : ".", name);
		if (access(buf, X_OK) == 0)
			return realpath(buf, NULL);
		path += len + (colon ? 1 : 0);
		if (!colon)
			break;
	}
	return NULL;
}

int esky_session_file(struct esky_session *s, const char *path)
{
	struct esky_debuginfo *di;
	char *full = find_program(path);
	int ret;

	if (!full)
		return esky_error(-ENOENT, "%s: no such program", path);
	if (access(full, X_OK) < 0) {
		ret = esky_error(-errno, "%s: %s", path, strerror(errno));
		free(full);
		return ret;
	}
	ret = esky_debuginfo_open(full, &di);
	if (ret) {
		free(full);
		return ret;
	}
	if (s->di)
		esky_debuginfo_close(s->di);
	free(s->program);
	s->di = di;
	s->program = full;
	return 0;
}

const char *esky_session_program(const struct esky_session *s)
{
	return s->program;
}

int esky_session_set_args(struct esky_session *s, char *const args[])
{
	size_t n = 0;
	char **na;

	while (args && args[n])
		n++;
	na = calloc(n + 1, sizeof(*na));
	if (!na)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		na[i] = strdup(args[i]);
		if (!na[i]) {
			while (i--)
				free(na[i]);
			free(na);
			return -ENOMEM;
		}
	}
	free_strings(s->args);
	s->args = na;
	return 0;
}

char *const *esky_session_args(const struct esky_session *s)
{
	static char *const none[] = { NULL };

	return s->args ? s->args : none;
}

int esky_session_set_redirects(struct esky_session *s, const struct esky_redirect *r, size_t n)
{
	struct esky_redirect *nr = NULL;

	for (size_t i = 0; i < n; i++)
		if (r[i].fd < 0 || r[i].fd > 2 ||
		    (r[i].kind == ESKY_REDIR_DUP ? r[i].to < 0 || r[i].to > 2 : !r[i].path))
			return esky_error(-EINVAL, "bad redirection of fd %d: only 0, 1 and 2, "
					  "to a file or to one of them", r[i].fd);
	if (n && !(nr = calloc(n, sizeof(*nr))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		nr[i] = r[i];
		nr[i].path = NULL;
		if (r[i].kind != ESKY_REDIR_DUP && !(nr[i].path = strdup(r[i].path))) {
			free_redirects(nr, i);
			return -ENOMEM;
		}
	}
	free_redirects(s->redirs, s->nredirs);
	s->redirs = nr;
	s->nredirs = n;
	return 0;
}

const struct esky_redirect *esky_session_redirects(const struct esky_session *s, size_t *n)
{
	*n = s->nredirs;
	return s->redirs;
}

/* The environment the program gets, copied from ours to be changed. */
static int own_environ(struct esky_session *s)
{
	size_t n = 0;

	if (s->env)
		return 0;
	while (environ && environ[n])
		n++;
	s->env = calloc(n + 1, sizeof(*s->env));
	if (!s->env)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		s->env[i] = strdup(environ[i]);
		if (!s->env[i]) {
			free_strings(s->env);
			s->env = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

/* Index of NAME in env, or -1. */
static long env_find(char **env, const char *name)
{
	size_t len = strlen(name);

	for (long i = 0; env[i]; i++)
		if (!strncmp(env[i], name, len) && env[i][len] == '=')
			return i;
	return -1;
}

static int env_name_ok(const char *name)
{
	if (!name[0] || strchr(name, '='))
		return esky_error(-EINVAL, "bad environment variable name '%s'", name);
	return 0;
}

int esky_session_setenv(struct esky_session *s, const char *name, const char *value)
{
	char *entry, **ne;
	size_t n = 0;
	long i;
	int ret = env_name_ok(name);

	if (!ret)
		ret = own_environ(s);
	if (ret)
		return ret;
	if (asprintf(&entry, "%s=%s", name, value) < 0)
		return -ENOMEM;
	i = env_find(s->env, name);
	if (i >= 0) {
		free(s->env[i]);
		s->env[i] = entry;
		return 0;
	}
	while (s->env[n])
		n++;
	ne = realloc(s->env, (n + 2) * sizeof(*ne));
	if (!ne) {
		free(entry);
		return -ENOMEM;
	}
	ne[n] = entry;
	ne[n + 1] = NULL;
	s->env = ne;
	return 0;
}

int esky_session_unsetenv(struct esky_session *s, const char *name)
{
	long i;
	int ret = name ? env_name_ok(name) : 0;

	if (!ret)
		ret = own_environ(s);
	if (ret)
		return ret;
	if (!name) {
		for (i = 0; s->env[i]; i++)
			free(s->env[i]);
		s->env[0] = NULL;
		return 0;
	}
	i = env_find(s->env, name);
	if (i < 0)
		return 0;
	free(s->env[i]);
	do
		s->env[i] = s->env[i + 1];
	while (s->env[++i]);
	return 0;
}

char *const *esky_session_environ(const struct esky_session *s)
{
	return s->env ? s->env : environ;
}

int esky_session_chdir(struct esky_session *s, const char *dir)
{
	const char *base = esky_session_cwd(s);
	char *path = NULL, *full;
	struct stat st;
	int ret = 0;

	if (!dir[0])
		return esky_error(-ENOENT, "'': no such directory");
	if (dir[0] == '/' ? !(path = strdup(dir)) : asprintf(&path, "%s/%s", base, dir) < 0)
		return -ENOMEM;
	full = realpath(path, NULL);
	if (!full || stat(full, &st) < 0)
		ret = esky_error(-errno, "%s: %s", dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		ret = esky_error(-ENOTDIR, "%s: not a directory", dir);
	else if (access(full, X_OK) < 0)
		ret = esky_error(-errno, "%s: %s", dir, strerror(errno));
	free(path);
	if (ret) {
		free(full);
		return ret;
	}
	free(s->cwd);
	s->cwd = full;
	return 0;
}

const char *esky_session_cwd(struct esky_session *s)
{
	if (s->cwd)
		return s->cwd;
	free(s->own_cwd);
	s->own_cwd = getcwd(NULL, 0);
	return s->own_cwd ? s->own_cwd : ".";
}

bool esky_session_alive(const struct esky_session *s)
{
	return s->t && esky_target_alive(s->t);
}

/* ---- the process ---- */

int sess_find_agent(struct esky_session *s)
{
	return s->agent ? 0 : esky_find_agent(&s->agent);
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * The program's stdio for a run: stdio[i] is the fd of ours that becomes
 * its fd i once the redirections are applied in order, as sh applies
 * them. The files they open, in the program's directory, are in
 * opened[] (as many as redirections) for the caller to close after the
 * start. Opened here, before any process exists, so that an error names
 * the file and nothing is started.
 */
static int open_stdio(struct esky_session *s, int stdio[3], int *opened, size_t *nopened)
{
	static const char *const names[3] = { "standard input", "standard output",
					      "standard error" };
	int dirfd = AT_FDCWD, ret = 0;

	*nopened = 0;
	for (int i = 0; i < 3; i++)
		stdio[i] = i;
	if (s->cwd) {
		dirfd = open(s->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			return esky_error(-errno, "cannot start the program in %s: %s (cd DIR)", s->cwd,
					  strerror(errno));
	}
	for (size_t i = 0; i < s->nredirs; i++) {
		const struct esky_redirect *r = &s->redirs[i];
		int flags = O_WRONLY | O_CREAT, fd;

		if (r->kind == ESKY_REDIR_DUP) {
			stdio[r->fd] = stdio[r->to];
			continue;
		}
		if (r->kind == ESKY_REDIR_READ)
			flags = O_RDONLY;
		else
			flags |= r->kind == ESKY_REDIR_APPEND ? O_APPEND : O_TRUNC;
		fd = openat(dirfd, r->path, flags | O_NOCTTY | O_CLOEXEC, 0666);
		if (fd < 0) {
			ret = esky_error(-errno, "cannot open %s for the program's %s: %s", r->path,
					 names[r->fd], strerror(errno));
			break;
		}
		opened[(*nopened)++] = fd;
		stdio[r->fd] = fd;
	}
	if (dirfd >= 0)
		close(dirfd);
	if (ret) {
		close_fds(opened, *nopened);
		*nopened = 0;
	}
	return ret;
}

static int launch(struct esky_session *s, struct esky_stop_report *r)
{
	struct esky_target_start_opts o = { .envp = s->env, .cwd = s->cwd };
	int stdio[3], *opened;
	size_t n = 0, nopened;
	char **argv;
	int ret;

	if (!s->program)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM");
	opened = calloc(s->nredirs + 1, sizeof(*opened));
	if (!opened)
		return -ENOMEM;
	/* A run that cannot start leaves the process there alone. */
	ret = open_stdio(s, stdio, opened, &nopened);
	if (ret) {
		free(opened);
		return ret;
	}
	o.stdio = stdio;
	sess_drop_process(s);
	while (s->args && s->args[n])
		n++;
	argv = calloc(n + 2, sizeof(*argv));
	if (!argv) {
		close_fds(opened, nopened);
		free(opened);
		return -ENOMEM;
	}
	argv[0] = s->program;
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = s->args[i];
	ret = esky_target_start_with(argv, &o, &s->t);
	close_fds(opened, nopened);
	free(opened);
	/* For a later session on this store ("run" with nothing else given). */
	if (!ret && s->store && esky_store_set_program(s->store, argv)) {
		pr_debug("the store does not keep the program: %s", esky_last_error());
		esky_error_clear();
	}
	free(argv);
	if (!ret) {
		/* All-stop over every thread, as gdb: a breakpoint any thread hits stops them all. */
		esky_target_set_idle(s->t, sess_idle, s);
		esky_target_on_new_thread(s->t, sess_thread_born, s);
		ret = esky_target_follow_threads(s->t, NULL, 0);
		if (ret) {
			esky_target_free(s->t);
			s->t = NULL;
			esky_error(ret, "%s: cannot follow its threads: %s", s->program, strerror(-ret));
		}
	}
	if (ret)
		return ret;
	esky_target_report_signals(s->t, !s->pass_signals);
	/* A fresh process descends from no snapshot. */
	s->lineage = 0;
	free(s->hashes);
	s->hashes = NULL;
	s->nhashes = 0;
	s->every_left = s->every_ns;
	sess_find_bias(s);
	sess_resolve_libs(s);
	ret = sess_sync_sites(s);
	memset(r, 0, sizeof(*r));
	r->why = ESKY_WHY_STARTED;
	return ret;
}

int esky_session_stored_program(struct esky_session *s, const char **program)
{
	char *const *argv = s->store ? esky_store_program(s->store) : NULL;
	int ret;

	if (!argv)
		return -ENOENT;
	ret = esky_session_file(s, argv[0]);
	if (!ret)
		ret = esky_session_set_args(s, argv + 1);
	if (!ret)
		*program = s->program;
	return ret;
}

int esky_session_kill(struct esky_session *s)
{
	if (!s->t)
		return sess_no_process();
	sess_drop_process(s);
	return 0;
}

/* ---- waiting ---- */

static void arm_timer(struct esky_session *s)
{
	struct itimerspec its = { 0 };

	if (!s->every_ns)
		return;
	if (!s->every_left)
		s->every_left = s->every_ns;
	its.it_value.tv_sec = (time_t)(s->every_left / 1000000000ULL);
	its.it_value.tv_nsec = (long)(s->every_left % 1000000000ULL);
	timerfd_settime(s->timer_fd, 0, &its, NULL);
}

/* Stop the timer and keep what is left of the period: only run time counts. */
static void disarm_timer(struct esky_session *s)
{
	struct itimerspec its = { 0 }, old;

	if (!s->every_ns)
		return;
	timerfd_settime(s->timer_fd, 0, &its, &old);
	s->every_left = (uint64_t)old.it_value.tv_sec * 1000000000ULL + (uint64_t)old.it_value.tv_nsec;
}

/* While esky waits for the program's threads to stop: what they may wait on esky for. */
void sess_idle(void *ctx)
{
	struct esky_session *s = ctx;

	if (s->dirty)
		sess_tracking_events(s);
}

static int wait_event(struct esky_session *s, struct esky_event *ev)
{
	for (;;) {
		struct pollfd pfd[4] = {
			{ .fd = s->sig_fd, .events = POLLIN },
			{ .fd = s->timer_fd, .events = POLLIN },
			{ .fd = s->intr_fd, .events = POLLIN },
			{ .fd = s->dirty ? esky_dirty_fd(s->dirty) : -1, .events = POLLIN },
		};
		uint64_t junk;
		int ret = esky_target_wait(s->t, ev, false);

		if (ret == 0 && ev->kind != ESKY_EV_NONE)
			return 0;
		if (ret && ret != -EAGAIN)
			return ret;
		if (ret == 0)
			continue;
		if (poll(pfd, 4, -1) < 0 && errno != EINTR)
			return -errno;
		if (pfd[3].revents & POLLIN)
			sess_tracking_events(s);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(s->sig_fd, &si, sizeof(si)) > 0)
				;
		}
		if ((pfd[1].revents & POLLIN) && read(s->timer_fd, &junk, sizeof(junk)) > 0 &&
		    s->pending == PENDING_NONE) {
			s->pending = PENDING_TIMER;
			esky_target_interrupt(s->t);
		}
		if ((pfd[2].revents & POLLIN) && read(s->intr_fd, &junk, sizeof(junk)) > 0) {
			if (s->pending == PENDING_NONE)
				esky_target_interrupt(s->t);
			s->pending = PENDING_USER;
		}
	}
}

/* The program sess_ended: say how, and let the process go (snapshots stay). */
void sess_ended(struct esky_session *s, const struct esky_event *ev, struct esky_stop_report *r)
{
	r->why = ev->kind == ESKY_EV_EXITED ? ESKY_WHY_EXITED : ESKY_WHY_KILLED;
	r->status = ev->status;
	r->sig = ev->sig;
	sess_drop_process(s);
}

/*
 * Wait for the program's next stop (a step), reading the tracking's events
 * meanwhile: a stepped munmap waits for them to be read.
 */
static int wait_stop(struct esky_session *s, struct esky_event *ev)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = s->sig_fd, .events = POLLIN },
			{ .fd = s->dirty ? esky_dirty_fd(s->dirty) : -1, .events = POLLIN },
		};
		int ret = esky_target_wait(s->t, ev, false);

		if (ret != -EAGAIN)
			return ret;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			return -errno;
		if (pfd[1].revents & POLLIN)
			sess_tracking_events(s);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(s->sig_fd, &si, sizeof(si)) > 0)
				;
		}
	}
}

/*
 * Step the instruction at a breakpoint address with the original byte in
 * place. *ev gets the step's event; *done is set if it was not the step's
 * trap (the program sess_ended or a signal came) and the caller must handle ev.
 */
static int step_over(struct esky_session *s, struct esky_event *ev, bool *other)
{
	struct site *site;
	uint64_t pc;
	int ret;

	/* From the thread that stopped, whichever `thread N` looks at. */
	esky_target_select_event(s->t);
	*other = false;
	ret = sess_get_pc(s, &pc);
	if (ret)
		return ret;
	site = sess_site_at(s, pc);
	ret = site ? esky_target_step_over(s->t, pc, site->orig) : esky_target_step(s->t);
	while (!ret) {
		ret = wait_stop(s, ev);
		if (!ret && ev->kind != ESKY_EV_NONE)
			break;
	}
	if (ret)
		return ret;
	if (ev->kind == ESKY_EV_TRAP && ev->si_code == TRAP_TRACE)
		esky_target_drop_signal(s->t);
	else
		*other = true;
	return 0;
}

static bool fatal_signal(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT ||
	       sig == SIGSYS || sig == SIGTRAP || sig == SIGINT;
}

/* Run until n stops at breakpoints (n 0: until anything stops it). */
static int run_until_stop(struct esky_session *s, unsigned n, struct esky_stop_report *r);

/* Run until the n-th stop; no timer snapshot is left unrecorded when it returns. */
int sess_run_until(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	int ret = run_until_stop(s, n, r);

	if (s->unrecorded && sess_record_snapshot(s))
		esky_error_clear();
	/* At the prompt, a manual snapshot must get the next number. */
	sess_release_spare(s);
	return ret;
}

static int run_until_stop(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	int ret;

	uint64_t junk;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return sess_no_process();
	/* A SIGINT that came while the program stood still is not for this run. */
	while (read(s->intr_fd, &junk, sizeof(junk)) > 0)
		;
	for (;;) {
		struct esky_event ev;
		bool other = false;
		uint64_t pc;

		ret = sess_get_pc(s, &pc);
		if (!ret && sess_site_at(s, pc))
			ret = step_over(s, &ev, &other);
		if (ret)
			return ret;
		if (!other) {
			arm_timer(s);
			ret = esky_target_cont(s->t);
			/* The program runs: now the timer snapshot's record. */
			if (!ret && s->unrecorded && sess_record_snapshot(s))
				esky_error_clear(); /* said; the program runs on */
			if (!ret)
				ret = wait_event(s, &ev);
			disarm_timer(s);
			if (ret)
				return esky_error(ret, "lost the program: %s", strerror(-ret));
		}
		switch (ev.kind) {
		case ESKY_EV_EXITED:
		case ESKY_EV_KILLED:
			sess_ended(s, &ev, r);
			return 0;
		case ESKY_EV_TRAP: {
			esky_regs_t regs;
			uint64_t addr;
			bool temporary = false;
			int bp;

			if (ev.si_code == TRAP_HWBKPT) {
				bool stop;

				ret = sess_at_watch(s, r, &stop);
				if (ret || stop)
					return ret;
				break;
			}
			ret = esky_target_get_regs(s->t, &regs);
			if (ret)
				return ret;
			addr = arch_breakpoint_addr(&regs);
			if (ev.si_code != SI_KERNEL || !sess_site_at(s, addr)) {
				/* The program's own trap: stop, deliver it on continue. */
				r->why = ESKY_WHY_SIGNAL;
				r->sig = SIGTRAP;
				sess_report_where(s, r);
				return 0;
			}
			/* Back to the breakpoint's address: it runs the original instruction next. */
			arch_regs_set_ip(&regs, addr);
			esky_target_drop_signal(s->t);
			ret = esky_target_set_regs(s->t, &regs);
			if (!ret)
				ret = sess_at_breakpoint(s, addr, &bp, &temporary);
			if (ret)
				return ret;
			/* The goal of next/step/finish/until, in the right frame. */
			if (!bp && s->goal && addr == s->goal_addr &&
			    arch_regs_sp(&regs) > s->goal_sp &&
			    esky_target_thread(s->t) == s->goal_thread) {
				r->why = ESKY_WHY_STEP;
				sess_report_where(s, r);
				return 0;
			}
			/* A library came or went: place the library breakpoints, go on silently. */
			if (!bp && s->dl_state && addr == s->dl_state) {
				sess_resolve_libs(s);
				ret = sess_sync_sites(s);
				if (ret)
					return ret;
				break;
			}
			if (bp && n <= 1) {
				r->why = ESKY_WHY_BREAKPOINT;
				r->bp = bp;
				r->temporary = temporary;
				sess_report_where(s, r);
				return 0;
			}
			if (bp)
				n--;
			break;
		}
		case ESKY_EV_SIGNAL:
			if (!fatal_signal(ev.sig))
				break; /* delivered by the next cont */
			r->why = ev.sig == SIGINT ? ESKY_WHY_INTERRUPTED : ESKY_WHY_SIGNAL;
			r->sig = ev.sig;
			if (ev.sig == SIGINT)
				esky_target_drop_signal(s->t);
			s->pending = PENDING_NONE;
			sess_report_where(s, r);
			return 0;
		case ESKY_EV_STOPPED:
			if (s->pending == PENDING_TIMER) {
				int id;

				s->pending = PENDING_NONE;
				/* The timer went off while its stop was on the way (a failed record): no snapshot. */
				if (!s->every_ns)
					break;
				s->every_left = s->every_ns;
				s->snap_bp = 0;
				s->snap_hit = ++s->timer_hits;
				ret = sess_take_snapshot_as(s, ESKY_SNAP_TIMER, NULL, &id, true);
				if (ret && esky_target_alive(s->t)) {
					/* A program esky cannot save: say why once, and let it run. */
					sess_notify(s, "timer snapshot refused: %s; timer snapshots off",
					       esky_last_error() ? esky_last_error() : strerror(-ret));
					esky_error_clear();
					s->every_ns = s->every_left = 0;
					ret = 0;
				}
				if (ret)
					return ret;
				break;
			}
			s->pending = PENDING_NONE;
			r->why = ESKY_WHY_INTERRUPTED;
			sess_report_where(s, r);
			return 0;
		default:
			break;
		}
	}
}

int esky_session_starti(struct esky_session *s, struct esky_stop_report *r)
{
	return launch(s, r);
}

int esky_session_run(struct esky_session *s, struct esky_stop_report *r)
{
	int ret = launch(s, r);

	return ret ? ret : sess_run_until(s, 1, r);
}

int esky_session_start(struct esky_session *s, struct esky_stop_report *r)
{
	int id, ret;

	if (!s->program)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM");
	ret = esky_session_break(s, "main", ESKY_BP_TBREAK, 0, &id);
	if (ret)
		return ret;
	ret = esky_session_run(s, r);
	if (sess_find_bp(s, id))
		esky_session_delete(s, id);
	return ret;
}

int esky_session_continue(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	return sess_run_until(s, n ? n : 1, r);
}

int esky_session_stepi(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	int ret = 0;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return sess_no_process();
	for (unsigned i = 0; i < (n ? n : 1) && !ret; i++) {
		struct esky_event ev;
		bool other;

		ret = step_over(s, &ev, &other);
		if (ret || !other)
			continue;
		if (ev.kind == ESKY_EV_EXITED || ev.kind == ESKY_EV_KILLED) {
			sess_ended(s, &ev, r);
			return 0;
		}
		r->why = ESKY_WHY_SIGNAL;
		r->sig = ev.sig;
		sess_report_where(s, r);
		return 0;
	}
	if (ret)
		return ret;
	r->why = ESKY_WHY_STEP;
	sess_report_where(s, r);
	return 0;
}

/* ---- looking at the program ---- */

/* A thread's tid as the program sees it (a rewound program has a PID namespace of its own). */
int sess_program_tid(pid_t tid)
{
	struct esky_proc_status st;

	return esky_proc_read_status(tid, &st) == 0 && st.nspid > 0 ? st.nspid : tid;
}

int esky_session_threads(struct esky_session *s, struct esky_thread_info **out, size_t *count)
{
	struct esky_tracee *trs[256];
	struct esky_thread_info *v;
	pid_t cur;
	size_t n;

	if (!esky_session_alive(s))
		return sess_no_process();
	n = esky_target_threads(s->t, trs, ESKY_ARRAY_SIZE(trs));
	if (n > ESKY_ARRAY_SIZE(trs))
		n = ESKY_ARRAY_SIZE(trs);
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	cur = esky_target_thread(s->t);
	for (size_t i = 0; i < n; i++) {
		pid_t tid = esky_tracee_pid(trs[i]);
		char path[64], *comm = NULL;

		v[i].tid = sess_program_tid(tid);
		v[i].current = tid == cur;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", esky_target_pid(s->t), tid);
		if (!esky_read_file(path, &comm, NULL)) {
			comm[strcspn(comm, "\n")] = '\0';
			snprintf(v[i].name, sizeof(v[i].name), "%s", comm);
			free(comm);
		}
		/* Where it stands, as where would say with it current. */
		esky_target_select_thread(s->t, tid);
		if (!sess_get_pc(s, &v[i].pc))
			sess_describe(s, v[i].pc, v[i].where, sizeof(v[i].where));
	}
	esky_target_select_thread(s->t, cur);
	*out = v;
	*count = n;
	return 0;
}

int esky_session_select_thread(struct esky_session *s, int tid)
{
	struct esky_tracee *trs[256];
	size_t n;

	if (!esky_session_alive(s))
		return sess_no_process();
	n = esky_target_threads(s->t, trs, ESKY_ARRAY_SIZE(trs));
	for (size_t i = 0; i < n && i < ESKY_ARRAY_SIZE(trs); i++)
		if (sess_program_tid(esky_tracee_pid(trs[i])) == tid)
			return esky_target_select_thread(s->t, esky_tracee_pid(trs[i]));
	return esky_error(-ESRCH, "no thread %d in the program", tid);
}

int esky_session_where(struct esky_session *s, struct esky_stop_report *r)
{
	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return sess_no_process();
	sess_report_where(s, r);
	return 0;
}

int esky_session_registers(struct esky_session *s, char *buf, size_t n)
{
	esky_regs_t regs;
	int ret;

	if (!esky_session_alive(s))
		return sess_no_process();
	ret = esky_target_get_regs(s->t, &regs);
	if (ret)
		return esky_error(ret, "cannot read the registers: %s", strerror(-ret));
	arch_regs_format(&regs, buf, n);
	return 0;
}

int esky_session_read(struct esky_session *s, uint64_t addr, void *buf, size_t len)
{
	int ret;

	if (!esky_session_alive(s))
		return sess_no_process();
	ret = esky_target_read_mem(s->t, addr, buf, len);
	if (ret)
		return esky_error(ret, "cannot read memory at 0x%" PRIx64 ": %s", addr, strerror(-ret));
	/* Show the program's bytes, not our breakpoints. */
	for (size_t i = 0; i < s->nsites; i++)
		if (s->sites[i].addr >= addr && s->sites[i].addr < addr + len)
			((uint8_t *)buf)[s->sites[i].addr - addr] = s->sites[i].orig;
	return 0;
}
