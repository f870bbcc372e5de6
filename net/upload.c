/* net/upload.c - a new block's upload: sealed and encoded in the calling
 * thread (a worker, never the loop), its fragments placed by the loop,
 * one per supplier within the placement rules (net/place.c), each through
 * a RESERVE where the supplier wants one. A laggard's fragment goes to a
 * spare, or is doubled up on a fast holder when there is none. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/internal.h"
#include "util.h"

struct store_op {
	struct net_op op;
	int total;
	unsigned char *const *frags;
	struct net_lend *const *lend;	/* frags', or NULL: PUTs copy */
	size_t frag_len;
	const unsigned char *id;
	const unsigned char (*hash)[CR_HASH_BYTES];	/* by index */
	struct net_req req[CR_EC_MAX];
	struct net_req rsv[CR_EC_MAX];		/* RESERVE before req[i] */
	uint64_t refusals[CR_EC_MAX];	/* holder's count when sent */
	struct net_peer *holder[CR_EC_MAX];
	int acked[CR_EC_MAX];
	struct net_peer **tried;
	int ntried, cap;
	int outstanding, nacked, refused;
	int unvetted_max;		/* fragments on suppliers not vetted */
	unsigned char pk[CR_EC_MAX][CR_PK_BYTES];	/* result */
	/* Laggards (see LAG_*): */
	struct net_req *cur[CR_EC_MAX];	/* i's request in flight, or NULL */
	uint64_t sent_at[CR_EC_MAX];	/* uv_now() ms, i's current holder */
	uint64_t took[CR_EC_MAX];	/* ms an acknowledged one took */
	uint32_t moved;			/* sent to a spare once already */
	uint32_t doubled;		/* fragments doubled up (double_for) */
	uv_timer_t *lag;
};

/* An upload waits on a laggard no longer than LAG_FACTOR times the
 * median time the acknowledged fragments of the block took (at least
 * half of them in), never less than LAG_FLOOR_MS (a supplier's fsync
 * alone takes that on a busy disk): then its fragment goes to a spare,
 * once per fragment, and the laggard is placed after the others for a
 * while (net__peer_better) and loses score. A supplier that is only slow
 * is never marked suspect or dead for it. */
#define LAG_FACTOR	4
#define LAG_FLOOR_MS	250

/* With no spare (six suppliers for 4+2), a laggard's fragment is doubled
 * up on one of the block's fast holders instead of waited for: Tahoe-LAFS
 * places shares likewise when servers are fewer than shares. Each doubled
 * fragment costs the block one supplier loss of its margin, so at most
 * m - 1 of a block's fragments are doubled, each on a holder of its own:
 * the loss of any one supplier is always survived. The owner's rebuild
 * scan spreads them out again once a supplier holding none of the block
 * is online (owner/rebuild.c). */

static int
was_tried(struct store_op *o, struct net_peer *p)
{
	for (int i = 0; i < o->ntried; i++)
		if (o->tried[i] == p)
			return 1;
	return 0;
}

static void put_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf);
static void reserve_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf);

/* A grant of p's covers one more fragment of len bytes: used. */
static int
grant_take(struct net_peer *p, size_t len)
{
	if (p->grant_count == 0 || len > p->grant_size ||
	    uv_now(&p->n->loop) - p->grant_at >= NET_GRANT_MS)
		return 0;
	p->grant_count--;
	return 1;
}

/* Sends fragment i to p: the PUT when room is granted there (or p knows
 * no RESERVE), else a RESERVE first (reserve_done sends the PUT). 0 when
 * a request went (counted in outstanding), -errno. */
static int
put_send(struct store_op *o, int i, struct net_peer *p)
{
	struct net_req *r = &o->rsv[i];
	int rc;

	if (p->no_reserve || grant_take(p, o->frag_len)) {
		rc = net__req_send(p, &o->req[i]);
		r = &o->req[i];
	} else {
		memset(r, 0, sizeof *r);
		r->msg.type = NET_RESERVE;
		r->msg.rsv_size = (uint32_t)o->frag_len;
		r->msg.rsv_count = NET_RESERVE_COUNT;
		if (p->n->conf.have_bind) {
			r->msg.bind_node = p->n->conf.bind_node;
			r->msg.bind_sig = p->n->conf.bind_sig;
		}
		r->cb = reserve_done;
		r->arg = o;
		r->idx = i;
		rc = net__req_send(p, r);
	}
	if (rc == 0) {
		o->holder[i] = p;
		o->outstanding++;
		o->refusals[i] = p->refusals;
		o->cur[i] = r;
		o->sent_at[i] = uv_now(&p->n->loop);
	}
	return rc;
}

