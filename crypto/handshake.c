/* crypto/handshake.c - session handshake and record streams (see crypto.h).
 *
 * Each side proves its Ed25519 identity by signing the transcript hash,
 * which covers both ephemeral keys: a recorded REPLY or FINISH is useless
 * in another session. The client's identity travels only in FINISH,
 * encrypted under a key of the ephemeral exchange (as Noise XX sends the
 * initiator's static key): an eavesdropper cannot link one owner's
 * sessions across suppliers, and the client reveals itself only to a
 * server whose signature it has checked (and, in net/, whose key it has
 * pinned). Everything read here comes from the peer: checked, never
 * asserted. */
#include <errno.h>
#include <string.h>

#include "crypto/crypto.h"

#define HS_LABEL_TH	"peerfs-hs-v3"
#define HS_LABEL_SRV	"peerfs-hs-server"
#define HS_LABEL_CLI	"peerfs-hs-client"
#define HS_LABEL_FIN	"peerfs-hs-finish"
#define HS_LABEL_MAX	16

/* Offsets in HELLO and REPLY. */
#define HS_O_EPH	8
#define HS_O_ID		(8 + 32)
#define HS_O_SIG	(8 + 32 + 32)
#define HS_O_HDR	(HS_O_SIG + CR_SIG_BYTES)
/* FINISH: the sealed client identity, then the stream header. */
#define HS_FIN_PLAIN	(CR_PK_BYTES + CR_SIG_BYTES)
#define HS_FIN_BOX	(HS_FIN_PLAIN + crypto_aead_xchacha20poly1305_ietf_ABYTES)

_Static_assert(CR_HS_HELLO_BYTES == 8 + 32, "HELLO size");
_Static_assert(CR_HS_FINISH_BYTES == HS_FIN_BOX + 24, "FINISH size");
_Static_assert(CR_HS_REPLY_BYTES >= CR_HS_FINISH_BYTES &&
    CR_HS_REPLY_BYTES >= CR_HS_HELLO_BYTES, "net/ buffers hold a REPLY");

_Static_assert(CR_STREAM_ABYTES == crypto_secretstream_xchacha20poly1305_ABYTES,
    "stream tag size");
_Static_assert(crypto_secretstream_xchacha20poly1305_HEADERBYTES == 24,
    "stream header size");
_Static_assert(crypto_kx_PUBLICKEYBYTES == 32 &&
    crypto_kx_SESSIONKEYBYTES == 32, "kx sizes");

/* th = BLAKE2b-256("peerfs-hs-v3" | HELLO | REPLY without sig and header) */
static void
transcript(unsigned char th[CR_HASH_BYTES],
    const unsigned char hello[CR_HS_HELLO_BYTES], const unsigned char *reply)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, CR_HASH_BYTES);
	crypto_generichash_update(&st, (const unsigned char *)HS_LABEL_TH,
	    sizeof HS_LABEL_TH - 1);
	crypto_generichash_update(&st, hello, CR_HS_HELLO_BYTES);
	crypto_generichash_update(&st, reply, HS_O_SIG);
	crypto_generichash_final(&st, th, CR_HASH_BYTES);
}

/* Builds label | th, the message both signatures cover. */
static size_t
sig_msg(unsigned char *msg, const char *label, const unsigned char *th)
{
	size_t n = strlen(label);

	memcpy(msg, label, n);
	memcpy(msg + n, th, CR_HASH_BYTES);
	return n + CR_HASH_BYTES;
}

static void
sign_th(unsigned char sig[CR_SIG_BYTES], const char *label,
    const unsigned char *th, const struct cr_identity *me)
{
	unsigned char msg[HS_LABEL_MAX + CR_HASH_BYTES];

	crypto_sign_detached(sig, NULL, msg, sig_msg(msg, label, th), me->sk);
}

static int
verify_th(const unsigned char sig[CR_SIG_BYTES], const char *label,
    const unsigned char *th, const unsigned char pk[CR_PK_BYTES])
{
	unsigned char msg[HS_LABEL_MAX + CR_HASH_BYTES];

	if (crypto_sign_verify_detached(sig, msg, sig_msg(msg, label, th),
	    pk) != 0)
		return -EBADMSG;
	return 0;
}

