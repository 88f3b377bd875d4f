/*
 * Location naming: DWARF line tables and functions (libdwarf), ELF symbols
 * (libelf).
 *
 * Everything is read once, at open, into sorted arrays; the libdwarf and
 * libelf handles are closed before esky_debuginfo_open returns, so a handle
 * costs only its arrays and no lookup touches the file again. Strings live
 * in one arena and are named by their offset in it.
 *
 * Address to name: three arrays of address spans sorted by start (line
 * table rows, DWARF function ranges, ELF function symbols), each with the
 * running maximum of the span ends so that a binary search and a short walk
 * back find the innermost span that covers an address.
 *
 * Name to address: the is_stmt rows sorted by (file, line, address) answer
 * FILE:LINE; functions and symbols sorted by name answer FUNCTION.
 */
#include "debuginfo.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dwarf.h>
#include <libdwarf.h>

/*
 * DIEs that can hold a subprogram worth naming: nested functions of GNU C
 * sit in subprograms and lexical blocks, C++ code in namespaces. Deeper
 * nesting than this is a damaged file, not a program.
 */
#define DIE_MAX_DEPTH 64

/* [lo, hi) of code; maxhi is the largest hi of this span and all before it. */
struct di_span {
	uint64_t lo, hi, maxhi;
	uint32_t id;   /* what the span names: see each array */
	uint32_t rank; /* order among spans with the same lo: higher is better */
};

/* One line table row: the code [lo, hi) is line of file. */
struct di_row {
	struct di_span span; /* id: index of the row in its table, for a stable sort */
	uint32_t file;
	uint32_t line;
	bool is_stmt;
};

/* An is_stmt row, for FILE:LINE. */
struct di_stmt {
	uint32_t file, line;
	uint64_t addr;
};

/* A source file: path as DWARF names it, base its last component. */
struct di_file {
	uint32_t path, base;
};

/* A DWARF function with code. */
struct di_func {
	uint32_t name;
	uint64_t entry;    /* where a call lands: low_pc, or the first range */
	uint64_t entry_hi; /* end of the range that holds entry */
};

struct esky_debuginfo {
	char *name; /* basename of the file, for messages */
	char *path; /* the file, opened again for its call frame information */
	bool is_pie;
	uint64_t first_vaddr;

	struct esky_buf strs; /* NUL-terminated strings, named by offset */

	/* PF_X segments: code outside them is a discarded section's tombstone. */
	struct { uint64_t lo, hi; } *text;
	size_t text_n, text_cap;

	struct di_file *files;
	size_t files_n, files_cap;
	uint32_t *file_slots; /* hash of paths: file index + 1, 0 is empty */
	size_t file_slots_n;

	struct di_row *rows; /* sorted by lo, then table order */
	size_t rows_n, rows_cap;
	struct di_stmt *stmts; /* sorted by file, line, addr */
	size_t stmts_n;

	struct di_func *funcs;
	size_t funcs_n, funcs_cap;
	struct di_span *franges; /* id: index in funcs */
	size_t franges_n, franges_cap;
	uint32_t *funcs_by_name;

	struct di_span *syms; /* id: name; rank: preference among aliases */
	size_t syms_n, syms_cap;
	/* data objects of the ELF symbol tables (STT_OBJECT): id is the name */
	struct di_span *objs;
	size_t objs_n, objs_cap;
	uint32_t *syms_by_name; /* indexes in syms */

	uint32_t *names; /* function names and file basenames, sorted, unique */
	size_t names_n;
};

static const char *str_at(const struct esky_debuginfo *di, uint32_t off)
{
	return di->strs.data + off;
}

/* Copy s into the arena; *off names it. 0 or -ENOMEM (-EFBIG past 4 GiB). */
static int str_add(struct esky_debuginfo *di, const char *s, uint32_t *off)
{
	size_t len = strlen(s) + 1;

	if (di->strs.len + len > UINT32_MAX)
		return -EFBIG;
	*off = (uint32_t)di->strs.len;
	return esky_buf_append(&di->strs, s, len);
}

/*
 * The array p of *cap elements of size bytes, with room for element n:
 * p itself, or a larger copy (*cap updated). NULL when out of memory, and
 * p is then untouched.
 */
static void *grow(void *p, size_t n, size_t *cap, size_t size)
{
	size_t ncap;
	void *q;

	if (n < *cap)
		return p;
	ncap = *cap ? *cap * 2 : 64;
	if (ncap > SIZE_MAX / size)
		return NULL;
	q = realloc(p, ncap * size);
	if (q)
		*cap = ncap;
	return q;
}

static bool in_text(const struct esky_debuginfo *di, uint64_t addr)
{
	size_t i;

	/* A file without PF_X segments (odd, but harmless) filters nothing. */
	if (!di->text_n)
		return true;
	for (i = 0; i < di->text_n; i++)
		if (addr >= di->text[i].lo && addr < di->text[i].hi)
			return true;
	return false;
}

/* ---- spans ---- */

static int span_cmp(const void *a, const void *b)
{
	const struct di_span *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

#define SPAN_AT(base, stride, i) ((struct di_span *)((char *)(base) + (i) * (stride)))

/* Sort spans (the first member of elements of size stride) and set maxhi. */
static void spans_sort(void *base, size_t n, size_t stride)
{
	uint64_t maxhi = 0;
	size_t i;

	if (!n)
		return; /* (qsort of an empty array at NULL is undefined) */
	qsort(base, n, stride, span_cmp);
	for (i = 0; i < n; i++) {
		struct di_span *s = SPAN_AT(base, stride, i);

		if (s->hi > maxhi)
			maxhi = s->hi;
		s->maxhi = maxhi;
	}
}

/*
 * The innermost span that covers addr (the one that starts last), or -1.
 * Among spans that start at the same address the highest rank wins: it
 * sorts last and is met first walking back.
 */
static ssize_t spans_find(const void *base, size_t n, size_t stride, uint64_t addr)
{
	size_t lo = 0, hi = n, i;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (SPAN_AT(base, stride, mid)->lo <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i-- > 0;) {
		const struct di_span *s = SPAN_AT(base, stride, i);

		if (s->maxhi <= addr)
			break;
		if (s->hi > addr)
			return (ssize_t)i;
	}
	return -1;
}

/* ---- ELF: header, segments, symbols ---- */

/* Higher is the better name among aliases: write over __libc_write. */
static uint32_t sym_rank(const char *name, unsigned char bind)
{
	uint32_t rank = bind == STB_GLOBAL ? 2 : bind == STB_WEAK ? 1 : 0;

	if (name[0] != '_')
		rank += 8;
	else if (name[1] != '_')
		rank += 4;
	return rank;
}

static int read_symtab(struct esky_debuginfo *di, Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t i, n;
	void *q;
	int err;

	if (!data || !sh->sh_entsize)
		return 0;
	n = sh->sh_size / sh->sh_entsize;
	for (i = 0; i < n; i++) {
		GElf_Sym sym;
		const char *name;
		unsigned type;
		struct di_span *s;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		type = GELF_ST_TYPE(sym.st_info);
		if (type == STT_OBJECT && sym.st_shndx != SHN_UNDEF && sym.st_value) {
			name = elf_strptr(elf, sh->sh_link, sym.st_name);
			if (!name || !*name)
				continue;
			q = grow(di->objs, di->objs_n, &di->objs_cap, sizeof(*di->objs));
			if (!q)
				return -ENOMEM;
			di->objs = q;
			s = &di->objs[di->objs_n];
			err = str_add(di, name, &s->id);
			if (err)
				return err;
			s->lo = sym.st_value;
			s->hi = sym.st_value + sym.st_size;
			di->objs_n++;
			continue;
		}
		/* memcpy and friends of a static glibc are IFUNCs. */
		if (type != STT_FUNC && type != STT_GNU_IFUNC)
			continue;
		if (sym.st_shndx == SHN_UNDEF || !sym.st_value)
			continue;
		name = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!name || !*name)
			continue;
		q = grow(di->syms, di->syms_n, &di->syms_cap, sizeof(*di->syms));
		if (!q)
			return -ENOMEM;
		di->syms = q;
		s = &di->syms[di->syms_n];
		err = str_add(di, name, &s->id);
		if (err)
			return err;
		s->lo = sym.st_value;
		/* A symbol without a size names its own address only. */
		s->hi = sym.st_value + (sym.st_size ? sym.st_size : 1);
		s->rank = sym_rank(name, GELF_ST_BIND(sym.st_info));
		di->syms_n++;
	}
	return 0;
}

