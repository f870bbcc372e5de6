/* net/supdial.c - the connections a supplier opens because a peer asked:
 * a dial-back (DIALBACK: can others reach the asker?) and hole punching
 * (PUNCH: a direct connection for an owner that reaches us through a
 * relay). Anyone may ask, so neither may make us dial third parties or
 * dial often: each goes only to the asker's own address, at one rate over
 * all askers. Apart from net/supplier.c because they are connections out,
 * asked for by others, with rules of their own; net/supplier.c decodes
 * the requests (on_msg) and serves a punched session like any other.
 * Loop thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/internal.h"
#include "net/net.h"
#include "net/supplier_int.h"

/* ---- dial-back -------------------------------------------------------
 * A node that wants to know whether others can reach it asks us to
 * connect back. We only ever dial the asker's own address as we see it
 * (a port of its choosing), one dial at a time and at most one started
 * per DIALBACK_EVERY_MS over all askers: nobody can make us dial third
 * parties, or anyone often. The handshake's deadline bounds each dial. */
#define DIALBACK_EVERY_MS	1000

static void
db_on_msg(struct net_sess *s, const struct net_msg *m, unsigned char **buf)
{
	(void)m;
	(void)buf;
	net_sess_close(s, -EPROTO, NULL);
}

/* The key behind the address: the handshake proved it. We never stay. */
static int
db_on_up(struct net_sess *s)
{
	struct dialback *db = s->data;

	db->result = memcmp(s->peer_pk, db->want, CR_PK_BYTES) ?
	    EKEYREJECTED : 0;
	return -1;
}

static void
db_on_close(struct net_sess *s, int err)
{
	struct dialback *db = s->data;
	struct supplier *sup = db->sup;
	struct net_msg m = { .type = NET_DIALBACK_OK, .reqid = db->reqid };

	if (db->result < 0)
		db->result = err < 0 && -err <= 4095 ? -err : ECONNRESET;
	log_info("supplier: dial-back to %s: %s", db->target,
	    db->result ? strerror(db->result) : "its key answered");
	m.result = (uint32_t)db->result;
	if (db->asker->state == NET_SESS_UP && net_sess_send(db->asker, &m) < 0)
		net_sess_close(db->asker, -EIO, "cannot send reply");
	net_sess_unref(db->asker);
	net_sess_unref(db->out);
	if (sup->db == db)
		sup->db = NULL;
	free(db);
}

static const struct net_sess_ops db_ops = {
	.on_up = db_on_up, .on_msg = db_on_msg, .on_close = db_on_close,
};

void
net__sup_handle_dialback(struct supplier *sup, struct net_sess *s,
    uint64_t reqid, uint16_t port)
{
	struct sockaddr_storage sa;
	struct dialback *db;
	char hp[80];
	uint64_t now = uv_now(&sup->loop);
	int rc;

	if (sup->stopping || sup->db ||
	    (sup->db_last_ms && now - sup->db_last_ms < DIALBACK_EVERY_MS)) {
		net__sup_reply_err_text(s, reqid, -EAGAIN,
		    "dial-back busy: ask later");
		return;
	}
	snprintf(hp, sizeof hp, strchr(s->host, ':') ? "[%s]:%u" : "%s:%u",
	    s->host, (unsigned)port);
	if (net__parse_addr(hp, &sa) < 0 || !(db = calloc(1, sizeof *db))) {
		net__sup_reply_err(s, reqid, NET_DIALBACK, -EINVAL);
		return;
	}
	db->sup = sup;
	db->asker = s;
	db->reqid = reqid;
	db->result = -1;
	memcpy(db->want, s->peer_pk, CR_PK_BYTES);
	snprintf(db->target, sizeof db->target, "%s", hp);
	net_sess_ref(s);
	sup->db = db;
	sup->db_last_ms = now;
	/* On failure on_close has run (or runs): it answers and frees. */
	if ((rc = net_sess_connect(&sup->loop, sup->conf->id,
	    (struct sockaddr *)&sa, hp, &db_ops, db, &db->out)) < 0) {
		sup->db = NULL;
		net_sess_unref(s);
		free(db);
		net__sup_reply_err(s, reqid, NET_DIALBACK, rc);
	}
}

/* ---- hole punching (PUNCH, net/punch.c has the owner's side) ---------
 * An owner that reaches us through a relay asks for a direct connection.
 * We connect from our listen port to its address as the relay saw it (a
 * port of its choosing): our router then lets its connect in, and the
 * two meet (TCP simultaneous open); the owner runs the handshake as on
 * any session. Only to the asker's own address, one started per
 * PUNCH_EVERY_MS over all askers: nobody can make us dial others, or
 * anyone often. */
#define PUNCH_EVERY_MS	200

void
net__sup_handle_punch(struct supplier *sup, struct net_sess *s,
    uint64_t reqid, uint16_t port)
{
	struct net_msg m = { .type = NET_PUNCH_OK, .reqid = reqid };
	struct sockaddr_storage sa;
	struct net_sess *ps;
	char hp[80], name[96];
	uint64_t now = uv_now(&sup->loop);
	int rc;

	if (!s->has_pre || !s->relay_obs[0]) {
		net__sup_reply_err_text(s, reqid, -EOPNOTSUPP,
		    "not through a relay that says where you are");
		return;
	}
	if (sup->stopping || sup->nsess >= sup->max_sessions ||
	    (sup->punch_last_ms && now - sup->punch_last_ms < PUNCH_EVERY_MS)) {
		net__sup_reply_err_text(s, reqid, -EAGAIN,
		    "hole punching busy: ask later");
		return;
	}
	snprintf(hp, sizeof hp, strchr(s->relay_obs, ':') ? "[%s]:%u" :
	    "%s:%u", s->relay_obs, (unsigned)port);
	if (net__parse_addr(hp, &sa) < 0 ||
	    sa.ss_family != sup->listen_sa.ss_family) {
		net__sup_reply_err_text(s, reqid, -EINVAL,
		    "no address to punch to");
		return;
	}
	sup->punch_last_ms = now;
	snprintf(name, sizeof name, "%s (punched)", hp);
	/* Ours goes out first: when the owner's arrives, our router has
	 * seen this pair and lets it in. */
	rc = net_sess_connect_punch(&sup->loop, sup->conf->id,
	    (struct sockaddr *)&sa, (struct sockaddr *)&sup->listen_sa, 0,
	    name, &net__sup_ops, sup, &sup->punch_lim, &ps);
	if (rc < 0) {
		net__sup_reply_err(s, reqid, NET_PUNCH, rc);
		return;
	}
	net_sess_unref(ps);		/* the socket's reference remains */
	if (net__sup_adopt(sup, ps) < 0) {
		net__sup_reply_err_text(s, reqid, -EUSERS,
		    "too many sessions");
		return;
	}
	m.port = (uint16_t)net__sa_port((struct sockaddr *)&sup->listen_sa);
	if (net_sess_send(s, &m) < 0)
		net_sess_close(s, -EIO, "cannot send reply");
}
