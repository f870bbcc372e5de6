/* fs/inode.c - operations on one inode: lookup, getattr, setattr,
 * readlink, access, statfs; and the helpers every metadata operation
 * shares (fs/internal.h). The kernel checks permissions
 * (default_permissions); what is checked here again is cheap and follows
 * Linux, so errno values match ext4. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs/internal.h"
#include "log.h"
#include "util.h"

#define DEPTH_MAX	65536	/* stops a parent walk caught in a cycle */

/* ---- helpers ------------------------------------------------------------ */

int
fs__check_name(const char *name)
{
	if (strlen(name) > STORE_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* A directory that still exists (rmdir'd ones keep their inode while
 * the kernel holds them: creating in them is -ENOENT, as on ext4). */
int
fs__get_dir(struct store_txn *t, uint64_t ino, struct store_inode *out)
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
fs__parent(struct store_txn *t, uint64_t ino, uint64_t *out)
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

int
fs__set_parent(struct store_txn *t, uint64_t ino, uint64_t parent)
{
	unsigned char b[8];

	put_be64(b, parent);
	return store_xattr_set(t, ino, FS_PARENT_XATTR, b, sizeof b, 0);
}

/* 1 when anc is dir or one of its ancestors. */
int
fs__is_ancestor(struct store_txn *t, uint64_t anc, uint64_t dir)
{
	int depth, rc;

	for (depth = 0; depth < DEPTH_MAX; depth++) {
		if (dir == anc)
			return 1;
		if (dir == FUSE_ROOT_ID)
			return 0;
		if ((rc = fs__parent(t, dir, &dir)) < 0)
			return rc;
	}
	return -ELOOP;
}

int
fs__in_group(fuse_req_t req, gid_t gid)
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
int
fs__may_access(fuse_req_t req, const struct store_inode *in, int mask)
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
	else if (fs__in_group(req, in->gid))
		bits = in->mode >> 3;
	else
		bits = in->mode;
	return ((bits & 7) & mask) == (unsigned)mask ? 0 : -EACCES;
}

/* In a sticky directory only the owner of the directory or of the victim
 * (or root) may remove or rename the victim away. */
int
fs__sticky_ok(fuse_req_t req, const struct store_inode *dir,
    const struct store_inode *victim)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	if (!(dir->mode & S_ISVTX) || ctx->uid == 0 ||
	    ctx->uid == dir->uid || ctx->uid == victim->uid)
		return 0;
	return -EPERM;
}

void
fs__entry(const struct store_inode *in, struct fuse_entry_param *e)
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
void
fs__reply_entry(fuse_req_t req, const struct store_inode *in)
{
	struct fs *fs = fs__from_req(req);
	struct fuse_entry_param e;
	int rc;

	fs__entry(in, &e);
	if ((rc = fs__lookup_hold(fs, in->ino, 1)) < 0)
		return fs__reply_err(req, rc);
	if (fuse_reply_entry(req, &e) != 0)
		fs__lookup_release(fs, in->ino, 1);
}

void
fs__reply_attr(fuse_req_t req, const struct store_inode *in)
{
	struct stat st;

	fs__inode_to_stat(in, &st);
	fuse_reply_attr(req, &st, FS_ATTR_TIMEOUT);
}

