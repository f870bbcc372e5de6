/* fs/dir.c - opendir, readdir(plus), releasedir, fsyncdir.
 * opendir takes a snapshot of the names (offsets are indexes + 1, stable
 * for the life of the handle whatever changes meanwhile); reading from
 * offset 0 again (rewinddir) takes a fresh one, as POSIX asks. */
#include <errno.h>
#include <stdlib.h>

#include "fs/internal.h"
#include "log.h"

struct dent {
	uint64_t ino;
	uint32_t type;		/* S_IFMT bits */
	uint32_t name;		/* offset in names */
};

struct snap {
	struct dent *e;
	size_t n, cap;
	char *names;
	size_t nlen, ncap;
	int read;		/* something was returned since the snapshot */
};

struct fill {
	struct snap *s;
	struct store_txn *t;
};

static int
snap_add(struct snap *s, const char *name, uint64_t ino, uint32_t type)
{
	size_t len = strlen(name) + 1;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		struct dent *e = realloc(s->e, cap * sizeof *e);

		if (!e)
			return -ENOMEM;
		s->e = e;
		s->cap = cap;
	}
	if (s->nlen + len > s->ncap) {
		size_t cap = s->ncap ? s->ncap * 2 : 1024;
		char *p;

		while (cap < s->nlen + len)
			cap *= 2;
		if (cap > UINT32_MAX || !(p = realloc(s->names, cap)))
			return -ENOMEM;
		s->names = p;
		s->ncap = cap;
	}
	memcpy(s->names + s->nlen, name, len);
	s->e[s->n].ino = ino;
	s->e[s->n].type = type;
	s->e[s->n].name = s->nlen;
	s->nlen += len;
	s->n++;
	return 0;
}

static int
fill_cb(void *arg, const char *name, uint64_t ino)
{
	struct fill *f = arg;
	struct store_inode in;

	/* A dangling name shows up with an unknown type rather than
	 * hiding the rest of the directory. */
	if (store_ino_get(f->t, ino, &in) < 0)
		in.mode = 0;
	return snap_add(f->s, name, ino, in.mode & S_IFMT);
}

static int
snap_take(struct fs *fs, uint64_t ino, struct snap *s)
{
	struct store_inode dir;
	struct store_txn *t;
	struct fill f = { s, NULL };
	uint64_t parent;
	int rc;

	s->n = 0;
	s->nlen = 0;
	s->read = 0;
	if ((rc = store_txn_begin(fs->conf.store, 1, &t)) < 0)
		return rc;
	f.t = t;
	if ((rc = store_ino_get(t, ino, &dir)) < 0)
		goto out;
	if (!S_ISDIR(dir.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	if ((rc = fs__parent(t, ino, &parent)) < 0 ||
	    (rc = snap_add(s, ".", ino, S_IFDIR)) < 0 ||
	    (rc = snap_add(s, "..", parent, S_IFDIR)) < 0)
		goto out;
	/* An rmdir'd directory still open reads as empty. */
	if (dir.nlink > 0)
		rc = store_dirent_iter(t, ino, NULL, fill_cb, &f);
out:
	store_txn_abort(t);
	return rc < 0 ? rc : 0;
}

static void
snap_free(struct snap *s)
{
	if (!s)
		return;
	free(s->e);
	free(s->names);
	free(s);
}

void
fs__op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct snap *s = calloc(1, sizeof *s);
	int rc;

	if (!s)
		return fs__reply_err(req, -ENOMEM);
	if ((rc = snap_take(fs__from_req(req), ino, s)) < 0) {
		snap_free(s);
		return fs__reply_err(req, rc);
	}
	fi->fh = (uintptr_t)s;
	if (fuse_reply_open(req, fi) != 0)
		snap_free(s);
}

static int
is_dot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' ||
	    (name[1] == '.' && name[2] == '\0'));
}

static void
do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi, int plus)
{
	struct fs *fs = fs__from_req(req);
	struct snap *s = (struct snap *)(uintptr_t)fi->fh;
	struct store_txn *t = NULL;
	uint64_t *refs = NULL;
	size_t i, pos = 0, nrefs = 0;
	char *buf;
	int rc;

	if (off < 0)
		return fs__reply_err(req, -EINVAL);
	if (off == 0 && s->read && (rc = snap_take(fs, ino, s)) < 0)
		return fs__reply_err(req, rc);
	if (!(buf = malloc(size ? size : 1)))
		return fs__reply_err(req, -ENOMEM);
	if (plus) {
		/* At most one entry per 24 bytes fits in the buffer. */
		refs = malloc((size / 24 + 1) * sizeof *refs);
		if (!refs || (rc = store_txn_begin(fs->conf.store, 1,
		    &t)) < 0) {
			free(refs);
			free(buf);
			return fs__reply_err(req, refs ? rc : -ENOMEM);
		}
	}
	for (i = off; i < s->n; i++) {
		const struct dent *d = &s->e[i];
		const char *name = s->names + d->name;
		struct fuse_entry_param e;
		struct store_inode in;
		size_t len;

		if (!plus) {
			memset(&e.attr, 0, sizeof e.attr);
			e.attr.st_ino = d->ino;
			e.attr.st_mode = d->type;
			len = fuse_add_direntry(req, buf + pos, size - pos,
			    name, &e.attr, i + 1);
			if (len > size - pos)
				break;
			pos += len;
			continue;
		}
		/* "." and ".." carry no lookup: the kernel skips them. */
		if (is_dot(name)) {
			memset(&e, 0, sizeof e);
			e.attr.st_ino = d->ino;
			e.attr.st_mode = d->type;
		} else {
			if (store_ino_get(t, d->ino, &in) < 0 || in.nlink == 0)
				continue;	/* removed since opendir */
			fs__entry(&in, &e);
		}
		len = fuse_add_direntry_plus(req, buf + pos, size - pos,
		    name, &e, i + 1);
		if (len > size - pos)
			break;
		if (e.ino) {
			if (fs__lookup_hold(fs, e.ino, 1) < 0) {
				if (pos == 0) {
					rc = -ENOMEM;
					goto fail;
				}
				break;
			}
			refs[nrefs++] = e.ino;
		}
		pos += len;
	}
	if (t)
		store_txn_abort(t);
	s->read = 1;
	if (fuse_reply_buf(req, buf, pos) != 0)
		for (i = 0; i < nrefs; i++)
			fs__lookup_release(fs, refs[i], 1);
	free(refs);
	free(buf);
	return;
fail:
	if (t)
		store_txn_abort(t);
	free(refs);
	free(buf);
	fs__reply_err(req, rc);
}

void
fs__op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

void
fs__op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

void
fs__op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	snap_free((struct snap *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Each change is committed when it is answered; this makes it durable. */
void
fs__op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
    struct fuse_file_info *fi)
{
	fs__reply_err(req, store_sync(fs__from_req(req)->conf.store));
}

