/* store/store.h - local state: the owner's LMDB metadata, the write-back
 * journal, the block cache, and the supplier's fragment store.
 * Uses crypto/ only for constants; never learns that a network exists.
 * Functions return 0 (or a count/length) on success, -errno on failure. */
#ifndef PEERFS_STORE_H
#define PEERFS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto/crypto.h"

#define STORE_ROOT_INO	1
#define STORE_NAME_MAX	255
#define STORE_FRAGID_BYTES (CR_ID_BYTES + 1)	/* block id | fragment index */

/* ==== owner metadata (store/meta.c) =======================================
 * One LMDB environment at <dir>/meta (data.mdb, lock.mdb), named databases:
 * inodes, dirents, symlinks, xattrs, extents, blocks, jrnl, peers, misc.
 * store_open() creates the root directory inode (mode 0755 | S_IFDIR,
 * uid/gid of the caller, nlink 2) when the database is new.
 * Every change happens inside one write transaction; LMDB allows one
 * writer at a time (others wait), readers never block. A transaction
 * belongs to the thread that began it. */
struct store;
struct store_txn;

int  store_open(struct store **out, const char *dir, size_t map_bytes);
void store_close(struct store *st);
/* Flushes committed transactions to disk (mdb_env_sync(force)). */
int  store_sync(struct store *st);

int  store_txn_begin(struct store *st, int rdonly, struct store_txn **out);
int  store_txn_commit(struct store_txn *t);	/* always frees t */
void store_txn_abort(struct store_txn *t);	/* always frees t */

struct store_inode {
	uint64_t ino;
	uint32_t mode;		/* S_IFMT bits included */
	uint32_t uid, gid;
	uint32_t nlink;
	uint64_t size;
	uint64_t rdev;
	int64_t  atime_sec, mtime_sec, ctime_sec;
	uint32_t atime_nsec, mtime_nsec, ctime_nsec;
	uint64_t generation;
};

int store_ino_get(struct store_txn *t, uint64_t ino, struct store_inode *out);
int store_ino_put(struct store_txn *t, const struct store_inode *in);
/* Deletes the inode record, its symlink target and its xattrs (not its
 * extents: see store_extent_*). */
int store_ino_del(struct store_txn *t, uint64_t ino);
/* Next unused inode number (a counter in misc, never reused). */
int store_ino_alloc(struct store_txn *t, uint64_t *ino_out);
/* Calls cb for every inode with nlink == 0 (orphans left by a crash). */
int store_ino_orphans(struct store_txn *t,
    int (*cb)(void *arg, uint64_t ino), void *arg);

/* Directory entries, key (parent, name). name is not NUL-terminated in the
 * database; functions take a C string. */
int store_dirent_get(struct store_txn *t, uint64_t parent, const char *name,
    uint64_t *ino_out);				/* -ENOENT */
int store_dirent_put(struct store_txn *t, uint64_t parent, const char *name,
    uint64_t ino);				/* replaces */
int store_dirent_del(struct store_txn *t, uint64_t parent, const char *name);
/* Returns 1 if parent has no entries, 0 otherwise. */
int store_dirent_empty(struct store_txn *t, uint64_t parent);
/* Calls cb(arg, name, ino) in name order, starting after `after` (NULL: from
 * the first); stops early when cb returns non-zero and returns that value. */
int store_dirent_iter(struct store_txn *t, uint64_t parent, const char *after,
    int (*cb)(void *arg, const char *name, uint64_t ino), void *arg);

/* Symlink targets. get copies at most size-1 bytes plus NUL; returns the
 * full target length. */
int store_symlink_put(struct store_txn *t, uint64_t ino, const char *target);
int store_symlink_get(struct store_txn *t, uint64_t ino, char *buf, size_t size);

/* Extended attributes (full names, e.g. "user.foo").
 * get: size 0 returns the length only; -ENODATA missing; -ERANGE short.
 * set: flags XATTR_CREATE (-EEXIST) / XATTR_REPLACE (-ENODATA).
 * list: NUL-separated names like listxattr(2); size 0 returns the length. */
int store_xattr_get(struct store_txn *t, uint64_t ino, const char *name,
    void *buf, size_t size);
int store_xattr_set(struct store_txn *t, uint64_t ino, const char *name,
    const void *val, size_t len, int flags);
int store_xattr_list(struct store_txn *t, uint64_t ino, char *buf, size_t size);
int store_xattr_del(struct store_txn *t, uint64_t ino, const char *name);

/* Extents: (ino, block number) -> block id. */
int store_extent_get(struct store_txn *t, uint64_t ino, uint64_t bno,
    unsigned char id[CR_ID_BYTES]);		/* -ENOENT: hole */
int store_extent_put(struct store_txn *t, uint64_t ino, uint64_t bno,
    const unsigned char id[CR_ID_BYTES]);
int store_extent_del(struct store_txn *t, uint64_t ino, uint64_t bno);
/* cb(arg, bno, id) for every extent of ino with bno >= from, ascending;
 * stops early when cb returns non-zero. The callback may not modify the
 * extents table. */
int store_extent_iter(struct store_txn *t, uint64_t ino, uint64_t from,
    int (*cb)(void *arg, uint64_t bno, const unsigned char *id), void *arg);

