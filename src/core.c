/*
 * ELF core files from checkpoint images, see core.h. No ptrace.
 *
 * The file is laid out as Linux's fs/binfmt_elf.c lays out a core dump,
 * because that is what gdb (and every other reader) knows:
 *
 *   0        ELF header (ET_CORE, EM_X86_64)
 *   64       program headers: PT_NOTE, then PT_LOAD for each piece of memory
 *            (PN_XNUM: the count is in section header 0, after the notes)
 *            notes: NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE,
 *                   NT_FPREGSET, NT_X86_XSTATE ("LINUX") of the main
 *                   thread; then NT_PRSTATUS, NT_FPREGSET, NT_X86_XSTATE
 *                   of each other thread (THREADS)
 *   4096·k   memory, one PT_LOAD after another, page aligned
 *
 * A mapping is one PT_LOAD whose file size is its whole size, unless some
 * of its pages have no contents to give (below): those pages are at the
 * end of a PT_LOAD's memory size and past its file size, and a mapping
 * may then take several PT_LOADs. gdb reads such pages from the file that
 * NT_FILE names for the mapping, as it reads pages a kernel core leaves out.
 *
 * Where each page's contents come from:
 *
 *   stored in an image of the chain    the image's page data
 *   stored as zero, or unstored anon   zero: a hole in the (sparse) core
 *   unstored, file mapping             the file at pgoff, if it is the
 *                                      file of the checkpoint; past its
 *                                      end, a changed file, a device: none
 *   [vdso]                             this process's vDSO if the kernel
 *                                      is the checkpoint's, else none
 *   [vvar], [vvar_vclock]              no PT_LOAD: kernel data that gdb
 *                                      cannot use and the kernel leaves out
 *   PROT_NONE unstored, MADV_DONTDUMP  none, as the kernel does
 */
#include "core.h"
#include "arch.h"
#include "fileid.h"
#include "log.h"
#include "util.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define PAGE ESKY_IMG_PAGE_SIZE
/* Bytes copied at a time from an image or a mapped file into the core. */
#define COPY_CHUNK (1u << 20)

/*
 * The descriptors of NT_PRSTATUS and NT_PRPSINFO: struct elf_prstatus and
 * struct elf_prpsinfo of x86-64 Linux (include/uapi/linux/elfcore.h), with
 * the padding the compiler puts there spelled out. Checked against
 * glibc's <sys/procfs.h> below.
 */
struct core_prstatus {
	int32_t si_signo, si_code, si_errno; /* struct elf_siginfo */
	int16_t cursig;
	uint16_t pad0;
	uint64_t sigpend;
	uint64_t sighold;
	int32_t pid, ppid, pgrp, sid;
	int64_t utime[2], stime[2], cutime[2], cstime[2]; /* struct timeval */
	uint64_t reg[ESKY_IMG_REGS_WORDS];                 /* struct user_regs_struct */
	int32_t fpvalid;
	uint32_t pad1;
};

struct core_prpsinfo {
	char state;
	char sname;
	char zomb;
	char nice;
	uint32_t pad0;
	uint64_t flag;
	uint32_t uid, gid;
	int32_t pid, ppid, pgrp, sid;
	char fname[16];
	char psargs[80]; /* ELF_PRARGSZ */
};

_Static_assert(sizeof(struct core_prstatus) == 336, "elf_prstatus layout");
_Static_assert(sizeof(struct core_prstatus) == sizeof(struct elf_prstatus), "elf_prstatus layout");
_Static_assert(__builtin_offsetof(struct core_prstatus, reg) ==
		       __builtin_offsetof(struct elf_prstatus, pr_reg),
	       "elf_prstatus layout");
_Static_assert(__builtin_offsetof(struct core_prstatus, pid) ==
		       __builtin_offsetof(struct elf_prstatus, pr_pid),
	       "elf_prstatus layout");
_Static_assert(__builtin_offsetof(struct core_prstatus, fpvalid) ==
		       __builtin_offsetof(struct elf_prstatus, pr_fpvalid),
	       "elf_prstatus layout");
_Static_assert(sizeof(struct core_prpsinfo) == 136, "elf_prpsinfo layout");
_Static_assert(sizeof(struct core_prpsinfo) == sizeof(struct elf_prpsinfo), "elf_prpsinfo layout");
_Static_assert(__builtin_offsetof(struct core_prpsinfo, fname) ==
		       __builtin_offsetof(struct elf_prpsinfo, pr_fname),
	       "elf_prpsinfo layout");
