/* owner/audit.c - proofs of storage: the auditor challenges one fragment
 * after another, round robin over the blocks, paced so that a pass over
 * every fragment takes conf.audit_interval_ms; a wrong or missing answer
 * marks the fragment lost and queues the block for rebuild (owner/
 * rebuild.c). `peerfs check` audits everything at once through the same
 * calls (owner/check.c). One thread, "audit". */
#include <errno.h>
#include <stdlib.h>

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

	pthread_mutex_t lock;		/* protects the counts */
	uint64_t ok, failed, error;
};

int
owner__audit_commit(struct owner *o, const struct store_block *b,
    uint32_t done, uint32_t bad)
{
	struct store_block cur;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		return rc;
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
			rc = owner__mark_lost(o, t, b, bad);
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

int
owner__audit_frag(struct owner *o, struct store_block *b, int i)
{
	struct owner__audit *a = o->audit;
	int rc = net_frag_audit(o->conf.net, b, i);

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
		if (!f.found && a->have)
			store_block_iter_after(t, NULL, first_blk, &f);
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

static int64_t
auditor_pass(void *arg, int idx)
{
	struct owner *o = arg;
	struct owner__audit *a = o->audit;
	uint64_t frags = owner__rebuild_frags_total(o);
	int64_t now = worker_now_ms(), period;

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
	o->audit = a;
	if (o->conf.net == NULL)
		return 0;
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
	free(a);
	o->audit = NULL;
}
