/*
 * ELF core files from checkpoint images: `esky core`. The core is what the
 * kernel would have dumped for the process at the moment of the
 * checkpoint, so that `gdb PROGRAM CORE` shows its stack, variables and
 * registers and finds its shared libraries.
 *
 * No ptrace here, like the image reader: this module reads images (and
 * the files their mappings came from) and writes a file, so it can be
 * tested alone.
 */
#ifndef ESKY_CORE_H
#define ESKY_CORE_H

#include <stddef.h>

#include "image.h"

/*
 * Write an ELF core file of chain[0] at path. chain is what
 * esky_image_open_chain() gives: chain[0] the image, the others its
 * ancestors, which hold the pages an incremental image refers to.
 *
 * The file is written beside path under a temporary name, fsynced and
 * renamed (mode 0600: it holds all the program's memory); on error no file
 * is left at path and an existing one is untouched. Pages no image stores
 * of a file mapping are read from the file at its recorded path; a file
 * that is gone or changed since the checkpoint leaves those pages out of
 * the core, with a pr_warn() note. 0 or -errno with a one-line
 * esky_error() naming the file and the cause.
 */
int esky_core_write(struct esky_image *const *chain, size_t n, const char *path);

#endif
