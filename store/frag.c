/* store/frag.c - the supplier's fragment store.
 *
 * Files: <dir>/<owner hex 64>/<first 2 hex of fragid>/<fragid hex 66>,
 * written as "<fragid hex>.tmp.<random hex>" in the same directory,
 * fsync'd, renamed, directory fsync'd: a name without ".tmp." is always a
 * complete fragment. Accounting: LMDB at <dir>/acct (own env, MDB_NOTLS),
 *   owners: owner[32] -> u64 bytes | u64 fragments           (derived)
 *   frags:  owner[32] | fragid[33] -> u64 size | hash[32] | u64 ino |
 *           u64 mtime ns                                     (all BE)
 * owners is rebuilt from frags at open; frags is reconciled with the files
 * at open (a file whose size, inode or mtime differs from its record is
 * hashed again, so a crash between rename and commit cannot leave a stale
 * hash behind). A put records the hash its owner sent (store.h).
 *
 * Locking: sf->lock serializes write transactions together with the
 * rename/unlink they describe, so the order of file changes and of
 * accounting changes is the same. Writing and reading fragment bytes,
 * hashing and fsync run unlocked, in parallel. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "log.h"
#include "store/store.h"
#include "util.h"

#define OWNER_HEX	(2 * CR_PK_BYTES)		/* 64 */
#define FRAG_HEX	(2 * STORE_FRAGID_BYTES)	/* 66 */
#define KEY_LEN		(CR_PK_BYTES + STORE_FRAGID_BYTES)
#define REC_LEN		(8 + CR_HASH_BYTES + 8 + 8)
#define OWN_LEN		16
#define ACCT_MAP	(1ull << 32)	/* sparse; ~100 bytes per fragment */

struct store_frag {
	int		 dirfd;		/* <dir>, read-only after open */
	uint64_t	 quota;		/* 0 = unlimited */
	MDB_env		*env;
	MDB_dbi		 owners, frags;	/* opened once in open */
	pthread_mutex_t	 lock;		/* see the top of the file */
	uint64_t	 bytes, count;	/* every owner; protected by lock */
};

struct rec {
	uint64_t size;
	unsigned char hash[CR_HASH_BYTES];
	uint64_t ino, mtime_ns;
};

/* Relative names of one fragment. */
struct names {
	char dir[OWNER_HEX + 1 + 2 + 1];		/* owner/xx */
	char file[FRAG_HEX + 1];			/* fragid hex */
	char path[OWNER_HEX + 1 + 2 + 1 + FRAG_HEX + 1];	/* owner/xx/fragid */
};

static int
mdb_errno(int rc, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS:	return 0;
	case MDB_NOTFOUND:	return -ENOENT;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:	return -ENOSPC;
	}
	log_error("frag: %s: %s", what, mdb_strerror(rc));
	return rc > 0 ? -rc : -EIO;
}

static void
make_names(struct names *nm, const unsigned char *owner,
    const unsigned char *fragid)
{
	char oh[OWNER_HEX + 1];

	hex_encode(oh, owner, CR_PK_BYTES);
	hex_encode(nm->file, fragid, STORE_FRAGID_BYTES);
	memcpy(nm->dir, oh, OWNER_HEX);
	nm->dir[OWNER_HEX] = '/';
	memcpy(nm->dir + OWNER_HEX + 1, nm->file, 2);
	nm->dir[OWNER_HEX + 3] = '\0';
	memcpy(nm->path, nm->dir, OWNER_HEX + 3);
	nm->path[OWNER_HEX + 3] = '/';
	memcpy(nm->path + OWNER_HEX + 4, nm->file, FRAG_HEX + 1);
}

static void
make_key(unsigned char key[KEY_LEN], const unsigned char *owner,
    const unsigned char *fragid)
{
	memcpy(key, owner, CR_PK_BYTES);
	memcpy(key + CR_PK_BYTES, fragid, STORE_FRAGID_BYTES);
}

