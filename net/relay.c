/* net/relay.c - relays for nodes behind home routers (issue 18, step 3).
 *
 * The relay's side (a supplier run with --relay): a node nobody can dial
 * holds a reservation (RELAY_RESERVE on an ordinary session, renewed
 * every keepalive). An owner that wants it opens a circuit: a connection
 * to the relay that starts with a CONNECT request naming the node
 * (net/internal.h); the relay tells the node (RELAY_INCOMING with a
 * fresh token) and the node opens a second connection that ACCEPTs with
 * that token. The relay then copies bytes between the two and the
 * ordinary handshake runs inside, end to end: the relay learns who talks
 * to whom and how much, never a byte of content, and cannot pose as the
 * node (the owner checks its key).
 *
 * Limits, each refused with a reason the asker sees: reservations in
 * all, circuits per reserved node and per asking address, bytes per
 * circuit (then it is closed), and a rate per circuit (reading pauses
 * while it is over: others keep their share of the loop).
 *
 * The node's side (net__relay_client): reservations on one or two
 * relays found in the DHT while net/reach.c finds no other way in, and
 * the circuits offered through them, handed to the supplier as sessions
 * of its own.
 *
 * Everything here runs on the supplier's loop. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/dht.h"
#include "net/internal.h"
#include "util.h"

/* The node renews its reservation this often unless the relay says
 * otherwise (--relay-keepalive): below the UDP and TCP idle timeouts of
 * home routers (30 s is common for the shortest). A reservation not
 * renewed for three of them is dropped. */
#define KEEPALIVE_S	20
/* What a node accepts from a relay: a relay asking for renewals more
 * often than this, or less often, is held to it. */
#define KEEPALIVE_MIN_S	1
#define KEEPALIVE_MAX_S	600
/* The node must take an offered circuit within this. */
#define OFFER_MS	10000
/* Bytes queued towards one end beyond which the other end's reading
 * pauses (back pressure), and below which it resumes. */
#define PIPE_HIGH	(1u << 20)
#define PIPE_LOW	(256u << 10)
#define TICK_MS		250
#define ENDS_MAX	8192	/* circuit connections in all */

struct resv {
	struct resv *next;
	unsigned char pk[CR_PK_BYTES];
	struct net_sess *s;		/* the reservation's session, ref'd */
	uint64_t renewed;		/* uv_now() */
	unsigned circuits;		/* open or offered */
};

struct circ;

/* A raw connection: a circuit request being read, then one end. */
struct end {
	struct end *next, *prev;	/* the relay's */
	struct net_relay *r;
	struct net_sess *s;		/* referenced */
	unsigned char req[NET_RELAY_REQ_BYTES];
	size_t have;
	struct circ *c;			/* NULL until it names one */
	int closing;			/* answered a refusal: close once sent */
	int paused;			/* by us: rate or back pressure */
	uint64_t t0;			/* uv_now() when adopted */
};

struct circ {
	struct circ *next;
	struct net_relay *r;
	struct end *a, *b;		/* asker, node (b NULL until ACCEPT) */
	struct resv *to;		/* NULL once the reservation is gone */
	unsigned char token[NET_RELAY_TOKEN_BYTES];
	char from[48];			/* the asker's address */
	uint64_t t0;			/* offered, uv_now() */
	uint64_t bytes;			/* both ways */
	double budget;			/* rate: bytes it may still send now */
	uint64_t budget_at;
};

struct net_relay {
	uv_loop_t *loop;
	struct net_relay_conf conf;
	uv_timer_t tick;
	struct resv *resv;
	unsigned nresv;
	struct circ *circ;
	struct end *ends;
	uint64_t carried;		/* bytes piped, in all */
	int closing, tick_closed;	/* freed when closing, the tick's
					 * handle closed and no end left */
	struct net_ratelog rl;		/* refusals */
	uint64_t rl_at;			/* uv_now(): its last report */
};

static void
rl_emit(void *arg, const char *who, const char *what, uint64_t n)
{
	log_info("relay: refused %s: %s, %llu times in the last minute", who,
	    what, (unsigned long long)n);
}

