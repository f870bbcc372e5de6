/* owner/catchup.c - a node whose metadata holds changes on top of an older
 * version than the newest one (it wrote offline, while frozen past its
 * lease, or while another node held the lease) replays them on the newest
 * version once it holds the lease again.
 *
 * What is replayed: every regular file and symlink whose inode, extents
 * or inline bytes this node changed since its last version (the store's
 * change log says which). At its path in the newest version: absent -> it
 * is created there (with any missing directories); the same content ->
 * nothing; a file the other side left alone since our last version (its
 * ctime before that version's time: the nodes' clocks are assumed to
 * agree, as for the lease) -> ours replaces it; else the newest version
 * keeps its file and ours goes beside it as
 * NAME.conflict-YYYYMMDD-HHMMSS-NODE. Names this node removed (the change
 * log's deletion records of directory entries: unlink, rmdir, the old
 * name of a rename) are removed from the newest version too when what
 * they name there is unchanged since our last version (its ctime before
 * that version's time; a directory once empty), else kept. A renamed file is thus its new name replayed plus
 * its old name removed: when the other side changed it, both stay (the
 * old name theirs, the new one ours). A directory we moved is moved in
 * the newest version with whatever the other side put in it. Files this
 * node did not change take the newest version's state (their changes and
 * deletions win). A file's xattrs go with it (an xattr change is a
 * change); our empty directories that changed (new ones) are made there;
 * names of one inode of ours stay names of one inode. Nothing
 * this node wrote is dropped. The journal is uploaded first, so every
 * block named is on suppliers. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "owner/internal.h"
#include "util.h"

#define PATH_MAX_LEN	4096
#define DEPTH_MAX	256

/* Gathers the change stream: store_index_changes cuts it anywhere. */
struct bytes {
	unsigned char *p;
	size_t len, cap;
};

