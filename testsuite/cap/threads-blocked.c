/* Threads blocked at the checkpoint go on waiting after the resume and are woken by what should wake them: pthread_cond_wait and cond_timedwait by a broadcast, read() and poll() on pipes by a write, sem_wait and a raw FUTEX_WAIT by a post or a wake, sigwait by a signal; a poll() timeout and a nanosleep run their course, ending no earlier than they should. Waits the kernel restarts by itself (read, poll without a timeout, sem_wait, FUTEX_WAIT) must not return EINTR. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>

#include "cap.h"
#include "cap-threads.h"

#define WAIT_MS 20000		/* give up on an event after 20 s */
#define TIMED_MS 3000		/* the poll timeout and the sleep */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int woken;			/* under lock */
static int pipe_read[2], pipe_poll[2], pipe_idle[2];
static sem_t sem;
static atomic_int futex_word;

struct blocked {
	const char *name;
	void *(*fn)(void *);
	long nr;			/* the syscall it blocks in */
	pthread_t th;
	volatile pid_t tid;
	char result[128];		/* what it reports, printed by main */
};

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static void *cond_waiter(void *arg)
{
	struct blocked *b = arg;

	pthread_mutex_lock(&lock);
	b->tid = gettid();
	while (!woken)
		CHECK_INT(pthread_cond_wait(&cond, &lock), 0);
	pthread_mutex_unlock(&lock);
	snprintf(b->result, sizeof(b->result), "woken");
	return NULL;
}

static void *cond_timed_waiter(void *arg)
{
	struct blocked *b = arg;
	struct timespec dl;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 600;
	pthread_mutex_lock(&lock);
	b->tid = gettid();
	while (!woken && r == 0)
		r = pthread_cond_timedwait(&cond, &lock, &dl);
	pthread_mutex_unlock(&lock);
	snprintf(b->result, sizeof(b->result), "%s",
		 r ? strerror(r) : "woken before its deadline");
	return NULL;
}

static void *reader(void *arg)
{
	struct blocked *b = arg;
	char buf[64];
	ssize_t n;

	b->tid = gettid();
	n = read(pipe_read[0], buf, sizeof(buf) - 1);
	if (n < 0)
		cap_fail(__FILE__, __LINE__, "read: %s", strerror(errno));
	buf[n] = '\0';
	snprintf(b->result, sizeof(b->result), "%zd bytes \"%s\"", n, buf);
	return NULL;
}

static void *poller(void *arg)
{
	struct blocked *b = arg;
	struct pollfd p = { .fd = pipe_poll[0], .events = POLLIN };
	int r;

	b->tid = gettid();
	r = poll(&p, 1, -1);
	if (r < 0)
		cap_fail(__FILE__, __LINE__, "poll: %s", strerror(errno));
	snprintf(b->result, sizeof(b->result), "%d ready,%s%s", r,
		 p.revents & POLLIN ? " POLLIN" : "",
		 p.revents & ~POLLIN ? " and more" : "");
	return NULL;
}

/* A timeout the checkpoint interrupts may come back as EINTR: carry on
 * with what is left, as robust programs do. */
static void *poll_timeout(void *arg)
{
	struct blocked *b = arg;
	struct pollfd p = { .fd = pipe_idle[0], .events = POLLIN };
	long long end = now_ms() + TIMED_MS;
	int r;

	b->tid = gettid();
	for (;;) {
		long long left = end - now_ms();

		r = poll(&p, 1, left > 0 ? (int)left : 0);
		if (r >= 0 || errno != EINTR)
			break;
	}
	if (r < 0)
		cap_fail(__FILE__, __LINE__, "poll: %s", strerror(errno));
	CHECK_INT(r, 0);
	CHECK(now_ms() >= end);
	snprintf(b->result, sizeof(b->result), "timed out, not early");
	return NULL;
}

static void *sleeper(void *arg)
{
	struct blocked *b = arg;
	struct timespec req = { TIMED_MS / 1000, (TIMED_MS % 1000) * 1000000 };
	long long t0 = now_ms();

	b->tid = gettid();
	while (nanosleep(&req, &req) == -1)
		CHECK_INT(errno, EINTR);
	CHECK(now_ms() - t0 >= TIMED_MS);
	snprintf(b->result, sizeof(b->result), "slept its time, not less");
	return NULL;
}

