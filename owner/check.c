/* owner/check.c - `peerfs check` (audit every fragment now, wait for the
 * rebuilds of what was found, report) and the redundancy attribute of a
 * file. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#include "log.h"
#include "owner/internal.h"
#include "strbuf.h"
#include "util.h"
#include "worker.h"

#define MAX_PEERS	256

struct owner__check {
	pthread_mutex_t check_lock;	/* one `peerfs check` at a time */
	pthread_mutex_t lock;		/* protects report and progress */
	char *report;
	/* The running check, for its command's progress (status). */
	int running;
	uint64_t blocks, audited;
};

/* ---- redundancy attribute ------------------------------------------------ */

struct red_ctx {
	struct owner *o;
	struct net_peer_snap *snap;
	struct store_txn *t;
	int min, n, blocks;
	int doubled;		/* a block with two fragments on one supplier */
};

static int
red_one(void *arg, uint64_t bno, const unsigned char *id)
{
	struct red_ctx *r = arg;
	struct store_block b;
	uint32_t surv;

	if (store_block_get(r->t, id, &b) < 0)
		return 0;
	owner__missing(r->o, r->snap, &b, &surv);
	r->doubled |= net_place_doubled(owner__nfrags(&b), b.peer, ~0u, ~0u) != 0;
	if (r->blocks++ == 0 || (int)surv < r->min) {
		r->min = (int)surv;
		r->n = owner__nfrags(&b);
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
	struct red_ctx r = { o, NULL, NULL, 0, 0, 0, 0 };
	int rc, pending, n;

	if ((rc = store_txn_begin(o->conf.store, 1, &r.t)) < 0)
		return rc;
	owner__peer_snap(o, &r.snap);
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
	else if (r.doubled)	/* all there, but on fewer suppliers */
		n = snprintf(buf, size, "%d/%d doubled up", r.n, r.n);
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
	struct vec ids;		/* block ids */
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

	return vec_push(&c->ids, b->id, CR_ID_BYTES);
}

static int
chk_count(void *arg, const struct store_block *b)
{
	struct check *c = arg;
	uint32_t surv;

	if (owner__missing(c->o, c->snap, b, &surv) == 0)
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
	owner__peer_snap(o, &c->snap);
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) == 0) {
		rc = store_block_iter(t, chk_count, c);
		store_txn_abort(t);
	}
	net_peer_snap_free(c->snap);
	c->snap = NULL;
	return rc;
}

static void
check_block(struct owner *o, struct check *c, const unsigned char *id)
{
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
	for (int i = 0; i < owner__nfrags(&b); i++) {
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
		rc = owner__audit_frag(o, &b, i);
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
	if (done && (rc = owner__audit_commit(o, &b, done, bad)) < 0)
		log_warn("maint: storing audits: %s", strerror(-rc));
	sodium_memzero(&b, sizeof b);
}

static void
check_report(struct owner *o, struct check *c, uint64_t repaired, int timed_out)
{
	struct owner__check *m = o->check;
	struct net_peer_info *info = calloc(MAX_PEERS, sizeof *info);
	int ninfo = info ? net_peers(o->conf.net, info, MAX_PEERS, 0) : 0;
	struct strbuf sb = { 0 };
	char *r;
	size_t len;

	if (ninfo > MAX_PEERS)
		ninfo = MAX_PEERS;
	strbuf_printf(&sb, "blocks checked: %" PRIu64 "\n", c->blocks);
	strbuf_printf(&sb, "fragments audited: %" PRIu64 " (%" PRIu64
	    " good, %" PRIu64 " bad)\n", c->audited, c->good, c->bad);
	strbuf_printf(&sb, "fragments missing (lost or on dead suppliers): %"
	    PRIu64 "\n", c->missing);
	strbuf_printf(&sb, "fragments unreachable (supplier offline or "
	    "silent): %" PRIu64 "\n", c->unreachable);
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
		strbuf_printf(&sb, "  supplier %s %s: %" PRIu64 " bad, %" PRIu64
		    " missing, %" PRIu64 " unreachable, %" PRIu64 " good\n",
		    hex, addr, p->bad, p->missing, p->unreachable, p->good);
	}
	strbuf_printf(&sb, "fragments rebuilt: %" PRIu64 "\n", repaired);
	strbuf_printf(&sb, "blocks: %" PRIu64 " at full redundancy, %" PRIu64
	    " degraded, %" PRIu64 " lost\n", c->full, c->degraded, c->lost);
	if (timed_out)
		strbuf_printf(&sb, "rebuild still running (gave up waiting)\n");
	strbuf_printf(&sb, "result: %s\n", c->degraded || c->lost ?
	    "DEGRADED" : "full redundancy");
	free(info);
	if (strbuf_take(&sb, &r, &len) < 0)
		return;
	pthread_mutex_lock(&m->lock);
	free(m->report);
	m->report = r;
	pthread_mutex_unlock(&m->lock);
}

