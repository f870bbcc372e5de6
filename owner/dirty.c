/* owner/dirty.c - the dirty table: one entry per block whose newest bytes
 * are in the journal (a mirror of the jrnl records), the upload queue over
 * it, the stripe locks that order every access to a block's journal, and
 * the waits of fsync, sync and umount for blocks to leave it.
 *
 * Each entry's gen changes on every write; an upload commits only if gen
 * is unchanged and the jrnl record still exists (owner/upload.c), so an
 * uploader never commits bytes older than the newest write. Every
 * (ino, bno) hashes to one of STRIPES mutexes, held while a staging file
 * is written, read for an upload, cut, or unlinked after an upload
 * commits. Lock order: stripe -> LMDB write txn -> d->lock. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/queue.h>

#include "log.h"
#include "owner/internal.h"
#include "worker.h"

#define STRIPES		256
#define BUCKETS		4096
/* A block still being written (its file open) is uploaded once untouched
 * this long, when blocks go at close (write_back_ms < 0). */
#define IDLE_MS		2000
/* Writes this recent make the mount busy: blocks that are due wait, up
 * to WAIT_FACTOR delays, for a quiet moment (see scan_idle). */
#define QUIET_MS	1000
#define WAIT_FACTOR	6
#define SCAN_MS		500
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	30000

/* A dirty block: a jrnl record exists for (ino, bno). */
struct dblk {
	uint64_t ino, bno;
	uint64_t gen;		/* d->seq at the last change */
	uint64_t serial;	/* d->seq at creation */
	int64_t last_ms;	/* monotonic time of the last write */
	int64_t retry_ms;	/* not before (after a failed upload) */
	int backoff_ms;
	unsigned queued : 1, inflight : 1;
	struct dblk *hnext;	/* chain in tab, by (ino, bno) */
	struct dblk *inext;	/* chain in itab, by ino */
	TAILQ_ENTRY(dblk) qlink;
};
TAILQ_HEAD(dblk_q, dblk);

struct owner__dirty {
	/* A block untouched this long is uploaded, its file open or not
	 * (scan_idle). Closing a file does not hurry its blocks (at_close:
	 * it does): a copy of many files runs without the uploads of the
	 * files before it competing for the CPU, like rclone's
	 * --vfs-write-back and the kernel's dirty_expire. Full blocks,
	 * fsync, sync and umount go at once. */
	int64_t idle_ms;
	int64_t max_wait_ms;	/* idle_ms, or WAIT_FACTOR times it */
	int64_t last_write_ms;	/* any file; atomic, no lock */
	int at_close;
	pthread_mutex_t stripe[STRIPES];

	pthread_mutex_t lock;	/* protects everything below */
	pthread_cond_t done;	/* syncers: a dirty block went away */
	struct dblk *tab[BUCKETS];
	/* The same entries by inode: close and fsync look up one file's
	 * blocks without walking the whole table under d->lock. */
	struct dblk *itab[BUCKETS];
	struct dblk_q queue;
	uint64_t seq;
	uint64_t count;		/* entries in tab */
	uint64_t inflight;	/* uploads running */
	uint64_t uploaded, known, errors;
	/* Uploads that failed because suppliers refuse our data (quota,
	 * full, not admitted: -EDQUOT from net/): a sync gives up on the
	 * first one after it started instead of waiting for its timeout. */
	uint64_t refused;
	/* Inline commits not yet in a published index: on the owner's disk
	 * only, so they count as uploading. */
	uint64_t inl_unpub, inl_gen;
	int failing;		/* last upload failed: log once per streak */
	int64_t next_scan_ms;
	int stop;
};

static uint32_t
blk_hash(uint64_t ino, uint64_t bno)
{
	uint64_t h = ino * 0x9E3779B97F4A7C15ull ^ (bno + 1) * 0xC2B2AE3D27D4EB4Full;

	return (uint32_t)(h ^ h >> 29 ^ h >> 43);
}

pthread_mutex_t *
owner__stripe(struct owner *o, uint64_t ino, uint64_t bno)
{
	return &o->dirty->stripe[blk_hash(ino, bno) % STRIPES];
}

/* ---- the table (d->lock held) ------------------------------------------- */

static uint32_t
ino_slot(uint64_t ino)
{
	return (uint32_t)((ino * 0x9e3779b97f4a7c15ull) >> 40) % BUCKETS;
}

static struct dblk *
tab_find(struct owner__dirty *d, uint64_t ino, uint64_t bno)
{
	struct dblk *e = d->tab[blk_hash(ino, bno) % BUCKETS];

	while (e != NULL && (e->ino != ino || e->bno != bno))
		e = e->hnext;
	return e;
}

