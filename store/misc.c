/* store/misc.c - the named values of the misc table (store.h): every key
 * spelled once, with its type, and the upgrade of older homes' records.
 *
 * Values, integers big-endian:
 *   u64        8 bytes
 *   u64 list   n x 8 bytes (n >= 0)
 *   flag       "1" when set; no record when not
 *   bytes      the caller's format
 * The records live in LMDB through store/meta.c (kv_put and kv_del log the
 * index's changes as for any table). */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store/internal.h"
#include "util.h"

enum kind { U64, U64S, FLAG, BYTES };

/* Names are spelled out, so that grep finds them; the index.* ones start
 * with STORE__MISC_LOCAL (tests/unit/test_misc.c checks which are dumped). */
static const struct {
	const char *name;
	enum kind kind;
} keys[STORE_MISC_N] = {
	[STORE_MISC_NEXT_INO]		= { "next_ino", U64 },
	[STORE_MISC_BLOCK_SIZE]		= { "conf.block_bytes", U64 },
	[STORE_MISC_PINS]		= { "fs.pins", U64S },
	[STORE_MISC_EC]			= { "conf.ec", U64S },
	[STORE_MISC_INDEX_SEQ]		= { "index.seq", U64 },
	[STORE_MISC_INDEX_GEN]		= { "index.gen", U64 },
	[STORE_MISC_INDEX_SELF]		= { "index.self", U64 },
	[STORE_MISC_INDEX_PARTS]	= { "index.parts", BYTES },
	[STORE_MISC_INDEX_HIST]		= { "index.hist", BYTES },
	[STORE_MISC_INDEX_RESTORED]	= { "index.restored", U64S },
	[STORE_MISC_INDEX_OLDER]	= { "index.older", FLAG },
	[STORE_MISC_INDEX_TIME]		= { "index.time", U64 },
	[STORE_MISC_INDEX_NODE]		= { "index.node", BYTES },
	[STORE_MISC_INDEX_VERS]		= { "index.vers", U64 },
};

/* Homes before STORE_MISC_BLOCK_SIZE: the block size as a u32 in the
 * machine's byte order. Read by store__misc_upgrade() only. */
#define OLD_BLOCK_SIZE	"conf.block_size"

/* Values are at most a few pages: a u64 list longer than this is taken
 * for damage, not read. */
#define U64S_MAX	(1u << 20)

const char *
store_misc_name(enum store_misc_key k)
{
	assert(k >= 0 && k < STORE_MISC_N);
	return keys[k].name;
}

static const char *
name_of(enum store_misc_key k, enum kind kind)
{
	assert(k >= 0 && k < STORE_MISC_N && keys[k].kind == kind);
	return keys[k].name;
}

int
store_misc_u64_get(struct store_txn *t, enum store_misc_key k, uint64_t *v)
{
	MDB_val val;
	int rc;

	if ((rc = store__misc_ref(t, name_of(k, U64), &val)) < 0)
		return rc;
	if (val.mv_size != 8)
		return -EIO;
	*v = get_be64(val.mv_data);
	return 0;
}

int
store_misc_u64_put(struct store_txn *t, enum store_misc_key k, uint64_t v)
{
	unsigned char b[8];

	put_be64(b, v);
	return store_misc_put(t, name_of(k, U64), b, sizeof b);
}

int
store_misc_u64s_get(struct store_txn *t, enum store_misc_key k, uint64_t *v,
    size_t max)
{
	const unsigned char *p;
	MDB_val val;
	size_t n;
	int rc;

	if ((rc = store__misc_ref(t, name_of(k, U64S), &val)) < 0)
		return rc;
	if (val.mv_size % 8 != 0 || (n = val.mv_size / 8) > U64S_MAX)
		return -EIO;
	p = val.mv_data;
	for (size_t i = 0; i < n && i < max; i++)
		v[i] = get_be64(p + 8 * i);
	return (int)n;
}

int
store_misc_u64s_put(struct store_txn *t, enum store_misc_key k,
    const uint64_t *v, size_t n)
{
	unsigned char *b;
	int rc;

	if (n > U64S_MAX)
		return -E2BIG;
	if ((b = malloc(n * 8 + 1)) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		put_be64(b + 8 * i, v[i]);
	rc = store_misc_put(t, name_of(k, U64S), b, n * 8);
	free(b);
	return rc;
}

int
store_misc_flag_get(struct store_txn *t, enum store_misc_key k)
{
	MDB_val val;
	int rc;

	rc = store__misc_ref(t, name_of(k, FLAG), &val);
	return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

int
store_misc_flag_put(struct store_txn *t, enum store_misc_key k, int on)
{
	const char *name = name_of(k, FLAG);
	int rc;

	if (on)
		return store_misc_put(t, name, "1", 1);
	rc = store__misc_del(t, name);
	return rc == -ENOENT ? 0 : rc;
}

int
store_misc_bytes_get(struct store_txn *t, enum store_misc_key k, void **out,
    size_t *len)
{
	MDB_val val;
	void *p;
	int rc;

	if ((rc = store__misc_ref(t, name_of(k, BYTES), &val)) < 0)
		return rc;
	if ((p = malloc(val.mv_size + 1)) == NULL)
		return -ENOMEM;
	memcpy(p, val.mv_data, val.mv_size);
	*out = p;
	*len = val.mv_size;
	return 0;
}

int
store_misc_bytes_put(struct store_txn *t, enum store_misc_key k,
    const void *p, size_t len)
{
	return store_misc_put(t, name_of(k, BYTES), p, len);
}

/* The block size of a home before STORE_MISC_BLOCK_SIZE moves there, big-
 * endian, and the old record goes. A value of another length was never a
 * block size (the old reader ignored it too): left alone, with a warning.
 * When both records exist (an old index applied over a new home), the new
 * one stands. */
static int
upgrade_block_size(struct store_txn *t)
{
	const char *name = keys[STORE_MISC_BLOCK_SIZE].name;
	uint32_t old;
	uint64_t cur;
	MDB_val val;
	int rc;

	if ((rc = store__misc_ref(t, OLD_BLOCK_SIZE, &val)) < 0)
		return rc == -ENOENT ? 0 : rc;
	if (val.mv_size != sizeof old) {
		log_warn("store: misc %s has %zu bytes, not a block size: "
		    "left as it is", OLD_BLOCK_SIZE, val.mv_size);
		return 0;
	}
	memcpy(&old, val.mv_data, sizeof old);	/* native, as it was written */
	rc = store_misc_u64_get(t, STORE_MISC_BLOCK_SIZE, &cur);
	if (rc == -ENOENT &&
	    (rc = store_misc_u64_put(t, STORE_MISC_BLOCK_SIZE, old)) == 0)
		log_info("store: block size %" PRIu32 " moved to misc %s "
		    "(big-endian)", old, name);
	else if (rc == 0 && cur != old)
		log_warn("store: misc %s says %" PRIu32 ", %s says %" PRIu64
		    ": keeping %" PRIu64, OLD_BLOCK_SIZE, old, name, cur, cur);
	if (rc < 0)
		return rc;
	return store__misc_del(t, OLD_BLOCK_SIZE);
}

int
store__misc_upgrade(struct store_txn *t)
{
	return upgrade_block_size(t);
}
