/*
 * inotify: its watches, added again by path with the same watch numbers.
 *
 * fdinfo shows each watch as "inotify wd:%x ino:%lx sdev:%x mask:%x ..."
 * (hexadecimal; sdev is the kernel's own encoding, major << 20 | minor):
 * the inode, not its path. An ordinary user cannot open a file by handle
 * (open_by_handle_at wants CAP_DAC_READ_SEARCH), so the path is searched
 * for where a program's watches usually are: the files and directories it
 * has open, its current directory and the directories above it, and a few
 * levels below its current directory, its home and /tmp. A watch whose
 * path is not found is refused, named. Events queued and not read yet
 * cannot be put back: such an inotify is refused too (for now).
 *
 * Thaw adds the watches in the order of their numbers; the kernel numbers
 * watches upwards from the last number it gave, so a gap (a watch removed)
 * is made again by giving numbers up until the right one comes (their
 * IN_IGNORED events are read away before the program gets the fd). Events
 * that arrive between the watches' return and that read are lost.
 */
#include "fdobj.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define SEARCH_DEPTH 3
#define SEARCH_BUDGET 20000 /* directory entries looked at, in all */

struct watch_key {
	dev_t dev;
	ino_t ino;
};

/* Is path the file we look for? */
static bool is_it(const char *path, const struct watch_key *k)
{
	struct stat st;

	return lstat(path, &st) == 0 && st.st_dev == k->dev && st.st_ino == k->ino;
}

/* Breadth first would be kinder to wide trees; depth-limited is enough here. */
static bool search_below(const char *dir, int depth, const struct watch_key *k, int *budget,
			 char *found, size_t n)
{
	DIR *d;
	struct dirent *de;
	bool hit = false;

	if (depth < 0 || *budget <= 0)
		return false;
	d = opendir(dir);
	if (!d)
		return false;
	while (!hit && (de = readdir(d)) && --*budget > 0) {
		char path[PATH_MAX];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "",
			     de->d_name) >= (int)sizeof(path))
			continue;
		if (de->d_ino == k->ino && is_it(path, k)) {
			snprintf(found, n, "%s", path);
			hit = true;
		} else if (de->d_type == DT_DIR && strcmp(path, "/proc") && strcmp(path, "/sys")) {
			hit = search_below(path, depth - 1, k, budget, found, n);
		}
	}
	closedir(d);
	return hit;
}

/* A path of the watched file, looked for where the program's files are. */
static int find_path(pid_t pid, const struct watch_key *k, char *found, size_t n)
{
	char *cwd = NULL, *env = NULL, path[PATH_MAX];
	int *fds = NULL, budget = SEARCH_BUDGET;
	size_t nfds = 0, envlen = 0;
	bool hit = false;

	/* The files and directories it has open, and their directories. */
	if (!esky_proc_list_fds(pid, &fds, &nfds)) {
		for (size_t i = 0; i < nfds && !hit; i++) {
			char what[32], *link = NULL;

			snprintf(what, sizeof(what), "fd/%d", fds[i]);
			if (esky_proc_readlink(pid, what, &link) || link[0] != '/') {
				free(link);
				continue;
			}
			for (int up = 0; up < 2 && !hit; up++) {
				char *slash;

				if (is_it(link, k)) {
					snprintf(found, n, "%s", link);
					hit = true;
				}
				slash = strrchr(link, '/');
				if (!slash)
					break;
				*(slash == link ? slash + 1 : slash) = '\0';
			}
			free(link);
		}
		free(fds);
	}
	/* Its current directory and the ones above it, then a few levels below it. */
	if (!hit && !esky_proc_readlink(pid, "cwd", &cwd) && cwd[0] == '/') {
		snprintf(path, sizeof(path), "%s", cwd);
		for (;;) {
			char *slash = strrchr(path, '/');

			if (is_it(path, k)) {
				snprintf(found, n, "%s", path);
				hit = true;
				break;
			}
			if (!slash || slash == path) {
				hit = is_it("/", k);
				if (hit)
					snprintf(found, n, "/");
				break;
			}
			*slash = '\0';
		}
		if (!hit)
			hit = search_below(cwd, SEARCH_DEPTH, k, &budget, found, n);
	}
	free(cwd);
	/* Its home, and /tmp. */
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	if (!hit && !esky_read_file(path, &env, &envlen)) {
		for (size_t i = 0; i < envlen && !hit; i += strlen(env + i) + 1)
			if (!strncmp(env + i, "HOME=/", 6))
				hit = search_below(env + i + 5, SEARCH_DEPTH, k, &budget, found, n);
	}
	free(env);
	if (!hit)
		hit = search_below("/tmp", SEARCH_DEPTH, k, &budget, found, n);
	return hit ? 0 : -ENOENT;
}

struct frozen_watch {
	struct esky_img_inotify_watch w;
	char path[PATH_MAX];
};

static int cmp_wd(const void *a, const void *b)
{
	const struct frozen_watch *x = a, *y = b;

	return (x->w.wd > y->w.wd) - (x->w.wd < y->w.wd);
}

