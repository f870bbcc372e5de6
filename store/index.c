/* store/index.c - the owner's metadata as a byte stream (the index) and
 * the change log that makes incremental segments cheap.
 *
 * changes db (not itself indexed):
 *   u64 0                         -> u64 BE current change number (gen)
 *   u64 gen | u8 table | key      -> empty: key of table touched by gen
 * meta.c calls store__index_log after every put or delete; the first
 * indexed change of a write transaction takes the next gen, so one
 * transaction = one gen, and an aborted one leaves no trace.
 *
 * Stream record (store.h): u8 table | u32 BE klen | u32 BE vlen | key |
 * value, vlen 0xffffffff = deleted. Table codes are fixed here, not the
 * LMDB handles' order, so the format survives new tables. Keys of misc
 * starting with "index." (STORE__MISC_LOCAL) are the uploader's own
 * bookkeeping (which seq was published, which blocks hold the index):
 * never logged nor dumped, a restored home writes its own. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "store/internal.h"
#include "util.h"

#define REC_HDR		9
#define REC_DEL		0xffffffffu
#define KEY_MAX		511		/* LMDB's default maximum key */
#define VAL_MAX		(16u << 20)	/* far above any record we write */
#define SKIP_PREFIX	STORE__MISC_LOCAL

static const struct {
	uint8_t code;
	int db;
} tables[] = {
	{ 1, STORE__DB_INODES }, { 2, STORE__DB_DIRENTS },
	{ 3, STORE__DB_SYMLINKS }, { 4, STORE__DB_XATTRS },
	{ 5, STORE__DB_EXTENTS }, { 6, STORE__DB_BLOCKS },
	{ 7, STORE__DB_PEERS }, { 8, STORE__DB_MISC },
	{ 9, STORE__DB_INLINE },
};

static const unsigned char counter_key[8];

static int
code_of(int db)
{
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++)
		if (tables[i].db == db)
			return tables[i].code;
	return 0;
}

static int
db_of(int code)
{
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++)
		if (tables[i].code == code)
			return tables[i].db;
	return -1;
}

static int
skipped(int db, const void *k, size_t klen)
{
	return db == STORE__DB_MISC && klen >= sizeof SKIP_PREFIX - 1 &&
	    memcmp(k, SKIP_PREFIX, sizeof SKIP_PREFIX - 1) == 0;
}

static int
counter_get(MDB_txn *txn, MDB_dbi dbi, uint64_t *gen)
{
	MDB_val k = { sizeof counter_key, (void *)counter_key }, v;
	int rc = mdb_get(txn, dbi, &k, &v);

	if (rc == MDB_NOTFOUND) {
		*gen = 0;
		return 0;
	}
	if (rc != 0)
		return store__mdb_err(rc, "changes");
	if (v.mv_size != 8) {
		log_error("store: corrupt change counter");
		return -EIO;
	}
	*gen = get_be64(v.mv_data);
	return 0;
}

static int
txn_gen(struct store_txn *t)
{
	MDB_dbi dbi = t->st->dbi[STORE__DB_CHANGES];
	unsigned char buf[8];
	MDB_val k = { sizeof counter_key, (void *)counter_key }, v = { 8, buf };
	uint64_t cur;
	int rc;

	if (t->gen)
		return 0;
	if ((rc = counter_get(t->txn, dbi, &cur)) < 0)
		return rc;
	put_be64(buf, cur + 1);
	if ((rc = mdb_put(t->txn, dbi, &k, &v, 0)) != 0)
		return store__mdb_err(rc, "changes");
	t->gen = cur + 1;
	return 0;
}

int
store_txn_gen(struct store_txn *t, uint64_t *gen)
{
	int rc;

	if ((rc = txn_gen(t)) < 0)
		return rc;
	*gen = t->gen;
	return 0;
}

int
store__index_log(struct store_txn *t, int db, const void *k, size_t klen)
{
	unsigned char key[9 + KEY_MAX];
	MDB_val mk, mv = { 0, (void *)"" };
	int code = code_of(db), rc;

	if (!code || t->nolog || skipped(db, k, klen))
		return 0;
	if (klen > KEY_MAX - 9)
		return -ENAMETOOLONG;	/* no indexed key is that long */
	if ((rc = txn_gen(t)) < 0)
		return rc;
	put_be64(key, t->gen);
	key[8] = (unsigned char)code;
	memcpy(key + 9, k, klen);
	mk = (MDB_val){ 9 + klen, key };
	return store__mdb_err(mdb_put(t->txn, t->st->dbi[STORE__DB_CHANGES],
	    &mk, &mv, 0), "changes");
}

