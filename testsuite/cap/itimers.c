/* Interval timers survive: ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF (remaining values and intervals read back, and they fire after the resume), and alarm(). */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/time.h>
#include <time.h>

#include "cap.h"

/* The kernel rounds CPU-time timers up by a tick (4 ms at HZ=250): a value
 * read back may exceed the one set by that much, twice over after a
 * resume that read it and set it again. */
#define TICK_SLACK 25000

static volatile sig_atomic_t alrm, vtalrm, prof;

static void handler(int sig)
{
	if (sig == SIGALRM)
		alrm++;
	else if (sig == SIGVTALRM)
		vtalrm++;
	else if (sig == SIGPROF)
		prof++;
}

static long tv_us(struct timeval tv)
{
	return tv.tv_sec * 1000000L + tv.tv_usec;
}

/* Burn CPU until *flag reaches n (CPU-time timers only move when we run). */
static void spin_until(volatile sig_atomic_t *flag, int n)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (*flag < n) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 60)
			cap_fail(__FILE__, __LINE__,
				 "timer did not fire in 60 s of spinning");
	}
}

int main(void)
{
	struct sigaction sa = { .sa_handler = handler, .sa_flags = SA_RESTART };
	struct itimerval real = { { 0, 500000 }, { 2, 0 } };
	struct itimerval virt = { { 0, 20000 }, { 0, 50000 } };
	struct itimerval prf = { { 0, 30000 }, { 0, 70000 } };
	struct itimerval got;
	sigset_t alrm_set, old;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGVTALRM, &sa, NULL);
	sigaction(SIGPROF, &sa, NULL);
	/* SIGALRM stays blocked over the sync: if the real timer expires
	 * while we wait, it is pending, which must survive too. */
	sigemptyset(&alrm_set);
	sigaddset(&alrm_set, SIGALRM);
	sigprocmask(SIG_BLOCK, &alrm_set, &old);

	/* Phase 1: setitimer. The CPU-time timers cannot expire while we
	 * are blocked at the sync point. */
	CHECK_SYS(setitimer(ITIMER_REAL, &real, NULL));
	CHECK_SYS(setitimer(ITIMER_VIRTUAL, &virt, NULL));
	CHECK_SYS(setitimer(ITIMER_PROF, &prf, NULL));
	printf("timers armed\n");

	cap_sync();

	CHECK_SYS(getitimer(ITIMER_REAL, &got));
	CHECK_INT(tv_us(got.it_interval), 500000);
	CHECK(tv_us(got.it_value) >= 0 && tv_us(got.it_value) <= 2000000);
	CHECK_SYS(getitimer(ITIMER_VIRTUAL, &got));
	CHECK_INT(tv_us(got.it_interval), 20000);
	CHECK(tv_us(got.it_value) > 0 && tv_us(got.it_value) <= 50000 + TICK_SLACK);
	CHECK_SYS(getitimer(ITIMER_PROF, &got));
	CHECK_INT(tv_us(got.it_interval), 30000);
	CHECK(tv_us(got.it_value) > 0 && tv_us(got.it_value) <= 70000 + TICK_SLACK);
	printf("timers read back: ok\n");

	/* They fire: virtual and prof while we spin, real once unblocked. */
	CHECK_INT(vtalrm, 0);
	CHECK_INT(prof, 0);
	spin_until(&vtalrm, 3);
	spin_until(&prof, 3);
	printf("virtual and prof timers fired\n");
	sigsuspend(&old);	/* returns after a handler ran */
	while (alrm < 2)
		sigsuspend(&old);
	printf("real timer fired\n");
	{
		struct itimerval off = { { 0, 0 }, { 0, 0 } };

		setitimer(ITIMER_REAL, &off, NULL);
		setitimer(ITIMER_VIRTUAL, &off, NULL);
		setitimer(ITIMER_PROF, &off, NULL);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);

	/* Phase 2: alarm(), with SIGALRM blocked over the sync again. */
	alrm = 0;
	sigprocmask(SIG_BLOCK, &alrm_set, NULL);
	alarm(2);
	printf("alarm set\n");

	cap_sync();

	CHECK_SYS(getitimer(ITIMER_REAL, &got));
	CHECK_INT(tv_us(got.it_interval), 0);
	CHECK(tv_us(got.it_value) >= 0 && tv_us(got.it_value) <= 2000000);
	while (alrm < 1)
		sigsuspend(&old);
	CHECK_INT(alarm(0), 0);
	printf("alarm fired\n");
	return 0;
}
