/* Rewind a live program in place, see rewind.h. */
#include "rewind.h"
#include "hash.h"
#include "image_format.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE ESKY_PAGE_SIZE
#define SPAN_MAX_PAGES 256u /* written 1 MiB at a time */

/* Not possible here: said in the debug log, nothing changed. */
#define NOT_HERE(...) (pr_debug("rewind in place: " __VA_ARGS__), -EAGAIN)

/* Pages to write, each span within one mapping of the snapshot. */
struct span {
	uint64_t start, npages;
	size_t vma;
};

struct spans {
	struct span *v;
	size_t n, cap;
	uint64_t pages;
};

static int spans_add(struct spans *s, uint64_t start, uint64_t npages, size_t vma)
{
	struct span *last = s->n ? &s->v[s->n - 1] : NULL;

	s->pages += npages;
	if (last && last->vma == vma && last->start + last->npages * PAGE == start &&
	    last->npages + npages <= SPAN_MAX_PAGES) {
		last->npages += npages;
		return 0;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct span *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = (struct span){ start, npages, vma };
	return 0;
}

/* ---- the shape: what must be the same for a rewind in place ---- */

static bool private_memory(uint32_t kind)
{
	return kind == ESKY_IMG_VMA_ANON || kind == ESKY_IMG_VMA_FILE_PRIVATE;
}

/*
 * A stretch of address space as the kernel may split or merge it: where
 * two mappings meet with the same protection and backing (the same file
 * at following offsets), one region. The kernel merges mappings or not
 * for reasons that are not the program's (a userfaultfd registration
 * keeps two apart), so regions, not mappings, are compared.
 */
struct region {
	uint64_t start, end, pgoff, ino;
	uint32_t prot;
	bool shared;
};

/*
 * Field by field, never memcmp: the padding after shared is whatever the
 * compound literal's stack slot held (under ASan it differed, and 107 of
 * dirty.patterns-uffd's 116 rewinds thawed instead of rewinding in place).
 */
static bool region_same(const struct region *a, const struct region *b)
{
	return a->start == b->start && a->end == b->end && a->pgoff == b->pgoff &&
	       a->ino == b->ino && a->prot == b->prot && a->shared == b->shared;
}

static void region_add(struct region *r, size_t *n, struct region x)
{
	struct region *p = *n ? &r[*n - 1] : NULL;

	if (p && p->end == x.start && p->prot == x.prot && p->shared == x.shared &&
	    p->ino == x.ino && (!x.ino || p->pgoff + (p->end - p->start) == x.pgoff)) {
		p->end = x.end;
		return;
	}
	r[(*n)++] = x;
}

static bool covered(const struct esky_image_view *v, uint64_t a)
{
	for (size_t k = 0; k < v->vma_n; k++)
		if (v->vmas[k].start <= a && a < v->vmas[k].end)
			return true;
	return false;
}

/*
 * The same memory at the same places. One mapping more is allowed: the
 * page a thaw gives the command line (arg_start points into it; ps reads
 * it), when the snapshot was taken before the program was ever thawed.
 */
static int check_maps(pid_t pid, const struct esky_image_view *v)
{
	struct region *now = NULL, *then = NULL;
	size_t n, nn = 0, nt = 0;
	struct esky_proc_stat ps;
	struct esky_vma *vmas;
	int ret = esky_proc_read_stat(pid, &ps);

	if (!ret)
		ret = esky_proc_read_maps(pid, false, &vmas, &n);
	if (ret)
		return ret;
	now = calloc(n + 1, sizeof(*now));
	then = calloc(v->vma_n + 1, sizeof(*then));
	if (!now || !then) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < v->vma_n && !ret; k++) {
		const struct esky_img_vma *m = &v->vmas[k];

		if (!private_memory(m->kind) && m->kind != ESKY_IMG_VMA_FILE_SHARED &&
		    m->kind != ESKY_IMG_VMA_VDSO && m->kind != ESKY_IMG_VMA_VVAR &&
		    m->kind != ESKY_IMG_VMA_VVAR_VCLOCK)
			ret = NOT_HERE("shared memory at 0x%" PRIx64, m->start);
		region_add(then, &nt, (struct region){
			.start = m->start, .end = m->end, .prot = m->prot,
			.shared = m->kind == ESKY_IMG_VMA_FILE_SHARED,
			.ino = m->file >= 0 && (size_t)m->file < v->file_n ? v->files[m->file].ino : 0,
			.pgoff = m->pgoff });
	}
	for (size_t i = 0; i < n && !ret; i++) {
		if (vmas[i].start >= ARCH_TASK_SIZE)
			continue; /* [vsyscall]: not in images */
		if (ps.arg_start >= vmas[i].start && ps.arg_start < vmas[i].end && !vmas[i].path &&
		    !vmas[i].shared && !covered(v, ps.arg_start))
			continue;
		region_add(now, &nn, (struct region){
			.start = vmas[i].start, .end = vmas[i].end, .prot = (uint32_t)vmas[i].prot,
			.shared = vmas[i].shared, .ino = vmas[i].ino, .pgoff = vmas[i].pgoff });
	}
	for (size_t i = 0; i < nn && i < nt && !ret; i++)
		if (!region_same(&now[i], &then[i]))
			ret = NOT_HERE("the memory at 0x%" PRIx64 "-0x%" PRIx64 " is another now",
				       then[i].start, then[i].end);
	if (!ret && nn != nt)
		ret = NOT_HERE("mappings were made or removed since");
out:
	free(now);
	free(then);
	esky_vmas_free(vmas, n);
	return ret;
}