/* The best peer for fragment i: placeable, not tried for this block,
 * within the placement rules beside the block's other holders (i's own
 * holder left out: it is the one being replaced). */
static struct net_peer *
spare_for(struct net *n, struct store_op *o, int i)
{
	struct net_peer *best = NULL, *was = o->holder[i];

	if (o->ntried >= o->cap)
		return NULL;
	o->holder[i] = NULL;
	for (struct net_peer *p = n->peers; p; p = p->next)
		if (net__peer_placeable(p) && !was_tried(o, p) &&
		    net__peer_fits(o->holder, o->total, p, o->unvetted_max) &&
		    (!best || net__peer_better(p, best)))
			best = p;
	o->holder[i] = was;
	return best;
}

/* How many of the block's fragments p is asked to hold now. */
static int
held_by(const struct store_op *o, const struct net_peer *p)
{
	int c = 0;

	for (int j = 0; j < o->total; j++)
		c += o->holder[j] == p;
	return c;
}

/* Where fragment i may be doubled up (see above) when no spare takes
 * it: a holder of one other fragment of the block that is usable and not
 * lagging; one that has acknowledged first, then the one given fewest
 * doubles (always the same one would make its link the bottleneck);
 * NULL when the block may double no more. */
static struct net_peer *
double_for(struct net *n, struct store_op *o, int i)
{
	struct net_peer *best = NULL, *was = o->holder[i];
	int best_acked = 0;

	if (__builtin_popcount(o->doubled & ~(1u << i)) >= n->m - 1)
		return NULL;
	o->holder[i] = NULL;
	for (int j = 0; j < o->total; j++) {
		struct net_peer *p = o->holder[j];
		if (j == i || !p || p == was || !net__peer_usable(p) ||
		    net__peer_lagging(p) || held_by(o, p) != 1 ||
		    !net__peer_fits_double(o->holder, o->total, p,
		    o->unvetted_max))
			continue;
		if (!best || o->acked[j] > best_acked ||
		    (o->acked[j] == best_acked && (p->doubles < best->doubles ||
		    (p->doubles == best->doubles &&
		    net__peer_better(p, best))))) {
			best = p;
			best_acked = o->acked[j];
		}
	}
	o->holder[i] = was;
	return best;
}

/* Sends fragment i to the best untried online peer that the placement
 * rules allow beside the block's other holders; 0 or -EIO. */
static int
put_next(struct net *n, struct store_op *o, int i)
{
	for (;;) {
		struct net_peer *best = spare_for(n, o, i);
		if (!best)
			return -EIO;
		o->tried[o->ntried++] = best;
		if (put_send(o, i, best) == 0)
			return 0;
	}
}

/* Fragment i's holder did not take it: forgotten, i sent elsewhere. */
static void
put_again(struct net *n, struct store_op *o, int i)
{
	o->holder[i] = NULL;
	o->doubled &= ~(1u << i);
	put_next(n, o, i);
}

