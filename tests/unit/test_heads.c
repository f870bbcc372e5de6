/* tests/unit/test_heads.c - store/heads.c: the supplier's signed heads. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "store/store.h"
#include "test.h"
#include "util.h"

#define DIR_ "sup"

/* Signs a head of id with seq, a blob naming the seq; returns the put's rc. */
static int
put(struct store_frag *sf, const struct cr_identity *id, uint64_t seq)
{
	unsigned char *p = NULL;
	char blob[64];
	size_t n = 0;
	int rc;

	snprintf(blob, sizeof blob, "index of seq %llu", (unsigned long long)seq);
	if (cr_head_sign(id, seq, 1000 + seq, blob, strlen(blob), &p, &n) != 0)
		return -999;
	rc = store_head_put(sf, id->pk, p, n);
	free(p);
	return rc;
}

/* A PFSHEAD2 head of id with seq naming index (a lease renewal when an
 * older head named the same index). */
static int
put2(struct store_frag *sf, const struct cr_identity *id, uint64_t seq,
    uint64_t index)
{
	unsigned char *p = NULL;
	size_t n = 0;
	int rc;

	if (cr_head2_sign(id, seq, 1000 + seq, index, "lease", 5, &p, &n) != 0)
		return -999;
	rc = store_head_put(sf, id->pk, p, n);
	free(p);
	return rc;
}

struct seen {
	int n;
	uint64_t seq[64];
	int bad;	/* a head given that does not verify or disagrees */
	const unsigned char *owner;
};

static int
seen_cb(void *arg, uint64_t seq, const void *head, size_t len)
{
	struct seen *s = arg;
	struct cr_head h;

	if (cr_head_verify(head, len, &h) != 0 || h.seq != seq ||
	    memcmp(h.owner, s->owner, CR_PK_BYTES) != 0)
		s->bad++;
	if (s->n < 64)
		s->seq[s->n] = seq;
	s->n++;
	return 0;
}

static int
list(struct store_frag *sf, const unsigned char *owner, int max,
    struct seen *s)
{
	memset(s, 0, sizeof *s);
	s->owner = owner;
	return store_head_list(sf, owner, max, seen_cb, s);
}

static void
head_file(char *out, size_t cap, const unsigned char *owner, uint64_t seq)
{
	char oh[2 * CR_PK_BYTES + 1];

	hex_encode(oh, owner, CR_PK_BYTES);
	snprintf(out, cap, DIR_ "/%s/heads/%020llu", oh, (unsigned long long)seq);
}

/* Entries of the owner's heads directory other than . .. and .lock. */
static int
count_files(const unsigned char *owner, int *temps)
{
	char oh[2 * CR_PK_BYTES + 1], path[256];
	struct dirent *de;
	int n = 0;
	DIR *d;

	hex_encode(oh, owner, CR_PK_BYTES);
	snprintf(path, sizeof path, DIR_ "/%s/heads", oh);
	if (!(d = opendir(path)))
		return -1;
	if (temps)
		*temps = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, ".lock"))
			continue;
		if (temps && strstr(de->d_name, ".tmp."))
			(*temps)++;
		n++;
	}
	closedir(d);
	return n;
}

static int
copy_file(const char *from, const char *to)
{
	char buf[4096];
	int in = open(from, O_RDONLY), out;
	ssize_t r;

	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0) {
		close(in);
		return -1;
	}
	while ((r = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)r) != r)
			r = -1;
	close(in);
	close(out);
	return r < 0 ? -1 : 0;
}

