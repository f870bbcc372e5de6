/* net/supwork.c - what a supplier's requests do to its fragment store,
 * on the libuv thread pool (net/supplier.c queues them, charges their
 * bytes and sends the replies): PUT, GET, AUDIT, DEL, LIST, heads,
 * RESERVE and LOCATOR, with the fair deal's refusal text. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/internal.h"
#include "net/net.h"
#include "util.h"

/* ---- LIST: entries after a fragid, in fragid order, at most max ------- */

struct list_acc {
	const unsigned char *after;
	unsigned char *e;		/* LIST_ENTRY each */
	size_t n, cap;
	uint32_t max;
	int oom;
};

static int
entry_cmp(const void *a, const void *b)
{
	return memcmp(a, b, STORE_FRAGID_BYTES);
}

static int
list_cb(void *arg, const unsigned char *fragid, uint64_t size)
{
	struct list_acc *a = arg;

	if (memcmp(fragid, a->after, STORE_FRAGID_BYTES) <= 0)
		return 0;
	if (a->n == a->cap) {
		/* Keep only the max smallest so far: memory stays ~2 x max. */
		qsort(a->e, a->n, LIST_ENTRY, entry_cmp);
		a->n = a->max;
	}
	memcpy(a->e + a->n * LIST_ENTRY, fragid, STORE_FRAGID_BYTES);
	put_be64(a->e + a->n * LIST_ENTRY + STORE_FRAGID_BYTES, size);
	a->n++;
	return 0;
}

/* Tests only (conf->test_lie): a few bytes flipped, the size kept, so
 * only the owner's hash check can tell. */
static void
lie_flip(unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 1 + len / 7)
		p[i] ^= 0x5a;
}

/* Proves the bytes are here right now (net__audit_answer). */
static int
do_audit(struct net__work *k, struct store_frag *sf, const unsigned char *owner)
{
	void *data;
	size_t len;
	int rc;

	if ((rc = store_frag_get(sf, owner, k->fragid, &data, &len)) < 0)
		return rc;
	if (k->conf->test_lie) {
		randombytes_buf(k->answer, sizeof k->answer);
	} else {
		net__audit_answer(k->answer, k->nonce, data, len);
	}
	free(data);
	return 0;
}

/* A range of a fragment: only those bytes leave the disk. Past the
 * fragment's end is the asker's mistake (or a probe): said in so many
 * words. */
static void
do_get_range(struct net__work *k, struct store_frag *sf,
    const unsigned char *owner)
{
	uint64_t size = 0;

	k->rc = store_frag_get_range(sf, owner, k->fragid, k->range_off,
	    k->range_len, &k->out, &size);
	if (k->rc == 0)
		k->out_len = k->range_len;
	else if (k->rc == -ERANGE)
		snprintf(k->why, sizeof k->why, "range [%" PRIu32 ", %" PRIu64
		    ") beyond the fragment's %" PRIu64 " bytes", k->range_off,
		    (uint64_t)k->range_off + k->range_len, size);
}

/* ---- HEAD_LIST: newest first, as many as fit one record ---------- */

struct heads_acc {
	unsigned char *buf;
	size_t len, cap;
	uint32_t n, max;
	int rc;
};

static int
heads_cb(void *arg, uint64_t seq, const void *head, size_t len)
{
	struct heads_acc *a = arg;
	size_t need = 4 + len;

	if (a->n >= a->max || len > UINT32_MAX || need > HEADS_ROOM - a->len)
		return 1;	/* the rest would not fit: the newest go */
	if (a->len + need > a->cap) {
		size_t cap = a->cap ? a->cap : 4096;
		unsigned char *b;

		while (cap < a->len + need)
			cap *= 2;
		if (!(b = realloc(a->buf, cap))) {
			a->rc = -ENOMEM;
			return 1;
		}
		a->buf = b;
		a->cap = cap;
	}
	put_be32(a->buf + a->len, (uint32_t)len);
	memcpy(a->buf + a->len + 4, head, len);
	a->len += need;
	a->n++;
	return 0;
}

