/* tests/unit/test_wire.c - net/wire.c: record codec and stream framer. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/internal.h"
#include "test.h"
#include "util.h"

#define ENTRY (STORE_FRAGID_BYTES + 8)

static const unsigned char fid[STORE_FRAGID_BYTES] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
	18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33,
};
static const unsigned char fhash[CR_HASH_BYTES] = {
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
	0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5,
	0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
};
#define PUT_OFF (NET_MSG_HDR + STORE_FRAGID_BYTES + CR_HASH_BYTES)	/* 74 */

/* Encodes m, checks the length, decodes into out. */
static int
enc_dec(const struct net_msg *m, unsigned char *buf, size_t cap,
    struct net_msg *out)
{
	ssize_t len = net_msg_encode(buf, cap, m);

	if (len < 0)
		return (int)len;
	if ((size_t)len != net_msg_encoded_len(m))
		return -1000;
	return net_msg_decode(out, buf, (size_t)len) == 0 ? (int)len : -1001;
}

static int
test_round_trip_fixed(void)
{
	static const uint8_t empty[] = { NET_PING, NET_PUT_OK, NET_DEL_OK };
	unsigned char buf[128];
	struct net_msg m, d;

	for (size_t i = 0; i < ARRAY_SIZE(empty); i++) {
		memset(&m, 0, sizeof m);
		m.type = empty[i];
		m.reqid = 0x0102030405060708ull + i;
		CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR);
		CHECK_EQ(d.type, empty[i]);
		CHECK(d.reqid == m.reqid);
		CHECK_EQ(buf[1], 1);	/* big-endian request id */
	}
	for (uint8_t t = NET_GET; t <= NET_DEL; t++) {
		memset(&m, 0, sizeof m);
		m.type = t;
		m.reqid = UINT64_MAX;
		m.fragid = fid;
		CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), 42);
		CHECK_EQ(d.type, t);
		CHECK(d.reqid == UINT64_MAX);
		CHECK_MEM(d.fragid, fid, sizeof fid);
		CHECK(d.fragid == buf + NET_MSG_HDR);
	}
	memset(&m, 0, sizeof m);
	m.type = NET_LIST;
	m.reqid = 9;
	m.fragid = fid;
	m.max = 0xdeadbeef;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), 46);
	CHECK_MEM(d.fragid, fid, sizeof fid);
	CHECK(d.max == 0xdeadbeef);
	CHECK_EQ(buf[42], 0xde);

	memset(&m, 0, sizeof m);
	m.type = NET_PONG;
	m.reqid = 10;
	m.bytes = 1;
	m.fragments = 2;
	m.avail = UINT64_MAX;
	m.quota = 1ull << 40;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), 41);
	CHECK(d.bytes == 1 && d.fragments == 2 && d.avail == UINT64_MAX &&
	    d.quota == 1ull << 40);
	return 0;
}

static int
test_round_trip_audit(void)
{
	unsigned char buf[128], nonce[32], answer[32];
	struct net_msg m, d;

	for (int i = 0; i < 32; i++) {
		nonce[i] = (unsigned char)(0xa0 + i);
		answer[i] = (unsigned char)(0x10 + i);
	}
	memset(&m, 0, sizeof m);
	m.type = NET_AUDIT;
	m.reqid = 11;
	m.fragid = fid;
	m.nonce = nonce;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 33 + 32);
	CHECK_EQ(d.type, NET_AUDIT);
	CHECK(d.reqid == 11);
	CHECK_MEM(d.fragid, fid, sizeof fid);
	CHECK_MEM(d.nonce, nonce, 32);
	CHECK(d.nonce == buf + NET_MSG_HDR + 33);
	CHECK(d.answer == NULL);
	/* exact size: one short, one extra */
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 64), -EPROTO);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 66), -EPROTO);
	/* no nonce or fragid: refused */
	m.nonce = NULL;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	m.nonce = nonce;
	m.fragid = NULL;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	m.fragid = fid;
	CHECK_EQ(net_msg_encode(buf, NET_MSG_HDR + 64, &m), -ENOSPC);

	memset(&m, 0, sizeof m);
	m.type = NET_AUDIT_OK;
	m.reqid = 12;
	m.answer = answer;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 32);
	CHECK_EQ(d.type, NET_AUDIT_OK);
	CHECK_MEM(d.answer, answer, 32);
	CHECK(d.fragid == NULL && d.nonce == NULL);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 31), -EPROTO);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 33), -EPROTO);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR), -EPROTO);
	m.answer = NULL;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	return 0;
}

static int
test_round_trip_variable(void)
{
	unsigned char buf[256], data[100], entries[3 * ENTRY];
	struct net_msg m, d;

	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)(i * 7);
	memset(&m, 0, sizeof m);
	m.type = NET_PUT;
	m.reqid = 77;
	m.fragid = fid;
	m.hash = fhash;
	m.data = data;
	m.data_len = sizeof data;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), PUT_OFF + sizeof data);
	CHECK_EQ(d.type, NET_PUT);
	CHECK_MEM(d.fragid, fid, sizeof fid);
	CHECK_MEM(d.hash, fhash, sizeof fhash);
	CHECK(d.hash == buf + NET_MSG_HDR + STORE_FRAGID_BYTES);
	CHECK_EQ(d.data_len, sizeof data);
	CHECK_MEM(d.data, data, sizeof data);
	CHECK_EQ(net_msg_data_offset(NET_PUT), 74);

	/* data NULL: the caller copies the bytes in place itself */
	m.data = NULL;
	memset(buf, 0, sizeof buf);
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), PUT_OFF + sizeof data);
	memcpy(buf + net_msg_data_offset(NET_PUT), data, sizeof data);
	CHECK_EQ(net_msg_decode(&d, buf, PUT_OFF + sizeof data), 0);
	CHECK_MEM(d.data, data, sizeof data);
	CHECK_MEM(d.hash, fhash, sizeof fhash);

	memset(&m, 0, sizeof m);
	m.type = NET_GET_OK;
	m.reqid = 78;
	m.data = data;
	m.data_len = 1;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), 10);
	CHECK_EQ(d.data_len, 1);
	CHECK_EQ(d.data[0], data[0]);
	CHECK_EQ(net_msg_data_offset(NET_GET_OK), NET_MSG_HDR);

	for (size_t i = 0; i < sizeof entries; i++)
		entries[i] = (unsigned char)(i ^ 0x5a);
	for (uint32_t n = 0; n <= 3; n++) {
		memset(&m, 0, sizeof m);
		m.type = NET_LIST_OK;
		m.reqid = 79;
		m.n = n;
		m.entries = entries;
		CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), 13 + n * ENTRY);
		CHECK_EQ(d.n, n);
		CHECK_MEM(d.entries, entries, n * ENTRY);
	}

	memset(&m, 0, sizeof m);
	m.type = NET_ERR;
	m.reqid = 80;
	m.err = EDQUOT;
	m.errmsg = "quota exceeded";
	m.errmsg_len = strlen(m.errmsg);
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), 13 + 14);
	CHECK_EQ(d.err, EDQUOT);
	CHECK_EQ(d.errmsg_len, 14);
	CHECK_MEM(d.errmsg, "quota exceeded", 14);
	m.errmsg_len = 0;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), 13);
	CHECK_EQ(d.errmsg_len, 0);
	return 0;
}