static int
test_put_list(void)
{
	struct cr_identity *a = test_identity();
	struct store_frag *sf;
	struct seen s;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	/* Nothing held yet: an empty list, not an error. */
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, 0);
	CHECK_EQ(put(sf, a, 1), 0);
	CHECK_EQ(put(sf, a, 5), 0);
	CHECK_EQ(put(sf, a, 6), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, 3);
	CHECK_EQ(s.bad, 0);
	CHECK(s.seq[0] == 6 && s.seq[1] == 5 && s.seq[2] == 1);
	/* max limits, newest first. */
	CHECK_EQ(list(sf, a->pk, 1, &s), 0);
	CHECK_EQ(s.n, 1);
	CHECK(s.seq[0] == 6);
	/* Heads do not count as fragments. */
	uint64_t bytes = 1, frags = 1;
	store_frag_usage(sf, NULL, &bytes, &frags, NULL);
	CHECK(bytes == 0 && frags == 0);
	store_frag_close(sf);

	/* Survives a reopen of the store (frag's sweep leaves them alone). */
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, 3);
	CHECK_EQ(put(sf, a, 6), -ESTALE);
	store_frag_close(sf);
	cr_identity_free(a);
	return 0;
}

/* One locator per owner holding heads: refused before its first head,
 * replaced by the next, listed once per owner. */
static int
test_locator(void)
{
	struct cr_identity *a = test_identity(), *b = test_identity();
	unsigned char l1[STORE_LOCATOR_BYTES], l2[STORE_LOCATOR_BYTES];
	unsigned char out[4][STORE_LOCATOR_BYTES];
	struct store_frag *sf;

	CHECK(cr_init() == 0);
	memset(l1, 1, sizeof l1);
	memset(l2, 2, sizeof l2);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(store_locator_put(sf, a->pk, l1), -EACCES);
	CHECK_EQ(store_locator_list(sf, out, 4), 0);
	CHECK_EQ(put(sf, a, 1), 0);
	CHECK_EQ(store_locator_put(sf, a->pk, l1), 1);
	CHECK_EQ(store_locator_put(sf, a->pk, l1), 0);	/* the same */
	CHECK_EQ(store_locator_put(sf, a->pk, l2), 1);	/* replaced */
	CHECK_EQ(store_locator_list(sf, out, 4), 1);
	CHECK(memcmp(out[0], l2, sizeof l2) == 0);
	/* Another owner: refused until it holds a head too. */
	CHECK_EQ(store_locator_put(sf, b->pk, l1), -EACCES);
	CHECK_EQ(put(sf, b, 3), 0);
	CHECK_EQ(store_locator_put(sf, b->pk, l1), 1);
	CHECK_EQ(store_locator_list(sf, out, 4), 2);
	CHECK_EQ(store_locator_list(sf, out, 1), 1);
	/* Not a head: the listing ignores it. */
	struct seen s;
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, 1);
	store_frag_close(sf);
	cr_identity_free(a);
	cr_identity_free(b);
	return 0;
}

static int
stop_cb(void *arg, uint64_t seq, const void *head, size_t len)
{
	(*(int *)arg)++;
	return 9;
}

static int
test_list_stops(void)
{
	struct cr_identity *a = test_identity();
	struct store_frag *sf;
	int calls = 0;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	for (uint64_t q = 1; q <= 3; q++)
		CHECK_EQ(put(sf, a, q), 0);
	CHECK_EQ(store_head_list(sf, a->pk, 0, stop_cb, &calls), 9);
	CHECK_EQ(calls, 1);
	store_frag_close(sf);
	cr_identity_free(a);
	return 0;
}

static int
test_stale_refused(void)
{
	struct cr_identity *a = test_identity();
	struct store_frag *sf;
	struct seen s;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(put(sf, a, 10), 0);
	CHECK_EQ(put(sf, a, 9), -ESTALE);
	CHECK_EQ(put(sf, a, 1), -ESTALE);
	CHECK_EQ(put(sf, a, 0), -ESTALE);
	CHECK_EQ(put(sf, a, 10), -ESTALE);	/* equal is not newer */
	CHECK_EQ(put(sf, a, 11), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK(s.seq[0] == 11 && s.seq[1] == 10);
	CHECK_EQ(count_files(a->pk, NULL), 2);
	store_frag_close(sf);
	cr_identity_free(a);
	return 0;
}

/* The same seq with other bytes (another time, another blob): refused. */
static int
test_equal_seq_refused(void)
{
	struct cr_identity *a = test_identity();
	unsigned char *p = NULL, *q = NULL;
	struct store_frag *sf;
	struct seen s;
	size_t n = 0, m = 0;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(cr_head_sign(a, 3, 1, "first", 5, &p, &n), 0);
	CHECK_EQ(cr_head_sign(a, 3, 2, "second!", 7, &q, &m), 0);
	CHECK_EQ(store_head_put(sf, a->pk, p, n), 0);
	CHECK_EQ(store_head_put(sf, a->pk, q, m), -ESTALE);
	CHECK_EQ(store_head_put(sf, a->pk, p, n), -ESTALE);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, 1);
	/* What is held is the first one, byte for byte. */
	char path[256];
	unsigned char buf[256];
	head_file(path, sizeof path, a->pk, 3);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(read(fd, buf, sizeof buf), (ssize_t)n);
	close(fd);
	CHECK_MEM(buf, p, n);
	free(p);
	free(q);
	store_frag_close(sf);
	cr_identity_free(a);
	return 0;
}

