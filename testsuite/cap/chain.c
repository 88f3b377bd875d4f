/* Ten checkpoints in a row (each resumed process is checkpointed again): state that evolves between sync points (a PRNG, a linked list on the heap, buffered stdout, an anonymous mapping) is right at every step. */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "cap.h"

#define STEPS 10

struct node {
	struct node *next;
	unsigned long long value;
	char pad[200];
};

int main(void)
{
	unsigned long long s = 12345, expect_s = 12345, sum = 0;
	struct node *head = NULL;
	char *area = mmap(NULL, STEPS * 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(area != MAP_FAILED);
	for (int step = 1; step <= STEPS; step++) {
		for (int i = 0; i < 100; i++) {
			struct node *n = malloc(sizeof(*n));

			CHECK(n != NULL);
			n->value = cap_rand(&s);
			cap_fill(n->pad, sizeof(n->pad), n->value);
			n->next = head;
			head = n;
		}
		cap_fill(area + (step - 1) * 4096, 4096, (unsigned)step);
		printf("step %d: %llx\n", step, s);

		cap_sync();

		sum = 0;
		expect_s = 12345;
		for (int i = 0; i < step * 100; i++)
			cap_rand(&expect_s);
		CHECK_INT(s, expect_s);
		for (struct node *n = head; n; n = n->next) {
			CHECK_FILL(n->pad, sizeof(n->pad), n->value);
			sum += n->value;
		}
		for (int i = 1; i <= step; i++)
			CHECK_FILL(area + (i - 1) * 4096, 4096, (unsigned)i);
		printf("step %d checked: %llx\n", step, sum);
	}
	return 0;
}
