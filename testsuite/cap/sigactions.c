/* Signal dispositions survive: handlers with SA_SIGINFO, SA_RESTART, SA_NODEFER, SA_RESETHAND, SA_ONSTACK and their sa_mask, ignored signals, SIGCHLD's SA_NOCLDWAIT|SA_NOCLDSTOP (read back with rt_sigaction, and handlers run), the alternate signal stack, and a SIGTRAP handler (esky's own breakpoint traps while it reads the state must not reset it). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "cap.h"

/* The kernel's struct sigaction (rt_sigaction), restorer included. */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static volatile sig_atomic_t got_usr1, got_usr2, usr1_code, on_altstack;
static char altstack[65536];

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	sigset_t cur;

	(void)uc;
	got_usr1 = sig;
	usr1_code = si->si_code;
	/* sa_mask is in force in the handler. */
	sigprocmask(SIG_BLOCK, NULL, &cur);
	if (!sigismember(&cur, SIGHUP) || !sigismember(&cur, SIGTERM))
		got_usr1 = -1;
	on_altstack = (char *)&cur >= altstack &&
		      (char *)&cur < altstack + sizeof(altstack);
}

static void on_usr2(int sig)
{
	got_usr2 += sig;
}

static volatile sig_atomic_t got_trap;

static void on_trap(int sig)
{
	got_trap = sig;
}

static void get_k(int sig, struct ksigaction *k)
{
	CHECK_SYS(syscall(SYS_rt_sigaction, sig, NULL, k, 8));
}

int main(void)
{
	struct sigaction sa, back;
	struct ksigaction before[65], after;
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	stack_t ss2;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGHUP);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGRTMIN + 2);
	CHECK_SYS(sigaction(SIGUSR1, &sa, NULL));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_NODEFER | SA_RESETHAND;
	CHECK_SYS(sigaction(SIGUSR2, &sa, NULL));

	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGRTMIN + 5, on_usr2);
	signal(SIGTRAP, on_trap);
	/* SIG_DFL with a flag that matters: children reap themselves. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sa.sa_flags = SA_NOCLDWAIT | SA_NOCLDSTOP;
	CHECK_SYS(sigaction(SIGCHLD, &sa, NULL));
	CHECK_SYS(sigaltstack(&ss, NULL));

	for (int s = 1; s < 65; s++)
		if (s != SIGKILL && s != SIGSTOP)
			get_k(s, &before[s]);
	printf("handlers installed\n");

	cap_sync();

	for (int s = 1; s < 65; s++) {
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		get_k(s, &after);
		/* With SIG_DFL, only the flags that change what the default
		 * does are state: glibc's signal() adds SA_RESTART, a
		 * restorer and a mask that mean nothing there. */
		if (before[s].handler == SIG_DFL) {
			before[s].flags &= SA_NOCLDWAIT | SA_NOCLDSTOP;
			after.flags &= SA_NOCLDWAIT | SA_NOCLDSTOP;
			before[s].restorer = after.restorer = NULL;
			before[s].mask = after.mask = 0;
		}
		if (memcmp(&after, &before[s], sizeof(after)))
			cap_fail(__FILE__, __LINE__,
				 "signal %d: expected handler %p flags %#lx "
				 "restorer %p mask %#llx, found %p %#lx %p "
				 "%#llx", s, before[s].handler,
				 before[s].flags, before[s].restorer,
				 (unsigned long long)before[s].mask,
				 after.handler, after.flags, after.restorer,
				 (unsigned long long)after.mask);
	}
	CHECK_SYS(sigaction(SIGUSR1, NULL, &back));
	CHECK(back.sa_sigaction == on_usr1);
	CHECK_INT(back.sa_flags & (SA_SIGINFO | SA_RESTART | SA_ONSTACK |
				   SA_NODEFER | SA_RESETHAND),
		  SA_SIGINFO | SA_RESTART | SA_ONSTACK);
	CHECK(sigismember(&back.sa_mask, SIGHUP) == 1);
	CHECK(sigismember(&back.sa_mask, SIGTERM) == 1);
	CHECK(sigismember(&back.sa_mask, SIGRTMIN + 2) == 1);
	CHECK(sigismember(&back.sa_mask, SIGINT) == 0);
	CHECK_SYS(sigaction(SIGINT, NULL, &back));
	CHECK(back.sa_handler == SIG_IGN);
	CHECK_SYS(sigaction(SIGCHLD, NULL, &back));
	CHECK(back.sa_handler == SIG_DFL);
	CHECK_INT(back.sa_flags & (SA_NOCLDWAIT | SA_NOCLDSTOP),
		  SA_NOCLDWAIT | SA_NOCLDSTOP);
	printf("dispositions: ok\n");

	CHECK_SYS(sigaltstack(NULL, &ss2));
	CHECK(ss2.ss_sp == altstack);
	CHECK_INT(ss2.ss_size, sizeof(altstack));
	CHECK_INT(ss2.ss_flags, 0);
	printf("alternate stack: ok\n");

	/* The handlers run, with their flags. */
	raise(SIGUSR1);
	CHECK_INT(got_usr1, SIGUSR1);
	CHECK_INT(usr1_code, SI_TKILL);
	CHECK_INT(on_altstack, 1);
	raise(SIGINT);		/* ignored */
	raise(SIGUSR2);
	CHECK_INT(got_usr2, SIGUSR2);
	CHECK_SYS(sigaction(SIGUSR2, NULL, &back));
	CHECK(back.sa_handler == SIG_DFL);	/* SA_RESETHAND */
	raise(SIGRTMIN + 5);
	CHECK_INT(got_usr2, SIGUSR2 + SIGRTMIN + 5);
	raise(SIGTRAP);
	CHECK_INT(got_trap, SIGTRAP);
	printf("handlers ran: ok\n");
	return 0;
}
