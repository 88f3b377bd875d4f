/*
 * Checks src/image.c, the reader and writer of checkpoint images, alone
 * (no process, no ptrace):
 *
 * 1. round trip: an image written with every kind of record (core,
 *    xstate, strings, mappings, files, fds, pending signals, threads and
 *    their xstate, auxv, meta, pages stored from the caller's memory and
 *    from the writer's buffers, zero pages left out as holes or stored)
 *    reads back field for field, its pages byte for byte, and passes
 *    esky_image_verify_pages; exported (esky_image_flatten) it reads back
 *    the same; esky info (esky_describe_image) lists its threads; an
 *    incremental child image refers to its parent's pages and opens as a
 *    chain of two; a missing or different parent is refused;
 * 2. the writer: mode 0600, no temporary file left after commit or abort,
 *    an existing file untouched by an abort, misuse refused;
 * 3. damage the reader must catch, each with its exact one-line message
 *    naming the file and the damage: every byte of the header flipped,
 *    bytes of each metadata section and of the padding flipped, page data
 *    flipped (caught by esky_image_verify_pages, not by open), truncation
 *    at several sizes, trailing junk, a wrong magic, a future version, a
 *    text file, an empty file, a directory, a missing file; and damage
 *    with valid checksums (records that contradict each other), made by
 *    recomputing the checksums after the edit.
 *
 *   image_test [--keep] [--quick]
 *
 * Works in a fresh directory under $TMPDIR (or /tmp), removed at the end
 * unless --keep or a failure. --quick flips every 31st byte of the header
 * instead of all (each damaged open runs in a child: slow under valgrind). Exit status: 0 pass, 1 fail, 99 harness
 * error. A failure prints file:line, what was expected and what was found.
 */
#include "describe.h"
#include "hash.h"
#include "image.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE ESKY_IMG_PAGE_SIZE
/* failures printed before the rest are only counted */
#define MAX_REPORTS 60

#define UNIT_NAME "image_test"
#define UNIT_WORK_DIR
#define UNIT_RNG_SEED 0x9e3779b97f4a7c15ULL
#include "unit_test.h"

/* --quick: fewer header bytes flipped (for valgrind, which makes each fork slow) */
static bool quick;
/* the damage being checked, named in failures */
static const char *damage = "";

#define CHECK_MEM(what, found, expected, len)                                                 \
	CHECK(!memcmp(found, expected, len), "%s: %zu bytes differ from what was written",    \
	      what, (size_t)(len))

/*
 * Open path in a child process (a crash of the reader is then one failed
 * check, not the end of the test); it must fail with exactly the message
 * expected, on one line. line: the caller's line, for the report.
 */
static void expect_open_error_at(int line, const char *path, const char *expected)
{
	char msg[1200] = "";
	int pfd[2], status, ret;
	ssize_t n, got = 0;
	pid_t pid;

	checks++;
	if (pipe(pfd) < 0)
		harness_error("pipe: %s", strerror(errno));
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		harness_error("fork: %s", strerror(errno));
	if (pid == 0) {
		struct esky_image *img = NULL;

		close(pfd[0]);
		alarm(10); /* a reader that hangs (a FIFO opened for reading) fails the check */
		esky_error_clear();
		ret = esky_image_open(path, &img);
		if (!ret) {
			esky_image_close(img);
			_exit(0);
		}
		dprintf(pfd[1], "%s", esky_last_error() ? esky_last_error() : "");
		_exit(ret < 0 ? (-ret & 0x7f) : 0x7f);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], msg + got, sizeof(msg) - 1 - (size_t)got)) > 0)
		got += n;
	msg[got] = '\0';
	close(pfd[0]);
	if (waitpid(pid, &status, 0) < 0)
		harness_error("waitpid: %s", strerror(errno));
	if (WIFSIGNALED(status))
		fail_at(__FILE__, line, "open %s: expected failure \"%s\", found a crash (signal %d, "
			"%s)", path, expected, WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status) == 0)
		fail_at(__FILE__, line, "open %s: expected failure \"%s\", found success", path,
			expected);
	else if (WEXITSTATUS(status) == 0x7f)
		fail_at(__FILE__, line, "open %s: expected a -errno, found a positive value", path);
	else if (!msg[0])
		fail_at(__FILE__, line, "open %s: expected message \"%s\", found error %d and no "
			"message", path, expected, -WEXITSTATUS(status));
	else if (strcmp(msg, expected))
		fail_at(__FILE__, line, "open %s: expected message \"%s\", found \"%s\"", path,
			expected, msg);
	else if (strchr(msg, '\n'))
		fail_at(__FILE__, line, "open %s: message of more than one line", path);
}

#define expect_open_error(path, ...)                                      \
	do {                                                              \
		char e_[8400];                                            \
		snprintf(e_, sizeof(e_), __VA_ARGS__);                    \
		expect_open_error_at(__LINE__, path, e_);                 \
	} while (0)

/* ---- the image written for the round trip ---- */

/* One page of the expected page map: where, which kind, the bytes (DATA). */
struct xpage {
	uint64_t vaddr;
	uint32_t kind;
	const unsigned char *data;
};

struct expect {
	uint8_t id[16];
	uint64_t t0, t1;              /* created_ns lies between */
	struct esky_img_core core;
	unsigned char xstate[2691];   /* not a multiple of 8: padding follows */
	uint32_t str_off[4];
	const char *str[4];
	struct esky_img_vma vmas[6];
	size_t vma_n;
	struct esky_img_file files[3];
	struct esky_img_fd fds[6];
	struct esky_img_siginfo sigs[2];
	struct esky_img_thread threads[3];
	unsigned char *thread_xstate[3];
	size_t thread_xstate_len[3];
	uint64_t auxv[14];
	struct xpage *pages;
	size_t page_n, page_cap;
	uint64_t stored, referenced;
	unsigned char *mem_file;      /* 4 dirty pages of a private file mapping */
	unsigned char *mem_heap;      /* HEAP_PAGES pages */
	unsigned char *mem_stack;     /* STACK_PAGES pages */
};

#define EXE_START 0x400000ULL
#define DATA_START 0x600000ULL
#define HEAP_START 0x10000000ULL
#define HEAP_PAGES 1536u	/* more than one writer buffer (1024 pages) */
#define STACK_START 0x7ff000000000ULL
#define STACK_PAGES 33u
#define VVAR_START 0x7ff000100000ULL
/* The round trip's process: its pid, its threads' tids, the length of their xstate. */
#define PID 4711u
#define TID0 4712u
#define XSTATE_THREAD0 2696u   /* AVX-512 and PKRU */
#define XSTATE_THREAD2 65536u  /* the most the reader takes */
#define THREAD_XSTATE_SIZE (XSTATE_THREAD0 + XSTATE_THREAD2)

static void xpage_add(struct expect *e, uint64_t vaddr, uint32_t kind, const unsigned char *data)
{
	if (e->page_n == e->page_cap) {
		e->page_cap = e->page_cap ? 2 * e->page_cap : 256;
		e->pages = realloc(e->pages, e->page_cap * sizeof(*e->pages));
		if (!e->pages)
			harness_error("out of memory");
	}
	e->pages[e->page_n++] = (struct xpage){ vaddr, kind, data };
}

/* What the writer must do with one page: the model the test checks against. */
static void model_page(struct expect *e, uint64_t va, const unsigned char *p, bool zero_holes,
		       const struct esky_page_parent *parent)
{
	uint64_t ph;
	int zero;
	uint64_t h = esky_hash_page(p, &zero);

	if (parent && parent->hash(parent->ctx, va, &ph) && ph == h) {
		xpage_add(e, va, ESKY_IMG_PAGES_PARENT, NULL);
		e->referenced++;
		return;
	}
	if (zero && zero_holes)
		return;
	xpage_add(e, va, ESKY_IMG_PAGES_DATA, p);
	e->stored++;
}

static void make_page(unsigned char *p, unsigned i, unsigned pattern)
{
	/* Which pages are zero: a mixture of lone and consecutive zero pages. */
	if (pattern == 1 ? i % 3 == 2 || i % 17 < 4 : pattern == 2 ? i < STACK_PAGES - 2 : i == 1)
		memset(p, 0, PAGE);
	else
		fill_random(p, PAGE);
}

static struct esky_img_vma vma_of(uint64_t start, uint64_t pages, uint32_t kind, uint32_t prot,
				  uint32_t flags, int32_t file, uint64_t pgoff)
{
	return (struct esky_img_vma){ .start = start, .end = start + pages * PAGE, .kind = kind,
				      .prot = prot, .flags = flags, .file = file, .pgoff = pgoff };
}

/*
 * Write the standalone image of the round trip: every kind of record, and
 * pages from the caller's memory (synchronous) and from the writer's
 * buffers (the writer thread).
 */
