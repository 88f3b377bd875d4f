/* A program under esky's monitor, see target.h. */
#include "target.h"
#include "lazy.h"
#include "log.h"
#include "tree.h"
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A thread other than the main one, followed in all-stop (esky_target_follow_threads). */
struct task {
	struct esky_tracee *t;
	bool running;
	bool fresh;             /* its first stop (the attach) is still to come */
};

struct esky_target {
	struct esky_tracee *t;  /* the main thread (its tid is the pid) */
	struct esky_tracee *cur; /* the thread the caller looks at: t or a task's */
	struct esky_tracee *event; /* the thread whose stop was reported (owns pending_sig) */
	bool threads;           /* all-stop over every thread */
	bool main_running;      /* the main thread was let go (all-stop bookkeeping) */
	void (*idle)(void *ctx); /* called while waiting for threads to stop */
	void *idle_ctx;
	void (*born)(void *ctx, struct esky_tracee *tr); /* a new thread, stopped */
	void *born_ctx;
	struct task *tasks;
	size_t task_n;
	bool is_parent;         /* we forked it (start, restore): a fork copy is ours */
	bool stopped;
	bool interrupt_pending;
	bool report_signals;
	int pending_sig;        /* to deliver at the next cont */
	uint64_t run_base_ns;   /* run time before this monitor took it */
	uint64_t ran_ns;        /* run time under this monitor, up to the last stop */
	uint64_t resumed_ns;    /* our clock when it last went on (while !stopped) */
	/* background checkpoint */
	pthread_t writer;
	bool writing;
	int done_fd;
	struct esky_dump *dump;
	int write_ret;
	char write_err[1024];
	struct esky_dump_stats write_stats;
	struct esky_dump *uncommitted; /* defer_commit: every page read, not yet in place */
	uint64_t over_addr;     /* esky_target_step_over: the breakpoint to put back, or 0 */
	struct esky_lazy *lazy; /* a lazy resume's server, until every page is in */
};

static struct esky_target *target_new(struct esky_tracee *tr, bool is_parent, uint64_t run_base)
{
	struct esky_target *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->t = tr;
	t->cur = tr;
	t->event = tr;
	t->is_parent = is_parent;
	t->stopped = true;
	t->run_base_ns = run_base;
	t->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return t;
}

/*
 * The stopped program goes on, or a stop of it was collected: only the
 * time in between counts as run time (esky_target_run_ns).
 */
static void set_running(struct esky_target *t, bool running)
{
	uint64_t now = esky_now_ns();

	if (running && t->stopped)
		t->resumed_ns = now;
	else if (!running && !t->stopped)
		t->ran_ns += now - t->resumed_ns;
	t->stopped = !running;
}

int esky_target_start(char *const argv[], struct esky_target **out)
{
	return esky_target_start_with(argv, NULL, out);
}

int esky_target_start_with(char *const argv[], const struct esky_target_start_opts *o,
			   struct esky_target **out)
{
	/* The program gets esky's stdio (or o->stdio) and nothing else (doc/esky.md). */
	static const int stdio[3] = { 0, 1, 2 };
	struct esky_spawn sp = {
		.path = argv[0],
		.argv = argv,
		.envp = o ? o->envp : NULL,
		.cwd = o ? o->cwd : NULL,
		.fd_src = o && o->stdio ? o->stdio : stdio,
		.fd_dst = stdio,
		.fd_n = 3,
		.close_others = true,
	};
	struct esky_tracee *tr;
	int ret = esky_tracee_spawn(&sp, &tr);

	if (ret)
		return ret;
	*out = target_new(tr, true, 0);
	if (!*out) {
		esky_tracee_kill(tr);
		esky_tracee_free(tr);
		return -ENOMEM;
	}
	return 0;
}

int esky_target_restore(struct esky_image *const *chain, size_t n,
			const struct esky_restore_opts *o, struct esky_target **out)
{
	struct esky_restore_opts ro = *o;
	struct esky_tracee *tr, **threads = NULL;
	struct esky_lazy *lazy = NULL;
	size_t thread_n = 0;
	int ret;

	if (o->follow_threads) {
		ro.threads_out = &threads;
		ro.thread_n_out = &thread_n;
	}
	if (o->lazy)
		ro.lazy_out = &lazy;
	ret = esky_restore(chain, n, &ro, &tr);
	if (ret)
		return ret;
	*out = target_new(tr, true, esky_image_view(chain[0])->core->run_ns);
	if (*out)
		(*out)->lazy = lazy;
	else
		esky_lazy_free(lazy); /* (the program is killed below) */
	if (*out && o->follow_threads) {
		ret = esky_target_follow_threads(*out, threads, thread_n);
		thread_n = 0;
		if (ret) {
			esky_target_free(*out);
			free(threads);
			return esky_error(ret, "cannot follow the threads of the resumed program: %s",
					  strerror(-ret));
		}
	}
	for (size_t i = 0; i < thread_n; i++) {
		esky_tracee_kill(threads[i]);
		esky_tracee_free(threads[i]);
	}
	free(threads);
	if (!*out) {
		esky_tracee_kill(tr);
		esky_tracee_free(tr);
		return -ENOMEM;
	}
	return 0;
}

