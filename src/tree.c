/* Freezing a process tree, see tree.h. */
#include "tree.h"
#include "image.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The page hashes of a parent's image (written before its children's), for
 * a child's pages that are the same: copy-on-write pages a fork left
 * shared are stored once, in the parent's image.
 */
struct parent_pages {
	const char *path;       /* the parent's image, complete when first asked */
	struct esky_page_hash *h;
	size_t n;
	bool loaded;
};

struct member {
	pid_t pid;              /* as we see it */
	struct esky_proc_stat st;
	int parent;             /* its parent's index (live), -1 for none */
	struct parent_pages pp; /* its parent's pages */
	struct esky_tracee *t;  /* live ones; the root's is the caller's */
	struct esky_dump *d;
	char *path;             /* its image, beside the tree file until it is copied in */
	int lock;               /* that file, flocked while it is ours (0: not open) */
};

static bool parent_page(void *ctx, uint64_t vaddr, uint64_t *hash)
{
	struct parent_pages *pp = ctx;
	size_t lo = 0, hi;

	if (!pp->loaded) {
		struct esky_image *img;

		pp->loaded = true;
		if (esky_image_open(pp->path, &img) == 0) {
			if (esky_image_page_hashes(&img, 1, &pp->h, &pp->n))
				pp->n = 0;
			esky_image_close(img);
		} else {
			esky_error_clear();
		}
	}
	hi = pp->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (pp->h[mid].vaddr < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < pp->n && pp->h[lo].vaddr == vaddr) {
		*hash = pp->h[lo].hash;
		return true;
	}
	return false;
}

/* ".NAME.procI.esky-tmp.member" beside path (esky_outfile_clean's pattern). */
static int member_path(const char *path, size_t i, char **out)
{
	const char *slash = strrchr(path, '/');

	if (slash)
		return asprintf(out, "%.*s/.%s.proc%zu.esky-tmp.member", (int)(slash - path), path,
				slash + 1, i);
	return asprintf(out, ".%s.proc%zu.esky-tmp.member", path, i);
}

bool esky_tree_has_children(pid_t pid)
{
	int *kids;
	size_t n;

	if (esky_proc_children(pid, &kids, &n))
		return false;
	free(kids);
	return n > 0;
}

void esky_tree_kill_descendants(pid_t root)
{
	pid_t *all = NULL;
	size_t n = 0, cap = 0;

	/* Gathered first (stopped ones may not be waited on by us), then killed all at once. */
	for (size_t i = 0; i <= n; i++) {
		pid_t p = i ? all[i - 1] : root;
		int *kids;
		size_t nk;

		if (esky_proc_children(p, &kids, &nk))
			continue;
		for (size_t k = 0; k < nk; k++) {
			if (n == cap) {
				pid_t *na = realloc(all, (cap ? cap * 2 : 16) * sizeof(*all));

				if (!na)
					break;
				all = na;
				cap = cap ? cap * 2 : 16;
			}
			all[n++] = kids[k];
		}
		free(kids);
	}
	for (size_t i = 0; i < n; i++)
		kill(all[i], SIGKILL);
	free(all);
}

/* The descendants of m[0], breadth first (a parent before its children). */
static int collect(struct member **out, size_t *count)
{
	struct member *m = *out;
	size_t n = 1;
	int ret = 0;

	for (size_t i = 0; i < n && !ret; i++) {
		int *kids;
		size_t nk;

		if (m[i].st.state == 'Z' || esky_proc_children(m[i].pid, &kids, &nk))
			continue;
		for (size_t k = 0; k < nk && !ret; k++) {
			struct member *nm;

			if (n == ESKY_TREE_MAX_PROCS) {
				ret = esky_error(-EOPNOTSUPP, "pid %d has more than %u processes under "
						 "it: esky saves trees of %u at most", m[0].pid,
						 ESKY_TREE_MAX_PROCS - 1, ESKY_TREE_MAX_PROCS);
				break;
			}
			nm = realloc(m, (n + 1) * sizeof(*m));
			if (!nm) {
				ret = -ENOMEM;
				break;
			}
			m = nm;
			memset(&m[n], 0, sizeof(m[n]));
			m[n].pid = kids[k];
			if (esky_proc_read_stat(kids[k], &m[n].st))
				continue; /* gone meanwhile */
			n++;
		}
		free(kids);
	}
	*out = m;
	*count = n;
	return ret;
}

