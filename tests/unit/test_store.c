/* tests/unit/test_store.c - owner metadata (LMDB), journal staging files and
 * the block cache. Each test runs in its own temporary directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <lmdb.h>

#include "store/internal.h"
#include "store/store.h"
#include "test.h"
#include "testutil.h"

#define OPEN(st) CHECK_EQ(store_open(&(st), "db", TEST_MAP_BYTES), 0)
#define BEGIN(st, ro, t) CHECK_EQ(store_txn_begin((st), (ro), &(t)), 0)
#define COMMIT(t) CHECK_EQ(store_txn_commit(t), 0)

static struct store_inode
mk_inode(uint64_t ino, uint32_t nlink)
{
	struct store_inode in = {
		.ino = ino, .mode = S_IFREG | 0640, .uid = 1000, .gid = 1001,
		.nlink = nlink, .size = 0x123456789ULL, .rdev = 77,
		.atime_sec = -5, .mtime_sec = 1700000000, .ctime_sec = 1700000001,
		.atime_nsec = 1, .mtime_nsec = 999999999, .ctime_nsec = 3,
		.generation = 0xfeedfacecafeULL,
	};
	return in;
}

/* Field by field: the struct has padding. */
static int
ino_same(const struct store_inode *a, const struct store_inode *b)
{
	return a->ino == b->ino && a->mode == b->mode && a->uid == b->uid &&
	    a->gid == b->gid && a->nlink == b->nlink && a->size == b->size &&
	    a->rdev == b->rdev && a->atime_sec == b->atime_sec &&
	    a->mtime_sec == b->mtime_sec && a->ctime_sec == b->ctime_sec &&
	    a->atime_nsec == b->atime_nsec && a->mtime_nsec == b->mtime_nsec &&
	    a->ctime_nsec == b->ctime_nsec && a->generation == b->generation;
}

/* ---- metadata ----------------------------------------------------------- */

/* data.mdb is written through its map: the file must stay allocated well
 * beyond its last page (a store into a hole of a full disk is a SIGBUS). */
static int
test_map_allocated_ahead(void)
{
	struct store *st;
	struct store_txn *t;
	struct stat sb;
	uint64_t used, size;
	static char val[60000];
	char name[32];

	OPEN(st);
	CHECK(stat("db/meta/data.mdb", &sb) == 0);
	CHECK((uint64_t)sb.st_blocks * 512 >= (uint64_t)16 << 20);
	for (int i = 0; i < 400; i++) {
		memset(val, i, sizeof val);
		snprintf(name, sizeof name, "user.x%d", i);
		BEGIN(st, 0, t);
		CHECK_EQ(store_xattr_set(t, STORE_ROOT_INO, name, val,
		    sizeof val, 0), 0);
		COMMIT(t);
	}
	CHECK_EQ(store_map_usage(st, &used, &size), 0);
	CHECK(used > (uint64_t)20 << 20);
	CHECK(stat("db/meta/data.mdb", &sb) == 0);
	CHECK((uint64_t)sb.st_blocks * 512 >= used + ((uint64_t)8 << 20));
	store_close(st);
	return 0;
}

static int
test_open_root_reopen(void)
{
	struct store *st;
	struct store_txn *t;
	struct store_inode in, w = mk_inode(42, 1);
	struct stat sb;

	OPEN(st);
	CHECK(stat("db/meta/data.mdb", &sb) == 0);
	CHECK(stat("db/meta", &sb) == 0 && (sb.st_mode & 0777) == 0700);
	CHECK(stat("db/journal", &sb) == 0 && S_ISDIR(sb.st_mode));
	BEGIN(st, 1, t);
	CHECK_EQ(store_ino_get(t, STORE_ROOT_INO, &in), 0);
	CHECK_EQ(in.ino, STORE_ROOT_INO);
	CHECK_EQ(in.mode, S_IFDIR | 0755);
	CHECK_EQ(in.nlink, 2);
	CHECK_EQ(in.uid, getuid());
	CHECK_EQ(in.gid, getgid());
	CHECK(in.mtime_sec > 1600000000);
	store_txn_abort(t);
	BEGIN(st, 0, t);
	CHECK_EQ(store_ino_put(t, &w), 0);
	CHECK_EQ(store_misc_put(t, "conf.k", "\x04", 1), 0);
	COMMIT(t);
	CHECK_EQ(store_sync(st), 0);
	store_close(st);

	OPEN(st);
	BEGIN(st, 1, t);
	CHECK_EQ(store_ino_get(t, 42, &in), 0);
	CHECK(ino_same(&in, &w));
	char b[4] = { 0 };
	CHECK_EQ(store_misc_get(t, "conf.k", b, sizeof b), 1);
	CHECK_EQ(b[0], 4);
	CHECK_EQ(store_misc_get(t, "conf.m", b, sizeof b), -ENOENT);
	/* the root made at first open is not remade (same times) */
	struct store_inode root;
	CHECK_EQ(store_ino_get(t, STORE_ROOT_INO, &root), 0);
	CHECK_EQ(root.mode, S_IFDIR | 0755);
	store_txn_abort(t);
	store_close(st);
	return 0;
}

static int
test_root_kept(void)
{
	struct store *st;
	struct store_txn *t;
	struct store_inode in;

	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_ino_get(t, STORE_ROOT_INO, &in), 0);
	in.mode = S_IFDIR | 0700;
	in.nlink = 5;
	CHECK_EQ(store_ino_put(t, &in), 0);
	COMMIT(t);
	store_close(st);
	OPEN(st);
	BEGIN(st, 1, t);
	CHECK_EQ(store_ino_get(t, STORE_ROOT_INO, &in), 0);
	CHECK_EQ(in.mode, S_IFDIR | 0700);
	CHECK_EQ(in.nlink, 5);
	store_txn_abort(t);
	store_close(st);
	return 0;
}

static int
test_inode_del(void)
{
	struct store *st;
	struct store_txn *t;
	struct store_inode in = mk_inode(10, 1), other = mk_inode(11, 1), got;
	char buf[64];

	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_ino_put(t, &in), 0);
	CHECK_EQ(store_ino_put(t, &other), 0);
	CHECK_EQ(store_symlink_put(t, 10, "target/path"), 0);
	CHECK_EQ(store_symlink_put(t, 11, "keep"), 0);
	CHECK_EQ(store_xattr_set(t, 10, "user.a", "1", 1, 0), 0);
	CHECK_EQ(store_xattr_set(t, 10, "user.b", "22", 2, 0), 0);
	CHECK_EQ(store_xattr_set(t, 10, "user.c", "333", 3, 0), 0);
	CHECK_EQ(store_xattr_set(t, 11, "user.a", "x", 1, 0), 0);
	CHECK_EQ(store_xattr_set(t, 9, "user.z", "y", 1, 0), 0);
	COMMIT(t);

	BEGIN(st, 0, t);
	CHECK_EQ(store_ino_get(t, 10, &got), 0);
	CHECK(ino_same(&got, &in));
	CHECK_EQ(store_ino_del(t, 10), 0);
	CHECK_EQ(store_ino_get(t, 10, &got), -ENOENT);
	CHECK_EQ(store_symlink_get(t, 10, buf, sizeof buf), -ENOENT);
	CHECK_EQ(store_xattr_list(t, 10, NULL, 0), 0);
	CHECK_EQ(store_xattr_get(t, 10, "user.b", buf, sizeof buf), -ENODATA);
	/* neighbours untouched */
	CHECK_EQ(store_ino_get(t, 11, &got), 0);
	CHECK_EQ(store_symlink_get(t, 11, buf, sizeof buf), 4);
	CHECK(strcmp(buf, "keep") == 0);
	CHECK_EQ(store_xattr_get(t, 11, "user.a", buf, sizeof buf), 1);
	CHECK_EQ(store_xattr_get(t, 9, "user.z", buf, sizeof buf), 1);
	CHECK_EQ(store_ino_del(t, 10), -ENOENT);
	COMMIT(t);
	store_close(st);
	return 0;
}

static int
test_symlink(void)
{
	struct store *st;
	struct store_txn *t;
	char buf[8];

	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_symlink_put(t, 5, "abcdefghij"), 0);
	memset(buf, 'Z', sizeof buf);
	CHECK_EQ(store_symlink_get(t, 5, buf, sizeof buf), 10);
	CHECK(strcmp(buf, "abcdefg") == 0);	/* size-1 bytes + NUL */
	CHECK_EQ(store_symlink_get(t, 5, buf, 0), 10);
	CHECK_EQ(store_symlink_get(t, 6, buf, sizeof buf), -ENOENT);
	COMMIT(t);
	store_close(st);
	return 0;
}

static int
collect_ino(void *arg, uint64_t ino)
{
	uint64_t *v = arg;
	v[++v[0]] = ino;
	return 0;
}

