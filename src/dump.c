/* Freezing a traced process into an image, see dump.h. */
#include "dump.h"
#include "fdobj.h"
#include "abi.h"
#include "fileid.h"
#include "hash.h"
#include "image.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <unistd.h>

/* /proc/PID/pagemap bits (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_FILE (1ULL << 61)

#define CHUNK_PAGES 1024u /* 4 MiB of memory read at a time */

/* Which pages of a mapping go into the image. */
enum page_mode {
	PAGES_NONE,       /* shared file mappings, vDSO: none */
	PAGES_ANON,       /* present or swapped */
	PAGES_COW,        /* private file mapping: copied-on-write pages only */
	PAGES_ALL,        /* shared anonymous memory: every page */
};

struct dvma {
	struct esky_img_vma img;
	enum page_mode mode;
	bool zero_holes;
	bool from_original;   /* fork_copy: read from the original during prepare */
	char *content;        /* ... and kept here (whole mapping) */
	int shmid;            /* SYSV_SHM: the segment (maps' inode), asked about once injected */
};

/* A thread other than the main one, seized and stopped for the checkpoint. */
struct dthread {
	struct esky_tracee *t;
	struct esky_img_thread img;
	void *xstate;
	size_t xlen;
};

struct esky_dump {
	struct esky_tracee *t;
	struct esky_tracee *copy;   /* fork_copy: the frozen copy, or NULL */
	struct dthread *threads;    /* stopped until esky_dump_release_threads */
	size_t thread_n;
	bool threads_borrowed;      /* the caller's (opts.threads): never detached here */
	struct esky_image_writer *w;
	struct esky_dump_opts opts;
	struct dvma *vmas;
	size_t vma_n;
	struct esky_img_file *files; /* FILES records, added at the end of prepare */
	char **file_paths;           /* their paths, to find them again */
	size_t file_n;
	uint64_t prepare_ns;
	uint8_t id[16];
	char *path;
	size_t packed;               /* pages of the writer buffer being filled (esky_dump_read) */
};

static int writer_string(struct esky_dump *d, const char *s, uint32_t *off)
{
	int err = 0;

	*off = esky_image_add_string(d->w, s, &err);
	return err;
}

/*
 * The FILES index of path, reading its identity if it is new. Records are
 * kept here and added to the image at the end of prepare, so that a file
 * first seen mapped read-only and then open for writing ends up marked as
 * written.
 */