static int
test_encode_refuses(void)
{
	unsigned char buf[64], big[300];
	struct net_msg m;

	memset(&m, 0, sizeof m);
	m.type = 0x09;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	m.type = NET_PING;
	CHECK_EQ(net_msg_encode(buf, 8, &m), -ENOSPC);
	CHECK_EQ(net_msg_encode(buf, 9, &m), 9);
	m.type = NET_PUT;		/* no data */
	m.fragid = fid;
	m.hash = fhash;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	m.data = big;			/* no hash */
	m.data_len = 1;
	m.hash = NULL;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	m.hash = fhash;		/* now valid, but 75 bytes do not fit 64 */
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -ENOSPC);
	m.data = NULL;
	m.data_len = 0;
	m.type = NET_LIST_OK;
	m.n = NET_LIST_MAX + 1;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	memset(&m, 0, sizeof m);
	m.type = NET_ERR;		/* errno 0 */
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	m.err = 4096;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	memset(big, 'x', sizeof big);
	m.err = EIO;
	m.errmsg = (const char *)big;
	m.errmsg_len = NET_ERRMSG_MAX + 1;
	CHECK_EQ(net_msg_encode(big, sizeof big, &m), -EINVAL);
	return 0;
}

/* A record of type t with payload length plen (bytes 0xab). */
static size_t
rec(unsigned char *buf, uint8_t t, size_t plen)
{
	buf[0] = t;
	put_be64(buf + 1, 42);
	memset(buf + NET_MSG_HDR, 0xab, plen);
	return NET_MSG_HDR + plen;
}

/* GET with a range (net/internal.h): round trip, and malformed ranges
 * (other version, empty, a size between the two forms) refused. */
static int
test_get_range(void)
{
	unsigned char buf[128];
	struct net_msg m, d;
	size_t n;

	memset(&m, 0, sizeof m);
	m.type = NET_GET;
	m.reqid = 5;
	m.fragid = fid;
	m.ranged = 1;
	m.range_off = 0x01020304;
	m.range_len = 65552;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), 42 + 9);
	CHECK(d.ranged && d.range_off == 0x01020304 && d.range_len == 65552);
	CHECK_MEM(d.fragid, fid, sizeof fid);
	CHECK_EQ(buf[42], NET_RANGE_VERSION);
	/* Without a range: the old 42 bytes, no range read back. */
	m.ranged = 0;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), 42);
	CHECK(!d.ranged);
	/* Nothing to read: not encodable, not decodable. */
	m.ranged = 1;
	m.range_len = 0;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	n = rec(buf, NET_GET, 33 + 9);
	buf[42] = NET_RANGE_VERSION;
	put_be32(buf + 47, 0);
	CHECK_EQ(net_msg_decode(&d, buf, n), -EPROTO);
	put_be32(buf + 47, 1);
	CHECK_EQ(net_msg_decode(&d, buf, n), 0);
	buf[42] = 2;			/* a later version */
	CHECK_EQ(net_msg_decode(&d, buf, n), -EPROTO);
	for (size_t l = 34; l < 33 + 9; l++)
		CHECK_EQ(net_msg_decode(&d, buf, rec(buf, NET_GET, l)), -EPROTO);
	CHECK_EQ(net_msg_decode(&d, buf, rec(buf, NET_GET, 43)), -EPROTO);
	return 0;
}

