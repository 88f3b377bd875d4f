/* Signal state is per thread and survives as such: each thread's blocked mask and alternate signal stack (SS_AUTODISARM included), signals pending for one thread (a standard one and queued real-time ones with their values) stay that thread's and are delivered there when it unblocks them, signals pending for the process stay shared (seen by every thread, taken by the one that unblocks them), and handlers run on the stack of the thread they run in. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>

#include "cap.h"
#include "cap-threads.h"

/* In <linux/signal.h> (Linux 4.7), not in glibc 2.36's headers. */
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

#define WAIT_MS 20000		/* give up on an event after 20 s */
#define NTHREADS 3
#define ALT1_SIZE 65536
#define ALT2_SIZE 49152

enum cmd { CMD_NONE, CMD_CHECK, CMD_DELIVER, CMD_PROF, CMD_EXIT };

struct thr {
	int idx;			/* 1..NTHREADS; main is 0 */
	pthread_t th;
	pid_t tid;
	int deliver;			/* the signal it unblocks on CMD_DELIVER */
	sigset_t mask;			/* as set up */
	stack_t ss;			/* as set up */
	sigset_t want_pending;		/* what sigpending() must give */
	enum cmd cmd;
	sem_t go, done;
};

/* One handler run. */
struct event {
	int sig;
	pid_t tid;
	int value;			/* si_value for SI_QUEUE, else -1 */
	int stack;			/* 1, 2: on that altstack; 0: neither */
};

static struct thr thr[NTHREADS + 1];
static char alt1[ALT1_SIZE] __attribute__((aligned(16)));
static char alt2[ALT2_SIZE] __attribute__((aligned(16)));
static struct event events[32];
static atomic_int nevents;
static int rt_thread, rt_shared, extra_base;

static void handler(int sig, siginfo_t *si, void *uc)
{
	char here;
	int i = atomic_fetch_add(&nevents, 1);

	(void)uc;
	if (i >= 32)
		return;
	events[i].sig = sig;
	events[i].tid = gettid();
	events[i].value = si->si_code == SI_QUEUE ? si->si_value.sival_int : -1;
	events[i].stack = &here >= alt1 && &here < alt1 + ALT1_SIZE ? 1 :
			  &here >= alt2 && &here < alt2 + ALT2_SIZE ? 2 : 0;
}

/* Signals 1..64 but SIGKILL, SIGSTOP: what a mask can hold. */
static void check_set(const sigset_t *found, const sigset_t *want,
		      const char *what, int idx)
{
	for (int s = 1; s <= 64; s++) {
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		if (sigismember(found, s) != sigismember(want, s))
			cap_fail(__FILE__, __LINE__,
				 "%s of thread %d: signal %d %s, expected %s",
				 what, idx, s,
				 sigismember(found, s) ? "in" : "not in",
				 sigismember(want, s) ? "in" : "not in");
	}
}

