/* Lazy resume: serving the program's pages through a userfaultfd, see lazy.h. */
#include "lazy.h"
#include "hash.h"
#include "image_format.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PAGE ESKY_PAGE_SIZE
/* Pages brought in from a fault on: a sequential reader touches the next ones next. */
#define FAULT_PAGES 64
/* Pages brought in per background step, between two looks at the events. */
#define STEP_PAGES 256
#define MAX_SPACES 64

/* A run of pages to come: its place now (mremap moves it), its source, and which are in. */
struct lrun {
	uint64_t addr, npages;
	uint32_t src;
	uint64_t off;
	uint64_t *hash;  /* one per page, shared by the copies a fork makes */
	uint8_t *done;   /* per page: in, or dropped (madvise, munmap) */
};

/* An address space being served: the program's, or a child's after a fork. */
struct space {
	int uffd;
	struct lrun *runs; /* sorted by addr */
	size_t n;
	uint64_t left;     /* pages not yet in */
	size_t cursor;     /* the background's run */
};

struct esky_lazy {
	pid_t pid;
	int *src_fd;
	char **src_path;
	size_t src_n;
	struct lrun *runs;  /* as added, before start */
	size_t run_n;
	uint64_t bytes;
	uint64_t **hash_blocks; /* every run's hashes, freed at the end */
	uint8_t **done_blocks;
	size_t block_n;
	struct space sp[MAX_SPACES];
	size_t sp_n;
	char *buf;
	int stop_fd;
	int done_fd;            /* readable once finished */
	pthread_t thread;
	bool started;
	/* shared with the waiters */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool finished;
	int err;
	char why[512];
	bool said;
	/* figures, for ESKY_DEBUG */
	uint64_t faults, zero_faults, pages_in, t0;
};

int esky_lazy_new(struct esky_lazy **out)
{
	struct esky_lazy *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->stop_fd = -1;
	l->done_fd = -1;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	*out = l;
	return 0;
}

