/*
 * The on-disk format of esky checkpoint images, version 3 (reads 1 and 2).
 * Specified in doc/image-format.md; this header is its C form.
 *
 * Little-endian (x86-64 only). Every struct here has a fixed size and
 * layout (_Static_assert below); on-disk constants never change meaning.
 *
 *   offset 0      header: magic, version, sizes, ids, section table,
 *                 checksum of the header's first 4088 bytes in its last 8
 *   offset 4096   PAGES: page data, 4096-aligned, one page after another
 *   then          metadata sections, each 8-aligned, zero padding between
 *   file_size     end: the last section ends exactly here
 *
 * Each section has an esky64 checksum (hash.h) of its bytes, except PAGES,
 * whose pages each have theirs in PAGEHASH. The reader checks every offset
 * and length against the file before use and that the padding is zero,
 * so every byte of an image is covered.
 */
#ifndef ESKY_IMAGE_FORMAT_H
#define ESKY_IMAGE_FORMAT_H

#include <stdint.h>

/* 0x89 first, as PNG does, so that a text-mode transfer is detected. */
#define ESKY_IMG_MAGIC "\x89" "ESKYIMG"
/*
 * Version 2 added the FDOBJS and BLOBS sections and fd kind OBJECT;
 * version 3 the THREADS and THREAD_XSTATE sections and the thread of a
 * pending signal. Older images (which have none) are read as they always
 * were.
 */
#define ESKY_IMG_VERSION 3u
#define ESKY_IMG_VERSION_MIN 1u
#define ESKY_IMG_HEADER_SIZE 4096u
#define ESKY_IMG_PAGE_SIZE 4096u
#define ESKY_IMG_MAX_SECTIONS 32u
#define ESKY_IMG_CHECKSUM_SEED 0x65736b79ULL /* "esky" */

/* Section types (on disk). */
#define ESKY_SEC_CORE 1u      /* struct esky_img_core */
#define ESKY_SEC_XSTATE 2u    /* NT_X86_XSTATE bytes as ptrace gives them */
#define ESKY_SEC_STRINGS 3u   /* NUL-terminated strings; offset 0 is "" */
#define ESKY_SEC_VMAS 4u      /* struct esky_img_vma[], sorted by start */
#define ESKY_SEC_FILES 5u     /* struct esky_img_file[] */
#define ESKY_SEC_FDS 6u       /* struct esky_img_fd[], sorted by fd */
#define ESKY_SEC_SIGINFO 7u   /* struct esky_img_siginfo[] (pending signals) */
#define ESKY_SEC_PAGEMAP 8u   /* struct esky_img_pagerun[], sorted by vaddr */
#define ESKY_SEC_PAGEHASH 9u  /* uint64_t[]: esky_hash_page of each stored page */
#define ESKY_SEC_PAGES 10u    /* page data */
#define ESKY_SEC_AUXV 11u     /* the auxiliary vector, uint64_t pairs */
#define ESKY_SEC_META 12u     /* "key=value\n" text for people and `esky info` */
#define ESKY_SEC_FDOBJS 13u   /* struct esky_img_fdobj[]: open objects other than files */
#define ESKY_SEC_BLOBS 14u    /* bytes the objects hold (pipe data, memfd contents, ...) */
#define ESKY_SEC_THREADS 15u  /* struct esky_img_thread[]: the threads other than the main one */
#define ESKY_SEC_THREAD_XSTATE 16u /* each thread's NT_X86_XSTATE bytes, one after another */
#define ESKY_SEC_LAST ESKY_SEC_THREAD_XSTATE

struct esky_img_section {
	uint32_t type;
	uint32_t flags;     /* none defined: 0 */
	uint64_t offset;
	uint64_t size;
	uint64_t checksum;  /* esky_hash64(bytes, size, ESKY_IMG_CHECKSUM_SEED); 0 for PAGES */
};

/* Header flags. */
#define ESKY_IMGF_INCREMENTAL 0x1u /* refers to its parent's pages */

