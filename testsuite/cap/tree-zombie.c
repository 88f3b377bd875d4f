/* Zombies survive: a child that exited with status 7 and one killed by SIGUSR1, both before the sync and not waited for, are still there to collect after the resume (waitid with WNOWAIT sees them, then waitpid gets exit status 7 and WTERMSIG SIGUSR1 at their pids), and there is no other child. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>

#include "cap.h"

#define EXIT_ZOMBIE 7

/* Wait until pid is a zombie without reaping it; check how it ended. */
static void check_zombie(pid_t pid, int code, int status)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	CHECK_SYS(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT));
	CHECK_INT(si.si_pid, pid);
	CHECK_INT(si.si_signo, SIGCHLD);
	CHECK_INT(si.si_code, code);
	CHECK_INT(si.si_status, status);
}

int main(void)
{
	int st;
	pid_t me = getpid(), exited, killed;

	fflush(stdout);
	exited = fork();
	CHECK_SYS(exited);
	if (exited == 0)
		_exit(EXIT_ZOMBIE);

	/* Paused until SIGUSR1 kills it. */
	fflush(stdout);
	killed = fork();
	CHECK_SYS(killed);
	if (killed == 0) {
		for (;;)
			pause();
	}
	CHECK_SYS(kill(killed, SIGUSR1));

	check_zombie(exited, CLD_EXITED, EXIT_ZOMBIE);
	check_zombie(killed, CLD_KILLED, SIGUSR1);
	printf("two zombies: exit status 7, killed by SIGUSR1\n");

	cap_sync();

	CHECK_INT(getpid(), me);
	/* Still zombies, the same ones, with the same statuses. */
	check_zombie(exited, CLD_EXITED, EXIT_ZOMBIE);
	check_zombie(killed, CLD_KILLED, SIGUSR1);
	printf("still zombies after the resume: ok\n");
	CHECK_INT(waitpid(exited, &st, 0), exited);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), EXIT_ZOMBIE);
	printf("waitpid: exit status %d\n", WEXITSTATUS(st));
	CHECK_INT(waitpid(killed, &st, 0), killed);
	CHECK(WIFSIGNALED(st));
	CHECK_INT(WTERMSIG(st), SIGUSR1);
	CHECK(!WCOREDUMP(st));
	printf("waitpid: killed by signal %d\n", WTERMSIG(st));
	CHECK_INT(waitpid(-1, &st, WNOHANG), -1);
	CHECK_INT(errno, ECHILD);
	printf("no other child\n");
	return 0;
}
