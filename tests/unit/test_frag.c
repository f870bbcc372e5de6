/* tests/unit/test_frag.c - store/frag.c: the supplier fragment store. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include "store/store.h"
#include "test.h"
#include "util.h"

#define DIR_ "frags"

static void
mk_owner(unsigned char o[CR_PK_BYTES], int seed)
{
	for (int i = 0; i < CR_PK_BYTES; i++)
		o[i] = (unsigned char)(seed * 31 + i);
}

static void
mk_fid(unsigned char f[STORE_FRAGID_BYTES], int seed)
{
	for (int i = 0; i < STORE_FRAGID_BYTES; i++)
		f[i] = (unsigned char)(seed * 17 + i * 3);
}

/* A put whose owner claims the true hash, as net/block.c does. */
static int
put_h(struct store_frag *sf, const unsigned char *o, const unsigned char *f,
    const void *data, size_t len)
{
	unsigned char h[CR_HASH_BYTES];

	cr_hash(h, data, len);
	return store_frag_put(sf, o, f, data, len, h);
}

/* Path of a fragment file relative to the test dir. */
static void
frag_path(char *out, size_t cap, const unsigned char *o, const unsigned char *f)
{
	char oh[2 * CR_PK_BYTES + 1], fh[2 * STORE_FRAGID_BYTES + 1];

	hex_encode(oh, o, CR_PK_BYTES);
	hex_encode(fh, f, STORE_FRAGID_BYTES);
	snprintf(out, cap, DIR_ "/%s/%.2s/%s", oh, fh, fh);
}

struct seen {
	int n;
	uint64_t bytes;
	unsigned char last[STORE_FRAGID_BYTES];
};

static int
count_cb(void *arg, const unsigned char *fragid, uint64_t size)
{
	struct seen *s = arg;

	s->n++;
	s->bytes += size;
	memcpy(s->last, fragid, STORE_FRAGID_BYTES);
	return 0;
}

static int
stop_cb(void *arg, const unsigned char *fragid, uint64_t size)
{
	(*(int *)arg)++;
	return 7;
}

/* A range of a fragment: its bytes, bounds checked against its size,
 * another owner's fragment as missing as the whole one. */
static int
test_get_range(void)
{
	unsigned char o[CR_PK_BYTES], o2[CR_PK_BYTES], f[STORE_FRAGID_BYTES];
	struct store_frag *sf;
	uint64_t size = 0;
	void *data = NULL;

	mk_owner(o, 1);
	mk_owner(o2, 2);
	mk_fid(f, 1);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(store_frag_get_range(sf, o, f, 0, 1, &data, NULL), -ENOENT);
	CHECK_EQ(put_h(sf, o, f, "0123456789", 10), 0);
	CHECK_EQ(store_frag_get_range(sf, o, f, 3, 4, &data, &size), 0);
	CHECK_MEM(data, "3456", 4);
	CHECK_EQ(size, 10);
	free(data);
	CHECK_EQ(store_frag_get_range(sf, o, f, 9, 1, &data, NULL), 0);
	CHECK_MEM(data, "9", 1);
	free(data);
	CHECK_EQ(store_frag_get_range(sf, o, f, 0, 10, &data, NULL), 0);
	CHECK_MEM(data, "0123456789", 10);
	free(data);
	size = 0;
	CHECK_EQ(store_frag_get_range(sf, o, f, 9, 2, &data, &size), -ERANGE);
	CHECK_EQ(size, 10);
	CHECK_EQ(store_frag_get_range(sf, o, f, 10, 1, &data, NULL), -ERANGE);
	CHECK_EQ(store_frag_get_range(sf, o, f, UINT64_MAX, 1, &data, NULL),
	    -ERANGE);
	CHECK_EQ(store_frag_get_range(sf, o, f, 1, SIZE_MAX, &data, NULL),
	    -ERANGE);
	CHECK_EQ(store_frag_get_range(sf, o, f, 0, 0, &data, NULL), -EINVAL);
	CHECK_EQ(store_frag_get_range(sf, o2, f, 0, 1, &data, NULL), -ENOENT);
	store_frag_close(sf);
	return 0;
}

static int
test_round_trip(void)
{
	unsigned char o[CR_PK_BYTES], f1[STORE_FRAGID_BYTES], f2[STORE_FRAGID_BYTES];
	struct store_frag *sf;
	uint64_t b, c, q;
	struct seen s = { 0 };
	void *data;
	size_t len;
	int calls = 0;

	mk_owner(o, 1);
	mk_fid(f1, 1);
	mk_fid(f2, 2);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(store_frag_get(sf, o, f1, &data, &len), -ENOENT);
	CHECK_EQ(store_frag_del(sf, o, f1), -ENOENT);
	CHECK_EQ(put_h(sf, o, f1, "hello", 5), 0);
	CHECK_EQ(put_h(sf, o, f2, "fragment two", 12), 0);
	CHECK_EQ(store_frag_get(sf, o, f1, &data, &len), 0);
	CHECK_EQ(len, 5);
	CHECK_MEM(data, "hello", 5);
	free(data);
	store_frag_usage(sf, o, &b, &c, &q);
	CHECK_EQ(b, 17);
	CHECK_EQ(c, 2);
	CHECK(q > 0);		/* the default: a tenth of what was free */
	store_frag_usage(sf, NULL, &b, &c, NULL);
	CHECK_EQ(b, 17);
	CHECK_EQ(c, 2);
	CHECK_EQ(store_frag_list(sf, o, count_cb, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK_EQ(s.bytes, 17);
	CHECK_EQ(store_frag_list(sf, o, stop_cb, &calls), 7);
	CHECK_EQ(calls, 1);
	CHECK(store_frag_avail(sf) > 0);

	CHECK_EQ(store_frag_del(sf, o, f1), 0);
	CHECK_EQ(store_frag_get(sf, o, f1, &data, &len), -ENOENT);
	CHECK_EQ(store_frag_del(sf, o, f1), -ENOENT);
	store_frag_usage(sf, o, &b, &c, NULL);
	CHECK_EQ(b, 12);
	CHECK_EQ(c, 1);
	memset(&s, 0, sizeof s);
	CHECK_EQ(store_frag_list(sf, o, count_cb, &s), 0);
	CHECK_EQ(s.n, 1);
	CHECK_MEM(s.last, f2, STORE_FRAGID_BYTES);
	CHECK_EQ(store_frag_del(sf, o, f2), 0);
	store_frag_usage(sf, NULL, &b, &c, NULL);
	CHECK_EQ(b, 0);
	CHECK_EQ(c, 0);
	store_frag_close(sf);
	return 0;
}

static int
test_owners_isolated(void)
{
	unsigned char a[CR_PK_BYTES], bo[CR_PK_BYTES], f[STORE_FRAGID_BYTES];
	struct store_frag *sf;
	struct seen s = { 0 };
	uint64_t b, c;
	void *data;
	size_t len;

	mk_owner(a, 1);
	mk_owner(bo, 2);
	mk_fid(f, 1);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(put_h(sf, a, f, "secret of A", 11), 0);
	CHECK_EQ(store_frag_get(sf, bo, f, &data, &len), -ENOENT);
	CHECK_EQ(store_frag_del(sf, bo, f), -ENOENT);
	CHECK_EQ(store_frag_list(sf, bo, count_cb, &s), 0);
	CHECK_EQ(s.n, 0);
	store_frag_usage(sf, bo, &b, &c, NULL);
	CHECK_EQ(b, 0);
	CHECK_EQ(c, 0);
	/* B may store the same fragment id: a separate fragment */
	CHECK_EQ(put_h(sf, bo, f, "B's", 3), 0);
	CHECK_EQ(store_frag_get(sf, a, f, &data, &len), 0);
	CHECK_EQ(len, 11);
	CHECK_MEM(data, "secret of A", 11);
	free(data);
	CHECK_EQ(store_frag_del(sf, bo, f), 0);
	CHECK_EQ(store_frag_get(sf, a, f, &data, &len), 0);
	free(data);
	store_frag_usage(sf, a, &b, &c, NULL);
	CHECK_EQ(b, 11);
	CHECK_EQ(c, 1);
	store_frag_close(sf);
	return 0;
}

/* Number of entries in a directory tree (files and dirs), minus acct. */
static int
count_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char sub[1024];
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "acct"))
			continue;
		n++;
		snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
		if (de->d_type == DT_DIR)
			n += count_tree(sub);
	}
	closedir(d);
	return n;
}

