/* net/block.c - block fetch, repair and delete (uploads: net/upload.c;
 * where fragments may go: net/place.c). Decoding and opening run in the
 * calling thread (a worker, never the loop); the loop only moves
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

/* close callback of the timers an operation allocates for itself */
void
net__timer_free(uv_handle_t *h)
{
	free(h);
}

void
net__blk_name(char out[17], const unsigned char *id)
{
	hex_encode(out, id, 8);
}

/* ==== fetch ============================================================= */

struct fetch_op {
	struct net_op op;
	const struct store_block *b;
	int k, total;
	int want;			/* good fragments to gather (k, or
					 * all of them to try other sets) */
	uint32_t skip;			/* never asked (being rebuilt) */
	uint32_t last_resort;		/* of skip, those asked after all
					 * when their holder is DEAD: a
					 * repair's sources of last resort */
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
	int copying;			/* net_block_repair's copies: not
					 * getting them is no error */
	int trust_data;			/* data fragments taken unchecked:
					 * every one in while it is set */
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
		uv_close((uv_handle_t *)o->hedge, net__timer_free);
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
		if (o->good < o->k && !o->copying) {
			char name[17];
			net__blk_name(name, o->b->id);
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
		net__blk_name(name, o->b->id);
		log_info("supplier %s: fragment %d of block %s late (%llu ms, "
		    "expected within %llu): asking another supplier", p->addr,
		    i, name, (unsigned long long)(now - o->sent_at[i]),
		    (unsigned long long)hedge_after(o, p));
	}
	get_more(n, o);
}

/* Whether fragment i as received may be kept. With trust_data, a data
 * fragment of a block sealed in chunks is kept unchecked: when all k
 * data fragments come, each chunk's own tag vouches for its bytes as the
 * block opens (open_joined), which takes a Poly1305 pass over every byte
 * read off the net loop. Only a failing chunk, or parity among the k
 * (decoding reads the fragments' headers), costs their tags, checked on
 * the reader's thread (check_unchecked). Damage outside the chunks (a
 * fragment's header or padding) is then left to audits, rebuilds and
 * degraded reads, which check the tags. */
