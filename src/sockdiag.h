/*
 * What the kernel tells about Unix sockets through NETLINK_SOCK_DIAG
 * (linux/unix_diag.h): type, state, name, the file it is bound to, its
 * peer, pending connections, queue lengths, shutdown state. Used by the
 * freeze of Unix sockets (fd_unix.c) and by resume's checks of the names
 * it binds again. Needs CONFIG_UNIX_DIAG (module unix_diag).
 */
#ifndef ESKY_SOCKDIAG_H
#define ESKY_SOCKDIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One Unix socket as sock_diag shows it. */
struct esky_unix_diag {
	uint32_t ino;          /* the socket's inode (socket:[INO]) */
	uint8_t type;          /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	uint8_t state;         /* TCP_ESTABLISHED 1, TCP_CLOSE 7, TCP_LISTEN 10 */
	uint8_t shutdown;      /* RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2 */
	bool has_peer;         /* connected: peer is its peer's inode, 0 if that is gone */
	uint32_t peer;
	size_t name_len;       /* bytes of name (sun_path; abstract: starts with '\0'), 0: unbound */
	char name[108];
	bool has_vfs;          /* bound to a path: the socket file's inode and device */
	uint32_t vfs_ino;
	uint32_t vfs_dev;      /* the kernel's encoding: major << 20 | minor */
	uint32_t rqueue;       /* listening: pending connections; else bytes queued (DGRAM:
				* the first datagram's) */
	uint32_t wqueue;       /* listening: backlog; else bytes it sent still queued */
	uint32_t icons_n;      /* listening: pending connections listed */
};

/*
 * The socket with inode ino (in esky's network namespace). 0, -ENOENT if
 * there is none, or -errno (-EPROTONOSUPPORT: no unix_diag in this kernel).
 * No message: the caller names the fd.
 */
int esky_sockdiag_unix(uint32_t ino, struct esky_unix_diag *out);

/*
 * Every Unix socket of esky's network namespace, one call of fn each (fn
 * returns nonzero to stop: that value is returned). 0 or -errno.
 */
int esky_sockdiag_unix_each(int (*fn)(const struct esky_unix_diag *d, void *arg), void *arg);

#endif
