/* owner/read.c - reading file contents, and where the newest bytes of a
 * block are.
 *
 * Block b of a file covers [b*bs, (b+1)*bs). Its newest bytes are in a
 * journal staging file (a jrnl record exists), in a stored block (an
 * extent points at a block record) or, for a tiny file, inline in the
 * metadata (an inline record, block 0 only: the whole file is at most
 * STORE_INLINE_MAX bytes when it is uploaded; it reaches the suppliers in
 * the index); none means a hole (owner__locate). Extent and inline record
 * never coexist. Bytes past a block's plain_len or past a staging file's
 * end read as zeros, and no stored byte past the inode size is ever
 * non-zero (truncate cuts), so growing a file needs nothing but the size.
 *
 * A stored block's plaintext comes from the handle's last block, the
 * cache, the pinned copies (owner/pin.c) or the suppliers, in that order.
 * A FUSE thread that needs the suppliers waits for them (net/ does the
 * I/O on its loop thread).
 *
 * What is fetched follows the handle's access pattern: a read that
 * starts near where the handle's previous read ended, or a large one (the
 * kernel's readahead sends those, several at once and not always in
 * order), is sequential and gets the whole block (the readahead asks for
 * the rest of it next), as does any read of a block being fetched whole
 * already. Any other read of a block sealed in chunks (the first small
 * read of a handle included: the first bytes come sooner) fetches only
 * the chunks it needs as ranges (net_block_fetch_range) and caches them
 * by chunk, so a database or a seek in a video costs a chunk, not a
 * block. A range that cannot be had whole (a holder down, a chunk failing
 * its tag) falls back to the whole block, which reports bad fragments
 * for rebuild. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include <sodium.h>

#include "log.h"
#include "owner/internal.h"
#include "worker.h"

/* An open file: the last stored block read through it, so sequential
 * reads of an uncached block fetch it once even with no cache. */
struct owner_file {
	pthread_mutex_t lock;
	int reads;		/* so far: the first one has no pattern */
	uint64_t next_off;	/* where the previous read ended */
	int valid;
	unsigned char id[CR_ID_BYTES];
	uint32_t len;
	unsigned char *buf;	/* bs bytes, allocated on first use */
};

/* A block being fetched: readers of the same block (the kernel's
 * readahead sends several reads per block at once) wait for it and take
 * it from the cache instead of fetching it again. */
struct fetching {
	unsigned char id[CR_ID_BYTES];
	int done, waiters;
	pthread_cond_t cv;
	struct fetching *next;
};

struct owner__reads {
	pthread_mutex_t lock;		/* protects fetching */
	struct fetching *fetching;
	int64_t last_fetch_ms;		/* atomic: a read last asked the
					 * suppliers (worker_now_ms) */
};

/* A read is about to wait on suppliers: background work that shares
 * their disks and our CPU (the deleter) yields for a while. */
static void
reads_fetching(struct owner *o)
{
	__atomic_store_n(&o->reads->last_fetch_ms, worker_now_ms(),
	    __ATOMIC_RELAXED);
}

int
owner__reads_fetched_within(struct owner *o, int64_t ms)
{
	int64_t t = __atomic_load_n(&o->reads->last_fetch_ms,
	    __ATOMIC_RELAXED);

	return t != 0 && worker_now_ms() - t < ms;
}

/* ---- where the bytes are ---------------------------------------------------- */

int
owner__locate(struct store_txn *t, uint64_t ino, uint64_t bno, int journal,
    struct owner__loc *out)
{
	unsigned char id[CR_ID_BYTES];
	int rc;

	out->src = OWNER__SRC_HOLE;
	out->extent = 0;
	if (journal && (rc = store_jrnl_has(t, ino, bno)) != 0) {
		if (rc > 0)
			out->src = OWNER__SRC_JOURNAL;
		return rc < 0 ? rc : 0;
	}
	if ((rc = store_extent_get(t, ino, bno, id)) == 0) {
		out->extent = 1;
		if ((rc = store_block_get(t, id, &out->b)) == 0)
			out->src = OWNER__SRC_BLOCK;
		return rc == -ENOENT ? 0 : rc;
	}
	if (rc != -ENOENT)
		return rc;
	rc = store_inline_get(t, ino, bno, out->inl, sizeof out->inl,
	    &out->inl_len);
	if (rc == 0)
		out->src = OWNER__SRC_INLINE;
	return rc == -ENOENT ? 0 : rc;
}

