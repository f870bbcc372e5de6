/* sim/internal.h - the simulated world's types and the calls between
 * sim/sim.c (randomness, the event heap, suppliers, the run) and
 * sim/owners.c (what owners do: placement, blocks, hiring and firing,
 * rebuild jobs, mounts going up and down). Private to sim/. */
#ifndef PEERFS_SIM_INTERNAL_H
#define PEERFS_SIM_INTERNAL_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

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

/* sim/sim.c: randomness (xoshiro256**; rnd32 for owner_hire_pick), the
 * event heap, and realloc that aborts (a simulation half run is no
 * result). */
uint64_t sim__rnd64(struct sim *s);
uint32_t sim__rnd32(void *arg);
double   sim__unif(struct sim *s);
double   sim__expo(struct sim *s, double mean);
int      sim__below(struct sim *s, int n);
void     sim__push(struct sim *s, double t, int type, int a, int b,
    uint32_t gen);
void    *sim__grow(void *p, size_t *cap, size_t need, size_t size);

/* sim/owners.c, for the events of sim.c. hired_at: the index of sup in
 * o's hired list, -1; blk_write: every fragment of bi placed anew;
 * frag_gone: fragment i left its disk; hire: up to k + m + spares;
 * fire: sup is DEAD to oi (cause: not only unreachable); kick: start
 * rebuild jobs; job_done, repair_now: a rebuild or the model's repair
 * ends; owner_set: the mount goes up or down; hirer: the availability
 * pass (--fire-below). */
int  sim__hired_at(const struct owner *o, int sup);
void sim__blk_write(struct sim *s, int oi, int bi);
void sim__frag_gone(struct sim *s, int oi, int bi, int i);
void sim__hire(struct sim *s, int oi);
void sim__fire(struct sim *s, int oi, int sup, int cause);
void sim__kick(struct sim *s, int oi);
void sim__job_done(struct sim *s, int oi, int bi, uint32_t gen);
void sim__repair_now(struct sim *s, int oi, int bi);
void sim__owner_set(struct sim *s, int oi, int up);
void sim__hirer(struct sim *s, int oi);

#endif
