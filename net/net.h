/* net/net.h - the libuv side: sessions, the supplier server, and the
 * owner's client (placement, block upload and fetch).
 * Uses store/ and crypto/; never touches FUSE.
 * Functions return 0 (or a count) on success and -errno on failure.
 *
 * Background threads (started through worker.h):
 *
 *   name      count      owns                                  lock
 *   net-loop  1 per net  the client's libuv loop and every     net->lock: the
 *                        handle on it (sessions, timers,       op queue, online
 *                        requests); runs the ops that other    count, stopping;
 *                        threads queue. net_new starts it,     never held
 *                        net_free stops it (uv_async_send,     across a
 *                        the worker's wake hook)               callback
 *
 *   net-reach 1 per       the reachability checks (dial-backs,  none: its state
 *             net_reach  NAT-PMP); blocks, on no event loop  is its own
 *
 * net_supplier_run() starts none: its loop runs on the calling thread, and
 * fragment disk work goes to libuv's threadpool (uv_queue_work). */
#ifndef PEERFS_NET_H
#define PEERFS_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "crypto/crypto.h"
#include "store/store.h"

/* ==== supplier ===========================================================*/
/* Relays (net/relay.c): offering relaying, and reserving on relays. */
struct sockaddr;
struct net_dht_relays;

struct net_relay_conf {
	/* Limits (cli/options.c holds the defaults), every one > 0. */
	unsigned max_reservations;	/* nodes holding one at a time */
	unsigned max_circuits;		/* per reserved node */
	unsigned max_per_addr;		/* circuits asked from one address */
	uint64_t circuit_bytes;		/* both ways, then it is closed */
	uint64_t circuit_rate;		/* bytes per second, per circuit */
	/* Nodes renew their reservation this often (below the idle
	 * timeouts of the routers they sit behind); 0: 20 s. */
	unsigned keepalive_s;
};
struct net_relay_client_conf {
	const struct cr_identity *id;
	/* 1 while we need relays (nobody can dial us otherwise). */
	int (*want)(void *arg);
	/* Relays we may use (records that offer relaying, ours excluded),
	 * without blocking: how many filled. */
	int (*candidates)(void *arg, struct net_dht_relays *out);
	/* The relays holding our reservation now (n 0: none). */
	void (*on_change)(void *arg, const struct net_dht_relays *held);
	/* A circuit offered: connect to relay with req
	 * (net/internal.h's circuit request, as the server) and serve it. */
	int (*take)(void *arg, const struct sockaddr *relay, const char *name,
	    const unsigned char *req);
	void *arg;			/* of want, candidates, on_change */
	void *take_arg;			/* of take (the supplier sets it) */
};

struct net_supplier_conf {
	const struct cr_identity *id;
	const char *listen;		/* "HOST:PORT" */
	struct store_frag *frags;
	/* Called once the socket listens (e.g. to write a pid file or print
	 * the address); may be NULL. */
	void (*on_ready)(void *arg, const char *bound_addr);
	/* Called (on the server's loop) when an owner hands over a new
	 * locator (store_locator_put): announce under it now; may be NULL. */
	void (*on_locator)(void *arg);
	/* Called (on the server's loop) when an authenticated session goes
	 * silent and is closed by a deadline (idle, a frame or replies
	 * stuck): owners ping their sessions, so the path to us may have
	 * changed (a new outside address, a lapsed mapping); may be NULL. */
	void (*on_lost)(void *arg);
	void *arg;
	/* Tests only: a lying supplier that speaks the protocol but returns
	 * every fragment with bytes flipped (GET) and random AUDIT answers. */
	int test_lie;
	/* Tests only: a supplier from before RESERVE and ranged GETs,
	 * which closes the session on either as on any malformed record. */
	int test_old;
	/* Limits for peers it does not know, every one required (cli/'s
	 * option table holds the defaults): sessions in all (lowered when
	 * file descriptors are short), from one address, of one key;
	 * deadlines (ms) for the handshake, for a frame to make progress and
	 * replies to be read, for an idle session; bytes held for frames,
	 * requests (with their largest reply) and unsent replies of all
	 * sessions, beyond which only sessions holding nothing get in (a
	 * 32 MiB reserve). */
	unsigned max_sessions, max_per_addr, max_per_key;
	unsigned hs_timeout_ms, frame_timeout_ms, idle_timeout_ms;
	uint64_t inflight_max;
	/* Tests only: the first test_fail_accept sessions fail to allocate
	 * (the listener must live on). */
	unsigned test_fail_accept;
	/* The fair deal: bindings presented in RESERVE go here; NULL: none
	 * kept (--accept open or friends). */
	struct net_deal *deal;
	/* The fair deal's eviction: seconds a stranger may stay beyond what
	 * it earned plus credit before its data goes (--evict-grace); 0:
	 * never (no deal). */
	int64_t evict_grace_s;
	/* --relay: offer relaying with these limits; NULL: not a relay
	 * (circuit requests and RELAY_RESERVE are refused). */
	const struct net_relay_conf *relay;
	/* Reserve on relays while relay_client->want() says so (take is
	 * the supplier's own); NULL: never. */
	const struct net_relay_client_conf *relay_client;
};

