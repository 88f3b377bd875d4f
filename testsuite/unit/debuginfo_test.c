/*
 * Checks src/debuginfo against binutils: every line of the source resolved
 * as FILE:LINE against addr2line, every function against nm and addr2line,
 * the error messages, lookup, describe and completion.
 *
 *   debuginfo_test [--nodebug] SOURCE PROGRAM
 *
 * SOURCE is the C file PROGRAM was built from (examples/walk.c); --nodebug
 * says PROGRAM was built without -g, and FILE:LINE must be refused.
 *
 * The expected answers come from the tools, not from numbers written here,
 * so the test follows any edit of walk.c:
 * - addr2line -f on every byte of each function of SOURCE gives the line
 *   of each byte: the lowest byte of a function with line L is where
 *   FILE:LINE must put L in that function, and the first byte whose line
 *   differs from the entry's line is where FUNCTION must land;
 * - nm's function symbols are what FUNCTION gives without DWARF, and what
 *   describe names when only symbols cover an address.
 *
 * Exit status: 0 pass, 1 fail, 77 skip (no binutils), 99 harness error.
 */
#include "debuginfo.h"
#include "log.h"

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
#include <unistd.h>

/* addresses per addr2line command line: well below ARG_MAX */
#define A2L_CHUNK 400
/* failures printed before the rest are only counted */
#define MAX_REPORTS 40
#define UNIT_NAME "debuginfo_test"
#include "unit_test.h"

static const char *prog_path;
static const char *prog_name; /* basename, as debuginfo's messages say it */
static const char *src_name;  /* basename of SOURCE */
/* what was checked, for the PASS line: a test that checks nothing passes too */
static unsigned n_lines, n_funcs, n_syms;

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		harness_error("out of memory");
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		harness_error("out of memory");
	return p;
}

static const char *base_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* ---- what the tools say ---- */

/* A function symbol of nm. */
struct sym {
	char *name;
	uint64_t value, size;
};

static struct sym *syms;
static size_t syms_n;

/* A function of SOURCE, with the line of each of its bytes (0: unknown). */
struct func {
	char *name;
	uint64_t value, size;
	unsigned *lines;
};

static struct func *funcs;
static size_t funcs_n;

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* Read nm's function symbols (FUNC and GNU_IFUNC, defined, not at 0). */
static void read_nm(void)
{
	char cmd[4096], line[4096];
	FILE *f;
	size_t cap = 0;

	snprintf(cmd, sizeof(cmd), "nm -f sysv --defined-only '%s'", prog_path);
	f = popen(cmd, "r");
	if (!f)
		harness_error("cannot run nm: %s", strerror(errno));
	/* Name | Value | Class | Type | Size | Line | Section */
	while (fgets(line, sizeof(line), f)) {
		char *field[7], *p = line;
		int n;

		for (n = 0; n < 7 && p; n++) {
			field[n] = p;
			p = strchr(p, '|');
			if (p)
				*p++ = '\0';
		}
		if (n < 6)
			continue;
		/* nm -f sysv says "<OS specific>: 10" for STT_GNU_IFUNC, class i */
		if (strcmp(trim(field[3]), "FUNC") != 0 && strcmp(trim(field[2]), "i") != 0)
			continue;
		if (syms_n == cap) {
			cap = cap ? cap * 2 : 256;
			syms = realloc(syms, cap * sizeof(*syms));
			if (!syms)
				harness_error("out of memory");
		}
		syms[syms_n].name = xstrdup(trim(field[0]));
		syms[syms_n].value = strtoull(trim(field[1]), NULL, 16);
		syms[syms_n].size = strtoull(trim(field[4]), NULL, 16);
		if (syms[syms_n].value && syms[syms_n].name[0])
			syms_n++;
		else
			free(syms[syms_n].name);
	}
	if (pclose(f) != 0)
		harness_error("nm failed on %s", prog_path);
	if (!syms_n)
		harness_error("nm found no function symbols in %s", prog_path);
}

/*
 * Run addr2line -f on n addresses; for each, the function name and the
 * line (0 for "?" or a file other than SOURCE).
 */
