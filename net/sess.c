/* net/sess.c - one TCP session, shared by supplier and client: the three
 * fixed-size handshake messages (crypto/crypto.h cr_hs_*), then records
 * u32 BE L | u32 BE B | secretstream header | bulk (net/internal.h).
 * Anything malformed closes the session with one warning naming the peer;
 * nothing a peer sends can make it assert or block. Only the loop thread
 * calls in here. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "net/internal.h"
#include "util.h"

#define RDBUF_BYTES	(64 * 1024)

struct wreq {
	uv_write_t req;
	struct net_sess *s;
	size_t len;			/* data and bulk */
	const unsigned char *bulk;	/* taken or lent: written after data */
	size_t bulk_len;
	void (*release)(void *);	/* called on bulk_buf once written */
	void *bulk_buf;
	unsigned char data[];
};

static void sess_feed(struct net_sess *s, const unsigned char *p, size_t n);
static void sess_record(struct net_sess *s, struct net_frame *fr);
static int start_reading(struct net_sess *s);
static int frame_refused(struct net_sess *s);
static void start_limits(struct net_sess *s);

void
net__addr_name(const struct sockaddr *sa, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		uv_ip6_name(a, host, sizeof host);
		snprintf(out, size, "[%s]:%u", host, ntohs(a->sin6_port));
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		uv_ip4_name(a, host, sizeof host);
		snprintf(out, size, "%s:%u", host, ntohs(a->sin_port));
	} else {
		snprintf(out, size, "?");
	}
}

void
net__addr_host(const struct sockaddr *sa, char *out, size_t size)
{
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	size_t n;

	snprintf(out, size, "?");
	if (sa->sa_family == AF_INET) {
		uv_ip4_name((const struct sockaddr_in *)sa, out, size);
		return;
	}
	if (sa->sa_family != AF_INET6)
		return;
	memcpy(&a6, sa, sizeof a6);
	if (IN6_IS_ADDR_V4MAPPED(&a6.sin6_addr)) {
		memset(&a4, 0, sizeof a4);
		a4.sin_family = AF_INET;
		memcpy(&a4.sin_addr, a6.sin6_addr.s6_addr + 12, 4);
		uv_ip4_name(&a4, out, size);
		return;
	}
	/* One host of IPv6 has a whole /64: count them as one. */
	memset(a6.sin6_addr.s6_addr + 8, 0, 8);
	uv_ip6_name(&a6, out, size);
	n = strlen(out);
	if (n + 4 < size)
		memcpy(out + n, "/64", 4);
}