_Static_assert(__builtin_offsetof(struct core_prpsinfo, uid) ==
		       __builtin_offsetof(struct elf_prpsinfo, pr_uid),
	       "elf_prpsinfo layout");

/* The FXSAVE legacy area: NT_FPREGSET, the first 512 bytes of XSTATE. */
#define FXSAVE_SIZE 512u
/* FXSAVE area + XSAVE header: the least XSTATE a reader can make sense of. */
#define XSAVE_MIN_SIZE (FXSAVE_SIZE + 64u)
/* The kernel's task state number and letter for a stopped task (fill_psinfo). */
#define PSINFO_STATE_STOPPED 3
#define PSINFO_SNAME_STOPPED 'T'

/* Where the contents of a piece of memory come from. */
enum piece_src {
	SRC_IMAGE, /* page data of chain[level] at off */
	SRC_ZERO,  /* zero: a hole in the core */
	SRC_FILE,  /* FILES[level] at off */
	SRC_VDSO,  /* this process's own vDSO at off */
	SRC_NONE,  /* no contents: past the PT_LOAD's file size */
};

struct piece {
	uint64_t start, end;
	uint64_t off;
	uint32_t src;
	uint32_t level; /* SRC_IMAGE: chain index; SRC_FILE: FILES index */
};

/* One PT_LOAD: pieces [first, first + count) in order, NONE ones last. */
struct seg {
	uint64_t vaddr, memsz, filesz, offset;
	uint32_t flags;
	size_t first, count;
};

/* A mapped file, checked and opened when a mapping first needs it. */
enum file_state { FILE_UNCHECKED = 0, FILE_USABLE, FILE_LEFT_OUT };

struct mapped_file {
	enum file_state state;
	int fd;
	uint64_t size;
};

struct core_ctx {
	struct esky_image *const *chain;
	size_t n;
	const struct esky_image *img;
	const struct esky_image_view *v;
	struct piece *pieces;
	size_t piece_n, piece_cap;
	struct seg *segs;
	size_t seg_n, seg_cap;
	struct mapped_file *files;
	/* this process's vDSO, when it is the checkpointed one's; else NULL */
	const char *vdso;
	uint64_t vdso_size;
	bool vdso_in_core;
	/* the mapping being resolved, and how far */
	const struct esky_img_vma *vma;
	size_t vma_first; /* its first piece: pieces of two mappings never merge */
	uint64_t cursor;
	/* output */
	struct esky_outfile out;
	const char *path;
	char *buf;
};

static int add_piece(struct core_ctx *c, uint64_t start, uint64_t end, uint32_t src,
		     uint32_t level, uint64_t off)
{
	struct piece *p = c->piece_n > c->vma_first ? &c->pieces[c->piece_n - 1] : NULL;

	if (start >= end)
		return 0;
	/* Merge with the previous piece when it goes on where that one ends. */
	if (p && p->end == start && p->src == src &&
	    (src == SRC_ZERO || src == SRC_NONE ||
	     (p->level == level && p->off + (p->end - p->start) == off))) {
		p->end = end;
		return 0;
	}
	if (c->piece_n == c->piece_cap) {
		size_t cap = c->piece_cap ? 2 * c->piece_cap : 256;
		struct piece *np = realloc(c->pieces, cap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		c->pieces = np;
		c->piece_cap = cap;
	}
	c->pieces[c->piece_n++] = (struct piece){ start, end, off, src, level };
	return 0;
}

/*
 * Check the file of a mapping once: it must be the file the checkpoint was
 * taken with, or its pages would show another program's bytes.
 */
static void check_file(struct core_ctx *c, int32_t index)
{
	struct mapped_file *mf = &c->files[index];
	const struct esky_img_file *f = &c->v->files[index];
	const char *path = esky_image_str(c->img, f->path);
	char why[160];
	struct stat st;
	int ret;

	if (mf->state != FILE_UNCHECKED)
		return;
	mf->state = FILE_LEFT_OUT;
	/* A mapped device is not read: that could block, fail or act on the device. */
	if (!S_ISREG(f->mode)) {
		pr_warn("%s is not a regular file: its pages the checkpoint did not store are left "
			"out of the core",
			path);
		return;
	}
	ret = esky_fileid_check(path, f, why, sizeof(why));
	if (ret == -ENOENT) {
		pr_warn("%s is gone: its pages the checkpoint did not store are left out of the core",
			path);
		return;
	}
	if (ret || why[0]) {
		pr_warn("%s changed since the checkpoint (%s): its pages the checkpoint did not store "
			"are left out of the core",
			path, why[0] ? why : strerror(-ret));
		return;
	}
	mf->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mf->fd < 0 || fstat(mf->fd, &st) < 0) {
		pr_warn("%s: cannot read it (%s): its pages the checkpoint did not store are left out "
			"of the core",
			path, strerror(errno));
		return;
	}
	mf->size = (uint64_t)st.st_size;
	mf->state = FILE_USABLE;
}

