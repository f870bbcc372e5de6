/* owner/index.c - the owner's index on suppliers: publishing versions
 * (a base snapshot plus change segments, sealed and erasure-coded like
 * file data, named by a signed head) and the bookkeeping they leave
 * (owner/restore.c reads them back; their format is owner/layout.c's).
 *
 * The owner's bookkeeping lives in misc under "index." (never indexed):
 *   index.seq    u64  highest head seq published or seen
 *   index.gen    u64  change number the newest version covers
 *   index.self   u64  change number of our own bookkeeping transaction
 *   index.parts       parts of the newest version (as above)
 *   index.hist        u16 n | n x (u64 seq | u16 ids | ids x id[32]):
 *                     the blocks of the newest conf.keep_versions versions
 *   index.restored u64 seq | u64 time of the head a restore used.
 *   index.time   u64  unix ms this node published the newest version (or
 *                     its head's time, for one it adopted)
 *   index.node   8 bytes: this home's node id (owner/publish.c)
 *   index.vers   u64  versions so far, a head that only renews the lease
 *                     not counted: the unit of --keep-versions holds
 *   index.older  present when that head was not the newest: this home
 *                shares blocks with newer versions it cannot see, so it
 *                never deletes fragments from suppliers (owner__index_older).
 * Index blocks are also in the blocks table (refcount 1, flag
 * STORE_BLOCK_INDEX), so the auditor and rebuilder keep them alive; no
 * extent ever points at them. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "owner/internal.h"
#include "util.h"

#define INDEX_SEGS_MAX	(OWNER__PARTS_MAX - 1)
#define INDEX_KEEP_MAX	100	/* --keep-versions at most */

/* ---- misc bookkeeping ------------------------------------------------------ */

/* 0 when missing (a home that never published). */
static uint64_t
misc_u64(struct store_txn *t, enum store_misc_key k)
{
	uint64_t v;

	return store_misc_u64_get(t, k, &v) == 0 ? v : 0;
}

/* *out malloc()'d, NULL and 0 when missing. */
static int
misc_blob(struct store_txn *t, enum store_misc_key k, unsigned char **out,
    size_t *len)
{
	void *p;
	int rc = store_misc_bytes_get(t, k, &p, len);

	*out = NULL;
	if (rc == -ENOENT) {
		*len = 0;
		return 0;
	}
	if (rc < 0)
		return rc;
	if (*len == 0) {
		free(p);
		return 0;
	}
	*out = p;
	return 0;
}

struct state {
	uint64_t seq, gen, self;
	struct owner__layout l;
	unsigned char *hist;
	size_t hist_len;
};

static void
state_free(struct state *s)
{
	owner__layout_free(&s->l);
	free(s->hist);
}

static int
state_load(struct store *st, struct state *s)
{
	struct store_txn *t;
	unsigned char *pp = NULL;
	size_t plen;
	int rc;

	memset(s, 0, sizeof *s);
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	s->seq = misc_u64(t, STORE_MISC_INDEX_SEQ);
	s->gen = misc_u64(t, STORE_MISC_INDEX_GEN);
	s->self = misc_u64(t, STORE_MISC_INDEX_SELF);
	if ((rc = misc_blob(t, STORE_MISC_INDEX_PARTS, &pp, &plen)) == 0)
		rc = misc_blob(t, STORE_MISC_INDEX_HIST, &s->hist, &s->hist_len);
	store_txn_abort(t);
	if (rc == 0 && pp) {
		struct owner__rd r = { pp, plen, 0, 0 };

		if (owner__get_parts(&r, &s->l) < 0) {
			log_warn("index: local layout unreadable: next upload "
			    "is a full snapshot");
			memset(&s->l, 0, sizeof s->l);
		}
	}
	if (pp) {
		sodium_memzero(pp, plen);
		free(pp);
	}
	if (rc < 0)
		state_free(s);
	return rc;
}

/* History: the block ids of each kept version, newest last. */
static int
id_in_hist(const unsigned char *h, size_t len, size_t from,
    const unsigned char *id)
{
	struct owner__rd r = { h, len, from, 0 };

	while (r.off < r.n && !r.bad) {
		uint64_t nid;

		owner__rd_uint(&r, 8);
		nid = owner__rd_uint(&r, 2);
		for (uint64_t i = 0; i < nid; i++) {
			const unsigned char *p = owner__rd_get(&r, CR_ID_BYTES);

			if (p && memcmp(p, id, CR_ID_BYTES) == 0)
				return 1;
		}
	}
	return 0;
}

