/* A debugging session of esky-shell, see session.h. */
#include "session.h"
#include "arch.h"
#include "core.h"
#include "debuginfo.h"
#include "dirty.h"
#include "expr.h"
#include "gdb.h"
#include "image.h"
#include "log.h"
#include "proc.h"
#include "rewind.h"
#include "restore.h"
#include "target.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

struct bp {
	int id;
	enum esky_bp_kind kind;
	char *spec;
	char *where;
	uint64_t *link;   /* link-time addresses */
	size_t nlocs;
	unsigned hits;
	unsigned count;
	bool warned;      /* said once that it is not in the program's code */
	char *cond;       /* break LOC if COND: stop (or snapshot) only when true */
	/*
	 * A breakpoint in a shared library: FUNCTION of the library LIB ("" for
	 * any library), NULL for the program's own. Its link[0] is then a
	 * runtime address, found again at each run, rewind and library load
	 * (nlocs 0: pending, no mapped library has it).
	 */
	char *lib, *func;
	bool lib_seen;    /* a library named lib is mapped (the last resolve saw it) */
};

/* An int3 we put in the program's text, with the byte it replaced. */
struct site {
	uint64_t addr;
	uint8_t orig;
};

enum pending_stop { PENDING_NONE, PENDING_TIMER, PENDING_USER };

struct esky_session {
	struct esky_store *store;
	char *program;
	char **args;
	struct esky_redirect *redirs; /* for the next runs, paths owned */
	size_t nredirs;
	char **env;               /* the program's environment; NULL: ours */
	char *cwd;                /* the program's directory; NULL: ours */
	char *own_cwd;            /* ours, as esky_session_cwd last said */
	struct esky_debuginfo *di;
	struct esky_target *t;
	char *agent;
	uint64_t bias;            /* runtime - link address of the program */
	uint64_t exe_lo, exe_hi;  /* where the program's file is mapped */
	struct code_range { uint64_t lo, hi; } *code; /* its executable mappings */
	size_t ncode;
	struct bp *bps;
	size_t nbps;
	int next_bp;
	struct esky_bpinfo *info;
	struct site *sites;
	size_t nsites;
	/* the snapshot the process descends from, and the hashes of its pages */
	int lineage;
	uint8_t lineage_id[16];
	struct esky_page_hash *hashes;
	size_t nhashes;
	uint64_t every_ns, every_left;
	enum pending_stop pending;
	int timer_fd, intr_fd, sig_fd;
	esky_session_notify_fn notify;
	void *notify_ctx;
	/* esky snap: snapshots go to standalone files, not to the store (NULL) */
	struct esky_snapfile_sink sink;
	bool pass_signals;        /* the program gets its signals as without esky */
	int snap_bp;              /* the breakpoint taking the snapshot, 0: timer */
	unsigned snap_hit;        /* its hit number */
	unsigned timer_hits;
	/*
	 * Dirty-page tracking since the last snapshot (NULL: content hashes).
	 * track_pages is the wish (esky_session_track_pages); tracking_said
	 * keeps the reason it is off from being said twice.
	 */
	struct esky_dirty *dirty;
	struct esky_maps_cache maps_cache; /* smaps of the last snapshot, while tracking lasts */
	bool in_place;          /* rewinds may write what differs into the live program */
	/*
	 * A timer snapshot written while the program stood, recorded in the
	 * store's tree once it runs again (the tree's write and fsync are
	 * not the program's to wait for): set between the two.
	 */
	bool unrecorded;
	struct esky_snapinfo unrecorded_si;
	char *unrecorded_path;
	/*
	 * The id the next timer snapshot takes, reserved while the program
	 * runs (a reservation reads and writes the tree: ~2 ms); 0: none.
	 */
	int spare_id;
	/* hardware watchpoints: slot i is debug register i */
	struct watch {
		int id;
		char *spec;
		uint64_t link;      /* a symbol's link-time address (bias added at each run) */
		uint64_t abs;       /* or an absolute address */
		bool is_symbol, snap;
		unsigned len, hits, count;
		uint64_t old;
	} *watches;
	size_t nwatches;
	/* run control by source line: an internal stop at goal_addr once sp > goal_sp */
	bool goal;
	uint64_t goal_addr, goal_sp;
	pid_t goal_thread;     /* ... in this thread (another one's passing there is not it) */
	bool track_pages;
	int tracking_err;         /* why it could not start (-errno), or 0 */
	/* symbols of the libraries, opened when an address in them is named */
	struct lib_syms {
		char *path;
		struct esky_debuginfo *di; /* NULL if it could not be read */
	} *libs;
	size_t nlibs;
	/*
	 * _dl_debug_state of the dynamic linker, where the program stops
	 * silently after each library load or unload (the r_debug protocol
	 * gdb uses) while there are library breakpoints; 0: none.
	 */
	uint64_t dl_state;
};

extern char **environ;

static int no_process(void)
{
	return esky_error(-ESRCH, "the program is not running (run, start or rewind N)");
}

static void notify(struct esky_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notify(struct esky_session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!s->notify)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->notify(s->notify_ctx, line);
}

static int session_new(const char *store_dir, const struct esky_snapfile_sink *sink,
		       struct esky_session **out)
{
	struct esky_session *s = calloc(1, sizeof(*s));
	sigset_t set;
	int ret = 0;

	if (!s)
		return -ENOMEM;
	/* Before the shell ignores SIGPIPE: the program must not inherit that. */
	esky_tracee_note_inherited_signals();
	s->next_bp = 1;
	s->track_pages = true;
	s->in_place = true;
	s->timer_fd = s->intr_fd = s->sig_fd = -1;
	if (sink)
		s->sink = *sink;
	else
		ret = store_dir ? esky_store_open(store_dir, true, &s->store)
				: esky_store_create_fresh(".esky", &s->store);
	if (!sink && ret)
		goto out_free;
	/* Program stops arrive as SIGCHLD, read from a signalfd beside the timer. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	s->intr_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->sig_fd < 0 || s->timer_fd < 0 || s->intr_fd < 0) {
		ret = esky_error(-errno, "cannot set up the session: %s", strerror(errno));
		goto out_free;
	}
	s->lineage = 0;
	*out = s;
	return 0;
out_free:
	esky_session_free(s);
	return ret;
}

int esky_session_new(const char *store_dir, struct esky_session **out)
{
	return session_new(store_dir, NULL, out);
}

int esky_session_new_files(const struct esky_snapfile_sink *sink, struct esky_session **out)
{
	if (!sink || !sink->name)
		return -EINVAL;
	return session_new(NULL, sink, out);
}

void esky_session_pass_signals(struct esky_session *s, bool on)
{
	s->pass_signals = on;
	if (s->t)
		esky_target_report_signals(s->t, !on);
}

pid_t esky_session_pid(const struct esky_session *s)
{
	return esky_session_alive(s) ? esky_target_pid(s->t) : 0;
}

static void session_idle(void *ctx);
static void thread_born(void *ctx, struct esky_tracee *tr);

static int program_tid(pid_t tid);

int esky_session_thread(const struct esky_session *s)
{
	if (!esky_session_alive(s) || esky_target_thread_count(s->t) < 2)
		return 0;
	return program_tid(esky_target_thread(s->t));
}

/* The store-only commands, in a session that writes files (esky snap). */
static int no_store(void)
{
	return esky_error(-ENOTSUP, "this session keeps no snapshot store");
}

static void free_redirects(struct esky_redirect *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *)r[i].path);
	free(r);
}

static void free_strings(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void free_bp(struct bp *b)
{
	free(b->spec);
	free(b->where);
	free(b->link);
	free(b->cond);
	free(b->lib);
	free(b->func);
}

static void stop_tracking(struct esky_session *s)
{
	esky_dirty_free(s->dirty);
	s->dirty = NULL;
	/* Nobody vouches for what happened in between (gdb, a new process). */
	esky_maps_cache_clear(&s->maps_cache);
}

static void drop_process(struct esky_session *s)
{
	stop_tracking(s);
	if (s->t)
		esky_target_free(s->t);
	s->t = NULL;
	s->nsites = 0;
	/* An interrupt asked of the old process will never come. */
	s->pending = PENDING_NONE;
}

static void release_spare(struct esky_session *s);
static int take_snapshot_as(struct esky_session *s, enum esky_snap_cause cause, const char *note,
			    int *idp, bool defer);
static int record_snapshot(struct esky_session *s);

void esky_session_free(struct esky_session *s)
{
	if (!s)
		return;
	if (s->unrecorded && record_snapshot(s))
		esky_error_clear();
	release_spare(s);
	drop_process(s);
	for (size_t i = 0; i < s->nbps; i++)
		free_bp(&s->bps[i]);
	free(s->bps);
	for (size_t i = 0; i < s->nwatches; i++)
		free(s->watches[i].spec);
	free(s->watches);
	free(s->info);
	free(s->sites);
	free(s->code);
	free(s->hashes);
	free_strings(s->args);
	free_redirects(s->redirs, s->nredirs);
	free_strings(s->env);
	free(s->cwd);
	free(s->own_cwd);
	free(s->program);
	free(s->agent);
	for (size_t i = 0; i < s->nlibs; i++) {
		free(s->libs[i].path);
		if (s->libs[i].di)
			esky_debuginfo_close(s->libs[i].di);
	}
	free(s->libs);
	if (s->di)
		esky_debuginfo_close(s->di);
	if (s->store)
		esky_store_close(s->store);
	for (int *fd = &s->timer_fd; fd <= &s->sig_fd; fd++)
		if (*fd >= 0)
			close(*fd);
	free(s);
}

void esky_session_set_notify(struct esky_session *s, esky_session_notify_fn fn, void *ctx)
{
	s->notify = fn;
	s->notify_ctx = ctx;
}

const char *esky_session_store_dir(const struct esky_session *s)
{
	return s->store ? esky_store_dir(s->store) : NULL;
}

int esky_session_interrupt_fd(const struct esky_session *s)
{
	return s->intr_fd;
}

/* PROGRAM as execvp would find it, made absolute. */
static char *find_program(const char *name)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(name, '/') || !path)
		return realpath(name, NULL);
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t len = colon ? (size_t)(colon - path) : strlen(path);

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, len ? path : ".", name);
		if (access(buf, X_OK) == 0)
			return realpath(buf, NULL);
		path += len + (colon ? 1 : 0);
		if (!colon)
			break;
	}
	return NULL;
}

int esky_session_file(struct esky_session *s, const char *path)
{
	struct esky_debuginfo *di;
	char *full = find_program(path);
	int ret;

	if (!full)
		return esky_error(-ENOENT, "%s: no such program", path);
	if (access(full, X_OK) < 0) {
		ret = esky_error(-errno, "%s: %s", path, strerror(errno));
		free(full);
		return ret;
	}
	ret = esky_debuginfo_open(full, &di);
	if (ret) {
		free(full);
		return ret;
	}
	if (s->di)
		esky_debuginfo_close(s->di);
	free(s->program);
	s->di = di;
	s->program = full;
	return 0;
}

const char *esky_session_program(const struct esky_session *s)
{
	return s->program;
}

int esky_session_set_args(struct esky_session *s, char *const args[])
{
	size_t n = 0;
	char **na;

	while (args && args[n])
		n++;
	na = calloc(n + 1, sizeof(*na));
	if (!na)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		na[i] = strdup(args[i]);
		if (!na[i]) {
			while (i--)
				free(na[i]);
			free(na);
			return -ENOMEM;
		}
	}
	free_strings(s->args);
	s->args = na;
	return 0;
}

char *const *esky_session_args(const struct esky_session *s)
{
	static char *const none[] = { NULL };

	return s->args ? s->args : none;
}

