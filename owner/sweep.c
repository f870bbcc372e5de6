/* owner/sweep.c - the orphan sweep: reconciles what suppliers hold with
 * the block records and queues deletes (store_delq, drained by
 * owner/delete.c) for fragments nothing references. One thread, "sweep",
 * every conf.sweep_interval_ms.
 *
 * Orphans appear when the mount dies between an upload's fragments being
 * acknowledged and its record committing, or between a record going and
 * its deletes being queued. A fragment is an orphan when no block record
 * has its block id, or the record places that fragment index on another
 * supplier (a stray). An upload in flight looks exactly like that until it
 * commits, so a fragment is queued only when it was an orphan in two
 * consecutive sweeps, an interval apart. The deleter still checks in a
 * write txn that no record uses it, and the guard (owner/refs.c) makes an
 * upload that raced the delete store its block again: the two-sweep rule
 * keeps that rare, the guard keeps it safe. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "owner/internal.h"
#include "log.h"
#include "worker.h"

#define MAX_PEERS		256

/* One (supplier, fragment) seen orphaned. */
struct orphan {
	unsigned char pk[CR_PK_BYTES];
	unsigned char fragid[STORE_FRAGID_BYTES];
	uint32_t size;
};

/* The sweep thread's own: no lock. */
struct owner__sweep {
	struct owner *o;
	struct worker *w;
	struct vec prev;	/* orphans of the last sweep, sorted */
};

static int
orphan_cmp(const void *a, const void *b)
{
	const struct orphan *x = a, *y = b;
	int c = memcmp(x->pk, y->pk, CR_PK_BYTES);

	return c ? c : memcmp(x->fragid, y->fragid, STORE_FRAGID_BYTES);
}

static int
orphan_push(struct vec *v, const unsigned char *pk,
    const unsigned char *fragid, uint64_t size)
{
	struct orphan x;

	memcpy(x.pk, pk, CR_PK_BYTES);
	memcpy(x.fragid, fragid, STORE_FRAGID_BYTES);
	x.size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
	return vec_push(v, &x, sizeof x);
}

/* 1 when (pk, fragid) is an orphan as of t, 0 when referenced. */
static int
is_orphan(struct owner *o, struct store_txn *t, const unsigned char *pk,
    const unsigned char *fragid)
{
	struct store_block b;
	int idx = fragid[CR_ID_BYTES], rc;

	rc = store_block_get(t, fragid, &b);
	if (rc == -ENOENT)
		return 1;
	if (rc < 0)
		return 0;	/* in doubt, keep */
	rc = idx >= CR_EC_MAX || idx >= b.k + b.m ||
	    memcmp(b.peer[idx], pk, CR_PK_BYTES) != 0;
	sodium_memzero(&b, sizeof b);
	return rc;
}

struct listing {
	const unsigned char *pk;
	struct vec *out;
};

static int
list_cb(void *arg, const unsigned char *fragid, uint64_t size)
{
	struct listing *l = arg;

	return orphan_push(l->out, l->pk, fragid, size);
}

/* Keeps in v, from entry `from` on, only the orphans as of now. No
 * network meanwhile: a read txn held long would pin the pages LMDB needs
 * to reuse. */
static int
keep_orphans(struct owner *o, struct vec *v, size_t from)
{
	struct orphan *x = v->p;
	struct store_txn *t;
	size_t n = from;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		return rc;
	for (size_t i = from; i < v->n; i++)
		if (is_orphan(o, t, x[i].pk, x[i].fragid))
			x[n++] = x[i];
	store_txn_abort(t);
	v->n = n;
	return 0;
}

/* Queues the deletes of cur's orphans that prev had too, checking each
 * again in the write txn. Returns the number queued or -errno. */
static int
queue_deletes(struct owner__sweep *s, const struct vec *cur)
{
	struct owner *o = s->o;
	struct store_txn *t;
	int n = 0, rc;

	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		return rc;
	for (size_t i = 0; i < cur->n; i++) {
		const struct orphan *x = (const struct orphan *)cur->p + i;

		if (bsearch(x, s->prev.p, s->prev.n, sizeof *x,
		    orphan_cmp) == NULL || !is_orphan(o, t, x->pk, x->fragid))
			continue;
		if ((rc = store_delq_put(t, x->pk, x->fragid, x->size)) < 0) {
			store_txn_abort(t);
			return rc;
		}
		n++;
	}
	if (n == 0) {
		store_txn_abort(t);
		return 0;
	}
	return (rc = store_txn_commit(t)) < 0 ? rc : n;
}

