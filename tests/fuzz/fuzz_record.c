/* tests/fuzz/fuzz_record.c - libFuzzer target for net_record_decode: the
 * bytes any stranger can put in the DHT. Must never crash, read out of
 * bounds or accept a record that does not re-encode to the same bytes. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/dht.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_record r;

	if (size < 8)
		return 0;
	/* The first 8 bytes are the reader's clock, so expiry paths run. */
	uint64_t now = 0;
	for (int i = 0; i < 8; i++)
		now = now << 8 | data[i];
	if (net_record_decode(&r, data + 8, size - 8, now) != 0)
		return 0;
	/* Accepted: the fields are sane. */
	if (r.naddr < 1 || r.naddr > NET_RECORD_ADDRS || r.expires <= now)
		abort();
	for (int i = 0; i < r.naddr; i++)
		if (strlen(r.addr[i]) > NET_RECORD_ADDR_MAX)
			abort();
	return 0;
}