/* In the thread itself: mask, altstack and pending set as expected. */
static void check_self(struct thr *t)
{
	sigset_t cur, pend;
	stack_t ss;

	CHECK_INT(gettid(), t->tid);
	CHECK_INT(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
	check_set(&cur, &t->mask, "blocked mask", t->idx);
	CHECK_SYS(sigpending(&pend));
	check_set(&pend, &t->want_pending, "pending set", t->idx);
	CHECK_SYS(sigaltstack(NULL, &ss));
	CHECK_INT(ss.ss_flags, t->ss.ss_flags);
	if (!(ss.ss_flags & SS_DISABLE)) {
		CHECK(ss.ss_sp == t->ss.ss_sp);
		CHECK_INT(ss.ss_size, t->ss.ss_size);
	}
}

/* In main: unblock sig (its handler runs before this returns). */
static void unblock(int sig)
{
	sigset_t one;

	sigemptyset(&one);
	sigaddset(&one, sig);
	CHECK_INT(pthread_sigmask(SIG_UNBLOCK, &one, NULL), 0);
	sigdelset(&thr[0].mask, sig);
}

static void *worker(void *arg)
{
	struct thr *t = arg;
	sigset_t extra;

	t->tid = gettid();
	sigemptyset(&extra);
	sigaddset(&extra, extra_base + t->idx);
	CHECK_INT(pthread_sigmask(SIG_BLOCK, &extra, NULL), 0);
	if (t->idx == 1) {
		stack_t ss = { .ss_sp = alt1, .ss_size = ALT1_SIZE };

		CHECK_SYS(sigaltstack(&ss, NULL));
	} else if (t->idx == 2) {
		stack_t ss = { .ss_sp = alt2, .ss_size = ALT2_SIZE,
			       .ss_flags = SS_AUTODISARM };

		CHECK_SYS(sigaltstack(&ss, NULL));
	}
	CHECK_INT(pthread_sigmask(SIG_BLOCK, NULL, &t->mask), 0);
	CHECK_SYS(sigaltstack(NULL, &t->ss));
	sem_post(&t->done);
	for (;;) {
		while (sem_wait(&t->go) == -1)
			CHECK_INT(errno, EINTR);
		switch (t->cmd) {
		case CMD_CHECK:
			check_self(t);
			break;
		case CMD_DELIVER: {
			sigset_t one;

			/* The handler runs before pthread_sigmask returns. */
			sigemptyset(&one);
			sigaddset(&one, t->deliver);
			CHECK_INT(pthread_sigmask(SIG_UNBLOCK, &one, NULL), 0);
			sigdelset(&t->mask, t->deliver);
			break;
		}
		case CMD_PROF:
			CHECK_INT(pthread_kill(pthread_self(), SIGPROF), 0);
			break;
		case CMD_EXIT:
			sem_post(&t->done);
			return NULL;
		case CMD_NONE:
			break;
		}
		sem_post(&t->done);
	}
}

static void wait_done(struct thr *t, enum cmd cmd)
{
	cap_sem_wait(&t->done, WAIT_MS, "thread %d, command %d", t->idx, cmd);
}

/* Have thread t carry out cmd, and wait until it has. */
static void run(struct thr *t, enum cmd cmd)
{
	t->cmd = cmd;
	sem_post(&t->go);
	wait_done(t, cmd);
}

static void check_all(void)
{
	check_self(&thr[0]);
	for (int i = 1; i <= NTHREADS; i++)
		run(&thr[i], CMD_CHECK);
}

/* The events since *from: n of them, all sig, in thread t, on stack. */
static void check_events(int *from, int n, int sig, const struct thr *t,
			 int stack, int first_value)
{
	CHECK_INT(atomic_load(&nevents), *from + n);
	for (int i = 0; i < n; i++) {
		const struct event *e = &events[*from + i];

		CHECK_INT(e->sig, sig);
		if (e->tid != t->tid)
			cap_fail(__FILE__, __LINE__, "signal %d handled in "
				 "thread %d, expected thread %d (tid %d)",
				 sig, e->tid, t->idx, t->tid);
		CHECK_INT(e->stack, stack);
		CHECK_INT(e->value, first_value < 0 ? -1 : first_value + i);
	}
	*from += n;
}

int main(void)
{
	struct sigaction sa = { .sa_sigaction = handler,
				.sa_flags = SA_SIGINFO | SA_ONSTACK |
					    SA_RESTART };
	int sigs[] = { SIGUSR2, SIGURG, SIGPROF, 0, 0 };
	sigset_t base, shared;
	int seen = 0;

	rt_thread = SIGRTMIN + 2;
	rt_shared = SIGRTMIN + 5;
	extra_base = SIGRTMIN + 10;
	sigs[3] = rt_thread;
	sigs[4] = rt_shared;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 5; i++)
		CHECK_SYS(sigaction(sigs[i], &sa, NULL));
	/* Blocked in every thread (inherited); each adds one of its own. */
	sigemptyset(&base);
	sigaddset(&base, SIGUSR2);
	sigaddset(&base, SIGURG);
	sigaddset(&base, SIGHUP);
	sigaddset(&base, rt_thread);
	sigaddset(&base, rt_shared);
	CHECK_INT(pthread_sigmask(SIG_BLOCK, &base, NULL), 0);
	thr[0].tid = gettid();
	thr[0].deliver = rt_shared;
	CHECK_INT(pthread_sigmask(SIG_BLOCK, NULL, &thr[0].mask), 0);
	CHECK_SYS(sigaltstack(NULL, &thr[0].ss));
	CHECK_INT(thr[0].ss.ss_flags, SS_DISABLE);
	thr[1].deliver = SIGUSR2;
	thr[2].deliver = SIGURG;
	thr[3].deliver = rt_thread;
	for (int i = 1; i <= NTHREADS; i++) {
		struct thr *t = &thr[i];

		t->idx = i;
		CHECK_SYS(sem_init(&t->go, 0, 0));
		CHECK_SYS(sem_init(&t->done, 0, 0));
		CHECK_INT(pthread_create(&t->th, NULL, worker, t), 0);
		wait_done(t, CMD_NONE);	/* its set-up */
	}

	/* For thread 1 only; for the process; for thread 3 only, queued
	 * with values; for the process, queued with values. */
	CHECK_INT(pthread_kill(thr[1].th, SIGUSR2), 0);
	CHECK_SYS(kill(getpid(), SIGURG));
	for (int v = 1; v <= 3; v++)
		CHECK_INT(pthread_sigqueue(thr[3].th, rt_thread,
					   (union sigval){ .sival_int = v }),
			  0);
	for (int v = 10; v <= 11; v++)
		CHECK_SYS(sigqueue(getpid(), rt_shared,
				   (union sigval){ .sival_int = v }));
	sigemptyset(&shared);
	sigaddset(&shared, SIGURG);
	sigaddset(&shared, rt_shared);
	for (int i = 0; i <= NTHREADS; i++)
		thr[i].want_pending = shared;
	sigaddset(&thr[1].want_pending, SIGUSR2);
	sigaddset(&thr[3].want_pending, rt_thread);
	check_all();
	CHECK_INT(atomic_load(&nevents), 0);
	for (int i = 1; i <= NTHREADS; i++)
		cap_wait_in_syscall(thr[i].tid, SYS_futex, WAIT_MS);
	printf("%d threads: masks, altstacks, pending signals set up\n",
	       NTHREADS);

	cap_sync();

	check_all();
	CHECK_INT(atomic_load(&nevents), 0);
	printf("after the sync: masks, altstacks, pending sets: same\n");

	run(&thr[1], CMD_DELIVER);
	check_events(&seen, 1, SIGUSR2, &thr[1], 1, -1);
	printf("SIGUSR2 for thread 1: handled there, on its altstack\n");
	run(&thr[2], CMD_DELIVER);
	check_events(&seen, 1, SIGURG, &thr[2], 2, -1);
	printf("SIGURG for the process: handled by thread 2, the one that "
	       "unblocked it, on its altstack\n");
	run(&thr[3], CMD_DELIVER);
	check_events(&seen, 3, rt_thread, &thr[3], 0, 1);
	printf("real-time signal for thread 3: 3 handled there, values in "
	       "order\n");
	unblock(rt_shared);
	check_events(&seen, 2, rt_shared, &thr[0], 0, 10);
	printf("real-time signal for the process: 2 handled by main, values "
	       "in order\n");

	for (int i = 1; i <= NTHREADS; i++) {
		run(&thr[i], CMD_PROF);
		check_events(&seen, 1, SIGPROF, &thr[i], i < 3 ? i : 0, -1);
	}
	CHECK_INT(pthread_kill(pthread_self(), SIGPROF), 0);
	check_events(&seen, 1, SIGPROF, &thr[0], 0, -1);
	printf("SIGPROF: on the altstack of threads 1 and 2, not of 3 and "
	       "main\n");

	for (int i = 0; i <= NTHREADS; i++)
		sigemptyset(&thr[i].want_pending);
	check_all();
	printf("nothing left pending\n");
	for (int i = 1; i <= NTHREADS; i++) {
		run(&thr[i], CMD_EXIT);
		CHECK_INT(pthread_join(thr[i].th, NULL), 0);
	}
	return 0;
}
