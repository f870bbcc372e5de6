/* fs/fs.c - the FUSE session: the one operation table, mounting and the
 * multi-threaded loop. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/internal.h"
#include "log.h"

#define FS_MAX_WRITE (1u << 20)
/* Two 4 MiB blocks: the kernel asks for the next block while the
 * current one is read, and FUSE threads fetch both at once. */
#define FS_READAHEAD (8u << 20)

/* The kernel starts a FUSE mount's readahead at 128 KiB and INIT can
 * only lower it: raise it through the mount's bdi before INIT is
 * answered. Best effort (needs root; a failure only costs speed). */
static void
raise_readahead(const char *mountpoint)
{
	char line[4096], path[128], dev[32] = "", mnt[PATH_MAX];
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (f == NULL || realpath(mountpoint, mnt) == NULL) {
		if (f)
			fclose(f);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		char d[32], m[4096];

		/* id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*s %*s %31s %*s %4095s", d, m) == 2 &&
		    strcmp(m, mnt) == 0)
			snprintf(dev, sizeof dev, "%s", d);
	}
	fclose(f);
	if (!dev[0])
		return;
	snprintf(path, sizeof path, "/sys/class/bdi/%s/read_ahead_kb", dev);
	if ((f = fopen(path, "w")) == NULL) {
		log_debug("readahead: %s: %s", path, strerror(errno));
		return;
	}
	fprintf(f, "%u\n", FS_READAHEAD / 1024);
	if (fclose(f) != 0)
		log_debug("readahead: %s: %s", path, strerror(errno));
}

static void
fs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* libfuse's buffer holds 256 pages, so 1 MiB writes arrive whole. */
	conn->max_write = FS_MAX_WRITE;
	conn->max_readahead = FS_READAHEAD;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Writes must reach owner/ in order and with their real offsets;
	 * the kernel's writeback cache would reorder and merge them. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
}

static void
fs_log_from_fuse(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	if (level <= FUSE_LOG_ERR)
		log_error("fuse: %s", line);
	else if (level <= FUSE_LOG_NOTICE)
		log_info("fuse: %s", line);
	else
		log_debug("fuse: %s", line);
}

static void fs_init(void *userdata, struct fuse_conn_info *conn);

/* Another node of this owner holds the write lease (owner_readonly):
 * every change is refused, as on a read-only mount. */
#define RO_GUARD(req)							\
	do {								\
		if (owner_readonly(fs__from_req(req)->conf.owner, NULL, 0)) \
			return (void)fuse_reply_err(req, EROFS);	\
	} while (0)

static void
ro_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
    struct fuse_file_info *fi)
{
	RO_GUARD(req);
	fs__op_setattr(req, ino, attr, to_set, fi);
}

static void
ro_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    dev_t rdev)
{
	RO_GUARD(req);
	fs__op_mknod(req, parent, name, mode, rdev);
}

static void
ro_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	RO_GUARD(req);
	fs__op_mkdir(req, parent, name, mode);
}

static void
ro_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
    const char *name)
{
	RO_GUARD(req);
	fs__op_symlink(req, target, parent, name);
}

static void
ro_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
    struct fuse_file_info *fi)
{
	RO_GUARD(req);
	fs__op_create(req, parent, name, mode, fi);
}

static void
ro_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
    const char *newname)
{
	RO_GUARD(req);
	fs__op_link(req, ino, newparent, newname);
}

static void
ro_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	RO_GUARD(req);
	fs__op_unlink(req, parent, name);
}

static void
ro_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	RO_GUARD(req);
	fs__op_rmdir(req, parent, name);
}

static void
ro_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	RO_GUARD(req);
	fs__op_rename(req, parent, name, newparent, newname, flags);
}

static void
ro_write(fuse_req_t req, fuse_ino_t ino, const char *src, size_t size,
    off_t off, struct fuse_file_info *fi)
{
	RO_GUARD(req);
	fs__op_write(req, ino, src, size, off, fi);
}

