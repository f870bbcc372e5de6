/* net/client.c - the owner's client: a loop thread holding one session per
 * supplier, reconnecting, pinging, matching responses to requests and
 * timing them out. Other threads reach the loop through a locked queue of
 * net_op drained by one uv_async. The calls about the set of peers
 * (adding, moving, firing, listing) are in net/peers.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "net/internal.h"
#include "util.h"
#include "worker.h"

#define TICK_MS		200

/* ---- cross-thread calls ------------------------------------------------ */

int
net__op_run(struct net *n, struct net_op *op)
{
	int rc;

	pthread_cond_init(&op->cond, NULL);
	op->done = 0;
	op->next = NULL;
	pthread_mutex_lock(&n->lock);
	if (n->stopping) {
		pthread_mutex_unlock(&n->lock);
		pthread_cond_destroy(&op->cond);
		return -ESHUTDOWN;
	}
	if (n->q_tail)
		n->q_tail->next = op;
	else
		n->q_head = op;
	n->q_tail = op;
	pthread_mutex_unlock(&n->lock);
	uv_async_send(&n->async);
	pthread_mutex_lock(&n->lock);
	while (!op->done)
		pthread_cond_wait(&op->cond, &n->lock);
	rc = op->rc;
	pthread_mutex_unlock(&n->lock);
	pthread_cond_destroy(&op->cond);
	return rc;
}

void
net__op_done(struct net *n, struct net_op *op, int rc)
{
	pthread_mutex_lock(&n->lock);
	op->rc = rc;
	op->done = 1;
	pthread_cond_signal(&op->cond);
	pthread_mutex_unlock(&n->lock);
}

/* ---- requests ---------------------------------------------------------- */

static void
list_del(struct net_req **head, struct net_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		*head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
}

static int
req_write(struct net_peer *p, struct net_req *r)
{
	int rc = r->lend ? net_sess_send_lent(p->s, &r->msg, r->lend) :
	    net_sess_send(p->s, &r->msg);

	if (rc < 0)
		return rc;
	r->deadline = uv_now(&p->n->loop) + p->n->conf.timeout_ms;
	r->t0_ns = uv_hrtime();
	r->on_old = 0;
	r->prev = NULL;
	r->next = p->pending;
	if (r->next)
		r->next->prev = r;
	p->pending = r;
	return 0;
}

int
net__peer_up(const struct net_peer *p)
{
	return p->up && p->s && p->s->state == NET_SESS_UP;
}

int
net__req_send(struct net_peer *p, struct net_req *r)
{
	if (!net__peer_up(p))
		return -ENOTCONN;
	r->p = p;
	r->msg.reqid = ++p->n->next_reqid;
	r->next = r->prev = NULL;
	if (p->parked || p->s->queued > NET_SESS_QUEUE_MAX) {
		/* Backpressure: written (and timed) once the queue drains. */
		r->deadline = 0;
		r->prev = p->parked_tail;
		if (p->parked_tail)
			p->parked_tail->next = r;
		else
			p->parked = r;
		p->parked_tail = r;
		return 0;
	}
	return req_write(p, r);
}

static void
parked_del(struct net_peer *p, struct net_req *r)
{
	if (p->parked_tail == r)
		p->parked_tail = r->prev;
	list_del(&p->parked, r);
}

/* Takes the answer to a withdrawn request (net__req_cancel). */
static void
stub_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	/* A late GET's time is what teaches the next fetch to expect it
	 * late, so it is noted even though nobody waits for the bytes. */
	if (rc == 0 && r->msg.type == NET_GET)
		net__lat_note(r->p,
		    (double)(uv_hrtime() - r->t0_ns) / 1e6);
	free(r);
}

