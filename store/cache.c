/* store/cache.c - plaintext blocks in memory by block id: a chained hash
 * table plus an LRU list, bounded in plaintext bytes, one mutex. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

struct centry {
	unsigned char	 id[CR_ID_BYTES];
	struct centry	*hnext;		/* bucket chain */
	struct centry	*prev, *next;	/* LRU list, most recent first */
	size_t		 len;
	unsigned char	 data[];
};

struct store_cache {
	pthread_mutex_t	  lock;
	size_t		  max_bytes;	/* fixed at creation */
	size_t		  bytes;	/* protected by lock: data held */
	size_t		  count;	/* protected by lock */
	size_t		  nbuckets;	/* protected by lock: power of two */
	struct centry	**buckets;	/* protected by lock */
	struct centry	 *head, *tail;	/* protected by lock: LRU list */
};

#define INITIAL_BUCKETS	256

/* FNV-1a: ids are usually hashes already, but callers may use any bytes. */
static size_t
id_hash(const unsigned char *id)
{
	uint64_t h = 14695981039346656037ULL;

	for (int i = 0; i < CR_ID_BYTES; i++)
		h = (h ^ id[i]) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 32));
}

static struct centry **
slot(struct store_cache *c, const unsigned char *id)
{
	struct centry **pp = &c->buckets[id_hash(id) & (c->nbuckets - 1)];

	while (*pp && memcmp((*pp)->id, id, CR_ID_BYTES) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static void
lru_unlink(struct store_cache *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push_front(struct store_cache *c, struct centry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	else
		c->tail = e;
	c->head = e;
}

/* Unlinks and frees the entry *pp points to. */
static void
remove_at(struct store_cache *c, struct centry **pp)
{
	struct centry *e = *pp;

	*pp = e->hnext;
	lru_unlink(c, e);
	c->bytes -= e->len;
	c->count--;
	free(e);
}

/* Doubles the table when chains get long; on ENOMEM keeps the old one. */
static void
maybe_grow(struct store_cache *c)
{
	size_t n = c->nbuckets * 2;
	struct centry **nb;

	if (c->count <= c->nbuckets || !(nb = calloc(n, sizeof *nb)))
		return;
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct centry *e = c->buckets[i], *next;
		for (; e; e = next) {
			next = e->hnext;
			size_t b = id_hash(e->id) & (n - 1);
			e->hnext = nb[b];
			nb[b] = e;
		}
	}
	free(c->buckets);
	c->buckets = nb;
	c->nbuckets = n;
}

int
store_cache_new(struct store_cache **out, size_t max_bytes)
{
	struct store_cache *c = calloc(1, sizeof *c);

	if (!c)
		return -ENOMEM;
	c->max_bytes = max_bytes;
	c->nbuckets = INITIAL_BUCKETS;
	if (!(c->buckets = calloc(c->nbuckets, sizeof *c->buckets))) {
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void
store_cache_free(struct store_cache *c)
{
	if (!c)
		return;
	store_cache_clear(c);
	pthread_mutex_destroy(&c->lock);
	free(c->buckets);
	free(c);
}

ssize_t
store_cache_get(struct store_cache *c, const unsigned char id[CR_ID_BYTES],
    void *buf, size_t cap)
{
	struct centry *e;
	ssize_t rc = -ENOENT;

	pthread_mutex_lock(&c->lock);
	if ((e = *slot(c, id)) != NULL) {
		if (cap)
			memcpy(buf, e->data, e->len < cap ? e->len : cap);
		lru_unlink(c, e);
		lru_push_front(c, e);
		rc = (ssize_t)e->len;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

ssize_t
store_cache_get_range(struct store_cache *c,
    const unsigned char id[CR_ID_BYTES], size_t off, void *buf, size_t len)
{
	struct centry *e;
	ssize_t rc = -ENOENT;

	pthread_mutex_lock(&c->lock);
	if ((e = *slot(c, id)) != NULL) {
		if (off < e->len && len)
			memcpy(buf, e->data + off,
			    len < e->len - off ? len : e->len - off);
		lru_unlink(c, e);
		lru_push_front(c, e);
		rc = (ssize_t)e->len;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void
store_cache_put(struct store_cache *c, const unsigned char id[CR_ID_BYTES],
    const void *data, size_t len)
{
	struct centry *e = NULL, **pp;

	/* Copy outside the lock: blocks are megabytes. */
	if (c->max_bytes > 0 && len <= c->max_bytes &&
	    (e = malloc(sizeof *e + len)) != NULL) {
		memcpy(e->id, id, CR_ID_BYTES);
		memcpy(e->data, data, len);
		e->len = len;
	}
	pthread_mutex_lock(&c->lock);
	/* The old bytes go even when the new ones cannot be kept. */
	if (*(pp = slot(c, id)) != NULL)
		remove_at(c, pp);
	if (e) {
		while (c->bytes + len > c->max_bytes && c->tail)
			remove_at(c, slot(c, c->tail->id));
		pp = slot(c, id);
		e->hnext = NULL;
		*pp = e;
		lru_push_front(c, e);
		c->bytes += len;
		c->count++;
		maybe_grow(c);
	}
	pthread_mutex_unlock(&c->lock);
}

void
store_cache_drop(struct store_cache *c, const unsigned char id[CR_ID_BYTES])
{
	struct centry **pp;

	pthread_mutex_lock(&c->lock);
	if (*(pp = slot(c, id)) != NULL)
		remove_at(c, pp);
	pthread_mutex_unlock(&c->lock);
}

void
store_cache_clear(struct store_cache *c)
{
	struct centry *e, *next;

	pthread_mutex_lock(&c->lock);
	for (e = c->head; e; e = next) {
		next = e->next;
		free(e);
	}
	memset(c->buckets, 0, c->nbuckets * sizeof *c->buckets);
	c->head = c->tail = NULL;
	c->bytes = 0;
	c->count = 0;
	pthread_mutex_unlock(&c->lock);
}

size_t
store_cache_bytes(struct store_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return n;
}
