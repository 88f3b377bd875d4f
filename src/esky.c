/*
 * esky: freeze a running process into a checkpoint file and thaw it later.
 *
 *   esky start [-o FILE] [--] PROGRAM [ARGS...]
 *   esky resume [-f FILE] [-o FILE] [--force] [PROGRAM [ARGS...]]
 *   esky checkpoint PID [-o FILE] [--kill] [--force]
 *   esky info [-v] [--force] FILE
 *   esky core CHECKPOINT [-o FILE] [--force]
 *   esky check [--force] CHECKPOINT...
 *   esky snap --at LOCATION... [--every DURATION] [--count N] [-o DIR] -- PROGRAM [ARGS...]
 */
#include "core.h"
#include "describe.h"
#include "gdb.h"
#include "image.h"
#include "log.h"
#include "restore.h"
#include "session.h"
#include "store.h"
#include "target.h"
#include "tree.h"
#include "trust.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_CHECKPOINT "checkpoint"

static const char *cmd_name = "esky";
static bool quiet;

static void sink(enum esky_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level == ESKY_LOG_ERROR || level == ESKY_LOG_WARN || !quiet)
		fprintf(stderr, "esky: %s%s\n", level == ESKY_LOG_WARN ? "warning: " : "", msg);
}

/* Print the recorded error (or a fallback) as the one line the user sees. */
static int fail(int err, const char *fallback)
{
	const char *msg = esky_last_error();

	fprintf(stderr, "esky: %s: %s\n", cmd_name, msg ? msg : fallback ? fallback : strerror(-err));
	return err == -ENOENT || err == -EINVAL ? 2 : 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: esky start [-o FILE | --chain DIR] [--] PROGRAM [ARGS...]\n"
		"       esky resume [-f FILE] [-o FILE] [--force] [--no-verify] [--lazy]\n"
		"                   [--detach | --gdb]\n"
		"                   [PROGRAM [ARGS...]]\n"
		"       esky checkpoint PID [-o FILE] [--kill] [--force]\n"
		"       esky info [-v] [--force] FILE\n"
		"       esky core CHECKPOINT [-o FILE] [-q] [--force]\n"
		"       esky check [--force] CHECKPOINT...\n"
		"       esky snap [--at LOCATION]... [--every DURATION] [--count N] [-o DIR]\n"
		"                 [--tsv[=FILE]] [--replace] [--] PROGRAM [ARGS...]\n"
		"\n"
		"start runs PROGRAM under esky; `kill -USR1 <esky's pid>` writes a checkpoint to\n"
		"FILE (default ./" DEFAULT_CHECKPOINT ") and the program carries on. resume thaws a\n"
		"checkpoint: the program carries on where it was frozen, with esky's stdio.\n"
		"checkpoint freezes a process that esky did not start. info describes a file.\n"
		"core writes an ELF core file of a checkpoint for gdb (FILE default ./core.PID).\n"
		"check tells whether checkpoints would resume here. snap runs PROGRAM to its end,\n"
		"writing a checkpoint each time it reaches a LOCATION (FILE:LINE, FUNCTION or\n"
		"*ADDRESS) and each DURATION of run time.\n"
		"Files, stores and processes of other users, and set-id programs, are refused;\n"
		"root may use another user's with --force (doc/security.md).\n"
		"Options: -q quiet (errors only), --help, --version. See doc/esky.md.\n");
}

/* getopt's complaint, in esky's words (opterr is 0). */
static int bad_option(char **argv)
{
	const char *opt = argv[optind - 1];

	if (optopt && opt[0] == '-' && opt[1] != '-')
		fprintf(stderr, "esky: %s: unknown option -%c or missing argument (esky --help)\n",
			cmd_name, optopt);
	else
		fprintf(stderr, "esky: %s: unknown option %s or missing argument (esky --help)\n",
			cmd_name, opt);
	return 2;
}

/*
 * esky start --chain DIR: each SIGUSR1 writes DIR/NNNN.ckpt, incremental
 * on the one before (pages it has the same are referred to, not stored);
 * the first one is whole. esky resume -f DIR/NNNN.ckpt finds its parents.
 */
static struct {
	const char *dir;
	unsigned n;                      /* checkpoints written */
	char path[PATH_MAX];             /* the one being written */
	char prev[64];                   /* the last one written: its file name */
	uint8_t prev_id[16];
	struct esky_page_hash *hashes;   /* every page the last one holds or refers to */
	size_t nhashes;
} chain;

static bool chain_hash(void *ctx, uint64_t vaddr, uint64_t *hash)
{
	size_t lo = 0, hi = chain.nhashes;

	(void)ctx;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (chain.hashes[mid].vaddr < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < chain.nhashes && chain.hashes[lo].vaddr == vaddr) {
		*hash = chain.hashes[lo].hash;
		return true;
	}
	return false;
}

/* Where the next checkpoint goes: out, or the chain's next file. */
static const char *checkpoint_path(const char *out)
{
	if (!chain.dir)
		return out;
	snprintf(chain.path, sizeof(chain.path), "%s/%04u.ckpt", chain.dir, chain.n + 1);
	return chain.path;
}

