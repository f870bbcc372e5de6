/* fs/maint.c - keeping data alive while mounted: four kinds of threads
 * over the queues kept in the store, so an unmount or a crash loses none
 * of their work.
 *
 *   scanner    every SCAN_MS, and at once when a supplier turns DEAD:
 *              queues (store_rebuild_put) every block with a fragment
 *              marked lost or held by a DEAD supplier.
 *   rebuilders conf.rebuild_jobs workers: the most urgent queued block
 *              not held by another worker, net_block_repair, then one
 *              write txn merges only the repaired fragments into the
 *              record as it is now and queues the old copies for deletion.
 *              Bytes moved are bounded by a token bucket (rebuild_rate).
 *   auditor    one fragment after another, round robin over the blocks,
 *              paced so that a pass over every fragment takes
 *              audit_interval_ms; a wrong or missing answer marks the
 *              fragment lost and queues the block.
 *   deleter    drains store_delq with net_frag_delete.
 *
 * Deletes race rebuilds and uploads that place the same fragment id on
 * the same supplier. The deleter first notes the block (owner__data_note:
 * uploads committing it meanwhile store again) and logs the delete in
 * m->ring, then checks in a write txn that no record uses the fragment,
 * then sends. A rebuild merges a fragment only if no delete of it was
 * logged since the rebuild began or is still in flight.
 * Lock order: LMDB write txn -> m->lock (never a txn under m->lock);
 * no txn is held across a network call. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <sodium.h>

#include "owner/internal.h"
#include "log.h"
#include "util.h"

#define SCAN_MS		5000
#define POLL_MS		500	/* supplier states */
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	60000
#define DEL_BATCH	64
#define DEL_RETRY_MS	5000
#define RING		1024
#define MAX_PEERS	256
#define MAX_JOBS	16
#define DEFAULT_RATE	(50ull << 20)
#define DEFAULT_AUDIT_MS (7ll * 24 * 3600 * 1000)

/* A queued block whose last rebuild failed: not before retry_ms. */
struct backoff {
	unsigned char id[CR_ID_BYTES];
	int64_t retry_ms, failed_ms;
	int ms;
	struct backoff *next;
};

struct dlog {
	unsigned char pk[CR_PK_BYTES];
	unsigned char fragid[STORE_FRAGID_BYTES];
	uint64_t seq;
	int inflight;
};

struct peer_seen {
	unsigned char pk[CR_PK_BYTES];
	int state;
};

struct owner__maint {
	struct owner *o;
	pthread_mutex_t lock;		/* protects everything below */
	pthread_cond_t wake;		/* threads: stop or new work */
	pthread_cond_t progress;	/* a rebuild attempt ended */
	int stop;
	int scan_now, del_now;

	int njobs;
	pthread_t scanner, auditor, deleter, *rb;
	int started;			/* threads to join */
	unsigned char (*busy)[CR_ID_BYTES];	/* per worker */
	int *busy_set;
	struct backoff *backoff;

	struct dlog ring[RING];		/* deletes, by seq % RING */
	uint64_t del_seq;

	double tokens;			/* rebuild bytes we may move now */
	int64_t tok_ms;

	uint64_t frags_total;		/* fragments, at the last scan */
	struct owner_maint_stats st;
	double rate_acc;		/* bytes since rate_ms */
	int64_t rate_ms;

	pthread_mutex_t check_lock;	/* one `peerfs check` at a time */
	char *report;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on c for at most ms (m->lock held). */
static void
wait_ms(struct owner__maint *m, pthread_cond_t *c, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(c, &m->lock, &ts);
}

static int
popcount(uint32_t x)
{
	return __builtin_popcount(x);
}

static int
nfrags(const struct store_block *b)
{
	int n = b->k + b->m;

	return n > CR_EC_MAX ? CR_EC_MAX : n;
}

static int
is_dead(struct owner *o, const struct net_peer_snap *snap,
    const unsigned char *pk)
{
	if (o->conf.net == NULL)
		return 0;
	return (snap ? net_peer_snap_state(snap, pk) :
	    net_peer_state(o->conf.net, pk)) == NET_PEER_DEAD;
}

/* NULL (ask per fragment) without a network or when shutting down. */
static void
peer_snap(struct owner *o, struct net_peer_snap **snap)
{
	*snap = NULL;
	if (o->conf.net != NULL && net_peer_snap_take(o->conf.net, snap) < 0)
		*snap = NULL;
}

/* Fragments of b to rebuild: marked lost, never placed, or on a DEAD
 * supplier. *surviving gets the others. Passes over every block give a
 * snapshot of the supplier states (else one trip to the net loop per
 * fragment, which on a mount of 20,000 blocks took 6% of its CPU every
 * SCAN_MS); a single block may give NULL. */
static uint32_t
missing_of(struct owner *o, const struct net_peer_snap *snap,
    const struct store_block *b, uint32_t *surviving)
{
	uint32_t miss = 0;
	int n = nfrags(b);

	for (int i = 0; i < n; i++)
		if (b->lost[i] || sodium_is_zero(b->peer[i], CR_PK_BYTES) ||
		    is_dead(o, snap, b->peer[i]))
			miss |= 1u << i;
	if (surviving)
		*surviving = (uint32_t)(n - popcount(miss));
	return miss;
}

static void
fragid_of(unsigned char fragid[STORE_FRAGID_BYTES], const unsigned char *id,
    int i)
{
	memcpy(fragid, id, CR_ID_BYTES);
	fragid[CR_ID_BYTES] = (unsigned char)i;
}

void
owner__maint_kick(struct owner *o)
{
	struct owner__maint *m = o ? o->maint : NULL;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	m->del_now = 1;
	pthread_cond_broadcast(&m->wake);
	pthread_mutex_unlock(&m->lock);
}

/* ---- marking fragments lost ---------------------------------------------- */

/* Inside t: marks fragments `bad` of the record of b lost where the record
 * still has b's holder, and queues the block. */
static int
mark_lost(struct owner *o, struct store_txn *t, const struct store_block *b,
    uint32_t bad)
{
	struct store_block cur;
	uint32_t surv;
	int rc, changed = 0;

	if ((rc = store_block_get(t, b->id, &cur)) < 0)
		return rc == -ENOENT ? 0 : rc;
	for (int i = 0; i < nfrags(&cur); i++)
		if ((bad & 1u << i) && !cur.lost[i] &&
		    memcmp(cur.peer[i], b->peer[i], CR_PK_BYTES) == 0) {
			cur.lost[i] = 1;
			changed = 1;
		}
	if (changed && (rc = store_block_put(t, &cur)) == 0 &&
	    missing_of(o, NULL, &cur, &surv) != 0)
		rc = store_rebuild_put(t, cur.id, surv);
	sodium_memzero(&cur, sizeof cur);
	return rc;
}

void
owner__maint_report_bad(struct owner *o, const struct store_block *b, uint32_t bad)
{
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		goto out;
	if ((rc = mark_lost(o, t, b, bad)) < 0)
		store_txn_abort(t);
	else
		rc = store_txn_commit(t);
out:
	if (rc < 0)
		log_warn("maint: cannot mark bad fragments lost: %s",
		    strerror(-rc));
	else
		log_warn("maint: %d corrupt fragment(s) of a block: queued "
		    "for rebuild", popcount(bad));
	if (o->maint != NULL) {
		pthread_mutex_lock(&o->maint->lock);
		pthread_cond_broadcast(&o->maint->wake);
		pthread_mutex_unlock(&o->maint->lock);
	}
}

/* ---- scanner ------------------------------------------------------------- */

struct rq_entry {
	unsigned char id[CR_ID_BYTES];
	uint32_t surviving;
};

struct rq_vec {
	struct rq_entry *v;
	size_t n, cap;
};

static int
rq_push(struct rq_vec *q, const unsigned char *id, uint32_t surviving)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct rq_entry *v = realloc(q->v, cap * sizeof *v);

