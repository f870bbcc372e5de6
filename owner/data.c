/* fs/data.c - file contents: read, write-back journal, upload workers,
 * truncate and drop.
 *
 * Block b of a file covers [b*bs, (b+1)*bs). Its newest bytes are either in
 * a journal staging file (a jrnl record exists), in a stored block (an
 * extent points at a block record) or, for a tiny file, inline in the
 * metadata (an inline record, block 0 only: the whole file is at most
 * STORE_INLINE_MAX bytes when it is uploaded; it reaches the suppliers in
 * the index); none means a hole. Extent and inline record never coexist.
 * Bytes past a
 * block's plain_len or past a staging file's end read as zeros, and no
 * stored byte past the inode size is ever non-zero (truncate cuts), so
 * growing a file needs nothing but the size.
 *
 * Concurrency. Every (ino, bno) hashes to one of STRIPES mutexes; it is
 * held while a staging file is written, read for an upload, cut, or
 * unlinked after an upload commits, so an uploader never commits bytes
 * older than the newest write. Each dirty block has an entry in d->tab
 * (a mirror of the jrnl records) whose gen changes on every write; an
 * upload commits only if gen is unchanged and the jrnl record still exists
 * (the LMDB write lock orders it against truncate and drop).
 * Lock order: stripe -> LMDB write txn -> d->lock; a file's lock alone.
 * LMDB write txns are never held across network calls. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sodium.h>

#include "owner/internal.h"
#include "log.h"
#include "util.h"

#define STRIPES		256
#define BUCKETS		4096
/* A block still being written (its file open) is uploaded once untouched
 * this long, when the write-back delay is 0 (upload at close). */
#define IDLE_MS		2000
#define WRITE_BACK_MS	5000	/* default write-back delay */
/* Writes this recent make the mount busy: blocks that are due wait, up
 * to WAIT_FACTOR delays, for a quiet moment (see scan_idle). */
#define QUIET_MS	1000
#define WAIT_FACTOR	6
#define SCAN_MS		500
#define UPLOAD_NICE	10
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

struct owner__data {
	struct owner *o;
	uint32_t bs;
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
	pthread_cond_t work;	/* workers: queue not empty or stop */
	pthread_cond_t done;	/* syncers: a dirty block went away */
	struct dblk *tab[BUCKETS];
	pthread_mutex_t fetch_lock;	/* protects fetching */
	struct fetching *fetching;
	/* The same entries by inode: close and fsync look up one file's
	 * blocks without walking the whole table under d->lock. */
	struct dblk *itab[BUCKETS];
	struct dblk_q queue;
	uint64_t seq;
	uint64_t count;		/* entries in tab */
	uint64_t inflight;	/* uploads running */
	uint64_t uploaded, known, errors;
	/* Inline commits not yet in a published index (owner__data_published):
	 * on the owner's disk only, so they count as uploading. */
	uint64_t inl_unpub, inl_gen;
	int failing;		/* last upload failed: log once per streak */
	int64_t next_scan_ms;
	int stop;
	struct fnote *notes;	/* forgets an upload may have raced */
	uint64_t fev;		/* forget events (noted, sent) so far */
	uint64_t *since;	/* per worker: fev when its upload began,
				 * UINT64_MAX when idle */

	int nthreads;
	struct worker {
		struct owner__data *d;
		int idx;
		pthread_t th;
	} *workers;
};

/* fi->fh: the last stored block read through this handle, so sequential
 * reads of an uncached block fetch it once even with no cache. */
/* A block being fetched: readers of the same block (the kernel's
 * readahead sends several reads per block at once) wait for it and take
 * it from the cache instead of fetching it again. */
struct fetching {
	unsigned char id[CR_ID_BYTES];
	int done, waiters;
	pthread_cond_t cv;
	struct fetching *next;
};

struct owner_file {
	pthread_mutex_t lock;
	int valid;
	unsigned char id[CR_ID_BYTES];
	uint32_t len;
	unsigned char *buf;	/* bs bytes, allocated on first use */
};

/* A block whose fragments are about to be deleted on suppliers. An
 * upload that stored the same bytes (same fragment ids) before the deletes
 * went out must store them again: noted by the deleter (fs/maint.c)
 * before it checks in a write txn that no record uses the fragment,
 * sent_ev set once the delete is answered, dropped once no upload begun
 * before that is still running. */
struct fnote {
	unsigned char id[CR_ID_BYTES];
	uint64_t sent_ev;	/* 0: not sent yet */
	struct fnote *next;
};

/* Blocks whose fragments a transaction queued for deletion (store_delq,
 * drained by fs/maint.c): after its commit their plaintext leaves the
 * cache and the deleter is woken. */
struct forget {
	struct owner__data *d;	/* NULL before owner__data_init */
	unsigned char (*ids)[CR_ID_BYTES];
	size_t n, cap;
	int queued;		/* delq entries written */
};
#define FORGET_INIT(d) { (d), NULL, 0, 0, 0 }

struct u64v {
	uint64_t *v;
	size_t n, cap;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t
blk_hash(uint64_t ino, uint64_t bno)
{
	uint64_t h = ino * 0x9E3779B97F4A7C15ull ^ (bno + 1) * 0xC2B2AE3D27D4EB4Full;

	return (uint32_t)(h ^ h >> 29 ^ h >> 43);
}

static pthread_mutex_t *
stripe_of(struct owner__data *d, uint64_t ino, uint64_t bno)
{
	return &d->stripe[blk_hash(ino, bno) % STRIPES];
}

static int
u64v_push(struct u64v *a, uint64_t x)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		uint64_t *v = realloc(a->v, cap * sizeof *v);

		if (v == NULL)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = x;
	return 0;
}

/* Inside t: queues the delete of every placed fragment of b (peer[i] not
 * zero); with `gone` (b's record went) also remembers b->id for forget_run.
 * The deleter checks again that no record uses a fragment before it
 * sends, so a same-id block committed meanwhile keeps its fragments. */
static int
forget_push(struct store_txn *t, struct forget *f, const struct store_block *b,
    int gone)
{
	unsigned char fragid[STORE_FRAGID_BYTES];
	int keep = f->d ? f->d->o->conf.keep_versions : 0;
	/* Versions up to the current one may reference b: its fragments go
	 * once `keep` newer versions have pushed them out of the window. */
	uint64_t hold = keep > 0 ? owner__index_seq(t) + (uint64_t)keep : 0;
	int rc;

	memcpy(fragid, b->id, CR_ID_BYTES);
	for (int i = 0; i < CR_EC_MAX; i++) {
		if (sodium_is_zero(b->peer[i], CR_PK_BYTES))
			continue;
		fragid[CR_ID_BYTES] = (unsigned char)i;
		if ((rc = store_delq_put_held(t, b->peer[i], fragid,
		    b->frag_len, hold)) < 0)
			return rc;
		f->queued++;
	}
	if (!gone)
		return 0;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 4;
		unsigned char (*v)[CR_ID_BYTES] = realloc(f->ids,
		    cap * sizeof *v);

		if (v == NULL)
			return -ENOMEM;
		f->ids = v;
		f->cap = cap;
	}
	memcpy(f->ids[f->n++], b->id, CR_ID_BYTES);
	return 0;
}

/* Frees the sent notes no running upload can have raced (d->lock held). */
static void
notes_purge(struct owner__data *d)
{
	uint64_t oldest = UINT64_MAX;
	struct fnote **pp = &d->notes, *nt;

	for (int i = 0; i < d->nthreads; i++)
		if (d->since[i] < oldest)
			oldest = d->since[i];
	while ((nt = *pp) != NULL) {
		if (nt->sent_ev != 0 && nt->sent_ev <= oldest) {
			*pp = nt->next;
			free(nt);
		} else {
			pp = &nt->next;
		}
	}
}

