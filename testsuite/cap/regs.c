/* CPU registers survive a checkpoint taken inside a blocking read(2): general registers (rbx, r8-r10, r12-r15), rflags' direction flag, xmm0-15, the upper halves of ymm0-15 when the CPU has AVX, and the x87 register stack. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <stdint.h>

#include "cap.h"

#define GPRS 8
static uint64_t gpr_out[GPRS] __attribute__((used));
static const uint64_t gpr_in[GPRS] = {
	0x0123456789abcdefULL,	/* rbx */
	0x1111111111111108ULL,	/* r8 */
	0x2222222222222209ULL,	/* r9 */
	0x333333333333330aULL,	/* r10 */
	0x4444444444444412ULL,	/* r12 */
	0x5555555555555513ULL,	/* r13 */
	0x6666666666666614ULL,	/* r14 */
	0x7777777777777715ULL,	/* r15 */
};
static uint8_t vec_in[16][32] __attribute__((used, aligned(32)));
static uint8_t vec_out[16][32] __attribute__((used, aligned(32)));
static double x87_out[3] __attribute__((used));
static uint64_t flags_out __attribute__((used));
static int64_t read_ret __attribute__((used));
static char rbuf __attribute__((used));

/* Load the registers, read one line from fd 0 in a loop of raw read(2)
 * syscalls (retried on EINTR), store the registers. */
#define LOAD_GPRS                                                          \
	"movabs $0x0123456789abcdef, %%rbx\n\t"                            \
	"movabs $0x1111111111111108, %%r8\n\t"                             \
	"movabs $0x2222222222222209, %%r9\n\t"                             \
	"movabs $0x333333333333330a, %%r10\n\t"                            \
	"movabs $0x4444444444444412, %%r12\n\t"                            \
	"movabs $0x5555555555555513, %%r13\n\t"                            \
	"movabs $0x6666666666666614, %%r14\n\t"                            \
	"movabs $0x7777777777777715, %%r15\n\t"                            \
	"fldl2e\n\tfld1\n\tfldpi\n\t"                                      \
	"std\n\t"

#define READ_LINE                                                          \
	"1:\n\t"                                                           \
	"xor %%eax, %%eax\n\t"                                             \
	"xor %%edi, %%edi\n\t"                                             \
	"lea rbuf(%%rip), %%rsi\n\t"                                       \
	"mov $1, %%edx\n\t"                                                \
	"syscall\n\t"                                                      \
	"cmp $-4, %%rax\n\t"                                               \
	"je 1b\n\t"                                                        \
	"cmp $1, %%rax\n\t"                                                \
	"jne 2f\n\t"                                                       \
	"cmpb $10, rbuf(%%rip)\n\t"                                        \
	"jne 1b\n\t"                                                       \
	"2:\n\t"

#define STORE_GPRS                                                         \
	"pushfq\n\tpopq flags_out(%%rip)\n\tcld\n\t"                       \
	"mov %%rax, read_ret(%%rip)\n\t"                                   \
	"mov %%rbx, gpr_out+0(%%rip)\n\t"                                  \
	"mov %%r8, gpr_out+8(%%rip)\n\t"                                   \
	"mov %%r9, gpr_out+16(%%rip)\n\t"                                  \
	"mov %%r10, gpr_out+24(%%rip)\n\t"                                 \
	"mov %%r12, gpr_out+32(%%rip)\n\t"                                 \
	"mov %%r13, gpr_out+40(%%rip)\n\t"                                 \
	"mov %%r14, gpr_out+48(%%rip)\n\t"                                 \
	"mov %%r15, gpr_out+56(%%rip)\n\t"                                 \
	"fstpl x87_out+0(%%rip)\n\t"                                       \
	"fstpl x87_out+8(%%rip)\n\t"                                       \
	"fstpl x87_out+16(%%rip)\n\t"


#define CLOBBERS                                                           \
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",  \
	"r12", "r13", "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",  \
	"xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",   \
	"xmm13", "xmm14", "xmm15", "st", "st(1)", "st(2)", "memory", "cc"

#define XMM_LOAD(n) "movdqu vec_in+" #n "*32(%%rip), %%xmm" #n "\n\t"
#define XMM_STORE(n) "movdqu %%xmm" #n ", vec_out+" #n "*32(%%rip)\n\t"
#define YMM_LOAD(n) "vmovdqu vec_in+" #n "*32(%%rip), %%ymm" #n "\n\t"
#define YMM_STORE(n) "vmovdqu %%ymm" #n ", vec_out+" #n "*32(%%rip)\n\t"
#define ALL16(m)                                                           \
	m(0) m(1) m(2) m(3) m(4) m(5) m(6) m(7) m(8) m(9) m(10) m(11) m(12) \
	m(13) m(14) m(15)

static void sync_sse(void)
{
	cap_write_all(2, "@@sync\n", 7);
	__asm__ volatile(LOAD_GPRS ALL16(XMM_LOAD) READ_LINE STORE_GPRS
			 ALL16(XMM_STORE)
			 : : : CLOBBERS);
}

__attribute__((target("avx"))) static void sync_avx(void)
{
	cap_write_all(2, "@@sync\n", 7);
	__asm__ volatile(LOAD_GPRS ALL16(YMM_LOAD) READ_LINE STORE_GPRS
			 ALL16(YMM_STORE) "vzeroupper\n\t"
			 : : : CLOBBERS);
}

static int have_avx(void)
{
	unsigned a, b, c, d;
	uint32_t xcr0_lo, xcr0_hi;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	if (!(c & bit_AVX) || !(c & bit_OSXSAVE))
		return 0;
	__asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
	return (xcr0_lo & 6) == 6;	/* the OS saves SSE and AVX state */
}

int main(void)
{
	int avx = have_avx();
	int width = avx ? 32 : 16;

	cap_fill(vec_in, sizeof(vec_in), 99);
	printf("registers loaded\n");
	if (avx)
		sync_avx();
	else
		sync_sse();

	CHECK_INT(read_ret, 1);
	CHECK_INT(rbuf, '\n');
	for (int i = 0; i < GPRS; i++)
		CHECK_INT(gpr_out[i], gpr_in[i]);
	printf("general registers: ok\n");
	CHECK_INT(flags_out & 0x400, 0x400);	/* DF */
	printf("direction flag: ok\n");
	for (int i = 0; i < 16; i++)
		CHECK_MEM(vec_out[i], vec_in[i], (size_t)width);
	printf("vector registers: ok\n");
	CHECK(x87_out[0] == 3.14159265358979323846);
	CHECK(x87_out[1] == 1.0);
	CHECK(x87_out[2] == 1.44269504088896340736);
	printf("x87 stack: ok\n");
	return 0;
}
