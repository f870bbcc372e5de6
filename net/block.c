/* net/block.c - block upload, fetch, repair and delete (where fragments
 * may go: net/place.c). Sealing, encoding, decoding and opening run in
 * the calling thread (a worker, never the loop); the loop only moves
 * fragments and checks their hashes. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/internal.h"
#include "util.h"

/* Milliseconds of round trip a parity fragment counts extra when choosing
 * which k fragments of a block to fetch (see fetch_start). */
#define PARITY_PENALTY_MS	2.0

/* Hedged fetches: a GET counts as late (and one more supplier is asked)
 * once it has waited as long as its supplier's 95th percentile of recent
 * answers, never less than the floor (on loopback a fragment comes in a
 * few ms: below the floor, scheduling noise would look like lateness).
 * A supplier with too few recent answers to learn from gets twice the
 * slowest percentile of the block's other holders, or the default when
 * none of them is known either. */
#define HEDGE_FLOOR_MS		20
#define HEDGE_DEFAULT_MS	100

/* close callback of the timers block.c allocates per operation */
static void
hedge_free(uv_handle_t *h)
{
	free(h);
}

static void
blk_name(char out[17], const unsigned char *id)
{
	hex_encode(out, id, 8);
}

/* ==== store ============================================================= */

struct store_op {
	struct net_op op;
	int total;
	unsigned char *const *frags;
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

static void
store_finish(struct net *n, struct store_op *o)
{
	int rc = o->nacked == o->total ? 0 : o->refused ? -EDQUOT : -EIO;

	if (rc < 0) {
		char name[17];
		blk_name(name, o->id);
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
		uv_close((uv_handle_t *)o->lag, hedge_free);
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
		struct net_peer *lag = o->holder[i], *sp;
		char name[17];

		if (!o->cur[i] || o->moved & 1u << i ||
		    now - o->sent_at[i] < after)
			continue;
		o->moved |= 1u << i;
		if (!(sp = spare_for(n, o, i)))
			continue;	/* nowhere else: it is waited for */
		blk_name(name, o->id);
		log_info("supplier %s: fragment %d of block %s unacknowledged "
		    "after %llu ms (the others took up to %llu ms each): "
		    "sent to %s instead", lag->addr, i, name,
		    (unsigned long long)(now - o->sent_at[i]),
		    (unsigned long long)(after / LAG_FACTOR), sp->addr);
		/* What it stores meanwhile is an orphan: the sweep's. */
		net__req_cancel(o->cur[i]);
		o->cur[i] = NULL;
		o->outstanding--;
		o->holder[i] = NULL;
		lag->lags++;
		lag->lagged_at = now;
		put_next(n, o, i);	/* sp first */
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
		blk_name(name, o->id);
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
		o->holder[i] = NULL;
		put_next(n, o, i);
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
	o->holder[i] = NULL;
	put_next(n, o, i);
	if (o->outstanding == 0)
		store_finish(n, o);
}

static void
store_start(struct net *n, struct net_op *op)
{
	struct store_op *o = (struct store_op *)op;
	struct net_peer *cand[256];
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
		for (int t = 0; t < nc && !p; t++) {
			struct net_peer *q = cand[t < w ? (start + t) % w : t];
			if (!was_tried(o, q) && net__peer_fits(o->holder, o->total,
			    q, o->unvetted_max))
				p = q;
		}
		o->req[i].msg.type = NET_PUT;
		memcpy(o->req[i].fragid, o->id, CR_ID_BYTES);
		o->req[i].fragid[CR_ID_BYTES] = (unsigned char)i;
		o->req[i].msg.fragid = o->req[i].fragid;
		o->req[i].msg.hash = o->hash[i];
		o->req[i].msg.data = o->frags[i];
		o->req[i].msg.data_len = o->frag_len;
		o->req[i].cb = put_done;
		o->req[i].arg = o;
		o->req[i].idx = i;
		if (!p) {
			char name[17];
			blk_name(name, o->id);
			log_warn("block %s: no supplier for fragment %d within "
			    "the placement rules (one per address block, "
			    "few new suppliers)", name, i);
			continue;
		}
		o->tried[o->ntried++] = p;
		if (put_send(o, i, p) < 0)
			put_next(n, o, i);
	}
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

int
net_block_store_fmt(struct net *n, const void *plain, size_t len,
    const unsigned char key[CR_KEY_BYTES], int fmt, struct store_block *out)
{
	struct store_op o = { .op.start = store_start };
	unsigned char *sealed, *frags[CR_EC_MAX];
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
	cr_ec_encode_free(n->conf.ec, frags);
out:
	sodium_memzero(&b, sizeof b);
	return rc;
}

/* ==== fetch ============================================================= */

struct fetch_op {
	struct net_op op;
	const struct store_block *b;
	int k, total;
	int want;			/* good fragments to gather (k, or
					 * all of them to try other sets) */
	uint32_t skip;			/* never asked (being rebuilt) */
	uint32_t retried;		/* failed their check once: asked
					 * again before anyone is blamed */
	uint32_t bad;			/* result: wrong hash or missing */
	uint64_t bytes;			/* result: fragment bytes received */
	struct net_req req[CR_EC_MAX];
	unsigned char *buf[CR_EC_MAX];
	const unsigned char *frag[CR_EC_MAX];
	int order[CR_EC_MAX], norder, next;
	int good, outstanding;
	uint32_t inflight;		/* req[i] sent, not answered */
	uint32_t late;			/* of those, another was asked beside */
	int nlate;
	uint64_t sent_at[CR_EC_MAX];	/* uv_now() ms */
	uv_timer_t *hedge;		/* due at the next late answer */
	char failed[512];
};

static void
fail_note(struct fetch_op *o, const char *addr, const char *why)
{
	size_t l = strlen(o->failed);

	if (l < sizeof o->failed - 1)
		snprintf(o->failed + l, sizeof o->failed - l, "%s%s (%s)",
		    l ? ", " : "", addr, why);
}

static void
note_offline(struct fetch_op *o, const struct net_peer *p,
    const unsigned char *pk)
{
	char name[40];

	if (p) {
		fail_note(o, p->addr, "offline");
		return;
	}
	memcpy(name, "key ", 4);
	hex_encode(name + 4, pk, 8);
	fail_note(o, name, "unknown supplier");
}

static void get_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf);

/* How long a GET to p may wait before it counts as late. */
static uint64_t
hedge_after(const struct fetch_op *o, struct net_peer *p)
{
	double t = net__lat_p95(p);

	if (t < 0) {
		for (int i = 0; i < o->total; i++) {
			struct net_peer *q = o->req[i].p;
			double u;
			if (o->inflight & 1u << i && q != p &&
			    (u = 2 * net__lat_p95(q)) > t)
				t = u;
		}
		if (t < 0 || t > HEDGE_DEFAULT_MS)
			t = HEDGE_DEFAULT_MS;
	}
	return t < HEDGE_FLOOR_MS ? HEDGE_FLOOR_MS : (uint64_t)t + 1;
}

static void on_hedge(uv_timer_t *t);

/* Arms the hedge timer for the first request in flight to become late. */
static void
hedge_arm(struct net *n, struct fetch_op *o)
{
	uint64_t now = uv_now(&n->loop), due = UINT64_MAX;

	if (!o->hedge)
		return;
	for (int i = 0; i < o->total; i++) {
		if (!(o->inflight & 1u << i) || o->late & 1u << i)
			continue;
		uint64_t d = o->sent_at[i] + hedge_after(o, o->req[i].p);
		if (d < due)
			due = d;
	}
	if (due == UINT64_MAX || o->next >= o->norder)
		uv_timer_stop(o->hedge);	/* nobody left to ask */
	else
		uv_timer_start(o->hedge, on_hedge, due > now ? due - now : 0,
		    0);
}

/* The fetch is over: what is still in flight is withdrawn (its answers
 * are swallowed), the timer goes, the caller wakes. */
static void
fetch_finish(struct net *n, struct fetch_op *o, int rc)
{
	for (int i = 0; i < o->total; i++)
		if (o->inflight & 1u << i) {
			net__req_cancel(&o->req[i]);
			o->outstanding--;
		}
	o->inflight = o->late = 0;
	o->nlate = 0;
	if (o->hedge) {
		uv_close((uv_handle_t *)o->hedge, hedge_free);
		o->hedge = NULL;
	}
	net__op_done(n, &o->op, rc);
}

static void
get_more(struct net *n, struct fetch_op *o)
{
	/* Late requests stay in flight (the first good answers win) but
	 * are not counted on: one more supplier is asked for each. */
	while (o->good < o->want &&
	    o->good + o->outstanding - o->nlate < o->want &&
	    o->next < o->norder) {
		int i = o->order[o->next++];
		struct net_peer *p = net__peer_by_pk(n, o->b->peer[i]);
		struct net_req *r = &o->req[i];

		if (!p || !net__peer_up(p)) {
			note_offline(o, p, o->b->peer[i]);
			continue;
		}
		memset(r, 0, sizeof *r);
		r->msg.type = NET_GET;
		memcpy(r->fragid, o->b->id, CR_ID_BYTES);
		r->fragid[CR_ID_BYTES] = (unsigned char)i;
		r->msg.fragid = r->fragid;
		r->cb = get_done;
		r->arg = o;
		r->idx = i;
		if (net__req_send(p, r) == 0) {
			o->outstanding++;
			o->inflight |= 1u << i;
			o->sent_at[i] = uv_now(&n->loop);
		} else {
			fail_note(o, p->addr, "offline");
		}
	}
	if (o->good >= o->want || o->outstanding == 0) {
		if (o->good < o->k) {
			char name[17];
			blk_name(name, o->b->id);
			log_error("block %s: %d of %d fragments: suppliers "
			    "unreachable or failing: %s", name, o->good,
			    o->k, o->failed[0] ? o->failed : "none known");
		}
		fetch_finish(n, o, o->good >= o->k ? 0 : -EIO);
		return;
	}
	hedge_arm(n, o);
}

static void
on_hedge(uv_timer_t *t)
{
	struct fetch_op *o = t->data;
	struct net *n = container_of(t->loop, struct net, loop);
	uint64_t now = uv_now(&n->loop);

	for (int i = 0; i < o->total; i++) {
		struct net_peer *p = o->req[i].p;
		char name[17];

		if (!(o->inflight & 1u << i) || o->late & 1u << i ||
		    now - o->sent_at[i] < hedge_after(o, p))
			continue;
		o->late |= 1u << i;
		o->nlate++;
		p->late++;
		/* What it has taken so far is a floor of its latency: the
		 * next fetch knows it slow without waiting for the answer. */
		net__lat_note(p, (double)(now - o->sent_at[i]));
		blk_name(name, o->b->id);
		log_info("supplier %s: fragment %d of block %s late (%llu ms, "
		    "expected within %llu): asking another supplier", p->addr,
		    i, name, (unsigned long long)(now - o->sent_at[i]),
		    (unsigned long long)hedge_after(o, p));
	}
	get_more(n, o);
}

static void
get_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	struct fetch_op *o = r->arg;
	struct net_peer *p = r->p;
	int i = r->idx;