static int
test_decode_malformed(void)
{
	static const uint8_t unknown[] = { 0x00, 0x09, 0x7f, 0x80, 0x89, 0xfe };
	unsigned char buf[NET_MSG_HDR + 4 + 2 * ENTRY + 300] = { 0 };
	struct net_msg m;
	size_t n;

	CHECK_EQ(net_msg_decode(&m, buf, 0), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, NULL, 0), -EPROTO);
	rec(buf, NET_PING, 0);
	for (size_t i = 0; i < NET_MSG_HDR; i++)
		CHECK_EQ(net_msg_decode(&m, buf, i), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, NET_MSG_HDR), 0);
	for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
		n = rec(buf, unknown[i], 0);
		CHECK_EQ(net_msg_decode(&m, buf, n), -EPROTO);
		n = rec(buf, unknown[i], 33);
		CHECK_EQ(net_msg_decode(&m, buf, n), -EPROTO);
	}

	/* PUT: fragid, hash and at least one byte */
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_PUT, 65)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_PUT, 64)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_PUT, 34)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_PUT, 66)), 0);
	CHECK_EQ(m.data_len, 1);
	CHECK(m.hash == buf + 42 && m.data == buf + 74);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_GET_OK, 0)), -EPROTO);
	/* fixed sizes: one short and one extra byte */
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_GET, 34)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_GET, 32)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_DEL, 34)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_LIST, 36)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_LIST, 38)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_PING, 1)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_PUT_OK, 1)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_DEL_OK, 1)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_PONG, 31)), -EPROTO);
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_PONG, 33)), -EPROTO);

	/* LIST_OK: count must match the size */
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_LIST_OK, 3)), -EPROTO);
	n = rec(buf, NET_LIST_OK, 4 + 2 * ENTRY);
	put_be32(buf + NET_MSG_HDR, 2);
	CHECK_EQ(net_msg_decode(&m, buf, n), 0);
	CHECK_EQ(net_msg_decode(&m, buf, n - 1), -EPROTO);
	put_be32(buf + NET_MSG_HDR, 1);
	CHECK_EQ(net_msg_decode(&m, buf, n), -EPROTO);
	put_be32(buf + NET_MSG_HDR, 3);
	CHECK_EQ(net_msg_decode(&m, buf, n), -EPROTO);
	put_be32(buf + NET_MSG_HDR, NET_LIST_MAX + 1);
	CHECK_EQ(net_msg_decode(&m, buf, n), -EPROTO);
	/* huge counts */
	put_be32(buf + NET_MSG_HDR, 0x063e7064);
	CHECK_EQ(net_msg_decode(&m, buf, n), -EPROTO);
	put_be32(buf + NET_MSG_HDR, UINT32_MAX);
	CHECK_EQ(net_msg_decode(&m, buf, n), -EPROTO);

	/* ERR: errno 1..4095, message 0..255 bytes of UTF-8 */
	CHECK_EQ(net_msg_decode(&m, buf, rec(buf, NET_ERR, 3)), -EPROTO);
	n = rec(buf, NET_ERR, 4);
	put_be32(buf + NET_MSG_HDR, 0);
	CHECK_EQ(net_msg_decode(&m, buf, n), -EPROTO);
	put_be32(buf + NET_MSG_HDR, 4096);
	CHECK_EQ(net_msg_decode(&m, buf, n), -EPROTO);
	put_be32(buf + NET_MSG_HDR, 0x80000005);
	CHECK_EQ(net_msg_decode(&m, buf, n), -EPROTO);
	put_be32(buf + NET_MSG_HDR, 5);
	CHECK_EQ(net_msg_decode(&m, buf, n), 0);
	CHECK_EQ(m.err, 5);
	n = rec(buf, NET_ERR, 4 + NET_ERRMSG_MAX);
	put_be32(buf + NET_MSG_HDR, 5);
	memset(buf + 13, 'a', NET_ERRMSG_MAX);
	CHECK_EQ(net_msg_decode(&m, buf, n), 0);
	CHECK_EQ(m.errmsg_len, NET_ERRMSG_MAX);
	buf[n] = 'a';
	CHECK_EQ(net_msg_decode(&m, buf, n + 1), -EPROTO);	/* 256 bytes */
	buf[13] = 0xff;						/* not UTF-8 */
	CHECK_EQ(net_msg_decode(&m, buf, 14), -EPROTO);
	buf[13] = 0xc3;						/* truncated */
	CHECK_EQ(net_msg_decode(&m, buf, 14), -EPROTO);
	buf[14] = 0xa9;						/* e acute */
	CHECK_EQ(net_msg_decode(&m, buf, 15), 0);
	return 0;
}

/* ---- framer (format v2: L | B | header ciphertext | bulk) -------------- */
#define AB CR_STREAM_ABYTES

/* Writes a frame at w; returns its length. */
static size_t
put_frame(unsigned char *w, const void *hdr, uint32_t hl, const void *bulk,
    uint32_t bl)
{
	put_be32(w, hl);
	put_be32(w + 4, bl);
	memcpy(w + 8, hdr, hl);
	if (bl)
		memcpy(w + 8 + hl, bulk, bl);
	return 8 + (size_t)hl + bl;
}

static int
test_framer_basic(void)
{
	unsigned char hdr1[AB + 20], hdr2[AB + PUT_OFF], in[512];
	struct net_framer f;
	struct net_frame fr;
	const unsigned char *p = in;
	size_t n, l1, l2;

	memset(hdr1, 0x11, sizeof hdr1);
	memset(hdr2, 0x22, sizeof hdr2);
	l1 = put_frame(in, hdr1, sizeof hdr1, NULL, 0);
	l2 = put_frame(in + l1, hdr2, sizeof hdr2, "hello", 5);
	n = l1 + l2;
	net_framer_init(&f);
	/* two frames in one feed */
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 1);
	CHECK_EQ(fr.hdr_len, sizeof hdr1);
	CHECK_EQ(fr.bulk_len, 0);
	CHECK_MEM(fr.hdr, hdr1, sizeof hdr1);
	CHECK(fr.rec != NULL);
	CHECK_EQ(n, l2);
	free(fr.hdr);
	free(fr.rec);
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 1);
	CHECK_EQ(fr.hdr_len, sizeof hdr2);
	CHECK_EQ(fr.bulk_len, 5);
	CHECK_MEM(fr.hdr, hdr2, sizeof hdr2);
	/* the bulk is already where the decrypted header will end */
	CHECK_MEM(fr.rec + PUT_OFF, "hello", 5);
	CHECK_EQ(n, 0);
	free(fr.hdr);
	free(fr.rec);
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 0);
	net_framer_release(&f);

	/* one byte at a time, prefix included */
	net_framer_init(&f);
	int frames = 0;
	for (size_t i = 0; i < l1 + l2; i++) {
		const unsigned char *q = in + i;
		size_t one = 1;
		int rc = net_framer_feed(&f, &q, &one, &fr);

		CHECK_EQ(one, 0);
		if (i == l1 - 1 || i == l1 + l2 - 1) {
			CHECK_EQ(rc, 1);
			CHECK_EQ(fr.bulk_len, i == l1 - 1 ? 0 : 5);
			if (fr.bulk_len)
				CHECK_MEM(fr.rec + PUT_OFF, "hello", 5);
			free(fr.hdr);
			free(fr.rec);
			frames++;
		} else {
			CHECK_EQ(rc, 0);
		}
	}
	CHECK_EQ(frames, 2);
	net_framer_release(&f);
	return 0;
}

