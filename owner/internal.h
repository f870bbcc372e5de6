/* owner/internal.h - private to owner/: the context and the calls between
 * its modules. */
#ifndef PEERFS_OWNER_INTERNAL_H
#define PEERFS_OWNER_INTERNAL_H

#include <pthread.h>
#include <string.h>

#include "owner/owner.h"
#include "util.h"

struct owner__dirty;	/* owner/dirty.c */
struct owner__refs;	/* owner/refs.c */
struct owner__reads;	/* owner/read.c */
struct owner__uploads;	/* owner/upload.c */
struct owner__rebuild;	/* owner/rebuild.c */
struct owner__audit;	/* owner/audit.c */
struct owner__deleter;	/* owner/delete.c */
struct owner__check;	/* owner/check.c */
struct owner__sweep;	/* owner/sweep.c */
struct owner__pin;	/* owner/pin.c */
struct owner__index;	/* owner/publish.c */

struct owner {
	struct owner_conf conf;		/* read-only once open */
	struct owner__dirty *dirty;
	struct owner__refs *refs;
	struct owner__reads *reads;
	struct owner__uploads *uploads;
	struct owner__rebuild *rebuild;
	struct owner__audit *audit;
	struct owner__deleter *deleter;
	struct owner__check *check;
	struct owner__sweep *sweep;
	struct owner__pin *pin;
	struct owner__index *index;
};

/* 1 when some supplier is online (owner/owner.c). An inline block is
 * only on the network once an index holding it is published: with nobody
 * to take one it stays in the journal, pending as a block would. */
int owner__net_online(struct owner *o);

/* ---- owner/dirty.c: the dirty table, stripes, sync waits ---- */
int  owner__dirty_init(struct owner *o);	/* requeues journal records
						 * left from before */
void owner__dirty_stop(struct owner *o);	/* syncers return */
void owner__dirty_destroy(struct owner *o);	/* the journal stays */
/* The mutex every reader and writer of (ino, bno)'s journal holds. */
pthread_mutex_t *owner__stripe(struct owner *o, uint64_t ino, uint64_t bno);
void owner__dirty_written(struct owner *o);	/* a write just came */
/* A write or truncate changed (ino, bno): its stripe is held, its jrnl
 * record committed. full: upload it now. */
void owner__dirty_mark(struct owner *o, uint64_t ino, uint64_t bno, int full);
/* The jrnl records of ino's blocks bnos[0 .. n) went (n may be 0). */
void owner__dirty_drop(struct owner *o, uint64_t ino, const uint64_t *bnos,
    size_t n);
/* Every jrnl record of ino went (the file is gone). */
void owner__dirty_drop_all(struct owner *o, uint64_t ino);
/* The last close of ino: with no write-back delay its blocks go now. */
void owner__dirty_closed(struct owner *o, uint64_t ino);
/* An inline record committed with change number gen is on the owner's
 * disk only until an index that holds it is published. */
void owner__dirty_inline(struct owner *o, uint64_t gen);
/* Returns when every block of ino (0: of every file) left the journal:
 * 0, -ETIMEDOUT after conf.sync_timeout_ms, -ENOTCONN at once when no
 * supplier can be had (owner__no_suppliers), or -EDQUOT at once when an
 * upload after the call fails because suppliers refuse our data (the
 * data stays in the journal). */
int  owner__dirty_sync(struct owner *o, uint64_t ino);
/* 1 when nothing can be uploaded before the next mount: no supplier
 * known and nothing looking for one (conf.finds_suppliers); the waits
 * above then return -ENOTCONN at once instead of timing out. */
int  owner__no_suppliers(struct owner *o);
struct owner_upload_stats {
	uint64_t pending_blocks;	/* journal records */
	uint64_t uploading;		/* blocks in flight, and inline
					 * blocks not yet in a published
					 * index */
	uint64_t uploaded_blocks;	/* since mount */
	uint64_t known_blocks;		/* since mount: same bytes stored
					 * already, not uploaded again */
	uint64_t upload_errors;
};
void owner__dirty_stats(struct owner *o, struct owner_upload_stats *out);
/* 1 while blocks of ours wait in the journal or are on their way to
 * suppliers: background traffic that would compete with them waits. */
