/*
 * The restore agent's input: one versioned block, written by the monitor
 * into a memfd that the agent maps at ESKY_AGENT_ARGS_ADDR. Arrays come as
 * an offset from the start of the block plus a count (foo_off + foo_n).
 *
 * Included by the freestanding agent and by libesky: freestanding headers
 * only, fixed-size types only, no pointers.
 *
 * Address space of the agent (x86-64, 47-bit user space). Linux puts
 * non-PIE programs at 0x400000, PIEs at 0x55..-0x56.., mmap and libraries
 * below 0x7f.. (or from 0x2aaa.. with the legacy layout), so the agent's
 * zone sits in the gap at 0x3e5c0000_0000:
 *
 *   ESKY_AGENT_BASE        agent text, data, bss and its stack
 *   ESKY_AGENT_ARGS_ADDR   this block (memfd, private mapping)
 *   ESKY_AGENT_PARK_ADDR   the agent's own vDSO/vvar while the image's
 *                          mappings are created
 *   ESKY_AGENT_ZONE_END
 *
 * An image with a mapping in the zone is refused before restore starts.
 */
#ifndef ESKY_AGENT_ABI_H
#define ESKY_AGENT_ABI_H

#include <stdint.h>

#define ESKY_AGENT_BASE 0x3e5c00000000ULL
#define ESKY_AGENT_ARGS_ADDR 0x3e5c40000000ULL
#define ESKY_AGENT_PARK_ADDR 0x3e5c80000000ULL
#define ESKY_AGENT_ZONE_END 0x3e5cc0000000ULL

/* True if [start, end) meets the agent's zone. */
static inline int ea_zone_overlaps(uint64_t start, uint64_t end)
{
	return start < ESKY_AGENT_ZONE_END && end > ESKY_AGENT_BASE;
}

/* "EAGA" (Esky AGent Args), little-endian. */
#define ESKY_AGENT_MAGIC 0x41474145u
#define ESKY_AGENT_VERSION 3u

/* Stacks of the threads the agent makes (in its zone, unmapped with it). */
#define ESKY_AGENT_THREAD_STACKS 0x3e5ca0000000ULL
#define ESKY_AGENT_THREAD_STACK_SIZE 0x4000ULL
#define EA_MAX_THREADS 16384u

/* Kinds of memory mapping. */
enum {
	EA_VMA_ANON = 1,       /* private anonymous (heap and stack included) */
	EA_VMA_FILE_PRIVATE,   /* private file mapping: file + saved dirty pages */
	EA_VMA_FILE_SHARED,    /* shared file mapping: the file holds the data */
	EA_VMA_SHARED_ANON,    /* shared anonymous (shmem): contents saved */
	EA_VMA_VDSO,           /* the kernel's [vdso]: moved into place */
	EA_VMA_VVAR,           /* the kernel's [vvar]: moved into place */
	EA_VMA_VVAR_VCLOCK,    /* the kernel's [vvar_vclock]: moved into place */
	EA_VMA_SYSV_SHM,       /* System V shared memory: path_off is its struct ea_sysv in strings */
};

/*
 * A System V shared memory segment, made again with its shmid (the
 * agent runs in an IPC namespace of its own and sets shm_next_id) and
 * attached where the program had it. Several mappings may name one
 * segment: made once (made is the agent's).
 */
struct ea_sysv {
	int32_t shmid;
	int32_t key;
	uint32_t mode;      /* perms; SHM_DEST (01000): removed once attached */
	uint32_t made;
	uint64_t size;
};

/* ea_vma.flags */
#define EA_VMAF_GROWSDOWN 0x1u
#define EA_VMAF_DONTFORK 0x2u
#define EA_VMAF_WIPEONFORK 0x4u
#define EA_VMAF_DONTDUMP 0x8u
#define EA_VMAF_HUGEPAGE 0x10u
#define EA_VMAF_NOHUGEPAGE 0x20u
#define EA_VMAF_WRITE_FILE 0x40u /* open the file read-write (shared, may be writable) */
#define EA_VMAF_HAS_PAGES 0x80u  /* runs of saved pages fall in this mapping */
#define EA_VMAF_LAZY 0x100u      /* its pages come later, from the monitor (EA_F_LAZY) */

