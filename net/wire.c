/* net/wire.c - the record codec and the stream framer (format table in
 * net/internal.h). Fed by untrusted peers: every length is checked
 * before it is used, sizes are computed in uint64_t and never wrap, and
 * anything off the table is -EPROTO. No I/O and no crypto; the framer's
 * two buffers per frame (header ciphertext, record with the bulk already
 * in place) are the only allocations. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "net/internal.h"
#include "util.h"

#define FRAGID		STORE_FRAGID_BYTES		/* 33 */
#define LIST_ENTRY	(STORE_FRAGID_BYTES + 8)	/* 41 */
#define ERRNO_MAX	4095
#define HEAD_MIN	((size_t)CR_HEAD_FIXED)
#define HEAD_MAX	((size_t)CR_HEAD_FIXED + CR_HEAD_BLOB_MAX)

/* Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
static int
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		unsigned char lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else
			return 0;
		if (n - i <= k)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t j = 2; j <= k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
		i += k + 1;
	}
	return 1;
}

/* RESERVE's payload: size and count (v0), then the owner's binding of its
 * supplier node (v1, net/internal.h). */
#define RSV_V0	8
#define RSV_V1	(8 + 1 + CR_PK_BYTES + CR_BIND_BYTES)
/* GET's range after the fragid: version | off | len. */
#define GET_RANGE	(1 + 4 + 4)

/* Fixed payload size of a type, -1 for a variable one, -2 for unknown. */
static long
fixed_payload(uint8_t type)
{
	switch (type) {
	case NET_DEL:
		return FRAGID;
	case NET_LIST:
		return FRAGID + 4;
	case NET_HEAD_LIST:
		return 4;
	case NET_RESERVE_OK:
		return 12;
	case NET_LOCATOR:
		return 1 + CR_KEY_BYTES;
	case NET_DIALBACK:
		return 1 + 2;
	case NET_DIALBACK_OK:
		return 4;
	case NET_RELAY_RESERVE:
		return 1;
	case NET_RELAY_RESERVE_OK:
		return 8;
	case NET_RELAY_INCOMING:
		return 1 + NET_RELAY_TOKEN_BYTES;
	case NET_PUNCH:
	case NET_PUNCH_OK:
		return 1 + 2;
	case NET_PING: case NET_LOCATOR_OK: case NET_PUT_OK: case NET_DEL_OK: case NET_HEAD_PUT_OK:
		return 0;
	case NET_PONG:
		return 32;
	case NET_AUDIT:
		return FRAGID + CR_HASH_BYTES;
	case NET_AUDIT_OK:
		return CR_HASH_BYTES;
	case NET_GET: case NET_PUT: case NET_GET_OK: case NET_LIST_OK: case NET_ERR:
	case NET_HEAD_PUT: case NET_HEAD_LIST_OK: case NET_RESERVE:
		return -1;
	default:
		return -2;
	}
}

/* 1 when p[0..len) is exactly n entries of (u32 len | head), each len
 * within the head bounds and n <= NET_HEADS_MAX. */
static int
heads_valid(uint32_t n, const unsigned char *p, size_t len)
{
	size_t off = 0;

	if (n > NET_HEADS_MAX || (len && !p))
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		size_t hl;

		if (len - off < 4)
			return 0;
		hl = get_be32(p + off);
		off += 4;
		if (hl < HEAD_MIN || hl > HEAD_MAX || len - off < hl)
			return 0;
		off += hl;
	}
	return off == len;
}

int
net_msg_heads_next(const struct net_msg *m, size_t *off,
    const unsigned char **head, size_t *len)
{
	size_t hl;

	if (m->type != NET_HEAD_LIST_OK || *off >= m->data_len ||
	    m->data_len - *off < 4)
		return 0;
	hl = get_be32(m->data + *off);
	if (hl < HEAD_MIN || hl > HEAD_MAX || m->data_len - *off - 4 < hl)
		return 0;
	*head = m->data + *off + 4;
	*len = hl;
	*off += 4 + hl;
	return 1;
}

