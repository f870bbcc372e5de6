/* tests/tools/crypto_floor.c - the CPU that the block format and the wire
 * require per GB, with no I/O at all, for make bench: each step a block
 * takes on its way to the suppliers (as net_block_store_fmt and a
 * session do it) and back, timed alone over random 4 MiB blocks with the
 * project's own functions, one thread, CPU time. Beside the mount
 * daemon's and a supplier's whole CPU per GB it says how much of that is
 * the format's arithmetic, which no I/O or threading change can remove.
 *
 *   crypto_floor [MiB] [k m]     (default 256 MiB, 4 + 2)
 *
 * Prints one figure per line, "name value s/GB": per GB written for the
 * owner (by step, then owner_crypto_s_per_GB, their sum), per GB
 * received for a supplier (supplier_crypto_s_per_GB: the session's MAC
 * over every fragment), per GB read cold for the owner
 * (read_crypto_s_per_GB). Exits 1 when any step fails (a tag that does
 * not check is a bug, not a figure). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "net/internal.h"

enum { KEY, SEAL, EC, TAGS, AUDITS, MAC, SUP_MAC, RD_MAC, RD_TAGS, RD_DEC,
       RD_OPEN, NSTEP };

static const char *const step_name[NSTEP] = {
	[KEY] = "crypto_block_key_s_per_GB",
	[SEAL] = "crypto_seal_s_per_GB",
	[EC] = "crypto_ec_encode_s_per_GB",
	[TAGS] = "crypto_frag_tags_s_per_GB",
	[AUDITS] = "crypto_audit_answers_s_per_GB",
	[MAC] = "crypto_session_mac_s_per_GB",
};

static double
cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One direction of a session, both ends: push on tx, pull on rx. */
static void
session(struct cr_stream *tx, struct cr_stream *rx)
{
	unsigned char key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
	unsigned char hdr[crypto_secretstream_xchacha20poly1305_HEADERBYTES];

	crypto_secretstream_xchacha20poly1305_keygen(key);
	crypto_secretstream_xchacha20poly1305_init_push(&tx->st, hdr, key);
	crypto_secretstream_xchacha20poly1305_init_pull(&rx->st, hdr, key);
}

static int
fail(const char *what)
{
	fprintf(stderr, "crypto_floor: %s failed\n", what);
	return 1;
}

int
main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	int k = argc > 3 ? atoi(argv[2]) : 4, m = argc > 3 ? atoi(argv[3]) : 2;
	const size_t bs = 4u << 20;
	size_t nblocks = mib / 4 ? mib / 4 : 1, frag_len, slen, out_len;
	unsigned char datakey[CR_KEY_BYTES], key[CR_KEY_BYTES], tag[CR_HASH_BYTES];
	unsigned char tags[CR_EC_MAX][CR_HASH_BYTES];
	unsigned char nonce[CR_HASH_BYTES], hdr[64], rec[64 + CR_STREAM_ABYTES];
	unsigned char *plain, *sealed, *back, *frags[CR_EC_MAX];
	struct cr_stream tx, rx;
	struct cr_ec *ec;
	double t[NSTEP] = { 0 }, t0, owner = 0, read = 0, gb;
	int total = k + m;

	/* As the daemons do (peerfs.c): buffers reused, not faulted in. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	if (sodium_init() < 0 || cr_ec_new(&ec, k, m) < 0)
		return fail("setting up");
	slen = cr_sealed_len(CR_SEAL_CHUNKED, bs);
	plain = malloc(bs);
	sealed = malloc(slen);
	back = malloc(slen);
	if (!plain || !sealed || !back)
		return fail("malloc");
	randombytes_buf(datakey, sizeof datakey);
	randombytes_buf(hdr, sizeof hdr);
	session(&tx, &rx);
	for (size_t b = 0; b < nblocks; b++) {
		randombytes_buf(plain, bs);
		t0 = cpu_now();
		cr_block_key(key, plain, bs, datakey);
		t[KEY] += cpu_now() - t0;
		t0 = cpu_now();
		cr_block_seal_fmt(CR_SEAL_CHUNKED, sealed, key, plain, bs);
		t[SEAL] += cpu_now() - t0;
		t0 = cpu_now();
		if (cr_ec_encode(ec, sealed, slen, frags, &frag_len) < 0)
			return fail("cr_ec_encode");
		t[EC] += cpu_now() - t0;
		t0 = cpu_now();
		for (int i = 0; i < total; i++)
			cr_frag_tag(tags[i], key, ec, i, frags[i], frag_len);
		t[TAGS] += cpu_now() - t0;
		t0 = cpu_now();
		for (int i = 0; i < total; i++)
			for (int j = 0; j < STORE_AUDITS; j++) {
				randombytes_buf(nonce, sizeof nonce);
				net__audit_answer(tag, nonce, frags[i],
				    frag_len);
			}
		t[AUDITS] += cpu_now() - t0;
		/* A PUT: a small header sealed, the fragment authenticated
		 * as its additional data; the supplier checks it. */
		for (int i = 0; i < total; i++) {
			t0 = cpu_now();
			cr_stream_push_ad(&tx, rec, hdr, sizeof hdr, frags[i],
			    frag_len);
			t[MAC] += cpu_now() - t0;
			t0 = cpu_now();
			if (cr_stream_pull_ad(&rx, hdr, rec, sizeof rec,
			    frags[i], frag_len) < 0)
				return fail("the PUT's MAC");
			t[SUP_MAC] += cpu_now() - t0;
		}
		/* A cold read of the block: k data fragments received
		 * (their MAC checked), their tags checked, decoded, opened. */
		for (int i = 0; i < k; i++) {
			cr_stream_push_ad(&tx, rec, hdr, sizeof hdr, frags[i],
			    frag_len);
			t0 = cpu_now();
			if (cr_stream_pull_ad(&rx, hdr, rec, sizeof rec,
			    frags[i], frag_len) < 0)
				return fail("the GET_OK's MAC");
			t[RD_MAC] += cpu_now() - t0;
		}
		t0 = cpu_now();
		for (int i = 0; i < k; i++)
			if (cr_frag_check(tags[i], key, ec, i, frags[i],
			    frag_len) < 0)
				return fail("a fragment's tag");
		t[RD_TAGS] += cpu_now() - t0;
		t0 = cpu_now();
		if (cr_ec_decode(ec, frags, k, frag_len, back, slen,
		    &out_len) < 0 || out_len != slen)
			return fail("cr_ec_decode");
		t[RD_DEC] += cpu_now() - t0;
		t0 = cpu_now();
		if (cr_block_open_fmt(CR_SEAL_CHUNKED, plain, back, slen, key,
		    NULL) < 0)
			return fail("opening the block");
		t[RD_OPEN] += cpu_now() - t0;
		cr_ec_encode_free(ec, frags);
	}
	gb = (double)nblocks * (double)bs / 1e9;
	for (int s = KEY; s <= MAC; s++) {
		printf("%s %.2f s/GB\n", step_name[s], t[s] / gb);
		owner += t[s];
	}
	printf("owner_crypto_s_per_GB %.2f s/GB\n", owner / gb);
	/* Per GB the supplier received: (k + m) / k GB per GB written. */
	printf("supplier_crypto_s_per_GB %.2f s/GB\n",
	    t[SUP_MAC] / (gb * total / k));
	for (int s = RD_MAC; s <= RD_OPEN; s++)
		read += t[s];
	printf("read_crypto_s_per_GB %.2f s/GB\n", read / gb);
	cr_ec_free(ec);
	free(plain);
	free(sealed);
	free(back);
	return 0;
}
