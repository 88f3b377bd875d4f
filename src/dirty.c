/* Dirty-page tracking with userfaultfd write-protect, see dirty.h. */
#include "dirty.h"
#include "log.h"
#include "proc.h"
#include "uffd_compat.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PAGE 4096ULL

struct esky_dirty {
	pid_t pid;
	int uffd;
	int pagemap;
	struct esky_ranges armed;    /* registered and write-protected at the last arm */
	struct esky_ranges poison;   /* unmapped, moved or discarded since: not trusted */
	/* the last collect's answer */
	struct esky_ranges valid;    /* tracked through the interval */
	struct esky_ranges written;  /* written in it */
	uint64_t n_written, n_valid;
	/* /proc/PID/maps as the last arm left it (NULL: not known) */
	char *maps;
	size_t maps_len;
};

/* The text of /proc/PID/maps (no page-table walk, unlike smaps): *out malloc'd. */
static int read_maps_text(pid_t pid, char **out, size_t *len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	return esky_read_file(path, out, len);
}

static bool eligible(const struct esky_vma *v)
{
	/* Private memory is what a snapshot stores; [vdso] and friends are the kernel's. */
	return !v->shared && !(v->vmflags & ESKY_VMF_IO) &&
	       !(v->path && v->path[0] == '[' && strcmp(v->path, "[heap]") &&
		 strcmp(v->path, "[stack]") && strncmp(v->path, "[anon:", 6));
}

/*
 * One PAGEMAP_SCAN over [start, end), every region it reports added to
 * out (if not NULL). flags, inverted and mask as the ioctl takes them.
 */
static int scan(struct esky_dirty *d, uint64_t start, uint64_t end, uint64_t flags,
		uint64_t inverted, uint64_t mask, struct esky_ranges *out)
{
	struct page_region vec[512];

	while (start < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.flags = flags,
			.start = start,
			.end = end,
			.vec = (uint64_t)(uintptr_t)vec,
			.vec_len = 512,
			.category_inverted = inverted,
			.category_mask = mask,
			.return_mask = mask,
		};
		long n = ioctl(d->pagemap, PAGEMAP_SCAN, &a);

		if (n < 0)
			return errno == ENOTTY || errno == EINVAL ? -ENOTSUP : -errno;
		for (long i = 0; i < n && out; i++)
			if (esky_ranges_add(out, vec[i].start, vec[i].end))
				return -ENOMEM;
		if (a.walk_end <= start)
			break;
		start = a.walk_end;
	}
	return 0;
}

/* Whether [a, b) lies within one range of r. */
static bool ranges_cover(const struct esky_ranges *r, uint64_t a, uint64_t b)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].start <= a && b <= r->v[i].end)
			return true;
	return false;
}

/*
 * Register every eligible mapping and write-protect it: the arm. Mappings
 * still armed (within `still`: registered, protected again by the scan
 * that reported their writes) cost nothing; the others are registered and
 * protected now.
 */
static int arm(struct esky_dirty *d, bool first, const struct esky_ranges *still)
{
	struct esky_ranges fresh = { 0 };
	struct esky_vma *vmas;
	size_t n;
	int ret = esky_proc_read_maps(d->pid, false, &vmas, &n);

	if (ret)
		return ret;
	d->armed.n = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		struct uffdio_register reg = {
			.range = { vmas[i].start, vmas[i].end - vmas[i].start },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};

		if (first && (vmas[i].vmflags & ESKY_VMF_UFFD)) {
			ret = -EBUSY; /* the program's own userfaultfd */
			break;
		}
		if (!eligible(&vmas[i]))
			continue;
		if (still && ranges_cover(still, vmas[i].start, vmas[i].end)) {
			ret = esky_ranges_add(&d->armed, vmas[i].start, vmas[i].end);
			continue;
		}
		/* Refused (a kind of memory uffd-wp does not take): read it whole each time. */
		if (ioctl(d->uffd, UFFDIO_REGISTER, &reg) < 0)
			continue;
		ret = esky_ranges_add(&d->armed, vmas[i].start, vmas[i].end);
		if (!ret)
			ret = esky_ranges_add(&fresh, vmas[i].start, vmas[i].end);
	}
	esky_vmas_free(vmas, n);
	esky_ranges_merge(&d->armed);
	/* Write-protect the new ones (pages already protected stay so). */
	for (size_t i = 0; i < fresh.n && !ret; i++)
		ret = scan(d, fresh.v[i].start, fresh.v[i].end,
			   PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, 0, PAGE_IS_WRITTEN, NULL);
	esky_ranges_free(&fresh);
	d->poison.n = 0;
	/* What the next collect compares with: the same maps and no event, the same registrations. */
	free(d->maps);
	d->maps = NULL;
	if (!ret && read_maps_text(d->pid, &d->maps, &d->maps_len))
		d->maps = NULL;
	return ret;
}

int esky_dirty_start(pid_t pid, int uffd, struct esky_dirty **out)
{
	struct esky_dirty *d = calloc(1, sizeof(*d));
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
			    UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |
			    UFFD_FEATURE_EVENT_UNMAP,
	};
	char path[64];
	int ret;

	if (!d) {
		close(uffd);
		return -ENOMEM;
	}
	d->pid = pid;
	d->uffd = uffd;
	d->pagemap = -1;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	d->pagemap = open(path, O_RDONLY | O_CLOEXEC);
	if (d->pagemap < 0) {
		ret = -errno;
		goto out_free;
	}
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		ret = errno == EINVAL ? -ENOTSUP : -errno;
		goto out_free;
	}
	ret = arm(d, true, NULL);
	if (ret)
		goto out_free;
	*out = d;
	return 0;
