/* store/jrnl.c - write-back journal staging files: <dir>/journal/<ino>.<bno>
 * (decimal), the newest plaintext of one block, sparse. The matching LMDB
 * records (store_jrnl_put...) live in store/meta.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Names are "<ino>.<bno>" in decimal; anything else is not ours. */
static int
parse_name(const char *s, uint64_t *ino, uint64_t *bno)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*ino = strtoull(s, &end, 10);
	if (errno || *end != '.' || end[1] < '0' || end[1] > '9')
		return -EINVAL;
	*bno = strtoull(end + 1, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

int
store_jrnl_scan(struct store *st,
    int (*cb)(void *arg, uint64_t ino, uint64_t bno), void *arg)
{
	struct dirent *de;
	uint64_t ino, bno;
	int rc = 0;
	DIR *d;

	if (!(d = opendir(st->jdir)))
		return errno == ENOENT ? 0 : -errno;
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || parse_name(de->d_name, &ino, &bno))
			continue;
		rc = cb(arg, ino, bno);
	}
	if (rc == 0 && de == NULL && errno)
		rc = -errno;
	closedir(d);
	return rc;
}
