/* cli/network.c - joining the network: `peerfs id`, the remembered
 * bootstrap nodes, and a mount's hiring of suppliers found in the DHT.
 * The DHT node itself is net/dht.c; whom to hire is owner/hire.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "log.h"
#include "net/dht.h"
#include "owner/owner.h"
#include "util.h"
#include "worker.h"

#define LOOKUP_MS	2000	/* per remembered supplier */
#define FIND_MS		8000	/* for k + m supplier records */
#define SPARE_MS	2000	/* for the spares too */
#define RELOOK_MS	1000	/* one DHT lookup of a lost supplier; one
				 * wait for records when replacing */

static void
hex(char *out, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static int
unhex(unsigned char *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (unsigned char)v;
	}
	return s[2 * n] == '\0' || s[2 * n] == ' ' ? 0 : -EINVAL;
}

int
cmd_id(int argc, char **argv)
{
	struct cli_conf o;
	struct cr_identity *id;
	char h[2 * CR_PK_BYTES + 1];
	int rc;

	if ((rc = cli_parse(CLI_ID, argc, argv, &o)) != CLI_RUN)
		return rc;
	if (cr_init() < 0)
		return 1;
	char *home = cli_home(o.home);
	rc = cli_load_identity(home, NULL, &id);
	free(home);
	if (rc < 0)
		return 1;
	hex(h, id->pk, CR_PK_BYTES);
	printf("%s\n", h);
	cr_identity_free(id);
	return 0;
}

/* ---- remembered bootstrap nodes ---------------------------------------- */

void
cli_strv_free(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
strv_add(char ***v, int *n, const char *s)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp((*v)[i], s))
			return 0;
	char **nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

int
cli_bootstrap_merge(const char *home, const char *const *given, int ngiven,
    int create, char ***out, int *n)
{
	char *path = cli_path(home, "bootstrap"), *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int known;

	*out = NULL;
	*n = 0;
	for (int i = 0; i < ngiven; i++)
		strv_add(out, n, given[i]);
	known = (f = fopen(path, "r")) != NULL;
	if (f) {
		while ((len = getline(&line, &cap, f)) > 0) {
			line[strcspn(line, "\r\n")] = '\0';
			if (line[0] && strchr(line, ':'))
				strv_add(out, n, line);
		}
		fclose(f);
		free(line);
	}
	/* Written back when something was given (or the node asked to start
	 * a network): a restart then needs no --bootstrap. */
	if (ngiven > 0 || (create && !known)) {
		char *tmp = cli_path(home, "bootstrap.tmp");
		if ((f = fopen(tmp, "w"))) {
			for (int i = 0; i < *n; i++)
				fprintf(f, "%s\n", (*out)[i]);
			if (fclose(f) == 0)
				rename(tmp, path);
		}
		free(tmp);
		known = 1;
	}
	free(path);
	return known;
}

int
cli_lan_remember(const char *home, int given)
{
	char *path = cli_path(home, "lan");
	int known = path && access(path, F_OK) == 0;
	FILE *f;

	if (given && !known && path && (f = fopen(path, "w"))) {
		fputs("# --lan: this node's network is one private LAN "
		    "(README, Network); delete this file to leave that mode\n",
		    f);
		if (fclose(f) != 0)
			log_warn("%s: %s", path, strerror(errno));
	}
	free(path);
	return given || known;
}

/* ---- a mount's hiring -------------------------------------------------- */

/* The local address a packet to hostport would leave from (connect on a
 * UDP socket sends nothing), with port 0: where the mount's DHT node
 * binds, having no listen address of its own. */
