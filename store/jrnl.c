/* store/jrnl.c - write-back journal staging files and their range lists
 * (formats in store/store.h). The matching LMDB records (store_jrnl_put...)
 * live in store/meta.c.
 *
 * A staging file whose block is uploaded is retired (moved aside whole
 * until the commit that says so is synced, below), then emptied and moved
 * to <dir>/spare/<n> (up to SPARE_MAX of them), and a new staging file is
 * a spare one renamed, when there is one: see struct store. Spare files
 * are empty before they get their spare name, so a crash leaves either an
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

/* Retired staging files (below) come back as spares up to five seconds
 * after they were taken; small files made at thousands a second need that
 * many in the pool, or the maker creates and the recycler removes them. */
#define SPARE_MAX 65536
#define SPARE_LOW 512		/* fewer: the maker is woken */
#define SPARE_HIGH 1024		/* it makes spares up to here */
#define SPARE_RETRY_MS 1000	/* after a create failed (disk full) */
#define RANGES_BIT	(1ull << 63)	/* the range list's name */
#define RANGES_MAX	(1u << 20)	/* bytes of ranges, then fold */

static int parse_name(const char *s, uint64_t *ino, uint64_t *bno);

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

static int
jrnl_write_once(struct store *st, uint64_t ino, uint64_t bno,
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

/* A full disk may be full of retired staging files (a file just deleted
 * to make room, say): they are emptied now, not at the next flush, and the
 * write tried once more. Writing the same pieces again is harmless. */
int
store_jrnl_write(struct store *st, uint64_t ino, uint64_t bno,
    const struct store_jrnl_piece *pieces, int n, int flags)
{
	int rc = jrnl_write_once(st, ino, bno, pieces, n, flags);

	if ((rc == -ENOSPC || rc == -EDQUOT) && store__retired_make_room(st))
		rc = jrnl_write_once(st, ino, bno, pieces, n, flags);
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

/* ---- retired staging files ------------------------------------------------
 * store_jrnl_unlink comes right after a commit that dropped the block's
 * record (an upload, a truncate), and commits are synced up to
 * STORE__FLUSH_MS later. Emptying the staging file at once would let a
 * power cut in between bring the record back with nothing behind it: the
 * bytes of a block on no supplier yet, lost. So the file moves to
 * <dir>/retired/<seq>.<ino>.<bno> whole and becomes a spare only once a
 * sync begun after the move has completed (store__retired_recycle); the
 * store's next open puts back those whose record came back. Moving it
 * also frees the name at once for the block's next write. */

#define RETIRED_MAX	65536	/* waiting at once; then the retirer syncs */

static int
retired_path(char *buf, size_t size, const struct store *st, uint64_t seq,
    uint64_t ino, uint64_t bno)
{
	int n = snprintf(buf, size, "%s/%" PRIu64 ".%" PRIu64 ".%" PRIu64,
	    st->rdir, seq, ino, bno);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Empties one retired file into a spare (or removes it). */
static void
retired_drop(struct store *st, const struct store__retired *r)
{
	char path[4096];

	for (int k = 0; k < 2; k++) {
		uint64_t bno = k ? r->bno | RANGES_BIT : r->bno;

		if (!(r->moved & (1u << k)) ||
		    retired_path(path, sizeof path, st, r->seq, r->ino, bno) < 0)
			continue;
		if (spare_put(st, path) != 0 && unlink(path) != 0 &&
		    errno != ENOENT)
			log_warn("store: %s: %s", path, strerror(errno));
	}
}

void
store__retired_recycle(struct store *st)
{
	uint64_t synced = __atomic_load_n(&st->synced_epoch, __ATOMIC_ACQUIRE);
	struct store__retired *list, *done;
	size_t n = 0;

	pthread_mutex_lock(&st->retire_lock);
	list = st->retired.p;
	while (n < st->retired.n && list[n].epoch < synced)
		n++;
	if (n == 0 || !(done = malloc(n * sizeof *done))) {
		/* Without memory: the next pass, or store_close. */
		pthread_mutex_unlock(&st->retire_lock);
		return;
	}
	memcpy(done, list, n * sizeof *done);
	st->retired.n -= n;
	memmove(list, list + n, st->retired.n * sizeof *done);
	pthread_mutex_unlock(&st->retire_lock);
	for (size_t i = 0; i < n; i++)
		retired_drop(st, &done[i]);
	free(done);
}

int
store__retired_make_room(struct store *st)
{
	size_t before;

	pthread_mutex_lock(&st->retire_lock);
	before = st->retired.n;
	pthread_mutex_unlock(&st->retire_lock);
	if (before == 0 || store__sync(st) < 0)
		return 0;
	store__retired_recycle(st);
	pthread_mutex_lock(&st->retire_lock);
	before = st->retired.n < before;
	pthread_mutex_unlock(&st->retire_lock);
	return (int)before;
}

/* Records r as waiting (0), or -errno: then the caller drops it now. */
static int
retired_add(struct store *st, struct store__retired *r)
{
	int rc;

	pthread_mutex_lock(&st->retire_lock);
	while (st->retired.n == RETIRED_MAX) {
		/* Writers outrun the flusher: sync here, as fsync would. */
		pthread_mutex_unlock(&st->retire_lock);
		if (store__sync(st) < 0)
			return -EIO;
		store__retired_recycle(st);
		pthread_mutex_lock(&st->retire_lock);
	}
	/* Read under the lock, so the list stays in epoch order. */
	r->epoch = __atomic_load_n(&st->sync_epoch, __ATOMIC_ACQUIRE);
	rc = vec_push(&st->retired, r, sizeof *r);
	pthread_mutex_unlock(&st->retire_lock);
	return rc;
}

int
store_jrnl_unlink(struct store *st, uint64_t ino, uint64_t bno)
{
	struct store__retired r = { .ino = ino, .bno = bno };
	char from[4096], to[4096];
	int rc = -ENOENT;

	pthread_mutex_lock(&st->retire_lock);
	r.seq = st->retire_seq++;
	pthread_mutex_unlock(&st->retire_lock);
	for (int k = 0; k < 2; k++) {
		uint64_t b = k ? bno | RANGES_BIT : bno;
		int one;

		if ((one = jrnl_path(from, sizeof from, st, ino, b)) < 0 ||
		    (one = retired_path(to, sizeof to, st, r.seq, ino, b)) < 0)
			return one;
		if (rename(from, to) == 0) {
			r.moved |= 1u << k;
			rc = 0;
			continue;
		}
		/* ENOENT: no such file, or no retired directory; once one
		 * file moved, the directory is there. */
		if (errno == ENOENT && (r.moved || access(from, F_OK) != 0))
			continue;
		/* No retired directory (removed under us), another file
		 * system: emptied now, as before retiring existed. */
		log_warn("store: retiring %s: %s", from, strerror(errno));
		if ((one = jrnl_unlink_one(st, ino, b)) == 0)
			rc = 0;
		else if (one != -ENOENT)
			return one;
	}
	if (r.moved && retired_add(st, &r) < 0)
		retired_drop(st, &r);
	return rc;
}

static int
retired_cmp(const void *a, const void *b)
{
	const struct store__retired *x = a, *y = b;
	uint64_t xb = x->bno & ~RANGES_BIT, yb = y->bno & ~RANGES_BIT;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	if (xb != yb)
		return xb < yb ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq > y->seq ? -1 : 1;	/* newest first */
	return 0;
}

/* "<seq>.<ino>.<bno>" */
static int
parse_retired(const char *s, struct store__retired *r)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	r->seq = strtoull(s, &end, 10);
	if (errno || *end != '.')
		return -EINVAL;
	return parse_name(end + 1, &r->ino, &r->bno);
}

/* Whether a block's newest retired files go back: its record is there
 * (a power cut undid the commit that dropped it) and the journal has
 * neither file of it (a write after that commit would have made one;
 * that newer staging file wins). */
static int
retired_put_back(struct store *st, struct store_txn *t, uint64_t ino,
    uint64_t bno)
{
	char path[4096];
	int rc = store_jrnl_has(t, ino, bno);

	if (rc != 1)
		return rc;
	for (int k = 0; k < 2; k++) {
		if (jrnl_path(path, sizeof path, st, ino,
		    k ? bno | RANGES_BIT : bno) < 0 || access(path, F_OK) == 0)
			return 0;
	}
	return 1;
}

/* Reads the retired directory into out (unsorted), one entry per file. */
static int
retired_list(struct store *st, struct vec *out)
{
	struct store__retired r;
	struct dirent *de;
	DIR *d;

	if (!(d = opendir(st->rdir)))
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (parse_retired(de->d_name, &r) < 0) {
			unlinkat(dirfd(d), de->d_name, 0);	/* not ours */
			continue;
		}
		r.moved = (r.bno & RANGES_BIT) ? 2 : 1;
		r.bno &= ~RANGES_BIT;
		if (vec_push(out, &r, sizeof r) < 0) {
			closedir(d);
			vec_release(out);
			return -ENOMEM;
		}
	}
	closedir(d);
	return 0;
}

int
store__retired_open(struct store *st)
{
	struct vec list = { 0 };
	struct store__retired *v;
	struct store_txn *t;
	size_t n, back = 0;
	int rc;

	if (mkdir(st->rdir, 0700) != 0 && errno != EEXIST)
		return -errno;
	if ((rc = retired_list(st, &list)) < 0 || list.n == 0)
		return rc;
	v = list.p;
	n = list.n;
	qsort(v, n, sizeof *v, retired_cmp);
	if ((rc = store_txn_begin(st, 1, &t)) < 0) {
		vec_release(&list);
		return rc;
	}
	for (size_t i = 0, j; i < n; i = j) {
		int put = retired_put_back(st, t, v[i].ino, v[i].bno);

		for (j = i; j < n && v[j].ino == v[i].ino &&
		    v[j].bno == v[i].bno; j++) {
			char from[4096], to[4096];
			uint64_t b = v[j].bno | (v[j].moved == 2 ? RANGES_BIT : 0);

			if (v[j].seq >= st->retire_seq)
				st->retire_seq = v[j].seq + 1;
			if (retired_path(from, sizeof from, st, v[j].seq,
			    v[j].ino, b) < 0)
				continue;
			if (put == 1 && v[j].seq == v[i].seq &&
			    jrnl_path(to, sizeof to, st, v[j].ino, b) == 0 &&
			    renameat2(AT_FDCWD, from, AT_FDCWD, to,
			    RENAME_NOREPLACE) == 0)
				back++;
			else
				unlink(from);
		}
	}
	store_txn_abort(t);
	vec_release(&list);
	if (back > 0)
		log_warn("store: %zu staging files put back: the commits that "
		    "had stored their blocks did not reach the disk", back);
	return 0;
}

void
store__retired_close(struct store *st)
{
	vec_release(&st->retired);
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
