/* owner/write.c - changing file contents: writes into the journal,
 * truncate, and freeing the contents of a file that is gone. Nothing here
 * touches the network: a write that leaves part of a stored block whose
 * older bytes are not in the cache makes an overlay block (store/store.h)
 * that is merged when the block is read or uploaded.
 *
 * Each change holds its block's stripe (owner/dirty.c) across the staging
 * file and the transaction that commits the jrnl record, so an upload
 * never reads half of it. Lock order: stripe -> LMDB write txn. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include <sodium.h>

#include "log.h"
#include "owner/internal.h"
#include "util.h"

/* A write that leaves a tiny file whole in its inline record (block 0,
 * no journal, no extent) goes straight to the metadata: no staging file,
 * no upload, one transaction. The stripe of (ino, 0) is held. -EAGAIN
 * when the journal must take it instead (bytes outside the record, or no
 * supplier online to publish an index to). */
static int
write_inline(struct owner *o, uint64_t ino, uint32_t boff, const char *src,
    uint32_t len, const unsigned char *old, size_t olen)
{
	unsigned char nb[STORE_INLINE_MAX];
	size_t nlen = olen > (size_t)boff + len ? olen : (size_t)boff + len;
	struct store_txn *t;
	struct store_inode in;
	uint64_t gen = 0;
	int rc;

	if (nlen > STORE_INLINE_MAX || !owner__net_online(o))
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
	owner__dirty_inline(o, gen);
	sodium_memzero(nb, nlen);
	return 0;
fail:
	store_txn_abort(t);
	sodium_memzero(nb, nlen);
	return rc;
}

/* Writes len bytes at boff of block bno into its staging file, creating
 * it (from the stored block when the write leaves some of it) and the
 * jrnl record when needed. */
