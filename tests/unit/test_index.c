/* tests/unit/test_index.c - the index: snapshots, change segments, trim,
 * and applying them into a fresh store (store/index.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "store/store.h"
#include "test.h"

#define OPEN(st, d) CHECK_EQ(store_open(&(st), (d), TEST_MAP_BYTES), 0)
#define BEGIN(st, t) CHECK_EQ(store_txn_begin((st), 0, &(t)), 0)
#define COMMIT(t) CHECK_EQ(store_txn_commit(t), 0)

struct buf {
	unsigned char *p;
	size_t len;
};

static int
buf_out(void *arg, const void *p, size_t n)
{
	struct buf *b = arg;
	unsigned char *np = realloc(b->p, b->len + n + 1);

	if (!np)
		return -ENOMEM;
	memcpy(np + b->len, p, n);
	b->p = np;
	b->len += n;
	return 0;
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
}

static struct store_inode
mk_inode(uint64_t ino, uint32_t mode)
{
	struct store_inode in = {
		.ino = ino, .mode = mode, .uid = 1000, .gid = 1000, .nlink = 1,
		.size = ino * 1000, .mtime_sec = 1700000000 + (int64_t)ino,
	};
	return in;
}

static struct store_block
mk_block(unsigned seed)
{
	struct store_block b;

	memset(&b, 0, sizeof b);
	for (int i = 0; i < CR_ID_BYTES; i++) {
		b.id[i] = (unsigned char)(seed * 31 + i);
		b.key[i] = (unsigned char)(seed * 7 + i);
	}
	b.plain_len = 4096 * seed;
	b.frag_len = 1100;
	b.k = 4;
	b.m = 2;
	b.refcount = 1;
	for (int i = 0; i < 6; i++) {
		memset(b.frag_hash[i], seed + i, CR_HASH_BYTES);
		memset(b.peer[i], 0x40 + i, CR_PK_BYTES);
	}
	return b;
}

/* A small tree: dirs, files with extents and blocks, a symlink, xattrs,
 * a pinned peer, and the uploader's own misc keys (not indexed). */
static int
populate(struct store *st)
{
	struct store_txn *t;
	struct store_inode in;
	struct store_block b;
	unsigned char pk[CR_PK_BYTES];
	uint64_t ino;

	BEGIN(st, t);
	CHECK_EQ(store_ino_alloc(t, &ino), 0);
	in = mk_inode(ino, S_IFDIR | 0755);
	CHECK_EQ(store_ino_put(t, &in), 0);
	CHECK_EQ(store_dirent_put(t, STORE_ROOT_INO, "dir", ino), 0);
	for (unsigned i = 0; i < 5; i++) {
		char name[32];
		uint64_t f;

		CHECK_EQ(store_ino_alloc(t, &f), 0);
		in = mk_inode(f, S_IFREG | 0644);
		CHECK_EQ(store_ino_put(t, &in), 0);
		snprintf(name, sizeof name, "file%u", i);
		CHECK_EQ(store_dirent_put(t, ino, name, f), 0);
		b = mk_block(i + 1);
		CHECK_EQ(store_block_put(t, &b), 0);
		CHECK_EQ(store_extent_put(t, f, 0, b.id), 0);
		CHECK_EQ(store_xattr_set(t, f, "user.tag", name, strlen(name),
		    0), 0);
	}
	CHECK_EQ(store_ino_alloc(t, &ino), 0);
	in = mk_inode(ino, S_IFLNK | 0777);
	CHECK_EQ(store_ino_put(t, &in), 0);
	CHECK_EQ(store_symlink_put(t, ino, "dir/file0"), 0);
	CHECK_EQ(store_dirent_put(t, STORE_ROOT_INO, "link", ino), 0);
	CHECK_EQ(store_misc_u64_put(t, STORE_MISC_BLOCK_SIZE, 16384), 0);
	CHECK_EQ(store_misc_u64_put(t, STORE_MISC_INDEX_SEQ, 12345678), 0);
	COMMIT(t);
	memset(pk, 0x5a, sizeof pk);
	CHECK_EQ(store_peer_pin(st, "127.0.0.1:7070", pk), 0);
	return 0;
}

