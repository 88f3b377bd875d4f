/* The executable survives (built dynamic/static x PIE/non-PIE): its code, data, bss, rodata, argv, environ, auxv and /proc/self/exe. */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/auxv.h>

#include "cap.h"

static const char rodata[] = "read-only data of the executable";
static int data[64] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static long bss[4096];

static int square(int x)
{
	return x * x;
}

static int (*volatile fn)(int) = square;

static unsigned long sum_data(void)
{
	unsigned long s = 0;

	for (int i = 0; i < 64; i++)
		s = s * 31 + (unsigned)data[i];
	for (int i = 0; i < 4096; i++)
		s = s * 31 + (unsigned long)bss[i];
	return s;
}

int main(int argc, char **argv)
{
	char exe[4096], exe2[4096];
	ssize_t n, n2;
	unsigned long sum, phdr, pagesz, entry;
	const char *env;
	char *argv0;
	void *main_addr = (void *)main;

	setenv("CAP_EXE_VAR", "value-of-the-variable", 1);
	for (int i = 8; i < 64; i++)
		data[i] = i * 7;
	for (int i = 0; i < 4096; i++)
		bss[i] = i ^ 0x5a5a;
	sum = sum_data();
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CHECK_SYS(n);
	exe[n] = '\0';
	phdr = getauxval(AT_PHDR);
	pagesz = getauxval(AT_PAGESZ);
	entry = getauxval(AT_ENTRY);
	argv0 = strdup(argv[0]);
	printf("argc %d\n", argc);
	printf("data sum %lx\n", sum);

	cap_sync();

	CHECK_INT(sum_data(), sum);
	CHECK_STR(rodata, "read-only data of the executable");
	CHECK_INT(fn(12), 144);
	CHECK((void *)main == main_addr);
	CHECK_STR(argv[0], argv0);
	env = getenv("CAP_EXE_VAR");
	CHECK(env != NULL);
	CHECK_STR(env, "value-of-the-variable");
	CHECK_INT(getauxval(AT_PHDR), phdr);
	CHECK_INT(getauxval(AT_PAGESZ), pagesz);
	CHECK_INT(getauxval(AT_ENTRY), entry);
	/* The argv area as the kernel shows it (mm's arg_start..arg_end). */
	{
		char buf[8192];
		FILE *f = fopen("/proc/self/cmdline", "r");
		size_t len;

		CHECK(f != NULL);
		len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		CHECK_STR(buf, argv0);
	}
	n2 = readlink("/proc/self/exe", exe2, sizeof(exe2) - 1);
	CHECK_SYS(n2);
	exe2[n2] = '\0';
	CHECK_STR(exe2, exe);
	for (int i = 0; i < 4096; i++)
		bss[i] += 1;
	printf("after: data sum %lx, fn %d\n", sum_data(), fn(7));
	return 0;
}
