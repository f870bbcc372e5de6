/* net/heads.c - recovery on the owner's side: signed heads published to
 * and fetched from every online supplier, a supplier's fragment listing
 * (paged), and suppliers added with a key already known.
 *
 * The loop only sends and collects: answers are kept (their records
 * held) until the caller's thread has them, which verifies the heads and
 * runs the callbacks, so a callback may block or call back into net. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/internal.h"
#include "util.h"

#define LIST_PAGE	4096
#define HEAD_SEQ_OFF	(8 + CR_PK_BYTES)	/* magic, owner (crypto.h) */

/* ---- one request to each online supplier -------------------------------- */

struct fan_req {
	struct net_req r;
	struct fan_op *o;
	char addr[64];
	int rc;				/* 1 while waiting */
	char errmsg[NET_ERRMSG_MAX + 1];	/* ERR, printable */
	unsigned char *buf;		/* HEAD_LIST_OK: the record */
	struct net_msg m;		/* HEAD_LIST_OK, points into buf */
};

struct fan_op {
	struct net_op op;
	struct net_msg msg;		/* what goes to each supplier */
	struct fan_req *reqs;		/* nreq, allocated on the loop */
	int nreq, waiting;
};

static void
fan_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	struct fan_req *q = r->arg;
	struct fan_op *o = q->o;

	q->rc = rc;
	if (rc < 0 && m && m->type == NET_ERR)
		log_peer_text(q->errmsg, sizeof q->errmsg, m->errmsg,
		    m->errmsg_len);
	/* A head refused for our account there: `status` names it. */
	if (r->msg.type == NET_HEAD_PUT && net__is_refusal(rc) && m)
		net__peer_refused(r->p, rc, m);
	/* Refused (no head there yet): asked again after the next head. A
	 * supplier that predates LOCATOR closes the session instead: it is
	 * not asked again. */
	if (r->msg.type == NET_LOCATOR && rc < 0 && m && m->type == NET_ERR)
		r->p->locator_sent = 0;
	if (rc == 0 && m->type == NET_HEAD_LIST_OK && buf && *buf) {
		q->buf = *buf;		/* m->data points into it */
		*buf = NULL;
		q->m = *m;
	}
	if (--o->waiting == 0)
		net__op_done(r->p->n, &o->op, 0);
}

/* Online suppliers; for LOCATOR only those not told yet by this net. */
static int
fan_to(const struct fan_op *o, const struct net_peer *p)
{
	return p->state == NET_PEER_ONLINE && net__peer_up(p) &&
	    !(o->msg.type == NET_LOCATOR && p->locator_sent);
}

static void
fan_start(struct net *n, struct net_op *op)
{
	struct fan_op *o = (struct fan_op *)op;
	int count = 0;

	for (struct net_peer *p = n->peers; p; p = p->next)
		if (fan_to(o, p))
			count++;
	if (count == 0)
		return net__op_done(n, op, -EAGAIN);
	if (!(o->reqs = calloc((size_t)count, sizeof *o->reqs)))
		return net__op_done(n, op, -ENOMEM);
	/* Counted up front: an answer cannot come before the loop returns,
	 * but a failed send must not finish the op early either. */
	o->waiting = 1;
	for (struct net_peer *p = n->peers; p && o->nreq < count;
	    p = p->next) {
		struct fan_req *q;

		if (!fan_to(o, p))
			continue;
		if (o->msg.type == NET_LOCATOR)
			p->locator_sent = 1;
		q = &o->reqs[o->nreq++];
		q->o = o;
		q->rc = 1;
		snprintf(q->addr, sizeof q->addr, "%s", p->addr);
		q->r.msg = o->msg;
		q->r.cb = fan_done;
		q->r.arg = q;
		o->waiting++;
		if (net__req_send(p, &q->r) < 0) {
			o->waiting--;
			q->rc = -ENOTCONN;
		}
	}
	if (--o->waiting == 0)
		net__op_done(n, op, 0);
}

/* Runs o->msg against every online supplier; o->reqs is the caller's to
 * release with fan_free. */
