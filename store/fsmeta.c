/* store/fsmeta.c - the filesystem's records in the owner's LMDB metadata:
 * inodes, directory entries, symlinks, extended attributes, extents and
 * the inline blocks of tiny files. Key encodings: store/meta.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

#include "log.h"
#include "store/internal.h"
#include "util.h"

#define XATTR_VAL_MAX		65536

/* ---- inode records --------------------------------------------------------- */

void
store__ino_enc(unsigned char *p, const struct store_inode *in)
{
	p[0] = STORE__INO_REC_V1;
	put_be64(p + 1, in->ino);
	put_be32(p + 9, in->mode);
	put_be32(p + 13, in->uid);
	put_be32(p + 17, in->gid);
	put_be32(p + 21, in->nlink);
	put_be64(p + 25, in->size);
	put_be64(p + 33, in->rdev);
	put_be64(p + 41, (uint64_t)in->atime_sec);
	put_be64(p + 49, (uint64_t)in->mtime_sec);
	put_be64(p + 57, (uint64_t)in->ctime_sec);
	put_be32(p + 65, in->atime_nsec);
	put_be32(p + 69, in->mtime_nsec);
	put_be32(p + 73, in->ctime_nsec);
	put_be64(p + 77, in->generation);
}

int
store__ino_dec(struct store_inode *in, const MDB_val *v)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size != STORE__INO_REC_LEN || p[0] != STORE__INO_REC_V1) {
		log_error("store: corrupt inode record (%zu bytes)", v->mv_size);
		return -EIO;
	}
	memset(in, 0, sizeof *in);
	in->ino = get_be64(p + 1);
	in->mode = get_be32(p + 9);
	in->uid = get_be32(p + 13);
	in->gid = get_be32(p + 17);
	in->nlink = get_be32(p + 21);
	in->size = get_be64(p + 25);
	in->rdev = get_be64(p + 33);
	in->atime_sec = (int64_t)get_be64(p + 41);
	in->mtime_sec = (int64_t)get_be64(p + 49);
	in->ctime_sec = (int64_t)get_be64(p + 57);
	in->atime_nsec = get_be32(p + 65);
	in->mtime_nsec = get_be32(p + 69);
	in->ctime_nsec = get_be32(p + 73);
	in->generation = get_be64(p + 77);
	return 0;
}

/* ---- inodes ------------------------------------------------------------- */

void
store_inode_stamp(struct store_inode *in, int which, const struct timespec *ts)
{
	if (which & STORE_ATIME) {
		in->atime_sec = ts->tv_sec;
		in->atime_nsec = ts->tv_nsec;
	}
	if (which & STORE_MTIME) {
		in->mtime_sec = ts->tv_sec;
		in->mtime_nsec = ts->tv_nsec;
	}
	if (which & STORE_CTIME) {
		in->ctime_sec = ts->tv_sec;
		in->ctime_nsec = ts->tv_nsec;
	}
}

void
store_inode_touch(struct store_inode *in, int which)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	store_inode_stamp(in, which, &now);
}

int
store_ino_get(struct store_txn *t, uint64_t ino, struct store_inode *out)
{
	unsigned char key[8];
	MDB_val v;
	int rc;

	put_be64(key, ino);
	if ((rc = store__kv_get(t, STORE__DB_INODES, key, sizeof key, &v)) < 0)
		return rc;
	return store__ino_dec(out, &v);
}

int
store_ino_put(struct store_txn *t, const struct store_inode *in)
{
	unsigned char key[8], val[STORE__INO_REC_LEN];

	put_be64(key, in->ino);
	store__ino_enc(val, in);
	return store__kv_put(t, STORE__DB_INODES, key, sizeof key, val, sizeof val);
}

int
store_ino_del(struct store_txn *t, uint64_t ino)
{
	unsigned char key[8];
	int rc, gone;

	put_be64(key, ino);
	gone = store__kv_del(t, STORE__DB_INODES, key, sizeof key);
	if (gone < 0 && gone != -ENOENT)
		return gone;
	rc = store__kv_del(t, STORE__DB_SYMLINKS, key, sizeof key);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if ((rc = store__del_prefix(t, STORE__DB_XATTRS, key, sizeof key)) < 0)
		return rc;
	return gone;	/* -ENOENT when there was no inode record */
}

