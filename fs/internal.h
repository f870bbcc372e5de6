/* fs/internal.h - private to fs/, the FUSE face. One operation table
 * (fs/fs.c) over these files:
 *   fs/inode.c    lookup, getattr, setattr, readlink, access, statfs and
 *                 the helpers every metadata operation shares
 *   fs/names.c    mknod, mkdir, symlink, create, link, unlink, rmdir,
 *                 rename
 *   fs/dir.c      opendir, readdir(plus), releasedir, fsyncdir
 *   fs/xattr.c    extended attributes, and the control attributes' door
 *   fs/lookups.c  forget: the kernel's lookup counts and the end of
 *                 inodes whose last name and lookup are gone
 *   fs/file.c     open, read, write, release, fsync: adaptors over owner/
 *   fs/ctl.c      the control attributes on the root (fs/ctl.h)
 * Every metadata change is one store write transaction, so a name and its
 * inode never disagree after a crash.
 *
 * A directory's parent is kept in the hidden xattr FS_PARENT_XATTR (be64),
 * outside every namespace a user can name, so dirents hold only real names
 * (readdir, emptiness checks and the index need no special case for "..").
 * It serves readdir's ".." and rename's loop check. The root has none. */
#ifndef PEERFS_FS_INTERNAL_H
#define PEERFS_FS_INTERNAL_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/ctl.h"
#include "fs/fs.h"

#define FS_PARENT_XATTR "peerfs.parent"
#define FS_ATTR_TIMEOUT 1.0

struct fs__lookups;	/* fs/lookups.c */

struct fs {
	struct fs_conf conf;
	struct fuse_session *se;
	char *mountpoint;
	struct fs__lookups *lookups;
};

static inline struct fs *
fs__from_req(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline void
fs__reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : rc);
}

/* ---- the operations (fs/fs.c puts them in its table) ---- */
void fs__op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs__op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fs__op_forget_multi(fuse_req_t req, size_t count,
    struct fuse_forget_data *f);
void fs__op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs__op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
    int to_set, struct fuse_file_info *fi);
void fs__op_readlink(fuse_req_t req, fuse_ino_t ino);
void fs__op_access(fuse_req_t req, fuse_ino_t ino, int mask);
void fs__op_statfs(fuse_req_t req, fuse_ino_t ino);
void fs__op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
    mode_t mode, dev_t rdev);
void fs__op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
    mode_t mode);
void fs__op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
    const char *name);
void fs__op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
    mode_t mode, struct fuse_file_info *fi);
void fs__op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
    const char *newname);
void fs__op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs__op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs__op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned int flags);
void fs__op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs__op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi);
void fs__op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
    off_t off, struct fuse_file_info *fi);
void fs__op_releasedir(fuse_req_t req, fuse_ino_t ino,
    struct fuse_file_info *fi);
void fs__op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi);
void fs__op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
    const char *value, size_t size, int flags);
void fs__op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
    size_t size);
void fs__op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs__op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void fs__op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs__op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi);
void fs__op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
    size_t size, off_t off, struct fuse_file_info *fi);
void fs__op_release(fuse_req_t req, fuse_ino_t ino,
    struct fuse_file_info *fi);
void fs__op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi);

/* ---- fs/lookups.c: lookup counts (what the kernel holds, released by
 * forget) ---- */
int  fs__lookups_init(struct fs *fs);	/* frees inodes a crash orphaned */
void fs__lookups_destroy(struct fs *fs);
/* Adds n before an inode goes to the kernel (-ENOMEM). */
int  fs__lookup_hold(struct fs *fs, uint64_t ino, uint64_t n);
/* Takes n back and frees the inode when neither the kernel nor a name
 * holds it any more. */
void fs__lookup_release(struct fs *fs, uint64_t ino, uint64_t n);
/* Frees ino if it has no name (nlink 0) and no lookup: call it after
 * committing the change that took its last name. */
void fs__inode_unlinked(struct fs *fs, uint64_t ino);

/* ---- fs/inode.c: helpers of the metadata operations ---- */
/* The parent of directory ino (the root is its own parent). */
int  fs__parent(struct store_txn *t, uint64_t ino, uint64_t *out);
int  fs__set_parent(struct store_txn *t, uint64_t ino, uint64_t parent);
/* 1 when anc is dir or one of its ancestors. */
int  fs__is_ancestor(struct store_txn *t, uint64_t anc, uint64_t dir);
/* -ENAMETOOLONG past STORE_NAME_MAX. */
int  fs__check_name(const char *name);
/* A directory that still exists (rmdir'd ones keep their inode while
 * the kernel holds them: creating in them is -ENOENT, as on ext4). */
int  fs__get_dir(struct store_txn *t, uint64_t ino, struct store_inode *out);
/* The caller of req may access in with mask (R_OK | W_OK | X_OK). */
int  fs__may_access(fuse_req_t req, const struct store_inode *in, int mask);
/* The sticky bit of dir lets the caller remove or rename victim. */
int  fs__sticky_ok(fuse_req_t req, const struct store_inode *dir,
    const struct store_inode *victim);
/* 1 when the caller (fuse_req_ctx) is in group gid, 0 when not. */
int  fs__in_group(fuse_req_t req, gid_t gid);
/* Fills an entry for the kernel (timeouts, generation, attributes). */
void fs__entry(const struct store_inode *in, struct fuse_entry_param *e);
/* Replies with in's entry, counting the lookup first. */
void fs__reply_entry(fuse_req_t req, const struct store_inode *in);
void fs__reply_attr(fuse_req_t req, const struct store_inode *in);
/* Commits t, or aborts it when rc < 0; returns the outcome. */
int  fs__commit_or_abort(struct store_txn *t, int rc);
/* chmod of ino's permission bits (0777; set-id and sticky bits stay)
 * with chmod's rules, for the caller of req; the kernel's cached
 * attributes of ino are dropped. 0 or -errno. */
int  fs__chmod(fuse_req_t req, fuse_ino_t ino, uint32_t perm);

/* ---- fs/file.c ---- */
/* Sets fi for a regular file just opened or created. */
int  fs__file_open(struct fs *fs, uint64_t ino, struct fuse_file_info *fi);

/* ---- fs/ctl.c ---- */
/* Root-directory control attributes (fs/ctl.h): get: *val is malloc()'d;
 * -ENODATA for unknown names. */
int fs__ctl_get(struct fs *fs, const char *name, char **val, size_t *len);
int fs__ctl_set(struct fs *fs, const char *name, const void *val, size_t len);
/* 0 when the caller of req may use the control attributes (the uid that
 * mounted, or root), else -EACCES: with -o allow_other every local user
 * reaches the root, and status names suppliers, errors and file counts. */
int fs__ctl_may(fuse_req_t req);

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

#endif
