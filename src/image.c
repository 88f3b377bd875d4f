/* Reading and writing esky checkpoint images, see image.h. No ptrace. */
#include "image.h"
#include "hash.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

struct esky_image {
	int fd;
	char *name;
	/*
	 * Where the image starts in the file: 0 for a plain image, its
	 * process's offset in a process tree file. Every offset the image
	 * holds is relative to it; the view's pages_off and the file offsets
	 * esky_image_resolve reports are absolute (base added), so that a
	 * caller's pread on esky_image_fd needs no base of its own.
	 */
	uint64_t base;
	uint64_t size;          /* the image's bytes from base: the file's, or its process's */
	struct esky_tree_header *tree; /* the process table of a tree file, or NULL */
	struct esky_img_header hdr;
	struct esky_img_core core;
	/* section contents read into memory, by type */
	void *sec[ESKY_SEC_LAST + 1];
	uint64_t sec_size[ESKY_SEC_LAST + 1];
	struct esky_image_view view;
};

static const char *const section_names[] = {
	[ESKY_SEC_CORE] = "CORE",	  [ESKY_SEC_XSTATE] = "XSTATE",
	[ESKY_SEC_STRINGS] = "STRINGS",	  [ESKY_SEC_VMAS] = "VMAS",
	[ESKY_SEC_FILES] = "FILES",	  [ESKY_SEC_FDS] = "FDS",
	[ESKY_SEC_SIGINFO] = "SIGINFO",	  [ESKY_SEC_PAGEMAP] = "PAGEMAP",
	[ESKY_SEC_PAGEHASH] = "PAGEHASH", [ESKY_SEC_PAGES] = "PAGES",
	[ESKY_SEC_AUXV] = "AUXV",	  [ESKY_SEC_META] = "META",
	[ESKY_SEC_FDOBJS] = "FDOBJS",	  [ESKY_SEC_BLOBS] = "BLOBS",
	[ESKY_SEC_THREADS] = "THREADS",	  [ESKY_SEC_THREAD_XSTATE] = "THREAD_XSTATE",
};

/*
 * The last section type each version knows: a section of a later version
 * in an older image is damage (an old esky would have refused it).
 */
static uint32_t last_section(uint32_t version)
{
	switch (version) {
	case 1:
		return ESKY_SEC_META;
	case 2:
		return ESKY_SEC_BLOBS;
	default:
		return ESKY_SEC_LAST;
	}
}

/*
 * A thread's xstate is at most this long. NT_X86_XSTATE is the XSAVE area:
 * 2696 bytes with AVX-512 and PKRU, 11008 with AMX tiles; ptrace never
 * gives more than a page or three. A larger length is damage, and would
 * make the restore side allocate what the image says.
 */
#define THREAD_XSTATE_MAX (64u << 10)

const char *esky_image_section_name(uint32_t type)
{
	if (type < ESKY_ARRAY_SIZE(section_names) && section_names[type])
		return section_names[type];
	return "unknown";
}

/* Size of one element of an array section, or 1. */
static size_t elem_size(uint32_t type)
{
	switch (type) {
	case ESKY_SEC_VMAS:
		return sizeof(struct esky_img_vma);
	case ESKY_SEC_FILES:
		return sizeof(struct esky_img_file);
	case ESKY_SEC_FDS:
		return sizeof(struct esky_img_fd);
	case ESKY_SEC_SIGINFO:
		return sizeof(struct esky_img_siginfo);
	case ESKY_SEC_PAGEMAP:
		return sizeof(struct esky_img_pagerun);
	case ESKY_SEC_FDOBJS:
		return sizeof(struct esky_img_fdobj);
	case ESKY_SEC_THREADS:
		return sizeof(struct esky_img_thread);
	case ESKY_SEC_PAGEHASH:
	case ESKY_SEC_AUXV:
		return sizeof(uint64_t);
	default:
		return 1;
	}
}

#define damaged(img, ...) esky_error(-EBADMSG, __VA_ARGS__)

/* pread of the image's bytes at off (relative to the image's start). */
static int img_pread(const struct esky_image *img, void *buf, size_t len, uint64_t off)
{
	return esky_pread_all(img->fd, buf, len, (off_t)(img->base + off));
}

static int cmp_sec_off(const void *a, const void *b)
{
	const struct esky_img_section *x = *(const struct esky_img_section *const *)a;
	const struct esky_img_section *y = *(const struct esky_img_section *const *)b;

	return (x->offset > y->offset) - (x->offset < y->offset);
}

static bool str_ok(const struct esky_image *img, uint32_t off)
{
	return off == 0 || off < img->view.strings_len;
}

/* Whether object record o's bytes lie in BLOBS. */
static bool obj_data_ok(const struct esky_image_view *v, const struct esky_img_fdobj *o)
{
	return o->data_off <= v->blobs_len && o->data_len <= v->blobs_len - o->data_off;
}

/*
 * A Unix socket's record (ESKY_IMG_OBJ_UNIX, _UNIX_LISTEN), its bytes in
 * BLOBS checked already: a struct esky_img_unix, a name (a path ends in a
 * NUL), its messages to the last byte; its id is no other socket's; its
 * peer is a socket of the image of its type (a stream or seqpacket peer
 * points back, a datagram peer that does not has a name); a path it binds
 * again is absolute in its name string (ending in the name if that is
 * relative).
 */
static bool unix_ok(const struct esky_image *img, size_t i)
{
	const struct esky_image_view *v = &img->view;
	const struct esky_img_fdobj *o = &v->fdobjs[i], *peer = NULL;
	const uint8_t *p = v->blobs + o->data_off;
	const char *name = (const char *)p + sizeof(struct esky_img_unix);
	struct esky_img_unix h;
	uint64_t pos;
	bool gone = o->v[2] & ESKY_IMG_UNIXF_PEER_GONE, binds;

	if (o->data_len < sizeof(h) || o->v[0] < ESKY_IMG_UNIX_STREAM ||
	    o->v[0] > ESKY_IMG_UNIX_SEQPACKET || (o->v[2] & ~(uint64_t)ESKY_IMG_UNIXF_ALL))
		return false;
	memcpy(&h, p, sizeof(h));
	if (h.name_len > 108 || h.name_len > o->data_len - sizeof(h) ||
	    (h.name_len && name[0] && !memchr(name, 0, h.name_len)))
		return false;
	pos = sizeof(h) + h.name_len;
	for (uint32_t m = 0; m < h.msg_n; m++) {
		uint32_t len;

		if (o->data_len - pos < sizeof(len))
			return false;
		memcpy(&len, p + pos, sizeof(len));
		pos += sizeof(len);
		if (len > o->data_len - pos)
			return false;
		pos += len;
	}
	if (pos != o->data_len)
		return false;
	for (size_t k = 0; k < v->fdobj_n; k++) {
		const struct esky_img_fdobj *q = &v->fdobjs[k];

		if (q->kind != ESKY_IMG_OBJ_UNIX && q->kind != ESKY_IMG_OBJ_UNIX_LISTEN)
			continue;
		if (k != i && q->id == o->id)
			return false;
		if (o->kind == ESKY_IMG_OBJ_UNIX && o->v[1] && q->id == o->v[1] &&
		    q->kind == ESKY_IMG_OBJ_UNIX)
			peer = q;
	}
	if (o->kind == ESKY_IMG_OBJ_UNIX_LISTEN) {
		if (o->v[0] == ESKY_IMG_UNIX_DGRAM || !h.name_len || h.msg_n || gone)
			return false;
	} else if (o->v[1] && (o->v[2] & ESKY_IMG_UNIXF_PEER_TREE)) {
		/* Its peer is in another image of the tree (checked as the pair is made). */
		if (peer || gone)
			return false;
	} else if (o->v[1]) {
		struct esky_img_unix ph;

		if (!peer || gone || peer->v[0] != o->v[0] || !obj_data_ok(v, peer) ||
		    peer->data_len < sizeof(ph))
			return false;
		memcpy(&ph, v->blobs + peer->data_off, sizeof(ph));
		if (peer->v[1] != o->id && (o->v[0] != ESKY_IMG_UNIX_DGRAM || !ph.name_len))
			return false;
	}
	binds = h.name_len && (o->kind == ESKY_IMG_OBJ_UNIX_LISTEN || o->v[0] == ESKY_IMG_UNIX_DGRAM ||
			       !(o->v[1] || gone));
	if (binds && name[0]) {
		const char *path = esky_image_str(img, o->name);
		size_t pl = strlen(path), nl = strlen(name);

		if (path[0] != '/' || (name[0] == '/' && strcmp(path, name)) ||
		    (name[0] != '/' && (pl < nl + 2 || path[pl - nl - 1] != '/' ||
					strcmp(path + pl - nl, name))))
			return false;
	}
	return true;
}