/* A bulk read straight into the record (net_framer_bulk_dst, as the
 * session's socket does) in two parts, with the framer fed the header and
 * the first bulk bytes before and the next frame after: the record holds
 * the bulk where the decrypted header ends, and the next frame still
 * parses. Outside a bulk there is no destination. */
static int
test_framer_bulk_direct(void)
{
	unsigned char hdr[AB + PUT_OFF], bulk[3000], in[8192], *dst = NULL;
	struct net_framer f;
	struct net_frame fr;
	const unsigned char *p = in;
	size_t n, l1, l2;

	memset(hdr, 0x33, sizeof hdr);
	for (size_t i = 0; i < sizeof bulk; i++)
		bulk[i] = (unsigned char)(i * 7 + 1);
	l1 = put_frame(in, hdr, sizeof hdr, bulk, sizeof bulk);
	l2 = put_frame(in + l1, hdr, sizeof hdr, NULL, 0);
	net_framer_init(&f);
	CHECK_EQ(net_framer_bulk_dst(&f, &dst), 0);	/* no frame yet */
	n = 8 + sizeof hdr - 1;				/* header but one byte */
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 0);
	CHECK_EQ(net_framer_bulk_dst(&f, &dst), 0);	/* still in the header */
	n = 1 + 100;					/* its last byte, 100 of bulk */
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 0);
	CHECK_EQ(net_framer_bulk_dst(&f, &dst), sizeof bulk - 100);
	memcpy(dst, bulk + 100, 1000);
	net_framer_bulk_got(&f, 1000);
	CHECK_EQ(net_framer_bulk_dst(&f, &dst), sizeof bulk - 1100);
	memcpy(dst, bulk + 1100, sizeof bulk - 1100);
	net_framer_bulk_got(&f, sizeof bulk - 1100);
	n = 0;
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 1);
	CHECK_EQ(fr.bulk_len, sizeof bulk);
	CHECK_MEM(fr.hdr, hdr, sizeof hdr);
	CHECK_MEM(fr.rec + PUT_OFF, bulk, sizeof bulk);
	free(fr.hdr);
	free(fr.rec);
	CHECK_EQ(net_framer_bulk_dst(&f, &dst), 0);
	p = in + l1;
	n = l2;
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 1);
	CHECK_EQ(fr.bulk_len, 0);
	CHECK_MEM(fr.hdr, hdr, sizeof hdr);
	free(fr.hdr);
	free(fr.rec);
	net_framer_release(&f);
	return 0;
}

/* Feeds an 8-byte prefix L | B to a fresh framer. */
static int
feed_prefix(uint32_t l, uint32_t b)
{
	unsigned char in[8];
	const unsigned char *p = in;
	size_t n = sizeof in;
	struct net_framer f;
	struct net_frame fr;
	int rc;

	put_be32(in, l);
	put_be32(in + 4, b);
	net_framer_init(&f);
	rc = net_framer_feed(&f, &p, &n, &fr);
	if (rc == 1) {
		free(fr.hdr);
		free(fr.rec);
	}
	net_framer_release(&f);
	return rc;
}

static int
test_framer_bad_length(void)
{
	struct net_framer f;
	struct net_frame fr;
	unsigned char in[8] = { 0 };
	const unsigned char *p;
	size_t n;

	net_framer_init(&f);
	p = in;
	n = 8;		/* length 0 */
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), -EPROTO);
	n = 8;		/* and it stays broken */
	p = in;
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), -EPROTO);
	net_framer_release(&f);

	CHECK_EQ(feed_prefix(AB + NET_MSG_HDR - 1, 0), -EPROTO);
	CHECK_EQ(feed_prefix(AB + NET_MSG_HDR, 0), 0);
	CHECK_EQ(feed_prefix(NET_FRAME_MAX + 1, 0), -EPROTO);
	CHECK_EQ(feed_prefix(UINT32_MAX, 0), -EPROTO);
	CHECK_EQ(feed_prefix(NET_FRAME_MAX, 0), 0);
	/* L + B over the maximum, without wrapping */
	CHECK_EQ(feed_prefix(AB + PUT_OFF, NET_FRAME_MAX - AB - PUT_OFF), 0);
	CHECK_EQ(feed_prefix(AB + PUT_OFF, NET_FRAME_MAX - AB - PUT_OFF + 1),
	    -EPROTO);
	CHECK_EQ(feed_prefix(AB + PUT_OFF, UINT32_MAX), -EPROTO);
	CHECK_EQ(feed_prefix(UINT32_MAX, UINT32_MAX), -EPROTO);
	/* a bulk after a header longer than any data offset */
	CHECK_EQ(feed_prefix(AB + PUT_OFF + 1, 1), -EPROTO);
	CHECK_EQ(feed_prefix(AB + NET_MSG_HDR - 1, 1), -EPROTO);

	/* the largest frame: split prefix, then header and bulk */
	uint32_t bl = NET_FRAME_MAX - AB - PUT_OFF;
	net_framer_init(&f);
	put_be32(in, AB + PUT_OFF);
	put_be32(in + 4, bl);
	for (int i = 0; i < 8; i++) {
		p = in + i;
		n = 1;
		CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 0);
	}
	unsigned char *body = calloc(1, NET_FRAME_MAX);
	CHECK(body);
	body[0] = 0x41;
	body[NET_FRAME_MAX - 1] = 0x42;
	p = body;
	n = NET_FRAME_MAX - 1;
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 0);
	p = body + NET_FRAME_MAX - 1;
	n = 1;
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 1);
	CHECK_EQ(fr.hdr_len, AB + PUT_OFF);
	CHECK_EQ(fr.bulk_len, bl);
	CHECK_EQ(fr.hdr[0], 0x41);
	CHECK_EQ(fr.rec[PUT_OFF + bl - 1], 0x42);
	free(fr.hdr);
	free(fr.rec);
	free(body);
	/* release with a half-read frame frees it (valgrind/ASan check) */
	put_be32(in, AB + PUT_OFF);
	put_be32(in + 4, 10);
	p = in;
	n = 8;
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 0);
	p = body = calloc(1, AB + PUT_OFF + 3);
	n = AB + PUT_OFF + 3;	/* into the bulk */
	CHECK_EQ(net_framer_feed(&f, &p, &n, &fr), 0);
	free(body);
	net_framer_release(&f);
	return 0;
}

