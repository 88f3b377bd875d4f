/* The commands of esky-shell, see shell.h and doc/esky-shell.md. */
#include "shell.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define MAX_ARGS 64

struct cmd {
	const char *name;
	const char *aliases;  /* space-separated */
	int (*run)(struct shell *sh, int argc, char **argv);
	const char *usage;
	const char *help;
};

static int fail(const char *fallback)
{
	const char *msg = esky_last_error();

	fprintf(stderr, "%s\n", msg ? msg : fallback);
	return -1;
}

static int usage(const struct cmd *c);

static const struct cmd *find_cmd(const char *name);

static int tokenize(const char *line, char *buf, char **argv, bool *op);

/* A whole non-negative number, or -1. */
static long number(const char *s)
{
	uint64_t v;

	if (esky_parse_u64(s, &v) || v > 1000000000)
		return -1;
	return (long)v;
}

static const char *signame(int sig)
{
	static char buf[16];
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev) {
		snprintf(buf, sizeof(buf), "SIG%s", abbrev);
		return buf;
	}
	snprintf(buf, sizeof(buf), "signal %d", sig);
	return buf;
}

static void print_stop(const struct esky_stop_report *r)
{
	/* Which thread, when there are several and it is not the one of the last stop (as gdb). */
	static int last_thread;

	if (r->thread && r->thread != last_thread && r->why != ESKY_WHY_EXITED &&
	    r->why != ESKY_WHY_KILLED)
		printf("[thread %d]\n", r->thread);
	last_thread = r->thread;
	switch (r->why) {
	case ESKY_WHY_BREAKPOINT:
		printf("%s %d, %s\n", r->temporary ? "Temporary breakpoint" : "Breakpoint", r->bp,
		       r->where);
		break;
	case ESKY_WHY_STEP:
		printf("%s (0x%" PRIx64 ")\n", r->where, r->pc);
		break;
	case ESKY_WHY_EXITED:
		printf("[program exited with status %d]\n", r->status);
		break;
	case ESKY_WHY_KILLED:
		printf("[program killed by %s]\n", signame(r->sig));
		break;
	case ESKY_WHY_SIGNAL:
		printf("Program received %s, %s\n", signame(r->sig), r->where);
		break;
	case ESKY_WHY_INTERRUPTED:
		printf("Interrupted, %s\n", r->where);
		break;
	case ESKY_WHY_REWOUND:
		printf("%s\n", r->where);
		break;
	case ESKY_WHY_WATCH:
		printf("Hardware watchpoint %d\nOld value = %" PRIu64 " (0x%" PRIx64 ")\nNew value = %"
		       PRIu64 " (0x%" PRIx64 ")\n%s\n", r->bp, r->old_value, r->old_value,
		       r->new_value, r->new_value, r->where);
		break;
	default:
		break;
	}
	fflush(stdout);
}

static int cmd_file(struct shell *sh, int argc, char **argv)
{
	if (argc != 2)
		return usage(find_cmd("file"));
	if (esky_session_file(sh->s, argv[1]))
		return fail("cannot load the program");
	printf("Program %s\n", esky_session_program(sh->s));
	return 0;
}

/* ~ and ~/... in a file name: $HOME, as sh expands it (malloc'd). */
static char *expand_home(const char *path)
{
	const char *home = getenv("HOME");
	char *out;

	if (path[0] == '~' && (path[1] == '/' || !path[1]) && home && home[0]) {
		if (asprintf(&out, "%s%s", home, path + 1) < 0)
			return NULL;
		return out;
	}
	return strdup(path);
}

/*
 * The arguments of run, start or set args (the command line's words
 * from the first'th): the program's arguments and its redirections go to
 * the session, replacing both, as gdb keeps both in its args.
 */
static int set_run_args(struct shell *sh, int first)
{
	char *buf = malloc(2 * strlen(sh->line) + 2), *words[MAX_ARGS], *args[MAX_ARGS];
	char *paths[MAX_ARGS] = { 0 };
	struct esky_redirect rd[MAX_ARGS];
	bool op[MAX_ARGS];
	size_t nrd = 0;
	int n, na = 0, ret = -1;

	if (!buf)
		return fail("out of memory");
	n = tokenize(sh->line, buf, words, op);
	for (int i = first; i < n; i++) {
		const char *w = words[i];
		struct esky_redirect *r = &rd[nrd];

		if (!op[i]) {
			args[na++] = words[i];
			continue;
		}
		r->fd = isdigit((unsigned char)w[0]) ? w[0] - '0' : w[0] == '<' ? 0 : 1;
		w += isdigit((unsigned char)w[0]) ? 1 : 0;
		if (r->fd > 2) {
			fprintf(stderr, "bad redirection '%s': only the program's standard input, "
				"output and error (0, 1, 2)\n", words[i]);
			goto out;
		}
		if (w[1] == '&') {
			r->kind = ESKY_REDIR_DUP;
			r->to = w[2] - '0';
			if (r->to > 2) {
				fprintf(stderr, "bad redirection '%s': to 0, 1 or 2 only\n", words[i]);
				goto out;
			}
		} else {
			r->kind = w[0] == '<' ? ESKY_REDIR_READ
					      : w[1] == '>' ? ESKY_REDIR_APPEND : ESKY_REDIR_WRITE;
			if (i + 1 >= n || op[i + 1]) {
				fprintf(stderr, "'%s' needs a file name: %s FILE\n", words[i], words[i]);
				goto out;
			}
			r->path = paths[nrd] = expand_home(words[++i]);
			if (!r->path) {
				fail("out of memory");
				goto out;
			}
		}
		nrd++;
	}
	args[na] = NULL;
	if (esky_session_set_args(sh->s, args) || esky_session_set_redirects(sh->s, rd, nrd)) {
		fail("out of memory");
		goto out;
	}
	ret = 0;
out:
	for (size_t i = 0; i < nrd + 1 && i < MAX_ARGS; i++)
		free(paths[i]);
	free(buf);
	return ret;
}