	o->outstanding--;
	o->inflight &= ~(1u << i);
	if (o->late & 1u << i) {
		o->late &= ~(1u << i);
		o->nlate--;
	}
	if (rc == 0) {
		net__lat_note(p, (double)(uv_hrtime() - r->t0_ns) / 1e6);
		o->bytes += m->data_len;
		if (m->data_len != o->b->frag_len ||
		    cr_frag_check(o->b->frag_hash[i], o->b->key, p->n->conf.ec, i,
		    m->data, m->data_len) != 0) {
			char name[17];
			blk_name(name, o->b->id);
			/* The bulk of GET_OK is not MAC'd on the wire
			 * (net/internal.h): a bit flipped on the way looks
			 * like forgery. Only a second copy as bad as the
			 * first is the supplier's offence. */
			if (!(o->retried & 1u << i)) {
				o->retried |= 1u << i;
				log_info("supplier %s: fragment %d of block %s "
				    "failed its check; fetching it again",
				    p->addr, i, name);
				if (net__req_send(p, r) == 0) {
					o->outstanding++;
					o->inflight |= 1u << i;
					o->sent_at[i] = uv_now(&p->n->loop);
					hedge_arm(p->n, o);
					return;
				}
				fail_note(o, p->addr, "bad fragment, then "
				    "offline");
			} else {
				log_warn("supplier %s: fragment %d of block %s "
				    "has a wrong hash twice: dropped", p->addr,
				    i, name);
				fail_note(o, p->addr, "bad fragment");
				o->bad |= 1u << i;
				net__peer_note(p, NET__NOTE_BAD_FRAGMENT);
			}
		} else {
			o->buf[i] = *buf;
			*buf = NULL;
			o->frag[i] = m->data;
			o->good++;
		}
	} else {
		if (rc == -ENOENT)	/* lost by the supplier: rebuild it */
			o->bad |= 1u << i;
		fail_note(o, p->addr, strerror(-rc));
	}
	get_more(p->n, o);
}