int esky_target_attach(pid_t pid, struct esky_target **out)
{
	struct esky_tracee *tr;
	struct esky_proc_stat st;
	struct timespec boot;
	uint64_t run = 0;
	int ret = esky_tracee_attach(pid, &tr);

	if (ret)
		return ret;
	/* Its run time so far: since it started (ticks after boot), by CLOCK_BOOTTIME. */
	if (!esky_proc_read_stat(pid, &st) && !clock_gettime(CLOCK_BOOTTIME, &boot)) {
		uint64_t now = (uint64_t)boot.tv_sec * 1000000000ULL + (uint64_t)boot.tv_nsec;
		uint64_t started = st.start_time * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));

		run = now > started ? now - started : 0;
	}
	*out = target_new(tr, false, run);
	if (!*out) {
		esky_tracee_detach(tr, 0);
		esky_tracee_free(tr);
		return -ENOMEM;
	}
	return 0;
}

static void join_writer(struct esky_target *t)
{
	if (!t->writing)
		return;
	pthread_join(t->writer, NULL);
	t->writing = false;
	esky_dump_free(t->dump);
	t->dump = NULL;
}

/* Forget every other thread (each killed and reaped first when kill is set). */
static void tasks_drop(struct esky_target *t, bool kill_them)
{
	for (size_t i = 0; i < t->task_n; i++) {
		if (kill_them)
			esky_tracee_kill(t->tasks[i].t);
		esky_tracee_free(t->tasks[i].t);
	}
	free(t->tasks);
	t->tasks = NULL;
	t->task_n = 0;
	t->cur = t->t;
	t->event = t->t;
}

void esky_target_free(struct esky_target *t)
{
	if (!t)
		return;
	join_writer(t);
	esky_dump_free(t->uncommitted);
	/* Traced threads are reaped before the main one, whose end waits for theirs. */
	if (t->task_n && !esky_tracee_gone(t->t))
		kill(esky_tracee_pid(t->t), SIGKILL);
	tasks_drop(t, true);
	esky_tracee_kill(t->t);
	esky_tracee_free(t->t);
	esky_lazy_free(t->lazy);
	if (t->done_fd >= 0)
		close(t->done_fd);
	free(t);
}

bool esky_target_lazy_pending(struct esky_target *t)
{
	return t->lazy && !esky_lazy_done(t->lazy);
}

int esky_target_lazy_fd(const struct esky_target *t)
{
	return t->lazy ? esky_lazy_done_fd(t->lazy) : -1;
}

int esky_target_lazy_finish(struct esky_target *t)
{
	int ret;

	if (!t->lazy)
		return 0;
	ret = esky_lazy_wait(t->lazy);
	esky_lazy_free(t->lazy);
	t->lazy = NULL;
	return ret;
}

int esky_target_release(struct esky_target *t, bool stopped)
{
	pid_t pid = esky_tracee_pid(t->t);
	int ret;

	/* Its memory must be in before nobody serves it. */
	ret = esky_target_lazy_finish(t);
	if (ret)
		return ret;
	join_writer(t);
	/*
	 * A SIGSTOP sent while the program sits in a ptrace stop stays pending;
	 * once we detach it is taken before the program runs one more
	 * instruction, with no tracer: a job-control stop a debugger can attach
	 * to. (PTRACE_DETACH's own signal argument is ignored in the interrupt
	 * stop a checkpoint or a thaw leaves the program in.)
	 */
	if (stopped && kill(pid, SIGSTOP) < 0)
		return -errno;
	for (size_t i = 0; i < t->task_n; i++)
		esky_tracee_detach(t->tasks[i].t, 0);
	tasks_drop(t, false);
	ret = esky_tracee_detach(t->t, stopped ? 0 : t->pending_sig);
	if (ret)
		return ret;
	esky_tracee_free(t->t);
	if (t->done_fd >= 0)
		close(t->done_fd);
	free(t);
	return 0;
}

/*
 * A program let go of stopped (esky_target_release) may still have that
 * SIGSTOP pending, or be in the job-control stop it made. A SIGCONT
 * discards a pending stop signal and ends a group stop; it is then taken
 * here and not delivered, so the program goes on at the instruction it
 * stopped at, as if it had never been let go. A signal that comes first
 * is kept for the next continue.
 */
