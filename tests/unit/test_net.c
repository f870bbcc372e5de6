/* tests/unit/test_net.c - real supplier processes on 127.0.0.1 and the
 * owner's client against them: store/fetch, lost suppliers, garbage
 * speakers, key pinning, quota. Every child is killed and reaped by
 * test_swarm_stop() (testutil.h), which each test calls whatever its
 * checks said. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net/internal.h"
#include "net/net.h"
#include "test.h"
#include "testutil.h"
#include "util.h"

/* Monitoring and supplier settings of a swarm; zero = the defaults. */
struct mon_opts {
	const char *host;		/* NULL: 127.0.0.1 */
	int ping, suspect, dead;	/* ms */
	unsigned lie;			/* bit i: supplier i */
	uint64_t quota[TEST_MAXSUP];
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* nsup suppliers started, a client with all of them online. */
static int
swarm_start_mon(struct test_swarm *sw, int nsup, int timeout_ms,
    const struct mon_opts *mo)
{
	struct net_conf nc = { 0 };

	memset(sw, 0, sizeof *sw);
	log_init("test", LOG_WARN, NULL);
	CHECK(cr_init() == 0);
	sw->host = mo->host;
	sw->sup_log = LOG_WARN;
	for (int i = 0; i < nsup; i++) {
		sw->lie[i] = !!(mo->lie & (1u << i));
		sw->quota[i] = mo->quota[i];
	}
	nc.timeout_ms = timeout_ms;
	nc.reconnect_ms = 200;
	/* 0 in mo: a mount's default pace */
	nc.ping_interval_ms = mo->ping ? mo->ping : 30000;
	nc.suspect_after_ms = mo->suspect ? mo->suspect : 120000;
	nc.dead_after_ms = mo->dead ? mo->dead : 1800000;
	randombytes_buf(nc.audit_key, sizeof nc.audit_key);
	return test_swarm_start(sw, nsup, nsup, &nc);
}

static int
swarm_start_on(struct test_swarm *sw, const char *host, int nsup,
    int timeout_ms)
{
	const struct mon_opts mo = { .host = host };

	return swarm_start_mon(sw, nsup, timeout_ms, &mo);
}

static int
swarm_start(struct test_swarm *sw, int nsup, int timeout_ms)
{
	return swarm_start_on(sw, NULL, nsup, timeout_ms);
}

static int
roundtrip(struct test_swarm *sw, size_t len, struct store_block *b)
{
	unsigned char *p = malloc(len + 1), *q = malloc(len + 1);

	CHECK(p && q);
	randombytes_buf(p, len);
	CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, b), 0);
	CHECK_EQ(b->plain_len, len);
	CHECK_EQ(b->k, 4);
	CHECK_EQ(b->m, 2);
	CHECK_EQ(b->refcount, 0);
	for (int i = 0; i < 6; i++)
		for (int j = 0; j < i; j++)
			CHECK(memcmp(b->peer[i], b->peer[j], CR_PK_BYTES) != 0);
	memset(q, 0xaa, len + 1);
	CHECK_EQ(net_block_fetch(sw->net, b, q), 0);
	CHECK_MEM(p, q, len);
	free(p);
	free(q);
	return 0;
}

/* ---- tests ------------------------------------------------------------- */

static int
store_fetch_body(struct test_swarm *sw)
{
	static const size_t sizes[] = { 1, 0, 1000, 65537, 4u << 20 };
	struct net_peer_info info[8];
	struct store_block b;
	uint64_t frags = 0;

	if (swarm_start(sw, 6, 10000))
		return 1;
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		if (roundtrip(sw, sizes[i], &b))
			return 1;
	/* Identical plaintext: same block id (convergent), fetchable. */
	CHECK_EQ(net_peers(sw->net, info, 8, 1), 6);
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(info[i].state, NET_PEER_ONLINE);
		CHECK(info[i].rtt_ms >= 0);
		CHECK(info[i].avail > 0);
		CHECK(!sodium_is_zero(info[i].pk, CR_PK_BYTES));
		frags += info[i].fragments;
	}
	CHECK_EQ(frags, 6 * ARRAY_SIZE(sizes));
	/* A block sealed in chunks opens from its four data fragments, each
	 * chunk checked by its own tag: a wrong tag in the record for one
	 * of them does not matter then (and when parity came instead, that
	 * fragment is dropped as before). */
	static unsigned char p[65537], q[65537];
	unsigned char key[CR_KEY_BYTES];
	struct store_block w;

	randombytes_buf(p, sizeof p);
	CHECK_EQ(net_block_store(sw->net, p, sizeof p, sw->datakey, &w), 0);
	CHECK_EQ(w.seal, CR_SEAL_CHUNKED);
	w.frag_hash[1][0] ^= 1;
	memset(q, 0, sizeof q);
	CHECK_EQ(net_block_fetch(sw->net, &w, q), 0);
	CHECK_MEM(p, q, sizeof p);
	/* Sealed whole (index blocks, blocks stored before chunks): every
	 * fragment must match its tag. Two wrong in the record: those
	 * fragments are dropped (if asked for), the other four do; three
	 * wrong: -EIO. */
	randombytes_buf(p, sizeof p);
	cr_block_key(key, p, sizeof p, sw->datakey);
	CHECK_EQ(net_block_store_fmt(sw->net, p, sizeof p, key, CR_SEAL_WHOLE,
	    &w), 0);
	w.frag_hash[0][0] ^= 1;
	w.frag_hash[5][0] ^= 1;
	memset(q, 0, sizeof q);
	CHECK_EQ(net_block_fetch(sw->net, &w, q), 0);
	CHECK_MEM(p, q, sizeof p);
	w.frag_hash[2][0] ^= 1;
	CHECK_EQ(net_block_fetch(sw->net, &w, q), -EIO);
	return 0;
}

static int
test_store_fetch(void)
{
	return test_swarm_run(store_fetch_body);
}

static int
lost_body(struct test_swarm *sw)
{
	struct store_block b;
	unsigned char *q = malloc(4 << 20);
	double t0;
	int rc;

	if (swarm_start(sw, 6, 3000) || roundtrip(sw, 4 << 20, &b))
		return 1;
	test_sup_kill(sw, 1, SIGKILL);
	test_sup_kill(sw, 4, SIGKILL);
	CHECK_EQ(net_block_fetch(sw->net, &b, q), 0);
	usleep(300000);		/* and once the client knows they are gone */
	CHECK_EQ(net_block_fetch(sw->net, &b, q), 0);
	/* A third one stopped (not closed: it hangs) -> -EIO, bounded. */
	kill(sw->pid[2], SIGSTOP);
	t0 = now_s();
	rc = net_block_fetch(sw->net, &b, q);
	CHECK_EQ(rc, -EIO);
	CHECK(now_s() - t0 < 8);
	test_sup_kill(sw, 3, SIGKILL);
	usleep(300000);
	t0 = now_s();
	CHECK_EQ(net_block_fetch(sw->net, &b, q), -EIO);
	CHECK(now_s() - t0 < 1);	/* offline ones are skipped at once */
	/* Fewer than k + m online: storing is refused at once. */
	CHECK_EQ(net_block_store(sw->net, "x", 1, sw->datakey, &b), -EAGAIN);
	free(q);
	return 0;
}

static int
test_lost_suppliers(void)
{
	return test_swarm_run(lost_body);
}

/* Finds fragments of block id in a LIST: how many, and the index of
 * the last. */
struct want_frag {
	unsigned char id[CR_ID_BYTES];
	uint64_t size;
	int seen, idx;
};

static int
want_cb(void *arg, const unsigned char *fragid, uint64_t size)
{
	struct want_frag *w = arg;

	if (memcmp(fragid, w->id, CR_ID_BYTES) == 0 && size == w->size) {
		w->seen++;
		w->idx = fragid[CR_ID_BYTES];
	}
	return 0;
}

/* A PUT still queued behind a stalled supplier when its upload ended
 * (the fragment doubled up on another holder meanwhile) is written from
 * the upload's own fragment, lent (net_lend) rather than copied, so it
 * must outlive the upload: once the supplier reads again, the fragment
 * arrives whole (the supplier checks the session's MAC over it, which a
 * freed or reused buffer would fail, closing the session) and is
 * stored there. 40 MiB blocks: 10 MiB fragments, more than the socket
 * buffers hold, so most of it is still in the write queue. */
static int
lent_put_body(struct test_swarm *sw)
{
	const size_t len = 40u << 20;
	unsigned char *p = malloc(len);
	struct net_peer_info info[8];
	struct store_block b;
	struct want_frag w = { .seen = 0 };
	int stall = 5, sp = -1, dbl[2] = { -1, -1 };
	double t0;

	CHECK(p != NULL);
	if (swarm_start(sw, 6, 10000))
		return 1;
	/* A first block with everyone up: each supplier grants room for
	 * fragments this big, so the next PUTs go without a RESERVE. */
	randombytes_buf(p, len);
	CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, &b), 0);
	CHECK_EQ(net_peers(sw->net, info, 8, 0), 6);
	for (int i = 0; i < 6; i++)
		if (strcmp(info[i].addr, sw->addr[stall]) == 0)
			sp = i;
	CHECK(sp >= 0);
	kill(sw->pid[stall], SIGSTOP);
	randombytes_buf(p, len);
	CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, &b), 0);
	for (int i = 0; i < 6; i++)
		CHECK(memcmp(b.peer[i], info[sp].pk, CR_PK_BYTES) != 0);
	/* It was sent one of the two fragments now doubled up on one
	 * holder. */
	for (int i = 0; i < 6 && dbl[0] < 0; i++)
		for (int j = 0; j < i; j++)
			if (memcmp(b.peer[i], b.peer[j], CR_PK_BYTES) == 0) {
				dbl[0] = j;
				dbl[1] = i;
			}
	CHECK(dbl[0] >= 0);
	kill(sw->pid[stall], SIGCONT);
	memcpy(w.id, b.id, CR_ID_BYTES);
	w.size = b.frag_len;
	for (t0 = now_s(); !w.seen && now_s() - t0 < 20; usleep(100000))
		CHECK(net_frag_list(sw->net, info[sp].pk, want_cb, &w) >= 0 ||
		    now_s() - t0 < 20);
	CHECK_EQ(w.seen, 1);
	CHECK(w.idx == dbl[0] || w.idx == dbl[1]);
	CHECK_EQ(net_peers(sw->net, info, 8, 0), 6);
	CHECK_EQ(info[sp].state, NET_PEER_ONLINE);
	free(p);
	return 0;
}

static int
test_lent_put(void)
{
	return test_swarm_run(lent_put_body);
}

/* ---- garbage speakers -------------------------------------------------- */