int esky_session_set_redirects(struct esky_session *s, const struct esky_redirect *r, size_t n)
{
	struct esky_redirect *nr = NULL;

	for (size_t i = 0; i < n; i++)
		if (r[i].fd < 0 || r[i].fd > 2 ||
		    (r[i].kind == ESKY_REDIR_DUP ? r[i].to < 0 || r[i].to > 2 : !r[i].path))
			return esky_error(-EINVAL, "bad redirection of fd %d: only 0, 1 and 2, "
					  "to a file or to one of them", r[i].fd);
	if (n && !(nr = calloc(n, sizeof(*nr))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		nr[i] = r[i];
		nr[i].path = NULL;
		if (r[i].kind != ESKY_REDIR_DUP && !(nr[i].path = strdup(r[i].path))) {
			free_redirects(nr, i);
			return -ENOMEM;
		}
	}
	free_redirects(s->redirs, s->nredirs);
	s->redirs = nr;
	s->nredirs = n;
	return 0;
}

const struct esky_redirect *esky_session_redirects(const struct esky_session *s, size_t *n)
{
	*n = s->nredirs;
	return s->redirs;
}

/* The environment the program gets, copied from ours to be changed. */
static int own_environ(struct esky_session *s)
{
	size_t n = 0;

	if (s->env)
		return 0;
	while (environ && environ[n])
		n++;
	s->env = calloc(n + 1, sizeof(*s->env));
	if (!s->env)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		s->env[i] = strdup(environ[i]);
		if (!s->env[i]) {
			free_strings(s->env);
			s->env = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

/* Index of NAME in env, or -1. */
static long env_find(char **env, const char *name)
{
	size_t len = strlen(name);

	for (long i = 0; env[i]; i++)
		if (!strncmp(env[i], name, len) && env[i][len] == '=')
			return i;
	return -1;
}

static int env_name_ok(const char *name)
{
	if (!name[0] || strchr(name, '='))
		return esky_error(-EINVAL, "bad environment variable name '%s'", name);
	return 0;
}

int esky_session_setenv(struct esky_session *s, const char *name, const char *value)
{
	char *entry, **ne;
	size_t n = 0;
	long i;
	int ret = env_name_ok(name);

	if (!ret)
		ret = own_environ(s);
	if (ret)
		return ret;
	if (asprintf(&entry, "%s=%s", name, value) < 0)
		return -ENOMEM;
	i = env_find(s->env, name);
	if (i >= 0) {
		free(s->env[i]);
		s->env[i] = entry;
		return 0;
	}
	while (s->env[n])
		n++;
	ne = realloc(s->env, (n + 2) * sizeof(*ne));
	if (!ne) {
		free(entry);
		return -ENOMEM;
	}
	ne[n] = entry;
	ne[n + 1] = NULL;
	s->env = ne;
	return 0;
}

int esky_session_unsetenv(struct esky_session *s, const char *name)
{
	long i;
	int ret = name ? env_name_ok(name) : 0;

	if (!ret)
		ret = own_environ(s);
	if (ret)
		return ret;
	if (!name) {
		for (i = 0; s->env[i]; i++)
			free(s->env[i]);
		s->env[0] = NULL;
		return 0;
	}
	i = env_find(s->env, name);
	if (i < 0)
		return 0;
	free(s->env[i]);
	do
		s->env[i] = s->env[i + 1];
	while (s->env[++i]);
	return 0;
}

char *const *esky_session_environ(const struct esky_session *s)
{
	return s->env ? s->env : environ;
}

int esky_session_chdir(struct esky_session *s, const char *dir)
{
	const char *base = esky_session_cwd(s);
	char *path = NULL, *full;
	struct stat st;
	int ret = 0;

	if (!dir[0])
		return esky_error(-ENOENT, "'': no such directory");
	if (dir[0] == '/' ? !(path = strdup(dir)) : asprintf(&path, "%s/%s", base, dir) < 0)
		return -ENOMEM;
	full = realpath(path, NULL);
	if (!full || stat(full, &st) < 0)
		ret = esky_error(-errno, "%s: %s", dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		ret = esky_error(-ENOTDIR, "%s: not a directory", dir);
	else if (access(full, X_OK) < 0)
		ret = esky_error(-errno, "%s: %s", dir, strerror(errno));
	free(path);
	if (ret) {
		free(full);
		return ret;
	}
	free(s->cwd);
	s->cwd = full;
	return 0;
}

const char *esky_session_cwd(struct esky_session *s)
{
	if (s->cwd)
		return s->cwd;
	free(s->own_cwd);
	s->own_cwd = getcwd(NULL, 0);
	return s->own_cwd ? s->own_cwd : ".";
}

bool esky_session_alive(const struct esky_session *s)
{
	return s->t && esky_target_alive(s->t);
}

/* Where the program's file is mapped, hence the load bias of a PIE. */
static void find_bias(struct esky_session *s)
{
	struct esky_vma *vmas;
	size_t n;
	bool found = false;

	s->bias = 0;
	s->exe_lo = s->exe_hi = 0;
	s->ncode = 0;
	if (!s->t || esky_proc_read_maps(esky_target_pid(s->t), false, &vmas, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		if (!vmas[i].path || !s->program || strcmp(vmas[i].path, s->program))
			continue;
		if (vmas[i].prot & PROT_EXEC) {
			struct code_range *nc = realloc(s->code, (s->ncode + 1) * sizeof(*nc));

			if (nc) {
				s->code = nc;
				s->code[s->ncode++] = (struct code_range){ vmas[i].start, vmas[i].end };
			}
		}
		if (!found || vmas[i].start < s->exe_lo)
			s->exe_lo = vmas[i].start;
		if (vmas[i].end > s->exe_hi)
			s->exe_hi = vmas[i].end;
		if (vmas[i].pgoff == 0 && s->di && esky_debuginfo_is_pie(s->di) && !found)
			s->bias = vmas[i].start - esky_debuginfo_first_vaddr(s->di);
		found = true;
	}
	esky_vmas_free(vmas, n);
}

static struct esky_debuginfo *lib_syms(struct esky_session *s, const char *path)
{
	struct lib_syms *nl;

	for (size_t i = 0; i < s->nlibs; i++)
		if (!strcmp(s->libs[i].path, path))
			return s->libs[i].di;
	nl = realloc(s->libs, (s->nlibs + 1) * sizeof(*nl));
	if (!nl)
		return NULL;
	s->libs = nl;
	nl[s->nlibs].path = strdup(path);
	nl[s->nlibs].di = NULL;
	if (!nl[s->nlibs].path)
		return NULL;
	if (esky_debuginfo_open(path, &nl[s->nlibs].di))
		nl[s->nlibs].di = NULL;
	esky_error_clear();
	return nl[s->nlibs++].di;
}

/* "symbol+0x1c in libc.so.6" for an address in a mapped library. */
static void describe_in_lib(struct esky_session *s, const struct esky_vma *vmas, size_t nv,
			    const struct esky_vma *hit, uint64_t pc, char *buf, size_t n)
{
	const char *base = strrchr(hit->path, '/');
	struct esky_debuginfo *di = hit->path[0] == '/' ? lib_syms(s, hit->path) : NULL;
	uint64_t bias = 0;
	char sym[256];

	base = base ? base + 1 : hit->path;
	if (di && esky_debuginfo_is_pie(di)) {
		for (size_t i = 0; i < nv; i++)
			if (vmas[i].path && !strcmp(vmas[i].path, hit->path) && vmas[i].pgoff == 0) {
				bias = vmas[i].start - esky_debuginfo_first_vaddr(di);
				break;
			}
	}
	if (di) {
		esky_debuginfo_describe(di, pc - bias, sym, sizeof(sym));
		if (strncmp(sym, "0x", 2)) {
			snprintf(buf, n, "%s in %s", sym, base);
			return;
		}
	}
	snprintf(buf, n, "0x%" PRIx64 " in %s", pc, base);
}

/* The base name of path is name or starts with it ("libc" for libc.so.6). */
static bool lib_matches(const char *path, const char *name)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, name, strlen(name));
}

/* runtime - link address of the library mapped from path (0 if not a PIE). */
static uint64_t lib_bias(struct esky_debuginfo *di, const struct esky_vma *vmas, size_t nv,
			 const char *path)
{
	if (!esky_debuginfo_is_pie(di))
		return 0;
	for (size_t i = 0; i < nv; i++)
		if (vmas[i].path && !strcmp(vmas[i].path, path) && vmas[i].pgoff == 0)
			return vmas[i].start - esky_debuginfo_first_vaddr(di);
	return 0;
}

/* The runtime address of function in the library at path, or 0. */
static uint64_t lib_function(struct esky_debuginfo *di, const struct esky_vma *vmas, size_t nv,
			     const char *path, const char *function)
{
	struct esky_loc *locs;
	uint64_t addr = 0;
	size_t n;

	if (!esky_debuginfo_resolve(di, function, &locs, &n)) {
		if (n)
			addr = locs[0].addr + lib_bias(di, vmas, nv, path);
		esky_locs_free(locs, n);
	}
	esky_error_clear();
	return addr;
}

/*
 * Find the library breakpoints in the libraries mapped now (addresses
 * change at each run: ASLR): each at its function in the first library,
 * in address order, that has it; none has it: pending. Also finds the
 * dynamic linker's _dl_debug_state, to come back when libraries change.
 */
static void resolve_libs(struct esky_session *s)
{
	struct esky_vma *vmas;
	size_t nv;
	bool any = false;

	s->dl_state = 0;
	for (size_t i = 0; i < s->nbps; i++) {
		if (!s->bps[i].lib)
			continue;
		any = true;
		s->bps[i].nlocs = 0;
		s->bps[i].lib_seen = false;
	}
	if (!any)
		return;
	if (!esky_session_alive(s) || esky_proc_read_maps(esky_target_pid(s->t), false, &vmas, &nv))
		nv = 0, vmas = NULL;
	for (size_t i = 0; i < nv; i++) {
		const char *path = vmas[i].path, *base;
		struct esky_debuginfo *di;
		bool seen = false;

		if (!path || path[0] != '/' || !(vmas[i].prot & PROT_EXEC) ||
		    (s->program && !strcmp(path, s->program)))
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = (vmas[k].prot & PROT_EXEC) && vmas[k].path && !strcmp(vmas[k].path, path);
		if (seen || !(di = lib_syms(s, path)))
			continue;
		base = strrchr(path, '/') + 1;
		if (!s->dl_state && !strncmp(base, "ld-", 3))
			s->dl_state = lib_function(di, vmas, nv, path, "_dl_debug_state");
		for (size_t j = 0; j < s->nbps; j++) {
			struct bp *b = &s->bps[j];
			char where[512];
			uint64_t addr;

			if (!b->lib || b->nlocs || !lib_matches(path, b->lib))
				continue;
			b->lib_seen = true;
			addr = lib_function(di, vmas, nv, path, b->func);
			if (!addr)
				continue;
			snprintf(where, sizeof(where), "%s in %s", b->func, base);
			free(b->where);
			b->where = strdup(where);
			b->link[0] = addr;
			b->nlocs = 1;
		}
	}
	if (vmas)
		esky_vmas_free(vmas, nv);
	for (size_t i = 0; i < s->nbps; i++) {
		struct bp *b = &s->bps[i];
		char where[512];

		if (!b->lib || b->nlocs)
			continue;
		snprintf(where, sizeof(where), "%s (pending)", b->spec);
		free(b->where);
		b->where = strdup(where);
	}
}

/* Where breakpoint b's location j is in the running program. */
static uint64_t bp_addr(const struct esky_session *s, const struct bp *b, size_t j)
{
	return b->lib ? b->link[j] : b->link[j] + s->bias;
}

/* Whether addr is in an executable mapping of the program's own file (as find_bias saw them). */
static bool in_program_code(const struct esky_session *s, uint64_t addr)
{
	for (size_t i = 0; i < s->ncode; i++)
		if (addr >= s->code[i].lo && addr < s->code[i].hi)
			return true;
	return false;
}

#define CALLER_SCAN_BYTES 4096

/*
 * The return address into the program's code nearest the top of the stack:
 * where the program called the library it stands in. A word is taken for a
 * return address when the bytes before it end with a call instruction. A
 * heuristic (no unwind tables), only used to name a place.
 */
static bool find_program_caller(struct esky_session *s, const struct esky_vma *vmas, size_t nv,
				uint64_t *ret_addr)
{
	uint64_t words[CALLER_SCAN_BYTES / 8];
	esky_regs_t regs;
	uint64_t sp;

	if (!s->di || esky_target_get_regs(s->t, &regs))
		return false;
	sp = arch_regs_sp(&regs);
	for (size_t i = 0; i < nv; i++)
		if (sp >= vmas[i].start && sp < vmas[i].end) {
			size_t len = vmas[i].end - sp < sizeof(words) ? vmas[i].end - sp : sizeof(words);

			if (esky_target_read_mem(s->t, sp, words, len & ~(size_t)7))
				return false;
			for (size_t k = 0; k < len / 8; k++) {
				uint8_t code[ARCH_CALL_MAX_LEN];
				uint64_t w = words[k];

				if (w < s->exe_lo + ARCH_CALL_MAX_LEN || !in_program_code(s, w - 1) ||
				    esky_target_read_mem(s->t, w - sizeof(code), code, sizeof(code)) ||
				    !arch_follows_call(code))
					continue;
				*ret_addr = w;
				return true;
			}
			return false;
		}
	return false;
}

static void describe(struct esky_session *s, uint64_t pc, char *buf, size_t n)
{
	struct esky_vma *vmas;
	size_t nv;
	uint64_t ret_addr;

	if (s->di && pc >= s->exe_lo && pc < s->exe_hi) {
		esky_debuginfo_describe(s->di, pc - s->bias, buf, n);
		return;
	}
	snprintf(buf, n, "0x%" PRIx64, pc);
	if (!s->t || esky_proc_read_maps(esky_target_pid(s->t), false, &vmas, &nv))
		return;
	for (size_t i = 0; i < nv; i++) {
		if (pc >= vmas[i].start && pc < vmas[i].end && vmas[i].path) {
			describe_in_lib(s, vmas, nv, &vmas[i], pc, buf, n);
			break;
		}
	}
	if (find_program_caller(s, vmas, nv, &ret_addr)) {
		size_t len = strlen(buf);
		char caller[256];

		/* The call instruction's own line: the byte before the return address. */
		esky_debuginfo_describe(s->di, ret_addr - 1 - s->bias, caller, sizeof(caller));
		if (!strncmp(caller, "0x", 2)) /* no symbol: say whose address it is */
			snprintf(caller, sizeof(caller), "0x%" PRIx64 " in %s", ret_addr - 1,
				 esky_debuginfo_name(s->di));
		snprintf(buf + len, n - len, ", called from %s", caller);
	}
	esky_vmas_free(vmas, nv);
}

static int get_pc(struct esky_session *s, uint64_t *pc)
{
	esky_regs_t regs;
	int ret = esky_target_get_regs(s->t, &regs);

	if (!ret)
		*pc = arch_regs_ip(&regs);
	return ret;
}

static void report_where(struct esky_session *s, struct esky_stop_report *r)
{
	r->thread = esky_session_thread(s);
	if (!s->t || get_pc(s, &r->pc)) {
		r->where[0] = '\0';
		return;
	}
	describe(s, r->pc, r->where, sizeof(r->where));
}

/* ---- breakpoint sites ---- */

static struct site *site_at(struct esky_session *s, uint64_t addr)
{
	for (size_t i = 0; i < s->nsites; i++)
		if (s->sites[i].addr == addr)
			return &s->sites[i];
	return NULL;
}

static bool wanted(struct esky_session *s, uint64_t addr)
{
	if (s->goal && addr == s->goal_addr)
		return true;
	if (s->dl_state && addr == s->dl_state)
		return true;
	for (size_t i = 0; i < s->nbps; i++)
		for (size_t j = 0; j < s->bps[i].nlocs; j++)
			if (bp_addr(s, &s->bps[i], j) == addr)
				return true;
	return false;
}

static int remove_site(struct esky_session *s, size_t i)
{
	int ret = esky_target_write_mem(s->t, s->sites[i].addr,
					&s->sites[i].orig, 1);

	s->sites[i] = s->sites[--s->nsites];
	return ret;
}

/*
 * Put an int3 at every breakpoint address and nowhere else. An address
 * outside the program's code (a *ADDRESS given before the program ran) is
 * not written to: a warning says so and the breakpoint stays unplaced.
 */
static int apply_watches(struct esky_session *s);
static int at_watch(struct esky_session *s, struct esky_stop_report *r, bool *stop);
static void rebuild_info(struct esky_session *s);

/* An int3 at addr, its byte kept (one site per address). */
static int add_site(struct esky_session *s, uint64_t addr)
{
	const uint8_t int3 = ARCH_BREAKPOINT_BYTE;
	struct site *ns;
	uint8_t orig;
	int ret = esky_target_read_mem(s->t, addr, &orig, 1);

	if (!ret)
		ret = esky_target_write_mem(s->t, addr, &int3, 1);
	if (ret)
		return ret;
	ns = realloc(s->sites, (s->nsites + 1) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	s->sites = ns;
	s->sites[s->nsites++] = (struct site){ addr, orig };
	return 0;
}

static int sync_sites(struct esky_session *s)
{
	int ret = 0;

	if (!esky_session_alive(s))
		return 0;
	for (size_t i = 0; i < s->nsites;) {
		if (!wanted(s, s->sites[i].addr))
			ret = remove_site(s, i);
		else
			i++;
	}
	/* The watchpoints ride along: every place that puts breakpoints back. */
	ret = apply_watches(s);
	if (!ret && s->goal && !site_at(s, s->goal_addr)) {
		ret = add_site(s, s->goal_addr);
		if (ret)
			return esky_error(ret, "cannot stop at 0x%" PRIx64 ": %s", s->goal_addr,
					  strerror(-ret));
	}
	/* A library's text pages are private: the int3 goes in a copy of the page. */
	if (!ret && s->dl_state && !site_at(s, s->dl_state)) {
		ret = add_site(s, s->dl_state);
		if (ret)
			return esky_error(ret, "cannot stop at library loads (0x%" PRIx64 "): %s",
					  s->dl_state, strerror(-ret));
	}
	for (size_t i = 0; i < s->nbps && !ret; i++) {
		for (size_t j = 0; j < s->bps[i].nlocs && !ret; j++) {
			uint64_t addr = bp_addr(s, &s->bps[i], j);
			const uint8_t int3 = ARCH_BREAKPOINT_BYTE;
			struct site *ns;
			uint8_t orig;

			if (site_at(s, addr))
				continue;
			if (!s->bps[i].lib && !in_program_code(s, addr)) {
				if (!s->bps[i].warned)
					pr_warn("breakpoint %d: 0x%" PRIx64 " is not in the code of %s, "
						"not placed", s->bps[i].id, addr, s->program);
				s->bps[i].warned = true;
				continue;
			}
			ret = esky_target_read_mem(s->t, addr, &orig, 1);
			if (!ret)
				ret = esky_target_write_mem(s->t, addr, &int3, 1);
			if (ret) {
				ret = esky_error(ret, "cannot put breakpoint %d at 0x%" PRIx64 ": %s",
						 s->bps[i].id, addr, strerror(-ret));
				break;
			}
			ns = realloc(s->sites, (s->nsites + 1) * sizeof(*ns));
			if (!ns) {
				ret = -ENOMEM;
				break;
			}
			s->sites = ns;
			s->sites[s->nsites++] = (struct site){ addr, orig };
		}
	}
	return ret;
}

/* ---- the process ---- */

static int find_agent(struct esky_session *s)
{
	return s->agent ? 0 : esky_find_agent(&s->agent);
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * The program's stdio for a run: stdio[i] is the fd of ours that becomes
 * its fd i once the redirections are applied in order, as sh applies
 * them. The files they open, in the program's directory, are in
 * opened[] (as many as redirections) for the caller to close after the
 * start. Opened here, before any process exists, so that an error names
 * the file and nothing is started.
 */
static int open_stdio(struct esky_session *s, int stdio[3], int *opened, size_t *nopened)
{
	static const char *const names[3] = { "standard input", "standard output",
					      "standard error" };
	int dirfd = AT_FDCWD, ret = 0;

	*nopened = 0;
	for (int i = 0; i < 3; i++)
		stdio[i] = i;
	if (s->cwd) {
		dirfd = open(s->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			return esky_error(-errno, "cannot start the program in %s: %s (cd DIR)", s->cwd,
					  strerror(errno));
	}
	for (size_t i = 0; i < s->nredirs; i++) {
		const struct esky_redirect *r = &s->redirs[i];
		int flags = O_WRONLY | O_CREAT, fd;

		if (r->kind == ESKY_REDIR_DUP) {
			stdio[r->fd] = stdio[r->to];
			continue;
		}
		if (r->kind == ESKY_REDIR_READ)
			flags = O_RDONLY;
		else
			flags |= r->kind == ESKY_REDIR_APPEND ? O_APPEND : O_TRUNC;
		fd = openat(dirfd, r->path, flags | O_NOCTTY | O_CLOEXEC, 0666);
		if (fd < 0) {
			ret = esky_error(-errno, "cannot open %s for the program's %s: %s", r->path,
					 names[r->fd], strerror(errno));
			break;
		}
		opened[(*nopened)++] = fd;
		stdio[r->fd] = fd;
	}
	if (dirfd >= 0)
		close(dirfd);
	if (ret) {
		close_fds(opened, *nopened);
		*nopened = 0;
	}
	return ret;
}

static int launch(struct esky_session *s, struct esky_stop_report *r)
{
	struct esky_target_start_opts o = { .envp = s->env, .cwd = s->cwd };
	int stdio[3], *opened;
	size_t n = 0, nopened;
	char **argv;
	int ret;

	if (!s->program)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM");
	opened = calloc(s->nredirs + 1, sizeof(*opened));
	if (!opened)
		return -ENOMEM;
	/* A run that cannot start leaves the process there alone. */
	ret = open_stdio(s, stdio, opened, &nopened);
	if (ret) {
		free(opened);
		return ret;
	}
	o.stdio = stdio;
	drop_process(s);
	while (s->args && s->args[n])
		n++;
	argv = calloc(n + 2, sizeof(*argv));
	if (!argv) {
		close_fds(opened, nopened);
		free(opened);
		return -ENOMEM;
	}
	argv[0] = s->program;
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = s->args[i];
	ret = esky_target_start_with(argv, &o, &s->t);
	close_fds(opened, nopened);
	free(opened);
	/* For a later session on this store ("run" with nothing else given). */
	if (!ret && s->store && esky_store_set_program(s->store, argv)) {
		pr_debug("the store does not keep the program: %s", esky_last_error());
		esky_error_clear();
	}
	free(argv);
	if (!ret) {
		/* All-stop over every thread, as gdb: a breakpoint any thread hits stops them all. */
		esky_target_set_idle(s->t, session_idle, s);
		esky_target_on_new_thread(s->t, thread_born, s);
		ret = esky_target_follow_threads(s->t, NULL, 0);
		if (ret) {
			esky_target_free(s->t);
			s->t = NULL;
			esky_error(ret, "%s: cannot follow its threads: %s", s->program, strerror(-ret));
		}
	}
	if (ret)
		return ret;
	esky_target_report_signals(s->t, !s->pass_signals);
	/* A fresh process descends from no snapshot. */
	s->lineage = 0;
	free(s->hashes);
	s->hashes = NULL;
	s->nhashes = 0;
	s->every_left = s->every_ns;
	find_bias(s);
	resolve_libs(s);
	ret = sync_sites(s);
	memset(r, 0, sizeof(*r));
	r->why = ESKY_WHY_STARTED;
	return ret;
}

int esky_session_stored_program(struct esky_session *s, const char **program)
{
	char *const *argv = s->store ? esky_store_program(s->store) : NULL;
	int ret;

	if (!argv)
		return -ENOENT;
	ret = esky_session_file(s, argv[0]);
	if (!ret)
		ret = esky_session_set_args(s, argv + 1);
	if (!ret)
		*program = s->program;
	return ret;
}

int esky_session_kill(struct esky_session *s)
{
	if (!s->t)
		return no_process();
	drop_process(s);
	return 0;
}

/* ---- waiting ---- */

static void arm_timer(struct esky_session *s)
{
	struct itimerspec its = { 0 };

	if (!s->every_ns)
		return;
	if (!s->every_left)
		s->every_left = s->every_ns;
	its.it_value.tv_sec = (time_t)(s->every_left / 1000000000ULL);
	its.it_value.tv_nsec = (long)(s->every_left % 1000000000ULL);
	timerfd_settime(s->timer_fd, 0, &its, NULL);
}

/* Stop the timer and keep what is left of the period: only run time counts. */
static void disarm_timer(struct esky_session *s)
{
	struct itimerspec its = { 0 }, old;

	if (!s->every_ns)
		return;
	timerfd_settime(s->timer_fd, 0, &its, &old);
	s->every_left = (uint64_t)old.it_value.tv_sec * 1000000000ULL + (uint64_t)old.it_value.tv_nsec;
}

/* The next event of the running program; timer expiry and interrupts make it stop. */
/*
 * The events of the dirty-page tracking (unmaps, moves) while the program
 * runs: it waits until they are read. A failure ends the tracking (the
 * program is released from any wait when the userfaultfd closes).
 */
static void tracking_events(struct esky_session *s)
{
	if (s->dirty && esky_dirty_read_events(s->dirty))
		stop_tracking(s);
}

/* While esky waits for the program's threads to stop: what they may wait on esky for. */
static void session_idle(void *ctx)
{
	struct esky_session *s = ctx;

	if (s->dirty)
		tracking_events(s);
}

static int wait_event(struct esky_session *s, struct esky_event *ev)
{
	for (;;) {
		struct pollfd pfd[4] = {
			{ .fd = s->sig_fd, .events = POLLIN },
			{ .fd = s->timer_fd, .events = POLLIN },
			{ .fd = s->intr_fd, .events = POLLIN },
			{ .fd = s->dirty ? esky_dirty_fd(s->dirty) : -1, .events = POLLIN },
		};
		uint64_t junk;
		int ret = esky_target_wait(s->t, ev, false);

		if (ret == 0 && ev->kind != ESKY_EV_NONE)
			return 0;
		if (ret && ret != -EAGAIN)
			return ret;
		if (ret == 0)
			continue;
		if (poll(pfd, 4, -1) < 0 && errno != EINTR)
			return -errno;
		if (pfd[3].revents & POLLIN)
			tracking_events(s);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(s->sig_fd, &si, sizeof(si)) > 0)
				;
		}
		if ((pfd[1].revents & POLLIN) && read(s->timer_fd, &junk, sizeof(junk)) > 0 &&
		    s->pending == PENDING_NONE) {
			s->pending = PENDING_TIMER;
			esky_target_interrupt(s->t);
		}
		if ((pfd[2].revents & POLLIN) && read(s->intr_fd, &junk, sizeof(junk)) > 0) {
			if (s->pending == PENDING_NONE)
				esky_target_interrupt(s->t);
			s->pending = PENDING_USER;
		}
	}
}

/* The program ended: say how, and let the process go (snapshots stay). */
static void ended(struct esky_session *s, const struct esky_event *ev, struct esky_stop_report *r)
{
	r->why = ev->kind == ESKY_EV_EXITED ? ESKY_WHY_EXITED : ESKY_WHY_KILLED;
	r->status = ev->status;
	r->sig = ev->sig;
	drop_process(s);
}

/*
 * Wait for the program's next stop (a step), reading the tracking's events
 * meanwhile: a stepped munmap waits for them to be read.
 */
static int wait_stop(struct esky_session *s, struct esky_event *ev)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = s->sig_fd, .events = POLLIN },
			{ .fd = s->dirty ? esky_dirty_fd(s->dirty) : -1, .events = POLLIN },
		};
		int ret = esky_target_wait(s->t, ev, false);

		if (ret != -EAGAIN)
			return ret;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			return -errno;
		if (pfd[1].revents & POLLIN)
			tracking_events(s);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(s->sig_fd, &si, sizeof(si)) > 0)
				;
		}
	}
}

