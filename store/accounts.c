/* store/accounts.c - the supplier's accounts per owner: what each owner
 * is charged and may still store, the admission policy (friends,
 * strangers' quota and share), listing the accounts, and evicting an owner.
 * Formats and locking: the top of store/frag.c. */
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

/* Fills out from the records a (under sf->lock, policy applied). */
static void
acct_fill(struct store_frag *sf, const unsigned char *owner,
    const struct oacct *a, struct store_frag_acct *out)
{
	struct frag_resv *r;
	uint64_t held_o, lim;
	int why;

	memset(out, 0, sizeof *out);
	memcpy(out->owner, owner, CR_PK_BYTES);
	out->bytes = a->bytes;
	out->fragments = a->count;
	out->heads = a->hn;
	out->charged = a->charge + a->hcharge;
	out->last_contact = a->contact;
	store__fr_resv_gc(sf);
	r = store__fr_resv_find(sf, owner);
	held_o = r ? r->held : 0;
	out->reserved = held_o;
	out->friend = store__fr_is_friend(sf, owner);
	out->admitted = out->friend || !sf->friends_only;
	out->quota = store__fr_owner_quota(sf, out->friend);
	if (!out->friend && sf->deal) {
		out->deal = 1;
		out->deal_limit = store__fr_deal_limit(sf, owner,
		    &out->earned);
	}
	out->deficit_since = a->deficit;
	out->evicted = a->evicted;
	lim = store__fr_room_left(sf, owner, a, held_o, &why);
	out->left = held_o + lim;
}

void
store_frag_account(struct store_frag *sf, const unsigned char *owner,
    struct store_frag_acct *out)
{
	struct oacct a;

	if (store__fr_acct_read(sf, owner, &a) < 0)
		memset(&a, 0, sizeof a);
	pthread_mutex_lock(&sf->lock);
	acct_fill(sf, owner, &a, out);
	pthread_mutex_unlock(&sf->lock);
}

void
store_frag_touch(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES])
{
	int64_t now = (int64_t)time(NULL);
	struct oacct a;
	MDB_txn *txn;

	if (store__fr_acct_read(sf, owner, &a) < 0 || (!a.has_own && !a.has_con) ||
	    (a.contact <= now && now - a.contact < TOUCH_SECS))
		return;
	pthread_mutex_lock(&sf->lock);
	if (mdb_txn_begin(sf->env, NULL, 0, &txn) == 0) {
		if (store__fr_acct_get(txn, sf, owner, &a) == 0 &&
		    (a.has_own || a.has_con)) {
			a.contact = now;
			if (store__fr_contact_put(txn, sf, owner, &a) == 0 &&
			    mdb_txn_commit(txn) == 0)
				txn = NULL;
		}
		if (txn)
			mdb_txn_abort(txn);
	}
	pthread_mutex_unlock(&sf->lock);
}

/* Walks owners and contact together, in key order (both are keyed by
 * the owner), calling cb with each owner's records. */
