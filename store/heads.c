/* store/heads.c - the supplier keeps each owner's newest signed heads.
 *
 * Files: <dir>/<owner hex>/heads/<seq %020llu>, each a whole serialized
 * head; written as ".tmp.<seq>.<random hex>", fsync'd, renamed, directory
 * fsync'd, so a name of 20 digits is always a complete file.
 *
 * Only a file that verifies, is signed by its directory's owner and
 * carries the seq of its name counts: a damaged or planted file can
 * neither be served nor hold back (or fake) the newest seq. Puts of one
 * owner are serialized with flock() on heads/.lock (an open file
 * description of its own per call, so threads exclude each other too);
 * while the lock is held any temporary is a crash's leftover. Listing
 * takes no lock: renames are atomic and a file pruned meanwhile is
 * simply missing. Which heads stay: keep_mark. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "log.h"
#include "store/internal.h"
#include "store/store.h"
#include "util.h"

#define OWNER_HEX	(2 * CR_PK_BYTES)
#define SEQ_DIGITS	20
#define HEAD_MAX	((size_t)CR_HEAD_FIXED + CR_HEAD_BLOB_MAX)
#define HEADS_SCAN_MAX	4096	/* names looked at per owner; more is junk */

struct entry {
	uint64_t seq;
	uint64_t index;	/* the index it names (cr_head), when ok */
	bool	 ok;	/* verified; meaningful after check_entry() */
	bool	 keep;	/* stays beside the new head (keep_mark) */
};

/* "<owner hex>/heads" */
static void
heads_path(char out[OWNER_HEX + 7], const unsigned char *owner)
{
	hex_encode(out, owner, CR_PK_BYTES);
	memcpy(out + OWNER_HEX, "/heads", 7);
}

/* Seq of a head file name, false for any other name (the lock, temps). */
static bool
parse_seq(const char *name, uint64_t *seq)
{
	uint64_t v = 0;

	for (int i = 0; i < SEQ_DIGITS; i++) {
		unsigned d;

		if (name[i] < '0' || name[i] > '9')
			return false;
		d = (unsigned)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (name[SEQ_DIGITS] != '\0')
		return false;
	*seq = v;
	return true;
}

static void
seq_name(char out[SEQ_DIGITS + 1], uint64_t seq)
{
	snprintf(out, SEQ_DIGITS + 1, "%020" PRIu64, seq);
}

static int
fsync_fd_dir(int dfd)
{
	return fsync(dfd) != 0 ? -errno : 0;
}

/* Opens <owner>/heads, creating it (and the owner directory) when asked. */
static int
open_heads(struct store_frag *sf, const unsigned char *owner, bool create)
{
	int dirfd = store__frag_dirfd(sf), ofd, fd;
	char path[OWNER_HEX + 7];

	heads_path(path, owner);
	fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT || !create)
		return fd >= 0 ? fd : -errno;
	path[OWNER_HEX] = '\0';
	if (mkdirat(dirfd, path, 0700) == 0) {
		if (fsync(dirfd) != 0)
			return -errno;
	} else if (errno != EEXIST) {
		return -errno;
	}
	ofd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ofd < 0)
		return -errno;
	if (mkdirat(ofd, "heads", 0700) == 0) {
		if (fsync(ofd) != 0) {
			int rc = -errno;
			close(ofd);
			return rc;
		}
	} else if (errno != EEXIST) {
		int rc = -errno;
		close(ofd);
		return rc;
	}
	fd = openat(ofd, "heads", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	close(ofd);
	return fd;
}

/* Reads a head file: 0 with *buf (malloc'd), -EPROTO when it cannot be a
 * head (size, type), -ENOENT when gone, -errno. */
static int
read_head(int dfd, const char *name, unsigned char **buf, size_t *len)
{
	struct stat st;
	unsigned char *p;
	size_t have = 0, size;
	int fd, rc = 0;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EPROTO : -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < CR_HEAD_FIXED ||
	    (uint64_t)st.st_size > HEAD_MAX) {
		rc = -EPROTO;
		goto out;
	}
	size = (size_t)st.st_size;
	if (!(p = malloc(size))) {
		rc = -ENOMEM;
		goto out;
	}
	while (have < size) {
		ssize_t r = pread(fd, p + have, size - have, (off_t)have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EPROTO;	/* shrank: not a head */
			free(p);
			goto out;
		}
		have += (size_t)r;
	}
	*buf = p;
	*len = size;
out:
	close(fd);
	return rc;
}

/* 0 when the bytes are a valid head of owner with this seq, else -EPROTO,
 * -EBADMSG or -EPERM. */
static int
check_head(const unsigned char *p, size_t n, const unsigned char *owner,
    uint64_t seq, uint64_t *index)
{
	struct cr_head h;
	int rc;

	if ((rc = cr_head_verify(p, n, &h)) < 0)
		return rc;
	if (memcmp(h.owner, owner, CR_PK_BYTES) != 0)
		return -EPERM;
	*index = h.index;
	return h.seq == seq ? 0 : -EPROTO;
}