static int file_index(struct esky_dump *d, const char *path, uint32_t flags, int32_t *index)
{
	struct esky_img_file *nf;
	char **np;
	int ret;

	for (size_t i = 0; i < d->file_n; i++) {
		if (!strcmp(d->file_paths[i], path)) {
			d->files[i].flags |= flags;
			*index = (int32_t)i;
			return 0;
		}
	}
	np = realloc(d->file_paths, (d->file_n + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	d->file_paths = np;
	nf = realloc(d->files, (d->file_n + 1) * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	d->files = nf;
	nf = &d->files[d->file_n];
	memset(nf, 0, sizeof(*nf));
	nf->flags = flags;
	ret = esky_fileid_read(path, nf);
	if (ret)
		return esky_error(ret, "%s: %s", path, strerror(-ret));
	ret = writer_string(d, path, &nf->path);
	if (ret)
		return ret;
	d->file_paths[d->file_n] = strdup(path);
	if (!d->file_paths[d->file_n])
		return -ENOMEM;
	*index = (int32_t)d->file_n++;
	return 0;
}

static int add_files(struct esky_dump *d)
{
	for (size_t i = 0; i < d->file_n; i++) {
		uint32_t idx;
		int ret = esky_image_add_file(d->w, &d->files[i], &idx);

		if (ret)
			return ret;
	}
	return 0;
}

/* Files written later in the checkpoint (an fd opened for writing) are marked after the fact. */
static bool fd_writable(unsigned flags)
{
	return (flags & O_ACCMODE) == O_WRONLY || (flags & O_ACCMODE) == O_RDWR;
}

static int check_process(pid_t pid, struct esky_proc_status *status, bool tree)
{
	int *kids, ntimers, ret;
	size_t nkids;

	ret = esky_proc_read_status(pid, status);
	if (ret)
		return esky_error(ret, "pid %d: cannot read its status: %s", pid, strerror(-ret));
	if (status->seccomp == 2)
		return esky_error(-EOPNOTSUPP, "pid %d runs under a seccomp filter, which esky "
				  "cannot restore", pid);
	ret = tree ? -ENOENT : esky_proc_children(pid, &kids, &nkids);
	if (!ret && nkids) {
		ret = esky_error(-EOPNOTSUPP, "pid %d has %zu child process%s (pid %d%s): esky-shell "
				 "snapshots one process (esky start and esky checkpoint save its "
				 "children too)", pid, nkids, nkids > 1 ? "es" : "", kids[0],
				 nkids > 1 ? ", ..." : "");
		free(kids);
		return ret;
	}
	if (!ret)
		free(kids);
	ret = esky_proc_count_timers(pid, &ntimers);
	if (!ret && ntimers)
		return esky_error(-EOPNOTSUPP, "pid %d has %d POSIX timer%s (timer_create): esky "
				  "cannot save them", pid, ntimers, ntimers > 1 ? "s" : "");
	return 0;
}

static bool is_special(const char *path, const char *name)
{
	return path && !strcmp(path, name);
}

static uint32_t vmflags_to_img(uint32_t vmf)
{
	uint32_t f = 0;

	if (vmf & ESKY_VMF_GROWSDOWN)
		f |= ESKY_IMG_VMAF_GROWSDOWN;
	if (vmf & ESKY_VMF_DONTFORK)
		f |= ESKY_IMG_VMAF_DONTFORK;
	if (vmf & ESKY_VMF_WIPEONFORK)
		f |= ESKY_IMG_VMAF_WIPEONFORK;
	if (vmf & ESKY_VMF_DONTDUMP)
		f |= ESKY_IMG_VMAF_DONTDUMP;
	if (vmf & ESKY_VMF_HUGEPAGE)
		f |= ESKY_IMG_VMAF_HUGEPAGE;
	if (vmf & ESKY_VMF_NOHUGEPAGE)
		f |= ESKY_IMG_VMAF_NOHUGEPAGE;
	if (vmf & ESKY_VMF_MAYWRITE)
		f |= ESKY_IMG_VMAF_MAYWRITE;
	return f;
}

/* Decide how to save one mapping; refuse what cannot be saved. */
/*
 * Shared anonymous memory in a process tree: the first process that maps
 * it holds its pages; a later one names that mapping (VMAF_PEER).
 */
static int tree_shared_memory(struct esky_dump *d, const struct esky_vma *v, struct dvma *out)
{
	struct esky_dump_tree *tree = d->opts.tree;
	struct esky_tree_shm *ns;

	if (!tree)
		return 0;
	/* Where in the memory the mapping starts: two processes may map parts of it. */
	out->img.pgoff = v->pgoff;
	for (size_t i = 0; i < tree->shm_n; i++) {
		if (tree->shms[i].ino == v->ino && tree->shms[i].dev == makedev(v->dev_major,
										 v->dev_minor)) {
			out->img.flags |= ESKY_IMG_VMAF_PEER;
			out->img.file = (int32_t)tree->shms[i].proc;
			out->img.reserved = tree->shms[i].vma;
			out->mode = PAGES_NONE;
			return 0;
		}
	}
	ns = realloc(tree->shms, (tree->shm_n + 1) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	tree->shms = ns;
	ns[tree->shm_n++] = (struct esky_tree_shm){ tree->self, (uint32_t)d->vma_n,
						    makedev(v->dev_major, v->dev_minor), v->ino };
	return 0;
}

static int classify_vma(struct esky_dump *d, const struct esky_vma *v, struct dvma *out, bool *skip)
{
	struct esky_img_vma *m = &out->img;
	const char *path = v->path;
	char range[48];
	int ret;

	memset(out, 0, sizeof(*out));
	*skip = false;
	snprintf(range, sizeof(range), "0x%" PRIx64 "-0x%" PRIx64, v->start, v->end);
	m->start = v->start;
	m->end = v->end;
	m->prot = (uint32_t)v->prot;
	m->flags = vmflags_to_img(v->vmflags);
	m->file = -1;
	if (v->start >= ARCH_TASK_SIZE || is_special(path, "[vsyscall]")) {
		*skip = true;
		return 0;
	}
	if (ea_zone_overlaps(v->start, v->end))
		return esky_error(-EOPNOTSUPP, "mapping %s overlaps the address range esky's restore "
				  "agent needs (0x%llx-0x%llx)", range, ESKY_AGENT_BASE,
				  ESKY_AGENT_ZONE_END);
	if (is_special(path, "[vdso]") || is_special(path, "[vvar]") ||
	    is_special(path, "[vvar_vclock]")) {
		m->kind = is_special(path, "[vdso]") ? ESKY_IMG_VMA_VDSO
			  : is_special(path, "[vvar]") ? ESKY_IMG_VMA_VVAR
						       : ESKY_IMG_VMA_VVAR_VCLOCK;
		out->mode = PAGES_NONE;
		return 0;
	}
	if (v->vmflags & ESKY_VMF_IO)
		return esky_error(-EOPNOTSUPP, "mapping %s is device memory (%s): esky cannot save it",
				  range, path ? path : "anonymous");
	if (v->vmflags & ESKY_VMF_SHADOW_STACK)
		return esky_error(-EOPNOTSUPP, "mapping %s is a shadow stack: esky cannot save it",
				  range);
	if (!path || is_special(path, "[heap]") || is_special(path, "[stack]") ||
	    !strncmp(path, "[anon:", 6)) {
		if (v->shared)
			return esky_error(-EOPNOTSUPP, "mapping %s is shared memory of unknown kind",
					  range);
		m->kind = ESKY_IMG_VMA_ANON;
		if (is_special(path, "[heap]"))
			m->flags |= ESKY_IMG_VMAF_HEAP;
		if (is_special(path, "[stack]"))
			m->flags |= ESKY_IMG_VMAF_STACK;
		if (path && !strncmp(path, "[anon:", 6)) {
			char *name = strndup(path + 6, strlen(path + 6) - 1);

			ret = name ? writer_string(d, name, &m->name) : -ENOMEM;
			free(name);
			if (ret)
				return ret;
		}
		out->mode = PAGES_ANON;
		out->zero_holes = true;
		return 0;
	}
	if (path[0] == '[') {
		if (!strncmp(path, "[anon_shmem:", 12) && v->shared) {
			m->kind = ESKY_IMG_VMA_SHARED_ANON;
			out->mode = PAGES_ALL;
			out->zero_holes = true;
			return 0;
		}
		return esky_error(-EOPNOTSUPP, "mapping %s is %s: esky cannot save it", range, path);
	}
	/* (esky-shared: what a resumed tree's shared anonymous memory is made of.) */
	if (v->shared && v->deleted &&
	    (!strcmp(path, "/dev/zero") || !strcmp(path, "/memfd:esky-shared"))) {
		m->kind = ESKY_IMG_VMA_SHARED_ANON;
		out->mode = PAGES_ALL;
		out->zero_holes = true;
		return tree_shared_memory(d, v, out);
	}
	if (!strncmp(path, "/SYSV", 5) && v->deleted) {
		/* Its shmid is the inode number maps shows; the rest is asked of the program. */
		if (!v->shared || v->pgoff)
			return esky_error(-EOPNOTSUPP, "mapping %s is part of a System V shared "
					  "memory segment: esky saves whole attached segments only",
					  range);
		m->kind = ESKY_IMG_VMA_SYSV_SHM;
		out->mode = PAGES_ALL;
		out->zero_holes = true;
		out->shmid = (int)v->ino;
		return 0;
	}
	/*
	 * A private mapping of a file that exists nowhere else (a memfd, a
	 * deleted file: a program or library rebuilt or upgraded while it
	 * runs) is saved whole, as anonymous memory: a private mapping never
	 * writes back, so its pages are all the program can see of it. A
	 * PROT_NONE one (ld.so's gaps between segments) holds nothing to see.
	 */
	if (!v->shared && (v->deleted || !strncmp(path, "/memfd:", 7))) {
		m->kind = ESKY_IMG_VMA_ANON;
		out->mode = v->prot ? PAGES_ALL : PAGES_NONE;
		out->zero_holes = true;
		return 0;
	}
	if (!strncmp(path, "/memfd:", 7))
		return esky_error(-EOPNOTSUPP, "mapping %s is a shared memfd mapping (%s): esky "
				  "cannot save it yet", range, path + 1);
	if (v->deleted)
		return esky_error(-EOPNOTSUPP, "mapping %s is %s, which was deleted, mapped shared: "
				  "esky cannot save it", range, path);
	m->kind = v->shared ? ESKY_IMG_VMA_FILE_SHARED : ESKY_IMG_VMA_FILE_PRIVATE;
	m->pgoff = v->pgoff;
	/*
	 * A shared mapping of a file open for writing may be made writable
	 * and written through (after the checkpoint too), even if it is
	 * read-only now: the file may change like one open for writing.
	 */
	ret = file_index(d, path,
			 v->shared && ((v->prot & PROT_WRITE) || (m->flags & ESKY_IMG_VMAF_MAYWRITE))
				 ? ESKY_IMG_FILEF_WRITTEN : 0,
			 &m->file);
	if (ret)
		return ret;
	out->mode = v->shared ? PAGES_NONE : PAGES_COW;
	out->zero_holes = false;
	return 0;
}

static int collect_vmas(struct esky_dump *d, pid_t pid)
{
	struct esky_vma *vmas;
	size_t n;
	int ret;

	if (d->opts.maps_cache)
		ret = esky_proc_read_smaps_cached(pid, d->opts.maps_cache, &vmas, &n);
	else
		ret = esky_proc_read_maps(pid, true, &vmas, &n);
	if (ret)
		return esky_error(ret, "pid %d: cannot read its memory map: %s", pid, strerror(-ret));
	d->vmas = calloc(n ? n : 1, sizeof(*d->vmas));
	if (!d->vmas) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < n; i++) {
		bool skip;

		ret = classify_vma(d, &vmas[i], &d->vmas[d->vma_n], &skip);
		if (ret)
			goto out_free;
		if (!skip)
			d->vma_n++;
	}
out_free:
	esky_vmas_free(vmas, n);
	return ret;
}

static long sys_kcmp(pid_t p1, pid_t p2, int type, unsigned long a, unsigned long b)
{
	return syscall(SYS_kcmp, p1, p2, type, a, b);
}

/*
 * A character device that a fresh open plus the saved file position gives
 * back in the same state (Documentation/admin-guide/devices.txt): the
 * memory devices of major 1 (mem, kmem, null, port, zero, full, random,
 * urandom; not kmsg, 1:11, whose readers have a record cursor), /dev/tty
 * (5:0, whichever terminal the resumed process has), and the per-CPU msr
 * (202) and cpuid (203) devices, whose position selects the register.
 */
static bool stateless_device(dev_t rdev)
{
	unsigned maj = major(rdev), min = minor(rdev);

	switch (maj) {
	case 1:
		return min != 11;
	case 5:
		return min == 0;
	case 202:
	case 203:
		return true;
	default:
		return false;
	}
}

struct fdrec {
	int fd;
	struct stat st;
	struct esky_img_fd img;
};

/* An object (pipe, eventfd, ...) met among the fds, to be written once. */
struct objrec {
	dev_t dev;
	ino_t ino;
	int first_fd;          /* for messages */
	bool ends[2];          /* a pipe's read and write ends seen */
	struct esky_fdobj_frozen fz;
};

/*
 * The fd is an object esky makes again at resume (fdobj.h): find it among
 * those met (another end of one pipe) or freeze it. 1 if it is one, 0 if
 * not (the caller's refusals follow), or -errno.
 */
static int object_fd(const struct esky_dump_tree *tree, pid_t pid, struct fdrec *r,
		     const char *link, unsigned flags, struct objrec **objs, size_t *nobj)
{
	struct esky_fdobj_src src = { pid, r->fd, link, NULL, &r->st, flags };
	struct objrec *o = NULL, *no;
	char path[64], *text = NULL;
	size_t len;
	int ret;

	/* A pipe an earlier process of the tree holds an end of: that process's object. */
	for (size_t i = 0; tree && i < tree->obj_n && !strncmp(link, "pipe:", 5); i++) {
		if (tree->objs[i].dev == r->st.st_dev && tree->objs[i].ino == r->st.st_ino) {
			r->img.kind = ESKY_IMG_FD_PEER_OBJECT;
			r->img.file = (int32_t)tree->objs[i].proc;
			r->img.dup_of = (int32_t)tree->objs[i].index;
			return 1;
		}
	}

	/*
	 * A pipe's two ends are two open files of one object (its inode).
	 * Every anon_inode object shares one inode: those are told apart by
	 * open file only (an fd sharing an earlier one's is a dup already).
	 */
	for (size_t i = 0; i < *nobj && !strncmp(link, "pipe:", 5); i++)
		if ((*objs)[i].dev == r->st.st_dev && (*objs)[i].ino == r->st.st_ino)
			o = &(*objs)[i];
	if (!o) {
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, r->fd);
		ret = esky_read_file(path, &text, &len);
		if (ret)
			return esky_error(ret, "pid %d: cannot read fdinfo of fd %d: %s", pid, r->fd,
					  strerror(-ret));
		src.fdinfo = text;
		no = realloc(*objs, (*nobj + 1) * sizeof(*no));
		if (!no) {
			free(text);
			return -ENOMEM;
		}
		*objs = no;
		o = &no[*nobj];
		memset(o, 0, sizeof(*o));
		ret = esky_fdobj_freeze(&src, &o->fz);
		free(text);
		if (ret == -ENOTSUP)
			return 0;
		if (ret)
			return ret;
		o->dev = r->st.st_dev;
		o->ino = r->st.st_ino;
		o->first_fd = r->fd;
		(*nobj)++;
	}
	o->ends[esky_fdobj_end(&o->fz.o, flags)] = true;
	r->img.kind = ESKY_IMG_FD_OBJECT;
	r->img.file = (int32_t)(o - *objs);
	return 1;
}

/*
 * What dump cannot see one fd at a time: a pipe must have both ends in
 * the program; an epoll registration must still name the file it was
 * made for (kcmp KCMP_EPOLL_TFD, since 4.13).
 */
/* The FIFO object of a named pipe the program has open, unless one holds it already. */
static int fifo_object(const struct esky_dump_tree *tree, pid_t pid, struct fdrec *r,
		       const char *link, unsigned flags, struct objrec **objs, size_t *nobj)
{
	struct esky_fdobj_src src = { pid, r->fd, link, NULL, &r->st, flags };
	struct objrec *no;
	int ret;

	for (size_t i = 0; i < *nobj; i++)
		if ((*objs)[i].fz.o.kind == ESKY_IMG_OBJ_FIFO && (*objs)[i].ino == r->st.st_ino &&
		    (*objs)[i].dev == r->st.st_dev)
			return 0;
	for (size_t i = 0; tree && i < tree->obj_n; i++)
		if (tree->objs[i].ino == r->st.st_ino && tree->objs[i].dev == r->st.st_dev)
			return 0;
	no = realloc(*objs, (*nobj + 1) * sizeof(*no));
	if (!no)
		return -ENOMEM;
	*objs = no;
	memset(&no[*nobj], 0, sizeof(no[0]));
	ret = esky_fd_fifo_freeze(&src, &no[*nobj].fz);
	if (ret)
		return ret;
	no[*nobj].dev = r->st.st_dev;
	no[*nobj].ino = r->st.st_ino;
	no[*nobj].first_fd = r->fd;
	(*nobj)++;
	return 0;
}

/* Which ends of pipe ino the other processes of a tree hold (bit 0 read, bit 1 write). */
static unsigned tree_pipe_ends(const struct esky_dump_tree *tree, ino_t ino)
{
	for (size_t i = 0; tree && i < tree->pipe_n; i++)
		if (tree->pipe_ino[i] == ino)
			return tree->pipe_ends[i];
	return 0;
}

static int check_objects(const struct esky_dump_tree *tree, pid_t pid, const struct fdrec *recs,
			 size_t n, struct objrec *objs, size_t nobj)
{
	for (size_t i = 0; i < nobj; i++) {
		const struct esky_fdobj_frozen *fz = &objs[i].fz;
		unsigned ends = tree_pipe_ends(tree, objs[i].ino);

		if (fz->o.kind == ESKY_IMG_OBJ_PIPE &&
		    !((objs[i].ends[0] || (ends & 1)) && (objs[i].ends[1] || (ends & 2))))
			return esky_error(-EOPNOTSUPP, "fd %d is a pipe (pipe:[%llu]) whose other end "
					  "is not in the program (closed, or another process's): esky "
					  "cannot save it", objs[i].first_fd,
					  (unsigned long long)objs[i].ino);
		/* A Unix socket's peer must be one of the program's sockets too. */
		if (fz->o.kind == ESKY_IMG_OBJ_UNIX) {
			const struct esky_fdobj_frozen *peer = NULL;
			int ret;

			for (size_t j = 0; j < nobj && fz->o.v[1]; j++)
				if (objs[j].fz.o.kind == ESKY_IMG_OBJ_UNIX && objs[j].fz.o.id == fz->o.v[1])
					peer = &objs[j].fz;
			/* Its peer in another process of the tree: the pair is made whole at resume. */
			for (size_t j = 0; !peer && tree && j < tree->sock_n; j++) {
				if (tree->sock_ino[j] == (ino_t)fz->o.v[1]) {
					peer = fz; /* (not checked further: made as a pair) */
					objs[i].fz.o.v[2] |= ESKY_IMG_UNIXF_PEER_TREE;
				}
			}
			ret = peer == fz ? 0 : esky_fd_unix_check_peer(fz, objs[i].first_fd, peer);
			if (ret)
				return ret;
		}
		if (fz->o.kind != ESKY_IMG_OBJ_EPOLL)
			continue;
		for (size_t k = 0; k < fz->data_len / sizeof(struct esky_img_epoll_reg); k++) {
			const struct esky_img_epoll_reg *reg =
				&((const struct esky_img_epoll_reg *)fz->data)[k];
			struct { uint32_t efd, tfd, toff; } slot = {
				(uint32_t)objs[i].first_fd, (uint32_t)reg->tfd, 0
			};
			bool found = false;

			for (size_t j = 0; j < n; j++)
				found |= recs[j].fd == reg->tfd;
			if (!found || sys_kcmp(pid, pid, KCMP_EPOLL_TFD, (unsigned long)reg->tfd,
					       (unsigned long)&slot) != 0)
				return esky_error(-EOPNOTSUPP, "fd %d is an epoll watching fd %d, which "
						  "the program has closed since: esky cannot save it",
						  objs[i].first_fd, reg->tfd);
		}
	}
	return 0;
}

static int write_objects(struct esky_dump *d, struct objrec *objs, size_t nobj)
{
	int ret = 0;

	for (size_t i = 0; i < nobj && !ret; i++) {
		struct esky_fdobj_frozen *fz = &objs[i].fz;
		uint32_t index;
		int err = 0;

		fz->o.name = esky_image_add_string(d->w, fz->name, &err);
		ret = err;
		if (!ret && fz->data_len)
			ret = esky_image_add_blob(d->w, fz->data, fz->data_len, &fz->o.data_off);
		fz->o.data_len = fz->data_len;
		if (!ret)
			ret = esky_image_add_fdobj(d->w, &fz->o, &index);
	}
	return ret;
}

/* This process's objects, for the later processes of the tree (FDOBJS index i for objs[i]). */
static int tree_add_objects(struct esky_dump_tree *tree, const struct objrec *objs, size_t nobj)
{
	struct esky_tree_obj *no;

	if (!nobj)
		return 0;
	no = realloc(tree->objs, (tree->obj_n + nobj) * sizeof(*no));
	if (!no)
		return -ENOMEM;
	tree->objs = no;
	for (size_t i = 0; i < nobj; i++)
		no[tree->obj_n++] = (struct esky_tree_obj){ tree->self, (uint32_t)i, objs[i].dev,
							    objs[i].ino };
	return 0;
}

/*
 * An fd whose open file an earlier process of the tree holds too (a file
 * opened before a fork: one open file, one offset): that process's fd.
 * 1 if found (r->img set), 0 if not.
 */
static int tree_peer_fd(const struct esky_dump_tree *tree, pid_t pid, struct fdrec *r)
{
	for (size_t p = 0; tree && p < tree->self; p++) {
		int *fds;
		size_t n;

		if (!tree->pids[p] || esky_proc_list_fds(tree->pids[p], &fds, &n))
			continue;
		for (size_t k = 0; k < n; k++) {
			if (sys_kcmp(pid, tree->pids[p], KCMP_FILE, (unsigned long)r->fd,
				     (unsigned long)fds[k]) == 0) {
				r->img.kind = ESKY_IMG_FD_PEER;
				r->img.file = (int32_t)p;
				r->img.dup_of = fds[k];
				free(fds);
				return 1;
			}
		}
		free(fds);
	}
	return 0;
}

static int collect_fds(struct esky_dump *d, pid_t pid)
{
	struct fdrec *recs = NULL;
	struct objrec *objs = NULL;
	int *fds = NULL, ret;
	size_t n = 0, nobj = 0;

	ret = esky_proc_list_fds(pid, &fds, &n);
	if (ret)
		return esky_error(ret, "pid %d: cannot list its open files: %s", pid, strerror(-ret));
	recs = calloc(n ? n : 1, sizeof(*recs));
	if (!recs) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < n && !ret; i++) {
		struct fdrec *r = &recs[i];
		struct esky_img_fd *f = &r->img;
		struct esky_fdinfo fi;
		char what[32], *link = NULL, procpath[64];

		r->fd = fds[i];
		f->fd = fds[i];
		f->file = -1;
		f->dup_of = -1;
		f->stdio_src = -1;
		snprintf(what, sizeof(what), "fd/%d", r->fd);
		snprintf(procpath, sizeof(procpath), "/proc/%d/fd/%d", pid, r->fd);
		if (esky_proc_readlink(pid, what, &link) || stat(procpath, &r->st) < 0 ||
		    esky_proc_read_fdinfo(pid, r->fd, &fi)) {
			/* Closed while we looked: the process is stopped, so it was never there. */
			free(link);
			r->fd = -1;
			continue;
		}
		f->flags = fi.flags;
		f->pos = fi.pos;
		/*
		 * fd 0-2 are the stdio, which a resume connects to its own, unless
		 * the program pointed one at a regular file of its own (dup2 of
		 * log.txt to 1): that one is saved as the file it is. A file the
		 * monitor shares (esky start prog > out) is still the stdio.
		 */
		/*
		 * (In a tree only the root's are: another process's 0-2 are the
		 * root's open files, found below as its peers, or its own, as a
		 * pipe from its parent.)
		 */
		if (r->fd <= 2 && !(d->opts.tree && d->opts.tree->self) &&
		    (!S_ISREG(r->st.st_mode) ||
		     sys_kcmp(pid, getpid(), KCMP_FILE, (unsigned long)r->fd,
			      (unsigned long)r->fd) == 0)) {
			f->kind = ESKY_IMG_FD_STDIO;
			f->stdio_src = r->fd;
			free(link);
			continue;
		}
		/* An fd that shares the open file of a stdio fd follows the stdio. */
		for (int k = 0; k <= 2 && !f->kind; k++) {
			if (sys_kcmp(pid, getpid(), KCMP_FILE, (unsigned long)r->fd, (unsigned long)k) == 0) {
				f->kind = ESKY_IMG_FD_STDIO;
				f->stdio_src = k;
			}
		}
		for (size_t j = 0; j < i && !f->kind; j++) {
			if (recs[j].fd < 0 || recs[j].fd > 2 || recs[j].img.kind != ESKY_IMG_FD_STDIO)
				continue;
			if (sys_kcmp(pid, pid, KCMP_FILE, (unsigned long)r->fd,
				     (unsigned long)recs[j].fd) == 0) {
				f->kind = ESKY_IMG_FD_STDIO;
				f->stdio_src = recs[j].fd;
			}
		}
		/* An open file an earlier process of the tree holds too: one, shared. */
		if (!f->kind && tree_peer_fd(d->opts.tree, pid, r)) {
			free(link);
			continue;
		}
		/* An fd that shares the open file of an earlier fd is a dup of it. */
		for (size_t j = 0; j < i && !f->kind; j++) {
			if (recs[j].fd < 0 || recs[j].img.kind == ESKY_IMG_FD_STDIO ||
			    recs[j].st.st_ino != r->st.st_ino ||
			    recs[j].st.st_dev != r->st.st_dev)
				continue;
			if (sys_kcmp(pid, pid, KCMP_FILE, (unsigned long)r->fd,
				     (unsigned long)recs[j].fd) == 0) {
				f->kind = recs[j].img.kind == ESKY_IMG_FD_STDIO ? ESKY_IMG_FD_STDIO
										 : ESKY_IMG_FD_DUP;
				f->dup_of = recs[j].fd;
				f->stdio_src = recs[j].img.stdio_src;
				if (f->kind == ESKY_IMG_FD_STDIO)
					f->dup_of = -1;
			}
		}
		/*
		 * A named pipe (a path; an anonymous one is "pipe:[INODE]") is a
		 * file reopened by path, its bytes in flight held by a FIFO
		 * object, one for all the fds (and processes) that have it.
		 */
		if (!f->kind && S_ISFIFO(r->st.st_mode) && link[0] == '/') {
			ret = fifo_object(d->opts.tree, pid, r, link, fi.flags, &objs, &nobj);
			if (!ret) {
				f->kind = ESKY_IMG_FD_FILE;
				ret = file_index(d, link, fd_writable(fi.flags) ? ESKY_IMG_FILEF_WRITTEN
										: 0, &f->file);
			}
			free(link);
			continue;
		}
		if (!f->kind) {
			ret = object_fd(d->opts.tree, pid, r, link, fi.flags, &objs, &nobj);
			ret = ret > 0 ? 0 : ret ? ret : -ENOTSUP;
			if (ret != -ENOTSUP) {
				free(link);
				continue;
			}
			ret = 0;
		}
		if (f->kind) {
			free(link);
			continue;
		}
		if (!strncmp(link, "socket:", 7))
			ret = esky_error(-EOPNOTSUPP, "fd %d is a socket (%s): esky cannot save sockets",
					 r->fd, link);
		else if (!strncmp(link, "pipe:", 5) || S_ISFIFO(r->st.st_mode))
			ret = esky_error(-EOPNOTSUPP, "fd %d is a pipe (%s) that is not esky's stdin, "
					 "stdout or stderr: esky cannot save it", r->fd, link);
		else if (!strncmp(link, "anon_inode:", 11))
			ret = esky_error(-EOPNOTSUPP, "fd %d is %s: esky cannot save it", r->fd,
					 link + 11);
		else if (link[0] != '/')
			ret = esky_error(-EOPNOTSUPP, "fd %d is %s: esky cannot save it", r->fd, link);
		else if (strlen(link) > 10 && !strcmp(link + strlen(link) - 10, " (deleted)"))
			ret = esky_error(-EOPNOTSUPP, "fd %d is %s: esky cannot save deleted files",
					 r->fd, link);
		else if (S_ISCHR(r->st.st_mode) && !stateless_device(r->st.st_rdev))
			ret = esky_error(-EOPNOTSUPP, "fd %d is %s (device %u:%u), a device whose state "
					 "esky cannot save", r->fd, link, major(r->st.st_rdev),
					 minor(r->st.st_rdev));
		else if (!S_ISREG(r->st.st_mode) && !S_ISDIR(r->st.st_mode) &&
			 !S_ISCHR(r->st.st_mode) && !S_ISBLK(r->st.st_mode))
			ret = esky_error(-EOPNOTSUPP, "fd %d is %s: esky cannot save files of this kind",
					 r->fd, link);
		if (!ret) {
			f->kind = ESKY_IMG_FD_FILE;
			ret = file_index(d, link, fd_writable(fi.flags) ? ESKY_IMG_FILEF_WRITTEN : 0,
					 &f->file);
		}
		free(link);
	}
	if (!ret)
		ret = check_objects(d->opts.tree, pid, recs, n, objs, nobj);
	if (!ret)
		ret = write_objects(d, objs, nobj);
	if (!ret && d->opts.tree)
		ret = tree_add_objects(d->opts.tree, objs, nobj);
	for (size_t i = 0; i < n && !ret; i++)
		if (recs[i].fd >= 0)
			ret = esky_image_add_fd(d->w, &recs[i].img);
out_free:
	for (size_t i = 0; i < nobj; i++) {
		free(objs[i].fz.data);
		free(objs[i].fz.name);
	}
	free(objs);
	free(recs);
	free(fds);
	return ret;
}

static int read_cmdline(pid_t pid, char **out)
{
	char path[64], *text;
	size_t len;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	ret = esky_read_file(path, &text, &len);
	if (ret)
		return ret;
	for (size_t i = 0; i + 1 < len; i++)
		if (text[i] == '\0')
			text[i] = ' ';
	*out = text;
	return 0;
}

/* The results of the injected queries, in the scratch memory's data page. */
struct scratch_layout {
	uint64_t sigaction[64][4]; /* struct kernel sigaction, by signal */
	uint64_t altstack[3];   /* stack_t */
	uint64_t itimer[3][4];  /* struct itimerval, by timer */
	uint64_t robust_head;
	uint64_t robust_len;
	uint64_t tid_address;
	uint64_t pdeath_sig;    /* an int */
};
_Static_assert(sizeof(struct scratch_layout) <= ESKY_SCRATCH_DATA, "the results fit");

static int rsys(struct esky_tracee *t, long *ret, long nr, long a0, long a1, long a2, long a3,
		long a4)
{
	int err = esky_tracee_syscall(t, ret, nr, a0, a1, a2, a3, a4, 0);

	if (err)
		return esky_error(err, "pid %d: cannot run syscall %ld in it: %s", esky_tracee_pid(t),
				  nr, strerror(-err));
	return 0;
}

static void add_call(struct esky_batch_call *calls, size_t *n, long nr, long a0, long a1, long a2,
		     long a3)
{
	calls[(*n)++] = (struct esky_batch_call){ .nr = nr, .a = { a0, a1, a2, a3 } };
}

/*
 * A System V segment the program has attached: shmctl(IPC_STAT) run in it
 * (in its IPC namespace: ours may be another), through scratch memory.
 * One object per segment, however many mappings name it.
 */
static int collect_sysv(struct esky_dump *d, struct dvma *v, uint64_t scratch)
{
	struct esky_tracee *t = d->t;
	struct shmid_ds ds;
	struct esky_img_fdobj o = { .kind = ESKY_IMG_OBJ_SYSV_SHM };
	uint32_t index;
	long r;
	int ret;

	_Static_assert(sizeof(ds) <= 4096, "shmid_ds fits the scratch page");
	for (size_t i = 0; i < d->vma_n; i++) {
		if (&d->vmas[i] != v && d->vmas[i].img.kind == ESKY_IMG_VMA_SYSV_SHM &&
		    d->vmas[i].shmid == v->shmid && d->vmas[i].img.file >= 0) {
			v->img.file = d->vmas[i].img.file;
			return 0;
		}
	}
	ret = rsys(t, &r, SYS_shmctl, v->shmid, IPC_STAT, (long)scratch, 0, 0);
	if (!ret && r)
		ret = esky_error((int)r, "pid %d: System V segment %d (mapped at 0x%" PRIx64 "): "
				 "IPC_STAT: %s", esky_tracee_pid(t), v->shmid, v->img.start,
				 strerror((int)-r));
	if (!ret)
		ret = esky_tracee_read_mem(t, scratch, &ds, sizeof(ds));
	if (ret)
		return ret;
	if (v->img.end - v->img.start < ds.shm_segsz)
		return esky_error(-EOPNOTSUPP, "pid %d: System V segment %d is attached in part "
				  "(0x%" PRIx64 "-0x%" PRIx64 "): esky saves whole attached segments "
				  "only", esky_tracee_pid(t), v->shmid, v->img.start, v->img.end);
	o.id = (uint64_t)v->shmid;
	o.v[0] = (uint64_t)v->shmid;
	o.v[1] = (uint64_t)(uint32_t)ds.shm_perm.__key;
	o.v[2] = ds.shm_perm.mode;
	o.v[3] = ds.shm_segsz;
	ret = esky_image_add_fdobj(d->w, &o, &index);
	if (!ret)
		v->img.file = (int32_t)index;
	return ret;
}

/*
 * Kernel state that only the process itself can read: run syscalls in it.
 * With fork_copy, also make the frozen copy (a fork whose parent is our
 * own process, traced, never run).
 */
static int collect_injected(struct esky_dump *d, struct esky_img_core *core,
			    const struct esky_proc_status *status)
{
	struct esky_tracee *t = d->t;
	pid_t pid = esky_tracee_pid(t);
	struct esky_batch_call calls[ESKY_SCRATCH_CALLS];
	size_t nc = 0, i_altstack, i_itimer, i_brk;
	struct esky_scratch sc = { 0 };
	struct scratch_layout sl;
	uint64_t scratch = 0;
	long r;
	int ret, end_ret;

	ret = esky_tracee_inject_begin(t);
	if (ret)
		return ret;
	ret = esky_tracee_scratch_map(t, &sc);
	scratch = sc.addr;
#define SCRATCH(field) ((long)(scratch + offsetof(struct scratch_layout, field)))
	/* Every query below at once: none needs another's result. */
	for (int sig = 1; sig <= 64; sig++)
		/* Default ones too: SIG_DFL may carry flags (SIGCHLD's SA_NOCLDWAIT). */
		if (sig != SIGKILL && sig != SIGSTOP)
			add_call(calls, &nc, SYS_rt_sigaction, sig, 0, SCRATCH(sigaction[sig - 1]), 8);
	i_altstack = nc;
	add_call(calls, &nc, SYS_sigaltstack, 0, SCRATCH(altstack), 0, 0);
	i_itimer = nc;
	for (int which = 0; which < 3; which++)
		add_call(calls, &nc, SYS_getitimer, which, SCRATCH(itimer[which]), 0, 0);
	i_brk = nc;
	add_call(calls, &nc, SYS_brk, 0, 0, 0, 0);
	add_call(calls, &nc, SYS_prctl, PR_GET_TIMERSLACK, 0, 0, 0);
	add_call(calls, &nc, SYS_personality, 0xffffffff, 0, 0, 0);
	add_call(calls, &nc, SYS_get_robust_list, 0, SCRATCH(robust_head), SCRATCH(robust_len), 0);
	add_call(calls, &nc, SYS_prctl, PR_GET_TID_ADDRESS, SCRATCH(tid_address), 0, 0);
	add_call(calls, &nc, SYS_prctl, PR_GET_PDEATHSIG, SCRATCH(pdeath_sig), 0, 0);
	_Static_assert(64 + 10 <= ESKY_SCRATCH_CALLS, "the batch fits its table");
	if (!ret)
		ret = esky_tracee_scratch_calls(t, &sc, calls, nc);
	if (!ret)
		ret = esky_tracee_read_mem(t, scratch, &sl, sizeof(sl));
	for (size_t i = 0; i < i_altstack && !ret; i++) {
		int sig = (int)calls[i].a[0];

		if (calls[i].ret == 0) {
			memcpy(&core->sigactions[sig - 1], sl.sigaction[sig - 1],
			       sizeof(sl.sigaction[0]));
			core->sigaction_valid |= 1ULL << (sig - 1);
		}
	}
	if (!ret && calls[i_altstack].ret == 0) {
		core->altstack_sp = sl.altstack[0];
		core->altstack_flags = (uint32_t)sl.altstack[1];
		core->altstack_size = sl.altstack[2];
	}
	for (int which = 0; which < 3 && !ret; which++)
		if (calls[i_itimer + (size_t)which].ret == 0)
			memcpy(&core->itimers[which], sl.itimer[which], sizeof(sl.itimer[0]));
	if (!ret) {
		const struct esky_batch_call *c = &calls[i_brk];

		core->brk = (uint64_t)c[0].ret;
		if (c[1].ret > 0)
			core->timer_slack = (uint64_t)c[1].ret;
		core->personality = (uint32_t)c[2].ret;
		if (c[3].ret == 0) {
			core->robust_list = sl.robust_head;
			core->robust_len = sl.robust_len;
		}
		if (c[4].ret == 0)
			core->clear_child_tid = sl.tid_address;
		if (c[5].ret == 0) {
			int32_t sig;

			memcpy(&sig, &sl.pdeath_sig, sizeof(sig));
			core->pdeath_sig = sig > 0 && sig < 65 ? (uint32_t)sig : 0;
		}
	}
	for (size_t i = 0; !ret && i < d->vma_n; i++)
		if (d->vmas[i].img.kind == ESKY_IMG_VMA_SYSV_SHM)
			ret = collect_sysv(d, &d->vmas[i], scratch);
#undef SCRATCH
	if (scratch) {
		int uret = esky_tracee_scratch_unmap(t, &sc);

		if (!ret)
			ret = uret;
	}
	if (!ret && d->opts.fork_copy) {
		/*
		 * The copy: CLONE_PARENT makes it our child (we are the
		 * tracee's parent), exit signal 0 keeps the program from
		 * seeing a SIGCHLD, TRACECLONE stops it before it runs.
		 */
		/* The copy inherits EXITKILL: it must never run on if esky dies. */
		ret = esky_tracee_set_options(t, PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL);
		if (!ret)
			ret = rsys(t, &r, SYS_clone, CLONE_PARENT, 0, 0, 0, 0);
		esky_tracee_set_options(t, 0);
		/*
		 * r is the copy's pid as the program sees it; in a PID namespace
		 * (a threaded program esky resumed) ours differs: the one the
		 * clone event gave.
		 */
		if (!ret && r > 0 && esky_tracee_syscall_child(t) > 0) {
			ret = esky_tracee_adopt(esky_tracee_syscall_child(t), &d->copy);
			if (!ret)
				esky_tracee_set_cow_shared(d->copy, true);
		} else if (!ret) {
			pr_debug("fork copy of pid %d failed (%ld): stopping it for the whole dump",
				 pid, r);
		}
	}
	end_ret = esky_tracee_inject_end(t);
	if (!ret && end_ret)
		ret = esky_error(end_ret, "pid %d: cannot put its registers back: %s", pid,
				 strerror(-end_ret));
	return ret;
}

static bool dump_has_thread(void *ctx, pid_t tid)
{
	const struct esky_dump *d = ctx;

	for (size_t k = 0; k < d->thread_n; k++)
		if (esky_tracee_pid(d->threads[k].t) == tid)
			return true;
	return false;
}

static int dump_add_thread(void *ctx, struct esky_tracee *t)
{
	struct esky_dump *d = ctx;
	struct dthread *nt = realloc(d->threads, (d->thread_n + 1) * sizeof(*nt));

	if (!nt)
		return -ENOMEM;
	d->threads = nt;
	memset(&nt[d->thread_n], 0, sizeof(nt[0]));
	nt[d->thread_n++].t = t;
	return 0;
}

/* The caller's stopped threads (opts.threads) as the dump's; the count must be the process's. */
static int borrow_threads(struct esky_dump *d, pid_t pid, int nthreads)
{
	if ((size_t)nthreads != d->opts.thread_n + 1)
		return esky_error(-EAGAIN, "pid %d has %d threads, esky follows %zu", pid, nthreads,
				  d->opts.thread_n + 1);
	d->threads = calloc(d->opts.thread_n, sizeof(*d->threads));
	if (!d->threads)
		return -ENOMEM;
	for (size_t i = 0; i < d->opts.thread_n; i++)
		d->threads[i].t = d->opts.threads[i];
	d->thread_n = d->opts.thread_n;
	d->threads_borrowed = true;
	return 0;
}

void esky_dump_release_threads(struct esky_dump *d)
{
	for (size_t i = 0; i < d->thread_n; i++) {
		if (d->threads_borrowed) {
			free(d->threads[i].xstate);
			continue;
		}
		/* A thread of a program killed meanwhile is reaped, or its end would hang the main's. */
		if (esky_tracee_detach(d->threads[i].t, 0) == -ESRCH)
			esky_tracee_kill(d->threads[i].t);
		esky_tracee_free(d->threads[i].t);
		free(d->threads[i].xstate);
	}
	free(d->threads);
	d->threads = NULL;
	d->thread_n = 0;
}

/*
 * What is a thread's own: registers, xstate, mask, its queue of pending
 * signals, rseq, robust list; its alternate stack and clear-child-tid
 * address only the thread can tell (syscalls run in it, with a scratch
 * page of its own).
 */
static int collect_thread(struct esky_dump *d, struct dthread *th, uint32_t index)
{
	struct esky_tracee *t = th->t;
	struct esky_img_thread *img = &th->img;
	pid_t tid = esky_tracee_pid(t), pid = esky_tracee_pid(d->t);
	struct esky_proc_status ts;
	struct esky_rseq_conf rseq;
	esky_regs_t regs;
	siginfo_t *sis = NULL;
	size_t sin = 0;
	char path[96], *comm = NULL;
	uint64_t scratch = 0, robust[2] = { 0, 0 };
	long r;
	int ret, end_ret;

	ret = esky_proc_read_status(tid, &ts);
	if (ret)
		return esky_error(ret, "pid %d: cannot read the status of its thread %d: %s", pid,
				  tid, strerror(-ret));
	img->tid = (uint32_t)ts.nspid;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	if (!esky_read_file(path, &comm, NULL)) {
		comm[strcspn(comm, "\n")] = '\0';
		snprintf(img->comm, sizeof(img->comm), "%s", comm);
		free(comm);
	}
	ret = esky_tracee_get_regs(t, &regs);
	if (!ret)
		ret = esky_tracee_get_xstate(t, &th->xstate, &th->xlen);
	if (!ret)
		ret = esky_tracee_get_sigmask(t, &img->sig_blocked);
	if (!ret)
		ret = esky_tracee_get_rseq(t, &rseq);
	if (ret)
		return esky_error(ret, "pid %d: cannot read the registers of its thread %d: %s", pid,
				  tid, strerror(-ret));
	arch_regs_fixup_restart(&regs);
	memcpy(img->regs, &regs, sizeof(regs));
	img->rseq_ptr = rseq.ptr;
	img->rseq_len = rseq.len;
	img->rseq_sig = rseq.sig;
	img->rseq_flags = rseq.flags;
	if (syscall(SYS_get_robust_list, tid, &robust[0], &robust[1]) == 0) {
		img->robust_list = robust[0];
		img->robust_len = robust[1];
	}

	ret = esky_tracee_peek_siginfo(t, false, &sis, &sin);
	for (size_t i = 0; !ret && i < sin; i++) {
		struct esky_img_siginfo si = { .shared = 0, .thread = index + 1 };

		memcpy(si.info, &sis[i], sizeof(si.info));
		ret = esky_image_add_siginfo(d->w, &si);
	}
	free(sis);
	if (ret)
		return esky_error(ret, "pid %d: cannot read the pending signals of its thread %d: %s",
				  pid, tid, strerror(-ret));

	/* One memory: the main thread's syscall instruction serves (maps is read once). */
	ret = esky_tracee_share_syscall_insn(t, d->t);
	if (!ret)
		ret = esky_tracee_inject_begin(t);
	if (ret)
		return esky_error(ret, "pid %d: cannot run syscalls in its thread %d: %s", pid, tid,
				  strerror(-ret));
	ret = rsys(t, &r, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (!ret && r < 0 && r > -4096)
		ret = esky_error((int)r, "pid %d: cannot map scratch memory in its thread %d: %s", pid,
				 tid, strerror((int)-r));
	if (!ret) {
		uint64_t ss[3], tid_addr = 0;

		scratch = (uint64_t)r;
		ret = rsys(t, &r, SYS_sigaltstack, 0, (long)scratch, 0, 0, 0);
		if (!ret && r == 0) {
			ret = esky_tracee_read_mem(t, scratch, ss, sizeof(ss));
			img->altstack_sp = ss[0];
			img->altstack_flags = (uint32_t)ss[1];
			img->altstack_size = ss[2];
		}
		if (!ret)
			ret = rsys(t, &r, SYS_prctl, PR_GET_TID_ADDRESS, (long)scratch, 0, 0, 0);
		if (!ret && r == 0) {
			ret = esky_tracee_read_mem(t, scratch, &tid_addr, sizeof(tid_addr));
			img->clear_child_tid = tid_addr;
		}
		{
			int uret = rsys(t, &r, SYS_munmap, (long)scratch, 4096, 0, 0, 0);

			if (!ret)
				ret = uret;
		}
	}
	end_ret = esky_tracee_inject_end(t);
	if (!ret && end_ret)
		ret = esky_error(end_ret, "pid %d: cannot put the registers of its thread %d back: %s",
				 pid, tid, strerror(-end_ret));
	return ret;
}

static int collect_core(struct esky_dump *d, struct esky_img_core *core,
			const struct esky_proc_status *status)
{
	struct esky_tracee *t = d->t;
	pid_t pid = esky_tracee_pid(t);
	struct esky_proc_stat st;
	struct esky_rseq_conf rseq;
	esky_regs_t regs;
	char *cwd = NULL, *exe = NULL, *cmdline = NULL, path[64], *auxv = NULL;
	void *xstate = NULL;
	size_t xlen = 0, auxv_len = 0;
	siginfo_t *sis = NULL;
	size_t sin = 0;
	int32_t exe_index;
	int ret;

	core->arch = ESKY_IMG_ARCH_X86_64;
	/* The pid the program sees (its own PID namespace's, when it runs in one). */
	core->pid = (uint32_t)(status->nspid > 0 ? status->nspid : pid);
	core->uid = status->uid[1];
	core->gid = status->gid[1];
	core->umask = status->umask;
	core->run_ns = d->opts.run_ns;
	core->no_new_privs = (uint32_t)status->no_new_privs;
	core->rlimit_n = RLIM_NLIMITS < 16 ? RLIM_NLIMITS : 16;
	for (unsigned r = 0; r < core->rlimit_n; r++) {
		struct rlimit rl;

		if (prlimit(pid, (__rlimit_resource_t)r, NULL, &rl) < 0)
			return esky_error(-errno, "pid %d: cannot read its resource limits: %s", pid,
					  strerror(errno));
		core->rlimits[r][0] = rl.rlim_cur;
		core->rlimits[r][1] = rl.rlim_max;
	}
	ret = esky_proc_read_stat(pid, &st);
	if (ret)
		return esky_error(ret, "pid %d: cannot read its stat: %s", pid, strerror(-ret));
	memcpy(core->comm, st.comm, sizeof(core->comm) - 1);
	core->nice = st.nice;
	core->start_code = st.start_code;
	core->end_code = st.end_code;
	core->start_data = st.start_data;
	core->end_data = st.end_data;
	core->start_brk = st.start_brk;
	core->start_stack = st.start_stack;
	core->arg_start = st.arg_start;
	core->arg_end = st.arg_end;
	core->env_start = st.env_start;
	core->env_end = st.env_end;

	ret = esky_tracee_get_regs(t, &regs);
	if (!ret)
		ret = esky_tracee_get_xstate(t, &xstate, &xlen);
	if (!ret)
		ret = esky_tracee_get_sigmask(t, &core->sig_blocked);
	if (!ret)
		ret = esky_tracee_get_rseq(t, &rseq);
	if (ret) {
		esky_error(ret, "pid %d: cannot read its registers: %s", pid, strerror(-ret));
		goto out_free;
	}
	/* A syscall interrupted by our stop is restarted when the image resumes. */
	arch_regs_fixup_restart(&regs);
	_Static_assert(sizeof(regs) == sizeof(core->regs), "register set size");
	memcpy(core->regs, &regs, sizeof(regs));
	/* XCR0, the features the CPU had enabled (arch.h). */
	if (xlen >= ARCH_XSTATE_XCR0_OFF + sizeof(core->xfeatures))
		memcpy(&core->xfeatures, (char *)xstate + ARCH_XSTATE_XCR0_OFF,
		       sizeof(core->xfeatures));
	ret = esky_image_set_xstate(d->w, xstate, xlen);
	if (ret)
		goto out_free;
	core->rseq_ptr = rseq.ptr;
	core->rseq_len = rseq.len;
	core->rseq_sig = rseq.sig;
	core->rseq_flags = rseq.flags;

	for (int shared = 0; shared < 2 && !ret; shared++) {
		ret = esky_tracee_peek_siginfo(t, shared, &sis, &sin);
		for (size_t i = 0; !ret && i < sin; i++) {
			struct esky_img_siginfo si = { .shared = (uint32_t)shared };

			_Static_assert(sizeof(si.info) == sizeof(siginfo_t), "siginfo size");
			memcpy(si.info, &sis[i], sizeof(si.info));
			ret = esky_image_add_siginfo(d->w, &si);
		}
		free(sis);
		sis = NULL;
	}
	if (ret) {
		esky_error(ret, "pid %d: cannot read its pending signals: %s", pid, strerror(-ret));
		goto out_free;
	}

	ret = esky_proc_readlink(pid, "cwd", &cwd);
	if (!ret && strlen(cwd) > 10 && !strcmp(cwd + strlen(cwd) - 10, " (deleted)")) {
		cwd[strlen(cwd) - 10] = '\0';
		ret = esky_error(-EOPNOTSUPP, "pid %d: its current directory %s was deleted", pid, cwd);
	}
	if (!ret)
		ret = writer_string(d, cwd, &core->cwd);
	if (!ret && !esky_proc_readlink(pid, "exe", &exe)) {
		/*
		 * A deleted program's pages are saved whole with its mappings; there
		 * is no file for /proc/PID/exe to name after a resume (it then names
		 * the restore agent, as when PR_SET_MM_EXE_FILE is not permitted).
		 */
		if (strlen(exe) > 10 && !strcmp(exe + strlen(exe) - 10, " (deleted)")) {
			exe[strlen(exe) - 10] = '\0';
			pr_note("pid %d: its program %s was deleted: its pages are saved whole", pid,
				exe);
		} else {
			ret = file_index(d, exe, ESKY_IMG_FILEF_EXE, &exe_index);
			if (!ret)
				core->exe_file = (uint32_t)exe_index;
		}
	}
	if (!ret && !read_cmdline(pid, &cmdline))
		ret = writer_string(d, cmdline, &core->cmdline);
	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	if (!ret && !esky_read_file(path, &auxv, &auxv_len))
		ret = esky_image_set_auxv(d->w, (uint64_t *)auxv, auxv_len / 8);
out_free:
	free(auxv);
	free(cmdline);
	free(exe);
	free(cwd);
	free(xstate);
	return ret;
}

/* Apply the patches that fall in [addr, addr+len) to buf. */
static void apply_patches(const struct esky_dump *d, uint64_t addr, char *buf, size_t len)
{
	for (size_t i = 0; i < d->opts.patch_n; i++) {
		const struct esky_dump_patch *p = &d->opts.patches[i];

		if (p->addr >= addr && p->addr < addr + len)
			buf[p->addr - addr] = (char)p->byte;
	}
}

static int read_whole(struct esky_tracee *src, struct dvma *v, char **out)
{
	size_t len = (size_t)(v->img.end - v->img.start);
	char *buf = malloc(len);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = esky_tracee_read_mem(src, v->img.start, buf, len);
	if (ret) {
		free(buf);
		return esky_error(ret, "cannot read memory 0x%" PRIx64 "-0x%" PRIx64 " of pid %d: %s",
				  v->img.start, v->img.end, esky_tracee_pid(src), strerror(-ret));
	}
	*out = buf;
	return 0;
}

int esky_dump_prepare(struct esky_tracee *t, const char *path, const struct esky_dump_opts *o,
		      struct esky_dump **out)
{
	uint64_t t0 = esky_now_ns();
	struct esky_proc_status status;
	struct esky_img_core core;
	struct esky_dump *d;
	pid_t pid = esky_tracee_pid(t);
	int ret;

	ret = check_process(pid, &status, o->tree != NULL);
	d = ret ? NULL : calloc(1, sizeof(*d));
	if (d) {
		d->t = t;
		d->opts = *o;
		d->opts.writer = NULL;
		d->path = strdup(path);
	}
	if (!d || !d->path) {
		if (o->writer)
			esky_image_writer_abort(o->writer);
		if (d)
			free(d);
		return ret ? ret : -ENOMEM;
	}
	if (o->writer) {
		d->w = o->writer;
		esky_image_writer_restamp(d->w);
	} else {
		ret = esky_image_writer_open(path, &d->w);
	}
	if (ret) {
		free(d->path);
		free(d);
		return ret;
	}
	memcpy(d->id, esky_image_writer_id(d->w), sizeof(d->id));
	if (o->parent_id)
		ret = esky_image_set_parent(d->w, o->parent_id, o->parent_hint);
	{
		struct utsname u;

		if (!ret && uname(&u) == 0) {
			ret = esky_image_add_meta(d->w, "hostname", u.nodename);
			if (!ret)
				ret = esky_image_add_meta(d->w, "kernel", u.release);
		}
		if (!ret)
			ret = esky_image_add_meta(d->w, "esky", ESKY_VERSION);
		/* How an incremental image found what changed, for esky info. */
		if (!ret && o->parent_id)
			ret = esky_image_add_meta(d->w, "changed-pages",
						  o->page_unchanged ? "userfaultfd write-protect"
								    : "content hashes");
	}
	memset(&core, 0, sizeof(core));
	core.exe_file = UINT32_MAX;
	/* Every thread stopped before anything is read: one instant for all. */
	if (!ret && o->threads)
		ret = borrow_threads(d, pid, status.threads);
	else if (!ret && status.threads > 1)
		ret = esky_tracee_attach_threads(pid, dump_has_thread, dump_add_thread, d);
	if (!ret)
		ret = collect_vmas(d, pid);
	if (!ret)
		ret = collect_fds(d, pid);
	if (!ret)
		ret = collect_core(d, &core, &status);
	if (!ret) {
		sigset_t ending, old;

		/*
		 * While syscalls run inside the program, its registers and
		 * signal mask are esky's: an esky that dies now leaves it
		 * detached in that state, to crash (or to run on with every
		 * signal blocked). Hold the signals that end esky (Ctrl-C, a
		 * hang-up, kill) until the program has its own state back.
		 * SIGKILL cannot be held: doc/esky.md says so.
		 */
		sigemptyset(&ending);
		sigaddset(&ending, SIGHUP);
		sigaddset(&ending, SIGINT);
		sigaddset(&ending, SIGQUIT);
		sigaddset(&ending, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &ending, &old);
		ret = collect_injected(d, &core, &status);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	for (size_t i = 0; !ret && i < d->thread_n; i++)
		ret = collect_thread(d, &d->threads[i], (uint32_t)i);
	for (size_t i = 0; !ret && i < d->thread_n; i++)
		ret = esky_image_add_thread(d->w, &d->threads[i].img, d->threads[i].xstate,
					    d->threads[i].xlen);
	if (!ret && d->thread_n) {
		char n[16];

		snprintf(n, sizeof(n), "%zu", d->thread_n + 1);
		ret = esky_image_add_meta(d->w, "threads", n);
	}
	/* Which thread a rewind makes current again (esky-shell's), by the tid the program knows. */
	for (size_t i = 0; !ret && o->current_thread && i < d->thread_n; i++) {
		if (esky_tracee_pid(d->threads[i].t) == o->current_thread) {
			char tid[16];

			snprintf(tid, sizeof(tid), "%u", d->threads[i].img.tid);
			ret = esky_image_add_meta(d->w, "current-thread", tid);
		}
	}
	if (!ret)
		ret = esky_image_set_core(d->w, &core);
	if (!ret)
		ret = add_files(d);
	/*
	 * With a frozen copy, what the copy does not share with the original
	 * is read now, while the original is still stopped: shared memory
	 * (the original would write it on) and mappings a fork leaves out or
	 * wipes.
	 */
	for (size_t i = 0; !ret && d->copy && i < d->vma_n; i++) {
		struct dvma *v = &d->vmas[i];

		if (v->mode == PAGES_NONE)
			continue;
		if (v->img.kind == ESKY_IMG_VMA_SHARED_ANON || v->img.kind == ESKY_IMG_VMA_SYSV_SHM ||
		    (v->img.flags & (ESKY_IMG_VMAF_DONTFORK | ESKY_IMG_VMAF_WIPEONFORK))) {
			v->from_original = true;
			ret = read_whole(t, v, &v->content);
		}
	}
	if (ret) {
		esky_dump_free(d);
		return ret;
	}
	d->prepare_ns = esky_now_ns() - t0;
	*out = d;
	return 0;
}

bool esky_dump_has_copy(const struct esky_dump *d)
{
	return d->copy != NULL;
}

const uint8_t *esky_dump_id(const struct esky_dump *d)
{
	return d->id;
}

static bool want_page(enum page_mode mode, uint64_t pm)
{
	switch (mode) {
	case PAGES_ANON:
		return pm & (PM_PRESENT | PM_SWAP);
	case PAGES_COW:
		return (pm & PM_SWAP) || ((pm & PM_PRESENT) && !(pm & PM_FILE));
	case PAGES_ALL:
		return true;
	default:
		return false;
	}
}

static int write_range(struct esky_dump *d, struct dvma *v, uint64_t addr, char *buf, size_t npages,
		       struct esky_dump_stats *st)
{
	struct esky_page_parent parent = { d->opts.parent_hash, d->opts.parent_ctx };

	apply_patches(d, addr, buf, npages * ESKY_PAGE_SIZE);
	return esky_image_write_pages(d->w, addr, buf, npages, v->zero_holes,
				      d->opts.parent_hash ? &parent : NULL, &st->pages_stored,
				      &st->pages_parent);
}

/*
 * A stretch of a chunk: pages the parent holds, or pages to read and
 * store. A chunk's stretches are found first and its pages read in one
 * batch, then added in address order.
 */
struct stretch {
	size_t first, n; /* pages, from the chunk's start */
	bool parent;
};

static int dump_vma(struct esky_dump *d, struct dvma *v, struct esky_tracee *src, int pagemap_fd,
		    uint64_t *pm, struct stretch *sv, struct esky_mem_range *rg,
		    struct esky_dump_stats *st)
{
	size_t (*unchanged)(void *, uint64_t, size_t) = d->opts.page_unchanged;
	uint64_t addr;
	int ret = 0;

	if (v->content) {
		size_t npages = (size_t)((v->img.end - v->img.start) / ESKY_PAGE_SIZE);

		/* Written at once: the buffer's pages, which come before, go first. */
		d->packed = 0;
		ret = esky_image_writer_submit(d->w);
		return ret ? ret : write_range(d, v, v->img.start, v->content, npages, st);
	}
	for (addr = v->img.start; addr < v->img.end && !ret; addr += CHUNK_PAGES * ESKY_PAGE_SIZE) {
		size_t n = (size_t)((v->img.end - addr) / ESKY_PAGE_SIZE), i = 0, ns = 0, nr = 0, bad;
		size_t need = 0;
		char *buf;

		if (n > CHUNK_PAGES)
			n = CHUNK_PAGES;
		/*
		 * Pages dirty-page tracking vouches for are the parent's: not
		 * read, not hashed (a whole chunk of them costs no page map read).
		 */
		if (unchanged && unchanged(d->opts.unchanged_ctx, addr, n) == n) {
			ret = esky_image_add_parent_pages(d->w, addr, n);
			st->pages_parent += n;
			continue;
		}
		while (i < n) {
			size_t e = n, same, j;

			if (unchanged) {
				/* A stretch the parent holds, then one written since (or untracked). */
				same = unchanged(d->opts.unchanged_ctx, addr + i * ESKY_PAGE_SIZE, n - i);
				if (same) {
					sv[ns++] = (struct stretch){ i, same, true };
					i += same;
					continue;
				}
				for (e = i + 1;
				     e < n && !unchanged(d->opts.unchanged_ctx, addr + e * ESKY_PAGE_SIZE, 1);
				     e++)
					;
			}
			/* Only the stretch's part of the page map: its walk costs per page. */
			if (v->mode != PAGES_ALL) {
				ret = esky_pread_all(pagemap_fd, pm + i, (e - i) * sizeof(*pm),
						     (off_t)((addr / ESKY_PAGE_SIZE + i) * sizeof(*pm)));
				if (ret)
					return esky_error(ret, "cannot read the page map of pid %d: %s",
							  esky_tracee_pid(src), strerror(-ret));
			}
			while (i < e) {
				if (v->mode != PAGES_ALL && !want_page(v->mode, pm[i])) {
					i++;
					continue;
				}
				for (j = i + 1; j < e && (v->mode == PAGES_ALL || want_page(v->mode, pm[j]));
				     j++)
					;
				sv[ns++] = (struct stretch){ i, j - i, false };
				rg[nr++] = (struct esky_mem_range){ addr + i * ESKY_PAGE_SIZE, NULL,
								    (j - i) * ESKY_PAGE_SIZE };
				need += j - i;
				i = j;
			}
		}
		/*
		 * The chunk's pages go into the writer buffer after those of the
		 * chunks before (packed: an incremental snapshot's few hundred
		 * pages scattered over a GiB fill one buffer, one hand-over to
		 * the writer thread instead of one per chunk); a full buffer
		 * goes first.
		 */
		if (need && d->packed + need > CHUNK_PAGES) {
			d->packed = 0;
			ret = esky_image_writer_submit(d->w);
			if (ret)
				return ret;
		}
		buf = need ? esky_image_writer_buffer(d->w) : NULL;
		if (need && !buf)
			return -ENOMEM;
		for (size_t k = 0, at = d->packed; k < nr; k++) {
			rg[k].buf = buf + at * ESKY_PAGE_SIZE;
			at += rg[k].len / ESKY_PAGE_SIZE;
		}
		ret = esky_tracee_read_ranges(src, rg, nr, &bad);
		if (ret)
			return esky_error(ret, "cannot read memory at 0x%" PRIx64 " of pid %d: %s",
					  rg[bad].addr, esky_tracee_pid(src), strerror(-ret));
		for (size_t k = 0, r = 0; k < ns && !ret; k++) {
			uint64_t at = addr + sv[k].first * ESKY_PAGE_SIZE;

			if (sv[k].parent) {
				ret = esky_image_add_parent_pages(d->w, at, sv[k].n);
				st->pages_parent += sv[k].n;
			} else {
				ret = write_range(d, v, at, rg[r++].buf, sv[k].n, st);
			}
		}
		d->packed += need;
	}
	return ret;
}

int esky_dump_read(struct esky_dump *d, struct esky_dump_stats *st)
{
	uint64_t t0 = esky_now_ns();
	struct esky_tracee *src = d->copy ? d->copy : d->t;
	char path[64];
	uint64_t *pm;
	struct stretch *sv;
	struct esky_mem_range *rg;
	int pagemap_fd, ret = 0;

	memset(st, 0, sizeof(*st));
	snprintf(path, sizeof(path), "/proc/%d/pagemap", esky_tracee_pid(src));
	pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0)
		return esky_error(-errno, "cannot read %s: %s", path, strerror(errno));
	_Static_assert(CHUNK_PAGES * ESKY_PAGE_SIZE <= ESKY_IMAGE_BUF_SIZE, "chunk fits a buffer");
	pm = malloc(CHUNK_PAGES * sizeof(*pm));
	sv = malloc(CHUNK_PAGES * sizeof(*sv));
	rg = malloc(CHUNK_PAGES * sizeof(*rg));
	if (!pm || !sv || !rg)
		ret = -ENOMEM;
	for (size_t i = 0; i < d->vma_n && !ret; i++) {
		struct dvma *v = &d->vmas[i];

		ret = esky_image_add_vma(d->w, &v->img);
		if (!ret && v->mode != PAGES_NONE)
			ret = dump_vma(d, v, src, pagemap_fd, pm, sv, rg, st);
	}
	/* The last buffer's pages. */
	d->packed = 0;
	if (!ret)
		ret = esky_image_writer_submit(d->w);
	free(pm);
	free(sv);
	free(rg);
	close(pagemap_fd);
	/*
	 * Every page is read: the copy goes before the file is in place, so
	 * that nothing of it (its System V attachments, its share of memory)
	 * outlives the checkpoint the user waits for.
	 */
	if (d->copy) {
		esky_tracee_kill(d->copy);
		esky_tracee_free(d->copy);
		d->copy = NULL;
	}
	st->prepare_ns = d->prepare_ns;
	st->write_ns = esky_now_ns() - t0;
	return ret;
}

int esky_dump_commit(struct esky_dump *d, struct esky_dump_stats *st)
{
	uint64_t t0 = esky_now_ns();
	struct stat sb;
	int ret;

	ret = esky_image_writer_commit(d->w);
	d->w = NULL;
	if (!ret && stat(d->path, &sb) == 0)
		st->file_size = (uint64_t)sb.st_size;
	st->write_ns += esky_now_ns() - t0;
	return ret;
}

int esky_dump_write(struct esky_dump *d, struct esky_dump_stats *st)
{
	int ret = esky_dump_read(d, st);

	return ret ? ret : esky_dump_commit(d, st);
}

void esky_dump_free(struct esky_dump *d)
{
	if (!d)
		return;
	if (d->w)
		esky_image_writer_abort(d->w);
	if (d->copy) {
		esky_tracee_kill(d->copy);
		esky_tracee_free(d->copy);
	}
	esky_dump_release_threads(d);
	for (size_t i = 0; i < d->vma_n; i++)
		free(d->vmas[i].content);
	free(d->vmas);
	for (size_t i = 0; i < d->file_n; i++)
		free(d->file_paths[i]);
	free(d->file_paths);
	free(d->files);
	free(d->path);
	free(d);
}
