/* crypto/crypto.h - identity and key file, block sealing, erasure coding,
 * session handshake. Uses libsodium and liberasurecode; knows no other layer.
 *
 * Every function returns 0 (or a length) on success and -errno on failure.
 * Keys live in sodium_malloc() memory and are never logged. */
#ifndef PEERFS_CRYPTO_H
#define PEERFS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#define CR_PK_BYTES	32	/* Ed25519 public key = peer id */
#define CR_SK_BYTES	64
#define CR_SIG_BYTES	64
#define CR_KEY_BYTES	32
#define CR_HASH_BYTES	32	/* BLAKE2b-256 */
#define CR_ID_BYTES	32	/* block id: cr_block_id() */
#define CR_SEAL_ABYTES	16	/* XChaCha20-Poly1305 tag appended to a block */
#define CR_STREAM_ABYTES 17	/* crypto_secretstream_xchacha20poly1305_ABYTES */
#define CR_EC_MAX	32	/* k + m at most */

/* Must be called once (thread-safe, idempotent). -EIO when libsodium fails. */
int cr_init(void);

/* ---- identity and key file ---------------------------------------------- */

struct cr_identity {
	unsigned char pk[CR_PK_BYTES];		/* Ed25519 public key */
	unsigned char sk[CR_SK_BYTES];		/* Ed25519 secret key */
	unsigned char master[CR_KEY_BYTES];	/* master secret for subkeys */
};

/* Creates a fresh identity (new Ed25519 keypair, random master) and writes
 * it to path (mode 0600, created with O_EXCL: -EEXIST if present), sealed
 * with passphrase via crypto_pwhash Argon2id (OPSLIMIT/MEMLIMIT_MODERATE;
 * the limits are stored in the file, so files of the INTERACTIVE days
 * still open)
 * + crypto_secretbox. passphrase NULL or "" means no passphrase (a fixed
 * empty passphrase is used, the file records that none was set).
 * On success *out is sodium_malloc()'d; free with cr_identity_free(). */
int cr_keyfile_create(const char *path, const char *passphrase,
    struct cr_identity **out);

/* The same for an existing identity (e.g. from a recovery code). */
int cr_keyfile_write(const char *path, const char *passphrase,
    const struct cr_identity *id);

/* Loads and opens the key file. -ENOENT no file; -EACCES wrong passphrase
 * (or passphrase required: passphrase NULL for a protected file);
 * -EINVAL malformed file. */
int cr_keyfile_load(const char *path, const char *passphrase,
    struct cr_identity **out);

/* 1 when the key file was sealed with a real passphrase, 0 when not. */
int cr_keyfile_has_passphrase(const char *path);

void cr_identity_free(struct cr_identity *id);

/* The binding of a supplier node key to an owner key: one person, one
 * peer, so that a supplier running unattended (without the owner's
 * passphrase) acts for that owner. Both keys sign "peerfs node binding
 * v1" | owner pk | node pk (Ed25519): the owner's signature says the node
 * is its own, the node's that it agrees, so no owner can claim what
 * another person's node stores. bind = owner's signature | node's. */
#define CR_BIND_BYTES	(2 * CR_SIG_BYTES)
void cr_bind_sign(const struct cr_identity *owner,
    const struct cr_identity *node, unsigned char bind[CR_BIND_BYTES]);
/* 0 when bind binds node to owner, -EBADMSG when not. */
int  cr_bind_verify(const unsigned char owner[CR_PK_BYTES],
    const unsigned char node[CR_PK_BYTES],
    const unsigned char bind[CR_BIND_BYTES]);

/* Subkeys of the master secret (crypto_kdf, context "peerfs__").
 * Ids: CR_SUBKEY_DATA for block keys, CR_SUBKEY_INDEX for the index,
 * CR_SUBKEY_AUDIT for audit nonces, CR_SUBKEY_LOCATOR for the DHT key
 * under which the suppliers holding our heads announce themselves (only
 * the master secret computes it: nobody can link it to the owner's id). */
enum { CR_SUBKEY_DATA = 1, CR_SUBKEY_INDEX = 2, CR_SUBKEY_AUDIT = 3,
	CR_SUBKEY_LOCATOR = 4 };
void cr_subkey(unsigned char out[CR_KEY_BYTES],
    const struct cr_identity *id, uint64_t subkey_id);

/* ---- hashing ------------------------------------------------------------- */

/* BLAKE2b-256 of p[0..n). */
void cr_hash(unsigned char out[CR_HASH_BYTES], const void *p, size_t n);