struct esky_img_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;   /* ESKY_IMG_HEADER_SIZE */
	uint64_t file_size;
	uint64_t created_ns;    /* wall clock, ns since the epoch */
	uint8_t id[16];         /* random identity of this image */
	uint8_t parent_id[16];  /* the image whose pages PARENT runs refer to; zero if none */
	uint32_t flags;         /* ESKY_IMGF_* */
	uint32_t section_n;
	uint32_t parent_hint;   /* STRINGS offset: parent's file name, relative to this one's directory */
	uint32_t reserved0;
	uint64_t reserved[4];
	struct esky_img_section sections[ESKY_IMG_MAX_SECTIONS];
	uint8_t pad[ESKY_IMG_HEADER_SIZE - 112 - 32 * ESKY_IMG_MAX_SECTIONS - 8];
	uint64_t checksum;      /* esky_hash64 of the 4088 bytes before it */
};

/* Architecture of the image (ELF e_machine). */
#define ESKY_IMG_ARCH_X86_64 62u
#define ESKY_IMG_REGS_WORDS 27u  /* x86-64 struct user_regs_struct */

struct esky_img_sigaction {
	uint64_t handler, flags, restorer, mask;
};

struct esky_img_itimer {
	uint64_t interval_sec, interval_usec, value_sec, value_usec;
};

/*
 * The process and its main thread (the thread whose id is the pid); the
 * other threads are in THREADS. Ids are those the program saw (in its own
 * PID namespace).
 */
struct esky_img_core {
	uint32_t arch;            /* ESKY_IMG_ARCH_* */
	uint32_t pid;             /* when checkpointed */
	uint32_t uid, gid;
	char comm[16];
	uint64_t regs[ESKY_IMG_REGS_WORDS]; /* restart fix-up already applied */
	uint64_t xfeatures;       /* XSTATE_BV features the xstate uses (XCR0 of the machine) */
	uint64_t sig_blocked;
	uint64_t sigaction_valid; /* bit sig-1 */
	struct esky_img_sigaction sigactions[64];
	struct esky_img_itimer itimers[3];
	uint64_t altstack_sp, altstack_size;
	uint32_t altstack_flags;
	uint32_t umask;
	uint32_t personality;
	uint32_t cwd;             /* STRINGS offset */
	uint32_t exe_file;        /* FILES index of the executable */
	uint32_t rseq_len;
	uint64_t rseq_ptr;
	uint32_t rseq_sig;
	uint32_t rseq_flags;
	uint64_t robust_list, robust_len;
	uint64_t clear_child_tid;
	uint64_t start_code, end_code, start_data, end_data;
	uint64_t start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t run_ns;          /* how long the program had run (esky's clock) */
	uint32_t cmdline;         /* STRINGS offset: argv joined with spaces */
	int32_t nice;
	uint32_t no_new_privs;
	uint32_t rlimit_n;        /* entries of rlimits in use (RLIMIT_*) */
	uint64_t timer_slack;     /* ns */
	uint64_t rlimits[16][2];  /* soft, hard per RLIMIT_* (RLIM_INFINITY is ~0) */
	uint32_t pdeath_sig;      /* prctl(PR_SET_PDEATHSIG) of the main thread; 0: none */
	uint32_t reserved32;
	uint64_t reserved[5];
};

/* Mapping kinds (on disk). */
#define ESKY_IMG_VMA_ANON 1u
#define ESKY_IMG_VMA_FILE_PRIVATE 2u
#define ESKY_IMG_VMA_FILE_SHARED 3u
#define ESKY_IMG_VMA_SHARED_ANON 4u
#define ESKY_IMG_VMA_VDSO 5u
#define ESKY_IMG_VMA_VVAR 6u
#define ESKY_IMG_VMA_VVAR_VCLOCK 7u
#define ESKY_IMG_VMA_SYSV_SHM 8u  /* System V shared memory: file is its FDOBJS index */