static int
raw_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 12 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static int
read_full(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

/* 1 when the peer closed the connection (EOF or reset) in time. */
static int
closed_by_peer(int fd)
{
	char buf[256];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return 1;
		if (r < 0)
			return 0;	/* timeout */
	}
}

/* A handshaked raw connection: returns the fd, hs holds the streams. */
static int
raw_handshake(int port, const struct cr_identity *me, struct cr_hs *hs)
{
	unsigned char hello[CR_HS_HELLO_BYTES], reply[CR_HS_REPLY_BYTES];
	unsigned char fin[CR_HS_FINISH_BYTES];
	int fd = raw_connect(port);

	if (fd < 0 || cr_hs_client_hello(hs, me, hello) < 0 ||
	    write(fd, hello, sizeof hello) != sizeof hello ||
	    read_full(fd, reply, sizeof reply) < 0 ||
	    cr_hs_client_finish(hs, me, reply, fin) < 0 ||
	    write(fd, fin, sizeof fin) != sizeof fin)
		return -1;
	return fd;
}

/* Writes one v2 record: L | B | secretstream(hdr) | bulk, the bulk MAC'd
 * as additional data; flip != 0 flips a bit of the bulk after the MAC. */
static int
send_frame(int fd, struct cr_hs *hs, const unsigned char *hdr, size_t hl,
    const unsigned char *bulk, size_t bl, int flip)
{
	size_t cl = hl + CR_STREAM_ABYTES, tot = 8 + cl + bl;
	unsigned char *w = malloc(tot);
	int rc;

	if (!w)
		return -1;
	put_be32(w, (uint32_t)cl);
	put_be32(w + 4, (uint32_t)bl);
	if (bl)
		memcpy(w + 8 + cl, bulk, bl);
	cr_stream_push_ad(&hs->tx, w + 8, hdr, hl, w + 8 + cl, bl);
	if (flip && bl)
		w[8 + cl + bl / 2] ^= 0x10;
	rc = write(fd, w, tot) == (ssize_t)tot ? 0 : -1;
	free(w);
	return rc;
}

static int
send_record(int fd, struct cr_hs *hs, const struct net_msg *m)
{
	unsigned char hdr[256];
	const unsigned char *bulk;
	size_t bl;
	ssize_t n = net_msg_encode_head(hdr, sizeof hdr, m, &bulk, &bl);

	if (n < 0)
		return -1;
	return send_frame(fd, hs, hdr, (size_t)n, bulk, bl, 0);
}

/* Reads one v2 record from a server into plain (header then bulk, as
 * net/sess.c lays it out) and decodes it into r; *bulk_len gets B. */
static int
read_record(int fd, struct cr_hs *hs, struct net_msg *r, unsigned char *plain,
    size_t cap, size_t *bulk_len)
{
	unsigned char pfx[8], *c;
	uint32_t l, bl;
	int rc;

	if (read_full(fd, pfx, 8) < 0)
		return -1;
	l = get_be32(pfx);
	bl = get_be32(pfx + 4);
	if (l < CR_STREAM_ABYTES + NET_MSG_HDR ||
	    (uint64_t)l - CR_STREAM_ABYTES + bl > cap)
		return -1;
	if (!(c = malloc(l)) || read_full(fd, c, l) < 0 ||
	    read_full(fd, plain + l - CR_STREAM_ABYTES, bl) < 0) {
		free(c);
		return -1;
	}
	/* A server's bulk is not MAC'd (net/internal.h): a pull that
	 * included it would fail. */
	rc = cr_stream_pull_ad(&hs->rx, plain, c, l, NULL, 0);
	free(c);
	if (rc < 0 || net_msg_bulk_ok(plain[0], l - CR_STREAM_ABYTES, bl) < 0)
		return -1;
	if (bulk_len)
		*bulk_len = bl;
	return net_msg_decode(r, plain, l - CR_STREAM_ABYTES + bl);
}

/* Sends m, reads one response into r (plain holds its bytes). */
static int
raw_request(int fd, struct cr_hs *hs, const struct net_msg *m,
    struct net_msg *r, unsigned char *plain, size_t cap)
{
	if (send_record(fd, hs, m) < 0)
		return -1;
	return read_record(fd, hs, r, plain, cap, NULL);
}

static int
list_body(struct test_swarm *sw)
{
	static unsigned char plain[1 << 20];
	unsigned char zero[STORE_FRAGID_BYTES] = { 0 }, fid[STORE_FRAGID_BYTES];
	struct net_msg m = { 0 }, r;
	struct store_block b;
	struct cr_hs hs;
	int fd, idx = -1;

	if (swarm_start(sw, 6, 5000) || roundtrip(sw, 1000, &b))
		return 1;
	/* The raw client speaks with the owner's key: same namespace. */
	CHECK((fd = raw_handshake(sw->port[0], sw->me, &hs)) >= 0);
	m.type = NET_PING;
	m.reqid = 1;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_PONG);
	CHECK_EQ(r.fragments, 1);
	m.type = NET_LIST;
	m.reqid = 2;
	m.fragid = zero;
	m.max = 10;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_LIST_OK);
	CHECK_EQ(r.reqid, 2);
	CHECK_EQ(r.n, 1);
	CHECK_MEM(r.entries, b.id, CR_ID_BYTES);
	idx = r.entries[CR_ID_BYTES];
	CHECK(idx >= 0 && idx < 6);
	CHECK_EQ(get_be64(r.entries + STORE_FRAGID_BYTES), b.frag_len);
	memcpy(fid, r.entries, sizeof fid);
	m.fragid = fid;
	m.reqid = 3;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_LIST_OK);
	CHECK_EQ(r.n, 0);
	/* GET of the listed fragment gives the bytes whose hash we know. */
	m.type = NET_GET;
	m.reqid = 4;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_GET_OK);
	{
		CHECK_EQ(cr_frag_check(b.frag_hash[idx], b.key, sw->ec, idx,
		    r.data, r.data_len), 0);
		CHECK_EQ(cr_frag_check(b.frag_hash[idx], b.key, sw->ec,
		    idx ^ 1, r.data, r.data_len), -EBADMSG);
	}
	/* A missing fragment: ERR ENOENT, and the session stays. */
	fid[CR_ID_BYTES] ^= 0x80;
	m.reqid = 5;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_ERR);
	CHECK_EQ(r.err, ENOENT);
	m.type = NET_DEL;
	m.reqid = 6;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_ERR);
	CHECK_EQ(r.err, ENOENT);
	/* Another owner sees nothing of ours. */
	close(fd);
	struct cr_identity *other = test_identity();
	CHECK((fd = raw_handshake(sw->port[0], other, &hs)) >= 0);
	m.type = NET_LIST;
	m.fragid = zero;
	m.reqid = 7;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_LIST_OK);
	CHECK_EQ(r.n, 0);
	close(fd);
	sodium_free(other);
	return 0;
}

/* Format v2 against a real supplier: fragments travel as bulk both ways,
 * and every way of bending the bulk rules closes the session without
 * storing anything. */
static int
bulk_body(struct test_swarm *sw)
{
	static unsigned char plain[1 << 20];
	unsigned char fid[STORE_FRAGID_BYTES], h1[CR_HASH_BYTES];
	unsigned char h2[CR_HASH_BYTES], *x = malloc(70000), *y = malloc(70000);
	unsigned char hdr[128];
	const unsigned char *bulk;
	struct net_msg m = { 0 }, r;
	struct cr_hs hs;
	size_t bl;
	ssize_t hl;
	int fd, port;

	CHECK(x && y);
	if (swarm_start(sw, 1, 5000))
		return 1;
	port = sw->port[0];
	randombytes_buf(fid, sizeof fid);
	randombytes_buf(x, 70000);
	randombytes_buf(y, 70000);
	cr_hash(h1, x, 70000);
	cr_hash(h2, y, 70000);

	/* PUT with bulk, then GET_OK comes back with the bytes as bulk. */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	m.type = NET_PUT;
	m.reqid = 1;
	m.fragid = fid;
	m.hash = h1;
	m.data = x;
	m.data_len = 70000;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_PUT_OK);
	CHECK_EQ(r.reqid, 1);
	memset(&m, 0, sizeof m);
	m.type = NET_GET;
	m.reqid = 2;
	m.fragid = fid;
	bl = 0;
	CHECK(send_record(fd, &hs, &m) == 0);
	CHECK_EQ(read_record(fd, &hs, &r, plain, sizeof plain, &bl), 0);
	CHECK_EQ(r.type, NET_GET_OK);
	CHECK_EQ(bl, 70000);
	CHECK(r.data == plain + NET_MSG_HDR);
	CHECK_EQ(r.data_len, 70000);
	CHECK_MEM(r.data, x, 70000);

	/* The hash recorded is the owner's: other bytes of the same size
	 * under the same claimed hash are taken for a re-put (no-op). A
	 * different hash rewrites. */
	memset(&m, 0, sizeof m);
	m.type = NET_PUT;
	m.reqid = 3;
	m.fragid = fid;
	m.hash = h1;
	m.data = y;
	m.data_len = 70000;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_PUT_OK);
	memset(&m, 0, sizeof m);
	m.type = NET_GET;
	m.reqid = 4;
	m.fragid = fid;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_GET_OK);
	CHECK_MEM(r.data, x, 70000);
	memset(&m, 0, sizeof m);
	m.type = NET_PUT;
	m.reqid = 5;
	m.fragid = fid;
	m.hash = h2;
	m.data = y;
	m.data_len = 70000;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_PUT_OK);
	memset(&m, 0, sizeof m);
	m.type = NET_GET;
	m.reqid = 6;
	m.fragid = fid;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_MEM(r.data, y, 70000);
	close(fd);

	/* A flipped bit in the bulk: bad MAC, closed, nothing stored. */
	fid[0] ^= 1;
	memset(&m, 0, sizeof m);
	m.type = NET_PUT;
	m.reqid = 7;
	m.fragid = fid;
	m.hash = h1;
	m.data = x;
	m.data_len = 70000;
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	hl = net_msg_encode_head(hdr, sizeof hdr, &m, &bulk, &bl);
	CHECK_EQ(hl, NET_MSG_HDR + STORE_FRAGID_BYTES + CR_HASH_BYTES);
	CHECK(send_frame(fd, &hs, hdr, (size_t)hl, bulk, bl, 1) == 0);
	CHECK(closed_by_peer(fd));
	close(fd);

	/* The split point off the data offset: 3 fragment bytes in the
	 * header, the rest as bulk (MAC good): closed, nothing stored. */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	m.data_len = 70000;
	CHECK_EQ(net_msg_encode(plain, sizeof plain, &m), hl + 70000);
	CHECK(send_frame(fd, &hs, plain, (size_t)hl + 3, plain + hl + 3,
	    70000 - 3, 0) == 0);
	CHECK(closed_by_peer(fd));
	close(fd);
	/* ... and 3 bytes short of it. */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	CHECK(send_frame(fd, &hs, plain, (size_t)hl - 3, plain + hl - 3,
	    70000 + 3, 0) == 0);
	CHECK(closed_by_peer(fd));
	close(fd);

	/* Bulk on a type without (PING with 5 bytes, MAC good), and on
	 * GET_OK, the server's: from a client, even MAC'd and well formed,
	 * it closes the session. */
	for (int t = 0; t < 2; t++) {
		CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
		memset(hdr, 0, NET_MSG_HDR);
		hdr[0] = t ? NET_GET_OK : NET_PING;
		CHECK(send_frame(fd, &hs, hdr, NET_MSG_HDR,
		    (const unsigned char *)"bulk!", 5, 0) == 0);
		CHECK(closed_by_peer(fd));
		close(fd);
	}

	/* A GET whose fragid ends in a bulk: would decode, yet closed. */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	hdr[0] = NET_GET;
	memcpy(hdr + NET_MSG_HDR, fid, STORE_FRAGID_BYTES);
	CHECK(send_frame(fd, &hs, hdr, NET_MSG_HDR + 30,
	    hdr + NET_MSG_HDR + 30, 3, 0) == 0);
	CHECK(closed_by_peer(fd));
	close(fd);

	/* L + B over the maximum: closed on the prefix alone. */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	put_be32(hdr, CR_STREAM_ABYTES + (uint32_t)hl);
	put_be32(hdr + 4, NET_FRAME_MAX - CR_STREAM_ABYTES - (uint32_t)hl + 1);
	CHECK(write(fd, hdr, 8) == 8);
	CHECK(closed_by_peer(fd));
	close(fd);

	/* The same PUT sent right (B = the fragment) is stored; nothing
	 * before it was. */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	memset(&m, 0, sizeof m);
	m.type = NET_GET;
	m.reqid = 8;
	m.fragid = fid;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_ERR);
	CHECK_EQ(r.err, ENOENT);
	memset(&m, 0, sizeof m);
	m.type = NET_PING;
	m.reqid = 9;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_PONG);
	CHECK_EQ(r.fragments, 1);
	CHECK_EQ(r.bytes, 70000);
	close(fd);
	free(x);
	free(y);
	return 0;
}

