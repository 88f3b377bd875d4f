/*
 * Snapshots: taking them (incremental on their parent, the pages dirty-
 * page tracking vouches for not read), recording them in the store,
 * rewinding (in place or by a thaw), export, gcore, the hand-off to gdb,
 * forget.
 */
#include "session_int.h"
#include "trust.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void sess_stop_tracking(struct esky_session *s)
{
	esky_dirty_free(s->dirty);
	s->dirty = NULL;
	/* Nobody vouches for what happened in between (gdb, a new process). */
	esky_maps_cache_clear(&s->maps_cache);
}

/* The next event of the running program; timer expiry and interrupts make it stop. */
/*
 * The events of the dirty-page tracking (unmaps, moves) while the program
 * runs: it waits until they are read. A failure ends the tracking (the
 * program is released from any wait when the userfaultfd closes).
 */
void sess_tracking_events(struct esky_session *s)
{
	if (s->dirty && esky_dirty_read_events(s->dirty))
		sess_stop_tracking(s);
}

/* ---- snapshots ---- */

static bool parent_hash(void *ctx, uint64_t vaddr, uint64_t *hash)
{
	struct esky_session *s = ctx;
	size_t lo = 0, hi = s->nhashes;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->hashes[mid].vaddr < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->nhashes && s->hashes[lo].vaddr == vaddr) {
		*hash = s->hashes[lo].hash;
		return true;
	}
	return false;
}

