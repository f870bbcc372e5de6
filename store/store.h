/* store/store.h - local state: the owner's LMDB metadata, the write-back
 * journal, the block cache, and the supplier's fragment store.
 * Uses crypto/ only for constants; never learns that a network exists.
 * Functions return 0 (or a count/length) on success, -errno on failure.
 *
 * Background threads (started through worker.h by store_open, stopped by
 * store_close; the block cache, pins and the supplier's fragment store
 * start none):
 *
 *   name          count      owns                              lock
 *   store-flush   1 per      syncing what commits left         retire_lock
 *                 store      unsynced (MDB_NOSYNC): an         (not held
 *                            mdb_env_sync every 5 s, when      while it
 *                            something was committed; then     empties files;
 *                            emptying the retired staging      a commit sets
 *                            files that sync covers            an atomic flag)
 *   store-spares  1 per      making empty spare staging        spare_lock (not
 *                 store      files: when fewer than 512 are    held while it
 *                            left, up to 1024; idle until a    creates a file)
 *                            write takes one
 *
 * Both wait on CLOCK_MONOTONIC (worker.h). store_sync() syncs on the
 * caller's thread. Lock order: spare_lock -> the maker's own (a kick). */
#ifndef PEERFS_STORE_H
#define PEERFS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

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

/* map_bytes: the LMDB map, the most the metadata may grow to (sparse;
 * -EINVAL when 0). */
int  store_open(struct store **out, const char *dir, size_t map_bytes);
void store_close(struct store *st);
/* Flushes committed transactions to disk (mdb_env_sync(force)). */
int  store_sync(struct store *st);

/* Bytes of the map in use (pages not on the freelist) and its size
 * (store/space.c). LMDB needs free pages even to delete, so writers that
 * add records check this and stop short of the end (ENOSPC), leaving room
 * for the deletes that make room. Cheap while the map is less than half
 * full. */
int  store_map_usage(struct store *st, uint64_t *used, uint64_t *size);
/* 0, or -ENOSPC when the map is too full for a writer of `level` to add
 * records: STORE_ROOM_JOURNAL (new journal blocks), STORE_ROOM_COMMIT
 * (upload commits, index versions); below that only deletes, which make
 * room. */
enum { STORE_ROOM_COMMIT = 1, STORE_ROOM_JOURNAL = 2 };
int  store_map_room(struct store *st, int level);

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

/* Sets the times `which` (STORE_ATIME | STORE_MTIME | STORE_CTIME) of in
 * to the wall clock (store/meta.c). */
enum { STORE_ATIME = 1, STORE_MTIME = 2, STORE_CTIME = 4 };
void store_inode_touch(struct store_inode *in, int which);
/* The same to ts: several inodes of one operation get one time. */
void store_inode_stamp(struct store_inode *in, int which,
    const struct timespec *ts);

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

/* Inline blocks: (ino, block number) -> the block's plaintext (1 ..
 * STORE_INLINE_MAX bytes), for tiny files kept in the metadata (and so in
 * the index) instead of on suppliers. An (ino, bno) has an extent or an
 * inline record, never both. get copies at most cap bytes and sets *len
 * to the record's length (-ENOENT: none); put replaces. */
#define STORE_INLINE_MAX 4096
int store_inline_get(struct store_txn *t, uint64_t ino, uint64_t bno,
    void *buf, size_t cap, size_t *len);
int store_inline_put(struct store_txn *t, uint64_t ino, uint64_t bno,
    const void *p, size_t len);			/* -EINVAL: 0 or too long */
int store_inline_del(struct store_txn *t, uint64_t ino, uint64_t bno);

/* Block records: everything needed to fetch, check and open a block. */
#define STORE_AUDITS 4		/* precomputed audit answers per fragment */
#define STORE_AUDIT_BYTES 16	/* bytes kept of each answer */
struct store_block {
	unsigned char id[CR_ID_BYTES];
	unsigned char key[CR_KEY_BYTES];	/* convergent block key: secret */
	uint32_t plain_len;			/* plaintext bytes */
	uint32_t frag_len;			/* bytes of each fragment */
	uint8_t  k, m;
	uint8_t  pad[1];		/* pad[0]: STORE_BLOCK_* flags */
	uint8_t  seal;			/* how it was sealed: CR_SEAL_* (a
					 * record from before it: 0, WHOLE) */
	uint32_t refcount;			/* extents pointing here */
	unsigned char frag_hash[CR_EC_MAX][CR_HASH_BYTES];
	unsigned char peer[CR_EC_MAX][CR_PK_BYTES];	/* who holds frag i */
	uint8_t  lost[CR_EC_MAX];	/* 1: fragment i missing or corrupt */
	uint32_t audit_next[CR_EC_MAX];	/* nonce number of the next audit */
	uint32_t audit_end[CR_EC_MAX];	/* answers known up to (excluded) */
	unsigned char audit[CR_EC_MAX][STORE_AUDITS][STORE_AUDIT_BYTES];
					/* answer for nonce j at [j % STORE_AUDITS] */
};

