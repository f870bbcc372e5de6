/* sim/report.c - scenarios: their defaults, the configuration file, the
 * grid of scenarios run in parallel processes (each single-threaded and
 * seeded, so the output does not depend on how they are shared out),
 * and the table. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim/sim.h"

#define LIST_MAX	8

void
sim_conf_default(struct sim_conf *c)
{
	memset(c, 0, sizeof *c);
	c->seed = 1;
	c->suppliers = 10000;
	c->owners = 200;
	c->blocks = 32;
	c->owner_bytes = 100e9;
	c->k = 4;
	c->m = 2;
	c->avail = 0.8;
	c->sessions_per_day = 2;
	c->halflife_days = 180;
	c->disk_loss_per_year = 0.03;
	c->bw_min = 2e6 / 8;
	c->bw_max = 50e6 / 8;
	c->per24 = 2;
	c->outage24_per_year = 4;
	c->outage24_hours = 3;
	c->regions = 20;
	c->region_per_year = 2;
	c->region_hours = 4;
	c->owner_hours = 24;
	/* The mount's defaults (cli/options.c). */
	c->suspect_s = 120;
	c->dead_s = 3 * 86400;
	c->fire_below = 50;
	c->window_s = 86400;
	c->vet_after_s = 3 * 86400;
	c->audit_s = 7 * 86400;
	c->rebuild_rate = 50e6;
	c->rebuild_jobs = 2;
	c->hirer_s = 1800;
	c->candidates = 16;
	c->years = 1;
}

/* 30m, 6h, 3d, 90s, or plain seconds. */
static int
duration(const char *v, double *out)
{
	char *end;
	double x = strtod(v, &end);

	if (end == v || x < 0)
		return -EINVAL;
	while (*end == ' ')
		end++;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		*out = x;
	else if (!strcmp(end, "m"))
		*out = x * 60;
	else if (!strcmp(end, "h"))
		*out = x * 3600;
	else if (!strcmp(end, "d"))
		*out = x * 86400;
	else
		return -EINVAL;
	return 0;
}

static int
number(const char *v, double *out)
{
	char *end;

	*out = strtod(v, &end);
	while (*end == ' ' || *end == '%')
		end++;
	return end == v || *end ? -EINVAL : 0;
}

int
sim_conf_set(struct sim_conf *c, const char *key, const char *val)
{
	static const struct {
		const char *name;
		char kind;		/* i int, d double, t duration */
		size_t off;
	} keys[] = {
#define K(n, kind) { #n, kind, offsetof(struct sim_conf, n) }
		K(suppliers, 'i'), K(owners, 'i'), K(blocks, 'i'),
		K(owner_bytes, 'd'), K(avail, 'd'), K(sessions_per_day, 'd'),
		K(halflife_days, 'd'), K(disk_loss_per_year, 'd'),
		K(bw_min, 'd'), K(bw_max, 'd'), K(per24, 'i'),
		K(outage24_per_year, 'd'), K(outage24_hours, 'd'),
		K(regions, 'i'), K(region_per_year, 'd'), K(region_hours, 'd'),
		K(owner_hours, 'd'), K(suspect_s, 't'), K(dead_s, 't'),
		K(fire_below, 'i'), K(window_s, 't'), K(vet_after_s, 't'),
		K(audit_s, 't'), K(rebuild_rate, 'd'), K(rebuild_jobs, 'i'),
		K(hirer_s, 't'), K(candidates, 'i'), K(repair_mean_s, 't'),
		K(years, 'd'),
#undef K
	};
	double x;

	if (!strcmp(key, "ec")) {
		int k, m, used = 0;
		if (sscanf(val, "%d+%d%n", &k, &m, &used) != 2 ||
		    val[used] || k < 1 || m < 1 || k + m > SIM_MODEL_MAX)
			return -EINVAL;
		c->k = k;
		c->m = m;
		return 0;
	}
	if (!strcmp(key, "seed")) {
		char *end;
		c->seed = strtoull(val, &end, 0);
		return end == val || *end ? -EINVAL : 0;
	}
	if (!strcmp(key, "outages")) {
		int on = !strcmp(val, "on");
		if (!on && strcmp(val, "off"))
			return -EINVAL;
		if (!on)
			c->outage24_per_year = c->region_per_year = 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (strcmp(key, keys[i].name))
			continue;
		if ((keys[i].kind == 't' ? duration(val, &x) :
		    number(val, &x)) < 0)
			return -EINVAL;
		if (!strcmp(key, "avail") && x > 1)
			x /= 100;	/* "80%" */
		if (keys[i].kind == 'i') {
			if (x != floor(x) || x < 0 || x > 1e9)
				return -EINVAL;
			*(int *)((char *)c + keys[i].off) = (int)x;
		} else {
			*(double *)((char *)c + keys[i].off) = x;
		}
		return 0;
	}
	return -ENOENT;
}

