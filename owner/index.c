/* owner/index.c - the owner's index on suppliers: publishing versions
 * (a base snapshot plus change segments, sealed and erasure-coded like
 * file data, named by a signed head) and restoring one from the key.
 *
 * The head's blob, sealed with the index subkey (cr_blob_seal), holds
 * the layout, integers big-endian:
 *   "PFSIDX1\0" | u8 k | u8 m | u32 chunk bytes
 *   | u16 suppliers | per supplier: u8 len | address | pk[32]
 *   | parts (see put_parts)
 * parts = u16 n | per part: u8 kind (0 base, 1 segment) | u64 bytes
 *   | u64 gen | u16 blocks | per block: id[32] | key[32] | u32 plain_len
 *   | u32 frag_len | u8 k | u8 m | (k + m) x (hash[32] | pk[32]).
 * A version is the base followed by its segments, applied in order.
 *
 * The owner's bookkeeping lives in misc under "index." (never indexed):
 *   index.seq    u64  highest head seq published or seen
 *   index.gen    u64  change number the newest version covers
 *   index.self   u64  change number of our own bookkeeping transaction
 *   index.parts       parts of the newest version (as above)
 *   index.hist        u16 n | n x (u64 seq | u16 ids | ids x id[32]):
 *                     the blocks of the newest conf.keep_versions versions
 *   index.restored u64 seq | u64 time of the head a restore used.
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

#define IDX_MAGIC	"PFSIDX1"	/* 8 bytes with the NUL */
#define INDEX_CHUNK	(4u << 20)
#define INDEX_SEGS_MAX	32
#define INDEX_KEEP_MAX	100	/* --keep-versions at most */
#define PEERS_MAX	256
#define PARTS_MAX	(INDEX_SEGS_MAX + 1)

enum { PART_BASE = 0, PART_SEG = 1 };

struct part {
	uint8_t kind;
	uint64_t bytes, gen;
	uint16_t nblk;
	struct store_block *blk;
};

struct layout {
	struct part parts[PARTS_MAX];
	int nparts;
};

struct sup {
	char addr[64];
	unsigned char pk[CR_PK_BYTES];
};

/* ---- bytes in and out ---------------------------------------------------- */

struct wr {
	unsigned char *p;
	size_t len, cap;
	int err;
};

static void
wr_put(struct wr *w, const void *p, size_t n)
{
	if (w->err || n == 0)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		unsigned char *np;

		while (cap < w->len + n)
			cap *= 2;
		if (!(np = malloc(cap))) {
			w->err = -ENOMEM;
			return;
		}
		if (w->len)
			memcpy(np, w->p, w->len);
		if (w->p) {
			sodium_memzero(w->p, w->cap);	/* block keys */
			free(w->p);
		}
		w->p = np;
		w->cap = cap;
	}
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

static void
wr_u8(struct wr *w, uint8_t v)
{
	wr_put(w, &v, 1);
}

static void
wr_u16(struct wr *w, uint16_t v)
{
	unsigned char b[2] = { v >> 8, v & 0xff };

	wr_put(w, b, 2);
}

static void
wr_u32(struct wr *w, uint32_t v)
{
	unsigned char b[4];

	put_be32(b, v);
	wr_put(w, b, 4);
}

static void
wr_u64(struct wr *w, uint64_t v)
{
	unsigned char b[8];

	put_be64(b, v);
	wr_put(w, b, 8);
}

static void
wr_free(struct wr *w)
{
	if (w->p) {
		sodium_memzero(w->p, w->cap);
		free(w->p);
	}
	memset(w, 0, sizeof *w);
}

static int
wr_out(void *arg, const void *p, size_t n)
{
	struct wr *w = arg;

	wr_put(w, p, n);
	return w->err;
}

struct rd {
	const unsigned char *p;
	size_t n, off;
	int bad;
};

