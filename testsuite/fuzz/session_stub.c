/*
 * A session without a program or a process, for the shell's fuzz target
 * (shell_fuzz.c): every function of session.h that shell/commands.c calls,
 * so that commands.c is fuzzed as esky-shell runs it, down to the session.
 *
 * What the shell hands over is checked against session.h (a count in
 * range, a redirection of fd 0, 1 or 2, a buffer as big as it says: the
 * stub writes all of it, so ASan sees a short one). What the session
 * itself parses runs for real: locations through esky_debuginfo_resolve
 * on this very executable's DWARF (built with -g: FILE:LINE of its own
 * sources, its functions, *ADDRESS), expressions through esky_expr_eval
 * with registers, symbols and memory made up here. Nothing is started,
 * written or changed outside this process: file, cd, export and gcore
 * only check their arguments.
 */
#include "session.h"
#include "shell_fuzz.h"

#include "debuginfo.h"
#include "expr.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BPS 32
#define MAX_WORDS 64 /* commands.c's MAX_ARGS */

struct esky_session {
	bool alive;
	struct esky_debuginfo *di;     /* this executable's, or NULL */
	struct esky_bpinfo bps[MAX_BPS];
	char *specs[MAX_BPS], *conds[MAX_BPS];
	size_t nbps;
	int next_bp;
	char **args;                   /* NULL-terminated */
	struct esky_redirect rd[MAX_WORDS];
	char *rd_paths[MAX_WORDS];
	size_t nrd;
	char **env;                    /* NULL-terminated */
};

static struct esky_session the_session;

/* The snapshots info snapshots and tree show: a branch, a root whose parent was forgotten. */
static const struct esky_snapinfo snaps[] = {
	{ .id = 1, .parent = 0, .cause = ESKY_SNAP_MANUAL, .run_ns = 1000, .bytes = 4096,
	  .location = "main at walk.c:90", .note = "" },
	{ .id = 2, .parent = 1, .cause = ESKY_SNAP_BREAK, .run_ns = 2000000, .bytes = 1 << 20,
	  .location = "step at walk.c:60", .note = "a note" },
	{ .id = 3, .parent = 1, .cause = ESKY_SNAP_TIMER, .run_ns = 3000000000, .bytes = 1ULL << 40,
	  .location = "step at walk.c:61", .note = "" },
	{ .id = 5, .parent = 4, .cause = ESKY_SNAP_MANUAL, .run_ns = UINT64_MAX, .bytes = UINT64_MAX,
	  .location = "0x401136", .note = "its parent forgotten" },
};

static void free_words(char **w)
{
	for (size_t i = 0; w && w[i]; i++)
		free(w[i]);
	free(w);
}

static void clear_redirects(struct esky_session *s)
{
	for (size_t i = 0; i < s->nrd; i++)
		free(s->rd_paths[i]);
	s->nrd = 0;
}

static int no_process(void)
{
	return esky_error(-ESRCH, "the program is not running (run, start or rewind N)");
}

/* A string the shell passed: strlen reads all of it (ASan: to its NUL, inside its buffer). */
static void check_str(const char *s, const char *what)
{
	if (!s)
		shell_fuzz_broken("%s: NULL", what);
	(void)strlen(s);
}

/* A message a failure left: one line (the shell prints it as one). */
static void check_error(int ret, const char *what)
{
	const char *msg = esky_last_error();

	if (ret >= 0)
		shell_fuzz_broken("%s returned %d, not 0 or -errno", what, ret);
	if (ret != -ENOMEM && !msg)
		shell_fuzz_broken("%s failed with %d and no message", what, ret);
	if (msg && strchr(msg, '\n'))
		shell_fuzz_broken("%s: a message of more than one line: \"%s\"", what, msg);
}

struct esky_session *shell_fuzz_session(void)
{
	struct esky_session *s = &the_session;

	/* The session lives across inputs, as esky-shell's does; its DWARF is read once. */
	if (!s->di && !s->next_bp) {
		if (esky_debuginfo_open("/proc/self/exe", &s->di)) {
			dprintf(text_fuzz_err_fd, "shell_fuzz: no debug information of its own (%s): "
				"locations are not fuzzed\n", esky_last_error());
			s->di = NULL;
		}
		s->next_bp = 1;
	}
	return s;
}

void shell_fuzz_session_reset(struct esky_session *s)
{
	esky_session_delete(s, 0);
	free_words(s->args);
	s->args = NULL;
	free_words(s->env);
	s->env = NULL;
	clear_redirects(s);
	s->alive = false;
	s->next_bp = 1;
}

