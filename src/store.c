/* The snapshot store, see store.h. */
#include "store.h"
#include "log.h"
#include "trust.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TREE_MAGIC "esky-store 1"

struct esky_store {
	char *dir;
	int lock_fd;
	struct esky_snapinfo *snaps;
	size_t n;
	int current;
	int next_id;
	char **program;        /* the program last run on the store and its arguments, or NULL */
};

const char *esky_snap_cause_name(enum esky_snap_cause c)
{
	switch (c) {
	case ESKY_SNAP_BREAK:
		return "break";
	case ESKY_SNAP_TIMER:
		return "timer";
	default:
		return "manual";
	}
}

static int cause_from_name(const char *s, enum esky_snap_cause *c)
{
	if (!strcmp(s, "manual"))
		*c = ESKY_SNAP_MANUAL;
	else if (!strcmp(s, "break"))
		*c = ESKY_SNAP_BREAK;
	else if (!strcmp(s, "timer"))
		*c = ESKY_SNAP_TIMER;
	else
		return -EINVAL;
	return 0;
}

static void free_program(struct esky_store *st)
{
	for (size_t i = 0; st->program && st->program[i]; i++)
		free(st->program[i]);
	free(st->program);
	st->program = NULL;
}

static void free_snaps(struct esky_store *st)
{
	for (size_t i = 0; i < st->n; i++) {
		free(st->snaps[i].location);
		free(st->snaps[i].note);
	}
	free(st->snaps);
	st->snaps = NULL;
	st->n = 0;
}

/* Tabs and newlines would break the file's columns: they become spaces. */
static void clean_field(char *s)
{
	for (; s && *s; s++)
		if (*s == '\t' || *s == '\n' || *s == '\r')
			*s = ' ';
}

