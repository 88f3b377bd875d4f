/* x86-64 registers and syscall conventions, see arch.h. */
#include "arch.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Kernel-internal restart codes (include/linux/errno.h), never seen by programs. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

void arch_regs_set_syscall(esky_regs_t *r, uint64_t ip, long nr, const long args[6])
{
	r->rip = ip;
	r->rax = (unsigned long)nr;
	r->orig_rax = (unsigned long)-1L;
	r->rdi = (unsigned long)args[0];
	r->rsi = (unsigned long)args[1];
	r->rdx = (unsigned long)args[2];
	r->r10 = (unsigned long)args[3];
	r->r8 = (unsigned long)args[4];
	r->r9 = (unsigned long)args[5];
}

size_t arch_batch_code(uint8_t buf[ARCH_BATCH_CODE_MAX])
{
	/* rbx: the entry, r12: entries left. syscall clobbers rcx and r11 only. */
	static const uint8_t code[] = {
		0x48, 0x8b, 0x03,       /* loop: mov rax, [rbx] */
		0x48, 0x8b, 0x7b, 0x08, /* mov rdi, [rbx + 8] */
		0x48, 0x8b, 0x73, 0x10, /* mov rsi, [rbx + 16] */
		0x48, 0x8b, 0x53, 0x18, /* mov rdx, [rbx + 24] */
		0x4c, 0x8b, 0x53, 0x20, /* mov r10, [rbx + 32] */
		0x4c, 0x8b, 0x43, 0x28, /* mov r8, [rbx + 40] */
		0x4c, 0x8b, 0x4b, 0x30, /* mov r9, [rbx + 48] */
		0x0f, 0x05,             /* syscall */
		0x48, 0x89, 0x43, 0x38, /* mov [rbx + 56], rax */
		0x48, 0x83, 0xc3, 0x40, /* add rbx, 64 */
		0x49, 0xff, 0xcc,       /* dec r12 */
		0x75, 0xd6,             /* jnz loop (-42) */
		0xcc,                   /* int3 */
	};
	_Static_assert(sizeof(code) <= ARCH_BATCH_CODE_MAX, "the batch code fits");
	memcpy(buf, code, sizeof(code));
	return sizeof(code);
}

void arch_regs_set_batch(esky_regs_t *r, uint64_t ip, uint64_t table, uint64_t n)
{
	r->rip = ip;
	r->rbx = table;
	r->r12 = n;
	/* Not in a syscall for the kernel's restart logic; no single-step trap on the way. */
	r->orig_rax = (unsigned long)-1L;
	r->eflags &= ~0x100ul;
}

bool arch_regs_fixup_restart(esky_regs_t *r)
{
	if ((long)r->orig_rax < 0)
		return false;
	switch ((long)r->rax) {
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
		r->rax = r->orig_rax;
		r->rip -= ARCH_SYSCALL_INSN_LEN;
		break;
	case -ERESTART_RESTARTBLOCK:
		/*
		 * A futex wait is made again: it checks its word anew (a wake-up
		 * missed meanwhile shows as a changed word) and an absolute
		 * deadline (glibc's timed waits) is exact; a poll too, its
		 * timeout counted again from the resume. Sleeps say EINTR with
		 * the time left in the caller's memory (glibc's loops sleep it).
		 */
		if (r->orig_rax == 202 /* futex */ || r->orig_rax == 7 /* poll */) {
			r->rax = r->orig_rax;
			r->rip -= ARCH_SYSCALL_INSN_LEN;
		} else {
			r->rax = (unsigned long)-EINTR;
		}
		break;
	default:
		return false;
	}
	r->orig_rax = (unsigned long)-1L;
	return true;
}

bool arch_regs_valid(const esky_regs_t *r)
{
	/* __USER_CS and __USER_DS of x86-64 Linux. */
	return r->cs == 0x33 && r->ss == 0x2b && r->rip < 0x800000000000ULL;
}

void arch_regs_summary(const esky_regs_t *r, char *buf, size_t n)
{
	snprintf(buf, n, "rip 0x%llx rsp 0x%llx fs_base 0x%llx", (unsigned long long)r->rip,
		 (unsigned long long)r->rsp, (unsigned long long)r->fs_base);
}

static const struct {
	const char *name;
	size_t off;
} reg_names[] = {
#define R(n) { #n, offsetof(esky_regs_t, n) }
	R(rax), R(rbx), R(rcx), R(rdx), R(rsi), R(rdi), R(rbp), R(rsp),
	R(r8), R(r9), R(r10), R(r11), R(r12), R(r13), R(r14), R(r15),
	R(rip), R(eflags), R(cs), R(ss), R(ds), R(es), R(fs), R(gs),
	R(fs_base), R(gs_base),
#undef R
};

void arch_regs_format(const esky_regs_t *r, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(reg_names) / sizeof(reg_names[0]) && len < n; i++) {
		unsigned long long v;

		memcpy(&v, (const char *)r + reg_names[i].off, sizeof(v));
		len += (size_t)snprintf(buf + len, n - len, "%-8s 0x%-18llx %lld\n", reg_names[i].name,
					v, (long long)v);
	}
}

int arch_regs_get(const esky_regs_t *r, const char *name, uint64_t *value)
{
	if (!strcmp(name, "pc"))
		name = "rip";
	else if (!strcmp(name, "sp"))
		name = "rsp";
	else if (!strcmp(name, "fp"))
		name = "rbp";
	for (size_t i = 0; i < sizeof(reg_names) / sizeof(reg_names[0]); i++) {
		if (!strcmp(name, reg_names[i].name)) {
			memcpy(value, (const char *)r + reg_names[i].off, sizeof(*value));
			return 0;
		}
	}
	return -ENOENT;
}

bool arch_follows_call(const uint8_t b[ARCH_CALL_MAX_LEN])
{
	const uint8_t *end = b + ARCH_CALL_MAX_LEN;

	/* call rel32: e8 + 4 bytes. */
	if (end[-5] == 0xe8)
		return true;
	/* call *disp32(%rip) (-fno-plt, GOT calls): ff 15 + 4 bytes. */
	if (end[-6] == 0xff && end[-5] == 0x15)
		return true;
	/* call *%reg: ff d0+r, with a REX prefix for r8-r15. */
	if (end[-2] == 0xff && (end[-1] & 0xf8) == 0xd0)
		return true;
	/* call *disp8(%reg): ff 50+r + 1 byte. */
	if (end[-3] == 0xff && (end[-2] & 0xf8) == 0x50 && (end[-2] & 7) != 4)
		return true;
	return false;
}
