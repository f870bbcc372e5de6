/* owner/owner.h - the owner's engine: everything a mount does that would
 * still be true without a kernel mount. Files' bytes go through a local
 * write-back journal to suppliers (dirty table, upload workers), come back
 * from the journal, the cache, pinned copies or suppliers; blocks are
 * referenced, deduplicated, rebuilt, audited and deleted; the metadata
 * reaches the suppliers as signed index versions. fs/ (the FUSE face) and
 * cli/ call what is below; owner/ uses net/, store/ and crypto/ and never
 * fs/. Functions return 0 (or a count) on success and -errno on failure.
 *
 * Background threads, all started through worker.h by owner_open and
 * stopped by owner_close; the queues they drain live in the store, so an
 * unmount or a crash loses none of their work:
 *
 *   name          count               owns                     lock
 *   upload        conf.upload_threads the dirty table's queue: dirty->lock,
 *                 (owner/upload.c)    seals and stores blocks  stripes
 *   rebuild-scan  1 (owner/rebuild.c) supplier states, queues  rebuild->lock
 *                                     blocks to rebuild
 *   rebuild       conf.rebuild_jobs   the rebuild queue, per-  rebuild->lock
 *                                     block backoff, the rate
 *                                     token bucket
 *   audit         1 (owner/audit.c)   the audit cursor         audit->lock
 *   delete        1 (owner/delete.c)  the delete queue         refs->lock
 *   sweep         1 (owner/sweep.c)   orphans of the last      (its own)
 *                                     sweep
 *   pin           1 (owner/pin.c)     the wanted pinned blocks pin->lock
 *   index         1 (owner/publish.c) publishing versions      index->pub
 *
 * None without a network (conf.net NULL) but upload. Lock order: stripe ->
 * LMDB write txn -> any module lock; no module lock is held across a
 * network call or while taking another module's lock. */
#ifndef PEERFS_OWNER_H
#define PEERFS_OWNER_H

#include <stddef.h>
#include <stdint.h>

#include "net/net.h"
#include "store/store.h"

/* A complete configuration: cli/ fills every field from its option table
 * (no "0 = default" below cli/). */
struct owner_conf {
	struct store *store;
	struct store_cache *cache;		/* may hold nothing (size 0) */
	struct net *net;			/* NULL: no network (tests) */
	const struct cr_identity *id;		/* the owner's keys */
	unsigned char datakey[CR_KEY_BYTES];	/* cr_subkey(CR_SUBKEY_DATA) */
	uint32_t block_size;			/* bytes */
	int ec_k, ec_m;				/* code of new blocks */
	int upload_threads;
	int sync_timeout_ms;			/* fsync/sync give up */
	/* Write-back delay: a block untouched this long is uploaded (full
	 * blocks, fsync, sync and umount: at once); < 0: at close. */
	int64_t write_back_ms;
	/* Index versions whose data stays on suppliers: a block freed now
	 * is deleted only once keep_versions newer versions are published
	 * (0: at once). */
	int keep_versions;
	int rebuild_jobs;			/* rebuild workers */
	uint64_t rebuild_rate;			/* bytes/s rebuilds may move */
	int64_t audit_interval_ms;		/* one pass over every fragment */
	/* The audit ledger (owner/audit.c, store/ledger.c): written to
	 * ledger_path (NULL: kept in memory only) for the supplier of this
	 * home; a supplier whose audits passed for vet_after_ms is vetted
	 * (0: everyone is). */
	const char *ledger_path;
	int64_t vet_after_ms;
	int64_t sweep_interval_ms;		/* orphan sweep; < 0: never */
	/* The write lease (owner/publish.c): how long a head's lease lasts
	 * unless renewed, and whether to ask its holder to hand it over. */
	int64_t lease_ms;
	int take_over;
	/* Something finds suppliers while mounted (the DHT's hirer): with
	 * none known and none found, nothing can be uploaded until the
	 * next mount, and status says so (umount stops waiting). */
	int finds_suppliers;
};

struct owner;

/* Opens the engine over conf (copied): requeues what the journal holds
 * from before, removes staging files a crash left, starts the threads. */
int  owner_open(struct owner **out, const struct owner_conf *conf);
/* Stops the threads (what is pending stays in the journal), uploads the
 * last index version (bounded by network timeouts) and frees. NULL-safe. */
void owner_close(struct owner *o);
uint32_t owner_block_size(const struct owner *o);

/* ---- file contents (owner/write.c, owner/read.c, owner/dirty.c) ---- */

/* An open file: remembers the last stored block read through it, so
 * sequential reads of an uncached block fetch it once. */
struct owner_file;
int  owner_file_open(struct owner *o, uint64_t ino, struct owner_file **out);
/* The last close of ino's handle f (f freed; NULL-safe): with no
 * write-back delay ino's blocks are queued now. */
