/* store/blocks.c - the owner's block records and the queues that hang on
 * them: rebuild (most urgent first), fragment deletion, and the journal's
 * records of dirty blocks. Key encodings: store/meta.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

#include "log.h"
#include "store/internal.h"
#include "util.h"

#define BLK_REC_V1		1	/* entries: hash | peer */
#define BLK_REC_V2		2	/* + lost | audit_next | audit_end | audit */
#define BLK_REC_HDR		82
#define BLK_REC_ENTRY_V1	(CR_HASH_BYTES + CR_PK_BYTES)
#define BLK_REC_ENTRY		(BLK_REC_ENTRY_V1 + 1 + 4 + 4 + \
				 STORE_AUDITS * STORE_AUDIT_BYTES)

/* ---- block records ------------------------------------------------------ */

static int
blk_entry_zero(const struct store_block *b, unsigned i)
{
	static const unsigned char zero[STORE_AUDITS * STORE_AUDIT_BYTES];

	return sodium_is_zero(b->frag_hash[i], CR_HASH_BYTES) &&
	    sodium_is_zero(b->peer[i], CR_PK_BYTES) && !b->lost[i] &&
	    !b->audit_next[i] && !b->audit_end[i] &&
	    memcmp(b->audit[i], zero, sizeof zero) == 0;
}

/* Trailing all-zero fragment entries are not stored (usually those past
 * k + m); blk_dec zero-fills them, so the round trip is exact. */
static size_t
blk_enc(unsigned char *p, const struct store_block *b)
{
	unsigned n = CR_EC_MAX;
	unsigned char *q;

	while (n > 0 && blk_entry_zero(b, n - 1))
		n--;
	p[0] = BLK_REC_V2;
	memcpy(p + 1, b->id, CR_ID_BYTES);
	memcpy(p + 33, b->key, CR_KEY_BYTES);
	put_be32(p + 65, b->plain_len);
	put_be32(p + 69, b->frag_len);
	p[73] = b->k;
	p[74] = b->m;
	p[75] = b->pad[0];
	p[76] = b->seal;
	put_be32(p + 77, b->refcount);
	p[81] = (unsigned char)n;
	q = p + BLK_REC_HDR;
	for (unsigned i = 0; i < n; i++) {
		memcpy(q, b->frag_hash[i], CR_HASH_BYTES);
		memcpy(q + CR_HASH_BYTES, b->peer[i], CR_PK_BYTES);
		q += BLK_REC_ENTRY_V1;
		*q++ = b->lost[i] ? 1 : 0;
		put_be32(q, b->audit_next[i]);
		put_be32(q + 4, b->audit_end[i]);
		q += 8;
		memcpy(q, b->audit[i], sizeof b->audit[i]);
		q += sizeof b->audit[i];
	}
	return (size_t)(q - p);
}

/* Reads version 1 records (no loss marks, no audit answers: those come
 * out zero, so the auditor refills them with a full proof) and version 2. */
static int
blk_dec(struct store_block *b, const MDB_val *v)
{
	const unsigned char *p = v->mv_data, *q;
	size_t ent;
	unsigned n;

	ent = v->mv_size >= 1 && p[0] == BLK_REC_V1 ? BLK_REC_ENTRY_V1 :
	    BLK_REC_ENTRY;
	if (v->mv_size < BLK_REC_HDR ||
	    (p[0] != BLK_REC_V1 && p[0] != BLK_REC_V2) ||
	    (n = p[81]) > CR_EC_MAX ||
	    v->mv_size != BLK_REC_HDR + (size_t)n * ent) {
		log_error("store: corrupt block record (%zu bytes)", v->mv_size);
		return -EIO;
	}
	memset(b, 0, sizeof *b);
	memcpy(b->id, p + 1, CR_ID_BYTES);
	memcpy(b->key, p + 33, CR_KEY_BYTES);
	b->plain_len = get_be32(p + 65);
	b->frag_len = get_be32(p + 69);
	b->k = p[73];
	b->m = p[74];
	b->pad[0] = p[75];
	b->seal = p[76];
	b->refcount = get_be32(p + 77);
	q = p + BLK_REC_HDR;
	for (unsigned i = 0; i < n; i++) {
		memcpy(b->frag_hash[i], q, CR_HASH_BYTES);
		memcpy(b->peer[i], q + CR_HASH_BYTES, CR_PK_BYTES);
		q += BLK_REC_ENTRY_V1;
		if (p[0] == BLK_REC_V1)
			continue;
		b->lost[i] = *q++ != 0;
		b->audit_next[i] = get_be32(q);
		b->audit_end[i] = get_be32(q + 4);
		q += 8;
		memcpy(b->audit[i], q, sizeof b->audit[i]);
		q += sizeof b->audit[i];
	}
	return 0;
}