int
fs__commit_or_abort(struct store_txn *t, int rc)
{
	if (rc < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

/* ---- lookup, forget, getattr -------------------------------------------- */

void
fs__op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode dir, in;
	struct store_txn *t;
	uint64_t ino;
	int rc, negative = 0;

	if ((rc = fs__check_name(name)) < 0)
		return fs__reply_err(req, rc);
	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return fs__reply_err(req, rc);
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
		rc = fs__parent(t, parent, &ino);
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
		return fs__reply_err(req, rc);
	fs__reply_entry(req, &in);
}

void
fs__op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode in;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return fs__reply_err(req, rc);
	rc = store_ino_get(t, ino, &in);
	store_txn_abort(t);
	if (rc < 0)
		return fs__reply_err(req, rc);
	fs__reply_attr(req, &in);
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
		    fs__in_group(req, a->st_gid))))
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
		    !fs__in_group(req, gid))
			m &= ~S_ISGID;
		mode = (mode & S_IFMT) | m;
	}
	if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    !S_ISDIR(mode)) {
		mode &= ~S_ISUID;
		if ((mode & S_IXGRP) || (!root &&
		    !fs__in_group(req, gid)))
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
			if (fs__may_access(req, in, W_OK) < 0)
				return -EACCES;
		}
	}
	in->mode = mode;
	in->uid = uid;
	in->gid = gid;
	if (to_set & FUSE_SET_ATTR_ATIME) {
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			store_inode_stamp(in, STORE_ATIME, now);
		else
			store_inode_stamp(in, STORE_ATIME, &a->st_atim);
	}
	if (to_set & FUSE_SET_ATTR_MTIME) {
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			store_inode_stamp(in, STORE_MTIME, now);
		else
			store_inode_stamp(in, STORE_MTIME, &a->st_mtim);
	}
	store_inode_stamp(in, STORE_CTIME, kernel ? &a->st_ctim : now);
	return 0;
}

void
fs__op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
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
		return fs__reply_err(req, rc);
	rc = store_ino_get(t, ino, &in);
	store_txn_abort(t);
	if (rc < 0)
		return fs__reply_err(req, rc);
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (S_ISDIR(in.mode))
			return fs__reply_err(req, -EISDIR);
		if (!S_ISREG(in.mode))
			return fs__reply_err(req, -EINVAL);
	}
	probe = in;
	if ((rc = apply_attrs(req, &probe, attr, to_set, &now)) < 0)
		return fs__reply_err(req, rc);

	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size < 0)
			return fs__reply_err(req, -EINVAL);
		rc = owner_truncate(fs->conf.owner, ino, attr->st_size, &in);
		if (rc < 0)
			return fs__reply_err(req, rc);
		if (!(to_set & ~FUSE_SET_ATTR_SIZE))
			return fs__reply_attr(req, &in);
	}

	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return fs__reply_err(req, rc);
	if ((rc = store_ino_get(t, ino, &in)) == 0 &&
	    (rc = apply_attrs(req, &in, attr, to_set, &now)) == 0)
		rc = store_ino_put(t, &in);
	if ((rc = fs__commit_or_abort(t, rc)) < 0)
		return fs__reply_err(req, rc);
	fs__reply_attr(req, &in);
}

int
fs__chmod(fuse_req_t req, fuse_ino_t ino, uint32_t perm)
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
			store_inode_touch(&in, STORE_CTIME);
			rc = store_ino_put(t, &in);
		}
	}
	if ((rc = fs__commit_or_abort(t, rc)) < 0)
		return rc;
	/* Not a setattr: the kernel would keep the old mode for its
	 * permission checks until the attributes time out. */
	fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
	return 0;
}

void
fs__op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode in;
	struct store_txn *t;
	char buf[PATH_MAX + 1];
	int rc;

	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return fs__reply_err(req, rc);
	if ((rc = store_ino_get(t, ino, &in)) == 0) {
		if (!S_ISLNK(in.mode))
			rc = -EINVAL;
		else
			rc = store_symlink_get(t, ino, buf, sizeof buf);
	}
	store_txn_abort(t);
	if (rc < 0)
		return fs__reply_err(req, rc);
	fuse_reply_readlink(req, buf);
}



void
fs__op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode in;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return fs__reply_err(req, rc);
	rc = store_ino_get(t, ino, &in);
	store_txn_abort(t);
	if (rc == 0 && mask != F_OK)
		rc = fs__may_access(req, &in, mask);
	fs__reply_err(req, rc);
}

/* Space is what online suppliers offer, less the erasure code's overhead
 * (owner_space). */
void
fs__op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs__from_req(req);
	uint64_t total, avail;
	struct statvfs sv;

	owner_space(fs->conf.owner, &total, &avail);
	memset(&sv, 0, sizeof sv);
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = total / 4096;
	sv.f_bfree = avail / 4096;
	sv.f_bavail = sv.f_bfree;
	sv.f_files = 1ULL << 32;
	sv.f_ffree = 1ULL << 32;
	sv.f_favail = sv.f_ffree;
	sv.f_namemax = STORE_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

