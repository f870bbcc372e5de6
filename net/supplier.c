/* net/supplier.c - the supplier server: one loop, one listener, one
 * session per owner connection. Disk work (fsync!) runs on the libuv
 * thread pool; a session keeps several requests in flight but stops
 * decoding while too many bytes are held for it.
 *
 * Strangers may connect, so every resource a peer can make us hold is
 * bounded: sessions (in all, per address, per key), time (handshake,
 * frame progress, unread replies, idle: net_sess_limits), and bytes.
 * Bytes, per session: each request is charged, before it is queued, its
 * own bytes plus the largest reply it can produce; a session stops
 * decoding once its charges, the frame it reads and its unsent replies
 * reach SESS_BYTES_MAX (or WORK_N_MAX requests).
 * Bytes, in all, at two gates. A frame's body is read only while the bytes
 * coming in (frames being read, requests waiting for the disk) and the
 * bytes committed (requests on the disk threads with their largest reply,
 * unsent replies) stay under inflight_max; a request goes to the disk
 * threads only while the committed bytes and its own charge stay under
 * it. A session holding nothing may use RESERVE_BYTES beyond: no peer can
 * lock another out for longer than its requests take and its deadlines
 * allow, and the whole stays under 2 x (inflight_max + RESERVE_BYTES).
 * Requests go to the thread pool round-robin between sessions, at most
 * `slots` at a time (the pool's size), so a peer's backlog waits behind
 * its own requests, not behind everyone's.
 * Refusals and malformed sessions are logged once per address, reason and
 * minute (net_ratelog).
 * Who gets a session is net/supadmit.c's; the connections a peer may
 * ask us to open (dial-back, hole punching), net/supdial.c's; what a
 * request does to the store, net/supwork.c's. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sodium.h>

#include "log.h"
#include "net/internal.h"
#include "net/net.h"
#include "net/supplier_int.h"
#include "util.h"

/* Two of the largest replies (a fragment fills at most one record): the
 * owner keeps a GET in flight while the last reply goes out. */
#define SESS_BYTES_MAX	((size_t)2 * NET_FRAME_MAX)
#define WORK_N_MAX	16
/* Beyond inflight_max, for sessions holding nothing: one large request. */
#define RESERVE_BYTES	((size_t)2 * NET_FRAME_MAX)
#define REPORT_MS	60000		/* "... in the last minute" */

static void
sup_unlink(struct supplier *sup, struct net_sess *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else if (sup->sessions == s)
		sup->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
}

static void
set_gblocked(struct supplier *sup, struct net_sess *s, int on)
{
	if (s->gblocked == on)
		return;
	s->gblocked = on;
	if (on)
		sup->ngblocked++;
	else
		sup->ngblocked--;
}

static size_t
committed(const struct supplier *sup)
{
	return sup->run_total + sup->queued_total;
}

/* 1 when s holds nothing: no request, no frame, no unsent reply. */
static int
idle_sess(const struct net_sess *s)
{
	return !s->work_n && !s->queued && !s->fr_charge;
}

/* Decode more of s, or not, by its own limits (the limit in all is
 * on_frame's). */
static void
flow(struct supplier *sup, struct net_sess *s)
{
	if (s->state != NET_SESS_UP) {
		set_gblocked(sup, s, 0);
		return;
	}
	if (s->work_n >= WORK_N_MAX ||
	    s->work_bytes + s->queued >= SESS_BYTES_MAX)
		net_sess_pause(s);
	else if (s->paused && !s->gblocked)
		net_sess_resume(s);
}

/* Bytes were released: sessions waiting for the limit in all may try
 * again (on_frame decides; each that gets in takes room from the next). */
static void
flow_released(struct supplier *sup)
{
	struct net_sess *s, *next;

	for (s = sup->sessions; s && sup->ngblocked &&
	    sup->in_total + committed(sup) < sup->inflight_max + RESERVE_BYTES;
	    s = next) {
		next = s->next;
		if (!s->gblocked)
			continue;
		set_gblocked(sup, s, 0);
		if (s->state == NET_SESS_UP)
			net_sess_resume(s);
	}
}

