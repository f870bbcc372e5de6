/* store/space.c - how full the LMDB map is. LMDB never shrinks its file
 * and needs fresh pages even to delete (copy-on-write), so a writer that
 * fills the map to the last page leaves no room for the unlink that
 * would free it: writers check this first and stop short (ENOSPC). */
#include <errno.h>
#include <lmdb.h>

#include "store/internal.h"

/* Pages on the freelist (reusable), summed over its IDLs as mdb_stat -f
 * does: each value is a page list whose first word is its length. */
static int
free_pages(MDB_env *env, uint64_t *out)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t n = 0;
	int rc;

	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
		return rc == MDB_MAP_FULL ? -ENOSPC : rc > 0 ? -rc : -EIO;
	if ((rc = mdb_cursor_open(txn, 0, &c)) != 0) {
		mdb_txn_abort(txn);
		return rc > 0 ? -rc : -EIO;
	}
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
		if (v.mv_size >= sizeof(size_t))
			n += *(const size_t *)v.mv_data;
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND)
		return rc > 0 ? -rc : -EIO;
	*out = n;
	return 0;
}

int
store_map_usage(struct store *st, uint64_t *used, uint64_t *size)
{
	MDB_envinfo info;
	MDB_stat stat;
	uint64_t pages, nfree = 0;
	int rc;

	if ((rc = mdb_env_info(st->env, &info)) != 0 ||
	    (rc = mdb_env_stat(st->env, &stat)) != 0)
		return rc > 0 ? -rc : -EIO;
	pages = (uint64_t)info.me_last_pgno + 1;
	*size = info.me_mapsize;
	/* The freelist only matters near the end of the map. */
	if (pages * stat.ms_psize > *size / 2 &&
	    (rc = free_pages(st->env, &nfree)) < 0)
		return rc;
	*used = (pages > nfree ? pages - nfree : 0) * stat.ms_psize;
	return 0;
}

/* Levels: new journal blocks (2) stop with a reserve of an eighth of the
 * map (at least 1 MiB) left, upload commits (1, block records) with half
 * of it, and the rest is for deletes (unlink, truncate), which LMDB also
 * needs pages for and which make room. */
int
store_map_room(struct store *st, int level)
{
	uint64_t used, size, reserve;

	if (store_map_usage(st, &used, &size) < 0)
		return 0;	/* cannot tell: LMDB will say */
	reserve = size / 8 > (1u << 20) ? size / 8 : 1u << 20;
	reserve = reserve * level / 2;
	return used + reserve <= size ? 0 : -ENOSPC;
}
