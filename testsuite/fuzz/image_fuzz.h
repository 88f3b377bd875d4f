/*
 * The fuzz target of the image reader (image_fuzz.c) and what its
 * standalone driver (image_fuzz_driver.c) shares with it.
 */
#ifndef ESKY_IMAGE_FUZZ_H
#define ESKY_IMAGE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/*
 * libFuzzer's entry point: esky_image_open_fd and esky_image_verify_pages
 * on size bytes, then every array of the view walked as a user of the
 * reader would (for a process tree file, of every process's image). Aborts when the reader breaks its contract (a failure
 * without a one-line message naming the file, an index or offset the
 * reader accepted that points outside its arrays). Always returns 0.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Recompute the checksum of every section whose bounds lie in the buffer,
 * and the header's, so that a mutation reaches the checks behind the
 * checksums; in a process tree file, those of every image the table
 * places in the buffer, then the table's. Does nothing to a buffer
 * shorter than a header.
 */
void image_fuzz_reseal(uint8_t *data, size_t size);

/* The name the target gives the image: messages must start with it. */
#define IMAGE_FUZZ_NAME "fuzz-input"

#endif
