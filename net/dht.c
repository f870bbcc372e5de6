/* net/dht.c - a DHT node on OpenDHT: publishes our signed record, watches
 * the suppliers key, looks ids up. OpenDHT calls back on its own thread;
 * those callbacks only copy the value's bytes into the inbox and wake the
 * net-dht loop (uv_async: sends coalesce, the whole inbox is drained),
 * which checks every record before anyone sees it. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <opendht/opendht_c.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#include "log.h"
#include "net/dht.h"
#include "net/internal.h"
#include "worker.h"

#define ANNOUNCE_MS	(4 * 60 * 1000)
#define RETRY_MS	2000
#define BOOT_MAX	16		/* a put that failed (not connected) */
#define SUPPLIERS_KEY	"peerfs/suppliers/v1"
#define NODE_KEY	"peerfs/node/v1/"
#define LOCATOR_KEY	"peerfs/locator/v1/"
/* Keys a supplier announces under besides its own (the locators of the
 * owners whose heads it holds), per announce at most. */
#define LOCATORS_MAX	1024
/* Ids cost nothing to make: a flood of valid records from made-up ids
 * must not grow us without bound. Beyond this, new ids are refused. */
#define RECORDS_MAX	4096

int net__dht_run_bound(dht_runner *r, const struct sockaddr *sa,
    socklen_t len, uint32_t network);		/* net/dht_run.cc */

enum { IN_VALUE, IN_LOC_VALUE, IN_PUT_DONE, IN_GET_DONE, IN_FLAGS, IN_ADDR,
	IN_RELAYS };

struct inbox_item {
	struct inbox_item *next;
	int kind, ok;
	size_t len;
	unsigned char data[];
};

struct net_dht {
	struct net_dht_conf conf;	/* strings below are our copies */
	char *bind, *announce_addr;
	dht_runner *runner;
	dht_infohash key_sup, key_self;
	dht_op_token *watch;
	struct worker *w;
	uv_loop_t loop;
	uv_async_t async;
	uv_timer_t timer;
	int port;			/* bound UDP port */
	int closing;			/* net-dht only */
	int stored;			/* net-dht: a put of ours succeeded */
	uv_async_t kick;		/* announce now (net_dht_announce_now) */
	uint64_t seq;			/* net-dht only */
	int early;			/* net-dht: early re-announces done */
	/* The bootstrap nodes, pinged again while our puts or gets fail
	 * (net-dht only after net_dht_new). */
	struct sockaddr_storage boot[BOOT_MAX];
	int nboot;
	uint64_t boot_pinged;		/* uv_now(): the last time */
	/* net-dht only: the relays that hold a reservation of ours
	 * (net_dht_set_relays), announced while we have no address of
	 * our own. */
	struct net_dht_relays relays;

	pthread_mutex_t lock;		/* everything below */
	pthread_cond_t cond;		/* records changed */
	struct inbox_item *in_head, **in_tail;
	struct net_record_set recs;
	struct net_record_set located;	/* found under a locator key */
	uint64_t refused;
	uint64_t gets_done;		/* get rounds finished */
};

/* We have something to announce: an address, or relays. */
static int
announcing(const struct net_dht *d)
{
	return d->announce_addr || d->relays.n > 0;
}

static uint64_t
unix_now(void)
{
	return (uint64_t)time(NULL);
}

static void
locator_key(dht_infohash *h, const unsigned char loc[NET_DHT_LOCATOR_BYTES])
{
	unsigned char k[sizeof LOCATOR_KEY - 1 + NET_DHT_LOCATOR_BYTES];

	memcpy(k, LOCATOR_KEY, sizeof LOCATOR_KEY - 1);
	memcpy(k + sizeof LOCATOR_KEY - 1, loc, NET_DHT_LOCATOR_BYTES);
	dht_infohash_get(h, k, sizeof k);
}

static void
node_key(dht_infohash *h, const unsigned char id[CR_PK_BYTES])
{
	unsigned char k[sizeof NODE_KEY - 1 + CR_PK_BYTES];

	memcpy(k, NODE_KEY, sizeof NODE_KEY - 1);
	memcpy(k + sizeof NODE_KEY - 1, id, CR_PK_BYTES);
	dht_infohash_get(h, k, sizeof k);
}

