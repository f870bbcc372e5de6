/* tests/unit/test_misc.c - the named values of misc (store/misc.c): typed
 * accessors, their bytes on disk (big-endian), which keys the index
 * carries, and the upgrade of an old home's native-endian block size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "test.h"
#include "util.h"

#define OPEN(st, d) CHECK_EQ(store_open(&(st), (d), TEST_MAP_BYTES), 0)
#define BEGIN(st, t) CHECK_EQ(store_txn_begin((st), 0, &(t)), 0)
#define COMMIT(t) CHECK_EQ(store_txn_commit(t), 0)

/* The raw record of k: its length (-ENOENT), at most size bytes in buf. */
static int
raw(struct store_txn *t, enum store_misc_key k, void *buf, size_t size)
{
	return store_misc_get(t, store_misc_name(k), buf, size);
}

static int
test_u64(void)
{
	struct store *st;
	struct store_txn *t;
	unsigned char b[16];
	uint64_t v = 7;

	OPEN(st, "db");
	BEGIN(st, t);
	CHECK_EQ(store_misc_u64_get(t, STORE_MISC_INDEX_SEQ, &v), -ENOENT);
	CHECK_EQ(v, 7);				/* untouched */
	CHECK_EQ(store_misc_u64_put(t, STORE_MISC_INDEX_SEQ,
	    0x0102030405060708ull), 0);
	CHECK_EQ(store_misc_u64_put(t, STORE_MISC_INDEX_GEN, 0), 0);
	COMMIT(t);
	store_close(st);

	OPEN(st, "db");
	BEGIN(st, t);
	CHECK_EQ(store_misc_u64_get(t, STORE_MISC_INDEX_SEQ, &v), 0);
	CHECK_EQ(v, 0x0102030405060708ull);
	CHECK_EQ(raw(t, STORE_MISC_INDEX_SEQ, b, sizeof b), 8);
	CHECK_MEM(b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);	/* big-endian */
	CHECK_EQ(store_misc_u64_get(t, STORE_MISC_INDEX_GEN, &v), 0);
	CHECK_EQ(v, 0);
	/* Not 8 bytes: not a u64, and v stays as it was. */
	CHECK_EQ(store_misc_put(t, store_misc_name(STORE_MISC_INDEX_SELF),
	    "\1\2\3\4", 4), 0);
	v = 9;
	CHECK_EQ(store_misc_u64_get(t, STORE_MISC_INDEX_SELF, &v), -EIO);
	CHECK_EQ(v, 9);
	COMMIT(t);
	store_close(st);
	return 0;
}