/* The pid as the program sees it (its own PID namespace's, when it runs in one). */
static uint32_t ns_pid(pid_t pid)
{
	struct esky_proc_status st;

	return esky_proc_read_status(pid, &st) == 0 && st.nspid > 0 ? (uint32_t)st.nspid
								     : (uint32_t)pid;
}

/* The tree's process whose pid (ours) is pid, as the program sees it; 0 if none. */
static uint32_t member_ns_pid(const struct member *m, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].pid == pid)
			return ns_pid(pid);
	return 0;
}

/*
 * What the dumps of the processes need to know of the others: the pipe
 * ends and the sockets each holds.
 */
static int shared_state(const struct member *m, size_t n, struct esky_dump_tree *tree)
{
	ino_t *pino = NULL, *sock = NULL;
	uint8_t *pend = NULL;
	size_t np = 0, nsock = 0;
	int ret = 0;

	for (size_t i = 0; i < n && !ret; i++) {
		int *fds;
		size_t nfd;

		if (m[i].st.state == 'Z' || esky_proc_list_fds(m[i].pid, &fds, &nfd))
			continue;
		for (size_t k = 0; k < nfd && !ret; k++) {
			char what[32], *link = NULL;
			struct esky_fdinfo fi;
			size_t p;

			snprintf(what, sizeof(what), "fd/%d", fds[k]);
			if (!esky_proc_readlink(m[i].pid, what, &link) &&
			    !strncmp(link, "socket:[", 8)) {
				ino_t *ns = realloc(sock, (nsock + 1) * sizeof(*sock));

				if (!ns) {
					free(link);
					ret = -ENOMEM;
					break;
				}
				sock = ns;
				sock[nsock++] = (ino_t)strtoull(link + 8, NULL, 10);
			}
			if (!link || strncmp(link, "pipe:[", 6) ||
			    esky_proc_read_fdinfo(m[i].pid, fds[k], &fi)) {
				free(link);
				continue;
			}
			for (p = 0; p < np; p++)
				if (pino[p] == (ino_t)strtoull(link + 6, NULL, 10))
					break;
			if (p == np) {
				ino_t *ni = realloc(pino, (np + 1) * sizeof(*pino));
				uint8_t *ne = ni ? realloc(pend, (np + 1) * sizeof(*pend)) : NULL;

				if (ni)
					pino = ni;
				if (!ne) {
					free(link);
					ret = -ENOMEM;
					break;
				}
				pend = ne;
				pino[np] = (ino_t)strtoull(link + 6, NULL, 10);
				pend[np++] = 0;
			}
			pend[p] |= (fi.flags & O_ACCMODE) == O_WRONLY ? 2 : 1;
			free(link);
		}
		free(fds);
	}
	tree->pipe_ino = pino;
	tree->pipe_ends = pend;
	tree->pipe_n = np;
	tree->sock_ino = sock;
	tree->sock_n = nsock;
	return ret;
}