/* ---- block sealing --------------------------------------------------------
 * Convergent per owner: key = BLAKE2b-256 keyed by datakey over the
 * plaintext; nonce (24 bytes) = BLAKE2b-192 keyed by key over "peerfs-nonce"
 * (safe because a key encrypts exactly one plaintext); cipher
 * XChaCha20-Poly1305-IETF, no additional data; block id = BLAKE2b-256
 * keyed by key over "peerfs-block-id" (cr_block_id): one-way, equal for
 * equal plaintexts, and no extra pass over the block. */

/* The id of the block sealed under key. */
void cr_block_id(unsigned char id[CR_ID_BYTES],
    const unsigned char key[CR_KEY_BYTES]);

/* The convergent key of a plaintext (its id: cr_block_id). */
void cr_block_key(unsigned char key[CR_KEY_BYTES], const void *plain,
    size_t len, const unsigned char datakey[CR_KEY_BYTES]);

/* cipher must hold len + CR_SEAL_ABYTES bytes. Always succeeds (0).
 * cr_block_seal_keyed takes the key cr_block_key gave for plain. */
int cr_block_seal(unsigned char *cipher, unsigned char key[CR_KEY_BYTES],
    unsigned char id[CR_ID_BYTES], const void *plain, size_t len,
    const unsigned char datakey[CR_KEY_BYTES]);
void cr_block_seal_keyed(unsigned char *cipher,
    const unsigned char key[CR_KEY_BYTES], const void *plain, size_t len);

/* plain must hold clen - CR_SEAL_ABYTES bytes. Checks the id (when id is
 * not NULL) and the AEAD tag: -EBADMSG on any mismatch, -EINVAL when
 * clen < CR_SEAL_ABYTES. */
int cr_block_open(void *plain, const unsigned char *cipher, size_t clen,
    const unsigned char key[CR_KEY_BYTES], const unsigned char id[CR_ID_BYTES]);

/* ---- chunked sealing (the block format since issue 16) -------------------
 * A block record says how its block was sealed (its seal byte):
 * CR_SEAL_WHOLE, one AEAD over the whole plaintext (above: blocks stored
 * before, and index blocks, whose records in a head carry no seal byte),
 * or CR_SEAL_CHUNKED: the plaintext cut into CR_CHUNK_BYTES chunks (the
 * last one shorter; an empty block is one empty chunk), each sealed alone
 * with XChaCha20-Poly1305-IETF under the block key, its 16-byte tag right
 * after its ciphertext, so chunk i sits at sealed offset
 * i * CR_CHUNK_SEALED and a range of chunks can be fetched and opened
 * alone. Chunk i of n has nonce = BLAKE2b-192 keyed by the key over
 * "peerfs-chunk" | u32 BE i | u32 BE n: a chunk moved to another index,
 * or a sealed block cut short (n comes from the record's plain_len, not
 * from the bytes), fails its tag; one moved to another block meets
 * another key. The label differs from the whole format's, so the same
 * key sealing one plaintext in both formats never repeats a nonce.
 * Other values of the seal byte are formats this code does not know:
 * -ENOTSUP. */
enum { CR_SEAL_WHOLE = 0, CR_SEAL_CHUNKED = 1 };
#define CR_CHUNK_BYTES	(16u * 1024)
#define CR_CHUNK_SEALED	(CR_CHUNK_BYTES + CR_SEAL_ABYTES)

/* Chunks of a plain_len-byte block (at least 1). */
uint32_t cr_chunk_count(uint64_t plain_len);
/* Sealed length of a plain_len-byte block in format fmt; 0 for an
 * unknown format. */
uint64_t cr_sealed_len(int fmt, uint64_t plain_len);
/* cipher must hold cr_sealed_len(fmt, len) bytes. */
int cr_block_seal_fmt(int fmt, unsigned char *cipher,
    const unsigned char key[CR_KEY_BYTES], const void *plain, size_t len);
/* As cr_block_open for either format: clen must be cr_sealed_len(fmt,
 * plain length) (-EINVAL otherwise), -EBADMSG on any bad tag or id. */
int cr_block_open_fmt(int fmt, void *plain, const unsigned char *cipher,
    size_t clen, const unsigned char key[CR_KEY_BYTES],
    const unsigned char id[CR_ID_BYTES]);
