/* owner/rebuild.c - keeping every block at full redundancy while mounted.
 * Two kinds of threads over the rebuild queue kept in the store (so an
 * unmount or a crash loses none of its work):
 *
 *   rebuild-scan  every SCAN_MS, and at once when a supplier turns DEAD:
 *                 queues (store_rebuild_put) every block with a fragment
 *                 marked lost, never placed, or held by a DEAD supplier;
 *                 it also counts the fragments (the auditor's pace).
 *   rebuild       conf.rebuild_jobs workers: the most urgent queued block
 *                 not held by another worker, net_block_repair, then one
 *                 write txn merges only the repaired fragments into the
 *                 record as it is now and queues the old copies for
 *                 deletion. Bytes moved are bounded by a token bucket
 *                 (conf.rebuild_rate).
 *
 * A rebuilt fragment may race a delete of the same fragment id on the
 * same supplier: the guard (owner/refs.c) says when not to merge it.
 * Lock order: LMDB write txn -> r->lock (never a txn under r->lock, but
 * read txns under it are fine: readers never wait); no txn is held across
 * a network call. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include <sodium.h>

#include "log.h"
#include "owner/internal.h"
#include "worker.h"

#define SCAN_MS		5000
#define POLL_MS		500	/* supplier states */
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	60000
#define IDLE_MS		1000	/* rebuild workers look again */
#define MAX_PEERS	256

/* A queued block whose last rebuild failed: not before retry_ms. */
struct backoff {
	unsigned char id[CR_ID_BYTES];
	int64_t retry_ms, failed_ms;
	int ms;
	struct backoff *next;
};

struct peer_seen {
	unsigned char pk[CR_PK_BYTES];
	int state;
};

struct owner__rebuild {
	struct worker *scanner, *workers;
	/* The scanner's own: supplier states at its last poll. */
	struct peer_seen *seen;
	struct net_peer_info *info;
	int nseen;
	int64_t next_scan;

	pthread_mutex_t lock;		/* protects everything below */
	pthread_cond_t progress;	/* a rebuild attempt ended, or stop */
	int stop;
	int scan_now;
	int njobs;
	unsigned char (*busy)[CR_ID_BYTES];	/* per worker */
	int *busy_set;
	struct backoff *backoff;
	double tokens;			/* rebuild bytes we may move now */
	int64_t tok_ms;
	uint64_t frags_total;		/* fragments, at the last scan */
	uint64_t rebuilt_blocks, rebuilt_frags, rebuild_bytes, errors;
	int rebuilding;			/* workers busy now */
	double rate, rate_acc;		/* bytes/s; bytes since rate_ms */
	int64_t rate_ms;
};

/* ---- what a block misses ---------------------------------------------------- */

int
owner__nfrags(const struct store_block *b)
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

void
owner__peer_snap(struct owner *o, struct net_peer_snap **snap)
{
	*snap = NULL;
	if (o->conf.net != NULL && net_peer_snap_take(o->conf.net, snap) < 0)
		*snap = NULL;
}

uint32_t
owner_rebuild_missing(int n, const uint8_t *lost, const uint8_t *placed,
    const uint8_t *dead, uint32_t *surviving)
{
	uint32_t miss = 0;

	for (int i = 0; i < n; i++)
		if (lost[i] || !placed[i] || dead[i])
			miss |= 1u << i;
	if (surviving)
		*surviving = (uint32_t)(n - __builtin_popcount(miss));
	return miss;
}

/* owner__missing, and in *dbl the doubled-up part of what it returns.
 * A doubled-up fragment counts only while a supplier holding none of the
 * block could take it: one online, and, while uploads of ours are under
 * way, one that keeps up with them. The laggard a fragment was doubled
 * up for is often the only such supplier; spreading onto it during a
 * burst of writes would queue megabytes on its slow link, ahead of the
 * heads that each `sync` waits for there, and fetch the copies from the
 * very suppliers the writes go to. The block survives any one
 * supplier's loss meanwhile; the spread starts once the uploads are done
 * (umount waits for it) or the laggard has kept up for a minute. */
