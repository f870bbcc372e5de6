/* tests/tools/peerfs_attack.c - a hostile peer for the integration tests
 * (tests/integ/test_strangers.py). It speaks the real handshake and record
 * format (crypto/, net/wire.c) with blocking sockets and a fresh identity,
 * then misbehaves:
 *
 *   pipeline ADDR [--type get|head-list|stale-head] [-n N] [--size BYTES]
 *            [--hold S]
 *       stores one fragment (get), 16 heads (head-list) or one head
 *       (stale-head) of --size bytes, then sends N GET / HEAD_LIST requests
 *       / copies of that head (each refused: not newer) in one write and
 *       never reads a reply. Prints "setup ..." and "sent N", then holds
 *       S seconds.
 *   idle ADDR -n N [--keys K] [--bind IP] [--hold S]
 *       opens N authenticated sessions (K identities in turn, default 1)
 *       and holds them; prints "up U of N" once the server had its say.
 *   halfframe ADDR [--wait S]
 *       authenticates, sends half a frame, prints "closed after MS ms"
 *       when the server hangs up (exit 0) or "still open" after S s (1).
 *   flood-connect ADDR -n N [--bind IP] [--hold S]
 *       opens N TCP connections without a handshake; prints "open U of N".
 *   punch ADDR [--wait S]
 *       on a direct session, a PUNCH (only for sessions through a relay):
 *       prints "refused ERRNO"; then one of another version: prints
 *       "closed" when the server hangs up within S s (exit 0).
 *
 * Exit status: 0 done, 1 the server did not do what the command waits
 * for, 2 usage, 3 setup refused by the server (nothing was tested). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "net/internal.h"
#include "util.h"

struct conn {
	int fd;
	struct cr_hs hs;
};

static struct {
	const char *type, *bind_ip;
	int n, keys;
	size_t size;
	double hold, wait;
} opt = { "get", NULL, 300, 1, 1u << 20, 30, 30 };

static void
die(const char *what)
{
	fprintf(stderr, "peerfs_attack: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct cr_identity *
identity(void)
{
	struct cr_identity *id = malloc(sizeof *id);

	if (!id)
		die("malloc");
	crypto_sign_keypair(id->pk, id->sk);
	randombytes_buf(id->master, sizeof id->master);
	return id;
}

static int
write_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, void *p, size_t n)
{
	unsigned char *b = p;

	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* A TCP connection to addr; -1 when refused. */
