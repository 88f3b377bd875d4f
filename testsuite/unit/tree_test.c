/*
 * Checks the process tree files of src/image.c alone (no process, no
 * ptrace):
 *
 * 1. round trip: a tree of three processes (the root 4711, its live child
 *    4712, a zombie 4713 of 4712 with exit status 3) written with
 *    esky_image_tree_write from two member images: the table as the
 *    format says (offsets, sizes, the members' bytes, zero padding,
 *    checksum), mode 0600, no temporary left, the members kept; read back,
 *    the root through esky_image_open and esky_image_open_fd and the child
 *    through esky_image_open_member have the views of the members opened
 *    alone (the file's path, pages_off moved by the image's offset), pass
 *    esky_image_verify_pages, and a page found with esky_image_resolve
 *    and read with pread at the file offset it gives has the bytes
 *    written; a member outlives the root it was opened from; a zombie, an
 *    index beyond the table and a plain image are refused by
 *    esky_image_open_member; esky_image_flatten of the root gives the
 *    root's pages; esky info (esky_describe_image) lists the processes,
 *    with -v every live image;
 * 2. the writer's refusals, each with its one-line message, leaving no
 *    temporary and an existing file untouched;
 * 3. damage the reader must catch, each with its exact one-line message:
 *    every field of the tree header and of the process table (checksums
 *    made right again after the edit, so that the check behind them is
 *    reached), the padding between images, truncation at several sizes,
 *    trailing bytes, and damaged member images (their own messages, the
 *    file named);
 * 4. an fd shared with another process (kinds PEER, PEER_OBJECT) names a
 *    live process before its own in the table, or the tree is refused.
 *
 *   tree_test [--keep]
 *
 * Works in a fresh directory under $TMPDIR (or /tmp), removed at the end
 * unless --keep or a failure. Exit status: 0 pass, 1 fail, 99 harness
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
#include <sys/wait.h>
#include <unistd.h>

#define PAGE ESKY_IMG_PAGE_SIZE
#define MAX_REPORTS 60
#define UNIT_NAME "tree_test"
#define UNIT_WORK_DIR
#define UNIT_RNG_SEED 0x2545f4914f6cdd1dULL
/* room for appending junk */
#define UNIT_READ_ROOM (2 * PAGE)
#include "unit_test.h"

/*
 * Open path in a child process (a crash of the reader is one failed check,
 * not the end of the test); it must fail with exactly the message
 * expected, on one line.
 */
static void expect_open_error_at(int line, const char *path, const char *expected)
{
	char msg[1200] = "";
	int pfd[2], status;
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
		int ret;

		close(pfd[0]);
		alarm(10);
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
		fail_at(__FILE__, line, "open %s: expected failure \"%s\", found a crash (signal %d)",
			path, expected, WTERMSIG(status));
	else if (WEXITSTATUS(status) == 0)
		fail_at(__FILE__, line, "open %s: expected failure \"%s\", found success", path,
			expected);
	else if (WEXITSTATUS(status) == 0x7f)
		fail_at(__FILE__, line, "open %s: expected a -errno, found a positive value", path);
	else if (strcmp(msg, expected))
		fail_at(__FILE__, line, "open %s: expected message \"%s\", found \"%s\"", path,
			expected, msg);
	else if (strchr(msg, '\n'))
		fail_at(__FILE__, line, "open %s: message of more than one line", path);
}

#define expect_open_error(path, ...)                                      \
	do {                                                              \
		char e_[1200];                                            \
		snprintf(e_, sizeof(e_), __VA_ARGS__);                    \
		expect_open_error_at(__LINE__, path, e_);                 \
	} while (0)

/* ---- the member images ---- */

#define ROOT_PID 4711u
#define CHILD_PID 4712u
#define ZOMBIE_PID 4713u
#define ZOMBIE_STATUS (3 << 8) /* exit(3) */
#define HEAP 0x10000000ULL
#define STACK 0x7ff000000000ULL

/* What a member image holds: its pages, to check reads against. */
struct member {
	char *path;
	uint32_t pid;
	unsigned heap_pages;
	unsigned char *heap;   /* heap_pages pages, every one stored */
	unsigned char *stack;  /* 2 pages */
};

/*
 * A small process image: a heap of heap_pages random pages (through the
 * writer's buffers), a stack of two pages, a file and an fd, a thread.
 * Metadata lengths make the image end off a 4096 boundary (padding
 * follows it in the tree).
 */
