/* store/fragopen.c - opening the supplier's fragment store: its lock, the
 * accounting environment, the default quota and reserve, and the
 * reconciliation of the records with the files a crash may have left
 * (formats and locking: the top of store/frag.c); closing it; heads'
 * records for store/heads.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "log.h"
#include "store/internal.h"
#include "store/store.h"
#include "util.h"

/* ---- open: sweep temporaries, reconcile accounting with the files -------- */

bool
store__fr_is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

void
store__fr_hex_decode(unsigned char *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = s[2 * i] <= '9' ? s[2 * i] - '0' : s[2 * i] - 'a' + 10;
		int lo = s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0' :
		    s[2 * i + 1] - 'a' + 10;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
}

/* One fragment file found on disk: make its record match it. */
static int
reconcile_file(MDB_txn *txn, struct store_frag *sf, int dfd,
    const unsigned char *owner, const char *name)
{
	unsigned char fragid[STORE_FRAGID_BYTES], key[KEY_LEN], val[REC_LEN];
	MDB_val k = { KEY_LEN, key }, v = { REC_LEN, val };
	struct frag_rec old, nr;
	struct stat st;
	void *data;
	size_t len;
	int fd, rc;

	store__fr_hex_decode(fragid, name, STORE_FRAGID_BYTES);
	store__fr_make_key(key, owner, fragid);
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		log_warn("frag: ignoring %s", name);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	store__fr_rec_from_stat(&nr, &st);
	rc = store__fr_rec_get(txn, sf, key, &old);
	if (rc == 0 && old.size == nr.size && old.ino == nr.ino &&
	    old.mtime_ns == nr.mtime_ns) {
		close(fd);
		return 0;
	}
	if (rc < 0 && rc != -ENOENT) {
		close(fd);
		return rc;
	}
	rc = store__fr_read_fd(fd, &data, &len);
	close(fd);
	if (rc < 0)
		return rc;
	cr_hash(nr.hash, data, len);
	nr.size = len;
	free(data);
	log_info("frag: %s: accounting it again", name);
	store__fr_rec_pack(val, &nr);
	return store__fr_mdb_errno(mdb_put(txn, sf->frags, &k, &v, 0), "reconcile put");
}

/* Sets the heads part of owner's contact record from its heads directory
 * (creating the record when there are heads; dropping it when there is
 * nothing left of the owner). */
static int
heads_record(MDB_txn *txn, struct store_frag *sf, const unsigned char *owner)
{
	char path[OWNER_HEX + 7];
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	struct oacct a;
	uint64_t cost = 0, n = 0;
	int fd, rc;

	hex_encode(path, owner, CR_PK_BYTES);
	memcpy(path + OWNER_HEX, "/heads", 7);
	fd = openat(sf->dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd >= 0) {
		store__heads_cost(sf, fd, &cost, &n);
		close(fd);
	}
	if ((rc = store__fr_acct_get(txn, sf, owner, &a)) < 0)
		return rc;
	if (n == 0 && !a.has_own && a.evicted == 0) {
		if (!a.has_con)
			return 0;
		rc = mdb_del(txn, sf->contact, &k, NULL);
		return store__fr_mdb_errno(rc == MDB_NOTFOUND ? 0 : rc, "contact del");
	}
	a.hcharge = cost;
	a.hn = n;
	return store__fr_contact_put(txn, sf, owner, &a);
}

/* The contact records of owners whose directory is gone. */
static int
heads_records(MDB_txn *txn, struct store_frag *sf)
{
	unsigned char (*own)[CR_PK_BYTES] = NULL;
	size_t n = 0, cap = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, mrc;

	if ((rc = store__fr_mdb_errno(mdb_cursor_open(txn, sf->contact, &cur), "cursor")) < 0)
		return rc;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != CR_PK_BYTES)
			continue;
		if (n == cap) {
			void *p = realloc(own, (cap = cap ? 2 * cap : 64) *
			    sizeof *own);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			own = p;
		}
		memcpy(own[n++], k.mv_data, CR_PK_BYTES);
	}
	mdb_cursor_close(cur);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = heads_record(txn, sf, own[i]);
	free(own);
	return rc;
}

