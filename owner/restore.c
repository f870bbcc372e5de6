/* owner/restore.c - the index versions on the network: heads fetched from
 * the suppliers and opened with the owner's key, the rollback check at
 * mount, `peerfs versions`, and restoring a version into a fresh home
 * (`peerfs restore`). The layout of a version is owner/layout.c's, the
 * bookkeeping it leaves owner/index.c's. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "owner/internal.h"
#include "util.h"

/* ---- heads on the network ---------------------------------------------------- */

struct head_copy {
	char addr[64];
	uint64_t seq, time;
	unsigned char *p;
	size_t len;
};

struct heads {
	struct head_copy *v;
	int n, cap;
};

static int
heads_add(void *arg, const char *addr, uint64_t seq, const void *head,
    size_t len)
{
	struct heads *hs = arg;
	struct head_copy *c;
	struct cr_head h;

	if (cr_head_verify(head, len, &h) < 0)
		return 0;	/* net/heads.c checked it: cannot happen */
	if (hs->n == hs->cap) {
		int cap = hs->cap ? 2 * hs->cap : 32;
		struct head_copy *nv = realloc(hs->v, cap * sizeof *nv);

		if (!nv)
			return -ENOMEM;
		hs->v = nv;
		hs->cap = cap;
	}
	c = &hs->v[hs->n];
	if (!(c->p = malloc(len)))
		return -ENOMEM;
	memcpy(c->p, head, len);
	c->len = len;
	c->seq = seq;
	c->time = h.time;
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	hs->n++;
	return 0;
}

static void
heads_free(struct heads *hs)
{
	for (int i = 0; i < hs->n; i++)
		free(hs->v[i].p);
	free(hs->v);
	memset(hs, 0, sizeof *hs);
}