/* Rejects small-order and non-canonical points up front, so a peer
 * cannot present a key that every signature would verify under. */
static int
check_id(const unsigned char pk[CR_PK_BYTES])
{
	return crypto_core_ed25519_is_valid_point(pk) ? 0 : -EPROTO;
}

/* The key that seals FINISH's identity: the client->server kx key hashed
 * with a label of its own over the transcript, so it is neither session
 * key. Used for one message only, hence the zero nonce. */
static void
finish_key(unsigned char key[32], const unsigned char kx_c2s[32],
    const unsigned char th[CR_HASH_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, kx_c2s, 32, 32);
	crypto_generichash_update(&st, (const unsigned char *)HS_LABEL_FIN,
	    sizeof HS_LABEL_FIN - 1);
	crypto_generichash_update(&st, th, CR_HASH_BYTES);
	crypto_generichash_final(&st, key, 32);
}

/* Session keys: each kx key hashed (as a BLAKE2b key) over the
 * transcript, binding the keys to this very handshake. */
static void
final_keys(struct cr_hs *hs, const unsigned char kx_rx[32],
    const unsigned char kx_tx[32])
{
	crypto_generichash(hs->rx_key, 32, hs->th, CR_HASH_BYTES, kx_rx, 32);
	crypto_generichash(hs->tx_key, 32, hs->th, CR_HASH_BYTES, kx_tx, 32);
}

int
cr_hs_client_hello(struct cr_hs *hs, const struct cr_identity *me,
    unsigned char out[CR_HS_HELLO_BYTES])
{
	memset(hs, 0, sizeof *hs);
	hs->is_client = 1;
	crypto_kx_keypair(hs->eph_pk, hs->eph_sk);
	(void)me;	/* no identity in the clear: it goes in FINISH */
	memcpy(hs->hello, CR_HS_MAGIC, 8);
	memcpy(hs->hello + HS_O_EPH, hs->eph_pk, 32);
	memcpy(out, hs->hello, CR_HS_HELLO_BYTES);
	return 0;
}

int
cr_hs_server_reply(struct cr_hs *hs, const struct cr_identity *me,
    const unsigned char hello[CR_HS_HELLO_BYTES],
    unsigned char out[CR_HS_REPLY_BYTES])
{
	unsigned char kx_rx[32], kx_tx[32];
	int rc = 0;

	memset(hs, 0, sizeof *hs);
	if (memcmp(hello, CR_HS_MAGIC, 8) != 0)
		return -EPROTO;
	memcpy(hs->hello, hello, CR_HS_HELLO_BYTES);
	crypto_kx_keypair(hs->eph_pk, hs->eph_sk);
	/* Fails on a small-order ephemeral key (all-zero shared secret). */
	if (crypto_kx_server_session_keys(kx_rx, kx_tx, hs->eph_pk,
	    hs->eph_sk, hello + HS_O_EPH) != 0) {
		rc = -EPROTO;
		goto out;
	}
	memcpy(out, CR_HS_MAGIC, 8);
	memcpy(out + HS_O_EPH, hs->eph_pk, 32);
	memcpy(out + HS_O_ID, me->pk, CR_PK_BYTES);
	transcript(hs->th, hs->hello, out);
	sign_th(out + HS_O_SIG, HS_LABEL_SRV, hs->th, me);
	final_keys(hs, kx_rx, kx_tx);
	finish_key(hs->fin_key, kx_rx, hs->th);
	crypto_secretstream_xchacha20poly1305_init_push(&hs->tx.st,
	    out + HS_O_HDR, hs->tx_key);
out:
	sodium_memzero(kx_rx, sizeof kx_rx);
	sodium_memzero(kx_tx, sizeof kx_tx);
	if (rc < 0)
		cr_hs_wipe(hs);
	return rc;
}