static int
test_bulk_raw(void)
{
	return test_swarm_run(bulk_body);
}

static int
test_list_get_raw(void)
{
	return test_swarm_run(list_body);
}

static int
test_handshake_timeout(void)
{
	struct test_swarm sw;
	int rc = 1, fd = -1;
	double t0;

	memset(&sw, 0, sizeof sw);
	log_init("test", LOG_WARN, NULL);
	sw.sup_log = LOG_WARN;
	if (cr_init() < 0 || test_sup_start(&sw, 0, 0) < 0)
		goto out;
	if ((fd = raw_connect(sw.port[0])) < 0)
		goto out;
	t0 = now_s();
	if (!closed_by_peer(fd) || now_s() - t0 < NET_HS_TIMEOUT_MS / 1000 - 1) {
		fprintf(stderr, "silent client not dropped in time\n");
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	test_swarm_stop(&sw);
	return rc;
}

/* Every fragment passes its check, yet the first set of k does not open
 * the block (here: the record names, for fragment 0, the tag of another
 * block's fragment 0, and the supplier holds that one). The fetch tries
 * other sets before it gives up, and blames nobody. */
static int
other_sets_body(struct test_swarm *sw)
{
	enum { LEN = 100000 };
	/* other: as long as the block sealed in chunks (a tag each). */
	static unsigned char p[LEN], q[LEN], other[LEN + (LEN + CR_CHUNK_BYTES -
	    1) / CR_CHUNK_BYTES * CR_SEAL_ABYTES];
	unsigned char *fr[CR_EC_MAX], plain[1024], fid[STORE_FRAGID_BYTES];
	struct net_msg m = { 0 }, r;
	struct store_block b;
	struct cr_hs hs;
	uint32_t bad = 99;
	size_t fl;
	int fd, sup = -1;

	if (swarm_start(sw, 6, 5000))
		return 1;
	randombytes_buf(p, sizeof p);
	CHECK_EQ(net_block_store(sw->net, p, LEN, sw->datakey, &b), 0);
	/* Fragment 0 of other bytes of the same length, under b's key. */
	CHECK_EQ(b.seal, CR_SEAL_CHUNKED);
	CHECK_EQ(cr_sealed_len(b.seal, LEN), sizeof other);
	randombytes_buf(other, sizeof other);
	CHECK_EQ(cr_ec_encode(sw->ec, other, sizeof other, fr, &fl), 0);
	CHECK_EQ(fl, b.frag_len);
	cr_frag_tag(b.frag_hash[0], b.key, sw->ec, 0, fr[0], fl);
	for (int i = 0; i < 6; i++)
		if (memcmp(sw->sid[i]->pk, b.peer[0], CR_PK_BYTES) == 0)
			sup = i;
	CHECK(sup >= 0);
	/* Its holder gets it (a new hash rewrites the fragment). */
	memcpy(fid, b.id, CR_ID_BYTES);
	fid[CR_ID_BYTES] = 0;
	CHECK((fd = raw_handshake(sw->port[sup], sw->me, &hs)) >= 0);
	m.type = NET_PUT;
	m.reqid = 1;
	m.fragid = fid;
	m.hash = b.frag_hash[0];
	m.data = fr[0];
	m.data_len = fl;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_PUT_OK);
	close(fd);
	cr_ec_encode_free(sw->ec, fr);
	/* The data fragments 0..3 come first: they check, do not open; a set
	 * without fragment 0 does. */
	memset(q, 0, sizeof q);
	CHECK_EQ(net_block_fetch_report(sw->net, &b, q, &bad), 0);
	CHECK_MEM(p, q, LEN);
	CHECK_EQ(bad, 0);
	/* Nobody was charged: every fragment was the one its tag names. */
	struct net_peer_info info[8];
	int n = net_peers(sw->net, info, 8, 0);
	CHECK_EQ(n, 6);
	for (int i = 0; i < n; i++)
		CHECK_EQ(info[i].bad_fragments, 0);
	sodium_memzero(&b, sizeof b);
	return 0;
}

/* The swarm's index of the supplier holding fragment i of b, or -1. */
static int
holder_of(const struct test_swarm *sw, const struct store_block *b, int i)
{
	for (int s = 0; s < TEST_MAXSUP; s++)
		if (sw->sid[s] && memcmp(sw->sid[s]->pk, b->peer[i],
		    CR_PK_BYTES) == 0)
			return s;
	return -1;
}

/* Range reads (net/range.c) against real suppliers: every chunk alone
 * and ranges across data fragment boundaries return the plaintext, and
 * cost the suppliers about their sealed bytes; a range past a fragment's
 * end is refused by name; a holder down or lying sends the caller to the
 * whole-block path, which still reads and names the liar; a block in the
 * old format reads whole only. */
static int
range_body(struct test_swarm *sw)
{
	enum { LEN = (4 << 20) - 1000 };
	static unsigned char p[LEN], q[LEN];
	unsigned char plain[1024], fid[STORE_FRAGID_BYTES];
	uint32_t nch = cr_chunk_count(LEN), bad = 0;
	struct net_msg m = { 0 }, r;
	struct store_block b, old;
	size_t hdr, pay;
	struct cr_hs hs;
	uint64_t before;
	int fd, liar = -1;

	if (swarm_start(sw, 6, 5000))
		return 1;
	randombytes_buf(p, sizeof p);
	CHECK_EQ(net_block_store(sw->net, p, LEN, sw->datakey, &b), 0);
	CHECK_EQ(b.seal, CR_SEAL_CHUNKED);
	CHECK_EQ(cr_ec_data_layout(sw->ec, cr_sealed_len(b.seal, LEN),
	    b.frag_len, &hdr, &pay), 0);
	for (uint32_t c = 0; c < nch; c++) {
		size_t off = (size_t)c * CR_CHUNK_BYTES;
		size_t l = LEN - off < CR_CHUNK_BYTES ? LEN - off : CR_CHUNK_BYTES;

		memset(q, 0, l);
		before = net_fetched_bytes(sw->net);
		CHECK_EQ(net_block_fetch_range(sw->net, &b, c, 1, q), 0);
		CHECK_MEM(q, p + off, l);
		CHECK_EQ(net_fetched_bytes(sw->net) - before, l + CR_SEAL_ABYTES);
	}
	/* The chunks around the end of data fragment 0, and all of them. */
	uint32_t c0 = (uint32_t)(pay / CR_CHUNK_SEALED) - 1;
	CHECK_EQ(net_block_fetch_range(sw->net, &b, c0, 3, q), 0);
	CHECK_MEM(q, p + (size_t)c0 * CR_CHUNK_BYTES, 3 * CR_CHUNK_BYTES);
	CHECK_EQ(net_block_fetch_range(sw->net, &b, 0, nch, q), 0);
	CHECK_MEM(q, p, LEN);
	CHECK_EQ(net_block_fetch_range(sw->net, &b, nch - 1, 2, q), -EINVAL);
	/* A range past the fragment's end: ERANGE, with the sizes. */
	memcpy(fid, b.id, CR_ID_BYTES);
	fid[CR_ID_BYTES] = 0;
	int h0 = holder_of(sw, &b, 0);
	CHECK(h0 >= 0);
	CHECK((fd = raw_handshake(sw->port[h0], sw->me, &hs)) >= 0);
	m.type = NET_GET;
	m.reqid = 1;
	m.fragid = fid;
	m.ranged = 1;
	m.range_off = b.frag_len - 10;
	m.range_len = 11;
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_ERR);
	CHECK_EQ(r.err, ERANGE);
	CHECK(r.errmsg_len > 10 && memmem(r.errmsg, r.errmsg_len, "beyond",
	    6) != NULL);
	m.range_len = 10;		/* the last ten bytes are there */
	CHECK_EQ(raw_request(fd, &hs, &m, &r, plain, sizeof plain), 0);
	CHECK_EQ(r.type, NET_GET_OK);
	CHECK_EQ(r.data_len, 10);
	close(fd);
	/* Data fragment 1's holder restarted as a liar: the chunks it holds
	 * fail their tags; the whole path reads the block and names it. */
	CHECK((liar = holder_of(sw, &b, 1)) >= 0);
	test_sup_kill(sw, liar, SIGKILL);
	/* Its holder down: nothing asked, the caller goes whole. */
	for (int t = 0; t < 100 && net_block_fetch_range(sw->net, &b, c0 + 1,
	    1, q) != -EAGAIN; t++)
		usleep(50000);
	CHECK_EQ(net_block_fetch_range(sw->net, &b, c0 + 1, 1, q), -EAGAIN);
	/* Chunk 0 is all in fragment 0: still read alone. */
	CHECK_EQ(net_block_fetch_range(sw->net, &b, 0, 1, q), 0);
	CHECK_MEM(q, p, CR_CHUNK_BYTES);
	sw->lie[liar] = 1;
	CHECK_EQ(test_sup_start(sw, liar, sw->port[liar]), 0);
	CHECK_EQ(net_wait_online(sw->net, 6, 10000), 6);
	CHECK_EQ(net_block_fetch_range(sw->net, &b, c0 + 1, 1, q), -EBADMSG);
	CHECK_EQ(net_block_fetch_report(sw->net, &b, q, &bad), 0);
	CHECK_MEM(q, p, LEN);
	CHECK_EQ(bad, 1u << 1);
	/* The old format: read whole, never in ranges. */
	unsigned char key[CR_KEY_BYTES];
	cr_block_key(key, p, 1000, sw->datakey);
	CHECK_EQ(net_block_store_fmt(sw->net, p, 1000, key, CR_SEAL_WHOLE,
	    &old), 0);
	CHECK_EQ(old.seal, CR_SEAL_WHOLE);
	CHECK_EQ(net_block_fetch_range(sw->net, &old, 0, 1, q), -ENOTSUP);
	memset(q, 0, 1000);
	CHECK_EQ(net_block_fetch(sw->net, &old, q), 0);
	CHECK_MEM(q, p, 1000);
	sodium_memzero(&b, sizeof b);
	sodium_memzero(&old, sizeof old);
	return 0;
}

