/*
 * cap-threads.h: waiting on threads, for the capability tests of threads
 * (threads-*.c).
 *
 * A threads test starts its threads and, before its sync point, waits until
 * each one is where the checkpoint must find it; after the sync it waits for
 * them to answer or to end. Every wait gives up after ms milliseconds (the
 * test's WAIT_MS) and fails the test with cap_fail, so a lost thread never
 * hangs the harness:
 *
 *   cap_msleep(ms)              sleeps ms milliseconds (a poll interval).
 *   cap_deadline(dl, ms)        sets *dl to ms from now on CLOCK_REALTIME,
 *                               for the pthread and sem timed waits.
 *   cap_wait_tid(tid, ms)       waits until a new thread has stored its TID
 *                               in *tid.
 *   cap_wait_in_syscall(tid, nr, ms)
 *                               waits until thread tid is blocked in syscall
 *                               nr, as /proc/self/task/TID/syscall shows
 *                               (a thread that has stored its TID may still
 *                               be on its way into the wait).
 *   cap_sem_wait(s, ms, fmt, ...)
 *                               sem_wait with a timeout, EINTR retried; on
 *                               failure prints fmt's text, ": " and the
 *                               error.
 *   cap_join(th, ret, ms, fmt, ...)
 *                               pthread_join with a timeout; on failure as
 *                               cap_sem_wait.
 *
 * A failure is reported at its line in this file: the message says what was
 * waited for (the thread, the syscall, or the caller's fmt).
 */
#ifndef ESKY_CAP_THREADS_H
#define ESKY_CAP_THREADS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* pthread_timedjoin_np */
#endif
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "cap.h"

static inline void cap_msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static inline void cap_deadline(struct timespec *dl, int ms)
{
	clock_gettime(CLOCK_REALTIME, dl);
	dl->tv_sec += ms / 1000;
	dl->tv_nsec += (ms % 1000) * 1000000L;
	if (dl->tv_nsec >= 1000000000L) {
		dl->tv_sec++;
		dl->tv_nsec -= 1000000000L;
	}
}

static inline void cap_wait_tid(volatile pid_t *tid, int ms)
{
	for (int i = 0; i < ms && !*tid; i++)
		cap_msleep(1);
	if (!*tid)
		cap_fail(__FILE__, __LINE__,
			 "a new thread did not store its TID in %d ms", ms);
}

static inline void cap_wait_in_syscall(pid_t tid, long nr, int ms)
{
	char path[64], buf[256];

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	for (int i = 0; i < ms; i++) {
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
		cap_msleep(1);
	}
	cap_fail(__FILE__, __LINE__,
		 "thread %d not seen blocked in syscall %ld in %d ms", tid, nr,
		 ms);
}

static inline void cap_sem_wait(sem_t *s, int ms, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void cap_sem_wait(sem_t *s, int ms, const char *fmt, ...)
{
	struct timespec dl;
	va_list ap;

	cap_deadline(&dl, ms);
	while (sem_timedwait(s, &dl) == -1) {
		int err = errno;
		char what[256];

		if (err == EINTR)
			continue;
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		cap_fail(__FILE__, __LINE__, "%s: %s", what, strerror(err));
	}
}

static inline void cap_join(pthread_t th, void **ret, int ms,
			    const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline void cap_join(pthread_t th, void **ret, int ms,
			    const char *fmt, ...)
{
	struct timespec dl;
	va_list ap;
	int r;

	cap_deadline(&dl, ms);
	r = pthread_timedjoin_np(th, ret, &dl);
	if (r) {
		char what[256];

		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		cap_fail(__FILE__, __LINE__, "%s: %s", what, strerror(r));
	}
}

#endif /* ESKY_CAP_THREADS_H */
