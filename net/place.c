/* net/place.c - where fragments may go: which suppliers take new ones,
 * which is better, the address-block and vetting rules every placement
 * (upload and rebuild) obeys, and the refusals that pause a supplier.
 * Loop thread, except the pure rules (net_same_block, net_place_ok,
 * net_place_unvetted_max, net_place_doubled) that the owner and tests call
 * directly. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net/internal.h"

/* May take new fragments: up and trusted (not SUSPECT, not DEAD). */
int
net__peer_usable(const struct net_peer *p)
{
	return p->state == NET_PEER_ONLINE && net__peer_up(p);
}

/* May take new fragments now: usable, and no refusal of ours lately. */
int
net__peer_placeable(const struct net_peer *p)
{
	if (!net__peer_usable(p))
		return 0;
	return !p->refusal[0] ||
	    uv_now(&p->n->loop) - p->refused_at >= NET_REFUSED_MS;
}

int
net__is_refusal(int rc)
{
	return rc == -EDQUOT || rc == -ENOSPC || rc == -EACCES;
}

void
net__peer_refused(struct net_peer *p, int rc, const struct net_msg *m)
{
	char why[sizeof p->refusal];
	size_t n = 0;

	if (m && m->type == NET_ERR && m->errmsg_len) {
		/* Its words, printable ASCII only: they reach our log and
		 * the user's terminal. */
		for (size_t i = 0; i < m->errmsg_len && n < sizeof why - 1; i++)
			why[n++] = m->errmsg[i] >= 0x20 && m->errmsg[i] < 0x7f ?
			    m->errmsg[i] : '?';
		why[n] = '\0';
	} else {
		snprintf(why, sizeof why, "%s", rc == -EDQUOT ?
		    "quota exceeded" : rc == -EACCES ? "not admitted" :
		    "supplier full");
	}
	if (strcmp(why, p->refusal) != 0)
		log_warn("supplier %s refuses our data: %s", p->addr, why);
	snprintf(p->refusal, sizeof p->refusal, "%s", why);
	p->refused_at = uv_now(&p->n->loop);
	p->refusals++;
	p->grant_count = 0;
}

int
net__peer_lagging(const struct net_peer *p)
{
	return p->lags && uv_now(&p->n->loop) - p->lagged_at < NET_LAG_MS;
}

/* Not lagging first (net__peer_lagging), then most space, then lowest
 * rtt (unknown rtt last). */
int
net__peer_better(const struct net_peer *a, const struct net_peer *b)
{
	uint64_t aa = a->have_pong ? a->avail : 0, ba = b->have_pong ? b->avail : 0;
	double ar = a->rtt_ms < 0 ? 1e9 : a->rtt_ms;
	double br = b->rtt_ms < 0 ? 1e9 : b->rtt_ms;

	int al = net__peer_lagging(a), bl = net__peer_lagging(b);

	/* One that lagged behind the others lately comes after the rest,
	 * whatever its space: its fragments are the ones a block waits on. */
	if (al != bl)
		return bl;
	/* Differences below 64 MiB are noise between similar disks. */
	if (aa / (64u << 20) != ba / (64u << 20))
		return aa > ba;
	return ar < br;
}

/* ==== placement rules =================================================== */

/* Loopback is one machine, used by the demo and the tests: address blocks
 * say nothing there (every supplier would share 127.0.0.0/24). */
static int
is_loopback(const struct sockaddr_storage *x)
{
	if (x->ss_family == AF_INET)
		return ((const unsigned char *)&((const struct sockaddr_in *)
		    x)->sin_addr)[0] == 127;
	if (x->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)
		    x)->sin6_addr);
	return 0;
}

/* An IPv4 address in a private range (net_addr_private). */
static int
is_private(const struct sockaddr_storage *x)
{
	char host[INET_ADDRSTRLEN];

	return x->ss_family == AF_INET &&
	    inet_ntop(AF_INET, &((const struct sockaddr_in *)x)->sin_addr,
	    host, sizeof host) && net_addr_private(host);
}

int
net_same_block(const struct sockaddr_storage *x,
    const struct sockaddr_storage *y)
{
	if (x->ss_family != y->ss_family || is_loopback(x) || is_loopback(y))
		return 0;
	if (x->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)x)->sin_addr,
		    &((const struct sockaddr_in *)y)->sin_addr, 3) == 0;
	if (x->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)x)->sin6_addr,
		    &((const struct sockaddr_in6 *)y)->sin6_addr, 6) == 0;
	return 0;
}

int
net_place_ok(const struct net_slot *held, int nheld,
    const struct net_slot *c, int unvetted_max)
{
	int unvetted = 0;

	for (int i = 0; i < nheld; i++) {
		if (!held[i].relayed && !c->relayed && !held[i].lan &&
		    !c->lan && net_same_block(held[i].sa, c->sa))
			return 0;
		unvetted += !held[i].vetted;
	}
	return c->vetted || unvetted < unvetted_max;
}

int
net_place_relayed_ok(const struct net_slot *held, int nheld,
    const struct net_slot *c, int relayed_max)
{
	int relayed = 0;

	if (!c->relayed)
		return 1;
	for (int i = 0; i < nheld; i++)
		relayed += held[i].relayed;
	return relayed < relayed_max;
}

