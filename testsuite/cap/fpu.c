/* Floating-point state survives: a computation in doubles, long doubles and SSE/AVX vectors that goes on across the sync gives the same bits, with the MXCSR and x87 rounding modes, the x87 precision control and the exception flags set before the sync still in force after it. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <fenv.h>
#include <float.h>
#include <immintrin.h>
#include <stdint.h>

#include "cap.h"

static volatile double seed = 0.3141592653589793;

static double logistic(double x, int n)
{
	for (int i = 0; i < n; i++)
		x = 3.9999 * x * (1.0 - x) + 1e-17 / (x + 0.25);
	return x;
}

static long double x87_series(long double x, int n)
{
	long double s = 0;

	for (int i = 1; i <= n; i++)
		s += x / ((long double)i * i + x);
	return s;
}

static void print_bits(const char *what, const void *p, size_t n)
{
	const unsigned char *c = p;

	printf("%s:", what);
	for (size_t i = 0; i < n; i++)
		printf("%02x", c[n - 1 - i]);
	printf("\n");
}

static int have_avx(void)
{
	unsigned a, b, c, d;
	uint32_t lo, hi;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_AVX) ||
	    !(c & bit_OSXSAVE))
		return 0;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (lo & 6) == 6;
}

__attribute__((target("avx"))) static void avx_steps(double *acc, int n)
{
	__m256d v = _mm256_loadu_pd(acc);
	__m256d k = _mm256_set_pd(1.0000001, 0.9999999, 1.0000003, 0.9999997);

	for (int i = 0; i < n; i++)
		v = _mm256_add_pd(_mm256_mul_pd(v, k), _mm256_set1_pd(1e-9));
	_mm256_storeu_pd(acc, v);
}

static void sse_steps(double *acc, int n)
{
	__m128d a = _mm_loadu_pd(acc), b = _mm_loadu_pd(acc + 2);
	__m128d k = _mm_set_pd(1.0000001, 0.9999999);

	for (int i = 0; i < n; i++) {
		a = _mm_add_pd(_mm_mul_pd(a, k), _mm_set1_pd(1e-9));
		b = _mm_sub_pd(_mm_mul_pd(b, k), _mm_set1_pd(1e-9));
	}
	_mm_storeu_pd(acc, a);
	_mm_storeu_pd(acc + 2, b);
}

int main(void)
{
	double x, acc[4] = { 1.5, 2.5, 3.5, 4.5 };
	long double lx;
	float f = 1.0f;
	unsigned short cw, cw2;
	unsigned int mxcsr, mxcsr2;
	int avx = have_avx();
	fexcept_t flags;

	/* Round upward in both SSE (MXCSR) and x87, and set the x87
	 * precision control to double (53 bits): results differ from the
	 * default if this state is lost. */
	CHECK_INT(fesetround(FE_UPWARD), 0);
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	cw = (unsigned short)((cw & ~0x300) | 0x200);
	__asm__ volatile("fldcw %0" : : "m"(cw));
	/* Raise an exception flag: sticky flags are state too. */
	f = f / 3.0f;
	feclearexcept(FE_ALL_EXCEPT);
	feraiseexcept(FE_INEXACT | FE_DIVBYZERO);
	fegetexceptflag(&flags, FE_ALL_EXCEPT);

	x = logistic(seed, 1000);
	lx = x87_series((long double)seed, 1000);
	if (avx)
		avx_steps(acc, 1000);
	else
		sse_steps(acc, 1000);
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));

	cap_sync();

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr2));
	__asm__ volatile("fnstcw %0" : "=m"(cw2));
	CHECK_INT(mxcsr2, mxcsr);
	CHECK_INT(cw2, cw);
	CHECK_INT(fegetround(), FE_UPWARD);
	CHECK_INT(fetestexcept(FE_ALL_EXCEPT) & (FE_INEXACT | FE_DIVBYZERO),
		  FE_INEXACT | FE_DIVBYZERO);
	printf("control words: ok\n");

	x = logistic(x, 1000);
	lx += x87_series((long double)x, 1000);
	if (avx)
		avx_steps(acc, 1000);
	else
		sse_steps(acc, 1000);
	print_bits("double", &x, sizeof(x));
	print_bits("long double", &lx, 10);
	for (int i = 0; i < 4; i++)
		print_bits("vector", &acc[i], sizeof(acc[i]));
	print_bits("float", &f, sizeof(f));
	return 0;
}