/* ---- OpenDHT's thread: copy, queue, wake; nothing else ---------------- */
static void
inbox_push(struct net_dht *d, int kind, int ok, const void *data, size_t len)
{
	struct inbox_item *it;

	if (len > NET_RECORD_MAX)	/* cannot be a record: not even copied */
		len = 0, ok = 0;
	if (!(it = malloc(sizeof *it + len)))
		return;
	it->next = NULL;
	it->kind = kind;
	it->ok = ok;
	it->len = len;
	if (len)
		memcpy(it->data, data, len);
	pthread_mutex_lock(&d->lock);
	*d->in_tail = it;
	d->in_tail = &it->next;
	pthread_mutex_unlock(&d->lock);
	uv_async_send(&d->async);
}

static void
push_value(struct net_dht *d, const dht_value *v)
{
	dht_data_view dv = dht_value_get_data(v);

	inbox_push(d, IN_VALUE, dv.size <= NET_RECORD_MAX, dv.data, dv.size);
}

static bool
on_get(const dht_value *v, void *arg)
{
	push_value(arg, v);
	return true;
}

static bool
on_get_loc(const dht_value *v, void *arg)
{
	dht_data_view dv = dht_value_get_data(v);

	inbox_push(arg, IN_LOC_VALUE, dv.size <= NET_RECORD_MAX, dv.data,
	    dv.size);
	return true;
}

static bool
on_listen(const dht_value *v, bool expired, void *arg)
{
	if (!expired)
		push_value(arg, v);
	return true;
}

static void
on_get_done(bool ok, void *arg)
{
	inbox_push(arg, IN_GET_DONE, ok, NULL, 0);
}

static void
on_put_done(bool ok, void *arg)
{
	inbox_push(arg, IN_PUT_DONE, ok, NULL, 0);
}

/* ---- net-dht ----------------------------------------------------------- */
static void
announce(struct net_dht *d)
{
	struct net_record r = { 0 };
	unsigned char buf[NET_RECORD_MAX];
	struct timespec ts;
	uint64_t now_ms;
	int period = d->conf.announce_ms ? d->conf.announce_ms : ANNOUNCE_MS;
	ssize_t len;

	/* Milliseconds since the epoch, or one more than the last: a restarted
	 * node needs no saved counter to out-number its old records. Real
	 * milliseconds, not seconds times 1000: a node that announced several
	 * times in its last second (new locators) and restarted within that
	 * second out-numbered its own new record, whose new address was then
	 * refused as a replay. */
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	d->seq = now_ms > d->seq ? now_ms : d->seq + 1;
	memcpy(r.id, d->conf.id->pk, CR_PK_BYTES);
	r.flags = d->conf.flags;
	r.seq = d->seq;
	r.expires = unix_now() + 3 * (uint64_t)period / 1000 + 1;
	r.free_bytes = d->conf.free_bytes ? d->conf.free_bytes(d->conf.arg) : 0;
	if (d->announce_addr) {
		r.naddr = 1;
		snprintf(r.addr[0], sizeof r.addr[0], "%s", d->announce_addr);
	} else {
		/* Reached only through our relays: their addresses, and
		 * their keys so that owners can say whom they go through. */
		r.flags = (r.flags & ~NET_RECORD_REACH_MASK) |
		    NET_RECORD_RELAYED;
		r.naddr = r.nrelay = d->relays.n;
		for (int i = 0; i < d->relays.n; i++) {
			snprintf(r.addr[i], sizeof r.addr[i], "%s",
			    d->relays.addr[i]);
			memcpy(r.relay_id[i], d->relays.id[i], CR_PK_BYTES);
		}
	}
	if ((len = net_record_encode(buf, sizeof buf, &r, d->conf.id->sk)) < 0) {
		log_error("dht: cannot encode our record (%s): %s",
		    r.addr[0], strerror((int)-len));
		return;
	}
	dht_value *v = dht_value_new(buf, (size_t)len);
	if (!v)
		return;
	/* Not permanent: OpenDHT would re-send these very bytes, expiry and
	 * all; we re-announce a fresh record instead. */
	dht_runner_put(d->runner, &d->key_self, v, on_put_done, d, false);
	if (d->conf.flags & NET_RECORD_SUPPLIER)
		dht_runner_put(d->runner, &d->key_sup, v, on_put_done, d, false);
	/* Under each owner's locator too: the owner may be gone for good,
	 * so we, not it, keep the way to its heads alive. */
	if (d->conf.locators) {
		unsigned char (*locs)[NET_DHT_LOCATOR_BYTES] =
		    malloc(LOCATORS_MAX * sizeof *locs);
		int nl = locs ? d->conf.locators(d->conf.arg, locs,
		    LOCATORS_MAX) : 0;

		for (int i = 0; i < nl; i++) {
			dht_infohash h;

			locator_key(&h, locs[i]);
			dht_runner_put(d->runner, &h, v, on_put_done, d, false);
		}
		free(locs);
	}
	dht_value_unref(v);
	log_debug("dht: announced %s seq %llu", r.addr[0],
	    (unsigned long long)r.seq);
}