int
net__parse_addr(const char *hostport, struct sockaddr_storage *out)
{
	char host[256];
	const char *port, *h = hostport;
	size_t hl;
	char *end;
	long pn;

	if (!hostport)
		return -EINVAL;
	if (*h == '[') {
		const char *rb = strchr(h, ']');
		if (!rb || rb[1] != ':')
			return -EINVAL;
		h++;
		hl = rb - h;
		port = rb + 2;
	} else {
		const char *c = strrchr(h, ':');
		if (!c || strchr(h, ':') != c)
			return -EINVAL;
		hl = c - h;
		port = c + 1;
	}
	if (hl == 0 || hl >= sizeof host)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	pn = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || errno || pn < 0 || pn > 65535)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	if (uv_ip4_addr(host, (int)pn, (struct sockaddr_in *)out) == 0)
		return 0;
	if (uv_ip6_addr(host, (int)pn, (struct sockaddr_in6 *)out) == 0)
		return 0;

	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
		return -EINVAL;
	memcpy(out, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

int
net__sa_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static struct net_sess *
sess_new(const struct cr_identity *id, const struct net_sess_ops *ops,
    void *data, int is_client)
{
	struct net_sess *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	/* cr_hs holds the stream keys: locked, guarded memory. Rounded up
	 * because sodium_malloc() aligns only whole multiples. */
	s->hs = sodium_malloc((sizeof *s->hs + 63) & ~(size_t)63);
	s->rdbuf = malloc(RDBUF_BYTES);
	if (!s->hs || !s->rdbuf) {
		if (s->hs)
			sodium_free(s->hs);
		free(s->rdbuf);
		free(s);
		return NULL;
	}
	memset(s->hs, 0, sizeof *s->hs);
	s->id = id;
	s->ops = ops;
	s->data = data;
	s->is_client = is_client;
	s->state = NET_SESS_HS;
	s->refs = 1;
	s->hs_need = is_client ? CR_HS_REPLY_BYTES : CR_HS_HELLO_BYTES;
	net_framer_init(&s->fr);
	snprintf(s->name, sizeof s->name, "?");
	snprintf(s->host, sizeof s->host, "?");
	return s;
}

void
net_sess_ref(struct net_sess *s)
{
	s->refs++;
}

void
net_sess_unref(struct net_sess *s)
{
	if (--s->refs > 0)
		return;
	net_framer_release(&s->fr);
	sodium_memzero(s->hs, sizeof *s->hs);
	sodium_free(s->hs);
	free(s->rdbuf);
	free(s);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct net_sess *s = h->data;

	if (--s->nclose > 0)
		return;
	s->ops->on_close(s, s->err);
	net_sess_unref(s);
}

void
net_sess_close(struct net_sess *s, int err, const char *why)
{
	if (s->state == NET_SESS_CLOSED)
		return;
	/* A stranger can make a server close sessions at will: counted per
	 * address and reason, one line per interval (net_ratelog). */
	if (why && (!s->lim || !s->lim->closed ||
	    net_ratelog_hit(s->lim->closed, s->host, why)))
		log_warn("session %s: %s: closing", s->name, why);
	s->state = NET_SESS_CLOSED;
	s->err = err;
	s->why = why;
	s->nclose = 2;
	uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

static void
on_write(uv_write_t *req, int status)
{
	struct wreq *w = container_of(req, struct wreq, req);
	struct net_sess *s = w->s;
	int was_full = s->queued > NET_SESS_QUEUE_MAX;
	size_t len = w->len;

	s->queued -= len;
	if (s->lim && s->lim->queued_total)
		*s->lim->queued_total -= len;
	s->last_tx = uv_now(s->tcp.loop);
	if (w->release)
		w->release(w->bulk_buf);
	free(w);
	/* Even when cancelled by a close: the owner's figures must fall
	 * back whatever became of the bytes. */
	if (s->ops->on_sent)
		s->ops->on_sent(s, len);
	if (status < 0 && status != UV_ECANCELED) {
		net_sess_close(s, status, NULL);
		log_debug("session %s: write: %s", s->name, uv_strerror(status));
		return;
	}
	if (was_full && s->queued <= NET_SESS_QUEUE_MAX &&
	    (s->state == NET_SESS_UP || s->state == NET_SESS_RAW) &&
	    s->ops->on_drain)
		s->ops->on_drain(s);
}

static int
sess_write(struct net_sess *s, struct wreq *w)
{
	uv_buf_t b[2] = {
		uv_buf_init((char *)w->data, w->len - w->bulk_len),
		uv_buf_init((char *)w->bulk, w->bulk_len),
	};
	int rc;

	w->s = s;
	rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, b, w->bulk ? 2 : 1,
	    on_write);
	if (rc < 0) {
		if (w->release)
			w->release(w->bulk_buf);
		free(w);
		net_sess_close(s, rc, NULL);
		return rc;
	}
	if (s->queued == 0)		/* the peer's clock to read starts */
		s->last_tx = uv_now(s->tcp.loop);
	s->queued += w->len;
	if (s->lim && s->lim->queued_total)
		*s->lim->queued_total += w->len;
	return 0;
}

static int
sess_write_raw(struct net_sess *s, const void *p, size_t n)
{
	struct wreq *w = malloc(sizeof *w + n);

	if (!w)
		return -ENOMEM;
	w->len = n;
	w->bulk = NULL;
	w->bulk_len = 0;
	w->release = NULL;
	w->bulk_buf = NULL;
	memcpy(w->data, p, n);
	return sess_write(s, w);
}

int
net_sess_send_raw(struct net_sess *s, const void *p, size_t n)
{
	if (s->state != NET_SESS_RAW)
		return -EPIPE;
	return sess_write_raw(s, p, n);
}

/* Bigger than any header with bulk (PUT: 74 bytes). */
#define HEAD_STACK	128

/* Encrypts and queues m. With release, m's bulk lies in buf and is
 * written from there (release(buf) once written or on failure), else it
 * is copied behind the header. */
static int
sess_send(struct net_sess *s, const struct net_msg *m,
    void (*release)(void *), void *buf)
{
	size_t hlen = net_msg_head_len(m), clen, blen = 0, copy;
	unsigned char stack[HEAD_STACK], *plain = stack;
	const unsigned char *bulk = NULL;
	struct wreq *w = NULL;
	ssize_t n;
	int rc;

	if (s->state != NET_SESS_UP) {
		rc = -EPIPE;
		goto fail;
	}
	if (hlen == 0 || hlen > NET_FRAME_MAX) {
		rc = hlen ? -EMSGSIZE : -EINVAL;
		goto fail;
	}
	if (hlen > sizeof stack && !(plain = malloc(hlen))) {
		rc = -ENOMEM;
		goto fail;
	}
	n = net_msg_encode_head(plain, hlen, m, &bulk, &blen);
	if (n < 0 || (size_t)n != hlen) {
		rc = n < 0 ? (int)n : -EINVAL;
		goto fail;
	}
	clen = hlen + CR_STREAM_ABYTES;
	if (blen > NET_FRAME_MAX - clen || clen > NET_FRAME_MAX) {
		rc = -EMSGSIZE;
		goto fail;
	}
	/* prefix | header ciphertext | bulk: the bulk is never encrypted
	 * again; a client's is MAC'd where it is sent from (net/internal.h
	 * says why a server's is not). It is copied once behind the header,
	 * unless the caller gave or lent its buffer: then it is written
	 * from there, a second iovec of the same write. */
	copy = release ? 0 : blen;
	if (!(w = malloc(sizeof *w + 8 + clen + copy))) {
		rc = -ENOMEM;
		goto fail;
	}
	put_be32(w->data, (uint32_t)clen);
	put_be32(w->data + 4, (uint32_t)blen);
	if (copy)
		memcpy(w->data + 8 + clen, bulk, blen);
	w->bulk = release ? bulk : NULL;
	w->bulk_len = release ? blen : 0;
	w->release = release;
	w->bulk_buf = buf;
	cr_stream_push_ad(&s->hs->tx, w->data + 8, plain, hlen,
	    s->is_client ? bulk : NULL, s->is_client ? blen : 0);
	if (plain != stack)
		free(plain);
	w->len = 8 + clen + blen;
	return sess_write(s, w);
fail:
	if (plain != stack)
		free(plain);
	if (release)
		release(buf);
	return rc;
}

int
net_sess_send(struct net_sess *s, const struct net_msg *m)
{
	return sess_send(s, m, NULL, NULL);
}

int
net_sess_send_take(struct net_sess *s, const struct net_msg *m, void *take)
{
	return sess_send(s, m, take ? free : NULL, take);
}

struct net_lend *
net_lend_new(void *buf, void (*release)(void *buf))
{
	struct net_lend *l = malloc(sizeof *l);

	if (!l)
		return NULL;
	atomic_init(&l->refs, 1);
	l->release = release;
	l->buf = buf;
	return l;
}

void
net_lend_put(struct net_lend *l)
{
	if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1) {
		l->release(l->buf);
		free(l);
	}
}