static int
dump(struct store *st, struct buf *b, uint64_t *gen)
{
	uint64_t g;

	memset(b, 0, sizeof *b);
	CHECK_EQ(store_index_dump(st, gen ? gen : &g, buf_out, b), 0);
	return 0;
}

static int
test_gen_per_txn(void)
{
	struct store *st;
	struct store_txn *t;
	struct store_inode in = mk_inode(50, S_IFREG | 0600);
	uint64_t g0, g1, g2, tg;

	OPEN(st, "a");
	CHECK_EQ(store_index_gen(st, &g0), 0);
	BEGIN(st, t);
	CHECK_EQ(store_ino_put(t, &in), 0);
	CHECK_EQ(store_dirent_put(t, STORE_ROOT_INO, "x", 50), 0);
	CHECK_EQ(store_txn_gen(t, &tg), 0);
	COMMIT(t);
	CHECK_EQ(store_index_gen(st, &g1), 0);
	CHECK_EQ(g1, g0 + 1);		/* one transaction, one gen */
	CHECK_EQ(tg, g1);
	BEGIN(st, t);			/* aborted: no trace */
	CHECK_EQ(store_dirent_put(t, STORE_ROOT_INO, "y", 50), 0);
	store_txn_abort(t);
	BEGIN(st, t);			/* not indexed: no gen */
	CHECK_EQ(store_jrnl_put(t, 50, 0), 0);
	CHECK_EQ(store_misc_u64_put(t, STORE_MISC_INDEX_GEN, 1), 0);
	COMMIT(t);
	CHECK_EQ(store_index_gen(st, &g2), 0);
	CHECK_EQ(g2, g1);
	store_close(st);
	return 0;
}

static int
test_dump_apply_roundtrip(void)
{
	struct store *a, *b;
	struct store_txn *t;
	struct store_block blk, want = mk_block(3);
	struct buf da, db;
	char val[64];
	uint64_t ino;

	OPEN(a, "a");
	if (populate(a))
		return 1;
	CHECK_EQ(dump(a, &da, NULL), 0);
	CHECK(da.len > 0);
	CHECK(memmem(da.p, da.len, "index.seq", 9) == NULL);
	OPEN(b, "b");
	CHECK_EQ(store_index_apply(b, da.p, da.len), 0);
	CHECK_EQ(dump(b, &db, NULL), 0);
	CHECK_EQ(db.len, da.len);
	CHECK_MEM(db.p, da.p, da.len);
	/* And through the ordinary API. */
	CHECK_EQ(store_txn_begin(b, 1, &t), 0);
	CHECK_EQ(store_dirent_get(t, STORE_ROOT_INO, "dir", &ino), 0);
	CHECK_EQ(store_block_get(t, want.id, &blk), 0);
	CHECK_MEM(blk.key, want.key, CR_KEY_BYTES);
	CHECK_EQ(store_symlink_get(t, ino + 6, val, sizeof val), 9);
	CHECK(strcmp(val, "dir/file0") == 0);
	CHECK_EQ(store_misc_u64_get(t, STORE_MISC_INDEX_SEQ, &ino), -ENOENT);
	store_txn_abort(t);
	buf_free(&da);
	buf_free(&db);
	store_close(a);
	store_close(b);
	return 0;
}

/* A read-only node follows another node's snapshot: replace drops what
 * the store held (files, misc) but the uploader's own "index." keys. */
