/*
 * Rewind in place: bring a live, stopped program back to a snapshot by
 * writing only what differs, instead of building a new process (a thaw
 * of a GiB takes 0.2-0.7 s; most rewinds inside one session differ in a
 * few MiB).
 *
 * The program must still have the snapshot's shape: one thread, no child,
 * no pending signal, the same mappings (addresses and protections), the
 * same open files (positions may differ: they are set back), the same
 * working directory and rseq registration, no open object other than a
 * file (pipes, sockets, eventfds, ... are made anew by a thaw only).
 * Memory: the pages that may differ are those written since the snapshot
 * the program descends from (dirty-page tracking) plus those whose
 * checksums differ between that snapshot and the target one; they get
 * the target's contents, read from its images (checksums verified). Then
 * signal actions, alternate stack, interval timers, limits, brk and the
 * rest of the process's settable state are set from the image in one
 * batch of injected syscalls, and last the registers, vector state and
 * signal mask.
 */
#ifndef ESKY_REWIND_H
#define ESKY_REWIND_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "tracee.h"

struct esky_rewind_in {
	struct esky_tracee *t;            /* stopped, not injecting */
	struct esky_image *const *chain;  /* the target snapshot and its ancestors */
	size_t n;
	/* checksums of the pages of the snapshot the program descends from, and of the target */
	const struct esky_page_hash *from;
	size_t from_n;
	const struct esky_page_hash *to;
	size_t to_n;
	/*
	 * How many pages from vaddr on (at most max) the program has not
	 * written since `from` was taken (esky_dirty_unchanged after a
	 * collect). Pages it cannot vouch for are rewritten.
	 */
	size_t (*unchanged)(void *ctx, uint64_t vaddr, size_t max);
	void *unchanged_ctx;
	uint64_t max_pages;               /* more differing pages than this: a thaw instead */
};

struct esky_rewind_stats {
	uint64_t pages_written;
	uint64_t pages_compared;          /* pages of private memory looked at */
};

/*
 * 0: the program stands at the snapshot. -EAGAIN: it does not have the
 * snapshot's shape (why in the debug log); nothing was changed. Other
 * -errno (with esky_error()): it failed on the way and the program may be
 * half rewound: the caller must replace it (thaw) in either case.
 */
int esky_rewind_in_place(const struct esky_rewind_in *in, struct esky_rewind_stats *st);

#endif
