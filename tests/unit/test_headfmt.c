/* tests/unit/test_headfmt.c - owner/index.c's head blob: what reading the
 * index takes (format, erasure code, block size) comes out of every
 * format, old ones included. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "owner/internal.h"
#include "test.h"
#include "util.h"

/* A blob of format fmt (1..3) with code k+m, block size bs (format 3),
 * no suppliers and a base of one index block coded bk+bm (0: none). */
static size_t
blob(unsigned char *p, int fmt, int k, int m, uint32_t bs, int bk, int bm)
{
	size_t n = 0;

	memcpy(p, fmt == 1 ? "PFSIDX1" : fmt == 2 ? "PFSIDX2" : "PFSIDX3", 8);
	n = 8;
	if (fmt >= 2) {
		memset(p + n, 7, 8 + 8 + 8 + 8);	/* node holder until want */
		n += 32;
	}
	p[n++] = (unsigned char)k;
	p[n++] = (unsigned char)m;
	put_be32(p + n, OWNER__INDEX_CHUNK);
	n += 4;
	if (fmt == 3) {
		put_be32(p + n, bs);
		n += 4;
	}
	p[n++] = 0;		/* u16 suppliers */
	p[n++] = 0;
	p[n++] = 0;		/* u16 parts: 1 */
	p[n++] = 1;
	p[n++] = PART_BASE;
	put_be64(p + n, bk ? 100 : 0);	/* bytes */
	n += 8;
	put_be64(p + n, 1);		/* gen */
	n += 8;
	p[n++] = 0;
	p[n++] = bk ? 1 : 0;
	if (bk) {
		memset(p + n, 1, 64);	/* id, key */
		n += 64;
		put_be32(p + n, 100);
		n += 4;
		put_be32(p + n, 60);
		n += 4;
		p[n++] = (unsigned char)bk;
		p[n++] = (unsigned char)bm;
		memset(p + n, 2, (size_t)(bk + bm) * 64);
		n += (size_t)(bk + bm) * 64;
	}
	return n;
}

static int
decode(const unsigned char *p, size_t n, struct owner_code *c)
{
	struct owner__layout l;
	struct owner__sup *s = NULL;
	int ns, rc;

	memset(c, 0, sizeof *c);
	if ((rc = owner__blob_decode(p, n, &s, &ns, &l, NULL, c)) == 0) {
		owner__layout_free(&l);
		free(s);
	}
	return rc;
}

static int
test_formats(void)
{
	unsigned char p[4096];
	struct owner_code c;
	size_t n;

	n = blob(p, 3, 3, 2, 1u << 20, 0, 0);
	CHECK_EQ(decode(p, n, &c), 0);
	CHECK(c.format == 3 && c.k == 3 && c.m == 2);
	CHECK(c.block_size == 1u << 20 && c.chunk == OWNER__INDEX_CHUNK);
	/* Older heads: the code, no block size. */
	n = blob(p, 2, 3, 2, 0, 0, 0);
	CHECK_EQ(decode(p, n, &c), 0);
	CHECK(c.format == 2 && c.k == 3 && c.m == 2 && c.block_size == 0);
	n = blob(p, 1, 6, 3, 0, 0, 0);
	CHECK_EQ(decode(p, n, &c), 0);
	CHECK(c.format == 1 && c.k == 6 && c.m == 3);
	/* A code that cannot be: the first block's own. */
	n = blob(p, 2, 0, 0, 0, 2, 1);
	CHECK_EQ(decode(p, n, &c), 0);
	CHECK(c.k == 2 && c.m == 1);
	/* Trailing bytes, a cut blob, an unknown magic: malformed. */
	n = blob(p, 3, 3, 2, 4096, 2, 1);
	CHECK_EQ(decode(p, n + 1, &c), -EPROTO);
	CHECK_EQ(decode(p, n - 1, &c), -EPROTO);
	memcpy(p, "PFSIDX9", 8);
	CHECK_EQ(decode(p, n, &c), -EPROTO);
	return 0;
}

const struct test tests_headfmt[] = {
	{ "formats", test_formats },
	{ NULL, NULL },
};