static void
store_finish(struct net *n, struct store_op *o)
{
	int rc = o->nacked == o->total ? 0 : o->refused ? -EDQUOT : -EIO;

	if (rc < 0) {
		char name[17];
		net__blk_name(name, o->id);
		log_error("block %s: only %d of %d fragments placed%s", name,
		    o->nacked, o->total, o->refused ? " (suppliers refuse "
		    "our data)" : "");
	}
	for (int i = 0; i < o->total; i++)
		if (o->acked[i])
			memcpy(o->pk[i], o->holder[i]->pk, CR_PK_BYTES);
	free(o->tried);
	o->tried = NULL;
	if (o->lag) {
		uv_close((uv_handle_t *)o->lag, net__timer_free);
		o->lag = NULL;
	}
	net__op_done(n, &o->op, rc);
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* How long a fragment may go unacknowledged before it is a laggard's;
 * UINT64_MAX while fewer than half of the block's are in. */
static uint64_t
lag_after(const struct store_op *o)
{
	uint64_t t[CR_EC_MAX], l;
	int nt = 0;

	for (int i = 0; i < o->total; i++)
		if (o->acked[i])
			t[nt++] = o->took[i];
	if (nt == 0 || 2 * nt < o->total)
		return UINT64_MAX;
	qsort(t, (size_t)nt, sizeof *t, u64_cmp);
	l = LAG_FACTOR * t[nt / 2];
	return l < LAG_FLOOR_MS ? LAG_FLOOR_MS : l;
}

static void on_lag(uv_timer_t *t);

/* Sends fragment i to p, a holder of another of the block's (double_for);
 * where that fails, to a spare as put_next would. */
static void
put_double(struct net *n, struct store_op *o, int i, struct net_peer *p)
{
	o->doubled |= 1u << i;
	if (put_send(o, i, p) == 0) {
		p->doubles++;
		return;
	}
	put_again(n, o, i);
}

static void
lag_arm(struct net *n, struct store_op *o)
{
	uint64_t after = lag_after(o), now = uv_now(&n->loop),
	    due = UINT64_MAX;

	if (!o->lag || after == UINT64_MAX)
		return;
	for (int i = 0; i < o->total; i++)
		if (o->cur[i] && !(o->moved & 1u << i) &&
		    o->sent_at[i] + after < due)
			due = o->sent_at[i] + after;
	if (due == UINT64_MAX)
		uv_timer_stop(o->lag);
	else
		uv_timer_start(o->lag, on_lag, due > now ? due - now : 0, 0);
}

static void
on_lag(uv_timer_t *t)
{
	struct store_op *o = t->data;
	struct net *n = container_of(t->loop, struct net, loop);
	uint64_t now = uv_now(&n->loop), after = lag_after(o);

	for (int i = 0; i < o->total && after != UINT64_MAX; i++) {
		struct net_peer *lag = o->holder[i], *sp, *dbl;
		char name[17];

		if (!o->cur[i] || o->moved & 1u << i ||
		    now - o->sent_at[i] < after)
			continue;
		o->moved |= 1u << i;
		sp = spare_for(n, o, i);
		dbl = sp ? NULL : double_for(n, o, i);
		if (!sp && !dbl)
			continue;	/* nowhere else: it is waited for */
		net__blk_name(name, o->id);
		log_info("supplier %s: fragment %d of block %s unacknowledged "
		    "after %llu ms (the others took up to %llu ms each): "
		    "%s %s instead", lag->addr, i, name,
		    (unsigned long long)(now - o->sent_at[i]),
		    (unsigned long long)(after / LAG_FACTOR),
		    sp ? "sent to" : "no spare: doubled up on",
		    sp ? sp->addr : dbl->addr);
		/* What it stores meanwhile is an orphan: the sweep's. */
		net__req_cancel(o->cur[i]);
		o->cur[i] = NULL;
		o->outstanding--;
		o->holder[i] = NULL;
		o->doubled &= ~(1u << i);
		lag->lags++;
		lag->lagged_at = now;
		if (sp)
			put_next(n, o, i);	/* sp first */
		else
			put_double(n, o, i, dbl);
	}
	if (o->outstanding == 0)
		store_finish(n, o);
	else
		lag_arm(n, o);
}

static void
put_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	struct store_op *o = r->arg;
	struct net_peer *p = r->p;
	struct net *n = p->n;
	int i = r->idx;

	o->outstanding--;
	o->cur[i] = NULL;
	if (rc == 0) {
		o->acked[i] = 1;
		o->nacked++;
		o->took[i] = uv_now(&n->loop) - o->sent_at[i];
		if (o->refusals[i] == p->refusals)
			p->refusal[0] = '\0';	/* takes our data again */
	} else {
		char name[17], why[LOG_PEER_TEXT_MAX + 1];
		net__blk_name(name, o->id);
		if (net__is_refusal(rc) && m) {
			net__peer_refused(p, rc, m);
			o->refused++;
		}
		if (m && m->type == NET_ERR)
			log_warn("supplier %s: fragment %d of block %s "
			    "refused: %s", p->addr, i, name,
			    log_peer_text(why, sizeof why, m->errmsg,
			    m->errmsg_len));
		else
			log_warn("supplier %s: fragment %d of block %s: %s",
			    p->addr, i, name, strerror(-rc));
		put_again(n, o, i);
	}
	if (o->outstanding == 0)
		store_finish(n, o);
	else
		lag_arm(n, o);
}

static void
reserve_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	struct store_op *o = r->arg;
	struct net_peer *p = r->p;
	struct net *n = p->n;
	int i = r->idx;

	o->outstanding--;
	o->cur[i] = NULL;
	if (rc == 0) {
		p->rsv_known = 1;
		if (p->grant_size != r->msg.rsv_size ||
		    uv_now(&n->loop) - p->grant_at >= NET_GRANT_MS)
			p->grant_count = 0;
		p->grant_size = r->msg.rsv_size;
		p->grant_count += m->rsv_count;
		p->grant_at = uv_now(&n->loop);
		if (o->refusals[i] == p->refusals)
			p->refusal[0] = '\0';
		p->avail = m->rsv_left;
		if (grant_take(p, o->frag_len) &&
		    net__req_send(p, &o->req[i]) == 0) {
			o->outstanding++;
			o->cur[i] = &o->req[i];	/* sent_at: from the RESERVE */
			return;
		}
	} else if (net__is_refusal(rc) && m) {
		net__peer_refused(p, rc, m);
		o->refused++;
	} else if (!m && !p->rsv_known) {
		/* Dropped before any answer to a RESERVE: most likely a
		 * supplier that predates it (net/internal.h). */
		p->no_reserve = 1;
		log_info("supplier %s: no reservations (an older supplier?): "
		    "plain uploads", p->addr);
	}
	put_again(n, o, i);
	if (o->outstanding == 0)
		store_finish(n, o);
}

