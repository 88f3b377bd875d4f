/*
 * Identity of the files an image depends on (executable, libraries,
 * mapped and opened files): what to record at checkpoint and how to tell
 * at resume that a file changed or vanished.
 *
 * ELF files are known by their GNU build-id (the same library on another
 * machine matches even if its mtime differs); other files by size and
 * mtime, and by a content hash when small enough, so that a file touched
 * but not changed still matches.
 */
#ifndef ESKY_FILEID_H
#define ESKY_FILEID_H

#include <stdbool.h>
#include <stddef.h>

#include "image_format.h"

/* Files up to this size get a content hash when they have no build-id. */
#define ESKY_FILEID_HASH_MAX (16u << 20)

/*
 * Fill f's identity fields from the file at path (f->path is the caller's;
 * f->flags keeps ESKY_IMG_FILEF_WRITTEN and ESKY_IMG_FILEF_EXE if set).
 * Written files get no hash (their content is expected to change).
 * 0 or -errno.
 */
int esky_fileid_read(const char *path, struct esky_img_file *f);

/*
 * Compare the file at path with its recorded identity. 0 if it is the
 * same file; -ENOENT if it vanished; -ESTALE if it changed, with what
 * changed written to why ("size 1234 -> 1300", "build-id 3f2a... ->
 * 91bc..."). For a written file only disappearance is an error; a change
 * of size returns 0 with why set (the caller notes it).
 */
int esky_fileid_check(const char *path, const struct esky_img_file *f, char *why, size_t n);

/* The GNU build-id of an ELF file, as lowercase hex into buf. 0 or -errno. */
int esky_fileid_build_id_hex(const struct esky_img_file *f, char *buf, size_t n);

#endif