static int
test_bulk_rules(void)
{
	CHECK_EQ(net_msg_bulk_ok(NET_PING, NET_MSG_HDR, 0), 0);
	CHECK_EQ(net_msg_bulk_ok(NET_PUT, PUT_OFF + 5, 0), 0);
	CHECK_EQ(net_msg_bulk_ok(NET_PING, NET_MSG_HDR, 1), -EPROTO);
	CHECK_EQ(net_msg_bulk_ok(NET_HEAD_PUT, NET_MSG_HDR, 100), -EPROTO);
	CHECK_EQ(net_msg_bulk_ok(NET_LIST_OK, NET_MSG_HDR + 4, 41), -EPROTO);
	CHECK_EQ(net_msg_bulk_ok(NET_ERR, NET_MSG_HDR + 4, 3), -EPROTO);
	CHECK_EQ(net_msg_bulk_ok(0x42, NET_MSG_HDR, 3), -EPROTO);
	CHECK_EQ(net_msg_bulk_ok(NET_PUT, PUT_OFF, 1), 0);
	CHECK_EQ(net_msg_bulk_ok(NET_PUT, PUT_OFF - 1, 1), -EPROTO);
	CHECK_EQ(net_msg_bulk_ok(NET_PUT, PUT_OFF + 1, 1), -EPROTO);
	CHECK_EQ(net_msg_bulk_ok(NET_PUT, NET_MSG_HDR + STORE_FRAGID_BYTES, 9),
	    -EPROTO);
	CHECK_EQ(net_msg_bulk_ok(NET_GET_OK, NET_MSG_HDR, 7), 0);
	CHECK_EQ(net_msg_bulk_ok(NET_GET_OK, NET_MSG_HDR + 1, 7), -EPROTO);
	return 0;
}

static int
test_encode_head(void)
{
	unsigned char buf[128], data[50], entries[2 * ENTRY] = { 0 };
	const unsigned char *bulk;
	size_t bl;
	struct net_msg m;

	memset(data, 0x5c, sizeof data);
	memset(&m, 0, sizeof m);
	m.type = NET_PUT;
	m.reqid = 5;
	m.fragid = fid;
	m.hash = fhash;
	m.data = data;
	m.data_len = sizeof data;
	CHECK_EQ(net_msg_head_len(&m), PUT_OFF);
	/* the header alone fits where the whole record would not */
	CHECK_EQ(net_msg_encode_head(buf, PUT_OFF, &m, &bulk, &bl), PUT_OFF);
	CHECK(bulk == data);
	CHECK_EQ(bl, sizeof data);
	CHECK_EQ(buf[0], NET_PUT);
	CHECK_MEM(buf + NET_MSG_HDR, fid, sizeof fid);
	CHECK_MEM(buf + 42, fhash, sizeof fhash);
	CHECK_EQ(net_msg_encode_head(buf, PUT_OFF - 1, &m, &bulk, &bl), -ENOSPC);
	m.data = NULL;		/* the bulk is needed here */
	CHECK_EQ(net_msg_encode_head(buf, sizeof buf, &m, &bulk, &bl), -EINVAL);

	memset(&m, 0, sizeof m);
	m.type = NET_GET_OK;
	m.data = data;
	m.data_len = 1;
	CHECK_EQ(net_msg_encode_head(buf, sizeof buf, &m, &bulk, &bl),
	    NET_MSG_HDR);
	CHECK(bulk == data && bl == 1);
	m.data_len = 0;
	CHECK_EQ(net_msg_head_len(&m), 0);
	CHECK_EQ(net_msg_encode_head(buf, sizeof buf, &m, &bulk, &bl), -EINVAL);

	memset(&m, 0, sizeof m);
	m.type = NET_LIST_OK;	/* no bulk: the whole record is header */
	m.n = 2;
	m.entries = entries;
	CHECK_EQ(net_msg_head_len(&m), NET_MSG_HDR + 4 + 2 * ENTRY);
	CHECK_EQ(net_msg_encode_head(buf, sizeof buf, &m, &bulk, &bl),
	    NET_MSG_HDR + 4 + 2 * ENTRY);
	CHECK(bulk == NULL && bl == 0);
	m.type = NET_PING;
	CHECK_EQ(net_msg_encode_head(buf, sizeof buf, &m, &bulk, &bl),
	    NET_MSG_HDR);
	CHECK(bulk == NULL && bl == 0);
	return 0;
}

/* A stream of records (header "ciphertext" = AB filler | plaintext) through
 * the framer; copying the plaintext header to the front of rec, as the
 * decryption does, gives the same records. */
