/* net/reach.c - can others reach us? The reachability ladder of a node
 * that listens (issue 18, steps 1 and 2):
 *   1. direct: a supplier we connect to dials our listen port back
 *      (DIALBACK, net/supdial.c) and finds our key behind it;
 *   2. mapped: else the home router maps a port through NAT-PMP
 *      (libnatpmp), or UPnP IGD (libminiupnpc) when no NAT-PMP answers,
 *      unless the outside address it reports is itself
 *      private (double NAT: the mapping would lead into another private
 *      network); a dial-back to the mapped port must find our key too.
 *      The lease is renewed at half its life.
 *   3. none: nobody can open a connection to us.
 * Re-checked at start, every recheck_ms and on net_reach_kick() (while
 * mapped, a kick renews the mapping, which also tells whether the
 * router's outside address changed: a full check when it did). Every
 * call here blocks (connects, NAT-PMP round trips): it all runs on the
 * worker thread "net-reach", never on an event loop. */
#include <arpa/inet.h>
#include <errno.h>
#define ENABLE_STRNATPMPERR	/* the library has it; the header hides it */
#include <natpmp.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "log.h"
#include "net/internal.h"
#include "net/net.h"
#include "worker.h"

/* The lease we ask for. Short, so that a mapping left behind by a node
 * that died goes soon; renewed at half its life. */
#define LEASE_S		120
/* A NAT-PMP exchange: libnatpmp's own retries would go on for a minute;
 * a router that answers at all answers within milliseconds. */
#define NATPMP_WAIT_MS	3000
/* UPnP discovery (SSDP): miniupnpd answers in milliseconds; routers that
 * are slow answer within a second or two. */
#define UPNP_DISCOVER_MS	2000
/* One dial-back: our connect and handshake, then the helper's (its
 * handshake deadline, NET_HS_TIMEOUT_MS), then the answer. */
#define DIALBACK_WAIT_MS	(2 * NET_HS_TIMEOUT_MS + 5000)
#define HELPERS_MAX	8
#define SOON_MS		2000	/* nobody could dial us back: again */

struct net_reach {
	struct net_reach_conf conf;
	char *listen;
	uint16_t port;			/* of listen */
	struct worker *w;
	/* net-reach only: */
	enum net_reach_state state;
	char announced[NET_REACH_ADDR_MAX];
	uint16_t mapped_port;
	int by_upnp;			/* the mapping is UPnP's, not NAT-PMP's */
	int listen_private;		/* net_addr_private(listen's host) */
	/* Dial-backs are asked from the listen address (port 0): the helper
	 * dials the address it sees, and a host with several addresses
	 * (the demo's 127.0.N.1) would otherwise be seen at another. */
	struct sockaddr_storage src;
	int have_src;
	int soon;			/* nobody could tell: ask again soon */
	int64_t next_check;		/* worker_now_ms(): a full check */
};

const char *
net_reach_name(enum net_reach_state s)
{
	switch (s) {
	case NET_REACH_DIRECT:
		return "direct";
	case NET_REACH_MAPPED:
		return "mapped";
	case NET_REACH_NONE:
		return "not reachable";
	default:
		return "unknown";
	}
}

int
net_addr_private(const char *host)
{
	struct in_addr a;
	uint32_t v;

	if (inet_pton(AF_INET, host, &a) != 1)
		return 0;
	v = ntohl(a.s_addr);
	return (v >> 24) == 10 || (v >> 20) == (172u << 4 | 1) ||
	    (v >> 16) == (192u << 8 | 168) ||
	    (v >> 22) == (100u << 2 | 1) ||	/* 100.64.0.0/10: carrier NAT */
	    (v >> 16) == (169u << 8 | 254);	/* link-local */
}

/* ---- asking for a dial-back (a client session on a loop of our own) -- */
struct ask {
	struct worker *w;		/* NULL, or stop asking when stopping */
	int64_t deadline;
	const unsigned char *pk;	/* the helper's key, from its record */
	uint16_t port;
	int rc;				/* 1 while unknown */
	struct net_sess *s;
};

static int
ask_on_up(struct net_sess *s)
{
	struct ask *a = s->data;

	if (memcmp(s->peer_pk, a->pk, CR_PK_BYTES) != 0) {
		a->rc = -EKEYREJECTED;
		return -1;
	}
	return 0;
}

