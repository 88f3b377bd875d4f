/*
 * The restore agent: a static, freestanding program that turns itself
 * into the checkpointed process.
 *
 * The monitor execs it, traced, with the image's page data, the argument
 * block (abi.h) and the resuming esky's stdio at fd numbers the image does
 * not use. It clears the address space, creates every mapping of the image
 * at its address and fills the saved pages, moves this kernel's vDSO and
 * vvar where the image had them, restores the kernel state it can, and
 * stops on a breakpoint. The monitor then sets the registers, removes the
 * agent's own mappings and lets the program go.
 *
 * Errors: the agent writes a struct ea_report to report_fd and exits with
 * status 125; the monitor turns the report into a message.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <asm/signal.h>
#include <linux/fcntl.h>
#include <linux/ioctl.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <linux/time.h>
#include <linux/userfaultfd.h>

#include "abi.h"
#include "syscall.h"

#define PAGE_SIZE 4096UL
#define AGENT_EXIT_FAILED 125

/* Not in every linux/ header of Debian 12 (6.1). */
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define AGENT_SIG_SETMASK 2
#define AGENT_SIGTRAP_BIT (1ULL << (5 - 1)) /* SIGTRAP is 5 on every Linux */
#define AGENT_SS_ONSTACK 1
#define AGENT_SS_DISABLE 2
#define AGENT_FUTEX_WAIT 128 /* FUTEX_WAIT | FUTEX_PRIVATE_FLAG */
#define AGENT_FUTEX_WAKE 129
#define AGENT_PR_CAP_AMBIENT 47
#define AGENT_PR_CAP_AMBIENT_CLEAR_ALL 4
#define AGENT_IPC_CREAT 01000
#define AGENT_IPC_EXCL 02000
#define AGENT_IPC_RMID 0
#define AGENT_SHM_EXEC 0100000
#define AGENT_SHM_DEST 01000

/* The agent's stack; entry.S starts at its end (AGENT_STACK_SIZE there too). */
char agent_stack[256 * 1024] __attribute__((aligned(16)));
static char maps_buf[64 * 1024];
/* Page data passes through here on its way into userfaultfd-filled memory. */
static char bounce[1024 * 1024] __attribute__((aligned(4096)));
static long uffd = -1; /* -1: not tried yet, -2: unavailable */
static long lazy_uffd = -1; /* EA_F_LAZY: -1 not tried yet, -2: unavailable */

static struct ea_args *args;

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void agent_main(uint64_t *sp);

/* gcc may emit calls to these even in freestanding code. */
void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;

	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

static bool str_eq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

static __attribute__((noreturn)) void fail(uint32_t step, long err, uint64_t addr, uint32_t index)
{
	struct ea_report r = {
		.magic = ESKY_AGENT_MAGIC,
		.step = step,
		.err = err,
		.addr = addr,
		.index = index,
	};

	if (args)
		sys_call(__NR_write, args->report_fd, &r, sizeof(r), 0, 0, 0);
	for (;;)
		sys_call(__NR_exit_group, AGENT_EXIT_FAILED, 0, 0, 0, 0, 0);
}

static const char *str_at(uint32_t off)
{
	return (const char *)args + args->strings_off + off;
}

static const void *array_at(uint32_t off)
{
	return (const char *)args + off;
}

static long parse_dec(const char *s)
{
	long v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	return v;
}

static const char *parse_hex(const char *p, uint64_t *v)
{
	uint64_t x = 0;

	for (;; p++) {
		char c = *p;

		if (c >= '0' && c <= '9')
			x = x << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x = x << 4 | (uint64_t)(c - 'a' + 10);
		else
			break;
	}
	*v = x;
	return p;
}

static void map_args(int fd, long size)
{
	long r = sys_call(__NR_mmap, ESKY_AGENT_ARGS_ADDR, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);

	if (r != (long)ESKY_AGENT_ARGS_ADDR)
		fail(EA_STEP_ARGS, r, ESKY_AGENT_ARGS_ADDR, 0);
	args = (struct ea_args *)ESKY_AGENT_ARGS_ADDR;
	if (args->magic != ESKY_AGENT_MAGIC || args->version != ESKY_AGENT_VERSION ||
	    args->size != (uint64_t)size) {
		struct ea_args *bad = args;

		args = NULL;
		(void)bad;
		fail(EA_STEP_ARGS, -22, 0, 0);
	}
	sys_call(__NR_close, fd, 0, 0, 0, 0, 0);
}

/* Where the kernel's special mappings of this process were parked. */
static uint64_t park_of(const char *name, uint64_t *len)
{
	/* Parked at fixed slots in the order vvar, vvar_vclock, vdso; *len filled. */
	uint64_t slot = str_eq(name, "[vvar]") ? 0 : str_eq(name, "[vvar_vclock]") ? 1 : 2;
	(void)len;
	return ESKY_AGENT_PARK_ADDR + slot * 0x1000000ULL;
}

static uint64_t parked_len[3];

/*
 * Make the address space ours: move this kernel's vDSO and vvar into the
 * agent's zone, and unmap everything else outside it (the initial stack).
 *
 *   before:  [agent zone] ...        [stack] [vvar][vvar_vclock][vdso]
 *   after:   [agent zone|vvar|vvar_vclock|vdso parked]   (nothing else)
 */
