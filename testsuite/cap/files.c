/* Open files survive: regular files read, written and appended with their offsets and flags (O_APPEND, O_CLOEXEC, O_NONBLOCK) at their fd numbers, a directory whose readdir loop goes on across the sync, and /dev/null, /dev/zero, /dev/urandom. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "cap.h"

#define NFILES 300

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void file_content(const char *name, char *buf, size_t max, size_t *len)
{
	int fd = open(name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	CHECK_SYS(fd);
	n = read(fd, buf, max);
	CHECK_SYS(n);
	*len = (size_t)n;
	close(fd);
}

int main(void)
{
	char data[8192], buf[8192], name[64];
	int rfd, wfd, afd, rwfd, hifd, nullfd, zerofd, urandfd;
	DIR *dir;
	int rawdir;
	struct dirent *de;
	char *seen[NFILES + 2];
	int nseen = 0, nraw = 0;
	char rawbuf[256];
	size_t len;
	mode_t mask = umask(022);

	umask(mask);
	cap_fill(data, sizeof(data), 42);
	rfd = open("input.dat", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK_SYS(rfd);
	CHECK_INT(write(rfd, data, sizeof(data)), (long)sizeof(data));
	close(rfd);

	/* Read-only, offset 1000. */
	rfd = open("input.dat", O_RDONLY);
	CHECK_SYS(rfd);
	CHECK_INT(read(rfd, buf, 1000), 1000);
	/* Write-only, close-on-exec, offset 300. */
	wfd = open("output.dat", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		   0640);
	CHECK_SYS(wfd);
	CHECK_INT(write(wfd, data, 300), 300);
	/* Append. */
	afd = open("append.dat", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND,
		   0644);
	CHECK_SYS(afd);
	CHECK_INT(write(afd, "first line\n", 11), 11);
	/* Read-write, non-blocking, offset set with lseek beyond the end. */
	rwfd = open("rw.dat", O_RDWR | O_CREAT | O_TRUNC | O_NONBLOCK, 0600);
	CHECK_SYS(rwfd);
	CHECK_INT(write(rwfd, "0123456789", 10), 10);
	CHECK_INT(lseek(rwfd, 4, SEEK_SET), 4);
	/* A high fd number. */
	hifd = dup2(rfd, 100);
	CHECK_INT(hifd, 100);
	close(rfd);
	rfd = -1;
	/* A hole in the fd table: the next open gets the lowest free. */

	/* A directory of NFILES entries, read half before the sync. */
	CHECK_SYS(mkdir("dir", 0755));
	for (int i = 0; i < NFILES; i++) {
		int fd;

		snprintf(name, sizeof(name), "dir/entry-with-a-long-name-%04d",
			 i);
		fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK_SYS(fd);
		close(fd);
	}
	dir = opendir("dir");
	CHECK(dir != NULL);
	while (nseen < NFILES / 2 && (de = readdir(dir)))
		if (de->d_name[0] != '.')
			seen[nseen++] = strdup(de->d_name);
	/* The same with raw getdents64 and a small buffer: the kernel's
	 * directory position is what must survive. */
	rawdir = open("dir", O_RDONLY | O_DIRECTORY);
	CHECK_SYS(rawdir);
	{
		long n = syscall(SYS_getdents64, rawdir, rawbuf,
				 sizeof(rawbuf));

		CHECK(n > 0);
		for (long off = 0; off < n;) {
			struct dirent64 *d = (void *)(rawbuf + off);

			if (d->d_name[0] != '.')
				nraw++;
			off += d->d_reclen;
		}
	}

	/* Devices. */
	nullfd = open("/dev/null", O_RDWR);
	zerofd = open("/dev/zero", O_RDONLY);
	urandfd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	CHECK_SYS(nullfd);
	CHECK_SYS(zerofd);
	CHECK_SYS(urandfd);

	printf("files set up, %d directory entries read\n", nseen);

	cap_sync();

	/* Read-only file: offset and content. */
	CHECK_INT(lseek(hifd, 0, SEEK_CUR), 1000);
	CHECK_INT(read(hifd, buf, 500), 500);
	CHECK_MEM(buf, data + 1000, 500);
	CHECK_INT(fcntl(hifd, F_GETFL) & (O_ACCMODE | O_APPEND), O_RDONLY);
	CHECK_INT(fcntl(hifd, F_GETFD), 0);
	printf("read: ok\n");

	/* Write-only: offset, flags, close-on-exec; writes land in order. */
	CHECK_INT(lseek(wfd, 0, SEEK_CUR), 300);
	CHECK_INT(fcntl(wfd, F_GETFL) & O_ACCMODE, O_WRONLY);
	CHECK_INT(fcntl(wfd, F_GETFD), FD_CLOEXEC);
	CHECK_INT(write(wfd, data + 300, 700), 700);
	file_content("output.dat", buf, sizeof(buf), &len);
	CHECK_INT(len, 1000);
	CHECK_MEM(buf, data, 1000);
	{
		struct stat st;

		CHECK_SYS(fstat(wfd, &st));
		CHECK_INT(st.st_size, 1000);
		CHECK_INT(st.st_mode & 07777, 0640 & ~mask);
	}
	printf("write: ok\n");

	/* Append: O_APPEND kept, so a write goes to the end even after the
	 * file grew through another fd. */
	CHECK_INT(fcntl(afd, F_GETFL) & (O_ACCMODE | O_APPEND),
		  O_WRONLY | O_APPEND);
	CHECK_INT(fcntl(afd, F_GETFD), 0);
	{
		int other = open("append.dat", O_WRONLY);

		CHECK_SYS(other);
		CHECK_INT(pwrite(other, "other line\n", 11, 11), 11);
		close(other);
	}
	CHECK_INT(write(afd, "third line\n", 11), 11);
	file_content("append.dat", buf, sizeof(buf), &len);
	buf[len] = '\0';
	CHECK_STR(buf, "first line\nother line\nthird line\n");
	printf("append: ok\n");

	/* Read-write, non-blocking. */
	CHECK_INT(fcntl(rwfd, F_GETFL) & (O_ACCMODE | O_NONBLOCK),
		  O_RDWR | O_NONBLOCK);
	CHECK_INT(lseek(rwfd, 0, SEEK_CUR), 4);
	CHECK_INT(read(rwfd, buf, 3), 3);
	CHECK_MEM(buf, "456", 3);
	CHECK_INT(write(rwfd, "xy", 2), 2);
	CHECK_INT(pread(rwfd, buf, 10, 0), 10);
	CHECK_MEM(buf, "0123456xy9", 10);
	printf("read-write: ok\n");

	/* Directory: the loop goes on and sees every entry exactly once. */
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.') {
			CHECK(nseen < NFILES);
			seen[nseen++] = strdup(de->d_name);
		}
	CHECK_INT(nseen, NFILES);
	qsort(seen, (size_t)nseen, sizeof(seen[0]), cmp_str);
	for (int i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "entry-with-a-long-name-%04d", i);
		CHECK_STR(seen[i], name);
	}
	closedir(dir);
	for (;;) {
		long n = syscall(SYS_getdents64, rawdir, rawbuf,
				 sizeof(rawbuf));

		CHECK(n >= 0);
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			struct dirent64 *d = (void *)(rawbuf + off);

			if (d->d_name[0] != '.')
				nraw++;
			off += d->d_reclen;
		}
	}
	CHECK_INT(nraw, NFILES);
	printf("directory: ok, %d entries\n", nseen);

	/* Devices. */
	CHECK_INT(write(nullfd, "abc", 3), 3);
	CHECK_INT(read(nullfd, buf, 10), 0);
	CHECK_INT(fcntl(nullfd, F_GETFL) & O_ACCMODE, O_RDWR);
	memset(buf, 1, 100);
	CHECK_INT(read(zerofd, buf, 100), 100);
	for (int i = 0; i < 100; i++)
		CHECK_INT(buf[i], 0);
	memset(buf, 0, 64);
	CHECK_INT(read(urandfd, buf, 64), 64);
	{
		int nonzero = 0;

		for (int i = 0; i < 64; i++)
			nonzero += buf[i] != 0;
		CHECK(nonzero > 0);
	}
	CHECK_INT(fcntl(urandfd, F_GETFD), FD_CLOEXEC);
	printf("devices: ok\n");

	/* The lowest free fd is what it was. */
	{
		int fd = open("/dev/null", O_RDONLY);

		CHECK_INT(fd, 3);
		close(fd);
	}
	printf("done\n");
	return 0;
}
