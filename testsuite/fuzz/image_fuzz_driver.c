/*
 * Standalone driver of the image reader's fuzz target, for CTest: writes
 * a few valid images with the writer and a process tree file of two of
 * them (the seeds), then runs the target on each seed and on thousands of
 * deterministic mutations of them. Built with -fsanitize=address,undefined
 * when the compiler has them, with the reader's sources compiled in (not
 * esky_core), so that an out-of-bounds read or undefined behaviour in the
 * reader is a crash.
 *
 *   image_fuzz_driver [--cases N] [--seed S] [--stats]
 *                                              generate and run (default 20000, seed 1);
 *                                              --stats counts the messages
 *   image_fuzz_driver --write-corpus DIR       write the seeds and 300 mutations to DIR
 *                                              (a starting corpus for libFuzzer)
 *   image_fuzz_driver FILE...                  run the target on these files (reproduce)
 *
 * A crash, an abort (the target found the reader's contract broken) or a
 * case taking more than 10 seconds writes the input to
 * ./image_fuzz-crash-CASE.bin first and names it. Exit status: 0 pass,
 * a signal or 1 fail, 99 harness error.
 */
#include "image_fuzz.h"
#include "fuzz_guard.h"

#include "hash.h"
#include "image.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_HARNESS 99

#define PAGE ESKY_IMG_PAGE_SIZE
#define MAX_SEEDS 8

struct input {
	uint8_t *data;
	size_t size;
};

static struct input seeds[MAX_SEEDS];
static size_t seed_n;

static void harness_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void harness_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "image_fuzz_driver: harness error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_HARNESS);
}

static void run_one(const uint8_t *data, size_t size, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "image_fuzz-crash-%s.bin", name);
	fuzz_guard_run(LLVMFuzzerTestOneInput, data, size, path);
}

/* --stats: how many cases ended with each message (numbers made N). */
#define STATS_MAX 128
static struct {
	char msg[160];
	unsigned n;
} stats[STATS_MAX];
static bool want_stats;

static void count_result(void)
{
	const char *m = esky_last_error();
	char key[160];
	size_t k = 0;

	if (!m)
		m = "(opened and verified)";
	else if (!strncmp(m, IMAGE_FUZZ_NAME ": ", strlen(IMAGE_FUZZ_NAME ": ")))
		m += strlen(IMAGE_FUZZ_NAME ": ");
	for (; *m && k < sizeof(key) - 1; m++) {
		bool digit = (*m >= '0' && *m <= '9') || (k && key[k - 1] == 'N' &&
							    ((*m >= 'a' && *m <= 'f') || *m == 'x'));

		if (!digit)
			key[k++] = *m;
		else if (!k || key[k - 1] != 'N')
			key[k++] = 'N';
	}
	key[k] = '\0';
	for (size_t i = 0; i < STATS_MAX; i++) {
		if (!stats[i].n) {
			snprintf(stats[i].msg, sizeof(stats[i].msg), "%s", key);
			stats[i].n = 1;
			return;
		}
		if (!strcmp(stats[i].msg, key)) {
			stats[i].n++;
			return;
		}
	}
}

static void print_stats(void)
{
	for (size_t i = 0; i < STATS_MAX && stats[i].n; i++)
		fprintf(stderr, "%7u  %s\n", stats[i].n, stats[i].msg);
}

/* ---- seeds ---- */

static uint64_t rng;

static uint64_t rnd(void)
{
	/* xorshift64*: the same cases on every run */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static void must(int ret, const char *what)
{
	if (ret)
		harness_error("%s: %s (%s)", what, strerror(-ret),
			      esky_last_error() ? esky_last_error() : "no message");
}

static void load(const char *path, struct input *in)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0)
		harness_error("%s: %s", path, strerror(errno));
	in->size = (size_t)st.st_size;
	in->data = malloc(in->size ? in->size : 1);
	if (!in->data)
		harness_error("out of memory");
	if (in->size && pread(fd, in->data, in->size, 0) != (ssize_t)in->size)
		harness_error("%s: short read", path);
	close(fd);
}