int
net_msg_decode(struct net_msg *m, const unsigned char *p, size_t n)
{
	struct net_msg d;
	const unsigned char *q;
	size_t plen;
	long fixed;

	if (!p || n < NET_MSG_HDR)
		return -EPROTO;
	memset(&d, 0, sizeof d);
	d.type = p[0];
	d.reqid = get_be64(p + 1);
	q = p + NET_MSG_HDR;
	plen = n - NET_MSG_HDR;

	fixed = fixed_payload(d.type);
	if (fixed == -2 || (fixed >= 0 && plen != (size_t)fixed))
		return -EPROTO;

	switch (d.type) {
	case NET_PUT:
		if (plen < FRAGID + CR_HASH_BYTES + 1)
			return -EPROTO;
		d.fragid = q;
		d.hash = q + FRAGID;
		d.data = q + FRAGID + CR_HASH_BYTES;
		d.data_len = plen - FRAGID - CR_HASH_BYTES;
		break;
	case NET_GET:
		if (plen != FRAGID && plen != FRAGID + GET_RANGE)
			return -EPROTO;
		d.fragid = q;
		if (plen == FRAGID + GET_RANGE) {
			if (q[FRAGID] != NET_RANGE_VERSION)
				return -EPROTO;
			d.ranged = 1;
			d.range_off = get_be32(q + FRAGID + 1);
			d.range_len = get_be32(q + FRAGID + 5);
			if (d.range_len == 0)
				return -EPROTO;
		}
		break;
	case NET_DEL:
		d.fragid = q;
		break;
	case NET_LIST:
		d.fragid = q;
		d.max = get_be32(q + FRAGID);
		break;
	case NET_AUDIT:
		d.fragid = q;
		d.nonce = q + FRAGID;
		break;
	case NET_AUDIT_OK:
		d.answer = q;
		break;
	case NET_GET_OK:
		if (plen < 1)
			return -EPROTO;
		d.data = q;
		d.data_len = plen;
		break;
	case NET_LIST_OK:
		if (plen < 4)
			return -EPROTO;
		d.n = get_be32(q);
		if (d.n > NET_LIST_MAX ||
		    (uint64_t)d.n * LIST_ENTRY != (uint64_t)(plen - 4))
			return -EPROTO;
		d.entries = q + 4;
		break;
	case NET_HEAD_PUT:
		if (plen < HEAD_MIN || plen > HEAD_MAX)
			return -EPROTO;
		d.data = q;
		d.data_len = plen;
		break;
	case NET_HEAD_LIST:
		d.max = get_be32(q);
		break;
	case NET_RESERVE:
		if (plen != RSV_V0 && plen != RSV_V1)
			return -EPROTO;
		d.rsv_size = get_be32(q);
		d.rsv_count = get_be32(q + 4);
		if (d.rsv_size == 0 || d.rsv_count == 0)
			return -EPROTO;
		if (plen == RSV_V1) {
			if (q[8] != NET_BIND_VERSION)
				return -EPROTO;
			d.bind_node = q + 9;
			d.bind_sig = q + 9 + CR_PK_BYTES;
		}
		break;
	case NET_RESERVE_OK:
		d.rsv_count = get_be32(q);
		d.rsv_left = get_be64(q + 4);
		if (d.rsv_count == 0)
			return -EPROTO;
		break;
	case NET_LOCATOR:
		if (q[0] != NET_LOCATOR_VERSION)
			return -EPROTO;
		d.locator = q + 1;
		break;
	case NET_DIALBACK:
		if (q[0] != NET_DIALBACK_VERSION)
			return -EPROTO;
		d.port = (uint16_t)(q[1] << 8 | q[2]);
		if (d.port == 0)
			return -EPROTO;
		break;
	case NET_PUNCH:
	case NET_PUNCH_OK:
		if (q[0] != NET_PUNCH_VERSION)
			return -EPROTO;
		d.port = (uint16_t)(q[1] << 8 | q[2]);
		if (d.port == 0)
			return -EPROTO;
		break;
	case NET_DIALBACK_OK:
		d.result = get_be32(q);
		if (d.result > ERRNO_MAX)
			return -EPROTO;
		break;
	case NET_RELAY_RESERVE:
		if (q[0] != NET_RELAY_VERSION)
			return -EPROTO;
		break;
	case NET_RELAY_RESERVE_OK:
		d.keepalive_s = get_be32(q);
		d.circuits = get_be32(q + 4);
		if (d.keepalive_s == 0)
			return -EPROTO;
		break;
	case NET_RELAY_INCOMING:
		if (q[0] != NET_RELAY_VERSION)
			return -EPROTO;
		d.token = q + 1;
		break;
	case NET_HEAD_LIST_OK:
		if (plen < 4)
			return -EPROTO;
		d.n = get_be32(q);
		if (!heads_valid(d.n, q + 4, plen - 4))
			return -EPROTO;
		d.data = q + 4;
		d.data_len = plen - 4;
		break;
	case NET_PONG:
		d.bytes = get_be64(q);
		d.fragments = get_be64(q + 8);
		d.avail = get_be64(q + 16);
		d.quota = get_be64(q + 24);
		break;
	case NET_ERR:
		if (plen < 4 || plen - 4 > NET_ERRMSG_MAX)
			return -EPROTO;
		d.err = get_be32(q);
		if (d.err == 0 || d.err > ERRNO_MAX)
			return -EPROTO;
		d.errmsg = (const char *)q + 4;
		d.errmsg_len = plen - 4;
		if (!utf8_valid(q + 4, d.errmsg_len))
			return -EPROTO;
		break;
	default:	/* PING PUT_OK DEL_OK HEAD_PUT_OK: empty, size checked */
		break;
	}
	*m = d;
	return 0;
}