static void
rec_pack(unsigned char out[REC_LEN], const struct rec *r)
{
	put_be64(out, r->size);
	memcpy(out + 8, r->hash, CR_HASH_BYTES);
	put_be64(out + 8 + CR_HASH_BYTES, r->ino);
	put_be64(out + 16 + CR_HASH_BYTES, r->mtime_ns);
}

static int
rec_unpack(struct rec *r, const MDB_val *v)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size != REC_LEN)
		return -EIO;
	r->size = get_be64(p);
	memcpy(r->hash, p + 8, CR_HASH_BYTES);
	r->ino = get_be64(p + 8 + CR_HASH_BYTES);
	r->mtime_ns = get_be64(p + 16 + CR_HASH_BYTES);
	return 0;
}

static void
rec_from_stat(struct rec *r, const struct stat *st)
{
	r->size = (uint64_t)st->st_size;
	r->ino = (uint64_t)st->st_ino;
	r->mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u +
	    (uint64_t)st->st_mtim.tv_nsec;
}

/* 0 with *r, -ENOENT, -errno. */
static int
rec_get(MDB_txn *txn, struct store_frag *sf, const unsigned char *key,
    struct rec *r)
{
	MDB_val k = { KEY_LEN, (void *)key }, v;
	int rc = mdb_errno(mdb_get(txn, sf->frags, &k, &v), "get");

	return rc < 0 ? rc : rec_unpack(r, &v);
}

static int
owner_get(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    uint64_t *bytes, uint64_t *count)
{
	MDB_val k = { CR_PK_BYTES, (void *)owner }, v;
	int rc = mdb_errno(mdb_get(txn, sf->owners, &k, &v), "owner get");

	*bytes = *count = 0;
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (v.mv_size != OWN_LEN)
		return -EIO;
	*bytes = get_be64(v.mv_data);
	*count = get_be64((unsigned char *)v.mv_data + 8);
	return 0;
}

static int
owner_put(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    uint64_t bytes, uint64_t count)
{
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	unsigned char buf[OWN_LEN];
	MDB_val v = { sizeof buf, buf };

	if (count == 0) {
		int rc = mdb_del(txn, sf->owners, &k, NULL);
		return mdb_errno(rc == MDB_NOTFOUND ? 0 : rc, "owner del");
	}
	put_be64(buf, bytes);
	put_be64(buf + 8, count);
	return mdb_errno(mdb_put(txn, sf->owners, &k, &v, 0), "owner put");
}

/* Stages in txn: the fragment's record becomes nr (NULL: removed), the
 * owner's counters follow. *dbytes and *dcount get the change of the
 * totals. */
static int
stage(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    const unsigned char *fragid, const struct rec *nr,
    int64_t *dbytes, int64_t *dcount)
{
	unsigned char key[KEY_LEN], val[REC_LEN];
	MDB_val k = { KEY_LEN, key }, v = { REC_LEN, val };
	uint64_t ob, oc;
	struct rec old;
	bool had;
	int rc;

	make_key(key, owner, fragid);
	rc = rec_get(txn, sf, key, &old);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	had = rc == 0;
	if ((rc = owner_get(txn, sf, owner, &ob, &oc)) < 0)
		return rc;
	*dbytes = (nr ? (int64_t)nr->size : 0) - (had ? (int64_t)old.size : 0);
	*dcount = (nr ? 1 : 0) - (had ? 1 : 0);
	if (nr) {
		rec_pack(val, nr);
		rc = mdb_errno(mdb_put(txn, sf->frags, &k, &v, 0), "put");
	} else if (had) {
		rc = mdb_errno(mdb_del(txn, sf->frags, &k, NULL), "del");
	}
	if (rc < 0)
		return rc;
	return owner_put(txn, sf, owner, ob + (uint64_t)*dbytes,
	    oc + (uint64_t)*dcount);
}

