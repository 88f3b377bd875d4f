/*
 * Checks src/core.c alone (no process, no ptrace, no gdb): images written
 * with the image writer are turned into core files, which are read back
 * with <elf.h> and glibc's <sys/procfs.h>, not with core.c's own structs.
 *
 * 1. every kind of mapping: anonymous memory with stored and zero pages, a
 *    private file mapping with a copied-on-write page, pages from the file,
 *    the file's last partial page and pages past its end, a nonzero pgoff;
 *    the mapping of a file that is gone and of one that changed (pages left
 *    out, one warning each); PROT_NONE, MADV_DONTDUMP, [vvar] (no PT_LOAD),
 *    [vdso] of another kernel (no contents, AT_SYSINFO_EHDR hidden);
 * 2. the notes, in the kernel's order: prstatus (pid, registers, blocked
 *    signals), prpsinfo (name, arguments, ids), auxv, NT_FILE, FXSAVE, and
 *    an AMD Zen XSAVE area (XCR0 0x207, 2440 bytes) moved to Intel's layout;
 * 3. an incremental image: pages from the child and from its parent;
 * 3a. threads (image format 3): after the main thread's notes, each other
 *    thread's NT_PRSTATUS (its tid, registers, blocked and pending
 *    signals) and as many of NT_FPREGSET and NT_X86_XSTATE as its xstate
 *    holds (a Zen area, none, the FXSAVE area alone);
 * 4. [vdso] of this kernel: this process's own vDSO bytes;
 * 5. more than 65534 program headers: PN_XNUM and section header 0;
 * 6. errors: an output in a missing directory, page data gone from under
 *    an open image: -errno, one message, no file, an old file untouched.
 *
 *   core_test [--keep]
 *
 * Works in a fresh directory under $TMPDIR (or /tmp), removed at the end
 * unless --keep or a failure. Exit status: 0 pass, 1 fail, 99 harness
 * error. A failure prints file:line, what was expected and what was found.
 */
#include "core.h"
#include "fileid.h"
#include "image.h"
#include "log.h"
#include "util.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_HARNESS 99
#define PAGE ESKY_IMG_PAGE_SIZE

static unsigned failures, checks;
static char dir[2048];
static char warnings[4096];
static unsigned warning_n;

static void fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	failures++;
	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

#define CHECK(cond, ...)                                      \
	do {                                                  \
		checks++;                                     \
		if (!(cond))                                  \
			fail_at(__FILE__, __LINE__, __VA_ARGS__); \
	} while (0)
#define CHECK_U64(what, got, want)                                                          \
	do {                                                                                \
		uint64_t got_ = (uint64_t)(got), want_ = (uint64_t)(want);                  \
		CHECK(got_ == want_, "%s: expected %#" PRIx64 ", found %#" PRIx64, what, want_, \
		      got_);                                                                \
	} while (0)

static void harness_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void harness_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "core_test: harness error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (%s)\n", esky_last_error() ? esky_last_error() : "no esky error");
	exit(EXIT_HARNESS);
}

static void must(int ret, const char *what)
{
	if (ret)
		harness_error("%s: %s", what, strerror(-ret));
}

static void sink(enum esky_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level != ESKY_LOG_WARN)
		return;
	warning_n++;
	snprintf(warnings + strlen(warnings), sizeof(warnings) - strlen(warnings), "%s\n", msg);
}

static const char *in_dir(const char *name)
{
	static char bufs[4][4096];
	static int k;
	char *b = bufs[k++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

/* Byte i of the mapped test file. */
static unsigned char file_byte(uint64_t i)
{
	return (unsigned char)(i * 7 + 3);
}

/* A page of stored memory: tag, then its page number. */
static void fill_page(unsigned char *p, char tag, unsigned n)
{
	for (unsigned i = 0; i < PAGE; i++)
		p[i] = (unsigned char)(tag + i % 13 + n);
}

static void write_file(const char *path, size_t len)
{
	unsigned char *b = malloc(len);
	int fd;

	if (!b)
		harness_error("out of memory");
	for (size_t i = 0; i < len; i++)
		b[i] = file_byte(i);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || esky_write_all(fd, b, len) || close(fd))
		harness_error("cannot write %s", path);
	free(b);
}

struct vma_spec {
	uint64_t start;
	unsigned pages;
	uint32_t kind, prot, flags;
	int32_t file;
	uint64_t pgoff;
};

#define MAPPED_LEN (3 * PAGE + 100)
enum { F_MAPPED, F_GONE, F_CHANGED, F_N };

static const struct vma_spec full_vmas[] = {
	{ 0x10000, 3, ESKY_IMG_VMA_ANON, 3, 0, -1, 0 },		/* A: pages 0, 2 stored */
	{ 0x20000, 6, ESKY_IMG_VMA_FILE_PRIVATE, 5, 0, F_MAPPED, 0 }, /* B: page 1 stored */
	{ 0x30000, 2, ESKY_IMG_VMA_FILE_PRIVATE, 1, 0, F_GONE, 0 },   /* C: page 1 stored */
	{ 0x40000, 1, ESKY_IMG_VMA_FILE_SHARED, 3, 0, F_CHANGED, 0 }, /* D */
	{ 0x50000, 2, ESKY_IMG_VMA_ANON, 0, 0, -1, 0 },		/* E: PROT_NONE */
	{ 0x60000, 1, ESKY_IMG_VMA_ANON, 3, ESKY_IMG_VMAF_DONTDUMP, -1, 0 }, /* F: stored */
	{ 0x70000, 4, ESKY_IMG_VMA_VVAR, 1, 0, -1, 0 },		/* G */
	{ 0x74000, 2, ESKY_IMG_VMA_VDSO, 5, 0, -1, 0 },		/* H */
	{ 0x80000, 2, ESKY_IMG_VMA_FILE_PRIVATE, 1, 0, F_MAPPED, 2 * PAGE }, /* I */
};

static void add_vmas(struct esky_image_writer *w, const struct vma_spec *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct esky_img_vma m = {
			.start = s[i].start, .end = s[i].start + s[i].pages * PAGE,
			.pgoff = s[i].pgoff, .kind = s[i].kind, .prot = s[i].prot,
			.flags = s[i].flags, .file = s[i].file,
		};

		must(esky_image_add_vma(w, &m), "esky_image_add_vma");
	}
}

