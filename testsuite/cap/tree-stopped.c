/* A child stopped by a job-control signal is stopped again after the resume (its parent's waitpid with WUNTRACED sees it stop, SIGCONT lets it go on and finish); a parent-death signal (PR_SET_PDEATHSIG) is kept, in the program and in a child. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "cap.h"

static int pdeath(void)
{
	int sig = -1;

	CHECK_SYS(prctl(PR_GET_PDEATHSIG, &sig));
	return sig;
}

int main(void)
{
	int req[2], ans[2], st, sig;
	pid_t stopped, asker;
	char c;

	CHECK_SYS(prctl(PR_SET_PDEATHSIG, SIGWINCH));
	CHECK_SYS(pipe(req));
	CHECK_SYS(pipe(ans));
	fflush(stdout);
	asker = fork();
	CHECK_SYS(asker);
	if (asker == 0) {
		close(req[1]);
		close(ans[0]);
		CHECK_SYS(prctl(PR_SET_PDEATHSIG, SIGUSR2));
		/* Blocked until asked, then tells its parent-death signal. */
		CHECK_INT(read(req[0], &c, 1), 1);
		sig = pdeath();
		CHECK_INT(write(ans[1], &sig, sizeof(sig)), (int)sizeof(sig));
		_exit(0);
	}
	close(req[0]);
	close(ans[1]);
	fflush(stdout);
	stopped = fork();
	CHECK_SYS(stopped);
	if (stopped == 0) {
		raise(SIGSTOP);
		_exit(3);
	}
	CHECK_INT(waitpid(stopped, &st, WUNTRACED), stopped);
	CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
	printf("a child stopped, another waiting\n");

	cap_sync();

	printf("parent-death signal of the program: %s\n", pdeath() == SIGWINCH ? "kept" : "lost");
	CHECK_INT(write(req[1], "?", 1), 1);
	CHECK_INT(read(ans[0], &sig, sizeof(sig)), (int)sizeof(sig));
	printf("parent-death signal of the child: %s\n", sig == SIGUSR2 ? "kept" : "lost");
	CHECK_INT(waitpid(asker, &st, 0), asker);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Still stopped: it runs on only when continued. */
	{
		char path[64], *text = NULL, state = '?';
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", stopped);
		f = fopen(path, "r");
		if (f) {
			size_t n = 0;

			if (getline(&text, &n, f) > 0 && strrchr(text, ')'))
				state = strrchr(text, ')')[2];
			fclose(f);
			free(text);
		}
		printf("the stopped child is %s\n", state == 'T' ? "still stopped" : "running");
	}
	CHECK_SYS(kill(stopped, SIGCONT));
	CHECK_INT(waitpid(stopped, &st, 0), stopped);
	printf("continued, it exits with %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}