static int
changes_out(void *arg, const void *p, size_t n)
{
	struct bytes *b = arg;

	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		unsigned char *np;

		while (cap < b->len + n)
			cap *= 2;
		if (!(np = realloc(b->p, cap)))
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

struct saved_ext {
	uint64_t bno;
	struct store_block b;		/* secret: wiped */
};

struct saved {
	char *path;			/* relative, '/'-separated */
	struct store_inode in;
	struct saved_ext *ext;
	size_t next;
	unsigned char *inl;		/* bno 0 inline bytes */
	size_t inl_len;
	char *target;			/* symlink */
	struct bytes xa;		/* xattrs (xattrs_of) */
};

/* A name this node removed (unlinked, rmdir'd or renamed away) since its
 * last version: the change log's deletion record of (parent, name). */
struct unnamed {
	uint64_t parent;
	char name[STORE_NAME_MAX + 1];
	int done;
};

/* A directory of ours whose inode changed (maybe moved): where it is. */
struct dirat {
	uint64_t ino;
	char *path;
	int depth;
	int empty;
};

struct catch {
	struct vec changed;		/* uint64_t inos, unsorted */
	struct vec gone;		/* uint64_t inos ours replaced */
	struct vec unnamed;		/* struct unnamed */
	struct vec dirs;		/* struct dirat */
	struct vec touched;		/* uint64_t dir inos to stamp */
	struct vec links;		/* struct link */
	uint64_t base_ms;		/* our last version's (unix ms) */
	struct saved *v;
	size_t n, cap;
	int err;
};

/* ---- which inodes changed ------------------------------------------------- */

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* changed is sorted and unique once changed_inos is done. */
static int
has_ino(const struct catch *c, uint64_t ino)
{
	return c->changed.n && bsearch(&ino, c->changed.p, c->changed.n,
	    sizeof ino, u64_cmp) != NULL;
}

static void
add_ino(struct catch *c, uint64_t ino)
{
	const uint64_t *p = c->changed.p;

	/* The stream is in key order: a table's repeats are adjacent. */
	if ((!c->changed.n || p[c->changed.n - 1] != ino) &&
	    vec_push(&c->changed, &ino, sizeof ino) < 0)
		c->err = -ENOMEM;
}

/* The change records (store.h's stream): inodes (1), xattrs (4),
 * extents (5) and inline (9) keys start with the inode number; a deleted
 * dirent (2) is parent number | name. */
static int
changed_inos(struct catch *c, const unsigned char *b, size_t n)
{
	size_t off = 0;

	while (n - off >= 9) {
		uint8_t table = b[off];
		uint32_t klen = get_be32(b + off + 1);
		uint32_t vlen = get_be32(b + off + 5);
		size_t need = 9 + (size_t)klen +
		    (vlen == 0xffffffffu ? 0 : vlen);

		if (n - off < need)
			break;
		if ((table == 1 || table == 4 || table == 5 || table == 9) &&
		    klen >= 8)
			add_ino(c, get_be64(b + off + 9));
		if (table == 2 && vlen == 0xffffffffu && klen > 8 &&
		    klen - 8 <= STORE_NAME_MAX) {
			struct unnamed u = { 0 };

			u.parent = get_be64(b + off + 9);
			memcpy(u.name, b + off + 17, klen - 8);
			if (!memchr(u.name, '\0', klen - 8) &&
			    vec_push(&c->unnamed, &u, sizeof u) < 0)
				c->err = -ENOMEM;
		}
		off += need;
	}
	if (c->changed.n > 1) {
		uint64_t *p = c->changed.p;
		size_t u = 1;

		qsort(p, c->changed.n, sizeof *p, u64_cmp);
		for (size_t i = 1; i < c->changed.n; i++)
			if (p[i] != p[u - 1])
				p[u++] = p[i];
		c->changed.n = u;
	}
	return c->err;
}

/* ---- what our files are ---------------------------------------------------- */

struct walk {
	struct catch *c;
	struct store_txn *t;
	char path[PATH_MAX_LEN];
	size_t len;
	int depth;
};

/* ino's xattrs as name NUL | u32 BE length | value, in list order
 * (equal bytes: equal xattrs). */
static int
xattrs_of(struct store_txn *t, uint64_t ino, struct bytes *out)
{
	char *list = NULL, *nm;
	unsigned char *val = NULL;
	int len, rc = 0;

	if ((len = store_xattr_list(t, ino, NULL, 0)) <= 0)
		return len == -ENODATA ? 0 : len;
	if (!(list = malloc((size_t)len)) ||
	    (len = store_xattr_list(t, ino, list, (size_t)len)) < 0) {
		rc = list ? len : -ENOMEM;
		goto out;
	}
	for (nm = list; rc == 0 && nm < list + len; nm += strlen(nm) + 1) {
		unsigned char lb[4];
		int vl;

		if ((vl = store_xattr_get(t, ino, nm, NULL, 0)) < 0)
			continue;
		free(val);
		if (!(val = malloc(vl ? (size_t)vl : 1))) {
			rc = -ENOMEM;
			break;
		}
		if ((vl = store_xattr_get(t, ino, nm, val, (size_t)vl)) < 0)
			continue;
		put_be32(lb, (uint32_t)vl);
		if ((rc = changes_out(out, nm, strlen(nm) + 1)) == 0 &&
		    (rc = changes_out(out, lb, 4)) == 0)
			rc = changes_out(out, val, (size_t)vl);
	}
out:
	free(list);
	free(val);
	return rc;
}

static int
xattrs_put(struct store_txn *t, uint64_t ino, const struct bytes *xa)
{
	size_t off = 0;
	int rc;

	while (off < xa->len) {
		const char *nm = (const char *)xa->p + off;
		size_t nl = strlen(nm) + 1;
		uint32_t vl = get_be32(xa->p + off + nl);

		if ((rc = store_xattr_set(t, ino, nm, xa->p + off + nl + 4, vl,
		    0)) < 0)
			return rc;
		off += nl + 4 + vl;
	}
	return 0;
}

static int same_xattrs(struct store_txn *t, uint64_t ino,
    const struct saved *s);

static int save_file(struct walk *w, uint64_t ino);

static int
ext_cb(void *arg, uint64_t bno, const unsigned char *id)
{
	struct walk *w = arg;
	struct saved *s = &w->c->v[w->c->n];
	struct saved_ext *e;

	if (!(e = realloc(s->ext, (s->next + 1) * sizeof *e)))
		return -ENOMEM;
	s->ext = e;
	e = &s->ext[s->next];
	memset(e, 0, sizeof *e);
	e->bno = bno;
	if (store_block_get(w->t, id, &e->b) < 0) {
		char hex[17];

		hex_encode(hex, id, 8);
		log_warn("catch-up: %s: block %s has no record: a hole",
		    w->path, hex);
		return 0;
	}
	s->next++;
	return 0;
}

static int
walk_dir(void *arg, const char *name, uint64_t ino)
{
	struct walk *w = arg;
	struct store_inode in;
	size_t nl = strlen(name), old = w->len;
	int rc = 0;

	if (w->len + 1 + nl + 1 > sizeof w->path)
		return 0;
	if (store_ino_get(w->t, ino, &in) < 0)
		return 0;
	if (w->len)
		w->path[w->len++] = '/';
	memcpy(w->path + w->len, name, nl + 1);
	w->len += nl;
	if (S_ISDIR(in.mode) && has_ino(w->c, ino)) {
		struct dirat d = { ino, strdup(w->path), w->depth,
		    store_dirent_empty(w->t, ino) == 1 };

		if (!d.path || vec_push(&w->c->dirs, &d, sizeof d) < 0) {
			free(d.path);
			return -ENOMEM;
		}
	}
	if (S_ISDIR(in.mode) && w->depth < DEPTH_MAX) {
		w->depth++;
		rc = store_dirent_iter(w->t, ino, NULL, walk_dir, w);
		w->depth--;
	} else if ((S_ISREG(in.mode) || S_ISLNK(in.mode)) &&
	    has_ino(w->c, ino)) {
		rc = save_file(w, ino);
	}
	w->len = old;
	w->path[old] = '\0';
	return rc;
}

static int
save_file(struct walk *w, uint64_t ino)
{
	struct catch *c = w->c;
	struct saved *s;
	unsigned char buf[STORE_INLINE_MAX];
	size_t len;
	int rc;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		struct saved *nv = realloc(c->v, cap * sizeof *nv);

		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->cap = cap;
	}
	s = &c->v[c->n];
	memset(s, 0, sizeof *s);
	if (!(s->path = strdup(w->path)))
		return -ENOMEM;
	if ((rc = store_ino_get(w->t, ino, &s->in)) < 0)
		goto fail;
	if (S_ISLNK(s->in.mode)) {
		char tb[PATH_MAX_LEN];

		if ((rc = store_symlink_get(w->t, ino, tb, sizeof tb)) < 0)
			goto fail;
		if (!(s->target = strdup(tb))) {
			rc = -ENOMEM;
			goto fail;
		}
	} else {
		if ((rc = store_extent_iter(w->t, ino, 0, ext_cb, w)) < 0)
			goto fail;
		if (store_inline_get(w->t, ino, 0, buf, sizeof buf, &len) == 0 &&
		    len) {
			if (!(s->inl = malloc(len))) {
				rc = -ENOMEM;
				goto fail;
			}
			memcpy(s->inl, buf, len);
			s->inl_len = len;
		}
	}
	if ((rc = xattrs_of(w->t, ino, &s->xa)) < 0)
		goto fail;
	c->n++;
	return 0;
fail:
	free(s->path);
	free(s->target);
	free(s->ext);
	free(s->xa.p);
	return rc;
}

