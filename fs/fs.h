/* fs/fs.h - the FUSE face of peerfs: a low-level FUSE session whose file
 * operations are thin adaptors over owner/ (the engine) and whose
 * metadata operations are store/ transactions. */
#ifndef PEERFS_FS_H
#define PEERFS_FS_H

#include <stdint.h>

#include "owner/owner.h"
#include "store/store.h"

struct fs_conf {
	struct store *store;		/* the owner's metadata */
	struct owner *owner;		/* file contents and the rest */
	int max_threads;		/* FUSE worker threads */
};

struct fs;

/* Frees inodes a crash left without a name. */
int  fs_new(struct fs **out, const struct fs_conf *conf);
/* Creates the FUSE session (max_write 1 MiB, multi-threaded) and mounts.
 * fuse_opts: comma-separated -o options, may be NULL. -errno on failure
 * with a log line saying why (e.g. missing mountpoint). */
int  fs_mount(struct fs *fs, const char *mountpoint, const char *fuse_opts);
/* Serves requests until unmounted or a signal (SIGTERM/SIGINT/SIGHUP);
 * then unmounts if needed and returns 0 or -errno. */
int  fs_loop(struct fs *fs);
/* Frees. Call after fs_loop, before owner_close. */
void fs_free(struct fs *fs);

#endif
