/* esky64: four lanes of multiply-rotate mixing, see hash.h. */
#include "hash.h"

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

static inline uint64_t lane(uint64_t acc, uint64_t in)
{
	acc += in * K1;
	acc = rotl64(acc, 29);
	return acc * K0;
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

uint64_t esky_hash64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t a = seed + K0, b = seed ^ K1, c = seed - K2, d = ~seed + K3;
	uint64_t h;
	size_t i = 0;

	for (; i + 32 <= len; i += 32) {
		a = lane(a, load64(p + i));
		b = lane(b, load64(p + i + 8));
		c = lane(c, load64(p + i + 16));
		d = lane(d, load64(p + i + 24));
	}
	h = rotl64(a, 1) + rotl64(b, 7) + rotl64(c, 12) + rotl64(d, 18);
	h ^= (uint64_t)len * K3;
	for (; i + 8 <= len; i += 8)
		h = lane(h, load64(p + i));
	if (i < len) {
		unsigned char tail[8] = { 0 };

		memcpy(tail, p + i, len - i);
		h = lane(h ^ (len - i), load64(tail));
	}
	return avalanche(h);
}

uint64_t esky_hash_page(const void *page, int *zero)
{
	const unsigned char *p = page;
	uint64_t a = K0, b = K1, c = ~K2, d = K3, any = 0;
	size_t i;

	for (i = 0; i < 4096; i += 32) {
		uint64_t w0 = load64(p + i), w1 = load64(p + i + 8);
		uint64_t w2 = load64(p + i + 16), w3 = load64(p + i + 24);

		any |= w0 | w1 | w2 | w3;
		a = lane(a, w0);
		b = lane(b, w1);
		c = lane(c, w2);
		d = lane(d, w3);
	}
	*zero = any == 0;
	return avalanche(rotl64(a, 1) + rotl64(b, 7) + rotl64(c, 12) + rotl64(d, 18) +
			 4096 * K3);
}
