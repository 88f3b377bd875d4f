/* Locks held at the checkpoint stay held by the same thread: error-checking, recursive, robust and priority-inheritance mutexes and a write-locked rwlock are busy after the resume, another thread cannot unlock them (EPERM), their owner can; the threads blocked waiting for them get them; a robust mutex whose owner exits after the resume gives EOWNERDEAD. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <time.h>

#include "cap.h"
#include "cap-threads.h"

#define WAIT_MS 20000		/* give up on an event after 20 s */

static pthread_mutex_t m_err, m_rec, m_rob, m_pi, m_norm, m_dead;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static sem_t held, release, dead_held, dead_exit;

/* What the holder's unlocks returned, in order. */
enum { U_ERR, U_REC1, U_REC2, U_ROB, U_PI, U_NORM, U_RW, U_N };
static int unlock_ret[U_N];
static const char *const unlock_name[U_N] = {
	"errorcheck", "recursive (1)", "recursive (2)", "robust",
	"priority-inheritance", "normal", "rwlock",
};

/* A waiter blocked in a lock call at the sync. */
struct waiter {
	const char *name;
	pthread_mutex_t *m;		/* NULL: read-lock rw */
	pthread_t th;
	volatile pid_t tid;
	int ret;			/* what the lock call returned */
};

static struct waiter waiters[] = {
	{ "normal", &m_norm, 0, 0, -1 },
	{ "robust", &m_rob, 0, 0, -1 },
	{ "priority-inheritance", &m_pi, 0, 0, -1 },
	{ "rwlock (read)", NULL, 0, 0, -1 },
};
#define NWAITERS (int)(sizeof(waiters) / sizeof(waiters[0]))

static void init_mutex(pthread_mutex_t *m, int type, int robust, int pi)
{
	pthread_mutexattr_t a;

	CHECK_INT(pthread_mutexattr_init(&a), 0);
	CHECK_INT(pthread_mutexattr_settype(&a, type), 0);
	if (robust)
		CHECK_INT(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST),
			  0);
	if (pi)
		CHECK_INT(pthread_mutexattr_setprotocol(&a,
							PTHREAD_PRIO_INHERIT),
			  0);
	CHECK_INT(pthread_mutex_init(m, &a), 0);
	pthread_mutexattr_destroy(&a);
}

/* Holds every lock across the sync, releases them when told. */
static void *holder(void *arg)
{
	(void)arg;
	CHECK_INT(pthread_mutex_lock(&m_err), 0);
	CHECK_INT(pthread_mutex_lock(&m_rec), 0);
	CHECK_INT(pthread_mutex_lock(&m_rec), 0);
	CHECK_INT(pthread_mutex_lock(&m_rob), 0);
	CHECK_INT(pthread_mutex_lock(&m_pi), 0);
	CHECK_INT(pthread_mutex_lock(&m_norm), 0);
	CHECK_INT(pthread_rwlock_wrlock(&rw), 0);
	sem_post(&held);
	while (sem_wait(&release) == -1)
		CHECK_INT(errno, EINTR);
	unlock_ret[U_ERR] = pthread_mutex_unlock(&m_err);
	unlock_ret[U_REC1] = pthread_mutex_unlock(&m_rec);
	unlock_ret[U_REC2] = pthread_mutex_unlock(&m_rec);
	unlock_ret[U_ROB] = pthread_mutex_unlock(&m_rob);
	unlock_ret[U_PI] = pthread_mutex_unlock(&m_pi);
	unlock_ret[U_NORM] = pthread_mutex_unlock(&m_norm);
	unlock_ret[U_RW] = pthread_rwlock_unlock(&rw);
	return NULL;
}

/* Blocks in a lock call until the holder lets go. */
static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->tid = gettid();
	if (w->m) {
		w->ret = pthread_mutex_lock(w->m);
		if (w->ret == 0)
			pthread_mutex_unlock(w->m);
	} else {
		w->ret = pthread_rwlock_rdlock(&rw);
		if (w->ret == 0)
			pthread_rwlock_unlock(&rw);
	}
	return NULL;
}

/* Holds m_dead across the sync, then exits without unlocking it. */
static void *dies_holding(void *arg)
{
	(void)arg;
	CHECK_INT(pthread_mutex_lock(&m_dead), 0);
	sem_post(&dead_held);
	while (sem_wait(&dead_exit) == -1)
		CHECK_INT(errno, EINTR);
	return NULL;
}

/* From main, which owns none of them: busy, and not ours to unlock. */
static void check_held(void)
{
	CHECK_INT(pthread_mutex_trylock(&m_err), EBUSY);
	CHECK_INT(pthread_mutex_trylock(&m_rec), EBUSY);
	CHECK_INT(pthread_mutex_trylock(&m_rob), EBUSY);
	CHECK_INT(pthread_mutex_trylock(&m_pi), EBUSY);
	CHECK_INT(pthread_mutex_trylock(&m_norm), EBUSY);
	CHECK_INT(pthread_mutex_trylock(&m_dead), EBUSY);
	CHECK_INT(pthread_rwlock_tryrdlock(&rw), EBUSY);
	CHECK_INT(pthread_rwlock_trywrlock(&rw), EBUSY);
	CHECK_INT(pthread_mutex_unlock(&m_err), EPERM);
	CHECK_INT(pthread_mutex_unlock(&m_rec), EPERM);
	CHECK_INT(pthread_mutex_unlock(&m_rob), EPERM);
	CHECK_INT(pthread_mutex_unlock(&m_pi), EPERM);
	CHECK_INT(pthread_mutex_unlock(&m_dead), EPERM);
}

