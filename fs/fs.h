/* fs/fs.h - the FUSE low-level filesystem over store/ and net/. */
#ifndef PEERFS_FS_H
#define PEERFS_FS_H

#include <stdint.h>

#include "net/net.h"
#include "store/store.h"

struct fs_conf {
	struct store *store;
	struct store_cache *cache;
	struct net *net;
	unsigned char datakey[CR_KEY_BYTES];	/* cr_subkey(CR_SUBKEY_DATA) */
	uint32_t block_size;			/* bytes, default 4 MiB */
	int upload_threads;			/* 0 = 2 */
	int sync_timeout_ms;			/* fsync/sync give up: 0 = 120000 */
	int max_threads;			/* FUSE workers, 0 = 16 */
	/* Write-back delay: a block untouched this long is uploaded (full
	 * blocks, fsync, sync and umount: at once). 0 = 5 s, < 0 = at
	 * close. */
	int64_t write_back_ms;
	/* Keeping data alive (fs/maint.c). */
	/* Index versions whose data stays on suppliers: a block freed now is
	 * deleted only once keep_versions newer versions are published.
	 * 0: deleted at once (older versions may then miss data). */
	int keep_versions;
	int rebuild_jobs;			/* rebuild workers, 0 = 2 */
	uint64_t rebuild_rate;			/* bytes/s rebuilds may move,
						 * 0 = 50 MiB/s */
	int64_t audit_interval_ms;		/* one audit pass over every
						 * fragment, 0 = 7 days */
	int ec_n;				/* k + m of new blocks (shown
						 * for empty files), 0 = 6 */
	int64_t sweep_interval_ms;		/* orphan sweep (fs/sweep.c),
						 * 0 = 5 min, < 0 = never */
};

struct fs;

int  fs_new(struct fs **out, const struct fs_conf *conf);
/* Creates the FUSE session (max_write 1 MiB, multi-threaded) and mounts.
 * fuse_opts: comma-separated -o options, may be NULL. -errno on failure
 * with a log line saying why (e.g. missing mountpoint). */
int  fs_mount(struct fs *fs, const char *mountpoint, const char *fuse_opts);
/* Serves requests until unmounted or a signal (SIGTERM/SIGINT/SIGHUP);
 * then unmounts if needed and returns 0 or -errno. */
int  fs_loop(struct fs *fs);
/* Stops the upload workers (what is pending stays in the journal) and
 * frees. Call after fs_loop. */
void fs_free(struct fs *fs);

#endif