static void
lend_put(void *l)
{
	net_lend_put(l);
}

int
net_sess_send_lent(struct net_sess *s, const struct net_msg *m,
    struct net_lend *lend)
{
	atomic_fetch_add_explicit(&lend->refs, 1, memory_order_relaxed);
	return sess_send(s, m, lend_put, lend);
}

/* Inside a bulk (a fragment of a PUT or a GET_OK) that on_frame let in,
 * with at least a read buffer's worth left: the socket reads straight into
 * the frame's record, and only up to the bulk's end, so no byte of the next
 * frame lands there. That saves copying every fragment byte once more
 * through rdbuf, and the many 64 KiB reads per fragment. Reading is
 * stopped whenever rdbuf holds bytes not yet fed (paused), so a direct
 * read never overtakes them. */
static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct net_sess *s = h->data;
	unsigned char *dst;
	size_t left;

	if (s->state == NET_SESS_UP && !s->paused && s->fr_ok &&
	    (left = net_framer_bulk_dst(&s->fr, &dst)) >= RDBUF_BYTES) {
		*buf = uv_buf_init((char *)dst, left);
		return;
	}
	*buf = uv_buf_init((char *)s->rdbuf, RDBUF_BYTES);
}

/* nread bytes went straight into the current frame's bulk (on_alloc). */
static void
sess_bulk_read(struct net_sess *s, size_t nread)
{
	const unsigned char *q = NULL;
	struct net_frame fr;
	size_t left = 0;

	s->feeding = 1;
	net_framer_bulk_got(&s->fr, nread);
	if (net_framer_feed(&s->fr, &q, &left, &fr) == 1) {
		s->fr_ok = 0;
		sess_record(s, &fr);
	}
	s->feeding = 0;
	/* Paused and resumed again inside on_msg: reading goes on. */
	if (s->state == NET_SESS_UP && !s->paused && !s->reading &&
	    start_reading(s) < 0)
		net_sess_close(s, -EIO, "cannot read");
}