static void write_member_fd(struct member *m, const char *name, uint32_t pid,
			    unsigned heap_pages, const char *comm, const struct esky_img_fd *extra)
{
	struct esky_image_writer *w;
	struct esky_img_core core;
	struct esky_img_vma vma = { 0 };
	struct esky_img_file f = { 0 };
	struct esky_img_fd fd = { .fd = 0, .kind = ESKY_IMG_FD_STDIO, .flags = 2, .file = -1,
				  .stdio_src = 0, .dup_of = -1 };
	struct esky_img_thread th = { 0 };
	unsigned char xstate[1000];
	uint32_t idx;
	int err = 0;
	char *buf;

	m->path = path_of(name);
	m->pid = pid;
	m->heap_pages = heap_pages;
	m->heap = xmalloc((size_t)heap_pages * PAGE);
	m->stack = xmalloc(2 * PAGE);
	fill_random(m->heap, (size_t)heap_pages * PAGE);
	fill_random(m->stack, 2 * PAGE);

	esky_error_clear();
	must(esky_image_writer_open(m->path, &w), "esky_image_writer_open");
	memset(&core, 0, sizeof(core));
	core.arch = ESKY_IMG_ARCH_X86_64;
	core.pid = pid;
	snprintf(core.comm, sizeof(core.comm), "%s", comm);
	fill_random(core.regs, sizeof(core.regs));
	core.cwd = esky_image_add_string(w, "/home/user/tree", &err);
	core.cmdline = esky_image_add_string(w, comm, &err);
	f.path = esky_image_add_string(w, "/usr/bin/treeprog", &err);
	must(err, "esky_image_add_string");
	f.flags = ESKY_IMG_FILEF_EXE;
	f.mode = 0100755;
	must(esky_image_add_file(w, &f, &idx), "esky_image_add_file");
	core.exe_file = idx;
	must(esky_image_set_core(w, &core), "esky_image_set_core");
	fill_random(xstate, sizeof(xstate));
	must(esky_image_set_xstate(w, xstate, sizeof(xstate)), "esky_image_set_xstate");
	must(esky_image_add_meta(w, "esky", "tree-test"), "esky_image_add_meta");
	must(esky_image_add_fd(w, &fd), "esky_image_add_fd");
	if (extra)
		must(esky_image_add_fd(w, extra), "esky_image_add_fd (extra)");
	th.tid = pid + 100;
	snprintf(th.comm, sizeof(th.comm), "%s-t", comm);
	must(esky_image_add_thread(w, &th, xstate, 500), "esky_image_add_thread");

	vma = (struct esky_img_vma){ .start = HEAP, .end = HEAP + (uint64_t)heap_pages * PAGE,
				     .kind = ESKY_IMG_VMA_ANON, .prot = 3,
				     .flags = ESKY_IMG_VMAF_HEAP, .file = -1 };
	must(esky_image_add_vma(w, &vma), "esky_image_add_vma");
	buf = esky_image_writer_buffer(w);
	if (!buf || heap_pages > ESKY_IMAGE_BUF_SIZE / PAGE)
		harness_error("esky_image_writer_buffer");
	memcpy(buf, m->heap, (size_t)heap_pages * PAGE);
	must(esky_image_write_pages(w, HEAP, buf, heap_pages, true, NULL, NULL, NULL),
	     "esky_image_write_pages");
	must(esky_image_writer_submit(w), "esky_image_writer_submit");
	vma = (struct esky_img_vma){ .start = STACK, .end = STACK + 2 * PAGE,
				     .kind = ESKY_IMG_VMA_ANON, .prot = 3,
				     .flags = ESKY_IMG_VMAF_STACK | ESKY_IMG_VMAF_GROWSDOWN,
				     .file = -1 };
	must(esky_image_add_vma(w, &vma), "esky_image_add_vma");
	must(esky_image_write_pages(w, STACK, m->stack, 2, true, NULL, NULL, NULL),
	     "esky_image_write_pages");
	must(esky_image_writer_commit(w), "esky_image_writer_commit");
}

static void write_member(struct member *m, const char *name, uint32_t pid, unsigned heap_pages,
			 const char *comm)
{
	write_member_fd(m, name, pid, heap_pages, comm, NULL);
}

static void free_member(struct member *m)
{
	free(m->path);
	free(m->heap);
	free(m->stack);
}

static uint64_t page_up(uint64_t x)
{
	return (x + PAGE - 1) / PAGE * PAGE;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		harness_error("%s: %s", path, strerror(errno));
	return (uint64_t)st.st_size;
}

/* The table of the round trip: root, live child, zombie of the child. */
static void tree_procs(struct esky_tree_proc p[3])
{
	memset(p, 0, 3 * sizeof(*p));
	p[0] = (struct esky_tree_proc){ .pid = ROOT_PID, .ppid = 0, .pgid = ROOT_PID,
					.sid = 4000 };
	p[1] = (struct esky_tree_proc){ .pid = CHILD_PID, .ppid = ROOT_PID, .pgid = ROOT_PID,
					.sid = 4000 };
	p[2] = (struct esky_tree_proc){ .pid = ZOMBIE_PID, .ppid = CHILD_PID, .pgid = CHILD_PID,
					.sid = 4000, .flags = ESKY_TREE_ZOMBIE,
					.status = ZOMBIE_STATUS };
	/* The writer fills these: junk must not matter. */
	p[0].offset = 12345;
	p[1].size = 777;
}

/* ---- round trip ---- */

#define SAME_ARRAY(what, a, an, b, bn)                                                        \
	do {                                                                                  \
		CHECK_U64(what " count", an, bn);                                             \
		CHECK((an) == (bn) && (!(an) || !memcmp(a, b, (an) * sizeof(*(a)))),           \
		      "%s: %s differs from the member opened alone", name, what);             \
	} while (0)

/* The view of img (of the tree file tree_path, at offset off) against the member's own. */
static void check_same_view(struct esky_image *img, struct esky_image *alone, const char *tree_path,
			    uint64_t off, const char *name)
{
	const struct esky_image_view *v = esky_image_view(img), *a = esky_image_view(alone);
	char what[200];

	snprintf(what, sizeof(what), "%s: view path", name);
	CHECK_STR(what, v->path, tree_path);
	CHECK(!memcmp(v->hdr, a->hdr, sizeof(*v->hdr)), "%s: header differs", name);
	CHECK(!memcmp(v->core, a->core, sizeof(*v->core)), "%s: core differs", name);
	SAME_ARRAY("xstate", (const char *)v->xstate, v->xstate_len, (const char *)a->xstate,
		   a->xstate_len);
	SAME_ARRAY("strings", v->strings, v->strings_len, a->strings, a->strings_len);
	SAME_ARRAY("mappings", v->vmas, v->vma_n, a->vmas, a->vma_n);
	SAME_ARRAY("files", v->files, v->file_n, a->files, a->file_n);
	SAME_ARRAY("fds", v->fds, v->fd_n, a->fds, a->fd_n);
	SAME_ARRAY("signals", v->sigs, v->sig_n, a->sigs, a->sig_n);
	SAME_ARRAY("page runs", v->runs, v->run_n, a->runs, a->run_n);
	SAME_ARRAY("page hashes", v->hashes, v->hash_n, a->hashes, a->hash_n);
	SAME_ARRAY("auxv", v->auxv, v->auxv_n, a->auxv, a->auxv_n);
	SAME_ARRAY("meta", v->meta, v->meta_len, a->meta, a->meta_len);
	SAME_ARRAY("threads", v->threads, v->thread_n, a->threads, a->thread_n);
	SAME_ARRAY("thread xstate", v->thread_xstate, v->thread_xstate_len, a->thread_xstate,
		   a->thread_xstate_len);
	snprintf(what, sizeof(what), "%s: pages_off (absolute)", name);
	CHECK_U64(what, v->pages_off, a->pages_off + off);
	snprintf(what, sizeof(what), "%s: pages_size", name);
	CHECK_U64(what, v->pages_size, a->pages_size);
	snprintf(what, sizeof(what), "%s: file_size (the image's)", name);
	CHECK_U64(what, v->file_size, a->file_size);
}

