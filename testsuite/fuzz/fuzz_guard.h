/*
 * fuzz_guard: what the standalone fuzz drivers (image_fuzz_driver.c,
 * text_fuzz_driver.c) do when their target crashes or hangs: the input
 * being run is saved to a file named for it and the driver says where,
 * from the signal handler (async-signal-safe) or ASan's death callback.
 */
#ifndef ESKY_FUZZ_GUARD_H
#define ESKY_FUZZ_GUARD_H

#include <stddef.h>
#include <stdint.h>

/*
 * Catch crashes and hangs; messages start with driver (its name) and go
 * to fd (with ASan's reports, when it is not 2).
 */
void fuzz_guard_init(const char *driver, int fd);

/* Run target on one input, saved to crash_path if it crashes or runs 10 s. */
void fuzz_guard_run(int (*target)(const uint8_t *data, size_t size), const uint8_t *data,
		    size_t size, const char *crash_path);

#endif