void
net__req_cancel(struct net_req *r)
{
	struct net_peer *p = r->p;
	struct net_req *s;

	if (r->deadline == 0) {		/* parked: never written */
		parked_del(p, r);
		return;
	}
	if (!(s = calloc(1, sizeof *s))) {
		/* Its answer will find no request and drop the session:
		 * the worst a failed allocation costs. */
		list_del(&p->pending, r);
		return;
	}
	s->p = p;
	s->msg.type = r->msg.type;
	s->msg.reqid = r->msg.reqid;
	s->t0_ns = r->t0_ns;
	s->on_old = r->on_old;
	s->cb = stub_done;
	/* No deadline: the session's liveness is the pings' business, and
	 * a stub timing out would drop a session only for being slow. */
	s->deadline = 0;
	s->prev = r->prev;
	s->next = r->next;
	if (s->prev)
		s->prev->next = s;
	else
		p->pending = s;
	if (s->next)
		s->next->prev = s;
	r->next = r->prev = NULL;
}

void
net__lat_note(struct net_peer *p, double ms)
{
	uint64_t now = uv_now(&p->n->loop);

	if (p->get_n && now - p->get_last >= NET_LAT_AGE_MS)
		p->get_n = p->get_at = 0;
	p->get_ms[p->get_at] = (float)ms;
	p->get_at = (p->get_at + 1) % NET_LAT_WINDOW;
	if (p->get_n < NET_LAT_WINDOW)
		p->get_n++;
	p->get_last = now;
}