int main(void)
{
	pthread_t hold, dead;
	struct timespec dl;
	int r;

	init_mutex(&m_err, PTHREAD_MUTEX_ERRORCHECK, 0, 0);
	init_mutex(&m_rec, PTHREAD_MUTEX_RECURSIVE, 0, 0);
	init_mutex(&m_rob, PTHREAD_MUTEX_ERRORCHECK, 1, 0);
	/* Error-checking too: glibc checks the owner of a PI mutex only
	 * then, and the kernel checks it in FUTEX_UNLOCK_PI. */
	init_mutex(&m_pi, PTHREAD_MUTEX_ERRORCHECK, 0, 1);
	init_mutex(&m_norm, PTHREAD_MUTEX_NORMAL, 0, 0);
	init_mutex(&m_dead, PTHREAD_MUTEX_NORMAL, 1, 0);
	CHECK_SYS(sem_init(&held, 0, 0));
	CHECK_SYS(sem_init(&release, 0, 0));
	CHECK_SYS(sem_init(&dead_held, 0, 0));
	CHECK_SYS(sem_init(&dead_exit, 0, 0));

	CHECK_INT(pthread_create(&hold, NULL, holder, NULL), 0);
	cap_sem_wait(&held, WAIT_MS, "waiting for the holder to lock");
	CHECK_INT(pthread_create(&dead, NULL, dies_holding, NULL), 0);
	cap_sem_wait(&dead_held, WAIT_MS,
		     "waiting for the robust owner to lock");
	for (int i = 0; i < NWAITERS; i++) {
		CHECK_INT(pthread_create(&waiters[i].th, NULL, waiter_main,
					 &waiters[i]), 0);
		cap_wait_tid(&waiters[i].tid, WAIT_MS);
		/* Every kind of wait is a futex: FUTEX_WAIT, FUTEX_LOCK_PI. */
		cap_wait_in_syscall(waiters[i].tid, SYS_futex, WAIT_MS);
	}
	check_held();
	printf("locks held, %d threads waiting for them\n", NWAITERS);

	cap_sync();

	check_held();
	printf("after the sync: still held, not ours to unlock\n");
	sem_post(&release);
	cap_join(hold, NULL, WAIT_MS, "joining the holder thread");
	for (int i = 0; i < U_N; i++) {
		if (unlock_ret[i])
			cap_fail(__FILE__, __LINE__,
				 "the holder's unlock of the %s lock: %s",
				 unlock_name[i], strerror(unlock_ret[i]));
	}
	printf("the holder unlocked all of them\n");
	for (int i = 0; i < NWAITERS; i++) {
		cap_join(waiters[i].th, NULL, WAIT_MS, "joining the %s thread",
			 waiters[i].name);
		if (waiters[i].ret)
			cap_fail(__FILE__, __LINE__,
				 "the waiter for the %s lock: %s",
				 waiters[i].name, strerror(waiters[i].ret));
		printf("waiter for the %s lock: got it\n", waiters[i].name);
	}
	CHECK_INT(pthread_mutex_lock(&m_err), 0);
	CHECK_INT(pthread_mutex_lock(&m_err), EDEADLK);
	CHECK_INT(pthread_mutex_unlock(&m_err), 0);
	CHECK_INT(pthread_mutex_lock(&m_pi), 0);
	CHECK_INT(pthread_mutex_unlock(&m_pi), 0);
	CHECK_INT(pthread_mutex_lock(&m_rob), 0);
	CHECK_INT(pthread_mutex_unlock(&m_rob), 0);
	CHECK_INT(pthread_rwlock_wrlock(&rw), 0);
	CHECK_INT(pthread_rwlock_unlock(&rw), 0);
	printf("main locks and unlocks them\n");

	/* The kernel marks a robust mutex owner-dead at the owner's exit
	 * only if the owner TID in it is the exiting thread's, and only if
	 * it finds it through the thread's robust list. */
	sem_post(&dead_exit);
	cap_join(dead, NULL, WAIT_MS, "joining the robust owner thread");
	cap_deadline(&dl, WAIT_MS);
	r = pthread_mutex_timedlock(&m_dead, &dl);
	if (r != EOWNERDEAD)
		cap_fail(__FILE__, __LINE__, "locking the robust mutex of an "
			 "exited owner: expected EOWNERDEAD, found %s",
			 r ? strerror(r) : "success");
	CHECK_INT(pthread_mutex_consistent(&m_dead), 0);
	CHECK_INT(pthread_mutex_unlock(&m_dead), 0);
	printf("robust mutex of an exited owner: EOWNERDEAD\n");
	return 0;
}
