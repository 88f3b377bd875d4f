/*
 * Unix sockets of one program: pairs with both ends in it (socketpair, or
 * a connection it made to its own listening socket and accepted), the
 * messages queued in each direction, shutdown state; listening sockets and
 * other bound ones, at their path or abstract name; sockets not connected.
 * A socket connected to another process, a pending connection, data with
 * file descriptors in flight, and every other family are refused.
 *
 * Freeze: pidfd_getfd (Linux 5.6, needs ptrace access: esky has it) gives
 * esky the program's socket itself; sock_diag (sockdiag.h) says its type,
 * state, name, peer and queue lengths. The queue is read with MSG_PEEK from
 * SO_PEEK_OFF 0 on, which leaves it to the program (its own SO_PEEK_OFF is
 * put back). What that shows, measured on 6.18 (doc/design.md):
 *   - STREAM: one peek returns every queued byte, up to a message that
 *     carries fds (SCM_RIGHTS: those fds land in esky, closed at once) or
 *     another writer's credentials; with SO_PEEK_OFF a loop walks on. At the
 *     end: EAGAIN, or 0 if the peer shut down or is gone.
 *   - DGRAM and SEQPACKET: each peek returns one datagram whole (MSG_TRUNC
 *     tells a longer one: peeked again from its start with a bigger buffer)
 *     and SO_PEEK_OFF moves past it: boundaries are kept. A zero-length
 *     datagram is returned once and marked: a later peek past it skips it
 *     (so a second checkpoint of the same process no longer sees it). At the
 *     end: EAGAIN; SEQPACKET after shutdown says 0 there, like a zero-length
 *     message: told apart by the byte count sock_diag gives (UDIAG_SHOW_RQLEN
 *     is the queue's total for SEQPACKET, the first datagram's for DGRAM).
 *
 * Thaw makes all the image's sockets together (esky_fd_unix_thaw_all):
 * listening and bound ones at their names first (a stale socket file from
 * the checkpointed run is replaced; anything else there refuses the
 * resume), a pair through the program's listening socket again when one
 * end has its name (so getsockname and getpeername show what they showed),
 * else with socketpair; a datagram socket connects to its peer's name;
 * then the queues are sent again from the peer's side (or a temporary
 * socket), then shutdown, SO_PEEK_OFF and the peers that were gone.
 */
#include "fdobj.h"
#include "log.h"
#include "proc.h"
#include "sockdiag.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Socket states as sock_diag shows them (the TCP names, include/net/tcp_states.h). */
#define ST_ESTABLISHED 1
#define ST_CLOSE 7
#define ST_LISTEN 10
/* sk_shutdown bits (include/net/sock.h). */
#define RCV_SHUTDOWN 1
#define SEND_SHUTDOWN 2
/* SCM_PIDFD (6.5): a peek may install a pidfd in esky too; not in 6.1's headers. */
#define ESKY_SCM_PIDFD 0x04
/* Most fds one SCM_RIGHTS message carries (SCM_MAX_FD). */
#define MAX_FDS_IN_FLIGHT 253

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

static const char *type_word(uint32_t img_type)
{
	switch (img_type) {
	case ESKY_IMG_UNIX_STREAM:
		return "stream";
	case ESKY_IMG_UNIX_DGRAM:
		return "datagram";
	case ESKY_IMG_UNIX_SEQPACKET:
		return "seqpacket";
	default:
		return "unknown";
	}
}

static uint32_t img_type(int sock_type)
{
	switch (sock_type) {
	case SOCK_STREAM:
		return ESKY_IMG_UNIX_STREAM;
	case SOCK_DGRAM:
		return ESKY_IMG_UNIX_DGRAM;
	case SOCK_SEQPACKET:
		return ESKY_IMG_UNIX_SEQPACKET;
	default:
		return 0;
	}
}

static int sock_type(uint32_t t)
{
	return t == ESKY_IMG_UNIX_STREAM ? SOCK_STREAM
	       : t == ESKY_IMG_UNIX_DGRAM ? SOCK_DGRAM
					   : SOCK_SEQPACKET;
}

/* A name for messages: the path, or @ and the abstract name (odd bytes as \xNN). */
static void name_str(const char *name, size_t len, char *buf, size_t n)
{
	size_t o = 0;

	if (!len) {
		snprintf(buf, n, "(no name)");
		return;
	}
	if (name[0]) {
		snprintf(buf, n, "%.*s", (int)strnlen(name, len), name);
		return;
	}
	buf[o++] = '@';
	for (size_t i = 1; i < len && o + 5 < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c >= 0x20 && c < 0x7f)
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
	}
	buf[o] = '\0';
}

/* Whether a socket is bound to its name at resume (not the name an accepted one inherits). */
static bool binds(const struct esky_img_fdobj *o, uint32_t name_len)
{
	bool connected = o->v[1] || (o->v[2] & ESKY_IMG_UNIXF_PEER_GONE);

	return name_len && (o->kind == ESKY_IMG_OBJ_UNIX_LISTEN || o->v[0] == ESKY_IMG_UNIX_DGRAM ||
			    !connected);
}

/* The kernel's dev_t (major << 20 | minor, as sock_diag gives it) against a stat's. */
static bool same_dev(uint32_t kdev, dev_t dev)
{
	return (kdev >> 20) == major(dev) && (kdev & 0xfffff) == minor(dev);
}

/* ---- freeze ---- */