int  owner__dirty_busy(struct owner *o);
/* An index covering change number gen is on the suppliers: the inline
 * blocks committed up to it no longer count as uploading. */
void owner__dirty_published(struct owner *o, uint64_t gen);
uint64_t owner__dirty_unpublished(struct owner *o);
/* What upload workers take and give back. */
struct owner__job {
	uint64_t ino, bno, serial;
};
/* 0 with *job taken (in flight), or the ms until blocks may be due. */
int64_t owner__dirty_take(struct owner *o, struct owner__job *job);
/* The generation of (ino, bno): changes with every write; -ENOENT when it
 * is no longer dirty. */
int  owner__dirty_gen(struct owner *o, uint64_t ino, uint64_t bno,
    uint64_t *gen);
enum owner__upload_kind { OWNER__UP_NONE, OWNER__UP_STORED, OWNER__UP_KNOWN,
	OWNER__UP_INLINE };
/* (ino, bno) left the journal (committed as kind); stripe held. */
void owner__dirty_uploaded(struct owner *o, uint64_t ino, uint64_t bno,
    enum owner__upload_kind kind, uint64_t inline_gen);
void owner__dirty_failed(struct owner *o, int rc);	/* counts, logs */
/* The job ended: failed ones wait (backoff), stale ones go again. */
void owner__dirty_job_done(struct owner *o, const struct owner__job *job,
    int failed);

/* ---- owner/upload.c: the upload workers ---- */
int  owner__uploads_start(struct owner *o);	/* also removes staging files
						 * a crash left */
void owner__uploads_stop(struct owner *o);	/* NULL-safe */
void owner__upload_kick(struct owner *o);	/* blocks were queued */

/* ---- owner/read.c: where the newest bytes of a block are, reading ---- */
enum owner__src { OWNER__SRC_HOLE, OWNER__SRC_JOURNAL, OWNER__SRC_BLOCK,
	OWNER__SRC_INLINE };
struct owner__loc {
	enum owner__src src;
	int extent;			/* an extent exists (its record
					 * may be missing: a hole) */
	struct store_block b;		/* SRC_BLOCK: its record (secret) */
	unsigned char inl[STORE_INLINE_MAX];	/* SRC_INLINE: the bytes */
	size_t inl_len;
};
/* Where the newest bytes of (ino, bno) are as of t; journal 0 skips the
 * journal (what lies under an overlay block). Release with
 * owner__loc_release (wipes the key). */
int  owner__locate(struct store_txn *t, uint64_t ino, uint64_t bno,
    int journal, struct owner__loc *out);
void owner__loc_release(struct owner__loc *l);
/* The newest plaintext of journal block (ino, bno) into buf (len bytes;
 * an overlay block needs bs and the suppliers or the cache). Stripe held.
 * 0, -ENOENT (no staging file: zeros), -errno. */
int  owner__journal_read(struct owner *o, uint64_t ino, uint64_t bno,
    void *buf, size_t len);
/* An overlay block whose range list is full gets [off, off+len) written
 * and becomes a plain journal block (needs the old bytes). Stripe held. */
int  owner__journal_fold(struct owner *o, uint64_t ino, uint64_t bno,
    uint32_t off, uint32_t len);
int  owner__reads_init(struct owner *o);
void owner__reads_destroy(struct owner *o);
/* 1 when a read asked the suppliers for blocks in the last ms. */
int  owner__reads_fetched_within(struct owner *o, int64_t ms);

/* ---- owner/refs.c: block references, queued deletes, the guard ---- */
/* Blocks whose fragments a transaction queued for deletion (store_delq):
 * after its commit their plaintext leaves the cache and the deleter is
 * woken (owner__discard_run). */
struct owner__discard {
	struct owner *o;
	struct vec ids;		/* ids of the block records that went */
	int queued;		/* delq entries written */
};
#define OWNER__DISCARD_INIT(o) { (o), { 0 }, 0 }
/* Inside t: queues the delete of every placed fragment of b (held for
 * conf.keep_versions versions); with gone (b's record went) also
 * remembers b->id. The deleter checks again that no record uses a
 * fragment before it sends. */
int  owner__discard_push(struct store_txn *t, struct owner__discard *dc,
    const struct store_block *b, int gone);
