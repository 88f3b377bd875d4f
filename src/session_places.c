/*
 * Naming places in the program: its load bias and libraries, their symbols
 * and lines, the caller scan that names a library function by where the
 * program called it, and expressions (print, eval, conditions).
 */
#include "session_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Where the program's file is mapped, hence the load bias of a PIE. */
void sess_find_bias(struct esky_session *s)
{
	struct esky_vma *vmas;
	size_t n;
	bool found = false;

	s->bias = 0;
	s->exe_lo = s->exe_hi = 0;
	s->ncode = 0;
	if (!s->t || esky_proc_read_maps(esky_target_pid(s->t), false, &vmas, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		if (!vmas[i].path || !s->program || strcmp(vmas[i].path, s->program))
			continue;
		if (vmas[i].prot & PROT_EXEC) {
			struct code_range *nc = realloc(s->code, (s->ncode + 1) * sizeof(*nc));

			if (nc) {
				s->code = nc;
				s->code[s->ncode++] = (struct code_range){ vmas[i].start, vmas[i].end };
			}
		}
		if (!found || vmas[i].start < s->exe_lo)
			s->exe_lo = vmas[i].start;
		if (vmas[i].end > s->exe_hi)
			s->exe_hi = vmas[i].end;
		if (vmas[i].pgoff == 0 && s->di && esky_debuginfo_is_pie(s->di) && !found)
			s->bias = vmas[i].start - esky_debuginfo_first_vaddr(s->di);
		found = true;
	}
	esky_vmas_free(vmas, n);
}

static struct esky_debuginfo *lib_syms(struct esky_session *s, const char *path)
{
	struct lib_syms *nl;

	for (size_t i = 0; i < s->nlibs; i++)
		if (!strcmp(s->libs[i].path, path))
			return s->libs[i].di;
	nl = realloc(s->libs, (s->nlibs + 1) * sizeof(*nl));
	if (!nl)
		return NULL;
	s->libs = nl;
	nl[s->nlibs].path = strdup(path);
	nl[s->nlibs].di = NULL;
	if (!nl[s->nlibs].path)
		return NULL;
	if (esky_debuginfo_open(path, &nl[s->nlibs].di))
		nl[s->nlibs].di = NULL;
	esky_error_clear();
	return nl[s->nlibs++].di;
}

/* "symbol+0x1c in libc.so.6" for an address in a mapped library. */
static void describe_in_lib(struct esky_session *s, const struct esky_vma *vmas, size_t nv,
			    const struct esky_vma *hit, uint64_t pc, char *buf, size_t n)
{
	const char *base = strrchr(hit->path, '/');
	struct esky_debuginfo *di = hit->path[0] == '/' ? lib_syms(s, hit->path) : NULL;
	uint64_t bias = 0;
	char sym[256];

	base = base ? base + 1 : hit->path;
	if (di && esky_debuginfo_is_pie(di)) {
		for (size_t i = 0; i < nv; i++)
			if (vmas[i].path && !strcmp(vmas[i].path, hit->path) && vmas[i].pgoff == 0) {
				bias = vmas[i].start - esky_debuginfo_first_vaddr(di);
				break;
			}
	}
	if (di) {
		esky_debuginfo_describe(di, pc - bias, sym, sizeof(sym));
		if (strncmp(sym, "0x", 2)) {
			snprintf(buf, n, "%s in %s", sym, base);
			return;
		}
	}
	snprintf(buf, n, "0x%" PRIx64 " in %s", pc, base);
}

/* The base name of path is name or starts with it ("libc" for libc.so.6). */
static bool lib_matches(const char *path, const char *name)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, name, strlen(name));
}

/* runtime - link address of the library mapped from path (0 if not a PIE). */
static uint64_t lib_bias(struct esky_debuginfo *di, const struct esky_vma *vmas, size_t nv,
			 const char *path)
{
	if (!esky_debuginfo_is_pie(di))
		return 0;
	for (size_t i = 0; i < nv; i++)
		if (vmas[i].path && !strcmp(vmas[i].path, path) && vmas[i].pgoff == 0)
			return vmas[i].start - esky_debuginfo_first_vaddr(di);
	return 0;
}

