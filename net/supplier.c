/* net/supplier.c - the supplier server: one loop, one listener, one
 * session per owner connection. Disk work (fsync!) runs on the libuv
 * thread pool; a session keeps several requests in flight but stops
 * reading while too many bytes are held for it. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/internal.h"
#include "net/net.h"
#include "util.h"

/* Enough to keep the disk threads busy with 1 MiB fragments; more only
 * grows the supplier (its memory target is 64 MiB in all). */
#define WORK_BYTES_MAX	(16u * 1024 * 1024)
#define WORK_N_MAX	16

struct supplier {
	uv_loop_t loop;
	uv_tcp_t listener;
	uv_signal_t sigint, sigterm;
	uv_signal_t sigusr1;		/* `peerfs supplier evict` asks */
	int evicting;
	/* Refusals of owners' data are logged at most once a second, with
	 * a count of the ones not logged: a stranger sending thousands of
	 * refused requests must not fill the log. */
	uint64_t refused_logged_ms;
	uint64_t refused_quiet;
	const struct net_supplier_conf *conf;
	struct net_sess *sessions;	/* list through next/prev */
	int stopping;
};

struct work {
	uv_work_t w;
	struct supplier *sup;
	struct net_sess *s;		/* referenced */
	uint8_t type;
	uint64_t reqid;
	unsigned char fragid[STORE_FRAGID_BYTES];
	unsigned char nonce[CR_HASH_BYTES];	/* AUDIT */
	unsigned char answer[CR_HASH_BYTES];	/* AUDIT_OK */
	unsigned char hash[CR_HASH_BYTES];	/* PUT: the owner's */
	uint32_t rsv_size, rsv_count;	/* RESERVE; RESERVE_OK count */
	uint64_t rsv_left;		/* RESERVE_OK */
	unsigned char *buf;		/* PUT: the record holding data */
	const unsigned char *data;
	size_t len;
	void *out;			/* GET: fragment; LIST: entries;
					 * HEAD_LIST: (u32 len | head)... */
	size_t out_len;			/* HEAD_LIST: bytes, max: count */
	uint32_t max;
	int rc;
};

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
flow(struct net_sess *s)
{
	if (s->work_n >= WORK_N_MAX ||
	    s->work_bytes + s->queued > WORK_BYTES_MAX)
		net_sess_pause(s);
	else if (s->paused)
		net_sess_resume(s);
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

static void
reply_err(struct net_sess *s, uint64_t reqid, uint8_t type, int rc)
{
	struct net_msg m = { .type = NET_ERR, .reqid = reqid };
	const char *msg = err_text(type, rc);

	m.err = rc < 0 && -rc <= 4095 ? (uint32_t)-rc : EIO;
	m.errmsg = msg;
	m.errmsg_len = strlen(msg);
	if (m.errmsg_len > NET_ERRMSG_MAX)
		m.errmsg_len = NET_ERRMSG_MAX;
	net_sess_send(s, &m);
}

/* ---- LIST: entries after a fragid, in fragid order, at most max ------- */
#define LIST_ENTRY	(STORE_FRAGID_BYTES + 8)

struct list_acc {
	const unsigned char *after;
	unsigned char *e;		/* LIST_ENTRY each */
	size_t n, cap;
	uint32_t max;
	int oom;
};

static int
entry_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STORE_FRAGID_BYTES);
}

static int
list_cb(void *arg, const unsigned char *fragid, uint64_t size)
{
	struct list_acc *a = arg;

	if (memcmp(fragid, a->after, STORE_FRAGID_BYTES) <= 0)
		return 0;
	if (a->n == a->cap) {
		/* Keep only the max smallest so far: memory stays ~2 x max. */
		qsort(a->e, a->n, LIST_ENTRY, entry_cmp);
		a->n = a->max;
	}
	memcpy(a->e + a->n * LIST_ENTRY, fragid, STORE_FRAGID_BYTES);
	put_be64(a->e + a->n * LIST_ENTRY + STORE_FRAGID_BYTES, size);
	a->n++;
	return 0;
}

