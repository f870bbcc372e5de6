/* crypto/identity.c - library start-up, the key file, subkeys, hashing.
 *
 * Key file (209 bytes, integers big-endian):
 *   "PFSKEY1\0" | u8 flags (1 = real passphrase) | Argon2id salt (16)
 *   | u64 opslimit | u64 memlimit | secretbox nonce (24)
 *   | secretbox(pk | sk | master) (128 + 16)
 * The limits are stored so that stronger settings can be chosen later;
 * on load they are clamped, so a forged file cannot make us allocate
 * gigabytes or spin for minutes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "log.h"
#include "util.h"

#define KF_MAGIC	"PFSKEY1"	/* 8 bytes with the NUL */
#define KF_F_PASS	0x01
#define KF_SECRET	(CR_PK_BYTES + CR_SK_BYTES + CR_KEY_BYTES)
#define KF_O_FLAGS	8
#define KF_O_SALT	(KF_O_FLAGS + 1)
#define KF_O_OPS	(KF_O_SALT + crypto_pwhash_SALTBYTES)
#define KF_O_MEM	(KF_O_OPS + 8)
#define KF_O_NONCE	(KF_O_MEM + 8)
#define KF_O_BOX	(KF_O_NONCE + crypto_secretbox_NONCEBYTES)
#define KF_BYTES	(KF_O_BOX + crypto_secretbox_MACBYTES + KF_SECRET)

/* What we accept on load (what we write lies inside). */
#define KF_OPS_MAX	crypto_pwhash_OPSLIMIT_SENSITIVE
#define KF_MEM_MAX	crypto_pwhash_MEMLIMIT_MODERATE

_Static_assert(sizeof(struct cr_identity) == KF_SECRET,
    "cr_identity must be exactly pk | sk | master");

int
cr_init(void)
{
	/* sodium_init() is thread-safe and returns 1 when already done. */
	return sodium_init() < 0 ? -EIO : 0;
}

void
cr_identity_free(struct cr_identity *id)
{
	if (id)
		sodium_free(id);	/* wipes before unmapping */
}

void
cr_subkey(unsigned char out[CR_KEY_BYTES], const struct cr_identity *id,
    uint64_t subkey_id)
{
	crypto_kdf_derive_from_key(out, CR_KEY_BYTES, subkey_id, "peerfs__",
	    id->master);
}

void
cr_hash(unsigned char out[CR_HASH_BYTES], const void *p, size_t n)
{
	crypto_generichash(out, CR_HASH_BYTES, p, n, NULL, 0);
}

/* Derives the secretbox key; the empty passphrase stands for "none". */
static int
pass_key(unsigned char key[crypto_secretbox_KEYBYTES], const char *pass,
    const unsigned char *salt, uint64_t ops, uint64_t mem)
{
	if (!pass)
		pass = "";
	if (crypto_pwhash(key, crypto_secretbox_KEYBYTES, pass, strlen(pass),
	    salt, ops, (size_t)mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -ENOMEM;	/* libsodium fails here only on allocation */
	return 0;
}

/* Reads the whole key file into buf (KF_BYTES); -EINVAL on any other size. */
static int
read_file(const char *path, unsigned char buf[KF_BYTES])
{
	unsigned char extra;
	struct stat sb;
	size_t got = 0;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) != 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size != KF_BYTES) {
		rc = -EINVAL;
		goto out;
	}
	while (got < KF_BYTES) {
		n = read(fd, buf + got, KF_BYTES - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	/* The size may have changed under us: insist on exactly KF_BYTES. */
	if (got != KF_BYTES || read(fd, &extra, 1) != 0)
		rc = -EINVAL;
out:
	close(fd);
	return rc;
}

/* Writes buf to a temporary file next to path, fsyncs it, then moves it
 * into place without ever replacing an existing file (-EEXIST). */
static int
write_new_file(const char *path, const unsigned char *buf, size_t len)
{
	char *tmp = NULL, *dir = NULL, *slash;
	size_t off = 0;
	ssize_t n;
	int fd, dfd, rc = 0;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		free(tmp);
		return rc;
	}
	if (fchmod(fd, 0600) != 0) {
		rc = -errno;
		goto fail;
	}
	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0) {
		rc = -errno;
		goto fail;
	}
	close(fd);
	fd = -1;
	/* link() fails with EEXIST where rename() would overwrite: it is the
	 * atomic O_EXCL of a finished file. */
	if (link(tmp, path) != 0) {
		rc = -errno;
		/* No hard links here (vfat, some FUSE): rename, with a
		 * narrow window where a racing creator would be replaced. */
		if (rc != -EPERM && rc != -EOPNOTSUPP && rc != -ENOSYS)
			goto fail;
		if (access(path, F_OK) == 0) {
			rc = -EEXIST;
			goto fail;
		}
		if (rename(tmp, path) != 0) {
			rc = -errno;
			goto fail;
		}
	}
	unlink(tmp);
	dir = strdup(path);
	if (dir) {
		slash = strrchr(dir, '/');
		if (!slash)
			strcpy(dir, ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			if (fsync(dfd) != 0)
				log_warn("%s: fsync %s: %s", __func__, dir,
				    strerror(errno));
			close(dfd);
		}
		free(dir);
	}
	free(tmp);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return rc;
}