static void
fetch_start(struct net *n, struct net_op *op)
{
	struct fetch_op *o = (struct fetch_op *)op;
	double rtt[CR_EC_MAX], typical[CR_EC_MAX], med = 0;
	int nt = 0;

	/* Connected holders, quickest first (parity ones a little later);
	 * offline ones are noted now. Fragments marked lost and DEAD holders
	 * come last, only asked when the others cannot make k (the hash
	 * check still guards them). Quickest: the median of a supplier's
	 * recent answers when known, else its ping. */
	o->norder = o->next = 0;
	o->inflight = o->late = 0;
	o->nlate = 0;
	if ((o->hedge = malloc(sizeof *o->hedge))) {
		uv_timer_init(&n->loop, o->hedge);
		o->hedge->data = o;
	}			/* without: no hedging, the fetch still runs */
	for (int i = 0; i < o->total; i++) {
		struct net_peer *p = net__peer_by_pk(n, o->b->peer[i]);
		double t;
		if (p && (t = net__lat_expect(p)) >= 0) {
			int j = nt++;
			for (; j > 0 && typical[j - 1] > t; j--)
				typical[j] = typical[j - 1];
			typical[j] = t;
		}
	}
	if (nt)
		med = typical[nt / 2];
	for (int i = 0; i < o->total; i++) {
		struct net_peer *p = net__peer_by_pk(n, o->b->peer[i]);
		double t;
		/* Skipped, or settled in an earlier round. */
		if (o->skip & (1u << i) || o->frag[i] || o->bad & (1u << i))
			continue;
		if (!p || !net__peer_up(p)) {
			note_offline(o, p, o->b->peer[i]);
			continue;
		}
		t = net__lat_expect(p);
		rtt[i] = t >= 0 ? t : p->rtt_ms < 0 ? 1e9 : p->rtt_ms;
		/* With the k data fragments the block needs no decoding (their
		 * bytes are joined): worth a slower supplier, up to about
		 * twice the typical answer (a noisy median must not make
		 * every fetch decode). */
		if (i >= o->k)
			rtt[i] += PARITY_PENALTY_MS + med;
		if (o->b->lost[i] || p->state == NET_PEER_DEAD)
			rtt[i] += 1e12;
		int j = o->norder++;
		for (; j > 0 && rtt[o->order[j - 1]] > rtt[i]; j--)
			o->order[j] = o->order[j - 1];
		o->order[j] = i;
	}
	get_more(n, o);
}