/* After the transaction: committed, drops the plaintext of the records
 * gone and wakes the deleter; either way frees. */
void owner__discard_run(struct owner__discard *dc, int committed);
/* One extent less points at id: refcount--, at 0 the record goes and its
 * fragments are queued. A missing record is logged and ignored. */
int  owner__block_unref(struct store_txn *t, const unsigned char *id,
    struct owner__discard *dc);
/* rec was stored again for bytes that cur (same id) holds already: the
 * fragments rec placed elsewhere than cur's are strays to delete. */
int  owner__strays_push(struct store_txn *t, struct owner__discard *dc,
    const struct store_block *rec, const struct store_block *cur);
/* The fragments of rec were stored for bytes nobody wants any more:
 * queued for deletion unless a record (the same bytes) uses them. */
void owner__orphan_discard(struct owner *o, const struct store_block *rec);
/* The guard (see owner/refs.c). An upload of worker idx begins (returns
 * its event number) and ends; conflict: a delete not sent before the
 * upload began may have hit block id's fragments (store it again). */
uint64_t owner__guard_upload_begin(struct owner *o, int idx);
void owner__guard_upload_end(struct owner *o, int idx);
int  owner__guard_upload_conflict(struct owner *o, const unsigned char *id,
    uint64_t since);
/* The deleter brackets the check and the send of one delete; NULL when
 * out of memory (then do not send). */
struct owner__delete_mark;
struct owner__delete_mark *owner__guard_delete_begin(struct owner *o,
    const unsigned char *pk, const unsigned char *fragid);
void owner__guard_delete_end(struct owner *o, struct owner__delete_mark *mk,
    int sent);
/* A rebuild begins (its sequence number); conflict: a delete of (pk,
 * fragid) was logged since or is in flight (do not merge it). */
uint64_t owner__guard_rebuild_begin(struct owner *o);
int  owner__guard_rebuild_conflict(struct owner *o, uint64_t seq,
    const unsigned char *pk, const unsigned char *fragid);
int  owner__refs_init(struct owner *o);
void owner__refs_destroy(struct owner *o);

/* ---- owner/rebuild.c: full redundancy (scanner and workers) ---- */
int  owner__rebuild_start(struct owner *o);	/* no threads without a
						 * network: the queue waits */
void owner__rebuild_stop(struct owner *o);	/* the queue stays */
/* Fragments of b (bit i) to rebuild: marked lost, never placed, or on a
 * DEAD supplier; *surviving gets the others. Doubled-up fragments
 * (net_place_doubled) too, without counting as missing in
 * *surviving, when snap shows a supplier online that holds none of b.
 * snap: the supplier states of a pass over many blocks
 * (owner__peer_snap), or NULL to ask (then doubled ones are left). Never
 * NULL inside a write txn: asking waits on the net loop, and the loop may
 * be waiting for LMDB's writer lock (pinning a new supplier's key), so
 * take the snap before the txn begins. */
uint32_t owner__missing(struct owner *o, const struct net_peer_snap *snap,
    const struct store_block *b, uint32_t *surviving);
void owner__peer_snap(struct owner *o, struct net_peer_snap **snap);
int  owner__nfrags(const struct store_block *b);	/* k + m, bounded */
/* Inside t: marks fragments `bad` of the record of b lost where the record
 * still has b's holder, and queues the block. snap: taken before t began
 * (owner__missing). */
int  owner__mark_lost(struct owner *o, struct store_txn *t,
    const struct net_peer_snap *snap, const struct store_block *b,
    uint32_t bad);
/* A read got fragments `bad` (bit i = fragment i) of b forged or corrupt:
 * marks them lost (if b's holders are unchanged) and queues a rebuild. */
void owner__rebuild_report_bad(struct owner *o, const struct store_block *b,
    uint32_t bad);
/* Queues every block with something to rebuild now: how many, -errno. */
int  owner__rebuild_scan(struct owner *o);
void owner__rebuild_retry_all(struct owner *o);	/* clear the backoffs */
/* Waits until every queued block is whole or failed since `since`
 * (monotonic ms), or deadline: 1 when the deadline came first. */
