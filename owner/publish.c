/* owner/publish.c - keeps the index on suppliers current and holds the
 * write lease: a thread ("index") uploads a new version at most every
 * INDEX_PERIOD_MS while the metadata changes, and `peerfs sync`, fsync
 * and unmount upload one at once (owner/index.c does the uploading).
 *
 * One vault, several nodes (homes restored from one recovery code): only
 * the node holding the write lease publishes. The lease rides in every
 * head this node publishes (owner/index.c: holder, until, want) and is
 * renewed by a head-only version once a third of it is gone. A node that
 * finds a live lease of another node is read-only (fs/ answers EROFS) and
 * follows each newer version; it takes the lease once it runs out or is
 * released (unmount), or when the holder hands it over: `mount
 * --take-over` publishes the holder's version again with want = this
 * node, and the holder, on its next pass, publishes what it has with
 * holder = the asker. A writer that finds a newer head of another node
 * (its lease ran out while it was frozen or offline) stops writing;
 * changes of its own that no version holds make it "diverged" until it
 * can write again and catches up (owner/catchup.c). Clocks of the nodes
 * are assumed to agree within a fraction of the lease. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "owner/internal.h"
#include "strbuf.h"
#include "worker.h"

#define INDEX_PERIOD_MS		3000
#define INDEX_BACKOFF_MS	10000	/* after a failed upload */
#define FOLLOW_PERIOD_MS	1000	/* a reader polls the heads */

struct owner__index {
	struct worker *w;
	pthread_mutex_t pub;		/* one upload at a time; take
					 * before lk */
	pthread_mutex_t lk;		/* the fields below */
	unsigned char node[OWNER__NODE_BYTES];	/* this home's, fixed */
	int writer;			/* holds the lease */
	int take_over;			/* --take-over: ask the holder */
	uint64_t asked_seq;		/* the head our request went into */
	uint64_t until_ms;		/* our lease runs out (writer); pub */
	struct owner__lease seen;	/* of the newest head seen */
	uint64_t seen_seq, seen_time;
	int older;			/* restored from an older version */
	int had_changes;		/* mounted with changes no version
					 * holds (offline work) */
	int diverged;			/* changes no version can hold */
	uint64_t div_seq, div_time;
	unsigned char div_node[OWNER__NODE_BYTES];
	char why[200];			/* read-only: why */
};

static uint64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
is_zero(const unsigned char *node)
{
	return sodium_is_zero(node, OWNER__NODE_BYTES);
}

static int
same(const unsigned char *a, const unsigned char *b)
{
	return memcmp(a, b, OWNER__NODE_BYTES) == 0;
}

void
owner__node_hex(char out[2 * OWNER__NODE_BYTES + 1], const unsigned char *node)
{
	if (is_zero(node))
		snprintf(out, 2 * OWNER__NODE_BYTES + 1, "unknown");
	else
		hex_encode(out, node, OWNER__NODE_BYTES);
}

static void
fmt_time(char *buf, size_t size, uint64_t secs)
{
	time_t t = (time_t)secs;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* This home's node id: misc "index.node" (never indexed, so a home
 * restored from the same code gets its own), made at the first mount. */