/* A put reaches the nodes its search knows at that moment, and OpenDHT
 * does not carry a value to closer nodes found later (its storage
 * maintenance is off). A node that has just joined knows few: its first
 * record can land beside the nodes that others' searches ask, and stay
 * invisible for a whole period. So the first few announces follow
 * quickly, while the routing tables fill. */
static const int early_ms[] = { 2000, 6000, 20000, 60000 };

static void
on_timer(uv_timer_t *t)
{
	struct net_dht *d = t->data;
	int period = d->conf.announce_ms ? d->conf.announce_ms : ANNOUNCE_MS;
	int next = period;

	announce(d);
	if (d->early < (int)(sizeof early_ms / sizeof early_ms[0]) &&
	    early_ms[d->early] < period)
		next = early_ms[d->early++];
	uv_timer_start(&d->timer, on_timer, (uint64_t)next, 0);
}

static void
close_all(struct net_dht *d)
{
	if (d->closing)
		return;
	d->closing = 1;
	uv_close((uv_handle_t *)&d->async, NULL);
	uv_close((uv_handle_t *)&d->kick, NULL);
	uv_close((uv_handle_t *)&d->timer, NULL);
}

static void
on_kick(uv_async_t *a)
{
	struct net_dht *d = a->data;

	if (announcing(d) && !d->closing)
		uv_timer_start(&d->timer, on_timer, 0, 0);
}

static void
on_pinged(bool ok, void *arg)
{
	(void)ok;
	(void)arg;
}

/* OpenDHT pings a bootstrap node once (a few tries over ~3 s), then again
 * only after 10, 20, 40... s, and only while it knows no node at all: a
 * node started a moment before its bootstrap node (a machine's services
 * coming up together) stayed unconnected, its record unstored, for over
 * 90 s. While a put or get of ours fails, we ping them ourselves. */
static void
ping_bootstraps(struct net_dht *d)
{
	uint64_t now = uv_now(&d->loop);

	if (!d->nboot || now - d->boot_pinged < RETRY_MS)
		return;
	d->boot_pinged = now;
	for (int i = 0; i < d->nboot; i++)
		dht_runner_ping(d->runner, (struct sockaddr *)&d->boot[i],
		    d->boot[i].ss_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6),
		    on_pinged, NULL);
	log_debug("dht: not connected: bootstrap nodes pinged again");
}