int
store_ino_alloc(struct store_txn *t, uint64_t *ino_out)
{
	uint64_t next = STORE_ROOT_INO + 1;
	int rc;

	rc = store_misc_u64_get(t, STORE_MISC_NEXT_INO, &next);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if ((rc = store_misc_u64_put(t, STORE_MISC_NEXT_INO, next + 1)) < 0)
		return rc;
	*ino_out = next;
	return 0;
}

struct orphan_ctx {
	int (*cb)(void *arg, uint64_t ino);
	void *arg;
};

static int
orphan_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct orphan_ctx *o = ctx;
	struct store_inode in;
	int rc;

	if ((rc = store__ino_dec(&in, v)) < 0)
		return rc;
	return in.nlink == 0 ? o->cb(o->arg, in.ino) : 0;
}

int
store_ino_orphans(struct store_txn *t, int (*cb)(void *arg, uint64_t ino),
    void *arg)
{
	struct orphan_ctx o = { cb, arg };

	return store__scan(t, STORE__DB_INODES, NULL, 0, NULL, 0, 0, orphan_one, &o);
}

/* ---- directory entries -------------------------------------------------- */

int
store_dirent_get(struct store_txn *t, uint64_t parent, const char *name,
    uint64_t *ino_out)
{
	unsigned char key[8 + STORE_NAME_MAX];
	MDB_val v;
	int klen, rc;

	klen = store__name_key(key, parent, name, STORE_NAME_MAX, -ENAMETOOLONG);
	if (klen < 0)
		return klen;
	if ((rc = store__kv_get(t, STORE__DB_DIRENTS, key, klen, &v)) < 0)
		return rc;
	if (v.mv_size != 8)
		return -EIO;
	*ino_out = get_be64(v.mv_data);
	return 0;
}

int
store_dirent_put(struct store_txn *t, uint64_t parent, const char *name,
    uint64_t ino)
{
	unsigned char key[8 + STORE_NAME_MAX], val[8];
	int klen;

	klen = store__name_key(key, parent, name, STORE_NAME_MAX, -ENAMETOOLONG);
	if (klen < 0)
		return klen;
	put_be64(val, ino);
	return store__kv_put(t, STORE__DB_DIRENTS, key, klen, val, sizeof val);
}

int
store_dirent_del(struct store_txn *t, uint64_t parent, const char *name)
{
	unsigned char key[8 + STORE_NAME_MAX];
	int klen;

	klen = store__name_key(key, parent, name, STORE_NAME_MAX, -ENAMETOOLONG);
	if (klen < 0)
		return klen;
	return store__kv_del(t, STORE__DB_DIRENTS, key, klen);
}

static int
stop_at_first(void *ctx, const MDB_val *k, const MDB_val *v)
{
	return 1;
}

int
store_dirent_empty(struct store_txn *t, uint64_t parent)
{
	unsigned char key[8];
	int rc;

	put_be64(key, parent);
	rc = store__scan(t, STORE__DB_DIRENTS, key, 8, key, 8, 0, stop_at_first, NULL);
	return rc < 0 ? rc : !rc;
}

struct dirent_ctx {
	int (*cb)(void *arg, const char *name, uint64_t ino);
	void *arg;
};

static int
dirent_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct dirent_ctx *d = ctx;
	char name[STORE_NAME_MAX + 1];
	size_t n = k->mv_size - 8;

	if (n == 0 || n > STORE_NAME_MAX || v->mv_size != 8)
		return -EIO;
	memcpy(name, (const char *)k->mv_data + 8, n);
	name[n] = '\0';
	return d->cb(d->arg, name, get_be64(v->mv_data));
}