size_t
net_msg_data_offset(uint8_t type)
{
	switch (type) {
	case NET_PUT:
		return NET_MSG_HDR + FRAGID + CR_HASH_BYTES;
	case NET_GET_OK:
	case NET_HEAD_PUT:
		return NET_MSG_HDR;
	case NET_LIST_OK:	/* the entries */
	case NET_HEAD_LIST_OK:
	case NET_ERR:		/* the message */
		return NET_MSG_HDR + 4;
	default:
		return 0;
	}
}

/* 0 for a message that cannot be encoded (unknown type, a field off the
 * table); SIZE_MAX when the length does not fit a size_t. */
size_t
net_msg_encoded_len(const struct net_msg *m)
{
	long fixed = fixed_payload(m->type);
	uint64_t len;

	if (fixed == -2)
		return 0;
	if (fixed >= 0)
		return NET_MSG_HDR + (size_t)fixed;
	switch (m->type) {
	case NET_PUT:
	case NET_GET_OK:
		if (m->data_len == 0)
			return 0;
		if (m->data_len > SIZE_MAX - net_msg_data_offset(m->type))
			return SIZE_MAX;
		return net_msg_data_offset(m->type) + m->data_len;
	case NET_LIST_OK:
		if (m->n > NET_LIST_MAX)
			return 0;
		len = NET_MSG_HDR + 4 + (uint64_t)m->n * LIST_ENTRY;
		return len > SIZE_MAX ? SIZE_MAX : (size_t)len;
	case NET_ERR:
		if (m->errmsg_len > NET_ERRMSG_MAX)
			return 0;
		return NET_MSG_HDR + 4 + m->errmsg_len;
	case NET_HEAD_PUT:
		if (m->data_len < HEAD_MIN || m->data_len > HEAD_MAX)
			return 0;
		return NET_MSG_HDR + m->data_len;
	case NET_HEAD_LIST_OK:
		if (m->n > NET_HEADS_MAX ||
		    m->data_len > SIZE_MAX - NET_MSG_HDR - 4)
			return 0;
		return NET_MSG_HDR + 4 + m->data_len;
	case NET_RESERVE:
		return NET_MSG_HDR + (m->bind_node ? RSV_V1 : RSV_V0);
	case NET_GET:
		return NET_MSG_HDR + FRAGID + (m->ranged ? GET_RANGE : 0);
	}
	return 0;
}

/* Refuses to emit what net_msg_decode() would reject. */
static int
encodable(const struct net_msg *m)
{
	switch (m->type) {
	case NET_PUT:
		return m->fragid != NULL && m->hash != NULL;
	case NET_GET:
		return m->fragid != NULL && (!m->ranged || m->range_len != 0);
	case NET_DEL:
	case NET_LIST:
		return m->fragid != NULL;
	case NET_AUDIT:
		return m->fragid != NULL && m->nonce != NULL;
	case NET_AUDIT_OK:
		return m->answer != NULL;
	case NET_HEAD_PUT:
		return m->data != NULL;
	case NET_HEAD_LIST_OK:
		return heads_valid(m->n, m->data, m->data_len);
	case NET_RESERVE:
		return m->rsv_size != 0 && m->rsv_count != 0 &&
		    !m->bind_node == !m->bind_sig;
	case NET_RESERVE_OK:
		return m->rsv_count != 0;
	case NET_LOCATOR:
		return m->locator != NULL;
	case NET_DIALBACK:
	case NET_PUNCH:
	case NET_PUNCH_OK:
		return m->port != 0;
	case NET_DIALBACK_OK:
		return m->result <= ERRNO_MAX;
	case NET_RELAY_RESERVE_OK:
		return m->keepalive_s != 0;
	case NET_RELAY_INCOMING:
		return m->token != NULL;
	case NET_ERR:
		if (m->err == 0 || m->err > ERRNO_MAX ||
		    m->errmsg_len > NET_ERRMSG_MAX ||
		    (m->errmsg_len && !m->errmsg))
			return 0;
		return utf8_valid((const unsigned char *)m->errmsg,
		    m->errmsg_len);
	default:
		return 1;
	}
}