static uint64_t
disk_free(struct store_frag *sf)
{
	struct statvfs vfs;

	if (fstatvfs(sf->dirfd, &vfs) != 0)
		return 0;
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

static int
fsync_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Opens <owner>/<xx>, creating what is missing (and fsyncing the parent
 * of each new directory). Returns an fd or -errno. */
static int
leaf_dir(struct store_frag *sf, const struct names *nm, bool create)
{
	char owner[OWNER_HEX + 1];
	int fd;

	fd = openat(sf->dirfd, nm->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT || !create)
		return fd >= 0 ? fd : -errno;
	memcpy(owner, nm->dir, OWNER_HEX);
	owner[OWNER_HEX] = '\0';
	if (mkdirat(sf->dirfd, owner, 0700) == 0) {
		if (fsync(sf->dirfd) != 0)
			return -errno;
	} else if (errno != EEXIST) {
		return -errno;
	}
	if (mkdirat(sf->dirfd, nm->dir, 0700) == 0) {
		int rc = fsync_at(sf->dirfd, owner);
		if (rc < 0)
			return rc;
	} else if (errno != EEXIST) {
		return -errno;
	}
	fd = openat(sf->dirfd, nm->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* Reads a whole regular file opened as fd into a malloc()'d buffer. */
static int
read_fd(int fd, void **data, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	size_t have = 0, size;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EIO;
	size = (size_t)st.st_size;
	if (!(buf = malloc(size ? size : 1)))
		return -ENOMEM;
	while (have < size) {
		ssize_t r = pread(fd, buf + have, size - have, (off_t)have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int rc = r < 0 ? -errno : -EIO;	/* fragments never shrink */
			free(buf);
			return rc;
		}
		have += (size_t)r;
	}
	*data = buf;
	*len = size;
	return 0;
}

static int
write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes the bytes to a fresh temporary in dfd, fsync'd; fills tmp and
 * the record (hash included by the caller). */
static int
write_tmp(int dfd, const struct names *nm, const void *data, size_t len,
    char *tmp, size_t tmpsz, struct rec *r)
{
	unsigned char rnd[8];
	char rh[17];
	struct stat st;
	int fd, rc;

	randombytes_buf(rnd, sizeof rnd);
	hex_encode(rh, rnd, sizeof rnd);
	snprintf(tmp, tmpsz, "%s.tmp.%s", nm->file, rh);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	/* A supplier lends disk, not memory, and the owner caches what it
	 * reads: the clean pages of a stored fragment are dropped at once.
	 * They go back to the free lists still warm and the next fragment
	 * reuses them. Pages left to age out are handed back to a VM's host
	 * and cost a host fault each when touched again: on this kind of
	 * machine 2.8 s of kernel time per GB written, against 0.25. */
	if (rc == 0)
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (rc == 0 && fstat(fd, &st) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		unlinkat(dfd, tmp, 0);
		return rc;
	}
	rec_from_stat(r, &st);
	return 0;
}

/* Under sf->lock: 1 when the fragment is stored with this size and hash,
 * 0 when not (sets *old_size, 0 when absent), -errno. */
static int
same_stored(struct store_frag *sf, const unsigned char *owner,
    const unsigned char *fragid, const struct rec *nr, uint64_t *old_size)
{
	unsigned char key[KEY_LEN];
	struct rec old;
	MDB_txn *txn;
	int rc;

	*old_size = 0;
	make_key(key, owner, fragid);
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, MDB_RDONLY, &txn), "begin");
	if (rc < 0)
		return rc;
	rc = rec_get(txn, sf, key, &old);
	mdb_txn_abort(txn);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	*old_size = old.size;
	return old.size == nr->size &&
	    sodium_memcmp(old.hash, nr->hash, CR_HASH_BYTES) == 0;
}

static bool
over_quota(struct store_frag *sf, uint64_t old_size, uint64_t len)
{
	return sf->quota && sf->bytes - old_size + len > sf->quota;
}

/* Under sf->lock: renames tmp over the fragment and commits the new
 * record, or neither. */
static int
install(struct store_frag *sf, int dfd, const struct names *nm,
    const char *tmp, const unsigned char *owner, const unsigned char *fragid,
    const struct rec *nr)
{
	int64_t db = 0, dc = 0;
	MDB_txn *txn;
	int rc;

	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		return rc;
	if ((rc = stage(txn, sf, owner, fragid, nr, &db, &dc)) < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if (renameat(dfd, tmp, dfd, nm->file) != 0) {
		rc = -errno;
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = mdb_errno(mdb_txn_commit(txn), "commit")) < 0) {
		/* The new file is in place but not accounted: drop it, and
		 * the record of what it replaced; open reconciles the rest. */
		unlinkat(dfd, nm->file, 0);
		if (mdb_txn_begin(sf->env, NULL, 0, &txn) == 0) {
			if (stage(txn, sf, owner, fragid, NULL, &db, &dc) == 0 &&
			    mdb_txn_commit(txn) == 0) {
				sf->bytes += (uint64_t)db;
				sf->count += (uint64_t)dc;
			} else {
				mdb_txn_abort(txn);
			}
		}
		return rc;
	}
	sf->bytes += (uint64_t)db;
	sf->count += (uint64_t)dc;
	return 0;
}

int
store_frag_put(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], const void *data,
    size_t len, const unsigned char hash[CR_HASH_BYTES])
{
	char tmp[FRAG_HEX + 32];
	struct names nm;
	struct rec nr;
	uint64_t old_size;
	int dfd, rc;

	if ((!data && len) || !hash)
		return -EINVAL;
	memset(&nr, 0, sizeof nr);
	nr.size = len;
	/* The owner's word (see store.h): hashing 1 MiB again here cost as
	 * much CPU as receiving it. */
	memcpy(nr.hash, hash, CR_HASH_BYTES);

	/* Early checks, so a refused put writes nothing. */
	pthread_mutex_lock(&sf->lock);
	rc = same_stored(sf, owner, fragid, &nr, &old_size);
	if (rc == 0 && over_quota(sf, old_size, len))
		rc = -EDQUOT;
	pthread_mutex_unlock(&sf->lock);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (disk_free(sf) < len)
		return -ENOSPC;

	make_names(&nm, owner, fragid);
	if ((dfd = leaf_dir(sf, &nm, true)) < 0)
		return dfd;
	if ((rc = write_tmp(dfd, &nm, data, len, tmp, sizeof tmp, &nr)) < 0)
		goto out;

	/* Again under the lock: a parallel put may have won meanwhile. */
	pthread_mutex_lock(&sf->lock);
	rc = same_stored(sf, owner, fragid, &nr, &old_size);
	if (rc == 0 && over_quota(sf, old_size, len))
		rc = -EDQUOT;
	if (rc == 0)
		rc = install(sf, dfd, &nm, tmp, owner, fragid, &nr);
	else
		unlinkat(dfd, tmp, 0);
	pthread_mutex_unlock(&sf->lock);
	if (rc > 0)
		rc = 0;
	else if (rc == 0 && fsync(dfd) != 0)
		rc = -errno;
out:
	close(dfd);
	return rc;
}

