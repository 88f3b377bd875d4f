/*
 * x86-64 knowledge of libesky: the register set, the syscall and
 * breakpoint instructions, and the kernel's syscall-restart convention.
 *
 * ABI relied on (x86-64 Linux): the syscall number goes in rax, arguments
 * in rdi, rsi, rdx, r10, r8, r9; `syscall` (0f 05) returns in rax and
 * clobbers rcx and r11. `int3` (cc) raises SIGTRAP with si_code SI_KERNEL
 * and leaves rip just past itself. The register set seen by ptrace is
 * struct user_regs_struct; orig_rax holds the number of the syscall the
 * task stopped in (or -1), and rax the kernel's -ERESTART* code when a
 * signal or a ptrace stop interrupted it.
 */
#ifndef ESKY_ARCH_H
#define ESKY_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>

typedef struct user_regs_struct esky_regs_t;

#define ARCH_NAME "x86_64"
#define ARCH_SYSCALL_INSN_LEN 2
/* The syscall instruction's bytes (remote syscalls look for them in the tracee's code). */
#define ARCH_SYSCALL_INSN_BYTES { 0x0f, 0x05 }
/*
 * XCR0, the features the CPU had enabled, in ptrace's XSAVE area: the
 * software-reserved bytes of FXSAVE, where the kernel puts it for ptrace
 * and core dumps alike.
 */
#define ARCH_XSTATE_XCR0_OFF 464u
#define ARCH_BREAKPOINT_LEN 1
#define ARCH_BREAKPOINT_BYTE 0xcc
/* The regset of the whole x87/SSE/AVX state (elf.h's NT_X86_XSTATE). */
#define ARCH_NT_XSTATE 0x202
/* Largest xstate buffer asked for; the kernel says how much it used. */
#define ARCH_XSTATE_MAX (64 * 1024)
/* Userspace ends here with 4-level paging (47 bits, minus the guard page). */
#define ARCH_TASK_SIZE 0x7ffffffff000ULL
/* The legacy vsyscall page: fixed, the same in every process, not saved. */
#define ARCH_VSYSCALL_ADDR 0xffffffffff600000ULL

static inline uint64_t arch_regs_ip(const esky_regs_t *r) { return r->rip; }
static inline void arch_regs_set_ip(esky_regs_t *r, uint64_t ip) { r->rip = ip; }
static inline uint64_t arch_regs_sp(const esky_regs_t *r) { return r->rsp; }
/* The frame pointer, and the register a function returns its value in. */
static inline uint64_t arch_regs_fp(const esky_regs_t *r) { return r->rbp; }
static inline uint64_t arch_regs_retval(const esky_regs_t *r) { return r->rax; }
/*
 * A function that keeps a frame pointer (push rbp; mov rbp, rsp) has its
 * return address at fp + 8; right after a call, at sp.
 */
#define ARCH_FP_RET_OFF 8
/* The return address lies just below the canonical frame address (DWARF CFA). */
#define ARCH_CFA_RET_OFF 8

/* A register by its DWARF number (the x86-64 psABI's), general ones only. */
static inline bool arch_regs_dwarf(const esky_regs_t *r, int reg, uint64_t *value)
{
	switch (reg) {
	case 0: *value = r->rax; return true;
	case 1: *value = r->rdx; return true;
	case 2: *value = r->rcx; return true;
	case 3: *value = r->rbx; return true;
	case 4: *value = r->rsi; return true;
	case 5: *value = r->rdi; return true;
	case 6: *value = r->rbp; return true;
	case 7: *value = r->rsp; return true;
	case 8: *value = r->r8; return true;
	case 9: *value = r->r9; return true;
	case 10: *value = r->r10; return true;
	case 11: *value = r->r11; return true;
	case 12: *value = r->r12; return true;
	case 13: *value = r->r13; return true;
	case 14: *value = r->r14; return true;
	case 15: *value = r->r15; return true;
	case 16: *value = r->rip; return true;
	default: return false;
	}
}

/*
 * Hardware watchpoints: DR0-DR3 hold addresses, DR6 says which fired (bits
 * 0-3), DR7 enables them (local enable bit 2i, condition at 16 + 4i: 01
 * write, length at 18 + 4i: 00 1 byte, 01 2, 11 4, 10 8; the address
 * aligned to the length). Offsets in struct user (x86-64: u_debugreg at 848).
 */