		if (v == NULL)
			return -ENOMEM;
		q->v = v;
		q->cap = cap;
	}
	memcpy(q->v[q->n].id, id, CR_ID_BYTES);
	q->v[q->n++].surviving = surviving;
	return 0;
}

static int
rq_collect(void *arg, const unsigned char *id, uint32_t surviving)
{
	return rq_push(arg, id, surviving);
}

static int
rq_cmp(const void *a, const void *b)
{
	return memcmp(((const struct rq_entry *)a)->id,
	    ((const struct rq_entry *)b)->id, CR_ID_BYTES);
}

struct scan_ctx {
	struct owner *o;
	struct net_peer_snap *snap;	/* NULL: ask per fragment */
	struct rq_vec queued;	/* sorted by id */
	struct rq_vec todo;
	uint64_t frags;
};

static int
scan_one(void *arg, const struct store_block *b)
{
	struct scan_ctx *sc = arg;
	struct rq_entry key, *hit;
	uint32_t surv;

	sc->frags += nfrags(b);
	if (missing_of(sc->o, sc->snap, b, &surv) == 0)
		return 0;
	memcpy(key.id, b->id, CR_ID_BYTES);
	hit = sc->queued.n ? bsearch(&key, sc->queued.v, sc->queued.n,
	    sizeof key, rq_cmp) : NULL;
	if (hit != NULL && hit->surviving == surv)
		return 0;
	return rq_push(&sc->todo, b->id, surv);
}

/* Queues every block with something to rebuild; returns how many were
 * (re)queued. */
static int
scan(struct owner__maint *m)
{
	struct owner *o = m->o;
	struct scan_ctx sc = { o, NULL, { 0 }, { 0 }, 0 };
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		return rc;
	peer_snap(o, &sc.snap);
	rc = store_rebuild_iter(t, rq_collect, &sc.queued);
	if (rc == 0) {
		qsort(sc.queued.v, sc.queued.n, sizeof *sc.queued.v, rq_cmp);
		rc = store_block_iter(t, scan_one, &sc);
	}
	store_txn_abort(t);
	net_peer_snap_free(sc.snap);
	if (rc == 0 && sc.todo.n > 0 &&
	    (rc = store_txn_begin(o->conf.store, 0, &t)) == 0) {
		for (size_t i = 0; rc == 0 && i < sc.todo.n; i++)
			rc = store_rebuild_put(t, sc.todo.v[i].id,
			    sc.todo.v[i].surviving);
		if (rc < 0)
			store_txn_abort(t);
		else
			rc = store_txn_commit(t);
	}
	pthread_mutex_lock(&m->lock);
	if (rc == 0)
		m->frags_total = sc.frags;
	if (sc.todo.n > 0)
		pthread_cond_broadcast(&m->wake);
	pthread_mutex_unlock(&m->lock);
	if (rc == 0 && sc.todo.n > 0)
		log_info("maint: %zu block(s) queued for rebuild", sc.todo.n);
	free(sc.queued.v);
	free(sc.todo.v);
	if (rc < 0)
		log_warn("maint: scan: %s", strerror(-rc));
	return rc < 0 ? rc : (int)sc.todo.n;
}

/* Compares supplier states with the last poll: 1 when one turned DEAD. */
static int
poll_peers(struct owner__maint *m, struct peer_seen *seen, int *nseen,
    struct net_peer_info *info)
{
	int n = net_peers(m->o->conf.net, info, MAX_PEERS, 0), dead = 0,
	    back = 0;

	if (n > MAX_PEERS)
		n = MAX_PEERS;
	for (int i = 0; i < n; i++) {
		int j, was = -1;

		for (j = 0; j < *nseen; j++)
			if (memcmp(seen[j].pk, info[i].pk, CR_PK_BYTES) == 0) {
				was = seen[j].state;
				break;
			}
		if (info[i].state == NET_PEER_DEAD && was != NET_PEER_DEAD) {
			log_warn("maint: supplier %s is dead: rebuilding its "
			    "fragments elsewhere", info[i].addr);
			dead = 1;
		}
		if (info[i].state == NET_PEER_ONLINE && was != NET_PEER_ONLINE)
			back = 1;
		if (j == *nseen && *nseen < MAX_PEERS)
			(*nseen)++;
		memcpy(seen[j].pk, info[i].pk, CR_PK_BYTES);
		seen[j].state = info[i].state;
	}
	if (back) {
		/* Failed rebuilds may find a supplier now; deletes too. */
		pthread_mutex_lock(&m->lock);
		for (struct backoff *b = m->backoff; b; b = b->next)
			b->retry_ms = 0;
		m->del_now = 1;
		pthread_cond_broadcast(&m->wake);
		pthread_mutex_unlock(&m->lock);
	}
	return dead;
}

