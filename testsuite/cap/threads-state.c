/* Per-thread kernel state survives in every thread: its name, its FS base (pthread_self(), __thread variables at the same addresses with the same values), its robust list head, its clear-child-tid address (which holds its own TID), and its rseq registration at the same address, kept up to date by the kernel. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

#include "cap.h"
#include "cap-threads.h"

#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif

#define WAIT_MS 20000		/* give up on an event after 20 s */
#define NTHREADS 3

struct thr {
	int idx;			/* 1..NTHREADS; main is 0 */
	pthread_t th;
	pid_t tid;
	char name[16];
	unsigned long fs;		/* ARCH_GET_FS */
	void *tls_addr;
	void *robust_head;
	size_t robust_len;
	void *tid_addr;			/* PR_GET_TID_ADDRESS */
	void *rseq;			/* NULL: glibc registered none */
	unsigned rseq_len;		/* the length that gives EBUSY */
	sem_t go, done;
};

static struct thr thr[NTHREADS + 1];
static __thread int tls_value = 5;
static __thread char tls_fill[512];
static __thread unsigned long tls_zero[64];

static struct rseq *rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() +
			       __rseq_offset);
}

/* The rseq cpu_id follows the thread to every CPU it may run on. */
static void check_rseq_cpus(struct thr *t)
{
	cpu_set_t allowed, one;
	int n = 0;

	CHECK_SYS(sched_getaffinity(0, sizeof(allowed), &allowed));
	for (int c = 0; c < CPU_SETSIZE; c++) {
		unsigned cpu;

		if (!CPU_ISSET(c, &allowed))
			continue;
		CPU_ZERO(&one);
		CPU_SET(c, &one);
		CHECK_SYS(sched_setaffinity(0, sizeof(one), &one));
		CHECK_SYS(syscall(SYS_getcpu, &cpu, NULL, NULL));
		CHECK_INT(cpu, c);
		if (rseq_area()->cpu_id != (uint32_t)c)
			cap_fail(__FILE__, __LINE__, "thread %d on cpu %d: "
				 "rseq cpu_id %d", t->idx, c,
				 (int)rseq_area()->cpu_id);
		n++;
	}
	CHECK_SYS(sched_setaffinity(0, sizeof(allowed), &allowed));
	CHECK(n > 0);
}

/* In the thread itself: set its state up and note it. */
static void set_up(struct thr *t)
{
	unsigned long fs;

	t->tid = gettid();
	if (t->idx)
		snprintf(t->name, sizeof(t->name), "cap-thread-%d", t->idx);
	else
		snprintf(t->name, sizeof(t->name), "cap-main");
	CHECK_SYS(prctl(PR_SET_NAME, t->name));
	tls_value = 1000 + t->idx;
	cap_fill(tls_fill, sizeof(tls_fill), (unsigned)t->idx + 1);
	t->tls_addr = &tls_value;
	CHECK_SYS(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs));
	t->fs = fs;
	CHECK_INT(fs, (unsigned long)pthread_self());
	CHECK_SYS(syscall(SYS_get_robust_list, 0, &t->robust_head,
			  &t->robust_len));
	CHECK(t->robust_head != NULL);
	CHECK_SYS(prctl(PR_GET_TID_ADDRESS, &t->tid_addr));
	CHECK(t->tid_addr != NULL);
	CHECK_INT(*(pid_t *)t->tid_addr, t->tid);
	if (__rseq_size) {
		t->rseq = rseq_area();
		/* Registered already: EBUSY when asked again with the same
		 * length (see rseq.c). */
		for (unsigned l = __rseq_size; l <= 256 && !t->rseq_len;
		     l += 4) {
			CHECK_INT(syscall(SYS_rseq, t->rseq, l, 0, RSEQ_SIG),
				  -1);
			if (errno == EBUSY)
				t->rseq_len = l;
		}
		CHECK(t->rseq_len != 0);
		check_rseq_cpus(t);
	}
}

/* In the thread itself: the same state as set up. */
static void check_same(struct thr *t)
{
	char name[16] = "";
	unsigned long fs;
	void *head, *tid_addr;
	size_t len;

	CHECK_INT(gettid(), t->tid);
	CHECK_SYS(prctl(PR_GET_NAME, name));
	CHECK_STR(name, t->name);
	CHECK_SYS(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs));
	CHECK_INT(fs, t->fs);
	CHECK_INT((unsigned long)pthread_self(), t->fs);
	CHECK((void *)&tls_value == t->tls_addr);
	CHECK_INT(tls_value, 1000 + t->idx);
	CHECK_FILL(tls_fill, sizeof(tls_fill), (unsigned)t->idx + 1);
	for (int i = 0; i < 64; i++)
		CHECK_INT(tls_zero[i], 0);
	CHECK_SYS(syscall(SYS_get_robust_list, 0, &head, &len));
	CHECK(head == t->robust_head);
	CHECK_INT(len, t->robust_len);
	CHECK_SYS(prctl(PR_GET_TID_ADDRESS, &tid_addr));
	CHECK(tid_addr == t->tid_addr);
	CHECK_INT(*(pid_t *)tid_addr, t->tid);
	if (t->rseq) {
		long r;

		CHECK(rseq_area() == t->rseq);
		r = syscall(SYS_rseq, t->rseq, t->rseq_len, 0, RSEQ_SIG);
		if (r == 0)
			cap_fail(__FILE__, __LINE__, "thread %d: rseq was not "
				 "registered after the sync (registering it "
				 "again succeeded)", t->idx);
		CHECK_INT(errno, EBUSY);
		check_rseq_cpus(t);
	}
}

static void *worker(void *arg)
{
	struct thr *t = arg;

	set_up(t);
	sem_post(&t->done);
	while (sem_wait(&t->go) == -1)
		CHECK_INT(errno, EINTR);
	check_same(t);
	sem_post(&t->done);
	return NULL;
}

int main(void)
{
	thr[0].th = pthread_self();
	set_up(&thr[0]);
	for (int i = 1; i <= NTHREADS; i++) {
		struct thr *t = &thr[i];

		t->idx = i;
		CHECK_SYS(sem_init(&t->go, 0, 0));
		CHECK_SYS(sem_init(&t->done, 0, 0));
		CHECK_INT(pthread_create(&t->th, NULL, worker, t), 0);
		cap_sem_wait(&t->done, WAIT_MS, "thread %d, set-up", i);
		CHECK(t->fs != thr[0].fs && t->tls_addr != thr[0].tls_addr);
		CHECK(t->robust_head != thr[0].robust_head);
		CHECK(t->tid_addr != thr[0].tid_addr);
		cap_wait_in_syscall(t->tid, SYS_futex, WAIT_MS);
	}
	printf("%d threads and main: names, TLS, robust lists, tid addresses, "
	       "rseq set up\n", NTHREADS);

	cap_sync();

	check_same(&thr[0]);
	printf("main: same\n");
	for (int i = 1; i <= NTHREADS; i++) {
		sem_post(&thr[i].go);
		cap_sem_wait(&thr[i].done, WAIT_MS, "thread %d, checks", i);
		CHECK_INT(pthread_join(thr[i].th, NULL), 0);
		printf("thread %d: same name, FS base, TLS, robust list, "
		       "tid address, rseq\n", i);
	}
	return 0;
}