int
cli_local_addr_for(const char *hostport, char *out, size_t size)
{
	char host[64];
	struct sockaddr_storage ss = { 0 }, me;
	socklen_t sl = sizeof me;
	int fd, rc = -EINVAL;

	if (hostport_host(hostport, host, sizeof host) < 0)
		return -EINVAL;
	uint16_t port = (uint16_t)atoi(strrchr(hostport, ':') + 1);
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
	} else {
		return -EINVAL;
	}
	if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, ss.ss_family == AF_INET ?
	    sizeof *s4 : sizeof *s6) == 0 &&
	    getsockname(fd, (struct sockaddr *)&me, &sl) == 0) {
		char a[INET6_ADDRSTRLEN];
		if (me.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&me)->sin_addr,
			    a, sizeof a);
			snprintf(out, size, "%s:0", a);
		} else {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&me)->sin6_addr,
			    a, sizeof a);
			snprintf(out, size, "[%s]:0", a);
		}
		rc = 0;
	} else {
		rc = -errno;
	}
	close(fd);
	return rc;
}

/* Ids not to hire: those already known to the client (a dead supplier
 * stays known to it), p[0..n) as net_peers says, but for one declared
 * dead only for being unreachable that owner_hire_again takes back at
 * now (unix ms) after cooldown ms. */
struct hire_skip {
	const struct net_peer_info *p;
	int n;
	int64_t now, cooldown;
};

/* 1: the record r is of a supplier in skip not to hire; 0: a stranger;
 * 2: one declared dead that may be hired again. */
static int
skipped(const struct hire_skip *skip, const struct net_record *r)
{
	for (int j = 0; skip && j < skip->n; j++) {
		const struct net_peer_info *p = &skip->p[j];
		if (sodium_is_zero(p->pk, CR_PK_BYTES) ||
		    memcmp(p->pk, r->id, CR_PK_BYTES))
			continue;
		/* The record's seq is when it was made, in unix ms. */
		return owner_hire_again(p->fired, p->dead_at, (int64_t)r->seq,
		    skip->now, skip->cooldown) ? 2 : 1;
	}
	return 0;
}

static uint32_t
sodium_rnd(void *arg)
{
	return randombytes_random();
}

struct hired {
	unsigned char id[CR_PK_BYTES];
	char addr[NET_RECORD_ADDR_MAX + 1];
	/* The hirer's (ms of worker_now_ms()): next DHT lookup; since when
	 * its availability (0..1, moving average over the window) is kept. */
	int64_t next_lookup;
	struct owner_hire_watch w;
};

/* <home>/hired: "<hex id> <address>" per supplier hired through the
 * network, so that the next mount goes back to the ones holding our
 * fragments (looked up again by id: the address may have changed). */
static int
hired_load(const char *home, struct hired **out)
{
	char *path = cli_path(home, "hired"), *line = NULL;
	size_t cap = 0;
	struct hired *h = NULL;
	int n = 0;
	FILE *f = fopen(path, "r");

	free(path);
	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		struct hired e = { 0 };
		char *sp = strchr(line, ' ');
		line[strcspn(line, "\r\n")] = '\0';
		if (!sp || unhex(e.id, line, CR_PK_BYTES) < 0 ||
		    strlen(sp + 1) > NET_RECORD_ADDR_MAX)
			continue;
		snprintf(e.addr, sizeof e.addr, "%s", sp + 1);
		struct hired *nh = realloc(h, (size_t)(n + 1) * sizeof *nh);
		if (!nh)
			break;
		h = nh;
		h[n++] = e;
	}
	fclose(f);
	free(line);
	*out = h;
	return n;
}

static void
hired_save(const char *home, const struct hired *h, int n)
{
	char *path = cli_path(home, "hired"), *tmp = cli_path(home, "hired.tmp");
	char x[2 * CR_PK_BYTES + 1];
	FILE *f = fopen(tmp, "w");

	if (f) {
		for (int i = 0; i < n; i++) {
			hex(x, h[i].id, CR_PK_BYTES);
			fprintf(f, "%s %s\n", x, h[i].addr);
		}
		if (fclose(f) == 0)
			rename(tmp, path);
	}
	free(path);
	free(tmp);
}

/* How a record says its node is reached (net_peer_set_reach): "direct",
 * "mapped", "relay via ID" (the start of the relay's key), "". */
