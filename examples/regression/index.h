/*
 * The index of regress (libregress-index): N records with the keys 0 to
 * N-1, each with a name and a value, that answer point and range queries.
 *
 * A record's name and value depend on its key only, never on N: a query
 * about keys below 100000 has the same answer for every N from 100000 up.
 * The test cases in cases/ rely on that, so that the set-up can be made
 * shorter or longer without touching them.
 */
#ifndef REGRESS_INDEX_H
#define REGRESS_INDEX_H

#include <stdint.h>

#define RX_NAME_MAX 16 /* a name and its NUL */

struct rx_record {
	uint32_t key;
	uint32_t value; /* 0 to 999999 */
	char name[RX_NAME_MAX];
};

struct rx_index;

/*
 * Generates n records in random order (deterministically), sorts them by
 * key, and builds the prefix sums and a hash table of the names. This is
 * the slow part: seconds for a few million records. Returns 0 and the new
 * index in *out (freed with rx_index_free), or -ENOMEM.
 */
int rx_index_build(uint32_t n, struct rx_index **out);

/* Frees the index; NULL is allowed. */
void rx_index_free(struct rx_index *ix);

/* The number of records. */
uint32_t rx_index_size(const struct rx_index *ix);

/* The record with this key, or NULL. The index owns it. */
const struct rx_record *rx_index_get(const struct rx_index *ix, uint32_t key);

/* The record with this name, or NULL. The index owns it. */
const struct rx_record *rx_index_find(const struct rx_index *ix, const char *name);

/*
 * Over the records with keys lo to hi (both included, hi < size, lo <= hi):
 * the sum of the values, and the record with the largest value (the
 * smallest key among equals).
 */
uint64_t rx_index_sum(const struct rx_index *ix, uint32_t lo, uint32_t hi);
const struct rx_record *rx_index_max(const struct rx_index *ix, uint32_t lo, uint32_t hi);

#endif
