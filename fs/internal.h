/* fs/internal.h - private to fs/. fs/ops.c owns the metadata operations
 * (lookup, getattr, setattr, mkdir, mknod, create, unlink, rmdir, rename,
 * link, symlink, readlink, opendir, readdir(plus), statfs, xattrs, access,
 * forget); fs/data.c owns file contents (open, read, write, flush, fsync,
 * release, truncate, the journal and the upload workers); fs/ctl.c answers
 * the control attributes on the root (user.peerfs.*); fs/fs.c wires them. */
#ifndef PEERFS_FS_INTERNAL_H
#define PEERFS_FS_INTERNAL_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/fs.h"

#define FS_CTL_PREFIX "user.peerfs."

struct fs__meta;	/* fs/ops.c */
struct fs__data;	/* fs/data.c */
struct fs__maint;	/* fs/maint.c */
struct fs__index;	/* fs/index.c */
struct fs__sweep;	/* fs/sweep.c */
struct fs__pin;		/* fs/pin.c */

struct fs {
	struct fs_conf conf;
	struct fuse_session *se;
	char *mountpoint;
	struct fs__meta *meta;
	struct fs__data *data;
	struct fs__maint *maint;
	struct fs__sweep *sweep;
	struct fs__pin *pin;
	struct fs__index *index;
};