static const unsigned char *
rd_get(struct rd *r, size_t n)
{
	const unsigned char *p;

	if (r->bad || r->n - r->off < n) {
		r->bad = 1;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

static uint64_t
rd_uint(struct rd *r, int bytes)
{
	const unsigned char *p = rd_get(r, (size_t)bytes);
	uint64_t v = 0;

	for (int i = 0; p && i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- layout ---------------------------------------------------------------- */

static void
layout_free(struct layout *l)
{
	for (int i = 0; i < l->nparts; i++) {
		if (l->parts[i].blk) {
			sodium_memzero(l->parts[i].blk,
			    l->parts[i].nblk * sizeof *l->parts[i].blk);
			free(l->parts[i].blk);
		}
	}
	memset(l, 0, sizeof *l);
}

static void
put_parts(struct wr *w, const struct layout *l)
{
	wr_u16(w, (uint16_t)l->nparts);
	for (int i = 0; i < l->nparts; i++) {
		const struct part *pt = &l->parts[i];

		wr_u8(w, pt->kind);
		wr_u64(w, pt->bytes);
		wr_u64(w, pt->gen);
		wr_u16(w, pt->nblk);
		for (int j = 0; j < pt->nblk; j++) {
			const struct store_block *b = &pt->blk[j];

			wr_put(w, b->id, CR_ID_BYTES);
			wr_put(w, b->key, CR_KEY_BYTES);
			wr_u32(w, b->plain_len);
			wr_u32(w, b->frag_len);
			wr_u8(w, b->k);
			wr_u8(w, b->m);
			for (int f = 0; f < b->k + b->m; f++) {
				wr_put(w, b->frag_hash[f], CR_HASH_BYTES);
				wr_put(w, b->peer[f], CR_PK_BYTES);
			}
		}
	}
}

/* Peer bytes (a blob that opened with our key is ours, but be strict
 * anyway: a bug must not become an overflow). */
static int
get_parts(struct rd *r, struct layout *l)
{
	uint64_t n = rd_uint(r, 2);

	memset(l, 0, sizeof *l);
	if (r->bad || n > PARTS_MAX)
		return -EPROTO;
	for (uint64_t i = 0; i < n; i++) {
		struct part *pt = &l->parts[l->nparts];

		pt->kind = (uint8_t)rd_uint(r, 1);
		pt->bytes = rd_uint(r, 8);
		pt->gen = rd_uint(r, 8);
		pt->nblk = (uint16_t)rd_uint(r, 2);
		if (r->bad || pt->kind > PART_SEG ||
		    (i == 0) != (pt->kind == PART_BASE))
			goto bad;
		if (pt->nblk && !(pt->blk = calloc(pt->nblk, sizeof *pt->blk)))
			goto bad;
		l->nparts++;
		uint64_t sum = 0;
		for (int j = 0; j < pt->nblk; j++) {
			struct store_block *b = &pt->blk[j];
			const unsigned char *p;

			if (!(p = rd_get(r, CR_ID_BYTES + CR_KEY_BYTES)))
				goto bad;
			memcpy(b->id, p, CR_ID_BYTES);
			memcpy(b->key, p + CR_ID_BYTES, CR_KEY_BYTES);
			b->plain_len = (uint32_t)rd_uint(r, 4);
			b->frag_len = (uint32_t)rd_uint(r, 4);
			b->k = (uint8_t)rd_uint(r, 1);
			b->m = (uint8_t)rd_uint(r, 1);
			if (r->bad || b->k < 1 || b->m < 1 ||
			    b->k + b->m > CR_EC_MAX || b->plain_len > INDEX_CHUNK)
				goto bad;
			for (int f = 0; f < b->k + b->m; f++) {
				if (!(p = rd_get(r, CR_HASH_BYTES + CR_PK_BYTES)))
					goto bad;
				memcpy(b->frag_hash[f], p, CR_HASH_BYTES);
				memcpy(b->peer[f], p + CR_HASH_BYTES, CR_PK_BYTES);
			}
			b->refcount = 1;
			b->pad[0] = STORE_BLOCK_INDEX;
			sum += b->plain_len;
		}
		if (sum != pt->bytes)
			goto bad;
	}
	return 0;
bad:
	layout_free(l);
	return -EPROTO;
}

static uint64_t
layout_bytes(const struct layout *l)
{
	uint64_t sum = 0;

	for (int i = 0; i < l->nparts; i++)
		sum += l->parts[i].bytes;
	return sum;
}

static int
blob_encode(const struct owner__index_io *io, const struct layout *l,
    const struct sup *sups, int nsup, struct wr *w)
{
	int k, m;

	net_code(io->net, &k, &m);
	wr_put(w, IDX_MAGIC, 8);
	wr_u8(w, (uint8_t)k);
	wr_u8(w, (uint8_t)m);
	wr_u32(w, INDEX_CHUNK);
	wr_u16(w, (uint16_t)nsup);
	for (int i = 0; i < nsup; i++) {
		size_t alen = strlen(sups[i].addr);

		wr_u8(w, (uint8_t)alen);
		wr_put(w, sups[i].addr, alen);
		wr_put(w, sups[i].pk, CR_PK_BYTES);
	}
	put_parts(w, l);
	return w->err;
}

/* *sups malloc()'d. */
static int
blob_decode(const unsigned char *p, size_t n, struct sup **sups, int *nsup,
    struct layout *l)
{
	struct rd r = { p, n, 0, 0 };
	const unsigned char *m = rd_get(&r, 8);
	struct sup *s = NULL;
	uint64_t ns;
	int rc;

	rd_uint(&r, 1);		/* k, m, chunk: informative */
	rd_uint(&r, 1);
	rd_uint(&r, 4);
	ns = rd_uint(&r, 2);
	if (r.bad || memcmp(m, IDX_MAGIC, 8) != 0 || ns > PEERS_MAX)
		return -EPROTO;
	if (ns && !(s = calloc(ns, sizeof *s)))
		return -ENOMEM;
	for (uint64_t i = 0; i < ns; i++) {
		uint64_t alen = rd_uint(&r, 1);
		const unsigned char *a = rd_get(&r, alen);
		const unsigned char *pk = rd_get(&r, CR_PK_BYTES);

		if (r.bad || alen == 0 || alen >= sizeof s[i].addr ||
		    memchr(a, '\0', alen)) {
			free(s);
			return -EPROTO;
		}
		memcpy(s[i].addr, a, alen);
		memcpy(s[i].pk, pk, CR_PK_BYTES);
	}
	if ((rc = get_parts(&r, l)) < 0 || r.off != r.n || l->nparts == 0) {
		if (rc == 0)
			layout_free(l);
		free(s);
		return -EPROTO;
	}
	*sups = s;
	*nsup = (int)ns;
	return 0;
}

/* ---- misc bookkeeping ------------------------------------------------------ */

static uint64_t
misc_u64(struct store_txn *t, const char *name)
{
	unsigned char b[8];

	return store_misc_get(t, name, b, sizeof b) == 8 ? get_be64(b) : 0;
}

static int
misc_put_u64(struct store_txn *t, const char *name, uint64_t v)
{
	unsigned char b[8];

	put_be64(b, v);
	return store_misc_put(t, name, b, sizeof b);
}

/* *out malloc()'d, NULL and 0 when missing. */
static int
misc_blob(struct store_txn *t, const char *name, unsigned char **out,
    size_t *len)
{
	int rc = store_misc_get(t, name, NULL, 0);

	*out = NULL;
	*len = 0;
	if (rc == -ENOENT || rc == 0)
		return 0;
	if (rc < 0)
		return rc;
	if (!(*out = malloc((size_t)rc)))
		return -ENOMEM;
	store_misc_get(t, name, *out, (size_t)rc);
	*len = (size_t)rc;
	return 0;
}

struct state {
	uint64_t seq, gen, self;
	struct layout l;
	unsigned char *hist;
	size_t hist_len;
};

static void
state_free(struct state *s)
{
	layout_free(&s->l);
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
	s->seq = misc_u64(t, "index.seq");
	s->gen = misc_u64(t, "index.gen");
	s->self = misc_u64(t, "index.self");
	if ((rc = misc_blob(t, "index.parts", &pp, &plen)) == 0)
		rc = misc_blob(t, "index.hist", &s->hist, &s->hist_len);
	store_txn_abort(t);
	if (rc == 0 && pp) {
		struct rd r = { pp, plen, 0, 0 };

		if (get_parts(&r, &s->l) < 0) {
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
	struct rd r = { h, len, from, 0 };

	while (r.off < r.n && !r.bad) {
		uint64_t nid;

		rd_uint(&r, 8);
		nid = rd_uint(&r, 2);
		for (uint64_t i = 0; i < nid; i++) {
			const unsigned char *p = rd_get(&r, CR_ID_BYTES);

			if (p && memcmp(p, id, CR_ID_BYTES) == 0)
				return 1;
		}
	}
	return 0;
}

/* Forgets one index block: its fragments go to the deletion queue. */
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
    uint64_t seq, const struct layout *l, size_t keep)
{
	struct rd r = { old, old_len, 0, 0 };
	size_t starts[INDEX_KEEP_MAX * 4 + 64], nent = 0, keep_from, drop;
	struct wr w = { 0 };
	int rc = 0, nid = 0;

	while (r.off < r.n && !r.bad && nent < ARRAY_SIZE(starts)) {
		starts[nent++] = r.off;
		rd_uint(&r, 8);
		rd_get(&r, CR_ID_BYTES * rd_uint(&r, 2));
	}
	if (r.bad) {
		log_warn("index: version history unreadable: restarted");
		nent = 0;
		old_len = 0;
	}
	/* The newest keep - 1 old entries stay, plus the new one. */
	drop = nent + 1 > keep ? nent + 1 - keep : 0;
	keep_from = drop < nent ? starts[drop] : old_len;
	wr_put(&w, old + keep_from, old_len - keep_from);
	wr_u64(&w, seq);
	for (int i = 0; i < l->nparts; i++)
		nid += l->parts[i].nblk;
	wr_u16(&w, (uint16_t)nid);
	for (int i = 0; i < l->nparts; i++)
		for (int j = 0; j < l->parts[i].nblk; j++)
			wr_put(&w, l->parts[i].blk[j].id, CR_ID_BYTES);
	if ((rc = w.err) < 0)
		goto out;
	/* Blocks of the dropped versions that no kept one uses. */
	r = (struct rd){ old, keep_from, 0, 0 };
	while (r.off < r.n && !r.bad && rc == 0) {
		uint64_t n;

		rd_uint(&r, 8);
		n = rd_uint(&r, 2);
		for (uint64_t i = 0; i < n && rc == 0; i++) {
			const unsigned char *id = rd_get(&r, CR_ID_BYTES);

			if (id && !id_in_hist(w.p, w.len, 0, id))
				rc = drop_block(t, id);
		}
	}
	if (rc == 0)
		rc = store_misc_put(t, "index.hist", w.p, w.len);
out:
	wr_free(&w);
	return rc;
}

/* Records a published (or restored) version: its blocks, layout, seq and
 * covered gen, in one transaction. */
static int
state_commit(struct store *st, const struct state *old, uint64_t seq,
    uint64_t gen, const struct layout *l, int first_new, int drop_history,
    size_t keep)
{
	struct store_txn *t;
	struct wr w = { 0 };
	uint64_t self;
	int rc;

	put_parts(&w, l);
	if (w.err)
		return w.err;
	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		goto out;
	/* Only new blocks: older ones have live records (audits, rebuilt
	 * placements) that the layout's copy would roll back. */
	for (int i = first_new; rc == 0 && i < l->nparts; i++)
		for (int j = 0; rc == 0 && j < l->parts[i].nblk; j++)
			rc = store_block_put(t, &l->parts[i].blk[j]);
	if (rc == 0)
		rc = hist_update(t, drop_history ? NULL : old->hist,
		    drop_history ? 0 : old->hist_len, seq, l, keep);
	if (rc == 0)
		rc = store_misc_put(t, "index.parts", w.p, w.len);
	if (rc == 0)
		rc = misc_put_u64(t, "index.seq", seq > old->seq ? seq : old->seq);
	if (rc == 0)
		rc = misc_put_u64(t, "index.gen", gen);
	if (rc == 0 && (rc = store_txn_gen(t, &self)) == 0)
		rc = misc_put_u64(t, "index.self", self);
	if (rc < 0) {
		store_txn_abort(t);
		goto out;
	}
	rc = store_txn_commit(t);
out:
	wr_free(&w);
	return rc;
}

/* ---- publishing -------------------------------------------------------------- */

static int
peers_list(struct net *n, struct sup **out, int *count)
{
	struct net_peer_info *pi;
	struct sup *s;
	int np, ns = 0;

	if (!(pi = calloc(PEERS_MAX, sizeof *pi)))
		return -ENOMEM;
	np = net_peers(n, pi, PEERS_MAX, 0);
	if (np > PEERS_MAX)
		np = PEERS_MAX;
	if (np < 0 || !(s = calloc(np ? np : 1, sizeof *s))) {
		free(pi);
		return np < 0 ? np : -ENOMEM;
	}
	for (int i = 0; i < np; i++) {
		if (sodium_is_zero(pi[i].pk, CR_PK_BYTES) || !pi[i].addr[0])
			continue;
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
layout_refresh(struct store *st, struct layout *l)
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

/* Cuts bytes into blocks stored on suppliers: fills pt. */
static int
store_part(struct net *n, const unsigned char *key, const struct wr *data,
    struct part *pt)
{
	size_t nblk = (data->len + INDEX_CHUNK - 1) / INDEX_CHUNK;
	int rc;

	if (nblk == 0 || nblk > UINT16_MAX)
		return -EFBIG;
	if (!(pt->blk = calloc(nblk, sizeof *pt->blk)))
		return -ENOMEM;
	pt->bytes = data->len;
	for (size_t i = 0; i < nblk; i++) {
		size_t off = i * INDEX_CHUNK;
		size_t len = data->len - off < INDEX_CHUNK ? data->len - off :
		    INDEX_CHUNK;

		if ((rc = net_block_store(n, data->p + off, len, key,
		    &pt->blk[i])) < 0)
			return rc;
		pt->blk[i].refcount = 1;
		pt->blk[i].pad[0] |= STORE_BLOCK_INDEX;
		pt->nblk++;
	}
	return 0;
}

int
owner__index_put(const struct owner__index_io *io, int force_base)
{
	struct net *n = io->net;
	struct store *st = io->store;
	unsigned char key[CR_KEY_BYTES];
	struct state s;
	struct layout nl = { 0 };
	struct wr data = { 0 }, blob = { 0 };
	struct sup *sups = NULL;
	unsigned char *sealed = NULL, *head = NULL;
	size_t sealed_len, head_len;
	uint64_t cur, covered, segbytes = 0, seq;
	int rc, nsup, base, nseg;

	if ((rc = store_index_gen(st, &cur)) < 0)
		return rc;
	if ((rc = state_load(st, &s)) < 0)
		return rc;
	if (s.l.nparts && !force_base && (cur == s.gen || cur == s.self)) {
		state_free(&s);
		return 0;
	}
	nseg = s.l.nparts ? s.l.nparts - 1 : 0;
	for (int i = 1; i < s.l.nparts; i++)
		segbytes += s.l.parts[i].bytes;
	base = force_base || !s.l.nparts || nseg >= INDEX_SEGS_MAX ||
	    segbytes > s.l.parts[0].bytes / 2;
	rc = base ? store_index_dump(st, &covered, wr_out, &data) :
	    store_index_changes(st, s.gen, &covered, wr_out, &data);
	if (rc < 0)
		goto out;
	if (!base && data.len == 0) {
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
	nl.parts[nl.nparts].kind = base ? PART_BASE : PART_SEG;
	nl.parts[nl.nparts].gen = covered;
	nl.nparts++;
	rc = store_part(n, key, &data, &nl.parts[nl.nparts - 1]);
	if (rc < 0) {
		log_warn("index: cannot store %s of %zu bytes: %s",
		    base ? "snapshot" : "segment", data.len, strerror(-rc));
		goto out;
	}
	if ((rc = peers_list(n, &sups, &nsup)) < 0 ||
	    (rc = blob_encode(io, &nl, sups, nsup, &blob)) < 0)
		goto out;
	if (blob.len + 24 + CR_SEAL_ABYTES > CR_HEAD_BLOB_MAX) {
		log_error("index: layout of %zu bytes does not fit a head",
		    blob.len);
		rc = -EFBIG;
		goto out;
	}
	if ((rc = cr_blob_seal(key, blob.p, blob.len, &sealed,
	    &sealed_len)) < 0)
		goto out;
	seq = s.seq + 1;
	if ((rc = cr_head_sign(io->id, seq, (uint64_t)time(NULL), sealed,
	    sealed_len, &head, &head_len)) < 0)
		goto out;
	if ((rc = net_head_publish(n, head, head_len)) <= 0) {
		log_warn("index: head %" PRIu64 " stored on no supplier: %s",
		    seq, rc ? strerror(-rc) : "all refused");
		rc = rc ? rc : -EAGAIN;
		goto out;
	}
	log_debug("index: head %" PRIu64 " (%s, %zu bytes, gen %" PRIu64
	    ") on %d suppliers", seq, base ? "snapshot" : "segment", data.len,
	    covered, rc);
	if ((rc = state_commit(st, &s, seq, covered, &nl, nl.nparts - 1,
	    0, index_keep(io))) < 0) {
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
	layout_free(&nl);
	state_free(&s);
	wr_free(&data);
	wr_free(&blob);
	free(sups);
	free(sealed);
	free(head);
	return rc;
}

/* ---- heads on the network ---------------------------------------------------- */

struct head_copy {
	char addr[64];
	uint64_t seq, time;
	unsigned char *p;
	size_t len;
};

struct heads {
	struct head_copy *v;
	int n, cap;
};

static int
heads_add(void *arg, const char *addr, uint64_t seq, const void *head,
    size_t len)
{
	struct heads *hs = arg;
	struct head_copy *c;
	struct cr_head h;

	if (cr_head_verify(head, len, &h) < 0)
		return 0;	/* net/heads.c checked it: cannot happen */
	if (hs->n == hs->cap) {
		int cap = hs->cap ? 2 * hs->cap : 32;
		struct head_copy *nv = realloc(hs->v, cap * sizeof *nv);

		if (!nv)
			return -ENOMEM;
		hs->v = nv;
		hs->cap = cap;
	}
	c = &hs->v[hs->n];
	if (!(c->p = malloc(len)))
		return -ENOMEM;
	memcpy(c->p, head, len);
	c->len = len;
	c->seq = seq;
	c->time = h.time;
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	hs->n++;
	return 0;
}

static void
heads_free(struct heads *hs)
{
	for (int i = 0; i < hs->n; i++)
		free(hs->v[i].p);
	free(hs->v);
	memset(hs, 0, sizeof *hs);
}

static int
head_cmp_desc(const void *a, const void *b)
{
	const struct head_copy *x = a, *y = b;

	return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* Every head the online suppliers hold, newest first. */
static int
heads_get(struct net *n, struct heads *hs)
{
	int rc;

	memset(hs, 0, sizeof *hs);
	if ((rc = net_heads_fetch(n, 0, heads_add, hs)) < 0) {
		heads_free(hs);
		return rc;
	}
	if (hs->n)
		qsort(hs->v, hs->n, sizeof *hs->v, head_cmp_desc);
	return rc;
}

/* Opens a head's blob: *layout and *sups (malloc'd). */
static int
head_open(const struct owner__index_io *io, const struct head_copy *c, struct layout *l,
    struct sup **sups, int *nsup)
{
	unsigned char key[CR_KEY_BYTES], *plain = NULL;
	size_t plen;
	struct cr_head h;
	int rc;

	if ((rc = cr_head_verify(c->p, c->len, &h)) < 0)
		return rc;
	cr_subkey(key, io->id, CR_SUBKEY_INDEX);
	rc = cr_blob_open(key, h.blob, h.blob_len, &plain, &plen);
	sodium_memzero(key, sizeof key);
	if (rc < 0)
		return rc;
	rc = blob_decode(plain, plen, sups, nsup, l);
	sodium_memzero(plain, plen);
	free(plain);
	return rc;
}

/* Rollback detection: suppliers whose newest head is older than the
 * newest the network (or this node) knows. */
static void
warn_stale(const struct heads *hs, uint64_t newest)
{
	for (int i = 0; i < hs->n; i++) {
		uint64_t best = 0;
		int seen = 0;

		for (int j = 0; j < hs->n; j++) {
			if (strcmp(hs->v[j].addr, hs->v[i].addr) != 0)
				continue;
			if (j < i)
				seen = 1;
			if (hs->v[j].seq > best)
				best = hs->v[j].seq;
		}
		if (!seen && best < newest)
			log_warn("supplier %s offers head %" PRIu64 " at most, "
			    "the newest is %" PRIu64 ": it lost or hides newer "
			    "heads (rollback?); using %" PRIu64, hs->v[i].addr,
			    best, newest, newest);
	}
}

int
owner__index_check(const struct owner__index_io *io)
{
	struct net *n = io->net;
	struct store *st = io->store;
	struct store_txn *t;
	struct heads hs;
	uint64_t known = 0;
	int rc;

	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	known = misc_u64(t, "index.seq");
	store_txn_abort(t);
	if ((rc = heads_get(n, &hs)) < 0)
		return rc;
	if (hs.n == 0 && known)
		log_warn("index: no supplier offers a head, this node "
		    "published %" PRIu64, known);
	else if (hs.n && hs.v[0].seq < known)
		log_warn("index: suppliers offer head %" PRIu64 " at most, "
		    "this node published %" PRIu64 ": rollback or lost heads",
		    hs.v[0].seq, known);
	if (hs.n)
		warn_stale(&hs, hs.v[0].seq > known ? hs.v[0].seq : known);
	rc = hs.n ? (int)(hs.v[0].seq > INT32_MAX ? INT32_MAX : hs.v[0].seq) : 0;
	heads_free(&hs);
	return rc;
}

/* ---- restoring ----------------------------------------------------------------- */

static int
fetch_part(struct net *n, const struct part *pt, unsigned char **out)
{
	unsigned char *buf;
	size_t off = 0;
	int rc;

	if (pt->bytes > (uint64_t)UINT16_MAX * INDEX_CHUNK)
		return -EPROTO;
	if (!(buf = malloc(pt->bytes ? pt->bytes : 1)))
		return -ENOMEM;
	for (int j = 0; j < pt->nblk; j++) {
		if ((rc = net_block_fetch(n, &pt->blk[j], buf + off)) < 0) {
			free(buf);
			return rc;
		}
		off += pt->blk[j].plain_len;
	}
	*out = buf;
	return 0;
}

/* The newest head of hs (or seq == version) that opens: its layout and
 * suppliers. -ENOENT / -EBADMSG with a log line when none. */
static int
pick(const struct owner__index_io *io, const struct heads *hs, uint64_t version,
    struct layout *l, struct sup **sups, int *nsup, int *which)
{
	int rc;

	for (int i = 0; i < hs->n; i++) {
		if (version && hs->v[i].seq != version)
			continue;
		if ((rc = head_open(io, &hs->v[i], l, sups, nsup)) == 0) {
			*which = i;
			return 0;
		}
		log_warn("index: head %" PRIu64 " from %s does not open: %s",
		    hs->v[i].seq, hs->v[i].addr, strerror(-rc));
	}
	log_error("index: %s", version ? "that version is on no supplier "
	    "(see `peerfs versions`)" : "no head opens with this key");
	return version ? -ENOENT : -EBADMSG;
}

int
owner_index_restore(struct net *n, const struct cr_identity *id,
    struct store *st, uint64_t version)
{
	const struct owner__index_io io_ = { n, st, id, 1 }, *io = &io_;
	struct heads hs = { 0 };
	struct layout l = { 0 };
	struct sup *sups = NULL;
	struct state s = { 0 };
	struct store_txn *t;
	int rc, nsup = 0;
	uint64_t newest, gen, used = 0, used_time = 0;

	/* The suppliers we were given may all be stale: those the index
	 * names are asked too, until the choice no longer changes. */
	for (int round = 0; round < 3; round++) {
		struct layout l2;
		struct sup *sups2;
		int nsup2, which, added = 0;

		heads_free(&hs);
		if ((rc = heads_get(n, &hs)) < 0)
			goto out;
		if (hs.n == 0) {
			log_error("index: no supplier holds a head of this "
			    "owner");
			rc = -ENOENT;
			goto out;
		}
		if ((rc = pick(io, &hs, version, &l2, &sups2, &nsup2,
		    &which)) < 0)
			goto out;
		if (hs.v[which].seq == used) {
			layout_free(&l2);
			free(sups2);
			break;
		}
		layout_free(&l);
		free(sups);
		l = l2;
		sups = sups2;
		nsup = nsup2;
		used = hs.v[which].seq;
		used_time = hs.v[which].time;
		for (int i = 0; i < nsup; i++) {
			rc = net_add_known_peer(n, sups[i].addr, sups[i].pk);
			if (rc < 0)
				log_warn("index: supplier %s: %s",
				    sups[i].addr, strerror(-rc));
			else
				added++;
		}
		net_wait_online(n, added, 10000);
	}
	newest = hs.v[0].seq;
	warn_stale(&hs, newest);
	for (int i = 0; i < l.nparts; i++) {
		unsigned char *buf;

		if ((rc = fetch_part(n, &l.parts[i], &buf)) < 0) {
			log_error("index: part %d of head %" PRIu64 ": %s", i,
			    used, strerror(-rc));
			goto out;
		}
		rc = store_index_apply(st, buf, l.parts[i].bytes);
		sodium_memzero(buf, l.parts[i].bytes);
		free(buf);
		if (rc < 0) {
			log_error("index: part %d of head %" PRIu64 " does not "
			    "apply: %s", i, used, strerror(-rc));
			goto out;
		}
	}
	/* The next upload continues this version, above every seq seen. */
	if ((rc = store_index_gen(st, &gen)) < 0)
		goto out;
	s.seq = newest;
	if ((rc = state_commit(st, &s, used, gen, &l, 0, 1, index_keep(io))) < 0)
		goto out;
	if ((rc = store_txn_begin(st, 0, &t)) == 0) {
		unsigned char b[16];

		put_be64(b, used);
		put_be64(b + 8, used_time);
		if ((rc = store_misc_put(t, "index.restored", b, sizeof b)) < 0 ||
		    (used < newest &&
		    (rc = store_misc_put(t, "index.older", "1", 1)) < 0))
			store_txn_abort(t);
		else
			rc = store_txn_commit(t);
	}
	if (rc == 0)
		log_info("index: restored head %" PRIu64 " (%" PRIu64
		    " bytes in %d parts)", used, layout_bytes(&l),
		    l.nparts);
out:
	layout_free(&l);
	free(sups);
	heads_free(&hs);
	return rc;
}

int
owner__index_list(const struct owner__index_io *io,
    int (*cb)(void *arg, uint64_t seq, uint64_t time, uint64_t size),
    void *arg)
{
	struct net *n = io->net;
	struct heads hs;
	int rc, count = 0;

	if ((rc = heads_get(n, &hs)) < 0)
		return rc;
	for (int i = 0; i < hs.n; i++) {
		struct layout l;
		struct sup *sups;
		uint64_t size;
		int nsup;

		if (i && hs.v[i].seq == hs.v[i - 1].seq)
			continue;
		if (head_open(io, &hs.v[i], &l, &sups, &nsup) == 0) {
			size = layout_bytes(&l);
			layout_free(&l);
			free(sups);
		} else {
			size = hs.v[i].len;
		}
		count++;
		if ((rc = cb(arg, hs.v[i].seq, hs.v[i].time, size)) != 0)
			break;
	}
	heads_free(&hs);
	return rc < 0 ? rc : count;
}