static int
has_bulk(uint8_t type)
{
	return type == NET_PUT || type == NET_GET_OK;
}

size_t
net_msg_head_len(const struct net_msg *m)
{
	size_t len = net_msg_encoded_len(m);

	if (len == 0 || len == SIZE_MAX)
		return 0;
	return has_bulk(m->type) ? net_msg_data_offset(m->type) : len;
}

int
net_msg_bulk_ok(uint8_t type, size_t head_len, size_t bulk_len)
{
	if (bulk_len == 0)
		return 0;
	if (!has_bulk(type) || head_len != net_msg_data_offset(type))
		return -EPROTO;
	return 0;
}

/* Writes the record up to (with_bulk = 0) or with its bulk. */
static ssize_t
encode(unsigned char *out, size_t cap, const struct net_msg *m, int with_bulk)
{
	size_t len = net_msg_encoded_len(m);
	unsigned char *q;

	if (len == 0 || !encodable(m))
		return -EINVAL;
	if (!with_bulk && has_bulk(m->type))
		len = net_msg_data_offset(m->type);
	if (len > cap || len > SSIZE_MAX)
		return -ENOSPC;
	out[0] = m->type;
	put_be64(out + 1, m->reqid);
	q = out + NET_MSG_HDR;
	switch (m->type) {
	case NET_PUT:
		memcpy(q, m->fragid, FRAGID);
		memcpy(q + FRAGID, m->hash, CR_HASH_BYTES);
		if (with_bulk && m->data)
			memcpy(q + FRAGID + CR_HASH_BYTES, m->data,
			    m->data_len);
		break;
	case NET_GET:
		memcpy(q, m->fragid, FRAGID);
		if (m->ranged) {
			q[FRAGID] = NET_RANGE_VERSION;
			put_be32(q + FRAGID + 1, m->range_off);
			put_be32(q + FRAGID + 5, m->range_len);
		}
		break;
	case NET_DEL:
		memcpy(q, m->fragid, FRAGID);
		break;
	case NET_LIST:
		memcpy(q, m->fragid, FRAGID);
		put_be32(q + FRAGID, m->max);
		break;
	case NET_AUDIT:
		memcpy(q, m->fragid, FRAGID);
		memcpy(q + FRAGID, m->nonce, CR_HASH_BYTES);
		break;
	case NET_AUDIT_OK:
		memcpy(q, m->answer, CR_HASH_BYTES);
		break;
	case NET_GET_OK:
		if (with_bulk && m->data)
			memcpy(q, m->data, m->data_len);
		break;
	case NET_LIST_OK:
		put_be32(q, m->n);
		if (m->entries && m->n)
			memcpy(q + 4, m->entries, (size_t)m->n * LIST_ENTRY);
		break;
	case NET_HEAD_PUT:
		memcpy(q, m->data, m->data_len);
		break;
	case NET_HEAD_LIST:
		put_be32(q, m->max);
		break;
	case NET_RESERVE:
		put_be32(q, m->rsv_size);
		put_be32(q + 4, m->rsv_count);
		if (m->bind_node) {
			q[8] = NET_BIND_VERSION;
			memcpy(q + 9, m->bind_node, CR_PK_BYTES);
			memcpy(q + 9 + CR_PK_BYTES, m->bind_sig, CR_BIND_BYTES);
		}
		break;
	case NET_RESERVE_OK:
		put_be32(q, m->rsv_count);
		put_be64(q + 4, m->rsv_left);
		break;
	case NET_LOCATOR:
		q[0] = NET_LOCATOR_VERSION;
		memcpy(q + 1, m->locator, CR_KEY_BYTES);
		break;
	case NET_DIALBACK:
		q[0] = NET_DIALBACK_VERSION;
		q[1] = (unsigned char)(m->port >> 8);
		q[2] = (unsigned char)m->port;
		break;
	case NET_PUNCH:
	case NET_PUNCH_OK:
		q[0] = NET_PUNCH_VERSION;
		q[1] = (unsigned char)(m->port >> 8);
		q[2] = (unsigned char)m->port;
		break;
	case NET_DIALBACK_OK:
		put_be32(q, m->result);
		break;
	case NET_RELAY_RESERVE:
		q[0] = NET_RELAY_VERSION;
		break;
	case NET_RELAY_RESERVE_OK:
		put_be32(q, m->keepalive_s);
		put_be32(q + 4, m->circuits);
		break;
	case NET_RELAY_INCOMING:
		q[0] = NET_RELAY_VERSION;
		memcpy(q + 1, m->token, NET_RELAY_TOKEN_BYTES);
		break;
	case NET_HEAD_LIST_OK:
		put_be32(q, m->n);
		if (m->data_len)
			memcpy(q + 4, m->data, m->data_len);
		break;
	case NET_PONG:
		put_be64(q, m->bytes);
		put_be64(q + 8, m->fragments);
		put_be64(q + 16, m->avail);
		put_be64(q + 24, m->quota);
		break;
	case NET_ERR:
		put_be32(q, m->err);
		if (m->errmsg_len)
			memcpy(q + 4, m->errmsg, m->errmsg_len);
		break;
	default:	/* PING PUT_OK DEL_OK HEAD_PUT_OK */
		break;
	}
	return (ssize_t)len;
}

