/* fs/index.c - keeps the index on suppliers current: a thread uploads a
 * new version at most every INDEX_PERIOD_MS while metadata changes, and
 * `peerfs sync` and unmount upload one at once (net_index_publish). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "owner/internal.h"
#include "log.h"

#define INDEX_PERIOD_MS		3000
#define INDEX_BACKOFF_MS	10000	/* after a failed upload */

struct owner__index {
	pthread_t thread;
	int started;
	pthread_mutex_t lock;		/* stop, cond */
	pthread_cond_t cond;
	int stop;			/* protected by lock */
	pthread_mutex_t pub;		/* one upload at a time; take
					 * before nothing else */
};

static void
deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static int
publish(struct owner *o, int quiet)
{
	struct owner__index *x = o->index;
	struct owner__index_io io;
	uint64_t gen;
	int rc;

	/* A nearly full map is kept for deletes, which make room. */
	if ((rc = store_map_room(o->conf.store, STORE_ROOM_COMMIT)) < 0) {
		if (!quiet)
			log_warn("index: metadata map nearly full: version not "
			    "uploaded until files are deleted");
		return rc;
	}
	owner__index_io_of(o, &io);
	pthread_mutex_lock(&x->pub);
	/* Whatever committed before gen is in the version published (or was
	 * in the last one): inline blocks up to it are on the network. */
	if ((rc = store_index_gen(o->conf.store, &gen)) == 0 &&
	    (rc = owner__index_put(&io, 0)) >= 0)
		owner__data_published(o, gen);
	pthread_mutex_unlock(&x->pub);
	if (rc > 0)
		owner__maint_kick(o);	/* old index blocks may await deletion */
	if (rc < 0 && !quiet)
		log_warn("index: upload failed: %s", strerror(-rc));
	return rc;
}

static void *
index_main(void *arg)
{
	struct owner *o = arg;
	struct owner__index *x = o->index;
	struct timespec ts;
	int wait_ms = INDEX_PERIOD_MS, rc;

	/* Rollback check against what this node published before. */
	struct owner__index_io io;

	owner__index_io_of(o, &io);
	owner__index_check(&io);
	pthread_mutex_lock(&x->lock);
	while (!x->stop) {
		deadline(&ts, wait_ms);
		while (!x->stop &&
		    pthread_cond_timedwait(&x->cond, &x->lock, &ts) == 0)
			;
		if (x->stop)
			break;
		pthread_mutex_unlock(&x->lock);
		rc = publish(o, 1);
		if (rc < 0)
			log_debug("index: upload: %s (retry in %d s)",
			    strerror(-rc), INDEX_BACKOFF_MS / 1000);
		wait_ms = rc < 0 ? INDEX_BACKOFF_MS : INDEX_PERIOD_MS;
		pthread_mutex_lock(&x->lock);
	}
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

int
owner__index_init(struct owner *o)
{
	struct owner__index *x;
	pthread_condattr_t ca;

	if (!(x = calloc(1, sizeof *x)))
		return -ENOMEM;
	pthread_mutex_init(&x->lock, NULL);
	pthread_mutex_init(&x->pub, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&x->cond, &ca);
	pthread_condattr_destroy(&ca);
	o->index = x;
	if (!o->conf.net || !o->conf.store)
		return 0;
	if (pthread_create(&x->thread, NULL, index_main, o) != 0) {
		o->index = NULL;
		pthread_cond_destroy(&x->cond);
		pthread_mutex_destroy(&x->lock);
		pthread_mutex_destroy(&x->pub);
		free(x);
		return -EAGAIN;
	}
	x->started = 1;
	return 0;
}

void
owner__index_destroy(struct owner *o)
{
	struct owner__index *x = o->index;

	if (!x)
		return;
	if (x->started) {
		pthread_mutex_lock(&x->lock);
		x->stop = 1;
		pthread_cond_signal(&x->cond);
		pthread_mutex_unlock(&x->lock);
		pthread_join(x->thread, NULL);
		/* The last changes before unmount; bounded by the network
		 * timeouts, and nothing is lost when it fails: the next
		 * mount uploads them. */
		if (publish(o, 0) > 0)
			log_info("index: uploaded at unmount");
	}
	pthread_cond_destroy(&x->cond);
	pthread_mutex_destroy(&x->lock);
	pthread_mutex_destroy(&x->pub);
	free(x);
	o->index = NULL;
}

int
owner__index_publish(struct owner *o)
{
	int rc;

	if (!o->index || !o->index->started)
		return 0;
	/* The data is what sync promises; with too few suppliers for a new
	 * index version (one offline of k + m) the thread retries. */
	if ((rc = publish(o, 0)) < 0)
		log_warn("index: not uploaded at sync (%s): retried in the "
		    "background", strerror(-rc));
	return 0;
}

struct vbuf {
	char *p;
	size_t len, cap;
	int err;
};

static int
version_line(void *arg, uint64_t seq, uint64_t time, uint64_t size)
{
	struct vbuf *v = arg;
	char line[96];
	int n;

	n = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 " %" PRIu64
	    "\n", seq, time, size);
	if (v->len + (size_t)n + 1 > v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 1024;
		char *np = realloc(v->p, cap);

		if (!np)
			return v->err = -ENOMEM;
		v->p = np;
		v->cap = cap;
	}
	memcpy(v->p + v->len, line, (size_t)n);
	v->len += (size_t)n;
	return 0;
}

int
owner_versions(struct owner *o, char **val, size_t *len)
{
	struct owner__index_io io;
	struct vbuf v = { 0 };
	int rc;

	if (!o->conf.net)
		return -ENOTCONN;
	owner__index_io_of(o, &io);
	rc = owner__index_list(&io, version_line, &v);
	if (rc < 0 || v.err) {
		free(v.p);
		return rc < 0 ? rc : v.err;
	}
	if (!v.p && !(v.p = malloc(1)))
		return -ENOMEM;
	*val = v.p;
	*len = v.len;
	return 0;
}
