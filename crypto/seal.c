/* crypto/seal.c - convergent block encryption (see crypto.h for the scheme).
 *
 * The nonce is derived from the key alone: the key is a keyed hash of the
 * plaintext, so one key only ever encrypts one plaintext and a fixed nonce
 * per key never repeats under a different message. */
#include <errno.h>
#include <string.h>

#include "crypto/crypto.h"

_Static_assert(CR_SEAL_ABYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES,
    "seal tag size");

static void
block_nonce(unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES],
    const unsigned char key[CR_KEY_BYTES])
{
	static const char label[] = "peerfs-nonce";

	crypto_generichash(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	    (const unsigned char *)label, sizeof label - 1, key, CR_KEY_BYTES);
}

/* The id is a one-way function of the key rather than a hash of the
 * ciphertext: equal plaintexts still get equal ids (the key is
 * convergent), the AEAD tag already binds the ciphertext to the key, and
 * sealing and opening skip a full BLAKE2b pass over the block. */
void
cr_block_id(unsigned char id[CR_ID_BYTES],
    const unsigned char key[CR_KEY_BYTES])
{
	static const char label[] = "peerfs-block-id";

	crypto_generichash(id, CR_ID_BYTES, (const unsigned char *)label,
	    sizeof label - 1, key, CR_KEY_BYTES);
}

int
cr_block_seal(unsigned char *cipher, unsigned char key[CR_KEY_BYTES],
    unsigned char id[CR_ID_BYTES], const void *plain, size_t len,
    const unsigned char datakey[CR_KEY_BYTES])
{
	cr_block_key(key, plain, len, datakey);
	cr_block_seal_keyed(cipher, key, plain, len);
	cr_block_id(id, key);
	return 0;
}

void
cr_block_key(unsigned char key[CR_KEY_BYTES], const void *plain, size_t len,
    const unsigned char datakey[CR_KEY_BYTES])
{
	crypto_generichash(key, CR_KEY_BYTES, plain, len, datakey,
	    CR_KEY_BYTES);
}

void
cr_block_seal_keyed(unsigned char *cipher, const unsigned char key[CR_KEY_BYTES],
    const void *plain, size_t len)
{
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long clen;

	block_nonce(nonce, key);
	crypto_aead_xchacha20poly1305_ietf_encrypt(cipher, &clen, plain, len,
	    NULL, 0, NULL, nonce, key);
}

int
cr_block_open(void *plain, const unsigned char *cipher, size_t clen,
    const unsigned char key[CR_KEY_BYTES], const unsigned char id[CR_ID_BYTES])
{
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned char got[CR_ID_BYTES];

	if (clen < CR_SEAL_ABYTES)
		return -EINVAL;
	if (id) {
		cr_block_id(got, key);
		if (sodium_memcmp(got, id, CR_ID_BYTES) != 0)
			return -EBADMSG;
	}
	block_nonce(nonce, key);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL,
	    cipher, clen, NULL, 0, nonce, key) != 0)
		return -EBADMSG;
	return 0;
}

/* A fragment's check value. Suppliers never learn the block key, so a
 * one-time Poly1305 MAC under a key derived from it is as unforgeable to
 * them as a hash, and three times as fast as BLAKE2b: the owner checks
 * every fragment it stores, fetches or rebuilds. A one-time key must only
 * ever authenticate one message: the fragment is a function of the block
 * key, the index and the encoding (k, m, backend; the length follows from
 * them), so all of those go into the key. The first format took only the
 * index: a block stored again under another --ec gave a supplier two
 * messages under one key, enough to forge a third. */
static void
tag_under(unsigned char out[CR_HASH_BYTES],
    const unsigned char mac_key[crypto_onetimeauth_KEYBYTES],
    const void *frag, size_t len)
{
	_Static_assert(crypto_onetimeauth_BYTES <= CR_HASH_BYTES, "tag size");
	memset(out, 0, CR_HASH_BYTES);
	crypto_onetimeauth(out, frag, len, mac_key);
}

