/* Memory shared between parent and child (MAP_SHARED anonymous, mapped before fork) is still one memory after the resume: what one writes the other reads, a counter both increment in turn adds up; a private mapping made before fork stays each one's own copy (copy-on-write). */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/wait.h>

#include "cap.h"

#define PAGE 4096
#define SHARED_PAGES 4
#define TURNS 5
#define CHILD_STATUS 14

static int get_byte(int fd)
{
	unsigned char c;
	ssize_t r;

	do
		r = read(fd, &c, 1);
	while (r < 0 && errno == EINTR);
	return r == 1 ? c : -1;
}

static void put_byte(int fd, int c)
{
	unsigned char b = (unsigned char)c;

	CHECK_INT(write(fd, &b, 1), 1);
}

/* Page 0: the parent's before fork; 1: the child's; 2: the parent's after
 * the resume; 3: word 0 a counter both increment in turn. */
static void child(unsigned char *sh, unsigned char *priv, int go, int done)
{
	volatile unsigned long *counter = (unsigned long *)(sh + 3 * PAGE);

	CHECK_FILL(sh, PAGE, 100);
	CHECK_FILL(priv, PAGE, 200);
	cap_fill(sh + PAGE, PAGE, 101);
	cap_fill(priv, PAGE, 201);		/* its own copy only */
	put_byte(done, 'r');

	/* Blocked here at the sync. */
	if (get_byte(go) != 'g')
		_exit(3);
	CHECK_FILL(sh, PAGE, 100);
	CHECK_FILL(sh + PAGE, PAGE, 101);
	CHECK_FILL(sh + 2 * PAGE, PAGE, 102);
	CHECK_FILL(priv, PAGE, 201);
	for (int i = 0; i < TURNS; i++) {
		if (i > 0 && get_byte(go) != 'g')
			_exit(3);
		CHECK_INT(*counter, 2 * i + 1);
		(*counter)++;
		put_byte(done, 'd');
	}
	_exit(CHILD_STATUS);
}

int main(void)
{
	unsigned char *sh, *priv;
	volatile unsigned long *counter;
	int go[2], done[2], st;
	pid_t pid;

	sh = mmap(NULL, SHARED_PAGES * PAGE, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED);
	priv = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(priv != MAP_FAILED);
	counter = (unsigned long *)(sh + 3 * PAGE);
	cap_fill(sh, PAGE, 100);
	cap_fill(priv, PAGE, 200);
	CHECK_SYS(pipe(go));
	CHECK_SYS(pipe(done));
	fflush(stdout);
	pid = fork();
	CHECK_SYS(pid);
	if (pid == 0) {
		close(go[1]);
		close(done[0]);
		child(sh, priv, go[0], done[1]);
	}
	close(go[0]);
	close(done[1]);
	CHECK_INT(get_byte(done[0]), 'r');
	CHECK_FILL(sh + PAGE, PAGE, 101);	/* the child's write */
	CHECK_FILL(priv, PAGE, 200);		/* not the child's */
	printf("shared and private mappings across fork\n");

	cap_sync();

	CHECK_FILL(sh, PAGE, 100);
	CHECK_FILL(sh + PAGE, PAGE, 101);
	CHECK_FILL(priv, PAGE, 200);
	cap_fill(sh + 2 * PAGE, PAGE, 102);	/* for the child to see */
	for (int i = 0; i < TURNS; i++) {
		CHECK_INT(*counter, 2 * i);
		(*counter)++;
		put_byte(go[1], 'g');
		CHECK_INT(get_byte(done[0]), 'd');
	}
	CHECK_INT(*counter, 2 * TURNS);
	printf("one shared memory: both see each other's writes: ok\n");
	CHECK_INT(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	CHECK_INT(WEXITSTATUS(st), CHILD_STATUS);
	CHECK_FILL(priv, PAGE, 200);
	printf("private copies stay apart: ok\n");
	return 0;
}