static int read_elf(struct esky_debuginfo *di, int fd, const char *path)
{
	Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
	GElf_Shdr symtab_sh, dynsym_sh;
	GElf_Ehdr eh;
	size_t phnum, i;
	uint64_t first = UINT64_MAX;
	Elf *elf;
	void *q;
	int err = 0;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return esky_error(-EIO, "%s: libelf: %s", path, elf_errmsg(-1));
	/*
	 * Read, not mapped: a program rebuilt while esky looks at it would
	 * turn a mapping into SIGBUS.
	 */
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf)
		return esky_error(-EIO, "%s: %s", path, elf_errmsg(-1));
	if (elf_kind(elf) != ELF_K_ELF) {
		err = esky_error(-ENOEXEC, "%s: not an ELF file", path);
		goto out_end;
	}
	if (gelf_getclass(elf) != ELFCLASS64 || !gelf_getehdr(elf, &eh) ||
	    eh.e_machine != EM_X86_64) {
		err = esky_error(-ENOEXEC, "%s: not an x86-64 ELF file", path);
		goto out_end;
	}
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
		err = esky_error(-ENOEXEC, "%s: %s, not a program or shared library", path,
				 eh.e_type == ET_REL ? "an object file" :
				 eh.e_type == ET_CORE ? "a core dump" : "an unknown ELF type");
		goto out_end;
	}
	di->is_pie = eh.e_type == ET_DYN;

	if (elf_getphdrnum(elf, &phnum) < 0)
		phnum = 0;
	for (i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_vaddr < first)
			first = ph.p_vaddr;
		if (!(ph.p_flags & PF_X))
			continue;
		q = grow(di->text, di->text_n, &di->text_cap, sizeof(*di->text));
		if (!q) {
			err = -ENOMEM;
			goto out_end;
		}
		di->text = q;
		di->text[di->text_n].lo = ph.p_vaddr;
		di->text[di->text_n].hi = ph.p_vaddr + ph.p_memsz;
		di->text_n++;
	}
	di->first_vaddr = first == UINT64_MAX ? 0 : first & ~(ESKY_PAGE_SIZE - 1);

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB && !symtab) {
			symtab = scn;
			symtab_sh = sh;
		} else if (sh.sh_type == SHT_DYNSYM && !dynsym) {
			dynsym = scn;
			dynsym_sh = sh;
		}
	}
	/* .dynsym is a subset of .symtab: read it only when .symtab is stripped. */
	if (symtab)
		err = read_symtab(di, elf, symtab, &symtab_sh);
	else if (dynsym)
		err = read_symtab(di, elf, dynsym, &dynsym_sh);

out_end:
	elf_end(elf);
	return err;
}

/* ---- DWARF: line tables and functions ---- */

struct dw_ctx {
	struct esky_debuginfo *di;
	Dwarf_Debug dbg;
	Dwarf_Error err;    /* the pending libdwarf error, if any */
	char why[200];      /* its message, kept after the error is freed */
	Dwarf_Half version; /* of the current CU */
	Dwarf_Addr cu_base; /* DW_AT_low_pc of the current CU: base of DWARF 4 ranges */
	uint32_t *filemap;  /* line table file number -> file index + 1 (0: not seen) */
	size_t filemap_n;
	uint32_t row_order; /* rows read so far, for a stable sort */
};

/* Keep the message of the pending libdwarf error and free it; -EIO. */
static int dw_fail(struct dw_ctx *c, const char *what)
{
	snprintf(c->why, sizeof(c->why), "%s: %s", what,
		 c->err ? dwarf_errmsg(c->err) : "unexpected answer");
	if (c->err)
		dwarf_dealloc_error(c->dbg, c->err);
	c->err = NULL;
	return -EIO;
}

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a offset basis */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u; /* FNV-1a prime */
	return h;
}