static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct net_sess *s = st->data;

	if (s->state == NET_SESS_CLOSED || nread == 0)
		return;
	s->last_rx = uv_now(st->loop);
	if (nread < 0) {
		if (nread == UV_EOF || nread == UV_ECONNRESET)
			log_debug("session %s: closed by peer", s->name);
		else
			log_warn("session %s: read: %s", s->name,
			    uv_strerror((int)nread));
		net_sess_close(s, nread == UV_EOF ? 0 : (int)nread, NULL);
		return;
	}
	if (buf->base != (char *)s->rdbuf)
		sess_bulk_read(s, (size_t)nread);
	else
		sess_feed(s, (const unsigned char *)buf->base, (size_t)nread);
}

static int
start_reading(struct net_sess *s)
{
	int rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);

	if (rc == 0)
		s->reading = 1;
	return rc;
}

void
net_sess_pause(struct net_sess *s)
{
	s->paused = 1;
	if (s->reading && s->state != NET_SESS_CLOSED) {
		uv_read_stop((uv_stream_t *)&s->tcp);
		s->reading = 0;
	}
}

void
net_sess_resume(struct net_sess *s)
{
	if (!s->paused)
		return;
	s->paused = 0;
	/* Inside sess_feed (an on_msg made room): its loop goes on. */
	if (s->feeding || s->state == NET_SESS_CLOSED)
		return;
	s->last_rx = uv_now(s->tcp.loop);	/* the peer waited for us */
	if (s->state == NET_SESS_UP && s->fr.cur.hdr && !s->fr_ok &&
	    frame_refused(s))
		return;
	if (s->rd_len) {
		size_t n = s->rd_len;

		s->rd_len = 0;
		sess_feed(s, s->rdbuf + s->rd_off, n);
		if (s->paused || s->state == NET_SESS_CLOSED)
			return;
	}
	if (!s->reading && start_reading(s) < 0)
		net_sess_close(s, -EIO, "cannot read");
}

/* One complete handshake message is in hsbuf. */
static int
sess_hs_step(struct net_sess *s)
{
	unsigned char out[CR_HS_REPLY_BYTES];
	int rc;

	if (s->is_client) {
		rc = cr_hs_client_finish(s->hs, s->id, s->hsbuf, out);
		if (rc < 0) {
			net_sess_close(s, rc, rc == -EBADMSG ?
			    "bad handshake signature" : "malformed handshake");
			return rc;
		}
		memcpy(s->peer_pk, s->hs->peer_pk, CR_PK_BYTES);
		if (s->ops->on_up(s) != 0) {
			net_sess_close(s, -EKEYREJECTED, NULL);
			return -EKEYREJECTED;
		}
		if ((rc = sess_write_raw(s, out, CR_HS_FINISH_BYTES)) < 0)
			return rc;
		goto up;
	}
	if (s->hs_need == CR_HS_HELLO_BYTES) {
		rc = cr_hs_server_reply(s->hs, s->id, s->hsbuf, out);
		if (rc < 0) {
			net_sess_close(s, rc, "malformed handshake hello");
			return rc;
		}
		if ((rc = sess_write_raw(s, out, CR_HS_REPLY_BYTES)) < 0)
			return rc;
		s->hs_have = 0;
		s->hs_need = CR_HS_FINISH_BYTES;
		return 0;
	}
	rc = cr_hs_server_finish(s->hs, s->hsbuf);
	if (rc < 0) {
		net_sess_close(s, rc, "bad handshake signature");
		return rc;
	}
	memcpy(s->peer_pk, s->hs->peer_pk, CR_PK_BYTES);
	if (s->ops->on_up(s) != 0) {
		net_sess_close(s, -EKEYREJECTED, NULL);
		return -EKEYREJECTED;
	}
up:
	cr_hs_wipe(s->hs);
	s->state = NET_SESS_UP;
	uv_timer_stop(&s->timer);
	start_limits(s);
	if (s->ops->on_ready)
		s->ops->on_ready(s);
	return s->state == NET_SESS_UP ? 0 : -EPIPE;
}

