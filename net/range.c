/* net/range.c - range reads: a few chunks of a block sealed in chunks
 * (crypto.h CR_SEAL_CHUNKED), fetched as byte ranges of the data
 * fragments that hold them (the code is systematic: cr_ec_data_layout)
 * and opened alone, each by its own tag.
 *
 * Only the happy path lives here: every data fragment the range touches
 * on a supplier that is up, each answering its range. Anything else (a
 * holder down or marked lost, an error, a chunk failing its tag, a
 * supplier from before ranges) is the caller's cue for the whole-block
 * path (net/block.c), which checks whole fragments by their tags, decodes
 * from the others and reports the bad ones for rebuild. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/internal.h"
#include "util.h"

struct range_op {
	struct net_op op;
	const struct store_block *b;
	uint64_t s0, s1;		/* the range, in sealed offsets */
	unsigned char *sealed;		/* its sealed bytes */
	size_t hdr, pay;		/* cr_ec_data_layout */
	int first, last;		/* data fragments touched */
	struct net_req req[CR_EC_MAX];
	int outstanding, rc;
};

/* The part of the range that data fragment i holds: [*a, *e) in sealed
 * offsets. */
static void
piece(const struct range_op *o, int i, uint64_t *a, uint64_t *e)
{
	uint64_t lo = (uint64_t)i * o->pay, hi = lo + o->pay;

	*a = o->s0 > lo ? o->s0 : lo;
	*e = o->s1 < hi ? o->s1 : hi;
}

static void
range_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	struct range_op *o = r->arg;
	struct net_peer *p = r->p;
	char why[LOG_PEER_TEXT_MAX + 1];
	uint64_t a, e;

	o->outstanding--;
	piece(o, r->idx, &a, &e);
	if (rc == 0 && m->data_len == e - a) {
		p->range_known = 1;
		memcpy(o->sealed + (a - o->s0), m->data, m->data_len);
		__atomic_add_fetch(&p->n->fetched_bytes, m->data_len,
		    __ATOMIC_RELAXED);
	} else if (rc == 0) {
		log_warn("supplier %s: fragment %d: %zu bytes for a range of "
		    "%llu", p->addr, r->idx, m->data_len,
		    (unsigned long long)(e - a));
		o->rc = -EBADMSG;
	} else {
		if (!m && !p->range_known && rc != -ETIMEDOUT) {
			/* Dropped before it ever answered a range: most
			 * likely a supplier from before them. */
			p->no_range = 1;
			log_info("supplier %s: no range reads (an older "
			    "supplier?): whole fragments from it", p->addr);
		} else if (m && m->type == NET_ERR) {
			log_warn("supplier %s: range of fragment %d refused: "
			    "%s", p->addr, r->idx, log_peer_text(why,
			    sizeof why, m->errmsg, m->errmsg_len));
		}
		o->rc = rc;
	}
	if (o->outstanding == 0)
		net__op_done(p->n, &o->op, o->rc);
}

static void
range_start(struct net *n, struct net_op *op)
{
	struct range_op *o = (struct range_op *)op;
	struct net_peer *p[CR_EC_MAX];
	uint64_t a, e;

	/* Every holder first: a range read is all or nothing. */
	for (int i = o->first; i <= o->last; i++) {
		p[i] = net__peer_by_pk(n, o->b->peer[i]);
		if (!p[i] || !net__peer_up(p[i]) || p[i]->no_range ||
		    p[i]->state == NET_PEER_DEAD || o->b->lost[i])
			return net__op_done(n, op, -EAGAIN);
	}
	for (int i = o->first; i <= o->last; i++) {
		struct net_req *r = &o->req[i];

		piece(o, i, &a, &e);
		memset(r, 0, sizeof *r);
		r->msg.type = NET_GET;
		memcpy(r->fragid, o->b->id, CR_ID_BYTES);
		r->fragid[CR_ID_BYTES] = (unsigned char)i;
		r->msg.fragid = r->fragid;
		r->msg.ranged = 1;
		r->msg.range_off = (uint32_t)(o->hdr + (a - (uint64_t)i * o->pay));
		r->msg.range_len = (uint32_t)(e - a);
		r->cb = range_done;
		r->arg = o;
		r->idx = i;
		if (net__req_send(p[i], r) == 0)
			o->outstanding++;
		else
			o->rc = -EAGAIN;
	}
	if (o->outstanding == 0)
		net__op_done(n, op, o->rc ? o->rc : -EAGAIN);
}

int
net_block_fetch_range(struct net *n, const struct store_block *b,
    uint32_t first, uint32_t count, void *plain)
{
	struct range_op o = { .op.start = range_start, .b = b };
	uint64_t slen = cr_sealed_len(b->seal, b->plain_len);
	uint32_t nchunks = cr_chunk_count(b->plain_len), bad = 0;
	uint64_t end;
	char name[17];
	int rc;

	if (b->seal != CR_SEAL_CHUNKED || b->k != n->k || b->m != n->m ||
	    b->frag_len == 0)
		return -ENOTSUP;
	if (count == 0 || first >= nchunks || count > nchunks - first)
		return -EINVAL;
	if ((rc = cr_ec_data_layout(n->conf.ec, slen, b->frag_len, &o.hdr,
	    &o.pay)) < 0)
		return rc;
	o.s0 = (uint64_t)first * CR_CHUNK_SEALED;
	end = (uint64_t)(first + count) * CR_CHUNK_SEALED;
	o.s1 = end < slen ? end : slen;
	o.first = (int)(o.s0 / o.pay);
	o.last = (int)((o.s1 - 1) / o.pay);
	if (o.last >= b->k)
		return -EINVAL;		/* cannot be: the layout says so */
	if (!(o.sealed = malloc(o.s1 - o.s0)))
		return -ENOMEM;
	rc = net__op_run(n, &o.op);
	if (rc == 0 && (rc = cr_chunks_open(plain, o.sealed, b->plain_len,
	    first, count, b->key, &bad)) < 0) {
		hex_encode(name, b->id, 8);
		log_warn("block %s: chunk %u failed its check: reading the "
		    "whole block", name, bad);
	}
	free(o.sealed);
	return rc;
}

uint64_t
net_fetched_bytes(struct net *n)
{
	return __atomic_load_n(&n->fetched_bytes, __ATOMIC_RELAXED);
}

uint64_t
net_tag_checks(struct net *n)
{
	return __atomic_load_n(&n->tag_checks, __ATOMIC_RELAXED);
}
