/* store/internal.h - private to store/meta.c, store/jrnl.c, store/cache.c.
 * (store/frag.c keeps its own state and does not include this.) */
#ifndef PEERFS_STORE_INTERNAL_H
#define PEERFS_STORE_INTERNAL_H

#include <lmdb.h>

#include "store/store.h"

enum {
	STORE__DB_INODES, STORE__DB_DIRENTS, STORE__DB_SYMLINKS,
	STORE__DB_XATTRS, STORE__DB_EXTENTS, STORE__DB_BLOCKS,
	STORE__DB_JRNL, STORE__DB_PEERS, STORE__DB_MISC,
	STORE__DB_N
};

struct store {
	MDB_env	*env;
	MDB_dbi	 dbi[STORE__DB_N];	/* opened once in store_open, then read-only */
	char	*dir;			/* as given to store_open */
	char	*jdir;			/* <dir>/journal: staging files */
};

struct store_txn {
	MDB_txn		*txn;
	struct store	*st;
};

/* LMDB return code -> 0 or -errno; logs the unexpected ones with `what`. */
int store__mdb_err(int rc, const char *what);

#endif
