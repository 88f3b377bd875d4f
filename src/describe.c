/* What `esky info` prints, see describe.h. */
#include "describe.h"
#include "fdobj.h"
#include "arch.h"
#include "fileid.h"
#include "log.h"
#include "util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

const char *esky_describe_prot(uint32_t prot, bool shared, char buf[5])
{
	buf[0] = prot & PROT_READ ? 'r' : '-';
	buf[1] = prot & PROT_WRITE ? 'w' : '-';
	buf[2] = prot & PROT_EXEC ? 'x' : '-';
	buf[3] = shared ? 's' : 'p';
	buf[4] = '\0';
	return buf;
}

static const char *vma_kind_name(uint32_t kind)
{
	switch (kind) {
	case ESKY_IMG_VMA_ANON:
		return "anonymous";
	case ESKY_IMG_VMA_FILE_PRIVATE:
		return "file";
	case ESKY_IMG_VMA_FILE_SHARED:
		return "shared file";
	case ESKY_IMG_VMA_SHARED_ANON:
		return "shared anonymous";
	case ESKY_IMG_VMA_VDSO:
		return "[vdso]";
	case ESKY_IMG_VMA_VVAR:
		return "[vvar]";
	case ESKY_IMG_VMA_SYSV_SHM:
		return "System V shared memory";
	default:
		return "[vvar_vclock]";
	}
}

/* Stored and referenced pages of [start, end). */
static void count_pages(const struct esky_image_view *v, uint64_t start, uint64_t end,
			uint64_t *stored, uint64_t *parent)
{
	*stored = *parent = 0;
	for (size_t i = 0; i < v->run_n; i++) {
		const struct esky_img_pagerun *r = &v->runs[i];

		if (r->vaddr < start || r->vaddr >= end)
			continue;
		if (r->kind == ESKY_IMG_PAGES_DATA)
			*stored += r->npages;
		else if (r->kind == ESKY_IMG_PAGES_PARENT)
			*parent += r->npages;
	}
}

static void flags_text(unsigned flags, char *buf, size_t n)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ O_APPEND, "O_APPEND" }, { O_NONBLOCK, "O_NONBLOCK" }, { O_CLOEXEC, "O_CLOEXEC" },
		{ O_DIRECTORY, "O_DIRECTORY" }, { O_SYNC, "O_SYNC" }, { O_DIRECT, "O_DIRECT" },
		{ O_PATH, "O_PATH" }, { O_NOATIME, "O_NOATIME" },
	};
	const char *acc = (flags & O_ACCMODE) == O_RDONLY ? "O_RDONLY"
			  : (flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
							    : "O_RDWR";

	snprintf(buf, n, "%s", acc);
	for (size_t i = 0; i < ESKY_ARRAY_SIZE(names); i++)
		if ((flags & names[i].bit) == names[i].bit && names[i].bit != O_SYNC - O_DSYNC)
			snprintf(buf + strlen(buf), n - strlen(buf), "|%s", names[i].name);
}