static void addr2line(const uint64_t *addrs, size_t n, char **fn_out, unsigned *line_out)
{
	size_t done = 0;

	while (done < n) {
		size_t k = n - done < A2L_CHUNK ? n - done : A2L_CHUNK, i, len;
		char *cmd = xcalloc(k * 20 + 4096, 1);
		char fn[4096], loc[4096];
		FILE *f;

		len = (size_t)snprintf(cmd, 4096, "addr2line -f -e '%s'", prog_path);
		for (i = 0; i < k; i++)
			len += (size_t)sprintf(cmd + len, " 0x%" PRIx64, addrs[done + i]);
		f = popen(cmd, "r");
		if (!f)
			harness_error("cannot run addr2line: %s", strerror(errno));
		for (i = 0; i < k; i++) {
			char *colon, *paren;

			if (!fgets(fn, sizeof(fn), f) || !fgets(loc, sizeof(loc), f))
				harness_error("addr2line gave fewer answers than addresses");
			/* "/path/walk.c:42 (discriminator 3)" */
			paren = strstr(loc, " (");
			if (paren)
				*paren = '\0';
			trim(loc);
			colon = strrchr(loc, ':');
			line_out[done + i] = 0;
			if (colon) {
				*colon = '\0';
				if (strcmp(base_of(loc), src_name) == 0)
					line_out[done + i] = (unsigned)strtoul(colon + 1, NULL, 10);
			}
			if (fn_out)
				fn_out[done + i] = xstrdup(trim(fn));
		}
		if (pclose(f) != 0)
			harness_error("addr2line failed on %s", prog_path);
		free(cmd);
		done += k;
	}
}

/* The functions of SOURCE: the symbols whose entry addr2line puts in it. */
static void read_funcs(void)
{
	uint64_t *addrs = xcalloc(syms_n, sizeof(*addrs));
	unsigned *lines = xcalloc(syms_n, sizeof(*lines));
	size_t i;

	for (i = 0; i < syms_n; i++)
		addrs[i] = syms[i].value;
	addr2line(addrs, syms_n, NULL, lines);
	funcs = xcalloc(syms_n, sizeof(*funcs));
	for (i = 0; i < syms_n; i++) {
		struct func *f;
		uint64_t *bytes;
		uint64_t b;

		if (!lines[i] || !syms[i].size)
			continue;
		f = &funcs[funcs_n++];
		f->name = syms[i].name;
		f->value = syms[i].value;
		f->size = syms[i].size;
		f->lines = xcalloc(f->size, sizeof(*f->lines));
		bytes = xcalloc(f->size, sizeof(*bytes));
		for (b = 0; b < f->size; b++)
			bytes[b] = f->value + b;
		addr2line(bytes, f->size, NULL, f->lines);
		free(bytes);
	}
	free(addrs);
	free(lines);
}

static const struct func *func_named(const char *name)
{
	size_t i;

	for (i = 0; i < funcs_n; i++)
		if (strcmp(funcs[i].name, name) == 0)
			return &funcs[i];
	return NULL;
}

/* nm's symbol i covers addr; one without a size names its own address. */
static bool sym_covers(size_t i, uint64_t addr)
{
	return syms[i].value <= addr && addr - syms[i].value < (syms[i].size ? syms[i].size : 1);
}

static bool sym_exists(const char *name)
{
	size_t i;

	for (i = 0; i < syms_n; i++)
		if (strcmp(syms[i].name, name) == 0)
			return true;
	return false;
}

/* ---- the ELF header, read directly ---- */

static void read_elf_facts(bool *is_pie, uint64_t *first_vaddr)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint64_t first = UINT64_MAX;
	int fd = open(prog_path, O_RDONLY);
	unsigned i;

	if (fd < 0 || pread(fd, &eh, sizeof(eh), 0) != sizeof(eh))
		harness_error("cannot read %s", prog_path);
	*is_pie = eh.e_type == ET_DYN;
	for (i = 0; i < eh.e_phnum; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != sizeof(ph))
			harness_error("cannot read the program headers of %s", prog_path);
		if (ph.p_type == PT_LOAD && ph.p_vaddr < first)
			first = ph.p_vaddr;
	}
	close(fd);
	*first_vaddr = first & ~(uint64_t)0xfff;
}

/* ---- checks ---- */