/* Check every cross-reference of the loaded sections. */
/* Whether one of the first n fd records (sorted by fd) is for fd. */
static bool fd_recorded(const struct esky_img_fd *fds, size_t n, int32_t fd)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fds[mid].fd == fd)
			return true;
		if (fds[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/*
 * The threads other than the main one: each has a tid of its own (not the
 * pid), no flags, a terminated name, and its xstate inside THREAD_XSTATE.
 */
static int check_threads(struct esky_image *img)
{
	const struct esky_image_view *v = &img->view;
	const char *n = img->name;
	uint32_t *tids;
	int ret = 0;

	if (!v->thread_n) {
		if (v->thread_xstate)
			return damaged(img, "%s: damaged: THREAD_XSTATE section without THREADS", n);
		return 0;
	}
	for (size_t i = 0; i < v->thread_n; i++) {
		const struct esky_img_thread *th = &v->threads[i];

		if (!th->tid || th->tid == v->core->pid)
			return damaged(img, "%s: damaged: thread %zu has tid %u (the pid is %u)", n, i,
				       th->tid, v->core->pid);
		if (th->flags)
			return damaged(img, "%s: damaged: thread %zu has flags 0x%x", n, i, th->flags);
		if (!memchr(th->comm, 0, sizeof(th->comm)))
			return damaged(img, "%s: damaged: thread %zu has an unterminated name", n, i);
		if (th->xstate_len > THREAD_XSTATE_MAX)
			return damaged(img, "%s: damaged: thread %zu has xstate of %llu bytes (at most "
				       "%u)", n, i, (unsigned long long)th->xstate_len, THREAD_XSTATE_MAX);
		if (th->xstate_off > v->thread_xstate_len ||
		    th->xstate_len > v->thread_xstate_len - th->xstate_off)
			return damaged(img, "%s: damaged: thread %zu has xstate of %llu bytes at %llu, "
				       "outside THREAD_XSTATE (%zu bytes)", n, i,
				       (unsigned long long)th->xstate_len,
				       (unsigned long long)th->xstate_off, v->thread_xstate_len);
	}
	/* Distinct tids: sorted copies side by side (the fuzzer makes many threads). */
	tids = malloc(v->thread_n * sizeof(*tids));
	if (!tids)
		return -ENOMEM;
	for (size_t i = 0; i < v->thread_n; i++)
		tids[i] = v->threads[i].tid;
	qsort(tids, v->thread_n, sizeof(*tids), cmp_u32);
	for (size_t i = 1; i < v->thread_n && !ret; i++)
		if (tids[i] == tids[i - 1])
			ret = damaged(img, "%s: damaged: two threads have tid %u", n, tids[i]);
	free(tids);
	return ret;
}

static int check_refs(struct esky_image *img)
{
	const struct esky_image_view *v = &img->view;
	const char *n = img->name;
	uint64_t prev_end = 0, data_off = 0, hash_index = 0;
	size_t i, vi = 0;
	int ret;

	if (v->strings_len && v->strings[v->strings_len - 1] != '\0')
		return damaged(img, "%s: damaged: strings are not terminated", n);
	if (!str_ok(img, v->core->cwd) || !str_ok(img, v->core->cmdline) ||
	    !str_ok(img, img->hdr.parent_hint))
		return damaged(img, "%s: damaged: a string offset is out of range", n);
	if (v->core->arch != ESKY_IMG_ARCH_X86_64)
		return esky_error(-ENOEXEC, "%s: checkpoint of another architecture (ELF machine %u)",
				  n, v->core->arch);
	if (v->core->exe_file != UINT32_MAX && v->core->exe_file >= v->file_n)
		return damaged(img, "%s: damaged: executable file index out of range", n);
	for (i = 0; i < v->vma_n; i++) {
		const struct esky_img_vma *m = &v->vmas[i];

		if (m->start >= m->end || m->start % ESKY_IMG_PAGE_SIZE || m->end % ESKY_IMG_PAGE_SIZE ||
		    m->start < prev_end || m->kind < ESKY_IMG_VMA_ANON ||
		    m->kind > ESKY_IMG_VMA_SYSV_SHM || !str_ok(img, m->name) ||
		    (m->kind != ESKY_IMG_VMA_SYSV_SHM && !(m->flags & ESKY_IMG_VMAF_PEER) &&
		     m->file >= 0 && (size_t)m->file >= v->file_n) ||
		    ((m->flags & ESKY_IMG_VMAF_PEER) &&
		     (m->kind != ESKY_IMG_VMA_SHARED_ANON || m->file < 0)) ||
		    (m->kind == ESKY_IMG_VMA_SYSV_SHM &&
		     (m->file < 0 || (size_t)m->file >= v->fdobj_n ||
		      v->fdobjs[m->file].kind != ESKY_IMG_OBJ_SYSV_SHM || m->pgoff ||
		      m->end - m->start < v->fdobjs[m->file].v[3])) ||
		    ((m->kind == ESKY_IMG_VMA_FILE_PRIVATE || m->kind == ESKY_IMG_VMA_FILE_SHARED) &&
		     m->file < 0))
			return damaged(img, "%s: damaged: mapping %zu is invalid", n, i);
		prev_end = m->end;
	}
	for (i = 0; i < v->file_n; i++)
		if (!str_ok(img, v->files[i].path) || v->files[i].build_id_len > 32)
			return damaged(img, "%s: damaged: file record %zu is invalid", n, i);
	for (i = 0; i < v->fd_n; i++) {
		const struct esky_img_fd *f = &v->fds[i];

		if (f->fd < 0 || (i && f->fd <= v->fds[i - 1].fd) ||
		    (f->kind == ESKY_IMG_FD_DUP && !fd_recorded(v->fds, i, f->dup_of)) ||
		    (f->kind != ESKY_IMG_FD_OBJECT && f->kind != ESKY_IMG_FD_PEER &&
		     f->kind != ESKY_IMG_FD_PEER_OBJECT && f->file >= 0 &&
		     (size_t)f->file >= v->file_n) ||
		    (f->kind == ESKY_IMG_FD_FILE && (f->file < 0 || (size_t)f->file >= v->file_n)) ||
		    (f->kind == ESKY_IMG_FD_STDIO && (f->stdio_src < 0 || f->stdio_src > 2)) ||
		    (f->kind == ESKY_IMG_FD_DUP && (f->dup_of < 0 || f->dup_of >= f->fd)) ||
		    (f->kind == ESKY_IMG_FD_OBJECT && (f->file < 0 || (size_t)f->file >= v->fdobj_n ||
						       v->fdobjs[f->file].kind == ESKY_IMG_OBJ_SYSV_SHM)) ||
		    ((f->kind == ESKY_IMG_FD_PEER || f->kind == ESKY_IMG_FD_PEER_OBJECT) &&
		     (f->file < 0 || f->dup_of < 0)) ||
		    f->kind < ESKY_IMG_FD_FILE || f->kind > ESKY_IMG_FD_PEER_OBJECT)
			return damaged(img, "%s: damaged: fd record %zu is invalid", n, i);
	}
	for (i = 0; i < v->fdobj_n; i++) {
		const struct esky_img_fdobj *o = &v->fdobjs[i];

		if (o->kind < ESKY_IMG_OBJ_PIPE || o->kind > ESKY_IMG_OBJ_LAST || !str_ok(img, o->name) ||
		    o->data_off > v->blobs_len || o->data_len > v->blobs_len - o->data_off ||
		    (o->kind == ESKY_IMG_OBJ_EPOLL && o->data_len % sizeof(struct esky_img_epoll_reg)))
			return damaged(img, "%s: damaged: object record %zu is invalid", n, i);
		if (o->kind == ESKY_IMG_OBJ_EPOLL) {
			const struct esky_img_epoll_reg *reg =
				(const void *)(v->blobs + o->data_off);

			/* (BLOBS is 8-aligned in the file and in memory; data_off is checked below.) */
			if (o->data_off % 8)
				return damaged(img, "%s: damaged: object record %zu is invalid", n, i);
			for (size_t k = 0; k < o->data_len / sizeof(*reg); k++)
				if (!fd_recorded(v->fds, v->fd_n, reg[k].tfd))
					return damaged(img, "%s: damaged: epoll object %zu watches fd %d, "
						       "which has no record", n, i, reg[k].tfd);
		}
		if ((o->kind == ESKY_IMG_OBJ_UNIX || o->kind == ESKY_IMG_OBJ_UNIX_LISTEN) &&
		    !unix_ok(img, i))
			return damaged(img, "%s: damaged: Unix socket object %zu is invalid", n, i);
	}
	ret = check_threads(img);
	if (ret)
		return ret;
	for (i = 0; i < v->sig_n; i++) {
		const struct esky_img_siginfo *si = &v->sigs[i];

		if (si->shared && si->thread)
			return damaged(img, "%s: damaged: pending signal %zu is shared but names "
				       "thread %u", n, i, si->thread);
		if (si->thread > v->thread_n)
			return damaged(img, "%s: damaged: pending signal %zu names thread %u; the "
				       "image has %zu", n, i, si->thread, v->thread_n);
	}
	prev_end = 0;
	for (i = 0; i < v->run_n; i++) {
		const struct esky_img_pagerun *r = &v->runs[i];
		uint64_t end = r->vaddr + r->npages * ESKY_IMG_PAGE_SIZE;

		if (!r->npages || r->npages > (1ULL << 36) || r->vaddr % ESKY_IMG_PAGE_SIZE ||
		    r->vaddr < prev_end || end < r->vaddr)
			return damaged(img, "%s: damaged: page run %zu is invalid", n, i);
		/* Runs lie inside mappings. */
		while (vi < v->vma_n && v->vmas[vi].end <= r->vaddr)
			vi++;
		if (vi == v->vma_n || v->vmas[vi].start > r->vaddr || v->vmas[vi].end < end)
			return damaged(img, "%s: damaged: page run %zu lies outside the mappings", n, i);
		switch (r->kind) {
		case ESKY_IMG_PAGES_DATA:
			/* Stored pages follow each other: every byte of PAGES belongs to one run. */
			if (r->data_off != data_off || r->hash_index != hash_index)
				return damaged(img, "%s: damaged: page run %zu is out of place", n, i);
			data_off += r->npages * ESKY_IMG_PAGE_SIZE;
			hash_index += r->npages;
			break;
		case ESKY_IMG_PAGES_ZERO:
			break;
		case ESKY_IMG_PAGES_PARENT:
			if (!(img->hdr.flags & ESKY_IMGF_INCREMENTAL))
				return damaged(img, "%s: damaged: parent pages in a standalone image", n);
			break;
		default:
			return damaged(img, "%s: damaged: page run %zu has kind %u", n, i, r->kind);
		}
		prev_end = end;
	}
	if (data_off != v->pages_size || hash_index != v->hash_n)
		return damaged(img, "%s: damaged: page data and page map disagree", n);
	if (v->auxv_n % 2)
		return damaged(img, "%s: damaged: odd auxiliary vector", n);
	return 0;
}

static int load_sections(struct esky_image *img, uint64_t file_size)
{
	const struct esky_img_section *sorted[ESKY_IMG_MAX_SECTIONS];
	const char *n = img->name;
	uint64_t pos = ESKY_IMG_HEADER_SIZE;
	unsigned i, count = img->hdr.section_n;
	uint32_t seen = 0;
	int ret;

	if (count > ESKY_IMG_MAX_SECTIONS)
		return damaged(img, "%s: damaged: %u sections", n, count);
	for (i = 0; i < count; i++) {
		const struct esky_img_section *s = &img->hdr.sections[i];

		/* (The range first: the shift below needs a type under 32.) */
		if (s->type == 0 || s->type > last_section(img->hdr.version) ||
		    (seen & (1u << s->type)))
			return damaged(img, "%s: damaged: section %u has type %u", n, i, s->type);
		if (s->offset > file_size || s->size > file_size - s->offset)
			return damaged(img, "%s: damaged: %s section lies beyond the end of the file", n,
				       esky_image_section_name(s->type));
		if (s->size % elem_size(s->type))
			return damaged(img, "%s: damaged: %s section has a partial record", n,
				       esky_image_section_name(s->type));
		sorted[i] = s;
		seen |= 1u << s->type;
	}
	qsort(sorted, count, sizeof(sorted[0]), cmp_sec_off);
	for (i = 0; i < count; i++) {
		const struct esky_img_section *s = sorted[i];
		uint64_t gap = s->offset - pos;
		char zeros[4096];

		if (s->offset < pos)
			return damaged(img, "%s: damaged: sections overlap", n);
		/* Padding: below 8 bytes between metadata sections, always zero. */
		if (gap >= 8 || (s->type == ESKY_SEC_PAGES && gap))
			return damaged(img, "%s: damaged: %llu stray bytes before %s", n,
				       (unsigned long long)gap, esky_image_section_name(s->type));
		if (gap) {
			char buf[8];

			ret = img_pread(img, buf, gap, pos);
			memset(zeros, 0, sizeof(buf));
			if (ret || memcmp(buf, zeros, gap))
				return damaged(img, "%s: damaged: non-zero padding at %llu", n,
					       (unsigned long long)pos);
		}
		pos = s->offset + s->size;
		if (s->type == ESKY_SEC_PAGES) {
			if (s->offset % ESKY_IMG_PAGE_SIZE || s->size % ESKY_IMG_PAGE_SIZE)
				return damaged(img, "%s: damaged: page data is not page aligned", n);
			img->view.pages_off = img->base + s->offset;
			img->view.pages_size = s->size;
			continue;
		}
		if (s->size > (256ULL << 20))
			return damaged(img, "%s: damaged: %s section of %llu bytes", n,
				       esky_image_section_name(s->type), (unsigned long long)s->size);
		img->sec[s->type] = malloc(s->size ? s->size : 1);
		if (!img->sec[s->type])
			return -ENOMEM;
		img->sec_size[s->type] = s->size;
		ret = img_pread(img, img->sec[s->type], s->size, s->offset);
		if (ret)
			return esky_error(ret, "%s: cannot read %s section: %s", n,
					  esky_image_section_name(s->type), strerror(-ret));
		if (esky_hash64(img->sec[s->type], s->size, ESKY_IMG_CHECKSUM_SEED) != s->checksum)
			return damaged(img, "%s: damaged: %s checksum mismatch", n,
				       esky_image_section_name(s->type));
	}
	if (pos != file_size)
		return damaged(img, "%s: damaged: %llu stray bytes at the end", n,
			       (unsigned long long)(file_size - pos));
	return 0;
}

static void fill_view(struct esky_image *img)
{
	struct esky_image_view *v = &img->view;

#define ARRAY(field, nfield, type, T)                                                     \
	do {                                                                              \
		v->field = img->sec[type];                                                \
		v->nfield = img->sec_size[type] / sizeof(T);                              \
	} while (0)
	v->path = img->name;
	v->file_size = img->hdr.file_size;
	v->hdr = &img->hdr;
	v->core = &img->core;
	v->xstate = img->sec[ESKY_SEC_XSTATE];
	v->xstate_len = img->sec_size[ESKY_SEC_XSTATE];
	v->strings = img->sec[ESKY_SEC_STRINGS];
	v->strings_len = img->sec_size[ESKY_SEC_STRINGS];
	ARRAY(vmas, vma_n, ESKY_SEC_VMAS, struct esky_img_vma);
	ARRAY(files, file_n, ESKY_SEC_FILES, struct esky_img_file);
	ARRAY(fds, fd_n, ESKY_SEC_FDS, struct esky_img_fd);
	ARRAY(sigs, sig_n, ESKY_SEC_SIGINFO, struct esky_img_siginfo);
	ARRAY(runs, run_n, ESKY_SEC_PAGEMAP, struct esky_img_pagerun);
	ARRAY(hashes, hash_n, ESKY_SEC_PAGEHASH, uint64_t);
	ARRAY(auxv, auxv_n, ESKY_SEC_AUXV, uint64_t);
	v->meta = img->sec[ESKY_SEC_META];
	v->meta_len = img->sec_size[ESKY_SEC_META];
	ARRAY(fdobjs, fdobj_n, ESKY_SEC_FDOBJS, struct esky_img_fdobj);
	v->blobs = img->sec[ESKY_SEC_BLOBS];
	v->blobs_len = img->sec_size[ESKY_SEC_BLOBS];
	ARRAY(threads, thread_n, ESKY_SEC_THREADS, struct esky_img_thread);
	v->thread_xstate = img->sec[ESKY_SEC_THREAD_XSTATE];
	v->thread_xstate_len = img->sec_size[ESKY_SEC_THREAD_XSTATE];
#undef ARRAY
}

/*
 * Open the image of size bytes at base in fd: a plain image (base 0, the
 * file's size, pid 0), or the image of process pid of a process tree file,
 * whose table said where it is and how long (the messages then name the
 * process: the file is the tree's). The image gets its own dup of fd.
 */
/*
 * An image that cannot be opened, in one line. Each image of a chain of
 * incremental snapshots holds an fd while the chain is open: a chain
 * deeper than the open-file limit (1024 by default) ran out of them, and
 * the bare "cannot rewind" the caller had said nothing of why.
 */
static int open_error(const char *name, int err)
{
	return esky_error(err, "%s: %s%s", name, strerror(-err),
			  err == -EMFILE ? " (each image of a chain of snapshots holds one: "
					   "raise ulimit -n, or export the snapshot)" : "");
}

static int open_at(int fd, const char *name, uint64_t base, uint64_t size, uint32_t pid,
		   struct esky_image **out)
{
	struct esky_image *img;
	int ret;

	img = calloc(1, sizeof(*img));
	if (!img)
		return -ENOMEM;
	img->base = base;
	img->size = size;
	img->name = strdup(name);
	img->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (!img->name || img->fd < 0) {
		ret = img->name ? open_error(name, -errno) : -ENOMEM;
		goto out_close;
	}
	if (size < 8) {
		ret = esky_error(-EBADMSG, "%s: not an esky checkpoint (%llu bytes)", name,
				 (unsigned long long)size);
		goto out_close;
	}
	ret = img_pread(img, &img->hdr, size < ESKY_IMG_HEADER_SIZE ? 8 : sizeof(img->hdr), 0);
	if (ret) {
		esky_error(ret, "%s: cannot read: %s", name, strerror(-ret));
		goto out_close;
	}
	if (memcmp(img->hdr.magic, ESKY_IMG_MAGIC, 8)) {
		if (pid)
			ret = esky_error(-EBADMSG, "%s: damaged: process %u has no esky image at %llu",
					 name, pid, (unsigned long long)base);
		else
			ret = esky_error(-EBADMSG, "%s: not an esky checkpoint", name);
		goto out_close;
	}
	if (size < ESKY_IMG_HEADER_SIZE) {
		ret = esky_error(-EBADMSG, "%s: truncated: %llu bytes, less than its header", name,
				 (unsigned long long)size);
		goto out_close;
	}
	if (img->hdr.version < ESKY_IMG_VERSION_MIN || img->hdr.version > ESKY_IMG_VERSION) {
		ret = esky_error(-EPROTONOSUPPORT, "%s: checkpoint format version %u; this esky reads "
				 "%u to %u", name, img->hdr.version, ESKY_IMG_VERSION_MIN,
				 ESKY_IMG_VERSION);
		goto out_close;
	}
	if (esky_hash64(&img->hdr, offsetof(struct esky_img_header, checksum),
			ESKY_IMG_CHECKSUM_SEED) != img->hdr.checksum ||
	    img->hdr.header_size != ESKY_IMG_HEADER_SIZE) {
		ret = esky_error(-EBADMSG, "%s: damaged: header checksum mismatch", name);
		goto out_close;
	}
	if (pid && img->hdr.file_size != size) {
		ret = esky_error(-EBADMSG, "%s: damaged: the image of process %u has %llu bytes, its "
				 "header says %llu", name, pid, (unsigned long long)size,
				 (unsigned long long)img->hdr.file_size);
		goto out_close;
	}
	if (img->hdr.file_size < size) {
		ret = esky_error(-EBADMSG, "%s: damaged: %llu stray bytes at the end", name,
				 (unsigned long long)(size - img->hdr.file_size));
		goto out_close;
	}
	if (img->hdr.file_size != size) {
		ret = esky_error(-EBADMSG, "%s: truncated: %llu bytes, the header says %llu", name,
				 (unsigned long long)size, (unsigned long long)img->hdr.file_size);
		goto out_close;
	}
	ret = load_sections(img, size);
	if (ret)
		goto out_close;
	if (img->sec_size[ESKY_SEC_CORE] != sizeof(img->core) || !img->sec[ESKY_SEC_STRINGS] ||
	    !img->sec[ESKY_SEC_VMAS]) {
		ret = esky_error(-EBADMSG, "%s: damaged: a required section is missing", name);
		goto out_close;
	}
	memcpy(&img->core, img->sec[ESKY_SEC_CORE], sizeof(img->core));
	fill_view(img);
	ret = check_refs(img);
	if (ret)
		goto out_close;
	if (pid && img->core.pid != pid) {
		ret = esky_error(-EBADMSG, "%s: damaged: the image of process %u is of pid %u", name,
				 pid, img->core.pid);
		goto out_close;
	}
	*out = img;
	return 0;

out_close:
	esky_image_close(img);
	return ret;
}

/* ---- process tree files ---- */

/* A wait status the kernel gives for a child that exited or was killed. */
static bool zombie_status_ok(int32_t status)
{
	uint32_t st = (uint32_t)status;

	if (st & ~0xffffu)
		return false;
	if ((st & 0x7f) == 0)
		return true;               /* exited: status in bits 8-15 */
	return (st & 0x7f) != 0x7f && (st & 0xff00) == 0; /* killed (0x80: core dumped) */
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static uint64_t page_up(uint64_t x)
{
	return (x + ESKY_TREE_HEADER_SIZE - 1) / ESKY_TREE_HEADER_SIZE * ESKY_TREE_HEADER_SIZE;
}

/* Index of the process of the first n entries with pid, or -1. */
static int tree_find(const struct esky_tree_header *h, size_t n, uint32_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (h->procs[i].pid == pid)
			return (int)i;
	return -1;
}

/*
 * The checks of a process table that need nothing but the table: the
 * reader's, and the writer's before it writes one. false with the damage
 * in why ("two processes have pid 12").
 */
static bool tree_table_ok(const struct esky_tree_header *h, char *why, size_t wn)
{
	const unsigned n = h->proc_n;
	uint64_t prev_end = ESKY_TREE_HEADER_SIZE;

	if (!all_zero(h->reserved, sizeof(h->reserved))) {
		snprintf(why, wn, "reserved header fields are not zero");
		return false;
	}
	if (n < 1 || n > ESKY_TREE_MAX_PROCS) {
		snprintf(why, wn, "%u processes in the table (1 to %u)", n, ESKY_TREE_MAX_PROCS);
		return false;
	}
	for (unsigned i = n; i < ESKY_TREE_MAX_PROCS; i++)
		if (!all_zero(&h->procs[i], sizeof(h->procs[i]))) {
			snprintf(why, wn, "unused process table entry %u is not zero", i);
			return false;
		}
	if (!all_zero(h->pad, sizeof(h->pad))) {
		snprintf(why, wn, "non-zero padding in the header");
		return false;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct esky_tree_proc *p = &h->procs[i];

		if (!p->pid) {
			snprintf(why, wn, "process table entry %u has pid 0", i);
			return false;
		}
		if (tree_find(h, i, p->pid) >= 0) {
			snprintf(why, wn, "two processes have pid %u", p->pid);
			return false;
		}
		if ((p->flags & ~(ESKY_TREE_ZOMBIE | ESKY_TREE_STOPPED)) ||
		    (p->flags & ESKY_TREE_ZOMBIE && p->flags & ESKY_TREE_STOPPED)) {
			snprintf(why, wn, "process %u has flags 0x%x", p->pid, p->flags);
			return false;
		}
		if (p->reserved) {
			snprintf(why, wn, "process %u has a reserved field that is not zero", p->pid);
			return false;
		}
	}
	if (h->procs[0].flags & ESKY_TREE_ZOMBIE) {
		snprintf(why, wn, "the root, process %u, is a zombie", h->procs[0].pid);
		return false;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct esky_tree_proc *p = &h->procs[i];

		if (p->flags & ESKY_TREE_ZOMBIE) {
			if (p->offset || p->size) {
				snprintf(why, wn, "zombie %u has an image (%llu bytes at %llu)", p->pid,
					 (unsigned long long)p->size, (unsigned long long)p->offset);
				return false;
			}
			if (!zombie_status_ok(p->status)) {
				snprintf(why, wn, "zombie %u has wait status 0x%x (neither an exit nor "
					 "a kill)", p->pid, (unsigned)p->status);
				return false;
			}
			continue;
		}
		if (p->status) {
			snprintf(why, wn, "live process %u has wait status 0x%x", p->pid,
				 (unsigned)p->status);
			return false;
		}
		if (p->offset % ESKY_TREE_HEADER_SIZE) {
			snprintf(why, wn, "the image of process %u at %llu is not 4096-aligned", p->pid,
				 (unsigned long long)p->offset);
			return false;
		}
		if (p->size < ESKY_IMG_HEADER_SIZE) {
			snprintf(why, wn, "the image of process %u has %llu bytes, less than an image "
				 "header", p->pid, (unsigned long long)p->size);
			return false;
		}
		if (p->offset > h->file_size || p->size > h->file_size - p->offset) {
			snprintf(why, wn, "the image of process %u (%llu bytes at %llu) lies beyond the "
				 "end of the file", p->pid, (unsigned long long)p->size,
				 (unsigned long long)p->offset);
			return false;
		}
		/* In table order, each at the first 4096-aligned offset after the one before. */
		if (p->offset < prev_end) {
			snprintf(why, wn, "the image of process %u at %llu overlaps what comes before "
				 "it (up to %llu)", p->pid, (unsigned long long)p->offset,
				 (unsigned long long)prev_end);
			return false;
		}
		if (p->offset != page_up(prev_end)) {
			snprintf(why, wn, "%llu stray bytes before the image of process %u",
				 (unsigned long long)(p->offset - prev_end), p->pid);
			return false;
		}
		prev_end = p->offset + p->size;
	}
	if (prev_end != h->file_size) {
		snprintf(why, wn, "%llu stray bytes after the last image",
			 (unsigned long long)(h->file_size - prev_end));
		return false;
	}
	if (h->procs[0].ppid) {
		snprintf(why, wn, "the root, process %u, has parent %u (a root's is 0)",
			 h->procs[0].pid, h->procs[0].ppid);
		return false;
	}
	for (unsigned i = 1; i < n; i++) {
		const struct esky_tree_proc *p = &h->procs[i];
		int k = tree_find(h, n, p->ppid);
		unsigned steps = 0;

		if (k < 0) {
			snprintf(why, wn, "process %u has parent %u, which is not in the table", p->pid,
				 p->ppid);
			return false;
		}
		/* Up the parents to the root: a cycle never gets there. */
		while (k > 0 && steps++ < n)
			k = tree_find(h, n, h->procs[k].ppid);
		if (k != 0) {
			snprintf(why, wn, "process %u does not descend from the root (its parents "
				 "make a cycle)", p->pid);
			return false;
		}
	}
	return true;
}

/*
 * Read and check the process table of a tree file of size bytes (its
 * magic known already): the header, the table, the zero padding between
 * the images. *out malloc'd.
 */
static int read_tree(int fd, const char *name, uint64_t size, struct esky_tree_header **out)
{
	struct esky_tree_header *h;
	char why[200];
	uint64_t pos = ESKY_TREE_HEADER_SIZE;
	int ret;

	if (size < ESKY_TREE_HEADER_SIZE)
		return esky_error(-EBADMSG, "%s: truncated: %llu bytes, less than its header", name,
				  (unsigned long long)size);
	h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	ret = esky_pread_all(fd, h, sizeof(*h), 0);
	if (ret) {
		esky_error(ret, "%s: cannot read: %s", name, strerror(-ret));
		goto out_free;
	}
	if (h->version != ESKY_TREE_VERSION) {
		ret = esky_error(-EPROTONOSUPPORT, "%s: process tree format version %u; this esky "
				 "reads %u", name, h->version, ESKY_TREE_VERSION);
		goto out_free;
	}
	if (esky_hash64(h, offsetof(struct esky_tree_header, checksum), ESKY_IMG_CHECKSUM_SEED) !=
	    h->checksum) {
		ret = esky_error(-EBADMSG, "%s: damaged: header checksum mismatch", name);
		goto out_free;
	}
	if (h->file_size < size) {
		ret = esky_error(-EBADMSG, "%s: damaged: %llu stray bytes at the end", name,
				 (unsigned long long)(size - h->file_size));
		goto out_free;
	}
	if (h->file_size != size) {
		ret = esky_error(-EBADMSG, "%s: truncated: %llu bytes, the header says %llu", name,
				 (unsigned long long)size, (unsigned long long)h->file_size);
		goto out_free;
	}
	if (!tree_table_ok(h, why, sizeof(why))) {
		ret = esky_error(-EBADMSG, "%s: damaged: %s", name, why);
		goto out_free;
	}
	/* The padding before each image (below 4096 bytes, checked above) is zero. */
	for (unsigned i = 0; i < h->proc_n; i++) {
		const struct esky_tree_proc *p = &h->procs[i];
		uint8_t buf[ESKY_TREE_HEADER_SIZE];

		if (p->flags & ESKY_TREE_ZOMBIE)
			continue;
		if (p->offset > pos) {
			ret = esky_pread_all(fd, buf, p->offset - pos, (off_t)pos);
			if (ret) {
				esky_error(ret, "%s: cannot read: %s", name, strerror(-ret));
				goto out_free;
			}
			for (uint64_t k = 0; k < p->offset - pos; k++)
				if (buf[k]) {
					ret = esky_error(-EBADMSG, "%s: damaged: non-zero padding at %llu",
							 name, (unsigned long long)(pos + k));
					goto out_free;
				}
		}
		pos = p->offset + p->size;
	}
	*out = h;
	return 0;

out_free:
	free(h);
	return ret;
}

/*
 * Open the image of live process i of the tree h. Besides what open_at
 * checks: an fd that shares an open file with another process of the
 * tree (PEER, PEER_OBJECT) names a live process before this one in the
 * table, as the freeze writes them (the thaw makes the open file in that
 * process first).
 */
static int open_proc(int fd, const char *name, const struct esky_tree_header *h, size_t i,
		     struct esky_image **out)
{
	const struct esky_tree_proc *p = &h->procs[i];
	const struct esky_image_view *v;
	struct esky_image *img;
	int ret;

	ret = open_at(fd, name, p->offset, p->size, p->pid, &img);
	if (ret)
		return ret;
	v = &img->view;
	for (size_t k = 0; k < v->fd_n; k++) {
		const struct esky_img_fd *f = &v->fds[k];

		if (f->kind != ESKY_IMG_FD_PEER && f->kind != ESKY_IMG_FD_PEER_OBJECT)
			continue;
		/* (check_refs made sure that file >= 0.) */
		if ((size_t)f->file >= i || (h->procs[f->file].flags & ESKY_TREE_ZOMBIE)) {
			/* The message first: f lives in img. */
			ret = esky_error(-EBADMSG, "%s: damaged: fd %d of process %u names process "
					 "table entry %d, not a live process before it", name, f->fd,
					 p->pid, f->file);
			esky_image_close(img);
			return ret;
		}
	}
	*out = img;
	return 0;
}

/*
 * Open a process tree file: its table, every live process's image checked
 * (all but page data), the root's returned.
 */
static int open_tree(int fd, const char *name, uint64_t size, struct esky_image **out)
{
	struct esky_tree_header *h;
	struct esky_image *root;
	int ret;

	ret = read_tree(fd, name, size, &h);
	if (ret)
		return ret;
	ret = open_proc(fd, name, h, 0, &root);
	if (ret) {
		free(h);
		return ret;
	}
	root->tree = h;
	for (unsigned i = 1; i < h->proc_n; i++) {
		struct esky_image *m;

		if (h->procs[i].flags & ESKY_TREE_ZOMBIE)
			continue;
		ret = open_proc(fd, name, h, i, &m);
		if (ret) {
			esky_image_close(root);
			return ret;
		}
		esky_image_close(m);
	}
	*out = root;
	return 0;
}

const struct esky_tree_header *esky_image_tree(const struct esky_image *img)
{
	return img->tree;
}

int esky_image_open_member(const struct esky_image *img, size_t i, struct esky_image **out)
{
	const struct esky_tree_header *h = img->tree;
	struct esky_image *m;
	int ret;

	if (!h)
		return esky_error(-EINVAL, "%s: not a process tree: it has no process %zu", img->name,
				  i);
	if (i >= h->proc_n)
		return esky_error(-EINVAL, "%s: no process %zu in the tree (it has %u)", img->name, i,
				  h->proc_n);
	if (h->procs[i].flags & ESKY_TREE_ZOMBIE)
		return esky_error(-EINVAL, "%s: process %u is a zombie: it has no image", img->name,
				  h->procs[i].pid);
	ret = open_proc(img->fd, img->name, h, i, &m);
	if (ret)
		return ret;
	m->tree = malloc(sizeof(*h));
	if (!m->tree) {
		esky_image_close(m);
		return -ENOMEM;
	}
	memcpy(m->tree, h, sizeof(*h));
	*out = m;
	return 0;
}

/*
 * Copy len bytes of in at in_off to out at out_off: copy_file_range (a
 * reflink or an in-kernel copy where the file system can), else pread and
 * pwrite. 0, -errno, or -ENODATA when in ends first.
 */
static int copy_bytes(int in, uint64_t in_off, int out, uint64_t out_off, uint64_t len)
{
	const size_t chunk = 1u << 20;
	bool plain = false;
	char *buf = NULL;
	int ret = 0;

	while (len && !ret) {
		size_t want = len < (1u << 30) ? (size_t)len : (1u << 30);
		ssize_t n;

		if (!plain) {
			loff_t io = (loff_t)in_off, oo = (loff_t)out_off;

			n = copy_file_range(in, &io, out, &oo, want, 0);
			/* Across file systems before Linux 5.3, or where it is not there. */
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
				      errno == EOPNOTSUPP || errno == EPERM)) {
				plain = true;
				continue;
			}
		} else {
			if (!buf && !(buf = malloc(chunk)))
				return -ENOMEM;
			n = pread(in, buf, want < chunk ? want : chunk, (off_t)in_off);
			if (n > 0)
				ret = esky_pwrite_all(out, buf, (size_t)n, (off_t)out_off);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = -errno;
		else if (n == 0)
			ret = -ENODATA;
		else {
			in_off += (uint64_t)n;
			out_off += (uint64_t)n;
			len -= (uint64_t)n;
		}
	}
	free(buf);
	return ret;
}

int esky_image_tree_write(const char *path, const struct esky_tree_proc *procs, size_t n,
			  const char *const *member_paths)
{
	struct esky_tree_header *h;
	struct esky_image **imgs;
	struct esky_outfile out;
	uint64_t pos = ESKY_TREE_HEADER_SIZE;
	char why[200];
	int ret = 0;

	if (n < 1 || n > ESKY_TREE_MAX_PROCS)
		return esky_error(-EINVAL, "cannot write %s: a process tree of %zu processes (1 to "
				  "%u)", path, n, ESKY_TREE_MAX_PROCS);
	h = calloc(1, sizeof(*h));
	imgs = calloc(n, sizeof(*imgs));
	if (!h || !imgs) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < n; i++) {
		struct esky_tree_proc *p = &h->procs[i];
		bool zombie = procs[i].flags & ESKY_TREE_ZOMBIE;

		*p = procs[i];
		p->offset = p->size = 0;
		if (zombie != !member_paths[i]) {
			ret = esky_error(-EINVAL, "cannot write %s: process %u is %s but has %s", path,
					 p->pid, zombie ? "a zombie" : "alive",
					 zombie ? "an image" : "no image");
			goto out_close;
		}
		if (zombie)
			continue;
		ret = esky_image_open(member_paths[i], &imgs[i]);
		if (ret)
			goto out_close;
		if (imgs[i]->tree) {
			ret = esky_error(-EINVAL, "cannot write %s: %s is a process tree, not the image "
					 "of one process", path, member_paths[i]);
			goto out_close;
		}
		if (imgs[i]->core.pid != p->pid) {
			ret = esky_error(-EINVAL, "cannot write %s: %s is the image of pid %u, not of "
					 "process %u", path, member_paths[i], imgs[i]->core.pid,
					 p->pid);
			goto out_close;
		}
		p->offset = page_up(pos);
		p->size = imgs[i]->size;
		pos = p->offset + p->size;
	}
	memcpy(h->magic, ESKY_TREE_MAGIC, 8);
	h->version = ESKY_TREE_VERSION;
	h->proc_n = (uint32_t)n;
	h->file_size = pos;
	if (!tree_table_ok(h, why, sizeof(why))) {
		ret = esky_error(-EINVAL, "cannot write %s: %s", path, why);
		goto out_close;
	}
	h->checksum = esky_hash64(h, offsetof(struct esky_tree_header, checksum),
				  ESKY_IMG_CHECKSUM_SEED);
	ret = esky_outfile_open(&out, path);
	if (ret)
		goto out_close;
	/* (The gaps between images are holes of the new file: zero.) */
	for (size_t i = 0; i < n && !ret; i++) {
		if (!imgs[i])
			continue;
		ret = copy_bytes(imgs[i]->fd, 0, out.fd, h->procs[i].offset, h->procs[i].size);
		if (ret == -ENODATA)
			ret = esky_error(-EIO, "cannot write %s: %s became shorter while being copied",
					 path, member_paths[i]);
		else if (ret)
			esky_error(ret, "cannot write %s: copying %s: %s", path, member_paths[i],
				   strerror(-ret));
	}
	if (!ret) {
		ret = esky_pwrite_all(out.fd, h, sizeof(*h), 0);
		if (ret)
			esky_error(ret, "cannot write %s: %s", path, strerror(-ret));
	}
	if (ret)
		esky_outfile_abort(&out);
	else
		ret = esky_outfile_commit(&out);
out_close:
	for (size_t i = 0; i < n; i++)
		esky_image_close(imgs[i]);
out_free:
	free(imgs);
	free(h);
	return ret;
}

int esky_image_open_fd(int fd, const char *name, struct esky_image **out)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return esky_error(-errno, "%s: %s", name, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return esky_error(-EINVAL, "%s: not a regular file", name);
	if (st.st_size >= 8) {
		char magic[8];
		int ret = esky_pread_all(fd, magic, sizeof(magic), 0);

		if (ret)
			return esky_error(ret, "%s: cannot read: %s", name, strerror(-ret));
		if (!memcmp(magic, ESKY_TREE_MAGIC, 8))
			return open_tree(fd, name, (uint64_t)st.st_size, out);
	}
	return open_at(fd, name, 0, (uint64_t)st.st_size, 0, out);
}

int esky_image_open(const char *path, struct esky_image **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
	int ret;

	if (fd < 0)
		return open_error(path, -errno);
	ret = esky_image_open_fd(fd, path, out);
	close(fd);
	return ret;
}

static int verify_own_pages(struct esky_image *img);

int esky_image_verify_pages(struct esky_image *img)
{
	const struct esky_tree_header *t = esky_image_tree(img);
	int ret = verify_own_pages(img);

	/* A tree's root stands for the file: every live process's pages are checked. */
	for (uint32_t i = 1; !ret && t && img->view.core->pid == t->procs[0].pid && i < t->proc_n;
	     i++) {
		struct esky_image *m;

		if (t->procs[i].flags & ESKY_TREE_ZOMBIE)
			continue;
		ret = esky_image_open_member(img, i, &m);
		if (!ret) {
			ret = verify_own_pages(m);
			esky_image_close(m);
		}
	}
	return ret;
}

static int verify_own_pages(struct esky_image *img)
{
	const struct esky_image_view *v = &img->view;
	const size_t chunk = 4u << 20;
	char *buf;
	int ret = 0;

	if (!v->pages_size)
		return 0;
	buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < v->run_n && !ret; i++) {
		const struct esky_img_pagerun *r = &v->runs[i];
		uint64_t done = 0, total = r->npages * ESKY_IMG_PAGE_SIZE;

		if (r->kind != ESKY_IMG_PAGES_DATA)
			continue;
		while (done < total && !ret) {
			size_t len = total - done < chunk ? (size_t)(total - done) : chunk;

			ret = esky_pread_all(img->fd, buf, len, (off_t)(v->pages_off + r->data_off + done));
			if (ret) {
				esky_error(ret, "%s: cannot read page data: %s", img->name, strerror(-ret));
				break;
			}
			for (size_t p = 0; p < len; p += ESKY_IMG_PAGE_SIZE) {
				uint64_t idx = r->hash_index + (done + p) / ESKY_IMG_PAGE_SIZE;
				int zero;

				if (esky_hash_page(buf + p, &zero) != v->hashes[idx]) {
					ret = esky_error(-EBADMSG, "%s: damaged: page data for 0x%llx "
							 "(file offset %llu) checksum mismatch", img->name,
							 (unsigned long long)(r->vaddr + done + p),
							 (unsigned long long)(v->pages_off + r->data_off + done + p));
					break;
				}
			}
			done += len;
		}
	}
	free(buf);
	return ret;
}

