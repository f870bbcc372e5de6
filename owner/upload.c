/* owner/upload.c - the upload workers: take a dirty block (owner/dirty.c),
 * read its newest bytes from the journal, store them on suppliers (or find
 * the same bytes stored already: convergent keys), and commit the block
 * record, the extent and the end of the jrnl record in one transaction.
 *
 * A pool of conf.upload_threads workers ("upload", worker.h), niced: on a
 * busy machine the threads that answer the user's file operations come
 * first. An upload reads its block under the block's stripe and commits
 * under it again only if the block did not change meanwhile (its gen in
 * the dirty table); LMDB write txns are never held across network calls. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include <sodium.h>

#include "log.h"
#include "owner/internal.h"
#include "worker.h"

#define UPLOAD_NICE	10

enum { UP_DONE, UP_STALE, UP_FAIL };

struct owner__uploads {
	struct worker *w;
	unsigned char **buf;	/* per worker: bs bytes */
	int nbuf;
};

static int
all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
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
 * gone meanwhile, 2 when rec's fragments may have been hit by a delete
 * since the upload began (since), or the file outgrew an inline block
 * (store again); nothing changed. */
static int
upload_commit(struct owner *o, uint64_t ino, uint64_t bno,
    struct store_block *rec, int known, uint64_t since,
    struct owner__discard *dc, const unsigned char *ibuf, size_t ilen,
    uint64_t *gen)
{
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
		if (have_old && ((rc = owner__block_unref(t, old, dc)) < 0 ||
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
			rc = owner__strays_push(t, dc, rec, &cur);
		sodium_memzero(&cur, sizeof cur);
		if (rc < 0)
			goto fail;
		goto jrnl;
	}
	if (have_old && (rc = owner__block_unref(t, old, dc)) < 0)
		goto fail;
	if (rec != NULL) {
		rc = store_block_get(t, rec->id, &cur);
		if (rc == 0) {
			/* Same content elsewhere: keep the known record. */
			cur.refcount++;
			if ((rc = store_block_put(t, &cur)) == 0)
				rc = owner__strays_push(t, dc, rec, &cur);
			sodium_memzero(&cur, sizeof cur);
		} else if (rc == -ENOENT && known) {
			/* The block known before the upload went meanwhile:
			 * its fragments may be deleted. Store it after all. */
			store_txn_abort(t);
			return 2;
		} else if (rc == -ENOENT) {
			if (owner__guard_upload_conflict(o, rec->id, since)) {
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

/* The newest bytes of (ino, bno) into buf: *len of them (0 when the file
 * ends before the block), *size the file's. Stripe held. */
static int
upload_read(struct owner *o, uint64_t ino, uint64_t bno, unsigned char *buf,
    size_t *len, uint64_t *size)
{
	uint32_t bs = o->conf.block_size;
	struct store_txn *t;
	struct store_inode in;
	int rc;

	*len = 0;
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) == 0) {
		rc = store_ino_get(t, ino, &in);
		store_txn_abort(t);
	}
	if (rc == -ENOENT)
		return 0;		/* inode gone: drop the record */
	if (rc < 0)
		return rc;
	*size = in.size;
	if (in.size <= bno * bs)
		return 0;
	*len = in.size - bno * bs < bs ? in.size - bno * bs : bs;
	rc = owner__journal_read(o, ino, bno, buf, *len);
	if (rc == -ENOENT) {
		log_warn("data: staging file of block %" PRIu64 " of inode %"
		    PRIu64 " is missing: zeros", bno, ino);
		rc = 0;
	}
	return rc;
}

static int
upload_one(struct owner *o, int idx, uint64_t ino, uint64_t bno,
    unsigned char *buf)
{
	struct store *st = o->conf.store;
	pthread_mutex_t *sl = owner__stripe(o, ino, bno);
	struct store_block rec, *recp = &rec;
	struct owner__discard dc = OWNER__DISCARD_INIT(o);
	enum owner__upload_kind kind = OWNER__UP_NONE;
	uint64_t gen, gen2, since, igen = 0, size = 0;
	unsigned char key[CR_KEY_BYTES];
	size_t len = 0;
	int rc, inl = 0, known = 0;

	pthread_mutex_lock(sl);
	if (owner__dirty_gen(o, ino, bno, &gen) < 0) {
		pthread_mutex_unlock(sl);
		return UP_DONE;
	}
	rc = upload_read(o, ino, bno, buf, &len, &size);
	pthread_mutex_unlock(sl);
	if (rc < 0) {
		/* An overlay block's old bytes are on the suppliers: later. */
		log_error("data: reading block %" PRIu64 " of inode %" PRIu64
		    ": %s", bno, ino, strerror(-rc));
		owner__dirty_failed(o, rc);
		return UP_FAIL;
	}

	since = owner__guard_upload_begin(o, idx);
	if (len == 0 || all_zero(buf, len)) {
		recp = NULL;
	} else if (bno == 0 && len == size && len <= STORE_INLINE_MAX) {
		/* The whole file, tiny: kept in the metadata, no seal, no
		 * fragments; the index carries it to the suppliers. */
		if (!owner__net_online(o)) {
			owner__dirty_failed(o, -ENOTCONN);
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
			owner__dirty_failed(o, rc);
			return UP_FAIL;
		}
		known = rc > 0;
	}

	pthread_mutex_lock(sl);
	if (owner__dirty_gen(o, ino, bno, &gen2) < 0 || gen2 != gen) {
		pthread_mutex_unlock(sl);
		if (recp != NULL && !known)
			owner__orphan_discard(o, recp);
		sodium_memzero(&rec, sizeof rec);
		return UP_STALE;
	}
	rc = upload_commit(o, ino, bno, recp, known, since, &dc,
	    inl ? buf : NULL, len, &igen);
	if (rc < 0 || rc == 2) {
		pthread_mutex_unlock(sl);
		if (rc < 0)
			log_error("data: committing block %" PRIu64
			    " of inode %" PRIu64 ": %s", bno, ino,
			    strerror(-rc));
		else
			log_debug("data: block %" PRIu64 " of inode %" PRIu64
			    " raced a delete of the same bytes: again",
			    bno, ino);
		sodium_memzero(&rec, sizeof rec);
		owner__discard_run(&dc, 0);
		return rc < 0 ? UP_FAIL : UP_STALE;
	}
	store_jrnl_unlink(st, ino, bno);
	/* Before the entry goes, so a syncer woken by it sees the old
	 * block's plaintext dropped and the new one cached. */
	owner__discard_run(&dc, 1);
	if (rc == 1 && recp != NULL && !known)
		owner__orphan_discard(o, recp);	/* file cut or gone */
	if (rc == 0 && recp != NULL && o->conf.cache != NULL)
		store_cache_put(o->conf.cache, rec.id, buf, len);
	if (rc == 0 && inl)
		kind = OWNER__UP_INLINE;
	else if (rc == 0 && recp != NULL)
		kind = known ? OWNER__UP_KNOWN : OWNER__UP_STORED;
	owner__dirty_uploaded(o, ino, bno, kind, igen);
	pthread_mutex_unlock(sl);

	if (rc == 0)
		log_debug("data: block %" PRIu64 " of inode %" PRIu64
		    " %s (%zu bytes)", bno, ino, inl ? "inline" : "stored",
		    len);
	sodium_memzero(&rec, sizeof rec);
	return UP_DONE;
}

static int64_t
upload_pass(void *arg, int idx)
{
	struct owner *o = arg;
	struct owner__job job;
	int64_t wait;
	int r;

	if ((wait = owner__dirty_take(o, &job)) > 0)
		return wait;
	r = upload_one(o, idx, job.ino, job.bno, o->uploads->buf[idx]);
	owner__guard_upload_end(o, idx);
	owner__dirty_job_done(o, &job, r == UP_FAIL);
	return 0;
}

void
owner__upload_kick(struct owner *o)
{
	if (o->uploads != NULL)
		worker_kick(o->uploads->w);
}

/* ---- life ------------------------------------------------------------------ */

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
	int rc = store_jrnl_has(s->t, ino, bno);

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
owner__uploads_start(struct owner *o)
{
	struct owner__uploads *u;
	struct worker_conf wc = {
		.name = "upload", .threads = o->conf.upload_threads,
		.nice = UPLOAD_NICE, .pass = upload_pass, .arg = o,
	};
	int rc;

	/* Nothing else runs yet: no write can be between its staging file
	 * and its record. */
	if ((rc = stale_sweep(o)) < 0)
		log_warn("data: cleaning the journal folder: %s", strerror(-rc));
	if ((u = calloc(1, sizeof *u)) == NULL)
		return -ENOMEM;
	o->uploads = u;
	if ((u->buf = calloc(wc.threads, sizeof *u->buf)) == NULL)
		return -ENOMEM;
	for (u->nbuf = 0; u->nbuf < wc.threads; u->nbuf++)
		if ((u->buf[u->nbuf] = malloc(o->conf.block_size)) == NULL)
			return -ENOMEM;
	return worker_start(&u->w, &wc);
}

void
owner__uploads_stop(struct owner *o)
{
	struct owner__uploads *u = o->uploads;

	if (u == NULL)
		return;
	worker_stop(u->w);
	for (int i = 0; i < u->nbuf; i++)
		free(u->buf[i]);
	free(u->buf);
	free(u);
	o->uploads = NULL;
}