/* Fragment i, whose only candidate p lags: doubled up at once rather
 * than waited for (p's lag is not renewed by this, so it is tried again
 * once NET_LAG_MS is over), else sent to p all the same. */
static void
put_laggard(struct net *n, struct store_op *o, int i, struct net_peer *p)
{
	struct net_peer *dbl = double_for(n, o, i);
	char name[17];

	if (dbl) {
		net__blk_name(name, o->id);
		log_debug("supplier %s lags: fragment %d of block %s doubled "
		    "up on %s", p->addr, i, name, dbl->addr);
		p->lags++;
		put_double(n, o, i, dbl);
	} else if (put_send(o, i, p) < 0) {
		put_next(n, o, i);
	}
}

static void
store_start(struct net *n, struct net_op *op)
{
	struct store_op *o = (struct store_op *)op;
	struct net_peer *cand[256], *laggard[CR_EC_MAX] = { 0 };
	int nc = 0, nu = 0, w, start;

	for (struct net_peer *p = n->peers; p && nc < 256; p = p->next) {
		nu += net__peer_usable(p);
		if (net__peer_placeable(p))
			cand[nc++] = p;
	}
	if (nc < o->total)
		/* Enough suppliers online but not enough that take our
		 * data: say so, that is not something waiting cures. */
		return net__op_done(n, op, nu >= o->total ? -EDQUOT : -EAGAIN);
	o->cap = n->npeers + 1;
	if (!(o->tried = calloc(o->cap, sizeof *o->tried)))
		return net__op_done(n, op, -ENOMEM);
	if ((o->lag = malloc(sizeof *o->lag))) {
		uv_timer_init(&n->loop, o->lag);
		o->lag->data = o;
	}			/* without: laggards are waited for */
	/* Insertion sort (few peers), best first. */
	for (int i = 1; i < nc; i++)
		for (int j = i; j > 0 && net__peer_better(cand[j], cand[j - 1]); j--) {
			struct net_peer *t = cand[j];
			cand[j] = cand[j - 1];
			cand[j - 1] = t;
		}
	o->unvetted_max = net__unvetted_max_now(n, o->total);
	/* Rotate within the best few so equal suppliers share the load;
	 * the placement rules may reach past them. Those that lagged lately
	 * (sorted last) stay out of the rotation while enough others can
	 * take the block. */
	w = nc < 2 * o->total ? nc : 2 * o->total;
	for (int i = 0, fresh = 0; i < nc; i++)
		if ((fresh += !net__peer_lagging(cand[i])) >= o->total &&
		    i == nc - 1 && fresh < w)
			w = fresh;
	start = (int)(n->rr++ % (unsigned)w);
	for (int i = 0; i < o->total; i++) {
		struct net_peer *p = NULL;
		int lan = 0;
		for (int t = 0; t < nc && !p; t++) {
			struct net_peer *q = cand[t < w ? (start + t) % w : t];
			if (was_tried(o, q))
				continue;
			if (net__peer_fits(o->holder, o->total, q,
			    o->unvetted_max))
				p = q;
			else
				lan |= net__lan_blocked(o->holder, o->total, q);
		}
		o->req[i].msg.type = NET_PUT;
		memcpy(o->req[i].fragid, o->id, CR_ID_BYTES);
		o->req[i].fragid[CR_ID_BYTES] = (unsigned char)i;
		o->req[i].msg.fragid = o->req[i].fragid;
		o->req[i].msg.hash = o->hash[i];
		o->req[i].msg.data = o->frags[i];
		o->req[i].msg.data_len = o->frag_len;
		o->req[i].lend = o->lend ? o->lend[i] : NULL;
		o->req[i].cb = put_done;
		o->req[i].arg = o;
		o->req[i].idx = i;
		if (!p) {
			char name[17];
			net__blk_name(name, o->id);
			log_warn("block %s: no supplier for fragment %d within "
			    "the placement rules (one per address block, "
			    "few new suppliers)%s", name, i, lan ? "; suppliers "
			    "on one private LAN share a block: a network of "
			    "one LAN needs --lan" : "");
			continue;
		}
		o->tried[o->ntried++] = p;
		/* Only a laggard left for it: placed after the others,
		 * so that it may double up on one of them. */
		if (net__peer_lagging(p)) {
			laggard[i] = p;
			continue;
		}
		if (put_send(o, i, p) < 0)
			put_next(n, o, i);
	}
	for (int i = 0; i < o->total; i++)
		if (laggard[i])
			put_laggard(n, o, i, laggard[i]);
	if (o->outstanding == 0)
		store_finish(n, o);
}