int
net_place_unvetted_max(int total, const struct net_slot *c, int nc)
{
	int blocks = 0;

	/* Vetted suppliers in distinct address blocks: as many fragments
	 * as they can take need no new supplier. */
	for (int i = 0; i < nc; i++) {
		int seen = !c[i].vetted;
		for (int j = 0; j < i && !seen; j++)
			seen = c[j].vetted && !c[j].lan && !c[i].lan &&
			    net_same_block(c[j].sa, c[i].sa);
		blocks += !seen;
	}
	return total - blocks > 1 ? total - blocks : 1;
}

static int
vetted_cmp(const void *a, const void *b)
{
	return memcmp(a, b, CR_PK_BYTES);
}

/* Has passed audits long enough (net_set_vetted). Loop thread. */
static int
peer_vetted(const struct net_peer *p)
{
	const struct net *n = p->n;

	if (n->vet_all)
		return 1;
	return p->have_pk && n->nvetted && bsearch(p->pk, n->vetted,
	    n->nvetted, CR_PK_BYTES, vetted_cmp) != NULL;
}

static void
slot_of(struct net_slot *s, const struct net_peer *p)
{
	s->sa = &p->sa;
	s->vetted = peer_vetted(p);
	s->relayed = p->relayed;
	s->lan = p->n->conf.lan && is_private(&p->sa);
}

/* What the placeable peers allow: net_place_unvetted_max over them. */
int
net__unvetted_max_now(struct net *n, int total)
{
	struct net_slot *c;
	int nc = 0, r;

	if (!(c = calloc((size_t)n->npeers + 1, sizeof *c)))
		return 1;
	for (struct net_peer *p = n->peers; p; p = p->next)
		if (net__peer_placeable(p))
			slot_of(&c[nc++], p);
	r = net_place_unvetted_max(total, c, nc);
	free(c);
	return r;
}

/* 1 when p may take one more fragment of a block whose fragments are on
 * held[0..nh) (NULLs skipped). */
int
net__peer_fits(struct net_peer *const *held, int nh, struct net_peer *p,
    int unvetted_max)
{
	struct net_slot h[CR_EC_MAX], c;
	int k = 0;

	for (int i = 0; i < nh && k < CR_EC_MAX; i++)
		if (held[i])
			slot_of(&h[k++], held[i]);
	slot_of(&c, p);
	return net_place_ok(h, k, &c, unvetted_max) &&
	    net_place_relayed_ok(h, k, &c, p->n->m);
}

uint32_t
net_place_doubled(int n, const unsigned char (*peer)[CR_PK_BYTES],
    uint32_t good, uint32_t cand)
{
	uint32_t dbl = 0;

	for (int i = 1; i < n && i < 32; i++) {
		if (!(cand & 1u << i) || sodium_is_zero(peer[i], CR_PK_BYTES))
			continue;
		for (int j = 0; j < i; j++)
			if (good & 1u << j &&
			    memcmp(peer[j], peer[i], CR_PK_BYTES) == 0) {
				dbl |= 1u << i;
				break;
			}
	}
	return dbl;
}

int
net__lan_blocked(struct net_peer *const *held, int nh,
    const struct net_peer *p)
{
	if (p->n->conf.lan || !is_private(&p->sa))
		return 0;
	for (int i = 0; i < nh; i++)
		if (held[i] && held[i]->relayed == 0 &&
		    net_same_block(&held[i]->sa, &p->sa))
			return 1;
	return 0;
}

/* 1 when p, holding one of held[0..nh), may take a second fragment of
 * that block (doubled up, net/upload.c): its own address block is waived
 * (the block limits how many it doubles), the counts of fragments on
 * suppliers not vetted and on relayed ones are not. */
int
net__peer_fits_double(struct net_peer *const *held, int nh,
    struct net_peer *p, int unvetted_max)
{
	int unvetted = 0, relayed = 0;

	for (int i = 0; i < nh; i++)
		if (held[i]) {
			unvetted += !peer_vetted(held[i]);
			relayed += held[i]->relayed;
		}
	return (peer_vetted(p) || unvetted < unvetted_max) &&
	    (!p->relayed || relayed < p->n->m);
}

struct vetted_op {
	struct net_op op;
	const unsigned char (*pk)[CR_PK_BYTES];
	int n;
};

static void
vetted_start(struct net *n, struct net_op *op)
{
	struct vetted_op *v = (struct vetted_op *)op;
	void *p = NULL;

	if (v->n > 0 && !(p = malloc((size_t)v->n * CR_PK_BYTES)))
		return net__op_done(n, op, -ENOMEM);
	if (p) {
		memcpy(p, v->pk, (size_t)v->n * CR_PK_BYTES);
		qsort(p, (size_t)v->n, CR_PK_BYTES, vetted_cmp);
	}
	free(n->vetted);
	n->vetted = p;
	n->nvetted = v->n > 0 ? v->n : 0;
	n->vet_all = v->n < 0;
	net__op_done(n, op, 0);
}

int
net_set_vetted(struct net *n, const unsigned char (*pk)[CR_PK_BYTES],
    int count)
{
	struct vetted_op v = { .op.start = vetted_start, .pk = pk,
	    .n = count };

	return net__op_run(n, &v.op);
}

int
net__same_host(const struct net_peer *a, const struct net_peer *b)
{
	const struct sockaddr_storage *x = &a->sa, *y = &b->sa;

	if (x->ss_family != y->ss_family)
		return 0;
	if (x->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)x)->sin_addr,
		    &((const struct sockaddr_in *)y)->sin_addr, 4) == 0;
	if (x->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)x)->sin6_addr,
		    &((const struct sockaddr_in6 *)y)->sin6_addr, 16) == 0;
	return 0;
}