static void
on_async(uv_async_t *a)
{
	struct net_dht *d = a->data;
	struct inbox_item *it, *next;
	int failed_op = 0;

	if (worker_stopping(d->w)) {
		close_all(d);
		/* the inbox is freed by net_dht_free */
		return;
	}
	pthread_mutex_lock(&d->lock);
	it = d->in_head;
	d->in_head = NULL;
	d->in_tail = &d->in_head;
	pthread_mutex_unlock(&d->lock);
	for (; it; it = next) {
		next = it->next;
		if (it->kind == IN_PUT_DONE) {
			failed_op |= !it->ok;
			if (it->ok && !d->stored) {
				d->stored = 1;
				log_info("dht: our record is stored in the "
				    "network (%s)", d->announce_addr ?
				    d->announce_addr : "through relays");
			}
		} else if (it->kind == IN_FLAGS) {
			/* Said now, not at the next period: owners act on it.
			 * The reachability bits are net_dht_set_announce's. */
			uint32_t f;

			memcpy(&f, it->data, sizeof f);
			d->conf.flags = (f & ~NET_RECORD_REACH_MASK) |
			    (d->conf.flags & NET_RECORD_REACH_MASK);
			if (announcing(d))
				announce(d);
		} else if (it->kind == IN_RELAYS) {
			memcpy(&d->relays, it->data, sizeof d->relays);
			/* Our own address, when we have one, wins; with
			 * neither, the last record runs out. */
			if (!d->announce_addr && !d->closing) {
				if (d->relays.n)
					uv_timer_start(&d->timer, on_timer, 0, 0);
				else
					uv_timer_stop(&d->timer);
			}
		} else if (it->kind == IN_ADDR) {
			/* flags (u32, the reachability bits) | address, "" =
			 * announce no more: the last record runs out. */
			uint32_t f;
			char *a = NULL;

			memcpy(&f, it->data, sizeof f);
			if (it->len > sizeof f + 1)
				a = strndup((char *)it->data + sizeof f,
				    it->len - sizeof f);
			free(d->announce_addr);
			d->announce_addr = a;
			d->conf.flags = (d->conf.flags & ~NET_RECORD_REACH_MASK) |
			    (f & NET_RECORD_REACH_MASK);
			if (a)
				announce(d);
			else if (d->relays.n)
				uv_timer_start(&d->timer, on_timer, 0, 0);
			else
				uv_timer_stop(&d->timer);
		} else if (it->kind == IN_GET_DONE) {
			failed_op |= !it->ok;
			/* After the values of that get: they were queued first. */
			pthread_mutex_lock(&d->lock);
			d->gets_done++;
			pthread_cond_broadcast(&d->cond);
			pthread_mutex_unlock(&d->lock);
		} else {
			struct net_record r;
			int rc = it->ok ? net_record_decode(&r, it->data,
			    it->len, unix_now()) : -EPROTO;
			pthread_mutex_lock(&d->lock);
			if (rc == 0 && d->recs.n >= RECORDS_MAX &&
			    !net_record_set_find(&d->recs, r.id))
				rc = -ENOSPC;
			if (rc == 0 && it->kind == IN_LOC_VALUE &&
			    d->located.n < RECORDS_MAX)
				net_record_set_add(&d->located, &r);
			if (rc == 0)
				rc = net_record_set_add(&d->recs, &r);
			if (rc < 0 && rc != -ENOMEM)
				d->refused++;
			if (rc > 0)
				pthread_cond_broadcast(&d->cond);
			pthread_mutex_unlock(&d->lock);
			if (rc < 0)
				log_debug("dht: record refused: %s",
				    rc == -ESTALE ? "older than one held "
				    "(replayed)" : strerror(-rc));
		}
		free(it);
	}
	/* Not connected yet (the bootstrap is not up, or we are alone): try
	 * again soon rather than a whole period later. */
	if (failed_op)
		ping_bootstraps(d);
	if (failed_op && announcing(d) &&
	    uv_timer_get_due_in(&d->timer) > RETRY_MS)
		uv_timer_start(&d->timer, on_timer, RETRY_MS, 0);
}

static int64_t
dht_pass(void *arg, int idx)
{
	struct net_dht *d = arg;

	if (announcing(d))
		uv_timer_start(&d->timer, on_timer, 0, 0);
	if (worker_stopping(d->w))
		close_all(d);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	return WORKER_EXIT;
}

static void
dht_wake(void *arg)
{
	struct net_dht *d = arg;

	uv_async_send(&d->async);
}

/* OpenDHT's sockets are not close-on-exec: a child we fork later (the
 * fusermount3 helper) would hold our UDP port. */