static void
note_done(struct owner__data *d, struct fnote *nt, int sent)
{
	struct fnote **pp;

	if (d == NULL || nt == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	if (sent) {
		nt->sent_ev = ++d->fev;
	} else {
		/* No delete went out: nothing to fear from it. */
		for (pp = &d->notes; *pp != nt; pp = &(*pp)->next)
			;
		*pp = nt->next;
		free(nt);
	}
	notes_purge(d);
	pthread_mutex_unlock(&d->lock);
}

void *
owner__data_note(struct owner *o, const unsigned char id[CR_ID_BYTES])
{
	struct owner__data *d = o->data;
	struct fnote *nt;

	if (d == NULL || (nt = calloc(1, sizeof *nt)) == NULL)
		return NULL;
	memcpy(nt->id, id, CR_ID_BYTES);
	pthread_mutex_lock(&d->lock);
	d->fev++;
	nt->next = d->notes;
	d->notes = nt;
	pthread_mutex_unlock(&d->lock);
	return nt;
}

void
owner__data_unnote(struct owner *o, void *note, int sent)
{
	note_done(o->data, note, sent);
}

/* After the commit that queued the deletes (send): forget the plaintext
 * and wake the deleter. After an abort (!send) only frees. */
static void
forget_run(struct owner *o, struct forget *f, int send)
{
	for (size_t i = 0; i < f->n; i++)
		if (send && o->conf.cache != NULL)
			store_cache_drop(o->conf.cache, f->ids[i]);
	if (send && f->queued)
		owner__maint_kick(o);
	free(f->ids);
	f->ids = NULL;
	f->n = f->cap = 0;
	f->queued = 0;
}

/* 1 when fragments of id stored by an upload begun at forget event
 * `since` may be hit by deletes not sent before it (d->lock held). */
static int
note_conflict(struct owner__data *d, const unsigned char *id, uint64_t since)
{
	for (struct fnote *nt = d->notes; nt != NULL; nt = nt->next)
		if ((nt->sent_ev == 0 || nt->sent_ev > since) &&
		    memcmp(nt->id, id, CR_ID_BYTES) == 0)
			return 1;
	return 0;
}

/* One extent less points at id: refcount--, the record goes (and lands in
 * f) at 0. A missing record is logged and ignored. */
static int
block_unref(struct store_txn *t, const unsigned char *id, struct forget *f)
{
	struct store_block b;
	int rc;

	if ((rc = store_block_get(t, id, &b)) == -ENOENT) {
		log_warn("data: extent points at a missing block record");
		return 0;
	}
	if (rc < 0)
		return rc;
	if (b.refcount > 1) {
		b.refcount--;
		rc = store_block_put(t, &b);
	} else if ((rc = store_block_del(t, id)) == 0) {
		rc = forget_push(t, f, &b, 1);
	}
	sodium_memzero(&b, sizeof b);
	return rc;
}

/* ---- dirty block table (d->lock held) ---------------------------------- */

static uint32_t
ino_slot(uint64_t ino)
{
	return (uint32_t)((ino * 0x9e3779b97f4a7c15ull) >> 40) % BUCKETS;
}

static struct dblk *
tab_find(struct owner__data *d, uint64_t ino, uint64_t bno)
{
	struct dblk *e = d->tab[blk_hash(ino, bno) % BUCKETS];

	while (e != NULL && (e->ino != ino || e->bno != bno))
		e = e->hnext;
	return e;
}

static struct dblk *
tab_get(struct owner__data *d, uint64_t ino, uint64_t bno)
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
	e->last_ms = now_ms();
	e->hnext = d->tab[h];
	d->tab[h] = e;
	e->inext = d->itab[ino_slot(ino)];
	d->itab[ino_slot(ino)] = e;
	d->count++;
	return e;
}

static void
tab_del(struct owner__data *d, struct dblk *e)
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

static void
enqueue(struct owner__data *d, struct dblk *e)
{
	if (e->queued || e->inflight)
		return;
	e->queued = 1;
	TAILQ_INSERT_TAIL(&d->queue, e, qlink);
	pthread_cond_signal(&d->work);
}

/* Queues every dirty block of ino (0: of every file), backoff or not.
 * Returns how many are still dirty. */
static uint64_t
enqueue_ino(struct owner__data *d, uint64_t ino)
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
count_ino(struct owner__data *d, uint64_t ino)
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
scan_idle(struct owner__data *d, int64_t now)
{
	int busy = now - __atomic_load_n(&d->last_write_ms, __ATOMIC_RELAXED) <
	    QUIET_MS;
	int64_t due = busy ? d->max_wait_ms : d->idle_ms;

	for (size_t i = 0; i < BUCKETS; i++)
		for (struct dblk *e = d->tab[i]; e != NULL; e = e->hnext)
			if (now - e->last_ms >= due && now >= e->retry_ms)
				enqueue(d, e);
}

/* A write or truncate changed (ino, bno): its stripe is held, its jrnl
 * record committed. */
static void
mark_dirty(struct owner__data *d, uint64_t ino, uint64_t bno, int full)
{
	struct dblk *e;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	if ((e = tab_get(d, ino, bno)) == NULL) {
		log_error("data: out of memory: block %" PRIu64 " of inode %"
		    PRIu64 " waits for the next mount", bno, ino);
	} else {
		e->gen = ++d->seq;
		e->last_ms = now_ms();
		if (full)
			enqueue(d, e);
	}
	pthread_mutex_unlock(&d->lock);
}

static void
forget_dirty(struct owner__data *d, uint64_t ino, const struct u64v *bnos)
{
	struct dblk *e;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	if (bnos != NULL) {
		for (size_t i = 0; i < bnos->n; i++)
			if ((e = tab_find(d, ino, bnos->v[i])) != NULL)
				tab_del(d, e);
	} else {
		struct dblk *next;

		for (e = d->itab[ino_slot(ino)]; e != NULL; e = next) {
			next = e->inext;
			if (e->ino == ino)
				tab_del(d, e);
		}
	}
	pthread_mutex_unlock(&d->lock);
}

/* ---- block contents ----------------------------------------------------- */