static int
test_quota(void)
{
	unsigned char o[CR_PK_BYTES], o2[CR_PK_BYTES], f1[STORE_FRAGID_BYTES],
	    f2[STORE_FRAGID_BYTES];
	char big[16384];
	struct store_frag *sf;
	uint64_t b, c, q, c1;
	void *data;
	size_t len;
	int files;

	memset(big, 'q', sizeof big);
	mk_owner(o, 1);
	mk_owner(o2, 2);
	mk_fid(f1, 1);
	mk_fid(f2, 2);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1), 0);
	c1 = store_frag_cost(sf, 1);
	store_frag_close(sf);
	/* Room for three one-block fragments. */
	CHECK_EQ(store_frag_open(&sf, DIR_, 3 * c1), 0);
	CHECK_EQ(store_frag_avail(sf), 3 * c1);
	CHECK_EQ(put_h(sf, o, f1, big, 60), 0);
	CHECK_EQ(store_frag_avail(sf), 2 * c1);
	files = count_tree(DIR_);
	/* the quota is the store's, over every owner (no policy set): the
	 * store is full for o2, o is at its own quota */
	CHECK_EQ(put_h(sf, o2, f2, big, 2 * c1), -ENOSPC);
	CHECK_EQ(put_h(sf, o, f2, big, 3 * c1), -EDQUOT);
	CHECK_EQ(count_tree(DIR_), files);	/* nothing written */
	CHECK_EQ(store_frag_get(sf, o, f2, &data, &len), -ENOENT);
	store_frag_usage(sf, NULL, &b, &c, &q);
	CHECK_EQ(b, 60);
	CHECK_EQ(c, 1);
	CHECK_EQ(q, 3 * c1);
	store_frag_usage(sf, o2, &b, &c, NULL);
	CHECK_EQ(b, 0);
	/* exactly at the quota is fine */
	CHECK_EQ(put_h(sf, o2, f2, big, 1), 0);
	CHECK_EQ(store_frag_avail(sf), c1);
	CHECK_EQ(put_h(sf, o, f2, big, 4096), 0);
	CHECK_EQ(store_frag_avail(sf), 0);
	/* replacing counts only the difference */
	CHECK_EQ(put_h(sf, o, f1, big + 1, 60), 0);
	CHECK_EQ(put_h(sf, o, f1, big, 4000), 0);	/* same block */
	CHECK_EQ(put_h(sf, o, f1, big, c1), -ENOSPC);
	CHECK_EQ(put_h(sf, o, f1, "x", 1), 0);
	store_frag_usage(sf, NULL, &b, &c, NULL);
	CHECK_EQ(b, 1 + 1 + 4096);
	CHECK_EQ(c, 3);
	CHECK_EQ(store_frag_avail(sf), 0);
	store_frag_close(sf);
	return 0;
}

/* A fragment is charged what the disk pays for it: a one-byte fragment
 * costs a block and a record, so 100 of them do not fit a quota of 100
 * blocks' worth... of bytes counted one by one. */
static int
test_charge_disk_cost(void)
{
	unsigned char o[CR_PK_BYTES], f[STORE_FRAGID_BYTES];
	struct store_frag *sf;
	struct store_frag_acct a;
	uint64_t c1;
	int i;

	mk_owner(o, 1);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1 << 20), 0);
	c1 = store_frag_cost(sf, 1);
	CHECK(c1 >= 4096 + STORE_FRAG_REC_COST);
	CHECK_EQ(store_frag_cost(sf, 4096), c1);
	CHECK_EQ(store_frag_cost(sf, 4097), c1 + 4096);
	for (i = 0; i < 1000; i++) {
		mk_fid(f, i);
		if (put_h(sf, o, f, "x", 1) != 0)
			break;
	}
	/* 1 MiB holds 227 one-byte fragments at 4.5 KiB, not 1000. */
	CHECK_EQ(i, (int)((1 << 20) / c1));
	CHECK_EQ(put_h(sf, o, f, "x", 1), -EDQUOT);
	store_frag_account(sf, o, &a);
	CHECK_EQ(a.bytes, (uint64_t)i);
	CHECK_EQ(a.fragments, (uint64_t)i);
	CHECK_EQ(a.charged, (uint64_t)i * c1);
	store_frag_close(sf);
	/* the charge is rebuilt from the files at open */
	CHECK_EQ(store_frag_open(&sf, DIR_, 1 << 20), 0);
	store_frag_account(sf, o, &a);
	CHECK_EQ(a.charged, (uint64_t)i * c1);
	CHECK(store_frag_avail(sf) < c1);
	store_frag_close(sf);
	return 0;
}

/* Strangers fill what they may; a friend's room stays, and what anyone
 * stores is never touched by another's refusal. */
