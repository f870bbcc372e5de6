/* store/meta.c - the owner's metadata in one LMDB environment.
 *
 * Key encodings are big-endian so that LMDB's memcmp order is numeric order:
 *   inodes   u64 ino                  -> inode record (see ino_enc)
 *   dirents  u64 parent | name bytes  -> u64 ino
 *   symlinks u64 ino                  -> target bytes (no NUL)
 *   xattrs   u64 ino | name bytes     -> value
 *   extents  u64 ino | u64 bno        -> block id
 *   inline   u64 ino | u64 bno        -> the block's plaintext (tiny files)
 *   blocks   block id                 -> block record (see blk_enc)
 *   rebuild  u32 surviving | block id -> empty (most urgent first)
 *   rebuildx block id                 -> u32 surviving (finds the entry)
 *   delq     pk | fragment id         -> u32 fragment bytes
 *   jrnl     u64 ino | u64 bno        -> empty
 *   peers    address string           -> public key
 *   misc     name string              -> value (names: store/misc.c)
 * Records start with a version byte so that a later format can be read
 * next to this one. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store/internal.h"
#include "util.h"

#define KEY_MAX			512	/* above any key we build (LMDB: 511) */
#define XATTR_VAL_MAX		65536
#define INO_REC_V1		1
#define INO_REC_LEN		85
#define BLK_REC_V1		1	/* entries: hash | peer */
#define BLK_REC_V2		2	/* + lost | audit_next | audit_end | audit */
#define BLK_REC_HDR		82
#define BLK_REC_ENTRY_V1	(CR_HASH_BYTES + CR_PK_BYTES)
#define BLK_REC_ENTRY		(BLK_REC_ENTRY_V1 + 1 + 4 + 4 + \
				 STORE_AUDITS * STORE_AUDIT_BYTES)

static const char *const db_names[STORE__DB_N] = {
	"inodes", "dirents", "symlinks", "xattrs", "extents", "blocks",
	"jrnl", "peers", "misc", "rebuild", "rebuildx", "delq", "changes",
	"inline",
};

int
store__mdb_err(int rc, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS:	return 0;
	case MDB_NOTFOUND:	return -ENOENT;
	case MDB_KEYEXIST:	return -EEXIST;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:	return -ENOSPC;
	}
	log_error("store: %s: %s", what, mdb_strerror(rc));
	return rc > 0 ? -rc : -EIO;
}

/* ---- small helpers ------------------------------------------------------ */

static MDB_dbi
dbi(struct store_txn *t, int db)
{
	return t->st->dbi[db];
}

static int
kv_get(struct store_txn *t, int db, const void *k, size_t klen, MDB_val *v)
{
	MDB_val key = { klen, (void *)k };

	return store__mdb_err(mdb_get(t->txn, dbi(t, db), &key, v), db_names[db]);
}

static int
kv_put(struct store_txn *t, int db, const void *k, size_t klen,
    const void *v, size_t vlen)
{
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	int rc;

	rc = store__mdb_err(mdb_put(t->txn, dbi(t, db), &key, &val, 0),
	    db_names[db]);
	return rc < 0 ? rc : store__index_log(t, db, k, klen);
}

static int
kv_del(struct store_txn *t, int db, const void *k, size_t klen)
{
	MDB_val key = { klen, (void *)k };
	int rc;

	rc = store__mdb_err(mdb_del(t->txn, dbi(t, db), &key, NULL),
	    db_names[db]);
	return rc < 0 ? rc : store__index_log(t, db, k, klen);
}

/* Validates a name and builds u64 prefix | name; returns the key length. */
static int
name_key(unsigned char *key, uint64_t prefix, const char *name, size_t max,
    int too_long)
{
	size_t n = strlen(name);

	if (n == 0)
		return -EINVAL;
	if (n > max)
		return too_long;
	put_be64(key, prefix);
	memcpy(key + 8, name, n);
	return (int)(8 + n);
}

static void
pair_key(unsigned char key[16], uint64_t a, uint64_t b)
{
	put_be64(key, a);
	put_be64(key + 8, b);
}

typedef int (*scan_fn)(void *ctx, const MDB_val *k, const MDB_val *v);

/* Visits the records whose key starts with prefix[0..plen), from the first
 * key >= start (or > start when `after`; every record when slen is 0), in
 * key order, until fn returns non-zero (returned as is). After each call
 * the cursor seeks again from a copy of the last key, so fn may change the
 * database within the same transaction. */
