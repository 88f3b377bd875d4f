/*
 * Breakpoints: the int3 sites written into the program, breakpoints by
 * line, function, address or library function (pending until the library
 * is loaded), their conditions and counts.
 */
#include "session_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sess_free_bp(struct bp *b)
{
	free(b->spec);
	free(b->where);
	free(b->link);
	free(b->cond);
	free(b->lib);
	free(b->func);
}

/* Where breakpoint b's location j is in the running program. */
static uint64_t bp_addr(const struct esky_session *s, const struct bp *b, size_t j)
{
	return b->lib ? b->link[j] : b->link[j] + s->bias;
}

/* ---- breakpoint sites ---- */

struct site *sess_site_at(struct esky_session *s, uint64_t addr)
{
	for (size_t i = 0; i < s->nsites; i++)
		if (s->sites[i].addr == addr)
			return &s->sites[i];
	return NULL;
}

static bool wanted(struct esky_session *s, uint64_t addr)
{
	if (s->goal && addr == s->goal_addr)
		return true;
	if (s->dl_state && addr == s->dl_state)
		return true;
	for (size_t i = 0; i < s->nbps; i++)
		for (size_t j = 0; j < s->bps[i].nlocs; j++)
			if (bp_addr(s, &s->bps[i], j) == addr)
				return true;
	return false;
}

int sess_remove_site(struct esky_session *s, size_t i)
{
	int ret = esky_target_write_mem(s->t, s->sites[i].addr,
					&s->sites[i].orig, 1);

	s->sites[i] = s->sites[--s->nsites];
	return ret;
}