static int lock(struct esky_store *st)
{
	while (flock(st->lock_fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static void unlock(struct esky_store *st)
{
	flock(st->lock_fd, LOCK_UN);
}

/*
 * A whole decimal number of at most max, as save() writes them: no sign,
 * blank or 0x (strtoull and atoi take those, and atoi's overflow is
 * undefined). 0 or -EINVAL.
 */
static int field_u64(const char *s, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (*s < '0' || *s > '9' || x > (max - d) / 10)
			return -EINVAL;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

/* "program" and its tab-separated words (p at the first tab, or ""). */
static int parse_program(struct esky_store *st, char *p)
{
	size_t n = 0;

	free_program(st);
	for (const char *q = p; *q; q++)
		n += *q == '\t';
	/* "program" alone: what save() writes for an empty argv, no program. */
	if (!n)
		return 0;
	st->program = calloc(n + 1, sizeof(*st->program));
	if (!st->program)
		return -ENOMEM;
	n = 0;
	for (char *q = p + 1, *tab; q; q = tab ? tab + 1 : NULL) {
		tab = strchr(q, '\t');
		if (tab)
			*tab = '\0';
		st->program[n] = strdup(q);
		/* (a NULL in the middle would end the list: the rest would leak) */
		if (!st->program[n++]) {
			free_program(st);
			return -ENOMEM;
		}
	}
	return 0;
}

/* A snapshot's line: 8 tab-separated fields, see save(). */
static int parse_snap(struct esky_store *st, char *line, const char *path, int lineno)
{
	struct esky_snapinfo si = { 0 }, *ns;
	char *f[8];
	uint64_t id, parent;
	int nf = 0;

	/* The eighth field takes the rest: a tab in it is a ninth (once ignored). */
	for (char *p = line;;) {
		f[nf++] = p;
		p = strchr(p, '\t');
		if (!p || nf == 8)
			break;
		*p++ = '\0';
	}
	if (nf != 8 || strchr(f[7], '\t'))
		return esky_error(-EBADMSG, "%s:%d: damaged line (not 8 fields)", path, lineno);
	if (field_u64(f[0], ESKY_STORE_MAX_ID, &id) || !id || field_u64(f[1], ESKY_STORE_MAX_ID, &parent) ||
	    cause_from_name(f[2], &si.cause) || field_u64(f[3], UINT64_MAX, &si.run_ns) ||
	    field_u64(f[4], UINT64_MAX, &si.bytes) || field_u64(f[5], UINT64_MAX, &si.created_ns))
		return esky_error(-EBADMSG, "%s:%d: damaged line", path, lineno);
	si.id = (int)id;
	si.parent = (int)parent;
	si.location = strdup(f[6]);
	si.note = strdup(f[7]);
	ns = realloc(st->snaps, (st->n + 1) * sizeof(*ns));
	if (ns)
		st->snaps = ns;
	if (!ns || !si.location || !si.note) {
		free(si.location);
		free(si.note);
		return -ENOMEM;
	}
	st->snaps[st->n++] = si;
	return 0;
}

static int snap_id_cmp(const void *a, const void *b)
{
	const struct esky_snapinfo *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

/*
 * Parse text, len bytes with a NUL after them (written into: lines are
 * cut in place), the tree file at path. On failure the store may hold
 * part of it; the caller closes it or loads again.
 */
static int parse(struct esky_store *st, char *text, size_t len, const char *path)
{
	char *end = text + len, *nl;
	int lineno = 0, ret = 0;
	bool magic = false;

	free_snaps(st);
	free_program(st);
	st->current = 0;
	st->next_id = 1;
	/* A NUL would end the text early: the snapshots after it lost at the next save. */
	nl = memchr(text, '\0', len);
	if (nl)
		return esky_error(-EBADMSG, "%s: damaged (a NUL byte at offset %td)", path, nl - text);
	for (char *line = text; !ret && line < end; line = nl + 1) {
		uint64_t v;

		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			nl = end; /* the NUL after the text */
		*nl = '\0';
		if (++lineno == 1) {
			magic = !strcmp(line, TREE_MAGIC);
			if (!magic)
				break;
			continue;
		}
		if (!*line)
			continue;
		if (!strncmp(line, "current\t", 8)) {
			if (field_u64(line + 8, ESKY_STORE_MAX_ID, &v))
				ret = esky_error(-EBADMSG, "%s:%d: damaged line", path, lineno);
			else
				st->current = (int)v;
		} else if (!strncmp(line, "next\t", 5)) {
			if (field_u64(line + 5, ESKY_STORE_MAX_ID + 1ULL, &v) || !v)
				ret = esky_error(-EBADMSG, "%s:%d: damaged line", path, lineno);
			else
				st->next_id = (int)v;
		} else if (!strcmp(line, "program") || !strncmp(line, "program\t", 8)) {
			ret = parse_program(st, line + 7);
		} else {
			ret = parse_snap(st, line, path, lineno);
		}
	}
	if (!ret && !magic)
		ret = esky_error(-EBADMSG, "%s: not an esky snapshot store", path);
	if (ret)
		return ret;
	/* Sorted by id (store.h), as save() writes them; an id twice would make a loop of the tree. */
	if (st->n > 1) /* (qsort's array may not be NULL, even empty) */
		qsort(st->snaps, st->n, sizeof(*st->snaps), snap_id_cmp);
	for (size_t i = 0; i < st->n; i++) {
		if (i && st->snaps[i].id == st->snaps[i - 1].id)
			return esky_error(-EBADMSG, "%s: damaged: snapshot %d is listed twice", path,
					  st->snaps[i].id);
		if (st->snaps[i].id >= st->next_id)
			st->next_id = st->snaps[i].id + 1;
	}
	return 0;
}

/* Read and parse the tree file; the caller holds the lock. */
static int load(struct esky_store *st)
{
	char path[4096], *text;
	size_t len;
	int ret;

	free_snaps(st);
	free_program(st);
	st->current = 0;
	st->next_id = 1;
	snprintf(path, sizeof(path), "%s/tree", st->dir);
	ret = esky_read_file(path, &text, &len);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return esky_error(ret, "%s: cannot read: %s", path, strerror(-ret));
	ret = parse(st, text, len, path);
	free(text);
	return ret;
}

int esky_store_parse(const char *text, size_t len, const char *name, struct esky_store **out)
{
	struct esky_store *st = calloc(1, sizeof(*st));
	char *copy = malloc(len + 1);
	int ret = -ENOMEM;

	if (st && copy) {
		st->lock_fd = -1;
		memcpy(copy, text, len);
		copy[len] = '\0';
		ret = parse(st, copy, len, name);
	}
	free(copy);
	if (ret) {
		esky_store_close(st);
		return ret;
	}
	*out = st;
	return 0;
}

/* The text of the tree file into b (see store.h); 0 or -ENOMEM. */
static int format(const struct esky_store *st, struct esky_buf *b)
{
	int ret;

	ret = esky_buf_printf(b, "%s\ncurrent\t%d\nnext\t%d\n", TREE_MAGIC, st->current, st->next_id);
	if (!ret && st->program) {
		ret = esky_buf_printf(b, "program");
		for (size_t i = 0; !ret && st->program[i]; i++)
			ret = esky_buf_printf(b, "\t%s", st->program[i]);
		if (!ret)
			ret = esky_buf_printf(b, "\n");
	}
	for (size_t i = 0; !ret && i < st->n; i++) {
		const struct esky_snapinfo *s = &st->snaps[i];

		ret = esky_buf_printf(b, "%d\t%d\t%s\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%s\t%s\n",
				      s->id, s->parent, esky_snap_cause_name(s->cause), s->run_ns,
				      s->bytes, s->created_ns, s->location, s->note);
	}
	return ret;
}

int esky_store_format(const struct esky_store *st, char **text, size_t *len)
{
	struct esky_buf b = { 0 };
	int ret = format(st, &b);

	if (!ret)
		ret = esky_buf_append(&b, "", 1);
	if (ret) {
		esky_buf_free(&b);
		return ret;
	}
	*text = b.data;
	*len = b.len - 1;
	return 0;
}

/* Write the tree file; the caller holds the lock. */
static int save(struct esky_store *st)
{
	struct esky_outfile of;
	struct esky_buf b = { 0 };
	char path[4096];
	int ret;

	snprintf(path, sizeof(path), "%s/tree", st->dir);
	ret = format(st, &b);
	if (!ret)
		ret = esky_outfile_open(&of, path);
	if (!ret) {
		ret = esky_write_all(of.fd, b.data, b.len);
		if (ret) {
			esky_error(ret, "cannot write %s: %s", path, strerror(-ret));
			esky_outfile_abort(&of);
		} else {
			ret = esky_outfile_commit(&of);
		}
	}
	esky_buf_free(&b);
	return ret;
}

/*
 * A name esky puts in a store: lock, tree, tree.tmp..., snap-N.img(.tmp...),
 * and the temporary files of the tree and the images (.tree.esky-tmp...,
 * .snap-N.img.esky-tmp...: a writer killed on the way leaves one).
 */
static bool store_file_name(const char *name)
{
	return !strcmp(name, "lock") || !strncmp(name, "tree", 4) || !strncmp(name, "snap-", 5) ||
	       !strncmp(name, ".tree.", 6) || !strncmp(name, ".snap-", 6);
}

bool esky_store_owns(const char *path, char **store_dir)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
	char tree[PATH_MAX + 8], head[sizeof(TREE_MAGIC)], *real = NULL;
	bool owns = false;
	int fd;

	if (!dir)
		return false;
	/* The tree of the directory the file would be renamed into. */
	if (store_file_name(base) && (real = realpath(dir, NULL)) &&
	    snprintf(tree, sizeof(tree), "%s/tree", real) < (int)sizeof(tree) &&
	    (fd = open(tree, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) >= 0) {
		owns = read(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
		       !memcmp(head, TREE_MAGIC, sizeof(head) - 1) && head[sizeof(head) - 1] == '\n';
		close(fd);
	}
	free(real);
	if (owns && store_dir)
		*store_dir = dir;
	else
		free(dir);
	return owns;
}

/*
 * Before anything is written into dir: it must hold a tree file of ours,
 * or nothing but files of a store (a store whose tree is not written
 * yet). Any other folder is someone else's and is left alone.
 */
static int check_store_dir(const char *dir)
{
	char path[4096], head[sizeof(TREE_MAGIC)];
	struct dirent *de;
	ssize_t len;
	DIR *d;
	int fd;

	if (access(dir, R_OK | X_OK) < 0)
		return esky_error(-errno, "store %s: %s", dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/tree", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0) {
		len = read(fd, head, sizeof(head));
		close(fd);
		if (len != (ssize_t)sizeof(head) || memcmp(head, TREE_MAGIC, sizeof(head) - 1) ||
		    head[sizeof(head) - 1] != '\n')
			return esky_error(-EBADMSG, "%s: not an esky snapshot store", path);
		return 0;
	}
	if (errno != ENOENT)
		return esky_error(-errno, "%s: cannot read: %s", path, strerror(errno));
	d = opendir(dir);
	if (!d)
		return esky_error(-errno, "store %s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    store_file_name(de->d_name))
			continue;
		closedir(d);
		return esky_error(-EEXIST, "store %s: not an esky snapshot store (it holds %s; "
				  "give an empty or new folder)", dir, de->d_name);
	}
	closedir(d);
	return 0;
}

/*
 * Images the tree does not list: a session killed between putting a
 * snapshot's image in place and recording it. A live session keeps the
 * image locked until the tree lists it (esky_outfile_keep_lock): an image
 * we can lock is either recorded by now (the tree, read again under the
 * store's lock, says so) or an orphan, removed with a note. Best effort.
 */
static void remove_orphans(struct esky_store *st)
{
	DIR *d = opendir(st->dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[4096];
		int id = esky_store_file_id(de->d_name), fd;

		if (!id || esky_store_get(st, id))
			continue;
		snprintf(path, sizeof(path), "%s/%s", st->dir, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && lock(st) == 0) {
			if (load(st) == 0 && !esky_store_get(st, id) && unlink(path) == 0)
				pr_note("removed %s, a snapshot its session did not record (it ended first)",
					path);
			unlock(st);
			esky_error_clear();
		}
		close(fd);
	}
	closedir(d);
}

int esky_store_open(const char *dir, bool create, unsigned trust, struct esky_store **out)
{
	bool made = false;
	struct esky_store *st;
	char path[4096];
	struct stat sb;
	int ret;

	/* Another user's store (or a file of it) is refused before it is read. */
	ret = esky_trust_store_dir(dir, trust);
	if (ret)
		return ret;
	/*
	 * Two sessions started together on a new store: the one whose mkdir
	 * comes second finds it made (EEXIST), and opens it as any store.
	 */
	if (stat(dir, &sb) < 0) {
		if (errno != ENOENT || !create)
			return esky_error(-errno, "store %s: %s", dir, strerror(errno));
		if (mkdir(dir, 0700) == 0)
			made = true;
		else if (errno != EEXIST || stat(dir, &sb) < 0)
			return esky_error(-errno, "cannot create the store %s: %s", dir, strerror(errno));
	}
	if (made) {
		/* empty: nothing to check */
	} else if (!S_ISDIR(sb.st_mode)) {
		return esky_error(-ENOTDIR, "store %s: not a directory", dir);
	} else if ((ret = check_store_dir(dir))) {
		return ret;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->dir = strdup(dir);
	snprintf(path, sizeof(path), "%s/lock", dir);
	st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd < 0)
		st->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!st->dir || st->lock_fd < 0) {
		ret = st->dir ? esky_error(-errno, "store %s: %s", dir, strerror(errno)) : -ENOMEM;
		esky_store_close(st);
		return ret;
	}
	/* What was opened, in case the lock was swapped since the look above. */
	ret = esky_trust_fd(st->lock_fd, path, trust | ESKY_TRUST_QUIET);
	if (ret) {
		esky_store_close(st);
		return ret;
	}
	ret = lock(st);
	if (!ret)
		ret = load(st);
	unlock(st);
	if (ret) {
		esky_store_close(st);
		return ret;
	}
	/*
	 * A session killed while it wrote a snapshot or the tree left its
	 * temporary file: a session that only reads (tree, rewind, export)
	 * would keep it for ever. Those of a live writer are locked: kept.
	 * Best effort (a read-only store keeps them).
	 */
	esky_outfile_clean(dir, NULL);
	remove_orphans(st);
	*out = st;
	return 0;
}

int esky_store_create_fresh(const char *base, unsigned trust, struct esky_store **out)
{
	char dir[4096], stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	int ret;

	if (mkdir(base, 0700) < 0 && errno != EEXIST)
		return esky_error(-errno, "cannot create %s: %s", base, strerror(errno));
	/* Stores go under base: its owner could rename or replace them. */
	ret = esky_trust_dir(base, trust);
	if (ret)
		return ret;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	for (int i = 0; i < 1000; i++) {
		if (i)
			snprintf(dir, sizeof(dir), "%s/%s-%d", base, stamp, i);
		else
			snprintf(dir, sizeof(dir), "%s/%s", base, stamp);
		if (mkdir(dir, 0700) == 0)
			return esky_store_open(dir, false, trust, out);
		if (errno != EEXIST)
			return esky_error(-errno, "cannot create the store %s: %s", dir, strerror(errno));
	}
	return esky_error(-EEXIST, "cannot create a store under %s", base);
}

void esky_store_close(struct esky_store *st)
{
	if (!st)
		return;
	free_snaps(st);
	free_program(st);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st->dir);
	free(st);
}

const char *esky_store_dir(const struct esky_store *st)
{
	return st->dir;
}

int esky_store_reload(struct esky_store *st)
{
	int cur = st->current, ret = lock(st);

	if (!ret)
		ret = load(st);
	unlock(st);
	/* Which snapshot this session came from is ours, not the file's. */
	if (cur && esky_store_get(st, cur))
		st->current = cur;
	return ret;
}

const struct esky_snapinfo *esky_store_list(const struct esky_store *st, size_t *n)
{
	*n = st->n;
	return st->snaps;
}

const struct esky_snapinfo *esky_store_get(const struct esky_store *st, int id)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->snaps[i].id == id)
			return &st->snaps[i];
	return NULL;
}

int esky_store_current(const struct esky_store *st)
{
	return st->current;
}

int esky_store_set_program(struct esky_store *st, char *const *argv)
{
	size_t n = 0;
	char **p;
	int ret = lock(st);

	if (ret)
		return ret;
	ret = load(st);
	while (argv[n])
		n++;
	p = calloc(n + 1, sizeof(*p));
	for (size_t i = 0; p && i < n; i++) {
		p[i] = strdup(argv[i]);
		clean_field(p[i]);
	}
	free_program(st);
	st->program = p;
	if (!ret)
		ret = p ? save(st) : -ENOMEM;
	unlock(st);
	return ret;
}

char *const *esky_store_program(const struct esky_store *st)
{
	return st->program && st->program[0] ? st->program : NULL;
}

int esky_store_set_current(struct esky_store *st, int id)
{
	int ret = lock(st);

	if (ret)
		return ret;
	ret = load(st);
	st->current = id;
	if (!ret)
		ret = save(st);
	unlock(st);
	return ret;
}

void esky_store_file_name(int id, char *buf, size_t n)
{
	snprintf(buf, n, "snap-%d.img", id);
}

int esky_store_file_id(const char *name)
{
	const char *p = name + 5;
	int64_t id = 0;

	if (strncmp(name, "snap-", 5) || *p < '1' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		id = id * 10 + (*p - '0');
		if (id > ESKY_STORE_MAX_ID)
			return 0;
	}
	return strcmp(p, ".img") ? 0 : (int)id;
}

char *esky_store_path(const struct esky_store *st, int id)
{
	char name[32], *p;

	/* Only snap-N.img inside the directory: nothing else is a path of the store. */
	if (id < 1 || id > ESKY_STORE_MAX_ID) {
		esky_error(-EINVAL, "store %s: no snapshot can have id %d", st->dir, id);
		return NULL;
	}

	esky_store_file_name(id, name, sizeof(name));
	if (asprintf(&p, "%s/%s", st->dir, name) < 0)
		return NULL;
	return p;
}

int esky_store_reserve(struct esky_store *st, int *id, char **path)
{
	int ret = lock(st);

	if (ret)
		return ret;
	ret = load(st);
	if (!ret && st->next_id > ESKY_STORE_MAX_ID)
		ret = esky_error(-ENOSPC, "store %s: no snapshot number left (the last is %d): "
				 "start a new store", st->dir, ESKY_STORE_MAX_ID);
	if (!ret) {
		*id = st->next_id++;
		ret = save(st);
	}
	unlock(st);
	if (ret)
		return ret;
	*path = esky_store_path(st, *id);
	return *path ? 0 : -ENOMEM;
}

int esky_store_unreserve(struct esky_store *st, int id)
{
	int ret = lock(st);

	if (ret)
		return ret;
	ret = load(st);
	if (!ret && st->next_id == id + 1) {
		st->next_id = id;
		ret = save(st);
	}
	unlock(st);
	return ret;
}

int esky_store_add(struct esky_store *st, const struct esky_snapinfo *si)
{
	struct esky_snapinfo *ns, c = *si;
	int ret = lock(st);

	if (ret)
		return ret;
	ret = load(st);
	if (ret)
		goto out_unlock;
	c.location = strdup(si->location ? si->location : "");
	c.note = strdup(si->note ? si->note : "");
	ns = realloc(st->snaps, (st->n + 1) * sizeof(*ns));
	if (!ns || !c.location || !c.note) {
		free(c.location);
		free(c.note);
		ret = -ENOMEM;
		goto out_unlock;
	}
	clean_field(c.location);
	clean_field(c.note);
	st->snaps = ns;
	/* Keep the list sorted by id. */
	size_t pos = st->n;

	while (pos > 0 && st->snaps[pos - 1].id > c.id) {
		st->snaps[pos] = st->snaps[pos - 1];
		pos--;
	}
	st->snaps[pos] = c;
	st->n++;
	st->current = c.id;
	ret = save(st);
out_unlock:
	unlock(st);
	return ret;
}

static bool in_subtree(const struct esky_store *st, int id, int root)
{
	for (int guard = 0; id && guard < 1000000; guard++) {
		const struct esky_snapinfo *s;

		if (id == root)
			return true;
		s = esky_store_get(st, id);
		id = s ? s->parent : 0;
	}
	return false;
}

int esky_store_forget(struct esky_store *st, int id, int **removed, size_t *nrem)
{
	int *rem = NULL, ret = lock(st);
	size_t k = 0, j = 0;

	*removed = NULL;
	*nrem = 0;
	if (ret)
		return ret;
	ret = load(st);
	if (ret)
		goto out_unlock;
	if (!esky_store_get(st, id)) {
		ret = esky_error(-ENOENT, "no snapshot %d (tree lists them)", id);
		goto out_unlock;
	}
	rem = calloc(st->n, sizeof(*rem));
	if (!rem) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	for (size_t i = 0; i < st->n; i++)
		if (in_subtree(st, st->snaps[i].id, id))
			rem[k++] = st->snaps[i].id;
	for (size_t i = 0; i < st->n; i++) {
		bool gone = false;

		for (size_t r = 0; r < k && !gone; r++)
			gone = st->snaps[i].id == rem[r];
		if (gone) {
			free(st->snaps[i].location);
			free(st->snaps[i].note);
		} else {
			st->snaps[j++] = st->snaps[i];
		}
	}
	st->n = j;
	for (size_t r = 0; r < k; r++)
		if (st->current == rem[r])
			st->current = 0;
	/* The tree first: if it cannot be written, every image is still there. */
	ret = save(st);
	if (ret) {
		load(st);
		goto out_unlock;
	}
	for (size_t i = 0; i < k; i++) {
		char *p = esky_store_path(st, rem[i]);

		if (p && unlink(p) < 0 && errno != ENOENT)
			pr_warn("cannot remove %s: %s", p, strerror(errno));
		free(p);
	}
	*removed = rem;
	*nrem = k;
	rem = NULL;
out_unlock:
	free(rem);
	unlock(st);
	return ret;
}