static int
test_strangers(void)
{
	unsigned char fr[CR_PK_BYTES], st[4][CR_PK_BYTES], f[STORE_FRAGID_BYTES];
	unsigned char friends[1][CR_PK_BYTES];
	struct store_frag_policy pol = { 0 };
	struct store_frag_acct a;
	struct store_frag *sf;
	char big[64 << 10];
	uint64_t c64, left;
	uint32_t got;
	void *data;
	size_t len;
	int n[4] = { 0 };

	memset(big, 's', sizeof big);
	mk_owner(fr, 1);
	for (int i = 0; i < 4; i++)
		mk_owner(st[i], 10 + i);
	memcpy(friends[0], fr, CR_PK_BYTES);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1), 0);
	c64 = store_frag_cost(sf, sizeof big);
	store_frag_close(sf);
	/* Total: 40 fragments of 64 KiB; strangers 8 each, 20 together. */
	CHECK_EQ(store_frag_open(&sf, DIR_, 40 * c64), 0);
	pol.stranger_quota = 8 * c64;
	pol.friends = (const unsigned char (*)[CR_PK_BYTES])friends;
	pol.nfriends = 1;
	CHECK_EQ(store_frag_set_policy(sf, &pol), 0);
	for (int s = 0; s < 4; s++) {
		int rc;
		for (;;) {
			mk_fid(f, 100 * s + n[s]);
			if ((rc = put_h(sf, st[s], f, big, sizeof big)) != 0)
				break;
			n[s]++;
		}
		/* the first two hit their own quota, the third the share
		 * of all strangers (half the total), the fourth gets none */
		CHECK_EQ(rc, s < 2 ? -EDQUOT : -ENOSPC);
	}
	CHECK_EQ(n[0], 8);
	CHECK_EQ(n[1], 8);
	CHECK_EQ(n[2], 4);
	CHECK_EQ(n[3], 0);
	CHECK_EQ(store_frag_reserve(sf, st[3], sizeof big, 1, &got, NULL),
	    -ENOSPC);
	CHECK_EQ(store_frag_reserve(sf, st[0], sizeof big, 1, &got, NULL),
	    -EDQUOT);
	/* the friend reserves the other half and gets it */
	CHECK_EQ(store_frag_reserve(sf, fr, sizeof big, 30, &got, &left), 0);
	CHECK_EQ(got, 20);
	CHECK_EQ(left, 20 * c64);
	/* held for the friend: strangers cannot take it, even if the
	 * policy let them */
	for (int i = 0; i < 20; i++) {
		mk_fid(f, 1000 + i);
		CHECK_EQ(put_h(sf, fr, f, big, sizeof big), 0);
	}
	mk_fid(f, 2000);
	CHECK_EQ(put_h(sf, fr, f, big, sizeof big), -ENOSPC);
	store_frag_account(sf, fr, &a);
	CHECK_EQ(a.fragments, 20);
	CHECK_EQ(a.reserved, 0);
	CHECK_EQ(a.friend, 1);
	CHECK_EQ(a.quota, 40 * c64);
	store_frag_account(sf, st[0], &a);
	CHECK_EQ(a.friend, 0);
	CHECK_EQ(a.quota, 8 * c64);
	CHECK_EQ(a.charged, 8 * c64);
	/* every stranger's data is still there */
	mk_fid(f, 0);
	CHECK_EQ(store_frag_get(sf, st[0], f, &data, &len), 0);
	CHECK_EQ(len, sizeof big);
	free(data);
	/* friends only: a stranger is not admitted, for new bytes */
	pol.friends_only = 1;
	CHECK_EQ(store_frag_set_policy(sf, &pol), 0);
	mk_fid(f, 0);
	CHECK_EQ(store_frag_get(sf, st[0], f, &data, &len), 0);
	free(data);
	CHECK_EQ(store_frag_del(sf, st[0], f), 0);
	CHECK_EQ(put_h(sf, st[0], f, big, sizeof big), -EACCES);
	CHECK_EQ(store_frag_reserve(sf, st[0], 1, 1, &got, NULL), -EACCES);
	store_frag_close(sf);
	return 0;
}

/* What each owner earned, for the fair deal (set by test_deal). */
static unsigned char deal_key[3][CR_PK_BYTES];
static uint64_t deal_earn[3];

static uint64_t
deal_earned(void *arg, const unsigned char *owner)
{
	(void)arg;
	for (int i = 0; i < 3; i++)
		if (memcmp(owner, deal_key[i], CR_PK_BYTES) == 0)
			return deal_earn[i];
	return 0;
}

/* The fair deal: a stranger gets what it earned plus the credit, never
 * past its stranger quota; a friend is exempt; what is stored stays
 * when the balance falls. */
static int
test_deal(void)
{
	unsigned char fr[CR_PK_BYTES], st[3][CR_PK_BYTES], f[STORE_FRAGID_BYTES];
	unsigned char friends[1][CR_PK_BYTES];
	struct store_frag_policy pol = { 0 };
	struct store_frag_acct a;
	struct store_frag *sf;
	char big[64 << 10];
	uint64_t deal_c64;
	int n[3] = { 0 }, nf = 0;
	uint32_t got;
	void *data;
	size_t len;

	memset(big, 'd', sizeof big);
	mk_owner(fr, 1);
	for (int i = 0; i < 3; i++)
		mk_owner(st[i], 10 + i);
	memcpy(deal_key, st, sizeof deal_key);
	memcpy(friends[0], fr, CR_PK_BYTES);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1), 0);
	deal_c64 = store_frag_cost(sf, sizeof big);
	store_frag_close(sf);
	deal_earn[0] = 0;		/* earned nothing */
	deal_earn[1] = 3 * deal_c64;
	deal_earn[2] = 27 * deal_c64;	/* beyond its stranger quota */
	CHECK_EQ(store_frag_open(&sf, DIR_, 100 * deal_c64), 0);
	pol.stranger_quota = 10 * deal_c64;
	pol.friends = (const unsigned char (*)[CR_PK_BYTES])friends;
	pol.nfriends = 1;
	pol.deal = 1;
	pol.credit = 2 * deal_c64;
	pol.earned = deal_earned;
	CHECK_EQ(store_frag_set_policy(sf, &pol), 0);
	for (int s = 0; s < 3; s++) {
		for (;;) {
			mk_fid(f, 100 * s + n[s]);
			if (put_h(sf, st[s], f, big, sizeof big) != 0)
				break;
			n[s]++;
		}
	}
	CHECK_EQ(n[0], 2);		/* the credit */
	CHECK_EQ(n[1], 5);		/* earned 3 + credit 2 */
	CHECK_EQ(n[2], 10);		/* the stranger quota */
	CHECK_EQ(store_frag_reserve(sf, st[0], sizeof big, 1, &got, NULL),
	    -EDQUOT);
	store_frag_account(sf, st[1], &a);
	CHECK_EQ(a.deal, 1);
	CHECK_EQ(a.earned, 3 * deal_c64);
	CHECK_EQ(a.deal_limit, 5 * deal_c64);
	/* the friend: beyond any deal */
	for (nf = 0; nf < 20; nf++) {
		mk_fid(f, 1000 + nf);
		CHECK_EQ(put_h(sf, fr, f, big, sizeof big), 0);
	}
	store_frag_account(sf, fr, &a);
	CHECK_EQ(a.deal, 0);
	/* st[1]'s node stops earning: no new bytes, even those reserved
	 * before; its data stays */
	store_frag_del(sf, st[1], (mk_fid(f, 104), f));
	CHECK_EQ(store_frag_reserve(sf, st[1], sizeof big, 1, &got, NULL), 0);
	CHECK_EQ(got, 1);
	deal_earn[1] = 0;
	mk_fid(f, 104);
	CHECK_EQ(put_h(sf, st[1], f, big, sizeof big), -EDQUOT);
	mk_fid(f, 100);
	CHECK_EQ(store_frag_get(sf, st[1], f, &data, &len), 0);
	free(data);
	CHECK_EQ(store_frag_reserve(sf, st[1], sizeof big, 1, &got, NULL),
	    -EDQUOT);
	/* --accept open: the stranger quota alone */
	pol.deal = 0;
	CHECK_EQ(store_frag_set_policy(sf, &pol), 0);
	CHECK_EQ(store_frag_reserve(sf, st[0], sizeof big, 16, &got, NULL), 0);
	CHECK_EQ(got, 8);
	store_frag_close(sf);
	return 0;
}

/* The fair deal's eviction rule alone: the clock starts on a deficit
 * the ledger vouches for, stops when the balance recovers or the ledger
 * is no evidence, holds during a rebuild, and is due after the grace
 * once a full audit pass ended since it started. */