/* Mapping flags (on disk). */
#define ESKY_IMG_VMAF_GROWSDOWN 0x1u
#define ESKY_IMG_VMAF_DONTFORK 0x2u
#define ESKY_IMG_VMAF_WIPEONFORK 0x4u
#define ESKY_IMG_VMAF_DONTDUMP 0x8u
#define ESKY_IMG_VMAF_HUGEPAGE 0x10u
#define ESKY_IMG_VMAF_NOHUGEPAGE 0x20u
#define ESKY_IMG_VMAF_HEAP 0x40u
#define ESKY_IMG_VMAF_STACK 0x80u
/*
 * VM_MAYWRITE (smaps "mw"): mprotect may make the mapping writable. A
 * MAP_SHARED mapping of a file has it only when the file was open for
 * writing; resume then opens the file read-write even when the mapping is
 * read-only now. Images older than this bit lack it: prot decides then.
 */
#define ESKY_IMG_VMAF_MAYWRITE 0x100u
/*
 * SHARED_ANON in a process tree: the same memory as mapping `reserved`
 * (its index in VMAS) of the earlier process `file` (the tree's table
 * index), whose image holds the pages. pgoff is the offset in that memory.
 */
#define ESKY_IMG_VMAF_PEER 0x200u

struct esky_img_vma {
	uint64_t start, end;
	uint64_t pgoff;     /* bytes into the file */
	uint32_t kind;      /* ESKY_IMG_VMA_* */
	uint32_t prot;      /* PROT_READ 1, PROT_WRITE 2, PROT_EXEC 4 */
	uint32_t flags;     /* ESKY_IMG_VMAF_* */
	int32_t file;       /* FILES index, -1 for none */
	uint32_t name;      /* STRINGS offset: the anonymous mapping's name, or 0 */
	uint32_t reserved;
};

/* File flags. */
#define ESKY_IMG_FILEF_EXE 0x1u      /* the program's executable */
#define ESKY_IMG_FILEF_WRITTEN 0x2u  /* open or mapped for writing: may change */
#define ESKY_IMG_FILEF_ELF 0x4u
#define ESKY_IMG_FILEF_BUILD_ID 0x8u /* build_id holds the GNU build-id */
#define ESKY_IMG_FILEF_HASH 0x10u    /* content_hash is esky_hash64 of the whole file */
#define ESKY_IMG_FILEF_DIR 0x20u
#define ESKY_IMG_FILEF_DEVICE 0x40u

struct esky_img_file {
	uint32_t path;      /* STRINGS offset */
	uint32_t flags;     /* ESKY_IMG_FILEF_* */
	uint64_t dev, ino;
	uint64_t size;
	int64_t mtime_ns;
	uint32_t mode;
	uint32_t build_id_len;
	uint8_t build_id[32];
	uint64_t content_hash;
	uint64_t rdev;
};

/* fd kinds (on disk). */
#define ESKY_IMG_FD_FILE 1u   /* regular file, directory or device: reopened by path */
#define ESKY_IMG_FD_STDIO 2u  /* esky's stdin/stdout/stderr: stdio_src */
#define ESKY_IMG_FD_DUP 3u    /* shares the open file of fd dup_of */
#define ESKY_IMG_FD_OBJECT 4u /* an end of FDOBJS[file] (a pipe's by the access mode in flags) */
/*
 * In a process tree (one image per process): the fd shares an open file
 * with an earlier process of the tree's table, process `file`: PEER, the
 * open file of its fd dup_of; PEER_OBJECT, an end (by the access mode in
 * flags) of its object FDOBJS[dup_of].
 */
#define ESKY_IMG_FD_PEER 5u
#define ESKY_IMG_FD_PEER_OBJECT 6u

struct esky_img_fd {
	int32_t fd;
	uint32_t kind;
	uint32_t flags;     /* open flags as /proc/PID/fdinfo shows them (O_CLOEXEC included) */
	int32_t file;       /* FILES index, or -1 */
	uint64_t pos;
	int32_t stdio_src;
	int32_t dup_of;
};