/* Tests only (conf->test_lie): a few bytes flipped, the size kept, so
 * only the owner's hash check can tell. */
static void
lie_flip(unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 1 + len / 7)
		p[i] ^= 0x5a;
}

/* Proves the bytes are here right now (net__audit_answer). */
static int
do_audit(struct work *k, struct store_frag *sf, const unsigned char *owner)
{
	void *data;
	size_t len;
	int rc;

	if ((rc = store_frag_get(sf, owner, k->fragid, &data, &len)) < 0)
		return rc;
	if (k->sup->conf->test_lie) {
		randombytes_buf(k->answer, sizeof k->answer);
	} else {
		net__audit_answer(k->answer, k->nonce, data, len);
	}
	free(data);
	return 0;
}

/* ---- HEAD_LIST: newest first, as many as fit one record ---------- */
/* Payload room of a HEAD_LIST_OK after its count. */
#define HEADS_ROOM	((size_t)NET_FRAME_MAX - CR_STREAM_ABYTES - \
			    NET_MSG_HDR - 4)

struct heads_acc {
	unsigned char *buf;
	size_t len, cap;
	uint32_t n, max;
	int rc;
};

static int
heads_cb(void *arg, uint64_t seq, const void *head, size_t len)
{
	struct heads_acc *a = arg;
	size_t need = 4 + len;

	if (a->n >= a->max || len > UINT32_MAX || need > HEADS_ROOM - a->len)
		return 1;	/* the rest would not fit: the newest go */
	if (a->len + need > a->cap) {
		size_t cap = a->cap ? a->cap : 4096;
		unsigned char *b;

		while (cap < a->len + need)
			cap *= 2;
		if (!(b = realloc(a->buf, cap))) {
			a->rc = -ENOMEM;
			return 1;
		}
		a->buf = b;
		a->cap = cap;
	}
	put_be32(a->buf + a->len, (uint32_t)len);
	memcpy(a->buf + a->len + 4, head, len);
	a->len += need;
	a->n++;
	return 0;
}

static void
do_heads_list(struct work *k, struct store_frag *sf, const unsigned char *owner)
{
	struct heads_acc a = { .max = k->max };

	k->rc = store_head_list(sf, owner, (int)a.max, heads_cb, &a);
	if (k->rc >= 0 && a.rc < 0)
		k->rc = a.rc;
	if (k->rc < 0) {
		free(a.buf);
		return;
	}
	k->rc = 0;
	k->out = a.buf;
	k->out_len = a.len;
	k->max = a.n;
}