/* A frame of len bytes begins on s (net_sess_ops.on_frame). */
static int
on_frame(struct net_sess *s, size_t len)
{
	struct supplier *sup = s->data;
	size_t held = s->work_bytes + s->queued;
	size_t total = sup->in_total + committed(sup);

	if (held && (s->work_n >= WORK_N_MAX ||
	    held + len > SESS_BYTES_MAX)) {
		net_sess_pause(s);	/* its own requests will make room */
		return -1;
	}
	if (total + len > sup->inflight_max && (!idle_sess(s) ||
	    total + len > sup->inflight_max + RESERVE_BYTES)) {
		set_gblocked(sup, s, 1);
		net_sess_pause(s);
		return -1;
	}
	s->fr_charge = len;
	s->work_bytes += len;
	sup->in_total += len;
	return 0;
}

/* The frame of s is read (or s closed): its charge goes. */
static void
frame_done(struct supplier *sup, struct net_sess *s)
{
	s->work_bytes -= s->fr_charge;
	sup->in_total -= s->fr_charge;
	s->fr_charge = 0;
}

/* What a refused head means, in the owner's words. */
static const char *
err_text(uint8_t type, int rc)
{
	/* The refusals of an owner's account (store_frag_put): the owner
	 * shows these words to its user, naming this supplier. */
	if (rc == -EDQUOT)
		return "quota exceeded";
	if (rc == -ENOSPC && (type == NET_PUT || type == NET_HEAD_PUT ||
	    type == NET_RESERVE))
		return "supplier full";
	if (rc == -EACCES)
		return "not admitted";
	if (type == NET_HEAD_PUT) {
		switch (rc) {
		case -ESTALE:
			return "not newer than the newest head held";
		case -EBADMSG:
			return "bad signature";
		case -EPERM:
			return "not your head";
		case -EPROTO:
			return "malformed head";
		}
	}
	return strerror(-rc);
}

void
net__sup_reply_err_text(struct net_sess *s, uint64_t reqid, int rc,
    const char *msg)
{
	struct net_msg m = { .type = NET_ERR, .reqid = reqid };

	m.err = rc < 0 && -rc <= 4095 ? (uint32_t)-rc : EIO;
	m.errmsg = msg;
	m.errmsg_len = strlen(msg);
	if (m.errmsg_len > NET_ERRMSG_MAX)
		m.errmsg_len = NET_ERRMSG_MAX;
	net_sess_send(s, &m);
}

void
net__sup_reply_err(struct net_sess *s, uint64_t reqid, uint8_t type, int rc)
{
	net__sup_reply_err_text(s, reqid, rc, err_text(type, rc));
}

static void dispatch(struct supplier *sup);

/* Gives back what k was charged, and k. */
static void
work_free(struct net__work *k)
{
	struct net_sess *s = k->s;

	s->work_n--;
	s->work_bytes -= k->charge;
	if (k->running) {
		s->run_n--;
		k->sup->run_total -= k->charge;
	} else {
		k->sup->in_total -= k->in;
	}
	free(k->out);
	free(k->buf);
	net_sess_unref(s);
	free(k);
}

static void
log_refusal(struct supplier *sup, struct net_sess *s, uint8_t type, int rc)
{
	uint64_t now = uv_now(&sup->loop);

	if (sup->refused_logged_ms && now - sup->refused_logged_ms < 1000) {
		sup->refused_quiet++;
		return;
	}
	log_info("supplier: %s: %s refused: %s (%llu refusals not logged "
	    "in between)", s->name, type == NET_HEAD_PUT ? "head" :
	    type == NET_RESERVE ? "reservation" : "fragment",
	    err_text(type, rc), (unsigned long long)sup->refused_quiet);
	sup->refused_logged_ms = now;
	sup->refused_quiet = 0;
}