static void
relay_maybe_free(struct net_relay *r)
{
	if (r->closing && r->tick_closed && !r->ends)
		free(r);
}

/* ---- answers and ends ------------------------------------------------- */
static void
answer(struct end *e, int err, const char *why)
{
	unsigned char a[NET_RELAY_ANS_BYTES] = { 0 };
	size_t wl = why ? strlen(why) : 0;

	if (wl > NET_RELAY_WHY_MAX)
		wl = NET_RELAY_WHY_MAX;
	a[0] = (unsigned char)err;
	a[1] = (unsigned char)wl;
	memcpy(a + 2, why, wl);
	if (net_sess_send_raw(e->s, a, sizeof a) < 0)
		net_sess_close(e->s, -EIO, NULL);
}

/* Refuses with a reason; the connection closes once it is sent. Anyone
 * can make us refuse at will: logged per address and kind (what, a
 * static string) at most once a minute (net_ratelog). */
static void
refuse(struct end *e, int err, const char *why, const char *what)
{
	if (net_ratelog_hit(&e->r->rl, e->s->host, what))
		log_info("relay: %s: %s", e->s->name, why);
	answer(e, err, why);
	e->closing = 1;
	if (!e->s->queued)
		net_sess_close(e->s, 0, NULL);
}

static void
circ_free(struct circ *c)
{
	struct net_relay *r = c->r;

	for (struct circ **pp = &r->circ; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (c->to && c->to->circuits)
		c->to->circuits--;
	if (c->a)
		c->a->c = NULL;
	if (c->b)
		c->b->c = NULL;
	free(c);
}

/* One end went: the circuit goes, and its other end with it. */
static void
circ_end(struct circ *c, const char *why)
{
	struct end *a = c->a, *b = c->b;

	if (why)
		log_info("relay: circuit from %s closed: %s (%llu bytes)",
		    c->from, why, (unsigned long long)c->bytes);
	circ_free(c);
	if (a)
		net_sess_close(a->s, 0, NULL);
	if (b)
		net_sess_close(b->s, 0, NULL);
}

static void
end_pause(struct end *e, int on)
{
	if (e->paused == on)
		return;
	e->paused = on;
	if (on)
		net_sess_pause(e->s);
	else
		net_sess_resume(e->s);
}

static struct end *
other(const struct end *e)
{
	return e->c->a == e ? e->c->b : e->c->a;
}

/* The rate budget refills with time, up to one second's worth. */
static void
refill(struct circ *c, uint64_t now)
{
	double rate = (double)c->r->conf.circuit_rate;

	c->budget += rate * (double)(now - c->budget_at) / 1000.0;
	if (c->budget > rate)
		c->budget = rate;
	c->budget_at = now;
}

static void
pipe_bytes(struct end *e, const unsigned char *p, size_t n)
{
	struct circ *c = e->c;
	struct net_relay *r = e->r;
	struct end *o = other(e);

	c->bytes += n;
	r->carried += n;
	if (c->bytes > r->conf.circuit_bytes) {
		circ_end(c, "past the bytes a circuit may carry");
		return;
	}
	if (net_sess_send_raw(o->s, p, n) < 0) {
		circ_end(c, "cannot send");
		return;
	}
	refill(c, uv_now(r->loop));
	c->budget -= (double)n;
	/* Over the rate, or the other end not reading: this end waits
	 * (the tick and on_sent let it go on). */
	if (c->budget < 0 || o->s->queued > PIPE_HIGH)
		end_pause(e, 1);
}

static struct resv *
resv_find(struct net_relay *r, const unsigned char pk[CR_PK_BYTES])
{
	for (struct resv *v = r->resv; v; v = v->next)
		if (!memcmp(v->pk, pk, CR_PK_BYTES))
			return v;
	return NULL;
}

static unsigned
circuits_from(struct net_relay *r, const char *host)
{
	unsigned n = 0;

	for (struct circ *c = r->circ; c; c = c->next)
		n += !strcmp(c->from, host);
	return n;
}

static void
connect_req(struct end *e)
{
	struct net_relay *r = e->r;
	struct resv *v = resv_find(r, e->req + NET_RELAY_MAGIC_LEN + 1);
	struct net_msg m = { .type = NET_RELAY_INCOMING };
	char why[NET_RELAY_WHY_MAX + 1];
	struct circ *c;

	if (!v) {
		refuse(e, ENOENT, "no reservation here for that node",
		    "no reservation");
		return;
	}
	if (v->circuits >= r->conf.max_circuits) {
		snprintf(why, sizeof why, "that node has %u circuits here, "
		    "the most allowed", v->circuits);
		refuse(e, EUSERS, why, "circuits per node");
		return;
	}
	if (circuits_from(r, e->s->host) >= r->conf.max_per_addr) {
		snprintf(why, sizeof why, "%u circuits from your address, the "
		    "most allowed", r->conf.max_per_addr);
		refuse(e, EUSERS, why, "circuits per address");
		return;
	}
	if (!(c = calloc(1, sizeof *c))) {
		refuse(e, ENOMEM, "relay out of memory", "out of memory");
		return;
	}
	c->r = r;
	c->a = e;
	c->to = v;
	c->t0 = c->budget_at = uv_now(r->loop);
	c->budget = (double)r->conf.circuit_rate;
	snprintf(c->from, sizeof c->from, "%s", e->s->host);
	randombytes_buf(c->token, sizeof c->token);
	m.token = c->token;
	if (net_sess_send(v->s, &m) < 0) {
		free(c);
		refuse(e, ECONNRESET, "the node's reservation is going away",
		    "reservation going");
		return;
	}
	v->circuits++;
	e->c = c;
	c->next = r->circ;
	r->circ = c;
}

/* e's peer address without the port ("1.2.3.4", "2001:db8::1"): "" when
 * unknown. s->host will not do: an IPv6 peer's is its /64. */
static void
observed(struct end *e, char *out, size_t size)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;

	out[0] = '\0';
	if (uv_tcp_getpeername(&e->s->tcp, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		uv_ip4_name((struct sockaddr_in *)&ss, out, size);
	else if (ss.ss_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)&ss, out, size);
}

static void
accept_req(struct end *e)
{
	struct net_relay *r = e->r;
	const unsigned char *tok = e->req + NET_RELAY_MAGIC_LEN + 1;
	char oa[NET_RELAY_WHY_MAX + 1], ob[NET_RELAY_WHY_MAX + 1];
	struct circ *c;

	for (c = r->circ; c; c = c->next)
		if (!c->b && sodium_memcmp(c->token, tok, sizeof c->token) == 0)
			break;
	if (!c) {
		refuse(e, ENOENT, "no such circuit (taken, or too late)",
		    "no such circuit");
		return;
	}
	c->b = e;
	e->c = c;
	/* Each end learns where the other is as we see it: all hole
	 * punching needs (net/punch.c). */
	observed(e, ob, sizeof ob);
	observed(c->a, oa, sizeof oa);
	answer(c->a, 0, ob);
	answer(e, 0, oa);
	log_debug("relay: circuit from %s piped", c->from);
}

static void
raw_on_raw(struct net_sess *s, const unsigned char *p, size_t n)
{
	struct end *e = s->data;
	size_t take;

	if (e->closing)
		return;
	if (e->c && e->c->b) {
		pipe_bytes(e, p, n);
		return;
	}
	if (e->have == sizeof e->req || e->c) {
		/* Nothing may come before the circuit is piped: a client
		 * waits for the answer. */
		if (e->c)
			circ_end(e->c, "the asker spoke before the circuit "
			    "was open");
		else
			net_sess_close(s, -EPROTO, "relay: bytes before "
			    "the circuit was open");
		return;
	}
	take = sizeof e->req - e->have;
	if (take > n)
		take = n;
	memcpy(e->req + e->have, p, take);
	e->have += take;
	if (e->have < sizeof e->req)
		return;
	if (take < n) {
		net_sess_close(s, -EPROTO, "relay: bytes before the circuit "
		    "was open");
		return;
	}
	if (e->req[NET_RELAY_MAGIC_LEN] == NET_RELAY_CONNECT)
		connect_req(e);
	else if (e->req[NET_RELAY_MAGIC_LEN] == NET_RELAY_ACCEPT)
		accept_req(e);
	else
		refuse(e, EPROTO, "unknown circuit request",
		    "unknown request");
}

static void
raw_on_sent(struct net_sess *s, size_t n)
{
	struct end *e = s->data;

	if (e->closing && !s->queued) {
		net_sess_close(s, 0, NULL);
		return;
	}
	/* Room again towards us: the other end may read on. */
	if (e->c && e->c->b && s->queued < PIPE_LOW) {
		struct end *o = other(e);
		if (o->paused && e->c->budget >= 0)
			end_pause(o, 0);
	}
}

static void
raw_on_close(struct net_sess *s, int err)
{
	struct end *e = s->data;

	struct net_relay *r = e->r;

	if (e->c)
		circ_end(e->c, e->c->b ? "an end closed" : NULL);
	if (e->prev)
		e->prev->next = e->next;
	else
		r->ends = e->next;
	if (e->next)
		e->next->prev = e->prev;
	net_sess_unref(s);
	free(e);
	relay_maybe_free(r);
}

static int
raw_on_up(struct net_sess *s)
{
	return -1;		/* never: a raw session has no handshake */
}

static void
raw_on_msg(struct net_sess *s, const struct net_msg *m, unsigned char **b)
{
}

static const struct net_sess_ops raw_ops = {
	.on_up = raw_on_up, .on_msg = raw_on_msg, .on_sent = raw_on_sent,
	.on_close = raw_on_close, .on_raw = raw_on_raw,
};

/* A connection refused before it became an end: nobody's any more. */
static void
gone_on_close(struct net_sess *s, int err)
{
}

static const struct net_sess_ops gone_ops = {
	.on_up = raw_on_up, .on_msg = raw_on_msg, .on_close = gone_on_close,
};

void
net__relay_adopt(struct net_relay *r, struct net_sess *s,
    const unsigned char *p, size_t n)
{
	struct end *e;

	/* The supplier no longer counts s: its callbacks must not run. */
	s->ops = &gone_ops;
	s->data = NULL;
	if (!r) {
		net_sess_close(s, -EPROTO, "circuit request, but not a relay");
		return;
	}
	/* Connections are cheap to open: no more of them from one address
	 * than it may have circuits (twice: both ends of its own), and
	 * never more than ENDS_MAX in all. */
	unsigned from = 0, all = 0;
	for (struct end *o = r->ends; o; o = o->next, all++)
		from += !strcmp(o->s->host, s->host);
	if (from >= 2 * r->conf.max_per_addr || all >= ENDS_MAX) {
		if (net_ratelog_hit(&r->rl, s->host, "too many connections"))
			log_info("relay: %s: too many circuit connections",
			    s->name);
		net_sess_close(s, -EUSERS, NULL);
		return;
	}
	if (!(e = calloc(1, sizeof *e))) {
		net_sess_close(s, -ENOMEM, NULL);
		return;
	}
	e->r = r;
	e->s = s;
	e->t0 = uv_now(r->loop);
	e->next = r->ends;
	if (e->next)
		e->next->prev = e;
	r->ends = e;
	net_sess_ref(s);
	s->ops = &raw_ops;
	s->data = e;
	/* The first bytes came through the supplier's ops: ours now. */
	raw_on_raw(s, p, n);
}

/* ---- reservations ------------------------------------------------------ */
void
net__relay_reserve(struct net_relay *r, struct net_sess *s, uint64_t reqid)
{
	struct net_msg m = { .type = NET_RELAY_RESERVE_OK, .reqid = reqid,
	    .keepalive_s = r->conf.keepalive_s };
	struct resv *v;
	char why[96];

	if (!r) {
		struct net_msg e = { .type = NET_ERR, .reqid = reqid,
		    .err = EOPNOTSUPP, .errmsg = "not a relay",
		    .errmsg_len = 11 };
		net_sess_send(s, &e);
		return;
	}
	m.circuits = r->conf.max_circuits;
	if ((v = resv_find(r, s->peer_pk))) {
		if (v->s != s) {	/* a new session of the same node */
			net_sess_unref(v->s);
			v->s = s;
			net_sess_ref(s);
		}
	} else {
		if (r->nresv >= r->conf.max_reservations) {
			struct net_msg e = { .type = NET_ERR, .reqid = reqid,
			    .err = EUSERS, .errmsg = why };
			e.errmsg_len = (size_t)snprintf(why, sizeof why,
			    "relay full: %u reservations, the most it holds",
			    r->nresv);
			if (net_ratelog_hit(&r->rl, s->host, "relay full"))
				log_info("relay: %s: %s", s->name, why);
			net_sess_send(s, &e);
			return;
		}
		if (!(v = calloc(1, sizeof *v))) {
			struct net_msg e = { .type = NET_ERR, .reqid = reqid,
			    .err = ENOMEM };
			net_sess_send(s, &e);
			return;
		}
		memcpy(v->pk, s->peer_pk, CR_PK_BYTES);
		v->s = s;
		net_sess_ref(s);
		v->next = r->resv;
		r->resv = v;
		r->nresv++;
		log_info("relay: reservation for %s", s->name);
	}
	v->renewed = uv_now(r->loop);
	net_sess_send(s, &m);
}

static void
resv_drop(struct net_relay *r, struct resv *v)
{
	for (struct resv **pp = &r->resv; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			break;
		}
	/* Circuits offered and not taken yet cannot be; piped ones go
	 * on (they no longer need the reservation). */
	for (struct circ *c = r->circ, *next; c; c = next) {
		next = c->next;
		if (c->to != v)
			continue;
		c->to = NULL;
		if (!c->b) {
			refuse(c->a, ECONNRESET, "the node's reservation "
			    "went away", "reservation gone");
			circ_free(c);
		}
	}
	net_sess_unref(v->s);
	r->nresv--;
	free(v);
}

void
net__relay_sess_closed(struct net_relay *r, struct net_sess *s)
{
	struct resv *v;

	if (!r)
		return;
	for (v = r->resv; v; v = v->next)
		if (v->s == s)
			break;
	if (v) {
		log_info("relay: reservation for %s ended", s->name);
		resv_drop(r, v);
	}
}

static void
on_tick(uv_timer_t *t)
{
	struct net_relay *r = t->data;
	uint64_t now = uv_now(r->loop);

	if (now - r->rl_at >= 60000) {
		net_ratelog_report(&r->rl, rl_emit, r);
		r->rl_at = now;
	}
	for (struct resv *v = r->resv, *next; v; v = next) {
		next = v->next;
		if (now - v->renewed > 3000 * (uint64_t)r->conf.keepalive_s) {
			log_info("relay: reservation for %s not renewed: "
			    "dropped", v->s->name);
			net_sess_close(v->s, -ETIMEDOUT, NULL);
			resv_drop(r, v);
		}
	}
	/* A request begun must be whole soon: the handshake's deadline no
	 * longer runs for these connections. */
	for (struct end *e = r->ends; e; e = e->next)
		if (!e->c && !e->closing && now - e->t0 > OFFER_MS)
			net_sess_close(e->s, -ETIMEDOUT, "relay: circuit "
			    "request not completed in time");
	for (struct circ *c = r->circ, *next; c; c = next) {
		next = c->next;
		if (!c->b && now - c->t0 > OFFER_MS) {
			struct end *a = c->a;
			circ_free(c);
			refuse(a, ETIMEDOUT, "the node did not take the "
			    "circuit", "not taken");
			continue;
		}
		if (!c->b)
			continue;
		refill(c, now);
		if (c->budget < 0)
			continue;
		if (c->a->paused && c->b->s->queued < PIPE_LOW)
			end_pause(c->a, 0);
		if (c->b->paused && c->a->s->queued < PIPE_LOW)
			end_pause(c->b, 0);
	}
}

int
net__relay_new(struct net_relay **out, uv_loop_t *loop,
    const struct net_relay_conf *conf)
{
	struct net_relay *r;

	if (!conf->max_reservations || !conf->max_circuits ||
	    !conf->max_per_addr || !conf->circuit_bytes || !conf->circuit_rate)
		return -EINVAL;
	if (!(r = calloc(1, sizeof *r)))
		return -ENOMEM;
	r->loop = loop;
	r->conf = *conf;
	if (!r->conf.keepalive_s)
		r->conf.keepalive_s = KEEPALIVE_S;
	net_ratelog_init(&r->rl);
	r->rl_at = uv_now(loop);
	uv_timer_init(loop, &r->tick);
	r->tick.data = r;
	uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
	*out = r;
	return 0;
}

static void
on_tick_closed(uv_handle_t *h)
{
	struct net_relay *r = h->data;

	r->tick_closed = 1;
	relay_maybe_free(r);
}

void
net__relay_close(struct net_relay *r)
{
	if (!r)
		return;
	r->closing = 1;
	while (r->circ)
		circ_end(r->circ, NULL);
	while (r->resv)
		resv_drop(r, r->resv);
	for (struct end *e = r->ends; e; e = e->next)
		net_sess_close(e->s, 0, NULL);
	uv_close((uv_handle_t *)&r->tick, on_tick_closed);
}

/* ---- the node's side: reservations and the circuits they bring -------- */
#define LINKS		2	/* relays held at once */
#define LINK_TICK_MS	1000
#define BAD_MAX		8
#define BAD_MS		30000	/* a relay that failed us rests this long */
#define LINK_WAIT_MS	15000	/* connect, handshake, first answer */

struct link {
	struct net_relay_client *rc;
	struct net_sess *s;		/* referenced while not NULL */
	char addr[NET_RECORD_ADDR_MAX + 1];
	unsigned char pk[CR_PK_BYTES];
	struct sockaddr_storage sa;
	int held;			/* RELAY_RESERVE_OK seen */
	uint64_t renewed, keepalive_ms;
	uint64_t answered;		/* uv_now(): connected, or last OK */
	uint64_t reqid;
};

struct net_relay_client {
	uv_loop_t *loop;
	struct net_relay_client_conf conf;
	uv_timer_t tick;
	struct link link[LINKS];
	struct {
		char addr[NET_RECORD_ADDR_MAX + 1];
		uint64_t until;
	} bad[BAD_MAX];
	int nbad_next;
	int published;			/* relays last announced */
	int closing, tick_closed;	/* freed when both and no link left */
};

static void
client_maybe_free(struct net_relay_client *rc)
{
	for (int i = 0; i < LINKS; i++)
		if (rc->link[i].s)
			return;
	if (rc->closing && rc->tick_closed)
		free(rc);
}

static void
publish(struct net_relay_client *rc)
{
	struct net_dht_relays h = { 0 };

	for (int i = 0; i < LINKS; i++) {
		struct link *l = &rc->link[i];
		if (!l->s || !l->held)
			continue;
		snprintf(h.addr[h.n], sizeof h.addr[h.n], "%s", l->addr);
		memcpy(h.id[h.n++], l->pk, CR_PK_BYTES);
	}
	if (h.n == 0 && rc->published == 0)
		return;
	rc->published = h.n;
	rc->conf.on_change(rc->conf.arg, &h);
}

static void
mark_bad(struct net_relay_client *rc, const char *addr)
{
	int i = rc->nbad_next++ % BAD_MAX;

	snprintf(rc->bad[i].addr, sizeof rc->bad[i].addr, "%s", addr);
	rc->bad[i].until = uv_now(rc->loop) + BAD_MS;
}

static int
is_bad(struct net_relay_client *rc, const char *addr)
{
	for (int i = 0; i < BAD_MAX; i++)
		if (!strcmp(rc->bad[i].addr, addr) &&
		    uv_now(rc->loop) < rc->bad[i].until)
			return 1;
	return 0;
}

static void
link_reserve(struct link *l)
{
	struct net_msg m = { .type = NET_RELAY_RESERVE, .reqid = ++l->reqid };

	l->renewed = uv_now(l->rc->loop);
	if (net_sess_send(l->s, &m) < 0)
		net_sess_close(l->s, -EIO, NULL);
}

static int
link_on_up(struct net_sess *s)
{
	struct link *l = s->data;

	if (memcmp(s->peer_pk, l->pk, CR_PK_BYTES) != 0) {
		log_warn("relay %s: another key than its record's", l->addr);
		return -1;
	}
	return 0;
}

static void
link_on_ready(struct net_sess *s)
{
	link_reserve(s->data);
}

static void
link_on_msg(struct net_sess *s, const struct net_msg *m, unsigned char **buf)
{
	struct link *l = s->data;
	struct net_relay_client *rc = l->rc;
	unsigned char req[NET_RELAY_REQ_BYTES] = { 0 };
	char name[NET_RECORD_ADDR_MAX + 16];

	switch (m->type) {
	case NET_RELAY_RESERVE_OK:
		l->answered = uv_now(rc->loop);
		l->keepalive_ms = 1000 * (uint64_t)(m->keepalive_s <
		    KEEPALIVE_MIN_S ? KEEPALIVE_MIN_S : m->keepalive_s >
		    KEEPALIVE_MAX_S ? KEEPALIVE_MAX_S : m->keepalive_s);
		if (!l->held) {
			l->held = 1;
			log_info("relay: reserved on %s: reachable through it",
			    l->addr);
			publish(rc);
		}
		return;
	case NET_ERR:
		log_warn("relay %s refused our reservation: %.*s", l->addr,
		    (int)(m->errmsg_len < 200 ? m->errmsg_len : 200),
		    m->errmsg ? m->errmsg : "");
		mark_bad(rc, l->addr);
		net_sess_close(s, -(int)m->err, NULL);
		return;
	case NET_RELAY_INCOMING:
		memcpy(req, NET_RELAY_MAGIC, NET_RELAY_MAGIC_LEN);
		req[NET_RELAY_MAGIC_LEN] = NET_RELAY_ACCEPT;
		memcpy(req + NET_RELAY_MAGIC_LEN + 1, m->token,
		    NET_RELAY_TOKEN_BYTES);
		snprintf(name, sizeof name, "%s (relayed)", l->addr);
		if (rc->conf.take(rc->conf.take_arg, (struct sockaddr *)&l->sa,
		    name, req) < 0)
			log_warn("relay %s: cannot take a circuit", l->addr);
		return;
	default:
		net_sess_close(s, -EPROTO, "unexpected message from relay");
	}
}

static void
link_on_close(struct net_sess *s, int err)
{
	struct link *l = s->data;

	if (l->s != s)
		return;
	if (l->rc->closing) {
		net_sess_unref(s);
		l->s = NULL;
		client_maybe_free(l->rc);
		return;
	}
	if (l->held)
		log_warn("relay: lost our reservation on %s", l->addr);
	else if (err)
		mark_bad(l->rc, l->addr);
	net_sess_unref(s);
	l->s = NULL;
	l->held = 0;
	publish(l->rc);
}

static const struct net_sess_ops link_ops = {
	.on_up = link_on_up, .on_ready = link_on_ready, .on_msg = link_on_msg,
	.on_close = link_on_close,
};

static int
link_in_use(struct net_relay_client *rc, const unsigned char pk[CR_PK_BYTES])
{
	for (int i = 0; i < LINKS; i++)
		if (rc->link[i].s && !memcmp(rc->link[i].pk, pk, CR_PK_BYTES))
			return 1;
	return 0;
}

/* "A.B.C.D:PORT" or "[V6]:PORT", never a name. */
static int
numeric_addr(const char *hp, struct sockaddr_storage *sa)
{
	char host[NET_RECORD_ADDR_MAX + 1];
	const char *c = strrchr(hp, ':');
	size_t hl;
	int port;

	if (!c || (hl = (size_t)(c - hp)) >= sizeof host || hl < 2)
		return -EINVAL;
	port = atoi(c + 1);
	if (port < 1 || port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof *sa);
	if (hp[0] == '[' && hp[hl - 1] == ']') {
		memcpy(host, hp + 1, hl - 2);
		host[hl - 2] = '\0';
		return uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa);
	}
	memcpy(host, hp, hl);
	host[hl] = '\0';
	return uv_ip4_addr(host, port, (struct sockaddr_in *)sa);
}