static void
record_reach(const struct net_record *r, char *out, size_t size)
{
	char hex[17];

	if (r->flags & NET_RECORD_RELAYED && r->nrelay) {
		sodium_bin2hex(hex, sizeof hex, r->relay_id[0], 8);
		snprintf(out, size, "relay via %s", hex);
		return;
	}
	snprintf(out, size, "%s", r->flags & NET_RECORD_MAPPED ? "mapped" :
	    r->flags & NET_RECORD_DIRECT ? "direct" : "");
}

/* The key of the relay r's node is reached through, NULL: none. */
static const unsigned char *
relay_of(const struct net_record *r)
{
	return r->flags & NET_RECORD_RELAYED && r->nrelay ? r->relay_id[0] :
	    NULL;
}

void
cli_record_addr(const struct net_record *r, char *out, size_t size)
{
	char hex[17];

	if (!(r->flags & NET_RECORD_RELAYED && r->nrelay)) {
		snprintf(out, size, "%s", r->addr[0]);
		return;
	}
	sodium_bin2hex(hex, sizeof hex, r->id, 8);
	/* Too long a name is no name: such a record is not hired. */
	int n = snprintf(out, size, "%s~%s", r->addr[0], hex);
	if (n < 0 || (size_t)n >= size)
		out[0] = '\0';
}

/* Hires up to want - *count more suppliers from d's supplier records
 * into h[*count..] (room for want entries): none whose id is in h or in
 * skip (may be NULL), none on the address block of an entry of h, the
 * better of two random by free space. Each is pinned to its record's key, then added to net.
 * Waits up to FIND_MS for need records. Returns the records seen. */
static int
hire_more(struct net *net, struct net_dht *d, struct hired *h, int *count,
    int want, int need, const struct hire_skip *skip)
{
	struct net_record recs[64];
	struct owner_hire_cand cand[64];
	const char *taken[64];
	char reach[64][48];
	int cidx[64];			/* cand -> recs */
	int picked[64], again[64], nc = 0, nt = 0;
	/* All we want if they come quickly; else the k + m needed, for
	 * longer: a small network has no spares to give. While mounted
	 * (skip), only the records the suppliers key we listen to brought:
	 * asking the network again every few seconds would only bring the
	 * same records to check again. */
	int nr = net_dht_suppliers(d, skip ? 0 : want, skip ? 0 : SPARE_MS,
	    recs, 64);

	if (nr < need)
		nr = net_dht_suppliers(d, need, FIND_MS, recs, 64);
	for (int j = 0; j < *count && nt < 64; j++)
		taken[nt++] = h[j].addr;
	for (int i = 0; i < nr; i++) {
		int dup = 0, sk = skipped(skip, &recs[i]);
		for (int j = 0; j < *count; j++)
			dup |= !memcmp(h[j].id, recs[i].id, CR_PK_BYTES);
		if (dup || sk == 1)
			continue;
		again[nc] = sk == 2;
		memcpy(cand[nc].id, recs[i].id, CR_PK_BYTES);
		cli_record_addr(&recs[i], cand[nc].addr, sizeof cand[nc].addr);
		if (!cand[nc].addr[0])
			continue;
		cand[nc].free_bytes = recs[i].free_bytes;
		record_reach(&recs[i], reach[nc], sizeof reach[nc]);
		cidx[nc] = i;
		/* No history yet: more room offered is better. */
		cand[nc].score = (double)recs[i].free_bytes;
		nc++;
	}
	int np = owner_hire_pick(cand, nc, taken, nt, want - *count, 1,
	    net_lan(net), sodium_rnd, NULL, picked);
	for (int i = 0; i < np; i++) {
		const struct owner_hire_cand *c = &cand[picked[i]];
		/* Known already, dead and back: where its record says, and
		 * judged afresh. */
		if (again[picked[i]]) {
			int rc = net_peer_move(net, c->id, NULL, c->addr);
			if (rc < 0 || (rc = net_peer_revive(net, c->id)) < 0) {
				log_warn("supplier %s: not hired again: %s",
				    c->addr, strerror(-rc));
				continue;
			}
		/* Pinned before the first byte goes there: a session to that
		 * address with another key is refused. */
		} else if (net_add_known_peer(net, c->addr, c->id) < 0) {
			log_warn("supplier %s: address pinned to another key: "
			    "not hired", c->addr);
			continue;
		}
		net_peer_set_reach(net, c->id, c->addr, reach[picked[i]],
		    relay_of(&recs[cidx[picked[i]]]));
		memset(&h[*count], 0, sizeof h[*count]);
		memcpy(h[*count].id, c->id, CR_PK_BYTES);
		snprintf(h[*count].addr, sizeof h[*count].addr, "%s", c->addr);
		(*count)++;
		log_info("hired supplier %s (found in the network)", c->addr);
	}
	return nr;
}