static struct dblk *
tab_get(struct owner__dirty *d, uint64_t ino, uint64_t bno)
{
	struct dblk *e = tab_find(d, ino, bno);
	uint32_t h;

	if (e != NULL)
		return e;
	if ((e = calloc(1, sizeof *e)) == NULL)
		return NULL;
	h = blk_hash(ino, bno) % BUCKETS;
	e->ino = ino;
	e->bno = bno;
	e->serial = e->gen = ++d->seq;
	e->last_ms = worker_now_ms();
	e->hnext = d->tab[h];
	d->tab[h] = e;
	e->inext = d->itab[ino_slot(ino)];
	d->itab[ino_slot(ino)] = e;
	d->count++;
	return e;
}

static void
tab_del(struct owner__dirty *d, struct dblk *e)
{
	struct dblk **pp = &d->tab[blk_hash(e->ino, e->bno) % BUCKETS];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	for (pp = &d->itab[ino_slot(e->ino)]; *pp != e; pp = &(*pp)->inext)
		;
	*pp = e->inext;
	if (e->queued)
		TAILQ_REMOVE(&d->queue, e, qlink);
	d->count--;
	free(e);
	pthread_cond_broadcast(&d->done);
}

/* Returns 1 when e joined the queue (an upload worker is due a kick). */
static int
enqueue(struct owner__dirty *d, struct dblk *e)
{
	if (e->queued || e->inflight)
		return 0;
	e->queued = 1;
	TAILQ_INSERT_TAIL(&d->queue, e, qlink);
	return 1;
}

/* Queues every dirty block of ino (0: of every file), backoff or not.
 * Returns how many are still dirty. */
static uint64_t
enqueue_ino(struct owner__dirty *d, uint64_t ino)
{
	uint64_t n = 0;

	if (ino != 0) {
		for (struct dblk *e = d->itab[ino_slot(ino)]; e != NULL;
		    e = e->inext)
			if (e->ino == ino) {
				enqueue(d, e);
				n++;
			}
		return n;
	}
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct dblk *e = d->tab[i]; e != NULL; e = e->hnext) {
			enqueue(d, e);
			n++;
		}
	return n;
}

static uint64_t
count_ino(struct owner__dirty *d, uint64_t ino)
{
	uint64_t n = 0;

	if (ino == 0)
		return d->count;
	for (struct dblk *e = d->itab[ino_slot(ino)]; e != NULL; e = e->inext)
		n += e->ino == ino;
	return n;
}

/* Queues the blocks untouched for the write-back delay. While files are
 * still being written (cp -a of a tree) they wait for the writes to
 * pause, up to max_wait_ms: sealing and storing them meanwhile would take
 * the CPU from the writer, and sync or umount sends them anyway. */
static void
scan_idle(struct owner__dirty *d, int64_t now)
{
	int busy = now - __atomic_load_n(&d->last_write_ms, __ATOMIC_RELAXED) <
	    QUIET_MS;
	int64_t due = busy ? d->max_wait_ms : d->idle_ms;

	for (size_t i = 0; i < BUCKETS; i++)
		for (struct dblk *e = d->tab[i]; e != NULL; e = e->hnext)
			if (now - e->last_ms >= due && now >= e->retry_ms)
				enqueue(d, e);
}

/* ---- what writers, truncate and drop say --------------------------------- */

void
owner__dirty_written(struct owner *o)
{
	__atomic_store_n(&o->dirty->last_write_ms, worker_now_ms(),
	    __ATOMIC_RELAXED);
}

void
owner__dirty_mark(struct owner *o, uint64_t ino, uint64_t bno, int full)
{
	struct owner__dirty *d = o->dirty;
	struct dblk *e;
	int kick = 0;

	pthread_mutex_lock(&d->lock);
	if ((e = tab_get(d, ino, bno)) == NULL) {
		log_error("data: out of memory: block %" PRIu64 " of inode %"
		    PRIu64 " waits for the next mount", bno, ino);
	} else {
		e->gen = ++d->seq;
		e->last_ms = worker_now_ms();
		if (full)
			kick = enqueue(d, e);
	}
	pthread_mutex_unlock(&d->lock);
	if (kick)
		owner__upload_kick(o);
}

void
owner__dirty_drop(struct owner *o, uint64_t ino, const uint64_t *bnos,
    size_t n)
{
	struct owner__dirty *d = o->dirty;
	struct dblk *e;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < n; i++)
		if ((e = tab_find(d, ino, bnos[i])) != NULL)
			tab_del(d, e);
	pthread_mutex_unlock(&d->lock);
}

void
owner__dirty_drop_all(struct owner *o, uint64_t ino)
{
	struct owner__dirty *d = o->dirty;
	struct dblk *e, *next;

	pthread_mutex_lock(&d->lock);
	for (e = d->itab[ino_slot(ino)]; e != NULL; e = next) {
		next = e->inext;
		if (e->ino == ino)
			tab_del(d, e);
	}
	pthread_mutex_unlock(&d->lock);
}