static int
fan_run(struct net *n, struct fan_op *o)
{
	int rc;

	o->op.start = fan_start;
	rc = net__op_run(n, &o->op);
	return rc == -ESHUTDOWN ? -EAGAIN : rc;
}

static void
fan_free(struct fan_op *o)
{
	for (int i = 0; i < o->nreq; i++)
		free(o->reqs[i].buf);
	free(o->reqs);
	o->reqs = NULL;
	o->nreq = 0;
}

static const char *
fan_why(const struct fan_req *q)
{
	if (q->errmsg[0])
		return q->errmsg;
	return strerror(q->rc < 0 ? -q->rc : EIO);
}

/* ---- heads -------------------------------------------------------------- */

int
net_head_publish(struct net *n, const void *head, size_t len)
{
	return net_head_publish_count(n, head, len, NULL);
}

int
net_head_publish_count(struct net *n, const void *head, size_t len,
    struct net_head_tally *out)
{
	struct fan_op o = { 0 };
	unsigned long long seq;
	int rc, stored = 0, stale = 0;

	if (!n || !head || len < CR_HEAD_FIXED ||
	    len > (size_t)CR_HEAD_FIXED + CR_HEAD_BLOB_MAX)
		return -EINVAL;
	/* For the log lines only; the suppliers judge the head. */
	seq = get_be64((const unsigned char *)head + HEAD_SEQ_OFF);
	o.msg.type = NET_HEAD_PUT;
	o.msg.data = head;
	o.msg.data_len = len;
	if ((rc = fan_run(n, &o)) < 0)
		return rc;
	for (int i = 0; i < o.nreq; i++) {
		const struct fan_req *q = &o.reqs[i];

		if (q->rc == 0)
			stored++;
		else if (q->rc == -ESTALE && ++stale)
			log_warn("supplier %s refused head seq %llu (ESTALE: "
			    "%s): it holds a newer head of ours, from another "
			    "node of this owner or a rollback attempt",
			    q->addr, seq, fan_why(q));
		else
			log_warn("supplier %s: head seq %llu not stored: %s",
			    q->addr, seq, fan_why(q));
	}
	if (out) {
		out->asked = o.nreq;
		out->stored = stored;
		out->stale = stale;
	}
	fan_free(&o);
	return stored;
}

int
net_locator_put(struct net *n, const unsigned char loc[32])
{
	struct fan_op o = { 0 };
	int rc, stored = 0;

	o.msg.type = NET_LOCATOR;
	o.msg.locator = loc;
	if ((rc = fan_run(n, &o)) < 0)
		return rc == -EAGAIN ? 0 : rc;	/* nobody new to tell */
	for (int i = 0; i < o.nreq; i++) {
		const struct fan_req *q = &o.reqs[i];

		if (q->rc == 0)
			stored++;
		else
			log_info("supplier %s: locator not kept: %s (a restore "
			    "through the network will not find it)", q->addr,
			    fan_why(q));
	}
	fan_free(&o);
	return stored;
}

int
net_heads_fetch(struct net *n, int max,
    int (*cb)(void *arg, const char *addr, uint64_t seq, const void *head,
    size_t len), void *arg)
{
	struct fan_op o = { 0 };
	int rc, answered = 0, stop = 0;

	if (!n || !cb || max < 0)
		return -EINVAL;
	o.msg.type = NET_HEAD_LIST;
	o.msg.max = (uint32_t)max;
	if ((rc = fan_run(n, &o)) < 0)
		return rc;
	for (int i = 0; i < o.nreq; i++) {
		const struct fan_req *q = &o.reqs[i];
		const unsigned char *p;
		size_t off = 0, len;

		if (q->rc != 0 || !q->buf) {
			log_warn("supplier %s: cannot list heads: %s",
			    q->addr, fan_why(q));
			continue;
		}
		answered++;
		while (!stop && net_msg_heads_next(&q->m, &off, &p, &len)) {
			struct cr_head h;

			if ((rc = cr_head_verify(p, len, &h)) < 0) {
				log_warn("supplier %s: offered a head that "
				    "does not verify (%s): ignored", q->addr,
				    rc == -EBADMSG ? "bad signature" :
				    "malformed");
				continue;
			}
			if (memcmp(h.owner, n->conf.id->pk, CR_PK_BYTES) != 0) {
				log_warn("supplier %s: offered a head of "
				    "another owner: ignored", q->addr);
				continue;
			}
			if ((rc = cb(arg, q->addr, h.seq, p, len)) != 0)
				stop = rc;
		}
	}
	fan_free(&o);
	return stop < 0 ? stop : answered;
}

