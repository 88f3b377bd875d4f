/*
 * Reading and writing esky checkpoint images (format: image_format.h,
 * doc/image-format.md). No ptrace here: the reader can be fuzzed and
 * tested alone.
 */
#ifndef ESKY_IMAGE_H
#define ESKY_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image_format.h"

struct esky_image;

/* A read-only view of an opened image; arrays are owned by the image. */
struct esky_image_view {
	const char *path;
	const struct esky_img_header *hdr;
	const struct esky_img_core *core;
	const void *xstate;
	size_t xstate_len;
	const char *strings;
	size_t strings_len;
	const struct esky_img_vma *vmas;
	size_t vma_n;
	const struct esky_img_file *files;
	size_t file_n;
	const struct esky_img_fd *fds;
	size_t fd_n;
	const struct esky_img_siginfo *sigs;
	size_t sig_n;
	const struct esky_img_pagerun *runs;
	size_t run_n;
	const uint64_t *hashes;
	size_t hash_n;
	const uint64_t *auxv;   /* pairs of words */
	size_t auxv_n;          /* words */
	const char *meta;
	size_t meta_len;
	const struct esky_img_fdobj *fdobjs;
	size_t fdobj_n;
	const uint8_t *blobs;
	size_t blobs_len;
	const struct esky_img_thread *threads; /* the threads other than the main one */
	size_t thread_n;
	const uint8_t *thread_xstate;          /* THREAD_XSTATE (threads[i].xstate_off into it) */
	size_t thread_xstate_len;
	uint64_t pages_off;     /* file offset of PAGES */
	uint64_t pages_size;
	uint64_t file_size;
};

/*
 * Open an image and check all of it but the page data: header, section
 * table, every metadata checksum, every offset, index and length. 0 or
 * -errno with a one-line esky_error() naming the file and the damage
 * ("checkpoint: not an esky checkpoint", "checkpoint: truncated: 1000
 * bytes, the header says 8192", "checkpoint: damaged: VMAS checksum
 * mismatch").
 */
int esky_image_open(const char *path, struct esky_image **out);

/* Same, from an open fd (the image keeps its own dup). */
int esky_image_open_fd(int fd, const char *name, struct esky_image **out);

/*
 * Check the checksum of every stored page (reads all page data). 0 or
 * -EBADMSG with esky_error() naming the page's address.
 */
int esky_image_verify_pages(struct esky_image *img);

void esky_image_close(struct esky_image *img);

const struct esky_image_view *esky_image_view(const struct esky_image *img);

/* The fd of the image file (read-only), for page data. Owned by the image. */
int esky_image_fd(const struct esky_image *img);

/* A string of the STRINGS section ("" for 0; checked at open). */
const char *esky_image_str(const struct esky_image *img, uint32_t off);

/* The value of key in META, malloc'd, or NULL. */
char *esky_image_meta(const struct esky_image *img, const char *key);

/* Name of a section type, for messages. */
const char *esky_image_section_name(uint32_t type);

/*
 * Open an image and, if it is incremental, its ancestors: (*chain)[0] is
 * the image at path, (*chain)[i + 1] the parent of (*chain)[i]. A parent is
 * found through the child's parent hint (a file name relative to the
 * child's directory) and must have the id the child names. 0 or -errno
 * with esky_error(). Free with esky_image_close_chain.
 */
int esky_image_open_chain(const char *path, struct esky_image ***chain, size_t *n);
void esky_image_close_chain(struct esky_image **chain, size_t n);

/*
 * Where the pages of [a, b) of chain[0] come from, following PARENT runs
 * down the chain. fn is called, in address order, for each piece that
 * holds pages: kind ESKY_IMG_PAGES_DATA (stored in chain[level] at file
 * offset file_off, with their checksums at hashes) or ESKY_IMG_PAGES_ZERO.
 * Pages that no image stores are not reported (zero, or the file's
 * contents for file mappings). fn returns 0 to go on. 0, -errno, or what
 * fn returned.
 */