/* ---- locations and expressions, the real parsers ---- */

static int resolve(struct esky_session *s, const char *spec, struct esky_loc **locs, size_t *n)
{
	int ret;

	check_str(spec, "a location");
	if (!s->di)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	esky_error_clear();
	ret = esky_debuginfo_resolve(s->di, spec, locs, n);
	if (ret) {
		check_error(ret, "esky_debuginfo_resolve");
		if (*locs || *n)
			shell_fuzz_broken("resolve of \"%s\" failed and returned %zu locations", spec,
					  *n);
		return ret;
	}
	if (!*n || !*locs)
		shell_fuzz_broken("resolve of \"%s\" succeeded with no location", spec);
	for (size_t i = 0; i < *n; i++) {
		if ((*locs)[i].function)
			(void)strlen((*locs)[i].function);
		if ((*locs)[i].file)
			(void)strlen((*locs)[i].file);
	}
	return 0;
}

static const char *const regs[] = { "pc", "rip", "sp", "rsp", "rax", "rdi", "rsi", "rdx", "fs_base" };

static int env_reg(void *ctx, const char *name, uint64_t *value)
{
	(void)ctx;
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(regs); i++)
		if (!strcmp(regs[i], name)) {
			*value = 0x401000 + 8 * i;
			return 0;
		}
	return esky_error(-ENOENT, "no register $%s", name);
}

static int env_sym(void *ctx, const char *name, uint64_t *addr, uint64_t *size)
{
	struct esky_session *s = ctx;
	struct esky_loc *locs;
	size_t n;

	if (s->di && !esky_debuginfo_object(s->di, name, addr, size))
		return 0;
	if (s->di && !esky_debuginfo_resolve(s->di, name, &locs, &n) && n) {
		*addr = locs[0].addr;
		*size = 0;
		esky_locs_free(locs, n);
		return 0;
	}
	esky_error_clear();
	return esky_error(-ENOENT, "no variable or function %s in the program", name);
}

static int env_mem(void *ctx, uint64_t addr, void *buf, size_t len)
{
	(void)ctx;
	if (len > 8)
		shell_fuzz_broken("the expression reads %zu bytes at once", len);
	if (addr < 4096)
		return esky_error(-EFAULT, "cannot read 0x%" PRIx64 ": no memory there", addr);
	memset(buf, (int)(addr & 0xff), len);
	return 0;
}

/* Everything exists: the expression fails only for its syntax. */
static int all_reg(void *ctx, const char *name, uint64_t *value)
{
	(void)ctx;
	*value = strlen(name);
	return 0;
}

static int all_sym(void *ctx, const char *name, uint64_t *addr, uint64_t *size)
{
	(void)ctx;
	*addr = 0x600000 + strlen(name);
	*size = strlen(name) % 10;
	return 0;
}

static int all_mem(void *ctx, uint64_t addr, void *buf, size_t len)
{
	(void)ctx;
	memset(buf, (int)(addr & 0xff), len);
	return 0;
}

/*
 * Evaluate text as the session does, and check the parser against
 * itself: the syntax check alone (condition's) and an evaluation where
 * every name exists must agree on whether text is an expression.
 */
static int eval(struct esky_session *s, const char *text, uint64_t *value)
{
	const struct esky_expr_env env = { env_reg, env_sym, env_mem, s };
	const struct esky_expr_env all = { all_reg, all_sym, all_mem, NULL };
	uint64_t v = 0;
	int syntax, full, ret;

	check_str(text, "an expression");
	esky_error_clear();
	syntax = esky_expr_eval(text, NULL, NULL);
	if (syntax)
		check_error(syntax, "esky_expr_eval (syntax)");
	esky_error_clear();
	full = esky_expr_eval(text, &all, &v);
	if (full)
		check_error(full, "esky_expr_eval (every name)");
	if (!syntax != !full)
		shell_fuzz_broken("\"%s\": the syntax check says %d, the evaluation %d", text, syntax,
				  full);
	esky_error_clear();
	ret = esky_expr_eval(text, &env, value);
	if (ret)
		check_error(ret, "esky_expr_eval");
	return ret;
}

/* ---- session.h ---- */

int esky_session_file(struct esky_session *s, const char *path)
{
	(void)s;
	check_str(path, "file");
	return esky_error(-ENOENT, "%s: the fuzz session loads no program", path);
}