static int
scan(struct store_txn *t, int db, const void *prefix, size_t plen,
    const void *start, size_t slen, int after, scan_fn fn, void *ctx)
{
	unsigned char last[KEY_MAX];
	size_t llen = slen;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, ret = 0;

	if (slen > sizeof last)
		return -EINVAL;
	if ((rc = mdb_cursor_open(t->txn, dbi(t, db), &c)) != 0)
		return store__mdb_err(rc, "cursor_open");
	if (slen)
		memcpy(last, start, slen);
	k = (MDB_val){ llen, last };
	rc = mdb_cursor_get(c, &k, &v, slen ? MDB_SET_RANGE : MDB_FIRST);
	for (;;) {
		if (rc == 0 && after && k.mv_size == llen &&
		    memcmp(k.mv_data, last, llen) == 0)
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		if (rc != 0)
			break;
		if (plen && (k.mv_size < plen ||
		    memcmp(k.mv_data, prefix, plen) != 0))
			break;
		if (k.mv_size > sizeof last) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(last, k.mv_data, k.mv_size);
		llen = k.mv_size;
		if ((ret = fn(ctx, &k, &v)) != 0)
			break;
		k = (MDB_val){ llen, last };
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		after = 1;
	}
	mdb_cursor_close(c);
	if (ret != 0)
		return ret;
	return rc == MDB_NOTFOUND ? 0 : store__mdb_err(rc, db_names[db]);
}

/* Deletes every record whose key starts with prefix[0..plen). */
static int
del_prefix(struct store_txn *t, int db, const void *prefix, size_t plen)
{
	unsigned char last[KEY_MAX];
	size_t llen;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, lrc = 0;

	if ((rc = mdb_cursor_open(t->txn, dbi(t, db), &c)) != 0)
		return store__mdb_err(rc, "cursor_open");
	for (;;) {
		k = (MDB_val){ plen, (void *)prefix };
		if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) != 0)
			break;
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if ((llen = k.mv_size) > sizeof last) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(last, k.mv_data, llen);	/* the map moves on delete */
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		if ((lrc = store__index_log(t, db, last, llen)) < 0)
			break;
	}
	mdb_cursor_close(c);
	if (lrc < 0)
		return lrc;
	return rc == MDB_NOTFOUND || rc == 0 ? 0 :
	    store__mdb_err(rc, db_names[db]);
}

/* ---- environment and transactions --------------------------------------- */

static int
mkdir_p(const char *path, mode_t mode)
{
	char *p = strdup(path);
	int rc = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

static char *
path_join(const char *dir, const char *name)
{
	char *p;

	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static void
ino_enc(unsigned char *p, const struct store_inode *in)
{
	p[0] = INO_REC_V1;
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

static int
ino_dec(struct store_inode *in, const MDB_val *v)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size != INO_REC_LEN || p[0] != INO_REC_V1) {
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

static int
make_root(struct store_txn *t)
{
	struct store_inode root = { 0 }, tmp;
	struct timespec now;
	int rc;

	rc = store_ino_get(t, STORE_ROOT_INO, &tmp);
	if (rc != -ENOENT)
		return rc;
	clock_gettime(CLOCK_REALTIME, &now);
	root.ino = STORE_ROOT_INO;
	root.mode = S_IFDIR | 0755;
	root.uid = getuid();
	root.gid = getgid();
	root.nlink = 2;
	root.atime_sec = root.mtime_sec = root.ctime_sec = now.tv_sec;
	root.atime_nsec = root.mtime_nsec = root.ctime_nsec = now.tv_nsec;
	return store_ino_put(t, &root);
}

static int
open_dbs(struct store *st)
{
	struct store_txn t = { .st = st };
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, 0, &t.txn)) != 0)
		return store__mdb_err(rc, "txn_begin");
	for (int i = 0; i < STORE__DB_N; i++) {
		rc = mdb_dbi_open(t.txn, db_names[i], MDB_CREATE, &st->dbi[i]);
		if (rc != 0) {
			mdb_txn_abort(t.txn);
			return store__mdb_err(rc, db_names[i]);
		}
	}
	if ((rc = make_root(&t)) < 0 || (rc = store__misc_upgrade(&t)) < 0) {
		mdb_txn_abort(t.txn);
		return rc;
	}
	return store__mdb_err(mdb_txn_commit(t.txn), "txn_commit");
}