static int
test_range(void)
{
	return test_swarm_run(range_body);
}

static int
test_other_sets(void)
{
	return test_swarm_run(other_sets_body);
}

static int
garbage_body(struct test_swarm *sw)
{
	struct cr_hs hs;
	unsigned char junk[4096], len[8];
	struct store_block b;
	int fd, port, status;

	if (swarm_start(sw, 6, 10000))
		return 1;
	port = sw->port[0];

	/* Random bytes instead of a handshake. */
	CHECK((fd = raw_connect(port)) >= 0);
	randombytes_buf(junk, sizeof junk);
	CHECK(write(fd, junk, sizeof junk) > 0);
	CHECK(closed_by_peer(fd));
	close(fd);

	/* A version 2 peer: its HELLO magic is refused. */
	CHECK((fd = raw_connect(port)) >= 0);
	{
		unsigned char hello[CR_HS_HELLO_BYTES];
		CHECK_EQ(cr_hs_client_hello(&hs, sw->me, hello), 0);
		CHECK(memcmp(hello, "PEERFS3", 8) == 0);
		memcpy(hello, "PEERFS2", 8);
		CHECK(write(fd, hello, sizeof hello) == sizeof hello);
	}
	CHECK(closed_by_peer(fd));
	close(fd);

	/* A valid handshake, then a length beyond the cap. */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	put_be32(len, NET_FRAME_MAX + 1);
	put_be32(len + 4, 0);
	CHECK(write(fd, len, 8) == 8);
	CHECK(closed_by_peer(fd));
	close(fd);

	/* A zero length. */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	put_be32(len, 0);
	put_be32(len + 4, 0);
	CHECK(write(fd, len, 8) == 8);
	CHECK(closed_by_peer(fd));
	close(fd);

	/* A valid handshake, then a record with a bad MAC. */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	put_be32(junk, 100);
	put_be32(junk + 4, 0);
	CHECK(write(fd, junk, 108) == 108);
	CHECK(closed_by_peer(fd));
	close(fd);

	/* A good record with an undecodable message (unknown type). */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	{
		unsigned char plain[9] = { 0x42 };
		CHECK(send_frame(fd, &hs, plain, 9, NULL, 0, 0) == 0);
	}
	CHECK(closed_by_peer(fd));
	close(fd);

	/* A response where a request belongs. */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	{
		struct net_msg m = { .type = NET_PUT_OK, .reqid = 7 };
		CHECK(send_record(fd, &hs, &m) == 0);
	}
	CHECK(closed_by_peer(fd));
	close(fd);

	/* A well-behaved raw client gets its PONG. */
	CHECK((fd = raw_handshake(port, sw->me, &hs)) >= 0);
	{
		struct net_msg m = { .type = NET_PING, .reqid = 9 }, r;
		unsigned char plain[128];
		size_t bl = 1;
		CHECK(send_record(fd, &hs, &m) == 0);
		CHECK_EQ(read_record(fd, &hs, &r, plain, sizeof plain, &bl), 0);
		CHECK_EQ(r.type, NET_PONG);
		CHECK_EQ(r.reqid, 9);
		CHECK_EQ(bl, 0);
	}
	close(fd);

	/* A silent client is dropped after the handshake timeout: not
	 * waited for here (10 s); the supplier still serves everyone. */
	CHECK_EQ(waitpid(sw->pid[0], &status, WNOHANG), 0);
	if (roundtrip(sw, 300000, &b))
		return 1;
	CHECK_EQ(net_wait_online(sw->net, 6, 0), 6);
	return 0;
}

static int
test_garbage(void)
{
	return test_swarm_run(garbage_body);
}

/* ---- key pinning ------------------------------------------------------- */

static int
pin_body(struct test_swarm *sw)
{
	struct net_peer_info info[8];
	struct store_block b;
	int online = 0;

	if (swarm_start(sw, 6, 3000))
		return 1;
	test_sup_kill(sw, 5, SIGTERM);
	/* Same address, new identity. */
	sodium_free(sw->sid[5]);
	sw->sid[5] = test_identity();
	CHECK_EQ(test_sup_start(sw, 5, sw->port[5]), 0);
	usleep(1500000);		/* several reconnect attempts */
	CHECK_EQ(net_peers(sw->net, info, 8, 1), 6);
	for (int i = 0; i < 6; i++) {
		if (strcmp(info[i].addr, sw->addr[5]) == 0) {
			CHECK(info[i].state != NET_PEER_ONLINE);
			CHECK(strstr(info[i].last_error, "pinned") != NULL);
		} else {
			online += info[i].state == NET_PEER_ONLINE;
		}
	}
	CHECK_EQ(online, 5);
	CHECK_EQ(net_wait_online(sw->net, 6, 300), 5);
	CHECK_EQ(net_block_store(sw->net, "abc", 3, sw->datakey, &b), -EAGAIN);
	return 0;
}

static int
test_key_pinning(void)
{
	return test_swarm_run(pin_body);
}

/* ---- quota ------------------------------------------------------------- */

static int
quota_body(struct test_swarm *sw)
{
	struct store_block b;
	unsigned char small[CR_PK_BYTES];
	struct net_peer_info info[8];
	size_t len = 1 << 20;
	unsigned char *p = malloc(len), *q = malloc(len);

	if (swarm_start(sw, 6, 5000))
		return 1;
	/* A seventh supplier that can hold almost nothing. */
	sw->quota[6] = 4096;
	CHECK_EQ(test_sup_start(sw, 6, 0), 0);
	CHECK_EQ(net_add_peer(sw->net, sw->addr[6]), 0);
	CHECK_EQ(net_wait_online(sw->net, 7, 5000), 7);
	CHECK_EQ(net_peers(sw->net, info, 8, 1), 7);
	memcpy(small, info[6].pk, CR_PK_BYTES);
	CHECK_EQ(info[6].quota, 4096);
	/* Every block lands, never on the small one. */
	for (int r = 0; r < 4; r++) {
		randombytes_buf(p, len);
		CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, &b), 0);
		for (int i = 0; i < 6; i++)
			CHECK(memcmp(b.peer[i], small, CR_PK_BYTES) != 0);
		CHECK_EQ(net_block_fetch(sw->net, &b, q), 0);
		CHECK_MEM(p, q, len);
	}
	/* Only six suppliers left, one of them full: fails cleanly, and
	 * says that a supplier refuses (not that suppliers are missing). */
	test_sup_kill(sw, 0, SIGKILL);
	usleep(300000);
	CHECK_EQ(net_wait_online(sw->net, 7, 0), 6);
	randombytes_buf(p, len);
	CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, &b), -EDQUOT);
	CHECK_EQ(net_peers(sw->net, info, 8, 0), 7);
	CHECK_EQ(strcmp(info[6].refusal, "quota exceeded"), 0);
	free(p);
	free(q);
	return 0;
}

/* Suppliers from before RESERVE close the session on it: the client
 * then sends them plain PUTs, and blocks land. */
static int
old_suppliers_body(struct test_swarm *sw)
{
	const struct net_conf nc = { TEST_NET_PACE, .timeout_ms = 5000,
	    .reconnect_ms = 100 };
	struct store_block b;
	size_t len = 256 << 10;
	unsigned char *p = malloc(len), *q = malloc(len);
	int rc = -1;

	CHECK(p && q);
	for (int i = 0; i < 6; i++)
		sw->old[i] = 1;
	if (test_swarm_start(sw, 6, 6, &nc))
		return 1;
	randombytes_buf(p, len);
	/* The first try may lose its sessions to the RESERVEs. */
	for (int t = 0; t < 3 && rc != 0; t++) {
		CHECK_EQ(net_wait_online(sw->net, 6, 5000), 6);
		rc = net_block_store(sw->net, p, len, sw->datakey, &b);
	}
	CHECK_EQ(rc, 0);
	CHECK_EQ(net_block_fetch(sw->net, &b, q), 0);
	CHECK_MEM(p, q, len);
	/* A range read loses the sessions it asks once, then is not tried
	 * on them again: the block is read whole. */
	CHECK(net_block_fetch_range(sw->net, &b, 0, 1, q) < 0);
	CHECK_EQ(net_wait_online(sw->net, 6, 5000), 6);
	CHECK_EQ(net_block_fetch_range(sw->net, &b, 0, 1, q), -EAGAIN);
	memset(q, 0, len);
	CHECK_EQ(net_block_fetch(sw->net, &b, q), 0);
	CHECK_MEM(p, q, len);
	/* and from then on without losing a session */
	randombytes_buf(p, len);
	CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, &b), 0);
	free(p);
	free(q);
	return 0;
}

static int
test_old_suppliers(void)
{
	return test_swarm_run(old_suppliers_body);
}

static int
test_quota(void)
{
	return test_swarm_run(quota_body);
}

/* ---- block delete and clean stop ----------------------------------------- */

