/*
 * Describing a checkpoint for people: what `esky info` prints.
 */
#ifndef ESKY_DESCRIBE_H
#define ESKY_DESCRIBE_H

#include <stdbool.h>
#include <stdio.h>

#include "image.h"

/*
 * Write a description of the image to out: program, when, size, parent,
 * registers, mappings, open files, signals, timers. With verbose, every
 * mapping and file is listed, else a summary line each.
 */
void esky_describe_image(const struct esky_image *img, bool verbose, FILE *out);

/* "rw-p"-style permissions of a mapping. */
const char *esky_describe_prot(uint32_t prot, bool shared, char buf[5]);

#endif
