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
 *           contact (unix s) | i64 beyond the fair deal since | i64
 *           evicted by the deal (unix s, 0: not)   (heads part derived
 *           at open; records of 24 bytes, from before the deal's
 *           eviction, read with both 0)
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

int
store__fr_mdb_errno(int rc, const char *what)
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

void
store__fr_make_names(struct frag_names *nm, const unsigned char *owner,
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

void
store__fr_make_key(unsigned char key[KEY_LEN], const unsigned char *owner,
    const unsigned char *fragid)
{
	memcpy(key, owner, CR_PK_BYTES);
	memcpy(key + CR_PK_BYTES, fragid, STORE_FRAGID_BYTES);
}

void
store__fr_rec_pack(unsigned char out[REC_LEN], const struct frag_rec *r)
{
	put_be64(out, r->size);
	memcpy(out + 8, r->hash, CR_HASH_BYTES);
	put_be64(out + 8 + CR_HASH_BYTES, r->ino);
	put_be64(out + 16 + CR_HASH_BYTES, r->mtime_ns);
}

int
store__fr_rec_unpack(struct frag_rec *r, const MDB_val *v)
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

void
store__fr_rec_from_stat(struct frag_rec *r, const struct stat *st)
{
	r->size = (uint64_t)st->st_size;
	r->ino = (uint64_t)st->st_ino;
	r->mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u +
	    (uint64_t)st->st_mtim.tv_nsec;
}

/* 0 with *r, -ENOENT, -errno. */
int
store__fr_rec_get(MDB_txn *txn, struct store_frag *sf, const unsigned char *key,
    struct frag_rec *r)
{
	MDB_val k = { KEY_LEN, (void *)key }, v;
	int rc = store__fr_mdb_errno(mdb_get(txn, sf->frags, &k, &v), "get");

	return rc < 0 ? rc : store__fr_rec_unpack(r, &v);
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
	int rc = store__fr_mdb_errno(mdb_get(txn, sf->owners, &k, &v), "owner get");

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

int
store__fr_owner_put(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    const struct oacct *a)
{
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	unsigned char buf[OWN_LEN];
	MDB_val v = { sizeof buf, buf };

	if (a->count == 0) {
		int rc = mdb_del(txn, sf->owners, &k, NULL);
		return store__fr_mdb_errno(rc == MDB_NOTFOUND ? 0 : rc, "owner del");
	}
	put_be64(buf, a->bytes);
	put_be64(buf + 8, a->count);
	put_be64(buf + 16, a->charge);
	return store__fr_mdb_errno(mdb_put(txn, sf->owners, &k, &v, 0), "owner put");
}

static int
contact_get(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    struct oacct *a)
{
	MDB_val k = { CR_PK_BYTES, (void *)owner }, v;
	int rc = store__fr_mdb_errno(mdb_get(txn, sf->contact, &k, &v), "contact get");

	a->hcharge = a->hn = 0;
	a->contact = a->deficit = a->evicted = 0;
	a->has_con = 0;
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	return store__fr_contact_unpack(a, &v);
}

int
store__fr_contact_unpack(struct oacct *a, const MDB_val *v)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size != CON_LEN && v->mv_size != CON_LEN_V1)
		return -EIO;
	a->hcharge = get_be64(p);
	a->hn = get_be64(p + 8);
	a->contact = (int64_t)get_be64(p + 16);
	a->deficit = a->evicted = 0;
	if (v->mv_size == CON_LEN) {
		a->deficit = (int64_t)get_be64(p + 24);
		a->evicted = (int64_t)get_be64(p + 32);
	}
	a->has_con = 1;
	return 0;
}

int
store__fr_contact_put(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    const struct oacct *a)
{
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	unsigned char buf[CON_LEN];
	MDB_val v = { sizeof buf, buf };

	put_be64(buf, a->hcharge);
	put_be64(buf + 8, a->hn);
	put_be64(buf + 16, (uint64_t)a->contact);
	put_be64(buf + 24, (uint64_t)a->deficit);
	put_be64(buf + 32, (uint64_t)a->evicted);
	return store__fr_mdb_errno(mdb_put(txn, sf->contact, &k, &v, 0), "contact put");
}

int
store__fr_acct_get(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    struct oacct *a)
{
	int rc = owner_get(txn, sf, owner, a);

	return rc < 0 ? rc : contact_get(txn, sf, owner, a);
}

/* The same in a read transaction of its own. */
int
store__fr_acct_read(struct store_frag *sf, const unsigned char *owner, struct oacct *a)
{
	MDB_txn *txn;
	int rc;

	memset(a, 0, sizeof *a);
	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, MDB_RDONLY, &txn), "begin");
	if (rc < 0)
		return rc;
	rc = store__fr_acct_get(txn, sf, owner, a);
	mdb_txn_abort(txn);
	return rc;
}