const char *esky_session_program(const struct esky_session *s)
{
	return s->di ? "/proc/self/exe" : NULL;
}

int esky_session_set_args(struct esky_session *s, char *const args[])
{
	size_t n = 0;
	char **copy;

	while (args[n]) {
		check_str(args[n], "an argument");
		if (++n >= MAX_WORDS)
			shell_fuzz_broken("%zu arguments from a line of at most %d words", n, MAX_WORDS - 1);
	}
	copy = calloc(n + 1, sizeof(*copy));
	for (size_t i = 0; copy && i < n; i++)
		if (!(copy[i] = strdup(args[i]))) {
			free_words(copy);
			return -ENOMEM;
		}
	if (!copy)
		return -ENOMEM;
	free_words(s->args);
	s->args = copy;
	return 0;
}

char *const *esky_session_args(const struct esky_session *s)
{
	static char *const none[] = { NULL };

	return s->args ? s->args : none;
}

int esky_session_set_redirects(struct esky_session *s, const struct esky_redirect *r, size_t n)
{
	if (n > MAX_WORDS)
		shell_fuzz_broken("%zu redirections", n);
	clear_redirects(s);
	for (size_t i = 0; i < n; i++) {
		if (r[i].fd < 0 || r[i].fd > 2)
			shell_fuzz_broken("redirection %zu of fd %d", i, r[i].fd);
		if (r[i].kind == ESKY_REDIR_DUP) {
			if (r[i].to < 0 || r[i].to > 2)
				shell_fuzz_broken("redirection %zu to fd %d", i, r[i].to);
		} else if (r[i].kind == ESKY_REDIR_READ || r[i].kind == ESKY_REDIR_WRITE ||
			   r[i].kind == ESKY_REDIR_APPEND) {
			check_str(r[i].path, "a redirection's file");
		} else {
			shell_fuzz_broken("redirection %zu of kind %d", i, (int)r[i].kind);
		}
		/* (a copy's path is not set: the session reads it only for a file) */
		s->rd[i] = r[i];
		s->rd_paths[i] = r[i].kind != ESKY_REDIR_DUP ? strdup(r[i].path) : NULL;
		s->rd[i].path = s->rd_paths[i];
		s->nrd = i + 1;
		if (r[i].kind != ESKY_REDIR_DUP && !s->rd_paths[i])
			return -ENOMEM;
	}
	return 0;
}

const struct esky_redirect *esky_session_redirects(const struct esky_session *s, size_t *n)
{
	*n = s->nrd;
	return s->rd;
}

int esky_session_setenv(struct esky_session *s, const char *name, const char *value)
{
	size_t n = 0, len;
	char *var, **nv;

	check_str(name, "a variable's name");
	check_str(value, "a variable's value");
	if (!*name || strchr(name, '='))
		return esky_error(-EINVAL, "bad variable name '%s'", name);
	if (asprintf(&var, "%s=%s", name, value) < 0)
		return -ENOMEM;
	len = strlen(name);
	for (; s->env && s->env[n]; n++)
		if (!strncmp(s->env[n], name, len) && s->env[n][len] == '=') {
			free(s->env[n]);
			s->env[n] = var;
			return 0;
		}
	if (n >= 16) { /* the fuzzer would grow it without end */
		free(var);
		return 0;
	}
	nv = realloc(s->env, (n + 2) * sizeof(*nv));
	if (!nv) {
		free(var);
		return -ENOMEM;
	}
	nv[n] = var;
	nv[n + 1] = NULL;
	s->env = nv;
	return 0;
}

int esky_session_unsetenv(struct esky_session *s, const char *name)
{
	size_t j = 0, len;

	if (!name) {
		free_words(s->env);
		s->env = NULL;
		return 0;
	}
	check_str(name, "a variable's name");
	len = strlen(name);
	for (size_t i = 0; s->env && s->env[i]; i++) {
		if (!strncmp(s->env[i], name, len) && s->env[i][len] == '=')
			free(s->env[i]);
		else
			s->env[j++] = s->env[i];
	}
	if (s->env)
		s->env[j] = NULL;
	return 0;
}

char *const *esky_session_environ(const struct esky_session *s)
{
	static char *const none[] = { NULL };

	return s->env ? s->env : none;
}

int esky_session_chdir(struct esky_session *s, const char *dir)
{
	(void)s;
	check_str(dir, "a directory");
	return esky_error(-ENOENT, "cd %s: the fuzz session stays where it is", dir);
}