static int
test_alloc_orphans(void)
{
	struct store *st;
	struct store_txn *t;
	uint64_t a, b, c, seen[8] = { 0 };

	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_ino_alloc(t, &a), 0);
	CHECK_EQ(store_ino_alloc(t, &b), 0);
	CHECK_EQ(a, 2);
	CHECK_EQ(b, 3);
	COMMIT(t);
	/* an aborted alloc is not remembered */
	BEGIN(st, 0, t);
	CHECK_EQ(store_ino_alloc(t, &c), 0);
	CHECK_EQ(c, 4);
	store_txn_abort(t);
	store_close(st);

	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_ino_alloc(t, &c), 0);
	CHECK_EQ(c, 4);
	struct store_inode i1 = mk_inode(300, 0), i2 = mk_inode(20, 1),
	    i3 = mk_inode(7, 0);
	CHECK_EQ(store_ino_put(t, &i1), 0);
	CHECK_EQ(store_ino_put(t, &i2), 0);
	CHECK_EQ(store_ino_put(t, &i3), 0);
	COMMIT(t);
	BEGIN(st, 1, t);
	CHECK_EQ(store_ino_orphans(t, collect_ino, seen), 0);
	CHECK_EQ(seen[0], 2);
	CHECK_EQ(seen[1], 7);
	CHECK_EQ(seen[2], 300);
	store_txn_abort(t);
	store_close(st);
	return 0;
}

static int
del_orphan(void *arg, uint64_t ino)
{
	struct store_txn *t = arg;
	return store_ino_del(t, ino);
}

static int
test_orphans_delete_in_cb(void)
{
	struct store *st;
	struct store_txn *t;
	struct store_inode in;

	OPEN(st);
	BEGIN(st, 0, t);
	for (uint64_t i = 2; i < 500; i++) {
		in = mk_inode(i, i % 3 == 0 ? 0 : 1);
		CHECK_EQ(store_ino_put(t, &in), 0);
	}
	CHECK_EQ(store_ino_orphans(t, del_orphan, t), 0);
	for (uint64_t i = 2; i < 500; i++)
		CHECK_EQ(store_ino_get(t, i, &in), i % 3 == 0 ? -ENOENT : 0);
	COMMIT(t);
	store_close(st);
	return 0;
}

/* ---- dirents ------------------------------------------------------------ */

struct names {
	int n, stop_at;
	char name[16][300];
	uint64_t ino[16];
};

static int
collect_name(void *arg, const char *name, uint64_t ino)
{
	struct names *v = arg;

	if (v->n >= 16)
		return -1;
	strcpy(v->name[v->n], name);
	v->ino[v->n] = ino;
	v->n++;
	return v->n == v->stop_at ? 99 : 0;
}

static int
test_dirents(void)
{
	struct store *st;
	struct store_txn *t;
	struct names v;
	uint64_t ino;
	char n255[256], n256[257];

	memset(n255, 'x', 255);
	n255[255] = '\0';
	memset(n256, 'y', 256);
	n256[256] = '\0';

	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_dirent_empty(t, 1), 1);
	CHECK_EQ(store_dirent_put(t, 1, "b", 20), 0);
	CHECK_EQ(store_dirent_put(t, 1, "a", 21), 0);
	CHECK_EQ(store_dirent_put(t, 1, "ab", 22), 0);
	CHECK_EQ(store_dirent_put(t, 1, "B", 23), 0);
	CHECK_EQ(store_dirent_put(t, 1, n255, 24), 0);
	CHECK_EQ(store_dirent_put(t, 1, n256, 25), -ENAMETOOLONG);
	CHECK_EQ(store_dirent_put(t, 2, "a", 30), 0);	/* other dir */
	CHECK_EQ(store_dirent_put(t, 0, "zz", 31), 0);	/* before */
	CHECK_EQ(store_dirent_put(t, 1, "b", 26), 0);	/* replaces */
	COMMIT(t);

	BEGIN(st, 1, t);
	CHECK_EQ(store_dirent_empty(t, 1), 0);
	CHECK_EQ(store_dirent_empty(t, 3), 1);
	CHECK_EQ(store_dirent_get(t, 1, "b", &ino), 0);
	CHECK_EQ(ino, 26);
	CHECK_EQ(store_dirent_get(t, 1, n255, &ino), 0);
	CHECK_EQ(ino, 24);
	CHECK_EQ(store_dirent_get(t, 1, n256, &ino), -ENAMETOOLONG);
	CHECK_EQ(store_dirent_get(t, 1, "c", &ino), -ENOENT);
	CHECK_EQ(store_dirent_get(t, 3, "a", &ino), -ENOENT);

	memset(&v, 0, sizeof v);
	CHECK_EQ(store_dirent_iter(t, 1, NULL, collect_name, &v), 0);
	CHECK_EQ(v.n, 5);
	CHECK(strcmp(v.name[0], "B") == 0);
	CHECK(strcmp(v.name[1], "a") == 0);
	CHECK(strcmp(v.name[2], "ab") == 0);
	CHECK(strcmp(v.name[3], "b") == 0);
	CHECK(strcmp(v.name[4], n255) == 0);
	CHECK_EQ(v.ino[0], 23);
	CHECK_EQ(v.ino[3], 26);

	/* stop early, then resume strictly after the last name seen */
	memset(&v, 0, sizeof v);
	v.stop_at = 2;
	CHECK_EQ(store_dirent_iter(t, 1, NULL, collect_name, &v), 99);
	CHECK_EQ(v.n, 2);
	v.stop_at = 0;
	CHECK_EQ(store_dirent_iter(t, 1, v.name[1], collect_name, &v), 0);
	CHECK_EQ(v.n, 5);
	CHECK(strcmp(v.name[2], "ab") == 0);
	CHECK(strcmp(v.name[4], n255) == 0);

	/* `after` need not exist */
	memset(&v, 0, sizeof v);
	CHECK_EQ(store_dirent_iter(t, 1, "aa", collect_name, &v), 0);
	CHECK_EQ(v.n, 3);
	CHECK(strcmp(v.name[0], "ab") == 0);
	memset(&v, 0, sizeof v);
	CHECK_EQ(store_dirent_iter(t, 1, n255, collect_name, &v), 0);
	CHECK_EQ(v.n, 0);
	memset(&v, 0, sizeof v);
	CHECK_EQ(store_dirent_iter(t, 2, NULL, collect_name, &v), 0);
	CHECK_EQ(v.n, 1);
	CHECK_EQ(v.ino[0], 30);
	store_txn_abort(t);

	BEGIN(st, 0, t);
	CHECK_EQ(store_dirent_del(t, 2, "a"), 0);
	CHECK_EQ(store_dirent_del(t, 2, "a"), -ENOENT);
	CHECK_EQ(store_dirent_empty(t, 2), 1);
	CHECK_EQ(store_dirent_empty(t, 0), 0);
	COMMIT(t);
	store_close(st);
	return 0;
}

/* ---- xattrs ------------------------------------------------------------- */

static int
test_xattrs(void)
{
	struct store *st;
	struct store_txn *t;
	char buf[128], big[65537], name[300];

	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_xattr_get(t, 5, "user.a", buf, sizeof buf), -ENODATA);
	CHECK_EQ(store_xattr_set(t, 5, "user.a", "x", 1, XATTR_REPLACE), -ENODATA);
	CHECK_EQ(store_xattr_set(t, 5, "user.a", "hello", 5, XATTR_CREATE), 0);
	CHECK_EQ(store_xattr_set(t, 5, "user.a", "again", 5, XATTR_CREATE), -EEXIST);
	CHECK_EQ(store_xattr_get(t, 5, "user.a", NULL, 0), 5);
	CHECK_EQ(store_xattr_get(t, 5, "user.a", buf, 4), -ERANGE);
	CHECK_EQ(store_xattr_get(t, 5, "user.a", buf, 5), 5);
	CHECK_MEM(buf, "hello", 5);
	CHECK_EQ(store_xattr_set(t, 5, "user.a", "bye", 3, XATTR_REPLACE), 0);
	CHECK_EQ(store_xattr_get(t, 5, "user.a", buf, sizeof buf), 3);
	CHECK_MEM(buf, "bye", 3);
	CHECK_EQ(store_xattr_set(t, 5, "user.empty", "", 0, 0), 0);
	CHECK_EQ(store_xattr_get(t, 5, "user.empty", buf, sizeof buf), 0);
	CHECK_EQ(store_xattr_set(t, 5, "security.b", "1", 1, 0), 0);
	CHECK_EQ(store_xattr_set(t, 6, "user.other", "1", 1, 0), 0);

	/* list: NUL-separated, name order, size 0 = length, short = ERANGE */
	static const char want[] = "security.b\0user.a\0user.empty";
	CHECK_EQ(store_xattr_list(t, 5, NULL, 0), sizeof want);
	CHECK_EQ(store_xattr_list(t, 5, buf, sizeof want - 1), -ERANGE);
	CHECK_EQ(store_xattr_list(t, 5, buf, sizeof buf), sizeof want);
	CHECK_MEM(buf, want, sizeof want);
	CHECK_EQ(store_xattr_list(t, 7, buf, sizeof buf), 0);

	/* limits */
	memset(big, 'v', sizeof big);
	CHECK_EQ(store_xattr_set(t, 5, "user.big", big, 65536, 0), 0);
	CHECK_EQ(store_xattr_get(t, 5, "user.big", NULL, 0), 65536);
	CHECK_EQ(store_xattr_set(t, 5, "user.big2", big, 65537, 0), -E2BIG);
	memset(name, 'n', sizeof name);
	name[255] = '\0';
	CHECK_EQ(store_xattr_set(t, 5, name, "1", 1, 0), 0);
	CHECK_EQ(store_xattr_get(t, 5, name, buf, sizeof buf), 1);
	name[255] = 'n';
	name[256] = '\0';
	CHECK_EQ(store_xattr_set(t, 5, name, "1", 1, 0), -ERANGE);
	CHECK_EQ(store_xattr_get(t, 5, name, buf, sizeof buf), -ERANGE);

	CHECK_EQ(store_xattr_del(t, 5, "user.a"), 0);
	CHECK_EQ(store_xattr_del(t, 5, "user.a"), -ENODATA);
	CHECK_EQ(store_xattr_get(t, 5, "user.a", buf, sizeof buf), -ENODATA);
	CHECK_EQ(store_xattr_get(t, 6, "user.other", buf, sizeof buf), 1);
	COMMIT(t);
	store_close(st);
	return 0;
}

