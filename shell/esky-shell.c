/*
 * esky-shell: run a program under the checkpointer, snapshot it at
 * breakpoints or on a timer into a numbered snapshot tree, and rewind to
 * any snapshot. Interactive (GNU readline) and scriptable.
 *
 *   esky-shell [--store DIR] [--force] [-x FILE]... [-ex CMD]... [--batch] [PROGRAM [ARGS...]]
 *
 * Commands come from -x files and -ex options in the order given, then
 * from the terminal (readline) or, when standard input is not a
 * terminal, from standard input. A failed command does not stop a script:
 * esky-shell goes on and exits with status 1 at the end.
 */
#include "log.h"
#include "shell.h"
#include "trust.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

static struct shell sh;
static char *history_path;

static void sink(enum esky_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "%s%s\n", level == ESKY_LOG_WARN ? "warning: " : "", msg);
}

static void notify(void *ctx, const char *line)
{
	(void)ctx;
	printf("%s\n", line);
	fflush(stdout);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: esky-shell [--store DIR] [--force] [-x FILE]... [-ex CMD]... [--batch] "
		     "[PROGRAM [ARGS...]]\n"
		     "Type help in the shell for its commands; see doc/esky-shell.md.\n");
}

static volatile sig_atomic_t at_prompt, prompt_sigint, prompt_sigtstp;
static sigset_t session_mask; /* the signals the session keeps blocked (SIGCHLD) */

/*
 * SIGINT while the program runs (Ctrl-C, or kill -INT to the shell) stops
 * it. At the prompt it throws the typed line away, as in a shell.
 */
static void on_sigint(int sig)
{
	uint64_t one = 1;

	(void)sig;
	if (at_prompt) {
		prompt_sigint = 1;
		return;
	}
	if (sh.s && write(esky_session_interrupt_fd(sh.s), &one, sizeof(one)) < 0)
		return;
}

static void on_sigtstp(int sig);

/* Stop as SIGTSTP's default action would, and take the signal again once continued. */
static void stop_self(void)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL }, ours = { .sa_handler = on_sigtstp };
	sigset_t tstp;

	sigemptyset(&dfl.sa_mask);
	sigemptyset(&ours.sa_mask);
	ours.sa_flags = SA_NODEFER;
	sigemptyset(&tstp);
	sigaddset(&tstp, SIGTSTP);
	sigaction(SIGTSTP, &dfl, NULL);
	sigprocmask(SIG_UNBLOCK, &tstp, NULL);
	raise(SIGTSTP); /* stopped here until fg */
	sigaction(SIGTSTP, &ours, NULL);
}

/*
 * Ctrl-Z. While the program runs, esky-shell stops at once, as it would
 * without a handler. At the prompt, readline first gives the terminal its
 * modes back, and after fg takes it again and draws the prompt and line
 * anew (prompt_signal): without that, the shell's cooked mode stayed in
 * force under readline, and each line was echoed twice.
 */
static void on_sigtstp(int sig)
{
	(void)sig;
	if (at_prompt)
		prompt_sigtstp = 1;
	else
		stop_self();
}

/*
 * Readline's read was interrupted by a signal: a SIGINT at the prompt
 * clears the line, a SIGTSTP stops esky-shell with the terminal as it was.
 */
static int prompt_signal(void)
{
	if (prompt_sigtstp) {
		prompt_sigtstp = 0;
		rl_cleanup_after_signal();
		stop_self();
		rl_reset_after_signal();
		rl_forced_update_display();
	}
	if (!prompt_sigint)
		return 0;
	prompt_sigint = 0;
	rl_replace_line("", 0);
	rl_crlf();
	rl_on_new_line();
	rl_redisplay();
	return 0;
}

static int run_line(const char *line)
{
	if (shell_execute(&sh, line) < 0) {
		sh.failures++;
		return -1;
	}
	return 0;
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (!f) {
		fprintf(stderr, "esky-shell: %s: %s\n", path, strerror(errno));
		sh.failures++;
		return -1;
	}
	while (!sh.quit && (len = getline(&line, &cap, f)) >= 0) {
		if (len && line[len - 1] == '\n')
			line[len - 1] = '\0';
		run_line(line);
	}
	free(line);
	fclose(f);
	return 0;
}

/*
 * Commands from a non-terminal stdin, read one byte at a time: the
 * program shares our stdin and must find the rest of it unread.
 */