/* The runtime address of function in the library at path, or 0. */
static uint64_t lib_function(struct esky_debuginfo *di, const struct esky_vma *vmas, size_t nv,
			     const char *path, const char *function)
{
	struct esky_loc *locs;
	uint64_t addr = 0;
	size_t n;

	if (!esky_debuginfo_resolve(di, function, &locs, &n)) {
		if (n)
			addr = locs[0].addr + lib_bias(di, vmas, nv, path);
		esky_locs_free(locs, n);
	}
	esky_error_clear();
	return addr;
}

/*
 * Find the library breakpoints in the libraries mapped now (addresses
 * change at each run: ASLR): each at its function in the first library,
 * in address order, that has it; none has it: pending. Also finds the
 * dynamic linker's _dl_debug_state, to come back when libraries change.
 */
void sess_resolve_libs(struct esky_session *s)
{
	struct esky_vma *vmas;
	size_t nv;
	bool any = false;

	s->dl_state = 0;
	for (size_t i = 0; i < s->nbps; i++) {
		if (!s->bps[i].lib)
			continue;
		any = true;
		s->bps[i].nlocs = 0;
		s->bps[i].lib_seen = false;
	}
	if (!any)
		return;
	if (!esky_session_alive(s) || esky_proc_read_maps(esky_target_pid(s->t), false, &vmas, &nv))
		nv = 0, vmas = NULL;
	for (size_t i = 0; i < nv; i++) {
		const char *path = vmas[i].path, *base;
		struct esky_debuginfo *di;
		bool seen = false;

		if (!path || path[0] != '/' || !(vmas[i].prot & PROT_EXEC) ||
		    (s->program && !strcmp(path, s->program)))
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = (vmas[k].prot & PROT_EXEC) && vmas[k].path && !strcmp(vmas[k].path, path);
		if (seen || !(di = lib_syms(s, path)))
			continue;
		base = strrchr(path, '/') + 1;
		if (!s->dl_state && !strncmp(base, "ld-", 3))
			s->dl_state = lib_function(di, vmas, nv, path, "_dl_debug_state");
		for (size_t j = 0; j < s->nbps; j++) {
			struct bp *b = &s->bps[j];
			char where[512];
			uint64_t addr;

			if (!b->lib || b->nlocs || !lib_matches(path, b->lib))
				continue;
			b->lib_seen = true;
			addr = lib_function(di, vmas, nv, path, b->func);
			if (!addr)
				continue;
			snprintf(where, sizeof(where), "%s in %s", b->func, base);
			free(b->where);
			b->where = strdup(where);
			b->link[0] = addr;
			b->nlocs = 1;
		}
	}
	if (vmas)
		esky_vmas_free(vmas, nv);
	for (size_t i = 0; i < s->nbps; i++) {
		struct bp *b = &s->bps[i];
		char where[512];

		if (!b->lib || b->nlocs)
			continue;
		snprintf(where, sizeof(where), "%s (pending)", b->spec);
		free(b->where);
		b->where = strdup(where);
	}
}

/* Whether addr is in an executable mapping of the program's own file (as sess_find_bias saw them). */
bool sess_in_program_code(const struct esky_session *s, uint64_t addr)
{
	for (size_t i = 0; i < s->ncode; i++)
		if (addr >= s->code[i].lo && addr < s->code[i].hi)
			return true;
	return false;
}

#define CALLER_SCAN_BYTES 4096

/*
 * The return address into the program's code nearest the top of the stack:
 * where the program called the library it stands in. A word is taken for a
 * return address when the bytes before it end with a call instruction. A
 * heuristic (no unwind tables), only used to name a place.
 */
static bool find_program_caller(struct esky_session *s, const struct esky_vma *vmas, size_t nv,
				uint64_t *ret_addr)
{
	uint64_t words[CALLER_SCAN_BYTES / 8];
	esky_regs_t regs;
	uint64_t sp;

	if (!s->di || esky_target_get_regs(s->t, &regs))
		return false;
	sp = arch_regs_sp(&regs);
	for (size_t i = 0; i < nv; i++)
		if (sp >= vmas[i].start && sp < vmas[i].end) {
			size_t len = vmas[i].end - sp < sizeof(words) ? vmas[i].end - sp : sizeof(words);

			if (esky_target_read_mem(s->t, sp, words, len & ~(size_t)7))
				return false;
			for (size_t k = 0; k < len / 8; k++) {
				uint8_t code[ARCH_CALL_MAX_LEN];
				uint64_t w = words[k];

				if (w < s->exe_lo + ARCH_CALL_MAX_LEN || !sess_in_program_code(s, w - 1) ||
				    esky_target_read_mem(s->t, w - sizeof(code), code, sizeof(code)) ||
				    !arch_follows_call(code))
					continue;
				*ret_addr = w;
				return true;
			}
			return false;
		}
	return false;
}

