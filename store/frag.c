/* store/frag.c - the supplier's fragment store.
 *
 * Files: <dir>/<owner hex 64>/<first 2 hex of fragid>/<fragid hex 66>,
 * written as "<fragid hex>.tmp.<random hex>" in the same directory,
 * fsync'd, renamed, directory fsync'd: a name without ".tmp." is always a
 * complete fragment. Accounting: LMDB at <dir>/acct (own env, MDB_NOTLS),
 *   owners: owner[32] -> u64 bytes | u64 fragments | u64 charge
 *                                                            (derived)
 *   frags:  owner[32] | fragid[33] -> u64 size | hash[32] | u64 ino |
 *           u64 mtime ns                                     (all BE)
 *   contact: owner[32] -> u64 heads charge | u64 heads | i64 last
 *           contact (unix s)            (heads part derived at open)
 *   misc:   "quota.default" -> u64: the default quota, fixed at the
 *           first open
 * owners is rebuilt from frags at open; frags is reconciled with the files
 * at open (a file whose size, inode or mtime differs from its record is
 * hashed again, so a crash between rename and commit cannot leave a stale
 * hash behind). A put records the hash its owner sent (store.h).
 *
 * Reservations live in memory only (a restart forgets them, and the
 * owners ask again): a few dozen bytes per owner holding one, at most
 * RESV_MAX owners at a time.
 *
 * Locking: sf->lock serializes write transactions together with the
 * rename/unlink they describe, so the order of file changes and of
 * accounting changes is the same; it also protects the totals, the
 * reservations and the policy. Writing and reading fragment bytes,
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
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "log.h"
#include "store/internal.h"
#include "store/store.h"
#include "util.h"

#define OWNER_HEX	(2 * CR_PK_BYTES)		/* 64 */
#define FRAG_HEX	(2 * STORE_FRAGID_BYTES)	/* 66 */
#define KEY_LEN		(CR_PK_BYTES + STORE_FRAGID_BYTES)
#define REC_LEN		(8 + CR_HASH_BYTES + 8 + 8)
#define OWN_LEN		24
#define CON_LEN		24
#define ACCT_MAP	(1ull << 32)	/* sparse; ~100 bytes per fragment */
#define RESV_MAX	4096		/* owners holding a reservation */
#define TOUCH_SECS	60		/* last contact written at most this often */
#define FRAGS_PER_QUOTA	(16u << 10)	/* default cap: a fragment per 16 KiB */
#define FRAGS_MIN_CAP	4096u

struct resv {
	unsigned char	 owner[CR_PK_BYTES];
	uint64_t	 held;		/* charge held */
	int64_t		 expires;	/* CLOCK_MONOTONIC s */
	int		 stranger;
};

struct store_frag {
	int		 dirfd;		/* <dir>, read-only after open */
	int		 lockfd;	/* <dir>/.lock, flock'd while open */
	uint64_t	 quota;		/* total charge lent (protected by lock) */
	uint64_t	 blk;		/* file system block size */
	uint64_t	 reserve;	/* disk bytes never lent */
	MDB_env		*env;
	MDB_dbi		 owners, frags, contact, misc;	/* opened once in open */
	pthread_mutex_t	 lock;		/* see the top of the file */
	/* Protected by lock: */
	uint64_t	 bytes, count;	/* every owner, as sent */
	uint64_t	 charge;	/* fragments' charge, every owner */
	uint64_t	 heads;		/* heads' charge, every owner */
	uint64_t	 strangers;	/* charge of owners that are no friends */
	uint64_t	 held, strangers_held;	/* reservations */
	struct resv	*resv;
	size_t		 nresv;
	int		 policy_set;	/* else everyone is a friend */
	int		 friends_only;
	uint64_t	 stranger_quota, max_frags;
	unsigned char	(*friends)[CR_PK_BYTES];	/* sorted */
	size_t		 nfriends;
};

/* One owner's records. */
struct oacct {
	uint64_t bytes, count, charge;		/* owners */
	uint64_t hcharge, hn;			/* contact */
	int64_t  contact;
	int	 has_own, has_con;
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

uint64_t
store_frag_cost(const struct store_frag *sf, uint64_t len)
{
	uint64_t blk = sf && sf->blk ? sf->blk : 4096;

	return (len + blk - 1) / blk * blk + STORE_FRAG_REC_COST;
}

static int
owner_get(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    struct oacct *a)
{
	MDB_val k = { CR_PK_BYTES, (void *)owner }, v;
	int rc = mdb_errno(mdb_get(txn, sf->owners, &k, &v), "owner get");

	a->bytes = a->count = a->charge = 0;
	a->has_own = 0;
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (v.mv_size != OWN_LEN)
		return -EIO;
	a->bytes = get_be64(v.mv_data);
	a->count = get_be64((unsigned char *)v.mv_data + 8);
	a->charge = get_be64((unsigned char *)v.mv_data + 16);
	a->has_own = 1;
	return 0;
}

static int
owner_put(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    const struct oacct *a)
{
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	unsigned char buf[OWN_LEN];
	MDB_val v = { sizeof buf, buf };

	if (a->count == 0) {
		int rc = mdb_del(txn, sf->owners, &k, NULL);
		return mdb_errno(rc == MDB_NOTFOUND ? 0 : rc, "owner del");
	}
	put_be64(buf, a->bytes);
	put_be64(buf + 8, a->count);
	put_be64(buf + 16, a->charge);
	return mdb_errno(mdb_put(txn, sf->owners, &k, &v, 0), "owner put");
}

static int
contact_get(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    struct oacct *a)
{
	MDB_val k = { CR_PK_BYTES, (void *)owner }, v;
	int rc = mdb_errno(mdb_get(txn, sf->contact, &k, &v), "contact get");

	a->hcharge = a->hn = 0;
	a->contact = 0;
	a->has_con = 0;
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (v.mv_size != CON_LEN)
		return -EIO;
	a->hcharge = get_be64(v.mv_data);
	a->hn = get_be64((unsigned char *)v.mv_data + 8);
	a->contact = (int64_t)get_be64((unsigned char *)v.mv_data + 16);
	a->has_con = 1;
	return 0;
}

static int
contact_put(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    const struct oacct *a)
{
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	unsigned char buf[CON_LEN];
	MDB_val v = { sizeof buf, buf };

	put_be64(buf, a->hcharge);
	put_be64(buf + 8, a->hn);
	put_be64(buf + 16, (uint64_t)a->contact);
	return mdb_errno(mdb_put(txn, sf->contact, &k, &v, 0), "contact put");
}

static int
acct_get(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    struct oacct *a)
{
	int rc = owner_get(txn, sf, owner, a);

	return rc < 0 ? rc : contact_get(txn, sf, owner, a);
}

/* The same in a read transaction of its own. */
static int
acct_read(struct store_frag *sf, const unsigned char *owner, struct oacct *a)
{
	MDB_txn *txn;
	int rc;

	memset(a, 0, sizeof *a);
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, MDB_RDONLY, &txn), "begin");
	if (rc < 0)
		return rc;
	rc = acct_get(txn, sf, owner, a);
	mdb_txn_abort(txn);
	return rc;
}