/* A block of the index (net/index.c): kept alive like file data, but no
 * extent points at it and status counts leave it out. */
#define STORE_BLOCK_INDEX 0x01

int store_block_get(struct store_txn *t, const unsigned char id[CR_ID_BYTES],
    struct store_block *out);			/* -ENOENT */
int store_block_put(struct store_txn *t, const struct store_block *b);
int store_block_del(struct store_txn *t, const unsigned char id[CR_ID_BYTES]);
int store_block_iter(struct store_txn *t,
    int (*cb)(void *arg, const struct store_block *b), void *arg);
int store_block_count(struct store_txn *t, uint64_t *count);
/* The same, only the blocks whose id sorts after `after` (NULL: all), in
 * id order: lets a slow background pass resume where it stopped. */
int store_block_iter_after(struct store_txn *t, const unsigned char *after,
    int (*cb)(void *arg, const struct store_block *b), void *arg);

/* Rebuild queue: blocks with fragments to rebuild, most urgent first
 * (fewest surviving fragments). put replaces the block's entry. */
int store_rebuild_put(struct store_txn *t, const unsigned char id[CR_ID_BYTES],
    uint32_t surviving);
/* The most urgent entry (lowest surviving), -ENOENT when empty. */
int store_rebuild_first(struct store_txn *t, unsigned char id[CR_ID_BYTES],
    uint32_t *surviving);
int store_rebuild_del(struct store_txn *t, const unsigned char id[CR_ID_BYTES]);
int store_rebuild_count(struct store_txn *t, uint64_t *count);
/* cb(arg, id, surviving), most urgent first; stops when cb returns != 0
 * (returned as is). Lets several workers skip the entries others hold. */
int store_rebuild_iter(struct store_txn *t,
    int (*cb)(void *arg, const unsigned char *id, uint32_t surviving),
    void *arg);

/* Deletion queue: fragments to delete from one supplier each (a block
 * nothing references any more, or a fragment moved away by a rebuild).
 * bytes is the fragment size, for `status`. */
int store_delq_put(struct store_txn *t, const unsigned char pk[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], uint32_t bytes);
/* The same, held until the index version hold_seq is published: the
 * fragment of a block freed while retained versions still reference it
 * (--keep-versions). A hold never shrinks when the entry is put again. */
int store_delq_put_held(struct store_txn *t, const unsigned char pk[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], uint32_t bytes,
    uint64_t hold_seq);
int store_delq_del(struct store_txn *t, const unsigned char pk[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES]);
/* cb(arg, pk, fragid, bytes) in key order; stops when cb returns != 0. */
int store_delq_iter(struct store_txn *t,
    int (*cb)(void *arg, const unsigned char *pk, const unsigned char *fragid,
    uint32_t bytes), void *arg);
/* Only the entries whose hold is at most seq (due for deletion). */
int store_delq_iter_due(struct store_txn *t, uint64_t seq,
    int (*cb)(void *arg, const unsigned char *pk, const unsigned char *fragid,
    uint32_t bytes), void *arg);
int store_delq_stats(struct store_txn *t, uint64_t *count, uint64_t *bytes);

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

/* ==== named values in misc (store/misc.c) =================================
 * Every key of the misc table is named once, in store/misc.c, with its
 * type; callers pass a STORE_MISC_* and never spell a key, and integers
 * are stored big-endian. The STORE_MISC_INDEX_* keys (names "index.*") are
 * the owner's bookkeeping of its index versions: never part of the index
 * (store/index.c); every other key is, so a restored home gets it back.
 * Older homes are upgraded by store_open() (see STORE_MISC_BLOCK_SIZE). */