static void
after_work(uv_work_t *w, int status)
{
	struct net__work *k = container_of(w, struct net__work, w);
	struct supplier *sup = k->sup;
	struct net_sess *s = k->s;
	struct net_msg m = { .reqid = k->reqid };

	sup->running--;
	if (s->state == NET_SESS_UP) {
		if (status < 0)
			k->rc = status;
		if (k->rc < 0) {
			/* A peer can fail requests at will: refusals of its
			 * data at most once a second, other failures once a
			 * minute per address and reason. */
			const char *why = err_text(k->type, k->rc);

			if (k->rc == -EDQUOT || k->rc == -EACCES ||
			    (k->rc == -ENOSPC && (k->type == NET_RESERVE ||
			    k->type == NET_PUT || k->type == NET_HEAD_PUT)))
				log_refusal(k->sup, s, k->type, k->rc);
			else if (k->rc != -ENOENT &&
			    net_ratelog_hit(&sup->failed, s->host, why))
				log_warn("supplier: %s: %s failed: %s (more "
				    "are counted, one line a minute)", s->name,
				    k->type == NET_HEAD_PUT ? "head" : "request",
				    why);
			if (k->why[0])
				net__sup_reply_err_text(s, k->reqid, k->rc,
				    k->why);
			else
				net__sup_reply_err(s, k->reqid, k->type, k->rc);
		} else {
			switch (k->type) {
			case NET_PUT:
				m.type = NET_PUT_OK;
				break;
			case NET_GET:
				m.type = NET_GET_OK;
				m.data = k->out;
				m.data_len = k->out_len;
				break;
			case NET_DEL:
				m.type = NET_DEL_OK;
				break;
			case NET_AUDIT:
				m.type = NET_AUDIT_OK;
				m.answer = k->answer;
				break;
			case NET_LIST:
				m.type = NET_LIST_OK;
				m.n = (uint32_t)k->out_len;
				m.entries = k->out;
				break;
			case NET_HEAD_PUT:
				m.type = NET_HEAD_PUT_OK;
				break;
			case NET_HEAD_LIST:
				m.type = NET_HEAD_LIST_OK;
				m.n = k->max;
				m.data = k->out;
				m.data_len = k->out_len;
				break;
			case NET_RESERVE:
				m.type = NET_RESERVE_OK;
				m.rsv_count = k->rsv_count;
				m.rsv_left = k->rsv_left;
				break;
			case NET_LOCATOR:
				m.type = NET_LOCATOR_OK;
				/* A new key to announce under: now, not at
				 * the next period. */
				if (k->rc == 1 && sup->conf->on_locator)
					sup->conf->on_locator(sup->conf->arg);
				break;
			}
			if (m.type == NET_GET_OK && m.data_len == 0)
				net__sup_reply_err(s, k->reqid, k->type, -EIO);
			else if (m.type == NET_GET_OK) {
				/* 1 MiB not copied again: the session writes
				 * it from k->out and frees it. */
				void *out = k->out;

				k->out = NULL;
				if (net_sess_send_take(s, &m, out) < 0)
					net_sess_close(s, -EIO,
					    "cannot send reply");
			} else if (net_sess_send(s, &m) < 0)
				net_sess_close(s, -EIO, "cannot send reply");
		}
	}
	net_sess_ref(s);
	work_free(k);
	flow(sup, s);
	net_sess_unref(s);
	flow_released(sup);
	dispatch(sup);
}

static void
rr_remove(struct supplier *sup, struct net_sess *s)
{
	if (!s->in_rr)
		return;
	if (s->rr_next == s) {
		sup->rr = NULL;
	} else {
		s->rr_prev->rr_next = s->rr_next;
		s->rr_next->rr_prev = s->rr_prev;
		if (sup->rr == s)
			sup->rr = s->rr_next;
	}
	s->rr_next = s->rr_prev = NULL;
	s->in_rr = 0;
	sup->nrr--;
}

