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
 * population stays the same and losses are a rate per block-year.
 *
 * This file: randomness, the event heap, suppliers and their states, the
 * run and its results; what owners do is in sim/owners.c. */
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
#include "sim/internal.h"

/* ---- randomness: xoshiro256**, seeded by splitmix64 ---------------------- */

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
sim__rnd64(struct sim *s)
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

uint32_t
sim__rnd32(void *arg)
{
	return (uint32_t)(sim__rnd64(arg) >> 32);
}

double
sim__unif(struct sim *s)
{
	return (double)(sim__rnd64(s) >> 11) * 0x1.0p-53;
}

double
sim__expo(struct sim *s, double mean)
{
	return -mean * log1p(-sim__unif(s));
}

int
sim__below(struct sim *s, int n)
{
	return (int)(sim__unif(s) * n);
}

/* ---- the event heap ------------------------------------------------------ */

static int
ev_before(const struct ev *a, const struct ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

void
sim__push(struct sim *s, double t, int type, int a, int b, uint32_t gen)
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

void *
sim__grow(void *p, size_t *cap, size_t need, size_t size)
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
		s->s = sim__grow(s->s, &cap, (size_t)s->ns + 1, sizeof *s->s);
		s->caps = (int)cap;
	}
	p = &s->s[s->ns++];
	memset(p, 0, sizeof *p);
	p->bw = exp(log(s->c.bw_min) + sim__unif(s) * log(s->c.bw_max /
	    s->c.bw_min));
	p->p24 = sim__below(s, s->n24);
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
	p->sess_on = s->c.avail >= 1 || sim__unif(s) < s->c.avail;
	p->online = p->sess_on;
	p->off_since = s->now;
	if (s->c.avail < 1)
		sim__push(s, s->now + sim__expo(s, p->sess_on ? on_mean(s) :
		    off_mean(s)), EV_SESSION, i, 0, 0);
	if (s->c.halflife_days > 0)
		sim__push(s, s->now + sim__expo(s, s->c.halflife_days * DAY / M_LN2),
		    EV_DEPART, i, 0, 0);
	if (s->c.disk_loss_per_year > 0)
		sim__push(s, s->now + sim__expo(s, YEAR / s->c.disk_loss_per_year),
		    EV_DISK, i, 0, 0);
	return i;
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
		sim__push(s, s->now + s->c.dead_s, EV_VERDICT, j, 0, p->off_gen);
		return;
	}
	/* Back: a source and a target again for those hiring it (those that
	 * fired it still read from it when they rebuild for another
	 * reason). */
	for (int i = 0; i < p->nown; i++)
		if (sim__hired_at(&s->o[p->own[i]], j) >= 0)
			sim__kick(s, p->own[i]);
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

	if (!o->up || p->online || sim__hired_at(o, j) < 0)
		return;
	if (net_peer_verdict(NET_PEER_OFFLINE, down,
	    (uint64_t)(s->c.suspect_s * 1000), (uint64_t)(s->c.dead_s * 1000))
	    == NET_PEER_DEAD)
		sim__fire(s, oi, j, 0);
	else	/* not yet (its clock began at the mount): then */
		sim__push(s, fmax(from + s->c.dead_s, s->now + 0.001), EV_OVERDICT,
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
					sim__frag_gone(s, oi, bi, i);
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
					sim__frag_gone(s, oi, bi, i);
			}
		/* Its owners' audits find out within a pass. */
		sim__push(s, s->now + sim__unif(s) * s->c.audit_s, EV_AUDIT, oi, j, 0);
	}
	sim__push(s, s->now + sim__expo(s, YEAR / s->c.disk_loss_per_year), EV_DISK,
	    j, 0, 0);
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
		sim__push(s, s->now + sim__expo(s, p->sess_on ? on_mean(s) :
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
			sim__push(s, s->now + s->c.hirer_s, EV_AUDIT, e->a, e->b, 0);
		else
			sim__fire(s, e->a, e->b, 1);
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
		    sim__hired_at(&s->o[e->a], e->b) < 0)
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
			sim__push(s, s->now + sim__expo(s, hours * 3600), e->type, e->a,
			    0, 1);
		else
			sim__push(s, s->now + sim__expo(s, YEAR / (reg ?
			    s->c.region_per_year : s->c.outage24_per_year)),
			    e->type, e->a, 0, 0);
		break;
	}
	case EV_OWNER: {
		int up = !s->o[e->a].up;
		sim__owner_set(s, e->a, up);
		sim__push(s, s->now + (up ? s->c.owner_hours * 3600 :
		    DAY - s->c.owner_hours * 3600), EV_OWNER, e->a, 0, 0);
		break;
	}
	case EV_HIRER:
		sim__hirer(s, e->a);
		break;
	case EV_JOB:
		sim__job_done(s, e->a, e->b, e->gen);
		break;
	case EV_REPAIR:
		if (s->o[e->a].b[e->b].jseq == e->gen &&
		    s->o[e->a].b[e->b].degr_since >= 0)
			sim__repair_now(s, e->a, e->b);
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
		sim__push(s, sim__expo(s, YEAR / c->outage24_per_year), EV_OUT24, p, 0,
		    0);
	for (int r = 0; r < c->regions && c->region_per_year > 0; r++)
		sim__push(s, sim__expo(s, YEAR / c->region_per_year), EV_REGION, r, 0, 0);
	for (int oi = 0; oi < c->owners; oi++) {
		struct owner *o = &s->o[oi];
		if (!(o->b = calloc((size_t)c->blocks, sizeof *o->b)))
			abort();
		o->bw = exp(log(c->bw_min) + sim__unif(s) * log(c->bw_max /
		    c->bw_min));
		o->up = 1;
		o->last_fire = 0;
		sim__hire(s, oi);
		/* The world has been running: these are vetted already. */
		for (int i = 0; i < o->nh; i++)
			o->h[i].first_ok = T0 - (int64_t)c->vet_after_s - 1;
		for (int bi = 0; bi < c->blocks; bi++) {
			o->b[bi].degr_since = -1;
			for (int i = 0; i < s->n; i++)
				o->b[bi].f[i].fire = -1;
			sim__blk_write(s, oi, bi);
		}
		if (c->owner_hours < 24) {
			double ph = sim__unif(s) * DAY, on = c->owner_hours * 3600;
			/* Up during [ph, ph + on) of each day. */
			int up = ph + on > DAY ? 1 : 0;
			double next = up ? ph + on - DAY : ph;
			o->up = 1;
			if (!up)
				sim__owner_set(s, oi, 0);
			sim__push(s, next, EV_OWNER, oi, 0, 0);
		}
		if (c->fire_below > 0)
			sim__push(s, sim__unif(s) * c->hirer_s, EV_HIRER, oi, 0, 0);
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
