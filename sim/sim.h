/* sim/sim.h - the durability simulator: thousands of simulated suppliers
 * and owners in simulated time, run by peerfs's own policy code (the
 * suspect/dead verdict and the placement rules of net/, the rebuild,
 * vetting, hiring and firing rules of owner/), and the closed-form Markov
 * model it is checked against. `peerfs sim` (cli/sim.c) and
 * `make durability` drive it.
 *
 * Layer: between cli/ and owner/ (cli -> sim -> owner -> net -> ...): it
 * uses the pure policy functions of owner/owner.h and net/net.h, never a
 * socket, a store or a thread of theirs. No global state; a run is one
 * struct sim, single-threaded, reproducible from its seed. */
#ifndef PEERFS_SIM_H
#define PEERFS_SIM_H

#include <stdint.h>
#include <stdio.h>

#define SIM_FRAGS_MAX	32	/* k + m: peerfs's own bound (CR_EC_MAX) */
#define SIM_MODEL_MAX	128	/* k + m the Markov model takes */

/* One scenario. Times in seconds of simulated time, rates per year. */
struct sim_conf {
	uint64_t seed;
	int suppliers, owners;
	int blocks;			/* simulated blocks per owner */
	double owner_bytes;		/* data each owner stores */
	int k, m;
	/* suppliers */
	double avail;			/* mean fraction of time online */
	double sessions_per_day;	/* on/off cycles a day */
	double halflife_days;		/* permanent departures; 0: none */
	double disk_loss_per_year;	/* per supplier */
	double bw_min, bw_max;		/* upload, bytes/s, log-uniform */
	int per24;			/* suppliers sharing an IPv4 /24 */
	/* correlated outages: a /24, or a region of region_frac of all */
	double outage24_per_year, outage24_hours;	/* per /24 */
	int regions;
	double region_per_year, region_hours;		/* per region */
	/* the owner's node and the options of `peerfs mount` */
	double owner_hours;		/* online a day; 24: always */
	double suspect_s, dead_s;	/* --suspect-after, --dead-after */
	int fire_below;			/* --fire-below (percent) */
	double window_s;		/* --availability-window */
	double vet_after_s;		/* --vet-after */
	double audit_s;			/* --audit-interval */
	double rebuild_rate;		/* --rebuild-rate, bytes/s */
	int rebuild_jobs;		/* --rebuild-jobs */
	double hirer_s;			/* how often availability is sampled */
	int candidates;			/* DHT records per hire */
	/* For the model check: > 0, every degraded block is repaired after
	 * an exponential delay of this mean, no bandwidth, no job limit. */
	double repair_mean_s;
	double years;
};

/* The defaults of a `peerfs sim` scenario (docs/durability.md). */
void sim_conf_default(struct sim_conf *c);
/* "key = value" (the names of struct sim_conf; ec = K+M, dead = 30m,
 * durations with s/m/h/d). 0, -ENOENT unknown key, -EINVAL bad value. */
int  sim_conf_set(struct sim_conf *c, const char *key, const char *val);

struct sim_result {
	uint64_t seed;
	double block_years;		/* exposure: simulated blocks x years */
	uint64_t losses;		/* blocks with fewer than k usable */
	double loss_rate, loss_lo, loss_hi;	/* per block-year, 95% CI */
	double p_loss_year;		/* 1 - exp(-loss_rate) */
	double degraded_frac;		/* block-time missing a fragment */
	double repair_bytes;		/* moved by rebuilds (real bytes) */
	double repair_tb_month;		/* per stored TB per month */
	double fires;			/* suppliers declared dead/fired */
	int short_owners;		/* hiring fewer than k + m at the end */
	double full_mean_s, full_p95_s;	/* fire -> its blocks full again */
	uint64_t full_n;
	double model_lambda, model_mu;	/* per second, for the Markov model */
	double model_rate;		/* its losses per block-year */
	double peer_years, wall_s;
	uint64_t events;
};

struct sim;
int  sim_new(struct sim **out, const struct sim_conf *c);
void sim_free(struct sim *s);
/* Runs events until simulated time t (s). */
void sim_run_until(struct sim *s, double t);
/* Supplier sup leaves for good now (its disk with it). */
void sim_depart(struct sim *s, int sup);
/* The suppliers holding block b of owner o (k + m of them, -1 where
 * nothing is placed) into sup[]; the block's losses so far. */
int  sim_block_holders(const struct sim *s, int o, int b, int *sup);
uint64_t sim_block_losses(const struct sim *s, int o, int b);
void sim_result(const struct sim *s, struct sim_result *r);
/* sim_new, sim_run_until(years), sim_result, sim_free. */
int  sim_run(const struct sim_conf *c, struct sim_result *r);

/* The Markov model (sim/markov.c): a chain on the usable fragments of a
 * block, from k + m down, each lost at lambda (per s), the block
 * repaired to k + m at mu (per s) while below, absorbing below k. Mean
 * time to data loss from k + m, in s (HUGE_VAL when it overflows). */
double sim_markov_mttdl(int k, int m, double lambda, double mu);

/* The report (sim/report.c): the scenarios of conf (a FILE as read by
 * sim_conf_set, lists allowed for ec, avail, dead, outages, owner_hours),
 * run in jobs processes; the table on out and, when dir is not NULL,
 * dir/durability.tsv for the plots. 0 or -errno. */
int  sim_report(FILE *conf, uint64_t seed, int jobs, int quick, FILE *out,
    const char *dir);

#endif
