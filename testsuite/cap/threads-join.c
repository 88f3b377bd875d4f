/* A checkpoint taken while the main thread waits in pthread_join (a futex on the thread's TID word): the awaited thread, asleep at the instant, ends after the resume and the kernel's clear-child-tid wake-up ends the join with its value; a thread that had already exited, not yet joined, is joined after the resume too. Run with --sync-syscall 202. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "cap.h"

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

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Wait until thread tid is blocked in syscall nr (/proc/self/task/TID/syscall). */
static void wait_in_syscall(pid_t tid, long nr)
{
	char path[64], buf[256];

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	for (int i = 0; i < WAIT_MS; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		long got;
		ssize_t n;

		if (fd < 0)
			cap_fail(__FILE__, __LINE__, "open %s: %s", path,
				 strerror(errno));
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			if (sscanf(buf, "%ld", &got) == 1 && got == nr)
				return;
		}
		msleep(1);
	}
	cap_fail(__FILE__, __LINE__,
		 "thread %d not seen blocked in syscall %ld in %d ms", tid, nr,
		 WAIT_MS);
}

/* Wait until the kernel has reaped thread tid. */
static void wait_gone(pid_t tid)
{
	char path[64];
	struct stat st;
	int i;

	snprintf(path, sizeof(path), "/proc/self/task/%d", tid);
	for (i = 0; i < WAIT_MS && stat(path, &st) == 0; i++)
		msleep(1);
	if (i == WAIT_MS)
		cap_fail(__FILE__, __LINE__, "thread %d did not exit", tid);
}

int main(void)
{
	pthread_t done, sleeping;
	void *ret;

	CHECK_INT(pthread_create(&done, NULL, done_thread, NULL), 0);
	for (int i = 0; i < WAIT_MS && !tid_done; i++)
		msleep(1);
	CHECK(tid_done != 0);
	wait_gone(tid_done);
	CHECK_INT(pthread_create(&sleeping, NULL, sleeper, NULL), 0);
	for (int i = 0; i < WAIT_MS && !tid_sleeper; i++)
		msleep(1);
	CHECK(tid_sleeper != 0);
	wait_in_syscall(tid_sleeper, SYS_clock_nanosleep);
	printf("one thread exited, not joined; one asleep; main joins\n");

	cap_sync_nowait();
	CHECK_INT(pthread_join(sleeping, &ret), 0);

	printf("joined the sleeper: %d\n", (int)(intptr_t)ret);
	CHECK_INT(pthread_join(done, &ret), 0);
	printf("joined the exited thread: %d\n", (int)(intptr_t)ret);
	return 0;
}
