/* Threads keep their IDs: after the resume getpid(), each thread's gettid() and pthread_self() are what they were, pthread_kill() and tgkill() reach the thread they name (its handler sees that thread's TID), and pthread_join() collects every thread's value. A program without capabilities has none in any thread after the resume (none lent by esky's namespaces stays). */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>

#include "cap.h"
#include "cap-threads.h"

#define NTHREADS 4
#define WAIT_MS 20000		/* give up on an event after 20 s */

struct worker {
	int idx;
	pthread_t th;			/* from pthread_create */
	pthread_t self;			/* pthread_self() in the thread */
	pid_t tid;			/* gettid() before the sync */
	pthread_t self_after;
	pid_t tid_after;
	volatile pid_t handled_tid;	/* gettid() in its signal handler */
};

static struct worker workers[NTHREADS];

/* The CapEff line of thread tid's status ("" if unreadable). */
static void cap_eff(pid_t tid, char *out, size_t n)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	out[0] = '\0';
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "CapEff:", 7))
			snprintf(out, n, "%s", line);
	fclose(f);
}
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int phase;
static sem_t ready, handled;
static __thread struct worker *me;
static volatile pid_t stray_tid;	/* a handler that ran in main */

static void on_usr1(int sig)
{
	(void)sig;
	if (me)
		me->handled_tid = gettid();
	else
		stray_tid = gettid();
	sem_post(&handled);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	me = w;
	w->self = pthread_self();
	w->tid = gettid();
	sem_post(&ready);
	pthread_mutex_lock(&lock);
	while (phase < 1)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	w->tid_after = gettid();
	w->self_after = pthread_self();
	return (void *)(intptr_t)(100 * w->idx + 7);
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	pid_t pid = getpid(), main_tid = gettid();
	char caps_before[256];

	sigemptyset(&sa.sa_mask);
	CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));
	CHECK_SYS(sem_init(&ready, 0, 0));
	CHECK_SYS(sem_init(&handled, 0, 0));
	CHECK_INT(main_tid, pid);
	for (int i = 0; i < NTHREADS; i++) {
		workers[i].idx = i;
		CHECK_INT(pthread_create(&workers[i].th, NULL, worker_main,
					 &workers[i]), 0);
		cap_sem_wait(&ready, WAIT_MS, "waiting for a thread to start");
	}
	for (int i = 0; i < NTHREADS; i++) {
		CHECK(pthread_equal(workers[i].th, workers[i].self));
		CHECK(workers[i].tid != pid);
		/* Blocked in pthread_cond_wait (futex) at the sync. */
		cap_wait_in_syscall(workers[i].tid, SYS_futex, WAIT_MS);
	}
	printf("%d threads waiting\n", NTHREADS);
	cap_eff(main_tid, caps_before, sizeof(caps_before));

	cap_sync();

	CHECK_INT(getpid(), pid);
	CHECK_INT(syscall(SYS_getpid), pid);
	CHECK_INT(gettid(), main_tid);
	printf("pid: same\n");
	/*
	 * A program without capabilities has none after the resume, in no
	 * thread. (Root's gets a full set in the user namespace its resume
	 * makes, where it was root: not compared.)
	 */
	if (strstr(caps_before, "\t0000000000000000")) {
		char now[256];

		cap_eff(main_tid, now, sizeof(now));
		CHECK_STR(now, caps_before);
		for (int i = 0; i < NTHREADS; i++) {
			cap_eff(workers[i].tid, now, sizeof(now));
			CHECK_STR(now, caps_before);
		}
	}
	printf("capabilities: none added in any thread\n");

	for (int i = 0; i < NTHREADS; i++) {
		struct worker *w = &workers[i];

		w->handled_tid = 0;
		CHECK_INT(pthread_kill(w->th, SIGUSR1), 0);
		cap_sem_wait(&handled, WAIT_MS,
			     "waiting for the handler of pthread_kill");
		CHECK_INT(w->handled_tid, w->tid);
		w->handled_tid = 0;
		CHECK_SYS(syscall(SYS_tgkill, pid, w->tid, SIGUSR1));
		cap_sem_wait(&handled, WAIT_MS,
			     "waiting for the handler of tgkill");
		CHECK_INT(w->handled_tid, w->tid);
	}
	CHECK_INT(stray_tid, 0);
	printf("pthread_kill, tgkill: each handled in the thread named\n");

	pthread_mutex_lock(&lock);
	phase = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	printf("joined:");
	for (int i = 0; i < NTHREADS; i++) {
		struct worker *w = &workers[i];
		struct timespec dl;
		void *ret;

		cap_deadline(&dl, WAIT_MS);
		CHECK_INT(pthread_timedjoin_np(w->th, &ret, &dl), 0);
		CHECK_INT(w->tid_after, w->tid);
		CHECK(pthread_equal(w->self_after, w->self));
		printf(" %ld", (long)(intptr_t)ret);
	}
	printf("\n");
	printf("gettid, pthread_self in every thread: same\n");
	return 0;
}
