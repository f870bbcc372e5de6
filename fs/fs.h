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