/* A duplicate of the program's fd (the same open file), close-on-exec. */
static int grab_fd(pid_t pid, int fd, int *out)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), s, err;

	if (pidfd < 0)
		return -errno;
	s = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	err = errno;
	close(pidfd);
	if (s < 0)
		return -err;
	*out = s;
	return 0;
}

/* What a socket of another family is, for the refusal ("a TCP socket"). */
static void describe_other(int s, int family, char *buf, size_t n)
{
	int type = 0, proto = 0;
	socklen_t len = sizeof(type);

	getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len);
	len = sizeof(proto);
	getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &proto, &len);
	switch (family) {
	case AF_INET:
	case AF_INET6:
		snprintf(buf, n, "%s%s socket", family == AF_INET6 ? "an IPv6 " : "a ",
			 proto == IPPROTO_TCP   ? "TCP"
			 : proto == IPPROTO_UDP ? "UDP"
			 : type == SOCK_RAW     ? "raw IP"
						: "IP");
		break;
	case AF_NETLINK:
		snprintf(buf, n, "a netlink socket of protocol %d", proto);
		break;
	case AF_PACKET:
		snprintf(buf, n, "a packet socket");
		break;
	default:
		snprintf(buf, n, "a socket of address family %d", family);
	}
}

/* Close what a peek put in esky (SCM_RIGHTS, SCM_PIDFD); true if it carried fds. */
static bool close_passed_fds(struct msghdr *mh)
{
	bool fds = (mh->msg_flags & MSG_CTRUNC) != 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET ||
		    (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != ESKY_SCM_PIDFD))
			continue;
		for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			close(f);
		}
		fds |= c->cmsg_type == SCM_RIGHTS;
	}
	return fds;
}

/*
 * Append the messages queued to s to q (uint32_t length, bytes), peeked
 * from SO_PEEK_OFF 0 on (see the top of the file). The caller puts the
 * program's SO_PEEK_OFF back.
 */
static int peek_queue(int s, int fd, uint32_t type, const struct esky_unix_diag *d,
		      struct esky_buf *q, uint32_t *msg_n)
{
	size_t cap = 65536;
	char *buf = malloc(cap), *cbuf = malloc(CMSG_SPACE(MAX_FDS_IN_FLIGHT * sizeof(int)));
	uint64_t seen = 0, zeros = 0;
	int off = 0, ret = 0;

	if (!buf || !cbuf) {
		ret = -ENOMEM;
		goto out_free;
	}
	if (setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) < 0) {
		ret = esky_error(-errno, "fd %d: cannot read the data queued to its Unix socket "
				 "(SO_PEEK_OFF: %s)", fd, strerror(errno));
		goto out_free;
	}
	for (;;) {
		struct iovec iov = { buf, cap };
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cbuf,
			.msg_controllen = CMSG_SPACE(MAX_FDS_IN_FLIGHT * sizeof(int)),
		};
		ssize_t n = recvmsg(s, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
		uint32_t len32;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			ret = esky_error(-errno, "fd %d: cannot read the data queued to its Unix socket: "
					 "%s", fd, strerror(errno));
			goto out_free;
		}
		if (close_passed_fds(&mh)) {
			ret = esky_error(-EOPNOTSUPP, "fd %d is a Unix %s socket with file descriptors "
					 "in flight (SCM_RIGHTS) among the data queued to it: esky "
					 "cannot save it", fd, type_word(type));
			goto out_free;
		}
		/* 0 at the end of a stream after shutdown; a SEQPACKET's end looks the same. */
		if (!n && (type == ESKY_IMG_UNIX_STREAM ||
			   (type == ESKY_IMG_UNIX_SEQPACKET && (d->shutdown & RCV_SHUTDOWN) &&
			    seen >= d->rqueue)))
			break;
		if ((size_t)n > cap) {
			/* A longer datagram (MSG_TRUNC): again from its start, whole. */
			char *nb = realloc(buf, (size_t)n);

			off = (int)seen;
			if (!nb) {
				ret = -ENOMEM;
				goto out_free;
			}
			buf = nb;
			cap = (size_t)n;
			if (setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) < 0) {
				ret = esky_error(-errno, "fd %d: cannot read the data queued to its Unix "
						 "socket (SO_PEEK_OFF: %s)", fd, strerror(errno));
				goto out_free;
			}
			continue;
		}
		/* Each zero-length datagram is shown once: this only guards against a kernel that loops. */
		if (!n && ++zeros > (1u << 20)) {
			ret = esky_error(-EIO, "fd %d: the data queued to its Unix socket does not end",
					 fd);
			goto out_free;
		}
		len32 = (uint32_t)n;
		seen += (uint64_t)n;
		ret = esky_buf_append(q, &len32, sizeof(len32));
		if (!ret)
			ret = esky_buf_append(q, buf, (size_t)n);
		if (ret)
			goto out_free;
		(*msg_n)++;
	}
out_free:
	free(cbuf);
	free(buf);
	return ret;
}

/*
 * A path name's file, for binding it again: the absolute path (relative
 * names are the program's cwd's), which must still be this socket's file.
 */