static bool parent_hash(void *ctx, uint64_t vaddr, uint64_t *hash)
{
	const unsigned char *mem = ctx;
	int zero;

	/* The parent stored pages 0-5 of the heap at 0x10000000; even ones are unchanged. */
	if (vaddr < 0x10000000 || vaddr >= 0x10000000 + 6 * PAGE)
		return false;
	*hash = esky_hash_page(mem + (vaddr - 0x10000000), &zero);
	if ((vaddr / PAGE) % 2)
		*hash ^= 1;
	return true;
}

/*
 * One seed: kind 0 minimal (core, strings, no mapping); 1 a small process
 * with every kind of record (two threads besides the main one, a signal
 * queued to one); 2 the same as an incremental child; 3 one page only,
 * with a named mapping and long strings. pid: the process's (its threads
 * are 101 and up).
 */
static void write_seed(const char *path, int kind, uint32_t pid)
{
	static unsigned char mem[8 * 4096];
	struct esky_image_writer *w;
	struct esky_img_core core;
	struct esky_img_file f;
	int err = 0;
	uint32_t idx;

	for (size_t i = 0; i < sizeof(mem); i++)
		mem[i] = (unsigned char)(i / PAGE == 2 || i / PAGE == 5 ? 0 : rnd());
	esky_error_clear();
	must(esky_image_writer_open(path, &w), "esky_image_writer_open");
	memset(&core, 0, sizeof(core));
	for (size_t i = 0; i < ESKY_IMG_REGS_WORDS; i++)
		core.regs[i] = rnd();
	core.arch = ESKY_IMG_ARCH_X86_64;
	core.exe_file = UINT32_MAX;
	core.pid = pid;
	if (kind == 0) {
		must(esky_image_set_core(w, &core), "esky_image_set_core");
		must(esky_image_writer_commit(w), "esky_image_writer_commit");
		return;
	}
	core.cwd = esky_image_add_string(w, "/home/user", &err);
	core.cmdline = esky_image_add_string(w, kind == 3 ? "a very long command line with "
					     "many words in it, to have a long string" : "prog -x",
					     &err);
	memset(&f, 0, sizeof(f));
	f.path = esky_image_add_string(w, "/usr/bin/prog", &err);
	f.flags = ESKY_IMG_FILEF_EXE | ESKY_IMG_FILEF_ELF | ESKY_IMG_FILEF_BUILD_ID;
	f.build_id_len = 20;
	f.mode = 0100755;
	f.size = 12345;
	must(esky_image_add_file(w, &f, &idx), "esky_image_add_file");
	core.exe_file = idx;
	memset(&f, 0, sizeof(f));
	f.path = esky_image_add_string(w, "/tmp/data", &err);
	f.flags = ESKY_IMG_FILEF_WRITTEN;
	must(esky_image_add_file(w, &f, &idx), "esky_image_add_file");
	must(err, "esky_image_add_string");
	if (kind == 2) {
		static const uint8_t parent_id[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

		must(esky_image_set_parent(w, parent_id, "parent.img"), "esky_image_set_parent");
	}
	must(esky_image_set_core(w, &core), "esky_image_set_core");
	if (kind != 3) {
		uint64_t auxv[6] = { 6, 4096, 25, 0x7ffc0000, 0, 0 };
		struct esky_img_siginfo si;

		must(esky_image_set_xstate(w, mem + 100, 832), "esky_image_set_xstate");
		must(esky_image_set_auxv(w, auxv, 6), "esky_image_set_auxv");
		must(esky_image_add_meta(w, "esky_version", "0.1.0"), "esky_image_add_meta");
		must(esky_image_add_meta(w, "host", "fuzz"), "esky_image_add_meta");
		memset(&si, 0, sizeof(si));
		si.info[0] = 10;
		must(esky_image_add_siginfo(w, &si), "esky_image_add_siginfo");
		/* Threads (format 3): 101 with xstate and a signal of its own, 102 without. */
		for (uint32_t k = 0; k < 2; k++) {
			struct esky_img_thread th = { .tid = 101 + k, .comm = "fuzz-worker" };

			for (size_t r = 0; r < ESKY_IMG_REGS_WORDS; r++)
				th.regs[r] = rnd();
			must(esky_image_add_thread(w, &th, k ? NULL : mem + 200, k ? 0 : 832),
			     "esky_image_add_thread");
		}
		si.info[0] = 12;
		si.thread = 1;
		must(esky_image_add_siginfo(w, &si), "esky_image_add_siginfo");
		/* Objects (format 2): a pipe with data, a memfd, an epoll watching fd 3. */
		{
			struct esky_img_epoll_reg reg = { .tfd = 3, .events = 1, .data = 42 };
			struct esky_img_fdobj o[3] = {
				{ .kind = ESKY_IMG_OBJ_PIPE, .v = { 65536 } },
				{ .kind = ESKY_IMG_OBJ_MEMFD, .v = { 2 } },
				{ .kind = ESKY_IMG_OBJ_EPOLL },
			};
			uint32_t idx;
			int err = 0;

			must(esky_image_add_blob(w, "in flight", 9, &o[0].data_off), "blob");
			o[0].data_len = 9;
			must(esky_image_add_blob(w, mem, 300, &o[1].data_off), "blob");
			o[1].data_len = 300;
			o[1].name = esky_image_add_string(w, "fuzz-memfd", &err);
			must(err, "esky_image_add_string");
			must(esky_image_add_blob(w, &reg, sizeof(reg), &o[2].data_off), "blob");
			o[2].data_len = sizeof(reg);
			for (int k = 0; k < 3; k++)
				must(esky_image_add_fdobj(w, &o[k], &idx), "esky_image_add_fdobj");
		}
		/* A Unix stream pair (objects 3 and 4), a message queued to the first. */
		for (int k = 0; k < 2; k++) {
			struct esky_img_fdobj so = { .kind = ESKY_IMG_OBJ_UNIX, .id = 500 + (uint64_t)k,
						     .v = { ESKY_IMG_UNIX_STREAM, 501 - (uint64_t)k } };
			struct esky_img_unix h = { .msg_n = k ? 0 : 1, .peek_off = -1 };
			unsigned char b[sizeof(h) + 9];
			uint32_t len = 5, idx;

			memcpy(b, &h, sizeof(h));
			memcpy(b + sizeof(h), &len, sizeof(len));
			memcpy(b + sizeof(h) + sizeof(len), "hello", 5);
			so.data_len = k ? sizeof(h) : sizeof(b);
			must(esky_image_add_blob(w, b, so.data_len, &so.data_off), "blob");
			must(esky_image_add_fdobj(w, &so, &idx), "esky_image_add_fdobj");
		}
		for (int fd = 0; fd < 12; fd++) {
			struct esky_img_fd r = { .fd = fd, .file = -1, .stdio_src = -1, .dup_of = -1 };

			if (fd < 3) {
				r.kind = ESKY_IMG_FD_STDIO;
				r.stdio_src = fd;
			} else if (fd == 3) {
				r.kind = ESKY_IMG_FD_FILE;
				r.file = 1;
				r.pos = 77;
				r.flags = 02;
			} else if (fd < 6) {
				r.kind = ESKY_IMG_FD_DUP;
				r.dup_of = 3;
			} else {
				/* 6, 7: the pipe's ends; 8: the memfd; 9: the epoll; 10, 11: sockets */
				r.kind = ESKY_IMG_FD_OBJECT;
				r.file = fd < 8 ? 0 : fd - 7;
				r.flags = fd == 7 ? 01 : fd == 8 || fd >= 10 ? 02 : 0;
			}
			must(esky_image_add_fd(w, &r), "esky_image_add_fd");
		}
	}
	/* exe text (clean), exe data (dirty, zero page stored), heap, stack, vdso */
	{
		struct esky_img_vma v[] = {
			{ .start = 0x400000, .end = 0x402000, .kind = ESKY_IMG_VMA_FILE_PRIVATE,
			  .prot = 5, .file = 0 },
			{ .start = 0x600000, .end = 0x603000, .kind = ESKY_IMG_VMA_FILE_PRIVATE,
			  .prot = 3, .file = 0, .pgoff = 0x2000 },
			{ .start = 0x10000000, .end = 0x10008000, .kind = ESKY_IMG_VMA_ANON,
			  .prot = 3, .file = -1, .flags = ESKY_IMG_VMAF_HEAP },
			{ .start = 0x7ffc0000, .end = 0x7ffc2000, .kind = ESKY_IMG_VMA_ANON,
			  .prot = 3, .file = -1, .flags = ESKY_IMG_VMAF_STACK | ESKY_IMG_VMAF_GROWSDOWN },
			{ .start = 0x7ffd0000, .end = 0x7ffd2000, .kind = ESKY_IMG_VMA_VDSO,
			  .prot = 5, .file = -1 },
		};
		struct esky_page_parent pp = { .hash = parent_hash, .ctx = mem };

		if (kind == 3) {
			v[2].name = esky_image_add_string(w, "[anon:a named mapping]", &err);
			must(esky_image_add_vma(w, &v[2]), "esky_image_add_vma");
			must(esky_image_write_pages(w, 0x10000000, mem, 1, true, NULL, NULL, NULL),
			     "esky_image_write_pages");
		} else {
			must(esky_image_add_vma(w, &v[0]), "esky_image_add_vma");
			must(esky_image_add_vma(w, &v[1]), "esky_image_add_vma");
			if (kind == 2)
				must(esky_image_add_parent_pages(w, 0x600000, 3),
				     "esky_image_add_parent_pages");
			else
				must(esky_image_write_pages(w, 0x600000, mem + 4 * PAGE, 3, false, NULL,
							    NULL, NULL),
				     "esky_image_write_pages");
			must(esky_image_add_vma(w, &v[2]), "esky_image_add_vma");
			must(esky_image_write_pages(w, 0x10000000, mem, 8, true, kind == 2 ? &pp : NULL,
						    NULL, NULL),
			     "esky_image_write_pages");
			must(esky_image_add_vma(w, &v[3]), "esky_image_add_vma");
			must(esky_image_write_pages(w, 0x7ffc1000, mem + 6 * PAGE, 1, true, NULL, NULL,
						    NULL),
			     "esky_image_write_pages");
			must(esky_image_add_vma(w, &v[4]), "esky_image_add_vma");
		}
	}
	must(esky_image_writer_commit(w), "esky_image_writer_commit");
}

/*
 * The seeds: the four kinds of image, and a process tree file of three
 * processes (esky_image_tree_write): the root (kind 1, pid 100), a live
 * child (kind 3, pid 200) and a zombie child of the child (killed by
 * SIGKILL).
 */
static void make_seeds(void)
{
	char dir[] = "/tmp/esky-image-fuzz.XXXXXX";
	char paths[4][sizeof(dir) + 32], tree[sizeof(dir) + 32];
	const char *members[3] = { paths[1], paths[3], NULL };
	const struct esky_tree_proc procs[3] = {
		{ .pid = 100, .pgid = 100, .sid = 100 },
		{ .pid = 200, .ppid = 100, .pgid = 100, .sid = 100 },
		{ .pid = 300, .ppid = 200, .pgid = 100, .sid = 100, .flags = ESKY_TREE_ZOMBIE,
		  .status = 9 },
	};

	if (!mkdtemp(dir))
		harness_error("mkdtemp: %s", strerror(errno));
	for (int kind = 0; kind < 4; kind++) {
		snprintf(paths[kind], sizeof(paths[kind]), "%s/seed%d.img", dir, kind);
		write_seed(paths[kind], kind, kind == 3 ? 200 : 100);
		load(paths[kind], &seeds[seed_n++]);
	}
	snprintf(tree, sizeof(tree), "%s/seed.tree", dir);
	must(esky_image_tree_write(tree, procs, 3, members), "esky_image_tree_write");
	load(tree, &seeds[seed_n++]);
	unlink(tree);
	for (int kind = 0; kind < 4; kind++)
		unlink(paths[kind]);
	rmdir(dir);
}

/* ---- mutations ---- */

static uint64_t interesting(size_t size)
{
	static const uint64_t v[] = {
		0, 1, 2, 3, 7, 8, 9, 15, 16, 31, 32, 33, 48, 0x7f, 0x80, 0xff, 0x100, 0xfff,
		0x1000, 0x1001, 0x1008, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000,
		0xfffffff8, 0xfffffffe, 0xffffffff, 1ULL << 32, 1ULL << 36, (1ULL << 36) + 1,
		1ULL << 48, 0x7fffffffffffffffULL, 0x8000000000000000ULL, 0xfffffffffffff000ULL,
		0xfffffffffffffff8ULL, 0xffffffffffffffffULL,
	};

	switch (rnd() % 6) {
	case 0:
		return size + rnd() % 17 - 8;
	case 1:
		return (rnd() % 64) * PAGE;
	case 2:
		return rnd();
	default:
		return v[rnd() % (sizeof(v) / sizeof(v[0]))];
	}
}

static void put(uint8_t *buf, size_t size, size_t off, uint64_t val, unsigned width)
{
	if (off >= size)
		return;
	if (width > size - off)
		width = (unsigned)(size - off);
	memcpy(buf + off, &val, width); /* little-endian */
}

static unsigned rand_width(void)
{
	static const unsigned w[] = { 1, 2, 4, 4, 8, 8 };

	return w[rnd() % 6];
}

/* A random record-aligned field in a random section of the (valid) table. */
static size_t section_field(const uint8_t *buf, size_t size)
{
	const struct esky_img_header *h = (const void *)buf;
	const struct esky_img_section *s;
	unsigned n = h->section_n < ESKY_IMG_MAX_SECTIONS ? h->section_n : ESKY_IMG_MAX_SECTIONS;

	if (size < sizeof(*h) || !n)
		return (size_t)(rnd() % (size ? size : 1));
	s = &h->sections[rnd() % n];
	if (s->offset >= size || !s->size)
		return (size_t)(rnd() % size);
	return (size_t)(s->offset + (rnd() % s->size) / 4 * 4);
}

static void set_file_size(uint8_t *buf, size_t size)
{
	uint64_t fs = size;

	if (size >= sizeof(struct esky_img_header))
		memcpy(buf + offsetof(struct esky_img_header, file_size), &fs, sizeof(fs));
}

static size_t mutate_image(uint8_t *buf, size_t size);

/*
 * Mutate a process tree file: its table (an interesting value or a bit
 * flip in a process's entry or the header's fields), one of its images
 * (mutate_image on the image's bytes in place: a size it changes is not
 * the file's), or the whole file (truncated, junk appended). The checksums
 * are recomputed (image_fuzz_reseal, the images' too) most of the time.
 */
static size_t mutate_tree(uint8_t *buf, size_t size)
{
	const struct esky_tree_header *h = (const void *)buf;
	unsigned n = h->proc_n < ESKY_TREE_MAX_PROCS ? h->proc_n : ESKY_TREE_MAX_PROCS;
	size_t table = offsetof(struct esky_tree_header, procs) + (n + 1) * sizeof(h->procs[0]);
	unsigned op = (unsigned)(rnd() % 6);

	if (op < 2) {
		if (rnd() % 2)
			put(buf, size, (size_t)(rnd() % table) / 4 * 4, interesting(size),
			    rand_width());
		else
			buf[rnd() % table] ^= (uint8_t)(1u << (rnd() % 8));
		if (rnd() % 8)
			image_fuzz_reseal(buf, size);
		return size;
	}
	if (op < 5 && n) {
		const struct esky_tree_proc *p = &h->procs[rnd() % n];

		if (p->offset && p->size && p->offset < size && p->size <= size - p->offset) {
			mutate_image(buf + p->offset, (size_t)p->size);
			/* (mutate_image resealed the image alone: the table's checksum too.) */
			if (rnd() % 8)
				image_fuzz_reseal(buf, size);
			return size;
		}
	}
	return mutate_image(buf, size);
}

/*
 * Mutate buf (size bytes of a seed, room for size + 8192) in place; returns
 * the new size. Most mutations recompute the checksums afterwards, so that
 * they reach the checks behind them.
 */
static size_t mutate(uint8_t *buf, size_t size)
{
	if (size >= sizeof(struct esky_tree_header) && !memcmp(buf, ESKY_TREE_MAGIC, 8))
		return mutate_tree(buf, size);
	return mutate_image(buf, size);
}

static size_t mutate_image(uint8_t *buf, size_t size)
{
	struct esky_img_header *h = (void *)buf;
	unsigned op = (unsigned)(rnd() % 12), k;
	bool reseal = true;
	size_t cut;

	switch (op) {
	case 0: /* a few bit flips anywhere, checksums left wrong */
		for (k = 1 + (unsigned)(rnd() % 4); k; k--)
			buf[rnd() % size] ^= (uint8_t)(1u << (rnd() % 8));
		reseal = false;
		break;
	case 1: /* a bit flip in the header's fields, then resealed */
		buf[rnd() % (112 + 32 * 16)] ^= (uint8_t)(1u << (rnd() % 8));
		break;
	case 2: /* an interesting value anywhere */
		put(buf, size, (size_t)(rnd() % size), interesting(size), rand_width());
		break;
	case 3: /* an interesting value in the section table or the header's fields */
		put(buf, size, (size_t)(rnd() % (112 + 32 * 16)) / 4 * 4, interesting(size),
		    rand_width());
		break;
	case 4: /* interesting values in the records of a section */
	case 5:
		for (k = 1 + (unsigned)(rnd() % 3); k; k--)
			put(buf, size, section_field(buf, size), interesting(size), rand_width());
		break;
	case 6: /* truncated, the header's size fixed or not */
		cut = (size_t)(1 + rnd() % 64);
		size = rnd() % 3 ? (size_t)(rnd() % size) : cut < size ? size - cut : 0;
		if (rnd() % 2)
			set_file_size(buf, size);
		break;
	case 7: /* junk appended */
		k = (unsigned)(1 + rnd() % 4096);
		for (unsigned i = 0; i < k; i++)
			buf[size + i] = (uint8_t)(rnd() % 3 ? 0 : rnd());
		size += k;
		if (rnd() % 2)
			set_file_size(buf, size);
		break;
	case 8: /* two sections swap places in the table (or only their offsets) */
		if (size >= sizeof(*h) && h->section_n >= 2 && h->section_n <= ESKY_IMG_MAX_SECTIONS) {
			unsigned a = (unsigned)(rnd() % h->section_n), b = (unsigned)(rnd() % h->section_n);
			struct esky_img_section t = h->sections[a];

			if (rnd() % 2) {
				h->sections[a] = h->sections[b];
				h->sections[b] = t;
			} else {
				h->sections[a].offset = h->sections[b].offset;
				h->sections[b].offset = t.offset;
			}
		}
		break;
	case 9: /* a section grows or shrinks by a few records */
		if (size >= sizeof(*h) && h->section_n && h->section_n <= ESKY_IMG_MAX_SECTIONS) {
			struct esky_img_section *s = &h->sections[rnd() % h->section_n];

			s->size += (rnd() % 9) * 8 - 32;
		}
		break;
	case 10: /* a span of random bytes in a section */
		cut = section_field(buf, size);
		for (k = (unsigned)(1 + rnd() % 64); k && cut < size; k--)
			buf[cut++] = (uint8_t)rnd();
		break;
	default: /* several of the above */
		for (k = 2 + (unsigned)(rnd() % 4); k; k--)
			put(buf, size, rnd() % 2 ? section_field(buf, size) : (size_t)(rnd() % 624),
			    interesting(size), rand_width());
		break;
	}
	if (reseal && rnd() % 8)
		image_fuzz_reseal(buf, size);
	return size;
}

/* Case c: a mutation of seed c % seed_n into buf; returns its size. */
static size_t make_case(uint64_t base_seed, unsigned c, uint8_t *buf)
{
	const struct input *s = &seeds[c % seed_n];
	size_t size = s->size;

	rng = (base_seed * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)c * 0xbf58476d1ce4e5b9ULL) ^ 1;
	memcpy(buf, s->data, size);
	/* one to three rounds of mutation */
	for (unsigned r = 1 + (unsigned)(rnd() % 3); r && size; r--)
		size = mutate(buf, size);
	return size;
}

