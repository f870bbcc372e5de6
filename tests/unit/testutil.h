/* tests/unit/testutil.h - a swarm of real supplier processes on loopback
 * and the owner's client against them, for the suites that need the
 * network (test_net.c, test_netheads.c). tests/unit/testutil.c.
 *
 * Every supplier is a forked child serving "sup<i>" (below the test's
 * directory) on a port of a range picked from the pid; test_swarm_stop()
 * kills and reaps every child, and each test calls it whatever its checks
 * said. Functions that check return 0, or 1 after printing the failed
 * CHECK (test.h), so a test body can `return` what they return. */
#ifndef PEERFS_TESTUTIL_H
#define PEERFS_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "crypto/crypto.h"
#include "log.h"
#include "net/net.h"
#include "tests/unit/test.h"

#define TEST_MAXSUP 10

struct test_swarm {
	/* Supplier i: */
	pid_t pid[TEST_MAXSUP];		/* 0: not running */
	int port[TEST_MAXSUP];
	char addr[TEST_MAXSUP][64];	/* "host:port" once started */
	/* Set before test_sup_start() (test_swarm_start() starts with
	 * what the caller set, so a test memsets first): */
	const char *host;		/* listen host; NULL = 127.0.0.1 */
	/* Supplier i's identity: NULL = a fresh one at its first start,
	 * kept across restarts (replace it for a new key). Freed by
	 * test_swarm_stop(). */
	struct cr_identity *sid[TEST_MAXSUP];
	int lie[TEST_MAXSUP];		/* net_supplier_conf.test_lie */
	int old[TEST_MAXSUP];		/* net_supplier_conf.test_old */
	uint64_t quota[TEST_MAXSUP];	/* bytes; 0 = none */
	enum log_level sup_log;		/* theirs; 0 = LOG_ERROR */
	int nports;			/* port attempts so far */
	/* The owner: */
	struct cr_identity *me;		/* made by test_swarm_client() if
					 * NULL */
	struct store *st;		/* "owner" */
	struct cr_ec *ec;		/* 4+2 */
	struct net *net;
	unsigned char datakey[CR_KEY_BYTES];	/* random */
	FILE *log;			/* closed by test_swarm_stop() */
};

/* Run in the forked child, instead of a real supplier, by
 * test_sup_start_child(): listens on host:port as identity id, calls
 * test_sup_ready(fd, "host:port") once it does, and never returns. */
typedef void (*test_sup_child_fn)(int fd, const char *host, int port,
    const struct cr_identity *id, void *arg);

/* Starts supplier i (see struct test_swarm) on port, or on a free one of
 * the range when port is 0. Returns 0 once it listens, -errno (a fixed
 * port that stays taken: -EADDRINUSE after some tries). */
int  test_sup_start(struct test_swarm *sw, int i, int port);
int  test_sup_start_child(struct test_swarm *sw, int i, int port,
    test_sup_child_fn child, void *arg);
/* Tells the parent, from the child, that it listens on bound. */
void test_sup_ready(int fd, const char *bound);
/* Sends sig to supplier i and reaps it (nothing when it is not running). */
void test_sup_kill(struct test_swarm *sw, int i, int sig);

/* The monitoring pace of a mount with the default options, for a
 * net_conf initializer: net_new takes every value from its caller. */
#define TEST_NET_PACE .ping_interval_ms = 30000, \
	.suspect_after_ms = 120000, .dead_after_ms = 1800000

/* The owner's side: sw->me (unless set), the store "owner", a 4+2 code, a
 * random datakey, and sw->net made from *nc (id, store and ec filled in)
 * with suppliers 0..nadd-1 added and all online within 10 s. */
int  test_swarm_client(struct test_swarm *sw, int nadd,
    const struct net_conf *nc);
/* Suppliers 0..nsup-1 started, then test_swarm_client(). */
int  test_swarm_start(struct test_swarm *sw, int nsup, int nadd,
    const struct net_conf *nc);
/* Frees the client, kills every supplier, frees the rest, zeroes *sw. */
void test_swarm_stop(struct test_swarm *sw);
/* A test's whole life: body gets a zeroed swarm (it starts what it
 * needs), then test_swarm_stop() runs whatever body returned, even when
 * it returned before starting anything. Returns what body returned. */
int  test_swarm_run(int (*body)(struct test_swarm *sw));

/* Entries of the directory at path, dot files left out; -1 when it
 * cannot be read. */
int  test_dir_count(const char *path);

#endif