const char *esky_session_cwd(struct esky_session *s)
{
	(void)s;
	return "/fuzz";
}

static void report(struct esky_stop_report *r, enum esky_stop_why why)
{
	memset(r, 0, sizeof(*r));
	r->why = why;
	r->pc = 0x401136;
	r->sig = 11;
	r->bp = 1;
	snprintf(r->where, sizeof(r->where), "main at fuzz.c:1");
}

int esky_session_run(struct esky_session *s, struct esky_stop_report *r)
{
	s->alive = true;
	report(r, ESKY_WHY_BREAKPOINT);
	return 0;
}

int esky_session_start(struct esky_session *s, struct esky_stop_report *r)
{
	s->alive = true;
	report(r, ESKY_WHY_STARTED);
	return 0;
}

int esky_session_kill(struct esky_session *s)
{
	if (!s->alive)
		return no_process();
	s->alive = false;
	return 0;
}

bool esky_session_alive(const struct esky_session *s)
{
	return s->alive;
}

/* continue, next, step, stepi: a count from the shell's number(). */
static int go(struct esky_session *s, unsigned n, struct esky_stop_report *r, const char *what)
{
	if (!n || n > 1000000000)
		shell_fuzz_broken("%s %u", what, n);
	if (!s->alive)
		return no_process();
	/* Now and then the program ends, so that the commands meet both states. */
	if (n % 7 == 0) {
		s->alive = false;
		report(r, n % 2 ? ESKY_WHY_EXITED : ESKY_WHY_KILLED);
		return 0;
	}
	report(r, n % 3 ? ESKY_WHY_STEP : ESKY_WHY_WATCH);
	return 0;
}

int esky_session_continue(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	return go(s, n, r, "continue");
}

int esky_session_next(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	return go(s, n, r, "next");
}

int esky_session_step(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	return go(s, n, r, "step");
}

int esky_session_stepi(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	return go(s, n, r, "stepi");
}

int esky_session_finish(struct esky_session *s, struct esky_stop_report *r, uint64_t *value,
			char *from, size_t from_n)
{
	if (!s->alive)
		return no_process();
	memset(from, 'f', from_n);
	snprintf(from, from_n, "main at fuzz.c:1");
	*value = 42;
	report(r, ESKY_WHY_STEP);
	return 0;
}

int esky_session_until(struct esky_session *s, const char *spec, struct esky_stop_report *r)
{
	struct esky_loc *locs;
	size_t n;
	int ret = resolve(s, spec, &locs, &n);

	if (ret)
		return ret;
	esky_locs_free(locs, n);
	if (!s->alive)
		return no_process();
	report(r, ESKY_WHY_STEP);
	return 0;
}

int esky_session_break(struct esky_session *s, const char *spec, enum esky_bp_kind kind,
		       unsigned count, int *id)
{
	struct esky_bpinfo *b;
	struct esky_loc *locs;
	size_t n;
	int ret;

	check_str(spec, "a breakpoint's location");
	if (kind != ESKY_BP_BREAK && kind != ESKY_BP_TBREAK && kind != ESKY_BP_SNAP)
		shell_fuzz_broken("break of kind %d", (int)kind);
	if (count > 1000000000 || (count && kind != ESKY_BP_SNAP))
		shell_fuzz_broken("break of kind %d with count %u", (int)kind, count);
	ret = resolve(s, spec, &locs, &n);
	if (ret)
		return ret;
	if (s->nbps == MAX_BPS) {
		esky_locs_free(locs, n);
		return esky_error(-ENOSPC, "the fuzz session keeps %d breakpoints", MAX_BPS);
	}
	b = &s->bps[s->nbps];
	memset(b, 0, sizeof(*b));
	s->specs[s->nbps] = strdup(spec);
	if (!s->specs[s->nbps]) {
		esky_locs_free(locs, n);
		return -ENOMEM;
	}
	b->id = *id = s->next_bp++;
	b->kind = kind;
	b->spec = b->where = s->specs[s->nbps];
	b->addr = locs[0].addr;
	b->nlocs = n;
	b->count = count;
	b->pending = n > 3; /* both kinds of line, now and then */
	s->conds[s->nbps] = NULL;
	s->nbps++;
	esky_locs_free(locs, n);
	return 0;
}