static int settle_after_stop(struct esky_tracee *tr, pid_t pid, int *keep_sig)
{
	struct esky_stop st;
	int ret;

	*keep_sig = 0;
	if (kill(pid, SIGCONT) < 0)
		return -errno;
	for (int i = 0; i < 16; i++) {
		ret = esky_tracee_cont(tr, 0);
		if (!ret)
			ret = esky_tracee_wait(tr, &st, false);
		if (ret)
			return ret;
		if (st.kind == ESKY_STOP_EXITED || st.kind == ESKY_STOP_KILLED)
			return -ESRCH;
		if (st.kind == ESKY_STOP_SIGNAL && st.sig == SIGCONT)
			return 0;
		if (st.kind == ESKY_STOP_SIGNAL) {
			*keep_sig = st.sig;
			/* Held in its delivery stop: SIGCONT stays queued behind it. */
			return 0;
		}
	}
	return -EAGAIN;
}

int esky_target_take_back(pid_t pid, uint64_t run_ns, struct esky_target **out)
{
	struct esky_tracee *tr = NULL;
	int keep_sig = 0;
	int ret = esky_tracee_attach(pid, &tr);

	if (!ret)
		ret = settle_after_stop(tr, pid, &keep_sig);
	if (ret) {
		if (tr) {
			esky_tracee_detach(tr, 0);
			esky_tracee_free(tr);
		}
		return ret;
	}
	*out = target_new(tr, true, run_ns);
	if (*out)
		(*out)->pending_sig = keep_sig;
	if (!*out) {
		esky_tracee_detach(tr, 0);
		esky_tracee_free(tr);
		return -ENOMEM;
	}
	return 0;
}

int esky_target_make_uffd(struct esky_target *t, int *out)
{
	long fd = -1, r;
	int pidfd = -1, ret = esky_tracee_inject_begin(t->t);

	if (ret)
		return ret;
	/* UFFD_USER_MODE_ONLY: an ordinary user may have no other kind (vm.unprivileged_userfaultfd 0). */
	ret = esky_tracee_syscall(t->t, &fd, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | 1, 0, 0, 0,
				  0, 0);
	if (!ret && fd < 0)
		ret = (int)fd;
	if (!ret) {
		pidfd = (int)syscall(SYS_pidfd_open, esky_tracee_pid(t->t), 0);
		*out = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
		if (*out < 0)
			ret = -errno;
		if (pidfd >= 0)
			close(pidfd);
	}
	/* Nothing of it stays in the program's fd table. */
	if (fd >= 0)
		esky_tracee_syscall(t->t, &r, SYS_close, fd, 0, 0, 0, 0, 0);
	if (esky_tracee_inject_end(t->t) && !ret) {
		close(*out);
		ret = -EIO;
	}
	return ret;
}

int esky_target_survive_monitor(struct esky_target *t, bool on)
{
	return esky_tracee_set_exitkill(t->t, !on);
}

int esky_target_allow_tracer(struct esky_target *t, pid_t tracer)
{
	long r = 0;
	int ret = esky_tracee_inject_begin(t->t);

	if (ret)
		return ret;
	ret = esky_tracee_syscall(t->t, &r, SYS_prctl, PR_SET_PTRACER, tracer, 0, 0, 0, 0);
	if (!ret)
		ret = esky_tracee_inject_end(t->t);
	else
		esky_tracee_inject_end(t->t);
	if (ret)
		return ret;
	/* EINVAL: no Yama here, nothing restricts who may trace it. */
	return r == 0 || r == -EINVAL ? 0 : (int)r;
}

struct esky_tracee *esky_target_tracee(struct esky_target *t)
{
	return t->cur;
}

static int gone_or(struct esky_target *t, int ret)
{
	return ret && esky_tracee_gone(t->t) ? -ESRCH : ret;
}

int esky_target_get_regs(struct esky_target *t, esky_regs_t *regs)
{
	return gone_or(t, esky_tracee_get_regs(t->cur, regs));
}

int esky_target_set_regs(struct esky_target *t, const esky_regs_t *regs)
{
	return gone_or(t, esky_tracee_set_regs(t->cur, regs));
}

int esky_target_peek_user(struct esky_target *t, size_t off, uint64_t *value)
{
	return gone_or(t, esky_tracee_peek_user(t->cur, off, value));
}

int esky_target_poke_user(struct esky_target *t, size_t off, uint64_t value)
{
	return gone_or(t, esky_tracee_poke_user(t->cur, off, value));
}

int esky_target_read_mem(struct esky_target *t, uint64_t addr, void *buf, size_t len)
{
	return gone_or(t, esky_tracee_read_mem(t->cur, addr, buf, len));
}

int esky_target_write_mem(struct esky_target *t, uint64_t addr, const void *buf, size_t len)
{
	return gone_or(t, esky_tracee_write_mem(t->cur, addr, buf, len));
}

