/*
 * Dirty-page tracking of a program (esky-shell's incremental snapshots):
 * which pages it wrote since the last snapshot, so that a snapshot reads
 * and stores those and refers to its parent for the rest, and the program
 * stops for what changed, not for all of its memory.
 *
 * userfaultfd write-protect in async mode (the kernel resolves the fault
 * itself: nothing is delivered to the program or to esky) plus the
 * PAGEMAP_SCAN ioctl, which reports the pages written since the last scan
 * and write-protects them again. Writes the kernel does for the program
 * (read() into a buffer) count. Unmapping, moving (mremap) or discarding
 * (MADV_DONTNEED) memory arrive as events on the userfaultfd, which the
 * program waits on until esky reads them: such ranges are not trusted
 * until the next snapshot re-arms them.
 *
 * No ptrace here: the caller makes the program create the userfaultfd
 * (an injected syscall) and hands esky's duplicate of it over.
 */
#ifndef ESKY_DIRTY_H
#define ESKY_DIRTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct esky_dirty;

/*
 * Track pid's memory through uffd (esky's fd of a userfaultfd the program
 * made; taken over, closed on error too): every private mapping is
 * registered and write-protected now. 0; -ENOTSUP where the kernel lacks
 * the features; -EBUSY if the program uses userfaultfd itself; other
 * -errno. No esky_error() message: the caller falls back to content
 * hashes and says so once.
 */
int esky_dirty_start(pid_t pid, int uffd, struct esky_dirty **out);

/* The fd to poll while the program runs: readable when events wait. */
int esky_dirty_fd(const struct esky_dirty *d);

/* Read the events that wait (the program is blocked until they are read). 0 or -errno. */
int esky_dirty_read_events(struct esky_dirty *d);

/*
 * With the program stopped: find what it wrote since esky_dirty_start or
 * the last collect, and arm the tracking again (mappings that appeared
 * are registered). Until the next collect, esky_dirty_unchanged answers
 * for that interval. 0 or -errno (then the tracking is lost: free it).
 */
int esky_dirty_collect(struct esky_dirty *d);

/*
 * After a collect: how many pages from vaddr on (at most max) were tracked
 * through the whole interval and not written (their contents are those of
 * the last snapshot); 0 if the page at vaddr was written or not tracked.
 * ctx is the struct esky_dirty (a dump callback).
 */
size_t esky_dirty_unchanged(void *ctx, uint64_t vaddr, size_t max);

/* Pages found written by the last collect, and pages it could vouch for. */
void esky_dirty_counts(const struct esky_dirty *d, uint64_t *written, uint64_t *tracked);

void esky_dirty_free(struct esky_dirty *d);

#endif