static int
pread_full(int fd, void *buf, size_t len, off_t off, size_t *got)
{
	size_t n = 0;

	while (n < len) {
		ssize_t r = pread(fd, (char *)buf + n, len - n, off + n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += r;
	}
	*got = n;
	return 0;
}

static int
pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t n = 0;

	while (n < len) {
		ssize_t r = pwrite(fd, (const char *)buf + n, len - n, off + n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		n += r;
	}
	return 0;
}

/* 1 after waiting for another thread's fetch of id; 0 when there was
 * none and the caller's fetch is now registered (fetch_done ends it);
 * -1 when it could not be registered (out of memory: fetch anyway). */
static int
fetch_wait(struct owner__data *d, const unsigned char *id)
{
	struct fetching *f;

	pthread_mutex_lock(&d->fetch_lock);
	for (f = d->fetching; f != NULL; f = f->next)
		if (memcmp(f->id, id, CR_ID_BYTES) == 0)
			break;
	if (f != NULL) {
		f->waiters++;
		while (!f->done)
			pthread_cond_wait(&f->cv, &d->fetch_lock);
		if (--f->waiters == 0) {
			pthread_cond_destroy(&f->cv);
			free(f);
		}
		pthread_mutex_unlock(&d->fetch_lock);
		return 1;
	}
	if ((f = calloc(1, sizeof *f)) == NULL) {
		pthread_mutex_unlock(&d->fetch_lock);
		return -1;
	}
	memcpy(f->id, id, CR_ID_BYTES);
	pthread_cond_init(&f->cv, NULL);
	f->waiters = 1;		/* the fetcher itself */
	f->next = d->fetching;
	d->fetching = f;
	pthread_mutex_unlock(&d->fetch_lock);
	return 0;
}

static void
fetch_done(struct owner__data *d, const unsigned char *id)
{
	struct fetching **pp, *f;

	pthread_mutex_lock(&d->fetch_lock);
	for (pp = &d->fetching; *pp != NULL; pp = &(*pp)->next)
		if (memcmp((*pp)->id, id, CR_ID_BYTES) == 0)
			break;
	if ((f = *pp) != NULL) {
		*pp = f->next;
		f->done = 1;
		pthread_cond_broadcast(&f->cv);
		if (--f->waiters == 0) {
			pthread_cond_destroy(&f->cv);
			free(f);
		}
	}
	pthread_mutex_unlock(&d->fetch_lock);
}

static int block_fetch(struct owner *o, const struct store_block *b,
    void *buf);

/* The plaintext of stored block b into buf (bs bytes): cache, else the
 * suppliers (then cached). Returns b->plain_len or -errno. */
static int
block_plain(struct owner *o, uint32_t bs, const struct store_block *b, void *buf)
{
	ssize_t n;
	int rc, reg = -1;

	if (b->plain_len > bs) {
		log_error("data: block of %" PRIu32 " bytes exceeds the block "
		    "size %" PRIu32, b->plain_len, bs);
		return -EIO;
	}
	if (o->conf.cache != NULL) {
		n = store_cache_get(o->conf.cache, b->id, buf, bs);
		if (n == (ssize_t)b->plain_len)
			return (int)n;
		if ((reg = fetch_wait(o->data, b->id)) == 1) {
			n = store_cache_get(o->conf.cache, b->id, buf, bs);
			if (n == (ssize_t)b->plain_len)
				return (int)n;
		}
	}
	rc = block_fetch(o, b, buf);
	if (reg == 0)
		fetch_done(o->data, b->id);
	return rc;
}

static int
block_fetch(struct owner *o, const struct store_block *b, void *buf)
{
	uint32_t bad = 0;
	int rc;

	/* Hook of fs/pin.c (offline use, `peerfs pin`): pinned blocks come
	 * from the owner's disk, and a fetched block a pinned file uses is
	 * kept there. Owned by the pin code; keep to these two calls. */
	if ((rc = owner__pin_read(o, b, buf)) >= 0)
		return rc;
	if (o->conf.net == NULL)
		return -EIO;
	rc = net_block_fetch_report(o->conf.net, b, buf, &bad);
	if (bad != 0)
		owner__maint_report_bad(o, b, bad);
	if (rc < 0) {
		log_warn("data: block fetch failed: %s", strerror(-rc));
		return -EIO;
	}
	owner__pin_fetched(o, b, buf);	/* fs/pin.c hook, see above */
	if (o->conf.cache != NULL)
		store_cache_put(o->conf.cache, b->id, buf, b->plain_len);
	return (int)b->plain_len;
}

/* ---- overlay blocks ------------------------------------------------------
 * A write that leaves part of a stored block whose plaintext is not in the
 * cache does not fetch it (no network in the write path, and writes work
 * with the suppliers away): the staging file then holds only the bytes
 * written, and a second staging file, (ino, bno | OVL_BIT), lists them as
 * 8-byte records (u32 BE offset, u32 BE length), appended; a torn last
 * record is ignored. Everything not listed comes from the stored block the
 * extent still points at, merged when the block is uploaded or read. */
#define OVL_BIT		(1ull << 63)
#ifndef OVL_MAX
#define OVL_MAX		(1u << 20)	/* bytes of ranges, then fold */
#endif

/* 1 and *rg (malloc'd, n pairs) when (ino, bno) is an overlay block,
 * 0 when not, or -errno. */
static int
ovl_read(struct store *st, uint64_t ino, uint64_t bno, uint32_t **rg,
    size_t *n)
{
	unsigned char *raw;
	struct stat sb;
	size_t got, cnt;
	int fd, rc;

	*rg = NULL;
	*n = 0;
	if ((fd = store_jrnl_fd(st, ino, bno | OVL_BIT, O_RDONLY)) == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	cnt = (size_t)(sb.st_size < OVL_MAX ? sb.st_size : OVL_MAX) / 8;
	raw = malloc(cnt * 8 + 1);
	*rg = malloc(cnt * 2 * sizeof **rg + 1);
	if (raw == NULL || *rg == NULL) {
		rc = -ENOMEM;
	} else if ((rc = pread_full(fd, raw, cnt * 8, 0, &got)) == 0) {
		for (size_t i = 0; i < got / 8; i++) {
			(*rg)[2 * i] = get_be32(raw + 8 * i);
			(*rg)[2 * i + 1] = get_be32(raw + 8 * i + 4);
		}
		*n = got / 8;
		rc = 1;
	}
	close(fd);
	free(raw);
	if (rc < 0) {
		free(*rg);
		*rg = NULL;
	}
	return rc;
}

/* Appends the range [off, off+len). create: a new list (durable before it
 * returns, as the jrnl record about to be committed depends on it);
 * otherwise -ENOENT when the block is no overlay block. */
static int
ovl_add(struct store *st, uint64_t ino, uint64_t bno, uint32_t off,
    uint32_t len, int create)
{
	unsigned char rec[8];
	int fd, rc;

	struct stat sb;

	fd = store_jrnl_fd(st, ino, bno | OVL_BIT, create ?
	    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND : O_WRONLY | O_APPEND);
	if (fd < 0)
		return fd;
	if (fstat(fd, &sb) == 0 && sb.st_size + sizeof rec > OVL_MAX) {
		close(fd);
		return -EFBIG;
	}
	put_be32(rec, off);
	put_be32(rec + 4, len);
	rc = write(fd, rec, sizeof rec) == (ssize_t)sizeof rec ? 0 :
	    errno ? -errno : -EIO;
	if (rc == 0 && create && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static void
ovl_unlink(struct store *st, uint64_t ino, uint64_t bno)
{
	store_jrnl_unlink(st, ino, bno | OVL_BIT);
}

static int ovl_merge(struct owner *o, uint64_t ino, uint64_t bno,
    const uint32_t *rg, size_t n, unsigned char *buf);

/* The range list of (ino, bno) is full: fold the stored block into the
 * staging file (fd) and make it a plain journal block. [off, off+len) is
 * written in the staging file but not listed yet. Needs the suppliers
 * (or the cache). Stripe held. */
static int
ovl_fold(struct owner *o, int fd, uint64_t ino, uint64_t bno, uint32_t off,
    uint32_t len)
{
	struct store *st = o->conf.store;
	unsigned char *buf = malloc(o->data->bs);
	uint32_t *rg = NULL, *rg2;
	size_t n;
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	if ((rc = ovl_read(st, ino, bno, &rg, &n)) <= 0)
		goto out;
	if ((rg2 = realloc(rg, (n + 1) * 2 * sizeof *rg)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rg = rg2;
	rg[2 * n] = off;
	rg[2 * n + 1] = len;
	if ((rc = ovl_merge(o, ino, bno, rg, n + 1, buf)) < 0 ||
	    (rc = pwrite_full(fd, buf, o->data->bs, 0)) < 0)
		goto out;
	if (fdatasync(fd) < 0) {
		rc = -errno;
		goto out;
	}
	store_jrnl_unlink(st, ino, bno | OVL_BIT);
	rc = 0;
out:
	free(rg);
	free(buf);
	return rc;
}

/* 1 when the ranges cover [off, off+len). */
static int
ovl_covers(const uint32_t *rg, size_t n, uint64_t off, uint64_t len)
{
	uint64_t pos = off, end = off + len;
	int moved = 1;

	while (pos < end && moved) {
		moved = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t a = rg[2 * i], b = a + rg[2 * i + 1];

			if (a <= pos && pos < b) {
				pos = b;
				moved = 1;
			}
		}
	}
	return pos >= end;
}

/* The newest plaintext of overlay block (ino, bno) into buf (bs bytes,
 * all written): the stored block under the listed staging bytes. Stripe
 * held. -EIO when the stored block cannot be had. */
static int
ovl_merge(struct owner *o, uint64_t ino, uint64_t bno, const uint32_t *rg,
    size_t n, unsigned char *buf)
{
	struct store *st = o->conf.store;
	uint32_t bs = o->data->bs;
	struct store_txn *t;
	struct store_block b;
	unsigned char id[CR_ID_BYTES];
	size_t got, ilen;
	int rc, fd, inl = 0;

	memset(buf, 0, bs);
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	if ((rc = store_extent_get(t, ino, bno, id)) == 0)
		rc = store_block_get(t, id, &b);
	else if (rc == -ENOENT &&
	    (rc = store_inline_get(t, ino, bno, buf, bs, &ilen)) == 0)
		inl = 1;
	store_txn_abort(t);
	if (rc == 0 && !inl)
		rc = block_plain(o, bs, &b, buf);
	sodium_memzero(&b, sizeof b);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if ((fd = store_jrnl_fd(st, ino, bno, O_RDONLY)) < 0 && fd != -ENOENT)
		return fd;
	for (size_t i = 0; i < n; i++) {
		uint64_t a = rg[2 * i], l = rg[2 * i + 1];

		if (a >= bs)
			continue;
		if (l > bs - a)
			l = bs - a;
		got = 0;
		if (fd >= 0 && (rc = pread_full(fd, buf + a, l, a, &got)) < 0)
			break;
		memset(buf + a + got, 0, l - got);
		rc = 0;
	}
	if (fd >= 0)
		close(fd);
	return rc < 0 ? rc : 0;
}

/* Reads [boff, boff+len) of block bno into dst (pre-zeroed). */
static int
read_block(struct owner *o, struct owner_file *fh, uint64_t ino, uint64_t bno,
    uint32_t boff, uint32_t len, char *dst)
{
	struct owner__data *d = o->data;
	struct store *st = o->conf.store;
	pthread_mutex_t *sl = stripe_of(d, ino, bno);
	struct store_txn *t;
	struct store_block b;
	unsigned char id[CR_ID_BYTES];
	unsigned char *buf = NULL;
	size_t got;
	int rc, fd, plen, reg = -1;

	pthread_mutex_lock(sl);
	if ((rc = store_txn_begin(st, 1, &t)) < 0) {
		pthread_mutex_unlock(sl);
		return rc;
	}
	if ((rc = store_jrnl_has(t, ino, bno)) > 0) {
		uint32_t *rg;
		size_t n;

		store_txn_abort(t);
		rc = ovl_read(st, ino, bno, &rg, &n);
		if (rc > 0 && !ovl_covers(rg, n, boff, len)) {
			if ((buf = malloc(d->bs)) == NULL)
				rc = -ENOMEM;
			else if ((rc = ovl_merge(o, ino, bno, rg, n, buf)) == 0)
				memcpy(dst, buf + boff, len);
			free(buf);
			free(rg);
			pthread_mutex_unlock(sl);
			return rc;
		}
		free(rg);
		fd = rc < 0 ? rc : store_jrnl_fd(st, ino, bno, O_RDONLY);
		if (fd == -ENOENT)
			rc = 0;		/* record without bytes: zeros */
		else if (fd < 0)
			rc = fd;
		else {
			rc = pread_full(fd, dst, len, boff, &got);
			close(fd);
		}
		pthread_mutex_unlock(sl);
		return rc;
	}
	if (rc == 0 && (rc = store_extent_get(t, ino, bno, id)) == -ENOENT) {
		unsigned char ib[STORE_INLINE_MAX];
		size_t ilen;

		rc = store_inline_get(t, ino, bno, ib, sizeof ib, &ilen);
		store_txn_abort(t);
		pthread_mutex_unlock(sl);
		if (rc == 0 && boff < ilen)
			memcpy(dst, ib + boff, len < ilen - boff ? len :
			    ilen - boff);
		return rc == -ENOENT ? 0 : rc;	/* else a hole */
	}
	if (rc == 0)
		rc = store_block_get(t, id, &b);
	store_txn_abort(t);
	pthread_mutex_unlock(sl);
	if (rc == -ENOENT)
		return 0;		/* hole */
	if (rc < 0)
		return rc;

	if (fh != NULL) {
		/* The handle's last block serves the reads inside it. */
		pthread_mutex_lock(&fh->lock);
		if (fh->valid && memcmp(fh->id, b.id, CR_ID_BYTES) == 0) {
			if (boff < fh->len)
				memcpy(dst, fh->buf + boff,
				    len < fh->len - boff ? len : fh->len - boff);
			pthread_mutex_unlock(&fh->lock);
			rc = 0;
			goto out;
		}
		pthread_mutex_unlock(&fh->lock);
	}
	/* A cached block gives just the range asked for. */
	if (o->conf.cache != NULL && b.plain_len <= d->bs &&
	    (plen = (int)store_cache_get_range(o->conf.cache, b.id, boff,
	    dst, len)) == (int)b.plain_len) {
		rc = 0;
		goto out;
	}
	/* The kernel's readahead sends several reads of one block at once:
	 * one fetches, the others wait and take their range from the cache
	 * (not the whole block). */
	if (o->conf.cache != NULL && b.plain_len <= d->bs &&
	    (reg = fetch_wait(d, b.id)) == 1 &&
	    (plen = (int)store_cache_get_range(o->conf.cache, b.id, boff,
	    dst, len)) == (int)b.plain_len) {
		rc = 0;
		goto out;
	}
	/* Fetched without the handle's lock: the kernel's readahead reads
	 * the next block through the same handle meanwhile. */
	if ((buf = malloc(d->bs)) == NULL)
		plen = -ENOMEM;
	else if (b.plain_len > d->bs)
		plen = block_plain(o, d->bs, &b, buf);	/* logs, -EIO */
	else
		plen = block_fetch(o, &b, buf);
	if (reg == 0)
		fetch_done(d, b.id);
	if (plen < 0) {
		rc = plen;
		goto out;
	}
	if (boff < (uint32_t)plen)
		memcpy(dst, buf + boff,
		    len < plen - boff ? len : plen - boff);
	rc = 0;
	if (fh != NULL) {
		unsigned char *old;

		pthread_mutex_lock(&fh->lock);
		old = fh->buf;
		fh->buf = buf;
		buf = old;
		memcpy(fh->id, b.id, CR_ID_BYTES);
		fh->len = plen;
		fh->valid = 1;
		pthread_mutex_unlock(&fh->lock);
	}
out:
	free(buf);
	sodium_memzero(&b, sizeof b);
	return rc;
}

/* Writes len bytes at boff of block bno into its staging file, creating
 * it (from the stored block when the write leaves some of it) and the
 * jrnl record when needed; end is the file offset just past the write. */
static int net_online(struct owner *o);

/* An inline record committed with change number gen is on the owner's
 * disk only until an index that holds it is published
 * (owner__data_published). d->lock held. */
static void
inline_committed(struct owner__data *d, uint64_t gen)
{
	d->inl_unpub++;
	if (gen > d->inl_gen)
		d->inl_gen = gen;
}

/* A write that leaves a tiny file whole in its inline record (block 0,
 * no journal, no extent) goes straight to the metadata: no staging file,
 * no upload, one transaction. The stripe of (ino, 0) is held. -EAGAIN
 * when the journal must take it instead (bytes outside the record, or no
 * supplier online to publish an index to). */
static int
write_inline(struct owner *o, uint64_t ino, uint32_t boff, const char *src,
    uint32_t len, const unsigned char *old, size_t olen)
{
	struct owner__data *d = o->data;
	unsigned char nb[STORE_INLINE_MAX];
	size_t nlen = olen > (size_t)boff + len ? olen : (size_t)boff + len;
	struct store_txn *t;
	struct store_inode in;
	uint64_t gen = 0;
	int rc;

	if (nlen > STORE_INLINE_MAX || !net_online(o))
		return -EAGAIN;
	memset(nb, 0, nlen);
	memcpy(nb, old, olen);
	memcpy(nb + boff, src, len);
	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		return rc;
	if ((rc = store_ino_get(t, ino, &in)) < 0)
		goto fail;
	if (in.size > nlen) {
		rc = -EAGAIN;
		goto fail;
	}
	in.size = nlen;
	store_inode_touch(&in, STORE_MTIME | STORE_CTIME);
	if ((rc = store_inline_put(t, ino, 0, nb, nlen)) < 0 ||
	    (rc = store_ino_put(t, &in)) < 0 ||
	    (rc = store_txn_gen(t, &gen)) < 0)
		goto fail;
	if ((rc = store_txn_commit(t)) < 0)
		return rc;
	pthread_mutex_lock(&d->lock);
	inline_committed(d, gen);
	pthread_mutex_unlock(&d->lock);
	sodium_memzero(nb, nlen);
	return 0;
fail:
	store_txn_abort(t);
	sodium_memzero(nb, nlen);
	return rc;
}

static int
write_block(struct owner *o, uint64_t ino, uint64_t bno, uint32_t boff,
    const char *src, uint32_t len)
{
	struct owner__data *d = o->data;
	struct store *st = o->conf.store;
	pthread_mutex_t *sl = stripe_of(d, ino, bno);
	struct store_txn *t = NULL;
	struct store_inode in;
	struct store_block b;
	unsigned char id[CR_ID_BYTES];
	unsigned char *old = NULL;
	unsigned char ib[STORE_INLINE_MAX];
	uint64_t end = bno * d->bs + boff + len;
	size_t ilen = 0;
	int rc, has, rmw = 0, ovl = 0, fd = -1, plen = 0, inl = 0, noext = 0;

	pthread_mutex_lock(sl);
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		goto out;
	if ((rc = has = store_jrnl_has(t, ino, bno)) < 0)
		goto out;
	if (!has) {
		rc = store_extent_get(t, ino, bno, id);
		if (rc == -ENOENT) {
			/* Inline bytes are local: the staging file starts
			 * from them when the write leaves some. */
			noext = 1;
			rc = store_inline_get(t, ino, bno, ib, sizeof ib, &ilen);
			inl = rc == 0 && (boff > 0 || len < ilen);
			if (rc == -ENOENT)
				ilen = 0;
		} else if (rc == 0 && (rc = store_block_get(t, id, &b)) == 0) {
			rmw = boff > 0 || len < b.plain_len;
		}
		if (rc == -ENOENT)
			rc = 0;
		if (rc < 0)
			goto out;
	}
	store_txn_abort(t);
	t = NULL;
	/* A new record (and later a block record): leave the end of the map
	 * to deletes, or nothing could be unlinked to make room. */
	if (!has && (rc = store_map_room(st, STORE_ROOM_JOURNAL)) < 0)
		goto out;
	if (!has && noext && bno == 0 && boff + len <= STORE_INLINE_MAX &&
	    (rc = write_inline(o, ino, boff, src, len, ib, ilen)) != -EAGAIN)
		goto out;
	rc = 0;

	if (has) {
		fd = store_jrnl_fd(st, ino, bno, O_RDWR);
		if (fd == -ENOENT)
			fd = store_jrnl_fd(st, ino, bno, O_RDWR | O_CREAT);
	} else {
		/* Files left without a record are stale: start empty. */
		ovl_unlink(st, ino, bno);
		fd = store_jrnl_fd(st, ino, bno, O_RDWR | O_CREAT | O_TRUNC);
	}
	if ((rc = fd) < 0)
		goto out;
	if (inl && (rc = pwrite_full(fd, ib, ilen, 0)) < 0)
		goto out;
	if (rmw) {
		/* The old bytes from the cache, else an overlay block. */
		if ((old = malloc(d->bs)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		if (o->conf.cache != NULL)
			plen = store_cache_get(o->conf.cache, b.id, old, d->bs);
		if (plen == (int)b.plain_len) {
			if ((rc = pwrite_full(fd, old, plen, 0)) < 0)
				goto out;
		} else {
			rmw = 0;
			ovl = 1;
		}
	}
	if ((rc = pwrite_full(fd, src, len, boff)) < 0)
		goto out;
	/* The journal now holds bytes the user did not write in this call
	 * and that exist nowhere else once the extent goes: make them
	 * durable before the record says so. */
	if ((rmw || inl) && fdatasync(fd) < 0) {
		rc = -errno;
		goto out;
	}
	if (ovl)
		rc = ovl_add(st, ino, bno, boff, len, 1);
	else if (has && (rc = ovl_add(st, ino, bno, boff, len, 0)) == -ENOENT)
		rc = 0;
	if (rc == -EFBIG)
		rc = ovl_fold(o, fd, ino, bno, boff, len);
	if (rc < 0)
		goto out;

	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		goto out;
	if (!has && (rc = store_jrnl_put(t, ino, bno)) < 0)
		goto out;
	if ((rc = store_ino_get(t, ino, &in)) < 0)
		goto out;
	if (end > in.size)
		in.size = end;
	store_inode_touch(&in, STORE_MTIME | STORE_CTIME);
	if ((rc = store_ino_put(t, &in)) < 0)
		goto out;
	rc = store_txn_commit(t);
	t = NULL;
	if (rc == 0)
		mark_dirty(d, ino, bno, boff + len == d->bs);
out:
	if (t != NULL)
		store_txn_abort(t);
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(sl);
	free(old);
	sodium_memzero(&b, sizeof b);
	return rc;
}

/* ---- upload workers ---------------------------------------------------- */

enum { UP_DONE, UP_STALE, UP_FAIL };

struct jrnl_list {
	uint64_t ino;
	uint64_t from;
	struct u64v bnos;
};

static int
jrnl_collect(void *arg, uint64_t ino, uint64_t bno)
{
	struct jrnl_list *l = arg;

	if (ino != l->ino || bno < l->from)
		return 0;
	return u64v_push(&l->bnos, bno);
}

struct ext_list {
	struct u64v bnos;
	unsigned char (*ids)[CR_ID_BYTES];
	size_t cap;
};

static int
ext_collect(void *arg, uint64_t bno, const unsigned char *id)
{
	struct ext_list *l = arg;

	if (l->bnos.n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *v = realloc(l->ids, cap * CR_ID_BYTES);

		if (v == NULL)
			return -ENOMEM;
		l->ids = v;
		l->cap = cap;
	}
	memcpy(l->ids[l->bnos.n], id, CR_ID_BYTES);
	return u64v_push(&l->bnos, bno);
}

/* Deletes every extent (and inline record) of ino from bno `from` on,
 * inside t. */
static int
extents_drop(struct store_txn *t, uint64_t ino, uint64_t from,
    struct forget *f)
{
	struct ext_list l = { { NULL, 0, 0 }, NULL, 0 };
	int rc = 0;

	/* Only block 0 is ever inline (upload_one). */
	if (from == 0 && (rc = store_inline_del(t, ino, 0)) == -ENOENT)
		rc = 0;
	if (rc == 0)
		rc = store_extent_iter(t, ino, from, ext_collect, &l);
	for (size_t i = 0; rc == 0 && i < l.bnos.n; i++) {
		if ((rc = store_extent_del(t, ino, l.bnos.v[i])) == 0)
			rc = block_unref(t, l.ids[i], f);
	}
	free(l.bnos.v);
	free(l.ids);
	return rc;
}

/* Deletes the jrnl records of ino from bno `from` on, inside t; their
 * numbers land in out (staging files to unlink after the commit). */
static int
jrnl_drop(struct store_txn *t, uint64_t ino, uint64_t from, struct u64v *out)
{
	struct jrnl_list l = { ino, from, { NULL, 0, 0 } };
	int rc;

	rc = store_jrnl_iter(t, ino, jrnl_collect, &l);
	for (size_t i = 0; rc == 0 && i < l.bnos.n; i++)
		rc = store_jrnl_del(t, ino, l.bnos.v[i]);
	*out = l.bnos;
	return rc;
}

static int
all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* rec was stored again for bytes that cur (same id) already holds: the
 * fragments placed on other suppliers than cur's are strays to delete.
 * The ones on cur's suppliers are the live ones (same ids): untouched. */
static int
strays_push(struct store_txn *t, struct forget *f,
    const struct store_block *rec, const struct store_block *cur)
{
	struct store_block x = *rec;
	int n = 0, rc;

	for (int i = 0; i < CR_EC_MAX; i++) {
		if (memcmp(x.peer[i], cur->peer[i], CR_PK_BYTES) == 0)
			memset(x.peer[i], 0, CR_PK_BYTES);
		else
			n++;
	}
	rc = n > 0 ? forget_push(t, f, &x, 0) : 0;
	sodium_memzero(&x, sizeof x);
	return rc;
}

/* The convergent key of plain into key; 1 and *rec when this owner
 * stores a block of the same bytes already (then no upload: the commit
 * adds a reference, as it would after uploading them again), 0 when not,
 * or -errno. */
static int
block_known(struct owner *o, const void *plain, size_t len,
    unsigned char key[CR_KEY_BYTES], struct store_block *rec)
{
	unsigned char id[CR_ID_BYTES];
	struct store_txn *t;
	int rc;

	cr_block_key(key, plain, len, o->conf.datakey);
	cr_block_id(id, key);
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		return rc;
	rc = store_block_get(t, id, rec);
	store_txn_abort(t);
	return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

/* In one txn: the extent of (ino, bno) becomes rec (NULL: a hole), the
 * old block loses a reference, the jrnl record goes. With ibuf (rec NULL)
 * the block becomes the inline record ibuf[0..ilen) instead, and *gen
 * gets the change number of the commit. 1 when the record or the inode is
 * gone meanwhile, 2 when rec's fragments may have been hit by a forget
 * since forget number `since`, or the file outgrew an inline block (store
 * again); nothing changed. */
static int
upload_commit(struct owner *o, uint64_t ino, uint64_t bno,
    struct store_block *rec, int known, uint64_t since, struct forget *f,
    const unsigned char *ibuf, size_t ilen, uint64_t *gen)
{
	struct owner__data *d = o->data;
	struct store_txn *t;
	struct store_inode in;
	struct store_block cur;
	unsigned char old[CR_ID_BYTES];
	int rc, have_old;

	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		return rc;
	if ((rc = store_jrnl_has(t, ino, bno)) <= 0 ||
	    (rc = store_ino_get(t, ino, &in)) < 0) {
		store_txn_abort(t);
		return rc == 0 || rc == -ENOENT ? 1 : rc;
	}
	if ((rc = store_extent_get(t, ino, bno, old)) < 0 && rc != -ENOENT)
		goto fail;
	have_old = rc == 0;
	if (ibuf != NULL) {
		/* Grown past a tiny file by another block meanwhile. */
		if (in.size > STORE_INLINE_MAX) {
			store_txn_abort(t);
			return 2;
		}
		if (have_old && ((rc = block_unref(t, old, f)) < 0 ||
		    (rc = store_extent_del(t, ino, bno)) < 0))
			goto fail;
		if ((rc = store_inline_put(t, ino, bno, ibuf, ilen)) < 0 ||
		    (rc = store_txn_gen(t, gen)) < 0)
			goto fail;
		goto jrnl;
	}
	if ((rc = store_inline_del(t, ino, bno)) < 0 && rc != -ENOENT)
		goto fail;
	if (have_old && rec != NULL &&
	    memcmp(old, rec->id, CR_ID_BYTES) == 0) {
		/* Same bytes as before. */
		if ((rc = store_block_get(t, old, &cur)) == 0)
			rc = strays_push(t, f, rec, &cur);
		sodium_memzero(&cur, sizeof cur);
		if (rc < 0)
			goto fail;
		goto jrnl;
	}
	if (have_old && (rc = block_unref(t, old, f)) < 0)
		goto fail;
	if (rec != NULL) {
		rc = store_block_get(t, rec->id, &cur);
		if (rc == 0) {
			/* Same content elsewhere: keep the known record. */
			cur.refcount++;
			if ((rc = store_block_put(t, &cur)) == 0)
				rc = strays_push(t, f, rec, &cur);
			sodium_memzero(&cur, sizeof cur);
		} else if (rc == -ENOENT && known) {
			/* The block known before the upload went meanwhile:
			 * its fragments may be deleted. Store it after all. */
			store_txn_abort(t);
			return 2;
		} else if (rc == -ENOENT) {
			pthread_mutex_lock(&d->lock);
			rc = note_conflict(d, rec->id, since) ? 2 : 0;
			pthread_mutex_unlock(&d->lock);
			if (rc == 2) {
				store_txn_abort(t);
				return 2;
			}
			rec->refcount = 1;
			rc = store_block_put(t, rec);
		}
		if (rc < 0 || (rc = store_extent_put(t, ino, bno, rec->id)) < 0)
			goto fail;
	} else if (have_old && (rc = store_extent_del(t, ino, bno)) < 0) {
		goto fail;
	}
jrnl:
	if ((rc = store_jrnl_del(t, ino, bno)) < 0)
		goto fail;
	return store_txn_commit(t);
fail:
	store_txn_abort(t);
	return rc;
}

static void
upload_failed(struct owner__data *d, int rc)
{
	pthread_mutex_lock(&d->lock);
	d->errors++;
	if (!d->failing)
		log_warn("data: upload failed: %s (retrying)", strerror(-rc));
	d->failing = 1;
	pthread_mutex_unlock(&d->lock);
}

/* The fragments of rec were stored for bytes nobody wants any more:
 * delete them unless a record (the same bytes elsewhere) uses them. The
 * write txn orders the check against uploads committing the same id. */
static void
orphan_forget(struct owner *o, const struct store_block *rec)
{
	struct forget f = FORGET_INIT(o->data);
	struct store_txn *t;
	struct store_block cur;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		goto out;
	if ((rc = store_block_get(t, rec->id, &cur)) == -ENOENT)
		rc = forget_push(t, &f, rec, 0);
	else if (rc == 0)
		rc = strays_push(t, &f, rec, &cur);
	if (rc < 0)
		store_txn_abort(t);
	else
		rc = store_txn_commit(t);
	sodium_memzero(&cur, sizeof cur);
	forget_run(o, &f, rc == 0);
out:
	if (rc < 0)
		log_warn("data: fragments of an unused block stay on their "
		    "suppliers: %s", strerror(-rc));
}

/* 1 when some supplier is online. An inline block is only on the
 * network once an index holding it is published: with nobody to take
 * one it stays in the journal, pending as a block would (umount tells). */
static int
net_online(struct owner *o)
{
	/* A zero wait reads the session count under net's lock: no trip to
	 * the loop thread on this path (every tiny write asks). */
	return o->conf.net != NULL && net_wait_online(o->conf.net, 1, 0) > 0;
}

static int
upload_one(struct owner *o, int idx, uint64_t ino, uint64_t bno,
    unsigned char *buf)
{
	struct owner__data *d = o->data;
	struct store *st = o->conf.store;
	pthread_mutex_t *sl = stripe_of(d, ino, bno);
	struct store_txn *t;
	struct store_inode in;
	struct store_block rec, *recp = &rec;
	struct forget f = FORGET_INIT(d);
	struct dblk *e;
	uint64_t gen, since, igen = 0;
	unsigned char key[CR_KEY_BYTES];
	size_t len = 0, got = 0;
	int rc, fd, ret, inl = 0, known = 0;

	pthread_mutex_lock(sl);
	pthread_mutex_lock(&d->lock);
	e = tab_find(d, ino, bno);
	gen = e != NULL ? e->gen : 0;
	pthread_mutex_unlock(&d->lock);
	if (e == NULL) {
		pthread_mutex_unlock(sl);
		return UP_DONE;
	}
	if ((rc = store_txn_begin(st, 1, &t)) == 0) {
		rc = store_ino_get(t, ino, &in);
		store_txn_abort(t);
	}
	if (rc == 0 && in.size > bno * d->bs) {
		uint32_t *rg;
		size_t n;

		len = in.size - bno * d->bs;
		if (len > d->bs)
			len = d->bs;
		if ((rc = ovl_read(st, ino, bno, &rg, &n)) > 0) {
			rc = ovl_merge(o, ino, bno, rg, n, buf);
			free(rg);
			if (rc < 0) {
				/* The old bytes are on the suppliers: later. */
				pthread_mutex_unlock(sl);
				upload_failed(d, rc);
				return UP_FAIL;
			}
		} else if (rc == 0 && (fd = store_jrnl_fd(st, ino, bno,
		    O_RDONLY)) >= 0) {
			rc = pread_full(fd, buf, len, 0, &got);
			close(fd);
			memset(buf + got, 0, len - got);
		} else if (rc == 0 && fd == -ENOENT) {
			log_warn("data: staging file of block %" PRIu64
			    " of inode %" PRIu64 " is missing: zeros",
			    bno, ino);
			memset(buf, 0, len);
		} else if (rc == 0) {
			rc = fd;
		}
	} else if (rc == -ENOENT) {
		rc = 0;		/* inode gone: drop the record */
	}
	pthread_mutex_unlock(sl);
	if (rc < 0) {
		log_error("data: reading block %" PRIu64 " of inode %" PRIu64
		    ": %s", bno, ino, strerror(-rc));
		return UP_FAIL;
	}

	pthread_mutex_lock(&d->lock);
	since = d->since[idx] = d->fev;
	pthread_mutex_unlock(&d->lock);
	if (len == 0 || all_zero(buf, len)) {
		recp = NULL;
	} else if (bno == 0 && len == in.size && len <= STORE_INLINE_MAX) {
		/* The whole file, tiny: kept in the metadata, no seal, no
		 * fragments; the index carries it to the suppliers. */
		if (!net_online(o)) {
			upload_failed(d, -ENOTCONN);
			return UP_FAIL;
		}
		recp = NULL;
		inl = 1;
	} else {
		/* Without room for its record: later (retried). */
		if ((rc = store_map_room(st, STORE_ROOM_COMMIT)) == 0 &&
		    (rc = block_known(o, buf, len, key, &rec)) == 0)
			rc = o->conf.net == NULL ? -ENOTCONN :
			    net_block_store_keyed(o->conf.net, buf, len, key,
			    &rec);
		sodium_memzero(key, sizeof key);
		if (rc < 0) {
			upload_failed(d, rc);
			return UP_FAIL;
		}
		known = rc > 0;
	}

	pthread_mutex_lock(sl);
	pthread_mutex_lock(&d->lock);
	e = tab_find(d, ino, bno);
	ret = e != NULL && e->gen == gen ? UP_DONE : UP_STALE;
	pthread_mutex_unlock(&d->lock);
	if (ret == UP_STALE) {
		pthread_mutex_unlock(sl);
		if (recp != NULL && !known)
			orphan_forget(o, recp);
		sodium_memzero(&rec, sizeof rec);
		return ret;
	}
	rc = upload_commit(o, ino, bno, recp, known, since, &f,
	    inl ? buf : NULL, len, &igen);
	if (rc < 0 || rc == 2) {
		pthread_mutex_unlock(sl);
		if (rc < 0)
			log_error("data: committing block %" PRIu64
			    " of inode %" PRIu64 ": %s", bno, ino,
			    strerror(-rc));
		else
			log_debug("data: block %" PRIu64 " of inode %" PRIu64
			    " raced a forget of the same bytes: again",
			    bno, ino);
		sodium_memzero(&rec, sizeof rec);
		forget_run(o, &f, 0);
		return rc < 0 ? UP_FAIL : UP_STALE;
	}
	store_jrnl_unlink(st, ino, bno);
	ovl_unlink(st, ino, bno);
	/* Before the entry goes, so a syncer woken by it sees the old
	 * block forgotten and the new one cached. */
	forget_run(o, &f, 1);
	if (rc == 1 && recp != NULL && !known)
		orphan_forget(o, recp);	/* file cut or gone */
	if (rc == 0 && recp != NULL && o->conf.cache != NULL)
		store_cache_put(o->conf.cache, rec.id, buf, len);
	pthread_mutex_lock(&d->lock);
	if ((e = tab_find(d, ino, bno)) != NULL)
		tab_del(d, e);
	if (rc == 0 && recp != NULL && known)
		d->known++;
	else if (rc == 0 && recp != NULL)
		d->uploaded++;
	if (rc == 0 && inl)
		inline_committed(d, igen);
	if (d->failing)
		log_info("data: uploads work again");
	d->failing = 0;
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_unlock(sl);

	if (rc == 0)
		log_debug("data: block %" PRIu64 " of inode %" PRIu64
		    " %s (%zu bytes)", bno, ino, inl ? "inline" : "stored",
		    len);
	sodium_memzero(&rec, sizeof rec);
	return UP_DONE;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct owner__data *d = w->d;
	struct dblk *e;
	unsigned char *buf = malloc(d->bs);
	struct timespec ts;
	uint64_t ino, bno, serial;
	int64_t now;
	int r;

	if (buf == NULL) {
		log_error("data: upload worker: out of memory");
		return NULL;
	}
	/* Uploads are background work: on a busy machine the threads that
	 * answer the user's file operations come first (Linux nice is per
	 * thread). Best effort. */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
	    UPLOAD_NICE) < 0)
		log_debug("data: upload worker: nice: %s", strerror(errno));
	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		now = now_ms();
		if (now >= d->next_scan_ms) {
			d->next_scan_ms = now + SCAN_MS;
			scan_idle(d, now);
		}
		if ((e = TAILQ_FIRST(&d->queue)) == NULL) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += SCAN_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&d->work, &d->lock, &ts);
			continue;
		}
		TAILQ_REMOVE(&d->queue, e, qlink);
		e->queued = 0;
		e->inflight = 1;
		ino = e->ino;
		bno = e->bno;
		serial = e->serial;
		d->inflight++;
		pthread_mutex_unlock(&d->lock);

		r = upload_one(d->o, w->idx, ino, bno, buf);

		pthread_mutex_lock(&d->lock);
		d->since[w->idx] = UINT64_MAX;
		notes_purge(d);
		d->inflight--;
		e = tab_find(d, ino, bno);
		if (e != NULL && e->serial == serial) {
			e->inflight = 0;
			if (r == UP_FAIL) {
				e->backoff_ms = e->backoff_ms == 0 ?
				    BACKOFF_MIN_MS : e->backoff_ms * 2;
				if (e->backoff_ms > BACKOFF_MAX_MS)
					e->backoff_ms = BACKOFF_MAX_MS;
				e->retry_ms = now_ms() + e->backoff_ms;
			} else {
				e->backoff_ms = 0;
				e->retry_ms = 0;
				enqueue(d, e);	/* stale: newer bytes */
			}
		}
		pthread_cond_broadcast(&d->done);
	}
	pthread_mutex_unlock(&d->lock);
	free(buf);
	return NULL;
}

/* ---- public ------------------------------------------------------------ */

static int
requeue_cb(void *arg, uint64_t ino, uint64_t bno)
{
	struct owner__data *d = arg;
	struct dblk *e = tab_get(d, ino, bno);

	if (e == NULL)
		return -ENOMEM;
	enqueue(d, e);
	return 0;
}

struct stale {
	struct store *st;
	struct store_txn *t;
	uint64_t removed;
};

/* A staging file (or range list) whose block has no jrnl record is left
 * by a crash after an upload or truncate committed and before the unlink,
 * or before a write's record committed (that write was never answered):
 * nothing reads it, so it only takes disk space. */
static int
stale_cb(void *arg, uint64_t ino, uint64_t bno)
{
	struct stale *s = arg;
	int rc = store_jrnl_has(s->t, ino, bno & ~OVL_BIT);

	if (rc < 0)
		return rc;
	if (rc == 0 && store_jrnl_unlink(s->st, ino, bno) == 0)
		s->removed++;
	return 0;
}

static int
stale_sweep(struct owner *o)
{
	struct stale s = { o->conf.store, NULL, 0 };
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 1, &s.t)) < 0)
		return rc;
	rc = store_jrnl_scan(o->conf.store, stale_cb, &s);
	store_txn_abort(s.t);
	if (s.removed > 0)
		log_info("data: %" PRIu64 " stale staging files removed",
		    s.removed);
	return rc;
}

