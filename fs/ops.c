/* fs/ops.c - FUSE metadata operations on names and inodes: lookup,
 * getattr, setattr, mknod, mkdir, symlink, create, link, unlink, rmdir,
 * rename, readlink, access, statfs (directories: fs/dir.c; xattrs:
 * fs/xattr.c; lookup counts and freeing inodes: fs/forget.c).
 * Every change is one store write transaction, so a name and its inode
 * never disagree after a crash. The kernel checks permissions
 * (default_permissions); what is checked here again is cheap and follows
 * Linux, so errno values match ext4. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs/meta.h"
#include "log.h"
#include "util.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define LINK_MAX_EXT4	65000
#define DEPTH_MAX	65536	/* stops a parent walk caught in a cycle */

/* ---- helpers ------------------------------------------------------------ */

static void
stamp(struct store_inode *in, int which, const struct timespec *ts)
{
	if (which & FS_ATIME) {
		in->atime_sec = ts->tv_sec;
		in->atime_nsec = ts->tv_nsec;
	}
	if (which & FS_MTIME) {
		in->mtime_sec = ts->tv_sec;
		in->mtime_nsec = ts->tv_nsec;
	}
	if (which & FS_CTIME) {
		in->ctime_sec = ts->tv_sec;
		in->ctime_nsec = ts->tv_nsec;
	}
}

static int
check_name(const char *name)
{
	if (strlen(name) > STORE_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* A directory that still exists (rmdir'd ones keep their inode while
 * the kernel holds them: creating in them is -ENOENT, as on ext4). */
static int
get_dir(struct store_txn *t, uint64_t ino, struct store_inode *out)
{
	int rc;

	if ((rc = store_ino_get(t, ino, out)) < 0)
		return rc;
	if (!S_ISDIR(out->mode))
		return -ENOTDIR;
	if (out->nlink == 0)
		return -ENOENT;
	return 0;
}

int
fs__meta_parent(struct store_txn *t, uint64_t ino, uint64_t *out)
{
	unsigned char b[8];
	int rc;

	if (ino == FUSE_ROOT_ID) {
		*out = FUSE_ROOT_ID;
		return 0;
	}
	rc = store_xattr_get(t, ino, FS_PARENT_XATTR, b, sizeof b);
	if (rc == sizeof b) {
		*out = get_be64(b);
		return 0;
	}
	if (rc == -ENODATA || rc == -ENOENT || rc >= 0) {
		log_warn("%s: directory %" PRIu64 " has no parent record",
		    __func__, ino);
		*out = FUSE_ROOT_ID;
		return 0;
	}
	return rc;
}

static int
set_parent(struct store_txn *t, uint64_t ino, uint64_t parent)
{
	unsigned char b[8];

	put_be64(b, parent);
	return store_xattr_set(t, ino, FS_PARENT_XATTR, b, sizeof b, 0);
}

/* 1 when anc is dir or one of its ancestors. */
static int
is_ancestor(struct store_txn *t, uint64_t anc, uint64_t dir)
{
	int depth, rc;

	for (depth = 0; depth < DEPTH_MAX; depth++) {
		if (dir == anc)
			return 1;
		if (dir == FUSE_ROOT_ID)
			return 0;
		if ((rc = fs__meta_parent(t, dir, &dir)) < 0)
			return rc;
	}
	return -ELOOP;
}

int
fs__meta_in_group(fuse_req_t req, gid_t gid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t buf[64], *list = buf;
	int n, i, hit = 0;

	if (ctx->gid == gid)
		return 1;
	n = fuse_req_getgroups(req, ARRAY_SIZE(buf), buf);
	if (n > (int)ARRAY_SIZE(buf)) {
		int cap = n;

		if (!(list = malloc(cap * sizeof *list)))
			return 0;
		n = fuse_req_getgroups(req, cap, list);
		if (n > cap)
			n = cap;
	}
	for (i = 0; i < n; i++)
		if (list[i] == gid)
			hit = 1;
	if (list != buf)
		free(list);
	return hit;
}

/* access(2) for the caller: mask of R_OK W_OK X_OK; root passes all but
 * execute on a file nobody may execute. */
static int
may_access(fuse_req_t req, const struct store_inode *in, int mask)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	unsigned bits;

	mask &= R_OK | W_OK | X_OK;
	if (ctx->uid == 0) {
		if ((mask & X_OK) && !S_ISDIR(in->mode) &&
		    !(in->mode & (S_IXUSR | S_IXGRP | S_IXOTH)))
			return -EACCES;
		return 0;
	}
	if (ctx->uid == in->uid)
		bits = in->mode >> 6;
	else if (fs__meta_in_group(req, in->gid))
		bits = in->mode >> 3;
	else
		bits = in->mode;
	return ((bits & 7) & mask) == (unsigned)mask ? 0 : -EACCES;
}

/* In a sticky directory only the owner of the directory or of the victim
 * (or root) may remove or rename the victim away. */
static int
sticky_ok(fuse_req_t req, const struct store_inode *dir,
    const struct store_inode *victim)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	if (!(dir->mode & S_ISVTX) || ctx->uid == 0 ||
	    ctx->uid == dir->uid || ctx->uid == victim->uid)
		return 0;
	return -EPERM;
}