int
store_block_get(struct store_txn *t, const unsigned char id[CR_ID_BYTES],
    struct store_block *out)
{
	MDB_val v;
	int rc;

	if ((rc = store__kv_get(t, STORE__DB_BLOCKS, id, CR_ID_BYTES, &v)) < 0)
		return rc;
	return blk_dec(out, &v);
}

int
store_block_put(struct store_txn *t, const struct store_block *b)
{
	unsigned char val[BLK_REC_HDR + CR_EC_MAX * BLK_REC_ENTRY];
	size_t n = blk_enc(val, b);
	int rc;

	rc = store__kv_put(t, STORE__DB_BLOCKS, b->id, CR_ID_BYTES, val, n);
	sodium_memzero(val, sizeof val);	/* held the block key */
	return rc;
}

int
store_block_del(struct store_txn *t, const unsigned char id[CR_ID_BYTES])
{
	return store__kv_del(t, STORE__DB_BLOCKS, id, CR_ID_BYTES);
}

struct block_ctx {
	int (*cb)(void *arg, const struct store_block *b);
	void *arg;
};

static int
block_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct block_ctx *bc = ctx;
	struct store_block b;
	int rc;

	if ((rc = blk_dec(&b, v)) == 0)
		rc = bc->cb(bc->arg, &b);
	sodium_memzero(b.key, sizeof b.key);
	return rc;
}

int
store_block_iter(struct store_txn *t,
    int (*cb)(void *arg, const struct store_block *b), void *arg)
{
	struct block_ctx bc = { cb, arg };

	return store__scan(t, STORE__DB_BLOCKS, NULL, 0, NULL, 0, 0, block_one, &bc);
}

int
store_block_iter_after(struct store_txn *t, const unsigned char *after,
    int (*cb)(void *arg, const struct store_block *b), void *arg)
{
	struct block_ctx bc = { cb, arg };

	if (after == NULL)
		return store_block_iter(t, cb, arg);
	return store__scan(t, STORE__DB_BLOCKS, NULL, 0, after, CR_ID_BYTES, 1,
	    block_one, &bc);
}

static int
db_count(struct store_txn *t, int db, uint64_t *count)
{
	MDB_stat ms;
	int rc;

	if ((rc = mdb_stat(t->txn, store__dbi(t, db), &ms)) != 0)
		return store__mdb_err(rc, store__db_names[db]);
	*count = ms.ms_entries;
	return 0;
}

int
store_block_count(struct store_txn *t, uint64_t *count)
{
	return db_count(t, STORE__DB_BLOCKS, count);
}

/* ---- rebuild queue ------------------------------------------------------ */

static void
rq_key(unsigned char key[4 + CR_ID_BYTES], const unsigned char *id,
    uint32_t surviving)
{
	put_be32(key, surviving);
	memcpy(key + 4, id, CR_ID_BYTES);
}

int
store_rebuild_put(struct store_txn *t, const unsigned char id[CR_ID_BYTES],
    uint32_t surviving)
{
	unsigned char key[4 + CR_ID_BYTES], val[4];
	int rc;

	if ((rc = store_rebuild_del(t, id)) < 0 && rc != -ENOENT)
		return rc;
	rq_key(key, id, surviving);
	put_be32(val, surviving);
	if ((rc = store__kv_put(t, STORE__DB_REBUILD, key, sizeof key, "", 0)) < 0)
		return rc;
	return store__kv_put(t, STORE__DB_REBUILDX, id, CR_ID_BYTES, val, sizeof val);
}

