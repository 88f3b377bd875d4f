/* esky refuses to checkpoint a process that has a child process, says so on one line, writes no file, and parent and child carry on unharmed. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>

#include "cap.h"

int main(void)
{
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	CHECK_SYS(pid);
	if (pid == 0) {
		/* Wait for the parent's SIGTERM. */
		for (;;)
			pause();
	}
	printf("child started\n");

	cap_sync();

	CHECK_INT(waitpid(pid, &st, WNOHANG), 0);	/* still alive */
	CHECK_SYS(kill(pid, SIGTERM));
	CHECK_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	printf("child reaped\n");
	return 0;
}