static int
walk_accounts(MDB_env *env, MDB_dbi owners, MDB_dbi contact,
    int (*cb)(void *arg, const unsigned char *owner, const struct oacct *a),
    void *arg)
{
	MDB_cursor *co = NULL, *cc = NULL;
	MDB_val ko, vo, kc, vc;
	MDB_txn *txn;
	int ro, rcc, rc;

	rc = store__fr_mdb_errno(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "begin");
	if (rc < 0)
		return rc;
	if ((rc = store__fr_mdb_errno(mdb_cursor_open(txn, owners, &co), "cursor")) < 0 ||
	    (rc = store__fr_mdb_errno(mdb_cursor_open(txn, contact, &cc), "cursor")) < 0)
		goto out;
	ro = mdb_cursor_get(co, &ko, &vo, MDB_FIRST);
	rcc = mdb_cursor_get(cc, &kc, &vc, MDB_FIRST);
	while (rc == 0 && (ro == 0 || rcc == 0)) {
		struct oacct a;
		const unsigned char *owner;
		int c;

		memset(&a, 0, sizeof a);
		if (ro == 0 && rcc == 0)
			c = memcmp(ko.mv_data, kc.mv_data, CR_PK_BYTES);
		else
			c = ro == 0 ? -1 : 1;
		if ((ro == 0 && ko.mv_size != CR_PK_BYTES) ||
		    (rcc == 0 && kc.mv_size != CR_PK_BYTES)) {
			rc = -EIO;
			break;
		}
		owner = c <= 0 ? ko.mv_data : kc.mv_data;
		if (c <= 0 && vo.mv_size == OWN_LEN) {
			a.bytes = get_be64(vo.mv_data);
			a.count = get_be64((unsigned char *)vo.mv_data + 8);
			a.charge = get_be64((unsigned char *)vo.mv_data + 16);
			a.has_own = 1;
		}
		if (c >= 0)
			(void)store__fr_contact_unpack(&a, &vc);
		rc = cb(arg, owner, &a);
		if (c <= 0)
			ro = mdb_cursor_get(co, &ko, &vo, MDB_NEXT);
		if (c >= 0)
			rcc = mdb_cursor_get(cc, &kc, &vc, MDB_NEXT);
	}
out:
	if (cc)
		mdb_cursor_close(cc);
	if (co)
		mdb_cursor_close(co);
	mdb_txn_abort(txn);
	return rc;
}

struct accts_arg {
	struct store_frag *sf;
	int (*cb)(void *arg, const struct store_frag_acct *a);
	void *arg;
};

static int
accts_cb(void *arg, const unsigned char *owner, const struct oacct *a)
{
	struct accts_arg *x = arg;
	struct store_frag_acct out;

	pthread_mutex_lock(&x->sf->lock);
	acct_fill(x->sf, owner, a, &out);
	pthread_mutex_unlock(&x->sf->lock);
	return x->cb(x->arg, &out);
}

static int policy_load(struct store_frag *sf);

int
store_frag_accounts(struct store_frag *sf, const char *dir,
    int (*cb)(void *arg, const struct store_frag_acct *a), void *arg)
{
	struct store_frag *tmp;
	struct accts_arg x = { .sf = sf, .cb = cb, .arg = arg };
	int rc;

	if (sf)
		return walk_accounts(sf->env, sf->owners, sf->contact,
		    accts_cb, &x);
	/* Another process may serve the store: read its LMDB and the policy
	 * it saved, change nothing (no reconcile, no lock). Reservations
	 * live in the server's memory: not counted here. */
	if (!(tmp = calloc(1, sizeof *tmp)))
		return -ENOMEM;
	tmp->lockfd = -1;
	pthread_mutex_init(&tmp->lock, NULL);
	tmp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = tmp->dirfd < 0 ? -errno : store__fr_acct_env_open(tmp, dir, 1);
	if (rc == 0)
		rc = policy_load(tmp);
	if (rc == 0) {
		pthread_mutex_lock(&tmp->lock);
		rc = store__fr_recount(tmp);
		pthread_mutex_unlock(&tmp->lock);
	}
	if (rc == 0) {
		x.sf = tmp;
		rc = walk_accounts(tmp->env, tmp->owners, tmp->contact,
		    accts_cb, &x);
	}
	if (tmp->env) {
		mdb_env_close(tmp->env);
		tmp->env = NULL;
	}
	store_frag_close(tmp);
	return rc;
}

/* ---- evict ---------------------------------------------------------------- */

struct ids {
	unsigned char (*id)[STORE_FRAGID_BYTES];
	size_t n, cap;
};

static int
ids_cb(void *arg, const unsigned char *fragid, uint64_t size)
{
	struct ids *x = arg;

	(void)size;
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 256;
		void *p = realloc(x->id, cap * sizeof *x->id);

		if (!p)
			return -ENOMEM;
		x->id = p;
		x->cap = cap;
	}
	memcpy(x->id[x->n++], fragid, STORE_FRAGID_BYTES);
	return 0;
}

/* Removes the files of dir (relative to dfd; no subdirectories expected
 * but the leaf ones of fragments, already emptied) and dir itself. */
static void
remove_dir(int dfd, const char *dir)
{
	struct dirent *de;
	DIR *d;
	int fd = openat(dfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);

	if (fd < 0)
		return;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    unlinkat(fd, de->d_name, 0) != 0 && errno == EISDIR)
			remove_dir(fd, de->d_name);
	closedir(d);
	unlinkat(dfd, dir, AT_REMOVEDIR);
}