static void
do_work(uv_work_t *w)
{
	struct work *k = container_of(w, struct work, w);
	struct store_frag *sf = k->sup->conf->frags;
	const unsigned char *owner = k->s->peer_pk;

	switch (k->type) {
	case NET_PUT:
		k->rc = store_frag_put(sf, owner, k->fragid, k->data, k->len,
		    k->hash);
		break;
	case NET_GET:
		k->rc = store_frag_get(sf, owner, k->fragid, &k->out,
		    &k->out_len);
		if (k->rc == 0 && k->sup->conf->test_lie)
			lie_flip(k->out, k->out_len);
		break;
	case NET_AUDIT:
		k->rc = do_audit(k, sf, owner);
		break;
	case NET_DEL:
		k->rc = store_frag_del(sf, owner, k->fragid);
		break;
	case NET_HEAD_PUT:
		k->rc = store_head_put(sf, owner, k->data, k->len);
		break;
	case NET_HEAD_LIST:
		do_heads_list(k, sf, owner);
		break;
	case NET_RESERVE:
		k->rc = store_frag_reserve(sf, owner, k->rsv_size, k->rsv_count,
		    &k->rsv_count, &k->rsv_left);
		break;
	case NET_LIST: {
		struct list_acc a = { .after = k->fragid, .max = k->max };
		a.cap = 2 * (size_t)a.max;
		a.e = malloc(a.cap * LIST_ENTRY + 1);
		if (!a.e) {
			k->rc = -ENOMEM;
			break;
		}
		k->rc = store_frag_list(sf, owner, list_cb, &a);
		qsort(a.e, a.n, LIST_ENTRY, entry_cmp);
		if (a.n > a.max)
			a.n = a.max;
		k->out = a.e;
		k->out_len = a.n;
		break;
	}
	}
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
	struct work *k = container_of(w, struct work, w);
	struct net_sess *s = k->s;
	struct net_msg m = { .reqid = k->reqid };

	s->work_n--;
	s->work_bytes -= k->len;
	if (s->state == NET_SESS_UP) {
		if (status < 0)
			k->rc = status;
		if (k->rc < 0) {
			if (k->type == NET_HEAD_PUT || k->rc == -EDQUOT ||
			    k->rc == -EACCES || (k->rc == -ENOSPC &&
			    (k->type == NET_RESERVE || k->type == NET_PUT)))
				log_refusal(k->sup, s, k->type, k->rc);
			else if (k->rc != -ENOENT)
				log_warn("supplier: %s: request %02x failed: %s",
				    s->name, k->type, strerror(-k->rc));
			reply_err(s, k->reqid, k->type, k->rc);
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
			}
			if (m.type == NET_GET_OK && m.data_len == 0)
				reply_err(s, k->reqid, k->type, -EIO);
			else if (net_sess_send(s, &m) < 0)
				net_sess_close(s, -EIO, "cannot send reply");
		}
		flow(s);
	}
	free(k->out);
	free(k->buf);
	net_sess_unref(s);
	free(k);
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
}

