/* fs/ctl.c - the control attributes on the mount's root (fs/ctl.h), so
 * that `peerfs status/sync/check/umount MOUNTPOINT` need nothing but the
 * mountpoint. The answers come from owner/. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/internal.h"
#include "log.h"
#include "util.h"

int
fs__ctl_may(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);

	/* The daemon runs as the uid that mounted. */
	return c->uid == 0 || c->uid == getuid() ? 0 : -EACCES;
}

int
fs__ctl_get(struct fs *fs, const char *name, char **val, size_t *len)
{
	if (strcmp(name, FS_CTL_REPORT) == 0)
		return owner_check_report(fs->conf.owner, val, len);
	if (strcmp(name, FS_CTL_VERSIONS) == 0)
		return owner_versions(fs->conf.owner, val, len);
	if (strcmp(name, FS_CTL_STATUS_TEXT) == 0)
		return owner_status(fs->conf.owner, fs->mountpoint, 1, val, len);
	if (strcmp(name, FS_CTL_STATUS) == 0)
		return owner_status(fs->conf.owner, fs->mountpoint, 0, val, len);
	return -ENODATA;
}

int
fs__ctl_set(struct fs *fs, const char *name, const void *val, size_t len)
{
	if (strcmp(name, FS_CTL_SYNC) == 0)
		return owner_sync(fs->conf.owner);
	if (strcmp(name, FS_CTL_CHECK) == 0)
		return owner_check(fs->conf.owner);
	/* Benchmarks and tests read cold data without remounting. */
	if (strcmp(name, FS_CTL_DROP_CACHE) == 0) {
		owner_drop_cache(fs->conf.owner);
		return 0;
	}
	return -EPERM;
}