/* Sets of k fragments tried when every fragment checks but the block
 * does not open: C(6, 4) = 15 for the default 4+2; wider codes try the
 * first ones only (each try is one decode). */
#define FETCH_SETS_MAX	64

/* Decodes and opens b from the k fragments o->frag[set[0..k)]. */
static int
open_set(struct net *n, const struct fetch_op *o, const int *set,
    unsigned char *sealed, size_t clen, void *plain)
{
	unsigned char *frags[CR_EC_MAX];
	size_t got;
	int rc;

	for (int j = 0; j < o->k; j++)
		frags[j] = (unsigned char *)o->frag[set[j]];
	rc = cr_ec_decode(n->conf.ec, frags, o->k, o->b->frag_len, sealed,
	    clen, &got);
	if (rc == 0 && got != clen)
		rc = -EBADMSG;
	if (rc == 0)
		rc = cr_block_open_fmt(o->b->seal, plain, sealed, clen,
		    o->b->key, o->b->id);
	return rc;
}

/* The fragments gathered passed their checks, yet the block did not
 * decode or open (a record written with another encoder, a fragment
 * whose header lies about its index): before giving up, fetch every
 * other fragment and try other sets of k. Blames no supplier: each
 * fragment it was given is the one its tag names. */
static int
open_other_sets(struct net *n, struct fetch_op *o, unsigned char *sealed,
    size_t clen, void *plain)
{
	int have[CR_EC_MAX], c[CR_EC_MAX], set[CR_EC_MAX];
	int nh = 0, k = o->k, tries = 0, j;

	o->want = o->total;
	(void)net__op_run(n, &o->op);	/* whatever comes is used */
	for (int i = 0; i < o->total; i++)
		if (o->frag[i])
			have[nh++] = i;
	if (nh < k)
		return -EIO;
	for (j = 0; j < k; j++)
		c[j] = j;
	for (;;) {
		for (j = 0; j < k; j++)
			set[j] = have[c[j]];
		if (open_set(n, o, set, sealed, clen, plain) == 0)
			return 0;
		if (++tries >= FETCH_SETS_MAX)
			break;
		/* The next k-subset of have[0..nh) in lexical order. */
		for (j = k - 1; j >= 0 && c[j] == nh - k + j; j--)
			;
		if (j < 0)
			break;
		c[j]++;
		for (int l = j + 1; l < k; l++)
			c[l] = c[l - 1] + 1;
	}
	return -EBADMSG;
}

