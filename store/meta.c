/* store/meta.c - the owner's metadata in one LMDB environment: opening it,
 * transactions, the flusher, and the record helpers that store/fsmeta.c
 * (filesystem records), store/blocks.c (block records and queues) and
 * store/misc.c (named values) share through store/internal.h.
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

const char *const store__db_names[STORE__DB_N] = {
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

MDB_dbi
store__dbi(struct store_txn *t, int db)
{
	return t->st->dbi[db];
}

int
store__kv_get(struct store_txn *t, int db, const void *k, size_t klen, MDB_val *v)
{
	MDB_val key = { klen, (void *)k };

	return store__mdb_err(mdb_get(t->txn, store__dbi(t, db), &key, v), store__db_names[db]);
}

int
store__kv_put(struct store_txn *t, int db, const void *k, size_t klen,
    const void *v, size_t vlen)
{
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	int rc;

	rc = store__mdb_err(mdb_put(t->txn, store__dbi(t, db), &key, &val, 0),
	    store__db_names[db]);
	return rc < 0 ? rc : store__index_log(t, db, k, klen);
}

int
store__kv_del(struct store_txn *t, int db, const void *k, size_t klen)
{
	MDB_val key = { klen, (void *)k };
	int rc;

	rc = store__mdb_err(mdb_del(t->txn, store__dbi(t, db), &key, NULL),
	    store__db_names[db]);
	return rc < 0 ? rc : store__index_log(t, db, k, klen);
}

/* Validates a name and builds u64 prefix | name; returns the key length. */
int
store__name_key(unsigned char *key, uint64_t prefix, const char *name, size_t max,
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

void
store__pair_key(unsigned char key[16], uint64_t a, uint64_t b)
{
	put_be64(key, a);
	put_be64(key + 8, b);
}


/* Visits the records whose key starts with prefix[0..plen), from the first
 * key >= start (or > start when `after`; every record when slen is 0), in
 * key order, until fn returns non-zero (returned as is). After each call
 * the cursor seeks again from a copy of the last key, so fn may change the
 * database within the same transaction. */
int
store__scan(struct store_txn *t, int db, const void *prefix, size_t plen,
    const void *start, size_t slen, int after, store__scan_fn fn, void *ctx)
{
	unsigned char last[KEY_MAX];
	size_t llen = slen;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, ret = 0;

	if (slen > sizeof last)
		return -EINVAL;
	if ((rc = mdb_cursor_open(t->txn, store__dbi(t, db), &c)) != 0)
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
	return rc == MDB_NOTFOUND ? 0 : store__mdb_err(rc, store__db_names[db]);
}

/* Deletes every record whose key starts with prefix[0..plen). */
int
store__del_prefix(struct store_txn *t, int db, const void *prefix, size_t plen)
{
	unsigned char last[KEY_MAX];
	size_t llen;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, lrc = 0;

	if ((rc = mdb_cursor_open(t->txn, store__dbi(t, db), &c)) != 0)
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
	    store__mdb_err(rc, store__db_names[db]);
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
		rc = mdb_dbi_open(t.txn, store__db_names[i], MDB_CREATE, &st->dbi[i]);
		if (rc != 0) {
			mdb_txn_abort(t.txn);
			return store__mdb_err(rc, store__db_names[i]);
		}
	}
	if ((rc = make_root(&t)) < 0 || (rc = store__misc_upgrade(&t)) < 0) {
		mdb_txn_abort(t.txn);
		return rc;
	}
	return store__mdb_err(mdb_txn_commit(t.txn), "txn_commit");
}

/* A sync covers the commits made before it began: the epoch is counted
 * up before mdb_env_sync, and only a sync that succeeded moves
 * synced_epoch (never backwards: store_sync and the flusher overlap). */