static uint64_t regs_of(unsigned i)
{
	return 0x1000 + i * 0x11;
}

/* An AMD Zen XSAVE area: x87, SSE, AVX, PKRU (XCR0 0x207), PKRU at 2432. */
#define ZEN_XSTATE_LEN 2440
static unsigned char zen_xstate[ZEN_XSTATE_LEN];

static void make_zen_xstate(void)
{
	uint64_t xcr0 = 0x207, bv = 0x207;
	uint32_t pkru = 0x55555554;

	for (unsigned i = 0; i < 512; i++)
		zen_xstate[i] = (unsigned char)(i * 3);
	memcpy(zen_xstate + 464, &xcr0, 8);
	memset(zen_xstate + 512, 0, 64);
	memcpy(zen_xstate + 512, &bv, 8);
	for (unsigned i = 576; i < 832; i++)
		zen_xstate[i] = (unsigned char)(0xa0 + i % 16);
	memcpy(zen_xstate + 2432, &pkru, 4);
}

/* Core, xstate, auxv, META's kernel if given, and the test files if with_files. */
static void write_common(struct esky_image_writer *w, const char *kernel, bool with_files)
{
	struct esky_img_core core;
	uint64_t auxv[10] = { AT_SYSINFO_EHDR, 0x74000, AT_PHDR, 0x20040, AT_ENTRY, 0x21000,
			      AT_PAGESZ, PAGE, AT_NULL, 0 };
	const char *names[F_N] = { "mapped.bin", "gone.bin", "changed.bin" };
	int err = 0;
	uint32_t idx;

	memset(&core, 0, sizeof(core));
	core.arch = ESKY_IMG_ARCH_X86_64;
	core.pid = 4242;
	core.uid = 1000;
	core.gid = 1001;
	memcpy(core.comm, "unit", 5);
	for (unsigned i = 0; i < ESKY_IMG_REGS_WORDS; i++)
		core.regs[i] = regs_of(i);
	core.sig_blocked = 0x5;
	core.exe_file = UINT32_MAX;
	core.cmdline = esky_image_add_string(w, "unit --arg", &err);
	must(err, "esky_image_add_string");
	must(esky_image_set_core(w, &core), "esky_image_set_core");
	must(esky_image_set_xstate(w, zen_xstate, sizeof(zen_xstate)), "esky_image_set_xstate");
	must(esky_image_set_auxv(w, auxv, 10), "esky_image_set_auxv");
	if (kernel)
		must(esky_image_add_meta(w, "kernel", kernel), "esky_image_add_meta");
	for (int i = 0; with_files && i < F_N; i++) {
		struct esky_img_file f = { 0 };

		must(esky_fileid_read(in_dir(names[i]), &f), "esky_fileid_read");
		f.path = esky_image_add_string(w, in_dir(names[i]), &err);
		must(err, "esky_image_add_string");
		must(esky_image_add_file(w, &f, &idx), "esky_image_add_file");
	}
}

/* full.img: the mappings of full_vmas and their pages. */
static void write_full(uint8_t id[16])
{
	struct esky_image_writer *w;
	unsigned char pages[3 * PAGE];

	must(esky_image_writer_open(in_dir("full.img"), &w), "esky_image_writer_open");
	write_common(w, NULL, true);
	memcpy(id, esky_image_writer_id(w), 16);
	add_vmas(w, &full_vmas[0], 1);
	fill_page(pages, 'A', 0);
	memset(pages + PAGE, 0, PAGE);
	fill_page(pages + 2 * PAGE, 'A', 2);
	must(esky_image_write_pages(w, 0x10000, pages, 3, true, NULL, NULL, NULL), "write A");
	add_vmas(w, &full_vmas[1], 1);
	fill_page(pages, 'B', 1);
	must(esky_image_write_pages(w, 0x21000, pages, 1, false, NULL, NULL, NULL), "write B");
	add_vmas(w, &full_vmas[2], 1);
	fill_page(pages, 'C', 1);
	must(esky_image_write_pages(w, 0x31000, pages, 1, false, NULL, NULL, NULL), "write C");
	add_vmas(w, &full_vmas[3], 3);
	fill_page(pages, 'F', 0);
	must(esky_image_write_pages(w, 0x60000, pages, 1, true, NULL, NULL, NULL), "write F");
	add_vmas(w, &full_vmas[6], 3);
	must(esky_image_writer_commit(w), "esky_image_writer_commit");
}