/* Pages [a, b) of the current mapping that no image stores. */
static int add_unstored(struct core_ctx *c, uint64_t a, uint64_t b)
{
	const struct esky_img_vma *m = c->vma;
	struct mapped_file *mf;
	uint64_t off, eof, mid;

	if (a >= b)
		return 0;
	if (m->prot == 0)
		return add_piece(c, a, b, SRC_NONE, 0, 0);
	switch (m->kind) {
	case ESKY_IMG_VMA_ANON:
	case ESKY_IMG_VMA_SHARED_ANON:
	case ESKY_IMG_VMA_SYSV_SHM:
		return add_piece(c, a, b, SRC_ZERO, 0, 0);
	case ESKY_IMG_VMA_FILE_PRIVATE:
	case ESKY_IMG_VMA_FILE_SHARED:
		check_file(c, m->file);
		mf = &c->files[m->file];
		if (mf->state != FILE_USABLE)
			return add_piece(c, a, b, SRC_NONE, 0, 0);
		/* Pages wholly past the end of the file would be SIGBUS in the program. */
		off = m->pgoff + (a - m->start);
		eof = ESKY_ALIGN_UP(mf->size, (uint64_t)PAGE);
		mid = off >= eof ? a : (eof - off < b - a ? a + (eof - off) : b);
		if (add_piece(c, a, mid, SRC_FILE, (uint32_t)m->file, off))
			return -ENOMEM;
		return add_piece(c, mid, b, SRC_NONE, 0, 0);
	case ESKY_IMG_VMA_VDSO:
		if (c->vdso && m->end - m->start == c->vdso_size) {
			c->vdso_in_core = true;
			return add_piece(c, a, b, SRC_VDSO, 0, a - m->start);
		}
		return add_piece(c, a, b, SRC_NONE, 0, 0);
	default:
		return add_piece(c, a, b, SRC_NONE, 0, 0);
	}
}

static int resolved_piece(void *ctx, uint64_t vaddr, uint64_t npages, uint32_t kind, size_t level,
			  uint64_t file_off, const uint64_t *hashes)
{
	struct core_ctx *c = ctx;
	uint64_t end = vaddr + npages * PAGE;
	int ret;

	(void)hashes;
	ret = add_unstored(c, c->cursor, vaddr);
	if (!ret)
		ret = add_piece(c, vaddr, end, kind == ESKY_IMG_PAGES_DATA ? SRC_IMAGE : SRC_ZERO,
				(uint32_t)level, file_off);
	c->cursor = end;
	return ret;
}

static uint32_t prot_flags(uint32_t prot)
{
	return (prot & 1 ? PF_R : 0) | (prot & 2 ? PF_W : 0) | (prot & 4 ? PF_X : 0);
}