struct ea_vma {
	uint64_t start, end;
	uint64_t pgoff;     /* bytes */
	uint32_t kind;      /* EA_VMA_* */
	uint32_t prot;      /* PROT_* */
	uint32_t flags;     /* EA_VMAF_* */
	uint32_t path_off;  /* file mappings: offset of the path in strings, else 0 */
	uint32_t name_off;  /* anonymous mappings named with PR_SET_VMA: offset, or 0 */
	uint32_t pad;
};

/* A run of saved pages: len bytes for addr, read from source fd at off. */
struct ea_run {
	uint64_t addr;
	uint64_t len;
	uint64_t off;
	uint32_t src;       /* index into src_fds */
	uint32_t pad;
};

/* Kinds of fd. */
enum {
	EA_FD_FILE = 1,     /* reopen path with flags, seek to pos */
	EA_FD_STDIO,        /* dup of the resuming esky's fd stdio_src (0, 1, 2) */
	EA_FD_DUP,          /* dup of the image fd dup_of (shares the open file) */
	EA_FD_PASSED,       /* an object the monitor made: dup of transport fd dup_of,
			     * then F_SETFL open_flags' status flags, and seek to pos */
};

/* A registration the agent adds to an epoll once every fd is placed. */
struct ea_epoll_reg {
	int32_t epfd;       /* the program's fd numbers */
	int32_t tfd;
	uint32_t events;
	uint32_t pad;
	uint64_t data;
};
#define EA_MAX_OBJ_FDS 512  /* fds of objects passed by the monitor */

struct ea_fd {
	int32_t fd;
	uint32_t kind;
	uint32_t open_flags;  /* O_* for open(2), O_CREAT/O_TRUNC/O_EXCL removed */
	uint32_t cloexec;
	uint64_t pos;
	uint32_t path_off;
	int32_t stdio_src;
	int32_t dup_of;
	uint32_t pad;
};

struct ea_sigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

/* A pending signal: the kernel's 128-byte siginfo, queued to self. */
struct ea_siginfo {
	uint32_t shared;    /* 1: process-wide queue, 0: a thread's */
	uint32_t thread;    /* 0: the main thread's queue, i+1: ea_thread i's */
	uint8_t info[128];
};

/*
 * A thread other than the main one: made with clone3 (with its tid when
 * set_tid is set), it puts back what is its own and stops on int3 for the
 * monitor, which sets its registers and signal mask.
 */
struct ea_thread {
	int32_t tid;
	uint32_t altstack_flags;
	uint64_t altstack_sp, altstack_size;
	uint64_t rseq_ptr;
	uint32_t rseq_len;
	uint32_t rseq_sig;
	uint64_t robust_list, robust_len;
	uint64_t clear_child_tid;
	char comm[16];
};

/* ea_args.flags */
#define EA_F_SET_TID 0x1u    /* threads get their tids (clone3 set_tid: in a PID namespace) */
#define EA_F_DROP_CAPS 0x2u  /* drop every capability before the program runs */
#define EA_F_LAZY 0x4u       /* EA_VMAF_LAZY mappings: registered, not filled (see lazy_fd) */

struct ea_itimer {
	uint64_t interval_sec, interval_usec, value_sec, value_usec;
};

/* prctl(PR_SET_MM, PR_SET_MM_MAP) argument (struct prctl_mm_map). */
struct ea_mm_map {
	uint64_t start_code, end_code, start_data, end_data;
	uint64_t start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv;       /* address of auxv in this block (set by the agent) */
	uint32_t auxv_size;
	uint32_t exe_fd;
};

#define EA_AUXV_MAX 64      /* u64 words */
#define EA_MAX_SRC_FDS 512
#define EA_SRC_ZERO 0xffffffffu /* ea_run.src: fill with zeros */

struct ea_args {
	uint32_t magic;
	uint32_t version;
	uint32_t size;          /* of the whole block */
	uint32_t report_fd;     /* agent -> monitor: struct ea_report on failure */

