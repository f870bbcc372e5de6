/* fs/ctl.h - the control attributes: the contract between a mount's FUSE
 * face (fs/ctl.c, fs/xattr.c) and the commands that talk to it through
 * the mountpoint alone (cli/). On the mount's root:
 *   get FS_CTL_STATUS        status as JSON
 *   get FS_CTL_STATUS_TEXT   status as lines for people
 *   set FS_CTL_SYNC          returns when everything written is on the
 *                            network (data, then an index version)
 *   set FS_CTL_DROP_CACHE    empties the block cache
 *   set FS_CTL_CHECK         audits every fragment, waits for the
 *                            rebuilds of what it found
 *   get FS_CTL_REPORT        what the last check found
 *   get FS_CTL_VERSIONS      index versions on the suppliers, "seq time
 *                            size" lines, newest first
 * On any inode:
 *   get/set FS_CTL_PIN       pin ("1") / unpin ("0") a subtree; get
 *                            describes it as JSON
 *   get FS_CTL_REDUNDANCY    a regular file: "6/6", "4/6 rebuilding",
 *                            "pending" */
#ifndef PEERFS_FS_CTL_H
#define PEERFS_FS_CTL_H

#define FS_CTL_PREFIX		"user.peerfs."
#define FS_CTL_STATUS		FS_CTL_PREFIX "status"
#define FS_CTL_STATUS_TEXT	FS_CTL_PREFIX "status.text"
#define FS_CTL_SYNC		FS_CTL_PREFIX "sync"
#define FS_CTL_DROP_CACHE	FS_CTL_PREFIX "drop_cache"
#define FS_CTL_CHECK		FS_CTL_PREFIX "check"
#define FS_CTL_REPORT		FS_CTL_PREFIX "check.report"
#define FS_CTL_VERSIONS		FS_CTL_PREFIX "versions"
#define FS_CTL_PIN		FS_CTL_PREFIX "pin"
#define FS_CTL_REDUNDANCY	FS_CTL_PREFIX "redundancy"

#endif