/* A Unix socket: type, name, peer's fd, what is queued to it, shutdown. */
static void describe_unix(const struct esky_image *img, const struct esky_img_fdobj *o, FILE *out)
{
	static const char *const types[] = { "?", "stream", "datagram", "seqpacket" };
	const struct esky_image_view *v = esky_image_view(img);
	struct esky_img_unix h;
	const char *name;

	/* (The reader checked the record: its bytes start with the header.) */
	memcpy(&h, v->blobs + o->data_off, sizeof(h));
	name = (const char *)v->blobs + o->data_off + sizeof(h);
	fprintf(out, " (%s)", types[o->v[0] <= 3 ? o->v[0] : 0]);
	if (*esky_image_str(img, o->name))
		fprintf(out, " at %s", esky_image_str(img, o->name));
	else if (h.name_len && name[0])
		fprintf(out, " at %.*s", (int)strnlen(name, h.name_len), name);
	else if (h.name_len)
		fprintf(out, " at @%.*s", (int)(h.name_len - 1), name + 1);
	if (o->kind == ESKY_IMG_OBJ_UNIX_LISTEN) {
		fprintf(out, ", backlog %" PRIu64, o->v[1]);
		return;
	}
	for (size_t i = 0; i < v->fdobj_n && o->v[1]; i++) {
		if (v->fdobjs[i].kind != ESKY_IMG_OBJ_UNIX || v->fdobjs[i].id != o->v[1])
			continue;
		for (size_t k = 0; k < v->fd_n; k++)
			if (v->fds[k].kind == ESKY_IMG_FD_OBJECT && (size_t)v->fds[k].file == i) {
				fprintf(out, ", peer fd %d", v->fds[k].fd);
				break;
			}
	}
	if (o->v[2] & ESKY_IMG_UNIXF_PEER_GONE)
		fprintf(out, ", peer gone");
	if (h.msg_n) {
		uint64_t bytes = o->data_len - sizeof(h) - h.name_len - 4 * (uint64_t)h.msg_n;

		/* (A stream's bytes are saved in the pieces one peek gave: not messages.) */
		if (o->v[0] == ESKY_IMG_UNIX_STREAM)
			fprintf(out, ", %" PRIu64 " bytes queued", bytes);
		else
			fprintf(out, ", %u message%s queued (%" PRIu64 " bytes)", h.msg_n,
				h.msg_n == 1 ? "" : "s", bytes);
	}
	if (o->v[2] & (ESKY_IMG_UNIXF_SHUT_RD | ESKY_IMG_UNIXF_SHUT_WR))
		fprintf(out, ", shut down for %s",
			(o->v[2] & ESKY_IMG_UNIXF_SHUT_RD) && (o->v[2] & ESKY_IMG_UNIXF_SHUT_WR)
				? "reading and writing"
			: (o->v[2] & ESKY_IMG_UNIXF_SHUT_RD) ? "reading"
							      : "writing");
}

/* One fd that is an object (pipe, eventfd, ...): its kind and its state. */
/* An fd of a process of a tree that shares another process's open file or object. */
static void describe_peer_fd(const struct esky_image *img, const struct esky_img_fd *f,
			     const char *fl, FILE *out)
{
	const struct esky_tree_header *t = esky_image_tree(img);
	unsigned pid = t && f->file >= 0 && (uint32_t)f->file < t->proc_n ? t->procs[f->file].pid : 0;

	if (f->kind == ESKY_IMG_FD_PEER)
		fprintf(out, "  fd %-3d same open file as fd %d of process %u\n", f->fd, f->dup_of,
			pid);
	else
		fprintf(out, "  fd %-3d %s end of object %d of process %u  %s\n", f->fd,
			(f->flags & O_ACCMODE) == O_WRONLY ? "write" : "read", f->dup_of, pid, fl);
}

static void describe_object(const struct esky_image *img, const struct esky_img_fd *f,
			    const char *fl, FILE *out)
{
	const struct esky_img_fdobj *o = &esky_image_view(img)->fdobjs[f->file];

	fprintf(out, "  fd %-3d %s", f->fd, esky_fdobj_kind_name(o->kind));
	switch (o->kind) {
	case ESKY_IMG_OBJ_PIPE:
		fprintf(out, " %s end, %" PRIu64 " bytes in flight",
			esky_fdobj_end(o, f->flags) ? "write" : "read", o->data_len);
		break;
	case ESKY_IMG_OBJ_EVENTFD:
		fprintf(out, " counter %" PRIu64 "%s", o->v[0], o->v[1] ? " (semaphore)" : "");
		break;
	case ESKY_IMG_OBJ_TIMERFD:
		if (o->v[2])
			fprintf(out, " clock %" PRIu64 ", next in %.3f s, every %.3f s", o->v[0],
				(double)o->v[2] / 1e9, (double)o->v[3] / 1e9);
		else
			fprintf(out, " clock %" PRIu64 ", disarmed", o->v[0]);
		break;
	case ESKY_IMG_OBJ_SIGNALFD:
		fprintf(out, " mask 0x%" PRIx64, o->v[0]);
		break;
	case ESKY_IMG_OBJ_EPOLL:
		fprintf(out, " watching %" PRIu64 " fds",
			o->data_len / sizeof(struct esky_img_epoll_reg));
		break;
	case ESKY_IMG_OBJ_UNIX:
	case ESKY_IMG_OBJ_UNIX_LISTEN:
		describe_unix(img, o, out);
		break;
	case ESKY_IMG_OBJ_INOTIFY:
		fprintf(out, " %" PRIu64 " watch%s", o->v[0], o->v[0] == 1 ? "" : "es");
		break;
	default:
		fprintf(out, " %s, %" PRIu64 " bytes saved", esky_image_str(img, o->name), o->data_len);
		break;
	}
	fprintf(out, "  %s  pos %" PRIu64 "\n", fl, f->pos);
}