/* ---- the policy (under sf->lock) ---------------------------------------- */

static int
pk_cmp(const void *a, const void *b)
{
	return memcmp(a, b, CR_PK_BYTES);
}

static int
is_friend(const struct store_frag *sf, const unsigned char *owner)
{
	if (!sf->policy_set)
		return 1;
	return sf->nfriends && bsearch(owner, sf->friends, sf->nfriends,
	    CR_PK_BYTES, pk_cmp) != NULL;
}

static uint64_t
owner_quota(const struct store_frag *sf, int friend)
{
	if (friend || sf->stranger_quota > sf->quota)
		return sf->quota;
	return sf->stranger_quota;
}

static uint64_t
owner_max_frags(const struct store_frag *sf, int friend)
{
	uint64_t q = owner_quota(sf, friend) / FRAGS_PER_QUOTA;

	if (sf->max_frags)
		return sf->max_frags;
	return q > FRAGS_MIN_CAP ? q : FRAGS_MIN_CAP;
}

static int64_t
mono_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* Drops expired reservations. */
static void
resv_gc(struct store_frag *sf)
{
	int64_t now = mono_secs();

	for (size_t i = 0; i < sf->nresv; ) {
		struct resv *r = &sf->resv[i];

		if (r->expires > now && r->held > 0) {
			i++;
			continue;
		}
		sf->held -= r->held;
		if (r->stranger)
			sf->strangers_held -= r->held;
		sf->resv[i] = sf->resv[--sf->nresv];
	}
}

static struct resv *
resv_find(struct store_frag *sf, const unsigned char *owner)
{
	for (size_t i = 0; i < sf->nresv; i++)
		if (memcmp(sf->resv[i].owner, owner, CR_PK_BYTES) == 0)
			return &sf->resv[i];
	return NULL;
}

/* Moves up to n of owner's reservation into its charge. */
static void
resv_take(struct store_frag *sf, const unsigned char *owner, uint64_t n)
{
	struct resv *r = resv_find(sf, owner);

	if (!r)
		return;
	if (n > r->held)
		n = r->held;
	r->held -= n;
	sf->held -= n;
	if (r->stranger)
		sf->strangers_held -= n;
}

static uint64_t
disk_free(struct store_frag *sf)
{
	struct statvfs vfs;

	if (fstatvfs(sf->dirfd, &vfs) != 0)
		return 0;
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

static uint64_t
room_min(uint64_t lim, uint64_t have, uint64_t cap, int *why, int reason)
{
	uint64_t v = have >= cap ? 0 : cap - have;

	if (v < lim) {
		*why = reason;
		return v;
	}
	return lim;
}

/* What owner (records a, holding held_o) may add beyond its reservation
 * now; *why the error of the binding limit. -EACCES and 0 when it is not
 * admitted. */
static uint64_t
room_left(struct store_frag *sf, const unsigned char *owner,
    const struct oacct *a, uint64_t held_o, int *why)
{
	int friend = is_friend(sf, owner);
	uint64_t lim = UINT64_MAX;

	if (!friend && sf->friends_only) {
		*why = -EACCES;
		return 0;
	}
	*why = -EDQUOT;
	lim = room_min(lim, a->charge + a->hcharge + held_o,
	    owner_quota(sf, friend), why, -EDQUOT);
	lim = room_min(lim, sf->charge + sf->heads + sf->held, sf->quota, why,
	    -ENOSPC);
	if (!friend && sf->nfriends)
		lim = room_min(lim, sf->strangers + sf->strangers_held,
		    sf->quota / 2, why, -ENOSPC);
	lim = room_min(lim, sf->reserve + sf->held, disk_free(sf), why,
	    -ENOSPC);
	return lim;
}

/* 0 when owner may add `add` to its charge (its reservation first) and
 * nfrag fragments; else -EACCES, -EDQUOT or -ENOSPC. */
static int
room_check(struct store_frag *sf, const unsigned char *owner,
    const struct oacct *a, uint64_t add, uint64_t nfrag)
{
	struct resv *r;
	uint64_t held_o, lim;
	int why, friend = is_friend(sf, owner);

	resv_gc(sf);
	r = resv_find(sf, owner);
	held_o = r ? r->held : 0;
	lim = room_left(sf, owner, a, held_o, &why);
	if (why == -EACCES)
		return why;
	if (nfrag && a->count + nfrag > owner_max_frags(sf, friend))
		return -EDQUOT;
	return add <= held_o || add - held_o <= lim ? 0 : why;
}

/* Charge changes of owner in the totals. */
static void
totals_add(struct store_frag *sf, const unsigned char *owner, int64_t dcharge,
    int64_t dheads)
{
	sf->charge += (uint64_t)dcharge;
	sf->heads += (uint64_t)dheads;
	if (!is_friend(sf, owner))
		sf->strangers += (uint64_t)(dcharge + dheads);
}

/* Stages in txn: the fragment's record becomes nr (NULL: removed), the
 * owner's counters follow. *dbytes, *dcount and *dcharge get the change
 * of the totals. */
static int
stage(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    const unsigned char *fragid, const struct rec *nr,
    int64_t *dbytes, int64_t *dcount, int64_t *dcharge)
{
	unsigned char key[KEY_LEN], val[REC_LEN];
	MDB_val k = { KEY_LEN, key }, v = { REC_LEN, val };
	struct oacct a;
	struct rec old;
	bool had;
	int rc;

	make_key(key, owner, fragid);
	rc = rec_get(txn, sf, key, &old);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	had = rc == 0;
	if ((rc = owner_get(txn, sf, owner, &a)) < 0)
		return rc;
	*dbytes = (nr ? (int64_t)nr->size : 0) - (had ? (int64_t)old.size : 0);
	*dcount = (nr ? 1 : 0) - (had ? 1 : 0);
	*dcharge = (nr ? (int64_t)store_frag_cost(sf, nr->size) : 0) -
	    (had ? (int64_t)store_frag_cost(sf, old.size) : 0);
	if (nr) {
		rec_pack(val, nr);
		rc = mdb_errno(mdb_put(txn, sf->frags, &k, &v, 0), "put");
	} else if (had) {
		rc = mdb_errno(mdb_del(txn, sf->frags, &k, NULL), "del");
	}
	if (rc < 0)
		return rc;
	a.bytes += (uint64_t)*dbytes;
	a.count += (uint64_t)*dcount;
	a.charge += (uint64_t)*dcharge;
	return owner_put(txn, sf, owner, &a);
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
 * 0 when it may be put (its charge fits the owner's account: *add gets
 * it, beyond the fragment it replaces), -errno (-EACCES, -EDQUOT,
 * -ENOSPC: see store_frag_put). */
static int
put_check(struct store_frag *sf, const unsigned char *owner,
    const unsigned char *fragid, const struct rec *nr, uint64_t *add)
{
	unsigned char key[KEY_LEN];
	uint64_t newc = store_frag_cost(sf, nr->size), oldc = 0;
	struct oacct a;
	struct rec old;
	MDB_txn *txn;
	bool had = false;
	int rc;

	make_key(key, owner, fragid);
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, MDB_RDONLY, &txn), "begin");
	if (rc < 0)
		return rc;
	rc = rec_get(txn, sf, key, &old);
	if (rc == 0 || rc == -ENOENT) {
		had = rc == 0;
		rc = acct_get(txn, sf, owner, &a);
	}
	mdb_txn_abort(txn);
	if (rc < 0)
		return rc;
	if (had && old.size == nr->size &&
	    sodium_memcmp(old.hash, nr->hash, CR_HASH_BYTES) == 0)
		return 1;
	if (had)
		oldc = store_frag_cost(sf, old.size);
	*add = newc > oldc ? newc - oldc : 0;
	return room_check(sf, owner, &a, *add, had ? 0 : 1);
}

