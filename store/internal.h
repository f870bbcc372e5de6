/* store/internal.h - private to store/. (store/frag.c keeps its own
 * state; it shares only the functions at the end with store/heads.c.) */
#ifndef PEERFS_STORE_INTERNAL_H
#define PEERFS_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "store/store.h"
#include "util.h"
#include "worker.h"

enum {
	STORE__DB_INODES, STORE__DB_DIRENTS, STORE__DB_SYMLINKS,
	STORE__DB_XATTRS, STORE__DB_EXTENTS, STORE__DB_BLOCKS,
	STORE__DB_JRNL, STORE__DB_PEERS, STORE__DB_MISC,
	STORE__DB_REBUILD, STORE__DB_REBUILDX, STORE__DB_DELQ,
	STORE__DB_CHANGES,	/* the index's change log (store/index.c) */
	STORE__DB_INLINE,	/* tiny files' bytes (store_inline_*) */
	STORE__DB_N
};

struct store {
	MDB_env	*env;
	MDB_dbi	 dbi[STORE__DB_N];	/* opened once in store_open, then read-only */
	char	*dir;			/* as given to store_open */
	char	*jdir;			/* <dir>/journal: staging files */
	/* <dir>/spare: emptied staging files kept for reuse (store/jrnl.c).
	 * Renaming one costs far less than creating a file; and an unlink
	 * leaves a freed inode that ext4 without a journal re-checks on each
	 * create for a while, which made cp -a slower with every run. */
	char	*sdir;
	int	 sdir_fd;
	pthread_mutex_t	spare_lock;	/* protects spare .. spare_maker */
	uint32_t	*spare;		/* names (decimal) of spare files */
	size_t		 nspare;
	uint32_t	 spare_next;
	/* The spare maker (worker.h) keeps spares ready: a file made on the
	 * spot costs the write that needs it an ext4 create (the first cp -a
	 * of a tree took 5.0 s against 3.0 s with spares ready). Set before
	 * its first pass; NULL once store__spare_maker_stop() began. Read
	 * and cleared under spare_lock (spare_take kicks it there). */
	struct worker	*spare_maker;
	/* Commits do not fsync (MDB_NOSYNC): the flusher (worker.h) syncs
	 * what was committed within STORE__FLUSH_MS, and store_sync() at
	 * once. dirty: a commit since the flusher's last look (__atomic
	 * builtins, no lock). */
	struct worker	*flusher;
	int		 dirty;
	/* Syncs begun (flusher passes and store_sync), and the highest
	 * count before a sync that completed: a commit made before a sync
	 * began is durable once synced reaches the count read after it
	 * (__atomic builtins). */
	uint64_t	 sync_epoch;
	uint64_t	 synced_epoch;
	/* <dir>/retired: staging files whose record a commit dropped, kept
	 * whole until that commit is synced (store/jrnl.c). retire_lock
	 * protects retired .. retire_seq; retired[] is in epoch order. */
	char		*rdir;
	pthread_mutex_t	 retire_lock;
	struct vec	 retired;	/* of struct store__retired */
	uint64_t	 retire_seq;	/* names, never reused */
	/* MDB_WRITEMAP in use, and how much of data.mdb is allocated (only
	 * under LMDB's write lock): see alloc_ahead in store/meta.c. */
	int		writemap;
	uint64_t	alloc_end;
};
#define STORE__FLUSH_MS 5000

/* A staging file retired by store_jrnl_unlink: moved to
 * <rdir>/<seq>.<ino>.<bno> (and its range list to ...<bno | 2^63>). */
struct store__retired {
	uint64_t seq, ino, bno;
	uint64_t epoch;		/* sync_epoch when it was moved */
	unsigned moved;		/* 1: the staging file, 2: the range list */
};

struct store_txn {
	MDB_txn		*txn;
	struct store	*st;
	uint64_t	 gen;		/* change number, 0 until the first
					 * indexed change (store/index.c) */
	int		 nolog;		/* store_index_apply: no change log */
};

/* store/jrnl.c: the spare staging files (adopted at open, closed). */
int  store__spare_open(struct store *st);
void store__spare_close(struct store *st);	/* stops the maker first */
void store__spare_maker_stop(struct store *st);
/* store/jrnl.c: retired staging files. _open (LMDB open, no writer yet)
 * puts back those a power cut left behind a record that came back and
 * removes the rest; _recycle makes spares of those a sync has covered;
 * _close frees the list (recycle first). */
int  store__retired_open(struct store *st);
void store__retired_recycle(struct store *st);
/* On a full disk: syncs and empties the retired files at once; 1 when
 * that emptied any (worth trying again), else 0. */
int  store__retired_make_room(struct store *st);
void store__retired_close(struct store *st);
/* store/meta.c: mdb_env_sync, then synced_epoch covers every commit made
 * before the call. */