static void *
scanner_main(void *arg)
{
	struct owner__maint *m = arg;
	struct peer_seen *seen = calloc(MAX_PEERS, sizeof *seen);
	struct net_peer_info *info = calloc(MAX_PEERS, sizeof *info);
	int64_t next_scan = 0;
	int nseen = 0, now_scan;

	if (seen == NULL || info == NULL) {
		log_error("maint: scanner: out of memory");
		free(seen);
		free(info);
		return NULL;
	}
	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		pthread_mutex_unlock(&m->lock);
		now_scan = poll_peers(m, seen, &nseen, info);
		pthread_mutex_lock(&m->lock);
		now_scan |= m->scan_now;
		m->scan_now = 0;
		if (now_scan || now_ms() >= next_scan) {
			pthread_mutex_unlock(&m->lock);
			scan(m);
			next_scan = now_ms() + SCAN_MS;
			pthread_mutex_lock(&m->lock);
			continue;
		}
		wait_ms(m, &m->wake, POLL_MS);
	}
	pthread_mutex_unlock(&m->lock);
	free(seen);
	free(info);
	return NULL;
}

/* ---- rebuilders ---------------------------------------------------------- */

static struct backoff *
backoff_find(struct owner__maint *m, const unsigned char *id)
{
	for (struct backoff *b = m->backoff; b; b = b->next)
		if (memcmp(b->id, id, CR_ID_BYTES) == 0)
			return b;
	return NULL;
}

static void
backoff_clear(struct owner__maint *m, const unsigned char *id)
{
	for (struct backoff **pp = &m->backoff, *b; (b = *pp); pp = &b->next)
		if (memcmp(b->id, id, CR_ID_BYTES) == 0) {
			*pp = b->next;
			free(b);
			return;
		}
}

static void
backoff_fail(struct owner__maint *m, const unsigned char *id)
{
	struct backoff *b = backoff_find(m, id);

	if (b == NULL) {
		if ((b = calloc(1, sizeof *b)) == NULL)
			return;
		memcpy(b->id, id, CR_ID_BYTES);
		b->next = m->backoff;
		m->backoff = b;
	}
	b->ms = b->ms ? b->ms * 2 : BACKOFF_MIN_MS;
	if (b->ms > BACKOFF_MAX_MS)
		b->ms = BACKOFF_MAX_MS;
	b->failed_ms = now_ms();
	b->retry_ms = b->failed_ms + b->ms;
}

struct pick {
	struct owner__maint *m;
	int self;
	int64_t now;
	unsigned char *id;
	int found;
};

/* m->lock held by the caller around the read txn. */
static int
pick_one(void *arg, const unsigned char *id, uint32_t surviving)
{
	struct pick *p = arg;
	struct owner__maint *m = p->m;
	struct backoff *b;

	for (int i = 0; i < m->njobs; i++)
		if (i != p->self && m->busy_set[i] &&
		    memcmp(m->busy[i], id, CR_ID_BYTES) == 0)
			return 0;
	if ((b = backoff_find(m, id)) != NULL && b->retry_ms > p->now)
		return 0;
	memcpy(p->id, id, CR_ID_BYTES);
	p->found = 1;
	return 1;
}

/* Token bucket: up to one second's worth of bytes in the bucket; a
 * rebuild starts when it is not in debt and is charged what it really
 * moved afterwards (so a block bigger than the rate still goes, and the
 * next waits longer). 0, or 1 on stop. */
static int
rate_wait(struct owner__maint *m)
{
	double rate = (double)m->o->conf.rebuild_rate;
	int64_t now;
	int stop;

	pthread_mutex_lock(&m->lock);
	for (;;) {
		now = now_ms();
		m->tokens += rate * (double)(now - m->tok_ms) / 1000.0;
		m->tok_ms = now;
		if (m->tokens > rate)
			m->tokens = rate;
		if (m->stop || m->tokens > 0)
			break;
		wait_ms(m, &m->wake, 1 + (int64_t)(-m->tokens * 1000.0 / rate));
	}
	stop = m->stop;
	pthread_mutex_unlock(&m->lock);
	return stop;
}

/* 1 when a delete of (pk, fragid) was logged since seq or is in flight
 * (m->lock held). */
static int
delete_conflict(struct owner__maint *m, uint64_t seq, const unsigned char *pk,
    const unsigned char *fragid)
{
	if (m->del_seq - seq >= RING)
		return 1;
	for (int i = 0; i < RING; i++) {
		struct dlog *d = &m->ring[i];

		if (d->seq != 0 && (d->seq > seq || d->inflight) &&
		    memcmp(d->pk, pk, CR_PK_BYTES) == 0 &&
		    memcmp(d->fragid, fragid, STORE_FRAGID_BYTES) == 0)
			return 1;
	}
	return 0;
}

/* In one write txn: merges the fragments that net_block_repair placed
 * (b, from orig) into the record as it is now. Returns the number merged
 * or -errno. */
static int
repair_commit(struct owner__maint *m, const struct store_block *orig,
    const struct store_block *b, uint32_t miss, uint64_t seq)
{
	struct owner *o = m->o;
	unsigned char fragid[STORE_FRAGID_BYTES];
	struct store_block cur;
	struct store_txn *t;
	uint32_t surv;
	int rc, merged = 0, gone, n = nfrags(b), queued = 0;

	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		return rc;
	rc = store_block_get(t, b->id, &cur);
	if (rc < 0 && rc != -ENOENT)
		goto fail;
	gone = rc == -ENOENT;
	rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		int moved = memcmp(b->peer[i], orig->peer[i], CR_PK_BYTES) != 0;

		if (!(miss & 1u << i) || b->lost[i] || (!moved && !orig->lost[i]))
			continue;		/* not repaired */
		fragid_of(fragid, b->id, i);
		if (gone || memcmp(cur.peer[i], orig->peer[i], CR_PK_BYTES)) {
			/* The block went or changed meanwhile: ours is a
			 * stray unless the record uses it. */
			if (gone || memcmp(cur.peer[i], b->peer[i], CR_PK_BYTES)) {
				rc = store_delq_put(t, b->peer[i], fragid,
				    b->frag_len);
				queued++;
			}
			continue;
		}
		pthread_mutex_lock(&m->lock);
		int clash = delete_conflict(m, seq, b->peer[i], fragid);
		pthread_mutex_unlock(&m->lock);
		if (clash) {
			log_info("maint: a rebuilt fragment raced its delete: "
			    "again later");
			continue;
		}
		if (moved && !sodium_is_zero(orig->peer[i], CR_PK_BYTES)) {
			rc = store_delq_put(t, orig->peer[i], fragid,
			    orig->frag_len);
			queued++;
		}
		if (rc == 0 && (rc = store_delq_del(t, b->peer[i], fragid)) ==
		    -ENOENT)
			rc = 0;
		memcpy(cur.peer[i], b->peer[i], CR_PK_BYTES);
		cur.lost[i] = 0;
		cur.audit_next[i] = b->audit_next[i];
		cur.audit_end[i] = b->audit_end[i];
		memcpy(cur.audit[i], b->audit[i], sizeof cur.audit[i]);
		merged++;
	}
	if (rc < 0)
		goto fail;
	if (gone)
		rc = store_rebuild_del(t, b->id);
	else if ((rc = store_block_put(t, &cur)) == 0) {
		if (missing_of(o, NULL, &cur, &surv) == 0)
			rc = store_rebuild_del(t, cur.id);
		else
			rc = store_rebuild_put(t, cur.id, surv);
	}
	if (rc == -ENOENT)
		rc = 0;
	if (rc < 0)
		goto fail;
	sodium_memzero(&cur, sizeof cur);
	if ((rc = store_txn_commit(t)) < 0)
		return rc;
	if (queued)
		owner__maint_kick(o);
	return merged;
