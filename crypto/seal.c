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
 * one-time Poly1305 MAC under a key derived from it and the fragment
 * index is as unforgeable to them as a hash, and three times as fast as
 * BLAKE2b: the owner checks every fragment it stores, fetches or
 * rebuilds. One key only ever authenticates one message, because the
 * fragment is a function of the block key too. */
void
cr_frag_tag(unsigned char out[CR_HASH_BYTES],
    const unsigned char key[CR_KEY_BYTES], int idx, const void *frag,
    size_t len)
{
	static const char label[] = "peerfs-fragment";
	unsigned char msg[sizeof label], mac_key[crypto_onetimeauth_KEYBYTES];

	_Static_assert(crypto_onetimeauth_BYTES <= CR_HASH_BYTES, "tag size");
	memcpy(msg, label, sizeof label - 1);
	msg[sizeof label - 1] = (unsigned char)idx;
	crypto_generichash(mac_key, sizeof mac_key, msg, sizeof msg, key,
	    CR_KEY_BYTES);
	memset(out, 0, CR_HASH_BYTES);
	crypto_onetimeauth(out, frag, len, mac_key);
	sodium_memzero(mac_key, sizeof mac_key);
}

int
cr_frag_check(const unsigned char want[CR_HASH_BYTES],
    const unsigned char key[CR_KEY_BYTES], int idx, const void *frag,
    size_t len)
{
	unsigned char got[CR_HASH_BYTES];

	cr_frag_tag(got, key, idx, frag, len);
	return sodium_memcmp(got, want, CR_HASH_BYTES) == 0 ? 0 : -EBADMSG;
}
