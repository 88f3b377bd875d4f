/* Each thread gets its own CPU state back: threads computing at the instant of the checkpoint (a chaotic map in doubles, whose value and step count live only in registers) and a thread blocked in read(2) keep their general registers r12-r15, their vector registers (xmm/ymm/zmm4 and up, AVX-512 opmasks) and their own MXCSR (rounding, FTZ, DAZ) and x87 control word; each computed value replays exactly under its thread's rounding mode. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <fenv.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "cap.h"
#include "cap-threads.h"

#define WAIT_MS 20000		/* give up on an event after 20 s */
#define MXCSR_FLAGS 0x3fu	/* the sticky exception flags */
#define MXCSR_DAZ 0x40u
#define MXCSR_FTZ 0x8000u

/* One thread's registers in and out; the asm addresses it through rbx. */
struct spin {
	double x0, r, one;
	uint64_t gpr_in[4], gpr_out[4];	/* r12-r15 */
	volatile uint64_t progress;	/* steps, published every 16 */
	volatile int stop;
	int fd;				/* blocked: the pipe it reads */
	double x;			/* computed: the value after n steps */
	uint64_t n;
	int64_t ret;			/* blocked: what read returned */
	char buf[8];
	uint32_t mxcsr_in, mxcsr_out;
	uint16_t cw_in, cw_out;
	uint16_t k_in[8], k_out[8];	/* k1-k7 */
	uint8_t vec_in[32][64] __attribute__((aligned(64)));
	uint8_t vec_out[32][64] __attribute__((aligned(64)));
	/* The C side. */
	const char *name;
	int round;			/* fesetround mode */
	uint32_t mxcsr_extra;		/* FTZ, DAZ */
	uint16_t pc;			/* x87 precision control bits */
	int blocked;			/* 1: blocks in read instead */
	int pipe[2];
	pthread_t th;
	volatile pid_t tid;
};

static int isa;			/* 0 SSE, 1 AVX, 2 AVX-512 */

/* rbx: the struct spin. r12-r15 and vector registers 4 and up hold
 * patterns; computing uses xmm0-3, rcx counts steps, rdx pauses. */
#define OPERANDS                                                           \
	: : "b"(s), [x0] "i"(offsetof(struct spin, x0)),                  \
	  [r] "i"(offsetof(struct spin, r)),                               \
	  [one] "i"(offsetof(struct spin, one)),                           \
	  [gin] "i"(offsetof(struct spin, gpr_in)),                        \
	  [gout] "i"(offsetof(struct spin, gpr_out)),                      \
	  [prog] "i"(offsetof(struct spin, progress)),                     \
	  [stop] "i"(offsetof(struct spin, stop)),                         \
	  [fd] "i"(offsetof(struct spin, fd)),                             \
	  [x] "i"(offsetof(struct spin, x)),                               \
	  [n] "i"(offsetof(struct spin, n)),                               \
	  [ret] "i"(offsetof(struct spin, ret)),                           \
	  [buf] "i"(offsetof(struct spin, buf)),                           \
	  [mx] "i"(offsetof(struct spin, mxcsr_out)),                      \
	  [cw] "i"(offsetof(struct spin, cw_out)),                         \
	  [kin] "i"(offsetof(struct spin, k_in)),                          \
	  [kout] "i"(offsetof(struct spin, k_out)),                        \
	  [vin] "i"(offsetof(struct spin, vec_in)),                        \
	  [vout] "i"(offsetof(struct spin, vec_out))

#define CLOB_GPR                                                           \
	"rax", "rcx", "rdx", "rsi", "rdi", "r11", "r12", "r13", "r14",     \
	"r15", "memory", "cc"
#define CLOB_X16                                                           \
	"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",    \
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",       \
	"xmm15"
#define CLOB_X32                                                           \
	CLOB_X16, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21",   \
	"xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28",     \
	"xmm29", "xmm30", "xmm31", "k1", "k2", "k3", "k4", "k5", "k6", "k7"

#define LOAD_GPRS                                                          \
	"mov %c[gin]+0(%%rbx), %%r12\n\t"                                  \
	"mov %c[gin]+8(%%rbx), %%r13\n\t"                                  \
	"mov %c[gin]+16(%%rbx), %%r14\n\t"                                 \
	"mov %c[gin]+24(%%rbx), %%r15\n\t"