static int add_seg(struct core_ctx *c, const struct esky_img_vma *m, size_t first)
{
	if (c->seg_n == c->seg_cap) {
		size_t cap = c->seg_cap ? 2 * c->seg_cap : 64;
		struct seg *ns = realloc(c->segs, cap * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		c->segs = ns;
		c->seg_cap = cap;
	}
	c->segs[c->seg_n++] = (struct seg){ .vaddr = c->pieces[first].start,
					    .flags = prot_flags(m->prot),
					    .first = first };
	return 0;
}

/* The pieces of mapping m, then its PT_LOADs. */
static int layout_vma(struct core_ctx *c, const struct esky_img_vma *m)
{
	size_t first = c->piece_n;
	struct seg *s = NULL;
	int ret;

	c->vma = m;
	c->vma_first = first;
	if (m->flags & ESKY_IMG_VMAF_DONTDUMP) {
		/* The program asked for it to be left out of core dumps (MADV_DONTDUMP). */
		ret = add_piece(c, m->start, m->end, SRC_NONE, 0, 0);
	} else {
		c->cursor = m->start;
		ret = esky_image_resolve(c->chain, c->n, m->start, m->end, resolved_piece, c);
		if (!ret)
			ret = add_unstored(c, c->cursor, m->end);
	}
	for (size_t i = first; !ret && i < c->piece_n; i++) {
		const struct piece *p = &c->pieces[i];
		uint64_t len = p->end - p->start;

		/* Contents after pages without: a new PT_LOAD. */
		if (!s || (p->src != SRC_NONE && s->memsz != s->filesz)) {
			ret = add_seg(c, m, i);
			if (ret)
				break;
			s = &c->segs[c->seg_n - 1];
		}
		s->count++;
		s->memsz += len;
		if (p->src != SRC_NONE)
			s->filesz += len;
	}
	return ret;
}

/* Append one note: header, name and descriptor, each padded to 4 bytes. */
static int add_note(struct esky_buf *b, const char *name, uint32_t type, const void *desc,
		    size_t len)
{
	Elf64_Nhdr nh = { .n_namesz = (Elf64_Word)strlen(name) + 1,
			  .n_descsz = (Elf64_Word)len,
			  .n_type = type };
	int ret;

	ret = esky_buf_append(b, &nh, sizeof(nh));
	if (!ret)
		ret = esky_buf_append(b, name, nh.n_namesz);
	if (!ret)
		ret = esky_buf_pad(b, 4);
	if (!ret)
		ret = esky_buf_append(b, desc, len);
	if (!ret)
		ret = esky_buf_pad(b, 4);
	return ret;
}

/*
 * NT_PRSTATUS of one thread: thread 0 is the main one (CORE), i + 1 is
 * THREADS[i]. gdb makes a thread of each, "LWP pr_pid", and gives it the
 * register notes that follow, up to the next NT_PRSTATUS.
 */
static int note_prstatus(struct core_ctx *c, struct esky_buf *b, size_t thread, bool fpvalid)
{
	const struct esky_img_core *core = c->v->core;
	const struct esky_img_thread *th = thread ? &c->v->threads[thread - 1] : NULL;
	struct core_prstatus st;

	memset(&st, 0, sizeof(st));
	/*
	 * No signal: the process was stopped by esky, not killed, and gdb
	 * says "Program terminated with signal ..." for any nonzero one.
	 * Pending: those queued to the thread; the main thread shows the
	 * process's shared queue as well (as before threads were saved).
	 */
	for (size_t i = 0; i < c->v->sig_n; i++) {
		int32_t signo;

		if (c->v->sigs[i].thread != thread)
			continue;
		memcpy(&signo, c->v->sigs[i].info, sizeof(signo));
		if (signo >= 1 && signo <= 64)
			st.sigpend |= 1ULL << (signo - 1);
	}
	st.sighold = th ? th->sig_blocked : core->sig_blocked;
	st.pid = (int32_t)(th ? th->tid : core->pid);
	memcpy(st.reg, th ? th->regs : core->regs, sizeof(st.reg));
	st.fpvalid = fpvalid;
	return add_note(b, "CORE", NT_PRSTATUS, &st, sizeof(st));
}

static int note_prpsinfo(struct core_ctx *c, struct esky_buf *b)
{
	const struct esky_img_core *core = c->v->core;
	const char *cmdline = esky_image_str(c->img, core->cmdline);
	struct core_prpsinfo ps;

	memset(&ps, 0, sizeof(ps));
	ps.state = PSINFO_STATE_STOPPED;
	ps.sname = PSINFO_SNAME_STOPPED;
	ps.nice = (char)core->nice;
	ps.uid = core->uid;
	ps.gid = core->gid;
	ps.pid = (int32_t)core->pid;
	memcpy(ps.fname, core->comm, strnlen(core->comm, sizeof(ps.fname) - 1));
	/* gdb prints this as "Core was generated by `...'": the kernel keeps 79 bytes. */
	memcpy(ps.psargs, cmdline, strnlen(cmdline, sizeof(ps.psargs) - 1));
	return add_note(b, "CORE", NT_PRPSINFO, &ps, sizeof(ps));
}

static int note_auxv(struct core_ctx *c, struct esky_buf *b)
{
	const struct esky_image_view *v = c->v;
	static const uint64_t at_null[2] = { AT_NULL, 0 };
	size_t len = v->auxv_n * sizeof(uint64_t);
	struct esky_buf d = { 0 };
	int ret;

	/* gdb finds a PIE's load address from AT_ENTRY and AT_PHDR. It stops at AT_NULL. */
	ret = esky_buf_append(&d, v->auxv, len);
	if (!ret && (v->auxv_n < 2 || v->auxv[v->auxv_n - 2] != AT_NULL))
		ret = esky_buf_append(&d, at_null, sizeof(at_null));
	/*
	 * Without the vDSO's pages, gdb would still try to read its ELF
	 * image at AT_SYSINFO_EHDR and complain; AT_IGNORE keeps the other
	 * entries where they were.
	 */
	for (size_t i = 0; !ret && !c->vdso_in_core && i + 1 < d.len / sizeof(uint64_t); i += 2) {
		uint64_t *w = (uint64_t *)d.data + i;

		if (w[0] == AT_SYSINFO_EHDR)
			w[0] = AT_IGNORE;
	}
	if (!ret)
		ret = add_note(b, "CORE", NT_AUXV, d.data, d.len);
	esky_buf_free(&d);
	return ret;
}

/*
 * NT_FILE, as fill_files_note() writes it: count, page size, then
 * {start, end, offset in pages} for each file mapping, then their paths,
 * NUL-terminated, in the same order. gdb finds the shared libraries with it
 * and reads from the files what the core leaves out.
 */
static int note_file(struct core_ctx *c, struct esky_buf *b)
{
	const struct esky_image_view *v = c->v;
	struct esky_buf d = { 0 }, names = { 0 };
	uint64_t count = 0, page = PAGE;
	int ret;

	ret = esky_buf_append(&d, &count, sizeof(count));
	if (!ret)
		ret = esky_buf_append(&d, &page, sizeof(page));
	for (size_t i = 0; !ret && i < v->vma_n; i++) {
		const struct esky_img_vma *m = &v->vmas[i];
		uint64_t rec[3] = { m->start, m->end, m->pgoff / PAGE };
		const char *path;

		if (m->kind != ESKY_IMG_VMA_FILE_PRIVATE && m->kind != ESKY_IMG_VMA_FILE_SHARED)
			continue;
		path = esky_image_str(c->img, v->files[m->file].path);
		ret = esky_buf_append(&d, rec, sizeof(rec));
		if (!ret)
			ret = esky_buf_append(&names, path, strlen(path) + 1);
		count++;
	}
	if (!ret)
		ret = esky_buf_append(&d, names.data, names.len);
	if (!ret) {
		memcpy(d.data, &count, sizeof(count));
		ret = add_note(b, "CORE", NT_FILE, d.data, d.len);
	}
	esky_buf_free(&names);
	esky_buf_free(&d);
	return ret;
}

/*
 * Where an XSAVE component lies in the standard (non-compacted) format.
 * The offsets come from CPUID leaf 0xD and differ between vendors: AMD's
 * Zen CPUs have no MPX and pack AVX-512 and PKRU lower than Intel's.
 * A core file does not say which CPU it came from, so readers assume one:
 * gdb 13 knows only Intel's offsets and refuses a smaller area ("Section
 * `.reg-xstate' in core file too small": the upper halves of ymm/zmm then
 * show as <unavailable>); gdb 14 guesses AMD's from the size. Intel's
 * layout is read right by all of them, so a Zen area is moved into it.
 */
struct xsave_comp {
	unsigned bit;      /* XCR0 bit */
	uint32_t size;
	uint32_t intel_off; /* Intel SDM, fixed for every Intel CPU */
	uint32_t zen_off;   /* AMD Zen 1-4 (CPUID 0xD); 0: no such component */
};

static const struct xsave_comp xsave_comps[] = {
	{ 2, 256, 576, 576 },    /* AVX: upper halves of ymm0-15 */
	{ 3, 64, 960, 0 },       /* MPX bound registers */
	{ 4, 64, 1024, 0 },      /* MPX bound config and status */
	{ 5, 64, 1088, 832 },    /* AVX-512 opmask k0-7 */
	{ 6, 512, 1152, 896 },   /* AVX-512 upper halves of zmm0-15 */
	{ 7, 1024, 1664, 1408 }, /* AVX-512 zmm16-31 */
	{ 9, 8, 2688, 2432 },    /* PKRU */
};

/* XCR0 as the kernel leaves it in the software-reserved bytes of FXSAVE (arch.h). */
#define XSAVE_XCR0_OFF ARCH_XSTATE_XCR0_OFF

/*
 * The XSTATE note's bytes of a thread's xstate (src, slen bytes, at least
 * XSAVE_MIN_SIZE): src itself, or (Zen layout) a copy in Intel's layout in
 * *conv (malloc'd, the caller frees it). path names the image in a note.
 */
static int xstate_for_core(const char *path, const void *xstate, size_t slen, const void **out,
			   size_t *len, void **conv)
{
	const uint8_t *src = xstate;
	uint64_t xcr0;
	uint32_t intel_end = XSAVE_MIN_SIZE, zen_end = XSAVE_MIN_SIZE;
	bool zen_ok = true;
	uint8_t *dst;

	*out = xstate;
	*len = slen;
	*conv = NULL;
	memcpy(&xcr0, src + XSAVE_XCR0_OFF, sizeof(xcr0));
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(xsave_comps); i++) {
		const struct xsave_comp *x = &xsave_comps[i];

		if (!(xcr0 & (1ULL << x->bit)))
			continue;
		if (x->intel_off + x->size > intel_end)
			intel_end = x->intel_off + x->size;
		if (!x->zen_off)
			zen_ok = false;
		else if (x->zen_off + x->size > zen_end)
			zen_end = x->zen_off + x->size;
	}
	/* Big enough for Intel's offsets (AVX alone is the same on both): as it is. */
	if (slen >= intel_end)
		return 0;
	if (!zen_ok || slen < zen_end) {
		pr_note("%s: XSAVE area of %zu bytes for XCR0 %#" PRIx64 " has an unknown layout: "
			"gdb may not show the vector registers past xmm",
			path, slen, xcr0);
		return 0;
	}
	dst = calloc(1, intel_end);
	if (!dst)
		return -ENOMEM;
	/* FXSAVE area, XSAVE header (XSTATE_BV says which components are live) and AVX. */
	memcpy(dst, src, XSAVE_MIN_SIZE);
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(xsave_comps); i++) {
		const struct xsave_comp *x = &xsave_comps[i];

		if (xcr0 & (1ULL << x->bit))
			memcpy(dst + x->intel_off, src + x->zen_off, x->size);
	}
	*out = dst;
	*len = intel_end;
	*conv = dst;
	return 0;
}