fail:
	sodium_memzero(&cur, sizeof cur);
	store_txn_abort(t);
	return rc;
}

/* Drops the queue entry of a block with nothing missing (or gone). */
static int
rebuild_settle(struct owner *o, const unsigned char *id)
{
	struct store_block cur;
	struct store_txn *t;
	uint32_t surv;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		return rc;
	rc = store_block_get(t, id, &cur);
	if (rc == -ENOENT || (rc == 0 && missing_of(o, NULL, &cur, &surv) == 0))
		rc = store_rebuild_del(t, id);
	else if (rc == 0)
		rc = store_rebuild_put(t, id, surv);
	sodium_memzero(&cur, sizeof cur);
	if (rc < 0 && rc != -ENOENT) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

/* 1 when the block is whole again (or gone), 0 when not, -errno. */
static int
rebuild_one(struct owner__maint *m, const unsigned char *id)
{
	struct owner *o = m->o;
	struct store_block b, orig;
	struct store_txn *t;
	uint64_t moved = 0, seq;
	uint32_t miss = 0, surv = 0;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		return rc;
	rc = store_block_get(t, id, &b);
	store_txn_abort(t);
	if (rc == -ENOENT || (rc == 0 && (miss = missing_of(o, NULL, &b, &surv)) == 0)) {
		sodium_memzero(&b, sizeof b);
		return (rc = rebuild_settle(o, id)) < 0 ? rc : 1;
	}
	if (rc < 0)
		return rc;
	if (surv < b.k) {
		sodium_memzero(&b, sizeof b);
		return -EIO;	/* lost: keep it queued, maybe they return */
	}
	if (rate_wait(m)) {
		sodium_memzero(&b, sizeof b);
		return 0;
	}
	pthread_mutex_lock(&m->lock);
	seq = m->del_seq;
	m->st.rebuilding++;
	pthread_mutex_unlock(&m->lock);
	orig = b;
	rc = net_block_repair(o->conf.net, &b, miss, &moved);
	if (rc > 0)
		rc = repair_commit(m, &orig, &b, miss, seq);
	pthread_mutex_lock(&m->lock);
	m->st.rebuilding--;
	m->tokens -= (double)moved;
	m->st.rebuild_bytes += moved;
	m->rate_acc += (double)moved;
	if (rc > 0) {
		m->st.rebuilt_frags += rc;
		if (rc == popcount(miss))
			m->st.rebuilt_blocks++;
	} else {
		m->st.rebuild_errors++;
	}
	pthread_mutex_unlock(&m->lock);
	if (rc < 0)
		log_warn("maint: rebuild of a block (%d of %d fragments "
		    "missing): %s", popcount(miss), nfrags(&orig), strerror(-rc));
	else
		log_debug("maint: rebuilt %d of %d fragments of a block "
		    "(%" PRIu64 " bytes moved)", rc, popcount(miss), moved);
	sodium_memzero(&orig, sizeof orig);
	sodium_memzero(&b, sizeof b);
	return rc < 0 ? rc : rc == popcount(miss);
}

struct rb_worker {
	struct owner__maint *m;
	int idx;
};

static void *
rebuilder_main(void *arg)
{
	struct rb_worker *w = arg;
	struct owner__maint *m = w->m;
	unsigned char id[CR_ID_BYTES];
	struct store_txn *t;
	int rc;

	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		struct pick p = { m, w->idx, now_ms(), id, 0 };

		/* A read txn under m->lock: fine, readers never wait. */
		if (store_txn_begin(m->o->conf.store, 1, &t) == 0) {
			store_rebuild_iter(t, pick_one, &p);
			store_txn_abort(t);
		}
		if (!p.found) {
			wait_ms(m, &m->wake, 1000);
			continue;
		}
		memcpy(m->busy[w->idx], id, CR_ID_BYTES);
		m->busy_set[w->idx] = 1;
		pthread_mutex_unlock(&m->lock);

		rc = rebuild_one(m, id);

		pthread_mutex_lock(&m->lock);
		m->busy_set[w->idx] = 0;
		if (rc == 1)
			backoff_clear(m, id);
		else if (!m->stop)
			backoff_fail(m, id);
		pthread_cond_broadcast(&m->progress);
	}
	pthread_mutex_unlock(&m->lock);
	free(w);
	return NULL;
}

/* ---- auditor ------------------------------------------------------------- */

/* Stores the result of auditing fragments `done` of b (audit fields from
 * b) and marks `bad` ones lost, in one txn. */