/* Under sf->lock: renames tmp over the fragment and commits the new
 * record, or neither. */
static int
install(struct store_frag *sf, int dfd, const struct names *nm,
    const char *tmp, const unsigned char *owner, const unsigned char *fragid,
    const struct rec *nr)
{
	int64_t db = 0, dc = 0, dk = 0;
	MDB_txn *txn;
	int rc;

	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		return rc;
	if ((rc = stage(txn, sf, owner, fragid, nr, &db, &dc, &dk)) < 0) {
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
			if (stage(txn, sf, owner, fragid, NULL, &db, &dc,
			    &dk) == 0 && mdb_txn_commit(txn) == 0) {
				sf->bytes += (uint64_t)db;
				sf->count += (uint64_t)dc;
				totals_add(sf, owner, dk, 0);
			} else {
				mdb_txn_abort(txn);
			}
		}
		return rc;
	}
	sf->bytes += (uint64_t)db;
	sf->count += (uint64_t)dc;
	totals_add(sf, owner, dk, 0);
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
	uint64_t add = 0;
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
	rc = put_check(sf, owner, fragid, &nr, &add);
	pthread_mutex_unlock(&sf->lock);
	if (rc != 0)
		return rc < 0 ? rc : 0;

	make_names(&nm, owner, fragid);
	if ((dfd = leaf_dir(sf, &nm, true)) < 0)
		return dfd;
	if ((rc = write_tmp(dfd, &nm, data, len, tmp, sizeof tmp, &nr)) < 0)
		goto out;

	/* Again under the lock: a parallel put may have won meanwhile. */
	pthread_mutex_lock(&sf->lock);
	rc = put_check(sf, owner, fragid, &nr, &add);
	if (rc == 0)
		rc = install(sf, dfd, &nm, tmp, owner, fragid, &nr);
	else
		unlinkat(dfd, tmp, 0);
	if (rc == 0)
		resv_take(sf, owner, add);
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
store_frag_reserve(struct store_frag *sf,
    const unsigned char owner[CR_PK_BYTES], uint32_t size, uint32_t count,
    uint32_t *granted, uint64_t *left)
{
	uint64_t per = store_frag_cost(sf, size), lim, n, held_o, cap;
	struct oacct a;
	struct resv *r;
	int why, rc, friend;

	if (size == 0 || count == 0)
		return -EINVAL;
	if ((rc = acct_read(sf, owner, &a)) < 0)
		return rc;
	pthread_mutex_lock(&sf->lock);
	resv_gc(sf);
	friend = is_friend(sf, owner);
	r = resv_find(sf, owner);
	held_o = r ? r->held : 0;
	lim = room_left(sf, owner, &a, held_o, &why);
	n = (held_o + lim) / per;
	cap = owner_max_frags(sf, friend);
	cap = a.count >= cap ? 0 : cap - a.count;
	if (cap < n) {
		n = cap;
		why = why == -EACCES ? why : -EDQUOT;
	}
	if (n > count)
		n = count;
	if (n == 0 || why == -EACCES) {
		pthread_mutex_unlock(&sf->lock);
		return why;
	}
	if (!r) {
		if (sf->nresv >= RESV_MAX) {
			pthread_mutex_unlock(&sf->lock);
			return -ENOSPC;	/* that many owners at once: busy */
		}
		if (!sf->resv && !(sf->resv = calloc(RESV_MAX, sizeof *r))) {
			pthread_mutex_unlock(&sf->lock);
			return -ENOMEM;
		}
		r = &sf->resv[sf->nresv++];
		memset(r, 0, sizeof *r);
		memcpy(r->owner, owner, CR_PK_BYTES);
		r->stranger = !friend;
	}
	/* The owner holds at least n fragments' worth now: requests that
	 * cross (several uploads asking at once) share one grant rather
	 * than refuse each other. */
	if (r->held < n * per) {
		uint64_t add = n * per - r->held;

		r->held += add;
		sf->held += add;
		if (r->stranger)
			sf->strangers_held += add;
		lim -= add;
	}
	r->expires = mono_secs() + STORE_FRAG_RESERVE_SECS;
	*granted = (uint32_t)n;
	if (left)
		*left = r->held + lim;
	pthread_mutex_unlock(&sf->lock);
	return 0;
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
	int64_t db = 0, dc = 0, dk = 0;
	MDB_txn *txn;
	int dfd = -1, rc;

	make_names(&nm, owner, fragid);
	make_key(key, owner, fragid);
	pthread_mutex_lock(&sf->lock);
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		goto unlock;
	if ((rc = rec_get(txn, sf, key, &old)) < 0 ||
	    (rc = stage(txn, sf, owner, fragid, NULL, &db, &dc, &dk)) < 0)
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
		totals_add(sf, owner, dk, 0);
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
	struct oacct a;

	if (!owner) {
		pthread_mutex_lock(&sf->lock);
		b = sf->bytes;
		c = sf->count;
		pthread_mutex_unlock(&sf->lock);
	} else if (acct_read(sf, owner, &a) == 0) {
		b = a.bytes;
		c = a.count;
	}
	if (bytes)
		*bytes = b;
	if (fragments)
		*fragments = c;
	if (quota) {
		pthread_mutex_lock(&sf->lock);
		*quota = sf->quota;
		pthread_mutex_unlock(&sf->lock);
	}
}