static int run_or_start(struct shell *sh, int argc, char **argv, bool start)
{
	struct esky_stop_report r;
	int ret;

	/* With nothing after it, run keeps the arguments and redirections of the last. */
	if (argc > 1 && set_run_args(sh, 1))
		return -1;
	fflush(stdout);
	ret = start ? esky_session_start(sh->s, &r) : esky_session_run(sh->s, &r);
	if (ret)
		return fail("cannot run the program");
	print_stop(&r);
	return 0;
}

static int cmd_run(struct shell *sh, int argc, char **argv)
{
	return run_or_start(sh, argc, argv, false);
}

static int cmd_start(struct shell *sh, int argc, char **argv)
{
	return run_or_start(sh, argc, argv, true);
}

static int cmd_kill(struct shell *sh, int argc, char **argv)
{
	if (argc != 1)
		return usage(find_cmd("kill"));
	if (esky_session_kill(sh->s))
		return fail("cannot kill the program");
	printf("[program killed]\n");
	return 0;
}

static int cmd_quit(struct shell *sh, int argc, char **argv)
{
	sh->quit = true;
	return 0;
}

/* A word as tokenize() reads it back: quoted when it must be. */
static void put_word(const char *w)
{
	if (w[0] && w[0] != '~' && !w[strcspn(w, " \t'\"\\<>#")]) {
		fputs(w, stdout);
	} else if (!strchr(w, '\'')) {
		printf("'%s'", w);
	} else {
		putchar('"');
		for (; *w; w++) {
			if (*w == '"' || *w == '\\')
				putchar('\\');
			putchar(*w);
		}
		putchar('"');
	}
}

/* show args: gdb's sentence, the arguments then the redirections, as run reads them. */
static void show_args(struct shell *sh)
{
	char *const *args = esky_session_args(sh->s);
	const struct esky_redirect *r;
	const char *sep = "";
	size_t n;

	printf("Argument list to give program being debugged when it is started is \"");
	for (size_t i = 0; args[i]; i++, sep = " ") {
		fputs(sep, stdout);
		put_word(args[i]);
	}
	r = esky_session_redirects(sh->s, &n);
	for (size_t i = 0; i < n; i++, sep = " ") {
		bool in = r[i].kind == ESKY_REDIR_READ || (r[i].kind == ESKY_REDIR_DUP && r[i].fd == 0);

		printf("%s", sep);
		if (r[i].fd != (in ? 0 : 1))
			printf("%d", r[i].fd);
		if (r[i].kind == ESKY_REDIR_DUP) {
			printf("%s&%d", in ? "<" : ">", r[i].to);
			continue;
		}
		printf("%s ", in ? "<" : r[i].kind == ESKY_REDIR_APPEND ? ">>" : ">");
		put_word(r[i].path);
	}
	printf("\".\n");
}

static bool is_env_word(const char *w)
{
	return !strcmp(w, "env") || !strcmp(w, "environment");
}

/*
 * set env NAME=VALUE, as gdb's set environment: also NAME = VALUE and
 * NAME VALUE; the value is the rest of the line (words joined by a space).
 */
static int set_env(struct shell *sh, int argc, char **argv)
{
	char rest[4096] = "", *name, *value;
	size_t len;

	for (int i = 2; i < argc; i++) {
		len = strlen(rest);
		snprintf(rest + len, sizeof(rest) - len, "%s%s", i > 2 ? " " : "", argv[i]);
	}
	name = rest;
	len = strcspn(rest, "= \t");
	value = rest + len;
	value += strspn(value, " \t");
	if (!len || (!*value && rest[len] != '=')) {
		if (!len)
			fprintf(stderr, "set env: no variable name (set env NAME=VALUE)\n");
		else
			fprintf(stderr, "set env %s: no value (set env %s=VALUE, or %s= for an empty "
				"one)\n", rest, rest, rest);
		return -1;
	}
	if (*value == '=') {
		value++;
		value += strspn(value, " \t");
	}
	name[len] = '\0';
	if (esky_session_setenv(sh->s, name, value))
		return fail("out of memory");
	return 0;
}

static int cmd_set(struct shell *sh, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "args"))
		return set_run_args(sh, 2);
	if (argc >= 2 && is_env_word(argv[1]))
		return set_env(sh, argc, argv);
	fprintf(stderr, "set what? args ARGS, or env NAME=VALUE (help set)\n");
	return -1;
}

static int cmd_show(struct shell *sh, int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "args")) {
		show_args(sh);
		return 0;
	}
	if ((argc == 2 || argc == 3) && is_env_word(argv[1])) {
		char *const *env = esky_session_environ(sh->s);
		size_t len = argc == 3 ? strlen(argv[2]) : 0;

		for (size_t i = 0; env[i]; i++) {
			if (argc == 2) {
				printf("%s\n", env[i]);
			} else if (!strncmp(env[i], argv[2], len) && env[i][len] == '=') {
				printf("%s = %s\n", argv[2], env[i] + len + 1);
				return 0;
			}
		}
		if (argc == 3)
			printf("Environment variable \"%s\" not defined.\n", argv[2]);
		return 0;
	}
	fprintf(stderr, "show what? args, or env [NAME] (help show)\n");
	return -1;
}

static int cmd_unset(struct shell *sh, int argc, char **argv)
{
	if ((argc == 2 || argc == 3) && is_env_word(argv[1])) {
		if (esky_session_unsetenv(sh->s, argc == 3 ? argv[2] : NULL))
			return fail("out of memory");
		return 0;
	}
	return usage(find_cmd("unset"));
}