int esky_lazy_source(struct esky_lazy *l, int fd, const char *path)
{
	int *nf = realloc(l->src_fd, (l->src_n + 1) * sizeof(*nf));
	char **np;

	if (!nf)
		return -ENOMEM;
	l->src_fd = nf;
	np = realloc(l->src_path, (l->src_n + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	l->src_path = np;
	l->src_fd[l->src_n] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	l->src_path[l->src_n] = strdup(path);
	if (l->src_fd[l->src_n] < 0 || !l->src_path[l->src_n]) {
		int ret = l->src_fd[l->src_n] < 0 ? -errno : -ENOMEM;

		if (l->src_fd[l->src_n] >= 0)
			close(l->src_fd[l->src_n]);
		free(l->src_path[l->src_n]);
		return ret;
	}
	return (int)l->src_n++;
}

static int keep_block(struct esky_lazy *l, uint64_t *hash, uint8_t *done)
{
	uint64_t **nh = realloc(l->hash_blocks, (l->block_n + 1) * sizeof(*nh));
	uint8_t **nd;

	if (!nh)
		return -ENOMEM;
	l->hash_blocks = nh;
	nd = realloc(l->done_blocks, (l->block_n + 1) * sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	l->done_blocks = nd;
	l->hash_blocks[l->block_n] = hash;
	l->done_blocks[l->block_n++] = done;
	return 0;
}

int esky_lazy_add(struct esky_lazy *l, uint64_t addr, uint64_t len, int src, uint64_t off,
		  const uint64_t *hashes)
{
	uint64_t npages = len / PAGE;
	struct lrun *nr = realloc(l->runs, (l->run_n + 1) * sizeof(*nr));
	uint64_t *hash;

	if (!nr)
		return -ENOMEM;
	l->runs = nr;
	if (!npages || src < 0 || (size_t)src >= l->src_n)
		return -EINVAL;
	hash = malloc(npages * sizeof(*hash));
	if (!hash)
		return -ENOMEM;
	memcpy(hash, hashes, npages * sizeof(*hash));
	if (keep_block(l, hash, NULL)) {
		free(hash);
		return -ENOMEM;
	}
	l->runs[l->run_n++] = (struct lrun){ addr, npages, (uint32_t)src, off, hash, NULL };
	l->bytes += len;
	return 0;
}

uint64_t esky_lazy_bytes(const struct esky_lazy *l)
{
	return l->bytes;
}

static int run_cmp(const void *a, const void *b)
{
	const struct lrun *x = a, *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

/* ---- the server's thread ---- */

/* Serving ends with an error: say it once, kill the program (it must not see the page). */
static void fail(struct esky_lazy *l, pid_t who, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void fail(struct esky_lazy *l, pid_t who, int err, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&l->lock);
	if (!l->err) {
		l->err = err;
		va_start(ap, fmt);
		vsnprintf(l->why, sizeof(l->why), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&l->lock);
	kill(l->pid, SIGKILL);
	if (who > 0 && who != l->pid)
		kill(who, SIGKILL);
}

static struct lrun *find_run(struct space *s, uint64_t addr)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		struct lrun *r = &s->runs[mid];

		if (addr < r->addr)
			hi = mid;
		else if (addr >= r->addr + r->npages * PAGE)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

/* A space no longer exists (its process exited or exec'd): nothing left to bring. */
static void space_gone(struct space *s)
{
	s->left = 0;
	if (s->uffd >= 0)
		close(s->uffd);
	s->uffd = -1;
}

/* Mark pages [first, first + n) of run r done. */
static void mark(struct space *s, struct lrun *r, uint64_t first, uint64_t n)
{
	for (uint64_t k = first; k < first + n; k++)
		if (!r->done[k]) {
			r->done[k] = 1;
			s->left--;
		}
}

/*
 * Bring pages [first, first + n) of run r in (all not done). 0, -EAGAIN
 * (the mappings are changing: events first, then again), or the space
 * is gone / the program killed (also 0: nothing more to do here).
 */
static int bring(struct esky_lazy *l, struct space *s, struct lrun *r, uint64_t first, uint64_t n,
		 pid_t who)
{
	uint64_t off = r->off + first * PAGE, copied = 0;
	int ret = esky_pread_all(l->src_fd[r->src], l->buf, n * PAGE, (off_t)off);

	if (ret) {
		fail(l, who, ret, "%s: cannot read page data at offset %" PRIu64 ": %s; the program "
		     "was killed", l->src_path[r->src], off, strerror(-ret));
		space_gone(s);
		return 0;
	}
	for (uint64_t q = 0; q < n; q++) {
		int zero;

		if (esky_hash_page(l->buf + q * PAGE, &zero) != r->hash[first + q]) {
			fail(l, who, -EBADMSG, "%s: damaged: page data for 0x%" PRIx64 " (file offset "
			     "%" PRIu64 ") checksum mismatch; the program was killed",
			     l->src_path[r->src], r->addr + (first + q) * PAGE, off + q * PAGE);
			space_gone(s);
			return 0;
		}
	}
	while (copied < n) {
		struct uffdio_copy c = {
			.dst = r->addr + (first + copied) * PAGE,
			.src = (uint64_t)(uintptr_t)(l->buf + copied * PAGE),
			.len = (n - copied) * PAGE,
		};

		if (ioctl(s->uffd, UFFDIO_COPY, &c) == 0) {
			copied = n;
			break;
		}
		if (c.copy > 0) {
			copied += (uint64_t)c.copy / PAGE;
			continue;
		}
		if (errno == EAGAIN || c.copy == -EAGAIN) {
			mark(s, r, first, copied);
			l->pages_in += copied;
			return -EAGAIN;
		}
		if (errno == EEXIST || c.copy == -EEXIST) {
			/* In already (a page the program's own writes could not have made: a race with a remap). */
			copied++;
			continue;
		}
		/* ESRCH, ENOENT, EFAULT: the memory is gone. */
		space_gone(s);
		return 0;
	}
	mark(s, r, first, n);
	l->pages_in += n;
	return 0;
}

/* The longest stretch of pages from `first` in r not done, at most max. */
static uint64_t stretch(const struct lrun *r, uint64_t first, uint64_t max)
{
	uint64_t k = first;

	while (k < r->npages && k - first < max && !r->done[k])
		k++;
	return k - first;
}

static void wake_zero(struct space *s, uint64_t page)
{
	struct uffdio_zeropage z = { .range = { page, PAGE } };

	if (ioctl(s->uffd, UFFDIO_ZEROPAGE, &z) && errno == EEXIST) {
		struct uffdio_range w = { page, PAGE };

		ioctl(s->uffd, UFFDIO_WAKE, &w);
	}
}

static int on_fault(struct esky_lazy *l, struct space *s, const struct uffd_msg *m)
{
	uint64_t page = m->arg.pagefault.address & ~(uint64_t)(PAGE - 1);
	pid_t who = (pid_t)m->arg.pagefault.feat.ptid;
	struct lrun *r = find_run(s, page);
	uint64_t k;

	l->faults++;
	if (!r || r->done[k = (page - r->addr) / PAGE]) {
		/* Not saved, or dropped since: zeros, as without us. */
		l->zero_faults++;
		wake_zero(s, page);
		return 0;
	}
	/* From the page touched on: a sequential reader's next faults are served with it. */
	return bring(l, s, r, k, stretch(r, k, FAULT_PAGES), who);
}

/* Split run i of s at page k (0 < k < npages): two runs, sharing hashes and marks. */
static int split(struct space *s, size_t i, uint64_t k)
{
	struct lrun *nr = realloc(s->runs, (s->n + 1) * sizeof(*nr)), *r;

	if (!nr)
		return -ENOMEM;
	s->runs = nr;
	memmove(&s->runs[i + 2], &s->runs[i + 1], (s->n - i - 1) * sizeof(*nr));
	s->n++;
	r = &s->runs[i];
	s->runs[i + 1] = (struct lrun){ r->addr + k * PAGE, r->npages - k, r->src, r->off + k * PAGE,
					r->hash + k, r->done + k };
	r->npages = k;
	return 0;
}

/* madvise(DONTNEED) of [start, end): those pages read as zeros now. */
static void on_drop(struct space *s, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < s->n; i++) {
		struct lrun *r = &s->runs[i];
		uint64_t a = start > r->addr ? start : r->addr;
		uint64_t b = end < r->addr + r->npages * PAGE ? end : r->addr + r->npages * PAGE;

		if (a < b)
			mark(s, r, (a - r->addr) / PAGE, (b - a) / PAGE);
	}
}

/*
 * [start, end) is unmapped: its runs go (split at the edges), so that no
 * run is left where a later mapping, or a moved run, may come.
 */
static int on_unmap(struct space *s, uint64_t start, uint64_t end)
{
	size_t w = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct lrun *r = &s->runs[i];
		uint64_t rend = r->addr + r->npages * PAGE;

		if (rend <= start || r->addr >= end)
			continue;
		if (r->addr < start) {
			if (split(s, i, (start - r->addr) / PAGE))
				return -ENOMEM;
			continue; /* the part from start on is run i + 1, seen next */
		}
		if (rend > end && split(s, i, (end - r->addr) / PAGE))
			return -ENOMEM;
		/* Wholly inside: its pages will never be brought. */
		mark(s, &s->runs[i], 0, s->runs[i].npages);
	}
	for (size_t i = 0; i < s->n; i++) {
		struct lrun *r = &s->runs[i];

		if (r->addr >= start && r->addr + r->npages * PAGE <= end)
			continue;
		s->runs[w++] = *r;
	}
	s->n = w;
	s->cursor = 0;
	return 0;
}

/* mremap moved [from, from + len) to `to`: so do the pages still to come there. */
static int on_remap(struct space *s, uint64_t from, uint64_t to, uint64_t len)
{
	/* Whatever was at the destination is gone (its unmap may come as an event of its own). */
	if (on_unmap(s, to, to + len))
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		struct lrun *r = &s->runs[i];
		uint64_t end = r->addr + r->npages * PAGE;

		if (end <= from || r->addr >= from + len)
			continue;
		if (r->addr < from) {
			if (split(s, i, (from - r->addr) / PAGE))
				return -ENOMEM;
			continue; /* the part from `from` on is run i + 1, seen next */
		}
		if (end > from + len && split(s, i, (from + len - r->addr) / PAGE))
			return -ENOMEM;
		s->runs[i].addr = s->runs[i].addr - from + to;
	}
	qsort(s->runs, s->n, sizeof(*s->runs), run_cmp);
	s->cursor = 0;
	return 0;
}

/* A fork: the child's memory has the pages still to come missing too. */
static int on_fork(struct esky_lazy *l, struct space *s, int child_uffd)
{
	struct space *c;
	uint8_t *done;
	size_t total = 0;

	if (l->sp_n == MAX_SPACES)
		return -EMFILE;
	c = &l->sp[l->sp_n];
	memset(c, 0, sizeof(*c));
	c->uffd = child_uffd;
	c->runs = malloc((s->n ? s->n : 1) * sizeof(*c->runs));
	for (size_t i = 0; i < s->n; i++)
		total += s->runs[i].npages;
	done = malloc(total ? total : 1);
	if (!c->runs || !done || keep_block(l, NULL, done)) {
		free(c->runs);
		free(done);
		return -ENOMEM;
	}
	for (size_t i = 0, at = 0; i < s->n; i++) {
		c->runs[i] = s->runs[i];
		c->runs[i].done = done + at;
		memcpy(c->runs[i].done, s->runs[i].done, s->runs[i].npages);
		at += s->runs[i].npages;
	}
	c->n = s->n;
	c->left = s->left;
	l->sp_n++;
	return 0;
}

/* Read and handle the events of space i: 1 if there were any, 0 if none, -errno. */
static int events(struct esky_lazy *l, size_t i)
{
	struct uffd_msg msgs[32];
	int any = 0;

	for (;;) {
		struct space *s = &l->sp[i];
		ssize_t got;

		if (s->uffd < 0)
			return any;
		got = read(s->uffd, msgs, sizeof(msgs));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN)
			return any;
		if (got <= 0) {
			space_gone(s);
			return any;
		}
		any = 1;
		for (size_t k = 0; k < (size_t)got / sizeof(msgs[0]); k++) {
			const struct uffd_msg *m = &msgs[k];
			int ret = 0;

			s = &l->sp[i]; /* a fork may have moved nothing, but take it afresh */
			switch (m->event) {
			case UFFD_EVENT_PAGEFAULT:
				if (s->uffd >= 0) {
					ret = on_fault(l, s, m);
					while (ret == -EAGAIN) {
						/*
						 * The mappings change: their events come
						 * first; the kernel lets copies in again
						 * once the changing thread runs on.
						 */
						ret = events(l, i);
						if (ret == 0)
							sched_yield();
						if (ret >= 0 && s->uffd >= 0)
							ret = on_fault(l, s, m);
					}
				}
				break;
			case UFFD_EVENT_FORK:
				ret = on_fork(l, s, (int)m->arg.fork.ufd);
				if (ret) {
					close((int)m->arg.fork.ufd);
					fail(l, 0, ret, "cannot follow a fork of pid %d while its memory "
					     "comes in: %s; the program was killed", l->pid,
					     strerror(-ret));
				}
				break;
			case UFFD_EVENT_REMAP:
				ret = on_remap(s, m->arg.remap.from, m->arg.remap.to, m->arg.remap.len);
				break;
			case UFFD_EVENT_REMOVE:
				on_drop(s, m->arg.remove.start, m->arg.remove.end);
				break;
			case UFFD_EVENT_UNMAP:
				ret = on_unmap(s, m->arg.remove.start, m->arg.remove.end);
				break;
			default:
				break;
			}
			if (ret < 0 && ret != -EAGAIN)
				return ret;
		}
	}
}

/* Bring the next pages in, in address order: false when this space has none left. */
static bool background(struct esky_lazy *l, struct space *s)
{
	while (s->left && s->cursor < s->n) {
		struct lrun *r = &s->runs[s->cursor];

		for (uint64_t k = 0; k < r->npages; k++) {
			uint64_t n;

			if (r->done[k])
				continue;
			n = stretch(r, k, STEP_PAGES);
			bring(l, s, r, k, n, 0);
			return true;
		}
		s->cursor++;
	}
	if (s->left && s->cursor >= s->n)
		s->cursor = 0; /* left over by an EAGAIN: round again */
	return s->left != 0;
}

static uint64_t pages_left(const struct esky_lazy *l)
{
	uint64_t left = 0;

	for (size_t i = 0; i < l->sp_n; i++)
		left += l->sp[i].uffd >= 0 ? l->sp[i].left : 0;
	return left;
}

static void *serve(void *arg)
{
	struct esky_lazy *l = arg;
	struct pollfd pfd[MAX_SPACES + 1];
	size_t next = 0;

	for (;;) {
		size_t n = 0;
		int any = 0, busy = pages_left(l) != 0;

		if (!busy)
			break;
		pfd[n++] = (struct pollfd){ .fd = l->stop_fd, .events = POLLIN };
		for (size_t i = 0; i < l->sp_n; i++)
			pfd[n++] = (struct pollfd){ .fd = l->sp[i].uffd, .events = POLLIN };
		if (poll(pfd, n, 0) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents & POLLIN)
			break;
		for (size_t i = 0; i < l->sp_n; i++) {
			int ret = l->sp[i].uffd >= 0 ? events(l, i) : 0;

			if (ret < 0) {
				fail(l, 0, ret, "cannot follow the memory of pid %d while it comes in: "
				     "%s; the program was killed", l->pid, strerror(-ret));
				goto out;
			}
			any |= ret;
		}
		if (any)
			continue;
		/* No event waiting: a step of background work, the spaces in turn. */
		for (size_t k = 0; k < l->sp_n; k++) {
			struct space *s = &l->sp[(next + k) % l->sp_n];

			if (s->uffd >= 0 && background(l, s)) {
				next = (next + k + 1) % l->sp_n;
				break;
			}
		}
	}
out:
	pr_debug("lazy resume: every page in after %.1f ms (%" PRIu64 " pages, %" PRIu64
		 " faults of which %" PRIu64 " for zeros, %zu address spaces)",
		 (double)(esky_now_ns() - l->t0) / 1e6, l->pages_in, l->faults, l->zero_faults,
		 l->sp_n);
	/* Closing the userfaultfds ends the registrations: from here the kernel alone. */
	for (size_t i = 0; i < l->sp_n; i++)
		space_gone(&l->sp[i]);
	pthread_mutex_lock(&l->lock);
	l->finished = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	{
		uint64_t one = 1;

		if (write(l->done_fd, &one, sizeof(one)) < 0)
			pr_debug("lazy resume: cannot say it is done: %s", strerror(errno));
	}
	return NULL;
}

int esky_lazy_done_fd(const struct esky_lazy *l)
{
	return l->done_fd;
}

int esky_lazy_start(struct esky_lazy *l, int uffd, pid_t pid)
{
	struct space *s = &l->sp[0];
	uint8_t *done;
	uint64_t total = 0;
	int ret;

	l->t0 = esky_now_ns();
	l->pid = pid;
	memset(s, 0, sizeof(*s));
	s->uffd = uffd;
	l->sp_n = 1;
	for (size_t i = 0; i < l->run_n; i++)
		total += l->runs[i].npages;
	done = calloc(total ? total : 1, 1);
	l->buf = aligned_alloc(PAGE, (STEP_PAGES > FAULT_PAGES ? STEP_PAGES : FAULT_PAGES) * PAGE);
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!done || !l->buf || l->stop_fd < 0 || l->done_fd < 0 || keep_block(l, NULL, done)) {
		free(done);
		close(uffd);
		s->uffd = -1;
		return -ENOMEM;
	}
	qsort(l->runs, l->run_n, sizeof(*l->runs), run_cmp);
	for (size_t i = 0, at = 0; i < l->run_n; i++) {
		l->runs[i].done = done + at;
		at += l->runs[i].npages;
	}
	s->runs = l->runs;
	s->n = l->run_n;
	s->left = total;
	l->runs = NULL;
	l->run_n = 0;
	ret = pthread_create(&l->thread, NULL, serve, l);
	if (ret) {
		space_gone(s);
		return -ret;
	}
	l->started = true;
	return 0;
}

