/* Thawing a checkpoint, the monitor's side. See restore.h and agent/abi.h. */
#include "restore.h"
#include "lazy.h"
#include "fdobj.h"
#include "abi.h"
#include "fileid.h"
#include "hash.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef ESKY_LIBEXECDIR
#define ESKY_LIBEXECDIR "/usr/local/libexec"
#endif

#define AGENT_EXIT_FAILED 125

struct run_list {
	struct ea_run *v;
	size_t n, cap;
	size_t first;   /* runs before this belong to an earlier mapping: never extended */
};

static int runs_add(struct run_list *l, uint64_t addr, uint64_t len, uint32_t src, uint64_t off)
{
	struct ea_run *last = l->n > l->first ? &l->v[l->n - 1] : NULL;

	if (last && last->src == src && last->addr + last->len == addr &&
	    (src == EA_SRC_ZERO || last->off + last->len == off)) {
		last->len += len;
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct ea_run *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = (struct ea_run){ .addr = addr, .len = len, .off = off, .src = src };
	return 0;
}

struct resolve_ctx {
	struct run_list *runs;
	const uint32_t *level_src;
	bool *used;           /* mark_used pass: which levels hold data */
};

static int add_piece(void *arg, uint64_t vaddr, uint64_t npages, uint32_t kind, size_t level,
		     uint64_t file_off, const uint64_t *hashes)
{
	struct resolve_ctx *c = arg;

	(void)hashes;
	if (c->used) {
		if (kind == ESKY_IMG_PAGES_DATA)
			c->used[level] = true;
		return 0;
	}
	if (kind == ESKY_IMG_PAGES_ZERO)
		return runs_add(c->runs, vaddr, npages * ESKY_IMG_PAGE_SIZE, EA_SRC_ZERO, 0);
	return runs_add(c->runs, vaddr, npages * ESKY_IMG_PAGE_SIZE, c->level_src[level], file_off);
}

static const char *basename_of(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

/* Sizes of this kernel's special mappings, from our own maps. */
static int own_special_sizes(uint64_t sizes[3])
{
	struct esky_vma *vmas;
	size_t n;
	int ret = esky_proc_read_maps(getpid(), false, &vmas, &n);

	sizes[0] = sizes[1] = sizes[2] = 0;
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		const char *p = vmas[i].path;

		if (!p)
			continue;
		if (!strcmp(p, "[vdso]"))
			sizes[0] = vmas[i].end - vmas[i].start;
		else if (!strcmp(p, "[vvar]"))
			sizes[1] = vmas[i].end - vmas[i].start;
		else if (!strcmp(p, "[vvar_vclock]"))
			sizes[2] = vmas[i].end - vmas[i].start;
	}
	esky_vmas_free(vmas, n);
	return 0;
}

/*
 * Ids the program keeps must be its again: its threads' (glibc caches
 * them) and its System V segments' shmids. A PID, IPC, user and mount
 * namespace of its own gives them back (esky_tracee_spawn's ns_pid).
 */
static bool needs_namespace(const struct esky_image_view *v)
{
	if (v->thread_n)
		return true;
	for (size_t i = 0; i < v->vma_n; i++)
		if (v->vmas[i].kind == ESKY_IMG_VMA_SYSV_SHM)
			return true;
	return false;
}

/*
 * A program that needs namespaces of its own (needs_namespace) can be
 * resumed only where esky may make a user namespace: ask a child to try
 * (unshare), before anything else is made. 0 or -errno with esky_error().
 */
static int check_namespaces(const struct esky_image_view *v, bool tree)
{
	int status = 0;
	pid_t c;

	if (!tree && !needs_namespace(v))
		return 0;
	c = fork();
	if (c == 0)
		_exit(unshare(CLONE_NEWUSER) ? errno : 0);
	if (c < 0 || waitpid(c, &status, 0) < 0)
		return esky_error(-errno, "cannot try a user namespace: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	status = WIFEXITED(status) ? WEXITSTATUS(status) : EPERM;
	return esky_error(-status, "%s: its %s keep their ids in a user namespace of their own, "
			  "and user namespaces are not allowed here (%s); resume it where they are",
			  v->path, tree ? "processes" : v->thread_n ? "threads" : "System V segments",
			  strerror(status));
}

/* Every other live process of a tree checked as the root is (files, vDSO, the agent's range). */
static int check_members(struct esky_image *root, const struct esky_tree_header *t,
			 const struct esky_restore_opts *o)
{
	int ret = 0;

	for (uint32_t i = 1; !ret && i < t->proc_n; i++) {
		struct esky_image *m;

		if (t->procs[i].flags & ESKY_TREE_ZOMBIE)
			continue;
		ret = esky_image_open_member(root, i, &m);
		if (!ret) {
			ret = esky_restore_check(&m, 1, o);
			esky_image_close(m);
		}
	}
	return ret;
}

int esky_restore_check(struct esky_image *const *chain, size_t n, const struct esky_restore_opts *o)
{
	const struct esky_image_view *v = esky_image_view(chain[0]);
	uint64_t sizes[3];
	int ret;

	{
		const struct esky_tree_header *t = esky_image_tree(chain[0]);
		bool root = t && t->proc_n > 1 && v->core->pid == t->procs[0].pid;

		ret = check_namespaces(v, root);
		if (!ret && root && !o->tree_members_checked)
			ret = check_members(chain[0], t, o);
		if (ret)
			return ret;
	}

	if (!arch_regs_valid((const esky_regs_t *)v->core->regs))
		return esky_error(-EBADMSG, "%s: damaged: the saved registers are not a user context",
				  v->path);
	if (v->auxv_n > EA_AUXV_MAX)
		return esky_error(-EBADMSG, "%s: auxiliary vector too long (%zu words)", v->path,
				  v->auxv_n);
	for (size_t i = 0; i < v->vma_n; i++) {
		const struct esky_img_vma *m = &v->vmas[i];

		if (ea_zone_overlaps(m->start, m->end))
			return esky_error(-EOPNOTSUPP, "%s: mapping 0x%" PRIx64 "-0x%" PRIx64 " lies where "
					  "esky's restore agent runs", v->path, m->start, m->end);
	}
	ret = own_special_sizes(sizes);
	if (ret)
		return esky_error(ret, "cannot read /proc/self/maps: %s", strerror(-ret));
	for (size_t i = 0; i < v->vma_n; i++) {
		const struct esky_img_vma *m = &v->vmas[i];
		int k = m->kind == ESKY_IMG_VMA_VDSO	     ? 0
			: m->kind == ESKY_IMG_VMA_VVAR	     ? 1
			: m->kind == ESKY_IMG_VMA_VVAR_VCLOCK ? 2
							     : -1;
		static const char *const names[] = { "[vdso]", "[vvar]", "[vvar_vclock]" };

		if (k >= 0 && sizes[k] != m->end - m->start)
			return esky_error(-EXDEV, "%s: this kernel's %s is %" PRIu64 " bytes, the "
					  "checkpoint's %" PRIu64 ": resume it on a kernel like the one "
					  "that took it", v->path, names[k], sizes[k], m->end - m->start);
	}
	/* The names the program's sockets are bound to again must be free. */
	for (size_t i = 0; i < v->fdobj_n; i++) {
		const struct esky_img_fdobj *ob = &v->fdobjs[i];
		struct esky_fdobj_in in = { ob, esky_image_str(chain[0], ob->name),
					    v->blobs + ob->data_off };

		ret = esky_fdobj_check(&in);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < v->file_n; i++) {
		const struct esky_img_file *f = &v->files[i];
		const char *path = esky_image_str(chain[0], f->path);
		char why[256];

		ret = esky_fileid_check(path, f, why, sizeof(why));
		if (ret == -ENOENT)
			return esky_error(-ENOENT, "%s: %s vanished since the checkpoint", v->path, path);
		if (ret == -ESTALE && !o->force)
			return esky_error(-ESTALE, "%s changed since the checkpoint (%s)%s", path, why,
					  o->check_only ? "" : "; --force resumes anyway");
		if (ret == -ESTALE)
			pr_warn("%s changed since the checkpoint (%s); resuming anyway (--force)", path,
				why);
		else if (why[0])
			pr_note("%s changed since the checkpoint (%s): the program had it open for "
				"writing", path, why);
	}
	return 0;
}

/* Building the argument block. */
struct argbuf {
	struct esky_buf b;
	struct esky_buf strings;
	int err;
};

static uint32_t ab_array(struct argbuf *ab, const void *p, size_t len)
{
	uint32_t off;

	if (!ab->err)
		ab->err = esky_buf_pad(&ab->b, 8);
	off = (uint32_t)ab->b.len;
	if (!ab->err)
		ab->err = esky_buf_append(&ab->b, p, len);
	return off;
}

static uint32_t ab_str(struct argbuf *ab, const char *s)
{
	uint32_t off = (uint32_t)ab->strings.len;

	if (!s || !*s)
		return 0;
	if (!ab->err)
		ab->err = esky_buf_append(&ab->strings, s, strlen(s) + 1);
	return off;
}

/*
 * The agent's record of the System V segment that mapping i of v names:
 * one per segment (in the strings), however many mappings name it.
 */
static uint32_t sysv_record(struct argbuf *ab, const struct esky_image_view *v, size_t i,
			    const struct ea_vma *vmas)
{
	const struct esky_img_vma *m = &v->vmas[i];
	const struct esky_img_fdobj *o = &v->fdobjs[m->file];
	struct ea_sysv sv = {
		.shmid = (int32_t)o->v[0],
		.key = (int32_t)o->v[1],
		.mode = (uint32_t)o->v[2],
		.size = o->v[3],
	};
	uint32_t off;

	for (size_t k = 0; k < i; k++)
		if (v->vmas[k].kind == ESKY_IMG_VMA_SYSV_SHM && v->vmas[k].file == m->file)
			return vmas[k].path_off;
	if (!ab->err)
		ab->err = esky_buf_pad(&ab->strings, 8);
	off = (uint32_t)ab->strings.len;
	if (!ab->err)
		ab->err = esky_buf_append(&ab->strings, &sv, sizeof(sv));
	return off;
}


static uint32_t vma_kind(uint32_t img_kind)
{
	switch (img_kind) {
	case ESKY_IMG_VMA_ANON:
		return EA_VMA_ANON;
	case ESKY_IMG_VMA_FILE_PRIVATE:
		return EA_VMA_FILE_PRIVATE;
	case ESKY_IMG_VMA_FILE_SHARED:
		return EA_VMA_FILE_SHARED;
	case ESKY_IMG_VMA_SHARED_ANON:
		return EA_VMA_SHARED_ANON;
	case ESKY_IMG_VMA_VDSO:
		return EA_VMA_VDSO;
	case ESKY_IMG_VMA_VVAR:
		return EA_VMA_VVAR;
	case ESKY_IMG_VMA_SYSV_SHM:
		return EA_VMA_SYSV_SHM;
	default:
		return EA_VMA_VVAR_VCLOCK;
	}
}

static uint32_t vma_flags(const struct esky_img_vma *m)
{
	uint32_t f = 0;

	if (m->flags & ESKY_IMG_VMAF_GROWSDOWN)
		f |= EA_VMAF_GROWSDOWN;
	if (m->flags & ESKY_IMG_VMAF_DONTFORK)
		f |= EA_VMAF_DONTFORK;
	if (m->flags & ESKY_IMG_VMAF_WIPEONFORK)
		f |= EA_VMAF_WIPEONFORK;
	if (m->flags & ESKY_IMG_VMAF_DONTDUMP)
		f |= EA_VMAF_DONTDUMP;
	if (m->flags & ESKY_IMG_VMAF_HUGEPAGE)
		f |= EA_VMAF_HUGEPAGE;
	if (m->flags & ESKY_IMG_VMAF_NOHUGEPAGE)
		f |= EA_VMAF_NOHUGEPAGE;
	/*
	 * A shared mapping that may become writable needs the file open
	 * read-write, or its mprotect(PROT_WRITE) fails with EACCES after the
	 * resume (the kernel clears VM_MAYWRITE of a MAP_SHARED mapping of a
	 * read-only file). A private mapping always may: copy on write.
	 */
	if (m->kind == ESKY_IMG_VMA_FILE_SHARED &&
	    ((m->prot & PROT_WRITE) || (m->flags & ESKY_IMG_VMAF_MAYWRITE)))
		f |= EA_VMAF_WRITE_FILE;
	return f;
}

/* The plan the agent carries out, and the fds it needs. */
struct plan {
	struct argbuf ab;
	int32_t transport[EA_MAX_SRC_FDS + 5 + EA_MAX_OBJ_FDS];
	int source[EA_MAX_SRC_FDS + 5 + EA_MAX_OBJ_FDS]; /* our fds that go to transport[i] */
	int *obj_fds;                    /* ours: two per object (a pipe's ends), or -1 */
	struct esky_fdobj_in *obj_in;    /* the objects, as made (for esky_fdobj_thaw_undo) */
	int32_t *obj_transport;          /* where each goes in the agent, or -1 */
	size_t obj_n;
	size_t transport_n;
	int report_fd;                   /* transport number of the report pipe */
	int args_fd;                     /* transport number of the memfd */
	uint32_t *level_src;
	size_t src_n;
	struct run_list runs;            /* where every page comes from */
	struct esky_image **src_img;     /* the image of each source index */
	int32_t *fd_transport;           /* per fd record: the transport of an open file another
					  * process of a tree shares (the monitor's), or -1 */
	int32_t *vma_transport;          /* per mapping: the transport of memory shared in a
					  * tree (a memfd of the monitor's), or -1 */
	/* lazy resume: the runs served later (not the agent's to fill), and their server */
	uint8_t *run_lazy;
	size_t run_lazy_n;
	struct esky_lazy *lazy;
	bool lazy_started;
};

/*
 * A tree being thawed: the processes' images and plans (built in table
 * order, so every process a record refers to has its plan), and the open
 * files the processes share, opened once by the monitor.
 */
struct shared_file {
	size_t proc;
	int fd;                          /* the defining record: process proc's fd */
	int mfd;                         /* ours */
};

/* Anonymous memory shared by processes of a tree: a memfd, filled from its first holder's pages. */
struct shared_mem {
	size_t proc;                     /* the process whose image holds the pages */
	uint32_t vma;                    /* its mapping there */
	uint64_t size;
	int mfd;
};

struct thaw_tree {
	size_t self;
	struct shared_mem *mems;
	size_t mem_n;
	int **obj_fds;                   /* per process: its objects' fds, made for all at once */
	size_t n;
	const struct esky_image_view **views; /* per table index; NULL: a zombie */
	struct plan **plans;
	struct shared_file *files;
	size_t file_n;
	const int *stdio;                /* the resuming esky's stdio sources */
};

/* A string of an image's view (offsets are checked when the image is opened). */
static const char *view_str(const struct esky_image_view *v, uint32_t off)
{
	return v->strings + off;
}

static const struct esky_img_fd *fd_record(const struct esky_image_view *v, int fd)
{
	for (size_t i = 0; v && i < v->fd_n; i++)
		if (v->fds[i].fd == fd)
			return &v->fds[i];
	return NULL;
}

/*
 * The open file that fd record f of process proc means, followed through
 * dups and peers to the record that makes it: *dproc and *drec. 0 or
 * -EINVAL with a message (a damaged tree).
 */
static int defining_record(const struct thaw_tree *tt, size_t proc, const struct esky_img_fd *f,
			   size_t *dproc, const struct esky_img_fd **drec)
{
	for (int hops = 0; hops < 1024; hops++) {
		if (f->kind == ESKY_IMG_FD_DUP) {
			f = fd_record(tt->views[proc], f->dup_of);
		} else if (f->kind == ESKY_IMG_FD_PEER) {
			if ((size_t)f->file >= proc || !tt->views[f->file])
				break;
			proc = (size_t)f->file;
			f = fd_record(tt->views[proc], f->dup_of);
		} else {
			*dproc = proc;
			*drec = f;
			return 0;
		}
		if (!f)
			break;
	}
	return esky_error(-EINVAL, "%s: damaged: an fd names an open file of another process "
			  "that it does not have", tt->views[0]->path);
}

static struct shared_file *shared_file(struct thaw_tree *tt, size_t proc, int fd)
{
	for (size_t i = 0; i < tt->file_n; i++)
		if (tt->files[i].proc == proc && tt->files[i].fd == fd)
			return &tt->files[i];
	return NULL;
}

/*
 * Files opened by one process and shared with later ones (opened before a
 * fork): the monitor opens each once, every holder gets that open file.
 */
static int open_shared_files(struct thaw_tree *tt)
{
	for (size_t i = 0; i < tt->n; i++) {
		const struct esky_image_view *v = tt->views[i];

		for (size_t k = 0; v && k < v->fd_n; k++) {
			const struct esky_img_fd *d;
			struct shared_file *sf;
			size_t dp;
			int ret;

			if (v->fds[k].kind != ESKY_IMG_FD_PEER)
				continue;
			ret = defining_record(tt, i, &v->fds[k], &dp, &d);
			if (ret)
				return ret;
			if (d->kind != ESKY_IMG_FD_FILE || shared_file(tt, dp, d->fd))
				continue;
			sf = realloc(tt->files, (tt->file_n + 1) * sizeof(*sf));
			if (!sf)
				return -ENOMEM;
			tt->files = sf;
			sf = &tt->files[tt->file_n];
			sf->proc = dp;
			sf->fd = d->fd;
			sf->mfd = open(view_str(tt->views[dp], tt->views[dp]->files[d->file].path),
				       (int)((d->flags & ~(unsigned)(O_CREAT | O_TRUNC | O_EXCL | (O_TMPFILE & ~O_DIRECTORY))) |
					     O_NOCTTY | O_CLOEXEC));
			if (sf->mfd < 0)
				return esky_error(-errno, "cannot reopen %s: %s",
						  view_str(tt->views[dp],
								      tt->views[dp]->files[d->file].path),
						  strerror(errno));
			if (lseek(sf->mfd, (off_t)d->pos, SEEK_SET) < 0 && errno != ESPIPE) {
				ret = esky_error(-errno, "cannot seek in %s: %s",
						 view_str(tt->views[dp],
								     tt->views[dp]->files[d->file].path),
						 strerror(errno));
				close(sf->mfd);
				return ret;
			}
			tt->file_n++;
		}
	}
	return 0;
}

static struct shared_mem *shared_mem(struct thaw_tree *tt, size_t proc, uint32_t vma)
{
	for (size_t i = 0; i < tt->mem_n; i++)
		if (tt->mems[i].proc == proc && tt->mems[i].vma == vma)
			return &tt->mems[i];
	return NULL;
}

struct fill_ctx {
	struct esky_image *img;
	uint64_t start, pgoff;
	int mfd;
};

/* Pages of the first holder's mapping into the memfd, at their offset in the memory. */
static int fill_piece(void *arg, uint64_t vaddr, uint64_t npages, uint32_t kind, size_t level,
		      uint64_t file_off, const uint64_t *hashes)
{
	struct fill_ctx *c = arg;
	uint64_t len = npages * ESKY_PAGE_SIZE, done = 0;
	char buf[1 << 16];

	(void)level;
	(void)hashes;
	if (kind != ESKY_IMG_PAGES_DATA)
		return 0;
	while (done < len) {
		size_t chunk = len - done < sizeof(buf) ? (size_t)(len - done) : sizeof(buf);
		int ret = esky_pread_all(esky_image_fd(c->img), buf, chunk, (off_t)(file_off + done));

		if (!ret && pwrite(c->mfd, buf, chunk,
				   (off_t)(c->pgoff + vaddr - c->start + done)) != (ssize_t)chunk)
			ret = -errno;
		if (ret)
			return ret;
		done += chunk;
	}
	return 0;
}

/*
 * Memory shared between processes of the tree: one memfd per piece of
 * it, as large as the furthest mapping of it reaches, with its pages
 * from the image of the first process that maps it. Every process maps
 * the memfd where it had the memory.
 */
static int make_shared_memory(struct thaw_tree *tt, struct esky_image *const *imgs)
{
	for (size_t i = 0; i < tt->n; i++) {
		const struct esky_image_view *v = tt->views[i];

		for (size_t k = 0; v && k < v->vma_n; k++) {
			const struct esky_img_vma *m = &v->vmas[k];
			const struct esky_image_view *hv;
			struct shared_mem *sm;

			if (!(m->flags & ESKY_IMG_VMAF_PEER))
				continue;
			hv = (size_t)m->file < i ? tt->views[m->file] : NULL;
			if (!hv || m->reserved >= hv->vma_n ||
			    hv->vmas[m->reserved].kind != ESKY_IMG_VMA_SHARED_ANON ||
			    (hv->vmas[m->reserved].flags & ESKY_IMG_VMAF_PEER))
				return esky_error(-EINVAL, "%s: damaged: mapping 0x%" PRIx64 " of process "
						  "%zu names shared memory another does not have",
						  tt->views[0]->path, m->start, i);
			sm = shared_mem(tt, (size_t)m->file, m->reserved);
			if (!sm) {
				const struct esky_img_vma *h = &hv->vmas[m->reserved];

				sm = realloc(tt->mems, (tt->mem_n + 1) * sizeof(*sm));
				if (!sm)
					return -ENOMEM;
				tt->mems = sm;
				sm = &tt->mems[tt->mem_n++];
				*sm = (struct shared_mem){ (size_t)m->file, m->reserved,
							   h->pgoff + h->end - h->start, -1 };
			}
			if (m->pgoff + m->end - m->start > sm->size)
				sm->size = m->pgoff + m->end - m->start;
		}
	}
	for (size_t i = 0; i < tt->mem_n; i++) {
		struct shared_mem *sm = &tt->mems[i];
		const struct esky_img_vma *h = &tt->views[sm->proc]->vmas[sm->vma];
		struct fill_ctx c = { imgs[sm->proc], h->start, h->pgoff, -1 };
		int ret;

		sm->mfd = (int)syscall(SYS_memfd_create, "esky-shared", MFD_CLOEXEC);
		if (sm->mfd < 0 || ftruncate(sm->mfd, (off_t)sm->size) < 0)
			return esky_error(-errno, "cannot make shared memory of %" PRIu64 " bytes: %s",
					  sm->size, strerror(errno));
		c.mfd = sm->mfd;
		ret = esky_image_resolve(&c.img, 1, h->start, h->end, fill_piece, &c);
		if (ret)
			return esky_error(ret, "%s: cannot copy shared memory 0x%" PRIx64 ": %s",
					  tt->views[0]->path, h->start, strerror(-ret));
	}
	return 0;
}

/*
 * The monitor's fd for fd record f of the process being planned, when that
 * open file is shared in a tree (a peer's, or one of its own others share);
 * -1 when the process makes it itself.
 */
static int shared_source(struct thaw_tree *tt, const struct esky_img_fd *f, int *out)
{
	size_t proc = tt->self, dp;
	const struct esky_img_fd *d;
	int ret;

	*out = -1;
	if (f->kind == ESKY_IMG_FD_PEER_OBJECT) {
		const struct esky_image_view *pv;

		if ((size_t)f->file >= proc || !(pv = tt->views[f->file]) ||
		    (size_t)f->dup_of >= pv->fdobj_n || !tt->plans[f->file]->obj_fds)
			return esky_error(-EINVAL, "%s: damaged: an fd names an object of another "
					  "process that it does not have", tt->views[0]->path);
		*out = tt->plans[f->file]->obj_fds[2 * (size_t)f->dup_of +
						   (size_t)esky_fdobj_end(&pv->fdobjs[f->dup_of],
									 f->flags)];
		return 0;
	}
	if (f->kind == ESKY_IMG_FD_FILE) {
		struct shared_file *sf = shared_file(tt, proc, f->fd);

		if (sf)
			*out = sf->mfd;
		return 0;
	}
	if (f->kind != ESKY_IMG_FD_PEER)
		return 0;
	ret = defining_record(tt, proc, f, &dp, &d);
	if (ret)
		return ret;
	switch (d->kind) {
	case ESKY_IMG_FD_STDIO:
		*out = tt->stdio[d->stdio_src];
		return 0;
	case ESKY_IMG_FD_FILE:
		*out = shared_file(tt, dp, d->fd)->mfd;
		return 0;
	case ESKY_IMG_FD_OBJECT:
		*out = tt->plans[dp]->obj_fds[2 * (size_t)d->file +
					      (size_t)esky_fdobj_end(&tt->views[dp]->fdobjs[d->file],
								     d->flags)];
		return 0;
	case ESKY_IMG_FD_PEER_OBJECT: {
		const struct esky_image_view *pv = tt->views[d->file];

		*out = tt->plans[d->file]->obj_fds[2 * (size_t)d->dup_of +
						   (size_t)esky_fdobj_end(&pv->fdobjs[d->dup_of],
									 d->flags)];
		return 0;
	}
	default:
		return esky_error(-EINVAL, "%s: damaged: fd %d of process %zu", tt->views[0]->path,
				  f->fd, proc);
	}
}

static bool fd_in_image(const struct esky_image_view *v, int fd)
{
	for (size_t i = 0; i < v->fd_n; i++)
		if (v->fds[i].fd == fd)
			return true;
	return false;
}

/* The next fd number, from *next on, that the image does not use. */
static int next_free_fd(const struct esky_image_view *v, int *next)
{
	while (fd_in_image(v, *next))
		(*next)++;
	return (*next)++;
}

/*
 * Make every object of the image (pipes, eventfds, ...) here, and plan
 * their passage to the agent: each fd goes to a free transport number;
 * the agent dups it to the program's number. Epoll registrations are
 * listed for the agent to add once all fds are in place.
 */
static int make_objects(struct esky_image *img, const struct esky_image_view *v, struct plan *p,
			int *next_fd, struct ea_args *a, struct thaw_tree *tt)
{
	struct argbuf *ab = &p->ab;
	struct ea_epoll_reg *regs = NULL;
	int32_t *parked;
	size_t np = 0, nregs = 0;
	int ret = 0;

	if (!v->fdobj_n && !tt)
		return 0;
	if (2 * v->fdobj_n + (tt ? v->fd_n : 0) > EA_MAX_OBJ_FDS)
		return esky_error(-E2BIG, "%s: more than %d pipes, eventfds and the like", v->path,
				  EA_MAX_OBJ_FDS / 2);
	p->obj_fds = malloc((2 * v->fdobj_n + 1) * sizeof(int));
	p->obj_transport = malloc((2 * v->fdobj_n + 1) * sizeof(int32_t));
	parked = malloc((2 * v->fdobj_n + v->fd_n + (tt ? tt->mem_n : 0) + 1) * sizeof(int32_t));
	if (!p->obj_fds || !p->obj_transport || !parked) {
		free(parked);
		return -ENOMEM;
	}
	for (size_t i = 0; i < 2 * v->fdobj_n; i++)
		p->obj_fds[i] = p->obj_transport[i] = -1;
	p->obj_n = v->fdobj_n;
	p->obj_in = calloc(v->fdobj_n, sizeof(*p->obj_in));
	if (!p->obj_in) {
		free(parked);
		return -ENOMEM;
	}
	for (size_t i = 0; i < v->fdobj_n; i++) {
		const struct esky_img_fdobj *o = &v->fdobjs[i];

		p->obj_in[i] = (struct esky_fdobj_in){ o, esky_image_str(img, o->name),
						       v->blobs + o->data_off };
	}
	/*
	 * All at once: a socket pair, a connection through a listening socket,
	 * are made together; in a tree, with every process's (a pair between
	 * two processes), before any plan: this process's are taken over.
	 */
	if (tt && tt->obj_fds) {
		int *mine = tt->obj_fds[tt->self];

		for (size_t i = 0; mine && i < 2 * v->fdobj_n; i++) {
			p->obj_fds[i] = mine[i];
			mine[i] = -1;
		}
	} else {
		ret = esky_fdobj_thaw_all(p->obj_in, v->fdobj_n, p->obj_fds);
	}
	for (size_t i = 0; i < v->fdobj_n && !ret; i++) {
		const struct esky_img_fdobj *o = &v->fdobjs[i];

		for (int e = 0; e < 2 && !ret; e++) {
			if (p->obj_fds[2 * i + e] < 0)
				continue;
			p->obj_transport[2 * i + e] = next_free_fd(v, next_fd);
			p->source[p->transport_n] = p->obj_fds[2 * i + e];
			p->transport[p->transport_n++] = p->obj_transport[2 * i + e];
			parked[np++] = p->obj_transport[2 * i + e];
		}
		if (!ret && o->kind == ESKY_IMG_OBJ_EPOLL)
			nregs += o->data_len / sizeof(struct esky_img_epoll_reg);
	}
	if (ret)
		esky_error(ret, "%s: %s", v->path, esky_last_error() ? esky_last_error() : strerror(-ret));
	if (!ret && nregs && !(regs = calloc(nregs, sizeof(*regs))))
		ret = -ENOMEM;
	nregs = 0;
	for (size_t i = 0; i < v->fdobj_n && !ret; i++) {
		const struct esky_img_fdobj *o = &v->fdobjs[i];
		const struct esky_img_epoll_reg *r = (const void *)(v->blobs + o->data_off);
		int32_t epfd = -1;

		if (o->kind != ESKY_IMG_OBJ_EPOLL)
			continue;
		for (size_t k = 0; k < v->fd_n && epfd < 0; k++)
			if (v->fds[k].kind == ESKY_IMG_FD_OBJECT && (size_t)v->fds[k].file == i)
				epfd = v->fds[k].fd;
		for (size_t k = 0; k < o->data_len / sizeof(*r); k++)
			regs[nregs++] = (struct ea_epoll_reg){
				.epfd = epfd, .tfd = r[k].tfd, .events = r[k].events, .data = r[k].data
			};
	}
	/* In a tree: memory shared with other processes (the monitor's memfd). */
	if (!ret && tt && tt->mem_n) {
		p->vma_transport = malloc((v->vma_n + 1) * sizeof(int32_t));
		if (!p->vma_transport)
			ret = -ENOMEM;
		for (size_t i = 0; !ret && i < v->vma_n; i++) {
			const struct esky_img_vma *m = &v->vmas[i];
			struct shared_mem *sm = m->flags & ESKY_IMG_VMAF_PEER
				? shared_mem(tt, (size_t)m->file, m->reserved)
				: shared_mem(tt, tt->self, (uint32_t)i);

			p->vma_transport[i] = -1;
			if (!sm)
				continue;
			if (np == 2 * v->fdobj_n + v->fd_n + tt->mem_n) {
				ret = -E2BIG;
				break;
			}
			p->vma_transport[i] = next_free_fd(v, next_fd);
			p->source[p->transport_n] = sm->mfd;
			p->transport[p->transport_n++] = p->vma_transport[i];
			parked[np++] = p->vma_transport[i];
		}
	}
	/* In a tree: open files shared with other processes, made by the monitor once. */
	if (!ret && tt) {
		p->fd_transport = malloc((v->fd_n + 1) * sizeof(int32_t));
		if (!p->fd_transport)
			ret = -ENOMEM;
		for (size_t i = 0; !ret && i < v->fd_n; i++) {
			int mfd;

			p->fd_transport[i] = -1;
			ret = shared_source(tt, &v->fds[i], &mfd);
			if (ret || mfd < 0)
				continue;
			p->fd_transport[i] = next_free_fd(v, next_fd);
			p->source[p->transport_n] = mfd;
			p->transport[p->transport_n++] = p->fd_transport[i];
			parked[np++] = p->fd_transport[i];
		}
	}
	a->obj_fd_n = (uint32_t)np;
	a->obj_fd_off = ab_array(ab, parked, np * sizeof(int32_t));
	a->epoll_n = (uint32_t)nregs;
	a->epoll_off = ab_array(ab, regs, nregs * sizeof(*regs));
	free(regs);
	free(parked);
	return ret;
}

/* A mapping is served lazily from this much saved data on (less: filled at once, as ever). */
#define LAZY_MIN_BYTES (1ULL << 20)

_Static_assert(offsetof(struct ea_args, lazy_state) == offsetof(struct ea_args, lazy_fd) + 4,
	       "lazy_handoff reads lazy_fd and lazy_state in one go");

static uint64_t data_bytes(const struct run_list *runs, size_t first, size_t end)
{
	uint64_t n = 0;

	for (size_t i = first; i < end; i++)
		if (runs->v[i].src != EA_SRC_ZERO)
			n += runs->v[i].len;
	return n;
}

/* run_lazy covering n runs, the new ones not lazy. */
static int run_lazy_grow(struct plan *p, size_t n)
{
	uint8_t *nl;

	if (n <= p->run_lazy_n)
		return 0;
	nl = realloc(p->run_lazy, n);
	if (!nl)
		return -ENOMEM;
	memset(nl + p->run_lazy_n, 0, n - p->run_lazy_n);
	p->run_lazy = nl;
	p->run_lazy_n = n;
	return 0;
}

/* Runs [first, end) are a lazy mapping's: marked, the server made on the first. */
static int lazy_runs_add(struct plan *p, size_t first, size_t end)
{
	int ret = run_lazy_grow(p, end);

	if (ret)
		return ret;
	memset(p->run_lazy + first, 1, end - first);
	return p->lazy ? 0 : esky_lazy_new(&p->lazy);
}

/*
 * Give the lazy runs to the server: each source image's fd, the pages'
 * place in it and their checksums (checked when served, not now).
 */
static int lazy_plan(struct esky_image *img, struct plan *p, const struct run_list *runs)
{
	int lsrc[EA_MAX_SRC_FDS];

	if (run_lazy_grow(p, runs->n))
		return -ENOMEM;
	for (size_t i = 0; i < p->src_n; i++)
		lsrc[i] = -1;
	for (size_t i = 0; i < runs->n; i++) {
		const struct ea_run *r = &runs->v[i];
		const struct esky_image_view *sv;
		uint64_t idx;
		int ret;

		if (!p->run_lazy[i] || r->src == EA_SRC_ZERO)
			continue;
		sv = esky_image_view(p->src_img[r->src]);
		idx = (r->off - sv->pages_off) / ESKY_PAGE_SIZE;
		if (r->off < sv->pages_off || idx + r->len / ESKY_PAGE_SIZE > sv->hash_n)
			return esky_error(-EBADMSG, "%s: damaged: page data for 0x%" PRIx64
					  " has no checksum", sv->path, r->addr);
		if (lsrc[r->src] < 0) {
			lsrc[r->src] = esky_lazy_source(p->lazy, esky_image_fd(p->src_img[r->src]),
							sv->path);
			if (lsrc[r->src] < 0)
				return esky_error(lsrc[r->src], "%s: %s", sv->path,
						  strerror(-lsrc[r->src]));
		}
		ret = esky_lazy_add(p->lazy, r->addr, r->len, lsrc[r->src], r->off, sv->hashes + idx);
		if (ret)
			return esky_error(ret, "%s: %s", esky_image_view(img)->path, strerror(-ret));
	}
	return 0;
}

static int build_plan(struct esky_image *const *chain, size_t n, const struct esky_restore_opts *o,
		      int report_wr, int stdio[3], struct plan *p, struct thaw_tree *tt)
{
	struct esky_image *img = chain[0];
	const struct esky_image_view *v = esky_image_view(img);
	const struct esky_img_core *c = v->core;
	struct argbuf *ab = &p->ab;
	struct ea_args a;
	struct run_list runs = { 0 };
	bool *used = calloc(n, sizeof(bool));
	struct ea_vma *vmas = calloc(v->vma_n ? v->vma_n : 1, sizeof(*vmas));
	struct ea_fd *fds = calloc(v->fd_n ? v->fd_n : 1, sizeof(*fds));
	struct ea_siginfo *sigs = calloc(v->sig_n ? v->sig_n : 1, sizeof(*sigs));
	int32_t src_fds[EA_MAX_SRC_FDS];
	int next_fd = 3, ret = 0;
	size_t r = 0;
	/* Lazy resume: one process, no threads (the agent makes them in the program's memory). */
	bool lazy_ok = o->lazy && !tt && !v->thread_n;
	/* ESKY_LAZY_MIN (bytes): the tests make every mapping with saved pages lazy. */
	uint64_t lazy_min = getenv("ESKY_LAZY_MIN") ? strtoull(getenv("ESKY_LAZY_MIN"), NULL, 0)
						    : LAZY_MIN_BYTES;

	p->level_src = calloc(n, sizeof(uint32_t));
	p->src_img = calloc(n, sizeof(*p->src_img));
	if (!used || !vmas || !fds || !sigs || !p->level_src || !p->src_img) {
		ret = -ENOMEM;
		goto out_free;
	}
	memset(&a, 0, sizeof(a));
	ab->err = esky_buf_append(&ab->strings, "", 1);
	ab->err = ab->err ? ab->err : esky_buf_append(&ab->b, &a, sizeof(a));

	/* Sources of page data: only the chain levels that contribute. */
	for (size_t i = 0; i < v->vma_n && !ret; i++) {
		struct resolve_ctx rc = { .used = used };

		ret = esky_image_resolve(chain, n, v->vmas[i].start, v->vmas[i].end, add_piece, &rc);
	}
	if (ret)
		goto out_free;
	for (size_t l = 0; l < n; l++) {
		if (!used[l])
			continue;
		if (p->src_n == EA_MAX_SRC_FDS) {
			ret = esky_error(-E2BIG, "%s: more than %d checkpoints in its chain hold its "
					 "pages: export it first", v->path, EA_MAX_SRC_FDS);
			goto out_free;
		}
		p->level_src[l] = (uint32_t)p->src_n;
		p->src_img[p->src_n] = chain[l];
		src_fds[p->src_n] = next_free_fd(v, &next_fd);
		p->source[p->transport_n] = esky_image_fd(chain[l]);
		p->transport[p->transport_n++] = src_fds[p->src_n];
		p->src_n++;
	}
	for (int k = 0; k < 3; k++) {
		a.stdio_fds[k] = next_free_fd(v, &next_fd);
		p->source[p->transport_n] = stdio[k];
		p->transport[p->transport_n++] = a.stdio_fds[k];
	}
	p->report_fd = next_free_fd(v, &next_fd);
	p->source[p->transport_n] = report_wr;
	p->transport[p->transport_n++] = p->report_fd;
	p->args_fd = next_free_fd(v, &next_fd);
	a.report_fd = (uint32_t)p->report_fd;

	/* Objects other than files, made here and passed on (fdobj.h). */
	ret = make_objects(img, v, p, &next_fd, &a, tt);
	if (ret)
		goto out_free;

	for (size_t i = 0; i < v->vma_n && !ret; i++) {
		const struct esky_img_vma *m = &v->vmas[i];
		size_t first = runs.n;

		/* Memory shared in a tree: the monitor's memfd, its pages in already. */
		if (p->vma_transport && p->vma_transport[i] >= 0) {
			char path[40];

			snprintf(path, sizeof(path), "/proc/self/fd/%d", p->vma_transport[i]);
			vmas[i] = (struct ea_vma){
				.start = m->start,
				.end = m->end,
				.pgoff = m->pgoff,
				.kind = EA_VMA_FILE_SHARED,
				.prot = m->prot,
				.flags = vma_flags(m) | EA_VMAF_WRITE_FILE,
				.path_off = ab_str(ab, path),
				.name_off = ab_str(ab, esky_image_str(img, m->name)),
			};
			continue;
		}

		/* The agent fills each mapping right after creating it: no run spans two. */
		runs.first = runs.n;
		struct resolve_ctx rc = { .runs = &runs, .level_src = p->level_src };

		ret = esky_image_resolve(chain, n, m->start, m->end, add_piece, &rc);
		vmas[i] = (struct ea_vma){
			.start = m->start,
			.end = m->end,
			.pgoff = m->pgoff,
			.kind = vma_kind(m->kind),
			.prot = m->prot,
			.flags = vma_flags(m) | (runs.n > first ? EA_VMAF_HAS_PAGES : 0),
		};
		if (!ret && lazy_ok && vmas[i].kind == EA_VMA_ANON &&
		    !(vmas[i].flags & EA_VMAF_GROWSDOWN) &&
		    data_bytes(&runs, first, runs.n) >= lazy_min) {
			vmas[i].flags |= EA_VMAF_LAZY;
			ret = lazy_runs_add(p, first, runs.n);
		}
		if (m->kind == ESKY_IMG_VMA_SYSV_SHM) {
			vmas[i].path_off = sysv_record(ab, v, i, vmas);
		} else if (m->file >= 0) {
			vmas[i].path_off = ab_str(ab, esky_image_str(img, v->files[m->file].path));
		}
		vmas[i].name_off = ab_str(ab, esky_image_str(img, m->name));
	}
	if (ret)
		goto out_free;
	(void)r;
	if (p->lazy) {
		ret = lazy_plan(chain[0], p, &runs);
		if (ret)
			goto out_free;
		a.flags |= EA_F_LAZY;
		a.lazy_fd = next_free_fd(v, &next_fd);
	}
	for (size_t i = 0; i < v->fd_n; i++) {
		const struct esky_img_fd *f = &v->fds[i];

		fds[i] = (struct ea_fd){
			.fd = f->fd,
			.kind = f->kind == ESKY_IMG_FD_FILE    ? EA_FD_FILE
				: f->kind == ESKY_IMG_FD_STDIO ? EA_FD_STDIO
							       : EA_FD_DUP,
			.open_flags = (f->flags & ~(O_CREAT | O_TRUNC | O_EXCL | (O_TMPFILE & ~O_DIRECTORY))) | O_NOCTTY,
			.cloexec = !!(f->flags & O_CLOEXEC),
			.pos = f->pos,
			.stdio_src = f->stdio_src,
			.dup_of = f->dup_of,
		};
		if (f->kind == ESKY_IMG_FD_FILE)
			fds[i].path_off = ab_str(ab, esky_image_str(img, v->files[f->file].path));
		if (f->kind == ESKY_IMG_FD_OBJECT) {
			int end = esky_fdobj_end(&v->fdobjs[f->file], f->flags);

			fds[i].kind = EA_FD_PASSED;
			fds[i].dup_of = p->obj_transport[2 * (size_t)f->file + (size_t)end];
			/* Only memfds and deleted files have a position to seek to. */
			if (v->fdobjs[f->file].kind != ESKY_IMG_OBJ_MEMFD &&
			    v->fdobjs[f->file].kind != ESKY_IMG_OBJ_DELETED)
				fds[i].pos = 0;
		}
		/* An open file shared in a tree: the monitor's (its position is set already). */
		if (p->fd_transport && p->fd_transport[i] >= 0) {
			fds[i].kind = EA_FD_PASSED;
			fds[i].dup_of = p->fd_transport[i];
			fds[i].pos = 0;
		} else if (f->kind == ESKY_IMG_FD_PEER || f->kind == ESKY_IMG_FD_PEER_OBJECT) {
			ret = esky_error(-EINVAL, "%s: fd %d shares an open file with another process: "
					 "resume the whole tree", v->path, f->fd);
			goto out_free;
		}
	}
	for (size_t i = 0; i < v->sig_n; i++) {
		sigs[i].shared = v->sigs[i].shared;
		sigs[i].thread = v->sigs[i].thread;
		memcpy(sigs[i].info, v->sigs[i].info, sizeof(sigs[i].info));
	}
	if (v->thread_n) {
		struct ea_thread *ths = calloc(v->thread_n, sizeof(*ths));

		if (!ths) {
			ret = -ENOMEM;
			goto out_free;
		}
		for (size_t i = 0; i < v->thread_n; i++) {
			const struct esky_img_thread *it = &v->threads[i];

			ths[i] = (struct ea_thread){
				.tid = (int32_t)it->tid,
				.altstack_flags = it->altstack_flags,
				.altstack_sp = it->altstack_sp,
				.altstack_size = it->altstack_size,
				.rseq_ptr = it->rseq_ptr,
				.rseq_len = it->rseq_len,
				.rseq_sig = it->rseq_sig,
				.robust_list = it->robust_list,
				.robust_len = it->robust_len,
				.clear_child_tid = it->clear_child_tid,
			};
			memcpy(ths[i].comm, it->comm, sizeof(ths[i].comm) - 1);
		}
		a.thread_n = (uint32_t)v->thread_n;
		a.thread_off = ab_array(ab, ths, v->thread_n * sizeof(*ths));
		free(ths);
		/* Threads keep their ids in the PID namespace esky_restore makes for them. */
		a.flags |= EA_F_SET_TID;
	}
	/* The capabilities a namespace of its own lent the agent are not the program's. */
	if ((needs_namespace(v) || tt) && getuid() != 0)
		a.flags |= EA_F_DROP_CAPS;

	a.src_fd_n = (uint32_t)p->src_n;
	a.src_fd_off = ab_array(ab, src_fds, p->src_n * sizeof(int32_t));
	a.vma_n = (uint32_t)v->vma_n;
	a.vma_off = ab_array(ab, vmas, v->vma_n * sizeof(*vmas));
	a.run_n = (uint32_t)runs.n;
	a.run_off = ab_array(ab, runs.v, runs.n * sizeof(*runs.v));
	a.fd_n = (uint32_t)v->fd_n;
	a.fd_off = ab_array(ab, fds, v->fd_n * sizeof(*fds));
	a.sig_n = (uint32_t)v->sig_n;
	a.sig_off = ab_array(ab, sigs, v->sig_n * sizeof(*sigs));

	_Static_assert(sizeof(a.sigactions) == sizeof(c->sigactions), "sigactions");
	memcpy(a.sigactions, c->sigactions, sizeof(a.sigactions));
	a.sigaction_valid = c->sigaction_valid;
	_Static_assert(sizeof(a.itimers) == sizeof(c->itimers), "itimers");
	memcpy(a.itimers, c->itimers, sizeof(a.itimers));
	a.altstack_sp = c->altstack_sp;
	a.altstack_size = c->altstack_size;
	a.altstack_flags = c->altstack_flags;
	a.umask = c->umask;
	a.personality = c->personality;
	a.cwd_off = ab_str(ab, esky_image_str(img, c->cwd));
	a.rseq_ptr = c->rseq_ptr;
	a.rseq_len = c->rseq_len;
	a.rseq_sig = c->rseq_sig;
	a.robust_list = c->robust_list;
	a.robust_len = c->robust_len;
	a.clear_child_tid = c->clear_child_tid;
	if (c->exe_file != UINT32_MAX)
		a.exe_off = ab_str(ab, esky_image_str(img, v->files[c->exe_file].path));
	if (o->argv && o->argv[0]) {
		char comm[16];

		snprintf(comm, sizeof(comm), "%s", basename_of(o->argv[0]));
		a.comm_off = ab_str(ab, comm);
		a.argv_off = (uint32_t)ab->strings.len;
		for (size_t i = 0; o->argv[i]; i++)
			if (!ab->err)
				ab->err = esky_buf_append(&ab->strings, o->argv[i], strlen(o->argv[i]) + 1);
		a.argv_len = (uint32_t)(ab->strings.len - a.argv_off);
	} else {
		char comm[sizeof(c->comm) + 1];

		memcpy(comm, c->comm, sizeof(c->comm));
		comm[sizeof(c->comm)] = '\0';
		a.comm_off = ab_str(ab, comm);
	}
	a.mm = (struct ea_mm_map){
		.start_code = c->start_code,
		.end_code = c->end_code,
		.start_data = c->start_data,
		.end_data = c->end_data,
		.start_brk = c->start_brk,
		.brk = c->brk,
		.start_stack = c->start_stack,
		.arg_start = c->arg_start,
		.arg_end = c->arg_end,
		.env_start = c->env_start,
		.env_end = c->env_end,
		.auxv_size = (uint32_t)(v->auxv_n * sizeof(uint64_t)),
		.exe_fd = (uint32_t)-1,
	};
	memcpy(a.auxv, v->auxv, v->auxv_n * sizeof(uint64_t));
	_Static_assert(sizeof(a.rlimits) == sizeof(c->rlimits), "rlimits");
	memcpy(a.rlimits, c->rlimits, sizeof(a.rlimits));
	a.rlimit_n = c->rlimit_n;
	a.nice = c->nice;
	a.no_new_privs = c->no_new_privs;
	a.timer_slack = c->timer_slack;
	a.pdeath_sig = c->pdeath_sig;

	if (!ab->err)
		ab->err = esky_buf_pad(&ab->b, 8);
	a.strings_off = (uint32_t)ab->b.len;
	a.strings_len = (uint32_t)ab->strings.len;
	if (!ab->err)
		ab->err = esky_buf_append(&ab->b, ab->strings.data, ab->strings.len);
	if (!ab->err)
		ab->err = esky_buf_pad(&ab->b, ESKY_PAGE_SIZE);
	a.magic = ESKY_AGENT_MAGIC;
	a.version = ESKY_AGENT_VERSION;
	a.size = (uint32_t)ab->b.len;
	if (!ab->err)
		memcpy(ab->b.data, &a, sizeof(a));
	ret = ab->err;
	p->runs = runs;
	runs.v = NULL;
out_free:
	free(runs.v);
	free(used);
	free(vmas);
	free(fds);
	free(sigs);
	return ret;
}

/*
 * Check the checksum of every page the restore reads (and only those).
 * Runs in a thread of the monitor while the agent works: the program does
 * not run before the answer is in (see finish), and a damaged image is
 * refused with the agent killed.
 */
struct verify_job {
	const struct plan *p;
	bool lazy_runs;     /* the runs of lazy mappings (the agent filled them after all), not the others */
	int ret;
	char err[1024];
	pthread_t thread;
};

static void *verify_main(void *arg)
{
	struct verify_job *j = arg;
	const struct plan *p = j->p;
	const size_t chunk = 1u << 20;
	char *buf = malloc(chunk);
	int ret = buf ? 0 : -ENOMEM;

	esky_error_clear();
	for (size_t i = 0; i < p->runs.n && !ret; i++) {
		const struct ea_run *r = &p->runs.v[i];
		const struct esky_image *img;
		const struct esky_image_view *v;

		if (r->src == EA_SRC_ZERO)
			continue;
		/* A lazy mapping's pages are checked as they are served. */
		if (j->lazy_runs != (i < p->run_lazy_n && p->run_lazy[i]))
			continue;
		img = p->src_img[r->src];
		v = esky_image_view(img);
		for (uint64_t done = 0; done < r->len && !ret;) {
			size_t len = r->len - done < chunk ? (size_t)(r->len - done) : chunk;
			uint64_t off = r->off + done;

			ret = esky_pread_all(esky_image_fd(img), buf, len, (off_t)off);
			if (ret) {
				esky_error(ret, "%s: cannot read page data: %s", v->path, strerror(-ret));
				break;
			}
			for (size_t q = 0; q < len; q += ESKY_PAGE_SIZE) {
				/* Stored pages follow each other: page k of PAGES has hash k. */
				uint64_t idx = (off + q - v->pages_off) / ESKY_PAGE_SIZE;
				int zero;

				if (idx >= v->hash_n || esky_hash_page(buf + q, &zero) != v->hashes[idx]) {
					ret = esky_error(-EBADMSG, "%s: damaged: page data for 0x%" PRIx64
							 " (file offset %" PRIu64 ") checksum mismatch",
							 v->path, r->addr + done + q, off + q);
					break;
				}
			}
			done += len;
		}
	}
	free(buf);
	j->ret = ret;
	if (ret && esky_last_error())
		snprintf(j->err, sizeof(j->err), "%s", esky_last_error());
	return NULL;
}

static const char *vma_desc(const struct esky_image *img, uint32_t index, char *buf, size_t n)
{
	const struct esky_image_view *v = esky_image_view(img);

	if (index >= v->vma_n) {
		snprintf(buf, n, "?");
	} else {
		const struct esky_img_vma *m = &v->vmas[index];

		bool named = m->file >= 0 && m->kind != ESKY_IMG_VMA_SYSV_SHM;

		snprintf(buf, n, "0x%" PRIx64 "-0x%" PRIx64 "%s%s", m->start, m->end,
			 named ? " of " : m->kind == ESKY_IMG_VMA_SYSV_SHM ? " (System V shared memory)" : "",
			 named ? esky_image_str(img, v->files[m->file].path) : "");
	}
	return buf;
}

static int report_error(struct esky_image *img, const struct ea_report *r)
{
	const struct esky_image_view *v = esky_image_view(img);
	const char *e = strerror((int)-r->err);
	char d[PATH_MAX + 64];

	switch (r->step) {
	case EA_STEP_ARGS:
		return esky_error(-EPROTO, "the restore agent could not read its arguments (%s): "
				  "esky and esky-agent do not match", e);
	case EA_STEP_CLEAR:
		return esky_error((int)r->err, "the restore agent could not clear its address space "
				  "at 0x%" PRIx64 ": %s", r->addr, e);
	case EA_STEP_VMA: {
		const struct esky_img_vma *m = r->index < v->vma_n ? &v->vmas[r->index] : NULL;
		bool rw = m && (vma_flags(m) & EA_VMAF_WRITE_FILE);

		return esky_error((int)r->err, "cannot recreate mapping %s: %s%s",
				  vma_desc(img, r->index, d, sizeof(d)), e,
				  rw && (r->err == -EACCES || r->err == -EROFS)
					  ? " (it was mapped shared from a file open for writing)" : "");
	}
	case EA_STEP_PAGES:
		return esky_error((int)r->err, "%s: cannot read the page data for 0x%" PRIx64 ": %s",
				  v->path, r->addr, e);
	case EA_STEP_VDSO:
		if (r->err == -EXDEV)
			return esky_error(-EXDEV, "this kernel's vDSO differs from the checkpoint's: "
					  "resume it on a kernel like the one that took it");
		return esky_error((int)r->err, "cannot move the vDSO to 0x%" PRIx64 ": %s", r->addr, e);
	case EA_STEP_FDS: {
		const char *path = "";

		for (size_t i = 0; i < v->fd_n; i++) {
			const struct esky_img_fd *f = &v->fds[i];

			if ((uint64_t)f->fd != r->addr || f->file < 0)
				continue;
			path = f->kind == ESKY_IMG_FD_OBJECT
				       ? esky_fdobj_kind_name(v->fdobjs[f->file].kind)
				       : esky_image_str(img, v->files[f->file].path);
		}
		return esky_error((int)r->err, "cannot reopen fd %" PRIu64 "%s%s: %s", r->addr,
				  *path ? " " : "", path, e);
	}
	case EA_STEP_CWD:
		return esky_error((int)r->err, "cannot enter the current directory %s: %s",
				  esky_image_str(img, v->core->cwd), e);
	case EA_STEP_SIGNALS:
		return esky_error((int)r->err, "cannot restore signal state (signal %" PRIu64 "): %s",
				  r->addr, e);
	case EA_STEP_TIMERS:
		return esky_error((int)r->err, "cannot restore interval timer %" PRIu64 ": %s",
				  r->addr, e);
	case EA_STEP_RSEQ:
		return esky_error((int)r->err, "cannot register rseq at 0x%" PRIx64 ": %s", r->addr, e);
	case EA_STEP_MM:
		return esky_error((int)r->err, "cannot restore the memory layout (PR_SET_MM_MAP): %s", e);
	default:
		return esky_error((int)r->err, "the restore agent failed at step %u: %s", r->step, e);
	}
}

int esky_find_agent(char **path)
{
	const char *env = getenv("ESKY_AGENT");
	char self[PATH_MAX], *dir, cand[PATH_MAX + 64];
	ssize_t n;

	if (env && *env) {
		if (access(env, X_OK) < 0)
			return esky_error(-ENOENT, "ESKY_AGENT=%s: %s", env, strerror(errno));
		*path = strdup(env);
		return *path ? 0 : -ENOMEM;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		dir = dirname(self);
		snprintf(cand, sizeof(cand), "%s/esky-agent", dir);
		if (access(cand, X_OK) == 0)
			goto found;
		snprintf(cand, sizeof(cand), "%s/../libexec/esky/esky-agent", dir);
		if (access(cand, X_OK) == 0)
			goto found;
	}
	snprintf(cand, sizeof(cand), "%s/esky/esky-agent", ESKY_LIBEXECDIR);
	if (access(cand, X_OK) == 0)
		goto found;
	return esky_error(-ENOENT, "cannot find esky-agent next to esky, in ../libexec/esky or in "
			  "%s/esky (set ESKY_AGENT to its path)", ESKY_LIBEXECDIR);
found:
	*path = realpath(cand, NULL);
	return *path ? 0 : -ENOMEM;
}

/* Our stdio for the agent to pass on; /dev/null for a closed one. */
static void stdio_sources(int stdio[3], int opened[3])
{
	for (int k = 0; k < 3; k++) {
		opened[k] = -1;
		stdio[k] = k;
		if (fcntl(k, F_GETFD) < 0) {
			opened[k] = open("/dev/null", k ? O_WRONLY : O_RDONLY);
			stdio[k] = opened[k];
		}
	}
}

/* The threads the agent makes, as they appear (traced from their creation). */
struct thaw_threads {
	struct esky_tracee **t;
	size_t n;
};

static int threads_add(struct thaw_threads *th, pid_t tid)
{
	struct esky_tracee **nt = realloc(th->t, (th->n + 1) * sizeof(*nt));
	int ret;

	if (!nt)
		return -ENOMEM;
	th->t = nt;
	ret = esky_tracee_adopt(tid, &th->t[th->n]);
	if (ret)
		return ret;
	th->n++;
	/* Its first stop is the attach: let it run its part of the agent. */
	for (;;) {
		struct esky_stop st;

		ret = esky_tracee_wait(th->t[th->n - 1], &st, false);
		if (ret)
			return ret;
		if (st.kind == ESKY_STOP_EXITED || st.kind == ESKY_STOP_KILLED)
			return -ESRCH;
		return esky_tracee_cont(th->t[th->n - 1], 0);
	}
}

static void threads_free(struct thaw_threads *th, bool release)
{
	/*
	 * Not released: killed and reaped, each before the main thread (whose
	 * end is reported only once every traced thread has been waited for).
	 */
	for (size_t i = 0; i < th->n; i++) {
		if (release)
			esky_tracee_detach(th->t[i], 0);
		else
			esky_tracee_kill(th->t[i]);
		esky_tracee_free(th->t[i]);
	}
	free(th->t);
	th->t = NULL;
	th->n = 0;
}

/* A thread made by the agent (running since threads_add): wait for it to reach its breakpoint. 0 or -errno. */
static int thread_wait_trap(struct esky_tracee *t)
{
	struct esky_stop st;
	int ret;

	for (;;) {
		ret = esky_tracee_wait(t, &st, false);
		if (ret)
			return ret;
		if (st.kind == ESKY_STOP_SIGNAL && st.sig == SIGTRAP && st.si_code == SI_KERNEL)
			return 0;
		if (st.kind == ESKY_STOP_EXITED || st.kind == ESKY_STOP_KILLED)
			return -ESRCH;
		if (st.kind == ESKY_STOP_SIGNAL && st.sig != SIGSTOP)
			return -EFAULT;
		ret = esky_tracee_cont(t, 0);
		if (ret)
			return ret;
	}
}

/* Run the agent until its breakpoint; 0, or -errno with the agent's report as the error. */
/*
 * The agent stopped with its lazy mappings' userfaultfd (lazy_state 1):
 * take it, start serving, and tell the agent (lazy_state 2).
 */
static int lazy_handoff(struct esky_tracee *t, struct plan *p)
{
	const uint64_t at = ESKY_AGENT_ARGS_ADDR + offsetof(struct ea_args, lazy_fd);
	struct lazy_words {
		int32_t fd;
		uint32_t state;
	} st;
	pid_t pid = esky_tracee_pid(t);
	int pidfd, ufd, ret;

	ret = esky_tracee_read_mem(t, at, &st, sizeof(st));
	if (ret)
		return esky_error(ret, "cannot read the restore agent's arguments: %s", strerror(-ret));
	if (st.state != 1)
		return 1; /* not a hand-off: the agent's last stop */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	ufd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, st.fd, 0);
	ret = ufd < 0 ? -errno : 0;
	if (pidfd >= 0)
		close(pidfd);
	if (!ret)
		ret = esky_lazy_start(p->lazy, ufd, pid);
	if (ret)
		return esky_error(ret, "cannot take the userfaultfd of pid %d for a lazy resume: %s",
				  pid, strerror(-ret));
	p->lazy_started = true;
	pr_debug("lazy resume: serving %.1f MiB of pid %d", (double)esky_lazy_bytes(p->lazy) / 1048576,
		 pid);
	st.state = 2;
	ret = esky_tracee_write_mem(t, at + offsetof(struct lazy_words, state), &st.state,
				    sizeof(st.state));
	return ret ? esky_error(ret, "cannot write the restore agent's arguments: %s",
				strerror(-ret))
		   : 0;
}

static int run_agent(struct esky_tracee *t, struct esky_image *img, int report_rd, int *pending_sig,
		     struct thaw_threads *threads, struct plan *p)
{
	struct esky_stop st;
	int ret, sig = 0;

	for (;;) {
		ret = esky_tracee_cont(t, sig);
		if (ret)
			return esky_error(ret, "cannot run the restore agent: %s", strerror(-ret));
		sig = 0;
		ret = esky_tracee_wait(t, &st, false);
		if (ret)
			return esky_error(ret, "lost the restore agent: %s", strerror(-ret));
		switch (st.kind) {
		case ESKY_STOP_SIGNAL:
			if (st.sig == SIGTRAP && st.si_code == SI_KERNEL && p && p->lazy &&
			    !p->lazy_started) {
				ret = lazy_handoff(t, p);
				if (ret < 0)
					return ret;
				if (ret == 0)
					break; /* the agent goes on (SIGTRAP not delivered) */
			}
			if (st.sig == SIGTRAP && st.si_code == SI_KERNEL) {
				/* Every thread is made and stopping (the agent waited for them). */
				for (size_t i = 0; i < threads->n; i++) {
					ret = thread_wait_trap(threads->t[i]);
					if (ret)
						return esky_error(ret, "the restore agent's thread %d "
								  "did not stop: %s",
								  esky_tracee_pid(threads->t[i]),
								  strerror(-ret));
				}
				return 0;
			}
			if (st.sig == SIGSEGV || st.sig == SIGBUS || st.sig == SIGILL ||
			    st.sig == SIGFPE || st.sig == SIGTRAP || st.sig == SIGSYS) {
				esky_regs_t regs;

				esky_tracee_get_regs(t, &regs);
				return esky_error(-EFAULT, "the restore agent crashed (%s at 0x%llx)",
						  strsignal(st.sig), (unsigned long long)arch_regs_ip(&regs));
			}
			/* Meant for the program: deliver it once the program runs. */
			*pending_sig = st.sig;
			break;
		case ESKY_STOP_CLONE:
			ret = threads_add(threads, st.new_pid);
			if (ret)
				return esky_error(ret, "cannot trace the restore agent's thread %d: %s",
						  st.new_pid, strerror(-ret));
			break;
		case ESKY_STOP_EXITED: {
			struct ea_report r;

			if (st.status == AGENT_EXIT_FAILED &&
			    read(report_rd, &r, sizeof(r)) == sizeof(r) && r.magic == ESKY_AGENT_MAGIC)
				return report_error(img, &r);
			return esky_error(-EPROTO, "the restore agent exited with status %d", st.status);
		}
		case ESKY_STOP_KILLED:
			return esky_error(-EINTR, "the restore agent was killed by %s", strsignal(st.sig));
		default:
			break;
		}
	}
}

/*
 * Give each thread the agent made its registers, xstate and signal mask
 * (it stands at its breakpoint in the agent's zone, which goes next).
 */
static int finish_threads(const struct esky_image *img, const struct thaw_threads *threads)
{
	const struct esky_image_view *v = esky_image_view(img);

	if (threads->n != v->thread_n)
		return esky_error(-EPROTO, "the restore agent made %zu threads of %zu", threads->n,
				  v->thread_n);
	for (size_t i = 0; i < threads->n; i++) {
		const struct esky_img_thread *it = &v->threads[i];
		struct esky_tracee *t = threads->t[i];
		int ret = esky_tracee_set_regs(t, (const esky_regs_t *)it->regs);

		if (!ret && it->xstate_len)
			ret = esky_tracee_set_xstate(t, v->thread_xstate + it->xstate_off,
						     (size_t)it->xstate_len);
		if (!ret)
			ret = esky_tracee_set_sigmask(t, it->sig_blocked);
		if (ret)
			return esky_error(ret, "cannot set the registers of thread %u: %s", it->tid,
					  strerror(-ret));
	}
	return 0;
}

/*
 * The agent has stopped: give the process the program's registers, remove
 * the agent (image, stack, argument block) and, when we may, make
 * /proc/PID/exe name the program again.
 */
static int finish(struct esky_tracee *t, struct esky_image *img, const struct plan *p,
		  bool set_exe)
{
	const struct esky_image_view *v = esky_image_view(img);
	const struct ea_args *a = (const struct ea_args *)p->ab.b.data;
	pid_t pid = esky_tracee_pid(t);
	long r, exe_fd = -1;
	int ret;

	ret = esky_tracee_set_regs(t, (const esky_regs_t *)v->core->regs);
	if (ret)
		return esky_error(ret, "cannot set the registers of pid %d: %s", pid, strerror(-ret));
	if (v->xstate_len) {
		ret = esky_tracee_set_xstate(t, v->xstate, v->xstate_len);
		if (ret)
			return esky_error(ret, "cannot restore the floating-point and vector registers "
					  "(features 0x%" PRIx64 "): %s; this CPU may lack some of them",
					  v->core->xfeatures, strerror(-ret));
	}
	/* The vDSO has moved: find a syscall instruction where it is now. */
	ret = esky_tracee_find_syscall_insn(t);
	if (!ret)
		ret = esky_tracee_inject_begin(t);
	if (ret)
		return esky_error(ret, "cannot run syscalls in pid %d: %s", pid, strerror(-ret));
	ret = esky_tracee_syscall(t, &r, SYS_munmap, (long)ESKY_AGENT_BASE,
				  (long)(ESKY_AGENT_ARGS_ADDR - ESKY_AGENT_BASE), 0, 0, 0, 0);
	if (!ret && r)
		ret = (int)r;
	if (!ret && set_exe && a->exe_off) {
		uint64_t path_addr = ESKY_AGENT_ARGS_ADDR + a->strings_off + a->exe_off;
		uint64_t mm_addr = ESKY_AGENT_ARGS_ADDR + offsetof(struct ea_args, mm);

		ret = esky_tracee_syscall(t, &exe_fd, SYS_open, (long)path_addr, O_RDONLY | O_CLOEXEC,
					  0, 0, 0, 0);
		if (!ret && exe_fd >= 0) {
			uint32_t fd32 = (uint32_t)exe_fd;

			ret = esky_tracee_write_mem(t, mm_addr + offsetof(struct ea_mm_map, exe_fd),
						    &fd32, sizeof(fd32));
			if (!ret)
				ret = esky_tracee_syscall(t, &r, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP,
							  (long)mm_addr, sizeof(struct ea_mm_map), 0, 0);
			if (!ret && r == -EPERM)
				pr_note("pid %d: /proc/%d/exe names esky-agent: naming the program "
					"needs CAP_CHECKPOINT_RESTORE", pid, pid);
			else if (!ret && r)
				pr_note("pid %d: /proc/%d/exe names esky-agent: PR_SET_MM_MAP: %s", pid,
					pid, strerror((int)-r));
			if (!ret)
				ret = esky_tracee_syscall(t, &r, SYS_close, exe_fd, 0, 0, 0, 0, 0);
		}
	}
	if (!ret)
		ret = esky_tracee_syscall(t, &r, SYS_munmap, (long)ESKY_AGENT_ARGS_ADDR,
					  (long)(ESKY_AGENT_ZONE_END - ESKY_AGENT_ARGS_ADDR), 0, 0, 0, 0);
	if (!ret && r)
		ret = (int)r;
	{
		int end_ret = esky_tracee_inject_end(t);

		if (!ret)
			ret = end_ret;
	}
	if (ret)
		return esky_error(ret, "cannot remove the restore agent from pid %d: %s", pid,
				  strerror(-ret));
	ret = esky_tracee_set_sigmask(t, v->core->sig_blocked);
	if (ret)
		return esky_error(ret, "cannot set the signal mask of pid %d: %s", pid, strerror(-ret));
	return 0;
}

/* The loadable segments of the agent (a static ELF at a fixed address). */
struct agent_elf {
	uint64_t entry;
	struct {
		uint64_t vaddr, memsz, offset, filesz;
		int prot;
	} seg[4];
	int n;
};

static int read_agent_elf(const char *path, struct agent_elf *ae)
{
	Elf64_Ehdr eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	memset(ae, 0, sizeof(*ae));
	if (fd < 0)
		return esky_error(-errno, "%s: %s", path, strerror(errno));
	ret = esky_pread_all(fd, &eh, sizeof(eh), 0);
	if (!ret && (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_type != ET_EXEC ||
		     eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 16))
		ret = -ENOEXEC;
	for (unsigned i = 0; !ret && i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		ret = esky_pread_all(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph)));
		if (ret || ph.p_type != PT_LOAD)
			continue;
		if (ae->n == 4 || ph.p_filesz > ph.p_memsz ||
		    !ea_zone_overlaps(ph.p_vaddr, ph.p_vaddr + ph.p_memsz)) {
			ret = -ENOEXEC;
			break;
		}
		ae->seg[ae->n].vaddr = ph.p_vaddr;
		ae->seg[ae->n].memsz = ph.p_memsz;
		ae->seg[ae->n].offset = ph.p_offset;
		ae->seg[ae->n].filesz = ph.p_filesz;
		ae->seg[ae->n].prot = (ph.p_flags & PF_R ? PROT_READ : 0) |
				      (ph.p_flags & PF_W ? PROT_WRITE : 0) |
				      (ph.p_flags & PF_X ? PROT_EXEC : 0);
		ae->n++;
	}
	close(fd);
	ae->entry = eh.e_entry;
	if (ret)
		return esky_error(ret, "%s: not esky's restore agent (%s)", path, strerror(-ret));
	return 0;
}