int
cli_net_hire(struct net *net, const struct cr_identity *id, const char *home,
    char **boot, int nboot, int k, int m, struct net_dht **out)
{
	struct hired *h = NULL;
	int nh = hired_load(home, &h), want = k + m + OWNER_HIRE_SPARES,
	    count = 0, rc;
	char bind[80];
	char **bl = NULL;
	int nbl = 0;
	struct net_dht *d = NULL;

	/* Suppliers we hired run DHT nodes on their addresses: bootstraps
	 * too, should the given ones be gone. */
	for (int i = 0; i < nboot; i++)
		strv_add(&bl, &nbl, boot[i]);
	for (int i = 0; i < nh; i++)
		if (!strchr(h[i].addr, '~'))	/* not through a relay */
			strv_add(&bl, &nbl, h[i].addr);
	rc = -EINVAL;
	for (int i = 0; i < nbl && rc < 0; i++)
		rc = cli_local_addr_for(bl[i], bind, sizeof bind);
	if (rc < 0) {
		log_error("dht: no route to any bootstrap node");
		goto out;
	}
	struct net_dht_conf dc = {
		.id = id, .bind = bind, .bootstrap = (const char *const *)bl,
		.nbootstrap = nbl, .watch_suppliers = 1,
	};
	if ((rc = net_dht_new(&d, &dc)) < 0) {
		log_error("dht: cannot start a node on %s: %s", bind,
		    strerror(-rc));
		goto out;
	}
	/* Those holding our fragments first, at their newest address. */
	struct hired *keep = calloc((size_t)(nh + want) + 1, sizeof *keep);
	if (!keep) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < nh; i++) {
		struct net_record r;
		char addr[sizeof h[i].addr];
		keep[count] = h[i];
		if (net_dht_lookup(d, h[i].id, LOOKUP_MS, &r) == 0 &&
		    (cli_record_addr(&r, addr, sizeof addr), addr[0]) &&
		    strcmp(addr, h[i].addr) != 0) {
			log_info("supplier %s moved to %s", h[i].addr, addr);
			snprintf(keep[count].addr, sizeof keep[count].addr, "%s",
			    addr);
		}
		if (net_add_known_peer(net, keep[count].addr, keep[count].id) < 0) {
			log_warn("supplier %s: its key does not match the one "
			    "pinned for that address: not used", keep[count].addr);
			continue;
		}
		count++;
	}
	if (count < want) {
		int nr = hire_more(net, d, keep, &count, want, k + m, NULL);
		log_info("dht: %d supplier records found, %d hired in all "
		    "(want %d)", nr, count, want);
	}
	hired_save(home, keep, count);
	free(keep);
	*out = d;
	d = NULL;
	rc = count;
out:
	net_dht_free(d);
	cli_strv_free(bl, nbl);
	free(h);
	return rc;
}

/* ---- the hirer: addresses by id and replacements, while mounted --------- */

#define HIRER_MS	500	/* supplier states looked at */
#define RELOOK_EVERY_MS	2000	/* per supplier, while it stays away */
#define HIRE_EVERY_MS	3000	/* one hire at a time, at most this often */
#define RECHECK_MS	10000	/* an online supplier's record, looked up */
#define HIRER_PEERS	256

