/*
 * Freezing a traced process into a checkpoint image.
 *
 * Two phases, so that the program can run on while its memory is written:
 * esky_dump_prepare() runs while the tracee is stopped and takes all the
 * state but the bulk of memory; esky_dump_write() writes the memory and
 * commits the image. With fork_copy the memory comes from a copy-on-write
 * fork of the tracee made in prepare (the original may be resumed as soon
 * as prepare returns); without it the tracee must stay stopped until write
 * returns.
 *
 * What esky cannot save (threads, child processes, sockets, pipes other
 * than stdio, deleted files, ...) makes prepare fail with a one-line
 * esky_error() naming what was found; the tracee is left unharmed.
 */
#ifndef ESKY_DUMP_H
#define ESKY_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tracee.h"

/* A byte to put back into the image in place of what memory holds (breakpoints). */
struct esky_maps_cache;

struct esky_dump_patch {
	uint64_t addr;
	uint8_t byte;
};

struct esky_dump_opts {
	/*
	 * Copy memory from a fork of the tracee and let the tracee run on.
	 * Only when esky is the tracee's parent (the fork is made its sibling).
	 */
	bool fork_copy;
	const struct esky_dump_patch *patches;
	size_t patch_n;
	uint64_t run_ns;        /* how long the program has run, for the record */
	/*
	 * Incremental image: pages equal to the parent's are stored as
	 * references. parent_id is the parent image's id, parent_hint its
	 * file name relative to the new image's directory; parent_hash
	 * returns the hash of the parent's page at vaddr (true) or false if
	 * the parent has no stored page there.
	 */
	const uint8_t *parent_id;
	const char *parent_hint;
	bool (*parent_hash)(void *ctx, uint64_t vaddr, uint64_t *hash);
	void *parent_ctx;
	/*
	 * Dirty-page tracking (dirty.h): how many pages from vaddr on (at
	 * most max) are known unchanged since the parent was taken; they are
	 * referred to without being read. NULL: every page is read and
	 * compared.
	 */
	size_t (*page_unchanged)(void *ctx, uint64_t vaddr, size_t max);
	void *unchanged_ctx;
	/*
	 * The smaps of the last snapshot of this program, kept between
	 * snapshots (proc.h): read again only when maps changed. NULL:
	 * smaps is read each time.
	 */
	struct esky_maps_cache *maps_cache;
	/*
	 * A writer opened for path ahead of time, while the program ran (an
	 * esky-shell timer snapshot: creating the temporary file and cleaning
	 * the directory cost 0.3-0.7 ms of the stop), or NULL. Taken over by
	 * prepare, on failure too.
	 */
	struct esky_image_writer *writer;
	/*
	 * Every other thread is stopped by prepare and stays stopped until
	 * esky_dump_release_threads (or free), unless given here, stopped
	 * and traced by the caller (esky-shell's all-stop): then they are
	 * used as they are, not seized, and left stopped.
	 */
	struct esky_tracee *const *threads;
	size_t thread_n;
	pid_t current_thread;   /* the thread the caller stands in (its tid as we see it), or 0 */
	/* Part of a process tree: its children are the tree's; fds shared with it (src/tree.c). */
	struct esky_dump_tree *tree;
};

/*
 * A process of a tree being checkpointed (src/tree.c): what the dump of
 * one process needs to know of the others. Processes are prepared in
 * table order; each prepare adds its objects to the table for the next.
 */
struct esky_tree_obj {
	size_t proc;            /* the process whose image holds it */
	uint32_t index;         /* in its FDOBJS */
	dev_t dev;
	ino_t ino;
};

/* Shared anonymous memory met in a process of the tree (its pages are in that image). */
struct esky_tree_shm {
	size_t proc;
	uint32_t vma;           /* its index in that process's VMAS */
	dev_t dev;
	uint64_t ino;
};

struct esky_dump_tree {
	size_t self;            /* this process's index in the tree's table (and in pids) */
	const pid_t *pids;      /* every process of the table (as we see them; 0: a zombie) */
	size_t n;
	/* pipe inodes with an end in some process of the tree, and which ends */
	const ino_t *pipe_ino;
	const uint8_t *pipe_ends; /* bit 0 read end, bit 1 write end */
	size_t pipe_n;
	const ino_t *sock_ino;  /* sockets the processes of the tree hold */
	size_t sock_n;
	struct esky_tree_obj *objs; /* objects of earlier processes (grows) */
	size_t obj_n;
	struct esky_tree_shm *shms; /* shared anonymous memory of earlier processes (grows) */
	size_t shm_n;
};

struct esky_dump_stats {
	uint64_t prepare_ns;    /* time spent in prepare (the tracee is stopped) */
	uint64_t write_ns;      /* time spent in write */
	uint64_t pages_stored;  /* pages whose data went into the image */
	uint64_t pages_parent;  /* pages referring to the parent image */
	uint64_t file_size;
};

struct esky_dump;

/*
 * Take the state of the stopped tracee t and start the image at path.
 * On success the tracee is in an interrupt stop; with fork_copy it may be
 * resumed at once. 0 or -errno with esky_error().
 */
int esky_dump_prepare(struct esky_tracee *t, const char *path, const struct esky_dump_opts *o,
		      struct esky_dump **out);

/* Write the memory and commit the image. 0 or -errno with esky_error(). */
int esky_dump_write(struct esky_dump *d, struct esky_dump_stats *stats);

/*
 * esky_dump_write in two steps. esky_dump_read reads every page (into
 * the writer's buffers, which a thread writes out); once it returns the
 * tracee may run even without a fork copy. esky_dump_commit writes the
 * rest of the image, syncs it and puts it in place (~0.5 ms of fsync and
 * rename that an esky-shell timer snapshot takes out of the program's
 * stop). stats accumulate over both. 0 or -errno with esky_error().
 */
int esky_dump_read(struct esky_dump *d, struct esky_dump_stats *stats);
int esky_dump_commit(struct esky_dump *d, struct esky_dump_stats *stats);

/* Free the dump (removes the unfinished file, kills the fork copy). */
void esky_dump_free(struct esky_dump *d);

/*
 * Let the other threads of the program run on (they were stopped by
 * prepare): when the copy exists, or once the image is written.
 */
void esky_dump_release_threads(struct esky_dump *d);

/* True if prepare made a frozen copy: the tracee may run while write works. */
bool esky_dump_has_copy(const struct esky_dump *d);

/* The id of the image being written. */
const uint8_t *esky_dump_id(const struct esky_dump *d);

#endif