static int
test_replace(void)
{
	struct store *a, *b;
	struct store_txn *t;
	struct store_inode in = { 0 };
	struct buf da, db;
	char val[16];
	uint64_t ino;

	OPEN(a, "a");
	if (populate(a))
		return 1;
	CHECK_EQ(dump(a, &da, NULL), 0);
	OPEN(b, "b");
	CHECK_EQ(store_txn_begin(b, 0, &t), 0);
	in.ino = 4242;
	in.mode = 0100644;
	in.nlink = 1;
	CHECK_EQ(store_ino_put(t, &in), 0);
	CHECK_EQ(store_dirent_put(t, STORE_ROOT_INO, "stale", 4242), 0);
	CHECK_EQ(store_misc_put(t, "conf.stale", "x", 1), 0);
	CHECK_EQ(store_misc_put(t, "index.node", "mine", 4), 0);
	CHECK_EQ(store_txn_commit(t), 0);
	CHECK_EQ(store_index_replace(b, da.p, da.len), 0);
	CHECK_EQ(dump(b, &db, NULL), 0);
	CHECK_EQ(db.len, da.len);		/* the same tree, nothing else */
	CHECK_MEM(db.p, da.p, da.len);
	CHECK_EQ(store_txn_begin(b, 1, &t), 0);
	CHECK_EQ(store_dirent_get(t, STORE_ROOT_INO, "stale", &ino), -ENOENT);
	CHECK_EQ(store_ino_get(t, 4242, &in), -ENOENT);
	CHECK_EQ(store_misc_get(t, "conf.stale", val, sizeof val), -ENOENT);
	CHECK_EQ(store_misc_get(t, "index.node", val, sizeof val), 4);
	CHECK_EQ(store_dirent_get(t, STORE_ROOT_INO, "dir", &ino), 0);
	store_txn_abort(t);
	/* Malformed input replaces nothing. */
	CHECK_EQ(store_index_replace(b, "\x01junk", 5), -EPROTO);
	CHECK_EQ(store_txn_begin(b, 1, &t), 0);
	CHECK_EQ(store_dirent_get(t, STORE_ROOT_INO, "dir", &ino), 0);
	store_txn_abort(t);
	buf_free(&da);
	buf_free(&db);
	store_close(a);
	store_close(b);
	return 0;
}

/* Changes: puts, updates, deletes (incl. the xattrs store_ino_del drops
 * by prefix) over several transactions. */
static int
mutate(struct store *st, int round)
{
	struct store_txn *t;
	struct store_inode in;
	struct store_block b = mk_block(2);
	uint64_t dir, f, ino;

	BEGIN(st, t);
	CHECK_EQ(store_dirent_get(t, STORE_ROOT_INO, "dir", &dir), 0);
	if (round == 0) {
		CHECK_EQ(store_dirent_get(t, dir, "file1", &f), 0);
		CHECK_EQ(store_dirent_del(t, dir, "file1"), 0);
		CHECK_EQ(store_ino_del(t, f), 0);
		CHECK_EQ(store_extent_del(t, f, 0), 0);
		CHECK_EQ(store_block_del(t, b.id), 0);
	} else {
		CHECK_EQ(store_dirent_get(t, dir, "file2", &f), 0);
		CHECK_EQ(store_ino_get(t, f, &in), 0);
		in.size = 777;
		CHECK_EQ(store_ino_put(t, &in), 0);
		CHECK_EQ(store_xattr_set(t, f, "user.new", "v", 1, 0), 0);
		CHECK_EQ(store_xattr_del(t, f, "user.tag"), 0);
	}
	COMMIT(t);
	BEGIN(st, t);
	CHECK_EQ(store_ino_alloc(t, &ino), 0);
	in = mk_inode(ino, S_IFREG | 0600);
	CHECK_EQ(store_ino_put(t, &in), 0);
	CHECK_EQ(store_dirent_put(t, STORE_ROOT_INO, round ? "r1" : "r0", ino),
	    0);
	b = mk_block(10 + round);
	CHECK_EQ(store_block_put(t, &b), 0);
	CHECK_EQ(store_extent_put(t, ino, 0, b.id), 0);
	COMMIT(t);
	return 0;
}

static int
has_delete(const struct buf *b)
{
	size_t off = 0;

	while (off + 9 <= b->len) {
		const unsigned char *p = b->p + off;
		uint32_t kl = (uint32_t)p[1] << 24 | p[2] << 16 | p[3] << 8 | p[4];
		uint32_t vl = (uint32_t)p[5] << 24 | p[6] << 16 | p[7] << 8 | p[8];

		if (vl == 0xffffffffu)
			return 1;
		off += 9 + kl + vl;
	}
	return 0;
}