struct read_ctx {
	struct esky_image *img;
	const struct member *m;
	unsigned pages;
	unsigned bad;
};

/* A piece found by esky_image_resolve: read it at file_off, compare with the member's pages. */
static int read_piece(void *arg, uint64_t vaddr, uint64_t npages, uint32_t kind, size_t level,
		      uint64_t file_off, const uint64_t *hashes)
{
	struct read_ctx *c = arg;
	unsigned char page[PAGE];

	(void)hashes;
	if (kind != ESKY_IMG_PAGES_DATA || level)
		return 0;
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t va = vaddr + i * PAGE;
		const unsigned char *want = va >= STACK ? c->m->stack + (va - STACK)
							: c->m->heap + (va - HEAP);

		if (pread(esky_image_fd(c->img), page, PAGE, (off_t)(file_off + i * PAGE)) != PAGE ||
		    memcmp(page, want, PAGE))
			c->bad++;
		c->pages++;
	}
	return 0;
}

static void check_pages_read(struct esky_image *img, const struct member *m, const char *name)
{
	struct esky_image *chain[1] = { img };
	struct read_ctx c = { .img = img, .m = m };
	const struct esky_image_view *v = esky_image_view(img);
	char what[200];

	esky_error_clear();
	CHECK(esky_image_verify_pages(img) == 0, "%s: esky_image_verify_pages: %s", name,
	      esky_last_error() ? esky_last_error() : "no message");
	for (size_t i = 0; i < v->vma_n; i++)
		must(esky_image_resolve(chain, 1, v->vmas[i].start, v->vmas[i].end, read_piece, &c),
		     "esky_image_resolve");
	snprintf(what, sizeof(what), "%s: pages resolved", name);
	CHECK_U64(what, c.pages, m->heap_pages + 2);
	CHECK(!c.bad, "%s: %u pages read at the offsets esky_image_resolve gives differ from "
	      "those written", name, c.bad);
}

static char *describe(struct esky_image *img, bool verbose)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		harness_error("open_memstream: %s", strerror(errno));
	esky_describe_image(img, verbose, f);
	fclose(f);
	return text;
}