static void
catch_free(struct catch *c)
{
	for (size_t i = 0; i < c->n; i++) {
		struct saved *s = &c->v[i];

		if (s->ext) {
			sodium_memzero(s->ext, s->next * sizeof *s->ext);
			free(s->ext);
		}
		free(s->path);
		free(s->target);
		free(s->inl);
		free(s->xa.p);
	}
	free(c->v);
	for (size_t i = 0; i < c->dirs.n; i++)
		free(((struct dirat *)c->dirs.p)[i].path);
	vec_release(&c->changed);
	vec_release(&c->gone);
	vec_release(&c->unnamed);
	vec_release(&c->dirs);
	vec_release(&c->touched);
	vec_release(&c->links);
}

/* ---- putting them into the newest version ------------------------------- */

/* The same bytes as ino of the current tree (size, extents, inline). */
static int
same_content(struct store_txn *t, uint64_t ino, const struct saved *s)
{
	struct store_inode in;
	unsigned char id[CR_ID_BYTES], buf[STORE_INLINE_MAX];
	size_t len;

	if (store_ino_get(t, ino, &in) < 0 || (in.mode & S_IFMT) !=
	    (s->in.mode & S_IFMT) || in.size != s->in.size)
		return 0;
	if (S_ISLNK(in.mode)) {
		char tb[PATH_MAX_LEN];

		return store_symlink_get(t, ino, tb, sizeof tb) >= 0 &&
		    s->target && strcmp(tb, s->target) == 0;
	}
	for (size_t i = 0; i < s->next; i++)
		if (store_extent_get(t, ino, s->ext[i].bno, id) < 0 ||
		    memcmp(id, s->ext[i].b.id, CR_ID_BYTES) != 0)
			return 0;
	if (s->inl_len)
		return store_inline_get(t, ino, 0, buf, sizeof buf, &len) == 0 &&
		    len == s->inl_len && memcmp(buf, s->inl, len) == 0;
	return store_inline_get(t, ino, 0, buf, sizeof buf, &len) == -ENOENT;
}

