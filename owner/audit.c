/* owner/audit.c - proofs of storage: the auditor challenges one fragment
 * after another, round robin over the blocks, paced so that a pass over
 * every fragment takes conf.audit_interval_ms; a wrong or missing answer
 * marks the fragment lost and queues the block for rebuild (owner/
 * rebuild.c). `peerfs check` audits everything at once through the same
 * calls (owner/check.c). One thread, "audit".
 *
 * The ledger: per supplier id, the bytes of ours it holds (fragments not
 * marked lost) and whether its audits stand (passed last, no failure
 * within --vet-after): then those bytes count as proved, the balance the
 * supplier of this home grants that peer against (the fair deal,
 * net/deal.c). Only audits feed it, never what a peer says of itself. A
 * failed audit zeroes the balance and restarts the vetting clock.
 * Written to conf.ledger_path (store/ledger.c) 2 s after a verdict that
 * changes it, else every LEDGER_EVERY_MS or --audit-interval if shorter (a
 * pass over the block records counts the bytes held), with the mount's
 * state: when it was written, whether a rebuild is queued or running, when
 * the last full audit pass ended. The supplier evicts nobody on balances
 * the mount has not confirmed that way (store_deal_due). */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <sodium.h>

#include "log.h"
#include "owner/internal.h"
#include "worker.h"

struct owner__audit {
	struct worker *w;
	/* The auditor's own: where it is in the round. */
	unsigned char cursor[CR_ID_BYTES];
	int have, idx;
	int64_t next;

	pthread_mutex_t lock;		/* protects the counts, the ledger */
	uint64_t ok, failed, error;
	struct store_ledger_ent *led;
	size_t nled, capled;
	int led_dirty;
	int64_t relay_next;		/* worker_now_ms: next net_relay_take */
	int64_t led_next;		/* worker_now_ms() of the next write */
	int64_t pass_end;		/* unix s: the last full pass ended */
};

#define LEDGER_SOON_MS	2000
#define LEDGER_EVERY_MS	(10 * 60 * 1000)

/* Under a->lock: pk's entry, made when create. */
static struct store_ledger_ent *
ledger_find(struct owner__audit *a, const unsigned char *pk, int create)
{
	for (size_t i = 0; i < a->nled; i++)
		if (memcmp(a->led[i].pk, pk, CR_PK_BYTES) == 0)
			return &a->led[i];
	if (!create)
		return NULL;
	if (a->nled == a->capled) {
		size_t c = a->capled ? 2 * a->capled : 32;
		void *p = realloc(a->led, c * sizeof *a->led);
		if (!p)
			return NULL;
		a->led = p;
		a->capled = c;
	}
	memset(&a->led[a->nled], 0, sizeof *a->led);
	memcpy(a->led[a->nled].pk, pk, CR_PK_BYTES);
	return &a->led[a->nled++];
}

int
owner_audit_stands(const struct store_ledger_ent *e, int64_t now,
    int64_t vet_after_ms)
{
	return e->last_ok > e->last_fail && (e->last_fail == 0 ||
	    (now - e->last_fail) * 1000 >= vet_after_ms);
}

int
owner_audit_vetted(const struct store_ledger_ent *e, int64_t now,
    int64_t vet_after_ms)
{
	return owner_audit_stands(e, now, vet_after_ms) && e->first_ok &&
	    (now - e->first_ok) * 1000 >= vet_after_ms;
}

static int
stands(const struct owner *o, const struct store_ledger_ent *e, int64_t now)
{
	return owner_audit_stands(e, now, o->conf.vet_after_ms);
}

static int
vetted(const struct owner *o, const struct store_ledger_ent *e, int64_t now)
{
	return owner_audit_vetted(e, now, o->conf.vet_after_ms);
}

