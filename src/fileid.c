/* File identity: stat, ELF build-id, content hash. See fileid.h. */
#include "fileid.h"
#include "hash.h"
#include "util.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Read the GNU build-id note of an ELF64 file; 0 with *len set, or -errno. */
static int read_build_id(int fd, uint64_t size, uint8_t id[32], uint32_t *len, bool *is_elf)
{
	Elf64_Ehdr eh;
	int ret;

	*is_elf = false;
	*len = 0;
	if (size < sizeof(eh))
		return -ENOEXEC;
	ret = esky_pread_all(fd, &eh, sizeof(eh), 0);
	if (ret)
		return ret;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64)
		return -ENOEXEC;
	*is_elf = true;
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256 || eh.e_phoff > size)
		return -ENOEXEC;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		char notes[4096];
		size_t pos = 0, nlen;

		ret = esky_pread_all(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph)));
		if (ret)
			return ret;
		if (ph.p_type != PT_NOTE || ph.p_offset > size || ph.p_filesz > size - ph.p_offset)
			continue;
		nlen = ph.p_filesz < sizeof(notes) ? (size_t)ph.p_filesz : sizeof(notes);
		ret = esky_pread_all(fd, notes, nlen, (off_t)ph.p_offset);
		if (ret)
			return ret;
		while (pos + sizeof(Elf64_Nhdr) <= nlen) {
			Elf64_Nhdr nh;
			size_t name_at, desc_at, next;

			memcpy(&nh, notes + pos, sizeof(nh));
			name_at = pos + sizeof(nh);
			desc_at = name_at + ESKY_ALIGN_UP((size_t)nh.n_namesz, 4);
			next = desc_at + ESKY_ALIGN_UP((size_t)nh.n_descsz, 4);
			if (next > nlen || next <= pos)
				break;
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    !memcmp(notes + name_at, "GNU", 4) && nh.n_descsz && nh.n_descsz <= 32) {
				memcpy(id, notes + desc_at, nh.n_descsz);
				*len = nh.n_descsz;
				return 0;
			}
			pos = next;
		}
	}
	return 0;
}

static int hash_file(int fd, uint64_t size, uint64_t *out)
{
	void *p;

	if (!size) {
		*out = esky_hash64("", 0, 0);
		return 0;
	}
	p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*out = esky_hash64(p, size, 0);
	munmap(p, size);
	return 0;
}

int esky_fileid_read(const char *path, struct esky_img_file *f)
{
	struct stat st;
	bool is_elf = false;
	int fd, ret = 0;

	f->flags &= ESKY_IMG_FILEF_WRITTEN | ESKY_IMG_FILEF_EXE;
	if (stat(path, &st) < 0)
		return -errno;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = (uint64_t)st.st_size;
	f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	f->mode = st.st_mode;
	f->rdev = st.st_rdev;
	f->build_id_len = 0;
	f->content_hash = 0;
	if (S_ISDIR(st.st_mode))
		f->flags |= ESKY_IMG_FILEF_DIR;
	if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
		f->flags |= ESKY_IMG_FILEF_DEVICE;
	if (!S_ISREG(st.st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0; /* write-only or execute-only: identity by stat alone */
	if (!read_build_id(fd, f->size, f->build_id, &f->build_id_len, &is_elf)) {
		if (f->build_id_len)
			f->flags |= ESKY_IMG_FILEF_BUILD_ID;
	}
	if (is_elf)
		f->flags |= ESKY_IMG_FILEF_ELF;
	if (!f->build_id_len && !(f->flags & ESKY_IMG_FILEF_WRITTEN) &&
	    f->size <= ESKY_FILEID_HASH_MAX) {
		ret = hash_file(fd, f->size, &f->content_hash);
		if (!ret)
			f->flags |= ESKY_IMG_FILEF_HASH;
		ret = 0;
	}
	close(fd);
	return ret;
}

static void hex(const uint8_t *p, size_t n, char *buf, size_t bn)
{
	size_t i;

	for (i = 0; i < n && 2 * i + 2 < bn; i++)
		snprintf(buf + 2 * i, 3, "%02x", p[i]);
	buf[2 * i < bn ? 2 * i : 0] = '\0';
}

int esky_fileid_build_id_hex(const struct esky_img_file *f, char *buf, size_t n)
{
	if (!(f->flags & ESKY_IMG_FILEF_BUILD_ID))
		return -ENOENT;
	hex(f->build_id, f->build_id_len, buf, n);
	return 0;
}

int esky_fileid_check(const char *path, const struct esky_img_file *f, char *why, size_t n)
{
	struct esky_img_file now = { .flags = f->flags };
	char a[72], b[72];
	int ret;

	why[0] = '\0';
	ret = esky_fileid_read(path, &now);
	if (ret == -ENOENT || ret == -ENOTDIR)
		return -ENOENT;
	if (ret) {
		snprintf(why, n, "cannot be read: %s", strerror(-ret));
		return -ESTALE;
	}
	if ((now.mode & S_IFMT) != (f->mode & S_IFMT)) {
		snprintf(why, n, "is no longer the same kind of file");
		return -ESTALE;
	}
	if (f->flags & ESKY_IMG_FILEF_DEVICE) {
		if (now.rdev != f->rdev) {
			snprintf(why, n, "device %u:%u -> %u:%u", major(f->rdev), minor(f->rdev),
				 major(now.rdev), minor(now.rdev));
			return -ESTALE;
		}
		return 0;
	}
	/* A FIFO holds nothing on disk: being one at its path is all. */
	if ((f->flags & ESKY_IMG_FILEF_DIR) || S_ISFIFO(f->mode))
		return 0;
	if (f->flags & ESKY_IMG_FILEF_WRITTEN) {
		if (now.size != f->size)
			snprintf(why, n, "size %" PRIu64 " -> %" PRIu64, f->size, now.size);
		return 0;
	}
	if (f->flags & ESKY_IMG_FILEF_BUILD_ID) {
		if (now.build_id_len != f->build_id_len ||
		    memcmp(now.build_id, f->build_id, f->build_id_len)) {
			hex(f->build_id, f->build_id_len, a, sizeof(a));
			if (now.build_id_len)
				hex(now.build_id, now.build_id_len, b, sizeof(b));
			else
				snprintf(b, sizeof(b), "none");
			snprintf(why, n, "build-id %.12s... -> %.12s%s", a, b, now.build_id_len ? "..." : "");
			return -ESTALE;
		}
		if (now.size != f->size) {
			snprintf(why, n, "size %" PRIu64 " -> %" PRIu64, f->size, now.size);
			return -ESTALE;
		}
		return 0;
	}
	if (now.size != f->size) {
		snprintf(why, n, "size %" PRIu64 " -> %" PRIu64, f->size, now.size);
		return -ESTALE;
	}
	if (now.mtime_ns == f->mtime_ns)
		return 0;
	if ((f->flags & ESKY_IMG_FILEF_HASH) && (now.flags & ESKY_IMG_FILEF_HASH) &&
	    now.content_hash == f->content_hash)
		return 0;
	snprintf(why, n, "modified since the checkpoint (mtime changed%s)",
		 (f->flags & ESKY_IMG_FILEF_HASH) ? ", contents differ" : "");
	return -ESTALE;
}