int
owner__data_init(struct owner *o)
{
	struct owner__data *d;
	struct store_txn *t;
	pthread_condattr_t ca;
	int rc, i;

	if ((d = calloc(1, sizeof *d)) == NULL)
		return -ENOMEM;
	d->o = o;
	d->bs = o->conf.block_size ? o->conf.block_size : 4u << 20;
	d->at_close = o->conf.write_back_ms < 0;
	d->idle_ms = o->conf.write_back_ms > 0 ? o->conf.write_back_ms :
	    d->at_close ? IDLE_MS : WRITE_BACK_MS;
	d->max_wait_ms = d->at_close ? d->idle_ms : d->idle_ms * WAIT_FACTOR;
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_init(&d->stripe[i], NULL);
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->fetch_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->work, &ca);
	pthread_cond_init(&d->done, &ca);
	pthread_condattr_destroy(&ca);
	TAILQ_INIT(&d->queue);
	o->data = d;

	if ((rc = store_txn_begin(o->conf.store, 1, &t)) == 0) {
		pthread_mutex_lock(&d->lock);
		rc = store_jrnl_iter(t, 0, requeue_cb, d);
		pthread_mutex_unlock(&d->lock);
		store_txn_abort(t);
	}
	if (rc < 0) {
		log_error("data: reading the journal: %s", strerror(-rc));
		owner__data_destroy(o);
		return rc;
	}
	if (d->count > 0)
		log_info("data: %" PRIu64 " journal blocks to upload",
		    d->count);
	/* Nothing else runs yet: no write can be between its staging file
	 * and its record. */
	if ((rc = stale_sweep(o)) < 0)
		log_warn("data: cleaning the journal folder: %s", strerror(-rc));

	d->nthreads = o->conf.upload_threads > 0 ? o->conf.upload_threads : 2;
	d->workers = calloc(d->nthreads, sizeof *d->workers);
	d->since = calloc(d->nthreads, sizeof *d->since);
	if (d->workers == NULL || d->since == NULL) {
		d->nthreads = 0;
		owner__data_destroy(o);
		return -ENOMEM;
	}
	for (i = 0; i < d->nthreads; i++)
		d->since[i] = UINT64_MAX;
	for (i = 0; i < d->nthreads; i++) {
		d->workers[i].d = d;
		d->workers[i].idx = i;
		if ((rc = pthread_create(&d->workers[i].th, NULL, worker_main,
		    &d->workers[i])) != 0) {
			d->nthreads = i;
			owner__data_destroy(o);
			return -rc;
		}
	}
	return 0;
}

