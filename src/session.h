/*
 * A debugging session of esky-shell: one program, its breakpoints, the
 * process running it, and the snapshot store. Everything the shell does
 * goes through here; the shell parses and prints, this module acts and
 * describes. Messages for the user come back through esky_error() (one
 * line) and the notify callback (snapshots taken while the program runs).
 */
#ifndef ESKY_SESSION_H
#define ESKY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include "store.h"

struct esky_session;

enum esky_bp_kind {
	ESKY_BP_BREAK = 0, /* stop */
	ESKY_BP_TBREAK,    /* stop once, then delete */
	ESKY_BP_SNAP,      /* take a snapshot and go on (at most count times if count) */
	ESKY_BP_WATCH,     /* a hardware watchpoint: stop after a write */
	ESKY_BP_WATCH_SNAP,/* snap-on-write: a snapshot after each write, and go on */
};

struct esky_bpinfo {
	int id;
	enum esky_bp_kind kind;
	const char *spec;    /* as the user wrote it */
	const char *where;   /* "step at walk.c:60" (first location) */
	uint64_t addr;       /* link-time address of the first location */
	size_t nlocs;        /* addresses it stands at */
	unsigned hits;
	unsigned count;      /* snap: at most this many snapshots (0: no limit) */
	const char *cond;    /* its condition (break LOC if COND), or NULL */
	bool pending;        /* a library breakpoint no mapped library has yet */
};

/* How the program stopped, after run, continue, stepi or rewind. */
enum esky_stop_why {
	ESKY_WHY_NONE = 0,     /* no process */
	ESKY_WHY_BREAKPOINT,   /* at breakpoint bp */
	ESKY_WHY_STEP,         /* after stepi */
	ESKY_WHY_EXITED,       /* exited with status */
	ESKY_WHY_KILLED,       /* killed by sig */
	ESKY_WHY_SIGNAL,       /* stopped by signal sig (delivered on continue, except SIGINT) */
	ESKY_WHY_INTERRUPTED,  /* esky_session_interrupt */
	ESKY_WHY_REWOUND,      /* thawed from a snapshot */
	ESKY_WHY_STARTED,      /* at its first instruction */
	ESKY_WHY_WATCH,        /* watchpoint bp was written: old_value, new_value */
};

struct esky_stop_report {
	enum esky_stop_why why;
	int bp;
	bool temporary;        /* bp was a tbreak (deleted now) */
	int status;
	int sig;
	uint64_t pc;
	char where[512];       /* "main at walk.c:90" */
	int thread;            /* the thread that stopped (its tid), 0 when the program has one */
	uint64_t old_value, new_value; /* ESKY_WHY_WATCH (len bytes, little-endian) */
};

/* Notes while the program runs (a snapshot was taken): one line each. */
typedef void (*esky_session_notify_fn)(void *ctx, const char *line);

/*
 * Open a session on the store at store_dir (created if missing), or on a
 * fresh store under ./.esky when store_dir is NULL. Call it before the
 * caller ignores any signal: signals ignored now stay ignored in the
 * program (nohup), others are reset to their defaults.
 */
int esky_session_new(const char *store_dir, struct esky_session **out);
/*
 * The same with trust flags (trust.h): ESKY_TRUST_FORCE lets root open
 * another user's store and rewind, export or gcore its snapshots
 * (esky-shell --force).
 */
int esky_session_new_trust(const char *store_dir, unsigned trust, struct esky_session **out);
void esky_session_free(struct esky_session *s);

/* A snapshot written as a standalone checkpoint file (esky snap). */
struct esky_snapfile {
	int bp;              /* the snap breakpoint that took it; 0: the timer */
	unsigned hit;        /* the breakpoint's hit number (the timer counts its own) */
	const char *where;   /* "step at walk.c:105" */
	uint64_t run_ns;     /* how long the program had run */
	uint64_t bytes;      /* the file's size, once written */
	const char *path;    /* once written */
};

struct esky_snapfile_sink {
	/* The path for a snapshot about to be taken (malloc'd), or NULL with esky_error(). */
	char *(*name)(void *ctx, const struct esky_snapfile *sf);
	/* The file is complete (optional). */
	void (*written)(void *ctx, const struct esky_snapfile *sf);
	void *ctx;
};

/*
 * A session without a store: every snapshot (snap breakpoints, the timer,
 * esky_session_snapshot) is a standalone checkpoint at the path the sink
 * names. rewind, export and forget say there is no store.
 */
int esky_session_new_files(const struct esky_snapfile_sink *sink, struct esky_session **out);
/*
 * Signals sent to the program reach it as they would without esky (no
 * ESKY_WHY_SIGNAL stops; SIGINT ends it if it does not handle it). Off by
 * default: the debugger stops on them.
 */
void esky_session_pass_signals(struct esky_session *s, bool on);
/* The program's pid, 0 if there is no process. */
pid_t esky_session_pid(const struct esky_session *s);
/*
 * The current thread of a program with several (the one that stopped
 * last, whose registers where and info registers show): its tid as the
 * program sees it; 0 when it has one thread or none runs.
 */