/*
 * A thread's register sets after its NT_PRSTATUS: NT_FPREGSET (the FXSAVE
 * area) and NT_X86_XSTATE, as much as its xstate (xlen bytes) holds.
 */
static int note_fpregs(struct core_ctx *c, struct esky_buf *b, const void *xstate, size_t xlen)
{
	const void *x = NULL;
	void *conv = NULL;
	size_t len = 0;
	int ret = 0;

	if (xlen >= FXSAVE_SIZE)
		ret = add_note(b, "CORE", NT_FPREGSET, xstate, FXSAVE_SIZE);
	/*
	 * The XSAVE area in standard (not compacted) format; gdb reads which
	 * features it holds from XCR0 at byte 464, where the kernel puts it
	 * for ptrace and core dumps alike.
	 */
	if (!ret && xlen >= XSAVE_MIN_SIZE)
		ret = xstate_for_core(c->v->path, xstate, xlen, &x, &len, &conv);
	if (!ret && x)
		ret = add_note(b, "LINUX", NT_X86_XSTATE, x, len);
	free(conv);
	return ret;
}

/*
 * The notes, in the kernel's order (write_note_info: the first thread's
 * NT_PRSTATUS, the process's notes, then that thread's other register
 * sets; then each other thread's NT_PRSTATUS and register sets). The main
 * thread comes first: gdb makes the first one its current thread.
 * NT_SIGINFO is left out: there was no signal.
 */