static uint32_t
block_missing(struct owner *o, const struct net_peer_snap *snap,
    const struct store_block *b, uint32_t *surviving, uint32_t *dbl)
{
	uint8_t placed[CR_EC_MAX], dead[CR_EC_MAX];
	int n = owner__nfrags(b);
	uint32_t miss;

	for (int i = 0; i < n; i++) {
		placed[i] = !sodium_is_zero(b->peer[i], CR_PK_BYTES);
		dead[i] = placed[i] && is_dead(o, snap, b->peer[i]);
	}
	miss = owner_rebuild_missing(n, b->lost, placed, dead, surviving);
	*dbl = net_place_doubled(n, b->peer, ~miss, ~miss);
	if (*dbl && (!snap || net_peer_snap_online_except(snap, b->peer, n,
	    owner__dirty_busy(o)) == 0))
		*dbl = 0;
	return miss | *dbl;
}

uint32_t
owner__missing(struct owner *o, const struct net_peer_snap *snap,
    const struct store_block *b, uint32_t *surviving)
{
	uint32_t dbl;

	return block_missing(o, snap, b, surviving, &dbl);
}

/* ---- marking fragments lost ---------------------------------------------- */

int
owner__mark_lost(struct owner *o, struct store_txn *t,
    const struct net_peer_snap *snap, const struct store_block *b,
    uint32_t bad)
{
	struct store_block cur;
	uint32_t surv;
	int rc, changed = 0;

	if ((rc = store_block_get(t, b->id, &cur)) < 0)
		return rc == -ENOENT ? 0 : rc;
	for (int i = 0; i < owner__nfrags(&cur); i++)
		if ((bad & 1u << i) && !cur.lost[i] &&
		    memcmp(cur.peer[i], b->peer[i], CR_PK_BYTES) == 0) {
			cur.lost[i] = 1;
			changed = 1;
		}
	if (changed && (rc = store_block_put(t, &cur)) == 0 &&
	    owner__missing(o, snap, &cur, &surv) != 0)
		rc = store_rebuild_put(t, cur.id, surv);
	sodium_memzero(&cur, sizeof cur);
	return rc;
}

void
owner__rebuild_report_bad(struct owner *o, const struct store_block *b,
    uint32_t bad)
{
	struct net_peer_snap *snap;
	struct store_txn *t;
	int rc;

	owner__peer_snap(o, &snap);
	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		goto out;
	if ((rc = owner__mark_lost(o, t, snap, b, bad)) < 0)
		store_txn_abort(t);
	else
		rc = store_txn_commit(t);
out:
	net_peer_snap_free(snap);
	if (rc < 0)
		log_warn("maint: cannot mark bad fragments lost: %s",
		    strerror(-rc));
	else
		log_warn("maint: %d corrupt fragment(s) of a block: queued "
		    "for rebuild", __builtin_popcount(bad));
	if (o->rebuild != NULL)
		worker_kick(o->rebuild->workers);
}

/* ---- the scanner ------------------------------------------------------------- */

struct rq_entry {
	unsigned char id[CR_ID_BYTES];
	uint32_t surviving;
};

static int
rq_collect(void *arg, const unsigned char *id, uint32_t surviving)
{
	struct rq_entry e = { .surviving = surviving };

	memcpy(e.id, id, CR_ID_BYTES);
	return vec_push(arg, &e, sizeof e);
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
	struct vec queued;		/* rq_entry, sorted by id */
	struct vec todo;		/* rq_entry */
	uint64_t frags;
};

static int
scan_one(void *arg, const struct store_block *b)
{
	struct scan_ctx *sc = arg;
	struct rq_entry key, *hit;
	uint32_t surv;

	sc->frags += owner__nfrags(b);
	if (owner__missing(sc->o, sc->snap, b, &surv) == 0)
		return 0;
	memcpy(key.id, b->id, CR_ID_BYTES);
	hit = sc->queued.n ? bsearch(&key, sc->queued.p, sc->queued.n,
	    sizeof key, rq_cmp) : NULL;
	if (hit != NULL && hit->surviving == surv)
		return 0;
	return rq_collect(&sc->todo, b->id, surv);
}