int
store_frag_get(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], void **data, size_t *len)
{
	struct names nm;
	int fd, rc;

	make_names(&nm, owner, fragid);
	/* Renames are atomic: this is the whole old or the whole new file. */
	fd = openat(sf->dirfd, nm.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR || errno == ELOOP ? -ENOENT : -errno;
	rc = read_fd(fd, data, len);
	close(fd);
	return rc;
}

int
store_frag_del(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES])
{
	unsigned char key[KEY_LEN];
	struct names nm;
	struct rec old;
	int64_t db = 0, dc = 0;
	MDB_txn *txn;
	int dfd = -1, rc;

	make_names(&nm, owner, fragid);
	make_key(key, owner, fragid);
	pthread_mutex_lock(&sf->lock);
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		goto unlock;
	if ((rc = rec_get(txn, sf, key, &old)) < 0 ||
	    (rc = stage(txn, sf, owner, fragid, NULL, &db, &dc)) < 0)
		goto abort;
	if ((dfd = leaf_dir(sf, &nm, false)) < 0 && dfd != -ENOENT) {
		rc = dfd;
		goto abort;
	}
	if (dfd >= 0 && unlinkat(dfd, nm.file, 0) != 0 && errno != ENOENT) {
		rc = -errno;
		close(dfd);
		goto abort;
	}
	/* A failed commit leaves a record without a file: open drops it. */
	if ((rc = mdb_errno(mdb_txn_commit(txn), "commit")) == 0) {
		sf->bytes += (uint64_t)db;
		sf->count += (uint64_t)dc;
	}
	pthread_mutex_unlock(&sf->lock);
	if (dfd >= 0) {
		if (rc == 0 && fsync(dfd) != 0)
			rc = -errno;
		close(dfd);
	}
	return rc;
abort:
	mdb_txn_abort(txn);
unlock:
	pthread_mutex_unlock(&sf->lock);
	return rc;
}

