/* tests/unit/test_record.c - net/record.c: node records, their signature
 * and checks, and the newest-per-id table that refuses replays. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "crypto/crypto.h"
#include "net/dht.h"
#include "test.h"

#define NOW 1800000000ull

static void
fill(struct net_record *r, const struct cr_identity *id, uint64_t seq)
{
	memset(r, 0, sizeof *r);
	memcpy(r->id, id->pk, CR_PK_BYTES);
	r->flags = NET_RECORD_SUPPLIER | 0x0100;
	r->seq = seq;
	r->expires = NOW + 600;
	r->free_bytes = 20ull << 30;
	r->naddr = 2;
	strcpy(r->addr[0], "198.18.5.2:7070");
	strcpy(r->addr[1], "[2001:db8::1]:7070");
}

static int
test_round_trip(void)
{
	struct cr_identity *id = test_identity();
	struct net_record r, d;
	unsigned char buf[NET_RECORD_MAX];
	ssize_t len;

	fill(&r, id, 42);
	len = net_record_encode(buf, sizeof buf, &r, id->sk);
	CHECK(len > 0);
	CHECK(len <= NET_RECORD_MAX);
	CHECK_MEM(buf, "PFNR", 4);
	CHECK_EQ(net_record_decode(&d, buf, (size_t)len, NOW), 0);
	CHECK_MEM(d.id, id->pk, CR_PK_BYTES);
	CHECK_EQ(d.flags, NET_RECORD_SUPPLIER | 0x0100);
	CHECK_EQ(d.seq, 42);
	CHECK_EQ(d.expires, NOW + 600);
	CHECK(d.free_bytes == 20ull << 30);
	CHECK_EQ(d.naddr, 2);
	CHECK(strcmp(d.addr[0], "198.18.5.2:7070") == 0);
	CHECK(strcmp(d.addr[1], "[2001:db8::1]:7070") == 0);
	/* Too small a buffer, by one byte. */
	CHECK_EQ(net_record_encode(buf, (size_t)len - 1, &r, id->sk), -ENOSPC);
	cr_identity_free(id);
	return 0;
}

/* Every byte of the record is covered: a flipped bit anywhere is refused
 * (as malformed or as a bad signature), never accepted. */
static int
test_tamper(void)
{
	struct cr_identity *id = test_identity();
	struct net_record r, d;
	unsigned char buf[NET_RECORD_MAX], t[NET_RECORD_MAX];
	ssize_t len;
	int bad_sig = 0;

	fill(&r, id, 7);
	len = net_record_encode(buf, sizeof buf, &r, id->sk);
	CHECK(len > 0);
	for (ssize_t i = 0; i < len; i++) {
		memcpy(t, buf, (size_t)len);
		t[i] ^= 0x01;
		int rc = net_record_decode(&d, t, (size_t)len, NOW);
		CHECK(rc == -EPROTO || rc == -EBADMSG || rc == -ERANGE ||
		    rc == -ETIME);
		bad_sig += rc == -EBADMSG;
	}
	CHECK(bad_sig > 40);
	/* Truncated and extended. */
	for (ssize_t l = 0; l < len; l++)
		CHECK(net_record_decode(&d, buf, (size_t)l, NOW) < 0);
	buf[len] = 0;
	CHECK_EQ(net_record_decode(&d, buf, (size_t)len + 1, NOW), -EPROTO);
	cr_identity_free(id);
	return 0;
}

/* A record signed by another key than the id it names: someone claiming
 * a node's id for their own address. */
static int
test_wrong_key(void)
{
	struct cr_identity *id = test_identity(), *other = test_identity();
	struct net_record r, d;
	unsigned char buf[NET_RECORD_MAX];
	ssize_t len;

	fill(&r, id, 1);
	len = net_record_encode(buf, sizeof buf, &r, other->sk);
	CHECK(len > 0);
	CHECK_EQ(net_record_decode(&d, buf, (size_t)len, NOW), -EBADMSG);
	cr_identity_free(id);
	cr_identity_free(other);
	return 0;
}

static int
test_expiry(void)
{
	struct cr_identity *id = test_identity();
	struct net_record r, d;
	unsigned char buf[NET_RECORD_MAX];
	ssize_t len;

	fill(&r, id, 1);
	len = net_record_encode(buf, sizeof buf, &r, id->sk);
	CHECK_EQ(net_record_decode(&d, buf, (size_t)len, NOW + 599), 0);
	CHECK_EQ(net_record_decode(&d, buf, (size_t)len, NOW + 600), -ETIME);
	r.expires = NOW + NET_RECORD_TTL_MAX + 1;
	len = net_record_encode(buf, sizeof buf, &r, id->sk);
	CHECK_EQ(net_record_decode(&d, buf, (size_t)len, NOW), -ERANGE);
	cr_identity_free(id);
	return 0;
}

static int
test_bad_addresses(void)
{
	static const char *bad[] = { "", "host", ":7070", "host:", "h:0",
		"h:65536", "h:123456", "a b:1", "h:1x", "h/x:1", "h%x:1",
		"0123456789012345678901234567890123456789012345678901234567890123:1" };
	struct cr_identity *id = test_identity();
	struct net_record r;
	unsigned char buf[NET_RECORD_MAX];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fill(&r, id, 1);
		r.naddr = 1;
		snprintf(r.addr[0], sizeof r.addr[0], "%s", bad[i]);
		if (net_record_encode(buf, sizeof buf, &r, id->sk) != -EINVAL) {
			fprintf(stderr, "accepted '%s'\n", bad[i]);
			return 1;
		}
	}
	fill(&r, id, 1);
	r.naddr = 0;
	CHECK_EQ(net_record_encode(buf, sizeof buf, &r, id->sk), -EINVAL);
	r.naddr = NET_RECORD_ADDRS + 1;
	CHECK_EQ(net_record_encode(buf, sizeof buf, &r, id->sk), -EINVAL);
	fill(&r, id, 1);
	strcpy(r.addr[0], "peer.example-1.org:65535");
	CHECK(net_record_encode(buf, sizeof buf, &r, id->sk) > 0);
	cr_identity_free(id);
	return 0;
}

