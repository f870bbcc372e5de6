/* net/audit.c - proofs of storage and one-fragment requests: audit
 * nonces and answers, challenges, deletes. Hashing runs in the calling
 * thread; the loop only sends, times and compares. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/internal.h"
#include "util.h"

void
net_audit_nonce(struct net *n, const unsigned char id[CR_ID_BYTES],
    int idx, uint32_t j, unsigned char nonce[CR_HASH_BYTES])
{
	unsigned char msg[CR_ID_BYTES + 8];

	memcpy(msg, id, CR_ID_BYTES);
	put_be32(msg + CR_ID_BYTES, (uint32_t)idx);
	put_be32(msg + CR_ID_BYTES + 4, j);
	crypto_generichash(nonce, CR_HASH_BYTES, msg, sizeof msg,
	    n->conf.audit_key, CR_KEY_BYTES);
}

void
net__audit_fill(struct net *n, struct store_block *b, int idx,
    const unsigned char *frag, uint32_t from)
{
	unsigned char nonce[CR_HASH_BYTES], ans[CR_HASH_BYTES];

	for (uint32_t j = from; j != from + STORE_AUDITS; j++) {
		net_audit_nonce(n, b->id, idx, j, nonce);
		net__audit_answer(ans, nonce, frag, b->frag_len);
		memcpy(b->audit[idx][j % STORE_AUDITS], ans,
		    STORE_AUDIT_BYTES);
	}
	b->audit_next[idx] = from;
	b->audit_end[idx] = from + STORE_AUDITS;
}

/* ---- one request to one supplier, waited for ------------------------- */

struct one_op {
	struct net_op op;
	const unsigned char *pk;
	struct net_req req;
	int idx;
	const unsigned char *id;		/* block, for log lines */
	unsigned char nonce[CR_HASH_BYTES];	/* AUDIT */
	unsigned char expect[STORE_AUDIT_BYTES];
	const unsigned char *hash;		/* GET: expected fragment tag */
	const unsigned char *key;		/* GET: the block's key */
	uint32_t frag_len;
	unsigned char *buf;			/* GET: kept record */
	int retried;				/* GET: asked a second time */
	const unsigned char *data;
};

static void
audit_log(struct net_peer *p, struct one_op *o, const char *what)
{
	char name[17];

	hex_encode(name, o->id, 8);
	log_warn("supplier %s: fragment %d of block %s: audit failed: %s",
	    p->addr, o->idx, name, what);
}

static void
one_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	struct one_op *o = r->arg;
	struct net_peer *p = r->p;

	switch (r->msg.type) {
	case NET_AUDIT:
		if (rc == 0 && sodium_memcmp(m->answer, o->expect,
		    STORE_AUDIT_BYTES) != 0) {
			audit_log(p, o, "wrong answer");
			rc = -EBADMSG;
		}
		break;
	case NET_GET:
		if (rc != 0)
			break;
		if (m->data_len != o->frag_len ||
		    cr_frag_check(o->hash, o->key, p->n->conf.ec, o->idx, m->data,
		    m->data_len) != 0) {
			/* GET_OK's bulk is not MAC'd on the wire: one bad
			 * copy may be a bit flipped on the way. A second
			 * one is the supplier's. */
			if (!o->retried) {
				o->retried = 1;
				if (net__req_send(p, r) == 0)
					return;
				rc = -EIO;	/* unconfirmed: nobody blamed */
				break;
			}
			audit_log(p, o, "forged or corrupt fragment, twice");
			rc = -EBADMSG;
			break;
		}
		o->buf = *buf;
		*buf = NULL;
		o->data = m->data;
		break;
	case NET_DEL:
		if (rc == -ENOENT)
			rc = 0;
		break;
	}
	if (r->msg.type != NET_DEL) {
		if (rc == 0)
			net__peer_note(p, NET__NOTE_AUDIT_OK);
		else if (rc == -EBADMSG || rc == -ENOENT) {
			if (rc == -ENOENT)
				audit_log(p, o, "the supplier lacks it");
			net__peer_note(p, NET__NOTE_AUDIT_FAILED);
		}
	}
	if (rc == -ECONNRESET)
		rc = r->msg.type == NET_DEL ? -EAGAIN : -EIO;
	if (rc == -ETIMEDOUT && r->msg.type == NET_DEL)
		rc = -EAGAIN;
	net__op_done(p->n, &o->op, rc);
}

static void
one_start(struct net *n, struct net_op *op)
{
	struct one_op *o = (struct one_op *)op;
	struct net_peer *p = net__peer_by_pk(n, o->pk);

	if (!p || !net__peer_up(p))
		return net__op_done(n, op, -EAGAIN);
	o->req.cb = one_done;
	o->req.arg = o;
	o->req.idx = o->idx;
	o->req.msg.fragid = o->req.fragid;
	if (net__req_send(p, &o->req) < 0)
		net__op_done(n, op, -EAGAIN);
}

int
net_frag_audit(struct net *n, struct store_block *b, int idx)
{
	struct one_op o = { .op.start = one_start, .idx = idx };
	uint32_t next, end;
	int rc;

	if (idx < 0 || idx >= b->k + b->m || idx >= CR_EC_MAX ||
	    b->frag_len == 0)
		return -EINVAL;
	o.pk = b->peer[idx];
	o.id = b->id;
	memcpy(o.req.fragid, b->id, CR_ID_BYTES);
	o.req.fragid[CR_ID_BYTES] = (unsigned char)idx;
	next = b->audit_next[idx];
	end = b->audit_end[idx];
	if (next < end && end - next <= STORE_AUDITS) {
		net_audit_nonce(n, b->id, idx, next, o.nonce);
		memcpy(o.expect, b->audit[idx][next % STORE_AUDITS],
		    STORE_AUDIT_BYTES);
		o.req.msg.type = NET_AUDIT;
		o.req.msg.nonce = o.nonce;
		rc = net__op_run(n, &o.op);
		/* A nonce once sent is spent, whatever came back. */
		if (rc != -EAGAIN && rc != -ESHUTDOWN)
			b->audit_next[idx] = next + 1;
		return rc;
	}
	/* No answer left: the whole fragment is the proof, and the source
	 * of the next answers. Its tag is bound to the encoding: one of
	 * another --ec cannot be checked here (nor read), and is no
	 * supplier's fault. */
	if (b->k != n->k || b->m != n->m)
		return -EINVAL;
	o.req.msg.type = NET_GET;
	o.hash = b->frag_hash[idx];
	o.key = b->key;
	o.frag_len = b->frag_len;
	rc = net__op_run(n, &o.op);
	if (rc == 0)
		net__audit_fill(n, b, idx, o.data, next > end ? next : end);
	free(o.buf);
	return rc;
}

int
net_frag_delete(struct net *n, const unsigned char pk[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES])
{
	struct one_op o = { .op.start = one_start, .pk = pk };
	int rc;

	o.idx = fragid[CR_ID_BYTES];
	o.id = fragid;
	memcpy(o.req.fragid, fragid, STORE_FRAGID_BYTES);
	o.req.msg.type = NET_DEL;
	rc = net__op_run(n, &o.op);
	return rc == -ESHUTDOWN ? -EAGAIN : rc;
}
