/* Shared libraries survive: one linked at start-up and one dlopen'ed before the sync still run after it, and a further dlopen works. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>

#include "cap.h"

int cap_start_next(void);
extern int cap_start_counter;

int main(void)
{
	char exe[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + 64];
	long (*step)(long);
	const char *(*hello)(void);
	size_t (*len)(const char *);
	void *h1, *h2;
	long expect[3];
	ssize_t n;
	volatile double x = 2.0;

	/* The libraries are next to the program: find them before the sync. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CHECK_SYS(n);
	exe[n] = '\0';
	snprintf(dir, sizeof(dir), "%s", dirname(exe));

	printf("start: %d\n", cap_start_next());
	printf("start: %d\n", cap_start_next());
	snprintf(path, sizeof(path), "%s/libcap-dl1.so", dir);
	h1 = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h1)
		cap_fail(__FILE__, __LINE__, "dlopen: %s", dlerror());
	step = (long (*)(long))dlsym(h1, "cap_dl1_step");
	CHECK(step != NULL);
	printf("dl1: %ld\n", step(1));
	printf("libm: %.6f\n", sqrt(x));

	cap_sync();

	printf("start: %d\n", cap_start_next());
	printf("start counter: %d\n", cap_start_counter);
	printf("dl1: %ld\n", step(10));
	CHECK(dlsym(h1, "cap_dl1_step") == (void *)step);
	for (int i = 0; i < 3; i++)
		expect[i] = step(i);
	printf("dl1: %ld %ld %ld\n", expect[0], expect[1], expect[2]);
	printf("libm: %.6f\n", sqrt(x * 8));

	snprintf(path, sizeof(path), "%s/libcap-dl2.so", dir);
	h2 = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (!h2)
		cap_fail(__FILE__, __LINE__, "dlopen after resume: %s",
			 dlerror());
	hello = (const char *(*)(void))dlsym(h2, "cap_dl2_hello");
	len = (size_t (*)(const char *))dlsym(h2, "cap_dl2_len");
	CHECK(hello != NULL && len != NULL);
	printf("dl2: %s %zu\n", hello(), len("abc"));
	CHECK_INT(dlclose(h2), 0);
	CHECK_INT(dlclose(h1), 0);
	/* Opening it again gives a fresh copy of its data. */
	snprintf(path, sizeof(path), "%s/libcap-dl1.so", dir);
	h1 = dlopen(path, RTLD_NOW);
	if (!h1)
		cap_fail(__FILE__, __LINE__, "dlopen again: %s", dlerror());
	step = (long (*)(long))dlsym(h1, "cap_dl1_step");
	printf("dl1 again: %ld\n", step(1));
	return 0;
}