static void
cloexec_sockets(in_port_t port)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir))) {
		int fd = atoi(e->d_name), type;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss, tl = sizeof type;

		if (fd <= 2 || fd == dirfd(dir) ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
		    type != SOCK_DGRAM ||
		    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
			continue;
		in_port_t p = ss.ss_family == AF_INET ?
		    ((struct sockaddr_in *)&ss)->sin_port :
		    ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port : 0;
		if (ntohs(p) == port)
			fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
	}
	closedir(dir);
}

/* OpenDHT takes a loopback address in a list of nodes to mean "the
 * sender's host" (it rewrites 127.x.y.z:P to the sender's address, port
 * P). Nodes on several loopback addresses (the demo's 127.0.N.1, one /24
 * per supplier) then learn each other at addresses where nobody listens,
 * and the DHT shrinks to the few they met directly: a young swarm's mount
 * found 2 of 8 supplier records. So every loopback node of ours sits on
 * 127.0.0.1 (the port is the node's own), where that rewrite is right;
 * the TCP listen address, and the record, stay as given. */
static int
loopback_v4(const char *host)
{
	struct in_addr a;

	return inet_pton(AF_INET, host, &a) == 1 &&
	    (ntohl(a.s_addr) >> 24) == 127;
}

static void
bootstrap(struct net_dht *d, const char *hostport)
{
	char host[256];
	const char *h = hostport, *colon = strrchr(hostport, ':');
	size_t hl;

	if (!colon)
		return;
	if (*h == '[')
		h++;
	hl = (size_t)(colon - h);
	if (hl && h[hl - 1] == ']')
		hl--;
	if (hl == 0 || hl >= sizeof host)
		return;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (loopback_v4(host))
		snprintf(host, sizeof host, "127.0.0.1");
	dht_runner_bootstrap(d->runner, host, colon + 1);
	char hp[sizeof host + 16];
	snprintf(hp, sizeof hp, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
	    colon + 1);
	if (d->nboot < BOOT_MAX && net__parse_addr(hp, &d->boot[d->nboot]) == 0)
		d->nboot++;
	log_info("dht: bootstrap %s", hostport);
}

int
net_dht_new(struct net_dht **out, const struct net_dht_conf *conf)
{
	struct sockaddr_storage sa;
	struct net_dht *d;
	int rc;

	if (!conf->id || (rc = net__parse_addr(conf->bind, &sa)) < 0)
		return -EINVAL;
	if (sa.ss_family == AF_INET &&
	    (ntohl(((struct sockaddr_in *)&sa)->sin_addr.s_addr) >> 24) == 127)
		((struct sockaddr_in *)&sa)->sin_addr.s_addr =
		    htonl(INADDR_LOOPBACK);
	if (!(d = calloc(1, sizeof *d)))
		return -ENOMEM;
	d->conf = *conf;
	d->in_tail = &d->in_head;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->bind = strdup(conf->bind);
	d->announce_addr = conf->announce_addr ? strdup(conf->announce_addr) :
	    NULL;
	d->conf.bootstrap = NULL;
	d->conf.nbootstrap = 0;
	dht_infohash_get(&d->key_sup, (const uint8_t *)SUPPLIERS_KEY,
	    sizeof SUPPLIERS_KEY - 1);
	node_key(&d->key_self, conf->id->pk);
	if ((rc = uv_loop_init(&d->loop)) < 0) {
		free(d->bind);
		free(d->announce_addr);
		free(d);
		return rc;
	}
	uv_async_init(&d->loop, &d->async, on_async);
	uv_async_init(&d->loop, &d->kick, on_kick);
	uv_timer_init(&d->loop, &d->timer);
	d->async.data = d->timer.data = d->kick.data = d;

	if (!(d->runner = dht_runner_new())) {
		rc = -ENOMEM;
		goto fail;
	}
	socklen_t sl = sa.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	if ((rc = net__dht_run_bound(d->runner, (struct sockaddr *)&sa, sl,
	    NET_DHT_NETWORK)) < 0) {
		log_error("dht: cannot bind UDP %s", conf->bind);
		goto fail;
	}
	in_port_t port = dht_runner_get_bound_port(d->runner, sa.ss_family);
	d->port = port;
	cloexec_sockets(port);
	char bound[INET6_ADDRSTRLEN];
	if (sa.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, bound,
		    sizeof bound);
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr,
		    bound, sizeof bound);
	log_info("dht: node on udp %s%s%s port %u", sa.ss_family == AF_INET6 ?
	    "[" : "", bound, sa.ss_family == AF_INET6 ? "]" : "", port);
	for (int i = 0; i < conf->nbootstrap; i++)
		bootstrap(d, conf->bootstrap[i]);
	if (conf->watch_suppliers)
		d->watch = dht_runner_listen(d->runner, &d->key_sup, on_listen,
		    NULL, d);
	struct worker_conf wc = {
		.name = "net-dht", .pass = dht_pass, .wake = dht_wake, .arg = d,
	};
	if ((rc = worker_start(&d->w, &wc)) < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	if (d->runner)
		dht_runner_delete(d->runner);
	d->runner = NULL;
	close_all(d);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	uv_loop_close(&d->loop);
	free(d->bind);
	free(d->announce_addr);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
	return rc;
}