int
owner__rebuild_scan(struct owner *o)
{
	struct owner__rebuild *r = o->rebuild;
	struct scan_ctx sc = { o, NULL, { 0 }, { 0 }, 0 };
	struct rq_entry *todo;
	struct store_txn *t;
	size_t ntodo;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		return rc;
	/* A snapshot of the supplier states: else one trip to the net loop
	 * per fragment, which on a mount of 20,000 blocks took 6% of its
	 * CPU every SCAN_MS. */
	owner__peer_snap(o, &sc.snap);
	rc = store_rebuild_iter(t, rq_collect, &sc.queued);
	if (rc == 0) {
		if (sc.queued.n > 0)	/* p is NULL when empty */
			qsort(sc.queued.p, sc.queued.n,
			    sizeof(struct rq_entry), rq_cmp);
		rc = store_block_iter(t, scan_one, &sc);
	}
	store_txn_abort(t);
	net_peer_snap_free(sc.snap);
	todo = sc.todo.p;
	if (rc == 0 && sc.todo.n > 0 &&
	    (rc = store_txn_begin(o->conf.store, 0, &t)) == 0) {
		for (size_t i = 0; rc == 0 && i < sc.todo.n; i++)
			rc = store_rebuild_put(t, todo[i].id,
			    todo[i].surviving);
		if (rc < 0)
			store_txn_abort(t);
		else
			rc = store_txn_commit(t);
	}
	pthread_mutex_lock(&r->lock);
	if (rc == 0)
		r->frags_total = sc.frags;
	pthread_mutex_unlock(&r->lock);
	if (sc.todo.n > 0)
		worker_kick(r->workers);
	if (rc == 0 && sc.todo.n > 0)
		log_info("maint: %zu block(s) queued for rebuild", sc.todo.n);
	ntodo = sc.todo.n;	/* vec_release() zeroes it */
	vec_release(&sc.queued);
	vec_release(&sc.todo);
	if (rc < 0)
		log_warn("maint: scan: %s", strerror(-rc));
	return rc < 0 ? rc : (int)ntodo;
}

/* Compares supplier states with the last poll: 1 when one turned DEAD. */
static int
poll_peers(struct owner *o, struct owner__rebuild *r)
{
	int n = net_peers(o->conf.net, r->info, MAX_PEERS, 0), dead = 0,
	    back = 0;

	if (n > MAX_PEERS)
		n = MAX_PEERS;
	for (int i = 0; i < n; i++) {
		const struct net_peer_info *p = &r->info[i];
		int j, was = -1;

		for (j = 0; j < r->nseen; j++)
			if (memcmp(r->seen[j].pk, p->pk, CR_PK_BYTES) == 0) {
				was = r->seen[j].state;
				break;
			}
		if (p->state == NET_PEER_DEAD && was != NET_PEER_DEAD) {
			log_warn("maint: supplier %s is dead: rebuilding its "
			    "fragments elsewhere", p->addr);
			dead = 1;
		}
		if (p->state == NET_PEER_ONLINE && was != NET_PEER_ONLINE)
			back = 1;
		if (j == r->nseen && r->nseen < MAX_PEERS)
			r->nseen++;
		memcpy(r->seen[j].pk, p->pk, CR_PK_BYTES);
		r->seen[j].state = p->state;
	}
	if (back) {
		/* Failed rebuilds may find a supplier now; deletes too. */
		owner__rebuild_retry_all(o);
		owner__delete_kick(o);
	}
	return dead;
}