/* The fair deal on the supplier's side (net/deal.c): owners' bindings of
 * their supplier nodes, and the ledger of this home's audits. */
struct net_deal;
int  net_deal_new(struct net_deal **out, const char *ledger_path);
void net_deal_free(struct net_deal *d);
/* Records that node acts for owner when bind (cr_bind_sign) says so;
 * -EBADMSG when it does not. Any thread. */
int  net_deal_bind(struct net_deal *d, const unsigned char owner[CR_PK_BYTES],
    const unsigned char node[CR_PK_BYTES],
    const unsigned char bind[CR_BIND_BYTES]);
/* store_frag_policy's earned(): what owner's node (owner itself when it
 * presented no binding) holds for this home and our audits proved. */
uint64_t net_deal_earned(void *d, const unsigned char owner[CR_PK_BYTES]);
/* Applies the eviction rule (store_frag_deal_evict) with the mount's
 * state from the ledger: returns how many owners were evicted, or -errno.
 * Disk work: call it off the loop. */
int net_deal_evict(struct net_deal *d, struct store_frag *sf, int64_t grace_s);

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
struct net_reach;

struct net_conf {
	const struct cr_identity *id;
	struct store *store;		/* for key pinning (store_peer_pin) */
	struct cr_ec *ec;		/* k + m from here */
	int timeout_ms;			/* per request */
	int reconnect_ms;		/* retry closed sessions */
	/* Monitoring (issue "keeping data alive"): every online supplier is
	 * pinged every ping_interval_ms; a supplier without an answer or
	 * session for suspect_after_ms is SUSPECT (no new placements), for
	 * dead_after_ms DEAD (replaced: its fragments get rebuilt). The gap
	 * between the two is the grace period that keeps a reboot from
	 * starting a rebuild storm. Every value > 0, dead >= suspect
	 * (-EINVAL otherwise): cli/options.c holds the defaults. */
	int ping_interval_ms;
	int suspect_after_ms;
	int dead_after_ms;
	/* Key of the audit nonces: cr_subkey(CR_SUBKEY_AUDIT). */
	unsigned char audit_key[CR_KEY_BYTES];
	/* The binding of this home's supplier node to our key, sent with
	 * every RESERVE (net/internal.h); have_bind 0: our node is our own
	 * key, nothing to send. */
	int have_bind;
	unsigned char bind_node[CR_PK_BYTES], bind_sig[CR_BIND_BYTES];
	/* --lan: the network is one private LAN, whose machines share an
	 * address block: placement ignores the address rule for private
	 * addresses (net_slot.lan), as for loopback. */
	int lan;
};

int  net_new(struct net **out, const struct net_conf *conf);
/* conf->lan. */
int  net_lan(const struct net *n);
/* The erasure code new blocks get (conf->ec). */
void net_code(const struct net *n, int *k, int *m);
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
/* The same with the block's key from cr_block_key (a caller that looked
 * for the block's id first need not hash the block twice). Both seal in
 * chunks (CR_SEAL_CHUNKED, out->seal): net_block_fetch_range reads a
 * part of such a block alone. */