/* ---- extents ------------------------------------------------------------ */

struct extents {
	int n, stop_at;
	uint64_t bno[16];
	unsigned char id[16][CR_ID_BYTES];
};

static int
collect_extent(void *arg, uint64_t bno, const unsigned char *id)
{
	struct extents *e = arg;

	if (e->n >= 16)
		return -1;
	e->bno[e->n] = bno;
	memcpy(e->id[e->n], id, CR_ID_BYTES);
	e->n++;
	return e->n == e->stop_at ? 7 : 0;
}

/* Inline blocks: put/get/del, replace, lengths, separate from extents,
 * survive a reopen, gone after an abort. */
static int
test_inline(void)
{
	struct store *st;
	struct store_txn *t;
	unsigned char big[STORE_INLINE_MAX + 1], got[STORE_INLINE_MAX];
	unsigned char id[CR_ID_BYTES], small[4];
	size_t len = 0;

	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i * 13 + 5);
	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_inline_get(t, 5, 0, got, sizeof got, &len), -ENOENT);
	CHECK_EQ(store_inline_put(t, 5, 0, "abc", 3), 0);
	CHECK_EQ(store_inline_put(t, 6, 0, big, STORE_INLINE_MAX), 0);
	CHECK_EQ(store_inline_put(t, 7, 0, big, STORE_INLINE_MAX + 1), -EINVAL);
	CHECK_EQ(store_inline_put(t, 7, 0, big, 0), -EINVAL);
	CHECK_EQ(store_inline_put(t, 5, 1, "x", 1), 0);
	COMMIT(t);
	store_close(st);

	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_inline_get(t, 5, 0, got, sizeof got, &len), 0);
	CHECK_EQ(len, 3);
	CHECK_MEM(got, "abc", 3);
	CHECK_EQ(store_inline_get(t, 6, 0, got, sizeof got, &len), 0);
	CHECK_EQ(len, STORE_INLINE_MAX);
	CHECK_MEM(got, big, STORE_INLINE_MAX);
	/* A short buffer gets the head, *len the whole length. */
	CHECK_EQ(store_inline_get(t, 6, 0, small, sizeof small, &len), 0);
	CHECK_EQ(len, STORE_INLINE_MAX);
	CHECK_MEM(small, big, sizeof small);
	CHECK_EQ(store_inline_get(t, 7, 0, got, sizeof got, &len), -ENOENT);
	/* Not an extent. */
	CHECK_EQ(store_extent_get(t, 5, 0, id), -ENOENT);
	/* Replace, then delete. */
	CHECK_EQ(store_inline_put(t, 5, 0, "zz", 2), 0);
	CHECK_EQ(store_inline_get(t, 5, 0, got, sizeof got, &len), 0);
	CHECK_EQ(len, 2);
	CHECK_MEM(got, "zz", 2);
	CHECK_EQ(store_inline_del(t, 5, 0), 0);
	CHECK_EQ(store_inline_del(t, 5, 0), -ENOENT);
	CHECK_EQ(store_inline_get(t, 5, 0, got, sizeof got, &len), -ENOENT);
	CHECK_EQ(store_inline_get(t, 5, 1, got, sizeof got, &len), 0);
	CHECK_EQ(len, 1);
	store_txn_abort(t);		/* the replace and delete never were */
	BEGIN(st, 1, t);
	CHECK_EQ(store_inline_get(t, 5, 0, got, sizeof got, &len), 0);
	CHECK_EQ(len, 3);
	store_txn_abort(t);
	store_close(st);
	return 0;
}

static int
test_extents(void)
{
	struct store *st;
	struct store_txn *t;
	unsigned char id[CR_ID_BYTES], got[CR_ID_BYTES];
	struct extents e;
	static const uint64_t bnos[] = { 0, 1, 255, 256, 1ULL << 40, UINT64_MAX };

	OPEN(st);
	BEGIN(st, 0, t);
	for (size_t i = 0; i < sizeof bnos / sizeof bnos[0]; i++) {
		test_fill_id(id, (unsigned)i);
		CHECK_EQ(store_extent_put(t, 9, bnos[i], id), 0);
	}
	test_fill_id(id, 100);
	CHECK_EQ(store_extent_put(t, 8, 3, id), 0);
	CHECK_EQ(store_extent_put(t, 10, 0, id), 0);
	COMMIT(t);

	BEGIN(st, 0, t);
	test_fill_id(id, 2);
	CHECK_EQ(store_extent_get(t, 9, 255, got), 0);
	CHECK_MEM(got, id, CR_ID_BYTES);
	CHECK_EQ(store_extent_get(t, 9, 2, got), -ENOENT);
	memset(&e, 0, sizeof e);
	CHECK_EQ(store_extent_iter(t, 9, 0, collect_extent, &e), 0);
	CHECK_EQ(e.n, 6);
	for (int i = 0; i < 6; i++) {
		CHECK(e.bno[i] == bnos[i]);
		test_fill_id(id, (unsigned)i);
		CHECK_MEM(e.id[i], id, CR_ID_BYTES);
	}
	memset(&e, 0, sizeof e);
	CHECK_EQ(store_extent_iter(t, 9, 200, collect_extent, &e), 0);
	CHECK_EQ(e.n, 4);
	CHECK_EQ(e.bno[0], 255);
	memset(&e, 0, sizeof e);
	CHECK_EQ(store_extent_iter(t, 9, 256, collect_extent, &e), 0);
	CHECK_EQ(e.n, 3);
	CHECK_EQ(e.bno[0], 256);
	memset(&e, 0, sizeof e);
	e.stop_at = 2;
	CHECK_EQ(store_extent_iter(t, 9, 0, collect_extent, &e), 7);
	CHECK_EQ(e.n, 2);
	CHECK_EQ(store_extent_del(t, 9, 255), 0);
	CHECK_EQ(store_extent_del(t, 9, 255), -ENOENT);
	memset(&e, 0, sizeof e);
	CHECK_EQ(store_extent_iter(t, 9, 1, collect_extent, &e), 0);
	CHECK_EQ(e.n, 4);
	CHECK_EQ(e.bno[1], 256);
	memset(&e, 0, sizeof e);
	CHECK_EQ(store_extent_iter(t, 11, 0, collect_extent, &e), 0);
	CHECK_EQ(e.n, 0);
	COMMIT(t);
	store_close(st);
	return 0;
}

/* ---- blocks ------------------------------------------------------------- */

static void
mk_block(struct store_block *b, unsigned seed, int k, int m)
{
	memset(b, 0, sizeof *b);
	test_fill_id(b->id, seed);
	for (int i = 0; i < CR_KEY_BYTES; i++)
		b->key[i] = (unsigned char)(seed + i * 3);
	b->plain_len = 4u << 20;
	b->frag_len = 1048640 + seed;
	b->k = (uint8_t)k;
	b->m = (uint8_t)m;
	b->refcount = 3 + seed;
	for (int f = 0; f < k + m; f++)
		for (int i = 0; i < CR_HASH_BYTES; i++) {
			b->frag_hash[f][i] = (unsigned char)(f * 17 + i + seed);
			b->peer[f][i] = (unsigned char)(f * 29 + i * 5 + seed + 1);
		}
}

struct blocks {
	int n;
	unsigned char first[CR_ID_BYTES];
};