void
owner__dirty_closed(struct owner *o, uint64_t ino)
{
	struct owner__dirty *d = o->dirty;

	if (!d->at_close)
		return;
	pthread_mutex_lock(&d->lock);
	enqueue_ino(d, ino);
	pthread_mutex_unlock(&d->lock);
	owner__upload_kick(o);
}

void
owner__dirty_inline(struct owner *o, uint64_t gen)
{
	struct owner__dirty *d = o->dirty;

	pthread_mutex_lock(&d->lock);
	d->inl_unpub++;
	if (gen > d->inl_gen)
		d->inl_gen = gen;
	pthread_mutex_unlock(&d->lock);
}

/* ---- what upload workers say --------------------------------------------- */

int64_t
owner__dirty_take(struct owner *o, struct owner__job *job)
{
	struct owner__dirty *d = o->dirty;
	int64_t now = worker_now_ms(), wait;
	struct dblk *e;

	pthread_mutex_lock(&d->lock);
	if (now >= d->next_scan_ms) {
		d->next_scan_ms = now + SCAN_MS;
		scan_idle(d, now);
	}
	if ((e = TAILQ_FIRST(&d->queue)) == NULL || d->stop) {
		wait = d->next_scan_ms - now;
		pthread_mutex_unlock(&d->lock);
		return wait > 0 ? wait : 1;
	}
	TAILQ_REMOVE(&d->queue, e, qlink);
	e->queued = 0;
	e->inflight = 1;
	job->ino = e->ino;
	job->bno = e->bno;
	job->serial = e->serial;
	d->inflight++;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

int
owner__dirty_gen(struct owner *o, uint64_t ino, uint64_t bno, uint64_t *gen)
{
	struct owner__dirty *d = o->dirty;
	struct dblk *e;

	pthread_mutex_lock(&d->lock);
	e = tab_find(d, ino, bno);
	if (e != NULL)
		*gen = e->gen;
	pthread_mutex_unlock(&d->lock);
	return e != NULL ? 0 : -ENOENT;
}

void
owner__dirty_uploaded(struct owner *o, uint64_t ino, uint64_t bno,
    enum owner__upload_kind kind, uint64_t inline_gen)
{
	struct owner__dirty *d = o->dirty;
	struct dblk *e;

	pthread_mutex_lock(&d->lock);
	if ((e = tab_find(d, ino, bno)) != NULL)
		tab_del(d, e);
	if (kind == OWNER__UP_KNOWN)
		d->known++;
	else if (kind == OWNER__UP_STORED)
		d->uploaded++;
	if (kind == OWNER__UP_INLINE) {
		d->inl_unpub++;
		if (inline_gen > d->inl_gen)
			d->inl_gen = inline_gen;
	}
	if (d->failing)
		log_info("data: uploads work again");
	d->failing = 0;
	pthread_mutex_unlock(&d->lock);
}

void
owner__dirty_failed(struct owner *o, int rc)
{
	struct owner__dirty *d = o->dirty;

	pthread_mutex_lock(&d->lock);
	d->errors++;
	if (rc == -EDQUOT)
		d->refused++;
	if (!d->failing)
		log_warn("data: upload failed: %s (retrying)", strerror(-rc));
	d->failing = 1;
	pthread_mutex_unlock(&d->lock);
}

void
owner__dirty_job_done(struct owner *o, const struct owner__job *job,
    int failed)
{
	struct owner__dirty *d = o->dirty;
	struct dblk *e;
	int kick = 0;

	pthread_mutex_lock(&d->lock);
	d->inflight--;
	e = tab_find(d, job->ino, job->bno);
	if (e != NULL && e->serial == job->serial) {
		e->inflight = 0;
		if (failed) {
			e->backoff_ms = e->backoff_ms == 0 ? BACKOFF_MIN_MS :
			    e->backoff_ms * 2;
			if (e->backoff_ms > BACKOFF_MAX_MS)
				e->backoff_ms = BACKOFF_MAX_MS;
			e->retry_ms = worker_now_ms() + e->backoff_ms;
		} else {
			e->backoff_ms = 0;
			e->retry_ms = 0;
			kick = enqueue(d, e);	/* stale: newer bytes */
		}
	}
	pthread_cond_broadcast(&d->done);
	pthread_mutex_unlock(&d->lock);
	if (kick)
		owner__upload_kick(o);
}

/* ---- waits ----------------------------------------------------------------- */

int
owner__dirty_sync(struct owner *o, uint64_t ino)
{
	struct owner__dirty *d = o->dirty;
	int ms = o->conf.sync_timeout_ms;
	struct timespec ts;
	uint64_t left, refused0;
	int rc = 0, refused = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&d->lock);
	enqueue_ino(d, ino);
	refused0 = d->refused;
	left = count_ino(d, ino);
	pthread_mutex_unlock(&d->lock);
	if (left > 0 && owner__no_suppliers(o)) {
		log_warn("data: sync: no supplier known and none looked for "
		    "(mounted without --peer or --bootstrap): %" PRIu64
		    " blocks stay in the journal until a mount that has "
		    "suppliers", left);
		return -ENOTCONN;
	}
	owner__upload_kick(o);
	pthread_mutex_lock(&d->lock);
	while ((left = count_ino(d, ino)) > 0 && !d->stop && rc == 0 &&
	    !(refused = d->refused != refused0))
		rc = pthread_cond_timedwait(&d->done, &d->lock, &ts);
	pthread_mutex_unlock(&d->lock);
	if (left > 0 && refused) {
		log_warn("data: sync gave up: suppliers refuse our data "
		    "(see status); %" PRIu64 " blocks of %s stay in the "
		    "journal", left, ino ? "the file" : "all files");
		return -EDQUOT;
	}
	if (left > 0) {
		log_warn("data: sync gave up: %" PRIu64 " blocks of %s still "
		    "in the journal", left, ino ? "the file" : "all files");
		return -ETIMEDOUT;
	}
	return 0;
}