struct esky_img_siginfo {
	uint32_t shared;
	uint32_t thread;    /* per-thread queue of: 0 the main thread, i+1 THREADS[i]; 0 if shared */
	uint8_t info[128];
};

/*
 * A thread other than the main one: what is its own (the rest is the
 * process's, in CORE). Its xstate is xstate_len bytes at xstate_off in
 * THREAD_XSTATE (ptrace's NT_X86_XSTATE layout, as XSTATE).
 */
struct esky_img_thread {
	uint32_t tid;             /* in the program's PID namespace; never the pid */
	uint32_t flags;           /* none defined: 0 */
	char comm[16];            /* its name (/proc/PID/task/TID/comm) */
	uint64_t regs[ESKY_IMG_REGS_WORDS]; /* restart fix-up already applied; FS base is its TLS */
	uint64_t sig_blocked;
	uint64_t altstack_sp, altstack_size;
	uint32_t altstack_flags;
	uint32_t rseq_len;
	uint64_t rseq_ptr;
	uint32_t rseq_sig;
	uint32_t rseq_flags;
	uint64_t robust_list, robust_len;
	uint64_t clear_child_tid;
	uint64_t xstate_off, xstate_len;
	uint64_t reserved[4];
};

/*
 * Open objects other than files, made anew at resume (doc/image-format.md).
 * v[] by kind:
 *   PIPE      data: bytes in flight; v[0] capacity (F_GETPIPE_SZ)
 *   EVENTFD   v[0] counter; v[1] 1 for EFD_SEMAPHORE
 *   TIMERFD   v[0] clock id; v[1] expirations not yet read; v[2] ns to the
 *             next expiry (0: disarmed); v[3] interval in ns
 *   SIGNALFD  v[0] signal mask (bit sig-1)
 *   MEMFD     data: contents; name: the memfd's name; v[0] seals (F_GET_SEALS)
 *   DELETED   data: contents; name: the path it had; v[0] mode
 *   EPOLL     data: struct esky_img_epoll_reg[], its registrations
 *   UNIX      a Unix socket that does not listen. v[0] type (ESKY_IMG_UNIX_*);
 *             v[1] the id of its peer (an UNIX object of this image), 0: not
 *             connected, or its peer is gone (ESKY_IMG_UNIXF_PEER_GONE);
 *             v[2] ESKY_IMG_UNIXF_*; v[3] mode of its socket file (bound to a
 *             path); name: the absolute path of that file; data: struct
 *             esky_img_unix, its name, the messages queued to it
 *   UNIX_LISTEN a listening Unix socket: as UNIX, but v[1] its backlog (no
 *             peer, no queue)
 *   INOTIFY   v[0] its number of watches; data: each watch, a struct
 *             esky_img_inotify_watch then path_len bytes of its path
 *   SYSV_SHM  a System V shared memory segment the program has attached
 *             (mappings of kind SYSV_SHM name it): v[0] its shmid; v[1]
 *             its key; v[2] its mode (perms, SHM_DEST 01000 when removed
 *             and only still attached); v[3] its size in bytes. No fd has it.
 *   FIFO      a named pipe the program has open (its fds are FILE records,
 *             reopened by path): name its path; data the bytes in flight;
 *             v[0] its capacity. Resume holds it open while the program's
 *             fds are reopened, with the bytes in it. No fd has it.
 */
#define ESKY_IMG_OBJ_PIPE 1u
#define ESKY_IMG_OBJ_EVENTFD 2u
#define ESKY_IMG_OBJ_TIMERFD 3u
#define ESKY_IMG_OBJ_SIGNALFD 4u
#define ESKY_IMG_OBJ_MEMFD 5u
#define ESKY_IMG_OBJ_DELETED 6u
#define ESKY_IMG_OBJ_EPOLL 7u
#define ESKY_IMG_OBJ_UNIX 8u
#define ESKY_IMG_OBJ_UNIX_LISTEN 9u
#define ESKY_IMG_OBJ_INOTIFY 10u
#define ESKY_IMG_OBJ_SYSV_SHM 11u
#define ESKY_IMG_OBJ_FIFO 12u
#define ESKY_IMG_OBJ_LAST ESKY_IMG_OBJ_FIFO