static void
link_tick(uv_timer_t *t)
{
	struct net_relay_client *rc = t->data;
	struct net_dht_relays cand;
	uint64_t now = uv_now(rc->loop);
	int want = rc->conf.want(rc->conf.arg), nc = -1;

	for (int i = 0; i < LINKS; i++) {
		struct link *l = &rc->link[i];

		if (l->s && !want) {
			l->held = 0;		/* not "lost": let go */
			net_sess_close(l->s, 0, NULL);
			continue;
		}
		if (l->s) {
			/* A relay that stopped answering is no relay: its
			 * reservation is as good as lost. */
			if (now - l->answered > (l->held ? 3 * l->keepalive_ms :
			    LINK_WAIT_MS)) {
				log_warn("relay %s: no answer: dropped", l->addr);
				mark_bad(rc, l->addr);
				net_sess_close(l->s, -ETIMEDOUT, NULL);
			} else if (l->held &&
			    now - l->renewed >= l->keepalive_ms) {
				link_reserve(l);
			}
			continue;
		}
		if (!want)
			continue;
		if (nc < 0)
			nc = rc->conf.candidates(rc->conf.arg, &cand);
		for (int j = 0; j < nc; j++) {
			/* Numeric addresses only: a name would be resolved
			 * here, blocking the supplier's loop. */
			if (link_in_use(rc, cand.id[j]) ||
			    is_bad(rc, cand.addr[j]) ||
			    numeric_addr(cand.addr[j], &l->sa) < 0)
				continue;
			snprintf(l->addr, sizeof l->addr, "%s", cand.addr[j]);
			memcpy(l->pk, cand.id[j], CR_PK_BYTES);
			l->rc = rc;
			l->held = 0;
			l->answered = now;
			if (net_sess_connect(rc->loop, rc->conf.id,
			    (struct sockaddr *)&l->sa, l->addr, &link_ops, l,
			    &l->s) < 0)
				l->s = NULL;
			break;
		}
	}
	if (!want)
		publish(rc);
}