void
owner__data_destroy(struct owner *o)
{
	struct owner__data *d = o->data;
	struct dblk *e, *next;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = 1;
	pthread_cond_broadcast(&d->work);
	pthread_cond_broadcast(&d->done);
	pthread_mutex_unlock(&d->lock);
	for (int i = 0; i < d->nthreads; i++)
		pthread_join(d->workers[i].th, NULL);
	free(d->workers);
	free(d->since);
	while (d->notes != NULL) {
		struct fnote *nt = d->notes;

		d->notes = nt->next;
		free(nt);
	}
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
	pthread_mutex_destroy(&d->fetch_lock);
	pthread_cond_destroy(&d->work);
	pthread_cond_destroy(&d->done);
	free(d);
	o->data = NULL;
}

static int
sync_wait(struct owner *o, uint64_t ino)
{
	struct owner__data *d = o->data;
	int ms = o->conf.sync_timeout_ms > 0 ? o->conf.sync_timeout_ms :
	    120000;
	struct timespec ts;
	uint64_t left;
	int rc = 0;

	if (d == NULL)
		return -EIO;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&d->lock);
	enqueue_ino(d, ino);
	while ((left = count_ino(d, ino)) > 0 && !d->stop && rc == 0)
		rc = pthread_cond_timedwait(&d->done, &d->lock, &ts);
	pthread_mutex_unlock(&d->lock);
	if (left > 0) {
		log_warn("data: sync gave up: %" PRIu64 " blocks of %s still "
		    "in the journal", left, ino ? "the file" : "all files");
		return -ETIMEDOUT;
	}
	return 0;
}