static void write_full(const char *path, struct expect *e)
{
	struct esky_image_writer *w;
	int err = 0;
	uint32_t idx;

	e->t0 = (uint64_t)time(NULL) * 1000000000ULL - 1000000000ULL;
	esky_error_clear();
	must(esky_image_writer_open(path, &w), "esky_image_writer_open");
	memcpy(e->id, esky_image_writer_id(w), 16);

	e->str[0] = "/home/user/work";
	e->str[1] = "roundtrip --flag arg";
	e->str[2] = "[anon:named region]";
	e->str[3] = "/usr/bin/roundtrip";
	for (int i = 0; i < 4; i++) {
		e->str_off[i] = esky_image_add_string(w, e->str[i], &err);
		must(err, "esky_image_add_string");
		CHECK(e->str_off[i] != 0, "string %d: expected a nonzero offset, found 0", i);
	}
	CHECK_U64("offset of the empty string", esky_image_add_string(w, "", &err), 0);
	CHECK_U64("offset of NULL", esky_image_add_string(w, NULL, &err), 0);

	/* Files: the executable (ELF, build-id), a data file written to, a device. */
	e->files[0] = (struct esky_img_file){
		.path = e->str_off[3], .dev = makedev(8, 1), .ino = 123456, .size = 987654,
		.mtime_ns = 1700000000123456789LL, .mode = 0100755, .build_id_len = 20,
		.flags = ESKY_IMG_FILEF_EXE | ESKY_IMG_FILEF_ELF | ESKY_IMG_FILEF_BUILD_ID,
	};
	fill_random(e->files[0].build_id, 20);
	e->files[1] = (struct esky_img_file){
		.path = e->str_off[0], .dev = makedev(8, 2), .ino = 42, .size = 12,
		.mtime_ns = -5, .mode = 0100644, .content_hash = 0x0123456789abcdefULL,
		.flags = ESKY_IMG_FILEF_WRITTEN | ESKY_IMG_FILEF_HASH,
	};
	e->files[2] = (struct esky_img_file){
		.path = esky_image_add_string(w, "/dev/null", &err), .mode = 020666,
		.rdev = makedev(1, 3), .flags = ESKY_IMG_FILEF_DEVICE,
	};
	for (uint32_t i = 0; i < 3; i++) {
		must(esky_image_add_file(w, &e->files[i], &idx), "esky_image_add_file");
		CHECK_U64("file index", idx, i);
	}

	/* Core: random bytes everywhere, then the fields the reader checks. */
	fill_random(&e->core, sizeof(e->core));
	e->core.arch = ESKY_IMG_ARCH_X86_64;
	e->core.cwd = e->str_off[0];
	e->core.cmdline = e->str_off[1];
	e->core.exe_file = 0;
	memcpy(e->core.comm, "roundtrip\0\0\0\0\0\0", 16);
	e->core.pid = PID;
	must(esky_image_set_core(w, &e->core), "esky_image_set_core");
	fill_random(e->xstate, sizeof(e->xstate));
	must(esky_image_set_xstate(w, e->xstate, sizeof(e->xstate)), "esky_image_set_xstate");
	for (int i = 0; i < 12; i++)
		e->auxv[i] = i % 2 ? rnd() : (uint64_t)(3 + i);
	e->auxv[12] = 0;
	e->auxv[13] = 0;
	must(esky_image_set_auxv(w, e->auxv, 14), "esky_image_set_auxv");
	must(esky_image_add_meta(w, "esky_version", "0.1.0"), "esky_image_add_meta");
	must(esky_image_add_meta(w, "note", "two\nlines"), "esky_image_add_meta");
	must(esky_image_add_meta(w, "empty", NULL), "esky_image_add_meta");

	e->fds[0] = (struct esky_img_fd){ .fd = 0, .kind = ESKY_IMG_FD_STDIO, .flags = 02,
					  .file = -1, .stdio_src = 0, .dup_of = -1 };
	e->fds[1] = (struct esky_img_fd){ .fd = 1, .kind = ESKY_IMG_FD_STDIO, .flags = 01,
					  .file = -1, .stdio_src = 1, .dup_of = -1 };
	e->fds[2] = (struct esky_img_fd){ .fd = 2, .kind = ESKY_IMG_FD_STDIO, .flags = 01,
					  .file = -1, .stdio_src = 1, .dup_of = -1 };
	e->fds[3] = (struct esky_img_fd){ .fd = 3, .kind = ESKY_IMG_FD_FILE, .flags = 02002002,
					  .file = 1, .pos = 0x1122334455ULL, .stdio_src = -1,
					  .dup_of = -1 };
	e->fds[4] = (struct esky_img_fd){ .fd = 4, .kind = ESKY_IMG_FD_FILE, .flags = 0,
					  .file = 2, .stdio_src = -1, .dup_of = -1 };
	e->fds[5] = (struct esky_img_fd){ .fd = 9, .kind = ESKY_IMG_FD_DUP, .flags = 02,
					  .file = -1, .stdio_src = -1, .dup_of = 3 };
	for (int i = 0; i < 6; i++)
		must(esky_image_add_fd(w, &e->fds[i]), "esky_image_add_fd");
	/*
	 * Three threads besides the main one: random registers and the rest;
	 * xstate of 2696 bytes, none, and the most the reader takes. Too much
	 * xstate is refused.
	 */
	e->thread_xstate_len[0] = XSTATE_THREAD0;
	e->thread_xstate_len[1] = 0;
	e->thread_xstate_len[2] = XSTATE_THREAD2;
	for (unsigned i = 0; i < 3; i++) {
		struct esky_img_thread *th = &e->threads[i];

		fill_random(th, sizeof(*th));
		th->tid = TID0 + i;
		th->flags = 0;
		snprintf(th->comm, sizeof(th->comm), "worker-%u", i);
		th->xstate_off = rnd(); /* set by the writer */
		th->xstate_len = rnd();
		e->thread_xstate[i] = xmalloc(e->thread_xstate_len[i]);
		fill_random(e->thread_xstate[i], e->thread_xstate_len[i]);
		must(esky_image_add_thread(w, th, e->thread_xstate[i], e->thread_xstate_len[i]),
		     "esky_image_add_thread");
		th->xstate_off = i == 2 ? XSTATE_THREAD0 : 0;
		th->xstate_len = e->thread_xstate_len[i];
	}
	CHECK_U64("a thread with 64 KiB + 1 of xstate",
		  esky_image_add_thread(w, &e->threads[0], e->thread_xstate[2], XSTATE_THREAD2 + 1),
		  (uint64_t)-EINVAL);
	/* A signal queued to THREADS[1], one to the whole process. */
	for (int i = 0; i < 2; i++) {
		fill_random(&e->sigs[i], sizeof(e->sigs[i]));
		e->sigs[i].shared = (uint32_t)i;
		e->sigs[i].thread = i ? 0 : 2;
		must(esky_image_add_siginfo(w, &e->sigs[i]), "esky_image_add_siginfo");
	}

	/* Mappings and their pages, in address order. */
	e->vma_n = 0;
	e->vmas[e->vma_n++] = vma_of(EXE_START, 2, ESKY_IMG_VMA_FILE_PRIVATE, 5, 0, 0, 0);
	must(esky_image_add_vma(w, &e->vmas[0]), "esky_image_add_vma");

	/* Dirty pages of a private file mapping: zero pages are stored too. */
	e->vmas[e->vma_n++] = vma_of(DATA_START, 8, ESKY_IMG_VMA_FILE_PRIVATE, 3, 0, 0, 2 * PAGE);
	must(esky_image_add_vma(w, &e->vmas[1]), "esky_image_add_vma");
	e->mem_file = xmalloc(4 * PAGE);
	for (unsigned i = 0; i < 4; i++) {
		make_page(e->mem_file + i * PAGE, i, 0);
		model_page(e, DATA_START + i * PAGE, e->mem_file + i * PAGE, false, NULL);
	}
	must(esky_image_write_pages(w, DATA_START, e->mem_file, 4, false, NULL, NULL, NULL),
	     "esky_image_write_pages");

	/* The heap, through the writer's buffers: zero pages are holes. */
	e->vmas[e->vma_n++] = vma_of(HEAP_START, HEAP_PAGES, ESKY_IMG_VMA_ANON, 3,
				     ESKY_IMG_VMAF_HEAP, -1, 0);
	e->vmas[2].name = e->str_off[2];
	must(esky_image_add_vma(w, &e->vmas[2]), "esky_image_add_vma");
	e->mem_heap = xmalloc((size_t)HEAP_PAGES * PAGE);
	for (unsigned i = 0; i < HEAP_PAGES; i++) {
		make_page(e->mem_heap + (size_t)i * PAGE, i, 1);
		model_page(e, HEAP_START + (uint64_t)i * PAGE, e->mem_heap + (size_t)i * PAGE, true,
			   NULL);
	}
	for (unsigned done = 0; done < HEAP_PAGES;) {
		unsigned n = HEAP_PAGES - done < ESKY_IMAGE_BUF_SIZE / PAGE ? HEAP_PAGES - done
									    : ESKY_IMAGE_BUF_SIZE / PAGE;
		char *buf = esky_image_writer_buffer(w);
		uint64_t stored = 0;

		if (!buf)
			harness_error("esky_image_writer_buffer failed");
		memcpy(buf, e->mem_heap + (size_t)done * PAGE, (size_t)n * PAGE);
		must(esky_image_write_pages(w, HEAP_START + (uint64_t)done * PAGE, buf, n, true, NULL,
					    &stored, NULL),
		     "esky_image_write_pages (buffer)");
		/* The caller may fill the next buffer at once: scribble on this one. */
		must(esky_image_writer_submit(w), "esky_image_writer_submit");
		done += n;
	}

	/* The stack: mostly zero, from the caller's memory. */
	e->vmas[e->vma_n++] = vma_of(STACK_START, STACK_PAGES, ESKY_IMG_VMA_ANON, 3,
				     ESKY_IMG_VMAF_GROWSDOWN | ESKY_IMG_VMAF_STACK, -1, 0);
	must(esky_image_add_vma(w, &e->vmas[3]), "esky_image_add_vma");
	e->mem_stack = xmalloc(STACK_PAGES * PAGE);
	for (unsigned i = 0; i < STACK_PAGES; i++) {
		make_page(e->mem_stack + i * PAGE, i, 2);
		model_page(e, STACK_START + i * PAGE, e->mem_stack + i * PAGE, true, NULL);
	}
	{
		uint64_t stored = 0, referenced = 0;

		must(esky_image_write_pages(w, STACK_START, e->mem_stack, STACK_PAGES, true, NULL,
					    &stored, &referenced),
		     "esky_image_write_pages");
		CHECK_U64("pages stored from the stack", stored, 2);
		CHECK_U64("pages referenced from the stack", referenced, 0);
	}
	e->vmas[e->vma_n++] = vma_of(VVAR_START, 4, ESKY_IMG_VMA_VVAR, 1, 0, -1, 0);
	e->vmas[e->vma_n++] = vma_of(VVAR_START + 4 * PAGE, 2, ESKY_IMG_VMA_VDSO, 5, 0, -1, 0);
	must(esky_image_add_vma(w, &e->vmas[4]), "esky_image_add_vma");
	must(esky_image_add_vma(w, &e->vmas[5]), "esky_image_add_vma");

	/* Misuse: pages below the last ones, parent pages in a standalone image. */
	CHECK_U64("write_pages going down", esky_image_write_pages(w, EXE_START, e->mem_file, 1,
								   false, NULL, NULL, NULL),
		  (uint64_t)-EINVAL);
	CHECK_U64("parent pages in a standalone image",
		  esky_image_add_parent_pages(w, VVAR_START + 16 * PAGE, 1), (uint64_t)-EINVAL);

	CHECK_U64("page bytes stored", esky_image_writer_page_bytes(w), e->stored * PAGE);
	must(esky_image_writer_commit(w), "esky_image_writer_commit");
	e->t1 = (uint64_t)time(NULL) * 1000000000ULL + 1000000000ULL;
}