/* Scenario 3 of issue 15, second half: a replayed older record (a valid
 * signature, an older seq, e.g. the address a node had before it moved)
 * is refused once a newer one is known; the same seq is a re-announce. */
static int
test_replay_refused(void)
{
	struct cr_identity *a = test_identity(), *b = test_identity();
	struct net_record_set s = { 0 };
	struct net_record old, cur, other, d;
	unsigned char buf[NET_RECORD_MAX];
	ssize_t len;

	fill(&old, a, 100);
	fill(&cur, a, 101);
	strcpy(cur.addr[0], "198.18.9.2:7070");	/* moved */
	fill(&other, b, 5);
	/* The replayed bytes are genuine: they decode fine on their own. */
	len = net_record_encode(buf, sizeof buf, &old, a->sk);
	CHECK_EQ(net_record_decode(&d, buf, (size_t)len, NOW), 0);

	CHECK_EQ(net_record_set_add(&s, &cur), 1);
	CHECK_EQ(net_record_set_add(&s, &other), 1);
	CHECK_EQ(net_record_set_add(&s, &d), -ESTALE);
	CHECK_EQ(net_record_set_add(&s, &cur), 0);
	CHECK_EQ(s.n, 2);
	const struct net_record *f = net_record_set_find(&s, a->pk);
	CHECK(f != NULL);
	CHECK_EQ(f->seq, 101);
	CHECK(strcmp(f->addr[0], "198.18.9.2:7070") == 0);
	/* Newer replaces. */
	cur.seq = 102;
	CHECK_EQ(net_record_set_add(&s, &cur), 1);
	CHECK_EQ(net_record_set_find(&s, a->pk)->seq, 102);
	CHECK(net_record_set_find(&s, (const unsigned char *)"\0\0\0\0\0\0\0\0"
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0") == NULL);
	net_record_set_release(&s);
	cr_identity_free(a);
	cr_identity_free(b);
	return 0;
}

/* A node reached through relays: version 2 carries the relays' keys next
 * to their addresses; a version 1 record stays byte for byte as before. */
static int
test_relays(void)
{
	struct cr_identity *id = test_identity();
	struct net_record r, d;
	unsigned char buf[NET_RECORD_MAX];
	ssize_t len, len1;

	fill(&r, id, 7);
	len1 = net_record_encode(buf, sizeof buf, &r, id->sk);
	CHECK(len1 > 0);
	CHECK_EQ(buf[4], NET_RECORD_VERSION);
	r.flags = NET_RECORD_SUPPLIER | NET_RECORD_RELAYED;
	r.nrelay = 1;
	CHECK_EQ(net_record_encode(buf, sizeof buf, &r, id->sk), -EINVAL);
	r.nrelay = 2;
	memset(r.relay_id[0], 0xa1, CR_PK_BYTES);
	memset(r.relay_id[1], 0xb2, CR_PK_BYTES);
	len = net_record_encode(buf, sizeof buf, &r, id->sk);
	CHECK_EQ(len, len1 + 1 + 2 * CR_PK_BYTES);
	CHECK(len <= NET_RECORD_MAX);
	CHECK_EQ(buf[4], NET_RECORD_VERSION_RELAYS);
	CHECK_EQ(net_record_decode(&d, buf, (size_t)len, NOW), 0);
	CHECK_EQ(d.nrelay, 2);
	CHECK_EQ(d.flags, NET_RECORD_SUPPLIER | NET_RECORD_RELAYED);
	CHECK_MEM(d.relay_id[1], r.relay_id[1], CR_PK_BYTES);
	CHECK(strcmp(d.addr[1], r.addr[1]) == 0);
	/* A relay count other than naddr is malformed, whatever the
	 * signature says. */
	r.nrelay = 0;
	len1 = net_record_encode(buf, sizeof buf, &r, id->sk);
	buf[4] = NET_RECORD_VERSION_RELAYS;
	CHECK_EQ(net_record_decode(&d, buf, (size_t)len1, NOW), -EPROTO);
	/* Every full-size record fits the buffers. */
	r.naddr = r.nrelay = NET_RECORD_ADDRS;
	for (int i = 0; i < NET_RECORD_ADDRS; i++) {
		memset(r.addr[i], 'a', NET_RECORD_ADDR_MAX - 5);
		strcpy(r.addr[i] + NET_RECORD_ADDR_MAX - 5, ":7070");
	}
	len = net_record_encode(buf, sizeof buf, &r, id->sk);
	CHECK_EQ(len, NET_RECORD_MAX);
	CHECK_EQ(net_record_decode(&d, buf, (size_t)len, NOW), 0);
	cr_identity_free(id);
	return 0;
}

const struct test tests_record[] = {
	{ "relays", test_relays },
	{ "round_trip", test_round_trip },
	{ "tamper", test_tamper },
	{ "wrong_key", test_wrong_key },
	{ "expiry", test_expiry },
	{ "bad_addresses", test_bad_addresses },
	{ "replay_refused", test_replay_refused },
	{ NULL, NULL },
};