/* A checkpoint of the chain is complete: the next one refers to it. */
static void chain_written(const char *path)
{
	struct esky_image **imgs;
	size_t n;

	if (!chain.dir)
		return;
	free(chain.hashes);
	chain.hashes = NULL;
	chain.nhashes = 0;
	if (esky_image_open_chain(path, &imgs, &n) == 0) {
		memcpy(chain.prev_id, esky_image_view(imgs[0])->hdr->id, sizeof(chain.prev_id));
		if (esky_image_page_hashes(imgs, n, &chain.hashes, &chain.nhashes))
			chain.nhashes = 0;
		esky_image_close_chain(imgs, n);
		snprintf(chain.prev, sizeof(chain.prev), "%04u.ckpt", chain.n + 1);
		chain.n++;
	} else {
		/* (The next one is whole then.) */
		esky_error_clear();
		chain.n++;
		chain.prev[0] = '\0';
	}
}

static int take_checkpoint(struct esky_target *t, const char *path)
{
	struct esky_checkpoint_opts o = { .background = true };
	struct esky_dump_stats st;
	uint64_t t0 = esky_now_ns();
	int ret;

	/* A set-id program, or one that changed its ids since it started: refused, untouched. */
	esky_error_clear();
	ret = esky_trust_process(esky_target_pid(t), 0);
	if (ret) {
		fprintf(stderr, "esky: checkpoint: %s\n", esky_last_error() ? esky_last_error()
									   : strerror(-ret));
		return ret;
	}
	if (chain.dir && chain.prev[0]) {
		o.parent_id = chain.prev_id;
		o.parent_hint = chain.prev;
		o.parent_hash = chain_hash;
	}
	ret = esky_target_checkpoint(t, path, &o, &st);
	if (ret) {
		fprintf(stderr, "esky: checkpoint: %s\n", esky_last_error() ? esky_last_error()
									   : strerror(-ret));
		return ret;
	}
	if (!esky_target_checkpoint_busy(t))
		chain_written(path);
	if (!esky_target_checkpoint_busy(t) && !quiet) {
		char sz[32];

		fprintf(stderr, "esky: checkpoint written to %s (%s, program stopped %.1f ms)\n", path,
			esky_fmt_size(st.file_size, sz, sizeof(sz)),
			(double)(esky_now_ns() - t0) / 1e6);
	} else if (!quiet) {
		fprintf(stderr, "esky: checkpoint of pid %d taken (program stopped %.1f ms), writing %s\n",
			esky_target_pid(t), (double)(esky_now_ns() - t0) / 1e6, path);
	}
	return 0;
}

static void checkpoint_written(struct esky_target *t, const char *path)
{
	struct esky_dump_stats st;
	int ret;

	esky_error_clear();
	ret = esky_target_checkpoint_done(t, &st);
	if (!ret)
		chain_written(path);
	if (ret) {
		fprintf(stderr, "esky: checkpoint: %s\n", esky_last_error() ? esky_last_error()
									   : strerror(-ret));
	} else if (!quiet) {
		char sz[32];

		fprintf(stderr, "esky: checkpoint written to %s (%s)\n", path,
			esky_fmt_size(st.file_size, sz, sizeof(sz)));
	}
}

/* A signal sent by a process (kill), not by the terminal. */
static bool from_process(const struct signalfd_siginfo *si)
{
	return si->ssi_code == SI_USER || si->ssi_code == SI_QUEUE || si->ssi_code == SI_TKILL;
}

/*
 * Run the program until it ends, checkpointing it on SIGUSR1. Returns the
 * exit status esky should have: the program's, or 128 + its signal.
 */
static const int monitor_sigs[] = { SIGCHLD, SIGUSR1, SIGINT, SIGQUIT, SIGTERM, SIGHUP,
				    SIGTSTP, SIGTTIN, SIGTTOU };

/*
 * The signals the monitor reads from a signalfd. Blocked from the start of
 * main, so that a SIGUSR1 sent while esky starts waits for the monitor
 * instead of killing esky (the program gets an empty mask at exec).
 */
static void monitor_sigset(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(monitor_sigs); i++)
		sigaddset(set, monitor_sigs[i]);
}