#define PAGE_DOWN(x) ((x) & ~(ESKY_PAGE_SIZE - 1))
#define PAGE_UP(x) PAGE_DOWN((x) + ESKY_PAGE_SIZE - 1)

/*
 * Load the agent into a process that has just exec'd the checkpointed
 * program's own executable, and point it at the agent's entry with
 * argv = { agent, args fd, args size }. The kernel set /proc/PID/exe to the
 * program at that exec, which no unprivileged prctl could do afterwards;
 * the program's own code never runs (we are at the exec stop), and the
 * agent unmaps everything the exec mapped.
 */
static int boot_agent(struct esky_tracee *t, const char *agent_path, const char *fdarg,
		      const char *sizearg)
{
	const char *strs[] = { agent_path, "esky-agent", fdarg, sizearg };
	uint64_t addr[4], block[8], top, sp;
	struct agent_elf ae;
	esky_regs_t regs;
	long fd = -1, r = 0;
	int ret, end_ret;

	ret = read_agent_elf(agent_path, &ae);
	if (ret)
		return ret;
	ret = esky_tracee_get_regs(t, &regs);
	if (ret)
		return ret;
	/* Scratch below the new stack pointer: this stack is thrown away anyway. */
	top = (arch_regs_sp(&regs) - 8192) & ~15ULL;
	sp = top;
	for (int i = 0; i < 4 && !ret; i++) {
		size_t len = strlen(strs[i]) + 1;

		sp -= ESKY_ALIGN_UP(len, 16);
		addr[i] = sp;
		ret = esky_tracee_write_mem(t, sp, strs[i], len);
	}
	/* argc, argv[0..2], NULL, envp NULL, auxv AT_NULL */
	block[0] = 3;
	block[1] = addr[1];
	block[2] = addr[2];
	block[3] = addr[3];
	block[4] = 0;
	block[5] = 0;
	block[6] = 0;
	block[7] = 0;
	sp = (sp - sizeof(block)) & ~15ULL;
	if (!ret)
		ret = esky_tracee_write_mem(t, sp, block, sizeof(block));
	if (!ret)
		ret = esky_tracee_find_syscall_insn(t);
	if (!ret)
		ret = esky_tracee_inject_begin(t);
	if (ret)
		return esky_error(ret, "cannot load the restore agent: %s", strerror(-ret));
	ret = esky_tracee_syscall(t, &fd, SYS_open, (long)addr[0], O_RDONLY | O_CLOEXEC, 0, 0, 0, 0);
	if (!ret && fd < 0)
		ret = (int)fd;
	for (int i = 0; !ret && i < ae.n; i++) {
		uint64_t start = PAGE_DOWN(ae.seg[i].vaddr);
		uint64_t file_end = PAGE_UP(ae.seg[i].vaddr + ae.seg[i].filesz);
		uint64_t end = PAGE_UP(ae.seg[i].vaddr + ae.seg[i].memsz);

		if (ae.seg[i].filesz) {
			ret = esky_tracee_syscall(t, &r, SYS_mmap, (long)start, (long)(file_end - start),
						  ae.seg[i].prot, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd,
						  (long)PAGE_DOWN(ae.seg[i].offset));
			if (!ret && (uint64_t)r != start)
				ret = r < 0 && r > -4096 ? (int)r : -EEXIST;
			/* The rest of the last file page belongs to .bss: zero it. */
			if (!ret && ae.seg[i].memsz > ae.seg[i].filesz &&
			    file_end > ae.seg[i].vaddr + ae.seg[i].filesz) {
				static const char zeros[ESKY_PAGE_SIZE];
				uint64_t from = ae.seg[i].vaddr + ae.seg[i].filesz;

				ret = esky_tracee_write_mem(t, from, zeros, (size_t)(file_end - from));
			}
		}
		if (!ret && end > file_end) {
			uint64_t from = ae.seg[i].filesz ? file_end : start;

			ret = esky_tracee_syscall(t, &r, SYS_mmap, (long)from, (long)(end - from),
						  ae.seg[i].prot, MAP_PRIVATE | MAP_ANONYMOUS |
						  MAP_FIXED_NOREPLACE, -1, 0);
			if (!ret && (uint64_t)r != from)
				ret = r < 0 && r > -4096 ? (int)r : -EEXIST;
		}
	}
	if (fd >= 0)
		esky_tracee_syscall(t, &r, SYS_close, fd, 0, 0, 0, 0, 0);
	end_ret = esky_tracee_inject_end(t);
	if (!ret)
		ret = end_ret;
	if (ret)
		return esky_error(ret, "cannot load the restore agent %s: %s", agent_path, strerror(-ret));
	arch_regs_set_ip(&regs, ae.entry);
	arch_regs_set_entry_sp(&regs, sp);
	ret = esky_tracee_set_regs(t, &regs);
	if (ret)
		return esky_error(ret, "cannot start the restore agent: %s", strerror(-ret));
	return 0;
}