static int find_file(pid_t pid, int fd, const struct esky_unix_diag *d, char **abs, mode_t *mode)
{
	char *cwd = NULL, shown[SUN_PATH_MAX + 8];
	const char *name = d->name;
	struct stat st;
	int ret = 0;

	if (name[0] == '/') {
		*abs = strndup(name, d->name_len);
	} else {
		ret = esky_proc_readlink(pid, "cwd", &cwd);
		if (ret)
			return esky_error(ret, "pid %d: cannot read its current directory: %s", pid,
					  strerror(-ret));
		if (asprintf(abs, "%s/%.*s", cwd, (int)strnlen(name, d->name_len), name) < 0)
			*abs = NULL;
		free(cwd);
	}
	if (!*abs)
		return -ENOMEM;
	if (lstat(*abs, &st) < 0 || !S_ISSOCK(st.st_mode) || !d->has_vfs ||
	    st.st_ino != d->vfs_ino || !same_dev(d->vfs_dev, st.st_dev)) {
		name_str(d->name, d->name_len, shown, sizeof(shown));
		ret = esky_error(-EOPNOTSUPP, "fd %d is a Unix socket bound to %s, whose file is gone "
				 "or is another one now (%s): esky cannot save it", fd, shown,
				 name[0] == '/' ? "removed or replaced"
						: "removed, replaced, or the program changed directory");
		free(*abs);
		*abs = NULL;
		return ret;
	}
	*mode = st.st_mode & 07777;
	return 0;
}

int esky_fd_unix_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out)
{
	unsigned long long ino = (unsigned long long)src->st->st_ino;
	struct esky_img_unix h;
	struct esky_unix_diag d;
	struct esky_buf q = { 0 };
	struct timeval tv;
	char what[64], shown[SUN_PATH_MAX + 8];
	int s = -1, family = 0, v, ret;
	int32_t peek_off = -1;
	socklen_t len;
	uint32_t type;
	mode_t mode = 0;

	memset(&h, 0, sizeof(h));
	ret = grab_fd(src->pid, src->fd, &s);
	if (ret)
		return esky_error(ret, "fd %d is a socket (socket:[%llu]) that esky cannot look into "
				  "(pidfd_getfd: %s): esky cannot save it", src->fd, ino,
				  strerror(-ret));
	len = sizeof(family);
	if (getsockopt(s, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0 || family != AF_UNIX) {
		describe_other(s, family, what, sizeof(what));
		ret = esky_error(-EOPNOTSUPP, "fd %d is %s (socket:[%llu]): esky cannot save it",
				 src->fd, what, ino);
		goto out_close;
	}
	ret = esky_sockdiag_unix((uint32_t)ino, &d);
	if (ret) {
		ret = esky_error(ret, "fd %d is a Unix socket (socket:[%llu]) that sock_diag does not "
				 "show (%s; is the unix_diag module loaded?): esky cannot save it",
				 src->fd, ino, strerror(-ret));
		goto out_close;
	}
	type = img_type(d.type);
	name_str(d.name, d.name_len, shown, sizeof(shown));
	if (!type) {
		ret = esky_error(-EOPNOTSUPP, "fd %d is a Unix socket of type %u (socket:[%llu]): "
				 "esky cannot save it", src->fd, d.type, ino);
		goto out_close;
	}
	out->o.kind = d.state == ST_LISTEN ? ESKY_IMG_OBJ_UNIX_LISTEN : ESKY_IMG_OBJ_UNIX;
	out->o.v[0] = type;
	out->o.v[2] = ((d.shutdown & RCV_SHUTDOWN) ? ESKY_IMG_UNIXF_SHUT_RD : 0) |
		      ((d.shutdown & SEND_SHUTDOWN) ? ESKY_IMG_UNIXF_SHUT_WR : 0);
	switch (d.state) {
	case ST_LISTEN:
		if (d.rqueue || d.icons_n) {
			uint32_t k = d.rqueue > d.icons_n ? d.rqueue : d.icons_n;

			ret = esky_error(-EOPNOTSUPP, "fd %d is a Unix %s socket listening at %s with %u "
					 "connection%s not accepted yet: esky cannot save it (accept "
					 "%s first)", src->fd, type_word(type), shown, k,
					 k == 1 ? "" : "s", k == 1 ? "it" : "them");
			goto out_close;
		}
		out->o.v[1] = d.wqueue;
		break;
	case ST_ESTABLISHED:
		/*
		 * Since 5.15 a datagram socket that another connected to is
		 * ESTABLISHED too, with no peer of its own; one whose peer is
		 * gone still points at it (sock_diag shows peer 0).
		 */
		if (d.has_peer && d.peer) {
			out->o.v[1] = d.peer;
		} else if (type == ESKY_IMG_UNIX_DGRAM) {
			if (d.has_peer)
				out->o.v[2] |= ESKY_IMG_UNIXF_PEER_GONE;
		} else if ((d.shutdown & (RCV_SHUTDOWN | SEND_SHUTDOWN)) ==
			   (RCV_SHUTDOWN | SEND_SHUTDOWN)) {
			/* A gone stream peer shut us down both ways. */
			out->o.v[2] |= ESKY_IMG_UNIXF_PEER_GONE;
		} else {
			ret = esky_error(-EOPNOTSUPP, "fd %d is a Unix %s socket connected to a listening "
					 "socket that has not accepted it yet (socket:[%llu]): esky "
					 "cannot save it", src->fd, type_word(type), ino);
			goto out_close;
		}
		break;
	case ST_CLOSE:
		break;
	default:
		ret = esky_error(-EOPNOTSUPP, "fd %d is a Unix %s socket in state %u (socket:[%llu]): "
				 "esky cannot save it", src->fd, type_word(type), d.state, ino);
		goto out_close;
	}
	if (d.name_len && d.name[0] && binds(&out->o, (uint32_t)d.name_len)) {
		ret = find_file(src->pid, src->fd, &d, &out->name, &mode);
		if (ret)
			goto out_close;
		out->o.v[3] = mode;
	}

	len = sizeof(v);
	if (!getsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, &len))
		h.sndbuf = (uint32_t)v;
	len = sizeof(v);
	if (!getsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, &len))
		h.rcvbuf = (uint32_t)v;
	len = sizeof(v);
	if (!getsockopt(s, SOL_SOCKET, SO_PASSCRED, &v, &len) && v)
		out->o.v[2] |= ESKY_IMG_UNIXF_PASSCRED;
	len = sizeof(tv);
	if (!getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len))
		h.rcvtimeo_us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	len = sizeof(tv);
	if (!getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, &len))
		h.sndtimeo_us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	len = sizeof(peek_off);
	if (getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &peek_off, &len) < 0)
		peek_off = -1;
	h.peek_off = peek_off;
	h.name_len = (uint32_t)d.name_len;

	if (type == ESKY_IMG_UNIX_STREAM && out->o.kind == ESKY_IMG_OBJ_UNIX) {
		char c;

		/* An out-of-band byte (MSG_OOB, 5.15) is not in what a peek walks through. */
		if (recv(s, &c, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) >= 0) {
			ret = esky_error(-EOPNOTSUPP, "fd %d is a Unix stream socket with out-of-band data "
					 "queued to it (MSG_OOB): esky cannot save it", src->fd);
			goto out_close;
		}
	}
	ret = esky_buf_append(&q, &h, sizeof(h));
	if (!ret)
		ret = esky_buf_append(&q, d.name, d.name_len);
	/* (A stream or seqpacket socket not connected has no queue: recv says EINVAL.) */
	if (!ret && out->o.kind == ESKY_IMG_OBJ_UNIX &&
	    (type == ESKY_IMG_UNIX_DGRAM || d.state == ST_ESTABLISHED)) {
		uint32_t msg_n = 0;
		int err;

		ret = peek_queue(s, src->fd, type, &d, &q, &msg_n);
		/* The program's own peek offset, as it was (peeking moved it). */
		err = setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off)) < 0 ? -errno
											    : 0;
		if (!ret && err)
			ret = esky_error(err, "fd %d: cannot set its Unix socket's SO_PEEK_OFF back: %s",
					 src->fd, strerror(-err));
		memcpy(q.data + offsetof(struct esky_img_unix, msg_n), &msg_n, sizeof(msg_n));
		/* Nothing can send to a datagram socket without a name or a peer. */
		if (!ret && msg_n && type == ESKY_IMG_UNIX_DGRAM && !d.name_len && !d.has_peer)
			ret = esky_error(-EOPNOTSUPP, "fd %d is a Unix datagram socket with neither name "
					 "nor peer but data queued to it: esky cannot save it",
					 src->fd);
	}
	if (ret)
		goto out_close;
	out->data = q.data;
	out->data_len = q.len;
	q.data = NULL;
