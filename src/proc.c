/* Readers of /proc/PID, see proc.h. */
#include "proc.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *skip_spaces(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static int parse_hex(const char **pp, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;
	int digits = 0;

	for (;; p++, digits++) {
		int c = *p, d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			break;
		v = v << 4 | (uint64_t)d;
	}
	if (!digits)
		return -EINVAL;
	*pp = p;
	*out = v;
	return 0;
}

static int parse_dec(const char **pp, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	while (isdigit((unsigned char)*p))
		v = v * 10 + (uint64_t)(*p++ - '0');
	*pp = p;
	*out = v;
	return 0;
}

static const struct {
	char code[3];
	uint32_t bit;
} vmflag_names[] = {
	{ "gd", ESKY_VMF_GROWSDOWN }, { "sh", ESKY_VMF_SHARED },
	{ "dc", ESKY_VMF_DONTFORK },  { "wf", ESKY_VMF_WIPEONFORK },
	{ "dd", ESKY_VMF_DONTDUMP },  { "hg", ESKY_VMF_HUGEPAGE },
	{ "nh", ESKY_VMF_NOHUGEPAGE }, { "mg", ESKY_VMF_MERGEABLE },
	{ "lo", ESKY_VMF_LOCKED },    { "io", ESKY_VMF_IO },
	{ "pf", ESKY_VMF_IO },        { "um", ESKY_VMF_UFFD },
	{ "uw", ESKY_VMF_UFFD },      { "ui", ESKY_VMF_UFFD },
	{ "ss", ESKY_VMF_SHADOW_STACK }, { "sl", ESKY_VMF_SEALED },
	{ "de", ESKY_VMF_DONTEXPAND },
	{ "mr", ESKY_VMF_MAYREAD },   { "mw", ESKY_VMF_MAYWRITE },
	{ "me", ESKY_VMF_MAYEXEC },
};

static uint32_t parse_vmflags(const char *p, const char *end)
{
	uint32_t flags = ESKY_VMF_HAS_VMFLAGS;

	while (p < end) {
		p = skip_spaces(p);
		if (p + 2 <= end && (p + 2 == end || p[2] == ' ' || p[2] == '\n')) {
			for (size_t i = 0; i < ESKY_ARRAY_SIZE(vmflag_names); i++)
				if (p[0] == vmflag_names[i].code[0] && p[1] == vmflag_names[i].code[1])
					flags |= vmflag_names[i].bit;
		}
		while (p < end && *p != ' ')
			p++;
	}
	return flags;
}

/* Parse "start-end perms offset dev inode [path]" into v. */
static int parse_maps_line(const char *p, const char *eol, struct esky_vma *v)
{
	uint64_t maj, min, ino;
	static const char deleted[] = " (deleted)";
	size_t len;

	memset(v, 0, sizeof(*v));
	if (parse_hex(&p, &v->start) || *p++ != '-' || parse_hex(&p, &v->end) || *p++ != ' ')
		return -EINVAL;
	if (eol - p < 5)
		return -EINVAL;
	v->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
		  (p[2] == 'x' ? PROT_EXEC : 0);
	v->shared = p[3] == 's';
	p += 4;
	p = skip_spaces(p);
	if (parse_hex(&p, &v->pgoff))
		return -EINVAL;
	p = skip_spaces(p);
	if (parse_hex(&p, &maj) || *p++ != ':' || parse_hex(&p, &min))
		return -EINVAL;
	p = skip_spaces(p);
	if (parse_dec(&p, &ino))
		return -EINVAL;
	v->dev_major = (unsigned)maj;
	v->dev_minor = (unsigned)min;
	v->ino = ino;
	p = skip_spaces(p);
	if (p >= eol)
		return 0;
	len = (size_t)(eol - p);
	if (len > sizeof(deleted) - 1 && !memcmp(eol - (sizeof(deleted) - 1), deleted,
						 sizeof(deleted) - 1)) {
		v->deleted = true;
		len -= sizeof(deleted) - 1;
	}
	v->path = strndup(p, len);
	return v->path ? 0 : -ENOMEM;
}