static int
test_forged_refused(void)
{
	struct cr_identity *a = test_identity(), *m = test_identity();
	unsigned char *p = NULL;
	struct store_frag *sf;
	struct seen s;
	size_t n = 0;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(put(sf, a, 2), 0);
	/* m signs a head claiming to be a's, with a higher seq. */
	CHECK_EQ(cr_head_sign(m, 100, 1, "evil", 4, &p, &n), 0);
	memcpy(p + 8, a->pk, CR_PK_BYTES);
	crypto_sign_detached(p + n - CR_SIG_BYTES, NULL, p, n - CR_SIG_BYTES,
	    m->sk);
	CHECK_EQ(store_head_put(sf, a->pk, p, n), -EBADMSG);
	free(p);
	/* a's own head, one bit changed. */
	CHECK_EQ(cr_head_sign(a, 3, 1, "good", 4, &p, &n), 0);
	p[60] ^= 1;
	CHECK_EQ(store_head_put(sf, a->pk, p, n), -EBADMSG);
	p[60] ^= 1;
	/* Malformed. */
	CHECK_EQ(store_head_put(sf, a->pk, p, n - 1), -EPROTO);
	CHECK_EQ(store_head_put(sf, a->pk, p, 10), -EPROTO);
	free(p);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, 1);
	CHECK(s.seq[0] == 2);
	CHECK_EQ(count_files(a->pk, NULL), 1);
	store_frag_close(sf);
	cr_identity_free(a);
	cr_identity_free(m);
	return 0;
}

/* A valid head of b offered as a's: refused, and stored nowhere. */
static int
test_wrong_owner_refused(void)
{
	struct cr_identity *a = test_identity(), *b = test_identity();
	unsigned char *p = NULL;
	struct store_frag *sf;
	struct seen s;
	size_t n = 0;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(cr_head_sign(b, 5, 1, "b's", 3, &p, &n), 0);
	CHECK_EQ(store_head_put(sf, a->pk, p, n), -EPERM);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, 0);
	CHECK_EQ(list(sf, b->pk, 0, &s), 0);
	CHECK_EQ(s.n, 0);
	CHECK_EQ(store_head_put(sf, b->pk, p, n), 0);
	free(p);
	store_frag_close(sf);
	cr_identity_free(a);
	cr_identity_free(b);
	return 0;
}

static int
test_keeps_newest(void)
{
	struct cr_identity *a = test_identity();
	struct store_frag *sf;
	struct seen s;
	int temps;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	for (uint64_t q = 1; q <= STORE_HEADS_KEEP + 9; q++)
		CHECK_EQ(put(sf, a, q * 3), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, STORE_HEADS_KEEP);
	CHECK_EQ(s.bad, 0);
	for (int i = 0; i < STORE_HEADS_KEEP; i++)
		CHECK(s.seq[i] == (uint64_t)(STORE_HEADS_KEEP + 9 - i) * 3);
	CHECK_EQ(count_files(a->pk, &temps), STORE_HEADS_KEEP);
	CHECK_EQ(temps, 0);
	/* A pruned seq is still older than what is held. */
	CHECK_EQ(put(sf, a, 3), -ESTALE);
	store_frag_close(sf);
	cr_identity_free(a);
	return 0;
}

