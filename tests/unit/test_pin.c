/* tests/unit/test_pin.c - the pinned-block store (store/pin.c):
 * <dir>/pinned/<id hex>, whole files or none. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "test.h"

struct seen {
	int n;
	unsigned char id[8][CR_ID_BYTES];
	uint64_t bytes[8];
};

static int
seen_cb(void *arg, const unsigned char *id, uint64_t bytes)
{
	struct seen *s = arg;

	if (s->n < 8) {
		memcpy(s->id[s->n], id, CR_ID_BYTES);
		s->bytes[s->n] = bytes;
	}
	s->n++;
	return 0;
}

static int
t_put_get_del(void)
{
	struct store *st;
	unsigned char a[CR_ID_BYTES], b[CR_ID_BYTES], buf[64];
	struct seen s = { 0 };

	CHECK_EQ(store_open(&st, "db", TEST_MAP_BYTES), 0);
	test_fill_id(a, 1);
	test_fill_id(b, 2);
	CHECK_EQ(store_pin_has(st, a), 0);
	CHECK_EQ(store_pin_get(st, a, buf, sizeof buf), -ENOENT);
	CHECK_EQ(store_pin_list(st, seen_cb, &s), 0);	/* no folder yet */
	CHECK_EQ(s.n, 0);
	CHECK_EQ(store_pin_put(st, a, "hello pinned", 12), 0);
	CHECK_EQ(store_pin_put(st, b, "0123456789abcdef0123", 20), 0);
	CHECK_EQ(store_pin_has(st, a), 1);
	CHECK_EQ(store_pin_get(st, a, buf, sizeof buf), 12);
	CHECK_MEM(buf, "hello pinned", 12);
	CHECK_EQ(store_pin_get(st, b, buf, 10), -EFBIG);
	/* Replacing keeps one whole file. */
	CHECK_EQ(store_pin_put(st, a, "again", 5), 0);
	CHECK_EQ(store_pin_get(st, a, buf, sizeof buf), 5);
	CHECK_MEM(buf, "again", 5);
	CHECK_EQ(store_pin_list(st, seen_cb, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK(s.bytes[0] + s.bytes[1] == 25);
	CHECK_EQ(store_pin_del(st, a), 0);
	CHECK_EQ(store_pin_del(st, a), -ENOENT);
	CHECK_EQ(store_pin_has(st, a), 0);
	CHECK_EQ(store_pin_has(st, b), 1);
	store_close(st);
	return 0;
}

static int
t_list_cleans_temporaries(void)
{
	struct store *st;
	unsigned char a[CR_ID_BYTES];
	struct seen s = { 0 };
	char hex[2 * CR_ID_BYTES + 1], path[256];
	int fd;

	CHECK_EQ(store_open(&st, "db", TEST_MAP_BYTES), 0);
	test_fill_id(a, 3);
	CHECK_EQ(store_pin_put(st, a, "x", 1), 0);
	/* A crash between write and rename leaves <id>.tmp; junk names are
	 * not blocks either. */
	for (int i = 0; i < CR_ID_BYTES; i++)
		sprintf(hex + 2 * i, "%02x", (unsigned)(i + 100));
	snprintf(path, sizeof path, "db/pinned/%s.tmp", hex);
	CHECK((fd = open(path, O_CREAT | O_WRONLY, 0600)) >= 0);
	close(fd);
	CHECK((fd = open("db/pinned/README", O_CREAT | O_WRONLY, 0600)) >= 0);
	close(fd);
	CHECK_EQ(store_pin_list(st, seen_cb, &s), 0);
	CHECK_EQ(s.n, 1);
	CHECK_MEM(s.id[0], a, CR_ID_BYTES);
	CHECK(access(path, F_OK) != 0);
	store_close(st);
	return 0;
}

const struct test tests_pin[] = {
	{ "put_get_del", t_put_get_del },
	{ "list_cleans_temporaries", t_list_cleans_temporaries },
	{ NULL, NULL },
};
