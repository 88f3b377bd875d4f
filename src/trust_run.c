/* Images and processes: what esky accepts from other users (trust.h, doc/security.md). */
#include "trust.h"
#include "trust_int.h"
#include "image.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* check_thread: another user's process, left to ptrace's refusal (see there). */
#define NOT_MINE 1

/* At most this many processes in the tree below a pid (esky's trees hold far fewer). */
#define MAX_DESCENDANTS 4096

int esky_trust_chain(struct esky_image *const *chain, size_t n, unsigned flags)
{
	for (size_t i = 0; i < n; i++) {
		int ret = esky_trust_fd(esky_image_fd(chain[i]), esky_image_view(chain[i])->path,
					flags);

		if (ret)
			return ret;
	}
	return 0;
}

static int image_creds(const struct esky_image *img, const char *what, unsigned flags)
{
	const struct esky_img_core *c = esky_image_view(img)->core;
	char then[160], now[160];

	if (c->uid == getuid() && c->gid == getgid())
		return 0;
	trust_user_name(c->uid, then, sizeof(then));
	trust_user_name(getuid(), now, sizeof(now));
	if (getuid() == 0 && (flags & ESKY_TRUST_FORCE)) {
		if (!(flags & ESKY_TRUST_QUIET))
			pr_warn("%s was taken as %s, gid %u; resuming it as %s, gid %u (--force)", what,
				then, c->gid, now, (unsigned)getgid());
		return 0;
	}
	return esky_error(-EPERM, "%s was taken as %s, gid %u, not as you, %s, gid %u: refused%s",
			  what, then, c->gid, now, (unsigned)getgid(),
			  getuid() == 0 ? "; --force resumes it anyway, as root"
					: " (resume it as the user who took it)");
}

int esky_trust_image_creds(const struct esky_image *img, unsigned flags)
{
	const struct esky_tree_header *tree = esky_image_tree(img);
	const char *path = esky_image_view(img)->path;
	char what[4096 + 32];
	int ret;

	ret = image_creds(img, path, flags);
	for (uint32_t i = 1; !ret && tree && i < tree->proc_n; i++) {
		struct esky_image *m;

		if (!tree->procs[i].size)
			continue; /* a zombie: no image, nothing runs */
		ret = esky_image_open_member(img, i, &m);
		if (ret)
			return ret;
		snprintf(what, sizeof(what), "%s (its process %u)", path, tree->procs[i].pid);
		/* One warning for the file is enough. */
		ret = image_creds(m, what, flags | ESKY_TRUST_QUIET);
		esky_image_close(m);
	}
	return ret;
}

/* ---- processes ---- */

/* The hex value of a "Name:\t..." line of /proc status text, 0 if absent. */
static uint64_t status_hex(const char *text, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, name, len) && p[len] == ':')
			return strtoull(p + len + 1, NULL, 16);
	return 0;
}

/*
 * Whether pid is in esky's own user namespace. Capabilities held in a user
 * namespace below ours (a threaded program resumed by esky lives in one
 * the user made) count only there: they give nothing over the machine.
 * Unreadable: assumed the same.
 */
static bool same_userns(pid_t pid)
{
	struct stat mine, its;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	if (stat("/proc/self/ns/user", &mine) < 0 || stat(path, &its) < 0)
		return true;
	return mine.st_dev == its.st_dev && mine.st_ino == its.st_ino;
}

/*
 * One thread (tid) of process pid; what names the process in messages.
 * -ESRCH when it is gone (it ended meanwhile: nothing to refuse).
 */
static int check_thread(pid_t pid, pid_t tid, const char *what, unsigned flags)
{
	struct esky_proc_status ps;
	char path[64], *text;
	size_t len;
	uint64_t caps;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	ret = esky_read_file(path, &text, &len);
	if (ret)
		return ret == -ENOENT ? -ESRCH : esky_error(ret, "%s: %s: %s", what, path, strerror(-ret));
	ret = esky_proc_parse_status(text, &ps);
	caps = status_hex(text, "CapPrm") | status_hex(text, "CapEff");
	free(text);
	if (ret)
		return esky_error(ret, "%s: cannot read %s", what, path);
	for (int k = 1; k < 4; k++) {
		if (ps.uid[k] == ps.uid[0] && ps.gid[k] == ps.gid[0])
			continue;
		return esky_error(-EPERM, "%s runs with mixed credentials (uid %u, euid %u, suid %u, "
				  "gid %u, egid %u, sgid %u): refused (a set-id program, or one "
				  "that changed its ids; esky does not freeze privileged programs)",
				  what, ps.uid[0], ps.uid[1], ps.uid[2], ps.gid[0], ps.gid[1],
				  ps.gid[2]);
	}
	if (ps.uid[0] != getuid()) {
		/*
		 * Another user's process: an ordinary user cannot attach to it,
		 * and ptrace's refusal says why (ptrace_scope, another user, a
		 * tracer); root is refused here unless FORCE.
		 */
		return getuid() == 0 ? trust_other_owner(what, ps.uid[0], flags) : NOT_MINE;
	} else if (ps.gid[0] != getgid()) {
		return esky_error(-EPERM, "%s runs with gid %u, not yours (%u): refused (esky freezes "
				  "a program only with the ids it would resume it with)", what,
				  ps.gid[0], (unsigned)getgid());
	}
	if (caps && getuid() != 0 && same_userns(pid))
		return esky_error(-EPERM, "%s holds capabilities (CapPrm/CapEff %016" PRIx64 "): "
				  "refused (esky does not freeze privileged programs)", what, caps);
	return 0;
}