/* Walks <owner>/<xx>/: removes temporaries, reconciles fragment files. */
static int
sweep_owner(MDB_txn *txn, struct store_frag *sf, const char *oname)
{
	unsigned char owner[CR_PK_BYTES];
	struct dirent *de, *fe;
	int ofd, rc = 0;
	DIR *od;

	store__fr_hex_decode(owner, oname, CR_PK_BYTES);
	ofd = openat(sf->dirfd, oname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ofd < 0 || !(od = fdopendir(ofd))) {
		if (ofd >= 0)
			close(ofd);
		return -errno;
	}
	while (rc == 0 && (de = readdir(od))) {
		bool removed = false;
		int sfd;
		DIR *sd;

		if (!store__fr_is_hex(de->d_name, 2))
			continue;
		sfd = openat(ofd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sfd < 0 || !(sd = fdopendir(sfd))) {
			if (sfd >= 0)
				close(sfd);
			continue;
		}
		while (rc == 0 && (fe = readdir(sd))) {
			if (strstr(fe->d_name, ".tmp.")) {
				if (unlinkat(sfd, fe->d_name, 0) == 0)
					removed = true;
				else
					log_warn("frag: cannot remove %s: %s",
					    fe->d_name, strerror(errno));
			} else if (store__fr_is_hex(fe->d_name, FRAG_HEX) &&
			    memcmp(fe->d_name, de->d_name, 2) == 0) {
				rc = reconcile_file(txn, sf, sfd, owner,
				    fe->d_name);
			}
		}
		if (removed && fsync(sfd) != 0)
			rc = rc ? rc : -errno;
		closedir(sd);
	}
	closedir(od);
	return rc < 0 ? rc : heads_record(txn, sf, owner);
}

/* Records without a file are dropped; owners is rebuilt from frags. */
static int
drop_missing_and_sum(MDB_txn *txn, struct store_frag *sf)
{
	unsigned char cur_owner[CR_PK_BYTES];
	struct oacct a = { 0 };
	MDB_cursor *cur;
	MDB_val k, v;
	struct frag_names nm;
	struct frag_rec r;
	struct stat st;
	bool have_owner = false;
	int rc, mrc;

	if ((rc = store__fr_mdb_errno(mdb_drop(txn, sf->owners, 0), "drop owners")) < 0)
		return rc;
	if ((rc = store__fr_mdb_errno(mdb_cursor_open(txn, sf->frags, &cur), "cursor")) < 0)
		return rc;
	sf->bytes = sf->count = sf->charge = 0;
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
	    mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *key = k.mv_data;

		if (k.mv_size != KEY_LEN || store__fr_rec_unpack(&r, &v) < 0) {
			log_warn("frag: dropping a malformed record");
			if ((mrc = mdb_cursor_del(cur, 0)) != 0)
				break;
			continue;
		}
		store__fr_make_names(&nm, key, key + CR_PK_BYTES);
		if (fstatat(sf->dirfd, nm.path, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT && errno != ENOTDIR) {
				rc = -errno;
				break;
			}
			log_info("frag: %s is gone, dropping its record", nm.path);
			if ((mrc = mdb_cursor_del(cur, 0)) != 0)
				break;
			continue;
		}
		if (have_owner && memcmp(cur_owner, key, CR_PK_BYTES) != 0) {
			if ((rc = store__fr_owner_put(txn, sf, cur_owner, &a)) < 0)
				break;
			memset(&a, 0, sizeof a);
		}
		memcpy(cur_owner, key, CR_PK_BYTES);
		have_owner = true;
		a.bytes += r.size;
		a.count++;
		a.charge += store_frag_cost(sf, r.size);
		sf->bytes += r.size;
		sf->count++;
		sf->charge += store_frag_cost(sf, r.size);
	}
	mdb_cursor_close(cur);
	if (rc < 0)
		return rc;
	if (mrc != MDB_NOTFOUND)
		return store__fr_mdb_errno(mrc, "reconcile");
	return have_owner ? store__fr_owner_put(txn, sf, cur_owner, &a) : 0;
}

