/* tests/unit/test_sim.c - the durability simulator (sim/): its Markov
 * model, and the simulation against it and against what must hold. */
#include <math.h>
#include <string.h>

#include "sim/sim.h"
#include "test.h"

#define DAY	86400.0
#define YEAR	(365 * DAY)

/* A world with nothing going wrong: always online, never leaving, no
 * disk loss, no outage. */
static void
calm(struct sim_conf *c)
{
	sim_conf_default(c);
	c->suppliers = 1000;
	c->owners = 20;
	c->blocks = 16;
	c->avail = 1;
	c->halflife_days = 0;
	c->disk_loss_per_year = 0;
	c->outage24_per_year = 0;
	c->region_per_year = 0;
	c->years = 0.1;
}

static int
test_markov(void)
{
	double l = 1 / (20 * DAY), mu = 1 / DAY;

	/* No parity: the first of k failures. */
	CHECK(fabs(sim_markov_mttdl(4, 0, l, mu) * 4 * l - 1) < 1e-12);
	/* 1+1 by hand: T2 = 3/(2 l) + mu/(2 l^2). */
	double t2 = 3 / (2 * l) + mu / (2 * l * l);
	CHECK(fabs(sim_markov_mttdl(1, 1, l, mu) / t2 - 1) < 1e-12);
	/* No repair: the time for m + 1 of n to fail, sum of 1/(i l). */
	double sum = 0;
	for (int i = 4; i <= 6; i++)
		sum += 1 / (i * l);
	CHECK(fabs(sim_markov_mttdl(4, 2, l, 0) / sum - 1) < 1e-12);
	/* More parity or faster repair: longer; and a tiny rate keeps its
	 * precision instead of turning infinite or zero. */
	CHECK(sim_markov_mttdl(4, 3, l, mu) > sim_markov_mttdl(4, 2, l, mu));
	CHECK(sim_markov_mttdl(4, 2, l, 2 * mu) > sim_markov_mttdl(4, 2, l,
	    mu));
	double big = sim_markov_mttdl(29, 51, l, mu);
	CHECK(isfinite(big));
	CHECK(big > sim_markov_mttdl(29, 44, l, mu));
	/* A rate of 1e-40 a year is still a number, not 0 or infinity. */
	double tiny = sim_markov_mttdl(16, 8, l / 100, mu);
	CHECK(isfinite(tiny) && tiny > 1e6 * sim_markov_mttdl(16, 8, l, mu));
	return 0;
}

static int
test_nothing_lost(void)
{
	struct sim_conf c;
	struct sim_result r;

	calm(&c);
	CHECK_EQ(sim_run(&c, &r), 0);
	CHECK_EQ(r.losses, 0);
	CHECK(r.repair_bytes == 0);
	CHECK(r.fires == 0);
	CHECK(r.degraded_frac == 0);
	CHECK(r.block_years > 0);
	return 0;
}

/* m + 1 of a block's suppliers leave at once, before any rebuild could
 * start (--dead-after far away): exactly the blocks with more than m
 * fragments on them are lost, of every owner. */
static int
test_exact_loss(void)
{
	struct sim_conf c;
	struct sim *s;
	int hold[20][16][SIM_FRAGS_MAX], kill[3], n, expect = 0, got = 0;

	calm(&c);
	c.dead_s = 30 * DAY;
	CHECK_EQ(sim_new(&s, &c), 0);
	sim_run_until(s, DAY);
	for (int o = 0; o < c.owners; o++)
		for (int b = 0; b < c.blocks; b++)
			CHECK_EQ(sim_block_holders(s, o, b, hold[o][b]), 6);
	for (int i = 0; i < 3; i++)
		kill[i] = hold[0][0][i];
	for (int i = 0; i < 3; i++)
		sim_depart(s, kill[i]);
	n = c.k + c.m;
	for (int o = 0; o < c.owners; o++)
		for (int b = 0; b < c.blocks; b++) {
			int on = 0;
			for (int i = 0; i < n; i++)
				for (int x = 0; x < 3; x++)
					on += hold[o][b][i] == kill[x];
			CHECK_EQ(sim_block_losses(s, o, b), on > c.m);
			expect += on > c.m;
			got += (int)sim_block_losses(s, o, b);
		}
	CHECK(expect >= 1);
	CHECK_EQ(got, expect);
	/* Nothing else is lost afterwards: the world is calm again. */
	sim_run_until(s, 40 * DAY);
	for (int o = 0; o < c.owners; o++)
		for (int b = 0; b < c.blocks; b++)
			got -= (int)sim_block_losses(s, o, b);
	CHECK_EQ(got, 0);
	sim_free(s);
	return 0;
}