struct thaw_member;
static int make_tree_objects(struct thaw_tree *tt, struct thaw_member *m, size_t n,
			     struct esky_fdobj_in **all_in, int **all_fds, size_t *all_n);

/* One process of a tree being thawed. */
struct thaw_member {
	struct esky_image *img;          /* the root's is the caller's */
	struct esky_image *chain[ESKY_TREE_MAX_PROCS]; /* img, then the images its pages
						 * refer to (its parents': copy-on-write
						 * pages stored once) */
	size_t chain_n;
	struct plan plan;
	int report[2];
	int memfd;
	char fdarg[16], sizearg[16];
	bool booted;
	struct esky_tracee *t;
	struct thaw_threads threads;
};

/*
 * The chain of member i: its image, then the earlier members' images its
 * pages refer to (its parent's, for copy-on-write pages stored once), by
 * their ids. 0 or -EINVAL with a message.
 */
static int member_chain(struct thaw_member *m, size_t i)
{
	m[i].chain[0] = m[i].img;
	m[i].chain_n = 1;
	for (;;) {
		const struct esky_img_header *h =
			esky_image_view(m[i].chain[m[i].chain_n - 1])->hdr;
		size_t k;

		if (!(h->flags & ESKY_IMGF_INCREMENTAL))
			return 0;
		for (k = 0; k < i; k++)
			if (m[k].img && !memcmp(esky_image_view(m[k].img)->hdr->id, h->parent_id,
						sizeof(h->parent_id)))
				break;
		if (k == i || m[i].chain_n == ESKY_TREE_MAX_PROCS)
			return esky_error(-EINVAL, "%s: damaged: process %zu's pages refer to an "
					  "image the tree does not have", esky_image_view(m[0].img)->path,
					  i);
		m[i].chain[m[i].chain_n++] = m[k].img;
	}
}

