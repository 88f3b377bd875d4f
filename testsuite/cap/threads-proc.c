/* A resumed threaded program sees itself in /proc by the IDs it has: /proc/self and /proc/thread-self name the PID and TIDs that getpid() and gettid() give, /proc/self/stat, status and task/TID/stat show them, /proc/self/task lists exactly its threads, and glibc's pthread_getname_np and pthread_setname_np on another thread (through /proc/self/task/TID/comm) work. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/prctl.h>

#include "cap.h"
#include "cap-threads.h"

#define NTHREADS 3
#define WAIT_MS 20000		/* give up on an event after 20 s */

struct thr {
	int idx;
	pthread_t th;
	pid_t tid;
	char name[16];
	sem_t go, done;
};

static struct thr thr[NTHREADS];

static void read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		cap_fail(__FILE__, __LINE__, "open %s: %s", path,
			 strerror(errno));
	n = read(fd, buf, size - 1);
	if (n < 0)
		cap_fail(__FILE__, __LINE__, "read %s: %s", path,
			 strerror(errno));
	buf[n] = '\0';
	close(fd);
}

static void check_link(const char *path, const char *want)
{
	char buf[256];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);

	if (n < 0)
		cap_fail(__FILE__, __LINE__, "readlink %s: %s", path,
			 strerror(errno));
	buf[n] = '\0';
	if (strcmp(buf, want) != 0)
		cap_fail(__FILE__, __LINE__, "%s -> \"%s\", expected \"%s\" "
			 "(is /proc that of another PID namespace?)", path,
			 buf, want);
}

/* A "Name:\tvalue" line of a status file. */
static long status_field(const char *text, const char *name)
{
	char key[32];
	const char *p;

	snprintf(key, sizeof(key), "\n%s:", name);
	p = strstr(text, key);
	CHECK(p != NULL);
	return atol(p + strlen(key));
}

/* In the calling thread: /proc/thread-self and its task entry. */
static void check_thread_self(void)
{
	char want[64], path[64], buf[4096];

	snprintf(want, sizeof(want), "%d/task/%d", getpid(), gettid());
	check_link("/proc/thread-self", want);
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", gettid());
	read_file(path, buf, sizeof(buf));
	CHECK_INT(atol(buf), gettid());
	read_file("/proc/thread-self/status", buf, sizeof(buf));
	CHECK_INT(status_field(buf, "Pid"), gettid());
	CHECK_INT(status_field(buf, "Tgid"), getpid());
}

/* In main: the process, its list of threads and their names. */
static void check_process(void)
{
	char want[32], buf[4096];
	int seen[NTHREADS] = { 0 }, n = 0, main_seen = 0;
	struct dirent *de;
	DIR *d;

	snprintf(want, sizeof(want), "%d", getpid());
	check_link("/proc/self", want);
	read_file("/proc/self/stat", buf, sizeof(buf));
	CHECK_INT(atol(buf), getpid());
	read_file("/proc/self/status", buf, sizeof(buf));
	CHECK_INT(status_field(buf, "Pid"), getpid());
	CHECK_INT(status_field(buf, "Tgid"), getpid());
	CHECK_INT(status_field(buf, "Threads"), NTHREADS + 1);
	d = opendir("/proc/self/task");
	CHECK(d != NULL);
	while ((de = readdir(d))) {
		pid_t tid;
		int i;

		if (de->d_name[0] == '.')
			continue;
		tid = atoi(de->d_name);
		n++;
		if (tid == getpid()) {
			main_seen++;
			continue;
		}
		for (i = 0; i < NTHREADS && thr[i].tid != tid; i++)
			;
		if (i == NTHREADS)
			cap_fail(__FILE__, __LINE__, "/proc/self/task lists %d, "
				 "not a thread of ours", tid);
		seen[i]++;
	}
	closedir(d);
	CHECK_INT(n, NTHREADS + 1);
	CHECK_INT(main_seen, 1);
	for (int i = 0; i < NTHREADS; i++)
		CHECK_INT(seen[i], 1);
	for (int i = 0; i < NTHREADS; i++) {
		char name[16];

		CHECK_INT(pthread_getname_np(thr[i].th, name, sizeof(name)),
			  0);
		CHECK_STR(name, thr[i].name);
	}
	check_thread_self();
}

static void *worker(void *arg)
{
	struct thr *t = arg;
	char name[16] = "";

	t->tid = gettid();
	snprintf(t->name, sizeof(t->name), "cap-proc-%d", t->idx);
	CHECK_INT(pthread_setname_np(pthread_self(), t->name), 0);
	check_thread_self();
	sem_post(&t->done);
	while (sem_wait(&t->go) == -1)
		CHECK_INT(errno, EINTR);
	/* main has renamed us meanwhile. */
	check_thread_self();
	CHECK_SYS(prctl(PR_GET_NAME, name));
	CHECK_STR(name, t->name);
	sem_post(&t->done);
	return NULL;
}

int main(void)
{
	for (int i = 0; i < NTHREADS; i++) {
		thr[i].idx = i;
		CHECK_SYS(sem_init(&thr[i].go, 0, 0));
		CHECK_SYS(sem_init(&thr[i].done, 0, 0));
		CHECK_INT(pthread_create(&thr[i].th, NULL, worker, &thr[i]), 0);
		cap_sem_wait(&thr[i].done, WAIT_MS, "thread %d", i);
	}
	check_process();
	printf("%d threads: /proc shows them\n", NTHREADS);

	cap_sync();

	check_process();
	printf("/proc/self, /proc/thread-self, task list, names: same\n");
	for (int i = 0; i < NTHREADS; i++) {
		snprintf(thr[i].name, sizeof(thr[i].name), "renamed-%d", i);
		CHECK_INT(pthread_setname_np(thr[i].th, thr[i].name), 0);
		sem_post(&thr[i].go);
		cap_sem_wait(&thr[i].done, WAIT_MS, "thread %d", i);
		CHECK_INT(pthread_join(thr[i].th, NULL), 0);
	}
	printf("pthread_setname_np on other threads: seen by them\n");
	return 0;
}
