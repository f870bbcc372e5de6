/* tests/unit/test_jrnl.c - journal staging files: the byte API, range
 * lists, files left by a crash (store_jrnl_scan); and the map usage
 * writers check (store_map_usage). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/test.h"

struct seen {
	uint64_t ino[8], bno[8];
	int n;
};

static int
seen_cb(void *arg, uint64_t ino, uint64_t bno)
{
	struct seen *s = arg;

	if (s->n == 8)
		return -E2BIG;
	s->ino[s->n] = ino;
	s->bno[s->n++] = bno;
	return 0;
}

static int
has(const struct seen *s, uint64_t ino, uint64_t bno)
{
	for (int i = 0; i < s->n; i++)
		if (s->ino[i] == ino && s->bno[i] == bno)
			return 1;
	return 0;
}

static int
stop_cb(void *arg, uint64_t ino, uint64_t bno)
{
	return 7;
}

static int
test_jrnl_scan(void)
{
	struct store *st;
	struct seen s = { .n = 0 };
	int fd;

	CHECK_EQ(store_open(&st, "home", TEST_MAP_BYTES), 0);
	CHECK_EQ(store_jrnl_scan(st, seen_cb, &s), 0);
	CHECK_EQ(s.n, 0);
	CHECK_EQ(store_jrnl_write(st, 5, 2, NULL, 0, 0), 0);
	CHECK_EQ(store_jrnl_range_add(st, 5, 2, 0, 1, 1), 0);
	CHECK_EQ(store_jrnl_write(st, 300, 0, NULL, 0, 0), 0);
	/* A range list whose staging file is gone still counts. */
	CHECK_EQ(store_jrnl_range_add(st, 9, 1, 0, 1, 1), 0);
	CHECK(access("home/journal/9.9223372036854775809", F_OK) == 0);
	/* Not ours: skipped. */
	CHECK((fd = open("home/journal/junk", O_RDWR | O_CREAT, 0600)) >= 0);
	close(fd);
	CHECK((fd = open("home/journal/5.x", O_RDWR | O_CREAT, 0600)) >= 0);
	close(fd);
	CHECK_EQ(store_jrnl_scan(st, seen_cb, &s), 0);
	CHECK_EQ(s.n, 4);	/* 5.2 twice: the staging file and its list */
	CHECK(has(&s, 5, 2));
	CHECK(has(&s, 300, 0));
	CHECK(has(&s, 9, 1));
	CHECK_EQ(store_jrnl_scan(st, stop_cb, NULL), 7);
	CHECK_EQ(store_jrnl_unlink(st, 300, 0), 0);
	CHECK_EQ(store_jrnl_unlink(st, 9, 1), 0);	/* the list alone */
	s.n = 0;
	CHECK_EQ(store_jrnl_scan(st, seen_cb, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK(!has(&s, 300, 0) && !has(&s, 9, 1));
	CHECK_EQ(store_jrnl_unlink(st, 5, 2), 0);	/* both files */
	s.n = 0;
	CHECK_EQ(store_jrnl_scan(st, seen_cb, &s), 0);
	CHECK_EQ(s.n, 0);
	CHECK_EQ(store_jrnl_unlink(st, 5, 2), -ENOENT);
	store_close(st);
	return 0;
}

/* The byte API over staging files and the range lists of overlay
 * blocks. */
static int
test_jrnl_bytes(void)
{
	struct store *st;
	struct store_jrnl_piece pc[2] = { { 0, "head", 4 }, { 10, "tail", 4 } };
	unsigned char buf[32];
	uint32_t *rg;
	size_t n;

	CHECK_EQ(store_open(&st, "home", TEST_MAP_BYTES), 0);
	memset(buf, 0xee, sizeof buf);
	CHECK_EQ(store_jrnl_read(st, 1, 0, 0, buf, sizeof buf), -ENOENT);
	for (size_t i = 0; i < sizeof buf; i++)
		CHECK_EQ(buf[i], 0);
	CHECK_EQ(store_jrnl_write(st, 1, 0, pc, 2, STORE_JRNL_SYNC), 0);
	CHECK_EQ(store_jrnl_read(st, 1, 0, 0, buf, sizeof buf), 0);
	CHECK_MEM(buf, "head\0\0\0\0\0\0tail\0\0", 16);	/* zeros past the end */
	/* Without NEW a write keeps what is there; NEW starts empty. */
	pc[0] = (struct store_jrnl_piece){ 2, "XY", 2 };
	CHECK_EQ(store_jrnl_write(st, 1, 0, pc, 1, 0), 0);
	CHECK_EQ(store_jrnl_read(st, 1, 0, 0, buf, 14), 0);
	CHECK_MEM(buf, "heXY\0\0\0\0\0\0tail", 14);
	CHECK_EQ(store_jrnl_cut(st, 1, 0, 3), 0);
	CHECK_EQ(store_jrnl_read(st, 1, 0, 0, buf, 8), 0);
	CHECK_MEM(buf, "heX\0\0\0\0\0", 8);
	CHECK_EQ(store_jrnl_cut(st, 2, 0, 3), 0);	/* none: nothing to do */

	/* Range lists: none, created, appended, covering, dropped. */
	CHECK_EQ(store_jrnl_ranges(st, 1, 0, &rg, &n), 0);
	CHECK_EQ(store_jrnl_range_add(st, 1, 0, 0, 4, 0), -ENOENT);
	CHECK_EQ(store_jrnl_range_add(st, 1, 0, 0, 4, 1), 0);
	CHECK_EQ(store_jrnl_range_add(st, 1, 0, 4, 6, 0), 0);
	CHECK_EQ(store_jrnl_ranges(st, 1, 0, &rg, &n), 1);
	CHECK_EQ(n, 2);
	CHECK_EQ(rg[0], 0);
	CHECK_EQ(rg[1], 4);
	CHECK_EQ(rg[2], 4);
	CHECK_EQ(rg[3], 6);
	CHECK_EQ(store_jrnl_ranges_cover(rg, n, 0, 10), 1);
	CHECK_EQ(store_jrnl_ranges_cover(rg, n, 2, 8), 1);
	CHECK_EQ(store_jrnl_ranges_cover(rg, n, 2, 9), 0);
	free(rg);
	/* A torn last record is ignored. */
	CHECK_EQ(truncate("home/journal/1.9223372036854775808", 12), 0);
	CHECK_EQ(store_jrnl_ranges(st, 1, 0, &rg, &n), 1);
	CHECK_EQ(n, 1);
	free(rg);
	/* A NEW write drops the list: the staging file is plain again. */
	CHECK_EQ(store_jrnl_write(st, 1, 0, NULL, 0, STORE_JRNL_NEW), 0);
	CHECK_EQ(store_jrnl_ranges(st, 1, 0, &rg, &n), 0);
	CHECK_EQ(store_jrnl_read(st, 1, 0, 0, buf, 4), 0);
	CHECK_MEM(buf, "\0\0\0\0", 4);
	CHECK_EQ(store_jrnl_range_add(st, 1, 0, 0, 4, 1), 0);
	CHECK_EQ(store_jrnl_ranges_drop(st, 1, 0), 0);
	CHECK_EQ(store_jrnl_ranges(st, 1, 0, &rg, &n), 0);
	/* The list is bounded: full, it says so (then owner/ folds). */
	CHECK_EQ(store_jrnl_range_add(st, 3, 0, 0, 1, 1), 0);
	CHECK_EQ(truncate("home/journal/3.9223372036854775808", 1u << 20), 0);
	CHECK_EQ(store_jrnl_range_add(st, 3, 0, 1, 1, 0), -EFBIG);
	store_close(st);
	return 0;
}

/* Adds (del = 0) or removes delq entries [from, to), 100 per txn (a txn
 * cannot reuse the pages it frees). */
static int
delq_range(struct store *st, int from, int to, int del)
{
	unsigned char pk[CR_PK_BYTES] = { 1 }, fragid[STORE_FRAGID_BYTES];
	struct store_txn *t;

	memset(fragid, 0xab, sizeof fragid);
	for (int i = from; i < to; i += 100) {
		CHECK_EQ(store_txn_begin(st, 0, &t), 0);
		for (int j = i; j < i + 100 && j < to; j++) {
			memcpy(fragid, &j, sizeof j);
			if (del)
				CHECK_EQ(store_delq_del(t, pk, fragid), 0);
			else
				CHECK_EQ(store_delq_put(t, pk, fragid, 1), 0);
		}
		CHECK_EQ(store_txn_commit(t), 0);
	}
	return 0;
}

static int
test_map_usage(void)
{
	struct store *st;
	uint64_t used0, used1, used2, size;

	CHECK_EQ(store_open(&st, "home", 1u << 20), 0);
	CHECK_EQ(store_map_usage(st, &used0, &size), 0);
	CHECK_EQ(size, 1u << 20);
	CHECK(used0 > 0 && used0 < size / 2);
	CHECK_EQ(delq_range(st, 0, 4000, 0), 0);
	CHECK_EQ(store_map_usage(st, &used1, &size), 0);
	CHECK(used1 > size / 2);
	/* Past half the map, freed pages count as free again (the freelist
	 * is read): LMDB's file never shrinks. */
	CHECK_EQ(delq_range(st, 0, 4000, 1), 0);
	CHECK_EQ(store_map_usage(st, &used2, &size), 0);
	CHECK(used2 < used1 / 2);
	store_close(st);
	return 0;
}

const struct test tests_jrnl[] = {
	{ "jrnl_scan", test_jrnl_scan },
	{ "jrnl_bytes", test_jrnl_bytes },
	{ "map_usage", test_map_usage },
	{ NULL, NULL },
};
