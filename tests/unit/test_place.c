/* tests/unit/test_place.c - net/block.c's placement rules: one fragment of
 * a block per address block, few on suppliers not vetted yet. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "net/internal.h"
#include "net/net.h"
#include "test.h"
#include "testutil.h"

static void
addr(struct sockaddr_storage *ss, const char *host)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, host, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		inet_pton(AF_INET, host, &s4->sin_addr);
	}
}

static int
test_same_block(void)
{
	struct sockaddr_storage a, b;

	addr(&a, "198.18.7.2");
	addr(&b, "198.18.7.200");
	CHECK_EQ(net_same_block(&a, &b), 1);
	addr(&b, "198.18.8.2");
	CHECK_EQ(net_same_block(&a, &b), 0);
	addr(&a, "2001:db8:1:2::9");
	addr(&b, "2001:db8:1:ffff::1");
	CHECK_EQ(net_same_block(&a, &b), 1);
	addr(&b, "2001:db8:2:2::9");
	CHECK_EQ(net_same_block(&a, &b), 0);
	addr(&b, "198.18.7.2");		/* families differ */
	CHECK_EQ(net_same_block(&a, &b), 0);
	/* Loopback: one machine, the rule does not apply. */
	addr(&a, "127.0.0.1");
	addr(&b, "127.0.0.1");
	CHECK_EQ(net_same_block(&a, &b), 0);
	addr(&a, "::1");
	addr(&b, "::1");
	CHECK_EQ(net_same_block(&a, &b), 0);
	return 0;
}

/* A greedy placement over candidates as net/block.c does it: each
 * fragment to the first candidate the rules allow. Returns the number
 * placed; at[] the candidates chosen. */
static int
place(const struct net_slot *c, int nc, int total, int *at)
{
	struct net_slot held[32];
	int nh = 0, umax = net_place_unvetted_max(total, c, nc), used[64] = { 0 };

	for (int i = 0; i < total; i++) {
		int got = -1;
		for (int j = 0; j < nc && got < 0; j++)
			if (!used[j] && net_place_ok(held, nh, &c[j], umax))
				got = j;
		if (got < 0)
			break;
		used[got] = 1;
		at[nh] = got;
		held[nh++] = c[got];
	}
	return nh;
}

/* Ten suppliers on one /24 ahead of six elsewhere: one of the ten. */
static int
test_one_per_block(void)
{
	struct sockaddr_storage sa[16];
	struct net_slot c[16] = { 0 };
	char host[32];
	int at[16], n, in_block = 0;

	for (int i = 0; i < 16; i++) {
		snprintf(host, sizeof host, i < 10 ? "198.18.7.%d" :
		    "198.18.%d.2", i < 10 ? i + 2 : 20 + i);
		addr(&sa[i], host);
		c[i].sa = &sa[i];
		c[i].vetted = 1;
	}
	n = place(c, 16, 6, at);
	CHECK_EQ(n, 6);
	for (int i = 0; i < n; i++)
		in_block += at[i] < 10;
	CHECK_EQ(in_block, 1);
	/* Only the ten: one fragment, the block cannot be placed whole. */
	CHECK_EQ(place(c, 10, 6, at), 1);
	/* The same ten on loopback: all six placed. */
	for (int i = 0; i < 10; i++)
		addr(&sa[i], "127.0.0.1");
	CHECK_EQ(place(c, 10, 6, at), 6);
	/* Ten on one private LAN: one fragment, unless the network is
	 * declared that LAN (--lan: the slots say so), then all six. */
	for (int i = 0; i < 10; i++) {
		snprintf(host, sizeof host, "192.168.1.%d", i + 2);
		addr(&sa[i], host);
	}
	CHECK_EQ(place(c, 10, 6, at), 1);
	for (int i = 0; i < 10; i++)
		c[i].lan = 1;
	CHECK_EQ(place(c, 10, 6, at), 6);
	/* Not vetted yet, on the LAN: each its own block for the count of
	 * what new suppliers may take. */
	for (int i = 0; i < 10; i++)
		c[i].vetted = i < 3;
	CHECK_EQ(net_place_unvetted_max(6, c, 10), 3);
	return 0;
}

