/* The fuzz drivers' crash and hang guard, see fuzz_guard.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_guard.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#define CASE_TIMEOUT 10 /* seconds: a case that runs longer hangs */

static const char *driver_name = "fuzz_driver";
static int err_fd = 2;
/* The input being run, saved by the crash handlers. */
static const uint8_t *cur_data;
static size_t cur_size;
static char crash_path[512];

static void say(const char *s)
{
	if (write(err_fd, s, strlen(s)) < 0)
		return;
}

/* Async-signal-safe: save the current input and say where. */
static void save_input(void)
{
	int fd;

	if (!cur_data)
		return;
	fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	for (size_t done = 0; done < cur_size;) {
		ssize_t n = write(fd, cur_data + done, cur_size - done);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	say(driver_name);
	say(": the input is saved in ");
	say(crash_path);
	say("\n");
	cur_data = NULL;
}

static void on_fatal(int sig)
{
	if (sig == SIGALRM) {
		say(driver_name);
		say(": the target hangs (no result after 10 seconds)\n");
	}
	save_input();
	signal(sig == SIGALRM ? SIGABRT : sig, SIG_DFL);
	raise(sig == SIGALRM ? SIGABRT : sig);
}

#ifdef HAVE_ASAN
static void on_sanitizer_death(void)
{
	save_input();
}
#endif

void fuzz_guard_init(const char *driver, int fd)
{
	static const int sigs[] = { SIGABRT, SIGALRM,
#ifndef HAVE_ASAN
				    /* ASan reports these itself, then calls the death callback */
				    SIGSEGV, SIGBUS, SIGFPE, SIGILL,
#endif
	};

	driver_name = driver;
	err_fd = fd;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_fatal);
#ifdef HAVE_ASAN
	__sanitizer_set_death_callback(on_sanitizer_death);
	if (fd != 2)
		__sanitizer_set_report_fd((void *)(long)fd);
#endif
}

void fuzz_guard_run(int (*target)(const uint8_t *data, size_t size), const uint8_t *data,
		    size_t size, const char *path)
{
	snprintf(crash_path, sizeof(crash_path), "%s", path);
	cur_data = data;
	cur_size = size;
	alarm(CASE_TIMEOUT);
	target(data, size);
	alarm(0);
	cur_data = NULL;
}