static int
test_framer_records(void)
{
	unsigned char stream[2048], *w = stream, data[20] = "twenty bytes of data";
	unsigned char hb[AB + 128];
	struct net_msg m;
	struct net_framer f;
	const unsigned char *bulk;
	size_t bl;
	ssize_t hl;

	for (int i = 0; i < 6; i++) {
		memset(&m, 0, sizeof m);
		m.type = i % 3 == 0 ? NET_PUT : i % 3 == 1 ? NET_GET : NET_GET_OK;
		m.reqid = (uint64_t)i;
		m.fragid = fid;
		m.hash = fhash;
		m.data = data;
		m.data_len = sizeof data - (size_t)i;
		memset(hb, 0xee, AB);
		hl = net_msg_encode_head(hb + AB, sizeof hb - AB, &m, &bulk, &bl);
		CHECK(hl > 0);
		w += put_frame(w, hb, (uint32_t)(AB + hl), bulk, (uint32_t)bl);
	}
	for (size_t chunk = 1; chunk <= 64; chunk += 7) {
		int seen = 0;
		net_framer_init(&f);
		for (unsigned char *r = stream; r < w; ) {
			const unsigned char *p = r;
			size_t n = (size_t)(w - r) < chunk ? (size_t)(w - r) : chunk;
			r += n;
			for (;;) {
				struct net_frame fr;
				int rc = net_framer_feed(&f, &p, &n, &fr);
				CHECK(rc >= 0);
				if (rc == 0)
					break;
				size_t h = fr.hdr_len - AB;
				memcpy(fr.rec, fr.hdr + AB, h);
				CHECK_EQ(net_msg_bulk_ok(fr.rec[0], h,
				    fr.bulk_len), 0);
				CHECK_EQ(net_msg_decode(&m, fr.rec,
				    h + fr.bulk_len), 0);
				CHECK(m.reqid == (uint64_t)seen);
				switch (seen % 3) {
				case 0:
					CHECK_EQ(m.type, NET_PUT);
					CHECK_MEM(m.fragid, fid, sizeof fid);
					CHECK_MEM(m.hash, fhash, sizeof fhash);
					break;
				case 1:
					CHECK_EQ(m.type, NET_GET);
					CHECK_EQ(fr.bulk_len, 0);
					CHECK_MEM(m.fragid, fid, sizeof fid);
					break;
				default:
					CHECK_EQ(m.type, NET_GET_OK);
				}
				if (seen % 3 != 1) {
					CHECK_EQ(fr.bulk_len,
					    sizeof data - (size_t)seen);
					CHECK_EQ(m.data_len, fr.bulk_len);
					CHECK_MEM(m.data, data, m.data_len);
				}
				free(fr.hdr);
				free(fr.rec);
				seen++;
			}
		}
		CHECK_EQ(seen, 6);
		net_framer_release(&f);
	}
	return 0;
}

/* ---- heads ------------------------------------------------------------- */
#define HMIN ((size_t)CR_HEAD_FIXED)
#define HMAX ((size_t)CR_HEAD_FIXED + CR_HEAD_BLOB_MAX)

static int
test_heads_round_trip(void)
{
	size_t cap = NET_MSG_HDR + 4 + 3 * (4 + HMIN + 40) + 64;
	unsigned char *buf = malloc(HMAX + 64), head[HMIN + 40], *ents;
	struct net_msg m, d;
	const unsigned char *p;
	size_t off, len, el;

	CHECK(buf != NULL);
	for (size_t i = 0; i < sizeof head; i++)
		head[i] = (unsigned char)(i * 7);
	/* HEAD_PUT: the head, opaque here, within its bounds */
	memset(&m, 0, sizeof m);
	m.type = NET_HEAD_PUT;
	m.reqid = 77;
	m.data = head;
	m.data_len = sizeof head;
	CHECK_EQ(enc_dec(&m, buf, cap, &d), NET_MSG_HDR + sizeof head);
	CHECK_EQ(d.type, NET_HEAD_PUT);
	CHECK_EQ(d.data_len, sizeof head);
	CHECK_MEM(d.data, head, sizeof head);
	CHECK_EQ(net_msg_data_offset(NET_HEAD_PUT), NET_MSG_HDR);
	m.data_len = HMIN;
	CHECK_EQ(enc_dec(&m, buf, cap, &d), NET_MSG_HDR + HMIN);
	m.data_len = HMIN - 1;		/* too short: refused both ways */
	CHECK_EQ(net_msg_encode(buf, cap, &m), -EINVAL);
	m.data_len = HMAX + 1;
	CHECK_EQ(net_msg_encode(buf, HMAX + 64, &m), -EINVAL);
	m.data_len = sizeof head;
	m.data = NULL;
	CHECK_EQ(net_msg_encode(buf, cap, &m), -EINVAL);
	/* the biggest head fits a record */
	memset(buf + NET_MSG_HDR, 0x11, HMAX);
	buf[0] = NET_HEAD_PUT;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + HMAX), 0);
	CHECK_EQ(d.data_len, HMAX);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + HMAX + 1), -EPROTO);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + HMIN - 1), -EPROTO);

	/* HEAD_LIST: u32 max; HEAD_PUT_OK: empty */
	memset(&m, 0, sizeof m);
	m.type = NET_HEAD_LIST;
	m.max = 0xa0b0c0d0;
	CHECK_EQ(enc_dec(&m, buf, cap, &d), NET_MSG_HDR + 4);
	CHECK(d.max == 0xa0b0c0d0);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 3), -EPROTO);
	buf[NET_MSG_HDR + 4] = 0;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 5), -EPROTO);
	memset(&m, 0, sizeof m);
	m.type = NET_HEAD_PUT_OK;
	CHECK_EQ(enc_dec(&m, buf, cap, &d), NET_MSG_HDR);
	buf[NET_MSG_HDR] = 0;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 1), -EPROTO);

	/* HEAD_LIST_OK: three heads of different sizes, walked in order */
	el = 3 * 4 + HMIN + (HMIN + 1) + (HMIN + 40);
	CHECK((ents = malloc(el)) != NULL);
	off = 0;
	for (int i = 0; i < 3; i++) {
		size_t hl = i == 0 ? HMIN : i == 1 ? HMIN + 1 : HMIN + 40;
		put_be32(ents + off, (uint32_t)hl);
		memset(ents + off + 4, 'a' + i, hl);
		off += 4 + hl;
	}
	CHECK_EQ(off, el);
	memset(&m, 0, sizeof m);
	m.type = NET_HEAD_LIST_OK;
	m.n = 3;
	m.data = ents;
	m.data_len = el;
	CHECK_EQ(enc_dec(&m, buf, cap, &d), NET_MSG_HDR + 4 + el);
	CHECK_EQ(d.n, 3);
	CHECK_EQ(d.data_len, el);
	off = 0;
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(net_msg_heads_next(&d, &off, &p, &len), 1);
		CHECK_EQ(len, i == 0 ? HMIN : i == 1 ? HMIN + 1 : HMIN + 40);
		CHECK(p[0] == 'a' + i && p[len - 1] == 'a' + i);
	}
	CHECK_EQ(net_msg_heads_next(&d, &off, &p, &len), 0);
	/* malformed: count off by one, a byte short or long, a len outside
	 * the bounds; the encoder refuses the same */
	len = NET_MSG_HDR + 4 + el;
	put_be32(buf + NET_MSG_HDR, 2);
	CHECK_EQ(net_msg_decode(&d, buf, len), -EPROTO);
	put_be32(buf + NET_MSG_HDR, 4);
	CHECK_EQ(net_msg_decode(&d, buf, len), -EPROTO);
	put_be32(buf + NET_MSG_HDR, 3);
	CHECK_EQ(net_msg_decode(&d, buf, len), 0);
	CHECK_EQ(net_msg_decode(&d, buf, len - 1), -EPROTO);
	buf[len] = 0;
	CHECK_EQ(net_msg_decode(&d, buf, len + 1), -EPROTO);
	put_be32(buf + NET_MSG_HDR + 4, (uint32_t)HMIN - 1);
	CHECK_EQ(net_msg_decode(&d, buf, len), -EPROTO);
	put_be32(buf + NET_MSG_HDR + 4, UINT32_MAX);
	CHECK_EQ(net_msg_decode(&d, buf, len), -EPROTO);
	m.n = 2;
	CHECK_EQ(net_msg_encode(buf, cap, &m), -EINVAL);
	m.n = 3;
	m.data_len = el - 1;
	CHECK_EQ(net_msg_encode(buf, cap, &m), -EINVAL);
	put_be32(ents, (uint32_t)HMIN - 1);
	m.data_len = el;
	CHECK_EQ(net_msg_encode(buf, cap, &m), -EINVAL);
	/* empty list; too many entries */
	memset(&m, 0, sizeof m);
	m.type = NET_HEAD_LIST_OK;
	CHECK_EQ(enc_dec(&m, buf, cap, &d), NET_MSG_HDR + 4);
	CHECK_EQ(d.n, 0);
	off = 0;
	CHECK_EQ(net_msg_heads_next(&d, &off, &p, &len), 0);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 3), -EPROTO);
	m.n = NET_HEADS_MAX + 1;
	CHECK_EQ(net_msg_encode(buf, cap, &m), -EINVAL);
	put_be32(buf + NET_MSG_HDR, NET_HEADS_MAX + 1);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 4), -EPROTO);
	free(ents);
	free(buf);
	return 0;
}