int esky_session_thread(const struct esky_session *s);

/* A thread of the program, for info threads. */
struct esky_thread_info {
	int tid;               /* as the program sees it */
	bool current;
	char name[16];
	uint64_t pc;
	char where[256];
};

/* Every thread of the program (the main one first); *out malloc'd. 0 or -errno. */
int esky_session_threads(struct esky_session *s, struct esky_thread_info **out, size_t *n);
/* Make thread tid (as the program sees it) the current one (where, info registers, stepi). */
int esky_session_select_thread(struct esky_session *s, int tid);
void esky_session_set_notify(struct esky_session *s, esky_session_notify_fn fn, void *ctx);
const char *esky_session_store_dir(const struct esky_session *s);

/* The program to run (its debug information is loaded now). */
int esky_session_file(struct esky_session *s, const char *path);
const char *esky_session_program(const struct esky_session *s);
/* Arguments for the next run (NULL-terminated, copied). */
int esky_session_set_args(struct esky_session *s, char *const args[]);
/* The arguments for the next run (NULL-terminated, owned by the session). */
char *const *esky_session_args(const struct esky_session *s);

/* A redirection of the program's stdio for the next run (run < IN > OUT 2>&1). */
enum esky_redirect_kind {
	ESKY_REDIR_READ = 0,  /* fd < path */
	ESKY_REDIR_WRITE,     /* fd > path (created, truncated) */
	ESKY_REDIR_APPEND,    /* fd >> path (created) */
	ESKY_REDIR_DUP,       /* fd >& to: a copy of what fd `to` is then */
};

struct esky_redirect {
	int fd;               /* 0, 1 or 2 */
	enum esky_redirect_kind kind;
	const char *path;     /* READ, WRITE, APPEND; relative to the program's directory */
	int to;               /* DUP: 0, 1 or 2 */
};

/*
 * The redirections for the next run (copied), applied in order as sh
 * does (> out 2>&1: both to out). The files are opened by each run, in
 * the program's directory, before the program is started: one that
 * cannot be opened fails the run with esky_error() naming it. The store
 * does not keep them (esky_session_stored_program gives none).
 */
int esky_session_set_redirects(struct esky_session *s, const struct esky_redirect *r, size_t n);
const struct esky_redirect *esky_session_redirects(const struct esky_session *s, size_t *n);

/*
 * The program's environment for the next runs: esky's own until changed.
 * setenv replaces or adds NAME=VALUE; unsetenv removes NAME, or every
 * variable with name NULL. environ is NULL-terminated, owned by the
 * session, valid until the next change. -EINVAL with esky_error() for a
 * name that is empty or holds '='.
 */
int esky_session_setenv(struct esky_session *s, const char *name, const char *value);
int esky_session_unsetenv(struct esky_session *s, const char *name);
char *const *esky_session_environ(const struct esky_session *s);

/*
 * The program's working directory for the next runs (gdb's cd; esky's
 * own stays, so the store and the paths given to other commands keep
 * their meaning). dir relative to the current one; it must be a
 * directory: else an error naming it. esky_session_cwd is absolute.
 */
int esky_session_chdir(struct esky_session *s, const char *dir);
const char *esky_session_cwd(struct esky_session *s);
/*
 * Load the program (and arguments) last run on the session's store, as
 * file and set_args would: 0 with *program its path, -ENOENT if the store
 * has none, or file's error (the program is gone).
 */
int esky_session_stored_program(struct esky_session *s, const char **program);

/* Start (or restart) the program and run it until it stops. */
int esky_session_run(struct esky_session *s, struct esky_stop_report *r);
/* Start the program, stopped at its first instruction (gdb's starti). */
int esky_session_starti(struct esky_session *s, struct esky_stop_report *r);
/* Start the program and stop at main. */
int esky_session_start(struct esky_session *s, struct esky_stop_report *r);
/* Kill the program. */
int esky_session_kill(struct esky_session *s);
/* True if a process is there (stopped). */
bool esky_session_alive(const struct esky_session *s);

/* Run until the n-th stop at a breakpoint (snap breakpoints do not stop), or an end. */
int esky_session_continue(struct esky_session *s, unsigned n, struct esky_stop_report *r);
/*
 * By source line, as gdb: next runs n lines, calls included; step enters
 * functions that have line information (stopping after their prologue).
 * r->why is ESKY_WHY_STEP when the line was reached.
 */
int esky_session_next(struct esky_session *s, unsigned n, struct esky_stop_report *r);
int esky_session_step(struct esky_session *s, unsigned n, struct esky_stop_report *r);
/*
 * Run until the current function returns (it must keep a frame pointer,
 * as -O0 builds do, once past its prologue): *value is the return value
 * register, from the name of the function left. r->why ESKY_WHY_STEP.
 */
int esky_session_finish(struct esky_session *s, struct esky_stop_report *r, uint64_t *value,
			char *from, size_t from_n);