static int64_t
scanner_pass(void *arg, int idx)
{
	struct owner *o = arg;
	struct owner__rebuild *r = o->rebuild;
	int now_scan;

	if (!owner__writable(o))	/* the lease holder rebuilds */
		return POLL_MS;
	now_scan = poll_peers(o, r);

	pthread_mutex_lock(&r->lock);
	now_scan |= r->scan_now;
	r->scan_now = 0;
	pthread_mutex_unlock(&r->lock);
	if (now_scan || worker_now_ms() >= r->next_scan) {
		owner__rebuild_scan(o);
		r->next_scan = worker_now_ms() + SCAN_MS;
	}
	return POLL_MS;
}

/* ---- the workers ------------------------------------------------------------ */

static struct backoff *
backoff_find(struct owner__rebuild *r, const unsigned char *id)
{
	for (struct backoff *b = r->backoff; b; b = b->next)
		if (memcmp(b->id, id, CR_ID_BYTES) == 0)
			return b;
	return NULL;
}

static void
backoff_clear(struct owner__rebuild *r, const unsigned char *id)
{
	for (struct backoff **pp = &r->backoff, *b; (b = *pp); pp = &b->next)
		if (memcmp(b->id, id, CR_ID_BYTES) == 0) {
			*pp = b->next;
			free(b);
			return;
		}
}

static void
backoff_fail(struct owner__rebuild *r, const unsigned char *id)
{
	struct backoff *b = backoff_find(r, id);

	if (b == NULL) {
		if ((b = calloc(1, sizeof *b)) == NULL)
			return;
		memcpy(b->id, id, CR_ID_BYTES);
		b->next = r->backoff;
		r->backoff = b;
	}
	b->ms = b->ms ? b->ms * 2 : BACKOFF_MIN_MS;
	if (b->ms > BACKOFF_MAX_MS)
		b->ms = BACKOFF_MAX_MS;
	b->failed_ms = worker_now_ms();
	b->retry_ms = b->failed_ms + b->ms;
}

void
owner__rebuild_retry_all(struct owner *o)
{
	struct owner__rebuild *r = o->rebuild;

	pthread_mutex_lock(&r->lock);
	for (struct backoff *b = r->backoff; b; b = b->next)
		b->retry_ms = 0;
	pthread_mutex_unlock(&r->lock);
	worker_kick(r->workers);
}

struct pick {
	struct owner__rebuild *r;
	int self;
	int64_t now;
	unsigned char *id;
	int found;
};

/* r->lock held by the caller around the read txn. */
static int
pick_one(void *arg, const unsigned char *id, uint32_t surviving)
{
	struct pick *p = arg;
	struct owner__rebuild *r = p->r;
	struct backoff *b;

	for (int i = 0; i < r->njobs; i++)
		if (i != p->self && r->busy_set[i] &&
		    memcmp(r->busy[i], id, CR_ID_BYTES) == 0)
			return 0;
	if ((b = backoff_find(r, id)) != NULL && b->retry_ms > p->now)
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
rate_wait(struct owner *o, struct owner__rebuild *r)
{
	double rate = (double)o->conf.rebuild_rate;
	int64_t now, wait;

	for (;;) {
		pthread_mutex_lock(&r->lock);
		now = worker_now_ms();
		r->tokens += rate * (double)(now - r->tok_ms) / 1000.0;
		r->tok_ms = now;
		if (r->tokens > rate)
			r->tokens = rate;
		wait = r->tokens > 0 ? 0 :
		    1 + (int64_t)(-r->tokens * 1000.0 / rate);
		pthread_mutex_unlock(&r->lock);
		if (wait == 0)
			return 0;
		if (worker_sleep(r->workers, wait) < 0)
			return 1;
	}
}

/* In one write txn: merges the fragments that net_block_repair placed
 * (b, from orig) into the record as it is now. Returns the number merged
 * or -errno. */
static int
repair_commit(struct owner *o, const struct store_block *orig,
    const struct store_block *b, uint32_t miss, uint64_t seq)
{
	unsigned char fragid[STORE_FRAGID_BYTES];
	struct net_peer_snap *snap;
	struct store_block cur;
	struct store_txn *t;
	uint32_t surv;
	int rc, merged = 0, gone, n = owner__nfrags(b), queued = 0;

	owner__peer_snap(o, &snap);		/* before the txn: owner__missing */
	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0) {
		net_peer_snap_free(snap);
		return rc;
	}
	rc = store_block_get(t, b->id, &cur);
	if (rc < 0 && rc != -ENOENT)
		goto fail;
	gone = rc == -ENOENT;
	rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		int moved = memcmp(b->peer[i], orig->peer[i], CR_PK_BYTES) != 0;

		if (!(miss & 1u << i) || b->lost[i] || (!moved && !orig->lost[i]))
			continue;		/* not repaired */
		memcpy(fragid, b->id, CR_ID_BYTES);
		fragid[CR_ID_BYTES] = (unsigned char)i;
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
		if (owner__guard_rebuild_conflict(o, seq, b->peer[i], fragid)) {
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
		if (owner__missing(o, snap, &cur, &surv) == 0)
			rc = store_rebuild_del(t, cur.id);
		else
			rc = store_rebuild_put(t, cur.id, surv);
	}
	if (rc == -ENOENT)
		rc = 0;
	if (rc < 0)
		goto fail;
	sodium_memzero(&cur, sizeof cur);
	net_peer_snap_free(snap);
	if ((rc = store_txn_commit(t)) < 0)
		return rc;
	if (queued)
		owner__delete_kick(o);
	return merged;
fail:
	sodium_memzero(&cur, sizeof cur);
	net_peer_snap_free(snap);
	store_txn_abort(t);
	return rc;
}

