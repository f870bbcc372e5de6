/* store/pin.c - pinned blocks: <dir>/pinned/<block id hex>, the sealed
 * ciphertext of a block kept on the owner's own disk so that a pinned
 * subtree reads with no supplier reachable. Ciphertext, not plaintext:
 * the file is checked (id and AEAD tag) when opened, so a damaged or
 * planted file is never served, and the disk holds nothing readable
 * without the block key in the metadata. Files are written to a
 * temporary name, fsync'd and renamed, so a crash leaves a whole block or
 * none (stray temporaries are skipped and removed by store_pin_list). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store/internal.h"
#include "util.h"

#define HEX_ID (2 * CR_ID_BYTES)

static int
pin_dir(char *buf, size_t size, struct store *st)
{
	int n = snprintf(buf, size, "%s/pinned", st->dir);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int
pin_path(char *buf, size_t size, struct store *st,
    const unsigned char id[CR_ID_BYTES], const char *suffix)
{
	char hex[HEX_ID + 1];
	int n;

	hex_encode(hex, id, CR_ID_BYTES);
	n = snprintf(buf, size, "%s/pinned/%s%s", st->dir, hex, suffix);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int
store_pin_put(struct store *st, const unsigned char id[CR_ID_BYTES],
    const void *data, size_t len)
{
	char dir[4096], tmp[4096], path[4096];
	int fd, rc;

	if ((rc = pin_dir(dir, sizeof dir, st)) < 0 ||
	    (rc = pin_path(path, sizeof path, st, id, "")) < 0 ||
	    (rc = pin_path(tmp, sizeof tmp, st, id, ".tmp")) < 0)
		return rc;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	/* Two threads keeping the same block write the same bytes: O_TRUNC
	 * on one temporary is fine, the rename is atomic either way. */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return -errno;
	rc = write_all(fd, data, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	return 0;
}

ssize_t
store_pin_get(struct store *st, const unsigned char id[CR_ID_BYTES],
    void *buf, size_t cap)
{
	char path[4096];
	struct stat sb;
	ssize_t n, got = 0;
	int fd, rc;

	if ((rc = pin_path(path, sizeof path, st, id, "")) < 0)
		return rc;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(fd, &sb) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if ((uint64_t)sb.st_size > cap) {
		close(fd);
		return -EFBIG;
	}
	while (got < sb.st_size) {
		n = pread(fd, (char *)buf + got, (size_t)(sb.st_size - got), got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			close(fd);
			return rc;
		}
		got += n;
	}
	close(fd);
	return got;
}

int
store_pin_has(struct store *st, const unsigned char id[CR_ID_BYTES])
{
	char path[4096];
	int rc;

	if ((rc = pin_path(path, sizeof path, st, id, "")) < 0)
		return rc;
	return access(path, F_OK) == 0 ? 1 : errno == ENOENT ? 0 : -errno;
}

int
store_pin_del(struct store *st, const unsigned char id[CR_ID_BYTES])
{
	char path[4096];
	int rc;

	if ((rc = pin_path(path, sizeof path, st, id, "")) < 0)
		return rc;
	return unlink(path) == 0 ? 0 : -errno;
}

static int
unhex(unsigned char *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int v = 0;

		for (int j = 0; j < 2; j++) {
			char c = s[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else
				return -EINVAL;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

int
store_pin_list(struct store *st,
    int (*cb)(void *arg, const unsigned char *id, uint64_t bytes), void *arg)
{
	char dir[4096];
	unsigned char id[CR_ID_BYTES];
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int rc;

	if ((rc = pin_dir(dir, sizeof dir, st)) < 0)
		return rc;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -errno;
	rc = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len == HEX_ID + 4 &&
		    strcmp(de->d_name + HEX_ID, ".tmp") == 0) {
			/* Left by a crash before the rename. */
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (len != HEX_ID || unhex(id, de->d_name, CR_ID_BYTES) < 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, 0) != 0)
			continue;
		rc = cb(arg, id, (uint64_t)sb.st_size);
	}
	closedir(d);
	return rc;
}
