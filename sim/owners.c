/* sim/owners.c - what the simulated owners do, through peerfs's own
 * policy functions (the list is in sim/sim.c): place fragments under
 * net_place_ok, write and lose blocks, hire and fire suppliers, run
 * rebuild jobs at their bandwidth, and mount and unmount. Events of
 * sim/sim.c call in here; the world's types are in sim/internal.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "owner/owner.h"
#include "sim/internal.h"

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

int
sim__hired_at(const struct owner *o, int sup)
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
		if (sup < 0 || (at = sim__hired_at(o, sup)) < 0)
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
	start = sim__below(s, o->nh);
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
			sim__push(s, s->now + sim__expo(s, s->c.repair_mean_s), EV_REPAIR,
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
	s->full = sim__grow(s->full, &s->capfull, s->nfull + 1, sizeof *s->full);
	s->full[s->nfull++] = s->now - s->fires[f].t;
}

/* Every fragment of block bi placed anew (a first write, or a lost
 * block's successor): wherever placement allows, online or not (an
 * upload waits in the journal for its suppliers). */
void
sim__blk_write(struct sim *s, int oi, int bi)
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
void
sim__frag_gone(struct sim *s, int oi, int bi, int i)
{
	struct blk *b = &s->o[oi].b[bi];

	b->f[i].present = 0;
	b->f[i].lost_t = s->now;
	b->usable--;
	s->frag_lost++;
	if (b->usable < s->c.k) {
		b->losses++;
		s->o[oi].losses++;
		sim__blk_write(s, oi, bi);
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
void
sim__hire(struct sim *s, int oi)
{
	struct owner *o = &s->o[oi];
	int want = s->n + OWNER_HIRE_SPARES;

	while (o->nh < want) {
		struct owner_hire_cand cand[64];
		const char *taken[SIM_FRAGS_MAX + OWNER_HIRE_SPARES + 8];
		int sup[64], nc = 0, picked, tries = 0;

		while (nc < s->c.candidates && tries++ < 4 * s->c.candidates) {
			int j = s->alive[sim__below(s, s->nalive)];
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
			cand[nc].free_bytes = 1 + (sim__rnd64(s) >> 24);
			cand[nc].score = (double)cand[nc].free_bytes;
			sup[nc++] = j;
		}
		for (int i = 0; i < o->nh; i++)
			taken[i] = s->s[o->h[i].sup].addr;
		if (owner_hire_pick(cand, nc, taken, o->nh, 1, 1, 0, sim__rnd32, s,
		    &picked) != 1)
			return;
		int j = sup[picked];
		struct sup *p = &s->s[j];
		if (o->nh == o->caph) {
			size_t cap = (size_t)o->caph;
			o->h = sim__grow(o->h, &cap, (size_t)o->nh + 1, sizeof *o->h);
			o->caph = (int)cap;
		}
		o->h[o->nh++] = (struct hired){ j, { 0, 0 },
		    T0 + (int64_t)(s->now + sim__unif(s) * s->c.audit_s) };
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
			p->own = sim__grow(p->own, &cap, (size_t)p->nown + 1,
			    sizeof *p->own);
			p->capown = (int)cap;
		}
		p->own[p->nown++] = oi;
	}
}

/* Supplier sup is DEAD to owner oi (net__peer_fire): no longer hired,
 * its fragments missing, a replacement hired, rebuilds started. Not for
 * cause (only unreachable): it may be hired again (owner_hire_again). */
void
sim__fire(struct sim *s, int oi, int sup, int cause)
{
	struct owner *o = &s->o[oi];
	int at = sim__hired_at(o, sup), f;

	if (at < 0)
		return;
	o->h[at] = o->h[--o->nh];
	if (!cause) {
		o->gone = sim__grow(o->gone, &o->capgone, o->ngone + 1,
		    sizeof *o->gone);
		o->gone[o->ngone++] = (struct gone){ sup,
		    T0 * 1000ll + (int64_t)(s->now * 1000) };
	}
	s->fires = sim__grow(s->fires, &s->capfires, s->nfires + 1,
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
	sim__hire(s, oi);
	sim__kick(s, oi);
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
	sim__push(s, s->now + dur, EV_JOB, oi, bi, ++b->jseq);
	return 1;
}

/* The rebuild workers: while the owner is up, the blocks with the fewest
 * surviving fragments first (the rebuild queue's order). */
void
sim__kick(struct sim *s, int oi)
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

void
sim__job_done(struct sim *s, int oi, int bi, uint32_t gen)
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
		if (sim__hired_at(o, t) >= 0 && s->s[t].alive)
			place_done(s, oi, bi, i, t);
	}
	degr_update(s, oi, bi);
	sim__kick(s, oi);
}

/* The model check's repair: after an exponential delay, every missing
 * fragment placed, with no bandwidth and no job limit. */
void
sim__repair_now(struct sim *s, int oi, int bi)
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
		sim__push(s, s->now + sim__expo(s, s->c.repair_mean_s), EV_REPAIR, oi,
		    bi, ++b->jseq);
	}
}

/* ---- owners ------------------------------------------------------------------- */

void
sim__owner_set(struct sim *s, int oi, int up)
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
			sim__push(s, s->now + s->c.dead_s, EV_OVERDICT, oi,
			    o->h[i].sup, p->off_gen);
	}
	sim__hire(s, oi);
	sim__kick(s, oi);
}

void
sim__hirer(struct sim *s, int oi)
{
	struct owner *o = &s->o[oi];
	const struct owner_hire_watch *w[SIM_FRAGS_MAX + OWNER_HIRE_SPARES + 8];
	int64_t now = (int64_t)(s->now * 1000), last = (int64_t)(o->last_pass
	    * 1000);
	int at;

	sim__push(s, s->now + s->c.hirer_s, EV_HIRER, oi, 0, 0);
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
		sim__fire(s, oi, o->h[at].sup, 1);
	}
}