/* Reads and checks one file. 0 valid (buffer returned when buf is not
 * NULL), 1 invalid (logged), -ENOENT gone, -errno on a local failure. */
static int
load_entry(int dfd, const unsigned char *owner, uint64_t seq,
    uint64_t *index, unsigned char **buf, size_t *len)
{
	char name[SEQ_DIGITS + 1], oh[OWNER_HEX + 1];
	unsigned char *p = NULL;
	size_t n = 0;
	uint64_t ix;
	int rc;

	seq_name(name, seq);
	rc = read_head(dfd, name, &p, &n);
	if (rc == 0) {
		rc = check_head(p, n, owner, seq, index ? index : &ix);
		if (rc == 0 && buf) {
			*buf = p;
			*len = n;
			return 0;
		}
		free(p);
	}
	if (rc == 0 || rc == -ENOENT)
		return rc;
	if (rc != -EPROTO && rc != -EBADMSG && rc != -EPERM)
		return rc;
	hex_encode(oh, owner, CR_PK_BYTES);
	log_warn("heads: %s/heads/%s is not a valid head (%s), ignored", oh,
	    name, strerror(-rc));
	return 1;
}

static int
cmp_desc(const void *a, const void *b)
{
	uint64_t x = ((const struct entry *)a)->seq;
	uint64_t y = ((const struct entry *)b)->seq;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* The head names in dfd, newest first. With sweep, temporaries are
 * removed (only under the lock). *out malloc'd (NULL when none). */
static int
scan(int dfd, bool sweep, struct entry **out, size_t *count)
{
	struct entry *e = NULL, *ne;
	size_t n = 0, cap = 0;
	struct dirent *de;
	bool removed = false;
	uint64_t seq;
	DIR *d;
	int fd, rc = 0;

	*out = NULL;
	*count = 0;
	if ((fd = dup(dfd)) < 0)
		return -errno;
	if (!(d = fdopendir(fd))) {
		rc = -errno;
		close(fd);
		return rc;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		if (sweep && strncmp(de->d_name, ".tmp.", 5) == 0) {
			if (unlinkat(dfd, de->d_name, 0) == 0)
				removed = true;
			continue;
		}
		if (!parse_seq(de->d_name, &seq))
			continue;
		if (n == HEADS_SCAN_MAX)
			break;	/* nobody puts that many: keep memory bounded */
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			if (!(ne = realloc(e, cap * sizeof *e))) {
				rc = -ENOMEM;
				break;
			}
			e = ne;
		}
		e[n].seq = seq;
		e[n].ok = false;
		n++;
	}
	closedir(d);
	if (removed)
		(void)fsync_fd_dir(dfd);
	if (rc < 0) {
		free(e);
		return rc;
	}
	if (n)
		qsort(e, n, sizeof *e, cmp_desc);
	*out = e;
	*count = n;
	return 0;
}

static int
write_tmp(int dfd, uint64_t seq, const void *head, size_t len, char *tmp,
    size_t tmpsz)
{
	unsigned char rnd[8];
	char rh[17];
	const unsigned char *p = head;
	int fd, rc = 0;

	randombytes_buf(rnd, sizeof rnd);
	hex_encode(rh, rnd, sizeof rnd);
	snprintf(tmp, tmpsz, ".tmp.%020" PRIu64 ".%s", seq, rh);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(dfd, tmp, 0);
	return rc;
}

/* Which valid heads of e[] (newest first, all older than a new head
 * naming index) stay beside it: those of the STORE_HEADS_KEEP newest
 * distinct indexes (the new head's included), of each index its newest
 * and its oldest head held (the one that published that version). The
 * heads in between only renewed the write lease on that index: each new
 * renewal replaces the previous one, so an idle writer's renewals do not
 * push versions out. The newest head always stays (rollback protection
 * rests on it). */
static void
keep_mark(struct entry *e, size_t n, uint64_t index)
{
	uint64_t seen[STORE_HEADS_KEEP];
	size_t ns = 0;

	seen[ns++] = index;
	for (size_t i = 0; i < n; i++) {
		bool newer = false, older = false;

		e[i].keep = false;
		if (!e[i].ok)
			continue;
		for (size_t j = 0; j < ns && !newer; j++)
			newer = seen[j] == e[i].index;
		if (!newer) {
			if (ns == STORE_HEADS_KEEP)
				continue;	/* an older index: goes */
			seen[ns++] = e[i].index;
			e[i].keep = true;
			continue;
		}
		for (size_t j = i + 1; j < n && !older; j++)
			older = e[j].ok && e[j].index == e[i].index;
		e[i].keep = !older;
	}
}

