/*
 * esky: freeze a running process into a checkpoint file and thaw it later.
 *
 *   esky start [-o FILE] [--] PROGRAM [ARGS...]
 *   esky resume [-f FILE] [-o FILE] [--force] [PROGRAM [ARGS...]]
 *   esky checkpoint PID [-o FILE] [--kill]
 *   esky info [-v] FILE
 */
#include "describe.h"
#include "image.h"
#include "log.h"
#include "restore.h"
#include "target.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
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
		"usage: esky start [-o FILE] [--] PROGRAM [ARGS...]\n"
		"       esky resume [-f FILE] [-o FILE] [--force] [--no-verify] [PROGRAM [ARGS...]]\n"
		"       esky checkpoint PID [-o FILE] [--kill]\n"
		"       esky info [-v] FILE\n"
		"\n"
		"start runs PROGRAM under esky; `kill -USR1 <esky's pid>` writes a checkpoint to\n"
		"FILE (default ./" DEFAULT_CHECKPOINT ") and the program carries on. resume thaws a\n"
		"checkpoint: the program carries on where it was frozen, with esky's stdio.\n"
		"checkpoint freezes a process that esky did not start. info describes a file.\n"
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

static int take_checkpoint(struct esky_target *t, const char *path)
{
	struct esky_checkpoint_opts o = { .background = true };
	struct esky_dump_stats st;
	uint64_t t0 = esky_now_ns();
	int ret;

	esky_error_clear();
	ret = esky_target_checkpoint(t, path, &o, &st);
	if (ret) {
		fprintf(stderr, "esky: checkpoint: %s\n", esky_last_error() ? esky_last_error()
									   : strerror(-ret));
		return ret;
	}
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
	bool want_checkpoint = false;
	int sfd, status = -1, ret;
	sigset_t set;

	esky_tracee_note_inherited_signals();
	monitor_sigset(&set);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("esky: signalfd");
		return 1;
	}
	ret = esky_target_cont(t);
	while (!ret && status < 0) {
		struct pollfd pfd[2] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = esky_target_checkpoint_fd(t), .events = POLLIN },
		};
		struct signalfd_siginfo si;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents & POLLIN)
			checkpoint_written(t, out_path);
		if (!(pfd[0].revents & POLLIN))
			continue;
		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		switch (si.ssi_signo) {
		case SIGUSR1:
			if (esky_target_checkpoint_busy(t)) {
				fprintf(stderr, "esky: checkpoint: one is still being written to %s\n",
					out_path);
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
					take_checkpoint(t, out_path);
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
		checkpoint_written(t, out_path);
	close(sfd);
	if (ret && status < 0) {
		fprintf(stderr, "esky: lost the program (pid %d): %s\n", esky_target_pid(t),
			strerror(-ret));
		return 1;
	}
	return status;
}

static int cmd_start(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = DEFAULT_CHECKPOINT;
	struct esky_target *t;
	int c, ret;

	while ((c = getopt_long(argc, argv, "+o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
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
		fprintf(stderr, "esky: start: which program? (esky start [-o FILE] PROGRAM [ARGS...])\n");
		return 2;
	}
	ret = esky_target_start(argv + optind, &t);
	if (ret) {
		fail(ret, NULL);
		return ret == -ENOENT || ret == -EACCES ? 127 : 1;
	}
	ret = monitor(t, out);
	esky_target_free(t);
	return ret;
}

static int cmd_resume(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'F' },
		{ "no-verify", no_argument, NULL, 'N' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *in = DEFAULT_CHECKPOINT, *out = NULL;
	struct esky_restore_opts ro = { .verify_pages = true };
	struct esky_image **chain;
	struct esky_target *t;
	char *agent = NULL;
	size_t n;
	int c, ret;

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
	if (optind < argc)
		ro.argv = argv + optind;
	ret = esky_image_open_chain(in, &chain, &n);
	if (ret)
		return fail(ret, NULL);
	ret = esky_find_agent(&agent);
	if (ret) {
		esky_image_close_chain(chain, n);
		return fail(ret, NULL);
	}
	ro.agent_path = agent;
	ret = esky_target_restore(chain, n, &ro, &t);
	esky_image_close_chain(chain, n);
	free(agent);
	if (ret)
		return fail(ret, NULL);
	ret = monitor(t, out ? out : in);
	esky_target_free(t);
	return ret;
}

static int cmd_checkpoint(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "kill", no_argument, NULL, 'k' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct esky_checkpoint_opts o = { .background = false };
	const char *out = DEFAULT_CHECKPOINT;
	struct esky_target *t;
	struct esky_dump_stats st;
	bool kill_it = false;
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
	ret = esky_target_attach((pid_t)pid, &t);
	if (ret)
		return fail(ret, NULL);
	ret = esky_target_checkpoint(t, out, &o, &st);
	if (ret) {
		esky_target_detach(t);
		esky_tracee_free(esky_target_tracee(t));
		return fail(ret, NULL);
	}
	if (!quiet) {
		char sz[32];

		fprintf(stderr, "esky: checkpoint of pid %d written to %s (%s)\n", (int)pid, out,
			esky_fmt_size(st.file_size, sz, sizeof(sz)));
	}
	if (kill_it) {
		esky_target_free(t);
		return 0;
	}
	ret = esky_target_detach(t);
	esky_tracee_free(esky_target_tracee(t));
	return ret ? fail(ret, "cannot detach") : 0;
}

static int cmd_info(int argc, char **argv)
{
	struct esky_image *img;
	static const struct option longopts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool verbose = false;
	int c, ret;

	while ((c = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'v':
			verbose = true;
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
	ret = esky_image_open(argv[optind], &img);
	if (!ret)
		ret = esky_image_verify_pages(img);
	if (ret)
		return fail(ret, NULL);
	esky_describe_image(img, verbose, stdout);
	esky_image_close(img);
	return 0;
}

int main(int argc, char **argv)
{
	sigset_t set;

	esky_tracee_note_inherited_signals();
	monitor_sigset(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	esky_log_set_sink(sink, NULL, getenv("ESKY_DEBUG") ? ESKY_LOG_DEBUG : ESKY_LOG_NOTE);
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
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("esky %s\n", ESKY_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "esky: unknown command '%s' (start, resume, checkpoint, info)\n", argv[1]);
	return 2;
}