typedef int (*esky_resolve_fn)(void *ctx, uint64_t vaddr, uint64_t npages, uint32_t kind,
			       size_t level, uint64_t file_off, const uint64_t *hashes);
int esky_image_resolve(struct esky_image *const *chain, size_t n, uint64_t a, uint64_t b,
		       esky_resolve_fn fn, void *ctx);

/* A page's checksum, for comparing memory with a snapshot. */
struct esky_page_hash {
	uint64_t vaddr;
	uint64_t hash;
};

/*
 * The checksum of every page stored for chain[0] (its own or its
 * ancestors'), sorted by address. *out malloc'd.
 */
int esky_image_page_hashes(struct esky_image *const *chain, size_t n, struct esky_page_hash **out,
			   size_t *count);

/*
 * The same table for chain[0], derived from the table `from` of another
 * snapshot L of the same tree: chain[k] is their nearest common ancestor,
 * and other[0..m-1] are the images from L up to (not including) it. Only
 * the pages that an image between the two and their ancestor does not
 * inherit from its parent are resolved in the chain; every other page has
 * the ancestor's checksum in both. Rewinding between neighbours of a long
 * chain costs what the images between them hold, not the whole memory
 * times the chain's length. *out malloc'd (from is not changed).
 */
int esky_image_page_hashes_from(struct esky_image *const *chain, size_t n, size_t k,
				struct esky_image *const *other, size_t m,
				const struct esky_page_hash *from, size_t from_n,
				struct esky_page_hash **out, size_t *count);

/*
 * Write chain[0] as a standalone image at path: every page it refers to
 * in its ancestors is copied in. 0 or -errno with esky_error().
 */
int esky_image_flatten(struct esky_image *const *chain, size_t n, const char *path);

/* ---- process tree files ---- */

/*
 * A process tree file (image_format.h) holds one image per live process.
 * esky_image_open and esky_image_open_fd open the ROOT's image (procs[0])
 * of such a file, after checking the process table and every live
 * process's image (all but page data, as for a plain image): whatever
 * takes an image works on the root. An image of a tree, root or member,
 * has the file's path as view->path, and its view's pages_off and
 * esky_image_resolve's file offsets are offsets in the whole file, as
 * for a plain image.
 */

/*
 * The process table of the file img came from (the same for every member
 * of it), or NULL for a plain image. Owned by img.
 */
const struct esky_tree_header *esky_image_tree(const struct esky_image *img);

/*
 * Open live process i (0 is the root) of img's tree as an image of its
 * own, on a dup of img's fd; img may be closed before it. Its view->path
 * is the file's path, as the root's ("FILE"); messages about its damage
 * name the file too. 0, or -EINVAL with esky_error() for a plain image, a
 * zombie or an index beyond the table, or the image's own -errno and
 * message.
 */
int esky_image_open_member(const struct esky_image *img, size_t i, struct esky_image **out);

/*
 * Write a process tree file at path from n member image files:
 * member_paths[i] is the image of live process procs[i], NULL for a
 * zombie (ESKY_TREE_ZOMBIE in its flags). procs[0] is the root. The
 * offsets and sizes of procs are filled here (the caller's array is not
 * changed); the rest is written as given and checked as the reader
 * checks it. Each member is checked (esky_image_open) and copied whole
 * (copy_file_range, or read and write); the members are not removed.
 * Written as esky_image_writer_commit writes an image: a temporary file
 * beside path, mode 0600, fsynced, renamed into place, the directory
 * fsynced. 0, or -errno with one esky_error() line naming the file and
 * the cause.
 */
int esky_image_tree_write(const char *path, const struct esky_tree_proc *procs, size_t n,
			  const char *const *member_paths);

/* ---- writing ---- */

struct esky_image_writer;

/*
 * Start writing an image to path (a temporary file beside it until
 * commit). 0 or -errno with esky_error().
 */
int esky_image_writer_open(const char *path, struct esky_image_writer **out);

/* Add a string to STRINGS; returns its offset (0 for NULL or ""), or 0 with *err set. */
uint32_t esky_image_add_string(struct esky_image_writer *w, const char *s, int *err);