static int monitor(struct esky_target *t, const char *out_path)
{
	bool want_checkpoint = false, lazy;
	char lazy_err[512] = "";
	int sfd, status = -1, ret;
	sigset_t set;

	esky_tracee_note_inherited_signals();
	monitor_sigset(&set);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("esky: signalfd");
		return 1;
	}
	/*
	 * A job of hours must not die with its checkpointer: no breakpoints
	 * here. But while a lazy resume's pages come in, the program dies
	 * with us: without us they would read as zeros.
	 */
	lazy = esky_target_lazy_pending(t);
	ret = lazy ? 0 : esky_target_survive_monitor(t, true);
	if (!ret)
		ret = esky_target_cont(t);
	while (!ret && status < 0) {
		struct pollfd pfd[3] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = esky_target_checkpoint_fd(t), .events = POLLIN },
			{ .fd = lazy ? esky_target_lazy_fd(t) : -1, .events = POLLIN },
		};
		struct signalfd_siginfo si;

		if (lazy && !esky_target_lazy_pending(t)) {
			lazy = false;
			/* A damaged page killed the program: its end comes as SIGCHLD. */
			if (esky_target_lazy_finish(t))
				snprintf(lazy_err, sizeof(lazy_err), "%s", esky_last_error());
			else
				esky_target_survive_monitor(t, true); /* (gone meanwhile: SIGCHLD says how) */
		}
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents & POLLIN)
			checkpoint_written(t, chain.dir ? chain.path : out_path);
		if (!(pfd[0].revents & POLLIN))
			continue;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		switch (si.ssi_signo) {
		case SIGUSR1:
			if (esky_target_checkpoint_busy(t)) {
				fprintf(stderr, "esky: checkpoint: one is still being written to %s\n",
					chain.dir ? chain.path : out_path);
				break;
			}
			want_checkpoint = true;
			esky_target_interrupt(t);
			break;
		case SIGCHLD:
			for (;;) {
				struct esky_event ev;

				ret = esky_target_wait(t, &ev, false);
				if (ret == -EAGAIN) {
					ret = 0;
					break;
				}
				if (ret)
					break;
				if (ev.kind == ESKY_EV_EXITED) {
					status = ev.status;
					break;
				}
				if (ev.kind == ESKY_EV_KILLED) {
					status = 128 + ev.sig;
					break;
				}
				if (ev.kind == ESKY_EV_STOPPED && want_checkpoint) {
					want_checkpoint = false;
					take_checkpoint(t, checkpoint_path(out_path));
				}
				if (ev.kind != ESKY_EV_NONE)
					ret = esky_target_cont(t);
				if (ret)
					break;
			}
			break;
		case SIGTSTP:
		case SIGTTIN:
		case SIGTTOU:
			/*
			 * The terminal stops the program itself; esky follows its
			 * group stop. Sent to esky by a process: passed on, and
			 * esky follows the stop all the same.
			 */
			if (from_process(&si))
				kill(esky_target_pid(t), (int)si.ssi_signo);
			break;
		default:
			/* Terminal signals reach the program directly (same process group). */
			if (from_process(&si))
				kill(esky_target_pid(t), (int)si.ssi_signo);
			break;
		}
	}
	if (esky_target_checkpoint_busy(t))
		checkpoint_written(t, chain.dir ? chain.path : out_path);
	close(sfd);
	/* A page that failed its checksum killed the program: say which. */
	if (!lazy_err[0] && esky_target_lazy_finish(t))
		snprintf(lazy_err, sizeof(lazy_err), "%s", esky_last_error());
	if (lazy_err[0]) {
		fprintf(stderr, "esky: %s\n", lazy_err);
		return 1;
	}
	if (ret && status < 0) {
		fprintf(stderr, "esky: lost the program (pid %d): %s\n", esky_target_pid(t),
			strerror(-ret));
		return 1;
	}
	return status;
}

/*
 * What esky writes to out (what: "a checkpoint", "a core") must not
 * replace a file that is still needed as it is: any file of an esky-shell
 * store (its tree lists the snapshots by name), a parent of the image read
 * (chain, n: an incremental image names its parent by id), and with
 * keep_source the image read itself (a standalone checkpoint that is not
 * in a store may be replaced by the checkpoints of the program resumed
 * from it). Checked before anything starts. 0, or -EINVAL with the
 * message.
 */
static int check_output(const char *what, const char *out, struct esky_image *const *chain,
			size_t n, bool keep_source)
{
	const char *verb = strcmp(what, "a core") ? "resumed" : "read";
	char *store = NULL;
	struct stat os, is;

	if (esky_store_owns(out, &store)) {
		int ret = esky_error(-EINVAL, "%s is a file of the esky-shell store %s: %s must "
				     "not replace it; give another -o FILE", out,
				     store ? store : "", what);

		free(store);
		return ret;
	}
	/* The name the checkpoint's rename would replace (a symbolic link itself). */
	if (lstat(out, &os) < 0)
		return 0;
	for (size_t i = keep_source ? 0 : 1; i < n; i++) {
		if (fstat(esky_image_fd(chain[i]), &is) < 0 || is.st_dev != os.st_dev ||
		    is.st_ino != os.st_ino)
			continue;
		if (i == 0)
			return esky_error(-EINVAL, "%s is the checkpoint being %s: %s must not "
					  "replace it; give another -o FILE", out, verb, what);
		return esky_error(-EINVAL, "%s is a parent of the snapshot being %s: %s must "
				  "not replace it; give another -o FILE", out, verb, what);
	}
	return 0;
}

/* --chain DIR: made if missing; one that holds a chain already is refused (nothing overwritten). */
static int check_chain_dir(const char *dir)
{
	char first[PATH_MAX];
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return esky_error(-errno, "%s: %s", dir, strerror(errno));
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return esky_error(-ENOTDIR, "%s: not a directory", dir);
	if (access(dir, W_OK) < 0)
		return esky_error(-errno, "%s: %s", dir, strerror(errno));
	snprintf(first, sizeof(first), "%s/0001.ckpt", dir);
	if (access(first, F_OK) == 0)
		return esky_error(-EEXIST, "%s already holds a chain of checkpoints (0001.ckpt): give "
				  "another directory", dir);
	return 0;
}