void sess_describe(struct esky_session *s, uint64_t pc, char *buf, size_t n)
{
	struct esky_vma *vmas;
	size_t nv;
	uint64_t ret_addr;

	if (s->di && pc >= s->exe_lo && pc < s->exe_hi) {
		esky_debuginfo_describe(s->di, pc - s->bias, buf, n);
		return;
	}
	snprintf(buf, n, "0x%" PRIx64, pc);
	if (!s->t || esky_proc_read_maps(esky_target_pid(s->t), false, &vmas, &nv))
		return;
	for (size_t i = 0; i < nv; i++) {
		if (pc >= vmas[i].start && pc < vmas[i].end && vmas[i].path) {
			describe_in_lib(s, vmas, nv, &vmas[i], pc, buf, n);
			break;
		}
	}
	if (find_program_caller(s, vmas, nv, &ret_addr)) {
		size_t len = strlen(buf);
		char caller[256];

		/* The call instruction's own line: the byte before the return address. */
		esky_debuginfo_describe(s->di, ret_addr - 1 - s->bias, caller, sizeof(caller));
		if (!strncmp(caller, "0x", 2)) /* no symbol: say whose address it is */
			snprintf(caller, sizeof(caller), "0x%" PRIx64 " in %s", ret_addr - 1,
				 esky_debuginfo_name(s->di));
		snprintf(buf + len, n - len, ", called from %s", caller);
	}
	esky_vmas_free(vmas, nv);
}

int sess_get_pc(struct esky_session *s, uint64_t *pc)
{
	esky_regs_t regs;
	int ret = esky_target_get_regs(s->t, &regs);

	if (!ret)
		*pc = arch_regs_ip(&regs);
	return ret;
}

void sess_report_where(struct esky_session *s, struct esky_stop_report *r)
{
	r->thread = esky_session_thread(s);
	if (!s->t || sess_get_pc(s, &r->pc)) {
		r->where[0] = '\0';
		return;
	}
	sess_describe(s, r->pc, r->where, sizeof(r->where));
}


/* ---- expressions: conditions and print ---- */

static int env_reg(void *ctx, const char *name, uint64_t *value)
{
	struct esky_session *s = ctx;
	esky_regs_t regs;

	if (!esky_session_alive(s))
		return sess_no_process();
	if (esky_target_get_regs(s->t, &regs) ||
	    arch_regs_get(&regs, name, value))
		return esky_error(-ENOENT, "no register $%s", name);
	return 0;
}

static int env_sym(void *ctx, const char *name, uint64_t *addr, uint64_t *size)
{
	struct esky_session *s = ctx;
	struct esky_loc *locs;
	size_t n;

	if (!s->di)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	if (!esky_debuginfo_object(s->di, name, addr, size)) {
		*addr += s->bias;
		return 0;
	}
	if (!esky_debuginfo_resolve(s->di, name, &locs, &n) && n) {
		*addr = locs[0].addr + s->bias;
		*size = 0;
		esky_locs_free(locs, n);
		return 0;
	}
	esky_error_clear();
	return esky_error(-ENOENT, "no variable or function %s in %s", name,
			  esky_debuginfo_name(s->di));
}

static int env_mem(void *ctx, uint64_t addr, void *buf, size_t len)
{
	return esky_session_read(ctx, addr, buf, len);
}

int esky_session_print(struct esky_session *s, const char *text, uint64_t *value)
{
	struct esky_expr_env env = { env_reg, env_sym, env_mem, s };

	return esky_expr_eval(text, &env, value);
}