out_close:
	esky_buf_free(&q);
	if (ret) {
		free(out->name);
		out->name = NULL;
	}
	close(s);
	return ret;
}

/* The header of a frozen or saved socket's bytes, or NULL if they are too short. */
static bool read_head(const void *data, uint64_t len, struct esky_img_unix *h)
{
	if (!data || len < sizeof(*h))
		return false;
	memcpy(h, data, sizeof(*h));
	return h->name_len <= SUN_PATH_MAX && h->name_len <= len - sizeof(*h);
}

int esky_fd_unix_check_peer(const struct esky_fdobj_frozen *fz, int fd,
			    const struct esky_fdobj_frozen *peer)
{
	const char *type = type_word((uint32_t)fz->o.v[0]);
	struct esky_img_unix ph;

	if (fz->o.kind != ESKY_IMG_OBJ_UNIX || !fz->o.v[1])
		return 0;
	if (!peer || peer->o.kind != ESKY_IMG_OBJ_UNIX)
		return esky_error(-EOPNOTSUPP, "fd %d is a Unix %s socket connected to another process "
				  "(peer socket:[%llu]): esky cannot save it", fd, type,
				  (unsigned long long)fz->o.v[1]);
	/* Connected one way (or to itself): the resume connects it to the peer's name. */
	if ((peer->o.v[1] != fz->o.id || peer == fz) &&
	    (!read_head(peer->data, peer->data_len, &ph) || !ph.name_len))
		return esky_error(-EOPNOTSUPP, "fd %d is a Unix %s socket connected to socket:[%llu], "
				  "which has no name and is connected elsewhere: esky cannot save it",
				  fd, type, (unsigned long long)fz->o.v[1]);
	return 0;
}

/* ---- thaw ---- */

/* One socket of the image while it is made. */
struct usock {
	const struct esky_fdobj_in *in;
	size_t idx;                /* in the image's objects: its fd is fds[2 * idx] */
	struct esky_img_unix h;
	const char *name;          /* h.name_len bytes */
	const uint8_t *msgs;       /* h.msg_n messages */
	size_t msgs_len;
	uint32_t type;
	long peer;                 /* index in the usock array, or -1 */
	int temp;                  /* the other end of a pair whose peer is gone, or -1 */
	bool made;
};

static bool mutual(const struct usock *u, size_t n, size_t i)
{
	return u[i].peer >= 0 && (size_t)u[i].peer != i && (size_t)u[i].peer < n &&
	       u[u[i].peer].peer == (long)i;
}

