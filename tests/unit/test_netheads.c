/* tests/unit/test_netheads.c - net/heads.c against real supplier
 * processes on 127.0.0.1: signed heads published and fetched (rollback,
 * forgeries, damaged disks, a supplier left behind), paged fragment
 * listings, suppliers added with a known key. Every child is killed and
 * reaped by test_swarm_stop() (testutil.h), which each test calls
 * whatever its checks said. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "net/internal.h"
#include "net/net.h"
#include "test.h"
#include "testutil.h"
#include "util.h"

/* A supplier that speaks the protocol but serves the HEAD_LIST_OK
 * entries it is given, whatever they are (what a hostile one could). */
struct fake {
	const unsigned char *ent;
	size_t ent_len;
	uint32_t n;
};

static int
fake_up(struct net_sess *s)
{
	return 0;
}

static void
fake_msg(struct net_sess *s, const struct net_msg *m, unsigned char **buf)
{
	struct fake *f = s->data;
	struct net_msg r = { .reqid = m->reqid };

	if (m->type == NET_PING) {
		r.type = NET_PONG;
	} else if (m->type == NET_HEAD_LIST) {
		r.type = NET_HEAD_LIST_OK;
		r.n = f->n;
		r.data = f->ent;
		r.data_len = f->ent_len;
	} else {
		r.type = NET_ERR;
		r.err = ENOSYS;
	}
	if (net_sess_send(s, &r) < 0)
		_exit(6);
}

static void
fake_close(struct net_sess *s, int err)
{
}

static const struct net_sess_ops fake_ops = {
	.on_up = fake_up, .on_msg = fake_msg, .on_close = fake_close,
};

static const struct cr_identity *fake_id;

static void
fake_conn(uv_stream_t *server, int status)
{
	struct net_sess *s;

	if (status == 0)
		net_sess_accept(server, fake_id, &fake_ops, server->data, &s);
}

/* Child (test_sup_child_fn): serves the struct fake at arg. */
static void
fake_child(int fd, const char *host, int port, const struct cr_identity *id,
    void *arg)
{
	struct sockaddr_in sa;
	uv_loop_t loop;
	uv_tcp_t tcp;
	char name[64];

	log_init("fake", LOG_ERROR, NULL);
	fake_id = id;
	uv_loop_init(&loop);
	uv_tcp_init(&loop, &tcp);
	tcp.data = arg;
	uv_ip4_addr(host, port, &sa);
	if (uv_tcp_bind(&tcp, (struct sockaddr *)&sa, 0) < 0 ||
	    uv_listen((uv_stream_t *)&tcp, 16, fake_conn) < 0)
		_exit(2);
	snprintf(name, sizeof name, "%s:%d", host, port);
	test_sup_ready(fd, name);
	uv_run(&loop, UV_RUN_DEFAULT);
	_exit(0);
}

/* The client logs to "client.log" (sw->log), for logged(). */
static int
log_to_file(struct test_swarm *sw)
{
	CHECK((sw->log = fopen("client.log", "w+")) != NULL);
	log_init("test", LOG_WARN, sw->log);
	return 0;
}

/* nsup suppliers started; a client with the first nadd of them added
 * (and online). */
static int
swarm_start(struct test_swarm *sw, int nsup, int nadd)
{
	const struct net_conf nc = { .timeout_ms = 5000, .reconnect_ms = 100,
	    TEST_NET_PACE };

	memset(sw, 0, sizeof *sw);
	if (log_to_file(sw))
		return 1;
	return test_swarm_start(sw, nsup, nadd, &nc);
}

/* 1 when the client's log holds a line with every one of the words. */
static int
logged(struct test_swarm *sw, const char *w1, const char *w2)
{
	char line[1024];
	int found = 0;

	fflush(sw->log);
	rewind(sw->log);
	while (!found && fgets(line, sizeof line, sw->log))
		found = strstr(line, w1) && (!w2 || strstr(line, w2));
	fseek(sw->log, 0, SEEK_END);
	return found;
}

static unsigned char *
mk_head(const struct cr_identity *id, uint64_t seq, size_t *len)
{
	unsigned char *p = NULL;
	char blob[64];

	snprintf(blob, sizeof blob, "index v%llu", (unsigned long long)seq);
	if (cr_head_sign(id, seq, 1700000000 + seq, blob, strlen(blob), &p,
	    len) != 0)
		abort();
	return p;
}