void owner_file_close(struct owner *o, uint64_t ino, struct owner_file *f);

/* Reads [off, off + size) of ino (clamped to its size) into buf (size
 * bytes): the number of bytes read, or -errno (-EIO when a block cannot
 * be had from anywhere). f may be NULL. */
ssize_t owner_read(struct owner *o, struct owner_file *f, uint64_t ino,
    uint64_t off, size_t size, void *buf);
/* Writes size bytes at off into the journal (never the network): the
 * number written (a short count after a failure midway), or -errno
 * (-ENOSPC, -EDQUOT...). */
ssize_t owner_write(struct owner *o, uint64_t ino, uint64_t off,
    const void *src, size_t size);
/* Sets the size of ino: drops extents and journal blocks past the end,
 * cuts the new last block (read-modify-write when needed), updates size,
 * mtime and ctime in one transaction, fills *out with the result. */
int  owner_truncate(struct owner *o, uint64_t ino, uint64_t size,
    struct store_inode *out);
/* Frees the contents of an inode that is gone (nlink 0, not open): its
 * extents (blocks whose last reference goes have their fragments queued
 * for deletion), journal records and staging files. Own transaction. */
int  owner_drop(struct owner *o, uint64_t ino);
/* Returns once every block of ino written so far, and the index version
 * that names inline bytes, are on suppliers, and the metadata is on disk:
 * 0, or -ETIMEDOUT / -EIO after conf.sync_timeout_ms, -EDQUOT as soon as
 * suppliers refuse our data (quota, full, not admitted: `status` names
 * them). */
int  owner_fsync(struct owner *o, uint64_t ino);
/* The same for every file, then an index version (`peerfs sync`). */
int  owner_sync(struct owner *o);

/* ---- what fs/'s control attributes and statfs ask ---- */

/* Status as JSON (text 0) or as lines for people (text 1), naming the
 * mountpoint (may be NULL); *val malloc()'d. */
int  owner_status(struct owner *o, const char *mountpoint, int text,
    char **val, size_t *len);
/* Audits every fragment now, queues what is bad, waits (up to
 * sync_timeout_ms) for the rebuilds; the report then comes from
 * owner_check_report (malloc()'d text). */
int  owner_check(struct owner *o);
int  owner_check_report(struct owner *o, char **val, size_t *len);
/* "6/6", "<min>/6 rebuilding" or "pending" for a regular file. */
int  owner_redundancy(struct owner *o, uint64_t ino, char *buf, size_t size);
/* "1" pins ino (fetches every block below it now; -EIO when some could
 * not be had: they come when suppliers are back), "0" unpins ino and every
 * pin below it and frees what is not wanted. */
int  owner_pin_set(struct owner *o, uint64_t ino, const char *val,
    size_t len);
/* JSON {pinned, root, files, bytes, blocks, local} of ino's subtree. */
int  owner_pin_info(struct owner *o, uint64_t ino, char **val, size_t *len);
/* "seq time size\n" per index version on the suppliers, newest first. */
int  owner_versions(struct owner *o, char **val, size_t *len);
/* Non-zero when every change is refused (EROFS): 1 when another node of
 * this owner holds the write lease (or this one diverged from the newest
 * version), 2 when nobody does and this node's own try to take it failed
 * (suppliers still connecting; tried again every second). why (may be
 * NULL) gets the reason for people. */
int  owner_readonly(struct owner *o, char *why, size_t size);
/* Empties the block cache (benchmarks read cold data without remounts). */
void owner_drop_cache(struct owner *o);
/* Bytes usable for files on the online suppliers, after the erasure
 * code's overhead: in all and free. */
void owner_space(struct owner *o, uint64_t *total, uint64_t *avail);

/* ---- index versions without a mount (cli/ restore) ---- */

/* What reading a home's index takes besides the key, as its heads say. */
struct owner_code {
	int format;		/* the head's format version (1..3) */
	int k, m;		/* the home's erasure code */
	uint32_t chunk;		/* bytes of index per index block */
	uint32_t block_size;	/* the home's block size; 0: the head is
				 * older than format 3 (the index has it) */
};
/* The code of the newest head that opens (or seq == version) among those
 * the online suppliers hold: 0, -ENOENT none, -errno. */
int  owner_index_head_code(struct net *n, const struct cr_identity *id,
    uint64_t version, struct owner_code *code);
/* The code the blocks of st's local index version use (a home mounted
 * before its code was recorded): 0, -ENOENT no version yet. */
int  owner_home_code(struct store *st, int *k, int *m);

/* Told by a long call (may be NULL) after each step: steps done, steps
 * in all, bytes still to move (the command's progress bar). */
struct owner_progress {
	void (*fn)(void *arg, uint64_t done, uint64_t total,
	    uint64_t bytes_left);
	void *arg;
};