static int
test_segments(void)
{
	struct store *a, *b;
	struct buf base, s1, s2, da, db, s1again = { 0 };
	uint64_t g0, g1, g2, g;

	OPEN(a, "a");
	if (populate(a))
		return 1;
	CHECK_EQ(dump(a, &base, &g0), 0);
	if (mutate(a, 0))
		return 1;
	memset(&s1, 0, sizeof s1);
	CHECK_EQ(store_index_changes(a, g0, &g1, buf_out, &s1), 0);
	CHECK_EQ(g1, g0 + 2);
	CHECK(has_delete(&s1));
	CHECK(s1.len < base.len);	/* what changed, not the tree */
	if (mutate(a, 1))
		return 1;
	memset(&s2, 0, sizeof s2);
	CHECK_EQ(store_index_changes(a, g1, &g2, buf_out, &s2), 0);
	CHECK_EQ(g2, g1 + 2);
	CHECK(has_delete(&s2));		/* user.tag */

	OPEN(b, "b");
	CHECK_EQ(store_index_apply(b, base.p, base.len), 0);
	CHECK_EQ(store_index_apply(b, s1.p, s1.len), 0);
	CHECK_EQ(store_index_apply(b, s2.p, s2.len), 0);
	CHECK_EQ(dump(a, &da, NULL), 0);
	CHECK_EQ(dump(b, &db, NULL), 0);
	CHECK_EQ(db.len, da.len);
	CHECK_MEM(db.p, da.p, da.len);
	/* Applying logs nothing: b's change number did not move. */
	CHECK_EQ(store_index_gen(b, &g), 0);
	CHECK_EQ(g, 1);			/* its own root inode */

	/* Nothing since g2: an empty segment. */
	buf_free(&s1);
	CHECK_EQ(store_index_changes(a, g2, &g, buf_out, &s1), 0);
	CHECK_EQ(s1.len, 0);
	CHECK_EQ(g, g2);
	buf_free(&s1again);
	buf_free(&base);
	buf_free(&s2);
	buf_free(&da);
	buf_free(&db);
	store_close(a);
	store_close(b);
	return 0;
}

/* Tells files people changed from bookkeeping alone (blocks, peers, misc)
 * without reading the values: what fsync and every index pass ask. */
static int
test_files_changed(void)
{
	struct store *st;
	struct store_txn *t;
	struct store_inode in = mk_inode(70, S_IFREG | 0600);
	struct store_block b = mk_block(9);
	unsigned char pk[CR_PK_BYTES];
	uint64_t g0, g1, g2;

	OPEN(st, "a");
	CHECK_EQ(store_index_gen(st, &g0), 0);
	CHECK_EQ(store_index_files_changed(st, g0), 0);	/* nothing since */
	CHECK_EQ(store_index_files_changed(st, 0), 1);	/* the root inode */
	if (populate(st))
		return 1;
	CHECK_EQ(store_index_files_changed(st, g0), 1);
	CHECK_EQ(store_index_gen(st, &g1), 0);
	/* Bookkeeping only: a block record, a peer, a misc key. */
	BEGIN(st, t);
	CHECK_EQ(store_block_put(t, &b), 0);
	CHECK_EQ(store_misc_u64_put(t, STORE_MISC_BLOCK_SIZE, 32768), 0);
	COMMIT(t);
	memset(pk, 0x6b, sizeof pk);
	CHECK_EQ(store_peer_pin(st, "127.0.0.1:7071", pk), 0);
	CHECK_EQ(store_index_gen(st, &g2), 0);
	CHECK(g2 > g1);
	CHECK_EQ(store_index_files_changed(st, g1), 0);
	/* One inode among them is a change people made. */
	BEGIN(st, t);
	CHECK_EQ(store_block_put(t, &b), 0);
	CHECK_EQ(store_ino_put(t, &in), 0);
	COMMIT(t);
	CHECK_EQ(store_index_files_changed(st, g1), 1);
	CHECK_EQ(store_index_files_changed(st, g2), 1);
	/* A deletion counts too. */
	CHECK_EQ(store_index_gen(st, &g2), 0);
	BEGIN(st, t);
	CHECK_EQ(store_dirent_del(t, STORE_ROOT_INO, "link"), 0);
	COMMIT(t);
	CHECK_EQ(store_index_files_changed(st, g2), 1);
	/* Once trimmed up to now, nothing is left to tell. */
	CHECK_EQ(store_index_gen(st, &g2), 0);
	CHECK_EQ(store_index_trim(st, g2), 0);
	CHECK_EQ(store_index_files_changed(st, 0), 0);
	store_close(st);
	return 0;
}

