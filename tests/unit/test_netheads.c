/* tests/unit/test_netheads.c - net/heads.c against real supplier
 * processes on 127.0.0.1: signed heads published and fetched (rollback,
 * forgeries, damaged disks, a supplier left behind), paged fragment
 * listings, suppliers added with a known key. Every child is killed and
 * reaped by swarm_stop(), which each test calls whatever its checks said. */
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
#include "util.h"

#define MAXSUP 8

struct swarm {
	pid_t pid[MAXSUP];
	int port[MAXSUP];
	char addr[MAXSUP][64];
	int nports;
	struct cr_identity *me;
	struct store *st;
	struct cr_ec *ec;
	struct net *net;
	struct cr_identity *sid[MAXSUP];	/* kept across restarts */
	FILE *log;				/* the client's log lines */
};

static void
on_ready(void *arg, const char *bound)
{
	int fd = *(int *)arg;

	if (write(fd, bound, strlen(bound) + 1) < 0)
		_exit(3);
	close(fd);
}

static void
supplier_child(int fd, int port, const char *dir, struct cr_identity *id)
{
	struct net_supplier_conf c = { 0 };
	struct store_frag *sf;
	char listen[64];
	int rc;

	log_init("supplier", LOG_ERROR, NULL);
	setpgid(0, 0);
	if (cr_init() < 0 || store_frag_open(&sf, dir, 0) < 0)
		_exit(4);
	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	c.id = id;
	c.listen = listen;
	c.frags = sf;
	c.on_ready = on_ready;
	c.arg = &fd;
	rc = net_supplier_run(&c);
	store_frag_close(sf);
	_exit(rc == 0 ? 0 : 5);
}

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

static void
fake_child(int fd, int port, struct cr_identity *id, struct fake *f)
{
	struct sockaddr_in sa;
	uv_loop_t loop;
	uv_tcp_t tcp;
	char name[64];

	log_init("fake", LOG_ERROR, NULL);
	setpgid(0, 0);
	fake_id = id;
	uv_loop_init(&loop);
	uv_tcp_init(&loop, &tcp);
	tcp.data = f;
	uv_ip4_addr("127.0.0.1", port, &sa);
	if (uv_tcp_bind(&tcp, (struct sockaddr *)&sa, 0) < 0 ||
	    uv_listen((uv_stream_t *)&tcp, 16, fake_conn) < 0)
		_exit(2);
	snprintf(name, sizeof name, "127.0.0.1:%d", port);
	on_ready(&fd, name);
	uv_run(&loop, UV_RUN_DEFAULT);
	_exit(0);
}

/* Supplier i serving "sup<i>" with identity sid[i] (a fake one serving
 * *fake when set); port 0 = a free one. */
static int
sup_start_fake(struct swarm *sw, int i, int port, struct fake *fake)
{
	char dir[64], buf[64];

	snprintf(dir, sizeof dir, "sup%d", i);
	if (!sw->sid[i])
		sw->sid[i] = test_identity();
	for (int tries = 0; tries < 40; tries++) {
		int p = port ? port : 20000 + (getpid() * 17) % 20000 +
		    sw->nports++;
		int fds[2];
		ssize_t n;
		pid_t pid;

		if (pipe(fds) < 0)
			return -errno;
		fflush(NULL);
		if ((pid = fork()) == 0) {
			close(fds[0]);
			if (fake)
				fake_child(fds[1], p, sw->sid[i], fake);
			supplier_child(fds[1], p, dir, sw->sid[i]);
		}
		close(fds[1]);
		n = read(fds[0], buf, sizeof buf - 1);
		close(fds[0]);
		if (n > 0) {
			sw->pid[i] = pid;
			sw->port[i] = p;
			snprintf(sw->addr[i], sizeof sw->addr[i],
			    "127.0.0.1:%d", p);
			return 0;
		}
		waitpid(pid, NULL, 0);
		if (port)
			usleep(100000);
	}
	return -EADDRINUSE;
}

static int
sup_start(struct swarm *sw, int i, int port)
{
	return sup_start_fake(sw, i, port, NULL);
}

static void
sup_kill(struct swarm *sw, int i)
{
	if (sw->pid[i] > 0) {
		kill(sw->pid[i], SIGKILL);
		waitpid(sw->pid[i], NULL, 0);
		sw->pid[i] = 0;
	}
}

static void
swarm_stop(struct swarm *sw)
{
	if (sw->net)
		net_free(sw->net);
	for (int i = 0; i < MAXSUP; i++)
		sup_kill(sw, i);
	if (sw->st)
		store_close(sw->st);
	if (sw->ec)
		cr_ec_free(sw->ec);
	if (sw->me)
		sodium_free(sw->me);
	for (int i = 0; i < MAXSUP; i++)
		if (sw->sid[i])
			sodium_free(sw->sid[i]);
	if (sw->log)
		fclose(sw->log);
	memset(sw, 0, sizeof *sw);
}

/* nsup suppliers started; a client with the first nadd of them added
 * (and online). The client logs to "client.log". */
static int
swarm_start(struct swarm *sw, int nsup, int nadd)
{
	struct net_conf nc = { 0 };

	memset(sw, 0, sizeof *sw);
	CHECK((sw->log = fopen("client.log", "w+")) != NULL);
	log_init("test", LOG_WARN, sw->log);
	CHECK(cr_init() == 0);
	sw->me = test_identity();
	CHECK_EQ(store_open(&sw->st, "owner", 64 << 20), 0);
	CHECK_EQ(cr_ec_new(&sw->ec, 4, 2), 0);
	for (int i = 0; i < nsup; i++)
		CHECK_EQ(sup_start(sw, i, 0), 0);
	nc.id = sw->me;
	nc.store = sw->st;
	nc.ec = sw->ec;
	nc.timeout_ms = 5000;
	nc.reconnect_ms = 100;
	CHECK_EQ(net_new(&sw->net, &nc), 0);
	for (int i = 0; i < nadd; i++)
		CHECK_EQ(net_add_peer(sw->net, sw->addr[i]), 0);
	CHECK_EQ(net_wait_online(sw->net, nadd, 10000), nadd);
	return 0;
}

