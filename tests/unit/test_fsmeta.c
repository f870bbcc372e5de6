/* tests/unit/test_fsmeta.c - the parts of fs/ that need no kernel:
 * lookup counts and the freeing of nameless inodes (fs/lookups.c),
 * orphans left by a crash, the parent record of directories. The
 * operations themselves are tested through a real mount (tests/integ). */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fs/internal.h"
#include "test.h"

static int
put_inode(struct store *st, uint64_t *ino, uint32_t mode, uint32_t nlink)
{
	struct store_inode in;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	if ((rc = store_ino_alloc(t, ino)) < 0) {
		store_txn_abort(t);
		return rc;
	}
	memset(&in, 0, sizeof in);
	in.ino = *ino;
	in.mode = mode;
	in.nlink = nlink;
	if ((rc = store_ino_put(t, &in)) < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

static int
set_nlink(struct store *st, uint64_t ino, uint32_t nlink)
{
	struct store_inode in;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	if ((rc = store_ino_get(t, ino, &in)) == 0) {
		in.nlink = nlink;
		rc = store_ino_put(t, &in);
	}
	if (rc < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

/* 1 when ino has a record, 0 when not. */
static int
exists(struct store *st, uint64_t ino)
{
	struct store_inode in;
	struct store_txn *t;
	int rc;

	if (store_txn_begin(st, 1, &t) < 0)
		return -1;
	rc = store_ino_get(t, ino, &in);
	store_txn_abort(t);
	return rc == 0;
}

static int
open_fs(struct fs *fs, struct store **st)
{
	memset(fs, 0, sizeof *fs);
	if (store_open(st, "meta", 64u << 20) < 0)
		return -1;
	fs->conf.store = *st;
	return 0;
}

static int
test_orphans_freed_at_init(void)
{
	struct store *st;
	struct fs fs;
	uint64_t orphan, file, dir, kept;

	CHECK(open_fs(&fs, &st) == 0);
	CHECK_EQ(put_inode(st, &orphan, S_IFREG | 0644, 0), 0);
	CHECK_EQ(put_inode(st, &dir, S_IFDIR | 0755, 0), 0);
	CHECK_EQ(put_inode(st, &file, S_IFIFO | 0644, 0), 0);
	CHECK_EQ(put_inode(st, &kept, S_IFREG | 0644, 1), 0);
	CHECK_EQ(fs__lookups_init(&fs), 0);
	CHECK_EQ(exists(st, orphan), 0);
	CHECK_EQ(exists(st, dir), 0);
	CHECK_EQ(exists(st, file), 0);
	CHECK_EQ(exists(st, kept), 1);
	CHECK_EQ(exists(st, STORE_ROOT_INO), 1);
	fs__lookups_destroy(&fs);
	CHECK(fs.lookups == NULL);
	store_close(st);
	return 0;
}

static int
test_forget_frees_nameless_inode(void)
{
	struct store *st;
	struct fs fs;
	uint64_t a, b;

	CHECK(open_fs(&fs, &st) == 0);
	CHECK_EQ(fs__lookups_init(&fs), 0);
	CHECK_EQ(put_inode(st, &a, S_IFIFO | 0644, 1), 0);
	CHECK_EQ(put_inode(st, &b, S_IFIFO | 0644, 1), 0);
	/* looked up three times (lookup, readdirplus, link reply) */
	CHECK_EQ(fs__lookup_hold(&fs, a, 1), 0);
	CHECK_EQ(fs__lookup_hold(&fs, a, 2), 0);
	CHECK_EQ(fs__lookup_hold(&fs, b, 1), 0);
	/* unlinked while the kernel holds it: stays */
	CHECK_EQ(set_nlink(st, a, 0), 0);
	fs__inode_unlinked(&fs, a);
	CHECK_EQ(exists(st, a), 1);
	fs__lookup_release(&fs, a, 2);
	CHECK_EQ(exists(st, a), 1);
	fs__lookup_release(&fs, a, 1);	/* the last lookup goes */
	CHECK_EQ(exists(st, a), 0);
	/* still named: forgetting keeps it */
	fs__lookup_release(&fs, b, 1);
	CHECK_EQ(exists(st, b), 1);
	/* nameless and not held: freed at once; twice is harmless */
	CHECK_EQ(set_nlink(st, b, 0), 0);
	fs__inode_unlinked(&fs, b);
	CHECK_EQ(exists(st, b), 0);
	fs__inode_unlinked(&fs, b);
	fs__lookup_release(&fs, b, 5);	/* a forget too many is ignored */
	/* the root is never freed nor counted */
	CHECK_EQ(fs__lookup_hold(&fs, STORE_ROOT_INO, 1), 0);
	fs__lookup_release(&fs, STORE_ROOT_INO, 1);
	fs__inode_unlinked(&fs, STORE_ROOT_INO);
	CHECK_EQ(exists(st, STORE_ROOT_INO), 1);
	fs__lookups_destroy(&fs);
	store_close(st);
	return 0;
}

static int
test_many_counts(void)
{
	enum { N = 5000 };
	struct store *st;
	struct fs fs;
	uint64_t *ino = calloc(N, sizeof *ino);
	int i;

	CHECK(ino != NULL);
	CHECK(open_fs(&fs, &st) == 0);
	CHECK_EQ(fs__lookups_init(&fs), 0);
	for (i = 0; i < N; i++) {
		CHECK_EQ(put_inode(st, &ino[i], S_IFSOCK | 0600, 0), 0);
		CHECK_EQ(fs__lookup_hold(&fs, ino[i], 1 + i % 3), 0);
	}
	for (i = 0; i < N; i++) {	/* the table grew: all still held */
		fs__inode_unlinked(&fs, ino[i]);
		CHECK_EQ(exists(st, ino[i]), 1);
	}
	for (i = 0; i < N; i++)
		fs__lookup_release(&fs, ino[i], 1 + i % 3);
	for (i = 0; i < N; i++)
		CHECK_EQ(exists(st, ino[i]), 0);
	fs__lookups_destroy(&fs);
	store_close(st);
	free(ino);
	return 0;
}

static int
test_parent_record(void)
{
	struct store *st;
	struct store_txn *t;
	struct fs fs;
	uint64_t dir, p = 0;
	char list[256];
	int n;

	CHECK(open_fs(&fs, &st) == 0);
	CHECK_EQ(put_inode(st, &dir, S_IFDIR | 0755, 2), 0);
	CHECK_EQ(store_txn_begin(st, 1, &t), 0);
	CHECK_EQ(fs__parent(t, STORE_ROOT_INO, &p), 0);
	CHECK_EQ(p, STORE_ROOT_INO);
	/* no record (older tree): the root stands in */
	CHECK_EQ(fs__parent(t, dir, &p), 0);
	CHECK_EQ(p, STORE_ROOT_INO);
	store_txn_abort(t);

	CHECK_EQ(store_txn_begin(st, 0, &t), 0);
	unsigned char be[8] = { 0, 0, 0, 0, 0, 0, 0x12, 0x34 };
	CHECK_EQ(store_xattr_set(t, dir, FS_PARENT_XATTR, be, 8, 0), 0);
	CHECK_EQ(fs__parent(t, dir, &p), 0);
	CHECK_EQ(p, 0x1234);
	/* the record is an xattr outside every user namespace */
	n = store_xattr_list(t, dir, list, sizeof list);
	CHECK_EQ(n, (int)sizeof FS_PARENT_XATTR);
	CHECK(strncmp(list, "user.", 5) != 0);
	CHECK_EQ(store_txn_commit(t), 0);
	store_close(st);
	return 0;
}

const struct test tests_fsmeta[] = {
	{ "orphans_freed_at_init", test_orphans_freed_at_init },
	{ "forget_frees_nameless_inode", test_forget_frees_nameless_inode },
	{ "many_counts", test_many_counts },
	{ "parent_record", test_parent_record },
	{ NULL, NULL },
};