static int
test_deal_due_rule(void)
{
	const int64_t T = 1700000000, G = 100;
	struct store_ledger_state ls = { .written = T, .pass_end = T - 5 };
	int64_t since = 0;

	/* within the deal: nothing */
	CHECK_EQ(store_deal_due(T, G, 0, &ls, &since), 0);
	CHECK_EQ(since, 0);
	/* beyond: the clock starts, not due yet */
	CHECK_EQ(store_deal_due(T, G, 1, &ls, &since), 0);
	CHECK_EQ(since, T);
	ls.written = T + G - 1;
	CHECK_EQ(store_deal_due(T + G - 1, G, 1, &ls, &since), 0);
	CHECK_EQ(since, T);
	/* the grace is over but no full pass ended since the start */
	ls.written = T + G;
	CHECK_EQ(store_deal_due(T + G, G, 1, &ls, &since), 0);
	ls.pass_end = T + 50;
	CHECK_EQ(store_deal_due(T + G, G, 1, &ls, &since), 1);
	CHECK_EQ(since, T);
	/* a rebuild: never due, the running clock kept */
	ls.rebuilding = 1;
	ls.written = T + 5 * G;
	CHECK_EQ(store_deal_due(T + 5 * G, G, 1, &ls, &since), 0);
	CHECK_EQ(since, T);
	/* ... and none starts during it */
	since = 0;
	CHECK_EQ(store_deal_due(T + 5 * G, G, 1, &ls, &since), 0);
	CHECK_EQ(since, 0);
	ls.rebuilding = 0;
	ls.written = T + G;
	/* the balance recovers: stopped */
	since = T;
	CHECK_EQ(store_deal_due(T + G, G, 0, &ls, &since), 0);
	CHECK_EQ(since, 0);
	/* a stale ledger (not written for longer than the grace): stopped,
	 * and no clock starts on it */
	since = T;
	ls.written = T;
	CHECK_EQ(store_deal_due(T + G + 1, G, 1, &ls, &since), 0);
	CHECK_EQ(since, 0);
	CHECK_EQ(store_deal_due(T + 10 * G, G, 1, &ls, &since), 0);
	CHECK_EQ(since, 0);
	/* no ledger, a version 1 ledger, a ledger from the future, or one
	 * with no full audit pass ever: no evidence */
	memset(&ls, 0, sizeof ls);
	CHECK_EQ(store_deal_due(T, G, 1, &ls, &since), 0);
	CHECK_EQ(since, 0);
	ls.written = T + 3600;
	ls.pass_end = T;
	CHECK_EQ(store_deal_due(T, G, 1, &ls, &since), 0);
	CHECK_EQ(since, 0);
	ls.written = T;
	ls.pass_end = 0;
	CHECK_EQ(store_deal_due(T, G, 1, &ls, &since), 0);
	CHECK_EQ(since, 0);
	return 0;
}

static struct store_frag_acct
acct_of(struct store_frag *sf, const unsigned char *o)
{
	struct store_frag_acct a;

	store_frag_account(sf, o, &a);
	return a;
}

static int
deal_policy(struct store_frag *sf, const unsigned char (*friends)[CR_PK_BYTES],
    uint64_t credit, int deal)
{
	struct store_frag_policy pol = { 0 };

	pol.stranger_quota = 1 << 30;
	pol.friends = friends;
	pol.nfriends = 1;
	pol.deal = deal;
	pol.credit = credit;
	pol.earned = deal_earned;
	return store_frag_set_policy(sf, &pol);
}

/* The rule applied to a store: clocks kept in the accounts across a
 * reopen, a stranger that recovers kept, a friend exempt, nothing while
 * the mount rebuilds or with a stale ledger, then eviction: fragments,
 * charge and request file gone, new space refused for a grace. */
static int
test_deal_evict(void)
{
	unsigned char fr[1][CR_PK_BYTES], st[3][CR_PK_BYTES];
	unsigned char f[STORE_FRAGID_BYTES];
	/* evicted in the recent past: the refusal window uses the clock */
	const int64_t T = (int64_t)time(NULL) - 400, G = 1000;
	struct store_ledger_state ls = { .written = T, .pass_end = T };
	struct store_frag_acct a;
	struct store_frag *sf;
	uint64_t c, bytes0, bytes1, count;
	uint32_t got;
	void *data;
	size_t len;
	struct stat sb;

	mk_owner(fr[0], 1);
	for (int i = 0; i < 3; i++)
		mk_owner(st[i], 20 + i);
	memcpy(deal_key, st, sizeof deal_key);
	memset(deal_earn, 0, sizeof deal_earn);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1 << 30), 0);
	c = store_frag_cost(sf, 3);
	CHECK_EQ(deal_policy(sf, fr, 4 * c, 1), 0);
	for (int i = 0; i < 3; i++) {
		mk_fid(f, i);
		CHECK_EQ(put_h(sf, st[0], f, "abc", 3), 0);
		CHECK_EQ(put_h(sf, st[1], f, "abc", 3), 0);
		CHECK_EQ(put_h(sf, fr[0], f, "abc", 3), 0);
	}
	mk_fid(f, 0);
	CHECK_EQ(put_h(sf, st[2], f, "abc", 3), 0);
	/* within the deal: no clock */
	CHECK_EQ(store_frag_deal_evict(sf, T, G, &ls), 0);
	CHECK_EQ(acct_of(sf, st[0]).deficit_since, 0);
	/* the credit shrinks: st[0] and st[1] hold 3, may hold 1; st[2]
	 * holds 1; the friend is exempt */
	CHECK_EQ(deal_policy(sf, fr, c, 1), 0);
	CHECK_EQ(store_frag_deal_evict(sf, T, G, &ls), 0);
	CHECK_EQ(acct_of(sf, st[0]).deficit_since, T);
	CHECK_EQ(acct_of(sf, st[1]).deficit_since, T);
	CHECK_EQ(acct_of(sf, st[2]).deficit_since, 0);
	CHECK_EQ(acct_of(sf, fr[0]).deficit_since, 0);
	/* the clocks survive a restart */
	store_frag_close(sf);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1 << 30), 0);
	CHECK_EQ(deal_policy(sf, fr, c, 1), 0);
	CHECK_EQ(acct_of(sf, st[0]).deficit_since, T);
	/* st[1]'s node earns: its clock stops */
	deal_earn[1] = 10 * c;
	ls.written = T + 10;
	CHECK_EQ(store_frag_deal_evict(sf, T + 10, G, &ls), 0);
	CHECK_EQ(acct_of(sf, st[1]).deficit_since, 0);
	CHECK_EQ(acct_of(sf, st[0]).deficit_since, T);
	/* past the grace, but the mount rebuilds: nobody goes */
	ls.written = T + G + 10;
	ls.pass_end = T + G;
	ls.rebuilding = 1;
	CHECK_EQ(store_frag_deal_evict(sf, T + G + 10, G, &ls), 0);
	CHECK_EQ(acct_of(sf, st[0]).fragments, 3);
	CHECK_EQ(acct_of(sf, st[0]).deficit_since, T);
	/* past the grace, the ledger stale: nobody goes, the clock stops */
	ls.rebuilding = 0;
	ls.written = T + 5;
	CHECK_EQ(store_frag_deal_evict(sf, T + G + 10, G, &ls), 0);
	CHECK_EQ(acct_of(sf, st[0]).fragments, 3);
	CHECK_EQ(acct_of(sf, st[0]).deficit_since, 0);
	/* fresh again: the clock starts afresh, and runs out */
	ls.written = T + 100;
	ls.pass_end = T + 100;
	CHECK_EQ(store_frag_deal_evict(sf, T + 100, G - 100, &ls), 0);
	CHECK_EQ(acct_of(sf, st[0]).deficit_since, T + 100);
	store_frag_usage(sf, NULL, &bytes0, &count, NULL);
	ls.written = T + 300;
	ls.pass_end = T + 250;
	CHECK_EQ(store_frag_deal_evict(sf, T + 300, 200, &ls), 1);
	a = acct_of(sf, st[0]);
	CHECK_EQ(a.fragments, 0);
	CHECK_EQ(a.charged, 0);
	CHECK_EQ(a.evicted, T + 300);
	mk_fid(f, 1);
	CHECK_EQ(store_frag_get(sf, st[0], f, &data, &len), -ENOENT);
	store_frag_usage(sf, NULL, &bytes1, &count, NULL);
	CHECK_EQ(bytes0 - bytes1, 9);
	/* the request that made it crash safe is done and gone */
	{
		char req[sizeof DIR_ "/evict/" + 2 * CR_PK_BYTES];

		memcpy(req, DIR_ "/evict/", sizeof DIR_ "/evict/" - 1);
		hex_encode(req + sizeof DIR_ "/evict/" - 1, st[0], CR_PK_BYTES);
		CHECK_EQ(stat(DIR_ "/evict", &sb), 0);
		CHECK_EQ(stat(req, &sb), -1);
		CHECK_EQ(errno, ENOENT);
	}
	/* the others stay */
	CHECK_EQ(acct_of(sf, st[1]).fragments, 3);
	CHECK_EQ(acct_of(sf, fr[0]).fragments, 3);
	/* refused new space for a grace, with the mark across a restart */
	CHECK_EQ(store_frag_reserve(sf, st[0], 3, 1, &got, NULL), -EDQUOT);
	CHECK_EQ(put_h(sf, st[0], f, "abc", 3), -EDQUOT);
	store_frag_close(sf);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1 << 30), 0);
	CHECK_EQ(deal_policy(sf, fr, c, 1), 0);
	CHECK_EQ(acct_of(sf, st[0]).evicted, T + 300);
	CHECK_EQ(store_frag_deal_evict(sf, T + 310, G, &ls), 0);
	CHECK_EQ(put_h(sf, st[0], f, "abc", 3), -EDQUOT);
	/* a grace later the mark goes, and the deal applies again */
	CHECK_EQ(store_frag_deal_evict(sf, T + 300 + G, G, &ls), 0);
	CHECK_EQ(acct_of(sf, st[0]).evicted, 0);
	CHECK_EQ(put_h(sf, st[0], f, "abc", 3), 0);
	/* --accept open: no deal, no clock, no eviction */
	CHECK_EQ(deal_policy(sf, fr, c, 0), 0);
	deal_earn[1] = 0;
	ls.written = ls.pass_end = T + 5000;
	CHECK_EQ(store_frag_deal_evict(sf, T + 5000, G, &ls), 0);
	CHECK_EQ(store_frag_deal_evict(sf, T + 9000, G, &ls), 0);
	CHECK_EQ(acct_of(sf, st[1]).deficit_since, 0);
	CHECK_EQ(acct_of(sf, st[1]).fragments, 3);
	store_frag_close(sf);
	return 0;
}

