/*
 * esky64: the 64-bit checksum of image sections and pages.
 *
 * Not cryptographic: it detects damaged and truncated images and tells
 * whether a page changed (incremental snapshots refer to the parent's
 * page when the hashes are equal). One 64x64->128-bit multiply folds each
 * 16-byte block, keyed by its position (about 15 GB/s here); a final
 * avalanche makes every input bit reach every output bit.
 */
#ifndef ESKY_HASH_H
#define ESKY_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Checksum of len bytes at p, starting from seed. */
uint64_t esky_hash64(const void *p, size_t len, uint64_t seed);

/*
 * Checksum of one 4096-byte page, and whether it is all zero (*zero set to
 * 1 or 0). One pass over the page does both.
 */
uint64_t esky_hash_page(const void *page, int *zero);

#endif