int esky_target_step_over(struct esky_target *t, uint64_t addr, uint8_t orig)
{
	const uint8_t int3 = ARCH_BREAKPOINT_BYTE;
	int ret = esky_target_write_mem(t, addr, &orig, 1);

	if (ret)
		return ret;
	ret = esky_target_step(t);
	if (ret) {
		esky_target_write_mem(t, addr, &int3, 1);
		return ret;
	}
	t->over_addr = addr;
	return 0;
}

/* The step over a breakpoint is over, whatever ended it: the breakpoint goes back. */
static void step_over_done(struct esky_target *t, const struct esky_event *ev)
{
	const uint8_t int3 = ARCH_BREAKPOINT_BYTE;

	if (!t->over_addr || ev->kind == ESKY_EV_NONE)
		return;
	if (ev->kind != ESKY_EV_EXITED && ev->kind != ESKY_EV_KILLED &&
	    esky_tracee_write_mem(t->cur, t->over_addr, &int3, 1))
		esky_tracee_write_mem(t->t, t->over_addr, &int3, 1); /* that thread is gone */
	t->over_addr = 0;
}

pid_t esky_target_thread(const struct esky_target *t)
{
	return esky_tracee_pid(t->cur);
}

size_t esky_target_thread_count(const struct esky_target *t)
{
	return t->task_n + 1;
}

static struct task *task_add(struct esky_target *t, struct esky_tracee *tr, bool running,
			     bool fresh)
{
	struct task *nt = realloc(t->tasks, (t->task_n + 1) * sizeof(*nt));

	if (!nt)
		return NULL;
	t->tasks = nt;
	nt[t->task_n] = (struct task){ .t = tr, .running = running, .fresh = fresh };
	return &nt[t->task_n++];
}

static void task_remove(struct esky_target *t, size_t i)
{
	if (t->cur == t->tasks[i].t)
		t->cur = t->t;
	if (t->event == t->tasks[i].t)
		t->event = t->t;
	esky_tracee_free(t->tasks[i].t);
	t->tasks[i] = t->tasks[--t->task_n];
}

static bool target_has_thread(void *ctx, pid_t tid)
{
	const struct esky_target *t = ctx;

	for (size_t k = 0; k < t->task_n; k++)
		if (esky_tracee_pid(t->tasks[k].t) == tid)
			return true;
	return false;
}

static int target_add_thread(void *ctx, struct esky_tracee *tr)
{
	return task_add(ctx, tr, false, false) ? 0 : -ENOMEM;
}

int esky_target_follow_threads(struct esky_target *t, struct esky_tracee *const *have, size_t n)
{
	int ret;

	t->threads = true;
	for (size_t i = 0; i < n; i++)
		if (!task_add(t, have[i], false, false))
			return -ENOMEM;
	ret = esky_tracee_follow_threads(t->t, true);
	for (size_t i = 0; !ret && i < t->task_n; i++)
		ret = esky_tracee_follow_threads(t->tasks[i].t, true);
	if (!ret)
		ret = esky_tracee_attach_threads(esky_tracee_pid(t->t), target_has_thread,
						 target_add_thread, t);
	return ret;
}

pid_t esky_target_pid(const struct esky_target *t)
{
	return esky_tracee_pid(t->t);
}

bool esky_target_alive(const struct esky_target *t)
{
	return !esky_tracee_gone(t->t);
}

uint64_t esky_target_run_ns(const struct esky_target *t)
{
	return t->run_base_ns + t->ran_ns + (t->stopped ? 0 : esky_now_ns() - t->resumed_ns);
}

void esky_target_report_signals(struct esky_target *t, bool on)
{
	t->report_signals = on;
}

/*
 * Let the program go (a whole run or one instruction of the current
 * thread), with the signal it is owed. In all-stop, a run lets every
 * thread go; a step only the current one (the others stay where they
 * are: none runs past a breakpoint that a step lifted).
 */
static int resume(struct esky_target *t, int (*go)(struct esky_tracee *, int), bool all)
{
	int sig, ret;

	/* A run goes on from the thread that stopped, whichever the caller looked at. */
	t->cur = t->event;
	sig = t->pending_sig;
	t->pending_sig = 0;
	ret = go(t->cur, sig);
	for (size_t i = 0; !ret && i < t->task_n; i++) {
		struct task *k = &t->tasks[i];

		if (k->t == t->cur) {
			k->running = true;
		} else if (all && !k->running && !k->fresh) {
			ret = esky_tracee_cont(k->t, 0);
			if (ret == -ESRCH)
				ret = 0; /* ended meanwhile: its exit is collected by the next wait */
			k->running = !ret;
		}
	}
	if (!ret && all && t->cur != t->t && !t->main_running)
		ret = esky_tracee_cont(t->t, 0);
	if (!ret && (all || t->cur == t->t))
		t->main_running = true;
	if (!ret)
		set_running(t, true);
	return ret;
}

