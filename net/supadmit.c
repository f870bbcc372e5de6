/* net/supadmit.c - who gets a session of the supplier's: the caps (in
 * all, per address, per key) checked when a connection arrives, a relay
 * offers a circuit, a punched connection starts or a handshake names its
 * key, and what becomes of a connection refused. Strangers may connect
 * without end, so a refusal must cost next to nothing: the connection is
 * still accepted (libuv polls the listener again only then), on one of a
 * few spare handles, and closed; each reason is logged once per address
 * and minute (net_ratelog), the rest counted. net/supplier.c serves the
 * sessions admitted. Loop thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/internal.h"
#include "net/net.h"
#include "net/supplier_int.h"

/* ---- refusals ---------------------------------------------------------- */
/* arg: what was counted, e.g. "refused %llu connections". */
static void
report_line(void *arg, const char *who, const char *what, uint64_t n)
{
	char head[64];

	snprintf(head, sizeof head, arg, (unsigned long long)n);
	log_warn("supplier: %s from %s in the last minute: %s", head, who,
	    what);
}

void
net__sup_on_report(uv_timer_t *t)
{
	struct supplier *sup = t->data;

	net_ratelog_report(&sup->refused, report_line,
	    "refused %llu connections");
	net_ratelog_report(&sup->closed, report_line,
	    "closed %llu more sessions");
	net_ratelog_report(&sup->failed, report_line,
	    "%llu more requests failed");
}

static void
refused(struct supplier *sup, const char *host, const char *why)
{
	if (net_ratelog_hit(&sup->refused, host, why))
		log_warn("supplier: refused a connection from %s: %s (more "
		    "are counted, one line a minute)", host, why);
}

static void
on_reject_closed(uv_handle_t *h)
{
	struct reject *r = h->data;

	if (r->spare)
		r->busy = 0;
	else
		free(r);
}

static void accept_and_close(struct supplier *sup, const char *why);

static void
on_retry(uv_timer_t *t)
{
	accept_and_close(t->data, "out of memory");
}

/* Takes the pending connection and closes it: libuv polls the listener
 * again only once someone has accepted what it holds, so a connection we
 * cannot serve must still be accepted. Allocates nothing when it can. */
static void
accept_and_close(struct supplier *sup, const char *why)
{
	struct reject *r = NULL;
	struct sockaddr_storage ss;
	char host[48] = "?";
	int len = sizeof ss;

	for (int i = 0; i < REJECT_SPARE && !r; i++)
		if (!sup->rej[i].busy)
			r = &sup->rej[i];
	if (!r && (r = calloc(1, sizeof *r)))
		r->spare = 0;
	if (!r) {
		/* Not even that: try again soon, the listener waits. */
		if (!sup->stopping)
			uv_timer_start(&sup->retry, on_retry, 100, 0);
		return;
	}
	r->sup = sup;
	r->busy = 1;
	uv_tcp_init(&sup->loop, &r->tcp);
	r->tcp.data = r;
	if (uv_accept((uv_stream_t *)&sup->listener,
	    (uv_stream_t *)&r->tcp) == 0) {
		if (uv_tcp_getpeername(&r->tcp, (struct sockaddr *)&ss,
		    &len) == 0)
			net__addr_host((struct sockaddr *)&ss, host,
			    sizeof host);
		refused(sup, host, why);
	}
	uv_close((uv_handle_t *)&r->tcp, on_reject_closed);
}

static unsigned
count_sessions(struct supplier *sup, const struct net_sess *s, int by_key)
{
	unsigned n = 0;

	for (struct net_sess *o = sup->sessions; o; o = o->next) {
		if (o == s || o->state == NET_SESS_CLOSED)
			continue;
		if (by_key ? o->state == NET_SESS_UP &&
		    memcmp(o->peer_pk, s->peer_pk, CR_PK_BYTES) == 0 :
		    strcmp(o->host, s->host) == 0)
			n++;
	}
	return n;
}

int
net__sup_on_up(struct net_sess *s)
{
	struct supplier *sup = s->data;

	if (count_sessions(sup, s, 1) >= sup->max_per_key) {
		refused(sup, s->host, "per-key cap");
		return -1;
	}
	log_debug("supplier: session %s up", s->name);
	return 0;
}

static void
sup_add(struct supplier *sup, struct net_sess *s)
{
	s->next = sup->sessions;
	if (s->next)
		s->next->prev = s;
	sup->sessions = s;
	sup->nsess++;
}

/* A circuit offered through one of our reservations: we connect to the
 * relay and serve the owner inside it like any session of ours. */
int
net__sup_take_circuit(void *arg, const struct sockaddr *relay,
    const char *name, const unsigned char *req)
{
	struct supplier *sup = arg;
	struct net_sess *s;
	int rc;

	if (sup->stopping || sup->nsess >= sup->max_sessions)
		return -EUSERS;
	rc = net_sess_connect_relay(&sup->loop, sup->conf->id, relay, name,
	    req, 0, &net__sup_ops, sup, &sup->lim, &s);
	if (rc < 0)
		return rc;
	net_sess_unref(s);		/* the socket's reference remains */
	return net__sup_adopt(sup, s);
}

/* A session we opened (a circuit, a punched connection) is counted as
 * ours, within the cap per address: through one relay as from one
 * address, so a relay that offers circuits without end gets no more
 * sessions than that. */
int
net__sup_adopt(struct supplier *sup, struct net_sess *s)
{
	sup_add(sup, s);
	if (count_sessions(sup, s, 0) >= sup->max_per_addr) {
		refused(sup, s->host, "per-address cap");
		net_sess_close(s, -EUSERS, NULL);
		return -EUSERS;
	}
	return 0;
}

void
net__sup_on_conn(uv_stream_t *server, int status)
{
	struct supplier *sup = server->data;
	struct net_sess *s;
	int rc;

	if (status < 0) {
		/* libuv already closed it (EMFILE: its reserve fd trick). */
		refused(sup, "?", uv_strerror(status));
		return;
	}
	if (sup->stopping) {
		accept_and_close(sup, "stopping");
		return;
	}
	if (sup->nsess >= sup->max_sessions) {
		accept_and_close(sup, "global cap");
		return;
	}
	if (sup->test_fail_accept) {
		sup->test_fail_accept--;
		rc = -ENOMEM;
	} else {
		rc = net_sess_accept_lim(server, sup->conf->id, &net__sup_ops,
		    sup, &sup->lim, &s);
	}
	if (rc == -ENOMEM) {
		accept_and_close(sup, "out of memory");
		return;
	}
	if (rc < 0) {
		refused(sup, "?", uv_strerror(rc));
		return;
	}
	sup_add(sup, s);
	if (count_sessions(sup, s, 0) >= sup->max_per_addr) {
		refused(sup, s->host, "per-address cap");
		net_sess_close(s, -EUSERS, NULL);
	}
}
