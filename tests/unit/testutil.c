/* tests/unit/testutil.c - helpers shared by the unit tests (test.h). */
#include <stdlib.h>

#include "crypto/crypto.h"
#include "test.h"

struct cr_identity *
test_identity(void)
{
	struct cr_identity *id;

	if (cr_init() != 0 || !(id = sodium_malloc(sizeof *id)))
		abort();
	crypto_sign_keypair(id->pk, id->sk);
	randombytes_buf(id->master, sizeof id->master);
	return id;
}
