/*
 * Thawing a checkpoint: the monitor's side of restore.
 *
 * Checks the image against this machine (files it depends on, the vDSO,
 * the agent's address range) before any process exists, then starts the
 * restore agent traced, hands it the image, and finishes the job when the
 * agent stops: registers, the agent's own mappings, the signal mask.
 */
#ifndef ESKY_RESTORE_H
#define ESKY_RESTORE_H

#include <stdbool.h>
#include <stddef.h>

#include "image.h"
#include "tracee.h"

struct esky_restore_opts {
	const char *agent_path;  /* esky-agent to run (esky_find_agent) */
	bool force;              /* resume although files changed (with a note) */
	bool verify_pages;       /* check the checksum of every page before the program runs */
	char *const *argv;       /* what ps shows for the process, or NULL to keep it */
	bool check_only;         /* esky check: messages without resume's advice */
	/*
	 * Non-NULL: the other threads stay traced and stopped and are handed
	 * over here (malloc'd array, in the image's order) instead of running
	 * on untraced: esky-shell follows every thread.
	 */
	struct esky_tracee ***threads_out;
	size_t *thread_n_out;
	/* esky_target_restore: follow every thread (esky_target_follow_threads). */
	bool follow_threads;
	/* (restore of a tree: its processes are checked one by one) */
	bool tree_members_checked;
	/*
	 * Lazy resume (lazy.h): large anonymous mappings are served by a
	 * thread of ours after the program starts, handed over in *lazy_out
	 * (which must be set with lazy). Where the kernel will not (no
	 * userfaultfd without CAP_SYS_PTRACE, threads, a tree), or nothing is
	 * large enough, *lazy_out stays NULL and the resume is as ever.
	 */
	bool lazy;
	struct esky_lazy **lazy_out;
};

/*
 * Thaw chain[0] (with its ancestors chain[1..n-1], see
 * esky_image_open_chain). On success *out is the restored process, traced,
 * in an interrupt stop at the instruction it was frozen at, with stdio
 * connected to ours. 0 or -errno with one esky_error() line.
 */
int esky_restore(struct esky_image *const *chain, size_t n, const struct esky_restore_opts *o,
		 struct esky_tracee **out);

/*
 * Check what esky_restore checks before starting anything: files the image
 * depends on, the vDSO, the agent's range. (Page checksums are checked
 * while the agent works, before the program runs.) 0 or -errno with
 * esky_error(); notes go to the log.
 */
int esky_restore_check(struct esky_image *const *chain, size_t n, const struct esky_restore_opts *o);

/*
 * Find the agent: $ESKY_AGENT, then esky-agent next to the running
 * program, then ../libexec/esky/esky-agent from it, then the install
 * location. *path malloc'd. 0 or -ENOENT with esky_error().
 */
int esky_find_agent(char **path);

#endif