	uint32_t src_fd_off, src_fd_n; /* page data sources: int32_t fd numbers */
	int32_t stdio_fds[3];   /* the resuming esky's stdin/out/err, parked here */
	uint32_t argv_off, argv_len; /* new command line (NUL-separated) in strings, or 0 */
	uint32_t exe_off;       /* the executable's path in strings (used by the monitor) */

	uint32_t vma_off, vma_n;
	uint32_t run_off, run_n;
	uint32_t fd_off, fd_n;
	uint32_t sig_off, sig_n; /* pending ea_siginfo */
	uint32_t strings_off, strings_len;

	struct ea_sigaction sigactions[64]; /* index sig-1 */
	uint64_t sigaction_valid;          /* bit sig-1: restore this one */
	struct ea_itimer itimers[3];       /* ITIMER_REAL, _VIRTUAL, _PROF */
	uint64_t altstack_sp, altstack_size;
	uint32_t altstack_flags;
	uint32_t umask;
	uint32_t personality;
	uint32_t cwd_off;
	uint32_t comm_off;
	uint32_t rseq_len;
	uint64_t rseq_ptr;
	uint32_t rseq_sig;
	uint32_t pad0;
	uint64_t robust_list, robust_len;
	uint64_t clear_child_tid;

	struct ea_mm_map mm;
	uint64_t auxv[EA_AUXV_MAX];

	uint32_t rlimit_n;
	int32_t nice;
	uint64_t rlimits[16][2];           /* soft, hard per RLIMIT_* */
	uint32_t no_new_privs;
	uint32_t pdeath_sig;               /* prctl(PR_SET_PDEATHSIG), 0: none */
	uint64_t timer_slack;

	uint32_t obj_fd_off, obj_fd_n;     /* objects' fds the monitor passed: int32_t numbers */
	uint32_t epoll_off, epoll_n;       /* struct ea_epoll_reg[] */
	uint32_t thread_off, thread_n;     /* struct ea_thread[] */
	uint32_t flags;                    /* EA_F_* */
	/*
	 * EA_F_LAZY: the fd number (free in the image) where the agent puts
	 * the userfaultfd of the EA_VMAF_LAZY mappings, then stops on a
	 * breakpoint with lazy_state 1; the monitor takes the fd, starts
	 * serving their pages and sets lazy_state 2 before letting it go on.
	 * lazy_state stays 0 where no such userfaultfd could be made (the
	 * agent filled them as any other).
	 */
	int32_t lazy_fd;
	uint32_t lazy_state;
	uint32_t pad3;
};

/* What the agent writes to report_fd when it gives up. */
enum {
	EA_STEP_ARGS = 1, EA_STEP_CLEAR, EA_STEP_VMA, EA_STEP_PAGES, EA_STEP_VDSO,
	EA_STEP_FDS, EA_STEP_CWD, EA_STEP_SIGNALS, EA_STEP_TIMERS, EA_STEP_RSEQ,
	EA_STEP_MM, EA_STEP_MISC, EA_STEP_THREADS,
};

struct ea_report {
	uint32_t magic;      /* ESKY_AGENT_MAGIC */
	uint32_t step;       /* EA_STEP_* */
	int64_t err;         /* -errno */
	uint64_t addr;       /* the mapping, fd number, signal... it was about */
	uint32_t index;      /* index into the array concerned */
	uint32_t pad;
};

_Static_assert(sizeof(struct ea_vma) == 48, "ea_vma layout");
_Static_assert(sizeof(struct ea_run) == 32, "ea_run layout");
_Static_assert(sizeof(struct ea_fd) == 40, "ea_fd layout");
_Static_assert(sizeof(struct ea_sigaction) == 32, "ea_sigaction layout");
_Static_assert(sizeof(struct ea_siginfo) == 136, "ea_siginfo layout");
_Static_assert(sizeof(struct ea_itimer) == 32, "ea_itimer layout");
_Static_assert(sizeof(struct ea_mm_map) == 104, "ea_mm_map layout");
_Static_assert(sizeof(struct ea_report) == 32, "ea_report layout");
_Static_assert(sizeof(struct ea_epoll_reg) == 24, "ea_epoll_reg layout");
_Static_assert(sizeof(struct ea_thread) == 80, "ea_thread layout");
_Static_assert(sizeof(struct ea_sysv) == 24, "ea_sysv layout");

#endif