int net_block_store_keyed(struct net *n, const void *plain, size_t len,
    const unsigned char key[CR_KEY_BYTES], struct store_block *out);
/* The same in format fmt (CR_SEAL_*): index blocks stay CR_SEAL_WHOLE,
 * their records in a head have no place for the format. */
int net_block_store_fmt(struct net *n, const void *plain, size_t len,
    const unsigned char key[CR_KEY_BYTES], int fmt, struct store_block *out);

/* Fetches fragments of b from the suppliers in b->peer (skipping those
 * marked b->lost and DEAD suppliers), fastest first,
 * keeps asking others until k fragments whose hash matches b->frag_hash
 * are in, decodes and opens the block into plain (b->plain_len bytes).
 * A fragment with a wrong hash is dropped with a log line. -EIO (with a
 * log line naming the unreachable suppliers) when k good fragments cannot
 * be had within the timeout. A block sealed in chunks takes its data
 * fragments unchecked at first: when all k of them come, the block opens
 * from them joined, every chunk checked by its own tag, and their hashes
 * are never computed; otherwise (a chunk failed, parity came) they are
 * checked then, and those that fail are dropped and asked for again as
 * above. */
int net_block_fetch(struct net *n, const struct store_block *b, void *plain);
/* The same, also reporting in *bad a bit (1u << i) for every fragment i
 * that a supplier returned with a wrong hash (forged or corrupt) or said
 * it lacks (ENOENT), so the
 * caller can mark it lost and queue the block for rebuild. Such a
 * supplier also loses score; one that does it repeatedly (3 times) is
 * fired: DEAD. */
int net_block_fetch_report(struct net *n, const struct store_block *b,
    void *plain, uint32_t *bad);

/* Range read (net/range.c): the plaintext of chunks [first, first +
 * count) of a block sealed in chunks (b->seal CR_SEAL_CHUNKED) into plain
 * (from its chunk first on), fetched as byte ranges of the data
 * fragments that hold them, each chunk checked by its own tag. All or
 * nothing, and no retries: -ENOTSUP (another format, or a code whose
 * fragments are not plain slices), -EAGAIN (a data fragment's holder is
 * not up, marked lost, or predates ranges), -EBADMSG (a chunk fails its
 * tag: logged), -EINVAL (chunks outside the block), or a request's
 * error. On any of them read the block whole (net_block_fetch_report):
 * that path finds and reports bad fragments. */
int net_block_fetch_range(struct net *n, const struct store_block *b,
    uint32_t first, uint32_t count, void *plain);

/* Fragment bytes fetched so far to read blocks, whole or in ranges (not
 * those of rebuilds or audits): what reads cost the suppliers. */
uint64_t net_fetched_bytes(struct net *n);
/* Whole fetched fragments whose tags were checked so far (reads of
 * whole blocks, rebuilds' sources and copies): none for a healthy read
 * of a block sealed in chunks from its k data fragments, whose chunk
 * tags vouch for every byte instead. */
uint64_t net_tag_checks(struct net *n);

/* Rebuilds the fragments of b whose bit is set in `missing`: fetches k
 * good fragments from the others, reconstructs the missing ones
 * (cr_ec_reconstruct), stores each on an ONLINE supplier that holds no
 * other fragment of b (preferring distinct hosts, skipping SUSPECT and
 * DEAD ones and those that refuse, e.g. quota full, with a log line),
 * and on acknowledgement updates b->peer[i], clears b->lost[i] and
 * refills b's audit answers for i. Nothing is deleted. Returns the number
 * of fragments rebuilt (may be fewer than asked when suppliers are
 * short), -EIO when k good fragments cannot be had, -EAGAIN when no
 * supplier can take any. A missing fragment not marked lost whose
 * supplier holds another of b (doubled up by an upload) is copied from
 * there instead: one fragment fetched and checked, not k. A missing
 * fragment whose supplier is DEAD but connected again (net_peer_snap_up)
 * is fetched as a source when the others cannot make k, and rebuilt
 * elsewhere like the rest. *moved gets the bytes fetched + stored. */