static int
head_cmp_desc(const void *a, const void *b)
{
	const struct head_copy *x = a, *y = b;

	return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* The newest max heads each online supplier holds (0: all), newest
 * first. */
static int
heads_get_max(struct net *n, int max, struct heads *hs)
{
	int rc;

	memset(hs, 0, sizeof *hs);
	if ((rc = net_heads_fetch(n, max, heads_add, hs)) < 0) {
		heads_free(hs);
		return rc;
	}
	if (hs->n)
		qsort(hs->v, hs->n, sizeof *hs->v, head_cmp_desc);
	return rc;
}

static int
heads_get(struct net *n, struct heads *hs)
{
	return heads_get_max(n, 0, hs);
}

/* Opens a head's blob: *layout and *sups (malloc'd). */
static int
head_open_code(const struct owner__index_io *io, const struct head_copy *c,
    struct owner__layout *l, struct owner__sup **sups, int *nsup,
    struct owner__lease *lease, struct owner_code *code)
{
	unsigned char key[CR_KEY_BYTES], *plain = NULL;
	size_t plen;
	struct cr_head h;
	int rc;

	if ((rc = cr_head_verify(c->p, c->len, &h)) < 0)
		return rc;
	cr_subkey(key, io->id, CR_SUBKEY_INDEX);
	rc = cr_blob_open(key, h.blob, h.blob_len, &plain, &plen);
	sodium_memzero(key, sizeof key);
	if (rc < 0)
		return rc;
	rc = owner__blob_decode(plain, plen, sups, nsup, l, lease, code);
	sodium_memzero(plain, plen);
	free(plain);
	return rc;
}

static int
head_open_lease(const struct owner__index_io *io, const struct head_copy *c,
    struct owner__layout *l, struct owner__sup **sups, int *nsup,
    struct owner__lease *lease)
{
	return head_open_code(io, c, l, sups, nsup, lease, NULL);
}

static int
head_open(const struct owner__index_io *io, const struct head_copy *c,
    struct owner__layout *l, struct owner__sup **sups, int *nsup)
{
	return head_open_lease(io, c, l, sups, nsup, NULL);
}

/* Rollback detection: suppliers whose newest head is older than the
 * newest the network (or this node) knows. */
static void
warn_stale(const struct heads *hs, uint64_t newest)
{
	for (int i = 0; i < hs->n; i++) {
		uint64_t best = 0;
		int seen = 0;

		for (int j = 0; j < hs->n; j++) {
			if (strcmp(hs->v[j].addr, hs->v[i].addr) != 0)
				continue;
			if (j < i)
				seen = 1;
			if (hs->v[j].seq > best)
				best = hs->v[j].seq;
		}
		if (!seen && best < newest)
			log_warn("supplier %s offers head %" PRIu64 " at most, "
			    "the newest is %" PRIu64 ": it lost or hides newer "
			    "heads (rollback?); using %" PRIu64, hs->v[i].addr,
			    best, newest, newest);
	}
}

int
owner__index_check(const struct owner__index_io *io)
{
	struct net *n = io->net;
	struct store *st = io->store;
	struct store_txn *t;
	struct heads hs;
	uint64_t known = 0;
	int rc;

	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	known = owner__index_seq(t);
	store_txn_abort(t);
	if ((rc = heads_get(n, &hs)) < 0)
		return rc;
	if (hs.n == 0 && known)
		log_warn("index: no supplier offers a head, this node "
		    "published %" PRIu64, known);
	else if (hs.n && hs.v[0].seq < known)
		log_warn("index: suppliers offer head %" PRIu64 " at most, "
		    "this node published %" PRIu64 ": rollback or lost heads",
		    hs.v[0].seq, known);
	if (hs.n)
		warn_stale(&hs, hs.v[0].seq > known ? hs.v[0].seq : known);
	rc = hs.n ? (int)(hs.v[0].seq > INT32_MAX ? INT32_MAX : hs.v[0].seq) : 0;
	heads_free(&hs);
	return rc;
}

/* ---- restoring ----------------------------------------------------------------- */

/* Where a restore's fetching stands, for its progress. */
struct fetched {
	const struct owner_progress *to;
	uint64_t done, total, bytes_left;
};

static void
fetched_tell(struct fetched *f)
{
	if (f->to && f->to->fn)
		f->to->fn(f->to->arg, f->done, f->total, f->bytes_left);
}

static int
fetch_part(struct net *n, const struct owner__part *pt, unsigned char **out,
    struct fetched *f)
{
	unsigned char *buf;
	size_t off = 0;
	int rc;

	if (pt->bytes > (uint64_t)UINT16_MAX * OWNER__INDEX_CHUNK)
		return -EPROTO;
	if (!(buf = malloc(pt->bytes ? pt->bytes : 1)))
		return -ENOMEM;
	for (int j = 0; j < pt->nblk; j++) {
		if ((rc = net_block_fetch(n, &pt->blk[j], buf + off)) < 0) {
			free(buf);
			return rc;
		}
		off += pt->blk[j].plain_len;
		f->done++;
		f->bytes_left -= f->bytes_left < pt->blk[j].plain_len ?
		    f->bytes_left : pt->blk[j].plain_len;
		fetched_tell(f);
	}
	*out = buf;
	return 0;
}

/* The newest head of hs (or seq == version) that opens: its layout and
 * suppliers. -ENOENT / -EBADMSG with a log line when none. */
static int
pick(const struct owner__index_io *io, const struct heads *hs, uint64_t version,
    struct owner__layout *l, struct owner__sup **sups, int *nsup, int *which)
{
	int rc;

	for (int i = 0; i < hs->n; i++) {
		if (version && hs->v[i].seq != version)
			continue;
		if ((rc = head_open(io, &hs->v[i], l, sups, nsup)) == 0) {
			*which = i;
			return 0;
		}
		log_warn("index: head %" PRIu64 " from %s does not open: %s",
		    hs->v[i].seq, hs->v[i].addr, strerror(-rc));
	}
	log_error("index: %s", version ? "that version is on no supplier "
	    "(see `peerfs versions`)" : "no head opens with this key");
	return version ? -ENOENT : -EBADMSG;
}

int
owner_index_restore(struct net *n, const struct cr_identity *id,
    struct store *st, uint64_t version,
    const struct owner_progress *progress)
{
	struct fetched f = { .to = progress };
	const struct owner__index_io io_ = { .net = n, .store = st, .id = id,
	    .keep_versions = 1 }, *io = &io_;
	struct heads hs = { 0 };
	struct owner__layout l = { 0 };
	struct owner__sup *sups = NULL;
	struct store_txn *t;
	int rc, nsup = 0;
	uint64_t newest, gen, used = 0, used_time = 0;

	/* The suppliers we were given may all be stale: those the index
	 * names are asked too, until the choice no longer changes. */
	for (int round = 0; round < 3; round++) {
		struct owner__layout l2;
		struct owner__sup *sups2;
		int nsup2, which, added = 0;

		heads_free(&hs);
		if ((rc = heads_get(n, &hs)) < 0)
			goto out;
		if (hs.n == 0) {
			log_error("index: no supplier holds a head of this "
			    "owner");
			rc = -ENOENT;
			goto out;
		}
		if ((rc = pick(io, &hs, version, &l2, &sups2, &nsup2,
		    &which)) < 0)
			goto out;
		if (hs.v[which].seq == used) {
			owner__layout_free(&l2);
			free(sups2);
			break;
		}
		owner__layout_free(&l);
		free(sups);
		l = l2;
		sups = sups2;
		nsup = nsup2;
		used = hs.v[which].seq;
		used_time = hs.v[which].time;
		for (int i = 0; i < nsup; i++) {
			rc = net_add_known_peer(n, sups[i].addr, sups[i].pk);
			if (rc < 0)
				log_warn("index: supplier %s: %s",
				    sups[i].addr, strerror(-rc));
			else
				added++;
		}
		net_wait_online(n, added, 10000);
	}
	newest = hs.v[0].seq;
	warn_stale(&hs, newest);
	for (int i = 0; i < l.nparts; i++)
		f.total += l.parts[i].nblk;
	f.bytes_left = owner__layout_bytes(&l);
	fetched_tell(&f);
	for (int i = 0; i < l.nparts; i++) {
		unsigned char *buf;

		if ((rc = fetch_part(n, &l.parts[i], &buf, &f)) < 0) {
			log_error("index: part %d of head %" PRIu64 ": %s", i,
			    used, strerror(-rc));
			goto out;
		}
		rc = store_index_apply(st, buf, l.parts[i].bytes);
		sodium_memzero(buf, l.parts[i].bytes);
		free(buf);
		if (rc < 0) {
			log_error("index: part %d of head %" PRIu64 " does not "
			    "apply: %s", i, used, strerror(-rc));
			goto out;
		}
	}
	/* The next upload continues this version, above every seq seen. */
	if ((rc = store_index_gen(st, &gen)) < 0)
		goto out;
	if ((rc = owner__index_adopt(io, newest, used, used_time * 1000, gen, &l)) < 0)
		goto out;
	if ((rc = store_txn_begin(st, 0, &t)) == 0) {
		uint64_t info[2] = { used, used_time };

		if ((rc = store_misc_u64s_put(t, STORE_MISC_INDEX_RESTORED,
		    info, 2)) < 0 || (used < newest &&
		    (rc = store_misc_flag_put(t, STORE_MISC_INDEX_OLDER, 1)) < 0))
			store_txn_abort(t);
		else
			rc = store_txn_commit(t);
	}
	if (rc == 0)
		log_info("index: restored head %" PRIu64 " (%" PRIu64
		    " bytes in %d parts)", used, owner__layout_bytes(&l),
		    l.nparts);
out:
	owner__layout_free(&l);
	free(sups);
	heads_free(&hs);
	return rc;
}

int
owner_index_head_code(struct net *n, const struct cr_identity *id,
    uint64_t version, struct owner_code *code)
{
	const struct owner__index_io io = { .net = n, .id = id };
	struct heads hs;
	int rc = -ENOENT;

	if ((rc = heads_get(n, &hs)) < 0)
		return rc;
	rc = -ENOENT;
	for (int i = 0; i < hs.n && rc < 0; i++) {
		struct owner__layout l;
		struct owner__sup *sups;
		int nsup;

		if (version && hs.v[i].seq != version)
			continue;
		if (head_open_code(&io, &hs.v[i], &l, &sups, &nsup, NULL,
		    code) == 0) {
			owner__layout_free(&l);
			free(sups);
			rc = 0;
		}
	}
	heads_free(&hs);
	return rc;
}

int
owner_home_code(struct store *st, int *k, int *m)
{
	struct owner__layout l;
	int rc;

	if ((rc = owner__index_local(st, &l)) < 0)
		return rc;
	rc = -ENOENT;
	if (l.nparts && l.parts[0].nblk) {
		*k = l.parts[0].blk[0].k;
		*m = l.parts[0].blk[0].m;
		rc = 0;
	}
	owner__layout_free(&l);
	return rc;
}

int
owner__index_list(const struct owner__index_io *io,
    int (*cb)(void *arg, uint64_t seq, uint64_t time, uint64_t size,
    const struct owner__lease *lease), void *arg)
{
	struct net *n = io->net;
	struct heads hs;
	int rc, count = 0;

	if ((rc = heads_get(n, &hs)) < 0)
		return rc;
	for (int i = 0; i < hs.n; i++) {
		struct owner__layout l;
		struct owner__sup *sups;
		struct owner__lease ls = { 0 };
		uint64_t size;
		int nsup;

		if (i && hs.v[i].seq == hs.v[i - 1].seq)
			continue;
		if (head_open_lease(io, &hs.v[i], &l, &sups, &nsup, &ls) == 0) {
			size = owner__layout_bytes(&l);
			owner__layout_free(&l);
			free(sups);
		} else {
			size = hs.v[i].len;
		}
		count++;
		if ((rc = cb(arg, hs.v[i].seq, hs.v[i].time, size, &ls)) != 0)
			break;
	}
	heads_free(&hs);
	return rc < 0 ? rc : count;
}

/* ---- following the newest version ------------------------------------------- */

int
owner__index_newest(const struct owner__index_io *io, struct owner__newest *nw)
{
	struct heads hs;
	int rc;

	memset(nw, 0, sizeof *nw);
	/* Two per supplier: the newest, and the one before should the
	 * newest not open. */
	if ((rc = heads_get_max(io->net, 2, &hs)) < 0)
		return rc;
	rc = 0;
	for (int i = 0; i < hs.n; i++) {
		struct owner__sup *sups;
		int nsup;

		if (i && hs.v[i].seq == hs.v[i - 1].seq)
			continue;
		if (head_open_lease(io, &hs.v[i], &nw->l, &sups, &nsup,
		    &nw->lease) < 0)
			continue;
		free(sups);
		nw->seq = hs.v[i].seq;
		nw->time = hs.v[i].time;
		rc = 1;
		break;
	}
	heads_free(&hs);
	return rc;
}

static int
same_part(const struct owner__part *a, const struct owner__part *b)
{
	if (a->kind != b->kind || a->nblk != b->nblk || a->bytes != b->bytes)
		return 0;
	for (int j = 0; j < a->nblk; j++)
		if (memcmp(a->blk[j].id, b->blk[j].id, CR_ID_BYTES) != 0)
			return 0;
	return 1;
}

int
owner__index_follow(const struct owner__index_io *io,
    const struct owner__newest *nw, int fresh)
{
	struct owner__layout cur;
	uint64_t gen;
	int rc, from = 0;

	if ((rc = owner__index_local(io->store, &cur)) < 0)
		return rc;
	/* The same base and our segments first: only the new segments. */
	if (!fresh && cur.nparts && cur.nparts <= nw->l.nparts) {
		from = cur.nparts;
		for (int i = 0; i < cur.nparts; i++)
			if (!same_part(&cur.parts[i], &nw->l.parts[i]))
				from = 0;
	}
	owner__layout_free(&cur);
	for (int i = from; i < nw->l.nparts; i++) {
		struct fetched f = { 0 };	/* nobody to tell */
		unsigned char *buf;

		if ((rc = fetch_part(io->net, &nw->l.parts[i], &buf, &f)) < 0) {
			log_warn("index: part %d of head %" PRIu64 ": %s", i,
			    nw->seq, strerror(-rc));
			return rc;
		}
		rc = i == 0 ? store_index_replace(io->store, buf,
		    nw->l.parts[i].bytes) : store_index_apply(io->store, buf,
		    nw->l.parts[i].bytes);
		sodium_memzero(buf, nw->l.parts[i].bytes);
		free(buf);
		if (rc < 0) {
			log_warn("index: part %d of head %" PRIu64 " does not "
			    "apply: %s", i, nw->seq, strerror(-rc));
			return rc;
		}
	}
	if ((rc = store_index_gen(io->store, &gen)) < 0)
		return rc;
	return owner__index_adopt(io, nw->seq, nw->seq, nw->time * 1000, gen,
	    &nw->l);
}