/* The index of the first page of the table at or above va, from `at` on (the walks go up). */
static size_t hash_lower(const struct esky_session *s, size_t at, uint64_t va)
{
	size_t lo = at, hi = s->nhashes;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->hashes[mid].vaddr < va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The usual case with dirty-page tracking: the snapshot has its parent's
 * pages, the written ones stored again. Then only their hashes change, in
 * place: two searches per run, not a copy per page (a GiB is 262144
 * pages). A parent run may span pages no image stores (a file's own
 * pages); a stored run must have all of its pages in the table; and the
 * runs must hold every page of the table, or some would be dropped. False,
 * with nothing changed, if not so.
 */
static bool update_hashes_in_place(struct esky_session *s, const struct esky_image_view *v)
{
	for (int pass = 0; pass < 2; pass++) {
		size_t at = 0, total = 0;

		for (size_t i = 0; i < v->run_n; i++) {
			const struct esky_img_pagerun *r = &v->runs[i];
			size_t k0, k1;

			if (r->kind == ESKY_IMG_PAGES_ZERO || !r->npages)
				continue;
			k0 = hash_lower(s, at, r->vaddr);
			k1 = hash_lower(s, k0, r->vaddr + r->npages * ESKY_PAGE_SIZE);
			/* Addresses go up by pages: as many as the run means all of it. */
			if (r->kind == ESKY_IMG_PAGES_DATA && k1 - k0 != r->npages)
				return false;
			if (pass == 1 && r->kind == ESKY_IMG_PAGES_DATA)
				for (uint64_t k = 0; k < r->npages; k++)
					s->hashes[k0 + k].hash = v->hashes[r->hash_index + k];
			total += k1 - k0;
			at = k1;
		}
		if (total != s->nhashes)
			return false;
	}
	return true;
}

/*
 * The hashes of the pages of a snapshot just written, from its runs and its
 * parent's. Runs and both tables go up by address: one walk, no search
 * per page (a binary search per page of a GiB cost ~10 ms a snapshot).
 */
static int derive_hashes(struct esky_session *s, const struct esky_image *img)
{
	const struct esky_image_view *v = esky_image_view(img);
	struct esky_page_hash *nh = NULL;
	size_t n = 0, cap = 0, at = 0;

	if (s->nhashes && update_hashes_in_place(s, v))
		return 0;

	for (size_t i = 0; i < v->run_n; i++) {
		const struct esky_img_pagerun *r = &v->runs[i];

		if (r->kind == ESKY_IMG_PAGES_ZERO)
			continue;
		if (n + r->npages > cap) {
			struct esky_page_hash *g;

			cap = (n + r->npages) * 2;
			g = realloc(nh, cap * sizeof(*g));
			if (!g) {
				free(nh);
				return -ENOMEM;
			}
			nh = g;
		}
		for (uint64_t k = 0; k < r->npages; k++) {
			uint64_t va = r->vaddr + k * ESKY_PAGE_SIZE, h;

			if (r->kind == ESKY_IMG_PAGES_DATA) {
				nh[n++] = (struct esky_page_hash){ va, v->hashes[r->hash_index + k] };
				continue;
			}
			while (at < s->nhashes && s->hashes[at].vaddr < va)
				at++;
			if (at < s->nhashes && s->hashes[at].vaddr == va)
				nh[n++] = (struct esky_page_hash){ va, s->hashes[at].hash };
			else if (parent_hash(s, va, &h)) /* runs out of order: never seen */
				nh[n++] = (struct esky_page_hash){ va, h };
		}
	}
	free(s->hashes);
	s->hashes = nh;
	s->nhashes = n;
	return 0;
}

/*
 * The original bytes under our int3s, for the dump to put back into the
 * image: no checkpoint ever holds a breakpoint. Sets o's patches (the
 * array returned, malloc'd; NULL if out of memory).
 */
static struct esky_dump_patch *site_patches(const struct esky_session *s,
					    struct esky_checkpoint_opts *o)
{
	struct esky_dump_patch *patches = calloc(s->nsites ? s->nsites : 1, sizeof(*patches));

	if (!patches)
		return NULL;
	for (size_t i = 0; i < s->nsites; i++)
		patches[i] = (struct esky_dump_patch){ s->sites[i].addr, s->sites[i].orig };
	o->patches = patches;
	o->patch_n = s->nsites;
	return patches;
}

/* esky snap: the snapshot as a standalone checkpoint file named by the sink. */
static int take_snapshot_file(struct esky_session *s, const struct esky_checkpoint_opts *o,
			      int *idp)
{
	struct esky_snapfile sf = { .bp = s->snap_bp, .hit = s->snap_hit };
	struct esky_dump_stats st;
	char where[512];
	uint64_t pc = 0;
	char *path;
	int ret;

	sess_get_pc(s, &pc);
	sess_describe(s, pc, where, sizeof(where));
	sf.where = where;
	sf.run_ns = esky_target_run_ns(s->t);
	esky_error_clear();
	path = s->sink.name(s->sink.ctx, &sf);
	if (!path)
		return esky_last_error() ? -EIO : -ENOMEM;
	ret = esky_target_checkpoint(s->t, path, o, &st);
	if (!ret) {
		sf.bytes = st.file_size;
		sf.path = path;
		if (s->sink.written)
			s->sink.written(s->sink.ctx, &sf);
		*idp = 0;
	}
	free(path);
	return ret;
}

/*
 * Dirty-page tracking from this snapshot on (its arm is now): the program
 * makes a userfaultfd that esky takes over. Where the kernel or the
 * program does not allow it, snapshots compare content hashes; why is
 * kept for info store.
 */
static void start_tracking(struct esky_session *s)
{
	int fd, ret;

	if (!s->track_pages || s->dirty)
		return;
	ret = esky_target_make_uffd(s->t, &fd);
	if (!ret)
		ret = esky_dirty_start(esky_target_pid(s->t), fd, &s->dirty);
	s->tracking_err = ret;
	if (ret)
		pr_debug("dirty-page tracking off: %s", strerror(-ret));
}

/*
 * The longest chain of incremental snapshots: the next one is whole. A
 * rewind opens every image of its chain (an fd and ~20 KiB of esky's
 * memory each, and a thaw takes at most 512 that hold pages); timer
 * snapshots make a chain of 600 in a minute. The whole one costs a read of
 * all the memory while the program stands (0.3 s per GiB), once per
 * chain. ESKY_CHAIN_MAX sets it (tests).
 */
static size_t chain_max(void)
{
	const char *e = getenv("ESKY_CHAIN_MAX");
	unsigned long v = e ? strtoul(e, NULL, 10) : 0;

	return v >= 1 && v <= 100000 ? v : 256;
}

/* A snapshot's file is complete: its id and page hashes become the lineage's. */
static int snapshot_written(struct esky_session *s, const char *path)
{
	struct esky_image *img;
	int ret = esky_image_open(path, &img);

	if (ret)
		return ret;
	memcpy(s->lineage_id, esky_image_view(img)->hdr->id, sizeof(s->lineage_id));
	ret = derive_hashes(s, img);
	esky_image_close(img);
	return ret;
}

/*
 * A reserved id whose snapshot was not made, given back if it is still
 * the last one reserved; the message of the failure stays the last error.
 */
static void give_back_id(struct esky_session *s, int id)
{
	char *said = esky_last_error() ? strdup(esky_last_error()) : NULL;

	if (esky_store_unreserve(s->store, id)) {
		esky_error_clear();
		if (said)
			esky_error(-EIO, "%s", said);
	}
	free(said);
}

int sess_take_snapshot_as(struct esky_session *s, enum esky_snap_cause cause, const char *note,
			    int *idp, bool defer)
{
	struct esky_checkpoint_opts o = { .background = false };
	struct esky_dump_patch *patches;
	struct esky_snapinfo si = { 0 };
	struct esky_dump_stats st;
	char hint[32], where[512], *path = NULL;
	uint64_t pc = 0;
	uint64_t t0 = esky_now_ns();
	int id = 0, ret;

	if (!esky_session_alive(s))
		return sess_no_process();
	ret = sess_record_snapshot(s);
	if (ret)
		return ret;
	/* A set-id program, or one that changed its ids: refused, left as it is. */
	ret = esky_trust_process(esky_target_pid(s->t), s->trust | ESKY_TRUST_QUIET);
	if (ret)
		return ret;
	patches = site_patches(s, &o);
	if (!patches)
		return -ENOMEM;
	if (!s->store) {
		ret = take_snapshot_file(s, &o, idp);
		goto out_free;
	}
	if (s->spare_id) {
		id = s->spare_id;
		s->spare_id = 0;
		o.writer = s->spare_writer;
		s->spare_writer = NULL;
		path = esky_store_path(s->store, id);
		ret = path ? 0 : -ENOMEM;
		if (ret && o.writer) {
			esky_image_writer_abort(o.writer);
			o.writer = NULL;
		}
	} else {
		ret = esky_store_reserve(s->store, &id, &path);
	}
	if (ret)
		goto out_free;
	if (s->lineage && esky_store_get(s->store, s->lineage) && s->depth < chain_max()) {
		esky_store_file_name(s->lineage, hint, sizeof(hint));
		o.parent_id = s->lineage_id;
		o.parent_hint = hint;
		o.parent_hash = parent_hash;
		o.parent_ctx = s;
		/* What the program wrote since the parent: only that is read. */
		if (s->dirty && esky_dirty_collect(s->dirty) == 0) {
			o.page_unchanged = esky_dirty_unchanged;
			o.unchanged_ctx = s->dirty;
		}
	}
	/*
	 * Tracking answers for "since the last snapshot": without a parent
	 * (forgotten) or after a failed collect, start it afresh after this one.
	 */
	if (!o.page_unchanged)
		sess_stop_tracking(s);
	o.maps_cache = &s->maps_cache;
	/* A timer snapshot's file is completed once the program runs again. */
	o.defer_commit = defer;
	sess_get_pc(s, &pc);
	sess_describe(s, pc, where, sizeof(where));
	esky_outfile_keep_lock(!defer);
	ret = esky_target_checkpoint(s->t, path, &o, &st);
	esky_outfile_keep_lock(false);
	if (ret)
		goto out_free;
	if (!defer) {
		ret = snapshot_written(s, path);
		if (ret)
			goto out_free;
	}
	si.id = id;
	si.parent = o.parent_id ? s->lineage : 0;
	si.cause = cause;
	si.run_ns = esky_target_run_ns(s->t);
	si.bytes = st.file_size;
	si.created_ns = esky_wall_ns();
	si.location = where;
	si.note = (char *)(note ? note : "");
	if (defer) {
		si.location = strdup(where);
		si.note = strdup(si.note);
		if (!si.location || !si.note) {
			free(si.location);
			free(si.note);
			unlink(path);
			ret = -ENOMEM;
			goto out_free;
		}
		s->unrecorded = true;
		s->unrecorded_si = si;
		s->unrecorded_path = path;
		path = NULL;
	} else {
		ret = esky_store_add(s->store, &si);
		if (ret) {
			unlink(path); /* not in the tree: nobody would ever remove it */
			goto out_free;
		}
		esky_outfile_drop_lock();
	}
	s->lineage = id;
	s->depth = o.parent_id ? s->depth + 1 : 1;
	*idp = id;
	start_tracking(s);
	pr_debug("snapshot %d: the program stood %.1f ms (dump %.1f: prepare %.1f, write %.1f)", id,
		 (double)(esky_now_ns() - t0) / 1e6, (double)(st.prepare_ns + st.write_ns) / 1e6,
		 (double)st.prepare_ns / 1e6, (double)st.write_ns / 1e6);
	if (cause != ESKY_SNAP_MANUAL)
		sess_notify(s, "snapshot %d (%s) at %s", id, esky_snap_cause_name(cause), where);
out_free:
	/* Armed for a snapshot that was not recorded: the next must not trust it. */
	if (ret)
		sess_stop_tracking(s);
	/* Its number is given back (a full disk must not use them all up). */
	if (ret && id && s->store)
		give_back_id(s, id);
	esky_outfile_drop_lock();
	free(path);
	free(patches);
	return ret;
}

void esky_session_rewind_in_place(struct esky_session *s, bool on)
{
	s->in_place = on;
}

int sess_take_snapshot(struct esky_session *s, enum esky_snap_cause cause, const char *note,
			 int *idp)
{
	return sess_take_snapshot_as(s, cause, note, idp, false);
}

/*
 * Record the deferred timer snapshot in the store's tree. If that fails,
 * its file goes, and the program descends from no recorded snapshot: the
 * next one is whole, the tracking starts again after it.
 */
int sess_record_snapshot(struct esky_session *s)
{
	int ret;

	if (!s->unrecorded)
		return 0;
	s->unrecorded = false;
	{
		struct esky_dump_stats st = { 0 };

		/* The image stays locked until the tree lists it (store.c's remove_orphans). */
		esky_outfile_keep_lock(true);
		ret = s->t ? esky_target_checkpoint_commit(s->t, &st) : -ESRCH;
		esky_outfile_keep_lock(false);
		if (!ret)
			ret = snapshot_written(s, s->unrecorded_path);
		s->unrecorded_si.bytes = st.file_size;
	}
	if (!ret)
		ret = esky_store_add(s->store, &s->unrecorded_si);
	esky_outfile_drop_lock();
	if (ret) {
		/*
		 * The timer stops, as for a snapshot refused: the next one would
		 * be whole and fail the same way (a full disk, a size limit).
		 */
		sess_notify(s, "snapshot %d could not be recorded: %s%s", s->unrecorded_si.id,
			    esky_last_error() ? esky_last_error() : strerror(-ret),
			    s->every_ns ? "; timer snapshots off" : "");
		s->every_ns = s->every_left = 0;
		unlink(s->unrecorded_path);
		give_back_id(s, s->unrecorded_si.id);
		sess_stop_tracking(s);
		s->lineage = 0;
		free(s->hashes);
		s->hashes = NULL;
		s->nhashes = 0;
	}
	free(s->unrecorded_si.location);
	free(s->unrecorded_si.note);
	free(s->unrecorded_path);
	s->unrecorded_path = NULL;
	/* The next one's id, while the program runs. */
	if (!ret && s->every_ns && !s->spare_id) {
		char *path = NULL;

		if (esky_store_reserve(s->store, &s->spare_id, &path)) {
			s->spare_id = 0; /* reserved when it is taken, then */
			esky_error_clear();
		} else if (esky_image_writer_open(path, &s->spare_writer)) {
			s->spare_writer = NULL; /* opened when it is taken, then */
			esky_error_clear();
		}
		free(path);
	}
	return ret;
}

/* An id reserved for a timer snapshot that will not come. */
void sess_release_spare(struct esky_session *s)
{
	if (s->spare_writer) {
		esky_image_writer_abort(s->spare_writer);
		s->spare_writer = NULL;
	}
	if (!s->spare_id || !s->store)
		return;
	/* A failure leaves a gap in the numbers, and the caller's message as it was. */
	give_back_id(s, s->spare_id);
	s->spare_id = 0;
}

void esky_session_track_pages(struct esky_session *s, bool on)
{
	s->track_pages = on;
	if (!on)
		sess_stop_tracking(s);
}

const char *esky_session_pages_mode(const struct esky_session *s, char *buf, size_t n)
{
	if (s->dirty) {
		uint64_t written, tracked;

		esky_dirty_counts(s->dirty, &written, &tracked);
		if (tracked)
			snprintf(buf, n, "userfaultfd write-protect (the last snapshot read %" PRIu64
				 " written pages of %" PRIu64 " tracked)", written, tracked);
		else
			snprintf(buf, n, "userfaultfd write-protect (armed at the last snapshot)");
	} else if (!s->track_pages) {
		snprintf(buf, n, "content hashes (tracking turned off)");
	} else if (s->tracking_err) {
		snprintf(buf, n, "content hashes (tracking unavailable: %s)",
			 s->tracking_err == -EBUSY ? "the program uses userfaultfd itself"
			 : s->tracking_err == -ENOTSUP ? "this kernel lacks uffd-wp or PAGEMAP_SCAN"
						      : strerror(-s->tracking_err));
	} else {
		snprintf(buf, n, "userfaultfd write-protect, from the next snapshot on");
	}
	return buf;
}

int esky_session_snapshot(struct esky_session *s, const char *note, int *id)
{
	return sess_take_snapshot(s, ESKY_SNAP_MANUAL, note, id);
}

int esky_session_every(struct esky_session *s, uint64_t ns)
{
	s->every_ns = ns;
	s->every_left = ns;
	return 0;
}

uint64_t esky_session_every_ns(const struct esky_session *s)
{
	return s->every_ns;
}

static int open_snapshot_chain(struct esky_session *s, int id, struct esky_image ***chain, size_t *n)
{
	char *path;
	int ret;

	if (!s->store)
		return sess_no_store();
	esky_store_reload(s->store);
	if (!esky_store_get(s->store, id))
		return esky_error(-ENOENT, "no snapshot %d (tree lists them)", id);
	path = esky_store_path(s->store, id);
	if (!path)
		return -ENOMEM;
	ret = esky_image_open_chain(path, chain, n);
	free(path);
	/* Every file of the chain is the user's and a snapshot of this store (the store warned). */
	if (!ret && ((ret = esky_trust_chain(*chain, *n, s->trust | ESKY_TRUST_QUIET)) ||
		     (ret = esky_trust_store_chain(*chain, *n))))
		esky_image_close_chain(*chain, *n);
	return ret;
}

/* The snapshot id of a store image from its file name (snap-N.img), or 0. */
static int image_snapshot_id(const struct esky_image *img)
{
	const char *path = esky_image_view(img)->path, *base = strrchr(path, '/');

	return esky_store_file_id(base ? base + 1 : path);
}

/*
 * The page hashes of the snapshot in chain, derived from the lineage's
 * (s->hashes) through their nearest common ancestor in the tree: only
 * what the images between them hold is looked at (a rewind between
 * neighbours of a chain of 100 snapshots of 1 GiB: ~1 ms instead of
 * 40-50). -EAGAIN where it cannot be (no lineage table, the tree and the
 * images disagree): the caller does it whole.
 */
static int hashes_by_path(struct esky_session *s, struct esky_image **chain, size_t n,
			  struct esky_page_hash **to, size_t *to_n)
{
	struct esky_image **other = NULL;
	size_t k = n, m = 0, cap = 0;
	int lid = s->lineage, ret = 0;

	if (!s->hashes || !s->lineage || !s->store)
		return -EAGAIN;
	/* Up from the lineage until a snapshot of chain: their nearest common ancestor. */
	for (size_t steps = 0; lid && steps < 100000; steps++) {
		const struct esky_snapinfo *si;
		char *path;

		for (size_t i = 0; i < n && k == n; i++)
			if (image_snapshot_id(chain[i]) == lid)
				k = i;
		if (k < n)
			break;
		si = esky_store_get(s->store, lid);
		if (!si) {
			ret = -EAGAIN;
			break;
		}
		if (m == cap) {
			struct esky_image **no = realloc(other, (cap ? 2 * cap : 8) * sizeof(*no));

			if (!no) {
				ret = -ENOMEM;
				break;
			}
			other = no;
			cap = cap ? 2 * cap : 8;
		}
		path = esky_store_path(s->store, lid);
		ret = path ? esky_image_open(path, &other[m]) : -ENOMEM;
		free(path);
		if (ret) {
			esky_error_clear();
			ret = -EAGAIN;
			break;
		}
		m++;
		lid = si->parent;
	}
	if (!ret && k == n)
		ret = -EAGAIN;
	/* The images must be the ones the tree says: each the parent of the one before. */
	if (!ret && m && memcmp(esky_image_view(other[0])->hdr->id, s->lineage_id, 16))
		ret = -EAGAIN;
	for (size_t q = 0; !ret && q < m; q++) {
		const uint8_t *up = q + 1 < m ? esky_image_view(other[q + 1])->hdr->id
					      : esky_image_view(chain[k])->hdr->id;

		if (memcmp(esky_image_view(other[q])->hdr->parent_id, up, 16))
			ret = -EAGAIN;
	}
	if (!ret && !m && memcmp(esky_image_view(chain[k])->hdr->id, s->lineage_id, 16))
		ret = -EAGAIN;
	if (!ret && m && esky_trust_chain(other, m, s->trust | ESKY_TRUST_QUIET)) {
		esky_error_clear();
		ret = -EAGAIN;
	}
	if (!ret)
		ret = esky_image_page_hashes_from(chain, n, k, other, m, s->hashes, s->nhashes, to,
						  to_n);
	for (size_t q = 0; q < m; q++)
		esky_image_close(other[q]);
	free(other);
	/* ESKY_CHECK_HASHES (tests): the whole computation must say the same. */
	if (!ret && getenv("ESKY_CHECK_HASHES")) {
		struct esky_page_hash *whole = NULL;
		size_t whole_n = 0;

		ret = esky_image_page_hashes(chain, n, &whole, &whole_n);
		if (!ret && (whole_n != *to_n || memcmp(whole, *to, whole_n * sizeof(*whole))))
			ret = esky_error(-EIO, "rewind: the page hashes derived from snapshot %d (%zu) "
					 "differ from the whole computation's (%zu)", s->lineage,
					 *to_n, whole_n);
		free(whole);
		if (ret) {
			free(*to);
			*to = NULL;
		}
	}
	return ret;
}

/* The thread that was current when the snapshot was taken is current again. */
static void make_snapshot_thread_current(struct esky_session *s, struct esky_image *img)
{
	struct esky_tracee *trs[256];
	char *tid = esky_image_meta(img, "current-thread");
	size_t n;

	if (!tid)
		return;
	n = esky_target_threads(s->t, trs, ESKY_ARRAY_SIZE(trs));
	for (size_t i = 0; i < n && i < ESKY_ARRAY_SIZE(trs); i++)
		if (sess_program_tid(esky_tracee_pid(trs[i])) == atoi(tid))
			esky_target_make_current(s->t, esky_tracee_pid(trs[i]));
	free(tid);
}

/*
 * Rewind the live program without making a new one when it still has the
 * snapshot's shape (rewind.h), knowing from the tracking what it wrote.
 * 0: done, the tracking re-armed for "since this snapshot"; otherwise the
 * caller thaws (-EAGAIN: not possible here; other: failed on the way).
 */
static int rewind_in_place(struct esky_session *s, struct esky_image **chain, size_t n,
			   const struct esky_page_hash *to, size_t to_n)
{
	struct esky_tracee *tr;
	struct esky_rewind_in in = { 0 };
	struct esky_rewind_stats st;
	int ret;

	if (!s->in_place || !esky_session_alive(s))
		return -EAGAIN;
	if (!s->dirty || !s->lineage || !esky_store_get(s->store, s->lineage) ||
	    esky_target_thread_count(s->t) != 1) {
		pr_debug("rewind in place: %s", !s->dirty ? "no dirty-page tracking"
					      : esky_target_thread_count(s->t) != 1 ? "threads"
					      : "the program's snapshot is gone");
		return -EAGAIN;
	}
	tr = esky_target_tracee(s->t);
	/* What the program wrote since the snapshot it descends from. */
	ret = esky_dirty_collect(s->dirty);
	if (ret) {
		pr_debug("rewind in place: the tracking failed: %s", strerror(-ret));
		sess_stop_tracking(s);
		return -EAGAIN;
	}
	in = (struct esky_rewind_in){
		.t = tr,
		.chain = chain,
		.n = n,
		.from = s->hashes,
		.from_n = s->nhashes,
		.to = to,
		.to_n = to_n,
		.unchanged = esky_dirty_unchanged,
		.unchanged_ctx = s->dirty,
		.max_pages = 65536, /* 256 MiB: beyond, a thaw costs about the same */
	};
	/* The program's own bytes under our int3s first: every page then holds the program's. */
	for (size_t i = 0; i < s->nsites; i++)
		esky_target_write_mem(s->t, s->sites[i].addr, &s->sites[i].orig, 1);
	s->nsites = 0;
	ret = esky_rewind_in_place(&in, &st);
	pr_debug("rewind in place: %s (%" PRIu64 " pages written of %" PRIu64 ")",
		 ret == 0 ? "done" : ret == -EAGAIN ? "not possible" : "failed", st.pages_written,
		 st.pages_compared);
	if (ret)
		return ret;
	/* Our writes count as the program's: from here on, "since this snapshot". */
	if (esky_dirty_collect(s->dirty))
		sess_stop_tracking(s);
	esky_target_rewound(s->t, esky_image_view(chain[0])->core->run_ns);
	s->pending = PENDING_NONE;
	return 0;
}

int esky_session_rewind(struct esky_session *s, int id, struct esky_stop_report *r)
{
	struct esky_restore_opts ro = { .verify_pages = true, .follow_threads = true };
	struct esky_page_hash *to = NULL;
	struct esky_image **chain;
	const struct esky_image_view *v;
	uint64_t t0 = esky_now_ns(), t_open;
	size_t n, to_n = 0;
	bool in_place = false;
	int ret;

	memset(r, 0, sizeof(*r));
	ret = open_snapshot_chain(s, id, &chain, &n);
	if (ret)
		return ret;
	/* Taken as another user: only root with --force brings it back (as root). */
	ret = esky_trust_image_creds(chain[0], s->trust | ESKY_TRUST_QUIET);
	if (ret)
		goto out_close;
	v = esky_image_view(chain[0]);
	t_open = esky_now_ns();
	ret = hashes_by_path(s, chain, n, &to, &to_n);
	if (ret == -EAGAIN) {
		pr_debug("rewind to snapshot %d: its page hashes by a walk of its whole chain", id);
		ret = esky_image_page_hashes(chain, n, &to, &to_n);
	}
	if (ret)
		goto out_close;
	pr_debug("rewind to snapshot %d: %zu images opened in %.2f ms, its %zu page hashes in %.2f ms",
		 id, n, (double)(t_open - t0) / 1e6, to_n, (double)(esky_now_ns() - t_open) / 1e6);
	ret = rewind_in_place(s, chain, n, to, to_n);
	if (ret && ret != -EAGAIN) {
		pr_debug("rewind in place failed (%s): the snapshot is thawed", esky_last_error());
		esky_error_clear();
	}
	if (!ret) {
		in_place = true;
		goto rewound;
	}
	if (!s->program && v->core->exe_file != UINT32_MAX) {
		ret = esky_session_file(s, esky_image_str(chain[0], v->files[v->core->exe_file].path));
		if (ret)
			goto out_close;
	}
	ret = sess_find_agent(s);
	if (ret)
		goto out_close;
	ro.agent_path = s->agent;
	sess_drop_process(s);
	ret = esky_target_restore(chain, n, &ro, &s->t);
	if (ret)
		goto out_close;
	esky_target_set_idle(s->t, sess_idle, s);
	esky_target_on_new_thread(s->t, sess_thread_born, s);
	make_snapshot_thread_current(s, chain[0]);
	esky_target_report_signals(s->t, true);
	sess_find_bias(s);
	sess_resolve_libs(s); /* a thawed snapshot has its own library addresses */
	/* What it writes from here on is known: the next rewind may be in place. */
	start_tracking(s);
rewound:
	memcpy(s->lineage_id, v->hdr->id, sizeof(s->lineage_id));
	s->lineage = id;
	s->depth = n;
	free(s->hashes);
	s->hashes = to;
	s->nhashes = to_n;
	to = NULL;
	s->every_left = s->every_ns;
	ret = sess_sync_sites(s);
	/* The program stands at the snapshot even if the store cannot record it (read-only). */
	if (!ret && esky_store_set_current(s->store, id)) {
		pr_warn("%s; the tree does not mark snapshot %d as current", esky_last_error(), id);
		esky_error_clear();
	}
	r->why = ESKY_WHY_REWOUND;
	sess_report_where(s, r);
	pr_debug("rewind to snapshot %d: %.1f ms (%s)", id, (double)(esky_now_ns() - t0) / 1e6,
		 in_place ? "in place" : "thaw");
out_close:
	free(to);
	esky_image_close_chain(chain, n);
	return ret;
}

/* export and gcore never write over a store's own files (its images, tree, lock). */
static int not_store_file(const char *path)
{
	char *dir = NULL;

	if (!esky_store_owns(path, &dir))
		return 0;
	esky_error(-EEXIST, "%s is a file of the store %s: give another file name", path,
		   dir ? dir : "");
	free(dir);
	return -EEXIST;
}

int esky_session_gcore(struct esky_session *s, int id, const char *path)
{
	struct esky_image **chain;
	size_t n;
	char *tmp = NULL;
	int ret = not_store_file(path);

	if (ret)
		return ret;
	if (id) {
		ret = open_snapshot_chain(s, id, &chain, &n);
	} else {
		/* The program as it stands: a checkpoint of it, made into a core, then dropped. */
		struct esky_checkpoint_opts o = { .background = false };
		struct esky_dump_patch *patches;
		struct esky_dump_stats st;

		if (!esky_session_alive(s))
			return sess_no_process();
		ret = esky_trust_process(esky_target_pid(s->t), s->trust | ESKY_TRUST_QUIET);
		if (ret)
			return ret;
		patches = site_patches(s, &o);
		/* In the store: the user's folder may not take it (the core's error names it). */
		if (!patches || asprintf(&tmp, "%s/.gcore-%d.ckpt", esky_store_dir(s->store),
					 (int)getpid()) < 0) {
			free(patches);
			return -ENOMEM;
		}
		ret = esky_target_checkpoint(s->t, tmp, &o, &st);
		free(patches);
		if (!ret)
			ret = esky_image_open_chain(tmp, &chain, &n);
	}
	if (!ret) {
		ret = esky_core_write(chain, n, path);
		esky_image_close_chain(chain, n);
	}
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	return ret;
}

int esky_session_gdb(struct esky_session *s, struct esky_stop_report *r)
{
	struct esky_gdb_opts go = { .program = s->program };
	int gdb_status, end_ws, ret;

	memset(r, 0, sizeof(*r));
	if (!esky_session_alive(s))
		return sess_no_process();
	/*
	 * While gdb has it, nobody would read the tracking's events (an munmap
	 * gdb makes it call would wait for ever): the next snapshot compares
	 * hashes and starts the tracking again.
	 */
	sess_stop_tracking(s);
	/* gdb sees the program's own code: our int3s go, and come back after. */
	while (s->nsites) {
		ret = sess_remove_site(s, 0);
		if (ret)
			return esky_error(ret, "cannot take the breakpoints out: %s", strerror(-ret));
	}
	ret = esky_gdb_handoff(&s->t, &go, &gdb_status, &end_ws);
	if (ret) {
		if (s->t)
			sess_sync_sites(s);
		return ret;
	}
	if (WIFEXITED(gdb_status) && WEXITSTATUS(gdb_status) == 127)
		pr_warn("gdb could not be run (install gdb, or set ESKY_GDB)");
	if (!s->t) {
		struct esky_event ev = {
			.kind = WIFEXITED(end_ws) ? ESKY_EV_EXITED : ESKY_EV_KILLED,
			.status = WIFEXITED(end_ws) ? WEXITSTATUS(end_ws) : 0,
			.sig = WIFSIGNALED(end_ws) ? WTERMSIG(end_ws) : 0,
		};

		sess_ended(s, &ev, r);
		return 0;
	}
	esky_target_report_signals(s->t, !s->pass_signals);
	/* Taken back by an attach: it holds our breakpoints again, it dies with us. */
	esky_target_survive_monitor(s->t, false);
	esky_target_set_idle(s->t, sess_idle, s);
	esky_target_on_new_thread(s->t, sess_thread_born, s);
	ret = esky_target_follow_threads(s->t, NULL, 0);
	if (ret)
		return esky_error(ret, "cannot follow the threads of pid %d again: %s",
				  esky_target_pid(s->t), strerror(-ret));
	s->pending = PENDING_NONE;
	sess_find_bias(s);
	ret = sess_sync_sites(s);
	r->why = ESKY_WHY_INTERRUPTED;
	sess_report_where(s, r);
	return ret;
}

int esky_session_export(struct esky_session *s, int id, const char *path)
{
	struct esky_image **chain;
	size_t n;
	int ret = not_store_file(path);

	if (!ret)
		ret = open_snapshot_chain(s, id, &chain, &n);
	if (ret)
		return ret;
	ret = esky_image_flatten(chain, n, path);
	esky_image_close_chain(chain, n);
	return ret;
}

int esky_session_forget(struct esky_session *s, int id, int **removed, size_t *n)
{
	int ret = s->store ? esky_store_forget(s->store, id, removed, n) : sess_no_store();

	for (size_t i = 0; !ret && i < *n; i++) {
		if ((*removed)[i] == s->lineage) {
			/* The next snapshot stores everything: its ancestor is gone. */
			s->lineage = 0;
			free(s->hashes);
			s->hashes = NULL;
			s->nhashes = 0;
		}
	}
	return ret;
}

const struct esky_snapinfo *esky_session_snapshots(struct esky_session *s, size_t *n)
{
	*n = 0;
	if (!s->store)
		return NULL;
	esky_store_reload(s->store);
	return esky_store_list(s->store, n);
}

int esky_session_current(const struct esky_session *s)
{
	return s->store ? esky_store_current(s->store) : 0;
}

void esky_session_complete(struct esky_session *s, const char *prefix,
			   void (*fn)(const char *name, void *ctx), void *ctx)
{
	if (s->di)
		esky_debuginfo_complete(s->di, prefix, fn, ctx);
}