/*
 * Step the instruction at a breakpoint address with the original byte in
 * place. *ev gets the step's event; *done is set if it was not the step's
 * trap (the program ended or a signal came) and the caller must handle ev.
 */
static int step_over(struct esky_session *s, struct esky_event *ev, bool *other)
{
	struct site *site;
	uint64_t pc;
	int ret;

	/* From the thread that stopped, whichever `thread N` looks at. */
	esky_target_select_event(s->t);
	*other = false;
	ret = get_pc(s, &pc);
	if (ret)
		return ret;
	site = site_at(s, pc);
	ret = site ? esky_target_step_over(s->t, pc, site->orig) : esky_target_step(s->t);
	while (!ret) {
		ret = wait_stop(s, ev);
		if (!ret && ev->kind != ESKY_EV_NONE)
			break;
	}
	if (ret)
		return ret;
	if (ev->kind == ESKY_EV_TRAP && ev->si_code == TRAP_TRACE)
		esky_target_drop_signal(s->t);
	else
		*other = true;
	return 0;
}

static struct bp *find_bp(struct esky_session *s, int id)
{
	for (size_t i = 0; i < s->nbps; i++)
		if (s->bps[i].id == id)
			return &s->bps[i];
	return NULL;
}

static int take_snapshot(struct esky_session *s, enum esky_snap_cause cause, const char *note,
			 int *idp);

