/*
 * workers: three threads each call tick() three times; main joins them
 * and prints how many ticks it counted. For esky-shell's all-stop
 * (threads.esky): every one of the nine calls stops at `break tick`.
 */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

void tick(int who);

static int hits;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t all_made; /* main is in pthread_join before the first tick */

__attribute__((noinline)) void tick(int who)
{
	pthread_mutex_lock(&lock);
	hits++;
	pthread_mutex_unlock(&lock);
	(void)who;
}

static void *work(void *arg)
{
	pthread_barrier_wait(&all_made);
	usleep(20000);
	for (int k = 0; k < 3; k++) {
		tick((int)(long)arg);
		usleep(1000);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[3];

	pthread_barrier_init(&all_made, NULL, 4);
	for (long i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, work, (void *)i);
	pthread_barrier_wait(&all_made);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf("hits %d\n", hits);
	return 0;
}