/* Drops the queue entry of a block with nothing missing (or gone). */
static int
rebuild_settle(struct owner *o, const unsigned char *id)
{
	struct net_peer_snap *snap;
	struct store_block cur;
	struct store_txn *t;
	uint32_t surv;
	int rc;

	owner__peer_snap(o, &snap);		/* before the txn: owner__missing */
	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0) {
		net_peer_snap_free(snap);
		return rc;
	}
	rc = store_block_get(t, id, &cur);
	if (rc == -ENOENT ||
	    (rc == 0 && owner__missing(o, snap, &cur, &surv) == 0))
		rc = store_rebuild_del(t, id);
	else if (rc == 0)
		rc = store_rebuild_put(t, id, surv);
	sodium_memzero(&cur, sizeof cur);
	net_peer_snap_free(snap);
	if (rc < 0 && rc != -ENOENT) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

/* Of the fragments in miss, those not marked lost whose holder is DEAD
 * but connected again: net_block_repair may still fetch them, so a block
 * that needs them is not lost (a supplier declared dead for an absence
 * stays dead when it returns; with the other holders of a block gone
 * too, its copies are the block's last). */
static uint32_t
dead_but_up(struct owner *o, const struct net_peer_snap *snap,
    const struct store_block *b, uint32_t miss)
{
	uint32_t count = 0;

	for (int i = 0; snap && i < owner__nfrags(b); i++)
		count += miss & 1u << i && !b->lost[i] &&
		    !sodium_is_zero(b->peer[i], CR_PK_BYTES) &&
		    is_dead(o, snap, b->peer[i]) &&
		    net_peer_snap_up(snap, b->peer[i]);
	return count;
}