static void
ro_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		RO_GUARD(req);
	fs__op_open(req, ino, fi);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init		= fs_init,
	.lookup		= fs__op_lookup,
	.forget		= fs__op_forget,
	.forget_multi	= fs__op_forget_multi,
	.getattr	= fs__op_getattr,
	.setattr	= ro_setattr,
	.readlink	= fs__op_readlink,
	.access		= fs__op_access,
	.statfs		= fs__op_statfs,
	.mknod		= ro_mknod,
	.mkdir		= ro_mkdir,
	.symlink	= ro_symlink,
	.create		= ro_create,
	.link		= ro_link,
	.unlink		= ro_unlink,
	.rmdir		= ro_rmdir,
	.rename		= ro_rename,
	.opendir	= fs__op_opendir,
	.readdir	= fs__op_readdir,
	.readdirplus	= fs__op_readdirplus,
	.releasedir	= fs__op_releasedir,
	.fsyncdir	= fs__op_fsyncdir,
	.setxattr	= fs__op_setxattr,
	.getxattr	= fs__op_getxattr,
	.listxattr	= fs__op_listxattr,
	.removexattr	= fs__op_removexattr,
	.open		= ro_open,
	.read		= fs__op_read,
	.write		= ro_write,
	.release	= fs__op_release,
	.fsync		= fs__op_fsync,
};

int
fs_new(struct fs **out, const struct fs_conf *conf)
{
	struct fs *fs;
	int rc;

	if (!(fs = calloc(1, sizeof *fs)))
		return -ENOMEM;
	fs->conf = *conf;
	if ((rc = fs__lookups_init(fs)) < 0) {
		free(fs);
		return rc;
	}
	*out = fs;
	return 0;
}

int
fs_mount(struct fs *fs, const char *mountpoint, const char *fuse_opts)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct stat st;
	int rc = -EIO;

	if (stat(mountpoint, &st) != 0) {
		rc = -errno;
		log_error("mountpoint %s: %s", mountpoint, strerror(errno));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("mountpoint %s: not a directory", mountpoint);
		return -ENOTDIR;
	}
	fuse_set_log_func(fs_log_from_fuse);

	/* default_permissions: the kernel checks mode bits exactly as for a
	 * local filesystem, so other users see ext4's rules. */
	if (fuse_opt_add_arg(&args, "peerfs") ||
	    fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, "default_permissions,fsname=peerfs,subtype=peerfs"))
		goto out;
	if (fuse_opts && *fuse_opts &&
	    (fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, fuse_opts)))
		goto out;
	fs->se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, fs);
	if (!fs->se) {
		log_error("cannot create the FUSE session (bad -o options?)");
		rc = -EINVAL;
		goto out;
	}
	if (fuse_set_signal_handlers(fs->se) != 0) {
		rc = -EIO;
		goto out_destroy;
	}
	if (fuse_session_mount(fs->se, mountpoint) != 0) {
		log_error("cannot mount on %s (is /dev/fuse usable, the "
		    "directory empty or -o nonempty given?)", mountpoint);
		rc = -EIO;
		goto out_signals;
	}
	raise_readahead(mountpoint);
	if (!(fs->mountpoint = strdup(mountpoint))) {
		rc = -ENOMEM;
		fuse_session_unmount(fs->se);
		goto out_signals;
	}
	fuse_opt_free_args(&args);
	return 0;

out_signals:
	fuse_remove_signal_handlers(fs->se);
out_destroy:
	fuse_session_destroy(fs->se);
	fs->se = NULL;
out:
	fuse_opt_free_args(&args);
	return rc;
}

int
fs_loop(struct fs *fs)
{
	struct fuse_loop_config cfg = {
		.clone_fd = 0,
		.max_idle_threads = (unsigned)fs->conf.max_threads,
	};
	int rc;

	rc = fuse_session_loop_mt(fs->se, &cfg);
	fuse_session_unmount(fs->se);
	fuse_remove_signal_handlers(fs->se);
	fuse_session_destroy(fs->se);
	fs->se = NULL;
	return rc < 0 ? rc : 0;
}

void
fs_free(struct fs *fs)
{
	if (!fs)
		return;
	fs__lookups_destroy(fs);
	free(fs->mountpoint);
	free(fs);
}
