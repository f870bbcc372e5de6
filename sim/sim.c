/* sim/sim.c - the simulated world: suppliers with sessions, departures,
 * disk losses and outages; owners that hire, fire, rebuild and lose
 * blocks, deciding with peerfs's own policy functions:
 *
 *   net_peer_verdict        when a silent supplier is DEAD (net/client.c)
 *   net_place_ok,           where a fragment may go: one per /24, few on
 *   net_place_unvetted_max  suppliers not vetted (net/place.c)
 *   owner_audit_vetted      who is vetted (owner/audit.c)
 *   owner_rebuild_missing   what a block misses, its urgency (rebuild.c)
 *   owner_hire_pick         whom to hire among DHT records (owner/hire.c)
 *   owner_hire_track,       whom to fire for low availability
 *   owner_hire_fire_pick    (owner/hire.c, cli/network.c's hirer)
 *   owner_hire_again        whom, declared dead, to hire again
 *
 * What the simulation abstracts, and why, is in docs/durability.md. A
 * block is lost when fewer than k of its fragments still exist on some
 * disk: a fragment on a supplier declared dead still counts until its
 * replacement is placed (net/block.c asks DEAD holders last, when the
 * others cannot make k). A lost block is counted and written anew, so the
 * population stays the same and losses are a rate per block-year. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/net.h"
#include "owner/owner.h"
#include "sim/sim.h"

#define DAY	86400.0
#define YEAR	(365.0 * DAY)
#define T0	1000000000	/* unix s of simulated time 0 (ledger times) */

enum ev_type {
	EV_SESSION, EV_DEPART, EV_DISK, EV_AUDIT, EV_VERDICT, EV_OVERDICT,
	EV_OUT24, EV_REGION, EV_OWNER, EV_HIRER, EV_JOB, EV_REPAIR
};

struct ev {
	double t;
	uint64_t seq;			/* ties: the order they were made */
	int type, a, b;
	uint32_t gen;
};

struct sup {
	double off_since, bw;
	int p24, region, outage, alive_at;
	int next24;			/* the next supplier of its /24 */
	uint8_t alive, sess_on, online;
	uint32_t off_gen;
	/* Owners that hired it, firing or not: their blocks may still
	 * hold fragments there (until rebuilt elsewhere). */
	int *own, nown, capown;
	struct sockaddr_storage sa;
	char addr[32];
};

struct hired {
	int sup;
	struct owner_hire_watch w;
	int64_t first_ok;		/* its first passed audit, unix s */
};

struct frag {
	int sup;			/* -1: not placed */
	uint8_t present, missing;	/* on its disk; owner says rebuild */
	int fire;			/* the firing that made it missing */
	int tgt;			/* a running job's target */
	double lost_t;			/* when it left its disk */
};

struct blk {
	struct frag f[SIM_FRAGS_MAX];
	int usable, busy;		/* usable: on some disk */
	uint32_t miss, surv;		/* owner_rebuild_missing's, kept */
	uint32_t jseq;
	double degr_since;		/* < 0: at full redundancy */
	uint64_t losses;
};

struct owner {
	struct hired *h;
	int nh, caph;
	uint64_t *known;		/* bit per supplier: hired once */
	size_t nknown;
	/* Of those, the ones declared dead only for being unreachable, and
	 * when (unix ms): owner_hire_again may take them back. */
	struct gone { int sup; int64_t dead_at; } *gone;
	size_t ngone, capgone;
	struct blk *b;
	int up, jobs;
	double up_since, bw, phase, last_pass;
	int64_t last_fire;
	uint64_t losses;
};

struct firing {
	double t;
	int pending;
};

struct sim {
	struct sim_conf c;
	int n;				/* k + m */
	uint64_t rng[4];
	struct ev *heap;
	size_t nheap, capheap;
	uint64_t seq, events;
	double now;
	struct sup *s;
	int ns, caps;
	int *alive;			/* suppliers alive, for the DHT */
	int nalive;
	int n24;
	int *first24;			/* per /24: a supplier, -1 none */
	struct owner *o;
	struct firing *fires;
	size_t nfires, capfires;
	double *full;			/* firing -> full again, s */
	size_t nfull, capfull;
	double degraded, repair_bytes, frag_bytes, frag_lost;
	double window_sum, window_n;	/* fragment lost -> replaced, s */
};

/* ---- randomness: xoshiro256**, seeded by splitmix64 ---------------------- */

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rnd64(struct sim *s)
{
	uint64_t *r = s->rng, res = rotl(r[1] * 5, 7) * 9, t = r[1] << 17;

	r[2] ^= r[0];
	r[3] ^= r[1];
	r[1] ^= r[2];
	r[0] ^= r[3];
	r[2] ^= t;
	r[3] = rotl(r[3], 45);
	return res;
}

static uint32_t
rnd32(void *arg)
{
	return (uint32_t)(rnd64(arg) >> 32);
}

static double
unif(struct sim *s)
{
	return (double)(rnd64(s) >> 11) * 0x1.0p-53;
}

static double
expo(struct sim *s, double mean)
{
	return -mean * log1p(-unif(s));
}

static int
below(struct sim *s, int n)
{
	return (int)(unif(s) * n);
}

/* ---- the event heap ------------------------------------------------------ */