/* ---- one supplier's fragments ------------------------------------------ */

struct list_op {
	struct net_op op;
	const unsigned char *pk;
	struct net_req r;
	char addr[64];
	unsigned char *buf;		/* the LIST_OK record */
	struct net_msg m;
};

static void
list_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	struct list_op *o = r->arg;

	if (rc == 0 && buf && *buf) {
		o->buf = *buf;		/* m->entries points into it */
		*buf = NULL;
		o->m = *m;
	} else if (rc == 0) {
		rc = -EIO;
	}
	net__op_done(r->p->n, &o->op, rc);
}

static void
list_start(struct net *n, struct net_op *op)
{
	struct list_op *o = (struct list_op *)op;
	struct net_peer *p = net__peer_by_pk(n, o->pk);

	if (!p || !net__peer_up(p))
		return net__op_done(n, op, -EAGAIN);
	snprintf(o->addr, sizeof o->addr, "%s", p->addr);
	o->r.cb = list_done;
	o->r.arg = o;
	if (net__req_send(p, &o->r) < 0)
		net__op_done(n, op, -EAGAIN);
}

int
net_frag_list(struct net *n, const unsigned char pk[CR_PK_BYTES],
    int (*cb)(void *arg, const unsigned char *fragid, uint64_t size),
    void *arg)
{
	unsigned char after[STORE_FRAGID_BYTES] = { 0 };
	int rc;

	if (!n || !pk || !cb)
		return -EINVAL;
	for (;;) {
		struct list_op o = { .op.start = list_start, .pk = pk };
		uint32_t got;

		o.r.msg.type = NET_LIST;
		o.r.msg.fragid = o.r.fragid;
		memcpy(o.r.fragid, after, sizeof after);
		o.r.msg.max = LIST_PAGE;
		rc = net__op_run(n, &o.op);
		if (rc == -ESHUTDOWN || rc == -ECONNRESET)
			rc = -EAGAIN;
		if (rc < 0) {
			free(o.buf);
			return rc;
		}
		got = o.m.n;
		for (uint32_t i = 0; i < got; i++) {
			const unsigned char *e = o.m.entries +
			    (size_t)i * LIST_ENTRY;

			/* Strictly after the page start, in order: the
			 * paging always advances, whatever the supplier. */
			if (memcmp(e, after, STORE_FRAGID_BYTES) <= 0) {
				log_warn("supplier %s: fragment list out of "
				    "order", o.addr);
				free(o.buf);
				return -EPROTO;
			}
			memcpy(after, e, STORE_FRAGID_BYTES);
			if ((rc = cb(arg, e, get_be64(e + STORE_FRAGID_BYTES)))
			    != 0) {
				free(o.buf);
				return rc < 0 ? rc : 0;
			}
		}
		free(o.buf);
		if (got < LIST_PAGE)
			return 0;
	}
}

/* ---- suppliers from a recovered index ----------------------------------- */

int
net_add_known_peer(struct net *n, const char *hostport,
    const unsigned char pk[CR_PK_BYTES])
{
	struct sockaddr_storage sa;
	int rc;

	if (!n || !hostport || !pk)
		return -EINVAL;
	/* Without a store nothing could hold the pin: refuse, not trust. */
	if (!n->conf.store)
		return -EINVAL;
	if (strlen(hostport) >= sizeof ((struct net_peer *)0)->addr ||
	    (rc = net__peer_addr(hostport, &sa)) < 0)
		return -EINVAL;
	if ((rc = store_peer_pin(n->conf.store, hostport, pk)) < 0) {
		if (rc == -EKEYREJECTED)
			log_error("supplier %s: pinned to another key than "
			    "the index names: refusing", hostport);
		return rc;
	}
	return net__add_peer_pk(n, hostport, pk);
}
