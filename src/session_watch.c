/*
 * Hardware watchpoints (the debug registers of every thread), stopping or
 * snapshotting at each write.
 */
#include "session_int.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* ---- hardware watchpoints ---- */

static uint64_t watch_addr(const struct esky_session *s, const struct watch *w)
{
	return w->is_symbol ? w->link + s->bias : w->abs;
}

static uint64_t read_value(struct esky_session *s, uint64_t addr, unsigned len)
{
	uint64_t v = 0;

	if (esky_target_read_mem(s->t, addr, &v, len))
		return 0;
	return v;
}

/*
 * Put the watchpoints in the debug registers of the program (after a run,
 * a rewind, any change), their current values as the old ones. They are
 * registers, not memory: no checkpoint ever holds them.
 */
/* The watchpoints in one thread's debug registers (each thread has its own). */
static int arm_thread(struct esky_session *s, struct esky_tracee *tr)
{
	uint64_t dr7 = 0;
	int ret = esky_tracee_poke_user(tr, ARCH_DEBUGREG_OFF(7), 0);

	for (size_t i = 0; i < s->nwatches && !ret; i++) {
		ret = esky_tracee_poke_user(tr, ARCH_DEBUGREG_OFF(i), watch_addr(s, &s->watches[i]));
		dr7 = arch_watch_dr7(dr7, (unsigned)i, s->watches[i].len, true);
	}
	if (!ret && s->nwatches)
		ret = esky_tracee_poke_user(tr, ARCH_DEBUGREG_OFF(7), dr7);
	return ret;
}

/* A thread the program made: it watches what the others do (debug registers are not inherited). */
void sess_thread_born(void *ctx, struct esky_tracee *tr)
{
	struct esky_session *s = ctx;
	int ret = s->nwatches ? arm_thread(s, tr) : 0;

	if (ret)
		pr_warn("thread %d of the program does not watch: its debug registers: %s",
			esky_tracee_pid(tr), strerror(-ret));
}

int sess_apply_watches(struct esky_session *s)
{
	struct esky_tracee *trs[64];
	size_t n;
	int ret = 0;

	if (!esky_session_alive(s))
		return 0;
	n = esky_target_threads(s->t, trs, ESKY_ARRAY_SIZE(trs));
	if (n > ESKY_ARRAY_SIZE(trs))
		return esky_error(-E2BIG, "watchpoints follow at most %zu threads (the program has "
				  "%zu)", ESKY_ARRAY_SIZE(trs), n);
	for (size_t i = 0; i < s->nwatches; i++)
		s->watches[i].old = read_value(s, watch_addr(s, &s->watches[i]), s->watches[i].len);
	for (size_t i = 0; i < n && !ret; i++)
		ret = arm_thread(s, trs[i]);
	if (ret)
		return esky_error(ret, "cannot set the debug registers: %s", strerror(-ret));
	return 0;
}

int esky_session_watch(struct esky_session *s, const char *spec, unsigned len, bool snap,
		       unsigned count, int *id)
{
	struct watch w = { .snap = snap, .count = count }, *nw;
	const char *name = spec[0] == '&' ? spec + 1 : spec;
	uint64_t addr, size;

	if (s->nwatches == ARCH_WATCH_SLOTS)
		return esky_error(-ENOSPC, "no debug register left: the CPU has %d for watchpoints "
				  "(delete one first)", ARCH_WATCH_SLOTS);
	if (s->di && !esky_debuginfo_object(s->di, name, &addr, &size)) {
		w.is_symbol = true;
		w.link = addr;
		w.len = len ? len : size > 8 ? 8 : (unsigned)size;
		if (!w.len)
			w.len = 1;
	} else if (!esky_session_eval(s, spec, &addr)) {
		w.abs = addr;
		w.len = len ? len : 8;
	} else {
		esky_error_clear();
		return esky_error(-ENOENT, "no variable or address %s (a global of %s, 0xADDRESS "
				  "or $register)", spec, s->program ? s->program : "the program");
	}
	/* An address without a running program would be a guess. */
	if (!w.is_symbol && !esky_session_alive(s))
		return esky_error(-ESRCH, "watch %s needs a running program (run, start or rewind N)",
				  spec);
	if (!arch_watch_len_ok(w.is_symbol ? w.link : w.abs, w.len))
		return esky_error(-EINVAL, "watch %s: %u bytes at 0x%" PRIx64 " cannot be watched: 1, "
				  "2, 4 or 8 bytes, aligned to their size", spec, w.len,
				  w.is_symbol ? w.link : w.abs);
	w.spec = strdup(spec);
	nw = realloc(s->watches, (s->nwatches + 1) * sizeof(*nw));
	if (!w.spec || !nw) {
		free(w.spec);
		if (nw)
			s->watches = nw;
		return -ENOMEM;
	}
	s->watches = nw;
	w.id = s->next_bp++;
	s->watches[s->nwatches++] = w;
	*id = w.id;
	sess_rebuild_info(s);
	return sess_apply_watches(s);
}

/*
 * A data breakpoint fired (SIGTRAP, TRAP_HWBKPT): which watchpoint (DR6),
 * its old and new values. A snap-on-write takes its snapshot and the
 * program goes on (*stop false); a watchpoint stops it.
 */
int sess_at_watch(struct esky_session *s, struct esky_stop_report *r, bool *stop)
{
	uint64_t dr6 = 0;
	int ret = esky_target_peek_user(s->t, ARCH_DEBUGREG_OFF(6), &dr6), snap_id;

	*stop = false;
	esky_target_drop_signal(s->t);
	if (!ret)
		ret = esky_target_poke_user(s->t, ARCH_DEBUGREG_OFF(6), 0);
	for (size_t i = 0; i < s->nwatches && !ret; i++) {
		struct watch *w = &s->watches[i];
		uint64_t now;

		if (!(dr6 & (1ULL << i)))
			continue;
		now = read_value(s, watch_addr(s, w), w->len);
		w->hits++;
		if (w->snap) {
			s->snap_bp = w->id;
			s->snap_hit = w->hits;
			w->old = now;
			ret = sess_take_snapshot(s, ESKY_SNAP_BREAK, NULL, &snap_id);
			if (!ret && w->count && w->hits >= w->count) {
				sess_notify(s, "snap-on-write %d: %u snapshots taken, deleted", w->id, w->hits);
				ret = esky_session_delete(s, w->id);
			}
			continue;
		}
		if (!*stop) {
			*stop = true;
			r->why = ESKY_WHY_WATCH;
			r->bp = w->id;
			r->old_value = w->old;
			r->new_value = now;
			sess_report_where(s, r);
		}
		w->old = now;
	}
	return ret;
}
