/* net/internal.h - private to net/: the wire format codec (net/wire.c).
 *
 * On the TCP stream, after the handshake (crypto/crypto.h cr_hs_*, magic
 * "PEERFS3"), every record (format v2) is:
 *   u32 BE L | u32 BE B | L bytes: one secretstream message | B bytes: bulk
 * The secretstream message encrypts the header: u8 type | u64 BE request
 * id | payload without the bulk. The bulk travels in the clear: fragment
 * bytes are already ciphertext of a sealed block, so encrypting them again
 * would only burn CPU. From client to server (PUT) the bulk is the
 * message's additional data (cr_stream_push_ad), so the MAC binds it to
 * this record of this session and a supplier never stores bytes that
 * were changed on the way. From server to client (GET_OK) it is not:
 * the owner checks every fragment it fetches against its own tag
 * (cr_frag_check, under a key suppliers never learn) before any use, so
 * a second Poly1305 pass on both ends bought nothing but CPU (a tenth of
 * the owner's on a cold read). A fragment changed on the way fails that
 * check like a corrupt one.
 * The decrypted record is header | bulk: u8 type | u64 BE request id |
 * payload. Only PUT and GET_OK have a bulk, and their sender always puts
 * the fragment bytes there (B = fragment length, the header ends at
 * net_msg_data_offset(type)). The receiver closes the session unless
 * L >= CR_STREAM_ABYTES + NET_MSG_HDR, L + B <= NET_FRAME_MAX, the MAC
 * verifies, and B = 0 or (type PUT or GET_OK and the header is exactly
 * net_msg_data_offset(type) bytes).
 *
 *  type            payload
 *  PUT     0x01    fragid[33] | hash[32] | fragment bytes (>= 1); hash:
 *                  the owner's check value of the bytes (store_block
 *                  frag_hash), opaque to the supplier (store_frag_put)
 *  GET     0x02    fragid[33], optionally followed by u8 version (1) |
 *                  u32 off | u32 len (len >= 1): only the bytes [off,
 *                  off + len) of the fragment (a range read of a block
 *                  sealed in chunks, net/range.c), refused with ERR
 *                  ERANGE when they pass its end. A supplier from before
 *                  it closes the session on the longer GET: the owner
 *                  then reads whole fragments from it (net/range.c)
 *  DEL     0x03    fragid[33]
 *  LIST    0x04    after fragid[33] (all zero = from the start) | u32 max
 *  PING    0x05    (empty)
 *  AUDIT   0x06    fragid[33] | nonce[32]
 *  HEAD_PUT 0x07   a signed head (CR_HEAD_FIXED .. + CR_HEAD_BLOB_MAX bytes)
 *  HEAD_LIST 0x08  u32 max
 *  RESERVE 0x09    u32 size | u32 count: room for count fragments of at
 *                  most size bytes each (both >= 1), held for a while
 *                  (store_frag_reserve); refused with ERR EACCES (not
 *                  admitted), EDQUOT (the owner's quota, or beyond the
 *                  fair deal) or ENOSPC (full). Optionally followed by
 *                  u8 version (NET_BIND_VERSION) | node pk[32] |
 *                  bind[128]: the supplier node that acts for this owner,
 *                  signed by the owner's key and the node's
 *                  (cr_bind_verify); sent only by owners
 *                  whose node key differs from their own, so that
 *                  suppliers from before it see the 8 bytes they know
 *  LOCATOR 0x0A    u8 version (1) | locator[32]: the key under which
 *                  this supplier announces its node record in the DHT
 *                  while it holds the owner's heads (store_locator_put;
 *                  one per owner, replaced by the next), so that a
 *                  restore finds it from the recovery code alone
 *  PUT_OK  0x81    (empty)
 *  GET_OK  0x82    fragment bytes (>= 1)
 *  DEL_OK  0x83    (empty)
 *  LIST_OK 0x84    u32 n | n x (fragid[33] | u64 size)   (n <= 65536)
 *  PONG    0x85    u64 bytes | u64 fragments | u64 avail | u64 quota, all
 *                  the asking owner's own: what it stores, what it may
 *                  still add now, its quota (never the disk's or other
 *                  owners' figures)
 *  AUDIT_OK 0x86   answer[32] = net__audit_answer(nonce, fragment)
 *  HEAD_PUT_OK 0x87 (empty)
 *  HEAD_LIST_OK 0x88 u32 n | n x (u32 len | head bytes), newest first
 *  LOCATOR_OK 0x8A (empty)
 *  RESERVE_OK 0x89 u32 count granted (1 .. asked) | u64 the owner's
 *                  allowance left, its reservation included
 *  ERR     0xff    u32 errno (positive) | message (0..255 bytes, UTF-8)
 * A response carries the request id of its request. RESERVE came after
 * the rest without a new version: a supplier that predates it closes the
 * session on it, and the client then goes on with plain PUTs to that
 * supplier (net/upload.c). LOCATOR too: the client sends it once per
 * supplier and mount (net_locator_put), so such a supplier closes one
 * session once. A version byte other than 1 is malformed (-EPROTO). */
#ifndef PEERFS_NET_INTERNAL_H
#define PEERFS_NET_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto/crypto.h"
#include "store/store.h"

#define NET_FRAME_MAX	(16u * 1024 * 1024 + 4096)	/* ciphertext bytes */
#define NET_MSG_HDR	9				/* type + reqid */
#define NET_LIST_MAX	65536
#define NET_ERRMSG_MAX	255
#define NET_HEADS_MAX	64	/* HEAD_LIST_OK entries */
#define NET_LOCATOR_VERSION	1
/* DIALBACK (version 1): "dial me back": the supplier asked connects to
 * the asker's own observed address (never another) at the given port and
 * checks that the asker's key answers the handshake there. DIALBACK_OK's
 * result: 0 the key answered, else a positive errno (ECONNREFUSED,
 * ETIMEDOUT, EKEYREJECTED: another key answered). A supplier from before
 * it closes the session (unknown type): the asker tries another. */
