/*
 * reaper: run a command as a child subreaper and log how every process
 * reaped under it ended, so that a test can tell how a program orphaned
 * by a killed esky died (SIGKILL from PTRACE_O_EXITKILL, or a crash in
 * esky's injected state) and see a copy-on-write copy that ran on.
 *
 *   reaper LOG COMMAND [ARGS...]
 *
 * Each reaped process adds "PID exit N" or "PID signal N" to LOG (the
 * command's own line too). Exits with the command's status (128 + signal
 * when killed) once the command has ended; orphans still running then go
 * on to init. 99 on a harness error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	FILE *log;
	pid_t cmd;

	if (argc < 3) {
		fprintf(stderr, "usage: reaper LOG COMMAND [ARGS...]\n");
		return 99;
	}
	log = fopen(argv[1], "a");
	if (!log || prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		perror("reaper");
		return 99;
	}
	setvbuf(log, NULL, _IOLBF, 0);
	cmd = fork();
	if (cmd < 0) {
		perror("reaper: fork");
		return 99;
	}
	if (cmd == 0) {
		fclose(log);
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, 0);

		if (p < 0) {
			if (errno == EINTR)
				continue;
			perror("reaper: waitpid");
			return 99;
		}
		if (WIFEXITED(st))
			fprintf(log, "%d exit %d\n", (int)p, WEXITSTATUS(st));
		else
			fprintf(log, "%d signal %d\n", (int)p, WTERMSIG(st));
		if (p == cmd)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
}