static int cmd_start(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "chain", required_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = DEFAULT_CHECKPOINT;
	bool have_out = false;
	struct esky_target *t;
	int c, ret;

	while ((c = getopt_long(argc, argv, "+o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			have_out = true;
			break;
		case 'c':
			chain.dir = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option(argv);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "esky: start: which program? (esky start [-o FILE | --chain DIR] PROGRAM [ARGS...])\n");
		return 2;
	}
	if (chain.dir && have_out) {
		fprintf(stderr, "esky: start: -o FILE or --chain DIR, not both\n");
		return 2;
	}
	ret = chain.dir ? check_chain_dir(chain.dir) : check_output("a checkpoint", out, NULL, 0, false);
	if (ret)
		return fail(ret, NULL);
	ret = esky_target_start(argv + optind, &t);
	if (ret) {
		fail(ret, NULL);
		return ret == -ENOENT || ret == -EACCES ? 127 : 1;
	}
	ret = monitor(t, out);
	esky_target_free(t);
	return ret;
}

/*
 * esky resume --gdb: gdb attaches to the thawed program, stopped at the
 * checkpoint's instruction; when gdb ends, esky takes it back and
 * monitors it as usual. *t is NULL afterwards if it ended meanwhile
 * (*status is then esky's exit status).
 */
static int hand_to_gdb(struct esky_target **t, const struct esky_image *img, int *status)
{
	const struct esky_image_view *v = esky_image_view(img);
	struct esky_gdb_opts go = { 0 };
	int gdb_status, ended, ret;

	if (v->core->exe_file < v->file_n)
		go.program = esky_image_str(img, v->files[v->core->exe_file].path);
	ret = esky_gdb_handoff(t, &go, &gdb_status, &ended);
	if (ret) {
		esky_target_free(*t);
		*t = NULL;
		return ret;
	}
	if (WIFEXITED(gdb_status) && WEXITSTATUS(gdb_status) == 127)
		fprintf(stderr, "esky: resume: gdb could not be run; the program goes on under esky\n");
	if (ended >= 0)
		*status = WIFEXITED(ended) ? WEXITSTATUS(ended) : 128 + WTERMSIG(ended);
	else if (!quiet)
		fprintf(stderr, "esky: gdb is done; pid %d goes on under esky\n",
			(int)esky_target_pid(*t));
	return 0;
}

/*
 * Where SIGUSR1 writes the checkpoints of a resumed program without -o: the
 * file it was resumed from, which each checkpoint replaces. Not when that
 * file must stay as it is: an incremental snapshot (a standalone
 * checkpoint in its place would no longer be the parent of the snapshots
 * taken from it: "ids differ") or a snapshot of an esky-shell store. Then
 * ./checkpoint, and *why (otherwise NULL) says what the source is.
 */
static const char *resume_output(const char *in, size_t chain_n, const char **why)
{
	*why = NULL;
	if (esky_store_owns(in, NULL))
		*why = "a snapshot of an esky-shell store";
	else if (chain_n > 1)
		*why = "an incremental snapshot";
	return *why ? DEFAULT_CHECKPOINT : in;
}

static int cmd_resume(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'F' },
		{ "no-verify", no_argument, NULL, 'N' },
		{ "lazy", no_argument, NULL, 'L' },
		{ "detach", no_argument, NULL, 'D' },
		{ "gdb", no_argument, NULL, 'G' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *in = DEFAULT_CHECKPOINT, *out = NULL, *why = NULL;
	bool detach = false, gdb = false;
	struct esky_restore_opts ro = { .verify_pages = true };
	struct esky_image **chain;
	struct esky_target *t;
	char *agent = NULL;
	unsigned trust;
	size_t n;
	int c, ret, status = 0;

	while ((c = getopt_long(argc, argv, "+f:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			in = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'F':
			ro.force = true;
			break;
		case 'N':
			ro.verify_pages = false;
			break;
		case 'L':
			ro.lazy = true;
			break;
		case 'D':
			detach = true;
			break;
		case 'G':
			gdb = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option(argv);
		}
	}
	if (detach && (gdb || out)) {
		fprintf(stderr, "esky: resume: --detach leaves no monitor: not with %s\n",
			gdb ? "--gdb" : "-o");
		return 2;
	}
	if (ro.lazy && (detach || gdb)) {
		fprintf(stderr, "esky: resume: --lazy needs esky to serve the pages: not with %s\n",
			detach ? "--detach" : "--gdb");
		return 2;
	}
	if (optind < argc)
		ro.argv = argv + optind;
	trust = ro.force ? ESKY_TRUST_FORCE : 0;
	/* Another user's file is not read at all; the warning of --force comes below. */
	ret = esky_trust_path(in, trust | ESKY_TRUST_QUIET);
	if (ret)
		return fail(ret, NULL);
	ret = esky_image_open_chain(in, &chain, &n);
	if (ret)
		return fail(ret, NULL);
	ret = esky_trust_chain(chain, n, trust);
	if (!ret)
		ret = esky_trust_image_creds(chain[0], trust);
	if (ret) {
		esky_image_close_chain(chain, n);
		return fail(ret, NULL);
	}
	if (!detach) {
		const char *dflt = resume_output(in, n, &why);

		/* The default replaces the source when nothing needs it as it is. */
		ret = 0;
		if (out || why)
			ret = check_output("a checkpoint", out ? out : dflt, chain, n, why != NULL);
		if (out)
			why = NULL; /* (nothing to say about the default) */
		else
			out = dflt;
		if (ret) {
			esky_image_close_chain(chain, n);
			return fail(ret, NULL);
		}
	}
	ret = esky_find_agent(&agent);
	if (ret) {
		esky_image_close_chain(chain, n);
		return fail(ret, NULL);
	}
	ro.agent_path = agent;
	ret = esky_target_restore(chain, n, &ro, &t);
	if (!ret && gdb)
		ret = hand_to_gdb(&t, chain[0], &status);
	esky_image_close_chain(chain, n);
	free(agent);
	if (ret)
		return fail(ret, NULL);
	if (!t)
		return status; /* it ended while gdb had it */
	if (detach) {
		pid_t pid = esky_target_pid(t);

		ret = esky_target_release(t, false);
		if (ret) {
			esky_target_free(t);
			return fail(ret, "cannot let go of the program");
		}
		if (!quiet)
			fprintf(stderr, "esky: pid %d resumed from %s, detached (esky checkpoint %d "
				"freezes it again)\n", (int)pid, in, (int)pid);
		return 0;
	}
	if (why && !quiet)
		fprintf(stderr, "esky: %s is %s: SIGUSR1 (kill -USR1 %d) writes checkpoints to ./%s, "
			"not over it (-o FILE chooses)\n", in, why, (int)getpid(), out);
	ret = monitor(t, out);
	esky_target_free(t);
	return ret;
}

static int cmd_checkpoint(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "kill", no_argument, NULL, 'k' },
		{ "force", no_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct esky_checkpoint_opts o = { .background = false };
	const char *out = DEFAULT_CHECKPOINT;
	struct esky_target *t;
	struct esky_dump_stats st;
	bool kill_it = false;
	unsigned trust = 0;
	uint64_t pid;
	int c, ret;

	while ((c = getopt_long(argc, argv, "o:kqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'k':
			kill_it = true;
			break;
		case 'F':
			trust = ESKY_TRUST_FORCE;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option(argv);
		}
	}
	if (optind != argc - 1 || esky_parse_u64(argv[optind], &pid) || !pid || pid > 4194304) {
		fprintf(stderr, "esky: checkpoint: which process? (esky checkpoint PID [-o FILE] "
			"[--kill])\n");
		return 2;
	}
	ret = check_output("a checkpoint", out, NULL, 0, false);
	/* Read from /proc: a refused process is never stopped. */
	if (!ret)
		ret = esky_trust_process((pid_t)pid, trust);
	if (ret)
		return fail(ret, NULL);
	ret = esky_target_attach((pid_t)pid, &t);
	if (ret)
		return fail(ret, NULL);
	ret = esky_target_checkpoint(t, out, &o, &st);
	if (ret) {
		/* (fail() prints the checkpoint's message: release records none on success.) */
		if (esky_target_release(t, false))
			esky_target_free(t);
		return fail(ret, NULL);
	}
	if (!quiet) {
		char sz[32];

		fprintf(stderr, "esky: checkpoint of pid %d written to %s (%s)\n", (int)pid, out,
			esky_fmt_size(st.file_size, sz, sizeof(sz)));
	}
	if (kill_it) {
		/* A tree goes whole: its descendants first (the root is still ours, stopped). */
		esky_tree_kill_descendants((pid_t)pid);
		esky_target_free(t);
		return 0;
	}
	ret = esky_target_release(t, false);
	if (ret == -ESRCH) {
		/* Killed (SIGKILL) while it stood for us: the file is complete all the same. */
		esky_target_free(t);
		fprintf(stderr, "esky: checkpoint: pid %d ended before esky let it go; %s is complete\n",
			(int)pid, out);
		return 0;
	}
	if (ret) {
		esky_target_free(t);
		return fail(ret, "cannot detach");
	}
	return 0;
}

static int cmd_info(int argc, char **argv)
{
	struct esky_image *img;
	static const struct option longopts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "force", no_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool verbose = false;
	unsigned trust = 0;
	int c, ret;

	while ((c = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'v':
			verbose = true;
			break;
		case 'F':
			trust = ESKY_TRUST_FORCE;
			break;
		case 'q':
			break; /* info prints what was asked; errors are one line anyway */
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option(argv);
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "esky: info: which file? (esky info [-v] FILE)\n");
		return 2;
	}
	ret = esky_trust_path(argv[optind], trust | ESKY_TRUST_QUIET);
	if (!ret)
		ret = esky_image_open(argv[optind], &img);
	if (!ret && ((ret = esky_trust_fd(esky_image_fd(img), argv[optind], trust)) ||
		     (ret = esky_image_verify_pages(img))))
		esky_image_close(img);
	if (ret)
		return fail(ret, NULL);
	esky_describe_image(img, verbose, stdout);
	esky_image_close(img);
	return 0;
}

/*
 * esky core: an ELF core file of a checkpoint or snapshot, for gdb. The
 * checkpoint's page checksums are checked first: a core must not pass
 * damaged memory off as the program's.
 */
static int cmd_core(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct esky_image **chain = NULL;
	const struct esky_image_view *v;
	const char *out = NULL, *exe = "PROGRAM";
	char def[32], sz[32];
	unsigned trust = 0;
	struct stat st;
	size_t n = 0;
	int c, ret;

	while ((c = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'F':
			trust = ESKY_TRUST_FORCE;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option(argv);
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "esky: core: which checkpoint? (esky core CHECKPOINT [-o FILE])\n");
		return 2;
	}
	esky_error_clear();
	ret = esky_trust_path(argv[optind], trust | ESKY_TRUST_QUIET);
	if (!ret)
		ret = esky_image_open_chain(argv[optind], &chain, &n);
	if (!ret)
		ret = esky_trust_chain(chain, n, trust);
	for (size_t k = 0; !ret && k < n; k++)
		ret = esky_image_verify_pages(chain[k]);
	if (ret)
		goto out_fail;
	v = esky_image_view(chain[0]);
	/* gcore's default name: core.PID in the current directory. */
	if (!out) {
		snprintf(def, sizeof(def), "core.%u", v->core->pid);
		out = def;
	}
	ret = check_output("a core", out, chain, n, true);
	if (ret)
		goto out_fail;
	if (v->core->exe_file < v->file_n)
		exe = esky_image_str(chain[0], v->files[v->core->exe_file].path);
	ret = esky_core_write(chain, n, out);
	if (ret)
		goto out_fail;
	if (!quiet && stat(out, &st) == 0)
		fprintf(stderr, "esky: core written to %s (%s): gdb %s %s\n", out,
			esky_fmt_size((uint64_t)st.st_size, sz, sizeof(sz)), exe, out);
	esky_image_close_chain(chain, n);
	return 0;

out_fail:
	if (chain)
		esky_image_close_chain(chain, n);
	return fail(ret, NULL);
}

/*
 * esky check: would each checkpoint resume here? Everything resume checks
 * before a process exists (image, page checksums, the files it depends on,
 * the kernel's special mappings), and nothing is started.
 */
static int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "force", no_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct esky_restore_opts ro = { .verify_pages = true, .check_only = true };
	unsigned trust = 0;
	int c, worst = 0;

	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'F':
			trust = ESKY_TRUST_FORCE;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return bad_option(argv);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "esky: check: which checkpoint? (esky check CHECKPOINT...)\n");
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		struct esky_image **chain = NULL;
		size_t n = 0;
		int ret, st;

		esky_error_clear();
		ret = esky_trust_path(argv[i], trust | ESKY_TRUST_QUIET);
		if (!ret)
			ret = esky_image_open_chain(argv[i], &chain, &n);
		if (!ret)
			ret = esky_trust_chain(chain, n, trust);
		if (!ret)
			ret = esky_trust_image_creds(chain[0], trust);
		for (size_t k = 0; !ret && k < n; k++)
			ret = esky_image_verify_pages(chain[k]);
		if (!ret)
			ret = esky_restore_check(chain, n, &ro);
		if (!ret && !quiet)
			printf("%s: ok\n", argv[i]);
		if (ret) {
			fail(ret, NULL);
			/* A checkpoint that is there but would not resume is 1; no file at all, 2. */
			st = ret == -ENOENT && access(argv[i], F_OK) < 0 ? 2 : 1;
			worst = st > worst ? st : worst;
		}
		if (chain)
			esky_image_close_chain(chain, n);
	}
	return worst;
}

