/* fs/xattr.c - extended attributes: user.*, trusted.*, security.* kept in
 * the store; "user.peerfs.*" on the root answered by fs/ctl.c, and
 * "user.peerfs.pin" on any inode by fs/pin.c; no ACLs (system.* is
 * EOPNOTSUPP, so tools fall back to the mode bits), except what ext4
 * does without storing one: an access ACL equivalent to mode bits is set
 * as those bits, and removing (or setting empty) an ACL succeeds. cp -a
 * sets such an ACL on every file and followed the refusal with a chmod,
 * a second round trip. Names outside those namespaces (such as
 * FS_PARENT_XATTR) are never shown. */
#include <errno.h>
#include <stdlib.h>
#include <sys/xattr.h>

#include "fs/internal.h"
#include "log.h"

static int
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* 0 for a name users may keep here, -EOPNOTSUPP otherwise. */
static int
check_ns(const char *name)
{
	if (has_prefix(name, "user.") || has_prefix(name, "trusted.") ||
	    has_prefix(name, "security."))
		return strlen(name) > 255 ? -ERANGE : 0;
	return -EOPNOTSUPP;
}

static int
is_ctl(fuse_ino_t ino, const char *name)
{
	return ino == FUSE_ROOT_ID && has_prefix(name, FS_CTL_PREFIX);
}

/* Computed from the block records of every regular file: read-only, not
 * listed, never stored. */

static int
is_red(const char *name)
{
	return strcmp(name, FS_CTL_REDUNDANCY) == 0;
}

/* Shown in listxattr: trusted.* only to root, as Linux does. */
static int
listed(fuse_req_t req, const char *name)
{
	if (has_prefix(name, "trusted."))
		return fuse_req_ctx(req)->uid == 0;
	return check_ns(name) == 0;
}

/* A read-write change of ino's xattrs that also bumps ctime. */
static int
change(struct fs *fs, fuse_ino_t ino, const char *name, const void *val,
    size_t len, int flags, int del)
{
	struct store_inode in;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(fs->conf.store, 0, &t)) < 0)
		return rc;
	if ((rc = store_ino_get(t, ino, &in)) < 0)
		goto out;
	if (del)
		rc = store_xattr_del(t, ino, name);
	else
		rc = store_xattr_set(t, ino, name, val, len, flags);
	if (rc == -ENOENT)
		rc = -ENODATA;
	if (rc < 0)
		goto out;
	store_inode_touch(&in, STORE_CTIME);
	rc = store_ino_put(t, &in);
out:
	if (rc < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

/* The permission bits of a POSIX access ACL in its xattr form (u32 LE
 * version 2, then entries u16 tag, u16 perm, u32 id) that names only the
 * owner, the group and others, each once; 1 for the empty ACL (remove
 * it), -EOPNOTSUPP for any other ACL (named users or groups need real
 * ACLs), -EINVAL when malformed. */
static int
acl_mode(const unsigned char *v, size_t size, uint32_t *perm)
{
	enum { USER_OBJ = 1, GROUP_OBJ = 4, OTHER = 0x20 };
	int seen = 0;

	if (size < 4 || (size - 4) % 8 != 0 || v[0] != 2 || v[1] || v[2] ||
	    v[3])
		return -EINVAL;
	if (size == 4)
		return 1;	/* no ACL: there is none to remove */
	*perm = 0;
	for (size_t off = 4; off < size; off += 8) {
		unsigned tag = v[off] | v[off + 1] << 8;
		unsigned bits = v[off + 2] | v[off + 3] << 8;
		int shift = tag == USER_OBJ ? 6 : tag == GROUP_OBJ ? 3 :
		    tag == OTHER ? 0 : -1;

		if (shift < 0 || (seen & tag))
			return -EOPNOTSUPP;
		if (bits & ~7u)
			return -EINVAL;
		seen |= tag;
		*perm |= bits << shift;
	}
	return seen == (USER_OBJ | GROUP_OBJ | OTHER) ? 0 : -EINVAL;
}

#define ACL_ACCESS	"system.posix_acl_access"
#define ACL_DEFAULT	"system.posix_acl_default"

static int
is_acl(const char *name)
{
	return strcmp(name, ACL_ACCESS) == 0 || strcmp(name, ACL_DEFAULT) == 0;
}

/* Removing an ACL that does not exist, as ext4 allows: the owner (or
 * root) may, and nothing changes. */
static int
acl_none(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs__from_req(req);
	uid_t uid = fuse_req_ctx(req)->uid;
	struct store_inode in;
	struct store_txn *t;
	int rc;

	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return rc;
	rc = store_ino_get(t, ino, &in);
	store_txn_abort(t);
	if (rc < 0)
		return rc;
	return uid == 0 || uid == in.uid ? 0 : -EPERM;
}

void
fs__op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
    const char *value, size_t size, int flags)
{
	struct fs *fs = fs__from_req(req);
	int rc;

	if (strcmp(name, FS_CTL_PIN) == 0)	/* fs/pin.c, any inode */
		return fs__reply_err(req, owner_pin_set(fs->conf.owner, ino, value,
		    size));
	if (is_ctl(ino, name)) {
		if ((rc = fs__ctl_may(req)) < 0)
			return fs__reply_err(req, rc);
		return fs__reply_err(req, fs__ctl_set(fs, name, value,
		    size));
	}
	if (owner_readonly(fs->conf.owner, NULL, 0))	/* another node writes */
		return fs__reply_err(req, -EROFS);
	if (is_red(name))
		return fs__reply_err(req, -EPERM);
	if (is_acl(name)) {
		uint32_t perm;

		/* Like the kernel's ACL handlers: no create/replace flags.
		 * A default ACL can only be removed (there is none). */
		rc = acl_mode((const unsigned char *)value, size, &perm);
		if (rc == 1)
			rc = acl_none(req, ino);
		else if (rc == 0 && strcmp(name, ACL_ACCESS) == 0)
			rc = fs__chmod(req, ino, perm);
		else if (rc == 0)
			rc = -EOPNOTSUPP;
		return fs__reply_err(req, rc);
	}
	if ((rc = check_ns(name)) < 0)
		return fs__reply_err(req, rc);
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return fs__reply_err(req, -EINVAL);
	fs__reply_err(req, change(fs, ino, name, value, size, flags, 0));
}

