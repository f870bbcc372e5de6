/* owner/hire.c - which suppliers found in the network to hire: filters
 * (free space, one per address block, not already hired) and the better
 * of two random candidates by score; whom to fire for low availability;
 * whom, declared dead, to hire again.
 * Pure: the caller brings candidates, hired addresses, clocks and
 * randomness (cli/network.c's hirer, and sim/). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "owner/owner.h"
#include "util.h"

#define BLOCK_MAX	64

int
owner_hire_block(const char *addr, int lan, char *out, size_t size)
{
	char host[64];
	unsigned char a[16];

	/* Through a relay ("RELAY~ID"): where the node sits is unknown,
	 * and the relay's block is not its own. Each is a block alone. */
	if (strchr(addr, '~')) {
		snprintf(out, size, "%s", addr);
		return 0;
	}
	if (hostport_host(addr, host, sizeof host) < 0)
		return -EINVAL;
	if (inet_pton(AF_INET, host, a) == 1 && lan && net_addr_private(host))
		snprintf(out, size, "%s", host);
	else if (inet_pton(AF_INET, host, a) == 1)
		snprintf(out, size, "%u.%u.%u.0/24", a[0], a[1], a[2]);
	else if (inet_pton(AF_INET6, host, a) == 1)
		snprintf(out, size, "%02x%02x:%02x%02x:%02x%02x::/48", a[0],
		    a[1], a[2], a[3], a[4], a[5]);
	else
		snprintf(out, size, "%s", host);	/* a name: per host */
	return 0;
}

int
owner_hire_pick(const struct owner_hire_cand *c, int n,
    const char *const *taken, int ntaken, int want, uint64_t min_free,
    int lan, uint32_t (*rnd)(void *arg), void *arg, int *picked)
{
	char (*blk)[BLOCK_MAX] = NULL, (*used)[BLOCK_MAX] = NULL;
	int *fit = NULL, nfit = 0, nused = 0, npicked = 0;

	if (n <= 0 || want <= 0)
		return 0;
	blk = calloc((size_t)n, sizeof *blk);
	used = calloc((size_t)(n + ntaken), sizeof *used);
	fit = calloc((size_t)n, sizeof *fit);
	if (!blk || !used || !fit) {
		npicked = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < ntaken; i++)
		if (owner_hire_block(taken[i], lan, used[nused], BLOCK_MAX) == 0)
			nused++;
	for (int i = 0; i < n; i++) {
		int ok = c[i].free_bytes >= min_free &&
		    owner_hire_block(c[i].addr, lan, blk[i], BLOCK_MAX) == 0;
		for (int j = 0; ok && j < nused; j++)
			ok = strcmp(blk[i], used[j]) != 0;
		if (ok)
			fit[nfit++] = i;
	}
	while (npicked < want && nfit > 0) {
		int a = (int)(rnd(arg) % (uint32_t)nfit), b = a;
		if (nfit > 1) {
			b = (int)(rnd(arg) % (uint32_t)(nfit - 1));
			b += b >= a;		/* two distinct draws */
		}
		int w = c[fit[b]].score > c[fit[a]].score ? fit[b] : fit[a];
		picked[npicked++] = w;
		/* Drop every candidate of its block, and its id elsewhere. */
		int k = 0;
		for (int i = 0; i < nfit; i++)
			if (strcmp(blk[fit[i]], blk[w]) != 0 &&
			    memcmp(c[fit[i]].id, c[w].id, CR_PK_BYTES) != 0)
				fit[k++] = fit[i];
		nfit = k;
	}
out:
	free(blk);
	free(used);
	free(fit);
	return npicked;
}

void
owner_hire_track(struct owner_hire_watch *w, int online, int64_t now,
    int64_t last, int64_t window)
{
	double a;

	if (!w->watched) {
		w->watched = now;
		w->avail = 1;
		return;
	}
	a = last ? (double)(now - last) / (double)window : 0;
	w->avail += ((online ? 1.0 : 0.0) - w->avail) * (a > 1 ? 1 : a);
}

int
owner_hire_fire_pick(const struct owner_hire_watch *const *w, int n,
    int live, int need, int fire_below, int64_t window, int64_t now,
    int64_t last_fire)
{
	int worst = -1;

	if (live <= need || fire_below <= 0 || now - last_fire < window)
		return -1;
	for (int i = 0; i < n; i++)
		if (w[i]->watched && now - w[i]->watched >= window &&
		    w[i]->avail * 100 < fire_below &&
		    (worst < 0 || w[i]->avail < w[worst]->avail))
			worst = i;
	return worst;
}

int
owner_hire_again(int for_cause, int64_t dead_at, int64_t announced,
    int64_t now, int64_t cooldown)
{
	return !for_cause && dead_at > 0 && announced > dead_at &&
	    now - dead_at >= cooldown;
}