int esky_session_watch(struct esky_session *s, const char *spec, unsigned len, bool snap,
		       unsigned count, int *id)
{
	uint64_t addr;
	int ret;

	check_str(spec, "a watchpoint's variable");
	if (len > 1000000000 || count > 1000000000 || (snap && len) || (!snap && count))
		shell_fuzz_broken("watch %s: length %u, count %u, snap %d", spec, len, count, snap);
	ret = esky_session_eval(s, spec[0] == '&' ? spec + 1 : spec, &addr);
	if (ret)
		return ret;
	*id = s->next_bp++;
	return 0;
}

static ssize_t find_bp(struct esky_session *s, int id)
{
	for (size_t i = 0; i < s->nbps; i++)
		if (s->bps[i].id == id)
			return (ssize_t)i;
	return -1;
}

int esky_session_condition(struct esky_session *s, int id, const char *cond)
{
	ssize_t i;
	char *c = NULL;
	int ret;

	if (id <= 0)
		shell_fuzz_broken("condition of breakpoint %d", id);
	i = find_bp(s, id);
	if (i < 0)
		return esky_error(-ENOENT, "no breakpoint %d", id);
	if (cond && *cond) {
		check_str(cond, "a condition");
		esky_error_clear();
		ret = esky_expr_eval(cond, NULL, NULL);
		if (ret) {
			check_error(ret, "esky_expr_eval (condition)");
			return ret;
		}
		c = strdup(cond);
		if (!c)
			return -ENOMEM;
	}
	free(s->conds[i]);
	s->conds[i] = c;
	s->bps[i].cond = c;
	return 0;
}

int esky_session_print(struct esky_session *s, const char *text, uint64_t *value)
{
	return eval(s, text, value);
}

int esky_session_delete(struct esky_session *s, int id)
{
	size_t j = 0;
	bool found = false;

	if (id < 0)
		shell_fuzz_broken("delete %d", id);
	for (size_t i = 0; i < s->nbps; i++) {
		if (!id || s->bps[i].id == id) {
			free(s->specs[i]);
			free(s->conds[i]);
			found = true;
			continue;
		}
		s->bps[j] = s->bps[i];
		s->specs[j] = s->specs[i];
		s->conds[j++] = s->conds[i];
	}
	s->nbps = j;
	if (id && !found)
		return esky_error(-ENOENT, "no breakpoint %d", id);
	return 0;
}

const struct esky_bpinfo *esky_session_breakpoints(struct esky_session *s, size_t *n)
{
	*n = s->nbps;
	return s->bps;
}

int esky_session_where(struct esky_session *s, struct esky_stop_report *r)
{
	if (!s->alive)
		return no_process();
	report(r, ESKY_WHY_STEP);
	r->thread = 1234;
	return 0;
}

int esky_session_thread(const struct esky_session *s)
{
	return s->alive ? 1234 : 0;
}

