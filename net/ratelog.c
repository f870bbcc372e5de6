/* net/ratelog.c - counts events a stranger can cause at will (refused
 * connections, malformed sessions) so that a flood writes one log line per
 * address, reason and interval instead of one per connection. Pure
 * bookkeeping: no clock, no I/O; the caller reports every interval. */
#include <stdio.h>
#include <string.h>

#include "net/internal.h"

void
net_ratelog_init(struct net_ratelog *rl)
{
	memset(rl, 0, sizeof *rl);
}

static struct net_ratelog_ent *
find(struct net_ratelog *rl, const char *who, const char *what)
{
	struct net_ratelog_ent *free_e = NULL;

	for (size_t i = 0; i < NET_RATELOG_SLOTS; i++) {
		struct net_ratelog_ent *e = &rl->e[i];

		if (!e->what) {
			if (!free_e)
				free_e = e;
			continue;
		}
		if (strcmp(e->what, what) == 0 && strcmp(e->who, who) == 0)
			return e;
	}
	if (free_e) {
		snprintf(free_e->who, sizeof free_e->who, "%s", who);
		free_e->what = what;
		free_e->count = 0;
		free_e->fresh = 1;
	}
	return free_e;
}

int
net_ratelog_hit(struct net_ratelog *rl, const char *who, const char *what)
{
	struct net_ratelog_ent *e = find(rl, who, what);

	if (!e) {
		/* Table full: a flood from many addresses is one line too. */
		rl->other++;
		return 0;
	}
	if (e->fresh) {
		e->fresh = 0;
		return 1;
	}
	e->count++;
	return 0;
}

void
net_ratelog_report(struct net_ratelog *rl,
    void (*emit)(void *arg, const char *who, const char *what, uint64_t n),
    void *arg)
{
	for (size_t i = 0; i < NET_RATELOG_SLOTS; i++) {
		struct net_ratelog_ent *e = &rl->e[i];

		if (!e->what)
			continue;
		if (e->count == 0) {
			/* Quiet for a whole interval: the next one is news. */
			e->what = NULL;
			continue;
		}
		emit(arg, e->who, e->what, e->count);
		e->count = 0;
	}
	if (rl->other) {
		emit(arg, "other addresses", "various reasons", rl->other);
		rl->other = 0;
	}
}
