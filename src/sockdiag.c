/* Unix sockets through NETLINK_SOCK_DIAG, see sockdiag.h. */
#include "sockdiag.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SHOW_ALL (UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | \
		  UDIAG_SHOW_RQLEN)

static int send_request(int nl, uint32_t ino, bool dump)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
	req.h.nlmsg_seq = 1;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = ~0u;
	req.r.udiag_ino = ino;
	req.r.udiag_show = SHOW_ALL;
	/* INET_DIAG_NOCOOKIE: the exact lookup goes by inode alone. */
	req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;
	if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	return 0;
}

/* One SOCK_DIAG_BY_FAMILY answer into *d. -EBADMSG if it is cut short. */
static int parse(const struct nlmsghdr *h, struct esky_unix_diag *d)
{
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	const struct nlattr *a;
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));

	if (len < 0)
		return -EBADMSG;
	memset(d, 0, sizeof(*d));
	d->ino = m->udiag_ino;
	d->type = m->udiag_type;
	d->state = m->udiag_state;
	for (a = (const void *)(m + 1); len >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) &&
					 a->nla_len <= (unsigned)len;
	     len -= NLA_ALIGN(a->nla_len), a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len))) {
		const void *p = (const char *)a + NLA_HDRLEN;
		size_t n = a->nla_len - NLA_HDRLEN;

		switch (a->nla_type) {
		case UNIX_DIAG_NAME:
			d->name_len = n < sizeof(d->name) ? n : sizeof(d->name);
			memcpy(d->name, p, d->name_len);
			break;
		case UNIX_DIAG_VFS:
			if (n >= sizeof(struct unix_diag_vfs)) {
				const struct unix_diag_vfs *v = p;

				d->has_vfs = true;
				d->vfs_ino = v->udiag_vfs_ino;
				d->vfs_dev = v->udiag_vfs_dev;
			}
			break;
		case UNIX_DIAG_PEER:
			if (n >= sizeof(uint32_t)) {
				d->has_peer = true;
				memcpy(&d->peer, p, sizeof(uint32_t));
			}
			break;
		case UNIX_DIAG_ICONS:
			d->icons_n = (uint32_t)(n / sizeof(uint32_t));
			break;
		case UNIX_DIAG_RQLEN:
			if (n >= sizeof(struct unix_diag_rqlen)) {
				const struct unix_diag_rqlen *r = p;

				d->rqueue = r->udiag_rqueue;
				d->wqueue = r->udiag_wqueue;
			}
			break;
		case UNIX_DIAG_SHUTDOWN:
			if (n >= 1)
				d->shutdown = *(const uint8_t *)p;
			break;
		}
	}
	return 0;
}

/*
 * Read answers until the one we wait for: the exact answer, or NLMSG_DONE
 * of a dump. fn is called for each socket (d is the exact answer's place).
 */
static int read_answers(int nl, bool dump, struct esky_unix_diag *d,
			int (*fn)(const struct esky_unix_diag *d, void *arg), void *arg)
{
	/* A dump answer fills pages: 32 KiB takes the largest the kernel sends at once. */
	size_t cap = 32768;
	char *buf = malloc(cap);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = recv(nl, buf, cap, 0);
		const struct nlmsghdr *h;
		int len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out_free;
		}
		len = (int)n;
		for (h = (const void *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE)
				goto out_free;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				ret = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error ? e->error
											: -EBADMSG;
				goto out_free;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				continue;
			ret = parse(h, d);
			if (ret)
				goto out_free;
			if (!dump)
				goto out_free;
			ret = fn(d, arg);
			if (ret)
				goto out_free;
		}
		if (!dump)
			break;
	}
	ret = -EBADMSG;
out_free:
	free(buf);
	return ret;
}

int esky_sockdiag_unix(uint32_t ino, struct esky_unix_diag *out)
{
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	int ret;

	if (nl < 0)
		return -errno;
	ret = send_request(nl, ino, false);
	if (!ret)
		ret = read_answers(nl, false, out, NULL, NULL);
	/* (The kernel says ENOENT for an inode it does not know.) */
	close(nl);
	return ret;
}

int esky_sockdiag_unix_each(int (*fn)(const struct esky_unix_diag *d, void *arg), void *arg)
{
	struct esky_unix_diag d;
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	int ret;

	if (nl < 0)
		return -errno;
	ret = send_request(nl, 0, true);
	if (!ret)
		ret = read_answers(nl, true, &d, fn, arg);
	close(nl);
	return ret;
}