int
store_frag_list(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    int (*cb)(void *arg, const unsigned char *fragid, uint64_t size),
    void *arg)
{
	unsigned char start[KEY_LEN];
	MDB_val k = { KEY_LEN, start }, v;
	MDB_cursor *cur;
	MDB_txn *txn;
	struct rec r;
	int rc, op = MDB_SET_RANGE;

	memcpy(start, owner, CR_PK_BYTES);
	memset(start + CR_PK_BYTES, 0, STORE_FRAGID_BYTES);
	/* A read transaction needs no lock (MDB_NOTLS): cb may call us. */
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, MDB_RDONLY, &txn), "begin");
	if (rc < 0)
		return rc;
	if ((rc = mdb_errno(mdb_cursor_open(txn, sf->frags, &cur), "cursor")) < 0)
		goto out;
	for (;;) {
		int mrc = mdb_cursor_get(cur, &k, &v, op);
		op = MDB_NEXT;
		if (mrc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if ((rc = mdb_errno(mrc, "list")) < 0)
			break;
		if (k.mv_size != KEY_LEN ||
		    memcmp(k.mv_data, owner, CR_PK_BYTES) != 0)
			break;
		if ((rc = rec_unpack(&r, &v)) < 0)
			break;
		if ((rc = cb(arg, (unsigned char *)k.mv_data + CR_PK_BYTES,
		    r.size)) != 0)
			break;
	}
	mdb_cursor_close(cur);
out:
	mdb_txn_abort(txn);
	return rc;
}

void
store_frag_usage(struct store_frag *sf, const unsigned char *owner,
    uint64_t *bytes, uint64_t *fragments, uint64_t *quota)
{
	uint64_t b = 0, c = 0;
	MDB_txn *txn;

	if (!owner) {
		pthread_mutex_lock(&sf->lock);
		b = sf->bytes;
		c = sf->count;
		pthread_mutex_unlock(&sf->lock);
	} else if (mdb_txn_begin(sf->env, NULL, MDB_RDONLY, &txn) == 0) {
		if (owner_get(txn, sf, owner, &b, &c) < 0)
			b = c = 0;
		mdb_txn_abort(txn);
	}
	if (bytes)
		*bytes = b;
	if (fragments)
		*fragments = c;
	if (quota)
		*quota = sf->quota;
}

uint64_t
store_frag_avail(struct store_frag *sf)
{
	uint64_t disk = disk_free(sf), left;

	if (!sf->quota)
		return disk;
	pthread_mutex_lock(&sf->lock);
	left = sf->bytes >= sf->quota ? 0 : sf->quota - sf->bytes;
	pthread_mutex_unlock(&sf->lock);
	return left < disk ? left : disk;
}

/* ---- open: sweep temporaries, reconcile accounting with the files -------- */

static bool
is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

static void
hex_decode(unsigned char *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = s[2 * i] <= '9' ? s[2 * i] - '0' : s[2 * i] - 'a' + 10;
		int lo = s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0' :
		    s[2 * i + 1] - 'a' + 10;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
}

