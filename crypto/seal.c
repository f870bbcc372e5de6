/* crypto/seal.c - convergent block encryption (see crypto.h for the scheme).
 *
 * The nonce is derived from the key alone: the key is a keyed hash of the
 * plaintext, so one key only ever encrypts one plaintext and a fixed nonce
 * per key never repeats under a different message. */
#include <errno.h>

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

int
cr_block_seal(unsigned char *cipher, unsigned char key[CR_KEY_BYTES],
    unsigned char id[CR_ID_BYTES], const void *plain, size_t len,
    const unsigned char datakey[CR_KEY_BYTES])
{
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long clen;

	crypto_generichash(key, CR_KEY_BYTES, plain, len, datakey,
	    CR_KEY_BYTES);
	block_nonce(nonce, key);
	crypto_aead_xchacha20poly1305_ietf_encrypt(cipher, &clen, plain, len,
	    NULL, 0, NULL, nonce, key);
	crypto_generichash(id, CR_ID_BYTES, cipher, clen, NULL, 0);
	return 0;
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
		crypto_generichash(got, sizeof got, cipher, clen, NULL, 0);
		if (sodium_memcmp(got, id, CR_ID_BYTES) != 0)
			return -EBADMSG;
	}
	block_nonce(nonce, key);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL,
	    cipher, clen, NULL, 0, nonce, key) != 0)
		return -EBADMSG;
	return 0;
}
