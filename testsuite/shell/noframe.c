/*
 * noframe: functions built without a frame pointer (-O2
 * -fomit-frame-pointer), where finish must find the return address from
 * the call frame information: rbp holds data here, not a frame.
 */
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned long sink;

unsigned long churn(unsigned long a, unsigned long b, int n);
unsigned long twice(int n);

/* Many values live at once: the compiler takes rbp for one of them. */
__attribute__((noinline)) unsigned long churn(unsigned long a, unsigned long b, int n)
{
	unsigned long r0 = a, r1 = b, r2 = a ^ b, r3 = a + b, r4 = a * 3, r5 = b * 5, r6 = a - b;

	for (int i = 0; i < n; i++) {
		r0 = r0 * 6364136223846793005UL + r1;
		r1 = r1 * 6364136223846793005UL + r2;
		r2 = r2 * 6364136223846793005UL + r3;
		r3 = r3 * 6364136223846793005UL + r4;
		r4 = r4 * 6364136223846793005UL + r5;
		r5 = r5 * 6364136223846793005UL + r6;
		r6 = r6 * 6364136223846793005UL + r0;
		sink = r0 ^ r1 ^ r2 ^ r3 ^ r4 ^ r5 ^ r6;
	}
	return (r0 ^ r1 ^ r2 ^ r3 ^ r4 ^ r5 ^ r6) & 0xffff;
}

/* Called through a frame of its own that moves the stack pointer. */
__attribute__((noinline)) unsigned long twice(int n)
{
	volatile char pad[40];

	pad[0] = (char)n;
	return churn(1, 2, n + pad[0]) + churn(3, 4, n);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 3;

	printf("churn = %lu\n", churn(1, 2, n));
	printf("twice = %lu\n", twice(n));
	return 0;
}