/* The flusher's pass: syncs when something was committed since the last
 * one. A commit that lands after the exchange sets dirty again and is
 * synced now or by the next pass. */
static int64_t
flush_pass(void *arg, int idx)
{
	struct store *st = arg;

	if (__atomic_exchange_n(&st->dirty, 0, __ATOMIC_ACQ_REL))
		store__mdb_err(mdb_env_sync(st->env, 1), "env_sync");
	return STORE__FLUSH_MS;
}

/* Pages ahead of the last one used that the data file keeps allocated,
 * and the least left before a write transaction is refused. */
#define ALLOC_AHEAD	((uint64_t)16 << 20)
#define ALLOC_RESERVE	((uint64_t)2 << 20)

/* With MDB_WRITEMAP, LMDB sizes data.mdb to the whole map, sparse, and a
 * commit stores into the map. A store into a hole takes a block there and
 * then: on a full disk that is a SIGBUS, not an error. So the file is kept
 * allocated ALLOC_AHEAD beyond its last page (fallocate), and a write
 * transaction that might reach a hole gets -ENOSPC instead; the last
 * ALLOC_RESERVE are left to the deletes that make room. Called with the
 * write lock held (or before any transaction). */
static int
alloc_ahead(struct store *st)
{
	MDB_envinfo info;
	MDB_stat ms;
	uint64_t used, want, floor;
	int fd;

	if (!st->writemap)
		return 0;
	if (mdb_env_info(st->env, &info) != 0 ||
	    mdb_env_stat(st->env, &ms) != 0 ||
	    mdb_env_get_fd(st->env, &fd) != 0)
		return -EIO;
	used = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	want = used + ALLOC_AHEAD;
	floor = used + ALLOC_RESERVE;
	if (want > info.me_mapsize)
		want = info.me_mapsize;
	if (floor > info.me_mapsize)
		floor = info.me_mapsize;
	if (st->alloc_end >= used + ALLOC_AHEAD / 2 || st->alloc_end >= want)
		return 0;
	if (fallocate(fd, 0, 0, (off_t)want) == 0) {
		st->alloc_end = want;
		return 0;
	}
	if (errno == EOPNOTSUPP)
		return -EOPNOTSUPP;
	if (st->alloc_end < floor) {
		/* The reserve itself, when the step did not fit. */
		if (fallocate(fd, 0, 0, (off_t)floor) != 0)
			return errno == EOPNOTSUPP ? -EOPNOTSUPP : -ENOSPC;
		st->alloc_end = floor;
	}
	return 0;
}

/* MDB_WRITEMAP: a commit writes its pages through the map instead of one
 * buffered write per dirty page; the ext4 write path was a third of the
 * mount's CPU on cp -a. Where the file system cannot fallocate (see
 * alloc_ahead), the map stays read-only as LMDB's default. NOTLS: read
 * transactions are used from FUSE worker threads, and a thread may hold
 * one while it begins another. NOSYNC: a commit per metadata operation
 * must not cost an fsync; LMDB stays consistent (a killed process loses
 * nothing, the OS has the pages), and the flusher bounds what a power cut
 * can take to the last second, as ext4's own commit interval does.
 * fsync/sync call store_sync(). */
static int
env_open(struct store *st, const char *mdir, size_t map_bytes)
{
	unsigned flags = MDB_NOTLS | MDB_NOSYNC | MDB_WRITEMAP;
	int rc;

	for (;;) {
		rc = mdb_env_create(&st->env);
		if ((rc = store__mdb_err(rc, "env_create")) < 0)
			return rc;
		mdb_env_set_maxdbs(st->env, 16);
		rc = mdb_env_set_mapsize(st->env, map_bytes);
		if ((rc = store__mdb_err(rc, "env_set_mapsize")) < 0)
			return rc;
		rc = store__mdb_err(mdb_env_open(st->env, mdir, flags, 0600),
		    mdir);
		st->writemap = (flags & MDB_WRITEMAP) != 0;
		if (rc == 0 && (rc = alloc_ahead(st)) == -ENOSPC)
			rc = 0;		/* write transactions will say so */
		if (rc != -EOPNOTSUPP || !st->writemap)
			return rc;
		log_info("store: %s cannot preallocate: no MDB_WRITEMAP", mdir);
		mdb_env_close(st->env);
		st->env = NULL;
		flags &= ~MDB_WRITEMAP;
	}
}