uint64_t
store_frag_avail(struct store_frag *sf)
{
	uint64_t lim = UINT64_MAX;
	int why;

	pthread_mutex_lock(&sf->lock);
	resv_gc(sf);
	lim = room_min(lim, sf->charge + sf->heads + sf->held, sf->quota,
	    &why, 0);
	lim = room_min(lim, sf->reserve + sf->held, disk_free(sf), &why, 0);
	pthread_mutex_unlock(&sf->lock);
	return lim;
}

/* Fills out from the records a (under sf->lock, policy applied). */
static void
acct_fill(struct store_frag *sf, const unsigned char *owner,
    const struct oacct *a, struct store_frag_acct *out)
{
	struct resv *r;
	uint64_t held_o, lim;
	int why;

	memset(out, 0, sizeof *out);
	memcpy(out->owner, owner, CR_PK_BYTES);
	out->bytes = a->bytes;
	out->fragments = a->count;
	out->heads = a->hn;
	out->charged = a->charge + a->hcharge;
	out->last_contact = a->contact;
	resv_gc(sf);
	r = resv_find(sf, owner);
	held_o = r ? r->held : 0;
	out->reserved = held_o;
	out->friend = is_friend(sf, owner);
	out->admitted = out->friend || !sf->friends_only;
	out->quota = owner_quota(sf, out->friend);
	lim = room_left(sf, owner, a, held_o, &why);
	out->left = held_o + lim;
}

void
store_frag_account(struct store_frag *sf, const unsigned char *owner,
    struct store_frag_acct *out)
{
	struct oacct a;

	if (acct_read(sf, owner, &a) < 0)
		memset(&a, 0, sizeof a);
	pthread_mutex_lock(&sf->lock);
	acct_fill(sf, owner, &a, out);
	pthread_mutex_unlock(&sf->lock);
}

void
store_frag_touch(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES])
{
	int64_t now = (int64_t)time(NULL);
	struct oacct a;
	MDB_txn *txn;

	if (acct_read(sf, owner, &a) < 0 || (!a.has_own && !a.has_con) ||
	    (a.contact <= now && now - a.contact < TOUCH_SECS))
		return;
	pthread_mutex_lock(&sf->lock);
	if (mdb_txn_begin(sf->env, NULL, 0, &txn) == 0) {
		if (acct_get(txn, sf, owner, &a) == 0 &&
		    (a.has_own || a.has_con)) {
			a.contact = now;
			if (contact_put(txn, sf, owner, &a) == 0 &&
			    mdb_txn_commit(txn) == 0)
				txn = NULL;
		}
		if (txn)
			mdb_txn_abort(txn);
	}
	pthread_mutex_unlock(&sf->lock);
}

/* Walks owners and contact together, in key order (both are keyed by
 * the owner), calling cb with each owner's records. */