void
cr_frag_tag(unsigned char out[CR_HASH_BYTES],
    const unsigned char key[CR_KEY_BYTES], const struct cr_ec *ec, int idx,
    const void *frag, size_t len)
{
	static const char label[] = "peerfs-fragment2";
	unsigned char mac_key[crypto_onetimeauth_KEYBYTES], p[8 + 3];
	const char *backend = cr_ec_backend(ec);
	crypto_generichash_state st;

	/* label | u8 idx | u8 k | u8 m | u64 BE len | backend name | NUL */
	p[0] = (unsigned char)idx;
	p[1] = (unsigned char)cr_ec_k(ec);
	p[2] = (unsigned char)cr_ec_m(ec);
	for (int i = 0; i < 8; i++)
		p[3 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	crypto_generichash_init(&st, key, CR_KEY_BYTES, sizeof mac_key);
	crypto_generichash_update(&st, (const unsigned char *)label,
	    sizeof label - 1);
	crypto_generichash_update(&st, p, sizeof p);
	crypto_generichash_update(&st, (const unsigned char *)backend,
	    strlen(backend) + 1);
	crypto_generichash_final(&st, mac_key, sizeof mac_key);
	tag_under(out, mac_key, frag, len);
	sodium_memzero(mac_key, sizeof mac_key);
	sodium_memzero(&st, sizeof st);
}

void
cr_frag_tag_v1(unsigned char out[CR_HASH_BYTES],
    const unsigned char key[CR_KEY_BYTES], int idx, const void *frag,
    size_t len)
{
	static const char label[] = "peerfs-fragment";
	unsigned char msg[sizeof label], mac_key[crypto_onetimeauth_KEYBYTES];

	memcpy(msg, label, sizeof label - 1);
	msg[sizeof label - 1] = (unsigned char)idx;
	crypto_generichash(mac_key, sizeof mac_key, msg, sizeof msg, key,
	    CR_KEY_BYTES);
	tag_under(out, mac_key, frag, len);
	sodium_memzero(mac_key, sizeof mac_key);
}

/* The old tag is tried only after the new one failed: a forged fragment
 * costs two Poly1305 passes, a good one (of either format) at most that.
 * Accepting it adds nothing a supplier could use: it needs the block key
 * for either. */
int
cr_frag_check(const unsigned char want[CR_HASH_BYTES],
    const unsigned char key[CR_KEY_BYTES], const struct cr_ec *ec, int idx,
    const void *frag, size_t len)
{
	unsigned char got[CR_HASH_BYTES];

	cr_frag_tag(got, key, ec, idx, frag, len);
	if (sodium_memcmp(got, want, CR_HASH_BYTES) == 0)
		return 0;
	cr_frag_tag_v1(got, key, idx, frag, len);
	return sodium_memcmp(got, want, CR_HASH_BYTES) == 0 ? 0 : -EBADMSG;
}

/* ---- chunked sealing (crypto.h) ------------------------------------------ */

static void
chunk_nonce(unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES],
    const unsigned char key[CR_KEY_BYTES], uint32_t idx, uint32_t count)
{
	static const char label[] = "peerfs-chunk";
	unsigned char msg[sizeof label - 1 + 8];

	memcpy(msg, label, sizeof label - 1);
	for (int i = 0; i < 4; i++) {
		msg[sizeof label - 1 + i] = (unsigned char)(idx >> (24 - 8 * i));
		msg[sizeof label + 3 + i] = (unsigned char)(count >> (24 - 8 * i));
	}
	crypto_generichash(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	    msg, sizeof msg, key, CR_KEY_BYTES);
}

uint32_t
cr_chunk_count(uint64_t plain_len)
{
	uint64_t n = (plain_len + CR_CHUNK_BYTES - 1) / CR_CHUNK_BYTES;

	return n ? (uint32_t)n : 1;
}