static void
on_msg(struct net_sess *s, const struct net_msg *m, unsigned char **buf)
{
	struct supplier *sup = s->data;
	struct work *k;
	int rc;

	switch (m->type) {
	case NET_PING:
		handle_ping(sup, s, m->reqid);
		return;
	case NET_RESERVE:
		if (sup->conf->test_old) {
			net_sess_close(s, -EPROTO, "unexpected message type");
			return;
		}
		break;
	case NET_PUT: case NET_GET: case NET_DEL: case NET_LIST:
	case NET_AUDIT: case NET_HEAD_PUT: case NET_HEAD_LIST:
		break;
	default:
		net_sess_close(s, -EPROTO, "unexpected message type");
		return;
	}
	if (!(k = calloc(1, sizeof *k))) {
		reply_err(s, m->reqid, m->type, -ENOMEM);
		return;
	}
	k->sup = sup;
	k->s = s;
	k->type = m->type;
	k->reqid = m->reqid;
	if (m->fragid)
		memcpy(k->fragid, m->fragid, STORE_FRAGID_BYTES);
	if (m->type == NET_AUDIT)
		memcpy(k->nonce, m->nonce, sizeof k->nonce);
	if (m->type == NET_PUT)
		memcpy(k->hash, m->hash, sizeof k->hash);
	if (m->type == NET_RESERVE) {
		k->rsv_size = m->rsv_size;
		k->rsv_count = m->rsv_count;
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
	s->work_n++;
	s->work_bytes += k->len;
	if ((rc = uv_queue_work(&sup->loop, &k->w, do_work, after_work)) < 0) {
		s->work_n--;
		s->work_bytes -= k->len;
		net_sess_unref(s);
		free(k->buf);
		free(k);
		reply_err(s, m->reqid, m->type, rc);
		return;
	}
	flow(s);
}

static int
on_up(struct net_sess *s)
{
	log_debug("supplier: session %s up", s->name);
	return 0;
}

static void
on_drain(struct net_sess *s)
{
	flow(s);
}

static void
on_close(struct net_sess *s, int err)
{
	sup_unlink(s->data, s);
}

static const struct net_sess_ops sup_ops = {
	.on_up = on_up, .on_msg = on_msg, .on_drain = on_drain,
	.on_close = on_close,
};

static void
on_conn(uv_stream_t *server, int status)
{
	struct supplier *sup = server->data;
	struct net_sess *s;

	if (status < 0) {
		log_warn("supplier: accept: %s", uv_strerror(status));
		return;
	}
	if (net_sess_accept(server, sup->conf->id, &sup_ops, sup, &s) < 0)
		return;
	s->next = sup->sessions;
	if (s->next)
		s->next->prev = s;
	sup->sessions = s;
}

/* ---- evictions asked by `peerfs supplier evict` (store.h) ---------- */

static void
evict_work(uv_work_t *w)
{
	struct supplier *sup = w->data;
	int n = store_frag_evict_pending(sup->conf->frags);

	if (n > 0)
		log_info("supplier: %d owner(s) evicted", n);
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
on_signal(uv_signal_t *h, int signum)
{
	struct supplier *sup = h->data;

	if (sup->stopping)
		return;
	sup->stopping = 1;
	log_info("supplier: signal %d: stopping", signum);
	uv_close((uv_handle_t *)&sup->listener, NULL);
	uv_close((uv_handle_t *)&sup->sigint, NULL);
	uv_close((uv_handle_t *)&sup->sigterm, NULL);
	uv_close((uv_handle_t *)&sup->sigusr1, NULL);
	/* In-flight thread-pool work keeps the loop alive until it is
	 * done: acknowledged or not, a fragment being written is finished. */
	for (struct net_sess *s = sup->sessions; s; s = s->next)
		net_sess_close(s, 0, NULL);
}

int
net_supplier_run(const struct net_supplier_conf *conf)
{
	struct supplier *sup;
	struct sockaddr_storage sa;
	char bound[80];
	int rc, len;

	if ((rc = net__parse_addr(conf->listen, &sa)) < 0) {
		log_error("supplier: bad listen address '%s'",
		    conf->listen ? conf->listen : "");
		return rc;
	}
	if (!(sup = calloc(1, sizeof *sup)))
		return -ENOMEM;
	sup->conf = conf;
	signal(SIGPIPE, SIG_IGN);
	if ((rc = uv_loop_init(&sup->loop)) < 0) {
		free(sup);
		return rc;
	}
	uv_tcp_init(&sup->loop, &sup->listener);
	sup->listener.data = sup;
	/* libuv sets SO_REUSEADDR on bind for TCP. */
	rc = uv_tcp_bind(&sup->listener, (struct sockaddr *)&sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&sup->listener, 128, on_conn);
	if (rc < 0) {
		log_error("supplier: cannot listen on %s: %s", conf->listen,
		    uv_strerror(rc));
		uv_close((uv_handle_t *)&sup->listener, NULL);
		uv_run(&sup->loop, UV_RUN_DEFAULT);
		uv_loop_close(&sup->loop);
		free(sup);
		return rc;
	}
	uv_signal_init(&sup->loop, &sup->sigint);
	uv_signal_init(&sup->loop, &sup->sigterm);
	sup->sigint.data = sup->sigterm.data = sup;
	uv_signal_start(&sup->sigint, on_signal, SIGINT);
	uv_signal_start(&sup->sigterm, on_signal, SIGTERM);
	uv_signal_init(&sup->loop, &sup->sigusr1);
	sup->sigusr1.data = sup;
	uv_signal_start(&sup->sigusr1, on_evict, SIGUSR1);

	len = sizeof sa;
	if (uv_tcp_getsockname(&sup->listener, (struct sockaddr *)&sa, &len) == 0)
		net__addr_name((struct sockaddr *)&sa, bound, sizeof bound);
	else
		snprintf(bound, sizeof bound, "%s", conf->listen);
	log_info("supplier: listening on %s", bound);
	if (conf->test_lie)
		log_warn("supplier: TEST MODE: lying about every fragment");
	if (conf->on_ready)
		conf->on_ready(conf->arg, bound);

	uv_run(&sup->loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(&sup->loop);
	if (rc < 0)
		log_warn("supplier: loop close: %s", uv_strerror(rc));
	free(sup);
	return 0;
}