enum store_misc_key {
	/* u64: the next inode number (store_ino_alloc). */
	STORE_MISC_NEXT_INO,
	/* u64: the home's block size in bytes, fixed by its first mount.
	 * Homes before it kept a native-endian u32 under another name:
	 * store_open() rewrites that one as this, in one transaction. */
	STORE_MISC_BLOCK_SIZE,
	/* u64 list: the inodes pinned with `peerfs pin` (owner/pin.c). */
	STORE_MISC_PINS,
	/* u64 list: k, m: the home's erasure code, fixed by its first mount
	 * (cli/mount.c); in the index, so a restored home keeps it. */
	STORE_MISC_EC,
	/* From here on the index.* bookkeeping, never in the index. */
	/* u64: the highest head seq published or seen (owner/index.c). */
	STORE_MISC_INDEX_SEQ,
	/* u64: the change number the newest version covers. */
	STORE_MISC_INDEX_GEN,
	/* u64: the change number of the uploader's own bookkeeping. */
	STORE_MISC_INDEX_SELF,
	/* bytes: the parts of the newest version (owner/layout.c's format;
	 * holds block keys: wipe a copy before freeing it). */
	STORE_MISC_INDEX_PARTS,
	/* bytes: the blocks of the retained versions (owner/index.c). */
	STORE_MISC_INDEX_HIST,
	/* u64 list: seq, time of the head a restore used. */
	STORE_MISC_INDEX_RESTORED,
	/* flag: that head was not the newest; this home never deletes
	 * fragments from suppliers. */
	STORE_MISC_INDEX_OLDER,
	/* u64: when (ms since 1970) the version this home last published or
	 * followed was made (owner/catchup.c judges "changed since"). */
	STORE_MISC_INDEX_TIME,
	/* bytes: this home's node id (owner/publish.c), made at its first
	 * mount, never copied by a restore. */
	STORE_MISC_INDEX_NODE,
	/* u64: index versions this home published or adopted, counting a
	 * head that only renewed the lease on the same index once (owner's
	 * --keep-versions holds, owner/refs.c). Absent: index.seq. */
	STORE_MISC_INDEX_VERS,
	STORE_MISC_N
};

/* The key's name in the misc table (for logs and tests). */
const char *store_misc_name(enum store_misc_key k);

/* Each function is for keys of its type only (assert). A get returns
 * -ENOENT when the key is missing and -EIO when its value is not of its
 * type; out-parameters are set only on success. */

/* u64 keys: 0, -ENOENT, -EIO, -errno. */
int store_misc_u64_get(struct store_txn *t, enum store_misc_key k,
    uint64_t *v);
int store_misc_u64_put(struct store_txn *t, enum store_misc_key k,
    uint64_t v);

/* u64 list keys: get copies the first max values (at most) to v and
 * returns how many the key holds (0 for an empty list), -ENOENT, -EIO or
 * -errno. put replaces the list with v[0 .. n). */
int store_misc_u64s_get(struct store_txn *t, enum store_misc_key k,
    uint64_t *v, size_t max);
int store_misc_u64s_put(struct store_txn *t, enum store_misc_key k,
    const uint64_t *v, size_t n);

/* Flags (presence): get returns 1 set, 0 not set, -errno; put sets
 * (on != 0) or clears. */
int store_misc_flag_get(struct store_txn *t, enum store_misc_key k);
int store_misc_flag_put(struct store_txn *t, enum store_misc_key k, int on);

/* Byte strings in a format of the caller's: get sets *out to a malloc()'d
 * copy (the caller frees it, even when *len is 0) and returns 0, or
 * -ENOENT, -ENOMEM, -errno; put replaces. */
int store_misc_bytes_get(struct store_txn *t, enum store_misc_key k,
    void **out, size_t *len);
int store_misc_bytes_put(struct store_txn *t, enum store_misc_key k,
    const void *p, size_t len);

/* Raw access by name (store/meta.c): for store/ itself and for tests that
 * build an old home; callers outside store/ use the typed functions
 * above. get returns the length, -ENOENT when missing, copies at most
 * size bytes. */
int store_misc_get(struct store_txn *t, const char *name, void *buf, size_t size);
int store_misc_put(struct store_txn *t, const char *name, const void *val,
    size_t len);

