/*
 * Fuzz target of the image reader: esky_image_open_fd and
 * esky_image_verify_pages on arbitrary bytes, then a walk over the view
 * that checks the reader's promise (image.h: "check all of it but the page
 * data: header, section table, every metadata checksum, every offset,
 * index and length") the way restore.c and describe.c rely on it. A
 * process tree file that opens has each of its processes opened too
 * (esky_image_open_member): every live one must open (the open checked
 * them all) and is walked and verified the same way, a zombie must be
 * refused with a message.
 *
 * Built two ways (CMakeLists.txt): with the standalone driver
 * (image_fuzz_driver.c) under -fsanitize=address,undefined for CTest, and
 * by hand with clang -fsanitize=fuzzer for libFuzzer (run-libfuzzer.sh),
 * where ESKY_LIBFUZZER adds a custom mutator that recomputes the checksums
 * after libFuzzer's mutation half of the time: without it nearly every
 * input stops at the first checksum.
 */
#include "image_fuzz.h"

#include "hash.h"
#include "image.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The contract is broken: say how, and abort (the fuzzer keeps the input). */
static void broken(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void broken(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "image_fuzz: reader contract broken: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* The message of a failure: present, one line, naming the file first. */
static void check_message(int ret, const char *what)
{
	const char *msg = esky_last_error();

	if (ret >= 0)
		broken("%s returned %d, not 0 or -errno", what, ret);
	if (ret == -ENOMEM && !msg)
		return; /* allocation failures carry no message (log.h) */
	if (!msg)
		broken("%s failed with %d (%s) and recorded no message", what, ret, strerror(-ret));
	if (strchr(msg, '\n'))
		broken("%s: message of more than one line: \"%s\"", what, msg);
	if (strncmp(msg, IMAGE_FUZZ_NAME ": ", strlen(IMAGE_FUZZ_NAME ": ")))
		broken("%s: message does not name the file first: \"%s\"", what, msg);
}

/* A string the reader accepted must lie inside STRINGS, NUL included. */
static size_t walk_str(const struct esky_image *img, uint32_t off)
{
	/* strlen reads up to the NUL: ASan catches a string running off the end */
	return strlen(esky_image_str(img, off));
}

/*
 * Walk the view of img, an image of image_size bytes (the input's, or its
 * process's in a tree) in an input of size bytes.
 */
static void walk(struct esky_image *img, size_t image_size, size_t size)
{
	const struct esky_image_view *v = esky_image_view(img);
	volatile size_t sink = 0;
	char *m;

	if (!v->hdr || !v->core)
		broken("no header or core in the view");
	if (v->file_size != image_size)
		broken("image size %llu, expected %zu bytes", (unsigned long long)v->file_size,
		       image_size);
	sink += walk_str(img, v->core->cwd) + walk_str(img, v->core->cmdline) +
		walk_str(img, v->hdr->parent_hint);
	if (v->core->exe_file != UINT32_MAX && v->core->exe_file >= v->file_n)
		broken("executable file %u of %zu", v->core->exe_file, v->file_n);
	if (v->xstate_len)
		sink += ((const unsigned char *)v->xstate)[0] +
			((const unsigned char *)v->xstate)[v->xstate_len - 1];
	for (size_t i = 0; i < v->file_n; i++) {
		if (v->files[i].build_id_len > sizeof(v->files[i].build_id))
			broken("file %zu: build-id of %u bytes", i, v->files[i].build_id_len);
		sink += walk_str(img, v->files[i].path);
	}
	for (size_t i = 0; i < v->vma_n; i++) {
		const struct esky_img_vma *vm = &v->vmas[i];

		/* restore.c: files[m->file] whenever m->file >= 0 */
		if (vm->file >= 0 && (size_t)vm->file >= v->file_n)
			broken("mapping %zu: file %d of %zu", i, vm->file, v->file_n);
		if (vm->start >= vm->end || (i && vm->start < v->vmas[i - 1].end))
			broken("mapping %zu: 0x%llx-0x%llx out of order", i,
			       (unsigned long long)vm->start, (unsigned long long)vm->end);
		sink += walk_str(img, vm->name);
	}
	for (size_t i = 0; i < v->fd_n; i++) {
		const struct esky_img_fd *f = &v->fds[i];

		/* restore.c, describe.c: fdobjs[f->file] for kind OBJECT */
		if (f->kind == ESKY_IMG_FD_OBJECT && (f->file < 0 || (size_t)f->file >= v->fdobj_n))
			broken("fd record %zu (fd %d): object %d of %zu", i, f->fd, f->file,
			       v->fdobj_n);
		/* restore.c (agent errors): files[f->file] whenever f->file >= 0, other kinds */
		if (f->kind != ESKY_IMG_FD_OBJECT && f->file >= 0 && (size_t)f->file >= v->file_n)
			broken("fd record %zu (fd %d, kind %u): file %d of %zu", i, f->fd, f->kind,
			       f->file, v->file_n);
		/* describe.c: stdio_names[f->stdio_src] */
		if (f->kind == ESKY_IMG_FD_STDIO && (f->stdio_src < 0 || f->stdio_src > 2))
			broken("fd record %zu: stdio source %d", i, f->stdio_src);
	}
	for (size_t i = 0; i < v->fdobj_n; i++) {
		const struct esky_img_fdobj *o = &v->fdobjs[i];

		/* restore.c, core.c: an object's bytes are read in place from BLOBS */
		if (o->data_off > v->blobs_len || o->data_len > v->blobs_len - o->data_off)
			broken("object %zu: bytes %llu+%llu of %zu", i, (unsigned long long)o->data_off,
			       (unsigned long long)o->data_len, v->blobs_len);
		for (uint64_t k = 0; k < o->data_len; k++)
			sink += v->blobs[o->data_off + k];
		sink += walk_str(img, o->name);
		/* fd_unix.c, describe.c: a socket's bytes start with its header, then its name */
		if (o->kind == ESKY_IMG_OBJ_UNIX || o->kind == ESKY_IMG_OBJ_UNIX_LISTEN) {
			struct esky_img_unix h;

			if (o->data_len < sizeof(h))
				broken("socket object %zu: %llu bytes", i,
				       (unsigned long long)o->data_len);
			memcpy(&h, v->blobs + o->data_off, sizeof(h));
			if (h.name_len > 108 || h.name_len > o->data_len - sizeof(h))
				broken("socket object %zu: name of %u bytes", i, h.name_len);
		}
	}
	for (size_t i = 0; i < v->run_n; i++) {
		const struct esky_img_pagerun *r = &v->runs[i];
		size_t k = 0;

		while (k < v->vma_n && v->vmas[k].end <= r->vaddr)
			k++;
		if (k == v->vma_n || v->vmas[k].start > r->vaddr ||
		    (v->vmas[k].end - r->vaddr) / ESKY_IMG_PAGE_SIZE < r->npages)
			broken("page run %zu lies outside the mappings", i);
		if (r->kind != ESKY_IMG_PAGES_DATA)
			continue;
		if (r->data_off > v->pages_size ||
		    (v->pages_size - r->data_off) / ESKY_IMG_PAGE_SIZE < r->npages)
			broken("page run %zu: data beyond PAGES", i);
		if (r->hash_index > v->hash_n || v->hash_n - r->hash_index < r->npages)
			broken("page run %zu: hashes beyond PAGEHASH", i);
		sink += v->hashes[r->hash_index] + v->hashes[r->hash_index + r->npages - 1];
	}
	if (v->pages_size && v->pages_off + v->pages_size > size)
		broken("PAGES beyond the end of the input");
	if (v->auxv_n % 2)
		broken("odd auxv");
	for (size_t i = 0; i < v->auxv_n; i++)
		sink += v->auxv[i];
	for (size_t i = 0; i < v->thread_n; i++) {
		const struct esky_img_thread *th = &v->threads[i];

		/* restore.c, core.c: a thread's xstate is read in place from THREAD_XSTATE */
		if (th->xstate_off > v->thread_xstate_len ||
		    th->xstate_len > v->thread_xstate_len - th->xstate_off)
			broken("thread %zu: xstate %llu+%llu of %zu", i,
			       (unsigned long long)th->xstate_off, (unsigned long long)th->xstate_len,
			       v->thread_xstate_len);
		if (th->xstate_len)
			sink += v->thread_xstate[th->xstate_off] +
				v->thread_xstate[th->xstate_off + th->xstate_len - 1];
		/* describe.c, core.c: the name printed as a string; the tid as a thread's id */
		if (!memchr(th->comm, 0, sizeof(th->comm)))
			broken("thread %zu: unterminated name", i);
		if (!th->tid || th->tid == v->core->pid)
			broken("thread %zu: tid %u, the pid %u", i, th->tid, v->core->pid);
		sink += strlen(th->comm);
	}
	for (size_t i = 0; i < v->sig_n; i++) {
		/* restore.c: the queue of threads[thread - 1] */
		if (v->sigs[i].thread > v->thread_n || (v->sigs[i].shared && v->sigs[i].thread))
			broken("pending signal %zu: thread %u of %zu (shared %u)", i,
			       v->sigs[i].thread, v->thread_n, v->sigs[i].shared);
		sink += v->sigs[i].info[127];
	}
	m = esky_image_meta(img, "esky_version");
	free(m);
	if (v->meta_len)
		sink += (unsigned char)v->meta[v->meta_len - 1];
	(void)sink;
}

/*
 * The processes of a tree that opened: its table as the reader promised
 * it, each live process's image opened, walked and verified, each
 * zombie's refused with a message.
 */
static void walk_tree(struct esky_image *img, const struct esky_tree_header *t, size_t size)
{
	if (t->proc_n < 1 || t->proc_n > ESKY_TREE_MAX_PROCS)
		broken("tree of %u processes", t->proc_n);
	if (t->file_size != size)
		broken("tree file size %llu, the input has %zu bytes",
		       (unsigned long long)t->file_size, size);
	for (size_t i = 0; i < t->proc_n; i++) {
		const struct esky_tree_proc *p = &t->procs[i];
		struct esky_image *m;
		int ret;

		esky_error_clear();
		ret = esky_image_open_member(img, i, &m);
		if (p->flags & ESKY_TREE_ZOMBIE) {
			if (!i)
				broken("the root of the tree is a zombie");
			if (!ret)
				broken("esky_image_open_member opened zombie %zu", i);
			check_message(ret, "esky_image_open_member (zombie)");
			continue;
		}
		if (ret)
			broken("process %zu of the tree did not open after the tree did: %s", i,
			       esky_last_error() ? esky_last_error() : "no message");
		if (p->offset % 4096 || p->offset < ESKY_TREE_HEADER_SIZE || p->offset > size ||
		    p->size > size - p->offset)
			broken("process %zu: image of %llu bytes at %llu", i,
			       (unsigned long long)p->size, (unsigned long long)p->offset);
		if (esky_image_tree(m) != NULL &&
		    memcmp(esky_image_tree(m), t, sizeof(*t)))
			broken("process %zu: another table than the root's", i);
		walk(m, (size_t)p->size, size);
		esky_error_clear();
		ret = esky_image_verify_pages(m);
		if (ret)
			check_message(ret, "esky_image_verify_pages (member)");
		esky_image_close(m);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	const struct esky_tree_header *t;
	struct esky_image *img;
	int ret;

	if (fd < 0) {
		fd = memfd_create("image_fuzz", MFD_CLOEXEC);
		if (fd < 0) {
			perror("image_fuzz: memfd_create");
			abort();
		}
	}
	if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
		perror("image_fuzz: cannot write the input to the memfd");
		abort();
	}
	esky_error_clear();
	ret = esky_image_open_fd(fd, IMAGE_FUZZ_NAME, &img);
	if (ret) {
		check_message(ret, "esky_image_open_fd");
		return 0;
	}
	t = esky_image_tree(img);
	walk(img, t ? (size_t)t->procs[0].size : size, size);
	esky_error_clear();
	ret = esky_image_verify_pages(img);
	if (ret)
		check_message(ret, "esky_image_verify_pages");
	if (t)
		walk_tree(img, t, size);
	esky_image_close(img);
	return 0;
}

void image_fuzz_reseal(uint8_t *data, size_t size)
{
	struct esky_img_header h;

	if (size >= sizeof(struct esky_tree_header) && !memcmp(data, ESKY_TREE_MAGIC, 8)) {
		struct esky_tree_header t;
		unsigned n;

		memcpy(&t, data, sizeof(t));
		n = t.proc_n < ESKY_TREE_MAX_PROCS ? t.proc_n : ESKY_TREE_MAX_PROCS;
		for (unsigned i = 0; i < n; i++)
			if (t.procs[i].offset && t.procs[i].offset < size &&
			    t.procs[i].size <= size - t.procs[i].offset)
				image_fuzz_reseal(data + t.procs[i].offset, (size_t)t.procs[i].size);
		t.checksum = esky_hash64(&t, offsetof(struct esky_tree_header, checksum),
					 ESKY_IMG_CHECKSUM_SEED);
		memcpy(data, &t, sizeof(t));
		return;
	}
	if (size < sizeof(h))
		return;
	memcpy(&h, data, sizeof(h));
	for (unsigned i = 0; i < h.section_n && i < ESKY_IMG_MAX_SECTIONS; i++) {
		struct esky_img_section *s = &h.sections[i];

		if (s->type != ESKY_SEC_PAGES && s->offset <= size && s->size <= size - s->offset)
			s->checksum = esky_hash64(data + s->offset, s->size, ESKY_IMG_CHECKSUM_SEED);
	}
	h.checksum = esky_hash64(&h, offsetof(struct esky_img_header, checksum),
				 ESKY_IMG_CHECKSUM_SEED);
	memcpy(data, &h, sizeof(h));
}

#ifdef ESKY_LIBFUZZER
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	/* Half the time, make the checksums right again; sometimes the file size too. */
	if (seed % 2 == 0 && size >= sizeof(struct esky_img_header)) {
		if (seed % 8 == 0) {
			uint64_t fs = size;

			memcpy(data + offsetof(struct esky_img_header, file_size), &fs, sizeof(fs));
		}
		image_fuzz_reseal(data, size);
	}
	return size;
}
#endif