/* child.img: A's page 0 and B's page 1 from full.img, A's page 2 its own. */
static void write_child(const uint8_t parent_id[16])
{
	struct esky_image_writer *w;
	unsigned char page[PAGE];

	must(esky_image_writer_open(in_dir("child.img"), &w), "esky_image_writer_open");
	must(esky_image_set_parent(w, parent_id, "full.img"), "esky_image_set_parent");
	write_common(w, NULL, true);
	add_vmas(w, &full_vmas[0], 1);
	must(esky_image_add_parent_pages(w, 0x10000, 1), "parent pages of A");
	fill_page(page, 'a', 2);
	must(esky_image_write_pages(w, 0x12000, page, 1, true, NULL, NULL, NULL), "write A");
	add_vmas(w, &full_vmas[1], 1);
	must(esky_image_add_parent_pages(w, 0x21000, 1), "parent pages of B");
	add_vmas(w, &full_vmas[2], ESKY_ARRAY_SIZE(full_vmas) - 2);
	must(esky_image_writer_commit(w), "esky_image_writer_commit");
}

/* ---- reading a core back ---- */

struct core_file {
	unsigned char *data;
	size_t len;
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
	size_t phnum;
	mode_t mode;
};

static bool read_core(const char *path, struct core_file *cf)
{
	struct stat st;

	memset(cf, 0, sizeof(*cf));
	if (stat(path, &st) < 0) {
		CHECK(0, "%s: not written: %s", path, strerror(errno));
		return false;
	}
	cf->mode = st.st_mode & 07777;
	if (esky_read_file(path, (char **)&cf->data, &cf->len))
		harness_error("cannot read %s", path);
	if (cf->len < sizeof(Elf64_Ehdr)) {
		CHECK(0, "%s: %zu bytes, too short for an ELF header", path, cf->len);
		return false;
	}
	cf->eh = (Elf64_Ehdr *)cf->data;
	cf->phnum = cf->eh->e_phnum;
	if (cf->eh->e_phnum == PN_XNUM && cf->eh->e_shoff + sizeof(Elf64_Shdr) <= cf->len)
		cf->phnum = ((Elf64_Shdr *)(cf->data + cf->eh->e_shoff))->sh_info;
	if (cf->eh->e_phoff + cf->phnum * sizeof(Elf64_Phdr) > cf->len) {
		CHECK(0, "%s: program headers past the end", path);
		return false;
	}
	cf->ph = (Elf64_Phdr *)(cf->data + cf->eh->e_phoff);
	return true;
}

/* The PT_LOAD at vaddr, or NULL. */
static const Elf64_Phdr *load_at(const struct core_file *cf, uint64_t vaddr)
{
	for (size_t i = 0; i < cf->phnum; i++)
		if (cf->ph[i].p_type == PT_LOAD && cf->ph[i].p_vaddr == vaddr)
			return &cf->ph[i];
	return NULL;
}

/* The core's bytes of the page at vaddr, or NULL if it has none. */
static const unsigned char *page_at(const struct core_file *cf, uint64_t vaddr)
{
	for (size_t i = 0; i < cf->phnum; i++) {
		const Elf64_Phdr *p = &cf->ph[i];

		if (p->p_type == PT_LOAD && vaddr >= p->p_vaddr &&
		    vaddr + PAGE <= p->p_vaddr + p->p_filesz && p->p_offset + p->p_filesz <= cf->len)
			return cf->data + p->p_offset + (vaddr - p->p_vaddr);
	}
	return NULL;
}

static void check_stored_page(const struct core_file *cf, uint64_t vaddr, char tag, unsigned n)
{
	const unsigned char *got = page_at(cf, vaddr);
	unsigned char want[PAGE];

	fill_page(want, tag, n);
	CHECK(got && !memcmp(got, want, PAGE), "page %#" PRIx64 ": expected the stored page '%c' %u, %s",
	      vaddr, tag, n, got ? "found other bytes" : "not in the core");
}

/* The page at vaddr holds the file's bytes from off (zero past MAPPED_LEN). */
static void check_file_page(const struct core_file *cf, uint64_t vaddr, uint64_t off)
{
	const unsigned char *got = page_at(cf, vaddr);
	size_t bad = PAGE;

	for (size_t i = 0; got && i < PAGE && bad == PAGE; i++)
		if (got[i] != (off + i < MAPPED_LEN ? file_byte(off + i) : 0))
			bad = i;
	CHECK(got && bad == PAGE, "page %#" PRIx64 ": expected the file's bytes at %#" PRIx64 ", %s %zu",
	      vaddr, off, got ? "differs at byte" : "not in the core", got ? bad : 0);
}

static void check_zero_page(const struct core_file *cf, uint64_t vaddr)
{
	static const unsigned char zero[PAGE];
	const unsigned char *got = page_at(cf, vaddr);

	CHECK(got && !memcmp(got, zero, PAGE), "page %#" PRIx64 ": expected zeros, %s", vaddr,
	      got ? "found other bytes" : "not in the core");
}

struct expect_load {
	uint64_t vaddr, filesz, memsz;
	uint32_t flags;
};

struct note {
	const char *name;
	uint32_t type;
	const unsigned char *desc;
	size_t len;
};

/*
 * Word i of a note's descriptor. Notes are aligned to 4 bytes in a core
 * file (the kernel's too), so a descriptor of 8-byte words may sit at an
 * address that is not a multiple of 8: no uint64_t pointer into it (UBSan:
 * misaligned load).
 */
