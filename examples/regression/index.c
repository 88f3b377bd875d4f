/*
 * libregress-index: the slow set-up of regress. The records arrive in a
 * random order (as they would from a file), are sorted by key, and get two
 * helpers: prefix sums of the values (sum queries in constant time) and an
 * open-addressing hash table of the names.
 */
#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * The hash table has at least REGRESS_TABLE_SLACK slots per record. Changing
 * it changes no answer, only this library: the test suite rebuilds the
 * library with another value to make esky snapshots of regress stale.
 */
#ifndef REGRESS_TABLE_SLACK
#define REGRESS_TABLE_SLACK 2
#endif

struct rx_index {
	uint32_t n;
	struct rx_record *records; /* sorted: records[k].key == k */
	uint64_t *prefix;          /* prefix[k]: sum of the values of keys < k */
	uint32_t *slots;           /* record index + 1; 0 is an empty slot */
	uint32_t mask;             /* slots - 1, a power of two minus one */
};

/* splitmix64's finaliser: a fixed pseudo-random function of x. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * A bijection of the 32-bit numbers (xor-shifts and odd multipliers are
 * each invertible), so that names built from it are unique.
 */
static uint32_t scramble32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

/* Five syllables of 100 (20 consonants by 5 vowels) spell any 32-bit number. */
static void name_of(uint32_t key, char name[RX_NAME_MAX])
{
	static const char consonants[] = "bcdfghjklmnprstvwxyz";
	static const char vowels[] = "aeiou";
	uint32_t x = scramble32(key);
	int i;

	for (i = 0; i < 5; i++) {
		unsigned syl = x % 100;

		x /= 100;
		name[2 * i] = consonants[syl / 5];
		name[2 * i + 1] = vowels[syl % 5];
	}
	name[10] = '\0';
}

static uint32_t value_of(uint32_t key)
{
	return (uint32_t)(mix64(key) % 1000000);
}

/* FNV-1a */
static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static int by_key(const void *a, const void *b)
{
	const struct rx_record *x = a, *y = b;

	return (x->key > y->key) - (x->key < y->key);
}

int rx_index_build(uint32_t n, struct rx_index **out)
{
	struct rx_index *ix = calloc(1, sizeof(*ix));
	uint64_t rng = 0x5eed;
	uint32_t size = 1, k;

	if (!ix)
		return -ENOMEM;
	ix->n = n;
	while (size < (uint64_t)n * REGRESS_TABLE_SLACK)
		size <<= 1;
	ix->mask = size - 1;
	ix->records = malloc((size_t)n * sizeof(*ix->records));
	ix->prefix = malloc(((size_t)n + 1) * sizeof(*ix->prefix));
	ix->slots = calloc(size, sizeof(*ix->slots));
	if (!ix->records || !ix->prefix || !ix->slots) {
		rx_index_free(ix);
		return -ENOMEM;
	}

	/* The keys in a random order (Fisher-Yates), then each record. */
	for (k = 0; k < n; k++)
		ix->records[k].key = k;
	for (k = n - 1; k > 0; k--) {
		uint32_t j = (uint32_t)((rng = mix64(rng)) % ((uint64_t)k + 1));
		uint32_t t = ix->records[k].key;

		ix->records[k].key = ix->records[j].key;
		ix->records[j].key = t;
	}
	for (k = 0; k < n; k++) {
		struct rx_record *r = &ix->records[k];

		r->value = value_of(r->key);
		name_of(r->key, r->name);
	}

	qsort(ix->records, n, sizeof(*ix->records), by_key);

	ix->prefix[0] = 0;
	for (k = 0; k < n; k++)
		ix->prefix[k + 1] = ix->prefix[k] + ix->records[k].value;

	for (k = 0; k < n; k++) {
		uint32_t s = hash_name(ix->records[k].name) & ix->mask;

		while (ix->slots[s])
			s = (s + 1) & ix->mask;
		ix->slots[s] = k + 1;
	}
	*out = ix;
	return 0;
}

void rx_index_free(struct rx_index *ix)
{
	if (!ix)
		return;
	free(ix->records);
	free(ix->prefix);
	free(ix->slots);
	free(ix);
}

uint32_t rx_index_size(const struct rx_index *ix)
{
	return ix->n;
}

const struct rx_record *rx_index_get(const struct rx_index *ix, uint32_t key)
{
	return key < ix->n ? &ix->records[key] : NULL;
}

const struct rx_record *rx_index_find(const struct rx_index *ix, const char *name)
{
	uint32_t s = hash_name(name) & ix->mask;

	for (; ix->slots[s]; s = (s + 1) & ix->mask) {
		const struct rx_record *r = &ix->records[ix->slots[s] - 1];

		if (!strcmp(r->name, name))
			return r;
	}
	return NULL;
}

uint64_t rx_index_sum(const struct rx_index *ix, uint32_t lo, uint32_t hi)
{
	return ix->prefix[hi + 1] - ix->prefix[lo];
}

const struct rx_record *rx_index_max(const struct rx_index *ix, uint32_t lo, uint32_t hi)
{
	const struct rx_record *best = &ix->records[lo];
	uint32_t k;

	for (k = lo + 1; k <= hi; k++)
		if (ix->records[k].value > best->value)
			best = &ix->records[k];
	return best;
}