int esky_target_cont(struct esky_target *t)
{
	return resume(t, esky_tracee_cont, true);
}

int esky_target_step(struct esky_target *t)
{
	return resume(t, esky_tracee_step, false);
}

int esky_target_interrupt(struct esky_target *t)
{
	if (t->stopped || t->interrupt_pending)
		return 0;
	t->interrupt_pending = true;
	return esky_tracee_interrupt(t->t);
}

void esky_target_drop_signal(struct esky_target *t)
{
	t->pending_sig = 0;
}

void esky_target_rewound(struct esky_target *t, uint64_t run_ns)
{
	t->pending_sig = 0;
	t->run_base_ns = run_ns;
	t->ran_ns = 0;
}

static int main_event(struct esky_target *t, const struct esky_stop *stp, struct esky_event *ev);

void esky_target_set_idle(struct esky_target *t, void (*fn)(void *ctx), void *ctx)
{
	t->idle = fn;
	t->idle_ctx = ctx;
}

void esky_target_on_new_thread(struct esky_target *t,
			       void (*fn)(void *ctx, struct esky_tracee *tr), void *ctx)
{
	t->born = fn;
	t->born_ctx = ctx;
}

size_t esky_target_threads(struct esky_target *t, struct esky_tracee **out, size_t max)
{
	size_t n = 0;

	if (max)
		out[n++] = t->t;
	for (size_t i = 0; i < t->task_n && n < max; i++)
		out[n++] = t->tasks[i].t;
	return t->task_n + 1;
}

void esky_target_select_event(struct esky_target *t)
{
	t->cur = t->event;
}

int esky_target_make_current(struct esky_target *t, pid_t tid)
{
	int ret = esky_target_select_thread(t, tid);

	if (!ret)
		t->event = t->cur;
	return ret;
}

int esky_target_select_thread(struct esky_target *t, pid_t tid)
{
	if (esky_tracee_pid(t->t) == tid) {
		t->cur = t->t;
		return 0;
	}
	for (size_t i = 0; i < t->task_n; i++) {
		if (esky_tracee_pid(t->tasks[i].t) == tid) {
			t->cur = t->tasks[i].t;
			return 0;
		}
	}
	return -ESRCH;
}

/* A new thread's first stop was collected: it may be set up (debug registers) now. */
static void born(struct esky_target *t, struct task *k)
{
	k->fresh = false;
	if (t->born)
		t->born(t->born_ctx, k->t);
}

/*
 * Wait for a thread asked to stop. Not blocking in waitpid: a thread may
 * be held by esky itself meanwhile (madvise on memory esky tracks with
 * userfaultfd waits until esky reads the event), so the idle hook runs
 * between looks.
 */
static int wait_stopping(struct esky_target *t, struct esky_tracee *tr, struct esky_stop *st)
{
	for (;;) {
		struct timespec nap = { 0, 200000 };
		int ret = esky_tracee_wait(tr, st, true);

		if (ret != -EAGAIN)
			return ret;
		if (t->idle)
			t->idle(t->idle_ctx);
		nanosleep(&nap, NULL);
	}
}

/*
 * All-stop: a thread stopped with something for the caller; stop every
 * other one and wait until it has. A breakpoint another thread hit
 * meanwhile is undone (its pc put back on the int3, the SIGTRAP dropped):
 * it hits it again once let go, if the breakpoint is still there. Other
 * signals are queued to their thread again, to come back then. A thread
 * made or ended on the way is taken in or forgotten.
 */