/* ---- expressions: conditions and print ---- */

static int env_reg(void *ctx, const char *name, uint64_t *value)
{
	struct esky_session *s = ctx;
	esky_regs_t regs;

	if (!esky_session_alive(s))
		return no_process();
	if (esky_target_get_regs(s->t, &regs) ||
	    arch_regs_get(&regs, name, value))
		return esky_error(-ENOENT, "no register $%s", name);
	return 0;
}

static int env_sym(void *ctx, const char *name, uint64_t *addr, uint64_t *size)
{
	struct esky_session *s = ctx;
	struct esky_loc *locs;
	size_t n;

	if (!s->di)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	if (!esky_debuginfo_object(s->di, name, addr, size)) {
		*addr += s->bias;
		return 0;
	}
	if (!esky_debuginfo_resolve(s->di, name, &locs, &n) && n) {
		*addr = locs[0].addr + s->bias;
		*size = 0;
		esky_locs_free(locs, n);
		return 0;
	}
	esky_error_clear();
	return esky_error(-ENOENT, "no variable or function %s in %s", name,
			  esky_debuginfo_name(s->di));
}

static int env_mem(void *ctx, uint64_t addr, void *buf, size_t len)
{
	return esky_session_read(ctx, addr, buf, len);
}

int esky_session_print(struct esky_session *s, const char *text, uint64_t *value)
{
	struct esky_expr_env env = { env_reg, env_sym, env_mem, s };

	return esky_expr_eval(text, &env, value);
}

/*
 * A breakpoint's condition at a hit: false lets the program go on, unseen
 * (the hit is not counted, as in gdb). One that cannot be evaluated stops
 * it, saying why.
 */
static bool condition_holds(struct esky_session *s, const struct bp *b)
{
	uint64_t v;

	if (!b->cond)
		return true;
	esky_error_clear();
	if (esky_session_print(s, b->cond, &v)) {
		notify(s, "breakpoint %d: error in its condition: %s", b->id, esky_last_error());
		esky_error_clear();
		return true;
	}
	return v != 0;
}

int esky_session_condition(struct esky_session *s, int id, const char *cond)
{
	struct bp *b = find_bp(s, id);
	char *c = NULL;
	int ret;

	if (!b)
		return esky_error(-ENOENT, "no breakpoint %d", id);
	if (cond && *cond) {
		ret = esky_expr_eval(cond, NULL, NULL);
		if (ret)
			return ret;
		c = strdup(cond);
		if (!c)
			return -ENOMEM;
	}
	free(b->cond);
	b->cond = c;
	rebuild_info(s);
	return 0;
}

/*
 * A trap at a breakpoint: snapshots for snap breakpoints, and whether to
 * stop (*stop_bp set to the first stopping breakpoint).
 */
static int at_breakpoint(struct esky_session *s, uint64_t addr, int *stop_bp, bool *temporary)
{
	int ret = 0, ids[64];
	size_t nids = 0;

	*stop_bp = 0;
	for (size_t i = 0; i < s->nbps && nids < 64; i++)
		for (size_t j = 0; j < s->bps[i].nlocs; j++)
			if (bp_addr(s, &s->bps[i], j) == addr) {
				ids[nids++] = s->bps[i].id;
				break;
			}
	for (size_t k = 0; k < nids && !ret; k++) {
		struct bp *b = find_bp(s, ids[k]);
		int snap_id;

		if (!b || !condition_holds(s, b))
			continue;
		b->hits++;
		if (b->kind == ESKY_BP_SNAP) {
			s->snap_bp = b->id;
			s->snap_hit = b->hits;
			ret = take_snapshot(s, ESKY_SNAP_BREAK, NULL, &snap_id);
			if (ret)
				break;
			if (b->count && b->hits >= b->count) {
				notify(s, "breakpoint %d: %u snapshots taken, deleted", b->id, b->hits);
				ret = esky_session_delete(s, b->id);
			}
			continue;
		}
		if (!*stop_bp) {
			*stop_bp = b->id;
			*temporary = b->kind == ESKY_BP_TBREAK;
		}
		if (b->kind == ESKY_BP_TBREAK)
			ret = esky_session_delete(s, b->id);
	}
	return ret;
}

static bool fatal_signal(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT ||
	       sig == SIGSYS || sig == SIGTRAP || sig == SIGINT;
}

/* Run until n stops at breakpoints (n 0: until anything stops it). */
static int run_until_stop(struct esky_session *s, unsigned n, struct esky_stop_report *r);

/* Run until the n-th stop; no timer snapshot is left unrecorded when it returns. */
static int run_until(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	int ret = run_until_stop(s, n, r);

	if (s->unrecorded && record_snapshot(s))
		esky_error_clear();
	/* At the prompt, a manual snapshot must get the next number. */
	release_spare(s);
	return ret;
}

static int run_until_stop(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	int ret;

	uint64_t junk;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return no_process();
	/* A SIGINT that came while the program stood still is not for this run. */
	while (read(s->intr_fd, &junk, sizeof(junk)) > 0)
		;
	for (;;) {
		struct esky_event ev;
		bool other = false;
		uint64_t pc;

		ret = get_pc(s, &pc);
		if (!ret && site_at(s, pc))
			ret = step_over(s, &ev, &other);
		if (ret)
			return ret;
		if (!other) {
			arm_timer(s);
			ret = esky_target_cont(s->t);
			/* The program runs: now the timer snapshot's record. */
			if (!ret && s->unrecorded && record_snapshot(s))
				esky_error_clear(); /* said; the program runs on */
			if (!ret)
				ret = wait_event(s, &ev);
			disarm_timer(s);
			if (ret)
				return esky_error(ret, "lost the program: %s", strerror(-ret));
		}
		switch (ev.kind) {
		case ESKY_EV_EXITED:
		case ESKY_EV_KILLED:
			ended(s, &ev, r);
			return 0;
		case ESKY_EV_TRAP: {
			esky_regs_t regs;
			uint64_t addr;
			bool temporary = false;
			int bp;

			if (ev.si_code == TRAP_HWBKPT) {
				bool stop;

				ret = at_watch(s, r, &stop);
				if (ret || stop)
					return ret;
				break;
			}
			ret = esky_target_get_regs(s->t, &regs);
			if (ret)
				return ret;
			addr = arch_breakpoint_addr(&regs);
			if (ev.si_code != SI_KERNEL || !site_at(s, addr)) {
				/* The program's own trap: stop, deliver it on continue. */
				r->why = ESKY_WHY_SIGNAL;
				r->sig = SIGTRAP;
				report_where(s, r);
				return 0;
			}
			/* Back to the breakpoint's address: it runs the original instruction next. */
			arch_regs_set_ip(&regs, addr);
			esky_target_drop_signal(s->t);
			ret = esky_target_set_regs(s->t, &regs);
			if (!ret)
				ret = at_breakpoint(s, addr, &bp, &temporary);
			if (ret)
				return ret;
			/* The goal of next/step/finish/until, in the right frame. */
			if (!bp && s->goal && addr == s->goal_addr &&
			    arch_regs_sp(&regs) > s->goal_sp &&
			    esky_target_thread(s->t) == s->goal_thread) {
				r->why = ESKY_WHY_STEP;
				report_where(s, r);
				return 0;
			}
			/* A library came or went: place the library breakpoints, go on silently. */
			if (!bp && s->dl_state && addr == s->dl_state) {
				resolve_libs(s);
				ret = sync_sites(s);
				if (ret)
					return ret;
				break;
			}
			if (bp && n <= 1) {
				r->why = ESKY_WHY_BREAKPOINT;
				r->bp = bp;
				r->temporary = temporary;
				report_where(s, r);
				return 0;
			}
			if (bp)
				n--;
			break;
		}
		case ESKY_EV_SIGNAL:
			if (!fatal_signal(ev.sig))
				break; /* delivered by the next cont */
			r->why = ev.sig == SIGINT ? ESKY_WHY_INTERRUPTED : ESKY_WHY_SIGNAL;
			r->sig = ev.sig;
			if (ev.sig == SIGINT)
				esky_target_drop_signal(s->t);
			s->pending = PENDING_NONE;
			report_where(s, r);
			return 0;
		case ESKY_EV_STOPPED:
			if (s->pending == PENDING_TIMER) {
				int id;

				s->pending = PENDING_NONE;
				s->every_left = s->every_ns;
				s->snap_bp = 0;
				s->snap_hit = ++s->timer_hits;
				ret = take_snapshot_as(s, ESKY_SNAP_TIMER, NULL, &id, true);
				if (ret && esky_target_alive(s->t)) {
					/* A program esky cannot save: say why once, and let it run. */
					notify(s, "timer snapshot refused: %s; timer snapshots off",
					       esky_last_error() ? esky_last_error() : strerror(-ret));
					esky_error_clear();
					s->every_ns = s->every_left = 0;
					ret = 0;
				}
				if (ret)
					return ret;
				break;
			}
			s->pending = PENDING_NONE;
			r->why = ESKY_WHY_INTERRUPTED;
			report_where(s, r);
			return 0;
		default:
			break;
		}
	}
}

int esky_session_starti(struct esky_session *s, struct esky_stop_report *r)
{
	return launch(s, r);
}

int esky_session_run(struct esky_session *s, struct esky_stop_report *r)
{
	int ret = launch(s, r);

	return ret ? ret : run_until(s, 1, r);
}

int esky_session_start(struct esky_session *s, struct esky_stop_report *r)
{
	int id, ret;

	if (!s->program)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM");
	ret = esky_session_break(s, "main", ESKY_BP_TBREAK, 0, &id);
	if (ret)
		return ret;
	ret = esky_session_run(s, r);
	if (find_bp(s, id))
		esky_session_delete(s, id);
	return ret;
}

int esky_session_continue(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	return run_until(s, n ? n : 1, r);
}

int esky_session_stepi(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	int ret = 0;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return no_process();
	for (unsigned i = 0; i < (n ? n : 1) && !ret; i++) {
		struct esky_event ev;
		bool other;

		ret = step_over(s, &ev, &other);
		if (ret || !other)
			continue;
		if (ev.kind == ESKY_EV_EXITED || ev.kind == ESKY_EV_KILLED) {
			ended(s, &ev, r);
			return 0;
		}
		r->why = ESKY_WHY_SIGNAL;
		r->sig = ev.sig;
		report_where(s, r);
		return 0;
	}
	if (ret)
		return ret;
	r->why = ESKY_WHY_STEP;
	report_where(s, r);
	return 0;
}

/* ---- run control by source line: next, step, finish, until ---- */

/*
 * Run until the program reaches addr with its stack pointer above sp (the
 * frame that called has returned to it), or something else stops it.
 * r->why is ESKY_WHY_STEP when the goal was reached.
 */
static int run_to(struct esky_session *s, uint64_t addr, uint64_t sp, struct esky_stop_report *r)
{
	int ret;

	if (!in_program_code(s, addr))
		return esky_error(-EINVAL, "0x%" PRIx64 " is not in the code of %s: esky cannot stop "
				  "there", addr, s->program);
	s->goal = true;
	s->goal_addr = addr;
	s->goal_sp = sp;
	esky_target_select_event(s->t);
	s->goal_thread = esky_target_thread(s->t);
	ret = sync_sites(s);
	if (!ret)
		ret = run_until(s, 1, r);
	s->goal = false;
	if (esky_session_alive(s)) {
		int r2 = sync_sites(s);

		ret = ret ? ret : r2;
	}
	return ret;
}

/* Function, file and line of a runtime address of the program (false: none). */
static bool line_of(struct esky_session *s, uint64_t pc, struct esky_loc *loc)
{
	memset(loc, 0, sizeof(*loc));
	if (!s->di || !in_program_code(s, pc))
		return false;
	return esky_debuginfo_lookup(s->di, pc - s->bias, loc) == 0;
}

static bool same_function(const struct esky_loc *a, const struct esky_loc *b)
{
	return a->function && b->function && !strcmp(a->function, b->function);
}

/* The runtime address after the prologue of function (0 if unknown). */
static uint64_t after_prologue(struct esky_session *s, const char *function)
{
	struct esky_loc *locs;
	size_t n;
	uint64_t addr = 0;

	if (!function || esky_debuginfo_resolve(s->di, function, &locs, &n)) {
		esky_error_clear();
		return 0;
	}
	if (n)
		addr = locs[0].addr + s->bias;
	esky_locs_free(locs, n);
	return addr;
}