static void
ask_on_ready(struct net_sess *s)
{
	struct ask *a = s->data;
	struct net_msg m = { .type = NET_DIALBACK, .reqid = 1, .port = a->port };

	if (net_sess_send(s, &m) < 0)
		net_sess_close(s, -EIO, NULL);
}

static void
ask_on_msg(struct net_sess *s, const struct net_msg *m, unsigned char **buf)
{
	struct ask *a = s->data;

	if (m->type == NET_DIALBACK_OK)
		a->rc = (int)m->result;
	else if (m->type == NET_ERR)
		a->rc = -(int)m->err;
	else
		a->rc = -EPROTO;
	net_sess_close(s, 0, NULL);
}

static void
ask_on_close(struct net_sess *s, int err)
{
	struct ask *a = s->data;

	/* A supplier from before DIALBACK closes the session on it. */
	if (a->rc == 1)
		a->rc = err < 0 ? err : -ECONNRESET;
}

/* Every 200 ms: past the deadline, or our node stopping (a stop must not
 * wait for a slow helper). */
static void
ask_on_tick(uv_timer_t *t)
{
	struct ask *a = t->data;

	if (worker_now_ms() < a->deadline && !(a->w && worker_stopping(a->w)))
		return;
	if (a->rc == 1)
		a->rc = a->w && worker_stopping(a->w) ? -ECANCELED : -ETIMEDOUT;
	net_sess_close(a->s, -ETIMEDOUT, NULL);
}

static const struct net_sess_ops ask_ops = {
	.on_up = ask_on_up, .on_ready = ask_on_ready, .on_msg = ask_on_msg,
	.on_close = ask_on_close,
};

static int
dialback(struct worker *w, const struct cr_identity *id,
    const struct sockaddr *src, const char *via,
    const unsigned char via_pk[CR_PK_BYTES], uint16_t port)
{
	struct sockaddr_storage sa;
	struct ask a = { .w = w, .pk = via_pk, .port = port, .rc = 1,
	    .deadline = worker_now_ms() + DIALBACK_WAIT_MS };
	uv_loop_t loop;
	uv_timer_t timer;
	int rc;

	if ((rc = net__parse_addr(via, &sa)) < 0)
		return rc;
	if ((rc = uv_loop_init(&loop)) < 0)
		return rc;
	uv_timer_init(&loop, &timer);
	timer.data = &a;
	rc = net_sess_connect_from(&loop, id, (struct sockaddr *)&sa, src, via,
	    &ask_ops, &a, &a.s);
	if (rc == 0) {
		uv_timer_start(&timer, ask_on_tick, 200, 200);
		while (a.rc == 1 && uv_run(&loop, UV_RUN_ONCE))
			;
		net_sess_close(a.s, 0, NULL);
		net_sess_unref(a.s);
		rc = a.rc == 1 ? -EIO : a.rc;
	}
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return rc;
}

int
net_reach_dialback(const struct cr_identity *id, const char *via,
    const unsigned char via_pk[CR_PK_BYTES], uint16_t port)
{
	return dialback(NULL, id, NULL, via, via_pk, port);
}

/* Asks the helpers in turn until one answers: 0 our key answered at
 * port, a positive errno it did not, -errno nobody could tell. */
static int
dialback_any(struct net_reach *r, uint16_t port)
{
	char (*addr)[NET_REACH_ADDR_MAX] = calloc(HELPERS_MAX, sizeof *addr);
	unsigned char (*pk)[CR_PK_BYTES] = calloc(HELPERS_MAX, sizeof *pk);
	int n, rc = -ENOENT;

	if (!addr || !pk) {
		free(addr);
		free(pk);
		return -ENOMEM;
	}
	n = r->conf.helpers(r->conf.arg, addr, pk, HELPERS_MAX);
	for (int i = 0; i < n && rc < 0 && !worker_stopping(r->w); i++) {
		rc = dialback(r->w, r->conf.id, r->have_src ?
		    (struct sockaddr *)&r->src : NULL, addr[i], pk[i], port);
		if (rc < 0)
			log_info("reach: %s could not dial us back: %s",
			    addr[i], strerror(-rc));
	}
	free(addr);
	free(pk);
	return rc;
}

