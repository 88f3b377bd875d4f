/* Ten checkpoints in a row of a program whose threads live across all of them (each resumed process is checkpointed again): a computing thread, one woken through a condition variable, one through a pipe, one that holds an error-checking mutex across every other checkpoint, and one created after the third resume and joined after the seventh; their IDs, state and work are right at every step. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "cap.h"
#include "cap-threads.h"

#define STEPS 10
#define WAIT_MS 20000		/* give up on an event after 20 s */

struct node {
	struct node *next;
	int turn;
	unsigned char pad[300];
};

enum cmd { CMD_LOCK, CMD_UNLOCK, CMD_EXIT };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int turn, ack;			/* under lock */
static struct node *list;		/* the cond thread's work */
static int pipe_in[2], pipe_ack[2];
static unsigned long pipe_sum;		/* the pipe thread's work */
static pthread_mutex_t held;		/* error-checking */
static sem_t cmd_sem, done_sem, extra_sem;
static enum cmd cmd;
static int cmd_ret;
static atomic_int stop;
static atomic_ullong spin_steps;
static unsigned long long spin_state = 42;
static pid_t tid_cond, tid_pipe, tid_mutex, tid_spin, tid_extra;

static void *spinner(void *arg)
{
	(void)arg;
	tid_spin = gettid();
	while (!atomic_load(&stop)) {
		cap_rand(&spin_state);
		atomic_fetch_add(&spin_steps, 1);
		/* Slowly: main replays every step at the end. */
		for (int i = 0; i < 64; i++)
			__builtin_ia32_pause();
	}
	CHECK_INT(gettid(), tid_spin);
	return NULL;
}

