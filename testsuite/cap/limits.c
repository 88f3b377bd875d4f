/* Per-process settings outside the brief's list survive: resource limits (RLIMIT_NOFILE, RLIMIT_CORE, RLIMIT_STACK), the nice value, no_new_privs (a sandbox must not lose it), the timer slack and the command name (PR_SET_NAME). Printed, so that the kept transcripts show every difference at once. */
#define _GNU_SOURCE
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cap.h"

static void print_limit(const char *name, int res)
{
	struct rlimit rl;

	CHECK_SYS(getrlimit(res, &rl));
	printf("%s: %lld %lld\n", name, (long long)rl.rlim_cur,
	       (long long)rl.rlim_max);
}

static void print_all(void)
{
	char comm[32] = { 0 };

	print_limit("RLIMIT_NOFILE", RLIMIT_NOFILE);
	print_limit("RLIMIT_CORE", RLIMIT_CORE);
	print_limit("RLIMIT_STACK", RLIMIT_STACK);
	errno = 0;
	printf("nice: %d\n", getpriority(PRIO_PROCESS, 0));
	printf("no_new_privs: %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	printf("timerslack: %d\n", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
	CHECK_SYS(prctl(PR_GET_NAME, comm));
	printf("comm: %s\n", comm);
}

int main(void)
{
	struct rlimit nofile = { 100, 200 }, core = { 0, 4096 };
	struct rlimit stack = { 4 << 20, 6 << 20 };

	CHECK_SYS(setrlimit(RLIMIT_NOFILE, &nofile));
	CHECK_SYS(setrlimit(RLIMIT_CORE, &core));
	CHECK_SYS(setrlimit(RLIMIT_STACK, &stack));
	CHECK_SYS(setpriority(PRIO_PROCESS, 0, 5));
	CHECK_SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	CHECK_SYS(prctl(PR_SET_TIMERSLACK, 123456, 0, 0, 0));
	CHECK_SYS(prctl(PR_SET_NAME, "cap-limits-name"));
	print_all();

	cap_sync();

	print_all();
	return 0;
}
