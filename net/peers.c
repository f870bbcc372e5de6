/* net/peers.c - the calls of net.h about suppliers as a set: adding,
 * moving, firing, reviving one, its reach, the relays' byte counts, and
 * the listings (net_peers, states, snapshots). Each is an op run on the
 * loop thread (net__op_run), which alone touches the peers. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/internal.h"

struct add_op {
	struct net_op op;
	const char *addr;
	struct sockaddr_storage sa;
	const unsigned char *target;	/* reached through a relay */
};

int
net__peer_addr(const char *name, struct sockaddr_storage *sa)
{
	const char *t = strchr(name, '~');
	char relay[NET_RELAY_NAME_MAX];
	int rc;

	if (!t)
		return net__parse_addr(name, sa);
	if ((size_t)(t - name) >= sizeof relay)
		return -EINVAL;
	memcpy(relay, name, (size_t)(t - name));
	relay[t - name] = '\0';
	if ((rc = net__parse_addr(relay, sa)) < 0)
		return rc;
	return 1;
}

static void
add_start(struct net *n, struct net_op *op)
{
	struct add_op *a = (struct add_op *)op;
	struct net_peer *p, **pp;

	for (pp = &n->peers; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->addr, a->addr) == 0)
			return net__op_done(n, op, 0);
	if (!(p = calloc(1, sizeof *p)))
		return net__op_done(n, op, -ENOMEM);
	p->n = n;
	snprintf(p->addr, sizeof p->addr, "%s", a->addr);
	p->sa = a->sa;
	if (a->target) {
		p->relayed = 1;
		memcpy(p->target, a->target, CR_PK_BYTES);
	}
	p->state = NET_PEER_CONNECTING;
	p->rtt_ms = -1;
	p->down_since = uv_now(&n->loop);
	uv_timer_init(&n->loop, &p->retry);
	p->retry.data = p;
	*pp = p;
	n->npeers++;
	net__peer_connect(p);
	net__op_done(n, op, 0);
}

int
net_add_peer(struct net *n, const char *hostport)
{
	struct add_op a = { .op.start = add_start, .addr = hostport };
	int rc;

	if (!hostport || strlen(hostport) >= sizeof ((struct net_peer *)0)->addr)
		return -EINVAL;
	if ((rc = net__parse_addr(hostport, &a.sa)) < 0)
		return rc;
	return net__op_run(n, &a.op);
}

int
net__add_peer_pk(struct net *n, const char *hostport,
    const unsigned char pk[CR_PK_BYTES])
{
	struct add_op a = { .op.start = add_start, .addr = hostport };
	int rc;

	if (!hostport || strlen(hostport) >= sizeof ((struct net_peer *)0)->addr)
		return -EINVAL;
	if ((rc = net__peer_addr(hostport, &a.sa)) < 0)
		return rc;
	if (rc == 1)
		a.target = pk;
	return net__op_run(n, &a.op);
}

struct move_op {
	struct net_op op;
	const unsigned char *pk;
	const char *old, *addr;
	struct sockaddr_storage sa;
	const char *why;		/* fire_op */
	int relayed;			/* addr names a relay (net__peer_addr) */
	const unsigned char *relay;	/* reach_op: the relay's key */
};

/* The peer behind pk (identified in this mount), else the one at old
 * (never reached yet: a supplier that moved while we were away). */
static struct net_peer *
peer_by_pk_or_addr(struct net *n, const unsigned char *pk, const char *old)
{
	struct net_peer *p = net__peer_by_pk(n, pk);

	for (struct net_peer *q = n->peers; !p && old && q; q = q->next)
		if (!q->have_pk && strcmp(q->addr, old) == 0)
			p = q;
	return p;
}