struct cli_hirer {
	struct net *net;
	struct net_dht *dht;
	char *home;
	int want;			/* k + m + spares */
	int need;			/* k + m */
	int fire_below;			/* percent; 0: never */
	int64_t window, last_pass, last_fire;
	struct hired *h;		/* the hirer's own: no lock */
	int nh;
	int64_t next_hire;
	struct net_peer_info info[HIRER_PEERS];
	struct worker *w;
};

static const struct net_peer_info *
info_of(const struct cli_hirer *c, int n, const struct hired *h)
{
	for (int i = 0; i < n; i++)
		if (!memcmp(c->info[i].pk, h->id, CR_PK_BYTES))
			return &c->info[i];
	/* Not reached yet in this mount: no key, known by its address. */
	for (int i = 0; i < n; i++)
		if (sodium_is_zero(c->info[i].pk, CR_PK_BYTES) &&
		    !strcmp(c->info[i].addr, h->addr))
			return &c->info[i];
	return NULL;
}

/* A supplier away from its address: its newest record may name a new
 * one (a new lease, a move); then it is pinned there and reconnected,
 * before the suspect and dead clocks run out, and <home>/hired says so
 * at once. */
static void
relook(struct cli_hirer *c, struct hired *h, int64_t now)
{
	struct net_record r;
	char how[48], addr[sizeof h->addr];
	int rc;

	if (now < h->next_lookup)
		return;
	h->next_lookup = now + RELOOK_EVERY_MS;
	if (net_dht_lookup(c->dht, h->id, RELOOK_MS, &r) < 0)
		return;
	record_reach(&r, how, sizeof how);
	cli_record_addr(&r, addr, sizeof addr);
	net_peer_set_reach(c->net, h->id, h->addr, how, relay_of(&r));
	if (!strcmp(addr, h->addr))
		return;
	if ((rc = net_peer_move(c->net, h->id, h->addr, addr)) < 0) {
		log_warn("supplier %s: its record says %s, but: %s", h->addr,
		    addr, rc == -EKEYREJECTED ? "that address is pinned "
		    "to another key" : strerror(-rc));
		return;
	}
	log_info("supplier %s moved to %s", h->addr, addr);
	snprintf(h->addr, sizeof h->addr, "%s", addr);
	hired_save(c->home, c->h, c->nh);
}

/* An online supplier's record is looked at now and then as well: the
 * suppliers key we listen to brings a leaving flag at once, this when a
 * listen missed it. */
static void
recheck(struct cli_hirer *c, struct hired *h, int64_t now)
{
	struct net_record r;

	if (now < h->next_lookup)
		return;
	h->next_lookup = now + RECHECK_MS;
	net_dht_lookup(c->dht, h->id, RELOOK_MS, &r);	/* kept by d */
}

/* The least available hired supplier, when owner_hire_fire_pick says
 * so: fired (dead, so rebuilt elsewhere and replaced by the next
 * passes). */
static void
fire_unavailable(struct cli_hirer *c, int live, int64_t now)
{
	const struct owner_hire_watch **w;
	struct hired *worst;
	char why[128];
	int i;

	if (c->nh == 0 || !(w = calloc((size_t)c->nh, sizeof *w)))
		return;
	for (i = 0; i < c->nh; i++)
		w[i] = &c->h[i].w;
	i = owner_hire_fire_pick(w, c->nh, live, c->need, c->fire_below,
	    c->window, now, c->last_fire);
	free(w);
	if (i < 0)
		return;
	worst = &c->h[i];
	snprintf(why, sizeof why, "online %.0f%% of the last %llds, below "
	    "--fire-below %d%%", worst->w.avail * 100,
	    (long long)(c->window / 1000), c->fire_below);
	if (net_peer_fire(c->net, worst->id, worst->addr, why) == 0)
		c->last_fire = now;
}

