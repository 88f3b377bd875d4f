/* An inotify comes back with its watches, each on its path with its number (a removed watch leaves a gap in the numbers, kept) and its mask: after the resume, a file made in the watched directory and a change to the watched file are reported with the watch numbers the program knows; one made in a directory no longer watched is not. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "cap.h"

static char dir[] = "./inotify-XXXXXX";

/* The next event within 5 s: its watch, mask and name. */
static void next_event(int fd, int *wd, uint32_t *mask, char *name, size_t n)
{
	static char buf[4096] __attribute__((aligned(8)));
	static size_t have, at;
	const struct inotify_event *ev;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (at >= have) {
		ssize_t r;

		CHECK_INT(poll(&p, 1, 5000), 1);
		r = read(fd, buf, sizeof(buf));
		CHECK_SYS(r);
		have = (size_t)r;
		at = 0;
	}
	ev = (const struct inotify_event *)(buf + at);
	*wd = ev->wd;
	*mask = ev->mask;
	snprintf(name, n, "%s", ev->len ? ev->name : "");
	at += sizeof(*ev) + ev->len;
}

int main(void)
{
	char a[256], b[256], c[256], f[256], name[600];
	int fd, wa, wb, wc, wf, wd, tmp;
	uint32_t mask;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	snprintf(c, sizeof(c), "%s/c", dir);
	snprintf(f, sizeof(f), "%s/file", dir);
	CHECK_SYS(mkdir(a, 0700));
	CHECK_SYS(mkdir(b, 0700));
	CHECK_SYS(mkdir(c, 0700));
	tmp = open(f, O_CREAT | O_WRONLY, 0600);
	CHECK_SYS(tmp);
	close(tmp);

	fd = inotify_init1(IN_NONBLOCK);
	CHECK_SYS(fd);
	wa = inotify_add_watch(fd, a, IN_CREATE | IN_DELETE);
	wb = inotify_add_watch(fd, b, IN_CREATE);
	wc = inotify_add_watch(fd, c, IN_CREATE | IN_ONLYDIR);
	wf = inotify_add_watch(fd, f, IN_MODIFY);
	CHECK(wa > 0 && wb > 0 && wc > 0 && wf > 0);
	/* b no longer watched: its number is a gap; its IN_IGNORED read now. */
	CHECK_SYS(inotify_rm_watch(fd, wb));
	next_event(fd, &wd, &mask, name, sizeof(name));
	CHECK_INT(wd, wb);
	CHECK(mask & IN_IGNORED);
	printf("4 watches, 1 removed\n");

	cap_sync();

	/* Nothing happened meanwhile: nothing to read. */
	CHECK(read(fd, name, sizeof(name)) < 0 && errno == EAGAIN);
	tmp = open(b, O_RDONLY);
	CHECK_SYS(tmp);
	close(tmp);
	snprintf(name, sizeof(name), "%s/new", b);
	tmp = open(name, O_CREAT | O_WRONLY, 0600); /* in b: not reported */
	CHECK_SYS(tmp);
	close(tmp);
	snprintf(name, sizeof(name), "%s/made", a);
	tmp = open(name, O_CREAT | O_WRONLY, 0600);
	CHECK_SYS(tmp);
	close(tmp);
	next_event(fd, &wd, &mask, name, sizeof(name));
	printf("in a: %s, %s %s\n", wd == wa ? "its watch" : "another watch",
	       mask & IN_CREATE ? "IN_CREATE" : "?", name);
	snprintf(name, sizeof(name), "%s/sub", c);
	CHECK_SYS(mkdir(name, 0700));
	next_event(fd, &wd, &mask, name, sizeof(name));
	printf("in c: %s, %s%s %s\n", wd == wc ? "its watch" : "another watch",
	       mask & IN_CREATE ? "IN_CREATE" : "?", mask & IN_ISDIR ? "|IN_ISDIR" : "", name);
	tmp = open(f, O_WRONLY);
	CHECK_SYS(tmp);
	CHECK_INT(write(tmp, "x", 1), 1);
	close(tmp);
	next_event(fd, &wd, &mask, name, sizeof(name));
	printf("the file: %s, %s\n", wd == wf ? "its watch" : "another watch",
	       mask & IN_MODIFY ? "IN_MODIFY" : "?");
	CHECK(read(fd, name, sizeof(name)) < 0 && errno == EAGAIN);
	/* A new watch gets a number no other has. */
	wd = inotify_add_watch(fd, b, IN_CREATE);
	CHECK(wd > 0 && wd != wa && wd != wc && wd != wf);
	printf("a new watch has a number of its own\n");

	snprintf(name, sizeof(name), "rm -rf %.200s", dir);
	CHECK_INT(system(name), 0);
	return 0;
}