/* Opens chunks [first, first + n) of a CR_SEAL_CHUNKED block of
 * plain_len bytes: cipher holds their sealed bytes (from sealed offset
 * first * CR_CHUNK_SEALED to the end of chunk first + n - 1), plain gets
 * their plaintext (from plain offset first * CR_CHUNK_BYTES). -EINVAL
 * when the range is outside the block, -EBADMSG when a tag fails (*bad,
 * when not NULL, gets that chunk's index). */
int cr_chunks_open(void *plain, const unsigned char *cipher,
    uint64_t plain_len, uint32_t first, uint32_t n,
    const unsigned char key[CR_KEY_BYTES], uint32_t *bad);

/* Check value of fragment idx of the block sealed under key and encoded
 * by ec: a Poly1305 tag (16 bytes, zero-padded to CR_HASH_BYTES) under a
 * one-time key derived from (key, idx, k, m, backend, len), so the same
 * block encoded under another --ec (other fragment bytes) never reuses a
 * one-time key. cr_frag_check: 0 when frag matches want, else -EBADMSG;
 * it also accepts the tag of the first format (key from (key, idx) only),
 * which the records of blocks stored before it still hold. */
struct cr_ec;
void cr_frag_tag(unsigned char out[CR_HASH_BYTES],
    const unsigned char key[CR_KEY_BYTES], const struct cr_ec *ec, int idx,
    const void *frag, size_t len);
int cr_frag_check(const unsigned char want[CR_HASH_BYTES],
    const unsigned char key[CR_KEY_BYTES], const struct cr_ec *ec, int idx,
    const void *frag, size_t len);
/* The first format's tag (tests, and cr_frag_check's fallback). */
void cr_frag_tag_v1(unsigned char out[CR_HASH_BYTES],
    const unsigned char key[CR_KEY_BYTES], int idx, const void *frag,
    size_t len);

/* ---- erasure coding (liberasurecode) -------------------------------------
 * Backend: ISA-L RS Vandermonde when available, else liberasurecode_rs_vand.
 * Fragments are liberasurecode fragments (their own header included), all
 * of the same length. An instance is safe to use from several threads. */
struct cr_ec;

/* k >= 1, m >= 1, k + m <= CR_EC_MAX; -EINVAL bad parameters, -ENOTSUP
 * when no backend works. */
int cr_ec_new(struct cr_ec **out, int k, int m);
void cr_ec_free(struct cr_ec *ec);
const char *cr_ec_backend(const struct cr_ec *ec);	/* "isa_l_rs_vand" ... */
int cr_ec_k(const struct cr_ec *ec);
int cr_ec_m(const struct cr_ec *ec);

/* Encodes len bytes into k + m fragments. On success frags[0..k+m) point
 * to fragments of *frag_len bytes each; release with cr_ec_encode_free().
 * Fragment i is the one with index i (data 0..k-1, parity k..k+m-1). */
int cr_ec_encode(struct cr_ec *ec, const void *data, size_t len,
    unsigned char *frags[CR_EC_MAX], size_t *frag_len);
void cr_ec_encode_free(struct cr_ec *ec, unsigned char *frags[CR_EC_MAX]);
/* Frees one fragment of cr_ec_encode's output on its own (as
 * liberasurecode's cleanup does each), for fragments that outlive the
 * others. */
void cr_ec_frag_free(void *frag);

/* Decodes from n >= k fragments (any order, each frag_len bytes, taken from
 * cr_ec_encode's output). Writes exactly the original bytes to out, which
 * must hold out_cap bytes; *out_len gets the original length.
 * -EIO when fewer than k usable fragments, -ENOSPC when out_cap is short,
 * -EBADMSG on inconsistent fragments. */
int cr_ec_decode(struct cr_ec *ec, unsigned char *const *frags, int n,
    size_t frag_len, void *out, size_t out_cap, size_t *out_len);

/* Rebuilds fragment idx from n >= k other fragments of the same block
 * into out (frag_len bytes), identical to what cr_ec_encode made. -EIO
 * with fewer than k usable fragments, -EBADMSG on inconsistent ones. */
int cr_ec_reconstruct(struct cr_ec *ec, unsigned char *const *frags, int n,
    size_t frag_len, int idx, unsigned char *out);

/* Where the encoded bytes lie in the data fragments: data fragment i
 * (i < k) of data_len bytes encoded into fragments of frag_len bytes
 * holds bytes [i * *payload, (i + 1) * *payload) of them (the code is
 * systematic; the tail is zero padding) at fragment offset *hdr onwards.
 * Computed from liberasurecode's alignment, checked against frag_len:
 * -ENOTSUP for a backend that puts its own metadata in fragments (then
 * only whole fragments can be decoded), -EINVAL when the sizes disagree. */