/* 1 when the block is whole again (or gone), 0 when not, -errno. */
static int
rebuild_one(struct owner *o, const unsigned char *id)
{
	struct owner__rebuild *r = o->rebuild;
	struct store_block b, orig;
	struct store_txn *t;
	uint64_t moved = 0, seq;
	struct net_peer_snap *snap;
	uint32_t miss = 0, surv = 0, dbl = 0;
	int rc;

	owner__peer_snap(o, &snap);	/* owner__missing: doubled ones */
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0) {
		net_peer_snap_free(snap);
		return rc;
	}
	rc = store_block_get(t, id, &b);
	store_txn_abort(t);
	if (rc == 0) {
		miss = block_missing(o, snap, &b, &surv, &dbl);
		surv += dead_but_up(o, snap, &b, miss);
	}
	net_peer_snap_free(snap);
	if (rc == -ENOENT || (rc == 0 && miss == 0)) {
		sodium_memzero(&b, sizeof b);
		return (rc = rebuild_settle(o, id)) < 0 ? rc : 1;
	}
	if (rc < 0)
		return rc;
	if (surv < b.k) {
		sodium_memzero(&b, sizeof b);
		return -EIO;	/* lost: keep it queued, maybe they return */
	}
	if (rate_wait(o, r)) {
		sodium_memzero(&b, sizeof b);
		return 0;
	}
	seq = owner__guard_rebuild_begin(o);
	pthread_mutex_lock(&r->lock);
	r->rebuilding++;
	pthread_mutex_unlock(&r->lock);
	orig = b;
	rc = net_block_repair(o->conf.net, &b, miss, &moved);
	if (rc > 0)
		rc = repair_commit(o, &orig, &b, miss, seq);
	pthread_mutex_lock(&r->lock);
	r->rebuilding--;
	r->tokens -= (double)moved;
	r->rebuild_bytes += moved;
	r->rate_acc += (double)moved;
	if (rc > 0) {
		r->rebuilt_frags += rc;
		if (rc == __builtin_popcount(miss))
			r->rebuilt_blocks++;
	} else {
		r->errors++;
	}
	pthread_mutex_unlock(&r->lock);
	if (rc < 0 && miss == dbl)
		log_debug("maint: cannot spread a block's doubled-up "
		    "fragment(s) yet: %s", strerror(-rc));
	else if (rc < 0)
		log_warn("maint: rebuild of a block (%d of %d fragments "
		    "missing): %s", __builtin_popcount(miss),
		    owner__nfrags(&orig), strerror(-rc));
	else
		log_debug("maint: rebuilt %d of %d fragments of a block "
		    "(%" PRIu64 " bytes moved)", rc, __builtin_popcount(miss),
		    moved);
	sodium_memzero(&orig, sizeof orig);
	sodium_memzero(&b, sizeof b);
	return rc < 0 ? rc : rc == __builtin_popcount(miss);
}

static int64_t
rebuilder_pass(void *arg, int idx)
{
	struct owner *o = arg;
	struct owner__rebuild *r = o->rebuild;
	unsigned char id[CR_ID_BYTES];
	struct pick p = { r, idx, worker_now_ms(), id, 0 };
	struct store_txn *t;
	int rc;

	if (!owner__writable(o))
		return 1000;
	pthread_mutex_lock(&r->lock);
	/* A read txn under r->lock: fine, readers never wait. */
	if (store_txn_begin(o->conf.store, 1, &t) == 0) {
		store_rebuild_iter(t, pick_one, &p);
		store_txn_abort(t);
	}
	if (p.found) {
		memcpy(r->busy[idx], id, CR_ID_BYTES);
		r->busy_set[idx] = 1;
	}
	pthread_mutex_unlock(&r->lock);
	if (!p.found)
		return IDLE_MS;

	rc = rebuild_one(o, id);

	pthread_mutex_lock(&r->lock);
	r->busy_set[idx] = 0;
	if (rc == 1)
		backoff_clear(r, id);
	else if (!r->stop)
		backoff_fail(r, id);
	pthread_cond_broadcast(&r->progress);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* ---- what `peerfs check` and status ask --------------------------------------- */

struct pending_ctx {
	struct owner__rebuild *r;
	int64_t since;
	int pending;
};

/* r->lock held by the caller around the read txn. */
static int
pending_one(void *arg, const unsigned char *id, uint32_t surviving)
{
	struct pending_ctx *p = arg;
	struct backoff *b = backoff_find(p->r, id);

	if (b == NULL || b->failed_ms < p->since) {
		p->pending = 1;
		return 1;
	}
	return 0;
}

int
owner__rebuild_wait(struct owner *o, int64_t since, int64_t deadline)
{
	struct owner__rebuild *r = o->rebuild;
	struct timespec ts;
	int timed_out = 0;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct pending_ctx p = { r, since, 0 };
		struct store_txn *t;

		if (store_txn_begin(o->conf.store, 1, &t) == 0) {
			store_rebuild_iter(t, pending_one, &p);
			store_txn_abort(t);
		}
		if (!p.pending || r->stop)
			break;
		if (worker_now_ms() >= deadline) {
			timed_out = 1;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 500 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->progress, &r->lock, &ts);
	}
	pthread_mutex_unlock(&r->lock);
	return timed_out;
}