uint64_t
cr_sealed_len(int fmt, uint64_t plain_len)
{
	switch (fmt) {
	case CR_SEAL_WHOLE:
		return plain_len + CR_SEAL_ABYTES;
	case CR_SEAL_CHUNKED:
		return plain_len + (uint64_t)cr_chunk_count(plain_len) *
		    CR_SEAL_ABYTES;
	default:
		return 0;
	}
}

/* Bytes of plaintext in chunk idx of a plain_len-byte block. */
static size_t
chunk_plain(uint64_t plain_len, uint32_t idx)
{
	uint64_t off = (uint64_t)idx * CR_CHUNK_BYTES;

	return plain_len - off < CR_CHUNK_BYTES ? (size_t)(plain_len - off) :
	    CR_CHUNK_BYTES;
}

int
cr_block_seal_fmt(int fmt, unsigned char *cipher,
    const unsigned char key[CR_KEY_BYTES], const void *plain, size_t len)
{
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	const unsigned char *p = plain;
	uint32_t n;

	if (fmt == CR_SEAL_WHOLE) {
		cr_block_seal_keyed(cipher, key, plain, len);
		return 0;
	}
	if (fmt != CR_SEAL_CHUNKED)
		return -ENOTSUP;
	n = cr_chunk_count(len);
	for (uint32_t i = 0; i < n; i++) {
		size_t l = chunk_plain(len, i);

		chunk_nonce(nonce, key, i, n);
		crypto_aead_xchacha20poly1305_ietf_encrypt(
		    cipher + (size_t)i * CR_CHUNK_SEALED, NULL,
		    l ? p + (size_t)i * CR_CHUNK_BYTES : NULL, l, NULL, 0,
		    NULL, nonce, key);
	}
	return 0;
}

int
cr_chunks_open(void *plain, const unsigned char *cipher, uint64_t plain_len,
    uint32_t first, uint32_t n, const unsigned char key[CR_KEY_BYTES],
    uint32_t *bad)
{
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	uint32_t count = cr_chunk_count(plain_len);
	unsigned char *out = plain;

	if (n == 0 || first >= count || n > count - first)
		return -EINVAL;
	for (uint32_t j = 0; j < n; j++) {
		uint32_t i = first + j;
		size_t l = chunk_plain(plain_len, i);

		chunk_nonce(nonce, key, i, count);
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    l ? out + (size_t)j * CR_CHUNK_BYTES : NULL, NULL, NULL,
		    cipher + (size_t)j * CR_CHUNK_SEALED, l + CR_SEAL_ABYTES,
		    NULL, 0, nonce, key) != 0) {
			if (bad)
				*bad = i;
			return -EBADMSG;
		}
	}
	return 0;
}

int
cr_block_open_fmt(int fmt, void *plain, const unsigned char *cipher,
    size_t clen, const unsigned char key[CR_KEY_BYTES],
    const unsigned char id[CR_ID_BYTES])
{
	unsigned char got[CR_ID_BYTES];
	uint64_t plain_len;

	if (fmt == CR_SEAL_WHOLE)
		return cr_block_open(plain, cipher, clen, key, id);
	if (fmt != CR_SEAL_CHUNKED)
		return -ENOTSUP;
	/* Every chunk but the last is full: the count follows from clen. */
	if (clen < CR_SEAL_ABYTES)
		return -EINVAL;
	plain_len = clen - ((clen + CR_CHUNK_SEALED - 1) / CR_CHUNK_SEALED) *
	    CR_SEAL_ABYTES;
	if (cr_sealed_len(fmt, plain_len) != clen)
		return -EINVAL;
	if (id) {
		cr_block_id(got, key);
		if (sodium_memcmp(got, id, CR_ID_BYTES) != 0)
			return -EBADMSG;
	}
	return cr_chunks_open(plain, cipher, plain_len, 0,
	    cr_chunk_count(plain_len), key, NULL);
}
