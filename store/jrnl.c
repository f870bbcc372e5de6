/* store/jrnl.c - write-back journal staging files: <dir>/journal/<ino>.<bno>
 * (decimal), the newest plaintext of one block, sparse. The matching LMDB
 * records (store_jrnl_put...) live in store/meta.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store/internal.h"

static int
jrnl_path(char *buf, size_t size, struct store *st, uint64_t ino,
    uint64_t bno)
{
	int n = snprintf(buf, size, "%s/%" PRIu64 ".%" PRIu64, st->jdir,
	    ino, bno);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int
store_jrnl_fd(struct store *st, uint64_t ino, uint64_t bno, int flags)
{
	char path[4096];
	int fd, rc;

	if ((rc = jrnl_path(path, sizeof path, st, ino, bno)) < 0)
		return rc;
	fd = open(path, flags | O_CLOEXEC, 0600);
	/* The directory is made at store_open; someone may have removed it. */
	if (fd < 0 && errno == ENOENT && (flags & O_CREAT) &&
	    (mkdir(st->jdir, 0700) == 0 || errno == EEXIST))
		fd = open(path, flags | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

int
store_jrnl_unlink(struct store *st, uint64_t ino, uint64_t bno)
{
	char path[4096];
	int rc;

	if ((rc = jrnl_path(path, sizeof path, st, ino, bno)) < 0)
		return rc;
	return unlink(path) == 0 ? 0 : -errno;
}

uint64_t
store_jrnl_bytes(struct store *st)
{
	struct dirent *de;
	struct stat sb;
	uint64_t total = 0;
	DIR *d;

	if (!(d = opendir(st->jdir))) {
		if (errno != ENOENT)
			log_warn("store: %s: %s", st->jdir, strerror(errno));
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(sb.st_mode))
			total += (uint64_t)sb.st_blocks * 512;
	}
	closedir(d);
	return total;
}
