/*
 * Linked into the test drivers of an ESKY_SANITIZE build (esky-testrun,
 * errors_test): LeakSanitizer off for them, AddressSanitizer and UBSan on.
 * A driver runs one test and exits, and leaves by die() from anywhere; what
 * it has not freed is freed by its exit, not a leak of esky's. esky,
 * esky-shell, libesky and the unit tests keep the leak check.
 */
const char *__lsan_default_options(void);

/* Read by LeakSanitizer at start-up, before LSAN_OPTIONS (which wins). */
const char *__lsan_default_options(void)
{
	return "detect_leaks=0";
}