/* Resolve spec expecting an error: err and exactly the message msg. */
static void expect_error(struct esky_debuginfo *di, const char *spec, int err, const char *msg,
			 const char *file, int line)
{
	struct esky_loc *locs = (struct esky_loc *)1;
	size_t n = 1;
	const char *got;
	int r;

	esky_error_clear();
	r = esky_debuginfo_resolve(di, spec, &locs, &n);
	got = esky_last_error();
	if (r != err)
		fail_at(file, line, "resolve '%s': expected %d (%s), found %d", spec, err,
			strerror(-err), r);
	if (!got || strcmp(got, msg) != 0)
		fail_at(file, line, "resolve '%s': expected the message \"%s\", found \"%s\"",
			spec, msg, got ? got : "(none)");
	if (r == 0)
		esky_locs_free(locs, n);
	else if (locs || n)
		fail_at(file, line, "resolve '%s' failed but left locs=%p n=%zu", spec,
			(void *)locs, n);
}

#define EXPECT_ERROR(di, spec, err, ...)                                       \
	do {                                                                   \
		char msg_[512];                                                \
		snprintf(msg_, sizeof(msg_), __VA_ARGS__);                     \
		expect_error(di, spec, err, msg_, __FILE__, __LINE__);         \
	} while (0)

static int resolve_ok(struct esky_debuginfo *di, const char *spec, struct esky_loc **locs,
		      size_t *n, int line)
{
	int r;

	esky_error_clear();
	r = esky_debuginfo_resolve(di, spec, locs, n);
	if (r) {
		const char *msg = esky_last_error();

		fail_at(__FILE__, line, "resolve '%s': expected success, found %d (%s)", spec, r,
			msg ? msg : "no message");
		*locs = NULL;
		*n = 0;
	}
	return r;
}

static void check_header(struct esky_debuginfo *di, bool nodebug)
{
	bool is_pie;
	uint64_t first;

	read_elf_facts(&is_pie, &first);
	if (esky_debuginfo_has_dwarf(di) != !nodebug)
		FAIL("has_dwarf: expected %d, found %d", !nodebug, esky_debuginfo_has_dwarf(di));
	if (esky_debuginfo_is_pie(di) != is_pie)
		FAIL("is_pie: expected %d, found %d", is_pie, esky_debuginfo_is_pie(di));
	if (esky_debuginfo_first_vaddr(di) != first)
		FAIL("first_vaddr: expected 0x%" PRIx64 ", found 0x%" PRIx64, first,
		     esky_debuginfo_first_vaddr(di));
}

