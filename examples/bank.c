/*
 * bank: four accounts, random transfers, and a bug to hunt.
 *
 *   bank [--slow] [--steps N] [--seed S]
 *
 * Each step moves money between two accounts and then audits the bank: the
 * balances plus the fees collected must always add up to the money the bank
 * started with. With the default seed the audit fails at step 37 and bank
 * exits with status 1; the steps before it look fine. That is the story of a
 * snapshot debugger: stop at transfer(), snapshot each step, and when the
 * audit fails, rewind to the step before and look at what transfer() did.
 * (The bug is in transfer(); the comment there does not give it away.)
 *
 * Deterministic: its own PRNG, no clock. --slow makes each step take about
 * 50 ms, for timer snapshots.
 */
/* nanosleep() under -std=c11 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_ACCOUNTS 4
#define DEFAULT_STEPS 60
#define DEFAULT_SEED 7518u     /* the audit fails at step 37 */
#define SLOW_STEP_NS 50000000L /* 50 ms */

struct account {
	const char *owner;
	unsigned balance; /* in cents */
	unsigned sent, received;
};

struct bank {
	struct account accounts[N_ACCOUNTS];
	unsigned long fees;     /* cents kept by the bank */
	unsigned long capital;  /* what the accounts held at the start */
	unsigned refused;
	uint32_t rng;
};

static uint32_t rng_next(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/* The bank keeps 1% of each transfer, and at least one cent. */
static unsigned fee_for(unsigned amount)
{
	return amount / 100 + 1;
}

/*
 * Move amount cents from one account to another, and the fee from the
 * sender to the bank. Refuses (returns -1) what would overdraw the sender.
 */
static int transfer(struct bank *b, struct account *from, struct account *to,
		    unsigned amount)
{
	unsigned fee = fee_for(amount);

	if (from->balance < amount)
		return -1;

	from->balance -= amount + fee;
	from->sent += amount;
	to->balance += amount;
	to->received += amount;
	b->fees += fee;
	return 0;
}

/* The money never changes: balances + fees == capital. */
static int audit(const struct bank *b, unsigned long *total)
{
	unsigned long sum = b->fees;
	int i;

	for (i = 0; i < N_ACCOUNTS; i++)
		sum += b->accounts[i].balance;
	*total = sum;
	return sum == b->capital ? 0 : -1;
}

static void nap(long ns)
{
	struct timespec left = { .tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L };

	while (nanosleep(&left, &left) != 0 && errno == EINTR)
		;
}

static int parse_uint(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	if (errno || end == s || *end != '\0' || s[0] == '-')
		return -1;
	return 0;
}

static void print_balances(const struct bank *b)
{
	int i;

	for (i = 0; i < N_ACCOUNTS; i++)
		printf("  %-6s %10u.%02u\n", b->accounts[i].owner,
		       b->accounts[i].balance / 100, b->accounts[i].balance % 100);
}

int main(int argc, char **argv)
{
	static const struct account opening[N_ACCOUNTS] = {
		{ "alice", 120000, 0, 0 },
		{ "bob", 45000, 0, 0 },
		{ "carol", 8000, 0, 0 },
		{ "dave", 2500, 0, 0 },
	};
	struct bank bank;
	unsigned long steps = DEFAULT_STEPS, seed = DEFAULT_SEED, total;
	int slow = 0;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--slow") == 0) {
			slow = 1;
		} else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
			if (parse_uint(argv[++i], &steps) < 0)
				goto bad_arg;
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			if (parse_uint(argv[++i], &seed) < 0 || (uint32_t)seed == 0)
				goto bad_arg;
		} else {
			goto bad_arg;
		}
	}

	setvbuf(stdout, NULL, _IOLBF, 0);

	memset(&bank, 0, sizeof(bank));
	memcpy(bank.accounts, opening, sizeof(opening));
	bank.rng = (uint32_t)seed;
	for (i = 0; i < N_ACCOUNTS; i++)
		bank.capital += bank.accounts[i].balance;

	for (i = 1; i <= (int)steps; i++) {
		uint32_t r = rng_next(&bank.rng);
		struct account *from = &bank.accounts[r % N_ACCOUNTS];
		struct account *to = &bank.accounts[(r % N_ACCOUNTS + 1 + (r / N_ACCOUNTS) % (N_ACCOUNTS - 1)) % N_ACCOUNTS];
		/* Mostly small payments, now and then a big one. */
		unsigned amount = (r >> 8) % 8 == 0 ? (r >> 12) % 60000 : (r >> 12) % 3000;

		if (transfer(&bank, from, to, amount) < 0) {
			bank.refused++;
			printf("step %2d: %-5s -> %-5s %7u.%02u refused\n", i, from->owner,
			       to->owner, amount / 100, amount % 100);
		} else {
			printf("step %2d: %-5s -> %-5s %7u.%02u\n", i, from->owner,
			       to->owner, amount / 100, amount % 100);
		}
		if (audit(&bank, &total) < 0) {
			printf("audit failed after step %d: the bank holds %lu.%02lu, it should hold %lu.%02lu\n",
			       i, total / 100, total % 100, bank.capital / 100, bank.capital % 100);
			print_balances(&bank);
			return 1;
		}
		if (slow)
			nap(SLOW_STEP_NS);
	}

	printf("done: %lu steps, %u refused, fees %lu.%02lu\n", steps, bank.refused,
	       bank.fees / 100, bank.fees % 100);
	print_balances(&bank);
	return 0;

bad_arg:
	fprintf(stderr, "bank: bad argument '%s'\n", argv[i]);
	fprintf(stderr, "usage: bank [--slow] [--steps N] [--seed S]\n");
	return 2;
}
