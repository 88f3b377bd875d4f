/* Unix sockets of the program come back: stream, datagram and seqpacket pairs with the data queued each way (message boundaries, a zero-length datagram, shutdown, a peer that is gone, the program's own SO_PEEK_OFF), a connection it accepted from its own listening socket (names kept), listening sockets at a relative path and at an abstract name that accept new clients, a bound datagram socket with a client connected to it, an unconnected socket. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cap.h"

/* A name unique to this run (tests run side by side): the pid, never printed. */
static socklen_t make_addr(struct sockaddr_un *a, int abstract, const char *what)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path + abstract, sizeof(a->sun_path) - 1, "cap-unixsockets-%d-%s",
		 (int)getpid(), what);
	if (!abstract)
		return (socklen_t)sizeof(*a);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a->sun_path + 1));
}

/* Receive one message (nonblocking), check its bytes. */
static void expect_msg(int fd, const void *want, size_t len, int line)
{
	char buf[8192];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 || (size_t)n != len || memcmp(buf, want, len))
		cap_fail(__FILE__, line, "fd %d: expected a message of %zu bytes, found %zd (%s)", fd,
			 len, n, n < 0 ? strerror(errno) : "other bytes");
}

static void expect_empty(int fd, int line)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	if (n != -1 || errno != EAGAIN)
		cap_fail(__FILE__, line, "fd %d: expected nothing queued, found %zd (%s)", fd, n,
			 n < 0 ? strerror(errno) : "data");
}

/* A new client connects to the listening socket at a, and is accepted. */
static void new_client(int lfd, int type, const struct sockaddr_un *a, socklen_t alen)
{
	int c = socket(AF_UNIX, type, 0), s;
	char buf[16];

	CHECK_SYS(c);
	CHECK_SYS(connect(c, (const struct sockaddr *)a, alen));
	s = accept(lfd, NULL, NULL);
	CHECK_SYS(s);
	CHECK_INT(send(c, "new", 3, 0), 3);
	CHECK_INT(recv(s, buf, sizeof(buf), 0), 3);
	CHECK_MEM(buf, "new", 3);
	close(c);
	close(s);
}