/* New suppliers ahead of vetted ones: one of them per block while the
 * vetted can take the rest; all new (a new home): as many as needed. */
static int
test_unvetted(void)
{
	struct sockaddr_storage sa[12];
	struct net_slot c[12] = { 0 };
	char host[32];
	int at[12], n, fresh = 0;

	for (int i = 0; i < 12; i++) {
		snprintf(host, sizeof host, "198.18.%d.2", 10 + i);
		addr(&sa[i], host);
		c[i].sa = &sa[i];
		c[i].vetted = i >= 4;	/* 0..3 new, first in line */
	}
	CHECK_EQ(net_place_unvetted_max(6, c, 12), 1);
	n = place(c, 12, 6, at);
	CHECK_EQ(n, 6);
	for (int i = 0; i < n; i++)
		fresh += at[i] < 4;
	CHECK_EQ(fresh, 1);
	/* Four vetted for six fragments: two go to new suppliers. */
	CHECK_EQ(net_place_unvetted_max(6, c, 8), 2);
	n = place(c, 8, 6, at);
	CHECK_EQ(n, 6);
	fresh = 0;
	for (int i = 0; i < n; i++)
		fresh += at[i] < 4;
	CHECK_EQ(fresh, 2);
	/* Vetted suppliers sharing one /24 count once. */
	for (int i = 4; i < 12; i++)
		addr(&sa[i], "198.18.99.2");
	CHECK_EQ(net_place_unvetted_max(6, c, 12), 5);
	/* Nobody vetted: a fresh home still stores. */
	for (int i = 0; i < 12; i++)
		c[i].vetted = 0;
	CHECK_EQ(net_place_unvetted_max(6, c, 12), 6);
	return 0;
}

/* A rebuild adds one fragment beside those that stay: the same rules. */
static int
test_repair_rules(void)
{
	struct sockaddr_storage sa[4];
	struct net_slot held[2], c;

	addr(&sa[0], "198.18.1.2");
	addr(&sa[1], "198.18.2.2");
	addr(&sa[2], "198.18.2.77");
	addr(&sa[3], "198.18.3.2");
	held[0] = (struct net_slot){ .sa = &sa[0], .vetted = 1, .relayed = 0 };
	held[1] = (struct net_slot){ .sa = &sa[1], .vetted = 0, .relayed = 0 };
	c = (struct net_slot){ .sa = &sa[2], .vetted = 1, .relayed = 0 };
	CHECK_EQ(net_place_ok(held, 2, &c, 1), 0);	/* /24 of held[1] */
	c = (struct net_slot){ .sa = &sa[3], .vetted = 0, .relayed = 0 };
	CHECK_EQ(net_place_ok(held, 2, &c, 1), 0);	/* a second new one */
	CHECK_EQ(net_place_ok(held, 2, &c, 2), 1);
	c.vetted = 1;
	CHECK_EQ(net_place_ok(held, 2, &c, 1), 1);
	return 0;
}

/* Suppliers reached only through a relay: at most m of a block's
 * fragments on them (k stay readable without any relay), and the relay's
 * address block is not theirs. */
static int
test_relayed_at_most_m(void)
{
	struct sockaddr_storage relay, pub[3];
	struct net_slot c[8], held[8];
	int nh = 0, k = 3, m = 2, relayed = 0;

	addr(&relay, "198.18.3.2");
	addr(&pub[0], "198.18.1.2");
	addr(&pub[1], "198.18.2.2");
	addr(&pub[2], "198.18.3.9");	/* the relay's /24 */
	/* Five relayed first, then three public ones. */
	for (int i = 0; i < 5; i++)
		c[i] = (struct net_slot){ .sa = &relay, .vetted = 1, .relayed = 1 };
	for (int i = 0; i < 3; i++)
		c[5 + i] = (struct net_slot){ .sa = &pub[i], .vetted = 1, .relayed = 0 };
	for (int i = 0; i < 8 && nh < k + m; i++)
		if (net_place_ok(held, nh, &c[i], k + m) &&
		    net_place_relayed_ok(held, nh, &c[i], m))
			held[nh++] = c[i];
	CHECK_EQ(nh, k + m);
	for (int i = 0; i < nh; i++)
		relayed += held[i].relayed;
	CHECK_EQ(relayed, m);
	/* Two relayed ones behind one relay share no block; a public one
	 * on the relay's /24 is not kept out by them. */
	CHECK_EQ(net_place_ok(&c[0], 1, &c[1], 8), 1);
	CHECK_EQ(net_place_ok(&c[0], 1, &c[7], 8), 1);
	CHECK_EQ(net_place_relayed_ok(held, nh, &c[5], m), 1);
	CHECK_EQ(net_place_relayed_ok(held, nh, &c[0], m), 0);
	return 0;
}