static int regs_now(struct esky_session *s, esky_regs_t *regs)
{
	return esky_target_get_regs(s->t, regs);
}

/*
 * One source line (gdb's next, or step with into): single steps until the
 * line changes; a call is run through to its return (next, or step into a
 * function without line information), or stopped in after its prologue
 * (step). Leaving the function stops in the caller.
 */
static int line_step(struct esky_session *s, bool into, struct esky_stop_report *r)
{
	struct esky_loc from, at;
	esky_regs_t regs;
	uint64_t sp0;
	int ret = regs_now(s, &regs);

	if (ret)
		return ret;
	sp0 = arch_regs_sp(&regs);
	if (!line_of(s, arch_regs_ip(&regs), &from) || !from.line) {
		esky_loc_clear(&from);
		return esky_error(-ENOENT, "no line information here (%s): use stepi, or finish",
				  r->where[0] ? r->where : "outside the program");
	}
	for (unsigned k = 0; k < 10000000; k++) {
		uint64_t pc, sp;
		bool known;

		ret = esky_session_stepi(s, 1, r);
		if (ret || r->why != ESKY_WHY_STEP)
			break;
		ret = regs_now(s, &regs);
		if (ret)
			break;
		pc = arch_regs_ip(&regs);
		sp = arch_regs_sp(&regs);
		known = line_of(s, pc, &at);
		if (sp < sp0 && !(known && same_function(&at, &from))) {
			/* Entered a callee: its return address is on top of the stack. */
			uint64_t ret_addr, stop = 0;

			if (into && known && at.line)
				stop = after_prologue(s, at.function);
			esky_loc_clear(&at);
			if (stop && stop == pc)
				break;
			if (stop) {
				ret = run_to(s, stop, 0, r);
				break;
			}
			ret = esky_target_read_mem(s->t, sp, &ret_addr,
						   sizeof(ret_addr));
			if (!ret)
				ret = run_to(s, ret_addr, sp, r);
			if (ret || r->why != ESKY_WHY_STEP)
				break;
			continue;
		}
		/* Back in the caller, or on another line of this function. */
		if (sp > sp0 && !(known && same_function(&at, &from))) {
			esky_loc_clear(&at);
			break;
		}
		if (known && at.line && (at.line != from.line ||
					 (at.file && from.file && strcmp(at.file, from.file)))) {
			esky_loc_clear(&at);
			break;
		}
		esky_loc_clear(&at);
	}
	esky_loc_clear(&from);
	return ret;
}

static int line_steps(struct esky_session *s, unsigned n, bool into, struct esky_stop_report *r)
{
	int ret = 0;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return no_process();
	report_where(s, r);
	for (unsigned i = 0; i < (n ? n : 1) && !ret; i++) {
		ret = line_step(s, into, r);
		if (!ret && r->why != ESKY_WHY_STEP)
			break;
	}
	return ret;
}

int esky_session_next(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	return line_steps(s, n, false, r);
}

int esky_session_step(struct esky_session *s, unsigned n, struct esky_stop_report *r)
{
	return line_steps(s, n, true, r);
}

int esky_session_finish(struct esky_session *s, struct esky_stop_report *r, uint64_t *value,
			char *from, size_t from_n)
{
	struct esky_loc at;
	esky_regs_t regs;
	uint64_t ret_addr, slot, body;
	int ret;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return no_process();
	ret = regs_now(s, &regs);
	if (ret)
		return ret;
	if (!line_of(s, arch_regs_ip(&regs), &at) || !at.function) {
		esky_loc_clear(&at);
		return esky_error(-ENOENT, "finish: the program is not in a function of %s",
				  s->program);
	}
	snprintf(from, from_n, "%s", at.function);
	body = after_prologue(s, at.function);
	esky_loc_clear(&at);
	/* Before the frame is set up, the return address is where the call left it. */
	slot = body && arch_regs_ip(&regs) < body ? arch_regs_sp(&regs)
						  : arch_regs_fp(&regs) + ARCH_FP_RET_OFF;
	ret = esky_target_read_mem(s->t, slot, &ret_addr, sizeof(ret_addr));
	if (ret)
		return esky_error(ret, "finish: cannot read the return address: %s", strerror(-ret));
	if (!in_program_code(s, ret_addr))
		return esky_error(-EINVAL, "\"finish\" not meaningful in the outermost frame (%s "
				  "returns outside %s)", from, s->program);
	ret = run_to(s, ret_addr, slot, r);
	if (!ret && r->why == ESKY_WHY_STEP && !regs_now(s, &regs))
		*value = arch_regs_retval(&regs);
	return ret;
}

int esky_session_until(struct esky_session *s, const char *spec, struct esky_stop_report *r)
{
	struct esky_loc *locs;
	uint64_t addr;
	size_t n;
	int ret;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return no_process();
	if (!s->di)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	ret = esky_debuginfo_resolve(s->di, spec, &locs, &n);
	if (ret)
		return ret;
	addr = n ? locs[0].addr + s->bias : 0;
	esky_locs_free(locs, n);
	return run_to(s, addr, 0, r);
}

/* ---- hardware watchpoints ---- */

static uint64_t watch_addr(const struct esky_session *s, const struct watch *w)
{
	return w->is_symbol ? w->link + s->bias : w->abs;
}

static uint64_t read_value(struct esky_session *s, uint64_t addr, unsigned len)
{
	uint64_t v = 0;

	if (esky_target_read_mem(s->t, addr, &v, len))
		return 0;
	return v;
}

/*
 * Put the watchpoints in the debug registers of the program (after a run,
 * a rewind, any change), their current values as the old ones. They are
 * registers, not memory: no checkpoint ever holds them.
 */
/* The watchpoints in one thread's debug registers (each thread has its own). */
static int arm_thread(struct esky_session *s, struct esky_tracee *tr)
{
	uint64_t dr7 = 0;
	int ret = esky_tracee_poke_user(tr, ARCH_DEBUGREG_OFF(7), 0);

	for (size_t i = 0; i < s->nwatches && !ret; i++) {
		ret = esky_tracee_poke_user(tr, ARCH_DEBUGREG_OFF(i), watch_addr(s, &s->watches[i]));
		dr7 = arch_watch_dr7(dr7, (unsigned)i, s->watches[i].len, true);
	}
	if (!ret && s->nwatches)
		ret = esky_tracee_poke_user(tr, ARCH_DEBUGREG_OFF(7), dr7);
	return ret;
}

/* A thread the program made: it watches what the others do (debug registers are not inherited). */
static void thread_born(void *ctx, struct esky_tracee *tr)
{
	struct esky_session *s = ctx;
	int ret = s->nwatches ? arm_thread(s, tr) : 0;

	if (ret)
		pr_warn("thread %d of the program does not watch: its debug registers: %s",
			esky_tracee_pid(tr), strerror(-ret));
}

static int apply_watches(struct esky_session *s)
{
	struct esky_tracee *trs[64];
	size_t n;
	int ret = 0;

	if (!esky_session_alive(s))
		return 0;
	n = esky_target_threads(s->t, trs, ESKY_ARRAY_SIZE(trs));
	if (n > ESKY_ARRAY_SIZE(trs))
		return esky_error(-E2BIG, "watchpoints follow at most %zu threads (the program has "
				  "%zu)", ESKY_ARRAY_SIZE(trs), n);
	for (size_t i = 0; i < s->nwatches; i++)
		s->watches[i].old = read_value(s, watch_addr(s, &s->watches[i]), s->watches[i].len);
	for (size_t i = 0; i < n && !ret; i++)
		ret = arm_thread(s, trs[i]);
	if (ret)
		return esky_error(ret, "cannot set the debug registers: %s", strerror(-ret));
	return 0;
}

int esky_session_watch(struct esky_session *s, const char *spec, unsigned len, bool snap,
		       unsigned count, int *id)
{
	struct watch w = { .snap = snap, .count = count }, *nw;
	const char *name = spec[0] == '&' ? spec + 1 : spec;
	uint64_t addr, size;

	if (s->nwatches == ARCH_WATCH_SLOTS)
		return esky_error(-ENOSPC, "no debug register left: the CPU has %d for watchpoints "
				  "(delete one first)", ARCH_WATCH_SLOTS);
	if (s->di && !esky_debuginfo_object(s->di, name, &addr, &size)) {
		w.is_symbol = true;
		w.link = addr;
		w.len = len ? len : size > 8 ? 8 : (unsigned)size;
		if (!w.len)
			w.len = 1;
	} else if (!esky_session_eval(s, spec, &addr)) {
		w.abs = addr;
		w.len = len ? len : 8;
	} else {
		esky_error_clear();
		return esky_error(-ENOENT, "no variable or address %s (a global of %s, 0xADDRESS "
				  "or $register)", spec, s->program ? s->program : "the program");
	}
	/* An address without a running program would be a guess. */
	if (!w.is_symbol && !esky_session_alive(s))
		return esky_error(-ESRCH, "watch %s needs a running program (run, start or rewind N)",
				  spec);
	if (!arch_watch_len_ok(w.is_symbol ? w.link : w.abs, w.len))
		return esky_error(-EINVAL, "watch %s: %u bytes at 0x%" PRIx64 " cannot be watched: 1, "
				  "2, 4 or 8 bytes, aligned to their size", spec, w.len,
				  w.is_symbol ? w.link : w.abs);
	w.spec = strdup(spec);
	nw = realloc(s->watches, (s->nwatches + 1) * sizeof(*nw));
	if (!w.spec || !nw) {
		free(w.spec);
		if (nw)
			s->watches = nw;
		return -ENOMEM;
	}
	s->watches = nw;
	w.id = s->next_bp++;
	s->watches[s->nwatches++] = w;
	*id = w.id;
	rebuild_info(s);
	return apply_watches(s);
}

/*
 * A data breakpoint fired (SIGTRAP, TRAP_HWBKPT): which watchpoint (DR6),
 * its old and new values. A snap-on-write takes its snapshot and the
 * program goes on (*stop false); a watchpoint stops it.
 */
static int at_watch(struct esky_session *s, struct esky_stop_report *r, bool *stop)
{
	uint64_t dr6 = 0;
	int ret = esky_target_peek_user(s->t, ARCH_DEBUGREG_OFF(6), &dr6), snap_id;

	*stop = false;
	esky_target_drop_signal(s->t);
	if (!ret)
		ret = esky_target_poke_user(s->t, ARCH_DEBUGREG_OFF(6), 0);
	for (size_t i = 0; i < s->nwatches && !ret; i++) {
		struct watch *w = &s->watches[i];
		uint64_t now;

		if (!(dr6 & (1ULL << i)))
			continue;
		now = read_value(s, watch_addr(s, w), w->len);
		w->hits++;
		if (w->snap) {
			s->snap_bp = w->id;
			s->snap_hit = w->hits;
			w->old = now;
			ret = take_snapshot(s, ESKY_SNAP_BREAK, NULL, &snap_id);
			if (!ret && w->count && w->hits >= w->count) {
				notify(s, "snap-on-write %d: %u snapshots taken, deleted", w->id, w->hits);
				ret = esky_session_delete(s, w->id);
			}
			continue;
		}
		if (!*stop) {
			*stop = true;
			r->why = ESKY_WHY_WATCH;
			r->bp = w->id;
			r->old_value = w->old;
			r->new_value = now;
			report_where(s, r);
		}
		w->old = now;
	}
	return ret;
}

/* ---- breakpoints ---- */