/*
 * Every object of every process of the tree made in one call: a Unix
 * socket pair whose ends two processes hold is made as a pair. Each
 * process's plan takes its slice (tt->obj_fds) over.
 */
static int make_tree_objects(struct thaw_tree *tt, struct thaw_member *m, size_t n,
			     struct esky_fdobj_in **all_in, int **all_fds, size_t *all_n)
{
	size_t total = 0, at = 0;
	int ret;

	for (size_t i = 0; i < n; i++)
		total += tt->views[i] ? tt->views[i]->fdobj_n : 0;
	tt->obj_fds = calloc(n, sizeof(*tt->obj_fds));
	*all_in = calloc(total + 1, sizeof(**all_in));
	*all_fds = malloc((2 * total + 1) * sizeof(int));
	if (!tt->obj_fds || !*all_in || !*all_fds)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct esky_image_view *v = tt->views[i];

		if (!v)
			continue;
		tt->obj_fds[i] = *all_fds + 2 * at;
		for (size_t k = 0; k < v->fdobj_n; k++) {
			const struct esky_img_fdobj *o = &v->fdobjs[k];

			(*all_in)[at++] = (struct esky_fdobj_in){ o, esky_image_str(m[i].img, o->name),
								  v->blobs + o->data_off };
		}
	}
	*all_n = total;
	ret = esky_fdobj_thaw_all(*all_in, total, *all_fds);
	if (ret)
		esky_error(ret, "%s: %s", tt->views[0]->path,
			   esky_last_error() ? esky_last_error() : strerror(-ret));
	return ret;
}