void
net_dht_free(struct net_dht *d)
{
	struct inbox_item *it, *next;

	if (!d)
		return;
	if (d->watch) {
		dht_runner_cancel_listen(d->runner, &d->key_sup, d->watch);
		dht_op_token_delete(d->watch);
	}
	/* Joins OpenDHT's thread: no callback runs after this. */
	dht_runner_delete(d->runner);
	worker_stop(d->w);
	uv_loop_close(&d->loop);
	for (it = d->in_head; it; it = next) {
		next = it->next;
		free(it);
	}
	net_record_set_release(&d->recs);
	net_record_set_release(&d->located);
	free(d->bind);
	free(d->announce_addr);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
}

static void
deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static int
usable_supplier(const struct net_dht *d, const struct net_record *r,
    uint64_t now)
{
	return (r->flags & NET_RECORD_SUPPLIER) &&
	    !(r->flags & NET_RECORD_LEAVING) && r->expires > now &&
	    memcmp(r->id, d->conf.id->pk, CR_PK_BYTES) != 0;
}

static int
count_suppliers(const struct net_dht *d, uint64_t now)
{
	int n = 0;

	for (size_t i = 0; i < d->recs.n; i++)
		n += usable_supplier(d, &d->recs.r[i], now);
	return n;
}

int
net_dht_suppliers(struct net_dht *d, int want, int wait_ms,
    struct net_record *out, int max)
{
	int64_t end = worker_now_ms() + wait_ms;
	int n = 0;

	pthread_mutex_lock(&d->lock);
	while (count_suppliers(d, unix_now()) < want) {
		int64_t left = end - worker_now_ms();
		struct timespec ts;
		if (left <= 0)
			break;
		/* Asking again covers a get issued before we were connected. */
		pthread_mutex_unlock(&d->lock);
		dht_runner_get(d->runner, &d->key_sup, on_get, on_get_done, d);
		pthread_mutex_lock(&d->lock);
		deadline_in(&ts, left < 500 ? (int)left : 500);
		pthread_cond_timedwait(&d->cond, &d->lock, &ts);
	}
	uint64_t now = unix_now();
	for (size_t i = 0; i < d->recs.n && n < max; i++)
		if (usable_supplier(d, &d->recs.r[i], now))
			out[n++] = d->recs.r[i];
	pthread_mutex_unlock(&d->lock);
	return n;
}