static int
reconcile(struct store_frag *sf)
{
	struct dirent *de;
	MDB_txn *txn;
	DIR *d;
	int fd, rc;

	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		return rc;
	if ((fd = dup(sf->dirfd)) < 0 || !(d = fdopendir(fd))) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		goto abort;
	}
	rewinddir(d);
	while (rc == 0 && (de = readdir(d)))
		if (store__fr_is_hex(de->d_name, OWNER_HEX))
			rc = sweep_owner(txn, sf, de->d_name);
	closedir(d);
	if (rc == 0)
		rc = drop_missing_and_sum(txn, sf);
	if (rc == 0)
		rc = heads_records(txn, sf);
	if (rc < 0)
		goto abort;
	return store__fr_mdb_errno(mdb_txn_commit(txn), "reconcile commit");
abort:
	mdb_txn_abort(txn);
	return rc;
}

int
store__fr_acct_env_open(struct store_frag *sf, const char *dir, int rdonly)
{
	char *path;
	MDB_txn *txn;
	int rc, f = rdonly ? 0 : MDB_CREATE;

	if (asprintf(&path, "%s/acct", dir) < 0)
		return -ENOMEM;
	if (!rdonly && mkdir(path, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		free(path);
		return rc;
	}
	rc = store__fr_mdb_errno(mdb_env_create(&sf->env), "env");
	if (rc == 0)
		rc = store__fr_mdb_errno(mdb_env_set_maxdbs(sf->env, 4), "maxdbs");
	if (rc == 0)
		rc = store__fr_mdb_errno(mdb_env_set_mapsize(sf->env, ACCT_MAP), "mapsize");
	if (rc == 0)
		/* NOSYNC: the fragment file itself is fsync'd before the
		 * acknowledgement, and open reconciles the accounting with
		 * the files, so the accounting need not cost a second fsync
		 * per fragment. */
		rc = store__fr_mdb_errno(mdb_env_open(sf->env, path, MDB_NOTLS |
		    (rdonly ? MDB_RDONLY : MDB_NOSYNC), 0600), path);
	free(path);
	if (rc < 0)
		return rc;
	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, rdonly ? MDB_RDONLY : 0,
	    &txn), "begin");
	if (rc < 0)
		return rc;
	rc = store__fr_mdb_errno(mdb_dbi_open(txn, "owners", f, &sf->owners), "owners");
	if (rc == 0)
		rc = store__fr_mdb_errno(mdb_dbi_open(txn, "frags", f, &sf->frags),
		    "frags");
	if (rc == 0)
		rc = store__fr_mdb_errno(mdb_dbi_open(txn, "contact", f, &sf->contact),
		    "contact");
	if (rc == 0)
		rc = store__fr_mdb_errno(mdb_dbi_open(txn, "misc", f, &sf->misc), "misc");
	if (rc < 0 || rdonly) {
		if (rdonly && rc == 0)
			return store__fr_mdb_errno(mdb_txn_commit(txn), "commit");
		mdb_txn_abort(txn);
		return rc;
	}
	return store__fr_mdb_errno(mdb_txn_commit(txn), "commit");
}

/* The default quota (store.h), fixed at the first open; the disk's block
 * size and the reserve. */
