/* Handing a program to gdb, see gdb.h. */
#include "gdb.h"
#include "log.h"
#include "tracee.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Commands gdb reads after attaching: whatever way gdb lets go of the
 * program (quit, detach, end of its input), a SIGSTOP is queued first, so
 * the program stops again the moment gdb detaches and we take it back at
 * the instruction gdb left it at. (A signal sent to a process in a ptrace
 * stop stays pending until it runs again.)
 */
static int write_script(pid_t pid, char *path, size_t n)
{
	FILE *f;
	int fd;

	snprintf(path, n, "%s/esky-gdb.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return esky_error(-errno, "cannot write gdb's commands in %s: %s", path,
				  strerror(errno));
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	fprintf(f,
		"define hook-quit\n  shell kill -STOP %d\nend\n"
		"define hook-detach\n  shell kill -STOP %d\nend\n"
		"echo esky: pid %d stands where esky stopped it; quit gives it back to "
		"esky\\n\n",
		(int)pid, (int)pid, (int)pid);
	if (fclose(f)) {
		unlink(path);
		return esky_error(-EIO, "cannot write gdb's commands in %s", path);
	}
	return 0;
}

/* The child that becomes gdb once the program is ready for it. */
static void gdb_child(int gate, const char *gdb, const char *script, const char *program,
		      pid_t pid)
{
	char pidbuf[16];
	sigset_t none;
	char c;
	const char *argv[10];
	int k = 0;

	while (read(gate, &c, 1) < 0 && errno == EINTR)
		;
	close(gate);
	/* gdb gets the signals a shell would give it, not esky's. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
	argv[k++] = gdb;
	argv[k++] = "-q";
	argv[k++] = "-x";
	argv[k++] = script;
	if (program)
		argv[k++] = program;
	argv[k++] = "-p";
	argv[k++] = pidbuf;
	argv[k] = NULL;
	execvp(gdb, (char *const *)argv);
	fprintf(stderr, "esky: cannot run %s: %s (install gdb, or set ESKY_GDB)\n", gdb,
		strerror(errno));
	_exit(127);
}

int esky_gdb_handoff(struct esky_target **t, const struct esky_gdb_opts *o, int *gdb_status,
		     int *ended)
{
	const char *gdb = o->gdb ? o->gdb : getenv("ESKY_GDB") ? getenv("ESKY_GDB") : "gdb";
	pid_t pid = esky_target_pid(*t), child;
	uint64_t run_ns = esky_target_run_ns(*t);
	char script[256];
	int gate[2], ret, ws;

	*ended = -1;
	ret = write_script(pid, script, sizeof(script));
	if (ret)
		return ret;
	if (pipe2(gate, O_CLOEXEC) < 0) {
		ret = esky_error(-errno, "pipe: %s", strerror(errno));
		goto out_unlink;
	}
	child = fork();
	if (child < 0) {
		ret = esky_error(-errno, "cannot start gdb: %s", strerror(errno));
		close(gate[0]);
		close(gate[1]);
		goto out_unlink;
	}
	if (child == 0) {
		close(gate[1]);
		gdb_child(gate[0], gdb, script, o->program, pid);
	}
	close(gate[0]);
	/* gdb is the program's sibling: Yama's ptrace_scope 1 wants it named. */
	ret = esky_target_allow_tracer(*t, child);
	if (!ret)
		ret = esky_target_release(*t, true);
	if (ret) {
		kill(child, SIGKILL);
		close(gate[1]);
		waitpid(child, NULL, 0);
		esky_error(ret, "cannot hand pid %d to gdb: %s", (int)pid, strerror(-ret));
		goto out_unlink;
	}
	*t = NULL;
	close(gate[1]);
	while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
		;
	*gdb_status = ws;
	/* Still ours (our child): ended while gdb had it (gdb's kill), or stopped again. */
	if (waitpid(pid, &ws, WNOHANG | __WALL) == pid) {
		*ended = ws;
		ret = 0;
		goto out_unlink;
	}
	ret = esky_target_take_back(pid, run_ns, t);
	if (ret)
		esky_error(ret, "cannot take pid %d back from gdb: %s", (int)pid,
			   esky_last_error() ? esky_last_error() : strerror(-ret));
out_unlink:
	unlink(script);
	return ret;
}