static int build_notes(struct core_ctx *c, struct esky_buf *b)
{
	const struct esky_image_view *v = c->v;
	int ret;

	ret = note_prstatus(c, b, 0, v->xstate_len >= FXSAVE_SIZE);
	if (!ret)
		ret = note_prpsinfo(c, b);
	if (!ret)
		ret = note_auxv(c, b);
	if (!ret)
		ret = note_file(c, b);
	if (!ret)
		ret = note_fpregs(c, b, v->xstate, v->xstate_len);
	for (size_t i = 0; !ret && i < v->thread_n; i++) {
		const struct esky_img_thread *th = &v->threads[i];
		/* (The reader checked that the xstate lies in THREAD_XSTATE.) */
		const uint8_t *x = th->xstate_len ? v->thread_xstate + th->xstate_off : NULL;

		ret = note_prstatus(c, b, i + 1, th->xstate_len >= FXSAVE_SIZE);
		if (!ret)
			ret = note_fpregs(c, b, x, (size_t)th->xstate_len);
	}
	return ret;
}

static int build_headers(struct core_ctx *c, struct esky_buf *hdr, uint64_t *data_start)
{
	struct esky_buf notes = { 0 };
	size_t phnum = 1 + c->seg_n;
	bool xnum = phnum >= PN_XNUM;
	uint64_t notes_off = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
	uint64_t off;
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	Elf64_Shdr sh;
	int ret;

	ret = build_notes(c, &notes);
	if (ret)
		goto out_free;
	off = notes_off + notes.len + (xnum ? sizeof(Elf64_Shdr) : 0);
	off = ESKY_ALIGN_UP(off, (uint64_t)PAGE);
	*data_start = off;

	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_ident[EI_OSABI] = ELFOSABI_NONE; /* as the kernel writes it */
	eh.e_type = ET_CORE;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_ehsize = sizeof(Elf64_Ehdr);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	/*
	 * More than 65534 program headers do not fit e_phnum: the count goes
	 * to sh_info of section header 0 (ELF's extended numbering, as the
	 * kernel's fill_extnum_info does it).
	 */
	eh.e_phnum = xnum ? PN_XNUM : (Elf64_Half)phnum;
	if (xnum) {
		eh.e_shoff = notes_off + notes.len;
		eh.e_shentsize = sizeof(Elf64_Shdr);
		eh.e_shnum = 1;
		eh.e_shstrndx = SHN_UNDEF;
	}
	ret = esky_buf_append(hdr, &eh, sizeof(eh));

	memset(&ph, 0, sizeof(ph));
	ph.p_type = PT_NOTE;
	ph.p_offset = notes_off;
	ph.p_filesz = notes.len;
	ph.p_align = 4;
	if (!ret)
		ret = esky_buf_append(hdr, &ph, sizeof(ph));
	for (size_t i = 0; !ret && i < c->seg_n; i++) {
		struct seg *s = &c->segs[i];

		s->offset = off;
		off += s->filesz;
		memset(&ph, 0, sizeof(ph));
		ph.p_type = PT_LOAD;
		ph.p_flags = s->flags;
		ph.p_offset = s->offset;
		ph.p_vaddr = s->vaddr;
		ph.p_filesz = s->filesz;
		ph.p_memsz = s->memsz;
		ph.p_align = PAGE;
		ret = esky_buf_append(hdr, &ph, sizeof(ph));
	}
	if (!ret)
		ret = esky_buf_append(hdr, notes.data, notes.len);
	if (!ret && xnum) {
		memset(&sh, 0, sizeof(sh));
		sh.sh_type = SHT_NULL;
		sh.sh_size = eh.e_shnum;
		sh.sh_link = eh.e_shstrndx;
		sh.sh_info = (Elf64_Word)phnum;
		ret = esky_buf_append(hdr, &sh, sizeof(sh));
	}
	if (ret == -ENOMEM)
		esky_error(ret, "cannot write %s: out of memory", c->path);
out_free:
	esky_buf_free(&notes);
	return ret;
}