int
net_block_fetch(struct net *n, const struct store_block *b, void *plain)
{
	return net_block_fetch_report(n, b, plain, NULL);
}

int
net_block_fetch_report(struct net *n, const struct store_block *b,
    void *plain, uint32_t *bad)
{
	struct fetch_op o = { .op.start = fetch_start, .b = b };
	size_t clen = (size_t)cr_sealed_len(b->seal, b->plain_len);
	unsigned char *sealed = NULL;
	int rc, set[CR_EC_MAX], nf = 0;
	char name[17];

	if (bad)
		*bad = 0;
	if (b->k != n->k || b->m != n->m || b->frag_len == 0)
		return -EINVAL;
	if (clen == 0) {
		blk_name(name, b->id);
		log_error("block %s: sealed in format %u, unknown to this "
		    "version", name, b->seal);
		return -ENOTSUP;
	}
	o.k = o.want = b->k;
	o.total = b->k + b->m;
	rc = net__op_run(n, &o.op);
	if (rc < 0)
		goto out;
	for (int i = 0; i < o.total && nf < o.k; i++)
		if (o.frag[i])
			set[nf++] = i;
	if (!(sealed = malloc(clen))) {
		rc = -ENOMEM;
		goto out;
	}
	blk_name(name, b->id);
	if ((rc = open_set(n, &o, set, sealed, clen, plain)) < 0) {
		log_warn("block %s: its fragments check but it does not "
		    "decode or open (%s): trying other sets of fragments",
		    name, strerror(-rc));
		if ((rc = open_other_sets(n, &o, sealed, clen, plain)) == 0)
			log_info("block %s: opened from another set of "
			    "fragments", name);
	}
	if (rc < 0) {
		log_error("block %s: cannot decode or open: %s", name,
		    strerror(-rc));
		rc = -EIO;
	}
out:
	__atomic_add_fetch(&n->fetched_bytes, o.bytes, __ATOMIC_RELAXED);
	if (bad)
		*bad = o.bad;
	free(sealed);
	for (int i = 0; i < CR_EC_MAX; i++)
		free(o.buf[i]);
	return rc;
}

/* ==== repair ============================================================ */

struct repair_op {
	struct net_op op;
	const struct store_block *b;
	int total, nwant;
	int want[CR_EC_MAX];		/* indices to place */
	unsigned char *frag[CR_EC_MAX];	/* by index */
	size_t frag_len;
	struct net_req req[CR_EC_MAX];	/* by index */
	struct net_peer *holder[CR_EC_MAX];
	int acked[CR_EC_MAX];
	struct net_peer **tried;	/* asked in this repair */
	int ntried, cap, outstanding, nacked;
	int unvetted_max;		/* fragments on suppliers not vetted */
	unsigned char pk[CR_EC_MAX][CR_PK_BYTES];	/* result */
};

static int
is_wanted(const struct repair_op *o, int i)
{
	for (int w = 0; w < o->nwant; w++)
		if (o->want[w] == i)
			return 1;
	return 0;
}

/* Holds a fragment of b already (even a lost one), or was asked here. */
static int
repair_excluded(struct repair_op *o, struct net_peer *p)
{
	for (int i = 0; i < o->ntried; i++)
		if (o->tried[i] == p)
			return 1;
	for (int j = 0; j < o->total; j++)
		if (memcmp(o->b->peer[j], p->pk, CR_PK_BYTES) == 0)
			return 1;
	return 0;
}


static void repair_put_done(struct net_req *r, int rc,
    const struct net_msg *m, unsigned char **buf);

/* The holders of b's fragments after this repair: those that stay and
 * those placed here. */