static int
same_xattrs(struct store_txn *t, uint64_t ino, const struct saved *s)
{
	struct bytes b = { 0 };
	int same = xattrs_of(t, ino, &b) == 0 && b.len == s->xa.len &&
	    (!b.len || memcmp(b.p, s->xa.p, b.len) == 0);

	free(b.p);
	return same;
}

/* The directory for path's parent in t, created where missing; -ELOOP
 * when the way there passes through directory avoid (0: none). */
static int
parent_dir(struct store_txn *t, char *path, uint64_t avoid, uint64_t *dir,
    char **leaf)
{
	uint64_t cur = STORE_ROOT_INO;
	char *p = path, *slash;
	int rc;

	while ((slash = strchr(p, '/'))) {
		uint64_t next;
		struct store_inode in;

		*slash = '\0';
		rc = store_dirent_get(t, cur, p, &next);
		if (rc == 0 && next == avoid) {
			*slash = '/';
			return -ELOOP;
		} else if (rc == 0 && store_ino_get(t, next, &in) == 0 &&
		    S_ISDIR(in.mode)) {
			cur = next;
		} else if (rc == -ENOENT) {
			struct store_inode d = { 0 }, pd;

			if ((rc = store_ino_alloc(t, &next)) < 0)
				return rc;
			d.ino = next;
			d.mode = S_IFDIR | 0755;
			d.nlink = 2;
			store_inode_touch(&d, STORE_ATIME | STORE_MTIME |
			    STORE_CTIME);
			if ((rc = store_ino_put(t, &d)) < 0 ||
			    (rc = store_dirent_put(t, cur, p, next)) < 0)
				return rc;
			if (store_ino_get(t, cur, &pd) == 0) {
				pd.nlink++;
				store_inode_touch(&pd, STORE_MTIME | STORE_CTIME);
				if ((rc = store_ino_put(t, &pd)) < 0)
					return rc;
			}
			cur = next;
		} else {
			/* A file of theirs where we had a directory: ours
			 * goes beside it. */
			size_t l = strlen(p);

			*slash = '/';
			(void)l;
			return -ENOTDIR;
		}
		*slash = '/';
		p = slash + 1;
	}
	*dir = cur;
	*leaf = p;
	return 0;
}

/* The other side changed the inode since our last version (or we cannot
 * tell): a status change after that version's time. */