static void
move_start(struct net *n, struct net_op *op)
{
	struct move_op *a = (struct move_op *)op;
	struct net_peer *p = peer_by_pk_or_addr(n, a->pk, a->old);

	if (!p)
		return net__op_done(n, op, -ENOENT);
	if (strcmp(p->addr, a->addr) == 0)
		return net__op_done(n, op, 0);
	for (struct net_peer *q = n->peers; q; q = q->next)
		if (strcmp(q->addr, a->addr) == 0)
			return net__op_done(n, op, -EEXIST);
	log_info("supplier %s: now at %s (its newer record): reconnecting",
	    p->addr, a->addr);
	/* The clocks keep running: a move is no reason to forgive a
	 * supplier that stays away, nor to count it dead sooner. */
	net__peer_drop(p, -ECONNRESET, "moved to another address");
	snprintf(p->addr, sizeof p->addr, "%s", a->addr);
	p->sa = a->sa;
	p->relayed = a->relayed;
	if (a->relayed)
		memcpy(p->target, a->pk, CR_PK_BYTES);
	uv_timer_stop(&p->retry);
	if (!p->s)
		net__peer_connect(p);
	net__op_done(n, op, 0);
}

int
net_peer_move(struct net *n, const unsigned char pk[CR_PK_BYTES],
    const char *old, const char *hostport)
{
	struct move_op a = { .op.start = move_start, .pk = pk, .old = old,
	    .addr = hostport };
	int rc;

	if (!n->conf.store || !hostport || !pk ||
	    strlen(hostport) >= sizeof ((struct net_peer *)0)->addr ||
	    (a.relayed = net__peer_addr(hostport, &a.sa)) < 0)
		return -EINVAL;
	/* Pinned before the first byte goes there, as at hiring. */
	if ((rc = store_peer_pin(n->conf.store, hostport, pk)) < 0)
		return rc;
	return net__op_run(n, &a.op);
}

static void
fire_start(struct net *n, struct net_op *op)
{
	struct move_op *a = (struct move_op *)op;
	struct net_peer *p = peer_by_pk_or_addr(n, a->pk, a->old);

	if (!p)
		return net__op_done(n, op, -ENOENT);
	net__peer_fire(p, a->why);
	net__op_done(n, op, 0);
}

static void
reach_start(struct net *n, struct net_op *op)
{
	struct move_op *a = (struct move_op *)op;
	struct net_peer *p = peer_by_pk_or_addr(n, a->pk, a->old);

	if (!p)
		return net__op_done(n, op, -ENOENT);
	snprintf(p->reach, sizeof p->reach, "%s", a->why);
	p->have_relay = a->relay != NULL;
	if (a->relay)
		memcpy(p->relay_pk, a->relay, CR_PK_BYTES);
	net__op_done(n, op, 0);
}

int
net_peer_set_reach(struct net *n, const unsigned char pk[CR_PK_BYTES],
    const char *addr, const char *how, const unsigned char *relay)
{
	struct move_op a = { .op.start = reach_start, .pk = pk, .old = addr,
	    .why = how, .relay = relay };

	return net__op_run(n, &a.op);
}

struct relay_take_op {
	struct net_op op;
	void (*cb)(void *arg, const unsigned char pk[CR_PK_BYTES],
	    uint64_t bytes);
	void *arg;
};

static void
relay_take_start(struct net *n, struct net_op *op)
{
	struct relay_take_op *a = (struct relay_take_op *)op;
	int k = 0;

	/* On the loop: the callback only adds to the caller's figures. */
	for (int i = 0; i < n->nracc; i++)
		if (n->racc[i].bytes) {
			a->cb(a->arg, n->racc[i].pk, n->racc[i].bytes);
			n->racc[i].bytes = 0;
			k++;
		}
	net__op_done(n, op, k);
}

int
net_relay_take(struct net *n, void (*cb)(void *arg,
    const unsigned char pk[CR_PK_BYTES], uint64_t bytes), void *arg)
{
	struct relay_take_op a = { .op.start = relay_take_start, .cb = cb,
	    .arg = arg };

	return net__op_run(n, &a.op);
}