int
net_dht_lookup(struct net_dht *d, const unsigned char id[CR_PK_BYTES],
    int wait_ms, struct net_record *out)
{
	int64_t end = worker_now_ms() + wait_ms, left;
	const struct net_record *r;
	struct timespec ts;
	dht_infohash key;
	int rc = -ENOENT;

	node_key(&key, id);
	pthread_mutex_lock(&d->lock);
	/* Always one get round: a cached record may be of an old address. */
	do {
		uint64_t done0 = d->gets_done;
		pthread_mutex_unlock(&d->lock);
		dht_runner_get(d->runner, &key, on_get, on_get_done, d);
		pthread_mutex_lock(&d->lock);
		while (d->gets_done == done0 &&
		    (left = end - worker_now_ms()) > 0) {
			deadline_in(&ts, (int)left);
			pthread_cond_timedwait(&d->cond, &d->lock, &ts);
		}
		if ((r = net_record_set_find(&d->recs, id)) &&
		    r->expires > unix_now()) {
			*out = *r;
			rc = 0;
			break;
		}
		/* Nothing yet (not connected, or not announced yet): again,
		 * a little later. */
		if ((left = end - worker_now_ms()) > 0) {
			deadline_in(&ts, left < 200 ? (int)left : 200);
			pthread_cond_timedwait(&d->cond, &d->lock, &ts);
		}
	} while (end - worker_now_ms() > 0);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int
net_dht_record(struct net_dht *d, const unsigned char id[CR_PK_BYTES],
    struct net_record *out)
{
	const struct net_record *r;
	int rc = -ENOENT;

	pthread_mutex_lock(&d->lock);
	if ((r = net_record_set_find(&d->recs, id)) && r->expires > unix_now()) {
		*out = *r;
		rc = 0;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void
net_dht_set_flags(struct net_dht *d, uint32_t flags)
{
	inbox_push(d, IN_FLAGS, 1, &flags, sizeof flags);
}

void
net_dht_set_announce(struct net_dht *d, const char *addr, uint32_t reach)
{
	unsigned char buf[sizeof reach + NET_RECORD_ADDR_MAX + 1];
	size_t al = addr ? strnlen(addr, NET_RECORD_ADDR_MAX) : 0;

	memcpy(buf, &reach, sizeof reach);
	memcpy(buf + sizeof reach, addr ? addr : "", al);
	buf[sizeof reach + al] = '\0';
	inbox_push(d, IN_ADDR, 1, buf, sizeof reach + al + 1);
}

void
net_dht_set_relays(struct net_dht *d, const struct net_dht_relays *r)
{
	inbox_push(d, IN_RELAYS, 1, r, sizeof *r);
}

int
net_dht_port(const struct net_dht *d)
{
	return d->port;
}

void
net_dht_put_raw(struct net_dht *d, const unsigned char id[CR_PK_BYTES],
    const void *buf, size_t len)
{
	dht_infohash key;
	dht_value *v = dht_value_new(buf, len);

	if (!v)
		return;
	node_key(&key, id);
	dht_runner_put(d->runner, &key, v, NULL, NULL, false);
	dht_value_unref(v);
}

uint64_t
net_dht_refused(struct net_dht *d)
{
	uint64_t n;

	pthread_mutex_lock(&d->lock);
	n = d->refused;
	pthread_mutex_unlock(&d->lock);
	return n;
}

void
net_dht_announce_now(struct net_dht *d)
{
	uv_async_send(&d->kick);
}

int
net_dht_locate(struct net_dht *d, const unsigned char loc[NET_DHT_LOCATOR_BYTES],
    int want, int wait_ms, struct net_record *out, int max)
{
	int64_t end = worker_now_ms() + wait_ms, left;
	uint64_t now;
	struct timespec ts;
	dht_infohash key;
	int n;

	locator_key(&key, loc);
	pthread_mutex_lock(&d->lock);
	for (;;) {
		uint64_t done0 = d->gets_done;

		now = unix_now();
		n = 0;
		for (size_t i = 0; i < d->located.n; i++)
			n += usable_supplier(d, &d->located.r[i], now);
		if (n >= want || (left = end - worker_now_ms()) <= 0)
			break;
		/* Asked again until enough: a get before we were connected
		 * finds nothing. */
		pthread_mutex_unlock(&d->lock);
		dht_runner_get(d->runner, &key, on_get_loc, on_get_done, d);
		pthread_mutex_lock(&d->lock);
		while (d->gets_done == done0 &&
		    (left = end - worker_now_ms()) > 0) {
			deadline_in(&ts, left < 500 ? (int)left : 500);
			pthread_cond_timedwait(&d->cond, &d->lock, &ts);
		}
	}
	n = 0;
	for (size_t i = 0; i < d->located.n && n < max; i++)
		if (usable_supplier(d, &d->located.r[i], now))
			out[n++] = d->located.r[i];
	pthread_mutex_unlock(&d->lock);
	return n;
}
