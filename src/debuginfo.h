/*
 * Naming locations of a program: DWARF (through libdwarf) for FILE:LINE and
 * functions, ELF symbol tables when there is no debug information.
 *
 * Addresses here are link-time addresses of the ELF file (its p_vaddr
 * space). For a PIE the caller adds the load bias of the running program.
 * This is the only file of esky that includes libdwarf.
 */
#ifndef ESKY_DEBUGINFO_H
#define ESKY_DEBUGINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct esky_debuginfo;

/* One resolved location. Strings are owned by the array (esky_locs_free). */
struct esky_loc {
	uint64_t addr;  /* link-time address */
	char *function; /* enclosing function, or NULL if unknown */
	char *file;     /* source file as named in DWARF (may be a path), or NULL */
	unsigned line;  /* 0 if unknown */
};

/*
 * Open the ELF file at path and index its line tables, functions and
 * symbols. A file without DWARF is not an error (lookups use ELF symbols).
 * 0 or -errno, with esky_error() set ("walk: not an ELF file").
 */
int esky_debuginfo_open(const char *path, struct esky_debuginfo **out);
void esky_debuginfo_close(struct esky_debuginfo *di);

/* The file's base name ("walk"), as messages name it. */
const char *esky_debuginfo_name(const struct esky_debuginfo *di);
/* True if the file has DWARF line information. */
bool esky_debuginfo_has_dwarf(const struct esky_debuginfo *di);
/* True if the file is position independent (ET_DYN): addresses need the load bias. */
bool esky_debuginfo_is_pie(const struct esky_debuginfo *di);
/* The lowest p_vaddr of the PT_LOAD segments, page aligned down. */
uint64_t esky_debuginfo_first_vaddr(const struct esky_debuginfo *di);

/*
 * Resolve a location spec into one or more link-time addresses:
 *   FILE:LINE  the code of LINE in the source file whose name or path suffix
 *              is FILE; a line without code moves to the next line with
 *              code (as gdb does); one address per function that has it;
 *   FUNCTION   the first address after the function's prologue;
 *   *ADDRESS   that address, as given (decimal or 0x hex);
 * *locs is malloc'd (free with esky_locs_free). 0 or -errno with a
 * one-line esky_error(): "no line 999 in walk.c", "no source file foo.c in
 * walk", "no function frob in walk", "walk has no debug information: use
 * FUNCTION or *ADDRESS (build with -g for FILE:LINE)".
 */
int esky_debuginfo_resolve(struct esky_debuginfo *di, const char *spec,
			   struct esky_loc **locs, size_t *n);
void esky_locs_free(struct esky_loc *locs, size_t n);

/*
 * Name a link-time address: fills *out with function, file and line
 * (DWARF) or with the function from the ELF symbols and file NULL, line 0.
 * *out's strings are malloc'd (esky_locs_free(out, 1) frees them but not
 * out itself: use esky_loc_clear). 0, or -ENOENT if nothing covers addr.
 */
int esky_debuginfo_lookup(struct esky_debuginfo *di, uint64_t addr, struct esky_loc *out);
void esky_loc_clear(struct esky_loc *loc);

/*
 * Name a link-time address as text: "main at walk.c:12" with DWARF,
 * "main+0x1c" with symbols only, "0x401136" when nothing covers it.
 * Returns buf.
 */
char *esky_debuginfo_describe(struct esky_debuginfo *di, uint64_t addr, char *buf, size_t n);

/*
 * A data object of the ELF symbol tables (a global or static variable):
 * its link-time address and size. 0 or -ENOENT (no message).
 */
int esky_debuginfo_object(struct esky_debuginfo *di, const char *name, uint64_t *addr,
			  uint64_t *size);

/*
 * The canonical frame address at a link-time pc, from the file's call
 * frame information (.eh_frame, else .debug_frame): the caller's stack
 * pointer before its call, as a DWARF register number whose value at pc
 * plus offset gives it. Right without a frame pointer, in a prologue or
 * an epilogue. 0, or -ENOENT where there is no plain register + offset
 * rule for pc (no message).
 */
int esky_debuginfo_cfa(struct esky_debuginfo *di, uint64_t pc, int *dwarf_reg, int64_t *offset);

/* The data object covering a link-time address: its name (the index's) and the offset. */
int esky_debuginfo_object_at(struct esky_debuginfo *di, uint64_t addr, const char **name,
			     uint64_t *off);

/*
 * For tab completion: call fn for each function name and each source file
 * name (basename) that starts with prefix, each name once.
 */
void esky_debuginfo_complete(struct esky_debuginfo *di, const char *prefix,
			     void (*fn)(const char *name, void *ctx), void *ctx);

#endif
