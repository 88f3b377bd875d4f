/*
 * Standalone driver of a text fuzz target (tree_fuzz.c or shell_fuzz.c,
 * one build each), for CTest: runs the target on its seeds, on the
 * regression inputs kept in the repository (inputs libFuzzer once broke
 * it with), then on thousands of deterministic mutations of the seeds:
 * bytes changed, words of the target's dictionary inserted, spans cut,
 * repeated or taken from another seed, lines swapped or doubled. Built
 * with -fsanitize=address,undefined when the compiler has them, with the
 * sources under test compiled in, so that an out-of-bounds read or
 * undefined behaviour is a crash.
 *
 *   NAME_fuzz_driver [--cases N] [--seed S] [--regress DIR] [--verbose]
 *                                      seeds, DIR's files, N mutations (default
 *                                      5000, seed 1); the target's output goes
 *                                      to /dev/null unless --verbose
 *   NAME_fuzz_driver --write-corpus DIR
 *                                      the seeds and 300 mutations to DIR (a
 *                                      starting corpus for libFuzzer), and the
 *                                      dictionary to DIR.dict
 *   NAME_fuzz_driver FILE...           run the target on these files (reproduce)
 *
 * A crash, an abort (the target found a contract broken) or a case taking
 * more than 10 seconds writes the input to
 * ./NAME_fuzz-crash-CASE.txt first and names it. Exit status: 0 pass, a
 * signal or 1 fail, 99 harness error.
 */
#include "text_fuzz.h"
#include "fuzz_guard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define EXIT_PASS 0
#define EXIT_HARNESS 99

#define MAX_CASE 16384   /* bytes a mutation grows an input to, at most */

struct input {
	char *data;
	size_t size;
};

static struct input *seeds;
static size_t seed_n;
static size_t dict_n;

static void harness_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void harness_error(const char *fmt, ...)
{
	va_list ap;

	dprintf(text_fuzz_err_fd, "%s_fuzz_driver: harness error: ", text_fuzz_name);
	va_start(ap, fmt);
	vdprintf(text_fuzz_err_fd, fmt, ap);
	va_end(ap);
	dprintf(text_fuzz_err_fd, "\n");
	exit(EXIT_HARNESS);
}

/*
 * The target's output (the shell prints on every line) to /dev/null; the
 * driver's messages, the targets' and the sanitizers' reports to a copy
 * of stderr.
 */
