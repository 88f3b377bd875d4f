/* What a mapping may become (smaps VmFlags mr/mw/me) survives: a read-only MAP_SHARED mapping of a file opened read-write can be made writable and written through to the file; one of a file opened read-only still cannot (EACCES); a read-only private mapping of a read-only file can (copy on write); anonymous memory keeps its may-flags. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cap.h"

#define PG 4096
#define NPG 3

static void make_file(const char *name, unsigned long long seed)
{
	char data[NPG * PG];
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	CHECK_SYS(fd);
	cap_fill(data, sizeof(data), seed);
	CHECK_INT(write(fd, data, sizeof(data)), (long)sizeof(data));
	CHECK_SYS(close(fd));
}

/* Map NAME opened with OFLAGS, then close the fd: only the mapping holds the file. */
static char *map_file(const char *name, int oflags, int prot, int flags)
{
	int fd = open(name, oflags | O_CLOEXEC);
	char *p;

	CHECK_SYS(fd);
	p = mmap(NULL, NPG * PG, prot, flags, fd, 0);
	CHECK(p != MAP_FAILED);
	CHECK_SYS(close(fd));
	return p;
}

/* The may-flags ("mr mw me" of VmFlags) of the mapping that starts at p. */
static void may_flags(const void *p, char *out, size_t n)
{
	char line[512], head[32];
	FILE *f = fopen("/proc/self/smaps", "r");
	int found = 0;

	CHECK(f != NULL);
	snprintf(head, sizeof(head), "%lx-", (unsigned long)(uintptr_t)p);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, head, strlen(head)))
			found = 1;
		else if (found && !strncmp(line, "VmFlags:", 8)) {
			static const char *const may[] = { "mr", "mw", "me" };

			for (size_t i = 0; i < 3; i++) {
				char code[5];

				snprintf(code, sizeof(code), " %s ", may[i]);
				if (strstr(line + 7, code)) {
					strncat(out, out[0] ? " " : "", n - strlen(out) - 1);
					strncat(out, may[i], n - strlen(out) - 1);
				}
			}
			break;
		}
	}
	fclose(f);
	CHECK(found);
}

static void show(const char *what, const void *p)
{
	char f[32];

	may_flags(p, f, sizeof(f));
	printf("%-28s may: %s\n", what, f);
}

/* The file's bytes at off, read through a fresh fd (not the mapping). */
static void file_bytes(const char *name, off_t off, char *buf, size_t n)
{
	int fd = open(name, O_RDONLY | O_CLOEXEC);

	CHECK_SYS(fd);
	CHECK_INT(pread(fd, buf, n, off), (long)n);
	CHECK_SYS(close(fd));
}

int main(void)
{
	static const char msg[] = "written through the mapping";
	char expect[NPG * PG], buf[sizeof(msg)];
	char *rw_shared, *ro_shared, *ro_private, *anon, *anon_shared;
	int ret;

	make_file("rw.dat", 11);
	make_file("ro.dat", 12);
	/* Read-only now; the fd was read-write: it may become writable. */
	rw_shared = map_file("rw.dat", O_RDWR, PROT_READ, MAP_SHARED);
	/* The fd was read-only: the kernel clears VM_MAYWRITE. */
	ro_shared = map_file("ro.dat", O_RDONLY, PROT_READ, MAP_SHARED);
	/* Private: writable by copy on write whatever the fd was. */
	ro_private = map_file("ro.dat", O_RDONLY, PROT_READ, MAP_PRIVATE);
	anon = mmap(NULL, NPG * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(anon != MAP_FAILED);
	anon_shared = mmap(NULL, NPG * PG, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(anon_shared != MAP_FAILED);

	cap_sync();

	show("shared, file open rw", rw_shared);
	show("shared, file open ro", ro_shared);
	show("private, file open ro", ro_private);
	show("anonymous, PROT_NONE", anon);
	show("shared anonymous, read-only", anon_shared);

	/* rw.dat: writable now, and the file sees what is written. */
	CHECK_FILL(rw_shared, NPG * PG, 11);
	CHECK_SYS(mprotect(rw_shared, NPG * PG, PROT_READ | PROT_WRITE));
	memcpy(rw_shared + PG + 100, msg, sizeof(msg));
	CHECK_SYS(msync(rw_shared, NPG * PG, MS_SYNC));
	file_bytes("rw.dat", PG + 100, buf, sizeof(buf));
	CHECK_MEM(buf, msg, sizeof(msg));
	printf("shared, file open rw: mprotect(PROT_WRITE) ok, the file sees the write\n");

	/* ro.dat: still refused, with EACCES as before the checkpoint. */
	ret = mprotect(ro_shared, NPG * PG, PROT_READ | PROT_WRITE);
	CHECK_INT(ret, -1);
	CHECK_INT(errno, EACCES);
	CHECK_FILL(ro_shared, NPG * PG, 12);
	printf("shared, file open ro: mprotect(PROT_WRITE) fails with EACCES\n");

	/* Private: a copy; the file keeps its bytes. */
	CHECK_SYS(mprotect(ro_private, NPG * PG, PROT_READ | PROT_WRITE));
	memcpy(ro_private + 10, msg, sizeof(msg));
	CHECK_MEM(ro_private + 10, msg, sizeof(msg));
	cap_fill(expect, sizeof(expect), 12);
	file_bytes("ro.dat", 10, buf, sizeof(buf));
	CHECK_MEM(buf, expect + 10, sizeof(msg));
	printf("private, file open ro: mprotect(PROT_WRITE) ok, the file unchanged\n");

	/* Anonymous memory: any protection. */
	CHECK_SYS(mprotect(anon, NPG * PG, PROT_READ | PROT_WRITE | PROT_EXEC));
	anon[PG] = 1;
	CHECK_SYS(mprotect(anon_shared, NPG * PG, PROT_READ | PROT_WRITE));
	anon_shared[PG] = 1;
	printf("anonymous: mprotect(PROT_READ|PROT_WRITE) ok\n");
	return 0;
}