#define NET_DIALBACK_VERSION	1
#define NET_RANGE_VERSION	1	/* GET's range */
/* Relays (version 1, net/relay.c), on an ordinary session to the relay:
 *  RELAY_RESERVE 0x0c  u8 version: hold a reservation for our key (or
 *                      renew it: sent again every keepalive); refused
 *                      with ERR EOPNOTSUPP (no relay), EUSERS (full),
 *                      and a reason
 *  RELAY_RESERVE_OK 0x8c u32 keepalive s (renew at least this often) |
 *                      u32 circuits at most at a time
 *  RELAY_INCOMING 0x0d from the relay, request id 0, no answer: u8
 *                      version | token[16]: someone asked for a circuit
 *                      to us: take it with an ACCEPT circuit (above)
 * A supplier from before relays closes the session on RELAY_RESERVE. */
#define NET_RELAY_VERSION	1
/* Hole punching (version 1, net/punch.c), on a session through a relay:
 *  PUNCH 0x0e      u8 version | u16 port: from the owner, which will
 *                  open a connection from that local port (its router
 *                  keeps ports) to the supplier's listen port. The
 *                  supplier first opens one itself from its listen port
 *                  to the owner's observed address (the relay's answer)
 *                  at that port, so that its own router lets the
 *                  owner's in, then answers; refused with ERR
 *                  EOPNOTSUPP (not through a relay that says where the
 *                  owner is) or EAGAIN (busy)
 *  PUNCH_OK 0x8e   u8 version | u16 port: the supplier's listen port
 * A supplier from before it closes the session on PUNCH: the owner asks
 * it no more for a long while. */
#define NET_PUNCH_VERSION	1

enum net_msg_type {
	NET_PUT = 0x01, NET_GET = 0x02, NET_DEL = 0x03, NET_LIST = 0x04,
	NET_PING = 0x05, NET_AUDIT = 0x06, NET_HEAD_PUT = 0x07,
	NET_HEAD_LIST = 0x08, NET_RESERVE = 0x09, NET_LOCATOR = 0x0a,
	NET_DIALBACK = 0x0b, NET_RELAY_RESERVE = 0x0c, NET_RELAY_INCOMING = 0x0d,
	NET_PUNCH = 0x0e,
	NET_PUT_OK = 0x81, NET_GET_OK = 0x82, NET_DEL_OK = 0x83,
	NET_LIST_OK = 0x84, NET_PONG = 0x85, NET_AUDIT_OK = 0x86,
	NET_HEAD_PUT_OK = 0x87, NET_HEAD_LIST_OK = 0x88, NET_RESERVE_OK = 0x89,
	NET_LOCATOR_OK = 0x8a, NET_DIALBACK_OK = 0x8b, NET_RELAY_RESERVE_OK = 0x8c,
	NET_PUNCH_OK = 0x8e,
	NET_ERR = 0xff,
};

/* A decoded record; pointers point into the decoded buffer. */
struct net_msg {
	uint8_t type;
	uint64_t reqid;
	const unsigned char *fragid;		/* PUT GET DEL LIST AUDIT */
	const unsigned char *hash;		/* PUT: 32 bytes */
	const unsigned char *nonce;		/* AUDIT: 32 bytes */
	const unsigned char *answer;		/* AUDIT_OK: 32 bytes */
	/* PUT GET_OK HEAD_PUT (the head); HEAD_LIST_OK: the n entries
	 * (u32 len | head) after the count, walk with net_msg_heads_next. */
	const unsigned char *data;
	size_t data_len;
	uint32_t max;				/* LIST HEAD_LIST */
	uint32_t n;				/* LIST_OK HEAD_LIST_OK entries */
	const unsigned char *entries;		/* LIST_OK: n x 41 bytes */
	uint64_t bytes, fragments, avail, quota;	/* PONG */
	uint32_t rsv_size, rsv_count;		/* RESERVE; RESERVE_OK count */
	uint64_t rsv_left;			/* RESERVE_OK */
	int ranged;				/* GET: with a range */
	uint32_t range_off, range_len;		/* GET: the range */
	const unsigned char *locator;		/* LOCATOR: 32 bytes */
	uint16_t port;				/* DIALBACK PUNCH PUNCH_OK */
	uint32_t result;			/* DIALBACK_OK: errno, 0 */
	uint32_t keepalive_s, circuits;		/* RELAY_RESERVE_OK */
	const unsigned char *token;		/* RELAY_INCOMING: 16 bytes */
	const unsigned char *bind_node;		/* RESERVE v1: 32 bytes */
	const unsigned char *bind_sig;		/* RESERVE v1: CR_BIND_BYTES */
	uint32_t err;				/* ERR: positive errno */
	const char *errmsg;			/* ERR: not NUL-terminated */
	size_t errmsg_len;
};

/* Parses a decrypted record. -EPROTO for anything malformed: short
 * header, unknown type, wrong payload size for the type, errno 0 or
 * > 4095, LIST_OK count not matching the size or > NET_LIST_MAX,
 * HEAD_PUT or a HEAD_LIST_OK entry outside CR_HEAD_FIXED ..
 * CR_HEAD_FIXED + CR_HEAD_BLOB_MAX, HEAD_LIST_OK entries not adding up to
 * the size or more than NET_HEADS_MAX. Heads are not verified here. */
int net_msg_decode(struct net_msg *m, const unsigned char *p, size_t n);
/* Walks the heads of a decoded HEAD_LIST_OK: *off starts at 0; returns 1
 * with *head and *len set (pointing into m->data), 0 after the last. */
int net_msg_heads_next(const struct net_msg *m, size_t *off,
    const unsigned char **head, size_t *len);