int  store__sync(struct store *st);

/* ---- store/meta.c and store/misc.c: the misc table ----------------------
 * Misc keys starting with STORE__MISC_LOCAL are the owner's bookkeeping of
 * index versions: never logged nor dumped by store/index.c. */
#define STORE__MISC_LOCAL "index."
/* The record of name: *v points into the map, read-only, valid until t
 * ends. 0, -ENOENT, -errno. */
int store__misc_ref(struct store_txn *t, const char *name, MDB_val *v);
int store__misc_del(struct store_txn *t, const char *name);	/* -ENOENT */
/* Rewrites the misc records of older homes in today's format, within t
 * (store_open's first transaction). */
int store__misc_upgrade(struct store_txn *t);

/* ---- store/meta.c: shared by the files of the metadata -----------------
 * (store/meta.c the environment, store/fsmeta.c the filesystem's records,
 * store/blocks.c block records and queues, store/misc.c named values) */
#define STORE__INO_REC_V1	1
#define STORE__INO_REC_LEN	85

extern const char *const store__db_names[STORE__DB_N];
MDB_dbi store__dbi(struct store_txn *t, int db);
/* get, put and del of one record; put and del log the index's change. */
int store__kv_get(struct store_txn *t, int db, const void *k, size_t klen,
    MDB_val *v);
int store__kv_put(struct store_txn *t, int db, const void *k, size_t klen,
    const void *v, size_t vlen);
int store__kv_del(struct store_txn *t, int db, const void *k, size_t klen);
/* Validates a name and builds u64 prefix | name; returns the key length
 * (too_long when the name is longer than max, -EINVAL when empty). */
int store__name_key(unsigned char *key, uint64_t prefix, const char *name,
    size_t max, int too_long);
void store__pair_key(unsigned char key[16], uint64_t a, uint64_t b);
typedef int (*store__scan_fn)(void *ctx, const MDB_val *k, const MDB_val *v);
/* Visits the records whose key starts with prefix[0..plen), from the first
 * key >= start (or > start when `after`; every record when slen is 0), in
 * key order, until fn returns non-zero (returned as is). After each call
 * the cursor seeks again from a copy of the last key, so fn may change the
 * database within the same transaction. */
int store__scan(struct store_txn *t, int db, const void *prefix, size_t plen,
    const void *start, size_t slen, int after, store__scan_fn fn, void *ctx);
/* Deletes every record whose key starts with prefix[0..plen). */
int store__del_prefix(struct store_txn *t, int db, const void *prefix,
    size_t plen);
/* The inode record (store/fsmeta.c): STORE__INO_REC_LEN bytes. */
void store__ino_enc(unsigned char *p, const struct store_inode *in);
int  store__ino_dec(struct store_inode *in, const MDB_val *v);

/* LMDB return code -> 0 or -errno; logs the unexpected ones with `what`. */
int store__mdb_err(int rc, const char *what);

/* ---- store/index.c, for store/meta.c ------------------------------------
 * Called after every successful put or delete of key k in table db: logs
 * (gen, table, key) when db is indexed (cheap no-op otherwise). */
int store__index_log(struct store_txn *t, int db, const void *k, size_t klen);

/* ---- store/frag.c, for store/heads.c -------------------------------------
 * The fragment store's directory (open for the store's lifetime, read-only
 * after store_frag_open): heads live under <dir>/<owner hex>/heads. */
struct store_frag;
int store__frag_dirfd(const struct store_frag *sf);
/* 0 when owner's heads may come to cost `after` in all (what passes its
 * present charge is checked and charged now), else -EACCES, -EDQUOT,
 * -ENOSPC as a put. */
int store__frag_heads_room(struct store_frag *sf, const unsigned char *owner,
    uint64_t after);
/* Sets owner's heads' charge and count (from its heads directory); what
 * passes the present charge is checked like a put, and refused (nothing
 * changed) with -EDQUOT or -ENOSPC when it does not fit. */
int store__frag_heads_set(struct store_frag *sf, const unsigned char *owner,
    uint64_t cost, uint64_t n);
/* The charge and number of the head files in heads directory dfd (names
 * of 20 digits; the rest is a put's temporaries or junk). */
void store__heads_cost(const struct store_frag *sf, int dfd, uint64_t *cost,
    uint64_t *n);


/* ---- store/frag.c, store/accounts.c, store/fragopen.c: the supplier's
 * fragment store (formats and locking: the top of store/frag.c) ---------- */