static void
revive_start(struct net *n, struct net_op *op)
{
	struct move_op *a = (struct move_op *)op;
	struct net_peer *p = net__peer_by_pk(n, a->pk);

	if (!p)
		return net__op_done(n, op, -ENOENT);
	if (p->state != NET_PEER_DEAD)
		return net__op_done(n, op, 0);
	if (p->fired)
		return net__op_done(n, op, -EPERM);
	/* A fresh start of the suspect/dead clock: it is judged again like
	 * any supplier just hired. */
	p->state = p->up ? NET_PEER_ONLINE : NET_PEER_CONNECTING;
	p->down_since = uv_now(&n->loop);
	p->dead_at = 0;
	p->last_error[0] = '\0';
	log_info("supplier %s: back after being declared dead: hired again",
	    p->addr);
	net__op_done(n, op, 0);
}

int
net_peer_revive(struct net *n, const unsigned char pk[CR_PK_BYTES])
{
	struct move_op a = { .op.start = revive_start, .pk = pk };

	return net__op_run(n, &a.op);
}

int
net_peer_fire(struct net *n, const unsigned char pk[CR_PK_BYTES],
    const char *addr, const char *why)
{
	struct move_op a = { .op.start = fire_start, .pk = pk, .old = addr,
	    .why = why };

	return net__op_run(n, &a.op);
}

struct peers_op {
	struct net_op op;
	struct net_peer_info *out;
	int max, refresh, count;
};

static void
peers_fill(struct net *n, struct peers_op *a)
{
	int i = 0;

	for (struct net_peer *p = n->peers; p; p = p->next, i++) {
		if (i >= a->max)
			continue;
		struct net_peer_info *o = &a->out[i];
		memset(o, 0, sizeof *o);
		if (p->have_pk)
			memcpy(o->pk, p->pk, CR_PK_BYTES);
		snprintf(o->addr, sizeof o->addr, "%s", p->addr);
		o->state = p->state;
		o->rtt_ms = p->rtt_ms;
		o->fragments = p->fragments;
		o->bytes = p->bytes;
		o->avail = p->avail;
		o->quota = p->quota;
		o->score = net__peer_score(p);
		o->late = p->late;
		o->lags = p->lags;
		o->lagging = net__peer_lagging(p);
		o->audits_ok = p->audits_ok;
		o->audits_failed = p->audits_failed;
		o->bad_fragments = p->bad_fragments;
		o->dead_at = p->dead_at;
		o->fired = p->fired;
		snprintf(o->last_error, sizeof o->last_error, "%s",
		    p->last_error);
		snprintf(o->refusal, sizeof o->refusal, "%s", p->refusal);
		snprintf(o->reach, sizeof o->reach, "%s", p->punched ?
		    "direct (punched)" : p->reach);
	}
	a->count = i;
}

static void
peers_start(struct net *n, struct net_op *op)
{
	int busy = 0;

	if (((struct peers_op *)op)->refresh) {
		for (struct net_peer *p = n->peers; p; p = p->next) {
			net__peer_check_up(p);
			net__peer_ping(p);
			busy |= p->ping_busy;
		}
		if (busy) {
			op->next = n->refresh;
			n->refresh = op;
			return;
		}
	}
	net__op_done(n, op, 0);
}

/* Fill on the loop thread after the pings (if any): a second op, so the
 * figures are read where they are written. */
static void
peers_fill_start(struct net *n, struct net_op *op)
{
	peers_fill(n, (struct peers_op *)op);
	net__op_done(n, op, 0);
}

int
net_peers(struct net *n, struct net_peer_info *out, int max, int refresh)
{
	struct peers_op a = { .op.start = peers_start, .out = out, .max = max,
	    .refresh = refresh };
	int rc;

	if (refresh && (rc = net__op_run(n, &a.op)) < 0)
		return rc;
	a.op.start = peers_fill_start;
	if ((rc = net__op_run(n, &a.op)) < 0)
		return rc;
	return a.count;
}

struct state_op {
	struct net_op op;
	const unsigned char *pk;
	int state;
};

/* A key no identified peer has may still be one not reached yet in this
 * mount: only once every peer is identified (or dead) is it unknown. */