void
fs__meta_entry(const struct store_inode *in, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	e->ino = in->ino;
	e->generation = in->generation;
	e->attr_timeout = FS_ATTR_TIMEOUT;
	e->entry_timeout = FS_ATTR_TIMEOUT;
	fs__inode_to_stat(in, &e->attr);
}

/* Counts the lookup first: a forget may come as soon as the kernel has
 * the reply. A reply that fails (interrupted request) gives it back. */
static void
reply_entry(fuse_req_t req, const struct store_inode *in)
{
	struct fs *fs = fs__from_req(req);
	struct fuse_entry_param e;
	int rc;

	fs__meta_entry(in, &e);
	if ((rc = fs__meta_ref(fs, in->ino, 1)) < 0)
		return fs__meta_reply_err(req, rc);
	if (fuse_reply_entry(req, &e) != 0)
		fs__meta_unref(fs, in->ino, 1);
}

static void
reply_attr(fuse_req_t req, const struct store_inode *in)
{
	struct stat st;

	fs__inode_to_stat(in, &st);
	fuse_reply_attr(req, &st, FS_ATTR_TIMEOUT);
}

static int
commit_or_abort(struct store_txn *t, int rc)
{
	if (rc < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

/* ---- lookup, forget, getattr -------------------------------------------- */

static void
op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode dir, in;
	struct store_txn *t;
	uint64_t ino;
	int rc, negative = 0;

	if ((rc = check_name(name)) < 0)
		return fs__meta_reply_err(req, rc);
	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return fs__meta_reply_err(req, rc);
	if ((rc = store_ino_get(t, parent, &dir)) < 0)
		goto out;
	if (!S_ISDIR(dir.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	/* The kernel resolves "." and ".." itself except for NFS export. */
	if (strcmp(name, ".") == 0)
		ino = parent;
	else if (strcmp(name, "..") == 0)
		rc = fs__meta_parent(t, parent, &ino);
	else
		rc = store_dirent_get(t, parent, name, &ino);
	if (rc == 0)
		rc = store_ino_get(t, ino, &in);
	else if (rc == -ENOENT)
		negative = 1;
out:
	store_txn_abort(t);
	if (negative) {
		/* Every change comes through the kernel, which drops this
		 * negative entry when it creates the name. */
		struct fuse_entry_param e = { .ino = 0 };

		e.entry_timeout = FS_ATTR_TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc < 0)
		return fs__meta_reply_err(req, rc);
	reply_entry(req, &in);
}

static void
op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs__meta_unref(fs__from_req(req), ino, nlookup);
	fuse_reply_none(req);
}

static void
op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	struct fs *fs = fs__from_req(req);
	size_t i;

	for (i = 0; i < count; i++)
		fs__meta_unref(fs, f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

static void
op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode in;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return fs__meta_reply_err(req, rc);
	rc = store_ino_get(t, ino, &in);
	store_txn_abort(t);
	if (rc < 0)
		return fs__meta_reply_err(req, rc);
	reply_attr(req, &in);
}

/* ---- setattr ------------------------------------------------------------ */

/* Applies every attribute of to_set but the size to *in, with Linux's
 * permission rules (fs/attr.c setattr_prepare, chown_ok, chgrp_ok). */
static int
apply_attrs(fuse_req_t req, struct store_inode *in, const struct stat *a,
    int to_set, const struct timespec *now)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int root = ctx->uid == 0, owner = ctx->uid == in->uid;
	/* Only the kernel sends ctime (writeback cache: flushing times it
	 * kept); those come after its own checks. */
	int kernel = !!(to_set & FUSE_SET_ATTR_CTIME);
	uint32_t mode = in->mode;
	uid_t uid = in->uid;
	gid_t gid = in->gid;

	if (to_set & FUSE_SET_ATTR_UID) {
		if (!root && !(owner && a->st_uid == in->uid))
			return -EPERM;
		uid = a->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		if (!root && !(owner && (a->st_gid == in->gid ||
		    fs__meta_in_group(req, a->st_gid))))
			return -EPERM;
		gid = a->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_MODE) {
		uint32_t m = a->st_mode & 07777;
		const uint32_t sid = S_ISUID | S_ISGID;

		/* A writer who is not the owner makes the kernel clear
		 * set-id bits in the owner's name: let pure clearing pass. */
		if (!root && !owner && ((m & ~sid) != (mode & 07777 & ~sid) ||
		    (m & sid & ~mode)))
			return -EPERM;
		if (!root && (m & S_ISGID) && !(mode & S_ISGID) &&
		    !fs__meta_in_group(req, gid))
			m &= ~S_ISGID;
		mode = (mode & S_IFMT) | m;
	}
	if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    !S_ISDIR(mode)) {
		mode &= ~S_ISUID;
		if ((mode & S_IXGRP) || (!root &&
		    !fs__meta_in_group(req, gid)))
			mode &= ~S_ISGID;
	}
	if ((to_set & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID)) &&
	    S_ISREG(mode)) {
		mode &= ~S_ISUID;
		if (mode & S_IXGRP)
			mode &= ~S_ISGID;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		int explicit = ((to_set & FUSE_SET_ATTR_ATIME) &&
		    !(to_set & FUSE_SET_ATTR_ATIME_NOW)) ||
		    ((to_set & FUSE_SET_ATTR_MTIME) &&
		    !(to_set & FUSE_SET_ATTR_MTIME_NOW));

		if (!root && !owner && !kernel) {
			if (explicit)
				return -EPERM;
			if (may_access(req, in, W_OK) < 0)
				return -EACCES;
		}
	}
	in->mode = mode;
	in->uid = uid;
	in->gid = gid;
	if (to_set & FUSE_SET_ATTR_ATIME) {
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			stamp(in, FS_ATIME, now);
		else
			stamp(in, FS_ATIME, &a->st_atim);
	}
	if (to_set & FUSE_SET_ATTR_MTIME) {
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			stamp(in, FS_MTIME, now);
		else
			stamp(in, FS_MTIME, &a->st_mtim);
	}
	stamp(in, FS_CTIME, kernel ? &a->st_ctim : now);
	return 0;
}