static int cmp_bpinfo(const void *a, const void *b)
{
	const struct esky_bpinfo *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static void rebuild_info(struct esky_session *s)
{
	struct esky_bpinfo *ni =
		realloc(s->info, (s->nbps + s->nwatches ? s->nbps + s->nwatches : 1) * sizeof(*ni));

	if (!ni)
		return;
	s->info = ni;
	for (size_t i = 0; i < s->nwatches; i++) {
		const struct watch *w = &s->watches[i];

		s->info[s->nbps + i] = (struct esky_bpinfo){
			.id = w->id,
			.kind = w->snap ? ESKY_BP_WATCH_SNAP : ESKY_BP_WATCH,
			.spec = w->spec,
			.where = w->spec,
			.addr = w->is_symbol ? w->link : w->abs,
			.nlocs = 1,
			.hits = w->hits,
			.count = w->count,
		};
	}
	for (size_t i = 0; i < s->nbps; i++) {
		const struct bp *b = &s->bps[i];

		s->info[i] = (struct esky_bpinfo){
			.id = b->id,
			.kind = b->kind,
			.spec = b->spec,
			.where = b->where,
			.addr = b->nlocs ? b->link[0] : 0,
			.nlocs = b->nlocs,
			.hits = b->hits,
			.count = b->count,
			.cond = b->cond,
			.pending = b->lib && !b->nlocs,
		};
	}
	/* In the order they were made, as gdb lists them. */
	qsort(s->info, s->nbps + s->nwatches, sizeof(*s->info), cmp_bpinfo);
}

/* LIB:FUNCTION, as opposed to FILE:LINE: what follows the colon is not a number. */
static bool lib_spec(const char *spec)
{
	const char *colon = strchr(spec, ':');

	return spec[0] != '*' && colon && colon != spec && colon[1] &&
	       strspn(colon + 1, "0123456789") != strlen(colon + 1);
}

/*
 * A breakpoint on function of a shared library (lib NULL: any library).
 * With the program running, a function no mapped library has is an error;
 * before run it is pending until a library that has it is loaded.
 */
static int break_in_lib(struct esky_session *s, const char *spec, const char *lib,
			const char *function, enum esky_bp_kind kind, unsigned count, int *id)
{
	struct bp b = { 0 }, *nb;

	b.id = s->next_bp;
	b.kind = kind;
	b.count = count;
	b.spec = strdup(spec);
	b.lib = strdup(lib ? lib : "");
	b.func = strdup(function);
	b.link = calloc(1, sizeof(*b.link));
	b.where = NULL;
	nb = realloc(s->bps, (s->nbps + 1) * sizeof(*nb));
	if (!nb || !b.spec || !b.lib || !b.func || !b.link) {
		free_bp(&b);
		return -ENOMEM;
	}
	s->bps = nb;
	s->bps[s->nbps++] = b;
	resolve_libs(s);
	nb = &s->bps[s->nbps - 1];
	if (esky_session_alive(s) && !nb->nlocs) {
		bool seen = nb->lib_seen;

		free_bp(nb);
		s->nbps--;
		resolve_libs(s);
		if (lib && !seen)
			return esky_error(-ENOENT, "no library %s loaded in %s (info sharedlibrary lists them)",
					  lib, esky_debuginfo_name(s->di));
		if (lib)
			return esky_error(-ENOENT, "no function %s in %s", function, lib);
		return esky_error(-ENOENT, "no function %s in %s or its libraries", function,
				  esky_debuginfo_name(s->di));
	}
	if (!nb->where) {
		free_bp(nb);
		s->nbps--;
		return -ENOMEM;
	}
	s->next_bp++;
	rebuild_info(s);
	*id = b.id;
	return sync_sites(s);
}

int esky_session_break(struct esky_session *s, const char *spec, enum esky_bp_kind kind,
		       unsigned count, int *id)
{
	struct esky_loc *locs;
	struct bp b = { 0 }, *nb;
	char where[512];
	size_t n;
	int ret;

	char linkspec[32];
	const char *rspec = spec;

	if (!s->di)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	if (spec[0] == '*' && spec[1] == '$' && !esky_session_alive(s))
		return esky_error(-ESRCH, "%s needs a running program (run, start or rewind N)", spec);
	/*
	 * *ADDRESS names an address of the running program (as where shows
	 * it); before the program runs, an address in the file.
	 */
	if (spec[0] == '*' && esky_session_alive(s)) {
		uint64_t addr;

		/* *ADDRESS, or *$REGISTER (break *$pc) as x takes it. */
		if (spec[1] == '$' ? esky_session_eval(s, spec + 1, &addr) != 0
				   : esky_parse_u64(spec + 1, &addr) < 0)
			return esky_error(-EINVAL, "bad address %s: use *0xHEX, *DECIMAL or *$REGISTER",
					  spec + 1);
		if (!in_program_code(s, addr))
			return esky_error(-EINVAL, "0x%" PRIx64 " is not in the code of %s "
					  "(breakpoints go in the program itself)", addr, s->program);
		snprintf(linkspec, sizeof(linkspec), "*0x%" PRIx64, addr - s->bias);
		rspec = linkspec;
	}
	if (lib_spec(spec)) {
		const char *colon = strchr(spec, ':');
		char *lib = strndup(spec, colon - spec);

		if (!lib)
			return -ENOMEM;
		ret = break_in_lib(s, spec, lib, colon + 1, kind, count, id);
		free(lib);
		return ret;
	}
	ret = esky_debuginfo_resolve(s->di, rspec, &locs, &n);
	/* A function the program has not: one of its shared libraries'. */
	if (ret == -ENOENT && spec[0] != '*' && !strchr(spec, ':')) {
		esky_error_clear();
		return break_in_lib(s, spec, NULL, spec, kind, count, id);
	}
	if (ret)
		return ret;
	b.id = s->next_bp;
	b.kind = kind;
	b.count = count;
	b.spec = strdup(spec);
	b.link = calloc(n ? n : 1, sizeof(*b.link));
	b.nlocs = n;
	for (size_t i = 0; i < n && b.link; i++)
		b.link[i] = locs[i].addr;
	esky_debuginfo_describe(s->di, n ? locs[0].addr : 0, where, sizeof(where));
	if (n > 1)
		snprintf(where + strlen(where), sizeof(where) - strlen(where), " (and %zu more)", n - 1);
	b.where = strdup(where);
	esky_locs_free(locs, n);
	nb = realloc(s->bps, (s->nbps + 1) * sizeof(*nb));
	if (!nb || !b.spec || !b.link || !b.where) {
		free_bp(&b);
		return -ENOMEM;
	}
	s->bps = nb;
	s->bps[s->nbps++] = b;
	s->next_bp++;
	rebuild_info(s);
	ret = sync_sites(s);
	*id = b.id;
	return ret;
}

int esky_session_delete(struct esky_session *s, int id)
{
	size_t j = 0;
	bool found = false;

	for (size_t i = 0; i < s->nbps; i++) {
		if (id == 0 || s->bps[i].id == id) {
			free_bp(&s->bps[i]);
			found = true;
		} else {
			s->bps[j++] = s->bps[i];
		}
	}
	s->nbps = j;
	j = 0;
	for (size_t i = 0; i < s->nwatches; i++) {
		if (id == 0 || s->watches[i].id == id) {
			free(s->watches[i].spec);
			found = true;
		} else {
			s->watches[j++] = s->watches[i];
		}
	}
	s->nwatches = j;
	if (id && !found)
		return esky_error(-ENOENT, "no breakpoint %d", id);
	rebuild_info(s);
	resolve_libs(s); /* without library breakpoints, no stops at library loads */
	return sync_sites(s);
}

const struct esky_bpinfo *esky_session_breakpoints(struct esky_session *s, size_t *n)
{
	rebuild_info(s); /* hit counts change at every stop */
	*n = s->nbps + s->nwatches;
	return s->info;
}

/* ---- looking at the program ---- */

/* A thread's tid as the program sees it (a rewound program has a PID namespace of its own). */
static int program_tid(pid_t tid)
{
	struct esky_proc_status st;

	return esky_proc_read_status(tid, &st) == 0 && st.nspid > 0 ? st.nspid : tid;
}

int esky_session_threads(struct esky_session *s, struct esky_thread_info **out, size_t *count)
{
	struct esky_tracee *trs[256];
	struct esky_thread_info *v;
	pid_t cur;
	size_t n;

	if (!esky_session_alive(s))
		return no_process();
	n = esky_target_threads(s->t, trs, ESKY_ARRAY_SIZE(trs));
	if (n > ESKY_ARRAY_SIZE(trs))
		n = ESKY_ARRAY_SIZE(trs);
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	cur = esky_target_thread(s->t);
	for (size_t i = 0; i < n; i++) {
		pid_t tid = esky_tracee_pid(trs[i]);
		char path[64], *comm = NULL;

		v[i].tid = program_tid(tid);
		v[i].current = tid == cur;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", esky_target_pid(s->t), tid);
		if (!esky_read_file(path, &comm, NULL)) {
			comm[strcspn(comm, "\n")] = '\0';
			snprintf(v[i].name, sizeof(v[i].name), "%s", comm);
			free(comm);
		}
		/* Where it stands, as where would say with it current. */
		esky_target_select_thread(s->t, tid);
		if (!get_pc(s, &v[i].pc))
			describe(s, v[i].pc, v[i].where, sizeof(v[i].where));
	}
	esky_target_select_thread(s->t, cur);
	*out = v;
	*count = n;
	return 0;
}

int esky_session_select_thread(struct esky_session *s, int tid)
{
	struct esky_tracee *trs[256];
	size_t n;

	if (!esky_session_alive(s))
		return no_process();
	n = esky_target_threads(s->t, trs, ESKY_ARRAY_SIZE(trs));
	for (size_t i = 0; i < n && i < ESKY_ARRAY_SIZE(trs); i++)
		if (program_tid(esky_tracee_pid(trs[i])) == tid)
			return esky_target_select_thread(s->t, esky_tracee_pid(trs[i]));
	return esky_error(-ESRCH, "no thread %d in the program", tid);
}

int esky_session_where(struct esky_session *s, struct esky_stop_report *r)
{
	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return no_process();
	report_where(s, r);
	return 0;
}

int esky_session_registers(struct esky_session *s, char *buf, size_t n)
{
	esky_regs_t regs;
	int ret;

	if (!esky_session_alive(s))
		return no_process();
	ret = esky_target_get_regs(s->t, &regs);
	if (ret)
		return esky_error(ret, "cannot read the registers: %s", strerror(-ret));
	arch_regs_format(&regs, buf, n);
	return 0;
}

int esky_session_eval(struct esky_session *s, const char *expr, uint64_t *addr)
{
	if (!esky_parse_u64(expr, addr))
		return 0;
	if (expr[0] == '$') {
		esky_regs_t regs;

		if (!esky_session_alive(s))
			return no_process();
		if (esky_target_get_regs(s->t, &regs) ||
		    arch_regs_get(&regs, expr + 1, addr))
			return esky_error(-ENOENT, "no register %s", expr);
		return 0;
	}
	if (s->di) {
		struct esky_loc *locs;
		size_t n;
		/* A function's entry: look it up by its address as *FUNCTION would not. */
		int ret = esky_debuginfo_resolve(s->di, expr, &locs, &n);

		if (!ret && n) {
			*addr = locs[0].addr + s->bias;
			esky_locs_free(locs, n);
			return 0;
		}
		if (!ret)
			esky_locs_free(locs, n);
		return ret ? ret : esky_error(-ENOENT, "no symbol %s", expr);
	}
	if (!s->program)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	return esky_error(-EINVAL, "bad address %s: give a number, $register or a function", expr);
}

int esky_session_read(struct esky_session *s, uint64_t addr, void *buf, size_t len)
{
	int ret;

	if (!esky_session_alive(s))
		return no_process();
	ret = esky_target_read_mem(s->t, addr, buf, len);
	if (ret)
		return esky_error(ret, "cannot read memory at 0x%" PRIx64 ": %s", addr, strerror(-ret));
	/* Show the program's bytes, not our breakpoints. */
	for (size_t i = 0; i < s->nsites; i++)
		if (s->sites[i].addr >= addr && s->sites[i].addr < addr + len)
			((uint8_t *)buf)[s->sites[i].addr - addr] = s->sites[i].orig;
	return 0;
}

/* ---- snapshots ---- */

static bool parent_hash(void *ctx, uint64_t vaddr, uint64_t *hash)
{
	struct esky_session *s = ctx;
	size_t lo = 0, hi = s->nhashes;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->hashes[mid].vaddr < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nhashes && s->hashes[lo].vaddr == vaddr) {
		*hash = s->hashes[lo].hash;
		return true;
	}
	return false;
}