static void
repair_holders(struct net *n, struct repair_op *o,
    struct net_peer *h[CR_EC_MAX])
{
	for (int j = 0; j < o->total; j++)
		h[j] = is_wanted(o, j) ? o->holder[j] :
		    net__peer_by_pk(n, o->b->peer[j]);
}

/* Shares a host with a holder (repair_holders). */
static int
host_taken(struct net_peer *const h[CR_EC_MAX], int total, struct net_peer *c)
{
	for (int j = 0; j < total; j++)
		if (h[j] && net__same_host(h[j], c))
			return 1;
	return 0;
}

/* Sends fragment i to the best candidate: online, new to b, within the
 * placement rules, on a host of its own when there is one. -EAGAIN when
 * none is left. */
static int
repair_next(struct net *n, struct repair_op *o, int i)
{
	struct net_peer *h[CR_EC_MAX];

	for (;;) {
		struct net_peer *best = NULL;
		int best_apart = 0;

		repair_holders(n, o, h);
		for (struct net_peer *p = n->peers; p; p = p->next) {
			if (!net__peer_placeable(p) || !p->have_pk ||
			    repair_excluded(o, p) ||
			    !net__peer_fits(h, o->total, p, o->unvetted_max))
				continue;
			int apart = !host_taken(h, o->total, p);
			if (!best || apart > best_apart ||
			    (apart == best_apart && net__peer_better(p, best))) {
				best = p;
				best_apart = apart;
			}
		}
		if (!best || o->ntried >= o->cap)
			return -EAGAIN;
		o->tried[o->ntried++] = best;
		struct net_req *r = &o->req[i];
		memset(r, 0, sizeof *r);
		r->msg.type = NET_PUT;
		memcpy(r->fragid, o->b->id, CR_ID_BYTES);
		r->fragid[CR_ID_BYTES] = (unsigned char)i;
		r->msg.fragid = r->fragid;
		r->msg.hash = o->b->frag_hash[i];
		r->msg.data = o->frag[i];
		r->msg.data_len = o->frag_len;
		r->cb = repair_put_done;
		r->arg = o;
		r->idx = i;
		if (net__req_send(best, r) == 0) {
			o->holder[i] = best;
			o->outstanding++;
			return 0;
		}
	}
}

static void
repair_finish(struct net *n, struct repair_op *o)
{
	for (int i = 0; i < o->total; i++)
		if (o->acked[i])
			memcpy(o->pk[i], o->holder[i]->pk, CR_PK_BYTES);
	free(o->tried);
	o->tried = NULL;
	net__op_done(n, &o->op, o->nacked);
}

static void
repair_put_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	struct repair_op *o = r->arg;
	struct net_peer *p = r->p;
	struct net *n = p->n;
	int i = r->idx;
	char name[17];

	o->outstanding--;
	if (rc == 0) {
		o->acked[i] = 1;
		o->nacked++;
	} else {
		blk_name(name, o->b->id);
		if (net__is_refusal(rc) && m)
			net__peer_refused(p, rc, m);
		if (rc == -EDQUOT)
			log_warn("supplier %s refuses fragment %d of block %s: "
			    "quota full; trying another", p->addr, i, name);
		else
			log_warn("supplier %s: rebuilt fragment %d of block "
			    "%s: %s; trying another", p->addr, i, name,
			    strerror(-rc));
		o->holder[i] = NULL;
		if (repair_next(n, o, i) < 0)
			log_warn("block %s: no supplier left for fragment %d",
			    name, i);
	}
	if (o->outstanding == 0)
		repair_finish(n, o);
}

static void
repair_start(struct net *n, struct net_op *op)
{
	struct repair_op *o = (struct repair_op *)op;

	o->cap = n->npeers + 1;
	if (!(o->tried = calloc(o->cap, sizeof *o->tried)))
		return net__op_done(n, op, -ENOMEM);
	o->unvetted_max = net__unvetted_max_now(n, o->total);
	for (int w = 0; w < o->nwant; w++)
		if (repair_next(n, o, o->want[w]) < 0) {
			char name[17];
			blk_name(name, o->b->id);
			log_warn("block %s: no online supplier free to take "
			    "fragment %d", name, o->want[w]);
		}
	if (o->outstanding == 0)
		repair_finish(n, o);
}