/* ---- the policy (under sf->lock) ---------------------------------------- */

int
store__fr_pk_cmp(const void *a, const void *b)
{
	return memcmp(a, b, CR_PK_BYTES);
}

int
store__fr_is_friend(const struct store_frag *sf, const unsigned char *owner)
{
	if (!sf->policy_set)
		return 1;
	return sf->nfriends && bsearch(owner, sf->friends, sf->nfriends,
	    CR_PK_BYTES, store__fr_pk_cmp) != NULL;
}

uint64_t
store__fr_owner_quota(const struct store_frag *sf, int friend)
{
	if (friend || sf->stranger_quota > sf->quota)
		return sf->quota;
	return sf->stranger_quota;
}

static uint64_t
owner_max_frags(const struct store_frag *sf, int friend)
{
	uint64_t q = store__fr_owner_quota(sf, friend) / FRAGS_PER_QUOTA;

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
void
store__fr_resv_gc(struct store_frag *sf)
{
	int64_t now = mono_secs();

	for (size_t i = 0; i < sf->nresv; ) {
		struct frag_resv *r = &sf->resv[i];

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

struct frag_resv *
store__fr_resv_find(struct store_frag *sf, const unsigned char *owner)
{
	for (size_t i = 0; i < sf->nresv; i++)
		if (memcmp(sf->resv[i].owner, owner, CR_PK_BYTES) == 0)
			return &sf->resv[i];
	return NULL;
}

/* Moves up to n of owner's reservation into its charge. */
void
store__fr_resv_take(struct store_frag *sf, const unsigned char *owner, uint64_t n)
{
	struct frag_resv *r = store__fr_resv_find(sf, owner);

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

uint64_t
store__fr_deal_limit(struct store_frag *sf, const unsigned char *owner,
    uint64_t *earned)
{
	uint64_t e = sf->earned ? sf->earned(sf->earned_arg, owner) : 0;

	if (earned)
		*earned = e;
	return e > UINT64_MAX - sf->credit ? UINT64_MAX : e + sf->credit;
}

/* What owner (records a, holding held_o) may add beyond its reservation
 * now; *why the error of the binding limit. -EACCES and 0 when it is not
 * admitted. */
uint64_t
store__fr_room_left(struct store_frag *sf, const unsigned char *owner,
    const struct oacct *a, uint64_t held_o, int *why)
{
	int friend = store__fr_is_friend(sf, owner);
	uint64_t lim = UINT64_MAX;

	if (!friend && sf->friends_only) {
		*why = -EACCES;
		return 0;
	}
	*why = -EDQUOT;
	lim = room_min(lim, a->charge + a->hcharge + held_o,
	    store__fr_owner_quota(sf, friend), why, -EDQUOT);
	if (!friend && sf->deal && store__fr_evicted_now(sf, a)) {
		*why = -EDQUOT;
		return 0;
	}
	if (!friend && sf->deal)
		lim = room_min(lim, a->charge + a->hcharge + held_o,
		    store__fr_deal_limit(sf, owner, NULL), why, -EDQUOT);
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
	struct frag_resv *r;
	uint64_t held_o, lim;
	int why, friend = store__fr_is_friend(sf, owner);

	store__fr_resv_gc(sf);
	r = store__fr_resv_find(sf, owner);
	held_o = r ? r->held : 0;
	lim = store__fr_room_left(sf, owner, a, held_o, &why);
	if (why == -EACCES)
		return why;
	if (nfrag && a->count + nfrag > owner_max_frags(sf, friend))
		return -EDQUOT;
	/* A balance that fell (its node lost what it held for us) takes
	 * back what was reserved under it: no new bytes at all. */
	if (!friend && sf->deal && a->charge + a->hcharge + add >
	    store__fr_deal_limit(sf, owner, NULL))
		return -EDQUOT;
	return add <= held_o || add - held_o <= lim ? 0 : why;
}

/* Charge changes of owner in the totals. */
void
store__fr_totals_add(struct store_frag *sf, const unsigned char *owner, int64_t dcharge,
    int64_t dheads)
{
	sf->charge += (uint64_t)dcharge;
	sf->heads += (uint64_t)dheads;
	if (!store__fr_is_friend(sf, owner))
		sf->strangers += (uint64_t)(dcharge + dheads);
}

/* Stages in txn: the fragment's record becomes nr (NULL: removed), the
 * owner's counters follow. *dbytes, *dcount and *dcharge get the change
 * of the totals. */
static int
stage(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner,
    const unsigned char *fragid, const struct frag_rec *nr,
    int64_t *dbytes, int64_t *dcount, int64_t *dcharge)
{
	unsigned char key[KEY_LEN], val[REC_LEN];
	MDB_val k = { KEY_LEN, key }, v = { REC_LEN, val };
	struct oacct a;
	struct frag_rec old;
	bool had;
	int rc;

	store__fr_make_key(key, owner, fragid);
	rc = store__fr_rec_get(txn, sf, key, &old);
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
		store__fr_rec_pack(val, nr);
		rc = store__fr_mdb_errno(mdb_put(txn, sf->frags, &k, &v, 0), "put");
	} else if (had) {
		rc = store__fr_mdb_errno(mdb_del(txn, sf->frags, &k, NULL), "del");
	}
	if (rc < 0)
		return rc;
	a.bytes += (uint64_t)*dbytes;
	a.count += (uint64_t)*dcount;
	a.charge += (uint64_t)*dcharge;
	return store__fr_owner_put(txn, sf, owner, &a);
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
leaf_dir(struct store_frag *sf, const struct frag_names *nm, bool create)
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
/* len bytes at off, or -errno (-EIO when the file ends first: fragments
 * never shrink). */
static int
pread_full(int fd, unsigned char *buf, size_t len, uint64_t off)
{
	size_t have = 0;

	while (have < len) {
		ssize_t r = pread(fd, buf + have, len - have,
		    (off_t)(off + have));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		have += (size_t)r;
	}
	return 0;
}

int
store__fr_read_fd(int fd, void **data, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	size_t size;
	int rc;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EIO;
	size = (size_t)st.st_size;
	if (!(buf = malloc(size ? size : 1)))
		return -ENOMEM;
	if ((rc = pread_full(fd, buf, size, 0)) < 0) {
		free(buf);
		return rc;
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
write_tmp(int dfd, const struct frag_names *nm, const void *data, size_t len,
    char *tmp, size_t tmpsz, struct frag_rec *r)
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
	store__fr_rec_from_stat(r, &st);
	return 0;
}

/* Under sf->lock: 1 when the fragment is stored with this size and hash,
 * 0 when it may be put (its charge fits the owner's account: *add gets
 * it, beyond the fragment it replaces), -errno (-EACCES, -EDQUOT,
 * -ENOSPC: see store_frag_put). */
static int
put_check(struct store_frag *sf, const unsigned char *owner,
    const unsigned char *fragid, const struct frag_rec *nr, uint64_t *add)
{
	unsigned char key[KEY_LEN];
	uint64_t newc = store_frag_cost(sf, nr->size), oldc = 0;
	struct oacct a;
	struct frag_rec old;
	MDB_txn *txn;
	bool had = false;
	int rc;

	store__fr_make_key(key, owner, fragid);
	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, MDB_RDONLY, &txn), "begin");
	if (rc < 0)
		return rc;
	rc = store__fr_rec_get(txn, sf, key, &old);
	if (rc == 0 || rc == -ENOENT) {
		had = rc == 0;
		rc = store__fr_acct_get(txn, sf, owner, &a);
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
install(struct store_frag *sf, int dfd, const struct frag_names *nm,
    const char *tmp, const unsigned char *owner, const unsigned char *fragid,
    const struct frag_rec *nr)
{
	int64_t db = 0, dc = 0, dk = 0;
	MDB_txn *txn;
	int rc;

	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
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
	if ((rc = store__fr_mdb_errno(mdb_txn_commit(txn), "commit")) < 0) {
		/* The new file is in place but not accounted: drop it, and
		 * the record of what it replaced; open reconciles the rest. */
		unlinkat(dfd, nm->file, 0);
		if (mdb_txn_begin(sf->env, NULL, 0, &txn) == 0) {
			if (stage(txn, sf, owner, fragid, NULL, &db, &dc,
			    &dk) == 0 && mdb_txn_commit(txn) == 0) {
				sf->bytes += (uint64_t)db;
				sf->count += (uint64_t)dc;
				store__fr_totals_add(sf, owner, dk, 0);
			} else {
				mdb_txn_abort(txn);
			}
		}
		return rc;
	}
	sf->bytes += (uint64_t)db;
	sf->count += (uint64_t)dc;
	store__fr_totals_add(sf, owner, dk, 0);
	return 0;
}

int
store_frag_put(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], const void *data,
    size_t len, const unsigned char hash[CR_HASH_BYTES])
{
	char tmp[FRAG_HEX + 32];
	struct frag_names nm;
	struct frag_rec nr;
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

	store__fr_make_names(&nm, owner, fragid);
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
		store__fr_resv_take(sf, owner, add);
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
	struct frag_resv *r;
	int why, rc, friend;

	if (size == 0 || count == 0)
		return -EINVAL;
	/* The account is read under the lock: read before it, a put
	 * installed meanwhile would be missing from the charge while its
	 * reservation is already spent, and the grant pass the quota. */
	pthread_mutex_lock(&sf->lock);
	if ((rc = store__fr_acct_read(sf, owner, &a)) < 0) {
		pthread_mutex_unlock(&sf->lock);
		return rc;
	}
	store__fr_resv_gc(sf);
	friend = store__fr_is_friend(sf, owner);
	r = store__fr_resv_find(sf, owner);
	held_o = r ? r->held : 0;
	/* Reserved under a balance that has fallen since: released. */
	if (held_o && !friend && sf->deal && a.charge + a.hcharge + held_o >
	    store__fr_deal_limit(sf, owner, NULL)) {
		store__fr_resv_take(sf, owner, held_o);
		held_o = 0;
	}
	lim = store__fr_room_left(sf, owner, &a, held_o, &why);
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
	struct frag_names nm;
	int fd, rc;

	store__fr_make_names(&nm, owner, fragid);
	/* Renames are atomic: this is the whole old or the whole new file. */
	fd = openat(sf->dirfd, nm.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR || errno == ELOOP ? -ENOENT : -errno;
	rc = store__fr_read_fd(fd, data, len);
	close(fd);
	return rc;
}

int
store_frag_get_range(struct store_frag *sf,
    const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], uint64_t off, size_t len,
    void **data, uint64_t *size)
{
	struct frag_names nm;
	unsigned char *buf = NULL;
	struct stat st;
	int fd, rc = 0;

	if (len == 0)
		return -EINVAL;
	store__fr_make_names(&nm, owner, fragid);
	fd = openat(sf->dirfd, nm.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOTDIR || errno == ELOOP ? -ENOENT : -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EIO;
		goto out;
	}
	if (size)
		*size = (uint64_t)st.st_size;
	if (off > (uint64_t)st.st_size || len > (uint64_t)st.st_size - off) {
		rc = -ERANGE;
		goto out;
	}
	if (!(buf = malloc(len))) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = pread_full(fd, buf, len, off)) < 0) {
		free(buf);
		goto out;
	}
	*data = buf;
out:
	close(fd);
	return rc;
}

int
store_frag_del(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES])
{
	unsigned char key[KEY_LEN];
	struct frag_names nm;
	struct frag_rec old;
	int64_t db = 0, dc = 0, dk = 0;
	MDB_txn *txn;
	int dfd = -1, rc;

	store__fr_make_names(&nm, owner, fragid);
	store__fr_make_key(key, owner, fragid);
	pthread_mutex_lock(&sf->lock);
	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		goto unlock;
	if ((rc = store__fr_rec_get(txn, sf, key, &old)) < 0 ||
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
	if ((rc = store__fr_mdb_errno(mdb_txn_commit(txn), "commit")) == 0) {
		sf->bytes += (uint64_t)db;
		sf->count += (uint64_t)dc;
		store__fr_totals_add(sf, owner, dk, 0);
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
	struct frag_rec r;
	int rc, op = MDB_SET_RANGE;

	memcpy(start, owner, CR_PK_BYTES);
	memset(start + CR_PK_BYTES, 0, STORE_FRAGID_BYTES);
	/* A read transaction needs no lock (MDB_NOTLS): cb may call us. */
	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, MDB_RDONLY, &txn), "begin");
	if (rc < 0)
		return rc;
	if ((rc = store__fr_mdb_errno(mdb_cursor_open(txn, sf->frags, &cur), "cursor")) < 0)
		goto out;
	for (;;) {
		int mrc = mdb_cursor_get(cur, &k, &v, op);
		op = MDB_NEXT;
		if (mrc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if ((rc = store__fr_mdb_errno(mrc, "list")) < 0)
			break;
		if (k.mv_size != KEY_LEN ||
		    memcmp(k.mv_data, owner, CR_PK_BYTES) != 0)
			break;
		if ((rc = store__fr_rec_unpack(&r, &v)) < 0)
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
	} else if (store__fr_acct_read(sf, owner, &a) == 0) {
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
	store__fr_resv_gc(sf);
	lim = room_min(lim, sf->charge + sf->heads + sf->held, sf->quota,
	    &why, 0);
	lim = room_min(lim, sf->reserve + sf->held, disk_free(sf), &why, 0);
	pthread_mutex_unlock(&sf->lock);
	return lim;
}
