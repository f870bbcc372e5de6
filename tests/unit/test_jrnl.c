/* tests/unit/test_jrnl.c - journal staging files: the byte API, range
 * lists, files left by a crash (store_jrnl_scan), staging files retired
 * until a sync, put back after a power cut and emptied at once on a full
 * disk; and the map usage writers check (store_map_usage). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"
#include "store/store.h"
#include "tests/unit/test.h"
#include "tests/unit/testutil.h"

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

/* The bytes of a file into buf (at most size), their count or -1. */
static ssize_t
file_bytes(const char *path, void *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size);
	close(fd);
	return n;
}

static int
put_record(struct store *st, uint64_t ino, uint64_t bno, int del)
{
	struct store_txn *t;

	CHECK_EQ(store_txn_begin(st, 0, &t), 0);
	CHECK_EQ(del ? store_jrnl_del(t, ino, bno) : store_jrnl_put(t, ino, bno),
	    0);
	CHECK_EQ(store_txn_commit(t), 0);
	return 0;
}

static int
has_record(uint64_t ino, uint64_t bno)
{
	struct store *st;
	struct store_txn *t;
	int rc;

	CHECK_EQ(store_open(&st, "home", TEST_MAP_BYTES), 0);
	CHECK_EQ(store_txn_begin(st, 1, &t), 0);
	rc = store_jrnl_has(t, ino, bno);
	store_txn_abort(t);
	store_close(st);
	return rc;
}

/* An unlinked staging file leaves the journal at once (the block's next
 * write starts anew) but keeps its bytes until a sync begun after the
 * unlink has completed; only then is it emptied into a spare. */
static int
test_jrnl_retire(void)
{
	struct store_jrnl_piece pc = { 0, "hello", 5 };
	struct store *st;
	char buf[16];

	CHECK_EQ(store_open(&st, "home", TEST_MAP_BYTES), 0);
	CHECK_EQ(test_dir_count("home/retired"), 0);
	CHECK_EQ(store_jrnl_write(st, 5, 2, &pc, 1, 0), 0);
	CHECK_EQ(store_jrnl_range_add(st, 5, 2, 0, 5, 1), 0);
	CHECK_EQ(put_record(st, 5, 2, 0), 0);
	CHECK_EQ(put_record(st, 5, 2, 1), 0);	/* "uploaded" */
	CHECK_EQ(store_jrnl_unlink(st, 5, 2), 0);
	CHECK_EQ(store_jrnl_unlink(st, 5, 2), -ENOENT);
	CHECK(access("home/journal/5.2", F_OK) != 0);
	CHECK(access("home/journal/5.9223372036854775810", F_OK) != 0);
	CHECK_EQ(test_dir_count("home/retired"), 2);
	CHECK_EQ(file_bytes("home/retired/0.5.2", buf, sizeof buf), 5);
	CHECK_MEM(buf, "hello", 5);
	/* The next write of the block starts from nothing. */
	pc = (struct store_jrnl_piece){ 1, "b", 1 };
	CHECK_EQ(store_jrnl_write(st, 5, 2, &pc, 1, 0), 0);
	CHECK_EQ(store_jrnl_read(st, 5, 2, 0, buf, 3), 0);
	CHECK_MEM(buf, "\0b\0", 3);
	/* No sync since: nothing is emptied. */
	store__retired_recycle(st);
	CHECK_EQ(test_dir_count("home/retired"), 2);
	CHECK_EQ(store_sync(st), 0);
	store__retired_recycle(st);
	CHECK_EQ(test_dir_count("home/retired"), 0);
	CHECK_EQ(store_jrnl_read(st, 5, 2, 0, buf, 3), 0);
	CHECK_MEM(buf, "\0b\0", 3);
	/* No retired directory (removed under the store): emptied at once,
	 * and a second unlink still finds nothing. */
	CHECK_EQ(rmdir("home/retired"), 0);
	CHECK_EQ(store_jrnl_write(st, 5, 3, &pc, 1, 0), 0);
	CHECK_EQ(store_jrnl_unlink(st, 5, 3), 0);
	CHECK(access("home/journal/5.3", F_OK) != 0);
	CHECK_EQ(store_jrnl_unlink(st, 5, 3), -ENOENT);
	CHECK_EQ(mkdir("home/retired", 0700), 0);
	/* Retired after the last sync: it waits for the next one (here
	 * store_close's). */
	CHECK_EQ(store_jrnl_unlink(st, 5, 2), 0);
	store__retired_recycle(st);
	CHECK_EQ(test_dir_count("home/retired"), 1);
	store_close(st);
	CHECK_EQ(test_dir_count("home/retired"), 0);
	return 0;
}

/* A power cut after an upload's commit and before the sync: the store
 * opens with the block's record back (the commit lost) and the staging
 * file retired. It goes back whole, the newest retirement of the block
 * with its range list; retired files of blocks without a record, or
 * whose block has a newer staging file, are removed. */