static int cmd_cd(struct shell *sh, int argc, char **argv)
{
	char *dir;
	int ret;

	if (argc > 2)
		return usage(find_cmd("cd"));
	dir = expand_home(argc == 2 ? argv[1] : "~");
	if (!dir)
		return fail("out of memory");
	ret = esky_session_chdir(sh->s, dir);
	free(dir);
	if (ret)
		return fail("cannot change the directory");
	printf("Working directory %s.\n", esky_session_cwd(sh->s));
	return 0;
}

static int cmd_pwd(struct shell *sh, int argc, char **argv)
{
	if (argc != 1)
		return usage(find_cmd("pwd"));
	printf("Working directory %s.\n", esky_session_cwd(sh->s));
	return 0;
}

/* The words from argv[from] on, joined by spaces (a condition, an expression). */
static char *join_words(int argc, char **argv, int from)
{
	size_t len = 1;
	char *out;

	for (int i = from; i < argc; i++)
		len += strlen(argv[i]) + 1;
	out = calloc(1, len);
	for (int i = from; out && i < argc; i++) {
		if (i > from)
			strcat(out, " ");
		strcat(out, argv[i]);
	}
	return out;
}

static int add_break(struct shell *sh, int argc, char **argv, enum esky_bp_kind kind)
{
	const struct esky_bpinfo *bps;
	char *cond = NULL;
	long count = 0;
	size_t n;
	int id;

	/* break LOC if COND, as gdb writes it. */
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "if"))
			continue;
		if (i + 1 == argc) {
			fprintf(stderr, "a condition is missing after 'if'\n");
			return -1;
		}
		cond = join_words(argc, argv, i + 1);
		if (!cond)
			return -1;
		argc = i;
		break;
	}
	if (argc < 2 || argc > 3 || (argc == 3 && (kind != ESKY_BP_SNAP || (count = number(argv[2])) <= 0))) {
		free(cond); /* (break A B if X leaked it, found by fuzz.shell) */
		return usage(find_cmd(kind == ESKY_BP_SNAP ? "snap" : kind == ESKY_BP_TBREAK ? "tbreak"
											: "break"));
	}
	if (esky_session_break(sh->s, argv[1], kind, (unsigned)count, &id)) {
		free(cond);
		return fail("cannot set the breakpoint");
	}
	if (cond && esky_session_condition(sh->s, id, cond)) {
		free(cond);
		esky_session_delete(sh->s, id);
		return fail("bad condition");
	}
	free(cond);
	bps = esky_session_breakpoints(sh->s, &n);
	for (size_t i = 0; i < n; i++) {
		if (bps[i].id != id)
			continue;
		if (bps[i].pending) {
			printf("%s %d (%s) pending: no library has it yet\n",
			       kind == ESKY_BP_SNAP ? "Snapshot point"
			       : kind == ESKY_BP_TBREAK ? "Temporary breakpoint" : "Breakpoint",
			       id, bps[i].spec);
			continue;
		}
		printf("%s %d at %s", kind == ESKY_BP_SNAP ? "Snapshot point"
				      : kind == ESKY_BP_TBREAK ? "Temporary breakpoint"
							       : "Breakpoint", id, bps[i].where);
		if (kind == ESKY_BP_SNAP && count)
			printf(", at most %ld snapshots", count);
		printf("\n");
	}
	return 0;
}

static int cmd_break(struct shell *sh, int argc, char **argv)
{
	return add_break(sh, argc, argv, ESKY_BP_BREAK);
}

static int cmd_tbreak(struct shell *sh, int argc, char **argv)
{
	return add_break(sh, argc, argv, ESKY_BP_TBREAK);
}

static int cmd_snap(struct shell *sh, int argc, char **argv)
{
	return add_break(sh, argc, argv, ESKY_BP_SNAP);
}

static int cmd_delete(struct shell *sh, int argc, char **argv)
{
	if (argc == 1)
		return esky_session_delete(sh->s, 0) ? fail("cannot delete breakpoints") : 0;
	for (int i = 1; i < argc; i++) {
		long id = number(argv[i]);

		if (id <= 0) {
			fprintf(stderr, "bad breakpoint number '%s'\n", argv[i]);
			return -1;
		}
		if (esky_session_delete(sh->s, (int)id))
			return fail("cannot delete the breakpoint");
	}
	return 0;
}

/* continue [N] and stepi [N]: run, then say where the program stopped. */
static int run_counted(struct shell *sh, int argc, char **argv,
		       int (*go)(struct esky_session *, unsigned, struct esky_stop_report *),
		       const char *fallback)
{
	struct esky_stop_report r;
	long n = 1;

	if (argc > 2 || (argc == 2 && (n = number(argv[1])) <= 0))
		return usage(find_cmd(argv[0]));
	fflush(stdout);
	if (go(sh->s, (unsigned)n, &r))
		return fail(fallback);
	/* next and step name the line reached, as gdb does, without the address. */
	if (r.why == ESKY_WHY_STEP && (go == esky_session_next || go == esky_session_step))
		printf("%s\n", r.where);
	else
		print_stop(&r);
	return 0;
}

static int cmd_continue(struct shell *sh, int argc, char **argv)
{
	return run_counted(sh, argc, argv, esky_session_continue, "cannot continue");
}

static int cmd_stepi(struct shell *sh, int argc, char **argv)
{
	return run_counted(sh, argc, argv, esky_session_stepi, "cannot step");
}

static int cmd_next(struct shell *sh, int argc, char **argv)
{
	return run_counted(sh, argc, argv, esky_session_next, "cannot step");
}

static int cmd_step(struct shell *sh, int argc, char **argv)
{
	return run_counted(sh, argc, argv, esky_session_step, "cannot step");
}