/* Drops one index block: its record goes, its fragments join the delete
 * queue (store_delq). */
static int
drop_block(struct store_txn *t, const unsigned char *id)
{
	unsigned char fragid[STORE_FRAGID_BYTES];
	struct store_block b;
	int rc;

	if ((rc = store_block_get(t, id, &b)) == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	memcpy(fragid, b.id, CR_ID_BYTES);
	for (int i = 0; i < b.k + b.m && i < CR_EC_MAX; i++) {
		if (sodium_is_zero(b.peer[i], CR_PK_BYTES))
			continue;
		fragid[CR_ID_BYTES] = (unsigned char)i;
		if ((rc = store_delq_put(t, b.peer[i], fragid, b.frag_len)) < 0)
			break;
	}
	sodium_memzero(&b, sizeof b);
	return rc < 0 ? rc : store_block_del(t, id);
}

/* Versions whose index blocks are kept: the newest always. */
static size_t
index_keep(const struct owner__index_io *io)
{
	int keep = io->keep_versions;

	return keep < 1 ? 1 : keep > INDEX_KEEP_MAX ? INDEX_KEEP_MAX : (size_t)keep;
}

/* Appends (seq, ids of l) to the history, drops the versions past the
 * newest `keep` and the blocks only they used. */
static int
hist_update(struct store_txn *t, const unsigned char *old, size_t old_len,
    uint64_t seq, const struct owner__layout *l, size_t keep)
{
	struct owner__rd r = { old, old_len, 0, 0 };
	size_t starts[INDEX_KEEP_MAX * 4 + 64], nent = 0, keep_from, drop;
	struct owner__wr w = { 0 };
	int rc = 0, nid = 0;

	while (r.off < r.n && !r.bad && nent < ARRAY_SIZE(starts)) {
		starts[nent++] = r.off;
		owner__rd_uint(&r, 8);
		owner__rd_get(&r, CR_ID_BYTES * owner__rd_uint(&r, 2));
	}
	if (r.bad) {
		log_warn("index: version history unreadable: restarted");
		nent = 0;
		old_len = 0;
	}
	/* The newest keep - 1 old entries stay, plus the new one. */
	drop = nent + 1 > keep ? nent + 1 - keep : 0;
	keep_from = drop < nent ? starts[drop] : old_len;
	owner__wr_put(&w, old + keep_from, old_len - keep_from);
	owner__wr_u64(&w, seq);
	for (int i = 0; i < l->nparts; i++)
		nid += l->parts[i].nblk;
	owner__wr_u16(&w, (uint16_t)nid);
	for (int i = 0; i < l->nparts; i++)
		for (int j = 0; j < l->parts[i].nblk; j++)
			owner__wr_put(&w, l->parts[i].blk[j].id, CR_ID_BYTES);
	if ((rc = w.err) < 0)
		goto out;
	/* Blocks of the dropped versions that no kept one uses. */
	r = (struct owner__rd){ old, keep_from, 0, 0 };
	while (r.off < r.n && !r.bad && rc == 0) {
		uint64_t n;

		owner__rd_uint(&r, 8);
		n = owner__rd_uint(&r, 2);
		for (uint64_t i = 0; i < n && rc == 0; i++) {
			const unsigned char *id = owner__rd_get(&r, CR_ID_BYTES);

			if (id && !id_in_hist(w.p, w.len, 0, id))
				rc = drop_block(t, id);
		}
	}
	if (rc == 0)
		rc = store_misc_bytes_put(t, STORE_MISC_INDEX_HIST, w.p, w.len);
out:
	owner__wr_free(&w);
	return rc;
}

/* Records a published (or restored) version: its blocks, layout, seq and
 * covered gen, in one transaction. */
static int
state_commit(struct store *st, const struct state *old, uint64_t seq,
    uint64_t vtime, uint64_t gen, const struct owner__layout *l, int first_new,
    int drop_history, size_t keep)
{
	struct store_txn *t;
	struct owner__wr w = { 0 };
	uint64_t self;
	int rc;

	owner__put_parts(&w, l);
	if (w.err)
		return w.err;
	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		goto out;
	/* Only new blocks: older ones have live records (audits, rebuilt
	 * placements) that the layout's copy would roll back. */
	for (int i = first_new; rc == 0 && i < l->nparts; i++)
		for (int j = 0; rc == 0 && j < l->parts[i].nblk; j++)
			rc = store_block_put(t, &l->parts[i].blk[j]);
	/* A head with no new part only renewed the lease on the same index:
	 * no new version for --keep-versions (its history entry and the
	 * holds stay), so an idle writer's renewals keep old versions. */
	if (rc == 0 && (drop_history || first_new < l->nparts)) {
		rc = hist_update(t, drop_history ? NULL : old->hist,
		    drop_history ? 0 : old->hist_len, seq, l, keep);
		if (rc == 0)
			rc = store_misc_u64_put(t, STORE_MISC_INDEX_VERS,
			    owner__index_vers(t) + 1);
	}
	if (rc == 0)
		rc = store_misc_bytes_put(t, STORE_MISC_INDEX_PARTS, w.p, w.len);
	if (rc == 0)
		rc = store_misc_u64_put(t, STORE_MISC_INDEX_SEQ, seq > old->seq ? seq : old->seq);
	if (rc == 0)
		rc = store_misc_u64_put(t, STORE_MISC_INDEX_GEN, gen);
	if (rc == 0)
		rc = store_misc_u64_put(t, STORE_MISC_INDEX_TIME, vtime);
	if (rc == 0 && (rc = store_txn_gen(t, &self)) == 0)
		rc = store_misc_u64_put(t, STORE_MISC_INDEX_SELF, self);
	if (rc < 0) {
		store_txn_abort(t);
		goto out;
	}
	rc = store_txn_commit(t);
out:
	owner__wr_free(&w);
	return rc;
}

/* ---- publishing -------------------------------------------------------------- */

/* *voters: those not DEAD, whose majority must hold a head. */
static int
peers_list(struct net *n, struct owner__sup **out, int *count, int *voters)
{
	struct net_peer_info *pi;
	struct owner__sup *s;
	int np, ns = 0;

	if (!(pi = calloc(OWNER__INDEX_PEERS_MAX, sizeof *pi)))
		return -ENOMEM;
	np = net_peers(n, pi, OWNER__INDEX_PEERS_MAX, 0);
	if (np > OWNER__INDEX_PEERS_MAX)
		np = OWNER__INDEX_PEERS_MAX;
	if (np < 0 || !(s = calloc(np ? np : 1, sizeof *s))) {
		free(pi);
		return np < 0 ? np : -ENOMEM;
	}
	for (int i = 0; i < np; i++) {
		if (sodium_is_zero(pi[i].pk, CR_PK_BYTES) || !pi[i].addr[0])
			continue;
		if (pi[i].state != NET_PEER_DEAD)
			(*voters)++;
		snprintf(s[ns].addr, sizeof s[ns].addr, "%s", pi[i].addr);
		memcpy(s[ns].pk, pi[i].pk, CR_PK_BYTES);
		ns++;
	}
	free(pi);
	*out = s;
	*count = ns;
	return 0;
}

/* The kept parts' blocks as the blocks table has them now: the
 * rebuilder may have moved fragments since they were stored. */
static int
layout_refresh(struct store *st, struct owner__layout *l)
{
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	for (int i = 0; i < l->nparts; i++) {
		for (int j = 0; j < l->parts[i].nblk; j++) {
			struct store_block *b = &l->parts[i].blk[j], cur;

			if (store_block_get(t, b->id, &cur) == 0 &&
			    cur.plain_len == b->plain_len) {
				*b = cur;
				b->refcount = 1;
			}
			sodium_memzero(&cur, sizeof cur);
		}
	}
	store_txn_abort(t);
	return 0;
}

/* Cuts bytes into blocks stored on suppliers: fills pt. Sealed whole
 * (CR_SEAL_WHOLE): a head's block records carry no seal format, and an
 * index block is only ever read whole. */
static int
store_part(struct net *n, const unsigned char *key, const struct owner__wr *data,
    struct owner__part *pt)
{
	size_t nblk = (data->len + OWNER__INDEX_CHUNK - 1) / OWNER__INDEX_CHUNK;
	unsigned char bkey[CR_KEY_BYTES];
	int rc;

	if (nblk == 0 || nblk > UINT16_MAX)
		return -EFBIG;
	if (!(pt->blk = calloc(nblk, sizeof *pt->blk)))
		return -ENOMEM;
	pt->bytes = data->len;
	for (size_t i = 0; i < nblk; i++) {
		size_t off = i * OWNER__INDEX_CHUNK;
		size_t len = data->len - off < OWNER__INDEX_CHUNK ? data->len - off :
		    OWNER__INDEX_CHUNK;

		cr_block_key(bkey, data->p + off, len, key);
		rc = net_block_store_fmt(n, data->p + off, len, bkey,
		    CR_SEAL_WHOLE, &pt->blk[i]);
		sodium_memzero(bkey, sizeof bkey);
		if (rc < 0)
			return rc;
		pt->blk[i].refcount = 1;
		pt->blk[i].pad[0] |= STORE_BLOCK_INDEX;
		pt->nblk++;
	}
	return 0;
}

/* Records that seq was used by a head that did not count. */
static void
seq_spent(struct store *st, uint64_t seq)
{
	struct store_txn *t;

	if (store_txn_begin(st, 0, &t) < 0)
		return;
	if (misc_u64(t, STORE_MISC_INDEX_SEQ) >= seq ||
	    store_misc_u64_put(t, STORE_MISC_INDEX_SEQ, seq) < 0)
		store_txn_abort(t);
	else
		store_txn_commit(t);
}

int
owner__index_put(const struct owner__index_io *io, int force_base)
{
	struct net *n = io->net;
	struct store *st = io->store;
	unsigned char key[CR_KEY_BYTES];
	struct state s;
	struct owner__layout nl = { 0 };
	struct owner__wr data = { 0 }, blob = { 0 };
	struct owner__sup *sups = NULL;
	unsigned char *sealed = NULL, *head = NULL;
	size_t sealed_len, head_len;
	uint64_t cur, covered = 0, segbytes = 0, seq, vtime;
	struct timespec now;
	struct net_head_tally tally = { 0 };
	int rc, nsup = 0, voters = 0, base = 0, nseg;

	if ((rc = store_index_gen(st, &cur)) < 0)
		return rc;
	if ((rc = state_load(st, &s)) < 0)
		return rc;
	/* Our bookkeeping takes a change number of its own: cur == self
	 * means nothing else only when nothing came between the version
	 * and the bookkeeping (else store_index_changes tells). */
	if (s.l.nparts && !force_base && (io->head_only || cur == s.gen ||
	    (cur == s.self && store_index_files_changed(st, s.gen) == 0))) {
		if (io->head_always || io->head_only) {
			/* Nothing changed: the same layout under a new head
			 * (the lease it carries is what changes). */
			for (int i = 0; i < s.l.nparts; i++) {
				nl.parts[i] = s.l.parts[i];
				s.l.parts[i].blk = NULL;
			}
			nl.nparts = s.l.nparts;
			covered = s.gen;
			cr_subkey(key, io->id, CR_SUBKEY_INDEX);
			if ((rc = layout_refresh(st, &nl)) < 0)
				goto out;
			base = 0;
			goto sign;
		}
		state_free(&s);
		return 0;
	}
	nseg = s.l.nparts ? s.l.nparts - 1 : 0;
	for (int i = 1; i < s.l.nparts; i++)
		segbytes += s.l.parts[i].bytes;
	base = force_base || !s.l.nparts || nseg >= INDEX_SEGS_MAX ||
	    segbytes > s.l.parts[0].bytes / 2;
	rc = base ? store_index_dump(st, &covered, owner__wr_out, &data) :
	    store_index_changes(st, s.gen, &covered, owner__wr_out, &data);
	if (rc < 0)
		goto out;
	if (!base && data.len == 0 && !io->head_always) {
		rc = 0;		/* only our own bookkeeping changed */
		goto out;
	}
	cr_subkey(key, io->id, CR_SUBKEY_INDEX);
	if (!base) {
		/* The old parts stay; nl borrows nothing: copy them. */
		for (int i = 0; i < s.l.nparts; i++) {
			nl.parts[i] = s.l.parts[i];
			s.l.parts[i].blk = NULL;
		}
		nl.nparts = s.l.nparts;
		if ((rc = layout_refresh(st, &nl)) < 0)
			goto out;
	}
	if (data.len == 0 && !base) {
		covered = s.gen;	/* a head only */
		goto sign;
	}
	nl.parts[nl.nparts].kind = base ? PART_BASE : PART_SEG;
	nl.parts[nl.nparts].gen = covered;
	nl.nparts++;
	rc = store_part(n, key, &data, &nl.parts[nl.nparts - 1]);
	if (rc < 0) {
		log_warn("index: cannot store %s of %zu bytes: %s",
		    base ? "snapshot" : "segment", data.len, strerror(-rc));
		goto out;
	}
sign:
	if ((rc = peers_list(n, &sups, &nsup, &voters)) < 0 ||
	    (rc = owner__blob_encode(io, &nl, sups, nsup, &blob)) < 0)
		goto out;
	if (blob.len + 24 + CR_SEAL_ABYTES > CR_HEAD2_BLOB_MAX) {
		log_error("index: layout of %zu bytes does not fit a head",
		    blob.len);
		rc = -EFBIG;
		goto out;
	}
	if ((rc = cr_blob_seal(key, blob.p, blob.len, &sealed,
	    &sealed_len)) < 0)
		goto out;
	seq = (s.seq > io->above ? s.seq : io->above) + 1;
	if ((rc = cr_head2_sign(io->id, seq, (uint64_t)time(NULL),
	    owner__layout_index_id(key, &nl), sealed, sealed_len, &head,
	    &head_len)) < 0)
		goto out;
	rc = net_head_publish_count(n, head, head_len, &tally);
	if (io->tally)
		*io->tally = tally;
	/* A version counts once most of the suppliers it names hold its
	 * head: two nodes racing for one seq cannot both have that. */
	if (rc >= 0 && tally.stored * 2 <= (voters > tally.asked ? voters :
	    tally.asked)) {
		/* The seq is spent either way: a supplier that stored it
		 * would refuse it again. */
		seq_spent(st, seq);
		if (tally.stale) {
			log_warn("index: head %" PRIu64 " refused by %d of %d "
			    "suppliers (a newer head exists), stored on %d",
			    seq, tally.stale, tally.asked, tally.stored);
			rc = -ESTALE;
		} else {
			log_warn("index: head %" PRIu64 " stored on %d of %d "
			    "suppliers: too few", seq, tally.stored, voters);
			rc = -EAGAIN;
		}
		goto out;
	}
	if (rc < 0) {
		log_warn("index: head %" PRIu64 " stored on no supplier: %s",
		    seq, strerror(-rc));
		goto out;
	}
	log_debug("index: head %" PRIu64 " (%s, %zu bytes, gen %" PRIu64
	    ") on %d suppliers", seq, base ? "snapshot" : "segment", data.len,
	    covered, rc);
	/* Those holding our heads now announce themselves under our
	 * locator (once per supplier and mount): a restore from the code
	 * finds them through any node of the network. */
	{
		unsigned char loc[CR_KEY_BYTES];

		cr_subkey(loc, io->id, CR_SUBKEY_LOCATOR);
		if (net_locator_put(n, loc) < 0)
			log_debug("index: locator not handed over");
	}
	/* After the head is out: every change another node makes on top of
	 * this version comes later (owner/catchup.c compares). */
	clock_gettime(CLOCK_REALTIME, &now);
	vtime = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	if ((rc = state_commit(st, &s, seq, vtime, covered, &nl,
	    data.len || base ? nl.nparts - 1 : nl.nparts, 0,
	    index_keep(io))) < 0) {
		log_error("index: head %" PRIu64 " published but not "
		    "recorded: %s", seq, strerror(-rc));
		goto out;
	}
	/* Changes up to `covered` are in every kept version's parts. */
	if ((rc = store_index_trim(st, covered)) < 0)
		log_warn("index: change log trim: %s", strerror(-rc));
	rc = 1;
out:
	sodium_memzero(key, sizeof key);
	owner__layout_free(&nl);
	state_free(&s);
	owner__wr_free(&data);
	owner__wr_free(&blob);
	free(sups);
	free(sealed);
	free(head);
	return rc;
}

int
owner__index_adopt(const struct owner__index_io *io, uint64_t newest,
    uint64_t seq, uint64_t vtime, uint64_t gen, const struct owner__layout *l)
{
	struct state s = { .seq = newest };

	return state_commit(io->store, &s, seq, vtime, gen, l, 0, 1,
	    index_keep(io));
}

int
owner__index_local(struct store *st, struct owner__layout *l)
{
	struct state s;
	int rc;

	if ((rc = state_load(st, &s)) < 0)
		return rc;
	*l = s.l;
	memset(&s.l, 0, sizeof s.l);
	state_free(&s);
	return 0;
}

int
owner__index_unpublished(struct store *st)
{
	struct store_txn *t;
	uint64_t cur, gen;
	int rc;

	if ((rc = store_index_gen(st, &cur)) < 0)
		return rc;
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	gen = misc_u64(t, STORE_MISC_INDEX_GEN);
	store_txn_abort(t);
	if (cur == gen)
		return 0;
	return store_index_files_changed(st, gen);
}