/* Encodes m into out (cap bytes). Returns the length, or -ENOSPC when cap
 * is short, -EINVAL for an unknown type. For PUT/GET_OK the caller may
 * pass data NULL and copy the bytes at out + net_msg_data_offset(type)
 * itself (avoids a copy). */
ssize_t net_msg_encode(unsigned char *out, size_t cap, const struct net_msg *m);
size_t net_msg_encoded_len(const struct net_msg *m);
size_t net_msg_data_offset(uint8_t type);

/* Encodes m without its bulk: the header of the record (all of it for a
 * type without bulk). *bulk and *bulk_len get the bulk (PUT/GET_OK: the
 * fragment bytes; NULL, 0 otherwise). Returns the header length, or the
 * errors of net_msg_encode(); PUT/GET_OK need data here. */
ssize_t net_msg_encode_head(unsigned char *out, size_t cap,
    const struct net_msg *m, const unsigned char **bulk, size_t *bulk_len);
size_t net_msg_head_len(const struct net_msg *m);	/* 0 = not encodable */
/* After decryption: 0 when a record of type with a plaintext header of
 * head_len bytes may carry bulk_len bytes of bulk, else -EPROTO. */
int net_msg_bulk_ok(uint8_t type, size_t head_len, size_t bulk_len);

/* A complete frame: the header ciphertext (hdr, hdr_len bytes, malloc()'d)
 * and the record buffer (rec, malloc()'d, hdr_len - CR_STREAM_ABYTES +
 * bulk_len bytes) whose bulk is already in place at
 * rec + hdr_len - CR_STREAM_ABYTES; decrypting hdr into rec completes the
 * record without moving the bulk. The caller frees both. */
struct net_frame {
	unsigned char *hdr, *rec;
	size_t hdr_len, bulk_len;
};
/* Splits a byte stream into frames. Feed it what the socket read. */
struct net_framer {
	unsigned char pfx[8];		/* L | B */
	size_t pfx_have;
	struct net_frame cur;		/* hdr NULL while reading pfx */
	size_t have;			/* of hdr_len + bulk_len */
};
void net_framer_init(struct net_framer *f);
void net_framer_release(struct net_framer *f);
/* Consumes bytes from *p and *n (advancing them). Returns 1 with *out set
 * when a frame is complete (call again for the rest of the input), 0 when
 * all input is consumed without completing one, -EPROTO for L <
 * CR_STREAM_ABYTES + NET_MSG_HDR, L + B > NET_FRAME_MAX, or B > 0 with a
 * header too long to end at any data offset, -ENOMEM. */
int net_framer_feed(struct net_framer *f, const unsigned char **p, size_t *n,
    struct net_frame *out);
/* Where the rest of the current frame's bulk goes, so a socket can read
 * it there directly rather than through a read buffer and a copy: *dst
 * and the bytes left of the bulk, 0 (and *dst untouched) when the framer
 * is not inside a bulk. net_framer_bulk_got() then counts the n bytes
 * read there (n <= what bulk_dst returned); the next net_framer_feed()
 * (with no input, when the bulk is complete) hands out the frame. */
size_t net_framer_bulk_dst(struct net_framer *f, unsigned char **dst);
void net_framer_bulk_got(struct net_framer *f, size_t n);
/* Decrypts a frame from rx into fr->rec (see net_frame) and checks the
 * bulk rules: 0 with *len = the record's length, -EBADMSG (bad MAC),
 * -EPROTO (bulk on a type without, or on a type the other direction
 * carries). from_server: the frame came from a server, so its bulk is not
 * MAC'd (only GET_OK may have one); else it is (only PUT). fr stays the
 * caller's either way. */
int net_frame_open(struct cr_stream *rx, const struct net_frame *fr,
    int from_server, size_t *len);

/* ---- rate-limited log lines (net/ratelog.c) ----
 * Events a stranger can cause at will (a refused connection, a malformed
 * session) are counted per (address, reason): the first one of a kind is
 * logged at once, the rest are counted and reported by the caller once
 * per interval, so a flood costs one line per address, reason and
 * interval. Loop thread only. */
#define NET_RATELOG_SLOTS	64

struct net_ratelog_ent {
	char who[48];			/* address, e.g. "127.0.0.9" */
	const char *what;		/* static reason; NULL = slot free */
	uint64_t count;			/* since the last line */
	int fresh;			/* not yet logged */
};

struct net_ratelog {
	struct net_ratelog_ent e[NET_RATELOG_SLOTS];
	uint64_t other;			/* counted with the table full */
};

void net_ratelog_init(struct net_ratelog *rl);
/* Counts one event. Returns 1 when it is the first of its (who, what)
 * since that kind was last quiet for a whole interval: log it now.
 * Returns 0 when it is counted for the next report. what must be a
 * static string. */
int  net_ratelog_hit(struct net_ratelog *rl, const char *who,
    const char *what);
/* Call once per interval: emit(arg, who, what, n) for every kind with n
 * events counted since its last line (n > 0), then forgets kinds that
 * were quiet for the whole interval. Events counted while the table was
 * full come as who "other addresses". */
void net_ratelog_report(struct net_ratelog *rl,
    void (*emit)(void *arg, const char *who, const char *what, uint64_t n),
    void *arg);

/* ---- sessions (net/sess.c) ---- */
#include <uv.h>

#define NET_HS_TIMEOUT_MS	10000
#define NET_SESS_QUEUE_MAX	(64u * 1024 * 1024)	/* queued write bytes */

/* Deadlines of a server's sessions (all ms, 0 = none), and where their
 * malformed-session warnings are counted. Borrowed: lives as long as
 * every session that points to it. */
struct net_sess_limits {
	unsigned hs_ms;			/* handshake; 0 = default */
	/* A frame started must make progress: no byte of it for frame_ms
	 * (while we read) closes the session; so do replies the peer does
	 * not read for frame_ms. */
	unsigned frame_ms;
	/* Up, nothing received or sent and nothing in progress (work_n 0)
	 * for idle_ms: closed. Well above the owners' ping interval. */
	unsigned idle_ms;
	struct net_ratelog *closed;	/* NULL: every warning is logged */
	size_t *queued_total;		/* NULL, or the sum of s->queued */
};