void
owner__loc_release(struct owner__loc *l)
{
	if (l->src == OWNER__SRC_BLOCK)
		sodium_memzero(&l->b, sizeof l->b);
	else if (l->src == OWNER__SRC_INLINE)
		sodium_memzero(l->inl, l->inl_len);
	l->src = OWNER__SRC_HOLE;
}

/* ---- stored blocks ----------------------------------------------------------- */

/* The fetch of id under way, or NULL. r->lock held. */
static struct fetching *
fetching_find(struct owner__reads *r, const unsigned char *id)
{
	struct fetching *f;

	for (f = r->fetching; f != NULL; f = f->next)
		if (memcmp(f->id, id, CR_ID_BYTES) == 0)
			break;
	return f;
}

/* 1 after waiting for another thread's fetch of id; 0 when there was
 * none and the caller's fetch is now registered (fetch_done ends it);
 * -1 when it could not be registered (out of memory: fetch anyway). */
static int
fetch_wait(struct owner__reads *r, const unsigned char *id)
{
	struct fetching *f;

	pthread_mutex_lock(&r->lock);
	if ((f = fetching_find(r, id)) != NULL) {
		f->waiters++;
		while (!f->done)
			pthread_cond_wait(&f->cv, &r->lock);
		if (--f->waiters == 0) {
			pthread_cond_destroy(&f->cv);
			free(f);
		}
		pthread_mutex_unlock(&r->lock);
		return 1;
	}
	if ((f = calloc(1, sizeof *f)) == NULL) {
		pthread_mutex_unlock(&r->lock);
		return -1;
	}
	memcpy(f->id, id, CR_ID_BYTES);
	pthread_cond_init(&f->cv, NULL);
	f->waiters = 1;		/* the fetcher itself */
	f->next = r->fetching;
	r->fetching = f;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* 1 while another thread fetches id whole. */
static int
fetch_busy(struct owner__reads *r, const unsigned char *id)
{
	int busy;

	pthread_mutex_lock(&r->lock);
	busy = fetching_find(r, id) != NULL;
	pthread_mutex_unlock(&r->lock);
	return busy;
}

static void
fetch_done(struct owner__reads *r, const unsigned char *id)
{
	struct fetching **pp, *f;

	pthread_mutex_lock(&r->lock);
	for (pp = &r->fetching; *pp != NULL; pp = &(*pp)->next)
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
	pthread_mutex_unlock(&r->lock);
}

/* b's plaintext from the pinned copies, else the suppliers (then kept
 * where a pinned file uses it, and cached). b->plain_len or -errno. */
static int
block_fetch(struct owner *o, const struct store_block *b, void *buf)
{
	uint32_t bad = 0;
	int rc;

	if ((rc = owner__pin_read(o, b, buf)) >= 0)
		return rc;
	if (o->conf.net == NULL)
		return -EIO;
	reads_fetching(o);
	rc = net_block_fetch_report(o->conf.net, b, buf, &bad);
	if (bad != 0)
		owner__rebuild_report_bad(o, b, bad);
	if (rc < 0) {
		log_warn("data: block fetch failed: %s", strerror(-rc));
		return -EIO;
	}
	owner__pin_fetched(o, b, buf);
	if (o->conf.cache != NULL)
		store_cache_put(o->conf.cache, b->id, buf, b->plain_len);
	return (int)b->plain_len;
}

/* The plaintext of stored block b into buf (bs bytes): cache, else as
 * block_fetch. Returns b->plain_len or -errno. */
static int
block_plain(struct owner *o, const struct store_block *b, void *buf)
{
	uint32_t bs = o->conf.block_size;
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
		if ((reg = fetch_wait(o->reads, b->id)) == 1) {
			n = store_cache_get(o->conf.cache, b->id, buf, bs);
			if (n == (ssize_t)b->plain_len)
				return (int)n;
		}
	}
	rc = block_fetch(o, b, buf);
	if (reg == 0)
		fetch_done(o->reads, b->id);
	return rc;
}

/* ---- journal blocks --------------------------------------------------------- */

/* The newest plaintext of overlay block (ino, bno) into buf (bs bytes,
 * all written): what is under the journal, with the listed staging bytes
 * over it. Stripe held. -EIO when the stored block cannot be had. */
