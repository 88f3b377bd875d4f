/*
 * What the unit tests share: the exit statuses, the failure reports and
 * CHECK macros, harness errors and, for the tests that work in a directory
 * of files, their small helpers. Each test program includes it once, so
 * everything here is static.
 *
 * Before including it, a test defines:
 * - UNIT_NAME: the program's name, as harness errors say it ("tree_test");
 * - MAX_REPORTS: failures printed before the rest are only counted;
 * - UNIT_WORK_DIR, if the test works in a directory: then `dir` is that
 *   directory (named by harness errors, which keep it), and rnd (seeded
 *   with UNIT_RNG_SEED), fill_random, xmalloc, path_of, read_whole
 *   (UNIT_READ_ROOM spare bytes after the file, 0 if undefined),
 *   write_whole, must and count_temporaries are there.
 *
 * fail_context, when set, points to a string that each failure names
 * first ("CONTEXT: ") unless it is empty: the damage or program checked.
 */
#ifndef ESKY_UNIT_TEST_H
#define ESKY_UNIT_TEST_H

#ifndef UNIT_NAME
#error "define UNIT_NAME before including unit_test.h"
#endif
#ifndef MAX_REPORTS
#error "define MAX_REPORTS before including unit_test.h"
#endif

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_SKIP 77
#define EXIT_HARNESS 99

static unsigned failures;
/* checks made: not every test counts them */
static unsigned checks __attribute__((unused));
static const char *const *fail_context;
#ifdef UNIT_WORK_DIR
static char dir[4096];
#endif

static void fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail_at(const char *file, int line, const char *fmt, ...)
{
	const char *ctx = fail_context && *fail_context ? *fail_context : "";
	va_list ap;

	if (++failures > MAX_REPORTS)
		return;
	fprintf(stderr, "%s:%d: %s%s", file, line, ctx, *ctx ? ": " : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void harness_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void harness_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, UNIT_NAME ": harness error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
#ifdef UNIT_WORK_DIR
	fprintf(stderr, " (work directory %s kept)\n", dir);
#else
	fputc('\n', stderr);
#endif
	exit(EXIT_HARNESS);
}

#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)

#define CHECK(cond, ...)                     \
	do {                                 \
		checks++;                    \
		if (!(cond))                 \
			FAIL(__VA_ARGS__);   \
	} while (0)

#define CHECK_U64(what, found, expected)                                                      \
	do {                                                                                  \
		uint64_t f_ = (uint64_t)(found), e_ = (uint64_t)(expected);                   \
		CHECK(f_ == e_, "%s: expected %" PRIu64 " (0x%" PRIx64 "), found %" PRIu64    \
		      " (0x%" PRIx64 ")", what, e_, e_, f_, f_);                              \
	} while (0)

#define CHECK_STR(what, found, expected)                                                      \
	do {                                                                                  \
		const char *f_ = (found), *e_ = (expected);                                   \
		CHECK(f_ && !strcmp(f_, e_), "%s: expected \"%s\", found %s%s%s", what, e_,   \
		      f_ ? "\"" : "", f_ ? f_ : "NULL", f_ ? "\"" : "");                      \
	} while (0)

#ifdef UNIT_WORK_DIR

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef UNIT_READ_ROOM
#define UNIT_READ_ROOM 0
#endif

/* ---- small helpers ---- */

static uint64_t rng_state = UNIT_RNG_SEED;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so that a failure repeats */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void fill_random(void *p, size_t n)
{
	unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		c[i] = (unsigned char)rnd();
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		harness_error("out of memory (%zu bytes)", n);
	return p;
}

static char *path_of(const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		harness_error("out of memory");
	return p;
}

static void read_whole(const char *path, unsigned char **buf, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0)
		harness_error("%s: %s", path, strerror(errno));
	*len = (size_t)st.st_size;
	*buf = xmalloc(*len + UNIT_READ_ROOM);
	if (*len && pread(fd, *buf, *len, 0) != (ssize_t)*len)
		harness_error("%s: short read", path);
	close(fd);
}

static void write_whole(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		harness_error("%s: %s", path, strerror(errno));
	if (len && write(fd, buf, len) != (ssize_t)len)
		harness_error("%s: short write", path);
	close(fd);
}

/* A harness error unless ret (0 or -errno from libesky) is 0. */
static void must(int ret, const char *what)
{
	if (ret)
		harness_error("%s: %s (%s)", what, strerror(-ret),
			      esky_last_error() ? esky_last_error() : "no message");
}

/* Names of files in the work directory that look like the writer's temporaries. */
static int count_temporaries(bool report)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		harness_error("%s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".esky-tmp")) {
			if (report)
				fprintf(stderr, "temporary file left: %s/%s\n", dir, e->d_name);
			n++;
		}
	closedir(d);
	return n;
}

#endif /* UNIT_WORK_DIR */

#endif /* ESKY_UNIT_TEST_H */