/* At the back of the ring: served after every other waiting session. */
static void
rr_append(struct supplier *sup, struct net_sess *s)
{
	if (s->in_rr)
		return;
	if (!sup->rr) {
		s->rr_next = s->rr_prev = s;
		sup->rr = s;
	} else {
		s->rr_next = sup->rr;
		s->rr_prev = sup->rr->rr_prev;
		s->rr_prev->rr_next = s;
		sup->rr->rr_prev = s;
	}
	s->in_rr = 1;
	sup->nrr++;
}

/* May k of s go to the disk threads now (see the top of this file)? */
static int
may_run(const struct supplier *sup, const struct net_sess *s,
    const struct net__work *k)
{
	size_t c = committed(sup) + k->charge;

	return c <= sup->inflight_max || (!s->run_n && !s->queued &&
	    c <= sup->inflight_max + RESERVE_BYTES);
}

/* Fills the thread pool's free slots, one request per session in turn.
 * libuv's pool is one FIFO for everyone: what goes there waits behind all
 * that went before, so only as many as it has threads go at once. */
static void
dispatch(struct supplier *sup)
{
	unsigned skipped = 0;

	while (sup->running < sup->slots && sup->rr && skipped < sup->nrr) {
		struct net_sess *s = sup->rr;
		struct net__work *k = s->wq_head;
		int rc;

		if (s->state == NET_SESS_UP && !may_run(sup, s, k)) {
			sup->rr = s->rr_next;	/* its turn comes again */
			skipped++;
			continue;
		}
		skipped = 0;
		s->wq_head = k->next;
		if (!s->wq_head)
			s->wq_tail = NULL;
		rr_remove(sup, s);
		if (s->wq_head)
			rr_append(sup, s);
		if (s->state != NET_SESS_UP) {
			work_free(k);
			continue;
		}
		sup->in_total -= k->in;
		sup->run_total += k->charge;
		s->run_n++;
		k->running = 1;
		if ((rc = uv_queue_work(&sup->loop, &k->w, net__work_run,
		    after_work)) < 0) {
			net__sup_reply_err(s, k->reqid, k->type, rc);
			net_sess_ref(s);
			work_free(k);
			flow(sup, s);
			net_sess_unref(s);
			continue;
		}
		sup->running++;
	}
}

/* The largest reply a request can produce, and what net__work_run may hold
 * meanwhile: charged before it is queued. */
static size_t
reply_max(const struct net__work *k)
{
	size_t heads;

	switch (k->type) {
	case NET_GET: case NET_AUDIT:	/* AUDIT reads all of it */
		if (k->type == NET_GET && k->ranged)
			return (size_t)k->range_len + 64;
		return NET_FRAME_MAX;
	case NET_LIST:			/* list_acc keeps 2 x max */
		return 2 * (size_t)k->max * LIST_ENTRY + 64;
	case NET_HEAD_LIST:
		heads = (size_t)k->max * (4 + CR_HEAD_FIXED + CR_HEAD_BLOB_MAX);
		return (heads < HEADS_ROOM ? heads : HEADS_ROOM) + 64;
	default:
		return 64 + NET_ERRMSG_MAX;
	}
}

/* Only the asking owner's own figures: the disk's free space would tell
 * an owner how much the others store. */
static void
handle_ping(struct supplier *sup, struct net_sess *s, uint64_t reqid)
{
	struct net_msg m = { .type = NET_PONG, .reqid = reqid };
	struct store_frag_acct a;

	store_frag_account(sup->conf->frags, s->peer_pk, &a);
	store_frag_touch(sup->conf->frags, s->peer_pk);
	m.bytes = a.bytes;
	m.fragments = a.fragments;
	m.avail = a.left;
	m.quota = a.quota;
	if (net_sess_send(s, &m) < 0)
		net_sess_close(s, -EIO, "cannot send reply");
	flow(sup, s);			/* PONGs pile up too, unread */
}