/* NET_HEADS_MAX entries are accepted, one more is not. */
static int
test_heads_list_max(void)
{
	size_t each = 4 + HMIN, el = (NET_HEADS_MAX + 1) * each;
	unsigned char *buf = calloc(1, NET_MSG_HDR + 4 + el);
	struct net_msg d;
	const unsigned char *p;
	size_t off = 0, len;
	int seen = 0;

	CHECK(buf != NULL);
	buf[0] = NET_HEAD_LIST_OK;
	for (int i = 0; i <= NET_HEADS_MAX; i++)
		put_be32(buf + NET_MSG_HDR + 4 + i * each, (uint32_t)HMIN);
	put_be32(buf + NET_MSG_HDR, NET_HEADS_MAX);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 4 + el - each), 0);
	while (net_msg_heads_next(&d, &off, &p, &len))
		seen++;
	CHECK_EQ(seen, NET_HEADS_MAX);
	put_be32(buf + NET_MSG_HDR, NET_HEADS_MAX + 1);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 4 + el), -EPROTO);
	free(buf);
	return 0;
}

/* RESERVE and RESERVE_OK: sizes fixed, zero counts refused both ways. */
static int
test_reserve(void)
{
	unsigned char buf[64];
	struct net_msg m, d;

	memset(&m, 0, sizeof m);
	m.type = NET_RESERVE;
	m.reqid = 12;
	m.rsv_size = 1u << 20;
	m.rsv_count = 16;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 8);
	CHECK(d.rsv_size == 1u << 20 && d.rsv_count == 16);
	memset(&m, 0, sizeof m);
	m.type = NET_RESERVE_OK;
	m.reqid = 12;
	m.rsv_count = 3;
	m.rsv_left = 5ull << 32;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 12);
	CHECK(d.rsv_count == 3 && d.rsv_left == 5ull << 32);
	/* a count of 0 is refused by both ends */
	m.rsv_count = 0;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	memset(buf + NET_MSG_HDR, 0, 4);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 12), -EPROTO);
	memset(&m, 0, sizeof m);
	m.type = NET_RESERVE;
	m.rsv_count = 1;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	/* and a wrong length */
	buf[0] = NET_RESERVE;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 7), -EPROTO);
	return 0;
}

/* LOCATOR: a version byte and 32 bytes; another version or length is
 * malformed; LOCATOR_OK is empty. */
static int
test_locator(void)
{
	unsigned char buf[64], loc[32];
	struct net_msg m, d;

	memset(loc, 0xa5, sizeof loc);
	memset(&m, 0, sizeof m);
	m.type = NET_LOCATOR;
	m.reqid = 7;
	m.locator = loc;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 33);
	CHECK(d.locator && memcmp(d.locator, loc, 32) == 0);
	CHECK_EQ(buf[NET_MSG_HDR], NET_LOCATOR_VERSION);
	buf[NET_MSG_HDR] = 2;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 33), -EPROTO);
	buf[NET_MSG_HDR] = NET_LOCATOR_VERSION;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 32), -EPROTO);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 34), -EPROTO);
	m.locator = NULL;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	memset(&m, 0, sizeof m);
	m.type = NET_LOCATOR_OK;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR);
	return 0;
}

/* DIALBACK: a version byte and a port (0 is malformed); DIALBACK_OK: a
 * result, an errno at most 4095. */
static int
test_dialback(void)
{
	unsigned char buf[64];
	struct net_msg m, d;

	memset(&m, 0, sizeof m);
	m.type = NET_DIALBACK;
	m.reqid = 9;
	m.port = 40123;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 3);
	CHECK_EQ(d.port, 40123);
	CHECK_EQ(buf[NET_MSG_HDR], NET_DIALBACK_VERSION);
	buf[NET_MSG_HDR] = 2;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 3), -EPROTO);
	buf[NET_MSG_HDR] = NET_DIALBACK_VERSION;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 2), -EPROTO);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 4), -EPROTO);
	buf[NET_MSG_HDR + 1] = buf[NET_MSG_HDR + 2] = 0;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 3), -EPROTO);
	m.port = 0;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	memset(&m, 0, sizeof m);
	m.type = NET_DIALBACK_OK;
	m.result = ECONNREFUSED;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 4);
	CHECK_EQ(d.result, ECONNREFUSED);
	m.result = 4096;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	buf[NET_MSG_HDR + 2] = 0x10;	/* 4096 + ECONNREFUSED */
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 4), -EPROTO);
	return 0;
}

