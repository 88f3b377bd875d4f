/*
 * cap.h: the sync protocol and checks shared by the capability tests.
 *
 * A capability test sets up some state and computes what it expects,
 * reaches a sync point, then checks the state and prints it. It is run by
 * esky-testrun (testsuite/harness) plainly and under esky; the transcripts
 * (stdout + exit status) must be the same.
 *
 * Sync protocol, on the program's side:
 *
 *   cap_sync()         writes the line "@@sync" to fd 2 with write(2), then
 *                      blocks reading one line from fd 0 with read(2), one
 *                      byte at a time (no stdio on stdin: nothing is read
 *                      ahead). The harness waits until /proc/PID/syscall
 *                      shows the program blocked in read(0, ...), then
 *                      checkpoints it (and kills it and resumes it), and
 *                      types "go\n" on the stdin of whoever runs the program
 *                      now. The checkpoint happens in that read, on a pipe
 *                      (or a pty with esky-testrun --pty).
 *   cap_sync_nowait()  writes "@@sync nowait" only, and reads nothing: the
 *                      program then blocks in some other syscall, whose
 *                      number is given to the harness with --sync-syscall
 *                      NR; the harness waits until the program is blocked
 *                      in it and types nothing.
 *
 * Neither flushes stdout: output still buffered in memory at the sync point
 * is part of what is checkpointed. Only stdout is compared, plus the exit
 * status; stderr carries the markers and the messages of failed checks.
 *
 * Exit status: 0 pass, 1 fail (a CHECK printed file:line, what it expected
 * and what it found), 77 skip (cap_skip), 99 broken sync protocol.
 *
 * Print nothing that depends on addresses, times, pids or the run: the
 * transcripts are compared byte for byte.
 */
#ifndef ESKY_CAP_H
#define ESKY_CAP_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CAP_EXIT_FAIL 1
#define CAP_EXIT_SKIP 77
#define CAP_EXIT_PROTOCOL 99

static inline void cap_write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(CAP_EXIT_PROTOCOL);
		s += w;
		n -= (size_t)w;
	}
}

/* Announce a sync point, then wait for the harness's "go" line on fd 0. */
static inline void cap_sync(void)
{
	char line[64];
	size_t n = 0;
	int saved = errno;

	cap_write_all(2, "@@sync\n", 7);
	for (;;) {
		char c;
		ssize_t r = read(0, &c, 1);

		/* A signal handler without SA_RESTART may interrupt us. */
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			static const char msg[] =
				"cap_sync: stdin closed before \"go\"\n";

			cap_write_all(2, msg, sizeof(msg) - 1);
			_exit(CAP_EXIT_PROTOCOL);
		}
		if (c == '\n')
			break;
		if (n < sizeof(line) - 1)
			line[n++] = c;
	}
	line[n] = '\0';
	if (strcmp(line, "go") != 0) {
		static const char msg[] = "cap_sync: expected \"go\"\n";

		cap_write_all(2, msg, sizeof(msg) - 1);
		_exit(CAP_EXIT_PROTOCOL);
	}
	errno = saved;
}

/* Announce a sync point in the syscall that comes next (--sync-syscall). */
static inline void cap_sync_nowait(void)
{
	int saved = errno;

	cap_write_all(2, "@@sync nowait\n", 14);
	errno = saved;
}

/* Skip the test (exit 77) with a reason on stderr. */
static inline void cap_skip(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static inline void cap_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("SKIP: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(CAP_EXIT_SKIP);
}

static inline void cap_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));

static inline void cap_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: FAIL: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	/* exit(), not _exit(): the transcript shows what was printed. */
	exit(CAP_EXIT_FAIL);
}

/* CHECK(cond): the condition must hold. */
#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond))                                                \
			cap_fail(__FILE__, __LINE__, "%s", #cond);          \
	} while (0)

/* CHECK_INT(found, expected): two integers (printed in decimal and hex). */
#define CHECK_INT(found, expected)                                          \
	do {                                                                \
		long long f_ = (long long)(found);                          \
		long long e_ = (long long)(expected);                       \
		if (f_ != e_)                                               \
			cap_fail(__FILE__, __LINE__,                        \
				 "%s: expected %lld (%#llx), found %lld "   \
				 "(%#llx)", #found, e_,                     \
				 (unsigned long long)e_, f_,                \
				 (unsigned long long)f_);                   \
	} while (0)

/* CHECK_STR(found, expected): two C strings. */
#define CHECK_STR(found, expected)                                          \
	do {                                                                \
		const char *f_ = (found), *e_ = (expected);                 \
		if (strcmp(f_, e_) != 0)                                    \
			cap_fail(__FILE__, __LINE__,                        \
				 "%s: expected \"%s\", found \"%s\"",       \
				 #found, e_, f_);                           \
	} while (0)

/* CHECK_MEM(found, expected, n): n bytes; reports the first difference. */
#define CHECK_MEM(found, expected, n)                                       \
	do {                                                                \
		const unsigned char *f_ = (const void *)(found);            \
		const unsigned char *e_ = (const void *)(expected);         \
		size_t n_ = (n);                                            \
		for (size_t i_ = 0; i_ < n_; i_++)                          \
			if (f_[i_] != e_[i_])                               \
				cap_fail(__FILE__, __LINE__,                \
					 "%s: byte %zu of %zu: expected "   \
					 "%#04x, found %#04x", #found, i_,  \
					 n_, e_[i_], f_[i_]);               \
	} while (0)

/* CHECK_SYS(call): a call returning -1 on error must not fail. */
#define CHECK_SYS(call)                                                     \
	do {                                                                \
		if ((long)(call) == -1)                                     \
			cap_fail(__FILE__, __LINE__, "%s: %s", #call,       \
				 strerror(errno));                          \
	} while (0)

/* A deterministic pseudo-random generator (xorshift64*) for patterns. */
static inline unsigned long long cap_rand(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* Fill n bytes with the pattern of seed. */
static inline void cap_fill(void *p, size_t n, unsigned long long seed)
{
	unsigned char *c = p;
	unsigned long long s = seed | 1;

	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			s = cap_rand(&s);
		c[i] = (unsigned char)(s >> (8 * (i % 8)));
	}
}

/* Check n bytes against the pattern of seed, reporting the first change. */
#define CHECK_FILL(p, n, seed)                                              \
	do {                                                                \
		const unsigned char *c_ = (const void *)(p);                \
		unsigned long long s_ = (seed) | 1;                         \
		size_t n_ = (n);                                            \
		for (size_t i_ = 0; i_ < n_; i_++) {                        \
			unsigned char e_;                                   \
			if (i_ % 8 == 0)                                    \
				s_ = cap_rand(&s_);                         \
			e_ = (unsigned char)(s_ >> (8 * (i_ % 8)));          \
			if (c_[i_] != e_)                                   \
				cap_fail(__FILE__, __LINE__,                \
					 "%s: byte %zu of %zu: expected "   \
					 "%#04x, found %#04x", #p, i_, n_,  \
					 e_, c_[i_]);                       \
		}                                                           \
	} while (0)

#endif /* ESKY_CAP_H */