/* Restores the newest version that opens (or seq == version) into st (a
 * fresh store): suppliers named by the index are added, base and segments
 * fetched and applied, and the bookkeeping set so that the next publish
 * continues. Warns about suppliers offering only older heads. -ENOENT no
 * head / no such version. progress: one step per index block fetched. */
int  owner_index_restore(struct net *n, const struct cr_identity *id,
    struct store *st, uint64_t version,
    const struct owner_progress *progress);

/* ---- maintenance policy, pure (owner/rebuild.c, owner/audit.c) ----
 * What the rebuilder and the auditor decide, state in and decision out,
 * so that the durability simulator (sim/) runs the daemon's own rules. */

/* The fragments of a block of n (at most 32) to rebuild, as a bit mask:
 * those marked lost, never placed, or held by a DEAD supplier.
 * *surviving (may be NULL): n minus those. The rebuild queue takes the
 * blocks with the fewest surviving first. */
uint32_t owner_rebuild_missing(int n, const uint8_t *lost,
    const uint8_t *placed, const uint8_t *dead, uint32_t *surviving);
/* A supplier's audits stand at now (unix s): passed since its last
 * failure, and that failure at least vet_after_ms ago. Vetted: standing,
 * and passing since first_ok for vet_after_ms (0: everyone at once). */
int  owner_audit_stands(const struct store_ledger_ent *e, int64_t now,
    int64_t vet_after_ms);
int  owner_audit_vetted(const struct store_ledger_ent *e, int64_t now,
    int64_t vet_after_ms);

/* ---- hiring suppliers found in the network (owner/hire.c) ----
 * A pure choice, so that tests drive it: which candidates to hire. */
struct owner_hire_cand {
	unsigned char id[CR_PK_BYTES];
	char addr[64];			/* "HOST:PORT" from its record */
	uint64_t free_bytes;		/* offered, as its record says */
	double score;			/* higher is better */
};

/* Picks up to want of the n candidates into picked[] (indices) and
 * returns how many. Only candidates offering at least min_free, one per
 * address block (an IPv4 /24, an IPv6 /48, else the host name; with lan,
 * a private IPv4 address is a block alone: owner_hire_block), none in
 * the block of an address in taken[] (suppliers already hired) and no id
 * twice. Among those that fit, the better (by score) of two drawn at
 * random, again and again (power of two choices: good suppliers are
 * favoured without all owners piling on the one best). rnd gives
 * uniformly random 32-bit numbers. */
int owner_hire_pick(const struct owner_hire_cand *c, int n,
    const char *const *taken, int ntaken, int want, uint64_t min_free,
    int lan, uint32_t (*rnd)(void *arg), void *arg, int *picked);
/* The address block of "HOST:PORT" as text ("198.18.5.0/24"), for the
 * rule above and for logs. -EINVAL when addr has no port. lan (--lan:
 * the network is one private LAN, whose machines all share a block):
 * a private IPv4 address is its own block ("192.168.1.7"). */
int owner_hire_block(const char *addr, int lan, char *out, size_t size);

/* Suppliers hired beyond k + m: a dead one's fragments have somewhere
 * to go before its replacement is found. */
#define OWNER_HIRE_SPARES	2

/* What the hirer keeps of a hired supplier for --fire-below. */
struct owner_hire_watch {
	int64_t watched;		/* ms since when, 0: not yet */
	double avail;			/* 0..1 */
};
/* One look at the supplier (online or not) at now, the previous look at
 * last (0: none): avail is a moving average of "online" with the window
 * as its time constant, so a supplier that keeps dropping out is seen
 * even when it never stays away long enough to turn dead. */
void owner_hire_track(struct owner_hire_watch *w, int online, int64_t now,
    int64_t last, int64_t window);
/* Which of the n hired suppliers (w[i]; live of them not dead) to fire
 * at now for low availability, last_fire being the previous firing: the
 * least available of those watched for a whole window when below
 * fire_below percent, only while more than need are live, and one per
 * window (a replacement settles first). Its index, or -1: none. */
int  owner_hire_fire_pick(const struct owner_hire_watch *const *w, int n,
    int live, int need, int fire_below, int64_t window, int64_t now,
    int64_t last_fire);
/* Whether a supplier this mount declared DEAD at dead_at may be hired
 * again at now (all unix ms): never one fired for cause (failed audits,
 * forged data, refusals, low availability, leaving: for_cause) nor one
 * not dead (dead_at 0); one dead only for being unreachable once it is
 * back and announced (its record made at announced, after dead_at) and
 * cooldown has passed: a home machine that slept is worth its place,
 * but one that flaps is kept out for a while (the availability window).
 * Without this a mount that declares suppliers dead often runs through
 * the network and ends short of k + m (docs/durability.md). */
int  owner_hire_again(int for_cause, int64_t dead_at, int64_t announced,
    int64_t now, int64_t cooldown);

#endif
