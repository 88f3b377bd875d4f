/*
 * What esky accepts from other users, see trust.h and doc/security.md:
 * files, directories and stores here (no image, no process: the store's
 * fuzz targets link it alone); images and processes in trust_run.c.
 */
#include "trust.h"
#include "trust_int.h"
#include "log.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void trust_user_name(uid_t uid, char *buf, size_t n)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];

	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, n, "%s (uid %u)", res->pw_name, (unsigned)uid);
	else
		snprintf(buf, n, "uid %u", (unsigned)uid);
}

int trust_other_owner(const char *what, uid_t owner, unsigned flags)
{
	char who[160];

	trust_user_name(owner, who, sizeof(who));
	if (getuid() == 0 && (flags & ESKY_TRUST_FORCE)) {
		if (!(flags & ESKY_TRUST_QUIET))
			pr_warn("%s belongs to another user, %s; using it anyway (--force)", what, who);
		return 0;
	}
	if (getuid() == 0)
		return esky_error(-EPERM, "%s belongs to another user, %s: refused; --force uses it "
				  "anyway", what, who);
	return esky_error(-EPERM, "%s belongs to another user, %s: refused (only root may use "
			  "it, with --force)", what, who);
}

int esky_trust_self(void)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return esky_error(-errno, "cannot read esky's own ids: %s", strerror(errno));
	if (ru != eu || ru != su || rg != eg || rg != sg)
		return esky_error(-EPERM, "esky runs set-user-ID or set-group-ID (uid %u, euid %u, gid "
				  "%u, egid %u): refused; it needs no privilege, remove the bit",
				  (unsigned)ru, (unsigned)eu, (unsigned)rg, (unsigned)eg);
	return 0;
}

static int trust_stat(const struct stat *st, const char *name, unsigned flags)
{
	if (st->st_uid == getuid())
		return 0;
	return trust_other_owner(name, st->st_uid, flags);
}

int esky_trust_path(const char *path, unsigned flags)
{
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	return trust_stat(&st, path, flags);
}

int esky_trust_dir(const char *dir, unsigned flags)
{
	struct stat st;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	return trust_stat(&st, dir, flags);
}

int esky_trust_fd(int fd, const char *name, unsigned flags)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return esky_error(-errno, "%s: %s", name, strerror(errno));
	return trust_stat(&st, name, flags);
}

/* ---- stores ---- */

bool esky_trust_snap_name(const char *name)
{
	return esky_store_file_id(name) != 0;
}

int esky_trust_store_dir(const char *dir, unsigned flags)
{
	char what[4096 + 300];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int ret;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0; /* made afresh, or refused by the store with its own message */
	snprintf(what, sizeof(what), "the store %s", dir);
	ret = trust_stat(&st, what, flags);
	if (ret)
		return ret;
	/* Another's, accepted with a warning: its files need no warning of their own. */
	if (st.st_uid != getuid())
		flags |= ESKY_TRUST_QUIET;
	d = opendir(dir);
	if (!d)
		return 0; /* unreadable: the store says so */
	while (!ret && (de = readdir(d))) {
		const char *nm = de->d_name;

		if (strcmp(nm, "tree") && strcmp(nm, "lock") && strncmp(nm, "snap-", 5))
			continue;
		/* Symbolic links followed: what the store would read. A dangling one is the store's. */
		if (fstatat(dirfd(d), nm, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		snprintf(what, sizeof(what), "%s/%s", dir, nm);
		ret = trust_stat(&st, what, flags);
	}
	closedir(d);
	return ret;
}