static int
changed_there(const struct catch *c, const struct store_inode *in)
{
	return !c->base_ms || (uint64_t)in->ctime_sec * 1000 +
	    in->ctime_nsec / 1000000 >= c->base_ms;
}

static int
touch_later(struct catch *c, uint64_t dir)
{
	return vec_push(&c->touched, &dir, sizeof dir);
}

static int
nlink_add(struct store_txn *t, uint64_t ino, int d)
{
	struct store_inode in;
	int rc;

	if ((rc = store_ino_get(t, ino, &in)) < 0)
		return rc;
	if (d < 0 && in.nlink == 0)
		return 0;
	in.nlink += d;
	return store_ino_put(t, &in);
}

/* Names of one inode of ours stay names of one inode: the first one put
 * (or found equal) is what the next ones link to. */
struct link {
	uint64_t ours, now;
};

static uint64_t
link_of(const struct catch *c, uint64_t ours)
{
	const struct link *l = c->links.p;

	for (size_t i = 0; i < c->links.n; i++)
		if (l[i].ours == ours)
			return l[i].now;
	return 0;
}

static int
note_link(struct catch *c, const struct saved *s, uint64_t now)
{
	struct link l = { s->in.ino, now };

	if (s->in.nlink < 2 || link_of(c, s->in.ino))
		return 0;
	return vec_push(&c->links, &l, sizeof l);
}

static int
put_file(struct store_txn *t, struct catch *c, const struct saved *s,
    const char *suffix)
{
	char path[PATH_MAX_LEN + 80], *leaf;
	uint64_t dir, ino, have, replace = 0;
	struct store_inode in = s->in, pd, theirs;
	int rc;

	snprintf(path, sizeof path, "%s", s->path);
	if ((rc = parent_dir(t, path, 0, &dir, &leaf)) < 0) {
		/* The parent is a file there now: next to the top. */
		snprintf(path, sizeof path, "%s%s", s->path, suffix);
		for (char *q = path; *q; q++)
			if (*q == '/')
				*q = '_';
		dir = STORE_ROOT_INO;
		leaf = path;
	}
	if (store_dirent_get(t, dir, leaf, &have) == 0) {
		char name[NAME_MAX + 1];

		if (same_content(t, have, s) && same_xattrs(t, have, s))
			return note_link(c, s, have);
		if (store_ino_get(t, have, &theirs) == 0 &&
		    !S_ISDIR(theirs.mode) && !changed_there(c, &theirs)) {
			/* Only we changed it: ours takes its name. */
			replace = have;
			goto create;
		}
		if (strlen(leaf) + strlen(suffix) >= sizeof name)
			return -ENAMETOOLONG;
		memcpy(name, leaf, strlen(leaf));
		memcpy(name + strlen(leaf), suffix, strlen(suffix) + 1);
		if (store_dirent_get(t, dir, name, &have) == 0 &&
		    same_content(t, have, s) && same_xattrs(t, have, s))
			return note_link(c, s, have);
		log_warn("catch-up: %s changed here and on the other node: "
		    "ours kept as %s", s->path, name);
		memmove(leaf, name, strlen(name) + 1);
		if (store_dirent_get(t, dir, leaf, &have) == 0)
			return -EEXIST;
	}
create:
	if (replace) {
		theirs.nlink = theirs.nlink ? theirs.nlink - 1 : 0;
		store_inode_touch(&theirs, STORE_CTIME);
		if ((rc = store_ino_put(t, &theirs)) < 0)
			return rc;
		if (theirs.nlink == 0 &&
		    vec_push(&c->gone, &replace, sizeof replace) < 0)
			return -ENOMEM;
	}
	if ((ino = link_of(c, s->in.ino))) {
		/* Another name of an inode already put. */
		if ((rc = store_dirent_put(t, dir, leaf, ino)) < 0 ||
		    (rc = nlink_add(t, ino, 1)) < 0)
			return rc;
		return touch_later(c, dir);
	}
	if ((rc = store_ino_alloc(t, &ino)) < 0 ||
	    (rc = note_link(c, s, ino)) < 0)
		return rc;
	in.ino = ino;
	in.nlink = 1;
	store_inode_touch(&in, STORE_CTIME);
	if ((rc = store_ino_put(t, &in)) < 0 ||
	    (rc = store_dirent_put(t, dir, leaf, ino)) < 0)
		return rc;
	if (store_ino_get(t, dir, &pd) == 0) {
		store_inode_touch(&pd, STORE_MTIME | STORE_CTIME);
		if ((rc = store_ino_put(t, &pd)) < 0)
			return rc;
	}
	if ((rc = xattrs_put(t, ino, &s->xa)) < 0)
		return rc;
	if (s->target)
		return store_symlink_put(t, ino, s->target);
	if (s->inl_len && (rc = store_inline_put(t, ino, 0, s->inl,
	    s->inl_len)) < 0)
		return rc;
	for (size_t i = 0; i < s->next; i++) {
		struct store_block b;

		if (store_block_get(t, s->ext[i].b.id, &b) == 0) {
			b.refcount++;
			rc = store_block_put(t, &b);
			sodium_memzero(&b, sizeof b);
		} else {
			b = s->ext[i].b;
			b.refcount = 1;
			rc = store_block_put(t, &b);
			sodium_memzero(&b, sizeof b);
		}
		if (rc < 0 || (rc = store_extent_put(t, ino, s->ext[i].bno,
		    s->ext[i].b.id)) < 0)
			return rc;
	}
	return 0;
}

