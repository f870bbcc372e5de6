/* owner/pin.c - pinned subtrees (`peerfs pin PATH`): every stored block of
 * every file under a pinned inode is kept on the owner's disk (store/pin.c,
 * sealed ciphertext) so the subtree reads with no supplier reachable and
 * no cache.
 *
 * The pin marks are the inode numbers in misc "fs.pins" (be64 each), so
 * they need no per-file state: a file is pinned when a pinned directory
 * holds it, whenever it was created or moved there. A pass walks the
 * pinned subtrees, makes the set of block ids they reference (p->want),
 * keeps every wanted block that is missing (from the cache, else from the
 * suppliers when some are online) and deletes pinned blocks nobody wants
 * any more (unpinned, overwritten, deleted files). A background thread
 * ("pin") runs a pass every PIN_INTERVAL_MS, so files written later into
 * a pinned directory are kept once uploaded; `peerfs pin` runs one at
 * once and waits for it.
 *
 * Control: setxattr(PATH, "user.peerfs.pin", "1" | "0") pins / unpins;
 * getxattr(PATH, "user.peerfs.pin") describes PATH's subtree. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <sodium.h>

#include "owner/internal.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define PIN_MAX		4096		/* pinned roots */
#define PIN_INTERVAL_MS	10000
#define PIN_PEERS	64

struct owner__pin {
	struct owner *o;
	struct worker *w;	/* "pin" */
	pthread_mutex_t pass;	/* one pass at a time */
	pthread_mutex_t lock;	/* protects want */
	struct vec want;	/* block ids, sorted, unique */
};

/* ---- sets of ids and lists of inodes (struct vec) -------------------------- */

static const unsigned char *
id_at(const struct vec *v, size_t i)
{
	return (const unsigned char *)v->p + i * CR_ID_BYTES;
}

static int
id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, CR_ID_BYTES);
}

/* Sorted and unique, for id_has. */
static void
ids_sort(struct vec *v)
{
	unsigned char *id = v->p;
	size_t o = 0;

	if (v->n == 0)
		return;
	qsort(id, v->n, CR_ID_BYTES, id_cmp);
	for (size_t i = 1; i < v->n; i++)
		if (memcmp(id + i * CR_ID_BYTES, id + o * CR_ID_BYTES,
		    CR_ID_BYTES) != 0)
			memcpy(id + ++o * CR_ID_BYTES, id + i * CR_ID_BYTES,
			    CR_ID_BYTES);
	v->n = o + 1;
}

static int
id_has(const struct vec *v, const unsigned char *id)
{
	return v->n && bsearch(id, v->p, v->n, CR_ID_BYTES, id_cmp) != NULL;
}

static int
u64_push(struct vec *v, uint64_t x)
{
	return vec_push(v, &x, sizeof x);
}

static uint64_t
u64_at(const struct vec *v, size_t i)
{
	return ((const uint64_t *)v->p)[i];
}

/* ---- pin marks ------------------------------------------------------------ */

static int
roots_get(struct store_txn *t, struct vec *out)
{
	uint64_t *v = malloc(PIN_MAX * sizeof *v);
	int rc, n;

	if (v == NULL)
		return -ENOMEM;
	rc = n = store_misc_u64s_get(t, STORE_MISC_PINS, v, PIN_MAX);
	if (rc == -ENOENT)
		rc = n = 0;
	for (int i = 0; rc >= 0 && i < n && i < PIN_MAX; i++)
		rc = u64_push(out, v[i]);
	free(v);
	return rc < 0 ? rc : 0;
}

static int
roots_put(struct store_txn *t, const struct vec *r)
{
	uint64_t *v = malloc(r->n * sizeof *v + 1);
	int rc;

	if (v == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++)
		v[i] = u64_at(r, i);
	rc = store_misc_u64s_put(t, STORE_MISC_PINS, v, r->n);
	free(v);
	return rc;
}

/* ---- walking subtrees ----------------------------------------------------- */