static int
walk_accounts(MDB_env *env, MDB_dbi owners, MDB_dbi contact,
    int (*cb)(void *arg, const unsigned char *owner, const struct oacct *a),
    void *arg)
{
	MDB_cursor *co = NULL, *cc = NULL;
	MDB_val ko, vo, kc, vc;
	MDB_txn *txn;
	int ro, rcc, rc;

	rc = mdb_errno(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "begin");
	if (rc < 0)
		return rc;
	if ((rc = mdb_errno(mdb_cursor_open(txn, owners, &co), "cursor")) < 0 ||
	    (rc = mdb_errno(mdb_cursor_open(txn, contact, &cc), "cursor")) < 0)
		goto out;
	ro = mdb_cursor_get(co, &ko, &vo, MDB_FIRST);
	rcc = mdb_cursor_get(cc, &kc, &vc, MDB_FIRST);
	while (rc == 0 && (ro == 0 || rcc == 0)) {
		struct oacct a;
		const unsigned char *owner;
		int c;

		memset(&a, 0, sizeof a);
		if (ro == 0 && rcc == 0)
			c = memcmp(ko.mv_data, kc.mv_data, CR_PK_BYTES);
		else
			c = ro == 0 ? -1 : 1;
		if ((ro == 0 && ko.mv_size != CR_PK_BYTES) ||
		    (rcc == 0 && kc.mv_size != CR_PK_BYTES)) {
			rc = -EIO;
			break;
		}
		owner = c <= 0 ? ko.mv_data : kc.mv_data;
		if (c <= 0 && vo.mv_size == OWN_LEN) {
			a.bytes = get_be64(vo.mv_data);
			a.count = get_be64((unsigned char *)vo.mv_data + 8);
			a.charge = get_be64((unsigned char *)vo.mv_data + 16);
			a.has_own = 1;
		}
		if (c >= 0 && vc.mv_size == CON_LEN) {
			a.hcharge = get_be64(vc.mv_data);
			a.hn = get_be64((unsigned char *)vc.mv_data + 8);
			a.contact = (int64_t)get_be64(
			    (unsigned char *)vc.mv_data + 16);
			a.has_con = 1;
		}
		rc = cb(arg, owner, &a);
		if (c <= 0)
			ro = mdb_cursor_get(co, &ko, &vo, MDB_NEXT);
		if (c >= 0)
			rcc = mdb_cursor_get(cc, &kc, &vc, MDB_NEXT);
	}
out:
	if (cc)
		mdb_cursor_close(cc);
	if (co)
		mdb_cursor_close(co);
	mdb_txn_abort(txn);
	return rc;
}

struct accts_arg {
	struct store_frag *sf;
	int (*cb)(void *arg, const struct store_frag_acct *a);
	void *arg;
};

static int
accts_cb(void *arg, const unsigned char *owner, const struct oacct *a)
{
	struct accts_arg *x = arg;
	struct store_frag_acct out;

	pthread_mutex_lock(&x->sf->lock);
	acct_fill(x->sf, owner, a, &out);
	pthread_mutex_unlock(&x->sf->lock);
	return x->cb(x->arg, &out);
}

static int acct_env_open(struct store_frag *sf, const char *dir, int rdonly);
static int policy_load(struct store_frag *sf);
static int recount(struct store_frag *sf);

int
store_frag_accounts(struct store_frag *sf, const char *dir,
    int (*cb)(void *arg, const struct store_frag_acct *a), void *arg)
{
	struct store_frag *tmp;
	struct accts_arg x = { .sf = sf, .cb = cb, .arg = arg };
	int rc;

	if (sf)
		return walk_accounts(sf->env, sf->owners, sf->contact,
		    accts_cb, &x);
	/* Another process may serve the store: read its LMDB and the policy
	 * it saved, change nothing (no reconcile, no lock). Reservations
	 * live in the server's memory: not counted here. */
	if (!(tmp = calloc(1, sizeof *tmp)))
		return -ENOMEM;
	tmp->lockfd = -1;
	pthread_mutex_init(&tmp->lock, NULL);
	tmp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = tmp->dirfd < 0 ? -errno : acct_env_open(tmp, dir, 1);
	if (rc == 0)
		rc = policy_load(tmp);
	if (rc == 0) {
		pthread_mutex_lock(&tmp->lock);
		rc = recount(tmp);
		pthread_mutex_unlock(&tmp->lock);
	}
	if (rc == 0) {
		x.sf = tmp;
		rc = walk_accounts(tmp->env, tmp->owners, tmp->contact,
		    accts_cb, &x);
	}
	if (tmp->env) {
		mdb_env_close(tmp->env);
		tmp->env = NULL;
	}
	store_frag_close(tmp);
	return rc;
}

/* ---- evict ---------------------------------------------------------------- */

struct ids {
	unsigned char (*id)[STORE_FRAGID_BYTES];
	size_t n, cap;
};

static int
ids_cb(void *arg, const unsigned char *fragid, uint64_t size)
{
	struct ids *x = arg;

	(void)size;
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 256;
		void *p = realloc(x->id, cap * sizeof *x->id);

		if (!p)
			return -ENOMEM;
		x->id = p;
		x->cap = cap;
	}
	memcpy(x->id[x->n++], fragid, STORE_FRAGID_BYTES);
	return 0;
}

/* Removes the files of dir (relative to dfd; no subdirectories expected
 * but the leaf ones of fragments, already emptied) and dir itself. */
static void
remove_dir(int dfd, const char *dir)
{
	struct dirent *de;
	DIR *d;
	int fd = openat(dfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);

	if (fd < 0)
		return;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    unlinkat(fd, de->d_name, 0) != 0 && errno == EISDIR)
			remove_dir(fd, de->d_name);
	closedir(d);
	unlinkat(dfd, dir, AT_REMOVEDIR);
}

int
store_frag_evict(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    uint64_t *freed)
{
	struct ids x = { 0 };
	struct oacct a;
	char oh[OWNER_HEX + 1];
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	MDB_txn *txn;
	int rc;

	if ((rc = acct_read(sf, owner, &a)) < 0)
		return rc;
	if ((rc = store_frag_list(sf, owner, ids_cb, &x)) < 0)
		goto out;
	for (size_t i = 0; i < x.n; i++)
		if ((rc = store_frag_del(sf, owner, x.id[i])) < 0 &&
		    rc != -ENOENT)
			goto out;
	hex_encode(oh, owner, CR_PK_BYTES);
	pthread_mutex_lock(&sf->lock);
	remove_dir(sf->dirfd, oh);
	(void)fsync(sf->dirfd);
	totals_add(sf, owner, 0, -(int64_t)a.hcharge);
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc == 0) {
		int r = mdb_del(txn, sf->contact, &k, NULL);
		rc = mdb_errno(r == MDB_NOTFOUND ? 0 : r, "evict");
		if (rc == 0)
			rc = mdb_errno(mdb_txn_commit(txn), "commit");
		else
			mdb_txn_abort(txn);
	}
	resv_gc(sf);
	resv_take(sf, owner, UINT64_MAX);
	pthread_mutex_unlock(&sf->lock);
	if (rc == 0) {
		log_info("frag: evicted %s: %" PRIu64 " fragments, %" PRIu64
		    " heads", oh, a.count, a.hn);
		if (freed)
			*freed = a.charge + a.hcharge;
	}