static uint64_t desc_word(const unsigned char *desc, size_t i)
{
	uint64_t v;

	memcpy(&v, desc + i * sizeof(v), sizeof(v));
	return v;
}

static size_t read_notes(const struct core_file *cf, struct note *out, size_t max)
{
	const Elf64_Phdr *p = &cf->ph[0];
	size_t off = p->p_offset, end = p->p_offset + p->p_filesz, n = 0;

	CHECK_U64("program header 0 type", p->p_type, PT_NOTE);
	if (p->p_type != PT_NOTE || end > cf->len)
		return 0;
	while (off + sizeof(Elf64_Nhdr) <= end && n < max) {
		const Elf64_Nhdr *nh = (const Elf64_Nhdr *)(cf->data + off);
		size_t name_off = off + sizeof(*nh);
		size_t desc_off = name_off + ESKY_ALIGN_UP((size_t)nh->n_namesz, 4);

		if (desc_off + nh->n_descsz > end || !nh->n_namesz ||
		    cf->data[name_off + nh->n_namesz - 1]) {
			CHECK(0, "note %zu is malformed", n);
			break;
		}
		out[n++] = (struct note){ (const char *)cf->data + name_off, nh->n_type,
					  cf->data + desc_off, nh->n_descsz };
		off = desc_off + ESKY_ALIGN_UP((size_t)nh->n_descsz, 4);
	}
	CHECK_U64("end of the notes", off, end);
	return n;
}

static void check_notes(const struct core_file *cf)
{
	static const struct {
		const char *name;
		uint32_t type;
		size_t len; /* 0: any */
	} want[] = {
		{ "CORE", NT_PRSTATUS, sizeof(struct elf_prstatus) },
		{ "CORE", NT_PRPSINFO, sizeof(struct elf_prpsinfo) },
		{ "CORE", NT_AUXV, 0 },
		{ "CORE", NT_FILE, 0 },
		{ "CORE", NT_FPREGSET, 512 },
		{ "LINUX", NT_X86_XSTATE, 2696 },
	};
	struct note notes[16];
	size_t n = read_notes(cf, notes, 16);
	struct elf_prstatus st;
	struct elf_prpsinfo ps;
	const unsigned char *w;
	const char *name;
	uint32_t pkru = 0;

	CHECK_U64("number of notes", n, ESKY_ARRAY_SIZE(want));
	if (n != ESKY_ARRAY_SIZE(want))
		return;
	for (size_t i = 0; i < n; i++) {
		CHECK(!strcmp(notes[i].name, want[i].name) && notes[i].type == want[i].type,
		      "note %zu: expected %s type %#x, found %s type %#x", i, want[i].name,
		      want[i].type, notes[i].name, notes[i].type);
		CHECK(!want[i].len || notes[i].len == want[i].len,
		      "note %zu: expected %zu bytes, found %zu", i, want[i].len, notes[i].len);
	}

	memcpy(&st, notes[0].desc, sizeof(st));
	CHECK_U64("pr_pid", st.pr_pid, 4242);
	CHECK_U64("pr_cursig (no signal)", st.pr_cursig, 0);
	CHECK_U64("pr_sighold", st.pr_sighold, 0x5);
	CHECK_U64("pr_fpvalid", st.pr_fpvalid, 1);
	for (unsigned i = 0; i < ESKY_IMG_REGS_WORDS; i++)
		CHECK(st.pr_reg[i] == regs_of(i), "pr_reg[%u]: expected %#" PRIx64 ", found %#llx",
		      i, regs_of(i), (unsigned long long)st.pr_reg[i]);

	memcpy(&ps, notes[1].desc, sizeof(ps));
	CHECK(!strcmp(ps.pr_fname, "unit"), "pr_fname: expected unit, found %.16s", ps.pr_fname);
	CHECK(!strcmp(ps.pr_psargs, "unit --arg"), "pr_psargs: expected 'unit --arg', found '%.80s'",
	      ps.pr_psargs);
	CHECK_U64("pr_uid", ps.pr_uid, 1000);
	CHECK_U64("pr_gid", ps.pr_gid, 1001);
	CHECK_U64("pr_pid", ps.pr_pid, 4242);
	CHECK_U64("pr_sname", ps.pr_sname, 'T');

	/* [vdso] is not in this core: AT_SYSINFO_EHDR is hidden, the rest where it was. */
	w = notes[2].desc;
	CHECK_U64("auxv bytes", notes[2].len, 10 * 8);
	CHECK_U64("auxv[0] (AT_SYSINFO_EHDR hidden)", desc_word(w, 0), AT_IGNORE);
	CHECK_U64("auxv[2]", desc_word(w, 2), AT_PHDR);
	CHECK_U64("auxv[3]", desc_word(w, 3), 0x20040);
	CHECK_U64("auxv[4]", desc_word(w, 4), AT_ENTRY);
	CHECK_U64("auxv[5]", desc_word(w, 5), 0x21000);
	CHECK_U64("auxv[8] (AT_NULL)", desc_word(w, 8), AT_NULL);

	/* NT_FILE: B, C, D, I in address order; pgoff in pages. */
	w = notes[3].desc;
	CHECK_U64("NT_FILE count", desc_word(w, 0), 4);
	CHECK_U64("NT_FILE page size", desc_word(w, 1), PAGE);
	if (desc_word(w, 0) == 4) {
		static const uint64_t rec[4][3] = { { 0x20000, 0x26000, 0 },
						    { 0x30000, 0x32000, 0 },
						    { 0x40000, 0x41000, 0 },
						    { 0x80000, 0x82000, 2 } };
		const char *paths[4] = { "mapped.bin", "gone.bin", "changed.bin", "mapped.bin" };

		for (int i = 0; i < 4; i++)
			for (int k = 0; k < 3; k++)
				CHECK_U64("NT_FILE record", desc_word(w, 2 + 3 * i + k), rec[i][k]);
		name = (const char *)(w + 14 * 8);
		for (int i = 0; i < 4; i++) {
			CHECK(!strcmp(name, in_dir(paths[i])), "NT_FILE name %d: expected %s, found %s",
			      i, in_dir(paths[i]), name);
			name += strlen(name) + 1;
		}
		CHECK_U64("NT_FILE length", (size_t)((const unsigned char *)name - notes[3].desc),
			  notes[3].len);
	}

	CHECK(!memcmp(notes[4].desc, zen_xstate, 512), "NT_FPREGSET is not the FXSAVE area");
	/* Intel's layout: AVX at 576 as on Zen, PKRU moved from 2432 to 2688. */
	CHECK(!memcmp(notes[5].desc, zen_xstate, 832), "XSTATE: legacy area, header or AVX differ");
	for (size_t i = 832; i < 2688; i++)
		if (notes[5].desc[i]) {
			CHECK(0, "XSTATE: byte %zu (MPX, AVX-512 areas) is %#x, not 0", i,
			      notes[5].desc[i]);
			break;
		}
	memcpy(&pkru, notes[5].desc + 2688, 4);
	CHECK_U64("XSTATE: PKRU at 2688", pkru, 0x55555554);
}

