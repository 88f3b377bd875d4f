/* The vDSO works after the resume: clock_gettime (monotonic moves forward, realtime agrees with gettimeofday and time), clock_getres, getcpu, and AT_SYSINFO_EHDR still points at an ELF image. */
#define _GNU_SOURCE
#include <elf.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/time.h>
#include <time.h>

#include "cap.h"

static long long ns(struct timespec t)
{
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void sane(const char *when, long long *mono_prev)
{
	struct timespec mono, rt, coarse, boot, res;
	struct timeval tv;
	time_t t;

	for (int i = 0; i < 1000; i++) {
		CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &mono));
		CHECK(ns(mono) >= *mono_prev);
		*mono_prev = ns(mono);
	}
	CHECK_SYS(clock_gettime(CLOCK_REALTIME, &rt));
	CHECK_SYS(gettimeofday(&tv, NULL));
	t = time(NULL);
	CHECK(rt.tv_sec > 1600000000);	/* after 2020 */
	CHECK(tv.tv_sec >= rt.tv_sec && tv.tv_sec - rt.tv_sec <= 2);
	/* time() reads the coarse clock, up to a tick behind: a second may not have turned yet. */
	CHECK(t >= rt.tv_sec - 1 && t - rt.tv_sec <= 2);
	CHECK_SYS(clock_gettime(CLOCK_MONOTONIC_COARSE, &coarse));
	CHECK(ns(coarse) <= *mono_prev + 100000000LL);
	CHECK_SYS(clock_gettime(CLOCK_BOOTTIME, &boot));
	CHECK(ns(boot) >= ns(mono) - 1000000LL);
	CHECK_SYS(clock_getres(CLOCK_MONOTONIC, &res));
	CHECK(ns(res) > 0 && ns(res) <= 10000000);
	CHECK(sched_getcpu() >= 0);
	printf("%s: clocks sane\n", when);
}

int main(void)
{
	long long mono = 0;
	unsigned long vdso = getauxval(AT_SYSINFO_EHDR);

	CHECK(vdso != 0);
	CHECK_MEM((void *)vdso, ELFMAG, SELFMAG);
	sane("before", &mono);

	cap_sync();

	sane("after", &mono);
	CHECK_INT(getauxval(AT_SYSINFO_EHDR), vdso);
	CHECK_MEM((void *)vdso, ELFMAG, SELFMAG);
	printf("vdso: ok\n");
	return 0;
}