struct got {
	int n;
	char addr[64][64];
	uint64_t seq[64];
	unsigned char *head[64];
	size_t len[64];
};

static int
got_cb(void *arg, const char *addr, uint64_t seq, const void *head,
    size_t len)
{
	struct got *g = arg;

	if (g->n >= 64)
		return -E2BIG;
	snprintf(g->addr[g->n], sizeof g->addr[g->n], "%s", addr);
	g->seq[g->n] = seq;
	g->len[g->n] = len;
	if (!(g->head[g->n] = malloc(len)))
		return -ENOMEM;
	memcpy(g->head[g->n], head, len);
	g->n++;
	return 0;
}

static void
got_free(struct got *g)
{
	for (int i = 0; i < g->n; i++)
		free(g->head[i]);
	memset(g, 0, sizeof *g);
}

static int
got_count(const struct got *g, uint64_t seq, const char *addr)
{
	int c = 0;

	for (int i = 0; i < g->n; i++)
		if (g->seq[i] == seq && (!addr || strcmp(g->addr[i], addr) == 0))
			c++;
	return c;
}

/* ---- tests --------------------------------------------------------------- */

static int
publish_fetch(struct test_swarm *sw)
{
	struct got g = { 0 };
	unsigned char *h5, *h6;
	size_t l5, l6;

	CHECK_EQ(swarm_start(sw, 6, 6), 0);
	h5 = mk_head(sw->me, 5, &l5);
	CHECK_EQ(net_head_publish(sw->net, h5, l5), 6);
	CHECK_EQ(net_heads_fetch(sw->net, 0, got_cb, &g), 6);
	CHECK_EQ(g.n, 6);
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(got_count(&g, 5, sw->addr[i]), 1);
		CHECK_EQ(g.len[i], l5);
		CHECK_MEM(g.head[i], h5, l5);
	}
	got_free(&g);
	/* a newer one: listed newest first, both kept; max 1 gives the newest */
	h6 = mk_head(sw->me, 6, &l6);
	CHECK_EQ(net_head_publish(sw->net, h6, l6), 6);
	CHECK_EQ(net_heads_fetch(sw->net, 0, got_cb, &g), 6);
	CHECK_EQ(g.n, 12);
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(got_count(&g, 6, sw->addr[i]), 1);
		CHECK_EQ(got_count(&g, 5, sw->addr[i]), 1);
	}
	for (int i = 0; i + 1 < g.n; i++)
		if (strcmp(g.addr[i], g.addr[i + 1]) == 0)
			CHECK(g.seq[i] > g.seq[i + 1]);
	got_free(&g);
	CHECK_EQ(net_heads_fetch(sw->net, 1, got_cb, &g), 6);
	CHECK_EQ(g.n, 6);
	CHECK_EQ(got_count(&g, 6, NULL), 6);
	for (int i = 0; i < 6; i++)
		CHECK_MEM(g.head[i], h6, l6);
	got_free(&g);
	free(h5);
	free(h6);
	CHECK(!logged(sw, "warn", NULL));
	return 0;
}

static int
test_publish_fetch(void)
{
	return test_swarm_run(publish_fetch);
}

/* Rollback protection lives on the suppliers: an older or equal seq is
 * refused everywhere, and said so in the log. */
static int
publish_stale(struct test_swarm *sw)
{
	struct got g = { 0 };
	unsigned char *h;
	size_t l;

	CHECK_EQ(swarm_start(sw, 3, 3), 0);
	h = mk_head(sw->me, 10, &l);
	CHECK_EQ(net_head_publish(sw->net, h, l), 3);
	free(h);
	CHECK(!logged(sw, "ESTALE", NULL));
	h = mk_head(sw->me, 9, &l);
	CHECK_EQ(net_head_publish(sw->net, h, l), 0);
	free(h);
	CHECK(logged(sw, "ESTALE", sw->addr[0]));
	CHECK(logged(sw, "ESTALE", sw->addr[2]));
	CHECK(logged(sw, "seq 9", "not newer than the newest head held"));
	h = mk_head(sw->me, 10, &l);	/* the same seq again */
	CHECK_EQ(net_head_publish(sw->net, h, l), 0);
	{
		/* The tally tells a refusal (a newer head exists: another
		 * node of the owner) from an unreachable supplier. */
		struct net_head_tally ta = { -1, -1, -1 };

		CHECK_EQ(net_head_publish_count(sw->net, h, l, &ta), 0);
		CHECK_EQ(ta.asked, 3);
		CHECK_EQ(ta.stored, 0);
		CHECK_EQ(ta.stale, 3);
	}
	free(h);
	CHECK(logged(sw, "ESTALE", "seq 10"));
	CHECK_EQ(net_heads_fetch(sw->net, 0, got_cb, &g), 3);
	CHECK_EQ(g.n, 3);
	CHECK_EQ(got_count(&g, 10, NULL), 3);
	got_free(&g);
	return 0;
}