/* The program process pid runs must not be set-user-ID or set-group-ID. */
static int check_exe(pid_t pid, const char *what)
{
	char link[64], exe[4096];
	struct stat st;
	ssize_t len;

	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	/* Unreadable (another user's process): the attach that follows says so. */
	if (stat(link, &st) < 0)
		return 0;
	if (!(st.st_mode & S_ISUID) && !((st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP)))
		return 0;
	len = readlink(link, exe, sizeof(exe) - 1);
	exe[len > 0 ? len : 0] = '\0';
	return esky_error(-EPERM, "%s runs %s, a set-%s-ID program (owner uid %u, gid %u): refused "
			  "(esky does not freeze privileged programs)", what, len > 0 ? exe : link,
			  st.st_mode & S_ISUID ? "user" : "group", (unsigned)st.st_uid,
			  (unsigned)st.st_gid);
}

/* Append the children of every thread of pid to *list. */
static int add_children(pid_t pid, pid_t **list, size_t *n)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0; /* gone */
	while (!ret && (de = readdir(d))) {
		char cpath[64 + 256 + 16], *text, *p, *end;
		size_t len;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(cpath, sizeof(cpath), "%s/%s/children", path, de->d_name);
		if (esky_read_file(cpath, &text, &len))
			continue;
		for (p = text;; p = end) {
			long c = strtol(p, &end, 10);
			pid_t *nl;

			if (end == p)
				break;
			if (*n >= MAX_DESCENDANTS) {
				ret = esky_error(-E2BIG, "pid %d: more than %d descendants", (int)pid,
						 MAX_DESCENDANTS);
				break;
			}
			nl = realloc(*list, (*n + 1) * sizeof(**list));
			if (!nl) {
				ret = -ENOMEM;
				break;
			}
			*list = nl;
			(*list)[(*n)++] = (pid_t)c;
		}
		free(text);
	}
	closedir(d);
	return ret;
}

static int check_threads(pid_t pid, const char *what, unsigned flags)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : esky_error(-errno, "%s: %s: %s", what, path,
							     strerror(errno));
	while (!ret && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		ret = check_thread(pid, (pid_t)atoi(de->d_name), what, flags);
		if (ret == -ESRCH)
			ret = 0; /* a thread that ended meanwhile */
	}
	closedir(d);
	return ret;
}

int esky_trust_process(pid_t pid, unsigned flags)
{
	pid_t *procs = malloc(sizeof(*procs));
	size_t n = 1;
	int ret = 0;

	if (!procs)
		return -ENOMEM;
	procs[0] = pid;
	/* procs grows as each process's children are found: the whole tree, breadth first. */
	for (size_t i = 0; !ret && i < n; i++) {
		char what[64];

		if (i)
			snprintf(what, sizeof(what), "pid %d (a descendant of pid %d)", (int)procs[i],
				 (int)pid);
		else
			snprintf(what, sizeof(what), "pid %d", (int)pid);
		ret = check_exe(procs[i], what);
		if (!ret)
			ret = check_threads(procs[i], what, flags);
		if (ret == NOT_MINE) {
			ret = 0; /* the attach fails, naming the cause: its tree is not ours to read */
			break;
		}
		if (ret == -ESRCH && i) {
			ret = 0; /* a descendant that ended meanwhile */
			continue;
		}
		if (ret == -ESRCH) {
			ret = 0; /* the process itself: whatever freezes it says it is gone */
			break;
		}
		if (!ret)
			ret = add_children(procs[i], &procs, &n);
		/* Warned once for the process: not again for each descendant. */
		flags |= ESKY_TRUST_QUIET;
	}
	free(procs);
	return ret;
}

int esky_trust_store_chain(struct esky_image *const *chain, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		const struct esky_image_view *v = esky_image_view(chain[i]);
		const char *hint = esky_image_str(chain[i], v->hdr->parent_hint);

		if (!esky_trust_snap_name(hint))
			return esky_error(-EPERM, "%s: its parent is named %s, not a snapshot of the "
					  "store (snap-N.img): refused", v->path, hint);
	}
	return 0;
}