int
store_frag_evict(struct store_frag *sf, const unsigned char owner[CR_PK_BYTES],
    uint64_t *freed)
{
	struct ids x = { 0 };
	struct oacct a;
	char oh[OWNER_HEX + 1];
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	MDB_txn *txn;
	int rc;

	if ((rc = store__fr_acct_read(sf, owner, &a)) < 0)
		return rc;
	if ((rc = store_frag_list(sf, owner, ids_cb, &x)) < 0)
		goto out;
	for (size_t i = 0; i < x.n; i++)
		if ((rc = store_frag_del(sf, owner, x.id[i])) < 0 &&
		    rc != -ENOENT)
			goto out;
	hex_encode(oh, owner, CR_PK_BYTES);
	pthread_mutex_lock(&sf->lock);
	remove_dir(sf->dirfd, oh);
	(void)fsync(sf->dirfd);
	store__fr_totals_add(sf, owner, 0, -(int64_t)a.hcharge);
	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc == 0) {
		int r = mdb_del(txn, sf->contact, &k, NULL);
		rc = store__fr_mdb_errno(r == MDB_NOTFOUND ? 0 : r, "evict");
		if (rc == 0)
			rc = store__fr_mdb_errno(mdb_txn_commit(txn), "commit");
		else
			mdb_txn_abort(txn);
	}
	store__fr_resv_gc(sf);
	store__fr_resv_take(sf, owner, UINT64_MAX);
	pthread_mutex_unlock(&sf->lock);
	if (rc == 0) {
		log_info("frag: evicted %s: %" PRIu64 " fragments, %" PRIu64
		    " heads", oh, a.count, a.hn);
		if (freed)
			*freed = a.charge + a.hcharge;
	}
out:
	free(x.id);
	return rc;
}


int
store_frag_evict_pending(struct store_frag *sf)
{
	unsigned char owner[CR_PK_BYTES];
	struct dirent *de;
	DIR *d;
	int fd, done = 0;

	fd = openat(sf->dirfd, "evict", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d))) {
		if (!store__fr_is_hex(de->d_name, OWNER_HEX))
			continue;
		store__fr_hex_decode(owner, de->d_name, CR_PK_BYTES);
		if (store_frag_evict(sf, owner, NULL) == 0)
			done++;
		unlinkat(fd, de->d_name, 0);
	}
	closedir(d);
	return done;
}

int
store_frag_evict_request(const char *dir,
    const unsigned char owner[CR_PK_BYTES], long *pid)
{
	char *path, oh[OWNER_HEX + 1], buf[32];
	ssize_t n;
	int fd, rc = 0;

	hex_encode(oh, owner, CR_PK_BYTES);
	if (asprintf(&path, "%s/evict", dir) < 0)
		return -ENOMEM;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		rc = -errno;
	free(path);
	if (rc < 0)
		return rc;
	if (asprintf(&path, "%s/evict/%s", dir, oh) < 0)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0)
		return -errno;
	close(fd);
	if (asprintf(&path, "%s/.lock", dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return -ENOENT;
	n = pread(fd, buf, sizeof buf - 1, 0);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	buf[n] = '\0';
	*pid = strtol(buf, NULL, 10);
	return *pid > 0 ? 0 : -ENOENT;
}

/* ---- policy --------------------------------------------------------------- */

static int
recount_cb(void *arg, const unsigned char *owner, const struct oacct *a)
{
	struct store_frag *sf = arg;

	sf->charge += a->charge;
	sf->heads += a->hcharge;
	if (!store__fr_is_friend(sf, owner))
		sf->strangers += a->charge + a->hcharge;
	return 0;
}

/* Under sf->lock: the charges' totals from the records. */
int
store__fr_recount(struct store_frag *sf)
{
	sf->charge = sf->heads = sf->strangers = 0;
	return walk_accounts(sf->env, sf->owners, sf->contact, recount_cb, sf);
}

/* The policy in misc "policy", for `accounts` read by another process:
 *   u8 flags (1 friends only, 2 a policy is set) | u64 quota |
 *   u64 stranger quota | u64 max fragments |
 *   u64 reserve | friends' keys (32 bytes each)                   (BE) */
#define POL_FIXED	(1 + 4 * 8)

static int
policy_save(struct store_frag *sf)
{
	static const char key[] = "policy";
	MDB_val k = { sizeof key - 1, (void *)key }, v;
	unsigned char *buf;
	MDB_txn *txn;
	int rc;

	v.mv_size = POL_FIXED + sf->nfriends * CR_PK_BYTES;
	if (!(buf = malloc(v.mv_size)))
		return -ENOMEM;
	buf[0] = (unsigned char)((sf->friends_only ? 1 : 0) |
	    (sf->policy_set ? 2 : 0));
	put_be64(buf + 1, sf->quota);
	put_be64(buf + 9, sf->stranger_quota);
	put_be64(buf + 17, sf->max_frags);
	put_be64(buf + 25, sf->reserve);
	if (sf->nfriends)
		memcpy(buf + POL_FIXED, sf->friends,
		    sf->nfriends * CR_PK_BYTES);
	v.mv_data = buf;
	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc == 0) {
		rc = store__fr_mdb_errno(mdb_put(txn, sf->misc, &k, &v, 0), "policy");
		if (rc == 0)
			rc = store__fr_mdb_errno(mdb_txn_commit(txn), "commit");
		else
			mdb_txn_abort(txn);
	}
	free(buf);
	return rc;
}