int
store_dirent_iter(struct store_txn *t, uint64_t parent, const char *after,
    int (*cb)(void *arg, const char *name, uint64_t ino), void *arg)
{
	struct dirent_ctx d = { cb, arg };
	unsigned char key[8 + STORE_NAME_MAX];
	int klen = 8;

	put_be64(key, parent);
	if (after && *after) {
		klen = store__name_key(key, parent, after, STORE_NAME_MAX,
		    -ENAMETOOLONG);
		if (klen < 0)
			return klen;
	}
	return store__scan(t, STORE__DB_DIRENTS, key, 8, key, klen, klen > 8,
	    dirent_one, &d);
}

/* ---- symlinks ----------------------------------------------------------- */

int
store_symlink_put(struct store_txn *t, uint64_t ino, const char *target)
{
	unsigned char key[8];
	size_t n = strlen(target);

	if (n == 0)
		return -EINVAL;
	if (n >= 4096)
		return -ENAMETOOLONG;
	put_be64(key, ino);
	return store__kv_put(t, STORE__DB_SYMLINKS, key, sizeof key, target, n);
}

int
store_symlink_get(struct store_txn *t, uint64_t ino, char *buf, size_t size)
{
	unsigned char key[8];
	MDB_val v;
	int rc;

	put_be64(key, ino);
	if ((rc = store__kv_get(t, STORE__DB_SYMLINKS, key, sizeof key, &v)) < 0)
		return rc;
	if (size > 0) {
		size_t n = v.mv_size < size - 1 ? v.mv_size : size - 1;
		memcpy(buf, v.mv_data, n);
		buf[n] = '\0';
	}
	return (int)v.mv_size;
}

/* ---- extended attributes ------------------------------------------------ */

int
store_xattr_get(struct store_txn *t, uint64_t ino, const char *name,
    void *buf, size_t size)
{
	unsigned char key[8 + STORE_NAME_MAX];
	MDB_val v;
	int klen, rc;

	if ((klen = store__name_key(key, ino, name, STORE_NAME_MAX, -ERANGE)) < 0)
		return klen == -EINVAL ? -ERANGE : klen;
	rc = store__kv_get(t, STORE__DB_XATTRS, key, klen, &v);
	if (rc < 0)
		return rc == -ENOENT ? -ENODATA : rc;
	if (size == 0)
		return (int)v.mv_size;
	if (size < v.mv_size)
		return -ERANGE;
	memcpy(buf, v.mv_data, v.mv_size);
	return (int)v.mv_size;
}

int
store_xattr_set(struct store_txn *t, uint64_t ino, const char *name,
    const void *val, size_t len, int flags)
{
	unsigned char key[8 + STORE_NAME_MAX];
	MDB_val v;
	int klen, rc;

	if ((klen = store__name_key(key, ino, name, STORE_NAME_MAX, -ERANGE)) < 0)
		return klen == -EINVAL ? -ERANGE : klen;
	if (len > XATTR_VAL_MAX)
		return -E2BIG;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (flags) {
		rc = store__kv_get(t, STORE__DB_XATTRS, key, klen, &v);
		if (rc < 0 && rc != -ENOENT)
			return rc;
		if ((flags & XATTR_CREATE) && rc == 0)
			return -EEXIST;
		if ((flags & XATTR_REPLACE) && rc == -ENOENT)
			return -ENODATA;
	}
	return store__kv_put(t, STORE__DB_XATTRS, key, klen, len ? val : "", len);
}

struct xlist_ctx {
	char *buf;
	size_t size, len;
};

static int
xattr_name(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct xlist_ctx *x = ctx;
	size_t n = k->mv_size - 8;

	if (x->size) {
		if (x->len + n + 1 > x->size)
			return -ERANGE;
		memcpy(x->buf + x->len, (const char *)k->mv_data + 8, n);
		x->buf[x->len + n] = '\0';
	}
	x->len += n + 1;
	return 0;
}

int
store_xattr_list(struct store_txn *t, uint64_t ino, char *buf, size_t size)
{
	struct xlist_ctx x = { buf, size, 0 };
	unsigned char key[8];
	int rc;

	put_be64(key, ino);
	rc = store__scan(t, STORE__DB_XATTRS, key, 8, key, 8, 0, xattr_name, &x);
	if (rc < 0)
		return rc;
	return x.len > INT32_MAX ? -E2BIG : (int)x.len;
}