struct rq_first {
	unsigned char *id;
	uint32_t surviving;
	int found;
};

static int
rq_first_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct rq_first *f = ctx;

	if (k->mv_size != 4 + CR_ID_BYTES)
		return -EIO;
	f->surviving = get_be32(k->mv_data);
	memcpy(f->id, (const unsigned char *)k->mv_data + 4, CR_ID_BYTES);
	f->found = 1;
	return 1;
}

int
store_rebuild_first(struct store_txn *t, unsigned char id[CR_ID_BYTES],
    uint32_t *surviving)
{
	struct rq_first f = { id, 0, 0 };
	int rc;

	rc = store__scan(t, STORE__DB_REBUILD, NULL, 0, NULL, 0, 0, rq_first_one, &f);
	if (rc < 0)
		return rc;
	if (!f.found)
		return -ENOENT;
	*surviving = f.surviving;
	return 0;
}

int
store_rebuild_del(struct store_txn *t, const unsigned char id[CR_ID_BYTES])
{
	unsigned char key[4 + CR_ID_BYTES];
	MDB_val v;
	int rc;

	if ((rc = store__kv_get(t, STORE__DB_REBUILDX, id, CR_ID_BYTES, &v)) < 0)
		return rc;
	if (v.mv_size != 4)
		return -EIO;
	rq_key(key, id, get_be32(v.mv_data));
	if ((rc = store__kv_del(t, STORE__DB_REBUILD, key, sizeof key)) < 0 &&
	    rc != -ENOENT)
		return rc;
	return store__kv_del(t, STORE__DB_REBUILDX, id, CR_ID_BYTES);
}

int
store_rebuild_count(struct store_txn *t, uint64_t *count)
{
	return db_count(t, STORE__DB_REBUILDX, count);
}

struct rq_iter {
	int (*cb)(void *arg, const unsigned char *id, uint32_t surviving);
	void *arg;
};

static int
rq_iter_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct rq_iter *r = ctx;

	if (k->mv_size != 4 + CR_ID_BYTES)
		return -EIO;
	return r->cb(r->arg, (const unsigned char *)k->mv_data + 4,
	    get_be32(k->mv_data));
}

int
store_rebuild_iter(struct store_txn *t,
    int (*cb)(void *arg, const unsigned char *id, uint32_t surviving),
    void *arg)
{
	struct rq_iter r = { cb, arg };

	return store__scan(t, STORE__DB_REBUILD, NULL, 0, NULL, 0, 0, rq_iter_one, &r);
}

/* ---- deletion queue ----------------------------------------------------- */

#define DQ_KEY	(CR_PK_BYTES + STORE_FRAGID_BYTES)

int
store_delq_put(struct store_txn *t, const unsigned char pk[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], uint32_t bytes)
{
	return store_delq_put_held(t, pk, fragid, bytes, 0);
}

/* Values: u32 bytes, optionally followed by u64 hold (older records have
 * none). A hold only ever grows: a sweep finding the fragment unreferenced
 * must not cut short what retained versions still need. */
int
store_delq_put_held(struct store_txn *t, const unsigned char pk[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], uint32_t bytes,
    uint64_t hold_seq)
{
	unsigned char key[DQ_KEY], val[12];
	MDB_val old;

	memcpy(key, pk, CR_PK_BYTES);
	memcpy(key + CR_PK_BYTES, fragid, STORE_FRAGID_BYTES);
	if (store__kv_get(t, STORE__DB_DELQ, key, sizeof key, &old) == 0 &&
	    old.mv_size == 12 && get_be64((unsigned char *)old.mv_data + 4) > hold_seq)
		hold_seq = get_be64((unsigned char *)old.mv_data + 4);
	put_be32(val, bytes);
	put_be64(val + 4, hold_seq);
	return store__kv_put(t, STORE__DB_DELQ, key, sizeof key, val, sizeof val);
}

int
store_delq_del(struct store_txn *t, const unsigned char pk[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES])
{
	unsigned char key[DQ_KEY];

	memcpy(key, pk, CR_PK_BYTES);
	memcpy(key + CR_PK_BYTES, fragid, STORE_FRAGID_BYTES);
	return store__kv_del(t, STORE__DB_DELQ, key, sizeof key);
}