static int cmd_finish(struct shell *sh, int argc, char **argv)
{
	struct esky_stop_report r;
	uint64_t value = 0;
	char from[256];

	if (argc != 1)
		return usage(find_cmd("finish"));
	fflush(stdout);
	if (esky_session_finish(sh->s, &r, &value, from, sizeof(from)))
		return fail("cannot finish");
	printf("Run till exit from %s\n", from);
	if (r.why != ESKY_WHY_STEP) {
		print_stop(&r);
		return 0;
	}
	printf("%s\n", r.where);
	printf("Value returned (%s): %" PRIu64 " (0x%" PRIx64 ")\n", "rax", value, value);
	return 0;
}

/* until LOCATION, advance LOCATION: run to there (or until something else stops it). */
static int cmd_until(struct shell *sh, int argc, char **argv)
{
	struct esky_stop_report r;

	if (argc != 2)
		return usage(find_cmd(argv[0]));
	fflush(stdout);
	if (esky_session_until(sh->s, argv[1], &r))
		return fail("cannot run there");
	if (r.why == ESKY_WHY_STEP)
		printf("%s\n", r.where);
	else
		print_stop(&r);
	return 0;
}

/* condition N [EXPR]: gdb's; without EXPR the breakpoint stops always again. */
static int cmd_condition(struct shell *sh, int argc, char **argv)
{
	long id;
	char *cond;
	int ret;

	if (argc < 2 || (id = number(argv[1])) <= 0)
		return usage(find_cmd("condition"));
	cond = join_words(argc, argv, 2);
	if (!cond)
		return -1;
	ret = esky_session_condition(sh->s, (int)id, cond);
	free(cond);
	return ret ? fail("bad condition") : 0;
}

/* print EXPR: its value, decimal and hex (gdb's print, for what expr.h knows). */
static int cmd_print(struct shell *sh, int argc, char **argv)
{
	uint64_t v;
	char *text;
	int ret;

	if (argc < 2)
		return usage(find_cmd("print"));
	text = join_words(argc, argv, 1);
	if (!text)
		return -1;
	ret = esky_session_print(sh->s, text, &v);
	free(text);
	if (ret)
		return fail("cannot evaluate");
	printf("%" PRIu64 " (0x%" PRIx64 ")\n", v, v);
	return 0;
}

/* watch SPEC [LEN] and snap-on-write SPEC [COUNT]: debug-register watchpoints. */
static int cmd_watch(struct shell *sh, int argc, char **argv)
{
	bool snap = !strcmp(argv[0], "snap-on-write");
	long arg = 0;
	int id;

	if (argc < 2 || argc > 3 || (argc == 3 && (arg = number(argv[2])) <= 0))
		return usage(find_cmd(argv[0]));
	if (esky_session_watch(sh->s, argv[1], snap ? 0 : (unsigned)arg, snap,
			       snap ? (unsigned)arg : 0, &id))
		return fail("cannot watch");
	if (snap)
		printf("Snapshot on write %d: %s%s\n", id, argv[1],
		       arg ? ", at most that many snapshots" : "");
	else
		printf("Hardware watchpoint %d: %s\n", id, argv[1]);
	return 0;
}

static int cmd_where(struct shell *sh, int argc, char **argv)
{
	struct esky_stop_report r;

	if (argc != 1)
		return usage(find_cmd("where"));
	if (esky_session_where(sh->s, &r))
		return fail("no process");
	if (r.thread)
		printf("[thread %d]\n", r.thread);
	printf("%s (0x%" PRIx64 ")\n", r.where, r.pc);
	return 0;
}

static int cmd_thread(struct shell *sh, int argc, char **argv)
{
	struct esky_stop_report r;
	long tid;

	if (argc != 2 || (tid = number(argv[1])) <= 0)
		return usage(find_cmd("thread"));
	if (esky_session_select_thread(sh->s, (int)tid))
		return fail("cannot select the thread");
	if (esky_session_where(sh->s, &r))
		return fail("no process");
	printf("[thread %d]\n%s (0x%" PRIx64 ")\n", (int)tid, r.where, r.pc);
	return 0;
}

static int cmd_x(struct shell *sh, int argc, char **argv)
{
	uint64_t addr, words[256];
	long count = 1;

	if (argc < 2 || argc > 3 || (argc == 3 && ((count = number(argv[2])) <= 0 || count > 256)))
		return usage(find_cmd("x"));
	/* An address as before (a number, $register, a function), or any expression (&var). */
	if (esky_session_eval(sh->s, argv[1], &addr)) {
		esky_error_clear();
		if (esky_session_print(sh->s, argv[1], &addr))
			return fail("bad address");
	}
	if (esky_session_read(sh->s, addr, words, (size_t)count * sizeof(words[0])))
		return fail("cannot read memory");
	for (long i = 0; i < count; i++) {
		if (i % 2 == 0)
			printf("0x%" PRIx64 ":", addr + (uint64_t)i * 8);
		printf("\t0x%016" PRIx64, words[i]);
		if (i % 2 == 1 || i == count - 1)
			printf("\n");
	}
	return 0;
}

/*
 * x/FMT ADDRESS, as gdb writes it: x/[COUNT][FORMAT][SIZE] with FORMAT x
 * (hex, the default), d, u or o and SIZE b, h, w (4 bytes, the default) or
 * g; a row holds 8 bytes or halfwords, 4 words, 2 giants, as gdb's.
 */