int
cr_hs_client_finish(struct cr_hs *hs, const struct cr_identity *me,
    const unsigned char reply[CR_HS_REPLY_BYTES],
    unsigned char out[CR_HS_FINISH_BYTES])
{
	static const unsigned char
	    zero_nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned char kx_rx[32], kx_tx[32], fin_key[32];
	unsigned char plain[HS_FIN_PLAIN];
	int rc;

	if (!hs->is_client)
		return -EINVAL;
	if (memcmp(reply, CR_HS_MAGIC, 8) != 0)
		return -EPROTO;
	if ((rc = check_id(reply + HS_O_ID)) < 0)
		return rc;
	if (crypto_kx_client_session_keys(kx_rx, kx_tx, hs->eph_pk,
	    hs->eph_sk, reply + HS_O_EPH) != 0) {
		rc = -EPROTO;
		goto out;
	}
	transcript(hs->th, hs->hello, reply);
	if ((rc = verify_th(reply + HS_O_SIG, HS_LABEL_SRV, hs->th,
	    reply + HS_O_ID)) < 0)
		goto out;
	final_keys(hs, kx_rx, kx_tx);
	if (crypto_secretstream_xchacha20poly1305_init_pull(&hs->rx.st,
	    reply + HS_O_HDR, hs->rx_key) != 0) {
		rc = -EPROTO;
		goto out;
	}
	finish_key(fin_key, kx_tx, hs->th);
	memcpy(plain, me->pk, CR_PK_BYTES);
	sign_th(plain + CR_PK_BYTES, HS_LABEL_CLI, hs->th, me);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out, NULL, plain,
	    sizeof plain, NULL, 0, NULL, zero_nonce, fin_key);
	crypto_secretstream_xchacha20poly1305_init_push(&hs->tx.st,
	    out + HS_FIN_BOX, hs->tx_key);
	memcpy(hs->peer_pk, reply + HS_O_ID, CR_PK_BYTES);
out:
	sodium_memzero(kx_rx, sizeof kx_rx);
	sodium_memzero(kx_tx, sizeof kx_tx);
	sodium_memzero(fin_key, sizeof fin_key);
	return rc;
}

int
cr_hs_server_finish(struct cr_hs *hs,
    const unsigned char finish[CR_HS_FINISH_BYTES])
{
	static const unsigned char
	    zero_nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned char plain[HS_FIN_PLAIN];
	int rc;

	if (hs->is_client)
		return -EINVAL;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL,
	    finish, HS_FIN_BOX, NULL, 0, zero_nonce, hs->fin_key) != 0)
		return -EBADMSG;
	if ((rc = check_id(plain)) < 0 ||
	    (rc = verify_th(plain + CR_PK_BYTES, HS_LABEL_CLI, hs->th,
	    plain)) < 0)
		return rc;
	if (crypto_secretstream_xchacha20poly1305_init_pull(&hs->rx.st,
	    finish + HS_FIN_BOX, hs->rx_key) != 0)
		return -EPROTO;
	memcpy(hs->peer_pk, plain, CR_PK_BYTES);
	return 0;
}

void
cr_hs_wipe(struct cr_hs *hs)
{
	sodium_memzero(hs->eph_sk, sizeof hs->eph_sk);
	sodium_memzero(hs->rx_key, sizeof hs->rx_key);
	sodium_memzero(hs->tx_key, sizeof hs->tx_key);
	sodium_memzero(hs->fin_key, sizeof hs->fin_key);
}

int
cr_stream_push_ad(struct cr_stream *s, unsigned char *c, const void *m,
    size_t mlen, const unsigned char *ad, size_t adlen)
{
	if (mlen > crypto_secretstream_xchacha20poly1305_MESSAGEBYTES_MAX)
		return -EMSGSIZE;
	crypto_secretstream_xchacha20poly1305_push(&s->st, c, NULL, m, mlen,
	    adlen ? ad : NULL, adlen,
	    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
	return 0;
}

int
cr_stream_pull_ad(struct cr_stream *s, void *m, const unsigned char *c,
    size_t clen, const unsigned char *ad, size_t adlen)
{
	unsigned char tag;

	if (clen < CR_STREAM_ABYTES)
		return -EINVAL;
	if (crypto_secretstream_xchacha20poly1305_pull(&s->st, m, NULL, &tag,
	    c, clen, adlen ? ad : NULL, adlen) != 0)
		return -EBADMSG;
	/* We only ever send TAG_MESSAGE: FINAL or REKEY is an attack or a
	 * bug, and accepting REKEY would silently change the keys. */
	if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
		return -EBADMSG;
	return 0;
}