int cr_ec_data_layout(const struct cr_ec *ec, size_t data_len,
    size_t frag_len, size_t *hdr, size_t *payload);

/* Index (0..k+m-1) recorded in a fragment's header, or -EINVAL. */
int cr_ec_frag_index(const unsigned char *frag, size_t frag_len);

/* ---- session handshake ----------------------------------------------------
 * Three messages over a plain byte stream, then one secretstream per
 * direction:
 *   client -> server  HELLO  : "PEERFS3\0" | eph X25519 pk
 *   server -> client  REPLY  : "PEERFS3\0" | eph X25519 pk | Ed25519 pk
 *                              | sig_s(transcript) | secretstream header s->c
 *   client -> server  FINISH : AEAD_f(Ed25519 pk | sig_c(transcript))
 *                              | secretstream header c->s
 * transcript = BLAKE2b-256("peerfs-hs-v3" | HELLO | REPLY without sig and
 * header) for the server signature; the client signs the same hash with
 * the label "peerfs-hs-client". Session keys: crypto_kx from the
 * ephemeral keys, then each key = BLAKE2b-256 keyed by the kx key over the
 * transcript hash. AEAD_f is XChaCha20-Poly1305 with a zero nonce under
 * f = BLAKE2b-256 keyed by the client->server kx key over
 * "peerfs-hs-finish" | transcript hash: as in Noise XX, the client's
 * static key is sent only after the ephemeral exchange, encrypted, and
 * only to a server that has proven its own. Both sides learn and check
 * the peer's Ed25519 key. */
#define CR_HS_MAGIC "PEERFS3"		/* 8 bytes with the NUL; 2: records
					 * with bulk (net/internal.h); 3: the
					 * client's key sealed in FINISH */
#define CR_HS_HELLO_BYTES  (8 + 32)
#define CR_HS_REPLY_BYTES  (8 + 32 + 32 + 64 + 24)
#define CR_HS_FINISH_BYTES (32 + 64 + 16 + 24)

struct cr_stream {
	crypto_secretstream_xchacha20poly1305_state st;
};

struct cr_hs {
	int is_client;
	unsigned char eph_pk[32], eph_sk[32];
	unsigned char hello[CR_HS_HELLO_BYTES];
	unsigned char th[CR_HASH_BYTES];	/* transcript hash */
	unsigned char rx_key[32], tx_key[32];
	unsigned char fin_key[32];		/* server: opens FINISH */
	unsigned char peer_pk[CR_PK_BYTES];	/* valid after the handshake */
	struct cr_stream tx, rx;		/* valid after the handshake */
};

/* Client: fills HELLO (no identity in it: me is unused). */
int cr_hs_client_hello(struct cr_hs *hs, const struct cr_identity *me,
    unsigned char out[CR_HS_HELLO_BYTES]);
/* Server: checks HELLO (-EPROTO bad magic or ephemeral key), fills REPLY;
 * tx ready. The client is still anonymous. */
int cr_hs_server_reply(struct cr_hs *hs, const struct cr_identity *me,
    const unsigned char hello[CR_HS_HELLO_BYTES],
    unsigned char out[CR_HS_REPLY_BYTES]);
/* Client: checks REPLY (-EPROTO malformed, -EBADMSG bad signature), fills
 * FINISH; tx and rx ready, peer_pk set. */
int cr_hs_client_finish(struct cr_hs *hs, const struct cr_identity *me,
    const unsigned char reply[CR_HS_REPLY_BYTES],
    unsigned char out[CR_HS_FINISH_BYTES]);
/* Server: opens FINISH (-EBADMSG not sealed for this session or bad
 * signature, -EPROTO unusable key); rx ready, peer_pk set. */
int cr_hs_server_finish(struct cr_hs *hs,
    const unsigned char finish[CR_HS_FINISH_BYTES]);
/* Wipes ephemeral and session key material (streams stay usable). */
void cr_hs_wipe(struct cr_hs *hs);

/* One record of a direction: c gets mlen + CR_STREAM_ABYTES bytes (push);
 * m gets clen - CR_STREAM_ABYTES bytes (pull: -EBADMSG on a bad MAC or a
 * final/rekey tag, -EINVAL when clen < CR_STREAM_ABYTES). ad[0..adlen)
 * (may be NULL, 0) is authenticated (Poly1305, length included) but
 * neither encrypted nor copied: the receiver must pass the very same
 * bytes. For bulk that is already ciphertext (net/ records' fragments). */