/* Where FILE:line must land in f: its lowest byte with that line, or 0. */
static uint64_t lowest_with_line(const struct func *f, unsigned line)
{
	uint64_t b;

	for (b = 0; b < f->size; b++)
		if (f->lines[b] == line)
			return f->value + b;
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The line table says a line has code if some byte of a function has it. */
static unsigned next_line_with_code(unsigned line)
{
	unsigned best = 0;
	size_t i;
	uint64_t b;

	for (i = 0; i < funcs_n; i++)
		for (b = 0; b < funcs[i].size; b++) {
			unsigned l = funcs[i].lines[b];

			if (l >= line && (!best || l < best))
				best = l;
		}
	return best;
}

/* Every line of SOURCE, and two past its end, as FILE:LINE. */
static void check_lines(struct esky_debuginfo *di, unsigned nlines)
{
	unsigned line;

	for (line = 1; line <= nlines + 2; line++) {
		uint64_t want[64], got[64];
		const struct func *want_fn[64];
		unsigned target = next_line_with_code(line);
		struct esky_loc *locs;
		size_t nwant = 0, n, i, j;
		char spec[256];

		n_lines++;
		snprintf(spec, sizeof(spec), "%s:%u", src_name, line);
		if (!target) {
			EXPECT_ERROR(di, spec, -ENOENT, "no line %u in %s", line, src_name);
			continue;
		}
		for (i = 0; i < funcs_n && nwant < 64; i++) {
			uint64_t a = lowest_with_line(&funcs[i], target);

			if (a)
				want[nwant++] = a;
		}
		qsort(want, nwant, sizeof(*want), u64_cmp);
		for (i = 0; i < nwant; i++)
			for (j = 0; j < funcs_n; j++)
				if (want[i] >= funcs[j].value && want[i] < funcs[j].value + funcs[j].size)
					want_fn[i] = &funcs[j];

		if (resolve_ok(di, spec, &locs, &n, __LINE__))
			continue;
		if (n != nwant) {
			FAIL("resolve '%s': expected %zu locations (line %u), found %zu", spec, nwant,
			     target, n);
			esky_locs_free(locs, n);
			continue;
		}
		for (i = 0; i < n; i++)
			got[i] = locs[i].addr;
		for (i = 0; i < n; i++) {
			char buf[256], want_desc[256];

			if (got[i] != want[i]) {
				FAIL("resolve '%s': expected 0x%" PRIx64 " (lowest byte of line %u in %s, addr2line), found 0x%" PRIx64,
				     spec, want[i], target, want_fn[i]->name, got[i]);
				continue;
			}
			if (locs[i].line != target)
				FAIL("resolve '%s' at 0x%" PRIx64 ": expected line %u, found %u", spec,
				     got[i], target, locs[i].line);
			if (!locs[i].file || strcmp(base_of(locs[i].file), src_name) != 0)
				FAIL("resolve '%s' at 0x%" PRIx64 ": expected file .../%s, found %s", spec,
				     got[i], src_name, locs[i].file ? locs[i].file : "NULL");
			if (!locs[i].function || strcmp(locs[i].function, want_fn[i]->name) != 0)
				FAIL("resolve '%s' at 0x%" PRIx64 ": expected function %s, found %s", spec,
				     got[i], want_fn[i]->name,
				     locs[i].function ? locs[i].function : "NULL");
			snprintf(want_desc, sizeof(want_desc), "%s at %s:%u", want_fn[i]->name,
				 src_name, target);
			esky_debuginfo_describe(di, got[i], buf, sizeof(buf));
			if (strcmp(buf, want_desc) != 0)
				FAIL("describe 0x%" PRIx64 ": expected \"%s\", found \"%s\"", got[i],
				     want_desc, buf);
		}
		esky_locs_free(locs, n);
	}
}

/* FILE may be the whole path or a suffix of whole components. */
static void check_file_names(struct esky_debuginfo *di)
{
	const struct func *main_fn = func_named("main");
	unsigned line = main_fn->lines[main_fn->size - 1]; /* has code */
	struct esky_loc *locs;
	size_t n;
	char want_path[4096], spec[sizeof(want_path) + 16];

	/* The path as DWARF has it: what resolve reports for the basename. */
	snprintf(spec, sizeof(spec), "%s:%u", src_name, line);
	if (resolve_ok(di, spec, &locs, &n, __LINE__) || !n)
		return;
	snprintf(want_path, sizeof(want_path), "%s", locs[0].file);
	esky_locs_free(locs, n);

	snprintf(spec, sizeof(spec), "%s:%u", want_path, line);
	if (!resolve_ok(di, spec, &locs, &n, __LINE__)) {
		if (n != 1 || strcmp(locs[0].file, want_path) != 0)
			FAIL("resolve '%s': expected 1 location in %s, found %zu", spec, want_path, n);
		esky_locs_free(locs, n);
	}
	/* "examples/walk.c" when the path is .../examples/walk.c */
	if (strchr(want_path, '/')) {
		const char *p = want_path + strlen(want_path) - strlen(src_name) - 1;

		while (p > want_path && p[-1] != '/')
			p--;
		snprintf(spec, sizeof(spec), "%s:%u", p, line);
		if (!resolve_ok(di, spec, &locs, &n, __LINE__)) {
			if (n != 1)
				FAIL("resolve '%s': expected 1 location, found %zu", spec, n);
			esky_locs_free(locs, n);
		}
	}
	/* A suffix that is not whole components names no file. */
	snprintf(spec, sizeof(spec), "%s:%u", src_name + 1, line);
	EXPECT_ERROR(di, spec, -ENOENT, "no source file %s in %s", src_name + 1, prog_name);
}

/* FUNCTION with DWARF: the first byte whose line differs from the entry's. */
static void check_functions_dwarf(struct esky_debuginfo *di)
{
	size_t i;

	for (i = 0; i < funcs_n; i++) {
		const struct func *f = &funcs[i];
		uint64_t want = f->value, b;
		unsigned want_line = f->lines[0];
		struct esky_loc *locs;
		size_t n;

		n_funcs++;
		for (b = 1; b < f->size; b++)
			if (f->lines[b] && f->lines[b] != f->lines[0]) {
				want = f->value + b;
				want_line = f->lines[b];
				break;
			}
		if (resolve_ok(di, f->name, &locs, &n, __LINE__))
			continue;
		if (n != 1 || locs[0].addr != want)
			FAIL("resolve '%s': expected 0x%" PRIx64 " (nm 0x%" PRIx64 ", first line after %u per addr2line), found %zu locations, first 0x%" PRIx64,
			     f->name, want, f->value, f->lines[0], n, n ? locs[0].addr : 0);
		else if (locs[0].line != want_line || !locs[0].function ||
			 strcmp(locs[0].function, f->name) != 0)
			FAIL("resolve '%s': expected %s line %u, found %s line %u", f->name, f->name,
			     want_line, locs[0].function ? locs[0].function : "NULL", locs[0].line);
		esky_locs_free(locs, n);
	}
}

/*
 * FUNCTION without DWARF for it (all of walk-nodebug, the libc of
 * walk-static, _start everywhere): exactly the addresses nm gives the name.
 */
static void check_functions_symbols(struct esky_debuginfo *di)
{
	uint64_t *want = xcalloc(syms_n, sizeof(*want));
	size_t i, j, checked = 0;

	for (i = 0; i < syms_n; i++) {
		struct esky_loc *locs;
		size_t nwant = 0, n, k;

		if (func_named(syms[i].name))
			continue;
		/* Each name once: skip it if an earlier symbol had it. */
		for (j = 0; j < i && strcmp(syms[j].name, syms[i].name) != 0; j++)
			;
		if (j < i)
			continue;
		for (j = i; j < syms_n; j++)
			if (strcmp(syms[j].name, syms[i].name) == 0)
				want[nwant++] = syms[j].value;
		qsort(want, nwant, sizeof(*want), u64_cmp);
		for (j = k = 0; j < nwant; j++)
			if (!k || want[k - 1] != want[j])
				want[k++] = want[j];
		nwant = k;

		checked++;
		n_syms++;
		if (resolve_ok(di, syms[i].name, &locs, &n, __LINE__))
			continue;
		if (n != nwant) {
			FAIL("resolve '%s': expected %zu addresses (nm), found %zu", syms[i].name,
			     nwant, n);
		} else {
			for (k = 0; k < n; k++)
				if (locs[k].addr != want[k])
					FAIL("resolve '%s': expected 0x%" PRIx64 " (nm), found 0x%" PRIx64,
					     syms[i].name, want[k], locs[k].addr);
		}
		esky_locs_free(locs, n);
	}
	free(want);
	if (!checked)
		harness_error("no function symbol outside %s to check in %s", src_name, prog_path);
}

/*
 * describe and lookup where only symbols name the code: "NAME+0xOFF" with
 * NAME one of the symbols that start last at or before the address and
 * cover it (aliases: any of them).
 */
static void check_symbol_names(struct esky_debuginfo *di)
{
	size_t i, j;

	for (i = 0; i < syms_n; i++) {
		uint64_t addr = syms[i].value + 1, start = 0;
		struct esky_loc loc;
		char buf[512], want[512];
		bool ok = false;

		if (syms[i].size < 2 || func_named(syms[i].name))
			continue;
		for (j = 0; j < syms_n; j++)
			if (sym_covers(j, addr) && syms[j].value > start)
				start = syms[j].value;
		esky_debuginfo_describe(di, addr, buf, sizeof(buf));
		for (j = 0; j < syms_n && !ok; j++) {
			if (syms[j].value != start || !sym_covers(j, addr))
				continue;
			snprintf(want, sizeof(want), "%s+0x%" PRIx64, syms[j].name, addr - start);
			ok = strcmp(buf, want) == 0;
		}
		if (!ok) {
			FAIL("describe 0x%" PRIx64 ": expected \"%s+0x%" PRIx64 "\" (nm, or an alias), found \"%s\"",
			     addr, syms[i].name, addr - syms[i].value, buf);
			continue;
		}
		if (esky_debuginfo_lookup(di, addr, &loc) != 0) {
			FAIL("lookup 0x%" PRIx64 ": expected %s, found -ENOENT", addr, syms[i].name);
			continue;
		}
		/* buf is "NAME+0xOFF": lookup gives the same NAME */
		*strrchr(buf, '+') = '\0';
		if (!loc.function || strcmp(buf, loc.function) != 0 || loc.file || loc.line)
			FAIL("lookup 0x%" PRIx64 ": expected function of \"%s\", no file, line 0; found %s %s:%u",
			     addr, buf, loc.function ? loc.function : "NULL",
			     loc.file ? loc.file : "NULL", loc.line);
		esky_loc_clear(&loc);
	}
}

/* Just past a function, where no symbol is, nothing is named. */
static void check_gaps(struct esky_debuginfo *di)
{
	size_t i, j, checked = 0;

	for (i = 0; i < syms_n; i++) {
		uint64_t addr = syms[i].value + syms[i].size;
		struct esky_loc loc;
		char buf[256], want[64];

		for (j = 0; j < syms_n; j++)
			if (sym_covers(j, addr))
				break;
		if (j < syms_n || !syms[i].size)
			continue;
		checked++;
		snprintf(want, sizeof(want), "0x%" PRIx64, addr);
		esky_debuginfo_describe(di, addr, buf, sizeof(buf));
		if (strcmp(buf, want) != 0)
			FAIL("describe 0x%" PRIx64 " (the end of %s, no symbol there): expected \"%s\", found \"%s\"",
			     addr, syms[i].name, want, buf);
		if (esky_debuginfo_lookup(di, addr, &loc) != -ENOENT) {
			FAIL("lookup 0x%" PRIx64 " (the end of %s, no symbol there): expected -ENOENT, found %s",
			     addr, syms[i].name, loc.function ? loc.function : "NULL");
			esky_loc_clear(&loc);
		}
	}
	if (!checked)
		harness_error("no gap between functions in %s", prog_path);
}

/* lookup with DWARF: the function and line addr2line gives. */
static void check_lookup_dwarf(struct esky_debuginfo *di)
{
	size_t i;

	for (i = 0; i < funcs_n; i++) {
		const struct func *f = &funcs[i];
		uint64_t off = f->size / 2;
		struct esky_loc loc;

		if (esky_debuginfo_lookup(di, f->value + off, &loc) != 0) {
			FAIL("lookup 0x%" PRIx64 ": expected %s, found -ENOENT", f->value + off,
			     f->name);
			continue;
		}
		if (!loc.function || strcmp(loc.function, f->name) != 0 ||
		    loc.line != f->lines[off] || !loc.file ||
		    strcmp(base_of(loc.file), src_name) != 0)
			FAIL("lookup 0x%" PRIx64 ": expected %s at %s:%u (addr2line), found %s at %s:%u",
			     f->value + off, f->name, src_name, f->lines[off],
			     loc.function ? loc.function : "NULL", loc.file ? loc.file : "NULL",
			     loc.line);
		esky_loc_clear(&loc);
	}
}

static void check_nodebug(struct esky_debuginfo *di)
{
	static const char *const must[] = { "main", "step", "score" };
	char spec[256];
	size_t i;

	for (i = 0; i < sizeof(must) / sizeof(must[0]); i++)
		if (!sym_exists(must[i]))
			harness_error("%s has no symbol %s: not built from walk.c?", prog_path, must[i]);
	snprintf(spec, sizeof(spec), "%s:10", src_name);
	EXPECT_ERROR(di, spec, -ENOENT,
		     "%s has no debug information: use FUNCTION or *ADDRESS (build with -g for FILE:LINE)",
		     prog_name);
}

static void check_bad_specs(struct esky_debuginfo *di)
{
	EXPECT_ERROR(di, "frob_no_such_function", -ENOENT, "no function frob_no_such_function in %s",
		     prog_name);
	EXPECT_ERROR(di, "", -EINVAL, "empty location: use FILE:LINE, FUNCTION or *ADDRESS");
	EXPECT_ERROR(di, "*zz", -EINVAL, "bad address zz: use *0xHEX or *DECIMAL");
	EXPECT_ERROR(di, "*", -EINVAL, "bad address : use *0xHEX or *DECIMAL");
	if (!esky_debuginfo_has_dwarf(di))
		return;
	EXPECT_ERROR(di, "nosuchfile.c:10", -ENOENT, "no source file nosuchfile.c in %s", prog_name);
	EXPECT_ERROR(di, "walk.c:99999", -ENOENT, "no line 99999 in walk.c");
	EXPECT_ERROR(di, "walk.c:0", -ENOENT, "no line 0 in walk.c");
	EXPECT_ERROR(di, "walk.c:1x", -EINVAL,
		     "bad location walk.c:1x: use FILE:LINE, FUNCTION or *ADDRESS");
}

static void check_addresses(struct esky_debuginfo *di)
{
	static const struct {
		const char *spec;
		uint64_t addr;
	} cases[] = {
		{ "*0x1234", 0x1234 },
		{ "*4660", 0x1234 },
		{ "*0xffffffffff600000", 0xffffffffff600000ull },
	};
	const struct func *main_fn = func_named("main");
	struct esky_loc *locs, loc;
	size_t i, n;
	char spec[64], buf[256];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (resolve_ok(di, cases[i].spec, &locs, &n, __LINE__))
			continue;
		if (n != 1 || locs[0].addr != cases[i].addr)
			FAIL("resolve '%s': expected one location 0x%" PRIx64 ", found %zu (0x%" PRIx64 ")",
			     cases[i].spec, cases[i].addr, n, n ? locs[0].addr : 0);
		esky_locs_free(locs, n);
	}
	/* *ADDRESS inside main is named like lookup names it. */
	if (main_fn) {
		snprintf(spec, sizeof(spec), "*0x%" PRIx64, main_fn->value + 1);
		if (!resolve_ok(di, spec, &locs, &n, __LINE__)) {
			if (n != 1 || !locs[0].function || strcmp(locs[0].function, "main") != 0 ||
			    locs[0].line != main_fn->lines[1])
				FAIL("resolve '%s': expected main line %u, found %s line %u", spec,
				     main_fn->lines[1], n && locs[0].function ? locs[0].function : "NULL",
				     n ? locs[0].line : 0);
			esky_locs_free(locs, n);
		}
	}

	/* Nothing covers these. */
	if (esky_debuginfo_lookup(di, 0, &loc) != -ENOENT)
		FAIL("lookup 0x0: expected -ENOENT");
	esky_debuginfo_describe(di, 0xffffffff00000000ull, buf, sizeof(buf));
	if (strcmp(buf, "0xffffffff00000000") != 0)
		FAIL("describe 0xffffffff00000000: expected itself, found \"%s\"", buf);
	/* A short buffer is cut, not overrun. */
	memset(buf, 'x', sizeof(buf));
	esky_debuginfo_describe(di, 0xffffffff00000000ull, buf, 5);
	if (strcmp(buf, "0xff") != 0)
		FAIL("describe into 5 bytes: expected \"0xff\", found \"%.8s\"", buf);
}