/* For messages (thaw does not know the fd's number): kind, type and name ("at NAME" if named). */
static const char *desc_as(const struct usock *u, bool named, char *buf, size_t n)
{
	char shown[SUN_PATH_MAX + 8];

	name_str(u->name, u->h.name_len, shown, sizeof(shown));
	if (u->h.name_len && !named)
		snprintf(buf, n, "the program's %sUnix %s socket",
			 u->in->o->kind == ESKY_IMG_OBJ_UNIX_LISTEN ? "listening " : "",
			 type_word(u->type));
	else if (u->h.name_len)
		snprintf(buf, n, "the program's %sUnix %s socket at %s",
			 u->in->o->kind == ESKY_IMG_OBJ_UNIX_LISTEN ? "listening " : "",
			 type_word(u->type), shown);
	else
		snprintf(buf, n, "the program's Unix %s socket socket:[%llu]", type_word(u->type),
			 (unsigned long long)u->in->o->id);
	return buf;
}

static const char *desc(const struct usock *u, char *buf, size_t n)
{
	return desc_as(u, true, buf, n);
}

/* The address to bind or connect to: an abstract name, or the absolute path. */
static socklen_t address(const struct usock *u, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (u->h.name_len && !u->name[0]) {
		memcpy(a->sun_path, u->name, u->h.name_len);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + u->h.name_len);
	}
	snprintf(a->sun_path, sizeof(a->sun_path), "%s", u->in->name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

struct live_find {
	bool abstract;
	const char *name;       /* abstract: the name's bytes */
	size_t name_len;
	struct stat st;         /* path: the file */
	uint32_t found;
};

static int find_live(const struct esky_unix_diag *d, void *arg)
{
	struct live_find *f = arg;

	if (f->abstract ? d->name_len == f->name_len && !memcmp(d->name, f->name, d->name_len)
			: d->has_vfs && d->vfs_ino == f->st.st_ino && same_dev(d->vfs_dev, f->st.st_dev)) {
		f->found = d->ino;
		return 1;
	}
	return 0;
}

/*
 * The socket's name must be free for it: nothing at the path but a stale
 * socket file (remove: removed then), no live socket bound there. what
 * names the socket without its name.
 */
static int name_free(const char *name, size_t name_len, const char *path, const char *what,
		     bool remove)
{
	struct live_find f = { .abstract = !name[0], .name = name, .name_len = name_len };
	char shown[SUN_PATH_MAX + 8];
	int ret;

	name_str(name, name_len, shown, sizeof(shown));
	if (!f.abstract && lstat(path, &f.st) < 0) {
		if (errno == ENOENT)
			return 0;
		return esky_error(-errno, "%s, for %s: %s", path, what, strerror(errno));
	}
	if (!f.abstract && !S_ISSOCK(f.st.st_mode))
		return esky_error(-EEXIST, "%s is in the way of %s (it is %s, not a socket): move it "
				  "away to resume", path, what,
				  S_ISDIR(f.st.st_mode)	  ? "a directory"
				  : S_ISREG(f.st.st_mode) ? "a regular file"
							  : "not a socket file");
	ret = esky_sockdiag_unix_each(find_live, &f);
	if (ret < 0)
		return esky_error(ret, "%s: cannot list the live Unix sockets (sock_diag: %s)", what,
				  strerror(-ret));
	if (f.found)
		return esky_error(-EADDRINUSE, "%s is the name of a live socket (socket:[%u]; does the "
				  "checkpointed program still run?): %s cannot be bound there again",
				  shown, f.found, what);
	if (!f.abstract && remove && unlink(path) < 0 && errno != ENOENT)
		return esky_error(-errno, "%s, a stale socket file in the way of %s: cannot remove "
				  "it: %s", path, what, strerror(errno));
	return 0;
}

/*
 * bind(2) at the name as the program had it. A relative name is bound
 * from its directory (a forked child's cwd: the kernel keeps the name as
 * given, and getsockname must show the same).
 */
static int bind_name(const struct usock *u, int fd)
{
	struct sockaddr_un a;
	socklen_t alen = address(u, &a);
	char what[SUN_PATH_MAX + 80];
	int ret;

	ret = name_free(u->name, u->h.name_len, u->in->name, desc_as(u, false, what, sizeof(what)),
			true);
	if (ret)
		return ret;
	desc(u, what, sizeof(what));
	if (u->name[0] && u->name[0] != '/') {
		size_t plen = strlen(u->in->name), rlen = strnlen(u->name, u->h.name_len);
		char *dir = strndup(u->in->name, plen - rlen - 1);
		int status = 0;
		pid_t child;

		if (!dir)
			return -ENOMEM;
		memset(a.sun_path, 0, sizeof(a.sun_path));
		memcpy(a.sun_path, u->name, rlen);
		alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + rlen + 1);
		child = fork();
		if (child == 0)
			_exit(chdir(dir) < 0 ? 200 : bind(fd, (struct sockaddr *)&a, alen) < 0 ? errno : 0);
		free(dir);
		if (child < 0 || waitpid(child, &status, 0) != child)
			return esky_error(-errno, "%s: cannot bind it: %s", what, strerror(errno));
		if (!WIFEXITED(status) || WEXITSTATUS(status) == 200)
			return esky_error(-ENOENT, "%s: cannot enter the directory it was bound from",
					  what);
		if (WEXITSTATUS(status))
			return esky_error(-WEXITSTATUS(status), "%s: cannot bind it: %s", what,
					  strerror(WEXITSTATUS(status)));
	} else if (bind(fd, (struct sockaddr *)&a, alen) < 0) {
		return esky_error(-errno, "%s: cannot bind it: %s", what, strerror(errno));
	}
	/* bind(2) made the file with esky's umask; the program's had its own mode. */
	if (u->name[0] && chmod(u->in->name, (mode_t)u->in->o->v[3]) < 0)
		return esky_error(-errno, "%s: cannot set its file's mode: %s", what, strerror(errno));
	return 0;
}