static void
do_heads_list(struct net__work *k, struct store_frag *sf, const unsigned char *owner)
{
	struct heads_acc a = { .max = k->max };

	k->rc = store_head_list(sf, owner, (int)a.max, heads_cb, &a);
	if (k->rc >= 0 && a.rc < 0)
		k->rc = a.rc;
	if (k->rc < 0) {
		free(a.buf);
		return;
	}
	k->rc = 0;
	k->out = a.buf;
	k->out_len = a.len;
	k->max = a.n;
}

/* A refusal by the fair deal says so, with the figures: the owner's
 * user reads it in `peerfs status`. */
static void
deal_why(struct net__work *k, struct store_frag *sf, const unsigned char *owner,
    uint64_t size)
{
	struct store_frag_acct a;

	store_frag_account(sf, owner, &a);
	if (a.deal && a.evicted > 0 && a.fragments == 0) {
		time_t t = (time_t)a.evicted;
		struct tm tm;
		char when[32];

		gmtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(k->why, sizeof k->why, "evicted by the fair deal at "
		    "%s: you held more than your node holds for us (proved) "
		    "plus credit for longer than the grace; no new space "
		    "for a grace period", when);
		return;
	}
	if (!a.deal || a.deal_limit >= a.quota ||
	    a.charged + a.reserved + size <= a.deal_limit)
		return;
	snprintf(k->why, sizeof k->why, "beyond the fair deal: your node "
	    "holds %llu MiB for us (proved), credit %llu MiB, you hold "
	    "%llu MiB", (unsigned long long)(a.earned >> 20),
	    (unsigned long long)((a.deal_limit - a.earned) >> 20),
	    (unsigned long long)(a.charged >> 20));
}

void
net__work_run(uv_work_t *w)
{
	struct net__work *k = container_of(w, struct net__work, w);
	struct store_frag *sf = k->conf->frags;
	const unsigned char *owner = k->s->peer_pk;

	switch (k->type) {
	case NET_PUT:
		k->rc = store_frag_put(sf, owner, k->fragid, k->data, k->len,
		    k->hash);
		if (k->rc == -EDQUOT)
			deal_why(k, sf, owner, k->len);
		break;
	case NET_GET:
		if (k->ranged)
			do_get_range(k, sf, owner);
		else
			k->rc = store_frag_get(sf, owner, k->fragid, &k->out,
			    &k->out_len);
		if (k->rc == 0 && k->conf->test_lie)
			lie_flip(k->out, k->out_len);
		break;
	case NET_AUDIT:
		k->rc = do_audit(k, sf, owner);
		break;
	case NET_DEL:
		k->rc = store_frag_del(sf, owner, k->fragid);
		break;
	case NET_HEAD_PUT:
		k->rc = store_head_put(sf, owner, k->data, k->len);
		if (k->rc == -EDQUOT)
			deal_why(k, sf, owner, k->len);
		break;
	case NET_HEAD_LIST:
		do_heads_list(k, sf, owner);
		break;
	case NET_RESERVE:
		k->rc = store_frag_reserve(sf, owner, k->rsv_size, k->rsv_count,
		    &k->rsv_count, &k->rsv_left);
		if (k->rc == -EDQUOT)
			deal_why(k, sf, owner, k->rsv_size);
		break;
	case NET_LOCATOR:
		k->rc = store_locator_put(sf, owner, k->loc);
		break;
	case NET_LIST: {
		struct list_acc a = { .after = k->fragid, .max = k->max };
		a.cap = 2 * (size_t)a.max;
		a.e = malloc(a.cap * LIST_ENTRY + 1);
		if (!a.e) {
			k->rc = -ENOMEM;
			break;
		}
		k->rc = store_frag_list(sf, owner, list_cb, &a);
		qsort(a.e, a.n, LIST_ENTRY, entry_cmp);
		if (a.n > a.max)
			a.n = a.max;
		k->out = a.e;
		k->out_len = a.n;
		break;
	}
	}
}