int
owner__data_sync(struct owner *o, uint64_t ino)
{
	return sync_wait(o, ino);
}

void
owner__data_stats(struct owner *o, struct owner_upload_stats *out)
{
	struct owner__data *d = o->data;

	memset(out, 0, sizeof *out);
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	out->pending_blocks = d->count;
	out->uploading = d->inflight + d->inl_unpub;
	out->uploaded_blocks = d->uploaded;
	out->known_blocks = d->known;
	out->upload_errors = d->errors;
	pthread_mutex_unlock(&d->lock);
}

void
owner__data_published(struct owner *o, uint64_t gen)
{
	struct owner__data *d = o->data;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	if (d->inl_gen <= gen)
		d->inl_unpub = 0;
	pthread_mutex_unlock(&d->lock);
}

/* Removes the staging files (and range lists) of ino's blocks in bnos,
 * whose jrnl records a committed transaction dropped. Each under its
 * block's stripe, as every reader and writer of a staging file holds it:
 * a removed staging file becomes a spare that another block takes over
 * (store/jrnl.c), so nobody may still be reading it. */
static void
staging_drop(struct store *st, struct owner__data *d, uint64_t ino,
    const struct u64v *bnos)
{
	for (size_t i = 0; i < bnos->n; i++) {
		pthread_mutex_t *sl = d ? stripe_of(d, ino, bnos->v[i]) : NULL;

		if (sl)		/* no d: no upload worker, no reader yet */
			pthread_mutex_lock(sl);
		store_jrnl_unlink(st, ino, bnos->v[i]);
		ovl_unlink(st, ino, bnos->v[i]);
		if (sl)
			pthread_mutex_unlock(sl);
	}
}

