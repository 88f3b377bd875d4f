/*
 * Readers of /proc/PID: memory maps, stat, status, fd info, auxv, children.
 *
 * Each parser takes a buffer and fills the caller's structure, so that it
 * can be tested on canned text; the esky_proc_read_* wrappers read the file
 * of a live process first. No ptrace here.
 */
#ifndef ESKY_PROC_H
#define ESKY_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* VmFlags of /proc/PID/smaps that esky cares about (in-memory bits). */
enum {
	ESKY_VMF_GROWSDOWN = 1u << 0,  /* gd */
	ESKY_VMF_SHARED = 1u << 1,     /* sh */
	ESKY_VMF_DONTFORK = 1u << 2,   /* dc: MADV_DONTFORK */
	ESKY_VMF_WIPEONFORK = 1u << 3, /* wf: MADV_WIPEONFORK */
	ESKY_VMF_DONTDUMP = 1u << 4,   /* dd: MADV_DONTDUMP */
	ESKY_VMF_HUGEPAGE = 1u << 5,   /* hg: MADV_HUGEPAGE */
	ESKY_VMF_NOHUGEPAGE = 1u << 6, /* nh: MADV_NOHUGEPAGE */
	ESKY_VMF_MERGEABLE = 1u << 7,  /* mg: MADV_MERGEABLE (KSM) */
	ESKY_VMF_LOCKED = 1u << 8,     /* lo: mlock */
	ESKY_VMF_IO = 1u << 9,         /* io or pf: device memory */
	ESKY_VMF_UFFD = 1u << 10,      /* um/uw/ui: registered with userfaultfd */
	ESKY_VMF_SHADOW_STACK = 1u << 11, /* ss */
	ESKY_VMF_SEALED = 1u << 12,    /* sl: mseal */
	ESKY_VMF_DONTEXPAND = 1u << 13, /* de */
	ESKY_VMF_MAYREAD = 1u << 14,   /* mr: may be made readable (VM_MAYREAD) */
	ESKY_VMF_MAYWRITE = 1u << 15,  /* mw: may be made writable (VM_MAYWRITE) */
	ESKY_VMF_MAYEXEC = 1u << 16,   /* me: may be made executable (VM_MAYEXEC) */
	ESKY_VMF_HAS_VMFLAGS = 1u << 31, /* the text had a VmFlags line */
};

/* One line of /proc/PID/maps (and the VmFlags of smaps if present). */
struct esky_vma {
	uint64_t start, end;
	uint64_t pgoff;       /* offset in the file, in bytes */
	int prot;             /* PROT_READ | PROT_WRITE | PROT_EXEC */
	bool shared;          /* 's' rather than 'p' */
	unsigned dev_major, dev_minor;
	uint64_t ino;
	char *path;           /* NULL for anonymous memory; "[heap]", "[stack]", ... kept */
	bool deleted;         /* path ended in " (deleted)" (removed from path) */
	uint32_t vmflags;     /* ESKY_VMF_* */
};

/*
 * Parse maps or smaps text. *vmas is malloc'd (free with esky_vmas_free).
 * 0, -EINVAL on a malformed line, -ENOMEM.
 */
int esky_proc_parse_maps(const char *text, struct esky_vma **vmas, size_t *n);
int esky_proc_read_maps(pid_t pid, bool smaps, struct esky_vma **vmas, size_t *n);
void esky_vmas_free(struct esky_vma *vmas, size_t n);

/*
 * smaps costs a walk of the page tables (its Rss lines: ~18 ms per GiB
 * mapped), maps does not. A stopped program whose maps text is the one
 * seen last time has the same mappings: their VmFlags are taken from the
 * smaps read then. What it misses is a madvise() or mlock() over whole
 * mappings, which changes VmFlags without splitting one (doc/design.md).
 * Zero-initialise; esky_maps_cache_clear frees what it holds.
 */
struct esky_maps_cache {
	pid_t pid;
	char *maps;             /* maps text when smaps was last read; NULL: empty */
	struct esky_vma *vmas;  /* parsed from that smaps */
	size_t n;
	uint64_t hits, misses;
};

/* As esky_proc_read_maps(pid, true, ...), through the cache c. */
int esky_proc_read_smaps_cached(pid_t pid, struct esky_maps_cache *c, struct esky_vma **vmas,
				size_t *n);
void esky_maps_cache_clear(struct esky_maps_cache *c);

/* The fields of /proc/PID/stat that esky uses. */
struct esky_proc_stat {
	char comm[64];
	char state;
	int ppid, pgrp, session, tty_nr;
	long num_threads;
	int nice;
	uint64_t start_time; /* clock ticks after boot */
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk;
	uint64_t arg_start, arg_end, env_start, env_end;
	int exit_signal;
	int exit_code;       /* a zombie's wait status (field 52) */
};

int esky_proc_parse_stat(const char *text, struct esky_proc_stat *st);
int esky_proc_read_stat(pid_t pid, struct esky_proc_stat *st);

/* The fields of /proc/PID/status that esky uses. */
struct esky_proc_status {
	unsigned umask;
	int threads;
	int tracer_pid;
	int seccomp;           /* 0 none, 1 strict, 2 filter */
	int no_new_privs;
	uint64_t sig_pending;  /* SigPnd: per thread */
	uint64_t shd_pending;  /* ShdPnd: shared */
	uint64_t sig_blocked;
	uint64_t sig_ignored;
	uint64_t sig_caught;
	unsigned uid[4], gid[4];
	int nspid;             /* the id in its innermost PID namespace (NSpid's last), as it sees it */
};

int esky_proc_parse_status(const char *text, struct esky_proc_status *st);
int esky_proc_read_status(pid_t pid, struct esky_proc_status *st);

/* /proc/PID/fdinfo/FD: position and open flags (octal in the file). */
struct esky_fdinfo {
	uint64_t pos;
	unsigned flags;
	int mnt_id;
};

int esky_proc_parse_fdinfo(const char *text, struct esky_fdinfo *fi);
int esky_proc_read_fdinfo(pid_t pid, int fd, struct esky_fdinfo *fi);

/* The open fd numbers of a process, sorted. *fds is malloc'd. */
int esky_proc_list_fds(pid_t pid, int **fds, size_t *n);

/* readlink of /proc/PID/<what> (e.g. "cwd", "exe", "fd/3"), malloc'd. */
int esky_proc_readlink(pid_t pid, const char *what, char **out);

/* Child pids (from /proc/PID/task/TID/children of every thread), malloc'd. */
int esky_proc_children(pid_t pid, int **pids, size_t *n);

/* The thread ids of a process (/proc/PID/task), sorted. *tids malloc'd. */
int esky_proc_tasks(pid_t pid, int **tids, size_t *n);

/* Number of POSIX timers (lines "ID:" of /proc/PID/timers). */
int esky_proc_count_timers(pid_t pid, int *n);

#endif