struct esky_img_fdobj {
	uint32_t kind;      /* ESKY_IMG_OBJ_* */
	uint32_t name;      /* STRINGS offset, or 0 */
	uint64_t id;        /* the kernel's inode number when frozen, for people */
	uint64_t data_off;  /* bytes from the start of BLOBS */
	uint64_t data_len;
	uint64_t v[4];
};

/* A Unix socket's type (v[0]); not the kernel's SOCK_* (those differ by architecture). */
#define ESKY_IMG_UNIX_STREAM 1u
#define ESKY_IMG_UNIX_DGRAM 2u
#define ESKY_IMG_UNIX_SEQPACKET 3u

/* A Unix socket's state (v[2]). */
#define ESKY_IMG_UNIXF_PEER_GONE 0x1u /* connected to a peer since closed (EOF after the queue) */
#define ESKY_IMG_UNIXF_SHUT_RD 0x2u   /* shutdown state: no more receiving */
#define ESKY_IMG_UNIXF_SHUT_WR 0x4u   /* no more sending */
#define ESKY_IMG_UNIXF_PASSCRED 0x8u  /* SO_PASSCRED */
#define ESKY_IMG_UNIXF_PEER_TREE 0x10u /* its peer (v[1]) is another process's of the tree */
#define ESKY_IMG_UNIXF_ALL 0x1fu

/*
 * The start of a Unix socket's bytes in BLOBS (not aligned: read it with
 * memcpy). Then name_len bytes of its name (sun_path as bound; an abstract
 * name starts with a NUL byte; a path may be relative to the directory the
 * object's name string ends in), then msg_n messages, each a uint32_t length
 * and its bytes: the datagrams queued to it, in order, or a stream's bytes.
 */
struct esky_img_unix {
	uint32_t name_len;  /* 0: not bound; at most 108 */
	uint32_t msg_n;
	int32_t peek_off;   /* SO_PEEK_OFF, -1: off */
	uint32_t sndbuf;    /* SO_SNDBUF and SO_RCVBUF as getsockopt shows them */
	uint32_t rcvbuf;
	uint32_t reserved;
	uint64_t rcvtimeo_us; /* SO_RCVTIMEO, SO_SNDTIMEO in microseconds, 0: none */
	uint64_t sndtimeo_us;
};

/* One watch of an inotify (not aligned in BLOBS: read it with memcpy), its path after it. */
struct esky_img_inotify_watch {
	int32_t wd;         /* the watch's number, as the program knows it */
	uint32_t mask;      /* IN_* events and flags (inotify_add_watch's mask) */
	uint32_t path_len;  /* bytes of the absolute path that follow */
	uint32_t reserved;
};

/* One registration of an epoll instance (epoll_ctl ADD on resume). */
struct esky_img_epoll_reg {
	int32_t tfd;        /* the watched fd: it has a record in FDS */
	uint32_t events;
	uint64_t data;
};

/* Page run kinds. */
#define ESKY_IMG_PAGES_DATA 1u   /* stored here, at data_off in PAGES */
#define ESKY_IMG_PAGES_ZERO 2u   /* all zero (anonymous memory only) */
#define ESKY_IMG_PAGES_PARENT 3u /* the same as in the parent image */

struct esky_img_pagerun {
	uint64_t vaddr;
	uint64_t npages;
	uint64_t data_off;   /* DATA: bytes from the start of PAGES, page aligned */
	uint32_t kind;
	uint32_t hash_index; /* DATA: PAGEHASH index of the first page */
};