static int stop_others(struct esky_target *t, struct esky_tracee *except)
{
	pid_t pid = esky_tracee_pid(t->t);

	for (size_t i = 0; i < t->task_n; i++)
		if (t->tasks[i].t != except && t->tasks[i].running)
			esky_tracee_interrupt(t->tasks[i].t);
	for (size_t i = 0; i < t->task_n;) {
		struct task *k = &t->tasks[i];
		struct esky_stop st;
		int ret;

		if (k->t == except || (!k->running && !k->fresh)) {
			i++;
			continue;
		}
		ret = wait_stopping(t, k->t, &st);
		if (ret || st.kind == ESKY_STOP_EXITED || st.kind == ESKY_STOP_KILLED) {
			task_remove(t, i);
			continue;
		}
		if (st.kind == ESKY_STOP_CLONE) {
			struct esky_tracee *nt;

			/*
			 * Inside clone: its result is not in rax yet (a checkpoint
			 * now would thaw it failing). Let it finish, stop it after.
			 */
			if (!esky_tracee_adopt(st.new_pid, &nt) && !task_add(t, nt, false, true))
				esky_tracee_free(nt);
			k = &t->tasks[i];
			if (!esky_tracee_cont(k->t, 0) && !esky_tracee_interrupt(k->t))
				continue;
		} else if (st.kind == ESKY_STOP_SIGNAL && st.sig == SIGTRAP &&
			   st.si_code == SI_KERNEL) {
			esky_regs_t regs;

			if (!esky_tracee_get_regs(k->t, &regs)) {
				arch_regs_set_ip(&regs, arch_regs_ip(&regs) - ARCH_BREAKPOINT_LEN);
				esky_tracee_set_regs(k->t, &regs);
			}
		} else if (st.kind == ESKY_STOP_SIGNAL) {
			syscall(SYS_tgkill, pid, esky_tracee_pid(k->t), st.sig);
		} else if (st.kind != ESKY_STOP_INTERRUPT && st.kind != ESKY_STOP_GROUP) {
			/* Not a stop yet (a syscall stop cannot come; an exec...): wait again. */
			if (!esky_tracee_cont(k->t, 0))
				continue;
		}
		k->running = false;
		if (k->fresh)
			born(t, k);
		i++;
	}
	if (except != t->t && t->main_running && !esky_tracee_gone(t->t)) {
		/* The main thread, as the others (it may have ended alone: then it stays a zombie). */
		struct esky_stop st;

		esky_tracee_interrupt(t->t);
		for (;;) {
			if (wait_stopping(t, t->t, &st) || st.kind == ESKY_STOP_EXITED ||
			    st.kind == ESKY_STOP_KILLED)
				break;
			if (st.kind == ESKY_STOP_CLONE) {
				struct esky_tracee *nt;

				/* As a thread's above: out of clone first (the new one's stop comes below). */
				if (!esky_tracee_adopt(st.new_pid, &nt) && !task_add(t, nt, false, true))
					esky_tracee_free(nt);
				if (!esky_tracee_cont(t->t, 0) && !esky_tracee_interrupt(t->t))
					continue;
				break;
			}
			if (st.kind == ESKY_STOP_SIGNAL && st.sig == SIGTRAP && st.si_code == SI_KERNEL) {
				esky_regs_t regs;

				if (!esky_tracee_get_regs(t->t, &regs)) {
					arch_regs_set_ip(&regs, arch_regs_ip(&regs) - ARCH_BREAKPOINT_LEN);
					esky_tracee_set_regs(t->t, &regs);
				}
			} else if (st.kind == ESKY_STOP_SIGNAL) {
				syscall(SYS_tgkill, pid, pid, st.sig);
			}
			break;
		}
	}
	t->main_running = false;
	/* Fresh threads made meanwhile: their first stop. */
	for (size_t i = 0; i < t->task_n; i++) {
		struct esky_stop st;

		if (t->tasks[i].fresh && !wait_stopping(t, t->tasks[i].t, &st))
			born(t, &t->tasks[i]);
	}
	return 0;
}

/*
 * A stop of a thread other than the main one, running in all-stop mode:
 * 1 and *ev filled when it is for the caller (every thread then stopped,
 * that one current), 0 when it was handled here (the thread runs on).
 */
static int task_event(struct esky_target *t, size_t i, const struct esky_stop *st,
		      struct esky_event *ev)
{
	struct task *k = &t->tasks[i];
	struct esky_tracee *nt;

	switch (st->kind) {
	case ESKY_STOP_EXITED:
	case ESKY_STOP_KILLED:
		task_remove(t, i);
		return 0;
	case ESKY_STOP_CLONE:
		if (!esky_tracee_adopt(st->new_pid, &nt) && !task_add(t, nt, true, true))
			esky_tracee_free(nt);
		k = &t->tasks[i];
		esky_tracee_cont(k->t, 0);
		return 0;
	case ESKY_STOP_GROUP:
		esky_tracee_listen(k->t);
		return 0;
	case ESKY_STOP_SIGNAL:
		if (st->sig == SIGTRAP && (st->si_code == SI_KERNEL || st->si_code == TRAP_TRACE ||
					   st->si_code == TRAP_BRKPT || st->si_code == TRAP_HWBKPT)) {
			ev->kind = ESKY_EV_TRAP;
			ev->si_code = st->si_code;
		} else if (t->report_signals) {
			ev->kind = ESKY_EV_SIGNAL;
		} else {
			esky_tracee_cont(k->t, st->sig);
			return 0;
		}
		ev->sig = st->sig;
		k->running = false;
		t->cur = k->t;
		t->event = k->t;
		t->pending_sig = st->sig;
		set_running(t, false);
		stop_others(t, k->t);
		return 1;
	default:
		if (k->fresh)
			born(t, k);
		esky_tracee_cont(k->t, 0);
		return 0;
	}
}

static int target_wait(struct esky_target *t, struct esky_event *ev, bool block);

