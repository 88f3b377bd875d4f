/*
 * Raw system calls of the agent, x86-64.
 *
 * ABI: number in rax; arguments in rdi, rsi, rdx, r10, r8, r9; `syscall`
 * returns the result (or -errno, -4095..-1) in rax and clobbers rcx and
 * r11 (kernel nolibc's convention). No errno: callers get -errno.
 */
#ifndef ESKY_AGENT_SYSCALL_H
#define ESKY_AGENT_SYSCALL_H

#include <asm/unistd.h>

static inline long sys_call6(long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
	register long r10 __asm__("r10") = a3;
	register long r8 __asm__("r8") = a4;
	register long r9 __asm__("r9") = a5;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define sys_call(nr, a0, a1, a2, a3, a4, a5)                                              \
	sys_call6((nr), (long)(a0), (long)(a1), (long)(a2), (long)(a3), (long)(a4), (long)(a5))

/* Stop for the monitor: SIGTRAP with si_code SI_KERNEL. */
static inline void arch_breakpoint(void)
{
	__asm__ volatile("int3" ::: "memory");
}

#endif