static int
unknown_key_state(struct net *n)
{
	for (struct net_peer *p = n->peers; p; p = p->next)
		if (!p->have_pk && p->state != NET_PEER_DEAD)
			return NET_PEER_CONNECTING;
	return NET_PEER_DEAD;
}

static void
state_start(struct net *n, struct net_op *op)
{
	struct state_op *a = (struct state_op *)op;
	struct net_peer *p = net__peer_by_pk(n, a->pk);

	a->state = p ? (int)p->state : unknown_key_state(n);
	net__op_done(n, op, 0);
}

int
net_peer_state(struct net *n, const unsigned char pk[CR_PK_BYTES])
{
	struct state_op a = { .op.start = state_start, .pk = pk };
	int rc;

	/* Shutting down is no reason to rebuild anything. */
	if ((rc = net__op_run(n, &a.op)) < 0)
		return NET_PEER_OFFLINE;
	return a.state;
}

struct net_peer_snap {
	int n, unknown;
	struct {
		unsigned char pk[CR_PK_BYTES];
		int state;
		int lagging;	/* net__peer_lagging */
		int up;		/* its session was up */
	} peer[];		/* identified peers only */
};

struct snap_op {
	struct net_op op;
	struct net_peer_snap *s;
};

static void
snap_start(struct net *n, struct net_op *op)
{
	struct snap_op *a = (struct snap_op *)op;
	struct net_peer_snap *s;
	int count = 0;

	for (struct net_peer *p = n->peers; p; p = p->next)
		count++;
	if (!(s = malloc(sizeof *s + (size_t)count * sizeof s->peer[0]))) {
		net__op_done(n, op, -ENOMEM);
		return;
	}
	s->n = 0;
	s->unknown = unknown_key_state(n);
	for (struct net_peer *p = n->peers; p; p = p->next)
		if (p->have_pk) {
			memcpy(s->peer[s->n].pk, p->pk, CR_PK_BYTES);
			s->peer[s->n].lagging = net__peer_lagging(p);
			s->peer[s->n].up = net__peer_up(p);
			s->peer[s->n++].state = p->state;
		}
	a->s = s;
	net__op_done(n, op, 0);
}

int
net_peer_snap_take(struct net *n, struct net_peer_snap **out)
{
	struct snap_op a = { .op.start = snap_start };
	int rc;

	if ((rc = net__op_run(n, &a.op)) < 0) {
		free(a.s);
		return rc;
	}
	*out = a.s;
	return 0;
}

/* The index of pk in s, -1 when s has no such peer. */
static int
snap_find(const struct net_peer_snap *s, const unsigned char pk[CR_PK_BYTES])
{
	for (int i = 0; i < s->n; i++)
		if (memcmp(s->peer[i].pk, pk, CR_PK_BYTES) == 0)
			return i;
	return -1;
}

int
net_peer_snap_state(const struct net_peer_snap *s,
    const unsigned char pk[CR_PK_BYTES])
{
	int i = snap_find(s, pk);

	return i < 0 ? s->unknown : s->peer[i].state;
}

int
net_peer_snap_up(const struct net_peer_snap *s,
    const unsigned char pk[CR_PK_BYTES])
{
	int i = snap_find(s, pk);

	return i >= 0 && s->peer[i].up;
}

int
net_peer_snap_online_except(const struct net_peer_snap *s,
    const unsigned char (*pk)[CR_PK_BYTES], int npk, int keeping_up)
{
	int count = 0;

	for (int i = 0; i < s->n; i++) {
		int listed = 0;
		if (s->peer[i].state != NET_PEER_ONLINE ||
		    (keeping_up && s->peer[i].lagging))
			continue;
		for (int j = 0; j < npk && !listed; j++)
			listed = memcmp(s->peer[i].pk, pk[j], CR_PK_BYTES) == 0;
		count += !listed;
	}
	return count;
}

void
net_peer_snap_free(struct net_peer_snap *s)
{
	free(s);
}