/* ---- esky snap ---- */

struct snap_loc {
	const char *spec;  /* as given to --at */
	int bp;
	unsigned hits;
};

struct snap_row {
	char *path;
	const char *loc;   /* the --at spec, or "timer" */
	char *where;
	unsigned hit;
	uint64_t run_ns;
	uint64_t bytes;
};

struct snap_run {
	const char *dir;
	struct esky_session *s;
	struct snap_loc *locs;
	size_t nlocs;
	unsigned count;      /* per location, 0: no limit */
	unsigned seq;
	struct snap_row *rows;
	size_t nrows;
};

/* The pid signals sent to esky by other processes are passed on to. */
static volatile pid_t snap_program;

/*
 * kill(esky) from another process reaches the program as it would reach
 * esky's own program under `esky start`; a terminal's signals reach the
 * program directly (same process group) and are nothing for esky.
 */
static void snap_forward(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (si->si_code <= 0 && snap_program > 0)
		kill(snap_program, sig);
}

/*
 * "step at walk.c:105" -> "step-walk.c-105"; in a library, the program's
 * caller: "clock_nanosleep+0x23 in libc.so.6, called from nap at walk.c:119"
 * -> "nap-walk.c-119". Only [A-Za-z0-9._] are kept, runs of others become -.
 */