out:
	free(x.id);
	return rc;
}

static bool is_hex(const char *s, size_t n);
static void hex_decode(unsigned char *out, const char *s, size_t n);

int
store_frag_evict_pending(struct store_frag *sf)
{
	unsigned char owner[CR_PK_BYTES];
	struct dirent *de;
	DIR *d;
	int fd, done = 0;

	fd = openat(sf->dirfd, "evict", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d))) {
		if (!is_hex(de->d_name, OWNER_HEX))
			continue;
		hex_decode(owner, de->d_name, CR_PK_BYTES);
		if (store_frag_evict(sf, owner, NULL) == 0)
			done++;
		unlinkat(fd, de->d_name, 0);
	}
	closedir(d);
	return done;
}

int
store_frag_evict_request(const char *dir,
    const unsigned char owner[CR_PK_BYTES], long *pid)
{
	char *path, oh[OWNER_HEX + 1], buf[32];
	ssize_t n;
	int fd, rc = 0;

	hex_encode(oh, owner, CR_PK_BYTES);
	if (asprintf(&path, "%s/evict", dir) < 0)
		return -ENOMEM;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		rc = -errno;
	free(path);
	if (rc < 0)
		return rc;
	if (asprintf(&path, "%s/evict/%s", dir, oh) < 0)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0)
		return -errno;
	close(fd);
	if (asprintf(&path, "%s/.lock", dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return -ENOENT;
	n = pread(fd, buf, sizeof buf - 1, 0);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	buf[n] = '\0';
	*pid = strtol(buf, NULL, 10);
	return *pid > 0 ? 0 : -ENOENT;
}

/* ---- policy --------------------------------------------------------------- */

static int
recount_cb(void *arg, const unsigned char *owner, const struct oacct *a)
{
	struct store_frag *sf = arg;

	sf->charge += a->charge;
	sf->heads += a->hcharge;
	if (!is_friend(sf, owner))
		sf->strangers += a->charge + a->hcharge;
	return 0;
}

/* Under sf->lock: the charges' totals from the records. */
static int
recount(struct store_frag *sf)
{
	sf->charge = sf->heads = sf->strangers = 0;
	return walk_accounts(sf->env, sf->owners, sf->contact, recount_cb, sf);
}

/* The policy in misc "policy", for `accounts` read by another process:
 *   u8 flags (1 friends only, 2 a policy is set) | u64 quota |
 *   u64 stranger quota | u64 max fragments |
 *   u64 reserve | friends' keys (32 bytes each)                   (BE) */
#define POL_FIXED	(1 + 4 * 8)

static int
policy_save(struct store_frag *sf)
{
	static const char key[] = "policy";
	MDB_val k = { sizeof key - 1, (void *)key }, v;
	unsigned char *buf;
	MDB_txn *txn;
	int rc;

	v.mv_size = POL_FIXED + sf->nfriends * CR_PK_BYTES;
	if (!(buf = malloc(v.mv_size)))
		return -ENOMEM;
	buf[0] = (unsigned char)((sf->friends_only ? 1 : 0) |
	    (sf->policy_set ? 2 : 0));
	put_be64(buf + 1, sf->quota);
	put_be64(buf + 9, sf->stranger_quota);
	put_be64(buf + 17, sf->max_frags);
	put_be64(buf + 25, sf->reserve);
	if (sf->nfriends)
		memcpy(buf + POL_FIXED, sf->friends,
		    sf->nfriends * CR_PK_BYTES);
	v.mv_data = buf;
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc == 0) {
		rc = mdb_errno(mdb_put(txn, sf->misc, &k, &v, 0), "policy");
		if (rc == 0)
			rc = mdb_errno(mdb_txn_commit(txn), "commit");
		else
			mdb_txn_abort(txn);
	}
	free(buf);
	return rc;
}

/* For a store read from afar: the policy its server saved, the block
 * size of its disk. */
static int
policy_load(struct store_frag *sf)
{
	static const char key[] = "policy";
	MDB_val k = { sizeof key - 1, (void *)key }, v;
	const unsigned char *p;
	struct statvfs vfs;
	MDB_txn *txn;
	size_t n;
	int rc;

	sf->blk = fstatvfs(sf->dirfd, &vfs) == 0 && vfs.f_bsize >= 512 &&
	    vfs.f_bsize <= (1u << 20) ? vfs.f_bsize : 4096;
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, MDB_RDONLY, &txn), "begin");
	if (rc < 0)
		return rc;
	rc = mdb_get(txn, sf->misc, &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && (v.mv_size < POL_FIXED ||
	    (v.mv_size - POL_FIXED) % CR_PK_BYTES))) {
		mdb_txn_abort(txn);
		return 0;	/* never served since accounts began: no quota */
	}
	if ((rc = mdb_errno(rc, "policy")) < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	p = v.mv_data;
	n = (v.mv_size - POL_FIXED) / CR_PK_BYTES;
	sf->policy_set = (p[0] & 2) != 0;
	sf->friends_only = p[0] & 1;
	sf->quota = get_be64(p + 1);
	sf->stranger_quota = get_be64(p + 9);
	sf->max_frags = get_be64(p + 17);
	sf->reserve = get_be64(p + 25);
	if (n && !(sf->friends = malloc(n * CR_PK_BYTES)))
		rc = -ENOMEM;
	else if (n)
		memcpy(sf->friends, p + POL_FIXED, n * CR_PK_BYTES);
	sf->nfriends = rc == 0 ? n : 0;
	mdb_txn_abort(txn);
	return rc;
}