/* The listening socket whose name u has (u was accepted from it), or -1. */
static long listener_of(const struct usock *u, size_t n, size_t i)
{
	for (size_t k = 0; k < n && u[i].h.name_len; k++)
		if (u[k].in->o->kind == ESKY_IMG_OBJ_UNIX_LISTEN && u[k].type == u[i].type &&
		    u[k].h.name_len == u[i].h.name_len &&
		    !memcmp(u[k].name, u[i].name, u[i].h.name_len))
			return (long)k;
	return -1;
}

/*
 * Whether i is an end of a connection to be made through a listening
 * socket: i, or its peer, was accepted from it (has its name).
 */
static bool through_listener(const struct usock *u, size_t n, size_t i)
{
	if (u[i].type == ESKY_IMG_UNIX_DGRAM)
		return false;
	if (u[i].in->o->v[2] & ESKY_IMG_UNIXF_PEER_GONE)
		return listener_of(u, n, i) >= 0;
	return mutual(u, n, i) &&
	       (listener_of(u, n, i) >= 0 || listener_of(u, n, (size_t)u[i].peer) >= 0);
}

static uint32_t fd_ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) < 0 ? 0 : (uint32_t)st.st_ino;
}

/*
 * A connection through the listening socket l: *client connects, the
 * accepted socket goes to *server. 0 or -errno with esky_error().
 */
static int connect_through(const struct usock *u, size_t l, int lfd, int *client, int *server,
			   const struct usock *for_whom)
{
	struct sockaddr_un a;
	socklen_t alen = address(&u[l], &a);
	struct esky_unix_diag d;
	char what[SUN_PATH_MAX + 80];
	int c, s;

	desc(for_whom, what, sizeof(what));
	c = socket(AF_UNIX, sock_type(u[l].type) | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, alen) < 0) {
		int err = errno;

		if (c >= 0)
			close(c);
		return esky_error(-err, "%s: cannot connect to the listening socket again: %s", what,
				  strerror(err));
	}
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	/* Someone else may connect to that name meanwhile: the accepted one must be ours. */
	if (s < 0 || esky_sockdiag_unix(fd_ino(s), &d) || d.peer != fd_ino(c)) {
		int err = s < 0 ? errno : EAGAIN;

		if (s >= 0)
			close(s);
		close(c);
		return esky_error(-err, "%s: cannot accept its connection again: %s", what,
				  s < 0 ? strerror(err) : "another process connected meanwhile");
	}
	*client = c;
	*server = s;
	return 0;
}

static int set_int(int fd, int opt, int v)
{
	return setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v)) < 0 ? -errno : 0;
}

/* SO_SNDBUF/SO_RCVBUF as getsockopt showed them (it shows twice what setsockopt took). */
static int set_buf(int fd, int opt, int force_opt, uint32_t shown)
{
	int cur = 0;
	socklen_t len = sizeof(cur);

	if (!shown || (getsockopt(fd, SOL_SOCKET, opt, &cur, &len) == 0 && (uint32_t)cur == shown))
		return 0;
	/* Above net.core.[wr]mem_max only with CAP_NET_ADMIN; else as much as allowed. */
	if (set_int(fd, force_opt, (int)(shown / 2)) == 0)
		return 0;
	return set_int(fd, opt, (int)(shown / 2));
}

/* Send the messages queued to u again, from `from` (connected to u, or not: to). */
static int refill(const struct usock *u, int from, const struct sockaddr_un *to, socklen_t tolen)
{
	const uint8_t *p = u->msgs;
	char what[SUN_PATH_MAX + 80];

	for (uint32_t m = 0; m < u->h.msg_n; m++) {
		uint32_t len;
		size_t done = 0;

		memcpy(&len, p, sizeof(len));
		p += sizeof(len);
		/* A stream's bytes may go in several pieces; a message goes whole. */
		do {
			ssize_t w = sendto(from, p + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL,
					   (const struct sockaddr *)to, to ? tolen : 0);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 || (u->type != ESKY_IMG_UNIX_STREAM && (size_t)w != len)) {
				int err = w < 0 ? errno : EMSGSIZE;

				return esky_error(-err, "%s: cannot queue its %u message%s again: %s",
						  desc(u, what, sizeof(what)), u->h.msg_n,
						  u->h.msg_n == 1 ? "" : "s",
						  err == EAGAIN ? "no room (send buffer or "
								  "net.unix.max_dgram_qlen)"
								: strerror(err));
			}
			done += (size_t)w;
		} while (done < len);
		p += len;
	}
	return 0;
}

/* Parse the image's Unix sockets into u (the reader has checked their bytes). */
static int collect(const struct esky_fdobj_in *objs, size_t n, struct usock **out, size_t *un)
{
	struct usock *u = calloc(n ? n : 1, sizeof(*u));
	size_t k = 0;

	if (!u)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct esky_img_fdobj *o = objs[i].o;

		if (o->kind != ESKY_IMG_OBJ_UNIX && o->kind != ESKY_IMG_OBJ_UNIX_LISTEN)
			continue;
		u[k].in = &objs[i];
		u[k].idx = i;
		u[k].type = (uint32_t)o->v[0];
		u[k].peer = -1;
		u[k].temp = -1;
		if (!read_head(objs[i].data, o->data_len, &u[k].h)) {
			free(u);
			return esky_error(-EBADMSG, "a Unix socket record is damaged");
		}
		u[k].name = (const char *)objs[i].data + sizeof(struct esky_img_unix);
		u[k].msgs = (const uint8_t *)u[k].name + u[k].h.name_len;
		u[k].msgs_len = o->data_len - sizeof(struct esky_img_unix) - u[k].h.name_len;
		k++;
	}
	for (size_t i = 0; i < k; i++) {
		uint64_t peer = u[i].in->o->kind == ESKY_IMG_OBJ_UNIX ? u[i].in->o->v[1] : 0;

		for (size_t j = 0; j < k && peer; j++)
			if (u[j].in->o->kind == ESKY_IMG_OBJ_UNIX && u[j].in->o->id == peer)
				u[i].peer = (long)j;
		if (peer && u[i].peer < 0) {
			free(u);
			return esky_error(-EBADMSG, "a Unix socket's peer has no record");
		}
	}
	*out = u;
	*un = k;
	return 0;
}