static int file_slots_rehash(struct esky_debuginfo *di)
{
	size_t n = di->file_slots_n ? di->file_slots_n * 2 : 64, i;
	uint32_t *slots = calloc(n, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (i = 0; i < di->files_n; i++) {
		size_t h = hash_str(str_at(di, di->files[i].path)) & (n - 1);

		while (slots[h])
			h = (h + 1) & (n - 1);
		slots[h] = (uint32_t)i + 1;
	}
	free(di->file_slots);
	di->file_slots = slots;
	di->file_slots_n = n;
	return 0;
}

/*
 * The index of the file named path, added if new. The same header shows
 * up in the line table of every CU that includes it: one index for all.
 */
static int file_intern(struct esky_debuginfo *di, const char *path, uint32_t *idx)
{
	struct di_file *f;
	const char *slash;
	size_t h;
	void *q;
	int err;

	/* Keep the table at most half full. */
	if (2 * (di->files_n + 1) > di->file_slots_n) {
		err = file_slots_rehash(di);
		if (err)
			return err;
	}
	h = hash_str(path) & (di->file_slots_n - 1);
	while (di->file_slots[h]) {
		uint32_t i = di->file_slots[h] - 1;

		if (strcmp(str_at(di, di->files[i].path), path) == 0) {
			*idx = i;
			return 0;
		}
		h = (h + 1) & (di->file_slots_n - 1);
	}
	q = grow(di->files, di->files_n, &di->files_cap, sizeof(*di->files));
	if (!q)
		return -ENOMEM;
	di->files = q;
	f = &di->files[di->files_n];
	err = str_add(di, path, &f->path);
	if (err)
		return err;
	slash = strrchr(path, '/');
	f->base = f->path + (uint32_t)(slash ? slash + 1 - path : 0);
	*idx = (uint32_t)di->files_n;
	di->file_slots[h] = (uint32_t)di->files_n + 1;
	di->files_n++;
	return 0;
}

/* The file index of a row, through the CU's cache of file numbers. */
static int row_file(struct dw_ctx *c, Dwarf_Line line, uint32_t *idx)
{
	Dwarf_Unsigned fno;
	char *name;
	int res, err;

	res = dwarf_line_srcfileno(line, &fno, &c->err);
	if (res != DW_DLV_OK)
		return dw_fail(c, "line table file number");
	if (fno < c->filemap_n && c->filemap[fno]) {
		*idx = c->filemap[fno] - 1;
		return 0;
	}
	/* dwarf_linesrc joins the directory and the compilation directory. */
	res = dwarf_linesrc(line, &name, &c->err);
	if (res != DW_DLV_OK)
		return dw_fail(c, "line table file name");
	err = file_intern(c->di, name, idx);
	dwarf_dealloc(c->dbg, name, DW_DLA_STRING);
	if (err)
		return err;
	/* File numbers are small (an index in the header): cache them. */
	if (fno < 1u << 20) {
		if (fno >= c->filemap_n) {
			size_t n = (size_t)fno + 16;
			uint32_t *m = realloc(c->filemap, n * sizeof(*m));

			if (!m)
				return -ENOMEM;
			memset(m + c->filemap_n, 0, (n - c->filemap_n) * sizeof(*m));
			c->filemap = m;
			c->filemap_n = n;
		}
		c->filemap[fno] = *idx + 1;
	}
	return 0;
}

static int add_row(struct dw_ctx *c, const struct di_row *r)
{
	struct esky_debuginfo *di = c->di;
	void *q;

	q = grow(di->rows, di->rows_n, &di->rows_cap, sizeof(*di->rows));
	if (!q)
		return -ENOMEM;
	di->rows = q;
	di->rows[di->rows_n++] = *r;
	return 0;
}

/*
 * Read the line table of a CU into rows. Each row covers the code up to
 * the next row of its sequence; an end_sequence row only closes the
 * previous one. Sequences outside the code segments are the line tables
 * of sections the linker discarded (--gc-sections), relocated to 0.
 */
static int read_lines(struct dw_ctx *c, Dwarf_Die cu_die)
{
	Dwarf_Line_Context lctx;
	Dwarf_Unsigned lversion;
	Dwarf_Small tables;
	Dwarf_Line *lines;
	Dwarf_Signed n, i;
	struct di_row prev;
	bool have_prev = false, seq_start = true, skip_seq = false;
	int res, err = 0;

	memset(&prev, 0, sizeof(prev));
	/* File numbers are per CU. */
	if (c->filemap_n)
		memset(c->filemap, 0, c->filemap_n * sizeof(*c->filemap));
	res = dwarf_srclines_b(cu_die, &lversion, &tables, &lctx, &c->err);
	if (res == DW_DLV_NO_ENTRY)
		return 0;
	if (res != DW_DLV_OK)
		return dw_fail(c, "line table");
	res = dwarf_srclines_from_linecontext(lctx, &lines, &n, &c->err);
	if (res != DW_DLV_OK) {
		err = dw_fail(c, "line table rows");
		goto out_lctx;
	}
	for (i = 0; i < n; i++) {
		Dwarf_Addr addr;
		Dwarf_Unsigned lineno;
		Dwarf_Bool stmt, end;
		struct di_row r;

		if (dwarf_lineaddr(lines[i], &addr, &c->err) != DW_DLV_OK ||
		    dwarf_lineno(lines[i], &lineno, &c->err) != DW_DLV_OK ||
		    dwarf_linebeginstatement(lines[i], &stmt, &c->err) != DW_DLV_OK ||
		    dwarf_lineendsequence(lines[i], &end, &c->err) != DW_DLV_OK) {
			err = dw_fail(c, "line table row");
			goto out_lctx;
		}
		if (have_prev) {
			/* Addresses only grow in a sequence; a damaged one gets empty rows. */
			prev.span.hi = addr > prev.span.lo ? addr : prev.span.lo;
			err = add_row(c, &prev);
			if (err)
				goto out_lctx;
			have_prev = false;
		}
		if (end) {
			seq_start = true;
			continue;
		}
		if (seq_start) {
			skip_seq = !in_text(c->di, addr);
			seq_start = false;
		}
		if (skip_seq)
			continue;
		memset(&r, 0, sizeof(r));
		r.span.lo = addr;
		r.span.id = c->row_order++;
		r.line = lineno > UINT32_MAX ? 0 : (uint32_t)lineno;
		r.is_stmt = stmt;
		err = row_file(c, lines[i], &r.file);
		if (err)
			goto out_lctx;
		prev = r;
		have_prev = true;
	}
	/* A table without its final end_sequence: keep the last row, empty. */
	if (have_prev) {
		prev.span.hi = prev.span.lo;
		err = add_row(c, &prev);
	}
out_lctx:
	dwarf_srclines_dealloc_b(lctx);
	return err;
}

/* Add one code range [lo, hi) of function fn. */
static int add_frange(struct dw_ctx *c, uint32_t fn, uint64_t lo, uint64_t hi)
{
	struct esky_debuginfo *di = c->di;
	struct di_span *s;
	void *q;

	if (hi <= lo || !in_text(di, lo))
		return 0;
	q = grow(di->franges, di->franges_n, &di->franges_cap, sizeof(*di->franges));
	if (!q)
		return -ENOMEM;
	di->franges = q;
	s = &di->franges[di->franges_n++];
	memset(s, 0, sizeof(*s));
	s->lo = lo;
	s->hi = hi;
	s->id = fn;
	s->rank = fn;
	return 0;
}

/*
 * Ranges of a DW_AT_ranges attribute (a function split into hot and cold
 * parts by gcc -O2), in the order listed: the first holds the entry.
 * DWARF 5 keeps them in .debug_rnglists, with addresses already based;
 * DWARF 4 in .debug_ranges, relative to the CU's base address unless a
 * base address selection entry says otherwise.
 */
static int read_ranges(struct dw_ctx *c, Dwarf_Die die, Dwarf_Attribute attr,
		       uint64_t (*out)[2], size_t max, size_t *n)
{
	Dwarf_Half form;
	int res;

	*n = 0;
	if (dwarf_whatform(attr, &form, &c->err) != DW_DLV_OK)
		return dw_fail(c, "DW_AT_ranges form");
	if (c->version >= 5) {
		Dwarf_Rnglists_Head head;
		Dwarf_Unsigned value, count, global_off, i;

		if (form == DW_FORM_rnglistx)
			res = dwarf_formudata(attr, &value, &c->err);
		else
			res = dwarf_global_formref(attr, &value, &c->err);
		if (res != DW_DLV_OK)
			return dw_fail(c, "DW_AT_ranges");
		res = dwarf_rnglists_get_rle_head(attr, form, value, &head, &count,
						  &global_off, &c->err);
		if (res == DW_DLV_NO_ENTRY)
			return 0;
		if (res != DW_DLV_OK)
			return dw_fail(c, "range list");
		for (i = 0; i < count && *n < max; i++) {
			unsigned len, code;
			Dwarf_Unsigned raw1, raw2, lo, hi;
			Dwarf_Bool no_addr;

			res = dwarf_get_rnglists_entry_fields_a(head, i, &len, &code, &raw1, &raw2,
								&no_addr, &lo, &hi, &c->err);
			if (res != DW_DLV_OK) {
				dwarf_dealloc_rnglists_head(head);
				return dw_fail(c, "range list entry");
			}
			if (no_addr || code == DW_RLE_end_of_list || code == DW_RLE_base_address ||
			    code == DW_RLE_base_addressx)
				continue;
			out[*n][0] = lo;
			out[*n][1] = hi;
			(*n)++;
		}
		dwarf_dealloc_rnglists_head(head);
	} else {
		Dwarf_Off off, realoff;
		Dwarf_Ranges *r;
		Dwarf_Signed count, i;
		Dwarf_Unsigned bytes;
		uint64_t base = c->cu_base;

		res = dwarf_global_formref(attr, &off, &c->err);
		if (res != DW_DLV_OK)
			return dw_fail(c, "DW_AT_ranges");
		res = dwarf_get_ranges_b(c->dbg, off, die, &realoff, &r, &count, &bytes, &c->err);
		if (res == DW_DLV_NO_ENTRY)
			return 0;
		if (res != DW_DLV_OK)
			return dw_fail(c, "range list");
		for (i = 0; i < count && *n < max; i++) {
			if (r[i].dwr_type == DW_RANGES_END)
				break;
			if (r[i].dwr_type == DW_RANGES_ADDRESS_SELECTION) {
				base = r[i].dwr_addr2;
				continue;
			}
			out[*n][0] = base + r[i].dwr_addr1;
			out[*n][1] = base + r[i].dwr_addr2;
			(*n)++;
		}
		dwarf_ranges_dealloc(c->dbg, r, count);
	}
	return 0;
}

/*
 * The name of a subprogram. A concrete instance of an inline function and
 * the definition of a C++ method carry no name: it is on the DIE that
 * their DW_AT_abstract_origin or DW_AT_specification points to.
 */
static int die_name(struct dw_ctx *c, Dwarf_Die die, int hops, uint32_t *off, bool *found)
{
	static const Dwarf_Half refs[] = { DW_AT_abstract_origin, DW_AT_specification };
	char *name;
	size_t i;
	int res, err;

	res = dwarf_diename(die, &name, &c->err);
	if (res == DW_DLV_ERROR)
		return dw_fail(c, "DW_AT_name");
	if (res == DW_DLV_OK) {
		/* The string belongs to libdwarf: copy it before dwarf_finish. */
		*found = true;
		return str_add(c->di, name, off);
	}
	if (hops >= 4)
		return 0;
	for (i = 0; i < ESKY_ARRAY_SIZE(refs); i++) {
		Dwarf_Attribute attr;
		Dwarf_Off ref;
		Dwarf_Die target;

		res = dwarf_attr(die, refs[i], &attr, &c->err);
		if (res == DW_DLV_ERROR)
			return dw_fail(c, "DIE reference");
		if (res == DW_DLV_NO_ENTRY)
			continue;
		res = dwarf_global_formref(attr, &ref, &c->err);
		dwarf_dealloc_attribute(attr);
		if (res != DW_DLV_OK)
			return dw_fail(c, "DIE reference");
		res = dwarf_offdie_b(c->dbg, ref, true, &target, &c->err);
		if (res != DW_DLV_OK)
			return dw_fail(c, "DIE reference target");
		err = die_name(c, target, hops + 1, off, found);
		dwarf_dealloc_die(target);
		return err;
	}
	return 0;
}

/* Record a subprogram DIE that has code: its name, entry and ranges. */
static int add_function(struct dw_ctx *c, Dwarf_Die die)
{
	struct esky_debuginfo *di = c->di;
	uint64_t ranges[16][2];
	size_t nranges = 0, i;
	Dwarf_Addr low, high;
	Dwarf_Attribute attr;
	struct di_func *f;
	bool named = false;
	uint32_t name;
	void *q;
	int res, err;

	res = dwarf_lowpc(die, &low, &c->err);
	if (res == DW_DLV_ERROR)
		return dw_fail(c, "DW_AT_low_pc");
	if (res == DW_DLV_OK) {
		Dwarf_Half form;
		enum Dwarf_Form_Class cls;

		res = dwarf_highpc_b(die, &high, &form, &cls, &c->err);
		if (res == DW_DLV_ERROR)
			return dw_fail(c, "DW_AT_high_pc");
		if (res == DW_DLV_NO_ENTRY)
			high = low + 1;
		else if (cls == DW_FORM_CLASS_CONSTANT) /* DWARF 4+: a length */
			high += low;
		ranges[0][0] = low;
		ranges[0][1] = high;
		nranges = 1;
	} else {
		res = dwarf_attr(die, DW_AT_ranges, &attr, &c->err);
		if (res == DW_DLV_ERROR)
			return dw_fail(c, "DW_AT_ranges");
		if (res == DW_DLV_NO_ENTRY)
			return 0; /* a declaration or an abstract instance: no code */
		err = read_ranges(c, die, attr, ranges, ESKY_ARRAY_SIZE(ranges), &nranges);
		dwarf_dealloc_attribute(attr);
		if (err)
			return err;
	}
	if (!nranges || ranges[0][1] <= ranges[0][0] || !in_text(di, ranges[0][0]))
		return 0;

	err = die_name(c, die, 0, &name, &named);
	if (err || !named)
		return err;

	q = grow(di->funcs, di->funcs_n, &di->funcs_cap, sizeof(*di->funcs));
	if (!q)
		return -ENOMEM;
	di->funcs = q;
	f = &di->funcs[di->funcs_n];
	f->name = name;
	f->entry = ranges[0][0];
	f->entry_hi = ranges[0][1];
	for (i = 0; i < nranges; i++) {
		err = add_frange(c, (uint32_t)di->funcs_n, ranges[i][0], ranges[i][1]);
		if (err)
			return err;
	}
	di->funcs_n++;
	return 0;
}

static int walk_dies(struct dw_ctx *c, Dwarf_Die parent, int depth)
{
	Dwarf_Die die, next;
	int res, err = 0;

	if (depth > DIE_MAX_DEPTH)
		return 0;
	res = dwarf_child(parent, &die, &c->err);
	while (res == DW_DLV_OK) {
		Dwarf_Half tag;

		if (dwarf_tag(die, &tag, &c->err) != DW_DLV_OK) {
			err = dw_fail(c, "DIE tag");
			dwarf_dealloc_die(die);
			return err;
		}
		if (tag == DW_TAG_subprogram)
			err = add_function(c, die);
		if (!err && (tag == DW_TAG_subprogram || tag == DW_TAG_lexical_block ||
			     tag == DW_TAG_namespace || tag == DW_TAG_module))
			err = walk_dies(c, die, depth + 1);
		if (err) {
			dwarf_dealloc_die(die);
			return err;
		}
		res = dwarf_siblingof_b(c->dbg, die, true, &next, &c->err);
		dwarf_dealloc_die(die);
		die = next;
	}
	if (res == DW_DLV_ERROR)
		return dw_fail(c, "DIE tree");
	return 0;
}

static int read_cu(struct dw_ctx *c, Dwarf_Die cu_die)
{
	Dwarf_Addr base;
	int res, err;

	res = dwarf_lowpc(cu_die, &base, &c->err);
	if (res == DW_DLV_ERROR)
		return dw_fail(c, "CU base address");
	c->cu_base = res == DW_DLV_OK ? base : 0;
	err = read_lines(c, cu_die);
	if (err)
		return err;
	return walk_dies(c, cu_die, 0);
}

/* Forget what DWARF gave (it was damaged): symbols stay. */
static void drop_dwarf(struct esky_debuginfo *di)
{
	di->files_n = 0;
	memset(di->file_slots, 0, di->file_slots_n * sizeof(*di->file_slots));
	di->rows_n = 0;
	di->funcs_n = 0;
	di->franges_n = 0;
}

/*
 * Read the DWARF of the file open at fd. No DWARF is no error, and neither
 * is damaged DWARF: it is dropped with a warning and the ELF symbols name
 * what they can. Only -ENOMEM (and -EFBIG) fail.
 */
static int read_dwarf(struct esky_debuginfo *di, int fd, const char *path)
{
	struct dw_ctx c;
	int res, err = 0;

	memset(&c, 0, sizeof(c));
	c.di = di;
	res = dwarf_init_b(fd, DW_DLC_READ, DW_GROUPNUMBER_ANY, NULL, NULL, &c.dbg, &c.err);
	if (res == DW_DLV_NO_ENTRY)
		return 0;
	if (res != DW_DLV_OK) {
		dw_fail(&c, "DWARF");
		pr_warn("%s: cannot read its debug information (%s): using ELF symbols only",
			path, c.why);
		return 0;
	}
	for (;;) {
		Dwarf_Unsigned hdr_len, type_off, next_off;
		Dwarf_Half addr_size, len_size, ext_size, cu_type;
		Dwarf_Off abbrev_off;
		Dwarf_Sig8 sig;
		Dwarf_Die cu_die;

		res = dwarf_next_cu_header_d(c.dbg, true, &hdr_len, &c.version, &abbrev_off,
					     &addr_size, &len_size, &ext_size, &sig, &type_off,
					     &next_off, &cu_type, &c.err);
		if (res == DW_DLV_NO_ENTRY)
			break;
		if (res != DW_DLV_OK) {
			err = dw_fail(&c, "CU header");
			break;
		}
		res = dwarf_siblingof_b(c.dbg, NULL, true, &cu_die, &c.err);
		if (res == DW_DLV_NO_ENTRY)
			continue;
		if (res != DW_DLV_OK) {
			err = dw_fail(&c, "CU DIE");
			break;
		}
		err = read_cu(&c, cu_die);
		dwarf_dealloc_die(cu_die);
		if (err)
			break;
	}
	if (err == -EIO) {
		pr_warn("%s: damaged debug information (%s): using ELF symbols only", path, c.why);
		drop_dwarf(di);
		err = 0;
	}
	free(c.filemap);
	dwarf_finish(c.dbg, &c.err);
	return err;
}

/* ---- index ---- */

static int stmt_cmp(const void *a, const void *b)
{
	const struct di_stmt *x = a, *y = b;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return (x->addr > y->addr) - (x->addr < y->addr);
}

static int func_name_cmp(const void *a, const void *b, void *ctx)
{
	const struct esky_debuginfo *di = ctx;
	const struct di_func *x = &di->funcs[*(const uint32_t *)a];
	const struct di_func *y = &di->funcs[*(const uint32_t *)b];
	int r = strcmp(str_at(di, x->name), str_at(di, y->name));

	if (r)
		return r;
	return (x->entry > y->entry) - (x->entry < y->entry);
}

static int sym_name_cmp(const void *a, const void *b, void *ctx)
{
	const struct esky_debuginfo *di = ctx;
	const struct di_span *x = &di->syms[*(const uint32_t *)a];
	const struct di_span *y = &di->syms[*(const uint32_t *)b];
	int r = strcmp(str_at(di, x->id), str_at(di, y->id));

	if (r)
		return r;
	return (x->lo > y->lo) - (x->lo < y->lo);
}

static int str_off_cmp(const void *a, const void *b, void *ctx)
{
	const struct esky_debuginfo *di = ctx;

	return strcmp(str_at(di, *(const uint32_t *)a), str_at(di, *(const uint32_t *)b));
}

static int build_index(struct esky_debuginfo *di)
{
	bool *file_used = NULL;
	size_t i, n;

	spans_sort(di->rows, di->rows_n, sizeof(*di->rows));
	spans_sort(di->franges, di->franges_n, sizeof(*di->franges));
	spans_sort(di->syms, di->syms_n, sizeof(*di->syms));

	/* FILE:LINE looks at is_stmt rows: the places a debugger stops at. */
	if (di->rows_n) {
		di->stmts = malloc(di->rows_n * sizeof(*di->stmts));
		file_used = calloc(di->files_n, sizeof(*file_used));
		if (!di->stmts || !file_used)
			goto out_nomem;
	}
	for (i = 0; i < di->rows_n; i++) {
		const struct di_row *r = &di->rows[i];

		if (!r->is_stmt || !r->line)
			continue;
		di->stmts[di->stmts_n].file = r->file;
		di->stmts[di->stmts_n].line = r->line;
		di->stmts[di->stmts_n].addr = r->span.lo;
		di->stmts_n++;
		file_used[r->file] = true;
	}
	if (di->stmts_n)
		qsort(di->stmts, di->stmts_n, sizeof(*di->stmts), stmt_cmp);

	if (di->funcs_n) {
		di->funcs_by_name = malloc(di->funcs_n * sizeof(*di->funcs_by_name));
		if (!di->funcs_by_name)
			goto out_nomem;
	}
	for (i = 0; i < di->funcs_n; i++)
		di->funcs_by_name[i] = (uint32_t)i;
	if (di->funcs_n)
		qsort_r(di->funcs_by_name, di->funcs_n, sizeof(uint32_t), func_name_cmp, di);

	if (di->syms_n) {
		di->syms_by_name = malloc(di->syms_n * sizeof(*di->syms_by_name));
		if (!di->syms_by_name)
			goto out_nomem;
	}
	for (i = 0; i < di->syms_n; i++)
		di->syms_by_name[i] = (uint32_t)i;
	if (di->syms_n)
		qsort_r(di->syms_by_name, di->syms_n, sizeof(uint32_t), sym_name_cmp, di);

	/* Completion: function names and the basenames of files with code. */
	n = di->funcs_n + di->syms_n + di->files_n;
	if (n) {
		di->names = malloc(n * sizeof(*di->names));
		if (!di->names)
			goto out_nomem;
	}
	for (i = 0; i < di->funcs_n; i++)
		di->names[di->names_n++] = di->funcs[i].name;
	for (i = 0; i < di->syms_n; i++)
		di->names[di->names_n++] = di->syms[i].id;
	for (i = 0; i < di->files_n; i++)
		if (file_used[i])
			di->names[di->names_n++] = di->files[i].base;
	if (di->names_n)
		qsort_r(di->names, di->names_n, sizeof(uint32_t), str_off_cmp, di);
	for (i = n = 0; i < di->names_n; i++)
		if (!n || strcmp(str_at(di, di->names[n - 1]), str_at(di, di->names[i])))
			di->names[n++] = di->names[i];
	di->names_n = n;

	free(file_used);
	return 0;

out_nomem:
	free(file_used);
	return -ENOMEM;
}

/* ---- public interface ---- */

int esky_debuginfo_open(const char *path, struct esky_debuginfo **out)
{
	struct esky_debuginfo *di;
	const char *base = strrchr(path, '/');
	struct stat st;
	int fd, err;

	*out = NULL;
	di = calloc(1, sizeof(*di));
	if (!di)
		return esky_error(-ENOMEM, "%s: out of memory", path);
	di->name = strdup(base ? base + 1 : path);
	di->path = strdup(path);
	if (!di->name || !di->path) {
		err = -ENOMEM;
		goto out_free;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = esky_error(-errno, "%s: %s", path, strerror(errno));
		goto out_free;
	}
	/* libelf says "invalid file descriptor" about a directory. */
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		err = esky_error(S_ISDIR(st.st_mode) ? -EISDIR : -ENOEXEC, "%s: %s", path,
				 S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
		close(fd);
		goto out_free;
	}
	err = read_elf(di, fd, path);
	if (!err)
		err = read_dwarf(di, fd, path);
	close(fd);
	if (!err)
		err = build_index(di);
	if (err)
		goto out_free;
	*out = di;
	return 0;

out_free:
	if (err == -ENOMEM || err == -EFBIG)
		esky_error(err, "%s: out of memory reading its symbols and debug information", path);
	esky_debuginfo_close(di);
	return err;
}

void esky_debuginfo_close(struct esky_debuginfo *di)
{
	if (!di)
		return;
	free(di->name);
	free(di->path);
	esky_buf_free(&di->strs);
	free(di->text);
	free(di->files);
	free(di->file_slots);
	free(di->rows);
	free(di->stmts);
	free(di->funcs);
	free(di->franges);
	free(di->funcs_by_name);
	free(di->syms);
	free(di->syms_by_name);
	free(di->objs);
	free(di->names);
	free(di);
}

const char *esky_debuginfo_name(const struct esky_debuginfo *di)
{
	return di->name;
}

bool esky_debuginfo_has_dwarf(const struct esky_debuginfo *di)
{
	return di->rows_n > 0;
}

bool esky_debuginfo_is_pie(const struct esky_debuginfo *di)
{
	return di->is_pie;
}

uint64_t esky_debuginfo_first_vaddr(const struct esky_debuginfo *di)
{
	return di->first_vaddr;
}

/* What covers addr: a DWARF function, an ELF symbol, a line row (-1: none). */
struct di_hit {
	ssize_t frange, sym, row;
};

static void find_all(const struct esky_debuginfo *di, uint64_t addr, struct di_hit *h)
{
	h->frange = spans_find(di->franges, di->franges_n, sizeof(*di->franges), addr);
	h->sym = spans_find(di->syms, di->syms_n, sizeof(*di->syms), addr);
	h->row = spans_find(di->rows, di->rows_n, sizeof(*di->rows), addr);
}

/* The name of the function that holds addr, DWARF first; NULL if none. */
static const char *hit_function(const struct esky_debuginfo *di, const struct di_hit *h)
{
	if (h->frange >= 0)
		return str_at(di, di->funcs[di->franges[h->frange].id].name);
	if (h->sym >= 0)
		return str_at(di, di->syms[h->sym].id);
	return NULL;
}

void esky_loc_clear(struct esky_loc *loc)
{
	free(loc->function);
	free(loc->file);
	memset(loc, 0, sizeof(*loc));
}

void esky_locs_free(struct esky_loc *locs, size_t n)
{
	size_t i;

	if (!locs)
		return;
	for (i = 0; i < n; i++)
		esky_loc_clear(&locs[i]);
	free(locs);
}

/* Fill loc with copies of function, file and line; 0 or -ENOMEM. */
static int loc_set(struct esky_loc *loc, uint64_t addr, const char *function,
		   const char *file, unsigned line)
{
	memset(loc, 0, sizeof(*loc));
	loc->addr = addr;
	loc->line = line;
	if (function && !(loc->function = strdup(function)))
		goto out_nomem;
	if (file && !(loc->file = strdup(file)))
		goto out_nomem;
	return 0;

out_nomem:
	esky_loc_clear(loc);
	return -ENOMEM;
}

int esky_debuginfo_lookup(struct esky_debuginfo *di, uint64_t addr, struct esky_loc *out)
{
	const struct di_row *row;
	struct di_hit h;

	memset(out, 0, sizeof(*out));
	find_all(di, addr, &h);
	if (h.frange < 0 && h.sym < 0 && h.row < 0)
		return -ENOENT;
	row = h.row >= 0 ? &di->rows[h.row] : NULL;
	if (loc_set(out, addr, hit_function(di, &h),
		    row && row->line ? str_at(di, di->files[row->file].path) : NULL,
		    row ? row->line : 0))
		return esky_error(-ENOMEM, "out of memory");
	return 0;
}

char *esky_debuginfo_describe(struct esky_debuginfo *di, uint64_t addr, char *buf, size_t n)
{
	const struct di_row *row;
	const char *fn;
	uint64_t start = addr;
	struct di_hit h;

	if (!n)
		return buf;
	find_all(di, addr, &h);
	row = h.row >= 0 && di->rows[h.row].line ? &di->rows[h.row] : NULL;
	fn = hit_function(di, &h);
	if (row) {
		if (fn)
			snprintf(buf, n, "%s at %s:%u", fn,
				 str_at(di, di->files[row->file].base), row->line);
		else
			snprintf(buf, n, "0x%" PRIx64 " at %s:%u", addr,
				 str_at(di, di->files[row->file].base), row->line);
		return buf;
	}
	if (h.frange >= 0)
		start = di->franges[h.frange].lo;
	else if (h.sym >= 0)
		start = di->syms[h.sym].lo;
	if (!fn)
		snprintf(buf, n, "0x%" PRIx64, addr);
	else if (addr == start)
		snprintf(buf, n, "%s", fn);
	else
		snprintf(buf, n, "%s+0x%" PRIx64, fn, addr - start);
	return buf;
}

/*
 * Where a function's body starts, as gdb finds it without prologue
 * analysis: the first is_stmt row after the entry whose line differs from
 * the entry's line (gcc -O0 gives the opening line to the prologue and the
 * first statement its own line). The entry itself if there is none.
 */
static uint64_t after_prologue(const struct esky_debuginfo *di, const struct di_func *f)
{
	ssize_t i = spans_find(di->rows, di->rows_n, sizeof(*di->rows), f->entry);
	uint32_t line0;
	size_t j;

	if (i < 0)
		return f->entry;
	line0 = di->rows[i].line;
	for (j = (size_t)i + 1; j < di->rows_n && di->rows[j].span.lo < f->entry_hi; j++) {
		const struct di_row *r = &di->rows[j];

		if (r->span.lo <= f->entry || !r->is_stmt || !r->line)
			continue;
		if (r->line != line0)
			return r->span.lo;
	}
	return f->entry;
}

/* A growing array of results. */
struct loc_list {
	struct esky_loc *v;
	size_t n, cap;
};

static int list_add(struct loc_list *l, uint64_t addr, const char *function,
		    const char *file, unsigned line)
{
	void *q;
	int err;

	q = grow(l->v, l->n, &l->cap, sizeof(*l->v));
	if (!q)
		return -ENOMEM;
	l->v = q;
	err = loc_set(&l->v[l->n], addr, function, file, line);
	if (err)
		return err;
	l->n++;
	return 0;
}

static int loc_addr_cmp(const void *a, const void *b)
{
	const struct esky_loc *x = a, *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

/* Hand the list over sorted by address without duplicates (or free it). */
static int list_finish(struct loc_list *l, int err, struct esky_loc **locs, size_t *n)
{
	size_t i, k;

	if (err) {
		esky_locs_free(l->v, l->n);
		return err == -ENOMEM ? esky_error(err, "out of memory") : err;
	}
	qsort(l->v, l->n, sizeof(*l->v), loc_addr_cmp);
	for (i = k = 0; i < l->n; i++) {
		if (k && l->v[k - 1].addr == l->v[i].addr) {
			esky_loc_clear(&l->v[i]);
			continue;
		}
		l->v[k++] = l->v[i];
	}
	*locs = l->v;
	*n = k;
	return 0;
}

/* First index of stmts at or after (file, line). */
static size_t stmts_lower(const struct esky_debuginfo *di, uint32_t file, uint32_t line)
{
	size_t lo = 0, hi = di->stmts_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct di_stmt *s = &di->stmts[mid];

		if (s->file < file || (s->file == file && s->line < line))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* want names path by its basename or a suffix of whole components. */
static bool file_matches(const char *path, const char *want)
{
	size_t pl = strlen(path), wl = strlen(want);

	if (wl > pl || strcmp(path + pl - wl, want) != 0)
		return false;
	return wl == pl || want[0] == '/' || path[pl - wl - 1] == '/';
}

/* A code address of FILE:LINE and the function that holds it. */
struct line_cand {
	uint64_t addr;
	uint32_t file;
	int kind;     /* 0: DWARF function, 1: ELF symbol, 2: none */
	uint64_t key; /* which function (or the address itself) */
};

static int cand_key_cmp(const void *a, const void *b)
{
	const struct line_cand *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind - y->kind;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return (x->addr > y->addr) - (x->addr < y->addr);
}

static int resolve_line(struct esky_debuginfo *di, const char *file, uint32_t line,
			struct esky_loc **locs, size_t *n)
{
	struct loc_list l = { 0 };
	struct line_cand *cands = NULL;
	size_t ncands = 0, cands_cap = 0, i, j;
	uint32_t best = UINT32_MAX;
	bool any_file = false;
	void *q;
	int err = 0;

	/* A line without code moves to the next line with code, as in gdb. */
	for (i = 0; i < di->files_n; i++) {
		size_t k = stmts_lower(di, (uint32_t)i, 0);

		if (k == di->stmts_n || di->stmts[k].file != i ||
		    !file_matches(str_at(di, di->files[i].path), file))
			continue;
		any_file = true;
		k = stmts_lower(di, (uint32_t)i, line);
		if (k < di->stmts_n && di->stmts[k].file == i && di->stmts[k].line < best)
			best = di->stmts[k].line;
	}
	if (!any_file)
		return esky_error(-ENOENT, "no source file %s in %s", file, di->name);
	if (best == UINT32_MAX)
		return esky_error(-ENOENT, "no line %u in %s", line, file);

	for (i = 0; i < di->files_n; i++) {
		if (!file_matches(str_at(di, di->files[i].path), file))
			continue;
		for (j = stmts_lower(di, (uint32_t)i, best);
		     j < di->stmts_n && di->stmts[j].file == i && di->stmts[j].line == best; j++) {
			struct line_cand *c;
			struct di_hit h;

			q = grow(cands, ncands, &cands_cap, sizeof(*cands));
			if (!q) {
				err = -ENOMEM;
				goto out;
			}
			cands = q;
			c = &cands[ncands++];
			c->addr = di->stmts[j].addr;
			c->file = (uint32_t)i;
			find_all(di, c->addr, &h);
			if (h.frange >= 0) {
				c->kind = 0;
				c->key = di->franges[h.frange].id;
			} else if (h.sym >= 0) {
				c->kind = 1;
				c->key = (uint64_t)h.sym;
			} else {
				c->kind = 2;
				c->key = c->addr;
			}
		}
	}
	/* One address per function: the lowest (a for loop has several). */
	qsort(cands, ncands, sizeof(*cands), cand_key_cmp);
	for (i = 0; i < ncands && !err; i++) {
		struct di_hit h;

		if (i && cands[i].kind == cands[i - 1].kind && cands[i].key == cands[i - 1].key)
			continue;
		find_all(di, cands[i].addr, &h);
		err = list_add(&l, cands[i].addr, hit_function(di, &h),
			       str_at(di, di->files[cands[i].file].path), best);
	}
out:
	free(cands);
	return list_finish(&l, err, locs, n);
}

/* Add addr with the name function and the line found there. */
static int add_function_loc(struct esky_debuginfo *di, struct loc_list *l, uint64_t addr,
			    const char *function)
{
	ssize_t r = spans_find(di->rows, di->rows_n, sizeof(*di->rows), addr);
	const struct di_row *row = r >= 0 && di->rows[r].line ? &di->rows[r] : NULL;

	return list_add(l, addr, function, row ? str_at(di, di->files[row->file].path) : NULL,
			row ? row->line : 0);
}

static int resolve_function(struct esky_debuginfo *di, const char *name,
			    struct esky_loc **locs, size_t *n)
{
	struct loc_list l = { 0 };
	size_t lo, hi;
	int err = 0;

	/* Every function of that name: static functions of several files. */
	for (lo = 0, hi = di->funcs_n; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(str_at(di, di->funcs[di->funcs_by_name[mid]].name), name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; !err && lo < di->funcs_n; lo++) {
		const struct di_func *f = &di->funcs[di->funcs_by_name[lo]];

		if (strcmp(str_at(di, f->name), name) != 0)
			break;
		err = add_function_loc(di, &l, after_prologue(di, f), name);
	}

	/* Without DWARF for it (no -g, or a static libc), the symbol's address. */
	if (!err && !l.n) {
		for (lo = 0, hi = di->syms_n; lo < hi;) {
			size_t mid = lo + (hi - lo) / 2;

			if (strcmp(str_at(di, di->syms[di->syms_by_name[mid]].id), name) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; !err && lo < di->syms_n; lo++) {
			const struct di_span *s = &di->syms[di->syms_by_name[lo]];

			if (strcmp(str_at(di, s->id), name) != 0)
				break;
			err = add_function_loc(di, &l, s->lo, name);
		}
	}
	if (!err && !l.n)
		return esky_error(-ENOENT, "no function %s in %s", name, di->name);
	return list_finish(&l, err, locs, n);
}

int esky_debuginfo_resolve(struct esky_debuginfo *di, const char *spec,
			   struct esky_loc **locs, size_t *n)
{
	const char *colon;
	int err;

	*locs = NULL;
	*n = 0;
	if (!spec || !*spec)
		return esky_error(-EINVAL, "empty location: use FILE:LINE, FUNCTION or *ADDRESS");

	if (spec[0] == '*') {
		struct loc_list l = { 0 };
		struct esky_loc loc;
		uint64_t addr;
		void *q;

		if (esky_parse_u64(spec + 1, &addr) < 0)
			return esky_error(-EINVAL, "bad address %s: use *0xHEX or *DECIMAL",
					  spec + 1);
		q = grow(l.v, 0, &l.cap, sizeof(*l.v));
		if (!q)
			return esky_error(-ENOMEM, "out of memory");
		l.v = q;
		/* An address nothing names is still an address. */
		err = esky_debuginfo_lookup(di, addr, &loc);
		if (err == -ENOENT) {
			memset(&loc, 0, sizeof(loc));
			loc.addr = addr;
			err = 0;
		}
		if (!err)
			l.v[l.n++] = loc;
		return list_finish(&l, err, locs, n);
	}

	colon = strrchr(spec, ':');
	if (colon && colon > spec && colon[-1] != ':') {
		const char *num = colon + 1;
		unsigned long long line;
		char *file;

		/* Decimal only: strtoull's base 0 would read "010" as octal. */
		errno = 0;
		line = strtoull(num, NULL, 10);
		if (!*num || strspn(num, "0123456789") != strlen(num) || errno ||
		    line > UINT32_MAX)
			return esky_error(-EINVAL, "bad location %s: use FILE:LINE, FUNCTION or *ADDRESS",
					  spec);
		file = strndup(spec, (size_t)(colon - spec));
		if (!file)
			return esky_error(-ENOMEM, "out of memory");
		if (!esky_debuginfo_has_dwarf(di))
			err = esky_error(-ENOENT, "%s has no debug information: use FUNCTION or *ADDRESS (build with -g for FILE:LINE)",
					 di->name);
		else if (!line)
			err = esky_error(-ENOENT, "no line 0 in %s", file);
		else
			err = resolve_line(di, file, (uint32_t)line, locs, n);
		free(file);
		return err;
	}
	return resolve_function(di, spec, locs, n);
}

void esky_debuginfo_complete(struct esky_debuginfo *di, const char *prefix,
			     void (*fn)(const char *name, void *ctx), void *ctx)
{
	size_t plen = strlen(prefix), lo = 0, hi = di->names_n;

	/* Names with the prefix sort together, from the first name >= prefix. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(str_at(di, di->names[mid]), prefix) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < di->names_n; lo++) {
		const char *name = str_at(di, di->names[lo]);

		if (strncmp(name, prefix, plen) != 0)
			break;
		fn(name, ctx);
	}
}

int esky_debuginfo_object(struct esky_debuginfo *di, const char *name, uint64_t *addr,
			  uint64_t *size)
{
	for (size_t i = 0; i < di->objs_n; i++) {
		if (strcmp(str_at(di, di->objs[i].id), name))
			continue;
		*addr = di->objs[i].lo;
		*size = di->objs[i].hi - di->objs[i].lo;
		return 0;
	}
	return -ENOENT;
}

int esky_debuginfo_object_at(struct esky_debuginfo *di, uint64_t addr, const char **name,
			     uint64_t *off)
{
	for (size_t i = 0; i < di->objs_n; i++) {
		if (addr < di->objs[i].lo || addr >= di->objs[i].hi)
			continue;
		*name = str_at(di, di->objs[i].id);
		*off = addr - di->objs[i].lo;
		return 0;
	}
	return -ENOENT;
}

/*
 * The call frame information is read when asked (finish), not at open:
 * it is one lookup per command, and the file is opened again for it.
 */
int esky_debuginfo_cfa(struct esky_debuginfo *di, uint64_t pc, int *dwarf_reg, int64_t *offset)
{
	Dwarf_Debug dbg;
	Dwarf_Error err = NULL;
	Dwarf_Cie *cies = NULL;
	Dwarf_Fde *fdes = NULL, fde;
	Dwarf_Signed cie_n = 0, fde_n = 0, relevant = 0, reg = 0, off = 0;
	Dwarf_Addr lo, hi, row_pc = 0, next_pc = 0;
	Dwarf_Small type = 0;
	Dwarf_Ptr block = NULL;
	Dwarf_Bool more = 0;
	int fd, res, ret = -ENOENT;

	fd = open(di->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	if (dwarf_init_b(fd, DW_DLC_READ, DW_GROUPNUMBER_ANY, NULL, NULL, &dbg, &err) != DW_DLV_OK) {
		close(fd);
		return -ENOENT;
	}
	/* .eh_frame is there in every binary gcc makes; .debug_frame only with -g and no .eh_frame. */
	res = dwarf_get_fde_list_eh(dbg, &cies, &cie_n, &fdes, &fde_n, &err);
	if (res != DW_DLV_OK) {
		if (res == DW_DLV_ERROR)
			dwarf_dealloc_error(dbg, err);
		res = dwarf_get_fde_list(dbg, &cies, &cie_n, &fdes, &fde_n, &err);
	}
	if (res == DW_DLV_OK &&
	    dwarf_get_fde_at_pc(fdes, pc, &fde, &lo, &hi, &err) == DW_DLV_OK &&
	    dwarf_get_fde_info_for_cfa_reg3_b(fde, pc, &type, &relevant, &reg, &off, &block, &row_pc,
					      &more, &next_pc, &err) == DW_DLV_OK &&
	    type == DW_EXPR_OFFSET && relevant) {
		*dwarf_reg = (int)reg;
		*offset = off;
		ret = 0;
	}
	if (res == DW_DLV_OK)
		dwarf_fde_cie_list_dealloc(dbg, cies, cie_n, fdes, fde_n);
	dwarf_finish(dbg, &err);
	close(fd);
	return ret;
}