/* ==== write-back journal staging files (store/jrnl.c) ======================
 * <dir>/journal/<ino>.<bno> (decimal): the newest bytes written of one
 * block, sparse, at most one block long; bytes past its end read as
 * zeros. Its jrnl record (above) says that it holds the block's newest
 * bytes.
 *
 * A write that leaves part of a stored block whose older bytes are not at
 * hand (no network in the write path) makes the staging file an overlay:
 * it then holds only the ranges written, and a range list, file
 * <dir>/journal/<ino>.<bno | 2^63>, names them as 8-byte records (u32 BE
 * offset, u32 BE length), appended; a torn last record is ignored.
 * Everything not listed comes from the stored block the extent still
 * points at (owner/ merges the two). No file descriptor leaves store/. */

/* A piece of a staging file write. */
struct store_jrnl_piece {
	uint32_t off;
	const void *p;
	size_t len;
};
enum {
	STORE_JRNL_NEW = 1,	/* start from an empty staging file, no range
				 * list: anything left there is stale */
	STORE_JRNL_SYNC = 2,	/* fdatasync before returning */
};
/* Writes the pieces into the staging file of (ino, bno), creating it
 * when needed (STORE_JRNL_NEW: always anew). 0 or -errno. */
int store_jrnl_write(struct store *st, uint64_t ino, uint64_t bno,
    const struct store_jrnl_piece *pieces, int n, int flags);
/* Reads [off, off + len) of the staging file into buf, zeros past its
 * end. 0; -ENOENT when there is no staging file (buf all zeros); -errno. */
int store_jrnl_read(struct store *st, uint64_t ino, uint64_t bno,
    uint32_t off, void *buf, size_t len);
/* Cuts the staging file to len bytes (none there: 0). */
int store_jrnl_cut(struct store *st, uint64_t ino, uint64_t bno, uint32_t len);
/* Removes the staging file and its range list from the journal, after a
 * commit that dropped the block's record: they are kept whole elsewhere
 * until a sync makes that commit durable, then emptied and kept as spares
 * for the next one; the store's open puts them back when their record
 * outlived a power cut. 0, -ENOENT when neither existed. */
int store_jrnl_unlink(struct store *st, uint64_t ino, uint64_t bno);

/* The range list of (ino, bno): 1 with *rg malloc()'d (n pairs of offset,
 * length) when the block is an overlay, 0 when not, or -errno. */
int store_jrnl_ranges(struct store *st, uint64_t ino, uint64_t bno,
    uint32_t **rg, size_t *n);
/* Appends [off, off + len). create: a new list (durable before it
 * returns, as the record about to be committed depends on it); else
 * -ENOENT when the block is no overlay. -EFBIG when the list is full:
 * fold the block (write it whole, then store_jrnl_ranges_drop). */
int store_jrnl_range_add(struct store *st, uint64_t ino, uint64_t bno,
    uint32_t off, uint32_t len, int create);
/* The block is plain again: its staging file holds every byte. */
int store_jrnl_ranges_drop(struct store *st, uint64_t ino, uint64_t bno);
/* 1 when the ranges cover [off, off + len). */
int store_jrnl_ranges_cover(const uint32_t *rg, size_t n, uint64_t off,
    uint64_t len);

/* Total bytes of staging files on disk (st_blocks * 512). */
uint64_t store_jrnl_bytes(struct store *st);
/* cb(arg, ino, bno) for every block with a staging file or a range list
 * on disk (a block may come twice), in directory order; stops when cb
 * returns != 0 (returned as is). For the mount's start: files left by a
 * crash without a record. The callback may unlink the block it is
 * given. */
int store_jrnl_scan(struct store *st,
    int (*cb)(void *arg, uint64_t ino, uint64_t bno), void *arg);

/* ==== block cache (store/cache.c) =========================================
 * Plaintext blocks keyed by block id, in memory, least recently used
 * evicted beyond max_bytes. max_bytes 0 keeps nothing. Thread-safe. */
struct store_cache;
int  store_cache_new(struct store_cache **out, size_t max_bytes);
void store_cache_free(struct store_cache *c);
/* Copies bytes [off, off + len) of the block (fewer at its end) to buf:
 * a read needs its range, not the whole block. The block's length, or
 * -ENOENT. */
ssize_t store_cache_get_range(struct store_cache *c,
    const unsigned char id[CR_ID_BYTES], size_t off, void *buf, size_t len);
