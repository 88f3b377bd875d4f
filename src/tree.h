/*
 * Process trees: a program with its descendants, frozen together into
 * one file (one image per live process, image_format.h's tree header)
 * and thawed together, each process with its pid, its parent, its group.
 */
#ifndef ESKY_TREE_H
#define ESKY_TREE_H

#include <stdbool.h>
#include <sys/types.h>

#include "dump.h"
#include "tracee.h"

/* True if process pid has a child (its tree is more than itself). */
bool esky_tree_has_children(pid_t pid);

/* SIGKILL every descendant of root (esky checkpoint --kill of a tree). */
void esky_tree_kill_descendants(pid_t root);

/*
 * Checkpoint the stopped process root and all its descendants into path
 * (a tree file): each one seized and stopped, all of them before any is
 * read, and let go again after. o is as for esky_dump_prepare (no fork
 * copy, no parent image). 0 or -errno with esky_error().
 */
int esky_tree_checkpoint(struct esky_tracee *root, const char *path,
			 const struct esky_dump_opts *o, struct esky_dump_stats *stats);

#endif