static int
test_publish_stale(void)
{
	return test_swarm_run(publish_stale);
}

/* Heads not signed by us: refused by the suppliers, never served. */
static int
publish_forged(struct test_swarm *sw)
{
	struct cr_identity *other;
	struct got g = { 0 };
	unsigned char *h;
	size_t l;

	CHECK_EQ(swarm_start(sw, 3, 3), 0);
	other = test_identity();
	/* another identity's key in the owner field: not our head */
	h = mk_head(other, 50, &l);
	CHECK_EQ(net_head_publish(sw->net, h, l), 0);
	CHECK(logged(sw, sw->addr[1], "not your head"));
	/* claims to be ours (our key in it), signed by the other one */
	memcpy(h + 8, sw->me->pk, CR_PK_BYTES);
	CHECK_EQ(net_head_publish(sw->net, h, l), 0);
	CHECK(logged(sw, sw->addr[1], "bad signature"));
	/* ours, with a byte flipped after signing */
	free(h);
	h = mk_head(sw->me, 51, &l);
	h[l - 70] ^= 1;
	CHECK_EQ(net_head_publish(sw->net, h, l), 0);
	free(h);
	/* nothing of it is held: a genuine seq 1 still goes in */
	CHECK_EQ(net_heads_fetch(sw->net, 0, got_cb, &g), 3);
	CHECK_EQ(g.n, 0);
	h = mk_head(sw->me, 1, &l);
	CHECK_EQ(net_head_publish(sw->net, h, l), 3);
	free(h);
	CHECK_EQ(net_heads_fetch(sw->net, 0, got_cb, &g), 3);
	CHECK_EQ(g.n, 3);
	CHECK_EQ(got_count(&g, 1, NULL), 3);
	got_free(&g);
	/* too short or too long never leaves */
	CHECK_EQ(net_head_publish(sw->net, "x", 1), -EINVAL);
	sodium_free(other);
	return 0;
}

static int
test_publish_forged(void)
{
	return test_swarm_run(publish_forged);
}

/* A head file damaged on a supplier's disk is not served; the others
 * still are. */
static int
tampered_disk(struct test_swarm *sw)
{
	struct got g = { 0 };
	char path[256], hex[2 * CR_PK_BYTES + 1];
	unsigned char *h;
	size_t l;
	FILE *f;
	int c;

	CHECK_EQ(swarm_start(sw, 3, 3), 0);
	h = mk_head(sw->me, 7, &l);
	CHECK_EQ(net_head_publish(sw->net, h, l), 3);
	free(h);
	hex_encode(hex, sw->me->pk, CR_PK_BYTES);
	snprintf(path, sizeof path, "sup0/%s/heads/%020llu", hex, 7ULL);
	CHECK((f = fopen(path, "r+b")) != NULL);
	CHECK(fseek(f, (long)l - 80, SEEK_SET) == 0);
	c = fgetc(f);
	CHECK(c != EOF);
	CHECK(fseek(f, (long)l - 80, SEEK_SET) == 0);
	CHECK(fputc(c ^ 0x20, f) != EOF);
	CHECK(fclose(f) == 0);
	CHECK_EQ(net_heads_fetch(sw->net, 0, got_cb, &g), 3);
	CHECK_EQ(g.n, 2);
	CHECK_EQ(got_count(&g, 7, sw->addr[0]), 0);
	CHECK_EQ(got_count(&g, 7, sw->addr[1]), 1);
	CHECK_EQ(got_count(&g, 7, sw->addr[2]), 1);
	got_free(&g);
	return 0;
}

static int
test_tampered_disk(void)
{
	return test_swarm_run(tampered_disk);
}

