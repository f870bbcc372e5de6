/* tests/unit/test_ratelog.c - net/ratelog.c: one log line per address,
 * reason and interval, however many events; and how addresses group. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "net/internal.h"
#include "test.h"

struct seen {
	int lines;
	char who[48];
	const char *what;
	uint64_t n;
};

static void
emit(void *arg, const char *who, const char *what, uint64_t n)
{
	struct seen *s = arg;

	s->lines++;
	snprintf(s->who, sizeof s->who, "%s", who);
	s->what = what;
	s->n = n;
}

static const char CAP[] = "per-address cap", KEY[] = "per-key cap";

/* A flood: the first event is logged, the other 1203 come as one line at
 * the report; then a quiet interval forgets the kind. */
static int
test_flood_one_line(void)
{
	struct net_ratelog rl;
	struct seen s = { 0 };
	int now = 0;

	net_ratelog_init(&rl);
	for (int i = 0; i < 1204; i++)
		now += net_ratelog_hit(&rl, "127.0.0.9", CAP);
	CHECK_EQ(now, 1);
	net_ratelog_report(&rl, emit, &s);
	CHECK_EQ(s.lines, 1);
	CHECK_EQ(s.n, 1203);
	CHECK(strcmp(s.who, "127.0.0.9") == 0);
	CHECK(s.what == CAP);
	/* Still flooding in the next interval: counted, not logged now. */
	CHECK_EQ(net_ratelog_hit(&rl, "127.0.0.9", CAP), 0);
	memset(&s, 0, sizeof s);
	net_ratelog_report(&rl, emit, &s);
	CHECK_EQ(s.lines, 1);
	CHECK_EQ(s.n, 1);
	/* A quiet interval: nothing reported, and the next one is news. */
	memset(&s, 0, sizeof s);
	net_ratelog_report(&rl, emit, &s);
	CHECK_EQ(s.lines, 0);
	net_ratelog_report(&rl, emit, &s);
	CHECK_EQ(net_ratelog_hit(&rl, "127.0.0.9", CAP), 1);
	return 0;
}

/* Addresses and reasons are counted apart. */
static int
test_kinds_apart(void)
{
	struct net_ratelog rl;
	struct seen s = { 0 };

	net_ratelog_init(&rl);
	CHECK_EQ(net_ratelog_hit(&rl, "127.0.0.9", CAP), 1);
	CHECK_EQ(net_ratelog_hit(&rl, "127.0.0.8", CAP), 1);
	CHECK_EQ(net_ratelog_hit(&rl, "127.0.0.9", KEY), 1);
	CHECK_EQ(net_ratelog_hit(&rl, "127.0.0.9", KEY), 0);
	net_ratelog_report(&rl, emit, &s);
	CHECK_EQ(s.lines, 1);
	CHECK(s.what == KEY);
	return 0;
}

/* More addresses than slots: the overflow is one "other addresses"
 * line, never a line per event. */
static int
test_table_full(void)
{
	struct net_ratelog rl;
	struct seen s = { 0 };
	char who[48];
	int now = 0;

	net_ratelog_init(&rl);
	for (int i = 0; i < 1000; i++) {
		snprintf(who, sizeof who, "10.0.%d.%d", i / 256, i % 256);
		now += net_ratelog_hit(&rl, who, CAP);
	}
	CHECK_EQ(now, NET_RATELOG_SLOTS);
	net_ratelog_report(&rl, emit, &s);
	CHECK_EQ(s.lines, 1);
	CHECK(strcmp(s.who, "other addresses") == 0);
	CHECK_EQ(s.n, 1000 - NET_RATELOG_SLOTS);
	return 0;
}

/* How peers are grouped for caps and log lines (net__addr_host). */
static int
test_addr_host(void)
{
	struct sockaddr_storage ss;
	char out[48];

	CHECK_EQ(net__parse_addr("127.0.0.9:7070", &ss), 0);
	net__addr_host((struct sockaddr *)&ss, out, sizeof out);
	CHECK(strcmp(out, "127.0.0.9") == 0);
	CHECK_EQ(net__parse_addr("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:7070",
	    &ss), 0);
	net__addr_host((struct sockaddr *)&ss, out, sizeof out);
	CHECK(strcmp(out, "2001:db8:1:2::/64") == 0);
	CHECK_EQ(net__parse_addr("[::ffff:10.1.2.3]:7070", &ss), 0);
	net__addr_host((struct sockaddr *)&ss, out, sizeof out);
	CHECK(strcmp(out, "10.1.2.3") == 0);
	return 0;
}

const struct test tests_ratelog[] = {
	{ "addr_host", test_addr_host },
	{ "flood_one_line", test_flood_one_line },
	{ "kinds_apart", test_kinds_apart },
	{ "table_full", test_table_full },
	{ NULL, NULL },
};