int esky_session_eval(struct esky_session *s, const char *expr, uint64_t *addr)
{
	if (!esky_parse_u64(expr, addr))
		return 0;
	if (expr[0] == '$') {
		esky_regs_t regs;

		if (!esky_session_alive(s))
			return sess_no_process();
		if (esky_target_get_regs(s->t, &regs) ||
		    arch_regs_get(&regs, expr + 1, addr))
			return esky_error(-ENOENT, "no register %s", expr);
		return 0;
	}
	if (s->di) {
		struct esky_loc *locs;
		size_t n;
		/* A function's entry: look it up by its address as *FUNCTION would not. */
		int ret = esky_debuginfo_resolve(s->di, expr, &locs, &n);

		if (!ret && n) {
			*addr = locs[0].addr + s->bias;
			esky_locs_free(locs, n);
			return 0;
		}
		if (!ret)
			esky_locs_free(locs, n);
		return ret ? ret : esky_error(-ENOENT, "no symbol %s", expr);
	}
	if (!s->program)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	return esky_error(-EINVAL, "bad address %s: give a number, $register or a function", expr);
}

/* ---- symbols and libraries (info symbol, info line, info sharedlibrary) ---- */

int esky_session_describe(struct esky_session *s, uint64_t addr, char *buf, size_t n)
{
	struct esky_vma *vmas;
	const char *obj;
	uint64_t off;
	size_t nv;
	int ret = -ENOENT;

	if (!s->di)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	/* Before the program runs, addresses are the file's. */
	if (!esky_session_alive(s)) {
		esky_debuginfo_describe(s->di, addr, buf, n);
		return 0;
	}
	if (addr >= s->exe_lo && addr < s->exe_hi) {
		if (!esky_debuginfo_object_at(s->di, addr - s->bias, &obj, &off))
			snprintf(buf, n, off ? "%s+%" PRIu64 " (a variable)" : "%s (a variable)", obj, off);
		else
			esky_debuginfo_describe(s->di, addr - s->bias, buf, n);
		return 0;
	}
	if (esky_proc_read_maps(esky_target_pid(s->t), false, &vmas, &nv))
		return esky_error(-EIO, "cannot read the program's memory map");
	for (size_t i = 0; i < nv; i++) {
		if (addr >= vmas[i].start && addr < vmas[i].end && vmas[i].path) {
			describe_in_lib(s, vmas, nv, &vmas[i], addr, buf, n);
			ret = 0;
			break;
		}
	}
	esky_vmas_free(vmas, nv);
	return ret ? esky_error(ret, "no symbol matches 0x%" PRIx64, addr) : 0;
}

int esky_session_lines(struct esky_session *s, const char *spec, uint64_t **addrs, size_t *n)
{
	struct esky_loc *locs;
	int ret;

	if (!s->di)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	ret = esky_debuginfo_resolve(s->di, spec, &locs, n);
	if (ret)
		return ret;
	*addrs = calloc(*n ? *n : 1, sizeof(**addrs));
	for (size_t i = 0; *addrs && i < *n; i++)
		(*addrs)[i] = locs[i].addr + (esky_session_alive(s) ? s->bias : 0);
	esky_locs_free(locs, *n);
	return *addrs ? 0 : -ENOMEM;
}

int esky_session_libraries(struct esky_session *s,
			   void (*fn)(void *ctx, uint64_t lo, uint64_t hi, const char *path),
			   void *ctx)
{
	struct esky_vma *vmas;
	size_t nv;
	int ret;

	if (!esky_session_alive(s))
		return sess_no_process();
	ret = esky_proc_read_maps(esky_target_pid(s->t), false, &vmas, &nv);
	if (ret)
		return esky_error(ret, "cannot read the program's memory map: %s", strerror(-ret));
	/* Each file with code that is not the program, from its first mapping to its last. */
	for (size_t i = 0; i < nv; i++) {
		uint64_t lo, hi;
		bool code = false;
		size_t j = i;

		if (!vmas[i].path || vmas[i].path[0] != '/' ||
		    (s->program && !strcmp(vmas[i].path, s->program)) ||
		    (i && vmas[i - 1].path && !strcmp(vmas[i - 1].path, vmas[i].path)))
			continue;
		lo = vmas[i].start;
		hi = vmas[i].end;
		for (; j < nv && vmas[j].path && !strcmp(vmas[j].path, vmas[i].path); j++) {
			hi = vmas[j].end;
			code |= (vmas[j].prot & PROT_EXEC) != 0;
		}
		if (code)
			fn(ctx, lo, hi, vmas[i].path);
	}
	esky_vmas_free(vmas, nv);
	return 0;
}