int  owner__rebuild_wait(struct owner *o, int64_t since, int64_t deadline);
uint64_t owner__rebuild_frags_total(struct owner *o);	/* at the last scan */
struct owner_maint_stats {
	uint64_t rebuild_queued;	/* blocks in the rebuild queue */
	uint64_t rebuilt_blocks, rebuilt_frags, rebuild_bytes, rebuild_errors;
	double rebuild_rate;		/* bytes/s, recent */
	int rebuilding;			/* workers busy now */
	uint64_t audits_ok, audits_failed, audits_error;
	uint64_t delq_count, delq_bytes, deleted;
	int64_t audit_interval_ms;
	uint64_t rebuild_rate_max;
};
/* Each fills its own fields of out. */
void owner__rebuild_stats(struct owner *o, struct owner_maint_stats *out);
void owner__audit_stats(struct owner *o, struct owner_maint_stats *out);
void owner__delete_stats(struct owner *o, struct owner_maint_stats *out);

/* ---- owner/audit.c: proofs of storage ---- */
/* The ledger's entry for supplier pk (0, or -ENOENT), and whether it is
 * vetted: audits passing for conf.vet_after_ms, none failed since. */
int  owner__ledger_get(struct owner *o, const unsigned char *pk,
    struct store_ledger_ent *out, int *vetted);
int  owner__audit_start(struct owner *o);
void owner__audit_stop(struct owner *o);
/* Audits fragment i of b (b's audit fields advance). 1 good, 0 bad
 * (wrong answer or missing: lost), -errno no answer. */
int  owner__audit_frag(struct owner *o, struct store_block *b, int i);
/* Stores the result of auditing fragments `done` of b (audit fields from
 * b) and marks `bad` ones lost, in one txn. */
int  owner__audit_commit(struct owner *o, const struct store_block *b,
    uint32_t done, uint32_t bad);

/* ---- owner/delete.c: the deleter ---- */
int  owner__delete_start(struct owner *o);
void owner__delete_stop(struct owner *o);
/* Something was queued for deletion (wakes the deleter). NULL-safe. */
void owner__delete_kick(struct owner *o);

/* ---- owner/check.c: `peerfs check`, the redundancy attribute ---- */
int  owner__check_init(struct owner *o);
void owner__check_destroy(struct owner *o);
/* 1 while a check runs, with its blocks and those audited so far (the
 * rebuilds it waits for come after the last); else 0. */
int  owner__check_progress(struct owner *o, uint64_t *blocks,
    uint64_t *audited);

/* ---- owner/sweep.c: the orphan sweep ---- */
/* Every conf.sweep_interval_ms lists each online supplier's fragments and
 * queues the delete of those that no block record references in two
 * consecutive sweeps (index blocks have records too). No thread without a
 * network. */
int  owner__sweep_init(struct owner *o);
void owner__sweep_destroy(struct owner *o);

/* ---- owner/publish.c: keeping the index on suppliers current ---- */
int  owner__index_init(struct owner *o);	/* starts the upload thread */
void owner__index_destroy(struct owner *o);	/* stops it, uploads what
						 * changed (bounded by network
						 * timeouts) */
/* Uploads a version now if anything changed (with this node's lease):
 * 0 once the metadata is in a version on the network, -ESTALE diverged
 * or read-only with changes of its own, -EAGAIN too few suppliers. */
int  owner__index_publish(struct owner *o);
/* 1 while this node holds the write lease. */
int  owner__writable(struct owner *o);
/* Lease, node and divergence for owner_status (text: lines for people,
 * else JSON members each followed by ", "). */
struct strbuf;
void owner__index_status(struct owner *o, struct strbuf *sb, int text);
/* "0123abcd..." (or "unknown" for a zero id). */
void owner__node_hex(char out[2 * 8 + 1], const unsigned char *node);

/* ---- owner/catchup.c: replaying this node's changes on a newer version
 * of another node (the lease is ours again, pub held). */
struct owner__newest;
int  owner__catchup(struct owner *o, const struct owner__newest *nw);

/* ---- owner/pin.c: pinned subtrees (`peerfs pin PATH`) ---- */
int  owner__pin_init(struct owner *o);	/* starts the pin thread */
void owner__pin_destroy(struct owner *o);
/* The plaintext of b from the pinned store into buf (b->plain_len bytes,
 * checked): b->plain_len, -ENOENT when not pinned locally, or -errno. */