static int
space_setup(struct store_frag *sf, uint64_t quota_bytes)
{
	static const char key[] = "quota.default";
	MDB_val k = { sizeof key - 1, (void *)key }, v;
	unsigned char buf[8];
	struct statvfs vfs;
	uint64_t fs, q = 0;
	MDB_txn *txn;
	int rc;

	if (fstatvfs(sf->dirfd, &vfs) != 0)
		return -errno;
	sf->blk = vfs.f_bsize >= 512 && vfs.f_bsize <= (1u << 20) ?
	    vfs.f_bsize : 4096;
	fs = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	sf->reserve = fs / 100;
	if (sf->reserve < (64ull << 20))
		sf->reserve = 64ull << 20;
	if (sf->reserve > (1ull << 30))
		sf->reserve = 1ull << 30;
	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		return rc;
	rc = store__fr_mdb_errno(mdb_get(txn, sf->misc, &k, &v), "misc get");
	if (rc == 0 && v.mv_size == 8)
		q = get_be64(v.mv_data);
	if (q == 0) {
		q = (uint64_t)vfs.f_bavail * vfs.f_frsize / 10;
		if (q == 0)
			q = 1;
		put_be64(buf, q);
		v.mv_size = sizeof buf;
		v.mv_data = buf;
		rc = store__fr_mdb_errno(mdb_put(txn, sf->misc, &k, &v, 0), "misc put");
		if (rc < 0) {
			mdb_txn_abort(txn);
			return rc;
		}
	}
	sf->quota = quota_bytes ? quota_bytes : q;
	return store__fr_mdb_errno(mdb_txn_commit(txn), "commit");
}

/* One process per store: <dir>/.lock, flock'd, holds its pid. */
static int
take_lock(struct store_frag *sf)
{
	char buf[32];
	int n;

	sf->lockfd = openat(sf->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (sf->lockfd < 0)
		return -errno;
	if (flock(sf->lockfd, LOCK_EX | LOCK_NB) != 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(sf->lockfd, 0) != 0 ||
	    pwrite(sf->lockfd, buf, (size_t)n, 0) != n)
		return -errno;
	return 0;
}

int
store_frag_open(struct store_frag **out, const char *dir, uint64_t quota_bytes)
{
	struct store_frag *sf;
	int rc;

	if ((rc = cr_init()) < 0)
		return rc;
	if (!(sf = calloc(1, sizeof *sf)))
		return -ENOMEM;
	sf->dirfd = sf->lockfd = -1;
	if (pthread_mutex_init(&sf->lock, NULL) != 0) {
		free(sf);
		return -ENOMEM;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		goto fail;
	}
	sf->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sf->dirfd < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = take_lock(sf)) < 0 || (rc = store__fr_acct_env_open(sf, dir, 0)) < 0 ||
	    (rc = space_setup(sf, quota_bytes)) < 0 ||
	    (rc = reconcile(sf)) < 0 || (rc = store__fr_recount(sf)) < 0)
		goto fail;
	log_debug("frag: %s: %" PRIu64 " fragments, %" PRIu64 " bytes", dir,
	    sf->count, sf->bytes);
	*out = sf;
	return 0;
fail:
	if (rc != -EBUSY)
		log_error("frag: open %s: %s", dir, strerror(-rc));
	store_frag_close(sf);
	return rc;
}

void
store_frag_close(struct store_frag *sf)
{
	if (!sf)
		return;
	if (sf->env) {
		mdb_env_sync(sf->env, 1);
		mdb_env_close(sf->env);
	}
	if (sf->lockfd >= 0)
		close(sf->lockfd);	/* releases the lock */
	if (sf->dirfd >= 0)
		close(sf->dirfd);
	pthread_mutex_destroy(&sf->lock);
	free(sf->resv);
	free(sf->friends);
	free(sf);
}

/* For store/heads.c, which keeps its files under the same directory. */
int
store__frag_dirfd(const struct store_frag *sf)
{
	return sf->dirfd;
}

/* ---- heads, for store/heads.c ---------------------------------------------- */

/* Under sf->lock: owner's heads are charged cost (n heads); what grows
 * uses its reservation first. */