/* A verdict of an audit of pk's. */
static void
ledger_note(struct owner *o, const unsigned char *pk, int ok)
{
	struct owner__audit *a = o->audit;
	int64_t now = (int64_t)time(NULL);
	struct store_ledger_ent *e;

	pthread_mutex_lock(&a->lock);
	if ((e = ledger_find(a, pk, 1))) {
		if (ok) {
			int was = stands(o, e, now), was_v = vetted(o, e, now);
			if (!e->first_ok)
				e->first_ok = now;
			e->last_ok = now;
			/* Standing again, or vetted now: the supplier of this
			 * home and placement should know soon. */
			a->led_dirty |= !was || (!was_v && vetted(o, e, now));
		} else {
			e->last_fail = now;
			e->first_ok = 0;
			e->proved = 0;
			a->led_dirty = 1;
		}
	}
	pthread_mutex_unlock(&a->lock);
}

struct held_acc {
	struct owner__audit *a;
	int oom;
	uint64_t blocks;
};

static int
held_cb(void *arg, const struct store_block *b)
{
	struct held_acc *h = arg;

	h->blocks++;
	for (int i = 0; i < owner__nfrags(b); i++) {
		struct store_ledger_ent *e;
		if (b->lost[i] || sodium_is_zero(b->peer[i], CR_PK_BYTES))
			continue;
		if (!(e = ledger_find(h->a, b->peer[i], 1))) {
			h->oom = 1;
			return 1;
		}
		e->held += b->frag_len;
	}
	return 0;
}

/* Tells the network who is vetted now. */
static void
push_vetted(struct owner *o, struct owner__audit *a)
{
	int64_t now = (int64_t)time(NULL);
	unsigned char (*vet)[CR_PK_BYTES] = NULL;
	int nv = 0;

	if (!o->conf.net)
		return;
	pthread_mutex_lock(&a->lock);
	if (a->nled && !(vet = malloc(a->nled * sizeof *vet))) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	for (size_t i = 0; i < a->nled; i++)
		if (vetted(o, &a->led[i], now))
			memcpy(vet[nv++], a->led[i].pk, CR_PK_BYTES);
	pthread_mutex_unlock(&a->lock);
	net_set_vetted(o->conf.net, (const unsigned char (*)[CR_PK_BYTES])vet,
	    o->conf.vet_after_ms ? nv : -1);
	free(vet);
}

/* Counts what each supplier holds, writes the ledger, tells the network
 * who is vetted. */
static void
ledger_flush(struct owner *o, struct owner__audit *a)
{
	int64_t now = (int64_t)time(NULL);
	struct held_acc h = { a, 0, 0 };
	struct store_ledger_ent *copy = NULL;
	struct store_ledger_state st = { .written = now };
	struct owner_maint_stats ms;
	struct store_txn *t;
	size_t n;
	int rc;

	/* A rebuild moves our fragments: balances are in flux until it is
	 * done, and the supplier evicts nobody meanwhile. */
	memset(&ms, 0, sizeof ms);
	if (o->rebuild)
		owner__rebuild_stats(o, &ms);
	st.rebuilding = ms.rebuilding > 0 || ms.rebuild_queued > 0;
	if (store_txn_begin(o->conf.store, 1, &t) < 0)
		return;
	/* The pass runs under the lock: verdicts wait for it, the auditor
	 * is this thread. */
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < a->nled; i++)
		a->led[i].held = 0;
	rc = store_block_iter(t, held_cb, &h);
	for (size_t i = 0; i < a->nled; i++)
		a->led[i].proved = stands(o, &a->led[i], now) ?
		    a->led[i].held : 0;
	/* Nothing stored: a pass over every fragment is over at once. */
	if (rc == 0 && h.blocks == 0 && owner__writable(o))
		a->pass_end = now;
	st.pass_end = a->pass_end;
	n = a->nled;
	if (n && (copy = malloc(n * sizeof *copy)))
		memcpy(copy, a->led, n * sizeof *copy);
	a->led_dirty = 0;
	pthread_mutex_unlock(&a->lock);
	store_txn_abort(t);
	if (rc < 0 || h.oom)
		log_warn("maint: ledger: counting what suppliers hold: %s",
		    strerror(rc < 0 ? -rc : ENOMEM));
	if (o->conf.ledger_path && (n == 0 || copy) &&
	    (rc = store_ledger_write(o->conf.ledger_path, &st, copy, n)) < 0)
		log_warn("maint: ledger %s: %s", o->conf.ledger_path,
		    strerror(-rc));
	push_vetted(o, a);
	free(copy);
}