static void run_stdin(void)
{
	char line[4096];
	size_t len = 0;

	while (!sh.quit) {
		char c;
		ssize_t n = read(0, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n') {
			line[len] = '\0';
			if (len || n > 0)
				run_line(line);
			len = 0;
			if (n <= 0)
				break;
			continue;
		}
		if (len < sizeof(line) - 1)
			line[len++] = c;
	}
}

/* ---- readline ---- */

static const char *complete_prefix;
static char **matches;
static size_t nmatches, capmatches;

static void add_match(const char *name, void *ctx)
{
	(void)ctx;
	if (nmatches == capmatches) {
		size_t cap = capmatches ? capmatches * 2 : 64;
		char **nm = realloc(matches, cap * sizeof(*nm));

		if (!nm)
			return;
		matches = nm;
		capmatches = cap;
	}
	matches[nmatches] = strdup(name);
	if (matches[nmatches])
		nmatches++;
}

static char *next_match(const char *text, int state)
{
	static size_t i;

	(void)text;
	if (!state)
		i = 0;
	return i < nmatches ? strdup(matches[i++]) : NULL;
}

static char **complete(const char *text, int start, int end)
{
	(void)end;
	for (size_t i = 0; i < nmatches; i++)
		free(matches[i]);
	nmatches = 0;
	complete_prefix = text;
	rl_attempted_completion_over = 1;
	if (start == 0 || !strchr(rl_line_buffer, ' ') ||
	    strspn(rl_line_buffer, " \t") == (size_t)start) {
		for (const char *const *n = shell_command_names(); *n; n++)
			if (!strncmp(*n, text, strlen(text)))
				add_match(*n, NULL);
	} else if (shell_wants_location(rl_line_buffer)) {
		esky_session_complete(sh.s, text, add_match, NULL);
		/* A source file (a name with a dot) is followed by :LINE, not a space. */
		if (nmatches == 1 && strchr(matches[0], '.'))
			rl_completion_append_character = ':';
	} else if (!strncmp(rl_line_buffer + strspn(rl_line_buffer, " \t"), "file", 4) ||
		   !strncmp(rl_line_buffer + strspn(rl_line_buffer, " \t"), "export", 6) ||
		   !strncmp(rl_line_buffer + strspn(rl_line_buffer, " \t"), "cd", 2)) {
		rl_attempted_completion_over = 0; /* readline's file names */
		return NULL;
	}
	return rl_completion_matches(text, next_match);
}

static void interactive(void)
{
	const char *home = getenv("HOME");

	if (getenv("ESKY_HISTORY"))
		history_path = strdup(getenv("ESKY_HISTORY"));
	else if (home && asprintf(&history_path, "%s/.esky_history", home) < 0)
		history_path = NULL;
	rl_readline_name = "esky-shell";
	/* Our SIGINT handler stays in place: readline's would change the signal mask. */
	rl_catch_signals = 0;
	rl_signal_event_hook = prompt_signal;
	rl_attempted_completion_function = complete;
	rl_completer_word_break_characters = " \t";
	using_history();
	/* append_history() below does not create the file: the first session does. */
	if (history_path && read_history(history_path) == ENOENT)
		write_history(history_path);
	while (!sh.quit) {
		char *line;

		at_prompt = 1;
		line = readline("(esky) ");
		at_prompt = 0;
		sigprocmask(SIG_SETMASK, &session_mask, NULL);
		if (!line) {
			printf("quit\n");
			break;
		}
		if (*line) {
			HIST_ENTRY *last = history_length ? history_get(history_base + history_length - 1)
							  : NULL;

			/* A line recalled unchanged is not kept twice, in memory or in the file. */
			if (!last || strcmp(last->line, line)) {
				add_history(line);
				if (history_path)
					append_history(1, history_path);
			}
		}
		run_line(line);
		free(line);
	}
	if (history_path)
		history_truncate_file(history_path, 1000);
}