/* A directory of ours (dirs[dir]) still at a name we removed
 * (unnamed[name]) in the newest version. */
struct move {
	size_t dir, name;
	int depth;
};

static int
depth_cmp(const void *a, const void *b)
{
	const struct move *x = a, *y = b;

	return (x->depth > y->depth) - (x->depth < y->depth);
}

static int
dirat_cmp(const void *a, const void *b)
{
	const struct dirat *x = a, *y = b;

	return (x->ino > y->ino) - (x->ino < y->ino);
}

/* Directories we moved: the newest version still has one at the name we
 * took it from (whatever the other side did inside it), so it moves to
 * where ours is, the shallowest first (a moved parent before its moved
 * children). A name taken there keeps both. */
static int
move_dirs(struct store_txn *t, struct catch *c)
{
	struct dirat *d = c->dirs.p;
	struct unnamed *u = c->unnamed.p;
	struct vec mv = { 0 };
	struct move *m;
	int rc = 0;

	if (c->dirs.n > 1)
		qsort(d, c->dirs.n, sizeof *d, dirat_cmp);
	for (size_t j = 0; j < c->unnamed.n && rc == 0; j++) {
		struct dirat key = { 0 }, *hit;
		struct move one;

		if (!c->dirs.n || store_dirent_get(t, u[j].parent, u[j].name,
		    &key.ino) < 0 || !(hit = bsearch(&key, d, c->dirs.n,
		    sizeof *d, dirat_cmp)))
			continue;
		one = (struct move){ (size_t)(hit - d), j, hit->depth };
		rc = vec_push(&mv, &one, sizeof one);
	}
	m = mv.p;
	if (rc == 0 && mv.n > 1)
		qsort(m, mv.n, sizeof *m, depth_cmp);
	for (size_t k = 0; k < mv.n && rc == 0; k++) {
		struct unnamed *un = &u[m[k].name];
		const struct dirat *di = &d[m[k].dir];
		char path[PATH_MAX_LEN], *leaf;
		struct store_inode in;
		uint64_t y = di->ino, dir, have;

		if (store_ino_get(t, y, &in) < 0 || !S_ISDIR(in.mode))
			continue;
		un->done = 1;
		snprintf(path, sizeof path, "%s", di->path);
		if (parent_dir(t, path, y, &dir, &leaf) < 0 ||
		    store_dirent_get(t, dir, leaf, &have) == 0) {
			log_warn("catch-up: directory %s moved here to %s: its "
			    "old name is kept (the new one is taken there)",
			    un->name, di->path);
			continue;
		}
		if ((rc = store_dirent_del(t, un->parent, un->name)) < 0 ||
		    (rc = store_dirent_put(t, dir, leaf, y)) < 0 ||
		    (rc = touch_later(c, un->parent)) < 0 ||
		    (rc = touch_later(c, dir)) < 0)
			break;
		if (dir != un->parent &&
		    ((rc = nlink_add(t, un->parent, -1)) < 0 ||
		    (rc = nlink_add(t, dir, 1)) < 0))
			break;
	}
	vec_release(&mv);
	return rc;
}