/* An int3 at addr, its byte kept (one site per address). */
static int add_site(struct esky_session *s, uint64_t addr)
{
	const uint8_t int3 = ARCH_BREAKPOINT_BYTE;
	struct site *ns;
	uint8_t orig;
	int ret = esky_target_read_mem(s->t, addr, &orig, 1);

	if (!ret)
		ret = esky_target_write_mem(s->t, addr, &int3, 1);
	if (ret)
		return ret;
	ns = realloc(s->sites, (s->nsites + 1) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	s->sites = ns;
	s->sites[s->nsites++] = (struct site){ addr, orig };
	return 0;
}

/*
 * Put an int3 at every breakpoint address and nowhere else. An address
 * outside the program's code (a *ADDRESS given before the program ran) is
 * not written to: a warning says so and the breakpoint stays unplaced.
 */
int sess_sync_sites(struct esky_session *s)
{
	int ret = 0;

	if (!esky_session_alive(s))
		return 0;
	for (size_t i = 0; i < s->nsites;) {
		if (!wanted(s, s->sites[i].addr))
			ret = sess_remove_site(s, i);
		else
			i++;
	}
	/* The watchpoints ride along: every place that puts breakpoints back. */
	ret = sess_apply_watches(s);
	if (!ret && s->goal && !sess_site_at(s, s->goal_addr)) {
		ret = add_site(s, s->goal_addr);
		if (ret)
			return esky_error(ret, "cannot stop at 0x%" PRIx64 ": %s", s->goal_addr,
					  strerror(-ret));
	}
	/* A library's text pages are private: the int3 goes in a copy of the page. */
	if (!ret && s->dl_state && !sess_site_at(s, s->dl_state)) {
		ret = add_site(s, s->dl_state);
		if (ret)
			return esky_error(ret, "cannot stop at library loads (0x%" PRIx64 "): %s",
					  s->dl_state, strerror(-ret));
	}
	for (size_t i = 0; i < s->nbps && !ret; i++) {
		for (size_t j = 0; j < s->bps[i].nlocs && !ret; j++) {
			uint64_t addr = bp_addr(s, &s->bps[i], j);
			const uint8_t int3 = ARCH_BREAKPOINT_BYTE;
			struct site *ns;
			uint8_t orig;

			if (sess_site_at(s, addr))
				continue;
			if (!s->bps[i].lib && !sess_in_program_code(s, addr)) {
				if (!s->bps[i].warned)
					pr_warn("breakpoint %d: 0x%" PRIx64 " is not in the code of %s, "
						"not placed", s->bps[i].id, addr, s->program);
				s->bps[i].warned = true;
				continue;
			}
			ret = esky_target_read_mem(s->t, addr, &orig, 1);
			if (!ret)
				ret = esky_target_write_mem(s->t, addr, &int3, 1);
			if (ret) {
				ret = esky_error(ret, "cannot put breakpoint %d at 0x%" PRIx64 ": %s",
						 s->bps[i].id, addr, strerror(-ret));
				break;
			}
			ns = realloc(s->sites, (s->nsites + 1) * sizeof(*ns));
			if (!ns) {
				ret = -ENOMEM;
				break;
			}
			s->sites = ns;
			s->sites[s->nsites++] = (struct site){ addr, orig };
		}
	}
	return ret;
}

struct bp *sess_find_bp(struct esky_session *s, int id)
{
	for (size_t i = 0; i < s->nbps; i++)
		if (s->bps[i].id == id)
			return &s->bps[i];
	return NULL;
}

/*
 * A breakpoint's condition at a hit: false lets the program go on, unseen
 * (the hit is not counted, as in gdb). One that cannot be evaluated stops
 * it, saying why.
 */
static bool condition_holds(struct esky_session *s, const struct bp *b)
{
	uint64_t v;

	if (!b->cond)
		return true;
	esky_error_clear();
	if (esky_session_print(s, b->cond, &v)) {
		sess_notify(s, "breakpoint %d: error in its condition: %s", b->id, esky_last_error());
		esky_error_clear();
		return true;
	}
	return v != 0;
}

int esky_session_condition(struct esky_session *s, int id, const char *cond)
{
	struct bp *b = sess_find_bp(s, id);
	char *c = NULL;
	int ret;

	if (!b)
		return esky_error(-ENOENT, "no breakpoint %d", id);
	if (cond && *cond) {
		ret = esky_expr_eval(cond, NULL, NULL);
		if (ret)
			return ret;
		c = strdup(cond);
		if (!c)
			return -ENOMEM;
	}
	free(b->cond);
	b->cond = c;
	sess_rebuild_info(s);
	return 0;
}

/*
 * A trap at a breakpoint: snapshots for snap breakpoints, and whether to
 * stop (*stop_bp set to the first stopping breakpoint).
 */
int sess_at_breakpoint(struct esky_session *s, uint64_t addr, int *stop_bp, bool *temporary)
{
	int ret = 0, ids[64];
	size_t nids = 0;

	*stop_bp = 0;
	for (size_t i = 0; i < s->nbps && nids < 64; i++)
		for (size_t j = 0; j < s->bps[i].nlocs; j++)
			if (bp_addr(s, &s->bps[i], j) == addr) {
				ids[nids++] = s->bps[i].id;
				break;
			}
	for (size_t k = 0; k < nids && !ret; k++) {
		struct bp *b = sess_find_bp(s, ids[k]);
		int snap_id;

		if (!b || !condition_holds(s, b))
			continue;
		b->hits++;
		if (b->kind == ESKY_BP_SNAP) {
			s->snap_bp = b->id;
			s->snap_hit = b->hits;
			ret = sess_take_snapshot(s, ESKY_SNAP_BREAK, NULL, &snap_id);
			if (ret)
				break;
			if (b->count && b->hits >= b->count) {
				sess_notify(s, "breakpoint %d: %u snapshots taken, deleted", b->id, b->hits);
				ret = esky_session_delete(s, b->id);
			}
			continue;
		}
		if (!*stop_bp) {
			*stop_bp = b->id;
			*temporary = b->kind == ESKY_BP_TBREAK;
		}
		if (b->kind == ESKY_BP_TBREAK)
			ret = esky_session_delete(s, b->id);
	}
	return ret;
}

/* ---- breakpoints ---- */

static int cmp_bpinfo(const void *a, const void *b)
{
	const struct esky_bpinfo *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

void sess_rebuild_info(struct esky_session *s)
{
	struct esky_bpinfo *ni =
		realloc(s->info, (s->nbps + s->nwatches ? s->nbps + s->nwatches : 1) * sizeof(*ni));

	if (!ni)
		return;
	s->info = ni;
	for (size_t i = 0; i < s->nwatches; i++) {
		const struct watch *w = &s->watches[i];

		s->info[s->nbps + i] = (struct esky_bpinfo){
			.id = w->id,
			.kind = w->snap ? ESKY_BP_WATCH_SNAP : ESKY_BP_WATCH,
			.spec = w->spec,
			.where = w->spec,
			.addr = w->is_symbol ? w->link : w->abs,
			.nlocs = 1,
			.hits = w->hits,
			.count = w->count,
		};
	}
	for (size_t i = 0; i < s->nbps; i++) {
		const struct bp *b = &s->bps[i];

		s->info[i] = (struct esky_bpinfo){
			.id = b->id,
			.kind = b->kind,
			.spec = b->spec,
			.where = b->where,
			.addr = b->nlocs ? b->link[0] : 0,
			.nlocs = b->nlocs,
			.hits = b->hits,
			.count = b->count,
			.cond = b->cond,
			.pending = b->lib && !b->nlocs,
		};
	}
	/* In the order they were made, as gdb lists them. */
	qsort(s->info, s->nbps + s->nwatches, sizeof(*s->info), cmp_bpinfo);
}

/* LIB:FUNCTION, as opposed to FILE:LINE: what follows the colon is not a number. */
static bool lib_spec(const char *spec)
{
	const char *colon = strchr(spec, ':');

	return spec[0] != '*' && colon && colon != spec && colon[1] &&
	       strspn(colon + 1, "0123456789") != strlen(colon + 1);
}

/*
 * A breakpoint on function of a shared library (lib NULL: any library).
 * With the program running, a function no mapped library has is an error;
 * before run it is pending until a library that has it is loaded.
 */
static int break_in_lib(struct esky_session *s, const char *spec, const char *lib,
			const char *function, enum esky_bp_kind kind, unsigned count, int *id)
{
	struct bp b = { 0 }, *nb;

	b.id = s->next_bp;
	b.kind = kind;
	b.count = count;
	b.spec = strdup(spec);
	b.lib = strdup(lib ? lib : "");
	b.func = strdup(function);
	b.link = calloc(1, sizeof(*b.link));
	b.where = NULL;
	nb = realloc(s->bps, (s->nbps + 1) * sizeof(*nb));
	if (!nb || !b.spec || !b.lib || !b.func || !b.link) {
		sess_free_bp(&b);
		return -ENOMEM;
	}
	s->bps = nb;
	s->bps[s->nbps++] = b;
	sess_resolve_libs(s);
	nb = &s->bps[s->nbps - 1];
	if (esky_session_alive(s) && !nb->nlocs) {
		bool seen = nb->lib_seen;

		sess_free_bp(nb);
		s->nbps--;
		sess_resolve_libs(s);
		if (lib && !seen)
			return esky_error(-ENOENT, "no library %s loaded in %s (info sharedlibrary lists them)",
					  lib, esky_debuginfo_name(s->di));
		if (lib)
			return esky_error(-ENOENT, "no function %s in %s", function, lib);
		return esky_error(-ENOENT, "no function %s in %s or its libraries", function,
				  esky_debuginfo_name(s->di));
	}
	if (!nb->where) {
		sess_free_bp(nb);
		s->nbps--;
		return -ENOMEM;
	}
	s->next_bp++;
	sess_rebuild_info(s);
	*id = b.id;
	return sess_sync_sites(s);
}

int esky_session_break(struct esky_session *s, const char *spec, enum esky_bp_kind kind,
		       unsigned count, int *id)
{
	struct esky_loc *locs;
	struct bp b = { 0 }, *nb;
	char where[512];
	size_t n;
	int ret;

	char linkspec[32];
	const char *rspec = spec;

	if (!s->di)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	if (spec[0] == '*' && spec[1] == '$' && !esky_session_alive(s))
		return esky_error(-ESRCH, "%s needs a running program (run, start or rewind N)", spec);
	/*
	 * *ADDRESS names an address of the running program (as where shows
	 * it); before the program runs, an address in the file.
	 */
	if (spec[0] == '*' && esky_session_alive(s)) {
		uint64_t addr;

		/* *ADDRESS, or *$REGISTER (break *$pc) as x takes it. */
		if (spec[1] == '$' ? esky_session_eval(s, spec + 1, &addr) != 0
				   : esky_parse_u64(spec + 1, &addr) < 0)
			return esky_error(-EINVAL, "bad address %s: use *0xHEX, *DECIMAL or *$REGISTER",
					  spec + 1);
		if (!sess_in_program_code(s, addr))
			return esky_error(-EINVAL, "0x%" PRIx64 " is not in the code of %s "
					  "(breakpoints go in the program itself)", addr, s->program);
		snprintf(linkspec, sizeof(linkspec), "*0x%" PRIx64, addr - s->bias);
		rspec = linkspec;
	}
	if (lib_spec(spec)) {
		const char *colon = strchr(spec, ':');
		char *lib = strndup(spec, colon - spec);

		if (!lib)
			return -ENOMEM;
		ret = break_in_lib(s, spec, lib, colon + 1, kind, count, id);
		free(lib);
		return ret;
	}
	ret = esky_debuginfo_resolve(s->di, rspec, &locs, &n);
	/* A function the program has not: one of its shared libraries'. */
	if (ret == -ENOENT && spec[0] != '*' && !strchr(spec, ':')) {
		esky_error_clear();
		return break_in_lib(s, spec, NULL, spec, kind, count, id);
	}
	if (ret)
		return ret;
	b.id = s->next_bp;
	b.kind = kind;
	b.count = count;
	b.spec = strdup(spec);
	b.link = calloc(n ? n : 1, sizeof(*b.link));
	b.nlocs = n;
	for (size_t i = 0; i < n && b.link; i++)
		b.link[i] = locs[i].addr;
	esky_debuginfo_describe(s->di, n ? locs[0].addr : 0, where, sizeof(where));
	if (n > 1)
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " (and %zu more)", n - 1);
	b.where = strdup(where);
	esky_locs_free(locs, n);
	nb = realloc(s->bps, (s->nbps + 1) * sizeof(*nb));
	if (!nb || !b.spec || !b.link || !b.where) {
		sess_free_bp(&b);
		return -ENOMEM;
	}
	s->bps = nb;
	s->bps[s->nbps++] = b;
	s->next_bp++;
	sess_rebuild_info(s);
	ret = sess_sync_sites(s);
	*id = b.id;
	return ret;
}

int esky_session_delete(struct esky_session *s, int id)
{
	size_t j = 0;
	bool found = false;

	for (size_t i = 0; i < s->nbps; i++) {
		if (id == 0 || s->bps[i].id == id) {
			sess_free_bp(&s->bps[i]);
			found = true;
		} else {
			s->bps[j++] = s->bps[i];
		}
	}
	s->nbps = j;
	j = 0;
	for (size_t i = 0; i < s->nwatches; i++) {
		if (id == 0 || s->watches[i].id == id) {
			free(s->watches[i].spec);
			found = true;
		} else {
			s->watches[j++] = s->watches[i];
		}
	}
	s->nwatches = j;
	if (id && !found)
		return esky_error(-ENOENT, "no breakpoint %d", id);
	sess_rebuild_info(s);
	sess_resolve_libs(s); /* without library breakpoints, no stops at library loads */
	return sess_sync_sites(s);
}

const struct esky_bpinfo *esky_session_breakpoints(struct esky_session *s, size_t *n)
{
	sess_rebuild_info(s); /* hit counts change at every stop */
	*n = s->nbps + s->nwatches;
	return s->info;
}