/* Renewals of one index replace each other: the version that published
 * it stays, whatever their number. */
static int
test_renewals_keep_versions(void)
{
	struct cr_identity *a = test_identity();
	struct store_frag *sf;
	struct seen s;
	struct cr_head h;
	unsigned char *p = NULL;
	size_t n = 0;
	uint64_t seq = 1;
	int temps;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	/* Index 7001 .. 7004, each published then renewed 40 times. */
	for (uint64_t ix = 7001; ix <= 7004; ix++)
		for (int r = 0; r <= 40; r++)
			CHECK_EQ(put2(sf, a, seq++, ix), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.bad, 0);
	CHECK_EQ(s.n, 8);		/* first and newest of each */
	CHECK_EQ(count_files(a->pk, &temps), 8);
	for (int i = 0; i < 4; i++) {
		uint64_t first = 1 + (uint64_t)(3 - i) * 41;

		CHECK(s.seq[2 * i] == first + 40);
		CHECK(s.seq[2 * i + 1] == first);
	}
	/* Rollback protection intact: a replaced renewal's seq, an older
	 * version's and the newest's are refused; nothing changes. */
	CHECK_EQ(put2(sf, a, seq - 2, 7004), -ESTALE);
	CHECK_EQ(put2(sf, a, 2, 7001), -ESTALE);
	CHECK_EQ(put(sf, a, seq - 1), -ESTALE);
	CHECK_EQ(put2(sf, a, seq - 1, 7004), -ESTALE);
	CHECK_EQ(count_files(a->pk, &temps), 8);
	/* The newest is served first and names its index. */
	CHECK_EQ(list(sf, a->pk, 1, &s), 0);
	CHECK(s.n == 1 && s.seq[0] == seq - 1);
	/* Distinct indexes: the newest STORE_HEADS_KEEP of them stay (PFSHEAD1
	 * heads each name their own). */
	for (int i = 0; i < STORE_HEADS_KEEP; i++)
		CHECK_EQ(put(sf, a, seq++), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, STORE_HEADS_KEEP);
	CHECK(s.seq[STORE_HEADS_KEEP - 1] == seq - STORE_HEADS_KEEP);
	CHECK_EQ(put2(sf, a, 2, 7001), -ESTALE);
	CHECK_EQ(cr_head2_sign(a, 9, 1, 77, "x", 1, &p, &n), 0);
	CHECK_EQ(cr_head_verify(p, n, &h), 0);
	CHECK(h.seq == 9 && h.index == 77 && h.blob_len == 1 &&
	    memcmp(h.blob, "x", 1) == 0);
	p[8 + 32 + 16] ^= 1;		/* the index is signed */
	CHECK_EQ(cr_head_verify(p, n, &h), -EBADMSG);
	free(p);
	store_frag_close(sf);
	cr_identity_free(a);
	return 0;
}

/* A renewal among older distinct versions: the window counts indexes,
 * not heads, and the renewal replaces the previous renewal only. */