static void snap_slug(const char *where, char *out, size_t n)
{
	const char *from = strstr(where, "called from ");
	size_t k = 0;
	bool dash = false;

	if (from)
		where = from + strlen("called from ");
	for (const char *p = where; *p && k + 1 < n && k < 80; p++) {
		bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_';

		if (!strncmp(p, " at ", 4)) {
			p += 3;
			keep = false;
		} else if (*p == '+' || *p == ',') {
			/* an offset into a function, or what follows the place */
			while (p[1] && p[1] != ' ')
				p++;
			keep = false;
		}
		if (keep) {
			out[k++] = *p;
			dash = false;
		} else if (!dash && k) {
			out[k++] = '-';
			dash = true;
		}
	}
	while (k && out[k - 1] == '-')
		k--;
	out[k] = '\0';
	if (!k)
		snprintf(out, n, "here");
}

static struct snap_loc *snap_loc_of(struct snap_run *sr, int bp)
{
	for (size_t i = 0; i < sr->nlocs; i++)
		if (sr->locs[i].bp == bp)
			return &sr->locs[i];
	return NULL;
}

static char *snap_name(void *ctx, const struct esky_snapfile *sf)
{
	struct snap_run *sr = ctx;
	char slug[128], *path;

	snap_slug(sf->where, slug, sizeof(slug));
	if (asprintf(&path, "%s/%04u-%s%s.ckpt", sr->dir, sr->seq + 1, sf->bp ? "" : "timer-",
		     slug) < 0)
		return NULL;
	return path;
}

static void snap_written(void *ctx, const struct esky_snapfile *sf)
{
	struct snap_run *sr = ctx;
	struct snap_loc *l = sf->bp ? snap_loc_of(sr, sf->bp) : NULL;
	struct snap_row *nr = realloc(sr->rows, (sr->nrows + 1) * sizeof(*nr));

	sr->seq++;
	if (l)
		l->hits = sf->hit;
	if (!sf->bp && sr->count && sf->hit >= sr->count)
		esky_session_every(sr->s, 0);
	if (!nr)
		return;
	sr->rows = nr;
	nr[sr->nrows++] = (struct snap_row){
		.path = strdup(sf->path),
		.loc = l ? l->spec : "timer",
		.where = strdup(sf->where),
		.hit = sf->hit,
		.run_ns = sf->run_ns,
		.bytes = sf->bytes,
	};
	if (!quiet)
		fprintf(stderr, "esky: snap: %s (%s)\n", sf->path, sf->where);
}