int  owner__pin_read(struct owner *o, const struct store_block *b, void *buf);
/* A block was fetched from suppliers: kept when a pinned file uses it. */
void owner__pin_fetched(struct owner *o, const struct store_block *b,
    const void *plain);

/* ---- owner/index.c: index versions on suppliers ----
 * A version of the owner's metadata: a base snapshot and change segments
 * (store_index_dump / store_index_changes) stored as blocks sealed with
 * cr_subkey(CR_SUBKEY_INDEX), named by a signed head on every supplier.
 * Bookkeeping in the store's misc under "index." (see owner/index.c).
 * Not thread-safe against itself: one caller at a time per store. */
/* The write lease a head carries (owner/publish.c keeps it). */
#define OWNER__NODE_BYTES	8
struct owner__lease {
	unsigned char node[OWNER__NODE_BYTES];	/* published the head */
	unsigned char holder[OWNER__NODE_BYTES];	/* zero: free */
	uint64_t until_ms;		/* unix ms the lease runs out */
	unsigned char want[OWNER__NODE_BYTES];	/* asks for a hand-over;
						 * zero: nobody */
};
struct owner__index_io {
	struct net *net;
	struct store *store;
	const struct cr_identity *id;
	int keep_versions;	/* versions whose blocks are kept, >= 1 */
	/* Publishing only (owner__index_put), zero otherwise: */
	const struct owner__lease *lease;	/* into the head; NULL none */
	uint32_t block_size;	/* the home's, into the head */
	int head_always;	/* a new head even when nothing changed */
	int head_only;		/* the last version's layout under a new
				 * head (a lease renewal while the changes
				 * cannot be stored) */
	uint64_t above;		/* the new head's seq is above this too */
	struct net_head_tally *tally;	/* the suppliers' answers */
};
/* Uploads a new version when the metadata changed since the last one (or
 * always with force_base, as a full snapshot): a segment, or a new base
 * when there is none yet, the segments exceed half the base or number
 * INDEX_SEGS_MAX. Keeps the blocks of the newest keep_versions versions,
 * queues older ones for deletion (store_delq). A version counts once more
 * than half of the suppliers hold its head. 1 published, 0 nothing to
 * do, -EAGAIN too few suppliers online or storing it, -ESTALE refused:
 * a newer head exists (another node of this owner), -errno. */
int owner__index_put(const struct owner__index_io *io, int force_base);
/* cb(arg, seq, time, index bytes) for every version the online suppliers
 * hold, newest first, once per seq; stops when cb returns != 0. Returns
 * the number of versions listed or -errno. */
int owner__index_list(const struct owner__index_io *io,
    int (*cb)(void *arg, uint64_t seq, uint64_t time, uint64_t size,
    const struct owner__lease *lease), void *arg);
/* Compares the newest head on the network with the highest this node
 * published (misc index.seq) and logs a warning on rollback. Returns the
 * newest seq offered (clamped to INT32_MAX), 0 none, or -errno. */
int owner__index_check(const struct owner__index_io *io);
void owner__index_io_of(struct owner *o, struct owner__index_io *io);
/* The layout of a version (owner/layout.c's format), for owner/restore.c. */
#define OWNER__PARTS_MAX	33	/* a base and 32 segments */
#define OWNER__INDEX_CHUNK	(4u << 20)	/* bytes of a part per block */
enum { PART_BASE = 0, PART_SEG = 1 };

struct owner__part {
	uint8_t kind;
	uint64_t bytes, gen;
	uint16_t nblk;
	struct store_block *blk;
};

struct owner__layout {
	struct owner__part parts[OWNER__PARTS_MAX];
	int nparts;
};

struct owner__sup {
	char addr[64];
	unsigned char pk[CR_PK_BYTES];
};
void owner__layout_free(struct owner__layout *l);
uint64_t owner__layout_bytes(const struct owner__layout *l);	/* index */
/* A head's opened blob: the suppliers it names (*sups malloc()'d), the
 * layout, the lease and the home's code (lease, code may be NULL).
 * -EPROTO when malformed. */
int  owner__blob_decode(const unsigned char *p, size_t n,
    struct owner__sup **sups, int *nsup, struct owner__layout *l,
    struct owner__lease *lease, struct owner_code *code);