/* A maps line starts with "hex-hex"; smaps' other lines with "Key:". */
static bool is_maps_line(const char *p)
{
	const char *q = p;

	while (isxdigit((unsigned char)*q))
		q++;
	return q > p && *q == '-';
}

int esky_proc_parse_maps(const char *text, struct esky_vma **out, size_t *nout)
{
	struct esky_vma *vmas = NULL;
	size_t n = 0, cap = 0;
	const char *p = text;
	int ret;

	while (*p) {
		const char *eol = strchr(p, '\n');

		if (!eol)
			eol = p + strlen(p);
		if (is_maps_line(p)) {
			if (n == cap) {
				struct esky_vma *nv;

				cap = cap ? cap * 2 : 64;
				nv = realloc(vmas, cap * sizeof(*vmas));
				if (!nv) {
					ret = -ENOMEM;
					goto out_free;
				}
				vmas = nv;
			}
			ret = parse_maps_line(p, eol, &vmas[n]);
			if (ret)
				goto out_free;
			n++;
		} else if (!strncmp(p, "VmFlags:", 8) && n) {
			vmas[n - 1].vmflags = parse_vmflags(p + 8, eol);
		}
		p = *eol ? eol + 1 : eol;
	}
	*out = vmas;
	*nout = n;
	return 0;

out_free:
	esky_vmas_free(vmas, n);
	return ret;
}

/* The text of /proc/PID/<what>, malloc'd. */
static int read_proc_text(pid_t pid, const char *what, char **text)
{
	char path[96];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	return esky_read_file(path, text, NULL);
}

/* Read /proc/PID/<what> and parse it (parse frees nothing; the text is freed here). */
#define READ_AND_PARSE(ret, pid, what, parse, ...)                                       \
	do {                                                                             \
		char *text_;                                                             \
                                                                                         \
		(ret) = read_proc_text((pid), (what), &text_);                           \
		if (!(ret)) {                                                            \
			(ret) = parse(text_, __VA_ARGS__);                               \
			free(text_);                                                     \
		}                                                                        \
	} while (0)

int esky_proc_read_maps(pid_t pid, bool smaps, struct esky_vma **vmas, size_t *n)
{
	int ret;

	READ_AND_PARSE(ret, pid, smaps ? "smaps" : "maps", esky_proc_parse_maps, vmas, n);
	return ret;
}

void esky_vmas_free(struct esky_vma *vmas, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(vmas[i].path);
	free(vmas);
}

void esky_maps_cache_clear(struct esky_maps_cache *c)
{
	esky_vmas_free(c->vmas, c->n);
	free(c->maps);
	c->vmas = NULL;
	c->maps = NULL;
	c->n = 0;
	c->pid = 0;
}

static int vmas_dup(const struct esky_vma *src, size_t n, struct esky_vma **out)
{
	struct esky_vma *v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i] = src[i];
		v[i].path = NULL;
		if (src[i].path && !(v[i].path = strdup(src[i].path))) {
			esky_vmas_free(v, i);
			return -ENOMEM;
		}
	}
	*out = v;
	return 0;
}

int esky_proc_read_smaps_cached(pid_t pid, struct esky_maps_cache *c, struct esky_vma **vmas,
				size_t *n)
{
	struct esky_vma *fresh;
	size_t fresh_n;
	char *text;
	int ret = read_proc_text(pid, "maps", &text);

	if (ret)
		return ret;
	if (c->maps && c->pid == pid && strcmp(c->maps, text) == 0) {
		free(text);
		c->hits++;
		*n = c->n;
		return vmas_dup(c->vmas, c->n, vmas);
	}
	c->misses++;
	ret = esky_proc_read_maps(pid, true, &fresh, &fresh_n);
	if (ret) {
		free(text);
		return ret;
	}
	esky_maps_cache_clear(c);
	c->pid = pid;
	c->maps = text;
	c->vmas = fresh;
	c->n = fresh_n;
	*n = fresh_n;
	return vmas_dup(fresh, fresh_n, vmas);
}