int net_block_repair(struct net *n, struct store_block *b, uint32_t missing,
    uint64_t *moved);

/* Audits (proofs of storage). The nonce of challenge number j for
 * fragment i of block id is BLAKE2b-256 keyed by conf->audit_key over
 * id | i | j (u32 BE); the supplier answers BLAKE2b-256(nonce | fragment).
 * The owner keeps the first STORE_AUDIT_BYTES of the answers for the
 * nonce numbers [audit_end[i] - STORE_AUDITS, audit_end[i]) in the block
 * record; net_block_store fills them for j = 0..STORE_AUDITS-1
 * (audit_next 0, audit_end STORE_AUDITS). */
void net_audit_nonce(struct net *n, const unsigned char id[CR_ID_BYTES],
    int idx, uint32_t j, unsigned char nonce[CR_HASH_BYTES]);
/* Challenges fragment idx of b with nonce number b->audit_next[idx] and
 * checks the answer; advances audit_next (the caller stores b). When no
 * precomputed answer is left, fetches the fragment from that supplier,
 * checks its hash (a full proof), and computes the next STORE_AUDITS
 * answers into b (audit_end advances). 0 = good; -EBADMSG wrong answer or
 * forged fragment (score lowered, repeated offenders fired); -ENOENT the
 * supplier says it lacks it; -ETIMEDOUT/-EIO no answer; -EAGAIN the
 * supplier is not connected (nothing asked, audit_next unchanged). */
int net_frag_audit(struct net *n, struct store_block *b, int idx);

/* Asks one supplier to delete one fragment and waits for the answer:
 * 0 deleted or already absent; -EAGAIN supplier offline (retry later). */
int net_frag_delete(struct net *n, const unsigned char pk[CR_PK_BYTES],
    const unsigned char fragid[STORE_FRAGID_BYTES]);

/* State of a supplier by key: for callers deciding what to rebuild.
 * Returns NET_PEER_DEAD for unknown keys, but NET_PEER_CONNECTING while
 * some configured peer (not dead) has not been reached yet in this mount
 * (it may be that key), and NET_PEER_OFFLINE while shutting down. */
int net_peer_state(struct net *n, const unsigned char pk[CR_PK_BYTES]);

/* The suppliers our audits have vetted (owner/audit.c): a supplier not
 * among them takes at most one fragment of a block while vetted ones in
 * other address blocks can take the rest (net/place.c). count -1: every
 * supplier counts as vetted (--vet-after 0). Replaces the last list. */
int net_set_vetted(struct net *n, const unsigned char (*pk)[CR_PK_BYTES],
    int count);

/* The same answers for a pass over many blocks: the states of every peer
 * at one moment, taken in one trip to the loop thread (net_peer_state
 * makes one per call, and the loop also carries the uploads).
 * net_peer_snap_state answers as net_peer_state would have when the
 * snapshot was taken. take: 0 or -errno (-ESHUTDOWN while shutting down).
 * free accepts NULL. */
struct net_peer_snap;
int  net_peer_snap_take(struct net *n, struct net_peer_snap **out);
int  net_peer_snap_state(const struct net_peer_snap *s,
    const unsigned char pk[CR_PK_BYTES]);
/* 1 when pk's session was up, whatever its state: a DEAD supplier that
 * reconnected still serves its fragments as a source of last resort
 * (net_block_repair). */
int  net_peer_snap_up(const struct net_peer_snap *s,
    const unsigned char pk[CR_PK_BYTES]);
/* How many peers were ONLINE and are none of pk[0..npk); with
 * keeping_up, only those that were not lagging (an upload of ours went
 * around them within the last minute: net_peer_info.lagging). */
int  net_peer_snap_online_except(const struct net_peer_snap *s,
    const unsigned char (*pk)[CR_PK_BYTES], int npk, int keeping_up);
void net_peer_snap_free(struct net_peer_snap *s);

/* Asks every supplier in b->peer to delete its fragment of b; best
 * effort, returns once the requests are sent (net_frag_delete: one
 * fragment, waiting for the answer). */
int net_block_delete(struct net *n, const struct store_block *b);