static void clear_address_space(void)
{
	long fd = sys_call(__NR_open, "/proc/self/maps", O_RDONLY, 0, 0, 0, 0);
	size_t len = 0;
	char *p;

	if (fd < 0)
		fail(EA_STEP_CLEAR, fd, 0, 0);
	for (;;) {
		long n = sys_call(__NR_read, fd, maps_buf + len, sizeof(maps_buf) - 1 - len, 0, 0, 0);

		if (n < 0)
			fail(EA_STEP_CLEAR, n, 0, 1);
		if (n == 0)
			break;
		len += (size_t)n;
		if (len >= sizeof(maps_buf) - 1)
			fail(EA_STEP_CLEAR, -7 /* E2BIG */, 0, 2);
	}
	maps_buf[len] = '\0';
	sys_call(__NR_close, fd, 0, 0, 0, 0, 0);

	/* The buffer is parsed completely before anything moves. */
	for (p = maps_buf; *p;) {
		uint64_t start, end;
		const char *name = NULL;
		char *eol = p, *q;
		long r;

		while (*eol && *eol != '\n')
			eol++;
		q = (char *)parse_hex(p, &start);
		q = (char *)parse_hex(q + 1, &end);
		for (char *s = q; s < eol; s++)
			if (*s == '[' || *s == '/') {
				name = s;
				break;
			}
		if (*eol)
			*eol++ = '\0';
		p = eol;
		if (start >= ESKY_AGENT_BASE && end <= ESKY_AGENT_ZONE_END)
			continue;
		if (name && str_eq(name, "[vsyscall]"))
			continue;
		if (name && (str_eq(name, "[vdso]") || str_eq(name, "[vvar]") ||
			     str_eq(name, "[vvar_vclock]"))) {
			uint64_t to = park_of(name, NULL);
			int slot = (int)((to - ESKY_AGENT_PARK_ADDR) / 0x1000000ULL);

			r = sys_call(__NR_mremap, start, end - start, end - start,
				     MREMAP_MAYMOVE | MREMAP_FIXED, to, 0);
			if (r != (long)to)
				fail(EA_STEP_CLEAR, r, start, 3);
			parked_len[slot] = end - start;
			continue;
		}
		r = sys_call(__NR_munmap, start, end - start, 0, 0, 0, 0);
		if (r)
			fail(EA_STEP_CLEAR, r, start, 4);
	}
}

/* Read len bytes of source src at off into dst; fail() on error or short file. */
static void read_source(uint32_t src, void *dst, uint64_t len, uint64_t off, uint64_t addr,
			uint32_t index)
{
	const int32_t *src_fds = array_at(args->src_fd_off);
	uint64_t done = 0;

	while (done < len) {
		long got = sys_call(__NR_pread64, src_fds[src], (char *)dst + done, len - done,
				    off + done, 0, 0);

		if (got < 0)
			fail(EA_STEP_PAGES, got, addr + done, index);
		if (got == 0)
			fail(EA_STEP_PAGES, -5 /* EIO: image shorter than said */, addr + done, index);
		done += (uint64_t)got;
	}
}

/* Fill by reading straight into the mapping (page faults allocate zeroed pages). */
static void fill_pages(const struct ea_run *runs, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct ea_run *r = &runs[i];

		if (r->src == EA_SRC_ZERO)
			memset((void *)(uintptr_t)r->addr, 0, r->len);
		else
			read_source(r->src, (void *)(uintptr_t)r->addr, r->len, r->off, r->addr, i);
	}
}

static void uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	long fd = sys_call(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0);

	if (fd == -22 /* EINVAL: a kernel before 5.11 */)
		fd = sys_call(__NR_userfaultfd, O_CLOEXEC, 0, 0, 0, 0, 0);
	if (fd < 0) {
		uffd = -2;
		return;
	}
	if (sys_call(__NR_ioctl, fd, UFFDIO_API, &api, 0, 0, 0)) {
		sys_call(__NR_close, fd, 0, 0, 0, 0, 0);
		uffd = -2;
		return;
	}
	uffd = fd;
}

/*
 * Fill anonymous memory with UFFDIO_COPY: each page is allocated and
 * copied in one step, without the zeroing and the fault per page that
 * reading into fresh memory costs (about half the time of a restore).
 * Returns false, having done nothing, where userfaultfd is not available.
 */
static bool fill_pages_uffd(const struct ea_vma *v, const struct ea_run *runs, uint32_t n)
{
	struct uffdio_register reg = {
		.range = { .start = v->start, .len = v->end - v->start },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	if (uffd == -1)
		uffd_open();
	if (uffd < 0 || sys_call(__NR_ioctl, uffd, UFFDIO_REGISTER, &reg, 0, 0, 0))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		const struct ea_run *r = &runs[i];

		/* Zero runs stay missing: the first touch maps a zero page. */
		for (uint64_t done = 0; r->src != EA_SRC_ZERO && done < r->len;) {
			uint64_t len = r->len - done < sizeof(bounce) ? r->len - done : sizeof(bounce);
			uint64_t copied = 0;

			read_source(r->src, bounce, len, r->off + done, r->addr + done, i);
			while (copied < len) {
				struct uffdio_copy c = {
					.dst = r->addr + done + copied,
					.src = (uint64_t)(uintptr_t)bounce + copied,
					.len = len - copied,
				};
				long ret = sys_call(__NR_ioctl, uffd, UFFDIO_COPY, &c, 0, 0, 0);

				if (c.copy > 0)
					copied += (uint64_t)c.copy;
				else if (ret && ret != -11 /* EAGAIN */)
					fail(EA_STEP_PAGES, ret, c.dst, i);
			}
			done += len;
		}
	}
	sys_call(__NR_ioctl, uffd, UFFDIO_UNREGISTER, &reg.range, 0, 0, 0);
	return true;
}