/* Block records: everything needed to fetch, check and open a block. */
struct store_block {
	unsigned char id[CR_ID_BYTES];
	unsigned char key[CR_KEY_BYTES];	/* convergent block key: secret */
	uint32_t plain_len;			/* plaintext bytes */
	uint32_t frag_len;			/* bytes of each fragment */
	uint8_t  k, m;
	uint8_t  pad[2];
	uint32_t refcount;			/* extents pointing here */
	unsigned char frag_hash[CR_EC_MAX][CR_HASH_BYTES];
	unsigned char peer[CR_EC_MAX][CR_PK_BYTES];	/* who holds frag i */
};

int store_block_get(struct store_txn *t, const unsigned char id[CR_ID_BYTES],
    struct store_block *out);			/* -ENOENT */
int store_block_put(struct store_txn *t, const struct store_block *b);
int store_block_del(struct store_txn *t, const unsigned char id[CR_ID_BYTES]);
int store_block_iter(struct store_txn *t,
    int (*cb)(void *arg, const struct store_block *b), void *arg);
int store_block_count(struct store_txn *t, uint64_t *count);

/* Journal records: a block of a file whose newest bytes are in a local
 * staging file (store_jrnl_fd) and not yet on suppliers. */
int store_jrnl_put(struct store_txn *t, uint64_t ino, uint64_t bno);
int store_jrnl_has(struct store_txn *t, uint64_t ino, uint64_t bno); /* 1/0 */
int store_jrnl_del(struct store_txn *t, uint64_t ino, uint64_t bno);
/* ascending (ino, bno); ino 0 = every file. Stops when cb returns != 0. */
int store_jrnl_iter(struct store_txn *t, uint64_t ino,
    int (*cb)(void *arg, uint64_t ino, uint64_t bno), void *arg);
int store_jrnl_count(struct store_txn *t, uint64_t *count);

/* Pinned supplier keys by address ("127.0.0.1:7071"). First contact pins
 * (returns 0); the same key again returns 0; a different key returns
 * -EKEYREJECTED and changes nothing. Own transaction. */
int store_peer_pin(struct store *st, const char *addr,
    const unsigned char pk[CR_PK_BYTES]);

/* Small named values in misc (e.g. "conf.k"); get returns the length,
 * -ENOENT when missing, copies at most size bytes. */
int store_misc_get(struct store_txn *t, const char *name, void *buf, size_t size);
int store_misc_put(struct store_txn *t, const char *name, const void *val,
    size_t len);

/* ==== write-back journal staging files (store/jrnl.c) ======================
 * <dir>/journal/<ino>.<bno>: the plaintext of one block, sparse, at most
 * one block long. */
/* open(2) flags as given (O_RDWR, O_CREAT...); returns an fd or -errno. */
int store_jrnl_fd(struct store *st, uint64_t ino, uint64_t bno, int flags);
int store_jrnl_unlink(struct store *st, uint64_t ino, uint64_t bno);
/* Total bytes of staging files on disk (st_blocks * 512). */
uint64_t store_jrnl_bytes(struct store *st);

/* ==== block cache (store/cache.c) =========================================
 * Plaintext blocks keyed by block id, in memory, least recently used
 * evicted beyond max_bytes. max_bytes 0 keeps nothing. Thread-safe. */
struct store_cache;
int  store_cache_new(struct store_cache **out, size_t max_bytes);
void store_cache_free(struct store_cache *c);
/* Copies up to cap bytes into buf; returns the block length or -ENOENT. */
ssize_t store_cache_get(struct store_cache *c, const unsigned char id[CR_ID_BYTES],
    void *buf, size_t cap);
/* Copies data in (no-op when it does not fit the bound). */
void store_cache_put(struct store_cache *c, const unsigned char id[CR_ID_BYTES],
    const void *data, size_t len);
void store_cache_drop(struct store_cache *c, const unsigned char id[CR_ID_BYTES]);
void store_cache_clear(struct store_cache *c);
size_t store_cache_bytes(struct store_cache *c);

/* ==== supplier fragment store (store/frag.c) ==============================
 * Fragments as files <dir>/<owner hex>/<2 hex>/<fragid hex>, written to a
 * temporary name, fsync'd, renamed, directory fsync'd; temporaries left by
 * a crash are removed at open. LMDB at <dir>/acct: per owner (bytes,
 * fragments), per fragment (size, hash). Thread-safe. */
struct store_frag;

/* quota_bytes 0 = unlimited. */
int  store_frag_open(struct store_frag **out, const char *dir, uint64_t quota_bytes);
void store_frag_close(struct store_frag *sf);
/* Durable when it returns 0. Storing an existing fragment again with the
 * same bytes is 0; -EDQUOT when the store's quota would be exceeded;
 * -ENOSPC when the disk is full. */
int store_frag_put(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], const void *data, size_t len);
/* *data is malloc()'d, caller frees. -ENOENT missing. */
int store_frag_get(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], void **data, size_t *len);
int store_frag_del(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES]);	/* -ENOENT */
/* cb(arg, fragid, size) for every fragment of owner; stops on cb != 0. */
int store_frag_list(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    int (*cb)(void *arg, const unsigned char *fragid, uint64_t size), void *arg);
/* Usage of one owner (owner NULL: all owners) and the store's quota. */
void store_frag_usage(struct store_frag *sf, const unsigned char *owner,
    uint64_t *bytes, uint64_t *fragments, uint64_t *quota);
/* Free bytes left for new fragments: min(quota - used, disk free). */
uint64_t store_frag_avail(struct store_frag *sf);

#endif