int esky_proc_parse_stat(const char *text, struct esky_proc_stat *st)
{
	const char *open = strchr(text, '('), *close = strrchr(text, ')'), *p;
	uint64_t f[53];
	size_t len;
	int i;

	memset(st, 0, sizeof(*st));
	if (!open || !close || close < open || close[1] != ' ')
		return -EINVAL;
	len = (size_t)(close - open - 1);
	if (len >= sizeof(st->comm))
		len = sizeof(st->comm) - 1;
	memcpy(st->comm, open + 1, len);
	st->state = close[2];
	/* Fields are numbered from 1 as in proc(5); field 3 is the state. */
	p = close + 3;
	memset(f, 0, sizeof(f));
	for (i = 4; i < 53 && *p; i++) {
		int neg = 0;

		p = skip_spaces(p);
		if (*p == '-') {
			neg = 1;
			p++;
		}
		if (parse_dec(&p, &f[i]))
			return -EINVAL;
		if (neg)
			f[i] = (uint64_t)-(int64_t)f[i];
	}
	if (i < 52)
		return -EINVAL;
	st->ppid = (int)f[4];
	st->pgrp = (int)f[5];
	st->session = (int)f[6];
	st->tty_nr = (int)f[7];
	st->num_threads = (long)f[20];
	st->nice = (int)(int64_t)f[19];
	st->start_time = f[22];
	st->start_code = f[26];
	st->end_code = f[27];
	st->start_stack = f[28];
	st->exit_signal = (int)f[38];
	st->exit_code = (int)f[52]; /* 0 when the kernel has no field 52 (before 3.5) */
	st->start_data = f[45];
	st->end_data = f[46];
	st->start_brk = f[47];
	st->arg_start = f[48];
	st->arg_end = f[49];
	st->env_start = f[50];
	st->env_end = f[51];
	return 0;
}

int esky_proc_read_stat(pid_t pid, struct esky_proc_stat *st)
{
	int ret;

	READ_AND_PARSE(ret, pid, "stat", esky_proc_parse_stat, st);
	return ret;
}

static const char *status_field(const char *text, const char *name)
{
	size_t nl = strlen(name);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, name, nl) && p[nl] == ':')
			return skip_spaces(p + nl + 1);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static uint64_t status_hex(const char *text, const char *name)
{
	const char *p = status_field(text, name);
	uint64_t v = 0;

	if (p)
		parse_hex(&p, &v);
	return v;
}

static long status_dec(const char *text, const char *name, long dflt)
{
	const char *p = status_field(text, name);

	return p ? strtol(p, NULL, 10) : dflt;
}

static void status_ids(const char *text, const char *name, unsigned ids[4])
{
	const char *p = status_field(text, name);

	for (int i = 0; i < 4; i++) {
		uint64_t v = 0;

		if (p) {
			p = skip_spaces(p);
			parse_dec(&p, &v);
		}
		ids[i] = (unsigned)v;
	}
}

int esky_proc_parse_status(const char *text, struct esky_proc_status *st)
{
	const char *um;

	memset(st, 0, sizeof(*st));
	if (!status_field(text, "Threads"))
		return -EINVAL;
	um = status_field(text, "Umask");
	st->umask = um ? (unsigned)strtoul(um, NULL, 8) : 022;
	st->threads = (int)status_dec(text, "Threads", 1);
	st->tracer_pid = (int)status_dec(text, "TracerPid", 0);
	st->seccomp = (int)status_dec(text, "Seccomp", 0);
	st->no_new_privs = (int)status_dec(text, "NoNewPrivs", 0);
	st->sig_pending = status_hex(text, "SigPnd");
	st->shd_pending = status_hex(text, "ShdPnd");
	st->sig_blocked = status_hex(text, "SigBlk");
	st->sig_ignored = status_hex(text, "SigIgn");
	st->sig_caught = status_hex(text, "SigCgt");
	status_ids(text, "Uid", st->uid);
	status_ids(text, "Gid", st->gid);
	st->nspid = (int)status_dec(text, "Pid", 0);
	{
		const char *ns = status_field(text, "NSpid");

		/* "NSpid:\t4711\t2\n": the last number is the innermost namespace's. */
		while (ns && *ns && *ns != '\n') {
			char *end;
			long v = strtol(ns, &end, 10);

			if (end == ns)
				break;
			st->nspid = (int)v;
			ns = end;
		}
	}
	return 0;
}

