/* owner/owner.c - the engine's context: opens its modules in order, closes
 * them in reverse, and the calls that span several of them (fsync, sync,
 * the space shown by statfs). */
#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "owner/internal.h"

int
owner_open(struct owner **out, const struct owner_conf *conf)
{
	struct owner *o;
	int rc;

	/* conf.datakey opens every block: guarded, locked memory, wiped
	 * when freed. sodium_malloc() aligns only whole multiples. */
	if (!(o = sodium_malloc((sizeof *o + 63) & ~(size_t)63)))
		return -ENOMEM;
	memset(o, 0, sizeof *o);
	o->conf = *conf;
	if ((rc = owner__refs_init(o)) < 0 ||
	    (rc = owner__reads_init(o)) < 0 ||
	    (rc = owner__dirty_init(o)) < 0 ||
	    (rc = owner__uploads_start(o)) < 0 ||
	    (rc = owner__check_init(o)) < 0 ||
	    (rc = owner__delete_start(o)) < 0 ||
	    (rc = owner__rebuild_start(o)) < 0 ||
	    (rc = owner__audit_start(o)) < 0) {
		owner_close(o);
		return rc;
	}
	owner__sweep_init(o);	/* optional: logs when it cannot start */
	owner__pin_init(o);	/* optional: logs when it cannot */
	if (owner__index_init(o) < 0)	/* recovery needs it, mounting not */
		log_error("index: cannot start the uploader: the metadata "
		    "will not reach the suppliers");
	*out = o;
	return 0;
}

void
owner_close(struct owner *o)
{
	if (!o)
		return;
	owner__index_destroy(o);	/* before net goes: the last changes */
	owner__pin_destroy(o);
	owner__sweep_destroy(o);
	owner__audit_stop(o);
	owner__rebuild_stop(o);
	owner__delete_stop(o);
	owner__check_destroy(o);
	owner__dirty_stop(o);
	owner__uploads_stop(o);
	owner__dirty_destroy(o);
	owner__reads_destroy(o);
	owner__refs_destroy(o);
	sodium_free(o);
}

int
owner__net_online(struct owner *o)
{
	/* A zero wait reads the session count under net's lock: no trip to
	 * the loop thread on this path (every tiny write asks). */
	return o->conf.net != NULL && net_wait_online(o->conf.net, 1, 0) > 0;
}

uint32_t
owner_block_size(const struct owner *o)
{
	return o->conf.block_size;
}

int
owner_fsync(struct owner *o, uint64_t ino)
{
	int rc = owner__dirty_sync(o, ino);

	if (rc == 0)
		rc = store_sync(o->conf.store);
	/* The data is on the network once an index version names it (and
	 * inline bytes only live in the index): durable means published.
	 * Nothing to publish costs one look at the heads at most. */
	if (rc == 0 && o->conf.net &&
	    owner__index_unpublished(o->conf.store) > 0)
		rc = owner__index_publish(o);
	return rc == -ESTALE || rc == -EAGAIN ? -EIO : rc;
}

int
owner__no_suppliers(struct owner *o)
{
	return o->conf.net && !o->conf.finds_suppliers &&
	    net_peers(o->conf.net, NULL, 0, 0) == 0;
}

int
owner_sync(struct owner *o)
{
	int rc = owner__dirty_sync(o, 0);

	/* The metadata follows the data it names. -ESTALE (another node
	 * writes) stays: `peerfs sync` says why. */
	if (rc == 0)
		rc = owner__index_publish(o);
	if (rc == -EAGAIN && owner__no_suppliers(o))
		rc = -ENOTCONN;
	return rc == -EAGAIN ? -EIO : rc;
}

void
owner_drop_cache(struct owner *o)
{
	store_cache_clear(o->conf.cache);
}

void
owner_space(struct owner *o, uint64_t *total, uint64_t *avail)
{
	struct net_peer_info *p = NULL;
	uint64_t t = 0, a = 0;
	int n = 0, max = 64;

	while (o->conf.net) {
		free(p);
		if (!(p = calloc(max, sizeof *p)))
			break;
		n = net_peers(o->conf.net, p, max, 0);
		if (n <= max)
			break;
		max = n;
	}
	for (int i = 0; p && i < n; i++) {
		if (p[i].state != NET_PEER_ONLINE)
			continue;
		a += p[i].avail;
		t += p[i].quota ? p[i].quota : p[i].avail + p[i].bytes;
	}
	free(p);
	/* k of every k + m fragments hold data. */
	*total = t / (uint64_t)(o->conf.ec_k + o->conf.ec_m) * o->conf.ec_k;
	*avail = a / (uint64_t)(o->conf.ec_k + o->conf.ec_m) * o->conf.ec_k;
}

void
owner__index_io_of(struct owner *o, struct owner__index_io *io)
{
	io->net = o->conf.net;
	io->store = o->conf.store;
	io->id = o->conf.id;
	io->keep_versions = o->conf.keep_versions;
	io->lease = NULL;
	io->block_size = o->conf.block_size;
	io->head_always = 0;
	io->head_only = 0;
	io->above = 0;
	io->tally = NULL;
}
