/* fs/names.c - operations that add or remove names: mknod, mkdir,
 * symlink, create, link, unlink, rmdir, rename. Each is one store write
 * transaction; an inode that loses its last name is freed once the kernel
 * forgets it too (fs/lookups.c). Errno values follow Linux's ext4. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "fs/internal.h"
#include "log.h"
#include "util.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define LINK_MAX_EXT4	65000

/* ---- new names ---------------------------------------------------------- */

/* mknod, mkdir, symlink and create: a new inode and its name in one
 * transaction. target: symlink target or NULL; fi: create or NULL. */
static void
make_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    dev_t rdev, const char *target, struct fuse_file_info *fi)
{
	struct fs *fs = fs__from_req(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct store_inode dir, in;
	struct store_txn *t;
	struct timespec now;
	uint64_t ino;
	int rc;

	if ((rc = fs__check_name(name)) < 0)
		return fs__reply_err(req, rc);
	if (target && strlen(target) >= PATH_MAX)
		return fs__reply_err(req, -ENAMETOOLONG);
	/* New names stop where new data does: the rest is for deletes. */
	if ((rc = store_map_room(fs->conf.store, STORE_ROOM_JOURNAL)) < 0)
		return fs__reply_err(req, rc);
	clock_gettime(CLOCK_REALTIME, &now);
	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return fs__reply_err(req, rc);
	if ((rc = fs__get_dir(t, parent, &dir)) < 0)
		goto out;
	rc = store_dirent_get(t, parent, name, &ino);
	if (rc == 0)
		rc = -EEXIST;
	if (rc != -ENOENT)
		goto out;
	if ((rc = store_ino_alloc(t, &ino)) < 0)
		goto out;

	memset(&in, 0, sizeof in);
	in.ino = ino;
	in.generation = 1;	/* inode numbers are never reused */
	in.uid = ctx->uid;
	in.gid = ctx->gid;
	in.rdev = rdev;
	in.nlink = 1;
	if (S_ISLNK(mode))
		in.mode = S_IFLNK | 0777;
	else
		in.mode = (mode & S_IFMT) |
		    (mode & 07777 & ~(ctx->umask & 0777));
	if (dir.mode & S_ISGID) {
		in.gid = dir.gid;
		if (S_ISDIR(mode))
			in.mode |= S_ISGID;
	}
	if (!S_ISDIR(mode) && (in.mode & S_ISGID) && ctx->uid != 0 &&
	    !fs__in_group(req, in.gid))
		in.mode &= ~S_ISGID;
	store_inode_stamp(&in, STORE_ATIME | STORE_MTIME | STORE_CTIME, &now);
	if (S_ISDIR(mode)) {
		in.nlink = 2;
		dir.nlink++;
		if ((rc = fs__set_parent(t, ino, parent)) < 0)
			goto out;
	}
	if (target) {
		in.size = strlen(target);
		if ((rc = store_symlink_put(t, ino, target)) < 0)
			goto out;
	}
	store_inode_stamp(&dir, STORE_MTIME | STORE_CTIME, &now);
	if ((rc = store_ino_put(t, &in)) < 0 ||
	    (rc = store_dirent_put(t, parent, name, ino)) < 0 ||
	    (rc = store_ino_put(t, &dir)) < 0)
		goto out;
	rc = store_txn_commit(t);
	t = NULL;
out:
	if (t)
		store_txn_abort(t);
	if (rc < 0)
		return fs__reply_err(req, rc);
	if (!fi)
		return fs__reply_entry(req, &in);

	struct fuse_entry_param e;

	if ((rc = fs__file_open(fs, ino, fi)) < 0)
		return fs__reply_err(req, rc);
	fs__entry(&in, &e);
	if ((rc = fs__lookup_hold(fs, ino, 1)) < 0)
		return fs__reply_err(req, rc);
	if (fuse_reply_create(req, &e, fi) != 0)
		fs__lookup_release(fs, ino, 1);
}

void
fs__op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    dev_t rdev)
{
	switch (mode & S_IFMT) {
	case 0:
		mode |= S_IFREG;
		/* fall through */
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		rdev = 0;
		/* fall through */
	case S_IFCHR:
	case S_IFBLK:
		return make_node(req, parent, name, mode, rdev, NULL, NULL);
	default:
		return fs__reply_err(req, -EINVAL);
	}
}

void
fs__op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, NULL);
}

void
fs__op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
    const char *name)
{
	make_node(req, parent, name, S_IFLNK | 0777, 0, target, NULL);
}

void
fs__op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	make_node(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, fi);
}