/* Copies up to cap bytes into buf; returns the block length or -ENOENT. */
ssize_t store_cache_get(struct store_cache *c, const unsigned char id[CR_ID_BYTES],
    void *buf, size_t cap);
/* Copies data in (no-op when it does not fit the bound). */
void store_cache_put(struct store_cache *c, const unsigned char id[CR_ID_BYTES],
    const void *data, size_t len);
void store_cache_drop(struct store_cache *c, const unsigned char id[CR_ID_BYTES]);
void store_cache_clear(struct store_cache *c);
size_t store_cache_bytes(struct store_cache *c);

/* ==== pinned blocks (store/pin.c) ==========================================
 * <dir>/pinned/<block id hex>: a block's sealed ciphertext kept on the
 * owner's disk for offline use (`peerfs pin`). Written to a temporary,
 * fsync'd, renamed. Thread-safe (plain files). */
int store_pin_put(struct store *st, const unsigned char id[CR_ID_BYTES],
    const void *data, size_t len);
/* Copies the whole file into buf: its length, -ENOENT, -EFBIG (> cap). */
ssize_t store_pin_get(struct store *st, const unsigned char id[CR_ID_BYTES],
    void *buf, size_t cap);
int store_pin_has(struct store *st, const unsigned char id[CR_ID_BYTES]); /* 1/0 */
int store_pin_del(struct store *st, const unsigned char id[CR_ID_BYTES]);
/* cb(arg, id, bytes) for every pinned block, no order; stops when cb
 * returns != 0 (returned as is). Removes temporaries left by a crash. */
int store_pin_list(struct store *st,
    int (*cb)(void *arg, const unsigned char *id, uint64_t bytes), void *arg);

/* ==== supplier fragment store (store/frag.c) ==============================
 * Fragments as files <dir>/<owner hex>/<2 hex>/<fragid hex>, written to a
 * temporary name, fsync'd, renamed, directory fsync'd; temporaries left by
 * a crash are removed at open. LMDB at <dir>/acct: per owner (bytes,
 * fragments, what the disk pays for them), per fragment (size, hash), per
 * owner heads and last contact. Thread-safe. One process at a time: open
 * takes an exclusive lock on <dir>/.lock (-EBUSY while another holds it)
 * and writes its pid there.
 *
 * Accounts. Every owner is charged what its files cost the disk: each
 * fragment and each head rounded up to the file system's block size plus
 * STORE_FRAG_REC_COST (inode, directory entry, accounting record), so
 * that a one-byte fragment costs what it really takes (about 4.5 KiB on
 * ext4), not one byte. An owner's charge is held against its own quota
 * and a cap on its fragments; the sum of all charges against the store's
 * total quota; what the disk has free, less a reserve kept for the
 * supplier's own metadata, against every new byte. Refusals never touch
 * what an owner already stores. */
struct store_frag;

#define STORE_FRAG_REC_COST	512u

/* Who may store and how much (store_frag_set_policy). Friends may use up
 * to the total quota; strangers (any other key) up to stranger_quota
 * each, and, when there are friends, all strangers together at most half
 * of the total, so that identities made up by the thousand cannot take
 * the friends' room. */
struct store_frag_policy {
	uint64_t quota;		/* total charge lent; 0: as opened */
	uint64_t stranger_quota;	/* per stranger; 0: STORE_FRAG_STRANGER_DEFAULT */
	uint64_t max_frags;	/* per owner; 0: its quota / 16 KiB, >= 4096 */
	uint64_t reserve;	/* disk bytes never lent; 0: the default */
	int friends_only;	/* strangers are not admitted at all */
	const unsigned char (*friends)[CR_PK_BYTES];	/* copied */
	size_t nfriends;
	/* The fair deal (--accept deal): a stranger may hold at most what
	 * its node holds for us and our audits proved (earned(), called
	 * under the store's lock: it must not call back into the store)
	 * plus credit, and never more than stranger_quota. */
	int deal;
	uint64_t credit;
	uint64_t (*earned)(void *arg, const unsigned char owner[CR_PK_BYTES]);
	void *earned_arg;
};
#define STORE_FRAG_STRANGER_DEFAULT	(256ull << 20)

/* quota_bytes 0 = the store's default: 10% of the free space of its file
 * system when the store was first opened, remembered in the store (a
 * supplier lends a tenth of what was free, not the disk it runs on; a
 * later --quota overrides it). The disk reserve defaults to 1% of the
 * file system, at least 64 MiB and at most 1 GiB. */