static void
op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
    struct fuse_file_info *fi)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode in, probe;
	struct store_txn *t;
	struct timespec now;
	int rc;

	clock_gettime(CLOCK_REALTIME, &now);
	/* Check everything before the truncate, which commits on its own. */
	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return fs__meta_reply_err(req, rc);
	rc = store_ino_get(t, ino, &in);
	store_txn_abort(t);
	if (rc < 0)
		return fs__meta_reply_err(req, rc);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (S_ISDIR(in.mode))
			return fs__meta_reply_err(req, -EISDIR);
		if (!S_ISREG(in.mode))
			return fs__meta_reply_err(req, -EINVAL);
	}
	probe = in;
	if ((rc = apply_attrs(req, &probe, attr, to_set, &now)) < 0)
		return fs__meta_reply_err(req, rc);

	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size < 0)
			return fs__meta_reply_err(req, -EINVAL);
		rc = fs__data_truncate(fs, ino, attr->st_size, &in);
		if (rc < 0)
			return fs__meta_reply_err(req, rc);
		if (!(to_set & ~FUSE_SET_ATTR_SIZE))
			return reply_attr(req, &in);
	}

	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return fs__meta_reply_err(req, rc);
	if ((rc = store_ino_get(t, ino, &in)) == 0 &&
	    (rc = apply_attrs(req, &in, attr, to_set, &now)) == 0)
		rc = store_ino_put(t, &in);
	if ((rc = commit_or_abort(t, rc)) < 0)
		return fs__meta_reply_err(req, rc);
	reply_attr(req, &in);
}

