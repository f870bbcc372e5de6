/* owner/refs.c - block references and the deletes they lead to, and the
 * one invariant that keeps a delete from hitting live data: a fragment may
 * be deleted only when no upload or rebuild that places the same fragment
 * can still commit.
 *
 * Extents reference block records (refcount); a record whose last
 * reference goes has its fragments queued for deletion (store_delq, held
 * for conf.keep_versions index versions) within the transaction that drops
 * it, and the deleter (owner/delete.c) drains the queue.
 *
 * Deletes race uploads and rebuilds that place the same fragment id on the
 * same supplier (the same bytes stored again: convergent keys). The
 * deleter brackets the check that no record uses a fragment and the delete
 * itself with owner__guard_delete_begin/_end, which log it twice:
 *   - by block id, with the delete's event number once it is sent: an
 *     upload that began before that event stores its block again instead
 *     of committing a record to fragments the delete may have removed
 *     (owner__guard_upload_conflict);
 *   - by (supplier, fragment) in a ring, with a sequence number: a rebuild
 *     merges a fragment only if no delete of it was logged since the
 *     rebuild began or is still in flight (owner__guard_rebuild_conflict).
 * Lock order: LMDB write txn -> r->lock; never a txn under r->lock. */
#include <errno.h>
#include <stdlib.h>

#include <sodium.h>

#include "log.h"
#include "owner/internal.h"

#define RING	1024

/* A block whose fragments are about to be deleted on suppliers. */
struct fnote {
	unsigned char id[CR_ID_BYTES];
	uint64_t sent_ev;	/* 0: not sent yet */
	struct fnote *next;
};

struct dlog {
	unsigned char pk[CR_PK_BYTES];
	unsigned char fragid[STORE_FRAGID_BYTES];
	uint64_t seq;
	int inflight;
};

struct owner__refs {
	pthread_mutex_t lock;	/* protects everything below */
	struct fnote *notes;	/* deletes an upload may have raced */
	uint64_t fev;		/* delete events (noted, sent) so far */
	uint64_t *since;	/* per upload worker: fev when its upload
				 * began, UINT64_MAX when idle */
	int nworkers;
	struct dlog ring[RING];	/* deletes, by seq % RING */
	uint64_t del_seq;
};

struct owner__delete_mark {
	struct fnote *note;
	struct dlog *d;
};

/* ---- queueing deletes ---------------------------------------------------- */

int
owner__discard_push(struct store_txn *t, struct owner__discard *dc,
    const struct store_block *b, int gone)
{
	unsigned char fragid[STORE_FRAGID_BYTES];
	int keep = dc->o ? dc->o->conf.keep_versions : 0;
	/* Versions up to the current one may reference b: its fragments go
	 * once `keep` newer versions have pushed them out of the window. */
	uint64_t hold = keep > 0 ? owner__index_vers(t) + (uint64_t)keep : 0;
	int rc;

	memcpy(fragid, b->id, CR_ID_BYTES);
	for (int i = 0; i < CR_EC_MAX; i++) {
		if (sodium_is_zero(b->peer[i], CR_PK_BYTES))
			continue;
		fragid[CR_ID_BYTES] = (unsigned char)i;
		if ((rc = store_delq_put_held(t, b->peer[i], fragid,
		    b->frag_len, hold)) < 0)
			return rc;
		dc->queued++;
	}
	return gone ? vec_push(&dc->ids, b->id, CR_ID_BYTES) : 0;
}

void
owner__discard_run(struct owner__discard *dc, int committed)
{
	struct owner *o = dc->o;

	for (size_t i = 0; i < dc->ids.n; i++)
		if (committed && o != NULL && o->conf.cache != NULL)
			store_cache_drop(o->conf.cache, (const unsigned char *)
			    dc->ids.p + i * CR_ID_BYTES);
	if (committed && dc->queued && o != NULL)
		owner__delete_kick(o);
	vec_release(&dc->ids);
	dc->queued = 0;
}

int
owner__block_unref(struct store_txn *t, const unsigned char *id,
    struct owner__discard *dc)
{
	struct store_block b;
	int rc;

	if ((rc = store_block_get(t, id, &b)) == -ENOENT) {
		log_warn("data: extent points at a missing block record");
		return 0;
	}
	if (rc < 0)
		return rc;
	if (b.refcount > 1) {
		b.refcount--;
		rc = store_block_put(t, &b);
	} else if ((rc = store_block_del(t, id)) == 0) {
		rc = owner__discard_push(t, dc, &b, 1);
	}
	sodium_memzero(&b, sizeof b);
	return rc;
}

int
owner__strays_push(struct store_txn *t, struct owner__discard *dc,
    const struct store_block *rec, const struct store_block *cur)
{
	struct store_block x = *rec;
	int n = 0, rc;

	for (int i = 0; i < CR_EC_MAX; i++) {
		if (memcmp(x.peer[i], cur->peer[i], CR_PK_BYTES) == 0)
			memset(x.peer[i], 0, CR_PK_BYTES);
		else
			n++;
	}
	rc = n > 0 ? owner__discard_push(t, dc, &x, 0) : 0;
	sodium_memzero(&x, sizeof x);
	return rc;
}

void
owner__orphan_discard(struct owner *o, const struct store_block *rec)
{
	struct owner__discard dc = OWNER__DISCARD_INIT(o);
	struct store_txn *t;
	struct store_block cur;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 0, &t)) < 0)
		goto out;
	if ((rc = store_block_get(t, rec->id, &cur)) == -ENOENT)
		rc = owner__discard_push(t, &dc, rec, 0);
	else if (rc == 0)
		rc = owner__strays_push(t, &dc, rec, &cur);
	if (rc < 0)
		store_txn_abort(t);
	else
		rc = store_txn_commit(t);
	sodium_memzero(&cur, sizeof cur);
	owner__discard_run(&dc, rc == 0);
