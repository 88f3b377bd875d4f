/*
 * Lazy resume: the program runs before its memory is in.
 *
 * The restore agent registers the program's large anonymous mappings with
 * a userfaultfd (missing pages) instead of filling them, and hands the
 * userfaultfd to the monitor. A thread of the monitor then serves them:
 * a page the program touches is brought in at once (with its neighbours),
 * and the rest in the background, in address order, until every saved
 * page is in; then the userfaultfd is closed and the program runs as
 * after an ordinary resume. Every page is checked against its checksum
 * before it is copied in: the program never sees a damaged page (it is
 * killed instead, and esky_lazy_wait says why).
 *
 * What the program does meanwhile is followed through the userfaultfd's
 * events: a fork gives the child's memory its own userfaultfd (served
 * the same way), mremap moves pages still to come, madvise(DONTNEED)
 * and munmap drop them (they read as zeros, as they would have).
 * Pages of a lazy mapping that the image holds none of read as zeros.
 */
#ifndef ESKY_LAZY_H
#define ESKY_LAZY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct esky_lazy;

/* A server, to be given its sources and pages before it starts. */
int esky_lazy_new(struct esky_lazy **out);

/*
 * A source of page data: fd (dup'd) and its path for messages. Returns
 * its index (>= 0) or -errno.
 */
int esky_lazy_source(struct esky_lazy *l, int fd, const char *path);

/*
 * Pages [addr, addr + len) come from source src at file offset off;
 * hashes holds one esky_hash_page() per page (copied).
 */
int esky_lazy_add(struct esky_lazy *l, uint64_t addr, uint64_t len, int src, uint64_t off,
		  const uint64_t *hashes);

/* Bytes of page data to come (what was added). */
uint64_t esky_lazy_bytes(const struct esky_lazy *l);

/*
 * Start serving the program pid through uffd (taken over; closed when
 * every page is in). 0 or -errno.
 */
int esky_lazy_start(struct esky_lazy *l, int uffd, pid_t pid);

/*
 * Wait until every page is in (or the program is gone). 0, or -errno with
 * one esky_error() line once (a damaged page: the program was killed).
 */
int esky_lazy_wait(struct esky_lazy *l);

/* True once every page is in (or serving has ended). */
bool esky_lazy_done(struct esky_lazy *l);
/* An fd that becomes readable then (an eventfd; -1 before start). */
int esky_lazy_done_fd(const struct esky_lazy *l);

/* Stop serving (pages still to come then read as zeros: only for a program being killed) and free. */
void esky_lazy_free(struct esky_lazy *l);

#endif