static void
client_tick_closed(uv_handle_t *h)
{
	struct net_relay_client *rc = h->data;

	rc->tick_closed = 1;
	client_maybe_free(rc);
}

int
net__relay_client_new(struct net_relay_client **out, uv_loop_t *loop,
    const struct net_relay_client_conf *conf)
{
	struct net_relay_client *rc;

	if (!conf->id || !conf->candidates || !conf->on_change ||
	    !conf->take || !conf->want)
		return -EINVAL;
	if (!(rc = calloc(1, sizeof *rc)))
		return -ENOMEM;
	rc->loop = loop;
	rc->conf = *conf;
	for (int i = 0; i < LINKS; i++)
		rc->link[i].rc = rc;
	uv_timer_init(loop, &rc->tick);
	rc->tick.data = rc;
	uv_timer_start(&rc->tick, link_tick, LINK_TICK_MS, LINK_TICK_MS);
	*out = rc;
	return 0;
}

void
net__relay_client_close(struct net_relay_client *rc)
{
	if (!rc)
		return;
	rc->closing = 1;
	for (int i = 0; i < LINKS; i++)
		if (rc->link[i].s)
			net_sess_close(rc->link[i].s, 0, NULL);
	uv_close((uv_handle_t *)&rc->tick, client_tick_closed);
}