void
fs__op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
    const char *newname)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode dir, in;
	struct store_txn *t;
	struct timespec now;
	uint64_t other;
	int rc;

	if ((rc = fs__check_name(newname)) < 0)
		return fs__reply_err(req, rc);
	if ((rc = store_map_room(fs->conf.store, STORE_ROOM_JOURNAL)) < 0)
		return fs__reply_err(req, rc);
	clock_gettime(CLOCK_REALTIME, &now);
	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return fs__reply_err(req, rc);
	if ((rc = store_ino_get(t, ino, &in)) < 0)
		goto out;
	if (S_ISDIR(in.mode)) {
		rc = -EPERM;
		goto out;
	}
	if (in.nlink == 0) {
		rc = -ENOENT;
		goto out;
	}
	if (in.nlink >= LINK_MAX_EXT4) {
		rc = -EMLINK;
		goto out;
	}
	if ((rc = fs__get_dir(t, newparent, &dir)) < 0)
		goto out;
	rc = store_dirent_get(t, newparent, newname, &other);
	if (rc == 0)
		rc = -EEXIST;
	if (rc != -ENOENT)
		goto out;
	in.nlink++;
	store_inode_stamp(&in, STORE_CTIME, &now);
	store_inode_stamp(&dir, STORE_MTIME | STORE_CTIME, &now);
	if ((rc = store_dirent_put(t, newparent, newname, ino)) == 0 &&
	    (rc = store_ino_put(t, &in)) == 0)
		rc = store_ino_put(t, &dir);
out:
	if ((rc = fs__commit_or_abort(t, rc)) < 0)
		return fs__reply_err(req, rc);
	fs__reply_entry(req, &in);
}


static void
remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int isdir)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode dir, in;
	struct store_txn *t;
	struct timespec now;
	uint64_t ino;
	int rc;

	if ((rc = fs__check_name(name)) < 0)
		return fs__reply_err(req, rc);
	if (isdir && strcmp(name, ".") == 0)
		return fs__reply_err(req, -EINVAL);
	if (isdir && strcmp(name, "..") == 0)
		return fs__reply_err(req, -ENOTEMPTY);
	clock_gettime(CLOCK_REALTIME, &now);
	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return fs__reply_err(req, rc);
	if ((rc = store_ino_get(t, parent, &dir)) < 0)
		goto out;
	if (!S_ISDIR(dir.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	if ((rc = store_dirent_get(t, parent, name, &ino)) < 0 ||
	    (rc = store_ino_get(t, ino, &in)) < 0)
		goto out;
	if (isdir && !S_ISDIR(in.mode))
		rc = -ENOTDIR;
	else if (!isdir && S_ISDIR(in.mode))
		rc = -EISDIR;
	else if (isdir && (rc = store_dirent_empty(t, ino)) >= 0)
		rc = rc ? 0 : -ENOTEMPTY;
	if (rc < 0 || (rc = fs__sticky_ok(req, &dir, &in)) < 0)
		goto out;
	if (isdir) {
		in.nlink = 0;
		if (dir.nlink > 2)
			dir.nlink--;
	} else if (in.nlink > 0) {
		in.nlink--;
	}
	store_inode_stamp(&in, STORE_CTIME, &now);
	store_inode_stamp(&dir, STORE_MTIME | STORE_CTIME, &now);
	if ((rc = store_dirent_del(t, parent, name)) == 0 &&
	    (rc = store_ino_put(t, &in)) == 0)
		rc = store_ino_put(t, &dir);
out:
	if ((rc = fs__commit_or_abort(t, rc)) < 0)
		return fs__reply_err(req, rc);
	if (in.nlink == 0)
		fs__inode_unlinked(fs, ino);
	fuse_reply_err(req, 0);
}

void
fs__op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 0);
}

void
fs__op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 1);
}

/* ---- rename ------------------------------------------------------------- */

struct rename_op {
	uint64_t parent, newparent;
	const char *name, *newname;
	unsigned flags;
	struct store_inode pd, npd_own, *npd;	/* npd == &pd: same dir */
	struct store_inode src, dst;
	int exists;
};

static int
rename_check(fuse_req_t req, struct store_txn *t, struct rename_op *r)
{
	int sdir = S_ISDIR(r->src.mode), ddir = S_ISDIR(r->dst.mode), rc;

	if ((rc = fs__sticky_ok(req, &r->pd, &r->src)) < 0)
		return rc;
	if (r->exists && (rc = fs__sticky_ok(req, r->npd, &r->dst)) < 0)
		return rc;
	if (r->exists && !(r->flags & RENAME_EXCHANGE)) {
		if (sdir && !ddir)
			return -ENOTDIR;
		if (!sdir && ddir)
			return -EISDIR;
		if (ddir && (rc = store_dirent_empty(t, r->dst.ino)) <= 0)
			return rc < 0 ? rc : -ENOTEMPTY;
	}
	if (r->parent == r->newparent)
		return 0;
	/* A directory may not move below itself. */
	if (sdir && (rc = fs__is_ancestor(t, r->src.ino, r->newparent)) != 0)
		return rc < 0 ? rc : -EINVAL;
	if (r->exists && (r->flags & RENAME_EXCHANGE) && ddir &&
	    (rc = fs__is_ancestor(t, r->dst.ino, r->parent)) != 0)
		return rc < 0 ? rc : -EINVAL;
	return 0;
}