out:
	if (rc < 0)
		log_warn("data: fragments of an unused block stay on their "
		    "suppliers: %s", strerror(-rc));
}

/* ---- the guard -------------------------------------------------------------- */

/* Frees the sent notes no running upload can have raced (r->lock held). */
static void
notes_purge(struct owner__refs *r)
{
	uint64_t oldest = UINT64_MAX;
	struct fnote **pp = &r->notes, *nt;

	for (int i = 0; i < r->nworkers; i++)
		if (r->since[i] < oldest)
			oldest = r->since[i];
	while ((nt = *pp) != NULL) {
		if (nt->sent_ev != 0 && nt->sent_ev <= oldest) {
			*pp = nt->next;
			free(nt);
		} else {
			pp = &nt->next;
		}
	}
}

uint64_t
owner__guard_upload_begin(struct owner *o, int idx)
{
	struct owner__refs *r = o->refs;
	uint64_t since;

	pthread_mutex_lock(&r->lock);
	since = r->since[idx] = r->fev;
	pthread_mutex_unlock(&r->lock);
	return since;
}

void
owner__guard_upload_end(struct owner *o, int idx)
{
	struct owner__refs *r = o->refs;

	pthread_mutex_lock(&r->lock);
	r->since[idx] = UINT64_MAX;
	notes_purge(r);
	pthread_mutex_unlock(&r->lock);
}

int
owner__guard_upload_conflict(struct owner *o, const unsigned char *id,
    uint64_t since)
{
	struct owner__refs *r = o->refs;
	int hit = 0;

	pthread_mutex_lock(&r->lock);
	for (struct fnote *nt = r->notes; nt != NULL && !hit; nt = nt->next)
		hit = (nt->sent_ev == 0 || nt->sent_ev > since) &&
		    memcmp(nt->id, id, CR_ID_BYTES) == 0;
	pthread_mutex_unlock(&r->lock);
	return hit;
}

struct owner__delete_mark *
owner__guard_delete_begin(struct owner *o, const unsigned char *pk,
    const unsigned char *fragid)
{
	struct owner__refs *r = o->refs;
	struct owner__delete_mark *mk = calloc(1, sizeof *mk);

	if (mk == NULL || (mk->note = calloc(1, sizeof *mk->note)) == NULL) {
		free(mk);
		return NULL;
	}
	memcpy(mk->note->id, fragid, CR_ID_BYTES);
	pthread_mutex_lock(&r->lock);
	r->fev++;
	mk->note->next = r->notes;
	r->notes = mk->note;
	mk->d = &r->ring[++r->del_seq % RING];
	memcpy(mk->d->pk, pk, CR_PK_BYTES);
	memcpy(mk->d->fragid, fragid, STORE_FRAGID_BYTES);
	mk->d->seq = r->del_seq;
	mk->d->inflight = 1;
	pthread_mutex_unlock(&r->lock);
	return mk;
}

void
owner__guard_delete_end(struct owner *o, struct owner__delete_mark *mk,
    int sent)
{
	struct owner__refs *r = o->refs;
	struct fnote **pp;

	if (mk == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	mk->d->inflight = 0;
	if (sent) {
		mk->note->sent_ev = ++r->fev;
	} else {
		/* No delete went out: nothing to fear from it. */
		for (pp = &r->notes; *pp != mk->note; pp = &(*pp)->next)
			;
		*pp = mk->note->next;
		free(mk->note);
	}
	notes_purge(r);
	pthread_mutex_unlock(&r->lock);
	free(mk);
}

uint64_t
owner__guard_rebuild_begin(struct owner *o)
{
	struct owner__refs *r = o->refs;
	uint64_t seq;

	pthread_mutex_lock(&r->lock);
	seq = r->del_seq;
	pthread_mutex_unlock(&r->lock);
	return seq;
}

int
owner__guard_rebuild_conflict(struct owner *o, uint64_t seq,
    const unsigned char *pk, const unsigned char *fragid)
{
	struct owner__refs *r = o->refs;
	int hit = 0;

	pthread_mutex_lock(&r->lock);
	if (r->del_seq - seq >= RING)
		hit = 1;
	for (int i = 0; i < RING && !hit; i++) {
		struct dlog *d = &r->ring[i];

		hit = d->seq != 0 && (d->seq > seq || d->inflight) &&
		    memcmp(d->pk, pk, CR_PK_BYTES) == 0 &&
		    memcmp(d->fragid, fragid, STORE_FRAGID_BYTES) == 0;
	}
	pthread_mutex_unlock(&r->lock);
	return hit;
}

/* ---- life ------------------------------------------------------------------ */

int
owner__refs_init(struct owner *o)
{
	struct owner__refs *r = calloc(1, sizeof *r);

	if (r == NULL)
		return -ENOMEM;
	r->nworkers = o->conf.upload_threads;
	if ((r->since = calloc(r->nworkers, sizeof *r->since)) == NULL) {
		free(r);
		return -ENOMEM;
	}
	for (int i = 0; i < r->nworkers; i++)
		r->since[i] = UINT64_MAX;
	pthread_mutex_init(&r->lock, NULL);
	o->refs = r;
	return 0;
}

void
owner__refs_destroy(struct owner *o)
{
	struct owner__refs *r = o->refs;

	if (r == NULL)
		return;
	while (r->notes != NULL) {
		struct fnote *nt = r->notes;

		r->notes = nt->next;
		free(nt);
	}
	pthread_mutex_destroy(&r->lock);
	free(r->since);
	free(r);
	o->refs = NULL;
}