int
store_open(struct store **out, const char *dir, size_t map_bytes)
{
	struct worker_conf flush_conf = { .name = "store-flush",
	    .pass = flush_pass, .first_ms = STORE__FLUSH_MS };
	struct store *st;
	char *mdir = NULL;
	int rc, dead;

	if (map_bytes == 0)
		return -EINVAL;		/* cli/options.c has the default */
	if (!(st = calloc(1, sizeof *st)))
		return -ENOMEM;
	st->dir = strdup(dir);
	st->jdir = path_join(dir, "journal");
	st->sdir = path_join(dir, "spare");
	st->sdir_fd = -1;
	mdir = path_join(dir, "meta");
	if (!st->dir || !st->jdir || !st->sdir || !mdir) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = mkdir_p(mdir, 0700)) < 0 || (rc = mkdir_p(st->jdir, 0700)) < 0) {
		log_error("store: %s: %s", dir, strerror(-rc));
		goto fail;
	}
	if ((rc = store__spare_open(st)) < 0)
		goto fail;
	if ((rc = env_open(st, mdir, map_bytes)) < 0)
		goto fail;
	/* Reader slots of a crashed process would pin old pages forever. */
	if (mdb_reader_check(st->env, &dead) == 0 && dead > 0)
		log_info("store: cleared %d stale reader slots", dead);
	if ((rc = open_dbs(st)) < 0)
		goto fail;
	flush_conf.arg = st;
	if ((rc = worker_start(&st->flusher, &flush_conf)) < 0)
		goto fail;
	free(mdir);
	*out = st;
	return 0;
fail:
	free(mdir);
	store_close(st);
	return rc;
}

void
store_close(struct store *st)
{
	if (!st)
		return;
	worker_stop(st->flusher);
	if (st->env) {
		mdb_env_sync(st->env, 1);
		mdb_env_close(st->env);
	}
	store__spare_close(st);
	free(st->dir);
	free(st->jdir);
	free(st->sdir);
	free(st);
}

int
store_sync(struct store *st)
{
	return store__mdb_err(mdb_env_sync(st->env, 1), "env_sync");
}