/* For a store read from afar: the policy its server saved, the block
 * size of its disk. */
static int
policy_load(struct store_frag *sf)
{
	static const char key[] = "policy";
	MDB_val k = { sizeof key - 1, (void *)key }, v;
	const unsigned char *p;
	struct statvfs vfs;
	MDB_txn *txn;
	size_t n;
	int rc;

	sf->blk = fstatvfs(sf->dirfd, &vfs) == 0 && vfs.f_bsize >= 512 &&
	    vfs.f_bsize <= (1u << 20) ? vfs.f_bsize : 4096;
	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, MDB_RDONLY, &txn), "begin");
	if (rc < 0)
		return rc;
	rc = mdb_get(txn, sf->misc, &k, &v);
	if (rc == MDB_NOTFOUND || (rc == 0 && (v.mv_size < POL_FIXED ||
	    (v.mv_size - POL_FIXED) % CR_PK_BYTES))) {
		mdb_txn_abort(txn);
		return 0;	/* never served since accounts began: no quota */
	}
	if ((rc = store__fr_mdb_errno(rc, "policy")) < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	p = v.mv_data;
	n = (v.mv_size - POL_FIXED) / CR_PK_BYTES;
	sf->policy_set = (p[0] & 2) != 0;
	sf->friends_only = p[0] & 1;
	sf->quota = get_be64(p + 1);
	sf->stranger_quota = get_be64(p + 9);
	sf->max_frags = get_be64(p + 17);
	sf->reserve = get_be64(p + 25);
	if (n && !(sf->friends = malloc(n * CR_PK_BYTES)))
		rc = -ENOMEM;
	else if (n)
		memcpy(sf->friends, p + POL_FIXED, n * CR_PK_BYTES);
	sf->nfriends = rc == 0 ? n : 0;
	mdb_txn_abort(txn);
	return rc;
}

int
store_frag_set_policy(struct store_frag *sf, const struct store_frag_policy *p)
{
	unsigned char (*f)[CR_PK_BYTES] = NULL;
	int rc;

	if (p && p->nfriends) {
		if (!(f = malloc(p->nfriends * sizeof *f)))
			return -ENOMEM;
		memcpy(f, p->friends, p->nfriends * sizeof *f);
		qsort(f, p->nfriends, sizeof *f, store__fr_pk_cmp);
	}
	pthread_mutex_lock(&sf->lock);
	free(sf->friends);
	sf->friends = f;
	sf->nfriends = p ? p->nfriends : 0;
	sf->policy_set = p != NULL;
	sf->friends_only = p ? p->friends_only : 0;
	sf->deal = p ? p->deal : 0;
	sf->credit = p ? p->credit : 0;
	sf->earned = p ? p->earned : NULL;
	sf->earned_arg = p ? p->earned_arg : NULL;
	sf->stranger_quota = p && p->stranger_quota ? p->stranger_quota :
	    STORE_FRAG_STRANGER_DEFAULT;
	sf->max_frags = p ? p->max_frags : 0;
	if (p && p->quota)
		sf->quota = p->quota;
	if (p && p->reserve)
		sf->reserve = p->reserve;
	/* Reservations were granted under the old rules: gone. */
	sf->nresv = 0;
	sf->held = sf->strangers_held = 0;
	rc = store__fr_recount(sf);
	if (rc == 0)
		rc = policy_save(sf);
	pthread_mutex_unlock(&sf->lock);
	return rc;
}

