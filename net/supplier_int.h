/* net/supplier_int.h - what the supplier's own files share and the rest
 * of net/ has no business with: struct supplier, one per
 * net_supplier_run, and the calls between net/supplier.c (the loop, the
 * requests and their bytes), net/supadmit.c (who gets a session) and
 * net/supdial.c (the connections a peer asks us to open). net/internal.h
 * keeps struct supplier opaque for net/supwork.c, which runs on the
 * thread pool and needs none of it. The calls below: the supplier's loop
 * thread only. */
#ifndef PEERFS_NET_SUPPLIER_INT_H
#define PEERFS_NET_SUPPLIER_INT_H

#include <stdint.h>

#include "net/internal.h"
#include "net/net.h"

#define REJECT_SPARE	8		/* handles to accept and close */

struct reject {
	uv_tcp_t tcp;
	struct supplier *sup;
	int busy;			/* closing */
	int spare;			/* in sup->rej[], else malloc()'d */
};

struct supplier {
	uv_loop_t loop;
	uv_tcp_t listener;
	uv_signal_t sigint, sigterm;
	uv_signal_t sigusr1;		/* `peerfs supplier evict` asks */
	uv_timer_t dealt;		/* the fair deal's eviction checks */
	int evicting;
	/* Refusals of owners' data are logged at most once a second, with
	 * a count of the ones not logged: a stranger sending thousands of
	 * refused requests must not fill the log. */
	uint64_t refused_logged_ms;
	uint64_t refused_quiet;
	uv_timer_t report;		/* rate-limited log lines */
	uv_timer_t retry;		/* accept and close, memory back */
	const struct net_supplier_conf *conf;
	struct net_sess *sessions;	/* list through next/prev */
	unsigned nsess;
	int stopping;
	/* Limits in force (conf, else defaults). */
	unsigned max_sessions, max_per_addr, max_per_key, slots;
	size_t inflight_max;
	unsigned test_fail_accept;	/* sessions left to fail (tests) */
	struct net_sess_limits lim;	/* every session points here */
	/* Bytes coming in: frames being read (fr_charge) and requests
	 * waiting for the disk (their own bytes). Committed: charges of
	 * requests on the thread pool, and unsent writes (the sessions'
	 * queued, kept by net/sess.c through lim.queued_total). */
	size_t in_total, run_total, queued_total;
	unsigned running;		/* requests on the thread pool */
	unsigned ngblocked;		/* sessions waiting for inflight_max */
	unsigned nrr;			/* sessions in the ring */
	struct net_sess *rr;		/* sessions with queued requests */
	struct reject rej[REJECT_SPARE];
	struct net_ratelog refused, closed, failed;
	/* The one dial-back in flight (NULL: none), and when the last one
	 * started (uv_now), for DIALBACK_EVERY_MS. */
	struct dialback *db;
	uint64_t db_last_ms;
	/* --relay (net/relay.c); NULL: not a relay. */
	struct net_relay *relay;
	/* Our reservations on relays, when we need them; NULL: never. */
	struct net_relay_client *rclient;
	struct net_relay_client_conf rc_conf;
	/* Hole punching (PUNCH): our listen address (its port is where
	 * punched connections start), when the last one started, and the
	 * limits of punched sessions (a short handshake deadline). */
	struct sockaddr_storage listen_sa;
	uint64_t punch_last_ms;
	struct net_sess_limits punch_lim;
};

/* A dial-back asked by a session (DIALBACK): the dialing session and
 * what it must find. */
struct dialback {
	struct supplier *sup;
	struct net_sess *asker;		/* a reference held */
	uint64_t reqid;
	unsigned char want[CR_PK_BYTES];
	struct net_sess *out;		/* a reference held */
	int result;			/* -1 while unknown, else errno, 0 */
	char target[80];
};

/* ---- net/supplier.c ---- */

/* The session ops of every session the supplier serves: accepted, from a
 * circuit, or punched. */
extern const struct net_sess_ops net__sup_ops;
/* An ERR answering reqid: rc with msg (_text), or with err_text's words
 * for a request of this type (a refusal, in the owner's words). */
void net__sup_reply_err_text(struct net_sess *s, uint64_t reqid, int rc,
    const char *msg);
void net__sup_reply_err(struct net_sess *s, uint64_t reqid, uint8_t type,
    int rc);

/* ---- net/supadmit.c ---- */

/* A connection on the listener (uv_listen's callback): a session, or
 * accepted and closed. */
void net__sup_on_conn(uv_stream_t *server, int status);
/* A circuit offered through one of our reservations (the relay client's
 * take). 0, or -errno: not taken. */
int  net__sup_take_circuit(void *arg, const struct sockaddr *relay,
    const char *name, const unsigned char *req);
/* s, a session we opened, counts as ours: -EUSERS (s closed) past the
 * cap per address. */
int  net__sup_adopt(struct supplier *sup, struct net_sess *s);
/* The per-key cap, once the handshake names the key (net__sup_ops). */
int  net__sup_on_up(struct net_sess *s);
/* The minute's counts of refusals, closed sessions, failed requests. */
void net__sup_on_report(uv_timer_t *t);

/* ---- net/supdial.c ---- */

/* The handshake deadline of a punched session (sup->punch_lim, set with
 * the other limits in net/supplier.c). */
#define PUNCH_HS_MS	5000

/* DIALBACK and PUNCH on s: each answers reqid, now or later. */
void net__sup_handle_dialback(struct supplier *sup, struct net_sess *s,
    uint64_t reqid, uint16_t port);
void net__sup_handle_punch(struct supplier *sup, struct net_sess *s,
    uint64_t reqid, uint16_t port);

#endif