/* A file position to set back. */
struct fd_fix {
	int fd;
	uint64_t pos;
};

static const struct esky_img_fd *image_fd(const struct esky_image_view *v, int fd)
{
	for (size_t i = 0; i < v->fd_n; i++)
		if (v->fds[i].fd == fd)
			return &v->fds[i];
	return NULL;
}

static int check_fd(pid_t pid, const struct esky_image_view *v, const struct esky_img_fd *f,
		    struct fd_fix *fixes, size_t *nfix)
{
	char path[64];
	struct esky_fdinfo fi;
	struct stat sb;
	const struct esky_img_file *file;

	switch (f->kind) {
	case ESKY_IMG_FD_STDIO:
		return 0;
	case ESKY_IMG_FD_DUP:
		if (syscall(SYS_kcmp, pid, pid, KCMP_FILE, f->fd, f->dup_of) != 0)
			return NOT_HERE("fd %d no longer shares fd %d's file", f->fd, f->dup_of);
		return 0;
	case ESKY_IMG_FD_FILE:
		break;
	default:
		return NOT_HERE("fd %d is not a file", f->fd);
	}
	if (f->file < 0 || (size_t)f->file >= v->file_n)
		return NOT_HERE("fd %d names no file", f->fd);
	file = &v->files[f->file];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, f->fd);
	if (stat(path, &sb) || (uint64_t)sb.st_dev != file->dev || (uint64_t)sb.st_ino != file->ino)
		return NOT_HERE("fd %d is another file", f->fd);
	if (esky_proc_read_fdinfo(pid, f->fd, &fi) || fi.flags != f->flags)
		return NOT_HERE("fd %d's flags changed", f->fd);
	if (fi.pos == f->pos)
		return 0;
	if (!S_ISREG(sb.st_mode) || *nfix == ESKY_SCRATCH_CALLS / 2)
		return NOT_HERE("fd %d's position changed", f->fd);
	fixes[(*nfix)++] = (struct fd_fix){ f->fd, f->pos };
	return 0;
}

static int check_fds(pid_t pid, const struct esky_image_view *v, struct fd_fix *fixes,
		     size_t *nfix)
{
	char path[64];
	struct dirent *de;
	size_t seen = 0;
	int ret = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		const struct esky_img_fd *f;

		if (de->d_name[0] == '.')
			continue;
		f = image_fd(v, atoi(de->d_name));
		if (!f)
			ret = NOT_HERE("fd %s was opened since", de->d_name);
		else
			ret = check_fd(pid, v, f, fixes, nfix);
		seen++;
	}
	closedir(d);
	if (!ret && seen != v->fd_n)
		ret = NOT_HERE("an fd was closed since");
	return ret;
}

