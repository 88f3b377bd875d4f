/*
 * What a text fuzz target (tree_fuzz.c: the store's tree file; shell_fuzz.c:
 * esky-shell's command lines, locations and expressions) shares with the
 * standalone driver that CTest runs (text_fuzz_driver.c, built once per
 * target). The image target has its own (image_fuzz.h): its inputs are
 * binary and checksummed, these are lines of text.
 */
#ifndef ESKY_TEXT_FUZZ_H
#define ESKY_TEXT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry point. Aborts when the code under test breaks its contract. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The target's name ("tree", "shell"): crash files and messages say it. */
extern const char text_fuzz_name[];
/* Valid inputs to start from, NULL-terminated. */
extern const char *const text_fuzz_seeds[];
/* Words the mutations insert (operators, keywords, numbers), NULL-terminated. */
extern const char *const text_fuzz_dict[];

/*
 * Where a target writes why it aborts: stderr (2) unless the driver has
 * sent stderr to /dev/null (the shell's messages) and kept a copy.
 */
extern int text_fuzz_err_fd;

#endif
