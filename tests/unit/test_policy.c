/* tests/unit/test_policy.c - the pure policy functions the daemon and the
 * durability simulator share: the suspect/dead verdict (net/client.c),
 * what a block misses and which fragments are doubled up
 * (owner/rebuild.c), vetting (owner/audit.c) and
 * firing for low availability (owner/hire.c). */
#include <string.h>

#include "net/net.h"
#include "owner/owner.h"
#include "test.h"

static int
test_verdict(void)
{
	/* --suspect-after 2m, --dead-after 30m */
	const uint64_t s = 120000, d = 1800000;

	CHECK_EQ(net_peer_verdict(NET_PEER_ONLINE, d * 10, s, d),
	    NET_PEER_ONLINE);
	CHECK_EQ(net_peer_verdict(NET_PEER_DEAD, 0, s, d), NET_PEER_DEAD);
	CHECK_EQ(net_peer_verdict(NET_PEER_OFFLINE, s - 1, s, d),
	    NET_PEER_OFFLINE);
	CHECK_EQ(net_peer_verdict(NET_PEER_OFFLINE, s, s, d),
	    NET_PEER_SUSPECT);
	CHECK_EQ(net_peer_verdict(NET_PEER_SUSPECT, d - 1, s, d),
	    NET_PEER_SUSPECT);
	CHECK_EQ(net_peer_verdict(NET_PEER_SUSPECT, d, s, d), NET_PEER_DEAD);
	/* Never reached in this mount: the same clocks. */
	CHECK_EQ(net_peer_verdict(NET_PEER_CONNECTING, 1, s, d),
	    NET_PEER_CONNECTING);
	CHECK_EQ(net_peer_verdict(NET_PEER_CONNECTING, d, s, d),
	    NET_PEER_DEAD);
	/* Straight to DEAD when a tick comes late. */
	CHECK_EQ(net_peer_verdict(NET_PEER_OFFLINE, d + s, s, d),
	    NET_PEER_DEAD);
	return 0;
}

static int
test_missing(void)
{
	uint8_t lost[6] = { 0 }, placed[6] = { 1, 1, 1, 1, 1, 1 },
	    dead[6] = { 0 };
	uint32_t surv = 99;

	CHECK_EQ(owner_rebuild_missing(6, lost, placed, dead, &surv), 0);
	CHECK_EQ(surv, 6);
	lost[1] = 1;
	placed[3] = 0;
	dead[5] = 1;
	CHECK_EQ(owner_rebuild_missing(6, lost, placed, dead, &surv),
	    (1u << 1) | (1u << 3) | (1u << 5));
	CHECK_EQ(surv, 3);
	/* Every fragment, 32 of them: the whole mask. */
	uint8_t l32[32], p32[32], d32[32];
	memset(l32, 1, sizeof l32);
	memset(p32, 1, sizeof p32);
	memset(d32, 0, sizeof d32);
	CHECK_EQ(owner_rebuild_missing(32, l32, p32, d32, NULL), 0xffffffffu);
	return 0;
}

static int
test_doubled(void)
{
	unsigned char peer[6][CR_PK_BYTES];
	const uint32_t all = ~0u;

	memset(peer, 0, sizeof peer);
	for (int i = 0; i < 6; i++)
		peer[i][0] = (unsigned char)(i + 1);
	CHECK_EQ(net_place_doubled(6, peer, all, all), 0);
	/* Fragment 4 doubled up on fragment 1's supplier: 4 is the one to
	 * spread, 1 stays. */
	peer[4][0] = 2;
	CHECK_EQ(net_place_doubled(6, peer, all, all), 1u << 4);
	/* The owner's count of what survives: a missing fragment (its
	 * supplier dead, say) is rebuilt anyway, not counted twice; nor does
	 * a missing 1 make 4 a double. */
	CHECK_EQ(net_place_doubled(6, peer, ~(1u << 4), ~(1u << 4)), 0);
	CHECK_EQ(net_place_doubled(6, peer, ~(1u << 1), ~(1u << 1)), 0);
	/* The repair's: 4 missing (the owner's spread) is copied from 1's
	 * supplier; both missing (that supplier dead), neither is. */
	CHECK_EQ(net_place_doubled(6, peer, ~(1u << 4), 1u << 4), 1u << 4);
	CHECK_EQ(net_place_doubled(6, peer, ~0x12u, 0x12u), 0);
	/* Never placed (all zero) is not a supplier of its own. */
	memset(peer[3], 0, CR_PK_BYTES);
	memset(peer[5], 0, CR_PK_BYTES);
	CHECK_EQ(net_place_doubled(6, peer, all, all), 1u << 4);
	/* Three on one: the two above the lowest. */
	peer[0][0] = 2;
	CHECK_EQ(net_place_doubled(6, peer, all, all), (1u << 1) | (1u << 4));
	return 0;
}