int
store_frag_set_policy(struct store_frag *sf, const struct store_frag_policy *p)
{
	unsigned char (*f)[CR_PK_BYTES] = NULL;
	int rc;

	if (p && p->nfriends) {
		if (!(f = malloc(p->nfriends * sizeof *f)))
			return -ENOMEM;
		memcpy(f, p->friends, p->nfriends * sizeof *f);
		qsort(f, p->nfriends, sizeof *f, pk_cmp);
	}
	pthread_mutex_lock(&sf->lock);
	free(sf->friends);
	sf->friends = f;
	sf->nfriends = p ? p->nfriends : 0;
	sf->policy_set = p != NULL;
	sf->friends_only = p ? p->friends_only : 0;
	sf->stranger_quota = p && p->stranger_quota ? p->stranger_quota :
	    STORE_FRAG_STRANGER_DEFAULT;
	sf->max_frags = p ? p->max_frags : 0;
	if (p && p->quota)
		sf->quota = p->quota;
	if (p && p->reserve)
		sf->reserve = p->reserve;
	/* Reservations were granted under the old rules: gone. */
	sf->nresv = 0;
	sf->held = sf->strangers_held = 0;
	rc = recount(sf);
	if (rc == 0)
		rc = policy_save(sf);
	pthread_mutex_unlock(&sf->lock);
	return rc;
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

/* Sets the heads part of owner's contact record from its heads directory
 * (creating the record when there are heads; dropping it when there is
 * nothing left of the owner). */
static int
heads_record(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner)
{
	char path[OWNER_HEX + 7];
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	struct oacct a;
	uint64_t cost = 0, n = 0;
	int fd, rc;

	hex_encode(path, owner, CR_PK_BYTES);
	memcpy(path + OWNER_HEX, "/heads", 7);
	fd = openat(sf->dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd >= 0) {
		store__heads_cost(sf, fd, &cost, &n);
		close(fd);
	}
	if ((rc = acct_get(txn, sf, owner, &a)) < 0)
		return rc;
	if (n == 0 && !a.has_own) {
		if (!a.has_con)
			return 0;
		rc = mdb_del(txn, sf->contact, &k, NULL);
		return mdb_errno(rc == MDB_NOTFOUND ? 0 : rc, "contact del");
	}
	a.hcharge = cost;
	a.hn = n;
	return contact_put(txn, sf, owner, &a);
}

/* The contact records of owners whose directory is gone. */
static int
heads_records(MDB_txn *txn, struct store_frag *sf)
{
	unsigned char (*own)[CR_PK_BYTES] = NULL;
	size_t n = 0, cap = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, mrc;

	if ((rc = mdb_errno(mdb_cursor_open(txn, sf->contact, &cur), "cursor")) < 0)
		return rc;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != CR_PK_BYTES)
			continue;
		if (n == cap) {
			void *p = realloc(own, (cap = cap ? 2 * cap : 64) *
			    sizeof *own);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			own = p;
		}
		memcpy(own[n++], k.mv_data, CR_PK_BYTES);
	}
	mdb_cursor_close(cur);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = heads_record(txn, sf, own[i]);
	free(own);
	return rc;
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
	return rc < 0 ? rc : heads_record(txn, sf, owner);
}

/* Records without a file are dropped; owners is rebuilt from frags. */
static int
drop_missing_and_sum(MDB_txn *txn, struct store_frag *sf)
{
	unsigned char cur_owner[CR_PK_BYTES];
	struct oacct a = { 0 };
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
	sf->bytes = sf->count = sf->charge = 0;
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
			if ((rc = owner_put(txn, sf, cur_owner, &a)) < 0)
				break;
			memset(&a, 0, sizeof a);
		}
		memcpy(cur_owner, key, CR_PK_BYTES);
		have_owner = true;
		a.bytes += r.size;
		a.count++;
		a.charge += store_frag_cost(sf, r.size);
		sf->bytes += r.size;
		sf->count++;
		sf->charge += store_frag_cost(sf, r.size);
	}
	mdb_cursor_close(cur);
	if (rc < 0)
		return rc;
	if (mrc != MDB_NOTFOUND)
		return mdb_errno(mrc, "reconcile");
	return have_owner ? owner_put(txn, sf, cur_owner, &a) : 0;
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
	if (rc == 0)
		rc = heads_records(txn, sf);
	if (rc < 0)
		goto abort;
	return mdb_errno(mdb_txn_commit(txn), "reconcile commit");
abort:
	mdb_txn_abort(txn);
	return rc;
}

static int
acct_env_open(struct store_frag *sf, const char *dir, int rdonly)
{
	char *path;
	MDB_txn *txn;
	int rc, f = rdonly ? 0 : MDB_CREATE;

	if (asprintf(&path, "%s/acct", dir) < 0)
		return -ENOMEM;
	if (!rdonly && mkdir(path, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		free(path);
		return rc;
	}
	rc = mdb_errno(mdb_env_create(&sf->env), "env");
	if (rc == 0)
		rc = mdb_errno(mdb_env_set_maxdbs(sf->env, 4), "maxdbs");
	if (rc == 0)
		rc = mdb_errno(mdb_env_set_mapsize(sf->env, ACCT_MAP), "mapsize");
	if (rc == 0)
		/* NOSYNC: the fragment file itself is fsync'd before the
		 * acknowledgement, and open reconciles the accounting with
		 * the files, so the accounting need not cost a second fsync
		 * per fragment. */
		rc = mdb_errno(mdb_env_open(sf->env, path, MDB_NOTLS |
		    (rdonly ? MDB_RDONLY : MDB_NOSYNC), 0600), path);
	free(path);
	if (rc < 0)
		return rc;
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, rdonly ? MDB_RDONLY : 0,
	    &txn), "begin");
	if (rc < 0)
		return rc;
	rc = mdb_errno(mdb_dbi_open(txn, "owners", f, &sf->owners), "owners");
	if (rc == 0)
		rc = mdb_errno(mdb_dbi_open(txn, "frags", f, &sf->frags),
		    "frags");
	if (rc == 0)
		rc = mdb_errno(mdb_dbi_open(txn, "contact", f, &sf->contact),
		    "contact");
	if (rc == 0)
		rc = mdb_errno(mdb_dbi_open(txn, "misc", f, &sf->misc), "misc");
	if (rc < 0 || rdonly) {
		if (rdonly && rc == 0)
			return mdb_errno(mdb_txn_commit(txn), "commit");
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_errno(mdb_txn_commit(txn), "commit");
}

/* The default quota (store.h), fixed at the first open; the disk's block
 * size and the reserve. */
