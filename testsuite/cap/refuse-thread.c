/* esky refuses to checkpoint a process with a second thread, says so on one line, writes no file, and the program carries on unharmed. */
#define _GNU_SOURCE
#include <pthread.h>

#include "cap.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int go, result;

static void *worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	while (!go)
		pthread_cond_wait(&cond, &lock);
	result = 42;
	pthread_mutex_unlock(&lock);
	return NULL;
}

int main(void)
{
	pthread_t t;

	CHECK_INT(pthread_create(&t, NULL, worker, NULL), 0);
	printf("thread started\n");

	cap_sync();

	pthread_mutex_lock(&lock);
	go = 1;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	CHECK_INT(pthread_join(t, NULL), 0);
	printf("thread joined: %d\n", result);
	return 0;
}