/* Moves directory d (ino) from r->pd to r->npd or back (to_new 0). */
static int
move_dir(struct store_txn *t, struct rename_op *r, uint64_t ino, int to_new)
{
	struct store_inode *from = to_new ? &r->pd : r->npd;
	struct store_inode *to = to_new ? r->npd : &r->pd;

	if (from == to)
		return 0;
	from->nlink--;
	to->nlink++;
	return fs__set_parent(t, ino, to->ino);
}

static int
rename_apply(struct store_txn *t, struct rename_op *r,
    const struct timespec *now)
{
	int rc;

	if (r->flags & RENAME_EXCHANGE) {
		if ((rc = store_dirent_put(t, r->parent, r->name,
		    r->dst.ino)) < 0 ||
		    (rc = store_dirent_put(t, r->newparent, r->newname,
		    r->src.ino)) < 0)
			return rc;
		if (S_ISDIR(r->src.mode) &&
		    (rc = move_dir(t, r, r->src.ino, 1)) < 0)
			return rc;
		if (S_ISDIR(r->dst.mode) &&
		    (rc = move_dir(t, r, r->dst.ino, 0)) < 0)
			return rc;
	} else {
		if (r->exists) {
			if (S_ISDIR(r->dst.mode)) {
				r->dst.nlink = 0;
				r->npd->nlink--;
			} else if (r->dst.nlink > 0) {
				r->dst.nlink--;
			}
		}
		if ((rc = store_dirent_del(t, r->parent, r->name)) < 0 ||
		    (rc = store_dirent_put(t, r->newparent, r->newname,
		    r->src.ino)) < 0)
			return rc;
		if (S_ISDIR(r->src.mode) &&
		    (rc = move_dir(t, r, r->src.ino, 1)) < 0)
			return rc;
	}
	store_inode_stamp(&r->src, STORE_CTIME, now);
	store_inode_stamp(&r->pd, STORE_MTIME | STORE_CTIME, now);
	store_inode_stamp(r->npd, STORE_MTIME | STORE_CTIME, now);
	if ((rc = store_ino_put(t, &r->src)) < 0 ||
	    (rc = store_ino_put(t, &r->pd)) < 0)
		return rc;
	if (r->npd != &r->pd && (rc = store_ino_put(t, r->npd)) < 0)
		return rc;
	if (r->exists) {
		store_inode_stamp(&r->dst, STORE_CTIME, now);
		if ((rc = store_ino_put(t, &r->dst)) < 0)
			return rc;
	}
	return 0;
}

void
fs__op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs *fs = fs__from_req(req);
	struct rename_op r;
	struct store_txn *t;
	struct timespec now;
	uint64_t ino;
	int rc;

	if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE))
		return fs__reply_err(req, -EINVAL);
	if ((rc = fs__check_name(name)) < 0 || (rc = fs__check_name(newname)) < 0)
		return fs__reply_err(req, rc);
	memset(&r, 0, sizeof r);
	r.parent = parent;
	r.newparent = newparent;
	r.name = name;
	r.newname = newname;
	r.flags = flags;
	r.npd = parent == newparent ? &r.pd : &r.npd_own;
	clock_gettime(CLOCK_REALTIME, &now);
	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return fs__reply_err(req, rc);
	if ((rc = fs__get_dir(t, parent, &r.pd)) < 0 ||
	    (r.npd != &r.pd && (rc = fs__get_dir(t, newparent, r.npd)) < 0))
		goto out;
	if ((rc = store_dirent_get(t, parent, name, &ino)) < 0 ||
	    (rc = store_ino_get(t, ino, &r.src)) < 0)
		goto out;
	rc = store_dirent_get(t, newparent, newname, &ino);
	if (rc < 0 && rc != -ENOENT)
		goto out;
	r.exists = rc == 0;
	rc = 0;
	if (!r.exists && (flags & RENAME_EXCHANGE)) {
		rc = -ENOENT;
		goto out;
	}
	if (r.exists && (flags & RENAME_NOREPLACE)) {
		rc = -EEXIST;
		goto out;
	}
	if (r.exists && ino == r.src.ino)
		goto out;	/* two names of one inode: nothing to do */
	if (r.exists && (rc = store_ino_get(t, ino, &r.dst)) < 0)
		goto out;
	if ((rc = rename_check(req, t, &r)) == 0)
		rc = rename_apply(t, &r, &now);
out:
	if ((rc = fs__commit_or_abort(t, rc)) < 0)
		return fs__reply_err(req, rc);
	if (r.exists && !(flags & RENAME_EXCHANGE) && r.dst.nlink == 0 &&
	    r.dst.ino != r.src.ino)
		fs__inode_unlinked(fs, r.dst.ino);
	fuse_reply_err(req, 0);
}