/* One fragment file found on disk: make its record match it. */
static int
reconcile_file(MDB_txn *txn, struct store_frag *sf, int dfd,
    const unsigned char *owner, const char *name)
{
	unsigned char fragid[STORE_FRAGID_BYTES], key[KEY_LEN], val[REC_LEN];
	MDB_val k = { KEY_LEN, key }, v = { REC_LEN, val };
	struct rec old, nr;
	struct stat st;
	void *data;
	size_t len;
	int fd, rc;

	hex_decode(fragid, name, STORE_FRAGID_BYTES);
	make_key(key, owner, fragid);
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		log_warn("frag: ignoring %s", name);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	rec_from_stat(&nr, &st);
	rc = rec_get(txn, sf, key, &old);
	if (rc == 0 && old.size == nr.size && old.ino == nr.ino &&
	    old.mtime_ns == nr.mtime_ns) {
		close(fd);
		return 0;
	}
	if (rc < 0 && rc != -ENOENT) {
		close(fd);
		return rc;
	}
	rc = read_fd(fd, &data, &len);
	close(fd);
	if (rc < 0)
		return rc;
	cr_hash(nr.hash, data, len);
	nr.size = len;
	free(data);
	log_info("frag: %s: accounting it again", name);
	rec_pack(val, &nr);
	return mdb_errno(mdb_put(txn, sf->frags, &k, &v, 0), "reconcile put");
}

/* Walks <owner>/<xx>/: removes temporaries, reconciles fragment files. */
static int
sweep_owner(MDB_txn *txn, struct store_frag *sf, const char *oname)
{
	unsigned char owner[CR_PK_BYTES];
	struct dirent *de, *fe;
	int ofd, rc = 0;
	DIR *od;

	hex_decode(owner, oname, CR_PK_BYTES);
	ofd = openat(sf->dirfd, oname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ofd < 0 || !(od = fdopendir(ofd))) {
		if (ofd >= 0)
			close(ofd);
		return -errno;
	}
	while (rc == 0 && (de = readdir(od))) {
		bool removed = false;
		int sfd;
		DIR *sd;

		if (!is_hex(de->d_name, 2))
			continue;
		sfd = openat(ofd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sfd < 0 || !(sd = fdopendir(sfd))) {
			if (sfd >= 0)
				close(sfd);
			continue;
		}
		while (rc == 0 && (fe = readdir(sd))) {
			if (strstr(fe->d_name, ".tmp.")) {
				if (unlinkat(sfd, fe->d_name, 0) == 0)
					removed = true;
				else
					log_warn("frag: cannot remove %s: %s",
					    fe->d_name, strerror(errno));
			} else if (is_hex(fe->d_name, FRAG_HEX) &&
			    memcmp(fe->d_name, de->d_name, 2) == 0) {
				rc = reconcile_file(txn, sf, sfd, owner,
				    fe->d_name);
			}
		}
		if (removed && fsync(sfd) != 0)
			rc = rc ? rc : -errno;
		closedir(sd);
	}
	closedir(od);
	return rc;
}

/* Records without a file are dropped; owners is rebuilt from frags. */
static int
drop_missing_and_sum(MDB_txn *txn, struct store_frag *sf)
{
	unsigned char cur_owner[CR_PK_BYTES];
	uint64_t ob = 0, oc = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	struct names nm;
	struct rec r;
	struct stat st;
	bool have_owner = false;
	int rc, mrc;

	if ((rc = mdb_errno(mdb_drop(txn, sf->owners, 0), "drop owners")) < 0)
		return rc;
	if ((rc = mdb_errno(mdb_cursor_open(txn, sf->frags, &cur), "cursor")) < 0)
		return rc;
	sf->bytes = sf->count = 0;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *key = k.mv_data;

		if (k.mv_size != KEY_LEN || rec_unpack(&r, &v) < 0) {
			log_warn("frag: dropping a malformed record");
			if ((mrc = mdb_cursor_del(cur, 0)) != 0)
				break;
			continue;
		}
		make_names(&nm, key, key + CR_PK_BYTES);
		if (fstatat(sf->dirfd, nm.path, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT && errno != ENOTDIR) {
				rc = -errno;
				break;
			}
			log_info("frag: %s is gone, dropping its record", nm.path);
			if ((mrc = mdb_cursor_del(cur, 0)) != 0)
				break;
			continue;
		}
		if (have_owner && memcmp(cur_owner, key, CR_PK_BYTES) != 0) {
			if ((rc = owner_put(txn, sf, cur_owner, ob, oc)) < 0)
				break;
			ob = oc = 0;
		}
		memcpy(cur_owner, key, CR_PK_BYTES);
		have_owner = true;
		ob += r.size;
		oc++;
		sf->bytes += r.size;
		sf->count++;
	}
	mdb_cursor_close(cur);
	if (rc < 0)
		return rc;
	if (mrc != MDB_NOTFOUND)
		return mdb_errno(mrc, "reconcile");
	return have_owner ? owner_put(txn, sf, cur_owner, ob, oc) : 0;
}