int
net_frame_open(struct cr_stream *rx, const struct net_frame *fr,
    int from_server, size_t *len)
{
	size_t hlen;
	int rc;

	if (fr->hdr_len < CR_STREAM_ABYTES + NET_MSG_HDR)
		return -EPROTO;
	hlen = fr->hdr_len - CR_STREAM_ABYTES;
	rc = cr_stream_pull_ad(rx, fr->rec, fr->hdr, fr->hdr_len,
	    from_server ? NULL : fr->rec + hlen, from_server ? 0 : fr->bulk_len);
	if (rc < 0)
		return -EBADMSG;
	if (net_msg_bulk_ok(fr->rec[0], hlen, fr->bulk_len) < 0)
		return -EPROTO;
	/* Each side's bulk on its own type only: a client's PUT (MAC'd), a
	 * server's GET_OK (not MAC'd: the owner checks it itself). */
	if (fr->bulk_len &&
	    fr->rec[0] != (from_server ? NET_GET_OK : NET_PUT))
		return -EPROTO;
	*len = hlen + fr->bulk_len;
	return 0;
}

/* Takes fr's buffers. */
static void
sess_record(struct net_sess *s, struct net_frame *fr)
{
	unsigned char *rec = fr->rec;
	struct net_msg m;
	size_t len;
	int rc;

	rc = net_frame_open(&s->hs->rx, fr, s->is_client, &len);
	free(fr->hdr);
	if (rc < 0) {
		free(rec);
		net_sess_close(s, rc, rc == -EBADMSG ? "bad record MAC" :
		    "bulk where none may be");
		return;
	}
	if (net_msg_decode(&m, rec, len) < 0) {
		free(rec);
		net_sess_close(s, -EPROTO, "undecodable message");
		return;
	}
	s->ops->on_msg(s, &m, &rec);
	free(rec);
}

/* A frame's prefix is in: may its body be read? 1 = not now (on_frame
 * paused the session; it is asked again at resume). */
static int
frame_refused(struct net_sess *s)
{
	if (s->ops->on_frame && s->ops->on_frame(s, s->fr.cur.hdr_len +
	    s->fr.cur.bulk_len) != 0)
		return 1;
	s->fr_ok = 1;
	return 0;
}

static int start_hs(struct net_sess *s);

/* The relay's answer to our circuit request is in hsbuf: piped, and the
 * handshake starts inside; or refused, with its reason. */