/* ---- NAT-PMP ----------------------------------------------------------- */
static int
natpmp_wait(natpmp_t *n, natpmpresp_t *resp)
{
	int64_t deadline = worker_now_ms() + NATPMP_WAIT_MS;
	int rc;

	do {
		struct timeval tv;
		fd_set fds;

		if (worker_now_ms() >= deadline)
			return NATPMP_TRYAGAIN;
		FD_ZERO(&fds);
		FD_SET(n->s, &fds);
		getnatpmprequesttimeout(n, &tv);
		if (tv.tv_sec > 0 || tv.tv_usec > 200000) {
			tv.tv_sec = 0;
			tv.tv_usec = 200000;
		}
		select(n->s + 1, &fds, NULL, NULL, &tv);
		rc = readnatpmpresponseorretry(n, resp);
	} while (rc == NATPMP_TRYAGAIN);
	return rc;
}

/* Maps our TCP port (asking for the same outside port): 0 with the
 * outside address and port, -ENOTSUP no NAT-PMP answer, -EREMOTE the
 * outside address is private (double NAT: refused, the mapping is
 * given back), -EIO the router refused. lease 0 gives the mapping up. */
static int
natpmp_map(struct net_reach *r, uint16_t want, int lease, char *out_host,
    size_t cap, uint16_t *out_port)
{
	natpmp_t n;
	natpmpresp_t resp;
	int rc;

	if ((rc = initnatpmp(&n, 0, 0)) < 0) {
		log_info("reach: NAT-PMP: %s", strnatpmperr(rc));
		return -ENOTSUP;
	}
	rc = sendpublicaddressrequest(&n);
	if (rc >= 0)
		rc = natpmp_wait(&n, &resp);
	if (rc < 0) {
		log_info("reach: NAT-PMP: no outside address from the router: "
		    "%s", rc == NATPMP_TRYAGAIN ? "no answer" : strnatpmperr(rc));
		closenatpmp(&n);
		/* No NAT-PMP there (silence, or a port unreachable): UPnP
		 * may answer. An error from the router is a refusal. */
		return rc == NATPMP_TRYAGAIN || rc == NATPMP_ERR_NOGATEWAYSUPPORT ||
		    rc == NATPMP_ERR_RECVFROM ? -ENOTSUP : -EIO;
	}
	inet_ntop(AF_INET, &resp.pnu.publicaddress.addr, out_host,
	    (socklen_t)cap);
	if (net_addr_private(out_host) && lease) {
		log_warn("reach: NAT-PMP: the router's outside address %s is "
		    "private (a router behind another router): no mapping",
		    out_host);
		closenatpmp(&n);
		return -EREMOTE;
	}
	rc = sendnewportmappingrequest(&n, NATPMP_PROTOCOL_TCP, r->port, want,
	    (uint32_t)lease);
	if (rc >= 0)
		rc = natpmp_wait(&n, &resp);
	closenatpmp(&n);
	if (rc < 0) {
		log_info("reach: NAT-PMP: no mapping of tcp %u: %s", r->port,
		    rc == NATPMP_TRYAGAIN ? "no answer" : strnatpmperr(rc));
		return -EIO;
	}
	*out_port = resp.pnu.newportmapping.mappedpublicport;
	return 0;
}

/* ---- UPnP IGD ----------------------------------------------------------
 * The same contract as natpmp_map(). Each call discovers the router
 * again: renewals are minutes apart, and the router may have changed. */
