/*
 * Small helpers shared by the modules of libesky: whole reads and writes
 * that survive EINTR and short counts, reading a small file into memory,
 * a growable byte buffer, and the atomic-file writer used for images.
 */
#ifndef ESKY_UTIL_H
#define ESKY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ESKY_PAGE_SIZE 4096UL
#define ESKY_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ESKY_ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))

/* write(2) all of buf; 0 or -errno. */
int esky_write_all(int fd, const void *buf, size_t len);
/* pwrite(2) all of buf at off; 0 or -errno. */
int esky_pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* pread(2) exactly len bytes at off; 0, -errno, or -EIO at end of file. */
int esky_pread_all(int fd, void *buf, size_t len, off_t off);

/*
 * Read a whole (small, usually /proc) file. *out is malloc'd and
 * NUL-terminated, *len (if non-NULL) excludes the NUL. 0 or -errno.
 */
int esky_read_file(const char *path, char **out, size_t *len);
/* Same, relative to a directory fd. */
int esky_read_file_at(int dirfd, const char *path, char **out, size_t *len);

/* A growable byte buffer. */
struct esky_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* Make room for n more bytes; 0 or -ENOMEM. */
int esky_buf_reserve(struct esky_buf *b, size_t n);
/* Append n bytes; 0 or -ENOMEM. */
int esky_buf_append(struct esky_buf *b, const void *p, size_t n);
/* Append formatted text (without its NUL); 0 or -ENOMEM. */
int esky_buf_printf(struct esky_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append zero bytes until len is a multiple of align; 0 or -ENOMEM. */
int esky_buf_pad(struct esky_buf *b, size_t align);
void esky_buf_free(struct esky_buf *b);

/*
 * A set of [start, end) address ranges: appended (a range that touches
 * the last one extends it), then esky_ranges_merge sorts them and merges
 * those that overlap or touch. 0 or -ENOMEM.
 */
struct esky_ranges {
	struct esky_range {
		uint64_t start, end;
	} *v;
	size_t n, cap;
};

int esky_ranges_add(struct esky_ranges *r, uint64_t start, uint64_t end);
void esky_ranges_merge(struct esky_ranges *r);
/* out = a minus b, both merged (out is emptied first; it comes out merged). */
int esky_ranges_minus(const struct esky_ranges *a, const struct esky_ranges *b,
		      struct esky_ranges *out);
void esky_ranges_free(struct esky_ranges *r);

/*
 * An output file that appears under its name only when complete: data goes
 * to a temporary file ".NAME.esky-tmp.XXXXXX" in the same directory (mode
 * 0600), locked with flock(LOCK_EX) until esky_outfile_commit fsyncs it,
 * renames it over the final name and fsyncs the directory.
 * esky_outfile_abort removes the temporary file. esky_outfile_open first
 * removes what interrupted writers left in the directory
 * (esky_outfile_clean). Errors are recorded with esky_error() naming the
 * path.
 */
struct esky_outfile {
	int fd;
	char *path;
	char *tmp_path;
};

int esky_outfile_open(struct esky_outfile *of, const char *path);
int esky_outfile_commit(struct esky_outfile *of);
void esky_outfile_abort(struct esky_outfile *of);

/*
 * While on, the commits of this thread keep the lock of their file after
 * the rename (one at a time: a newer one replaces it), until
 * esky_outfile_drop_lock: esky-shell keeps a snapshot's image locked
 * until the store's tree lists it, so that a cleaner can tell an image
 * whose session died before recording it from one being recorded.
 */
void esky_outfile_keep_lock(bool on);
void esky_outfile_drop_lock(void);

/*
 * Remove the temporary files of esky_outfile in dir that no process holds
 * the lock of: those of a writer that was killed or crashed. Only regular
 * files of this user are touched; each removal is a note naming the file.
 * *removed (may be NULL) counts them. 0, or -errno when dir cannot be read.
 */
int esky_outfile_clean(const char *dir, unsigned *removed);

/*
 * Past RLIMIT_FSIZE a write fails with EFBIG and the kernel sends SIGXFSZ,
 * whose default action ends the process: esky killed half-way through a
 * checkpoint (its temporary file left, the message lost). Give SIGXFSZ a
 * handler that does nothing, so that the write's error is reported like a
 * full disk. A handler, not SIG_IGN: exec resets it, so the programs esky
 * starts keep the default action (esky_tracee_note_inherited_signals).
 */
void esky_catch_file_size_signal(void);

/* Monotonic clock in nanoseconds. */
uint64_t esky_now_ns(void);
/* Wall clock in nanoseconds since the epoch. */
uint64_t esky_wall_ns(void);

/* Parse a decimal or 0x-hex unsigned number filling the whole string; 0 or -EINVAL. */
int esky_parse_u64(const char *s, uint64_t *out);

/*
 * A duration as people write it: "50ms", "2s", "1.5s", "100us", "3m",
 * "1min". Between 1 ms and about 11 days. 0, -EINVAL (not a duration) or
 * -ERANGE.
 */
int esky_parse_duration(const char *s, uint64_t *ns);

/* Human-readable size ("12.3 MiB") into buf. Returns buf. */
char *esky_fmt_size(uint64_t bytes, char *buf, size_t n);

#endif
