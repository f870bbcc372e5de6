/* store/jrnl.c - write-back journal staging files and their range lists
 * (formats in store/store.h). The matching LMDB records (store_jrnl_put...)
 * live in store/meta.c.
 *
 * A staging file whose block is uploaded is emptied and moved to
 * <dir>/spare/<n> (up to SPARE_MAX of them), and a new staging file is a
 * spare one renamed, when there is one: see struct store. Spare files are
 * empty before they get their spare name, so a crash leaves either an
 * empty staging file without a record (the stale sweep removes it) or an
 * empty spare. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store/internal.h"
#include "util.h"

#define SPARE_MAX 4096
#define SPARE_LOW 512		/* fewer: the maker is woken */
#define SPARE_HIGH 1024		/* it makes spares up to here */
#define SPARE_RETRY_MS 1000	/* after a create failed (disk full) */
#define RANGES_BIT	(1ull << 63)	/* the range list's name */
#define RANGES_MAX	(1u << 20)	/* bytes of ranges, then fold */

static int
jrnl_path(char *buf, size_t size, struct store *st, uint64_t ino,
    uint64_t bno)
{
	int n = snprintf(buf, size, "%s/%" PRIu64 ".%" PRIu64, st->jdir,
	    ino, bno);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The spare maker's pass: while there are fewer than SPARE_LOW spares,
 * makes empty ones up to SPARE_HIGH, so that writes rename one instead of
 * creating a file. Idle until spare_take() kicks it; after a failed create
 * (disk full) it tries again in SPARE_RETRY_MS, or at the next kick. */
static int64_t
spare_pass(void *arg, int idx)
{
	struct store *st = arg;
	int failed = 0;

	pthread_mutex_lock(&st->spare_lock);
	if (st->nspare >= SPARE_LOW) {
		pthread_mutex_unlock(&st->spare_lock);
		return WORKER_IDLE;
	}
	while (st->spare_maker && st->nspare < SPARE_HIGH) {
		uint32_t n = st->spare_next++;
		char name[16];
		int fd;

		pthread_mutex_unlock(&st->spare_lock);
		snprintf(name, sizeof name, "%" PRIu32, n);
		fd = openat(st->sdir_fd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
		else if (errno != EEXIST)
			failed = 1;
		pthread_mutex_lock(&st->spare_lock);
		if (failed)
			break;
		/* Given-back spares may have filled the pool meanwhile. */
		if (fd >= 0 && st->nspare < SPARE_MAX)
			st->spare[st->nspare++] = n;
		else if (fd >= 0)
			unlinkat(st->sdir_fd, name, 0);
	}
	pthread_mutex_unlock(&st->spare_lock);
	return failed ? SPARE_RETRY_MS : WORKER_IDLE;
}

/* Adopts the empty files of <dir>/spare (a non-empty one is no spare:
 * removed), makes the directory if needed and starts the maker. */
int
store__spare_open(struct store *st)
{
	struct worker_conf c = { .name = "store-spares", .pass = spare_pass,
	    .arg = st };
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int fd;

	pthread_mutex_init(&st->spare_lock, NULL);
	if (!(st->spare = malloc(SPARE_MAX * sizeof *st->spare)))
		return -ENOMEM;
	if (mkdir(st->sdir, 0700) != 0 && errno != EEXIST)
		return -errno;
	st->sdir_fd = open(st->sdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->sdir_fd < 0 || (fd = dup(st->sdir_fd)) < 0)
		return -errno;
	if (!(d = fdopendir(fd))) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		char *end;
		unsigned long n;

		if (de->d_name[0] == '.')
			continue;
		errno = 0;
		n = strtoul(de->d_name, &end, 10);
		if (errno == 0 && *end == '\0' && n <= UINT32_MAX &&
		    st->nspare < SPARE_MAX &&
		    fstatat(st->sdir_fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) ==
		    0 && S_ISREG(sb.st_mode) && sb.st_size == 0) {
			st->spare[st->nspare++] = (uint32_t)n;
			if ((uint32_t)n >= st->spare_next)
				st->spare_next = (uint32_t)n + 1;
		} else {
			unlinkat(st->sdir_fd, de->d_name, 0);
		}
	}
	closedir(d);
	/* No other thread knows st yet: spare_maker is set unlocked, and
	 * before the maker's first pass (worker_start). */
	return worker_start(&st->spare_maker, &c);
}

/* spare_maker goes NULL first, under spare_lock: no kick reaches the
 * worker being freed, and a pass making spares stops at its next file. */
void
store__spare_maker_stop(struct store *st)
{
	struct worker *w;

	if (st->spare == NULL)		/* store__spare_open() did not get far */
		return;
	pthread_mutex_lock(&st->spare_lock);
	w = st->spare_maker;
	st->spare_maker = NULL;
	pthread_mutex_unlock(&st->spare_lock);
	worker_stop(w);
}

void
store__spare_close(struct store *st)
{
	store__spare_maker_stop(st);
	if (st->spare) {
		pthread_mutex_destroy(&st->spare_lock);
		free(st->spare);
		st->spare = NULL;
	}
	if (st->sdir_fd >= 0)
		close(st->sdir_fd);
	st->sdir_fd = -1;
}

/* Renames a spare file to path when path does not exist: 0, else -errno
 * (-EEXIST: path exists; -ENOENT: no spare, or no journal directory). */
static int
spare_take(struct store *st, const char *path)
{
	char name[16];
	uint32_t n;
	int rc;

	pthread_mutex_lock(&st->spare_lock);
	if (st->nspare == 0) {
		pthread_mutex_unlock(&st->spare_lock);
		return -ENOENT;
	}
	n = st->spare[--st->nspare];
	if (st->nspare < SPARE_LOW && st->spare_maker)
		worker_kick(st->spare_maker);
	pthread_mutex_unlock(&st->spare_lock);
	snprintf(name, sizeof name, "%" PRIu32, n);
	if (renameat2(st->sdir_fd, name, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	rc = -errno;
	if (rc != -ENOENT || faccessat(st->sdir_fd, name, F_OK, 0) == 0) {
		/* Still a spare (path exists, or no journal directory). */
		pthread_mutex_lock(&st->spare_lock);
		if (st->nspare < SPARE_MAX)
			st->spare[st->nspare++] = n;
		pthread_mutex_unlock(&st->spare_lock);
	}
	return rc;
}

/* Empties the staging file at path and makes it a spare: 0, or -errno
 * (then the caller unlinks it; -ENOENT: there is no such file). */
static int
spare_put(struct store *st, const char *path)
{
	char name[16];
	uint32_t n;
	int fd, rc = 0;

	pthread_mutex_lock(&st->spare_lock);
	if (st->nspare + 1 >= SPARE_MAX) {	/* one slot for a take's undo */
		pthread_mutex_unlock(&st->spare_lock);
		return -ENOSPC;
	}
	n = st->spare_next++;
	pthread_mutex_unlock(&st->spare_lock);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -errno;
	if (ftruncate(fd, 0) != 0)
		rc = -errno;
	close(fd);
	snprintf(name, sizeof name, "%" PRIu32, n);
	if (rc == 0 && renameat2(AT_FDCWD, path, st->sdir_fd, name,
	    RENAME_NOREPLACE) != 0)
		rc = -errno;
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&st->spare_lock);
	if (st->nspare < SPARE_MAX)
		st->spare[st->nspare++] = n;
	else
		unlinkat(st->sdir_fd, name, 0);
	pthread_mutex_unlock(&st->spare_lock);
	return 0;
}

/* Opens the staging file (range: its range list) of (ino, bno). */
static int
jrnl_open(struct store *st, uint64_t ino, uint64_t bno, int flags)
{
	char path[4096];
	int fd, rc;

	if ((rc = jrnl_path(path, sizeof path, st, ino, bno)) < 0)
		return rc;
	/* A spare file renamed is a new, empty staging file. Not truncated
	 * again: ext4 marks a file truncated to 0 for a flush at its close
	 * (auto_da_alloc), which put one disk write on every small file. */
	if ((flags & O_CREAT) && spare_take(st, path) == 0)
		flags &= ~(O_CREAT | O_EXCL | O_TRUNC);
	fd = open(path, flags | O_CLOEXEC, 0600);
	/* The directory is made at store_open; someone may have removed it. */
	if (fd < 0 && errno == ENOENT && (flags & O_CREAT) &&
	    (mkdir(st->jdir, 0700) == 0 || errno == EEXIST))
		fd = open(path, flags | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

static int
pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	size_t n = 0;

	while (n < len) {
		ssize_t r = pwrite(fd, (const char *)buf + n, len - n, off + n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		n += r;
	}
	return 0;
}

/* Reads up to len bytes at off; *got gets how many there were. */
static int
pread_full(int fd, void *buf, size_t len, off_t off, size_t *got)
{
	size_t n = 0;

	while (n < len) {
		ssize_t r = pread(fd, (char *)buf + n, len - n, off + n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += r;
	}
	*got = n;
	return 0;
}

int
store_jrnl_write(struct store *st, uint64_t ino, uint64_t bno,
    const struct store_jrnl_piece *pieces, int n, int flags)
{
	int fd, rc = 0;

	if (flags & STORE_JRNL_NEW) {
		/* Files left without a record are stale: start empty. */
		store_jrnl_ranges_drop(st, ino, bno);
		fd = jrnl_open(st, ino, bno, O_RDWR | O_CREAT | O_TRUNC);
	} else {
		fd = jrnl_open(st, ino, bno, O_RDWR);
		if (fd == -ENOENT)
			fd = jrnl_open(st, ino, bno, O_RDWR | O_CREAT);
	}
	if (fd < 0)
		return fd;
	for (int i = 0; i < n && rc == 0; i++)
		rc = pwrite_full(fd, pieces[i].p, pieces[i].len, pieces[i].off);
	if (rc == 0 && (flags & STORE_JRNL_SYNC) && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int
store_jrnl_read(struct store *st, uint64_t ino, uint64_t bno, uint32_t off,
    void *buf, size_t len)
{
	size_t got = 0;
	int fd, rc;

	if ((fd = jrnl_open(st, ino, bno, O_RDONLY)) < 0) {
		memset(buf, 0, len);
		return fd;
	}
	rc = pread_full(fd, buf, len, off, &got);
	close(fd);
	memset((char *)buf + got, 0, len - got);
	return rc;
}

int
store_jrnl_cut(struct store *st, uint64_t ino, uint64_t bno, uint32_t len)
{
	int fd, rc;

	if ((fd = jrnl_open(st, ino, bno, O_RDWR)) == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	rc = ftruncate(fd, len) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int
jrnl_unlink_one(struct store *st, uint64_t ino, uint64_t bno)
{
	char path[4096];
	int rc;

	if ((rc = jrnl_path(path, sizeof path, st, ino, bno)) < 0)
		return rc;
	if ((rc = spare_put(st, path)) == 0 || rc == -ENOENT)
		return rc;
	return unlink(path) == 0 ? 0 : -errno;
}

int
store_jrnl_unlink(struct store *st, uint64_t ino, uint64_t bno)
{
	int a = jrnl_unlink_one(st, ino, bno);
	int b = store_jrnl_ranges_drop(st, ino, bno);

	if (a == 0 || b == 0)
		return 0;
	return a != -ENOENT ? a : b;
}

/* ---- range lists of overlay blocks ---------------------------------------
 * Named as the staging file of (ino, bno | RANGES_BIT). */

int
store_jrnl_ranges(struct store *st, uint64_t ino, uint64_t bno, uint32_t **rg,
    size_t *n)
{
	unsigned char *raw;
	struct stat sb;
	size_t got, cnt;
	int fd, rc;

	*rg = NULL;
	*n = 0;
	if ((fd = jrnl_open(st, ino, bno | RANGES_BIT, O_RDONLY)) == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	cnt = (size_t)(sb.st_size < RANGES_MAX ? sb.st_size : RANGES_MAX) / 8;
	raw = malloc(cnt * 8 + 1);
	*rg = malloc(cnt * 2 * sizeof **rg + 1);
	if (raw == NULL || *rg == NULL) {
		rc = -ENOMEM;
	} else if ((rc = pread_full(fd, raw, cnt * 8, 0, &got)) == 0) {
		for (size_t i = 0; i < got / 8; i++) {
			(*rg)[2 * i] = get_be32(raw + 8 * i);
			(*rg)[2 * i + 1] = get_be32(raw + 8 * i + 4);
		}
		*n = got / 8;
		rc = 1;
	}
	close(fd);
	free(raw);
	if (rc < 0) {
		free(*rg);
		*rg = NULL;
	}
	return rc;
}

int
store_jrnl_range_add(struct store *st, uint64_t ino, uint64_t bno,
    uint32_t off, uint32_t len, int create)
{
	unsigned char rec[8];
	struct stat sb;
	int fd, rc;

	fd = jrnl_open(st, ino, bno | RANGES_BIT, create ?
	    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND : O_WRONLY | O_APPEND);
	if (fd < 0)
		return fd;
	if (fstat(fd, &sb) == 0 && sb.st_size + sizeof rec > RANGES_MAX) {
		close(fd);
		return -EFBIG;
	}
	put_be32(rec, off);
	put_be32(rec + 4, len);
	rc = write(fd, rec, sizeof rec) == (ssize_t)sizeof rec ? 0 :
	    errno ? -errno : -EIO;
	if (rc == 0 && create && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int
store_jrnl_ranges_drop(struct store *st, uint64_t ino, uint64_t bno)
{
	return jrnl_unlink_one(st, ino, bno | RANGES_BIT);
}

int
store_jrnl_ranges_cover(const uint32_t *rg, size_t n, uint64_t off,
    uint64_t len)
{
	uint64_t pos = off, end = off + len;
	int moved = 1;

	while (pos < end && moved) {
		moved = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t a = rg[2 * i], b = a + rg[2 * i + 1];

			if (a <= pos && pos < b) {
				pos = b;
				moved = 1;
			}
		}
	}
	return pos >= end;
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
		rc = cb(arg, ino, bno & ~RANGES_BIT);
	}
	if (rc == 0 && de == NULL && errno)
		rc = -errno;
	closedir(d);
	return rc;
}