/* CONNECTING: never reached yet in this mount; ONLINE: session up and
 * answering; OFFLINE: down for less than suspect_after (still trusted);
 * SUSPECT: down past suspect_after, no new placements; DEAD: down past
 * dead_after or fired for forged data or failed audits; its fragments
 * must be rebuilt elsewhere. DEAD is sticky for the life of the mount,
 * but for a supplier dead only for being unreachable that the hirer takes
 * back (net_peer_revive). */
enum net_peer_state { NET_PEER_CONNECTING, NET_PEER_ONLINE, NET_PEER_OFFLINE,
	NET_PEER_SUSPECT, NET_PEER_DEAD };

/* ---- policy, pure: state in, decision out ------------------------------
 * The rules the client's loop applies, callable without a loop, sockets
 * or a store, so that the durability simulator (sim/) runs the same code
 * as the daemon and tests drive it directly. */

/* The state a peer in st moves to after down_ms without an answer
 * (net/client.c's monitor, every tick): CONNECTING, OFFLINE and SUSPECT
 * age into SUSPECT at suspect_ms and DEAD at dead_ms; ONLINE and DEAD
 * stay as they are. */
enum net_peer_state net_peer_verdict(enum net_peer_state st,
    uint64_t down_ms, uint64_t suspect_ms, uint64_t dead_ms);

/* Placement rules (net/place.c): no two fragments of a block in one
 * address block (an IPv4 /24, an IPv6 /48; loopback addresses are
 * exempt: one machine, the demo and the tests), and at most unvetted_max
 * of them on suppliers not vetted yet. */
struct net_slot {
	const struct sockaddr_storage *sa;
	int vetted;
	/* Reached only through a relay: sa is the relay's, so no address
	 * block is known (the block rule skips it), and at most m of a
	 * block's fragments may sit on such suppliers, so that k can
	 * always be read without any relay (net_place_relayed_ok). */
	int relayed;
	/* A private address on a network declared one LAN (--lan): its
	 * block says nothing about who runs it (the block rule skips it). */
	int lan;
};
int  net_same_block(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b);
/* 1 when candidate c may take a fragment of a block whose other
 * fragments are on held[0..nheld). */
int  net_place_ok(const struct net_slot *held, int nheld,
    const struct net_slot *c, int unvetted_max);
/* How many fragments of a block of total may go to suppliers not vetted,
 * given the candidates c[0..nc): one, or as many as the vetted ones in
 * distinct address blocks leave over (a home whose suppliers are all new
 * must still store). */
int  net_place_unvetted_max(int total, const struct net_slot *c, int nc);
/* 1 when c may take a fragment of a block held by held[0..nheld) as far
 * as relays go: c is not relayed, or fewer than relayed_max (the code's
 * m) of the held ones are. */
int  net_place_relayed_ok(const struct net_slot *held, int nheld,
    const struct net_slot *c, int relayed_max);

/* Fragments of a block of n (at most 32, peer[i] all zero when never
 * placed) doubled up by an upload that had no spare for a laggard
 * (net/upload.c): those in cand whose supplier also holds a fragment in
 * good at a lower index. The owner counts the doubled ones of what
 * survives (cand = good = the fragments not missing: of two on one
 * supplier, the higher is the one to spread); the repair asks which of
 * the missing it can copy from where they sit (cand = missing and not
 * lost, good = not missing). */
uint32_t net_place_doubled(int n, const unsigned char (*peer)[CR_PK_BYTES],
    uint32_t good, uint32_t cand);