static void
synced_to(struct store *st, uint64_t epoch)
{
	uint64_t cur = __atomic_load_n(&st->synced_epoch, __ATOMIC_ACQUIRE);

	while (cur < epoch && !__atomic_compare_exchange_n(&st->synced_epoch,
	    &cur, epoch, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

int
store__sync(struct store *st)
{
	uint64_t e = __atomic_add_fetch(&st->sync_epoch, 1, __ATOMIC_ACQ_REL);
	int rc = store__mdb_err(mdb_env_sync(st->env, 1), "env_sync");

	if (rc == 0)
		synced_to(st, e);
	return rc;
}

/* The flusher's pass: syncs when something was committed since the last
 * one, then recycles the staging files that sync made safe to empty. A
 * commit that lands after the exchange sets dirty again and is synced now
 * or by the next pass. With nothing committed, everything before this
 * pass is on disk already: synced_epoch moves all the same. */
static int64_t
flush_pass(void *arg, int idx)
{
	struct store *st = arg;
	uint64_t e = __atomic_add_fetch(&st->sync_epoch, 1, __ATOMIC_ACQ_REL);

	if (!__atomic_exchange_n(&st->dirty, 0, __ATOMIC_ACQ_REL))
		synced_to(st, e);
	else if (store__mdb_err(mdb_env_sync(st->env, 1), "env_sync") == 0)
		synced_to(st, e);
	else
		__atomic_store_n(&st->dirty, 1, __ATOMIC_RELEASE);
	store__retired_recycle(st);
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
		/* The reserve itself, when the step did not fit (after
		 * emptying the retired staging files, if any). */
		if (fallocate(fd, 0, 0, (off_t)floor) != 0 &&
		    (errno == EOPNOTSUPP || !store__retired_make_room(st) ||
		    fallocate(fd, 0, 0, (off_t)floor) != 0))
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
 * can take to the last five seconds (ext4's own commit interval; every
 * second cost up to half the small creates a long-lived mount makes, as
 * each sync's pages write-fault again). A staging file whose record a
 * commit dropped is emptied only after the sync that makes the commit
 * durable (store/jrnl.c, retired), so a power cut that undoes the commit
 * finds the bytes its record names.
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
	st->rdir = path_join(dir, "retired");
	pthread_mutex_init(&st->retire_lock, NULL);
	mdir = path_join(dir, "meta");
	if (!st->dir || !st->jdir || !st->sdir || !st->rdir || !mdir) {
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
	if ((rc = open_dbs(st)) < 0 || (rc = store__retired_open(st)) < 0)
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
		if (store__sync(st) == 0)
			store__retired_recycle(st);
		mdb_env_close(st->env);
	}
	store__retired_close(st);
	store__spare_close(st);
	pthread_mutex_destroy(&st->retire_lock);
	free(st->dir);
	free(st->jdir);
	free(st->sdir);
	free(st->rdir);
	free(st);
}

/* The retired staging files wait for the flusher: emptying them here
 * would put thousands of truncates on an fsync's latency. */
int
store_sync(struct store *st)
{
	return store__sync(st);
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
	/* Read first: the net loop pins every session that comes up, and
	 * almost always finds the pin made at hiring. A write txn would wait
	 * for LMDB's writer lock behind any long write of another thread,
	 * and the whole network with it. */
	for (int rdonly = 1; rdonly >= 0; rdonly--) {
		if ((rc = store_txn_begin(st, rdonly, &t)) < 0)
			return rc;
		rc = store__kv_get(t, STORE__DB_PEERS, addr, klen, &v);
		if (rc != 0 && rdonly)
			store_txn_abort(t);
		else
			break;
	}
	if (rc == 0) {
		int same = v.mv_size == CR_PK_BYTES &&
		    memcmp(v.mv_data, pk, CR_PK_BYTES) == 0;
		store_txn_abort(t);
		return same ? 0 : -EKEYREJECTED;
	}
	if (rc == -ENOENT)
		rc = store__kv_put(t, STORE__DB_PEERS, addr, klen, pk, CR_PK_BYTES);
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
	return store__kv_get(t, STORE__DB_MISC, name, klen, v);
}

int
store__misc_del(struct store_txn *t, const char *name)
{
	int klen;

	if ((klen = str_key(name)) < 0)
		return klen;
	return store__kv_del(t, STORE__DB_MISC, name, klen);
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
	return store__kv_put(t, STORE__DB_MISC, name, klen, len ? val : "", len);
}
