/*
 * esky64, see hash.h.
 *
 * Each 16-byte block is folded by one 64x64->128-bit multiply of its two
 * words, each first mixed with a key that changes with the block's
 * position: moving a block changes the hash, and the multiplier (one per
 * cycle on x86-64) is used once per 16 bytes instead of once per 8.
 * A multiply by zero would hide the other word, so the words are also
 * added, rotated, into a side accumulator. Lanes are combined with a
 * final avalanche so that every input bit reaches every output bit.
 */
#include "hash.h"
#include "arch.h"

#include <string.h>

/* Odd 64-bit constants with well-spread bits (digits of pi and e, made odd). */
#define K0 0x243f6a8885a308d3ULL
#define K1 0x13198a2e03707345ULL
#define K2 0xa4093822299f31d1ULL
#define K3 0xb7e151628aed2a6bULL

static inline uint64_t rotl64(uint64_t v, unsigned r)
{
	return (v << r) | (v >> (64 - r));
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Fold a 16-byte block (x, y) under position key k. */
static inline uint64_t fold(uint64_t x, uint64_t y, uint64_t k)
{
	return arch_mul_fold(x ^ k, y + K0);
}

static inline uint64_t avalanche(uint64_t h)
{
	h ^= h >> 31;
	h *= K2;
	h ^= h >> 29;
	h *= K3;
	h ^= h >> 32;
	return h;
}

/*
 * 32 bytes at a time: a and b take the folds, s the side sums; k advances
 * per block. Plain locals, not a struct behind a pointer, so that nothing
 * aliases them and they stay in registers.
 */
#define BLOCK32(p)                                                                   \
	do {                                                                         \
		uint64_t w0 = load64(p), w1 = load64((p) + 8);                       \
		uint64_t w2 = load64((p) + 16), w3 = load64((p) + 24);               \
		any |= w0 | w1 | w2 | w3;                                            \
		k += K1;                                                             \
		a += fold(w0, w1, k);                                                \
		b += fold(w2, w3, k + K2);                                           \
		s += w1 + w3;                                                        \
	} while (0)

static inline uint64_t finish(uint64_t a, uint64_t b, uint64_t s, uint64_t len)
{
	return avalanche(a + rotl64(b, 23) + rotl64(s, 41) + len * K3);
}

uint64_t esky_hash64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t a = seed ^ K0, b = seed + K1, s = ~seed, k = seed * K3, any = 0;
	size_t i = 0;

	for (; i + 32 <= len; i += 32)
		BLOCK32(p + i);
	if (i < len) {
		unsigned char tail[32] = { 0 };

		memcpy(tail, p + i, len - i);
		BLOCK32(tail);
	}
	(void)any;
	return finish(a, b, s, len);
}

uint64_t esky_hash_page(const void *page, int *zero)
{
	const unsigned char *p = page;
	uint64_t a = K0, b = K1, s = K2, k = K3, any = 0;

	for (size_t i = 0; i < 4096; i += 32)
		BLOCK32(p + i);
	*zero = any == 0;
	return finish(a, b, s, 4096);
}