int esky_fd_inotify_freeze(const struct esky_fdobj_src *src, struct esky_fdobj_frozen *out)
{
	struct esky_buf data = { 0 };
	struct frozen_watch *ws = NULL;
	int pidfd, dup_fd = -1, pending = 0, ret = 0;
	size_t n = 0;
	const char *p;

	/* Events waiting to be read: asked of a duplicate, which reads nothing. */
	pidfd = (int)syscall(SYS_pidfd_open, src->pid, 0);
	if (pidfd >= 0) {
		dup_fd = (int)syscall(SYS_pidfd_getfd, pidfd, src->fd, 0);
		close(pidfd);
	}
	if (dup_fd >= 0) {
		if (ioctl(dup_fd, FIONREAD, &pending) < 0)
			pending = 0;
		close(dup_fd);
	}
	if (pending > 0)
		return esky_error(-EOPNOTSUPP, "fd %d is inotify with %d bytes of events not read "
				  "yet: esky cannot put them back (checkpoint it again once they are "
				  "read, and not into a directory it watches: the checkpoint's file "
				  "makes one)", src->fd, pending);
	for (p = strstr(src->fdinfo, "inotify wd:"); p && !ret; p = strstr(p + 1, "inotify wd:")) {
		unsigned wd, sdev, mask;
		unsigned long ino;
		struct watch_key k;
		struct frozen_watch *nw;

		if (sscanf(p, "inotify wd:%x ino:%lx sdev:%x mask:%x", &wd, &ino, &sdev, &mask) != 4) {
			ret = esky_error(-EPROTO, "fd %d: cannot read its inotify watch \"%.40s\"",
					 src->fd, p);
			break;
		}
		nw = realloc(ws, (n + 1) * sizeof(*ws));
		if (!nw) {
			ret = -ENOMEM;
			break;
		}
		ws = nw;
		k.dev = makedev(sdev >> 20, sdev & 0xfffff);
		k.ino = (ino_t)ino;
		if (find_path(src->pid, &k, ws[n].path, sizeof(ws[n].path))) {
			ret = esky_error(-EOPNOTSUPP, "fd %d is inotify watching inode %lu on device "
					 "%u:%u (watch %u), whose path esky cannot find to watch it "
					 "again", src->fd, ino, major(k.dev), minor(k.dev), wd);
			break;
		}
		ws[n].w = (struct esky_img_inotify_watch){
			.wd = (int32_t)wd,
			.mask = mask,
			.path_len = (uint32_t)strlen(ws[n].path),
		};
		n++;
	}
	/* In the order of their numbers: thaw makes them again in that order. */
	if (n)
		qsort(ws, n, sizeof(*ws), cmp_wd);
	for (size_t i = 0; i < n && !ret; i++) {
		ret = esky_buf_append(&data, &ws[i].w, sizeof(ws[i].w));
		if (!ret)
			ret = esky_buf_append(&data, ws[i].path, ws[i].w.path_len);
	}
	free(ws);
	if (ret) {
		esky_buf_free(&data);
		return ret;
	}
	out->o.kind = ESKY_IMG_OBJ_INOTIFY;
	out->o.v[0] = n;
	out->data = data.data;
	out->data_len = data.len;
	return 0;
}

/* The watches of an image record, each checked against the bytes. */
static int next_watch(const uint8_t *data, size_t len, size_t *pos,
		      struct esky_img_inotify_watch *w, char *path, size_t n)
{
	if (len - *pos < sizeof(*w))
		return -EBADMSG;
	memcpy(w, data + *pos, sizeof(*w));
	*pos += sizeof(*w);
	if (w->path_len == 0 || w->path_len >= n || w->path_len > len - *pos || w->wd <= 0)
		return -EBADMSG;
	memcpy(path, data + *pos, w->path_len);
	path[w->path_len] = '\0';
	*pos += w->path_len;
	return 0;
}

/*
 * Watch path as number wd. The kernel numbers watches upwards from the
 * last one it gave: a lower number is given up (removed) and asked again,
 * until it is wd. Each removal queues an IN_IGNORED, read away after.
 */
static int add_watch_as(int fd, const char *path, uint32_t mask, int wd)
{
	for (;;) {
		int got = inotify_add_watch(fd, path, mask);

		if (got < 0)
			return esky_error(-errno, "cannot watch %s again (inotify): %s", path,
					  strerror(errno));
		if (got == wd)
			return 0;
		if (got > wd)
			return esky_error(-EEXIST, "cannot watch %s again as watch %d (inotify "
					  "gave %d)", path, wd, got);
		inotify_rm_watch(fd, got);
	}
}

int esky_fd_inotify_thaw(const struct esky_img_fdobj *o, const void *data, int fds[2])
{
	char path[PATH_MAX], buf[4096];
	size_t pos = 0, len = (size_t)o->data_len;
	int fd, ret = 0;

	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return esky_error(-errno, "cannot make an inotify: %s", strerror(errno));
	for (uint64_t i = 0; i < o->v[0] && !ret; i++) {
		struct esky_img_inotify_watch w;

		ret = next_watch(data, len, &pos, &w, path, sizeof(path));
		if (ret)
			ret = esky_error(ret, "damaged inotify record (watch %llu)",
					 (unsigned long long)i);
		else
			ret = add_watch_as(fd, path, w.mask, w.wd);
	}
	/* The IN_IGNORED of the numbers given up: the program never knew them. */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	if (ret) {
		close(fd);
		return ret;
	}
	fds[0] = fd;
	return 0;
}