_Static_assert(sizeof(struct esky_img_section) == 32, "section layout");
_Static_assert(sizeof(struct esky_img_header) == ESKY_IMG_HEADER_SIZE, "header layout");
_Static_assert(__builtin_offsetof(struct esky_img_header, sections) == 112, "header layout");
_Static_assert(__builtin_offsetof(struct esky_img_header, checksum) == 4088, "header layout");
_Static_assert(sizeof(struct esky_img_core) == 2920, "core layout");
_Static_assert(sizeof(struct esky_img_vma) == 48, "vma layout");
_Static_assert(sizeof(struct esky_img_file) == 96, "file layout");
_Static_assert(sizeof(struct esky_img_fd) == 32, "fd layout");
_Static_assert(sizeof(struct esky_img_siginfo) == 136, "siginfo layout");
_Static_assert(sizeof(struct esky_img_pagerun) == 32, "pagerun layout");
_Static_assert(sizeof(struct esky_img_fdobj) == 64, "fdobj layout");
_Static_assert(sizeof(struct esky_img_epoll_reg) == 16, "epoll reg layout");
_Static_assert(sizeof(struct esky_img_unix) == 40, "unix socket layout");
_Static_assert(sizeof(struct esky_img_thread) == 360, "thread layout");
_Static_assert(sizeof(struct esky_img_inotify_watch) == 16, "inotify watch layout");

/*
 * A process tree file: one complete image per live process of a tree,
 * behind a table of its processes (doc/image-format.md, "Process tree
 * files"). Each image is an ordinary image (its header at its own start,
 * its offsets relative to it) at a 4096-aligned offset of the file:
 *
 *   offset 0          tree header: magic, version, the process table,
 *                     checksum of its first 4088 bytes in its last 8
 *   offset 4096       the image of procs[0] (the root)
 *   next multiple of  the image of the next live process in table order,
 *   4096              zero padding before it; zombies have none
 *   file_size         end: the last image ends exactly here
 */
/* 0x89 first, as ESKY_IMG_MAGIC: a text-mode transfer is detected. */
#define ESKY_TREE_MAGIC "\x89" "ESKYTRE"
#define ESKY_TREE_VERSION 1u
#define ESKY_TREE_HEADER_SIZE 4096u
#define ESKY_TREE_MAX_PROCS 80u

/* Process flags (on disk). */
#define ESKY_TREE_ZOMBIE 0x1u /* exited, not yet waited for: no image, its wait status */
#define ESKY_TREE_STOPPED 0x2u /* stopped by a job-control signal: stopped again after the resume */

struct esky_tree_proc {
	uint32_t pid, ppid, pgid, sid; /* as the program saw them; the root's ppid is 0 */
	uint32_t flags;                /* ESKY_TREE_* */
	int32_t status;                /* a zombie's wait status (as waitpid gives it); 0 if live */
	uint64_t offset, size;         /* its image in this file (offset 4096-aligned); 0, 0 for a zombie */
	uint64_t reserved;             /* 0 */
};

struct esky_tree_header {
	char magic[8];                 /* ESKY_TREE_MAGIC */
	uint32_t version;              /* ESKY_TREE_VERSION */
	uint32_t proc_n;               /* 1..ESKY_TREE_MAX_PROCS; procs[0] is the root, live */
	uint64_t file_size;
	uint64_t reserved[2];          /* 0 */
	struct esky_tree_proc procs[ESKY_TREE_MAX_PROCS]; /* entries from proc_n on are zero */
	uint8_t pad[ESKY_TREE_HEADER_SIZE - 40 - 48 * ESKY_TREE_MAX_PROCS - 8]; /* zero */
	uint64_t checksum;             /* esky_hash64 of the 4088 bytes before it, seed ESKY_IMG_CHECKSUM_SEED */
};

_Static_assert(sizeof(struct esky_tree_proc) == 48, "tree process layout");
_Static_assert(__builtin_offsetof(struct esky_tree_proc, offset) == 24, "tree process layout");
_Static_assert(sizeof(struct esky_tree_header) == ESKY_TREE_HEADER_SIZE, "tree header layout");
_Static_assert(__builtin_offsetof(struct esky_tree_header, procs) == 40, "tree header layout");
_Static_assert(__builtin_offsetof(struct esky_tree_header, checksum) == 4088, "tree header layout");

#endif
