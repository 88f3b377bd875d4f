/*
 * esky64: the 64-bit checksum of image sections and pages.
 *
 * Not cryptographic: it detects damaged and truncated images and tells
 * whether a page changed. Four independent lanes of multiply-rotate mixing
 * keep the CPU's multipliers busy (about 10 GB/s here); the tail and the
 * lanes are folded with a final avalanche so that every input bit reaches
 * every output bit.
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