/*
 * Thaw a process tree (a tree file; root is its root's image): every
 * plan first (the processes share open files, made once here), then the
 * processes, each with its pid, made by its parent in the namespace, then
 * each process's agent in table order. The root is returned stopped, as
 * esky_restore's one process; the others run on, untraced.
 */
static int restore_tree(struct esky_image *root, const struct esky_tree_header *th,
			const struct esky_restore_opts *o, struct esky_tracee **out)
{
	size_t n = th->proc_n;
	struct thaw_member *m = calloc(n, sizeof(*m));
	struct esky_spawn_member *sm = calloc(n, sizeof(*sm));
	const struct esky_image_view **views = calloc(n, sizeof(*views));
	struct plan **plans = calloc(n, sizeof(*plans));
	struct esky_tracee **ts = calloc(n, sizeof(*ts));
	struct thaw_tree tt = { 0 };
	int stdio[3], opened[3], ret = 0, *all_fds = NULL;
	struct esky_fdobj_in *all_in = NULL;
	size_t all_n = 0;
	char *exe_argv[ESKY_TREE_MAX_PROCS][2];
	static char *const empty_env[] = { NULL };

	stdio_sources(stdio, opened);
	if (!m || !sm || !views || !plans || !ts) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		m[i].report[0] = m[i].report[1] = m[i].memfd = -1;
		if (th->procs[i].flags & ESKY_TREE_ZOMBIE)
			continue;
		if (i == 0)
			m[i].img = root;
		else
			ret = esky_image_open_member(root, i, &m[i].img);
		if (!ret)
			ret = member_chain(m, i);
		if (!ret) {
			struct esky_restore_opts mo = *o;

			mo.tree_members_checked = true;
			ret = esky_restore_check(m[i].chain, m[i].chain_n, &mo);
		}
		if (ret)
			goto out;
		views[i] = esky_image_view(m[i].img);
		plans[i] = &m[i].plan;
	}
	tt.n = n;
	tt.views = views;
	tt.plans = plans;
	tt.stdio = stdio;
	ret = open_shared_files(&tt);
	if (!ret) {
		struct esky_image **imgs = calloc(n, sizeof(*imgs));

		for (size_t i = 0; imgs && i < n; i++)
			imgs[i] = m[i].img;
		ret = imgs ? make_shared_memory(&tt, imgs) : -ENOMEM;
		free(imgs);
	}
	if (!ret)
		ret = make_tree_objects(&tt, m, n, &all_in, &all_fds, &all_n);
	for (size_t i = 0; i < n && !ret; i++) {
		const struct esky_tree_proc *tp = &th->procs[i];
		struct esky_spawn_member *s = &sm[i];

		s->pid = (pid_t)tp->pid;
		s->pgid = (pid_t)tp->pgid;
		s->sid = (pid_t)tp->sid;
		s->zombie = tp->flags & ESKY_TREE_ZOMBIE;
		s->status = tp->status;
		s->parent = -1;
		for (size_t k = 0; i && k < i; k++)
			if (th->procs[k].pid == tp->ppid)
				s->parent = (int)k;
		if (i && s->parent < 0) {
			ret = esky_error(-EINVAL, "%s: damaged: process %u has no parent in the tree",
					 views[0]->path, tp->pid);
			break;
		}
		if (s->zombie)
			continue;
		if (pipe2(m[i].report, O_CLOEXEC) < 0) {
			ret = esky_error(-errno, "pipe: %s", strerror(errno));
			break;
		}
		tt.self = i;
		ret = build_plan(m[i].chain, m[i].chain_n, o, m[i].report[1], stdio, &m[i].plan, &tt);
		if (!ret) {
			m[i].memfd = (int)syscall(SYS_memfd_create, "esky-agent-args", MFD_CLOEXEC);
			ret = m[i].memfd < 0 ? esky_error(-errno, "memfd_create: %s", strerror(errno))
					     : esky_write_all(m[i].memfd, m[i].plan.ab.b.data,
							      m[i].plan.ab.b.len);
		}
		if (ret)
			break;
		m[i].plan.source[m[i].plan.transport_n] = m[i].memfd;
		m[i].plan.transport[m[i].plan.transport_n++] = m[i].plan.args_fd;
		snprintf(m[i].fdarg, sizeof(m[i].fdarg), "%d", m[i].plan.args_fd);
		snprintf(m[i].sizearg, sizeof(m[i].sizearg), "%zu", m[i].plan.ab.b.len);
		{
			const struct esky_image_view *v = views[i];
			const char *exe = v->core->exe_file != UINT32_MAX
				? esky_image_str(m[i].img, v->files[v->core->exe_file].path) : NULL;

			m[i].booted = exe && exe[0] == '/' && access(exe, X_OK) == 0;
			exe_argv[i][0] = (char *)(m[i].booted ? exe : "esky-agent");
			exe_argv[i][1] = NULL;
			s->sp = (struct esky_spawn){
				.path = m[i].booted ? exe : o->agent_path,
				.argv = exe_argv[i],
				.envp = empty_env,
				.fd_src = m[i].plan.source,
				.fd_dst = m[i].plan.transport,
				.fd_n = m[i].plan.transport_n,
				.close_others = true,
				.ns_pid = s->pid,
			};
		}
	}
	if (!ret)
		ret = esky_tracee_spawn_tree(sm, n, ts);
	for (size_t i = 0; i < n; i++) {
		m[i].t = ts[i];
		if (m[i].report[1] >= 0) {
			close(m[i].report[1]);
			m[i].report[1] = -1;
		}
	}
	/* Each process's agent, in table order (a parent before its children). */
	for (size_t i = 0; i < n && !ret; i++) {
		struct verify_job verify = { .p = &m[i].plan };
		int pending_sig = 0;

		if (!m[i].t)
			continue;
		if (!m[i].booted) {
			ret = esky_error(-EOPNOTSUPP, "%s: process %u: its program cannot be run again "
					 "(esky resumes the processes of a tree through their programs)",
					 views[0]->path, th->procs[i].pid);
			break;
		}
		ret = boot_agent(m[i].t, o->agent_path, m[i].fdarg, m[i].sizearg);
		if (!ret && views[i]->thread_n)
			ret = esky_tracee_set_options(m[i].t, PTRACE_O_TRACECLONE);
		if (ret)
			break;
		if (o->verify_pages)
			verify_main(&verify);
		ret = verify.ret ? esky_error(verify.ret, "%s", verify.err[0] ? verify.err
									 : strerror(-verify.ret))
				 : run_agent(m[i].t, m[i].img, m[i].report[0], &pending_sig,
					     &m[i].threads, NULL);
		if (!ret)
			ret = finish_threads(m[i].img, &m[i].threads);
		if (!ret)
			ret = finish(m[i].t, m[i].img, &m[i].plan, false);
		if (!ret && views[i]->thread_n)
			ret = esky_tracee_set_options(m[i].t, 0);
		if (!ret && pending_sig)
			kill(esky_tracee_pid(m[i].t), pending_sig);
	}
	/*
	 * A failure: every process killed and reaped by us (we trace them),
	 * children before parents, the root (which holds the init) last; the
	 * namespace's init reaps what comes to it and ends.
	 */
	if (ret && m[0].t)
		esky_tracee_end_namespace(m[0].t);
	for (size_t i = n; ret && i-- > 0;) {
		threads_free(&m[i].threads, false);
		if (m[i].t) {
			esky_tracee_kill(m[i].t);
			esky_tracee_free(m[i].t);
		}
	}
	for (size_t i = 0; i < n && !ret; i++) {
		threads_free(&m[i].threads, true);
		/* The others run on by themselves (or stop again); the root is the caller's. */
		if (i && m[i].t) {
			pid_t pid = esky_tracee_pid(m[i].t);

			if (th->procs[i].flags & ESKY_TREE_STOPPED)
				kill(pid, SIGSTOP);
			esky_tracee_detach(m[i].t, 0);
			esky_tracee_free(m[i].t);
			/* Stopped before the program can look (its parent runs next). */
			for (int k = 0; k < 1000 && (th->procs[i].flags & ESKY_TREE_STOPPED); k++) {
				struct esky_proc_stat st;
				struct timespec nap = { 0, 1000000 };

				if (esky_proc_read_stat(pid, &st) || st.state == 'T')
					break;
				nanosleep(&nap, NULL);
			}
		}
	}
	if (!ret)
		*out = m[0].t;
