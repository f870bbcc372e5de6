/* net/record.c - node records: encoding, signature, checks, and the table
 * of the newest record per id. Pure: no I/O, no clock (the caller passes
 * now), so that unit tests and the fuzzer drive every path. */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "net/dht.h"

static const unsigned char magic[4] = { 'P', 'F', 'N', 'R' };

#define FIXED	(4 + 1 + 4 + 8 + 8 + 8 + CR_PK_BYTES + 1)

static void
put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static void
put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t
get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* "HOST:PORT" with HOST a name, IPv4 or [IPv6], PORT 1..65535 in digits.
 * Only the characters those need: an address is shown in logs and handed
 * to the resolver, so nothing else may pass. */
static int
addr_ok(const char *a, size_t len)
{
	const char *colon = NULL;
	unsigned long port = 0;

	if (len < 3 || len > NET_RECORD_ADDR_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = a[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || c == '.' || c == '-' ||
		    c == ':' || c == '[' || c == ']'))
			return 0;
		if (c == ':')
			colon = a + i;
	}
	if (!colon || colon == a || colon == a + len - 1)
		return 0;
	for (const char *p = colon + 1; p < a + len; p++) {
		if (*p < '0' || *p > '9' || p - colon > 5)
			return 0;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	return port >= 1 && port <= 65535;
}

ssize_t
net_record_encode(void *buf, size_t cap, const struct net_record *r,
    const unsigned char sk[CR_SK_BYTES])
{
	unsigned char *p = buf;
	size_t len = FIXED;

	if (r->naddr < 1 || r->naddr > NET_RECORD_ADDRS ||
	    (r->nrelay && r->nrelay != r->naddr))
		return -EINVAL;
	if (r->nrelay)
		len += 1 + (size_t)r->nrelay * CR_PK_BYTES;
	for (int i = 0; i < r->naddr; i++) {
		size_t al = strnlen(r->addr[i], NET_RECORD_ADDR_MAX + 1);
		if (!addr_ok(r->addr[i], al))
			return -EINVAL;
		len += 1 + al;
	}
	if (len + CR_SIG_BYTES > cap)
		return -ENOSPC;
	memcpy(p, magic, 4);
	p[4] = r->nrelay ? NET_RECORD_VERSION_RELAYS : NET_RECORD_VERSION;
	put_u32(p + 5, r->flags);
	put_u64(p + 9, r->seq);
	put_u64(p + 17, r->expires);
	put_u64(p + 25, r->free_bytes);
	memcpy(p + 33, r->id, CR_PK_BYTES);
	p[33 + CR_PK_BYTES] = (unsigned char)r->naddr;
	len = FIXED;
	for (int i = 0; i < r->naddr; i++) {
		size_t al = strlen(r->addr[i]);
		p[len] = (unsigned char)al;
		memcpy(p + len + 1, r->addr[i], al);
		len += 1 + al;
	}
	if (r->nrelay) {
		p[len++] = (unsigned char)r->nrelay;
		for (int i = 0; i < r->nrelay; i++, len += CR_PK_BYTES)
			memcpy(p + len, r->relay_id[i], CR_PK_BYTES);
	}
	crypto_sign_detached(p + len, NULL, p, len, sk);
	return (ssize_t)(len + CR_SIG_BYTES);
}

int
net_record_decode(struct net_record *out, const void *buf, size_t len,
    uint64_t now)
{
	const unsigned char *p = buf;
	struct net_record r;
	size_t off = FIXED;

	if (len < FIXED + CR_SIG_BYTES || len > NET_RECORD_MAX ||
	    memcmp(p, magic, 4) != 0 || (p[4] != NET_RECORD_VERSION &&
	    p[4] != NET_RECORD_VERSION_RELAYS))
		return -EPROTO;
	memset(&r, 0, sizeof r);
	r.flags = (uint32_t)get_be(p + 5, 4);
	r.seq = get_be(p + 9, 8);
	r.expires = get_be(p + 17, 8);
	r.free_bytes = get_be(p + 25, 8);
	memcpy(r.id, p + 33, CR_PK_BYTES);
	r.naddr = p[33 + CR_PK_BYTES];
	if (r.naddr < 1 || r.naddr > NET_RECORD_ADDRS)
		return -EPROTO;
	for (int i = 0; i < r.naddr; i++) {
		if (off + 1 > len - CR_SIG_BYTES)
			return -EPROTO;
		size_t al = p[off];
		if (off + 1 + al > len - CR_SIG_BYTES ||
		    !addr_ok((const char *)p + off + 1, al))
			return -EPROTO;
		memcpy(r.addr[i], p + off + 1, al);
		r.addr[i][al] = '\0';
		off += 1 + al;
	}
	if (p[4] == NET_RECORD_VERSION_RELAYS) {
		if (off + 1 > len - CR_SIG_BYTES || p[off] != r.naddr ||
		    off + 1 + (size_t)r.naddr * CR_PK_BYTES > len - CR_SIG_BYTES)
			return -EPROTO;
		r.nrelay = p[off++];
		for (int i = 0; i < r.nrelay; i++, off += CR_PK_BYTES)
			memcpy(r.relay_id[i], p + off, CR_PK_BYTES);
	}
	if (off + CR_SIG_BYTES != len)
		return -EPROTO;
	if (crypto_sign_verify_detached(p + off, p, off, r.id) != 0)
		return -EBADMSG;
	if (r.expires <= now)
		return -ETIME;
	if (r.expires - now > NET_RECORD_TTL_MAX)
		return -ERANGE;
	*out = r;
	return 0;
}

int
net_record_set_add(struct net_record_set *s, const struct net_record *r)
{
	for (size_t i = 0; i < s->n; i++) {
		if (memcmp(s->r[i].id, r->id, CR_PK_BYTES) != 0)
			continue;
		if (r->seq < s->r[i].seq)
			return -ESTALE;
		if (r->seq == s->r[i].seq)
			return 0;
		s->r[i] = *r;
		return 1;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct net_record *nr = realloc(s->r, cap * sizeof *nr);
		if (!nr)
			return -ENOMEM;
		s->r = nr;
		s->cap = cap;
	}
	s->r[s->n++] = *r;
	return 1;
}

const struct net_record *
net_record_set_find(const struct net_record_set *s,
    const unsigned char id[CR_PK_BYTES])
{
	for (size_t i = 0; i < s->n; i++)
		if (memcmp(s->r[i].id, id, CR_PK_BYTES) == 0)
			return &s->r[i];
	return NULL;
}

void
net_record_set_release(struct net_record_set *s)
{
	free(s->r);
	memset(s, 0, sizeof *s);
}