/* Names we removed: gone from the newest version too when the other side
 * did not change what they name since our last version (a directory once
 * it is empty: a pass per level); else they stay. */
static int
remove_unnamed(struct store_txn *t, struct catch *c, size_t *removed)
{
	struct unnamed *u = c->unnamed.p;
	int progress = 1, rc;

	while (progress) {
		progress = 0;
		for (size_t j = 0; j < c->unnamed.n; j++) {
			struct store_inode in;
			uint64_t y;

			if (u[j].done)
				continue;
			if (store_dirent_get(t, u[j].parent, u[j].name,
			    &y) < 0 || store_ino_get(t, y, &in) < 0) {
				u[j].done = 1;
				continue;
			}
			if (changed_there(c, &in)) {
				log_warn("catch-up: %s removed here but changed "
				    "on the other node: kept", u[j].name);
				u[j].done = 1;
				continue;
			}
			if (S_ISDIR(in.mode)) {
				if ((rc = store_dirent_empty(t, y)) < 0)
					return rc;
				if (!rc)
					continue;	/* maybe next pass */
				if ((rc = store_ino_del(t, y)) < 0 ||
				    (rc = nlink_add(t, u[j].parent, -1)) < 0)
					return rc;
			} else {
				in.nlink = in.nlink ? in.nlink - 1 : 0;
				if ((rc = store_ino_put(t, &in)) < 0)
					return rc;
				if (in.nlink == 0 &&
				    vec_push(&c->gone, &y, sizeof y) < 0)
					return -ENOMEM;
			}
			if ((rc = store_dirent_del(t, u[j].parent,
			    u[j].name)) < 0 ||
			    (rc = touch_later(c, u[j].parent)) < 0)
				return rc;
			u[j].done = 1;
			(*removed)++;
			progress = 1;
		}
	}
	for (size_t j = 0; j < c->unnamed.n; j++)
		if (!u[j].done)
			log_warn("catch-up: directory %s removed here keeps the "
			    "other node's files", u[j].name);
	return 0;
}

/* Our empty directories that changed since our last version (new ones,
 * mostly) exist in the newest version too, with any missing parents. */
static int
put_empty_dirs(struct store_txn *t, struct catch *c)
{
	const struct dirat *d = c->dirs.p;

	for (size_t i = 0; i < c->dirs.n; i++) {
		char path[PATH_MAX_LEN + 1], *leaf;
		uint64_t dir;
		int rc;

		if (!d[i].empty)
			continue;
		snprintf(path, sizeof path, "%s/", d[i].path);
		if ((rc = parent_dir(t, path, 0, &dir, &leaf)) == -ENOTDIR)
			log_warn("catch-up: empty directory %s: a file of the "
			    "other node has its name: not made", d[i].path);
		else if (rc < 0)
			return rc;
	}
	return 0;
}

/* The directories whose entries catch-up changed get one new time (after
 * every "changed there" judgement, which reads the old ones). */
static int
stamp_touched(struct store_txn *t, struct catch *c)
{
	const uint64_t *d = c->touched.p;
	struct timespec now;
	int rc;

	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t i = 0; i < c->touched.n; i++) {
		struct store_inode in;

		if (store_ino_get(t, d[i], &in) < 0)
			continue;
		store_inode_stamp(&in, STORE_MTIME | STORE_CTIME, &now);
		if ((rc = store_ino_put(t, &in)) < 0)
			return rc;
	}
	return 0;
}