static int
test_vetted(void)
{
	struct store_ledger_ent e;
	const int64_t day = 86400, vet = 3 * day * 1000;

	memset(&e, 0, sizeof e);
	CHECK_EQ(owner_audit_vetted(&e, 10 * day, vet), 0);	/* no audit */
	e.first_ok = 1 * day;
	e.last_ok = 2 * day;
	CHECK_EQ(owner_audit_stands(&e, 2 * day, vet), 1);
	CHECK_EQ(owner_audit_vetted(&e, 3 * day, vet), 0);
	CHECK_EQ(owner_audit_vetted(&e, 4 * day, vet), 1);
	/* A failure: neither standing nor vetted until it passes again and
	 * vet_after has gone by. */
	e.last_fail = 5 * day;
	CHECK_EQ(owner_audit_stands(&e, 5 * day, vet), 0);
	e.last_ok = 6 * day;
	e.first_ok = 6 * day;
	CHECK_EQ(owner_audit_stands(&e, 7 * day, vet), 0);
	CHECK_EQ(owner_audit_stands(&e, 8 * day, vet), 1);
	CHECK_EQ(owner_audit_vetted(&e, 8 * day, vet), 0);
	CHECK_EQ(owner_audit_vetted(&e, 9 * day, vet), 1);
	/* No vetting: everyone who passed once. */
	CHECK_EQ(owner_audit_vetted(&e, 6 * day, 0), 1);
	return 0;
}

static int
test_fire_pick(void)
{
	const int64_t win = 1000;
	struct owner_hire_watch a = { 0 }, b = { 0 }, c = { 0 };
	const struct owner_hire_watch *w[3] = { &a, &b, &c };

	/* Watched from t=1: a always on, b on one look in four, c half. */
	for (int64_t t = 1, last = 0; t <= 3001; last = t, t += 100) {
		owner_hire_track(&a, 1, t, last, win);
		owner_hire_track(&b, (t / 100) % 4 == 0, t, last, win);
		owner_hire_track(&c, (t / 100) % 2 == 0, t, last, win);
	}
	CHECK(a.avail > 0.99);
	CHECK(b.avail < 0.5 && c.avail < 0.7 && b.avail < c.avail);
	CHECK_EQ(owner_hire_fire_pick(w, 3, 3, 2, 70, win, 3001, 0), 1);
	/* Not below the threshold, 0: never, one per window, not at k+m. */
	CHECK_EQ(owner_hire_fire_pick(w, 3, 3, 2, 10, win, 3001, 0), -1);
	CHECK_EQ(owner_hire_fire_pick(w, 3, 3, 2, 0, win, 3001, 0), -1);
	CHECK_EQ(owner_hire_fire_pick(w, 3, 3, 2, 70, win, 3001, 2500), -1);
	CHECK_EQ(owner_hire_fire_pick(w, 3, 2, 2, 70, win, 3001, 0), -1);
	/* Watched for less than a window: not judged yet. */
	CHECK_EQ(owner_hire_fire_pick(w, 3, 3, 2, 70, win * 10, 3001, 0), -1);
	return 0;
}

/* Hired again: only dead for being unreachable, back (announced after
 * it was declared dead) and past the cool-down; fired for cause never. */
static int
test_hire_again(void)
{
	const int64_t cool = 1000, dead = 5000;

	CHECK_EQ(owner_hire_again(0, dead, dead + 1, dead + cool, cool), 1);
	CHECK_EQ(owner_hire_again(0, dead, dead + 10 * cool, dead + 10 * cool,
	    cool), 1);
	/* Within the cool-down, even though it is back. */
	CHECK_EQ(owner_hire_again(0, dead, dead + 1, dead + cool - 1, cool), 0);
	/* Its newest record predates the verdict: not back yet. */
	CHECK_EQ(owner_hire_again(0, dead, dead, dead + 2 * cool, cool), 0);
	CHECK_EQ(owner_hire_again(0, dead, dead - 1, dead + 2 * cool, cool), 0);
	/* Fired for cause: never, however long ago. */
	CHECK_EQ(owner_hire_again(1, dead, dead + 1, dead + 100 * cool, cool),
	    0);
	/* Not dead at all (still known, hired or given): not hired twice. */
	CHECK_EQ(owner_hire_again(0, 0, dead + 1, dead + 2 * cool, cool), 0);
	return 0;
}

const struct test tests_policy[] = {
	{ "verdict", test_verdict },
	{ "missing", test_missing },
	{ "doubled", test_doubled },
	{ "vetted", test_vetted },
	{ "fire_pick", test_fire_pick },
	{ "hire_again", test_hire_again },
	{ NULL, NULL },
};