static int
test_u64s(void)
{
	static const uint64_t three[3] = { 1, 0x1122334455667788ull, 3 };
	struct store *st;
	struct store_txn *t;
	unsigned char b[32];
	uint64_t v[4] = { 0 };

	OPEN(st, "db");
	BEGIN(st, t);
	CHECK_EQ(store_misc_u64s_get(t, STORE_MISC_PINS, v, 4), -ENOENT);
	CHECK_EQ(store_misc_u64s_put(t, STORE_MISC_PINS, three, 3), 0);
	CHECK_EQ(raw(t, STORE_MISC_PINS, b, sizeof b), 24);
	CHECK_MEM(b + 8, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	/* Room for two: two copied, three said. */
	CHECK_EQ(store_misc_u64s_get(t, STORE_MISC_PINS, v, 2), 3);
	CHECK_EQ(v[0], 1);
	CHECK_EQ(v[1], 0x1122334455667788ull);
	CHECK_EQ(v[2], 0);
	CHECK_EQ(store_misc_u64s_get(t, STORE_MISC_PINS, v, 4), 3);
	CHECK_EQ(v[2], 3);
	/* An empty list is there, with nothing in it. */
	CHECK_EQ(store_misc_u64s_put(t, STORE_MISC_PINS, NULL, 0), 0);
	CHECK_EQ(store_misc_u64s_get(t, STORE_MISC_PINS, v, 4), 0);
	CHECK_EQ(store_misc_u64s_put(t, STORE_MISC_INDEX_RESTORED, three, 2),
	    0);
	CHECK_EQ(raw(t, STORE_MISC_INDEX_RESTORED, b, sizeof b), 16);
	CHECK_EQ(get_be64(b), 1);
	CHECK_EQ(get_be64(b + 8), 0x1122334455667788ull);
	/* A length that is no list. */
	CHECK_EQ(store_misc_put(t, store_misc_name(STORE_MISC_PINS), b, 12),
	    0);
	CHECK_EQ(store_misc_u64s_get(t, STORE_MISC_PINS, v, 4), -EIO);
	COMMIT(t);
	store_close(st);
	return 0;
}

static int
test_flag(void)
{
	struct store *st;
	struct store_txn *t;
	char c;

	OPEN(st, "db");
	BEGIN(st, t);
	CHECK_EQ(store_misc_flag_get(t, STORE_MISC_INDEX_OLDER), 0);
	CHECK_EQ(store_misc_flag_put(t, STORE_MISC_INDEX_OLDER, 0), 0);
	CHECK_EQ(store_misc_flag_put(t, STORE_MISC_INDEX_OLDER, 1), 0);
	CHECK_EQ(store_misc_flag_get(t, STORE_MISC_INDEX_OLDER), 1);
	/* As homes before the accessors wrote it: "1". */
	CHECK_EQ(raw(t, STORE_MISC_INDEX_OLDER, &c, 1), 1);
	CHECK_EQ(c, '1');
	COMMIT(t);
	BEGIN(st, t);
	CHECK_EQ(store_misc_flag_get(t, STORE_MISC_INDEX_OLDER), 1);
	CHECK_EQ(store_misc_flag_put(t, STORE_MISC_INDEX_OLDER, 0), 0);
	CHECK_EQ(store_misc_flag_get(t, STORE_MISC_INDEX_OLDER), 0);
	CHECK_EQ(raw(t, STORE_MISC_INDEX_OLDER, &c, 1), -ENOENT);
	COMMIT(t);
	store_close(st);
	return 0;
}

static int
test_bytes(void)
{
	struct store *st;
	struct store_txn *t;
	void *p = NULL;
	size_t len = 99;

	OPEN(st, "db");
	BEGIN(st, t);
	CHECK_EQ(store_misc_bytes_get(t, STORE_MISC_INDEX_HIST, &p, &len),
	    -ENOENT);
	CHECK(p == NULL);
	CHECK_EQ(len, 99);
	CHECK_EQ(store_misc_bytes_put(t, STORE_MISC_INDEX_HIST, "abc", 3), 0);
	CHECK_EQ(store_misc_bytes_get(t, STORE_MISC_INDEX_HIST, &p, &len), 0);
	CHECK_EQ(len, 3);
	CHECK_MEM(p, "abc", 3);
	free(p);
	CHECK_EQ(store_misc_bytes_put(t, STORE_MISC_INDEX_PARTS, "", 0), 0);
	p = NULL;
	CHECK_EQ(store_misc_bytes_get(t, STORE_MISC_INDEX_PARTS, &p, &len), 0);
	CHECK(p != NULL);		/* freed like any other */
	CHECK_EQ(len, 0);
	free(p);
	COMMIT(t);
	store_close(st);
	return 0;
}

static int
to_file(void *arg, const void *p, size_t n)
{
	return fwrite(p, 1, n, arg) == n ? 0 : -EIO;
}

/* Every key has its own name; the index carries every key but the
 * index.* bookkeeping, which a restored home writes afresh. */
static int
test_names_indexed(void)
{
	struct store *st;
	struct store_txn *t;
	uint64_t gen, one = 1;
	char *dump = NULL;
	size_t len = 0;
	FILE *f;

	OPEN(st, "db");
	BEGIN(st, t);
	for (int k = 0; k < STORE_MISC_N; k++) {
		const char *name = store_misc_name(k);
		int local = strncmp(name, "index.", 6) == 0;

		CHECK(name != NULL && name[0] != '\0');
		for (int j = 0; j < k; j++)
			CHECK(strcmp(name, store_misc_name(j)) != 0);
		CHECK_EQ(local, k >= STORE_MISC_INDEX_SEQ);
		switch (k) {		/* a record of the key's own type */
		case STORE_MISC_PINS:
		case STORE_MISC_EC:
		case STORE_MISC_INDEX_RESTORED:
			CHECK_EQ(store_misc_u64s_put(t, k, &one, 1), 0);
			break;
		case STORE_MISC_INDEX_OLDER:
			CHECK_EQ(store_misc_flag_put(t, k, 1), 0);
			break;
		case STORE_MISC_INDEX_PARTS:
		case STORE_MISC_INDEX_HIST:
		case STORE_MISC_INDEX_NODE:
			CHECK_EQ(store_misc_bytes_put(t, k, "x", 1), 0);
			break;
		default:
			CHECK_EQ(store_misc_u64_put(t, k, 1), 0);
		}
	}
	COMMIT(t);
	CHECK((f = open_memstream(&dump, &len)) != NULL);
	CHECK_EQ(store_index_dump(st, &gen, to_file, f), 0);
	CHECK_EQ(fclose(f), 0);
	for (int k = 0; k < STORE_MISC_N; k++) {
		const char *name = store_misc_name(k);
		int in = memmem(dump, len, name, strlen(name)) != NULL;

		if (in != (k < STORE_MISC_INDEX_SEQ)) {
			fprintf(stderr, "misc %s %s the index\n", name,
			    in ? "is in" : "is not in");
			return 1;
		}
	}
	free(dump);
	store_close(st);
	return 0;
}

/* An old home: the block size as homes before the accessors wrote it, a
 * u32 in the machine's byte order under "conf.block_size". Its index goes
 * to index (when not NULL), as an old version would have uploaded it. */
static int
make_old_home(const char *dir, uint32_t bs, uint64_t *gen, FILE *index)
{
	struct store *st;
	struct store_txn *t;

	OPEN(st, dir);
	BEGIN(st, t);
	CHECK_EQ(store_misc_put(t, "conf.block_size", &bs, sizeof bs), 0);
	COMMIT(t);
	CHECK_EQ(store_index_gen(st, gen), 0);
	if (index)
		CHECK_EQ(store_index_dump(st, gen, to_file, index), 0);
	store_close(st);
	return 0;
}

static int
test_block_size_upgrade(void)
{
	const uint32_t bs = 3 << 12;	/* 12288: byte order shows */
	struct store *st, *b;
	struct store_txn *t;
	unsigned char raw_bs[16];
	uint64_t v = 0, g0, g1, g2;
	char *seg = NULL, *dump = NULL;
	size_t seglen = 0, dumplen = 0;
	FILE *f;

	if (make_old_home("db", bs, &g0, NULL))
		return 1;
	OPEN(st, "db");
	CHECK_EQ(store_index_gen(st, &g1), 0);
	CHECK_EQ(g1, g0 + 1);		/* the upgrade: one transaction */
	BEGIN(st, t);
	CHECK_EQ(store_misc_u64_get(t, STORE_MISC_BLOCK_SIZE, &v), 0);
	CHECK_EQ(v, bs);
	CHECK_EQ(raw(t, STORE_MISC_BLOCK_SIZE, raw_bs, sizeof raw_bs), 8);
	CHECK_MEM(raw_bs, "\0\0\0\0\0\0\x30\0", 8);	/* big-endian */
	CHECK_EQ(store_misc_get(t, "conf.block_size", raw_bs, sizeof raw_bs),
	    -ENOENT);
	store_txn_abort(t);
	/* The index's change log carries both: the next segment uploaded
	 * moves a restored home too. */
	CHECK((f = open_memstream(&seg, &seglen)) != NULL);
	CHECK_EQ(store_index_changes(st, g0, &g2, to_file, f), 0);
	CHECK_EQ(fclose(f), 0);
	CHECK_EQ(g2, g1);
	CHECK(memmem(seg, seglen, "conf.block_size", 15) != NULL);
	CHECK(memmem(seg, seglen, store_misc_name(STORE_MISC_BLOCK_SIZE),
	    strlen(store_misc_name(STORE_MISC_BLOCK_SIZE))) != NULL);
	free(seg);
	store_close(st);

	/* Once is enough: the next open changes nothing. */
	OPEN(st, "db");
	CHECK_EQ(store_index_gen(st, &g2), 0);
	CHECK_EQ(g2, g1);
	BEGIN(st, t);
	CHECK_EQ(store_misc_u64_get(t, STORE_MISC_BLOCK_SIZE, &v), 0);
	CHECK_EQ(v, bs);
	store_txn_abort(t);
	store_close(st);

	/* An index an old version uploaded, restored into a new home: the
	 * home is upgraded at its next open. */
	CHECK((f = open_memstream(&dump, &dumplen)) != NULL);
	if (make_old_home("old", bs, &g0, f))
		return 1;
	CHECK_EQ(fclose(f), 0);
	CHECK(memmem(dump, dumplen, "conf.block_size", 15) != NULL);
	OPEN(b, "restored");
	CHECK_EQ(store_index_apply(b, dump, dumplen), 0);
	free(dump);
	store_close(b);
	OPEN(b, "restored");
	BEGIN(b, t);
	CHECK_EQ(store_misc_u64_get(t, STORE_MISC_BLOCK_SIZE, &v), 0);
	CHECK_EQ(v, bs);
	CHECK_EQ(store_misc_get(t, "conf.block_size", raw_bs, sizeof raw_bs),
	    -ENOENT);
	store_txn_abort(t);
	store_close(b);
	return 0;
}

/* Both records (an old index applied over an upgraded home): the new one
 * stands and the old goes. A record of another length was never a block
 * size: left alone, and the store opens. */
static int
test_block_size_upgrade_odd(void)
{
	uint32_t old = 8192;
	struct store *st;
	struct store_txn *t;
	uint64_t v = 0;
	char c[8];

	OPEN(st, "db");
	BEGIN(st, t);
	CHECK_EQ(store_misc_u64_put(t, STORE_MISC_BLOCK_SIZE, 65536), 0);
	CHECK_EQ(store_misc_put(t, "conf.block_size", &old, sizeof old), 0);
	COMMIT(t);
	store_close(st);
	OPEN(st, "db");
	BEGIN(st, t);
	CHECK_EQ(store_misc_u64_get(t, STORE_MISC_BLOCK_SIZE, &v), 0);
	CHECK_EQ(v, 65536);
	CHECK_EQ(store_misc_get(t, "conf.block_size", c, sizeof c), -ENOENT);
	store_txn_abort(t);
	store_close(st);

	OPEN(st, "db2");
	BEGIN(st, t);
	CHECK_EQ(store_misc_put(t, "conf.block_size", "\1\2\3", 3), 0);
	COMMIT(t);
	store_close(st);
	OPEN(st, "db2");
	BEGIN(st, t);
	CHECK_EQ(store_misc_u64_get(t, STORE_MISC_BLOCK_SIZE, &v), -ENOENT);
	CHECK_EQ(store_misc_get(t, "conf.block_size", c, sizeof c), 3);
	store_txn_abort(t);
	store_close(st);
	return 0;
}

const struct test tests_misc[] = {
	{ "u64", test_u64 },
	{ "u64s", test_u64s },
	{ "flag", test_flag },
	{ "bytes", test_bytes },
	{ "names_indexed", test_names_indexed },
	{ "block_size_upgrade", test_block_size_upgrade },
	{ "block_size_upgrade_odd", test_block_size_upgrade_odd },
	{ NULL, NULL },
};
