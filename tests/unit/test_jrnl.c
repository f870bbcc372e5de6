/* tests/unit/test_jrnl.c - journal staging files left by a crash
 * (store_jrnl_scan) and the map usage writers check (store_map_usage). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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

	CHECK_EQ(store_open(&st, "home", 0), 0);
	CHECK_EQ(store_jrnl_scan(st, seen_cb, &s), 0);
	CHECK_EQ(s.n, 0);
	CHECK((fd = store_jrnl_fd(st, 5, 2, O_RDWR | O_CREAT)) >= 0);
	close(fd);
	CHECK((fd = store_jrnl_fd(st, 5, 2 | 1ull << 63, O_RDWR | O_CREAT)) >= 0);
	close(fd);
	CHECK((fd = store_jrnl_fd(st, 300, 0, O_RDWR | O_CREAT)) >= 0);
	close(fd);
	/* Not ours: skipped. */
	CHECK((fd = open("home/journal/junk", O_RDWR | O_CREAT, 0600)) >= 0);
	close(fd);
	CHECK((fd = open("home/journal/5.x", O_RDWR | O_CREAT, 0600)) >= 0);
	close(fd);
	CHECK_EQ(store_jrnl_scan(st, seen_cb, &s), 0);
	CHECK_EQ(s.n, 3);
	CHECK(has(&s, 5, 2));
	CHECK(has(&s, 5, 2 | 1ull << 63));
	CHECK(has(&s, 300, 0));
	CHECK_EQ(store_jrnl_scan(st, stop_cb, NULL), 7);
	CHECK_EQ(store_jrnl_unlink(st, 300, 0), 0);
	s.n = 0;
	CHECK_EQ(store_jrnl_scan(st, seen_cb, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK(!has(&s, 300, 0));
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
	{ "map_usage", test_map_usage },
	{ NULL, NULL },
};