out:
	for (size_t i = 0; m && i < n; i++) {
		for (int k = 0; k < 2; k++)
			if (m[i].report[k] >= 0)
				close(m[i].report[k]);
		if (m[i].memfd >= 0)
			close(m[i].memfd);
		for (size_t k = 0; m[i].plan.obj_fds && k < 2 * m[i].plan.obj_n; k++)
			if (m[i].plan.obj_fds[k] >= 0)
				close(m[i].plan.obj_fds[k]);
		free(m[i].plan.obj_fds);
		free(m[i].plan.obj_in);
		free(m[i].plan.obj_transport);
		free(m[i].plan.fd_transport);
		free(m[i].plan.vma_transport);
		esky_buf_free(&m[i].plan.ab.b);
		esky_buf_free(&m[i].plan.ab.strings);
		free(m[i].plan.level_src);
		free(m[i].plan.src_img);
		free(m[i].plan.runs.v);
		if (i && m[i].img)
			esky_image_close(m[i].img);
	}
	for (size_t i = 0; i < tt.file_n; i++)
		close(tt.files[i].mfd);
	free(tt.files);
	for (size_t i = 0; i < tt.mem_n; i++)
		if (tt.mems[i].mfd >= 0)
			close(tt.mems[i].mfd);
	free(tt.mems);
	/* Objects no plan took (a failure before all were planned), and their socket names. */
	if (ret && all_in)
		esky_fdobj_thaw_undo(all_in, all_n, all_fds);
	for (size_t i = 0; all_fds && i < 2 * all_n; i++)
		if (all_fds[i] >= 0)
			close(all_fds[i]);
	free(all_fds);
	free(all_in);
	free(tt.obj_fds);
	for (int k = 0; k < 3; k++)
		if (opened[k] >= 0)
			close(opened[k]);
	free(m);
	free(sm);
	free(views);
	free(plans);
	free(ts);
	return ret;
}