/* Occurrences of needle in hay. */
static unsigned count_str(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_round_trip(struct member *root, struct member *child, const char *tree_path)
{
	struct esky_tree_proc procs[3];
	const char *paths[3] = { root->path, child->path, NULL };
	const struct esky_tree_header *t;
	struct esky_tree_header h;
	struct esky_image *img, *mem, *alone_root, *alone_child, *flat, *plain;
	struct esky_image **chain;
	unsigned char *buf, *mbuf;
	size_t len, mlen, chain_n;
	uint64_t off1;
	struct stat st;
	char *text, *flat_path = path_of("flat.img"), line[300];
	int fd, ret;

	tree_procs(procs);
	esky_error_clear();
	must(esky_image_tree_write(tree_path, procs, 3, paths), "esky_image_tree_write");
	CHECK_U64("the caller's table untouched (offset)", procs[0].offset, 12345);
	CHECK(stat(tree_path, &st) == 0 && (st.st_mode & 0777) == 0600,
	      "tree file: expected mode 0600, found 0%o", st.st_mode & 0777);
	CHECK(count_temporaries(true) == 0, "a temporary file is left after esky_image_tree_write");
	CHECK(access(root->path, F_OK) == 0 && access(child->path, F_OK) == 0,
	      "the member files were removed");

	/* The file as the format says. */
	read_whole(tree_path, &buf, &len);
	memcpy(&h, buf, sizeof(h));
	off1 = page_up(PAGE + file_size(root->path));
	CHECK(!memcmp(h.magic, ESKY_TREE_MAGIC, 8), "tree magic");
	CHECK_U64("tree version", h.version, ESKY_TREE_VERSION);
	CHECK_U64("tree proc_n", h.proc_n, 3);
	CHECK_U64("tree file_size", h.file_size, len);
	CHECK_U64("tree checksum", h.checksum,
		  esky_hash64(&h, offsetof(struct esky_tree_header, checksum),
			      ESKY_IMG_CHECKSUM_SEED));
	CHECK_U64("root offset", h.procs[0].offset, PAGE);
	CHECK_U64("root size", h.procs[0].size, file_size(root->path));
	CHECK_U64("child offset", h.procs[1].offset, off1);
	CHECK_U64("child size", h.procs[1].size, file_size(child->path));
	CHECK(off1 > PAGE + h.procs[0].size, "the root's image ends on a page boundary: the test "
	      "needs padding after it");
	CHECK_U64("zombie offset", h.procs[2].offset, 0);
	CHECK_U64("zombie size", h.procs[2].size, 0);
	CHECK_U64("zombie status", (uint32_t)h.procs[2].status, ZOMBIE_STATUS);
	CHECK_U64("zombie flags", h.procs[2].flags, ESKY_TREE_ZOMBIE);
	CHECK_U64("child ppid", h.procs[1].ppid, ROOT_PID);
	CHECK_U64("zombie pgid", h.procs[2].pgid, CHILD_PID);
	CHECK_U64("root sid", h.procs[0].sid, 4000);
	CHECK_U64("end of the child's image", off1 + h.procs[1].size, len);
	read_whole(root->path, &mbuf, &mlen);
	CHECK(mlen == h.procs[0].size && !memcmp(buf + PAGE, mbuf, mlen),
	      "the root's image differs from its member file");
	free(mbuf);
	read_whole(child->path, &mbuf, &mlen);
	CHECK(mlen == h.procs[1].size && off1 + mlen <= len && !memcmp(buf + off1, mbuf, mlen),
	      "the child's image differs from its member file");
	free(mbuf);
	for (uint64_t p = PAGE + h.procs[0].size; p < off1; p++)
		CHECK(buf[p] == 0, "padding byte at %" PRIu64 " is %u", p, buf[p]);
	free(buf);

	/* Read back: the root. */
	must(esky_image_open(root->path, &alone_root), "esky_image_open (root alone)");
	must(esky_image_open(child->path, &alone_child), "esky_image_open (child alone)");
	CHECK(esky_image_tree(alone_root) == NULL, "esky_image_tree of a plain image is not NULL");
	esky_error_clear();
	must(esky_image_open(tree_path, &img), "esky_image_open (tree)");
	t = esky_image_tree(img);
	CHECK(t && !memcmp(t, &h, sizeof(h)), "esky_image_tree: not the file's table");
	check_same_view(img, alone_root, tree_path, PAGE, "root");
	check_pages_read(img, root, "root");

	/* The child: a member outlives the root it was opened from. */
	must(esky_image_open_member(img, 1, &mem), "esky_image_open_member 1");
	esky_image_close(img);
	t = esky_image_tree(mem);
	CHECK(t && !memcmp(t, &h, sizeof(h)), "esky_image_tree of a member: not the file's table");
	check_same_view(mem, alone_child, tree_path, off1, "child");
	check_pages_read(mem, child, "child");
	/* Member 0 is the root again. */
	must(esky_image_open_member(mem, 0, &img), "esky_image_open_member 0");
	check_same_view(img, alone_root, tree_path, PAGE, "root as member 0");
	esky_image_close(img);

	/* Refusals. */
	esky_error_clear();
	ret = esky_image_open_member(mem, 2, &img);
	CHECK_U64("open_member of the zombie", ret, (uint64_t)-EINVAL);
	snprintf(line, sizeof(line), "%s: process %u is a zombie: it has no image", tree_path,
		 ZOMBIE_PID);
	CHECK_STR("open_member of the zombie: message", esky_last_error(), line);
	esky_error_clear();
	ret = esky_image_open_member(mem, 3, &img);
	CHECK_U64("open_member beyond the table", ret, (uint64_t)-EINVAL);
	snprintf(line, sizeof(line), "%s: no process 3 in the tree (it has 3)", tree_path);
	CHECK_STR("open_member beyond the table: message", esky_last_error(), line);
	esky_error_clear();
	ret = esky_image_open_member(alone_root, 0, &img);
	CHECK_U64("open_member of a plain image", ret, (uint64_t)-EINVAL);
	snprintf(line, sizeof(line), "%s: not a process tree: it has no process 0", root->path);
	CHECK_STR("open_member of a plain image: message", esky_last_error(), line);
	esky_image_close(mem);

	/* From an fd, as a chain, exported. */
	fd = open(tree_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		harness_error("%s: %s", tree_path, strerror(errno));
	must(esky_image_open_fd(fd, "by-fd", &img), "esky_image_open_fd (tree)");
	close(fd);
	check_same_view(img, alone_root, "by-fd", PAGE, "root by fd");
	esky_image_close(img);
	must(esky_image_open_chain(tree_path, &chain, &chain_n), "esky_image_open_chain (tree)");
	CHECK_U64("chain of a tree", chain_n, 1);
	must(esky_image_flatten(chain, chain_n, flat_path), "esky_image_flatten (tree)");
	esky_image_close_chain(chain, chain_n);
	must(esky_image_open(flat_path, &flat), "esky_image_open (exported root)");
	CHECK(esky_image_tree(flat) == NULL, "the export of a tree's root is a tree");
	check_pages_read(flat, root, "exported root");
	esky_image_close(flat);
	unlink(flat_path);

	/* esky info. */
	must(esky_image_open(tree_path, &img), "esky_image_open (tree)");
	text = describe(img, false);
	snprintf(line, sizeof(line), "\nprocesses   3: %u (root), %u (child of %u), %u (zombie of %u, "
		 "exit status 3)\n", ROOT_PID, CHILD_PID, ROOT_PID, ZOMBIE_PID, CHILD_PID);
	CHECK(strstr(text, line), "esky info: expected the line \"%.*s\", found:\n%s",
	      (int)strlen(line) - 2, line + 1, text);
	snprintf(line, sizeof(line), "command     root\nprocesses   3:");
	CHECK(strstr(text, line), "esky info: the processes line does not follow the program's "
	      "lines:\n%s", text);
	CHECK(count_str(text, "program     ") == 1, "esky info without -v: %u program lines",
	      count_str(text, "program     "));
	free(text);
	text = describe(img, true);
	snprintf(line, sizeof(line), "process     %u (child of %u): image of ", CHILD_PID, ROOT_PID);
	CHECK(strstr(text, line), "esky info -v: no line \"%s\" for the child:\n%s", line, text);
	snprintf(line, sizeof(line), "(pid %u, child)", CHILD_PID);
	CHECK(strstr(text, line), "esky info -v: the child's image is not described:\n%s", text);
	CHECK(count_str(text, "program     ") == 2, "esky info -v: %u program lines, expected 2",
	      count_str(text, "program     "));
	CHECK(count_str(text, "processes   ") == 1, "esky info -v: %u processes lines, expected 1",
	      count_str(text, "processes   "));
	free(text);
	esky_image_close(img);
	/* A plain image's description has no processes line. */
	must(esky_image_open(root->path, &plain), "esky_image_open (root alone)");
	text = describe(plain, true);
	CHECK(!strstr(text, "processes"), "esky info of a plain image lists processes:\n%s", text);
	free(text);
	esky_image_close(plain);

	/* A zombie killed by a signal, with a core. */
	{
		char *k = path_of("killed.tree");

		procs[2].status = 9 | 0x80;
		must(esky_image_tree_write(k, procs, 3, paths), "esky_image_tree_write (killed)");
		must(esky_image_open(k, &img), "esky_image_open (killed)");
		text = describe(img, false);
		snprintf(line, sizeof(line), "%u (zombie of %u, killed by SIGKILL, core dumped)\n",
			 ZOMBIE_PID, CHILD_PID);
		CHECK(strstr(text, line), "esky info: expected \"%s\", found:\n%s", line, text);
		free(text);
		esky_image_close(img);
		unlink(k);
		free(k);
	}
	/* A tree of the root alone. */
	{
		char *k = path_of("alone.tree");

		must(esky_image_tree_write(k, procs, 1, paths), "esky_image_tree_write (root alone)");
		must(esky_image_open(k, &img), "esky_image_open (root alone)");
		CHECK(esky_image_tree(img) && esky_image_tree(img)->proc_n == 1,
		      "a tree of one process");
		CHECK_U64("a tree of one process: file size", file_size(k),
			  PAGE + file_size(root->path));
		esky_image_close(img);
		unlink(k);
		free(k);
	}
	esky_image_close(alone_root);
	esky_image_close(alone_child);
	free(flat_path);
}

/* ---- the writer's refusals ---- */

static void expect_write_error_at(int line, const char *path, const struct esky_tree_proc *procs,
				  size_t n, const char *const *paths, int err, const char *expected)
{
	unsigned char *before, *after;
	size_t blen, alen;
	int ret;

	write_whole(path, "precious", 8);
	esky_error_clear();
	ret = esky_image_tree_write(path, procs, n, paths);
	checks++;
	if (ret != err)
		fail_at(__FILE__, line, "tree_write: expected %d, found %d", err, ret);
	checks++;
	if (!esky_last_error() || strcmp(esky_last_error(), expected))
		fail_at(__FILE__, line, "tree_write: expected message \"%s\", found \"%s\"", expected,
			esky_last_error() ? esky_last_error() : "(none)");
	read_whole(path, &after, &alen);
	before = (unsigned char *)"precious";
	blen = 8;
	checks++;
	if (alen != blen || memcmp(before, after, blen))
		fail_at(__FILE__, line, "tree_write failed but changed %s", path);
	free(after);
	checks++;
	if (count_temporaries(true))
		fail_at(__FILE__, line, "tree_write failed and left a temporary file");
}

#define expect_write_error(path, procs, n, paths, err, ...)                        \
	do {                                                                       \
		char e_[1200];                                                     \
		snprintf(e_, sizeof(e_), __VA_ARGS__);                             \
		expect_write_error_at(__LINE__, path, procs, n, paths, err, e_);   \
	} while (0)

static void test_writer(struct member *root, struct member *child, const char *tree_path)
{
	char *out = path_of("refused.tree"), *missing = path_of("missing.img");
	struct esky_tree_proc procs[3], p[3];
	const char *paths[3] = { root->path, child->path, NULL };
	const char *bad[3];

	tree_procs(procs);
	expect_write_error(out, procs, 0, paths, -EINVAL,
			   "cannot write %s: a process tree of 0 processes (1 to 80)", out);
	expect_write_error(out, procs, 81, paths, -EINVAL,
			   "cannot write %s: a process tree of 81 processes (1 to 80)", out);
	bad[0] = root->path;
	bad[1] = child->path;
	bad[2] = child->path;
	expect_write_error(out, procs, 3, bad, -EINVAL,
			   "cannot write %s: process %u is a zombie but has an image", out,
			   ZOMBIE_PID);
	bad[1] = NULL;
	bad[2] = NULL;
	expect_write_error(out, procs, 3, bad, -EINVAL,
			   "cannot write %s: process %u is alive but has no image", out, CHILD_PID);
	bad[1] = missing;
	expect_write_error(out, procs, 3, bad, -ENOENT, "%s: No such file or directory", missing);
	bad[1] = tree_path;
	expect_write_error(out, procs, 3, bad, -EINVAL,
			   "cannot write %s: %s is a process tree, not the image of one process",
			   out, tree_path);
	bad[1] = root->path;
	expect_write_error(out, procs, 3, bad, -EINVAL,
			   "cannot write %s: %s is the image of pid %u, not of process %u", out,
			   root->path, ROOT_PID, CHILD_PID);
	/* The table's own checks, as the reader's. */
	memcpy(p, procs, sizeof(p));
	p[2].pid = CHILD_PID;
	expect_write_error(out, p, 3, paths, -EINVAL,
			   "cannot write %s: two processes have pid %u", out, CHILD_PID);
	memcpy(p, procs, sizeof(p));
	p[1].ppid = 999;
	expect_write_error(out, p, 3, paths, -EINVAL,
			   "cannot write %s: process %u has parent 999, which is not in the table",
			   out, CHILD_PID);
	memcpy(p, procs, sizeof(p));
	p[2].status = 0x137f; /* stopped by SIGSTOP: not a zombie's */
	expect_write_error(out, p, 3, paths, -EINVAL,
			   "cannot write %s: zombie %u has wait status 0x137f (neither an exit "
			   "nor a kill)", out, ZOMBIE_PID);
	memcpy(p, procs, sizeof(p));
	p[0].flags = ESKY_TREE_ZOMBIE;
	bad[0] = NULL;
	bad[1] = child->path;
	expect_write_error(out, p, 3, bad, -EINVAL,
			   "cannot write %s: the root, process %u, is a zombie", out, ROOT_PID);
	memcpy(p, procs, sizeof(p));
	p[0].ppid = 1;
	expect_write_error(out, p, 3, paths, -EINVAL,
			   "cannot write %s: the root, process %u, has parent 1 (a root's is 0)",
			   out, ROOT_PID);
	unlink(out);
	free(out);
	free(missing);
}

/* ---- damage ---- */

static void reseal(unsigned char *buf)
{
	struct esky_tree_header *h = (struct esky_tree_header *)buf;

	h->checksum = esky_hash64(h, offsetof(struct esky_tree_header, checksum),
				  ESKY_IMG_CHECKSUM_SEED);
}

/* Recompute the checksums of the image at off (its sections' and its header's). */
static void reseal_image(unsigned char *buf, size_t len, uint64_t off)
{
	struct esky_img_header *h = (struct esky_img_header *)(buf + off);

	for (unsigned i = 0; i < h->section_n && i < ESKY_IMG_MAX_SECTIONS; i++) {
		struct esky_img_section *s = &h->sections[i];

		if (s->type != ESKY_SEC_PAGES && off + s->offset + s->size <= len)
			s->checksum = esky_hash64(buf + off + s->offset, s->size,
						  ESKY_IMG_CHECKSUM_SEED);
	}
	h->checksum = esky_hash64(h, offsetof(struct esky_img_header, checksum),
				  ESKY_IMG_CHECKSUM_SEED);
}

/* Copy of the tree file to edit, its header at h. */
struct edit {
	unsigned char *buf;
	size_t len;
	struct esky_tree_header *h;
};

static void edit_start(struct edit *e, const unsigned char *orig, size_t len)
{
	e->buf = xmalloc(len + 2 * PAGE);
	memcpy(e->buf, orig, len);
	e->len = len;
	e->h = (struct esky_tree_header *)e->buf;
}

static void edit_write(struct edit *e, const char *path, bool reseal_it)
{
	if (reseal_it)
		reseal(e->buf);
	write_whole(path, e->buf, e->len);
	free(e->buf);
}

static const struct esky_img_section *find_section(const unsigned char *img, uint32_t type)
{
	const struct esky_img_header *h = (const struct esky_img_header *)img;

	for (unsigned i = 0; i < h->section_n; i++)
		if (h->sections[i].type == type)
			return &h->sections[i];
	harness_error("no section %s", esky_image_section_name(type));
}

static void test_damage(const char *tree_path)
{
	char *d = path_of("damaged.tree");
	unsigned char *orig;
	size_t len;
	struct edit e;
	const struct esky_tree_header *oh;
	uint64_t off1, end0;

	read_whole(tree_path, &orig, &len);
	oh = (const struct esky_tree_header *)orig;
	off1 = oh->procs[1].offset;
	end0 = oh->procs[0].offset + oh->procs[0].size;

	/* The header. */
	edit_start(&e, orig, len);
	memcpy(e.h->magic, "\x89" "ESKYTRX", 8);
	edit_write(&e, d, true);
	expect_open_error(d, "%s: not an esky checkpoint", d);
	edit_start(&e, orig, len);
	e.h->version = 2;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: process tree format version 2; this esky reads 1", d);
	edit_start(&e, orig, len);
	e.buf[100] ^= 1;
	edit_write(&e, d, false);
	expect_open_error(d, "%s: damaged: header checksum mismatch", d);
	edit_start(&e, orig, len);
	e.h->checksum ^= 1ULL << 63;
	edit_write(&e, d, false);
	expect_open_error(d, "%s: damaged: header checksum mismatch", d);
	edit_start(&e, orig, len);
	e.h->proc_n = 0;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: 0 processes in the table (1 to 80)", d);
	edit_start(&e, orig, len);
	e.h->proc_n = 81;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: 81 processes in the table (1 to 80)", d);
	edit_start(&e, orig, len);
	e.h->reserved[1] = 1;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: reserved header fields are not zero", d);
	edit_start(&e, orig, len);
	e.h->procs[3].sid = 5;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: unused process table entry 3 is not zero", d);
	edit_start(&e, orig, len);
	e.h->pad[sizeof(e.h->pad) - 1] = 1;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: non-zero padding in the header", d);
	edit_start(&e, orig, len);
	e.h->file_size += 1;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: truncated: %zu bytes, the header says %zu", d, len, len + 1);

	/* The table. */
	edit_start(&e, orig, len);
	e.h->procs[1].pid = 0;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: process table entry 1 has pid 0", d);
	edit_start(&e, orig, len);
	e.h->procs[2].pid = ROOT_PID;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: two processes have pid %u", d, ROOT_PID);
	edit_start(&e, orig, len);
	e.h->procs[1].flags = 0x4;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: process %u has flags 0x4", d, CHILD_PID);
	edit_start(&e, orig, len);
	e.h->procs[2].flags |= ESKY_TREE_STOPPED; /* a zombie cannot be stopped */
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: process %u has flags 0x3", d, ZOMBIE_PID);
	edit_start(&e, orig, len);
	e.h->procs[2].reserved = 1;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: process %u has a reserved field that is not zero", d,
			  ZOMBIE_PID);
	edit_start(&e, orig, len);
	e.h->procs[0].flags = ESKY_TREE_ZOMBIE;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: the root, process %u, is a zombie", d, ROOT_PID);
	edit_start(&e, orig, len);
	e.h->procs[2].offset = 4096;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: zombie %u has an image (0 bytes at 4096)", d, ZOMBIE_PID);
	edit_start(&e, orig, len);
	e.h->procs[2].size = 1;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: zombie %u has an image (1 bytes at 0)", d, ZOMBIE_PID);
	edit_start(&e, orig, len);
	e.h->procs[2].status = 0x137f;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: zombie %u has wait status 0x137f (neither an exit nor a "
			  "kill)", d, ZOMBIE_PID);
	edit_start(&e, orig, len);
	e.h->procs[1].status = 9;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: live process %u has wait status 0x9", d, CHILD_PID);
	edit_start(&e, orig, len);
	e.h->procs[1].offset += 8;
	e.h->procs[1].size -= 8;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: the image of process %u at %" PRIu64 " is not "
			  "4096-aligned", d, CHILD_PID, off1 + 8);
	edit_start(&e, orig, len);
	e.h->procs[1].size = 100;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: the image of process %u has 100 bytes, less than an "
			  "image header", d, CHILD_PID);
	edit_start(&e, orig, len);
	e.h->procs[1].size += PAGE;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: the image of process %u (%" PRIu64 " bytes at %" PRIu64
			  ") lies beyond the end of the file", d, CHILD_PID,
			  oh->procs[1].size + PAGE, off1);
	edit_start(&e, orig, len);
	e.h->procs[1].offset = UINT64_MAX - PAGE + 1;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: the image of process %u (%" PRIu64 " bytes at %" PRIu64
			  ") lies beyond the end of the file", d, CHILD_PID, oh->procs[1].size,
			  UINT64_MAX - PAGE + 1);
	edit_start(&e, orig, len);
	e.h->procs[1].offset = PAGE;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: the image of process %u at 4096 overlaps what comes "
			  "before it (up to %" PRIu64 ")", d, CHILD_PID, end0);
	edit_start(&e, orig, len);
	e.h->procs[1].offset += PAGE;
	e.h->procs[1].size -= PAGE;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: %" PRIu64 " stray bytes before the image of process %u",
			  d, off1 + PAGE - end0, CHILD_PID);
	edit_start(&e, orig, len);
	e.h->procs[1].size -= PAGE;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: 4096 stray bytes after the last image", d);
	edit_start(&e, orig, len);
	e.h->procs[0].ppid = 1;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: the root, process %u, has parent 1 (a root's is 0)", d,
			  ROOT_PID);
	edit_start(&e, orig, len);
	e.h->procs[2].ppid = 999;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: process %u has parent 999, which is not in the table", d,
			  ZOMBIE_PID);
	edit_start(&e, orig, len);
	e.h->procs[1].ppid = ZOMBIE_PID;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: process %u does not descend from the root (its parents "
			  "make a cycle)", d, CHILD_PID);
	edit_start(&e, orig, len);
	e.h->procs[1].ppid = CHILD_PID;
	edit_write(&e, d, true);
	expect_open_error(d, "%s: damaged: process %u does not descend from the root (its parents "
			  "make a cycle)", d, CHILD_PID);

	/* The padding between the images, and bytes after the end. */
	edit_start(&e, orig, len);
	e.buf[off1 - 1] = 0x20;
	edit_write(&e, d, false);
	expect_open_error(d, "%s: damaged: non-zero padding at %" PRIu64, d, off1 - 1);
	edit_start(&e, orig, len);
	e.buf[end0] = 1;
	edit_write(&e, d, false);
	expect_open_error(d, "%s: damaged: non-zero padding at %" PRIu64, d, end0);
	edit_start(&e, orig, len);
	e.len += 8;
	edit_write(&e, d, false);
	expect_open_error(d, "%s: damaged: 8 stray bytes at the end", d);

	/* Truncated. */
	write_whole(d, orig, 5);
	expect_open_error(d, "%s: not an esky checkpoint (5 bytes)", d);
	write_whole(d, orig, 100);
	expect_open_error(d, "%s: truncated: 100 bytes, less than its header", d);
	write_whole(d, orig, ESKY_TREE_HEADER_SIZE);
	expect_open_error(d, "%s: truncated: 4096 bytes, the header says %zu", d, len);
	write_whole(d, orig, len - 1);
	expect_open_error(d, "%s: truncated: %zu bytes, the header says %zu", d, len - 1, len);

	/* Damaged member images: their own messages, naming the file. */
	edit_start(&e, orig, len);
	e.buf[off1 + find_section(orig + off1, ESKY_SEC_VMAS)->offset] ^= 4;
	edit_write(&e, d, false);
	expect_open_error(d, "%s: damaged: VMAS checksum mismatch", d);
	edit_start(&e, orig, len);
	e.buf[PAGE + find_section(orig + PAGE, ESKY_SEC_FDS)->offset] ^= 4;
	edit_write(&e, d, false);
	expect_open_error(d, "%s: damaged: FDS checksum mismatch", d);
	edit_start(&e, orig, len);
	e.buf[off1 + 200] ^= 1;
	edit_write(&e, d, false);
	expect_open_error(d, "%s: damaged: header checksum mismatch", d);
	edit_start(&e, orig, len);
	memcpy(e.buf + off1, "\x89" "ESKYIMX", 8);
	edit_write(&e, d, false);
	expect_open_error(d, "%s: damaged: process %u has no esky image at %" PRIu64, d, CHILD_PID,
			  off1);
	edit_start(&e, orig, len);
	((struct esky_img_header *)(e.buf + off1))->file_size += PAGE;
	reseal_image(e.buf, e.len, off1);
	edit_write(&e, d, false);
	expect_open_error(d, "%s: damaged: the image of process %u has %" PRIu64 " bytes, its "
			  "header says %" PRIu64, d, CHILD_PID, oh->procs[1].size,
			  oh->procs[1].size + PAGE);
	/* The child's image given the root's pid, its checksums right. */
	edit_start(&e, orig, len);
	((struct esky_img_core *)(e.buf + off1 + find_section(orig + off1, ESKY_SEC_CORE)->offset))
		->pid = ROOT_PID + 50;
	reseal_image(e.buf, e.len, off1);
	edit_write(&e, d, false);
	expect_open_error(d, "%s: damaged: the image of process %u is of pid %u", d, CHILD_PID,
			  ROOT_PID + 50);
	/* Page data: found by esky_image_verify_pages of the member, at its file offset. */
	{
		struct esky_image *img, *m;
		const struct esky_img_section *pages = find_section(orig + off1, ESKY_SEC_PAGES);
		char line[400];
		int ret;

		edit_start(&e, orig, len);
		e.buf[off1 + pages->offset + PAGE + 7] ^= 0x10;
		edit_write(&e, d, false);
		esky_error_clear();
		must(esky_image_open(d, &img), "esky_image_open (damaged page data)");
		/* The root stands for the file: its check finds a member's damage too. */
		snprintf(line, sizeof(line), "%s: damaged: page data for 0x%llx (file offset %" PRIu64
			 ") checksum mismatch", d, (unsigned long long)(HEAP + PAGE),
			 off1 + pages->offset + PAGE);
		ret = esky_image_verify_pages(img);
		CHECK_U64("verify_pages of the root, a member damaged", ret, (uint64_t)-EBADMSG);
		CHECK_STR("verify_pages of the root, a member damaged: message", esky_last_error(),
			  line);
		must(esky_image_open_member(img, 1, &m), "esky_image_open_member (damaged page)");
		esky_error_clear();
		ret = esky_image_verify_pages(m);
		CHECK_U64("verify_pages of a damaged member", ret, (uint64_t)-EBADMSG);
		snprintf(line, sizeof(line), "%s: damaged: page data for 0x%llx (file offset %" PRIu64
			 ") checksum mismatch", d, (unsigned long long)(HEAP + PAGE),
			 off1 + pages->offset + PAGE);
		CHECK_STR("verify_pages of a damaged member: message", esky_last_error(), line);
		esky_image_close(m);
		esky_image_close(img);
	}
	free(orig);
	unlink(d);
	free(d);
}

