/* net/net.h - the libuv side: sessions, the supplier server, and the
 * owner's client (placement, block upload and fetch).
 * Uses store/ and crypto/; never touches FUSE.
 * Functions return 0 (or a count) on success and -errno on failure. */
#ifndef PEERFS_NET_H
#define PEERFS_NET_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "store/store.h"

/* ==== supplier ===========================================================*/
struct net_supplier_conf {
	const struct cr_identity *id;
	const char *listen;		/* "HOST:PORT" */
	struct store_frag *frags;
	/* Called once the socket listens (e.g. to write a pid file or print
	 * the address); may be NULL. */
	void (*on_ready)(void *arg, const char *bound_addr);
	void *arg;
};

/* Serves until SIGTERM or SIGINT (handled with uv_signal on the loop),
 * then closes every session and returns 0. -EADDRINUSE etc. when it cannot
 * listen. Each owner is identified by the Ed25519 key of its session; a
 * fragment is stored (and acknowledged only after fsync), fetched, listed
 * and deleted only within its owner's namespace. */
int net_supplier_run(const struct net_supplier_conf *conf);

/* ==== owner's client =====================================================
 * One libuv loop on its own thread. Every function below is thread-safe and
 * may be called from FUSE worker threads; the blocking ones wait on a
 * condition variable for the loop to finish, never longer than
 * timeout_ms per network step. */
struct net;

struct net_conf {
	const struct cr_identity *id;
	struct store *store;		/* for key pinning (store_peer_pin) */
	struct cr_ec *ec;		/* k + m from here */
	int timeout_ms;			/* per request; 0 = 10000 */
	int reconnect_ms;		/* retry closed sessions; 0 = 1000 */
};

int  net_new(struct net **out, const struct net_conf *conf);
/* Closes sessions, stops the loop thread, frees. */
void net_free(struct net *n);

/* Adds a supplier by address and starts connecting (and reconnecting
 * whenever the session drops). Duplicate addresses are ignored. */
int net_add_peer(struct net *n, const char *hostport);
/* Waits until at least `count` sessions are up or timeout_ms passes;
 * returns the number of sessions up. */
int net_wait_online(struct net *n, int count, int timeout_ms);

/* Seals len bytes (cr_block_seal with datakey), erasure-codes them, sends
 * fragment i to a distinct online supplier for every i (k + m suppliers,
 * preferring those with most space and lowest rtt), and returns when every
 * fragment is acknowledged (after fsync on the supplier). Fills *out
 * (refcount 0). -EAGAIN when fewer than k + m suppliers are online,
 * -EIO/-ETIMEDOUT when a supplier fails and no other one can take its
 * fragment. */
int net_block_store(struct net *n, const void *plain, size_t len,
    const unsigned char datakey[CR_KEY_BYTES], struct store_block *out);

/* Fetches fragments of b from the suppliers in b->peer, fastest first,
 * keeps asking others until k fragments whose hash matches b->frag_hash
 * are in, decodes and opens the block into plain (b->plain_len bytes).
 * A fragment with a wrong hash is dropped with a log line. -EIO (with a
 * log line naming the unreachable suppliers) when k good fragments cannot
 * be had within the timeout. */
int net_block_fetch(struct net *n, const struct store_block *b, void *plain);

/* Asks every supplier in b->peer to delete its fragment; best effort,
 * returns once the requests are sent. */
int net_block_forget(struct net *n, const struct store_block *b);

enum net_peer_state { NET_PEER_CONNECTING, NET_PEER_ONLINE, NET_PEER_OFFLINE };

struct net_peer_info {
	unsigned char pk[CR_PK_BYTES];	/* zero until first handshake */
	char addr[64];
	enum net_peer_state state;
	double rtt_ms;			/* last ping round trip, -1 unknown */
	uint64_t fragments, bytes;	/* this owner's, as the supplier says */
	uint64_t avail, quota;		/* supplier's free space and quota */
	char last_error[128];
};

/* Fills up to max entries; returns the number of known peers. With
 * refresh, pings every online peer first (waits up to the timeout) so the
 * figures are fresh; without, returns what the last pings said (the client
 * pings every online peer every few seconds on its own). */
int net_peers(struct net *n, struct net_peer_info *out, int max, int refresh);

#endif