static int64_t
hirer_pass(void *arg, int idx)
{
	struct cli_hirer *c = arg;
	int64_t now = worker_now_ms();
	int n = net_peers(c->net, c->info, HIRER_PEERS, 0), live = 0,
	    changed = 0;

	if (n < 0)
		return HIRER_MS;
	if (n > HIRER_PEERS)
		n = HIRER_PEERS;
	for (int i = 0; i < c->nh; i++) {
		struct hired *h = &c->h[i];
		const struct net_peer_info *p = info_of(c, n, h);
		struct net_record r;
		int st = p ? (int)p->state : NET_PEER_DEAD;

		/* Leaving (`peerfs supplier --leave`): no more placements
		 * there; fired, its fragments are rebuilt elsewhere and the
		 * old copies deleted from it while it still answers. */
		if (st != NET_PEER_DEAD && net_dht_record(c->dht, h->id, &r) == 0
		    && (r.flags & NET_RECORD_LEAVING) &&
		    net_peer_fire(c->net, h->id, h->addr, "it is leaving the network")
		    == 0)
			st = NET_PEER_DEAD;
		if (st == NET_PEER_DEAD) {
			/* Its fragments get rebuilt elsewhere: no longer
			 * hired. Fired for cause it stays out for the life of
			 * the mount; dead only for being unreachable, it may
			 * be hired again once back (below). */
			log_info("supplier %s: dead, no longer hired", h->addr);
			c->h[i--] = c->h[--c->nh];
			changed = 1;
			continue;
		}
		live++;
		owner_hire_track(&h->w, st == NET_PEER_ONLINE, now,
		    c->last_pass, c->window);
		if (st != NET_PEER_ONLINE)
			relook(c, h, now);
		else
			recheck(c, h, now);
	}
	c->last_pass = now;
	/* Said before the hire below, which may wait for records. */
	if (changed)
		hired_save(c->home, c->h, c->nh);
	changed = 0;
	fire_unavailable(c, live, now);
	/* One hire at a time, never an id the client knows already (a dead
	 * supplier stays known to it) but one dead only for being unreachable
	 * and back after a window (owner_hire_again): else a mount that
	 * declares suppliers dead often runs through the network and ends
	 * short of k + m. */
	if (live < c->want && now >= c->next_hire) {
		struct hired *nh = realloc(c->h, (size_t)(c->nh + 1) * sizeof *nh);
		struct timespec ts;
		c->next_hire = now + HIRE_EVERY_MS;
		if (nh)
			c->h = nh;
		if (nh) {
			struct hire_skip sk = { c->info, n, 0, c->window };
			int count = c->nh;
			clock_gettime(CLOCK_REALTIME, &ts);
			sk.now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
			hire_more(c->net, c->dht, c->h, &count, c->nh + 1, 0,
			    &sk);
			if (count > c->nh) {
				log_info("supplier %s hired while mounted (%d "
				    "of %d alive)", c->h[c->nh].addr, live + 1,
				    c->want);
				c->nh = count;
				changed = 1;
			}
		}
	}
	if (changed)
		hired_save(c->home, c->h, c->nh);
	return HIRER_MS;
}

int
cli_hirer_start(struct cli_hirer **out, struct net *net, struct net_dht *d,
    const char *home, int k, int m, int fire_below, int64_t window_ms)
{
	struct worker_conf wc = { .name = "net-hire", .pass = hirer_pass,
	    .first_ms = HIRER_MS };
	struct cli_hirer *c = calloc(1, sizeof *c);
	int rc;

	if (!c || !(c->home = strdup(home))) {
		free(c);
		return -ENOMEM;
	}
	c->net = net;
	c->dht = d;
	c->want = k + m + OWNER_HIRE_SPARES;
	c->need = k + m;
	c->fire_below = fire_below;
	c->window = window_ms > 0 ? window_ms : 1;
	c->last_fire = worker_now_ms();	/* a window before the first */
	c->nh = hired_load(home, &c->h);
	wc.arg = c;
	if ((rc = worker_start(&c->w, &wc)) < 0) {
		free(c->h);
		free(c->home);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void
cli_hirer_stop(struct cli_hirer *c)
{
	if (!c)
		return;
	worker_stop(c->w);
	free(c->h);
	free(c->home);
	free(c);
}
