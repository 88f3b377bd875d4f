/* A shared library linked at start-up by the dlopen test (rpath $ORIGIN). */
int cap_start_counter = 100;
static __thread int tls_calls;

int cap_start_next(void);
int cap_start_next(void)
{
	tls_calls++;
	return cap_start_counter++ + tls_calls * 1000;
}