struct net_peer_info {
	unsigned char pk[CR_PK_BYTES];	/* zero until first handshake */
	char addr[64];
	enum net_peer_state state;
	double rtt_ms;			/* last ping round trip, -1 unknown */
	uint64_t fragments, bytes;	/* this owner's, as the supplier says */
	uint64_t avail, quota;		/* what we may still add there, and
					 * our quota there (its figures) */
	double score;			/* 0..1: rtt, failures, audits */
	uint64_t audits_ok, audits_failed, bad_fragments;
	uint64_t late;			/* GETs it was so late answering that
					 * another supplier was asked */
	uint64_t lags;			/* fragments sent to a spare instead,
					 * as its upload lagged */
	int lagging;			/* one did within the last minute: it
					 * gets new fragments last */
	char last_error[128];
	/* Why it refuses our data ("quota exceeded", "supplier full", "not
	 * admitted"), "" when it does not. */
	char refusal[64];
	/* How its record says it is reached: "direct", "mapped", "relay via
	 * ID", "" (given by address, or a record that does not say); or
	 * "direct (punched)": relayed, and our session to it became direct
	 * by hole punching (net/punch.c). */
	char reach[48];
	/* DEAD since (unix ms; 0: not dead); fired: for cause (forged data,
	 * failed audits, low availability, leaving), not only unreachable. */
	int64_t dead_at;
	int fired;
};

/* Fills up to max entries; returns the number of known peers. With
 * refresh, pings every online peer first (waits up to the timeout) so the
 * figures are fresh; without, returns what the last pings said (the client
 * pings every online peer every few seconds on its own). */
int net_peers(struct net *n, struct net_peer_info *out, int max, int refresh);


/* The supplier with key pk (or, never reached in this mount, the one
 * added at old, which may be NULL) now listens at hostport (its newer
 * DHT record says so): pins hostport -> pk, drops the session to the old
 * address and connects to the new one. Its state and clocks carry over,
 * so a supplier found again before dead_after is never rebuilt. 0 (also
 * when already there), -ENOENT no such peer, -EEXIST another peer has
 * that address, -EKEYREJECTED hostport is pinned to another key. */
int net_peer_move(struct net *n, const unsigned char pk[CR_PK_BYTES],
    const char *old, const char *hostport);
/* Notes how the supplier with key pk (or the one added at addr) is
 * reached, from its record ("direct", "mapped", "relay via ID", ""):
 * net_peers says it; relay (NULL: none) is the key of the relay it is
 * reached through, whose bytes net_relay_take counts. -ENOENT when no
 * such peer. */
int net_peer_set_reach(struct net *n, const unsigned char pk[CR_PK_BYTES],
    const char *addr, const char *how, const unsigned char *relay);
/* Hands over the bytes our sessions sent and received through each relay
 * since the last call (cb once per relay with bytes > 0) and starts
 * counting afresh: the fair deal credits them to the relay (owner/
 * audit.c, the ledger). Returns how many relays, -errno. */
int net_relay_take(struct net *n, void (*cb)(void *arg,
    const unsigned char pk[CR_PK_BYTES], uint64_t bytes), void *arg);
/* Fires the supplier with key pk (or, never reached in this mount, the
 * one added at addr, which may be NULL) now: DEAD, sticky, its fragments
 * get rebuilt elsewhere; logs why. Its session stays, so deletes still
 * reach it. -ENOENT when no such peer. */
int net_peer_fire(struct net *n, const unsigned char pk[CR_PK_BYTES],
    const char *addr, const char *why);
/* The supplier with key pk, declared DEAD only for being unreachable,
 * is hired again (the hirer decided: owner_hire_again): ONLINE if its
 * session is up, else CONNECTING, its suspect/dead clock started afresh.
 * 0 (also when it is not dead), -EPERM fired for cause (stays dead),
 * -ENOENT no such peer. */
int net_peer_revive(struct net *n, const unsigned char pk[CR_PK_BYTES]);

/* ==== recovery: signed heads and supplier listings =======================
 * (issue "Nothing lost"). Heads are made by cr_head_sign (crypto.h). */

/* Sends the head to every ONLINE supplier (HEAD_PUT) and waits for the
 * answers. Returns how many stored it, -EAGAIN when none is online. A
 * supplier answering ESTALE holds a newer head of ours than this one
 * (another node of this owner, or a rollback attempt): logged. */
int net_head_publish(struct net *n, const void *head, size_t len);
/* The same, counting the answers: how many suppliers were asked, stored
 * it and refused it with ESTALE (out may be NULL). */
struct net_head_tally {
	int asked, stored, stale;
};
int net_head_publish_count(struct net *n, const void *head, size_t len,
    struct net_head_tally *out);