void esky_image_close(struct esky_image *img)
{
	if (!img)
		return;
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(img->sec); i++)
		free(img->sec[i]);
	free(img->tree);
	if (img->fd >= 0)
		close(img->fd);
	free(img->name);
	free(img);
}

const struct esky_image_view *esky_image_view(const struct esky_image *img)
{
	return &img->view;
}

int esky_image_fd(const struct esky_image *img)
{
	return img->fd;
}

const char *esky_image_str(const struct esky_image *img, uint32_t off)
{
	if (!off || off >= img->view.strings_len)
		return "";
	return img->view.strings + off;
}

char *esky_image_meta(const struct esky_image *img, const char *key)
{
	const char *p = img->view.meta, *end = p ? p + img->view.meta_len : NULL;
	size_t kl = strlen(key);

	while (p && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > kl && !memcmp(p, key, kl) && p[kl] == '=')
			return strndup(p + kl + 1, (size_t)(eol - p - (ptrdiff_t)kl - 1));
		p = eol + 1;
	}
	return NULL;
}

static bool id_is_zero(const uint8_t id[16])
{
	for (int i = 0; i < 16; i++)
		if (id[i])
			return false;
	return true;
}

int esky_image_open_chain(const char *path, struct esky_image ***out, size_t *nout)
{
	struct esky_image **chain = NULL;
	size_t n = 0;
	char *cur = strdup(path);
	int ret = 0;

	while (cur && !ret) {
		struct esky_image **nc = realloc(chain, (n + 1) * sizeof(*nc));
		const struct esky_img_header *h;
		const char *hint, *slash;
		char *next = NULL;

		if (!nc) {
			ret = -ENOMEM;
			break;
		}
		chain = nc;
		ret = esky_image_open(cur, &chain[n]);
		if (ret)
			break;
		n++;
		if (n > 1 && memcmp(chain[n - 1]->hdr.id, chain[n - 2]->hdr.parent_id, 16)) {
			ret = esky_error(-ESTALE, "%s: is not the parent %s was taken from (ids differ)",
					 cur, chain[n - 2]->name);
			break;
		}
		h = &chain[n - 1]->hdr;
		if (!(h->flags & ESKY_IMGF_INCREMENTAL))
			break;
		hint = esky_image_str(chain[n - 1], h->parent_hint);
		if (!*hint || id_is_zero(h->parent_id)) {
			ret = esky_error(-EBADMSG, "%s: damaged: incremental image without a parent",
					 cur);
			break;
		}
		/*
		 * esky names a parent by its file name, in the same directory:
		 * a path (absolute, or through ..) would let an image make esky
		 * open any file the user may read.
		 */
		if (strchr(hint, '/') || !strcmp(hint, ".") || !strcmp(hint, "..")) {
			ret = esky_error(-EBADMSG, "%s: damaged: its parent is named by a path (%s), "
					 "not a file beside it", cur, hint);
			break;
		}
		if (n >= 100000) {
			ret = esky_error(-ELOOP, "%s: chain of parents too long", path);
			break;
		}
		slash = strrchr(cur, '/');
		if (!slash)
			next = strdup(hint);
		else if (asprintf(&next, "%.*s/%s", (int)(slash - cur), cur, hint) < 0)
			next = NULL;
		free(cur);
		cur = next;
		if (!cur)
			ret = -ENOMEM;
		else if (access(cur, F_OK) < 0)
			ret = esky_error(-ENOENT, "%s: its parent checkpoint %s is missing", path, cur);
	}
	free(cur);
	if (ret) {
		esky_image_close_chain(chain, n);
		return ret;
	}
	*out = chain;
	*nout = n;
	return 0;
}

