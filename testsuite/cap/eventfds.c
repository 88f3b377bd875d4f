/* eventfd, timerfd and signalfd come back with their state: an eventfd's counter (and semaphore mode), a timerfd's clock, remaining time, interval and unread expirations, a signalfd's mask, with a signal pending for it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include "cap.h"

int main(void)
{
	int ev, sem, tfd, tfd_idle, sfd;
	uint64_t v;
	struct itimerspec its = { .it_interval = { 3600, 0 }, .it_value = { 0, 1000000 } }, cur;
	struct signalfd_siginfo si;
	sigset_t set;

	ev = eventfd(7, EFD_NONBLOCK);
	CHECK_SYS(ev);
	v = 35;
	CHECK_INT(write(ev, &v, 8), 8);
	sem = eventfd(3, EFD_SEMAPHORE | EFD_CLOEXEC);
	CHECK_SYS(sem);
	/* A timer that expired once (1 ms) and is read after, with an hour's interval. */
	tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	CHECK_SYS(tfd);
	CHECK_SYS(timerfd_settime(tfd, 0, &its, NULL));
	while (timerfd_gettime(tfd, &cur) == 0 && cur.it_value.tv_sec < 3000)
		;
	tfd_idle = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	CHECK_SYS(tfd_idle);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGWINCH);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &set, NULL));
	sfd = signalfd(-1, &set, SFD_NONBLOCK);
	CHECK_SYS(sfd);
	CHECK_SYS(raise(SIGUSR2));
	printf("eventfds, timerfds and a signalfd set\n");

	cap_sync();

	CHECK_INT(read(ev, &v, 8), 8);
	CHECK_INT((int)v, 42);
	CHECK_INT(read(ev, &v, 8), -1);
	CHECK_INT(errno, EAGAIN);
	CHECK_INT(fcntl(sem, F_GETFD), FD_CLOEXEC);
	for (int i = 0; i < 3; i++) {
		CHECK_INT(read(sem, &v, 8), 8);
		CHECK_INT((int)v, 1);
	}
	printf("eventfd counters: ok\n");
	CHECK_INT(read(tfd, &v, 8), 8);
	CHECK_INT((int)v, 1);
	CHECK_SYS(timerfd_gettime(tfd, &cur));
	CHECK_INT(cur.it_interval.tv_sec, 3600);
	CHECK_INT(cur.it_value.tv_sec > 3000 && cur.it_value.tv_sec <= 3600, 1);
	CHECK_SYS(timerfd_gettime(tfd_idle, &cur));
	CHECK_INT(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0, 1);
	CHECK_INT(read(tfd_idle, &v, 8), -1);
	CHECK_INT(errno, EAGAIN);
	printf("timerfds: ok\n");
	CHECK_INT(read(sfd, &si, sizeof(si)), (int)sizeof(si));
	CHECK_INT((int)si.ssi_signo, SIGUSR2);
	CHECK_SYS(raise(SIGWINCH));
	CHECK_INT(read(sfd, &si, sizeof(si)), (int)sizeof(si));
	CHECK_INT((int)si.ssi_signo, SIGWINCH);
	CHECK_INT(read(sfd, &si, sizeof(si)), -1);
	printf("signalfd: ok\n");
	return 0;
}