/* A run of the model, as the writer must have merged its pages. */
static size_t model_runs(const struct expect *e, struct esky_img_pagerun *runs)
{
	size_t n = 0;
	uint64_t data_off = 0, hash_index = 0;

	for (size_t i = 0; i < e->page_n; i++) {
		const struct xpage *p = &e->pages[i];
		struct esky_img_pagerun *r = n ? &runs[n - 1] : NULL;

		if (r && r->kind == p->kind && r->vaddr + r->npages * PAGE == p->vaddr) {
			r->npages++;
		} else {
			r = &runs[n++];
			memset(r, 0, sizeof(*r));
			r->vaddr = p->vaddr;
			r->npages = 1;
			r->kind = p->kind;
			if (p->kind == ESKY_IMG_PAGES_DATA) {
				r->data_off = data_off;
				r->hash_index = (uint32_t)hash_index;
			}
		}
		if (p->kind == ESKY_IMG_PAGES_DATA) {
			data_off += PAGE;
			hash_index++;
		}
	}
	return n;
}

/* Check the page map, the hashes and the page data of img against the model. */
static void check_pages(struct esky_image *img, const struct expect *e, const char *name)
{
	const struct esky_image_view *v = esky_image_view(img);
	struct esky_img_pagerun *runs = xmalloc(e->page_n * sizeof(*runs));
	size_t n = model_runs(e, runs), h = 0;
	unsigned char *page = xmalloc(PAGE);
	char what[128];

	snprintf(what, sizeof(what), "%s: number of page runs", name);
	CHECK_U64(what, v->run_n, n);
	for (size_t i = 0; i < n && i < v->run_n; i++) {
		const struct esky_img_pagerun *r = &v->runs[i];

		if (memcmp(r, &runs[i], sizeof(*r)))
			FAIL("%s: page run %zu: expected 0x%" PRIx64 " +%" PRIu64 " kind %u data_off "
			     "%" PRIu64 " hash %u, found 0x%" PRIx64 " +%" PRIu64 " kind %u data_off "
			     "%" PRIu64 " hash %u", name, i, runs[i].vaddr, runs[i].npages,
			     runs[i].kind, runs[i].data_off, runs[i].hash_index, r->vaddr, r->npages,
			     r->kind, r->data_off, r->hash_index);
		checks++;
	}
	snprintf(what, sizeof(what), "%s: number of page hashes", name);
	CHECK_U64(what, v->hash_n, e->stored);
	snprintf(what, sizeof(what), "%s: size of PAGES", name);
	CHECK_U64(what, v->pages_size, e->stored * PAGE);
	CHECK(v->pages_off == (e->stored ? ESKY_IMG_HEADER_SIZE : 0),
	      "%s: PAGES: expected at %u, found at %" PRIu64, name,
	      e->stored ? ESKY_IMG_HEADER_SIZE : 0, v->pages_off);
	for (size_t i = 0; i < e->page_n; i++) {
		const struct xpage *p = &e->pages[i];
		int zero;

		if (p->kind != ESKY_IMG_PAGES_DATA)
			continue;
		if (h < v->hash_n)
			CHECK(v->hashes[h] == esky_hash_page(p->data, &zero),
			      "%s: hash of page 0x%" PRIx64 ": expected %016" PRIx64 ", found %016"
			      PRIx64, name, p->vaddr, esky_hash_page(p->data, &zero), v->hashes[h]);
		if (pread(esky_image_fd(img), page, PAGE, (off_t)(v->pages_off + h * PAGE)) != PAGE)
			FAIL("%s: page 0x%" PRIx64 ": cannot read it at %" PRIu64, name, p->vaddr,
			     v->pages_off + h * PAGE);
		else
			CHECK(!memcmp(page, p->data, PAGE), "%s: page 0x%" PRIx64 " (file offset %"
			      PRIu64 "): the bytes differ from what was written", name, p->vaddr,
			      v->pages_off + h * PAGE);
		h++;
	}
	free(page);
	free(runs);
}

/* The section table of the file must describe the file as the format says. */
static void check_layout(const char *path, const struct esky_img_header *hdr)
{
	unsigned char *buf;
	size_t len;
	uint64_t pos = ESKY_IMG_HEADER_SIZE, prev = 0;

	read_whole(path, &buf, &len);
	CHECK_U64("file size in the header", hdr->file_size, len);
	CHECK_U64("header checksum", hdr->checksum,
		  esky_hash64(hdr, offsetof(struct esky_img_header, checksum),
			      ESKY_IMG_CHECKSUM_SEED));
	for (unsigned i = 0; i < hdr->section_n && i < ESKY_IMG_MAX_SECTIONS; i++) {
		const struct esky_img_section *s = &hdr->sections[i];
		const char *name = esky_image_section_name(s->type);

		CHECK(s->offset >= prev, "%s: sections are not in file order", name);
		prev = s->offset;
		CHECK(s->flags == 0, "%s: expected flags 0, found %u", name, s->flags);
		CHECK(s->offset % 8 == 0, "%s: expected an 8-aligned offset, found %" PRIu64, name,
		      s->offset);
		CHECK(s->offset >= pos && s->offset - pos < 8,
		      "%s: expected at %" PRIu64 " (+ padding below 8), found at %" PRIu64, name, pos,
		      s->offset);
		for (uint64_t p = pos; p < s->offset && p < len; p++)
			CHECK(buf[p] == 0, "padding byte at %" PRIu64 ": expected 0, found %u", p,
			      buf[p]);
		if (s->offset + s->size > len) {
			FAIL("%s: section beyond the end of the file", name);
			continue;
		}
		if (s->type == ESKY_SEC_PAGES)
			CHECK(s->checksum == 0 && s->offset == ESKY_IMG_HEADER_SIZE,
			      "PAGES: expected at 4096 with checksum 0, found at %" PRIu64
			      " with %016" PRIx64, s->offset, s->checksum);
		else
			CHECK(s->checksum == esky_hash64(buf + s->offset, s->size,
							 ESKY_IMG_CHECKSUM_SEED),
			      "%s: checksum in the table does not match its bytes", name);
		pos = s->offset + s->size;
	}
	CHECK_U64("end of the last section", pos, len);
	for (unsigned i = hdr->section_n; i < ESKY_IMG_MAX_SECTIONS; i++)
		CHECK(hdr->sections[i].type == 0 && hdr->sections[i].offset == 0,
		      "unused section slot %u is not zero", i);
	free(buf);
}

/* The threads of img, their xstate and the pending signals against e. */
static void check_threads(struct esky_image *img, const struct expect *e, const char *name)
{
	const struct esky_image_view *v = esky_image_view(img);
	char what[128];

	snprintf(what, sizeof(what), "%s: number of threads", name);
	CHECK_U64(what, v->thread_n, 3);
	snprintf(what, sizeof(what), "%s: size of THREAD_XSTATE", name);
	CHECK_U64(what, v->thread_xstate_len, THREAD_XSTATE_SIZE);
	for (size_t i = 0; i < 3 && v->thread_n == 3; i++) {
		const struct esky_img_thread *th = &v->threads[i];

		CHECK(!memcmp(th, &e->threads[i], sizeof(*th)),
		      "%s: thread %zu: expected tid %u xstate %" PRIu64 "+%" PRIu64 ", found tid %u "
		      "xstate %" PRIu64 "+%" PRIu64 " (or another field differs)", name, i,
		      e->threads[i].tid, e->threads[i].xstate_off, e->threads[i].xstate_len,
		      th->tid, th->xstate_off, th->xstate_len);
		if (th->xstate_len == e->thread_xstate_len[i] &&
		    th->xstate_off + th->xstate_len <= v->thread_xstate_len)
			CHECK(!memcmp(v->thread_xstate + th->xstate_off, e->thread_xstate[i],
				      e->thread_xstate_len[i]),
			      "%s: xstate of thread %zu differs from what was written", name, i);
	}
	snprintf(what, sizeof(what), "%s: number of pending signals", name);
	CHECK_U64(what, v->sig_n, 2);
	if (v->sig_n == 2)
		CHECK(!memcmp(v->sigs, e->sigs, sizeof(e->sigs)),
		      "%s: pending signals: expected threads %u and %u, found %u and %u (or another "
		      "field differs)", name, e->sigs[0].thread, e->sigs[1].thread, v->sigs[0].thread,
		      v->sigs[1].thread);
}

/* What esky info prints of the threads: a line, and one per thread when verbose. */
static void check_describe(struct esky_image *img, const struct expect *e)
{
	char *text = NULL, exp[256];
	size_t len = 0;

	for (int verbose = 0; verbose < 2; verbose++) {
		FILE *f = open_memstream(&text, &len);

		if (!f)
			harness_error("open_memstream: %s", strerror(errno));
		esky_describe_image(img, verbose, f);
		fclose(f);
		CHECK(strstr(text, "\nregisters   rip 0x") &&
		      strstr(text, "\nthreads     4 (tids 4711 4712 4713 4714)\n"),
		      "esky info%s: expected a line \"threads     4 (tids 4711 4712 4713 4714)\" after "
		      "the registers, found:\n%s", verbose ? " -v" : "", text);
		for (unsigned i = 0; i < 3; i++) {
			const struct esky_img_thread *th = &e->threads[i];

			snprintf(exp, sizeof(exp), "\n  tid %u    worker-%u         rip 0x%" PRIx64
				 " rsp 0x%" PRIx64 " fs_base 0x%" PRIx64 ", blocked 0x%" PRIx64
				 ", %u pending\n", th->tid, i, th->regs[16], th->regs[19], th->regs[21],
				 th->sig_blocked, i == 1 ? 1 : 0);
			CHECK(!strstr(text, exp) == !verbose, "esky info%s: expected %s line \"%s\", "
			      "found:\n%s", verbose ? " -v" : "", verbose ? "the" : "no", exp + 1, text);
		}
		free(text);
		text = NULL;
	}
}

