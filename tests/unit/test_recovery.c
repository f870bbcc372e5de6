/* tests/unit/test_recovery.c - crypto/recovery.c (the recovery code) and
 * crypto/head.c (signed heads, sealed blobs). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "test.h"
#include "util.h"

#define GROUPS 28

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* Offset in the code text of character i (0..4) of group g (0-based). */
static size_t
pos_of(int g, int i)
{
	return (size_t)g * 6 + (size_t)i;
}

static int
decode_rc(const char *text, int *bad)
{
	struct cr_identity *id = NULL;
	int rc = cr_recovery_decode(text, &id, bad);

	if (rc == 0)
		cr_identity_free(id);
	return rc;
}

/* ---- recovery code ------------------------------------------------------- */

static int
test_code_round_trip(void)
{
	struct cr_identity *id, *back = NULL;
	unsigned char sig[CR_SIG_BYTES];
	char code[CR_RECOVERY_MAX];
	int len, bad = -1, lines = 0;

	CHECK(cr_init() == 0);
	id = test_identity();
	len = cr_recovery_encode(id, code, sizeof code);
	CHECK(len > 0);
	CHECK_EQ(len, (int)strlen(code));
	CHECK(len < CR_RECOVERY_MAX);
	/* 28 groups of 5, '-' between, a newline after every 7th. */
	CHECK_EQ(len, GROUPS * 5 + GROUPS - 1);
	for (int g = 0; g < GROUPS; g++) {
		for (int i = 0; i < 5; i++)
			CHECK(strchr(b32, code[pos_of(g, i)]) != NULL);
		if (g < GROUPS - 1)
			CHECK(code[pos_of(g, 5)] == ((g + 1) % 7 ? '-' : '\n'));
	}
	for (char *p = code; *p; p++)
		lines += *p == '\n';
	CHECK_EQ(lines, 3);

	CHECK_EQ(cr_recovery_decode(code, &back, &bad), 0);
	CHECK_EQ(bad, 0);
	CHECK_MEM(back->pk, id->pk, CR_PK_BYTES);
	CHECK_MEM(back->sk, id->sk, CR_SK_BYTES);
	CHECK_MEM(back->master, id->master, CR_KEY_BYTES);
	/* The recovered key signs what the original key verifies. */
	crypto_sign_detached(sig, NULL, (const unsigned char *)"msg", 3, back->sk);
	CHECK(crypto_sign_verify_detached(sig, (const unsigned char *)"msg", 3,
	    id->pk) == 0);
	cr_identity_free(back);

	/* Two identities never share a code. */
	struct cr_identity *other = test_identity();
	char code2[CR_RECOVERY_MAX];
	CHECK(cr_recovery_encode(other, code2, sizeof code2) == len);
	CHECK(strcmp(code, code2) != 0);
	cr_identity_free(other);
	cr_identity_free(id);
	return 0;
}