static int
overlay_merge(struct owner *o, uint64_t ino, uint64_t bno, const uint32_t *rg,
    size_t n, unsigned char *buf)
{
	uint32_t bs = o->conf.block_size;
	struct store_txn *t;
	struct owner__loc l;
	uint64_t lo = bs, hi = 0;
	unsigned char *top;
	int rc;

	memset(buf, 0, bs);
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		return rc;
	rc = owner__locate(t, ino, bno, 0, &l);
	store_txn_abort(t);
	if (rc == 0 && l.src == OWNER__SRC_BLOCK)
		rc = block_plain(o, &l.b, buf);
	else if (rc == 0 && l.src == OWNER__SRC_INLINE)
		memcpy(buf, l.inl, l.inl_len);
	owner__loc_release(&l);
	if (rc < 0)
		return rc;
	/* The staging bytes: one read over the ranges' hull. */
	for (size_t i = 0; i < n; i++) {
		uint64_t a = rg[2 * i], e = a + rg[2 * i + 1];

		if (a >= bs || e == a)
			continue;
		lo = a < lo ? a : lo;
		hi = (e > bs ? bs : e) > hi ? (e > bs ? bs : e) : hi;
	}
	if (hi <= lo)
		return 0;
	if ((top = malloc(hi - lo)) == NULL)
		return -ENOMEM;
	rc = store_jrnl_read(o->conf.store, ino, bno, (uint32_t)lo, top,
	    hi - lo);
	if (rc == 0 || rc == -ENOENT) {
		for (size_t i = 0; i < n; i++) {
			uint64_t a = rg[2 * i], l = rg[2 * i + 1];

			if (a >= bs || l == 0)
				continue;
			if (l > bs - a)
				l = bs - a;
			memcpy(buf + a, top + (a - lo), l);
		}
		rc = 0;
	}
	free(top);
	return rc;
}

int
owner__journal_read(struct owner *o, uint64_t ino, uint64_t bno, void *buf,
    size_t len)
{
	uint32_t *rg;
	size_t n;
	int rc;

	if ((rc = store_jrnl_ranges(o->conf.store, ino, bno, &rg, &n)) > 0) {
		rc = overlay_merge(o, ino, bno, rg, n, buf);
		free(rg);
		return rc;
	}
	if (rc < 0)
		return rc;
	return store_jrnl_read(o->conf.store, ino, bno, 0, buf, len);
}