/* The index of the first page of the table at or above va, from `at` on (the walks go up). */
static size_t hash_lower(const struct esky_session *s, size_t at, uint64_t va)
{
	size_t lo = at, hi = s->nhashes;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->hashes[mid].vaddr < va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The usual case with dirty-page tracking: the snapshot has its parent's
 * pages, the written ones stored again. Then only their hashes change, in
 * place: two searches per run, not a copy per page (a GiB is 262144
 * pages). A parent run may span pages no image stores (a file's own
 * pages); a stored run must have all of its pages in the table; and the
 * runs must hold every page of the table, or some would be dropped. False,
 * with nothing changed, if not so.
 */
static bool update_hashes_in_place(struct esky_session *s, const struct esky_image_view *v)
{
	for (int pass = 0; pass < 2; pass++) {
		size_t at = 0, total = 0;

		for (size_t i = 0; i < v->run_n; i++) {
			const struct esky_img_pagerun *r = &v->runs[i];
			size_t k0, k1;

			if (r->kind == ESKY_IMG_PAGES_ZERO || !r->npages)
				continue;
			k0 = hash_lower(s, at, r->vaddr);
			k1 = hash_lower(s, k0, r->vaddr + r->npages * ESKY_PAGE_SIZE);
			/* Addresses go up by pages: as many as the run means all of it. */
			if (r->kind == ESKY_IMG_PAGES_DATA && k1 - k0 != r->npages)
				return false;
			if (pass == 1 && r->kind == ESKY_IMG_PAGES_DATA)
				for (uint64_t k = 0; k < r->npages; k++)
					s->hashes[k0 + k].hash = v->hashes[r->hash_index + k];
			total += k1 - k0;
			at = k1;
		}
		if (total != s->nhashes)
			return false;
	}
	return true;
}

/*
 * The hashes of the pages of a snapshot just written, from its runs and its
 * parent's. Runs and both tables go up by address: one walk, no search
 * per page (a binary search per page of a GiB cost ~10 ms a snapshot).
 */
static int derive_hashes(struct esky_session *s, const struct esky_image *img)
{
	const struct esky_image_view *v = esky_image_view(img);
	struct esky_page_hash *nh = NULL;
	size_t n = 0, cap = 0, at = 0;

	if (s->nhashes && update_hashes_in_place(s, v))
		return 0;

	for (size_t i = 0; i < v->run_n; i++) {
		const struct esky_img_pagerun *r = &v->runs[i];

		if (r->kind == ESKY_IMG_PAGES_ZERO)
			continue;
		if (n + r->npages > cap) {
			struct esky_page_hash *g;

			cap = (n + r->npages) * 2;
			g = realloc(nh, cap * sizeof(*g));
			if (!g) {
				free(nh);
				return -ENOMEM;
			}
			nh = g;
		}
		for (uint64_t k = 0; k < r->npages; k++) {
			uint64_t va = r->vaddr + k * ESKY_PAGE_SIZE, h;

			if (r->kind == ESKY_IMG_PAGES_DATA) {
				nh[n++] = (struct esky_page_hash){ va, v->hashes[r->hash_index + k] };
				continue;
			}
			while (at < s->nhashes && s->hashes[at].vaddr < va)
				at++;
			if (at < s->nhashes && s->hashes[at].vaddr == va)
				nh[n++] = (struct esky_page_hash){ va, s->hashes[at].hash };
			else if (parent_hash(s, va, &h)) /* runs out of order: never seen */
				nh[n++] = (struct esky_page_hash){ va, h };
		}
	}
	free(s->hashes);
	s->hashes = nh;
	s->nhashes = n;
	return 0;
}

/*
 * The original bytes under our int3s, for the dump to put back into the
 * image: no checkpoint ever holds a breakpoint. Sets o's patches (the
 * array returned, malloc'd; NULL if out of memory).
 */
static struct esky_dump_patch *site_patches(const struct esky_session *s,
					    struct esky_checkpoint_opts *o)
{
	struct esky_dump_patch *patches = calloc(s->nsites ? s->nsites : 1, sizeof(*patches));

	if (!patches)
		return NULL;
	for (size_t i = 0; i < s->nsites; i++)
		patches[i] = (struct esky_dump_patch){ s->sites[i].addr, s->sites[i].orig };
	o->patches = patches;
	o->patch_n = s->nsites;
	return patches;
}

/* esky snap: the snapshot as a standalone checkpoint file named by the sink. */
static int take_snapshot_file(struct esky_session *s, const struct esky_checkpoint_opts *o,
			      int *idp)
{
	struct esky_snapfile sf = { .bp = s->snap_bp, .hit = s->snap_hit };
	struct esky_dump_stats st;
	char where[512];
	uint64_t pc = 0;
	char *path;
	int ret;

	get_pc(s, &pc);
	describe(s, pc, where, sizeof(where));
	sf.where = where;
	sf.run_ns = esky_target_run_ns(s->t);
	esky_error_clear();
	path = s->sink.name(s->sink.ctx, &sf);
	if (!path)
		return esky_last_error() ? -EIO : -ENOMEM;
	ret = esky_target_checkpoint(s->t, path, o, &st);
	if (!ret) {
		sf.bytes = st.file_size;
		sf.path = path;
		if (s->sink.written)
			s->sink.written(s->sink.ctx, &sf);
		*idp = 0;
	}
	free(path);
	return ret;
}

/*
 * Dirty-page tracking from this snapshot on (its arm is now): the program
 * makes a userfaultfd that esky takes over. Where the kernel or the
 * program does not allow it, snapshots compare content hashes; why is
 * kept for info store.
 */
static void start_tracking(struct esky_session *s)
{
	int fd, ret;

	if (!s->track_pages || s->dirty)
		return;
	ret = esky_target_make_uffd(s->t, &fd);
	if (!ret)
		ret = esky_dirty_start(esky_target_pid(s->t), fd, &s->dirty);
	s->tracking_err = ret;
	if (ret)
		pr_debug("dirty-page tracking off: %s", strerror(-ret));
}

/* A snapshot's file is complete: its id and page hashes become the lineage's. */
static int snapshot_written(struct esky_session *s, const char *path)
{
	struct esky_image *img;
	int ret = esky_image_open(path, &img);

	if (ret)
		return ret;
	memcpy(s->lineage_id, esky_image_view(img)->hdr->id, sizeof(s->lineage_id));
	ret = derive_hashes(s, img);
	esky_image_close(img);
	return ret;
}

static int take_snapshot_as(struct esky_session *s, enum esky_snap_cause cause, const char *note,
			    int *idp, bool defer)
{
	struct esky_checkpoint_opts o = { .background = false };
	struct esky_dump_patch *patches;
	struct esky_snapinfo si = { 0 };
	struct esky_dump_stats st;
	char hint[32], where[512], *path = NULL;
	uint64_t pc = 0;
	uint64_t t0 = esky_now_ns();
	int id, ret;

	if (!esky_session_alive(s))
		return no_process();
	ret = record_snapshot(s);
	if (ret)
		return ret;
	patches = site_patches(s, &o);
	if (!patches)
		return -ENOMEM;
	if (!s->store) {
		ret = take_snapshot_file(s, &o, idp);
		goto out_free;
	}
	if (s->spare_id) {
		id = s->spare_id;
		s->spare_id = 0;
		path = esky_store_path(s->store, id);
		ret = path ? 0 : -ENOMEM;
	} else {
		ret = esky_store_reserve(s->store, &id, &path);
	}
	if (ret)
		goto out_free;
	if (s->lineage && esky_store_get(s->store, s->lineage)) {
		esky_store_file_name(s->lineage, hint, sizeof(hint));
		o.parent_id = s->lineage_id;
		o.parent_hint = hint;
		o.parent_hash = parent_hash;
		o.parent_ctx = s;
		/* What the program wrote since the parent: only that is read. */
		if (s->dirty && esky_dirty_collect(s->dirty) == 0) {
			o.page_unchanged = esky_dirty_unchanged;
			o.unchanged_ctx = s->dirty;
		}
	}
	/*
	 * Tracking answers for "since the last snapshot": without a parent
	 * (forgotten) or after a failed collect, start it afresh after this one.
	 */
	if (!o.page_unchanged)
		stop_tracking(s);
	o.maps_cache = &s->maps_cache;
	/* A timer snapshot's file is completed once the program runs again. */
	o.defer_commit = defer;
	get_pc(s, &pc);
	describe(s, pc, where, sizeof(where));
	ret = esky_target_checkpoint(s->t, path, &o, &st);
	if (ret)
		goto out_free;
	if (!defer) {
		ret = snapshot_written(s, path);
		if (ret)
			goto out_free;
	}
	si.id = id;
	si.parent = o.parent_id ? s->lineage : 0;
	si.cause = cause;
	si.run_ns = esky_target_run_ns(s->t);
	si.bytes = st.file_size;
	si.created_ns = esky_wall_ns();
	si.location = where;
	si.note = (char *)(note ? note : "");
	if (defer) {
		si.location = strdup(where);
		si.note = strdup(si.note);
		if (!si.location || !si.note) {
			free(si.location);
			free(si.note);
			unlink(path);
			ret = -ENOMEM;
			goto out_free;
		}
		s->unrecorded = true;
		s->unrecorded_si = si;
		s->unrecorded_path = path;
		path = NULL;
	} else {
		ret = esky_store_add(s->store, &si);
		if (ret) {
			unlink(path); /* not in the tree: nobody would ever remove it */
			goto out_free;
		}
	}
	s->lineage = id;
	*idp = id;
	start_tracking(s);
	pr_debug("snapshot %d: the program stood %.1f ms (dump %.1f: prepare %.1f, write %.1f)", id,
		 (double)(esky_now_ns() - t0) / 1e6, (double)(st.prepare_ns + st.write_ns) / 1e6,
		 (double)st.prepare_ns / 1e6, (double)st.write_ns / 1e6);
	if (cause != ESKY_SNAP_MANUAL)
		notify(s, "snapshot %d (%s) at %s", id, esky_snap_cause_name(cause), where);
out_free:
	/* Armed for a snapshot that was not recorded: the next must not trust it. */
	if (ret)
		stop_tracking(s);
	free(path);
	free(patches);
	return ret;
}

void esky_session_rewind_in_place(struct esky_session *s, bool on)
{
	s->in_place = on;
}

static int take_snapshot(struct esky_session *s, enum esky_snap_cause cause, const char *note,
			 int *idp)
{
	return take_snapshot_as(s, cause, note, idp, false);
}

/*
 * Record the deferred timer snapshot in the store's tree. If that fails,
 * its file goes, and the program descends from no recorded snapshot: the
 * next one is whole, the tracking starts again after it.
 */
static int record_snapshot(struct esky_session *s)
{
	int ret;

	if (!s->unrecorded)
		return 0;
	s->unrecorded = false;
	{
		struct esky_dump_stats st = { 0 };

		ret = s->t ? esky_target_checkpoint_commit(s->t, &st) : -ESRCH;
		if (!ret)
			ret = snapshot_written(s, s->unrecorded_path);
		s->unrecorded_si.bytes = st.file_size;
	}
	if (!ret)
		ret = esky_store_add(s->store, &s->unrecorded_si);
	if (ret) {
		notify(s, "snapshot %d could not be recorded: %s", s->unrecorded_si.id,
		       esky_last_error() ? esky_last_error() : strerror(-ret));
		unlink(s->unrecorded_path);
		stop_tracking(s);
		s->lineage = 0;
		free(s->hashes);
		s->hashes = NULL;
		s->nhashes = 0;
	}
	free(s->unrecorded_si.location);
	free(s->unrecorded_si.note);
	free(s->unrecorded_path);
	s->unrecorded_path = NULL;
	/* The next one's id, while the program runs. */
	if (!ret && s->every_ns && !s->spare_id) {
		char *path = NULL;

		if (esky_store_reserve(s->store, &s->spare_id, &path)) {
			s->spare_id = 0; /* reserved when it is taken, then */
			esky_error_clear();
		}
		free(path);
	}
	return ret;
}

/* An id reserved for a timer snapshot that will not come. */
static void release_spare(struct esky_session *s)
{
	char *said;

	if (!s->spare_id || !s->store)
		return;
	/* A failure leaves a gap in the numbers, and the caller's message as it was. */
	said = esky_last_error() ? strdup(esky_last_error()) : NULL;
	if (esky_store_unreserve(s->store, s->spare_id)) {
		esky_error_clear();
		if (said)
			esky_error(-EIO, "%s", said);
	}
	free(said);
	s->spare_id = 0;
}

void esky_session_track_pages(struct esky_session *s, bool on)
{
	s->track_pages = on;
	if (!on)
		stop_tracking(s);
}

const char *esky_session_pages_mode(const struct esky_session *s, char *buf, size_t n)
{
	if (s->dirty) {
		uint64_t written, tracked;

		esky_dirty_counts(s->dirty, &written, &tracked);
		if (tracked)
			snprintf(buf, n, "userfaultfd write-protect (the last snapshot read %" PRIu64
				 " written pages of %" PRIu64 " tracked)", written, tracked);
		else
			snprintf(buf, n, "userfaultfd write-protect (armed at the last snapshot)");
	} else if (!s->track_pages) {
		snprintf(buf, n, "content hashes (tracking turned off)");
	} else if (s->tracking_err) {
		snprintf(buf, n, "content hashes (tracking unavailable: %s)",
			 s->tracking_err == -EBUSY ? "the program uses userfaultfd itself"
			 : s->tracking_err == -ENOTSUP ? "this kernel lacks uffd-wp or PAGEMAP_SCAN"
						      : strerror(-s->tracking_err));
	} else {
		snprintf(buf, n, "userfaultfd write-protect, from the next snapshot on");
	}
	return buf;
}

int esky_session_snapshot(struct esky_session *s, const char *note, int *id)
{
	return take_snapshot(s, ESKY_SNAP_MANUAL, note, id);
}

int esky_session_every(struct esky_session *s, uint64_t ns)
{
	s->every_ns = ns;
	s->every_left = ns;
	return 0;
}

uint64_t esky_session_every_ns(const struct esky_session *s)
{
	return s->every_ns;
}

static int open_snapshot_chain(struct esky_session *s, int id, struct esky_image ***chain, size_t *n)
{
	char *path;
	int ret;

	if (!s->store)
		return no_store();
	esky_store_reload(s->store);
	if (!esky_store_get(s->store, id))
		return esky_error(-ENOENT, "no snapshot %d (tree lists them)", id);
	path = esky_store_path(s->store, id);
	if (!path)
		return -ENOMEM;
	ret = esky_image_open_chain(path, chain, n);
	free(path);
	return ret;
}

/* The thread that was current when the snapshot was taken is current again. */
static void make_snapshot_thread_current(struct esky_session *s, struct esky_image *img)
{
	struct esky_tracee *trs[256];
	char *tid = esky_image_meta(img, "current-thread");
	size_t n;

	if (!tid)
		return;
	n = esky_target_threads(s->t, trs, ESKY_ARRAY_SIZE(trs));
	for (size_t i = 0; i < n && i < ESKY_ARRAY_SIZE(trs); i++)
		if (program_tid(esky_tracee_pid(trs[i])) == atoi(tid))
			esky_target_make_current(s->t, esky_tracee_pid(trs[i]));
	free(tid);
}

/*
 * Rewind the live program without making a new one when it still has the
 * snapshot's shape (rewind.h), knowing from the tracking what it wrote.
 * 0: done, the tracking re-armed for "since this snapshot"; otherwise the
 * caller thaws (-EAGAIN: not possible here; other: failed on the way).
 */
static int rewind_in_place(struct esky_session *s, struct esky_image **chain, size_t n,
			   const struct esky_page_hash *to, size_t to_n)
{
	struct esky_tracee *tr;
	struct esky_rewind_in in = { 0 };
	struct esky_rewind_stats st;
	int ret;

	if (!s->in_place || !esky_session_alive(s))
		return -EAGAIN;
	if (!s->dirty || !s->lineage || !esky_store_get(s->store, s->lineage) ||
	    esky_target_thread_count(s->t) != 1) {
		pr_debug("rewind in place: %s", !s->dirty ? "no dirty-page tracking"
					      : esky_target_thread_count(s->t) != 1 ? "threads"
					      : "the program's snapshot is gone");
		return -EAGAIN;
	}
	tr = esky_target_tracee(s->t);
	/* What the program wrote since the snapshot it descends from. */
	ret = esky_dirty_collect(s->dirty);
	if (ret) {
		pr_debug("rewind in place: the tracking failed: %s", strerror(-ret));
		stop_tracking(s);
		return -EAGAIN;
	}
	in = (struct esky_rewind_in){
		.t = tr,
		.chain = chain,
		.n = n,
		.from = s->hashes,
		.from_n = s->nhashes,
		.to = to,
		.to_n = to_n,
		.unchanged = esky_dirty_unchanged,
		.unchanged_ctx = s->dirty,
		.max_pages = 65536, /* 256 MiB: beyond, a thaw costs about the same */
	};
	/* The program's own bytes under our int3s first: every page then holds the program's. */
	for (size_t i = 0; i < s->nsites; i++)
		esky_target_write_mem(s->t, s->sites[i].addr, &s->sites[i].orig, 1);
	s->nsites = 0;
	ret = esky_rewind_in_place(&in, &st);
	pr_debug("rewind in place: %s (%" PRIu64 " pages written of %" PRIu64 ")",
		 ret == 0 ? "done" : ret == -EAGAIN ? "not possible" : "failed", st.pages_written,
		 st.pages_compared);
	if (ret)
		return ret;
	/* Our writes count as the program's: from here on, "since this snapshot". */
	if (esky_dirty_collect(s->dirty))
		stop_tracking(s);
	esky_target_rewound(s->t, esky_image_view(chain[0])->core->run_ns);
	s->pending = PENDING_NONE;
	return 0;
}

int esky_session_rewind(struct esky_session *s, int id, struct esky_stop_report *r)
{
	struct esky_restore_opts ro = { .verify_pages = true, .follow_threads = true };
	struct esky_page_hash *to = NULL;
	struct esky_image **chain;
	const struct esky_image_view *v;
	uint64_t t0 = esky_now_ns();
	size_t n, to_n = 0;
	bool in_place = false;
	int ret;

	memset(r, 0, sizeof(*r));
	ret = open_snapshot_chain(s, id, &chain, &n);
	if (ret)
		return ret;
	v = esky_image_view(chain[0]);
	ret = esky_image_page_hashes(chain, n, &to, &to_n);
	if (ret)
		goto out_close;
	ret = rewind_in_place(s, chain, n, to, to_n);
	if (ret && ret != -EAGAIN) {
		pr_debug("rewind in place failed (%s): the snapshot is thawed", esky_last_error());
		esky_error_clear();
	}
	if (!ret) {
		in_place = true;
		goto rewound;
	}
	if (!s->program && v->core->exe_file != UINT32_MAX) {
		ret = esky_session_file(s, esky_image_str(chain[0], v->files[v->core->exe_file].path));
		if (ret)
			goto out_close;
	}
	ret = find_agent(s);
	if (ret)
		goto out_close;
	ro.agent_path = s->agent;
	drop_process(s);
	ret = esky_target_restore(chain, n, &ro, &s->t);
	if (ret)
		goto out_close;
	esky_target_set_idle(s->t, session_idle, s);
	esky_target_on_new_thread(s->t, thread_born, s);
	make_snapshot_thread_current(s, chain[0]);
	esky_target_report_signals(s->t, true);
	find_bias(s);
	resolve_libs(s); /* a thawed snapshot has its own library addresses */
	/* What it writes from here on is known: the next rewind may be in place. */
	start_tracking(s);
rewound:
	memcpy(s->lineage_id, v->hdr->id, sizeof(s->lineage_id));
	s->lineage = id;
	free(s->hashes);
	s->hashes = to;
	s->nhashes = to_n;
	to = NULL;
	s->every_left = s->every_ns;
	ret = sync_sites(s);
	/* The program stands at the snapshot even if the store cannot record it (read-only). */
	if (!ret && esky_store_set_current(s->store, id)) {
		pr_warn("%s; the tree does not mark snapshot %d as current", esky_last_error(), id);
		esky_error_clear();
	}
	r->why = ESKY_WHY_REWOUND;
	report_where(s, r);
	pr_debug("rewind to snapshot %d: %.1f ms (%s)", id, (double)(esky_now_ns() - t0) / 1e6,
		 in_place ? "in place" : "thaw");
out_close:
	free(to);
	esky_image_close_chain(chain, n);
	return ret;
}

/* export and gcore never write over a store's own files (its images, tree, lock). */
static int not_store_file(const char *path)
{
	char *dir = NULL;

	if (!esky_store_owns(path, &dir))
		return 0;
	esky_error(-EEXIST, "%s is a file of the store %s: give another file name", path,
		   dir ? dir : "");
	free(dir);
	return -EEXIST;
}

int esky_session_gcore(struct esky_session *s, int id, const char *path)
{
	struct esky_image **chain;
	size_t n;
	char *tmp = NULL;
	int ret = not_store_file(path);

	if (ret)
		return ret;
	if (id) {
		ret = open_snapshot_chain(s, id, &chain, &n);
	} else {
		/* The program as it stands: a checkpoint of it, made into a core, then dropped. */
		struct esky_checkpoint_opts o = { .background = false };
		struct esky_dump_patch *patches;
		struct esky_dump_stats st;

		if (!esky_session_alive(s))
			return no_process();
		patches = site_patches(s, &o);
		/* In the store: the user's folder may not take it (the core's error names it). */
		if (!patches || asprintf(&tmp, "%s/.gcore-%d.ckpt", esky_store_dir(s->store),
					 (int)getpid()) < 0) {
			free(patches);
			return -ENOMEM;
		}
		ret = esky_target_checkpoint(s->t, tmp, &o, &st);
		free(patches);
		if (!ret)
			ret = esky_image_open_chain(tmp, &chain, &n);
	}
	if (!ret) {
		ret = esky_core_write(chain, n, path);
		esky_image_close_chain(chain, n);
	}
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	return ret;
}

int esky_session_gdb(struct esky_session *s, struct esky_stop_report *r)
{
	struct esky_gdb_opts go = { .program = s->program };
	int gdb_status, end_ws, ret;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return no_process();
	/*
	 * While gdb has it, nobody would read the tracking's events (an munmap
	 * gdb makes it call would wait for ever): the next snapshot compares
	 * hashes and starts the tracking again.
	 */
	stop_tracking(s);
	/* gdb sees the program's own code: our int3s go, and come back after. */
	while (s->nsites) {
		ret = remove_site(s, 0);
		if (ret)
			return esky_error(ret, "cannot take the breakpoints out: %s", strerror(-ret));
	}
	ret = esky_gdb_handoff(&s->t, &go, &gdb_status, &end_ws);
	if (ret) {
		if (s->t)
			sync_sites(s);
		return ret;
	}
	if (WIFEXITED(gdb_status) && WEXITSTATUS(gdb_status) == 127)
		pr_warn("gdb could not be run (install gdb, or set ESKY_GDB)");
	if (!s->t) {
		struct esky_event ev = {
			.kind = WIFEXITED(end_ws) ? ESKY_EV_EXITED : ESKY_EV_KILLED,
			.status = WIFEXITED(end_ws) ? WEXITSTATUS(end_ws) : 0,
			.sig = WIFSIGNALED(end_ws) ? WTERMSIG(end_ws) : 0,
		};

		ended(s, &ev, r);
		return 0;
	}
	esky_target_report_signals(s->t, !s->pass_signals);
	/* Taken back by an attach: it holds our breakpoints again, it dies with us. */
	esky_target_survive_monitor(s->t, false);
	esky_target_set_idle(s->t, session_idle, s);
	esky_target_on_new_thread(s->t, thread_born, s);
	ret = esky_target_follow_threads(s->t, NULL, 0);
	if (ret)
		return esky_error(ret, "cannot follow the threads of pid %d again: %s",
				  esky_target_pid(s->t), strerror(-ret));
	s->pending = PENDING_NONE;
	find_bias(s);
	ret = sync_sites(s);
	r->why = ESKY_WHY_INTERRUPTED;
	report_where(s, r);
	return ret;
}

int esky_session_export(struct esky_session *s, int id, const char *path)
{
	struct esky_image **chain;
	size_t n;
	int ret = not_store_file(path);

	if (!ret)
		ret = open_snapshot_chain(s, id, &chain, &n);
	if (ret)
		return ret;
	ret = esky_image_flatten(chain, n, path);
	esky_image_close_chain(chain, n);
	return ret;
}

int esky_session_forget(struct esky_session *s, int id, int **removed, size_t *n)
{
	int ret = s->store ? esky_store_forget(s->store, id, removed, n) : no_store();

	for (size_t i = 0; !ret && i < *n; i++) {
		if ((*removed)[i] == s->lineage) {
			/* The next snapshot stores everything: its ancestor is gone. */
			s->lineage = 0;
			free(s->hashes);
			s->hashes = NULL;
			s->nhashes = 0;
		}
	}
	return ret;
}

const struct esky_snapinfo *esky_session_snapshots(struct esky_session *s, size_t *n)
{
	*n = 0;
	if (!s->store)
		return NULL;
	esky_store_reload(s->store);
	return esky_store_list(s->store, n);
}

int esky_session_current(const struct esky_session *s)
{
	return s->store ? esky_store_current(s->store) : 0;
}

void esky_session_complete(struct esky_session *s, const char *prefix,
			   void (*fn)(const char *name, void *ctx), void *ctx)
{
	if (s->di)
		esky_debuginfo_complete(s->di, prefix, fn, ctx);
}

/* ---- symbols and libraries (info symbol, info line, info sharedlibrary) ---- */

int esky_session_describe(struct esky_session *s, uint64_t addr, char *buf, size_t n)
{
	struct esky_vma *vmas;
	const char *obj;
	uint64_t off;
	size_t nv;
	int ret = -ENOENT;

	if (!s->di)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	/* Before the program runs, addresses are the file's. */
	if (!esky_session_alive(s)) {
		esky_debuginfo_describe(s->di, addr, buf, n);
		return 0;
	}
	if (addr >= s->exe_lo && addr < s->exe_hi) {
		if (!esky_debuginfo_object_at(s->di, addr - s->bias, &obj, &off))
			snprintf(buf, n, off ? "%s+%" PRIu64 " (a variable)" : "%s (a variable)", obj, off);
		else
			esky_debuginfo_describe(s->di, addr - s->bias, buf, n);
		return 0;
	}
	if (esky_proc_read_maps(esky_target_pid(s->t), false, &vmas, &nv))
		return esky_error(-EIO, "cannot read the program's memory map");
	for (size_t i = 0; i < nv; i++) {
		if (addr >= vmas[i].start && addr < vmas[i].end && vmas[i].path) {
			describe_in_lib(s, vmas, nv, &vmas[i], addr, buf, n);
			ret = 0;
			break;
		}
	}
	esky_vmas_free(vmas, nv);
	return ret ? esky_error(ret, "no symbol matches 0x%" PRIx64, addr) : 0;
}

int esky_session_lines(struct esky_session *s, const char *spec, uint64_t **addrs, size_t *n)
{
	struct esky_loc *locs;
	int ret;

	if (!s->di)
		return esky_error(-ENOENT, "no program: give one with file PROGRAM first");
	ret = esky_debuginfo_resolve(s->di, spec, &locs, n);
	if (ret)
		return ret;
	*addrs = calloc(*n ? *n : 1, sizeof(**addrs));
	for (size_t i = 0; *addrs && i < *n; i++)
		(*addrs)[i] = locs[i].addr + (esky_session_alive(s) ? s->bias : 0);
	esky_locs_free(locs, *n);
	return *addrs ? 0 : -ENOMEM;
}

int esky_session_libraries(struct esky_session *s,
			   void (*fn)(void *ctx, uint64_t lo, uint64_t hi, const char *path),
			   void *ctx)
{
	struct esky_vma *vmas;
	size_t nv;
	int ret;

	if (!esky_session_alive(s))
		return no_process();
	ret = esky_proc_read_maps(esky_target_pid(s->t), false, &vmas, &nv);
	if (ret)
		return esky_error(ret, "cannot read the program's memory map: %s", strerror(-ret));
	/* Each file with code that is not the program, from its first mapping to its last. */
	for (size_t i = 0; i < nv; i++) {
		uint64_t lo, hi;
		bool code = false;
		size_t j = i;

		if (!vmas[i].path || vmas[i].path[0] != '/' ||
		    (s->program && !strcmp(vmas[i].path, s->program)) ||
		    (i && vmas[i - 1].path && !strcmp(vmas[i - 1].path, vmas[i].path)))
			continue;
		lo = vmas[i].start;
		hi = vmas[i].end;
		for (; j < nv && vmas[j].path && !strcmp(vmas[j].path, vmas[i].path); j++) {
			hi = vmas[j].end;
			code |= (vmas[j].prot & PROT_EXEC) != 0;
		}
		if (code)
			fn(ctx, lo, hi, vmas[i].path);
	}
	esky_vmas_free(vmas, nv);
	return 0;
}