static int
write_block(struct owner *o, uint64_t ino, uint64_t bno, uint32_t boff,
    const char *src, uint32_t len)
{
	struct store *st = o->conf.store;
	uint32_t bs = o->conf.block_size;
	pthread_mutex_t *sl = owner__stripe(o, ino, bno);
	struct store_jrnl_piece pc[2];
	struct store_txn *t = NULL;
	struct store_inode in;
	struct owner__loc l;
	unsigned char *old = NULL;
	uint64_t end = bno * bs + boff + len;
	int rc, has, npc = 0, ovl = 0, sync = 0;

	l.src = OWNER__SRC_HOLE;
	pthread_mutex_lock(sl);
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		goto out;
	rc = owner__locate(t, ino, bno, 1, &l);
	store_txn_abort(t);
	t = NULL;
	if (rc < 0)
		goto out;
	has = l.src == OWNER__SRC_JOURNAL;
	/* A new record (and later a block record): leave the end of the map
	 * to deletes, or nothing could be unlinked to make room. */
	if (!has && (rc = store_map_room(st, STORE_ROOM_JOURNAL)) < 0)
		goto out;
	if (!has && !l.extent && bno == 0 && boff + len <= STORE_INLINE_MAX &&
	    (rc = write_inline(o, ino, boff, src, len, l.inl,
	    l.src == OWNER__SRC_INLINE ? l.inl_len : 0)) != -EAGAIN)
		goto out;
	rc = 0;

	if (l.src == OWNER__SRC_INLINE && (boff > 0 || len < l.inl_len)) {
		/* Inline bytes are local: the staging file starts from them. */
		pc[npc++] = (struct store_jrnl_piece){ 0, l.inl, l.inl_len };
		sync = 1;
	} else if (l.src == OWNER__SRC_BLOCK &&
	    (boff > 0 || len < l.b.plain_len)) {
		/* The old bytes from the cache, else an overlay block. */
		if ((old = malloc(bs)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		if (o->conf.cache != NULL &&
		    store_cache_get(o->conf.cache, l.b.id, old, bs) ==
		    (ssize_t)l.b.plain_len) {
			pc[npc++] = (struct store_jrnl_piece){ 0, old,
			    l.b.plain_len };
			sync = 1;
		} else {
			ovl = 1;
		}
	}
	pc[npc++] = (struct store_jrnl_piece){ boff, src, len };
	/* The journal then holds bytes the user did not write in this call
	 * and that exist nowhere else once the extent goes: durable before
	 * the record says so. */
	if ((rc = store_jrnl_write(st, ino, bno, pc, npc,
	    (has ? 0 : STORE_JRNL_NEW) | (sync ? STORE_JRNL_SYNC : 0))) < 0)
		goto out;
	if (ovl)
		rc = store_jrnl_range_add(st, ino, bno, boff, len, 1);
	else if (has && (rc = store_jrnl_range_add(st, ino, bno, boff, len,
	    0)) == -ENOENT)
		rc = 0;
	if (rc == -EFBIG)
		rc = owner__journal_fold(o, ino, bno, boff, len);
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
		owner__dirty_mark(o, ino, bno, boff + len == bs);
out:
	if (t != NULL)
		store_txn_abort(t);
	pthread_mutex_unlock(sl);
	free(old);
	owner__loc_release(&l);
	return rc;
}

ssize_t
owner_write(struct owner *o, uint64_t ino, uint64_t off, const void *src,
    size_t size)
{
	uint32_t bs = o->conf.block_size;
	size_t done = 0;
	int rc = 0;

	owner__dirty_written(o);
	while (done < size) {
		uint64_t pos = off + done;
		uint32_t boff = pos % bs;
		size_t n = bs - boff;

		if (n > size - done)
			n = size - done;
		rc = write_block(o, ino, pos / bs, boff,
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

/* ---- dropping blocks ------------------------------------------------------- */

struct extent_ent {
	uint64_t bno;
	unsigned char id[CR_ID_BYTES];
};

static int
extent_collect(void *arg, uint64_t bno, const unsigned char *id)
{
	struct extent_ent e = { .bno = bno };

	memcpy(e.id, id, CR_ID_BYTES);
	return vec_push(arg, &e, sizeof e);
}

/* Deletes every extent (and inline record) of ino from bno `from` on,
 * inside t. */
static int
extents_drop(struct store_txn *t, uint64_t ino, uint64_t from,
    struct owner__discard *dc)
{
	struct vec ext = { 0 };
	int rc = 0;

	/* Only block 0 is ever inline (owner/upload.c). */
	if (from == 0 && (rc = store_inline_del(t, ino, 0)) == -ENOENT)
		rc = 0;
	if (rc == 0)
		rc = store_extent_iter(t, ino, from, extent_collect, &ext);
	for (size_t i = 0; rc == 0 && i < ext.n; i++) {
		const struct extent_ent *e = (const struct extent_ent *)ext.p +
		    i;

		if ((rc = store_extent_del(t, ino, e->bno)) == 0)
			rc = owner__block_unref(t, e->id, dc);
	}
	vec_release(&ext);
	return rc;
}

struct jrnl_list {
	uint64_t ino;
	uint64_t from;
	struct vec bnos;	/* uint64_t */
};

static int
jrnl_collect(void *arg, uint64_t ino, uint64_t bno)
{
	struct jrnl_list *l = arg;

	if (ino != l->ino || bno < l->from)
		return 0;
	return vec_push(&l->bnos, &bno, sizeof bno);
}

/* Deletes the jrnl records of ino from bno `from` on, inside t; their
 * numbers land in out (staging files to unlink after the commit). */
static int
jrnl_drop(struct store_txn *t, uint64_t ino, uint64_t from, struct vec *out)
{
	struct jrnl_list l = { ino, from, { 0 } };
	int rc;

	rc = store_jrnl_iter(t, ino, jrnl_collect, &l);
	for (size_t i = 0; rc == 0 && i < l.bnos.n; i++)
		rc = store_jrnl_del(t, ino, ((uint64_t *)l.bnos.p)[i]);
	*out = l.bnos;
	return rc;
}

/* Removes the staging files (and range lists) of ino's blocks in bnos,
 * whose jrnl records a committed transaction dropped. Each under its
 * block's stripe, as every reader and writer of a staging file holds it:
 * a removed staging file becomes a spare that another block takes over
 * (store/jrnl.c), so nobody may still be reading it. */
static void
staging_drop(struct owner *o, uint64_t ino, const struct vec *bnos)
{
	for (size_t i = 0; i < bnos->n; i++) {
		uint64_t bno = ((const uint64_t *)bnos->p)[i];
		pthread_mutex_t *sl = owner__stripe(o, ino, bno);

		pthread_mutex_lock(sl);
		store_jrnl_unlink(o->conf.store, ino, bno);
		pthread_mutex_unlock(sl);
	}
}

/* The new last block pb of a file cut to size keeps its head (plen
 * bytes) in the journal: from the inline record or the cache, else as an
 * overlay block cut at plen; a journal block is cut first, so a crash
 * cannot let the old tail come back when the file grows again. Stripe
 * held. Returns 1 when the block needs a jrnl record put, 0, -errno. */
static int
cut_last_block(struct owner *o, uint64_t ino, uint64_t pb, uint32_t plen,
    const struct owner__loc *l)
{
	struct store *st = o->conf.store;
	uint32_t bs = o->conf.block_size;
	struct store_jrnl_piece pc = { 0, NULL, plen };
	unsigned char *buf;
	int rc;

	switch (l->src) {
	case OWNER__SRC_INLINE:
		if (l->inl_len <= plen)
			return 0;
		/* The cut inline block's head goes to the journal; the
		 * upload replaces the record. */
		pc.p = l->inl;
		rc = store_jrnl_write(st, ino, pb, &pc, 1,
		    STORE_JRNL_NEW | STORE_JRNL_SYNC);
		return rc < 0 ? rc : 1;
	case OWNER__SRC_BLOCK:
		if (l->b.plain_len <= plen)
			return 0;
		if ((buf = malloc(bs)) == NULL)
			return -ENOMEM;
		pc.p = buf;
		if (o->conf.cache != NULL &&
		    store_cache_get(o->conf.cache, l->b.id, buf, bs) ==
		    (ssize_t)l->b.plain_len)
			rc = store_jrnl_write(st, ino, pb, &pc, 1,
			    STORE_JRNL_NEW | STORE_JRNL_SYNC);
		else if ((rc = store_jrnl_write(st, ino, pb, NULL, 0,
		    STORE_JRNL_NEW | STORE_JRNL_SYNC)) == 0)
			rc = store_jrnl_range_add(st, ino, pb, plen, bs - plen,
			    1);
		free(buf);
		return rc < 0 ? rc : 1;
	case OWNER__SRC_JOURNAL:
		if ((rc = store_jrnl_cut(st, ino, pb, plen)) < 0)
			return rc;
		if ((rc = store_jrnl_range_add(st, ino, pb, plen, bs - plen,
		    0)) == -ENOENT)
			rc = 0;
		if (rc == -EFBIG)
			rc = owner__journal_fold(o, ino, pb, plen, bs - plen);
		return rc;
	default:
		return 0;
	}
}

int
owner_truncate(struct owner *o, uint64_t ino, uint64_t size,
    struct store_inode *out)
{
	struct store *st = o->conf.store;
	uint32_t bs = o->conf.block_size;
	uint64_t pb = size / bs, plen = size % bs;
	uint64_t gone = pb + (plen != 0);
	pthread_mutex_t *sl = owner__stripe(o, ino, pb);
	struct owner__discard dc = OWNER__DISCARD_INIT(o);
	struct store_txn *t = NULL;
	struct store_inode in;
	struct owner__loc l;
	struct vec unl = { 0 };
	int rc, put = 0, committed = 0;

	l.src = OWNER__SRC_HOLE;
	pthread_mutex_lock(sl);
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		goto out;
	if ((rc = store_ino_get(t, ino, &in)) == 0 && size < in.size &&
	    plen != 0)
		rc = owner__locate(t, ino, pb, 1, &l);
	store_txn_abort(t);
	t = NULL;
	if (rc < 0 || (rc = put = cut_last_block(o, ino, pb, (uint32_t)plen,
	    &l)) < 0)
		goto out;

	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		goto out;
	if ((rc = store_ino_get(t, ino, &in)) < 0)
		goto out;
	if (size < in.size) {
		if ((rc = extents_drop(t, ino, gone, &dc)) < 0 ||
		    (rc = jrnl_drop(t, ino, gone, &unl)) < 0)
			goto out;
	}
	if (put && (rc = store_jrnl_put(t, ino, pb)) < 0)
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
	if (put || l.src == OWNER__SRC_JOURNAL)
		owner__dirty_mark(o, ino, pb, 0);
	owner__dirty_drop(o, ino, unl.p, unl.n);
	*out = in;
out:
	if (t != NULL)
		store_txn_abort(t);
	pthread_mutex_unlock(sl);
	/* Still before the reply: the kernel holds the file's lock, so no
	 * write recreates one of these blocks meanwhile. */
	staging_drop(o, ino, &unl);
	vec_release(&unl);
	owner__discard_run(&dc, committed);
	owner__loc_release(&l);
	return rc;
}

int
owner_drop(struct owner *o, uint64_t ino)
{
	struct store *st = o->conf.store;
	struct owner__discard dc = OWNER__DISCARD_INIT(o);
	struct store_txn *t;
	struct vec unl = { 0 };
	int rc;

	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	if ((rc = extents_drop(t, ino, 0, &dc)) < 0 ||
	    (rc = jrnl_drop(t, ino, 0, &unl)) < 0) {
		store_txn_abort(t);
		goto out;
	}
	if ((rc = store_txn_commit(t)) < 0)
		goto out;
	/* Workers still uploading a block of ino find its jrnl record gone
	 * and commit nothing. */
	owner__dirty_drop_all(o, ino);
	staging_drop(o, ino, &unl);
out:
	vec_release(&unl);
	owner__discard_run(&dc, rc == 0);
	if (rc < 0)
		log_error("data: freeing inode %" PRIu64 ": %s", ino,
		    strerror(-rc));
	return rc;
}
