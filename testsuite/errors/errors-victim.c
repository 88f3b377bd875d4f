/*
 * The program the error tests checkpoint (or try to): sets up one kind of
 * state, says "ready MODE" on stdout, waits for a line "go" on stdin (read
 * byte by byte: nothing is read ahead), then checks that the state still
 * works and says so on stdout.
 *
 *   errors-victim MODE [FILE]
 *
 * Modes: plain, mmap FILE (a read-only private mapping of FILE), write FILE
 * (FILE open for writing), listen FILE (a Unix socket listening at FILE,
 * left behind at the end), and what esky refuses: socket
 * (a Unix socket connected to another process), pipe (its read end alone),
 * inotify (watching a directory esky does not search), timer (a POSIX
 * timer).
 *
 * VARIANT (a string of 9 characters, set by the build) tells the two
 * builds apart: same code and layout, different bytes, different build-id.
 * Exit status: 0, or 1 with a line on stderr if the state is broken.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef VARIANT
#define VARIANT "variant-a"
#endif

static const char variant[] = VARIANT;

#define DIE(...)                                                           \
	do {                                                               \
		fprintf(stderr, "errors-victim: %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                              \
		fputc('\n', stderr);                                       \
		exit(1);                                                   \
	} while (0)

static void wait_go(void)
{
	char line[16];
	size_t n = 0;

	fflush(stdout);
	for (;;) {
		char c;
		ssize_t r = read(0, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			DIE("stdin closed before \"go\"");
		if (c == '\n')
			break;
		if (n < sizeof(line) - 1)
			line[n++] = c;
	}
	line[n] = '\0';
	if (strcmp(line, "go"))
		DIE("expected \"go\", found \"%s\"", line);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "plain";
	const char *file = argc > 2 ? argv[2] : NULL;
	char buf[256];
	int fds[2], fd = -1;
	pid_t child = -1;
	char *map = NULL;
	size_t map_len = 0;
	ssize_t n;

	/* esky checkpoint PID attaches from outside: allow it under Yama ptrace_scope 1 */
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	if (!strcmp(mode, "plain")) {
		printf("ready plain %s\n", variant);
		wait_go();
		printf("go plain %s\n", variant);
	} else if (!strcmp(mode, "mmap") && file) {
		struct stat st;

		fd = open(file, O_RDONLY);
		if (fd < 0 || fstat(fd, &st) < 0)
			DIE("%s: %s", file, strerror(errno));
		map_len = (size_t)st.st_size;
		map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED)
			DIE("mmap %s: %s", file, strerror(errno));
		close(fd);
		printf("ready mmap %.*s\n", (int)strcspn(map, "\n"), map);
		wait_go();
		printf("go mmap %.*s\n", (int)strcspn(map, "\n"), map);
	} else if (!strcmp(mode, "write") && file) {
		fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, "before\n", 7) != 7)
			DIE("%s: %s", file, strerror(errno));
		printf("ready write\n");
		wait_go();
		if (write(fd, "after\n", 6) != 6)
			DIE("write %s: %s", file, strerror(errno));
		printf("go write at %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
	} else if (!strcmp(mode, "socket")) {
		int status;

		/*
		 * The other end lives in another process (a grandchild whose
		 * parent exited: outside the program's tree), which says hello
		 * and waits for the end of the connection.
		 */
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
			DIE("socketpair: %s", strerror(errno));
		fflush(stdout);
		child = fork();
		if (child < 0)
			DIE("fork: %s", strerror(errno));
		if (child == 0) {
			if (fork() == 0) {
				int null = open("/dev/null", O_RDWR);

				dup2(null, 0);
				dup2(null, 1);
				dup2(null, 2);
				close(fds[0]);
				if (write(fds[1], "hello", 5) == 5)
					while (read(fds[1], buf, sizeof(buf)) > 0)
						;
			}
			_exit(0);
		}
		close(fds[1]);
		if (waitpid(child, &status, 0) != child)
			DIE("waitpid: %s", strerror(errno));
		printf("ready socket\n");
		wait_go();
		n = read(fds[0], buf, sizeof(buf));
		printf("go socket %.*s\n", (int)(n > 0 ? n : 0), buf);
	} else if (!strcmp(mode, "pipe")) {
		/* The read end alone: the writer could be anyone (esky cannot tell). */
		if (pipe(fds) < 0 || write(fds[1], "in the pipe", 11) != 11 || close(fds[1]) < 0)
			DIE("pipe: %s", strerror(errno));
		printf("ready pipe\n");
		wait_go();
		n = read(fds[0], buf, sizeof(buf));
		printf("go pipe %.*s\n", (int)(n > 0 ? n : 0), buf);
	} else if (!strcmp(mode, "inotify")) {
		/* A directory where esky does not look for watched paths. */
		char dir[] = "/var/tmp/esky-victim-XXXXXX";

		fd = inotify_init1(0);
		if (fd < 0 || !mkdtemp(dir) || inotify_add_watch(fd, dir, IN_CREATE) < 0)
			DIE("inotify: %s", strerror(errno));
		printf("ready inotify\n");
		wait_go();
		printf("go inotify %d\n", fcntl(fd, F_GETFD) >= 0);
		rmdir(dir);
	} else if (!strcmp(mode, "timer")) {
		struct sigevent sev = { .sigev_notify = SIGEV_NONE };
		struct itimerspec its = { .it_value = { .tv_sec = 1000 } };
		timer_t tid;

		if (timer_create(CLOCK_MONOTONIC, &sev, &tid) < 0 || timer_settime(tid, 0, &its, NULL) < 0)
			DIE("timer_create: %s", strerror(errno));
		printf("ready timer\n");
		wait_go();
		if (timer_gettime(tid, &its) < 0 || its.it_value.tv_sec == 0)
			DIE("timer_gettime: %s", strerror(errno));
		printf("go timer armed\n");
	} else if (!strcmp(mode, "listen") && file) {
		/* A server: listening at FILE, which it leaves behind (as a crash would). */
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int c;

		snprintf(a.sun_path, sizeof(a.sun_path), "%s", file);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0)
			DIE("%s: %s", file, strerror(errno));
		printf("ready listen\n");
		wait_go();
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    accept(fd, NULL, NULL) < 0)
			DIE("connect to %s: %s", file, strerror(errno));
		printf("go listen accepted\n");
	} else {
		DIE("usage: errors-victim plain|mmap FILE|write FILE|listen FILE|socket|pipe|"
		    "inotify|timer");
	}
	printf("done %s\n", mode);
	return 0;
}