struct net_sess;

/* Callbacks of a session, all on the loop thread. */
struct net_sess_ops {
	/* The peer's key is known (s->peer_pk): client after the server's
	 * REPLY checked (before FINISH goes out), server after FINISH.
	 * Non-zero refuses: the session closes (the callback logs why). */
	int (*on_up)(struct net_sess *s);
	/* One decoded record. *buf holds the decrypted bytes m points into;
	 * the callback may keep them (set *buf = NULL and free() later). It
	 * may call net_sess_close(). */
	void (*on_msg)(struct net_sess *s, const struct net_msg *m,
	    unsigned char **buf);
	/* The session is up (after on_up accepted); may be NULL. */
	void (*on_ready)(struct net_sess *s);
	/* Queued write bytes fell below NET_SESS_QUEUE_MAX; may be NULL. */
	void (*on_drain)(struct net_sess *s);
	/* A write of n bytes left the write queue (sent or cancelled);
	 * may be NULL. */
	void (*on_sent)(struct net_sess *s, size_t n);
	/* A frame of len bytes begins: its prefix is read, its body not
	 * yet. 0 reads it; non-zero leaves it waiting, and the callback
	 * must have paused the session (it is asked again at resume). May
	 * be NULL. */
	int (*on_frame)(struct net_sess *s, size_t len);
	/* Once, after the socket is closed (err 0 = closed on purpose or by
	 * the peer). s stays valid until its last net_sess_unref(). */
	void (*on_close)(struct net_sess *s, int err);

	/* Relays (net/relay.c): a server session whose first bytes are
	 * NET_RELAY_MAGIC instead of a handshake HELLO becomes a raw byte
	 * stream (NET_SESS_RAW): every byte read, those first ones
	 * included, goes here. NULL: such a session is malformed. */
	void (*on_raw)(struct net_sess *s, const unsigned char *p, size_t n);
};

/* ---- relay circuits (net/relay.c), before any handshake ----
 * A circuit is a TCP connection to a relay that starts, in the clear,
 * with a request of NET_RELAY_REQ_BYTES:
 *   "PFRELAY1" | u8 kind | 32 bytes
 * kind CONNECT (1): the 32 bytes are the key of the node to reach
 * (which holds a reservation there); kind ACCEPT (2): that node takes
 * the circuit: 16 bytes of the token the relay gave it (RELAY_INCOMING)
 * and 16 zero bytes. The relay answers each side with
 * NET_RELAY_ANS_BYTES: u8 errno (0: piped) | u8 len | 62 bytes of text
 * (len of them, UTF-8, the reason of a refusal; when piped, relays
 * since hole punching put there the other end's address as they see it,
 * "1.2.3.4" or "2001:db8::1", for net/punch.c). From then on it copies
 * bytes both ways and the two ends run the ordinary handshake (the
 * CONNECT side as client) inside: the relay sees keys, never content.
 * The magic differs from the handshake's "PEERFS3\0" in its second byte,
 * which is how a relay tells the two apart. */
#define NET_RELAY_MAGIC		"PFRELAY1"
#define NET_RELAY_MAGIC_LEN	8
#define NET_RELAY_REQ_BYTES	(NET_RELAY_MAGIC_LEN + 1 + 32)
#define NET_RELAY_ANS_BYTES	64
#define NET_RELAY_TOKEN_BYTES	16
enum { NET_RELAY_CONNECT = 1, NET_RELAY_ACCEPT = 2 };
#define NET_RELAY_WHY_MAX	62

enum net_sess_state { NET_SESS_PRE, NET_SESS_HS, NET_SESS_UP, NET_SESS_RAW,
	NET_SESS_CLOSED };

struct net_sess {
	uv_tcp_t tcp;
	uv_timer_t timer;		/* handshake deadline, then limits */
	uv_connect_t conn;
	const struct net_sess_ops *ops;
	void *data;			/* the owner's */
	const struct cr_identity *id;
	int is_client;
	enum net_sess_state state;
	int refs;			/* freed when 0 */
	int nclose;			/* handles still closing */
	int err;
	const char *why;		/* static reason it was closed */
	int reading, paused;
	struct cr_hs *hs;		/* sodium_malloc()'d: stream keys */
	unsigned char hsbuf[CR_HS_REPLY_BYTES];
	size_t hs_have, hs_need;
	struct net_framer fr;
	unsigned char *rdbuf;
	/* Read but not decoded: a paused session stops decoding after the
	 * record that paused it, and the rest waits here (reading stopped)
	 * until net_sess_resume(). */
	size_t rd_off, rd_len;
	int feeding;			/* inside sess_feed */
	int fr_ok;			/* on_frame let the current frame in */
	size_t queued;			/* bytes handed to uv_write */
	const struct net_sess_limits *lim;	/* NULL: handshake only */
	uint64_t last_rx, last_tx;	/* uv_now(): read, write done */
	size_t work_bytes;		/* owner's in-flight accounting */
	unsigned work_n;
	unsigned char peer_pk[CR_PK_BYTES];	/* valid once up */
	char name[64];			/* "1.2.3.4:7070" */
	char host[48];			/* accepted: the peer's address */
	struct net_sess *next, *prev;	/* owner's list */
	/* Supplier's: requests admitted, not yet on the thread pool (a
	 * FIFO through struct work), and the round-robin ring of sessions
	 * that have some. */
	void *wq_head, *wq_tail;
	struct net_sess *rr_next, *rr_prev;
	int in_rr, gblocked;
	unsigned run_n;			/* requests on the thread pool */
	size_t fr_charge;		/* the frame being read */
	/* Through a relay (net_sess_connect_relay): the request still to
	 * send, then the answer read (NET_SESS_PRE); why it refused. */
	unsigned char pre[NET_RELAY_REQ_BYTES];
	int has_pre;
	char relay_why[NET_RELAY_WHY_MAX + 1];
	/* Piped: the other end's address as the relay saw it ("" from a
	 * relay before hole punching). */
	char relay_obs[NET_RELAY_WHY_MAX + 1];
};