int esky_tree_checkpoint(struct esky_tracee *root, const char *path,
			 const struct esky_dump_opts *o, struct esky_dump_stats *stats)
{
	struct member *m = calloc(1, sizeof(*m));
	struct esky_tree_proc procs[ESKY_TREE_MAX_PROCS];
	const char *member_paths[ESKY_TREE_MAX_PROCS];
	struct esky_dump_tree tree = { 0 };
	pid_t pids[ESKY_TREE_MAX_PROCS];
	size_t n = 0;
	int ret;

	if (!m)
		return -ENOMEM;
	memset(stats, 0, sizeof(*stats));
	m[0].pid = esky_tracee_pid(root);
	m[0].t = root;
	ret = esky_proc_read_stat(m[0].pid, &m[0].st);
	if (!ret)
		ret = collect(&m, &n);
	/* Every live one stopped before anything is read. */
	for (size_t i = 1; i < n && !ret; i++)
		if (m[i].st.state != 'Z')
			ret = esky_tracee_attach(m[i].pid, &m[i].t);
	if (!ret)
		ret = shared_state(m, n, &tree);
	memset(procs, 0, sizeof(procs));
	for (size_t i = 0; i < n && !ret; i++) {
		struct esky_tree_proc *p = &procs[i];

		p->pid = ns_pid(m[i].pid);
		p->ppid = i ? member_ns_pid(m, n, m[i].st.ppid) : 0;
		p->pgid = member_ns_pid(m, n, m[i].st.pgrp);
		p->sid = member_ns_pid(m, n, m[i].st.session);
		pids[i] = 0;
		if (m[i].st.state == 'Z') {
			p->flags = ESKY_TREE_ZOMBIE;
			p->status = m[i].st.exit_code;
			member_paths[i] = NULL;
			continue;
		}
		pids[i] = m[i].pid;
		/* Stopped by a job-control signal (a child the program stopped): stopped again after. */
		if (i && m[i].st.state == 'T')
			p->flags |= ESKY_TREE_STOPPED;
	}
	tree.pids = pids;
	tree.n = n;
	/* Each live one's image beside the tree file, prepared in table order (shared files, pipes). */
	for (size_t i = 0; i < n && !ret; i++) {
		struct esky_dump_opts po = *o;

		if (m[i].st.state == 'Z')
			continue;
		/*
		 * Named as a temporary file (".NAME...esky-tmp.XXXXXX") and locked
		 * once written, until the tree file holds it: a checkpoint killed
		 * on the way leaves it unlocked, and the next writer in the
		 * directory removes it (esky_outfile_clean).
		 */
		if (member_path(path, i, &m[i].path) < 0) {
			m[i].path = NULL;
			ret = -ENOMEM;
			break;
		}
		member_paths[i] = m[i].path;
		po.fork_copy = false;
		po.parent_id = NULL;
		po.parent_hint = NULL;
		po.parent_hash = NULL;
		po.page_unchanged = NULL;
		if (i) {
			po.patches = NULL;
			po.patch_n = 0;
		}
		tree.self = i;
		po.tree = &tree;
		/* Pages the same as its parent's (copy-on-write since the fork): the parent's. */
		m[i].parent = -1;
		for (size_t k = 0; i && k < i; k++)
			if (m[k].pid == m[i].st.ppid && m[k].d)
				m[i].parent = (int)k;
		if (m[i].parent >= 0) {
			m[i].pp.path = m[m[i].parent].path;
			po.parent_id = esky_dump_id(m[m[i].parent].d);
			po.parent_hint = strrchr(m[i].pp.path, '/') ? strrchr(m[i].pp.path, '/') + 1
								  : m[i].pp.path;
			po.parent_hash = parent_page;
			po.parent_ctx = &m[i].pp;
		}
		ret = esky_dump_prepare(m[i].t, m[i].path, &po, &m[i].d);
	}
	for (size_t i = 0; i < n && !ret; i++) {
		struct esky_dump_stats st;

		if (!m[i].d)
			continue;
		ret = esky_dump_write(m[i].d, &st);
		if (!ret) {
			m[i].lock = open(m[i].path, O_RDONLY | O_CLOEXEC);
			if (m[i].lock >= 0)
				flock(m[i].lock, LOCK_EX);
		}
		stats->prepare_ns += st.prepare_ns;
		stats->write_ns += st.write_ns;
		stats->pages_stored += st.pages_stored;
	}
	if (!ret)
		ret = esky_image_tree_write(path, procs, n, member_paths);
	if (!ret) {
		struct stat sb;

		if (stat(path, &sb) == 0)
			stats->file_size = (uint64_t)sb.st_size;
	}
	for (size_t i = 0; i < n; i++) {
		free(m[i].pp.h);
		esky_dump_free(m[i].d);
		if (m[i].path) {
			unlink(m[i].path);
			free(m[i].path);
		}
		if (m[i].lock > 0)
			close(m[i].lock);
		if (i && m[i].t) {
			esky_tracee_detach(m[i].t, 0);
			esky_tracee_free(m[i].t);
		}
	}
	free(tree.objs);
	free(tree.shms);
	free((void *)tree.pipe_ino);
	free((void *)tree.pipe_ends);
	free((void *)tree.sock_ino);
	free(m);
	return ret;
}