static void check_full(const char *core_path)
{
	static const struct expect_load want[] = {
		{ 0x10000, 0x3000, 0x3000, PF_R | PF_W }, /* A: holes are zero */
		{ 0x20000, 0x4000, 0x6000, PF_R | PF_X }, /* B: 2 pages past the file's end */
		{ 0x30000, 0, 0x1000, PF_R },		  /* C: file gone */
		{ 0x31000, 0x1000, 0x1000, PF_R },	  /*    its stored page */
		{ 0x40000, 0, 0x1000, PF_R | PF_W },	  /* D: file changed */
		{ 0x50000, 0, 0x2000, 0 },		  /* E: PROT_NONE */
		{ 0x60000, 0, 0x1000, PF_R | PF_W },	  /* F: DONTDUMP */
		{ 0x74000, 0, 0x2000, PF_R | PF_X },	  /* H: vDSO of another kernel */
		{ 0x80000, 0x2000, 0x2000, PF_R },	  /* I: pgoff 2 pages */
	};
	struct core_file cf;
	uint64_t prev_end = 0;

	if (!read_core(core_path, &cf))
		return;
	CHECK(!memcmp(cf.eh->e_ident, ELFMAG, SELFMAG), "not an ELF file");
	CHECK_U64("EI_CLASS", cf.eh->e_ident[EI_CLASS], ELFCLASS64);
	CHECK_U64("e_type", cf.eh->e_type, ET_CORE);
	CHECK_U64("e_machine", cf.eh->e_machine, EM_X86_64);
	CHECK_U64("e_phentsize", cf.eh->e_phentsize, sizeof(Elf64_Phdr));
	CHECK_U64("mode", cf.mode, 0600);
	CHECK_U64("program headers", cf.phnum, 1 + ESKY_ARRAY_SIZE(want));
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(want) && i + 1 < cf.phnum; i++) {
		const Elf64_Phdr *p = &cf.ph[i + 1];

		CHECK(p->p_type == PT_LOAD && p->p_vaddr == want[i].vaddr &&
			      p->p_filesz == want[i].filesz && p->p_memsz == want[i].memsz &&
			      p->p_flags == want[i].flags,
		      "PT_LOAD %zu: expected vaddr %#" PRIx64 " filesz %#" PRIx64 " memsz %#" PRIx64
		      " flags %u, found type %u vaddr %#" PRIx64 " filesz %#" PRIx64
		      " memsz %#" PRIx64 " flags %u",
		      i, want[i].vaddr, want[i].filesz, want[i].memsz, want[i].flags, p->p_type,
		      (uint64_t)p->p_vaddr, (uint64_t)p->p_filesz, (uint64_t)p->p_memsz, p->p_flags);
		CHECK(p->p_offset % PAGE == 0 && p->p_offset >= prev_end,
		      "PT_LOAD %zu: offset %#" PRIx64 " not aligned or overlapping", i,
		      (uint64_t)p->p_offset);
		prev_end = p->p_offset + p->p_filesz;
	}
	CHECK_U64("file size", cf.len, prev_end);

	check_stored_page(&cf, 0x10000, 'A', 0);
	check_zero_page(&cf, 0x11000);
	check_stored_page(&cf, 0x12000, 'A', 2);
	check_file_page(&cf, 0x20000, 0);
	check_stored_page(&cf, 0x21000, 'B', 1);
	check_file_page(&cf, 0x22000, 2 * PAGE);
	check_file_page(&cf, 0x23000, 3 * PAGE); /* 100 bytes, then zero */
	check_stored_page(&cf, 0x31000, 'C', 1);
	check_file_page(&cf, 0x80000, 2 * PAGE);
	check_file_page(&cf, 0x81000, 3 * PAGE);
	check_notes(&cf);
	free(cf.data);
}

