/* Blocked and pending signals survive: the blocked mask, standard signals raised while blocked (delivered after the resume when unblocked), and queued real-time signals with their values, in order. */
#define _GNU_SOURCE
#include <signal.h>

#include "cap.h"

static int order[16], norder;
static int values[16];

static void handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (norder < 16) {
		values[norder] = si->si_code == SI_QUEUE ? si->si_value.sival_int
							 : -1;
		order[norder++] = sig;
	}
}

int main(void)
{
	struct sigaction sa = { .sa_sigaction = handler,
				.sa_flags = SA_SIGINFO };
	sigset_t block, cur, pend;
	int rt = SIGRTMIN + 3;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGURG, &sa, NULL);
	sigaction(rt, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGURG);
	sigaddset(&block, rt);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGWINCH);
	sigaddset(&block, SIGRTMAX);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &block, NULL));

	raise(SIGUSR1);
	raise(SIGURG);
	for (int i = 0; i < 3; i++) {
		union sigval v = { .sival_int = 100 + i };

		CHECK_SYS(sigqueue(getpid(), rt, v));
	}
	sigpending(&pend);
	CHECK(sigismember(&pend, SIGUSR1) && sigismember(&pend, rt));
	printf("signals pending: 5\n");

	cap_sync();

	CHECK_SYS(sigprocmask(SIG_BLOCK, NULL, &cur));
	for (int s = 1; s < 65; s++)
		if (s != SIGKILL && s != SIGSTOP)
			CHECK_INT(sigismember(&cur, s), sigismember(&block, s));
	CHECK_SYS(sigpending(&pend));
	for (int s = 1; s < 65; s++) {
		int want = s == SIGUSR1 || s == SIGURG || s == rt;

		CHECK_INT(sigismember(&pend, s), want);
	}
	printf("blocked mask and pending set: ok\n");
	CHECK_INT(norder, 0);

	/* Unblock one at a time: the handler runs before sigprocmask
	 * returns. */
	{
		sigset_t one;

		sigemptyset(&one);
		sigaddset(&one, SIGURG);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		CHECK_INT(norder, 1);
		CHECK_INT(order[0], SIGURG);
		sigemptyset(&one);
		sigaddset(&one, rt);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		CHECK_INT(norder, 4);
		for (int i = 0; i < 3; i++) {
			CHECK_INT(order[1 + i], rt);
			CHECK_INT(values[1 + i], 100 + i);
		}
		sigemptyset(&one);
		sigaddset(&one, SIGUSR1);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		CHECK_INT(norder, 5);
		CHECK_INT(order[4], SIGUSR1);
	}
	sigpending(&pend);
	CHECK(!sigismember(&pend, SIGUSR1) && !sigismember(&pend, rt));
	printf("delivered after the resume: ok\n");
	return 0;
}