static int
test_trim(void)
{
	struct store *a;
	struct buf all = { 0 }, since = { 0 };
	uint64_t g0, g1, g;

	OPEN(a, "a");
	if (populate(a) || mutate(a, 0))
		return 1;
	CHECK_EQ(store_index_gen(a, &g0), 0);
	if (mutate(a, 1))
		return 1;
	CHECK_EQ(store_index_changes(a, 0, &g1, buf_out, &all), 0);
	CHECK_EQ(store_index_changes(a, g0, &g, buf_out, &since), 0);
	CHECK(all.len > since.len);
	CHECK_EQ(store_index_trim(a, g0), 0);
	buf_free(&all);
	CHECK_EQ(store_index_changes(a, 0, &g, buf_out, &all), 0);
	CHECK_EQ(g, g1);		/* the counter survives a trim */
	CHECK_EQ(all.len, since.len);
	CHECK_MEM(all.p, since.p, all.len);
	CHECK_EQ(store_index_trim(a, g1), 0);
	buf_free(&all);
	CHECK_EQ(store_index_changes(a, 0, &g, buf_out, &all), 0);
	CHECK_EQ(all.len, 0);
	buf_free(&all);
	buf_free(&since);
	store_close(a);
	return 0;
}

static int
test_malformed(void)
{
	struct store *a, *b;
	struct buf base, before, after, bad = { 0 };
	uint64_t ino;
	struct store_txn *t;

	OPEN(a, "a");
	if (populate(a))
		return 1;
	CHECK_EQ(dump(a, &base, NULL), 0);
	OPEN(b, "b");
	CHECK_EQ(dump(b, &before, NULL), 0);
	/* Cut short: the last record's value is missing a byte. */
	CHECK_EQ(store_index_apply(b, base.p, base.len - 1), -EPROTO);
	/* Unknown table code in the middle, valid records before it. */
	CHECK_EQ(buf_out(&bad, base.p, base.len), 0);
	CHECK_EQ(buf_out(&bad, "\x63\0\0\0\x01\0\0\0\x01xy", 11), 0);
	CHECK_EQ(store_index_apply(b, bad.p, bad.len), -EPROTO);
	/* An extent whose value is not a block id. */
	CHECK_EQ(store_index_apply(b,
	    "\x05\0\0\0\x10\0\0\0\x02" "0123456789abcdef" "zz", 27), -EPROTO);
	/* A huge key length. */
	CHECK_EQ(store_index_apply(b, "\x08\xff\xff\xff\xff\0\0\0\0", 9),
	    -EPROTO);
	/* Only a header. */
	CHECK_EQ(store_index_apply(b, "\x01\0\0", 3), -EPROTO);
	CHECK_EQ(dump(b, &after, NULL), 0);
	CHECK_EQ(after.len, before.len);
	CHECK_MEM(after.p, before.p, before.len);
	CHECK_EQ(store_txn_begin(b, 1, &t), 0);
	CHECK_EQ(store_dirent_get(t, STORE_ROOT_INO, "dir", &ino), -ENOENT);
	store_txn_abort(t);
	CHECK_EQ(store_index_apply(b, "", 0), 0);	/* empty is fine */
	buf_free(&base);
	buf_free(&before);
	buf_free(&after);
	buf_free(&bad);
	store_close(a);
	store_close(b);
	return 0;
}

/* Inline blocks (tiny files) are indexed: snapshot, segments (put and
 * delete) and apply carry them; malformed inline records are refused. */