static int
block_delete_body(struct test_swarm *sw)
{
	struct store_block b;
	struct net_peer_info info[8];
	unsigned char q[5000];
	uint64_t frags = 0;
	int status;

	if (swarm_start(sw, 6, 5000) || roundtrip(sw, 5000, &b))
		return 1;
	CHECK_EQ(net_block_delete(sw->net, &b), 0);
	usleep(300000);
	CHECK_EQ(net_peers(sw->net, info, 8, 1), 6);
	for (int i = 0; i < 6; i++)
		frags += info[i].fragments;
	CHECK_EQ(frags, 0);
	CHECK_EQ(net_block_fetch(sw->net, &b, q), -EIO);
	/* SIGTERM: the supplier returns 0 from net_supplier_run. */
	kill(sw->pid[0], SIGTERM);
	CHECK_EQ(waitpid(sw->pid[0], &status, 0), sw->pid[0]);
	sw->pid[0] = 0;
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	return 0;
}

static int
test_block_delete(void)
{
	return test_swarm_run(block_delete_body);
}

/* ---- a supplier that breaks the protocol ------------------------------- */

enum { FAKE_BAD_REQID, FAKE_BAD_TYPE, FAKE_BAD_MAC };

/* Child: one connection, a real handshake, then one bad answer. */
static void
fake_supplier(int lfd, int mode)
{
	struct cr_identity *id = test_identity();
	unsigned char hello[CR_HS_HELLO_BYTES], reply[CR_HS_REPLY_BYTES];
	unsigned char fin[CR_HS_FINISH_BYTES], c[256], plain[256];
	struct cr_hs hs;
	struct net_msg m, r = { 0 };
	int fd = accept(lfd, NULL, NULL);

	if (fd < 0 || read_full(fd, hello, sizeof hello) < 0 ||
	    cr_hs_server_reply(&hs, id, hello, reply) < 0 ||
	    write(fd, reply, sizeof reply) != sizeof reply ||
	    read_full(fd, fin, sizeof fin) < 0 ||
	    cr_hs_server_finish(&hs, fin) < 0)
		_exit(1);
	/* The client pings as soon as it is up. */
	if (read_record(fd, &hs, &m, plain, sizeof plain, NULL) < 0)
		_exit(1);
	r.type = NET_PONG;
	r.reqid = m.reqid;
	if (mode == FAKE_BAD_REQID)
		r.reqid += 1000;
	if (mode == FAKE_BAD_TYPE)
		r.type = NET_DEL_OK;
	if (mode == FAKE_BAD_MAC) {
		put_be32(c, 40);
		put_be32(c + 4, 0);
		randombytes_buf(c + 8, 40);
		if (write(fd, c, 48) != 48)
			_exit(1);
	} else if (send_record(fd, &hs, &r) < 0) {
		_exit(1);
	}
	read(fd, c, 1);		/* until the client hangs up */
	_exit(0);
}

static int
fake_body(struct test_swarm *sw)
{
	static const char *const why[] = { "unknown request id",
	    "unexpected response type", "bad record MAC" };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;
	struct net_conf nc = { TEST_NET_PACE };
	struct net_peer_info info[10];
	struct store_block b;
	char addr[3][64];

	if (swarm_start(sw, 6, 5000))
		return 1;
	for (int mode = 0; mode < 3; mode++) {
		int lfd = socket(AF_INET, SOCK_STREAM, 0);
		inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
		sa.sin_port = 0;
		CHECK(lfd >= 0);
		CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0);
		CHECK(listen(lfd, 4) == 0);
		CHECK(getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0);
		snprintf(addr[mode], sizeof addr[mode], "127.0.0.1:%d",
		    ntohs(sa.sin_port));
		fflush(NULL);
		if ((sw->pid[6 + mode] = fork()) == 0)
			fake_supplier(lfd, mode);
		close(lfd);
		if (mode == 0) {
			/* Not pinned in the swarm's store: a second client
			 * that does not reconnect soon, so its state stays. */
			net_free(sw->net);
			nc.id = sw->me;
			nc.ec = sw->ec;
			nc.timeout_ms = 5000;
			nc.reconnect_ms = 60000;
			CHECK_EQ(net_new(&sw->net, &nc), 0);
			for (int i = 0; i < 6; i++)
				CHECK_EQ(net_add_peer(sw->net, sw->addr[i]), 0);
		}
		CHECK_EQ(net_add_peer(sw->net, addr[mode]), 0);
		usleep(500000);
	}
	CHECK_EQ(net_wait_online(sw->net, 6, 5000), 6);
	CHECK_EQ(net_peers(sw->net, info, 10, 0), 9);
	for (int mode = 0; mode < 3; mode++) {
		CHECK_EQ(info[6 + mode].state, NET_PEER_OFFLINE);
		CHECK(strcmp(info[6 + mode].addr, addr[mode]) == 0);
		if (!strstr(info[6 + mode].last_error, why[mode])) {
			fprintf(stderr, "last_error '%s', expected '%s'\n",
			    info[6 + mode].last_error, why[mode]);
			return 1;
		}
	}
	/* The good ones still serve. */
	if (roundtrip(sw, 70000, &b))
		return 1;
	return 0;
}

static int
test_bad_supplier(void)
{
	return test_swarm_run(fake_body);
}

/* ---- several caller threads at once ------------------------------------ */

struct worker {
	struct test_swarm *sw;
	int fails;
	pthread_t t;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	size_t len = 200000;
	unsigned char *p = malloc(len), *q = malloc(len);
	struct store_block b;

	for (int r = 0; r < 8; r++) {
		randombytes_buf(p, len);
		if (net_block_store(w->sw->net, p, len, w->sw->datakey, &b) != 0 ||
		    net_block_fetch(w->sw->net, &b, q) != 0 ||
		    memcmp(p, q, len) != 0)
			w->fails++;
	}
	free(p);
	free(q);
	return NULL;
}

static int
threads_body(struct test_swarm *sw)
{
	struct worker w[4];

	if (swarm_start(sw, 6, 10000))
		return 1;
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .sw = sw };
		CHECK_EQ(pthread_create(&w[i].t, NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(w[i].t, NULL);
		CHECK_EQ(w[i].fails, 0);
	}
	return 0;
}

static int
test_threads(void)
{
	return test_swarm_run(threads_body);
}

static int
ipv6_body(struct test_swarm *sw)
{
	struct store_block b;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
	    .sin6_addr = IN6ADDR_LOOPBACK_INIT };

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (fd >= 0)
			close(fd);
		return TEST_SKIP;	/* no IPv6 loopback here */
	}
	close(fd);
	if (swarm_start_on(sw, "[::1]", 6, 5000) || roundtrip(sw, 5000, &b))
		return 1;
	return 0;
}

static int
test_ipv6(void)
{
	return test_swarm_run(ipv6_body);
}

/* ---- keeping data alive: monitor, repair, audits, liars --------------- */

/* Info of supplier i (by address); 0 or -1. */
static int
sup_info(struct test_swarm *sw, int i, struct net_peer_info *out)
{
	struct net_peer_info info[TEST_MAXSUP + 4];
	int n = net_peers(sw->net, info, TEST_MAXSUP + 4, 0);

	for (int j = 0; j < n && j < TEST_MAXSUP + 4; j++)
		if (strcmp(info[j].addr, sw->addr[i]) == 0) {
			*out = info[j];
			return 0;
		}
	return -1;
}

/* Index of the supplier with key pk, -1 if none. */
static int
sup_of(struct test_swarm *sw, const unsigned char *pk)
{
	struct net_peer_info pi;

	for (int i = 0; i < TEST_MAXSUP; i++)
		if (sw->addr[i][0] && sup_info(sw, i, &pi) == 0 &&
		    memcmp(pi.pk, pk, CR_PK_BYTES) == 0)
			return i;
	return -1;
}

/* Waits until supplier i is in state st; the wait in ms, or -1. */
static int
wait_state(struct test_swarm *sw, int i, int st, int timeout_ms)
{
	struct net_peer_info pi;
	double t0 = now_s();

	while ((now_s() - t0) * 1000 < timeout_ms) {
		if (sup_info(sw, i, &pi) == 0 && (int)pi.state == st)
			return (int)((now_s() - t0) * 1000);
		usleep(20000);
	}
	return -1;
}

static int
monitor_body(struct test_swarm *sw)
{
	const struct mon_opts mo = { .ping = 300, .suspect = 1200,
	    .dead = 2500 };
	struct net_peer_info pi, p0;
	struct store_block b;
	double t0, t_off = -1, t_sus = -1, t_dead = -1, t;
	int restarted = 0, back = 0, s1_dead = 0, s1_sus = 0, tried = 0;
	unsigned char pk0[CR_PK_BYTES], unknown[CR_PK_BYTES];
	struct net_peer_snap *before = NULL, *after = NULL;

	if (swarm_start_mon(sw, 7, 1000, &mo))
		return 1;
	CHECK_EQ(sup_info(sw, 0, &p0), 0);
	memcpy(pk0, p0.pk, CR_PK_BYTES);
	CHECK_EQ(net_peer_state(sw->net, pk0), NET_PEER_ONLINE);
	CHECK(p0.score > 0.5);
	/* A snapshot answers as net_peer_state did when it was taken. */
	memset(unknown, 0x55, sizeof unknown);
	CHECK_EQ(net_peer_snap_take(sw->net, &before), 0);
	CHECK_EQ(net_peer_snap_state(before, pk0), NET_PEER_ONLINE);
	CHECK_EQ(net_peer_snap_state(before, unknown), NET_PEER_DEAD);
	CHECK_EQ(net_peer_state(sw->net, unknown), NET_PEER_DEAD);
	/* Supplier 0 dies for good, supplier 1 reboots within the grace. */
	t0 = now_s();
	test_sup_kill(sw, 0, SIGKILL);
	test_sup_kill(sw, 1, SIGKILL);
	while ((t = (now_s() - t0) * 1000) < 4000) {
		CHECK_EQ(sup_info(sw, 0, &pi), 0);
		if (pi.state == NET_PEER_OFFLINE && t_off < 0)
			t_off = t;
		if (pi.state == NET_PEER_SUSPECT && t_sus < 0)
			t_sus = t;
		if (pi.state == NET_PEER_DEAD && t_dead < 0)
			t_dead = t;
		CHECK(t < 500 || pi.state != NET_PEER_ONLINE);
		CHECK_EQ(sup_info(sw, 1, &pi), 0);
		s1_dead |= pi.state == NET_PEER_DEAD;
		s1_sus |= pi.state == NET_PEER_SUSPECT;
		if (pi.state == NET_PEER_SUSPECT && !tried) {
			/* Five online (one suspect, one down): no placement. */
			tried = 1;
			CHECK_EQ(net_block_store(sw->net, "x", 1, sw->datakey,
			    &b), -EAGAIN);
		}
		if (t > 1700 && !restarted) {
			CHECK_EQ(test_sup_start(sw, 1, sw->port[1]), 0);
			restarted = 1;
		}
		if (restarted && pi.state == NET_PEER_ONLINE)
			back = 1;
		usleep(20000);
	}
	fprintf(stderr, "offline %.0f ms, suspect %.0f ms, dead %.0f ms\n",
	    t_off, t_sus, t_dead);
	CHECK(t_off >= 0 && t_off < 1000);
	CHECK(t_sus >= 1200 - 300 - 150 && t_sus <= 1200 + 500);
	CHECK(t_dead >= 2500 - 300 - 150 && t_dead <= 2500 + 500);
	CHECK(tried && s1_sus && back && !s1_dead);
	CHECK_EQ(net_peer_state(sw->net, pk0), NET_PEER_DEAD);
	CHECK_EQ(net_peer_snap_take(sw->net, &after), 0);
	CHECK_EQ(net_peer_snap_state(after, pk0), NET_PEER_DEAD);
	CHECK_EQ(net_peer_snap_state(before, pk0), NET_PEER_ONLINE);
	CHECK_EQ(sup_info(sw, 1, &pi), 0);
	CHECK_EQ(net_peer_snap_state(after, pi.pk), NET_PEER_ONLINE);
	net_peer_snap_free(before);
	net_peer_snap_free(after);
	CHECK_EQ(sup_info(sw, 0, &pi), 0);
	CHECK(pi.score == 0);
	CHECK_EQ(sup_info(sw, 1, &pi), 0);
	CHECK_EQ(pi.state, NET_PEER_ONLINE);
	/* Dead is sticky: back on the wire, still dead, no placements. */
	CHECK_EQ(test_sup_start(sw, 0, sw->port[0]), 0);
	CHECK_EQ(net_wait_online(sw->net, 7, 5000), 7);
	usleep(300000);
	CHECK_EQ(net_peer_state(sw->net, pk0), NET_PEER_DEAD);
	CHECK_EQ(net_block_store(sw->net, "x", 1, sw->datakey, &b), 0);
	for (int i = 0; i < 6; i++)
		CHECK(memcmp(b.peer[i], pk0, CR_PK_BYTES) != 0);
	return 0;
}