int esky_fd_unix_thaw_all(const struct esky_fdobj_in *objs, size_t n, int *fds)
{
	struct usock *u = NULL;
	char what[SUN_PATH_MAX + 80];
	size_t un = 0;
	int ret, temp_sender = -1;

#define FD(i) fds[2 * u[i].idx]
	ret = collect(objs, n, &u, &un);
	if (ret || !un)
		goto out_free;

	/* 1. The sockets, pairs made together; listening and bound ones at their names. */
	for (size_t i = 0; i < un && !ret; i++) {
		const struct esky_img_fdobj *o = u[i].in->o;
		int st = sock_type(u[i].type) | SOCK_CLOEXEC, pair[2];

		if (u[i].made)
			continue;
		desc(&u[i], what, sizeof(what));
		if (through_listener(u, un, i))
			continue;       /* in 2 */
		if (mutual(u, un, i) || (o->v[2] & ESKY_IMG_UNIXF_PEER_GONE)) {
			if (socketpair(AF_UNIX, st, 0, pair) < 0) {
				ret = esky_error(-errno, "%s: cannot make a socket pair: %s", what,
						 strerror(errno));
				break;
			}
			FD(i) = pair[0];
			if (mutual(u, un, i)) {
				FD(u[i].peer) = pair[1];
				u[u[i].peer].made = true;
			} else {
				u[i].temp = pair[1];
			}
		} else {
			FD(i) = socket(AF_UNIX, st, 0);
			if (FD(i) < 0) {
				ret = esky_error(-errno, "%s: cannot make a socket: %s", what, strerror(errno));
				break;
			}
		}
		u[i].made = true;
	}
	for (size_t i = 0; i < un && !ret; i++) {
		const struct esky_img_fdobj *o = u[i].in->o;

		if (!u[i].made || !binds(o, u[i].h.name_len))
			continue;
		ret = bind_name(&u[i], FD(i));
		if (!ret && o->kind == ESKY_IMG_OBJ_UNIX_LISTEN &&
		    listen(FD(i), (int)(o->v[1] > INT32_MAX ? INT32_MAX : o->v[1])) < 0)
			ret = esky_error(-errno, "%s: cannot listen: %s", desc(&u[i], what, sizeof(what)),
					 strerror(errno));
	}

	/*
	 * 2. A pair with an end accepted from a listening socket of the
	 * program: connected through it again, so that the accepted end has
	 * its name (getsockname) and the other end sees it (getpeername).
	 */
	for (size_t i = 0; i < un && !ret; i++) {
		long l = listener_of(u, un, i), c = u[i].peer;
		bool gone = u[i].in->o->v[2] & ESKY_IMG_UNIXF_PEER_GONE;

		/* i is the accepted end (it has the name); its peer, or a stand-in, connects. */
		if (u[i].made || l < 0)
			continue;
		ret = connect_through(u, (size_t)l, FD(l), gone ? &u[i].temp : &FD(c), &FD(i), &u[i]);
		u[i].made = !ret;
		if (!gone)
			u[c].made = !ret;
	}
	for (size_t i = 0; i < un && !ret; i++) {
		if (!u[i].made) {
			ret = esky_error(-EBADMSG, "%s: its connection cannot be made again",
					 desc(&u[i], what, sizeof(what)));
		}
	}

	/* 3. A datagram socket connected one way (to a bound socket, to itself). */
	for (size_t i = 0; i < un && !ret; i++) {
		struct sockaddr_un a;
		socklen_t alen;
		long p = u[i].peer;

		if (u[i].type != ESKY_IMG_UNIX_DGRAM || p < 0 || mutual(u, un, i))
			continue;
		alen = address(&u[p], &a);
		if (connect(FD(i), (struct sockaddr *)&a, alen) < 0)
			ret = esky_error(-errno, "%s: cannot connect it again: %s",
					 desc(&u[i], what, sizeof(what)), strerror(errno));
	}

	/* 4. Buffers and credentials, then the queues, sent again from the peer's side. */
	for (size_t i = 0; i < un && !ret; i++) {
		set_buf(FD(i), SO_SNDBUF, SO_SNDBUFFORCE, u[i].h.sndbuf);
		set_buf(FD(i), SO_RCVBUF, SO_RCVBUFFORCE, u[i].h.rcvbuf);
		if (u[i].temp >= 0)
			set_buf(u[i].temp, SO_SNDBUF, SO_SNDBUFFORCE, UINT32_MAX & ~1u);
		if (u[i].in->o->v[2] & ESKY_IMG_UNIXF_PASSCRED)
			set_int(FD(i), SO_PASSCRED, 1);
	}
	for (size_t i = 0; i < un && !ret; i++) {
		long p = u[i].peer;

		if (!u[i].h.msg_n)
			continue;
		if (u[i].temp >= 0) {
			ret = refill(&u[i], u[i].temp, NULL, 0);
		} else if (p >= 0 && u[p].peer == (long)i) {
			/* Its peer (or itself) is connected to it. */
			ret = refill(&u[i], FD(p), NULL, 0);
		} else if (u[i].type == ESKY_IMG_UNIX_DGRAM && u[i].h.name_len && p >= 0) {
			struct sockaddr_un a;
			socklen_t alen = address(&u[i], &a);

			/* Connected to a peer connected elsewhere: only that peer may send to it. */
			ret = refill(&u[i], FD(p), &a, alen);
		} else if (u[i].type == ESKY_IMG_UNIX_DGRAM && u[i].h.name_len) {
			struct sockaddr_un a;
			socklen_t alen = address(&u[i], &a);

			/* Datagrams from anyone: from a socket of esky's, with its own send buffer. */
			if (temp_sender >= 0)
				close(temp_sender);
			temp_sender = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (temp_sender < 0) {
				ret = esky_error(-errno, "cannot make a socket: %s", strerror(errno));
				break;
			}
			set_buf(temp_sender, SO_SNDBUF, SO_SNDBUFFORCE, UINT32_MAX & ~1u);
			ret = refill(&u[i], temp_sender, &a, alen);
		} else {
			ret = esky_error(-EBADMSG, "%s: data queued to it with no way to send it again",
					 desc(&u[i], what, sizeof(what)));
		}
	}

	/* 5. What the program set, shutdown state, and the peers that were gone. */
	for (size_t i = 0; i < un && !ret; i++) {
		uint64_t f = u[i].in->o->v[2];
		int how = (f & ESKY_IMG_UNIXF_SHUT_RD) && (f & ESKY_IMG_UNIXF_SHUT_WR) ? SHUT_RDWR
			  : (f & ESKY_IMG_UNIXF_SHUT_RD)				 ? SHUT_RD
											 : SHUT_WR;
		struct timeval tv;

		desc(&u[i], what, sizeof(what));
		if (u[i].h.peek_off >= 0 && set_int(FD(i), SO_PEEK_OFF, u[i].h.peek_off))
			ret = esky_error(-errno, "%s: cannot set SO_PEEK_OFF: %s", what, strerror(errno));
		tv.tv_sec = (time_t)(u[i].h.rcvtimeo_us / 1000000u);
		tv.tv_usec = (suseconds_t)(u[i].h.rcvtimeo_us % 1000000u);
		if (!ret && u[i].h.rcvtimeo_us &&
		    setsockopt(FD(i), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
			ret = esky_error(-errno, "%s: cannot set SO_RCVTIMEO: %s", what, strerror(errno));
		tv.tv_sec = (time_t)(u[i].h.sndtimeo_us / 1000000u);
		tv.tv_usec = (suseconds_t)(u[i].h.sndtimeo_us % 1000000u);
		if (!ret && u[i].h.sndtimeo_us &&
		    setsockopt(FD(i), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
			ret = esky_error(-errno, "%s: cannot set SO_SNDTIMEO: %s", what, strerror(errno));
		/*
		 * A stream or seqpacket pair's shutdown reaches the peer too (the
		 * same bits again are no change); a datagram socket's stays its own.
		 */
		if (!ret && (f & (ESKY_IMG_UNIXF_SHUT_RD | ESKY_IMG_UNIXF_SHUT_WR)) &&
		    shutdown(FD(i), how) < 0)
			ret = esky_error(-errno, "%s: cannot shut it down again: %s", what,
					 strerror(errno));
	}
	if (ret)
		esky_fd_unix_thaw_undo(objs, n, fds);
out_free:
	for (size_t i = 0; i < un; i++)
		if (u[i].temp >= 0)
			close(u[i].temp);
	if (temp_sender >= 0)
		close(temp_sender);
	free(u);
	return ret;
#undef FD
}

void esky_fd_unix_thaw_undo(const struct esky_fdobj_in *objs, size_t n, const int *fds)
{
	for (size_t i = 0; i < n; i++) {
		const struct esky_img_fdobj *o = objs[i].o;
		struct esky_unix_diag d;
		struct stat st;

		/* Only the files it bound: a socket with a path to bind has one in its name. */
		if ((o->kind != ESKY_IMG_OBJ_UNIX && o->kind != ESKY_IMG_OBJ_UNIX_LISTEN) ||
		    !objs[i].name || !objs[i].name[0] || fds[2 * i] < 0)
			continue;
		if (esky_sockdiag_unix(fd_ino(fds[2 * i]), &d) || !d.has_vfs ||
		    lstat(objs[i].name, &st) < 0 || st.st_ino != d.vfs_ino ||
		    !same_dev(d.vfs_dev, st.st_dev))
			continue;
		unlink(objs[i].name);
	}
}

int esky_fd_unix_check(const struct esky_fdobj_in *obj)
{
	struct esky_img_unix h;
	const char *name = (const char *)obj->data + sizeof(h);
	struct usock u = { .in = obj };
	char what[SUN_PATH_MAX + 80];

	if (!read_head(obj->data, obj->o->data_len, &h))
		return esky_error(-EBADMSG, "a Unix socket record is damaged");
	if (!binds(obj->o, h.name_len))
		return 0;
	u.h = h;
	u.name = name;
	u.type = (uint32_t)obj->o->v[0];
	return name_free(name, h.name_len, obj->name, desc_as(&u, false, what, sizeof(what)), false);
}
