/* esky refuses to checkpoint a process with a TCP socket (a connection to itself over loopback), says so on one line, writes no file, and the sockets still work afterwards. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <sys/socket.h>

#include "cap.h"

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int lis, c, s;
	char buf[16];

	lis = socket(AF_INET, SOCK_STREAM, 0);
	if (lis < 0 || bind(lis, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lis, 1) < 0)
		cap_skip("no TCP on loopback here: %s", strerror(errno));
	CHECK_SYS(getsockname(lis, (struct sockaddr *)&a, &alen));
	c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_SYS(c);
	CHECK_SYS(connect(c, (struct sockaddr *)&a, sizeof(a)));
	s = accept(lis, NULL, NULL);
	CHECK_SYS(s);
	CHECK_INT(write(c, "before", 6), 6);
	printf("socket open\n");

	cap_sync();

	CHECK_INT(read(s, buf, sizeof(buf)), 6);
	CHECK_MEM(buf, "before", 6);
	CHECK_INT(write(s, "after", 5), 5);
	CHECK_INT(read(c, buf, sizeof(buf)), 5);
	CHECK_MEM(buf, "after", 5);
	printf("socket works\n");
	return 0;
}
