/* net/punch.c - hole punching, the owner's side (issue 18): a session
 * to a supplier through a relay becomes a direct connection when both
 * home routers keep ports (Linux masquerade does, unless told to
 * randomise them).
 *
 * The relay told each end the other's address as it sees it (its answer
 * to the circuit, net/internal.h). We pick a local port and send PUNCH
 * with it over the relayed session. The supplier connects from its
 * listen port to our address at that port (its router now expects us),
 * then answers PUNCH_OK with its listen port; we connect from our port
 * to its address at that one as the answer arrives, half a round trip
 * after its connect left. Our connect passes its router as the answer to
 * its own; its connect reached our router before we had sent anything
 * and was dropped there, so ours is the one that goes through and the
 * two sockets meet (TCP simultaneous open; the kernel retries the lost
 * SYN by itself). The handshake then runs on the new connection as on
 * any: we are the client and check the key is the supplier's. Only then
 * does the relayed session give way (net__peer_take_direct).
 *
 * A router that randomises ports maps the supplier's connect elsewhere:
 * nothing meets, the try times out. After PUNCH_TRIES failed tries in a
 * row the session stays relayed and the next round starts
 * PUNCH_AGAIN_MS later, with one log line per round.
 *
 * Loop thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net/internal.h"

#define PUNCH_TRIES	3
#define PUNCH_RETRY_MS	2000		/* between tries of a round */
#define PUNCH_AGAIN_MS	(10 * 60 * 1000)	/* between rounds */
#define PUNCH_HS_MS	4000		/* connect and handshake of a try */

struct punch_try {
	struct net_req r;		/* PUNCH */
	struct net_peer *p;
	struct sockaddr_storage src;	/* our port */
};

/* Only the handshake's deadline: afterwards the session is the
 * client's, which has none. */
static const struct net_sess_limits punch_lim = { .hs_ms = PUNCH_HS_MS };

static void
try_failed(struct net_peer *p, const char *why, int give_up)
{
	uint64_t now = uv_now(&p->n->loop);

	p->punch_busy = 0;
	if (!give_up && ++p->punch_tries < PUNCH_TRIES) {
		log_debug("supplier %s: hole punching try %d failed: %s",
		    p->addr, p->punch_tries, why);
		p->punch_next = now + PUNCH_RETRY_MS;
		return;
	}
	log_info("supplier %s: no direct connection (%s): stays relayed, "
	    "next try in %d min", p->addr, why, PUNCH_AGAIN_MS / 60000);
	p->punch_tries = 0;
	p->punch_next = now + PUNCH_AGAIN_MS;
}

static int
try_on_up(struct net_sess *s)
{
	struct punch_try *t = s->data;
	struct net_peer *p = t->p;

	if (!p->have_pk || memcmp(s->peer_pk, p->pk, CR_PK_BYTES) != 0) {
		log_warn("supplier %s: another key answered the punched "
		    "connection: refused", p->addr);
		return -1;
	}
	return 0;
}

static void
try_on_ready(struct net_sess *s)
{
	struct punch_try *t = s->data;
	struct net_peer *p = t->p;

	log_info("supplier %s: direct (punched) after %d tries", p->addr,
	    p->punch_tries + 1);
	p->punch_s = NULL;
	p->punch_busy = 0;
	p->punch_tries = 0;
	free(t);
	net__peer_take_direct(p, s);
}

static void
try_on_msg(struct net_sess *s, const struct net_msg *m, unsigned char **buf)
{
	net_sess_close(s, -EPROTO, "unexpected message");
}

static void
try_on_close(struct net_sess *s, int err)
{
	struct punch_try *t = s->data;
	struct net_peer *p = t->p;

	if (p->punch_s == s) {
		p->punch_s = NULL;
		net_sess_unref(s);
		try_failed(p, err ? uv_strerror(err) : "closed", 0);
	}
	free(t);
}