int
store_index_gen(struct store *st, uint64_t *gen)
{
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	rc = counter_get(t->txn, st->dbi[STORE__DB_CHANGES], gen);
	store_txn_abort(t);
	return rc;
}

/* ---- writing records ---------------------------------------------------- */

/* Records are written in two passes over one read transaction: the first
 * measures, the second copies into one buffer of exactly that size whose
 * pages are populated up front; the caller's out() gets it only once the
 * transaction is over. A read transaction pins every page a commit frees
 * after it began, and copying a segment of thousands of small files
 * through out() and a doubling buffer (a page fault per page) held it for
 * up to a second, while a thousand commits went by and the LMDB file grew
 * by the pages they could not reuse (docs/performance.md). */
struct wbuf {
	int (*out)(void *arg, const void *p, size_t n);
	void *arg;
	unsigned char *p;	/* NULL: measuring */
	size_t len, cap;
	int rc;
};

static void
w_put(struct wbuf *w, const void *p, size_t n)
{
	if (w->rc)
		return;
	if (w->p) {
		if (n > w->cap - w->len) {
			w->rc = -EAGAIN;	/* cannot happen: same snapshot */
			return;
		}
		memcpy(w->p + w->len, p, n);
	}
	w->len += n;
}

/* val NULL: a deletion record. */
static void
w_rec(struct wbuf *w, int code, const void *k, size_t klen, const void *val,
    size_t vlen)
{
	unsigned char h[REC_HDR];

	h[0] = (unsigned char)code;
	put_be32(h + 1, (uint32_t)klen);
	put_be32(h + 5, val ? (uint32_t)vlen : REC_DEL);
	w_put(w, h, sizeof h);
	w_put(w, k, klen);
	if (val)
		w_put(w, val, vlen);
}

static void
w_init(struct wbuf *w, int (*out)(void *, const void *, size_t), void *arg)
{
	memset(w, 0, sizeof *w);
	w->out = out;
	w->arg = arg;
}

/* After the measuring pass: the buffer for the copying one. */
static int
w_alloc(struct wbuf *w)
{
	void *p;

	if (w->rc || w->len == 0)
		return w->rc;
	p = mmap(NULL, w->len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	w->p = p;
	w->cap = w->len;
	w->len = 0;
	return 0;
}

/* After the transaction: hands the records over, then wipes them (block
 * records hold block keys). */
static int
w_end(struct wbuf *w, int rc)
{
	if (rc == 0)
		rc = w->rc;
	if (rc == 0 && w->p && w->len)
		rc = w->out(w->arg, w->p, w->len);
	if (w->p) {
		sodium_memzero(w->p, w->cap);
		munmap(w->p, w->cap);
	}
	return rc;
}

/* ---- snapshot ------------------------------------------------------------ */

static int
dump_table(struct store_txn *t, int code, int db, struct wbuf *w)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[db], &c)) != 0)
		return store__mdb_err(rc, "cursor_open");
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !w->rc;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if (!skipped(db, k.mv_data, k.mv_size))
			w_rec(w, code, k.mv_data, k.mv_size, v.mv_data,
			    v.mv_size);
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : store__mdb_err(rc, "dump");
}

int
store_index_dump(struct store *st, uint64_t *gen,
    int (*out)(void *arg, const void *p, size_t n), void *arg)
{
	struct store_txn *t;
	struct wbuf w;
	uint64_t g;
	int rc;

	w_init(&w, out, arg);
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	rc = counter_get(t->txn, st->dbi[STORE__DB_CHANGES], &g);
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		if (pass == 1 && (rc = w_alloc(&w)) < 0)
			break;
		for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(tables); i++)
			rc = dump_table(t, tables[i].code, tables[i].db, &w);
	}
	store_txn_abort(t);
	if ((rc = w_end(&w, rc)) == 0)
		*gen = g;
	return rc;
}

/* ---- segments ------------------------------------------------------------ */

struct touched {
	uint8_t code;
	uint16_t klen;
	unsigned char key[];
};

static int
touched_cmp(const void *a, const void *b)
{
	const struct touched *x = *(struct touched *const *)a;
	const struct touched *y = *(struct touched *const *)b;

	if (x->code != y->code)
		return x->code - y->code;
	if (x->klen != y->klen)
		return x->klen - y->klen;
	return memcmp(x->key, y->key, x->klen);
}

