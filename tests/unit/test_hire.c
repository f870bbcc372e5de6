/* tests/unit/test_hire.c - owner/hire.c: whom to hire from the network. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "owner/owner.h"
#include "test.h"

static uint32_t
xorshift(void *arg)
{
	uint32_t *s = arg;

	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
cand(struct owner_hire_cand *c, int i, const char *addr, uint64_t free_b,
    double score)
{
	memset(c, 0, sizeof *c);
	c->id[0] = (unsigned char)i;
	c->id[1] = (unsigned char)(i >> 8);
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	c->free_bytes = free_b;
	c->score = score;
}

static int
test_block(void)
{
	char b[64];

	CHECK_EQ(owner_hire_block("198.18.5.2:7070", 0, b, sizeof b), 0);
	CHECK(strcmp(b, "198.18.5.0/24") == 0);
	CHECK_EQ(owner_hire_block("[2001:db8:1:2::9]:7070", 0, b, sizeof b), 0);
	CHECK(strcmp(b, "2001:0db8:0001::/48") == 0);
	CHECK_EQ(owner_hire_block("peer.example.org:1", 0, b, sizeof b), 0);
	CHECK(strcmp(b, "peer.example.org") == 0);
	CHECK_EQ(owner_hire_block("nocolon", 0, b, sizeof b), -EINVAL);
	/* A private address: its /24 as any other, unless the network is
	 * one LAN (--lan), where each is a block alone; a public address
	 * keeps its /24 either way. */
	CHECK_EQ(owner_hire_block("192.168.1.7:7070", 0, b, sizeof b), 0);
	CHECK(strcmp(b, "192.168.1.0/24") == 0);
	CHECK_EQ(owner_hire_block("192.168.1.7:7070", 1, b, sizeof b), 0);
	CHECK(strcmp(b, "192.168.1.7") == 0);
	CHECK_EQ(owner_hire_block("198.18.5.2:7070", 1, b, sizeof b), 0);
	CHECK(strcmp(b, "198.18.5.0/24") == 0);
	return 0;
}

/* Ten suppliers on one /24 and four elsewhere: at most one of the ten. */
static int
test_distinct_blocks(void)
{
	struct owner_hire_cand c[14];
	int picked[14], n;
	char a[32];
	uint32_t seed = 12345;

	for (int i = 0; i < 10; i++) {
		snprintf(a, sizeof a, "198.18.7.%d:7070", i + 2);
		cand(&c[i], i, a, 1 << 30, 1.0);
	}
	for (int i = 10; i < 14; i++) {
		snprintf(a, sizeof a, "198.18.%d.2:7070", 20 + i);
		cand(&c[i], i, a, 1 << 30, 0.5);
	}
	for (int round = 0; round < 50; round++) {
		n = owner_hire_pick(c, 14, NULL, 0, 14, 0, 0, xorshift, &seed,
		    picked);
		CHECK_EQ(n, 5);
		int same = 0;
		for (int i = 0; i < n; i++) {
			same += picked[i] < 10;
			for (int j = 0; j < i; j++)
				CHECK(picked[i] != picked[j]);
		}
		CHECK_EQ(same, 1);
	}
	return 0;
}

static int
test_free_and_taken(void)
{
	struct owner_hire_cand c[4];
	const char *taken[] = { "198.18.1.99:7070" };
	int picked[4], n;
	uint32_t seed = 7;

	cand(&c[0], 0, "198.18.1.2:7070", 1 << 30, 1);	/* block taken */
	cand(&c[1], 1, "198.18.2.2:7070", 1000, 1);	/* too little room */
	cand(&c[2], 2, "198.18.3.2:7070", 1 << 30, 1);
	cand(&c[3], 3, "bad address", 1 << 30, 1);	/* no port */
	n = owner_hire_pick(c, 4, taken, 1, 4, 1 << 20, 0, xorshift, &seed,
	    picked);
	CHECK_EQ(n, 1);
	CHECK_EQ(picked[0], 2);
	/* Same id under two addresses: hired once. */
	cand(&c[0], 9, "198.18.1.2:7070", 1 << 30, 1);
	cand(&c[1], 9, "198.18.2.2:7070", 1 << 30, 1);
	n = owner_hire_pick(c, 2, NULL, 0, 2, 0, 0, xorshift, &seed, picked);
	CHECK_EQ(n, 1);
	CHECK_EQ(owner_hire_pick(c, 0, NULL, 0, 2, 0, 0, xorshift, &seed, picked),
	    0);
	return 0;
}

/* Better of two: the worst candidate can never win a draw, the best wins
 * more often than its share, and others still get picked. */
static int
test_better_of_two(void)
{
	struct owner_hire_cand c[5];
	int picked[1], wins[5] = { 0 };
	uint32_t seed = 99;
	char a[32];

	for (int i = 0; i < 5; i++) {
		snprintf(a, sizeof a, "198.18.%d.2:7070", 10 + i);
		cand(&c[i], i, a, 1 << 30, (double)i);
	}
	for (int r = 0; r < 2000; r++) {
		CHECK_EQ(owner_hire_pick(c, 5, NULL, 0, 1, 0, 0, xorshift, &seed,
		    picked), 1);
		wins[picked[0]]++;
	}
	CHECK_EQ(wins[0], 0);
	CHECK(wins[4] > 2000 / 5 + 200);	/* expected 2/5 = 800 */
	CHECK(wins[1] > 0 && wins[2] > 0 && wins[3] > 0);
	return 0;
}

const struct test tests_hire[] = {
	{ "block", test_block },
	{ "distinct_blocks", test_distinct_blocks },
	{ "free_and_taken", test_free_and_taken },
	{ "better_of_two", test_better_of_two },
	{ NULL, NULL },
};