static void
on_msg(struct net_sess *s, const struct net_msg *m, unsigned char **buf)
{
	struct supplier *sup = s->data;
	struct net__work *k;

	frame_done(sup, s);
	switch (m->type) {
	case NET_PING:
		handle_ping(sup, s, m->reqid);
		return;
	case NET_DIALBACK:
		if (sup->conf->test_old) {
			net_sess_close(s, -EPROTO, "unexpected message type");
			return;
		}
		net__sup_handle_dialback(sup, s, m->reqid, m->port);
		flow(sup, s);
		return;
	case NET_PUNCH:
		if (sup->conf->test_old) {
			net_sess_close(s, -EPROTO, "unexpected message type");
			return;
		}
		net__sup_handle_punch(sup, s, m->reqid, m->port);
		flow(sup, s);
		return;
	case NET_RESERVE:
		if (sup->conf->test_old) {
			net_sess_close(s, -EPROTO, "unexpected message type");
			return;
		}
		break;
	case NET_GET:
		if (sup->conf->test_old && m->ranged) {
			net_sess_close(s, -EPROTO, "undecodable message");
			return;
		}
		break;
	case NET_RELAY_RESERVE:
		if (sup->conf->test_old) {
			net_sess_close(s, -EPROTO, "unexpected message type");
			return;
		}
		net__relay_reserve(sup->relay, s, m->reqid);
		return;
	case NET_PUT: case NET_DEL: case NET_LIST:
	case NET_AUDIT: case NET_HEAD_PUT: case NET_HEAD_LIST:
	case NET_LOCATOR:
		break;
	default:
		net_sess_close(s, -EPROTO, "unexpected message type");
		return;
	}
	if (!(k = calloc(1, sizeof *k))) {
		net__sup_reply_err(s, m->reqid, m->type, -ENOMEM);
		return;
	}
	k->sup = sup;
	k->conf = sup->conf;
	k->s = s;
	k->type = m->type;
	k->reqid = m->reqid;
	if (m->fragid)
		memcpy(k->fragid, m->fragid, STORE_FRAGID_BYTES);
	if (m->type == NET_AUDIT)
		memcpy(k->nonce, m->nonce, sizeof k->nonce);
	if (m->type == NET_GET && m->ranged) {
		/* A range longer than any frame would only fail later. */
		if (m->range_len > NET_FRAME_MAX) {
			free(k);
			net__sup_reply_err_text(s, m->reqid, -ERANGE,
			    "range longer than a record");
			return;
		}
		k->ranged = 1;
		k->range_off = m->range_off;
		k->range_len = m->range_len;
	}
	if (m->type == NET_PUT)
		memcpy(k->hash, m->hash, sizeof k->hash);
	if (m->type == NET_LOCATOR)
		memcpy(k->loc, m->locator, sizeof k->loc);
	if (m->type == NET_RESERVE) {
		k->rsv_size = m->rsv_size;
		k->rsv_count = m->rsv_count;
		/* A binding that does not verify is refused: the owner would
		 * otherwise be counted as itself without knowing why. */
		if (m->bind_node && sup->conf->deal &&
		    net_deal_bind(sup->conf->deal, s->peer_pk, m->bind_node,
		    m->bind_sig) < 0) {
			free(k);
			net__sup_reply_err(s, m->reqid, m->type, -EBADMSG);
			return;
		}
	}
	if (m->type == NET_PUT || m->type == NET_HEAD_PUT) {
		k->buf = *buf;		/* keep the record: data points in */
		*buf = NULL;
		k->data = m->data;
		k->len = m->data_len;
	} else if (m->type == NET_LIST) {
		k->max = m->max < NET_LIST_MAX ? m->max : NET_LIST_MAX;
		if (k->max == 0)
			k->max = 1;
	} else if (m->type == NET_HEAD_LIST) {
		/* 0 = all kept; never more than one record holds. */
		k->max = m->max && m->max < NET_HEADS_MAX ? m->max :
		    NET_HEADS_MAX;
	}
	net_sess_ref(s);
	k->in = sizeof *k + (k->buf ? m->data_len + 128 : 0);
	k->charge = k->in + reply_max(k);
	s->work_n++;
	s->work_bytes += k->charge;
	sup->in_total += k->in;
	if (s->wq_tail)
		((struct net__work *)s->wq_tail)->next = k;
	else
		s->wq_head = k;
	s->wq_tail = k;
	rr_append(sup, s);
	flow(sup, s);
	dispatch(sup);
}