/* Copy len bytes of one piece, from its start + done, to the core at off. */
static int copy_piece(struct core_ctx *c, const struct piece *p, uint64_t done, size_t len,
		      uint64_t off)
{
	const struct esky_image_view *lv;
	struct mapped_file *mf;
	uint64_t src = p->off + done;
	size_t have;
	int ret;

	switch (p->src) {
	case SRC_IMAGE:
		lv = esky_image_view(c->chain[p->level]);
		ret = esky_pread_all(esky_image_fd(c->chain[p->level]), c->buf, len, (off_t)src);
		if (ret)
			return esky_error(ret, "%s: cannot read page data: %s", lv->path,
					  ret == -EIO ? "file truncated" : strerror(-ret));
		break;
	case SRC_FILE:
		mf = &c->files[p->level];
		/* The page the file ends in reads as zero past the end, as in the program. */
		have = src >= mf->size ? 0 : mf->size - src < len ? (size_t)(mf->size - src) : len;
		ret = have ? esky_pread_all(mf->fd, c->buf, have, (off_t)src) : 0;
		if (ret)
			return esky_error(ret, "%s: cannot read it: %s",
					  esky_image_str(c->img, c->v->files[p->level].path),
					  ret == -EIO ? "shorter than when checked" : strerror(-ret));
		memset(c->buf + have, 0, len - have);
		break;
	case SRC_VDSO:
		memcpy(c->buf, c->vdso + src, len);
		break;
	default:
		return 0; /* zero: a hole */
	}
	ret = esky_pwrite_all(c->out.fd, c->buf, len, (off_t)off);
	if (ret)
		return esky_error(ret, "cannot write %s: %s", c->path, strerror(-ret));
	return 0;
}