int
owner_truncate(struct owner *o, uint64_t ino, uint64_t size,
    struct store_inode *out)
{
	struct owner__data *d = o->data;
	struct store *st = o->conf.store;
	uint32_t bs = d->bs;
	uint64_t pb = size / bs, plen = size % bs;
	uint64_t gone = pb + (plen != 0);
	pthread_mutex_t *sl = stripe_of(d, ino, pb);
	struct store_txn *t = NULL;
	struct store_inode in;
	struct store_block b;
	struct forget f = FORGET_INIT(d);
	struct u64v unl = { NULL, 0, 0 };
	unsigned char id[CR_ID_BYTES];
	unsigned char *buf = NULL;
	unsigned char ib[STORE_INLINE_MAX];
	size_t ilen = 0;
	int rc, has = 0, rmw = 0, fd = -1, n, committed = 0, inl = 0;
	uint64_t old;

	pthread_mutex_lock(sl);
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		goto out;
	if ((rc = store_ino_get(t, ino, &in)) < 0)
		goto out;
	old = in.size;
	if (size < old && plen != 0) {
		if ((rc = has = store_jrnl_has(t, ino, pb)) < 0)
			goto out;
		if (!has) {
			rc = store_extent_get(t, ino, pb, id);
			if (rc == -ENOENT) {
				rc = store_inline_get(t, ino, pb, ib, sizeof ib,
				    &ilen);
				inl = rc == 0 && ilen > plen;
			} else if (rc == 0 &&
			    (rc = store_block_get(t, id, &b)) == 0) {
				rmw = b.plain_len > plen;
			}
			if (rc == -ENOENT)
				rc = 0;
			if (rc < 0)
				goto out;
		}
	}
	store_txn_abort(t);
	t = NULL;