/* A supplier offline during the newest publish offers only the older
 * head: every head reaches the callback, the caller sees both seqs. */
static int
left_behind(struct test_swarm *sw)
{
	struct got g = { 0 };
	unsigned char *h;
	size_t l;

	CHECK_EQ(swarm_start(sw, 3, 3), 0);
	h = mk_head(sw->me, 1, &l);
	CHECK_EQ(net_head_publish(sw->net, h, l), 3);
	free(h);
	test_sup_kill(sw, 2, SIGKILL);
	for (int i = 0; i < 50 && net_wait_online(sw->net, 3, 0) > 2; i++)
		usleep(20000);
	CHECK_EQ(net_wait_online(sw->net, 3, 0), 2);
	h = mk_head(sw->me, 2, &l);
	CHECK_EQ(net_head_publish(sw->net, h, l), 2);
	free(h);
	CHECK_EQ(test_sup_start(sw, 2, sw->port[2]), 0);
	CHECK_EQ(net_wait_online(sw->net, 3, 10000), 3);
	CHECK_EQ(net_heads_fetch(sw->net, 1, got_cb, &g), 3);
	CHECK_EQ(g.n, 3);
	CHECK_EQ(got_count(&g, 2, sw->addr[0]), 1);
	CHECK_EQ(got_count(&g, 2, sw->addr[1]), 1);
	CHECK_EQ(got_count(&g, 1, sw->addr[2]), 1);
	got_free(&g);
	return 0;
}

static int
test_left_behind(void)
{
	return test_swarm_run(left_behind);
}

/* The client checks every head itself: a supplier serving forged heads,
 * or another owner's, gets them ignored and named in the log. */
static int
hostile_supplier(struct test_swarm *sw)
{
	struct cr_identity *other;
	struct fake f = { 0 };
	struct got g = { 0 };
	unsigned char *h[3], *ent, *p;
	size_t l[3];

	CHECK_EQ(swarm_start(sw, 1, 1), 0);
	other = test_identity();
	h[0] = mk_head(sw->me, 4, &l[0]);
	h[1] = mk_head(other, 9, &l[1]);	/* valid, not ours */
	h[2] = mk_head(sw->me, 8, &l[2]);
	h[2][l[2] - 1] ^= 1;			/* signature broken */
	CHECK((ent = malloc(3 * 4 + l[0] + l[1] + l[2])) != NULL);
	p = ent;
	for (int i = 2; i >= 0; i--) {
		put_be32(p, (uint32_t)l[i]);
		memcpy(p + 4, h[i], l[i]);
		p += 4 + l[i];
	}
	f.ent = ent;
	f.ent_len = (size_t)(p - ent);
	f.n = 3;
	CHECK_EQ(test_sup_start_child(sw, 1, 0, fake_child, &f), 0);
	CHECK_EQ(net_add_peer(sw->net, sw->addr[1]), 0);
	CHECK_EQ(net_wait_online(sw->net, 2, 10000), 2);
	CHECK_EQ(net_heads_fetch(sw->net, 0, got_cb, &g), 2);
	CHECK_EQ(g.n, 1);
	CHECK_EQ(got_count(&g, 4, sw->addr[1]), 1);
	CHECK_MEM(g.head[0], h[0], l[0]);
	CHECK(logged(sw, sw->addr[1], "does not verify"));
	CHECK(logged(sw, sw->addr[1], "another owner"));
	/* the real supplier answered too, with nothing held */
	CHECK_EQ(got_count(&g, 4, sw->addr[0]), 0);
	got_free(&g);
	for (int i = 0; i < 3; i++)
		free(h[i]);
	free(ent);
	sodium_free(other);
	return 0;
}

static int
test_hostile_supplier(void)
{
	return test_swarm_run(hostile_supplier);
}

static int
test_none_online(void)
{
	struct test_swarm sw;
	struct got g = { 0 };
	unsigned char *h, pk[CR_PK_BYTES] = { 1 };
	size_t l;
	int rc = 1;

	if (swarm_start(&sw, 0, 0) != 0)
		goto out;
	h = mk_head(sw.me, 1, &l);
	rc = net_head_publish(sw.net, h, l) == -EAGAIN &&
	    net_heads_fetch(sw.net, 0, got_cb, &g) == -EAGAIN &&
	    net_frag_list(sw.net, pk, NULL, NULL) == -EINVAL ? 0 : 1;
	free(h);
out:
	test_swarm_stop(&sw);
	return rc;
}