static int
audit_commit(struct owner *o, const struct store_block *b, uint32_t done,
    uint32_t bad)
{
	struct store_block cur;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		return rc;
	if ((rc = store_block_get(t, b->id, &cur)) == 0) {
		for (int i = 0; i < nfrags(&cur); i++) {
			if (!(done & 1u << i) ||
			    memcmp(cur.peer[i], b->peer[i], CR_PK_BYTES))
				continue;
			cur.audit_next[i] = b->audit_next[i];
			cur.audit_end[i] = b->audit_end[i];
			memcpy(cur.audit[i], b->audit[i], sizeof cur.audit[i]);
		}
		rc = store_block_put(t, &cur);
		if (rc == 0 && bad)
			rc = mark_lost(o, t, b, bad);
	}
	sodium_memzero(&cur, sizeof cur);
	if (rc == -ENOENT)
		rc = 0;
	if (rc < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

/* Audits fragment i of b (b's audit fields advance). 1 good, 0 bad
 * (wrong answer or missing: lost), -errno no answer. */
static int
audit_frag(struct owner__maint *m, struct store_block *b, int i)
{
	int rc = net_frag_audit(m->o->conf.net, b, i);

	pthread_mutex_lock(&m->lock);
	if (rc == 0)
		m->st.audits_ok++;
	else if (rc == -EBADMSG || rc == -ENOENT)
		m->st.audits_failed++;
	else
		m->st.audits_error++;
	pthread_mutex_unlock(&m->lock);
	if (rc == -EBADMSG || rc == -ENOENT)
		log_warn("maint: audit of a fragment failed: %s (marked lost)",
		    rc == -ENOENT ? "supplier lacks it" : "wrong answer");
	return rc == 0 ? 1 : rc == -EBADMSG || rc == -ENOENT ? 0 : rc;
}

struct first_blk {
	struct store_block *b;
	int found;
};

static int
first_blk(void *arg, const struct store_block *b)
{
	struct first_blk *f = arg;

	*f->b = *b;
	f->found = 1;
	return 1;
}

/* Audits the fragment after (cursor, *idx), round robin. */
static void
audit_next(struct owner__maint *m, unsigned char cursor[CR_ID_BYTES], int *have,
    int *idx)
{
	struct owner *o = m->o;
	struct store_block b;
	struct first_blk f = { &b, 0 };
	struct store_txn *t;
	int rc, i;

	if (store_txn_begin(o->conf.store, 1, &t) < 0)
		return;
	rc = *have ? store_block_get(t, cursor, &b) : -ENOENT;
	if (rc == 0 && *idx + 1 < nfrags(&b)) {
		i = *idx + 1;
	} else {
		store_block_iter_after(t, *have ? cursor : NULL, first_blk, &f);
		if (!f.found && *have)
			store_block_iter_after(t, NULL, first_blk, &f);
		i = 0;
		rc = f.found ? 0 : -ENOENT;
	}
	store_txn_abort(t);
	if (rc < 0) {
		*have = 0;
		return;
	}
	memcpy(cursor, b.id, CR_ID_BYTES);
	*have = 1;
	*idx = i;
	if (i < nfrags(&b) && !b.lost[i] &&
	    net_peer_state(o->conf.net, b.peer[i]) == NET_PEER_ONLINE) {
		rc = audit_frag(m, &b, i);
		if (rc >= 0 && (rc = audit_commit(o, &b, 1u << i,
		    rc == 0 ? 1u << i : 0)) < 0)
			log_warn("maint: storing an audit: %s", strerror(-rc));
	}
	sodium_memzero(&b, sizeof b);
}

static void *
auditor_main(void *arg)
{
	struct owner__maint *m = arg;
	unsigned char cursor[CR_ID_BYTES];
	int have = 0, idx = 0;
	int64_t period, next = now_ms();

	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		int64_t now = now_ms();

		period = m->frags_total ? m->o->conf.audit_interval_ms /
		    (int64_t)m->frags_total : 1000;
		if (period < 1)
			period = 1;
		if (m->frags_total == 0 || now < next) {
			wait_ms(m, &m->wake, m->frags_total == 0 ? 1000 :
			    next - now < 1000 ? next - now : 1000);
			continue;
		}
		next = (next + period < now - 1000 ? now : next) + period;
		pthread_mutex_unlock(&m->lock);
		audit_next(m, cursor, &have, &idx);
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* ---- deleter ------------------------------------------------------------- */

struct del_entry {
	unsigned char pk[CR_PK_BYTES];
	unsigned char fragid[STORE_FRAGID_BYTES];
	int skip;
};

struct del_batch {
	struct owner *o;
	struct del_entry v[DEL_BATCH];
	int n;
	unsigned char skip[8][CR_PK_BYTES];	/* offline this round */
	int nskip;
	struct {				/* unreachable until */
		unsigned char pk[CR_PK_BYTES];
		int64_t until_ms;
	} down[16];
	int64_t now;
};

static int
del_collect(void *arg, const unsigned char *pk, const unsigned char *fragid,
    uint32_t bytes)
{
	struct del_batch *d = arg;
	int st;

	for (int i = 0; i < d->nskip; i++)
		if (memcmp(d->skip[i], pk, CR_PK_BYTES) == 0)
			return 0;
	for (int i = 0; i < 16; i++)
		if (d->down[i].until_ms > d->now &&
		    memcmp(d->down[i].pk, pk, CR_PK_BYTES) == 0)
			return 0;
	st = net_peer_state(d->o->conf.net, pk);
	/* A fired supplier may still be connected: give its space back. */
	if (st != NET_PEER_ONLINE && st != NET_PEER_DEAD) {
		if (d->nskip < 8)
			memcpy(d->skip[d->nskip++], pk, CR_PK_BYTES);
		return 0;
	}
	memcpy(d->v[d->n].pk, pk, CR_PK_BYTES);
	memcpy(d->v[d->n].fragid, fragid, STORE_FRAGID_BYTES);
	d->v[d->n].skip = 0;
	return ++d->n == DEL_BATCH;
}

/* Deletes one queued fragment unless a record uses it. 1 done (deleted
 * or not needed), -EAGAIN supplier unreachable, -errno. */
static int
delete_one(struct owner__maint *m, const struct del_entry *e)
{
	struct owner *o = m->o;
	struct store_block cur;
	struct store_txn *t;
	struct dlog *d;
	void *note;
	int rc, idx = e->fragid[CR_ID_BYTES], live;

	if ((note = owner__data_note(o, e->fragid)) == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&m->lock);
	d = &m->ring[++m->del_seq % RING];
	memcpy(d->pk, e->pk, CR_PK_BYTES);
	memcpy(d->fragid, e->fragid, STORE_FRAGID_BYTES);
	d->seq = m->del_seq;
	d->inflight = 1;
	pthread_mutex_unlock(&m->lock);

	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		goto out;
	rc = store_block_get(t, e->fragid, &cur);
	live = rc == 0 && idx < CR_EC_MAX &&
	    memcmp(cur.peer[idx], e->pk, CR_PK_BYTES) == 0;
	sodium_memzero(&cur, sizeof cur);
	if (rc < 0 && rc != -ENOENT) {
		store_txn_abort(t);
		goto out;
	}
	if (live) {
		/* Used again (the same bytes stored since): keep it. */
		if ((rc = store_delq_del(t, e->pk, e->fragid)) < 0)
			store_txn_abort(t);
		else if ((rc = store_txn_commit(t)) == 0)
			rc = 1;
		goto out;
	}
	store_txn_abort(t);
	rc = net_frag_delete(o->conf.net, e->pk, e->fragid);
	pthread_mutex_lock(&m->lock);
	d->inflight = 0;
	pthread_mutex_unlock(&m->lock);
	owner__data_unnote(o, note, 1);
	note = NULL;
	if (rc < 0) {
		log_debug("maint: delete of a fragment: %s", strerror(-rc));
		return rc;
	}
	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		return rc;
	if ((rc = store_delq_del(t, e->pk, e->fragid)) < 0 && rc != -ENOENT) {
		store_txn_abort(t);
		return rc;
	}
	if ((rc = store_txn_commit(t)) < 0)
		return rc;
	pthread_mutex_lock(&m->lock);
	m->st.deleted++;
	pthread_mutex_unlock(&m->lock);
	return 1;
out:
	pthread_mutex_lock(&m->lock);
	d->inflight = 0;
	pthread_mutex_unlock(&m->lock);
	if (note != NULL)
		owner__data_unnote(o, note, 0);
	return rc;
}

static void *
deleter_main(void *arg)
{
	struct owner__maint *m = arg;
	struct del_batch *d = calloc(1, sizeof *d);
	struct store_txn *t;
	int done, rc;

	if (d == NULL)
		return NULL;
	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		m->del_now = 0;
		pthread_mutex_unlock(&m->lock);
		d->o = m->o;
		d->n = d->nskip = 0;
		d->now = now_ms();
		done = 0;
		if (store_txn_begin(m->o->conf.store, 1, &t) == 0) {
			if (!owner__index_older(t))
				store_delq_iter_due(t, owner__index_seq(t),
				    del_collect, d);
			store_txn_abort(t);
		}
		for (int i = 0; i < d->n; i++) {
			pthread_mutex_lock(&m->lock);
			int stop = m->stop;
			pthread_mutex_unlock(&m->lock);
			if (stop)
				break;
			if (d->v[i].skip)
				continue;
			rc = delete_one(m, &d->v[i]);
			done += rc > 0;
			if (rc >= 0)
				continue;
			/* Unreachable or failing: skip its entries for a
			 * while. */
			for (int j = i + 1; j < d->n; j++)
				if (memcmp(d->v[j].pk, d->v[i].pk, CR_PK_BYTES) == 0)
					d->v[j].skip = 1;
			int slot = 0;
			for (int j = 1; j < 16; j++)
				if (d->down[j].until_ms < d->down[slot].until_ms)
					slot = j;
			memcpy(d->down[slot].pk, d->v[i].pk, CR_PK_BYTES);
			d->down[slot].until_ms = now_ms() + DEL_RETRY_MS;
		}
		pthread_mutex_lock(&m->lock);
		if (done == 0 && !m->del_now)
			wait_ms(m, &m->wake, DEL_RETRY_MS);
	}
	pthread_mutex_unlock(&m->lock);
	free(d);
	return NULL;
}

/* ---- status -------------------------------------------------------------- */

void
owner__maint_stats(struct owner *o, struct owner_maint_stats *out)
{
	struct owner__maint *m = o->maint;
	struct store_txn *t;
	int64_t now = now_ms();

	memset(out, 0, sizeof *out);
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	if (now - m->rate_ms >= 2000) {
		m->st.rebuild_rate = m->rate_acc * 1000.0 / (double)(now -
		    m->rate_ms);
		m->rate_acc = 0;
		m->rate_ms = now;
	}
	*out = m->st;
	pthread_mutex_unlock(&m->lock);
	out->audit_interval_ms = o->conf.audit_interval_ms;
	out->rebuild_rate_max = o->conf.rebuild_rate;
	if (store_txn_begin(o->conf.store, 1, &t) == 0) {
		store_rebuild_count(t, &out->rebuild_queued);
		store_delq_stats(t, &out->delq_count, &out->delq_bytes);
		store_txn_abort(t);
	}
}

/* ---- redundancy attribute ------------------------------------------------ */

struct red_ctx {
	struct owner *o;
	struct net_peer_snap *snap;
	struct store_txn *t;
	int min, n, blocks;
};

static int
red_one(void *arg, uint64_t bno, const unsigned char *id)
{
	struct red_ctx *r = arg;
	struct store_block b;
	uint32_t surv;

	if (store_block_get(r->t, id, &b) < 0)
		return 0;
	missing_of(r->o, r->snap, &b, &surv);
	if (r->blocks++ == 0 || (int)surv < r->min) {
		r->min = (int)surv;
		r->n = nfrags(&b);
	}
	sodium_memzero(&b, sizeof b);
	return 0;
}

static int
jrnl_any(void *arg, uint64_t ino, uint64_t bno)
{
	return 1;
}

int
owner_redundancy(struct owner *o, uint64_t ino, char *buf, size_t size)
{
	struct red_ctx r = { o, NULL, NULL, 0, 0, 0 };
	int rc, pending, n;

	if ((rc = store_txn_begin(o->conf.store, 1, &r.t)) < 0)
		return rc;
	peer_snap(o, &r.snap);
	rc = store_extent_iter(r.t, ino, 0, red_one, &r);
	pending = rc == 0 ? store_jrnl_iter(r.t, ino, jrnl_any, NULL) : 0;
	store_txn_abort(r.t);
	net_peer_snap_free(r.snap);
	if (rc < 0)
		return rc;
	if (r.blocks == 0 && pending > 0)
		n = snprintf(buf, size, "pending");
	else if (r.blocks == 0)	/* empty, holes, or a tiny file inline
				 * in the index: coded like a block */
		n = snprintf(buf, size, "%d/%d", o->conf.ec_k + o->conf.ec_m,
		    o->conf.ec_k + o->conf.ec_m);
	else if (r.min < r.n)
		n = snprintf(buf, size, "%d/%d rebuilding", r.min, r.n);
	else
		n = snprintf(buf, size, "%d/%d", r.n, r.n);
	return n < 0 || (size_t)n >= size ? -ERANGE : n;
}

/* ---- peerfs check -------------------------------------------------------- */

struct chk_peer {
	unsigned char pk[CR_PK_BYTES];
	uint64_t good, bad, missing, unreachable;
};

struct check {
	struct owner *o;
	struct net_peer_snap *snap;
	uint64_t blocks, audited, good, bad, missing, unreachable;
	uint64_t full, degraded, lost;
	struct chk_peer p[MAX_PEERS];
	int np;
	struct rq_vec ids;
};

static struct chk_peer *
chk_peer(struct check *c, const unsigned char *pk)
{
	for (int i = 0; i < c->np; i++)
		if (memcmp(c->p[i].pk, pk, CR_PK_BYTES) == 0)
			return &c->p[i];
	if (c->np == MAX_PEERS)
		return &c->p[MAX_PEERS - 1];	/* lumped together */
	memcpy(c->p[c->np].pk, pk, CR_PK_BYTES);
	return &c->p[c->np++];
}

static int
chk_collect(void *arg, const struct store_block *b)
{
	struct check *c = arg;

	return rq_push(&c->ids, b->id, 0);
}

static int
chk_count(void *arg, const struct store_block *b)
{
	struct check *c = arg;
	uint32_t surv;

	if (missing_of(c->o, c->snap, b, &surv) == 0)
		c->full++;
	else if (surv >= b->k)
		c->degraded++;
	else
		c->lost++;
	return 0;
}

static int
check_tally(struct owner *o, struct check *c)
{
	struct store_txn *t;
	int rc;

	c->o = o;
	c->full = c->degraded = c->lost = 0;
	peer_snap(o, &c->snap);
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) == 0) {
		rc = store_block_iter(t, chk_count, c);
		store_txn_abort(t);
	}
	net_peer_snap_free(c->snap);
	c->snap = NULL;
	return rc;
}

