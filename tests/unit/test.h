/* tests/unit/test.h - a tiny test harness: each tests/unit/test_<mod>.c
 * defines `const struct test tests_<mod>[]`, ended by { NULL, NULL }.
 * Every test runs in its own forked process inside a fresh temporary
 * directory (its working directory), so tests may create files freely.
 * A test returns 0 to pass, TEST_SKIP (77) when a needed facility is
 * missing (reported as a skip, never as a pass), anything else to fail. */
#ifndef PEERFS_TEST_H
#define PEERFS_TEST_H

#include <stdio.h>
#include <string.h>

struct test {
	const char *name;
	int (*fn)(void);
};

#define TEST_SKIP 77

/* The LMDB map of a test's store (store_open takes no default): the
 * mount's default, sparse. */
#define TEST_MAP_BYTES	((size_t)1 << 30)

/* A fresh random owner or supplier identity (sodium_malloc'd: free with
 * cr_identity_free); aborts when out of memory. tests/unit/testutil.c */
struct cr_identity;
struct cr_identity *test_identity(void);

/* A block id (CR_ID_BYTES bytes) that only seed decides; seeds below 256
 * give distinct ids. tests/unit/testutil.c */
void test_fill_id(unsigned char *id, unsigned seed);

/* Threads of this process named name (their comm, as top -H shows), -1
 * without /proc. tests/unit/testutil.c */
int test_threads_named(const char *name);
/* Waits up to 5 s for exactly n threads named name; returns the last
 * count. Needed after a join too: a joined thread can stay listed in
 * /proc/self/task for a moment (the kernel clears its tid before it
 * releases the task). */
int test_threads_become(const char *name, int n);

/* The arguments in a NULL-terminated argv. tests/unit/testutil.c */
int test_argc(char **argv);

/* cli_parse(cmd, argv) with what it writes to stderr caught into err (cap
 * bytes, NUL-terminated): the errors a user would see. The test runs in a
 * fresh directory; stderr.txt is left there. tests/unit/testutil.c */
struct cli_conf;
int test_parse_caught(int cmd, char **argv, struct cli_conf *c, char *err,
    size_t cap);

#define CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
	return 1; } } while (0)

#define CHECK_EQ(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
	if (a_ != b_) { fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", \
	    __FILE__, __LINE__, #a, a_, #b, b_); return 1; } } while (0)

#define CHECK_MEM(a, b, n) do { if (memcmp((a), (b), (n)) != 0) { \
	fprintf(stderr, "%s:%d: memory %s differs from %s\n", __FILE__, __LINE__, \
	    #a, #b); return 1; } } while (0)

#endif
