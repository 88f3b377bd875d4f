/* The FS base survives: errno and __thread variables (initialised and zero) keep their values and addresses, and arch_prctl(ARCH_GET_FS) gives the same base; the GS base stays what it was. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "cap.h"

static __thread int tls_init = 1234;
static __thread char tls_zero[4096];
static __thread unsigned long tls_counter;

static void *tp(void)
{
	void *p;

	__asm__("mov %%fs:0, %0" : "=r"(p));
	return p;
}

int main(void)
{
	unsigned long fs, gs, fs2, gs2;
	int *errno_addr = &errno;
	void *tls_addr = &tls_init, *tp0 = tp();

	CHECK_SYS(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs));
	CHECK_SYS(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs));
	CHECK(fs == (unsigned long)tp0);
	tls_init += 1;
	cap_fill(tls_zero, 100, 7);
	tls_counter = 41;
	printf("tls set up: %d\n", tls_init);

	cap_sync();

	CHECK_SYS(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs2));
	CHECK_SYS(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs2));
	CHECK_INT(fs2, fs);
	CHECK_INT(gs2, gs);
	CHECK(tp() == tp0);
	CHECK(&errno == errno_addr);
	CHECK((void *)&tls_init == tls_addr);
	CHECK_INT(tls_init, 1235);
	CHECK_FILL(tls_zero, 100, 7);
	for (int i = 100; i < 4096; i++)
		CHECK_INT(tls_zero[i], 0);
	CHECK_INT(++tls_counter, 42);
	errno = 0;
	CHECK_INT(close(-1), -1);
	CHECK_INT(errno, EBADF);
	printf("tls: ok %d %lu\n", tls_init, tls_counter);
	return 0;
}