/* ---- the fair deal's eviction ------------------------------------------ */

int
store__fr_evicted_now(const struct store_frag *sf, const struct oacct *a)
{
	int64_t now = (int64_t)time(NULL);

	return a->evicted > 0 && sf->evict_grace > 0 && now >= a->evicted &&
	    now - a->evicted < sf->evict_grace;
}

int
store_deal_due(int64_t now, int64_t grace, int over,
    const struct store_ledger_state *ls, int64_t *since)
{
	/* The balances are evidence only while the mount keeps them: a
	 * ledger older than the grace (or none, or one that never saw a
	 * full audit pass) says nothing, and no evidence is not evidence
	 * of a breach. The clock stops; it starts afresh on new evidence. */
	int trusted = ls->written > 0 && ls->written <= now + 60 &&
	    now - ls->written <= grace && ls->pass_end > 0;

	if (!over || !trusted) {
		*since = 0;
		return 0;
	}
	/* Our fragments are moving: balances are in flux. No clock starts
	 * and nobody goes (a running clock keeps its start). */
	if (ls->rebuilding)
		return 0;
	if (*since <= 0 || *since > now) {
		*since = now;
		return 0;
	}
	/* A whole audit pass confirmed the deficit, and it lasted. */
	return now - *since >= grace && ls->pass_end >= *since;
}

struct deal_cand {
	unsigned char owner[CR_PK_BYTES];
	uint64_t charged;
	int64_t deficit, evicted;
};

struct deal_cands {
	struct deal_cand *c;
	size_t n, cap;
};

static int
deal_cand_cb(void *arg, const unsigned char *owner, const struct oacct *a)
{
	struct deal_cands *x = arg;

	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 64;
		void *p = realloc(x->c, cap * sizeof *x->c);

		if (!p)
			return -ENOMEM;
		x->c = p;
		x->cap = cap;
	}
	memcpy(x->c[x->n].owner, owner, CR_PK_BYTES);
	x->c[x->n].charged = a->charge + a->hcharge;
	x->c[x->n].deficit = a->deficit;
	x->c[x->n].evicted = a->evicted;
	x->n++;
	return 0;
}

/* Sets owner's deficit clock and eviction mark (evicted < 0: unchanged)
 * in its contact record; a record of nothing but an old mark goes. */
static int
deal_mark(struct store_frag *sf, const unsigned char *owner, int64_t deficit,
    int64_t evicted)
{
	MDB_val k = { CR_PK_BYTES, (void *)owner };
	struct oacct a;
	MDB_txn *txn = NULL;
	int rc;

	pthread_mutex_lock(&sf->lock);
	rc = store__fr_mdb_errno(mdb_txn_begin(sf->env, NULL, 0, &txn), "begin");
	if (rc == 0 && (rc = store__fr_acct_get(txn, sf, owner, &a)) == 0) {
		a.deficit = deficit;
		if (evicted >= 0)
			a.evicted = evicted;
		if (!a.has_own && a.hn == 0 && a.evicted == 0) {
			int r = mdb_del(txn, sf->contact, &k, NULL);
			rc = store__fr_mdb_errno(r == MDB_NOTFOUND ? 0 : r,
			    "contact del");
		} else {
			rc = store__fr_contact_put(txn, sf, owner, &a);
		}
	}
	if (rc == 0)
		rc = store__fr_mdb_errno(mdb_txn_commit(txn), "commit");
	else if (txn)
		mdb_txn_abort(txn);
	pthread_mutex_unlock(&sf->lock);
	return rc;
}


