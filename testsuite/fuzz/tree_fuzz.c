/*
 * Fuzz target of the snapshot store's tree file reader (store.c, through
 * esky_store_parse: the parse every open and reload of a store does). A
 * tree that parses must keep store.h's promise, which esky-shell's tree,
 * info snapshots and forget rely on: ids from 1 to ESKY_STORE_MAX_ID,
 * each once (an id twice made `tree` recurse until the stack ran out),
 * sorted; the next id above them all, so that reserving one cannot
 * overflow; strings without the tabs and newlines that would break the
 * file's columns. And it must survive its own writing: what
 * esky_store_format writes parses again to the same store, and writes to
 * the same text. A tree that does not parse must say so in one line that
 * names the file first.
 *
 * Built with the standalone driver (text_fuzz_driver.c) for CTest, and
 * with clang -fsanitize=fuzzer by run-libfuzzer.sh.
 */
#include "text_fuzz.h"

#include "log.h"
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "fuzz-tree"

const char text_fuzz_name[] = "tree";
int text_fuzz_err_fd = 2;

const char *const text_fuzz_seeds[] = {
	/* as esky-shell writes it: a program, a branch, a forgotten parent */
	"esky-store 1\ncurrent\t4\nnext\t6\nprogram\t/work/examples/walk\t-n\t3\n"
	"1\t0\tmanual\t1200\t524288\t1700000000000000000\tmain at walk.c:90\t\n"
	"2\t1\tbreak\t52000000\t8192\t1700000000100000000\tstep at walk.c:60\tbefore the loop\n"
	"3\t2\ttimer\t100000000\t4096\t1700000000200000000\tstep at walk.c:61\t\n"
	"4\t2\tbreak\t152000000\t12288\t1700000000300000000\tstep at walk.c:60\t\n"
	"5\t9\tmanual\t18446744073709551615\t0\t0\t0x401136\tits parent forgotten\n",
	"esky-store 1\ncurrent\t0\nnext\t1\n",
	"esky-store 1\n",
	"esky-store 1\ncurrent\t1\nnext\t2\nprogram\n"
	"1\t0\tmanual\t0\t0\t0\t\t\n",
	"esky-store 1\ncurrent\t1000000000\nnext\t1000000001\nprogram\t\t\n"
	"1000000000\t999999999\ttimer\t0\t0\t0\tmain+0x1c\tthe last id\n",
	NULL,
};

const char *const text_fuzz_dict[] = {
	"esky-store 1\n", "current\t", "next\t", "program\t", "program\n", "\t", "\n", "\t\t",
	"manual", "break", "timer", "0", "1", "-1", "+1", " 1", "0x10", "2147483647",
	"2147483648", "4294967295", "4294967296", "999999999", "1000000000", "1000000001",
	"18446744073709551615", "18446744073709551616", "99999999999999999999", "\r",
	"1\t0\tmanual\t0\t0\t0\tx\ty\n", "2\t1\tbreak\t5\t4096\t7\tmain at a.c:1\t\n",
	NULL,
};