/* Checkpoints of an earlier esky snap in dir (NNNN-*.ckpt): how many, and one name. */
static size_t snap_old_files(const char *dir, bool remove_them, char *one, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t count = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		const char *nm = de->d_name;
		size_t len = strlen(nm);

		if (len < 10 || strspn(nm, "0123456789") != 4 || nm[4] != '-' ||
		    strcmp(nm + len - 5, ".ckpt"))
			continue;
		if (!count)
			snprintf(one, n, "%s", nm);
		count++;
		if (remove_them)
			unlinkat(dirfd(d), nm, 0);
	}
	closedir(d);
	return count;
}

static void snap_report(const struct snap_run *sr, const char *tsv)
{
	uint64_t total = 0;
	FILE *out = stderr;

	for (size_t i = 0; i < sr->nrows; i++)
		total += sr->rows[i].bytes;
	if (tsv) {
		if (strcmp(tsv, "-") && *tsv) {
			out = fopen(tsv, "w");
			if (!out) {
				fprintf(stderr, "esky: snap: cannot write the table to %s: %s\n", tsv,
					strerror(errno));
				return;
			}
		} else if (!strcmp(tsv, "-")) {
			out = stdout;
		}
		fprintf(out, "file\tlocation\thit\trun time\tbytes\n");
		for (size_t i = 0; i < sr->nrows; i++) {
			const struct snap_row *r = &sr->rows[i];

			fprintf(out, "%s\t%s\t%u\t%.3f\t%" PRIu64 "\n", r->path, r->loc, r->hit,
				(double)r->run_ns / 1e9, r->bytes);
		}
		if (out != stderr && out != stdout)
			fclose(out);
		else
			fflush(out);
		/* The table replaces the summary on stderr; beside a file, both. */
		if (out == stderr)
			return;
	}
	if (quiet)
		return;
	{
		char sz[32];

		fprintf(stderr, "esky: snap: %zu checkpoint%s in %s (%s)\n", sr->nrows,
			sr->nrows == 1 ? "" : "s", sr->dir, esky_fmt_size(total, sz, sizeof(sz)));
	}
	for (size_t i = 0; i < sr->nlocs; i++)
		fprintf(stderr, "esky: snap:   %s: %u snapshot%s\n", sr->locs[i].spec,
			sr->locs[i].hits, sr->locs[i].hits == 1 ? "" : "s");
}