#define STORE_GPRS                                                         \
	"mov %%r12, %c[gout]+0(%%rbx)\n\t"                                 \
	"mov %%r13, %c[gout]+8(%%rbx)\n\t"                                 \
	"mov %%r14, %c[gout]+16(%%rbx)\n\t"                                \
	"mov %%r15, %c[gout]+24(%%rbx)\n\t"                                \
	"stmxcsr %c[mx](%%rbx)\n\t"                                        \
	"fnstcw %c[cw](%%rbx)\n\t"

#define V4_15(m)                                                           \
	m(4) m(5) m(6) m(7) m(8) m(9) m(10) m(11) m(12) m(13) m(14) m(15)
#define V16_31(m)                                                          \
	m(16) m(17) m(18) m(19) m(20) m(21) m(22) m(23) m(24) m(25) m(26)  \
	m(27) m(28) m(29) m(30) m(31)
#define K1_7(m) m(1) m(2) m(3) m(4) m(5) m(6) m(7)
#define XL(i) "movdqu %c[vin]+" #i "*64(%%rbx), %%xmm" #i "\n\t"
#define XS(i) "movdqu %%xmm" #i ", %c[vout]+" #i "*64(%%rbx)\n\t"
#define YL(i) "vmovdqu %c[vin]+" #i "*64(%%rbx), %%ymm" #i "\n\t"
#define YS(i) "vmovdqu %%ymm" #i ", %c[vout]+" #i "*64(%%rbx)\n\t"
#define ZL(i) "vmovdqu64 %c[vin]+" #i "*64(%%rbx), %%zmm" #i "\n\t"
#define ZS(i) "vmovdqu64 %%zmm" #i ", %c[vout]+" #i "*64(%%rbx)\n\t"
#define KL(i) "kmovw %c[kin]+" #i "*2(%%rbx), %%k" #i "\n\t"
#define KS(i) "kmovw %%k" #i ", %c[kout]+" #i "*2(%%rbx)\n\t"

/* x = r * x * (1 - x), step after step, with a pause between steps (few
 * steps to replay); every 16 steps publish the count and look at stop. */
#define PAUSES                                                             \
	"mov $128, %%edx\n\t"                                              \
	"2:\n\t"                                                           \
	"pause\n\t"                                                        \
	"dec %%edx\n\t"                                                    \
	"jnz 2b\n\t"
#define SPIN_TAIL                                                          \
	"inc %%rcx\n\t"                                                    \
	"test $15, %%ecx\n\t"                                              \
	"jnz 1b\n\t"                                                       \
	"mov %%rcx, %c[prog](%%rbx)\n\t"                                   \
	"cmpl $0, %c[stop](%%rbx)\n\t"                                     \
	"je 1b\n\t"                                                        \
	"mov %%rcx, %c[n](%%rbx)\n\t"
#define SPIN_SSE                                                           \
	"movsd %c[x0](%%rbx), %%xmm0\n\t"                                  \
	"movsd %c[r](%%rbx), %%xmm1\n\t"                                   \
	"movsd %c[one](%%rbx), %%xmm2\n\t"                                 \
	"xor %%ecx, %%ecx\n\t"                                             \
	"1:\n\t"                                                           \
	"movapd %%xmm2, %%xmm3\n\t"                                        \
	"subsd %%xmm0, %%xmm3\n\t"                                         \
	"mulsd %%xmm1, %%xmm0\n\t"                                         \
	"mulsd %%xmm3, %%xmm0\n\t"                                         \
	PAUSES SPIN_TAIL                                                   \
	"movsd %%xmm0, %c[x](%%rbx)\n\t"
#define SPIN_VEX                                                           \
	"vmovsd %c[x0](%%rbx), %%xmm0\n\t"                                 \
	"vmovsd %c[r](%%rbx), %%xmm1\n\t"                                  \
	"vmovsd %c[one](%%rbx), %%xmm2\n\t"                                \
	"xor %%ecx, %%ecx\n\t"                                             \
	"1:\n\t"                                                           \
	"vsubsd %%xmm0, %%xmm2, %%xmm3\n\t"                                \
	"vmulsd %%xmm1, %%xmm0, %%xmm0\n\t"                                \
	"vmulsd %%xmm3, %%xmm0, %%xmm0\n\t"                                \
	PAUSES SPIN_TAIL                                                   \
	"vmovsd %%xmm0, %c[x](%%rbx)\n\t"