int main(int argc, char **argv)
{
	const char *store = NULL;
	char **scripts = NULL;   /* "x:FILE" or "e:CMD", in order */
	size_t nscripts = 0;
	bool batch = false;
	unsigned trust = 0;
	int i, ret;

	esky_log_set_sink(sink, NULL, getenv("ESKY_DEBUG") ? ESKY_LOG_DEBUG : ESKY_LOG_NOTE);
	if (esky_trust_self()) {
		fprintf(stderr, "esky-shell: %s\n", esky_last_error());
		return 1;
	}
	scripts = calloc((size_t)argc, sizeof(*scripts));
	if (!scripts)
		return 1;
	ret = -1;
	for (i = 1; i < argc && ret < 0; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))  {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if ((!strcmp(a, "--store") || !strcmp(a, "-s")) && i + 1 < argc) {
			store = argv[++i];
		} else if (!strncmp(a, "--store=", 8)) {
			store = a + 8;
		} else if ((!strcmp(a, "-x") || !strcmp(a, "--command")) && i + 1 < argc) {
			if (asprintf(&scripts[nscripts++], "x%s", argv[++i]) < 0)
				ret = 1;
		} else if ((!strcmp(a, "-ex") || !strcmp(a, "--eval-command")) && i + 1 < argc) {
			if (asprintf(&scripts[nscripts++], "e%s", argv[++i]) < 0)
				ret = 1;
		} else if (!strcmp(a, "--batch") || !strcmp(a, "-batch")) {
			batch = true;
		} else if (!strcmp(a, "--force")) {
			trust = ESKY_TRUST_FORCE;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			ret = 0;
		} else if (!strcmp(a, "--version")) {
			printf("esky-shell %s\n", ESKY_VERSION);
			ret = 0;
		} else {
			fprintf(stderr, "esky-shell: unknown option %s\n", a);
			usage(stderr);
			ret = 2;
		}
	}
	/* --help, --version, a bad option: done (the scripts' names freed). */
	if (ret >= 0) {
		while (nscripts)
			free(scripts[--nscripts]);
		free(scripts);
		return ret;
	}
	ret = esky_session_new_trust(store, trust, &sh.s);
	if (ret) {
		fprintf(stderr, "esky-shell: %s\n", esky_last_error() ? esky_last_error()
								     : strerror(-ret));
		while (nscripts)
			free(scripts[--nscripts]);
		free(scripts);
		return 1;
	}
	esky_session_set_notify(sh.s, notify, NULL);
	/* ESKY_DIRTY=hash: snapshots compare content hashes (tests run both ways). */
	if (getenv("ESKY_DIRTY") && !strcmp(getenv("ESKY_DIRTY"), "hash"))
		esky_session_track_pages(sh.s, false);
	/* ESKY_REWIND=thaw: every rewind makes a new process (tests run both ways). */
	if (getenv("ESKY_REWIND") && !strcmp(getenv("ESKY_REWIND"), "thaw"))
		esky_session_rewind_in_place(sh.s, false);
	sigprocmask(SIG_SETMASK, NULL, &session_mask);
	{
		/* No SA_RESTART: readline must see its read interrupted. */
		struct sigaction sa = { .sa_handler = on_sigint };
		struct sigaction tstp = { .sa_handler = on_sigtstp, .sa_flags = SA_NODEFER };

		/* Job control only where there is a terminal to give back. */
		sigemptyset(&tstp.sa_mask);
		if (isatty(STDIN_FILENO))
			sigaction(SIGTSTP, &tstp, NULL);

		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
	esky_catch_file_size_signal();
	fprintf(stderr, "esky-shell: snapshots go to %s\n", esky_session_store_dir(sh.s));
	if (i < argc) {
		if (esky_session_file(sh.s, argv[i]) || esky_session_set_args(sh.s, argv + i + 1)) {
			fprintf(stderr, "%s\n", esky_last_error() ? esky_last_error() : "cannot load");
			sh.failures++;
		}
	} else {
		const char *prog;
		int ret = esky_session_stored_program(sh.s, &prog);

		/* A store reopened alone: run runs what was run on it last. */
		if (!ret)
			fprintf(stderr, "esky-shell: program %s, as last run on this store\n", prog);
		else if (ret != -ENOENT)
			fprintf(stderr, "warning: %s\n", esky_last_error() ? esky_last_error()
									: strerror(-ret));
		esky_error_clear();
	}
	for (size_t k = 0; k < nscripts && !sh.quit; k++) {
		if (scripts[k][0] == 'x')
			run_file(scripts[k] + 1);
		else
			run_line(scripts[k] + 1);
	}
	sh.interactive = isatty(0);
	if (!batch && !sh.quit) {
		if (sh.interactive)
			interactive();
		else
			run_stdin();
	}
	for (size_t k = 0; k < nscripts; k++)
		free(scripts[k]);
	free(scripts);
	esky_session_free(sh.s);
	free(history_path);
	return sh.failures ? 1 : 0;
}
