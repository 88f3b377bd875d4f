/*
 * Logging and error reporting of libesky.
 *
 * The library never prints by itself. Notes and warnings go to a sink the
 * program sets (the default sink drops them). An error that a user must see
 * is recorded once, at the place that knows the object and the cause, with
 * esky_error(); callers pass the -errno up without adding lines, and the
 * program prints esky_last_error() as its one-line message.
 */
#ifndef ESKY_LOG_H
#define ESKY_LOG_H

#include <stdarg.h>

enum esky_log_level {
	ESKY_LOG_ERROR = 0,
	ESKY_LOG_WARN,
	ESKY_LOG_NOTE,
	ESKY_LOG_DEBUG,
};

/* A sink receives one message without its trailing newline. */
typedef void (*esky_log_fn)(enum esky_log_level level, const char *msg, void *ctx);

/* Set the sink (NULL drops everything) and the most verbose level it gets. */
void esky_log_set_sink(esky_log_fn fn, void *ctx, enum esky_log_level max);

/* Send one message to the sink; the newline is the sink's business. */
void esky_log(enum esky_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_warn(...) esky_log(ESKY_LOG_WARN, __VA_ARGS__)
#define pr_note(...) esky_log(ESKY_LOG_NOTE, __VA_ARGS__)
#define pr_debug(...) esky_log(ESKY_LOG_DEBUG, __VA_ARGS__)

/*
 * Record the user-facing message of a failure and return err (a -errno).
 * Only the first message after esky_error_clear() is kept: it is the one
 * nearest to the cause. Returns err so that callers can write
 * `return esky_error(-ENOENT, "...")`.
 */
int esky_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forget the recorded message (call before an operation). */
void esky_error_clear(void);

/* The recorded message, or NULL if none. Owned by the library (per thread). */
const char *esky_last_error(void);

#endif