/* Answers a get or list of len bytes in val for a caller's size. */
static void
reply_value(fuse_req_t req, const void *val, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

static void
get_red(fuse_req_t req, struct fs *fs, fuse_ino_t ino, size_t size)
{
	struct store_inode in;
	struct store_txn *t;
	char val[64];
	int rc;

	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) == 0) {
		rc = store_ino_get(t, ino, &in);
		store_txn_abort(t);
	}
	if (rc == 0 && !S_ISREG(in.mode))
		rc = -ENODATA;
	if (rc == 0)
		rc = owner_redundancy(fs->conf.owner, ino, val, sizeof val);
	if (rc < 0)
		return fs__reply_err(req, rc);
	reply_value(req, val, (size_t)rc, size);
}

void
fs__op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode in;
	struct store_txn *t;
	char *buf = NULL;
	size_t len;
	int rc;

	if (is_red(name) && ino != FUSE_ROOT_ID)
		return get_red(req, fs, ino, size);
	if (strcmp(name, FS_CTL_PIN) == 0 || is_ctl(ino, name)) {
		rc = strcmp(name, FS_CTL_PIN) == 0 ?
		    owner_pin_info(fs->conf.owner, ino, &buf, &len) :
		    (rc = fs__ctl_may(req)) < 0 ? rc :
		    fs__ctl_get(fs, name, &buf, &len);
		if (rc < 0)
			return fs__reply_err(req, rc);
		reply_value(req, buf, len, size);
		free(buf);
		return;
	}
	if ((rc = check_ns(name)) < 0)
		return fs__reply_err(req, rc);
	if (size && !(buf = malloc(size)))
		return fs__reply_err(req, -ENOMEM);
	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) == 0) {
		if ((rc = store_ino_get(t, ino, &in)) == 0)
			rc = store_xattr_get(t, ino, name, buf, size);
		store_txn_abort(t);
	}
	if (rc == -ENOENT)
		rc = -ENODATA;
	if (rc < 0)
		fs__reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, rc);
	else
		fuse_reply_buf(req, buf, rc);
	free(buf);
}

void
fs__op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs__from_req(req);
	struct store_inode in;
	struct store_txn *t;
	char *buf = NULL, *p, *end, *out;
	int rc, len;

	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return fs__reply_err(req, rc);
	if ((rc = store_ino_get(t, ino, &in)) == 0 &&
	    (rc = store_xattr_list(t, ino, NULL, 0)) > 0) {
		len = rc;
		if (!(buf = malloc(len)))
			rc = -ENOMEM;
		else
			rc = store_xattr_list(t, ino, buf, len);
	}
	store_txn_abort(t);
	if (rc < 0) {
		free(buf);
		return fs__reply_err(req, rc);
	}
	/* Drops hidden names in place. */
	out = buf;
	for (p = buf, end = buf + (buf ? rc : 0); p < end; ) {
		size_t n = strnlen(p, end - p);

		if (p + n == end)
			break;	/* unterminated: the store's bug */
		if (listed(req, p)) {
			memmove(out, p, n + 1);
			out += n + 1;
		}
		p += n + 1;
	}
	reply_value(req, buf, out - buf, size);
	free(buf);
}

void
fs__op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = fs__from_req(req);
	int rc;

	if (strcmp(name, FS_CTL_PIN) == 0)
		return fs__reply_err(req, owner_pin_set(fs->conf.owner, ino, "0", 1));
	if (is_ctl(ino, name) || is_red(name))
		return fs__reply_err(req, is_red(name) ? -EPERM : -ENODATA);
	if (owner_readonly(fs->conf.owner, NULL, 0))
		return fs__reply_err(req, -EROFS);
	if (is_acl(name))
		return fs__reply_err(req, acl_none(req, ino));
	if ((rc = check_ns(name)) < 0)
		return fs__reply_err(req, rc);
	fs__reply_err(req, change(fs, ino, name, NULL, 0, 0, 1));
}