static void quiet(void)
{
	int keep = fcntl(2, F_DUPFD_CLOEXEC, 3), null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (keep < 0 || null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		harness_error("cannot send the output to /dev/null: %s", strerror(errno));
	close(null);
	text_fuzz_err_fd = keep;
	fuzz_guard_init("text_fuzz_driver", keep);
}

static void run_one(const char *data, size_t size, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s_fuzz-crash-%.200s.txt", text_fuzz_name, name);
	fuzz_guard_run(LLVMFuzzerTestOneInput, (const uint8_t *)data, size, path);
}

static void load(const char *path, struct input *in)
{
	FILE *f = fopen(path, "rb");
	long len;

	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		harness_error("%s: %s", path, strerror(errno));
	in->data = malloc((size_t)len + 1);
	if (!in->data || (len && fread(in->data, 1, (size_t)len, f) != (size_t)len))
		harness_error("%s: cannot read", path);
	in->size = (size_t)len;
	fclose(f);
}

/* ---- mutations ---- */

static uint64_t rng;

static uint64_t rnd(void)
{
	/* xorshift64*: the same cases on every machine, for a seed */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

/* Put len bytes of src at off in buf (size bytes, room for MAX_CASE), replacing cut bytes. */
static size_t put_span(char *buf, size_t size, size_t off, size_t cut, const char *src, size_t len)
{
	if (off > size)
		off = size;
	if (cut > size - off)
		cut = size - off;
	if (size - cut + len > MAX_CASE)
		return size;
	memmove(buf + off + len, buf + off + cut, size - off - cut);
	memcpy(buf + off, src, len);
	return size - cut + len;
}

/* The start of a random line of buf, and its length with its newline. */
static size_t pick_line(const char *buf, size_t size, size_t *len)
{
	size_t off = size ? (size_t)(rnd() % size) : 0, end;

	while (off && buf[off - 1] != '\n')
		off--;
	for (end = off; end < size && buf[end] != '\n'; end++)
		;
	*len = end - off + (end < size);
	return off;
}

static size_t mutate(char *buf, size_t size)
{
	static const char chars[] = " \t\n:*$&<>'\"\\#~=!()-+0123456789xabz_.,;/@%^|{}[]";
	char tmp[MAX_CASE];
	size_t off = size ? (size_t)(rnd() % (size + 1)) : 0, len, a, b, la, lb;
	const char *w;

	switch (rnd() % 12) {
	case 0: /* a byte changed, to anything or to one of the syntax's */
		if (size)
			buf[rnd() % size] = rnd() % 3 ? chars[rnd() % (sizeof(chars) - 1)] : (char)rnd();
		return size;
	case 1: /* a word of the dictionary inserted */
	case 2:
		w = text_fuzz_dict[rnd() % dict_n];
		return put_span(buf, size, off, 0, w, strlen(w));
	case 3: /* a word of the dictionary in place of a few bytes */
		w = text_fuzz_dict[rnd() % dict_n];
		return put_span(buf, size, off, (size_t)(rnd() % 8), w, strlen(w));
	case 4: /* a span cut */
		return put_span(buf, size, off, (size_t)(1 + rnd() % 16), "", 0);
	case 5: /* a span repeated, up to a few hundred times (nesting, long words) */
		len = (size_t)(1 + rnd() % 4);
		if (off + len > size)
			return size;
		memcpy(tmp, buf + off, len);
		for (unsigned k = (unsigned)(1 + rnd() % 300); k; k--)
			size = put_span(buf, size, off, 0, tmp, len);
		return size;
	case 6: /* a span of another seed */
	{
		const struct input *s = &seeds[rnd() % seed_n];
		size_t from = s->size ? (size_t)(rnd() % s->size) : 0;

		len = (size_t)(rnd() % 64);
		if (len > s->size - from)
			len = s->size - from;
		return put_span(buf, size, off, (size_t)(rnd() % 4), s->data + from, len);
	}
	case 7: /* a line doubled */
		a = pick_line(buf, size, &la);
		memcpy(tmp, buf + a, la);
		return put_span(buf, size, a, 0, tmp, la);
	case 8: /* two lines swapped (the second goes first) */
		a = pick_line(buf, size, &la);
		b = pick_line(buf, size, &lb);
		if (a >= b || a + la > b)
			return size;
		memcpy(tmp, buf + b, lb);
		size = put_span(buf, size, b, lb, "", 0);
		return put_span(buf, size, a, 0, tmp, lb);
	case 9: /* a line dropped */
		a = pick_line(buf, size, &la);
		return put_span(buf, size, a, la, "", 0);
	case 10: /* cut short */
		return size ? (size_t)(rnd() % size) : 0;
	default: /* a number: its digits changed */
		for (a = off; a < size && (buf[a] < '0' || buf[a] > '9'); a++)
			;
		for (b = a; b < size && buf[b] >= '0' && buf[b] <= '9'; b++)
			;
		if (a == size)
			return size;
		w = rnd() % 2 ? text_fuzz_dict[rnd() % dict_n] : "99999999999999999999";
		return put_span(buf, size, a, b - a, w, strlen(w));
	}
}

/* Case c: one to four mutations of a seed into buf; returns its size. */
static size_t make_case(uint64_t base_seed, unsigned c, char *buf)
{
	const struct input *s = &seeds[c % seed_n];
	size_t size = s->size;

	rng = (base_seed * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)c * 0xbf58476d1ce4e5b9ULL) ^ 1;
	memcpy(buf, s->data, size);
	for (unsigned r = 1 + (unsigned)(rnd() % 4); r; r--)
		size = mutate(buf, size);
	return size;
}

static void write_file(const char *path, const char *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f))
		harness_error("%s: cannot write", path);
}