/* Parses "HOST:PORT" or "[V6]:PORT" (numeric, else getaddrinfo).
 * -EINVAL when malformed or unresolvable. */
int net__parse_addr(const char *hostport, struct sockaddr_storage *out);
void net__addr_name(const struct sockaddr *sa, char *out, size_t size);
/* The address without the port, as caps and log lines group peers:
 * "1.2.3.4" (IPv4-mapped IPv6 too), "2001:db8:1:2::/64" (an IPv6 host's
 * /64, since one host may use any address in it). */
void net__addr_host(const struct sockaddr *sa, char *out, size_t size);

/* Starts a client session to sa (name used in log lines). *out has one
 * reference for the caller, in addition to the one the socket holds. */
int net_sess_connect(uv_loop_t *loop, const struct cr_identity *id,
    const struct sockaddr *sa, const char *name,
    const struct net_sess_ops *ops, void *data, struct net_sess **out);
/* The same from the local address src (port 0: any): a node with several
 * addresses is seen by the other end at the one it chose. */
int net_sess_connect_from(uv_loop_t *loop, const struct cr_identity *id,
    const struct sockaddr *sa, const struct sockaddr *src, const char *name,
    const struct net_sess_ops *ops, void *data, struct net_sess **out);
/* Connects to the relay at sa, sends req (NET_RELAY_REQ_BYTES) and
 * waits for its answer; then runs the handshake inside as the client
 * (is_client: we asked for a circuit) or as the server (we took one
 * offered to our reservation). A refusal closes the session with
 * -errno and s->relay_why set. Otherwise as net_sess_connect; lim as
 * net_sess_accept_lim's (NULL: none). */
int net_sess_connect_relay(uv_loop_t *loop, const struct cr_identity *id,
    const struct sockaddr *sa, const char *name,
    const unsigned char req[NET_RELAY_REQ_BYTES], int is_client,
    const struct net_sess_ops *ops, void *data,
    const struct net_sess_limits *lim, struct net_sess **out);
/* Hole punching (net/punch.c): a connection from src to sa on a socket
 * with SO_REUSEADDR and SO_REUSEPORT (src may be the port we listen on),
 * so that both ends' connects meet (TCP simultaneous open); then the
 * handshake as the client or as the server. The handshake's deadline
 * (lim->hs_ms, or NET_HS_TIMEOUT_MS) runs from the connect. */
int net_sess_connect_punch(uv_loop_t *loop, const struct cr_identity *id,
    const struct sockaddr *sa, const struct sockaddr *src, int is_client,
    const char *name, const struct net_sess_ops *ops, void *data,
    const struct net_sess_limits *lim, struct net_sess **out);
/* A raw session (NET_SESS_RAW): queues n bytes as they are. -EPIPE when
 * closed. */
int net_sess_send_raw(struct net_sess *s, const void *p, size_t n);
/* Accepts a pending connection of server (no extra reference: the
 * socket's reference is released after on_close). -ENOMEM leaves the
 * connection pending: the caller must still uv_accept() it (libuv stops
 * polling the listener until someone does). */
int net_sess_accept(uv_stream_t *server, const struct cr_identity *id,
    const struct net_sess_ops *ops, void *data, struct net_sess **out);
/* The same with deadlines (lim may be NULL). */
int net_sess_accept_lim(uv_stream_t *server, const struct cr_identity *id,
    const struct net_sess_ops *ops, void *data,
    const struct net_sess_limits *lim, struct net_sess **out);
/* Encrypts and queues one record. -EPIPE when closed, -EMSGSIZE. */
int net_sess_send(struct net_sess *s, const struct net_msg *m);
/* The same, taking take (NULL, or the malloc()'d buffer m->data points
 * into, left unchanged from now on): the bulk is written from there rather
 * than copied, and take freed once written or on failure. */
int net_sess_send_take(struct net_sess *s, const struct net_msg *m,
    void *take);

/* A buffer lent to queued writes instead of copied into each: the lender
 * and every write still holding it count one reference, and whoever lets
 * go last calls release(buf). The owner's upload lends its fragments this
 * way: a PUT queued behind a slow link may outlive the upload that made
 * it (re-routed to a spare, session closed), and copying 1 MiB per PUT
 * was a third of the net loop's time. Atomic: the lender is a worker
 * thread, the writes end on the loop. */
struct net_lend {
	atomic_int refs;
	void (*release)(void *buf);
	void *buf;
};
/* One reference, the caller's; NULL when out of memory. */
struct net_lend *net_lend_new(void *buf, void (*release)(void *buf));
void net_lend_put(struct net_lend *l);
/* net_sess_send() with m's bulk written from lend's buffer (which it lies
 * in, left unchanged while lent): a reference held until written or on
 * failure. */
int net_sess_send_lent(struct net_sess *s, const struct net_msg *m,
    struct net_lend *lend);
/* Closes once; why != NULL logs one warning naming the peer. */
void net_sess_close(struct net_sess *s, int err, const char *why);
/* Stops decoding after the current record and reading; resume decodes
 * what was read meanwhile first (it may call on_msg, and pause again). */
void net_sess_pause(struct net_sess *s);
void net_sess_resume(struct net_sess *s);
void net_sess_ref(struct net_sess *s);
void net_sess_unref(struct net_sess *s);

/* ---- client (net/client.c, net/upload.c, net/block.c) ---- */
#include <pthread.h>
#include "net/net.h"
#include "worker.h"

struct net_req;
struct net_peer;
struct net;