/* Under the lock, after seq was installed: keeps what keep_mark chose,
 * drops the rest and every invalid file. e[] are the names found before
 * the install. */
static int
prune(int dfd, const struct entry *e, size_t n, uint64_t seq)
{
	char name[SEQ_DIGITS + 1];
	bool removed = false;

	for (size_t i = 0; i < n; i++) {
		if (e[i].seq == seq || e[i].keep)
			continue;	/* the new head replaced it, or kept */
		seq_name(name, e[i].seq);
		if (unlinkat(dfd, name, 0) == 0)
			removed = true;
		else if (errno != ENOENT)
			log_warn("heads: cannot remove %s: %s", name,
			    strerror(errno));
	}
	return removed ? fsync_fd_dir(dfd) : 0;
}

void
store__heads_cost(const struct store_frag *sf, int dfd, uint64_t *cost,
    uint64_t *n)
{
	struct entry *e = NULL;
	struct stat st;
	char name[SEQ_DIGITS + 1];
	size_t cnt = 0;

	*cost = *n = 0;
	if (scan(dfd, false, &e, &cnt) < 0)
		return;
	for (size_t i = 0; i < cnt; i++) {
		seq_name(name, e[i].seq);
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		*cost += store_frag_cost(sf, (uint64_t)st.st_size);
		(*n)++;
	}
	free(e);
}

/* The charge of the heads that stay beside a new one of len bytes (those
 * keep_mark chose; prune drops the rest). */
static uint64_t
cost_after(const struct store_frag *sf, int dfd, const struct entry *e,
    size_t n, size_t len)
{
	uint64_t cost = store_frag_cost(sf, len);
	char name[SEQ_DIGITS + 1];
	struct stat st;

	for (size_t i = 0; i < n; i++) {
		if (!e[i].keep)
			continue;
		seq_name(name, e[i].seq);
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			cost += store_frag_cost(sf, (uint64_t)st.st_size);
	}
	return cost;
}

int
store_head_put(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const void *head, size_t len)
{
	char tmp[64], name[SEQ_DIGITS + 1];
	struct entry *e = NULL;
	struct cr_head h;
	uint64_t after;
	size_t n = 0;
	int dfd, lfd = -1, rc, wrote = 0;

	if (!sf || !owner || !head)
		return -EINVAL;
	if ((rc = cr_head_verify(head, len, &h)) < 0)
		return rc;
	if (memcmp(h.owner, owner, CR_PK_BYTES) != 0)
		return -EPERM;
	if ((dfd = open_heads(sf, owner, true)) < 0)
		return dfd;
	lfd = openat(dfd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (lfd < 0) {
		rc = -errno;
		goto out;
	}
	while ((rc = flock(lfd, LOCK_EX)) != 0 && errno == EINTR)
		;
	if (rc != 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = scan(dfd, true, &e, &n)) < 0)
		goto out;
	/* Names alone could be planted: only valid heads count, both for
	 * the newest seq and for what prune keeps (which depends on the
	 * index each names, so each is read; prune keeps them few). */
	for (size_t i = 0; i < n; i++) {
		rc = load_entry(dfd, owner, e[i].seq, &e[i].index, NULL, NULL);
		if (rc < 0 && rc != -ENOENT)
			goto out;
		e[i].ok = rc == 0;
		if (e[i].ok && e[i].seq >= h.seq) {
			rc = -ESTALE;
			goto out;
		}
	}
	keep_mark(e, n, h.index);
	/* Heads are charged like fragments: a stranger's 32 heads of 1 MiB
	 * each would otherwise be free. What the new one replaces is given
	 * back. */
	after = cost_after(sf, dfd, e, n, len);
	if ((rc = store__frag_heads_room(sf, owner, after)) < 0)
		goto out;
	wrote = 1;
	if ((rc = write_tmp(dfd, h.seq, head, len, tmp, sizeof tmp)) < 0)
		goto out;
	seq_name(name, h.seq);
	if (renameat(dfd, tmp, dfd, name) != 0) {
		rc = -errno;
		unlinkat(dfd, tmp, 0);
		goto out;
	}
	wrote = 2;	/* the new head is in place */
	if ((rc = fsync_fd_dir(dfd)) < 0)
		goto out;
	/* The head is durable; failing to prune only costs space. */
	if (prune(dfd, e, n, h.seq) < 0)
		log_warn("heads: fsync after pruning failed");
	rc = 0;
out:
	if (wrote) {
		uint64_t c, k;
		int r;

		store__heads_cost(sf, dfd, &c, &k);
		r = store__frag_heads_set(sf, owner, c, k);
		if ((r == -EDQUOT || r == -ENOSPC) && wrote == 2) {
			/* The files came to more than was charged and the
			 * rest does not fit: the new head goes, so the
			 * charge stays within the quota. */
			log_warn("heads: head costs more than charged: "
			    "removed");
			unlinkat(dfd, name, 0);
			fsync_fd_dir(dfd);
			store__heads_cost(sf, dfd, &c, &k);
			if (store__frag_heads_set(sf, owner, c, k) < 0)
				log_warn("heads: charge not corrected");
		}
		if (r < 0 && rc == 0)
			rc = r;
	}
	free(e);
	if (lfd >= 0)
		close(lfd);	/* releases the lock */
	close(dfd);
	return rc;
}