static int write_corpus(const char *dir)
{
	char path[4096], *buf = malloc(MAX_CASE);
	FILE *dict;

	if (!buf)
		harness_error("out of memory");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		harness_error("%s: %s", dir, strerror(errno));
	for (size_t i = 0; i < seed_n; i++) {
		snprintf(path, sizeof(path), "%s/seed%zu", dir, i);
		write_file(path, seeds[i].data, seeds[i].size);
	}
	for (unsigned c = 0; c < 300; c++) {
		size_t size = make_case(1, c, buf);

		snprintf(path, sizeof(path), "%s/case%u", dir, c);
		write_file(path, buf, size);
	}
	/* libFuzzer's -dict: one "word" a line, in C escapes */
	snprintf(path, sizeof(path), "%s.dict", dir);
	dict = fopen(path, "w");
	if (!dict)
		harness_error("%s: %s", path, strerror(errno));
	for (size_t i = 0; i < dict_n; i++) {
		fputc('"', dict);
		for (const unsigned char *p = (const void *)text_fuzz_dict[i]; *p; p++)
			if (*p == '"' || *p == '\\')
				fprintf(dict, "\\%c", *p);
			else if (*p < 0x20 || *p >= 0x7f)
				fprintf(dict, "\\x%02x", *p);
			else
				fputc(*p, dict);
		fputs("\"\n", dict);
	}
	if (fclose(dict))
		harness_error("%s: cannot write", path);
	free(buf);
	return EXIT_PASS;
}

/* Every file of dir, in name order: inputs that once broke the target. */
static unsigned run_regress(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	unsigned done = 0;

	if (n < 0)
		harness_error("%s: %s", dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct input in;

		if (names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			load(path, &in);
			run_one(in.data, in.size, names[i]->d_name);
			free(in.data);
			done++;
		}
		free(names[i]);
	}
	free(names);
	return done;
}

int main(int argc, char **argv)
{
	const char *regress = NULL;
	unsigned cases = 5000, nregress = 0;
	uint64_t base_seed = 1, t0;
	bool verbose = false;
	char *buf;
	int i = 1;

	fuzz_guard_init("text_fuzz_driver", text_fuzz_err_fd);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--cases") && i + 1 < argc)
			cases = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			base_seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--regress") && i + 1 < argc)
			regress = argv[++i];
		else if (!strcmp(argv[i], "--verbose"))
			verbose = true;
		else if (!strcmp(argv[i], "--write-corpus") && i + 1 < argc)
			break;
		else
			harness_error("unknown option %s (see the comment at the top)", argv[i]);
	}
	while (text_fuzz_seeds[seed_n])
		seed_n++;
	while (text_fuzz_dict[dict_n])
		dict_n++;
	seeds = calloc(seed_n, sizeof(*seeds));
	if (!seeds || !seed_n || !dict_n)
		harness_error("no seeds or no dictionary");
	for (size_t s = 0; s < seed_n; s++) {
		seeds[s].size = strlen(text_fuzz_seeds[s]);
		seeds[s].data = strdup(text_fuzz_seeds[s]);
		if (!seeds[s].data)
			harness_error("out of memory");
	}
	if (i < argc && argv[i][0] == '-')
		return write_corpus(argv[i + 1]);
	if (!verbose)
		quiet();
	if (i < argc) {
		/* Reproduce: run the given files. */
		for (; i < argc; i++) {
			struct input in;

			load(argv[i], &in);
			dprintf(text_fuzz_err_fd, "%s (%zu bytes)\n", argv[i], in.size);
			run_one(in.data, in.size, "repro");
			free(in.data);
		}
		return EXIT_PASS;
	}
	t0 = (uint64_t)time(NULL);
	for (size_t s = 0; s < seed_n; s++) {
		char name[32];

		snprintf(name, sizeof(name), "seed%zu", s);
		run_one(seeds[s].data, seeds[s].size, name);
	}
	if (regress)
		nregress = run_regress(regress);
	buf = malloc(MAX_CASE);
	if (!buf)
		harness_error("out of memory");
	for (unsigned c = 0; c < cases; c++) {
		size_t size = make_case(base_seed, c, buf);
		char name[32];

		snprintf(name, sizeof(name), "%u", c);
		run_one(buf, size, name);
	}
	free(buf);
	for (size_t s = 0; s < seed_n; s++)
		free(seeds[s].data);
	free(seeds);
	dprintf(text_fuzz_err_fd, "PASS: %s: %zu seeds, %u regression inputs and %u mutations "
		"(seed %llu) in about %llu s\n", text_fuzz_name, seed_n, nregress, cases,
		(unsigned long long)base_seed, (unsigned long long)((uint64_t)time(NULL) - t0));
	return EXIT_PASS;
}