/* 1 when the client's log holds a line with every one of the words. */
static int
logged(struct swarm *sw, const char *w1, const char *w2)
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
publish_fetch(struct swarm *sw)
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
	struct swarm sw;
	int rc = publish_fetch(&sw);

	swarm_stop(&sw);
	return rc;
}

/* Rollback protection lives on the suppliers: an older or equal seq is
 * refused everywhere, and said so in the log. */
static int
publish_stale(struct swarm *sw)
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
	struct swarm sw;
	int rc = publish_stale(&sw);

	swarm_stop(&sw);
	return rc;
}

/* Heads not signed by us: refused by the suppliers, never served. */
static int
publish_forged(struct swarm *sw)
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
	struct swarm sw;
	int rc = publish_forged(&sw);

	swarm_stop(&sw);
	return rc;
}

/* A head file damaged on a supplier's disk is not served; the others
 * still are. */
static int
tampered_disk(struct swarm *sw)
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
	struct swarm sw;
	int rc = tampered_disk(&sw);

	swarm_stop(&sw);
	return rc;
}

/* A supplier offline during the newest publish offers only the older
 * head: every head reaches the callback, the caller sees both seqs. */
static int
left_behind(struct swarm *sw)
{
	struct got g = { 0 };
	unsigned char *h;
	size_t l;

	CHECK_EQ(swarm_start(sw, 3, 3), 0);
	h = mk_head(sw->me, 1, &l);
	CHECK_EQ(net_head_publish(sw->net, h, l), 3);
	free(h);
	sup_kill(sw, 2);
	for (int i = 0; i < 50 && net_wait_online(sw->net, 3, 0) > 2; i++)
		usleep(20000);
	CHECK_EQ(net_wait_online(sw->net, 3, 0), 2);
	h = mk_head(sw->me, 2, &l);
	CHECK_EQ(net_head_publish(sw->net, h, l), 2);
	free(h);
	CHECK_EQ(sup_start(sw, 2, sw->port[2]), 0);
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
	struct swarm sw;
	int rc = left_behind(&sw);

	swarm_stop(&sw);
	return rc;
}

/* The client checks every head itself: a supplier serving forged heads,
 * or another owner's, gets them ignored and named in the log. */
static int
hostile_supplier(struct swarm *sw)
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
	CHECK_EQ(sup_start_fake(sw, 1, 0, &f), 0);
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
	struct swarm sw;
	int rc = hostile_supplier(&sw);

	swarm_stop(&sw);
	return rc;
}

static int
test_none_online(void)
{
	struct swarm sw;
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
	swarm_stop(&sw);
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
frag_list(struct swarm *sw)
{
	static struct store_block b[NBLK];
	struct net_peer_info info[MAXSUP];
	unsigned char key[CR_KEY_BYTES], plain[3000];
	int total = 0;

	CHECK_EQ(swarm_start(sw, 6, 6), 0);
	randombytes_buf(key, sizeof key);
	for (int j = 0; j < NBLK; j++) {
		memset(plain, 'a' + j, sizeof plain);
		CHECK_EQ(net_block_store(sw->net, plain, sizeof plain - j * 100,
		    key, &b[j]), 0);
	}
	CHECK_EQ(net_peers(sw->net, info, MAXSUP, 0), 6);
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
		sup_kill(sw, 0);
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
	struct swarm sw;
	int rc = frag_list(&sw);

	swarm_stop(&sw);
	return rc;
}

/* More than one page (4096): fragments put in the supplier's store
 * before it starts, so the pages must join up exactly. */
#define NPAGED (4096 + 100)

static int
frag_list_paged(struct swarm *sw)
{
	struct store_frag *sf;
	struct net_peer_info info;
	struct frags f = { 0 };
	struct net_conf nc = { 0 };
	unsigned char fid[STORE_FRAGID_BYTES];

	memset(sw, 0, sizeof *sw);
	CHECK((sw->log = fopen("client.log", "w+")) != NULL);
	log_init("test", LOG_WARN, sw->log);
	CHECK(cr_init() == 0);
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
	CHECK_EQ(sup_start(sw, 0, 0), 0);
	CHECK_EQ(store_open(&sw->st, "owner", 64 << 20), 0);
	CHECK_EQ(cr_ec_new(&sw->ec, 4, 2), 0);
	nc.id = sw->me;
	nc.store = sw->st;
	nc.ec = sw->ec;
	nc.timeout_ms = 10000;
	CHECK_EQ(net_new(&sw->net, &nc), 0);
	CHECK_EQ(net_add_peer(sw->net, sw->addr[0]), 0);
	CHECK_EQ(net_wait_online(sw->net, 1, 10000), 1);
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
	struct swarm sw;
	int rc = frag_list_paged(&sw);

	swarm_stop(&sw);
	return rc;
}

/* ---- suppliers with a known key ------------------------------------------- */

static int
known_peer(struct swarm *sw)
{
	struct net_peer_info info[MAXSUP];
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
	n = net_peers(sw->net, info, MAXSUP, 0);
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
	struct swarm sw;
	int rc = known_peer(&sw);

	swarm_stop(&sw);
	return rc;
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