static int
test_monitor(void)
{
	return test_swarm_run(monitor_body);
}

static int
repair_body(struct test_swarm *sw)
{
	struct mon_opts mo = { .ping = 500, .suspect = 60000,
	    .dead = 120000 };
	size_t len = 256 << 10;
	unsigned char *p = malloc(len), *q = malloc(len);
	struct store_block b, old;
	int h[6], spare[2], ns = 0, rc;
	uint64_t moved = 0;

	mo.quota[8] = 1000;		/* a spare that refuses: quota full */
	if (swarm_start_mon(sw, 9, 5000, &mo))
		return 1;
	CHECK(p && q);
	randombytes_buf(p, len);
	CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, &b), 0);
	for (int f = 0; f < 6; f++) {
		h[f] = sup_of(sw, b.peer[f]);
		CHECK(h[f] >= 0 && h[f] != 8);
		CHECK_EQ(b.lost[f], 0);
		CHECK_EQ(b.audit_next[f], 0);
		CHECK_EQ(b.audit_end[f], STORE_AUDITS);
	}
	for (int i = 0; i < 8; i++) {
		int held = 0;
		for (int f = 0; f < 6; f++)
			held |= h[f] == i;
		if (!held)
			spare[ns++] = i;
	}
	CHECK_EQ(ns, 2);
	/* Two holders die. */
	test_sup_kill(sw, h[0], SIGKILL);
	test_sup_kill(sw, h[1], SIGKILL);
	CHECK(wait_state(sw, h[0], NET_PEER_OFFLINE, 3000) >= 0);
	CHECK(wait_state(sw, h[1], NET_PEER_OFFLINE, 3000) >= 0);
	b.lost[0] = b.lost[1] = 1;
	old = b;
	rc = net_block_repair(sw->net, &b, 0x3, &moved);
	/* Onto the two spares with room (not the full one). */
	CHECK_EQ(rc, 2);
	CHECK_EQ(moved, 6ull * b.frag_len);
	for (int f = 0; f < 2; f++) {
		int s = sup_of(sw, b.peer[f]);
		CHECK(s == spare[0] || s == spare[1]);
		CHECK_EQ(b.lost[f], 0);
		CHECK_EQ(b.audit_next[f], STORE_AUDITS);
		CHECK_EQ(b.audit_end[f], 2 * STORE_AUDITS);
		CHECK(memcmp(b.frag_hash[f], old.frag_hash[f],
		    CR_HASH_BYTES) == 0);
	}
	CHECK(memcmp(b.peer[0], b.peer[1], CR_PK_BYTES) != 0);
	for (int f = 2; f < 6; f++)
		CHECK(memcmp(b.peer[f], old.peer[f], CR_PK_BYTES) == 0);
	/* The rebuilt fragments answer their fresh challenges. */
	CHECK_EQ(net_frag_audit(sw->net, &b, 0), 0);
	CHECK_EQ(net_frag_audit(sw->net, &b, 1), 0);
	/* Fragment 2 said lost: only the full spare is free to take it. */
	b.lost[2] = 1;
	old = b;
	CHECK_EQ(net_block_repair(sw->net, &b, 1u << 2, &moved), -EAGAIN);
	CHECK(memcmp(&old, &b, sizeof b) == 0);
	/* Two more original holders go: 0, 1 (rebuilt), 2 (marked lost,
	 * asked last) and 5 remain. */
	test_sup_kill(sw, h[3], SIGKILL);
	test_sup_kill(sw, h[4], SIGKILL);
	CHECK(wait_state(sw, h[3], NET_PEER_OFFLINE, 3000) >= 0);
	CHECK(wait_state(sw, h[4], NET_PEER_OFFLINE, 3000) >= 0);
	memset(q, 0, len);
	CHECK_EQ(net_block_fetch(sw->net, &b, q), 0);
	CHECK_MEM(p, q, len);
	/* With fewer than k sources: -EIO, nothing changed. */
	old = b;
	CHECK_EQ(net_block_repair(sw->net, &b, 0x3c, &moved), -EIO);
	CHECK(memcmp(&old, &b, sizeof b) == 0);
	free(p);
	free(q);
	return 0;
}

static int
test_repair(void)
{
	return test_swarm_run(repair_body);
}

/* Flips a byte in the middle of fragment f of b on supplier i's disk. */
static int
corrupt_frag(struct test_swarm *sw, int i, const struct store_block *b, int f)
{
	unsigned char fid[STORE_FRAGID_BYTES];
	char oh[2 * CR_PK_BYTES + 1], fh[2 * STORE_FRAGID_BYTES + 1];
	char path[512];
	unsigned char c;
	FILE *fp;

	memcpy(fid, b->id, CR_ID_BYTES);
	fid[CR_ID_BYTES] = (unsigned char)f;
	hex_encode(oh, sw->me->pk, CR_PK_BYTES);
	hex_encode(fh, fid, STORE_FRAGID_BYTES);
	snprintf(path, sizeof path, "sup%d/%s/%.2s/%s", i, oh, fh, fh);
	if (!(fp = fopen(path, "r+b")))
		return -1;
	fseek(fp, b->frag_len / 2, SEEK_SET);
	if (fread(&c, 1, 1, fp) != 1)
		return -1;
	c ^= 0x20;
	fseek(fp, b->frag_len / 2, SEEK_SET);
	fwrite(&c, 1, 1, fp);
	return fclose(fp);
}

static int
audit_body(struct test_swarm *sw)
{
	const struct mon_opts mo = { .ping = 500 };
	size_t len = 100000;
	unsigned char *p = malloc(len), *q = malloc(len);
	struct net_peer_info pi;
	struct store_block b, bb;
	uint32_t bad = 0;
	int s0, s3;

	if (swarm_start_mon(sw, 6, 5000, &mo))
		return 1;
	randombytes_buf(p, len);
	CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, &b), 0);
	/* More rounds than precomputed answers: refills from full proofs. */
	for (int round = 0; round < 10; round++)
		for (int f = 0; f < 6; f++)
			CHECK_EQ(net_frag_audit(sw->net, &b, f), 0);
	for (int f = 0; f < 6; f++) {
		CHECK_EQ(b.audit_next[f], 2 * STORE_AUDITS);
		CHECK_EQ(b.audit_end[f], 3 * STORE_AUDITS);
		CHECK_EQ(sup_info(sw, sup_of(sw, b.peer[f]), &pi), 0);
		CHECK_EQ(pi.audits_ok, 10);
		CHECK_EQ(pi.audits_failed, 0);
	}
	/* An answer that does not match what we kept. */
	s0 = sup_of(sw, b.peer[0]);
	b.audit[0][b.audit_next[0] % STORE_AUDITS][3] ^= 1;
	CHECK_EQ(net_frag_audit(sw->net, &b, 0), -EBADMSG);
	CHECK_EQ(sup_info(sw, s0, &pi), 0);
	CHECK_EQ(pi.audits_failed, 1);
	CHECK(pi.state == NET_PEER_ONLINE && pi.score < 0.5);
	/* Bytes flipped on a supplier's disk: the audit sees it ... */
	s3 = sup_of(sw, b.peer[3]);
	CHECK_EQ(corrupt_frag(sw, s3, &b, 3), 0);
	CHECK_EQ(net_frag_audit(sw->net, &b, 3), -EBADMSG);
	/* ... and a read that meets it still succeeds, reporting it (4 and
	 * 5 marked lost: asked last, so fragment 3 is asked). */
	bb = b;
	bb.lost[4] = bb.lost[5] = 1;
	memset(q, 0, len);
	CHECK_EQ(net_block_fetch_report(sw->net, &bb, q, &bad), 0);
	CHECK_MEM(p, q, len);
	CHECK_EQ(bad, 1u << 3);
	CHECK_EQ(sup_info(sw, s3, &pi), 0);
	CHECK_EQ(pi.bad_fragments, 1);
	CHECK_EQ(pi.audits_failed, 1);
	/* The full proof (no answer left) sees it too; the third failed
	 * audit fires the supplier. */
	bb = b;
	bb.audit_next[3] = bb.audit_end[3];
	CHECK_EQ(net_frag_audit(sw->net, &bb, 3), -EBADMSG);
	CHECK_EQ(bb.audit_end[3], b.audit_end[3]);
	CHECK_EQ(net_frag_audit(sw->net, &bb, 3), -EBADMSG);
	CHECK_EQ(sup_info(sw, s3, &pi), 0);
	CHECK_EQ(pi.audits_failed, 3);
	CHECK_EQ(pi.state, NET_PEER_DEAD);
	CHECK(pi.score == 0);
	CHECK_EQ(net_peer_state(sw->net, b.peer[3]), NET_PEER_DEAD);
	/* Fired, not blind: the others still pass. */
	CHECK_EQ(net_frag_audit(sw->net, &b, 1), 0);
	free(p);
	free(q);
	return 0;
}

