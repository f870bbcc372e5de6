/* tests/fuzz/fuzz_hs.c - libFuzzer target for the session handshake
 * (crypto/handshake.c), whose three messages are the first bytes a
 * stranger sends. The first input byte picks what the rest is:
 *   0: a HELLO to a server, then a FINISH for that session;
 *   1: a REPLY to a client that sent a HELLO;
 *   2: a mask XORed into a genuine REPLY (magic, keys, signature);
 *   3: a mask XORed into a genuine FINISH (sealed identity and signature).
 * Forged bytes must never complete a handshake: any success on a REPLY or
 * FINISH that was not made by the key it names abort()s, and so does a
 * genuine exchange that fails. Out-of-bounds access is ASan's job. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

static struct cr_identity *cli, *srv;

static struct cr_identity *
identity(unsigned char seed_byte)
{
	struct cr_identity *id = sodium_malloc(sizeof *id);
	unsigned char seed[32];

	if (!id)
		abort();
	memset(seed, seed_byte, sizeof seed);
	crypto_sign_seed_keypair(id->pk, id->sk, seed);
	memset(id->master, seed_byte, sizeof id->master);
	return id;
}

static void
take(unsigned char *out, size_t n, const uint8_t **p, size_t *len)
{
	size_t k = *len < n ? *len : n;

	memset(out, 0, n);
	memcpy(out, *p, k);
	*p += k;
	*len -= k;
}

/* 1 when mask[0..n) has a non-zero byte. */
static int
nonzero(const unsigned char *mask, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (mask[i])
			return 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char hello[CR_HS_HELLO_BYTES], reply[CR_HS_REPLY_BYTES];
	unsigned char fin[CR_HS_FINISH_BYTES], mask[CR_HS_REPLY_BYTES];
	static struct cr_hs c, s;
	int mode;

	if (!cli) {
		if (sodium_init() < 0)
			abort();
		cli = identity(1);
		srv = identity(2);
	}
	if (size < 1)
		return 0;
	mode = data[0] % 4;
	data++;
	size--;
	switch (mode) {
	case 0:
		take(hello, sizeof hello, &data, &size);
		if (cr_hs_server_reply(&s, srv, hello, reply) < 0)
			return 0;
		take(fin, sizeof fin, &data, &size);
		if (cr_hs_server_finish(&s, fin) == 0)
			abort();	/* a FINISH nobody could seal */
		break;
	case 1:
		take(reply, sizeof reply, &data, &size);
		if (cr_hs_client_hello(&c, cli, hello) < 0)
			abort();
		if (cr_hs_client_finish(&c, cli, reply, fin) == 0)
			abort();	/* a REPLY nobody signed */
		break;
	case 2:
	case 3:
		take(mask, sizeof mask, &data, &size);
		if (cr_hs_client_hello(&c, cli, hello) < 0 ||
		    cr_hs_server_reply(&s, srv, hello, reply) < 0)
			abort();
		if (mode == 2) {
			/* The stream header (last 24 bytes) fails later, at
			 * the first record: not masked here. */
			for (size_t i = 0; i < CR_HS_REPLY_BYTES - 24; i++)
				reply[i] ^= mask[i];
			int rc = cr_hs_client_finish(&c, cli, reply, fin);
			if ((rc == 0) == nonzero(mask, CR_HS_REPLY_BYTES - 24))
				abort();
			break;
		}
		if (cr_hs_client_finish(&c, cli, reply, fin) < 0)
			abort();
		for (size_t i = 0; i < CR_HS_FINISH_BYTES - 24; i++)
			fin[i] ^= mask[i];
		int rc = cr_hs_server_finish(&s, fin);
		if ((rc == 0) == nonzero(mask, CR_HS_FINISH_BYTES - 24))
			abort();
		if (rc == 0 && memcmp(s.peer_pk, cli->pk, CR_PK_BYTES) != 0)
			abort();
		break;
	}
	cr_hs_wipe(&c);
	cr_hs_wipe(&s);
	return 0;
}