static void
check_block(struct owner__maint *m, struct check *c, const unsigned char *id)
{
	struct owner *o = m->o;
	struct store_block b;
	struct store_txn *t;
	uint32_t done = 0, bad = 0;
	int rc;

	if (store_txn_begin(o->conf.store, 1, &t) < 0)
		return;
	rc = store_block_get(t, id, &b);
	store_txn_abort(t);
	if (rc < 0)
		return;		/* deleted meanwhile */
	c->blocks++;
	for (int i = 0; i < nfrags(&b); i++) {
		struct chk_peer *p = chk_peer(c, b.peer[i]);
		int st = net_peer_state(o->conf.net, b.peer[i]);

		if (b.lost[i] || st == NET_PEER_DEAD) {
			c->missing++;
			p->missing++;
			continue;
		}
		if (st != NET_PEER_ONLINE) {
			c->unreachable++;
			p->unreachable++;
			continue;
		}
		c->audited++;
		rc = audit_frag(m, &b, i);
		if (rc < 0) {
			c->unreachable++;
			p->unreachable++;
			continue;
		}
		done |= 1u << i;
		if (rc == 1) {
			c->good++;
			p->good++;
		} else {
			bad |= 1u << i;
			c->bad++;
			p->bad++;
		}
	}
	if (done && (rc = audit_commit(o, &b, done, bad)) < 0)
		log_warn("maint: storing audits: %s", strerror(-rc));
	sodium_memzero(&b, sizeof b);
}

