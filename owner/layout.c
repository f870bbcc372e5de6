/* owner/layout.c - the format of the owner's index versions: the head's
 * blob, the layout of a version's parts in it and in misc (index.parts),
 * and the byte writer and reader they are made with. owner/index.c
 * publishes versions, owner/restore.c reads them back.
 *
 * The head's blob, sealed with the index subkey (cr_blob_seal), holds
 * the layout, integers big-endian:
 *   "PFSIDX3\0" | node[8] | holder[8] | u64 until ms | want[8]
 *   | u8 k | u8 m | u32 chunk bytes | u32 block bytes
 *   | u16 suppliers | per supplier: u8 len | address | pk[32]
 *   | parts (see owner__put_parts)
 * parts = u16 n | per part: u8 kind (0 base, 1 segment) | u64 bytes
 *   | u64 gen | u16 blocks | per block: id[32] | key[32] | u32 plain_len
 *   | u32 frag_len | u8 k | u8 m | (k + m) x (hash[32] | pk[32]).
 * A version is the base followed by its segments, applied in order.
 * node: the node (home) that published the head; holder, until: the
 * write lease (owner/publish.c; holder zero: free); want: a node asking
 * the holder to hand the lease over (zero: none). The magic's digit is
 * the format's version. k, m: the home's erasure code (index blocks and
 * file blocks alike: cli/mount.c fixes it at the first mount); block:
 * the home's block size. They make a head self-describing: a restore
 * needs nothing but the key to read it (owner_index_head_code).
 * "PFSIDX2" blobs (no block bytes) and "PFSIDX1" blobs (no lease fields
 * either) still open: published by an unknown node, no lease, block
 * size 0 (unknown: the index itself carries conf.block_bytes). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "owner/internal.h"
#include "util.h"

#define IDX_MAGIC	"PFSIDX3"	/* 8 bytes with the NUL */
#define IDX_MAGIC_V2	"PFSIDX2"	/* no block bytes */
#define IDX_MAGIC_V1	"PFSIDX1"	/* no lease fields either */

/* ---- bytes in and out ---------------------------------------------------- */

void
owner__wr_put(struct owner__wr *w, const void *p, size_t n)
{
	if (w->err || n == 0)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		unsigned char *np;

		while (cap < w->len + n)
			cap *= 2;
		if (!(np = malloc(cap))) {
			w->err = -ENOMEM;
			return;
		}
		if (w->len)
			memcpy(np, w->p, w->len);
		if (w->p) {
			sodium_memzero(w->p, w->cap);	/* block keys */
			free(w->p);
		}
		w->p = np;
		w->cap = cap;
	}
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

static void
wr_u8(struct owner__wr *w, uint8_t v)
{
	owner__wr_put(w, &v, 1);
}

void
owner__wr_u16(struct owner__wr *w, uint16_t v)
{
	unsigned char b[2] = { v >> 8, v & 0xff };

	owner__wr_put(w, b, 2);
}

static void
wr_u32(struct owner__wr *w, uint32_t v)
{
	unsigned char b[4];

	put_be32(b, v);
	owner__wr_put(w, b, 4);
}

void
owner__wr_u64(struct owner__wr *w, uint64_t v)
{
	unsigned char b[8];

	put_be64(b, v);
	owner__wr_put(w, b, 8);
}

void
owner__wr_free(struct owner__wr *w)
{
	if (w->p) {
		sodium_memzero(w->p, w->cap);
		free(w->p);
	}
	memset(w, 0, sizeof *w);
}

/* The index a head names, as suppliers see it (cr_head2_sign): a keyed
 * hash of its parts' kinds, change numbers and block ids, so that heads
 * naming one index (lease renewals) are equal there and suppliers learn
 * nothing else. Placements and peers are left out: a rebuild that moves
 * a fragment does not make a new version. */
uint64_t
owner__layout_index_id(const unsigned char key[CR_KEY_BYTES],
    const struct owner__layout *l)
{
	unsigned char h[CR_HASH_BYTES];
	struct owner__wr w = { 0 };
	uint64_t id;

	owner__wr_put(&w, key, CR_KEY_BYTES);
	for (int i = 0; i < l->nparts; i++) {
		wr_u8(&w, l->parts[i].kind);
		owner__wr_u64(&w, l->parts[i].gen);
		for (int j = 0; j < l->parts[i].nblk; j++)
			owner__wr_put(&w, l->parts[i].blk[j].id, CR_ID_BYTES);
	}
	cr_hash(h, w.p, w.len);
	id = get_be64(h);
	owner__wr_free(&w);
	return id;
}

int
owner__wr_out(void *arg, const void *p, size_t n)
{
	struct owner__wr *w = arg;

	owner__wr_put(w, p, n);
	return w->err;
}