struct walk {
	struct store_txn *t;
	struct vec *ids;	/* block ids referenced (may be NULL) */
	struct vec queue;	/* inodes still to visit */
	struct vec *seen;	/* every inode visited (may be NULL) */
	uint64_t files, bytes;
};

static int
walk_dirent(void *arg, const char *name, uint64_t ino)
{
	return u64_push(&((struct walk *)arg)->queue, ino);
}

static int
walk_extent(void *arg, uint64_t bno, const unsigned char *id)
{
	struct walk *w = arg;

	return w->ids ? vec_push(w->ids, id, CR_ID_BYTES) : 0;
}

/* Visits ino and everything below it (breadth first, so iterations never
 * nest). -ENOENT when ino itself is gone. */
static int
walk(struct walk *w, uint64_t ino)
{
	struct store_inode in;
	size_t head = w->queue.n;
	int rc;

	if ((rc = u64_push(&w->queue, ino)) < 0)
		return rc;
	for (; head < w->queue.n; head++) {
		uint64_t cur = u64_at(&w->queue, head);

		if ((rc = store_ino_get(w->t, cur, &in)) < 0) {
			if (rc == -ENOENT && cur != ino)
				continue;	/* raced with an unlink */
			return rc;
		}
		if (w->seen && (rc = u64_push(w->seen, cur)) < 0)
			return rc;
		if (S_ISDIR(in.mode)) {
			rc = store_dirent_iter(w->t, cur, NULL, walk_dirent, w);
		} else if (S_ISREG(in.mode)) {
			w->files++;
			w->bytes += in.size;
			/* A tiny file's inline block has no extent: it is
			 * in the metadata, local already. */
			rc = store_extent_iter(w->t, cur, 0, walk_extent, w);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The wanted block ids: every extent under every live root. Roots that
 * no longer exist are dropped from the marks. */
static int
collect(struct owner *o, struct vec *ids)
{
	struct vec roots = { 0 }, live = { 0 };
	struct walk w = { .ids = ids };
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 1, &w.t)) < 0)
		return rc;
	rc = roots_get(w.t, &roots);
	for (size_t i = 0; rc >= 0 && i < roots.n; i++) {
		w.queue.n = 0;
		if ((rc = walk(&w, u64_at(&roots, i))) == 0)
			rc = u64_push(&live, u64_at(&roots, i));
		else if (rc == -ENOENT)
			rc = 0;
	}
	store_txn_abort(w.t);
	if (rc == 0 && live.n != roots.n) {
		if ((rc = store_txn_begin(o->conf.store, 0, &w.t)) == 0) {
			if ((rc = roots_put(w.t, &live)) < 0)
				store_txn_abort(w.t);
			else
				rc = store_txn_commit(w.t);
		}
	}
	vec_release(&roots);
	vec_release(&live);
	vec_release(&w.queue);
	ids_sort(ids);
	return rc;
}

/* ---- keeping blocks -------------------------------------------------------- */

/* Seals plain again (convergent: the same ciphertext, the same id) and
 * writes it to the pinned store. */
static int
keep(struct owner *o, const struct store_block *b, const void *plain)
{
	unsigned char key[CR_KEY_BYTES], id[CR_ID_BYTES];
	unsigned char *c = malloc((size_t)b->plain_len + CR_SEAL_ABYTES);
	int rc;

	if (c == NULL)
		return -ENOMEM;
	cr_block_seal(c, key, id, plain, b->plain_len, o->conf.datakey);
	sodium_memzero(key, sizeof key);
	if (memcmp(id, b->id, CR_ID_BYTES) != 0) {
		log_warn("pin: a block does not seal to its id; not kept");
		rc = -EBADMSG;
	} else {
		rc = store_pin_put(o->conf.store, b->id, c,
		    (size_t)b->plain_len + CR_SEAL_ABYTES);
	}
	free(c);
	return rc;
}