static int
heads_set_locked(struct store_frag *sf, const unsigned char *owner,
    uint64_t cost, uint64_t n)
{
	struct oacct a;
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	MDB_txn *txn;
	int rc;

	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc < 0)
		return rc;
	if ((rc = store__fr_acct_get(txn, sf, owner, &a)) < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	a.hcharge = cost;
	a.hn = n;
	if (a.contact == 0 || a.contact < (int64_t)time(NULL) - TOUCH_SECS)
		a.contact = (int64_t)time(NULL);
	if (n == 0 && !a.has_own && a.evicted == 0) {
		int r = mdb_del(txn, sf->contact, &k, NULL);
		rc = store__fr_mdb_errno(r == MDB_NOTFOUND ? 0 : r, "contact del");
	} else {
		rc = store__fr_contact_put(txn, sf, owner, &a);
	}
	if (rc == 0)
		rc = store__fr_mdb_errno(mdb_txn_commit(txn), "commit");
	else
		mdb_txn_abort(txn);
	if (rc < 0)
		return rc;
	return 0;
}

/* Under sf->lock: 0 when owner (records a) may add `add` to its heads'
 * charge, its reservation first; else -EACCES, -EDQUOT or -ENOSPC. */
static int
heads_fit(struct store_frag *sf, const unsigned char *owner,
    const struct oacct *a, uint64_t add)
{
	struct frag_resv *r;
	uint64_t lim, held_o;
	int why;

	store__fr_resv_gc(sf);
	/* A head may use the owner's reservation, like a fragment: else an
	 * owner holding all its room for uploads could not publish the
	 * index that names them. */
	r = store__fr_resv_find(sf, owner);
	held_o = r ? r->held : 0;
	lim = store__fr_room_left(sf, owner, a, held_o, &why);
	if (why == -EACCES)
		return why;
	return add <= held_o || add - held_o <= lim ? 0 : why;
}

int
store__frag_heads_room(struct store_frag *sf, const unsigned char *owner,
    uint64_t after)
{
	struct oacct a;
	uint64_t add;
	int rc;

	pthread_mutex_lock(&sf->lock);
	if ((rc = store__fr_acct_read(sf, owner, &a)) < 0)
		goto out;
	/* Measured against what is charged, not against the files found:
	 * were they ever more than the charge, the difference would come in
	 * unchecked with store__frag_heads_set. */
	add = after > a.hcharge ? after - a.hcharge : 0;
	if (add == 0)
		goto out;	/* shrinks or stays: corrected after */
	if ((rc = heads_fit(sf, owner, &a, add)) < 0)
		goto out;
	/* Charged now, before the file is written: a put racing the write
	 * finds the room taken. store__frag_heads_set corrects it after. */
	if ((rc = heads_set_locked(sf, owner, after, a.hn + 1)) == 0) {
		store__fr_totals_add(sf, owner, 0, (int64_t)add);
		store__fr_resv_take(sf, owner, add);
	}
out:
	pthread_mutex_unlock(&sf->lock);
	return rc;
}

int
store__frag_heads_set(struct store_frag *sf, const unsigned char *owner,
    uint64_t cost, uint64_t n)
{
	struct oacct a;
	int rc;

	pthread_mutex_lock(&sf->lock);
	if ((rc = store__fr_acct_read(sf, owner, &a)) < 0)
		goto out;
	/* More than was charged before the write: checked like any growth,
	 * so the charge never passes the owner's quota. */
	if (cost > a.hcharge && (rc = heads_fit(sf, owner, &a,
	    cost - a.hcharge)) < 0)
		goto out;
	if ((rc = heads_set_locked(sf, owner, cost, n)) == 0) {
		store__fr_totals_add(sf, owner, 0, (int64_t)cost - (int64_t)a.hcharge);
		if (cost > a.hcharge)
			store__fr_resv_take(sf, owner, cost - a.hcharge);
	}
out:
	pthread_mutex_unlock(&sf->lock);
	return rc;
}
