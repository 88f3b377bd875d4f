/*
 * A program under esky's monitor: started, thawed or attached; its stops
 * decoded into events; checkpoints taken from it, written in a background
 * thread while the program runs on (from a copy-on-write fork) when esky
 * is its parent.
 *
 * Single-threaded use: all calls but esky_target_checkpoint_fd's polling
 * come from the thread that created the target (it is the ptrace tracer).
 */
#ifndef ESKY_TARGET_H
#define ESKY_TARGET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dump.h"
#include "image.h"
#include "restore.h"
#include "tracee.h"

struct esky_target;

enum esky_event_kind {
	ESKY_EV_NONE = 0,  /* nothing for the caller: the program runs on */
	ESKY_EV_EXITED,    /* exited with status */
	ESKY_EV_KILLED,    /* killed by sig */
	ESKY_EV_STOPPED,   /* stopped because we asked (esky_target_interrupt) */
	ESKY_EV_TRAP,      /* SIGTRAP: a breakpoint (si_code SI_KERNEL) or a step */
	ESKY_EV_SIGNAL,    /* a signal is about to be delivered (only with report_signals) */
};

struct esky_event {
	enum esky_event_kind kind;
	int status;
	int sig;
	int si_code;
};

/* Start argv[0] (searched in PATH) stopped at its first instruction. */
int esky_target_start(char *const argv[], struct esky_target **out);

/* What esky_target_start_with gives the program; NULL fields: esky's own. */
struct esky_target_start_opts {
	const int *stdio;     /* 3 fds of ours that become its 0, 1 and 2 (the caller closes them after) */
	char *const *envp;    /* its environment */
	const char *cwd;      /* its working directory (argv[0] is then absolute or found in PATH) */
};

/* esky_target_start with the program's stdio, environment and directory. */
int esky_target_start_with(char *const argv[], const struct esky_target_start_opts *o,
			   struct esky_target **out);
/* Thaw a checkpoint chain; stopped where it was frozen. */
int esky_target_restore(struct esky_image *const *chain, size_t n,
			const struct esky_restore_opts *o, struct esky_target **out);
/* Attach to a running process (not our child); stopped. */
int esky_target_attach(pid_t pid, struct esky_target **out);

/* Kill the program (if alive) and free everything. */
void esky_target_free(struct esky_target *t);
/*
 * Let go of the stopped program for good and free the target, without
 * killing it: no tracer, no monitor left. With stopped set it stays
 * stopped where it stands (a job-control stop) for a debugger to attach
 * to; otherwise it runs on. On error the target is still ours.
 */
int esky_target_release(struct esky_target *t, bool stopped);
/*
 * Trace again a program released by esky_target_release (still our
 * child); run_ns is how long it had run. Stopped on return.
 */
int esky_target_take_back(pid_t pid, uint64_t run_ns, struct esky_target **out);
/*
 * Let process tracer trace the stopped program although it is not its
 * ancestor (Yama's ptrace_scope 1): an injected prctl(PR_SET_PTRACER).
 * 0 when done or when nothing restricts ptrace.
 */
int esky_target_allow_tracer(struct esky_target *t, pid_t tracer);
/*
 * With on, the program outlives its monitor: if esky dies, the kernel
 * detaches it and it runs on (esky start and resume: no breakpoints in it;
 * the fork copy of a checkpoint in progress still dies with esky). Off, it
 * dies with esky (esky-shell's, once taken back from gdb). 0 or -errno.
 */
int esky_target_survive_monitor(struct esky_target *t, bool on);

/*
 * A lazy resume (esky_restore_opts.lazy): true while pages are still to
 * come (the program must not outlive esky meanwhile: they would read as
 * zeros). esky_target_lazy_finish waits for the last of them: 0, or
 * -errno with esky_error() when serving failed (the program was killed:
 * a damaged page). Checkpoints and release wait for them themselves.
 */