static int
dial(const char *addr)
{
	struct sockaddr_storage sa;
	int fd;

	if (net__parse_addr(addr, &sa) < 0) {
		fprintf(stderr, "peerfs_attack: bad address %s\n", addr);
		exit(2);
	}
	if ((fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket");
	if (opt.bind_ip) {
		struct sockaddr_storage me;
		char b[80];

		snprintf(b, sizeof b, "%s:0", opt.bind_ip);
		if (net__parse_addr(b, &me) < 0 ||
		    bind(fd, (struct sockaddr *)&me, sizeof me) < 0)
			die("bind");
	}
	if (connect(fd, (struct sockaddr *)&sa, sa.ss_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Connects and authenticates as id: 0, or -1 when the server hung up. */
static int
handshake(struct conn *c, const char *addr, const struct cr_identity *id)
{
	unsigned char hello[CR_HS_HELLO_BYTES], reply[CR_HS_REPLY_BYTES];
	unsigned char fin[CR_HS_FINISH_BYTES];

	struct timeval tv = { .tv_sec = 10 };

	memset(c, 0, sizeof *c);
	if ((c->fd = dial(addr)) < 0)
		return -1;
	/* A server that never accepts leaves us in its backlog: give up. */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (cr_hs_client_hello(&c->hs, id, hello) < 0 ||
	    write_all(c->fd, hello, sizeof hello) < 0 ||
	    read_all(c->fd, reply, sizeof reply) < 0 ||
	    cr_hs_client_finish(&c->hs, id, reply, fin) < 0 ||
	    write_all(c->fd, fin, sizeof fin) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

/* Appends one record of m to *buf (grown with realloc). */
static void
put_record(struct conn *c, const struct net_msg *m, unsigned char **buf,
    size_t *len)
{
	size_t hlen = net_msg_head_len(m), blen = 0, clen;
	const unsigned char *bulk = NULL;
	unsigned char *plain = malloc(hlen), *p;

	if (!plain || net_msg_encode_head(plain, hlen, m, &bulk, &blen) !=
	    (ssize_t)hlen)
		die("encode");
	clen = hlen + CR_STREAM_ABYTES;
	if (!(p = realloc(*buf, *len + 8 + clen + blen)))
		die("realloc");
	*buf = p;
	p += *len;
	put_be32(p, (uint32_t)clen);
	put_be32(p + 4, (uint32_t)blen);
	if (blen)
		memcpy(p + 8 + clen, bulk, blen);
	cr_stream_push_ad(&c->hs.tx, p + 8, plain, hlen, blen ? p + 8 + clen :
	    NULL, blen);
	*len += 8 + clen + blen;
	free(plain);
}

static void
send_one(struct conn *c, const struct net_msg *m)
{
	unsigned char *buf = NULL;
	size_t len = 0;

	put_record(c, m, &buf, &len);
	if (write_all(c->fd, buf, len) < 0)
		die("write");
	free(buf);
}

/* Reads one reply: its type (and errno for ERR), -1 when closed. */
static int
recv_one(struct conn *c, uint32_t *err)
{
	unsigned char pfx[8], *rec;
	struct net_frame fr;
	struct net_msg m;
	size_t len;
	int type;

	if (read_all(c->fd, pfx, 8) < 0)
		return -1;
	fr.hdr_len = get_be32(pfx);
	fr.bulk_len = get_be32(pfx + 4);
	if (fr.hdr_len < CR_STREAM_ABYTES + NET_MSG_HDR ||
	    fr.hdr_len + fr.bulk_len > NET_FRAME_MAX)
		return -1;
	fr.hdr = malloc(fr.hdr_len);
	fr.rec = rec = malloc(fr.hdr_len - CR_STREAM_ABYTES + fr.bulk_len);
	if (!fr.hdr || !rec)
		die("malloc");
	if (read_all(c->fd, fr.hdr, fr.hdr_len) < 0 || read_all(c->fd,
	    rec + fr.hdr_len - CR_STREAM_ABYTES, fr.bulk_len) < 0 ||
	    net_frame_open(&c->hs.rx, &fr, 1, &len) < 0 ||
	    net_msg_decode(&m, rec, len) < 0) {
		free(fr.hdr);
		free(rec);
		return -1;
	}
	type = m.type;
	*err = m.type == NET_ERR ? m.err : 0;
	free(fr.hdr);
	free(rec);
	return type;
}

/* 1 when the server closed fd (EOF or reset), 0 when it is still open. */
static int
closed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	char b;

	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLHUP | POLLERR | POLLRDHUP))
		return 1;
	return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static void
hold(void)
{
	fflush(stdout);
	usleep((useconds_t)(opt.hold * 1e6));
}

static int
cmd_pipeline(const char *addr)
{
	struct cr_identity *id = identity();
	unsigned char fragid[STORE_FRAGID_BYTES], hash[CR_HASH_BYTES];
	unsigned char *buf = NULL, *data;
	struct net_msg m;
	struct conn c;
	size_t len = 0;
	uint32_t err;
	int get = strcmp(opt.type, "get") == 0, stored = 0, rc;
	int stale = strcmp(opt.type, "stale-head") == 0;
	unsigned char *last = NULL;
	size_t last_len = 0;

	if (!get && !stale && strcmp(opt.type, "head-list") != 0) {
		fprintf(stderr, "peerfs_attack: --type get|head-list|"
		    "stale-head\n");
		return 2;
	}
	if (handshake(&c, addr, id) < 0) {
		printf("setup refused: no session\n");
		return 3;
	}
	if (!(data = malloc(opt.size)))
		die("malloc");
	randombytes_buf(data, opt.size);
	randombytes_buf(fragid, sizeof fragid);
	randombytes_buf(hash, sizeof hash);
	/* What the replies will be made of: the bigger, the worse. */
	for (int i = 0; i < (get || stale ? 1 : 16); i++) {
		unsigned char *head = NULL;
		size_t hl = 0;

		memset(&m, 0, sizeof m);
		m.reqid = 1 + (uint64_t)i;
		if (get) {
			m.type = NET_PUT;
			m.fragid = fragid;
			m.hash = hash;
			m.data = data;
			m.data_len = opt.size;
		} else {
			if (cr_head_sign(id, 1 + (uint64_t)i, 1 + (uint64_t)i,
			    data, opt.size, &head, &hl) < 0)
				die("cr_head_sign");
			m.type = NET_HEAD_PUT;
			m.data = head;
			m.data_len = hl;
		}
		send_one(&c, &m);
		free(last);
		last = head;
		last_len = hl;
		rc = recv_one(&c, &err);
		if (rc == (get ? NET_PUT_OK : NET_HEAD_PUT_OK))
			stored++;
		else if (rc < 0)
			break;
		else
			printf("setup: refused: %s\n", strerror((int)err));
	}
	printf("setup %d stored of %zu bytes each\n", stored, opt.size);
	if (!stored)
		return 3;
	for (int i = 0; i < opt.n; i++) {
		memset(&m, 0, sizeof m);
		m.reqid = 1000 + (uint64_t)i;
		m.type = get ? NET_GET : stale ? NET_HEAD_PUT : NET_HEAD_LIST;
		m.fragid = fragid;
		m.max = 0;
		if (stale) {
			m.data = last;
			m.data_len = last_len;
		}
		put_record(&c, &m, &buf, &len);
	}
	if (write_all(c.fd, buf, len) < 0)
		die("write");
	printf("sent %d %s requests in one write of %zu bytes\n", opt.n,
	    opt.type, len);
	hold();
	return 0;
}

static int
cmd_idle(const char *addr)
{
	struct cr_identity **ids = calloc((size_t)opt.keys, sizeof *ids);
	int *fds = calloc((size_t)opt.n, sizeof *fds), up = 0;

	if (!ids || !fds)
		die("calloc");
	for (int i = 0; i < opt.keys; i++)
		ids[i] = identity();
	for (int i = 0; i < opt.n; i++) {
		struct conn c;

		fds[i] = handshake(&c, addr, ids[i % opt.keys]) == 0 ? c.fd :
		    -1;
	}
	usleep(500000);		/* refusals after FINISH arrive late */
	for (int i = 0; i < opt.n; i++)
		if (fds[i] >= 0 && !closed(fds[i]))
			up++;
	printf("up %d of %d\n", up, opt.n);
	hold();
	up = 0;
	for (int i = 0; i < opt.n; i++)
		if (fds[i] >= 0 && !closed(fds[i]))
			up++;
	printf("still up %d of %d\n", up, opt.n);
	return 0;
}

static int
cmd_halfframe(const char *addr)
{
	struct cr_identity *id = identity();
	unsigned char half[8 + 20];
	struct pollfd p;
	struct conn c;
	double t0;

	if (handshake(&c, addr, id) < 0) {
		printf("setup refused: no session\n");
		return 3;
	}
	/* A PING's frame announces 26 bytes; 20 come. */
	put_be32(half, CR_STREAM_ABYTES + NET_MSG_HDR);
	put_be32(half + 4, 0);
	randombytes_buf(half + 8, sizeof half - 8);
	if (write_all(c.fd, half, sizeof half) < 0)
		die("write");
	printf("sent half a frame\n");
	fflush(stdout);
	t0 = now_ms();
	p.fd = c.fd;
	p.events = POLLIN | POLLRDHUP;
	while (now_ms() - t0 < opt.wait * 1e3) {
		int n = poll(&p, 1, 100);

		if (n > 0 && closed(c.fd)) {
			printf("closed after %.0f ms\n", now_ms() - t0);
			return 0;
		}
	}
	printf("still open after %.0f s\n", opt.wait);
	return 1;
}

static int
cmd_punch(const char *addr)
{
	struct net_msg m = { .type = NET_PUNCH, .reqid = 1, .port = 40001 };
	struct cr_identity *id = identity();
	unsigned char plain[NET_MSG_HDR + 3], rec[8 + sizeof plain +
	    CR_STREAM_ABYTES];
	struct conn c;
	uint32_t err = 0;
	int type;
	double t0;

	if (handshake(&c, addr, id) < 0) {
		printf("setup refused: no session\n");
		return 3;
	}
	send_one(&c, &m);
	type = recv_one(&c, &err);
	if (type != NET_ERR) {
		printf("answered type %d\n", type);
		return 1;
	}
	printf("refused %u\n", err);
	/* The same with version 2: malformed. */
	m.reqid = 2;
	if (net_msg_encode(plain, sizeof plain, &m) != (ssize_t)sizeof plain)
		die("encode");
	plain[NET_MSG_HDR] = 2;
	put_be32(rec, sizeof plain + CR_STREAM_ABYTES);
	put_be32(rec + 4, 0);
	cr_stream_push_ad(&c.hs.tx, rec + 8, plain, sizeof plain, NULL, 0);
	if (write_all(c.fd, rec, sizeof rec) < 0)
		die("write");
	t0 = now_ms();
	while (now_ms() - t0 < opt.wait * 1e3) {
		struct pollfd p = { .fd = c.fd, .events = POLLIN | POLLRDHUP };
		if (poll(&p, 1, 100) > 0 && closed(c.fd)) {
			printf("closed\n");
			return 0;
		}
	}
	printf("still open after %.0f s\n", opt.wait);
	return 1;
}

static int
cmd_flood(const char *addr)
{
	int *fds = calloc((size_t)opt.n, sizeof *fds), open_n = 0;

	if (!fds)
		die("calloc");
	for (int i = 0; i < opt.n; i++)
		fds[i] = dial(addr);
	usleep(500000);
	for (int i = 0; i < opt.n; i++)
		if (fds[i] >= 0 && !closed(fds[i]))
			open_n++;
	printf("open %d of %d\n", open_n, opt.n);
	hold();
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "type", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 's' },
		{ "hold", required_argument, NULL, 'H' },
		{ "wait", required_argument, NULL, 'w' },
		{ "keys", required_argument, NULL, 'k' },
		{ "bind", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	struct rlimit rl;
	const char *cmd, *addr;
	int c;

	while ((c = getopt_long(argc, argv, "n:", lo, NULL)) != -1) {
		switch (c) {
		case 'n': opt.n = atoi(optarg); break;
		case 't': opt.type = optarg; break;
		case 's': opt.size = strtoul(optarg, NULL, 10); break;
		case 'H': opt.hold = atof(optarg); break;
		case 'w': opt.wait = atof(optarg); break;
		case 'k': opt.keys = atoi(optarg); break;
		case 'b': opt.bind_ip = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind != 2 || opt.n < 1 || opt.keys < 1 || opt.size < 1 ||
	    opt.size > CR_HEAD_BLOB_MAX) {
		fprintf(stderr, "usage: peerfs_attack pipeline|idle|halfframe|"
		    "flood-connect|punch HOST:PORT [options] (see the source)\n");
		return 2;
	}
	cmd = argv[optind];
	addr = argv[optind + 1];
	if (cr_init() < 0)
		return 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "pipeline"))
		return cmd_pipeline(addr);
	if (!strcmp(cmd, "idle"))
		return cmd_idle(addr);
	if (!strcmp(cmd, "halfframe"))
		return cmd_halfframe(addr);
	if (!strcmp(cmd, "flood-connect"))
		return cmd_flood(addr);
	if (!strcmp(cmd, "punch"))
		return cmd_punch(addr);
	fprintf(stderr, "peerfs_attack: unknown command %s\n", cmd);
	return 2;
}