static int cmd_x_fmt(struct shell *sh, int argc, char **argv, const char *fmt)
{
	unsigned char buf[2048];
	unsigned size = 4, per_row;
	char f = 'x';
	long count = 0;
	uint64_t addr;

	while (*fmt >= '0' && *fmt <= '9' && count <= 2048)
		count = count * 10 + (*fmt++ - '0');
	for (; *fmt; fmt++) {
		if (strchr("xduo", *fmt))
			f = *fmt;
		else if (*fmt == 'b' || *fmt == 'h' || *fmt == 'w' || *fmt == 'g')
			size = *fmt == 'b' ? 1 : *fmt == 'h' ? 2 : *fmt == 'w' ? 4 : 8;
		else
			return fail("x/FMT: FMT is [COUNT][x|d|u|o][b|h|w|g]");
	}
	if (!count)
		count = 1;
	if (argc != 2 || (unsigned long)count * size > sizeof(buf))
		return fail("x/FMT ADDRESS (at most 2048 bytes)");
	if (esky_session_eval(sh->s, argv[1], &addr)) {
		esky_error_clear();
		if (esky_session_print(sh->s, argv[1], &addr))
			return fail("bad address");
	}
	if (esky_session_read(sh->s, addr, buf, (size_t)(count * size)))
		return fail("cannot read memory");
	per_row = size <= 2 ? 8 : size == 4 ? 4 : 2;
	for (long i = 0; i < count; i++) {
		uint64_t v = 0;
		int64_t sv;

		memcpy(&v, buf + i * size, size);
		sv = size == 8 ? (int64_t)v : (int64_t)(v << (64 - 8 * size)) >> (64 - 8 * size);
		if (i % per_row == 0)
			printf("0x%" PRIx64 ":", addr + (uint64_t)i * size);
		if (f == 'x')
			printf("\t0x%0*" PRIx64, (int)(2 * size), v);
		else if (f == 'd')
			printf("\t%" PRId64, sv);
		else if (f == 'u')
			printf("\t%" PRIu64, v);
		else
			printf(v ? "\t0%" PRIo64 : "\t%" PRIo64, v);
		if (i % per_row == per_row - 1 || i == count - 1)
			printf("\n");
	}
	return 0;
}

static void print_breakpoints(struct shell *sh)
{
	static const char *const kinds[] = { "breakpoint", "tbreak", "snap", "watchpoint",
					     "snap-write" };
	const struct esky_bpinfo *bps;
	size_t n;

	bps = esky_session_breakpoints(sh->s, &n);
	if (!n) {
		printf("No breakpoints.\n");
		return;
	}
	printf("Num  Type        Hits  Where\n");
	for (size_t i = 0; i < n; i++) {
		printf("%-4d %-11s %5u  %s", bps[i].id, kinds[bps[i].kind], bps[i].hits, bps[i].where);
		if ((bps[i].kind == ESKY_BP_SNAP || bps[i].kind == ESKY_BP_WATCH_SNAP) && bps[i].count)
			printf("  (at most %u)", bps[i].count);
		if (bps[i].cond)
			printf("  if %s", bps[i].cond);
		printf("  [%s]\n", bps[i].spec);
	}
}

static void print_snapshots_tsv(struct shell *sh)
{
	const struct esky_snapinfo *v;
	size_t n;

	v = esky_session_snapshots(sh->s, &n);
	printf("id\tparent\tcause\tlocation\tbytes\n");
	for (size_t i = 0; i < n; i++) {
		if (v[i].parent)
			printf("%d\t%d", v[i].id, v[i].parent);
		else
			printf("%d\t-", v[i].id);
		printf("\t%s\t%s\t%" PRIu64 "\n", esky_snap_cause_name(v[i].cause), v[i].location,
		       v[i].bytes);
	}
}

static void print_library(void *ctx, uint64_t lo, uint64_t hi, const char *path)
{
	(void)ctx;
	printf("%#-14" PRIx64 "  %#-14" PRIx64 "  %s\n", lo, hi, path);
}

static int cmd_info(struct shell *sh, int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "breakpoints") || !strcmp(argv[1], "b") ||
			  !strcmp(argv[1], "break"))) {
		print_breakpoints(sh);
		return 0;
	}
	if (argc == 2 && (!strcmp(argv[1], "registers") || !strcmp(argv[1], "r"))) {
		char buf[4096];

		if (esky_session_registers(sh->s, buf, sizeof(buf)))
			return fail("no registers");
		if (esky_session_thread(sh->s))
			printf("[thread %d]\n", esky_session_thread(sh->s));
		fputs(buf, stdout);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "threads")) {
		struct esky_thread_info *v;
		size_t n;

		if (esky_session_threads(sh->s, &v, &n))
			return fail("no threads");
		for (size_t i = 0; i < n; i++)
			printf("%c %-7d %-15s %s (0x%" PRIx64 ")\n", v[i].current ? '*' : ' ', v[i].tid,
			       v[i].name, v[i].where, v[i].pc);
		free(v);
		return 0;
	}
	if (argc == 2 && (!strcmp(argv[1], "snapshots") || !strcmp(argv[1], "checkpoints"))) {
		print_snapshots_tsv(sh);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "store")) {
		char mode[256];

		printf("%s\n", esky_session_store_dir(sh->s));
		printf("changed pages: %s\n", esky_session_pages_mode(sh->s, mode, sizeof(mode)));
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "symbol")) {
		uint64_t addr;
		char where[512], *text = argc > 2 ? join_words(argc, argv, 2) : NULL;
		int ret = text ? esky_session_print(sh->s, text, &addr) : -1;

		free(text);
		if (argc < 3)
			return usage(find_cmd("info"));
		if (ret || esky_session_describe(sh->s, addr, where, sizeof(where)))
			return fail("bad address");
		printf("0x%" PRIx64 " is %s\n", addr, where);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "line")) {
		uint64_t *addrs;
		size_t n;

		if (esky_session_lines(sh->s, argv[2], &addrs, &n))
			return fail("no such location");
		for (size_t i = 0; i < n; i++) {
			char where[512];

			esky_session_describe(sh->s, addrs[i], where, sizeof(where));
			printf("%s starts at address 0x%" PRIx64 " (%s)\n", argv[2], addrs[i], where);
		}
		free(addrs);
		return 0;
	}
	if (argc == 2 && (!strcmp(argv[1], "sharedlibrary") || !strcmp(argv[1], "shared"))) {
		if (!esky_session_alive(sh->s))
			return fail("the program is not running (run, start or rewind N)");
		printf("From            To              Library\n");
		if (esky_session_libraries(sh->s, print_library, NULL))
			return fail("no process");
		return 0;
	}
	fprintf(stderr, "info what? breakpoints, registers, threads, snapshots (or checkpoints), "
		"store, symbol ADDRESS, line LOCATION, sharedlibrary\n");
	return -1;
}

