/* fs/meta.h - shared by the metadata operations only (fs/ops.c, fs/dir.c,
 * fs/xattr.c, fs/forget.c); the rest of fs/ sees fs/internal.h.
 *
 * A directory's parent is kept in the hidden xattr FS_PARENT_XATTR (be64),
 * outside every namespace a user can name, so dirents hold only real names
 * (readdir, emptiness checks and the index need no special case for "..").
 * It serves readdir's ".." and rename's loop check. The root has none. */
#ifndef PEERFS_FS_META_H
#define PEERFS_FS_META_H

#include "fs/internal.h"

#define FS_PARENT_XATTR "peerfs.parent"
#define FS_ATTR_TIMEOUT 1.0

/* fs/forget.c: lookup counts (what the kernel holds, released by forget).
 * ref adds n before an inode goes to the kernel (-ENOMEM); unref takes n
 * back and frees the inode when neither the kernel nor a name holds it
 * any more. drop frees ino if it has no name (nlink 0) and no lookup:
 * call it after committing the change that took its last name. */
int  fs__meta_ref(struct fs *fs, uint64_t ino, uint64_t n);
void fs__meta_unref(struct fs *fs, uint64_t ino, uint64_t n);
void fs__meta_drop(struct fs *fs, uint64_t ino);

/* The parent of directory ino (the root is its own parent). */
int  fs__meta_parent(struct store_txn *t, uint64_t ino, uint64_t *out);

/* Fills an entry for the kernel (timeouts, generation, attributes). */
void fs__meta_entry(const struct store_inode *in, struct fuse_entry_param *e);

/* chmod of ino's permission bits (0777; set-id and sticky bits stay)
 * with chmod's rules, for the caller of req; the kernel's cached
 * attributes of ino are dropped. 0 or -errno. */
int  fs__meta_chmod(fuse_req_t req, fuse_ino_t ino, uint32_t perm);

/* 1 when the caller (fuse_req_ctx) is in group gid, 0 when not. */
int  fs__meta_in_group(fuse_req_t req, gid_t gid);

static inline void
fs__meta_reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : rc);
}

void fs__dir_ops(struct fuse_lowlevel_ops *ops);	/* fs/dir.c */
void fs__xattr_ops(struct fuse_lowlevel_ops *ops);	/* fs/xattr.c */

#endif