#define NET_LAT_WINDOW	16
#define NET_LAT_AGE_MS	120000
/* A supplier that lagged this long ago is still placed after others
 * (net__peer_better). */
#define NET_LAG_MS	60000

/* rc 0 with m the response (m->type is the expected *_OK), or -errno
 * (ERR from the supplier: -m->err with m set; session loss or timeout:
 * m NULL). May keep *buf like net_sess_ops.on_msg. Runs on the loop. */
typedef void (*net_req_cb)(struct net_req *r, int rc, const struct net_msg *m,
    unsigned char **buf);

struct net_req {
	struct net_req *next, *prev;	/* peer's pending or parked list */
	struct net_peer *p;
	struct net_msg msg;		/* borrowed pointers, until cb */
	struct net_lend *lend;		/* msg's bulk lies in it: not copied */
	unsigned char fragid[STORE_FRAGID_BYTES];
	uint64_t deadline;		/* uv_now() ms; 0 while parked */
	uint64_t t0_ns;			/* uv_hrtime() when sent */
	net_req_cb cb;
	void *arg;
	int idx;
	int on_old;			/* written on p->s_old (net/punch.c) */
};

struct net_peer {
	struct net *n;
	struct net_peer *next;
	char addr[64];
	struct sockaddr_storage sa;
	enum net_peer_state state;
	int refused;			/* pinned key mismatch */
	struct net_sess *s;		/* referenced while not NULL */
	uv_timer_t retry;
	int have_pk, have_pong;
	unsigned char pk[CR_PK_BYTES];
	double rtt_ms;
	uint64_t fragments, bytes, avail, quota;
	char last_error[128];
	struct net_req *pending;	/* sent, waiting for the answer */
	struct net_req *parked, *parked_tail;	/* waiting for queue room */
	struct net_req ping;
	int ping_busy;
	/* Monitor (net/client.c); times are uv_now() ms. */
	int up;				/* session up, counted in online */
	uint64_t last_seen;		/* last answer (or session up) */
	uint64_t down_since;		/* suspect/dead clock: last answer */
	uint64_t last_ping;		/* last ping sent */
	uint64_t req_ok, req_failed;	/* answered / timed out or dropped */
	/* DEAD since (unix ms, 0: not dead), and whether for cause (fired
	 * with a reason) rather than only for being unreachable: only the
	 * latter may be hired again (net_peer_revive). */
	int64_t dead_at;
	int fired;
	uint64_t audits_ok, audits_failed, bad_fragments;
	/* Our account there (net/upload.c): room granted by RESERVE and
	 * not used yet, for fragments of at most grant_size bytes; dropped
	 * with the session and after NET_GRANT_MS. */
	uint32_t grant_size, grant_count;
	uint64_t grant_at;
	int rsv_known;			/* it answered a RESERVE once */
	int locator_sent;		/* LOCATOR sent (net_locator_put): once */
	int no_reserve;			/* predates RESERVE: plain PUTs */
	int range_known;		/* it answered a ranged GET once */
	int no_range;			/* predates them: whole fragments */
	/* Why it last refused our data ("quota exceeded", "supplier full",
	 * "not admitted"); "" once it takes data again. No new fragment
	 * goes there for NET_REFUSED_MS after a refusal. */
	char refusal[64];
	/* How its record says it is reached ("direct", "mapped", "relay via
	 * ID"); "" when we were given its address (--peer) or it does not
	 * say. */
	char reach[48];
	/* Reached through a relay (its address is "RELAY~ID"): sa is the
	 * relay's, target the node's key, asked for in the circuit. */
	int relayed;
	unsigned char target[CR_PK_BYTES];
	/* Hole punching (net/punch.c): p->s is a direct connection that
	 * replaced the relayed one (punched); s_old, the relayed session,
	 * still answers what was sent on it, then closes; punch_s, a try
	 * in flight (its handshake); tries failed in this round; the
	 * uv_now() before which no try starts. */
	int punched, punch_busy, punch_tries;
	struct net_sess *s_old, *punch_s;
	uint64_t punch_next;
	/* The relay's key, from the record (net_peer_set_reach). */
	int have_relay;
	unsigned char relay_pk[CR_PK_BYTES];
	uint64_t refused_at;
	uint64_t refusals;		/* count; a request sent before the
					 * last refusal clears nothing */
	/* How fast it answers fragment GETs (net/block.c's hedged fetches):
	 * ms of its last NET_LAT_WINDOW answers, a ring, forgotten once
	 * NET_LAT_AGE_MS old (a supplier slow once is asked again). */
	float get_ms[NET_LAT_WINDOW];
	int get_n, get_at;
	uint64_t get_last;
	uint64_t late;			/* GETs another supplier was asked
					 * beside, as they were late */
	uint64_t lags;			/* fragments sent to a spare instead,
					 * as it lagged behind the others */
	uint64_t lagged_at;		/* uv_now() of the last lag */
	uint64_t doubles;		/* fragments doubled up on it (a
					 * laggard's, no spare): they go to
					 * the holder with fewest */
};
#define NET_GRANT_MS	60000	/* the supplier holds a grant for 120 s */
#define NET_REFUSED_MS	30000
#define NET_ROOM_AGAIN	(16u << 20)	/* PONG's avail that clears a refusal */
#define NET_RESERVE_COUNT 16
#define NET_BIND_VERSION 1	/* RESERVE's binding block */	/* fragments asked for at a time */

/* What a request revealed about a supplier (net__peer_note). */
enum net__note { NET__NOTE_BAD_FRAGMENT, NET__NOTE_AUDIT_FAILED,
	NET__NOTE_AUDIT_OK };
#define NET_FIRE_AFTER	3	/* offences of one kind that get a supplier fired */

/* A call from another thread, run by the loop: start() runs on the loop,
 * which later calls net__op_done(); the caller waits on cond. */