/*
 * The threads: a count with the main thread first (its tid is the pid),
 * then the others' tids, the first few only unless verbose; verbose lists
 * each thread with its name and registers. Nothing for one thread, as
 * before format 3.
 */
static void describe_threads(const struct esky_image_view *v, bool verbose, FILE *out)
{
	const size_t shown = 8;
	char regs[128];

	if (!v->thread_n)
		return;
	fprintf(out, "threads     %zu (tids %u", v->thread_n + 1, v->core->pid);
	for (size_t i = 0; i < v->thread_n && (verbose || i < shown); i++)
		fprintf(out, " %u", v->threads[i].tid);
	if (!verbose && v->thread_n > shown)
		fprintf(out, " and %zu more", v->thread_n - shown);
	fprintf(out, ")\n");
	for (size_t i = 0; verbose && i < v->thread_n; i++) {
		const struct esky_img_thread *th = &v->threads[i];
		size_t pending = 0;

		for (size_t k = 0; k < v->sig_n; k++)
			if (v->sigs[k].thread == i + 1)
				pending++;
		/* (The reader checked that comm is terminated.) */
		arch_regs_summary((const esky_regs_t *)th->regs, regs, sizeof(regs));
		fprintf(out, "  tid %-7u %-16s %s, blocked 0x%" PRIx64 ", %zu pending\n", th->tid,
			th->comm, regs, th->sig_blocked, pending);
	}
}

/* How a zombie of a tree ended: "exit status 3", "killed by SIGKILL". */
static void describe_wait_status(int32_t status, FILE *out)
{
	if (WIFEXITED(status)) {
		fprintf(out, "exit status %d", WEXITSTATUS(status));
	} else {
		const char *name = sigabbrev_np(WTERMSIG(status));

		if (name)
			fprintf(out, "killed by SIG%s", name);
		else
			fprintf(out, "killed by signal %d", WTERMSIG(status));
		if (WCOREDUMP(status))
			fprintf(out, ", core dumped");
	}
}

/*
 * The processes of a tree file, in table order: "processes   3: 4711
 * (root), 4712 (child of 4711), 4713 (zombie of 4712, exit status 3)".
 */
static void describe_tree(const struct esky_tree_header *t, FILE *out)
{
	fprintf(out, "processes   %u:", t->proc_n);
	for (uint32_t i = 0; i < t->proc_n; i++) {
		const struct esky_tree_proc *p = &t->procs[i];

		fprintf(out, "%s %u (", i ? "," : "", p->pid);
		if (!i) {
			fprintf(out, "root)");
		} else if (p->flags & ESKY_TREE_ZOMBIE) {
			fprintf(out, "zombie of %u, ", p->ppid);
			describe_wait_status(p->status, out);
			fprintf(out, ")");
		} else {
			fprintf(out, "%schild of %u)", p->flags & ESKY_TREE_STOPPED ? "stopped " : "",
				p->ppid);
		}
	}
	fprintf(out, "\n");
}

/*
 * One image. The first line names the file (a plain image, or the root of
 * a tree: the whole file's size, then its processes after the program's
 * lines) or, for a member of a tree (member: its index), the process and
 * where its image lies in the file.
 */