static inline struct fs *
fs__from_req(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- fs/ops.c ---- */
int  fs__meta_init(struct fs *fs);	/* cleans orphans left by a crash */
void fs__meta_destroy(struct fs *fs);
void fs__meta_ops(struct fuse_lowlevel_ops *ops);

/* ---- fs/data.c ---- */
int  fs__data_init(struct fs *fs);	/* starts upload workers, requeues
					 * journal records left from before */
void fs__data_destroy(struct fs *fs);	/* stops workers; journal stays */
void fs__data_ops(struct fuse_lowlevel_ops *ops);	/* open read write
						 * flush fsync release */
/* Sets fi->fh etc. for a regular file just opened or created (fs/ops.c's
 * create calls it before fuse_reply_create). */
int  fs__data_open(struct fs *fs, uint64_t ino, struct fuse_file_info *fi);
/* Sets the size of ino to size: drops extents and journal blocks past the
 * end, cuts the new last block (read-modify-write when needed), updates
 * size, mtime and ctime in one transaction, fills *out with the result. */
int  fs__data_truncate(struct fs *fs, uint64_t ino, uint64_t size,
    struct store_inode *out);
/* Frees the contents of an inode that is gone (nlink 0, not open): drops
 * extents (block refcounts, forgetting blocks that reach 0), journal
 * records and staging files. Own transaction. */
int  fs__data_drop(struct fs *fs, uint64_t ino);
/* Return once every block of ino (or of every file) written so far is
 * stored on suppliers: 0, or -EIO/-ETIMEDOUT after sync_timeout_ms. */
int  fs__data_sync_ino(struct fs *fs, uint64_t ino);
int  fs__data_sync_all(struct fs *fs);
struct fs_data_stats {
	uint64_t pending_blocks;	/* journal records */
	uint64_t uploading;		/* blocks in flight, and inline
					 * blocks not yet in a published
					 * index */
	uint64_t uploaded_blocks;	/* since mount */
	uint64_t known_blocks;		/* since mount: same bytes stored
					 * already, not uploaded again */
	uint64_t upload_errors;
};
void fs__data_stats(struct fs *fs, struct fs_data_stats *out);
/* An index covering change number gen is on the suppliers: the inline
 * blocks committed up to it no longer count as uploading. */
void fs__data_published(struct fs *fs, uint64_t gen);

/* Deletes of fragments queued in the store (store_delq) race uploads of
 * the same bytes (same fragment ids). fs/maint.c brackets the check that
 * no record uses a fragment and the delete itself with these: an upload
 * that would commit that block meanwhile stores it again. note returns
 * NULL when out of memory (then do not send). */
void *fs__data_note(struct fs *fs, const unsigned char id[CR_ID_BYTES]);
void  fs__data_unnote(struct fs *fs, void *note, int sent);

/* ---- fs/maint.c: monitoring, audits, rebuilds, background deletes ---- */
int  fs__maint_init(struct fs *fs);	/* starts the threads; resumes the
					 * rebuild and delete queues */
void fs__maint_destroy(struct fs *fs);	/* stops them; queues stay */
/* Something was queued for deletion (wakes the deleter). NULL-safe. */
void fs__maint_kick(struct fs *fs);
/* A read got fragments `bad` (bit i = fragment i) of b forged or corrupt:
 * marks them lost (if b's holders are unchanged) and queues a rebuild. */
void fs__maint_report_bad(struct fs *fs, const struct store_block *b,
    uint32_t bad);
struct fs_maint_stats {
	uint64_t rebuild_queued;	/* blocks in the rebuild queue */
	uint64_t rebuilt_blocks, rebuilt_frags, rebuild_bytes, rebuild_errors;
	double rebuild_rate;		/* bytes/s, recent */
	int rebuilding;			/* workers busy now */
	uint64_t audits_ok, audits_failed, audits_error;
	uint64_t delq_count, delq_bytes, deleted;
	int64_t audit_interval_ms;
	uint64_t rebuild_rate_max;
};
void fs__maint_stats(struct fs *fs, struct fs_maint_stats *out);
/* setxattr user.peerfs.check: audits every fragment now, queues what is
 * bad, waits (up to sync_timeout_ms) for the rebuilds; the report is
 * then in fs__maint_report (malloc'd text). */
int  fs__maint_check(struct fs *fs);
int  fs__maint_report(struct fs *fs, char **val, size_t *len);
/* "6/6", "<min>/6 rebuilding" or "pending" for a regular file. */
int  fs__maint_redundancy(struct fs *fs, uint64_t ino, char *buf,
    size_t size);

/* ---- fs/sweep.c: the orphan sweep ---- */
/* Every conf.sweep_interval_ms lists each online supplier's fragments and
 * queues the delete of those that no block record references in two
 * consecutive sweeps (index blocks have records too). No thread without a network. */
int  fs__sweep_init(struct fs *fs);
void fs__sweep_destroy(struct fs *fs);

/* ---- fs/index.c: the index on suppliers ---- */
int  fs__index_init(struct fs *fs);	/* starts the upload thread */
void fs__index_destroy(struct fs *fs);	/* stops it, uploads what changed
					 * (bounded by network timeouts) */
/* Uploads a version now if anything changed (setxattr user.peerfs.sync
 * after the data sync). Always 0: a failure is logged and retried by
 * the thread (sync promises the data). */
int  fs__index_publish(struct fs *fs);
/* getxattr user.peerfs.versions: "seq time size\n" per version on the
 * suppliers, newest first. *val malloc()'d. */
int  fs__index_versions(struct fs *fs, char **val, size_t *len);

/* 0, or -ENOSPC when the LMDB map is too full for a writer of `level`:
 * 2 new journal blocks, 1 upload and index commits; below that only
 * deletes, which make room (fs/data.c). */
int  fs__map_room(struct store *st, int level);

/* ---- fs/ctl.c ---- */
/* Root-directory control attributes: getxattr "user.peerfs.status" gives
 * the status JSON; setxattr "user.peerfs.sync" runs fs__data_sync_all.
 * get: *val is malloc()'d; -ENODATA for unknown names. */
int fs__ctl_get(struct fs *fs, const char *name, char **val, size_t *len);
int fs__ctl_set(struct fs *fs, const char *name, const void *val, size_t len);

/* ---- fs/pin.c: pinned subtrees (`peerfs pin PATH`) ---- */
#define FS_PIN_XATTR FS_CTL_PREFIX "pin"	/* on any inode */
int  fs__pin_init(struct fs *fs);	/* starts the pin thread */
void fs__pin_destroy(struct fs *fs);
/* The plaintext of b from the pinned store into buf (b->plain_len bytes,
 * checked): b->plain_len, -ENOENT when not pinned locally, or -errno. */
int  fs__pin_read(struct fs *fs, const struct store_block *b, void *buf);
/* A block was fetched from suppliers: kept when a pinned file uses it. */
void fs__pin_fetched(struct fs *fs, const struct store_block *b,
    const void *plain);
/* setxattr FS_PIN_XATTR "1" pins ino (fetches every block below it now;
 * -EIO when some could not be had: they come when suppliers are back),
 * "0" unpins ino and every pin below it and frees what is not wanted. */
int  fs__pin_set(struct fs *fs, uint64_t ino, const char *val, size_t len);
/* getxattr FS_PIN_XATTR: JSON {pinned, root, files, bytes, blocks, local}
 * of ino's subtree, *val malloc()'d. */
int  fs__pin_info(struct fs *fs, uint64_t ino, char **val, size_t *len);

/* ---- shared helpers ---- */

/* A home restored from an older version shares fragments with newer
 * versions it cannot see: it must never delete from suppliers. */
static inline int
fs__index_older(struct store_txn *t)
{
	char c;

	return store_misc_get(t, "index.older", &c, 1) == 1;
}

/* The newest index version published (net/index.c keeps it in misc). */
static inline uint64_t
fs__index_seq(struct store_txn *t)
{
	unsigned char b[8];
	uint64_t v = 0;

	if (store_misc_get(t, "index.seq", b, sizeof b) != (int)sizeof b)
		return 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static inline void
fs__inode_to_stat(const struct store_inode *in, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = in->ino;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = in->size;
	st->st_blksize = 4096;
	st->st_blocks = (in->size + 511) / 512;
	st->st_atim.tv_sec = in->atime_sec;
	st->st_atim.tv_nsec = in->atime_nsec;
	st->st_mtim.tv_sec = in->mtime_sec;
	st->st_mtim.tv_nsec = in->mtime_nsec;
	st->st_ctim.tv_sec = in->ctime_sec;
	st->st_ctim.tv_nsec = in->ctime_nsec;
}

enum { FS_ATIME = 1, FS_MTIME = 2, FS_CTIME = 4 };

static inline void
fs__touch(struct store_inode *in, int which)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (which & FS_ATIME) {
		in->atime_sec = now.tv_sec;
		in->atime_nsec = now.tv_nsec;
	}
	if (which & FS_MTIME) {
		in->mtime_sec = now.tv_sec;
		in->mtime_nsec = now.tv_nsec;
	}
	if (which & FS_CTIME) {
		in->ctime_sec = now.tv_sec;
		in->ctime_nsec = now.tv_nsec;
	}
}

#endif