out_free:
	esky_dirty_free(d);
	return ret;
}

int esky_dirty_fd(const struct esky_dirty *d)
{
	return d->uffd;
}

int esky_dirty_read_events(struct esky_dirty *d)
{
	struct uffd_msg msg[16];

	for (;;) {
		ssize_t r = read(d->uffd, msg, sizeof(msg));

		if (r < 0)
			return errno == EAGAIN ? 0 : -errno;
		for (size_t i = 0; i < (size_t)r / sizeof(msg[0]); i++) {
			const struct uffd_msg *m = &msg[i];
			int ret = 0;

			switch (m->event) {
			case UFFD_EVENT_REMAP:
				ret = esky_ranges_add(&d->poison, m->arg.remap.from,
						 m->arg.remap.from + m->arg.remap.len);
				if (!ret)
					ret = esky_ranges_add(&d->poison, m->arg.remap.to,
							 m->arg.remap.to + m->arg.remap.len);
				break;
			case UFFD_EVENT_REMOVE:
			case UFFD_EVENT_UNMAP:
				ret = esky_ranges_add(&d->poison, m->arg.remove.start, m->arg.remove.end);
				break;
			default:
				break; /* no faults in async mode; fork is refused anyway */
			}
			if (ret)
				return ret;
		}
	}
}

int esky_dirty_collect(struct esky_dirty *d)
{
	struct esky_ranges notallowed = { 0 }, trust = { 0 };
	int ret = esky_dirty_read_events(d);
	bool same = false;

	d->written.n = 0;
	d->valid.n = 0;
	/*
	 * A registration is lost only with its mapping: an unmap, a move or a
	 * mapping over it (each an event), or a change that maps shows. With
	 * neither since the last arm, what was registered still is, and the
	 * page-table walk that checks it (~0.4 ms per GiB in the program's
	 * stop) is left out.
	 */
	if (!ret && !d->poison.n && d->maps) {
		char *now;
		size_t len;

		if (!read_maps_text(d->pid, &now, &len)) {
			same = len == d->maps_len && !memcmp(now, d->maps, len);
			free(now);
		}
	}
	/* Pages no longer registered (their mapping was replaced) are not trusted. */
	for (size_t i = 0; i < d->armed.n && !ret && !same; i++)
		ret = scan(d, d->armed.v[i].start, d->armed.v[i].end, 0, PAGE_IS_WPALLOWED,
			   PAGE_IS_WPALLOWED, &notallowed);
	if (!ret) {
		esky_ranges_merge(&d->poison);
		esky_ranges_merge(&notallowed);
		ret = esky_ranges_minus(&d->armed, &notallowed, &trust);
	}
	/*
	 * What was written, write-protected again as it is reported: in the
	 * mappings still registered only (a write-protect scan of another
	 * fails the whole scan with EPERM).
	 */
	for (size_t i = 0; i < trust.n && !ret; i++)
		ret = scan(d, trust.v[i].start, trust.v[i].end,
			   PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, 0, PAGE_IS_WRITTEN,
			   &d->written);
	if (!ret) {
		esky_ranges_merge(&d->written);
		ret = esky_ranges_minus(&trust, &d->poison, &d->valid);
	}
	d->n_written = d->n_valid = 0;
	for (size_t i = 0; !ret && i < d->written.n; i++)
		d->n_written += (d->written.v[i].end - d->written.v[i].start) / PAGE;
	for (size_t i = 0; !ret && i < d->valid.n; i++)
		d->n_valid += (d->valid.v[i].end - d->valid.v[i].start) / PAGE;
	esky_ranges_free(&notallowed);
	esky_ranges_free(&trust);
	/* Arm for the next interval: new mappings registered, everything protected. */
	if (!ret)
		ret = arm(d, false, &d->valid);
	return ret;
}

/* The index of the first range of r that ends above a (r->n if none). */
static size_t ranges_from(const struct esky_ranges *r, uint64_t a)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (r->v[mid].end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t esky_dirty_unchanged(void *ctx, uint64_t vaddr, size_t max)
{
	const struct esky_dirty *d = ctx;
	size_t v = ranges_from(&d->valid, vaddr), w = ranges_from(&d->written, vaddr);
	uint64_t limit;

	if (v == d->valid.n || d->valid.v[v].start > vaddr)
		return 0;
	limit = d->valid.v[v].end;
	if (w < d->written.n) {
		if (d->written.v[w].start <= vaddr)
			return 0;
		if (d->written.v[w].start < limit)
			limit = d->written.v[w].start;
	}
	return (limit - vaddr) / PAGE < max ? (size_t)((limit - vaddr) / PAGE) : max;
}

void esky_dirty_counts(const struct esky_dirty *d, uint64_t *written, uint64_t *tracked)
{
	*written = d->n_written;
	*tracked = d->n_valid;
}

void esky_dirty_free(struct esky_dirty *d)
{
	if (!d)
		return;
	if (d->uffd >= 0)
		close(d->uffd);
	if (d->pagemap >= 0)
		close(d->pagemap);
	free(d->maps);
	esky_ranges_free(&d->armed);
	esky_ranges_free(&d->poison);
	esky_ranges_free(&d->valid);
	esky_ranges_free(&d->written);
	free(d);
}