static void check_child(const char *core_path)
{
	struct core_file cf;

	if (!read_core(core_path, &cf))
		return;
	check_stored_page(&cf, 0x10000, 'A', 0); /* the parent's */
	check_zero_page(&cf, 0x11000);
	check_stored_page(&cf, 0x12000, 'a', 2); /* the child's own */
	check_stored_page(&cf, 0x21000, 'B', 1); /* the parent's */
	check_file_page(&cf, 0x22000, 2 * PAGE);
	free(cf.data);
}

/* Size of this process's [vdso], from /proc/self/maps; 0 if none. */
static uint64_t own_vdso_size(uint64_t base)
{
	char *maps, *line, *save;
	uint64_t size = 0;

	if (esky_read_file("/proc/self/maps", &maps, NULL))
		harness_error("cannot read /proc/self/maps");
	for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a, b;

		if (sscanf(line, "%llx-%llx", &a, &b) == 2 && a == base && strstr(line, "[vdso]"))
			size = b - a;
	}
	free(maps);
	return size;
}

/* vdso.img: only a [vdso], taken on this kernel. */
static void check_vdso(void)
{
	uint64_t base = getauxval(AT_SYSINFO_EHDR), size;
	struct vma_spec vdso = { 0x74000, 0, ESKY_IMG_VMA_VDSO, 5, 0, -1, 0 };
	struct esky_image_writer *w;
	struct esky_image **chain;
	struct core_file cf;
	struct utsname u;
	struct note notes[16];
	const Elf64_Phdr *p;
	size_t n;

	size = base ? own_vdso_size(base) : 0;
	if (!size || uname(&u) < 0) {
		printf("core_test: no vDSO here, its check is skipped\n");
		return;
	}
	vdso.pages = (unsigned)(size / PAGE);
	must(esky_image_writer_open(in_dir("vdso.img"), &w), "esky_image_writer_open");
	write_common(w, u.release, false);
	add_vmas(w, &vdso, 1);
	must(esky_image_writer_commit(w), "esky_image_writer_commit");
	must(esky_image_open_chain(in_dir("vdso.img"), &chain, &n), "esky_image_open_chain");
	CHECK_U64("esky_core_write (vdso)", esky_core_write(chain, n, in_dir("vdso.core")), 0);
	esky_image_close_chain(chain, n);
	if (!read_core(in_dir("vdso.core"), &cf))
		return;
	p = load_at(&cf, 0x74000);
	CHECK(p && p->p_filesz == size && p->p_offset + size <= cf.len &&
		      !memcmp(cf.data + p->p_offset, (const void *)(uintptr_t)base, size),
	      "[vdso] of this kernel: expected this process's %" PRIu64 " bytes of vDSO", size);
	n = read_notes(&cf, notes, 16);
	CHECK(n > 2 && notes[2].type == NT_AUXV && desc_word(notes[2].desc, 0) == AT_SYSINFO_EHDR,
	      "[vdso] in the core: AT_SYSINFO_EHDR must stay in NT_AUXV");
	free(cf.data);
}

/* threads.img: the main thread (4242) and three others, signals queued to some. */
#define THREAD_N 3
static const uint32_t thread_tids[THREAD_N] = { 4243, 4244, 4245 };
/* xstate of each: a Zen area (converted), none, the FXSAVE area alone (no XSTATE note) */
static const size_t thread_xlen[THREAD_N] = { ZEN_XSTATE_LEN, 0, 512 };

static uint64_t thread_reg(unsigned t, unsigned i)
{
	return regs_of(i) + 0x100000ULL * (t + 1);
}