/* 1 while some queued block has not failed since `since` (m->lock held
 * by the caller around the read txn). */
struct pending_ctx {
	struct owner__maint *m;
	int64_t since;
	int pending;
};

static int
pending_one(void *arg, const unsigned char *id, uint32_t surviving)
{
	struct pending_ctx *p = arg;
	struct backoff *b = backoff_find(p->m, id);

	if (b == NULL || b->failed_ms < p->since) {
		p->pending = 1;
		return 1;
	}
	return 0;
}

static void
check_report(struct owner *o, struct check *c, uint64_t repaired, int timed_out)
{
	struct owner__maint *m = o->maint;
	struct net_peer_info *info = calloc(MAX_PEERS, sizeof *info);
	int ninfo = info ? net_peers(o->conf.net, info, MAX_PEERS, 0) : 0;
	size_t cap = 4096 + (size_t)c->np * 160, len = 0;
	char *r = malloc(cap);

	if (ninfo > MAX_PEERS)
		ninfo = MAX_PEERS;
	if (r == NULL) {
		free(info);
		return;
	}
#define OUT(...) do { int n_ = snprintf(r + len, cap - len, __VA_ARGS__); \
	if (n_ > 0) len = len + n_ < cap ? len + n_ : cap - 1; } while (0)
	OUT("blocks checked: %" PRIu64 "\n", c->blocks);
	OUT("fragments audited: %" PRIu64 " (%" PRIu64 " good, %" PRIu64
	    " bad)\n", c->audited, c->good, c->bad);
	OUT("fragments missing (lost or on dead suppliers): %" PRIu64 "\n",
	    c->missing);
	OUT("fragments unreachable (supplier offline or silent): %" PRIu64
	    "\n", c->unreachable);
	for (int i = 0; i < c->np; i++) {
		const struct chk_peer *p = &c->p[i];
		const char *addr = "?";
		char hex[2 * CR_PK_BYTES + 1];

		if (!p->bad && !p->missing && !p->unreachable)
			continue;
		for (int j = 0; j < ninfo; j++)
			if (memcmp(info[j].pk, p->pk, CR_PK_BYTES) == 0)
				addr = info[j].addr;
		hex_encode(hex, p->pk, CR_PK_BYTES);
		hex[16] = '\0';
		OUT("  supplier %s %s: %" PRIu64 " bad, %" PRIu64 " missing, %"
		    PRIu64 " unreachable, %" PRIu64 " good\n", hex, addr,
		    p->bad, p->missing, p->unreachable, p->good);
	}
	OUT("fragments rebuilt: %" PRIu64 "\n", repaired);
	OUT("blocks: %" PRIu64 " at full redundancy, %" PRIu64 " degraded, %"
	    PRIu64 " lost\n", c->full, c->degraded, c->lost);
	if (timed_out)
		OUT("rebuild still running (gave up waiting)\n");
	OUT("result: %s\n", c->degraded || c->lost ? "DEGRADED" :
	    "full redundancy");
#undef OUT
	pthread_mutex_lock(&m->lock);
	free(m->report);
	m->report = r;
	pthread_mutex_unlock(&m->lock);
	free(info);
}