static void *sem_waiter(void *arg)
{
	struct blocked *b = arg;

	b->tid = gettid();
	if (sem_wait(&sem) == -1)
		cap_fail(__FILE__, __LINE__, "sem_wait: %s", strerror(errno));
	snprintf(b->result, sizeof(b->result), "woken");
	return NULL;
}

static void *futex_waiter(void *arg)
{
	struct blocked *b = arg;

	b->tid = gettid();
	while (atomic_load(&futex_word) == 0) {
		long r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0,
				 NULL, NULL, 0);

		/* EAGAIN: the word changed before the wait; nothing else. */
		if (r == -1 && errno != EAGAIN)
			cap_fail(__FILE__, __LINE__, "FUTEX_WAIT: %s",
				 strerror(errno));
	}
	snprintf(b->result, sizeof(b->result), "woken, word %d",
		 atomic_load(&futex_word));
	return NULL;
}

static void *sig_waiter(void *arg)
{
	struct blocked *b = arg;
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	b->tid = gettid();
	/* glibc's sigwait retries on EINTR itself. */
	CHECK_INT(sigwait(&set, &sig), 0);
	snprintf(b->result, sizeof(b->result), "%s", sigabbrev_np(sig));
	return NULL;
}

static struct blocked blocked[] = {
	{ .name = "pthread_cond_wait",
	  .fn = cond_waiter, .nr = SYS_futex },
	{ .name = "pthread_cond_timedwait",
	  .fn = cond_timed_waiter, .nr = SYS_futex },
	{ .name = "read on a pipe",
	  .fn = reader, .nr = SYS_read },
	{ .name = "poll on a pipe",
	  .fn = poller, .nr = SYS_poll },
	{ .name = "poll with a timeout",
	  .fn = poll_timeout, .nr = SYS_poll },
	{ .name = "nanosleep",
	  .fn = sleeper, .nr = SYS_clock_nanosleep },
	{ .name = "sem_wait",
	  .fn = sem_waiter, .nr = SYS_futex },
	{ .name = "FUTEX_WAIT",
	  .fn = futex_waiter, .nr = SYS_futex },
	{ .name = "sigwait",
	  .fn = sig_waiter, .nr = SYS_rt_sigtimedwait },
};
#define NBLOCKED (int)(sizeof(blocked) / sizeof(blocked[0]))

int main(void)
{
	sigset_t usr1;

	/* Blocked everywhere: only sigwait takes it. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	CHECK_INT(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
	CHECK_SYS(pipe(pipe_read));
	CHECK_SYS(pipe(pipe_poll));
	CHECK_SYS(pipe(pipe_idle));
	CHECK_SYS(sem_init(&sem, 0, 0));
	for (int i = 0; i < NBLOCKED; i++) {
		struct blocked *b = &blocked[i];

		CHECK_INT(pthread_create(&b->th, NULL, b->fn, b), 0);
		cap_wait_tid(&b->tid, WAIT_MS);
		cap_wait_in_syscall(b->tid, b->nr, WAIT_MS);
	}
	printf("%d threads blocked\n", NBLOCKED);

	cap_sync();

	pthread_mutex_lock(&lock);
	woken = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	CHECK_INT(write(pipe_read[1], "hello", 5), 5);
	CHECK_INT(write(pipe_poll[1], "x", 1), 1);
	CHECK_SYS(sem_post(&sem));
	atomic_store(&futex_word, 1);
	CHECK_SYS(syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL,
			  NULL, 0));
	for (int i = 0; i < NBLOCKED; i++)
		if (blocked[i].fn == sig_waiter)
			CHECK_INT(pthread_kill(blocked[i].th, SIGUSR1), 0);
	for (int i = 0; i < NBLOCKED; i++) {
		cap_join(blocked[i].th, NULL, WAIT_MS,
			 "the thread blocked in %s did not end",
			 blocked[i].name);
		printf("%s: %s\n", blocked[i].name, blocked[i].result);
	}
	return 0;
}
