/*
 * vecregs: known values in vector registers, a writable global and a
 * local, then a call to stop_here() where the test stops it; gdb must show
 * them all from an `esky core` of that stop.
 *
 *   xmm0 = {0x0123456789abcdef, 0xfedcba9876543210}
 *   ymm1 = {0x1111111111111111, 0x2222222222222222, 0x3333333333333333, 0x4444444444444444}
 *   with AVX-512 also: zmm1's upper half {0x55..55, 0x66..66, 0x77..77, 0x88..88},
 *   zmm17 = {0x1700000000000000 + i} for i = 0..7, k1 = 0xa5a5
 *
 * It prints "avx512" or "avx" first, so that the test knows which to check;
 * "no avx" and exit 0 where the CPU or the kernel has no AVX.
 */
#include <stdint.h>
#include <stdio.h>

/* Written at run time: its value in the core comes from the saved page, not the file. */
long vec_global = 1;

/* noinline and no vector code: the registers reach the stop untouched. */
static __attribute__((noinline, used)) int stop_here(int n)
{
	return n + 1;
}

static const uint64_t xmm0_val[2] = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL };
static const uint64_t ymm1_val[4] = { 0x1111111111111111ULL, 0x2222222222222222ULL,
				      0x3333333333333333ULL, 0x4444444444444444ULL };
static const uint64_t zmm1_val[8] = { 0x1111111111111111ULL, 0x2222222222222222ULL,
				      0x3333333333333333ULL, 0x4444444444444444ULL,
				      0x5555555555555555ULL, 0x6666666666666666ULL,
				      0x7777777777777777ULL, 0x8888888888888888ULL };
static const uint64_t zmm17_val[8] = { 0x1700000000000000ULL, 0x1700000000000001ULL,
				       0x1700000000000002ULL, 0x1700000000000003ULL,
				       0x1700000000000004ULL, 0x1700000000000005ULL,
				       0x1700000000000006ULL, 0x1700000000000007ULL };

int main(int argc, char **argv)
{
	int avx512 = __builtin_cpu_supports("avx512f");
	int local_count = 41 + argc;

	(void)argv;
	if (!__builtin_cpu_supports("avx")) {
		puts("no avx");
		return 0;
	}
	puts(avx512 ? "avx512" : "avx");
	fflush(stdout);
	vec_global = 0x5eed0000L + local_count;
	/*
	 * Built without -mavx512f (it must run without AVX-512), gcc cannot
	 * name zmm17 and k1 as clobbers, and never uses them either. A
	 * function built for AVX-512 instead would end in vzeroupper.
	 */
	if (avx512) {
		uint64_t k = 0xa5a5;

		__asm__ volatile("vmovdqu64 %0, %%zmm1\n\t"
				 "vmovdqu64 %1, %%zmm17\n\t"
				 "kmovq %2, %%k1"
				 :
				 : "m"(zmm1_val), "m"(zmm17_val), "r"(k)
				 : "xmm1");
	} else {
		__asm__ volatile("vmovdqu %0, %%ymm1" : : "m"(ymm1_val) : "xmm1");
	}
	__asm__ volatile("movdqu %0, %%xmm0" : : "m"(xmm0_val) : "xmm0");
	return stop_here(local_count) == 0;
}