static int
online_peers(struct owner *o)
{
	struct net_peer_info *pi;
	int n, up = 0;

	if (o->conf.net == NULL)
		return 0;
	if ((pi = calloc(PIN_PEERS, sizeof *pi)) == NULL)
		return 0;
	n = net_peers(o->conf.net, pi, PIN_PEERS, 0);
	for (int i = 0; i < n && i < PIN_PEERS; i++)
		up += pi[i].state == NET_PEER_ONLINE;
	free(pi);
	return up;
}

/* Gets wanted block id into the pinned store: cache, else suppliers
 * (when fetch). 0 kept, -ENOENT no such record (nothing to keep), or
 * -errno. */
static int
fetch_one(struct owner *o, const unsigned char *id, unsigned char *buf,
    uint32_t bs, int fetch)
{
	struct store_block b;
	struct store_txn *t;
	ssize_t n = -ENOENT;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		return rc;
	rc = store_block_get(t, id, &b);
	store_txn_abort(t);
	if (rc < 0)
		return rc;
	if (b.plain_len > bs) {
		rc = -EIO;
		goto out;
	}
	if (o->conf.cache != NULL)
		n = store_cache_get(o->conf.cache, id, buf, bs);
	if (n != (ssize_t)b.plain_len) {
		if (!fetch) {
			rc = -EAGAIN;
			goto out;
		}
		if ((rc = net_block_fetch(o->conf.net, &b, buf)) < 0)
			goto out;
	}
	rc = keep(o, &b, buf);
out:
	sodium_memzero(&b, sizeof b);
	return rc;
}

struct gc {
	struct owner *o;
	const struct vec *want;
	uint64_t freed, bytes;
};

static int
gc_one(void *arg, const unsigned char *id, uint64_t bytes)
{
	struct gc *g = arg;

	if (!id_has(g->want, id) && store_pin_del(g->o->conf.store, id) == 0) {
		g->freed++;
		g->bytes += bytes;
	}
	return 0;
}

/* One pass: recompute the wanted set, keep what is missing, free what is
 * not wanted. Returns the number of wanted blocks still missing, or
 * -errno. */
static int
pass(struct owner__pin *p, int fetch)
{
	struct owner *o = p->o;
	uint32_t bs = o->conf.block_size;
	struct vec ids = { 0 }, old;
	struct gc g = { o, NULL, 0, 0 };
	unsigned char *buf = NULL;
	uint64_t missing = 0, kept = 0;
	int rc, first_err = 0;

	pthread_mutex_lock(&p->pass);
	if ((rc = collect(o, &ids)) < 0) {
		vec_release(&ids);
		pthread_mutex_unlock(&p->pass);
		return rc;
	}
	pthread_mutex_lock(&p->lock);
	old = p->want;
	p->want = ids;
	pthread_mutex_unlock(&p->lock);
	vec_release(&old);

	if (fetch && online_peers(o) == 0)
		fetch = 0;
	for (size_t i = 0; i < ids.n; i++) {
		if (store_pin_has(o->conf.store, id_at(&ids, i)) == 1)
			continue;
		if (buf == NULL && (buf = sodium_malloc(bs)) == NULL) {
			rc = -ENOMEM;
			break;
		}
		rc = fetch_one(o, id_at(&ids, i), buf, bs, fetch);
		if (rc == 0)
			kept++;
		else if (rc != -ENOENT) {
			missing++;
			if (!first_err && rc != -EAGAIN)
				first_err = rc;
		}
	}
	if (buf != NULL)
		sodium_free(buf);
	/* The want set is only replaced under p->pass, which we hold. */
	g.want = &p->want;
	store_pin_list(o->conf.store, gc_one, &g);
	if (kept || g.freed || (missing && fetch))
		log_info("pin: %" PRIu64 " blocks kept, %" PRIu64 " freed (%.1f "
		    "MiB), %" PRIu64 " still missing%s%s", kept, g.freed,
		    g.bytes / 1048576.0, missing, first_err ? ": " : "",
		    first_err ? strerror(-first_err) : "");
	pthread_mutex_unlock(&p->pass);
	if (rc == -ENOMEM)
		return rc;
	return missing > INT32_MAX ? INT32_MAX : (int)missing;
}