/* The format's bytes (owner/layout.c), for owner/index.c. A writer
 * grows (wiped when it grows or is freed: it holds block keys); its
 * first failure sticks in err. A reader of peer bytes: a short read
 * sets bad and returns NULL (rd_uint: 0). Integers big-endian. */
#define OWNER__INDEX_PEERS_MAX	256	/* suppliers a head names */
struct owner__wr {
	unsigned char *p;
	size_t len, cap;
	int err;
};
struct owner__rd {
	const unsigned char *p;
	size_t n, off;
	int bad;
};
void owner__wr_put(struct owner__wr *w, const void *p, size_t n);
void owner__wr_u16(struct owner__wr *w, uint16_t v);
void owner__wr_u64(struct owner__wr *w, uint64_t v);
void owner__wr_free(struct owner__wr *w);
const unsigned char *owner__rd_get(struct owner__rd *r, size_t n);
uint64_t owner__rd_uint(struct owner__rd *r, int bytes);
/* owner__wr_put as a sink (arg: the writer): store_index_dump and
 * store_index_changes write into one. Returns w->err. */
int  owner__wr_out(void *arg, const void *p, size_t n);
/* A layout's parts as in the blob and index.parts; get: -EPROTO when
 * malformed (l freed). */
void owner__put_parts(struct owner__wr *w, const struct owner__layout *l);
int  owner__get_parts(struct owner__rd *r, struct owner__layout *l);
/* The head's blob for layout l naming sups, with io's lease and the
 * home's code; w->err. */
int  owner__blob_encode(const struct owner__index_io *io,
    const struct owner__layout *l, const struct owner__sup *sups, int nsup,
    struct owner__wr *w);
/* The index a head names, as suppliers see it (cr_head2_sign). */
uint64_t owner__layout_index_id(const unsigned char key[CR_KEY_BYTES],
    const struct owner__layout *l);
/* Records a restored version (seq, its head's time vtime in ms, covering change
 * number gen, layout l; newest: the highest seq seen) so that the next
 * publish continues. */
int  owner__index_adopt(const struct owner__index_io *io, uint64_t newest,
    uint64_t seq, uint64_t vtime, uint64_t gen,
    const struct owner__layout *l);

/* The newest version on the network that opens: its head's seq, time,
 * lease and layout (release with owner__layout_free(&nw->l)). */
struct owner__newest {
	uint64_t seq, time;
	struct owner__lease lease;
	struct owner__layout l;
};
/* 1 found, 0 no head, -errno (-EAGAIN nobody online). */
int  owner__index_newest(const struct owner__index_io *io,
    struct owner__newest *nw);
/* Makes the store hold version nw (only its new segments when it extends
 * the local one, else (or with fresh) its whole snapshot over emptied
 * tables) and records it as the newest: for a store without changes of
 * its own since its last version, or (owner/catchup.c) that saved them. */
int  owner__index_follow(const struct owner__index_io *io,
    const struct owner__newest *nw, int fresh);
/* The layout of the local newest version (zero parts: none). */
int  owner__index_local(struct store *st, struct owner__layout *l);
/* Change number of the local version and of the store now: they differ
 * when the metadata has changes no version holds yet. */
int  owner__index_unpublished(struct store *st);

/* ---- shared helpers ---- */

/* A home restored from an older version shares fragments with newer
 * versions it cannot see: it must never delete from suppliers. */
static inline int
owner__index_older(struct store_txn *t)
{
	return store_misc_flag_get(t, STORE_MISC_INDEX_OLDER) == 1;
}

/* The newest index version published (owner/index.c keeps it in misc). */
static inline uint64_t
owner__index_seq(struct store_txn *t)
{
	uint64_t v;

	return store_misc_u64_get(t, STORE_MISC_INDEX_SEQ, &v) == 0 ? v : 0;
}

/* Index versions so far, a lease renewal on the same index not counted:
 * what --keep-versions holds count in (homes before it counted seqs,
 * which it continues). */
static inline uint64_t
owner__index_vers(struct store_txn *t)
{
	uint64_t v;

	return store_misc_u64_get(t, STORE_MISC_INDEX_VERS, &v) == 0 ? v :
	    owner__index_seq(t);
}

#endif