int
owner__ledger_get(struct owner *o, const unsigned char *pk,
    struct store_ledger_ent *out, int *is_vetted)
{
	struct owner__audit *a = o->audit;
	struct store_ledger_ent *e;
	int rc = -ENOENT;

	pthread_mutex_lock(&a->lock);
	if ((e = ledger_find(a, pk, 0))) {
		*out = *e;
		*is_vetted = vetted(o, e, (int64_t)time(NULL));
		rc = 0;
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

int
owner__audit_commit(struct owner *o, const struct store_block *b,
    uint32_t done, uint32_t bad)
{
	struct net_peer_snap *snap = NULL;
	struct store_block cur;
	struct store_txn *t;
	int rc;

	if (bad)	/* before the txn: owner__mark_lost asks for states */
		owner__peer_snap(o, &snap);
	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0) {
		net_peer_snap_free(snap);
		return rc;
	}
	if ((rc = store_block_get(t, b->id, &cur)) == 0) {
		for (int i = 0; i < owner__nfrags(&cur); i++) {
			if (!(done & 1u << i) ||
			    memcmp(cur.peer[i], b->peer[i], CR_PK_BYTES))
				continue;
			cur.audit_next[i] = b->audit_next[i];
			cur.audit_end[i] = b->audit_end[i];
			memcpy(cur.audit[i], b->audit[i], sizeof cur.audit[i]);
		}
		rc = store_block_put(t, &cur);
		if (rc == 0 && bad)
			rc = owner__mark_lost(o, t, snap, b, bad);
	}
	sodium_memzero(&cur, sizeof cur);
	net_peer_snap_free(snap);
	if (rc == -ENOENT)
		rc = 0;
	if (rc < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

int
owner__audit_frag(struct owner *o, struct store_block *b, int i)
{
	struct owner__audit *a = o->audit;
	int rc = net_frag_audit(o->conf.net, b, i);

	if (rc == 0 || rc == -EBADMSG || rc == -ENOENT)
		ledger_note(o, b->peer[i], rc == 0);

	pthread_mutex_lock(&a->lock);
	if (rc == 0)
		a->ok++;
	else if (rc == -EBADMSG || rc == -ENOENT)
		a->failed++;
	else
		a->error++;
	pthread_mutex_unlock(&a->lock);
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

/* Audits the fragment after (cursor, idx), round robin. */
static void
audit_next(struct owner *o, struct owner__audit *a)
{
	struct store_block b;
	struct first_blk f = { &b, 0 };
	struct store_txn *t;
	int rc, i;

	if (store_txn_begin(o->conf.store, 1, &t) < 0)
		return;
	rc = a->have ? store_block_get(t, a->cursor, &b) : -ENOENT;
	if (rc == 0 && a->idx + 1 < owner__nfrags(&b)) {
		i = a->idx + 1;
	} else {
		store_block_iter_after(t, a->have ? a->cursor : NULL, first_blk,
		    &f);
		if (!f.found && a->have) {
			/* Past the last block: the pass that began at the
			 * first (a->have is 0 at start) is over. */
			pthread_mutex_lock(&a->lock);
			a->pass_end = (int64_t)time(NULL);
			a->led_dirty = 1;
			pthread_mutex_unlock(&a->lock);
			store_block_iter_after(t, NULL, first_blk, &f);
		}
		i = 0;
		rc = f.found ? 0 : -ENOENT;
	}
	store_txn_abort(t);
	if (rc < 0) {
		a->have = 0;
		return;
	}
	memcpy(a->cursor, b.id, CR_ID_BYTES);
	a->have = 1;
	a->idx = i;
	if (i < owner__nfrags(&b) && !b.lost[i] &&
	    net_peer_state(o->conf.net, b.peer[i]) == NET_PEER_ONLINE) {
		rc = owner__audit_frag(o, &b, i);
		if (rc >= 0 && (rc = owner__audit_commit(o, &b, 1u << i,
		    rc == 0 ? 1u << i : 0)) < 0)
			log_warn("maint: storing an audit: %s", strerror(-rc));
	}
	sodium_memzero(&b, sizeof b);
}

/* Bytes a relay carried for us since the last look (net_relay_take,
 * on the net loop: a->lock is ours alone there). */
static void
relayed_add(void *arg, const unsigned char pk[CR_PK_BYTES], uint64_t bytes)
{
	struct owner__audit *a = arg;
	struct store_ledger_ent *e;

	pthread_mutex_lock(&a->lock);
	if ((e = ledger_find(a, pk, 1))) {
		e->relayed += bytes;
		a->led_dirty = 1;
	}
	pthread_mutex_unlock(&a->lock);
}

static int64_t
auditor_pass(void *arg, int idx)
{
	struct owner *o = arg;
	struct owner__audit *a = o->audit;
	uint64_t frags = owner__rebuild_frags_total(o);
	int64_t now = worker_now_ms(), period;
	/* At least as often as a pass: as fresh as the audits behind it
	 * (the supplier trusts no ledger older than --evict-grace). */
	int64_t every = o->conf.audit_interval_ms < LEDGER_EVERY_MS ?
	    o->conf.audit_interval_ms : LEDGER_EVERY_MS;

	if (every < LEDGER_SOON_MS)
		every = LEDGER_SOON_MS;
	/* Relays earn what they carried, in the ledger soon. */
	if (o->conf.net && now >= a->relay_next) {
		net_relay_take(o->conf.net, relayed_add, a);
		a->relay_next = now + 1000;
	}
	if (now >= a->led_next || (a->led_dirty &&
	    now >= a->led_next - every + LEDGER_SOON_MS)) {
		ledger_flush(o, a);
		a->led_next = now + every;
	}
	/* The writer looks after the blocks (another node's deletes
	 * would read as losses here). */
	if (frags == 0 || !owner__writable(o))
		return 1000;
	period = o->conf.audit_interval_ms / (int64_t)frags;
	if (period < 1)
		period = 1;
	if (now < a->next)
		return a->next - now < 1000 ? a->next - now : 1000;
	a->next = (a->next + period < now - 1000 ? now : a->next) + period;
	audit_next(o, a);
	return 0;
}

void
owner__audit_stats(struct owner *o, struct owner_maint_stats *out)
{
	struct owner__audit *a = o->audit;

	pthread_mutex_lock(&a->lock);
	out->audits_ok = a->ok;
	out->audits_failed = a->failed;
	out->audits_error = a->error;
	pthread_mutex_unlock(&a->lock);
	out->audit_interval_ms = o->conf.audit_interval_ms;
}

int
owner__audit_start(struct owner *o)
{
	struct owner__audit *a;
	struct worker_conf wc = {
		.name = "audit", .pass = auditor_pass, .arg = o,
	};

	if ((a = calloc(1, sizeof *a)) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	a->next = worker_now_ms();
	/* What earlier mounts proved: vetting goes on across mounts. */
	if (o->conf.ledger_path) {
		struct store_ledger_state st;
		int rc = store_ledger_read(o->conf.ledger_path, &st, &a->led,
		    &a->nled);

		if (rc == 0)
			a->pass_end = st.pass_end;
		if (rc < 0 && rc != -ENOENT)
			log_warn("maint: ledger %s: %s (starting afresh)",
			    o->conf.ledger_path, strerror(-rc));
		a->capled = a->nled;
	}
	o->audit = a;
	if (o->conf.net == NULL)
		return 0;
	/* Before the first upload: placement knows who is vetted. */
	push_vetted(o, a);
	return worker_start(&a->w, &wc);
}

void
owner__audit_stop(struct owner *o)
{
	struct owner__audit *a = o->audit;

	if (a == NULL)
		return;
	worker_stop(a->w);
	pthread_mutex_destroy(&a->lock);
	free(a->led);
	free(a);
	o->audit = NULL;
}