struct completions {
	char **names;
	size_t n, cap;
};

static void collect(const char *name, void *ctx)
{
	struct completions *c = ctx;

	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->names = realloc(c->names, c->cap * sizeof(*c->names));
		if (!c->names)
			harness_error("out of memory");
	}
	c->names[c->n++] = xstrdup(name);
}

static size_t count_of(const struct completions *c, const char *name)
{
	size_t i, k = 0;

	for (i = 0; i < c->n; i++)
		k += strcmp(c->names[i], name) == 0;
	return k;
}

static void completions_free(struct completions *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	memset(c, 0, sizeof(*c));
}

static void check_complete(struct esky_debuginfo *di, bool nodebug)
{
	struct completions c = { 0 };
	size_t i;

	esky_debuginfo_complete(di, "ste", collect, &c);
	if (count_of(&c, "step") != 1)
		FAIL("complete 'ste': expected step once, found it %zu times", count_of(&c, "step"));
	for (i = 0; i < c.n; i++)
		if (strncmp(c.names[i], "ste", 3) != 0)
			FAIL("complete 'ste': found \"%s\"", c.names[i]);
	completions_free(&c);

	/* The source file's basename is a completion only with DWARF. */
	esky_debuginfo_complete(di, "wal", collect, &c);
	if (count_of(&c, src_name) != !nodebug)
		FAIL("complete 'wal': expected %s %d times, found %zu", src_name, !nodebug,
		     count_of(&c, src_name));
	completions_free(&c);

	/* Everything: each name once, and every function of nm among them. */
	esky_debuginfo_complete(di, "", collect, &c);
	for (i = 1; i < c.n; i++)
		if (strcmp(c.names[i - 1], c.names[i]) >= 0)
			FAIL("complete '': \"%s\" then \"%s\": not sorted or twice", c.names[i - 1],
			     c.names[i]);
	for (i = 0; i < syms_n; i++)
		if (count_of(&c, syms[i].name) != 1)
			FAIL("complete '': expected %s once, found it %zu times", syms[i].name,
			     count_of(&c, syms[i].name));
	completions_free(&c);

	esky_debuginfo_complete(di, "zzzz_no_such_prefix", collect, &c);
	if (c.n)
		FAIL("complete 'zzzz_no_such_prefix': expected nothing, found \"%s\"", c.names[0]);
	completions_free(&c);
}