static void check_full(struct esky_image *img, const struct expect *e, const char *path)
{
	const struct esky_image_view *v = esky_image_view(img);
	const struct esky_img_header *h = v->hdr;
	static const uint8_t zero16[16];
	struct stat st;
	char *m;

	CHECK_STR("view path", v->path, path);
	CHECK_MEM("magic", h->magic, ESKY_IMG_MAGIC, 8);
	CHECK_U64("version", h->version, ESKY_IMG_VERSION);
	CHECK_U64("header size", h->header_size, ESKY_IMG_HEADER_SIZE);
	CHECK_U64("view file size", v->file_size, h->file_size);
	CHECK(h->created_ns >= e->t0 && h->created_ns <= e->t1,
	      "created_ns: expected between %" PRIu64 " and %" PRIu64 ", found %" PRIu64, e->t0,
	      e->t1, h->created_ns);
	CHECK_MEM("image id", h->id, e->id, 16);
	CHECK(memcmp(h->id, zero16, 16), "image id: expected random bytes, found zeros");
	CHECK_MEM("parent id of a standalone image", h->parent_id, zero16, 16);
	CHECK_U64("header flags", h->flags, 0);
	CHECK_U64("parent hint", h->parent_hint, 0);
	CHECK_U64("reserved0", h->reserved0, 0);
	for (int i = 0; i < 4; i++)
		CHECK_U64("reserved", h->reserved[i], 0);
	/* PAGES and the 13 metadata sections, none of them empty here */
	CHECK_U64("number of sections", h->section_n, 14);
	check_layout(path, h);
	if (stat(path, &st) == 0) {
		CHECK_U64("file size", st.st_size, h->file_size);
		CHECK_U64("file mode", st.st_mode & 07777, 0600);
	} else {
		FAIL("stat %s: expected success, found %s", path, strerror(errno));
	}

	CHECK_MEM("core", v->core, &e->core, sizeof(e->core));
	CHECK_U64("xstate length", v->xstate_len, sizeof(e->xstate));
	if (v->xstate_len == sizeof(e->xstate))
		CHECK_MEM("xstate", v->xstate, e->xstate, sizeof(e->xstate));
	for (int i = 0; i < 4; i++)
		CHECK_STR("string", esky_image_str(img, e->str_off[i]), e->str[i]);
	CHECK_STR("string at 0", esky_image_str(img, 0), "");
	CHECK_STR("string beyond the end", esky_image_str(img, (uint32_t)v->strings_len + 10), "");
	CHECK_STR("cwd", esky_image_str(img, v->core->cwd), "/home/user/work");
	CHECK_STR("cmdline", esky_image_str(img, v->core->cmdline), "roundtrip --flag arg");
	CHECK_U64("number of mappings", v->vma_n, e->vma_n);
	if (v->vma_n == e->vma_n)
		for (size_t i = 0; i < e->vma_n; i++)
			CHECK(!memcmp(&v->vmas[i], &e->vmas[i], sizeof(e->vmas[i])),
			      "mapping %zu: expected 0x%" PRIx64 "-0x%" PRIx64 " kind %u, found 0x%"
			      PRIx64 "-0x%" PRIx64 " kind %u (or another field differs)", i,
			      e->vmas[i].start, e->vmas[i].end, e->vmas[i].kind, v->vmas[i].start,
			      v->vmas[i].end, v->vmas[i].kind);
	CHECK_STR("mapping name", esky_image_str(img, v->vmas[2].name), "[anon:named region]");
	CHECK_U64("number of files", v->file_n, 3);
	if (v->file_n == 3)
		for (size_t i = 0; i < 3; i++)
			CHECK(!memcmp(&v->files[i], &e->files[i], sizeof(e->files[i])),
			      "file record %zu differs from what was written", i);
	CHECK_STR("file path", esky_image_str(img, v->files[2].path), "/dev/null");
	CHECK_U64("number of fds", v->fd_n, 6);
	if (v->fd_n == 6)
		for (size_t i = 0; i < 6; i++)
			CHECK(!memcmp(&v->fds[i], &e->fds[i], sizeof(e->fds[i])),
			      "fd record %zu (fd %d) differs from what was written", i, e->fds[i].fd);
	check_threads(img, e, "standalone image");
	CHECK_U64("auxv words", v->auxv_n, 14);
	if (v->auxv_n == 14)
		CHECK_MEM("auxv", v->auxv, e->auxv, sizeof(e->auxv));
	CHECK_U64("meta length", v->meta_len, strlen("esky_version=0.1.0\nnote=two lines\nempty=\n"));
	m = esky_image_meta(img, "note");
	CHECK_STR("meta note (newline made a space)", m, "two lines");
	free(m);
	m = esky_image_meta(img, "esky_version");
	CHECK_STR("meta esky_version", m, "0.1.0");
	free(m);
	m = esky_image_meta(img, "empty");
	CHECK_STR("meta empty", m, "");
	free(m);
	m = esky_image_meta(img, "esky");
	CHECK(!m, "meta of a key prefix: expected NULL, found \"%s\"", m);
	free(m);
	m = esky_image_meta(img, "absent");
	CHECK(!m, "meta of an absent key: expected NULL, found \"%s\"", m);
	free(m);
	check_pages(img, e, "standalone image");
	esky_error_clear();
	CHECK_U64("esky_image_verify_pages", esky_image_verify_pages(img), 0);
}

/* ---- the incremental child ---- */

/* The parent's hash of the page at vaddr, from its page map. */
static bool parent_hash(void *ctx, uint64_t vaddr, uint64_t *hash)
{
	const struct esky_image_view *v = ctx;

	for (size_t i = 0; i < v->run_n; i++) {
		const struct esky_img_pagerun *r = &v->runs[i];

		if (r->kind != ESKY_IMG_PAGES_DATA || vaddr < r->vaddr ||
		    vaddr >= r->vaddr + r->npages * PAGE)
			continue;
		*hash = v->hashes[r->hash_index + (vaddr - r->vaddr) / PAGE];
		return true;
	}
	return false;
}

static void write_child(const char *path, const struct esky_image *parent, struct expect *c,
			const struct expect *p)
{
	const struct esky_image_view *pv = esky_image_view(parent);
	struct esky_page_parent pp = { .hash = parent_hash, .ctx = (void *)pv };
	struct esky_image_writer *w;
	uint64_t stored = 0, referenced = 0;

	memset(c, 0, sizeof(*c));
	esky_error_clear();
	must(esky_image_writer_open(path, &w), "esky_image_writer_open (child)");
	memcpy(c->id, esky_image_writer_id(w), 16);
	CHECK(memcmp(c->id, p->id, 16), "the child has the id of its parent");
	must(esky_image_set_parent(w, p->id, "full.img"), "esky_image_set_parent");
	/* The child's strings and files are its own: offsets differ from the parent's. */
	for (uint32_t i = 0; i < 3; i++) {
		struct esky_img_file f = p->files[i];
		int err = 0;
		uint32_t idx;

		f.path = esky_image_add_string(w, i == 2 ? "/dev/null" : p->str[i ? 0 : 3], &err);
		must(err, "esky_image_add_string");
		must(esky_image_add_file(w, &f, &idx), "esky_image_add_file");
	}
	c->core = p->core;
	c->core.cwd = 0;
	c->core.cmdline = 0;
	must(esky_image_set_core(w, &c->core), "esky_image_set_core");
	for (size_t i = 0; i < 4; i++)
		must(esky_image_add_vma(w, &p->vmas[i]), "esky_image_add_vma");
	/* The file mapping's pages did not change: references, all 4. */
	must(esky_image_add_parent_pages(w, DATA_START, 4), "esky_image_add_parent_pages");
	for (unsigned i = 0; i < 4; i++)
		xpage_add(c, DATA_START + i * PAGE, ESKY_IMG_PAGES_PARENT, NULL);
	/*
	 * The heap: some pages changed, some became zero, some zero pages got
	 * data, the rest is the same.
	 */
	c->mem_heap = xmalloc((size_t)HEAP_PAGES * PAGE);
	memcpy(c->mem_heap, p->mem_heap, (size_t)HEAP_PAGES * PAGE);
	for (unsigned i = 0; i < HEAP_PAGES; i += 7) {
		unsigned char *pg = c->mem_heap + (size_t)i * PAGE;

		if (i % 5 == 0)
			memset(pg, 0, PAGE);
		else
			pg[i % PAGE] ^= 0x5a;
	}
	for (unsigned i = 0; i < HEAP_PAGES; i++)
		model_page(c, HEAP_START + (uint64_t)i * PAGE, c->mem_heap + (size_t)i * PAGE, true,
			   &pp);
	must(esky_image_write_pages(w, HEAP_START, c->mem_heap, HEAP_PAGES, true, &pp, &stored,
				    &referenced),
	     "esky_image_write_pages (child)");
	CHECK_U64("pages stored by the child", stored, c->stored);
	CHECK_U64("pages referenced by the child", referenced, c->referenced);
	CHECK(c->referenced > 500 && c->stored > 100,
	      "the child test is weak: %" PRIu64 " references, %" PRIu64 " stored", c->referenced,
	      c->stored);
	must(esky_image_writer_commit(w), "esky_image_writer_commit (child)");
}

