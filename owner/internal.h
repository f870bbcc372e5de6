/* owner/internal.h - private to owner/: the context and the calls between
 * its modules. */
#ifndef PEERFS_OWNER_INTERNAL_H
#define PEERFS_OWNER_INTERNAL_H

#include <pthread.h>
#include <string.h>

#include "owner/owner.h"

struct owner__data;	/* owner/data.c */
struct owner__maint;	/* owner/maint.c */
struct owner__sweep;	/* owner/sweep.c */
struct owner__pin;	/* owner/pin.c */
struct owner__index;	/* owner/publish.c */

struct owner {
	struct owner_conf conf;		/* read-only once open */
	struct owner__data *data;
	struct owner__maint *maint;
	struct owner__sweep *sweep;
	struct owner__pin *pin;
	struct owner__index *index;
};

/* ---- owner/data.c ---- */
int  owner__data_init(struct owner *o);	/* starts upload workers, requeues
					 * journal records left from before */
void owner__data_destroy(struct owner *o);	/* stops workers; journal stays */
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
void owner__data_stats(struct owner *o, struct owner_upload_stats *out);
/* An index covering change number gen is on the suppliers: the inline
 * blocks committed up to it no longer count as uploading. */
void owner__data_published(struct owner *o, uint64_t gen);
/* Inline blocks committed and not yet in a published index. */
uint64_t owner__data_unpublished(struct owner *o);
int  owner__data_sync(struct owner *o, uint64_t ino);	/* 0: every file */

/* Deletes of fragments queued in the store (store_delq) race uploads of
 * the same bytes (same fragment ids). owner/maint.c brackets the check
 * that no record uses a fragment and the delete itself with these: an
 * upload that would commit that block meanwhile stores it again. note
 * returns NULL when out of memory (then do not send). */
void *owner__data_note(struct owner *o, const unsigned char id[CR_ID_BYTES]);
void  owner__data_unnote(struct owner *o, void *note, int sent);

/* ---- owner/maint.c: monitoring, audits, rebuilds, background deletes ---- */
int  owner__maint_init(struct owner *o);	/* starts the threads; resumes
						 * the rebuild and delete
						 * queues */
void owner__maint_destroy(struct owner *o);	/* stops them; queues stay */
/* Something was queued for deletion (wakes the deleter). NULL-safe. */
void owner__maint_kick(struct owner *o);
/* A read got fragments `bad` (bit i = fragment i) of b forged or corrupt:
 * marks them lost (if b's holders are unchanged) and queues a rebuild. */
void owner__maint_report_bad(struct owner *o, const struct store_block *b,
    uint32_t bad);
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
void owner__maint_stats(struct owner *o, struct owner_maint_stats *out);

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
/* Uploads a version now if anything changed. Always 0: a failure is
 * logged and retried by the thread (sync promises the data). */
int  owner__index_publish(struct owner *o);

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
struct owner__index_io {
	struct net *net;
	struct store *store;
	const struct cr_identity *id;
	int keep_versions;	/* versions whose blocks are kept, >= 1 */
};
/* Uploads a new version when the metadata changed since the last one (or
 * always with force_base, as a full snapshot): a segment, or a new base
 * when there is none yet, the segments exceed half the base or number
 * INDEX_SEGS_MAX. Keeps the blocks of the newest keep_versions versions,
 * queues older ones for deletion (store_delq). 1 published, 0 nothing to
 * do, -EAGAIN too few suppliers online, -errno. */
int owner__index_put(const struct owner__index_io *io, int force_base);
/* cb(arg, seq, time, index bytes) for every version the online suppliers
 * hold, newest first, once per seq; stops when cb returns != 0. Returns
 * the number of versions listed or -errno. */
int owner__index_list(const struct owner__index_io *io,
    int (*cb)(void *arg, uint64_t seq, uint64_t time, uint64_t size),
    void *arg);
/* Compares the newest head on the network with the highest this node
 * published (misc index.seq) and logs a warning on rollback. Returns the
 * newest seq offered (clamped to INT32_MAX), 0 none, or -errno. */
int owner__index_check(const struct owner__index_io *io);
void owner__index_io_of(struct owner *o, struct owner__index_io *io);

/* ---- shared helpers ---- */

/* A home restored from an older version shares fragments with newer
 * versions it cannot see: it must never delete from suppliers. */
static inline int
owner__index_older(struct store_txn *t)
{
	char c;

	return store_misc_get(t, "index.older", &c, 1) == 1;
}

/* The newest index version published (owner/index.c keeps it in misc). */
static inline uint64_t
owner__index_seq(struct store_txn *t)
{
	unsigned char b[8];
	uint64_t v = 0;

	if (store_misc_get(t, "index.seq", b, sizeof b) != (int)sizeof b)
		return 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

#endif