/* ---- the grid ----------------------------------------------------------- */

/* The axes of the report; a key given with commas in the file is one. */
static const char *const axes[] = { "ec", "avail", "dead_s", "outages",
	"owner_hours" };
#define NAXES	5

struct grid {
	struct sim_conf base;
	char val[NAXES][LIST_MAX][32];
	int nval[NAXES];
};

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	    e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int
axis_of(const char *key)
{
	for (int a = 0; a < NAXES; a++)
		if (!strcmp(key, axes[a]) || (a == 2 && !strcmp(key, "dead")))
			return a;
	return -1;
}

static int
grid_set(struct grid *g, const char *key, char *val)
{
	int a = axis_of(key), rc;
	struct sim_conf probe = g->base;

	if (a < 0)
		return sim_conf_set(&g->base, key, val);
	g->nval[a] = 0;
	for (char *save, *v = strtok_r(val, ",", &save); v;
	    v = strtok_r(NULL, ",", &save)) {
		v = trim(v);
		if (g->nval[a] == LIST_MAX || strlen(v) >= 32)
			return -EINVAL;
		if ((rc = sim_conf_set(&probe, axes[a], v)) < 0)
			return rc;
		snprintf(g->val[a][g->nval[a]++], 32, "%s", v);
	}
	return g->nval[a] ? 0 : -EINVAL;
}

/* The default grid: every code against availability and dead-after,
 * with outages and an owner always up; then each code at 80% without
 * outages, and with an owner up 8 hours a day. */
static const char *const def_axes[NAXES] = { "4+2,6+3,10+4,16+8,29+51",
	"20%,50%,80%,95%", "30m,6h,3d", "on", "24" };

static int
grid_read(struct grid *g, FILE *f, int quick)
{
	char line[512];
	int no = 0, rc;

	sim_conf_default(&g->base);
	for (int a = 0; a < NAXES; a++) {
		char v[128];
		snprintf(v, sizeof v, "%s", def_axes[a]);
		if ((rc = grid_set(g, axes[a], v)) < 0)
			return rc;
	}
	if (quick) {
		/* A smoke run: small, fast, every code path. */
		g->base.suppliers = 2000;
		g->base.owners = 40;
		g->base.blocks = 16;
		g->base.years = 0.25;
	}
	while (f && fgets(line, sizeof line, f)) {
		char *s = line, *eq, *k;
		no++;
		if ((eq = strchr(s, '#')))
			*eq = '\0';
		s = trim(s);
		if (!*s || *s == '[')
			continue;
		if (!(eq = strchr(s, '='))) {
			fprintf(stderr, "sim: line %d: no '='\n", no);
			return -EINVAL;
		}
		*eq = '\0';
		k = trim(s);
		if ((rc = grid_set(g, k, trim(eq + 1))) < 0) {
			fprintf(stderr, "sim: line %d: %s: %s\n", no, k,
			    rc == -ENOENT ? "unknown key" : "bad value");
			return rc;
		}
	}
	return 0;
}

struct row {
	struct sim_conf c;
	struct sim_result r;
	int model_only;			/* k + m beyond peerfs's 32 */
	int rc;
};

static int
rows_make(const struct grid *g, struct row **out)
{
	int total = 1, idx[NAXES] = { 0 }, n = 0;
	struct row *rows = NULL;

	for (int a = 0; a < NAXES; a++)
		total *= g->nval[a];
	rows = mmap(NULL, (size_t)total * sizeof *rows, PROT_READ |
	    PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rows == MAP_FAILED)
		return -errno;
	for (n = 0; n < total; n++) {
		struct row *w = &rows[n];
		int x = n;
		for (int a = NAXES - 1; a >= 0; a--) {
			idx[a] = x % g->nval[a];
			x /= g->nval[a];
		}
		memset(w, 0, sizeof *w);
		w->c = g->base;
		for (int a = 0; a < NAXES; a++)
			sim_conf_set(&w->c, axes[a], g->val[a][idx[a]]);
		/* Each its own stream, whatever runs it. */
		w->c.seed = g->base.seed * 1000003u + (uint64_t)n;
		w->model_only = w->c.k + w->c.m > SIM_FRAGS_MAX;
	}
	*out = rows;
	return total;
}