static int
test_audit(void)
{
	return test_swarm_run(audit_body);
}

/* A block sealed in chunks is read from its data fragments unchecked
 * (net/block.c, frag_acceptable): a corrupted one must still be found,
 * reported for rebuild and read around, whether the k fragments were
 * all data (the chunk's tag fails) or included parity (the unchecked
 * ones are checked before decoding). */
static int
unchecked_body(struct test_swarm *sw)
{
	size_t len = 300000;
	unsigned char *p = malloc(len), *q = malloc(len);
	struct store_block b, bb;
	struct net_peer_info pi;
	uint64_t checks;
	uint32_t bad;
	int tries;

	CHECK(p && q);
	if (swarm_start(sw, 6, 5000))
		return 1;
	randombytes_buf(p, len);
	CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, &b), 0);
	CHECK_EQ(b.seal, CR_SEAL_CHUNKED);
	CHECK_EQ(net_block_fetch_report(sw->net, &b, q, &bad), 0);
	CHECK_MEM(p, q, len);
	CHECK_EQ(bad, 0);
	/* Healthy, from the four data fragments (parity marked lost: asked
	 * last): not one fragment tag checked. A hedge on a busy machine
	 * may still bring parity in (then the data ones are checked), so
	 * one read of a few must do without. */
	bb = b;
	bb.lost[4] = bb.lost[5] = 1;
	for (tries = 0; tries < 5; tries++) {
		checks = net_tag_checks(sw->net);
		memset(q, 0, len);
		CHECK_EQ(net_block_fetch_report(sw->net, &bb, q, &bad), 0);
		CHECK_MEM(p, q, len);
		CHECK_EQ(bad, 0);
		if (net_tag_checks(sw->net) == checks)
			break;
	}
	CHECK(tries < 5);
	checks = net_tag_checks(sw->net);
	/* All four data fragments, the third corrupted (the parity ones
	 * marked lost: asked last, so the data ones are asked first). */
	CHECK_EQ(corrupt_frag(sw, sup_of(sw, b.peer[2]), &b, 2), 0);
	memset(q, 0, len);
	CHECK_EQ(net_block_fetch_report(sw->net, &bb, q, &bad), 0);
	CHECK_MEM(p, q, len);
	CHECK_EQ(bad, 1u << 2);
	/* The chunk failed: the four checked, and the copy fetched again. */
	CHECK(net_tag_checks(sw->net) >= checks + 5);
	CHECK_EQ(sup_info(sw, sup_of(sw, b.peer[2]), &pi), 0);
	CHECK_EQ(pi.bad_fragments, 1);
	/* Another block, fragments 1 and 5 marked lost (asked last): 0, 2,
	 * 3 and parity 4 come, so it must decode; 3, corrupted, is caught
	 * before that (decoded, it would spoil the block and leave the bad
	 * fragment unreported while other sets are tried). */
	randombytes_buf(p, len);
	CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, &b), 0);
	CHECK_EQ(corrupt_frag(sw, sup_of(sw, b.peer[3]), &b, 3), 0);
	bb = b;
	bb.lost[1] = bb.lost[5] = 1;
	memset(q, 0, len);
	CHECK_EQ(net_block_fetch_report(sw->net, &bb, q, &bad), 0);
	CHECK_MEM(p, q, len);
	CHECK_EQ(bad, 1u << 3);
	/* The same with parity 4 corrupted too: found as it comes, in the
	 * first round; both stay reported after the second. */
	CHECK_EQ(corrupt_frag(sw, sup_of(sw, b.peer[4]), &b, 4), 0);
	memset(q, 0, len);
	CHECK_EQ(net_block_fetch_report(sw->net, &bb, q, &bad), 0);
	CHECK_MEM(p, q, len);
	CHECK_EQ(bad, 1u << 3 | 1u << 4);
	free(p);
	free(q);
	return 0;
}

static int
test_unchecked_fetch(void)
{
	return test_swarm_run(unchecked_body);
}

static int
liar_body(struct test_swarm *sw)
{
	const struct mon_opts mo = { .ping = 500, .lie = 1u << 6 };
	size_t len = 50000;
	unsigned char *p = malloc(len), *q = malloc(len);
	unsigned char liar_pk[CR_PK_BYTES];
	struct net_peer_info pi;
	struct store_block b, bb;
	int fetches = 0, f;
	uint32_t bad;

	if (swarm_start_mon(sw, 7, 5000, &mo))
		return 1;
	CHECK_EQ(sup_info(sw, 6, &pi), 0);
	memcpy(liar_pk, pi.pk, CR_PK_BYTES);
	for (int tries = 0; tries < 30 && fetches < 3; tries++) {
		randombytes_buf(p, len);
		CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, &b), 0);
		for (f = 0; f < 6; f++)
			if (!memcmp(b.peer[f], liar_pk, CR_PK_BYTES))
				break;
		if (f == 6)
			continue;
		if (fetches == 0)	/* its audit answers are noise */
			CHECK_EQ(net_frag_audit(sw->net, &b, f), -EBADMSG);
		/* Two others marked lost: the liar is among the first k. */
		bb = b;
		for (int g = 0, marked = 0; g < 6 && marked < 2; g++)
			if (g != f) {
				bb.lost[g] = 1;
				marked++;
			}
		memset(q, 0, len);
		CHECK_EQ(net_block_fetch_report(sw->net, &bb, q, &bad), 0);
		CHECK_MEM(p, q, len);
		CHECK_EQ(bad, 1u << f);
		fetches++;
	}
	CHECK_EQ(fetches, 3);
	CHECK_EQ(sup_info(sw, 6, &pi), 0);
	CHECK(pi.bad_fragments >= 3);
	CHECK_EQ(pi.audits_failed, 1);
	CHECK_EQ(pi.state, NET_PEER_DEAD);
	CHECK(pi.score == 0);
	/* Fired: no more placements, and not asked while others serve. */
	for (int i = 0; i < 3; i++) {
		randombytes_buf(p, len);
		CHECK_EQ(net_block_store(sw->net, p, len, sw->datakey, &b), 0);
		for (f = 0; f < 6; f++)
			CHECK(memcmp(b.peer[f], liar_pk, CR_PK_BYTES) != 0);
		CHECK_EQ(net_block_fetch_report(sw->net, &b, q, &bad), 0);
		CHECK_EQ(bad, 0);
		CHECK_MEM(p, q, len);
	}
	free(p);
	free(q);
	return 0;
}

static int
test_liar(void)
{
	return test_swarm_run(liar_body);
}

static int
frag_delete_body(struct test_swarm *sw)
{
	const struct mon_opts mo = { .ping = 500 };
	unsigned char fid[STORE_FRAGID_BYTES], *q = malloc(70000);
	char oh[2 * CR_PK_BYTES + 1], fh[2 * STORE_FRAGID_BYTES + 1];
	char path[512];
	struct store_block b;
	struct stat st;
	uint32_t bad;
	int s1, s2;

	if (swarm_start_mon(sw, 6, 5000, &mo) || roundtrip(sw, 70000, &b))
		return 1;
	memcpy(fid, b.id, CR_ID_BYTES);
	fid[CR_ID_BYTES] = 2;
	s2 = sup_of(sw, b.peer[2]);
	hex_encode(oh, sw->me->pk, CR_PK_BYTES);
	hex_encode(fh, fid, STORE_FRAGID_BYTES);
	snprintf(path, sizeof path, "sup%d/%s/%.2s/%s", s2, oh, fh, fh);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(net_frag_delete(sw->net, b.peer[2], fid), 0);
	CHECK(stat(path, &st) != 0 && errno == ENOENT);
	CHECK_EQ(net_frag_delete(sw->net, b.peer[2], fid), 0);	/* absent */
	CHECK_EQ(net_frag_audit(sw->net, &b, 2), -ENOENT);
	/* A read asking for it reports it (to be rebuilt) and succeeds. */
	b.lost[4] = b.lost[5] = 1;
	CHECK_EQ(net_block_fetch_report(sw->net, &b, q, &bad), 0);
	CHECK_EQ(bad, 1u << 2);
	/* Offline supplier: retry later. */
	fid[CR_ID_BYTES] = 1;
	s1 = sup_of(sw, b.peer[1]);
	test_sup_kill(sw, s1, SIGKILL);
	CHECK(wait_state(sw, s1, NET_PEER_OFFLINE, 3000) >= 0);
	CHECK_EQ(net_frag_delete(sw->net, b.peer[1], fid), -EAGAIN);
	CHECK_EQ(net_frag_audit(sw->net, &b, 1), -EAGAIN);
	CHECK_EQ(b.audit_next[1], 0);
	free(q);
	return 0;
}

static int
test_frag_delete(void)
{
	return test_swarm_run(frag_delete_body);
}

/* The client's loop runs on the thread net.h lists, serves calls from
 * other threads, and net_free() stops it although timers keep the loop
 * busy (the worker's wake hook). */
/* A port nothing listens on (bound, then closed). */
static int
closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* DIALBACK against real suppliers: supplier 0 dials the asker's own
 * address back and says whether the asker's key answered there (supplier
 * 1's key at its port: yes; another key asking for that port: another
 * key answered; a closed port: refused); a second request within a
 * second is refused as busy; a supplier from before DIALBACK closes the
 * session, which the asker reports as not asked. */
static int
dialback_body(struct test_swarm *sw)
{
	struct cr_identity *other = test_identity();
	int port, rc;

	log_init("test", LOG_WARN, NULL);
	sw->old[2] = 1;
	CHECK_EQ(test_sup_start(sw, 0, 0), 0);
	CHECK_EQ(test_sup_start(sw, 1, 0), 0);
	CHECK_EQ(test_sup_start(sw, 2, 0), 0);
	CHECK_EQ(net_reach_dialback(sw->sid[1], sw->addr[0], sw->sid[0]->pk,
	    (uint16_t)sw->port[1]), 0);
	CHECK_EQ(net_reach_dialback(sw->sid[1], sw->addr[0], sw->sid[0]->pk,
	    (uint16_t)sw->port[1]), -EAGAIN);
	/* The helper's key must be the one its record names. */
	rc = net_reach_dialback(sw->sid[1], sw->addr[0], other->pk,
	    (uint16_t)sw->port[1]);
	CHECK(rc < 0);
	usleep(1100 * 1000);		/* past the helper's once a second */
	rc = net_reach_dialback(other, sw->addr[0], sw->sid[0]->pk,
	    (uint16_t)sw->port[1]);
	sodium_free(other);
	CHECK_EQ(rc, EKEYREJECTED);
	usleep(1100 * 1000);
	CHECK((port = closed_port()) > 0);
	CHECK_EQ(net_reach_dialback(sw->sid[1], sw->addr[0], sw->sid[0]->pk,
	    (uint16_t)port), ECONNREFUSED);
	CHECK(net_reach_dialback(sw->sid[1], sw->addr[2], sw->sid[2]->pk,
	    (uint16_t)sw->port[1]) < 0);
	return 0;
}

