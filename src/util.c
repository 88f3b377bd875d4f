/* Small helpers shared by the modules of libesky. */

#include "util.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int esky_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int esky_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int esky_pread_all(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_fd_all(int fd, char **out, size_t *lenp)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb = realloc(buf, cap * 2 + 1);

			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			int err = -errno;

			if (errno == EINTR)
				continue;
			free(buf);
			return err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	if (lenp)
		*lenp = len;
	return 0;
}

int esky_read_file_at(int dirfd, const char *path, char **out, size_t *len)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = read_fd_all(fd, out, len);
	close(fd);
	return ret;
}

int esky_read_file(const char *path, char **out, size_t *len)
{
	return esky_read_file_at(AT_FDCWD, path, out, len);
}

int esky_ranges_add(struct esky_ranges *r, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	if (r->n && r->v[r->n - 1].end == start) {
		r->v[r->n - 1].end = end;
		return 0;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct esky_range *nv = realloc(r->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		r->v = nv;
		r->cap = cap;
	}
	r->v[r->n++] = (struct esky_range){ start, end };
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct esky_range *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

void esky_ranges_merge(struct esky_ranges *r)
{
	size_t k = 0;

	if (!r->n)
		return;
	qsort(r->v, r->n, sizeof(*r->v), range_cmp);
	for (size_t i = 1; i < r->n; i++) {
		if (r->v[i].start <= r->v[k].end) {
			if (r->v[i].end > r->v[k].end)
				r->v[k].end = r->v[i].end;
		} else {
			r->v[++k] = r->v[i];
		}
	}
	r->n = k + 1;
}

int esky_ranges_minus(const struct esky_ranges *a, const struct esky_ranges *b,
		      struct esky_ranges *out)
{
	size_t j = 0;

	out->n = 0;
	for (size_t i = 0; i < a->n; i++) {
		uint64_t s = a->v[i].start, e = a->v[i].end;

		while (j < b->n && b->v[j].end <= s)
			j++;
		for (size_t k = j; k < b->n && b->v[k].start < e; k++) {
			if (b->v[k].start > s && esky_ranges_add(out, s, b->v[k].start))
				return -ENOMEM;
			if (b->v[k].end > s)
				s = b->v[k].end;
		}
		if (s < e && esky_ranges_add(out, s, e))
			return -ENOMEM;
	}
	return 0;
}

void esky_ranges_free(struct esky_ranges *r)
{
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

int esky_buf_reserve(struct esky_buf *b, size_t n)
{
	size_t cap;
	char *nd;

	if (b->len + n <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	nd = realloc(b->data, cap);
	if (!nd)
		return -ENOMEM;
	b->data = nd;
	b->cap = cap;
	return 0;
}

int esky_buf_append(struct esky_buf *b, const void *p, size_t n)
{
	int ret = esky_buf_reserve(b, n);

	if (ret)
		return ret;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int esky_buf_printf(struct esky_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, ret;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	ret = esky_buf_reserve(b, (size_t)n + 1);
	if (ret)
		return ret;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int esky_buf_pad(struct esky_buf *b, size_t align)
{
	size_t pad = (align - b->len % align) % align;
	int ret;

	if (!pad)
		return 0; /* (an empty buffer has no data pointer to memset at) */
	ret = esky_buf_reserve(b, pad);
	if (ret)
		return ret;
	memset(b->data + b->len, 0, pad);
	b->len += pad;
	return 0;
}

void esky_buf_free(struct esky_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/*
 * Temporary files are ".NAME.esky-tmp.XXXXXX", and their writer holds
 * flock(LOCK_EX) on them from creation to rename. A writer killed on the
 * way (SIGKILL, a crash, a power cut) leaves its file behind, as large as
 * the memory it was saving and hidden by the leading dot; nothing else
 * would ever remove it. Such a file is one that nobody holds the lock of:
 * the kernel drops a flock with the last fd of the file, however its holder
 * ended. (A pid in the name would not do: pids are reused.)
 */
#define TMP_INFIX ".esky-tmp."
#define TMP_SUFFIX "XXXXXX"

static bool is_tmp_name(const char *name)
{
	const char *infix;
	size_t n = strlen(name);

	if (name[0] != '.' || n < sizeof(TMP_INFIX) - 1 + sizeof(TMP_SUFFIX) - 1 + 2)
		return false;
	infix = name + n - (sizeof(TMP_SUFFIX) - 1) - (sizeof(TMP_INFIX) - 1);
	return !memcmp(infix, TMP_INFIX, sizeof(TMP_INFIX) - 1);
}

int esky_outfile_clean(const char *dir, unsigned *removed)
{
	struct dirent *de;
	unsigned count = 0;
	DIR *d = opendir(dir);

	if (removed)
		*removed = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct stat st, now;
		int fd;

		if (!is_tmp_name(de->d_name))
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		/*
		 * Held: someone is writing it. Any other failure (a file
		 * system without locks): it cannot be told apart, leave it.
		 */
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
		    flock(fd, LOCK_EX | LOCK_NB) < 0) {
			close(fd);
			continue;
		}
		/*
		 * Still the file we locked under that name? Its writer may have
		 * renamed it (committed) between our open and our lock.
		 */
		if (fstatat(dirfd(d), de->d_name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
		    now.st_dev == st.st_dev && now.st_ino == st.st_ino &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0) {
			char sz[32];

			count++;
			pr_note("removed %s/%s (%s), left by an interrupted checkpoint", dir,
				de->d_name, esky_fmt_size((uint64_t)st.st_size, sz, sizeof(sz)));
		}
		close(fd);
	}
	closedir(d);
	if (removed)
		*removed = count;
	return 0;
}

/*
 * Create and lock the temporary file of of->path in dir. A cleaner (another
 * esky's esky_outfile_clean) may lock and remove the file between its
 * creation and our lock: then its name is gone once we hold the lock, and
 * we make another.
 */
/*
 * The temporary file made unnamed (O_TMPFILE), locked, then given its
 * name: it never exists under its name without its lock, so a cleaner in
 * another process cannot take a brand-new file for a leftover (with
 * mkostemp, between the create and the flock, it could: the writer then
 * made another, but the cleaner had said it removed an interrupted
 * checkpoint's). -EOPNOTSUPP (or the open's errno) where the file system
 * has no O_TMPFILE: the caller makes it the older way.
 */
static int create_tmp_locked(struct esky_outfile *of, const char *dir, const char *base)
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	char self[64];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			break; /* no locks here: no cleaner takes it either */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	for (int tries = 0; tries < 16; tries++) {
		unsigned char rnd[6];
		char *x;

		free(of->tmp_path);
		if (asprintf(&of->tmp_path, "%s/.%s" TMP_INFIX TMP_SUFFIX, dir, base) < 0) {
			of->tmp_path = NULL;
			close(fd);
			return -ENOMEM;
		}
		x = of->tmp_path + strlen(of->tmp_path) - (sizeof(TMP_SUFFIX) - 1);
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
			uint64_t t = esky_now_ns() ^ ((uint64_t)getpid() << 20) ^ (uint64_t)tries;

			memcpy(rnd, &t, sizeof(rnd));
		}
		for (size_t i = 0; i < sizeof(rnd); i++)
			x[i] = chars[rnd[i] % (sizeof(chars) - 1)];
		if (linkat(AT_FDCWD, self, AT_FDCWD, of->tmp_path, AT_SYMLINK_FOLLOW) == 0) {
			of->fd = fd;
			return 0;
		}
		if (errno != EEXIST) {
			int ret = -errno;

			close(fd);
			return ret;
		}
	}
	close(fd);
	return -EEXIST;
}

static int create_tmp(struct esky_outfile *of, const char *dir, const char *base)
{
	int ret = create_tmp_locked(of, dir, base);

	/* No O_TMPFILE here (or no /proc to link it through): made, then locked. */
	if (ret != -EOPNOTSUPP && ret != -EISDIR && ret != -EINVAL && ret != -ENOENT)
		return ret;
	for (int tries = 0; tries < 8; tries++) {
		struct stat st, named;

		free(of->tmp_path);
		if (asprintf(&of->tmp_path, "%s/.%s" TMP_INFIX TMP_SUFFIX, dir, base) < 0) {
			of->tmp_path = NULL;
			return -ENOMEM;
		}
		of->fd = mkostemp(of->tmp_path, O_CLOEXEC);
		if (of->fd < 0)
			return -errno;
		/* Without locks (some network file systems) no cleaner touches it either. */
		while (flock(of->fd, LOCK_EX) < 0)
			if (errno != EINTR)
				return 0;
		if (fstat(of->fd, &st) == 0 && stat(of->tmp_path, &named) == 0 &&
		    st.st_dev == named.st_dev && st.st_ino == named.st_ino)
			return 0;
		close(of->fd);
		of->fd = -1;
	}
	return -EEXIST;
}

int esky_outfile_open(struct esky_outfile *of, const char *path)
{
	const char *base = strrchr(path, '/');
	char *dir;
	int ret;

	of->fd = -1;
	of->path = strdup(path);
	dir = dir_of(path);
	base = base ? base + 1 : path;
	if (!of->path || !dir || !*base) {
		free(dir);
		free(of->path);
		of->path = NULL;
		return esky_error(-EINVAL, "%s: not a file name", path);
	}
	of->tmp_path = NULL;
	/* Best effort: an unreadable directory fails below with a better message. */
	esky_outfile_clean(dir, NULL);
	ret = create_tmp(of, dir, base);
	free(dir);
	if (ret) {
		if (ret != -ENOMEM)
			esky_error(ret, "cannot write %s: %s", path, strerror(-ret));
		free(of->tmp_path);
		free(of->path);
		of->tmp_path = of->path = NULL;
		return ret;
	}
	/* mkostemp creates 0600 already; say it anyway against odd umasks. */
	fchmod(of->fd, 0600);
	return 0;
}

static __thread bool keep_lock;
static __thread int kept_lock = -1;

void esky_outfile_keep_lock(bool on)
{
	keep_lock = on;
}

void esky_outfile_drop_lock(void)
{
	if (kept_lock >= 0)
		close(kept_lock);
	kept_lock = -1;
}

int esky_outfile_commit(struct esky_outfile *of)
{
	uint64_t t0 = esky_now_ns();
	char *dir;
	int dfd, hold, ret = 0;

	if (fsync(of->fd) < 0) {
		ret = -errno;
		esky_error(ret, "cannot write %s: fsync: %s", of->path, strerror(-ret));
		goto out_abort;
	}
	/*
	 * The lock lives as long as one fd of the file: keep one until the
	 * rename, or a cleaner could take the closed file for a leftover.
	 */
	hold = fcntl(of->fd, F_DUPFD_CLOEXEC, 0);
	if (close(of->fd) < 0) {
		ret = -errno;
		of->fd = hold; /* (abort removes the file, then lets go of the lock) */
		esky_error(ret, "cannot write %s: close: %s", of->path, strerror(-ret));
		goto out_abort;
	}
	of->fd = hold;
	esky_log(ESKY_LOG_DEBUG, "%s: fsync %.1f ms", of->path, (double)(esky_now_ns() - t0) / 1e6);
	if (rename(of->tmp_path, of->path) < 0) {
		ret = -errno;
		esky_error(ret, "cannot write %s: rename: %s", of->path, strerror(-ret));
		goto out_abort;
	}
	if (hold >= 0 && keep_lock) {
		esky_outfile_drop_lock();
		kept_lock = hold;
	} else if (hold >= 0) {
		close(hold);
	}
	of->fd = -1;
	dir = dir_of(of->path);
	if (dir) {
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dir);
	}
	free(of->tmp_path);
	free(of->path);
	of->tmp_path = of->path = NULL;
	return 0;

out_abort:
	esky_outfile_abort(of);
	return ret;
}

void esky_outfile_abort(struct esky_outfile *of)
{
	/* Unlink first: under our lock the name is still ours. */
	if (of->tmp_path)
		unlink(of->tmp_path);
	if (of->fd >= 0)
		close(of->fd);
	of->fd = -1;
	free(of->tmp_path);
	free(of->path);
	of->tmp_path = of->path = NULL;
}

static void on_sigxfsz(int sig)
{
	(void)sig;
}

void esky_catch_file_size_signal(void)
{
	struct sigaction sa = { .sa_handler = on_sigxfsz, .sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGXFSZ, &sa, NULL);
}

uint64_t esky_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t esky_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int esky_parse_duration(const char *s, uint64_t *ns)
{
	char *end;
	double v = strtod(s, &end);
	double mult;

	if (end == s || v <= 0)
		return -EINVAL;
	if (!strcmp(end, "ns"))
		mult = 1;
	else if (!strcmp(end, "us"))
		mult = 1e3;
	else if (!strcmp(end, "ms"))
		mult = 1e6;
	else if (!strcmp(end, "s"))
		mult = 1e9;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		mult = 60e9;
	else
		return -EINVAL;
	if (v * mult < 1e6 || v * mult > 1e15)
		return -ERANGE;
	*ns = (uint64_t)(v * mult);
	return 0;
}

int esky_parse_u64(const char *s, uint64_t *out)
{
	static const char hex[] = "0123456789abcdefABCDEF";
	unsigned long long v;

	if (!s)
		return -EINVAL;
	/*
	 * Digits only, checked first: strtoull skips blanks and takes a sign
	 * and, in base 16, a second 0x ("\t5", "0x-1", "0x0x5" were numbers).
	 * Decimal, or hex with 0x: a leading 0 does not mean octal here.
	 */
	errno = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!s[2] || s[2 + strspn(s + 2, hex)])
			return -EINVAL;
		v = strtoull(s + 2, NULL, 16);
	} else {
		if (!s[0] || s[strspn(s, "0123456789")])
			return -EINVAL;
		v = strtoull(s, NULL, 10);
	}
	if (errno) /* ERANGE: more than 64 bits */
		return -EINVAL;
	*out = v;
	return 0;
}

char *esky_fmt_size(uint64_t bytes, char *buf, size_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < ESKY_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, n, "%.1f %s", v, units[u]);
	return buf;
}