static void
run_rows(struct row *rows, int n, int jobs)
{
	pid_t pid[64];

	if (jobs < 1)
		jobs = 1;
	if (jobs > 64)
		jobs = 64;
	for (int j = 0; j < jobs; j++) {
		if ((pid[j] = fork()) < 0) {
			pid[j] = 0;
			continue;
		}
		if (pid[j] > 0)
			continue;
		for (int i = j; i < n; i += jobs)
			if (!rows[i].model_only)
				rows[i].rc = sim_run(&rows[i].c, &rows[i].r);
		_exit(0);
	}
	for (int j = 0; j < jobs; j++) {
		if (pid[j] > 0) {
			waitpid(pid[j], NULL, 0);
			continue;
		}
		/* fork failed: this process runs that share */
		for (int i = j; i < n; i += jobs)
			if (!rows[i].model_only)
				rows[i].rc = sim_run(&rows[i].c, &rows[i].r);
	}
}

/* 29+51 is beyond peerfs (k + m <= 32): the model alone, with the
 * fragment failure rate of the largest simulated code under the same
 * conditions (a supplier's, not a code's) and its repair time scaled by
 * the fragments a repair moves (k + 1 per missing one). */
static void
model_only(struct row *rows, int n)
{
	for (int i = 0; i < n; i++) {
		struct row *w = &rows[i], *best = NULL;
		if (!w->model_only)
			continue;
		for (int j = 0; j < n; j++) {
			struct row *v = &rows[j];
			if (v->model_only || v->rc || v->c.avail != w->c.avail ||
			    v->c.dead_s != w->c.dead_s ||
			    v->c.owner_hours != w->c.owner_hours ||
			    v->c.region_per_year != w->c.region_per_year)
				continue;
			if (!best || v->c.k + v->c.m > best->c.k + best->c.m)
				best = v;
		}
		/* Nothing to carry over where the owners ran short of
		 * suppliers: the rates measured there are not a code's. */
		if (!best || best->r.model_lambda <= 0 ||
		    best->r.short_owners > 0)
			continue;
		w->r.seed = w->c.seed;
		w->r.model_lambda = best->r.model_lambda;
		w->r.model_mu = best->r.model_mu * (best->c.k + 1.0) /
		    (w->c.k + 1.0);
		w->r.model_rate = 365 * 86400.0 / sim_markov_mttdl(w->c.k,
		    w->c.m, w->r.model_lambda, w->r.model_mu);
	}
}

static const char *
dur_text(double s, char *buf, size_t n)
{
	if (s >= 86400 && fmod(s, 86400) == 0)
		snprintf(buf, n, "%.0fd", s / 86400);
	else if (s >= 3600 && fmod(s, 3600) == 0)
		snprintf(buf, n, "%.0fh", s / 3600);
	else if (s >= 60)
		snprintf(buf, n, "%.0fm", s / 60);
	else
		snprintf(buf, n, "%.0fs", s);
	return buf;
}

static const char *
hours_text(double s, char *buf, size_t n)
{
	if (s <= 0)
		snprintf(buf, n, "-");
	else if (s < 3600)
		snprintf(buf, n, "%.0fm", s / 60);
	else
		snprintf(buf, n, "%.1fh", s / 3600);
	return buf;
}

/* P(loss) of a year: the simulation's when it counted losses, else the
 * model's (marked), as the figure to plot and to judge by. */
static double
p_year(const struct row *w, int *from_model)
{
	*from_model = w->model_only || w->r.losses == 0;
	if (!*from_model)
		return w->r.p_loss_year;
	if (w->r.model_lambda <= 0)
		return -1;		/* no figure */
	return -expm1(-w->r.model_rate);
}