static int
sess_pre_step(struct net_sess *s)
{
	size_t wl = s->hsbuf[1] < NET_RELAY_WHY_MAX ? s->hsbuf[1] :
	    NET_RELAY_WHY_MAX;

	if (s->hsbuf[0]) {
		/* Shown in logs and status: printable bytes only. */
		for (size_t i = 0; i < wl; i++) {
			unsigned char c = s->hsbuf[2 + i];
			s->relay_why[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
		}
		s->relay_why[wl] = '\0';
		log_info("session %s: the relay refused: %s", s->name,
		    s->relay_why);
		net_sess_close(s, -(int)s->hsbuf[0], NULL);
		return -1;
	}
	/* Piped: the other end's address, if the relay says it. Only the
	 * characters of an address are kept: anything else is no address. */
	for (size_t i = 0; i < wl; i++) {
		unsigned char c = s->hsbuf[2 + i];
		if (!isxdigit(c) && c != '.' && c != ':') {
			wl = 0;
			break;
		}
		s->relay_obs[i] = (char)c;
	}
	s->relay_obs[wl] = '\0';
	s->state = NET_SESS_HS;
	s->hs_have = 0;
	s->hs_need = s->is_client ? CR_HS_REPLY_BYTES : CR_HS_HELLO_BYTES;
	return s->is_client ? start_hs(s) : 0;
}

static void
sess_feed(struct net_sess *s, const unsigned char *p, size_t n)
{
	s->feeding = 1;
	if (s->state == NET_SESS_RAW) {
		s->ops->on_raw(s, p, n);
		goto out;
	}
	/* The relay's answer (PRE), then the handshake's messages: fixed
	 * sizes, hs_need each. */
	while (n > 0 && (s->state == NET_SESS_PRE ||
	    s->state == NET_SESS_HS)) {
		size_t take = s->hs_need - s->hs_have;
		if (take > n)
			take = n;
		memcpy(s->hsbuf + s->hs_have, p, take);
		s->hs_have += take;
		p += take;
		n -= take;
		if (s->state == NET_SESS_PRE) {
			if (s->hs_have == s->hs_need && sess_pre_step(s) < 0)
				goto out;
			continue;
		}
		/* A relay's circuit request rather than a HELLO: the rest
		 * of this connection is the relay's (net/relay.c). */
		if (!s->is_client && s->ops->on_raw &&
		    s->hs_need == CR_HS_HELLO_BYTES &&
		    s->hs_have >= NET_RELAY_MAGIC_LEN &&
		    s->hs_have - take < NET_RELAY_MAGIC_LEN &&
		    !memcmp(s->hsbuf, NET_RELAY_MAGIC, NET_RELAY_MAGIC_LEN)) {
			s->state = NET_SESS_RAW;
			uv_timer_stop(&s->timer);
			s->ops->on_raw(s, s->hsbuf, s->hs_have);
			if (n && s->state == NET_SESS_RAW)
				s->ops->on_raw(s, p, n);
			goto out;
		}
		if (s->hs_have == s->hs_need && sess_hs_step(s) < 0)
			goto out;
	}
	/* Paused (by the owner's on_msg or on_frame, or by on_ready): not
	 * one record more. The rest of the read waits in rdbuf, so a peer
	 * cannot queue more work with one big write than its session may
	 * hold. */
	while (n > 0 && s->state == NET_SESS_UP && !s->paused) {
		struct net_frame fr;
		const unsigned char *q = p;
		size_t lim = n, left;
		int rc;

		if (s->fr.cur.hdr && !s->fr_ok) {
			if (frame_refused(s))
				break;
			continue;
		}
		/* To the end of a prefix at most: on_frame hears of a frame
		 * before its body is read. */
		if (!s->fr.cur.hdr && s->ops->on_frame &&
		    lim > sizeof s->fr.pfx - s->fr.pfx_have)
			lim = sizeof s->fr.pfx - s->fr.pfx_have;
		left = lim;
		rc = net_framer_feed(&s->fr, &q, &left, &fr);
		p = q;
		n -= lim - left;
		if (rc < 0) {
			net_sess_close(s, rc, rc == -EPROTO ?
			    "bad record length" : "out of memory");
			goto out;
		}
		if (rc == 1) {
			s->fr_ok = 0;
			sess_record(s, &fr);
		}
	}
	if (n > 0 && s->state == NET_SESS_UP) {
		/* p points into rdbuf: reading is stopped (net_sess_pause),
		 * so nothing overwrites it before resume. */
		s->rd_off = (size_t)(p - s->rdbuf);
		s->rd_len = n;
	}
out:
	s->feeding = 0;
}

static int
mid_frame(const struct net_sess *s)
{
	return s->fr.pfx_have > 0 || s->fr.cur.hdr != NULL;
}

/* Checks the deadlines of a session that is up (s->lim): a frame that
 * stopped arriving, replies the peer does not read, a session idle. */
static void
on_limits_tick(uv_timer_t *t)
{
	struct net_sess *s = t->data;
	const struct net_sess_limits *l = s->lim;
	uint64_t now = uv_now(t->loop), last;

	if (s->state != NET_SESS_UP)
		return;
	if (l->frame_ms && !s->paused && mid_frame(s) &&
	    now - s->last_rx >= l->frame_ms) {
		net_sess_close(s, -ETIMEDOUT,
		    "frame stalled past its deadline");
		return;
	}
	if (l->frame_ms && s->queued && now - s->last_tx >= l->frame_ms) {
		net_sess_close(s, -ETIMEDOUT, "replies not read");
		return;
	}
	last = s->last_rx > s->last_tx ? s->last_rx : s->last_tx;
	if (l->idle_ms && !mid_frame(s) && !s->queued && !s->work_n &&
	    !s->rd_len && now - last >= l->idle_ms)
		net_sess_close(s, -ETIMEDOUT, "idle");
}

/* The tick of the deadlines: a fraction of the shortest, so a deadline
 * is late by at most a quarter of itself (and a second). */
static void
start_limits(struct net_sess *s)
{
	const struct net_sess_limits *l = s->lim;
	unsigned ms = 0;

	if (!l || (!l->frame_ms && !l->idle_ms))
		return;
	if (l->frame_ms)
		ms = l->frame_ms;
	if (l->idle_ms && (!ms || l->idle_ms < ms))
		ms = l->idle_ms;
	ms /= 4;
	if (ms > 1000)
		ms = 1000;
	if (ms < 10)
		ms = 10;
	s->last_rx = s->last_tx = uv_now(s->tcp.loop);
	uv_timer_start(&s->timer, on_limits_tick, ms, ms);
}

static void
on_hs_timeout(uv_timer_t *t)
{
	struct net_sess *s = t->data;

	if (s->state == NET_SESS_HS || s->state == NET_SESS_PRE)
		net_sess_close(s, -ETIMEDOUT, "handshake timed out");
}

static int
sess_init_handles(uv_loop_t *loop, struct net_sess *s)
{
	int rc = uv_tcp_init(loop, &s->tcp);

	if (rc < 0)
		return rc;
	s->tcp.data = s;
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	return 0;
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct net_sess *s = req->data;
	int rc;

	if (s->state == NET_SESS_CLOSED)
		return;
	if (status < 0) {
		log_debug("session %s: connect: %s", s->name,
		    uv_strerror(status));
		net_sess_close(s, status, NULL);
		return;
	}
	uv_tcp_nodelay(&s->tcp, 1);
	if (s->has_pre) {
		s->state = NET_SESS_PRE;
		s->hs_have = 0;
		s->hs_need = NET_RELAY_ANS_BYTES;
		if (sess_write_raw(s, s->pre, sizeof s->pre) < 0)
			return;
	} else if (s->is_client && start_hs(s) < 0) {
		return;		/* a server end (punched) waits for HELLO */
	}
	if ((rc = start_reading(s)) < 0)
		net_sess_close(s, rc, "cannot read");
}

/* The client's HELLO goes out. */
static int
start_hs(struct net_sess *s)
{
	unsigned char hello[CR_HS_HELLO_BYTES];
	int rc;

	if ((rc = cr_hs_client_hello(s->hs, s->id, hello)) < 0) {
		net_sess_close(s, rc, "cannot start handshake");
		return rc;
	}
	return sess_write_raw(s, hello, sizeof hello);
}

int
net_sess_connect(uv_loop_t *loop, const struct cr_identity *id,
    const struct sockaddr *sa, const char *name,
    const struct net_sess_ops *ops, void *data, struct net_sess **out)
{
	return net_sess_connect_from(loop, id, sa, NULL, name, ops, data, out);
}

/* The part of every outgoing session after its fields are set: handles,
 * the handshake deadline, an optional source address, the connect.
 * reuse (hole punching): SO_REUSEADDR and SO_REUSEPORT go on the socket
 * before it binds src, so src may be the port we listen on. */
static int
sess_dial(uv_loop_t *loop, struct net_sess *s, const struct sockaddr *sa,
    const struct sockaddr *src, int hs_ms, int reuse, struct net_sess **out)
{
	uv_os_fd_t fd;
	int rc, one = 1;

	/* libuv 1.44 has no flag for SO_REUSEPORT: to set it the socket is
	 * made now (init_ex with a family) so the options go on before
	 * bind; AF_UNSPEC is uv_tcp_init's socket made at bind or connect. */
	if ((rc = uv_tcp_init_ex(loop, &s->tcp,
	    reuse ? sa->sa_family : AF_UNSPEC)) < 0) {
		net_sess_unref(s);
		return rc;
	}
	s->tcp.data = s;
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	s->conn.data = s;
	uv_timer_start(&s->timer, on_hs_timeout, hs_ms, 0);
	net_sess_ref(s);			/* the caller's */
	rc = 0;
	if (reuse && (rc = uv_fileno((uv_handle_t *)&s->tcp, &fd)) == 0 &&
	    (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0))
		rc = -errno;
	if (rc == 0 && src)
		rc = uv_tcp_bind(&s->tcp, src, 0);
	if (rc == 0)
		rc = uv_tcp_connect(&s->conn, &s->tcp, sa, on_connect);
	if (rc < 0) {
		s->err = rc;
		net_sess_close(s, rc, NULL);	/* on_close will run */
	}
	*out = s;
	return 0;
}

int
net_sess_connect_from(uv_loop_t *loop, const struct cr_identity *id,
    const struct sockaddr *sa, const struct sockaddr *src, const char *name,
    const struct net_sess_ops *ops, void *data, struct net_sess **out)
{
	struct net_sess *s = sess_new(id, ops, data, 1);

	if (!s)
		return -ENOMEM;
	snprintf(s->name, sizeof s->name, "%s", name);
	return sess_dial(loop, s, sa, src, NET_HS_TIMEOUT_MS, 0, out);
}

int
net_sess_connect_relay(uv_loop_t *loop, const struct cr_identity *id,
    const struct sockaddr *sa, const char *name,
    const unsigned char req[NET_RELAY_REQ_BYTES], int is_client,
    const struct net_sess_ops *ops, void *data,
    const struct net_sess_limits *lim, struct net_sess **out)
{
	struct net_sess *s = sess_new(id, ops, data, is_client);

	if (!s)
		return -ENOMEM;
	snprintf(s->name, sizeof s->name, "%s", name);
	net__addr_host(sa, s->host, sizeof s->host);
	memcpy(s->pre, req, sizeof s->pre);
	s->has_pre = 1;
	s->lim = lim;
	/* The relay's answer and the handshake inside, together. */
	return sess_dial(loop, s, sa, NULL,
	    lim && lim->hs_ms ? lim->hs_ms : NET_HS_TIMEOUT_MS, 0, out);
}

int
net_sess_connect_punch(uv_loop_t *loop, const struct cr_identity *id,
    const struct sockaddr *sa, const struct sockaddr *src, int is_client,
    const char *name, const struct net_sess_ops *ops, void *data,
    const struct net_sess_limits *lim, struct net_sess **out)
{
	struct net_sess *s = sess_new(id, ops, data, is_client);

	if (!s)
		return -ENOMEM;
	snprintf(s->name, sizeof s->name, "%s", name);
	net__addr_host(sa, s->host, sizeof s->host);
	s->lim = lim;
	return sess_dial(loop, s, sa, src,
	    lim && lim->hs_ms ? lim->hs_ms : NET_HS_TIMEOUT_MS, 1, out);
}

int
net_sess_accept(uv_stream_t *server, const struct cr_identity *id,
    const struct net_sess_ops *ops, void *data, struct net_sess **out)
{
	return net_sess_accept_lim(server, id, ops, data, NULL, out);
}

int
net_sess_accept_lim(uv_stream_t *server, const struct cr_identity *id,
    const struct net_sess_ops *ops, void *data,
    const struct net_sess_limits *lim, struct net_sess **out)
{
	struct net_sess *s = sess_new(id, ops, data, 0);
	struct sockaddr_storage ss;
	int len = sizeof ss, rc;

	if (!s)
		return -ENOMEM;
	s->lim = lim;
	if ((rc = sess_init_handles(server->loop, s)) < 0) {
		net_sess_unref(s);
		return -ENOMEM;
	}
	if ((rc = uv_accept(server, (uv_stream_t *)&s->tcp)) < 0) {
		net_sess_close(s, rc, NULL);
		return rc;
	}
	if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0) {
		net__addr_name((struct sockaddr *)&ss, s->name, sizeof s->name);
		net__addr_host((struct sockaddr *)&ss, s->host, sizeof s->host);
	}
	uv_tcp_nodelay(&s->tcp, 1);
	uv_timer_start(&s->timer, on_hs_timeout,
	    lim && lim->hs_ms ? lim->hs_ms : NET_HS_TIMEOUT_MS, 0);
	if ((rc = start_reading(s)) < 0) {
		net_sess_close(s, rc, "cannot read");
		return rc;
	}
	*out = s;
	return 0;
}