int
owner__catchup(struct owner *o, const struct owner__newest *nw)
{
	struct store *st = o->conf.store;
	struct owner__index_io io;
	struct catch c = { 0 };
	struct walk *w = NULL;
	struct store_txn *t;
	void *nodep;
	size_t nodelen;
	uint64_t v;
	uint64_t since = 0, upto;
	char suffix[80], node[2 * OWNER__NODE_BYTES + 1], when[32];
	unsigned char me[OWNER__NODE_BYTES];
	struct tm tm;
	time_t now = time(NULL);
	size_t replayed = 0, removed = 0;
	int rc;

	/* Every block the files name must be on suppliers first. */
	if ((rc = owner__dirty_sync(o, 0)) < 0)
		return rc;
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	if (store_misc_u64_get(t, STORE_MISC_INDEX_GEN, &v) == 0)
		since = v;
	if (store_misc_u64_get(t, STORE_MISC_INDEX_TIME, &v) == 0)
		c.base_ms = v;
	memset(me, 0, sizeof me);
	if (store_misc_bytes_get(t, STORE_MISC_INDEX_NODE, &nodep,
	    &nodelen) == 0) {
		if (nodelen == sizeof me)
			memcpy(me, nodep, sizeof me);
		free(nodep);
	}
	store_txn_abort(t);
	{
		struct bytes ch = { 0 };

		if ((rc = store_index_changes(st, since, &upto, changes_out,
		    &ch)) == 0)
			rc = changed_inos(&c, ch.p, ch.len);
		if (ch.p) {
			sodium_memzero(ch.p, ch.cap);	/* block keys */
			free(ch.p);
		}
		if (rc < 0)
			goto out;
	}
	if (!(w = calloc(1, sizeof *w))) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		goto out;
	w->c = &c;
	w->t = t;
	rc = store_dirent_iter(t, STORE_ROOT_INO, NULL, walk_dir, w);
	store_txn_abort(t);
	if (rc < 0)
		goto out;
	log_info("catch-up: %zu files changed here since version of change "
	    "%" PRIu64 "; replaying them on version %" PRIu64, c.n, since,
	    nw->seq);
	/* The newest version replaces ours (a full snapshot apply). */
	owner__index_io_of(o, &io);
	if ((rc = owner__index_follow(&io, nw, 1)) < 0)
		goto out;
	owner__node_hex(node, me);
	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y%m%d-%H%M%S", &tm);
	snprintf(suffix, sizeof suffix, ".conflict-%s-%s", when, node);
	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		goto out;
	/* Moves and removals first: they are judged on the other side's
	 * tree, before our files land in it. */
	if ((rc = move_dirs(t, &c)) == 0)
		rc = remove_unnamed(t, &c, &removed);
	for (size_t i = 0; i < c.n && rc >= 0; i++) {
		if ((rc = put_file(t, &c, &c.v[i], suffix)) == -EEXIST)
			rc = 0;
		else if (rc == 0)
			replayed++;
	}
	if (rc >= 0)
		rc = put_empty_dirs(t, &c);
	if (rc >= 0)
		rc = stamp_touched(t, &c);
	if (rc < 0) {
		store_txn_abort(t);
		log_error("catch-up: cannot replay: %s (this node's files are "
		    "in its metadata no more; their blocks stay on "
		    "suppliers)", strerror(-rc));
		goto out;
	}
	if ((rc = store_txn_commit(t)) == 0)
		log_info("catch-up: %zu of %zu files replayed, %zu names "
		    "removed on version %" PRIu64, replayed, c.n, removed,
		    nw->seq);
	/* The files ours replaced: their blocks are freed (kept for
	 * --keep-versions versions like any overwritten file's). */
	for (size_t i = 0; rc == 0 && i < c.gone.n; i++)
		owner_drop(o, ((uint64_t *)c.gone.p)[i]);
out:
	free(w);
	catch_free(&c);
	return rc;
}