/* Collects the distinct (table, key) pairs logged after since_gen. */
static int
collect(struct store_txn *t, uint64_t since_gen, struct touched ***out,
    size_t *count)
{
	struct touched **v = NULL, **nv, *e;
	size_t n = 0, cap = 0, u;
	unsigned char start[8];
	MDB_cursor *c;
	MDB_val k, d;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->st->dbi[STORE__DB_CHANGES],
	    &c)) != 0)
		return store__mdb_err(rc, "cursor_open");
	put_be64(start, since_gen + 1);
	k = (MDB_val){ sizeof start, start };
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		const unsigned char *p = k.mv_data;

		if (k.mv_size <= 9 || k.mv_size > 9 + KEY_MAX)
			continue;	/* the counter; nothing else is short */
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			if (!(nv = realloc(v, cap * sizeof *v))) {
				rc = ENOMEM;
				break;
			}
			v = nv;
		}
		if (!(e = malloc(sizeof *e + k.mv_size - 9))) {
			rc = ENOMEM;
			break;
		}
		e->code = p[8];
		e->klen = (uint16_t)(k.mv_size - 9);
		memcpy(e->key, p + 9, e->klen);
		v[n++] = e;
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return rc == ENOMEM ? -ENOMEM : store__mdb_err(rc, "changes");
	}
	if (n)
		qsort(v, n, sizeof *v, touched_cmp);
	for (size_t i = u = 0; i < n; i++) {
		if (u && touched_cmp(&v[u - 1], &v[i]) == 0)
			free(v[i]);
		else
			v[u++] = v[i];
	}
	*out = v;
	*count = n ? u : 0;
	return 0;
}

int
store_index_changes(struct store *st, uint64_t since_gen, uint64_t *gen,
    int (*out)(void *arg, const void *p, size_t n), void *arg)
{
	struct touched **v = NULL;
	struct store_txn *t;
	struct wbuf w;
	size_t n = 0;
	uint64_t g;
	int rc;

	w_init(&w, out, arg);
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	if ((rc = counter_get(t->txn, st->dbi[STORE__DB_CHANGES], &g)) == 0)
		rc = collect(t, since_gen, &v, &n);
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		if (pass == 1 && (rc = w_alloc(&w)) < 0)
			break;
		for (size_t i = 0; rc == 0 && i < n && !w.rc; i++) {
			int db = db_of(v[i]->code);
			MDB_val k = { v[i]->klen, v[i]->key }, d;

			if (db < 0)
				continue;
			rc = mdb_get(t->txn, st->dbi[db], &k, &d);
			if (rc == 0)
				w_rec(&w, v[i]->code, k.mv_data, k.mv_size,
				    d.mv_data, d.mv_size);
			else if (rc == MDB_NOTFOUND)
				w_rec(&w, v[i]->code, k.mv_data, k.mv_size,
				    NULL, 0);
			rc = rc == MDB_NOTFOUND ? 0 :
			    store__mdb_err(rc, "changes");
		}
	}
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	store_txn_abort(t);
	if ((rc = w_end(&w, rc)) == 0)
		*gen = g;
	return rc;
}

int
store_index_files_changed(struct store *st, uint64_t since_gen)
{
	struct store_txn *t;
	unsigned char start[8];
	MDB_cursor *c;
	MDB_val k, d;
	int rc, found = 0;

	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	if ((rc = mdb_cursor_open(t->txn, st->dbi[STORE__DB_CHANGES], &c))
	    != 0) {
		store_txn_abort(t);
		return store__mdb_err(rc, "cursor_open");
	}
	put_be64(start, since_gen + 1);
	k = (MDB_val){ sizeof start, start };
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		int db;

		if (k.mv_size <= 9 || k.mv_size > 9 + KEY_MAX)
			continue;	/* the counter */
		db = db_of(((const unsigned char *)k.mv_data)[8]);
		if (db >= 0 && db != STORE__DB_BLOCKS &&
		    db != STORE__DB_PEERS && db != STORE__DB_MISC) {
			found = 1;
			break;
		}
	}
	mdb_cursor_close(c);
	store_txn_abort(t);
	if (!found && rc != MDB_NOTFOUND)
		return store__mdb_err(rc, "changes");
	return found;
}

int
store_index_trim(struct store *st, uint64_t upto_gen)
{
	struct store_txn *t;
	unsigned char start[8];
	MDB_cursor *c;
	MDB_val k, d;
	int rc;

	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	if ((rc = mdb_cursor_open(t->txn, st->dbi[STORE__DB_CHANGES], &c))
	    != 0) {
		store_txn_abort(t);
		return store__mdb_err(rc, "cursor_open");
	}
	put_be64(start, 1);
	for (;;) {
		k = (MDB_val){ sizeof start, start };
		if ((rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE)) != 0)
			break;
		if (k.mv_size < 8 || get_be64(k.mv_data) > upto_gen)
			break;
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		store_txn_abort(t);
		return store__mdb_err(rc, "trim");
	}
	return store_txn_commit(t);
}

/* ---- applying ------------------------------------------------------------ */

/* Shapes the tables' keys and values must have; anything else is not
 * ours and must not reach the database. */
