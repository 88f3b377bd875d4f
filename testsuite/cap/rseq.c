/* Restartable sequences survive: glibc's rseq area is registered again at the same address (registering it once more gives EBUSY), the kernel keeps its cpu_id up to date, and sched_getcpu() agrees with getcpu(2) on every CPU. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

#include "cap.h"

#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif

static struct rseq *rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() +
			       __rseq_offset);
}

static int raw_getcpu(void)
{
	unsigned cpu;

	CHECK_SYS(syscall(SYS_getcpu, &cpu, NULL, NULL));
	return (int)cpu;
}

static void check_every_cpu(const char *when)
{
	cpu_set_t allowed, one;
	int n = 0;

	CHECK_SYS(sched_getaffinity(0, sizeof(allowed), &allowed));
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &allowed))
			continue;
		CPU_ZERO(&one);
		CPU_SET(c, &one);
		CHECK_SYS(sched_setaffinity(0, sizeof(one), &one));
		CHECK_INT(raw_getcpu(), c);
		CHECK_INT(sched_getcpu(), c);
		CHECK_INT(rseq_area()->cpu_id, c);
		CHECK_INT(rseq_area()->cpu_id_start, c);
		n++;
	}
	CHECK_SYS(sched_setaffinity(0, sizeof(allowed), &allowed));
	CHECK(n > 0);
	printf("%s: cpu ids agree\n", when);
}

int main(void)
{
	struct rseq *area;
	unsigned len = 0;
	long r;

	if (__rseq_size == 0)
		cap_skip("glibc did not register rseq (glibc.pthread.rseq=0?)");
	area = rseq_area();
	check_every_cpu("before");
	/* Registered already: the kernel says EBUSY when asked again with
	 * the same length (glibc registers sizeof(struct rseq), which may
	 * be more than __rseq_size, the size of the features it uses). */
	for (unsigned l = __rseq_size; l <= 256 && !len; l += 4) {
		r = syscall(SYS_rseq, area, l, 0, RSEQ_SIG);
		CHECK_INT(r, -1);
		if (errno == EBUSY)
			len = l;
	}
	CHECK(len != 0);

	cap_sync();

	CHECK(rseq_area() == area);
	r = syscall(SYS_rseq, area, len, 0, RSEQ_SIG);
	if (r == 0)
		cap_fail(__FILE__, __LINE__,
			 "rseq was not registered after the sync (registering "
			 "it again succeeded)");
	CHECK_INT(errno, EBUSY);
	check_every_cpu("after");
	return 0;
}