static int
reconcile(struct store_frag *sf)
{
	struct dirent *de;
	MDB_txn *txn;
	DIR *d;
	int fd, rc;

	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		return rc;
	if ((fd = dup(sf->dirfd)) < 0 || !(d = fdopendir(fd))) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		goto abort;
	}
	rewinddir(d);
	while (rc == 0 && (de = readdir(d)))
		if (is_hex(de->d_name, OWNER_HEX))
			rc = sweep_owner(txn, sf, de->d_name);
	closedir(d);
	if (rc == 0)
		rc = drop_missing_and_sum(txn, sf);
	if (rc < 0)
		goto abort;
	return mdb_errno(mdb_txn_commit(txn), "reconcile commit");
abort:
	mdb_txn_abort(txn);
	return rc;
}

static int
acct_open(struct store_frag *sf, const char *dir)
{
	char *path;
	MDB_txn *txn;
	int rc;

	if (asprintf(&path, "%s/acct", dir) < 0)
		return -ENOMEM;
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		free(path);
		return rc;
	}
	rc = mdb_errno(mdb_env_create(&sf->env), "env");
	if (rc == 0)
		rc = mdb_errno(mdb_env_set_maxdbs(sf->env, 2), "maxdbs");
	if (rc == 0)
		rc = mdb_errno(mdb_env_set_mapsize(sf->env, ACCT_MAP), "mapsize");
	if (rc == 0)
		/* NOSYNC: the fragment file itself is fsync'd before the
		 * acknowledgement, and open reconciles the accounting with
		 * the files, so the accounting need not cost a second fsync
		 * per fragment. */
		rc = mdb_errno(mdb_env_open(sf->env, path,
		    MDB_NOTLS | MDB_NOSYNC, 0600), path);
	free(path);
	if (rc < 0)
		return rc;
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		return rc;
	rc = mdb_errno(mdb_dbi_open(txn, "owners", MDB_CREATE, &sf->owners),
	    "owners");
	if (rc == 0)
		rc = mdb_errno(mdb_dbi_open(txn, "frags", MDB_CREATE,
		    &sf->frags), "frags");
	if (rc < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_errno(mdb_txn_commit(txn), "commit");
}

int
store_frag_open(struct store_frag **out, const char *dir, uint64_t quota_bytes)
{
	struct store_frag *sf;
	int rc;

	if ((rc = cr_init()) < 0)
		return rc;
	if (!(sf = calloc(1, sizeof *sf)))
		return -ENOMEM;
	sf->dirfd = -1;
	sf->quota = quota_bytes;
	if (pthread_mutex_init(&sf->lock, NULL) != 0) {
		free(sf);
		return -ENOMEM;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		goto fail;
	}
	sf->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sf->dirfd < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = acct_open(sf, dir)) < 0 || (rc = reconcile(sf)) < 0)
		goto fail;
	log_debug("frag: %s: %" PRIu64 " fragments, %" PRIu64 " bytes", dir,
	    sf->count, sf->bytes);
	*out = sf;
	return 0;
fail:
	log_error("frag: open %s: %s", dir, strerror(-rc));
	store_frag_close(sf);
	return rc;
}

void
store_frag_close(struct store_frag *sf)
{
	if (!sf)
		return;
	if (sf->env) {
		mdb_env_sync(sf->env, 1);
		mdb_env_close(sf->env);
	}
	if (sf->dirfd >= 0)
		close(sf->dirfd);
	pthread_mutex_destroy(&sf->lock);
	free(sf);
}

/* For store/heads.c, which keeps its files under the same directory. */
int
store__frag_dirfd(const struct store_frag *sf)
{
	return sf->dirfd;
}