bool esky_target_lazy_pending(struct esky_target *t);
/* An fd that becomes readable when the last page is in (-1: no lazy resume). */
int esky_target_lazy_fd(const struct esky_target *t);
int esky_target_lazy_finish(struct esky_target *t);
/*
 * Make the stopped program create a userfaultfd (an injected syscall) and
 * give esky a duplicate of it (*fd, ours); the program's own fd is closed
 * again. 0 or -errno (-ENOSYS, -EPERM where userfaultfd is not allowed).
 */
int esky_target_make_uffd(struct esky_target *t, int *fd);

/*
 * Follow every thread of the program, all-stop as gdb does (esky-shell):
 * the threads it makes are traced from their start; when one stops for
 * the caller (a trap, a signal reported, an interrupt) every other one is
 * stopped too and that one becomes the current thread, whose registers
 * esky_target_tracee() gives; cont lets all go, step only the current one.
 * have: threads already traced and stopped (a thaw's), taken over; the
 * others are seized. 0 or -errno.
 */
int esky_target_follow_threads(struct esky_target *t, struct esky_tracee *const *have, size_t n);
/*
 * fn(ctx) is called while esky waits for threads to stop (all-stop): what
 * the program may be waiting on esky for meanwhile (userfaultfd events of
 * dirty-page tracking) must be served there.
 */
void esky_target_set_idle(struct esky_target *t, void (*fn)(void *ctx), void *ctx);
/*
 * fn(ctx, tr) is called for each thread the program makes, stopped at its
 * first stop (debug registers are not inherited: set them there).
 */
void esky_target_on_new_thread(struct esky_target *t,
			       void (*fn)(void *ctx, struct esky_tracee *tr), void *ctx);
/* Every thread followed, the main one first: at most max in out; returns how many there are. */
size_t esky_target_threads(struct esky_target *t, struct esky_tracee **out, size_t max);
/*
 * Make thread tid (as we see it) the current one, for looking at (its
 * registers); a run or a step always goes on from the thread that stopped
 * (esky_target_select_event makes it current again). 0 or -ESRCH.
 */
void esky_target_select_event(struct esky_target *t);
int esky_target_select_thread(struct esky_target *t, pid_t tid);
/* Make thread tid the current one and the one the program goes on from (after a thaw). */
int esky_target_make_current(struct esky_target *t, pid_t tid);
/* The current thread's tid (as we see it), and how many threads are followed. */
pid_t esky_target_thread(const struct esky_target *t);
size_t esky_target_thread_count(const struct esky_target *t);

/*
 * The current thread (the main one unless following threads), for the
 * modules that work on a tracee as a whole (dump, rewind). Registers,
 * memory and stepping go through the calls below.
 */
struct esky_tracee *esky_target_tracee(struct esky_target *t);

/*
 * The current thread's registers and user area (debug registers), and
 * the program's memory, while it is stopped. Memory is read as
 * esky_tracee_read_mem does (PROT_NONE pages too) and written through
 * /proc/PID/mem (read-only code too). 0, -ESRCH when the program is
 * gone, or another -errno.
 */
int esky_target_get_regs(struct esky_target *t, esky_regs_t *regs);
int esky_target_set_regs(struct esky_target *t, const esky_regs_t *regs);
int esky_target_peek_user(struct esky_target *t, size_t off, uint64_t *value);
int esky_target_poke_user(struct esky_target *t, size_t off, uint64_t value);
int esky_target_read_mem(struct esky_target *t, uint64_t addr, void *buf, size_t len);
int esky_target_write_mem(struct esky_target *t, uint64_t addr, const void *buf, size_t len);

/*
 * Step the current thread over the breakpoint byte at addr: orig, the
 * byte it replaced, is put back for one instruction, and the breakpoint
 * byte again as esky_target_wait reports the step's event (or whatever
 * stopped the program first). 0 or -errno (the breakpoint is then in
 * place).
 */