/*
 * The userfaultfd of lazy mappings: not user-mode only (a system call
 * the program makes into a page not yet in must wait for it too, not
 * fail), with the events that change what a page should hold (fork,
 * mremap, madvise, munmap), at args->lazy_fd. Needs CAP_SYS_PTRACE (or
 * vm.unprivileged_userfaultfd): where it cannot be made, -2 and the
 * mappings are filled now.
 */
static void lazy_open(void)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
			    UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP |
			    UFFD_FEATURE_THREAD_ID,
	};
	long fd = sys_call(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0), r;

	lazy_uffd = -2;
	if (fd < 0)
		return;
	if (sys_call(__NR_ioctl, fd, UFFDIO_API, &api, 0, 0, 0)) {
		sys_call(__NR_close, fd, 0, 0, 0, 0, 0);
		return;
	}
	r = sys_call(__NR_dup3, fd, args->lazy_fd, O_CLOEXEC, 0, 0, 0);
	sys_call(__NR_close, fd, 0, 0, 0, 0, 0);
	if (r == args->lazy_fd)
		lazy_uffd = r;
}

/* Register a lazy mapping for missing pages; false if it must be filled now. */
static bool register_lazy(const struct ea_vma *v)
{
	struct uffdio_register reg = {
		.range = { .start = v->start, .len = v->end - v->start },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	if (!(args->flags & EA_F_LAZY) || !(v->flags & EA_VMAF_LAZY))
		return false;
	if (lazy_uffd == -1)
		lazy_open();
	return lazy_uffd >= 0 && !sys_call(__NR_ioctl, lazy_uffd, UFFDIO_REGISTER, &reg, 0, 0, 0);
}

/*
 * Hand the lazy mappings' userfaultfd to the monitor: a breakpoint with
 * lazy_state 1 (SIGTRAP unblocked for it); from here on the monitor
 * serves their pages, so that what the agent and the kernel write into
 * the program's memory later (rseq, the robust list) finds them. Our
 * copy of the fd goes: nothing of it is left in the program.
 */
static void lazy_handoff(void)
{
	uint64_t mask = ~AGENT_SIGTRAP_BIT, all = ~0ULL;

	if (lazy_uffd < 0)
		return;
	args->lazy_state = 1;
	sys_call(__NR_rt_sigprocmask, AGENT_SIG_SETMASK, &mask, 0, 8, 0, 0);
	arch_breakpoint();
	sys_call(__NR_rt_sigprocmask, AGENT_SIG_SETMASK, &all, 0, 8, 0, 0);
	if (args->lazy_state != 2)
		fail(EA_STEP_PAGES, -71 /* EPROTO: the monitor did not take it */, 0, 0);
	sys_call(__NR_close, lazy_uffd, 0, 0, 0, 0, 0);
	lazy_uffd = -1;
}

static void move_special(const struct ea_vma *v, uint32_t index)
{
	int slot = v->kind == EA_VMA_VVAR ? 0 : v->kind == EA_VMA_VVAR_VCLOCK ? 1 : 2;
	uint64_t from = ESKY_AGENT_PARK_ADDR + (uint64_t)slot * 0x1000000ULL;
	long r;

	if (parked_len[slot] != v->end - v->start)
		fail(EA_STEP_VDSO, -18 /* EXDEV: another kernel's layout */, v->start, index);
	r = sys_call(__NR_mremap, from, parked_len[slot], parked_len[slot],
		     MREMAP_MAYMOVE | MREMAP_FIXED, v->start, 0);
	if (r != (long)v->start)
		fail(EA_STEP_VDSO, r, v->start, index);
	parked_len[slot] = 0;
}

static void advise(const struct ea_vma *v, uint32_t index)
{
	static const struct {
		uint32_t flag;
		int advice;
	} adv[] = {
		{ EA_VMAF_DONTFORK, MADV_DONTFORK },
		{ EA_VMAF_WIPEONFORK, MADV_WIPEONFORK },
		{ EA_VMAF_DONTDUMP, MADV_DONTDUMP },
		{ EA_VMAF_HUGEPAGE, MADV_HUGEPAGE },
		{ EA_VMAF_NOHUGEPAGE, MADV_NOHUGEPAGE },
	};

	for (size_t i = 0; i < sizeof(adv) / sizeof(adv[0]); i++) {
		if (!(v->flags & adv[i].flag))
			continue;
		/* THP advice fails where THP is compiled out: not fatal. */
		sys_call(__NR_madvise, v->start, v->end - v->start, adv[i].advice, 0, 0, 0);
	}
	if (v->name_off)
		sys_call(__NR_prctl, PR_SET_VMA, PR_SET_VMA_ANON_NAME, v->start, v->end - v->start,
			 str_at(v->name_off), 0);
	(void)index;
}

/* n in decimal into buf (at least 24 bytes); its length. */
static size_t fmt_dec(char *buf, uint64_t n)
{
	char tmp[24];
	size_t len = 0, k = 0;

	do {
		tmp[len++] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	while (len)
		buf[k++] = tmp[--len];
	return k;
}

/*
 * Attach System V segment v at its address, made first (once) with its
 * shmid: shm_next_id of this IPC namespace (ours alone: CAP_SYS_ADMIN in
 * its user namespace lets us write it) gives the next segment that id.
 * Attached writable until its pages are in; create_vmas sets its prot.
 */
static long sysv_attach(const struct ea_vma *v, uint32_t index)
{
	struct ea_sysv *sv = (struct ea_sysv *)str_at(v->path_off);
	long r;

	/*
	 * Another process of a tree, thawed before this one in the same IPC
	 * namespace, may have made it already: attached as it is (its pages,
	 * the same as ours, are filled again).
	 */
	if (!sv->made) {
		r = sys_call(__NR_shmat, sv->shmid, v->start,
			     v->prot & PROT_EXEC ? AGENT_SHM_EXEC : 0, 0, 0, 0);
		if (r == (long)v->start) {
			sv->made = 3; /* not ours to remove again */
			return r;
		}
	}
	if (!sv->made) {
		char num[24];
		size_t len = fmt_dec(num, (uint64_t)(uint32_t)sv->shmid);
		long fd = sys_call(__NR_open, "/proc/sys/kernel/shm_next_id", O_WRONLY | O_CLOEXEC,
				   0, 0, 0, 0);

		if (fd < 0)
			fail(EA_STEP_VMA, fd, v->start, index);
		r = sys_call(__NR_write, fd, num, len, 0, 0, 0);
		sys_call(__NR_close, fd, 0, 0, 0, 0, 0);
		if (r != (long)len)
			fail(EA_STEP_VMA, r < 0 ? r : -5 /* EIO */, v->start, index);
		r = sys_call(__NR_shmget, sv->key, sv->size,
			     (sv->mode & 0777) | AGENT_IPC_CREAT | AGENT_IPC_EXCL, 0, 0, 0);
		if (r != sv->shmid)
			fail(EA_STEP_VMA, r < 0 ? r : -43 /* EIDRM: another id */, v->start, index);
		sv->made = 1;
	}
	r = sys_call(__NR_shmat, sv->shmid, v->start, v->prot & PROT_EXEC ? AGENT_SHM_EXEC : 0, 0,
		     0, 0);
	return r;
}

static void create_vmas(void)
{
	const struct ea_vma *vmas = array_at(args->vma_off);
	const struct ea_run *runs = array_at(args->run_off);
	uint32_t r = 0;

	for (uint32_t i = 0; i < args->vma_n; i++) {
		const struct ea_vma *v = &vmas[i];
		uint64_t len = v->end - v->start;
		int prot = (int)v->prot, fill_prot = prot;
		long fd = -1, ret, flags = MAP_FIXED;
		uint32_t first_run;

		if (v->kind == EA_VMA_VDSO || v->kind == EA_VMA_VVAR || v->kind == EA_VMA_VVAR_VCLOCK) {
			move_special(v, i);
			continue;
		}
		/* A System V segment is attached writable: its prot is set after, as for filling. */
		if ((v->flags & EA_VMAF_HAS_PAGES) || v->kind == EA_VMA_SYSV_SHM)
			fill_prot = PROT_READ | PROT_WRITE;
		switch (v->kind) {
		case EA_VMA_ANON:
			flags |= MAP_PRIVATE | MAP_ANONYMOUS;
			if (v->flags & EA_VMAF_GROWSDOWN)
				flags |= MAP_GROWSDOWN;
			break;
		case EA_VMA_SHARED_ANON:
			flags |= MAP_SHARED | MAP_ANONYMOUS;
			break;
		case EA_VMA_FILE_PRIVATE:
		case EA_VMA_FILE_SHARED:
			fd = sys_call(__NR_open, str_at(v->path_off),
				      (v->flags & EA_VMAF_WRITE_FILE ? O_RDWR : O_RDONLY) | O_CLOEXEC,
				      0, 0, 0, 0);
			if (fd < 0)
				fail(EA_STEP_VMA, fd, v->start, i);
			flags |= v->kind == EA_VMA_FILE_SHARED ? MAP_SHARED : MAP_PRIVATE;
			break;
		case EA_VMA_SYSV_SHM:
			break;
		default:
			fail(EA_STEP_VMA, -22, v->start, i);
		}
		if (v->kind == EA_VMA_SYSV_SHM)
			ret = sysv_attach(v, i);
		else
			ret = sys_call(__NR_mmap, v->start, len, fill_prot, flags, fd, v->pgoff);
		if (fd >= 0)
			sys_call(__NR_close, fd, 0, 0, 0, 0, 0);
		if (ret != (long)v->start)
			fail(EA_STEP_VMA, ret < 0 ? ret : -17 /* EEXIST */, v->start, i);

		/* Runs are sorted by address, like the mappings. */
		while (r < args->run_n && runs[r].addr < v->start)
			r++;
		first_run = r;
		while (r < args->run_n && runs[r].addr < v->end)
			r++;
		if (!(v->kind == EA_VMA_ANON && register_lazy(v)) &&
		    !((v->kind == EA_VMA_ANON || v->kind == EA_VMA_SHARED_ANON) &&
		      fill_pages_uffd(v, runs + first_run, r - first_run)))
			fill_pages(runs + first_run, r - first_run);
		if (fill_prot != prot) {
			ret = sys_call(__NR_mprotect, v->start, len, prot, 0, 0, 0);
			if (ret)
				fail(EA_STEP_VMA, ret, v->start, i);
		}
		advise(v, i);
	}
	if (uffd >= 0)
		sys_call(__NR_close, uffd, 0, 0, 0, 0, 0);
	/* Segments the program had removed (still attached): removed again, now attached. */
	for (uint32_t i = 0; i < args->vma_n; i++) {
		struct ea_sysv *sv = (struct ea_sysv *)str_at(vmas[i].path_off);

		if (vmas[i].kind == EA_VMA_SYSV_SHM && (sv->mode & AGENT_SHM_DEST) && sv->made == 1) {
			long r = sys_call(__NR_shmctl, sv->shmid, AGENT_IPC_RMID, 0, 0, 0, 0);

			if (r)
				fail(EA_STEP_VMA, r, vmas[i].start, i);
			sv->made = 2;
		}
	}
}

static bool is_transport_fd(int fd)
{
	const int32_t *src_fds = array_at(args->src_fd_off);

	for (uint32_t i = 0; i < args->src_fd_n; i++)
		if (src_fds[i] == fd)
			return true;
	for (int i = 0; i < 3; i++)
		if (args->stdio_fds[i] == fd)
			return true;
	{
		const int32_t *obj_fds = array_at(args->obj_fd_off);

		for (uint32_t i = 0; i < args->obj_fd_n; i++)
			if (obj_fds[i] == fd)
				return true;
	}
	return (uint32_t)fd == args->report_fd;
}

static void restore_fds(void)
{
	const struct ea_fd *fds = array_at(args->fd_off);
	uint64_t nofile[2];

	/*
	 * The program's fds may be numbered above the soft limit of the esky
	 * that resumes it: open up to the hard limit for now (restore_limits
	 * sets the program's own limit afterwards).
	 */
	if (!sys_call(__NR_prlimit64, 0, 7 /* RLIMIT_NOFILE */, 0, nofile, 0, 0) &&
	    nofile[0] < nofile[1]) {
		nofile[0] = nofile[1];
		sys_call(__NR_prlimit64, 0, 7, nofile, 0, 0, 0);
	}

	/* Only the transport fds are open now (the monitor closed the rest). */
	for (uint32_t i = 0; i < args->fd_n; i++) {
		const struct ea_fd *f = &fds[i];
		long fd, r;

		if (is_transport_fd(f->fd))
			fail(EA_STEP_FDS, -16 /* EBUSY */, (uint64_t)f->fd, i);
		switch (f->kind) {
		case EA_FD_FILE:
			fd = sys_call(__NR_open, str_at(f->path_off), f->open_flags & ~O_CLOEXEC, 0,
				      0, 0, 0);
			break;
		case EA_FD_STDIO:
			fd = f->stdio_src >= 0 && f->stdio_src < 3 ? args->stdio_fds[f->stdio_src]
								  : -9 /* EBADF */;
			if (fd >= 0)
				fd = sys_call(__NR_dup, fd, 0, 0, 0, 0, 0);
			break;
		case EA_FD_DUP:
		case EA_FD_PASSED:
			fd = sys_call(__NR_dup, f->dup_of, 0, 0, 0, 0, 0);
			break;
		default:
			fd = -22;
		}
		if (fd < 0)
			fail(EA_STEP_FDS, fd, (uint64_t)f->fd, i);
		if (fd != f->fd) {
			r = sys_call(__NR_dup2, fd, f->fd, 0, 0, 0, 0);
			sys_call(__NR_close, fd, 0, 0, 0, 0, 0);
			if (r < 0)
				fail(EA_STEP_FDS, r, (uint64_t)f->fd, i);
		}
		/* A made object: its status flags (O_NONBLOCK...) as the program had them. */
		if (f->kind == EA_FD_PASSED) {
			r = sys_call(__NR_fcntl, f->fd, 4 /* F_SETFL */,
				     f->open_flags & (O_NONBLOCK | O_APPEND | 020000 /* O_ASYNC */),
				     0, 0, 0);
			if (r < 0)
				fail(EA_STEP_FDS, r, (uint64_t)f->fd, i);
		}
		if ((f->kind == EA_FD_FILE || f->kind == EA_FD_PASSED) && f->pos) {
			r = sys_call(__NR_lseek, f->fd, f->pos, 0 /* SEEK_SET */, 0, 0, 0);
			/* Pipes and character devices do not seek: nothing to restore. */
			if (r < 0 && r != -29 /* ESPIPE */)
				fail(EA_STEP_FDS, r, (uint64_t)f->fd, i);
		}
		if (f->cloexec)
			sys_call(__NR_fcntl, f->fd, F_SETFD, FD_CLOEXEC, 0, 0, 0);
	}
}

/* Registrations of the program's epoll instances, now that every fd is in place. */
static void restore_epolls(void)
{
	const struct ea_epoll_reg *regs = array_at(args->epoll_off);

	for (uint32_t i = 0; i < args->epoll_n; i++) {
		struct {
			uint32_t events;
			uint64_t data;
		} __attribute__((packed)) ev = { regs[i].events, regs[i].data };
		long r = sys_call(__NR_epoll_ctl, regs[i].epfd, 1 /* EPOLL_CTL_ADD */, regs[i].tfd,
				  &ev, 0, 0);

		if (r < 0)
			fail(EA_STEP_FDS, r, (uint64_t)regs[i].tfd, i);
	}
}

/*
 * Resource limits (after the fds and mappings, which a lowered limit must
 * not stop), nice value, timer slack, no_new_privs. Raising a hard limit
 * or the priority needs privileges esky may not have: then the limit is
 * kept as high as allowed, and the nice value as it is.
 */
static void restore_limits(void)
{
	for (uint32_t res = 0; res < args->rlimit_n && res < 16; res++) {
		uint64_t want[2] = { args->rlimits[res][0], args->rlimits[res][1] }, now[2];

		if (!sys_call(__NR_prlimit64, 0, res, want, 0, 0, 0))
			continue;
		if (sys_call(__NR_prlimit64, 0, res, 0, now, 0, 0))
			continue;
		want[1] = now[1];
		if (want[0] > want[1])
			want[0] = want[1];
		sys_call(__NR_prlimit64, 0, res, want, 0, 0, 0);
	}
	sys_call(__NR_setpriority, 0 /* PRIO_PROCESS */, 0, args->nice, 0, 0, 0);
	if (args->timer_slack)
		sys_call(__NR_prctl, PR_SET_TIMERSLACK, args->timer_slack, 0, 0, 0, 0);
	if (args->pdeath_sig)
		sys_call(__NR_prctl, PR_SET_PDEATHSIG, args->pdeath_sig, 0, 0, 0, 0);
	if (args->no_new_privs) {
		long r = sys_call(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);

		if (r)
			fail(EA_STEP_MISC, r, 0, 1);
	}
}

static void restore_misc(void)
{
	long r;

	if (args->cwd_off) {
		r = sys_call(__NR_chdir, str_at(args->cwd_off), 0, 0, 0, 0, 0);
		if (r)
			fail(EA_STEP_CWD, r, 0, 0);
	}
	sys_call(__NR_umask, args->umask, 0, 0, 0, 0, 0);
	sys_call(__NR_personality, args->personality, 0, 0, 0, 0, 0);
	if (args->comm_off)
		sys_call(__NR_prctl, PR_SET_NAME, str_at(args->comm_off), 0, 0, 0, 0);
	if (args->robust_list) {
		r = sys_call(__NR_set_robust_list, args->robust_list, args->robust_len, 0, 0, 0, 0);
		if (r)
			fail(EA_STEP_MISC, r, args->robust_list, 0);
	}
	if (args->clear_child_tid)
		sys_call(__NR_set_tid_address, args->clear_child_tid, 0, 0, 0, 0, 0);
	if (args->rseq_len) {
		r = sys_call(__NR_rseq, args->rseq_ptr, args->rseq_len, 0, args->rseq_sig, 0, 0);
		if (r)
			fail(EA_STEP_RSEQ, r, args->rseq_ptr, 0);
	}
	if (args->argv_len) {
		/* What ps shows: a page of its own, since the stack's copy is the program's. */
		uint64_t len = (args->argv_len + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
		long a = sys_call(__NR_mmap, 0, len, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (a < 0 && a > -4096)
			fail(EA_STEP_MM, a, 0, 1);
		memcpy((void *)a, str_at(args->argv_off), args->argv_len);
		args->mm.arg_start = (uint64_t)a;
		args->mm.arg_end = (uint64_t)a + args->argv_len;
	}
	args->mm.auxv = (uint64_t)(uintptr_t)args->auxv;
	args->mm.exe_fd = (uint32_t)-1;
	r = sys_call(__NR_prctl, PR_SET_MM, PR_SET_MM_MAP, &args->mm, sizeof(args->mm), 0, 0);
	if (r)
		fail(EA_STEP_MM, r, args->mm.start_brk, 0);
	restore_limits();
}

static void restore_signals(void)
{
	const struct ea_siginfo *pend = array_at(args->sig_off);
	long pid = sys_call(__NR_getpid, 0, 0, 0, 0, 0, 0);
	long tid = sys_call(__NR_gettid, 0, 0, 0, 0, 0, 0);

	for (int sig = 1; sig <= 64; sig++) {
		long r;

		if (!(args->sigaction_valid & (1ULL << (sig - 1))))
			continue;
		r = sys_call(__NR_rt_sigaction, sig, &args->sigactions[sig - 1], 0, 8, 0, 0);
		if (r)
			fail(EA_STEP_SIGNALS, r, (uint64_t)sig, 0);
	}
	if (!(args->altstack_flags & AGENT_SS_DISABLE) && args->altstack_size) {
		struct {
			uint64_t sp;
			int32_t flags;
			int32_t pad;
			uint64_t size;
		} ss = { args->altstack_sp, (int32_t)(args->altstack_flags & ~AGENT_SS_ONSTACK), 0,
			 args->altstack_size };
		long r = sys_call(__NR_sigaltstack, &ss, 0, 0, 0, 0, 0);

		if (r)
			fail(EA_STEP_SIGNALS, r, args->altstack_sp, 1);
	}
	/* All signals are blocked: queued ones stay pending until the monitor sets the mask. */
	for (uint32_t i = 0; i < args->sig_n; i++) {
		const struct ea_siginfo *s = &pend[i];
		int sig = *(const int32_t *)s->info;
		long r;

		if (!s->shared && s->thread)
			continue; /* another thread's: it queues it itself */
		if (s->shared)
			r = sys_call(__NR_rt_sigqueueinfo, pid, sig, s->info, 0, 0, 0);
		else
			r = sys_call(__NR_rt_tgsigqueueinfo, pid, tid, sig, s->info, 0, 0);
		if (r)
			fail(EA_STEP_SIGNALS, r, (uint64_t)sig, 2 + i);
	}
}

/*
 * Stop for the monitor (int3: SIGTRAP, SI_KERNEL). The kernel forces that
 * SIGTRAP through, and a forced signal the task blocks (all are, here) has
 * its handler reset to SIG_DFL: the program's own SIGTRAP handler would be
 * lost. So SIGTRAP alone is unblocked for the trap, unless one is pending
 * (restored with the program's state: it would be taken now, here); then
 * losing the handler is the lesser harm. The monitor sets the program's
 * mask afterwards.
 */
static void stop_for_monitor(void)
{
	uint64_t pending = 0, mask = ~AGENT_SIGTRAP_BIT;

	if (sys_call(__NR_rt_sigpending, &pending, 8, 0, 0, 0, 0) == 0 &&
	    !(pending & AGENT_SIGTRAP_BIT))
		sys_call(__NR_rt_sigprocmask, AGENT_SIG_SETMASK, &mask, 0, 8, 0, 0);
	arch_breakpoint();
}

static void restore_timers(void)
{
	for (int which = 0; which < 3; which++) {
		const struct ea_itimer *it = &args->itimers[which];
		long r;

		if (!it->value_sec && !it->value_usec)
			continue;
		r = sys_call(__NR_setitimer, which, it, 0, 0, 0, 0);
		if (r)
			fail(EA_STEP_TIMERS, r, (uint64_t)which, 0);
	}
}

/*
 * The other threads. Each is made with clone3 (its old tid with set_tid
 * when the monitor made a PID namespace for us), runs thread_main on a
 * small stack in the agent's zone with every signal blocked (inherited),
 * puts back what is the thread's own, tells the main thread it is done and
 * stops on int3. The monitor traces it from its creation
 * (PTRACE_O_TRACECLONE) and sets its registers, xstate and mask.
 */
#define AGENT_CLONE_THREAD_FLAGS 0x50f00UL /* VM FS FILES SIGHAND THREAD SYSVSEM */

struct agent_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};

long agent_clone3(struct agent_clone_args *ca, unsigned long size, void (*fn)(uint64_t),
		  uint64_t arg);

static volatile int32_t threads_ready;

static void thread_stack_fail(uint32_t index, long r)
{
	fail(EA_STEP_THREADS, r, 0, index);
}

static long drop_own_caps(void);

static void thread_main(uint64_t index)
{
	const struct ea_thread *th = (const struct ea_thread *)array_at(args->thread_off) + index;
	const struct ea_siginfo *pend = array_at(args->sig_off);
	long pid = sys_call(__NR_getpid, 0, 0, 0, 0, 0, 0);
	long tid = sys_call(__NR_gettid, 0, 0, 0, 0, 0, 0);
	long r;

	if (th->robust_list) {
		r = sys_call(__NR_set_robust_list, th->robust_list, th->robust_len, 0, 0, 0, 0);
		if (r)
			thread_stack_fail((uint32_t)index, r);
	}
	if (th->clear_child_tid)
		sys_call(__NR_set_tid_address, th->clear_child_tid, 0, 0, 0, 0, 0);
	if (th->rseq_len) {
		r = sys_call(__NR_rseq, th->rseq_ptr, th->rseq_len, 0, th->rseq_sig, 0, 0);
		if (r)
			thread_stack_fail((uint32_t)index, r);
	}
	if (!(th->altstack_flags & AGENT_SS_DISABLE) && th->altstack_size) {
		struct {
			uint64_t sp;
			int32_t flags;
			int32_t pad;
			uint64_t size;
		} ss = { th->altstack_sp, (int32_t)(th->altstack_flags & ~AGENT_SS_ONSTACK), 0,
			 th->altstack_size };

		r = sys_call(__NR_sigaltstack, &ss, 0, 0, 0, 0, 0);
		if (r)
			thread_stack_fail((uint32_t)index, r);
	}
	if (th->comm[0])
		sys_call(__NR_prctl, PR_SET_NAME, th->comm, 0, 0, 0, 0);
	for (uint32_t i = 0; i < args->sig_n; i++) {
		const struct ea_siginfo *s = &pend[i];

		if (s->shared || s->thread != index + 1)
			continue;
		r = sys_call(__NR_rt_tgsigqueueinfo, pid, tid, *(const int32_t *)s->info, s->info,
			     0, 0);
		if (r)
			thread_stack_fail((uint32_t)index, r);
	}
	/* The capabilities the namespace lent for set_tid: this thread's own set too. */
	r = drop_own_caps();
	if (r)
		thread_stack_fail((uint32_t)index, r);
	__atomic_add_fetch(&threads_ready, 1, __ATOMIC_SEQ_CST);
	sys_call(__NR_futex, &threads_ready, AGENT_FUTEX_WAKE, 1, 0, 0, 0);
	stop_for_monitor();
	for (;;)
		sys_call(__NR_exit_group, AGENT_EXIT_FAILED, 0, 0, 0, 0, 0);
}

static void make_threads(void)
{
	const struct ea_thread *ths = array_at(args->thread_off);
	uint64_t len = (uint64_t)args->thread_n * ESKY_AGENT_THREAD_STACK_SIZE;
	long r;

	if (!args->thread_n)
		return;
	if (args->thread_n > EA_MAX_THREADS)
		fail(EA_STEP_THREADS, -7 /* E2BIG */, 0, args->thread_n);
	r = sys_call(__NR_mmap, ESKY_AGENT_THREAD_STACKS, len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (r != (long)ESKY_AGENT_THREAD_STACKS)
		fail(EA_STEP_THREADS, r, ESKY_AGENT_THREAD_STACKS, 0);
	for (uint32_t i = 0; i < args->thread_n; i++) {
		int32_t tid = ths[i].tid;
		struct agent_clone_args ca = {
			.flags = AGENT_CLONE_THREAD_FLAGS,
			.stack = ESKY_AGENT_THREAD_STACKS + i * ESKY_AGENT_THREAD_STACK_SIZE,
			.stack_size = ESKY_AGENT_THREAD_STACK_SIZE,
			.set_tid = (uint64_t)(uintptr_t)&tid,
			.set_tid_size = (args->flags & EA_F_SET_TID) ? 1 : 0,
		};

		if (!ca.set_tid_size)
			ca.set_tid = 0;
		r = agent_clone3(&ca, sizeof(ca), thread_main, i);
		if (r < 0)
			fail(EA_STEP_THREADS, r, (uint64_t)tid, i);
	}
	/* Wait until each has put back its own state (it then stops for the monitor). */
	for (;;) {
		int32_t n = __atomic_load_n(&threads_ready, __ATOMIC_SEQ_CST);

		if ((uint32_t)n >= args->thread_n)
			break;
		sys_call(__NR_futex, &threads_ready, AGENT_FUTEX_WAIT, n, 0, 0, 0);
	}
}

/* The capabilities a PID namespace lent us for set_tid: the program never has them. */
static long drop_own_caps(void)
{
	struct {
		uint32_t version;
		int32_t pid;
	} hdr = { 0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0 };
	uint32_t data[6] = { 0, 0, 0, 0, 0, 0 };

	if (!(args->flags & EA_F_DROP_CAPS))
		return 0;
	sys_call(__NR_prctl, AGENT_PR_CAP_AMBIENT, AGENT_PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0);
	return sys_call(__NR_capset, &hdr, data, 0, 0, 0, 0);
}

/* Capabilities are per thread: each thread drops its own (thread_main), this the main one's. */
static void drop_caps(void)
{
	long r = drop_own_caps();

	if (r)
		fail(EA_STEP_THREADS, r, 0, 0xffffffffu);
}

static void close_transports(void)
{
	const int32_t *src_fds = array_at(args->src_fd_off);

	for (uint32_t i = 0; i < args->src_fd_n; i++)
		sys_call(__NR_close, src_fds[i], 0, 0, 0, 0, 0);
	for (int i = 0; i < 3; i++)
		if (args->stdio_fds[i] >= 0)
			sys_call(__NR_close, args->stdio_fds[i], 0, 0, 0, 0, 0);
	{
		const int32_t *obj_fds = array_at(args->obj_fd_off);

		for (uint32_t i = 0; i < args->obj_fd_n; i++)
			sys_call(__NR_close, obj_fds[i], 0, 0, 0, 0, 0);
	}
	sys_call(__NR_close, args->report_fd, 0, 0, 0, 0, 0);
}

void agent_main(uint64_t *sp)
{
	uint64_t all = ~0ULL;
	char **argv = (char **)(sp + 1);

	if (sp[0] < 3)
		fail(EA_STEP_ARGS, -22, 0, 0);
	/* Nothing may interrupt us half-way: block every signal first. */
	sys_call(__NR_rt_sigprocmask, AGENT_SIG_SETMASK, &all, 0, 8, 0, 0);
	/*
	 * Signals the process got before it became the program (the SIGCHLD
	 * of a zombie child made for a process tree) are not the program's:
	 * its own pending signals are queued again from the image.
	 */
	{
		struct { long sec, nsec; } now = { 0, 0 };
		char info[128];

		while (sys_call(__NR_rt_sigtimedwait, &all, info, &now, 8, 0, 0) > 0)
			;
	}
	map_args((int)parse_dec(argv[1]), parse_dec(argv[2]));
	clear_address_space();
	create_vmas();
	lazy_handoff();
	restore_fds();
	restore_epolls();
	restore_misc();
	restore_signals();
	make_threads();
	drop_caps();
	close_transports();
	/* Timers last: the less time between them and the program, the better. */
	restore_timers();
	stop_for_monitor();
	/* The monitor never resumes us here; if it does, do no harm. */
	for (;;)
		sys_call(__NR_exit_group, AGENT_EXIT_FAILED, 0, 0, 0, 0, 0);
}
