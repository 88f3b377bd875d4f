/*
 * Fuzz target of esky-shell's command line: each line of the input runs
 * through shell_execute (shell/commands.c) as esky-shell runs a line it
 * read, on a stub session (session_stub.c) that has no process but the
 * real location and expression parsers behind it. So one input reaches
 * the tokenizer (quotes, escapes, comments, run's redirections <IN >OUT
 * 2>&1), every command's argument checks (counts, snapshot numbers,
 * x/FMT, set env NAME=VALUE, break LOC if EXPR), locations (FILE:LINE,
 * FUNCTION, *ADDRESS: esky_debuginfo_resolve on this executable's own
 * DWARF) and expressions (esky_expr_eval). The session checks what the
 * shell hands it against session.h; ASan and UBSan check the rest.
 *
 * Built with the standalone driver (text_fuzz_driver.c) for CTest, and
 * with clang -fsanitize=fuzzer by run-libfuzzer.sh (-close_fd_mask=3: the
 * shell prints on every line).
 */
#include "shell_fuzz.h"

#include "log.h"
#include "shell.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 32

const char text_fuzz_name[] = "shell";
int text_fuzz_err_fd = 2;

const char *const text_fuzz_seeds[] = {
	"break main\nrun\nnext 3\nstep\nstepi 2\nwhere\ninfo registers\nx/4xg $sp\nx/8db &the_session\n"
	"x $pc 4\nfinish\ncontinue 7\nkill\n",
	"b commands.c:1320 if argc > 1 && *argv != 0\ntbreak tokenize\nsnap shell_execute 5\n"
	"condition 1 $rdi == 0x10 || !(argc - 2)\ncondition 1\ninfo breakpoints\ndelete 2\n"
	"delete\n",
	"break *0x401136\nbreak expr.c:0\nbreak nosuchfile.c:12\nbreak esky_expr_eval\nb ::x\n"
	"until expr.c:200\nadvance main\ninfo line tokenize\ninfo line store.c:1\n",
	"run <in >out 2>&1\nrun < 'in put' >> \"out\\\"file\" 2> err\nstart a 'b c' \"d\\\\e\" \\f # "
	"comment\nshow args\nset args 1>&2 <&0 ~/x ~ x\nshow args\nrun 3>x\nr >\n",
	"set env A=1\nset env B = two words\nset environment C 3\nset env =x\nshow env\nshow env A\n"
	"unset env A\nunset env\ncd ~/tmp\npwd\nfile /bin/true\n",
	"print 1 + 2 == 3\np -(-1) - -1\nprint &main\np *(&the_session + 8)\np ((((1))))\n"
	"p $nosuch\np 0x\np 18446744073709551616\nprint a >= b && c <= d || e != f\n",
	"info snapshots\ntree\nrewind #2\nrewind 9\nexport 1 /tmp/x.img\ngcore 1 core\ngcore core\n"
	"forget 3\nsnapshot a note\nevery 50ms\nevery off\nevery 2x\ninfo store\ninfo threads\n"
	"thread 1235\ninfo symbol main\ninfo sharedlibrary\n",
	"watch the_session 4\nsnap-on-write &the_session 3\nwatch $sp\nhelp\nhelp break\nbrek\n"
	"x/2048xb 0\nx/99999ub 1\nx/3og\nquit\n",
	NULL,
};

const char *const text_fuzz_dict[] = {
	"break ", "tbreak ", "snap ", "run ", "start ", "set args ", "set env ", "show args",
	"show env", "unset env", "cd ", "print ", "x/", "x ", "info line ", "info symbol ",
	"info breakpoints", "condition ", "until ", "watch ", "snap-on-write ", "rewind ",
	"export ", "gcore ", "forget ", "every ", "delete ", "continue ", "stepi ", "next ",
	"step ", "thread ", "help ", " if ", "main", "tokenize", "shell_execute", "commands.c:",
	"expr.c:", "store.c:", ":", "::", "*", "*0x", "$pc", "$", "&", "==", "!=", "<=", ">=",
	"&&", "||", "(", ")", "-", "!", "+", "<", ">", ">>", "2>&1", "<&0", "1>&2", "2>", "'",
	"\"", "\\", "#", "~", "~/", "=", "\t", "\n", "0", "1", "7", "0x", "256", "257", "2048",
	"4294967295", "4294967296", "1000000000", "1000000001", "18446744073709551615",
	"18446744073709551616", "xg", "db", "uh", "ow", "50ms", "11d", NULL,
};

void shell_fuzz_broken(const char *fmt, ...)
{
	va_list ap;

	dprintf(text_fuzz_err_fd, "shell_fuzz: contract broken: ");
	va_start(ap, fmt);
	vdprintf(text_fuzz_err_fd, fmt, ap);
	va_end(ap);
	dprintf(text_fuzz_err_fd, "\n");
	abort();
}

/*
 * util.h: "a decimal or 0x-hex unsigned number filling the whole string".
 * Every count, snapshot number and *ADDRESS of the shell is read by it:
 * each word of the line must be taken exactly when it is one.
 */
static void check_numbers(const char *line)
{
	char word[128];
	const char *p = line;

	while (*p) {
		size_t len = strcspn(p, " "), digits;
		bool hex;
		uint64_t v;

		if (len && len < sizeof(word)) {
			memcpy(word, p, len);
			word[len] = '\0';
			hex = word[0] == '0' && (word[1] == 'x' || word[1] == 'X');
			digits = hex ? strspn(word + 2, "0123456789abcdefABCDEF")
				     : strspn(word, "0123456789");
			/* (too big for 64 bits is refused too: only the form is checked here) */
			if (!esky_parse_u64(word, &v) && !(digits && digits == len - (hex ? 2 : 0)))
				shell_fuzz_broken("esky_parse_u64 takes \"%s\" as %llu", word,
						  (unsigned long long)v);
		}
		p += len + (p[len] != '\0');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shell sh = { .s = shell_fuzz_session() };
	const char *p = (const char *)data, *end = p + size;

	/* Lines as readline gives them: without their newline, a NUL ends one early. */
	for (unsigned n = 0; p < end && n < MAX_LINES && !sh.quit; n++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *line = malloc(len + 1);

		if (!line)
			return 0;
		memcpy(line, p, len);
		line[len] = '\0';
		check_numbers(line);
		(void)shell_wants_location(line);
		shell_execute(&sh, line);
		free(line);
		p += len + 1;
	}
	fflush(stdout);
	shell_fuzz_session_reset(sh.s);
	esky_error_clear();
	return 0;
}
