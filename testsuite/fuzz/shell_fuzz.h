/*
 * The shell's fuzz target (shell_fuzz.c) and the session it runs the
 * commands on (session_stub.c).
 */
#ifndef ESKY_SHELL_FUZZ_H
#define ESKY_SHELL_FUZZ_H

#include "text_fuzz.h"

struct esky_session;

/* The stub session, made the first time (its debug information is this executable's). */
struct esky_session *shell_fuzz_session(void);
/* Back to how the first input found it: no breakpoints, arguments, environment or process. */
void shell_fuzz_session_reset(struct esky_session *s);

/* A contract is broken: say which on text_fuzz_err_fd and abort (the fuzzer keeps the input). */
void shell_fuzz_broken(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