static int
node_load(struct store *st, unsigned char node[OWNER__NODE_BYTES])
{
	struct store_txn *t;
	void *old;
	size_t len;
	int rc;

	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	if (store_misc_bytes_get(t, STORE_MISC_INDEX_NODE, &old, &len) == 0) {
		if (len == OWNER__NODE_BYTES && !is_zero(old)) {
			memcpy(node, old, OWNER__NODE_BYTES);
			free(old);
			store_txn_abort(t);
			return 0;
		}
		free(old);
	}
	do
		randombytes_buf(node, OWNER__NODE_BYTES);
	while (is_zero(node));
	if ((rc = store_misc_bytes_put(t, STORE_MISC_INDEX_NODE, node,
	    OWNER__NODE_BYTES)) < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

static int
lease_live(const struct owner__lease *ls, uint64_t now)
{
	return !is_zero(ls->holder) && ls->until_ms > now;
}

/* Publishes a version (or, with head_always, at least a head) carrying
 * lease ls, above seq `above`. pub held. */
static int
put(struct owner *o, const struct owner__lease *ls, int head_always,
    uint64_t above)
{
	struct owner__index_io io;
	uint64_t gen;
	int rc;

	/* A nearly full map is kept for deletes, which make room. */
	if ((rc = store_map_room(o->conf.store, STORE_ROOM_COMMIT)) < 0) {
		log_warn("index: metadata map nearly full: version not "
		    "uploaded until files are deleted");
		return rc;
	}
	owner__index_io_of(o, &io);
	io.lease = ls;
	io.head_always = head_always;
	io.above = above;
	/* Whatever committed before gen is in the version published (or was
	 * in the last one): inline blocks up to it are on the network. */
	if ((rc = store_index_gen(o->conf.store, &gen)) == 0 &&
	    (rc = owner__index_put(&io, 0)) >= 0)
		owner__dirty_published(o, gen);
	if ((rc == -EAGAIN || rc == -EIO || rc == -ETIMEDOUT) && head_always) {
		/* Too few suppliers for the changes' blocks (k + m): the
		 * lease at least, in a head (they hold any number). */
		io.head_only = 1;
		if (owner__index_put(&io, 0) > 0) {
			log_debug("index: lease renewed, changes wait");
			o->index->until_ms = ls->until_ms;	/* pub held */
		}
		rc = -EAGAIN;
	}
	if (rc > 0)
		owner__delete_kick(o);	/* old index blocks may await deletion */
	return rc;
}

/* Our lease as of now. */
static void
my_lease(struct owner *o, struct owner__lease *ls, uint64_t now)
{
	struct owner__index *x = o->index;

	memset(ls, 0, sizeof *ls);
	memcpy(ls->node, x->node, OWNER__NODE_BYTES);
	memcpy(ls->holder, x->node, OWNER__NODE_BYTES);
	ls->until_ms = now + (uint64_t)o->conf.lease_ms;
}

static void
set_reader(struct owner *o, const struct owner__newest *nw, const char *what)
{
	struct owner__index *x = o->index;
	char holder[2 * OWNER__NODE_BYTES + 1], when[40];

	owner__node_hex(holder, nw->lease.holder);
	fmt_time(when, sizeof when, nw->lease.until_ms / 1000);
	pthread_mutex_lock(&x->lk);
	if (x->writer || !x->why[0])
		log_warn("index: %s: read-only, node %s holds the write lease "
		    "(until %s unless renewed)", what, holder, when);
	x->writer = 0;
	if (!x->diverged)
		snprintf(x->why, sizeof x->why, "read-only: node %s of this owner "
	    "holds the write lease (until %s unless renewed)", holder, when);
	pthread_mutex_unlock(&x->lk);
}

static void
set_diverged(struct owner *o, const struct owner__newest *nw)
{
	struct owner__index *x = o->index;
	char node[2 * OWNER__NODE_BYTES + 1], when[40];

	owner__node_hex(node, nw->lease.node);
	fmt_time(when, sizeof when, nw->time);
	pthread_mutex_lock(&x->lk);
	if (!x->diverged)
		log_error("index: diverged: another node of this owner (%s) "
		    "published version %" PRIu64 " at %s; this node's changes "
		    "stay in its journal until it can write again", node,
		    nw->seq, when);
	x->diverged = 1;
	x->writer = 0;
	x->div_seq = nw->seq;
	x->div_time = nw->time;
	memcpy(x->div_node, nw->lease.node, OWNER__NODE_BYTES);
	snprintf(x->why, sizeof x->why, "read-only, diverged: another node of "
	    "this owner (%s) published version %" PRIu64 " at %s", node,
	    nw->seq, when);
	pthread_mutex_unlock(&x->lk);
}

/* take() failed with rc: a reader says why it is one (`mount` prints it)
 * unless a stronger reason stands (diverged, another node's lease). */
static int
untaken(struct owner__index *x, const char *what, int rc)
{
	pthread_mutex_lock(&x->lk);
	if (!x->writer && !x->why[0])
		snprintf(x->why, sizeof x->why, "read-only until this node "
		    "takes the write lease, which no one holds (%s: %s; "
		    "tried again every second)",
		    what, strerror(-rc));
	pthread_mutex_unlock(&x->lk);
	return rc;
}

/* Takes the lease: catches up with nw first when another node published
 * after us. pub held. */
static int
take(struct owner *o, const struct owner__newest *nw, int have)
{
	struct owner__index *x = o->index;
	struct owner__index_io io;
	struct owner__lease ls;
	uint64_t local;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		return rc;
	local = owner__index_seq(t);
	store_txn_abort(t);
	owner__index_io_of(o, &io);
	if (have && nw->seq > local && !same(nw->lease.node, x->node)) {
		if ((rc = owner__index_unpublished(o->conf.store)) > 0)
			rc = owner__catchup(o, nw);
		else if (rc == 0)
			rc = owner__index_follow(&io, nw, 0);
		if (rc < 0) {
			log_warn("index: cannot catch up with version %" PRIu64
			    ": %s", nw->seq, strerror(-rc));
			return untaken(x, "catching up failed", rc);
		}
	}
	my_lease(o, &ls, wall_ms());
	rc = put(o, &ls, 1, have ? nw->seq : 0);
	if (rc <= 0)
		return untaken(x, "publishing it failed", rc < 0 ? rc : -EAGAIN);
	pthread_mutex_lock(&x->lk);
	if (!x->writer)
		log_info("index: this node holds the write lease");
	x->writer = 1;
	x->diverged = 0;
	x->had_changes = 0;
	x->take_over = 0;
	x->until_ms = ls.until_ms;
	x->why[0] = '\0';
	pthread_mutex_unlock(&x->lk);
	return 0;
}

/* One look at the network and what follows from it. pub held. Returns
 * what the publish (if any) returned. */
static int
step(struct owner *o, int publish_now)
{
	struct owner__index *x = o->index;
	struct owner__index_io io;
	struct owner__newest nw;
	struct owner__lease ls;
	uint64_t now = wall_ms(), local;
	struct store_txn *t;
	int rc, have, writer, unpub;

	owner__index_io_of(o, &io);
	if (x->older)
		return owner__index_unpublished(o->conf.store) > 0 ? -EROFS : 0;
	have = owner__index_newest(&io, &nw);
	if (have < 0 && have != -EAGAIN)
		log_debug("index: heads: %s", strerror(-have));
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		goto out;
	local = owner__index_seq(t);
	store_txn_abort(t);
	if (have > 0) {
		pthread_mutex_lock(&x->lk);
		x->seen = nw.lease;
		x->seen_seq = nw.seq;
		x->seen_time = nw.time;
		pthread_mutex_unlock(&x->lk);
	}
	pthread_mutex_lock(&x->lk);
	writer = x->writer;
	pthread_mutex_unlock(&x->lk);
	unpub = owner__index_unpublished(o->conf.store);
	rc = 0;
	if (writer) {
		if (have > 0 && nw.seq > local && !same(nw.lease.node, x->node)) {
			if (same(nw.lease.holder, x->node) &&
			    !is_zero(nw.lease.want) &&
			    !same(nw.lease.want, x->node)) {
				/* Hand over: what we have, then the lease.
				 * The journal first: a reader's follows
				 * would overwrite what it commits later. */
				pthread_mutex_lock(&x->lk);
				x->writer = 0;	/* no new writes */
				snprintf(x->why, sizeof x->why, "read-only: "
				    "handing the write lease over");
				pthread_mutex_unlock(&x->lk);
				if ((rc = owner__dirty_sync(o, 0)) < 0) {
					log_warn("index: hand-over waits: "
					    "journal not uploaded: %s",
					    strerror(-rc));
					goto keep;
				}
				memset(&ls, 0, sizeof ls);
				memcpy(ls.node, x->node, OWNER__NODE_BYTES);
				memcpy(ls.holder, nw.lease.want,
				    OWNER__NODE_BYTES);
				ls.until_ms = now + (uint64_t)o->conf.lease_ms;
				if ((rc = put(o, &ls, 1, nw.seq)) > 0) {
					nw.lease = ls;
					set_reader(o, &nw, "lease handed over "
					    "on request");
					goto out;
				}
keep:
				pthread_mutex_lock(&x->lk);
				x->writer = 1;
				x->why[0] = '\0';
				pthread_mutex_unlock(&x->lk);
				goto out;
			}
			/* Our lease ran out under us (frozen, offline). */
			if (unpub > 0)
				set_diverged(o, &nw);
			else if ((rc = owner__index_follow(&io, &nw, 0)) == 0)
				set_reader(o, &nw, "another node took the lease");
			goto out;
		}
		my_lease(o, &ls, now);
		rc = put(o, &ls, x->until_ms < now + (uint64_t)o->conf.lease_ms
		    * 2 / 3, have > 0 ? nw.seq : 0);
		if (rc > 0) {
			pthread_mutex_lock(&x->lk);
			x->until_ms = ls.until_ms;
			x->had_changes = 0;
			pthread_mutex_unlock(&x->lk);
		} else if (rc == -ESTALE && publish_now < 2 &&
		    owner__index_newest(&io, &nw) > 0) {
			/* Someone published between our look and our put:
			 * the next step sorts it out (hand over or diverge). */
			owner__layout_free(&nw.l);
			have = 0;
			rc = step(o, 2);
		}
		goto out;
	}
	/* Read-only (or diverged). */
	if (have <= 0) {
		rc = x->diverged ? -ESTALE : 0;
		goto out;
	}
	if (nw.seq > local && !same(nw.lease.node, x->node)) {
		/* Our own changes wait for the lease; a reader that never
		 * wrote (its store only differs by housekeeping) follows. */
		if (x->had_changes || x->diverged)
			set_diverged(o, &nw);
		else if ((rc = owner__index_follow(&io, &nw, 0)) < 0)
			goto out;
	}
	if (!lease_live(&nw.lease, now) || same(nw.lease.holder, x->node)) {
		rc = take(o, &nw, have);
		if (rc == 0)
			x->had_changes = 0;
		goto out;
	}
	if (x->take_over && x->asked_seq < nw.seq && unpub == 0 &&
	    !same(nw.lease.want, x->node)) {
		/* The holder's version again, asking for the lease. */
		ls = nw.lease;
		memcpy(ls.node, x->node, OWNER__NODE_BYTES);
		memcpy(ls.want, x->node, OWNER__NODE_BYTES);
		if (put(o, &ls, 1, nw.seq) > 0) {
			log_info("index: asked the holder for the write lease");
			x->asked_seq = nw.seq + 1;
		}
	}
	set_reader(o, &nw, "mount");
	rc = x->diverged ? -ESTALE : 0;
out:
	if (have > 0)
		owner__layout_free(&nw.l);
	return rc;
}

static int64_t
index_pass(void *arg, int idx)
{
	struct owner *o = arg;
	struct owner__index *x = o->index;
	int rc, writer;

	(void)idx;
	pthread_mutex_lock(&x->pub);
	rc = step(o, 0);
	pthread_mutex_unlock(&x->pub);
	pthread_mutex_lock(&x->lk);
	writer = x->writer;
	pthread_mutex_unlock(&x->lk);
	if (!writer)
		return FOLLOW_PERIOD_MS < o->conf.lease_ms / 4 ?
		    FOLLOW_PERIOD_MS : o->conf.lease_ms / 4;
	if (rc < 0 && rc != -ESTALE) {
		log_debug("index: upload: %s (retry in %d s)", strerror(-rc),
		    INDEX_BACKOFF_MS / 1000);
		return INDEX_BACKOFF_MS < o->conf.lease_ms / 3 ?
		    INDEX_BACKOFF_MS : o->conf.lease_ms / 3;
	}
	return INDEX_PERIOD_MS < o->conf.lease_ms / 6 ? INDEX_PERIOD_MS :
	    o->conf.lease_ms / 6;
}

int
owner__index_init(struct owner *o)
{
	struct owner__index *x;
	struct worker_conf wc = {
		.name = "index", .pass = index_pass, .arg = o,
	};
	struct owner__index_io io;
	struct store_txn *t;
	int rc;

	if (!(x = calloc(1, sizeof *x)))
		return -ENOMEM;
	pthread_mutex_init(&x->pub, NULL);
	pthread_mutex_init(&x->lk, NULL);
	o->index = x;
	x->writer = 1;
	if (!o->conf.net)
		return 0;
	if ((rc = node_load(o->conf.store, x->node)) < 0)
		return rc;
	x->take_over = o->conf.take_over;
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		return rc;
	x->older = owner__index_older(t);
	store_txn_abort(t);
	if (x->older) {
		/* Newer versions share its blocks and must stay the newest:
		 * it neither writes, publishes nor follows. */
		x->writer = 0;
		snprintf(x->why, sizeof x->why, "read-only: restored from an "
		    "older version (restore --version), to read or copy old "
		    "files out");
		log_warn("index: %s", x->why);
		return 0;
	}
	/* Rollback check against what this node published before. */
	owner__index_io_of(o, &io);
	owner__index_check(&io);
	/* Who writes is settled before the mount serves. */
	x->had_changes = owner__index_unpublished(o->conf.store) > 0;
	if (!x->had_changes && store_txn_begin(o->conf.store, 1, &t) == 0) {
		uint64_t pending = 0;

		/* A journal left by a crash becomes changes of ours once
		 * uploaded: never overwritten by following another node. */
		if (store_jrnl_count(t, &pending) == 0 && pending)
			x->had_changes = 1;
		store_txn_abort(t);
	}
	x->writer = 0;
	pthread_mutex_lock(&x->pub);
	rc = step(o, 0);
	pthread_mutex_unlock(&x->pub);
	if (!x->writer && x->seen_seq == 0) {
		/* No version yet, or nobody to ask: write (into the
		 * journal); a newer version of another node is caught up
		 * with once seen. */
		if (owner__net_online(o))
			log_info("index: no version on the network yet: this "
			    "node writes");
		else
			log_warn("index: no supplier answered: writing "
			    "offline");
		x->writer = 1;
		x->had_changes = 0;	/* ours to publish */
	}
	/* init looked already; the first version waits a period, as the
	 * first writes of a mount usually come in a burst. */
	wc.first_ms = x->writer ? (INDEX_PERIOD_MS < o->conf.lease_ms / 6 ?
	    INDEX_PERIOD_MS : o->conf.lease_ms / 6) : FOLLOW_PERIOD_MS;
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
		/* The last changes before unmount, and the lease released;
		 * bounded by the network timeouts, and nothing is lost when
		 * it fails: the next mount uploads them. */
		pthread_mutex_lock(&x->pub);
		if (x->writer) {
			struct owner__lease ls;
			uint64_t seen;

			pthread_mutex_lock(&x->lk);
			seen = x->seen_seq;
			pthread_mutex_unlock(&x->lk);
			my_lease(o, &ls, wall_ms());
			memset(ls.holder, 0, sizeof ls.holder);
			ls.until_ms = 0;
			if (put(o, &ls, 1, seen) > 0)
				log_info("index: uploaded at unmount, write "
				    "lease released");
		}
		pthread_mutex_unlock(&x->pub);
	}
	pthread_mutex_destroy(&x->lk);
	pthread_mutex_destroy(&x->pub);
	free(x);
	o->index = NULL;
}

int
owner__index_publish(struct owner *o)
{
	struct owner__index *x = o->index;
	int rc;

	uint64_t gen0, covered = 0;
	struct store_txn *t;

	if (!x || !x->w)
		return 0;
	/* What was committed before this call must be in a version; what
	 * other threads commit meanwhile is theirs to wait for. */
	if ((rc = owner__index_unpublished(o->conf.store)) <= 0 &&
	    owner__writable(o))
		return rc;
	if ((rc = store_index_gen(o->conf.store, &gen0)) < 0)
		return rc;
	pthread_mutex_lock(&x->pub);
	rc = step(o, 1);
	pthread_mutex_unlock(&x->pub);
	if (rc >= 0 && owner__writable(o) &&
	    store_txn_begin(o->conf.store, 1, &t) == 0) {
		uint64_t v;

		if (store_misc_u64_get(t, STORE_MISC_INDEX_GEN, &v) == 0)
			covered = v;
		store_txn_abort(t);
		if (covered < gen0)
			rc = -EAGAIN;	/* offline, too few suppliers */
	}
	if (rc >= 0 && !owner__writable(o)) {
		pthread_mutex_lock(&x->lk);
		rc = x->diverged ? -ESTALE : 0;
		pthread_mutex_unlock(&x->lk);
	}
	if (rc < 0)
		log_warn("index: not uploaded at sync: %s", strerror(-rc));
	return rc < 0 ? rc : 0;
}

int
owner__writable(struct owner *o)
{
	struct owner__index *x = o->index;
	int w;

	if (!x)
		return 1;
	pthread_mutex_lock(&x->lk);
	w = x->writer;
	pthread_mutex_unlock(&x->lk);
	return w;
}

int
owner_readonly(struct owner *o, char *why, size_t size)
{
	struct owner__index *x = o->index;
	int ro;

	if (!x)
		return 0;
	pthread_mutex_lock(&x->lk);
	ro = !x->writer;
	/* Not diverged and nobody else holds a live lease: only our own
	 * try to take it failed. */
	if (ro && !x->diverged && !(lease_live(&x->seen, wall_ms()) &&
	    !same(x->seen.holder, x->node)))
		ro = 2;
	if (why && size)
		snprintf(why, size, "%s", x->why);
	pthread_mutex_unlock(&x->lk);
	return ro;
}

void
owner__index_status(struct owner *o, struct strbuf *sb, int text)
{
	struct owner__index *x = o->index;
	char node[2 * OWNER__NODE_BYTES + 1], holder[2 * OWNER__NODE_BYTES + 1];
	char pub[2 * OWNER__NODE_BYTES + 1], dnode[2 * OWNER__NODE_BYTES + 1];
	char when[40];
	int unpub;

	if (!x)
		return;
	unpub = owner__index_unpublished(o->conf.store) > 0;
	pthread_mutex_lock(&x->lk);
	/* What this node must still publish: a reader has nothing. */
	if (!x->writer)
		unpub = x->diverged || x->had_changes;
	owner__node_hex(node, x->node);
	owner__node_hex(holder, x->seen.holder);
	owner__node_hex(pub, x->seen.node);
	owner__node_hex(dnode, x->div_node);
	fmt_time(when, sizeof when, x->seen_time);
	if (text) {
		strbuf_printf(sb, "node: %s, %s\n", node, x->writer ?
		    "holds the write lease" : x->why);
		if (x->seen_seq)
			strbuf_printf(sb, "newest version: %" PRIu64 " at %s by "
			    "node %s\n", x->seen_seq, when, pub);
		if (x->diverged) {
			fmt_time(when, sizeof when, x->div_time);
			strbuf_printf(sb, "diverged: another node of this owner "
			    "published version %" PRIu64 " at %s (node %s); "
			    "this node's changes are kept in its journal\n",
			    x->div_seq, when, dnode);
		}
	} else {
		strbuf_printf(sb, "\"node\": \"%s\", \"writer\": %s, "
		    "\"index_pending\": %s, \"lease\": {\"holder\": \"%s\", "
		    "\"until_ms\": %" PRIu64 ", \"seq\": %" PRIu64 ", "
		    "\"time\": %" PRIu64 ", \"published_by\": \"%s\"}, ",
		    node, x->writer ? "true" : "false", unpub ? "true" : "false",
		    holder, x->seen.until_ms, x->seen_seq, x->seen_time, pub);
		if (x->diverged)
			strbuf_printf(sb, "\"diverged\": {\"seq\": %" PRIu64
			    ", \"time\": %" PRIu64 ", \"node\": \"%s\"}, ",
			    x->div_seq, x->div_time, dnode);
		else
			strbuf_printf(sb, "\"diverged\": null, ");
		strbuf_printf(sb, "\"readonly_why\": \"%s\", ", x->writer ? "" :
		    x->why);
	}
	pthread_mutex_unlock(&x->lk);
}

static int
version_line(void *arg, uint64_t seq, uint64_t time, uint64_t size,
    const struct owner__lease *ls)
{
	char node[2 * OWNER__NODE_BYTES + 1];

	owner__node_hex(node, ls->node);
	strbuf_printf(arg, "%" PRIu64 " %" PRIu64 " %s %" PRIu64 "\n", seq,
	    time, node, size);
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