static int
test_same_seed(void)
{
	struct sim_conf c;
	struct sim_result a, b, d;

	sim_conf_default(&c);
	c.suppliers = 1000;
	c.owners = 20;
	c.blocks = 8;
	c.avail = 0.5;
	c.years = 0.05;
	c.seed = 42;
	CHECK_EQ(sim_run(&c, &a), 0);
	CHECK_EQ(sim_run(&c, &b), 0);
	CHECK(a.events > 1000);
	CHECK_EQ(a.events, b.events);
	CHECK_EQ(a.losses, b.losses);
	CHECK(a.repair_bytes == b.repair_bytes);
	CHECK(a.degraded_frac == b.degraded_frac);
	CHECK(a.full_mean_s == b.full_mean_s);
	c.seed = 43;
	CHECK_EQ(sim_run(&c, &d), 0);
	CHECK(d.events != a.events || d.repair_bytes != a.repair_bytes);
	return 0;
}

/* Independent failures (departures only, always online), every degraded
 * block repaired after an exponential delay, no bandwidth limit: the
 * chain the model solves. lambda = 1/(20 d) per fragment, 1/mu = 12 h:
 * about one loss per block-year, so a year of 3,200 blocks counts some
 * 3,000. The tolerance: the simulated rate within 10% of the model's
 * (the run's own 95% interval is about +-6%: owners' blocks share
 * suppliers, so their losses come together; the model ignores the 60 s
 * --dead-after before a repair starts, 0.1%). A simulator
 * that repaired one fragment per delay, or lost a block at m missing,
 * is off by a factor of 2 or more. */
static int
test_markov_agrees(void)
{
	struct sim_conf c;
	struct sim_result r;
	double lambda = 1 / (20 * DAY), mu = 1 / (0.5 * DAY), model;

	calm(&c);
	c.suppliers = 4000;
	c.owners = 400;
	c.blocks = 8;
	c.halflife_days = 20 * M_LN2;
	c.suspect_s = 30;
	c.dead_s = 60;
	c.fire_below = 0;
	c.vet_after_s = 0;
	c.repair_mean_s = 1 / mu;
	c.years = 1;
	c.seed = 7;
	CHECK_EQ(sim_run(&c, &r), 0);
	model = YEAR / sim_markov_mttdl(c.k, c.m, lambda, mu);
	fprintf(stderr, "sim %.3f (%.3f-%.3f, %llu lost), model %.3f losses "
	    "per block-year\n", r.loss_rate, r.loss_lo, r.loss_hi,
	    (unsigned long long)r.losses, model);
	CHECK(r.losses > 1500);
	CHECK(fabs(r.loss_rate / model - 1) < 0.10);
	/* And the rates it measured are the ones it was given. */
	CHECK(fabs(r.model_lambda / lambda - 1) < 0.05);
	return 0;
}

const struct test tests_sim[] = {
	{ "markov", test_markov },
	{ "nothing_lost", test_nothing_lost },
	{ "exact_loss", test_exact_loss },
	{ "same_seed", test_same_seed },
	{ "markov_agrees", test_markov_agrees },
	{ NULL, NULL },
};
