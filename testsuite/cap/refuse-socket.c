/* esky refuses to checkpoint a process with an open socket, says so on one line, writes no file, and the socket still works afterwards. */
#define _GNU_SOURCE
#include <sys/socket.h>

#include "cap.h"

int main(void)
{
	int sv[2];
	char buf[16];

	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	CHECK_INT(write(sv[0], "before", 6), 6);
	printf("socket open\n");

	cap_sync();

	CHECK_INT(read(sv[1], buf, sizeof(buf)), 6);
	CHECK_MEM(buf, "before", 6);
	CHECK_INT(write(sv[1], "after", 5), 5);
	CHECK_INT(read(sv[0], buf, sizeof(buf)), 5);
	CHECK_MEM(buf, "after", 5);
	printf("socket works\n");
	return 0;
}
