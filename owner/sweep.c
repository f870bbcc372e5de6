/* fs/sweep.c - the orphan sweep: reconciles what suppliers hold with the
 * block records and queues deletes (store_delq, drained by fs/maint.c's
 * deleter) for fragments nothing references.
 *
 * Orphans appear when the mount dies between an upload's fragments being
 * acknowledged and its record committing, or between a record going and
 * its deletes being queued. A fragment is an orphan when no block record
 * has its block id, or the record places that fragment index on another
 * supplier (a stray). An upload in flight looks exactly like that until it
 * commits, so a fragment is queued only when it was an orphan in two
 * consecutive sweeps, an interval apart. The deleter still checks in a
 * write txn that no record uses it, and fs/data.c's notes make an upload
 * that raced the delete store its block again: the two-sweep rule keeps
 * that rare, the notes keep it safe. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "owner/internal.h"
#include "log.h"

#define DEFAULT_INTERVAL_MS	(5 * 60 * 1000)
#define MAX_PEERS		256

/* One (supplier, fragment) seen orphaned. */
struct orphan {
	unsigned char pk[CR_PK_BYTES];
	unsigned char fragid[STORE_FRAGID_BYTES];
	uint32_t size;
};

struct ovec {
	struct orphan *v;
	size_t n, cap;
};

struct owner__sweep {
	struct owner *o;
	int64_t interval_ms;
	pthread_t th;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stop;
	struct ovec prev;	/* orphans of the last sweep, sorted */
	uint64_t sweeps, queued;
};

static int
orphan_cmp(const void *a, const void *b)
{
	const struct orphan *x = a, *y = b;
	int c = memcmp(x->pk, y->pk, CR_PK_BYTES);

	return c ? c : memcmp(x->fragid, y->fragid, STORE_FRAGID_BYTES);
}

static int
ovec_push(struct ovec *o, const unsigned char *pk, const unsigned char *fragid,
    uint64_t size)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct orphan *v = realloc(o->v, cap * sizeof *v);

		if (v == NULL)
			return -ENOMEM;
		o->v = v;
		o->cap = cap;
	}
	memcpy(o->v[o->n].pk, pk, CR_PK_BYTES);
	memcpy(o->v[o->n].fragid, fragid, STORE_FRAGID_BYTES);
	o->v[o->n].size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
	o->n++;
	return 0;
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
	struct ovec *out;
};

static int
list_cb(void *arg, const unsigned char *fragid, uint64_t size)
{
	struct listing *l = arg;

	return ovec_push(l->out, l->pk, fragid, size);
}

/* Keeps in v, from entry `from` on, only the orphans as of now. No
 * network meanwhile: a read txn held long would pin the pages LMDB needs
 * to reuse. */
static int
keep_orphans(struct owner *o, struct ovec *v, size_t from)
{
	struct store_txn *t;
	size_t n = from;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		return rc;
	for (size_t i = from; i < v->n; i++)
		if (is_orphan(o, t, v->v[i].pk, v->v[i].fragid))
			v->v[n++] = v->v[i];
	store_txn_abort(t);
	v->n = n;
	return 0;
}

/* Queues the deletes of cur's orphans that prev had too, checking each
 * again in the write txn. Returns the number queued or -errno. */
static int
queue_deletes(struct owner__sweep *s, const struct ovec *cur)
{
	struct owner *o = s->o;
	struct store_txn *t;
	int n = 0, rc;

	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		return rc;
	for (size_t i = 0; i < cur->n; i++) {
		const struct orphan *x = &cur->v[i];

		if (bsearch(x, s->prev.v, s->prev.n, sizeof *x,
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
	struct ovec cur = { NULL, 0, 0 };
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
		free(cur.v);
		return;
	}
	qsort(cur.v, cur.n, sizeof *cur.v, orphan_cmp);
	if ((queued = queue_deletes(s, &cur)) < 0) {
		log_warn("sweep: queueing deletes: %s", strerror(-queued));
		queued = 0;
	}
	if (queued > 0) {
		log_info("sweep: %d orphaned fragments queued for deletion "
		    "(%" PRIu64 " listed)", queued, listed);
		owner__maint_kick(o);
	} else {
		log_debug("sweep: %" PRIu64 " fragments listed, %zu orphans "
		    "waiting for the next sweep", listed, cur.n);
	}
	pthread_mutex_lock(&s->lock);
	free(s->prev.v);
	s->prev = cur;
	s->sweeps++;
	s->queued += queued;
	pthread_mutex_unlock(&s->lock);
}

static void *
sweep_main(void *arg)
{
	struct owner__sweep *s = arg;
	struct timespec ts;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += s->interval_ms / 1000;
		ts.tv_nsec += (long)(s->interval_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!s->stop && pthread_cond_timedwait(&s->wake, &s->lock,
		    &ts) != ETIMEDOUT)
			;
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->lock);
		sweep_once(s);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int
owner__sweep_init(struct owner *o)
{
	struct owner__sweep *s;
	pthread_condattr_t ca;
	int rc;

	if (o->conf.net == NULL || o->conf.sweep_interval_ms < 0)
		return 0;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return -ENOMEM;
	s->o = o;
	s->interval_ms = o->conf.sweep_interval_ms > 0 ?
	    o->conf.sweep_interval_ms : DEFAULT_INTERVAL_MS;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	o->sweep = s;
	if ((rc = pthread_create(&s->th, NULL, sweep_main, s)) != 0) {
		log_error("sweep: cannot start: %s", strerror(rc));
		owner__sweep_destroy(o);
		return -rc;
	}
	s->started = 1;
	return 0;
}

void
owner__sweep_destroy(struct owner *o)
{
	struct owner__sweep *s = o->sweep;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
	if (s->started)
		pthread_join(s->th, NULL);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s->prev.v);
	free(s);
	o->sweep = NULL;
}