/* Free what the tools said, so that valgrind shows only the library's leaks. */
static void free_oracle(void)
{
	size_t i;

	for (i = 0; i < funcs_n; i++)
		free(funcs[i].lines);
	free(funcs);
	for (i = 0; i < syms_n; i++)
		free(syms[i].name);
	free(syms);
}

static unsigned count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned n = 0;
	int ch;

	if (!f)
		harness_error("cannot read %s: %s", path, strerror(errno));
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static bool have_tool(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
	return system(cmd) == 0;
}

static void check_open_errors(const char *src_path)
{
	struct esky_debuginfo *di = (struct esky_debuginfo *)1;
	const char *msg;
	char want[4096];
	int r;

	esky_error_clear();
	r = esky_debuginfo_open("/nonexistent/walk", &di);
	msg = esky_last_error();
	if (r != -ENOENT || di || !msg || strcmp(msg, "/nonexistent/walk: No such file or directory"))
		FAIL("open /nonexistent/walk: expected -ENOENT and its message, found %d \"%s\"", r,
		     msg ? msg : "(none)");

	/* The source is no ELF file; the message names it as it was given. */
	esky_error_clear();
	di = (struct esky_debuginfo *)1;
	snprintf(want, sizeof(want), "%s: not an ELF file", src_path);
	r = esky_debuginfo_open(src_path, &di);
	msg = esky_last_error();
	if (r != -ENOEXEC || di || !msg || strcmp(msg, want) != 0)
		FAIL("open %s: expected -ENOEXEC \"%s\", found %d \"%s\"", src_path, want, r,
		     msg ? msg : "(none)");
}