int
store_head_list(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    int max, int (*cb)(void *arg, uint64_t seq, const void *head, size_t len),
    void *arg)
{
	struct entry *e = NULL;
	unsigned char *buf;
	size_t n = 0, len;
	int dfd, rc, given = 0;

	if (!sf || !owner || !cb)
		return -EINVAL;
	if ((dfd = open_heads(sf, owner, false)) < 0)
		return dfd == -ENOENT ? 0 : dfd;
	if ((rc = scan(dfd, false, &e, &n)) < 0)
		goto out;
	for (size_t i = 0; i < n && (max <= 0 || given < max); i++) {
		rc = load_entry(dfd, owner, e[i].seq, NULL, &buf, &len);
		if (rc == -ENOENT || rc == 1)
			continue;	/* pruned meanwhile, or damaged */
		if (rc < 0)
			goto out;
		given++;
		rc = cb(arg, e[i].seq, buf, len);
		free(buf);
		if (rc != 0)
			goto out;
	}
	rc = 0;
out:
	free(e);
	close(dfd);
	return rc;
}

/* ---- the owner's locator ------------------------------------------------ */

/* <owner hex>/heads/locator: 32 bytes, the DHT key under which this
 * supplier announces itself while it holds the owner's heads (the owner
 * derives it from its master secret: net/heads.c, owner/index.c). One per
 * owner with a head here, so a stranger cannot make us announce more keys
 * than there are accounts holding heads. */
#define LOCATOR_FILE	"locator"

static bool
has_head(int dfd)
{
	struct entry *e = NULL;
	size_t n = 0;

	if (scan(dfd, false, &e, &n) < 0)
		return false;
	free(e);
	return n > 0;
}

static int
read_locator(int dfd, unsigned char out[STORE_LOCATOR_BYTES])
{
	int fd = openat(dfd, LOCATOR_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -errno;
	r = pread(fd, out, STORE_LOCATOR_BYTES, 0);
	close(fd);
	return r == STORE_LOCATOR_BYTES ? 0 : -EPROTO;
}

int
store_locator_put(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    const unsigned char loc[STORE_LOCATOR_BYTES])
{
	unsigned char cur[STORE_LOCATOR_BYTES];
	char tmp[64], rh[17];
	unsigned char rnd[8];
	int dfd, fd, rc = 0;
	ssize_t w;

	if (!sf || !owner || !loc)
		return -EINVAL;
	if ((dfd = open_heads(sf, owner, false)) < 0)
		return dfd == -ENOENT ? -EACCES : dfd;
	if (!has_head(dfd)) {
		close(dfd);
		return -EACCES;		/* only for owners holding heads */
	}
	if (read_locator(dfd, cur) == 0 &&
	    memcmp(cur, loc, STORE_LOCATOR_BYTES) == 0) {
		close(dfd);
		return 0;
	}
	randombytes_buf(rnd, sizeof rnd);
	hex_encode(rh, rnd, sizeof rnd);
	snprintf(tmp, sizeof tmp, ".tmp.locator.%s", rh);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	w = write(fd, loc, STORE_LOCATOR_BYTES);
	if (w != STORE_LOCATOR_BYTES)
		rc = w < 0 ? -errno : -EIO;
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && renameat(dfd, tmp, dfd, LOCATOR_FILE) != 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(dfd, tmp, 0);
	else
		rc = fsync_fd_dir(dfd);
	close(dfd);
	return rc < 0 ? rc : 1;
}

int
store_locator_list(struct store_frag *sf,
    unsigned char (*out)[STORE_LOCATOR_BYTES], int max)
{
	int dirfd = store__frag_dirfd(sf), fd, n = 0;
	unsigned char owner[CR_PK_BYTES];
	struct dirent *de;
	DIR *d;

	if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return -errno;
	}
	while (n < max && (de = readdir(d))) {
		int hfd;

		if (strlen(de->d_name) != OWNER_HEX ||
		    !store__fr_is_hex(de->d_name, OWNER_HEX))
			continue;
		store__fr_hex_decode(owner, de->d_name, CR_PK_BYTES);
		if ((hfd = open_heads(sf, owner, false)) < 0)
			continue;
		if (has_head(hfd) && read_locator(hfd, out[n]) == 0)
			n++;
		close(hfd);
	}
	closedir(d);
	return n;
}