void
owner__dirty_stats(struct owner *o, struct owner_upload_stats *out)
{
	struct owner__dirty *d = o->dirty;

	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&d->lock);
	out->pending_blocks = d->count;
	out->uploading = d->inflight + d->inl_unpub;
	out->uploaded_blocks = d->uploaded;
	out->known_blocks = d->known;
	out->upload_errors = d->errors;
	pthread_mutex_unlock(&d->lock);
}

int
owner__dirty_busy(struct owner *o)
{
	struct owner_upload_stats s;

	owner__dirty_stats(o, &s);
	return s.pending_blocks > 0 || s.uploading > 0;
}

void
owner__dirty_published(struct owner *o, uint64_t gen)
{
	struct owner__dirty *d = o->dirty;

	pthread_mutex_lock(&d->lock);
	if (d->inl_gen <= gen)
		d->inl_unpub = 0;
	pthread_mutex_unlock(&d->lock);
}

uint64_t
owner__dirty_unpublished(struct owner *o)
{
	struct owner__dirty *d = o->dirty;
	uint64_t n;

	pthread_mutex_lock(&d->lock);
	n = d->inl_unpub;
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* ---- life ------------------------------------------------------------------ */

static int
requeue_cb(void *arg, uint64_t ino, uint64_t bno)
{
	struct owner__dirty *d = arg;
	struct dblk *e = tab_get(d, ino, bno);

	if (e == NULL)
		return -ENOMEM;
	enqueue(d, e);
	return 0;
}

int
owner__dirty_init(struct owner *o)
{
	struct owner__dirty *d;
	struct store_txn *t;
	pthread_condattr_t ca;
	int rc;

	if ((d = calloc(1, sizeof *d)) == NULL)
		return -ENOMEM;
	d->at_close = o->conf.write_back_ms < 0;
	d->idle_ms = d->at_close ? IDLE_MS : o->conf.write_back_ms;
	d->max_wait_ms = d->at_close ? d->idle_ms : d->idle_ms * WAIT_FACTOR;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&d->stripe[i], NULL);
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->done, &ca);
	pthread_condattr_destroy(&ca);
	TAILQ_INIT(&d->queue);
	o->dirty = d;

	if ((rc = store_txn_begin(o->conf.store, 1, &t)) == 0) {
		pthread_mutex_lock(&d->lock);
		rc = store_jrnl_iter(t, 0, requeue_cb, d);
		pthread_mutex_unlock(&d->lock);
		store_txn_abort(t);
	}
	if (rc < 0) {
		log_error("data: reading the journal: %s", strerror(-rc));
		owner__dirty_destroy(o);
		return rc;
	}
	if (d->count > 0)
		log_info("data: %" PRIu64 " journal blocks to upload",
		    d->count);
	return 0;
}

void
owner__dirty_stop(struct owner *o)
{
	struct owner__dirty *d = o->dirty;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = 1;
	pthread_cond_broadcast(&d->done);
	pthread_mutex_unlock(&d->lock);
}

void
owner__dirty_destroy(struct owner *o)
{
	struct owner__dirty *d = o->dirty;
	struct dblk *e, *next;

	if (d == NULL)
		return;
	if (d->count > 0)
		log_info("data: %" PRIu64 " blocks stay in the journal",
		    d->count);
	for (size_t i = 0; i < BUCKETS; i++)
		for (e = d->tab[i]; e != NULL; e = next) {
			next = e->hnext;
			free(e);
		}
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&d->stripe[i]);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->done);
	free(d);
	o->dirty = NULL;
}