/* The deal's eviction of one owner: the request file first (a crash
 * midway is finished at the next open, store_frag_evict_pending), the
 * existing evict path, then the mark that refuses it for a grace. */
static int
deal_evict(struct store_frag *sf, const struct deal_cand *c, uint64_t limit,
    uint64_t earned, int64_t now)
{
	char req[6 + OWNER_HEX + 1], oh[OWNER_HEX + 1];
	uint64_t freed = 0;
	int fd, rc;

	hex_encode(oh, c->owner, CR_PK_BYTES);
	snprintf(req, sizeof req, "evict/%s", oh);
	if (mkdirat(sf->dirfd, "evict", 0700) != 0 && errno != EEXIST)
		return -errno;
	if ((fd = openat(sf->dirfd, req, O_WRONLY | O_CREAT | O_CLOEXEC,
	    0600)) < 0)
		return -errno;
	(void)fsync(fd);
	close(fd);
	if ((rc = store_frag_evict(sf, c->owner, &freed)) < 0)
		return rc;
	rc = deal_mark(sf, c->owner, 0, now);
	unlinkat(sf->dirfd, req, 0);
	log_warn("frag: evicted %s by the fair deal: it held %" PRIu64
	    " bytes here, beyond what its node holds for us (proved %" PRIu64
	    ") plus credit (limit %" PRIu64 "), since %" PRId64 " (%" PRId64
	    " s, grace %" PRId64 " s); %" PRIu64 " bytes freed", oh,
	    c->charged, earned, limit, c->deficit, now - c->deficit,
	    sf->evict_grace, freed);
	return rc;
}

int
store_frag_deal_evict(struct store_frag *sf, int64_t now, int64_t grace,
    const struct store_ledger_state *ls)
{
	struct deal_cands x = { 0 };
	int rc, done = 0;

	if (grace <= 0)
		return -EINVAL;
	pthread_mutex_lock(&sf->lock);
	sf->evict_grace = grace;
	pthread_mutex_unlock(&sf->lock);
	if ((rc = walk_accounts(sf->env, sf->owners, sf->contact,
	    deal_cand_cb, &x)) < 0)
		goto out;
	for (size_t i = 0; i < x.n; i++) {
		struct deal_cand *c = &x.c[i];
		uint64_t limit = 0, earned = 0;
		int64_t since = c->deficit, evicted = c->evicted;
		int stranger, due = 0;

		pthread_mutex_lock(&sf->lock);
		stranger = sf->deal && !store__fr_is_friend(sf, c->owner);
		if (stranger) {
			limit = store__fr_deal_limit(sf, c->owner, &earned);
			due = store_deal_due(now, grace, c->charged > limit,
			    ls, &since);
		} else {
			since = 0;	/* a friend now, or no deal */
		}
		pthread_mutex_unlock(&sf->lock);
		/* The refusal after an eviction lasts one grace. */
		if (evicted > 0 && (now < evicted || now - evicted >= grace))
			evicted = 0;
		if (due) {
			c->deficit = since;
			if ((rc = deal_evict(sf, c, limit, earned, now)) < 0)
				break;
			done++;
			continue;
		}
		if (since != c->deficit) {
			char oh[OWNER_HEX + 1];

			hex_encode(oh, c->owner, CR_PK_BYTES);
			if (since)
				log_info("frag: %s holds %" PRIu64 " bytes, "
				    "beyond the fair deal (proved %" PRIu64
				    " + credit = %" PRIu64 "): evicted in %"
				    PRId64 " s unless it recovers", oh,
				    c->charged, earned, limit, grace);
			else
				log_info("frag: %s: deficit clock stopped (%s)",
				    oh, stranger && c->charged > limit ?
				    "the ledger is stale or has no full audit "
				    "pass" : "within the fair deal");
		}
		if ((since != c->deficit || evicted != c->evicted) &&
		    (rc = deal_mark(sf, c->owner, since, evicted)) < 0)
			break;
	}
out:
	free(x.c);
	return rc < 0 ? rc : done;
}