/* A reservation holds room for its owner against everyone else, and
 * puts use it; a cap bounds an owner's fragments (inodes). */
static int
test_reserve_and_cap(void)
{
	unsigned char a1[CR_PK_BYTES], a2[CR_PK_BYTES], f[STORE_FRAGID_BYTES];
	struct store_frag_policy pol = { 0 };
	struct store_frag *sf;
	uint64_t c1, left;
	uint32_t got;

	mk_owner(a1, 1);
	mk_owner(a2, 2);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1), 0);
	c1 = store_frag_cost(sf, 1);
	store_frag_close(sf);
	CHECK_EQ(store_frag_open(&sf, DIR_, 10 * c1), 0);
	CHECK_EQ(store_frag_reserve(sf, a1, 100, 0, &got, NULL), -EINVAL);
	CHECK_EQ(store_frag_reserve(sf, a1, 100, 6, &got, &left), 0);
	CHECK_EQ(got, 6);
	CHECK_EQ(left, 10 * c1);
	/* a2 gets what is left, partly */
	CHECK_EQ(store_frag_reserve(sf, a2, 100, 6, &got, &left), 0);
	CHECK_EQ(got, 4);
	CHECK_EQ(left, 4 * c1);
	/* asking again while holding: the same room, not more */
	CHECK_EQ(store_frag_reserve(sf, a2, 100, 6, &got, &left), 0);
	CHECK_EQ(got, 4);
	CHECK_EQ(store_frag_reserve(sf, a2, 100, 1, &got, &left), 0);
	CHECK_EQ(got, 1);
	CHECK_EQ(left, 4 * c1);
	for (int i = 0; i < 6; i++) {
		mk_fid(f, i);
		CHECK_EQ(put_h(sf, a1, f, "abc", 3), 0);
	}
	mk_fid(f, 6);
	CHECK_EQ(put_h(sf, a1, f, "abc", 3), -ENOSPC);	/* a2's room */
	store_frag_close(sf);

	/* the fragment cap */
	CHECK_EQ(store_frag_open(&sf, DIR_, 1 << 30), 0);
	pol.max_frags = 8;
	CHECK_EQ(store_frag_set_policy(sf, &pol), 0);
	for (int i = 6; i < 8; i++) {
		mk_fid(f, i);
		CHECK_EQ(put_h(sf, a1, f, "abc", 3), 0);
	}
	mk_fid(f, 8);
	CHECK_EQ(put_h(sf, a1, f, "abc", 3), -EDQUOT);
	CHECK_EQ(store_frag_reserve(sf, a1, 3, 1, &got, NULL), -EDQUOT);
	mk_fid(f, 7);
	CHECK_EQ(put_h(sf, a1, f, "abcd", 4), 0);	/* a replacement */
	store_frag_close(sf);
	return 0;
}

struct acc_seen {
	int n;
	struct store_frag_acct a[8];
};

static int
acc_cb(void *arg, const struct store_frag_acct *a)
{
	struct acc_seen *s = arg;

	if (s->n < 8)
		s->a[s->n] = *a;
	s->n++;
	return 0;
}

