/* tests/tools/nfq_delay.c - a link's delay for the namespace harness
 * (tests/integ/netns.py), where the kernel has no netem: holds every
 * packet of an NFQUEUE queue for DELAY ms, then accepts it, in arrival
 * order (a fixed delay never reorders).
 *
 *     nfq_delay QUEUE DELAY_MS
 *
 * Meant for the receiver's input (`nft ... queue num QUEUE bypass`):
 * packets held on the sender's output count against TCP Small Queues
 * and throttle the sender far below the link (NETWORK-NOTES.md). Prints
 * "ready" once bound; runs until killed. The queue is fail-open: packets
 * beyond what the kernel queues pass undelayed rather than vanish, so a
 * test measures delay, never losses it did not ask for. */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define HELD_MAX	65536		/* packets held at once (a ring) */
#define QUEUE_LEN	(HELD_MAX - 1)	/* the kernel holds no more for us */

struct held {
	uint32_t id;
	int64_t due_ms;
};

struct delay {
	struct nfq_q_handle *q;
	int64_t delay_ms;
	struct held ring[HELD_MAX];
	size_t head, n;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
on_packet(struct nfq_q_handle *q, struct nfgenmsg *msg, struct nfq_data *nfa,
    void *arg)
{
	struct delay *d = arg;
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	uint32_t id;

	if (!ph)
		return 0;
	id = ntohl(ph->packet_id);
	if (d->n == HELD_MAX)	/* cannot happen with QUEUE_LEN; never lose */
		return nfq_set_verdict(q, id, NF_ACCEPT, 0, NULL);
	d->ring[(d->head + d->n) % HELD_MAX] =
	    (struct held){ .id = id, .due_ms = now_ms() + d->delay_ms };
	d->n++;
	return 0;
}

/* Accepts every packet whose time has come; returns the ms until the
 * next one is due (-1: none held). */
static int
release(struct delay *d)
{
	int64_t now = now_ms();

	while (d->n && d->ring[d->head].due_ms <= now) {
		nfq_set_verdict(d->q, d->ring[d->head].id, NF_ACCEPT, 0, NULL);
		d->head = (d->head + 1) % HELD_MAX;
		d->n--;
	}
	return d->n ? (int)(d->ring[d->head].due_ms - now) : -1;
}

int
main(int argc, char **argv)
{
	static struct delay d;	/* the ring: too big for the stack */
	struct nfq_handle *h;
	char buf[65536];
	char *end;
	long queue;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: nfq_delay QUEUE DELAY_MS\n");
		return 2;
	}
	queue = strtol(argv[1], &end, 10);
	if (*end || queue < 0 || queue > 65535) {
		fprintf(stderr, "nfq_delay: bad queue number %s\n", argv[1]);
		return 2;
	}
	d.delay_ms = strtol(argv[2], &end, 10);
	if (*end || d.delay_ms < 0 || d.delay_ms > 60000) {
		fprintf(stderr, "nfq_delay: bad delay %s (0-60000 ms)\n", argv[2]);
		return 2;
	}
	if (!(h = nfq_open())) {
		fprintf(stderr, "nfq_delay: nfq_open: %s\n", strerror(errno));
		return 1;
	}
	if (!(d.q = nfq_create_queue(h, (uint16_t)queue, on_packet, &d))) {
		fprintf(stderr, "nfq_delay: queue %ld: %s\n", queue,
		    strerror(errno));
		return 1;
	}
	/* Only the verdict is ours to give: no payload copied up. */
	if (nfq_set_mode(d.q, NFQNL_COPY_META, 0) < 0 ||
	    nfq_set_queue_maxlen(d.q, QUEUE_LEN) < 0 ||
	    nfq_set_queue_flags(d.q, NFQA_CFG_F_FAIL_OPEN,
	    NFQA_CFG_F_FAIL_OPEN) < 0) {
		fprintf(stderr, "nfq_delay: queue %ld setup: %s\n", queue,
		    strerror(errno));
		return 1;
	}
	fd = nfq_fd(h);
	{
		/* Bursts at link rate must not overflow the socket. */
		int rcv = 8 << 20;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int wait = release(&d), rc;

		if ((rc = poll(&p, 1, wait)) < 0 && errno != EINTR) {
			fprintf(stderr, "nfq_delay: poll: %s\n", strerror(errno));
			return 1;
		}
		while (rc > 0) {
			ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
			if (n > 0) {
				nfq_handle_packet(h, buf, (int)n);
				continue;
			}
			if (n < 0 && errno == ENOBUFS)
				fprintf(stderr, "nfq_delay: queue %ld: socket "
				    "overrun, packets missed\n", queue);
			break;
		}
	}
}