int
fs__meta_chmod(fuse_req_t req, fuse_ino_t ino, uint32_t perm)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode in;
	struct store_txn *t;
	struct timespec now;
	struct stat a = { 0 };
	int rc;

	clock_gettime(CLOCK_REALTIME, &now);
	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return rc;
	if ((rc = store_ino_get(t, ino, &in)) == 0) {
		a.st_mode = (in.mode & 07000) | (perm & 0777);
		if ((rc = apply_attrs(req, &in, &a, FUSE_SET_ATTR_MODE,
		    &now)) == 0) {
			fs__touch(&in, FS_CTIME);
			rc = store_ino_put(t, &in);
		}
	}
	if ((rc = commit_or_abort(t, rc)) < 0)
		return rc;
	/* Not a setattr: the kernel would keep the old mode for its
	 * permission checks until the attributes time out. */
	fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
	return 0;
}

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

	if ((rc = check_name(name)) < 0)
		return fs__meta_reply_err(req, rc);
	if (target && strlen(target) >= PATH_MAX)
		return fs__meta_reply_err(req, -ENAMETOOLONG);
	/* New names stop where new data does: the rest is for deletes. */
	if ((rc = fs__map_room(fs->conf.store, 2)) < 0)
		return fs__meta_reply_err(req, rc);
	clock_gettime(CLOCK_REALTIME, &now);
	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return fs__meta_reply_err(req, rc);
	if ((rc = get_dir(t, parent, &dir)) < 0)
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
	    !fs__meta_in_group(req, in.gid))
		in.mode &= ~S_ISGID;
	stamp(&in, FS_ATIME | FS_MTIME | FS_CTIME, &now);
	if (S_ISDIR(mode)) {
		in.nlink = 2;
		dir.nlink++;
		if ((rc = set_parent(t, ino, parent)) < 0)
			goto out;
	}
	if (target) {
		in.size = strlen(target);
		if ((rc = store_symlink_put(t, ino, target)) < 0)
			goto out;
	}
	stamp(&dir, FS_MTIME | FS_CTIME, &now);
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
		return fs__meta_reply_err(req, rc);
	if (!fi)
		return reply_entry(req, &in);

	struct fuse_entry_param e;

	if ((rc = fs__data_open(fs, ino, fi)) < 0)
		return fs__meta_reply_err(req, rc);
	fs__meta_entry(&in, &e);
	if ((rc = fs__meta_ref(fs, ino, 1)) < 0)
		return fs__meta_reply_err(req, rc);
	if (fuse_reply_create(req, &e, fi) != 0)
		fs__meta_unref(fs, ino, 1);
}

static void
op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
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
		return fs__meta_reply_err(req, -EINVAL);
	}
}

static void
op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, NULL);
}

static void
op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
    const char *name)
{
	make_node(req, parent, name, S_IFLNK | 0777, 0, target, NULL);
}

static void
op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	make_node(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, fi);
}