static void test_round_trip(void)
{
	char *full = path_of("full.img"), *child = path_of("child.img");
	char *moved = path_of("moved.img"), *other = path_of("other.img");
	struct expect e, c;
	struct esky_image *img, **chain;
	size_t n;
	int fd;

	memset(&e, 0, sizeof(e));
	write_full(full, &e);
	CHECK(count_temporaries(true) == 0, "temporary files left after commit");
	esky_error_clear();
	must(esky_image_open(full, &img), "esky_image_open of the image just written");
	check_full(img, &e, full);
	/* Exported alone: the same records; threads and their signals come along. */
	{
		char *flat = path_of("flat.img");
		struct esky_image *fi;

		esky_error_clear();
		must(esky_image_flatten(&img, 1, flat), "esky_image_flatten");
		must(esky_image_open(flat, &fi), "esky_image_open of the exported image");
		CHECK_MEM("exported core", esky_image_view(fi)->core, &e.core, sizeof(e.core));
		check_threads(fi, &e, "exported image");
		check_pages(fi, &e, "exported image");
		esky_image_close(fi);
		unlink(flat);
		free(flat);
	}

	check_describe(img, &e);

	write_child(child, img, &c, &e);
	esky_image_close(img);
	esky_error_clear();
	if (esky_image_open_chain(child, &chain, &n)) {
		FAIL("open_chain %s: expected success, found \"%s\"", child,
		     esky_last_error() ? esky_last_error() : "no message");
	} else {
		CHECK_U64("chain length", n, 2);
		if (n == 2) {
			const struct esky_image_view *cv = esky_image_view(chain[0]);

			CHECK_STR("the child's path", cv->path, child);
			CHECK_STR("the parent's path", esky_image_view(chain[1])->path, full);
			CHECK_U64("child flags", cv->hdr->flags, ESKY_IMGF_INCREMENTAL);
			CHECK_MEM("child's parent id", cv->hdr->parent_id, e.id, 16);
			CHECK_MEM("child's id", cv->hdr->id, c.id, 16);
			CHECK_STR("parent hint", esky_image_str(chain[0], cv->hdr->parent_hint),
				  "full.img");
			check_pages(chain[0], &c, "incremental image");
			check_pages(chain[1], &e, "parent in the chain");
			esky_error_clear();
			CHECK_U64("verify_pages of the child", esky_image_verify_pages(chain[0]), 0);
		}
		esky_image_close_chain(chain, n);
	}

	/* The parent vanished; then another image took its name. */
	if (rename(full, moved))
		harness_error("rename: %s", strerror(errno));
	esky_error_clear();
	CHECK(esky_image_open_chain(child, &chain, &n) == -ENOENT, "chain without its parent: "
	      "expected -ENOENT");
	{
		char exp[8400];

		snprintf(exp, sizeof(exp), "%s: its parent checkpoint %s is missing", child, full);
		CHECK_STR("message of a missing parent", esky_last_error(), exp);
	}
	{
		struct expect o;
		char exp[8400];

		memset(&o, 0, sizeof(o));
		write_full(other, &o);
		if (rename(other, full))
			harness_error("rename: %s", strerror(errno));
		esky_error_clear();
		CHECK(esky_image_open_chain(child, &chain, &n) == -ESTALE,
		      "chain with another parent: expected -ESTALE");
		snprintf(exp, sizeof(exp), "%s: is not the parent %s was taken from (ids differ)",
			 full, child);
		CHECK_STR("message of a wrong parent", esky_last_error(), exp);
		free(o.mem_file);
		free(o.mem_heap);
		free(o.mem_stack);
		free(o.pages);
		for (int i = 0; i < 3; i++)
			free(o.thread_xstate[i]);
	}
	if (rename(moved, full))
		harness_error("rename: %s", strerror(errno));

	/* A parent named by a path: refused before it is opened (an image must not make esky open any file). */
	{
		static const char *const hints[] = { "../full.img", "/etc/passwd", "..", "sub/full.img" };

		for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
			char *bad = path_of("badhint.img"), exp[8400];
			struct esky_image_writer *w;
			struct esky_img_core core = e.core;

			esky_error_clear();
			must(esky_image_writer_open(bad, &w), "esky_image_writer_open (bad hint)");
			must(esky_image_set_parent(w, e.id, hints[i]), "esky_image_set_parent");
			core.cwd = 0;
			core.cmdline = 0;
			core.exe_file = UINT32_MAX; /* no file: a core alone */
			must(esky_image_set_core(w, &core), "esky_image_set_core");
			must(esky_image_writer_commit(w), "esky_image_writer_commit (bad hint)");
			esky_error_clear();
			CHECK(esky_image_open_chain(bad, &chain, &n) == -EBADMSG,
			      "a parent named %s: expected -EBADMSG", hints[i]);
			snprintf(exp, sizeof(exp), "%s: damaged: its parent is named by a path (%s), not a "
				 "file beside it", bad, hints[i]);
			CHECK_STR("message of a parent named by a path", esky_last_error(), exp);
			unlink(bad);
			free(bad);
		}
	}

	/* Opened from an fd, under another name; the image keeps its own dup. */
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		harness_error("%s: %s", full, strerror(errno));
	esky_error_clear();
	if (esky_image_open_fd(fd, "by-fd", &img)) {
		FAIL("open_fd: expected success, found \"%s\"", esky_last_error());
	} else {
		close(fd);
		fd = -1;
		CHECK_STR("name of an image opened from an fd", esky_image_view(img)->path, "by-fd");
		CHECK_U64("verify_pages after the caller closed its fd",
			  esky_image_verify_pages(img), 0);
		esky_image_close(img);
	}
	if (fd >= 0)
		close(fd);

	free(e.mem_file);
	free(e.mem_heap);
	free(e.mem_stack);
	free(e.pages);
	for (int i = 0; i < 3; i++)
		free(e.thread_xstate[i]);
	free(c.mem_heap);
	free(c.pages);
	free(full);
	free(child);
	free(moved);
	free(other);
}

/* ---- the writer's files ---- */

static void test_writer_files(void)
{
	char *path = path_of("keep.img"), *nodir = path_of("no/such/dir/x.img");
	struct esky_image_writer *w;
	struct esky_img_core core = { .arch = ESKY_IMG_ARCH_X86_64, .exe_file = UINT32_MAX };
	unsigned char *before, *after;
	size_t blen, alen;
	char exp[8400];
	int ret;

	write_whole(path, "precious", 8);
	/* abort: the existing file is untouched, no temporary is left */
	esky_error_clear();
	must(esky_image_writer_open(path, &w), "esky_image_writer_open");
	esky_image_set_core(w, &core);
	esky_image_add_vma(w, &(struct esky_img_vma){ .start = 0x1000, .end = 0x2000,
						      .kind = ESKY_IMG_VMA_ANON, .file = -1 });
	esky_image_write_pages(w, 0x1000, (char[4096]){ 1 }, 1, true, NULL, NULL, NULL);
	CHECK(count_temporaries(false) == 1, "while writing: expected one temporary file");
	esky_image_writer_abort(w);
	CHECK(count_temporaries(true) == 0, "temporary file left after abort");
	read_whole(path, &after, &alen);
	CHECK(alen == 8 && !memcmp(after, "precious", 8), "abort changed the existing file");
	free(after);

	/* commit without a core: refused, nothing written */
	esky_error_clear();
	must(esky_image_writer_open(path, &w), "esky_image_writer_open");
	CHECK_U64("commit without a core", esky_image_writer_commit(w), (uint64_t)-EINVAL);
	CHECK(count_temporaries(true) == 0, "temporary file left after a refused commit");
	read_whole(path, &after, &alen);
	CHECK(alen == 8 && !memcmp(after, "precious", 8), "a refused commit changed the file");
	free(after);

	/* commit replaces the file whole */
	read_whole(path, &before, &blen);
	must(esky_image_writer_open(path, &w), "esky_image_writer_open");
	esky_image_set_core(w, &core);
	must(esky_image_writer_commit(w), "esky_image_writer_commit of a minimal image");
	read_whole(path, &after, &alen);
	CHECK(alen > ESKY_IMG_HEADER_SIZE && !memcmp(after, ESKY_IMG_MAGIC, 8),
	      "commit: expected an image in place of the old file");
	free(before);
	free(after);
	{
		struct esky_image *img;

		esky_error_clear();
		ret = esky_image_open(path, &img);
		CHECK(!ret, "minimal image: expected to open, found \"%s\"", esky_last_error());
		if (!ret) {
			CHECK_U64("minimal image: sections", esky_image_view(img)->hdr->section_n, 3);
			CHECK_U64("minimal image: mappings", esky_image_view(img)->vma_n, 0);
			CHECK_U64("minimal image: verify", esky_image_verify_pages(img), 0);
			esky_image_close(img);
		}
	}

	/* a directory that does not exist */
	esky_error_clear();
	ret = esky_image_writer_open(nodir, &w);
	CHECK(ret == -ENOENT, "writer in a missing directory: expected -ENOENT, found %d", ret);
	snprintf(exp, sizeof(exp), "cannot write %s: No such file or directory", nodir);
	CHECK_STR("message of a writer in a missing directory", esky_last_error(), exp);
	if (!ret)
		esky_image_writer_abort(w);
	free(path);
	free(nodir);
}

/* ---- damage ---- */

/* Recompute every section checksum and the header's (damage that passes the checksums). */
static void reseal(unsigned char *buf, size_t len)
{
	struct esky_img_header *h = (struct esky_img_header *)buf;

	for (unsigned i = 0; i < h->section_n && i < ESKY_IMG_MAX_SECTIONS; i++) {
		struct esky_img_section *s = &h->sections[i];

		if (s->type != ESKY_SEC_PAGES && s->offset <= len && s->size <= len - s->offset)
			s->checksum = esky_hash64(buf + s->offset, s->size, ESKY_IMG_CHECKSUM_SEED);
	}
	h->checksum = esky_hash64(h, offsetof(struct esky_img_header, checksum),
				  ESKY_IMG_CHECKSUM_SEED);
}

static struct esky_img_section *section(unsigned char *buf, uint32_t type, unsigned *index)
{
	struct esky_img_header *h = (struct esky_img_header *)buf;

	for (unsigned i = 0; i < h->section_n; i++)
		if (h->sections[i].type == type) {
			if (index)
				*index = i;
			return &h->sections[i];
		}
	harness_error("no %s section in the image", esky_image_section_name(type));
}

static void flip_at(int fd, uint64_t off, unsigned char mask)
{
	unsigned char c;

	if (pread(fd, &c, 1, (off_t)off) != 1)
		harness_error("pread at %" PRIu64 ": %s", off, strerror(errno));
	c ^= mask;
	if (pwrite(fd, &c, 1, (off_t)off) != 1)
		harness_error("pwrite at %" PRIu64 ": %s", off, strerror(errno));
}