int  store_frag_open(struct store_frag **out, const char *dir, uint64_t quota_bytes);
void store_frag_close(struct store_frag *sf);
/* Replaces the admission policy (p copied; NULL: everyone a friend, the
 * state after open). */
int  store_frag_set_policy(struct store_frag *sf, const struct store_frag_policy *p);
/* The charge of a file of len bytes on this store. */
uint64_t store_frag_cost(const struct store_frag *sf, uint64_t len);

/* Durable when it returns 0. hash is the owner's claim about the bytes
 * (the PUT carries it; opaque here, the supplier does not hash again): it
 * is recorded, and used only to recognise a re-put of the same fragment
 * (same size and hash: 0, nothing written). A lying owner only hurts
 * itself: its own fragment is not replaced. (Reconcile at open records
 * BLAKE2b-256 of a file it re-accounts; the next put just rewrites it.)
 * A put first uses the owner's reservation (store_frag_reserve), then
 * whatever room is left. -EACCES owner not admitted; -EDQUOT its own
 * quota or fragment cap; -ENOSPC the store is full (total quota,
 * strangers' share, or the disk less its reserve). */
int store_frag_put(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], const void *data, size_t len,
    const unsigned char hash[CR_HASH_BYTES]);
/* Holds room for up to count fragments of size bytes each for owner, for
 * STORE_FRAG_RESERVE_SECS (a later grant extends it); puts of that owner
 * use it first. A grant covers what the owner holds already: what it
 * holds grows to the new grant when that is bigger, never by the sum of
 * grants that cross. *granted gets how many (1 .. count), *left the
 * owner's allowance left, its reservation included. -EACCES, -EDQUOT, -ENOSPC as for a put
 * when not even one fits; -EINVAL for size or count 0. */
#define STORE_FRAG_RESERVE_SECS	120
int store_frag_reserve(struct store_frag *sf,
    const unsigned char owner[CR_PK_BYTES], uint32_t size, uint32_t count,
    uint32_t *granted, uint64_t *left);
/* *data is malloc()'d, caller frees. -ENOENT missing. */
int store_frag_get(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], void **data, size_t *len);
/* Only bytes [off, off + len) of it, read alone (len >= 1): *data
 * malloc()'d, len bytes. -ERANGE when they pass its end (*size, when not
 * NULL, gets its length), -ENOENT missing, -EINVAL len 0. */
int store_frag_get_range(struct store_frag *sf,
    const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES], uint64_t off, size_t len,
    void **data, uint64_t *size);
int store_frag_del(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES]);	/* -ENOENT */
/* cb(arg, fragid, size) for every fragment of owner; stops on cb != 0. */
int store_frag_list(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    int (*cb)(void *arg, const unsigned char *fragid, uint64_t size), void *arg);
/* Usage of one owner (owner NULL: all owners) in fragment bytes as sent,
 * and the store's total quota. */
void store_frag_usage(struct store_frag *sf, const unsigned char *owner,
    uint64_t *bytes, uint64_t *fragments, uint64_t *quota);
/* Charge left for new fragments over every owner: min(quota - charged,
 * disk free - reserve). */
uint64_t store_frag_avail(struct store_frag *sf);

/* One owner's account. */
struct store_frag_acct {
	unsigned char owner[CR_PK_BYTES];
	uint64_t bytes, fragments;	/* fragments as sent */
	uint64_t heads;			/* heads held */
	uint64_t charged;		/* fragments and heads, as the disk pays */
	uint64_t reserved;		/* held for it now (0 when read offline) */
	uint64_t quota;			/* its quota under the policy */
	uint64_t left;			/* what it may still add now */
	int64_t  last_contact;		/* unix seconds, 0 never */
	int	 friend;		/* 0 stranger, 1 friend */
	int	 admitted;		/* 0: --accept friends and a stranger */
	int	 deal;			/* 1: held to the fair deal */
	uint64_t earned;		/* deal: what its node holds for us,
					 * proved by our audits */
	uint64_t deal_limit;		/* deal: earned + credit */
	int64_t  deficit_since;		/* unix s: beyond the deal since, 0 not */
	int64_t  evicted;		/* unix s: evicted by the deal (refused
					 * for a grace since), 0 not */
};
/* The account of owner as the policy sees it now (zeros for an owner
 * that stores nothing). */