static void describe_one(const struct esky_image *img, bool verbose, size_t member, FILE *out)
{
	const struct esky_image_view *v = esky_image_view(img);
	const struct esky_tree_header *tree = esky_image_tree(img);
	const struct esky_img_core *c = v->core;
	const esky_regs_t *regs = (const esky_regs_t *)c->regs;
	char when[64], size[32], prot[5], *host, *kernel, *ver;
	time_t secs = (time_t)(v->hdr->created_ns / 1000000000ULL);
	uint64_t stored = 0, parent = 0, anon = 0, file = 0, shared = 0, special = 0;
	struct tm tm;
	int handlers = 0, nsig = 0;

	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	host = esky_image_meta(img, "hostname");
	kernel = esky_image_meta(img, "kernel");
	ver = esky_image_meta(img, "esky");
	if (member) {
		const struct esky_tree_proc *p = &tree->procs[member];

		fprintf(out, "process     %u (child of %u): image of %s at offset %" PRIu64
			", format %u%s%s\n", p->pid, p->ppid,
			esky_fmt_size(v->file_size, size, sizeof(size)), p->offset, v->hdr->version,
			ver ? ", esky " : "", ver ? ver : "");
	} else {
		fprintf(out, "checkpoint  %s (%s, format %u%s%s)\n", v->path,
			esky_fmt_size(tree ? tree->file_size : v->file_size, size, sizeof(size)),
			v->hdr->version, ver ? ", esky " : "", ver ? ver : "");
	}
	fprintf(out, "program     %s (pid %u, %s)\n",
		c->exe_file != UINT32_MAX ? esky_image_str(img, v->files[c->exe_file].path) : "?",
		c->pid, c->comm);
	fprintf(out, "command     %s\n", esky_image_str(img, c->cmdline));
	if (tree && !member)
		describe_tree(tree, out);
	fprintf(out, "taken       %s%s%s%s%s, after %.3f s of run time\n", when, host ? " on " : "",
		host ? host : "", kernel ? ", kernel " : "", kernel ? kernel : "",
		(double)c->run_ns / 1e9);
	if (v->hdr->flags & ESKY_IMGF_INCREMENTAL) {
		char *how = esky_image_meta(img, "changed-pages");

		const struct esky_tree_header *t = esky_image_tree(img);

		/* A process of a tree: its parent process's image in the same file. */
		if (t && c->pid != t->procs[0].pid)
			fprintf(out, "parent      its parent process's image in this file (pages it "
				"shares with it are stored there)\n");
		else
			fprintf(out, "parent      %s (pages it shares with this one are stored there)\n",
				esky_image_str(img, v->hdr->parent_hint));
		if (how)
			fprintf(out, "changes     found by %s\n", how);
		free(how);
	}
	fprintf(out, "directory   %s\n", esky_image_str(img, c->cwd));
	arch_regs_summary(regs, when, sizeof(when));
	fprintf(out, "registers   %s\n", when);
	describe_threads(v, verbose, out);
	for (size_t i = 0; i < v->vma_n; i++) {
		const struct esky_img_vma *m = &v->vmas[i];

		if (m->kind == ESKY_IMG_VMA_ANON)
			anon++;
		else if (m->kind == ESKY_IMG_VMA_FILE_PRIVATE)
			file++;
		else if (m->kind == ESKY_IMG_VMA_FILE_SHARED || m->kind == ESKY_IMG_VMA_SHARED_ANON ||
			 m->kind == ESKY_IMG_VMA_SYSV_SHM)
			shared++;
		else
			special++;
	}
	count_pages(v, 0, UINT64_MAX, &stored, &parent);
	fprintf(out, "memory      %s stored in %" PRIu64 " pages", esky_fmt_size(stored * 4096, size,
		sizeof(size)), stored);
	if (parent)
		fprintf(out, ", %" PRIu64 " pages from the parent", parent);
	fprintf(out, "\n");
	fprintf(out, "mappings    %zu (%" PRIu64 " anonymous, %" PRIu64 " file, %" PRIu64 " shared, %"
		PRIu64 " kernel)\n", v->vma_n, anon, file, shared, special);
	for (size_t i = 0; verbose && i < v->vma_n; i++) {
		const struct esky_img_vma *m = &v->vmas[i];
		uint64_t s, p;
		const char *what = m->file >= 0 && m->kind != ESKY_IMG_VMA_SYSV_SHM
			? esky_image_str(img, v->files[m->file].path)
			: m->flags & ESKY_IMG_VMAF_HEAP ? "[heap]"
			: m->flags & ESKY_IMG_VMAF_STACK ? "[stack]"
			: vma_kind_name(m->kind);

		count_pages(v, m->start, m->end, &s, &p);
		fprintf(out, "  %012" PRIx64 "-%012" PRIx64 " %s %8" PRIx64 " %-40s %" PRIu64 " pages saved",
			m->start, m->end,
			esky_describe_prot(m->prot, m->kind == ESKY_IMG_VMA_FILE_SHARED ||
						    m->kind == ESKY_IMG_VMA_SHARED_ANON ||
						    m->kind == ESKY_IMG_VMA_SYSV_SHM, prot),
			m->pgoff, what, s);
		if (p)
			fprintf(out, ", %" PRIu64 " from parent", p);
		fprintf(out, "\n");
	}
	fprintf(out, "open files  %zu\n", v->fd_n);
	for (size_t i = 0; i < v->fd_n; i++) {
		const struct esky_img_fd *f = &v->fds[i];
		char fl[128];
		static const char *const stdio_names[] = { "stdin", "stdout", "stderr" };

		flags_text(f->flags, fl, sizeof(fl));
		if (f->kind == ESKY_IMG_FD_STDIO)
			fprintf(out, "  fd %-3d esky's %s\n", f->fd, stdio_names[f->stdio_src]);
		else if (f->kind == ESKY_IMG_FD_DUP)
			fprintf(out, "  fd %-3d same open file as fd %d\n", f->fd, f->dup_of);
		else if (f->kind == ESKY_IMG_FD_OBJECT)
			describe_object(img, f, fl, out);
		else if (f->kind == ESKY_IMG_FD_PEER || f->kind == ESKY_IMG_FD_PEER_OBJECT)
			describe_peer_fd(img, f, fl, out);
		else
			fprintf(out, "  fd %-3d %s  %s  pos %" PRIu64 "\n", f->fd,
				esky_image_str(img, v->files[f->file].path), fl, f->pos);
	}
	if (verbose) {
		fprintf(out, "depends on  %zu files\n", v->file_n);
		for (size_t i = 0; i < v->file_n; i++) {
			const struct esky_img_file *f = &v->files[i];
			char id[72];

			fprintf(out, "  %s  size %" PRIu64, esky_image_str(img, f->path), f->size);
			if (!esky_fileid_build_id_hex(f, id, sizeof(id)))
				fprintf(out, "  build-id %s", id);
			if (f->flags & ESKY_IMG_FILEF_WRITTEN)
				fprintf(out, "  (written by the program)");
			fprintf(out, "\n");
		}
	}
	for (int s = 1; s <= 64; s++)
		if (c->sigaction_valid & (1ULL << (s - 1)) && c->sigactions[s - 1].handler > 1)
			handlers++;
	for (size_t i = 0; i < v->sig_n; i++)
		nsig++;
	fprintf(out, "signals     %d handler%s, blocked 0x%" PRIx64 ", %d pending\n", handlers,
		handlers == 1 ? "" : "s", c->sig_blocked, nsig);
	for (int w = 0; w < 3; w++) {
		static const char *const names[] = { "ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF" };
		const struct esky_img_itimer *it = &c->itimers[w];

		if (it->value_sec || it->value_usec)
			fprintf(out, "timer       %s in %" PRIu64 ".%06" PRIu64 " s, every %" PRIu64
				".%06" PRIu64 " s\n", names[w], it->value_sec, it->value_usec,
				it->interval_sec, it->interval_usec);
	}
	free(host);
	free(kernel);
	free(ver);
}

void esky_describe_image(const struct esky_image *img, bool verbose, FILE *out)
{
	const struct esky_tree_header *tree = esky_image_tree(img);

	describe_one(img, verbose, 0, out);
	/* -v on a tree: each live process's image after the root's, as the root's. */
	for (size_t i = 1; tree && verbose && i < tree->proc_n; i++) {
		struct esky_image *m;

		if (tree->procs[i].flags & ESKY_TREE_ZOMBIE)
			continue;
		fprintf(out, "\n");
		esky_error_clear();
		if (esky_image_open_member(img, i, &m)) {
			/* (The open of the tree checked every image: only a changed file gets here.) */
			fprintf(out, "process     %u: %s\n", tree->procs[i].pid,
				esky_last_error() ? esky_last_error() : "cannot be read");
			continue;
		}
		describe_one(m, verbose, i, out);
		esky_image_close(m);
	}
}