/* One raw read(2) of one byte; a restarted read must not say EINTR. */
#define READ_ONE                                                           \
	"xor %%eax, %%eax\n\t"                                             \
	"mov %c[fd](%%rbx), %%edi\n\t"                                     \
	"lea %c[buf](%%rbx), %%rsi\n\t"                                    \
	"mov $1, %%edx\n\t"                                                \
	"syscall\n\t"                                                      \
	"mov %%rax, %c[ret](%%rbx)\n\t"

static void run_sse(struct spin *s)
{
	if (s->blocked)
		__asm__ volatile(LOAD_GPRS V4_15(XL) READ_ONE STORE_GPRS
				 V4_15(XS) OPERANDS : CLOB_GPR, CLOB_X16);
	else
		__asm__ volatile(LOAD_GPRS V4_15(XL) SPIN_SSE STORE_GPRS
				 V4_15(XS) OPERANDS : CLOB_GPR, CLOB_X16);
}

__attribute__((target("avx"))) static void run_avx(struct spin *s)
{
	if (s->blocked)
		__asm__ volatile(LOAD_GPRS V4_15(YL) READ_ONE STORE_GPRS
				 V4_15(YS) "vzeroupper\n\t"
				 OPERANDS : CLOB_GPR, CLOB_X16);
	else
		__asm__ volatile(LOAD_GPRS V4_15(YL) SPIN_VEX STORE_GPRS
				 V4_15(YS) "vzeroupper\n\t"
				 OPERANDS : CLOB_GPR, CLOB_X16);
}

__attribute__((target("avx512f"))) static void run_avx512(struct spin *s)
{
	if (s->blocked)
		__asm__ volatile(LOAD_GPRS V4_15(ZL) V16_31(ZL) K1_7(KL)
				 READ_ONE STORE_GPRS V4_15(ZS) V16_31(ZS)
				 K1_7(KS) "vzeroupper\n\t"
				 OPERANDS : CLOB_GPR, CLOB_X32);
	else
		__asm__ volatile(LOAD_GPRS V4_15(ZL) V16_31(ZL) K1_7(KL)
				 SPIN_VEX STORE_GPRS V4_15(ZS) V16_31(ZS)
				 K1_7(KS) "vzeroupper\n\t"
				 OPERANDS : CLOB_GPR, CLOB_X32);
}

static int cpu_isa(void)
{
	unsigned a, b, c, d;
	uint32_t lo, hi;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_AVX) ||
	    !(c & bit_OSXSAVE))
		return 0;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	if ((lo & 6) != 6)
		return 0;
	/* AVX-512F, and the OS saves opmask, ZMM_Hi256, Hi16_ZMM. */
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX512F) &&
	    (lo & 0xe0) == 0xe0)
		return 2;
	return 1;
}

static void *thread_main(void *arg)
{
	struct spin *s = arg;
	uint32_t mx;
	uint16_t cw;

	CHECK_INT(fesetround(s->round), 0);
	__asm__ volatile("stmxcsr %0" : "=m"(mx));
	mx |= s->mxcsr_extra;
	__asm__ volatile("ldmxcsr %0" : : "m"(mx));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	cw = (uint16_t)((cw & ~0x300) | s->pc);
	__asm__ volatile("fldcw %0" : : "m"(cw));
	__asm__ volatile("stmxcsr %0" : "=m"(s->mxcsr_in));
	__asm__ volatile("fnstcw %0" : "=m"(s->cw_in));
	s->tid = gettid();
	if (isa == 2)
		run_avx512(s);
	else if (isa == 1)
		run_avx(s);
	else
		run_sse(s);
	return NULL;
}

/* The thread's n steps again, under its MXCSR, in C. */
static double replay(const struct spin *s)
{
	uint32_t saved, ctl = s->mxcsr_in & ~MXCSR_FLAGS;
	double x = s->x0;

	__asm__ volatile("stmxcsr %0" : "=m"(saved));
	__asm__ volatile("ldmxcsr %0" : : "m"(ctl));
	for (uint64_t i = 0; i < s->n; i++) {
		double t = s->one - x;

		x = x * s->r;
		x = x * t;
	}
	__asm__ volatile("ldmxcsr %0" : : "m"(saved));
	return x;
}

static struct spin threads[] = {
	{ .name = "computing, rounding upward", .round = FE_UPWARD,
	  .pc = 0x300 },
	{ .name = "computing, rounding downward, FTZ", .round = FE_DOWNWARD,
	  .mxcsr_extra = MXCSR_FTZ, .pc = 0x200 },
	{ .name = "computing, rounding toward zero, DAZ",
	  .round = FE_TOWARDZERO, .mxcsr_extra = MXCSR_DAZ, .pc = 0x000 },
	{ .name = "blocked in read, rounding toward zero, FTZ+DAZ",
	  .round = FE_TOWARDZERO, .mxcsr_extra = MXCSR_FTZ | MXCSR_DAZ,
	  .pc = 0x200, .blocked = 1 },
};
#define NTHREADS (int)(sizeof(threads) / sizeof(threads[0]))