/* Run until LOCATION is reached (gdb's until LOCATION and advance). */
int esky_session_until(struct esky_session *s, const char *spec, struct esky_stop_report *r);
/* Execute n instructions. */
int esky_session_stepi(struct esky_session *s, unsigned n, struct esky_stop_report *r);
/*
 * An fd to write 8 bytes (any value) to, from a signal handler if need
 * be, to stop a running continue (ESKY_WHY_INTERRUPTED).
 */
int esky_session_interrupt_fd(const struct esky_session *s);

/* Breakpoints. *id is the new breakpoint's number; desc describes where it went. */
int esky_session_break(struct esky_session *s, const char *spec, enum esky_bp_kind kind,
		       unsigned count, int *id);
/*
 * A hardware watchpoint on spec: a data symbol of the program (its ELF
 * size, or len bytes), or an address (a number, or $register); len 1, 2,
 * 4 or 8 (aligned). With snap, a snapshot after each write, at most count
 * (0: no limit), without stopping. Numbered with the breakpoints; kept
 * across run and rewind. At most ARCH_WATCH_SLOTS. *id its number.
 */
int esky_session_watch(struct esky_session *s, const char *spec, unsigned len, bool snap,
		       unsigned count, int *id);
/*
 * Set (or with cond NULL or "", remove) the condition of breakpoint id
 * (expr.h): it stops, or takes its snapshot, only when cond is true.
 * The syntax is checked now. 0 or -errno with esky_error().
 */
int esky_session_condition(struct esky_session *s, int id, const char *cond);
/* Evaluate an expression (expr.h) in the stopped program. */
int esky_session_print(struct esky_session *s, const char *text, uint64_t *value);
/* Delete breakpoint id, or every one with id 0. */
int esky_session_delete(struct esky_session *s, int id);
const struct esky_bpinfo *esky_session_breakpoints(struct esky_session *s, size_t *n);

/* Where the program stands. */
int esky_session_where(struct esky_session *s, struct esky_stop_report *r);
/* Registers as text lines. */
int esky_session_registers(struct esky_session *s, char *buf, size_t n);
/* An address: a number, $register, or a function name. */
int esky_session_eval(struct esky_session *s, const char *expr, uint64_t *addr);
int esky_session_read(struct esky_session *s, uint64_t addr, void *buf, size_t len);

/*
 * Dirty-page tracking for incremental snapshots (on by default): off, a
 * snapshot reads all memory and compares content hashes.
 */
void esky_session_track_pages(struct esky_session *s, bool on);
/*
 * Whether rewind may bring the live program back by writing only what
 * differs (rewind.h) when it has the snapshot's shape (on by default);
 * off: every rewind thaws a new process.
 */
void esky_session_rewind_in_place(struct esky_session *s, bool on);
/* How snapshots find what changed, as a line for info store (in buf). */
const char *esky_session_pages_mode(const struct esky_session *s, char *buf, size_t n);

/* Snapshots. */
int esky_session_snapshot(struct esky_session *s, const char *note, int *id);
/* Take a snapshot every ns of program run time; 0 stops it. */
int esky_session_every(struct esky_session *s, uint64_t ns);
uint64_t esky_session_every_ns(const struct esky_session *s);
/* Thaw snapshot id: the process is replaced; breakpoints are put back. */
int esky_session_rewind(struct esky_session *s, int id, struct esky_stop_report *r);
/* Write snapshot id as a standalone checkpoint file. */
int esky_session_export(struct esky_session *s, int id, const char *path);
/*
 * Write an ELF core file of snapshot id, or of the program as it stands
 * with id 0 (breakpoints left out), for gdb PROGRAM FILE.
 */
int esky_session_gcore(struct esky_session *s, int id, const char *path);
/*
 * Hand the program as it stands to gdb (in this terminal) and wait for
 * gdb to end; then the session goes on with the program where gdb left
 * it (r->why ESKY_WHY_INTERRUPTED), breakpoints put back, or reports
 * how it ended while gdb had it.
 */
int esky_session_gdb(struct esky_session *s, struct esky_stop_report *r);
/* Delete snapshot id and its subtree; *removed lists them (malloc'd). */
int esky_session_forget(struct esky_session *s, int id, int **removed, size_t *n);
/* The snapshots (store order) and the one the program last came from. */
const struct esky_snapinfo *esky_session_snapshots(struct esky_session *s, size_t *n);
int esky_session_current(const struct esky_session *s);

/* A runtime address named ("step at walk.c:105", "printf+0x1a in libc.so.6"). */
int esky_session_describe(struct esky_session *s, uint64_t addr, char *buf, size_t n);
/* The code addresses of a location (runtime ones while the program runs). *addrs malloc'd. */
int esky_session_lines(struct esky_session *s, const char *spec, uint64_t **addrs, size_t *n);
/* The shared libraries the program has mapped: fn for each, its range and path. */
int esky_session_libraries(struct esky_session *s,
			   void (*fn)(void *ctx, uint64_t lo, uint64_t hi, const char *path),
			   void *ctx);

/* Tab completion of locations: function and file names with the prefix. */
void esky_session_complete(struct esky_session *s, const char *prefix,
			   void (*fn)(const char *name, void *ctx), void *ctx);

#endif
