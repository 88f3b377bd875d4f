/* An epoll instance comes back with its registrations (events, edge-triggered flag, user data) on the program's fds: a pipe, an eventfd, a nested epoll. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "cap.h"

int main(void)
{
	int p[2], ev, ep, inner;
	struct epoll_event e, got[8];
	uint64_t v = 1;

	CHECK_SYS(pipe(p));
	ev = eventfd(0, 0);
	CHECK_SYS(ev);
	ep = epoll_create1(EPOLL_CLOEXEC);
	inner = epoll_create1(0);
	CHECK_SYS(ep);
	CHECK_SYS(inner);
	e = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = 0x1234567890ULL };
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e));
	e = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 77 };
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e));
	e = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 99 };
	CHECK_SYS(epoll_ctl(inner, EPOLL_CTL_ADD, ev, &e));
	e = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 5 };
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, inner, &e));
	CHECK_INT(epoll_wait(ep, got, 8, 0), 0);
	printf("epoll with three fds\n");

	cap_sync();

	CHECK_INT(epoll_wait(ep, got, 8, 0), 0);
	CHECK_INT(write(p[1], "x", 1), 1);
	CHECK_INT(epoll_wait(ep, got, 8, 1000), 1);
	CHECK_INT(got[0].data.u64 == 0x1234567890ULL, 1);
	/* Edge-triggered: reported once for one write. */
	CHECK_INT(epoll_wait(ep, got, 8, 0), 0);
	printf("pipe, edge-triggered: ok\n");
	CHECK_INT(write(ev, &v, 8), 8);
	CHECK_INT(epoll_wait(ep, got, 8, 1000), 2);
	CHECK_INT((got[0].data.u64 == 77 && got[1].data.u64 == 5) ||
		  (got[0].data.u64 == 5 && got[1].data.u64 == 77), 1);
	CHECK_INT(epoll_wait(inner, got, 8, 0), 1);
	CHECK_INT((int)got[0].data.u64, 99);
	printf("eventfd and nested epoll: ok\n");
	/* The registrations are the program's: removing by its fd numbers works. */
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_DEL, ev, NULL));
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_DEL, inner, NULL));
	CHECK_INT(epoll_wait(ep, got, 8, 0), 0);
	printf("epoll_ctl DEL: ok\n");
	return 0;
}