int
store_xattr_del(struct store_txn *t, uint64_t ino, const char *name)
{
	unsigned char key[8 + STORE_NAME_MAX];
	int klen, rc;

	if ((klen = store__name_key(key, ino, name, STORE_NAME_MAX, -ERANGE)) < 0)
		return klen == -EINVAL ? -ERANGE : klen;
	rc = store__kv_del(t, STORE__DB_XATTRS, key, klen);
	return rc == -ENOENT ? -ENODATA : rc;
}

/* ---- extents ------------------------------------------------------------ */

int
store_extent_get(struct store_txn *t, uint64_t ino, uint64_t bno,
    unsigned char id[CR_ID_BYTES])
{
	unsigned char key[16];
	MDB_val v;
	int rc;

	store__pair_key(key, ino, bno);
	if ((rc = store__kv_get(t, STORE__DB_EXTENTS, key, sizeof key, &v)) < 0)
		return rc;
	if (v.mv_size != CR_ID_BYTES)
		return -EIO;
	memcpy(id, v.mv_data, CR_ID_BYTES);
	return 0;
}

int
store_extent_put(struct store_txn *t, uint64_t ino, uint64_t bno,
    const unsigned char id[CR_ID_BYTES])
{
	unsigned char key[16];

	store__pair_key(key, ino, bno);
	return store__kv_put(t, STORE__DB_EXTENTS, key, sizeof key, id, CR_ID_BYTES);
}

int
store_extent_del(struct store_txn *t, uint64_t ino, uint64_t bno)
{
	unsigned char key[16];

	store__pair_key(key, ino, bno);
	return store__kv_del(t, STORE__DB_EXTENTS, key, sizeof key);
}

/* ---- inline blocks ------------------------------------------------------ */

int
store_inline_get(struct store_txn *t, uint64_t ino, uint64_t bno, void *buf,
    size_t cap, size_t *len)
{
	unsigned char key[16];
	MDB_val v;
	int rc;

	store__pair_key(key, ino, bno);
	if ((rc = store__kv_get(t, STORE__DB_INLINE, key, sizeof key, &v)) < 0)
		return rc;
	if (v.mv_size == 0 || v.mv_size > STORE_INLINE_MAX)
		return -EIO;
	memcpy(buf, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
	*len = v.mv_size;
	return 0;
}

int
store_inline_put(struct store_txn *t, uint64_t ino, uint64_t bno,
    const void *p, size_t len)
{
	unsigned char key[16];

	if (len == 0 || len > STORE_INLINE_MAX)
		return -EINVAL;
	store__pair_key(key, ino, bno);
	return store__kv_put(t, STORE__DB_INLINE, key, sizeof key, p, len);
}

int
store_inline_del(struct store_txn *t, uint64_t ino, uint64_t bno)
{
	unsigned char key[16];

	store__pair_key(key, ino, bno);
	return store__kv_del(t, STORE__DB_INLINE, key, sizeof key);
}

struct extent_ctx {
	int (*cb)(void *arg, uint64_t bno, const unsigned char *id);
	void *arg;
};

static int
extent_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
	struct extent_ctx *e = ctx;
	unsigned char id[CR_ID_BYTES];

	if (k->mv_size != 16 || v->mv_size != CR_ID_BYTES)
		return -EIO;
	memcpy(id, v->mv_data, CR_ID_BYTES);	/* cb may write: map moves */
	return e->cb(e->arg, get_be64((const unsigned char *)k->mv_data + 8), id);
}

int
store_extent_iter(struct store_txn *t, uint64_t ino, uint64_t from,
    int (*cb)(void *arg, uint64_t bno, const unsigned char *id), void *arg)
{
	struct extent_ctx e = { cb, arg };
	unsigned char key[16];

	store__pair_key(key, ino, from);
	return store__scan(t, STORE__DB_EXTENTS, key, 8, key, 16, 0, extent_one, &e);
}

