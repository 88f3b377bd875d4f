/* A checkpoint taken while the main thread waits in pthread_join (a futex on the thread's TID word): the awaited thread, asleep at the instant, ends after the resume and the kernel's clear-child-tid wake-up ends the join with its value; a thread that had already exited, not yet joined, is joined after the resume too. Run with --sync-syscall 202. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "cap.h"
#include "cap-threads.h"

#define WAIT_MS 20000		/* give up on an event after 20 s */
#define SLEEP_MS 3000

static volatile pid_t tid_done, tid_sleeper;

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static void *done_thread(void *arg)
{
	(void)arg;
	tid_done = gettid();
	return (void *)11;
}

static void *sleeper(void *arg)
{
	struct timespec req = { SLEEP_MS / 1000, (SLEEP_MS % 1000) * 1000000 };
	long long t0 = now_ms();

	(void)arg;
	tid_sleeper = gettid();
	while (nanosleep(&req, &req) == -1)
		CHECK_INT(errno, EINTR);
	CHECK(now_ms() - t0 >= SLEEP_MS);
	CHECK_INT(gettid(), tid_sleeper);
	return (void *)22;
}

/* Wait until the kernel has reaped thread tid. */
static void wait_gone(pid_t tid)
{
	char path[64];
	struct stat st;
	int i;

	snprintf(path, sizeof(path), "/proc/self/task/%d", tid);
	for (i = 0; i < WAIT_MS && stat(path, &st) == 0; i++)
		cap_msleep(1);
	if (i == WAIT_MS)
		cap_fail(__FILE__, __LINE__, "thread %d did not exit", tid);
}

int main(void)
{
	pthread_t done, sleeping;
	void *ret;

	CHECK_INT(pthread_create(&done, NULL, done_thread, NULL), 0);
	cap_wait_tid(&tid_done, WAIT_MS);
	wait_gone(tid_done);
	CHECK_INT(pthread_create(&sleeping, NULL, sleeper, NULL), 0);
	cap_wait_tid(&tid_sleeper, WAIT_MS);
	cap_wait_in_syscall(tid_sleeper, SYS_clock_nanosleep, WAIT_MS);
	printf("one thread exited, not joined; one asleep; main joins\n");

	cap_sync_nowait();
	CHECK_INT(pthread_join(sleeping, &ret), 0);

	printf("joined the sleeper: %d\n", (int)(intptr_t)ret);
	CHECK_INT(pthread_join(done, &ret), 0);
	printf("joined the exited thread: %d\n", (int)(intptr_t)ret);
	return 0;
}