#define ARCH_WATCH_SLOTS 4
#define ARCH_DEBUGREG_OFF(i) (848 + 8 * (size_t)(i))
static inline uint64_t arch_watch_dr7(uint64_t dr7, unsigned slot, unsigned len, bool on)
{
	unsigned lenbits = len == 1 ? 0 : len == 2 ? 1 : len == 8 ? 2 : 3;

	dr7 &= ~((3ULL << (2 * slot)) | (0xfULL << (16 + 4 * slot)));
	if (on)
		dr7 |= (1ULL << (2 * slot)) | (1ULL << (16 + 4 * slot)) |
		       ((uint64_t)lenbits << (18 + 4 * slot));
	return dr7;
}
static inline bool arch_watch_len_ok(uint64_t addr, unsigned len)
{
	return (len == 1 || len == 2 || len == 4 || len == 8) && addr % len == 0;
}
/* Registers for a fresh program entry at the current ip with stack pointer sp. */
static inline void arch_regs_set_entry_sp(esky_regs_t *r, uint64_t sp)
{
	r->rsp = sp;
	r->rax = 0;
	r->orig_rax = (unsigned long)-1L;
	r->rdx = 0; /* no atexit function for _start */
}
static inline long arch_regs_syscall_ret(const esky_regs_t *r) { return (long)r->rax; }
/* Registers that stand in no syscall: the kernel's restart logic leaves them alone. */
static inline void arch_regs_clear_syscall(esky_regs_t *r) { r->orig_rax = (unsigned long)-1L; }
/* The number of the syscall the task is in, or -1. */
static inline long arch_regs_syscall_nr(const esky_regs_t *r) { return (long)r->orig_rax; }

/*
 * Make r execute syscall nr with args at the instruction at ip. orig_rax is
 * set to -1 so that the kernel's restart logic leaves the injected call
 * alone when the task was stopped inside another syscall.
 */
void arch_regs_set_syscall(esky_regs_t *r, uint64_t ip, long nr, const long args[6]);

/*
 * A batch of syscalls run in one resume (esky_tracee_syscall_batch): code
 * that takes a table of n entries of 8 words (number, six arguments, the
 * result it writes back) and runs them in order, then stops at a
 * breakpoint. arch_batch_code writes it into buf (ARCH_BATCH_CODE_MAX
 * bytes) and returns its length; arch_regs_set_batch points r at it
 * (code at ip, the table at table); the stop is at ip + length.
 */
#define ARCH_BATCH_CODE_MAX 64
size_t arch_batch_code(uint8_t buf[ARCH_BATCH_CODE_MAX]);
void arch_regs_set_batch(esky_regs_t *r, uint64_t ip, uint64_t table, uint64_t n);

/*
 * Rewrite the registers of a task stopped inside an interrupted syscall so
 * that a fresh process started from them behaves as the kernel's restart
 * would have: -ERESTARTSYS, -ERESTARTNOINTR and -ERESTARTNOHAND re-execute
 * the syscall; -ERESTART_RESTARTBLOCK (nanosleep, poll with a timeout,
 * timed futex waits) cannot be restarted in another process, whose kernel
 * has no restart block: futex and poll are made again (a relative timeout
 * starts again), sleeps return -EINTR (the remaining time is in the
 * caller's memory for nanosleep). Returns true if r was changed.
 */
bool arch_regs_fixup_restart(esky_regs_t *r);

/*
 * The 128-bit product of x and y folded to 64 bits (low ^ high), for the
 * image checksum. `mulq` directly: gcc 12 spills a C __int128 product
 * through the stack, which halves the checksum's speed.
 */
static inline uint64_t arch_mul_fold(uint64_t x, uint64_t y)
{
	uint64_t lo, hi;

	__asm__("mulq %3" : "=a"(lo), "=d"(hi) : "a"(x), "rm"(y));
	return lo ^ hi;
}

/* A one-line summary of the registers people look at first ("rip 0x... rsp 0x..."). */
void arch_regs_summary(const esky_regs_t *r, char *buf, size_t n);

/* The address of the breakpoint that trapped, from the ip after the trap. */
static inline uint64_t arch_breakpoint_addr(const esky_regs_t *r)
{
	return r->rip - ARCH_BREAKPOINT_LEN;
}

/* All general registers as "name  0xhex  decimal" lines, like gdb's info registers. */
void arch_regs_format(const esky_regs_t *r, char *buf, size_t n);

/* The value of the register called name ("rip", "pc", "sp", "rax", ...); 0 or -ENOENT. */
int arch_regs_get(const esky_regs_t *r, const char *name, uint64_t *value);

/*
 * Whether the ARCH_CALL_MAX_LEN bytes of code before ret end with a call
 * instruction, i.e. ret looks like a return address (used to find, on the
 * stack, the program's frame below a library function).
 */
#define ARCH_CALL_MAX_LEN 7
bool arch_follows_call(const uint8_t before[ARCH_CALL_MAX_LEN]);

/* True if the register set is a sane 64-bit user context (cs, ss). */
bool arch_regs_valid(const esky_regs_t *r);

#endif