/* Hands loc (the owner's locator, cr_subkey CR_SUBKEY_LOCATOR) to every
 * ONLINE supplier not told yet by this net, once each: the suppliers
 * holding our heads announce themselves under it in the DHT. Returns how
 * many kept it (0: nobody new), -errno. */
int net_locator_put(struct net *n, const unsigned char loc[32]);

/* Asks every ONLINE supplier for its newest heads of this owner (at most
 * max each, 0 = all it keeps), verifies each (cr_head_verify and owner ==
 * our key; anything else is logged naming the supplier and skipped) and
 * calls cb(arg, supplier address, seq, head, len) for each valid one.
 * Returns the number of suppliers that answered, -EAGAIN none online. */
int net_heads_fetch(struct net *n, int max,
    int (*cb)(void *arg, const char *addr, uint64_t seq, const void *head,
    size_t len), void *arg);

/* Lists every fragment this owner has on one supplier (LIST, paged):
 * cb(arg, fragid, size); stops when cb returns != 0. -EAGAIN when that
 * supplier is not online. For the orphan sweep. */
int net_frag_list(struct net *n, const unsigned char pk[CR_PK_BYTES],
    int (*cb)(void *arg, const unsigned char *fragid, uint64_t size),
    void *arg);

/* Adds a supplier whose key is already known (from a recovered index):
 * pins addr -> pk first, then connects as net_add_peer. */
int net_add_known_peer(struct net *n, const char *hostport,
    const unsigned char pk[CR_PK_BYTES]);

/* ==== reachability (net/reach.c) =========================================
 * Can others open a connection to our listen address? Asked of suppliers
 * we connect to (DIALBACK: they dial our own observed address back and
 * check our key there), else through a NAT-PMP or UPnP IGD port mapping
 * on the home router (refused when the router's outside address is private: double
 * NAT), renewed before its lease runs out. */
enum net_reach_state { NET_REACH_UNKNOWN, NET_REACH_DIRECT, NET_REACH_MAPPED,
	NET_REACH_NONE };
#define NET_REACH_ADDR_MAX	64

struct net_reach_conf {
	const struct cr_identity *id;
	const char *listen;		/* "HOST:PORT": our TCP listener */
	/* Fills up to max suppliers that may dial us back (address, key);
	 * returns how many. Called on net-reach. */
	int (*helpers)(void *arg, char (*addr)[NET_REACH_ADDR_MAX],
	    unsigned char (*pk)[CR_PK_BYTES], int max);
	/* The verdict changed (on net-reach): addr is what to announce
	 * (NULL for NET_REACH_NONE). */
	void (*on_change)(void *arg, enum net_reach_state st, const char *addr);
	void *arg;
	int recheck_ms;			/* > 0 */
	/* --lan: the network is one private LAN, so a private listen
	 * address is dialled back like any other (else only a port mapping
	 * on the router can make it reachable). */
	int lan;
};
/* Starts net-reach: a first check at once. -EINVAL, -ENOMEM, -errno. */
int  net_reach_start(struct net_reach **out, const struct net_reach_conf *c);
/* Checks again now (sessions dropped). Any thread; NULL ignored. */
void net_reach_kick(struct net_reach *r);
/* Stops net-reach and gives a NAT-PMP mapping back. NULL-safe. */
void net_reach_stop(struct net_reach *r);
/* "direct", "mapped", "not reachable", "unknown". */
const char *net_reach_name(enum net_reach_state s);
/* One dial-back, blocking (up to ~25 s): asks the supplier at via (whose
 * key must be via_pk) to connect to our observed address at port. 0 our
 * key answered there; a positive errno it did not (ECONNREFUSED,
 * ETIMEDOUT, EKEYREJECTED); -errno the helper could not be asked
 * (-EAGAIN busy, -ECONNRESET a supplier from before DIALBACK). */
int  net_reach_dialback(const struct cr_identity *id, const char *via,
    const unsigned char via_pk[CR_PK_BYTES], uint16_t port);
/* 1 for an IPv4 address in a private range (10/8, 172.16/12, 192.168/16,
 * 100.64/10, 169.254/16): nobody outside can reach it. */
int  net_addr_private(const char *host);

#endif
