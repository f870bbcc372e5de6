/* owner/publish.c - keeps the index on suppliers current: a thread
 * ("index") uploads a new version at most every INDEX_PERIOD_MS while the
 * metadata changes, and `peerfs sync`, fsync of inline bytes and unmount
 * upload one at once (owner/index.c does the uploading). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "log.h"
#include "owner/internal.h"
#include "strbuf.h"
#include "worker.h"

#define INDEX_PERIOD_MS		3000
#define INDEX_BACKOFF_MS	10000	/* after a failed upload */

struct owner__index {
	struct worker *w;
	int checked;			/* the thread's own */
	pthread_mutex_t pub;		/* one upload at a time; take
					 * before nothing else */
};

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
		owner__dirty_published(o, gen);
	pthread_mutex_unlock(&x->pub);
	if (rc > 0)
		owner__delete_kick(o);	/* old index blocks may await deletion */
	if (rc < 0 && !quiet)
		log_warn("index: upload failed: %s", strerror(-rc));
	return rc;
}

static int64_t
index_pass(void *arg, int idx)
{
	struct owner *o = arg;
	struct owner__index *x = o->index;
	struct owner__index_io io;
	int rc;

	if (!x->checked) {
		/* Rollback check against what this node published before. */
		owner__index_io_of(o, &io);
		owner__index_check(&io);
		x->checked = 1;
		return INDEX_PERIOD_MS;
	}
	if ((rc = publish(o, 1)) < 0) {
		log_debug("index: upload: %s (retry in %d s)", strerror(-rc),
		    INDEX_BACKOFF_MS / 1000);
		return INDEX_BACKOFF_MS;
	}
	return INDEX_PERIOD_MS;
}

int
owner__index_init(struct owner *o)
{
	struct owner__index *x;
	struct worker_conf wc = {
		.name = "index", .pass = index_pass, .arg = o,
	};
	int rc;

	if (!(x = calloc(1, sizeof *x)))
		return -ENOMEM;
	pthread_mutex_init(&x->pub, NULL);
	o->index = x;
	if (!o->conf.net)
		return 0;
	if ((rc = worker_start(&x->w, &wc)) < 0) {
		x->w = NULL;
		return rc;
	}
	return 0;
}

void
owner__index_destroy(struct owner *o)
{
	struct owner__index *x = o->index;

	if (!x)
		return;
	if (x->w != NULL) {
		worker_stop(x->w);
		/* The last changes before unmount; bounded by the network
		 * timeouts, and nothing is lost when it fails: the next
		 * mount uploads them. */
		if (publish(o, 0) > 0)
			log_info("index: uploaded at unmount");
	}
	pthread_mutex_destroy(&x->pub);
	free(x);
	o->index = NULL;
}

int
owner__index_publish(struct owner *o)
{
	int rc;

	if (!o->index || !o->index->w)
		return 0;
	/* The data is what sync promises; with too few suppliers for a new
	 * index version (one offline of k + m) the thread retries. */
	if ((rc = publish(o, 0)) < 0)
		log_warn("index: not uploaded at sync (%s): retried in the "
		    "background", strerror(-rc));
	return 0;
}

static int
version_line(void *arg, uint64_t seq, uint64_t time, uint64_t size)
{
	strbuf_printf(arg, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", seq, time,
	    size);
	return 0;
}

int
owner_versions(struct owner *o, char **val, size_t *len)
{
	struct owner__index_io io;
	struct strbuf sb = { 0 };
	int rc;

	if (!o->conf.net)
		return -ENOTCONN;
	owner__index_io_of(o, &io);
	if ((rc = owner__index_list(&io, version_line, &sb)) < 0) {
		strbuf_release(&sb);
		return rc;
	}
	return strbuf_take(&sb, val, len);
}
