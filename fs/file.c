/* fs/file.c - open, read, write, release and fsync: each one call into
 * owner/, which holds the journal, the cache and the network. A FUSE
 * worker that reads an uncached block waits while owner/ fetches it, as
 * sshfs's workers wait for their replies; the other workers keep
 * serving. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "fs/internal.h"

static struct owner_file *
file_of(const struct fuse_file_info *fi)
{
	return (struct owner_file *)(uintptr_t)fi->fh;
}

int
fs__file_open(struct fs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	struct owner_file *f;
	int rc;

	if ((rc = owner_file_open(fs->conf.owner, ino, &f)) < 0)
		return rc;
	fi->fh = (uintptr_t)f;
	/* Every change to a file's bytes passes through this kernel (one
	 * mount per home), so its page cache stays right across opens;
	 * not on a read-only node: the writer is another machine. */
	fi->keep_cache = !owner_readonly(fs->conf.owner, NULL, 0);
	fi->direct_io = 0;
	return 0;
}

void
fs__op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs__from_req(req);
	int rc = fs__file_open(fs, ino, fi);

	if (rc < 0)
		fs__reply_err(req, rc);
	else if (fuse_reply_open(req, fi) != 0)	/* interrupted */
		owner_file_close(fs->conf.owner, ino, file_of(fi));
}

void
fs__op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	struct fs *fs = fs__from_req(req);
	ssize_t n;
	char *buf;

	if (off < 0 || size == 0)
		return (void)fuse_reply_buf(req, NULL, 0);
	if ((buf = malloc(size)) == NULL)
		return fs__reply_err(req, -ENOMEM);
	n = owner_read(fs->conf.owner, file_of(fi), ino, (uint64_t)off, size,
	    buf);
	if (n < 0)
		fs__reply_err(req, n == -ENOENT || n == -ENOMEM ? (int)n :
		    -EIO);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

void
fs__op_write(fuse_req_t req, fuse_ino_t ino, const char *src, size_t size,
    off_t off, struct fuse_file_info *fi)
{
	ssize_t n;

	if (off < 0)
		return fs__reply_err(req, -EINVAL);
	n = owner_write(fs__from_req(req)->conf.owner, ino, (uint64_t)off,
	    src, size);
	if (n < 0)
		fs__reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* There is no flush handler: it would only repeat release's work on
 * every close(2), and its absence (ENOSYS) tells the kernel to stop
 * sending FLUSH, a round trip per close that cp -a waits for. */
void
fs__op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	owner_file_close(fs__from_req(req)->conf.owner, ino, file_of(fi));
	fi->fh = 0;
	fuse_reply_err(req, 0);
}

void
fs__op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	int rc = owner_fsync(fs__from_req(req)->conf.owner, ino);

	fuse_reply_err(req, rc < 0 ? EIO : 0);
}