static const struct net_sess_ops try_ops = {
	.on_up = try_on_up, .on_ready = try_on_ready, .on_msg = try_on_msg,
	.on_close = try_on_close,
};

/* The supplier's answer: it has connected towards us; our turn. */
static void
punch_answered(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	struct punch_try *t = r->arg;
	struct net_peer *p = t->p;
	struct sockaddr_storage dst;
	char hp[80];

	if (rc < 0 && !p->s) {
		/* Lost with the session (logged as such): a supplier from
		 * before PUNCH closes it on one, so not again soon. */
		p->punch_busy = 0;
		p->punch_tries = 0;
		p->punch_next = uv_now(&p->n->loop) + PUNCH_AGAIN_MS;
		free(t);
		return;
	}
	if (rc < 0) {
		/* Refused: not again soon, except when it was only busy. */
		try_failed(p, m && m->type == NET_ERR ? "refused" :
		    strerror(-rc), rc != -EAGAIN);
		free(t);
		return;
	}
	if (!p->s || !p->s->relay_obs[0]) {
		try_failed(p, "relayed session gone", 0);
		free(t);
		return;
	}
	snprintf(hp, sizeof hp, strchr(p->s->relay_obs, ':') ? "[%s]:%u" :
	    "%s:%u", p->s->relay_obs, (unsigned)m->port);
	if (net__parse_addr(hp, &dst) < 0 ||
	    dst.ss_family != t->src.ss_family) {
		try_failed(p, "no address to punch to", 1);
		free(t);
		return;
	}
	rc = net_sess_connect_punch(&p->n->loop, p->n->conf.id,
	    (struct sockaddr *)&dst, (struct sockaddr *)&t->src, 1, p->addr,
	    &try_ops, t, &punch_lim, &p->punch_s);
	if (rc < 0) {
		p->punch_s = NULL;
		try_failed(p, uv_strerror(rc), 0);
		free(t);
	}
	/* else try_on_ready or try_on_close takes it from here. */
}

/* A free local port of the family of the supplier's address: bound and
 * let go at once (never connected: nothing lingers), bound again by the
 * try. */
static int
pick_port(int family, struct sockaddr_storage *src)
{
	socklen_t len = sizeof *src;
	int fd, rc = 0;

	memset(src, 0, sizeof *src);
	src->ss_family = (sa_family_t)family;
	len = family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)src, len) < 0 ||
	    getsockname(fd, (struct sockaddr *)src, &len) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

void
net__punch_tick(struct net_peer *p, uint64_t now)
{
	struct sockaddr_storage obs;
	struct punch_try *t;
	char hp[80];
	int rc;

	if (!p->relayed || p->punched || p->punch_busy || p->s_old ||
	    !net__peer_up(p) || !p->s->has_pre || !p->s->relay_obs[0] ||
	    now < p->punch_next)
		return;
	snprintf(hp, sizeof hp, strchr(p->s->relay_obs, ':') ? "[%s]:1" :
	    "%s:1", p->s->relay_obs);
	if (net__parse_addr(hp, &obs) < 0) {
		try_failed(p, "the relay named no address", 1);
		return;
	}
	if (!(t = calloc(1, sizeof *t)))
		return;
	if ((rc = pick_port(obs.ss_family, &t->src)) < 0) {
		free(t);
		try_failed(p, strerror(-rc), 1);
		return;
	}
	t->p = p;
	t->r.msg.type = NET_PUNCH;
	t->r.msg.port = (uint16_t)net__sa_port((struct sockaddr *)&t->src);
	t->r.cb = punch_answered;
	t->r.arg = t;
	if (net__req_send(p, &t->r) < 0) {
		free(t);
		return;
	}
	p->punch_busy = 1;
}

void
net__punch_drop(struct net_peer *p)
{
	struct net_sess *s = p->punch_s;

	if (!s)
		return;
	/* try_on_close still frees the try; it no longer counts. */
	p->punch_s = NULL;
	p->punch_busy = 0;
	net_sess_close(s, 0, NULL);
	net_sess_unref(s);
}