int esky_target_step_over(struct esky_target *t, uint64_t addr, uint8_t orig);
pid_t esky_target_pid(const struct esky_target *t);
bool esky_target_alive(const struct esky_target *t);
/*
 * How long the program has run, across checkpoints (ns): the time between
 * each resume (cont, step) and the stop that follows, so that time spent
 * stopped (at a breakpoint, in a checkpoint) does not count.
 */
uint64_t esky_target_run_ns(const struct esky_target *t);

/* Make signal-delivery stops visible as ESKY_EV_SIGNAL instead of passing them on. */
void esky_target_report_signals(struct esky_target *t, bool on);

/* Resume a stopped program, delivering the signal it stopped with, if any. */
int esky_target_cont(struct esky_target *t);
/* Single-step a stopped program. */
int esky_target_step(struct esky_target *t);
/* Ask the running program to stop: ESKY_EV_STOPPED follows. */
int esky_target_interrupt(struct esky_target *t);
/* Drop the signal the program is stopped with (it will not be delivered). */
void esky_target_drop_signal(struct esky_target *t);
/*
 * The stopped program was rewound in place (rewind.h) to a snapshot taken
 * after run_ns of run time: that is its run time now; no signal waits.
 */
void esky_target_rewound(struct esky_target *t, uint64_t run_ns);

/*
 * Collect the program's next stop. With block false returns -EAGAIN if it
 * has not stopped. Stops the caller does not care about (exec, group
 * stops, signals to pass on) are handled here and give ESKY_EV_NONE with
 * the program running again. 0 or -errno.
 */
int esky_target_wait(struct esky_target *t, struct esky_event *ev, bool block);

/*
 * Checkpoint the stopped program into path. With background set and esky
 * the program's parent, memory is copied from a fork and written by a
 * thread: the call returns as soon as the program may run on, and
 * esky_target_checkpoint_done() tells when the file is complete (poll
 * esky_target_checkpoint_fd() for readability). Without it the call
 * returns with the file complete. The program is stopped on return.
 * With defer_commit (and no fork copy), the call returns once every page
 * is read: the program may run, and esky_target_checkpoint_commit()
 * completes the file (must come before the next checkpoint, which
 * fails with EBUSY until then). 0 or -errno with esky_error().
 */
struct esky_checkpoint_opts {
	bool background;
	bool defer_commit;
	const struct esky_dump_patch *patches;
	size_t patch_n;
	const uint8_t *parent_id;
	const char *parent_hint;
	bool (*parent_hash)(void *ctx, uint64_t vaddr, uint64_t *hash);
	void *parent_ctx;
	size_t (*page_unchanged)(void *ctx, uint64_t vaddr, size_t max); /* see esky_dump_opts */
	void *unchanged_ctx;
	struct esky_maps_cache *maps_cache;                /* see esky_dump_opts */
	struct esky_image_writer *writer;                  /* see esky_dump_opts (taken over) */
};

int esky_target_checkpoint(struct esky_target *t, const char *path,
			   const struct esky_checkpoint_opts *o, struct esky_dump_stats *stats);
/* True while a background checkpoint is being written. */
bool esky_target_checkpoint_busy(const struct esky_target *t);
/* An fd that becomes readable when the background checkpoint is written. */
int esky_target_checkpoint_fd(const struct esky_target *t);
/*
 * Wait for the background checkpoint and collect its result: 0 or its
 * -errno; its error message (if any) is recorded with esky_error().
 */
int esky_target_checkpoint_done(struct esky_target *t, struct esky_dump_stats *stats);

/*
 * Complete a deferred checkpoint (defer_commit): write the rest of its
 * file, sync it and put it in place; stats accumulate on those of
 * esky_target_checkpoint. 0 if none was pending, or -errno with
 * esky_error() (the unfinished file is removed).
 */
int esky_target_checkpoint_commit(struct esky_target *t, struct esky_dump_stats *stats);

#endif
