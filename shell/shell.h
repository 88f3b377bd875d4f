/*
 * esky-shell internals: the command table and how commands run. The
 * REPL (esky-shell.c) reads lines and hands them here; commands talk to
 * libesky's session and print. No ptrace, image or DWARF code here.
 */
#ifndef ESKY_SHELL_H
#define ESKY_SHELL_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"

struct shell {
	struct esky_session *s;
	const char *line;    /* the command line being run, as typed */
	bool interactive;    /* commands from a terminal */
	bool quit;
	int failures;        /* failed commands so far */
};

/*
 * Run one command line. Returns 0, or -1 if the command failed (its
 * one-line message already printed on stderr).
 */
int shell_execute(struct shell *sh, const char *line);

/* Command names (NULL-terminated), for completion. */
const char *const *shell_command_names(void);

/* Does the command at the start of line take a location argument (break, tbreak, snap)? */
bool shell_wants_location(const char *line);

#endif