/* `accounts` lists, `evict` frees, also while another process serves. */
static int
test_accounts_evict(void)
{
	unsigned char o1[CR_PK_BYTES], o2[CR_PK_BYTES], f[STORE_FRAGID_BYTES];
	struct store_frag_policy pol = { 0 };
	struct store_frag *sf, *sf2;
	struct acc_seen s;
	uint64_t freed, c1;
	long pid;
	void *data;
	size_t len;

	mk_owner(o1, 1);
	mk_owner(o2, 2);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1 << 30), 0);
	c1 = store_frag_cost(sf, 1);
	for (int i = 0; i < 3; i++) {
		mk_fid(f, i);
		CHECK_EQ(put_h(sf, o1, f, "one", 3), 0);
	}
	mk_fid(f, 9);
	CHECK_EQ(put_h(sf, o2, f, "two", 3), 0);
	store_frag_touch(sf, o1);
	/* one process per store */
	CHECK_EQ(store_frag_open(&sf2, DIR_, 0), -EBUSY);
	memset(&s, 0, sizeof s);
	CHECK_EQ(store_frag_accounts(sf, NULL, acc_cb, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK_EQ(s.a[0].fragments + s.a[1].fragments, 4);
	CHECK(s.a[0].last_contact > 0 || s.a[1].last_contact > 0);
	/* read from afar while sf serves, with the policy it saved */
	pol.stranger_quota = 1 << 20;
	pol.friends = (const unsigned char (*)[CR_PK_BYTES])o2;
	pol.nfriends = 1;
	CHECK_EQ(store_frag_set_policy(sf, &pol), 0);
	memset(&s, 0, sizeof s);
	CHECK_EQ(store_frag_accounts(NULL, DIR_, acc_cb, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK_EQ(s.a[0].charged + s.a[1].charged, 4 * c1);
	for (int i = 0; i < 2; i++) {
		int fr = memcmp(s.a[i].owner, o2, CR_PK_BYTES) == 0;
		CHECK_EQ(s.a[i].friend, fr);
		CHECK_EQ(s.a[i].quota, fr ? 1u << 30 : 1u << 20);
		/* the friend's room is what everyone left of the total */
		CHECK_EQ(s.a[i].left, fr ? (1u << 30) - 4 * c1 :
		    s.a[i].quota - s.a[i].charged);
	}
	/* evict o1 through a request, as `peerfs supplier evict` does */
	CHECK_EQ(store_frag_evict_request(DIR_, o1, &pid), 0);
	CHECK_EQ(pid, (long)getpid());
	CHECK_EQ(store_frag_evict_pending(sf), 1);
	CHECK_EQ(store_frag_evict_pending(sf), 0);
	mk_fid(f, 0);
	CHECK_EQ(store_frag_get(sf, o1, f, &data, &len), -ENOENT);
	mk_fid(f, 9);
	CHECK_EQ(store_frag_get(sf, o2, f, &data, &len), 0);
	free(data);
	memset(&s, 0, sizeof s);
	CHECK_EQ(store_frag_accounts(sf, NULL, acc_cb, &s), 0);
	CHECK_EQ(s.n, 1);
	CHECK_MEM(s.a[0].owner, o2, CR_PK_BYTES);
	CHECK_EQ(store_frag_evict(sf, o2, &freed), 0);
	CHECK_EQ(freed, c1);
	CHECK_EQ(store_frag_avail(sf) >= (1u << 30) - 0, 1);
	store_frag_close(sf);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1 << 30), 0);
	memset(&s, 0, sizeof s);
	CHECK_EQ(store_frag_accounts(sf, NULL, acc_cb, &s), 0);
	CHECK_EQ(s.n, 0);
	store_frag_close(sf);
	return 0;
}

static int
test_same_twice(void)
{
	unsigned char o[CR_PK_BYTES], f[STORE_FRAGID_BYTES];
	char path[512];
	struct store_frag *sf;
	struct stat st1, st2;
	uint64_t b, c;
	void *data;
	size_t len;

	mk_owner(o, 3);
	mk_fid(f, 3);
	frag_path(path, sizeof path, o, f);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(put_h(sf, o, f, "same bytes", 10), 0);
	CHECK_EQ(stat(path, &st1), 0);
	CHECK_EQ(put_h(sf, o, f, "same bytes", 10), 0);
	CHECK_EQ(stat(path, &st2), 0);
	CHECK_EQ(st1.st_ino, st2.st_ino);	/* not rewritten */
	store_frag_usage(sf, o, &b, &c, NULL);
	CHECK_EQ(b, 10);
	CHECK_EQ(c, 1);
	/* same size, other bytes: replaced */
	CHECK_EQ(put_h(sf, o, f, "SAME BYTES", 10), 0);
	CHECK_EQ(store_frag_get(sf, o, f, &data, &len), 0);
	CHECK_EQ(len, 10);
	CHECK_MEM(data, "SAME BYTES", 10);
	free(data);
	/* other size */
	CHECK_EQ(put_h(sf, o, f, "longer bytes now", 16), 0);
	store_frag_usage(sf, o, &b, &c, NULL);
	CHECK_EQ(b, 16);
	CHECK_EQ(c, 1);
	CHECK_EQ(stat(path, &st2), 0);
	CHECK_EQ(st2.st_size, 16);
	store_frag_close(sf);
	return 0;
}

/* Writes a file with the given bytes (creating directories). */
static int
put_file(const char *path, const void *p, size_t n)
{
	char dir[512], *s;
	int fd;

	snprintf(dir, sizeof dir, "%s", path);
	for (s = strchr(dir, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdir(dir, 0700);
		*s = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, p, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static int
test_reconcile(void)
{
	unsigned char o[CR_PK_BYTES], o2[CR_PK_BYTES], f1[STORE_FRAGID_BYTES],
	    f2[STORE_FRAGID_BYTES], f3[STORE_FRAGID_BYTES],
	    f4[STORE_FRAGID_BYTES];
	char p1[512], p2[512], p3[512], p4[512], tmp[600], tmp2[600];
	struct store_frag *sf;
	struct seen s = { 0 };
	struct stat st;
	uint64_t b, c;
	void *data;
	size_t len;

	mk_owner(o, 1);
	mk_owner(o2, 2);
	mk_fid(f1, 1);
	mk_fid(f2, 2);
	mk_fid(f3, 3);
	mk_fid(f4, 4);
	frag_path(p1, sizeof p1, o, f1);
	frag_path(p2, sizeof p2, o, f2);
	frag_path(p3, sizeof p3, o, f3);
	frag_path(p4, sizeof p4, o2, f4);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(put_h(sf, o, f1, "one", 3), 0);
	CHECK_EQ(put_h(sf, o, f2, "two!", 4), 0);
	store_frag_close(sf);

	/* As a crash leaves things: a half-written temporary, a file whose
	 * record never made it, a record whose file is gone. */
	snprintf(tmp, sizeof tmp, "%s.tmp.0123456789abcdef", p1);
	CHECK_EQ(put_file(tmp, "half", 4), 0);
	snprintf(tmp2, sizeof tmp2, "%s.tmp.ffff", p4);
	CHECK_EQ(put_file(tmp2, "partial", 7), 0);
	CHECK_EQ(put_file(p3, "orphan!", 7), 0);
	CHECK_EQ(unlink(p2), 0);

	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK(stat(tmp, &st) != 0 && errno == ENOENT);
	CHECK(stat(tmp2, &st) != 0 && errno == ENOENT);
	store_frag_usage(sf, o, &b, &c, NULL);
	CHECK_EQ(b, 3 + 7);
	CHECK_EQ(c, 2);
	store_frag_usage(sf, o2, &b, &c, NULL);
	CHECK_EQ(b, 0);
	CHECK_EQ(c, 0);
	store_frag_usage(sf, NULL, &b, &c, NULL);
	CHECK_EQ(b, 10);
	CHECK_EQ(c, 2);
	CHECK_EQ(store_frag_list(sf, o, count_cb, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK_EQ(store_frag_get(sf, o, f3, &data, &len), 0);
	CHECK_EQ(len, 7);
	CHECK_MEM(data, "orphan!", 7);
	free(data);
	CHECK_EQ(store_frag_get(sf, o, f2, &data, &len), -ENOENT);
	CHECK_EQ(store_frag_get(sf, o2, f4, &data, &len), -ENOENT);
	/* the reconciled record has the right hash: same bytes = no-op */
	struct stat st1, st2;
	CHECK_EQ(stat(p3, &st1), 0);
	CHECK_EQ(put_h(sf, o, f3, "orphan!", 7), 0);
	CHECK_EQ(stat(p3, &st2), 0);
	CHECK_EQ(st1.st_ino, st2.st_ino);
	CHECK_EQ(store_frag_del(sf, o, f3), 0);
	store_frag_close(sf);
	return 0;
}

/* A rename that landed before its commit: same size, other bytes. The
 * new inode makes open hash the file again. */
static int
test_reconcile_replaced(void)
{
	unsigned char o[CR_PK_BYTES], f[STORE_FRAGID_BYTES];
	char p[512], tmp[600];
	struct store_frag *sf;
	struct stat st1, st2;

	mk_owner(o, 5);
	mk_fid(f, 5);
	frag_path(p, sizeof p, o, f);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(put_h(sf, o, f, "old bytes", 9), 0);
	store_frag_close(sf);
	snprintf(tmp, sizeof tmp, "%s.x", p);
	CHECK_EQ(put_file(tmp, "new bytes", 9), 0);
	CHECK_EQ(rename(tmp, p), 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(stat(p, &st1), 0);
	CHECK_EQ(put_h(sf, o, f, "new bytes", 9), 0);
	CHECK_EQ(stat(p, &st2), 0);
	CHECK_EQ(st1.st_ino, st2.st_ino);	/* known: not rewritten */
	CHECK_EQ(put_h(sf, o, f, "old bytes", 9), 0);
	CHECK_EQ(stat(p, &st2), 0);
	CHECK(st1.st_ino != st2.st_ino);	/* different: rewritten */
	store_frag_close(sf);
	return 0;
}

static int
test_reopen(void)
{
	unsigned char o[CR_PK_BYTES], f[STORE_FRAGID_BYTES];
	struct store_frag *sf;
	uint64_t b, c, q;
	struct seen s = { 0 };
	char buf[1000];

	mk_owner(o, 4);
	memset(buf, 0x5a, sizeof buf);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1 << 20), 0);
	for (int i = 0; i < 20; i++) {
		mk_fid(f, i);
		CHECK_EQ(put_h(sf, o, f, buf, 10 + i), 0);
	}
	mk_fid(f, 3);
	CHECK_EQ(store_frag_del(sf, o, f), 0);
	store_frag_close(sf);
	CHECK_EQ(store_frag_open(&sf, DIR_, 1 << 20), 0);
	store_frag_usage(sf, o, &b, &c, &q);
	CHECK_EQ(c, 19);
	CHECK_EQ(b, 20 * 10 + 190 - 13);
	CHECK_EQ(q, 1 << 20);
	store_frag_usage(sf, NULL, &b, &c, NULL);
	CHECK_EQ(c, 19);
	CHECK_EQ(b, 377);
	CHECK_EQ(store_frag_list(sf, o, count_cb, &s), 0);
	CHECK_EQ(s.n, 19);
	CHECK_EQ(s.bytes, 377);
	CHECK(store_frag_avail(sf) <= (1 << 20) - 377);
	store_frag_close(sf);
	return 0;
}

static int
all_hex(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

static int
test_files_on_disk(void)
{
	unsigned char o[CR_PK_BYTES], f[STORE_FRAGID_BYTES], buf[5000];
	char path[512], oh[2 * CR_PK_BYTES + 1];
	struct store_frag *sf;
	struct stat st;
	struct dirent *de;
	FILE *fp;
	DIR *d;

	mk_owner(o, 6);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 13 + 1);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	for (int i = 0; i < 5; i++) {
		mk_fid(f, i);
		CHECK_EQ(put_h(sf, o, f, buf, 1000 * (i + 1)), 0);
		frag_path(path, sizeof path, o, f);
		CHECK_EQ(stat(path, &st), 0);
		CHECK(S_ISREG(st.st_mode));
		CHECK_EQ(st.st_size, 1000 * (i + 1));
		unsigned char got[5000];
		CHECK((fp = fopen(path, "rb")) != NULL);
		CHECK_EQ(fread(got, 1, sizeof got, fp), 1000 * (i + 1));
		fclose(fp);
		CHECK_MEM(got, buf, 1000 * (i + 1));
	}
	store_frag_close(sf);
	/* top: acct and owner hex only; below: hex only, no temporaries */
	CHECK((d = opendir(DIR_)) != NULL);
	int owners = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			CHECK(!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
			    !strcmp(de->d_name, ".lock"));
		else if (strcmp(de->d_name, "acct") != 0) {
			CHECK(all_hex(de->d_name));
			CHECK_EQ(strlen(de->d_name), 64);
			owners++;
		}
	}
	closedir(d);
	CHECK_EQ(owners, 1);
	hex_encode(oh, o, CR_PK_BYTES);
	snprintf(path, sizeof path, DIR_ "/%s", oh);
	CHECK((d = opendir(path)) != NULL);
	while ((de = readdir(d))) {
		char sub[1024];
		DIR *sd;
		struct dirent *fe;

		if (de->d_name[0] == '.')
			continue;
		CHECK(all_hex(de->d_name));
		CHECK_EQ(strlen(de->d_name), 2);
		snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
		CHECK((sd = opendir(sub)) != NULL);
		while ((fe = readdir(sd))) {
			if (fe->d_name[0] == '.')
				continue;
			CHECK(all_hex(fe->d_name));
			CHECK_EQ(strlen(fe->d_name), 66);
			CHECK(!strncmp(fe->d_name, de->d_name, 2));
		}
		closedir(sd);
	}
	closedir(d);
	return 0;
}

struct worker {
	struct store_frag *sf;
	int id;
	int rc;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char o[CR_PK_BYTES], f[STORE_FRAGID_BYTES], buf[300];

	mk_owner(o, w->id % 2);
	for (int i = 0; i < 40 && w->rc == 0; i++) {
		mk_fid(f, i);
		memset(buf, i, sizeof buf);
		/* owners 0 and 1 each get two writers of the same bytes */
		int rc = put_h(w->sf, o, f, buf, 100 + i);
		if (rc != 0)
			w->rc = rc;
		if (i % 5 == 4 && w->id >= 2) {
			rc = store_frag_del(w->sf, o, f);
			if (rc != 0 && rc != -ENOENT)
				w->rc = rc;
		}
	}
	return NULL;
}

static int
test_threads(void)
{
	struct store_frag *sf;
	struct worker w[4];
	pthread_t th[4];
	uint64_t b, c, total_b = 0, total_c = 0;

	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ sf, i, 0 };
		CHECK_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(w[i].rc, 0);
	}
	for (int k = 0; k < 2; k++) {
		unsigned char o[CR_PK_BYTES];
		struct seen s = { 0 };

		mk_owner(o, k);
		store_frag_usage(sf, o, &b, &c, NULL);
		CHECK_EQ(store_frag_list(sf, o, count_cb, &s), 0);
		CHECK_EQ(s.n, c);
		CHECK_EQ(s.bytes, b);
		CHECK(c >= 32 && c <= 40);
		total_b += b;
		total_c += c;
	}
	store_frag_usage(sf, NULL, &b, &c, NULL);
	CHECK_EQ(b, total_b);
	CHECK_EQ(c, total_c);
	store_frag_close(sf);
	/* and the files agree after a reopen */
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	store_frag_usage(sf, NULL, &b, &c, NULL);
	CHECK_EQ(b, total_b);
	CHECK_EQ(c, total_c);
	store_frag_close(sf);
	return 0;
}

struct racer {
	struct store_frag *sf;
	const unsigned char *owner;
	int id;
	int rc;
};

/* Reserves one fragment and puts it, or puts with no reservation, until
 * refused. */
static void *
racer_main(void *arg)
{
	struct racer *r = arg;
	unsigned char f[STORE_FRAGID_BYTES], buf[300];
	uint32_t got;

	memset(buf, r->id, sizeof buf);
	for (int i = 0; i < 64; i++) {
		mk_fid(f, 1000 * r->id + i);
		if (r->id % 2 == 0 &&
		    store_frag_reserve(r->sf, r->owner, sizeof buf, 1, &got,
		    NULL) != 0)
			break;
		if ((r->rc = put_h(r->sf, r->owner, f, buf, sizeof buf)) != 0)
			break;
	}
	return NULL;
}

/* Reservations granted while puts of the same owner are installed: the
 * grant must see the charge those puts made, else the owner ends past
 * its quota by what was granted twice. */
static int
test_reserve_races_puts(void)
{
	struct store_frag_policy pol = { 0 };
	struct store_frag_acct a;
	struct store_frag *sf;
	struct racer r[4];
	pthread_t th[4];
	uint64_t per;
	int over = 0;

	CHECK_EQ(store_frag_open(&sf, DIR_, 1), 0);
	per = store_frag_cost(sf, 300);
	store_frag_close(sf);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	pol.stranger_quota = 6 * per + per / 2;
	CHECK_EQ(store_frag_set_policy(sf, &pol), 0);
	for (int k = 0; k < 100; k++) {
		unsigned char o[CR_PK_BYTES];

		mk_owner(o, 200 + k);
		for (int i = 0; i < 4; i++) {
			r[i] = (struct racer){ sf, o, i, 0 };
			CHECK_EQ(pthread_create(&th[i], NULL, racer_main,
			    &r[i]), 0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			CHECK(r[i].rc == 0 || r[i].rc == -EDQUOT);
		}
		store_frag_account(sf, o, &a);
		if (a.charged > pol.stranger_quota)
			over++;
	}
	CHECK_EQ(over, 0);
	store_frag_close(sf);
	return 0;
}

/* The record hash is the owner's claim, never recomputed on put: it
 * alone decides whether a put is a re-put of what is stored. */
static int
test_owner_hash(void)
{
	unsigned char o[CR_PK_BYTES], f[STORE_FRAGID_BYTES];
	unsigned char h1[CR_HASH_BYTES], h2[CR_HASH_BYTES];
	char path[512];
	struct store_frag *sf;
	struct stat st1, st2;
	uint64_t b, c;
	void *data;
	size_t len;

	mk_owner(o, 9);
	mk_fid(f, 9);
	memset(h1, 0x11, sizeof h1);	/* not the BLAKE2b of anything here */
	memset(h2, 0x22, sizeof h2);
	frag_path(path, sizeof path, o, f);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(store_frag_put(sf, o, f, "abcdef", 6, NULL), -EINVAL);
	CHECK_EQ(stat(path, &st1), -1);
	CHECK_EQ(store_frag_put(sf, o, f, "abcdef", 6, h1), 0);
	CHECK_EQ(stat(path, &st1), 0);
	/* same bytes, same hash: a no-op */
	CHECK_EQ(store_frag_put(sf, o, f, "abcdef", 6, h1), 0);
	CHECK_EQ(stat(path, &st2), 0);
	CHECK_EQ(st1.st_ino, st2.st_ino);
	/* other bytes, same claimed hash and size: taken for a re-put (a
	 * lying owner only keeps its own old fragment) */
	CHECK_EQ(store_frag_put(sf, o, f, "ABCDEF", 6, h1), 0);
	CHECK_EQ(stat(path, &st2), 0);
	CHECK_EQ(st1.st_ino, st2.st_ino);
	CHECK_EQ(store_frag_get(sf, o, f, &data, &len), 0);
	CHECK_MEM(data, "abcdef", 6);
	free(data);
	/* same bytes, different hash: rewritten, the new hash recorded */
	CHECK_EQ(store_frag_put(sf, o, f, "abcdef", 6, h2), 0);
	CHECK_EQ(stat(path, &st2), 0);
	CHECK(st1.st_ino != st2.st_ino);
	CHECK_EQ(store_frag_put(sf, o, f, "xyzxyz", 6, h2), 0);
	CHECK_EQ(store_frag_get(sf, o, f, &data, &len), 0);
	CHECK_MEM(data, "abcdef", 6);
	free(data);
	CHECK_EQ(store_frag_put(sf, o, f, "xyzxyz", 6, h1), 0);
	CHECK_EQ(store_frag_get(sf, o, f, &data, &len), 0);
	CHECK_MEM(data, "xyzxyz", 6);
	free(data);
	store_frag_usage(sf, o, &b, &c, NULL);
	CHECK_EQ(b, 6);
	CHECK_EQ(c, 1);
	/* survives a reopen: the files match their records */
	store_frag_close(sf);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(stat(path, &st1), 0);
	CHECK_EQ(store_frag_put(sf, o, f, "xyzxyz", 6, h1), 0);
	CHECK_EQ(stat(path, &st2), 0);
	CHECK_EQ(st1.st_ino, st2.st_ino);
	store_frag_close(sf);
	return 0;
}

/* A supplier does not keep what it stores in its page cache (store/frag.c
 * write_tmp): once put returns, none of the file's pages are resident. */
static int
test_pages_not_kept(void)
{
	unsigned char o[CR_PK_BYTES], f[STORE_FRAGID_BYTES], vec[256];
	size_t len = 256 * 4096, resident = 0;
	struct store_frag *sf;
	struct statfs fs;
	char path[512];
	unsigned char *data = malloc(len);
	void *map;
	int fd;

	CHECK(data != NULL);
	CHECK_EQ(statfs(".", &fs), 0);
	if (fs.f_type == TMPFS_MAGIC) {	/* its pages cannot be dropped */
		free(data);
		return 77;
	}
	mk_owner(o, 3);
	mk_fid(f, 3);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 7 + i / 4096);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(put_h(sf, o, f, data, len), 0);
	frag_path(path, sizeof path, o, f);
	CHECK((fd = open(path, O_RDONLY)) >= 0);
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(map != MAP_FAILED);
	CHECK_EQ(mincore(map, len, vec), 0);
	for (size_t i = 0; i < sizeof vec; i++)
		resident += vec[i] & 1;
	CHECK_EQ(resident, 0);
	/* and the bytes are all there */
	CHECK_MEM(map, data, len);
	munmap(map, len);
	close(fd);
	store_frag_close(sf);
	free(data);
	return 0;
}

const struct test tests_frag[] = {
	{ "owner_hash", test_owner_hash },
	{ "round_trip", test_round_trip },
	{ "get_range", test_get_range },
	{ "owners_isolated", test_owners_isolated },
	{ "quota", test_quota },
	{ "charge_disk_cost", test_charge_disk_cost },
	{ "strangers", test_strangers },
	{ "deal", test_deal },
	{ "reserve_and_cap", test_reserve_and_cap },
	{ "reserve_races_puts", test_reserve_races_puts },
	{ "accounts_evict", test_accounts_evict },
	{ "same_twice", test_same_twice },
	{ "reconcile", test_reconcile },
	{ "reconcile_replaced", test_reconcile_replaced },
	{ "reopen", test_reopen },
	{ "deal_due_rule", test_deal_due_rule },
	{ "deal_evict", test_deal_evict },
	{ "files_on_disk", test_files_on_disk },
	{ "threads", test_threads },
	{ "pages_not_kept", test_pages_not_kept },
	{ NULL, NULL },
};