static int
test_dialback(void)
{
	return test_swarm_run(dialback_body);
}

/* The ranges behind which nobody outside reaches a host: a NAT-PMP
 * outside address in one of them means a router behind another router. */
static int
test_addr_private(void)
{
	CHECK(net_addr_private("10.1.2.3"));
	CHECK(net_addr_private("172.16.0.1"));
	CHECK(net_addr_private("172.31.255.254"));
	CHECK(!net_addr_private("172.32.0.1"));
	CHECK(!net_addr_private("172.15.255.255"));
	CHECK(net_addr_private("192.168.1.2"));
	CHECK(!net_addr_private("192.169.1.2"));
	CHECK(net_addr_private("100.64.0.1"));
	CHECK(net_addr_private("100.127.255.255"));
	CHECK(!net_addr_private("100.128.0.1"));
	CHECK(net_addr_private("169.254.1.1"));
	CHECK(!net_addr_private("198.18.0.10"));
	CHECK(!net_addr_private("11.0.0.2"));
	CHECK(!net_addr_private("8.8.8.8"));
	CHECK(!net_addr_private("example.org"));
	CHECK(!net_addr_private("::1"));
	return 0;
}

static int
test_loop_thread(void)
{
	struct net_conf nc = { TEST_NET_PACE, .timeout_ms = 5000,
	    .reconnect_ms = 1000 };
	struct net *n;

	if (test_threads_named("net-loop") < 0)
		return TEST_SKIP;	/* no /proc */
	nc.id = test_identity();
	CHECK_EQ(cr_ec_new(&nc.ec, 4, 2), 0);
	CHECK_EQ(net_new(&n, &nc), 0);
	CHECK_EQ(test_threads_become("net-loop", 1), 1);
	/* An op the loop runs: nobody listens there, it keeps retrying. */
	CHECK_EQ(net_add_peer(n, "127.0.0.1:1"), 0);
	CHECK_EQ(net_wait_online(n, 1, 100), 0);
	net_free(n);
	CHECK_EQ(test_threads_become("net-loop", 0), 0);
	cr_ec_free(nc.ec);
	cr_identity_free((struct cr_identity *)nc.id);
	return 0;
}

/* ---- on_lost: a session that was up goes silent ------------------------ */
static void
lost_on_ready(void *arg, const char *bound)
{
	test_sup_ready(((int *)arg)[0], bound);
}

static void
lost_on_lost(void *arg)
{
	if (write(((int *)arg)[1], "L", 1) != 1)
		_exit(3);
}

/* A supplier with short deadlines that writes "L" to the pipe fd in
 * *arg each time on_lost is called. */
static void
lost_child(int fd, const char *host, int port, const struct cr_identity *id,
    void *arg)
{
	struct net_supplier_conf c = { .max_sessions = 64, .max_per_addr = 32,
	    .max_per_key = 8, .inflight_max = 64 << 20, .hs_timeout_ms = 300,
	    .frame_timeout_ms = 300, .idle_timeout_ms = 300 };
	struct store_frag *sf;
	char listen[64];
	int fds[2] = { fd, *(int *)arg };

	log_init("supplier", LOG_ERROR, NULL);
	if (cr_init() < 0 || store_frag_open(&sf, "sup0", 0) < 0)
		_exit(4);
	snprintf(listen, sizeof listen, "%s:%d", host, port);
	c.id = id;
	c.listen = listen;
	c.frags = sf;
	c.on_ready = lost_on_ready;
	c.on_lost = lost_on_lost;
	c.arg = fds;
	_exit(net_supplier_run(&c) == 0 ? 0 : 5);
}

/* How many on_lost calls the pipe holds now. */
static int
lost_calls(int rd)
{
	char buf[16];
	ssize_t n = read(rd, buf, sizeof buf);

	return n > 0 ? (int)n : 0;
}

/* on_lost (a supplier re-checks its reachability on it) comes for a
 * session that was up and went silent, not for a stranger's stalled
 * handshake, nor for an owner that closed its session. */
static int
test_lost_session(void)
{
	struct test_swarm sw;
	struct cr_hs hs;
	int rc = 1, fd = -1, p[2] = { -1, -1 };

	memset(&sw, 0, sizeof sw);
	log_init("test", LOG_WARN, NULL);
	if (cr_init() < 0 || pipe2(p, O_NONBLOCK) < 0)
		goto out;
	sw.me = test_identity();
	if (test_sup_start_child(&sw, 0, 0, lost_child, &p[1]) < 0)
		goto out;
	/* A stranger that never finishes its handshake. */
	if ((fd = raw_connect(sw.port[0])) < 0 || !closed_by_peer(fd))
		goto fail;
	close(fd);
	/* An owner that closes. */
	if ((fd = raw_handshake(sw.port[0], sw.me, &hs)) < 0)
		goto fail;
	close(fd);
	/* An owner that goes silent: closed at the idle deadline. */
	if ((fd = raw_handshake(sw.port[0], sw.me, &hs)) < 0 ||
	    !closed_by_peer(fd))
		goto fail;
	/* on_lost runs once the handle is closed, after the FIN; the
	 * earlier sessions' ends came before this one's. */
	struct pollfd pf = { .fd = p[0], .events = POLLIN };
	if (poll(&pf, 1, 5000) != 1 || lost_calls(p[0]) != 1) {
		fprintf(stderr, "on_lost: not exactly once\n");
		goto out;
	}
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "lost_session: a connection failed\n");
out:
	if (fd >= 0)
		close(fd);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	test_swarm_stop(&sw);
	return rc;
}

/* ---- withdrawn requests and latencies (hedged fetches) ---------------- */

struct cancel_op {
	struct net_op op;
	const struct store_block *b;
	struct net_req req;
	int called;			/* req's cb ran: must not */
	int what;			/* 0 send+cancel, 1 poll, 2 latencies */
	int answered;			/* poll: the stub noted a GET */
	double e[4];			/* latencies: expect/p95 figures */
};

static void
cancel_cb(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf)
{
	((struct cancel_op *)r->arg)->called = 1;
}

static void
cancel_start(struct net *n, struct net_op *op)
{
	struct cancel_op *c = (struct cancel_op *)op;
	struct net_peer *p = net__peer_by_pk(n, c->b->peer[0]);
	int rc = 0;

	if (!p)
		return net__op_done(n, op, -ENOENT);
	if (c->what == 0) {
		p->get_n = p->get_at = 0;
		memset(&c->req, 0, sizeof c->req);
		c->req.msg.type = NET_GET;
		memcpy(c->req.fragid, c->b->id, CR_ID_BYTES);
		c->req.fragid[CR_ID_BYTES] = 0;
		c->req.msg.fragid = c->req.fragid;
		c->req.cb = cancel_cb;
		c->req.arg = c;
		if ((rc = net__req_send(p, &c->req)) == 0)
			net__req_cancel(&c->req);
	} else if (c->what == 1) {
		c->answered = p->get_n > 0;
	} else {
		p->get_n = p->get_at = 0;
		c->e[0] = net__lat_expect(p);		/* nothing known */
		for (int i = 0; i < 10; i++)
			net__lat_note(p, 5);
		net__lat_note(p, 500);
		c->e[1] = net__lat_expect(p);		/* the latest, slower */
		c->e[2] = net__lat_p95(p);
		net__lat_note(p, 4);
		c->e[3] = net__lat_expect(p);		/* the median again */
	}
	net__op_done(n, op, rc);
}

/* A GET withdrawn after it was sent: its callback never runs, the
 * supplier's answer is swallowed (and its latency noted) without the
 * session taking it for a protocol error, and the next fetch works.
 * The latency figures follow the latest answer when it is slower. */
static int
cancel_body(struct test_swarm *sw)
{
	struct cancel_op c = { .op.start = cancel_start };
	struct net_peer_info info[8];
	struct store_block b;
	unsigned char *q;
	double t0;

	if (swarm_start(sw, 6, 10000))
		return 1;
	if (roundtrip(sw, 4u << 20, &b))
		return 1;
	c.b = &b;
	CHECK_EQ(net__op_run(sw->net, &c.op), 0);
	c.what = 1;
	for (t0 = now_s(); !c.answered && now_s() - t0 < 10;) {
		usleep(10000);
		CHECK_EQ(net__op_run(sw->net, &c.op), 0);
	}
	CHECK(c.answered);
	CHECK_EQ(c.called, 0);
	CHECK_EQ(net_peers(sw->net, info, 8, 1), 6);
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(info[i].state, NET_PEER_ONLINE);
		CHECK_EQ(info[i].last_error[0], '\0');
	}
	CHECK((q = malloc(b.plain_len)) != NULL);
	CHECK_EQ(net_block_fetch(sw->net, &b, q), 0);
	free(q);
	c.what = 2;
	CHECK_EQ(net__op_run(sw->net, &c.op), 0);
	CHECK(c.e[0] < 0);
	CHECK(c.e[1] == 500);
	CHECK(c.e[2] == 500);
	CHECK(c.e[3] == 5);
	CHECK_EQ(c.called, 0);
	return 0;
}

static int
test_cancel(void)
{
	return test_swarm_run(cancel_body);
}

const struct test tests_net[] = {
	{ "loop_thread", test_loop_thread },
	{ "store_fetch", test_store_fetch },
	{ "lost_suppliers", test_lost_suppliers },
	{ "lent_put", test_lent_put },
	{ "garbage", test_garbage },
	{ "other_sets", test_other_sets },
	{ "range", test_range },
	{ "key_pinning", test_key_pinning },
	{ "quota", test_quota },
	{ "old_suppliers", test_old_suppliers },
	{ "block_delete", test_block_delete },
	{ "list_get_raw", test_list_get_raw },
	{ "bulk_raw", test_bulk_raw },
	{ "threads", test_threads },
	{ "bad_supplier", test_bad_supplier },
	{ "ipv6", test_ipv6 },
	{ "handshake_timeout", test_handshake_timeout },
	{ "monitor", test_monitor },
	{ "repair", test_repair },
	{ "addr_private", test_addr_private },
	{ "dialback", test_dialback },
	{ "lost_session", test_lost_session },
	{ "audit", test_audit },
	{ "unchecked_fetch", test_unchecked_fetch },
	{ "liar", test_liar },
	{ "frag_delete", test_frag_delete },
	{ "cancel", test_cancel },
	{ NULL, NULL },
};