int
net_block_store(struct net *n, const void *plain, size_t len,
    const unsigned char datakey[CR_KEY_BYTES], struct store_block *out)
{
	unsigned char key[CR_KEY_BYTES];
	int rc;

	cr_block_key(key, plain, len, datakey);
	rc = net_block_store_keyed(n, plain, len, key, out);
	sodium_memzero(key, sizeof key);
	return rc;
}

int
net_block_store_keyed(struct net *n, const void *plain, size_t len,
    const unsigned char key[CR_KEY_BYTES], struct store_block *out)
{
	return net_block_store_fmt(n, plain, len, key, CR_SEAL_CHUNKED, out);
}

/* Lends each of the total fragments (net_lend): one reference each,
 * the caller's, freeing the fragment when the last goes. -ENOMEM, and
 * nothing lent, when out of memory. */
static int
frags_lend(unsigned char *const *frags, int total, struct net_lend **lend)
{
	for (int i = 0; i < total; i++)
		if (!(lend[i] = net_lend_new(frags[i], cr_ec_frag_free))) {
			while (i-- > 0)
				free(lend[i]);
			return -ENOMEM;
		}
	return 0;
}

int
net_block_store_fmt(struct net *n, const void *plain, size_t len,
    const unsigned char key[CR_KEY_BYTES], int fmt, struct store_block *out)
{
	struct store_op o = { .op.start = store_start };
	unsigned char *sealed, *frags[CR_EC_MAX];
	struct net_lend *lend[CR_EC_MAX];
	unsigned char id[CR_ID_BYTES];
	struct store_block b;
	size_t frag_len;
	uint64_t slen = cr_sealed_len(fmt, len);
	int rc, total = n->k + n->m;

	if (slen == 0)
		return -ENOTSUP;
	if (slen > UINT32_MAX)
		return -EFBIG;
	if (!(sealed = malloc(slen)))
		return -ENOMEM;
	memset(&b, 0, sizeof b);
	memcpy(b.key, key, CR_KEY_BYTES);
	cr_block_seal_fmt(fmt, sealed, b.key, plain, len);
	cr_block_id(id, b.key);
	rc = cr_ec_encode(n->conf.ec, sealed, slen, frags, &frag_len);
	free(sealed);
	if (rc < 0)
		goto out;
	if (frag_len + net_msg_data_offset(NET_PUT) + CR_STREAM_ABYTES >
	    NET_FRAME_MAX) {
		rc = -EFBIG;
		goto out_frags;
	}
	memcpy(b.id, id, CR_ID_BYTES);
	b.plain_len = (uint32_t)len;
	b.frag_len = (uint32_t)frag_len;
	b.k = (uint8_t)n->k;
	b.m = (uint8_t)n->m;
	b.seal = (uint8_t)fmt;
	for (int i = 0; i < total; i++)
		cr_frag_tag(b.frag_hash[i], b.key, n->conf.ec, i, frags[i],
		    frag_len);
	o.total = total;
	o.frags = frags;
	if (frags_lend(frags, total, lend) == 0)
		o.lend = lend;
	o.frag_len = frag_len;
	o.id = id;
	o.hash = (const unsigned char (*)[CR_HASH_BYTES])b.frag_hash;
	/* On failure the fragments already acknowledged stay: with
	 * convergent ids they may be the live fragments of an identical
	 * block this owner stored before, which only the caller's metadata
	 * knows about. Orphans are the garbage collector's business. */
	if ((rc = net__op_run(n, &o.op)) < 0)
		goto out_frags;
	memcpy(b.peer, o.pk, sizeof o.pk);
	for (int i = 0; i < total; i++)
		net__audit_fill(n, &b, i, frags[i], 0);
	*out = b;
out_frags:
	if (o.lend)		/* a PUT still queued frees its own */
		for (int i = 0; i < total; i++)
			net_lend_put(lend[i]);
	else
		cr_ec_encode_free(n->conf.ec, frags);
out:
	sodium_memzero(&b, sizeof b);
	return rc;
}