static int
test_jrnl_retired_put_back(void)
{
	struct store_jrnl_piece pc = { 0, "old", 3 };
	struct store *st;
	char buf[16];
	int fd;

	CHECK_EQ(store_open(&st, "home", TEST_MAP_BYTES), 0);
	CHECK_EQ(put_record(st, 7, 1, 0), 0);
	CHECK_EQ(put_record(st, 8, 0, 0), 0);
	CHECK_EQ(store_jrnl_write(st, 8, 0, &pc, 1, 0), 0);	/* newer */
	store_close(st);
	/* As the crash left them: two retirements of 7.1 (the newer one an
	 * overlay with its range list), one of 8.0, one of 9.0 (no record),
	 * and a name that is not ours. */
	CHECK((fd = open("home/retired/3.7.1", O_WRONLY | O_CREAT, 0600)) >= 0);
	CHECK_EQ(write(fd, "first", 5), 5);
	close(fd);
	CHECK((fd = open("home/retired/12.7.1", O_WRONLY | O_CREAT, 0600)) >= 0);
	CHECK_EQ(write(fd, "second", 6), 6);
	close(fd);
	CHECK((fd = open("home/retired/12.7.9223372036854775809",
	    O_WRONLY | O_CREAT, 0600)) >= 0);
	CHECK_EQ(write(fd, "\0\0\0\0\0\0\0\6", 8), 8);
	close(fd);
	CHECK((fd = open("home/retired/5.8.0", O_WRONLY | O_CREAT, 0600)) >= 0);
	CHECK_EQ(write(fd, "stale", 5), 5);
	close(fd);
	CHECK((fd = open("home/retired/6.9.0", O_WRONLY | O_CREAT, 0600)) >= 0);
	close(fd);
	CHECK((fd = open("home/retired/junk", O_WRONLY | O_CREAT, 0600)) >= 0);
	close(fd);

	CHECK_EQ(store_open(&st, "home", TEST_MAP_BYTES), 0);
	CHECK_EQ(test_dir_count("home/retired"), 0);
	CHECK_EQ(file_bytes("home/journal/7.1", buf, sizeof buf), 6);
	CHECK_MEM(buf, "second", 6);
	CHECK_EQ(file_bytes("home/journal/7.9223372036854775809", buf,
	    sizeof buf), 8);
	CHECK_EQ(file_bytes("home/journal/8.0", buf, sizeof buf), 3);
	CHECK_MEM(buf, "old", 3);
	CHECK(access("home/journal/9.0", F_OK) != 0);
	/* New retirements are not named as the old ones were. */
	CHECK_EQ(store_jrnl_unlink(st, 8, 0), 0);
	CHECK(access("home/retired/13.8.0", F_OK) == 0);
	store_close(st);
	CHECK_EQ(has_record(7, 1), 1);
	return 0;
}

/* On a full disk, a write finds room in the retired staging files: they
 * are emptied at once (a file just deleted to make room, say), not at the
 * next flush. The store lives on a 40 MiB tmpfs: LMDB keeps 16 MiB of it
 * allocated, a retired 8 MiB staging file and a filler take the rest. */
static int
full_disk(void)
{
	static char big[8 << 20];
	struct store_jrnl_piece pc = { 0, big, sizeof big };
	struct store_jrnl_piece one = { 0, big, 1 << 20 };
	struct store *st;
	int fd;

	memset(big, 'z', sizeof big);
	CHECK_EQ(store_open(&st, "tiny/home", TEST_MAP_BYTES), 0);
	CHECK_EQ(store_jrnl_write(st, 1, 0, &pc, 1, 0), 0);
	CHECK((fd = open("tiny/filler", O_WRONLY | O_CREAT, 0600)) >= 0);
	while (write(fd, big, 64 << 10) > 0)
		;
	CHECK_EQ(errno, ENOSPC);
	close(fd);
	/* Live, the big file holds its bytes: no room. */
	CHECK_EQ(store_jrnl_write(st, 2, 0, &one, 1, 0), -ENOSPC);
	CHECK_EQ(store_jrnl_unlink(st, 1, 0), 0);
	CHECK_EQ(test_dir_count("tiny/home/retired"), 1);
	CHECK_EQ(store_jrnl_write(st, 2, 0, &one, 1, 0), 0);
	CHECK_EQ(test_dir_count("tiny/home/retired"), 0);
	store_close(st);
	return 0;
}

static int
test_jrnl_full_disk(void)
{
	int rc;

	if (mkdir("tiny", 0700) != 0)
		return 1;
	if (mount("tmpfs", "tiny", "tmpfs", 0, "size=40m") != 0) {
		fprintf(stderr, "cannot mount a tmpfs: %s\n", strerror(errno));
		return TEST_SKIP;
	}
	rc = full_disk();
	umount2("tiny", MNT_DETACH);
	return rc;
}

const struct test tests_jrnl[] = {
	{ "jrnl_retire", test_jrnl_retire },
	{ "jrnl_retired_put_back", test_jrnl_retired_put_back },
	{ "jrnl_full_disk", test_jrnl_full_disk },
	{ "jrnl_scan", test_jrnl_scan },
	{ "jrnl_bytes", test_jrnl_bytes },
	{ "map_usage", test_map_usage },
	{ NULL, NULL },
};