static void check_threads(void)
{
	/* signal, queue (0 main or shared, i + 1 THREADS[i]), shared */
	static const int sigs[][3] = { { 10, 0, 1 }, { 12, 0, 0 }, { 15, 1, 0 }, { 1, 3, 0 } };
	static const struct vma_spec anon = { 0x10000, 1, ESKY_IMG_VMA_ANON, 3, 0, -1, 0 };
	/* note index of each thread's NT_PRSTATUS: after the main thread's 6 notes */
	static const size_t prstatus_at[THREAD_N] = { 6, 9, 10 };
	static const uint64_t sigpend[1 + THREAD_N] = { (1u << 9) | (1u << 11), 1u << 14, 0, 1 };
	struct esky_image_writer *w;
	struct esky_image **chain;
	struct core_file cf;
	struct note notes[32];
	unsigned char page[PAGE];
	size_t n;

	must(esky_image_writer_open(in_dir("threads.img"), &w), "esky_image_writer_open");
	write_common(w, NULL, false);
	for (unsigned t = 0; t < THREAD_N; t++) {
		struct esky_img_thread th = { .tid = thread_tids[t], .sig_blocked = 0x100u << t };

		snprintf(th.comm, sizeof(th.comm), "worker-%u", t);
		for (unsigned i = 0; i < ESKY_IMG_REGS_WORDS; i++)
			th.regs[i] = thread_reg(t, i);
		must(esky_image_add_thread(w, &th, thread_xlen[t] ? zen_xstate : NULL, thread_xlen[t]),
		     "esky_image_add_thread");
	}
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(sigs); i++) {
		struct esky_img_siginfo si = { .shared = (uint32_t)sigs[i][2],
					       .thread = (uint32_t)sigs[i][1] };
		int32_t signo = sigs[i][0];

		memcpy(si.info, &signo, sizeof(signo));
		must(esky_image_add_siginfo(w, &si), "esky_image_add_siginfo");
	}
	add_vmas(w, &anon, 1);
	fill_page(page, 'T', 0);
	must(esky_image_write_pages(w, 0x10000, page, 1, true, NULL, NULL, NULL), "write T");
	must(esky_image_writer_commit(w), "esky_image_writer_commit (threads)");
	must(esky_image_open_chain(in_dir("threads.img"), &chain, &n), "esky_image_open_chain");
	CHECK_U64("esky_core_write (threads)", esky_core_write(chain, n, in_dir("threads.core")), 0);
	esky_image_close_chain(chain, n);
	if (!read_core(in_dir("threads.core"), &cf))
		return;
	check_stored_page(&cf, 0x10000, 'T', 0);
	n = read_notes(&cf, notes, 32);
	CHECK_U64("number of notes (threads)", n, 12);
	if (n != 12) {
		free(cf.data);
		return;
	}
	for (unsigned t = 0; t <= THREAD_N; t++) {
		size_t at = t ? prstatus_at[t - 1] : 0;
		const struct note *nt = &notes[at];
		size_t xlen = t ? thread_xlen[t - 1] : ZEN_XSTATE_LEN;
		uint32_t tid = t ? thread_tids[t - 1] : 4242;
		struct elf_prstatus st;

		CHECK(!strcmp(nt->name, "CORE") && nt->type == NT_PRSTATUS &&
			      nt->len == sizeof(st),
		      "thread %u (tid %u): note %zu: expected CORE NT_PRSTATUS of %zu bytes, found "
		      "%s type %#x of %zu", t, tid, at, sizeof(st), nt->name, nt->type, nt->len);
		if (nt->type != NT_PRSTATUS || nt->len != sizeof(st))
			continue;
		memcpy(&st, nt->desc, sizeof(st));
		CHECK(st.pr_pid == (pid_t)tid, "thread %u: pr_pid: expected %u, found %d", t, tid,
		      st.pr_pid);
		CHECK(st.pr_cursig == 0, "thread %u: pr_cursig: expected 0, found %d", t, st.pr_cursig);
		CHECK(st.pr_sighold == (t ? 0x100u << (t - 1) : 0x5),
		      "thread %u: pr_sighold: expected %#x, found %#lx", t,
		      t ? 0x100u << (t - 1) : 0x5, (unsigned long)st.pr_sighold);
		CHECK(st.pr_sigpend == sigpend[t], "thread %u: pr_sigpend: expected %#" PRIx64
		      ", found %#lx", t, sigpend[t], (unsigned long)st.pr_sigpend);
		CHECK(st.pr_fpvalid == (xlen >= 512),
		      "thread %u: pr_fpvalid: expected %d, found %d", t, xlen >= 512, st.pr_fpvalid);
		for (unsigned i = 0; i < ESKY_IMG_REGS_WORDS; i++) {
			uint64_t want = t ? thread_reg(t - 1, i) : regs_of(i);

			CHECK(st.pr_reg[i] == want, "thread %u: pr_reg[%u]: expected %#" PRIx64
			      ", found %#llx", t, i, want, (unsigned long long)st.pr_reg[i]);
		}
		if (!t)
			continue;
		/* Its register sets follow, up to the next thread's NT_PRSTATUS. */
		if (xlen >= 512)
			CHECK(notes[at + 1].type == NT_FPREGSET && notes[at + 1].len == 512 &&
				      !memcmp(notes[at + 1].desc, zen_xstate, 512),
			      "thread %u: note %zu: expected its NT_FPREGSET (the FXSAVE area)", t,
			      at + 1);
		if (xlen >= 576)
			CHECK(notes[at + 2].type == NT_X86_XSTATE && notes[at + 2].len == 2696 &&
				      !strcmp(notes[at + 2].name, "LINUX") &&
				      !memcmp(notes[at + 2].desc, notes[5].desc, 2696),
			      "thread %u: note %zu: expected its NT_X86_XSTATE in Intel's layout, as "
			      "the main thread's", t, at + 2);
	}
	free(cf.data);
}

/* More program headers than e_phnum holds: PN_XNUM, the count in section header 0. */
static void check_xnum(void)
{
	const unsigned count = 70000;
	struct esky_image_writer *w;
	struct esky_image **chain;
	struct core_file cf;
	size_t n;

	must(esky_image_writer_open(in_dir("xnum.img"), &w), "esky_image_writer_open");
	write_common(w, NULL, false);
	for (unsigned i = 0; i < count; i++) {
		struct vma_spec s = { 0x100000000ULL + 2ULL * i * PAGE, 1, ESKY_IMG_VMA_ANON, 0, 0,
				      -1, 0 };

		add_vmas(w, &s, 1);
	}
	must(esky_image_writer_commit(w), "esky_image_writer_commit");
	must(esky_image_open_chain(in_dir("xnum.img"), &chain, &n), "esky_image_open_chain");
	CHECK_U64("esky_core_write (xnum)", esky_core_write(chain, n, in_dir("xnum.core")), 0);
	esky_image_close_chain(chain, n);
	if (!read_core(in_dir("xnum.core"), &cf))
		return;
	CHECK_U64("e_phnum", cf.eh->e_phnum, PN_XNUM);
	CHECK_U64("e_shnum", cf.eh->e_shnum, 1);
	CHECK_U64("program headers (sh_info)", cf.phnum, 1 + count);
	if (cf.phnum == 1 + count)
		CHECK_U64("last PT_LOAD", cf.ph[count].p_vaddr,
			  0x100000000ULL + 2ULL * (count - 1) * PAGE);
	free(cf.data);
}