static int
count_block(void *arg, const struct store_block *b)
{
	struct blocks *v = arg;
	struct store_block want;

	mk_block(&want, b->refcount - 3, b->k, b->m);
	if (memcmp(&want, b, sizeof want) != 0)
		return -1;
	if (v->n++ == 0)
		memcpy(v->first, b->id, CR_ID_BYTES);
	return 0;
}

static int
test_blocks(void)
{
	struct store *st;
	struct store_txn *t;
	struct store_block b, got;
	struct blocks v = { 0 };
	uint64_t n;

	OPEN(st);
	BEGIN(st, 0, t);
	mk_block(&b, 1, 4, 2);
	CHECK_EQ(store_block_put(t, &b), 0);
	mk_block(&b, 2, 16, 16);	/* full arrays */
	CHECK_EQ(store_block_put(t, &b), 0);
	mk_block(&b, 3, 1, 1);
	b.peer[20][0] = 9;		/* beyond k+m still kept */
	b.seal = 5;			/* the seal byte round trips too */
	CHECK_EQ(store_block_put(t, &b), 0);
	COMMIT(t);
	store_close(st);

	OPEN(st);
	BEGIN(st, 1, t);
	CHECK_EQ(store_block_count(t, &n), 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(store_block_get(t, b.id, &got), 0);
	CHECK_MEM(&got, &b, sizeof b);
	mk_block(&b, 2, 16, 16);
	CHECK_EQ(store_block_get(t, b.id, &got), 0);
	CHECK_MEM(&got, &b, sizeof b);
	mk_block(&b, 1, 4, 2);
	CHECK_EQ(store_block_get(t, b.id, &got), 0);
	CHECK_MEM(&got, &b, sizeof b);
	mk_block(&b, 4, 4, 2);
	CHECK_EQ(store_block_get(t, b.id, &got), -ENOENT);
	store_txn_abort(t);

	BEGIN(st, 0, t);
	mk_block(&b, 3, 1, 1);
	CHECK_EQ(store_block_del(t, b.id), 0);
	CHECK_EQ(store_block_del(t, b.id), -ENOENT);
	CHECK_EQ(store_block_iter(t, count_block, &v), 0);
	CHECK_EQ(v.n, 2);
	CHECK_EQ(store_block_count(t, &n), 0);
	CHECK_EQ(n, 2);
	/* refcount update = put again */
	mk_block(&b, 1, 4, 2);
	b.refcount = 1;
	CHECK_EQ(store_block_put(t, &b), 0);
	CHECK_EQ(store_block_get(t, b.id, &got), 0);
	CHECK_EQ(got.refcount, 1);
	CHECK_EQ(store_block_count(t, &n), 0);
	CHECK_EQ(n, 2);
	COMMIT(t);
	store_close(st);
	return 0;
}

/* The fields added for keeping data alive survive the round trip, also on
 * an entry that has nothing but audit data (must not be trimmed). */
static int
test_blocks_v2_fields(void)
{
	struct store *st;
	struct store_txn *t;
	struct store_block b, got;

	OPEN(st);
	BEGIN(st, 0, t);
	mk_block(&b, 5, 4, 2);
	b.lost[1] = 1;
	b.lost[5] = 1;
	for (int i = 0; i < 6; i++) {
		b.audit_next[i] = 0x01020300u + (uint32_t)i;
		b.audit_end[i] = 0x7fff0000u + (uint32_t)i;
		for (int j = 0; j < STORE_AUDITS; j++)
			for (int x = 0; x < STORE_AUDIT_BYTES; x++)
				b.audit[i][j][x] = (unsigned char)(i * 31 + j * 7 + x);
	}
	b.audit[9][3][15] = 0xaa;	/* an entry with only an answer */
	CHECK_EQ(store_block_put(t, &b), 0);
	COMMIT(t);
	store_close(st);

	OPEN(st);
	BEGIN(st, 1, t);
	CHECK_EQ(store_block_get(t, b.id, &got), 0);
	CHECK_MEM(&got, &b, sizeof b);
	CHECK_EQ(got.lost[1], 1);
	CHECK_EQ(got.lost[2], 0);
	CHECK_EQ(got.audit[9][3][15], 0xaa);
	store_txn_abort(t);
	/* clearing the marks clears them (no stale bytes from before) */
	BEGIN(st, 0, t);
	memset(b.lost, 0, sizeof b.lost);
	memset(b.audit[9], 0, sizeof b.audit[9]);
	CHECK_EQ(store_block_put(t, &b), 0);
	CHECK_EQ(store_block_get(t, b.id, &got), 0);
	CHECK_MEM(&got, &b, sizeof b);
	COMMIT(t);
	store_close(st);
	return 0;
}

/* A record written by the first format (version byte 1: hash | peer per
 * fragment) still reads, the new fields zero; writing it back upgrades. */
static int
test_blocks_v1_compat(void)
{
	struct store *st;
	struct store_txn *t;
	struct store_block b, want;
	unsigned char rec[82 + 6 * 64];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;

	OPEN(st);		/* creates the env and databases */
	store_close(st);
	mk_block(&want, 7, 4, 2);
	memset(rec, 0, sizeof rec);
	rec[0] = 1;
	memcpy(rec + 1, want.id, 32);
	memcpy(rec + 33, want.key, 32);
	rec[65] = 0x00; rec[66] = 0x40; rec[67] = 0; rec[68] = 0;	/* 4 MiB */
	rec[69] = (unsigned char)(want.frag_len >> 24);
	rec[70] = (unsigned char)(want.frag_len >> 16);
	rec[71] = (unsigned char)(want.frag_len >> 8);
	rec[72] = (unsigned char)want.frag_len;
	rec[73] = 4;
	rec[74] = 2;
	rec[80] = (unsigned char)want.refcount;
	rec[81] = 6;
	for (int i = 0; i < 6; i++) {
		memcpy(rec + 82 + i * 64, want.frag_hash[i], 32);
		memcpy(rec + 82 + i * 64 + 32, want.peer[i], 32);
	}
	CHECK_EQ(mdb_env_create(&env), 0);
	CHECK_EQ(mdb_env_set_maxdbs(env, 16), 0);
	CHECK_EQ(mdb_env_open(env, "db/meta", 0, 0600), 0);
	CHECK_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CHECK_EQ(mdb_dbi_open(txn, "blocks", 0, &dbi), 0);
	k = (MDB_val){ 32, want.id };
	v = (MDB_val){ sizeof rec, rec };
	CHECK_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
	CHECK_EQ(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_block_get(t, want.id, &b), 0);
	CHECK_MEM(&b, &want, sizeof b);
	b.lost[3] = 1;
	b.audit_end[0] = 4;
	CHECK_EQ(store_block_put(t, &b), 0);
	memcpy(&want, &b, sizeof b);
	COMMIT(t);
	BEGIN(st, 1, t);
	CHECK_EQ(store_block_get(t, want.id, &b), 0);
	CHECK_MEM(&b, &want, sizeof b);
	store_txn_abort(t);
	store_close(st);
	return 0;
}

/* ---- rebuild and deletion queues ----------------------------------------- */

struct rq_seen {
	int n, stop;
	unsigned char id[4][CR_ID_BYTES];
	uint32_t surv[4];
};

static int
rq_collect(void *arg, const unsigned char *id, uint32_t surviving)
{
	struct rq_seen *s = arg;

	if (s->n >= 4)
		return -1;
	memcpy(s->id[s->n], id, CR_ID_BYTES);
	s->surv[s->n++] = surviving;
	return s->n == s->stop ? 9 : 0;
}

static int
collect_after(void *arg, const struct store_block *b)
{
	struct rq_seen *s = arg;

	if (s->n >= 4)
		return -1;
	memcpy(s->id[s->n++], b->id, CR_ID_BYTES);
	return 0;
}

/* Resuming a pass over the blocks after a given id. */
static int
test_block_iter_after(void)
{
	struct store *st;
	struct store_txn *t;
	struct store_block b;
	struct rq_seen s = { 0 };
	unsigned char ids[3][CR_ID_BYTES];

	OPEN(st);
	BEGIN(st, 0, t);
	for (int i = 0; i < 3; i++) {
		mk_block(&b, 0, 4, 2);
		memset(b.id, 0x10 * (i + 1), CR_ID_BYTES);
		memcpy(ids[i], b.id, CR_ID_BYTES);
		CHECK_EQ(store_block_put(t, &b), 0);
	}
	CHECK_EQ(store_block_iter_after(t, ids[0], collect_after, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK_MEM(s.id[0], ids[1], CR_ID_BYTES);
	CHECK_MEM(s.id[1], ids[2], CR_ID_BYTES);
	s.n = 0;
	CHECK_EQ(store_block_iter_after(t, ids[2], collect_after, &s), 0);
	CHECK_EQ(s.n, 0);
	ids[0][31] = 0x11;	/* not a key: starts at the next one */
	CHECK_EQ(store_block_iter_after(t, ids[0], collect_after, &s), 0);
	CHECK_EQ(s.n, 2);
	s.n = 0;
	CHECK_EQ(store_block_iter_after(t, NULL, collect_after, &s), 0);
	CHECK_EQ(s.n, 3);
	COMMIT(t);
	store_close(st);
	return 0;
}

static int
test_rebuild_queue(void)
{
	struct store *st;
	struct store_txn *t;
	unsigned char id[CR_ID_BYTES], a[CR_ID_BYTES], b[CR_ID_BYTES],
	    c[CR_ID_BYTES];
	uint32_t surv;
	uint64_t n;

	test_fill_id(a, 1);
	test_fill_id(b, 2);
	test_fill_id(c, 3);
	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_rebuild_first(t, id, &surv), -ENOENT);
	CHECK_EQ(store_rebuild_count(t, &n), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(store_rebuild_put(t, a, 5), 0);
	CHECK_EQ(store_rebuild_put(t, b, 4), 0);
	CHECK_EQ(store_rebuild_put(t, c, 300), 0);	/* numeric, not bytes */
	CHECK_EQ(store_rebuild_first(t, id, &surv), 0);
	CHECK_MEM(id, b, CR_ID_BYTES);
	CHECK_EQ(surv, 4);
	/* put replaces: a becomes the most urgent, b keeps one entry */
	CHECK_EQ(store_rebuild_put(t, a, 3), 0);
	CHECK_EQ(store_rebuild_put(t, b, 6), 0);
	CHECK_EQ(store_rebuild_count(t, &n), 0);
	CHECK_EQ(n, 3);
	{
		struct rq_seen rs = { 0 };

		CHECK_EQ(store_rebuild_iter(t, rq_collect, &rs), 0);
		CHECK_EQ(rs.n, 3);
		CHECK_MEM(rs.id[0], a, CR_ID_BYTES);
		CHECK_EQ(rs.surv[0], 3);
		CHECK_MEM(rs.id[1], b, CR_ID_BYTES);
		CHECK_EQ(rs.surv[1], 6);
		CHECK_MEM(rs.id[2], c, CR_ID_BYTES);
		rs = (struct rq_seen){ .stop = 2 };
		CHECK_EQ(store_rebuild_iter(t, rq_collect, &rs), 9);
		CHECK_EQ(rs.n, 2);
	}
	COMMIT(t);
	store_close(st);

	OPEN(st);			/* durable */
	BEGIN(st, 0, t);
	CHECK_EQ(store_rebuild_first(t, id, &surv), 0);
	CHECK_MEM(id, a, CR_ID_BYTES);
	CHECK_EQ(surv, 3);
	CHECK_EQ(store_rebuild_del(t, a), 0);
	CHECK_EQ(store_rebuild_del(t, a), -ENOENT);
	CHECK_EQ(store_rebuild_first(t, id, &surv), 0);
	CHECK_MEM(id, b, CR_ID_BYTES);
	CHECK_EQ(surv, 6);
	CHECK_EQ(store_rebuild_del(t, b), 0);
	CHECK_EQ(store_rebuild_first(t, id, &surv), 0);
	CHECK_MEM(id, c, CR_ID_BYTES);
	CHECK_EQ(surv, 300);
	CHECK_EQ(store_rebuild_del(t, c), 0);
	CHECK_EQ(store_rebuild_first(t, id, &surv), -ENOENT);
	CHECK_EQ(store_rebuild_count(t, &n), 0);
	CHECK_EQ(n, 0);
	COMMIT(t);
	store_close(st);
	return 0;
}

struct dq_seen {
	int n, del;
	struct store_txn *t;
	unsigned char pk[4][CR_PK_BYTES];
	unsigned char fid[4][STORE_FRAGID_BYTES];
	uint32_t bytes[4];
};

static int
dq_collect(void *arg, const unsigned char *pk, const unsigned char *fragid,
    uint32_t bytes)
{
	struct dq_seen *s = arg;

	if (s->n >= 4)
		return -1;
	memcpy(s->pk[s->n], pk, CR_PK_BYTES);
	memcpy(s->fid[s->n], fragid, STORE_FRAGID_BYTES);
	s->bytes[s->n++] = bytes;
	if (s->del)		/* deleting from the callback is allowed */
		return store_delq_del(s->t, pk, fragid);
	return 0;
}

static int
test_delq(void)
{
	struct store *st;
	struct store_txn *t;
	unsigned char pk1[CR_PK_BYTES], pk2[CR_PK_BYTES];
	unsigned char f1[STORE_FRAGID_BYTES], f2[STORE_FRAGID_BYTES];
	struct dq_seen s = { 0 };
	uint64_t n, bytes;

	memset(pk1, 0x11, sizeof pk1);
	memset(pk2, 0x22, sizeof pk2);
	test_fill_id(f1, 1);
	f1[CR_ID_BYTES] = 0;
	test_fill_id(f2, 1);
	f2[CR_ID_BYTES] = 5;
	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_delq_stats(t, &n, &bytes), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(bytes, 0);
	CHECK_EQ(store_delq_put(t, pk2, f1, 1000), 0);
	CHECK_EQ(store_delq_put(t, pk1, f2, 3000000000u), 0);
	CHECK_EQ(store_delq_put(t, pk1, f1, 20), 0);
	CHECK_EQ(store_delq_put(t, pk1, f1, 30), 0);	/* replaces */
	COMMIT(t);
	store_close(st);

	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_delq_stats(t, &n, &bytes), 0);
	CHECK_EQ(n, 3);
	CHECK_EQ(bytes, 3000001030ull);
	CHECK_EQ(store_delq_iter(t, dq_collect, &s), 0);
	CHECK_EQ(s.n, 3);		/* key order: pk1 f1, pk1 f2, pk2 f1 */
	CHECK_MEM(s.pk[0], pk1, CR_PK_BYTES);
	CHECK_MEM(s.fid[0], f1, STORE_FRAGID_BYTES);
	CHECK_EQ(s.bytes[0], 30);
	CHECK_MEM(s.fid[1], f2, STORE_FRAGID_BYTES);
	CHECK_EQ(s.bytes[1], 3000000000u);
	CHECK_MEM(s.pk[2], pk2, CR_PK_BYTES);
	CHECK_EQ(s.bytes[2], 1000);
	CHECK_EQ(store_delq_del(t, pk1, f2), 0);
	CHECK_EQ(store_delq_del(t, pk1, f2), -ENOENT);
	CHECK_EQ(store_delq_stats(t, &n, &bytes), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(bytes, 1030);
	s = (struct dq_seen){ .del = 1, .t = t };
	CHECK_EQ(store_delq_iter(t, dq_collect, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK_EQ(store_delq_stats(t, &n, &bytes), 0);
	CHECK_EQ(n, 0);
	COMMIT(t);
	store_close(st);
	return 0;
}

/* ---- journal ------------------------------------------------------------ */

static int
collect_jrnl(void *arg, uint64_t ino, uint64_t bno)
{
	uint64_t *v = arg;

	v[1 + 2 * v[0]] = ino;
	v[2 + 2 * v[0]] = bno;
	v[0]++;
	return 0;
}

static int
test_jrnl_records(void)
{
	struct store *st;
	struct store_txn *t;
	uint64_t v[32], n;

	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_jrnl_put(t, 5, 300), 0);
	CHECK_EQ(store_jrnl_put(t, 5, 2), 0);
	CHECK_EQ(store_jrnl_put(t, 3, 1), 0);
	CHECK_EQ(store_jrnl_put(t, 256, 0), 0);
	CHECK_EQ(store_jrnl_put(t, 5, 2), 0);	/* idempotent */
	COMMIT(t);
	store_close(st);
	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_jrnl_count(t, &n), 0);
	CHECK_EQ(n, 4);
	CHECK_EQ(store_jrnl_has(t, 5, 2), 1);
	CHECK_EQ(store_jrnl_has(t, 5, 3), 0);
	v[0] = 0;
	CHECK_EQ(store_jrnl_iter(t, 0, collect_jrnl, v), 0);
	CHECK_EQ(v[0], 4);
	CHECK_EQ(v[1], 3);
	CHECK_EQ(v[3], 5);
	CHECK_EQ(v[4], 2);
	CHECK_EQ(v[6], 300);
	CHECK_EQ(v[7], 256);
	v[0] = 0;
	CHECK_EQ(store_jrnl_iter(t, 5, collect_jrnl, v), 0);
	CHECK_EQ(v[0], 2);
	CHECK_EQ(v[2], 2);
	CHECK_EQ(v[4], 300);
	CHECK_EQ(store_jrnl_del(t, 5, 2), 0);
	CHECK_EQ(store_jrnl_del(t, 5, 2), -ENOENT);
	CHECK_EQ(store_jrnl_has(t, 5, 2), 0);
	CHECK_EQ(store_jrnl_count(t, &n), 0);
	CHECK_EQ(n, 3);
	COMMIT(t);
	store_close(st);
	return 0;
}

static int
test_jrnl_files(void)
{
	static char data[8192];
	struct store_jrnl_piece pc[2] = {
		{ 0, data, sizeof data }, { (4 << 20) - 3, "end", 3 },
	};
	struct store *st;
	char buf[16];
	struct stat sb;

	memset(data, 'd', sizeof data);
	OPEN(st);
	CHECK_EQ(store_jrnl_bytes(st), 0);
	CHECK_EQ(store_jrnl_read(st, 7, 3, 0, buf, sizeof buf), -ENOENT);
	CHECK_EQ(store_jrnl_write(st, 7, 3, pc, 2, 0), 0);	/* sparse */
	CHECK(stat("db/journal/7.3", &sb) == 0);
	CHECK_EQ(sb.st_mode & 0777, 0600);
	CHECK_EQ(sb.st_size, 4 << 20);
	uint64_t bytes = store_jrnl_bytes(st);
	CHECK(bytes >= sizeof data);
	CHECK(bytes < (4 << 20));	/* allocated, not apparent, size */
	CHECK_EQ(bytes, (uint64_t)sb.st_blocks * 512);

	CHECK_EQ(store_jrnl_read(st, 7, 3, (4 << 20) - 3, buf, 3), 0);
	CHECK_MEM(buf, "end", 3);
	/* An existing staging file is written as it is, not replaced. */
	CHECK_EQ(store_jrnl_write(st, 7, 3, &pc[1], 1, 0), 0);
	CHECK_EQ(store_jrnl_read(st, 7, 3, 0, buf, 2), 0);
	CHECK_MEM(buf, "dd", 2);

	pc[0].len = 4096;
	CHECK_EQ(store_jrnl_write(st, 18446744073709551615ULL, 12, pc, 1, 0),
	    0);
	CHECK(access("db/journal/18446744073709551615.12", F_OK) == 0);
	CHECK(store_jrnl_bytes(st) >= bytes + 4096);

	CHECK_EQ(store_jrnl_unlink(st, 7, 3), 0);
	CHECK_EQ(store_jrnl_unlink(st, 7, 3), -ENOENT);
	CHECK_EQ(store_jrnl_unlink(st, 18446744073709551615ULL, 12), 0);
	CHECK_EQ(store_jrnl_bytes(st), 0);

	/* directory removed behind our back: a write makes it again */
	CHECK(rmdir("db/journal") == 0);
	CHECK_EQ(store_jrnl_bytes(st), 0);
	CHECK_EQ(store_jrnl_write(st, 1, 1, pc, 1, 0), 0);
	CHECK(access("db/journal/1.1", F_OK) == 0);
	store_close(st);
	return 0;
}

/* Staging files of uploaded blocks are emptied and kept in db/spare; a
 * new staging file is one of them renamed (no inode to allocate). */
static int
test_jrnl_spares(void)
{
	struct store_jrnl_piece pc = { 100, "secret", 6 };
	struct store *st;
	struct stat sb, sb2;
	char buf[8];
	int fd, n0;

	/* The maker stopped, the pool is what it left: counts relative. */
	OPEN(st);
	store__spare_maker_stop(st);
	n0 = test_dir_count("db/spare");
	CHECK_EQ(store_jrnl_write(st, 9, 1, &pc, 1, 0), 0);
	CHECK(stat("db/journal/9.1", &sb) == 0);
	CHECK_EQ(test_dir_count("db/spare"), n0 > 0 ? n0 - 1 : 0);
	n0 = test_dir_count("db/spare");
	CHECK_EQ(store_jrnl_unlink(st, 9, 1), 0);
	CHECK(access("db/journal/9.1", F_OK) != 0);
	/* Retired until a sync makes the commit that dropped it durable. */
	CHECK_EQ(test_dir_count("db/spare"), n0);
	CHECK_EQ(test_dir_count("db/retired"), 1);
	CHECK_EQ(store_sync(st), 0);
	store__retired_recycle(st);
	CHECK_EQ(test_dir_count("db/retired"), 0);
	CHECK_EQ(test_dir_count("db/spare"), n0 + 1);
	CHECK_EQ(test_dir_count("db/journal"), 0);
	CHECK_EQ(store_jrnl_bytes(st), 0);

	/* The next new staging file is that file, empty, private. */
	CHECK_EQ(store_jrnl_write(st, 9, 2, NULL, 0, STORE_JRNL_NEW), 0);
	CHECK(stat("db/journal/9.2", &sb2) == 0);
	CHECK_EQ(sb2.st_ino, sb.st_ino);
	CHECK_EQ(sb2.st_size, 0);
	CHECK_EQ(sb2.st_mode & 0777, 0600);
	pc = (struct store_jrnl_piece){ 0, "x", 1 };
	CHECK_EQ(store_jrnl_write(st, 9, 2, &pc, 1, 0), 0);
	CHECK_EQ(test_dir_count("db/spare"), n0);

	/* An existing staging file is opened as it is; the spare stays. */
	CHECK_EQ(store_jrnl_write(st, 9, 4, NULL, 0, 0), 0);
	CHECK_EQ(store_jrnl_unlink(st, 9, 4), 0);
	CHECK_EQ(store_sync(st), 0);
	store__retired_recycle(st);
	n0 = n0 > 0 ? n0 : 1;	/* a spare taken and given back, or new */
	CHECK_EQ(test_dir_count("db/spare"), n0);
	CHECK_EQ(store_jrnl_write(st, 9, 2, NULL, 0, 0), 0);
	CHECK_EQ(store_jrnl_read(st, 9, 2, 0, buf, sizeof buf), 0);
	CHECK_EQ(buf[0], 'x');
	CHECK_EQ(buf[1], 0);
	CHECK_EQ(test_dir_count("db/spare"), n0);
	CHECK_EQ(store_jrnl_unlink(st, 9, 5), -ENOENT);
	CHECK_EQ(test_dir_count("db/spare"), n0);
	store_close(st);

	/* Reopened: empty spares are adopted, anything else there goes. */
	CHECK((fd = open("db/spare/4000000000", O_WRONLY | O_CREAT, 0600)) >= 0);
	CHECK_EQ(write(fd, "old", 3), 3);
	close(fd);
	CHECK((fd = open("db/spare/junk", O_WRONLY | O_CREAT, 0600)) >= 0);
	close(fd);
	OPEN(st);
	store__spare_maker_stop(st);
	CHECK(access("db/spare/4000000000", F_OK) != 0);
	CHECK(access("db/spare/junk", F_OK) != 0);
	n0 = test_dir_count("db/spare");
	CHECK(n0 >= 1);
	CHECK_EQ(store_jrnl_write(st, 9, 6, NULL, 0, 0), 0);
	CHECK(stat("db/journal/9.6", &sb2) == 0);
	CHECK_EQ(sb2.st_size, 0);
	CHECK_EQ(test_dir_count("db/spare"), n0 - 1);
	store_close(st);
	return 0;
}

/* The maker keeps spares ready: some at open, more once writes took
 * them, up to a bound. */
static int
test_jrnl_spare_maker(void)
{
	struct store *st;
	int n = 0;

	OPEN(st);
	for (int i = 0; i < 500 && (n = test_dir_count("db/spare")) < 1024; i++)
		usleep(20000);
	CHECK_EQ(n, 1024);
	for (int i = 0; i < 800; i++) {
		CHECK_EQ(store_jrnl_write(st, 7, (uint64_t)i, NULL, 0, 0), 0);
	}
	CHECK_EQ(test_dir_count("db/journal"), 800);
	/* 224 left without the maker; with it, the pool went back up each
	 * time it fell below 512, so it ends between 512 and 1024. */
	for (int i = 0; i < 500 && (n = test_dir_count("db/spare")) < 512; i++)
		usleep(20000);
	CHECK(n >= 512);
	usleep(100000);
	CHECK(test_dir_count("db/spare") <= 1024);
	store_close(st);
	return 0;
}

/* ---- background threads ------------------------------------------------- */

#define SOON_MS 5000	/* "promptly", on a loaded machine */

/* The threads store.h lists run while a store is open, one each per
 * store, and are gone once it is closed. */
static int
test_threads(void)
{
	struct store *st, *st2;

	if (test_threads_named("store-flush") < 0)
		return TEST_SKIP;	/* no /proc */
	OPEN(st);
	CHECK_EQ(test_threads_become("store-flush", 1), 1);
	CHECK_EQ(test_threads_become("store-spares", 1), 1);
	CHECK_EQ(store_open(&st2, "db2", TEST_MAP_BYTES), 0);
	CHECK_EQ(test_threads_become("store-flush", 2), 2);
	CHECK_EQ(test_threads_become("store-spares", 2), 2);
	store_close(st2);
	store__spare_maker_stop(st);	/* stopped early, as tests do */
	CHECK_EQ(test_threads_become("store-spares", 0), 0);
	CHECK_EQ(test_threads_become("store-flush", 1), 1);
	store_close(st);
	CHECK_EQ(test_threads_become("store-flush", 0), 0);
	return 0;
}

/* A commit marks the store dirty; the flusher syncs and clears the mark
 * on its own (about a second later), again after each later commit. */
static int
test_flusher(void)
{
	struct store *st;
	struct store_txn *t;
	int dirty = 1;

	OPEN(st);
	for (int round = 0; round < 2; round++) {
		BEGIN(st, 0, t);
		CHECK_EQ(store_misc_put(t, "m", "v", 1), 0);
		COMMIT(t);
		for (int i = 0; i < SOON_MS / 10; i++) {
			dirty = __atomic_load_n(&st->dirty, __ATOMIC_ACQUIRE);
			if (!dirty)
				break;
			usleep(10000);
		}
		CHECK_EQ(dirty, 0);
	}
	/* Read-only transactions and aborts leave nothing to sync. */
	BEGIN(st, 1, t);
	store_txn_abort(t);
	BEGIN(st, 0, t);
	store_txn_abort(t);
	CHECK_EQ(__atomic_load_n(&st->dirty, __ATOMIC_ACQUIRE), 0);
	store_close(st);
	return 0;
}

/* ---- peers, transactions, limits ---------------------------------------- */

static int
test_peer_pin(void)
{
	struct store *st;
	unsigned char a[CR_PK_BYTES], b[CR_PK_BYTES];

	memset(a, 0xaa, sizeof a);
	memset(b, 0xbb, sizeof b);
	OPEN(st);
	CHECK_EQ(store_peer_pin(st, "127.0.0.1:7071", a), 0);
	CHECK_EQ(store_peer_pin(st, "127.0.0.1:7071", a), 0);
	CHECK_EQ(store_peer_pin(st, "127.0.0.1:7071", b), -EKEYREJECTED);
	CHECK_EQ(store_peer_pin(st, "127.0.0.1:7072", b), 0);
	store_close(st);
	OPEN(st);
	CHECK_EQ(store_peer_pin(st, "127.0.0.1:7071", b), -EKEYREJECTED);
	CHECK_EQ(store_peer_pin(st, "127.0.0.1:7071", a), 0);
	CHECK_EQ(store_peer_pin(st, "127.0.0.1:7072", a), -EKEYREJECTED);
	store_close(st);
	return 0;
}

struct pin_arg {
	struct store *st;
	const unsigned char *pk;
	int rc;
};

static void *
pin_thread(void *arg)
{
	struct pin_arg *a = arg;

	a->rc = store_peer_pin(a->st, "127.0.0.1:7071", a->pk);
	return NULL;
}

/* The net loop confirms a pin made at hiring while another thread holds
 * the write txn (a rebuild's commit waiting on the loop): it must not
 * wait for LMDB's writer lock, or both wait for ever (seen in a mount).
 * The join's 30 s bound only turns that hang into a failure. */
static int
test_peer_pin_while_writing(void)
{
	struct store *st;
	struct store_txn *t;
	unsigned char a[CR_PK_BYTES];
	struct pin_arg pa = { .pk = a, .rc = 1 };
	struct timespec until;
	pthread_t th;
	int joined;

	memset(a, 0xaa, sizeof a);
	OPEN(st);
	pa.st = st;
	CHECK_EQ(store_peer_pin(st, "127.0.0.1:7071", a), 0);
	CHECK_EQ(store_txn_begin(st, 0, &t), 0);
	CHECK_EQ(pthread_create(&th, NULL, pin_thread, &pa), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	joined = pthread_timedjoin_np(th, NULL, &until);
	store_txn_abort(t);
	if (joined != 0)
		pthread_join(th, NULL);
	CHECK_EQ(joined, 0);
	CHECK_EQ(pa.rc, 0);
	store_close(st);
	return 0;
}

static int
test_abort_no_trace(void)
{
	struct store *st;
	struct store_txn *t;
	struct store_inode in = mk_inode(50, 1);
	unsigned char id[CR_ID_BYTES];
	char buf[8];
	uint64_t ino, n;

	test_fill_id(id, 1);
	OPEN(st);
	BEGIN(st, 0, t);
	CHECK_EQ(store_ino_put(t, &in), 0);
	CHECK_EQ(store_dirent_put(t, 1, "f", 50), 0);
	CHECK_EQ(store_xattr_set(t, 50, "user.x", "1", 1, 0), 0);
	CHECK_EQ(store_extent_put(t, 50, 0, id), 0);
	CHECK_EQ(store_jrnl_put(t, 50, 0), 0);
	CHECK_EQ(store_misc_put(t, "m", "v", 1), 0);
	/* visible inside the transaction */
	CHECK_EQ(store_dirent_get(t, 1, "f", &ino), 0);
	store_txn_abort(t);

	BEGIN(st, 1, t);
	CHECK_EQ(store_ino_get(t, 50, &in), -ENOENT);
	CHECK_EQ(store_dirent_get(t, 1, "f", &ino), -ENOENT);
	CHECK_EQ(store_dirent_empty(t, 1), 1);
	CHECK_EQ(store_xattr_get(t, 50, "user.x", buf, sizeof buf), -ENODATA);
	CHECK_EQ(store_extent_get(t, 50, 0, id), -ENOENT);
	CHECK_EQ(store_jrnl_count(t, &n), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(store_misc_get(t, "m", buf, sizeof buf), -ENOENT);
	store_txn_abort(t);
	store_close(st);
	return 0;
}

static int
test_concurrent_readers(void)
{
	struct store *st;
	struct store_txn *r1, *r2, *w;
	uint64_t ino;

	OPEN(st);
	/* one thread may hold two read transactions and a write one */
	BEGIN(st, 1, r1);
	BEGIN(st, 1, r2);
	BEGIN(st, 0, w);
	CHECK_EQ(store_dirent_put(w, 1, "new", 9), 0);
	COMMIT(w);
	CHECK_EQ(store_dirent_get(r1, 1, "new", &ino), -ENOENT);	/* snapshot */
	store_txn_abort(r1);
	CHECK_EQ(store_txn_commit(r2), 0);
	BEGIN(st, 1, r1);
	CHECK_EQ(store_dirent_get(r1, 1, "new", &ino), 0);
	CHECK_EQ(ino, 9);
	store_txn_abort(r1);
	store_close(st);
	return 0;
}

static int
test_map_full(void)
{
	struct store *st;
	struct store_txn *t;
	static char val[60000];
	char name[32];
	int rc = 0, i, committed = 0;
	uint64_t ino;

	CHECK_EQ(store_open(&st, "db", 1 << 20), 0);
	memset(val, 'q', sizeof val);
	for (i = 0; i < 100 && rc == 0; i++) {
		BEGIN(st, 0, t);
		snprintf(name, sizeof name, "user.%d", i);
		rc = store_xattr_set(t, 100, name, val, sizeof val, 0);
		if (rc == 0)
			rc = store_txn_commit(t);
		else
			store_txn_abort(t);
		if (rc == 0)
			committed++;
	}
	CHECK_EQ(rc, -ENOSPC);
	CHECK(committed >= 5 && committed < 20);
	/* what was committed is intact, small changes may still fit or fail
	 * cleanly, and the store reopens */
	store_close(st);
	CHECK_EQ(store_open(&st, "db", 1 << 20), 0);
	BEGIN(st, 1, t);
	CHECK_EQ(store_xattr_get(t, 100, "user.0", NULL, 0), sizeof val);
	snprintf(name, sizeof name, "user.%d", committed - 1);
	CHECK_EQ(store_xattr_get(t, 100, name, NULL, 0), sizeof val);
	snprintf(name, sizeof name, "user.%d", committed);
	CHECK_EQ(store_xattr_get(t, 100, name, NULL, 0), -ENODATA);
	store_txn_abort(t);
	BEGIN(st, 0, t);
	CHECK_EQ(store_dirent_put(t, 1, "small", 3), 0);
	COMMIT(t);
	BEGIN(st, 1, t);
	CHECK_EQ(store_dirent_get(t, 1, "small", &ino), 0);
	store_txn_abort(t);
	store_close(st);
	/* a bigger map afterwards makes room */
	CHECK_EQ(store_open(&st, "db", 4 << 20), 0);
	BEGIN(st, 0, t);
	CHECK_EQ(store_xattr_set(t, 100, "user.more", val, sizeof val, 0), 0);
	COMMIT(t);
	store_close(st);
	return 0;
}

/* ---- cache -------------------------------------------------------------- */

static int
test_cache_lru(void)
{
	struct store_cache *c;
	unsigned char id[5][CR_ID_BYTES], buf[200];
	char data[150];

	for (int i = 0; i < 5; i++)
		test_fill_id(id[i], (unsigned)i);
	memset(data, 'a', sizeof data);
	CHECK_EQ(store_cache_new(&c, 300), 0);
	CHECK_EQ(store_cache_get(c, id[0], buf, sizeof buf), -ENOENT);
	store_cache_put(c, id[0], data, 100);
	data[0] = 'b';
	store_cache_put(c, id[1], data, 100);
	data[0] = 'c';
	store_cache_put(c, id[2], data, 100);
	CHECK_EQ(store_cache_bytes(c), 300);
	/* A range: only those bytes, cut at the block's end. */
	memset(buf, 'z', sizeof buf);
	CHECK_EQ(store_cache_get_range(c, id[2], 0, buf, 2), 100);
	CHECK(buf[0] == 'c' && buf[1] == 'a' && buf[2] == 'z');
	memset(buf, 'z', sizeof buf);
	CHECK_EQ(store_cache_get_range(c, id[2], 98, buf, 10), 100);
	CHECK(buf[0] == 'a' && buf[1] == 'a' && buf[2] == 'z');
	memset(buf, 'z', sizeof buf);
	CHECK_EQ(store_cache_get_range(c, id[2], 100, buf, 10), 100);
	CHECK_EQ(buf[0], 'z');
	CHECK_EQ(store_cache_get_range(c, id[4], 0, buf, 10), -ENOENT);
	/* touch 0: 1 is now least recently used */
	CHECK_EQ(store_cache_get(c, id[0], buf, sizeof buf), 100);
	CHECK_EQ(buf[0], 'a');
	data[0] = 'd';
	store_cache_put(c, id[3], data, 100);
	CHECK_EQ(store_cache_bytes(c), 300);
	CHECK_EQ(store_cache_get(c, id[1], buf, sizeof buf), -ENOENT);
	CHECK_EQ(store_cache_get(c, id[0], buf, sizeof buf), 100);
	CHECK_EQ(store_cache_get(c, id[2], buf, sizeof buf), 100);
	CHECK_EQ(buf[0], 'c');
	/* LRU order now 3, 0, 2 (oldest first): a 150-byte block evicts 3, 0 */
	store_cache_put(c, id[4], data, 150);
	CHECK_EQ(store_cache_bytes(c), 250);
	CHECK_EQ(store_cache_get(c, id[3], buf, sizeof buf), -ENOENT);
	CHECK_EQ(store_cache_get(c, id[0], buf, sizeof buf), -ENOENT);
	CHECK_EQ(store_cache_get(c, id[2], buf, sizeof buf), 100);
	/* short buffer: copies cap bytes, returns full length */
	memset(buf, 0, sizeof buf);
	CHECK_EQ(store_cache_get(c, id[4], buf, 10), 150);
	CHECK_EQ(buf[0], 'd');
	CHECK_EQ(buf[10], 0);
	/* replace */
	data[0] = 'e';
	store_cache_put(c, id[2], data, 50);
	CHECK_EQ(store_cache_bytes(c), 200);
	CHECK_EQ(store_cache_get(c, id[2], buf, sizeof buf), 50);
	CHECK_EQ(buf[0], 'e');
	/* too big for the bound: not kept, and the old copy is gone */
	static char huge[301];
	store_cache_put(c, id[2], huge, sizeof huge);
	CHECK_EQ(store_cache_get(c, id[2], buf, sizeof buf), -ENOENT);
	CHECK_EQ(store_cache_bytes(c), 150);
	store_cache_drop(c, id[4]);
	CHECK_EQ(store_cache_bytes(c), 0);
	CHECK_EQ(store_cache_get(c, id[4], buf, sizeof buf), -ENOENT);
	store_cache_put(c, id[1], data, 100);
	store_cache_clear(c);
	CHECK_EQ(store_cache_bytes(c), 0);
	CHECK_EQ(store_cache_get(c, id[1], buf, sizeof buf), -ENOENT);
	store_cache_free(c);

	CHECK_EQ(store_cache_new(&c, 0), 0);
	store_cache_put(c, id[0], data, 1);
	store_cache_put(c, id[1], data, 0);
	CHECK_EQ(store_cache_get(c, id[0], buf, sizeof buf), -ENOENT);
	CHECK_EQ(store_cache_get(c, id[1], buf, sizeof buf), -ENOENT);
	CHECK_EQ(store_cache_bytes(c), 0);
	store_cache_free(c);
	return 0;
}

static int
test_cache_many(void)
{
	struct store_cache *c;
	unsigned char id[CR_ID_BYTES];
	uint32_t v, got;

	/* far more entries than initial buckets: the table grows */
	CHECK_EQ(store_cache_new(&c, 20000 * sizeof v), 0);
	for (uint32_t i = 0; i < 30000; i++) {
		memset(id, 0, sizeof id);
		memcpy(id, &i, sizeof i);
		store_cache_put(c, id, &i, sizeof i);
		CHECK(store_cache_bytes(c) <= 20000 * sizeof v);
	}
	CHECK_EQ(store_cache_bytes(c), 20000 * sizeof v);
	for (uint32_t i = 0; i < 30000; i++) {
		memset(id, 0, sizeof id);
		memcpy(id, &i, sizeof i);
		ssize_t rc = store_cache_get(c, id, &got, sizeof got);
		if (i < 10000) {
			CHECK_EQ(rc, -ENOENT);
		} else {
			CHECK_EQ(rc, sizeof got);
			CHECK_EQ(got, i);
		}
	}
	store_cache_free(c);
	return 0;
}

struct cache_thread {
	struct store_cache *c;
	int seed, bad;
};

#define CT_MAX	(64 * 1024)

static void *
cache_worker(void *arg)
{
	struct cache_thread *ct = arg;
	unsigned char id[CR_ID_BYTES], *buf = malloc(4096), *want = malloc(4096);
	unsigned r = (unsigned)ct->seed * 2654435761u;

	for (int i = 0; i < 20000; i++) {
		r = r * 1103515245u + 12345u;
		unsigned key = (r >> 8) % 64;
		size_t len = 512 + key * 50;
		memset(id, 0, sizeof id);
		id[0] = (unsigned char)key;
		/* content is a function of the id, so any thread may have put it */
		memset(want, (int)(key * 3 + 1), len);
		switch ((r >> 20) % 8) {
		case 0: case 1: case 2:
			store_cache_put(ct->c, id, want, len);
			break;
		case 3:
			store_cache_drop(ct->c, id);
			break;
		default: {
			ssize_t n = store_cache_get(ct->c, id, buf, 4096);
			if (n != -ENOENT && (n != (ssize_t)len ||
			    memcmp(buf, want, len) != 0))
				ct->bad++;
		}
		}
		if (store_cache_bytes(ct->c) > CT_MAX)
			ct->bad++;
	}
	free(buf);
	free(want);
	return NULL;
}

static int
test_cache_threads(void)
{
	struct store_cache *c;
	struct cache_thread ct[4];
	pthread_t th[4];

	CHECK_EQ(store_cache_new(&c, CT_MAX), 0);
	for (int i = 0; i < 4; i++) {
		ct[i] = (struct cache_thread){ c, i + 1, 0 };
		CHECK_EQ(pthread_create(&th[i], NULL, cache_worker, &ct[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(ct[i].bad, 0);
	}
	CHECK(store_cache_bytes(c) <= CT_MAX);
	CHECK(store_cache_bytes(c) > 0);
	store_cache_free(c);
	return 0;
}

const struct test tests_store[] = {
	{ "open_root_reopen", test_open_root_reopen },
	{ "map_allocated_ahead", test_map_allocated_ahead },
	{ "root_kept", test_root_kept },
	{ "inode_del", test_inode_del },
	{ "symlink", test_symlink },
	{ "alloc_orphans", test_alloc_orphans },
	{ "orphans_delete_in_cb", test_orphans_delete_in_cb },
	{ "dirents", test_dirents },
	{ "xattrs", test_xattrs },
	{ "extents", test_extents },
	{ "inline", test_inline },
	{ "blocks", test_blocks },
	{ "blocks_v2_fields", test_blocks_v2_fields },
	{ "blocks_v1_compat", test_blocks_v1_compat },
	{ "block_iter_after", test_block_iter_after },
	{ "rebuild_queue", test_rebuild_queue },
	{ "delq", test_delq },
	{ "jrnl_records", test_jrnl_records },
	{ "jrnl_files", test_jrnl_files },
	{ "jrnl_spares", test_jrnl_spares },
	{ "jrnl_spare_maker", test_jrnl_spare_maker },
	{ "threads", test_threads },
	{ "flusher", test_flusher },
	{ "peer_pin", test_peer_pin },
	{ "peer_pin_while_writing", test_peer_pin_while_writing },
	{ "abort_no_trace", test_abort_no_trace },
	{ "concurrent_readers", test_concurrent_readers },
	{ "map_full", test_map_full },
	{ "cache_lru", test_cache_lru },
	{ "cache_many", test_cache_many },
	{ "cache_threads", test_cache_threads },
	{ NULL, NULL },
};