	if (inl) {
		/* The cut inline block's head goes to the journal; the
		 * upload replaces the record. */
		ovl_unlink(st, ino, pb);
		fd = store_jrnl_fd(st, ino, pb, O_RDWR | O_CREAT | O_TRUNC);
		if ((rc = fd) < 0 || (rc = pwrite_full(fd, ib, plen, 0)) < 0)
			goto out;
		if (fdatasync(fd) < 0) {
			rc = -errno;
			goto out;
		}
	} else if (rmw) {
		/* The cut block's head must survive in the journal: from the
		 * cache, else as an overlay block cut at plen. */
		if ((buf = malloc(bs)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		n = o->conf.cache == NULL ? -ENOENT :
		    store_cache_get(o->conf.cache, b.id, buf, bs);
		ovl_unlink(st, ino, pb);
		fd = store_jrnl_fd(st, ino, pb, O_RDWR | O_CREAT | O_TRUNC);
		if ((rc = fd) < 0)
			goto out;
		if (n == (int)b.plain_len)
			rc = pwrite_full(fd, buf, plen, 0);
		else
			rc = ovl_add(st, ino, pb, plen, bs - plen, 1);
		if (rc < 0)
			goto out;
		if (fdatasync(fd) < 0) {
			rc = -errno;
			goto out;
		}
	} else if (has) {
		/* Cut first: a crash must not let the old tail come back
		 * when the file grows again. */
		int tfd = store_jrnl_fd(st, ino, pb, O_RDWR);

		if (tfd >= 0) {
			rc = ftruncate(tfd, plen) < 0 ? -errno : 0;
			close(tfd);
		} else if (tfd != -ENOENT) {
			rc = tfd;
		}
		if (rc == 0 && (rc = ovl_add(st, ino, pb, plen, bs - plen,
		    0)) == -ENOENT)
			rc = 0;
		if (rc == -EFBIG && (rc = fd = store_jrnl_fd(st, ino, pb,
		    O_RDWR)) >= 0)
			rc = ovl_fold(o, fd, ino, pb, plen, bs - plen);
		if (rc < 0)
			goto out;
	}

	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		goto out;
	if ((rc = store_ino_get(t, ino, &in)) < 0)
		goto out;
	if (size < in.size) {
		if ((rc = extents_drop(t, ino, gone, &f)) < 0 ||
		    (rc = jrnl_drop(t, ino, gone, &unl)) < 0)
			goto out;
	}
	if ((rmw || inl) && (rc = store_jrnl_put(t, ino, pb)) < 0)
		goto out;
	in.size = size;
	store_inode_touch(&in, STORE_MTIME | STORE_CTIME);
	if ((rc = store_ino_put(t, &in)) < 0)
		goto out;
	rc = store_txn_commit(t);
	t = NULL;
	if (rc < 0)
		goto out;
	committed = 1;
	if (has || rmw || inl)
		mark_dirty(d, ino, pb, 0);
	forget_dirty(d, ino, &unl);
	*out = in;
out:
	if (t != NULL)
		store_txn_abort(t);
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(sl);
	/* Still before the reply: the kernel holds the file's lock, so no
	 * write recreates one of these blocks meanwhile. */
	staging_drop(st, d, ino, &unl);
	free(buf);
	free(unl.v);
	forget_run(o, &f, committed);
	sodium_memzero(&b, sizeof b);
	return rc;
}

int
owner_drop(struct owner *o, uint64_t ino)
{
	struct store *st = o->conf.store;
	struct store_txn *t;
	struct forget f = FORGET_INIT(o->data);
	struct u64v unl = { NULL, 0, 0 };
	int rc;

	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	if ((rc = extents_drop(t, ino, 0, &f)) < 0 ||
	    (rc = jrnl_drop(t, ino, 0, &unl)) < 0) {
		store_txn_abort(t);
		goto out;
	}
	if ((rc = store_txn_commit(t)) < 0)
		goto out;
	/* Workers still uploading a block of ino find its jrnl record gone
	 * and commit nothing. */
	forget_dirty(o->data, ino, NULL);
	staging_drop(st, o->data, ino, &unl);
out:
	free(unl.v);
	forget_run(o, &f, rc == 0);
	if (rc < 0)
		log_error("data: freeing inode %" PRIu64 ": %s", ino,
		    strerror(-rc));
	return rc;
}

int
owner_file_open(struct owner *o, uint64_t ino, struct owner_file **out)
{
	struct owner_file *f = calloc(1, sizeof *f);

	if (f == NULL)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	*out = f;
	return 0;
}

/* The last close of a file: with no write-back delay its blocks are
 * queued now, else the idle scan takes them. */
void
owner_file_close(struct owner *o, uint64_t ino, struct owner_file *f)
{
	struct owner__data *d = o->data;

	if (d->at_close) {
		pthread_mutex_lock(&d->lock);
		enqueue_ino(d, ino);
		pthread_mutex_unlock(&d->lock);
	}
	if (f == NULL)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f->buf);
	free(f);
}

ssize_t
owner_read(struct owner *o, struct owner_file *f, uint64_t ino, uint64_t off,
    size_t size, void *out)
{
	struct owner__data *d = o->data;
	struct store_txn *t;
	struct store_inode in;
	char *buf = out;
	uint64_t pos, end;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 1, &t)) == 0) {
		rc = store_ino_get(t, ino, &in);
		store_txn_abort(t);
	}
	if (rc < 0)
		return rc;
	if (off >= in.size || size == 0)
		return 0;
	end = in.size - off < size ? in.size : off + size;
	memset(buf, 0, end - off);
	for (pos = off; pos < end && rc == 0; ) {
		uint64_t bno = pos / d->bs;
		uint32_t boff = pos % d->bs;
		uint64_t n = d->bs - boff;

		if (n > end - pos)
			n = end - pos;
		rc = read_block(o, f, ino, bno, boff, n, buf + (pos - off));
		pos += n;
	}
	if (rc < 0) {
		log_warn("data: read of inode %" PRIu64 " at %" PRIu64
		    ": %s", ino, off, strerror(-rc));
		return rc == -ENOMEM ? rc : -EIO;
	}
	return (ssize_t)(end - off);
}

ssize_t
owner_write(struct owner *o, uint64_t ino, uint64_t off, const void *src,
    size_t size)
{
	struct owner__data *d = o->data;
	size_t done = 0;
	int rc = 0;

	__atomic_store_n(&d->last_write_ms, now_ms(), __ATOMIC_RELAXED);
	while (done < size) {
		uint64_t pos = off + done;
		uint32_t boff = pos % d->bs;
		size_t n = d->bs - boff;

		if (n > size - done)
			n = size - done;
		rc = write_block(o, ino, pos / d->bs, boff,
		    (const char *)src + done, n);
		if (rc < 0)
			break;
		done += n;
	}
	if (done > 0)
		return (ssize_t)done;
	log_warn("data: write to inode %" PRIu64 " at %" PRIu64 ": %s",
	    ino, off, strerror(-rc));
	return rc == -ENOSPC || rc == -EDQUOT || rc == -ENOMEM ? rc : -EIO;
}

uint64_t
owner__data_unpublished(struct owner *o)
{
	struct owner__data *d = o->data;
	uint64_t n;

	pthread_mutex_lock(&d->lock);
	n = d->inl_unpub;
	pthread_mutex_unlock(&d->lock);
	return n;
}