void esky_image_close_chain(struct esky_image **chain, size_t n)
{
	for (size_t i = 0; i < n; i++)
		esky_image_close(chain[i]);
	free(chain);
}

/* Index of the first run of v that ends after addr. */
static size_t first_run_after(const struct esky_image_view *v, uint64_t addr)
{
	size_t lo = 0, hi = v->run_n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct esky_img_pagerun *r = &v->runs[mid];

		if (r->vaddr + r->npages * ESKY_IMG_PAGE_SIZE <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int resolve_level(struct esky_image *const *chain, size_t n, size_t level, uint64_t a,
			 uint64_t b, esky_resolve_fn fn, void *ctx)
{
	const struct esky_image_view *v = &chain[level]->view;
	int ret = 0;

	for (size_t i = first_run_after(v, a); i < v->run_n && !ret; i++) {
		const struct esky_img_pagerun *r = &v->runs[i];
		uint64_t end = r->vaddr + r->npages * ESKY_IMG_PAGE_SIZE;
		uint64_t ra = r->vaddr > a ? r->vaddr : a, rb = end < b ? end : b;
		uint64_t skip = (ra - r->vaddr) / ESKY_IMG_PAGE_SIZE;

		if (r->vaddr >= b)
			break;
		switch (r->kind) {
		case ESKY_IMG_PAGES_DATA:
			ret = fn(ctx, ra, (rb - ra) / ESKY_IMG_PAGE_SIZE, ESKY_IMG_PAGES_DATA, level,
				 v->pages_off + r->data_off + skip * ESKY_IMG_PAGE_SIZE,
				 v->hashes + r->hash_index + skip);
			break;
		case ESKY_IMG_PAGES_ZERO:
			ret = fn(ctx, ra, (rb - ra) / ESKY_IMG_PAGE_SIZE, ESKY_IMG_PAGES_ZERO, level, 0,
				 NULL);
			break;
		case ESKY_IMG_PAGES_PARENT:
			if (level + 1 >= n)
				return esky_error(-ENOENT, "%s: refers to a parent checkpoint that is "
						  "missing", v->path);
			ret = resolve_level(chain, n, level + 1, ra, rb, fn, ctx);
			break;
		}
	}
	return ret;
}

int esky_image_resolve(struct esky_image *const *chain, size_t n, uint64_t a, uint64_t b,
		       esky_resolve_fn fn, void *ctx)
{
	return resolve_level(chain, n, 0, a, b, fn, ctx);
}

struct hash_collect {
	struct esky_page_hash *v;
	size_t n, cap;
};

static int collect_hash(void *ctx, uint64_t vaddr, uint64_t npages, uint32_t kind, size_t level,
			uint64_t file_off, const uint64_t *hashes)
{
	struct hash_collect *c = ctx;

	(void)level;
	(void)file_off;
	if (kind != ESKY_IMG_PAGES_DATA)
		return 0;
	if (c->n + npages > c->cap) {
		size_t cap = c->cap ? c->cap : 1024;
		struct esky_page_hash *nv;

		while (cap < c->n + npages)
			cap *= 2;
		nv = realloc(c->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->cap = cap;
	}
	for (uint64_t i = 0; i < npages; i++)
		c->v[c->n++] = (struct esky_page_hash){ vaddr + i * ESKY_IMG_PAGE_SIZE, hashes[i] };
	return 0;
}

int esky_image_page_hashes(struct esky_image *const *chain, size_t n, struct esky_page_hash **out,
			   size_t *count)
{
	const struct esky_image_view *v = &chain[0]->view;
	struct hash_collect c = { 0 };
	int ret = 0;

	for (size_t i = 0; i < v->vma_n && !ret; i++)
		ret = esky_image_resolve(chain, n, v->vmas[i].start, v->vmas[i].end, collect_hash, &c);
	if (ret) {
		free(c.v);
		return ret;
	}
	*out = c.v;
	*count = c.n;
	return 0;
}

/* out = x intersected with the PARENT runs of image v (x merged). */
static int ranges_parent_runs(const struct esky_ranges *x, const struct esky_image_view *v,
			      struct esky_ranges *out)
{
	int ret = 0;

	for (size_t i = 0; i < x->n && !ret; i++) {
		for (size_t k = first_run_after(v, x->v[i].start); k < v->run_n && !ret; k++) {
			const struct esky_img_pagerun *r = &v->runs[k];
			uint64_t end = r->vaddr + r->npages * ESKY_IMG_PAGE_SIZE;

			if (r->vaddr >= x->v[i].end)
				break;
			if (r->kind == ESKY_IMG_PAGES_PARENT)
				ret = esky_ranges_add(out, r->vaddr > x->v[i].start ? r->vaddr : x->v[i].start,
						 end < x->v[i].end ? end : x->v[i].end);
		}
	}
	return ret;
}

static int ranges_vmas(struct esky_ranges *r, const struct esky_image_view *v)
{
	int ret = 0;

	for (size_t i = 0; i < v->vma_n && !ret; i++)
		ret = esky_ranges_add(r, v->vmas[i].start, v->vmas[i].end);
	return ret;
}

int esky_image_page_hashes_from(struct esky_image *const *chain, size_t n, size_t k,
				struct esky_image *const *other, size_t m,
				const struct esky_page_hash *from, size_t from_n,
				struct esky_page_hash **out, size_t *count)
{
	struct esky_ranges all = { 0 }, keep = { 0 }, next = { 0 }, cand = { 0 };
	struct hash_collect c = { 0 };
	struct esky_page_hash *t = NULL;
	size_t tn = 0, i = 0, j = 0;
	int ret;

	if (k >= n)
		return -EINVAL;
	/* Every address either maps: a page in neither table is in neither. */
	ret = ranges_vmas(&all, &chain[0]->view);
	if (!ret)
		ret = ranges_vmas(&all, m ? &other[0]->view : &chain[k]->view);
	esky_ranges_merge(&all);
	/* What every image between the two and the ancestor inherits: the ancestor's in both. */
	for (size_t q = 0; q < all.n && !ret; q++)
		ret = esky_ranges_add(&keep, all.v[q].start, all.v[q].end);
	for (size_t l = 0; l < k + m && !ret; l++) {
		const struct esky_image_view *v = l < k ? &chain[l]->view : &other[l - k]->view;

		next.n = 0;
		ret = ranges_parent_runs(&keep, v, &next);
		if (!ret) {
			struct esky_ranges tmp = keep;

			keep = next;
			next = tmp;
			esky_ranges_merge(&keep);
		}
	}
	if (!ret)
		ret = esky_ranges_minus(&all, &keep, &cand);
	/* The candidates resolved in chain: their pages as chain[0] has them. */
	for (size_t q = 0; q < cand.n && !ret; q++)
		ret = esky_image_resolve(chain, n, cand.v[q].start, cand.v[q].end, collect_hash, &c);
	if (!ret) {
		t = malloc((from_n + c.n + 1) * sizeof(*t));
		if (!t)
			ret = -ENOMEM;
	}
	/* from's pages outside the candidates, merged with the resolved ones (both sorted). */
	for (size_t q = 0; !ret && (i < from_n || j < c.n);) {
		bool take_from;

		if (i < from_n) {
			while (q < cand.n && cand.v[q].end <= from[i].vaddr)
				q++;
			if (q < cand.n && cand.v[q].start <= from[i].vaddr) {
				i++; /* a candidate: chain's value, if any, comes from c */
				continue;
			}
		}
		take_from = i < from_n && (j >= c.n || from[i].vaddr < c.v[j].vaddr);
		t[tn++] = take_from ? from[i++] : c.v[j++];
	}
	esky_ranges_free(&all);
	esky_ranges_free(&keep);
	esky_ranges_free(&next);
	esky_ranges_free(&cand);
	free(c.v);
	if (ret) {
		free(t);
		return ret;
	}
	*out = t;
	*count = tn;
	return 0;
}

/* ---- writer ---- */

#define WRITER_IOV_MAX 1024
#define WRITER_BUFS 4
/* Start writeback of what was written every this many bytes, so that the final fsync is short. */
#define WRITER_SYNC_STEP (64ULL << 20)
/*
 * Page data from this offset on goes straight to the disk (O_DIRECT);
 * before it, through the page cache. A direct write waits for the disk,
 * which costs more than a copy for the megabyte or two of an incremental
 * snapshot written while the program stands still (measured: +0.3 ms a
 * snapshot), and far less for a full checkpoint's GiB (see direct_fd).
 */
#define WRITER_DIRECT_FROM (16ULL << 20)
#define DIRECT_LATER (-2) /* direct_fd: not opened yet */

/*
 * A buffer of the writer: the dumper reads memory into it, write_pages
 * queues its stored pages as iovecs, submit hands it to the writer thread,
 * which writes them with pwritev and frees the buffer. The pages of one
 * buffer go to one contiguous range of the file.
 */
struct wbuf {
	char *data;
	struct iovec iov[WRITER_IOV_MAX];
	int iov_n;
	uint64_t file_off;
	uint64_t bytes;
	bool busy;           /* handed out or queued */
};

struct esky_image_writer {
	struct esky_outfile out;
	struct esky_img_header hdr;
	struct esky_img_core core;
	bool have_core;
	uint64_t page_pos;      /* next page data offset, from the start of PAGES */
	struct esky_buf sec[ESKY_SEC_LAST + 1];
	/* the DATA or PARENT run being extended */
	struct esky_img_pagerun cur;
	bool have_cur;
	uint64_t last_end;      /* end of the last run added: runs only go up */
	/* buffers and the writer thread */
	struct wbuf bufs[WRITER_BUFS];
	struct wbuf *filling;   /* handed out by esky_image_writer_buffer */
	int queue[WRITER_BUFS]; /* indexes of submitted buffers, in file order */
	int q_head, q_len;
	bool thread_started, stop;
	int async_err;
	uint64_t synced_to;     /* writeback started up to here */
	/*
	 * The same file opened again with O_DIRECT, for the page data (4096-
	 * aligned in memory, in length and in the file), or -1. Written
	 * through the page cache, a GiB of pages cost ~1.4 s of copying into
	 * it on our machine and then its writeback; straight to the disk,
	 * 0.6 s. Where the file system refuses O_DIRECT, the page cache.
	 * DIRECT_LATER until the data reaches WRITER_DIRECT_FROM.
	 */
	int direct_fd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static int write_batch(struct esky_image_writer *w, struct wbuf *b)
{
	int i = 0;
	uint64_t off = b->file_off;

	if (w->direct_fd == DIRECT_LATER && off >= WRITER_DIRECT_FROM) {
		char self[64];

		snprintf(self, sizeof(self), "/proc/self/fd/%d", w->out.fd);
		w->direct_fd = open(self, O_WRONLY | O_DIRECT | O_CLOEXEC);
	}
	while (i < b->iov_n) {
		int cnt = b->iov_n - i, fd = w->direct_fd >= 0 ? w->direct_fd : w->out.fd;
		ssize_t n = pwritev(fd, b->iov + i, cnt, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (fd == w->direct_fd && errno == EINVAL) {
				close(w->direct_fd); /* not here after all: the page cache */
				w->direct_fd = -1;
				continue;
			}
			return -errno;
		}
		off += (uint64_t)n;
		while (n > 0 && i < b->iov_n) {
			if ((size_t)n >= b->iov[i].iov_len) {
				n -= (ssize_t)b->iov[i].iov_len;
				i++;
			} else {
				b->iov[i].iov_base = (char *)b->iov[i].iov_base + n;
				b->iov[i].iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	/* Let the disk work while we go on; the commit's fsync then waits for less. */
	if (w->direct_fd < 0 && off >= w->synced_to + WRITER_SYNC_STEP) {
		sync_file_range(w->out.fd, (off_t)w->synced_to, (off_t)(off - w->synced_to),
				SYNC_FILE_RANGE_WRITE);
		w->synced_to = off;
	}
	b->iov_n = 0;
	b->bytes = 0;
	return 0;
}

static void *writer_thread(void *arg)
{
	struct esky_image_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct wbuf *b;
		int ret;

		while (!w->q_len && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->q_len)
			break;
		b = &w->bufs[w->queue[w->q_head]];
		pthread_mutex_unlock(&w->lock);
		ret = w->async_err ? 0 : write_batch(w, b);
		pthread_mutex_lock(&w->lock);
		if (ret && !w->async_err)
			w->async_err = ret;
		b->busy = false;
		w->q_head = (w->q_head + 1) % WRITER_BUFS;
		w->q_len--;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Wait until every submitted buffer is written; the first error, or 0. */
static int writer_drain(struct esky_image_writer *w)
{
	int ret;

	if (!w->thread_started)
		return w->async_err;
	pthread_mutex_lock(&w->lock);
	while (w->q_len)
		pthread_cond_wait(&w->cond, &w->lock);
	ret = w->async_err;
	pthread_mutex_unlock(&w->lock);
	return ret;
}

static void writer_stop(struct esky_image_writer *w)
{
	if (!w->thread_started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	w->thread_started = false;
}

/*
 * Buffers of finished writers, kept for the next ones: a fresh 4 MiB
 * buffer costs a page fault and a cleared page for each page read into
 * it, ~1 us a page, in the stop of every esky-shell snapshot.
 */
static struct {
	pthread_mutex_t lock;
	char *data[WRITER_BUFS];
	int n;
} spare_bufs = { PTHREAD_MUTEX_INITIALIZER, { NULL }, 0 };

static char *buf_alloc(void)
{
	char *p = NULL;

	pthread_mutex_lock(&spare_bufs.lock);
	if (spare_bufs.n)
		p = spare_bufs.data[--spare_bufs.n];
	pthread_mutex_unlock(&spare_bufs.lock);
	return p ? p : aligned_alloc(ESKY_IMG_PAGE_SIZE, ESKY_IMAGE_BUF_SIZE);
}

static void buf_release(char *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&spare_bufs.lock);
	if (spare_bufs.n < WRITER_BUFS) {
		spare_bufs.data[spare_bufs.n++] = p;
		p = NULL;
	}
	pthread_mutex_unlock(&spare_bufs.lock);
	free(p);
}

void *esky_image_writer_buffer(struct esky_image_writer *w)
{
	struct wbuf *b = NULL;

	if (w->filling)
		return w->filling->data;
	if (!w->thread_started) {
		if (pthread_create(&w->thread, NULL, writer_thread, w))
			return NULL;
		w->thread_started = true;
	}
	pthread_mutex_lock(&w->lock);
	for (;;) {
		for (int i = 0; i < WRITER_BUFS && !b; i++)
			if (!w->bufs[i].busy)
				b = &w->bufs[i];
		if (b)
			break;
		pthread_cond_wait(&w->cond, &w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	if (!b->data) {
		b->data = buf_alloc();
		if (!b->data)
			return NULL;
	}
	b->busy = true;
	b->iov_n = 0;
	b->bytes = 0;
	w->filling = b;
	return b->data;
}

int esky_image_writer_submit(struct esky_image_writer *w)
{
	struct wbuf *b = w->filling;
	int ret;

	if (!b)
		return 0;
	w->filling = NULL;
	pthread_mutex_lock(&w->lock);
	ret = w->async_err;
	if (!b->iov_n || ret) {
		b->busy = false;
	} else {
		w->queue[(w->q_head + w->q_len) % WRITER_BUFS] = (int)(b - w->bufs);
		w->q_len++;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return ret ? esky_error(ret, "cannot write %s: %s", w->out.path, strerror(-ret)) : 0;
}

int esky_image_writer_open(const char *path, struct esky_image_writer **out)
{
	struct esky_image_writer *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	ret = esky_outfile_open(&w->out, path);
	if (ret) {
		free(w);
		return ret;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->direct_fd = DIRECT_LATER;
	memcpy(w->hdr.magic, ESKY_IMG_MAGIC, 8);
	w->hdr.version = ESKY_IMG_VERSION;
	w->hdr.header_size = ESKY_IMG_HEADER_SIZE;
	w->hdr.created_ns = esky_wall_ns();
	if (getrandom(w->hdr.id, sizeof(w->hdr.id), 0) != sizeof(w->hdr.id)) {
		uint64_t t = esky_now_ns() ^ ((uint64_t)getpid() << 32);

		memcpy(w->hdr.id, &t, sizeof(t));
		memcpy(w->hdr.id + 8, &w->hdr.created_ns, sizeof(t));
	}
	w->core.exe_file = UINT32_MAX;
	/* Offset 0 of STRINGS is the empty string. */
	ret = esky_buf_append(&w->sec[ESKY_SEC_STRINGS], "", 1);
	if (ret) {
		esky_image_writer_abort(w);
		return ret;
	}
	*out = w;
	return 0;
}

void esky_image_writer_restamp(struct esky_image_writer *w)
{
	w->hdr.created_ns = esky_wall_ns();
}

const uint8_t *esky_image_writer_id(const struct esky_image_writer *w)
{
	return w->hdr.id;
}

uint32_t esky_image_add_string(struct esky_image_writer *w, const char *s, int *err)
{
	struct esky_buf *b = &w->sec[ESKY_SEC_STRINGS];
	uint32_t off = (uint32_t)b->len;
	int ret;

	if (!s || !*s)
		return 0;
	ret = esky_buf_append(b, s, strlen(s) + 1);
	if (ret) {
		*err = ret;
		return 0;
	}
	return off;
}

int esky_image_set_core(struct esky_image_writer *w, const struct esky_img_core *core)
{
	w->core = *core;
	w->have_core = true;
	return 0;
}

static int set_section(struct esky_image_writer *w, uint32_t type, const void *p, size_t len)
{
	w->sec[type].len = 0;
	return esky_buf_append(&w->sec[type], p, len);
}

int esky_image_set_xstate(struct esky_image_writer *w, const void *buf, size_t len)
{
	return set_section(w, ESKY_SEC_XSTATE, buf, len);
}

int esky_image_set_auxv(struct esky_image_writer *w, const uint64_t *words, size_t n)
{
	return set_section(w, ESKY_SEC_AUXV, words, n * sizeof(*words));
}

int esky_image_add_meta(struct esky_image_writer *w, const char *key, const char *value)
{
	struct esky_buf *b = &w->sec[ESKY_SEC_META];
	size_t start = b->len;
	int ret = esky_buf_printf(b, "%s=%s\n", key, value ? value : "");

	/* One line per key: newlines in values become spaces. */
	for (size_t i = start + strlen(key) + 1; !ret && i + 1 < b->len; i++)
		if (b->data[i] == '\n')
			b->data[i] = ' ';
	return ret;
}

static int flush_run(struct esky_image_writer *w);

int esky_image_add_vma(struct esky_image_writer *w, const struct esky_img_vma *vma)
{
	/* A run never crosses into the next mapping (the reader checks). */
	int ret = flush_run(w);

	return ret ? ret : esky_buf_append(&w->sec[ESKY_SEC_VMAS], vma, sizeof(*vma));
}

int esky_image_add_file(struct esky_image_writer *w, const struct esky_img_file *f, uint32_t *index)
{
	*index = (uint32_t)(w->sec[ESKY_SEC_FILES].len / sizeof(*f));
	return esky_buf_append(&w->sec[ESKY_SEC_FILES], f, sizeof(*f));
}

int esky_image_add_fd(struct esky_image_writer *w, const struct esky_img_fd *fd)
{
	return esky_buf_append(&w->sec[ESKY_SEC_FDS], fd, sizeof(*fd));
}

int esky_image_add_fdobj(struct esky_image_writer *w, const struct esky_img_fdobj *o,
			 uint32_t *index)
{
	*index = (uint32_t)(w->sec[ESKY_SEC_FDOBJS].len / sizeof(*o));
	return esky_buf_append(&w->sec[ESKY_SEC_FDOBJS], o, sizeof(*o));
}

int esky_image_add_blob(struct esky_image_writer *w, const void *data, size_t len, uint64_t *off)
{
	/* 8-aligned: an epoll object's registrations are read in place. */
	int ret = esky_buf_pad(&w->sec[ESKY_SEC_BLOBS], 8);

	*off = w->sec[ESKY_SEC_BLOBS].len;
	return ret ? ret : esky_buf_append(&w->sec[ESKY_SEC_BLOBS], data, len);
}

int esky_image_add_siginfo(struct esky_image_writer *w, const struct esky_img_siginfo *si)
{
	return esky_buf_append(&w->sec[ESKY_SEC_SIGINFO], si, sizeof(*si));
}

int esky_image_add_thread(struct esky_image_writer *w, const struct esky_img_thread *th,
			  const void *xstate, size_t xlen)
{
	struct esky_buf *xb = &w->sec[ESKY_SEC_THREAD_XSTATE];
	struct esky_img_thread rec = *th;
	size_t old = xb->len;
	int ret;

	if (xlen > THREAD_XSTATE_MAX)
		return -EINVAL;
	rec.xstate_off = xlen ? xb->len : 0;
	rec.xstate_len = xlen;
	ret = xlen ? esky_buf_append(xb, xstate, xlen) : 0;
	if (!ret)
		ret = esky_buf_append(&w->sec[ESKY_SEC_THREADS], &rec, sizeof(rec));
	if (ret)
		xb->len = old;
	return ret;
}

int esky_image_set_parent(struct esky_image_writer *w, const uint8_t parent_id[16],
			  const char *parent_hint)
{
	int err = 0;

	memcpy(w->hdr.parent_id, parent_id, 16);
	w->hdr.flags |= ESKY_IMGF_INCREMENTAL;
	w->hdr.parent_hint = esky_image_add_string(w, parent_hint, &err);
	return err;
}

static int flush_run(struct esky_image_writer *w)
{
	int ret;

	if (!w->have_cur)
		return 0;
	ret = esky_buf_append(&w->sec[ESKY_SEC_PAGEMAP], &w->cur, sizeof(w->cur));
	w->have_cur = false;
	return ret;
}

/*
 * Queue one page for writing at the current page position. Pages of the
 * buffer being filled go with it to the writer thread; a page elsewhere
 * (the caller's own memory) is written at once, after what is queued.
 */
static int queue_page(struct esky_image_writer *w, const void *page)
{
	struct wbuf *b = w->filling;
	struct iovec *last;

	if (!b || (const char *)page < b->data || (const char *)page >= b->data + ESKY_IMAGE_BUF_SIZE) {
		int ret = writer_drain(w);

		if (!ret)
			ret = esky_pwrite_all(w->out.fd, page, ESKY_IMG_PAGE_SIZE,
					      (off_t)(ESKY_IMG_HEADER_SIZE + w->page_pos));
		if (ret)
			return esky_error(ret, "cannot write %s: %s", w->out.path, strerror(-ret));
		w->page_pos += ESKY_IMG_PAGE_SIZE;
		return 0;
	}
	last = b->iov_n ? &b->iov[b->iov_n - 1] : NULL;
	if (!b->iov_n)
		b->file_off = ESKY_IMG_HEADER_SIZE + w->page_pos;
	if (last && (const char *)last->iov_base + last->iov_len == (const char *)page) {
		last->iov_len += ESKY_IMG_PAGE_SIZE;
	} else {
		/* A buffer holds 1024 pages: it never needs more iovecs than that. */
		b->iov[b->iov_n].iov_base = (void *)page;
		b->iov[b->iov_n].iov_len = ESKY_IMG_PAGE_SIZE;
		b->iov_n++;
	}
	b->bytes += ESKY_IMG_PAGE_SIZE;
	w->page_pos += ESKY_IMG_PAGE_SIZE;
	return 0;
}

/* Extend the current run with one page of this kind at vaddr, or start a new one. */
static int add_page(struct esky_image_writer *w, uint64_t vaddr, uint32_t kind)
{
	struct esky_img_pagerun *c = &w->cur;
	int ret;

	if (w->have_cur && c->kind == kind && c->vaddr + c->npages * ESKY_IMG_PAGE_SIZE == vaddr) {
		c->npages++;
		return 0;
	}
	ret = flush_run(w);
	if (ret)
		return ret;
	memset(c, 0, sizeof(*c));
	c->vaddr = vaddr;
	c->npages = 1;
	c->kind = kind;
	if (kind == ESKY_IMG_PAGES_DATA) {
		c->data_off = w->page_pos;
		c->hash_index = (uint32_t)(w->sec[ESKY_SEC_PAGEHASH].len / sizeof(uint64_t));
	}
	w->have_cur = true;
	return 0;
}

int esky_image_write_pages(struct esky_image_writer *w, uint64_t vaddr, const void *buf,
			   size_t npages, bool zero_holes, const struct esky_page_parent *parent,
			   uint64_t *stored, uint64_t *referenced)
{
	const char *p = buf;
	int ret = 0;

	if (vaddr < w->last_end || vaddr % ESKY_IMG_PAGE_SIZE)
		return -EINVAL;
	if (parent && !(w->hdr.flags & ESKY_IMGF_INCREMENTAL))
		return -EINVAL;
	for (size_t i = 0; i < npages && !ret; i++, p += ESKY_IMG_PAGE_SIZE) {
		uint64_t va = vaddr + i * ESKY_IMG_PAGE_SIZE, ph;
		int zero;
		uint64_t h = esky_hash_page(p, &zero);

		if (parent && parent->hash(parent->ctx, va, &ph) && ph == h) {
			ret = add_page(w, va, ESKY_IMG_PAGES_PARENT);
			if (referenced)
				(*referenced)++;
			continue;
		}
		if (zero && zero_holes)
			continue;
		ret = add_page(w, va, ESKY_IMG_PAGES_DATA);
		if (!ret)
			ret = esky_buf_append(&w->sec[ESKY_SEC_PAGEHASH], &h, sizeof(h));
		if (!ret)
			ret = queue_page(w, p);
		if (stored)
			(*stored)++;
	}
	if (!ret)
		w->last_end = vaddr + npages * ESKY_IMG_PAGE_SIZE;
	return ret;
}

int esky_image_add_parent_pages(struct esky_image_writer *w, uint64_t vaddr, size_t npages)
{
	int ret = 0;

	if (vaddr < w->last_end || vaddr % ESKY_IMG_PAGE_SIZE)
		return -EINVAL;
	if (!(w->hdr.flags & ESKY_IMGF_INCREMENTAL))
		return -EINVAL;
	ret = add_page(w, vaddr, ESKY_IMG_PAGES_PARENT);
	if (!ret)
		w->cur.npages += npages - 1;
	if (!ret)
		w->last_end = vaddr + npages * ESKY_IMG_PAGE_SIZE;
	return ret;
}

uint64_t esky_image_writer_page_bytes(const struct esky_image_writer *w)
{
	return w->page_pos;
}

static void writer_free(struct esky_image_writer *w);

int esky_image_writer_commit(struct esky_image_writer *w)
{
	static const uint32_t order[] = {
		ESKY_SEC_CORE,	  ESKY_SEC_XSTATE,  ESKY_SEC_STRINGS,  ESKY_SEC_VMAS,
		ESKY_SEC_FILES,	  ESKY_SEC_FDS,	    ESKY_SEC_SIGINFO,  ESKY_SEC_PAGEMAP,
		ESKY_SEC_PAGEHASH, ESKY_SEC_AUXV,   ESKY_SEC_META,	ESKY_SEC_FDOBJS,
		ESKY_SEC_BLOBS,	  ESKY_SEC_THREADS,
		ESKY_SEC_THREAD_XSTATE,
	};
	uint64_t pos;
	unsigned n = 0;
	int ret;

	if (!w->have_core) {
		esky_image_writer_abort(w);
		return -EINVAL;
	}
	ret = flush_run(w);
	if (!ret)
		ret = esky_image_writer_submit(w);
	if (!ret)
		ret = writer_drain(w);
	writer_stop(w);
	if (ret) {
		esky_error(ret, "cannot write %s: %s", w->out.path, strerror(-ret));
		goto out_abort;
	}
	ret = set_section(w, ESKY_SEC_CORE, &w->core, sizeof(w->core));
	if (ret)
		goto out_abort;
	if (w->page_pos) {
		struct esky_img_section *s = &w->hdr.sections[n++];

		s->type = ESKY_SEC_PAGES;
		s->offset = ESKY_IMG_HEADER_SIZE;
		s->size = w->page_pos;
	}
	pos = ESKY_IMG_HEADER_SIZE + w->page_pos;
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(order); i++) {
		struct esky_buf *b = &w->sec[order[i]];
		struct esky_img_section *s;
		static const char zeros[8];
		uint64_t pad = (8 - pos % 8) % 8;

		if (!b->len && order[i] != ESKY_SEC_VMAS)
			continue;
		if (pad) {
			ret = esky_pwrite_all(w->out.fd, zeros, pad, (off_t)pos);
			if (ret)
				goto out_write_error;
			pos += pad;
		}
		s = &w->hdr.sections[n++];
		s->type = order[i];
		s->offset = pos;
		s->size = b->len;
		s->checksum = esky_hash64(b->data, b->len, ESKY_IMG_CHECKSUM_SEED);
		ret = esky_pwrite_all(w->out.fd, b->data, b->len, (off_t)pos);
		if (ret)
			goto out_write_error;
		pos += b->len;
	}
	w->hdr.section_n = n;
	w->hdr.file_size = pos;
	w->hdr.checksum = esky_hash64(&w->hdr, offsetof(struct esky_img_header, checksum),
				      ESKY_IMG_CHECKSUM_SEED);
	ret = esky_pwrite_all(w->out.fd, &w->hdr, sizeof(w->hdr), 0);
	if (ret)
		goto out_write_error;
	ret = esky_outfile_commit(&w->out);
	writer_free(w);
	return ret;

out_write_error:
	esky_error(ret, "cannot write %s: %s", w->out.path, strerror(-ret));
out_abort:
	esky_image_writer_abort(w);
	return ret;
}

static void writer_free(struct esky_image_writer *w)
{
	writer_stop(w);
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(w->sec); i++)
		esky_buf_free(&w->sec[i]);
	for (int i = 0; i < WRITER_BUFS; i++)
		buf_release(w->bufs[i].data);
	if (w->direct_fd >= 0)
		close(w->direct_fd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

void esky_image_writer_abort(struct esky_image_writer *w)
{
	if (!w)
		return;
	writer_stop(w);
	esky_outfile_abort(&w->out);
	writer_free(w);
}

/* ---- export: one standalone image from a chain ---- */

struct flatten_ctx {
	struct esky_image *const *chain;
	struct esky_image_writer *w;
	bool zero_holes;
};

static int flatten_piece(void *arg, uint64_t vaddr, uint64_t npages, uint32_t kind, size_t level,
			 uint64_t file_off, const uint64_t *hashes)
{
	struct flatten_ctx *c = arg;
	const uint64_t per_buf = ESKY_IMAGE_BUF_SIZE / ESKY_IMG_PAGE_SIZE;
	int ret = 0;

	(void)hashes;
	if (kind == ESKY_IMG_PAGES_ZERO && c->zero_holes)
		return 0;
	for (uint64_t done = 0; done < npages && !ret; done += per_buf) {
		uint64_t cnt = npages - done < per_buf ? npages - done : per_buf;
		size_t len = (size_t)(cnt * ESKY_IMG_PAGE_SIZE);
		char *buf = esky_image_writer_buffer(c->w);

		if (!buf)
			return -ENOMEM;
		if (kind == ESKY_IMG_PAGES_ZERO) {
			memset(buf, 0, len);
		} else {
			ret = esky_pread_all(c->chain[level]->fd, buf, len,
					     (off_t)(file_off + done * ESKY_IMG_PAGE_SIZE));
			if (ret) {
				esky_error(ret, "%s: cannot read page data: %s", c->chain[level]->name,
					   strerror(-ret));
				break;
			}
		}
		ret = esky_image_write_pages(c->w, vaddr + done * ESKY_IMG_PAGE_SIZE, buf, (size_t)cnt,
					     c->zero_holes, NULL, NULL, NULL);
		if (!ret)
			ret = esky_image_writer_submit(c->w);
	}
	return ret;
}

int esky_image_flatten(struct esky_image *const *chain, size_t n, const char *path)
{
	const struct esky_image *img = chain[0];
	const struct esky_image_view *v = &img->view;
	struct flatten_ctx c = { .chain = chain };
	struct esky_img_core core = *v->core;
	int ret, err = 0;

	ret = esky_image_writer_open(path, &c.w);
	if (ret)
		return ret;
	c.w->hdr.created_ns = v->hdr->created_ns;
	/* Strings are written anew: their offsets change. */
	core.cwd = esky_image_add_string(c.w, esky_image_str(img, v->core->cwd), &err);
	core.cmdline = esky_image_add_string(c.w, esky_image_str(img, v->core->cmdline), &err);
	ret = err;
	if (!ret)
		ret = esky_image_set_core(c.w, &core);
	if (!ret && v->xstate_len)
		ret = esky_image_set_xstate(c.w, v->xstate, v->xstate_len);
	if (!ret && v->auxv_n)
		ret = esky_image_set_auxv(c.w, v->auxv, v->auxv_n);
	if (!ret && v->meta_len)
		ret = esky_buf_append(&c.w->sec[ESKY_SEC_META], v->meta, v->meta_len);
	for (size_t i = 0; !ret && i < v->file_n; i++) {
		struct esky_img_file f = v->files[i];
		uint32_t idx;

		f.path = esky_image_add_string(c.w, esky_image_str(img, v->files[i].path), &err);
		ret = err ? err : esky_image_add_file(c.w, &f, &idx);
	}
	for (size_t i = 0; !ret && i < v->fd_n; i++)
		ret = esky_image_add_fd(c.w, &v->fds[i]);
	/* Threads in their order: a pending signal's thread field numbers them. */
	for (size_t i = 0; !ret && i < v->thread_n; i++) {
		const struct esky_img_thread *th = &v->threads[i];

		ret = esky_image_add_thread(c.w, th,
					    th->xstate_len ? v->thread_xstate + th->xstate_off : NULL,
					    (size_t)th->xstate_len);
	}
	for (size_t i = 0; !ret && i < v->sig_n; i++)
		ret = esky_image_add_siginfo(c.w, &v->sigs[i]);
	if (!ret && v->blobs_len)
		ret = esky_buf_append(&c.w->sec[ESKY_SEC_BLOBS], v->blobs, v->blobs_len);
	for (size_t i = 0; !ret && i < v->fdobj_n; i++) {
		struct esky_img_fdobj o = v->fdobjs[i];
		uint32_t idx;

		o.name = esky_image_add_string(c.w, esky_image_str(img, v->fdobjs[i].name), &err);
		ret = err ? err : esky_image_add_fdobj(c.w, &o, &idx);
	}
	for (size_t i = 0; !ret && i < v->vma_n; i++) {
		struct esky_img_vma m = v->vmas[i];

		m.name = esky_image_add_string(c.w, esky_image_str(img, v->vmas[i].name), &err);
		ret = err ? err : esky_image_add_vma(c.w, &m);
		c.zero_holes = m.kind == ESKY_IMG_VMA_ANON || m.kind == ESKY_IMG_VMA_SHARED_ANON ||
			       m.kind == ESKY_IMG_VMA_SYSV_SHM;
		if (!ret)
			ret = esky_image_resolve(chain, n, m.start, m.end, flatten_piece, &c);
	}
	if (ret) {
		esky_image_writer_abort(c.w);
		return ret;
	}
	return esky_image_writer_commit(c.w);
}