struct dq_ctx {
	int (*cb)(void *arg, const unsigned char *pk,
	    const unsigned char *fragid, uint32_t bytes);
	void *arg;
	uint64_t count, bytes;
	uint64_t due_seq;	/* skip entries held past this; UINT64_MAX: none */
};

static int
dq_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct dq_ctx *d = ctx;
	const unsigned char *p = k->mv_data;

	if (k->mv_size != DQ_KEY || (v->mv_size != 4 && v->mv_size != 12))
		return -EIO;
	if (v->mv_size == 12 && d->cb &&
	    get_be64((unsigned char *)v->mv_data + 4) > d->due_seq)
		return 0;
	if (!d->cb) {
		d->count++;
		d->bytes += get_be32(v->mv_data);
		return 0;
	}
	return d->cb(d->arg, p, p + CR_PK_BYTES, get_be32(v->mv_data));
}

int
store_delq_iter(struct store_txn *t,
    int (*cb)(void *arg, const unsigned char *pk, const unsigned char *fragid,
    uint32_t bytes), void *arg)
{
	struct dq_ctx d = { cb, arg, 0, 0, UINT64_MAX };

	return store__scan(t, STORE__DB_DELQ, NULL, 0, NULL, 0, 0, dq_one, &d);
}

int
store_delq_iter_due(struct store_txn *t, uint64_t seq,
    int (*cb)(void *arg, const unsigned char *pk, const unsigned char *fragid,
    uint32_t bytes), void *arg)
{
	struct dq_ctx d = { cb, arg, 0, 0, seq };

	return store__scan(t, STORE__DB_DELQ, NULL, 0, NULL, 0, 0, dq_one, &d);
}

int
store_delq_stats(struct store_txn *t, uint64_t *count, uint64_t *bytes)
{
	struct dq_ctx d = { NULL, NULL, 0, 0, UINT64_MAX };
	int rc;

	if ((rc = store__scan(t, STORE__DB_DELQ, NULL, 0, NULL, 0, 0, dq_one, &d)) < 0)
		return rc;
	*count = d.count;
	*bytes = d.bytes;
	return 0;
}

/* ---- journal records ---------------------------------------------------- */

int
store_jrnl_put(struct store_txn *t, uint64_t ino, uint64_t bno)
{
	unsigned char key[16];

	store__pair_key(key, ino, bno);
	return store__kv_put(t, STORE__DB_JRNL, key, sizeof key, "", 0);
}

int
store_jrnl_has(struct store_txn *t, uint64_t ino, uint64_t bno)
{
	unsigned char key[16];
	MDB_val v;
	int rc;

	store__pair_key(key, ino, bno);
	rc = store__kv_get(t, STORE__DB_JRNL, key, sizeof key, &v);
	return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

int
store_jrnl_del(struct store_txn *t, uint64_t ino, uint64_t bno)
{
	unsigned char key[16];

	store__pair_key(key, ino, bno);
	return store__kv_del(t, STORE__DB_JRNL, key, sizeof key);
}

struct jrnl_ctx {
	int (*cb)(void *arg, uint64_t ino, uint64_t bno);
	void *arg;
};

static int
jrnl_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct jrnl_ctx *j = ctx;
	const unsigned char *p = k->mv_data;

	if (k->mv_size != 16)
		return -EIO;
	return j->cb(j->arg, get_be64(p), get_be64(p + 8));
}

int
store_jrnl_iter(struct store_txn *t, uint64_t ino,
    int (*cb)(void *arg, uint64_t ino, uint64_t bno), void *arg)
{
	struct jrnl_ctx j = { cb, arg };
	unsigned char key[8];

	put_be64(key, ino);
	if (ino == 0)
		return store__scan(t, STORE__DB_JRNL, NULL, 0, NULL, 0, 0, jrnl_one, &j);
	return store__scan(t, STORE__DB_JRNL, key, 8, key, 8, 0, jrnl_one, &j);
}

int
store_jrnl_count(struct store_txn *t, uint64_t *count)
{
	return db_count(t, STORE__DB_JRNL, count);
}

