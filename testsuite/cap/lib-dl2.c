/* A shared library the dlopen test opens after the resume only. */
#include <string.h>

static char greeting[32] = "second library";

const char *cap_dl2_hello(void);
const char *cap_dl2_hello(void)
{
	return greeting;
}

size_t cap_dl2_len(const char *s);
size_t cap_dl2_len(const char *s)
{
	return strlen(s) + strlen(greeting);
}