static void
op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
    const char *newname)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode dir, in;
	struct store_txn *t;
	struct timespec now;
	uint64_t other;
	int rc;

	if ((rc = check_name(newname)) < 0)
		return fs__meta_reply_err(req, rc);
	if ((rc = fs__map_room(fs->conf.store, 2)) < 0)
		return fs__meta_reply_err(req, rc);
	clock_gettime(CLOCK_REALTIME, &now);
	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return fs__meta_reply_err(req, rc);
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
	if ((rc = get_dir(t, newparent, &dir)) < 0)
		goto out;
	rc = store_dirent_get(t, newparent, newname, &other);
	if (rc == 0)
		rc = -EEXIST;
	if (rc != -ENOENT)
		goto out;
	in.nlink++;
	stamp(&in, FS_CTIME, &now);
	stamp(&dir, FS_MTIME | FS_CTIME, &now);
	if ((rc = store_dirent_put(t, newparent, newname, ino)) == 0 &&
	    (rc = store_ino_put(t, &in)) == 0)
		rc = store_ino_put(t, &dir);
out:
	if ((rc = commit_or_abort(t, rc)) < 0)
		return fs__meta_reply_err(req, rc);
	reply_entry(req, &in);
}

static void
op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode in;
	struct store_txn *t;
	char buf[PATH_MAX + 1];
	int rc;

	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return fs__meta_reply_err(req, rc);
	if ((rc = store_ino_get(t, ino, &in)) == 0) {
		if (!S_ISLNK(in.mode))
			rc = -EINVAL;
		else
			rc = store_symlink_get(t, ino, buf, sizeof buf);
	}
	store_txn_abort(t);
	if (rc < 0)
		return fs__meta_reply_err(req, rc);
	fuse_reply_readlink(req, buf);
}

/* ---- removing names ----------------------------------------------------- */

static void
remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int isdir)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode dir, in;
	struct store_txn *t;
	struct timespec now;
	uint64_t ino;
	int rc;

	if ((rc = check_name(name)) < 0)
		return fs__meta_reply_err(req, rc);
	if (isdir && strcmp(name, ".") == 0)
		return fs__meta_reply_err(req, -EINVAL);
	if (isdir && strcmp(name, "..") == 0)
		return fs__meta_reply_err(req, -ENOTEMPTY);
	clock_gettime(CLOCK_REALTIME, &now);
	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return fs__meta_reply_err(req, rc);
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
	if (rc < 0 || (rc = sticky_ok(req, &dir, &in)) < 0)
		goto out;
	if (isdir) {
		in.nlink = 0;
		if (dir.nlink > 2)
			dir.nlink--;
	} else if (in.nlink > 0) {
		in.nlink--;
	}
	stamp(&in, FS_CTIME, &now);
	stamp(&dir, FS_MTIME | FS_CTIME, &now);
	if ((rc = store_dirent_del(t, parent, name)) == 0 &&
	    (rc = store_ino_put(t, &in)) == 0)
		rc = store_ino_put(t, &dir);
out:
	if ((rc = commit_or_abort(t, rc)) < 0)
		return fs__meta_reply_err(req, rc);
	if (in.nlink == 0)
		fs__meta_drop(fs, ino);
	fuse_reply_err(req, 0);
}

static void
op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 0);
}

static void
op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
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

	if ((rc = sticky_ok(req, &r->pd, &r->src)) < 0)
		return rc;
	if (r->exists && (rc = sticky_ok(req, r->npd, &r->dst)) < 0)
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
	if (sdir && (rc = is_ancestor(t, r->src.ino, r->newparent)) != 0)
		return rc < 0 ? rc : -EINVAL;
	if (r->exists && (r->flags & RENAME_EXCHANGE) && ddir &&
	    (rc = is_ancestor(t, r->dst.ino, r->parent)) != 0)
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
	return set_parent(t, ino, to->ino);
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
	stamp(&r->src, FS_CTIME, now);
	stamp(&r->pd, FS_MTIME | FS_CTIME, now);
	stamp(r->npd, FS_MTIME | FS_CTIME, now);
	if ((rc = store_ino_put(t, &r->src)) < 0 ||
	    (rc = store_ino_put(t, &r->pd)) < 0)
		return rc;
	if (r->npd != &r->pd && (rc = store_ino_put(t, r->npd)) < 0)
		return rc;
	if (r->exists) {
		stamp(&r->dst, FS_CTIME, now);
		if ((rc = store_ino_put(t, &r->dst)) < 0)
			return rc;
	}
	return 0;
}