/* ---- fds shared with another process of the tree ---- */

/*
 * An fd of kind PEER or PEER_OBJECT names a live process before its own in
 * the table: the child's naming the root opens; the root's naming itself,
 * the child's naming the zombie or itself are refused.
 */
static void test_peers(const struct member *root)
{
	struct esky_img_fd peer = { .fd = 5, .kind = ESKY_IMG_FD_PEER, .flags = 2, .file = 0,
				    .stdio_src = -1, .dup_of = 0 };
	struct esky_tree_proc procs[3];
	struct member m;
	const char *paths[3] = { root->path, NULL, NULL };
	char *t = path_of("peers.tree");
	struct esky_image *img, *mem;

	tree_procs(procs);
	write_member_fd(&m, "child-peer.img", CHILD_PID, 3, "child", &peer);
	paths[1] = m.path;
	esky_error_clear();
	must(esky_image_tree_write(t, procs, 3, paths), "esky_image_tree_write (peer)");
	esky_error_clear();
	if (esky_image_open(t, &img)) {
		FAIL("a child with an fd of the root's: expected to open, found \"%s\"",
		     esky_last_error() ? esky_last_error() : "no message");
	} else {
		must(esky_image_open_member(img, 1, &mem), "esky_image_open_member (peer)");
		CHECK_U64("the child's fd of the root's: kind", esky_image_view(mem)->fds[1].kind,
			  ESKY_IMG_FD_PEER);
		esky_image_close(mem);
		esky_image_close(img);
	}
	free_member(&m);

	peer.kind = ESKY_IMG_FD_PEER_OBJECT;
	peer.file = 2;
	write_member_fd(&m, "child-peer.img", CHILD_PID, 3, "child", &peer);
	paths[1] = m.path;
	must(esky_image_tree_write(t, procs, 3, paths), "esky_image_tree_write (peer of zombie)");
	expect_open_error(t, "%s: damaged: fd 5 of process %u names process table entry 2, not a "
			  "live process before it", t, CHILD_PID);
	free_member(&m);
	peer.file = 1;
	write_member_fd(&m, "child-peer.img", CHILD_PID, 3, "child", &peer);
	paths[1] = m.path;
	must(esky_image_tree_write(t, procs, 3, paths), "esky_image_tree_write (peer of itself)");
	expect_open_error(t, "%s: damaged: fd 5 of process %u names process table entry 1, not a "
			  "live process before it", t, CHILD_PID);
	free_member(&m);

	peer.kind = ESKY_IMG_FD_PEER;
	peer.file = 0;
	write_member_fd(&m, "root-peer.img", ROOT_PID, 2, "root", &peer);
	paths[0] = m.path;
	must(esky_image_tree_write(t, procs, 1, paths), "esky_image_tree_write (root's peer)");
	expect_open_error(t, "%s: damaged: fd 5 of process %u names process table entry 0, not a "
			  "live process before it", t, ROOT_PID);
	free_member(&m);
	unlink(t);
	free(t);
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
	struct member root, child;
	char *tree_path;
	bool keep = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--keep")) {
			keep = true;
		} else {
			fprintf(stderr, "usage: tree_test [--keep]\n");
			return EXIT_HARNESS;
		}
	}
	snprintf(dir, sizeof(dir), "%s/esky-tree-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "tree_test: harness error: mkdtemp %s: %s\n", dir, strerror(errno));
		return EXIT_HARNESS;
	}
	write_member(&root, "root.img", ROOT_PID, 300, "root");
	write_member(&child, "child.img", CHILD_PID, 37, "child");
	tree_path = path_of("three.tree");
	fprintf(stderr, "round trip\n");
	test_round_trip(&root, &child, tree_path);
	fprintf(stderr, "writer\n");
	test_writer(&root, &child, tree_path);
	fprintf(stderr, "damage\n");
	test_damage(tree_path);
	fprintf(stderr, "fds of other processes\n");
	test_peers(&root);
	free_member(&root);
	free_member(&child);
	free(tree_path);
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