static int write_memory(struct core_ctx *c)
{
	for (size_t i = 0; i < c->seg_n; i++) {
		const struct seg *s = &c->segs[i];
		uint64_t off = s->offset;

		for (size_t k = s->first; k < s->first + s->count; k++) {
			const struct piece *p = &c->pieces[k];
			uint64_t len = p->end - p->start;

			if (p->src == SRC_NONE)
				break; /* only NONE pieces follow */
			for (uint64_t done = 0; done < len; done += COPY_CHUNK) {
				size_t cnt = len - done < COPY_CHUNK ? (size_t)(len - done) : COPY_CHUNK;
				int ret = copy_piece(c, p, done, cnt, off + done);

				if (ret)
					return ret;
			}
			off += len;
		}
	}
	return 0;
}

/*
 * esky does not store the [vdso]: resume maps the running kernel's. gdb
 * wants it, to name and unwind frames in it (a program stopped in
 * clock_gettime) and else says "Failed to read a valid object file image
 * from memory". The vDSO is part of the kernel image, so when this is the
 * kernel the checkpoint was taken on (same release) this process's own
 * vDSO is the one the program had.
 */
static void find_vdso(struct core_ctx *c)
{
	char *kernel = esky_image_meta(c->img, "kernel"), *maps = NULL, *line, *save;
	uint64_t base = getauxval(AT_SYSINFO_EHDR);
	struct utsname u;

	if (!kernel || !base || uname(&u) < 0 || strcmp(kernel, u.release))
		goto out_free;
	if (esky_read_file("/proc/self/maps", &maps, NULL))
		goto out_free;
	for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a, b;

		if (sscanf(line, "%llx-%llx", &a, &b) == 2 && a == base && strstr(line, "[vdso]")) {
			c->vdso = (const char *)(uintptr_t)base;
			c->vdso_size = b - a;
			break;
		}
	}
out_free:
	free(maps);
	free(kernel);
}

int esky_core_write(struct esky_image *const *chain, size_t n, const char *path)
{
	struct core_ctx c = { .chain = chain, .n = n, .path = path, .out = { .fd = -1 } };
	struct esky_buf hdr = { 0 };
	uint64_t data_start = 0, end;
	int ret;

	if (!n)
		return esky_error(-EINVAL, "cannot write %s: no checkpoint", path);
	c.img = chain[0];
	c.v = esky_image_view(c.img);
	c.files = calloc(c.v->file_n ? c.v->file_n : 1, sizeof(*c.files));
	c.buf = malloc(COPY_CHUNK);
	if (!c.files || !c.buf) {
		ret = esky_error(-ENOMEM, "cannot write %s: out of memory", path);
		goto out_free;
	}
	for (size_t i = 0; i < c.v->file_n; i++)
		c.files[i].fd = -1;
	find_vdso(&c);

	for (size_t i = 0; i < c.v->vma_n; i++) {
		const struct esky_img_vma *m = &c.v->vmas[i];

		if (m->kind == ESKY_IMG_VMA_VVAR || m->kind == ESKY_IMG_VMA_VVAR_VCLOCK)
			continue;
		ret = layout_vma(&c, m);
		if (ret == -ENOMEM)
			esky_error(ret, "cannot write %s: out of memory", path);
		if (ret)
			goto out_free;
	}
	ret = build_headers(&c, &hdr, &data_start);
	if (ret)
		goto out_free;

	ret = esky_outfile_open(&c.out, path);
	if (ret)
		goto out_free;
	ret = esky_pwrite_all(c.out.fd, hdr.data, hdr.len, 0);
	if (ret) {
		esky_error(ret, "cannot write %s: %s", path, strerror(-ret));
		goto out_abort;
	}
	ret = write_memory(&c);
	if (ret)
		goto out_abort;
	/* Zero pages at the end are holes too: the file must still reach them. */
	end = c.seg_n ? c.segs[c.seg_n - 1].offset + c.segs[c.seg_n - 1].filesz : data_start;
	if (ftruncate(c.out.fd, (off_t)end) < 0) {
		ret = -errno;
		esky_error(ret, "cannot write %s: %s", path, strerror(-ret));
		goto out_abort;
	}
	ret = esky_outfile_commit(&c.out);
	goto out_free;

out_abort:
	esky_outfile_abort(&c.out);
out_free:
	esky_buf_free(&hdr);
	for (size_t i = 0; c.files && i < c.v->file_n; i++)
		if (c.files[i].fd >= 0)
			close(c.files[i].fd);
	free(c.files);
	free(c.buf);
	free(c.segs);
	free(c.pieces);
	return ret;
}