int esky_target_wait(struct esky_target *t, struct esky_event *ev, bool block)
{
	int ret = target_wait(t, ev, block);

	if (!ret)
		step_over_done(t, ev);
	return ret;
}

static int target_wait(struct esky_target *t, struct esky_event *ev, bool block)
{
	struct esky_stop st;
	int ret;

	memset(ev, 0, sizeof(*ev));
	/* Every other thread first, without blocking: only the main one blocks. */
	for (size_t i = 0; t->threads && i < t->task_n; i++) {
		if (!t->tasks[i].running && !t->tasks[i].fresh)
			continue;
		ret = esky_tracee_wait(t->tasks[i].t, &st, true);
		if (ret == -EAGAIN)
			continue;
		if (ret) {
			task_remove(t, i--);
			continue;
		}
		ret = task_event(t, i, &st, ev);
		if (ret)
			return 0;
		i = (size_t)-1; /* the table may have changed: look again from the start */
	}
	ret = esky_tracee_wait(t->t, &st, !block);
	if (ret)
		return ret;
	t->main_running = false;
	set_running(t, false);
	if (t->threads && st.kind == ESKY_STOP_CLONE) {
		struct esky_tracee *nt;

		if (!esky_tracee_adopt(st.new_pid, &nt) && !task_add(t, nt, true, true))
			esky_tracee_free(nt);
		t->main_running = true;
		set_running(t, true);
		return esky_tracee_cont(t->t, 0);
	}
	if (t->threads && (st.kind == ESKY_STOP_EXITED || st.kind == ESKY_STOP_KILLED))
		tasks_drop(t, false);
	t->cur = t->t;
	t->event = t->t;
	ret = main_event(t, &st, ev);
	if (!ret && t->threads && (ev->kind == ESKY_EV_TRAP || ev->kind == ESKY_EV_SIGNAL ||
				   ev->kind == ESKY_EV_STOPPED))
		ret = stop_others(t, t->t);
	return ret;
}

/* A stop of the main thread: *ev for the caller, or handled here (the program goes on). */
static int main_event(struct esky_target *t, const struct esky_stop *stp, struct esky_event *ev)
{
	struct esky_stop st = *stp;
	int ret;

	switch (st.kind) {
	case ESKY_STOP_EXITED:
		ev->kind = ESKY_EV_EXITED;
		ev->status = st.status;
		return 0;
	case ESKY_STOP_KILLED:
		ev->kind = ESKY_EV_KILLED;
		ev->sig = st.sig;
		return 0;
	case ESKY_STOP_INTERRUPT:
		if (t->interrupt_pending) {
			t->interrupt_pending = false;
			ev->kind = ESKY_EV_STOPPED;
			return 0;
		}
		break;
	case ESKY_STOP_GROUP:
		/*
		 * The program was stopped by SIGSTOP or a terminal signal:
		 * stay stopped without running (PTRACE_LISTEN) until SIGCONT.
		 * A terminal stop stops esky too, so that the shell sees the
		 * job stopped; SIGCONT from `fg` wakes both.
		 */
		if (t->interrupt_pending) {
			t->interrupt_pending = false;
			ev->kind = ESKY_EV_STOPPED;
			return 0;
		}
		ret = esky_tracee_listen(t->t);
		t->main_running = true;
		set_running(t, true);
		if (st.sig != SIGSTOP)
			kill(getpid(), SIGSTOP);
		return ret;
	case ESKY_STOP_SIGNAL:
		if (st.sig == SIGTRAP && (st.si_code == SI_KERNEL || st.si_code == TRAP_TRACE ||
					  st.si_code == TRAP_BRKPT || st.si_code == TRAP_HWBKPT)) {
			/* Delivered unless the caller knows it is its own (esky_target_drop_signal). */
			t->pending_sig = SIGTRAP;
			ev->kind = ESKY_EV_TRAP;
			ev->sig = st.sig;
			ev->si_code = st.si_code;
			return 0;
		}
		t->pending_sig = st.sig;
		if (t->report_signals) {
			ev->kind = ESKY_EV_SIGNAL;
			ev->sig = st.sig;
			return 0;
		}
		break;
	default:
		break;
	}
	/* Nothing for the caller. If we asked for a stop, the program stays stopped for it. */
	if (t->interrupt_pending && st.kind != ESKY_STOP_SIGNAL) {
		t->interrupt_pending = false;
		ev->kind = ESKY_EV_STOPPED;
		return 0;
	}
	return esky_target_cont(t);
}

static void *writer_main(void *arg)
{
	struct esky_target *t = arg;
	uint64_t one = 1;
	const char *msg;

	esky_error_clear();
	t->write_ret = esky_dump_write(t->dump, &t->write_stats);
	msg = esky_last_error();
	snprintf(t->write_err, sizeof(t->write_err), "%s", msg ? msg : "");
	if (write(t->done_fd, &one, sizeof(one)) < 0)
		t->write_ret = t->write_ret ? t->write_ret : -EIO;
	return NULL;
}