static int
frag_acceptable(struct net *n, struct fetch_op *o, int i,
    const struct net_msg *m)
{
	if (m->data_len != o->b->frag_len)
		return 0;
	if (o->trust_data && i < o->k)
		return 1;
	__atomic_add_fetch(&n->tag_checks, 1, __ATOMIC_RELAXED);
	return cr_frag_check(o->b->frag_hash[i], o->b->key, n->conf.ec, i,
	    m->data, m->data_len) == 0;
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
		if (!frag_acceptable(p->n, o, i, m)) {
			char name[17];
			net__blk_name(name, o->b->id);
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
		int resort = o->last_resort & (1u << i) && p &&
		    p->state == NET_PEER_DEAD && !o->b->lost[i];
		double t;
		/* Skipped, or settled in an earlier round. */
		if ((o->skip & (1u << i) && !resort) || o->frag[i] ||
		    o->bad & (1u << i))
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
		/* A supplier holding two of them (doubled up, no spare
		 * at upload) sends both down one link: the second one
		 * waits for the first. */
		for (int j = 0; j < i; j++)
			if (!(o->skip & 1u << j) &&
			    memcmp(o->b->peer[j], o->b->peer[i],
			    CR_PK_BYTES) == 0) {
				rtt[i] += t >= 0 ? t : med;
				break;
			}
		if (o->b->lost[i] || p->state == NET_PEER_DEAD)
			rtt[i] += 1e12;
		/* Dropped after a failed check (check_unchecked): asked
		 * again first, so a second bad copy is blamed as one
		 * retried in get_done is. */
		if (o->retried & 1u << i)
			rtt[i] = -1;
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

/* With all k data fragments in (taken unchecked), the sealed block is
 * their payloads joined (the code is systematic) and opens only if every
 * chunk's tag holds: 0. -EAGAIN when the set is not the k data fragments
 * (or the code puts metadata in them), -EBADMSG when a chunk failed. */
static int
open_joined(struct net *n, const struct fetch_op *o, const int *set,
    unsigned char *sealed, size_t clen, void *plain)
{
	size_t hdr, pay;

	if (set[o->k - 1] != o->k - 1 ||	/* set[] ascends */
	    cr_ec_data_layout(n->conf.ec, clen, o->b->frag_len, &hdr,
	    &pay) < 0)
		return -EAGAIN;
	for (int j = 0; j < o->k && (size_t)j * pay < clen; j++) {
		size_t off = (size_t)j * pay;

		memcpy(sealed + off, o->frag[j] + hdr,
		    clen - off < pay ? clen - off : pay);
	}
	return cr_block_open_fmt(o->b->seal, plain, sealed, clen, o->b->key,
	    o->b->id) == 0 ? 0 : -EBADMSG;
}

/* Checks the fragments taken unchecked, as get_done would have: one that
 * fails is dropped and marked retried, so the next round asks its
 * supplier again first and blames it for a second bad copy. From here
 * on every fragment is checked as it comes. How many were dropped. */
static int
check_unchecked(struct net *n, struct fetch_op *o, const char *name)
{
	int dropped = 0;

	for (int i = 0; i < o->k; i++) {
		if (!o->frag[i])
			continue;
		__atomic_add_fetch(&n->tag_checks, 1, __ATOMIC_RELAXED);
		if (cr_frag_check(o->b->frag_hash[i], o->b->key, n->conf.ec,
		    i, o->frag[i], o->b->frag_len) == 0)
			continue;
		/* As in get_done: a bit flipped on the way looks the same;
		 * only a second bad copy is the supplier's offence. */
		log_info("block %s: fragment %d failed its check; fetching "
		    "it again", name, i);
		free(o->buf[i]);
		o->buf[i] = NULL;
		o->frag[i] = NULL;
		o->good--;
		o->retried |= 1u << i;
		dropped++;
	}
	o->trust_data = 0;
	return dropped;
}

/* The first k fragments in, by index, into set[]. */
static void
pick_set(const struct fetch_op *o, int *set)
{
	for (int i = 0, nf = 0; i < o->total && nf < o->k; i++)
		if (o->frag[i])
			set[nf++] = i;
}

int
net_block_fetch_report(struct net *n, const struct store_block *b,
    void *plain, uint32_t *bad)
{
	/* A block sealed in chunks takes its data fragments unchecked
	 * (frag_acceptable). */
	struct fetch_op o = { .op.start = fetch_start, .b = b,
	    .trust_data = b->seal == CR_SEAL_CHUNKED };
	size_t clen = (size_t)cr_sealed_len(b->seal, b->plain_len);
	unsigned char *sealed = NULL;
	int rc, set[CR_EC_MAX];
	char name[17];

	if (bad)
		*bad = 0;
	if (b->k != n->k || b->m != n->m || b->frag_len == 0)
		return -EINVAL;
	net__blk_name(name, b->id);
	if (clen == 0) {
		log_error("block %s: sealed in format %u, unknown to this "
		    "version", name, b->seal);
		return -ENOTSUP;
	}
	o.k = o.want = b->k;
	o.total = b->k + b->m;
	rc = net__op_run(n, &o.op);
	if (rc < 0)
		goto out;
	pick_set(&o, set);
	if (!(sealed = malloc(clen))) {
		rc = -ENOMEM;
		goto out;
	}
	if (o.trust_data) {
		if ((rc = open_joined(n, &o, set, sealed, clen, plain)) == 0)
			goto out;
		/* A chunk failed, or parity came: liberasurecode reads
		 * the headers of what it decodes, so all are checked. */
		if (check_unchecked(n, &o, name) > 0) {
			if ((rc = net__op_run(n, &o.op)) < 0)
				goto out;
			pick_set(&o, set);
		}
	}
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
		net__blk_name(name, o->b->id);
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
			net__blk_name(name, o->b->id);
			log_warn("block %s: no online supplier free to take "
			    "fragment %d", name, o->want[w]);
		}
	if (o->outstanding == 0)
		repair_finish(n, o);
}

/* Fetches the doubled-up fragments among `missing` from where they are
 * (one fragment each instead of k), checked against their hashes, into
 * out[]; returns the ones it got. */
static uint32_t
copy_doubled(struct net *n, struct store_block *b, int total,
    uint32_t missing, unsigned char **out, uint64_t *fetched)
{
	struct fetch_op c = { .op.start = fetch_start, .b = b, .copying = 1 };
	uint32_t lost = 0, dbl, got = 0;

	for (int i = 0; i < total; i++)
		lost |= (uint32_t)(b->lost[i] != 0) << i;
	if (!(dbl = net_place_doubled(total, b->peer, ~missing,
	    missing & ~lost)))
		return 0;
	c.k = c.want = __builtin_popcount(dbl);
	c.total = total;
	c.skip = ~dbl;
	net__op_run(n, &c.op);	/* what it did not get is rebuilt */
	*fetched += c.bytes;
	for (int i = 0; i < total; i++) {
		if (c.frag[i] && (out[i] = malloc(b->frag_len))) {
			memcpy(out[i], c.frag[i], b->frag_len);
			got |= 1u << i;
		}
		free(c.buf[i]);
	}
	return got;
}

int
net_block_repair(struct net *n, struct store_block *b, uint32_t missing,
    uint64_t *moved)
{
	struct fetch_op f = { .op.start = fetch_start, .b = b };
	struct repair_op o = { .op.start = repair_start, .b = b };
	unsigned char *src[CR_EC_MAX], *out[CR_EC_MAX] = { 0 };
	uint64_t stored = 0, fetched = 0;
	uint32_t copied;
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
	net__blk_name(name, b->id);
	copied = copy_doubled(n, b, total, missing, out, &fetched);
	for (int i = 0; i < total; i++)
		if (copied & 1u << i) {
			o.frag[i] = out[i];
			o.want[o.nwant++] = i;
		}
	if (!(missing & ~copied))
		goto place;
	/* The missing ones are not sources, however reachable, but for those
	 * of a DEAD supplier that is connected again (declared dead for an
	 * absence, back since): asked last, hash-checked like any other, so
	 * that a block whose other holders are gone as well is not lost
	 * while its fragments are within reach. Rebuilt elsewhere all the
	 * same: a dead supplier gets nothing new. */
	f.k = f.want = b->k;
	f.total = total;
	f.skip = missing;
	f.last_resort = missing & ~copied;
	if ((rc = net__op_run(n, &f.op)) < 0) {
		if (copied)
			goto place;	/* the copies at least */
		goto out;
	}
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
		if (!(missing & (1u << i)) || copied & 1u << i)
			continue;
		if (!(out[i] = malloc(b->frag_len))) {
			rc = -ENOMEM;
			goto out;
		}
		if (f.frag[i]) {	/* a source of last resort: itself */
			memcpy(out[i], f.frag[i], b->frag_len);
			rc = 0;
		} else {
			rc = cr_ec_reconstruct(n->conf.ec, src, nsrc,
			    b->frag_len, i, out[i]);
		}
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
place:
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
		*moved = fetched + f.bytes + stored;
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