static void *cond_thread(void *arg)
{
	int seen = 0;

	(void)arg;
	pthread_mutex_lock(&lock);
	tid_cond = gettid();
	for (;;) {
		struct node *n;

		while (turn == seen)
			pthread_cond_wait(&cond, &lock);
		CHECK_INT(gettid(), tid_cond);
		if (turn < 0)
			break;
		seen = turn;
		n = malloc(sizeof(*n));
		CHECK(n != NULL);
		n->turn = seen;
		cap_fill(n->pad, sizeof(n->pad), (unsigned)seen);
		n->next = list;
		list = n;
		ack = seen;
		pthread_cond_broadcast(&cond);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void *pipe_thread(void *arg)
{
	unsigned char c;
	ssize_t r;

	(void)arg;
	tid_pipe = gettid();
	while ((r = read(pipe_in[0], &c, 1)) == 1) {
		CHECK_INT(gettid(), tid_pipe);
		pipe_sum = pipe_sum * 31 + c;
		CHECK_INT(write(pipe_ack[1], &c, 1), 1);
	}
	if (r < 0)
		cap_fail(__FILE__, __LINE__, "read: %s", strerror(errno));
	return NULL;
}

static void *mutex_thread(void *arg)
{
	(void)arg;
	tid_mutex = gettid();
	for (;;) {
		while (sem_wait(&cmd_sem) == -1)
			CHECK_INT(errno, EINTR);
		CHECK_INT(gettid(), tid_mutex);
		if (cmd == CMD_EXIT)
			break;
		cmd_ret = cmd == CMD_LOCK ? pthread_mutex_lock(&held) :
					    pthread_mutex_unlock(&held);
		sem_post(&done_sem);
	}
	return NULL;
}

static void *extra_thread(void *arg)
{
	(void)arg;
	tid_extra = gettid();
	while (sem_wait(&extra_sem) == -1)
		CHECK_INT(errno, EINTR);
	CHECK_INT(gettid(), tid_extra);
	return (void *)(intptr_t)tid_extra;
}

/* Is /proc/self this process (and not one of another PID namespace)? */
static int proc_is_ours(void)
{
	char buf[32], want[32];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

	if (n < 0)
		return 0;
	buf[n] = '\0';
	snprintf(want, sizeof(want), "%d", getpid());
	return strcmp(buf, want) == 0;
}

/*
 * Wait until thread tid is blocked in syscall nr (/proc/self/task/TID/syscall).
 * Where /proc is not this process's (threads-proc fails then), go on without
 * waiting: the checkpoint may find the thread a few instructions short of
 * its wait, which this test accepts too.
 */
static void wait_in_syscall(pid_t tid, long nr)
{
	static int warned;

	if (!proc_is_ours()) {
		if (!warned++)
			fprintf(stderr, "note: /proc/self is not this process; "
				"not waiting for threads to block\n");
		return;
	}
	cap_wait_in_syscall(tid, nr, WAIT_MS);
}

static void mutex_cmd(enum cmd c)
{
	cmd = c;
	sem_post(&cmd_sem);
	cap_sem_wait(&done_sem, WAIT_MS, "the mutex thread");
	CHECK_INT(cmd_ret, 0);
}

static void wait_spin_progress(void)
{
	unsigned long long base = atomic_load(&spin_steps);
	int i = 0;

	while (atomic_load(&spin_steps) < base + 1000 && i++ < WAIT_MS)
		cap_msleep(1);
	if (atomic_load(&spin_steps) < base + 1000)
		cap_fail(__FILE__, __LINE__, "the computing thread stopped");
}

int main(void)
{
	pthread_t th_spin, th_cond, th_pipe, th_mutex, th_extra;
	pthread_mutexattr_t a;
	pid_t pid = getpid();
	unsigned long long expect;

	CHECK_INT(pthread_mutexattr_init(&a), 0);
	CHECK_INT(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK), 0);
	CHECK_INT(pthread_mutex_init(&held, &a), 0);
	CHECK_SYS(pipe(pipe_in));
	CHECK_SYS(pipe(pipe_ack));
	CHECK_SYS(sem_init(&cmd_sem, 0, 0));
	CHECK_SYS(sem_init(&done_sem, 0, 0));
	CHECK_SYS(sem_init(&extra_sem, 0, 0));
	CHECK_INT(pthread_create(&th_spin, NULL, spinner, NULL), 0);
	CHECK_INT(pthread_create(&th_cond, NULL, cond_thread, NULL), 0);
	CHECK_INT(pthread_create(&th_pipe, NULL, pipe_thread, NULL), 0);
	CHECK_INT(pthread_create(&th_mutex, NULL, mutex_thread, NULL), 0);
	cap_wait_tid(&tid_spin, WAIT_MS);
	cap_wait_tid(&tid_cond, WAIT_MS);
	cap_wait_tid(&tid_pipe, WAIT_MS);
	cap_wait_tid(&tid_mutex, WAIT_MS);

	for (int k = 1; k <= STEPS; k++) {
		unsigned char c = (unsigned char)(k * 7);
		int nodes = 0;

		pthread_mutex_lock(&lock);
		turn = k;
		pthread_cond_broadcast(&cond);
		while (ack != k)
			pthread_cond_wait(&cond, &lock);
		pthread_mutex_unlock(&lock);
		CHECK_INT(write(pipe_in[1], &c, 1), 1);
		CHECK_INT(read(pipe_ack[0], &c, 1), 1);
		CHECK_INT(c, (unsigned char)(k * 7));
		mutex_cmd(k % 2 ? CMD_LOCK : CMD_UNLOCK);
		if (k == 4) {
			CHECK_INT(pthread_create(&th_extra, NULL, extra_thread,
						 NULL), 0);
			cap_wait_tid(&tid_extra, WAIT_MS);
		}
		if (k == 8) {
			void *ret;

			sem_post(&extra_sem);
			CHECK_INT(pthread_join(th_extra, &ret), 0);
			CHECK_INT((pid_t)(intptr_t)ret, tid_extra);
			printf("step %d: the extra thread joined\n", k);
		}
		/* Everyone quiet but the computing thread. */
		wait_in_syscall(tid_cond, SYS_futex);
		wait_in_syscall(tid_pipe, SYS_read);
		wait_in_syscall(tid_mutex, SYS_futex);
		if (k >= 4 && k < 8)
			wait_in_syscall(tid_extra, SYS_futex);
		wait_spin_progress();
		for (struct node *n = list; n; n = n->next)
			nodes++;
		printf("step %d: %d nodes, pipe sum %lx, mutex %s%s\n", k,
		       nodes, pipe_sum, k % 2 ? "held" : "free",
		       k >= 4 && k < 8 ? ", extra thread alive" : "");

		cap_sync();

		CHECK_INT(getpid(), pid);
		CHECK_INT(gettid(), pid);
		if (k % 2) {
			CHECK_INT(pthread_mutex_trylock(&held), EBUSY);
			CHECK_INT(pthread_mutex_unlock(&held), EPERM);
		} else {
			CHECK_INT(pthread_mutex_trylock(&held), 0);
			CHECK_INT(pthread_mutex_unlock(&held), 0);
		}
		nodes = k + 1;
		for (struct node *n = list; n; n = n->next) {
			CHECK_INT(n->turn, --nodes);
			CHECK_FILL(n->pad, sizeof(n->pad), (unsigned)n->turn);
		}
		CHECK_INT(nodes, 1);
		wait_spin_progress();
		printf("step %d checked\n", k);
	}

	pthread_mutex_lock(&lock);
	turn = -1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	CHECK_SYS(close(pipe_in[1]));
	cmd = CMD_EXIT;
	sem_post(&cmd_sem);
	atomic_store(&stop, 1);
	CHECK_INT(pthread_join(th_cond, NULL), 0);
	CHECK_INT(pthread_join(th_pipe, NULL), 0);
	CHECK_INT(pthread_join(th_mutex, NULL), 0);
	CHECK_INT(pthread_join(th_spin, NULL), 0);
	expect = 42;
	for (unsigned long long i = 0; i < atomic_load(&spin_steps); i++)
		cap_rand(&expect);
	CHECK_INT(spin_state, expect);
	printf("all joined; the computing thread's state replays\n");
	return 0;
}