ssize_t
net_msg_encode(unsigned char *out, size_t cap, const struct net_msg *m)
{
	return encode(out, cap, m, 1);
}

ssize_t
net_msg_encode_head(unsigned char *out, size_t cap, const struct net_msg *m,
    const unsigned char **bulk, size_t *bulk_len)
{
	ssize_t n;

	if (has_bulk(m->type) && !m->data)
		return -EINVAL;
	if ((n = encode(out, cap, m, 0)) < 0)
		return n;
	*bulk = has_bulk(m->type) ? m->data : NULL;
	*bulk_len = has_bulk(m->type) ? m->data_len : 0;
	return n;
}

/* ---- framer -------------------------------------------------------------- */

/* The longest header a record with bulk can have. */
#define BULK_HDR_MAX	(NET_MSG_HDR + FRAGID + CR_HASH_BYTES)

void
net_framer_init(struct net_framer *f)
{
	memset(f, 0, sizeof *f);
}

void
net_framer_release(struct net_framer *f)
{
	free(f->cur.hdr);
	free(f->cur.rec);
	memset(f, 0, sizeof *f);
}

size_t
net_framer_bulk_dst(struct net_framer *f, unsigned char **dst)
{
	const struct net_frame *c = &f->cur;

	if (!c->hdr || f->have < c->hdr_len)
		return 0;
	*dst = c->rec + (c->hdr_len - CR_STREAM_ABYTES) +
	    (f->have - c->hdr_len);
	return c->hdr_len + c->bulk_len - f->have;
}

void
net_framer_bulk_got(struct net_framer *f, size_t n)
{
	f->have += n;
}

int
net_framer_feed(struct net_framer *f, const unsigned char **p, size_t *n,
    struct net_frame *out)
{
	struct net_frame *c = &f->cur;
	size_t take, total;

	while (f->pfx_have < sizeof f->pfx) {
		if (*n == 0)
			return 0;
		f->pfx[f->pfx_have++] = **p;
		(*p)++;
		(*n)--;
	}
	if (!c->hdr) {
		uint64_t l = get_be32(f->pfx), b = get_be32(f->pfx + 4);

		/* The state stays put, so a broken stream stays broken.
		 * A bulk can only follow the header of PUT or GET_OK: a
		 * longer one is refused before anything is allocated. */
		if (l < CR_STREAM_ABYTES + NET_MSG_HDR || l + b > NET_FRAME_MAX ||
		    (b > 0 && l > CR_STREAM_ABYTES + BULK_HDR_MAX))
			return -EPROTO;
		c->hdr = malloc(l);
		c->rec = malloc(l - CR_STREAM_ABYTES + b);
		if (!c->hdr || !c->rec) {
			free(c->hdr);
			free(c->rec);
			c->hdr = c->rec = NULL;
			return -ENOMEM;
		}
		c->hdr_len = l;
		c->bulk_len = b;
		f->have = 0;
	}
	total = c->hdr_len + c->bulk_len;
	while (f->have < total && *n > 0) {
		unsigned char *dst;

		if (f->have < c->hdr_len) {
			dst = c->hdr + f->have;
			take = c->hdr_len - f->have;
		} else {
			/* The bulk goes straight to its place in the record. */
			dst = c->rec + (c->hdr_len - CR_STREAM_ABYTES) +
			    (f->have - c->hdr_len);
			take = total - f->have;
		}
		if (take > *n)
			take = *n;
		memcpy(dst, *p, take);
		f->have += take;
		*p += take;
		*n -= take;
	}
	if (f->have < total)
		return 0;
	*out = *c;
	memset(c, 0, sizeof *c);
	f->have = 0;
	f->pfx_have = 0;
	return 1;
}