int esky_session_threads(struct esky_session *s, struct esky_thread_info **out, size_t *n)
{
	struct esky_thread_info *v;

	if (!s->alive)
		return no_process();
	v = calloc(2, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v[0] = (struct esky_thread_info){ .tid = 1234, .current = true, .name = "fuzz", .pc = 1,
					  .where = "main at fuzz.c:1" };
	v[1] = (struct esky_thread_info){ .tid = 1235, .name = "worker", .pc = 2,
					  .where = "work at fuzz.c:2" };
	*out = v;
	*n = 2;
	return 0;
}

int esky_session_select_thread(struct esky_session *s, int tid)
{
	if (tid <= 0)
		shell_fuzz_broken("thread %d", tid);
	if (!s->alive)
		return no_process();
	return tid == 1234 || tid == 1235 ? 0 : esky_error(-ESRCH, "no thread %d", tid);
}

int esky_session_registers(struct esky_session *s, char *buf, size_t n)
{
	if (!s->alive)
		return no_process();
	memset(buf, 'r', n); /* all of it: ASan sees a buffer smaller than n */
	snprintf(buf, n, "rip            0x401136\nrsp            0x7ffc0000\n");
	return 0;
}

int esky_session_eval(struct esky_session *s, const char *expr, uint64_t *addr)
{
	struct esky_loc *locs;
	size_t n;
	int ret;

	check_str(expr, "an address");
	if (!esky_parse_u64(expr, addr))
		return 0;
	if (expr[0] == '$')
		return s->alive ? env_reg(s, expr + 1, addr) : no_process();
	ret = resolve(s, expr, &locs, &n);
	if (ret)
		return ret;
	*addr = locs[0].addr;
	esky_locs_free(locs, n);
	return 0;
}

int esky_session_read(struct esky_session *s, uint64_t addr, void *buf, size_t len)
{
	if (!len || len > 2048)
		shell_fuzz_broken("a read of %zu bytes", len);
	if (!s->alive)
		return no_process();
	memset(buf, (int)(addr & 0xff), len);
	return 0;
}

const char *esky_session_pages_mode(const struct esky_session *s, char *buf, size_t n)
{
	(void)s;
	memset(buf, 'p', n);
	snprintf(buf, n, "userfaultfd write-protect (fuzz)");
	return buf;
}

const char *esky_session_store_dir(const struct esky_session *s)
{
	(void)s;
	return "/fuzz/.esky/store";
}

int esky_session_snapshot(struct esky_session *s, const char *note, int *id)
{
	check_str(note, "a note");
	if (!s->alive)
		return no_process();
	*id = 2;
	return 0;
}

int esky_session_every(struct esky_session *s, uint64_t ns)
{
	(void)s;
	if (ns && (ns < 1000000 || ns > 1000000000000000ULL))
		shell_fuzz_broken("every %" PRIu64 " ns", ns);
	return 0;
}

/* rewind, export, gcore, forget: a snapshot number from snapshot_arg (0: gcore's "now"). */
static int snapshot_id(int id, bool zero_ok, const char *what)
{
	if (id < 0 || id > 1000000000 || (!id && !zero_ok))
		shell_fuzz_broken("%s of snapshot %d", what, id);
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(snaps); i++)
		if (snaps[i].id == id)
			return 0;
	return id ? esky_error(-ENOENT, "no snapshot %d (tree lists them)", id) : 0;
}

int esky_session_rewind(struct esky_session *s, int id, struct esky_stop_report *r)
{
	int ret = snapshot_id(id, false, "rewind");

	if (ret)
		return ret;
	s->alive = true;
	report(r, ESKY_WHY_REWOUND);
	return 0;
}

int esky_session_export(struct esky_session *s, int id, const char *path)
{
	(void)s;
	check_str(path, "export's file");
	return snapshot_id(id, false, "export");
}

int esky_session_gcore(struct esky_session *s, int id, const char *path)
{
	check_str(path, "gcore's file");
	if (!id && !s->alive)
		return no_process();
	return snapshot_id(id, true, "gcore");
}

int esky_session_gdb(struct esky_session *s, struct esky_stop_report *r)
{
	(void)r;
	if (!s->alive)
		return no_process();
	return esky_error(-ENOENT, "gdb: not in the fuzz session");
}

int esky_session_forget(struct esky_session *s, int id, int **removed, size_t *n)
{
	int ret = snapshot_id(id, false, "forget");

	(void)s;
	if (ret)
		return ret;
	*removed = malloc(sizeof(**removed));
	if (!*removed)
		return -ENOMEM;
	**removed = id;
	*n = 1;
	return 0;
}

const struct esky_snapinfo *esky_session_snapshots(struct esky_session *s, size_t *n)
{
	(void)s;
	*n = ESKY_ARRAY_SIZE(snaps);
	return snaps;
}

int esky_session_current(const struct esky_session *s)
{
	(void)s;
	return 2;
}

int esky_session_describe(struct esky_session *s, uint64_t addr, char *buf, size_t n)
{
	memset(buf, 'd', n);
	if (s->di)
		esky_debuginfo_describe(s->di, addr, buf, n);
	else
		snprintf(buf, n, "0x%" PRIx64, addr);
	return 0;
}

int esky_session_lines(struct esky_session *s, const char *spec, uint64_t **addrs, size_t *n)
{
	struct esky_loc *locs;
	int ret = resolve(s, spec, &locs, n);

	if (ret)
		return ret;
	*addrs = calloc(*n, sizeof(**addrs));
	for (size_t i = 0; *addrs && i < *n; i++)
		(*addrs)[i] = locs[i].addr;
	esky_locs_free(locs, *n);
	return *addrs ? 0 : -ENOMEM;
}

int esky_session_libraries(struct esky_session *s,
			   void (*fn)(void *ctx, uint64_t lo, uint64_t hi, const char *path),
			   void *ctx)
{
	if (!s->alive)
		return no_process();
	fn(ctx, 0x7f0000000000, 0x7f0000200000, "/lib/x86_64-linux-gnu/libc.so.6");
	return 0;
}
