/* A checkpoint taken inside clock_nanosleep (relative, with the remainder loop robust programs use, and absolute) lets the sleep run its course after the resume: it ends no earlier than it should have. Run with --sync-syscall 230. */
#define _GNU_SOURCE
#include <time.h>

#include "cap.h"

#define SLEEP_S 2

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void)
{
	struct timespec req = { SLEEP_S, 0 }, deadline;
	long long t0;
	int r;

	/* Relative: nanosleep(2) is clock_nanosleep(CLOCK_REALTIME) in
	 * glibc; carry on with the remainder after EINTR. */
	printf("relative sleep\n");
	t0 = now_ns();
	cap_sync_nowait();
	while (nanosleep(&req, &req) == -1)
		CHECK_INT(errno, EINTR);
	CHECK(now_ns() - t0 >= SLEEP_S * 1000000000LL);
	printf("relative sleep: done\n");

	/* Absolute monotonic deadline: the program's own deadline holds. */
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += SLEEP_S;
	printf("absolute sleep\n");
	cap_sync_nowait();
	while ((r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline,
				    NULL)) != 0)
		CHECK_INT(r, EINTR);
	{
		struct timespec t;

		clock_gettime(CLOCK_MONOTONIC, &t);
		CHECK(t.tv_sec > deadline.tv_sec ||
		      (t.tv_sec == deadline.tv_sec &&
		       t.tv_nsec >= deadline.tv_nsec));
	}
	printf("absolute sleep: done\n");
	return 0;
}