void store_frag_account(struct store_frag *sf, const unsigned char *owner,
    struct store_frag_acct *out);
/* Notes that owner was heard from (for `accounts`); only owners that
 * store something get a record, at most one write a minute each. */
void store_frag_touch(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES]);
/* cb for every owner that stores something, in key order; stops when cb
 * returns != 0. Works on an open store or, with sf NULL, read-only on the
 * store at dir, served by another process or not: with the policy its
 * server saved (none saved: quota and left 0), without reservations. */
int store_frag_accounts(struct store_frag *sf, const char *dir,
    int (*cb)(void *arg, const struct store_frag_acct *a), void *arg);
/* Deletes everything owner stores (fragments, heads, its account):
 * *freed gets the charge given back. */
int store_frag_evict(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    uint64_t *freed);
/* Evictions asked by another process while this one serves: files
 * <dir>/evict/<owner hex> (store_frag_evict_request), each done and
 * removed. Returns how many were done. */
int store_frag_evict_pending(struct store_frag *sf);
/* Writes the request for the process serving dir, and returns its pid
 * (from <dir>/.lock) so that the caller can wake it; -ENOENT when none. */
int store_frag_evict_request(const char *dir,
    const unsigned char owner[CR_PK_BYTES], long *pid);

/* ==== supplier: owners' signed heads (store/heads.c) =======================
 * <dir>/<owner hex>/heads/<seq as 20 decimal digits>, written like
 * fragments (temp, fsync, rename, dir fsync). Each owner keeps the heads
 * of its STORE_HEADS_KEEP newest distinct indexes (cr_head.index), of
 * each index the first head and the newest (a head that only renews the
 * write lease on an index replaces the previous such head); the others
 * are removed. Heads are charged to
 * their owner's account like fragments (a head may be 1 MiB, and
 * identities are free). */
#define STORE_HEADS_KEEP 16

/* Verifies the head (cr_head_verify: -EBADMSG bad signature, -EPROTO
 * malformed), requires its owner to be `owner` (-EPERM), and its seq to
 * be newer than every head held for that owner (-ESTALE: rollback
 * protection), and room in the owner's account for it, less the heads it
 * replaces (-EACCES, -EDQUOT, -ENOSPC as store_frag_put). 0 when stored
 * durably. */
int store_head_put(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const void *head, size_t len);
/* cb(arg, seq, head, len) newest first, at most max heads (0 = all);
 * stops when cb returns != 0. Heads whose file fails verification are
 * skipped with a log line (a damaged disk never serves a forged head). */
int store_head_list(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    int max, int (*cb)(void *arg, uint64_t seq, const void *head, size_t len),
    void *arg);

/* The owner's locator: the DHT key under which this supplier announces
 * its node record while it holds the owner's heads, so that a restore
 * from the recovery code alone finds it. Kept in <owner hex>/heads/locator,
 * one per owner, replaced by the next; refused (-EACCES) for an owner
 * holding no head here. 1 stored (new or changed), 0 the same already,
 * -errno. */
#define STORE_LOCATOR_BYTES	32
int store_locator_put(struct store_frag *sf,
    const unsigned char owner[CR_PK_BYTES],
    const unsigned char loc[STORE_LOCATOR_BYTES]);
/* Up to max locators of owners holding heads here, into out; returns how
 * many, or -errno. */
int store_locator_list(struct store_frag *sf,
    unsigned char (*out)[STORE_LOCATOR_BYTES], int max);

/* ==== the index: the owner's metadata as bytes (store/index.c) =============
 * For recovery from the key alone. A stream of records
 *   u8 table | u32 BE key length | u32 BE value length | key | value
 * (value length 0xffffffff: the key was deleted; only in change segments)
 * over the tables inodes, dirents, symlinks, xattrs, extents, blocks,
 * peers, misc and inline -- not jrnl, rebuild, delq or the change log (local
 * work that a new machine must not inherit).
 * Every committed write transaction that changes an indexed table gets a
 * new change number (gen) and logs the keys it touched, so a segment of
 * the changes since the last upload costs what changed, not the tree. */

/* Current change number (0 for a new store). */
int store_index_gen(struct store *st, uint64_t *gen);
/* The change number write transaction t commits as (one is assigned now
 * if t has changed no indexed table yet): lets the index uploader tell
 * its own bookkeeping from the user's changes. */