static int cmd_snap(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "at", required_argument, NULL, 'a' },
		{ "every", required_argument, NULL, 'e' },
		{ "count", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "tsv", optional_argument, NULL, 't' },
		{ "replace", no_argument, NULL, 'R' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct snap_run sr = { .dir = "." };
	struct esky_snapfile_sink sink = { .name = snap_name, .written = snap_written, .ctx = &sr };
	struct esky_stop_report r;
	struct sigaction sa = { 0 };
	const char *tsv = NULL, *every = NULL;
	bool replace = false, failed = false;
	uint64_t every_ns = 0, count = 0;
	char old[256];
	struct stat st;
	int c, ret, status = 1;
	sigset_t set;

	sr.locs = calloc((size_t)argc, sizeof(*sr.locs));
	if (!sr.locs)
		return 1;
	while ((c = getopt_long(argc, argv, "+a:e:c:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			sr.locs[sr.nlocs++].spec = optarg;
			break;
		case 'e':
			every = optarg;
			break;
		case 'c':
			if (esky_parse_u64(optarg, &count) || !count || count > 1000000000) {
				fprintf(stderr, "esky: snap: --count %s: give a number of snapshots, 1 or "
					"more\n", optarg);
				goto out_usage;
			}
			break;
		case 'o':
			sr.dir = optarg;
			break;
		case 't':
			tsv = optarg ? optarg : "";
			break;
		case 'R':
			replace = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			free(sr.locs);
			return 0;
		default:
			free(sr.locs);
			return bad_option(argv);
		}
	}
	sr.count = (unsigned)count;
	if (every && (ret = esky_parse_duration(every, &every_ns))) {
		fprintf(stderr, "esky: snap: --every %s: %s\n", every,
			ret == -ERANGE ? "between 1ms and 11 days" : "give a duration such as 100ms, 2s, 1m");
		goto out_usage;
	}
	if (!sr.nlocs && !every_ns) {
		fprintf(stderr, "esky: snap: when? give --at LOCATION or --every DURATION\n");
		goto out_usage;
	}
	if (optind >= argc) {
		fprintf(stderr, "esky: snap: which program? (esky snap --at LOCATION [-o DIR] -- PROGRAM "
			"[ARGS...])\n");
		goto out_usage;
	}
	if (stat(sr.dir, &st) < 0 && errno == ENOENT && mkdir(sr.dir, 0700) < 0) {
		fprintf(stderr, "esky: snap: cannot create %s: %s\n", sr.dir, strerror(errno));
		goto out_usage;
	}
	if (stat(sr.dir, &st) < 0 || !S_ISDIR(st.st_mode) || access(sr.dir, W_OK | X_OK) < 0) {
		fprintf(stderr, "esky: snap: -o %s: %s\n", sr.dir,
			errno && !S_ISDIR(st.st_mode) ? "not a directory" : strerror(errno));
		goto out_usage;
	}
	if (snap_old_files(sr.dir, false, old, sizeof(old)) && !replace) {
		fprintf(stderr, "esky: snap: %s already holds checkpoints of an earlier run (%s); "
			"--replace removes them, or give another -o DIR\n", sr.dir, old);
		goto out_usage;
	}
	ret = esky_session_new_files(&sink, &sr.s);
	if (ret) {
		fail(ret, NULL);
		goto out_free;
	}
	esky_session_pass_signals(sr.s, true);
	ret = esky_session_file(sr.s, argv[optind]);
	if (!ret)
		ret = esky_session_set_args(sr.s, argv + optind + 1);
	if (ret) {
		status = fail(ret, NULL);
		status = ret == -ENOENT || ret == -EACCES ? 127 : status;
		goto out_session;
	}
	/* Every location is checked before the program starts. */
	for (size_t i = 0; i < sr.nlocs; i++) {
		esky_error_clear();
		ret = esky_session_break(sr.s, sr.locs[i].spec, ESKY_BP_SNAP, sr.count, &sr.locs[i].bp);
		/*
		 * A name the program does not have would wait for a library to
		 * bring it (esky-shell's pending breakpoints); here a location
		 * must exist before the program starts, unless written LIB:FUNCTION.
		 */
		if (!ret && !strchr(sr.locs[i].spec, ':')) {
			const struct esky_bpinfo *bi;
			size_t nb;

			bi = esky_session_breakpoints(sr.s, &nb);
			for (size_t k = 0; k < nb; k++)
				if (bi[k].id == sr.locs[i].bp && bi[k].pending)
					ret = esky_error(-ENOENT, "no function %s in %s (a library's "
							 "function: write LIB:FUNCTION, e.g. "
							 "libc.so.6:%s)", sr.locs[i].spec, argv[optind],
							 sr.locs[i].spec);
		}
		if (ret) {
			fprintf(stderr, "esky: snap: --at %s: %s\n", sr.locs[i].spec,
				esky_last_error() ? esky_last_error() : strerror(-ret));
			status = 2;
			goto out_session;
		}
	}
	if (replace)
		snap_old_files(sr.dir, true, old, sizeof(old));
	esky_session_every(sr.s, every_ns);

	/* Signals sent to esky by a process go on to the program; esky stays. */
	sa.sa_sigaction = snap_forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&set);
	for (const int *sig = (const int[]){ SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, 0 };
	     *sig; sig++) {
		sigaction(*sig, &sa, NULL);
		sigaddset(&set, *sig);
	}
	signal(SIGPIPE, SIG_IGN);

	ret = esky_session_starti(sr.s, &r);
	if (ret) {
		status = fail(ret, NULL);
		status = ret == -ENOENT || ret == -EACCES ? 127 : status;
		goto out_session;
	}
	snap_program = esky_session_pid(sr.s);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	status = -1;
	while (!ret || esky_session_alive(sr.s)) {
		if (ret) {
			/* A snapshot failed: say so once, take no more, let the program end. */
			fprintf(stderr, "esky: snap: %s; no more snapshots, the program runs on\n",
				esky_last_error() ? esky_last_error() : strerror(-ret));
			esky_error_clear();
			failed = true;
			esky_session_delete(sr.s, 0);
			esky_session_every(sr.s, 0);
		} else if (r.why == ESKY_WHY_EXITED) {
			status = r.status;
			break;
		} else if (r.why == ESKY_WHY_KILLED) {
			status = 128 + r.sig;
			break;
		}
		ret = esky_session_continue(sr.s, 1, &r);
	}
	sigprocmask(SIG_BLOCK, &set, NULL);
	snap_program = 0;
	if (ret && status < 0) {
		fprintf(stderr, "esky: snap: lost the program: %s\n",
			esky_last_error() ? esky_last_error() : strerror(-ret));
		status = 1;
	}
	snap_report(&sr, tsv);
	for (size_t i = 0; i < sr.nlocs; i++) {
		if (sr.locs[i].hits)
			continue;
		fprintf(stderr, "esky: snap: --at %s was never reached\n", sr.locs[i].spec);
		failed = true;
	}
	/* The program's own status; 3 when it succeeded but not every snapshot was taken. */
	if (failed && status == 0)
		status = 3;
out_session:
	esky_session_free(sr.s);
out_free:
	for (size_t i = 0; i < sr.nrows; i++) {
		free(sr.rows[i].path);
		free(sr.rows[i].where);
	}
	free(sr.rows);
	free(sr.locs);
	return status;
out_usage:
	free(sr.locs);
	return 2;
}

int main(int argc, char **argv)
{
	sigset_t set;

	esky_tracee_note_inherited_signals();
	monitor_sigset(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	esky_catch_file_size_signal();
	esky_log_set_sink(sink, NULL, getenv("ESKY_DEBUG") ? ESKY_LOG_DEBUG : ESKY_LOG_NOTE);
	if (esky_trust_self()) {
		fprintf(stderr, "esky: %s\n", esky_last_error());
		return 1;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd_name = argv[1];
	optind = 1;
	opterr = 0;
	if (!strcmp(argv[1], "start"))
		return cmd_start(argc - 1, argv + 1);
	if (!strcmp(argv[1], "resume"))
		return cmd_resume(argc - 1, argv + 1);
	if (!strcmp(argv[1], "checkpoint"))
		return cmd_checkpoint(argc - 1, argv + 1);
	if (!strcmp(argv[1], "info"))
		return cmd_info(argc - 1, argv + 1);
	if (!strcmp(argv[1], "core"))
		return cmd_core(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "snap"))
		return cmd_snap(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("esky %s\n", ESKY_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "esky: unknown command '%s' (start, resume, checkpoint, info, core, check, snap)\n", argv[1]);
	return 2;
}