/* Wait until s has published at least `steps` steps. */
static void wait_progress(const struct spin *s, uint64_t steps)
{
	for (int i = 0; i < WAIT_MS && s->progress < steps; i++)
		cap_msleep(1);
	if (s->progress < steps)
		cap_fail(__FILE__, __LINE__, "thread %s: %llu steps, not %llu "
			 "in %d ms", s->name,
			 (unsigned long long)s->progress,
			 (unsigned long long)steps, WAIT_MS);
}

int main(void)
{
	int width;
	uint32_t main_mx, mx;
	uint16_t main_cw, cw;

	isa = cpu_isa();
	width = isa == 2 ? 64 : isa == 1 ? 32 : 16;
	__asm__ volatile("stmxcsr %0" : "=m"(main_mx));
	__asm__ volatile("fnstcw %0" : "=m"(main_cw));
	for (int i = 0; i < NTHREADS; i++) {
		struct spin *s = &threads[i];
		unsigned long long seed = 1000 + (unsigned)i;

		s->x0 = 0.1 + 0.2 * i;
		s->r = 3.9999 - 0.0001 * i;
		s->one = 1.0;
		for (int g = 0; g < 4; g++)
			s->gpr_in[g] = cap_rand(&seed);
		for (int k = 0; k < 8; k++)
			s->k_in[k] = (uint16_t)cap_rand(&seed);
		cap_fill(s->vec_in, sizeof(s->vec_in), seed);
		if (s->blocked) {
			CHECK_SYS(pipe(s->pipe));
			s->fd = s->pipe[0];
		}
		CHECK_INT(pthread_create(&s->th, NULL, thread_main, s), 0);
		if (s->blocked) {
			cap_wait_tid(&s->tid, WAIT_MS);
			cap_wait_in_syscall(s->tid, SYS_read, WAIT_MS);
		} else {
			wait_progress(s, 16);
		}
	}
	printf("%d threads computing, 1 blocked, registers loaded\n",
	       NTHREADS - 1);

	cap_sync();

	__asm__ volatile("stmxcsr %0" : "=m"(mx));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	CHECK_INT(mx & ~MXCSR_FLAGS, main_mx & ~MXCSR_FLAGS);
	CHECK_INT(cw, main_cw);
	CHECK_INT(fegetround(), FE_TONEAREST);
	printf("main: MXCSR and x87 control word: same\n");
	/* Every computing thread goes on computing. */
	for (int i = 0; i < NTHREADS; i++)
		if (!threads[i].blocked)
			wait_progress(&threads[i], threads[i].progress + 64);
	for (int i = 0; i < NTHREADS; i++) {
		struct spin *s = &threads[i];

		if (s->blocked)
			CHECK_INT(write(s->pipe[1], "z", 1), 1);
		else
			s->stop = 1;
		cap_join(s->th, NULL, WAIT_MS, "thread %s did not end",
			 s->name);
	}
	for (int i = 0; i < NTHREADS; i++) {
		struct spin *s = &threads[i];

		for (int g = 0; g < 4; g++)
			CHECK_INT(s->gpr_out[g], s->gpr_in[g]);
		for (int v = 4; v < (isa == 2 ? 32 : 16); v++)
			CHECK_MEM(s->vec_out[v], s->vec_in[v], (size_t)width);
		if (isa == 2)
			for (int k = 1; k < 8; k++)
				CHECK_INT(s->k_out[k], s->k_in[k]);
		CHECK_INT(s->mxcsr_out & ~MXCSR_FLAGS,
			  s->mxcsr_in & ~MXCSR_FLAGS);
		CHECK_INT(s->cw_out, s->cw_in);
		if (s->blocked) {
			CHECK_INT(s->ret, 1);
			CHECK_INT(s->buf[0], 'z');
		} else {
			double want = replay(s);

			CHECK(s->n >= 16 * 5);
			CHECK_MEM(&s->x, &want, sizeof(want));
		}
		printf("thread %s: registers, MXCSR, x87 control: same%s\n",
		       s->name, s->blocked ? "; read 1 byte" :
		       "; value replays");
	}
	return 0;
}
