/* net/dht.h - finding peers: node records (net/record.c, pure) and a DHT
 * node on OpenDHT's Kademlia (net/dht.c, net/dht_run.cc).
 *
 * Every node may publish a record signed with its own Ed25519 key: its id
 * (the public key), the addresses it listens on, the free space it offers,
 * flags and a sequence number. The record is stored in the DHT under the
 * node's id and, for suppliers, under one well-known key. The DHT sees
 * ids, addresses and free space; never a name, a file or a byte of data.
 * A reader trusts nothing in a record but the signature: the address is
 * a hint, used only through a session whose handshake proves the key.
 *
 * Background threads (started through worker.h):
 *
 *   name      count       owns                                lock
 *   net-dht   1 per node  the node's libuv loop: re-announce  d->lock: the
 *                         timer, the async handle that        inbox, the
 *                         drains OpenDHT's callbacks, the     records, the
 *                         record table                        waiters' cond
 *
 * OpenDHT runs its own thread too (not ours to name): its callbacks only
 * copy bytes into the inbox and uv_async_send(); all decoding, checking
 * and bookkeeping happens on net-dht. */
#ifndef PEERFS_NET_DHT_H
#define PEERFS_NET_DHT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto/crypto.h"

/* ==== records (net/record.c) ============================================
 * Encoding, all integers big-endian:
 *   "PFNR" | u8 version (1) | u32 flags | u64 seq | u64 expires (unix s)
 *   | u64 free bytes | id[32] | u8 naddr | naddr x (u8 len | len bytes
 *   "HOST:PORT") | sig[64] (Ed25519 by id over every byte before it)
 * Version 2 (a node reached through relays, NET_RECORD_RELAYED) adds,
 * before the signature: u8 nrelay (= naddr) | nrelay x relay id[32]:
 * addr[i] is relay i's address, relay_id[i] its key. Only such records
 * are version 2: a reader from before relays refuses them, and it could
 * not have reached the node anyway. */
#define NET_RECORD_VERSION	1
#define NET_RECORD_VERSION_RELAYS	2
#define NET_RECORD_ADDRS	4	/* at most, per record */
#define NET_RECORD_ADDR_MAX	63	/* bytes of one "HOST:PORT" */
#define NET_RECORD_MAX	(4 + 1 + 4 + 8 + 8 + 8 + CR_PK_BYTES + 1 + \
	NET_RECORD_ADDRS * (1 + NET_RECORD_ADDR_MAX) + \
	1 + NET_RECORD_ADDRS * CR_PK_BYTES + CR_SIG_BYTES)
/* A record may not claim to live longer than this past its reader's now
 * (one that did could be replayed for ever). */
#define NET_RECORD_TTL_MAX	(2 * 24 * 3600)

/* Flags. Bits 8..15 are kept for how nodes behind home routers are
 * reached (net/reach.c); unknown bits are carried, never refused. */
#define NET_RECORD_SUPPLIER	0x1u	/* lends space: may be hired */
#define NET_RECORD_LEAVING	0x2u	/* supplier going away: hire no more */
#define NET_RECORD_RELAY_MASK	0xff00u
#define NET_RECORD_DIRECT	0x100u	/* a dial-back found it at its address */
#define NET_RECORD_MAPPED	0x200u	/* ... at a port its router mapped */
#define NET_RECORD_RELAYED	0x400u	/* ... only through the relays named */
#define NET_RECORD_REACH_MASK	(NET_RECORD_DIRECT | NET_RECORD_MAPPED | \
	NET_RECORD_RELAYED)
/* Offers relaying to nodes behind routers (`supplier --relay`). Not a
 * reachability bit: a relay is always direct or mapped itself. */
#define NET_RECORD_RELAY	0x800u

struct net_record {
	unsigned char id[CR_PK_BYTES];
	uint32_t flags;
	uint64_t seq;			/* higher replaces lower, per id */
	uint64_t expires;		/* unix seconds */
	uint64_t free_bytes;		/* offered, as the node says */
	int naddr;
	char addr[NET_RECORD_ADDRS][NET_RECORD_ADDR_MAX + 1];
	/* Version 2: 1..naddr relays (then nrelay == naddr); 0 otherwise. */
	int nrelay;
	unsigned char relay_id[NET_RECORD_ADDRS][CR_PK_BYTES];
};

/* Encodes and signs r with sk (r->id must be sk's public key). Returns the
 * length, -ENOSPC when cap is short, -EINVAL for a record that cannot be
 * encoded (no address, too many, an address too long or malformed,
 * nrelay neither 0 nor naddr). */
ssize_t net_record_encode(void *buf, size_t cap, const struct net_record *r,
    const unsigned char sk[CR_SK_BYTES]);
/* Decodes and checks buf as read from a stranger at unix time now: 0 and
 * *out filled, or -EPROTO malformed (bad magic, version, lengths, address
 * syntax, trailing bytes), -EBADMSG bad signature, -ETIME expired,
 * -ERANGE expiry too far ahead. *out is set only on success. */
int net_record_decode(struct net_record *out, const void *buf, size_t len,
    uint64_t now);

/* The newest record per id. add: 1 when r is new or replaces an older
 * one, 0 when the same seq is already held (a re-announce), -ESTALE when
 * a newer one is held (a replay: refused), -ENOMEM. */