static int
space_setup(struct store_frag *sf, uint64_t quota_bytes)
{
	static const char key[] = "quota.default";
	MDB_val k = { sizeof key - 1, (void *)key }, v;
	unsigned char buf[8];
	struct statvfs vfs;
	uint64_t fs, q = 0;
	MDB_txn *txn;
	int rc;

	if (fstatvfs(sf->dirfd, &vfs) != 0)
		return -errno;
	sf->blk = vfs.f_bsize >= 512 && vfs.f_bsize <= (1u << 20) ?
	    vfs.f_bsize : 4096;
	fs = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	sf->reserve = fs / 100;
	if (sf->reserve < (64ull << 20))
		sf->reserve = 64ull << 20;
	if (sf->reserve > (1ull << 30))
		sf->reserve = 1ull << 30;
	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		return rc;
	rc = mdb_errno(mdb_get(txn, sf->misc, &k, &v), "misc get");
	if (rc == 0 && v.mv_size == 8)
		q = get_be64(v.mv_data);
	if (q == 0) {
		q = (uint64_t)vfs.f_bavail * vfs.f_frsize / 10;
		if (q == 0)
			q = 1;
		put_be64(buf, q);
		v.mv_size = sizeof buf;
		v.mv_data = buf;
		rc = mdb_errno(mdb_put(txn, sf->misc, &k, &v, 0), "misc put");
		if (rc < 0) {
			mdb_txn_abort(txn);
			return rc;
		}
	}
	sf->quota = quota_bytes ? quota_bytes : q;
	return mdb_errno(mdb_txn_commit(txn), "commit");
}

/* One process per store: <dir>/.lock, flock'd, holds its pid. */
static int
take_lock(struct store_frag *sf)
{
	char buf[32];
	int n;

	sf->lockfd = openat(sf->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (sf->lockfd < 0)
		return -errno;
	if (flock(sf->lockfd, LOCK_EX | LOCK_NB) != 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(sf->lockfd, 0) != 0 ||
	    pwrite(sf->lockfd, buf, (size_t)n, 0) != n)
		return -errno;
	return 0;
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
	sf->dirfd = sf->lockfd = -1;
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
	if ((rc = take_lock(sf)) < 0 || (rc = acct_env_open(sf, dir, 0)) < 0 ||
	    (rc = space_setup(sf, quota_bytes)) < 0 ||
	    (rc = reconcile(sf)) < 0 || (rc = recount(sf)) < 0)
		goto fail;
	log_debug("frag: %s: %" PRIu64 " fragments, %" PRIu64 " bytes", dir,
	    sf->count, sf->bytes);
	*out = sf;
	return 0;
fail:
	if (rc != -EBUSY)
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
	if (sf->lockfd >= 0)
		close(sf->lockfd);	/* releases the lock */
	if (sf->dirfd >= 0)
		close(sf->dirfd);
	pthread_mutex_destroy(&sf->lock);
	free(sf->resv);
	free(sf->friends);
	free(sf);
}

/* For store/heads.c, which keeps its files under the same directory. */
int
store__frag_dirfd(const struct store_frag *sf)
{
	return sf->dirfd;
}

/* ---- heads, for store/heads.c ---------------------------------------------- */

/* Under sf->lock: owner's heads are charged cost (n heads); what grows
 * uses its reservation first. */
static int
heads_set_locked(struct store_frag *sf, const unsigned char *owner,
    uint64_t cost, uint64_t n)
{
	struct oacct a;
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	MDB_txn *txn;
	int rc;

	rc = mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		return rc;
	if ((rc = acct_get(txn, sf, owner, &a)) < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	a.hcharge = cost;
	a.hn = n;
	if (a.contact == 0 || a.contact < (int64_t)time(NULL) - TOUCH_SECS)
		a.contact = (int64_t)time(NULL);
	if (n == 0 && !a.has_own) {
		int r = mdb_del(txn, sf->contact, &k, NULL);
		rc = mdb_errno(r == MDB_NOTFOUND ? 0 : r, "contact del");
	} else {
		rc = contact_put(txn, sf, owner, &a);
	}
	if (rc == 0)
		rc = mdb_errno(mdb_txn_commit(txn), "commit");
	else
		mdb_txn_abort(txn);
	if (rc < 0)
		return rc;
	return 0;
}

int
store__frag_heads_room(struct store_frag *sf, const unsigned char *owner,
    uint64_t add)
{
	struct oacct a;
	struct resv *r;
	uint64_t lim, held_o;
	int rc, why;

	pthread_mutex_lock(&sf->lock);
	if ((rc = acct_read(sf, owner, &a)) < 0)
		goto out;
	resv_gc(sf);
	/* A head may use the owner's reservation, like a fragment: else an
	 * owner holding all its room for uploads could not publish the
	 * index that names them. */
	r = resv_find(sf, owner);
	held_o = r ? r->held : 0;
	lim = room_left(sf, owner, &a, held_o, &why);
	rc = why == -EACCES ? why : add <= held_o || add - held_o <= lim ? 0 :
	    why;
	/* Charged now, before the file is written: a put racing the write
	 * finds the room taken. store__frag_heads_set corrects it after. */
	if (rc == 0 && add > 0 && (rc = heads_set_locked(sf, owner,
	    a.hcharge + add, a.hn + 1)) == 0) {
		totals_add(sf, owner, 0, (int64_t)add);
		resv_take(sf, owner, add);
	}
out:
	pthread_mutex_unlock(&sf->lock);
	return rc;
}

int
store__frag_heads_set(struct store_frag *sf, const unsigned char *owner,
    uint64_t cost, uint64_t n)
{
	struct oacct a;
	int rc;

	pthread_mutex_lock(&sf->lock);
	if ((rc = acct_read(sf, owner, &a)) == 0 &&
	    (rc = heads_set_locked(sf, owner, cost, n)) == 0) {
		totals_add(sf, owner, 0, (int64_t)cost - (int64_t)a.hcharge);
		if (cost > a.hcharge) {
			resv_gc(sf);
			resv_take(sf, owner, cost - a.hcharge);
		}
	}
	pthread_mutex_unlock(&sf->lock);
	return rc;
}