int esky_proc_read_status(pid_t pid, struct esky_proc_status *st)
{
	int ret;

	READ_AND_PARSE(ret, pid, "status", esky_proc_parse_status, st);
	return ret;
}

int esky_proc_parse_fdinfo(const char *text, struct esky_fdinfo *fi)
{
	const char *pos = status_field(text, "pos"), *flags = status_field(text, "flags");
	const char *mnt = status_field(text, "mnt_id");

	memset(fi, 0, sizeof(*fi));
	if (!pos || !flags)
		return -EINVAL;
	fi->pos = strtoull(pos, NULL, 10);
	fi->flags = (unsigned)strtoul(flags, NULL, 8);
	fi->mnt_id = mnt ? (int)strtol(mnt, NULL, 10) : -1;
	return 0;
}

int esky_proc_read_fdinfo(pid_t pid, int fd, struct esky_fdinfo *fi)
{
	char what[32];
	int ret;

	snprintf(what, sizeof(what), "fdinfo/%d", fd);
	READ_AND_PARSE(ret, pid, what, esky_proc_parse_fdinfo, fi);
	return ret;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* The numeric entries of directory /proc/PID/what (fds, tasks), sorted. */
static int list_numbers(pid_t pid, const char *what, int **out, size_t *nout)
{
	char path[64];
	struct dirent *de;
	int *v = NULL;
	size_t n = 0, cap = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		if (n == cap) {
			int *nv;

			cap = cap ? cap * 2 : 32;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = atoi(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_int);
	*out = v;
	*nout = n;
	return 0;
}

int esky_proc_list_fds(pid_t pid, int **out, size_t *nout)
{
	return list_numbers(pid, "fd", out, nout);
}

int esky_proc_tasks(pid_t pid, int **out, size_t *nout)
{
	return list_numbers(pid, "task", out, nout);
}

int esky_proc_readlink(pid_t pid, const char *what, char **out)
{
	char path[96], buf[PATH_MAX + 32];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*out = strdup(buf);
	return *out ? 0 : -ENOMEM;
}

int esky_proc_children(pid_t pid, int **out, size_t *nout)
{
	char path[64];
	struct dirent *de;
	int *pids = NULL;
	size_t n = 0, cap = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char cpath[320], *text, *p;

		if (de->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", pid, de->d_name);
		if (esky_read_file(cpath, &text, NULL))
			continue;
		for (p = text; *p;) {
			char *end;
			long c = strtol(p, &end, 10);

			if (end == p)
				break;
			if (n == cap) {
				int *np;

				cap = cap ? cap * 2 : 8;
				np = realloc(pids, cap * sizeof(*pids));
				if (!np) {
					free(text);
					free(pids);
					closedir(d);
					return -ENOMEM;
				}
				pids = np;
			}
			pids[n++] = (int)c;
			p = end;
		}
		free(text);
	}
	closedir(d);
	*out = pids;
	*nout = n;
	return 0;
}

int esky_proc_count_timers(pid_t pid, int *nout)
{
	char *text, *p;
	int n = 0, ret;

	ret = read_proc_text(pid, "timers", &text);
	if (ret == -ENOENT) {
		*nout = 0;
		return 0;
	}
	if (ret)
		return ret;
	/* One "ID: n" line per timer ("ClockID:" lines must not count). */
	for (p = text; (p = strstr(p, "ID:")); p += 3)
		if (p == text || p[-1] == '\n')
			n++;
	free(text);
	*nout = n;
	return 0;
}
