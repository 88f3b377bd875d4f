/*
 * Control of one traced process: the only module of esky that calls
 * ptrace(2). Everything else asks it.
 *
 * A tracee is seized (PTRACE_SEIZE), so that PTRACE_INTERRUPT and
 * PTRACE_LISTEN work and group-stops are told apart from other stops.
 * Remote syscalls run a syscall instruction found in the tracee's own
 * executable memory (its vDSO has several) between syscall-enter and
 * syscall-exit stops, so no memory of the tracee is modified.
 */
#ifndef ESKY_TRACEE_H
#define ESKY_TRACEE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arch.h"

struct esky_tracee;

/* Why a tracee stopped, or how it ended. */
enum esky_stop_kind {
	ESKY_STOP_NONE = 0,
	ESKY_STOP_EXITED,    /* exited: status */
	ESKY_STOP_KILLED,    /* killed by sig (core: dumped) */
	ESKY_STOP_SIGNAL,    /* signal-delivery-stop of sig (SIGTRAP from int3 included) */
	ESKY_STOP_GROUP,     /* group-stop by sig (SIGSTOP, SIGTSTP, ...) */
	ESKY_STOP_INTERRUPT, /* PTRACE_EVENT_STOP after PTRACE_INTERRUPT or a seize */
	ESKY_STOP_EXEC,      /* PTRACE_EVENT_EXEC */
	ESKY_STOP_SYSCALL,   /* syscall-enter or -exit stop */
	ESKY_STOP_CLONE,     /* PTRACE_EVENT_CLONE/FORK/VFORK: new_pid */
	ESKY_STOP_EXIT_EVENT, /* PTRACE_EVENT_EXIT (about to exit: status) */
};

struct esky_stop {
	enum esky_stop_kind kind;
	int sig;     /* SIGNAL, GROUP, KILLED */
	int status;  /* EXITED, EXIT_EVENT */
	bool core;   /* KILLED with a core dump */
	pid_t new_pid; /* CLONE */
	int si_code; /* SIGNAL: siginfo's si_code (SI_KERNEL for int3, TRAP_TRACE for a step) */
};

/* How to start a program under ptrace. */
struct esky_spawn {
	const char *path;      /* searched in PATH if it has no slash; relative to cwd if set */
	char *const *argv;
	char *const *envp;     /* NULL: the current environment */
	const char *cwd;       /* the child's working directory (NULL: ours) */
	/* fds placed in the child: fd_src[i] becomes fd_dst[i] (before exec) */
	const int *fd_src, *fd_dst;
	size_t fd_n;
	bool close_others;     /* close every fd not in fd_dst (and not 0-2 unless listed) */
	const sigset_t *sigmask; /* signal mask of the child (NULL: empty) */
	bool new_pgrp;         /* put the child in a process group of its own */
	/*
	 * > 0: start the program in a new user, PID and IPC namespace, with this
	 * pid there (clone3's set_tid, by an init that stays as its parent
	 * and reaps), our uid and gid mapped to themselves, and CAP_SYS_ADMIN
	 * in that namespace kept across exec as an ambient capability (for
	 * its threads' set_tid; the restore agent drops it).
	 */
	pid_t ns_pid;
};

/*
 * Note which signals this process inherited ignored (nohup's SIGHUP), so
 * that spawned programs inherit them ignored too. Call first thing in
 * main, before esky ignores any signal of its own; without the call every
 * signal is reset to its default in spawned programs.
 */
void esky_tracee_note_inherited_signals(void);

/*
 * Fork and exec a program, traced from its first instruction: on success
 * the tracee is in ESKY_STOP_EXEC. Signal dispositions that esky changed
 * are reset in the child (the ones esky inherited ignored stay ignored). On exec failure returns -errno (the child's)
 * with esky_error() naming the program and the cause.
 */
int esky_tracee_spawn(const struct esky_spawn *sp, struct esky_tracee **out);

/* One process of a tree to start (esky_tracee_spawn_tree). */
struct esky_spawn_member {
	struct esky_spawn sp;  /* its program, fds (its own: placed after its children are made) */
	pid_t pid;             /* its pid in the namespace */
	int parent;            /* index of its parent; -1 for the root (index 0) */
	pid_t pgid, sid;       /* its group and session there; 0: none of the tree's (kept) */
	bool zombie;           /* ends at once with status, for its parent to wait for */
	int status;
};

/*
 * Start a process tree in new user, PID, IPC and mount namespaces (as
 * ns_pid does for one): the namespace's init makes the root, each process
 * its children, every one with its pid. out[i] is the tracee of live
 * process i, stopped at its exec (ESKY_STOP_EXEC), NULL for a zombie;
 * out[0] holds the init. 0 or -errno with esky_error() (nothing left).
 */
int esky_tracee_spawn_tree(const struct esky_spawn_member *m, size_t n, struct esky_tracee **out);

/*
 * Seize a running process and stop it (ESKY_STOP_INTERRUPT). 0 or -errno
 * with esky_error() ("cannot attach to pid 123: Operation not permitted").
 */
