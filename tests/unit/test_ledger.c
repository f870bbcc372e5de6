/* tests/unit/test_ledger.c - store/ledger.c: the audit ledger file the
 * mount writes and the supplier of the same home reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "store/store.h"
#include "test.h"

static int
test_round_trip(void)
{
	struct store_ledger_ent e[3], *r;
	struct store_ledger_state s = { 1700000300, 1700000250, 1 }, rs;
	size_t n;

	memset(e, 0, sizeof e);
	for (int i = 0; i < 3; i++) {
		memset(e[i].pk, 0x10 + i, CR_PK_BYTES);
		e[i].held = 1000u * (i + 1);
		e[i].proved = i == 1 ? 0 : e[i].held;
		e[i].first_ok = 1700000000 + i;
		e[i].last_ok = 1700000100 + i;
		e[i].last_fail = i == 1 ? 1700000200 : 0;
		e[i].relayed = i == 2 ? 5ull << 30 : 0;
	}
	CHECK_EQ(store_ledger_read("ledger", &rs, &r, &n), -ENOENT);
	CHECK_EQ(store_ledger_write("ledger", &s, e, 3), 0);
	CHECK_EQ(store_ledger_read("ledger", &rs, &r, &n), 0);
	CHECK_EQ(n, 3);
	CHECK_MEM(r, e, sizeof e);
	CHECK_MEM(&rs, &s, sizeof s);
	free(r);
	/* replaced whole: an empty ledger reads empty */
	s.rebuilding = 0;
	CHECK_EQ(store_ledger_write("ledger", &s, NULL, 0), 0);
	CHECK_EQ(store_ledger_read("ledger", NULL, &r, &n), 0);
	CHECK_EQ(n, 0);
	free(r);
	return 0;
}

/* A version 1 ledger (no mount line) still reads: its balances count,
 * its state is zeros (no evidence for evicting anyone). */
static int
test_version1(void)
{
	struct store_ledger_state rs = { 1, 1, 1 };
	struct store_ledger_ent *r;
	size_t n;
	FILE *f = fopen("ledger", "w");

	CHECK(f != NULL);
	fputs("peerfs-ledger 1\n" "0101010101010101010101010101010101010101"
	    "010101010101010101010101 7 5 3 4 0\n", f);
	fclose(f);
	CHECK_EQ(store_ledger_read("ledger", &rs, &r, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(r[0].proved, 5);
	CHECK_EQ(rs.written, 0);
	CHECK_EQ(rs.pass_end, 0);
	CHECK_EQ(rs.rebuilding, 0);
	free(r);
	return 0;
}

static int
test_damaged(void)
{
	static const char *bad[] = {
		"not a ledger\n",
		"peerfs-ledger 1\nzz 1 2 3 4 5\n",
		"peerfs-ledger 1\n" "0101010101010101010101010101010101010101010101"
		    "010101010101010101 1 2 3 4\n",
		"peerfs-ledger 1\n" "0101010101010101010101010101010101010101010101"
		    "010101010101010101 1 2 3 4 5 6\n",
		"peerfs-ledger 1\n" "0101010101010101010101010101010101010101010101"
		    "010101010101010101 1 2 3 4 5",	/* cut short */
		"peerfs-ledger 2\n" "0101010101010101010101010101010101010101010101"
		    "010101010101010101 1 2 3 4 5\n",	/* no mount line */
		"peerfs-ledger 2\nmount 1 2 3\n",	/* rebuilding 0 or 1 */
		"peerfs-ledger 2\nmount 1 0\n",
		"peerfs-ledger 3\nmount 1 0 3\n" "01010101010101010101010101010101"
		    "01010101010101010101010101010101 1 2 3 4 5\n",	/* relayed? */
		"peerfs-ledger 3\nmount 1 0 3\n" "01010101010101010101010101010101"
		    "01010101010101010101010101010101 1 2 3 4 5 6 7\n",
	};
	struct store_ledger_ent *r;
	size_t n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		FILE *f = fopen("ledger", "w");
		CHECK(f != NULL);
		fputs(bad[i], f);
		fclose(f);
		CHECK_EQ(store_ledger_read("ledger", NULL, &r, &n), -EINVAL);
	}
	return 0;
}

/* A version 2 ledger (no relayed bytes) still reads, relayed 0. */
static int
test_version2(void)
{
	struct store_ledger_ent *r;
	size_t n;
	FILE *f = fopen("ledger", "w");

	CHECK(f != NULL);
	fputs("peerfs-ledger 2\nmount 1 0 3\n" "0101010101010101010101010101"
	    "010101010101010101010101010101010101 1 2 3 4 5\n", f);
	fclose(f);
	CHECK_EQ(store_ledger_read("ledger", NULL, &r, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(r[0].held, 1);
	CHECK_EQ(r[0].last_fail, 5);
	CHECK_EQ(r[0].relayed, 0);
	free(r);
	return 0;
}

/* The fair deal reads the ledger: what a node carried for this home as a
 * relay counts with what it holds and proved; nothing for a stranger. */
static int
test_deal_counts_relayed(void)
{
	struct store_ledger_ent e[2];
	struct store_ledger_state s = { 1700000300, 1700000250, 0 };
	unsigned char stranger[CR_PK_BYTES];
	struct net_deal *d;

	memset(e, 0, sizeof e);
	memset(e[0].pk, 0x21, CR_PK_BYTES);
	e[0].held = e[0].proved = 1000;
	e[0].relayed = 5000;
	memset(e[1].pk, 0x22, CR_PK_BYTES);
	e[1].relayed = 7;		/* a relay that holds nothing */
	memset(stranger, 0x23, CR_PK_BYTES);
	CHECK_EQ(store_ledger_write("ledger", &s, e, 2), 0);
	CHECK_EQ(net_deal_new(&d, "ledger"), 0);
	CHECK_EQ(net_deal_earned(d, e[0].pk), 6000);
	CHECK_EQ(net_deal_earned(d, e[1].pk), 7);
	CHECK_EQ(net_deal_earned(d, stranger), 0);
	net_deal_free(d);
	return 0;
}

const struct test tests_ledger[] = {
	{ "deal_counts_relayed", test_deal_counts_relayed },
	{ "version2", test_version2 },
	{ "round_trip", test_round_trip },
	{ "damaged", test_damaged },
	{ "version1", test_version1 },
	{ NULL, NULL },
};