static void broken(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void broken(const char *fmt, ...)
{
	va_list ap;

	dprintf(text_fuzz_err_fd, "tree_fuzz: store contract broken: ");
	va_start(ap, fmt);
	vdprintf(text_fuzz_err_fd, fmt, ap);
	va_end(ap);
	dprintf(text_fuzz_err_fd, "\n");
	abort();
}

static void check_string(const char *s, const char *what, size_t i)
{
	if (!s)
		broken("%s of entry %zu is NULL", what, i);
	if (strpbrk(s, "\t\n"))
		broken("%s of entry %zu holds a tab or newline: \"%s\"", what, i, s);
}

/* What store.h promises of a store that parsed. */
static void check_store(const struct esky_store *st)
{
	const struct esky_snapinfo *v;
	char *const *prog;
	size_t n;

	v = esky_store_list(st, &n);
	if (n && !v)
		broken("%zu snapshots and no list", n);
	for (size_t i = 0; i < n; i++) {
		if (v[i].id < 1 || v[i].id > ESKY_STORE_MAX_ID)
			broken("snapshot id %d", v[i].id);
		if (i && v[i].id <= v[i - 1].id)
			broken("ids out of order or twice: %d after %d", v[i].id, v[i - 1].id);
		if (v[i].parent < 0 || v[i].parent > ESKY_STORE_MAX_ID)
			broken("snapshot %d: parent %d", v[i].id, v[i].parent);
		if (v[i].cause != ESKY_SNAP_MANUAL && v[i].cause != ESKY_SNAP_BREAK &&
		    v[i].cause != ESKY_SNAP_TIMER)
			broken("snapshot %d: cause %d", v[i].id, (int)v[i].cause);
		check_string(v[i].location, "location", i);
		check_string(v[i].note, "note", i);
		if (esky_store_get(st, v[i].id) != &v[i])
			broken("esky_store_get(%d) does not find it", v[i].id);
	}
	if (esky_store_current(st) < 0 || esky_store_current(st) > ESKY_STORE_MAX_ID)
		broken("current snapshot %d", esky_store_current(st));
	prog = esky_store_program(st);
	for (size_t i = 0; prog && prog[i]; i++)
		check_string(prog[i], "program word", i);
}

/* Two stores that must be the same. */
static void check_same(const struct esky_store *a, const struct esky_store *b)
{
	const struct esky_snapinfo *va, *vb;
	char *const *pa = esky_store_program(a), *const *pb = esky_store_program(b);
	size_t na, nb;

	va = esky_store_list(a, &na);
	vb = esky_store_list(b, &nb);
	if (na != nb)
		broken("%zu snapshots written, %zu read back", na, nb);
	for (size_t i = 0; i < na; i++)
		if (va[i].id != vb[i].id || va[i].parent != vb[i].parent ||
		    va[i].cause != vb[i].cause || va[i].run_ns != vb[i].run_ns ||
		    va[i].bytes != vb[i].bytes || va[i].created_ns != vb[i].created_ns ||
		    strcmp(va[i].location, vb[i].location) || strcmp(va[i].note, vb[i].note))
			broken("snapshot %d read back as another", va[i].id);
	if (esky_store_current(a) != esky_store_current(b))
		broken("current %d read back as %d", esky_store_current(a), esky_store_current(b));
	if (!pa != !pb)
		broken("the program %s", pa ? "lost" : "appeared");
	for (size_t i = 0; pa && (pa[i] || pb[i]); i++)
		if (!pa[i] || !pb[i] || strcmp(pa[i], pb[i]))
			broken("program word %zu read back as another", i);
}

static void check_message(int ret)
{
	const char *msg = esky_last_error();

	if (ret >= 0)
		broken("esky_store_parse returned %d, not 0 or -errno", ret);
	if (ret == -ENOMEM && !msg)
		return;
	if (ret != -EBADMSG && ret != -ENOMEM)
		broken("esky_store_parse failed with %d (%s)", ret, strerror(-ret));
	if (!msg)
		broken("esky_store_parse failed with %d and recorded no message", ret);
	if (strchr(msg, '\n'))
		broken("message of more than one line: \"%s\"", msg);
	if (strncmp(msg, NAME ":", strlen(NAME ":")))
		broken("message does not name the file first: \"%s\"", msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct esky_store *st, *again;
	char *text, *text2;
	size_t len, len2;
	int ret;

	esky_error_clear();
	ret = esky_store_parse((const char *)data, size, NAME, &st);
	if (ret) {
		check_message(ret);
		return 0;
	}
	check_store(st);
	/* Written and read back: the same store, the same text. */
	if (esky_store_format(st, &text, &len))
		abort(); /* out of memory: not the fuzzer's business */
	esky_error_clear();
	ret = esky_store_parse(text, len, NAME, &again);
	if (ret)
		broken("its own writing does not parse: %s", esky_last_error() ? esky_last_error()
									 : "no message");
	check_same(st, again);
	if (esky_store_format(again, &text2, &len2))
		abort();
	if (len != len2 || memcmp(text, text2, len))
		broken("written twice, two texts");
	free(text2);
	free(text);
	esky_store_close(again);
	esky_store_close(st);
	return 0;
}