int cr_stream_push_ad(struct cr_stream *s, unsigned char *c, const void *m,
    size_t mlen, const unsigned char *ad, size_t adlen);
int cr_stream_pull_ad(struct cr_stream *s, void *m, const unsigned char *c,
    size_t clen, const unsigned char *ad, size_t adlen);

/* ---- recovery code (crypto/recovery.c) ------------------------------------
 * Everything needed to recover an identity: the Ed25519 seed and the
 * master secret, with a version and a checksum, written as groups a person
 * can copy down: base32 (RFC 4648 alphabet, case-insensitive, no padding),
 * groups of 5 characters = 4 data characters + 1 check character over the
 * group's data and its position, separated by '-' (newlines and spaces
 * ignored on input). A mistyped group is found by its own check; a swapped
 * group by the overall BLAKE2b checksum. */
#define CR_RECOVERY_MAX 256	/* bytes of the text, NUL included */

/* Writes the code (NUL-terminated) into out; returns its length. */
int cr_recovery_encode(const struct cr_identity *id, char *out, size_t cap);
/* Parses a code. -EINVAL with *bad_group = the 1-based number of the first
 * group that fails its check (or has a character outside the alphabet),
 * -EBADMSG when every group checks but the whole does not (*bad_group 0),
 * -EPROTO wrong length or version. On success *out is sodium_malloc()'d
 * (pk recomputed from the seed). */
int cr_recovery_decode(const char *text, struct cr_identity **out,
    int *bad_group);

/* ---- signed heads and sealed blobs (crypto/head.c) ------------------------
 * A head names the newest version of an owner's index. Serialized:
 *   "PFSHEAD1" | owner pk 32 | seq u64 BE | time u64 BE | blob_len u32 BE |
 *   blob | Ed25519 signature 64 over everything before it,
 * or, with the index it names told in clear (so that a supplier can tell
 * a head that only renews the write lease on the same index from a new
 * version, store/heads.c):
 *   "PFSHEAD2" | owner pk 32 | seq | time | index u64 BE | blob_len |
 *   blob | signature.
 * index is opaque (equal for heads naming the same index); a PFSHEAD1
 * head reads as index = seq. The blob is opaque here (the index's block
 * records, sealed with the index key by cr_blob_seal), at most
 * CR_HEAD_BLOB_MAX bytes (CR_HEAD2_BLOB_MAX in a PFSHEAD2 head: both fit
 * CR_HEAD_FIXED + CR_HEAD_BLOB_MAX bytes). */
#define CR_HEAD_MAGIC "PFSHEAD1"
#define CR_HEAD2_MAGIC "PFSHEAD2"
#define CR_HEAD_BLOB_MAX (1u << 20)
#define CR_HEAD2_BLOB_MAX (CR_HEAD_BLOB_MAX - 8)
#define CR_HEAD_FIXED (8 + 32 + 8 + 8 + 4 + 64)

struct cr_head {
	unsigned char owner[CR_PK_BYTES];
	uint64_t seq;
	uint64_t time;
	uint64_t index;
	const unsigned char *blob;	/* points into the verified buffer */
	uint32_t blob_len;
};

/* *out is malloc()'d, *out_len = CR_HEAD_FIXED + blob_len. */
int cr_head_sign(const struct cr_identity *id, uint64_t seq, uint64_t time,
    const void *blob, size_t blob_len, unsigned char **out, size_t *out_len);
/* A PFSHEAD2 head: *out_len = CR_HEAD_FIXED + 8 + blob_len. */
int cr_head2_sign(const struct cr_identity *id, uint64_t seq, uint64_t time,
    uint64_t index, const void *blob, size_t blob_len, unsigned char **out,
    size_t *out_len);
/* Checks the format (-EPROTO) and the signature by the owner key inside it
 * (-EBADMSG); fills *h pointing into p. */
int cr_head_verify(const unsigned char *p, size_t n, struct cr_head *h);

/* Non-convergent sealing for small secrets (the index's block records):
 * XChaCha20-Poly1305 with a random 24-byte nonce prepended.
 * *out malloc()'d, *out_len = len + 24 + CR_SEAL_ABYTES; open gives
 * -EBADMSG on a bad tag, -EINVAL when too short. */
int cr_blob_seal(const unsigned char key[CR_KEY_BYTES], const void *m,
    size_t len, unsigned char **out, size_t *out_len);
int cr_blob_open(const unsigned char key[CR_KEY_BYTES], const unsigned char *c,
    size_t clen, unsigned char **out, size_t *out_len);

#endif
