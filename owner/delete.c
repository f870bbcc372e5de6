/* owner/delete.c - the deleter: drains the delete queue (store_delq, filled
 * by owner/refs.c, owner/rebuild.c and owner/sweep.c) with
 * net_frag_delete, a batch at a time, skipping for a while the suppliers
 * that do not answer. Each delete is bracketed by the guard
 * (owner/refs.c) and checked in a write txn first: a fragment that a
 * record uses again (the same bytes stored since) is kept. Only entries
 * whose hold (conf.keep_versions) has passed go; a home restored from an
 * older version deletes nothing. One thread, "delete". */
#include <errno.h>
#include <stdlib.h>

#include <sodium.h>

#include "log.h"
#include "owner/internal.h"
#include "worker.h"

#define DEL_BATCH	64
#define DEL_RETRY_MS	5000
/* While reads wait on suppliers (one asked within DEL_READS_MS), one
 * delete per DEL_YIELD_MS: a big file's thousands of deletes, each a
 * request, a transaction and an unlink on the suppliers' side, cut cold
 * random reads by a third when they ran at full speed beside them
 * (docs/performance.md); space comes back a little later instead. */
#define DEL_READS_MS	500
#define DEL_YIELD_MS	50

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

struct owner__deleter {
	struct worker *w;
	struct del_batch *batch;	/* the deleter's own */
	pthread_mutex_t lock;		/* protects deleted */
	uint64_t deleted;
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
delete_one(struct owner *o, const struct del_entry *e)
{
	struct owner__delete_mark *mk;
	struct store_block cur;
	struct store_txn *t;
	int rc, idx = e->fragid[CR_ID_BYTES], live;

	if ((mk = owner__guard_delete_begin(o, e->pk, e->fragid)) == NULL)
		return -ENOMEM;
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
	owner__guard_delete_end(o, mk, 1);
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
	pthread_mutex_lock(&o->deleter->lock);
	o->deleter->deleted++;
	pthread_mutex_unlock(&o->deleter->lock);
	return 1;
out:
	owner__guard_delete_end(o, mk, 0);
	return rc;
}

static int64_t
deleter_pass(void *arg, int idx)
{
	struct owner *o = arg;
	struct del_batch *d = o->deleter->batch;
	struct store_txn *t;
	int done = 0, rc;

	if (!owner__writable(o))	/* only the lease holder deletes */
		return 1000;
	d->o = o;
	d->n = d->nskip = 0;
	d->now = worker_now_ms();
	if (store_txn_begin(o->conf.store, 1, &t) == 0) {
		if (!owner__index_older(t))
			store_delq_iter_due(t, owner__index_vers(t), del_collect,
			    d);
		store_txn_abort(t);
	}
	for (int i = 0; i < d->n && !worker_stopping(o->deleter->w); i++) {
		if (d->v[i].skip)
			continue;
		if (owner__reads_fetched_within(o, DEL_READS_MS) &&
		    worker_sleep(o->deleter->w, DEL_YIELD_MS) == -ECANCELED)
			break;
		rc = delete_one(o, &d->v[i]);
		done += rc > 0;
		if (rc >= 0)
			continue;
		/* Unreachable or failing: skip its entries for a while. */
		for (int j = i + 1; j < d->n; j++)
			if (memcmp(d->v[j].pk, d->v[i].pk, CR_PK_BYTES) == 0)
				d->v[j].skip = 1;
		int slot = 0;
		for (int j = 1; j < 16; j++)
			if (d->down[j].until_ms < d->down[slot].until_ms)
				slot = j;
		memcpy(d->down[slot].pk, d->v[i].pk, CR_PK_BYTES);
		d->down[slot].until_ms = worker_now_ms() + DEL_RETRY_MS;
	}
	/* A kick (something queued) during the pass runs the next at once. */
	return done > 0 ? 0 : DEL_RETRY_MS;
}

void
owner__delete_kick(struct owner *o)
{
	if (o != NULL && o->deleter != NULL)
		worker_kick(o->deleter->w);
}

void
owner__delete_stats(struct owner *o, struct owner_maint_stats *out)
{
	struct store_txn *t;

	pthread_mutex_lock(&o->deleter->lock);
	out->deleted = o->deleter->deleted;
	pthread_mutex_unlock(&o->deleter->lock);
	if (store_txn_begin(o->conf.store, 1, &t) == 0) {
		store_delq_stats(t, &out->delq_count, &out->delq_bytes);
		store_txn_abort(t);
	}
}

int
owner__delete_start(struct owner *o)
{
	struct owner__deleter *d;
	struct worker_conf wc = {
		.name = "delete", .pass = deleter_pass, .arg = o,
	};

	if ((d = calloc(1, sizeof *d)) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	o->deleter = d;
	if ((d->batch = calloc(1, sizeof *d->batch)) == NULL)
		return -ENOMEM;
	if (o->conf.net == NULL)
		return 0;
	return worker_start(&d->w, &wc);
}

void
owner__delete_stop(struct owner *o)
{
	struct owner__deleter *d = o->deleter;

	if (d == NULL)
		return;
	worker_stop(d->w);
	pthread_mutex_destroy(&d->lock);
	free(d->batch);
	free(d);
	o->deleter = NULL;
}