int
cr_keyfile_write(const char *path, const char *passphrase,
    const struct cr_identity *id)
{
	unsigned char buf[KF_BYTES], *key;
	const int has_pass = passphrase && *passphrase;
	/* A passphrase is stretched with Argon2id MODERATE (256 MiB, about
	 * a second, once per mount): the key file is what a stolen disk or
	 * backup offers to offline guessing. Files sealed before with
	 * INTERACTIVE still open: the limits are read from the file.
	 * Without a passphrase there is nothing to stretch: the cheapest
	 * Argon2id keeps the format, and spares every supplier start the
	 * memory and the time. */
	const uint64_t ops = has_pass ? crypto_pwhash_OPSLIMIT_MODERATE :
	    crypto_pwhash_OPSLIMIT_MIN;
	const uint64_t mem = has_pass ? crypto_pwhash_MEMLIMIT_MODERATE :
	    crypto_pwhash_MEMLIMIT_MIN;
	int rc;

	if (access(path, F_OK) == 0)	/* before the costly pwhash */
		return -EEXIST;
	if (!(key = sodium_malloc(crypto_secretbox_KEYBYTES)))
		return -ENOMEM;
	memcpy(buf, KF_MAGIC, 8);
	buf[KF_O_FLAGS] = has_pass ? KF_F_PASS : 0;
	randombytes_buf(buf + KF_O_SALT, crypto_pwhash_SALTBYTES);
	put_be64(buf + KF_O_OPS, ops);
	put_be64(buf + KF_O_MEM, mem);
	randombytes_buf(buf + KF_O_NONCE, crypto_secretbox_NONCEBYTES);
	if ((rc = pass_key(key, passphrase, buf + KF_O_SALT, ops, mem)) == 0) {
		crypto_secretbox_easy(buf + KF_O_BOX, (const unsigned char *)id,
		    KF_SECRET, buf + KF_O_NONCE, key);
		rc = write_new_file(path, buf, sizeof buf);
	}
	sodium_free(key);
	return rc;
}

int
cr_keyfile_create(const char *path, const char *passphrase,
    struct cr_identity **out)
{
	struct cr_identity *id;
	int rc;

	if (access(path, F_OK) == 0)
		return -EEXIST;
	if (!(id = sodium_malloc(sizeof *id)))
		return -ENOMEM;
	crypto_sign_keypair(id->pk, id->sk);
	randombytes_buf(id->master, sizeof id->master);
	if ((rc = cr_keyfile_write(path, passphrase, id)) < 0) {
		sodium_free(id);
		return rc;
	}
	*out = id;
	return 0;
}

