/* Logging sink and the per-thread error slot. */
#include "log.h"

#include <stdio.h>

static esky_log_fn sink_fn;
static void *sink_ctx;
static enum esky_log_level sink_max = ESKY_LOG_NOTE;

static _Thread_local char err_msg[1024];
static _Thread_local int err_set;

void esky_log_set_sink(esky_log_fn fn, void *ctx, enum esky_log_level max)
{
	sink_fn = fn;
	sink_ctx = ctx;
	sink_max = max;
}

void esky_log(enum esky_log_level level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (!sink_fn || level > sink_max)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sink_fn(level, buf, sink_ctx);
}

int esky_error(int err, const char *fmt, ...)
{
	va_list ap;

	if (err_set)
		return err;
	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
	err_set = 1;
	esky_log(ESKY_LOG_DEBUG, "error recorded: %s", err_msg);
	return err;
}

void esky_error_clear(void)
{
	err_set = 0;
	err_msg[0] = '\0';
}

const char *esky_last_error(void)
{
	return err_set ? err_msg : NULL;
}
