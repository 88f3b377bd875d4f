/* The small expression language of esky-shell, see expr.h. */
#include "expr.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const char *text, *p;
	const struct esky_expr_env *env;  /* NULL: syntax only */
	int err;
	int depth;
};

#define MAX_DEPTH 64

static int fail(struct parser *ps, const char *why)
{
	if (!ps->err)
		ps->err = esky_error(-EINVAL, "bad expression '%s': %s at %s", ps->text, why,
				     *ps->p ? ps->p : "the end");
	return ps->err;
}

static void blanks(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t')
		ps->p++;
}

static bool eat(struct parser *ps, const char *tok)
{
	size_t n = strlen(tok);

	blanks(ps);
	if (strncmp(ps->p, tok, n))
		return false;
	ps->p += n;
	return true;
}

static uint64_t expr(struct parser *ps);

/* A name: letters, digits, '_', '.', ':' (a library's symbol later). */
static size_t name_len(const char *p)
{
	size_t n = 0;

	while (isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '.')
		n++;
	return n;
}

static uint64_t name_value(struct parser *ps, bool address)
{
	char name[256];
	size_t n = name_len(ps->p);
	uint64_t addr = 0, size = 0, v = 0;

	if (!n || n >= sizeof(name) || isdigit((unsigned char)ps->p[0])) {
		fail(ps, "a number, $register or name is missing");
		return 0;
	}
	memcpy(name, ps->p, n);
	name[n] = '\0';
	ps->p += n;
	if (!ps->env || ps->err)
		return 0;
	ps->err = ps->env->sym(ps->env->ctx, name, &addr, &size);
	if (ps->err || address || !size)
		return addr;
	ps->err = ps->env->mem(ps->env->ctx, addr, &v, size > 8 ? 8 : size);
	return v;
}

static uint64_t unary(struct parser *ps)
{
	uint64_t v = 0;

	if (ps->err)
		return 0;
	if (++ps->depth > MAX_DEPTH) {
		fail(ps, "too deeply nested");
		return 0;
	}
	blanks(ps);
	if (eat(ps, "*")) {
		uint64_t a = unary(ps);

		if (!ps->err && ps->env)
			ps->err = ps->env->mem(ps->env->ctx, a, &v, sizeof(v));
	} else if (eat(ps, "&")) {
		blanks(ps);
		v = name_value(ps, true);
	} else if (eat(ps, "-")) {
		v = -unary(ps);
	} else if (eat(ps, "!")) {
		v = !unary(ps);
	} else if (eat(ps, "(")) {
		v = expr(ps);
		if (!ps->err && !eat(ps, ")"))
			fail(ps, "')' is missing");
	} else if (*ps->p == '$') {
		size_t n = name_len(ps->p + 1);
		char reg[32];

		if (!n || n >= sizeof(reg)) {
			fail(ps, "a register name is missing");
		} else {
			memcpy(reg, ps->p + 1, n);
			reg[n] = '\0';
			ps->p += n + 1;
			if (ps->env)
				ps->err = ps->env->reg(ps->env->ctx, reg, &v);
		}
	} else if (isdigit((unsigned char)*ps->p)) {
		char *end;

		errno = 0;
		v = strtoull(ps->p, &end, ps->p[0] == '0' && (ps->p[1] == 'x' || ps->p[1] == 'X') ? 16
											     : 10);
		if (errno || isalnum((unsigned char)*end) || *end == '_')
			fail(ps, "a bad number");
		else
			ps->p = end;
	} else {
		v = name_value(ps, false);
	}
	ps->depth--;
	return v;
}

static uint64_t sum(struct parser *ps)
{
	uint64_t v = unary(ps);

	while (!ps->err) {
		/* '-' here is subtraction; "a - -1" still reads, unary takes the second. */
		if (eat(ps, "+"))
			v += unary(ps);
		else if (eat(ps, "-"))
			v -= unary(ps);
		else
			break;
	}
	return v;
}

static uint64_t cmp(struct parser *ps)
{
	uint64_t a = sum(ps);

	if (ps->err)
		return 0;
	/* Two-character operators first. */
	if (eat(ps, "=="))
		return a == sum(ps);
	if (eat(ps, "!="))
		return a != sum(ps);
	if (eat(ps, "<="))
		return a <= sum(ps);
	if (eat(ps, ">="))
		return a >= sum(ps);
	if (eat(ps, "<"))
		return a < sum(ps);
	if (eat(ps, ">"))
		return a > sum(ps);
	return a;
}

static uint64_t and_(struct parser *ps)
{
	uint64_t v = cmp(ps);

	while (!ps->err && eat(ps, "&&")) {
		uint64_t w = cmp(ps);

		v = v && w;
	}
	return v;
}

static uint64_t expr(struct parser *ps)
{
	uint64_t v = and_(ps);

	while (!ps->err && eat(ps, "||")) {
		uint64_t w = and_(ps);

		v = v || w;
	}
	return v;
}

int esky_expr_eval(const char *text, const struct esky_expr_env *env, uint64_t *value)
{
	struct parser ps = { .text = text, .p = text, .env = env };
	uint64_t v;

	v = expr(&ps);
	blanks(&ps);
	if (!ps.err && *ps.p)
		fail(&ps, "unexpected text");
	if (!ps.err && value)
		*value = v;
	return ps.err;
}