int
net_block_repair(struct net *n, struct store_block *b, uint32_t missing,
    uint64_t *moved)
{
	struct fetch_op f = { .op.start = fetch_start, .b = b };
	struct repair_op o = { .op.start = repair_start, .b = b };
	unsigned char *src[CR_EC_MAX], *out[CR_EC_MAX] = { 0 };
	uint64_t stored = 0;
	char name[17];
	int rc, total, nsrc = 0, count = 0;

	if (moved)
		*moved = 0;
	if (b->k != n->k || b->m != n->m || b->frag_len == 0)
		return -EINVAL;
	total = b->k + b->m;
	missing &= total >= 32 ? UINT32_MAX : (1u << total) - 1;
	if (!missing)
		return 0;
	blk_name(name, b->id);
	/* The missing ones are not sources, however reachable. */
	f.k = f.want = b->k;
	f.total = total;
	f.skip = missing;
	if ((rc = net__op_run(n, &f.op)) < 0)
		goto out;
	/* Sources found forged or gone: rebuilt as well. */
	for (int i = 0; i < total; i++)
		if (f.bad & (1u << i)) {
			b->lost[i] = 1;
			missing |= 1u << i;
		}
	for (int i = 0; i < total; i++)
		if (f.frag[i])
			src[nsrc++] = (unsigned char *)f.frag[i];
	for (int i = 0; i < total; i++) {
		if (!(missing & (1u << i)))
			continue;
		if (!(out[i] = malloc(b->frag_len))) {
			rc = -ENOMEM;
			goto out;
		}
		rc = cr_ec_reconstruct(n->conf.ec, src, nsrc, b->frag_len, i,
		    out[i]);
		if (rc == 0)
			rc = cr_frag_check(b->frag_hash[i], b->key, n->conf.ec, i,
			    out[i], b->frag_len);
		if (rc < 0) {
			log_error("block %s: cannot rebuild fragment %d: %s",
			    name, i, strerror(-rc));
			continue;
		}
		o.frag[i] = out[i];
		o.want[o.nwant++] = i;
	}
	if (o.nwant == 0) {
		rc = -EIO;
		goto out;
	}
	o.total = total;
	o.frag_len = b->frag_len;
	if ((rc = net__op_run(n, &o.op)) < 0)
		goto out;
	for (int w = 0; w < o.nwant; w++) {
		int i = o.want[w];
		if (!o.acked[i])
			continue;
		memcpy(b->peer[i], o.pk[i], CR_PK_BYTES);
		b->lost[i] = 0;
		/* Fresh nonce numbers: none ever sent to anyone. */
		net__audit_fill(n, b, i, out[i], b->audit_end[i]);
		stored += b->frag_len;
		count++;
	}
	rc = count ? count : -EAGAIN;
	if (count)
		log_debug("block %s: %d fragment%s rebuilt", name, count,
		    count == 1 ? "" : "s");
out:
	if (moved)
		*moved = f.bytes + stored;
	for (int i = 0; i < CR_EC_MAX; i++) {
		free(f.buf[i]);
		free(out[i]);
	}
	return rc;
}

/* ==== delete every fragment of a block ================================== */

struct block_delete_op {
	struct net_op op;
	const struct store_block *b;
};

static void
del_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	free(r);
}

static void
block_delete_start(struct net *n, struct net_op *op)
{
	const struct store_block *b = ((struct block_delete_op *)op)->b;
	static const unsigned char zero[CR_PK_BYTES];

	for (int i = 0; i < b->k + b->m && i < CR_EC_MAX; i++) {
		struct net_peer *p;
		struct net_req *r;

		if (memcmp(b->peer[i], zero, CR_PK_BYTES) == 0)
			continue;
		p = net__peer_by_pk(n, b->peer[i]);
		if (!p || !net__peer_usable(p) || !(r = calloc(1, sizeof *r)))
			continue;
		r->msg.type = NET_DEL;
		memcpy(r->fragid, b->id, CR_ID_BYTES);
		r->fragid[CR_ID_BYTES] = (unsigned char)i;
		r->msg.fragid = r->fragid;
		r->cb = del_done;
		if (net__req_send(p, r) < 0)
			free(r);
	}
	net__op_done(n, op, 0);
}

int
net_block_delete(struct net *n, const struct store_block *b)
{
	struct block_delete_op o = { .op.start = block_delete_start,
	    .b = b };

	return net__op_run(n, &o.op);
}