static bool no_temp_files(void)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -q 'esky-tmp'", dir);
	return system(cmd) != 0;
}

static void check_errors(void)
{
	struct esky_image **chain;
	const char *msg;
	char *kept;
	size_t n;
	int ret, fd;

	must(esky_image_open_chain(in_dir("full.img"), &chain, &n), "esky_image_open_chain");
	esky_error_clear();
	ret = esky_core_write(chain, n, in_dir("nodir/x.core"));
	msg = esky_last_error();
	CHECK_U64("esky_core_write into a missing directory", ret, -ENOENT);
	CHECK(msg && strstr(msg, "cannot write ") && strstr(msg, "nodir/x.core: No such file"),
	      "missing directory: expected 'cannot write .../nodir/x.core: No such file...', found '%s'",
	      msg ? msg : "(none)");
	esky_image_close_chain(chain, n);

	/* Page data gone from under the open image: an error, the old core kept. */
	fd = open(in_dir("kept.core"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || esky_write_all(fd, "keep", 4) || close(fd))
		harness_error("cannot write kept.core");
	{
		char *img;
		size_t len;

		if (esky_read_file(in_dir("full.img"), &img, &len))
			harness_error("cannot read full.img");
		fd = open(in_dir("cut.img"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || esky_write_all(fd, img, len) || close(fd))
			harness_error("cannot write cut.img");
		free(img);
	}
	must(esky_image_open_chain(in_dir("cut.img"), &chain, &n), "esky_image_open_chain");
	if (truncate(in_dir("cut.img"), PAGE) < 0)
		harness_error("cannot truncate cut.img");
	esky_error_clear();
	warning_n = 0;
	ret = esky_core_write(chain, n, in_dir("kept.core"));
	msg = esky_last_error();
	CHECK_U64("esky_core_write of a truncated image", ret, -EIO);
	CHECK(msg && strstr(msg, "cut.img: cannot read page data: file truncated"),
	      "truncated image: expected '.../cut.img: cannot read page data: file truncated', "
	      "found '%s'", msg ? msg : "(none)");
	esky_image_close_chain(chain, n);
	if (esky_read_file(in_dir("kept.core"), &kept, NULL))
		harness_error("cannot read kept.core");
	CHECK(!strcmp(kept, "keep"), "kept.core was changed by a failed esky_core_write");
	free(kept);
	CHECK(no_temp_files(), "a temporary file is left in %s", dir);
}

int main(int argc, char **argv)
{
	const char *tmpdir = getenv("TMPDIR");
	bool keep = argc > 1 && !strcmp(argv[1], "--keep");
	struct esky_image **chain;
	uint8_t full_id[16];
	char cmd[4200];
	size_t n;

	esky_log_set_sink(sink, NULL, ESKY_LOG_DEBUG);
	snprintf(dir, sizeof(dir), "%s/esky-core-test.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(dir))
		harness_error("mkdtemp: %s", strerror(errno));
	make_zen_xstate();
	write_file(in_dir("mapped.bin"), MAPPED_LEN);
	write_file(in_dir("gone.bin"), PAGE);
	write_file(in_dir("changed.bin"), PAGE);

	write_full(full_id);
	write_child(full_id);
	/* After the checkpoints: one file removed, one grown. */
	unlink(in_dir("gone.bin"));
	write_file(in_dir("changed.bin"), 2 * PAGE);

	must(esky_image_open_chain(in_dir("full.img"), &chain, &n), "esky_image_open_chain");
	warning_n = 0;
	warnings[0] = '\0';
	CHECK_U64("esky_core_write (full)", esky_core_write(chain, n, in_dir("full.core")), 0);
	CHECK(warning_n == 2 && strstr(warnings, "gone.bin is gone") &&
		      strstr(warnings, "changed.bin changed since the checkpoint (size 4096 -> 8192)"),
	      "expected one warning for gone.bin and one for changed.bin, found %u:\n%s",
	      warning_n, warnings);
	check_full(in_dir("full.core"));

	esky_image_close_chain(chain, n);
	must(esky_image_open_chain(in_dir("child.img"), &chain, &n), "esky_image_open_chain (child)");
	CHECK_U64("chain length", n, 2);
	CHECK_U64("esky_core_write (child)", esky_core_write(chain, n, in_dir("child.core")), 0);
	esky_image_close_chain(chain, n);
	check_child(in_dir("child.core"));

	check_threads();
	check_vdso();
	check_xnum();
	check_errors();

	if (failures) {
		fprintf(stderr, "core_test: %u of %u checks failed; files kept in %s\n", failures,
			checks, dir);
		return EXIT_FAIL;
	}
	printf("core_test: %u checks passed\n", checks);
	if (!keep) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "core_test: could not remove %s\n", dir);
	}
	return EXIT_PASS;
}