static int
test_inline(void)
{
	struct store *a, *b;
	struct store_txn *t;
	struct buf da = { 0 }, db = { 0 }, seg = { 0 };
	unsigned char big[STORE_INLINE_MAX], got[STORE_INLINE_MAX];
	unsigned char rec[9 + 16 + STORE_INLINE_MAX + 1];
	uint64_t g0, g;
	size_t len;

	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i * 7 + 3);
	OPEN(a, "a");
	BEGIN(a, t);
	CHECK_EQ(store_inline_put(t, 42, 0, "hello", 5), 0);
	CHECK_EQ(store_inline_put(t, 43, 0, big, sizeof big), 0);
	CHECK_EQ(store_inline_put(t, 44, 0, "gone", 4), 0);
	COMMIT(t);
	CHECK_EQ(dump(a, &da, &g0), 0);
	CHECK(memmem(da.p, da.len, "hello", 5) != NULL);

	OPEN(b, "b");
	CHECK_EQ(store_index_apply(b, da.p, da.len), 0);
	CHECK_EQ(dump(b, &db, NULL), 0);
	CHECK_EQ(db.len, da.len);
	CHECK_MEM(db.p, da.p, da.len);
	CHECK_EQ(store_txn_begin(b, 1, &t), 0);
	CHECK_EQ(store_inline_get(t, 43, 0, got, sizeof got, &len), 0);
	CHECK_EQ(len, sizeof big);
	CHECK_MEM(got, big, sizeof big);
	CHECK_EQ(store_inline_get(t, 42, 0, got, sizeof got, &len), 0);
	CHECK_EQ(len, 5);
	CHECK_MEM(got, "hello", 5);
	store_txn_abort(t);

	/* A segment: one replaced, one deleted. */
	BEGIN(a, t);
	CHECK_EQ(store_inline_put(t, 42, 0, "world!", 6), 0);
	CHECK_EQ(store_inline_del(t, 44, 0), 0);
	COMMIT(t);
	CHECK_EQ(store_index_changes(a, g0, &g, buf_out, &seg), 0);
	CHECK_EQ(g, g0 + 1);
	CHECK(has_delete(&seg));
	CHECK(memmem(seg.p, seg.len, big, 64) == NULL);	/* unchanged */
	CHECK_EQ(store_index_apply(b, seg.p, seg.len), 0);
	CHECK_EQ(store_txn_begin(b, 1, &t), 0);
	CHECK_EQ(store_inline_get(t, 42, 0, got, sizeof got, &len), 0);
	CHECK_EQ(len, 6);
	CHECK_MEM(got, "world!", 6);
	CHECK_EQ(store_inline_get(t, 44, 0, got, sizeof got, &len), -ENOENT);
	CHECK_EQ(store_inline_get(t, 43, 0, got, sizeof got, &len), 0);
	store_txn_abort(t);

	/* Malformed inline records (table 9): nothing applied. */
	memset(rec, 0, sizeof rec);
	rec[0] = 9;
	rec[4] = 16;			/* key length 16 */
	memcpy(rec + 9, "\0\0\0\0\0\0\0\x63\0\0\0\0\0\0\0\0", 16);
	/* value length 0 */
	CHECK_EQ(store_index_apply(b, rec, 9 + 16), -EPROTO);
	/* value of STORE_INLINE_MAX + 1 bytes */
	rec[6] = (STORE_INLINE_MAX + 1) >> 16;
	rec[7] = ((STORE_INLINE_MAX + 1) >> 8) & 0xff;
	rec[8] = (STORE_INLINE_MAX + 1) & 0xff;
	CHECK_EQ(store_index_apply(b, rec, sizeof rec), -EPROTO);
	/* the largest value is fine */
	rec[7] = (STORE_INLINE_MAX >> 8) & 0xff;
	rec[8] = STORE_INLINE_MAX & 0xff;
	CHECK_EQ(store_index_apply(b, rec, sizeof rec - 1), 0);
	/* key of 15 bytes */
	rec[4] = 15;
	rec[7] = 0;
	rec[8] = 1;
	CHECK_EQ(store_index_apply(b, rec, 9 + 15 + 1), -EPROTO);
	/* key of 17 bytes, deletion */
	rec[4] = 17;
	memset(rec + 5, 0xff, 4);
	CHECK_EQ(store_index_apply(b, rec, 9 + 17), -EPROTO);
	CHECK_EQ(store_txn_begin(b, 1, &t), 0);
	CHECK_EQ(store_inline_get(t, 0x63, 0, got, sizeof got, &len), 0);
	CHECK_EQ(len, STORE_INLINE_MAX);
	store_txn_abort(t);
	buf_free(&da);
	buf_free(&db);
	buf_free(&seg);
	store_close(a);
	store_close(b);
	return 0;
}

const struct test tests_index[] = {
	{ "inline_roundtrip_and_malformed", test_inline },
	{ "gen_per_txn", test_gen_per_txn },
	{ "dump_apply_roundtrip", test_dump_apply_roundtrip },
	{ "replace_follows_snapshot", test_replace },
	{ "segments_equal_live", test_segments },
	{ "trim", test_trim },
	{ "files_changed_skips_bookkeeping", test_files_changed },
	{ "malformed_nothing_applied", test_malformed },
	{ NULL, NULL },
};