struct net_op {
	struct net_op *next;
	void (*start)(struct net *n, struct net_op *op);
	pthread_cond_t cond;
	int done, rc;
};

struct net {
	struct net_conf conf;
	int k, m;
	uv_loop_t loop;
	uv_async_t async;
	uv_timer_t tick;		/* deadlines and pings */
	struct worker *loop_thread;	/* runs loop (worker.h) */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* online changed */
	struct net_op *q_head, *q_tail;	/* protected by lock */
	int online;			/* protected by lock */
	int stopping;			/* protected by lock */
	/* Loop thread only: */
	struct net_peer *peers;
	int npeers;
	uint64_t next_reqid;
	unsigned rr;			/* placement rotation */
	/* Suppliers vetted by our audits (net_set_vetted), sorted; or all
	 * of them (vet_all). */
	unsigned char (*vetted)[CR_PK_BYTES];
	int nvetted, vet_all;
	struct net_op *refresh;		/* net_peers() waiting for pings */
	/* Any thread (__atomic): fragment bytes fetched to read blocks,
	 * whole fragments and ranges (net_fetched_bytes). */
	uint64_t fetched_bytes;
	/* Any thread (__atomic): net_tag_checks. */
	uint64_t tag_checks;
	/* Bytes through each relay since the last net_relay_take. */
	struct net_relay_acc {
		unsigned char pk[CR_PK_BYTES];
		uint64_t bytes;
	} *racc;
	int nracc;
};

/* ---- supplier (net/supplier.c, net/supwork.c) ---- */

struct supplier;

/* A LIST_OK entry: fragid | u64 size. */
#define LIST_ENTRY	(STORE_FRAGID_BYTES + 8)
/* Payload room of a HEAD_LIST_OK after its count. */
#define HEADS_ROOM	((size_t)NET_FRAME_MAX - CR_STREAM_ABYTES - \
			    NET_MSG_HDR - 4)

/* One request of an owner's session, from decoding to its reply. */
struct net__work {
	uv_work_t w;
	struct net__work *next;		/* session's queue */
	size_t charge;			/* bytes counted for it */
	size_t in;			/* of which its own (waiting) */
	int running;			/* on the thread pool */
	struct supplier *sup;		/* net/supplier_int.h, opaque here */
	const struct net_supplier_conf *conf;
	struct net_sess *s;		/* referenced */
	uint8_t type;
	uint64_t reqid;
	unsigned char fragid[STORE_FRAGID_BYTES];
	unsigned char nonce[CR_HASH_BYTES];	/* AUDIT */
	unsigned char answer[CR_HASH_BYTES];	/* AUDIT_OK */
	unsigned char hash[CR_HASH_BYTES];	/* PUT: the owner's */
	unsigned char loc[STORE_LOCATOR_BYTES];	/* LOCATOR */
	uint32_t rsv_size, rsv_count;	/* RESERVE; RESERVE_OK count */
	uint64_t rsv_left;		/* RESERVE_OK */
	int ranged;			/* GET: only [range_off, + range_len) */
	uint32_t range_off, range_len;
	char why[200];			/* refusal text, "" the usual */
	unsigned char *buf;		/* PUT: the record holding data */
	const unsigned char *data;
	size_t len;
	void *out;			/* GET: fragment; LIST: entries;
					 * HEAD_LIST: (u32 len | head)... */
	size_t out_len;			/* HEAD_LIST: bytes, max: count */
	uint32_t max;
	int rc;
};

/* ---- relays (net/relay.c), on the supplier's loop ---- */
struct net_relay;
int  net__relay_new(struct net_relay **out, uv_loop_t *loop,
    const struct net_relay_conf *conf);
/* Closes every circuit and reservation; frees once they are gone. */
void net__relay_close(struct net_relay *r);
/* A session of the supplier's that began with a circuit request (its
 * on_raw: p, n the bytes so far) becomes the relay's. r NULL: not a
 * relay, closed. */
void net__relay_adopt(struct net_relay *r, struct net_sess *s,
    const unsigned char *p, size_t n);
/* RELAY_RESERVE on session s (r NULL: refused, not a relay). */
void net__relay_reserve(struct net_relay *r, struct net_sess *s,
    uint64_t reqid);
/* A supplier session closed: its reservation, if any, goes. */
void net__relay_sess_closed(struct net_relay *r, struct net_sess *s);

struct net_relay_client;
int  net__relay_client_new(struct net_relay_client **out, uv_loop_t *loop,
    const struct net_relay_client_conf *conf);
void net__relay_client_close(struct net_relay_client *rc);

/* Runs k's store operation (uv_work_t cb, thread pool): k->rc, k->out,
 * k->why. */
void net__work_run(uv_work_t *w);

/* The same rules over live peers (net/place.c, loop thread). usable:
 * up and trusted (not SUSPECT, not DEAD); placeable: usable and no
 * refusal of ours lately; better: not lagging, most space, then lowest
 * rtt; fits: p
 * may take one more fragment of a block held by held[0..nh) (NULLs
 * skipped); unvetted_max_now: net_place_unvetted_max over the placeable
 * peers; same_host: one address. */
int  net__peer_usable(const struct net_peer *p);
int  net__peer_placeable(const struct net_peer *p);
int  net__peer_better(const struct net_peer *a, const struct net_peer *b);
int  net__peer_fits(struct net_peer *const *held, int nh, struct net_peer *p,
    int unvetted_max);
int  net__unvetted_max_now(struct net *n, int total);
/* fits_double: p, a holder of one of held, may take a second one of the
 * block (doubled up): the same rules but its own address block. */
int  net__peer_fits_double(struct net_peer *const *held, int nh,
    struct net_peer *p, int unvetted_max);
int  net__same_host(const struct net_peer *a, const struct net_peer *b);
/* held[0..nh) (NULLs skipped) and p: on private addresses, and the
 * address rule not lifted (no --lan): the rule is why p may not take a
 * fragment of a block, and --lan is what the user may want to hear. */
