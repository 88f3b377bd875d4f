/*
 * Handing a program to gdb (esky resume --gdb, esky-shell's gdb): gdb runs
 * in this terminal and attaches to the program stopped exactly where it
 * stands; esky waits for gdb to end, then takes the program back, stopped
 * where gdb left it.
 */
#ifndef ESKY_GDB_H
#define ESKY_GDB_H

#include "target.h"

struct esky_gdb_opts {
	const char *program;  /* the program's file, for its symbols (NULL: gdb finds it) */
	const char *gdb;      /* the debugger to run; NULL: $ESKY_GDB, else "gdb" */
};

/*
 * Hand the stopped program *t to gdb and wait for gdb to exit. Afterwards
 * *t is the program again, traced by us and stopped where gdb left it, or
 * NULL if it ended while gdb had it (*ended then holds its wait status as
 * waitpid(2) gives it, and is -1 otherwise). *gdb_status is gdb's wait
 * status. 0 or -errno with esky_error(); on an error before gdb ran, *t is
 * unchanged.
 */
int esky_gdb_handoff(struct esky_target **t, const struct esky_gdb_opts *o, int *gdb_status,
		     int *ended);

#endif