/* The relay messages (version 1): round trips; another version, another
 * length or a keepalive of 0 is malformed. */
static int
test_relay_msgs(void)
{
	unsigned char buf[64], tok[NET_RELAY_TOKEN_BYTES];
	struct net_msg m, d;

	memset(&m, 0, sizeof m);
	m.type = NET_RELAY_RESERVE;
	m.reqid = 3;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 1);
	CHECK_EQ(buf[NET_MSG_HDR], NET_RELAY_VERSION);
	buf[NET_MSG_HDR] = 2;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 1), -EPROTO);
	buf[NET_MSG_HDR] = NET_RELAY_VERSION;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 2), -EPROTO);
	memset(&m, 0, sizeof m);
	m.type = NET_RELAY_RESERVE_OK;
	m.keepalive_s = 20;
	m.circuits = 16;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 8);
	CHECK_EQ(d.keepalive_s, 20);
	CHECK_EQ(d.circuits, 16);
	memset(buf + NET_MSG_HDR, 0, 4);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 8), -EPROTO);
	m.keepalive_s = 0;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	memset(&m, 0, sizeof m);
	m.type = NET_RELAY_INCOMING;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	for (int i = 0; i < (int)sizeof tok; i++)
		tok[i] = (unsigned char)(0xa0 + i);
	m.token = tok;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 17);
	CHECK_MEM(d.token, tok, sizeof tok);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 16), -EPROTO);
	buf[NET_MSG_HDR] = 0;
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 17), -EPROTO);
	return 0;
}

/* PUNCH and PUNCH_OK (version 1): round trips; port 0, another version
 * or another length is malformed. */
static int
test_punch_msgs(void)
{
	unsigned char buf[64];
	struct net_msg m, d;
	uint8_t types[] = { NET_PUNCH, NET_PUNCH_OK };

	for (int i = 0; i < 2; i++) {
		memset(&m, 0, sizeof m);
		m.type = types[i];
		CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
		m.port = 40001;
		CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 3);
		CHECK_EQ(d.type, types[i]);
		CHECK_EQ(d.port, 40001);
		CHECK_EQ(buf[NET_MSG_HDR], NET_PUNCH_VERSION);
		CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 2), -EPROTO);
		CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 4), -EPROTO);
		buf[NET_MSG_HDR] = 2;
		CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 3), -EPROTO);
		buf[NET_MSG_HDR] = NET_PUNCH_VERSION;
		buf[NET_MSG_HDR + 1] = buf[NET_MSG_HDR + 2] = 0;
		CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 3), -EPROTO);
	}
	return 0;
}

/* RESERVE with the owner's binding of its node (version 1): both lengths
 * decode, the binding only in the longer; a wrong version or length is
 * refused. */
static int
test_reserve_bind(void)
{
	unsigned char buf[256], node[CR_PK_BYTES], sig[CR_BIND_BYTES];
	struct net_msg m, d;
	const size_t v1 = NET_MSG_HDR + 8 + 1 + CR_PK_BYTES + CR_BIND_BYTES;

	memset(node, 0x5a, sizeof node);
	memset(sig, 0xa5, sizeof sig);
	memset(&m, 0, sizeof m);
	m.type = NET_RESERVE;
	m.reqid = 7;
	m.rsv_size = 4096;
	m.rsv_count = 16;
	m.bind_node = node;
	m.bind_sig = sig;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), (ssize_t)v1);
	CHECK(d.bind_node && d.bind_sig);
	CHECK_MEM(d.bind_node, node, CR_PK_BYTES);
	CHECK_MEM(d.bind_sig, sig, CR_BIND_BYTES);
	CHECK(d.rsv_size == 4096 && d.rsv_count == 16);
	/* version byte other than 1, lengths in between: refused */
	buf[NET_MSG_HDR + 8] = 2;
	CHECK_EQ(net_msg_decode(&d, buf, v1), -EPROTO);
	buf[NET_MSG_HDR + 8] = NET_BIND_VERSION;
	CHECK_EQ(net_msg_decode(&d, buf, v1 - 1), -EPROTO);
	CHECK_EQ(net_msg_decode(&d, buf, NET_MSG_HDR + 9), -EPROTO);
	CHECK_EQ(net_msg_decode(&d, buf, v1 + 1), -EPROTO);
	/* a node without a signature is not encoded */
	m.bind_sig = NULL;
	CHECK_EQ(net_msg_encode(buf, sizeof buf, &m), -EINVAL);
	/* the plain request has no binding */
	m.bind_node = NULL;
	CHECK_EQ(enc_dec(&m, buf, sizeof buf, &d), NET_MSG_HDR + 8);
	CHECK(!d.bind_node && !d.bind_sig);
	return 0;
}

const struct test tests_wire[] = {
	{ "round_trip_fixed", test_round_trip_fixed },
	{ "round_trip_variable", test_round_trip_variable },
	{ "round_trip_audit", test_round_trip_audit },
	{ "encode_refuses", test_encode_refuses },
	{ "decode_malformed", test_decode_malformed },
	{ "get_range", test_get_range },
	{ "framer_basic", test_framer_basic },
	{ "framer_bulk_direct", test_framer_bulk_direct },
	{ "framer_bad_length", test_framer_bad_length },
	{ "framer_records", test_framer_records },
	{ "bulk_rules", test_bulk_rules },
	{ "encode_head", test_encode_head },
	{ "heads_round_trip", test_heads_round_trip },
	{ "heads_list_max", test_heads_list_max },
	{ "reserve", test_reserve },
	{ "locator", test_locator },
	{ "dialback", test_dialback },
	{ "reserve_bind", test_reserve_bind },
	{ "relay_msgs", test_relay_msgs },
	{ "punch_msgs", test_punch_msgs },
	{ NULL, NULL },
};