static int
test_renewal_window(void)
{
	struct cr_identity *a = test_identity();
	struct store_frag *sf;
	struct seen s;
	uint64_t seq = 1;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	for (uint64_t ix = 1; ix <= STORE_HEADS_KEEP; ix++)
		CHECK_EQ(put2(sf, a, seq++, 500 + ix), 0);
	for (int r = 0; r < 5; r++)
		CHECK_EQ(put2(sf, a, seq++, 500 + STORE_HEADS_KEEP), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	/* 16 versions, plus the newest renewal of the last one. */
	CHECK_EQ(s.n, STORE_HEADS_KEEP + 1);
	CHECK(s.seq[0] == seq - 1);
	CHECK(s.seq[1] == STORE_HEADS_KEEP);
	CHECK(s.seq[STORE_HEADS_KEEP] == 1);
	/* A 17th index pushes the oldest out. */
	CHECK_EQ(put2(sf, a, seq++, 999), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, STORE_HEADS_KEEP + 1);
	CHECK(s.seq[STORE_HEADS_KEEP] == 2);
	store_frag_close(sf);
	cr_identity_free(a);
	return 0;
}

static int
test_damaged_skipped(void)
{
	struct cr_identity *a = test_identity(), *b = test_identity();
	char path[256], path2[256];
	struct store_frag *sf;
	struct seen s;
	int fd;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	for (uint64_t q = 1; q <= 4; q++)
		CHECK_EQ(put(sf, a, q), 0);

	/* Bit rot in seq 3, seq 2 truncated. */
	head_file(path, sizeof path, a->pk, 3);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	unsigned char c;
	CHECK_EQ(pread(fd, &c, 1, 70), 1);
	c ^= 0x10;
	CHECK_EQ(pwrite(fd, &c, 1, 70), 1);
	close(fd);
	head_file(path, sizeof path, a->pk, 2);
	CHECK_EQ(truncate(path, 50), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK_EQ(s.bad, 0);
	CHECK(s.seq[0] == 4 && s.seq[1] == 1);
	/* max counts heads given, not files looked at. */
	CHECK_EQ(list(sf, a->pk, 2, &s), 0);
	CHECK_EQ(s.n, 2);

	/* A planted copy of seq 1 named 99 (a rollback attempt on disk):
	 * neither served nor able to block newer puts. A file of another
	 * owner's heads copied in: the same. A directory: ignored. */
	head_file(path, sizeof path, a->pk, 1);
	head_file(path2, sizeof path2, a->pk, 99);
	CHECK_EQ(copy_file(path, path2), 0);
	CHECK_EQ(put(sf, b, 77), 0);
	head_file(path, sizeof path, b->pk, 77);
	head_file(path2, sizeof path2, a->pk, 77);
	CHECK_EQ(copy_file(path, path2), 0);
	head_file(path2, sizeof path2, a->pk, 88);
	CHECK_EQ(mkdir(path2, 0700), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK(s.seq[0] == 4 && s.seq[1] == 1);

	/* A leftover temporary, as after a crash. */
	char oh[2 * CR_PK_BYTES + 1];
	hex_encode(oh, a->pk, CR_PK_BYTES);
	snprintf(path, sizeof path, DIR_ "/%s/heads/.tmp.00000000000000000005.00",
	    oh);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	close(fd);

	CHECK_EQ(put(sf, a, 5), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, 3);
	CHECK(s.seq[0] == 5 && s.seq[1] == 4 && s.seq[2] == 1);
	/* The put dropped the invalid files and the temporary. */
	int temps;
	CHECK_EQ(count_files(a->pk, &temps), 3 + 1);	/* + the directory */
	CHECK_EQ(temps, 0);
	store_frag_close(sf);
	cr_identity_free(a);
	cr_identity_free(b);
	return 0;
}

static int
test_owners_isolated(void)
{
	struct cr_identity *a = test_identity(), *b = test_identity();
	struct store_frag *sf;
	struct seen s;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	CHECK_EQ(put(sf, a, 50), 0);
	CHECK_EQ(put(sf, b, 1), 0);	/* a's seq does not hold b back */
	CHECK_EQ(put(sf, b, 2), 0);
	for (uint64_t q = 51; q < 51 + STORE_HEADS_KEEP; q++)
		CHECK_EQ(put(sf, a, q), 0);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.n, STORE_HEADS_KEEP);
	CHECK_EQ(s.bad, 0);
	CHECK(s.seq[0] == 50 + STORE_HEADS_KEEP);
	CHECK_EQ(list(sf, b->pk, 0, &s), 0);	/* a's pruning spared b */
	CHECK_EQ(s.n, 2);
	CHECK_EQ(s.bad, 0);
	CHECK(s.seq[0] == 2 && s.seq[1] == 1);
	store_frag_close(sf);
	cr_identity_free(a);
	cr_identity_free(b);
	return 0;
}

struct racer {
	struct store_frag *sf;
	const struct cr_identity *id;
	int base, ok, stale, other;
};

static void *
race(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < 20; i++) {
		int rc = put(r->sf, r->id, (uint64_t)(i * 4 + r->base));
		if (rc == 0)
			r->ok++;
		else if (rc == -ESTALE)
			r->stale++;
		else
			r->other++;
	}
	return NULL;
}

/* Parallel puts of one owner: each either lands or is stale, the seqs
 * held only grow, and nothing is left half-written. */
static int
test_parallel_puts(void)
{
	struct cr_identity *a = test_identity();
	struct racer r[4];
	pthread_t t[4];
	struct store_frag *sf;
	struct seen s;
	int temps, ok = 0;

	CHECK(cr_init() == 0);
	CHECK_EQ(store_frag_open(&sf, DIR_, 0), 0);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){ sf, a, i + 1, 0, 0, 0 };
		CHECK_EQ(pthread_create(&t[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(r[i].other, 0);
		CHECK_EQ(r[i].ok + r[i].stale, 20);
		ok += r[i].ok;
	}
	CHECK(ok >= 1);
	CHECK_EQ(list(sf, a->pk, 0, &s), 0);
	CHECK_EQ(s.bad, 0);
	CHECK_EQ(s.n, ok < STORE_HEADS_KEEP ? ok : STORE_HEADS_KEEP);
	CHECK(s.seq[0] == 80);	/* the largest seq is never stale */
	for (int i = 1; i < s.n; i++)
		CHECK(s.seq[i] < s.seq[i - 1]);
	CHECK_EQ(count_files(a->pk, &temps), s.n);
	CHECK_EQ(temps, 0);
	store_frag_close(sf);
	cr_identity_free(a);
	return 0;
}

/* A head of id with seq and a blob of len bytes. */
static int
put_big(struct store_frag *sf, const struct cr_identity *id, uint64_t seq,
    size_t len)
{
	unsigned char *p = NULL, *blob = calloc(1, len);
	size_t n = 0;
	int rc;

	if (!blob || cr_head_sign(id, seq, 1000 + seq, blob, len, &p, &n) != 0) {
		free(blob);
		return -999;
	}
	rc = store_head_put(sf, id->pk, p, n);
	free(p);
	free(blob);
	return rc;
}

/* Heads are charged like fragments: 16 heads of 1 MiB per identity, with
 * identities free, were outside any quota. Many identities are held to
 * their own account and to the strangers' share. */
static int
test_heads_charged(void)
{
	struct cr_identity *id[6];
	const unsigned char friend[CR_PK_BYTES] = { 1, 2, 3 };
	struct store_frag_policy pol = { 0 };
	struct store_frag_acct a;
	struct store_frag *sf;
	size_t len = 100 << 10;
	uint64_t ch;
	int stored = 0;

	for (int i = 0; i < 6; i++)
		id[i] = test_identity();
	CHECK_EQ(store_frag_open(&sf, DIR_, 1), 0);
	ch = store_frag_cost(sf, CR_HEAD_FIXED + len);
	store_frag_close(sf);
	/* Each stranger may hold 3 such heads, all of them together 8 (half
	 * the total: there is a friend to keep room for). */
	CHECK_EQ(store_frag_open(&sf, DIR_, 16 * ch), 0);
	pol.stranger_quota = 3 * ch;
	pol.friends = &friend;
	pol.nfriends = 1;
	CHECK_EQ(store_frag_set_policy(sf, &pol), 0);
	for (int i = 0; i < 6; i++) {
		int rc = 0;
		for (uint64_t seq = 1; seq <= 16 && rc == 0; seq++)
			if ((rc = put_big(sf, id[i], seq, len)) == 0)
				stored++;
		CHECK(rc == -EDQUOT || rc == -ENOSPC);
		store_frag_account(sf, id[i]->pk, &a);
		CHECK(a.charged <= 3 * ch);
		CHECK_EQ(a.charged, a.heads * ch);
	}
	CHECK_EQ(stored, 8);
	store_frag_account(sf, id[0]->pk, &a);
	CHECK_EQ(a.heads, 3);
	CHECK_EQ(put_big(sf, id[0], 100, len), -EDQUOT);
	store_frag_close(sf);
	/* counted again from the files at open */
	CHECK_EQ(store_frag_open(&sf, DIR_, 16 * ch), 0);
	store_frag_account(sf, id[1]->pk, &a);
	CHECK_EQ(a.heads, 3);
	CHECK_EQ(a.charged, 3 * ch);
	/* friends only: a new identity cannot start an account with heads */
	pol.friends_only = 1;
	CHECK_EQ(store_frag_set_policy(sf, &pol), 0);
	CHECK_EQ(put(sf, id[5], 1), -EACCES);
	store_frag_close(sf);
	for (int i = 0; i < 6; i++)
		cr_identity_free(id[i]);
	return 0;
}

/* Writes a signed head of id with seq and a blob of len bytes straight
 * into the owner's heads directory, past the store and its accounts. */
static int
plant_big(const struct cr_identity *id, uint64_t seq, size_t len)
{
	unsigned char *p = NULL, *blob = calloc(1, len);
	char path[512];
	size_t n = 0;
	FILE *f;
	int rc = -1;

	if (!blob || cr_head_sign(id, seq, 1000 + seq, blob, len, &p, &n) != 0)
		goto out;
	head_file(path, sizeof path, id->pk, seq);
	if (!(f = fopen(path, "wb")))
		goto out;
	rc = fwrite(p, 1, n, f) == n ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
out:
	free(p);
	free(blob);
	return rc;
}

/* Heads on disk beyond what is charged (planted, or left by a charge
 * that failed) must not come into the charge unchecked when the next
 * head's put corrects it: the charge stays within the quota. */
static int
test_heads_charge_within_quota(void)
{
	struct cr_identity *id = test_identity();
	struct store_frag_policy pol = { 0 };
	struct store_frag_acct a;
	struct store_frag *sf;
	size_t len = 100 << 10;
	uint64_t ch;

	CHECK_EQ(store_frag_open(&sf, DIR_, 1), 0);
	ch = store_frag_cost(sf, CR_HEAD_FIXED + len);
	store_frag_close(sf);
	CHECK_EQ(store_frag_open(&sf, DIR_, 64 * ch), 0);
	pol.stranger_quota = 3 * ch;
	CHECK_EQ(store_frag_set_policy(sf, &pol), 0);
	CHECK_EQ(put_big(sf, id, 1, len), 0);
	store_frag_account(sf, id->pk, &a);
	CHECK_EQ(a.charged, ch);
	/* two more on disk, not charged: 3 heads' worth there, 1 charged */
	CHECK_EQ(plant_big(id, 2, len), 0);
	CHECK_EQ(plant_big(id, 3, len), 0);
	/* The fourth would make 4 heads' worth: more than the quota. */
	CHECK_EQ(put_big(sf, id, 4, len), -EDQUOT);
	store_frag_account(sf, id->pk, &a);
	CHECK(a.charged <= 3 * ch);
	store_frag_close(sf);
	CHECK_EQ(store_frag_open(&sf, DIR_, 64 * ch), 0);
	store_frag_account(sf, id->pk, &a);
	CHECK_EQ(a.charged, 3 * ch);	/* counted from the files at open */
	CHECK_EQ(store_frag_set_policy(sf, &pol), 0);
	CHECK_EQ(put_big(sf, id, 5, len), -EDQUOT);
	store_frag_account(sf, id->pk, &a);
	CHECK_EQ(a.charged, 3 * ch);
	store_frag_close(sf);
	cr_identity_free(id);
	return 0;
}

const struct test tests_heads[] = {
	{ "heads_charged", test_heads_charged },
	{ "heads_charge_within_quota", test_heads_charge_within_quota },
	{ "put_list", test_put_list },
	{ "locator", test_locator },
	{ "list_stops", test_list_stops },
	{ "stale_refused", test_stale_refused },
	{ "equal_seq_refused", test_equal_seq_refused },
	{ "forged_refused", test_forged_refused },
	{ "wrong_owner_refused", test_wrong_owner_refused },
	{ "keeps_newest", test_keeps_newest },
	{ "renewals_keep_versions", test_renewals_keep_versions },
	{ "renewal_window", test_renewal_window },
	{ "damaged_skipped", test_damaged_skipped },
	{ "owners_isolated", test_owners_isolated },
	{ "parallel_puts", test_parallel_puts },
	{ NULL, NULL },
};
