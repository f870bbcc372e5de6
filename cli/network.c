/* cli/network.c - joining the network: `peerfs id`, the remembered
 * bootstrap nodes, and a mount's hiring of suppliers found in the DHT.
 * The DHT node itself is net/dht.c; whom to hire is owner/hire.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "log.h"
#include "net/dht.h"
#include "owner/owner.h"
#include "util.h"

#define SPARES		2	/* hired beyond k + m */
#define LOOKUP_MS	2000	/* per remembered supplier */
#define FIND_MS		8000	/* for k + m supplier records */
#define SPARE_MS	2000	/* for the spares too */

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

static uint32_t
sodium_rnd(void *arg)
{
	return randombytes_random();
}

struct hired {
	unsigned char id[CR_PK_BYTES];
	char addr[NET_RECORD_ADDR_MAX + 1];
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

int
cli_net_hire(struct net *net, const struct cr_identity *id, const char *home,
    char **boot, int nboot, int k, int m, struct net_dht **out)
{
	struct hired *h = NULL;
	int nh = hired_load(home, &h), want = k + m + SPARES, count = 0, rc;
	char bind[80];
	char **bl = NULL;
	int nbl = 0;
	struct net_dht *d = NULL;

	/* Suppliers we hired run DHT nodes on their addresses: bootstraps
	 * too, should the given ones be gone. */
	for (int i = 0; i < nboot; i++)
		strv_add(&bl, &nbl, boot[i]);
	for (int i = 0; i < nh; i++)
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
	const char **taken = calloc((size_t)(nh + want) + 1, sizeof *taken);
	if (!keep || !taken) {
		free(keep);
		free(taken);
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < nh; i++) {
		struct net_record r;
		keep[count] = h[i];
		if (net_dht_lookup(d, h[i].id, LOOKUP_MS, &r) == 0 &&
		    strcmp(r.addr[0], h[i].addr) != 0) {
			log_info("supplier %s moved to %s", h[i].addr, r.addr[0]);
			snprintf(keep[count].addr, sizeof keep[count].addr, "%s",
			    r.addr[0]);
		}
		if (net_add_known_peer(net, keep[count].addr, keep[count].id) < 0) {
			log_warn("supplier %s: its key does not match the one "
			    "pinned for that address: not used", keep[count].addr);
			continue;
		}
		taken[count] = keep[count].addr;
		count++;
	}
	if (count < want) {
		struct net_record recs[64];
		struct owner_hire_cand cand[64];
		int picked[64], nc = 0;
		/* All we want if they come quickly; else the k + m needed,
		 * for longer: a small network has no spares to give. */
		int nr = net_dht_suppliers(d, want, SPARE_MS, recs, 64);
		if (nr < k + m)
			nr = net_dht_suppliers(d, k + m, FIND_MS, recs, 64);
		for (int i = 0; i < nr; i++) {
			int dup = 0;
			for (int j = 0; j < count; j++)
				dup |= !memcmp(keep[j].id, recs[i].id, CR_PK_BYTES);
			if (dup)
				continue;
			memcpy(cand[nc].id, recs[i].id, CR_PK_BYTES);
			snprintf(cand[nc].addr, sizeof cand[nc].addr, "%s",
			    recs[i].addr[0]);
			cand[nc].free_bytes = recs[i].free_bytes;
			/* No history yet: more room offered is better. */
			cand[nc].score = (double)recs[i].free_bytes;
			nc++;
		}
		int np = owner_hire_pick(cand, nc, taken, count, want - count,
		    1, sodium_rnd, NULL, picked);
		for (int i = 0; i < np; i++) {
			const struct owner_hire_cand *c = &cand[picked[i]];
			/* Pinned before the first byte goes there: a session
			 * to that address with another key is refused. */
			if (net_add_known_peer(net, c->addr, c->id) < 0) {
				log_warn("supplier %s: address pinned to another "
				    "key: not hired", c->addr);
				continue;
			}
			memcpy(keep[count].id, c->id, CR_PK_BYTES);
			snprintf(keep[count].addr, sizeof keep[count].addr, "%s",
			    c->addr);
			taken[count] = keep[count].addr;
			count++;
			log_info("hired supplier %s (found in the network)",
			    c->addr);
		}
		log_info("dht: %d supplier records found, %d hired in all "
		    "(want %d)", nr, count, want);
	}
	hired_save(home, keep, count);
	free(keep);
	free(taken);
	*out = d;
	d = NULL;
	rc = count;
out:
	net_dht_free(d);
	cli_strv_free(bl, nbl);
	free(h);
	return rc;
}
