/*
 * Run control by source line: next, step, finish, until and advance,
 * through the line tables.
 */
#include "session_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- run control by source line: next, step, finish, until ---- */

/*
 * Run until the program reaches addr with its stack pointer above sp (the
 * frame that called has returned to it), or something else stops it.
 * r->why is ESKY_WHY_STEP when the goal was reached.
 */
static int run_to(struct esky_session *s, uint64_t addr, uint64_t sp, struct esky_stop_report *r)
{
	int ret;

	if (!sess_in_program_code(s, addr))
		return esky_error(-EINVAL, "0x%" PRIx64 " is not in the code of %s: esky cannot stop "
				  "there", addr, s->program);
	s->goal = true;
	s->goal_addr = addr;
	s->goal_sp = sp;
	esky_target_select_event(s->t);
	s->goal_thread = esky_target_thread(s->t);
	ret = sess_sync_sites(s);
	if (!ret)
		ret = sess_run_until(s, 1, r);
	s->goal = false;
	if (esky_session_alive(s)) {
		int r2 = sess_sync_sites(s);

		ret = ret ? ret : r2;
	}
	return ret;
}

/* Function, file and line of a runtime address of the program (false: none). */
static bool line_of(struct esky_session *s, uint64_t pc, struct esky_loc *loc)
{
	memset(loc, 0, sizeof(*loc));
	if (!s->di || !sess_in_program_code(s, pc))
		return false;
	return esky_debuginfo_lookup(s->di, pc - s->bias, loc) == 0;
}

static bool same_function(const struct esky_loc *a, const struct esky_loc *b)
{
	return a->function && b->function && !strcmp(a->function, b->function);
}

/* The runtime address after the prologue of function (0 if unknown). */
static uint64_t after_prologue(struct esky_session *s, const char *function)
{
	struct esky_loc *locs;
	size_t n;
	uint64_t addr = 0;

	if (!function || esky_debuginfo_resolve(s->di, function, &locs, &n)) {
		esky_error_clear();
		return 0;
	}
	if (n)
		addr = locs[0].addr + s->bias;
	esky_locs_free(locs, n);
	return addr;
}

static int regs_now(struct esky_session *s, esky_regs_t *regs)
{
	return esky_target_get_regs(s->t, regs);
}

/*
 * One source line (gdb's next, or step with into): single steps until the
 * line changes; a call is run through to its return (next, or step into a
 * function without line information), or stopped in after its prologue
 * (step). Leaving the function stops in the caller.
 */
static int line_step(struct esky_session *s, bool into, struct esky_stop_report *r)
{
	struct esky_loc from, at;
	esky_regs_t regs;
	uint64_t sp0;
	int ret = regs_now(s, &regs);

	if (ret)
		return ret;
	sp0 = arch_regs_sp(&regs);
	if (!line_of(s, arch_regs_ip(&regs), &from) || !from.line) {
		esky_loc_clear(&from);
		return esky_error(-ENOENT, "no line information here (%s): use stepi, or finish",
				  r->where[0] ? r->where : "outside the program");
	}
	for (unsigned k = 0; k < 10000000; k++) {
		uint64_t pc, sp;
		bool known;

		ret = esky_session_stepi(s, 1, r);
		if (ret || r->why != ESKY_WHY_STEP)
			break;
		ret = regs_now(s, &regs);
		if (ret)
			break;
		pc = arch_regs_ip(&regs);
		sp = arch_regs_sp(&regs);
		known = line_of(s, pc, &at);
		if (sp < sp0 && !(known && same_function(&at, &from))) {
			/* Entered a callee: its return address is on top of the stack. */
			uint64_t ret_addr, stop = 0;

			if (into && known && at.line)
				stop = after_prologue(s, at.function);
			esky_loc_clear(&at);
			if (stop && stop == pc)
				break;
			if (stop) {
				ret = run_to(s, stop, 0, r);
				break;
			}
			ret = esky_target_read_mem(s->t, sp, &ret_addr,
						   sizeof(ret_addr));
			if (!ret)
				ret = run_to(s, ret_addr, sp, r);
			if (ret || r->why != ESKY_WHY_STEP)
				break;
			continue;
		}
		/* Back in the caller, or on another line of this function. */
		if (sp > sp0 && !(known && same_function(&at, &from))) {
			esky_loc_clear(&at);
			break;
		}
		if (known && at.line && (at.line != from.line ||
					 (at.file && from.file && strcmp(at.file, from.file)))) {
			esky_loc_clear(&at);
			break;
		}
		esky_loc_clear(&at);
	}
	esky_loc_clear(&from);
	return ret;
}

static int line_steps(struct esky_session *s, unsigned n, bool into, struct esky_stop_report *r)
{
	int ret = 0;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return sess_no_process();
	sess_report_where(s, r);
	for (unsigned i = 0; i < (n ? n : 1) && !ret; i++) {
		ret = line_step(s, into, r);
		if (!ret && r->why != ESKY_WHY_STEP)
			break;
	}
	return ret;
}

int esky_session_next(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	return line_steps(s, n, false, r);
}

int esky_session_step(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	return line_steps(s, n, true, r);
}

int esky_session_finish(struct esky_session *s, struct esky_stop_report *r, uint64_t *value,
			char *from, size_t from_n)
{
	struct esky_loc at;
	esky_regs_t regs;
	uint64_t ret_addr, slot, body;
	int64_t cfa_off;
	int cfa_reg, ret;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return sess_no_process();
	ret = regs_now(s, &regs);
	if (ret)
		return ret;
	if (!line_of(s, arch_regs_ip(&regs), &at) || !at.function) {
		esky_loc_clear(&at);
		return esky_error(-ENOENT, "finish: the program is not in a function of %s",
				  s->program);
	}
	snprintf(from, from_n, "%s", at.function);
	body = after_prologue(s, at.function);
	esky_loc_clear(&at);
	if (!esky_debuginfo_cfa(s->di, arch_regs_ip(&regs) - s->bias, &cfa_reg, &cfa_off) &&
	    arch_regs_dwarf(&regs, cfa_reg, &slot)) {
		/* The call frame information knows, frame pointer or not. */
		slot = slot + (uint64_t)cfa_off - ARCH_CFA_RET_OFF;
	} else {
		/* Before the frame is set up, the return address is where the call left it. */
		slot = body && arch_regs_ip(&regs) < body ? arch_regs_sp(&regs)
							  : arch_regs_fp(&regs) + ARCH_FP_RET_OFF;
	}
	ret = esky_target_read_mem(s->t, slot, &ret_addr, sizeof(ret_addr));
	if (ret)
		return esky_error(ret, "finish: cannot read the return address: %s", strerror(-ret));
	if (!sess_in_program_code(s, ret_addr))
		return esky_error(-EINVAL, "\"finish\" not meaningful in the outermost frame (%s "
				  "returns outside %s)", from, s->program);
	ret = run_to(s, ret_addr, slot, r);
	if (!ret && r->why == ESKY_WHY_STEP && !regs_now(s, &regs))
		*value = arch_regs_retval(&regs);
	return ret;
}

int esky_session_until(struct esky_session *s, const char *spec, struct esky_stop_report *r)
{
	struct esky_loc *locs;
	uint64_t addr;
	size_t n;
	int ret;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return sess_no_process();
	if (!s->di)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	ret = esky_debuginfo_resolve(s->di, spec, &locs, &n);
	if (ret)
		return ret;
	addr = n ? locs[0].addr + s->bias : 0;
	esky_locs_free(locs, n);
	return run_to(s, addr, 0, r);
}