int
owner_check(struct owner *o)
{
	struct owner__maint *m = o->maint;
	struct check *c;
	struct store_txn *t;
	uint64_t frags0;
	int64_t start, deadline;
	int rc, timed_out = 0;

	if (m == NULL || o->conf.net == NULL)
		return -ENOTCONN;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&m->check_lock);
	pthread_mutex_lock(&m->lock);
	frags0 = m->st.rebuilt_frags;
	pthread_mutex_unlock(&m->lock);
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) == 0) {
		rc = store_block_iter(t, chk_collect, c);
		store_txn_abort(t);
	}
	if (rc < 0)
		goto out;
	log_info("maint: check: auditing %zu blocks", c->ids.n);
	for (size_t i = 0; i < c->ids.n; i++)
		check_block(m, c, c->ids.v[i].id);

	/* Queue what was found, then wait for the rebuilds: every queued
	 * block whole again, or failed once since now (lost for good, or
	 * no supplier to take it). */
	scan(m);
	start = now_ms();
	deadline = start + o->conf.sync_timeout_ms;
	pthread_mutex_lock(&m->lock);
	for (struct backoff *b = m->backoff; b; b = b->next)
		b->retry_ms = 0;
	pthread_cond_broadcast(&m->wake);
	for (;;) {
		struct pending_ctx p = { m, start, 0 };

		if (store_txn_begin(o->conf.store, 1, &t) == 0) {
			store_rebuild_iter(t, pending_one, &p);
			store_txn_abort(t);
		}
		if (!p.pending || m->stop)
			break;
		if (now_ms() >= deadline) {
			timed_out = 1;
			break;
		}
		wait_ms(m, &m->progress, 500);
	}
	pthread_mutex_unlock(&m->lock);
	if ((rc = check_tally(o, c)) < 0)
		goto out;
	pthread_mutex_lock(&m->lock);
	frags0 = m->st.rebuilt_frags - frags0;
	pthread_mutex_unlock(&m->lock);
	check_report(o, c, frags0, timed_out);
	log_info("maint: check: %" PRIu64 " fragments audited, %" PRIu64
	    " bad, %" PRIu64 " missing, %" PRIu64 " rebuilt; %" PRIu64
	    " blocks degraded, %" PRIu64 " lost", c->audited, c->bad,
	    c->missing, frags0, c->degraded, c->lost);
out:
	pthread_mutex_unlock(&m->check_lock);
	free(c->ids.v);
	free(c);
	return rc;
}

int
owner_check_report(struct owner *o, char **val, size_t *len)
{
	struct owner__maint *m = o->maint;
	const char *none = "no check has run in this mount\n";
	const char *r;

	if (m == NULL)
		return -ENODATA;
	pthread_mutex_lock(&m->lock);
	r = m->report ? m->report : none;
	*val = strdup(r);
	pthread_mutex_unlock(&m->lock);
	if (*val == NULL)
		return -ENOMEM;
	*len = strlen(*val);
	return 0;
}

/* ---- life cycle ---------------------------------------------------------- */

int
owner__maint_init(struct owner *o)
{
	struct owner__maint *m;
	int rc;

	if (o->conf.rebuild_jobs <= 0)
		o->conf.rebuild_jobs = 2;
	if (o->conf.rebuild_jobs > MAX_JOBS)
		o->conf.rebuild_jobs = MAX_JOBS;
	if (o->conf.rebuild_rate == 0)
		o->conf.rebuild_rate = DEFAULT_RATE;
	if (o->conf.audit_interval_ms <= 0)
		o->conf.audit_interval_ms = DEFAULT_AUDIT_MS;
	if ((m = calloc(1, sizeof *m)) == NULL)
		return -ENOMEM;
	m->o = o;
	m->njobs = o->conf.rebuild_jobs;
	m->busy = calloc(m->njobs, sizeof *m->busy);
	m->busy_set = calloc(m->njobs, sizeof *m->busy_set);
	m->rb = calloc(m->njobs, sizeof *m->rb);
	if (!m->busy || !m->busy_set || !m->rb) {
		free(m->busy);
		free(m->busy_set);
		free(m->rb);
		free(m);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->check_lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	pthread_cond_init(&m->progress, NULL);
	m->tok_ms = m->rate_ms = now_ms();
	m->scan_now = 1;
	o->maint = m;
	/* Without a network (tests of the metadata) nothing runs: the
	 * queues just wait in the store. */
	if (o->conf.net == NULL)
		return 0;
	if ((rc = -pthread_create(&m->scanner, NULL, scanner_main, m)) < 0)
		goto fail;
	m->started = 1;
	for (int i = 0; i < m->njobs; i++) {
		struct rb_worker *w = malloc(sizeof *w);

		if (w == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		*w = (struct rb_worker){ m, i };
		if ((rc = -pthread_create(&m->rb[i], NULL, rebuilder_main,
		    w)) < 0) {
			free(w);
			goto fail;
		}
		m->started++;
	}
	if ((rc = -pthread_create(&m->auditor, NULL, auditor_main, m)) < 0)
		goto fail;
	m->started++;
	if ((rc = -pthread_create(&m->deleter, NULL, deleter_main, m)) < 0)
		goto fail;
	m->started++;
	return 0;
fail:
	log_error("maint: cannot start threads: %s", strerror(-rc));
	owner__maint_destroy(o);
	return rc;
}

void
owner__maint_destroy(struct owner *o)
{
	struct owner__maint *m = o->maint;
	int n;

	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = 1;
	pthread_cond_broadcast(&m->wake);
	pthread_cond_broadcast(&m->progress);
	pthread_mutex_unlock(&m->lock);
	/* Joined in start order: scanner, rebuilders, auditor, deleter. */
	n = m->started;
	if (n-- > 0)
		pthread_join(m->scanner, NULL);
	for (int i = 0; i < m->njobs && n > 0; i++, n--)
		pthread_join(m->rb[i], NULL);
	if (n-- > 0)
		pthread_join(m->auditor, NULL);
	if (n-- > 0)
		pthread_join(m->deleter, NULL);
	while (m->backoff) {
		struct backoff *b = m->backoff;

		m->backoff = b->next;
		free(b);
	}
	pthread_cond_destroy(&m->wake);
	pthread_cond_destroy(&m->progress);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->check_lock);
	free(m->report);
	free(m->busy);
	free(m->busy_set);
	free(m->rb);
	free(m);
	o->maint = NULL;
}