static size_t max_seed_size(void)
{
	size_t max = 0;

	for (size_t s = 0; s < seed_n; s++)
		if (seeds[s].size > max)
			max = seeds[s].size;
	return max;
}

static int write_corpus(const char *dir)
{
	uint8_t *buf = malloc(max_seed_size() + 3 * 8192 + 1);
	char path[4096];

	if (!buf)
		harness_error("out of memory");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		harness_error("%s: %s", dir, strerror(errno));
	for (size_t i = 0; i < seed_n; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/seed%zu", dir, i);
		f = fopen(path, "wb");
		if (!f || fwrite(seeds[i].data, 1, seeds[i].size, f) != seeds[i].size || fclose(f))
			harness_error("%s: cannot write", path);
	}
	for (unsigned c = 0; c < 300; c++) {
		size_t size = make_case(1, c, buf);
		FILE *f;

		snprintf(path, sizeof(path), "%s/case%u", dir, c);
		f = fopen(path, "wb");
		if (!f || (size && fwrite(buf, 1, size, f) != size) || fclose(f))
			harness_error("%s: cannot write", path);
	}
	free(buf);
	return EXIT_PASS;
}

int main(int argc, char **argv)
{
	unsigned cases = 20000;
	uint64_t base_seed = 1, t0;
	uint8_t *buf;
	int i = 1;

	fuzz_guard_init("image_fuzz_driver", 2);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--cases") && i + 1 < argc)
			cases = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			base_seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--stats"))
			want_stats = true;
		else if (!strcmp(argv[i], "--write-corpus") && i + 1 < argc)
			break;
		else
			harness_error("unknown option %s (see the comment at the top)", argv[i]);
	}
	if (i < argc && argv[i][0] != '-') {
		/* Reproduce: run the given files. */
		for (; i < argc; i++) {
			struct input in;

			load(argv[i], &in);
			fprintf(stderr, "%s (%zu bytes)\n", argv[i], in.size);
			run_one(in.data, in.size, "repro");
			free(in.data);
		}
		return EXIT_PASS;
	}
	rng = 0x5eed;
	make_seeds();
	if (i < argc)
		return write_corpus(argv[i + 1]);

	/* The seeds themselves must pass: a valid image opens and verifies. */
	for (size_t s = 0; s < seed_n; s++) {
		struct esky_image *img;
		char name[32];

		snprintf(name, sizeof(name), "seed%zu", s);
		run_one(seeds[s].data, seeds[s].size, name);
		{
			/* ... and really opens (the target ignores failures). */
			char path[] = "/tmp/esky-image-fuzz-seed.XXXXXX";
			int fd = mkstemp(path);

			if (fd < 0 || write(fd, seeds[s].data, seeds[s].size) != (ssize_t)seeds[s].size)
				harness_error("cannot write a seed to %s", path);
			esky_error_clear();
			if (esky_image_open_fd(fd, path, &img) || esky_image_verify_pages(img))
				harness_error("seed %zu does not open: %s", s, esky_last_error());
			esky_image_close(img);
			close(fd);
			unlink(path);
		}
	}
	buf = malloc(max_seed_size() + 3 * 8192 + 1);
	if (!buf)
		harness_error("out of memory");
	t0 = (uint64_t)time(NULL);
	for (unsigned c = 0; c < cases; c++) {
		size_t size = make_case(base_seed, c, buf);
		char name[32];

		snprintf(name, sizeof(name), "%u", c);
		run_one(buf, size, name);
		if (want_stats)
			count_result();
	}
	if (want_stats)
		print_stats();
	free(buf);
	for (size_t s = 0; s < seed_n; s++)
		free(seeds[s].data);
	fprintf(stderr, "PASS: %zu seeds and %u mutations (seed %llu) in about %llu s\n", seed_n,
		cases, (unsigned long long)base_seed, (unsigned long long)((uint64_t)time(NULL) - t0));
	return EXIT_PASS;
}