static void
print_table(FILE *out, const struct row *rows, int n)
{
	char d[16], t1[16], t2[16];
	double peer_years = 0, wall = 0;

	fprintf(out, "| k+m | avail | dead-after | outages | owner h/day | "
	    "P(loss)/year (95%% CI) | model | degraded | repair TB/TB-month | "
	    "to full: mean, p95 | short | seed |\n");
	fprintf(out, "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < n; i++) {
		const struct row *w = &rows[i];
		int outages = w->c.region_per_year > 0 ||
		    w->c.outage24_per_year > 0;
		fprintf(out, "| %d+%d | %.0f%% | %s | %s | %.0f | ", w->c.k,
		    w->c.m, w->c.avail * 100, dur_text(w->c.dead_s, d,
		    sizeof d), outages ? "yes" : "no", w->c.owner_hours);
		if (w->model_only)
			fprintf(out, "not simulated (k+m > %d) | ",
			    SIM_FRAGS_MAX);
		else if (w->rc)
			fprintf(out, "error %d | ", w->rc);
		else if (w->r.losses)
			fprintf(out, "%.3g (%.3g-%.3g), %" PRIu64 " lost | ",
			    w->r.p_loss_year, -expm1(-w->r.loss_lo),
			    -expm1(-w->r.loss_hi), w->r.losses);
		else
			fprintf(out, "0 lost (< %.2g) | ",
			    -expm1(-w->r.loss_hi));
		if (w->r.model_lambda > 0)
			fprintf(out, "%.3g | ", -expm1(-w->r.model_rate));
		else
			fprintf(out, "- | ");
		if (w->model_only) {
			fprintf(out, "- | - | - | - | %" PRIu64 " |\n",
			    w->c.seed);
			continue;
		}
		fprintf(out, "%.2g | %.3g | %s, %s | %d/%d | %" PRIu64 " |\n",
		    w->r.degraded_frac, w->r.repair_tb_month,
		    hours_text(w->r.full_mean_s, t1, sizeof t1),
		    hours_text(w->r.full_p95_s, t2, sizeof t2),
		    w->r.short_owners, w->c.owners, w->c.seed);
		peer_years += w->r.peer_years;
		wall += w->r.wall_s;
	}
	if (wall > 0)
		fprintf(out, "\nsim_peer_years_per_s %.0f (per core; %.0f "
		    "peer-years in %.1f s of runs)\n", peer_years / wall,
		    peer_years, wall);
}

static int
write_tsv(const char *dir, const struct row *rows, int n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/durability.tsv", dir);
	if (!(f = fopen(path, "w")))
		return -errno;
	/* p_year -1: no figure (not simulated, and nothing to model). */
	fprintf(f, "# k\tm\tavail\tdead_s\toutages\towner_h\tp_year\t"
	    "from_model\trepair_tb_month\tdegraded\tfull_mean_h\tlosses\n");
	for (int i = 0; i < n; i++) {
		const struct row *w = &rows[i];
		int fm;
		double p = p_year(w, &fm);
		fprintf(f, "%d\t%d\t%.0f\t%.0f\t%d\t%.0f\t%.4g\t%d\t%.4g\t%.4g\t"
		    "%.3g\t%" PRIu64 "\n", w->c.k, w->c.m, w->c.avail * 100,
		    w->c.dead_s, w->c.region_per_year > 0 ||
		    w->c.outage24_per_year > 0, w->c.owner_hours, p, fm,
		    w->r.repair_tb_month, w->r.degraded_frac,
		    w->r.full_mean_s / 3600, w->r.losses);
	}
	return fclose(f) ? -errno : 0;
}

int
sim_report(FILE *conf, uint64_t seed, int jobs, int quick, FILE *out,
    const char *dir)
{
	struct grid g;
	struct row *rows = NULL;
	int n, rc;

	memset(&g, 0, sizeof g);
	if ((rc = grid_read(&g, conf, quick)) < 0)
		return rc;
	if (seed)
		g.base.seed = seed;
	fprintf(out, "seed %" PRIu64 ": %d suppliers, %d owners of %.0f GB "
	    "each as %d simulated blocks, %.2g years\n\n", g.base.seed,
	    g.base.suppliers, g.base.owners, g.base.owner_bytes / 1e9,
	    g.base.blocks, g.base.years);
	fflush(out);
	if ((n = rows_make(&g, &rows)) < 0)
		return n;
	run_rows(rows, n, jobs);
	model_only(rows, n);
	print_table(out, rows, n);
	rc = dir ? write_tsv(dir, rows, n) : 0;
	for (int i = 0; rc == 0 && i < n; i++)
		if (rows[i].rc)
			rc = rows[i].rc;
	munmap(rows, (size_t)n * sizeof *rows);
	return rc;
}