static int
upnp_map(struct net_reach *r, uint16_t want, int lease, char *out_host,
    size_t cap, uint16_t *out_port)
{
	struct UPNPDev *devs;
	struct UPNPUrls urls;
	struct IGDdatas data;
	char lan[64], ext[40] = "", ports[2][8], leases[16];
	int err = 0, rc;

	if (!(devs = upnpDiscover(UPNP_DISCOVER_MS, NULL, NULL, 0, 0, 2,
	    &err))) {
		log_info("reach: UPnP: no router answered");
		return -ENOTSUP;
	}
	rc = UPNP_GetValidIGD(devs, &urls, &data, lan, sizeof lan);
	freeUPNPDevlist(devs);
	if (rc == 0) {
		log_info("reach: UPnP: no internet gateway device");
		return -ENOTSUP;
	}
	if (rc != 1 || UPNP_GetExternalIPAddress(urls.controlURL,
	    data.first.servicetype, ext) != 0 || !ext[0]) {
		log_info("reach: UPnP: the router has no outside address");
		FreeUPNPUrls(&urls);
		return -EIO;
	}
	snprintf(out_host, cap, "%s", ext);
	if (net_addr_private(ext) && lease) {
		log_warn("reach: UPnP: the router's outside address %s is "
		    "private (a router behind another router): no mapping",
		    ext);
		FreeUPNPUrls(&urls);
		return -EREMOTE;
	}
	snprintf(ports[0], sizeof ports[0], "%u", (unsigned)want);
	snprintf(ports[1], sizeof ports[1], "%u", (unsigned)r->port);
	snprintf(leases, sizeof leases, "%d", lease);
	if (lease)
		rc = UPNP_AddPortMapping(urls.controlURL,
		    data.first.servicetype, ports[0], ports[1], lan, "peerfs",
		    "TCP", NULL, leases);
	else
		rc = UPNP_DeletePortMapping(urls.controlURL,
		    data.first.servicetype, ports[0], "TCP", NULL);
	FreeUPNPUrls(&urls);
	if (rc != 0) {
		log_info("reach: UPnP: no mapping of tcp %u: %s", r->port,
		    strupnperror(rc));
		return -EIO;
	}
	*out_port = want;
	return 0;
}

/* The router's mapping, by the protocol it answers. */
static int
port_map(struct net_reach *r, uint16_t want, int lease, char *out_host,
    size_t cap, uint16_t *out_port)
{
	int rc;

	if (lease && !r->by_upnp) {
		rc = natpmp_map(r, want, lease, out_host, cap, out_port);
		if (rc != -ENOTSUP)
			return rc;
		r->by_upnp = 1;
	}
	if (r->by_upnp)
		return upnp_map(r, want, lease, out_host, cap, out_port);
	return natpmp_map(r, want, lease, out_host, cap, out_port);
}

/* ---- the ladder -------------------------------------------------------- */
static void
set_state(struct net_reach *r, enum net_reach_state st, const char *addr)
{
	if (st == r->state && !strcmp(addr ? addr : "", r->announced))
		return;
	if (st == NET_REACH_NONE)
		log_warn("reach: not reachable from the internet (no direct "
		    "connection, no port mapping): not announced");
	else
		log_info("reach: %s at %s", net_reach_name(st), addr);
	r->state = st;
	snprintf(r->announced, sizeof r->announced, "%s", addr ? addr : "");
	r->conf.on_change(r->conf.arg, st, addr);
}

static void
full_check(struct net_reach *r)
{
	char host[INET_ADDRSTRLEN], hp[NET_REACH_ADDR_MAX];
	uint16_t ext = 0;
	int rc;

	/* Direct only for an address others can dial: a private listen
	 * address that a dial-back reached went through a forward on the
	 * router (ours, while we hold a mapping), and announcing it would
	 * send owners to a private address. */
	r->soon = 0;
	if (!r->listen_private && !r->mapped_port) {
		rc = dialback_any(r, r->port);
		if (rc == 0) {
			set_state(r, NET_REACH_DIRECT, r->listen);
			return;
		}
		if (rc < 0) {
			/* Nobody could tell (none known yet, busy, gone):
			 * keep what we know, ask again soon. */
			log_debug("reach: nobody could dial us back: %s",
			    strerror(-rc));
			r->soon = 1;
			return;
		}
	}
	if (!r->mapped_port)
		r->by_upnp = 0;		/* NAT-PMP first, on a fresh look */
	rc = port_map(r, r->mapped_port ? r->mapped_port : r->port, LEASE_S,
	    host, sizeof host, &ext);
	if (rc == 0) {
		int dr;

		r->mapped_port = ext;
		dr = dialback_any(r, ext);
		snprintf(hp, sizeof hp, "%s:%u", host, (unsigned)ext);
		if (dr == 0) {
			set_state(r, NET_REACH_MAPPED, hp);
			return;
		}
		if (dr < 0) {
			/* The mapping is kept (renewed) until someone can
			 * tell whether it works. */
			log_debug("reach: nobody could dial %s back: %s", hp,
			    strerror(-dr));
			r->soon = 1;
			return;
		}
		log_warn("reach: mapped %s by %s, but a dial-back there "
		    "failed: %s", hp, r->by_upnp ? "UPnP" : "NAT-PMP",
		    strerror(dr));
		port_map(r, ext, 0, host, sizeof host, &ext);
		r->mapped_port = 0;
	}
	set_state(r, NET_REACH_NONE, NULL);
}