static int cmd_snapshot(struct shell *sh, int argc, char **argv)
{
	char note[512] = "";
	int id;

	for (int i = 1; i < argc; i++)
		snprintf(note + strlen(note), sizeof(note) - strlen(note), "%s%s", i > 1 ? " " : "",
			 argv[i]);
	if (esky_session_snapshot(sh->s, note, &id))
		return fail("cannot take a snapshot");
	{
		const struct esky_snapinfo *v;
		size_t n;

		v = esky_session_snapshots(sh->s, &n);
		for (size_t i = 0; i < n; i++)
			if (v[i].id == id)
				printf("Snapshot %d at %s\n", id, v[i].location);
	}
	return 0;
}

static int cmd_every(struct shell *sh, int argc, char **argv)
{
	uint64_t ns;
	int ret;

	if (argc != 2)
		return usage(find_cmd("every"));
	if (!strcmp(argv[1], "off")) {
		esky_session_every(sh->s, 0);
		printf("Timer snapshots off\n");
		return 0;
	}
	ret = esky_parse_duration(argv[1], &ns);
	if (ret) {
		fprintf(stderr, "bad duration '%s': %s (e.g. every 50ms, every 2s, every off)\n",
			argv[1], ret == -ERANGE ? "between 1ms and 11 days" : "a number and ms, s, us or m");
		return -1;
	}
	esky_session_every(sh->s, ns);
	printf("A snapshot every %s of run time\n", argv[1]);
	return 0;
}

static void print_tree_below(struct shell *sh, const struct esky_snapinfo *v, size_t n, int parent,
			     int depth, int current)
{
	for (size_t i = 0; i < n; i++) {
		char size[32];
		bool known_parent = false;

		if (parent == 0) {
			/* Roots: no parent, or a parent that was forgotten. */
			for (size_t j = 0; j < n && v[i].parent; j++)
				known_parent |= v[j].id == v[i].parent;
			if (known_parent)
				continue;
		} else if (v[i].parent != parent) {
			continue;
		}
		printf("%s%*s#%d  %-6s  %s  %.3f s  %s", v[i].id == current ? "* " : "  ", depth * 2, "",
		       v[i].id, esky_snap_cause_name(v[i].cause), v[i].location,
		       (double)v[i].run_ns / 1e9, esky_fmt_size(v[i].bytes, size, sizeof(size)));
		if (v[i].note[0])
			printf("  \"%s\"", v[i].note);
		printf("\n");
		print_tree_below(sh, v, n, v[i].id, depth + 1, current);
	}
}

static int cmd_tree(struct shell *sh, int argc, char **argv)
{
	const struct esky_snapinfo *v;
	size_t n;

	if (argc != 1)
		return usage(find_cmd("tree"));
	v = esky_session_snapshots(sh->s, &n);
	if (!n) {
		printf("No snapshots.\n");
		return 0;
	}
	print_tree_below(sh, v, n, 0, 0, esky_session_current(sh->s));
	return 0;
}

static int snapshot_arg(const char *s, int *id)
{
	long v = number(s[0] == '#' ? s + 1 : s);

	if (v <= 0) {
		fprintf(stderr, "bad snapshot number '%s'\n", s);
		return -1;
	}
	*id = (int)v;
	return 0;
}

static int cmd_rewind(struct shell *sh, int argc, char **argv)
{
	struct esky_stop_report r;
	int id;

	if (argc != 2)
		return usage(find_cmd("rewind"));
	if (snapshot_arg(argv[1], &id))
		return -1;
	fflush(stdout);
	if (esky_session_rewind(sh->s, id, &r))
		return fail("cannot rewind");
	printf("Rewound to snapshot %d, %s\n", id, r.where);
	return 0;
}

static int cmd_export(struct shell *sh, int argc, char **argv)
{
	int id;

	if (argc != 3)
		return usage(find_cmd("export"));
	if (snapshot_arg(argv[1], &id))
		return -1;
	if (esky_session_export(sh->s, id, argv[2]))
		return fail("cannot export");
	printf("Snapshot %d written to %s (esky resume -f %s)\n", id, argv[2], argv[2]);
	return 0;
}

/* gcore [N] FILE: gdb's name; N a snapshot, or the program as it stands. */
static int cmd_gcore(struct shell *sh, int argc, char **argv)
{
	const char *path = argv[argc - 1];
	int id = 0;

	if (argc < 2 || argc > 3)
		return usage(find_cmd("gcore"));
	if (argc == 3 && snapshot_arg(argv[1], &id))
		return -1;
	if (esky_session_gcore(sh->s, id, path))
		return fail("cannot write the core file");
	if (id)
		printf("Core of snapshot %d written to %s (gdb %s %s)\n", id, path,
		       esky_session_program(sh->s) ? esky_session_program(sh->s) : "PROGRAM", path);
	else
		printf("Core of the program written to %s (gdb %s %s)\n", path,
		       esky_session_program(sh->s) ? esky_session_program(sh->s) : "PROGRAM", path);
	return 0;
}

/* gdb: the program as it stands goes to gdb; the session goes on after. */
static int cmd_gdb(struct shell *sh, int argc, char **argv)
{
	struct esky_stop_report r;

	struct termios tio;
	bool tty;
	int ret;

	if (argc != 1)
		return usage(find_cmd("gdb"));
	fflush(stdout);
	/* gdb sets the terminal up its own way; ours comes back afterwards. */
	tty = isatty(STDIN_FILENO) && !tcgetattr(STDIN_FILENO, &tio);
	ret = esky_session_gdb(sh->s, &r);
	if (tty)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &tio);
	if (ret)
		return fail("cannot hand the program to gdb");
	if (r.why == ESKY_WHY_INTERRUPTED)
		printf("Back from gdb, %s\n", r.where);
	else
		print_stop(&r);
	return 0;
}

