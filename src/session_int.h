/*
 * The parts of an esky-shell session (session.h is its interface): the
 * session itself and what its files share. Each file says what it holds;
 * what one part offers the others is declared here under its name.
 */
#ifndef ESKY_SESSION_INT_H
#define ESKY_SESSION_INT_H

#include "session.h"
#include "arch.h"
#include "core.h"
#include "debuginfo.h"
#include "dirty.h"
#include "expr.h"
#include "gdb.h"
#include "image.h"
#include "log.h"
#include "proc.h"
#include "rewind.h"
#include "restore.h"
#include "target.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct bp {
	int id;
	enum esky_bp_kind kind;
	char *spec;
	char *where;
	uint64_t *link;   /* link-time addresses */
	size_t nlocs;
	unsigned hits;
	unsigned count;
	bool warned;      /* said once that it is not in the program's code */
	char *cond;       /* break LOC if COND: stop (or snapshot) only when true */
					       /*
	 * A breakpoint in a shared library: FUNCTION of the library LIB ("" for
								   * any library), NULL for the program's own. Its link[0] is then a
	 * runtime address, found again at each run, rewind and library load
	 * (nlocs 0: pending, no mapped library has it).
     */
	char *lib, *func;
	bool lib_seen;    /* a library named lib is mapped (the last resolve saw it) */
};

/* An int3 we put in the program's text, with the byte it replaced. */
struct site {
	uint64_t addr;
	uint8_t orig;
};

enum pending_stop { PENDING_NONE, PENDING_TIMER, PENDING_USER };

struct esky_session {
	struct esky_store *store;
	unsigned trust;           /* ESKY_TRUST_* for the store's files (trust.h) */
	char *program;
	char **args;
	struct esky_redirect *redirs; /* for the next runs, paths owned */
	size_t nredirs;
	char **env;               /* the program's environment; NULL: ours */
	char *cwd;                /* the program's directory; NULL: ours */
	char *own_cwd;            /* ours, as esky_session_cwd last said */
	struct esky_debuginfo *di;
	struct esky_target *t;
	char *agent;
	uint64_t bias;            /* runtime - link address of the program */
	uint64_t exe_lo, exe_hi;  /* where the program's file is mapped */
	struct code_range { uint64_t lo, hi; } *code; /* its executable mappings */
	size_t ncode;
	struct bp *bps;
	size_t nbps;
	int next_bp;
	struct esky_bpinfo *info;
	struct site *sites;
	size_t nsites;
	/* the snapshot the process descends from, and the hashes of its pages */
	int lineage;
	size_t depth;             /* images in the lineage's chain (0: not known) */
	uint8_t lineage_id[16];
	struct esky_page_hash *hashes;
	size_t nhashes;
	uint64_t every_ns, every_left;
	enum pending_stop pending;
	int timer_fd, intr_fd, sig_fd;
	esky_session_notify_fn notify;
	void *notify_ctx;
	/* esky snap: snapshots go to standalone files, not to the store (NULL) */
								   struct esky_snapfile_sink sink;
	bool pass_signals;        /* the program gets its signals as without esky */
	int snap_bp;              /* the breakpoint taking the snapshot, 0: timer */
	unsigned snap_hit;        /* its hit number */
	unsigned timer_hits;
	/*
	 * Dirty-page tracking since the last snapshot (NULL: content hashes).
						 * track_pages is the wish (esky_session_track_pages); tracking_said
				  * keeps the reason it is off from being said twice.
	 */
	struct esky_dirty *dirty;
	struct esky_maps_cache maps_cache; /* smaps of the last snapshot, while tracking lasts */
	bool in_place;          /* rewinds may write what differs into the live program */
	/*
	 * A timer snapshot written while the program stood, recorded in the
	 * store's tree once it runs again (the tree's write and fsync are
				     * not the program's to wait for): set between the two.
	 */
	bool unrecorded;
	struct esky_snapinfo unrecorded_si;
	char *unrecorded_path;
	/*
	 * The id the next timer snapshot takes, reserved while the program
	 * runs (a reservation reads and writes the tree: ~2 ms); 0: none.
	  */
	int spare_id;
	struct esky_image_writer *spare_writer; /* its file, opened ahead too (or NULL) */
	/* hardware watchpoints: slot i is debug register i */
	struct watch {
		int id;
		char *spec;
		uint64_t link;      /* a symbol's link-time address (bias added at each run) */
						       uint64_t abs;       /* or an absolute address */
		bool is_symbol, snap;
		unsigned len, hits, count;
		uint64_t old;
	} *watches;
	size_t nwatches;
	/* run control by source line: an internal stop at goal_addr once sp > goal_sp */
	bool goal;
	uint64_t goal_addr, goal_sp;
	pid_t goal_thread;     /* ... in this thread (another one's passing there is not it) */
					       bool track_pages;
	int tracking_err;         /* why it could not start (-errno), or 0 */
						      /* symbols of the libraries, opened when an address in them is named */
	struct lib_syms {
		char *path;
		struct esky_debuginfo *di; /* NULL if it could not be read */
	} *libs;
	size_t nlibs;
	/*
	 * _dl_debug_state of the dynamic linker, where the program stops
	 * silently after each library load or unload (the r_debug protocol
						* gdb uses) while there are library breakpoints; 0: none.
	 */
	uint64_t dl_state;
};

extern char **environ;

/* ---- session.c ---- */

int sess_no_process(void);
void sess_notify(struct esky_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sess_no_store(void);
void sess_drop_process(struct esky_session *s);
int sess_find_agent(struct esky_session *s);
void sess_idle(void *ctx);
void sess_ended(struct esky_session *s, const struct esky_event *ev, struct esky_stop_report *r);
int sess_run_until(struct esky_session *s, unsigned n, struct esky_stop_report *r);
int sess_program_tid(pid_t tid);

/* ---- session_places.c ---- */

void sess_find_bias(struct esky_session *s);
void sess_resolve_libs(struct esky_session *s);
bool sess_in_program_code(const struct esky_session *s, uint64_t addr);
void sess_describe(struct esky_session *s, uint64_t pc, char *buf, size_t n);
int sess_get_pc(struct esky_session *s, uint64_t *pc);
void sess_report_where(struct esky_session *s, struct esky_stop_report *r);

/* ---- session_breaks.c ---- */

void sess_free_bp(struct bp *b);
struct site *sess_site_at(struct esky_session *s, uint64_t addr);
int sess_remove_site(struct esky_session *s, size_t i);
int sess_sync_sites(struct esky_session *s);
struct bp *sess_find_bp(struct esky_session *s, int id);
int sess_at_breakpoint(struct esky_session *s, uint64_t addr, int *stop_bp, bool *temporary);
void sess_rebuild_info(struct esky_session *s);

/* ---- session_watch.c ---- */

void sess_thread_born(void *ctx, struct esky_tracee *tr);
int sess_apply_watches(struct esky_session *s);
int sess_at_watch(struct esky_session *s, struct esky_stop_report *r, bool *stop);

/* ---- session_snap.c ---- */

void sess_stop_tracking(struct esky_session *s);
void sess_tracking_events(struct esky_session *s);
int sess_take_snapshot_as(struct esky_session *s, enum esky_snap_cause cause, const char *note,
			  int *idp, bool defer);
int sess_take_snapshot(struct esky_session *s, enum esky_snap_cause cause, const char *note,
		       int *idp);
int sess_record_snapshot(struct esky_session *s);
void sess_release_spare(struct esky_session *s);

#endif
