/* A shared library the dlopen test opens before the sync point. */
static int state = 7;
static __thread long tls_state = 3;	/* dynamic TLS of a dlopen'ed library */

long cap_dl1_step(long x);
long cap_dl1_step(long x)
{
	state = state * 3 + 1;
	tls_state += x;
	return state + tls_state;
}
