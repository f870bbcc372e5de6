/* crypto/recovery.c - the recovery code: an identity a person can copy down.
 *
 * Payload (69 bytes): version 1 | Ed25519 seed 32 | master 32 | checksum 4,
 * the checksum being the first 4 bytes of BLAKE2b-256 of what precedes it.
 * Its 552 bits, most significant first, padded with zero bits to 560, are
 * 112 base32 symbols (RFC 4648 alphabet): 28 groups of 4 data symbols and
 * one check symbol, printed "ABCDE-FGHIJ-..." with a newline instead of
 * the '-' after every 7th group (no trailing newline).
 *
 * The check symbol is linear over GF(32) (x^5 + x^2 + 1):
 *   c = (group number) + 2*d0 + 4*d1 + 8*d2 + 16*d3
 * A hash would let 1 in 32 single typos through; this cannot: a typo in d_i
 * moves the sum by w_i * (d_i - d_i') != 0, and since the weights differ,
 * swapping two unequal symbols is caught too. The group number term makes
 * a whole group copied to the wrong place fail its own check; the BLAKE2b
 * checksum catches what is left (several typos that cancel out). */
#include <errno.h>
#include <string.h>

#include "crypto/crypto.h"

#define RC_VERSION	1
#define RC_SEED		32
#define RC_SUM		4
#define RC_PAYLOAD	(1 + RC_SEED + CR_KEY_BYTES + RC_SUM)	/* 69 */
#define RC_DATA_SYMS	((RC_PAYLOAD * 8 + 4) / 5)		/* 111 */
#define RC_GROUPS	((RC_DATA_SYMS + 3) / 4)		/* 28 */
#define RC_SYMS		(RC_GROUPS * 5)				/* 140 */
#define RC_PER_LINE	7
#define RC_TEXT		(RC_SYMS + RC_GROUPS - 1)		/* 167 */

_Static_assert(RC_TEXT + 1 <= CR_RECOVERY_MAX, "recovery code too long");
_Static_assert(RC_GROUPS < 32, "group numbers must be distinct in GF(32)");

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* Multiplication in GF(2^5) modulo x^5 + x^2 + 1. */
static unsigned
gf32_mul(unsigned a, unsigned b)
{
	unsigned r = 0;

	for (int i = 0; i < 5; i++) {
		if (b & 1)
			r ^= a;
		b >>= 1;
		a <<= 1;
		if (a & 32)
			a ^= 0x25;
	}
	return r & 31;
}

/* g is the 0-based group index; d its 4 data symbols. */
static unsigned
group_check(int g, const unsigned char d[4])
{
	unsigned c = (unsigned)(g + 1);

	for (int i = 0; i < 4; i++)
		c ^= gf32_mul(2u << i, d[i]);
	return c;
}

/* Symbol value of a character, or -1 (lower case accepted). */
static int
sym_value(unsigned char ch)
{
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a';
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= '2' && ch <= '7')
		return 26 + ch - '2';
	return -1;
}