/* One sweep over every online supplier. */
static void
sweep_once(struct owner__sweep *s)
{
	struct owner *o = s->o;
	struct net_peer_info *peers;
	struct vec cur = { 0 };
	uint64_t listed = 0;
	int np, rc = 0, queued = 0;

	struct store_txn *t;
	if (store_txn_begin(o->conf.store, 1, &t) == 0) {
		int older = owner__index_older(t);

		store_txn_abort(t);
		if (older) {
			log_debug("sweep: home restored from an older version: "
			    "not sweeping (newer versions own those fragments)");
			return;
		}
	}
	if ((peers = calloc(MAX_PEERS, sizeof *peers)) == NULL)
		return;
	np = net_peers(o->conf.net, peers, MAX_PEERS, 0);
	if (np > MAX_PEERS)
		np = MAX_PEERS;
	for (int i = 0; i < np && rc >= 0; i++) {
		struct listing l = { peers[i].pk, &cur };
		size_t had = cur.n;

		if (peers[i].state != NET_PEER_ONLINE ||
		    sodium_is_zero(peers[i].pk, CR_PK_BYTES))
			continue;
		rc = net_frag_list(o->conf.net, peers[i].pk, list_cb, &l);
		listed += cur.n - had;
		/* Records committed after the listing make fragments look
		 * referenced, never orphaned: judged right next time. */
		if (rc == 0 && (rc = keep_orphans(o, &cur, had)) < 0)
			break;
		if (rc < 0)
			cur.n = had;	/* a partial listing proves nothing */
		if (rc == -EAGAIN)
			rc = 0;		/* gone meanwhile: next time */
		else if (rc < 0)
			log_warn("sweep: listing %s: %s", peers[i].addr,
			    strerror(-rc));
		if (rc == -EPROTO || rc == -EIO || rc == -ETIMEDOUT)
			rc = 0;		/* that supplier only */
	}
	free(peers);
	if (rc < 0) {
		vec_release(&cur);
		return;
	}
	if (cur.n > 0)		/* p is NULL when empty */
		qsort(cur.p, cur.n, sizeof(struct orphan), orphan_cmp);
	if ((queued = queue_deletes(s, &cur)) < 0) {
		log_warn("sweep: queueing deletes: %s", strerror(-queued));
		queued = 0;
	}
	if (queued > 0) {
		log_info("sweep: %d orphaned fragments queued for deletion "
		    "(%" PRIu64 " listed)", queued, listed);
		owner__delete_kick(o);
	} else {
		log_debug("sweep: %" PRIu64 " fragments listed, %zu orphans "
		    "waiting for the next sweep", listed, cur.n);
	}
	vec_release(&s->prev);
	s->prev = cur;
}

static int64_t
sweep_pass(void *arg, int idx)
{
	struct owner__sweep *s = arg;

	/* A reader's records lag the writer's: it would sweep new blocks. */
	if (owner__writable(s->o))
		sweep_once(s);
	return s->o->conf.sweep_interval_ms;
}

int
owner__sweep_init(struct owner *o)
{
	struct owner__sweep *s;
	struct worker_conf wc = {
		.name = "sweep", .pass = sweep_pass,
		.first_ms = o->conf.sweep_interval_ms,
	};
	int rc;

	if (o->conf.net == NULL || o->conf.sweep_interval_ms < 0)
		return 0;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return -ENOMEM;
	s->o = o;
	wc.arg = s;
	o->sweep = s;
	if ((rc = worker_start(&s->w, &wc)) < 0) {
		log_error("sweep: cannot start: %s", strerror(-rc));
		owner__sweep_destroy(o);
		return rc;
	}
	return 0;
}

void
owner__sweep_destroy(struct owner *o)
{
	struct owner__sweep *s = o->sweep;

	if (s == NULL)
		return;
	worker_stop(s->w);
	vec_release(&s->prev);
	free(s);
	o->sweep = NULL;
}