static void test_damage(void)
{
	char *full = path_of("full.img"), *d = path_of("damaged.img");
	unsigned char *orig, *buf;
	size_t len;
	const struct esky_img_header *oh;
	uint64_t pages_off = 0, pages_size = 0;
	int fd;

	read_whole(full, &orig, &len);
	oh = (const struct esky_img_header *)orig;
	for (unsigned i = 0; i < oh->section_n; i++)
		if (oh->sections[i].type == ESKY_SEC_PAGES) {
			pages_off = oh->sections[i].offset;
			pages_size = oh->sections[i].size;
		}
	if (!pages_size)
		harness_error("the image has no page data");
	write_whole(d, orig, len);
	fd = open(d, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		harness_error("%s: %s", d, strerror(errno));

	/* Every byte of the header (every 31st with --quick), flipped, then put back. */
	for (uint64_t off = 0; off < ESKY_IMG_HEADER_SIZE; off += off < 16 || !quick ? 1 : 31) {
		flip_at(fd, off, 0xff);
		if (off < 8) {
			expect_open_error(d, "%s: not an esky checkpoint", d);
		} else if (off < 12) {
			uint32_t v = ESKY_IMG_VERSION;

			((unsigned char *)&v)[off - 8] ^= 0xff;
			expect_open_error(d, "%s: checkpoint format version %u; this esky reads %u to %u",
					  d, v, ESKY_IMG_VERSION_MIN, ESKY_IMG_VERSION);
		} else {
			expect_open_error(d, "%s: damaged: header checksum mismatch", d);
		}
		flip_at(fd, off, 0xff);
	}
	/* One bit, in the middle of the section table and in the checksum. */
	flip_at(fd, 200, 0x10);
	expect_open_error(d, "%s: damaged: header checksum mismatch", d);
	flip_at(fd, 200, 0x10);
	flip_at(fd, 4095, 0x80);
	expect_open_error(d, "%s: damaged: header checksum mismatch", d);
	flip_at(fd, 4095, 0x80);

	/* Bytes of each metadata section: first, middle, last; and the padding. */
	{
		uint64_t pos = ESKY_IMG_HEADER_SIZE;
		unsigned pad_bytes = 0;

		for (unsigned i = 0; i < oh->section_n; i++) {
			const struct esky_img_section *s = &oh->sections[i];
			const char *name = esky_image_section_name(s->type);
			uint64_t at[3] = { 0, s->size / 2, s->size - 1 };

			for (uint64_t p = pos; p < s->offset; p++) {
				flip_at(fd, p, 0x01);
				expect_open_error(d, "%s: damaged: non-zero padding at %" PRIu64, d,
						  pos);
				flip_at(fd, p, 0x01);
				pad_bytes++;
			}
			pos = s->offset + s->size;
			if (s->type == ESKY_SEC_PAGES)
				continue;
			for (int k = 0; k < 3; k++) {
				flip_at(fd, s->offset + at[k], 0x04);
				expect_open_error(d, "%s: damaged: %s checksum mismatch", d, name);
				flip_at(fd, s->offset + at[k], 0x04);
			}
		}
		if (!pad_bytes)
			harness_error("the image has no padding between sections to damage");
	}

	/* Page data: open does not read it; verify_pages names the page. */
	{
		uint64_t at[3] = { 0, (pages_size / PAGE / 2) * PAGE + 123, pages_size - 1 };
		const struct esky_img_section *ps = section(orig, ESKY_SEC_PAGEMAP, NULL);
		const struct esky_img_pagerun *runs = (const void *)(orig + ps->offset);
		size_t run_n = ps->size / sizeof(*runs);

		for (int k = 0; k < 3; k++) {
			struct esky_image *img;
			uint64_t vaddr = 0, page_at = at[k] / PAGE * PAGE;
			char exp[8400];
			int ret;

			for (size_t r = 0; r < run_n; r++)
				if (runs[r].kind == ESKY_IMG_PAGES_DATA && page_at >= runs[r].data_off &&
				    page_at < runs[r].data_off + runs[r].npages * PAGE)
					vaddr = runs[r].vaddr + (page_at - runs[r].data_off);
			flip_at(fd, pages_off + at[k], 0x20);
			esky_error_clear();
			ret = esky_image_open(d, &img);
			CHECK(!ret, "open with damaged page data at %" PRIu64 ": expected success "
			      "(pages are checked later), found \"%s\"", at[k], esky_last_error());
			if (!ret) {
				esky_error_clear();
				ret = esky_image_verify_pages(img);
				CHECK(ret == -EBADMSG, "verify_pages of damaged page data at %" PRIu64
				      ": expected -EBADMSG, found %d", at[k], ret);
				snprintf(exp, sizeof(exp), "%s: damaged: page data for 0x%" PRIx64
					 " (file offset %" PRIu64 ") checksum mismatch", d, vaddr,
					 pages_off + page_at);
				CHECK_STR("message of damaged page data", esky_last_error(), exp);
				esky_image_close(img);
			}
			flip_at(fd, pages_off + at[k], 0x20);
		}
	}
	close(fd);

	/* Truncation. */
	{
		uint64_t meta_mid = 0;
		const struct esky_img_section *s = section(orig, ESKY_SEC_FILES, NULL);
		uint64_t cuts[] = { 0, 1, 7, 8, 9, 100, ESKY_IMG_HEADER_SIZE - 1,
				    ESKY_IMG_HEADER_SIZE, ESKY_IMG_HEADER_SIZE + 1,
				    pages_off + pages_size / 2, pages_off + pages_size, 0, len - 8,
				    len - 1 };

		meta_mid = s->offset + s->size / 2;
		cuts[11] = meta_mid;
		for (size_t i = 0; i < ESKY_ARRAY_SIZE(cuts); i++) {
			uint64_t n = cuts[i];

			write_whole(d, orig, n);
			if (n < 8)
				expect_open_error(d, "%s: not an esky checkpoint (%" PRIu64 " bytes)", d,
						  n);
			else if (n < ESKY_IMG_HEADER_SIZE)
				expect_open_error(d, "%s: truncated: %" PRIu64 " bytes, less than its "
						  "header", d, n);
			else
				expect_open_error(d, "%s: truncated: %" PRIu64 " bytes, the header says "
						  "%zu", d, n, len);
		}
	}

	/* Trailing junk: the file is longer than its last section. */
	{
		static const size_t junk[] = { 1, 8, 4096 };

		buf = xmalloc(len + 4096);
		memcpy(buf, orig, len);
		for (size_t i = 0; i < ESKY_ARRAY_SIZE(junk); i++) {
			memset(buf + len, 'j', junk[i]);
			write_whole(d, buf, len + junk[i]);
			expect_open_error(d, "%s: damaged: %zu stray bytes at the end", d, junk[i]);
		}
		/* ... even when the header's file size says so: sections must reach the end */
		memset(buf + len, 0, 8);
		((struct esky_img_header *)buf)->file_size = len + 8;
		reseal(buf, len + 8);
		write_whole(d, buf, len + 8);
		expect_open_error(d, "%s: damaged: 8 stray bytes at the end", d);
		free(buf);
	}

	/* Wrong magic, a text-mode transfer, a future version. */
	buf = xmalloc(len);
	memcpy(buf, orig, len);
	memcpy(buf, "\x89" "ESKYIMX", 8);
	reseal(buf, len);
	write_whole(d, buf, len);
	expect_open_error(d, "%s: not an esky checkpoint", d);
	memcpy(buf, "\x09" "ESKYIMG", 8);
	write_whole(d, buf, len);
	expect_open_error(d, "%s: not an esky checkpoint", d);
	memcpy(buf, orig, len);
	((struct esky_img_header *)buf)->version = ESKY_IMG_VERSION + 1;
	reseal(buf, len);
	write_whole(d, buf, len);
	expect_open_error(d, "%s: checkpoint format version %u; this esky reads 1 to %u", d,
			  ESKY_IMG_VERSION + 1, ESKY_IMG_VERSION);
	/* A version-1 image knows no section above META (12). */
	memcpy(buf, orig, len);
	((struct esky_img_header *)buf)->version = 1;
	((struct esky_img_header *)buf)->sections[0].type = ESKY_SEC_FDOBJS;
	reseal(buf, len);
	write_whole(d, buf, len);
	expect_open_error(d, "%s: damaged: section 0 has type 13", d);
	free(buf);

	/* Not images at all. */
	write_whole(d, "hello, world\nthis is text\n", 26);
	expect_open_error(d, "%s: not an esky checkpoint", d);
	write_whole(d, "hi\n", 3);
	expect_open_error(d, "%s: not an esky checkpoint (3 bytes)", d);
	write_whole(d, "", 0);
	expect_open_error(d, "%s: not an esky checkpoint (0 bytes)", d);
	expect_open_error(dir, "%s: not a regular file", dir);
	unlink(d);
	if (mkfifo(d, 0600) < 0)
		harness_error("mkfifo %s: %s", d, strerror(errno));
	expect_open_error(d, "%s: not a regular file", d);
	unlink(d);
	expect_open_error(d, "%s: No such file or directory", d);

	free(orig);
	free(full);
	free(d);
}

/*
 * Damage with valid checksums: each case edits a copy of the image,
 * recomputes the checksums, and expects the reader's message for that
 * contradiction.
 */
struct edit {
	const char *what;
	void (*fn)(unsigned char *buf, size_t *len);
	const char *expected; /* after "<file>: "; NULL: computed */
};

#define SEC(buf, type) section(buf, type, NULL)
#define SEC_DATA(buf, type, T) ((T *)((buf) + SEC(buf, type)->offset))

static void ed_cwd(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_CORE, struct esky_img_core)->cwd =
		(uint32_t)SEC(b, ESKY_SEC_STRINGS)->size;
}

static void ed_arch(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_CORE, struct esky_img_core)->arch = 3;
}

static void ed_exe(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_CORE, struct esky_img_core)->exe_file = 3;
}

static void ed_strings(unsigned char *b, size_t *len)
{
	struct esky_img_section *s = SEC(b, ESKY_SEC_STRINGS);

	b[s->offset + s->size - 1] = 'x';
}

static void ed_vma_order(unsigned char *b, size_t *len)
{
	struct esky_img_vma *m = SEC_DATA(b, ESKY_SEC_VMAS, struct esky_img_vma);

	m[1].start = m[0].start;
}

static void ed_vma_file(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_VMAS, struct esky_img_vma)[0].file = -1;
}