int esky_target_checkpoint(struct esky_target *t, const char *path,
			   const struct esky_checkpoint_opts *o, struct esky_dump_stats *stats)
{
	struct esky_dump_opts dopts = {
		.fork_copy = o->background && t->is_parent,
		.patches = o->patches,
		.patch_n = o->patch_n,
		.run_ns = esky_target_run_ns(t),
		.parent_id = o->parent_id,
		.parent_hint = o->parent_hint,
		.parent_hash = o->parent_hash,
		.parent_ctx = o->parent_ctx,
		.page_unchanged = o->page_unchanged,
		.unchanged_ctx = o->unchanged_ctx,
		.maps_cache = o->maps_cache,
		.writer = o->writer,
	};
	struct esky_tracee **mine = NULL;
	struct esky_dump *d;
	int ret;

	ret = t->writing || t->uncommitted
		? esky_error(-EBUSY, "a checkpoint is still being written")
		: esky_target_lazy_finish(t); /* a lazy resume's pages first (a fork copy would miss them) */
	if (ret || (!t->threads && esky_tree_has_children(esky_tracee_pid(t->t)))) {
		/* Given a writer and not using it (a tree is written its own way): it goes. */
		if (dopts.writer)
			esky_image_writer_abort(dopts.writer);
		dopts.writer = NULL;
		if (ret)
			return ret;
	}
	/*
	 * A program with children (not under esky-shell, which follows one
	 * process): the whole tree, each process stopped while all are read.
	 */
	if (!t->threads && esky_tree_has_children(esky_tracee_pid(t->t))) {
		struct esky_dump_stats st;

		dopts.fork_copy = false;
		ret = esky_tree_checkpoint(t->t, path, &dopts, &st);
		if (stats)
			*stats = st;
		return ret;
	}
	if (t->threads) {
		/* Every thread is stopped (all-stop): the dump takes them as they are. */
		mine = calloc(t->task_n + 1, sizeof(*mine));
		if (!mine) {
			if (dopts.writer)
				esky_image_writer_abort(dopts.writer);
			return -ENOMEM;
		}
		for (size_t i = 0; i < t->task_n; i++)
			mine[i] = t->tasks[i].t;
		dopts.threads = mine;
		dopts.thread_n = t->task_n;
		dopts.current_thread = esky_tracee_pid(t->event);
	}
	ret = esky_dump_prepare(t->t, path, &dopts, &d);
	free(mine);
	if (ret)
		return ret;
	if (esky_dump_has_copy(d)) {
		uint64_t junk;

		/* The copy holds the memory: the other threads run on with the main one. */
		esky_dump_release_threads(d);
		/* Drain a completion left from before. */
		while (read(t->done_fd, &junk, sizeof(junk)) > 0)
			;
		t->dump = d;
		t->write_ret = 0;
		t->write_err[0] = '\0';
		memset(&t->write_stats, 0, sizeof(t->write_stats));
		ret = pthread_create(&t->writer, NULL, writer_main, t);
		if (ret == 0) {
			t->writing = true;
			if (stats)
				memset(stats, 0, sizeof(*stats));
			return 0;
		}
		t->dump = NULL;
	}
	{
		struct esky_dump_stats st;

		if (o->defer_commit) {
			ret = esky_dump_read(d, &st);
			if (stats)
				*stats = st;
			if (!ret) {
				esky_dump_release_threads(d);
				t->uncommitted = d;
				return 0;
			}
		} else {
			ret = esky_dump_write(d, &st);
			if (stats)
				*stats = st;
		}
	}
	esky_dump_free(d);
	return ret;
}

int esky_target_checkpoint_commit(struct esky_target *t, struct esky_dump_stats *stats)
{
	struct esky_dump_stats st = { 0 };
	struct esky_dump *d = t->uncommitted;
	int ret;

	if (!d)
		return 0;
	t->uncommitted = NULL;
	ret = esky_dump_commit(d, stats ? stats : &st);
	esky_dump_free(d);
	return ret;
}

bool esky_target_checkpoint_busy(const struct esky_target *t)
{
	return t->writing;
}

int esky_target_checkpoint_fd(const struct esky_target *t)
{
	return t->done_fd;
}

int esky_target_checkpoint_done(struct esky_target *t, struct esky_dump_stats *stats)
{
	uint64_t junk;

	if (!t->writing)
		return 0;
	join_writer(t);
	while (read(t->done_fd, &junk, sizeof(junk)) > 0)
		;
	if (stats)
		*stats = t->write_stats;
	if (t->write_ret && t->write_err[0])
		esky_error(t->write_ret, "%s", t->write_err);
	return t->write_ret;
}
