/* tests/unit/test_dht.c - net/dht.c: two real DHT nodes on 127.0.0.1 in
 * one process; a supplier's record is found by watching the suppliers
 * key and by looking its id up; a replayed older record is refused; a
 * supplier's leaving flag reaches the watcher. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "net/dht.h"
#include "test.h"
#include "worker.h"

static uint64_t
free_space(void *arg)
{
	return 5ull << 30;
}

/* A supplier node announcing addr and an owner's node that bootstraps
 * from it and watches the suppliers key. 0 or -errno. */
static int
two_nodes(struct cr_identity *sid, struct cr_identity *oid, const char *addr,
    struct net_dht **sup, struct net_dht **own)
{
	char boot[64];
	const char *bl[1] = { boot };
	int rc;

	struct net_dht_conf sc = {
		.id = sid, .bind = "127.0.0.1:0", .announce_addr = addr,
		.flags = NET_RECORD_SUPPLIER, .free_bytes = free_space,
	};
	if ((rc = net_dht_new(sup, &sc)) < 0)
		return rc;
	snprintf(boot, sizeof boot, "127.0.0.1:%d", net_dht_port(*sup));
	struct net_dht_conf oc = {
		.id = oid, .bind = "127.0.0.1:0", .bootstrap = bl,
		.nbootstrap = 1, .watch_suppliers = 1,
	};
	return net_dht_new(own, &oc);
}

static int
test_find_and_lookup(void)
{
	struct cr_identity *sid = test_identity(), *oid = test_identity();
	struct net_dht *sup = NULL, *own = NULL;
	struct net_record recs[4], r;

	CHECK_EQ(two_nodes(sid, oid, "127.0.0.1:7777", &sup, &own), 0);
	CHECK(net_dht_port(sup) > 0);
	int n = net_dht_suppliers(own, 1, 15000, recs, 4);
	CHECK_EQ(n, 1);
	CHECK_MEM(recs[0].id, sid->pk, CR_PK_BYTES);
	CHECK(strcmp(recs[0].addr[0], "127.0.0.1:7777") == 0);
	CHECK(recs[0].free_bytes == 5ull << 30);
	CHECK(recs[0].flags & NET_RECORD_SUPPLIER);
	CHECK_EQ(net_dht_lookup(own, sid->pk, 15000, &r), 0);
	CHECK_EQ(r.seq, recs[0].seq);

	/* A replay: a genuine record of the supplier, signed with its key,
	 * but older (an address it had before) put by anyone. */
	struct net_record old = r;
	unsigned char buf[NET_RECORD_MAX];
	old.seq = r.seq - 1000;
	strcpy(old.addr[0], "127.0.0.1:6666");
	ssize_t len = net_record_encode(buf, sizeof buf, &old, sid->sk);
	CHECK(len > 0);
	uint64_t before = net_dht_refused(own);
	net_dht_put_raw(own, sid->pk, buf, (size_t)len);
	/* And junk under the same key. */
	net_dht_put_raw(own, sid->pk, "not a record", 12);
	int64_t end = worker_now_ms() + 15000;
	while (net_dht_refused(own) < before + 2 && worker_now_ms() < end) {
		struct net_record x;
		net_dht_lookup(own, sid->pk, 2000, &x);	/* a get round */
		usleep(100000);
	}
	CHECK(net_dht_refused(own) >= before + 2);
	CHECK_EQ(net_dht_lookup(own, sid->pk, 2000, &r), 0);
	CHECK(strcmp(r.addr[0], "127.0.0.1:7777") == 0);
	net_dht_free(own);
	net_dht_free(sup);
	cr_identity_free(sid);
	cr_identity_free(oid);
	return 0;
}

/* A supplier that says it is leaving: the watcher of the suppliers key
 * holds the flagged record (a newer seq) without asking, and no longer
 * counts it among the suppliers to hire. */
static int
test_leaving_seen(void)
{
	struct cr_identity *sid = test_identity(), *oid = test_identity();
	struct net_dht *sup = NULL, *own = NULL;
	struct net_record recs[4], r;

	CHECK_EQ(two_nodes(sid, oid, "127.0.0.1:7778", &sup, &own), 0);
	CHECK_EQ(net_dht_suppliers(own, 1, 15000, recs, 4), 1);
	CHECK_EQ(net_dht_record(own, sid->pk, &r), 0);
	CHECK(!(r.flags & NET_RECORD_LEAVING));
	uint64_t seq = r.seq;

	net_dht_set_flags(sup, NET_RECORD_SUPPLIER | NET_RECORD_LEAVING);
	int64_t end = worker_now_ms() + 15000;
	while (worker_now_ms() < end && (net_dht_record(own, sid->pk, &r) < 0 ||
	    !(r.flags & NET_RECORD_LEAVING)))
		usleep(50000);
	CHECK(r.flags & NET_RECORD_LEAVING);
	CHECK(r.seq > seq);
	CHECK_EQ(net_dht_suppliers(own, 1, 200, recs, 4), 0);
	/* Never held: no record. */
	CHECK_EQ(net_dht_record(own, oid->pk, &r), -ENOENT);
	net_dht_free(own);
	net_dht_free(sup);
	cr_identity_free(sid);
	cr_identity_free(oid);
	return 0;
}

static int
test_bad_bind(void)
{
	struct cr_identity *id = test_identity();
	struct net_dht *d = NULL, *d2 = NULL;
	struct net_dht_conf c = { .id = id, .bind = "nonsense" };
	char addr[64];

	CHECK_EQ(net_dht_new(&d, &c), -EINVAL);
	c.bind = "127.0.0.1:0";
	CHECK_EQ(net_dht_new(&d, &c), 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", net_dht_port(d));
	c.bind = addr;
	CHECK(net_dht_new(&d2, &c) < 0);	/* port taken */
	net_dht_free(d);
	cr_identity_free(id);
	return 0;
}

const struct test tests_dht[] = {
	{ "find_and_lookup", test_find_and_lookup },
	{ "leaving_seen", test_leaving_seen },
	{ "bad_bind", test_bad_bind },
	{ NULL, NULL },
};