int
store_txn_begin(struct store *st, int rdonly, struct store_txn **out)
{
	struct store_txn *t;
	int rc;

	if (!(t = malloc(sizeof *t)))
		return -ENOMEM;
	t->st = st;
	t->gen = 0;
	t->nolog = 0;
	rc = mdb_txn_begin(st->env, NULL, rdonly ? MDB_RDONLY : 0, &t->txn);
	if (rc != 0) {
		free(t);
		return store__mdb_err(rc, "txn_begin");
	}
	if (!rdonly && (rc = alloc_ahead(st)) < 0) {
		mdb_txn_abort(t->txn);
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int
store_txn_commit(struct store_txn *t)
{
	struct store *st = t->st;
	int rc = mdb_txn_commit(t->txn);

	free(t);
	if (rc == 0 && !__atomic_load_n(&st->dirty, __ATOMIC_RELAXED))
		__atomic_store_n(&st->dirty, 1, __ATOMIC_RELEASE);
	return store__mdb_err(rc, "txn_commit");
}

void
store_txn_abort(struct store_txn *t)
{
	mdb_txn_abort(t->txn);
	free(t);
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
	if ((rc = kv_get(t, STORE__DB_INODES, key, sizeof key, &v)) < 0)
		return rc;
	return ino_dec(out, &v);
}

int
store_ino_put(struct store_txn *t, const struct store_inode *in)
{
	unsigned char key[8], val[INO_REC_LEN];

	put_be64(key, in->ino);
	ino_enc(val, in);
	return kv_put(t, STORE__DB_INODES, key, sizeof key, val, sizeof val);
}

int
store_ino_del(struct store_txn *t, uint64_t ino)
{
	unsigned char key[8];
	int rc, gone;

	put_be64(key, ino);
	gone = kv_del(t, STORE__DB_INODES, key, sizeof key);
	if (gone < 0 && gone != -ENOENT)
		return gone;
	rc = kv_del(t, STORE__DB_SYMLINKS, key, sizeof key);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if ((rc = del_prefix(t, STORE__DB_XATTRS, key, sizeof key)) < 0)
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

	if ((rc = ino_dec(&in, v)) < 0)
		return rc;
	return in.nlink == 0 ? o->cb(o->arg, in.ino) : 0;
}

int
store_ino_orphans(struct store_txn *t, int (*cb)(void *arg, uint64_t ino),
    void *arg)
{
	struct orphan_ctx o = { cb, arg };

	return scan(t, STORE__DB_INODES, NULL, 0, NULL, 0, 0, orphan_one, &o);
}

/* ---- directory entries -------------------------------------------------- */

int
store_dirent_get(struct store_txn *t, uint64_t parent, const char *name,
    uint64_t *ino_out)
{
	unsigned char key[8 + STORE_NAME_MAX];
	MDB_val v;
	int klen, rc;

	klen = name_key(key, parent, name, STORE_NAME_MAX, -ENAMETOOLONG);
	if (klen < 0)
		return klen;
	if ((rc = kv_get(t, STORE__DB_DIRENTS, key, klen, &v)) < 0)
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

	klen = name_key(key, parent, name, STORE_NAME_MAX, -ENAMETOOLONG);
	if (klen < 0)
		return klen;
	put_be64(val, ino);
	return kv_put(t, STORE__DB_DIRENTS, key, klen, val, sizeof val);
}

int
store_dirent_del(struct store_txn *t, uint64_t parent, const char *name)
{
	unsigned char key[8 + STORE_NAME_MAX];
	int klen;

	klen = name_key(key, parent, name, STORE_NAME_MAX, -ENAMETOOLONG);
	if (klen < 0)
		return klen;
	return kv_del(t, STORE__DB_DIRENTS, key, klen);
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
	rc = scan(t, STORE__DB_DIRENTS, key, 8, key, 8, 0, stop_at_first, NULL);
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
		klen = name_key(key, parent, after, STORE_NAME_MAX,
		    -ENAMETOOLONG);
		if (klen < 0)
			return klen;
	}
	return scan(t, STORE__DB_DIRENTS, key, 8, key, klen, klen > 8,
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
	return kv_put(t, STORE__DB_SYMLINKS, key, sizeof key, target, n);
}

int
store_symlink_get(struct store_txn *t, uint64_t ino, char *buf, size_t size)
{
	unsigned char key[8];
	MDB_val v;
	int rc;

	put_be64(key, ino);
	if ((rc = kv_get(t, STORE__DB_SYMLINKS, key, sizeof key, &v)) < 0)
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

	if ((klen = name_key(key, ino, name, STORE_NAME_MAX, -ERANGE)) < 0)
		return klen == -EINVAL ? -ERANGE : klen;
	rc = kv_get(t, STORE__DB_XATTRS, key, klen, &v);
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

	if ((klen = name_key(key, ino, name, STORE_NAME_MAX, -ERANGE)) < 0)
		return klen == -EINVAL ? -ERANGE : klen;
	if (len > XATTR_VAL_MAX)
		return -E2BIG;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (flags) {
		rc = kv_get(t, STORE__DB_XATTRS, key, klen, &v);
		if (rc < 0 && rc != -ENOENT)
			return rc;
		if ((flags & XATTR_CREATE) && rc == 0)
			return -EEXIST;
		if ((flags & XATTR_REPLACE) && rc == -ENOENT)
			return -ENODATA;
	}
	return kv_put(t, STORE__DB_XATTRS, key, klen, len ? val : "", len);
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
	rc = scan(t, STORE__DB_XATTRS, key, 8, key, 8, 0, xattr_name, &x);
	if (rc < 0)
		return rc;
	return x.len > INT32_MAX ? -E2BIG : (int)x.len;
}

int
store_xattr_del(struct store_txn *t, uint64_t ino, const char *name)
{
	unsigned char key[8 + STORE_NAME_MAX];
	int klen, rc;

	if ((klen = name_key(key, ino, name, STORE_NAME_MAX, -ERANGE)) < 0)
		return klen == -EINVAL ? -ERANGE : klen;
	rc = kv_del(t, STORE__DB_XATTRS, key, klen);
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

	pair_key(key, ino, bno);
	if ((rc = kv_get(t, STORE__DB_EXTENTS, key, sizeof key, &v)) < 0)
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

	pair_key(key, ino, bno);
	return kv_put(t, STORE__DB_EXTENTS, key, sizeof key, id, CR_ID_BYTES);
}

int
store_extent_del(struct store_txn *t, uint64_t ino, uint64_t bno)
{
	unsigned char key[16];

	pair_key(key, ino, bno);
	return kv_del(t, STORE__DB_EXTENTS, key, sizeof key);
}

/* ---- inline blocks ------------------------------------------------------ */

int
store_inline_get(struct store_txn *t, uint64_t ino, uint64_t bno, void *buf,
    size_t cap, size_t *len)
{
	unsigned char key[16];
	MDB_val v;
	int rc;

	pair_key(key, ino, bno);
	if ((rc = kv_get(t, STORE__DB_INLINE, key, sizeof key, &v)) < 0)
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
	pair_key(key, ino, bno);
	return kv_put(t, STORE__DB_INLINE, key, sizeof key, p, len);
}

int
store_inline_del(struct store_txn *t, uint64_t ino, uint64_t bno)
{
	unsigned char key[16];

	pair_key(key, ino, bno);
	return kv_del(t, STORE__DB_INLINE, key, sizeof key);
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

	pair_key(key, ino, from);
	return scan(t, STORE__DB_EXTENTS, key, 8, key, 16, 0, extent_one, &e);
}

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
	p[76] = b->pad[1];
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
	b->pad[1] = p[76];
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

	if ((rc = kv_get(t, STORE__DB_BLOCKS, id, CR_ID_BYTES, &v)) < 0)
		return rc;
	return blk_dec(out, &v);
}

int
store_block_put(struct store_txn *t, const struct store_block *b)
{
	unsigned char val[BLK_REC_HDR + CR_EC_MAX * BLK_REC_ENTRY];
	size_t n = blk_enc(val, b);
	int rc;

	rc = kv_put(t, STORE__DB_BLOCKS, b->id, CR_ID_BYTES, val, n);
	sodium_memzero(val, sizeof val);	/* held the block key */
	return rc;
}

int
store_block_del(struct store_txn *t, const unsigned char id[CR_ID_BYTES])
{
	return kv_del(t, STORE__DB_BLOCKS, id, CR_ID_BYTES);
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

	return scan(t, STORE__DB_BLOCKS, NULL, 0, NULL, 0, 0, block_one, &bc);
}

int
store_block_iter_after(struct store_txn *t, const unsigned char *after,
    int (*cb)(void *arg, const struct store_block *b), void *arg)
{
	struct block_ctx bc = { cb, arg };

	if (after == NULL)
		return store_block_iter(t, cb, arg);
	return scan(t, STORE__DB_BLOCKS, NULL, 0, after, CR_ID_BYTES, 1,
	    block_one, &bc);
}

static int
db_count(struct store_txn *t, int db, uint64_t *count)
{
	MDB_stat ms;
	int rc;

	if ((rc = mdb_stat(t->txn, dbi(t, db), &ms)) != 0)
		return store__mdb_err(rc, db_names[db]);
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
	if ((rc = kv_put(t, STORE__DB_REBUILD, key, sizeof key, "", 0)) < 0)
		return rc;
	return kv_put(t, STORE__DB_REBUILDX, id, CR_ID_BYTES, val, sizeof val);
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

	rc = scan(t, STORE__DB_REBUILD, NULL, 0, NULL, 0, 0, rq_first_one, &f);
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

	if ((rc = kv_get(t, STORE__DB_REBUILDX, id, CR_ID_BYTES, &v)) < 0)
		return rc;
	if (v.mv_size != 4)
		return -EIO;
	rq_key(key, id, get_be32(v.mv_data));
	if ((rc = kv_del(t, STORE__DB_REBUILD, key, sizeof key)) < 0 &&
	    rc != -ENOENT)
		return rc;
	return kv_del(t, STORE__DB_REBUILDX, id, CR_ID_BYTES);
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

	return scan(t, STORE__DB_REBUILD, NULL, 0, NULL, 0, 0, rq_iter_one, &r);
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
	if (kv_get(t, STORE__DB_DELQ, key, sizeof key, &old) == 0 &&
	    old.mv_size == 12 && get_be64((unsigned char *)old.mv_data + 4) > hold_seq)
		hold_seq = get_be64((unsigned char *)old.mv_data + 4);
	put_be32(val, bytes);
	put_be64(val + 4, hold_seq);
	return kv_put(t, STORE__DB_DELQ, key, sizeof key, val, sizeof val);
}

int
store_delq_del(struct store_txn *t, const unsigned char pk[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES])
{
	unsigned char key[DQ_KEY];

	memcpy(key, pk, CR_PK_BYTES);
	memcpy(key + CR_PK_BYTES, fragid, STORE_FRAGID_BYTES);
	return kv_del(t, STORE__DB_DELQ, key, sizeof key);
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

	return scan(t, STORE__DB_DELQ, NULL, 0, NULL, 0, 0, dq_one, &d);
}

int
store_delq_iter_due(struct store_txn *t, uint64_t seq,
    int (*cb)(void *arg, const unsigned char *pk, const unsigned char *fragid,
    uint32_t bytes), void *arg)
{
	struct dq_ctx d = { cb, arg, 0, 0, seq };

	return scan(t, STORE__DB_DELQ, NULL, 0, NULL, 0, 0, dq_one, &d);
}

int
store_delq_stats(struct store_txn *t, uint64_t *count, uint64_t *bytes)
{
	struct dq_ctx d = { NULL, NULL, 0, 0, UINT64_MAX };
	int rc;

	if ((rc = scan(t, STORE__DB_DELQ, NULL, 0, NULL, 0, 0, dq_one, &d)) < 0)
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

	pair_key(key, ino, bno);
	return kv_put(t, STORE__DB_JRNL, key, sizeof key, "", 0);
}

int
store_jrnl_has(struct store_txn *t, uint64_t ino, uint64_t bno)
{
	unsigned char key[16];
	MDB_val v;
	int rc;

	pair_key(key, ino, bno);
	rc = kv_get(t, STORE__DB_JRNL, key, sizeof key, &v);
	return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

int
store_jrnl_del(struct store_txn *t, uint64_t ino, uint64_t bno)
{
	unsigned char key[16];

	pair_key(key, ino, bno);
	return kv_del(t, STORE__DB_JRNL, key, sizeof key);
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
		return scan(t, STORE__DB_JRNL, NULL, 0, NULL, 0, 0, jrnl_one, &j);
	return scan(t, STORE__DB_JRNL, key, 8, key, 8, 0, jrnl_one, &j);
}

int
store_jrnl_count(struct store_txn *t, uint64_t *count)
{
	return db_count(t, STORE__DB_JRNL, count);
}

/* ---- pinned peers and misc ---------------------------------------------- */

static int
str_key(const char *s)
{
	size_t n = strlen(s);

	if (n == 0)
		return -EINVAL;
	return n > STORE_NAME_MAX ? -ENAMETOOLONG : (int)n;
}

int
store_peer_pin(struct store *st, const char *addr,
    const unsigned char pk[CR_PK_BYTES])
{
	struct store_txn *t;
	MDB_val v;
	int klen, rc;

	if ((klen = str_key(addr)) < 0)
		return klen;
	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	rc = kv_get(t, STORE__DB_PEERS, addr, klen, &v);
	if (rc == 0) {
		int same = v.mv_size == CR_PK_BYTES &&
		    memcmp(v.mv_data, pk, CR_PK_BYTES) == 0;
		store_txn_abort(t);
		return same ? 0 : -EKEYREJECTED;
	}
	if (rc == -ENOENT)
		rc = kv_put(t, STORE__DB_PEERS, addr, klen, pk, CR_PK_BYTES);
	if (rc < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

int
store__misc_ref(struct store_txn *t, const char *name, MDB_val *v)
{
	int klen;

	if ((klen = str_key(name)) < 0)
		return klen;
	return kv_get(t, STORE__DB_MISC, name, klen, v);
}

int
store__misc_del(struct store_txn *t, const char *name)
{
	int klen;

	if ((klen = str_key(name)) < 0)
		return klen;
	return kv_del(t, STORE__DB_MISC, name, klen);
}

int
store_misc_get(struct store_txn *t, const char *name, void *buf, size_t size)
{
	MDB_val v;
	int rc;

	if ((rc = store__misc_ref(t, name, &v)) < 0)
		return rc;
	if (size > 0)
		memcpy(buf, v.mv_data, v.mv_size < size ? v.mv_size : size);
	return v.mv_size > INT32_MAX ? -E2BIG : (int)v.mv_size;
}

int
store_misc_put(struct store_txn *t, const char *name, const void *val,
    size_t len)
{
	int klen;

	if ((klen = str_key(name)) < 0)
		return klen;
	return kv_put(t, STORE__DB_MISC, name, klen, len ? val : "", len);
}