#define OWNER_HEX	(2 * CR_PK_BYTES)		/* 64 */
#define FRAG_HEX	(2 * STORE_FRAGID_BYTES)	/* 66 */
#define KEY_LEN		(CR_PK_BYTES + STORE_FRAGID_BYTES)
#define REC_LEN		(8 + CR_HASH_BYTES + 8 + 8)
#define OWN_LEN		24
#define CON_LEN		40	/* CON_LEN_V1 + deficit + evicted */
#define CON_LEN_V1	24
#define ACCT_MAP	(1ull << 32)	/* sparse; ~100 bytes per fragment */
#define RESV_MAX	4096		/* owners holding a reservation */
#define TOUCH_SECS	60		/* last contact written at most this often */
#define FRAGS_PER_QUOTA	(16u << 10)	/* default cap: a fragment per 16 KiB */
#define FRAGS_MIN_CAP	4096u

struct frag_resv {
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
	struct frag_resv	*resv;
	size_t		 nresv;
	int		 policy_set;	/* else everyone is a friend */
	int		 friends_only;
	/* The fair deal (store_frag_policy): strangers limited to what
	 * earned() says they earned plus credit. */
	int		 deal;
	uint64_t	 credit;
	uint64_t	(*earned)(void *arg, const unsigned char *owner);
	void		*earned_arg;
	int64_t		 evict_grace;	/* s, from the last deal check */
	uint64_t	 stranger_quota, max_frags;
	unsigned char	(*friends)[CR_PK_BYTES];	/* sorted */
	size_t		 nfriends;
};

/* One owner's records. */
struct oacct {
	uint64_t bytes, count, charge;		/* owners */
	uint64_t hcharge, hn;			/* contact */
	int64_t  contact;
	int64_t  deficit;	/* unix s: beyond the fair deal since; 0 not */
	int64_t  evicted;	/* unix s: evicted by the deal; 0 never */
	int	 has_own, has_con;
};

struct frag_rec {
	uint64_t size;
	unsigned char hash[CR_HASH_BYTES];
	uint64_t ino, mtime_ns;
};

/* Relative names of one fragment. */
struct frag_names {
	char dir[OWNER_HEX + 1 + 2 + 1];		/* owner/xx */
	char file[FRAG_HEX + 1];			/* fragid hex */
	char path[OWNER_HEX + 1 + 2 + 1 + FRAG_HEX + 1];	/* owner/xx/fragid */
};

int store__fr_mdb_errno(int rc, const char *what);
void store__fr_make_names(struct frag_names *nm, const unsigned char *owner, const unsigned char *fragid);
void store__fr_make_key(unsigned char key[KEY_LEN], const unsigned char *owner, const unsigned char *fragid);
void store__fr_rec_pack(unsigned char out[REC_LEN], const struct frag_rec *r);
int store__fr_rec_unpack(struct frag_rec *r, const MDB_val *v);
void store__fr_rec_from_stat(struct frag_rec *r, const struct stat *st);
int store__fr_rec_get(MDB_txn *txn, struct store_frag *sf, const unsigned char *key, struct frag_rec *r);
int store__fr_owner_put(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner, const struct oacct *a);
/* The contact record's fields from v (either length); -EIO otherwise. */
int store__fr_contact_unpack(struct oacct *a, const MDB_val *v);
int store__fr_contact_put(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner, const struct oacct *a);
int store__fr_acct_get(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner, struct oacct *a);
int store__fr_acct_read(struct store_frag *sf, const unsigned char *owner, struct oacct *a);
int store__fr_pk_cmp(const void *a, const void *b);
int store__fr_is_friend(const struct store_frag *sf, const unsigned char *owner);
uint64_t store__fr_owner_quota(const struct store_frag *sf, int friend);
void store__fr_resv_gc(struct store_frag *sf);
struct frag_resv * store__fr_resv_find(struct store_frag *sf, const unsigned char *owner);
void store__fr_resv_take(struct store_frag *sf, const unsigned char *owner, uint64_t n);
uint64_t store__fr_room_left(struct store_frag *sf, const unsigned char *owner, const struct oacct *a, uint64_t held_o, int *why);
void store__fr_totals_add(struct store_frag *sf, const unsigned char *owner, int64_t dcharge, int64_t dheads);
int store__fr_read_fd(int fd, void **data, size_t *len);
int store__fr_recount(struct store_frag *sf);
bool store__fr_is_hex(const char *s, size_t n);
/* Under sf->lock: 1 while an owner the deal evicted (a) is refused new
 * space: one grace period after its eviction. */
int store__fr_evicted_now(const struct store_frag *sf, const struct oacct *a);
/* Under sf->lock: the fair deal's limit for a stranger (earned + credit),
 * *earned (may be NULL) what it earned. */
uint64_t store__fr_deal_limit(struct store_frag *sf, const unsigned char *owner,
    uint64_t *earned);
void store__fr_hex_decode(unsigned char *out, const char *s, size_t n);
int store__fr_acct_env_open(struct store_frag *sf, const char *dir, int rdonly);

#endif