static void ed_vma_kind(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_VMAS, struct esky_img_vma)[3].kind = 8;
}

static void ed_file(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_FILES, struct esky_img_file)[2].build_id_len = 33;
}

static void ed_fd_file(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_FDS, struct esky_img_fd)[3].file = 3;
}

static void ed_fd_stdio_file(unsigned char *b, size_t *len)
{
	/* restore.c names fds[i].file in messages whenever it is >= 0, of any kind */
	SEC_DATA(b, ESKY_SEC_FDS, struct esky_img_fd)[0].file = 3;
}

static void ed_fd_order(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_FDS, struct esky_img_fd)[4].fd = 3;
}

static void ed_fd_dup(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_FDS, struct esky_img_fd)[5].dup_of = 9;
}

static void ed_fd_dup_missing(unsigned char *b, size_t *len)
{
	(void)len;
	SEC_DATA(b, ESKY_SEC_FDS, struct esky_img_fd)[5].dup_of = 5; /* no fd 5 is recorded */
}

static void ed_run_outside(unsigned char *b, size_t *len)
{
	struct esky_img_pagerun *r = SEC_DATA(b, ESKY_SEC_PAGEMAP, struct esky_img_pagerun);

	r[0].vaddr = EXE_START - 16 * PAGE;
}

static void ed_run_place(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_PAGEMAP, struct esky_img_pagerun)[1].data_off += PAGE;
}

static void ed_run_parent(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_PAGEMAP, struct esky_img_pagerun)[0].kind = ESKY_IMG_PAGES_PARENT;
}

static void ed_run_kind(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_PAGEMAP, struct esky_img_pagerun)[0].kind = 9;
}

static void ed_run_huge(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_PAGEMAP, struct esky_img_pagerun)[2].npages = UINT64_MAX / 2;
}

static void ed_hashes(unsigned char *b, size_t *len)
{
	/* one hash fewer: PAGEHASH shrinks, META moves down 8 bytes */
	struct esky_img_section *h = SEC(b, ESKY_SEC_PAGEHASH);
	struct esky_img_header *hdr = (struct esky_img_header *)b;
	uint64_t end = h->offset + h->size;

	memmove(b + end - 8, b + end, *len - end);
	*len -= 8;
	h->size -= 8;
	for (unsigned i = 0; i < hdr->section_n; i++)
		if (hdr->sections[i].offset >= end)
			hdr->sections[i].offset -= 8;
	hdr->file_size = *len;
}

static void ed_section_n(unsigned char *b, size_t *len)
{
	((struct esky_img_header *)b)->section_n = 33;
}

static void ed_section_type(unsigned char *b, size_t *len)
{
	unsigned i;

	section(b, ESKY_SEC_AUXV, &i)->type = ESKY_SEC_FDS;
}

static void ed_section_unknown(unsigned char *b, size_t *len)
{
	unsigned i;

	section(b, ESKY_SEC_META, &i)->type = ESKY_SEC_LAST + 1;
}

static void ed_section_beyond(unsigned char *b, size_t *len)
{
	SEC(b, ESKY_SEC_META)->offset = *len - 8;
}

static void ed_section_partial(unsigned char *b, size_t *len)
{
	SEC(b, ESKY_SEC_VMAS)->size -= 8;
}

static void ed_section_overlap(unsigned char *b, size_t *len)
{
	SEC(b, ESKY_SEC_FDS)->offset -= 8;
}

static void ed_section_gap(unsigned char *b, size_t *len)
{
	/* AUXV moved 16 zero bytes further: 16 stray bytes before it */
	struct esky_img_header *hdr = (struct esky_img_header *)b;
	struct esky_img_section *a = SEC(b, ESKY_SEC_AUXV);

	for (unsigned i = 0; i < hdr->section_n; i++)
		if (hdr->sections[i].offset > a->offset)
			hdr->sections[i].offset += 16;
	memmove(b + a->offset + 16, b + a->offset, *len - a->offset);
	memset(b + a->offset, 0, 16);
	a->offset += 16;
	*len += 16;
	hdr->file_size = *len;
}

static void ed_missing_core(unsigned char *b, size_t *len)
{
	/* CORE declared empty: the core's bytes become stray bytes: make them padding-sized */
	SEC(b, ESKY_SEC_CORE)->size = 0;
}

static void ed_header_size(unsigned char *b, size_t *len)
{
	((struct esky_img_header *)b)->header_size = 8192;
}

static void ed_pages_unaligned(unsigned char *b, size_t *len)
{
	SEC(b, ESKY_SEC_PAGES)->size -= 8;
}

#define THREADS(b) SEC_DATA(b, ESKY_SEC_THREADS, struct esky_img_thread)

static void ed_thread_tid_zero(unsigned char *b, size_t *len)
{
	THREADS(b)[1].tid = 0;
}

static void ed_thread_tid_pid(unsigned char *b, size_t *len)
{
	THREADS(b)[0].tid = PID;
}

static void ed_thread_tid_twice(unsigned char *b, size_t *len)
{
	THREADS(b)[2].tid = TID0;
}

static void ed_thread_flags(unsigned char *b, size_t *len)
{
	THREADS(b)[2].flags = 1;
}

static void ed_thread_comm(unsigned char *b, size_t *len)
{
	memset(THREADS(b)[0].comm, 'x', sizeof(THREADS(b)[0].comm));
}

static void ed_thread_xstate_beyond(unsigned char *b, size_t *len)
{
	THREADS(b)[2].xstate_off += 8;
}

static void ed_thread_xstate_wraps(unsigned char *b, size_t *len)
{
	/* off + len wraps around to a small number */
	THREADS(b)[0].xstate_off = UINT64_MAX - 7;
}

static void ed_thread_xstate_huge(unsigned char *b, size_t *len)
{
	/* inside THREAD_XSTATE, but more than any XSAVE area */
	THREADS(b)[0].xstate_len = XSTATE_THREAD2 + 1;
}

static void ed_thread_xstate_len_beyond(unsigned char *b, size_t *len)
{
	/* at the very end: the offset alone is fine */
	THREADS(b)[1].xstate_off = THREAD_XSTATE_SIZE;
	THREADS(b)[1].xstate_len = 8;
}

static void ed_sig_thread(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_SIGINFO, struct esky_img_siginfo)[0].thread = 4;
}

static void ed_sig_shared_thread(unsigned char *b, size_t *len)
{
	SEC_DATA(b, ESKY_SEC_SIGINFO, struct esky_img_siginfo)[1].thread = 1;
}

static void ed_threads_v2(unsigned char *b, size_t *len)
{
	/* A version-2 image knows no THREADS (15), the section after META (12). */
	((struct esky_img_header *)b)->version = 2;
}

static void ed_threads_partial(unsigned char *b, size_t *len)
{
	SEC(b, ESKY_SEC_THREADS)->size -= 8;
}

static void ed_thread_xstate_alone(unsigned char *b, size_t *len)
{
	/* THREADS emptied (its bytes taken out; 3 records keep the alignment) */
	struct esky_img_header *hdr = (struct esky_img_header *)b;
	struct esky_img_section *t = SEC(b, ESKY_SEC_THREADS);
	uint64_t end = t->offset + t->size, cut = t->size;

	memmove(b + t->offset, b + end, *len - end);
	*len -= cut;
	for (unsigned i = 0; i < hdr->section_n; i++)
		if (hdr->sections[i].offset >= end)
			hdr->sections[i].offset -= cut;
	t->size = 0;
	hdr->file_size = *len;
}