int esky_tracee_attach(pid_t pid, struct esky_tracee **out);

/*
 * Seize and stop every thread of process pid but its main one and those
 * have(ctx, tid) knows, giving each to add(ctx, t) (which owns it on
 * success); again until a pass finds no new one (a running thread may
 * make another meanwhile). A thread that ends on the way is not there.
 * 0 or -errno (with esky_error()).
 */
int esky_tracee_attach_threads(pid_t pid, bool (*have)(void *ctx, pid_t tid),
			       int (*add)(void *ctx, struct esky_tracee *t), void *ctx);

/*
 * Make a tracee of a process that is already traced by us (the child of a
 * fork the tracee made under PTRACE_O_TRACECLONE). Does not wait.
 */
int esky_tracee_adopt(pid_t pid, struct esky_tracee **out);

/* Detach, leaving the process running (or delivering sig). */
int esky_tracee_detach(struct esky_tracee *t, int sig);
/*
 * A word of the kernel's struct user (the debug registers live there:
 * arch.h gives their offsets). 0 or -errno.
 */
int esky_tracee_peek_user(struct esky_tracee *t, size_t off, uint64_t *value);
int esky_tracee_poke_user(struct esky_tracee *t, size_t off, uint64_t value);

/*
 * The PID namespace a spawned tracee runs in is ending (every process of
 * it killed and reaped, this one last): freeing the tracee waits for the
 * namespace's init, which reaps the rest and ends.
 */
void esky_tracee_end_namespace(struct esky_tracee *t);

/* SIGKILL the process and reap it. */
void esky_tracee_kill(struct esky_tracee *t);

/* Free the handle (does not kill or detach). */
void esky_tracee_free(struct esky_tracee *t);

pid_t esky_tracee_pid(const struct esky_tracee *t);
/* True once the process exited or was killed (and reaped). */
bool esky_tracee_gone(const struct esky_tracee *t);

/*
 * Trace the threads the tracee makes from their first instruction
 * (PTRACE_O_TRACECLONE, kept across esky_tracee_set_options): each is
 * reported as ESKY_STOP_CLONE, then stops before it runs. 0 or -errno.
 */
int esky_tracee_follow_threads(struct esky_tracee *t, bool on);

/* PTRACE_O_* options (TRACESYSGOOD and EXITKILL are always on). */
int esky_tracee_set_options(struct esky_tracee *t, unsigned extra);
/*
 * Whether the tracee is killed when esky dies (PTRACE_O_EXITKILL): on for
 * a spawned program (esky-shell writes breakpoints into it), off for an
 * attached one; esky start and resume turn it off so that a job runs on
 * when its monitor dies (the kernel detaches it). 0 or -errno.
 */
int esky_tracee_set_exitkill(struct esky_tracee *t, bool on);

/* Resume: run, single-step, syscall-step, listen (group-stop), with a signal to deliver or 0. */
int esky_tracee_cont(struct esky_tracee *t, int sig);
int esky_tracee_step(struct esky_tracee *t, int sig);
int esky_tracee_listen(struct esky_tracee *t);
/* Ask a running tracee to stop (ESKY_STOP_INTERRUPT follows). */
int esky_tracee_interrupt(struct esky_tracee *t);

/*
 * Wait for the next stop of this tracee and decode it. With nohang,
 * returns -EAGAIN if nothing happened. 0 or -errno (-ECHILD: gone).
 */
int esky_tracee_wait(struct esky_tracee *t, struct esky_stop *st, bool nohang);

/* Registers and other per-task state (the tracee must be stopped). */
int esky_tracee_get_regs(struct esky_tracee *t, esky_regs_t *regs);
int esky_tracee_set_regs(struct esky_tracee *t, const esky_regs_t *regs);
/* The whole x87/SSE/AVX state (NT_X86_XSTATE); *buf malloc'd. */
int esky_tracee_get_xstate(struct esky_tracee *t, void **buf, size_t *len);
int esky_tracee_set_xstate(struct esky_tracee *t, const void *buf, size_t len);
int esky_tracee_get_sigmask(struct esky_tracee *t, uint64_t *mask);
int esky_tracee_set_sigmask(struct esky_tracee *t, uint64_t mask);
int esky_tracee_get_siginfo(struct esky_tracee *t, siginfo_t *si);

/* rseq registration (PTRACE_GET_RSEQ_CONFIGURATION); len 0 if none. */
struct esky_rseq_conf {
	uint64_t ptr;
	uint32_t len;
	uint32_t flags;
	uint32_t sig;
};
int esky_tracee_get_rseq(struct esky_tracee *t, struct esky_rseq_conf *conf);

/* Pending signals with their siginfo: per-thread or shared queue. *out malloc'd. */
int esky_tracee_peek_siginfo(struct esky_tracee *t, bool shared, siginfo_t **out, size_t *n);