/* hp ("HOST:PORT", IPv4: mappings are) names host. */
static int
same_host(const char *hp, const char *host)
{
	size_t n = strlen(host);

	return !strncmp(hp, host, n) && hp[n] == ':';
}

static int64_t
reach_pass(void *arg, int idx)
{
	struct net_reach *r = arg;
	int64_t now = worker_now_ms(), renew = LEASE_S * 1000 / 2;

	if (r->state == NET_REACH_MAPPED && now < r->next_check) {
		char host[INET_ADDRSTRLEN];
		uint16_t ext;

		/* The lease, renewed: the same mapping, asked again. The
		 * answer names the router's outside address: a new one (a
		 * new lease from the provider) needs a new record now, not
		 * at the next full check. */
		int rc = port_map(r, r->mapped_port, LEASE_S, host,
		    sizeof host, &ext);
		if (rc == 0 && ext == r->mapped_port &&
		    same_host(r->announced, host)) {
			int64_t left = r->next_check - now;
			return left < renew ? left : renew;
		}
		if (rc == 0 && ext == r->mapped_port)
			log_warn("reach: the router's outside address is now "
			    "%s (announced %s)", host, r->announced);
		else
			log_warn("reach: the %s mapping could not be renewed",
			    r->by_upnp ? "UPnP" : "NAT-PMP");
	}
	full_check(r);
	r->next_check = worker_now_ms() + r->conf.recheck_ms;
	if (r->soon)
		return SOON_MS;
	if (r->state == NET_REACH_MAPPED)
		return renew < r->conf.recheck_ms ? renew : r->conf.recheck_ms;
	return r->conf.recheck_ms;
}

int
net_reach_start(struct net_reach **out, const struct net_reach_conf *conf)
{
	struct net_reach *r;
	struct sockaddr_storage sa;
	int rc;

	if (!conf->id || !conf->listen || !conf->helpers || !conf->on_change ||
	    conf->recheck_ms <= 0)
		return -EINVAL;
	if ((rc = net__parse_addr(conf->listen, &sa)) < 0)
		return rc;
	if (!(r = calloc(1, sizeof *r)))
		return -ENOMEM;
	r->conf = *conf;
	if (!(r->listen = strdup(conf->listen))) {
		free(r);
		return -ENOMEM;
	}
	if (sa.ss_family == AF_INET) {
		char host[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host,
		    sizeof host);
		r->listen_private = net_addr_private(host) && !conf->lan;
	}
	r->port = ntohs(sa.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&sa)->sin_port :
	    ((struct sockaddr_in6 *)&sa)->sin6_port);
	r->src = sa;
	if (sa.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&r->src;
		s4->sin_port = 0;
		r->have_src = s4->sin_addr.s_addr != htonl(INADDR_ANY);
	} else if (sa.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&r->src;
		s6->sin6_port = 0;
		r->have_src = !IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
	}
	struct worker_conf wc = { .name = "net-reach", .pass = reach_pass,
	    .arg = r };
	if ((rc = worker_start(&r->w, &wc)) < 0) {
		free(r->listen);
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void
net_reach_kick(struct net_reach *r)
{
	if (r)
		worker_kick(r->w);
}

void
net_reach_stop(struct net_reach *r)
{
	if (!r)
		return;
	worker_stop(r->w);
	if (r->state == NET_REACH_MAPPED) {
		char host[INET_ADDRSTRLEN];
		uint16_t ext;

		port_map(r, r->mapped_port, 0, host, sizeof host, &ext);
	}
	free(r->listen);
	free(r);
}