static int check_shape(const struct esky_rewind_in *in, const struct esky_image_view *v,
		       struct fd_fix *fixes, size_t *nfix)
{
	pid_t pid = esky_tracee_pid(in->t);
	const struct esky_img_core *c = v->core;
	struct esky_proc_status ps;
	struct esky_rseq_conf rc;
	char path[64], buf[4096], *text;
	size_t tlen;
	ssize_t len;
	int ret;

	if (esky_image_tree(in->chain[0]))
		return NOT_HERE("a process tree");
	if (v->thread_n || v->sig_n)
		return NOT_HERE("the snapshot has threads or pending signals");
	ret = esky_proc_read_status(pid, &ps);
	if (ret)
		return ret;
	if (ps.threads != 1 || ps.sig_pending || ps.shd_pending)
		return NOT_HERE("the program has threads or pending signals");
	if ((uint32_t)ps.no_new_privs != c->no_new_privs)
		return NOT_HERE("no_new_privs changed");
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	ret = esky_read_file(path, &text, &tlen);
	if (ret)
		return ret;
	free(text);
	if (tlen)
		return NOT_HERE("the program has children");
	if (esky_tracee_get_rseq(in->t, &rc))
		memset(&rc, 0, sizeof(rc));
	if (rc.ptr != c->rseq_ptr || rc.len != c->rseq_len || (rc.len && rc.sig != c->rseq_sig))
		return NOT_HERE("rseq registration changed");
	if (c->cwd) {
		snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
		len = readlink(path, buf, sizeof(buf) - 1);
		if (len < 0 || (buf[len] = '\0', strcmp(buf, esky_image_str(in->chain[0], c->cwd))))
			return NOT_HERE("the working directory changed");
	}
	ret = check_maps(pid, v);
	if (!ret)
		ret = check_fds(pid, v, fixes, nfix);
	return ret;
}

/* ---- memory ---- */