static int cmd_forget(struct shell *sh, int argc, char **argv)
{
	int *removed, id;
	size_t n;

	if (argc != 2)
		return usage(find_cmd("forget"));
	if (snapshot_arg(argv[1], &id))
		return -1;
	if (esky_session_forget(sh->s, id, &removed, &n))
		return fail("cannot forget");
	printf("Forgot snapshot%s", n > 1 ? "s" : "");
	for (size_t i = 0; i < n; i++)
		printf(" %d", removed[i]);
	printf("\n");
	free(removed);
	return 0;
}

static int cmd_help(struct shell *sh, int argc, char **argv);

static const struct cmd commands[] = {
	{ "file", NULL, cmd_file, "file PROGRAM", "choose the program to run" },
	{ "run", "r", cmd_run, "run [ARGS...] [<IN] [>OUT]",
	  "start (or restart) the program; ARGS and < > >> 2> 2>&1 stay for later runs" },
	{ "start", NULL, cmd_start, "start [ARGS...] [<IN] [>OUT]",
	  "start the program and stop at main (ARGS as for run)" },
	{ "set", NULL, cmd_set, "set args|env ...",
	  "set args ARGS: the arguments of the next run; set env NAME=VALUE" },
	{ "show", NULL, cmd_show, "show args|env [NAME]",
	  "show the arguments of the next run, or the program's environment" },
	{ "unset", NULL, cmd_unset, "unset env [NAME]",
	  "remove NAME from the program's environment (all without NAME)" },
	{ "cd", NULL, cmd_cd, "cd [DIR]", "the directory the program runs in from the next run" },
	{ "pwd", NULL, cmd_pwd, "pwd", "show the directory the program runs in" },
	{ "kill", "k", cmd_kill, "kill", "kill the program (snapshots stay)" },
	{ "quit", "q exit", cmd_quit, "quit", "leave esky-shell (the program is killed)" },
	{ "help", "h", cmd_help, "help [COMMAND]", "list the commands, or explain one" },
	{ "break", "b", cmd_break, "break LOCATION",
	  "stop at LOCATION: FILE:LINE, FUNCTION or *ADDRESS" },
	{ "tbreak", NULL, cmd_tbreak, "tbreak LOCATION", "stop at LOCATION once" },
	{ "delete", "d", cmd_delete, "delete [N...]", "delete breakpoints N (all without N)" },
	{ "continue", "c cont", cmd_continue, "continue [N]",
	  "run until the N-th breakpoint stop (snap points do not stop)" },
	{ "stepi", "si", cmd_stepi, "stepi [N]", "execute N machine instructions" },
	{ "next", "n", cmd_next, "next [N]",
	  "run N source lines, calls included (as gdb's next)" },
	{ "step", "s", cmd_step, "step [N]",
	  "run N source lines, entering functions that have line information" },
	{ "finish", "fin", cmd_finish, "finish",
	  "run until the current function returns; show its return value" },
	{ "until", "u", cmd_until, "until LOCATION", "run until LOCATION is reached" },
	{ "advance", NULL, cmd_until, "advance LOCATION", "run until LOCATION is reached" },
	{ "condition", NULL, cmd_condition, "condition N [EXPR]",
	  "stop at breakpoint N only when EXPR is true (no EXPR: always)" },
	{ "print", "p", cmd_print, "print EXPR",
	  "the value of EXPR: numbers, $registers, variables, *ADDRESS, &name, + - == < && ..." },
	{ "watch", NULL, cmd_watch, "watch VARIABLE|ADDRESS [LENGTH]",
	  "stop after an instruction writes there (a debug register; 4 at most)" },
	{ "snap-on-write", NULL, cmd_watch, "snap-on-write VARIABLE|ADDRESS [COUNT]",
	  "take a snapshot after each write there, without stopping" },
	{ "where", "bt backtrace", cmd_where, "where", "show where the program stands" },
	{ "thread", NULL, cmd_thread, "thread TID",
	  "look at thread TID (where, info registers); the program goes on from the one that stopped" },
	{ "info", "i", cmd_info, "info WHAT",
	  "WHAT: breakpoints, registers, threads, snapshots (tab-separated; or checkpoints) or store" },
	{ "x", NULL, cmd_x, "x ADDRESS [COUNT] | x/[N][xduo][bhwg] ADDRESS",
	  "show COUNT 8-byte words at ADDRESS (a number, $register, function or &variable); x/FMT as gdb's" },
	{ "snapshot", "checkpoint", cmd_snapshot, "snapshot [NOTE]", "take a snapshot now" },
	{ "snap", NULL, cmd_snap, "snap LOCATION [COUNT]",
	  "take a snapshot each time LOCATION is reached and go on (at most COUNT times)" },
	{ "every", NULL, cmd_every, "every DURATION|off",
	  "take a snapshot each time the program has run DURATION (50ms, 2s)" },
	{ "tree", NULL, cmd_tree, "tree", "show the snapshot tree; * marks where the program came from" },
	{ "rewind", "restart", cmd_rewind, "rewind N", "thaw snapshot N: the program stands there again" },
	{ "export", NULL, cmd_export, "export N FILE",
	  "write snapshot N as a checkpoint file for esky resume -f FILE" },
	{ "forget", NULL, cmd_forget, "forget N", "delete snapshot N and the snapshots below it" },
	{ "gcore", NULL, cmd_gcore, "gcore [N] FILE",
	  "write an ELF core file of snapshot N (or of the program now) for gdb" },
	{ "gdb", NULL, cmd_gdb, "gdb",
	  "hand the program to gdb here; when gdb quits, go on from where it left it" },
};

