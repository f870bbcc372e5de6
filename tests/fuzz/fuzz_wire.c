/* tests/fuzz/fuzz_wire.c - libFuzzer target for net/wire.c.
 * (a) the whole input as one record: a record that decodes must encode
 *     back to the same bytes and decode to the same fields;
 * (b) the input as a stream (format v2: L | B | header ciphertext | bulk)
 *     fed to a framer in chunk sizes taken from its first bytes; each
 *     frame's limits are checked, its "decryption" simulated (the header
 *     ciphertext is CR_STREAM_ABYTES of filler then the plaintext header,
 *     copied to the front of the record buffer as net/sess.c's pull does),
 *     the bulk rules applied and the record decoded, with the bulk
 *     required to be exactly the record's data.
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
	if ((a->hash != NULL) != (b->hash != NULL) ||
	    (a->hash && memcmp(a->hash, b->hash, CR_HASH_BYTES)))
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
	if (a->rsv_size != b->rsv_size || a->rsv_count != b->rsv_count ||
	    a->rsv_left != b->rsv_left)
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
	/* The header alone (what net_sess_send encrypts) is the record's
	 * prefix, and the bulk is its data. */
	{
		const unsigned char *bulk;
		size_t bl, hl = net_msg_head_len(&m);
		ssize_t h = net_msg_encode_head(buf, need, &m, &bulk, &bl);

		if (h < 0 || (size_t)h != hl || hl + bl != n ||
		    memcmp(buf, p, hl) != 0 ||
		    (bl && (bulk != m.data || bl != m.data_len)) ||
		    net_msg_bulk_ok(m.type, hl, bl) != 0)
			abort();
	}
	/* Any truncation of a fixed-size record must fail, as must any
	 * record one byte longer for a fixed-size type. */
	if (m.type != NET_PUT && m.type != NET_GET_OK && m.type != NET_ERR &&
	    m.type != NET_HEAD_PUT &&
	    net_msg_decode(&m2, buf, (size_t)len - 1) == 0)
		abort();
	free(buf);
}

/* One frame out of the framer: limits, simulated pull, bulk rules. */
static void
frame_check(struct net_frame *fr)
{
	struct net_msg m;
	size_t h;

	if (!fr->hdr || !fr->rec ||
	    fr->hdr_len < CR_STREAM_ABYTES + NET_MSG_HDR ||
	    fr->hdr_len + fr->bulk_len > NET_FRAME_MAX ||
	    (fr->bulk_len && fr->hdr_len > CR_STREAM_ABYTES +
	    net_msg_data_offset(NET_PUT)))
		abort();
	h = fr->hdr_len - CR_STREAM_ABYTES;
	memcpy(fr->rec, fr->hdr + CR_STREAM_ABYTES, h);
	if (net_msg_bulk_ok(fr->rec[0], h, fr->bulk_len) == 0 &&
	    net_msg_decode(&m, fr->rec, h + fr->bulk_len) == 0) {
		if (fr->bulk_len && (m.data != fr->rec + h ||
		    m.data_len != fr->bulk_len))
			abort();
		round_trip(fr->rec, h + fr->bulk_len);
	}
	free(fr->hdr);
	free(fr->rec);
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
			struct net_frame fr = { 0 };
			int rc = net_framer_feed(&f, &q, &qn, &fr);

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
			frame_check(&fr);
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