static size_t hash_lower(const struct esky_page_hash *h, size_t n, uint64_t va)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (h[mid].vaddr < va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Pages of [a, b) whose checksums differ between the two snapshots (or that one lacks). */
static int diff_hashes(const struct esky_rewind_in *in, uint64_t a, uint64_t b, size_t vma,
		       struct spans *out)
{
	size_t i = hash_lower(in->from, in->from_n, a), j = hash_lower(in->to, in->to_n, a);
	int ret = 0;

	while (!ret) {
		uint64_t fa = i < in->from_n && in->from[i].vaddr < b ? in->from[i].vaddr : UINT64_MAX;
		uint64_t ta = j < in->to_n && in->to[j].vaddr < b ? in->to[j].vaddr : UINT64_MAX;

		if (fa == UINT64_MAX && ta == UINT64_MAX)
			break;
		if (fa == ta) {
			if (in->from[i].hash != in->to[j].hash)
				ret = spans_add(out, fa, 1, vma);
			i++;
			j++;
		} else if (fa < ta) {
			ret = spans_add(out, fa, 1, vma);
			i++;
		} else {
			ret = spans_add(out, ta, 1, vma);
			j++;
		}
	}
	return ret;
}

static int find_differences(const struct esky_rewind_in *in, const struct esky_image_view *v,
			    struct spans *out, struct esky_rewind_stats *st)
{
	int ret = 0;

	for (size_t k = 0; k < v->vma_n && !ret; k++) {
		const struct esky_img_vma *m = &v->vmas[k];
		uint64_t addr = m->start;

		if (!private_memory(m->kind))
			continue;
		st->pages_compared += (m->end - m->start) / PAGE;
		while (addr < m->end && !ret) {
			size_t left = (size_t)((m->end - addr) / PAGE);
			size_t u = in->unchanged ? in->unchanged(in->unchanged_ctx, addr, left) : 0;

			if (!u) {
				ret = spans_add(out, addr, 1, k);
				addr += PAGE;
			} else {
				ret = diff_hashes(in, addr, addr + u * PAGE, k, out);
				addr += u * PAGE;
			}
			if (out->pages > in->max_pages)
				return NOT_HERE("more than %" PRIu64 " pages differ", in->max_pages);
		}
	}
	return ret;
}

struct fill {
	struct esky_image *const *chain;
	uint64_t start;
	char *buf;
};

static int fill_piece(void *ctx, uint64_t vaddr, uint64_t npages, uint32_t kind, size_t level,
		      uint64_t file_off, const uint64_t *hashes)
{
	struct fill *f = ctx;
	char *dst = f->buf + (vaddr - f->start);
	int ret;

	if (kind != ESKY_IMG_PAGES_DATA) {
		memset(dst, 0, npages * PAGE);
		return 0;
	}
	ret = esky_pread_all(esky_image_fd(f->chain[level]), dst, npages * PAGE, (off_t)file_off);
	if (ret)
		return esky_error(ret, "%s: cannot read pages: %s",
				  esky_image_view(f->chain[level])->path, strerror(-ret));
	for (uint64_t k = 0; k < npages; k++) {
		int zero;

		if (esky_hash_page(dst + k * PAGE, &zero) != hashes[k])
			return esky_error(-EIO, "%s: the page at 0x%" PRIx64 " is damaged "
					  "(checksum mismatch)",
					  esky_image_view(f->chain[level])->path, vaddr + k * PAGE);
	}
	return 0;
}

/* The file behind a private mapping, for pages no image stores: it must be unchanged. */
static int open_mapped_file(const struct esky_rewind_in *in, const struct esky_image_view *v,
			    const struct esky_img_vma *m, int *fd)
{
	const struct esky_img_file *file;
	const char *path;
	struct stat sb;

	if (m->file < 0 || (size_t)m->file >= v->file_n)
		return esky_error(-EINVAL, "%s: a file mapping without its file", v->path);
	file = &v->files[m->file];
	path = esky_image_str(in->chain[0], file->path);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return esky_error(-errno, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(*fd, &sb) || (uint64_t)sb.st_ino != file->ino || (uint64_t)sb.st_size != file->size ||
	    (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec != file->mtime_ns) {
		close(*fd);
		*fd = -1;
		return esky_error(-ESTALE, "%s has changed since the snapshot", path);
	}
	return 0;
}

/* Ask the kernel for a piece's page data now: the reads that follow find it in. */
static int readahead_piece(void *ctx, uint64_t vaddr, uint64_t npages, uint32_t kind, size_t level,
			   uint64_t file_off, const uint64_t *hashes)
{
	struct esky_image *const *chain = ctx;

	(void)vaddr;
	(void)hashes;
	if (kind == ESKY_IMG_PAGES_DATA)
		posix_fadvise(esky_image_fd(chain[level]), (off_t)file_off, (off_t)(npages * PAGE),
			      POSIX_FADV_WILLNEED);
	return 0;
}

static int write_spans(const struct esky_rewind_in *in, const struct esky_image_view *v,
		       const struct spans *d, struct esky_rewind_stats *st)
{
	char *buf = malloc(SPAN_MAX_PAGES * PAGE);
	size_t file_vma = SIZE_MAX;
	int file_fd = -1, ret = buf ? 0 : -ENOMEM;

	/*
	 * The pages are scattered over the chain's images, which went to the
	 * disk around the page cache: one read at a time cost ~60 us a page
	 * (a first rewind of 400 pages: 24 ms). All asked for first, they
	 * come in together.
	 */
	for (size_t i = 0; i < d->n && !ret; i++)
		esky_image_resolve(in->chain, in->n, d->v[i].start,
				   d->v[i].start + d->v[i].npages * PAGE, readahead_piece,
				   (void *)in->chain);

	for (size_t i = 0; i < d->n && !ret; i++) {
		const struct span *s = &d->v[i];
		const struct esky_img_vma *m = &v->vmas[s->vma];
		size_t len = s->npages * PAGE;
		struct fill f = { in->chain, s->start, buf };

		memset(buf, 0, len);
		if (m->kind == ESKY_IMG_VMA_FILE_PRIVATE) {
			ssize_t got;

			if (file_vma != s->vma) {
				if (file_fd >= 0)
					close(file_fd);
				file_vma = s->vma;
				ret = open_mapped_file(in, v, m, &file_fd);
				if (ret)
					break;
			}
			/* Past the end of the file: zeros, as the kernel maps it. */
			got = pread(file_fd, buf, len, (off_t)(m->pgoff + (s->start - m->start)));
			if (got < 0) {
				ret = esky_error(-errno, "cannot read a mapped file: %s", strerror(errno));
				break;
			}
		}
		ret = esky_image_resolve(in->chain, in->n, s->start, s->start + len, fill_piece, &f);
		if (!ret)
			ret = esky_tracee_write_mem(in->t, s->start, buf, len);
		if (!ret)
			st->pages_written += s->npages;
	}
	if (file_fd >= 0)
		close(file_fd);
	free(buf);
	return ret;
}

/* ---- the rest of the process ---- */

/* What the setters read, in the scratch memory's data page. */
struct set_layout {
	uint64_t sigaction[64][4];
	uint64_t altstack[3];
	uint64_t itimer[3][4];
	uint64_t rlimit[16][2];
	char comm[16];
};
_Static_assert(sizeof(struct set_layout) <= ESKY_SCRATCH_DATA, "the settings fit");

static void add_call(struct esky_batch_call *calls, size_t *n, long nr, long a0, long a1, long a2,
		     long a3)
{
	calls[(*n)++] = (struct esky_batch_call){ .nr = nr, .a = { a0, a1, a2, a3 } };
}

static int set_process_state(const struct esky_rewind_in *in, const struct esky_image_view *v,
			     const struct fd_fix *fixes, size_t nfix)
{
	const struct esky_img_core *c = v->core;
	struct esky_batch_call calls[ESKY_SCRATCH_CALLS];
	struct esky_scratch sc = { 0 };
	struct set_layout sl;
	size_t nc = 0, n_sig, i_brk, i_seek;
	uint64_t data;
	int ret, uret;

	memset(&sl, 0, sizeof(sl));
	for (int sig = 1; sig <= 64; sig++) {
		const struct esky_img_sigaction *a = &c->sigactions[sig - 1];

		sl.sigaction[sig - 1][0] = a->handler;
		sl.sigaction[sig - 1][1] = a->flags;
		sl.sigaction[sig - 1][2] = a->restorer;
		sl.sigaction[sig - 1][3] = a->mask;
	}
	if (!(c->altstack_flags & SS_DISABLE) && c->altstack_size) {
		sl.altstack[0] = c->altstack_sp;
		sl.altstack[1] = c->altstack_flags & ~(uint32_t)SS_ONSTACK;
		sl.altstack[2] = c->altstack_size;
	} else {
		sl.altstack[1] = SS_DISABLE;
	}
	for (int w = 0; w < 3; w++) {
		sl.itimer[w][0] = c->itimers[w].interval_sec;
		sl.itimer[w][1] = c->itimers[w].interval_usec;
		sl.itimer[w][2] = c->itimers[w].value_sec;
		sl.itimer[w][3] = c->itimers[w].value_usec;
	}
	for (uint32_t r = 0; r < c->rlimit_n && r < 16; r++) {
		sl.rlimit[r][0] = c->rlimits[r][0];
		sl.rlimit[r][1] = c->rlimits[r][1];
	}
	memcpy(sl.comm, c->comm, sizeof(sl.comm) - 1);

	ret = esky_tracee_inject_begin(in->t);
	if (ret)
		return ret;
	ret = esky_tracee_scratch_map(in->t, &sc);
	data = sc.addr;
	if (!ret)
		ret = esky_tracee_write_mem(in->t, data, &sl, sizeof(sl));
#define AT(field) ((long)(data + offsetof(struct set_layout, field)))
	for (int sig = 1; sig <= 64; sig++)
		if ((c->sigaction_valid >> (sig - 1)) & 1 && sig != SIGKILL && sig != SIGSTOP)
			add_call(calls, &nc, SYS_rt_sigaction, sig, AT(sigaction[sig - 1]), 0, 8);
	n_sig = nc;
	add_call(calls, &nc, SYS_sigaltstack, AT(altstack), 0, 0, 0);
	for (int w = 0; w < 3; w++)
		add_call(calls, &nc, SYS_setitimer, w, AT(itimer[w]), 0, 0);
	for (uint32_t r = 0; r < c->rlimit_n && r < 16; r++)
		add_call(calls, &nc, SYS_prlimit64, 0, (long)r, AT(rlimit[r]), 0);
	add_call(calls, &nc, SYS_setpriority, 0 /* PRIO_PROCESS */, 0, c->nice, 0);
	if (c->timer_slack)
		add_call(calls, &nc, SYS_prctl, PR_SET_TIMERSLACK, (long)c->timer_slack, 0, 0);
	add_call(calls, &nc, SYS_prctl, PR_SET_PDEATHSIG, c->pdeath_sig, 0, 0);
	add_call(calls, &nc, SYS_personality, c->personality, 0, 0, 0);
	if (c->robust_list)
		add_call(calls, &nc, SYS_set_robust_list, (long)c->robust_list, (long)c->robust_len, 0,
			 0);
	if (c->clear_child_tid)
		add_call(calls, &nc, SYS_set_tid_address, (long)c->clear_child_tid, 0, 0, 0);
	add_call(calls, &nc, SYS_umask, c->umask, 0, 0, 0);
	add_call(calls, &nc, SYS_prctl, PR_SET_NAME, AT(comm), 0, 0);
	i_brk = nc;
	add_call(calls, &nc, SYS_brk, (long)c->brk, 0, 0, 0);
	i_seek = nc;
	for (size_t i = 0; i < nfix; i++)
		add_call(calls, &nc, SYS_lseek, fixes[i].fd, (long)fixes[i].pos, SEEK_SET, 0);
#undef AT
	if (!ret)
		ret = esky_tracee_scratch_calls(in->t, &sc, calls, nc);
	for (size_t i = 0; i < n_sig && !ret; i++)
		if (calls[i].ret)
			ret = esky_error((int)calls[i].ret, "cannot set back the action of signal %ld: %s",
					 calls[i].a[0], strerror((int)-calls[i].ret));
	if (!ret && (uint64_t)calls[i_brk].ret != c->brk)
		ret = esky_error(-ENOMEM, "cannot set the program break back to 0x%" PRIx64, c->brk);
	for (size_t i = i_seek; i < nc && !ret; i++)
		if (calls[i].ret != calls[i].a[1])
			ret = esky_error(-EIO, "cannot set fd %ld's position back", calls[i].a[0]);
	uret = esky_tracee_scratch_unmap(in->t, &sc);
	if (!ret)
		ret = uret;
	uret = esky_tracee_inject_end(in->t);
	return ret ? ret : uret;
}

static int set_registers(const struct esky_rewind_in *in, const struct esky_image_view *v)
{
	esky_regs_t regs;
	int ret;

	_Static_assert(sizeof(regs) == sizeof(v->core->regs), "register set size");
	memcpy(&regs, v->core->regs, sizeof(regs));
	/* Whatever syscall the program stands in now, none is to be restarted. */
	arch_regs_clear_syscall(&regs);
	ret = esky_tracee_set_regs(in->t, &regs);
	if (!ret && v->xstate_len)
		ret = esky_tracee_set_xstate(in->t, v->xstate, v->xstate_len);
	if (!ret)
		ret = esky_tracee_set_sigmask(in->t, v->core->sig_blocked);
	if (ret)
		return esky_error(ret, "cannot set the registers of pid %d: %s",
				  esky_tracee_pid(in->t), strerror(-ret));
	return 0;
}

int esky_rewind_in_place(const struct esky_rewind_in *in, struct esky_rewind_stats *st)
{
	const struct esky_image_view *v = esky_image_view(in->chain[0]);
	struct fd_fix fixes[ESKY_SCRATCH_CALLS / 2];
	struct spans d = { 0 };
	size_t nfix = 0;
	int ret;

	uint64_t t[5];

	memset(st, 0, sizeof(*st));
	t[0] = esky_now_ns();
	ret = check_shape(in, v, fixes, &nfix);
	t[1] = esky_now_ns();
	if (!ret)
		ret = find_differences(in, v, &d, st);
	t[2] = esky_now_ns();
	if (!ret)
		ret = write_spans(in, v, &d, st);
	t[3] = esky_now_ns();
	if (!ret)
		ret = set_process_state(in, v, fixes, nfix);
	if (!ret)
		ret = set_registers(in, v);
	t[4] = esky_now_ns();
	if (!ret)
		pr_debug("rewind in place: shape %.2f ms, differences %.2f ms (%zu spans), pages "
			 "%.2f ms, state and registers %.2f ms", (double)(t[1] - t[0]) / 1e6,
			 (double)(t[2] - t[1]) / 1e6, d.n, (double)(t[3] - t[2]) / 1e6,
			 (double)(t[4] - t[3]) / 1e6);
	free(d.v);
	return ret;
}