static int
is_sep(unsigned char ch)
{
	return ch == '-' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static void
checksum(unsigned char out[RC_SUM], const unsigned char *p, size_t n)
{
	unsigned char h[CR_HASH_BYTES];

	cr_hash(h, p, n);
	memcpy(out, h, RC_SUM);
}

int
cr_recovery_encode(const struct cr_identity *id, char *out, size_t cap)
{
	unsigned char pay[RC_PAYLOAD], sym[RC_GROUPS * 4];
	size_t o = 0;

	if (!id || !out)
		return -EINVAL;
	if (cap < RC_TEXT + 1)
		return -ENOSPC;
	pay[0] = RC_VERSION;
	crypto_sign_ed25519_sk_to_seed(pay + 1, id->sk);
	memcpy(pay + 1 + RC_SEED, id->master, CR_KEY_BYTES);
	checksum(pay + RC_PAYLOAD - RC_SUM, pay, RC_PAYLOAD - RC_SUM);

	memset(sym, 0, sizeof sym);
	for (size_t bit = 0; bit < RC_PAYLOAD * 8; bit++)
		if (pay[bit / 8] & (0x80 >> (bit % 8)))
			sym[bit / 5] |= (unsigned char)(0x10 >> (bit % 5));
	for (int g = 0; g < RC_GROUPS; g++) {
		if (g > 0)
			out[o++] = g % RC_PER_LINE ? '-' : '\n';
		for (int i = 0; i < 4; i++)
			out[o++] = alphabet[sym[4 * g + i]];
		out[o++] = alphabet[group_check(g, sym + 4 * g)];
	}
	out[o] = '\0';
	sodium_memzero(pay, sizeof pay);
	sodium_memzero(sym, sizeof sym);
	return (int)o;
}

/* For a code of the wrong length: the 1-based number of the first
 * '-'-separated group that is not 5 symbols long, 0 when the text has no
 * separators to go by. */
static int
short_group(const char *text)
{
	int tok = 0, len = 0, seps = 0;

	for (const unsigned char *p = (const unsigned char *)text; ; p++) {
		if (*p && !is_sep(*p)) {
			len++;
			continue;
		}
		if (*p)
			seps++;
		if (len > 0) {
			tok++;
			if (len != 5)
				return seps ? tok : 0;
		}
		len = 0;
		if (!*p)
			return 0;
	}
}

int
cr_recovery_decode(const char *text, struct cr_identity **out, int *bad_group)
{
	unsigned char sym[RC_SYMS], data[RC_GROUPS * 4];
	unsigned char pay[RC_PAYLOAD], sum[RC_SUM];
	struct cr_identity *id;
	size_t n = 0, extra = 0;
	int bg = 0, rc;

	if (bad_group)
		*bad_group = 0;
	if (!text || !out)
		return -EINVAL;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		int v;

		if (is_sep(*p))
			continue;
		v = sym_value(*p);
		if (n >= RC_SYMS) {
			extra++;	/* too long whatever it holds */
			continue;
		}
		if (v < 0) {
			bg = (int)(n / 5) + 1;
			rc = -EINVAL;
			goto out;
		}
		sym[n++] = (unsigned char)v;
	}
	if (n != RC_SYMS || extra) {
		bg = short_group(text);
		rc = -EPROTO;
		goto out;
	}
	for (int g = 0; g < RC_GROUPS; g++) {
		memcpy(data + 4 * g, sym + 5 * g, 4);
		if (group_check(g, data + 4 * g) != sym[5 * g + 4]) {
			bg = g + 1;
			rc = -EINVAL;
			goto out;
		}
	}

	/* Every group checks: unpack. The padding bits must be zero. */
	memset(pay, 0, sizeof pay);
	for (size_t bit = 0; bit < RC_GROUPS * 4 * 5; bit++) {
		int set = (data[bit / 5] & (0x10 >> (bit % 5))) != 0;

		if (bit >= RC_PAYLOAD * 8) {
			if (set) {
				rc = -EBADMSG;
				goto out;
			}
		} else if (set) {
			pay[bit / 8] |= (unsigned char)(0x80 >> (bit % 8));
		}
	}
	checksum(sum, pay, RC_PAYLOAD - RC_SUM);
	if (sodium_memcmp(sum, pay + RC_PAYLOAD - RC_SUM, RC_SUM) != 0) {
		rc = -EBADMSG;
		goto out;
	}
	if (pay[0] != RC_VERSION) {
		rc = -EPROTO;
		goto out;
	}
	if (!(id = sodium_malloc(sizeof *id))) {
		rc = -ENOMEM;
		goto out;
	}
	crypto_sign_seed_keypair(id->pk, id->sk, pay + 1);
	memcpy(id->master, pay + 1 + RC_SEED, CR_KEY_BYTES);
	*out = id;
	rc = 0;
out:
	if (bad_group)
		*bad_group = rc == -EINVAL || rc == -EPROTO ? bg : 0;
	sodium_memzero(sym, sizeof sym);
	sodium_memzero(data, sizeof data);
	sodium_memzero(pay, sizeof pay);
	return rc;
}
