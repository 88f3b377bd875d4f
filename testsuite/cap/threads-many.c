/* Many threads working at the instant of the checkpoint all carry on: 32 threads step their own generators, allocate and free heap blocks (glibc's per-thread arenas and caches) and add to a counter under a shared mutex; after the resume every one of them makes progress, and each one's state, heap blocks and share of the counter replay exactly. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cap.h"
#include "cap-threads.h"

#define NTHREADS 32
#define RING 8			/* heap blocks a thread keeps */
#define WAIT_MS 30000		/* give up on an event after 30 s */

struct block {
	unsigned long long seed;
	size_t size;
	unsigned char data[];
};

struct worker {
	int idx;
	pthread_t th;
	pid_t tid;
	unsigned long long s;		/* generator state */
	unsigned long long contrib;	/* what it added to the counter */
	struct block *ring[RING];
	unsigned long long steps;	/* steps completed */
	atomic_ullong published;	/* the same, for main to watch */
};

static struct worker workers[NTHREADS];
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long counter;
static atomic_int stop;

static unsigned long long seed_of(int idx)
{
	return 0x9e3779b97f4a7c15ULL * (unsigned long long)(idx + 1);
}

/*
 * One step of thread w: advance the generator; every 16th step replace a
 * heap block; every 64th add to the shared counter. main replays it.
 */
static void step(struct worker *w, int replaying, unsigned long long *contrib)
{
	unsigned long long v = cap_rand(&w->s);
	unsigned long long n = w->steps + 1;

	if (n % 16 == 0 && !replaying) {
		struct block **slot = &w->ring[(n / 16) % RING];
		size_t size = 16 + (size_t)(v % 4000);
		struct block *b = malloc(sizeof(*b) + size);

		CHECK(b != NULL);
		b->seed = v;
		b->size = size;
		cap_fill(b->data, size, v);
		free(*slot);
		*slot = b;
	}
	if (n % 64 == 0) {
		if (!replaying) {
			pthread_mutex_lock(&counter_lock);
			counter += v & 0xffff;
			pthread_mutex_unlock(&counter_lock);
		}
		*contrib += v & 0xffff;
	}
	w->steps = n;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	w->tid = gettid();
	while (!atomic_load(&stop)) {
		step(w, 0, &w->contrib);
		atomic_store(&w->published, w->steps);
		/* Slowly: main replays every step at the end. */
		for (int i = 0; i < 16; i++)
			__builtin_ia32_pause();
		if (w->steps % 256 == 0)
			sched_yield();
	}
	return NULL;
}

/* Wait until every worker has published more than base[i] steps. */
static void wait_all_progress(const unsigned long long *base)
{
	for (int i = 0; i < NTHREADS; i++) {
		int t = 0;

		while (atomic_load(&workers[i].published) <= base[i] + 256 &&
		       t++ < WAIT_MS)
			cap_msleep(1);
		if (atomic_load(&workers[i].published) <= base[i] + 256)
			cap_fail(__FILE__, __LINE__, "thread %d made no "
				 "progress in %d ms", i, WAIT_MS);
	}
}

int main(void)
{
	unsigned long long base[NTHREADS] = { 0 }, total = 0;

	for (int i = 0; i < NTHREADS; i++) {
		workers[i].idx = i;
		workers[i].s = seed_of(i);
		CHECK_INT(pthread_create(&workers[i].th, NULL, worker_main,
					 &workers[i]), 0);
	}
	wait_all_progress(base);
	printf("%d threads working\n", NTHREADS);

	cap_sync();

	for (int i = 0; i < NTHREADS; i++)
		base[i] = atomic_load(&workers[i].published);
	wait_all_progress(base);
	printf("all %d made progress after the sync\n", NTHREADS);
	atomic_store(&stop, 1);
	for (int i = 0; i < NTHREADS; i++)
		cap_join(workers[i].th, NULL, WAIT_MS, "joining thread %d", i);

	for (int i = 0; i < NTHREADS; i++) {
		struct worker *w = &workers[i];
		struct worker r = { .idx = i, .s = seed_of(i) };
		unsigned long long contrib = 0;

		while (r.steps < w->steps)
			step(&r, 1, &contrib);
		CHECK_INT(r.s, w->s);
		CHECK_INT(contrib, w->contrib);
		total += contrib;
		for (int k = 0; k < RING; k++) {
			struct block *b = w->ring[k];

			if (!b)
				continue;
			CHECK(b->size >= 16 && b->size < 4016);
			CHECK_FILL(b->data, b->size, b->seed);
			free(b);
		}
	}
	printf("%d generator states and heap blocks: ok\n", NTHREADS);
	CHECK_INT(counter, total);
	printf("shared counter: ok\n");
	return 0;
}
