/*
 * core-threads: a program of four threads for `esky core`: the main thread
 * waits in main_wait(), three workers named worker-1..3 in worker_wait(n)
 * with n their number. gdb must show all four from the core of a
 * checkpoint, each at its own function.
 *
 * Prints "tids PID T1 T2 T3" on stdout once every worker waits, then
 * "ready" on stderr; exits after a minute (the test kills it before).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WORKERS 3

static pthread_barrier_t started;
static pid_t tids[WORKERS];
static volatile int stop;

/* noinline: each thread's frame has a name and an argument for gdb's backtrace. */
static __attribute__((noinline)) void worker_wait(int n)
{
	for (int i = 0; i < 6000 && !stop; i++)
		usleep(10000 + n);
}

static void *worker(void *arg)
{
	int n = (int)(long)arg;
	char name[16];

	snprintf(name, sizeof(name), "worker-%d", n);
	pthread_setname_np(pthread_self(), name);
	tids[n - 1] = (pid_t)syscall(SYS_gettid);
	pthread_barrier_wait(&started);
	worker_wait(n);
	return NULL;
}

static __attribute__((noinline)) void main_wait(void)
{
	for (int i = 0; i < 6000 && !stop; i++)
		usleep(10000);
}

int main(void)
{
	pthread_t t[WORKERS];

	/* Not the fds of whoever started it (CTest's pipe): esky refuses what it cannot save. */
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	if (pthread_barrier_init(&started, NULL, WORKERS + 1))
		return 99;
	for (long n = 1; n <= WORKERS; n++)
		if (pthread_create(&t[n - 1], NULL, worker, (void *)n))
			return 99;
	pthread_barrier_wait(&started);
	printf("tids %d %d %d %d\n", (int)getpid(), (int)tids[0], (int)tids[1], (int)tids[2]);
	fflush(stdout);
	fprintf(stderr, "ready\n");
	main_wait();
	stop = 1;
	for (int n = 0; n < WORKERS; n++)
		pthread_join(t[n], NULL);
	return 0;
}