static void
op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
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
		return fs__meta_reply_err(req, -EINVAL);
	if ((rc = check_name(name)) < 0 || (rc = check_name(newname)) < 0)
		return fs__meta_reply_err(req, rc);
	memset(&r, 0, sizeof r);
	r.parent = parent;
	r.newparent = newparent;
	r.name = name;
	r.newname = newname;
	r.flags = flags;
	r.npd = parent == newparent ? &r.pd : &r.npd_own;
	clock_gettime(CLOCK_REALTIME, &now);
	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return fs__meta_reply_err(req, rc);
	if ((rc = get_dir(t, parent, &r.pd)) < 0 ||
	    (r.npd != &r.pd && (rc = get_dir(t, newparent, r.npd)) < 0))
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
	if ((rc = commit_or_abort(t, rc)) < 0)
		return fs__meta_reply_err(req, rc);
	if (r.exists && !(flags & RENAME_EXCHANGE) && r.dst.nlink == 0 &&
	    r.dst.ino != r.src.ino)
		fs__meta_drop(fs, r.dst.ino);
	fuse_reply_err(req, 0);
}

/* ---- access, statfs ----------------------------------------------------- */

static void
op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode in;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return fs__meta_reply_err(req, rc);
	rc = store_ino_get(t, ino, &in);
	store_txn_abort(t);
	if (rc == 0 && mask != F_OK)
		rc = may_access(req, &in, mask);
	fs__meta_reply_err(req, rc);
}

/* Space is what online suppliers offer, less the erasure-code overhead.
 * fs/ does not know k and m, so the default 4+2 (x1.5) is assumed. */
static void
op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs__from_req(req);
	struct net_peer_info *p = NULL;
	uint64_t total = 0, avail = 0;
	struct statvfs sv;
	int n = 0, max = 64, i;

	while (fs->conf.net) {
		free(p);
		if (!(p = calloc(max, sizeof *p)))
			return fs__meta_reply_err(req, -ENOMEM);
		n = net_peers(fs->conf.net, p, max, 0);
		if (n <= max)
			break;
		max = n;
	}
	for (i = 0; i < n; i++) {
		if (p[i].state != NET_PEER_ONLINE)
			continue;
		avail += p[i].avail;
		total += p[i].quota ? p[i].quota : p[i].avail + p[i].bytes;
	}
	free(p);
	memset(&sv, 0, sizeof sv);
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = total / 3 * 2 / 4096;
	sv.f_bfree = avail / 3 * 2 / 4096;
	sv.f_bavail = sv.f_bfree;
	sv.f_files = 1ULL << 32;
	sv.f_ffree = 1ULL << 32;
	sv.f_favail = sv.f_ffree;
	sv.f_namemax = STORE_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

void
fs__meta_ops(struct fuse_lowlevel_ops *ops)
{
	ops->lookup = op_lookup;
	ops->forget = op_forget;
	ops->forget_multi = op_forget_multi;
	ops->getattr = op_getattr;
	ops->setattr = op_setattr;
	ops->readlink = op_readlink;
	ops->mknod = op_mknod;
	ops->mkdir = op_mkdir;
	ops->unlink = op_unlink;
	ops->rmdir = op_rmdir;
	ops->symlink = op_symlink;
	ops->rename = op_rename;
	ops->link = op_link;
	ops->access = op_access;
	ops->statfs = op_statfs;
	ops->create = op_create;
	fs__dir_ops(ops);
	fs__xattr_ops(ops);
}
