/* tests/fuzz/fuzz_wire.c - libFuzzer target for net/wire.c.
 * (a) the whole input as one record: a record that decodes must encode
 *     back to the same bytes and decode to the same fields;
 * (b) the input as a stream: fed to a framer in chunk sizes taken from
 *     its first bytes, every frame decoded as a record.
 * Any mismatch abort()s; out-of-bounds reads are ASan's job. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/internal.h"

static int
same_bytes(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return 1;
	if (!a || !b)
		return 0;
	return memcmp(a, b, n) == 0;
}

static void
check_same(const struct net_msg *a, const struct net_msg *b)
{
	if (a->type != b->type || a->reqid != b->reqid)
		abort();
	if ((a->fragid != NULL) != (b->fragid != NULL) ||
	    (a->fragid && memcmp(a->fragid, b->fragid, STORE_FRAGID_BYTES)))
		abort();
	if ((a->nonce != NULL) != (b->nonce != NULL) ||
	    (a->nonce && memcmp(a->nonce, b->nonce, CR_HASH_BYTES)) ||
	    (a->answer != NULL) != (b->answer != NULL) ||
	    (a->answer && memcmp(a->answer, b->answer, CR_HASH_BYTES)))
		abort();
	if (a->data_len != b->data_len ||
	    !same_bytes(a->data, b->data, a->data_len))
		abort();
	/* HEAD_LIST_OK's entries are data, compared above. */
	if (a->max != b->max || a->n != b->n ||
	    (a->entries != NULL) != (b->entries != NULL) ||
	    (a->entries && !same_bytes(a->entries, b->entries,
	    (size_t)a->n * (STORE_FRAGID_BYTES + 8))))
		abort();
	if (a->bytes != b->bytes || a->fragments != b->fragments ||
	    a->avail != b->avail || a->quota != b->quota)
		abort();
	if (a->err != b->err || a->errmsg_len != b->errmsg_len ||
	    !same_bytes(a->errmsg, b->errmsg, a->errmsg_len))
		abort();
}

static void
round_trip(const unsigned char *p, size_t n)
{
	struct net_msg m, m2;
	unsigned char *buf;
	size_t need;
	ssize_t len;

	if (net_msg_decode(&m, p, n) != 0)
		return;
	need = net_msg_encoded_len(&m);
	if (need != n)
		abort();
	/* One byte short must be refused, not overrun. */
	if (!(buf = malloc(need)))
		return;
	if (net_msg_encode(buf, need - 1, &m) != -ENOSPC)
		abort();
	len = net_msg_encode(buf, need, &m);
	if (len < 0 || (size_t)len != n || memcmp(buf, p, n) != 0)
		abort();
	if (net_msg_decode(&m2, buf, (size_t)len) != 0)
		abort();
	check_same(&m, &m2);
	/* Any truncation of a fixed-size record must fail, as must any
	 * record one byte longer for a fixed-size type. */
	if (m.type != NET_PUT && m.type != NET_GET_OK && m.type != NET_ERR &&
	    m.type != NET_HEAD_PUT &&
	    net_msg_decode(&m2, buf, (size_t)len - 1) == 0)
		abort();
	free(buf);
}

static void
stream(const unsigned char *p, size_t n)
{
	struct net_framer f;
	unsigned char chunks[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	size_t nc = n < 8 ? n : 8, ci = 0;
	const unsigned char *cur;
	size_t left;

	for (size_t i = 0; i < nc; i++)
		chunks[i] = p[i];
	cur = p + nc;
	left = n - nc;
	net_framer_init(&f);
	while (left > 0) {
		size_t c = chunks[ci++ % 8];
		const unsigned char *q;
		size_t qn;

		/* 0 means "the rest"; big chunks cover multi-frame feeds. */
		c = c == 0 ? left : (c > 200 ? (c - 200) * 64 : c);
		if (c > left)
			c = left;
		q = cur;
		qn = c;
		for (;;) {
			unsigned char *frame = NULL;
			size_t flen = 0;
			int rc = net_framer_feed(&f, &q, &qn, &frame, &flen);

			if (rc < 0) {
				if (rc != -EPROTO)
					abort();
				net_framer_release(&f);
				return;
			}
			if (rc == 0) {
				if (qn != 0)
					abort();
				break;
			}
			if (flen == 0 || flen > NET_FRAME_MAX || !frame)
				abort();
			round_trip(frame, flen);
			free(frame);
		}
		cur += c;
		left -= c;
	}
	net_framer_release(&f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	round_trip(data, size);
	stream(data, size);
	return 0;
}