static void
on_drain(struct net_sess *s)
{
	flow(s->data, s);
}

static void
on_sent(struct net_sess *s, size_t n)
{
	struct supplier *sup = s->data;

	flow(sup, s);
	flow_released(sup);
	dispatch(sup);
}

static void
on_close(struct net_sess *s, int err)
{
	struct supplier *sup = s->data;
	struct net__work *k;

	set_gblocked(sup, s, 0);
	frame_done(sup, s);
	rr_remove(sup, s);
	while ((k = s->wq_head)) {
		s->wq_head = k->next;
		work_free(k);
	}
	s->wq_tail = NULL;
	sup_unlink(sup, s);
	sup->nsess--;
	net__relay_sess_closed(sup->relay, s);
	flow_released(sup);
	/* Up once (its key known), then silent: not a stranger's stalled
	 * handshake, not an owner that closed. */
	if (err == -ETIMEDOUT && !sodium_is_zero(s->peer_pk, CR_PK_BYTES) &&
	    sup->conf->on_lost)
		sup->conf->on_lost(sup->conf->arg);
}

static void on_raw(struct net_sess *s, const unsigned char *p, size_t n);

const struct net_sess_ops net__sup_ops = {
	.on_up = net__sup_on_up, .on_msg = on_msg, .on_drain = on_drain,
	.on_sent = on_sent, .on_frame = on_frame, .on_close = on_close,
	.on_raw = on_raw,
};

/* A circuit request instead of a handshake: the relay's connection from
 * now on (not a session of ours: no longer counted here). */
static void
on_raw(struct net_sess *s, const unsigned char *p, size_t n)
{
	struct supplier *sup = s->data;

	if (!sup->relay) {
		net_sess_close(s, -EPROTO, "circuit request, but not a relay");
		return;
	}
	sup_unlink(sup, s);
	sup->nsess--;
	net__relay_adopt(sup->relay, s, p, n);
}