static int64_t
pin_pass(void *arg, int idx)
{
	pass(arg, 1);
	return PIN_INTERVAL_MS;
}

int
owner__pin_init(struct owner *o)
{
	struct owner__pin *p;
	/* The first pass at once: the want set serves reads from the start
	 * and a pin made offline gets its blocks when suppliers are back. */
	struct worker_conf wc = { .name = "pin", .pass = pin_pass };
	int rc;

	if ((p = calloc(1, sizeof *p)) == NULL)
		return -ENOMEM;
	p->o = o;
	pthread_mutex_init(&p->pass, NULL);
	pthread_mutex_init(&p->lock, NULL);
	o->pin = p;
	wc.arg = p;
	if ((rc = worker_start(&p->w, &wc)) < 0) {
		log_warn("pin: cannot start the pin thread: %s", strerror(-rc));
		p->w = NULL;	/* pins still work when asked */
	}
	return 0;
}

void
owner__pin_destroy(struct owner *o)
{
	struct owner__pin *p = o->pin;

	if (p == NULL)
		return;
	worker_stop(p->w);
	vec_release(&p->want);
	pthread_mutex_destroy(&p->pass);
	pthread_mutex_destroy(&p->lock);
	free(p);
	o->pin = NULL;
}

int
owner__pin_read(struct owner *o, const struct store_block *b, void *buf)
{
	size_t cap = (size_t)b->plain_len + CR_SEAL_ABYTES;
	unsigned char *c;
	ssize_t n;
	int rc;

	if (o->pin == NULL)
		return -ENOENT;
	if ((c = malloc(cap)) == NULL)
		return -ENOMEM;
	n = store_pin_get(o->conf.store, b->id, c, cap);
	if (n < 0) {
		rc = n == -EFBIG ? -EBADMSG : (int)n;
	} else if ((size_t)n != cap) {
		rc = -EBADMSG;
	} else {
		rc = cr_block_open(buf, c, cap, b->key, b->id);
	}
	free(c);
	if (rc == -EBADMSG) {
		/* Damaged on disk: drop it; the next pass fetches it again. */
		log_warn("pin: a pinned block failed its check; removed");
		store_pin_del(o->conf.store, b->id);
		return -ENOENT;
	}
	return rc < 0 ? rc : (int)b->plain_len;
}

void
owner__pin_fetched(struct owner *o, const struct store_block *b, const void *plain)
{
	struct owner__pin *p = o->pin;
	int wanted;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	wanted = id_has(&p->want, b->id);
	pthread_mutex_unlock(&p->lock);
	if (wanted && store_pin_has(o->conf.store, b->id) == 0)
		keep(o, b, plain);
}

static int
mark(struct owner *o, uint64_t ino, int on)
{
	struct vec roots = { 0 }, below = { 0 }, out = { 0 };
	struct walk w = { .seen = &below };
	struct store_inode in;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 0, &w.t)) < 0)
		return rc;
	if ((rc = store_ino_get(w.t, ino, &in)) < 0)
		goto out;
	if (on && !S_ISDIR(in.mode) && !S_ISREG(in.mode)) {
		rc = -EINVAL;
		goto out;
	}
	if ((rc = roots_get(w.t, &roots)) < 0)
		goto out;
	if (on) {
		for (size_t i = 0; i < roots.n; i++)
			if (u64_at(&roots, i) == ino)
				goto out;	/* already */
		if (roots.n >= PIN_MAX) {
			rc = -ENOSPC;
			goto out;
		}
		rc = u64_push(&roots, ino);
	} else {
		/* Unpinning a directory unpins what was pinned inside it. */
		if ((rc = walk(&w, ino)) < 0)
			goto out;
		for (size_t i = 0; rc == 0 && i < roots.n; i++) {
			int inside = 0;

			for (size_t j = 0; j < below.n && !inside; j++)
				inside = u64_at(&below, j) == u64_at(&roots, i);
			if (!inside)
				rc = u64_push(&out, u64_at(&roots, i));
		}
		if (rc == 0 && out.n == roots.n)
			goto out;	/* nothing pinned there */
		vec_release(&roots);
		roots = out;
		out = (struct vec){ 0 };
	}
	if (rc == 0)
		rc = roots_put(w.t, &roots);