static bool has_alias(const struct cmd *c, const char *name)
{
	const char *a = c->aliases;
	size_t len = strlen(name);

	while (a && *a) {
		const char *sp = strchr(a, ' ');
		size_t al = sp ? (size_t)(sp - a) : strlen(a);

		if (al == len && !strncmp(a, name, len))
			return true;
		a = sp ? sp + 1 : NULL;
	}
	return false;
}

/* Exact name or alias, else a unique prefix of a name. */
static const struct cmd *find_cmd(const char *name)
{
	const struct cmd *found = NULL;
	size_t len = strlen(name);
	int matches = 0;

	for (size_t i = 0; i < ESKY_ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name) || has_alias(&commands[i], name))
			return &commands[i];
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(commands) && len; i++) {
		if (!strncmp(commands[i].name, name, len)) {
			found = &commands[i];
			matches++;
		}
	}
	return matches == 1 ? found : NULL;
}

static int usage(const struct cmd *c)
{
	fprintf(stderr, "usage: %s\n", c->usage);
	return -1;
}

static int cmd_help(struct shell *sh, int argc, char **argv)
{
	if (argc == 2) {
		const struct cmd *c = find_cmd(argv[1]);

		if (!c) {
			fprintf(stderr, "no command '%s' (help lists them)\n", argv[1]);
			return -1;
		}
		printf("%s\n  %s\n", c->usage, c->help);
		if (c->aliases)
			printf("  also: %s\n", c->aliases);
		return 0;
	}
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(commands); i++)
		printf("  %-28s %s\n", commands[i].usage, commands[i].help);
	return 0;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64], prev;

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j], best = prev + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

static void unknown(const char *name)
{
	const char *best = NULL;
	size_t bd = 99;

	for (size_t i = 0; i < ESKY_ARRAY_SIZE(commands); i++) {
		size_t d = edit_distance(name, commands[i].name);

		if (d < bd) {
			bd = d;
			best = commands[i].name;
		}
	}
	if (best && bd <= 2)
		fprintf(stderr, "unknown command '%s'; did you mean '%s'?\n", name, best);
	else
		fprintf(stderr, "unknown command '%s' (help lists them)\n", name);
}

/*
 * Split a line into words as a shell would: 'single' and "double" quotes
 * group, a backslash escapes; # at the start of a word starts a comment.
 * With op (run, start, set args), an unquoted < or > is a word of its own
 * with op[i] set, as sh reads redirections: `<`, `>`, `>>`, `>&N`, `<&N`,
 * with the fd before it when a lone digit is (`2>`, `2>&1`), so that
 * `run <in >out` and `run < in > out` are the same. The words are
 * written to buf, of 2 * strlen(line) + 2 bytes.
 */
static int tokenize(const char *line, char *buf, char **argv, bool *op)
{
	const char *p = line;
	char *out = buf;
	int argc = 0;

	while (argc < MAX_ARGS - 1) {
		bool quoted = false;
		char *word;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			break;
		word = out;
		if (op)
			op[argc] = false;
		while (*p && *p != ' ' && *p != '\t') {
			if (op && (*p == '<' || *p == '>')) {
				bool fd_before = !quoted && out - word == 1 && isdigit((unsigned char)word[0]);

				if (out > word && !fd_before)
					break; /* the word ends here, the operator is the next one */
				*out++ = *p;
				if (*p == '>' && p[1] == '>')
					*out++ = *++p;
				else if (p[1] == '&' && isdigit((unsigned char)p[2])) {
					*out++ = '&';
					*out++ = p[2];
					p += 2;
				}
				p++;
				op[argc] = true;
				break;
			}
			if (*p == '\'') {
				quoted = true;
				p++;
				while (*p && *p != '\'')
					*out++ = *p++;
				if (*p)
					p++;
			} else if (*p == '"') {
				quoted = true;
				p++;
				while (*p && *p != '"') {
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					*out++ = *p++;
				}
				if (*p)
					p++;
			} else if (*p == '\\' && p[1]) {
				quoted = true;
				p++;
				*out++ = *p++;
			} else {
				*out++ = *p++;
			}
		}
		*out++ = '\0';
		argv[argc++] = word;
	}
	argv[argc] = NULL;
	return argc;
}

int shell_execute(struct shell *sh, const char *line)
{
	char *copy = malloc(2 * strlen(line) + 2), *argv[MAX_ARGS];
	const struct cmd *c;
	int argc, ret;

	if (!copy)
		return -1;
	argc = tokenize(line, copy, argv, NULL);
	if (!argc) {
		free(copy);
		return 0;
	}
	/* gdb's x/FMT, the format glued to the command's name. */
	if (!strncmp(argv[0], "x/", 2)) {
		esky_error_clear();
		ret = cmd_x_fmt(sh, argc, argv, argv[0] + 2);
		fflush(stdout);
		free(copy);
		return ret;
	}
	c = find_cmd(argv[0]);
	if (!c) {
		unknown(argv[0]);
		free(copy);
		return -1;
	}
	esky_error_clear();
	sh->line = line;
	ret = c->run(sh, argc, argv);
	sh->line = NULL;
	fflush(stdout);
	free(copy);
	return ret;
}

const char *const *shell_command_names(void)
{
	static const char *names[ESKY_ARRAY_SIZE(commands) + 1];

	for (size_t i = 0; i < ESKY_ARRAY_SIZE(commands); i++)
		names[i] = commands[i].name;
	return names;
}

bool shell_wants_location(const char *line)
{
	char word[32];
	const struct cmd *c;

	if (sscanf(line, " %31s", word) != 1)
		return false;
	c = find_cmd(word);
	return c && (c->run == cmd_break || c->run == cmd_tbreak || c->run == cmd_snap);
}