struct net_record_set {
	struct net_record *r;
	size_t n, cap;
};
int  net_record_set_add(struct net_record_set *s, const struct net_record *r);
const struct net_record *net_record_set_find(const struct net_record_set *s,
    const unsigned char id[CR_PK_BYTES]);
void net_record_set_release(struct net_record_set *s);

/* ==== the DHT node (net/dht.c) ========================================== */
struct net_dht;

#define NET_DHT_NETWORK	0x70667331u	/* "pfs1": never merge with another DHT */

struct net_dht_conf {
	const struct cr_identity *id;
	/* "HOST:PORT": the UDP socket binds exactly there (port 0: any
	 * free port). Required. */
	const char *bind;
	/* "HOST:PORT" each; the only nodes ever contacted first. */
	const char *const *bootstrap;
	int nbootstrap;
	/* Publish our record (flags NET_RECORD_SUPPLIER: also under the
	 * suppliers key) with this address; NULL publishes nothing. */
	const char *announce_addr;
	uint32_t flags;
	/* Free space to offer, asked at each announce (on net-dht); NULL 0. */
	uint64_t (*free_bytes)(void *arg);
	void *arg;
	/* Re-announce period; 0 = 4 min (the DHT forgets a value 10 min
	 * after its last put). A record expires after 3 periods. */
	int announce_ms;
	/* Keep the suppliers key listened to (owners). */
	int watch_suppliers;
	/* Suppliers: the locators of the owners whose heads they hold
	 * (store_locator_list), asked at each announce (on net-dht): the
	 * record is put under each of them too. NULL: none. */
	int (*locators)(void *arg, unsigned char (*out)[32], int max);
};

/* Starts the node (OpenDHT's thread and net-dht) and bootstraps. Returns
 * 0, -EINVAL bad address, -EADDRINUSE, -errno. */
int  net_dht_new(struct net_dht **out, const struct net_dht_conf *conf);
/* Stops both threads, frees. NULL-safe. */
void net_dht_free(struct net_dht *d);

/* Waits until at least want supplier records (valid, not leaving, other
 * than our own) are known or wait_ms passes, then copies up to max of
 * them into out. Returns the number copied. Needs watch_suppliers. */
int  net_dht_suppliers(struct net_dht *d, int want, int wait_ms,
    struct net_record *out, int max);
/* Looks id up (its own key in the DHT) and waits up to wait_ms for a
 * valid record: 0 and *out, -ENOENT none found, -errno. */
int  net_dht_lookup(struct net_dht *d, const unsigned char id[CR_PK_BYTES],
    int wait_ms, struct net_record *out);

/* The newest valid record of id already held (from a lookup, or from
 * the suppliers key when watched), without asking the network: 0 and
 * *out, -ENOENT none. */
int  net_dht_record(struct net_dht *d, const unsigned char id[CR_PK_BYTES],
    struct net_record *out);

/* What we announce from now on: addr (NULL: nothing; the last record
 * expires) and the reachability bits (NET_RECORD_REACH_MASK) of our
 * flags; re-announced at once, from net-dht. Any thread. */
void net_dht_set_announce(struct net_dht *d, const char *addr, uint32_t reach);

/* The relays holding a reservation of ours (net/relay.c): while we
 * announce no address of our own (net_dht_set_announce NULL), our record
 * says NET_RECORD_RELAYED and names them (version 2); n 0: none. Any
 * thread; re-announced at once, from net-dht. */
struct net_dht_relays {
	int n;
	char addr[NET_RECORD_ADDRS][NET_RECORD_ADDR_MAX + 1];
	unsigned char id[NET_RECORD_ADDRS][CR_PK_BYTES];
};
void net_dht_set_relays(struct net_dht *d, const struct net_dht_relays *r);

/* Our record's flags from now on (NET_RECORD_LEAVING: hire no more, move
 * your fragments off): re-announced at once, from net-dht. */
void net_dht_set_flags(struct net_dht *d, uint32_t flags);

/* An owner's locator: a key derived from its master secret (only the
 * recovery code computes it). The suppliers holding its heads announce
 * their records under it, so a restore finds them through any node;
 * observers see a key they cannot link to the owner. */
#define NET_DHT_LOCATOR_BYTES	32
/* Announces now rather than at the next period (a new locator): safe
 * from any thread. */
void net_dht_announce_now(struct net_dht *d);
/* Waits until want valid supplier records were found under loc or
 * wait_ms passes; copies up to max into out and returns how many. */
int  net_dht_locate(struct net_dht *d,
    const unsigned char loc[NET_DHT_LOCATOR_BYTES], int want, int wait_ms,
    struct net_record *out, int max);

/* The UDP port the node is bound to (for bind port 0). */
int  net_dht_port(const struct net_dht *d);

/* Puts raw bytes under id's key, as anyone on the network could (tests:
 * a replayed or forged record). Returns at once. */
void net_dht_put_raw(struct net_dht *d, const unsigned char id[CR_PK_BYTES],
    const void *buf, size_t len);

/* How many records were refused since start (bad signature, malformed,
 * expired, replayed): for tests and status. */
uint64_t net_dht_refused(struct net_dht *d);

#endif