/* The limits in force: conf's, else the defaults (net.h). */
static void
set_limits(struct supplier *sup, const struct net_supplier_conf *c)
{
	struct rlimit rl;
	const char *pool = getenv("UV_THREADPOOL_SIZE");
	unsigned fds_max = 1024;

	/* A session is one descriptor; keep 64 for the store and LMDB. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		fds_max = rl.rlim_cur > 128 ? (unsigned)(rl.rlim_cur - 64) : 64;
	sup->max_sessions = c->max_sessions;
	if (sup->max_sessions > fds_max) {
		log_warn("supplier: %u sessions at most: the file descriptor "
		    "limit is %llu", fds_max, (unsigned long long)rl.rlim_cur);
		sup->max_sessions = fds_max;
	}
	sup->max_per_addr = c->max_per_addr;
	sup->max_per_key = c->max_per_key;
	sup->inflight_max = c->inflight_max;
	sup->slots = pool && atoi(pool) > 0 ? (unsigned)atoi(pool) : 4;
	sup->test_fail_accept = c->test_fail_accept;
	sup->lim.hs_ms = c->hs_timeout_ms;
	sup->lim.frame_ms = c->frame_timeout_ms;
	sup->lim.idle_ms = c->idle_timeout_ms;
	sup->lim.closed = &sup->closed;
	sup->lim.queued_total = &sup->queued_total;
	sup->punch_lim = sup->lim;
	sup->punch_lim.hs_ms = PUNCH_HS_MS;
	net_ratelog_init(&sup->refused);
	net_ratelog_init(&sup->closed);
	net_ratelog_init(&sup->failed);
	for (int i = 0; i < REJECT_SPARE; i++)
		sup->rej[i].spare = 1;
}

/* ---- evictions asked by `peerfs supplier evict` (store.h), and the
 * fair deal's (net_deal_evict), one at a time on the pool ------------- */

static void
evict_work(uv_work_t *w)
{
	struct supplier *sup = w->data;
	const struct net_supplier_conf *c = sup->conf;
	int n = store_frag_evict_pending(c->frags);

	if (n > 0)
		log_info("supplier: %d owner(s) evicted", n);
	if (c->deal && c->evict_grace_s > 0 &&
	    (n = net_deal_evict(c->deal, c->frags, c->evict_grace_s)) < 0)
		log_warn("supplier: the fair deal's eviction check: %s",
		    strerror(-n));
}

static void
evict_done(uv_work_t *w, int status)
{
	struct supplier *sup = w->data;

	sup->evicting = 0;
	free(w);
}

static void
on_evict(uv_signal_t *h, int signum)
{
	struct supplier *sup = h->data;
	uv_work_t *w;

	if (sup->stopping || sup->evicting || !(w = calloc(1, sizeof *w)))
		return;
	w->data = sup;
	if (uv_queue_work(&sup->loop, w, evict_work, evict_done) < 0) {
		free(w);
		return;
	}
	sup->evicting = 1;
}

static void
on_dealt(uv_timer_t *t)
{
	on_evict(&((struct supplier *)t->data)->sigusr1, 0);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct supplier *sup = h->data;

	if (sup->stopping)
		return;
	sup->stopping = 1;
	log_info("supplier: signal %d: stopping", signum);
	uv_close((uv_handle_t *)&sup->listener, NULL);
	uv_close((uv_handle_t *)&sup->report, NULL);
	uv_close((uv_handle_t *)&sup->retry, NULL);
	uv_close((uv_handle_t *)&sup->sigint, NULL);
	uv_close((uv_handle_t *)&sup->sigterm, NULL);
	uv_close((uv_handle_t *)&sup->sigusr1, NULL);
	uv_close((uv_handle_t *)&sup->dealt, NULL);
	/* In-flight thread-pool work keeps the loop alive until it is
	 * done: acknowledged or not, a fragment being written is finished. */
	for (struct net_sess *s = sup->sessions; s; s = s->next)
		net_sess_close(s, 0, NULL);
	if (sup->db)
		net_sess_close(sup->db->out, -ECANCELED, NULL);
	net__relay_close(sup->relay);
	sup->relay = NULL;
	net__relay_client_close(sup->rclient);
	sup->rclient = NULL;
}

int
net_supplier_run(const struct net_supplier_conf *conf)
{
	struct supplier *sup;
	struct sockaddr_storage sa;
	char bound[80];
	int rc, len;

	if (!conf->max_sessions || !conf->max_per_addr || !conf->max_per_key ||
	    !conf->inflight_max || !conf->hs_timeout_ms ||
	    !conf->frame_timeout_ms || !conf->idle_timeout_ms) {
		log_error("supplier: incomplete configuration");
		return -EINVAL;
	}
	if ((rc = net__parse_addr(conf->listen, &sa)) < 0) {
		log_error("supplier: bad listen address '%s'",
		    conf->listen ? conf->listen : "");
		return rc;
	}
	if (!(sup = calloc(1, sizeof *sup)))
		return -ENOMEM;
	sup->conf = conf;
	set_limits(sup, conf);
	signal(SIGPIPE, SIG_IGN);
	if ((rc = uv_loop_init(&sup->loop)) < 0) {
		free(sup);
		return rc;
	}
	/* libuv sets SO_REUSEADDR on bind for TCP; SO_REUSEPORT lets
	 * hole punching connect from this port too (net__sup_handle_punch). */
	rc = uv_tcp_init_ex(&sup->loop, &sup->listener, sa.ss_family);
	if (rc < 0) {
		uv_loop_close(&sup->loop);
		free(sup);
		return rc;
	}
	sup->listener.data = sup;
	{
		uv_os_fd_t fd;
		int one = 1;
		if (uv_fileno((uv_handle_t *)&sup->listener, &fd) == 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
		    sizeof one) < 0)
			log_warn("supplier: no SO_REUSEPORT (%s): no hole "
			    "punching", strerror(errno));
	}
	rc = uv_tcp_bind(&sup->listener, (struct sockaddr *)&sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&sup->listener, 128,
		    net__sup_on_conn);
	if (rc < 0) {
		log_error("supplier: cannot listen on %s: %s", conf->listen,
		    uv_strerror(rc));
		uv_close((uv_handle_t *)&sup->listener, NULL);
		uv_run(&sup->loop, UV_RUN_DEFAULT);
		uv_loop_close(&sup->loop);
		free(sup);
		return rc;
	}
	uv_timer_init(&sup->loop, &sup->report);
	uv_timer_init(&sup->loop, &sup->retry);
	sup->report.data = sup->retry.data = sup;
	uv_timer_start(&sup->report, net__sup_on_report, REPORT_MS, REPORT_MS);
	uv_signal_init(&sup->loop, &sup->sigint);
	uv_signal_init(&sup->loop, &sup->sigterm);
	sup->sigint.data = sup->sigterm.data = sup;
	uv_signal_start(&sup->sigint, on_signal, SIGINT);
	uv_signal_start(&sup->sigterm, on_signal, SIGTERM);
	uv_signal_init(&sup->loop, &sup->sigusr1);
	sup->sigusr1.data = sup;
	uv_signal_start(&sup->sigusr1, on_evict, SIGUSR1);
	/* The deal's clocks advance at a tenth of the grace (1 s .. 1 min):
	 * an eviction comes at most that late. The first check at once. */
	uv_timer_init(&sup->loop, &sup->dealt);
	sup->dealt.data = sup;
	if (conf->deal && conf->evict_grace_s > 0) {
		int64_t every = conf->evict_grace_s * 100;

		every = every < 1000 ? 1000 : every > 60000 ? 60000 : every;
		uv_timer_start(&sup->dealt, on_dealt, 0, (uint64_t)every);
	}

	len = sizeof sa;
	if (uv_tcp_getsockname(&sup->listener, (struct sockaddr *)&sa, &len) == 0) {
		net__addr_name((struct sockaddr *)&sa, bound, sizeof bound);
		sup->listen_sa = sa;
	}
	else
		snprintf(bound, sizeof bound, "%s", conf->listen);
	log_info("supplier: listening on %s (sessions: %u, %u per address, "
	    "%u per key)", bound, sup->max_sessions, sup->max_per_addr,
	    sup->max_per_key);
	if (sup->test_fail_accept)
		log_warn("supplier: TEST MODE: the next %u sessions fail to "
		    "allocate", sup->test_fail_accept);
	if (conf->test_lie)
		log_warn("supplier: TEST MODE: lying about every fragment");
	if (conf->relay && (rc = net__relay_new(&sup->relay, &sup->loop,
	    conf->relay)) < 0)
		log_error("supplier: cannot offer relaying: %s", strerror(-rc));
	else if (conf->relay)
		log_info("supplier: relaying for nodes behind routers (%u "
		    "reservations, %u circuits each)",
		    conf->relay->max_reservations, conf->relay->max_circuits);
	if (conf->relay_client) {
		sup->rc_conf = *conf->relay_client;
		sup->rc_conf.take = net__sup_take_circuit;
		sup->rc_conf.take_arg = sup;
		if ((rc = net__relay_client_new(&sup->rclient, &sup->loop,
		    &sup->rc_conf)) < 0)
			log_error("supplier: cannot use relays: %s",
			    strerror(-rc));
	}
	if (conf->on_ready)
		conf->on_ready(conf->arg, bound);

	uv_run(&sup->loop, UV_RUN_DEFAULT);
	if (sup->in_total || sup->run_total || sup->queued_total || sup->nsess)
		log_warn("supplier: at exit: %zu bytes in, %zu running, %zu "
		    "queued, %u sessions: accounting drift", sup->in_total,
		    sup->run_total, sup->queued_total, sup->nsess);
	rc = uv_loop_close(&sup->loop);
	if (rc < 0)
		log_warn("supplier: loop close: %s", uv_strerror(rc));
	free(sup);
	return 0;
}