/* ---- fragment listings ---------------------------------------------------- */

struct frags {
	int n, cap;
	unsigned char (*id)[STORE_FRAGID_BYTES];
	uint64_t *size;
	int stop_after;
};

static int
frags_cb(void *arg, const unsigned char *fragid, uint64_t size)
{
	struct frags *f = arg;

	if (f->n == f->cap) {
		int cap = f->cap ? 2 * f->cap : 64;
		void *a = realloc(f->id, (size_t)cap * sizeof *f->id);
		void *b = a ? realloc(f->size, (size_t)cap * sizeof *f->size) :
		    NULL;

		if (a)
			f->id = a;
		if (!b)
			return -ENOMEM;
		f->size = b;
		f->cap = cap;
	}
	memcpy(f->id[f->n], fragid, STORE_FRAGID_BYTES);
	f->size[f->n] = size;
	f->n++;
	return f->stop_after && f->n >= f->stop_after ? 1 : 0;
}

static int
frags_has(const struct frags *f, const unsigned char *fragid, uint64_t size)
{
	for (int i = 0; i < f->n; i++)
		if (memcmp(f->id[i], fragid, STORE_FRAGID_BYTES) == 0)
			return f->size[i] == size;
	return 0;
}

#define NBLK 5

static int
frag_list(struct test_swarm *sw)
{
	static struct store_block b[NBLK];
	struct net_peer_info info[TEST_MAXSUP];
	unsigned char key[CR_KEY_BYTES], plain[3000];
	int total = 0;

	CHECK_EQ(swarm_start(sw, 6, 6), 0);
	randombytes_buf(key, sizeof key);
	for (int j = 0; j < NBLK; j++) {
		memset(plain, 'a' + j, sizeof plain);
		CHECK_EQ(net_block_store(sw->net, plain, sizeof plain - j * 100,
		    key, &b[j]), 0);
	}
	CHECK_EQ(net_peers(sw->net, info, TEST_MAXSUP, 0), 6);
	for (int s = 0; s < 6; s++) {
		struct frags f = { 0 };
		int want = 0;

		CHECK_EQ(net_frag_list(sw->net, info[s].pk, frags_cb, &f), 0);
		for (int j = 0; j < NBLK; j++)
			for (int i = 0; i < b[j].k + b[j].m; i++) {
				unsigned char fid[STORE_FRAGID_BYTES];

				if (memcmp(b[j].peer[i], info[s].pk,
				    CR_PK_BYTES) != 0)
					continue;
				memcpy(fid, b[j].id, CR_ID_BYTES);
				fid[CR_ID_BYTES] = (unsigned char)i;
				CHECK(frags_has(&f, fid, b[j].frag_len));
				want++;
			}
		CHECK_EQ(f.n, want);
		total += f.n;
		/* the callback stops it */
		if (f.n > 1) {
			struct frags g = { .stop_after = 1 };

			CHECK_EQ(net_frag_list(sw->net, info[s].pk, frags_cb,
			    &g), 0);
			CHECK_EQ(g.n, 1);
			free(g.id);
			free(g.size);
		}
		free(f.id);
		free(f.size);
	}
	CHECK_EQ(total, NBLK * 6);
	/* a supplier we do not know, one that is gone */
	{
		unsigned char pk[CR_PK_BYTES] = { 9 };
		struct frags f = { 0 };

		CHECK_EQ(net_frag_list(sw->net, pk, frags_cb, &f), -EAGAIN);
		test_sup_kill(sw, 0, SIGKILL);
		for (int i = 0; i < 100 && net_wait_online(sw->net, 6, 0) > 5;
		    i++)
			usleep(20000);
		CHECK_EQ(net_frag_list(sw->net, info[0].pk, frags_cb, &f),
		    -EAGAIN);
		CHECK_EQ(f.n, 0);
	}
	return 0;
}

static int
test_frag_list(void)
{
	return test_swarm_run(frag_list);
}

/* More than one page (4096): fragments put in the supplier's store
 * before it starts, so the pages must join up exactly. */
#define NPAGED (4096 + 100)

