/* crypto/head.c - signed heads and sealed blobs (format in crypto.h).
 *
 * A head arrives from suppliers, i.e. from strangers: every length is
 * checked before it is used, and the signature is checked with the owner
 * key found inside the record, so the caller must still compare that key
 * with the owner it expects. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "util.h"

#define H_MAGIC_LEN	8
#define H_O_OWNER	H_MAGIC_LEN
#define H_O_SEQ		(H_O_OWNER + CR_PK_BYTES)
#define H_O_TIME	(H_O_SEQ + 8)
#define H_O_BLEN	(H_O_TIME + 8)
#define H_O_BLOB	(H_O_BLEN + 4)

#define B_NONCE		crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

_Static_assert(sizeof CR_HEAD_MAGIC - 1 == H_MAGIC_LEN, "head magic size");
_Static_assert(CR_HEAD_FIXED == H_O_BLOB + CR_SIG_BYTES, "head layout");
_Static_assert(CR_SIG_BYTES == crypto_sign_BYTES, "signature size");
_Static_assert(B_NONCE == 24, "blob nonce size");

/* v2 puts index between time and blob_len: every offset from H_O_BLEN
 * on moves by x = 8. */
static int
head_sign(const struct cr_identity *id, int v2, uint64_t seq, uint64_t time,
    uint64_t index, const void *blob, size_t blob_len, unsigned char **out,
    size_t *out_len)
{
	size_t x = v2 ? 8 : 0, n;
	unsigned char *p;

	if (!id || !out || !out_len || (!blob && blob_len) ||
	    blob_len > (v2 ? CR_HEAD2_BLOB_MAX : CR_HEAD_BLOB_MAX))
		return -EINVAL;
	n = CR_HEAD_FIXED + x + blob_len;
	if (!(p = malloc(n)))
		return -ENOMEM;
	memcpy(p, v2 ? CR_HEAD2_MAGIC : CR_HEAD_MAGIC, H_MAGIC_LEN);
	memcpy(p + H_O_OWNER, id->pk, CR_PK_BYTES);
	put_be64(p + H_O_SEQ, seq);
	put_be64(p + H_O_TIME, time);
	if (v2)
		put_be64(p + H_O_BLEN, index);
	put_be32(p + H_O_BLEN + x, (uint32_t)blob_len);
	if (blob_len)
		memcpy(p + H_O_BLOB + x, blob, blob_len);
	crypto_sign_detached(p + n - CR_SIG_BYTES, NULL, p, n - CR_SIG_BYTES,
	    id->sk);
	*out = p;
	*out_len = n;
	return 0;
}

int
cr_head_sign(const struct cr_identity *id, uint64_t seq, uint64_t time,
    const void *blob, size_t blob_len, unsigned char **out, size_t *out_len)
{
	return head_sign(id, 0, seq, time, 0, blob, blob_len, out, out_len);
}

int
cr_head2_sign(const struct cr_identity *id, uint64_t seq, uint64_t time,
    uint64_t index, const void *blob, size_t blob_len, unsigned char **out,
    size_t *out_len)
{
	return head_sign(id, 1, seq, time, index, blob, blob_len, out,
	    out_len);
}

int
cr_head_verify(const unsigned char *p, size_t n, struct cr_head *h)
{
	uint32_t blen;
	size_t x;

	if (!p || n < CR_HEAD_FIXED || n > CR_HEAD_FIXED + CR_HEAD_BLOB_MAX)
		return -EPROTO;
	if (memcmp(p, CR_HEAD_MAGIC, H_MAGIC_LEN) == 0)
		x = 0;
	else if (memcmp(p, CR_HEAD2_MAGIC, H_MAGIC_LEN) == 0)
		x = 8;
	else
		return -EPROTO;
	if (n < CR_HEAD_FIXED + x)
		return -EPROTO;
	blen = get_be32(p + H_O_BLEN + x);
	if (blen > CR_HEAD_BLOB_MAX - x || n != CR_HEAD_FIXED + x +
	    (size_t)blen)
		return -EPROTO;
	/* libsodium also refuses small-order keys and non-canonical S. */
	if (crypto_sign_verify_detached(p + n - CR_SIG_BYTES, p,
	    n - CR_SIG_BYTES, p + H_O_OWNER) != 0)
		return -EBADMSG;
	if (h) {
		memcpy(h->owner, p + H_O_OWNER, CR_PK_BYTES);
		h->seq = get_be64(p + H_O_SEQ);
		h->time = get_be64(p + H_O_TIME);
		h->index = x ? get_be64(p + H_O_BLEN) : h->seq;
		h->blob = p + H_O_BLOB + x;
		h->blob_len = blen;
	}
	return 0;
}

int
cr_blob_seal(const unsigned char key[CR_KEY_BYTES], const void *m,
    size_t len, unsigned char **out, size_t *out_len)
{
	unsigned char *c;
	size_t n;

	if (!key || !out || !out_len || (!m && len) ||
	    len > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX ||
	    len > SIZE_MAX - B_NONCE - CR_SEAL_ABYTES)
		return -EINVAL;
	n = len + B_NONCE + CR_SEAL_ABYTES;
	if (!(c = malloc(n)))
		return -ENOMEM;
	/* A random 192-bit nonce never repeats in practice, whatever the
	 * number of seals under one key. */
	randombytes_buf(c, B_NONCE);
	crypto_aead_xchacha20poly1305_ietf_encrypt(c + B_NONCE, NULL, m, len,
	    NULL, 0, NULL, c, key);
	*out = c;
	*out_len = n;
	return 0;
}

int
cr_blob_open(const unsigned char key[CR_KEY_BYTES], const unsigned char *c,
    size_t clen, unsigned char **out, size_t *out_len)
{
	unsigned char *m;
	size_t n;

	if (!key || !out || !out_len)
		return -EINVAL;
	if (!c || clen < B_NONCE + CR_SEAL_ABYTES)
		return -EINVAL;
	n = clen - B_NONCE - CR_SEAL_ABYTES;
	if (!(m = malloc(n ? n : 1)))
		return -ENOMEM;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, NULL, NULL,
	    c + B_NONCE, clen - B_NONCE, NULL, 0, c, key) != 0) {
		free(m);
		return -EBADMSG;
	}
	*out = m;
	*out_len = n;
	return 0;
}