int esky_restore(struct esky_image *const *chain, size_t n, const struct esky_restore_opts *o,
		 struct esky_tracee **out)
{
	struct plan p;
	struct esky_tracee *t = NULL;
	int report[2] = { -1, -1 }, stdio[3], opened[3], memfd = -1, ret, pending_sig = 0;
	char fdarg[16], sizearg[16];

	uint64_t t0 = esky_now_ns(), t1, t2, t3;
	struct verify_job verify = { 0 };
	struct thaw_threads threads = { 0 };
	bool verifying = false, booted = false;

	memset(&p, 0, sizeof(p));
	/* A process tree: its own road (the root's chain is itself: trees are never incremental). */
	if (esky_image_tree(chain[0]) && esky_image_tree(chain[0])->proc_n > 1)
		return restore_tree(chain[0], esky_image_tree(chain[0]), o, out);
	ret = esky_restore_check(chain, n, o);
	if (ret)
		return ret;
	t1 = esky_now_ns();
	if (pipe2(report, O_CLOEXEC) < 0)
		return esky_error(-errno, "pipe: %s", strerror(errno));
	stdio_sources(stdio, opened);
	ret = build_plan(chain, n, o, report[1], stdio, &p, NULL);
	if (ret)
		goto out_close;
	/*
	 * The page data is read in order by the agent (and the checksum
	 * thread, or the lazy server): ask the kernel for all of it now. A
	 * checkpoint esky just wrote went to the disk around the page cache
	 * (O_DIRECT), and read in 1 MiB steps from two readers it came in at
	 * ~450 MB/s here.
	 */
	for (size_t i = 0; i < p.src_n; i++) {
		const struct esky_image_view *sv = esky_image_view(p.src_img[i]);

		posix_fadvise(esky_image_fd(p.src_img[i]), (off_t)sv->pages_off,
			      (off_t)sv->pages_size, POSIX_FADV_WILLNEED);
	}
	memfd = (int)syscall(SYS_memfd_create, "esky-agent-args", MFD_CLOEXEC);
	if (memfd < 0) {
		ret = esky_error(-errno, "memfd_create: %s", strerror(errno));
		goto out_close;
	}
	ret = esky_write_all(memfd, p.ab.b.data, p.ab.b.len);
	if (ret) {
		esky_error(ret, "cannot prepare the restore agent's arguments: %s", strerror(-ret));
		goto out_close;
	}
	p.source[p.transport_n] = memfd;
	p.transport[p.transport_n++] = p.args_fd;
	snprintf(fdarg, sizeof(fdarg), "%d", p.args_fd);
	snprintf(sizearg, sizeof(sizearg), "%zu", p.ab.b.len);
	{
		const struct esky_image_view *v = esky_image_view(chain[0]);
		const char *exe = v->core->exe_file != UINT32_MAX
			? esky_image_str(chain[0], v->files[v->core->exe_file].path) : NULL;
		char *argv[] = { "esky-agent", fdarg, sizearg, NULL };
		char *exe_argv[] = { (char *)exe, NULL };
		char *envp[] = { NULL };
		struct esky_spawn sp = {
			.path = o->agent_path,
			.argv = argv,
			.envp = envp,
			.fd_src = p.source,
			.fd_dst = p.transport,
			.fd_n = p.transport_n,
			.close_others = true,
		};

		/*
		 * Threads keep their ids (glibc caches them: pthread_kill, mutex
		 * owners): a PID namespace of our own gives the process its old
		 * pid and lets the agent ask for each tid.
		 */
		if (needs_namespace(v)) {
			if (v->core->pid <= 1) {
				ret = esky_error(-EINVAL, "%s: cannot give pid %u back to the program",
						 v->path, v->core->pid);
				goto out_close;
			}
			sp.ns_pid = (pid_t)v->core->pid;
		}

		/* The program's own exec first: it makes /proc/PID/exe right. */
		booted = exe && exe[0] == '/' && access(exe, X_OK) == 0;
		if (booted) {
			sp.path = exe;
			sp.argv = exe_argv;
		}
		ret = esky_tracee_spawn(&sp, &t);
		if (!ret && booted) {
			ret = boot_agent(t, o->agent_path, fdarg, sizearg);
			if (ret) {
				esky_tracee_kill(t);
				esky_tracee_free(t);
			}
		}
	}
	if (!ret && esky_image_view(chain[0])->thread_n) {
		ret = esky_tracee_set_options(t, PTRACE_O_TRACECLONE);
		if (ret) {
			esky_error(ret, "cannot follow the restore agent's threads: %s", strerror(-ret));
			esky_tracee_kill(t);
			esky_tracee_free(t);
		}
	}
	if (ret)
		goto out_close;
	close(report[1]);
	report[1] = -1;
	if (o->verify_pages) {
		verify.p = &p;
		if (pthread_create(&verify.thread, NULL, verify_main, &verify)) {
			verify_main(&verify);
		} else {
			verifying = true;
		}
	}
	t2 = esky_now_ns();
	ret = run_agent(t, chain[0], report[0], &pending_sig, &threads, &p);
	t3 = esky_now_ns();
	if (verifying) {
		pthread_join(verify.thread, NULL);
		verifying = false;
	}
	if (!ret && p.lazy && !p.lazy_started)
		pr_note("--lazy: no userfaultfd that also waits for the kernel's accesses here "
			"(it needs CAP_SYS_PTRACE): the memory was filled whole");
	/* Lazy mappings the agent filled after all (no userfaultfd for them): checked now. */
	if (!ret && !verify.ret && p.lazy && !p.lazy_started && o->verify_pages) {
		struct verify_job lv = { .p = &p, .lazy_runs = true };

		verify_main(&lv);
		verify.ret = lv.ret;
		memcpy(verify.err, lv.err, sizeof(verify.err));
	}
	if (!ret && verify.ret) {
		esky_error_clear();
		ret = esky_error(verify.ret, "%s", verify.err[0] ? verify.err : strerror(-verify.ret));
	}
	if (!ret)
		ret = finish_threads(chain[0], &threads);
	if (!ret)
		ret = finish(t, chain[0], &p, !booted);
	if (!ret && threads.n)
		ret = esky_tracee_set_options(t, 0);
	pr_debug("restore: checks %.1f ms, plan and spawn %.1f ms, agent %.1f ms, finish %.1f ms",
		 (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6, (double)(t3 - t2) / 1e6,
		 (double)(esky_now_ns() - t3) / 1e6);
	if (ret) {
		threads_free(&threads, false);
		esky_tracee_kill(t);
		esky_tracee_free(t);
		/*
		 * The lazy server found a damaged page while the agent still
		 * worked and killed the process: that is the reason to say.
		 */
		if (p.lazy_started) {
			char *said = esky_last_error() ? strdup(esky_last_error()) : NULL;
			int lret;

			esky_error_clear();
			lret = esky_lazy_wait(p.lazy);
			if (lret) {
				ret = lret;
			} else if (said) {
				esky_error(ret, "%s", said);
			}
			free(said);
		}
		goto out_close;
	}
	/* The other threads run on from here, or are the caller's; the main one is the caller's, stopped. */
	if (o->threads_out) {
		*o->threads_out = threads.t;
		*o->thread_n_out = threads.n;
		threads.t = NULL;
		threads.n = 0;
	}
	threads_free(&threads, true);
	if (pending_sig)
		kill(esky_tracee_pid(t), pending_sig);
	if (p.lazy_started && o->lazy_out) {
		*o->lazy_out = p.lazy;
		p.lazy = NULL;
	}
	*out = t;
out_close:
	if (memfd >= 0)
		close(memfd);
	for (int i = 0; i < 2; i++)
		if (report[i] >= 0)
			close(report[i]);
	for (int k = 0; k < 3; k++)
		if (opened[k] >= 0)
			close(opened[k]);
	if (verifying)
		pthread_join(verify.thread, NULL);
	/* A failed resume leaves no socket file of its own behind. */
	if (ret && p.obj_in && p.obj_fds)
		esky_fdobj_thaw_undo(p.obj_in, p.obj_n, p.obj_fds);
	for (size_t i = 0; p.obj_fds && i < 2 * p.obj_n; i++)
		if (p.obj_fds[i] >= 0)
			close(p.obj_fds[i]);
	free(p.obj_fds);
	free(p.obj_in);
	free(p.obj_transport);
	free(p.fd_transport);
	free(p.vma_transport);
	esky_buf_free(&p.ab.b);
	esky_buf_free(&p.ab.strings);
	free(p.level_src);
	free(p.src_img);
	free(p.runs.v);
	free(p.run_lazy);
	/* Not handed over: serving stops (the process is gone, or never got so far). */
	esky_lazy_free(p.lazy);
	return ret;
}