int
cr_keyfile_load(const char *path, const char *passphrase,
    struct cr_identity **out)
{
	unsigned char buf[KF_BYTES], *key = NULL;
	unsigned char check[CR_PK_BYTES];
	struct cr_identity *id = NULL;
	uint64_t ops, mem;
	int rc, flags;

	if ((rc = read_file(path, buf)) < 0)
		return rc;
	flags = buf[KF_O_FLAGS];
	ops = get_be64(buf + KF_O_OPS);
	mem = get_be64(buf + KF_O_MEM);
	if (memcmp(buf, KF_MAGIC, 8) != 0 || (flags & ~KF_F_PASS) ||
	    ops < crypto_pwhash_OPSLIMIT_MIN || ops > KF_OPS_MAX ||
	    mem < crypto_pwhash_MEMLIMIT_MIN || mem > KF_MEM_MAX)
		return -EINVAL;
	if (flags & KF_F_PASS) {
		if (!passphrase || !*passphrase)
			return -EACCES;
	} else {
		passphrase = NULL;	/* none was set: ignore what we got */
	}
	id = sodium_malloc(sizeof *id);
	key = sodium_malloc(crypto_secretbox_KEYBYTES);
	if (!id || !key) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = pass_key(key, passphrase, buf + KF_O_SALT, ops, mem)) < 0)
		goto fail;
	if (crypto_secretbox_open_easy((unsigned char *)id, buf + KF_O_BOX,
	    KF_BYTES - KF_O_BOX, buf + KF_O_NONCE, key) != 0) {
		rc = -EACCES;
		goto fail;
	}
	/* An authentic box with an inconsistent keypair is still garbage. */
	if (crypto_sign_ed25519_sk_to_pk(check, id->sk) != 0 ||
	    sodium_memcmp(check, id->pk, CR_PK_BYTES) != 0) {
		rc = -EINVAL;
		goto fail;
	}
	sodium_free(key);
	*out = id;
	return 0;
fail:
	sodium_free(key);
	sodium_free(id);
	return rc;
}

int
cr_keyfile_has_passphrase(const char *path)
{
	unsigned char buf[KF_BYTES];
	int rc;

	if ((rc = read_file(path, buf)) < 0)
		return rc;
	if (memcmp(buf, KF_MAGIC, 8) != 0 || (buf[KF_O_FLAGS] & ~KF_F_PASS))
		return -EINVAL;
	return buf[KF_O_FLAGS] & KF_F_PASS ? 1 : 0;
}

/* ---- node binding ---------------------------------------------------------- */

#define BIND_CTX	"peerfs node binding v1"

static void
bind_msg(unsigned char *m, const unsigned char *owner,
    const unsigned char *node)
{
	memcpy(m, BIND_CTX, sizeof BIND_CTX - 1);
	memcpy(m + sizeof BIND_CTX - 1, owner, CR_PK_BYTES);
	memcpy(m + sizeof BIND_CTX - 1 + CR_PK_BYTES, node, CR_PK_BYTES);
}

void
cr_bind_sign(const struct cr_identity *owner, const struct cr_identity *node,
    unsigned char bind[CR_BIND_BYTES])
{
	unsigned char m[sizeof BIND_CTX - 1 + 2 * CR_PK_BYTES];

	bind_msg(m, owner->pk, node->pk);
	crypto_sign_detached(bind, NULL, m, sizeof m, owner->sk);
	crypto_sign_detached(bind + CR_SIG_BYTES, NULL, m, sizeof m, node->sk);
}

int
cr_bind_verify(const unsigned char owner[CR_PK_BYTES],
    const unsigned char node[CR_PK_BYTES],
    const unsigned char bind[CR_BIND_BYTES])
{
	unsigned char m[sizeof BIND_CTX - 1 + 2 * CR_PK_BYTES];

	bind_msg(m, owner, node);
	return crypto_sign_verify_detached(bind, m, sizeof m, owner) == 0 &&
	    crypto_sign_verify_detached(bind + CR_SIG_BYTES, m, sizeof m,
	    node) == 0 ? 0 : -EBADMSG;
}