const unsigned char *
owner__rd_get(struct owner__rd *r, size_t n)
{
	const unsigned char *p;

	if (r->bad || r->n - r->off < n) {
		r->bad = 1;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint64_t
owner__rd_uint(struct owner__rd *r, int bytes)
{
	const unsigned char *p = owner__rd_get(r, (size_t)bytes);
	uint64_t v = 0;

	for (int i = 0; p && i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- layout ---------------------------------------------------------------- */

void
owner__layout_free(struct owner__layout *l)
{
	for (int i = 0; i < l->nparts; i++) {
		if (l->parts[i].blk) {
			sodium_memzero(l->parts[i].blk,
			    l->parts[i].nblk * sizeof *l->parts[i].blk);
			free(l->parts[i].blk);
		}
	}
	memset(l, 0, sizeof *l);
}

void
owner__put_parts(struct owner__wr *w, const struct owner__layout *l)
{
	owner__wr_u16(w, (uint16_t)l->nparts);
	for (int i = 0; i < l->nparts; i++) {
		const struct owner__part *pt = &l->parts[i];

		wr_u8(w, pt->kind);
		owner__wr_u64(w, pt->bytes);
		owner__wr_u64(w, pt->gen);
		owner__wr_u16(w, pt->nblk);
		for (int j = 0; j < pt->nblk; j++) {
			const struct store_block *b = &pt->blk[j];

			owner__wr_put(w, b->id, CR_ID_BYTES);
			owner__wr_put(w, b->key, CR_KEY_BYTES);
			wr_u32(w, b->plain_len);
			wr_u32(w, b->frag_len);
			wr_u8(w, b->k);
			wr_u8(w, b->m);
			for (int f = 0; f < b->k + b->m; f++) {
				owner__wr_put(w, b->frag_hash[f], CR_HASH_BYTES);
				owner__wr_put(w, b->peer[f], CR_PK_BYTES);
			}
		}
	}
}

/* Peer bytes (a blob that opened with our key is ours, but be strict
 * anyway: a bug must not become an overflow). */
int
owner__get_parts(struct owner__rd *r, struct owner__layout *l)
{
	uint64_t n = owner__rd_uint(r, 2);

	memset(l, 0, sizeof *l);
	if (r->bad || n > OWNER__PARTS_MAX)
		return -EPROTO;
	for (uint64_t i = 0; i < n; i++) {
		struct owner__part *pt = &l->parts[l->nparts];

		pt->kind = (uint8_t)owner__rd_uint(r, 1);
		pt->bytes = owner__rd_uint(r, 8);
		pt->gen = owner__rd_uint(r, 8);
		pt->nblk = (uint16_t)owner__rd_uint(r, 2);
		if (r->bad || pt->kind > PART_SEG ||
		    (i == 0) != (pt->kind == PART_BASE))
			goto bad;
		if (pt->nblk && !(pt->blk = calloc(pt->nblk, sizeof *pt->blk)))
			goto bad;
		l->nparts++;
		uint64_t sum = 0;
		for (int j = 0; j < pt->nblk; j++) {
			struct store_block *b = &pt->blk[j];
			const unsigned char *p;

			if (!(p = owner__rd_get(r, CR_ID_BYTES + CR_KEY_BYTES)))
				goto bad;
			memcpy(b->id, p, CR_ID_BYTES);
			memcpy(b->key, p + CR_ID_BYTES, CR_KEY_BYTES);
			b->plain_len = (uint32_t)owner__rd_uint(r, 4);
			b->frag_len = (uint32_t)owner__rd_uint(r, 4);
			b->k = (uint8_t)owner__rd_uint(r, 1);
			b->m = (uint8_t)owner__rd_uint(r, 1);
			if (r->bad || b->k < 1 || b->m < 1 ||
			    b->k + b->m > CR_EC_MAX || b->plain_len > OWNER__INDEX_CHUNK)
				goto bad;
			for (int f = 0; f < b->k + b->m; f++) {
				if (!(p = owner__rd_get(r, CR_HASH_BYTES + CR_PK_BYTES)))
					goto bad;
				memcpy(b->frag_hash[f], p, CR_HASH_BYTES);
				memcpy(b->peer[f], p + CR_HASH_BYTES, CR_PK_BYTES);
			}
			b->refcount = 1;
			b->pad[0] = STORE_BLOCK_INDEX;
			sum += b->plain_len;
		}
		if (sum != pt->bytes)
			goto bad;
	}
	return 0;
bad:
	owner__layout_free(l);
	return -EPROTO;
}

uint64_t
owner__layout_bytes(const struct owner__layout *l)
{
	uint64_t sum = 0;

	for (int i = 0; i < l->nparts; i++)
		sum += l->parts[i].bytes;
	return sum;
}

int
owner__blob_encode(const struct owner__index_io *io, const struct owner__layout *l,
    const struct owner__sup *sups, int nsup, struct owner__wr *w)
{
	static const struct owner__lease none;
	const struct owner__lease *ls = io->lease ? io->lease : &none;
	int k, m;

	net_code(io->net, &k, &m);
	owner__wr_put(w, IDX_MAGIC, 8);
	owner__wr_put(w, ls->node, OWNER__NODE_BYTES);
	owner__wr_put(w, ls->holder, OWNER__NODE_BYTES);
	owner__wr_u64(w, ls->until_ms);
	owner__wr_put(w, ls->want, OWNER__NODE_BYTES);
	wr_u8(w, (uint8_t)k);
	wr_u8(w, (uint8_t)m);
	wr_u32(w, OWNER__INDEX_CHUNK);
	wr_u32(w, io->block_size);
	owner__wr_u16(w, (uint16_t)nsup);
	for (int i = 0; i < nsup; i++) {
		size_t alen = strlen(sups[i].addr);

		wr_u8(w, (uint8_t)alen);
		owner__wr_put(w, sups[i].addr, alen);
		owner__wr_put(w, sups[i].pk, CR_PK_BYTES);
	}
	owner__put_parts(w, l);
	return w->err;
}

/* *sups malloc()'d. */
int
owner__blob_decode(const unsigned char *p, size_t n, struct owner__sup **sups, int *nsup,
    struct owner__layout *l, struct owner__lease *lease, struct owner_code *code)
{
	struct owner__rd r = { p, n, 0, 0 };
	const unsigned char *m = owner__rd_get(&r, 8);
	struct owner__sup *s = NULL;
	struct owner__lease ls = { 0 };
	struct owner_code c = { 0 };
	uint64_t ns;
	int rc;

	if (m && memcmp(m, IDX_MAGIC_V1, 8) == 0) {
		c.format = 1;
		m = (const unsigned char *)IDX_MAGIC;	/* no lease */
	} else if (m && (memcmp(m, IDX_MAGIC, 8) == 0 ||
	    memcmp(m, IDX_MAGIC_V2, 8) == 0)) {
		const unsigned char *q = owner__rd_get(&r, 2 * OWNER__NODE_BYTES);

		c.format = memcmp(m, IDX_MAGIC, 8) == 0 ? 3 : 2;
		m = (const unsigned char *)IDX_MAGIC;
		if (q) {
			memcpy(ls.node, q, OWNER__NODE_BYTES);
			memcpy(ls.holder, q + OWNER__NODE_BYTES,
			    OWNER__NODE_BYTES);
		}
		ls.until_ms = owner__rd_uint(&r, 8);
		if ((q = owner__rd_get(&r, OWNER__NODE_BYTES)))
			memcpy(ls.want, q, OWNER__NODE_BYTES);
	}
	c.k = (int)owner__rd_uint(&r, 1);
	c.m = (int)owner__rd_uint(&r, 1);
	c.chunk = (uint32_t)owner__rd_uint(&r, 4);
	if (c.format == 3)
		c.block_size = (uint32_t)owner__rd_uint(&r, 4);
	ns = owner__rd_uint(&r, 2);
	if (r.bad || memcmp(m, IDX_MAGIC, 8) != 0 || ns > OWNER__INDEX_PEERS_MAX)
		return -EPROTO;
	if (ns && !(s = calloc(ns, sizeof *s)))
		return -ENOMEM;
	for (uint64_t i = 0; i < ns; i++) {
		uint64_t alen = owner__rd_uint(&r, 1);
		const unsigned char *a = owner__rd_get(&r, alen);
		const unsigned char *pk = owner__rd_get(&r, CR_PK_BYTES);

		if (r.bad || alen == 0 || alen >= sizeof s[i].addr ||
		    memchr(a, '\0', alen)) {
			free(s);
			return -EPROTO;
		}
		memcpy(s[i].addr, a, alen);
		memcpy(s[i].pk, pk, CR_PK_BYTES);
	}
	if ((rc = owner__get_parts(&r, l)) < 0 || r.off != r.n || l->nparts == 0) {
		if (rc == 0)
			owner__layout_free(l);
		free(s);
		return -EPROTO;
	}
	/* Older heads wrote the mount's code there too, but never read it:
	 * the first block's own code is the surer word. */
	if (c.k < 1 || c.m < 1 || c.k + c.m > CR_EC_MAX) {
		c.k = l->parts[0].nblk ? l->parts[0].blk[0].k : 0;
		c.m = l->parts[0].nblk ? l->parts[0].blk[0].m : 0;
	}
	*sups = s;
	*nsup = (int)ns;
	if (lease)
		*lease = ls;
	if (code)
		*code = c;
	return 0;
}
