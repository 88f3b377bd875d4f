/*
 * regress: a program with a slow set-up, then quick work on stdin; the
 * example of doc/testing-with-esky.md.
 *
 *   regress [RECORDS]
 *
 * It builds an index of RECORDS records (6000000 by default, 100000 to
 * 50000000; half a second per million here, with -O0), calls ready(),
 * and then answers one query per line of standard input:
 *
 *   get KEY          the record with this key:   KEY NAME VALUE
 *   find NAME        the record with this name:  NAME KEY VALUE
 *   sum LO HI        the sum of the values of the keys LO to HI
 *   max LO HI        the largest value among the keys LO to HI, and where
 *
 * Blank lines and lines starting with # are skipped. A bad query is
 * reported on standard error (regress: line N: ...) and the next line is
 * read; the exit status is then 1, otherwise 0.
 *
 * Its set-up reads no input and writes only to standard error, so a
 * snapshot taken at ready() serves every list of queries: that is what
 * esky_add_snapshot_fixture(... AT ready) in CMakeLists.txt does.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index.h"

#define DEFAULT_RECORDS 6000000u
#define MIN_RECORDS 100000u /* the keys the test cases ask about, and more */
#define MAX_RECORDS 50000000u
#define MAX_WORDS 4

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A decimal number that fits in 32 bits, and nothing else. */
static bool parse_u32(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/*
 * The snapshot point. Everything before this call is the set-up; every
 * query comes after it. A snapshot taken here holds the built index, and
 * resuming it answers queries at once.
 */
static void ready(const struct rx_index *ix)
{
	fprintf(stderr, "regress: ready: %u records, reading queries\n", rx_index_size(ix));
}

/* Answers one query; false with a message on stderr when it is bad. */
static bool answer(const struct rx_index *ix, unsigned line, char **w, int nw)
{
	const struct rx_record *r;
	uint32_t key, lo, hi;

	if (!strcmp(w[0], "get") && nw == 2) {
		if (!parse_u32(w[1], &key)) {
			fprintf(stderr, "regress: line %u: get %s: not a key (0 to 4294967295)\n", line, w[1]);
			return false;
		}
		r = rx_index_get(ix, key);
		if (r)
			printf("%u %s %u\n", r->key, r->name, r->value);
		else
			printf("%u: no such key\n", key);
		return true;
	}
	if (!strcmp(w[0], "find") && nw == 2) {
		r = rx_index_find(ix, w[1]);
		if (r)
			printf("%s %u %u\n", r->name, r->key, r->value);
		else
			printf("%s: no such name\n", w[1]);
		return true;
	}
	if ((!strcmp(w[0], "sum") || !strcmp(w[0], "max")) && nw == 3) {
		if (!parse_u32(w[1], &lo) || !parse_u32(w[2], &hi) || lo > hi) {
			fprintf(stderr, "regress: line %u: %s %s %s: give two keys, LO <= HI\n", line,
				w[0], w[1], w[2]);
			return false;
		}
		if (hi >= rx_index_size(ix)) {
			fprintf(stderr, "regress: line %u: %s: key %u is past the last one\n", line, w[0],
				hi);
			return false;
		}
		if (w[0][0] == 's') {
			printf("sum %u %u: %llu over %u records\n", lo, hi,
			       (unsigned long long)rx_index_sum(ix, lo, hi), hi - lo + 1);
		} else {
			r = rx_index_max(ix, lo, hi);
			printf("max %u %u: %u at %u (%s)\n", lo, hi, r->value, r->key, r->name);
		}
		return true;
	}
	if (!strcmp(w[0], "get") || !strcmp(w[0], "find") || !strcmp(w[0], "sum") ||
	    !strcmp(w[0], "max"))
		fprintf(stderr, "regress: line %u: %s: wrong number of arguments\n", line, w[0]);
	else
		fprintf(stderr, "regress: line %u: %s: unknown query (get, find, sum, max)\n", line,
			w[0]);
	return false;
}

int main(int argc, char **argv)
{
	uint32_t n = DEFAULT_RECORDS;
	struct rx_index *ix;
	char buf[256];
	unsigned line = 0;
	bool ok = true;
	double t0;

	if (argc > 2 || (argc == 2 && (!parse_u32(argv[1], &n) || n < MIN_RECORDS ||
				       n > MAX_RECORDS))) {
		fprintf(stderr, "usage: regress [RECORDS]  (%u to %u, default %u)\n", MIN_RECORDS,
			MAX_RECORDS, DEFAULT_RECORDS);
		return 2;
	}

	fprintf(stderr, "regress: building an index of %u records\n", n);
	t0 = seconds();
	if (rx_index_build(n, &ix)) {
		fprintf(stderr, "regress: out of memory for %u records\n", n);
		return 1;
	}
	fprintf(stderr, "regress: built in %.2f s\n", seconds() - t0);

	ready(ix); /* CMakeLists.txt: regress.oneshot stops at this line, regress.c:154 */

	while (fgets(buf, sizeof(buf), stdin)) {
		char *w[MAX_WORDS + 1], *save = NULL, *p;
		int nw = 0;

		line++;
		if (!strchr(buf, '\n') && !feof(stdin)) {
			fprintf(stderr, "regress: line %u: longer than %zu characters\n", line,
				sizeof(buf) - 2);
			return 1;
		}
		for (p = strtok_r(buf, " \t\r\n", &save); p && nw <= MAX_WORDS;
		     p = strtok_r(NULL, " \t\r\n", &save))
			w[nw++] = p;
		if (!nw || w[0][0] == '#')
			continue;
		if (!answer(ix, line, w, nw))
			ok = false;
	}
	rx_index_free(ix);
	return ok ? 0 : 1;
}