out:
	if (rc == 0)
		rc = store_txn_commit(w.t);
	else
		store_txn_abort(w.t);
	vec_release(&roots);
	vec_release(&below);
	vec_release(&out);
	vec_release(&w.queue);
	return rc;
}

int
owner_pin_set(struct owner *o, uint64_t ino, const char *val, size_t len)
{
	int on, rc;

	if (o->pin == NULL)
		return -ENOTSUP;
	if (len == 1 && (val[0] == '0' || val[0] == '1'))
		on = val[0] == '1';
	else
		return -EINVAL;
	if ((rc = mark(o, ino, on)) < 0)
		return rc;
	log_info("pin: inode %" PRIu64 " %s", ino, on ? "pinned" : "unpinned");
	if ((rc = pass(o->pin, on)) < 0)
		return rc;
	if (on && rc > 0) {
		log_warn("pin: %d blocks of pinned files could not be fetched "
		    "(suppliers unreachable?); they are fetched when suppliers "
		    "are back", rc);
		return -EIO;
	}
	return 0;
}

/* 1 when ino is pinned (itself or under a pinned directory). */
static int
is_pinned(struct store_txn *t, uint64_t ino)
{
	struct vec roots = { 0 }, seen = { 0 };
	struct walk w = { .t = t, .seen = &seen };
	int rc, found = 0;

	if ((rc = roots_get(t, &roots)) < 0)
		return rc;
	for (size_t i = 0; !found && i < roots.n; i++) {
		if (u64_at(&roots, i) == ino) {
			found = 1;
			break;
		}
		seen.n = 0;
		w.queue.n = 0;
		if ((rc = walk(&w, u64_at(&roots, i))) < 0 && rc != -ENOENT)
			break;
		rc = 0;
		for (size_t j = 0; j < seen.n && !found; j++)
			found = u64_at(&seen, j) == ino;
	}
	vec_release(&roots);
	vec_release(&seen);
	vec_release(&w.queue);
	return rc < 0 ? rc : found;
}

int
owner_pin_info(struct owner *o, uint64_t ino, char **val, size_t *len)
{
	struct vec ids = { 0 };
	struct walk w = { .ids = &ids };
	uint64_t local = 0, root = 0;
	size_t blocks;
	struct vec roots = { 0 };
	char *s;
	int rc, pinned = 0, n;

	if ((rc = store_txn_begin(o->conf.store, 1, &w.t)) < 0)
		return rc;
	if ((rc = walk(&w, ino)) == 0)
		rc = pinned = is_pinned(w.t, ino);
	if (rc >= 0 && (rc = roots_get(w.t, &roots)) == 0)
		for (size_t i = 0; i < roots.n; i++)
			root |= u64_at(&roots, i) == ino;
	store_txn_abort(w.t);
	vec_release(&roots);
	vec_release(&w.queue);
	ids_sort(&ids);
	for (size_t i = 0; rc >= 0 && i < ids.n; i++)
		local += store_pin_has(o->conf.store, id_at(&ids, i)) == 1;
	blocks = ids.n;		/* vec_release() zeroes it */
	vec_release(&ids);
	if (rc < 0)
		return rc;
	n = asprintf(&s, "{\"pinned\": %d, \"root\": %d, \"files\": %" PRIu64
	    ", \"bytes\": %" PRIu64 ", \"blocks\": %zu, \"local\": %" PRIu64
	    "}\n", pinned, (int)root, w.files, w.bytes, blocks, local);
	if (n < 0)
		return -ENOMEM;
	*val = s;
	*len = (size_t)n;
	return 0;
}