bool esky_lazy_done(struct esky_lazy *l)
{
	bool done;

	pthread_mutex_lock(&l->lock);
	done = l->finished || !l->started;
	pthread_mutex_unlock(&l->lock);
	return done;
}

int esky_lazy_wait(struct esky_lazy *l)
{
	int err;

	pthread_mutex_lock(&l->lock);
	while (l->started && !l->finished)
		pthread_cond_wait(&l->cond, &l->lock);
	err = l->err;
	pthread_mutex_unlock(&l->lock);
	if (err && !l->said) {
		l->said = true;
		return esky_error(err, "%s", l->why);
	}
	return err;
}

void esky_lazy_free(struct esky_lazy *l)
{
	if (!l)
		return;
	if (l->started) {
		uint64_t one = 1;

		if (write(l->stop_fd, &one, sizeof(one)) < 0)
			pr_debug("lazy resume: cannot stop the server: %s", strerror(errno));
		pthread_join(l->thread, NULL);
	} else {
		for (size_t i = 0; i < l->sp_n; i++)
			space_gone(&l->sp[i]);
	}
	for (size_t i = 0; i < l->sp_n; i++)
		free(l->sp[i].runs);
	for (size_t i = 0; i < l->block_n; i++) {
		free(l->hash_blocks[i]);
		free(l->done_blocks[i]);
	}
	free(l->hash_blocks);
	free(l->done_blocks);
	for (size_t i = 0; i < l->src_n; i++) {
		close(l->src_fd[i]);
		free(l->src_path[i]);
	}
	free(l->src_fd);
	free(l->src_path);
	free(l->runs);
	free(l->buf);
	if (l->stop_fd >= 0)
		close(l->stop_fd);
	if (l->done_fd >= 0)
		close(l->done_fd);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l);
}