static int
ev_before(const struct ev *a, const struct ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void
push(struct sim *s, double t, int type, int a, int b, uint32_t gen)
{
	size_t i;

	if (s->nheap == s->capheap) {
		s->capheap = s->capheap ? s->capheap * 2 : 4096;
		s->heap = realloc(s->heap, s->capheap * sizeof *s->heap);
		if (!s->heap)
			abort();	/* a simulation half run is no result */
	}
	i = s->nheap++;
	struct ev e = { t, s->seq++, type, a, b, gen };
	while (i > 0 && ev_before(&e, &s->heap[(i - 1) / 2])) {
		s->heap[i] = s->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->heap[i] = e;
}

static struct ev
pop(struct sim *s)
{
	struct ev top = s->heap[0], last = s->heap[--s->nheap];
	size_t i = 0, n = s->nheap;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && ev_before(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!ev_before(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (n)
		s->heap[i] = last;
	return top;
}

static void *
grow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	*cap = need * 2 + 16;
	if (!(p = realloc(p, *cap * size)))
		abort();
	return p;
}

/* ---- suppliers ------------------------------------------------------------ */

static double
on_mean(const struct sim *s)
{
	return s->c.avail * DAY / s->c.sessions_per_day;
}

static double
off_mean(const struct sim *s)
{
	return (1 - s->c.avail) * DAY / s->c.sessions_per_day;
}

static int
sup_add(struct sim *s)
{
	struct sup *p;
	struct sockaddr_in *in;
	int i = s->ns;

	if (s->ns == s->caps) {
		size_t cap = (size_t)s->caps;
		s->s = grow(s->s, &cap, (size_t)s->ns + 1, sizeof *s->s);
		s->caps = (int)cap;
	}
	p = &s->s[s->ns++];
	memset(p, 0, sizeof *p);
	p->bw = exp(log(s->c.bw_min) + unif(s) * log(s->c.bw_max /
	    s->c.bw_min));
	p->p24 = below(s, s->n24);
	p->region = s->c.regions > 0 ? p->p24 % s->c.regions : 0;
	p->next24 = s->first24[p->p24];
	s->first24[p->p24] = i;
	in = (struct sockaddr_in *)&p->sa;
	in->sin_family = AF_INET;
	in->sin_port = htons(7070);
	/* 10.x.y.z: the /24 is x.y, z tells its suppliers apart. */
	uint32_t a = (10u << 24) | ((uint32_t)p->p24 << 8) |
	    (uint32_t)(1 + i % 250);
	in->sin_addr.s_addr = htonl(a);
	snprintf(p->addr, sizeof p->addr, "%u.%u.%u.%u:7070", a >> 24,
	    (a >> 16) & 255, (a >> 8) & 255, a & 255);
	p->alive = 1;
	p->alive_at = s->nalive;
	s->alive[s->nalive++] = i;
	p->sess_on = s->c.avail >= 1 || unif(s) < s->c.avail;
	p->online = p->sess_on;
	p->off_since = s->now;
	if (s->c.avail < 1)
		push(s, s->now + expo(s, p->sess_on ? on_mean(s) :
		    off_mean(s)), EV_SESSION, i, 0, 0);
	if (s->c.halflife_days > 0)
		push(s, s->now + expo(s, s->c.halflife_days * DAY / M_LN2),
		    EV_DEPART, i, 0, 0);
	if (s->c.disk_loss_per_year > 0)
		push(s, s->now + expo(s, YEAR / s->c.disk_loss_per_year),
		    EV_DISK, i, 0, 0);
	return i;
}

/* ---- placement: net_place_ok over an owner's hired suppliers ------------- */

static int
vetted(const struct sim *s, const struct hired *h)
{
	struct store_ledger_ent e;
	int64_t now = T0 + (int64_t)s->now;

	memset(&e, 0, sizeof e);
	if (now >= h->first_ok) {
		e.first_ok = h->first_ok;
		e.last_ok = now;
	}
	return owner_audit_vetted(&e, now, (int64_t)(s->c.vet_after_s * 1000));
}

static int
hired_at(const struct owner *o, int sup)
{
	for (int i = 0; i < o->nh; i++)
		if (o->h[i].sup == sup)
			return i;
	return -1;
}

/* A supplier for fragment i of b, none of the others' /24 (the vetting
 * rule too), online unless any: -1 when none fits. */
static int
place(struct sim *s, struct owner *o, struct blk *b, int i, int any)
{
	/* Zeroed: simulated suppliers are never relayed. */
	struct net_slot held[SIM_FRAGS_MAX] = { 0 }, cand[64] = { 0 }, c = { 0 };
	int nh = 0, nc = 0, start, umax;

	for (int j = 0; j < s->n; j++) {
		const struct frag *f = &b->f[j];
		int sup = j == i ? -1 : f->sup >= 0 && !f->missing ? f->sup :
		    f->tgt;
		int at;
		if (sup < 0 || (at = hired_at(o, sup)) < 0)
			continue;
		held[nh].sa = &s->s[sup].sa;
		held[nh++].vetted = vetted(s, &o->h[at]);
	}
	for (int j = 0; j < o->nh && nc < 64; j++)
		if (any || s->s[o->h[j].sup].online) {
			cand[nc].sa = &s->s[o->h[j].sup].sa;
			cand[nc++].vetted = vetted(s, &o->h[j]);
		}
	if (nc == 0)
		return -1;
	umax = net_place_unvetted_max(s->n, cand, nc);
	/* peerfs takes the better of two by free space and rtt; simulated
	 * suppliers are alike in both, so the first fit from a random
	 * start. */
	start = below(s, o->nh);
	for (int j = 0; j < o->nh; j++) {
		const struct hired *h = &o->h[(start + j) % o->nh];
		if (!any && !s->s[h->sup].online)
			continue;
		c.sa = &s->s[h->sup].sa;
		c.vetted = vetted(s, h);
		if (net_place_ok(held, nh, &c, umax))
			return h->sup;
	}
	return -1;
}

/* ---- blocks --------------------------------------------------------------- */

/* What owner_rebuild_missing says of b, as the daemon's scanner sees it. */
static uint32_t
missing(const struct sim *s, const struct blk *b, uint32_t *surv)
{
	uint8_t lost[SIM_FRAGS_MAX], placed[SIM_FRAGS_MAX],
	    dead[SIM_FRAGS_MAX];

	for (int i = 0; i < s->n; i++) {
		lost[i] = 0;	/* found by audits: fired, so dead below */
		placed[i] = b->f[i].sup >= 0;
		dead[i] = b->f[i].missing && placed[i];
	}
	return owner_rebuild_missing(s->n, lost, placed, dead, surv);
}

static void
degr_update(struct sim *s, int oi, int bi)
{
	struct blk *b = &s->o[oi].b[bi];
	int miss;

	b->miss = missing(s, b, &b->surv);
	miss = b->miss != 0;
	if (miss && b->degr_since < 0) {
		b->degr_since = s->now;
		if (s->c.repair_mean_s > 0)
			push(s, s->now + expo(s, s->c.repair_mean_s), EV_REPAIR,
			    oi, bi, ++b->jseq);
	} else if (!miss && b->degr_since >= 0) {
		s->degraded += s->now - b->degr_since;
		b->degr_since = -1;
	}
}

static void
fire_done(struct sim *s, int f)
{
	if (f < 0 || --s->fires[f].pending > 0)
		return;
	s->full = grow(s->full, &s->capfull, s->nfull + 1, sizeof *s->full);
	s->full[s->nfull++] = s->now - s->fires[f].t;
}

/* Every fragment of block bi placed anew (a first write, or a lost
 * block's successor): wherever placement allows, online or not (an
 * upload waits in the journal for its suppliers). */
static void
blk_write(struct sim *s, int oi, int bi)
{
	struct owner *o = &s->o[oi];
	struct blk *b = &o->b[bi];

	if (b->degr_since >= 0)
		s->degraded += s->now - b->degr_since;
	b->degr_since = -1;
	b->busy = 0;
	b->jseq++;
	for (int i = 0; i < s->n; i++) {
		fire_done(s, b->f[i].fire);
		b->f[i] = (struct frag){ -1, 0, 1, -1, -1, 0 };
	}
	b->usable = 0;
	for (int i = 0; i < s->n; i++) {
		int sup = place(s, o, b, i, 1);
		if (sup >= 0) {
			b->f[i] = (struct frag){ sup, 1, 0, -1, -1, 0 };
			b->usable++;
		}
	}
	degr_update(s, oi, bi);
}

/* Fragment i of b left its disk (departure, disk loss). */
static void
frag_gone(struct sim *s, int oi, int bi, int i)
{
	struct blk *b = &s->o[oi].b[bi];

	b->f[i].present = 0;
	b->f[i].lost_t = s->now;
	b->usable--;
	s->frag_lost++;
	if (b->usable < s->c.k) {
		b->losses++;
		s->o[oi].losses++;
		blk_write(s, oi, bi);
	}
}

/* ---- hiring and firing ------------------------------------------------------ */

static int
known(const struct owner *o, int sup)
{
	size_t w = (size_t)sup / 64;

	return w < o->nknown && (o->known[w] >> (sup % 64)) & 1;
}

/* Where sup is in o's gone list, -1 not there. */
static int
gone_at(const struct owner *o, int sup)
{
	for (size_t i = 0; i < o->ngone; i++)
		if (o->gone[i].sup == sup)
			return (int)i;
	return -1;
}

/* 1: sup, known to o, may be hired again now (online, so its record is
 * fresh: announced now). */
static int
hire_again(const struct sim *s, const struct owner *o, int sup)
{
	int64_t now = T0 * 1000ll + (int64_t)(s->now * 1000);
	int g = gone_at(o, sup);

	return g >= 0 && owner_hire_again(0, o->gone[g].dead_at, now, now,
	    (int64_t)(s->c.window_s * 1000));
}

static void
know(struct owner *o, int sup)
{
	size_t w = (size_t)sup / 64;

	if (w >= o->nknown) {
		size_t n = w * 2 + 16;
		if (!(o->known = realloc(o->known, n * sizeof *o->known)))
			abort();
		memset(o->known + o->nknown, 0, (n - o->nknown) *
		    sizeof *o->known);
		o->nknown = n;
	}
	o->known[w] |= 1ull << (sup % 64);
}

/* cli/network.c's hirer: while fewer than k + m + spares are hired, one
 * of the DHT's records (online suppliers, none known to the client) by
 * owner_hire_pick. */
static void
hire(struct sim *s, int oi)
{
	struct owner *o = &s->o[oi];
	int want = s->n + OWNER_HIRE_SPARES;

	while (o->nh < want) {
		struct owner_hire_cand cand[64];
		const char *taken[SIM_FRAGS_MAX + OWNER_HIRE_SPARES + 8];
		int sup[64], nc = 0, picked, tries = 0;

		while (nc < s->c.candidates && tries++ < 4 * s->c.candidates) {
			int j = s->alive[below(s, s->nalive)];
			struct sup *p = &s->s[j];
			if (!p->online || (known(o, j) &&
			    !hire_again(s, o, j)))
				continue;
			int dup = 0;
			for (int x = 0; x < nc; x++)
				dup |= sup[x] == j;
			if (dup)
				continue;
			memset(&cand[nc], 0, sizeof cand[nc]);
			memcpy(cand[nc].id, &j, sizeof j);
			memcpy(cand[nc].addr, p->addr, sizeof p->addr);
			cand[nc].free_bytes = 1 + (rnd64(s) >> 24);
			cand[nc].score = (double)cand[nc].free_bytes;
			sup[nc++] = j;
		}
		for (int i = 0; i < o->nh; i++)
			taken[i] = s->s[o->h[i].sup].addr;
		if (owner_hire_pick(cand, nc, taken, o->nh, 1, 1, rnd32, s,
		    &picked) != 1)
			return;
		int j = sup[picked];
		struct sup *p = &s->s[j];
		if (o->nh == o->caph) {
			size_t cap = (size_t)o->caph;
			o->h = grow(o->h, &cap, (size_t)o->nh + 1, sizeof *o->h);
			o->caph = (int)cap;
		}
		o->h[o->nh++] = (struct hired){ j, { 0, 0 },
		    T0 + (int64_t)(s->now + unif(s) * s->c.audit_s) };
		know(o, j);
		int g = gone_at(o, j);
		if (g >= 0)
			o->gone[g] = o->gone[--o->ngone];
		/* Hired again after being declared dead: listed once. */
		int listed = 0;
		for (int x = 0; x < p->nown && !listed; x++)
			listed = p->own[x] == oi;
		if (listed)
			continue;
		if (p->nown == p->capown) {
			size_t cap = (size_t)p->capown;
			p->own = grow(p->own, &cap, (size_t)p->nown + 1,
			    sizeof *p->own);
			p->capown = (int)cap;
		}
		p->own[p->nown++] = oi;
	}
}

static void kick(struct sim *s, int oi);

/* Supplier sup is DEAD to owner oi (net__peer_fire): no longer hired,
 * its fragments missing, a replacement hired, rebuilds started. Not for
 * cause (only unreachable): it may be hired again (owner_hire_again). */
static void
fire(struct sim *s, int oi, int sup, int cause)
{
	struct owner *o = &s->o[oi];
	int at = hired_at(o, sup), f;

	if (at < 0)
		return;
	o->h[at] = o->h[--o->nh];
	if (!cause) {
		o->gone = grow(o->gone, &o->capgone, o->ngone + 1,
		    sizeof *o->gone);
		o->gone[o->ngone++] = (struct gone){ sup,
		    T0 * 1000ll + (int64_t)(s->now * 1000) };
	}
	s->fires = grow(s->fires, &s->capfires, s->nfires + 1,
	    sizeof *s->fires);
	f = (int)s->nfires++;
	s->fires[f] = (struct firing){ s->now, 0 };
	for (int bi = 0; bi < s->c.blocks; bi++) {
		struct blk *b = &o->b[bi];
		for (int i = 0; i < s->n; i++) {
			struct frag *fr = &b->f[i];
			if (fr->sup != sup || fr->missing)
				continue;
			fr->missing = 1;
			fr->fire = f;
			s->fires[f].pending++;
			degr_update(s, oi, bi);
		}
	}
	if (s->fires[f].pending == 0)
		s->nfires--;
	hire(s, oi);
	kick(s, oi);
}

/* ---- rebuilds ---------------------------------------------------------------- */

/* Starts a rebuild of b: k sources online, targets for what fits. */
static int
job_start(struct sim *s, int oi, int bi, uint32_t miss)
{
	struct owner *o = &s->o[oi];
	struct blk *b = &o->b[bi];
	double minbw = HUGE_VAL, fb = s->frag_bytes, dur;
	int src = 0, nt = 0;

	for (int i = 0; i < s->n; i++) {
		const struct frag *f = &b->f[i];
		if (f->sup >= 0 && f->present && s->s[f->sup].online) {
			src++;
			if (s->s[f->sup].bw < minbw)
				minbw = s->s[f->sup].bw;
		}
	}
	if (src < s->c.k)
		return 0;
	for (int i = 0; i < s->n; i++)
		b->f[i].tgt = -1;
	for (int i = 0; i < s->n; i++)
		if (miss & (1u << i) && (b->f[i].tgt = place(s, o, b, i, 0)) >= 0)
			nt++;
	if (nt == 0)
		return 0;
	/* k fragments come from the sources in parallel, then the owner
	 * sends nt; never faster than --rebuild-rate. */
	dur = fb / minbw + nt * fb / o->bw;
	if ((s->c.k + nt) * fb / s->c.rebuild_rate > dur)
		dur = (s->c.k + nt) * fb / s->c.rebuild_rate;
	b->busy = 1;
	o->jobs++;
	push(s, s->now + dur, EV_JOB, oi, bi, ++b->jseq);
	return 1;
}

/* The rebuild workers: while the owner is up, the blocks with the fewest
 * surviving fragments first (the rebuild queue's order). */
static void
kick(struct sim *s, int oi)
{
	struct owner *o = &s->o[oi];
	static const int none = -1;
	uint8_t tried[4096];

	if (!o->up || s->c.repair_mean_s > 0 || s->c.blocks > 4096)
		return;
	memset(tried, 0, (size_t)s->c.blocks);
	while (o->jobs < s->c.rebuild_jobs) {
		int best = none;
		uint32_t bs = 0, bmiss = 0;
		for (int bi = 0; bi < s->c.blocks; bi++) {
			uint32_t surv = o->b[bi].surv, miss = o->b[bi].miss;
			if (tried[bi] || o->b[bi].busy || !miss)
				continue;
			if (best < 0 || surv < bs) {
				best = bi;
				bs = surv;
				bmiss = miss;
			}
		}
		if (best < 0)
			return;
		tried[best] = 1;
		job_start(s, oi, best, bmiss);
	}
}

static void
place_done(struct sim *s, int oi, int bi, int i, int sup)
{
	struct frag *f = &s->o[oi].b[bi].f[i];

	fire_done(s, f->fire);
	if (f->sup >= 0 && !f->present) {
		s->window_sum += s->now - f->lost_t;
		s->window_n++;
	} else if (f->sup >= 0) {
		s->o[oi].b[bi].usable--;	/* the old copy is deleted */
	}
	*f = (struct frag){ sup, 1, 0, -1, -1, 0 };
	s->o[oi].b[bi].usable++;
}

static void
job_done(struct sim *s, int oi, int bi, uint32_t gen)
{
	struct owner *o = &s->o[oi];
	struct blk *b = &o->b[bi];

	if (!b->busy || b->jseq != gen)
		return;
	b->busy = 0;
	o->jobs--;
	s->repair_bytes += s->c.k * s->frag_bytes;
	for (int i = 0; i < s->n; i++) {
		int t = b->f[i].tgt;
		b->f[i].tgt = -1;
		if (t < 0 || !b->f[i].missing)
			continue;
		s->repair_bytes += s->frag_bytes;
		if (hired_at(o, t) >= 0 && s->s[t].alive)
			place_done(s, oi, bi, i, t);
	}
	degr_update(s, oi, bi);
	kick(s, oi);
}

/* The model check's repair: after an exponential delay, every missing
 * fragment placed, with no bandwidth and no job limit. */
static void
repair_now(struct sim *s, int oi, int bi)
{
	struct owner *o = &s->o[oi];
	struct blk *b = &o->b[bi];
	uint32_t miss = missing(s, b, NULL);

	for (int i = 0; i < s->n; i++)
		b->f[i].tgt = -1;
	for (int i = 0; i < s->n; i++)
		if (miss & (1u << i)) {
			int t = place(s, o, b, i, 1);
			if (t >= 0) {
				s->repair_bytes += s->frag_bytes;
				place_done(s, oi, bi, i, t);
			}
		}
	if (miss)
		s->repair_bytes += s->c.k * s->frag_bytes;
	if (b->degr_since >= 0 && !missing(s, b, NULL)) {
		s->degraded += s->now - b->degr_since;
		b->degr_since = -1;
	} else if (b->degr_since >= 0) {
		/* Not all placed (no supplier fits yet): again later. */
		push(s, s->now + expo(s, s->c.repair_mean_s), EV_REPAIR, oi,
		    bi, ++b->jseq);
	}
}

/* ---- supplier states --------------------------------------------------------- */

static void
sup_update(struct sim *s, int j)
{
	struct sup *p = &s->s[j];
	int on = p->alive && p->sess_on && p->outage == 0;

	if (on == p->online)
		return;
	p->online = (uint8_t)on;
	if (!on) {
		p->off_since = s->now;
		p->off_gen++;
		push(s, s->now + s->c.dead_s, EV_VERDICT, j, 0, p->off_gen);
		return;
	}
	/* Back: a source and a target again for those hiring it (those that
	 * fired it still read from it when they rebuild for another
	 * reason). */
	for (int i = 0; i < p->nown; i++)
		if (hired_at(&s->o[p->own[i]], j) >= 0)
			kick(s, p->own[i]);
}

/* net/client.c's monitor for owner oi's view of supplier j, silent since
 * off_since: its clocks start at the mount. */
static void
verdict(struct sim *s, int oi, int j)
{
	struct owner *o = &s->o[oi];
	struct sup *p = &s->s[j];
	double from = p->off_since > o->up_since ? p->off_since : o->up_since;
	uint64_t down = (uint64_t)llround((s->now - from) * 1000);

	if (!o->up || p->online || hired_at(o, j) < 0)
		return;
	if (net_peer_verdict(NET_PEER_OFFLINE, down,
	    (uint64_t)(s->c.suspect_s * 1000), (uint64_t)(s->c.dead_s * 1000))
	    == NET_PEER_DEAD)
		fire(s, oi, j, 0);
	else	/* not yet (its clock began at the mount): then */
		push(s, fmax(from + s->c.dead_s, s->now + 0.001), EV_OVERDICT,
		    oi, j, p->off_gen);
}

static void
sup_gone(struct sim *s, int j)
{
	struct sup *p = &s->s[j];
	int *own;

	/* Its disk with it: the fragments there are gone now; its owners
	 * learn it when their verdict says DEAD. */
	if (!p->alive)
		return;
	own = p->own;
	for (int x = 0; x < p->nown; x++) {
		int oi = own[x];
		for (int bi = 0; bi < s->c.blocks; bi++)
			for (int i = 0; i < s->n; i++) {
				struct frag *f = &s->o[oi].b[bi].f[i];
				if (f->sup == j && f->present)
					frag_gone(s, oi, bi, i);
			}
	}
	p->alive = 0;
	s->alive[p->alive_at] = s->alive[--s->nalive];
	s->s[s->alive[p->alive_at]].alive_at = p->alive_at;
	sup_update(s, j);
	sup_add(s);			/* a newcomer: the population holds */
}

void
sim_depart(struct sim *s, int sup)
{
	if (sup >= 0 && sup < s->ns)
		sup_gone(s, sup);
}

static void
disk_lost(struct sim *s, int j)
{
	struct sup *p = &s->s[j];

	if (!p->alive)
		return;
	for (int x = 0; x < p->nown; x++) {
		int oi = p->own[x];
		for (int bi = 0; bi < s->c.blocks; bi++)
			for (int i = 0; i < s->n; i++) {
				struct frag *f = &s->o[oi].b[bi].f[i];
				if (f->sup == j && f->present)
					frag_gone(s, oi, bi, i);
			}
		/* Its owners' audits find out within a pass. */
		push(s, s->now + unif(s) * s->c.audit_s, EV_AUDIT, oi, j, 0);
	}
	push(s, s->now + expo(s, YEAR / s->c.disk_loss_per_year), EV_DISK,
	    j, 0, 0);
}

/* ---- owners ------------------------------------------------------------------- */

static void
owner_set(struct sim *s, int oi, int up)
{
	struct owner *o = &s->o[oi];

	if (o->up == up)
		return;
	o->up = up;
	if (!up) {
		/* The mount stops: its rebuilds with it. */
		for (int bi = 0; bi < s->c.blocks; bi++)
			if (o->b[bi].busy) {
				o->b[bi].busy = 0;
				o->b[bi].jseq++;
				for (int i = 0; i < s->n; i++)
					o->b[bi].f[i].tgt = -1;
			}
		o->jobs = 0;
		return;
	}
	o->up_since = s->now;
	o->last_pass = 0;
	/* A new mount: the suppliers it fired are forgotten (only
	 * <home>/hired is kept), so they may be hired again. */
	memset(o->known, 0, o->nknown * sizeof *o->known);
	o->ngone = 0;
	for (int i = 0; i < o->nh; i++)
		know(o, o->h[i].sup);
	for (int i = 0; i < o->nh; i++) {
		struct sup *p = &s->s[o->h[i].sup];
		if (!p->online)
			push(s, s->now + s->c.dead_s, EV_OVERDICT, oi,
			    o->h[i].sup, p->off_gen);
	}
	hire(s, oi);
	kick(s, oi);
}

static void
hirer(struct sim *s, int oi)
{
	struct owner *o = &s->o[oi];
	const struct owner_hire_watch *w[SIM_FRAGS_MAX + OWNER_HIRE_SPARES + 8];
	int64_t now = (int64_t)(s->now * 1000), last = (int64_t)(o->last_pass
	    * 1000);
	int at;

	push(s, s->now + s->c.hirer_s, EV_HIRER, oi, 0, 0);
	if (!o->up)
		return;
	for (int i = 0; i < o->nh; i++) {
		owner_hire_track(&o->h[i].w, s->s[o->h[i].sup].online, now + 1,
		    o->last_pass ? last + 1 : 0, (int64_t)(s->c.window_s * 1000));
		w[i] = &o->h[i].w;
	}
	o->last_pass = s->now;
	at = owner_hire_fire_pick(w, o->nh, o->nh, s->n, s->c.fire_below,
	    (int64_t)(s->c.window_s * 1000), now + 1, o->last_fire);
	if (at >= 0) {
		o->last_fire = now + 1;
		fire(s, oi, o->h[at].sup, 1);
	}
}

/* ---- the run ------------------------------------------------------------------- */

static void
step(struct sim *s, const struct ev *e)
{
	struct sup *p;

	switch (e->type) {
	case EV_SESSION:
		p = &s->s[e->a];
		if (!p->alive)
			return;
		p->sess_on = !p->sess_on;
		push(s, s->now + expo(s, p->sess_on ? on_mean(s) :
		    off_mean(s)), EV_SESSION, e->a, 0, 0);
		sup_update(s, e->a);
		break;
	case EV_DEPART:
		sup_gone(s, e->a);
		break;
	case EV_DISK:
		disk_lost(s, e->a);
		break;
	case EV_AUDIT:
		/* Failed audits: fired (NET_FIRE_AFTER of them come in one
		 * pass when the disk is gone); the mount must run. */
		if (!s->o[e->a].up)
			push(s, s->now + s->c.hirer_s, EV_AUDIT, e->a, e->b, 0);
		else
			fire(s, e->a, e->b, 1);
		break;
	case EV_VERDICT:
		p = &s->s[e->a];
		if (p->online || p->off_gen != e->gen)
			return;
		for (int x = p->nown - 1; x >= 0; x--)
			if (x < p->nown)
				verdict(s, p->own[x], e->a);
		break;
	case EV_OVERDICT:
		p = &s->s[e->b];
		if (p->online || p->off_gen != e->gen ||
		    hired_at(&s->o[e->a], e->b) < 0)
			return;
		verdict(s, e->a, e->b);
		break;
	case EV_OUT24:
	case EV_REGION: {
		int start = e->gen == 0, reg = e->type == EV_REGION;
		double hours = reg ? s->c.region_hours : s->c.outage24_hours;
		/* A region is every regions-th /24. */
		for (int q = e->a; q < s->n24;
		    q += reg ? s->c.regions : s->n24)
			for (int j = s->first24[q]; j >= 0; j = s->s[j].next24) {
				s->s[j].outage += start ? 1 : -1;
				sup_update(s, j);
			}
		if (start)
			push(s, s->now + expo(s, hours * 3600), e->type, e->a,
			    0, 1);
		else
			push(s, s->now + expo(s, YEAR / (reg ?
			    s->c.region_per_year : s->c.outage24_per_year)),
			    e->type, e->a, 0, 0);
		break;
	}
	case EV_OWNER: {
		int up = !s->o[e->a].up;
		owner_set(s, e->a, up);
		push(s, s->now + (up ? s->c.owner_hours * 3600 :
		    DAY - s->c.owner_hours * 3600), EV_OWNER, e->a, 0, 0);
		break;
	}
	case EV_HIRER:
		hirer(s, e->a);
		break;
	case EV_JOB:
		job_done(s, e->a, e->b, e->gen);
		break;
	case EV_REPAIR:
		if (s->o[e->a].b[e->b].jseq == e->gen &&
		    s->o[e->a].b[e->b].degr_since >= 0)
			repair_now(s, e->a, e->b);
		break;
	}
}

void
sim_run_until(struct sim *s, double t)
{
	while (s->nheap > 0 && s->heap[0].t <= t) {
		struct ev e = pop(s);
		s->now = e.t;
		s->events++;
		step(s, &e);
	}
	s->now = t;
}

int
sim_new(struct sim **out, const struct sim_conf *c)
{
	struct sim *s;
	uint64_t x;

	if (c->k < 1 || c->m < 1 || c->k + c->m > SIM_FRAGS_MAX ||
	    c->suppliers < 1 || c->owners < 1 || c->blocks < 1 ||
	    c->blocks > 4096 || c->avail <= 0 || c->avail > 1 ||
	    c->sessions_per_day <= 0 || c->candidates < 1 ||
	    c->candidates > 64 || c->bw_min <= 0 || c->bw_max < c->bw_min ||
	    c->per24 < 1 || c->rebuild_jobs < 1 || c->rebuild_rate <= 0 ||
	    c->owner_hours <= 0 || c->owner_hours > 24 || c->hirer_s <= 0 ||
	    c->dead_s < c->suspect_s || c->audit_s <= 0 || c->years <= 0)
		return -EINVAL;
	if (!(s = calloc(1, sizeof *s)))
		return -ENOMEM;
	s->c = *c;
	s->n = c->k + c->m;
	x = c->seed;
	for (int i = 0; i < 4; i++) {	/* splitmix64 */
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		s->rng[i] = z ^ (z >> 31);
	}
	s->frag_bytes = c->owner_bytes / c->blocks / c->k;
	s->n24 = (c->suppliers + c->per24 - 1) / c->per24;
	if (!(s->first24 = malloc((size_t)s->n24 * sizeof *s->first24)))
		abort();
	memset(s->first24, 0xff, (size_t)s->n24 * sizeof *s->first24);
	if (!(s->alive = malloc((size_t)c->suppliers * sizeof *s->alive)) ||
	    !(s->o = calloc((size_t)c->owners, sizeof *s->o)))
		abort();
	for (int j = 0; j < c->suppliers; j++)
		sup_add(s);
	for (int p = 0; p < s->n24 && c->outage24_per_year > 0; p++)
		push(s, expo(s, YEAR / c->outage24_per_year), EV_OUT24, p, 0,
		    0);
	for (int r = 0; r < c->regions && c->region_per_year > 0; r++)
		push(s, expo(s, YEAR / c->region_per_year), EV_REGION, r, 0, 0);
	for (int oi = 0; oi < c->owners; oi++) {
		struct owner *o = &s->o[oi];
		if (!(o->b = calloc((size_t)c->blocks, sizeof *o->b)))
			abort();
		o->bw = exp(log(c->bw_min) + unif(s) * log(c->bw_max /
		    c->bw_min));
		o->up = 1;
		o->last_fire = 0;
		hire(s, oi);
		/* The world has been running: these are vetted already. */
		for (int i = 0; i < o->nh; i++)
			o->h[i].first_ok = T0 - (int64_t)c->vet_after_s - 1;
		for (int bi = 0; bi < c->blocks; bi++) {
			o->b[bi].degr_since = -1;
			for (int i = 0; i < s->n; i++)
				o->b[bi].f[i].fire = -1;
			blk_write(s, oi, bi);
		}
		if (c->owner_hours < 24) {
			double ph = unif(s) * DAY, on = c->owner_hours * 3600;
			/* Up during [ph, ph + on) of each day. */
			int up = ph + on > DAY ? 1 : 0;
			double next = up ? ph + on - DAY : ph;
			o->up = 1;
			if (!up)
				owner_set(s, oi, 0);
			push(s, next, EV_OWNER, oi, 0, 0);
		}
		if (c->fire_below > 0)
			push(s, unif(s) * c->hirer_s, EV_HIRER, oi, 0, 0);
	}
	*out = s;
	return 0;
}

void
sim_free(struct sim *s)
{
	if (!s)
		return;
	for (int j = 0; j < s->ns; j++)
		free(s->s[j].own);
	for (int oi = 0; oi < s->c.owners; oi++) {
		free(s->o[oi].h);
		free(s->o[oi].known);
		free(s->o[oi].gone);
		free(s->o[oi].b);
	}
	free(s->o);
	free(s->s);
	free(s->alive);
	free(s->first24);
	free(s->heap);
	free(s->fires);
	free(s->full);
	free(s);
}

int
sim_block_holders(const struct sim *s, int o, int b, int *sup)
{
	if (o < 0 || o >= s->c.owners || b < 0 || b >= s->c.blocks)
		return -EINVAL;
	for (int i = 0; i < s->n; i++)
		sup[i] = s->o[o].b[b].f[i].sup;
	return s->n;
}

uint64_t
sim_block_losses(const struct sim *s, int o, int b)
{
	return s->o[o].b[b].losses;
}

static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void
sim_result(const struct sim *s, struct sim_result *r)
{
	double years = s->now / YEAR, degraded = s->degraded, per, var = 0;
	int no = s->c.owners;

	memset(r, 0, sizeof *r);
	r->seed = s->c.seed;
	r->events = s->events;
	r->block_years = (double)no * s->c.blocks * years;
	for (int oi = 0; oi < no; oi++) {
		r->losses += s->o[oi].losses;
		for (int bi = 0; bi < s->c.blocks; bi++)
			if (s->o[oi].b[bi].degr_since >= 0)
				degraded += s->now - s->o[oi].b[bi].degr_since;
	}
	if (r->block_years <= 0)
		return;
	r->loss_rate = (double)r->losses / r->block_years;
	/* Owners as batches: one owner's blocks share its suppliers, so
	 * their losses come together. Never below Poisson's spread. */
	per = (double)r->losses / no;
	for (int oi = 0; oi < no; oi++)
		var += ((double)s->o[oi].losses - per) *
		    ((double)s->o[oi].losses - per);
	var = no > 1 ? var * no / (no - 1) : 0;
	if (var < (double)r->losses)
		var = (double)r->losses;
	if (r->losses == 0) {
		r->loss_lo = 0;		/* the rule of three */
		r->loss_hi = 3.0 / r->block_years;
	} else {
		r->loss_lo = r->loss_rate - 1.96 * sqrt(var) / r->block_years;
		r->loss_hi = r->loss_rate + 1.96 * sqrt(var) / r->block_years;
		if (r->loss_lo < 0)
			r->loss_lo = 0;
	}
	r->p_loss_year = -expm1(-r->loss_rate);
	r->degraded_frac = degraded / (r->block_years * YEAR);
	r->repair_bytes = s->repair_bytes;
	r->repair_tb_month = s->repair_bytes / (no * s->c.owner_bytes) /
	    (years * 12);
	r->fires = (double)s->nfires;
	for (int oi = 0; oi < no; oi++)
		r->short_owners += s->o[oi].nh < s->n;
	r->full_n = s->nfull;
	if (s->nfull) {
		double *d = malloc(s->nfull * sizeof *d), sum = 0;
		if (!d)
			abort();
		memcpy(d, s->full, s->nfull * sizeof *d);
		qsort(d, s->nfull, sizeof *d, dbl_cmp);
		for (size_t i = 0; i < s->nfull; i++)
			sum += d[i];
		r->full_mean_s = sum / s->nfull;
		r->full_p95_s = d[(size_t)(0.95 * (s->nfull - 1))];
		free(d);
	}
	/* The model's rates, from what the run measured: fragments gone
	 * from their disks per fragment-second, and one over the mean time
	 * from a fragment's loss to its replacement. */
	r->model_lambda = s->frag_lost / (r->block_years * YEAR * s->n);
	if (s->c.repair_mean_s > 0) {
		r->model_mu = 1 / s->c.repair_mean_s;
	} else {
		/* Fragments still waiting count their time so far (an
		 * exponential's estimate with censoring): where nothing is
		 * ever rebuilt, mu is 0, not unknown. */
		double open = 0;
		for (int oi = 0; oi < no; oi++)
			for (int bi = 0; bi < s->c.blocks; bi++)
				for (int i = 0; i < s->n; i++) {
					const struct frag *f =
					    &s->o[oi].b[bi].f[i];
					if (f->sup >= 0 && !f->present)
						open += s->now - f->lost_t;
				}
		if (s->window_sum + open > 0)
			r->model_mu = s->window_n / (s->window_sum + open);
	}
	if (r->model_lambda > 0)
		r->model_rate = YEAR / sim_markov_mttdl(s->c.k, s->c.m,
		    r->model_lambda, r->model_mu);
	r->peer_years = (double)s->c.suppliers * years;
}

int
sim_run(const struct sim_conf *c, struct sim_result *r)
{
	struct sim *s;
	struct timespec a, b;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &a);
	if ((rc = sim_new(&s, c)) < 0)
		return rc;
	sim_run_until(s, c->years * YEAR);
	sim_result(s, r);
	sim_free(s);
	clock_gettime(CLOCK_MONOTONIC, &b);
	r->wall_s = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) /
	    1e9;
	return 0;
}