int main(void)
{
	int st[2], dg[2], sq[2], gone[2], lis, alis, cl, acc, dsrv, dcl, loose, v;
	struct sockaddr_un path, abs_a, dname, got;
	socklen_t plen = make_addr(&path, 0, "listen"), alen = make_addr(&abs_a, 1, "abstract");
	socklen_t dlen = make_addr(&dname, 1, "dgram"), glen;
	static char big[5000], bytes[3000];
	char buf[8192];

	cap_fill(big, sizeof(big), 5);
	cap_fill(bytes, sizeof(bytes), 3);
	unlink(path.sun_path);

	/* A stream pair: 3000 bytes one way in three writes, 4 the other; O_NONBLOCK on one end. */
	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, st));
	CHECK_INT(write(st[0], bytes, 1000), 1000);
	CHECK_INT(write(st[0], bytes + 1000, 1000), 1000);
	CHECK_INT(write(st[0], bytes + 2000, 1000), 1000);
	CHECK_INT(write(st[1], "pong", 4), 4);
	CHECK_SYS(fcntl(st[1], F_SETFL, O_NONBLOCK));
	v = 100000;
	CHECK_SYS(setsockopt(st[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)));

	/* A datagram pair: boundaries, a zero-length datagram, a large one; the program peeks. */
	CHECK_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg));
	CHECK_INT(send(dg[0], "one", 3, 0), 3);
	CHECK_INT(send(dg[0], "three!", 6, 0), 6);
	CHECK_INT(send(dg[0], "", 0, 0), 0);
	CHECK_INT(send(dg[0], big, sizeof(big), 0), (int)sizeof(big));
	CHECK_INT(send(dg[1], "x", 1, 0), 1);
	v = 0;
	CHECK_SYS(setsockopt(dg[1], SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v)));
	CHECK_INT(recv(dg[1], buf, sizeof(buf), MSG_PEEK), 3);

	/* A seqpacket pair, one end shut down for writing after its messages. */
	CHECK_SYS(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq));
	CHECK_INT(send(sq[0], "alpha", 5, 0), 5);
	CHECK_INT(send(sq[0], "", 0, 0), 0);
	CHECK_INT(send(sq[0], "gamma", 5, 0), 5);
	CHECK_INT(send(sq[1], "reply", 5, 0), 5);
	CHECK_SYS(shutdown(sq[0], SHUT_WR));

	/* A stream whose peer wrote and is gone. */
	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, gone));
	CHECK_INT(write(gone[1], "last words", 10), 10);
	CHECK_SYS(close(gone[1]));

	/* A listening socket at a relative path, one connection accepted from it. */
	lis = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_SYS(lis);
	CHECK_SYS(bind(lis, (struct sockaddr *)&path, plen));
	CHECK_SYS(listen(lis, 7));
	cl = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_SYS(cl);
	CHECK_SYS(connect(cl, (struct sockaddr *)&path, plen));
	acc = accept(lis, NULL, NULL);
	CHECK_SYS(acc);
	CHECK_INT(write(cl, "hello server", 12), 12);
	CHECK_INT(write(acc, "hello client", 12), 12);

	/* A seqpacket listening socket at an abstract name. */
	alis = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	CHECK_SYS(alis);
	CHECK_SYS(bind(alis, (struct sockaddr *)&abs_a, alen));
	CHECK_SYS(listen(alis, 3));

	/* A bound datagram socket, a client connected to it, datagrams queued. */
	dsrv = socket(AF_UNIX, SOCK_DGRAM, 0);
	dcl = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK_SYS(dsrv);
	CHECK_SYS(dcl);
	CHECK_SYS(bind(dsrv, (struct sockaddr *)&dname, dlen));
	CHECK_SYS(connect(dcl, (struct sockaddr *)&dname, dlen));
	CHECK_INT(send(dcl, "to server 1", 11, 0), 11);
	CHECK_INT(send(dcl, "to server 2", 11, 0), 11);

	/* Not connected, not bound. */
	loose = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_SYS(loose);
	printf("sockets set up\n");

	cap_sync();

	/* The stream pair. */
	CHECK_INT(read(st[1], buf, sizeof(buf)), 3000);
	CHECK_MEM(buf, bytes, 3000);
	expect_empty(st[1], __LINE__);
	CHECK_INT(fcntl(st[1], F_GETFL) & O_NONBLOCK, O_NONBLOCK);
	CHECK_INT(fcntl(st[0], F_GETFL) & O_NONBLOCK, 0);
	CHECK_INT(read(st[0], buf, sizeof(buf)), 4);
	CHECK_MEM(buf, "pong", 4);
	glen = sizeof(v);
	CHECK_SYS(getsockopt(st[0], SOL_SOCKET, SO_SNDBUF, &v, &glen));
	CHECK_INT(v, 200000);
	CHECK_INT(write(st[0], "more", 4), 4);
	CHECK_INT(read(st[1], buf, sizeof(buf)), 4);
	printf("stream pair: ok\n");

	/* The datagram pair: the program's peek offset first. */
	glen = sizeof(v);
	CHECK_SYS(getsockopt(dg[1], SOL_SOCKET, SO_PEEK_OFF, &v, &glen));
	CHECK_INT(v, 3);
	CHECK_INT(recv(dg[1], buf, sizeof(buf), MSG_PEEK), 6);
	CHECK_MEM(buf, "three!", 6);
	v = -1;
	CHECK_SYS(setsockopt(dg[1], SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v)));
	expect_msg(dg[1], "one", 3, __LINE__);
	expect_msg(dg[1], "three!", 6, __LINE__);
	expect_msg(dg[1], "", 0, __LINE__);
	expect_msg(dg[1], big, sizeof(big), __LINE__);
	expect_empty(dg[1], __LINE__);
	expect_msg(dg[0], "x", 1, __LINE__);
	expect_empty(dg[0], __LINE__);
	CHECK_INT(send(dg[1], "back", 4, 0), 4);
	expect_msg(dg[0], "back", 4, __LINE__);
	printf("datagram pair: ok\n");

	/* The seqpacket pair: messages, then end of file; the other way still open. */
	expect_msg(sq[1], "alpha", 5, __LINE__);
	expect_msg(sq[1], "", 0, __LINE__);
	expect_msg(sq[1], "gamma", 5, __LINE__);
	CHECK_INT(recv(sq[1], buf, sizeof(buf), MSG_DONTWAIT), 0);
	CHECK_INT(send(sq[0], "x", 1, MSG_NOSIGNAL), -1);
	CHECK_INT(errno, EPIPE);
	expect_msg(sq[0], "reply", 5, __LINE__);
	CHECK_INT(send(sq[1], "again", 5, 0), 5);
	expect_msg(sq[0], "again", 5, __LINE__);
	printf("seqpacket pair: ok\n");

	/* The peer that is gone: its words, then end of file; writing fails. */
	CHECK_INT(read(gone[0], buf, sizeof(buf)), 10);
	CHECK_MEM(buf, "last words", 10);
	CHECK_INT(read(gone[0], buf, sizeof(buf)), 0);
	CHECK_INT(send(gone[0], "x", 1, MSG_NOSIGNAL), -1);
	CHECK_INT(errno, EPIPE);
	printf("gone peer: ok\n");

	/* The accepted connection: data both ways, the names it showed. */
	CHECK_INT(read(acc, buf, sizeof(buf)), 12);
	CHECK_MEM(buf, "hello server", 12);
	CHECK_INT(read(cl, buf, sizeof(buf)), 12);
	CHECK_MEM(buf, "hello client", 12);
	glen = sizeof(got);
	CHECK_SYS(getpeername(cl, (struct sockaddr *)&got, &glen));
	CHECK_STR(got.sun_path, path.sun_path);
	glen = sizeof(got);
	CHECK_SYS(getsockname(acc, (struct sockaddr *)&got, &glen));
	CHECK_STR(got.sun_path, path.sun_path);
	CHECK_INT(write(acc, "bye", 3), 3);
	CHECK_INT(read(cl, buf, sizeof(buf)), 3);
	printf("accepted connection: ok\n");

	/* The listening sockets take new clients; the path one has its name as bound. */
	glen = sizeof(got);
	CHECK_SYS(getsockname(lis, (struct sockaddr *)&got, &glen));
	CHECK_STR(got.sun_path, path.sun_path);
	new_client(lis, SOCK_STREAM, &path, plen);
	new_client(alis, SOCK_SEQPACKET, &abs_a, alen);
	glen = sizeof(got);
	CHECK_SYS(getsockname(alis, (struct sockaddr *)&got, &glen));
	CHECK_INT(glen, alen);
	CHECK_MEM(got.sun_path, abs_a.sun_path, alen - offsetof(struct sockaddr_un, sun_path));
	printf("listening sockets: ok\n");

	/* The bound datagram socket and its client. */
	expect_msg(dsrv, "to server 1", 11, __LINE__);
	expect_msg(dsrv, "to server 2", 11, __LINE__);
	expect_empty(dsrv, __LINE__);
	CHECK_INT(send(dcl, "later", 5, 0), 5);
	expect_msg(dsrv, "later", 5, __LINE__);
	glen = sizeof(got);
	CHECK_SYS(getpeername(dcl, (struct sockaddr *)&got, &glen));
	CHECK_INT(glen, dlen);
	printf("bound datagram socket: ok\n");

	/* The loose one is a stream socket that can still connect. */
	glen = sizeof(v);
	CHECK_SYS(getsockopt(loose, SOL_SOCKET, SO_TYPE, &v, &glen));
	CHECK_INT(v, SOCK_STREAM);
	CHECK_SYS(connect(loose, (struct sockaddr *)&path, plen));
	acc = accept(lis, NULL, NULL);
	CHECK_SYS(acc);
	printf("unconnected socket: ok\n");

	CHECK_SYS(unlink(path.sun_path));
	return 0;
}