static int
rec_valid(int db, uint32_t klen, uint32_t vlen)
{
	int del = vlen == REC_DEL;

	if (klen == 0 || klen > KEY_MAX || (!del && vlen > VAL_MAX))
		return 0;
	switch (db) {
	case STORE__DB_INODES:
	case STORE__DB_SYMLINKS:
		return klen == 8;
	case STORE__DB_DIRENTS:
		return klen > 8 && klen <= 8 + STORE_NAME_MAX &&
		    (del || vlen == 8);
	case STORE__DB_XATTRS:
		return klen > 8 && klen <= 8 + STORE_NAME_MAX;
	case STORE__DB_EXTENTS:
		return klen == 16 && (del || vlen == CR_ID_BYTES);
	case STORE__DB_INLINE:
		return klen == 16 &&
		    (del || (vlen >= 1 && vlen <= STORE_INLINE_MAX));
	case STORE__DB_BLOCKS:
		return klen == CR_ID_BYTES;
	case STORE__DB_PEERS:
		return klen <= STORE_NAME_MAX && (del || vlen == CR_PK_BYTES);
	case STORE__DB_MISC:
		return klen <= STORE_NAME_MAX;
	}
	return 0;
}

/* Walks the records: fn(ctx, db, key, klen, val or NULL, vlen) for each.
 * -EPROTO as soon as anything is malformed. */
static int
walk(const unsigned char *p, size_t n,
    int (*fn)(void *ctx, int db, const unsigned char *k, uint32_t klen,
    const unsigned char *v, uint32_t vlen), void *ctx)
{
	size_t off = 0;
	int rc;

	while (off < n) {
		uint32_t klen, vlen;
		size_t need;
		int db;

		if (n - off < REC_HDR)
			return -EPROTO;
		db = db_of(p[off]);
		klen = get_be32(p + off + 1);
		vlen = get_be32(p + off + 5);
		if (db < 0 || !rec_valid(db, klen, vlen))
			return -EPROTO;
		need = (size_t)klen + (vlen == REC_DEL ? 0 : vlen);
		if (n - off - REC_HDR < need)
			return -EPROTO;
		off += REC_HDR;
		if (fn && (rc = fn(ctx, db, p + off, klen,
		    vlen == REC_DEL ? NULL : p + off + klen, vlen)) < 0)
			return rc;
		off += need;
	}
	return 0;
}

static int
apply_one(void *ctx, int db, const unsigned char *k, uint32_t klen,
    const unsigned char *v, uint32_t vlen)
{
	struct store_txn *t = ctx;
	MDB_val mk = { klen, (void *)k }, mv = { v ? vlen : 0, (void *)v };
	int rc;

	if (skipped(db, k, klen))
		return 0;
	if (!v) {
		rc = mdb_del(t->txn, t->st->dbi[db], &mk, NULL);
		return rc == MDB_NOTFOUND ? 0 : store__mdb_err(rc, "apply");
	}
	if (!vlen)
		mv.mv_data = (void *)"";
	return store__mdb_err(mdb_put(t->txn, t->st->dbi[db], &mk, &mv, 0),
	    "apply");
}

int
store_index_apply(struct store *st, const void *p, size_t n)
{
	struct store_txn *t;
	int rc;

	if ((rc = walk(p, n, NULL, NULL)) < 0)
		return rc;
	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	t->nolog = 1;
	if ((rc = walk(p, n, apply_one, t)) < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

/* Empties every indexed table but the uploader's own misc keys. */
static int
clear_indexed(struct store_txn *t)
{
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
		MDB_dbi dbi = t->st->dbi[tables[i].db];
		MDB_cursor *c;
		MDB_val k, v;
		int rc;

		if (tables[i].db != STORE__DB_MISC) {
			if ((rc = mdb_drop(t->txn, dbi, 0)) != 0)
				return store__mdb_err(rc, "clear");
			continue;
		}
		if ((rc = mdb_cursor_open(t->txn, dbi, &c)) != 0)
			return store__mdb_err(rc, "clear");
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			if (skipped(STORE__DB_MISC, k.mv_data, k.mv_size))
				continue;
			if ((rc = mdb_cursor_del(c, 0)) != 0)
				break;
		}
		mdb_cursor_close(c);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return store__mdb_err(rc, "clear");
	}
	return 0;
}

int
store_index_replace(struct store *st, const void *p, size_t n)
{
	struct store_txn *t;
	int rc;

	if ((rc = walk(p, n, NULL, NULL)) < 0)
		return rc;
	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	t->nolog = 1;
	if ((rc = clear_indexed(t)) < 0 ||
	    (rc = walk(p, n, apply_one, t)) < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}