static int
test_code_lenient_input(void)
{
	struct cr_identity *id = test_identity(), *back = NULL;
	char code[CR_RECOVERY_MAX], messy[4 * CR_RECOVERY_MAX];
	size_t o = 0;
	int bad;

	CHECK(cr_init() == 0);
	CHECK(cr_recovery_encode(id, code, sizeof code) > 0);
	/* Lower case, spaces, CRLF, doubled dashes, no separators at all. */
	for (char *p = code; *p; p++) {
		if (*p == '-') {
			messy[o++] = ' ';
			messy[o++] = '-';
			messy[o++] = '-';
		} else if (*p == '\n') {
			messy[o++] = '\r';
			messy[o++] = '\n';
		} else {
			messy[o++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		}
	}
	messy[o++] = '\n';
	messy[o] = '\0';
	CHECK_EQ(cr_recovery_decode(messy, &back, &bad), 0);
	CHECK_MEM(back->sk, id->sk, CR_SK_BYTES);
	CHECK_MEM(back->master, id->master, CR_KEY_BYTES);
	cr_identity_free(back);

	o = 0;
	for (char *p = code; *p; p++)
		if (*p != '-' && *p != '\n')
			messy[o++] = *p;
	messy[o] = '\0';
	back = NULL;
	CHECK_EQ(cr_recovery_decode(messy, &back, &bad), 0);
	CHECK_MEM(back->master, id->master, CR_KEY_BYTES);
	cr_identity_free(back);
	cr_identity_free(id);
	return 0;
}

/* Every single-character change of every group is reported, with the
 * group's number. The check is linear over GF(32): no typo slips by. */
static int
test_code_every_typo(void)
{
	struct cr_identity *id = test_identity();
	char code[CR_RECOVERY_MAX];
	int bad;

	CHECK(cr_init() == 0);
	CHECK(cr_recovery_encode(id, code, sizeof code) > 0);
	for (int g = 0; g < GROUPS; g++) {
		for (int i = 0; i < 5; i++) {
			char *c = &code[pos_of(g, i)], orig = *c;
			int caught = 0;

			for (int a = 0; a < 32; a++) {
				if (b32[a] == orig)
					continue;
				*c = b32[a];
				bad = -1;
				if (decode_rc(code, &bad) == -EINVAL && bad == g + 1)
					caught++;
			}
			*c = orig;
			if (caught != 31)
				fprintf(stderr, "group %d char %d: %d/31\n", g + 1,
				    i, caught);
			CHECK_EQ(caught, 31);
		}
	}
	/* Two different neighbours exchanged: caught by the weights. */
	for (int g = 0; g < GROUPS; g++) {
		for (int i = 0; i < 4; i++) {
			char *c = &code[pos_of(g, i)], t = c[0];

			if (c[0] == c[1])
				continue;
			c[0] = c[1];
			c[1] = t;
			bad = -1;
			CHECK_EQ(decode_rc(code, &bad), -EINVAL);
			CHECK_EQ(bad, g + 1);
			c[1] = c[0];
			c[0] = t;
		}
	}
	/* Untouched, it still decodes. */
	CHECK_EQ(decode_rc(code, &bad), 0);
	cr_identity_free(id);
	return 0;
}

static int
test_code_bad_characters(void)
{
	struct cr_identity *id = test_identity();
	char code[CR_RECOVERY_MAX];
	const char bads[] = { '0', '1', '8', '9', '!', '_', (char)0xc3, '.' };
	int bad;

	CHECK(cr_init() == 0);
	CHECK(cr_recovery_encode(id, code, sizeof code) > 0);
	for (size_t b = 0; b < sizeof bads; b++) {
		for (int g = 0; g < GROUPS; g += 9) {
			char *c = &code[pos_of(g, (int)b % 5)], orig = *c;

			*c = bads[b];
			bad = -1;
			CHECK_EQ(decode_rc(code, &bad), -EINVAL);
			CHECK_EQ(bad, g + 1);
			*c = orig;
		}
	}
	cr_identity_free(id);
	return 0;
}

/* Two groups exchanged: each checks alone, but not at its new place. */
static int
test_code_swapped_groups(void)
{
	struct cr_identity *id = test_identity();
	char code[CR_RECOVERY_MAX], tmp[5];
	int bad, rc;

	CHECK(cr_init() == 0);
	CHECK(cr_recovery_encode(id, code, sizeof code) > 0);
	for (int a = 0; a < GROUPS; a++) {
		for (int b = a + 1; b < GROUPS; b++) {
			char *pa = &code[pos_of(a, 0)], *pb = &code[pos_of(b, 0)];

			if (memcmp(pa, pb, 5) == 0)
				continue;
			memcpy(tmp, pa, 5);
			memcpy(pa, pb, 5);
			memcpy(pb, tmp, 5);
			bad = -1;
			rc = decode_rc(code, &bad);
			/* The check covers the group's number: the first
			 * of the two is reported (the checksum would catch
			 * it otherwise, as -EBADMSG). */
			CHECK_EQ(rc, -EINVAL);
			CHECK_EQ(bad, a + 1);
			memcpy(pb, pa, 5);
			memcpy(pa, tmp, 5);
		}
	}
	CHECK_EQ(decode_rc(code, &bad), 0);
	cr_identity_free(id);
	return 0;
}

/* Two typos in one group that cancel out in its check: only the overall
 * checksum can tell, and says -EBADMSG with no group. */
static int
test_code_checksum(void)
{
	struct cr_identity *id = test_identity();
	char code[CR_RECOVERY_MAX];
	int bad, found = 0;

	CHECK(cr_init() == 0);
	CHECK(cr_recovery_encode(id, code, sizeof code) > 0);
	for (int g = 0; g < 3 && !found; g++) {
		char *d = &code[pos_of(g, 1)], *c = &code[pos_of(g, 4)];
		char od = *d, oc = *c;

		for (int x = 0; x < 32 && !found; x++) {
			if (b32[x] == od)
				continue;
			*d = b32[x];
			for (int y = 0; y < 32; y++) {
				*c = b32[y];
				bad = -1;
				int rc = decode_rc(code, &bad);
				if (rc == -EINVAL)
					continue;
				CHECK_EQ(rc, -EBADMSG);
				CHECK_EQ(bad, 0);
				found = 1;
				break;
			}
		}
		*d = od;
		*c = oc;
	}
	CHECK(found);
	cr_identity_free(id);
	return 0;
}

static int
test_code_wrong_length(void)
{
	struct cr_identity *id = test_identity(), *back = NULL;
	char code[CR_RECOVERY_MAX], buf[4096];
	int len, bad;

	CHECK(cr_init() == 0);
	len = cr_recovery_encode(id, code, sizeof code);
	CHECK(len > 0);
	CHECK_EQ(decode_rc("", &bad), -EPROTO);
	CHECK_EQ(decode_rc("  -\n", &bad), -EPROTO);
	CHECK_EQ(decode_rc("ABCDE", &bad), -EPROTO);

	/* One group missing (the last one), one too many. */
	memcpy(buf, code, (size_t)len - 6);
	buf[len - 6] = '\0';
	CHECK_EQ(decode_rc(buf, &bad), -EPROTO);
	snprintf(buf, sizeof buf, "%s-%.5s", code, code);
	CHECK_EQ(decode_rc(buf, &bad), -EPROTO);

	/* One character dropped in group 5: said to be there. */
	size_t p = pos_of(4, 2);
	memcpy(buf, code, p);
	strcpy(buf + p, code + p + 1);
	bad = -1;
	CHECK_EQ(decode_rc(buf, &bad), -EPROTO);
	CHECK_EQ(bad, 5);

	/* Very long garbage is refused, not overrun. */
	memset(buf, 'A', sizeof buf - 1);
	buf[sizeof buf - 1] = '\0';
	CHECK_EQ(decode_rc(buf, &bad), -EPROTO);
	memset(buf, '!', sizeof buf - 1);
	CHECK_EQ(decode_rc(buf, &bad), -EINVAL);
	CHECK_EQ(bad, 1);

	CHECK_EQ(cr_recovery_decode(NULL, &back, &bad), -EINVAL);
	CHECK(back == NULL);
	/* A short buffer is refused rather than truncated. */
	CHECK_EQ(cr_recovery_encode(id, buf, (size_t)len), -ENOSPC);
	CHECK_EQ(cr_recovery_encode(id, buf, (size_t)len + 1), len);
	cr_identity_free(id);
	return 0;
}

/* ---- signed heads ---------------------------------------------------------- */

static int
test_head_round_trip(void)
{
	struct cr_identity *id = test_identity();
	unsigned char blob[300], *p = NULL;
	struct cr_head h;
	size_t n = 0;

	CHECK(cr_init() == 0);
	randombytes_buf(blob, sizeof blob);
	CHECK_EQ(cr_head_sign(id, 42, 1700000000123ull, blob, sizeof blob, &p,
	    &n), 0);
	CHECK_EQ(n, CR_HEAD_FIXED + sizeof blob);
	CHECK_MEM(p, CR_HEAD_MAGIC, 8);
	CHECK_EQ(cr_head_verify(p, n, &h), 0);
	CHECK_MEM(h.owner, id->pk, CR_PK_BYTES);
	CHECK(h.seq == 42);
	CHECK(h.time == 1700000000123ull);
	CHECK_EQ(h.blob_len, sizeof blob);
	CHECK(h.blob >= p && h.blob + h.blob_len <= p + n);
	CHECK_MEM(h.blob, blob, sizeof blob);
	/* Big-endian fields where the header says. */
	CHECK(get_be64(p + 40) == 42);
	CHECK_EQ(get_be32(p + 56), sizeof blob);
	free(p);

	/* An empty blob and the largest seq are fine. */
	CHECK_EQ(cr_head_sign(id, UINT64_MAX, 0, NULL, 0, &p, &n), 0);
	CHECK_EQ(n, CR_HEAD_FIXED);
	CHECK_EQ(cr_head_verify(p, n, &h), 0);
	CHECK(h.seq == UINT64_MAX);
	CHECK_EQ(h.blob_len, 0);
	free(p);

	/* Refused on the signing side: too big, NULL with a length. */
	CHECK_EQ(cr_head_sign(id, 1, 1, blob, (size_t)CR_HEAD_BLOB_MAX + 1, &p,
	    &n), -EINVAL);
	CHECK_EQ(cr_head_sign(id, 1, 1, NULL, 5, &p, &n), -EINVAL);
	cr_identity_free(id);
	return 0;
}

static int
test_head_every_byte(void)
{
	struct cr_identity *id = test_identity();
	unsigned char *p = NULL, *q;
	const unsigned char flips[] = { 0x01, 0x80, 0xff };
	struct cr_head h;
	size_t n = 0;

	CHECK(cr_init() == 0);
	CHECK_EQ(cr_head_sign(id, 7, 99, "index-records", 13, &p, &n), 0);
	for (size_t i = 0; i < n; i++) {
		for (size_t f = 0; f < sizeof flips; f++) {
			int rc;

			p[i] ^= flips[f];
			rc = cr_head_verify(p, n, &h);
			p[i] ^= flips[f];
			if (rc != -EBADMSG && rc != -EPROTO)
				fprintf(stderr, "byte %zu ^ %#x: %d\n", i,
				    flips[f], rc);
			CHECK(rc == -EBADMSG || rc == -EPROTO);
		}
	}
	/* Every truncation, and one byte more. */
	for (size_t k = 0; k < n; k++)
		CHECK_EQ(cr_head_verify(p, k, &h), -EPROTO);
	q = malloc(n + 1);
	memcpy(q, p, n);
	q[n] = 0;
	CHECK_EQ(cr_head_verify(q, n + 1, &h), -EPROTO);
	free(q);
	CHECK_EQ(cr_head_verify(NULL, 0, &h), -EPROTO);
	CHECK_EQ(cr_head_verify(p, n, &h), 0);
	free(p);
	cr_identity_free(id);
	return 0;
}

/* Signed by someone else while naming the owner: refused. */
static int
test_head_forged(void)
{
	struct cr_identity *owner = test_identity(), *mallory = test_identity();
	unsigned char *p = NULL;
	struct cr_head h;
	size_t n = 0;

	CHECK(cr_init() == 0);
	CHECK_EQ(cr_head_sign(mallory, 1000, 5, "old", 3, &p, &n), 0);
	memcpy(p + 8, owner->pk, CR_PK_BYTES);
	CHECK_EQ(cr_head_verify(p, n, &h), -EBADMSG);
	/* Re-signed by mallory over the owner's name: still refused. */
	crypto_sign_detached(p + n - CR_SIG_BYTES, NULL, p, n - CR_SIG_BYTES,
	    mallory->sk);
	CHECK_EQ(cr_head_verify(p, n, &h), -EBADMSG);
	free(p);

	/* A blob_len beyond the limit, with a matching size: -EPROTO. */
	size_t big = CR_HEAD_FIXED + (size_t)CR_HEAD_BLOB_MAX + 1;
	p = calloc(1, big);
	CHECK(p != NULL);
	memcpy(p, CR_HEAD_MAGIC, 8);
	put_be32(p + 56, CR_HEAD_BLOB_MAX + 1);
	CHECK_EQ(cr_head_verify(p, big, &h), -EPROTO);
	put_be32(p + 56, 0xffffffffu);
	CHECK_EQ(cr_head_verify(p, CR_HEAD_FIXED, &h), -EPROTO);
	free(p);
	cr_identity_free(owner);
	cr_identity_free(mallory);
	return 0;
}

/* ---- sealed blobs ---------------------------------------------------------- */

static int
test_blob_round_trip(void)
{
	unsigned char key[CR_KEY_BYTES], key2[CR_KEY_BYTES], msg[1000];
	unsigned char *c = NULL, *c2 = NULL, *m = NULL;
	size_t cl = 0, cl2 = 0, ml = 0;

	CHECK(cr_init() == 0);
	randombytes_buf(key, sizeof key);
	randombytes_buf(key2, sizeof key2);
	randombytes_buf(msg, sizeof msg);
	CHECK_EQ(cr_blob_seal(key, msg, sizeof msg, &c, &cl), 0);
	CHECK_EQ(cl, sizeof msg + 24 + CR_SEAL_ABYTES);
	CHECK_EQ(cr_blob_open(key, c, cl, &m, &ml), 0);
	CHECK_EQ(ml, sizeof msg);
	CHECK_MEM(m, msg, sizeof msg);
	free(m);
	/* Random nonce: the same message seals differently each time. */
	CHECK_EQ(cr_blob_seal(key, msg, sizeof msg, &c2, &cl2), 0);
	CHECK(cl2 == cl && memcmp(c, c2, cl) != 0);
	free(c2);
	/* Wrong key. */
	m = NULL;
	CHECK_EQ(cr_blob_open(key2, c, cl, &m, &ml), -EBADMSG);
	CHECK(m == NULL);
	free(c);

	/* Empty message. */
	CHECK_EQ(cr_blob_seal(key, NULL, 0, &c, &cl), 0);
	CHECK_EQ(cl, 24 + CR_SEAL_ABYTES);
	CHECK_EQ(cr_blob_open(key, c, cl, &m, &ml), 0);
	CHECK_EQ(ml, 0);
	free(m);
	free(c);
	return 0;
}

static int
test_blob_tamper(void)
{
	unsigned char key[CR_KEY_BYTES], msg[64], *c = NULL, *m = NULL;
	size_t cl = 0, ml = 0;

	CHECK(cr_init() == 0);
	randombytes_buf(key, sizeof key);
	memset(msg, 'x', sizeof msg);
	CHECK_EQ(cr_blob_seal(key, msg, sizeof msg, &c, &cl), 0);
	for (size_t i = 0; i < cl; i++) {
		c[i] ^= 0x04;
		m = NULL;
		CHECK_EQ(cr_blob_open(key, c, cl, &m, &ml), -EBADMSG);
		CHECK(m == NULL);
		c[i] ^= 0x04;
	}
	/* Truncated: tag lost -> -EBADMSG; shorter than nonce + tag -> -EINVAL. */
	CHECK_EQ(cr_blob_open(key, c, cl - 1, &m, &ml), -EBADMSG);
	CHECK_EQ(cr_blob_open(key, c, 24 + CR_SEAL_ABYTES - 1, &m, &ml), -EINVAL);
	CHECK_EQ(cr_blob_open(key, c, 0, &m, &ml), -EINVAL);
	CHECK_EQ(cr_blob_open(key, c, cl, &m, &ml), 0);
	CHECK_MEM(m, msg, sizeof msg);
	free(m);
	free(c);
	return 0;
}

const struct test tests_recovery[] = {
	{ "code_round_trip", test_code_round_trip },
	{ "code_lenient_input", test_code_lenient_input },
	{ "code_every_typo", test_code_every_typo },
	{ "code_bad_characters", test_code_bad_characters },
	{ "code_swapped_groups", test_code_swapped_groups },
	{ "code_checksum", test_code_checksum },
	{ "code_wrong_length", test_code_wrong_length },
	{ "head_round_trip", test_head_round_trip },
	{ "head_every_byte", test_head_every_byte },
	{ "head_forged", test_head_forged },
	{ "blob_round_trip", test_blob_round_trip },
	{ "blob_tamper", test_blob_tamper },
	{ NULL, NULL },
};