static int
float_cmp(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

/* The q-th percentile of p's recent GET latencies, -1 when fewer than
 * min are known. */
static double
lat_quantile(struct net_peer *p, int q, int min)
{
	float v[NET_LAT_WINDOW];
	int n = p->get_n;

	if (n < min || uv_now(&p->n->loop) - p->get_last >= NET_LAT_AGE_MS)
		return -1;
	memcpy(v, p->get_ms, sizeof v);
	qsort(v, (size_t)n, sizeof *v, float_cmp);
	return v[(n * q + 99) / 100 - 1 > 0 ? (n * q + 99) / 100 - 1 : 0];
}

/* One answer is enough to order by, and the latest counts when it is
 * the slower: a link that became slow shows in its first late answer,
 * not once it is half the window. */
double
net__lat_expect(struct net_peer *p)
{
	double m = lat_quantile(p, 50, 1), last;

	if (m < 0)
		return m;
	last = p->get_ms[(p->get_at + NET_LAT_WINDOW - 1) % NET_LAT_WINDOW];
	return last > m ? last : m;
}

double
net__lat_p95(struct net_peer *p)
{
	return lat_quantile(p, 95, 3);
}

/* ---- peers ------------------------------------------------------------- */

static void
set_online(struct net *n, int delta)
{
	pthread_mutex_lock(&n->lock);
	n->online += delta;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
}

static int
is_stopping(struct net *n)
{
	int s;

	pthread_mutex_lock(&n->lock);
	s = n->stopping;
	pthread_mutex_unlock(&n->lock);
	return s;
}

static void
on_retry(uv_timer_t *t)
{
	struct net_peer *p = t->data;

	if (!p->s && !is_stopping(p->n))
		net__peer_connect(p);
}

/* The session of p is gone (or must go): fail what waits on it and
 * schedule a reconnect. */
void
net__peer_drop(struct net_peer *p, int err, const char *why)
{
	struct net *n = p->n;
	struct net_sess *s = p->s;
	struct net_req *r;

	net__punch_drop(p);
	if (p->s_old) {
		net_sess_close(p->s_old, 0, NULL);
		net_sess_unref(p->s_old);
		p->s_old = NULL;
	}
	if (!s)
		return;
	p->s = NULL;
	/* Direct no more: the next session goes through the relay again,
	 * and punching may start over. */
	p->punched = 0;
	p->grant_count = 0;		/* the supplier's grant outlives us */
	net_sess_close(s, err, why);
	if (!why)
		why = s->why;
	net_sess_unref(s);
	if (p->up) {
		p->up = 0;
		set_online(n, -1);
		if (err < 0)
			p->req_failed++;
	}
	if (p->state == NET_PEER_ONLINE) {
		/* The suspect and dead clocks run from the last answer. */
		uint64_t now = uv_now(&n->loop);
		p->state = NET_PEER_OFFLINE;
		p->down_since = p->last_seen ? p->last_seen : now;
		if (!is_stopping(n))
			log_info("supplier %s: offline", p->addr);
	}
	if (err < 0 && !p->refused)
		snprintf(p->last_error, sizeof p->last_error, "%s",
		    why ? why : uv_strerror(err));
	while ((r = p->parked)) {
		parked_del(p, r);
		r->cb(r, -ECONNRESET, NULL, NULL);
	}
	while ((r = p->pending)) {
		list_del(&p->pending, r);
		r->cb(r, err == -ETIMEDOUT ? -ETIMEDOUT : -ECONNRESET,
		    NULL, NULL);
	}
	if (!is_stopping(n))
		uv_timer_start(&p->retry, on_retry, n->conf.reconnect_ms, 0);
}

static void
refresh_check(struct net *n)
{
	struct net_op **pp = &n->refresh, *op;

	for (struct net_peer *p = n->peers; p; p = p->next)
		if (p->ping_busy)
			return;
	while ((op = *pp)) {
		*pp = op->next;
		net__op_done(n, op, 0);
	}
}

static void
ping_done(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	struct net_peer *p = r->p;

	p->ping_busy = 0;
	if (rc == 0) {
		p->rtt_ms = (double)(uv_hrtime() - r->t0_ns) / 1e6;
		p->bytes = m->bytes;
		p->fragments = m->fragments;
		p->avail = m->avail;
		p->quota = m->quota;
		p->have_pong = 1;
		/* Room again there (space freed, quota raised): the refusal
		 * is old news, once placements may go there again. */
		if (p->refusal[0] && m->avail >= NET_ROOM_AGAIN &&
		    uv_now(&p->n->loop) - p->refused_at >= NET_REFUSED_MS)
			p->refusal[0] = '\0';
	}
	refresh_check(p->n);
}

void
net__peer_ping(struct net_peer *p)
{
	if (p->ping_busy || !net__peer_up(p))
		return;
	memset(&p->ping, 0, sizeof p->ping);
	p->ping.msg.type = NET_PING;
	p->ping.cb = ping_done;
	p->last_ping = uv_now(&p->n->loop);
	if (net__req_send(p, &p->ping) == 0)
		p->ping_busy = 1;
}

/* ---- monitor ----------------------------------------------------------- */

void
net__peer_fire(struct net_peer *p, const char *why)
{
	struct timespec ts;

	if (p->state == NET_PEER_DEAD)
		return;
	p->state = NET_PEER_DEAD;
	/* Wall clock: the hirer compares it with the supplier's record,
	 * made (its seq) in unix ms. */
	clock_gettime(CLOCK_REALTIME, &ts);
	p->dead_at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	p->fired = why != NULL;
	if (why) {
		log_warn("supplier %s: fired: %s; its fragments will be "
		    "rebuilt", p->addr, why);
		snprintf(p->last_error, sizeof p->last_error, "fired: %s",
		    why);
	} else {
		log_info("supplier %s: dead, its fragments will be rebuilt",
		    p->addr);
	}
}

void
net__peer_note(struct net_peer *p, enum net__note what)
{
	switch (what) {
	case NET__NOTE_BAD_FRAGMENT:
		if (++p->bad_fragments >= NET_FIRE_AFTER)
			net__peer_fire(p, "returned forged or corrupt "
			    "fragments");
		break;
	case NET__NOTE_AUDIT_FAILED:
		if (++p->audits_failed >= NET_FIRE_AFTER)
			net__peer_fire(p, "failed audits");
		break;
	case NET__NOTE_AUDIT_OK:
		p->audits_ok++;
		break;
	}
}

/* 0..1: mostly whether it answers, then its rtt, divided by its
 * offences (each forged fragment or failed audit weighs heavily). */
double
net__peer_score(const struct net_peer *p)
{
	double rtt, rel, trust, s;

	if (p->state == NET_PEER_DEAD)
		return 0;
	rtt = p->rtt_ms < 0 ? 0.5 : 1.0 / (1.0 + p->rtt_ms / 100.0);
	/* A fragment sent elsewhere because it lagged counts like half a
	 * failure: slow is not gone, but worth less. */
	rel = (p->req_ok + 1.0) / (p->req_ok + 2.0 * p->req_failed +
	    p->lags + 1.0);
	trust = 1.0 / (1.0 + 2.0 * (double)(p->bad_fragments +
	    p->audits_failed));
	s = (0.2 * rtt + 0.8 * rel) * trust;
	if (p->state == NET_PEER_OFFLINE || p->state == NET_PEER_SUSPECT)
		s *= 0.5;
	return s;
}

/* Down (or never reached) peers age into SUSPECT, then DEAD. */
static void
peer_monitor(struct net_peer *p, uint64_t now)
{
	struct net *n = p->n;
	uint64_t down;
	enum net_peer_state st;

	down = now > p->down_since ? now - p->down_since : 0;
	st = net_peer_verdict(p->state, down,
	    (uint64_t)n->conf.suspect_after_ms, (uint64_t)n->conf.dead_after_ms);
	if (st == p->state)
		return;
	if (st == NET_PEER_DEAD) {
		net__peer_fire(p, NULL);
	} else {
		p->state = st;
		log_info("supplier %s: suspect", p->addr);
	}
}

enum net_peer_state
net_peer_verdict(enum net_peer_state st, uint64_t down_ms,
    uint64_t suspect_ms, uint64_t dead_ms)
{
	if (st == NET_PEER_ONLINE || st == NET_PEER_DEAD)
		return st;
	if (down_ms >= dead_ms)
		return NET_PEER_DEAD;
	if (down_ms >= suspect_ms)
		return NET_PEER_SUSPECT;
	return st;
}

static int
cli_on_up(struct net_sess *s)
{
	struct net_peer *p = s->data;
	struct net *n = p->n;
	int rc;

	if (p->s != s)
		return -1;
	if (n->conf.store) {
		rc = store_peer_pin(n->conf.store, p->addr, s->peer_pk);
		if (rc == -EKEYREJECTED) {
			if (!p->refused)
				log_error("supplier %s presented a different "
				    "key than the one pinned: refusing",
				    p->addr);
			p->refused = 1;
			snprintf(p->last_error, sizeof p->last_error,
			    "key differs from the pinned one: refused");
			return -1;
		}
		if (rc < 0) {
			log_error("supplier %s: cannot pin its key: %s",
			    p->addr, strerror(-rc));
			snprintf(p->last_error, sizeof p->last_error,
			    "cannot pin key: %s", strerror(-rc));
			return -1;
		}
	}
	p->refused = 0;
	memcpy(p->pk, s->peer_pk, CR_PK_BYTES);
	p->have_pk = 1;
	p->last_error[0] = '\0';
	log_debug("supplier %s: session up", p->addr);
	/* sess.c marks the session up right after this returns. */
	return 0;
}

static void relay_count(struct net_peer *p, struct net_sess *s, size_t n);

/* The relayed session closes once nothing sent on it waits for an
 * answer: from then on the relay carries nothing of ours. */
static void
old_maybe_close(struct net_peer *p)
{
	struct net_sess *old = p->s_old;

	if (!old)
		return;
	for (struct net_req *r = p->pending; r; r = r->next)
		if (r->on_old)
			return;
	p->s_old = NULL;
	net_sess_close(old, 0, NULL);
	net_sess_unref(old);
	log_info("supplier %s: relayed session closed: direct now", p->addr);
}

static void
cli_on_msg(struct net_sess *s, const struct net_msg *m, unsigned char **buf)
{
	struct net_peer *p = s->data;
	struct net_req *r;
	int rc = 0;

	if (p->s != s && p->s_old != s)
		return;
	if (m->type < 0x80) {
		net__peer_drop(p, -EPROTO, "unexpected request from supplier");
		return;
	}
	/* What came through the relay: the record and its framing. */
	relay_count(p, s, 8 + CR_STREAM_ABYTES + NET_MSG_HDR + m->data_len);
	for (r = p->pending; r; r = r->next)
		if (r->msg.reqid == m->reqid)
			break;
	if (!r) {
		net__peer_drop(p, -EPROTO, "response to an unknown request id");
		return;
	}
	if (m->type != NET_ERR && m->type != (r->msg.type | 0x80)) {
		net__peer_drop(p, -EPROTO, "unexpected response type");
		return;
	}
	if (m->type == NET_ERR)
		rc = -(int)m->err;
	p->last_seen = uv_now(&p->n->loop);
	p->req_ok++;
	list_del(&p->pending, r);
	r->cb(r, rc, m, buf);
	if (s == p->s_old)
		old_maybe_close(p);
}

/* n bytes of p's session s went through its relay (if s is relayed). */
static void
relay_count(struct net_peer *p, struct net_sess *s, size_t n)
{
	struct net *nt = p->n;
	struct net_relay_acc *a;
	int i;

	if (!s->has_pre || !p->have_relay)
		return;
	for (i = 0; i < nt->nracc; i++)
		if (!memcmp(nt->racc[i].pk, p->relay_pk, CR_PK_BYTES))
			break;
	if (i == nt->nracc) {
		if (!(a = realloc(nt->racc, (size_t)(i + 1) * sizeof *a)))
			return;
		nt->racc = a;
		memcpy(a[i].pk, p->relay_pk, CR_PK_BYTES);
		a[i].bytes = 0;
		nt->nracc++;
	}
	nt->racc[i].bytes += n;
}

static void
cli_on_sent(struct net_sess *s, size_t n)
{
	struct net_peer *p = s->data;

	if (p->s == s || p->s_old == s)
		relay_count(p, s, n);
}

static void
cli_on_drain(struct net_sess *s)
{
	struct net_peer *p = s->data;
	struct net_req *r;

	while (p->s == s && (r = p->parked) &&
	    s->queued <= NET_SESS_QUEUE_MAX) {
		parked_del(p, r);
		if (req_write(p, r) < 0) {
			r->cb(r, -ECONNRESET, NULL, NULL);
			net__peer_drop(p, -EIO, "cannot send");
		}
	}
}

static void
cli_on_close(struct net_sess *s, int err)
{
	struct net_peer *p = s->data;

	if (p->s == s)
		net__peer_drop(p, err ? err : -ECONNRESET, NULL);
	if (p->s_old == s) {
		/* The relay went before its answers: what waited there
		 * fails (and may be asked again, directly). */
		struct net_req *r, *next;
		p->s_old = NULL;
		net_sess_unref(s);
		for (r = p->pending; r; r = next) {
			next = r->next;
			if (!r->on_old)
				continue;
			list_del(&p->pending, r);
			r->cb(r, -ECONNRESET, NULL, NULL);
		}
	}
	/* The relay's reason, when it refused the circuit. */
	if (s->relay_why[0])
		snprintf(p->last_error, sizeof p->last_error, "relay: %s",
		    s->relay_why);
}

static void
cli_on_ready(struct net_sess *s)
{
	struct net_peer *p = s->data;

	if (p->s == s)
		net__peer_check_up(p);
}

static const struct net_sess_ops cli_ops = {
	.on_up = cli_on_up, .on_ready = cli_on_ready, .on_msg = cli_on_msg, .on_drain = cli_on_drain,
	.on_sent = cli_on_sent, .on_close = cli_on_close,
};

void
net__peer_take_direct(struct net_peer *p, struct net_sess *s)
{
	struct net_sess *old = p->s;

	s->ops = &cli_ops;
	s->data = p;
	for (struct net_req *r = p->pending; r; r = r->next)
		r->on_old = 1;
	if (p->s_old) {			/* cannot be: punched once only */
		net_sess_close(p->s_old, 0, NULL);
		net_sess_unref(p->s_old);
	}
	p->s_old = old;
	p->s = s;
	p->punched = 1;
	/* Parked requests go out on the new session, whose queue is
	 * empty: no drain would ever come for them. */
	cli_on_drain(s);
	old_maybe_close(p);
}

void
net__peer_connect(struct net_peer *p)
{
	struct net *n = p->n;
	int rc;

	if (p->state == NET_PEER_ONLINE || p->s)
		return;
	if (p->relayed) {
		/* Through its relay: a circuit to its key, and our own
		 * handshake with it inside. */
		unsigned char req[NET_RELAY_REQ_BYTES];

		memcpy(req, NET_RELAY_MAGIC, NET_RELAY_MAGIC_LEN);
		req[NET_RELAY_MAGIC_LEN] = NET_RELAY_CONNECT;
		memcpy(req + NET_RELAY_MAGIC_LEN + 1, p->target, CR_PK_BYTES);
		rc = net_sess_connect_relay(&n->loop, n->conf.id,
		    (struct sockaddr *)&p->sa, p->addr, req, 1, &cli_ops, p,
		    NULL, &p->s);
	} else {
		rc = net_sess_connect(&n->loop, n->conf.id,
		    (struct sockaddr *)&p->sa, p->addr, &cli_ops, p, &p->s);
	}
	if (rc < 0) {
		p->s = NULL;
		snprintf(p->last_error, sizeof p->last_error, "%s",
		    uv_strerror(rc));
		uv_timer_start(&p->retry, on_retry, n->conf.reconnect_ms, 0);
	}
}

struct net_peer *
net__peer_by_pk(struct net *n, const unsigned char *pk)
{
	for (struct net_peer *p = n->peers; p; p = p->next)
		if (p->have_pk && memcmp(p->pk, pk, CR_PK_BYTES) == 0)
			return p;
	return NULL;
}

/* ---- the loop ---------------------------------------------------------- */

/* A session is up once sess.c has flipped its state after on_up; the
 * tick notices the change (at most TICK_MS later) unless this does. */
void
net__peer_check_up(struct net_peer *p)
{
	if (!p->up && p->s && p->s->state == NET_SESS_UP) {
		p->up = 1;
		p->last_seen = uv_now(&p->n->loop);
		set_online(p->n, 1);
		if (p->state == NET_PEER_DEAD) {
			log_info("supplier %s: reconnected; stays dead",
			    p->addr);
		} else {
			log_info("supplier %s: %s", p->addr,
			    p->state == NET_PEER_CONNECTING ? "online" :
			    "back online");
			p->state = NET_PEER_ONLINE;
		}
		net__peer_ping(p);
	}
}

static void
on_tick(uv_timer_t *t)
{
	struct net *n = t->data;
	uint64_t now = uv_now(&n->loop);

	for (struct net_peer *p = n->peers; p; p = p->next) {
		net__peer_check_up(p);
		for (struct net_req *r = p->pending; r; r = r->next) {
			if (r->deadline && r->deadline <= now) {
				log_warn("supplier %s: request timed out after "
				    "%d ms", p->addr, n->conf.timeout_ms);
				/* The session is broken: drop it first so
				 * the callback does not pick it again. */
				list_del(&p->pending, r);
				p->req_failed++;
				net__peer_drop(p, -ETIMEDOUT, NULL);
				snprintf(p->last_error, sizeof p->last_error,
				    "request timed out");
				r->cb(r, -ETIMEDOUT, NULL, NULL);
				break;
			}
		}
		if (now - p->last_ping >= (uint64_t)n->conf.ping_interval_ms)
			net__peer_ping(p);
		peer_monitor(p, now);
		net__punch_tick(p, now);
	}
}

static void
stop_loop(struct net *n)
{
	struct net_op *op;

	for (struct net_peer *p = n->peers; p; p = p->next) {
		net__peer_drop(p, 0, NULL);
		uv_timer_stop(&p->retry);
		uv_close((uv_handle_t *)&p->retry, NULL);
	}
	while ((op = n->refresh)) {
		n->refresh = op->next;
		net__op_done(n, op, 0);
	}
	uv_close((uv_handle_t *)&n->tick, NULL);
	uv_close((uv_handle_t *)&n->async, NULL);
	pthread_mutex_lock(&n->lock);
	while ((op = n->q_head)) {
		n->q_head = op->next;
		op->rc = -ESHUTDOWN;
		op->done = 1;
		pthread_cond_signal(&op->cond);
	}
	n->q_tail = NULL;
	pthread_mutex_unlock(&n->lock);
}

static void
on_async(uv_async_t *h)
{
	struct net *n = h->data;
	struct net_op *op;
	int stopping;

	for (;;) {
		pthread_mutex_lock(&n->lock);
		stopping = n->stopping;
		op = stopping ? NULL : n->q_head;
		if (op && !(n->q_head = op->next))
			n->q_tail = NULL;
		pthread_mutex_unlock(&n->lock);
		if (!op)
			break;
		op->start(n, op);
	}
	if (stopping)
		stop_loop(n);
}

/* The loop thread's one pass: the loop runs until net_free() sets
 * stopping and loop_wake() makes on_async() close every handle. */
static int64_t
loop_pass(void *arg, int idx)
{
	struct net *n = arg;

	uv_run(&n->loop, UV_RUN_DEFAULT);
	return WORKER_EXIT;
}

/* worker_stop()'s wake hook. n->async is armed before the loop thread
 * starts, so a send that comes before uv_run() is still seen. */
static void
loop_wake(void *arg)
{
	struct net *n = arg;

	uv_async_send(&n->async);
}

int
net_new(struct net **out, const struct net_conf *conf)
{
	struct worker_conf wc = { .name = "net-loop", .pass = loop_pass,
	    .wake = loop_wake };
	struct net *n;
	pthread_condattr_t ca;
	struct sigaction sa;
	int rc, tick;

	/* cli/ gives every value (its option table holds the defaults). */
	if (!conf || !conf->id || !conf->ec || conf->timeout_ms <= 0 ||
	    conf->reconnect_ms <= 0 || conf->ping_interval_ms <= 0 ||
	    conf->suspect_after_ms <= 0 ||
	    conf->dead_after_ms < conf->suspect_after_ms)
		return -EINVAL;
	/* A supplier closing its end must not kill us on the next write. */
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	/* conf.audit_key makes every audit answer: guarded, locked memory,
	 * wiped when freed (rounded: sodium_malloc() aligns only whole
	 * multiples). */
	if (!(n = sodium_malloc((sizeof *n + 63) & ~(size_t)63)))
		return -ENOMEM;
	memset(n, 0, sizeof *n);
	n->conf = *conf;
	tick = n->conf.ping_interval_ms / 2 < TICK_MS ?
	    n->conf.ping_interval_ms / 2 : TICK_MS;
	if (tick < 20)
		tick = 20;
	n->k = cr_ec_k(conf->ec);
	n->m = cr_ec_m(conf->ec);
	if ((rc = uv_loop_init(&n->loop)) < 0) {
		sodium_free(n);
		return rc;
	}
	pthread_mutex_init(&n->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cond, &ca);
	pthread_condattr_destroy(&ca);
	uv_async_init(&n->loop, &n->async, on_async);
	n->async.data = n;
	uv_timer_init(&n->loop, &n->tick);
	n->tick.data = n;
	uv_timer_start(&n->tick, on_tick, tick, tick);
	wc.arg = n;
	if ((rc = worker_start(&n->loop_thread, &wc)) < 0) {
		uv_close((uv_handle_t *)&n->async, NULL);
		uv_close((uv_handle_t *)&n->tick, NULL);
		uv_run(&n->loop, UV_RUN_DEFAULT);
		uv_loop_close(&n->loop);
		pthread_cond_destroy(&n->cond);
		pthread_mutex_destroy(&n->lock);
		sodium_free(n);
		return rc;
	}
	*out = n;
	return 0;
}

int
net_lan(const struct net *n)
{
	return n->conf.lan;
}

void
net_code(const struct net *n, int *k, int *m)
{
	*k = n->k;
	*m = n->m;
}

void
net_free(struct net *n)
{
	struct net_peer *p;

	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stopping = 1;
	pthread_mutex_unlock(&n->lock);
	worker_stop(n->loop_thread);	/* loop_wake(), then joins */
	if (uv_loop_close(&n->loop) < 0)
		log_warn("net: loop close: handles left open");
	while ((p = n->peers)) {
		n->peers = p->next;
		free(p);
	}
	free(n->vetted);
	free(n->racc);
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->lock);
	sodium_free(n);
}

int
net_wait_online(struct net *n, int count, int timeout_ms)
{
	struct timespec ts;
	int online;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&n->lock);
	while (n->online < count &&
	    pthread_cond_timedwait(&n->cond, &n->lock, &ts) == 0)
		;
	online = n->online;
	pthread_mutex_unlock(&n->lock);
	return online;
}