int
owner__journal_fold(struct owner *o, uint64_t ino, uint64_t bno, uint32_t off,
    uint32_t len)
{
	uint32_t bs = o->conf.block_size;
	unsigned char *buf = malloc(bs);
	struct store_jrnl_piece pc = { 0, buf, bs };
	uint32_t *rg = NULL, *rg2;
	size_t n;
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	if ((rc = store_jrnl_ranges(o->conf.store, ino, bno, &rg, &n)) <= 0)
		goto out;
	if ((rg2 = realloc(rg, (n + 1) * 2 * sizeof *rg)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rg = rg2;
	rg[2 * n] = off;
	rg[2 * n + 1] = len;
	if ((rc = overlay_merge(o, ino, bno, rg, n + 1, buf)) < 0 ||
	    (rc = store_jrnl_write(o->conf.store, ino, bno, &pc, 1,
	    STORE_JRNL_SYNC)) < 0)
		goto out;
	store_jrnl_ranges_drop(o->conf.store, ino, bno);
	rc = 0;
out:
	free(rg);
	free(buf);
	return rc;
}

/* Reads [boff, boff+len) of journal block (ino, bno) into dst. Stripe
 * held. */
static int
read_journal(struct owner *o, uint64_t ino, uint64_t bno, uint32_t boff,
    uint32_t len, char *dst)
{
	unsigned char *buf;
	uint32_t *rg;
	size_t n;
	int rc;

	rc = store_jrnl_ranges(o->conf.store, ino, bno, &rg, &n);
	if (rc > 0 && !store_jrnl_ranges_cover(rg, n, boff, len)) {
		if ((buf = malloc(o->conf.block_size)) == NULL)
			rc = -ENOMEM;
		else if ((rc = overlay_merge(o, ino, bno, rg, n, buf)) == 0)
			memcpy(dst, buf + boff, len);
		free(buf);
		free(rg);
		return rc;
	}
	free(rg);
	if (rc < 0)
		return rc;
	rc = store_jrnl_read(o->conf.store, ino, bno, boff, dst, len);
	return rc == -ENOENT ? 0 : rc;	/* record without bytes: zeros */
}

/* ---- chunks of a block ----------------------------------------------------- */

/* A read this close to where the handle's previous one ended, or this
 * large, counts as sequential. A random 4 KiB reader of a 256 MiB file
 * lands this close once in a thousand reads; the kernel's readahead
 * sends reads this large (a standalone small read goes as it is). */
#define SEQ_SLACK	(128u * 1024)

/* The cache key of chunk c of block id: never a block's id. */
static void
chunk_cache_id(unsigned char out[CR_ID_BYTES], const unsigned char *id,
    uint32_t c)
{
	unsigned char in[CR_ID_BYTES + 4];

	memcpy(in, id, CR_ID_BYTES);
	put_be32(in + CR_ID_BYTES, c);
	cr_hash(out, in, sizeof in);
}

/* Bytes of plaintext in chunk c of b. */
static uint32_t
chunk_len(const struct store_block *b, uint32_t c)
{
	uint32_t off = c * CR_CHUNK_BYTES;

	return b->plain_len - off < CR_CHUNK_BYTES ? b->plain_len - off :
	    CR_CHUNK_BYTES;
}

/* Reads [boff, boff+len) of chunk-sealed block b into dst (pre-zeroed)
 * from cached chunks, else by fetching the chunks it spans as ranges.
 * 0, or -errno when the range read failed (the caller reads whole). */
static int
read_chunks(struct owner *o, const struct store_block *b, uint32_t boff,
    uint32_t len, char *dst)
{
	unsigned char cid[CR_ID_BYTES], *buf;
	uint32_t end, c0, c1, c;
	int rc;

	if (boff >= b->plain_len)
		return 0;		/* past its end: zeros */
	end = b->plain_len - boff < len ? b->plain_len : boff + len;
	c0 = boff / CR_CHUNK_BYTES;
	c1 = (end - 1) / CR_CHUNK_BYTES;
	for (c = c0; o->conf.cache != NULL && c <= c1; c++) {
		uint32_t a = c == c0 ? boff : c * CR_CHUNK_BYTES;
		uint32_t e = c == c1 ? end : (c + 1) * CR_CHUNK_BYTES;

		chunk_cache_id(cid, b->id, c);
		if (store_cache_get_range(o->conf.cache, cid,
		    a - c * CR_CHUNK_BYTES, dst + (a - boff), e - a) !=
		    (ssize_t)chunk_len(b, c))
			break;
	}
	if (o->conf.cache != NULL && c > c1)
		return 0;
	if ((buf = malloc((size_t)(c1 - c0 + 1) * CR_CHUNK_BYTES)) == NULL)
		return -ENOMEM;
	reads_fetching(o);
	rc = net_block_fetch_range(o->conf.net, b, c0, c1 - c0 + 1, buf);
	if (rc == 0) {
		for (c = c0; o->conf.cache != NULL && c <= c1; c++) {
			chunk_cache_id(cid, b->id, c);
			store_cache_put(o->conf.cache, cid, buf + (size_t)(c - c0) *
			    CR_CHUNK_BYTES, chunk_len(b, c));
		}
		memcpy(dst, buf + (boff - c0 * CR_CHUNK_BYTES), end - boff);
	}
	free(buf);
	return rc;
}

/* ---- reading a file ------------------------------------------------------------ */

/* Reads [boff, boff+len) of stored block b into dst, through f's last
 * block, the cache, or a fetch (of its chunks only when ranged). */
static int
read_stored(struct owner *o, struct owner_file *f, const struct store_block *b,
    uint32_t boff, uint32_t len, char *dst, int ranged)
{
	uint32_t bs = o->conf.block_size;
	unsigned char *buf = NULL;
	int plen, reg = -1;

	if (f != NULL) {
		/* The handle's last block serves the reads inside it. */
		pthread_mutex_lock(&f->lock);
		if (f->valid && memcmp(f->id, b->id, CR_ID_BYTES) == 0) {
			if (boff < f->len)
				memcpy(dst, f->buf + boff,
				    len < f->len - boff ? len : f->len - boff);
			pthread_mutex_unlock(&f->lock);
			return 0;
		}
		pthread_mutex_unlock(&f->lock);
	}
	/* A cached block gives just the range asked for. */
	if (o->conf.cache != NULL && b->plain_len <= bs &&
	    store_cache_get_range(o->conf.cache, b->id, boff, dst, len) ==
	    (ssize_t)b->plain_len)
		return 0;
	/* A pinned block is on this disk: read there, not in ranges; one
	 * being fetched whole comes to the cache soon. */
	if (ranged && b->seal == CR_SEAL_CHUNKED && o->conf.net != NULL &&
	    b->plain_len <= bs && !(o->pin != NULL &&
	    store_pin_has(o->conf.store, b->id) == 1) &&
	    !fetch_busy(o->reads, b->id) &&
	    read_chunks(o, b, boff, len, dst) == 0)
		return 0;
	/* The kernel's readahead sends several reads of one block at once:
	 * one fetches, the others wait and take their range from the cache
	 * (not the whole block). */
	if (o->conf.cache != NULL && b->plain_len <= bs &&
	    (reg = fetch_wait(o->reads, b->id)) == 1 &&
	    store_cache_get_range(o->conf.cache, b->id, boff, dst, len) ==
	    (ssize_t)b->plain_len)
		return 0;
	/* Fetched without the handle's lock: the kernel's readahead reads
	 * the next block through the same handle meanwhile. */
	if ((buf = malloc(bs)) == NULL)
		plen = -ENOMEM;
	else if (b->plain_len > bs)
		plen = block_plain(o, b, buf);	/* logs, -EIO */
	else
		plen = block_fetch(o, b, buf);
	if (reg == 0)
		fetch_done(o->reads, b->id);
	if (plen < 0) {
		free(buf);
		return plen;
	}
	if (boff < (uint32_t)plen)
		memcpy(dst, buf + boff, len < plen - boff ? len : plen - boff);
	if (f != NULL) {
		unsigned char *old;

		pthread_mutex_lock(&f->lock);
		old = f->buf;
		f->buf = buf;
		buf = old;
		memcpy(f->id, b->id, CR_ID_BYTES);
		f->len = plen;
		f->valid = 1;
		pthread_mutex_unlock(&f->lock);
	}
	free(buf);
	return 0;
}

/* Reads [boff, boff+len) of block bno into dst (pre-zeroed). */
static int
read_block(struct owner *o, struct owner_file *f, uint64_t ino, uint64_t bno,
    uint32_t boff, uint32_t len, char *dst, int ranged)
{
	pthread_mutex_t *sl = owner__stripe(o, ino, bno);
	struct store_txn *t;
	struct owner__loc l;
	int rc;

	pthread_mutex_lock(sl);
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0) {
		pthread_mutex_unlock(sl);
		return rc;
	}
	rc = owner__locate(t, ino, bno, 1, &l);
	store_txn_abort(t);
	if (rc == 0 && l.src == OWNER__SRC_JOURNAL)
		rc = read_journal(o, ino, bno, boff, len, dst);
	pthread_mutex_unlock(sl);
	if (rc < 0 || l.src == OWNER__SRC_JOURNAL || l.src == OWNER__SRC_HOLE)
		return rc;
	if (l.src == OWNER__SRC_INLINE) {
		if (boff < l.inl_len)
			memcpy(dst, l.inl + boff, len < l.inl_len - boff ? len :
			    l.inl_len - boff);
	} else {
		rc = read_stored(o, f, &l.b, boff, len, dst, ranged);
	}
	owner__loc_release(&l);
	return rc;
}

ssize_t
owner_read(struct owner *o, struct owner_file *f, uint64_t ino, uint64_t off,
    size_t size, void *out)
{
	uint32_t bs = o->conf.block_size;
	struct store_txn *t;
	struct store_inode in;
	char *buf = out;
	uint64_t pos, end;
	int rc, ranged = 0;

	if (f != NULL) {
		/* Noted before the fetch: the reads the kernel sends
		 * meanwhile see the pattern. */
		pthread_mutex_lock(&f->lock);
		ranged = size < SEQ_SLACK && (f->reads == 0 ||
		    off + SEQ_SLACK < f->next_off ||
		    off > f->next_off + SEQ_SLACK);
		f->reads++;
		f->next_off = off + size;
		pthread_mutex_unlock(&f->lock);
	}
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
		uint64_t bno = pos / bs;
		uint32_t boff = pos % bs;
		uint64_t n = bs - boff;

		if (n > end - pos)
			n = end - pos;
		rc = read_block(o, f, ino, bno, boff, n, buf + (pos - off),
		    ranged);
		pos += n;
	}
	if (rc < 0) {
		log_warn("data: read of inode %" PRIu64 " at %" PRIu64
		    ": %s", ino, off, strerror(-rc));
		return rc == -ENOMEM ? rc : -EIO;
	}
	return (ssize_t)(end - off);
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

void
owner_file_close(struct owner *o, uint64_t ino, struct owner_file *f)
{
	owner__dirty_closed(o, ino);
	if (f == NULL)
		return;
	pthread_mutex_destroy(&f->lock);
	free(f->buf);
	free(f);
}

/* ---- life ------------------------------------------------------------------ */

int
owner__reads_init(struct owner *o)
{
	struct owner__reads *r = calloc(1, sizeof *r);

	if (r == NULL)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	o->reads = r;
	return 0;
}

void
owner__reads_destroy(struct owner *o)
{
	if (o->reads == NULL)
		return;
	pthread_mutex_destroy(&o->reads->lock);
	free(o->reads);
	o->reads = NULL;
}