uint64_t
owner__rebuild_frags_total(struct owner *o)
{
	struct owner__rebuild *r = o->rebuild;
	uint64_t n;

	pthread_mutex_lock(&r->lock);
	n = r->frags_total;
	pthread_mutex_unlock(&r->lock);
	return n;
}

void
owner__rebuild_stats(struct owner *o, struct owner_maint_stats *out)
{
	struct owner__rebuild *r = o->rebuild;
	int64_t now = worker_now_ms();
	struct store_txn *t;

	pthread_mutex_lock(&r->lock);
	if (now - r->rate_ms >= 2000) {
		r->rate = r->rate_acc * 1000.0 / (double)(now - r->rate_ms);
		r->rate_acc = 0;
		r->rate_ms = now;
	}
	out->rebuilt_blocks = r->rebuilt_blocks;
	out->rebuilt_frags = r->rebuilt_frags;
	out->rebuild_bytes = r->rebuild_bytes;
	out->rebuild_errors = r->errors;
	out->rebuild_rate = r->rate;
	out->rebuilding = r->rebuilding;
	pthread_mutex_unlock(&r->lock);
	out->rebuild_rate_max = o->conf.rebuild_rate;
	if (store_txn_begin(o->conf.store, 1, &t) == 0) {
		store_rebuild_count(t, &out->rebuild_queued);
		store_txn_abort(t);
	}
}

/* ---- life ------------------------------------------------------------------ */

int
owner__rebuild_start(struct owner *o)
{
	struct owner__rebuild *r;
	struct worker_conf sc = {
		.name = "rebuild-scan", .pass = scanner_pass, .arg = o,
	}, wc = {
		.name = "rebuild", .threads = o->conf.rebuild_jobs,
		.pass = rebuilder_pass, .arg = o,
	};
	pthread_condattr_t ca;
	int rc;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return -ENOMEM;
	o->rebuild = r;
	r->njobs = o->conf.rebuild_jobs;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->progress, &ca);
	pthread_condattr_destroy(&ca);
	r->tok_ms = r->rate_ms = worker_now_ms();
	r->scan_now = 1;
	r->busy = calloc(r->njobs, sizeof *r->busy);
	r->busy_set = calloc(r->njobs, sizeof *r->busy_set);
	r->seen = calloc(MAX_PEERS, sizeof *r->seen);
	r->info = calloc(MAX_PEERS, sizeof *r->info);
	if (!r->busy || !r->busy_set || !r->seen || !r->info)
		return -ENOMEM;
	/* Without a network (tests of the metadata) nothing runs: the
	 * queue just waits in the store. */
	if (o->conf.net == NULL)
		return 0;
	if ((rc = worker_start(&r->workers, &wc)) < 0 ||
	    (rc = worker_start(&r->scanner, &sc)) < 0)
		log_error("maint: cannot start the rebuild threads: %s",
		    strerror(-rc));
	return rc;
}

void
owner__rebuild_stop(struct owner *o)
{
	struct owner__rebuild *r = o->rebuild;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = 1;
	pthread_cond_broadcast(&r->progress);
	pthread_mutex_unlock(&r->lock);
	worker_stop(r->scanner);
	worker_stop(r->workers);
	while (r->backoff) {
		struct backoff *b = r->backoff;

		r->backoff = b->next;
		free(b);
	}
	pthread_cond_destroy(&r->progress);
	pthread_mutex_destroy(&r->lock);
	free(r->busy);
	free(r->busy_set);
	free(r->seen);
	free(r->info);
	free(r);
	o->rebuild = NULL;
}