int main(int argc, char **argv)
{
	struct esky_debuginfo *di;
	bool nodebug = false;
	const char *src_path;
	int argi = 1, r;

	if (argc > 1 && strcmp(argv[1], "--nodebug") == 0) {
		nodebug = true;
		argi++;
	}
	if (argc - argi != 2)
		harness_error("usage: debuginfo_test [--nodebug] SOURCE PROGRAM");
	src_path = argv[argi];
	prog_path = argv[argi + 1];
	prog_name = base_of(prog_path);
	fail_context = &prog_name;
	src_name = base_of(src_path);
	if (access(prog_path, R_OK) != 0 || access(src_path, R_OK) != 0)
		harness_error("cannot read %s or %s", src_path, prog_path);
	if (!have_tool("nm") || !have_tool("addr2line")) {
		printf("SKIP: nm and addr2line (binutils) are needed\n");
		return EXIT_SKIP;
	}

	read_nm();
	read_funcs();
	if (!nodebug && (!func_named("main") || !func_named("step") || !func_named("score")))
		harness_error("addr2line puts no main, step or score in %s: %s not built with -g from %s?",
			      src_name, prog_path, src_name);
	if (nodebug && funcs_n)
		harness_error("addr2line finds lines in %s: not built without -g", prog_path);

	esky_error_clear();
	r = esky_debuginfo_open(prog_path, &di);
	if (r) {
		FAIL("open: expected success, found %d (%s)", r,
		     esky_last_error() ? esky_last_error() : "no message");
		return EXIT_FAIL;
	}
	check_header(di, nodebug);
	if (nodebug) {
		check_nodebug(di);
	} else {
		check_lines(di, count_lines(src_path));
		check_file_names(di);
		check_functions_dwarf(di);
		check_lookup_dwarf(di);
	}
	check_functions_symbols(di);
	check_symbol_names(di);
	check_gaps(di);
	check_bad_specs(di);
	check_addresses(di);
	check_complete(di, nodebug);
	esky_debuginfo_close(di);

	check_open_errors(src_path);
	free_oracle();

	if (failures) {
		if (failures > MAX_REPORTS)
			fprintf(stderr, "... and %u more\n", failures - MAX_REPORTS);
		fprintf(stderr, "FAIL: %s: %u checks failed\n", prog_name, failures);
		return EXIT_FAIL;
	}
	printf("PASS: %s: %u lines, %u functions with DWARF, %u symbols\n", prog_name, n_lines,
	       n_funcs, n_syms);
	return EXIT_PASS;
}