static void test_consistency(void)
{
	static const struct edit edits[] = {
		{ "cwd beyond the strings", ed_cwd, "damaged: a string offset is out of range" },
		{ "another architecture", ed_arch,
		  "checkpoint of another architecture (ELF machine 3)" },
		{ "executable index", ed_exe, "damaged: executable file index out of range" },
		{ "unterminated strings", ed_strings, "damaged: strings are not terminated" },
		{ "mappings out of order", ed_vma_order, "damaged: mapping 1 is invalid" },
		{ "file mapping without a file", ed_vma_file, "damaged: mapping 0 is invalid" },
		{ "mapping of unknown kind", ed_vma_kind, "damaged: mapping 3 is invalid" },
		{ "build-id too long", ed_file, "damaged: file record 2 is invalid" },
		{ "fd of a missing file", ed_fd_file, "damaged: fd record 3 is invalid" },
		{ "stdio fd with a file index out of range", ed_fd_stdio_file,
		  "damaged: fd record 0 is invalid" },
		{ "fds out of order", ed_fd_order, "damaged: fd record 4 is invalid" },
		{ "dup of itself", ed_fd_dup, "damaged: fd record 5 is invalid" },
		{ "dup of an fd not recorded", ed_fd_dup_missing, "damaged: fd record 5 is invalid" },
		{ "page run outside the mappings", ed_run_outside,
		  "damaged: page run 0 lies outside the mappings" },
		{ "page run out of place", ed_run_place, "damaged: page run 1 is out of place" },
		{ "parent pages in a standalone image", ed_run_parent,
		  "damaged: parent pages in a standalone image" },
		{ "page run of unknown kind", ed_run_kind, "damaged: page run 0 has kind 9" },
		{ "page run of 2^63 pages", ed_run_huge, "damaged: page run 2 is invalid" },
		{ "a page hash missing", ed_hashes, "damaged: page data and page map disagree" },
		{ "33 sections", ed_section_n, "damaged: 33 sections" },
		{ "two FDS sections", ed_section_type, "damaged: section 10 has type 6" },
		{ "section of unknown type", ed_section_unknown, "damaged: section 11 has type 17" },
		{ "section beyond the end", ed_section_beyond,
		  "damaged: META section lies beyond the end of the file" },
		{ "partial record", ed_section_partial, "damaged: VMAS section has a partial record" },
		{ "sections overlap", ed_section_overlap, "damaged: sections overlap" },
		{ "16 bytes between sections", ed_section_gap,
		  "damaged: 16 stray bytes before AUXV" },
		{ "no core", ed_missing_core, NULL }, /* "N stray bytes before XSTATE", N the core's size */
		{ "header size", ed_header_size, "damaged: header checksum mismatch" },
		{ "page data not page aligned", ed_pages_unaligned,
		  "damaged: page data is not page aligned" },
		{ "thread of tid 0", ed_thread_tid_zero,
		  "damaged: thread 1 has tid 0 (the pid is 4711)" },
		{ "thread with the pid", ed_thread_tid_pid,
		  "damaged: thread 0 has tid 4711 (the pid is 4711)" },
		{ "two threads of one tid", ed_thread_tid_twice, "damaged: two threads have tid 4712" },
		{ "thread flags", ed_thread_flags, "damaged: thread 2 has flags 0x1" },
		{ "thread name unterminated", ed_thread_comm,
		  "damaged: thread 0 has an unterminated name" },
		{ "thread xstate beyond THREAD_XSTATE", ed_thread_xstate_beyond,
		  "damaged: thread 2 has xstate of 65536 bytes at 2704, outside THREAD_XSTATE "
		  "(68232 bytes)" },
		{ "thread xstate length beyond THREAD_XSTATE", ed_thread_xstate_len_beyond,
		  "damaged: thread 1 has xstate of 8 bytes at 68232, outside THREAD_XSTATE "
		  "(68232 bytes)" },
		{ "thread xstate offset wraps", ed_thread_xstate_wraps,
		  "damaged: thread 0 has xstate of 2696 bytes at 18446744073709551608, outside "
		  "THREAD_XSTATE (68232 bytes)" },
		{ "thread xstate too long", ed_thread_xstate_huge,
		  "damaged: thread 0 has xstate of 65537 bytes (at most 65536)" },
		{ "signal of a thread not recorded", ed_sig_thread,
		  "damaged: pending signal 0 names thread 4; the image has 3" },
		{ "shared signal with a thread", ed_sig_shared_thread,
		  "damaged: pending signal 1 is shared but names thread 1" },
		{ "threads in a version-2 image", ed_threads_v2, "damaged: section 12 has type 15" },
		{ "partial thread record", ed_threads_partial,
		  "damaged: THREADS section has a partial record" },
		{ "thread xstate without threads", ed_thread_xstate_alone,
		  "damaged: THREAD_XSTATE section without THREADS" },
	};
	char *full = path_of("full.img"), *d = path_of("edited.img");
	unsigned char *orig, *buf;
	size_t len;

	read_whole(full, &orig, &len);
	buf = xmalloc(len + 4096);
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(edits); i++) {
		size_t n = len;
		char exp[8400];

		memcpy(buf, orig, len);
		edits[i].fn(buf, &n);
		reseal(buf, n);
		write_whole(d, buf, n);
		if (edits[i].expected)
			snprintf(exp, sizeof(exp), "%s: %s", d, edits[i].expected);
		else
			snprintf(exp, sizeof(exp), "%s: damaged: %zu stray bytes before XSTATE", d,
				 sizeof(struct esky_img_core));
		damage = edits[i].what;
		expect_open_error_at(__LINE__, d, exp);
		damage = "";
	}
	free(buf);
	free(orig);
	free(full);
	free(d);
}

/* ---- Unix socket records ---- */

/*
 * Damage to a Unix socket record that passes the checksums: each case
 * edits one object of a good image (a stream pair with a message queued
 * each way, a listening socket at a relative path) before it is written.
 */
enum sock_damage {
	SOCK_GOOD,
	SOCK_NO_PEER,         /* the peer's id is no socket's */
	SOCK_ONE_WAY_STREAM,  /* a stream peer that does not point back */
	SOCK_MSG_TOO_LONG,    /* a message runs past the object's bytes */
	SOCK_SHORT,           /* fewer bytes than the header */
	SOCK_NAME_PATH,       /* a relative name its path string does not end in */
	SOCK_LISTEN_DGRAM,    /* a listening datagram socket */
	SOCK_SAME_ID,         /* two sockets with one id */
	SOCK_FLAGS,           /* unknown state flags */
};

static void append(unsigned char *blob, size_t *len, const void *p, size_t n)
{
	memcpy(blob + *len, p, n);
	*len += n;
}

static void write_sockets(const char *path, enum sock_damage dmg)
{
	struct esky_img_core core = { .arch = ESKY_IMG_ARCH_X86_64, .exe_file = UINT32_MAX };
	struct esky_image_writer *w;
	unsigned char blob[3][256];
	size_t blen[3] = { 0, 0, 0 };
	struct esky_img_fdobj o[3];
	const char *rel = "srv.sock";
	int err = 0;

	memset(o, 0, sizeof(o));
	for (int i = 0; i < 3; i++) {
		struct esky_img_unix h = { .peek_off = -1 };
		uint32_t mlen = 5;

		o[i].kind = i == 2 ? ESKY_IMG_OBJ_UNIX_LISTEN : ESKY_IMG_OBJ_UNIX;
		o[i].id = 100 + (uint64_t)i;
		o[i].v[0] = ESKY_IMG_UNIX_STREAM;
		o[i].v[1] = i == 2 ? 4 : 101 - (uint64_t)i; /* 0 and 1 are a pair; 2's backlog */
		h.name_len = i == 2 ? (uint32_t)strlen(rel) + 1 : 0;
		h.msg_n = i == 2 ? 0 : 1;
		append(blob[i], &blen[i], &h, sizeof(h));
		if (i == 2) {
			append(blob[i], &blen[i], rel, h.name_len);
		} else {
			if (dmg == SOCK_MSG_TOO_LONG && i == 1)
				mlen = 6;
			append(blob[i], &blen[i], &mlen, sizeof(mlen));
			append(blob[i], &blen[i], "hello", 5);
		}
	}
	switch (dmg) {
	case SOCK_NO_PEER:
		o[1].v[1] = 7;
		break;
	case SOCK_ONE_WAY_STREAM:
		o[0].v[1] = 102;
		o[2].kind = ESKY_IMG_OBJ_UNIX;
		break;
	case SOCK_SHORT:
		blen[1] = sizeof(struct esky_img_unix) - 1;
		break;
	case SOCK_LISTEN_DGRAM:
		o[2].v[0] = ESKY_IMG_UNIX_DGRAM;
		break;
	case SOCK_SAME_ID:
		o[2].id = 100;
		break;
	case SOCK_FLAGS:
		o[1].v[2] = 0x100;
		break;
	default:
		break;
	}
	esky_error_clear();
	must(esky_image_writer_open(path, &w), "esky_image_writer_open (sockets)");
	must(esky_image_set_core(w, &core), "esky_image_set_core (sockets)");
	o[2].name = esky_image_add_string(w, dmg == SOCK_NAME_PATH ? "/run/other.sock"
								   : "/run/srv.sock", &err);
	must(err, "esky_image_add_string (sockets)");
	for (int i = 0; i < 3; i++) {
		struct esky_img_fd f = { .fd = 3 + i, .kind = ESKY_IMG_FD_OBJECT, .flags = O_RDWR,
					 .file = i, .stdio_src = -1, .dup_of = -1 };
		uint32_t idx;

		o[i].data_len = blen[i];
		must(esky_image_add_blob(w, blob[i], blen[i], &o[i].data_off), "esky_image_add_blob");
		must(esky_image_add_fdobj(w, &o[i], &idx), "esky_image_add_fdobj");
		must(esky_image_add_fd(w, &f), "esky_image_add_fd");
	}
	must(esky_image_writer_commit(w), "esky_image_writer_commit (sockets)");
}

static void test_sockets(void)
{
	static const struct {
		enum sock_damage dmg;
		unsigned obj;          /* the first object the reader finds wrong */
	} cases[] = {
		/* (1 broken makes 0 wrong first: its peer no longer points back, or is cut short.) */
		{ SOCK_NO_PEER, 0 },	  { SOCK_ONE_WAY_STREAM, 0 }, { SOCK_MSG_TOO_LONG, 1 },
		{ SOCK_SHORT, 0 },	  { SOCK_NAME_PATH, 2 },      { SOCK_LISTEN_DGRAM, 2 },
		{ SOCK_SAME_ID, 0 },	  { SOCK_FLAGS, 1 },
	};
	char *path = path_of("sockets.img");
	struct esky_image *img;

	write_sockets(path, SOCK_GOOD);
	esky_error_clear();
	if (esky_image_open(path, &img)) {
		FAIL("a good image of Unix sockets: expected to open, found \"%s\"",
		     esky_last_error() ? esky_last_error() : "no message");
	} else {
		CHECK_U64("socket objects", esky_image_view(img)->fdobj_n, 3);
		esky_image_close(img);
	}
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(cases); i++) {
		write_sockets(path, cases[i].dmg);
		expect_open_error(path, "%s: damaged: Unix socket object %u is invalid", path,
				  cases[i].obj);
	}
	unlink(path);
	free(path);
}

/* ---- main ---- */

static int rm_tree(const char *path)
{
	DIR *dd = opendir(path);
	struct dirent *e;

	if (!dd)
		return -1;
	while ((e = readdir(dd))) {
		char *p;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (asprintf(&p, "%s/%s", path, e->d_name) < 0)
			break;
		unlink(p);
		free(p);
	}
	closedir(dd);
	return rmdir(path);
}

int main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");
	bool keep = false;

	fail_context = &damage;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--keep")) {
			keep = true;
		} else if (!strcmp(argv[i], "--quick")) {
			quick = true;
		} else {
			fprintf(stderr, "usage: image_test [--keep] [--quick]\n");
			return EXIT_HARNESS;
		}
	}

	snprintf(dir, sizeof(dir), "%s/esky-image-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "image_test: harness error: mkdtemp %s: %s\n", dir, strerror(errno));
		return EXIT_HARNESS;
	}
	fprintf(stderr, "round trip\n");
	test_round_trip();
	fprintf(stderr, "writer files\n");
	test_writer_files();
	fprintf(stderr, "damage\n");
	test_damage();
	fprintf(stderr, "damage with valid checksums\n");
	test_consistency();
	test_sockets();
	if (failures) {
		fprintf(stderr, "FAIL: %u of %u checks failed (work directory %s kept)\n", failures,
			checks, dir);
		return EXIT_FAIL;
	}
	if (keep)
		fprintf(stderr, "work directory %s kept\n", dir);
	else
		rm_tree(dir);
	fprintf(stderr, "PASS: %u checks\n", checks);
	return EXIT_PASS;
}