int  net__lan_blocked(struct net_peer *const *held, int nh,
    const struct net_peer *p);
/* An upload of ours waited on p so long that its fragment went to a
 * spare, within the last NET_LAG_MS (net/upload.c). */
int  net__peer_lagging(const struct net_peer *p);

/* A block's name in logs: its id's first 8 bytes in hex. */
void net__blk_name(char out[17], const unsigned char *id);
/* uv_close callback of a timer an operation malloc'd for itself. */
void net__timer_free(uv_handle_t *h);

int  net__op_run(struct net *n, struct net_op *op);	/* caller thread */
void net__op_done(struct net *n, struct net_op *op, int rc);	/* loop */
/* Sends r (msg, cb, arg set) to p. Never calls cb when it fails. */
int  net__req_send(struct net_peer *p, struct net_req *r);
/* Withdraws r (sent and not answered yet): its cb is never called and r
 * may go. The supplier has no cancel and still answers: a stub takes
 * r's place in p's pending list, swallows the answer (noting a GET's
 * latency) and frees itself. */
void net__req_cancel(struct net_req *r);
/* A GET answered by p after ms (any thread's request, loop thread). */
void net__lat_note(struct net_peer *p, double ms);
/* p's recent GET latencies, in ms: what to expect of the next (the
 * median, or the latest answer when slower; from one answer on) and the
 * 95th percentile (from three); -1 while fewer are known (or they are
 * too old). Loop thread. */
double net__lat_expect(struct net_peer *p);
double net__lat_p95(struct net_peer *p);
struct net_peer *net__peer_by_pk(struct net *n, const unsigned char *pk);
/* The punched session s (up, its key checked) replaces p's relayed one
 * (net/client.c): what was sent on that is still answered there, then it
 * closes. s's reference becomes p->s's. */
void net__peer_take_direct(struct net_peer *p, struct net_sess *s);
/* Hole punching, the owner's side (net/punch.c), from the loop's tick:
 * starts a try when p is up through a relay that told us where it is,
 * and none is due later. */
void net__punch_tick(struct net_peer *p, uint64_t now);
/* p's session is dropped: a try in flight goes with it. */
void net__punch_drop(struct net_peer *p);
/* The port of sa (host order). */
int  net__sa_port(const struct sockaddr *sa);
/* A peer's address: "HOST:PORT", or "HOST:PORT~HEX" for a node reached
 * through the relay at HOST:PORT (HEX: the start of its key, which
 * keeps the names of two nodes behind one relay apart). sa gets
 * HOST:PORT; returns 0 direct, 1 through a relay, -EINVAL. */
#define NET_RELAY_NAME_MAX	64
int  net__peer_addr(const char *name, struct sockaddr_storage *sa);
/* net_add_peer, with the key a relayed peer's circuits ask for. */
int  net__add_peer_pk(struct net *n, const char *hostport,
    const unsigned char pk[CR_PK_BYTES]);
/* The peer list's loop-side helpers (net/client.c), for net/peers.c.
 * Loop thread. connect: dial p (direct or through its relay); drop: its
 * session is gone or must go, what waits on it fails with err; ping:
 * unless one is in flight; check_up: a session sess.c has flipped up
 * counts as up; score: 0..1, the order of preference. */
void net__peer_connect(struct net_peer *p);
void net__peer_drop(struct net_peer *p, int err, const char *why);
void net__peer_ping(struct net_peer *p);
void net__peer_check_up(struct net_peer *p);
double net__peer_score(const struct net_peer *p);
/* Session up: requests may go (any state, DEAD included). */
int  net__peer_up(const struct net_peer *p);
/* Counts an offence or a good audit, lowers the score; NET_FIRE_AFTER
 * offences of one kind fire the supplier (DEAD). Loop thread. */
void net__peer_note(struct net_peer *p, enum net__note what);
/* Records that p refused our data (why: its words, or NULL for the
 * errno's), with a log line when the reason is new. Loop thread. */
void net__peer_refused(struct net_peer *p, int rc, const struct net_msg *m);
/* 1 when rc is a supplier's refusal of our data (quota, full, not
 * admitted). */
int  net__is_refusal(int rc);
/* DEAD now (sticky), with one log line. Loop thread. */
void net__peer_fire(struct net_peer *p, const char *why);
/* Precomputes the audit answers of fragment idx (frag: its bytes) for the
 * nonce numbers [from, from + STORE_AUDITS): audit_next = from,
 * audit_end = from + STORE_AUDITS (net/audit.c). Any thread. */
void net__audit_fill(struct net *n, struct store_block *b, int idx,
    const unsigned char *frag, uint32_t from);


/* The answer to an audit: BLAKE2b-256(nonce | sampled range), the range
 * being NET_AUDIT_SPAN bytes at an offset the nonce picks (the whole
 * fragment when it is shorter). Sampling keeps audits and the answers
 * precomputed at store time cheap; a supplier that dropped or changed a
 * fragment still cannot answer without the bytes, and a full pass over
 * many nonces covers the whole fragment. */
#define NET_AUDIT_SPAN (64u * 1024)
static inline void
net__audit_answer(unsigned char out[CR_HASH_BYTES],
    const unsigned char nonce[CR_HASH_BYTES], const unsigned char *frag,
    size_t len)
{
	crypto_generichash_state st;
	size_t span = len < NET_AUDIT_SPAN ? len : NET_AUDIT_SPAN;
	uint64_t off = 0;

	for (int i = 0; i < 8; i++)
		off = off << 8 | nonce[i];
	off %= (uint64_t)(len - span + 1);
	crypto_generichash_init(&st, NULL, 0, CR_HASH_BYTES);
	crypto_generichash_update(&st, nonce, CR_HASH_BYTES);
	crypto_generichash_update(&st, frag + off, span);
	crypto_generichash_final(&st, out, CR_HASH_BYTES);
}

#endif