/*
 * Memory of the tracee. read_mem uses process_vm_readv and falls back to
 * /proc/PID/mem for pages the tracee itself may not read (PROT_NONE);
 * write_mem goes through /proc/PID/mem, which may write read-only text
 * (breakpoints). 0 or -errno (-EFAULT if part is unmapped).
 */
int esky_tracee_read_mem(struct esky_tracee *t, uint64_t addr, void *buf, size_t len);

/* A range of the tracee's memory and where to put it. */
struct esky_mem_range {
	uint64_t addr;
	void *buf;
	size_t len;
};

/*
 * esky_tracee_read_mem of n ranges, as few process_vm_readv calls as
 * they fit in (one per 1024 ranges): a snapshot reading a few hundred
 * scattered pages saves a system call each. 0, or read_mem's error for
 * the first range it cannot read, whose index goes to *bad.
 */
int esky_tracee_read_ranges(struct esky_tracee *t, const struct esky_mem_range *r, size_t n,
			    size_t *bad);

/*
 * The tracee shares its memory copy-on-write with another process (esky's
 * frozen fork copy): read it through /proc/PID/mem only. process_vm_readv
 * pins the pages it reads (FOLL_PIN), and since Linux 5.19 pinning a
 * shared anonymous page unshares it: the copy would be copied in full.
 */
void esky_tracee_set_cow_shared(struct esky_tracee *t, bool on);
int esky_tracee_write_mem(struct esky_tracee *t, uint64_t addr, const void *buf, size_t len);

/*
 * Remote syscalls. esky_tracee_inject_begin saves the registers and signal
 * mask of a stopped tracee and blocks all its signals; each
 * esky_tracee_syscall runs one syscall in it: the return value is 0 or
 * -errno for the injection itself and *ret holds the syscall's result;
 * esky_tracee_inject_end puts the saved state back and leaves the tracee
 * in an interrupt stop (ESKY_STOP_INTERRUPT), from which the kernel will
 * restart an interrupted syscall when it is resumed. In between, the
 * tracee dies with esky (PTRACE_O_EXITKILL) even if it would otherwise
 * outlive it: never detached in esky's state.
 * A clone/fork made by an injected syscall is reported in *child_pid of
 * esky_tracee_syscall_child (stopped, traced by us, not waited for).
 */
int esky_tracee_inject_begin(struct esky_tracee *t);
int esky_tracee_syscall(struct esky_tracee *t, long *ret, long nr, long a0, long a1,
			long a2, long a3, long a4, long a5);
pid_t esky_tracee_syscall_child(struct esky_tracee *t);
int esky_tracee_inject_end(struct esky_tracee *t);

/* One syscall of a batch: its number and arguments, and the result. The layout is the code's. */
struct esky_batch_call {
	int64_t nr;
	int64_t a[6];
	int64_t ret;
};

/*
 * Between inject_begin and inject_end: run n syscalls whose arguments do not
 * depend on each other's results in one resume of the tracee, instead of
 * two syscall stops each (62 sigaction queries cost ~2 ms one by one).
 * code: ARCH_BATCH_CODE_MAX bytes of an executable mapping of the tracee's,
 * written here; table: n * 64 writable bytes of it. calls[i].ret is filled
 * in. 0 or -errno for the batch itself (-EFAULT if the code could not
 * run: then nothing of it is known to have run).
 */
int esky_tracee_syscall_batch(struct esky_tracee *t, uint64_t code, uint64_t table,
			      struct esky_batch_call *calls, size_t n);

/*
 * Scratch memory for injected syscalls (between inject_begin and
 * inject_end): ESKY_SCRATCH_DATA bytes at its start for the calls'
 * arguments and results, then room for a batch of ESKY_SCRATCH_CALLS
 * calls and its code (made executable; the rest stays writable, never
 * both). esky_tracee_scratch_calls runs them as one batch where it can,
 * one by one otherwise (executable memory refused): the same results.
 * 0 or -errno with esky_error().
 */
#define ESKY_SCRATCH_DATA 4096u
#define ESKY_SCRATCH_CALLS 128u
struct esky_scratch {
	uint64_t addr;
	bool exec;              /* the code page is executable: batches run */
};
int esky_tracee_scratch_map(struct esky_tracee *t, struct esky_scratch *s);
int esky_tracee_scratch_calls(struct esky_tracee *t, const struct esky_scratch *s,
			      struct esky_batch_call *calls, size_t n);
int esky_tracee_scratch_unmap(struct esky_tracee *t, struct esky_scratch *s);

/*
 * Find a syscall instruction for remote syscalls again (after the vDSO or
 * the text moved, as after a restore). 0 or -ENOENT.
 */
int esky_tracee_find_syscall_insn(struct esky_tracee *t);
/*
 * Use from's syscall instruction in to (a thread of the same process:
 * one memory), found in from first if need be. 0 or -ENOENT.
 */
int esky_tracee_share_syscall_insn(struct esky_tracee *to, struct esky_tracee *from);

#endif