static int
unvetted_in(const struct store_block *b, const unsigned char (*v)[CR_PK_BYTES],
    int nv)
{
	int n = 0;

	for (int i = 0; i < b->k + b->m; i++) {
		int found = 0;
		for (int j = 0; j < nv; j++)
			found |= memcmp(b->peer[i], v[j], CR_PK_BYTES) == 0;
		n += !found;
	}
	return n;
}

/* Real suppliers (loopback: no address blocks), six vetted and four new:
 * every block stored or rebuilt has at most one fragment on a new one. */
static int
vetting_body(struct test_swarm *sw)
{
	struct net_conf nc = { .timeout_ms = 10000, .reconnect_ms = 200,
	    TEST_NET_PACE };
	unsigned char vetted[6][CR_PK_BYTES];
	struct store_block b;
	int spread = 0;

	log_init("test", LOG_WARN, NULL);
	CHECK(cr_init() == 0);
	randombytes_buf(nc.audit_key, sizeof nc.audit_key);
	CHECK_EQ(test_swarm_start(sw, 10, 10, &nc), 0);
	for (int i = 0; i < 6; i++)
		memcpy(vetted[i], sw->sid[i]->pk, CR_PK_BYTES);
	/* Nobody vetted (a new home): blocks are stored all the same. */
	CHECK_EQ(net_block_store(sw->net, "new home", 8, sw->datakey, &b), 0);
	CHECK_EQ(net_set_vetted(sw->net, (const unsigned char (*)[32])vetted,
	    6), 0);
	for (int r = 0; r < 24; r++) {
		unsigned char p[100];
		randombytes_buf(p, sizeof p);
		CHECK_EQ(net_block_store(sw->net, p, sizeof p, sw->datakey, &b),
		    0);
		CHECK(unvetted_in(&b, (const unsigned char (*)[32])vetted, 6)
		    <= 1);
		spread += unvetted_in(&b, (const unsigned char (*)[32])vetted,
		    6);
		/* A rebuild of two fragments keeps to the rule as well. */
		uint32_t missing = 1u << (r % 6) | 1u << ((r + 3) % 6);
		CHECK(net_block_repair(sw->net, &b, missing, NULL) > 0);
		CHECK(unvetted_in(&b, (const unsigned char (*)[32])vetted, 6)
		    <= 1);
	}
	/* The new ones do get fragments: one per block. */
	CHECK(spread > 0);
	/* Two vetted left for six fragments: four go to new suppliers. */
	CHECK_EQ(net_set_vetted(sw->net, (const unsigned char (*)[32])vetted,
	    2), 0);
	CHECK_EQ(net_block_store(sw->net, "few vetted", 10, sw->datakey, &b),
	    0);
	CHECK_EQ(unvetted_in(&b, (const unsigned char (*)[32])vetted, 2), 4);
	return 0;
}

static int
test_vetting(void)
{
	return test_swarm_run(vetting_body);
}

const struct test tests_place[] = {
	{ "same_block", test_same_block },
	{ "one_per_block", test_one_per_block },
	{ "unvetted", test_unvetted },
	{ "repair_rules", test_repair_rules },
	{ "relayed_at_most_m", test_relayed_at_most_m },
	{ "vetting", test_vetting },
	{ NULL, NULL },
};