int esky_image_set_core(struct esky_image_writer *w, const struct esky_img_core *core);
int esky_image_set_xstate(struct esky_image_writer *w, const void *buf, size_t len);
int esky_image_set_auxv(struct esky_image_writer *w, const uint64_t *words, size_t n);
int esky_image_add_meta(struct esky_image_writer *w, const char *key, const char *value);
int esky_image_add_vma(struct esky_image_writer *w, const struct esky_img_vma *vma);
/* Returns the index of the new file record in *index. */
int esky_image_add_file(struct esky_image_writer *w, const struct esky_img_file *f,
			uint32_t *index);
int esky_image_add_fd(struct esky_image_writer *w, const struct esky_img_fd *fd);
int esky_image_add_siginfo(struct esky_image_writer *w, const struct esky_img_siginfo *si);
/*
 * A thread other than the main one, with its xstate (xlen bytes; the
 * record's xstate_off and xstate_len are set here). Threads are numbered
 * in the order added: the number a siginfo's thread field gives (+1).
 */
int esky_image_add_thread(struct esky_image_writer *w, const struct esky_img_thread *th,
			  const void *xstate, size_t xlen);
/* An open object (pipe, eventfd, ...); its index in *index. */
int esky_image_add_fdobj(struct esky_image_writer *w, const struct esky_img_fdobj *o,
			 uint32_t *index);
/* Bytes for an object (8-aligned); their offset in BLOBS in *off. */
int esky_image_add_blob(struct esky_image_writer *w, const void *data, size_t len, uint64_t *off);
/* Make this image a child of parent_id: PARENT runs refer to it. */
int esky_image_set_parent(struct esky_image_writer *w, const uint8_t parent_id[16],
			  const char *parent_hint);
/* This image's random id (known from open on). */
const uint8_t *esky_image_writer_id(const struct esky_image_writer *w);

/* The image is made now: its creation time (writers opened ahead of time). */
void esky_image_writer_restamp(struct esky_image_writer *w);

/*
 * How an incremental image asks about its parent: the hash of the page the
 * parent has at vaddr (true), or false if the parent stores none there.
 */
struct esky_page_parent {
	bool (*hash)(void *ctx, uint64_t vaddr, uint64_t *hash);
	void *ctx;
};

/*
 * Store npages pages of memory at vaddr, whose contents are in buf. Pages
 * that are all zero are left out when zero_holes is set (anonymous
 * memory, which reads as zero when absent). With parent set, a page equal
 * to the parent's becomes a reference to it. Calls must come in
 * increasing address order. 0 or -errno. Counts stored and referenced
 * pages into *stored and *referenced when non-NULL.
 */
int esky_image_write_pages(struct esky_image_writer *w, uint64_t vaddr, const void *buf,
			   size_t npages, bool zero_holes, const struct esky_page_parent *parent,
			   uint64_t *stored, uint64_t *referenced);

/*
 * Buffers for page data. esky_image_writer_buffer hands out a buffer of
 * ESKY_IMAGE_BUF_SIZE bytes (the same one until submit); memory read into
 * it and passed to esky_image_write_pages is written by a thread after
 * esky_image_writer_submit, while the caller fills the next buffer.
 * Returns NULL on allocation failure. Pages passed from elsewhere are
 * written synchronously.
 */
#define ESKY_IMAGE_BUF_SIZE (4u << 20)
void *esky_image_writer_buffer(struct esky_image_writer *w);
int esky_image_writer_submit(struct esky_image_writer *w);

/* Record that npages at vaddr are the same as in the parent image. */
int esky_image_add_parent_pages(struct esky_image_writer *w, uint64_t vaddr, size_t npages);

/* Bytes of page data stored so far. */
uint64_t esky_image_writer_page_bytes(const struct esky_image_writer *w);

/*
 * Write the metadata and the header, fsync, and rename the file into
 * place. The writer is freed in every case. 0 or -errno with esky_error().
 */
int esky_image_writer_commit(struct esky_image_writer *w);

/* Drop everything; the final file is not touched. */
void esky_image_writer_abort(struct esky_image_writer *w);

#endif