int store_txn_gen(struct store_txn *t, uint64_t *gen);
/* A full snapshot: out(arg, bytes, n) is called with consecutive pieces;
 * *gen gets the change number the snapshot includes. */
int store_index_dump(struct store *st, uint64_t *gen,
    int (*out)(void *arg, const void *p, size_t n), void *arg);
/* The changes after since_gen up to *gen (the current one): for each key
 * touched, its current value or a deletion record. */
int store_index_changes(struct store *st, uint64_t since_gen, uint64_t *gen,
    int (*out)(void *arg, const void *p, size_t n), void *arg);
/* 1 when a change after since_gen touched a table people change (inodes,
 * dirents, symlinks, xattrs, extents, inline), 0 when only bookkeeping
 * ones (blocks, peers, misc) or nothing changed, or -errno. Reads the
 * change log's keys alone, not the values store_index_changes streams:
 * cheap enough for every fsync and status, however much is pending. */
int store_index_files_changed(struct store *st, uint64_t since_gen);
/* Drops change-log entries up to gen (once a snapshot covering them is
 * safely on suppliers). */
int store_index_trim(struct store *st, uint64_t upto_gen);
/* Applies a snapshot or segment (records as above) in one transaction;
 * -EPROTO on malformed input (nothing applied). Applying records does not
 * log changes (the restored state is already on the network). */
int store_index_apply(struct store *st, const void *p, size_t n);
/* The same after emptying the indexed tables (but misc "index." keys), in
 * one transaction: a snapshot replaces what the store held (a read-only
 * node following the newest version, owner/publish.c). */
int store_index_replace(struct store *st, const void *p, size_t n);

/* ---- the audit ledger (store/ledger.c) ----
 * What the owner's audits proved about each supplier, by supplier id:
 * written by the mount's auditor, read by the supplier of the same home
 * (the fair deal). <home>/ledger, replaced whole (atomic rename). */
struct store_ledger_ent {
	unsigned char pk[CR_PK_BYTES];	/* the supplier's id */
	uint64_t held;		/* bytes of our fragments there, not lost */
	uint64_t proved;	/* held while its audits stand, else 0 */
	int64_t first_ok;	/* unix s: first pass since the last failure */
	int64_t last_ok, last_fail;	/* unix s; 0 never */
	/* Bytes of ours it carried as a relay (to and from suppliers
	 * reached through it), in all: earned like bytes held (the fair
	 * deal, net/deal.c). */
	uint64_t relayed;
};
/* The mount's state beside the balances: what the eviction rule needs to
 * trust them (store_deal_due). */
struct store_ledger_state {
	int64_t written;	/* unix s the mount wrote it; 0 unknown */
	int64_t pass_end;	/* unix s its last full audit pass ended; 0 never */
	int rebuilding;		/* 1: a rebuild was queued or running */
};
int store_ledger_write(const char *path, const struct store_ledger_state *s,
    const struct store_ledger_ent *e, size_t n);
/* *e malloc'd (free()); *s (may be NULL) zeros for a version 1 file;
 * -ENOENT no file, -EINVAL a damaged one. */
int store_ledger_read(const char *path, struct store_ledger_state *s,
    struct store_ledger_ent **e, size_t *n);

/* ---- the fair deal's eviction (store/accounts.c) ----
 * A stranger held to the deal (not a friend; not under --accept open)
 * whose charge exceeds what it earned plus credit is in deficit. The
 * rule, for one owner (over: in deficit now; *since its deficit clock,
 * unix s, 0 stopped; updated): the clock stops when the balance recovers
 * or the ledger is no evidence (none, never a full audit pass, or not
 * written for longer than grace); while the mount rebuilds no clock
 * starts and nobody is due; else it starts, and the owner is due (1)
 * once it has run for grace and a full audit pass ended since it
 * started. */
int store_deal_due(int64_t now, int64_t grace, int over,
    const struct store_ledger_state *ls, int64_t *since);
/* Applies the rule to every owner of sf at now (clocks kept in their
 * contact records: they survive restarts), evicting the due ones through
 * store_frag_evict (a request file first: a crash midway is finished at
 * the next open) and refusing them new space (-EDQUOT) for one grace
 * after. Returns how many were evicted, or -errno. */
int store_frag_deal_evict(struct store_frag *sf, int64_t now, int64_t grace,
    const struct store_ledger_state *ls);

#endif