static void
set_progress(struct owner__check *m, int running, uint64_t blocks,
    uint64_t audited)
{
	pthread_mutex_lock(&m->lock);
	m->running = running;
	m->blocks = blocks;
	m->audited = audited;
	pthread_mutex_unlock(&m->lock);
}

int
owner__check_progress(struct owner *o, uint64_t *blocks, uint64_t *audited)
{
	struct owner__check *m = o->check;
	int running;

	pthread_mutex_lock(&m->lock);
	running = m->running;
	*blocks = m->blocks;
	*audited = m->audited;
	pthread_mutex_unlock(&m->lock);
	return running;
}

int
owner_check(struct owner *o)
{
	struct owner__check *m = o->check;
	struct owner_maint_stats st0 = { 0 }, st1 = { 0 };
	struct check *c;
	struct store_txn *t;
	uint64_t repaired;
	int64_t start;
	int rc, timed_out;

	if (o->conf.net == NULL)
		return -ENOTCONN;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&m->check_lock);
	owner__rebuild_stats(o, &st0);
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) == 0) {
		rc = store_block_iter(t, chk_collect, c);
		store_txn_abort(t);
	}
	if (rc < 0)
		goto out;
	log_info("maint: check: auditing %zu blocks", c->ids.n);
	set_progress(m, 1, c->ids.n, 0);
	for (size_t i = 0; i < c->ids.n; i++) {
		check_block(o, c, (const unsigned char *)c->ids.p +
		    i * CR_ID_BYTES);
		set_progress(m, 1, c->ids.n, i + 1);
	}

	/* Queue what was found, then wait for the rebuilds: every queued
	 * block whole again, or failed once since now (lost for good, or
	 * no supplier to take it). */
	owner__rebuild_scan(o);
	start = worker_now_ms();
	owner__rebuild_retry_all(o);
	timed_out = owner__rebuild_wait(o, start,
	    start + o->conf.sync_timeout_ms);
	if ((rc = check_tally(o, c)) < 0)
		goto out;
	owner__rebuild_stats(o, &st1);
	repaired = st1.rebuilt_frags - st0.rebuilt_frags;
	check_report(o, c, repaired, timed_out);
	log_info("maint: check: %" PRIu64 " fragments audited, %" PRIu64
	    " bad, %" PRIu64 " missing, %" PRIu64 " rebuilt; %" PRIu64
	    " blocks degraded, %" PRIu64 " lost", c->audited, c->bad,
	    c->missing, repaired, c->degraded, c->lost);
out:
	set_progress(m, 0, 0, 0);
	pthread_mutex_unlock(&m->check_lock);
	vec_release(&c->ids);
	free(c);
	return rc;
}

int
owner_check_report(struct owner *o, char **val, size_t *len)
{
	struct owner__check *m = o->check;
	const char *none = "no check has run in this mount\n";
	const char *r;

	pthread_mutex_lock(&m->lock);
	r = m->report ? m->report : none;
	*val = strdup(r);
	pthread_mutex_unlock(&m->lock);
	if (*val == NULL)
		return -ENOMEM;
	*len = strlen(*val);
	return 0;
}

int
owner__check_init(struct owner *o)
{
	struct owner__check *m = calloc(1, sizeof *m);

	if (m == NULL)
		return -ENOMEM;
	pthread_mutex_init(&m->check_lock, NULL);
	pthread_mutex_init(&m->lock, NULL);
	o->check = m;
	return 0;
}

void
owner__check_destroy(struct owner *o)
{
	struct owner__check *m = o->check;

	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->check_lock);
	pthread_mutex_destroy(&m->lock);
	free(m->report);
	free(m);
	o->check = NULL;
}