static int
frag_list_paged(struct test_swarm *sw)
{
	struct store_frag *sf;
	struct net_peer_info info;
	struct frags f = { 0 };
	const struct net_conf nc = { .timeout_ms = 10000, .reconnect_ms = 1000,
	    TEST_NET_PACE };
	unsigned char fid[STORE_FRAGID_BYTES];

	memset(sw, 0, sizeof *sw);
	if (log_to_file(sw))
		return 1;
	sw->me = test_identity();
	CHECK_EQ(store_frag_open(&sf, "sup0", 0), 0);
	for (int i = 0; i < NPAGED; i++) {
		randombytes_buf(fid, sizeof fid);
		fid[0] = (unsigned char)(i & 0xff);	/* never all zero */
		fid[1] |= 1;
		if (store_frag_put(sf, sw->me->pk, fid, "xyz", 1 + i % 3,
		    fid) < 0) {		/* any 32 bytes: the owner's claim */
			store_frag_close(sf);
			CHECK(0);
		}
	}
	store_frag_close(sf);
	CHECK_EQ(test_sup_start(sw, 0, 0), 0);
	if (test_swarm_client(sw, 1, &nc))
		return 1;
	CHECK_EQ(net_peers(sw->net, &info, 1, 0), 1);
	CHECK_EQ(net_frag_list(sw->net, info.pk, frags_cb, &f), 0);
	CHECK_EQ(f.n, NPAGED);
	for (int i = 1; i < f.n; i++)
		CHECK(memcmp(f.id[i - 1], f.id[i], STORE_FRAGID_BYTES) < 0);
	free(f.id);
	free(f.size);
	return 0;
}

static int
test_frag_list_paged(void)
{
	return test_swarm_run(frag_list_paged);
}

/* ---- suppliers with a known key ------------------------------------------- */

static int
known_peer(struct test_swarm *sw)
{
	struct net_peer_info info[TEST_MAXSUP];
	unsigned char wrong[CR_PK_BYTES];
	int n;

	CHECK_EQ(swarm_start(sw, 3, 0), 0);
	randombytes_buf(wrong, sizeof wrong);
	/* the right key: it comes online */
	CHECK_EQ(net_add_known_peer(sw->net, sw->addr[0], sw->sid[0]->pk), 0);
	CHECK_EQ(net_wait_online(sw->net, 1, 10000), 1);
	/* the address is pinned now: another key is refused at once */
	CHECK_EQ(net_add_known_peer(sw->net, sw->addr[0], wrong),
	    -EKEYREJECTED);
	/* a wrong key for a new address: the supplier shows its own and is
	 * refused, never online */
	CHECK_EQ(net_add_known_peer(sw->net, sw->addr[1], wrong), 0);
	CHECK_EQ(net_wait_online(sw->net, 2, 1500), 1);
	n = net_peers(sw->net, info, TEST_MAXSUP, 0);
	CHECK_EQ(n, 2);
	for (int i = 0; i < n; i++) {
		if (strcmp(info[i].addr, sw->addr[1]) != 0)
			continue;
		CHECK(info[i].state != NET_PEER_ONLINE);
		CHECK(strstr(info[i].last_error, "pinned") != NULL);
	}
	/* a pin made by a first contact binds net_add_known_peer too */
	CHECK_EQ(net_add_peer(sw->net, sw->addr[2]), 0);
	CHECK_EQ(net_wait_online(sw->net, 2, 10000), 2);
	CHECK_EQ(net_add_known_peer(sw->net, sw->addr[2], sw->sid[1]->pk),
	    -EKEYREJECTED);
	CHECK_EQ(net_add_known_peer(sw->net, sw->addr[2], sw->sid[2]->pk), 0);
	CHECK_EQ(net_add_known_peer(sw->net, "nonsense", wrong), -EINVAL);
	return 0;
}

static int
test_known_peer(void)
{
	return test_swarm_run(known_peer);
}

const struct test tests_netheads[] = {
	{ "publish_fetch", test_publish_fetch },
	{ "publish_stale", test_publish_stale },
	{ "publish_forged", test_publish_forged },
	{ "tampered_disk", test_tampered_disk },
	{ "left_behind", test_left_behind },
	{ "hostile_supplier", test_hostile_supplier },
	{ "none_online", test_none_online },
	{ "frag_list", test_frag_list },
	{ "frag_list_paged", test_frag_list_paged },
	{ "known_peer", test_known_peer },
	{ NULL, NULL },
};
