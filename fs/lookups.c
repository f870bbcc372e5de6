/* fs/lookups.c - lookup counts (FUSE forget) and the end of inodes.
 * The kernel holds lookups on inodes (every entry reply adds one, forget
 * takes them back). An inode whose last name is gone (nlink 0) lives on
 * while the kernel holds it (an open file, a cwd); when both are gone its
 * contents (owner_drop) and record go. fs__lookups_init() frees those a
 * crash left behind. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "fs/internal.h"
#include "log.h"

struct ref {
	uint64_t ino;
	uint64_t n;		/* lookups the kernel holds */
	int dropping;		/* a thread is freeing the inode; the entry
				 * stays (and r stays valid) meanwhile */
	int again;		/* asked again while dropping */
	struct ref *next;
};

struct fs__lookups {
	pthread_mutex_t lock;	/* protects everything below; never held
				 * across a store transaction */
	struct ref **tab;
	size_t nbuckets;	/* power of two */
	size_t count;
};

/* ---- lookup counts ------------------------------------------------------ */

static size_t
ref_hash(const struct fs__lookups *m, uint64_t ino)
{
	ino *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(ino >> 32) & (m->nbuckets - 1);
}

static struct ref **
ref_slot(struct fs__lookups *m, uint64_t ino)
{
	struct ref **p = &m->tab[ref_hash(m, ino)];

	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

static void
ref_grow(struct fs__lookups *m)
{
	size_t nb = m->nbuckets * 2, i;
	struct ref **tab = calloc(nb, sizeof *tab), *r, *next;
	struct ref **old = m->tab;
	size_t oldn = m->nbuckets;

	if (!tab)
		return;		/* longer chains, still correct */
	m->tab = tab;
	m->nbuckets = nb;
	for (i = 0; i < oldn; i++)
		for (r = old[i]; r; r = next) {
			next = r->next;
			r->next = tab[ref_hash(m, r->ino)];
			tab[ref_hash(m, r->ino)] = r;
		}
	free(old);
}

/* With m->lock held: the entry of ino, created when missing (NULL on
 * ENOMEM). */
static struct ref *
ref_get(struct fs__lookups *m, uint64_t ino)
{
	struct ref **p = ref_slot(m, ino), *r;

	if (*p)
		return *p;
	if (!(r = calloc(1, sizeof *r)))
		return NULL;
	r->ino = ino;
	*p = r;
	if (++m->count > m->nbuckets)
		ref_grow(m);
	return r;
}

static void
ref_put(struct fs__lookups *m, uint64_t ino)
{
	struct ref **p = ref_slot(m, ino), *r = *p;

	if (r && r->n == 0 && !r->dropping) {
		*p = r->next;
		free(r);
		m->count--;
	}
}

int
fs__lookup_hold(struct fs *fs, uint64_t ino, uint64_t n)
{
	struct fs__lookups *m = fs->lookups;
	struct ref *r;

	if (ino == FUSE_ROOT_ID)
		return 0;	/* the kernel never forgets the root */
	pthread_mutex_lock(&m->lock);
	r = ref_get(m, ino);
	if (r)
		r->n += n;
	pthread_mutex_unlock(&m->lock);
	return r ? 0 : -ENOMEM;
}

/* One attempt: frees ino if it has no name. */
static void
drop_once(struct fs *fs, uint64_t ino)
{
	struct store_inode in;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		goto fail;
	rc = store_ino_get(t, ino, &in);
	store_txn_abort(t);
	if (rc < 0 || in.nlink > 0)
		goto fail;
	/* Without an owner (unit tests of the metadata) there are no
	 * contents to free. */
	if (S_ISREG(in.mode) && fs->conf.owner &&
	    (rc = owner_drop(fs->conf.owner, ino)) < 0)
		goto fail;
	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		goto fail;
	/* No name can come back (link needs a name or a held inode), but
	 * the check is free inside the transaction. */
	if ((rc = store_ino_get(t, ino, &in)) == 0 && in.nlink == 0)
		rc = store_ino_del(t, ino);
	if ((rc = rc < 0 ? (store_txn_abort(t), rc) : store_txn_commit(t)) < 0)
		goto fail;
	log_debug("inode %" PRIu64 " freed", ino);
	return;
fail:
	if (rc < 0 && rc != -ENOENT)
		log_warn("inode %" PRIu64 " not freed (next mount will): %s",
		    ino, strerror(-rc));
}

/* Frees ino when it has no name and the kernel holds no lookup. Threads
 * may race here (unlink, forget): one frees, and repeats its attempt when
 * another one asked meanwhile, as the other's change may be newer than
 * what the first attempt read. */
void
fs__inode_unlinked(struct fs *fs, uint64_t ino)
{
	struct fs__lookups *m = fs->lookups;
	struct ref *r;

	if (ino == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&m->lock);
	r = ref_get(m, ino);
	if (r && r->dropping && r->n == 0)
		r->again = 1;
	if (!r || r->n > 0 || r->dropping) {
		pthread_mutex_unlock(&m->lock);
		return;		/* ENOMEM: the next mount frees it */
	}
	r->dropping = 1;
	do {
		r->again = 0;
		pthread_mutex_unlock(&m->lock);
		drop_once(fs, ino);
		pthread_mutex_lock(&m->lock);
	} while (r->again && r->n == 0);
	r->dropping = 0;
	ref_put(m, ino);
	pthread_mutex_unlock(&m->lock);
}

void
fs__lookup_release(struct fs *fs, uint64_t ino, uint64_t n)
{
	struct fs__lookups *m = fs->lookups;
	struct ref *r;
	int zero = 0;

	if (ino == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&m->lock);
	r = *ref_slot(m, ino);
	if (r) {
		r->n = r->n > n ? r->n - n : 0;
		zero = r->n == 0;
		ref_put(m, ino);
	}
	pthread_mutex_unlock(&m->lock);
	if (zero)
		fs__inode_unlinked(fs, ino);
}

static int
collect_orphan(void *arg, uint64_t ino)
{
	struct { uint64_t *v; size_t n, cap; } *a = arg;

	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		uint64_t *v = realloc(a->v, cap * sizeof *v);

		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = ino;
	return 0;
}

int
fs__lookups_init(struct fs *fs)
{
	struct { uint64_t *v; size_t n, cap; } a = { NULL, 0, 0 };
	struct fs__lookups *m;
	struct store_txn *t;
	size_t i;
	int rc;

	if (!(m = calloc(1, sizeof *m)))
		return -ENOMEM;
	m->nbuckets = 256;
	if (!(m->tab = calloc(m->nbuckets, sizeof *m->tab))) {
		free(m);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	fs->lookups = m;

	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return rc;
	rc = store_ino_orphans(t, collect_orphan, &a);
	store_txn_abort(t);
	if (rc < 0) {
		free(a.v);
		return rc;
	}
	if (a.n)
		log_info("freeing %zu unlinked inode(s) left from before",
		    a.n);
	for (i = 0; i < a.n; i++)
		fs__inode_unlinked(fs, a.v[i]);
	free(a.v);
	return 0;
}

void
fs__lookups_destroy(struct fs *fs)
{
	struct fs__lookups *m = fs->lookups;
	struct ref *r, *next;
	size_t i;

	if (!m)
		return;
	/* Unlinked inodes still open at unmount stay as orphans (nlink 0)
	 * and are freed by the next fs__lookups_init(). */
	for (i = 0; i < m->nbuckets; i++)
		for (r = m->tab[i]; r; r = next) {
			next = r->next;
			free(r);
		}
	free(m->tab);
	pthread_mutex_destroy(&m->lock);
	free(m);
	fs->lookups = NULL;
}

void
fs__op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs__lookup_release(fs__from_req(req), ino, nlookup);
	fuse_reply_none(req);
}

void
fs__op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	struct fs *fs = fs__from_req(req);
	size_t i;

	for (i = 0; i < count; i++)
		fs__lookup_release(fs, f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}
