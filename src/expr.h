/*
 * The expressions of esky-shell's conditions and print: no bigger than
 * registers, numbers, symbols and memory reads need (gdb's language is
 * gdb's job).
 *
 *   expr    := and ('||' and)*
 *   and     := cmp ('&&' cmp)*
 *   cmp     := sum (('==' | '!=' | '<' | '<=' | '>' | '>=') sum)?
 *   sum     := unary (('+' | '-') unary)*
 *   unary   := '*' unary          8 bytes of memory at the address
 *            | '&' NAME           the address of a variable or function
 *            | '-' unary | '!' unary | '(' expr ')'
 *            | NUMBER             decimal or 0x hex
 *            | '$' REGISTER       ($pc, $rdi, ...)
 *            | NAME               a variable's value (its size, up to 8
 *                                 bytes), or a function's address
 *
 * Comparisons are of unsigned 64-bit values; true is 1. No ptrace and no
 * process here: what the names mean comes from the caller (and this can
 * be fuzzed alone).
 */
#ifndef ESKY_EXPR_H
#define ESKY_EXPR_H

#include <stddef.h>
#include <stdint.h>

struct esky_expr_env {
	/* 0 and *value, or -errno with esky_error() ("no register $foo"). */
	int (*reg)(void *ctx, const char *name, uint64_t *value);
	/*
	 * A name: *addr, and *size for a variable (0 for a function: its
	 * value is its address). -errno with esky_error().
	 */
	int (*sym)(void *ctx, const char *name, uint64_t *addr, uint64_t *size);
	int (*mem)(void *ctx, uint64_t addr, void *buf, size_t len);
	void *ctx;
};

/*
 * Evaluate text. With env NULL, only check the syntax. 0 with *value, or
 * -EINVAL/-errno with a one-line esky_error() ("bad expression 'x ==': an
 * operand is missing at the end").
 */
int esky_expr_eval(const char *text, const struct esky_expr_env *env, uint64_t *value);

#endif
