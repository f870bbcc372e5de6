/* cli/recover.c - recovery from the key alone:
 *   peerfs key export      prints the recovery code
 *   peerfs restore         new home from a recovery code and one supplier
 *   peerfs versions MNT    the index versions the suppliers hold */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "fs/ctl.h"
#include "log.h"
#include "net/dht.h"
#include "net/net.h"
#include "owner/owner.h"
#include "store/store.h"
#include "util.h"

#define CODE_MAX	4096	/* input: groups, dashes, spaces, newlines */

/* ---- peerfs key export ------------------------------------------------- */

int
cmd_key(int argc, char **argv)
{
	struct cli_conf o;
	struct cr_identity *id;
	char code[CR_RECOVERY_MAX], *home;
	int rc;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		cli_help(CLI_KEY, stdout);
		return 0;
	}
	if (argc < 2)
		return cli_bad_usage("key", "subcommand missing (export)");
	if (strcmp(argv[1], "export") != 0)
		return cli_bad_usage("key", "unknown subcommand '%s'", argv[1]);
	if ((rc = cli_parse(CLI_KEY, argc - 1, argv + 1, &o)) != CLI_RUN)
		return rc;
	home = cli_home(o.home);
	if (cli_load_identity(home, o.passphrase_file, &id) < 0) {
		free(home);
		return 1;
	}
	rc = cr_recovery_encode(id, code, sizeof code);
	cr_identity_free(id);
	free(home);
	if (rc < 0) {
		fprintf(stderr, "peerfs key: %s\n", strerror(-rc));
		return 1;
	}
	fprintf(stderr, "peerfs key: this code IS your identity and the key "
	    "to every file: keep it offline, never share it\n");
	printf("%s\n", code);
	fflush(stdout);
	sodium_memzero(code, sizeof code);
	return 0;
}

/* ---- peerfs restore ------------------------------------------------------ */

static int
restore_parse(int argc, char **argv, struct cli_conf *o)
{
	int rc;

	if ((rc = cli_parse(CLI_RESTORE, argc, argv, o)) != CLI_RUN)
		return rc;
	if (o->debug)
		log_init("peerfs", LOG_DEBUG, NULL);
	if (o->peers.n == 0 && o->bootstrap.n == 0)
		return cli_bad_usage("restore", "--peer HOST:PORT (a supplier "
		    "holding your data) or --bootstrap HOST:PORT (any node of "
		    "the network) is required");
	if (o->no_passphrase && o->passphrase_file)
		return cli_bad_usage("restore", "--no-passphrase and "
		    "--passphrase-file exclude each other");
	return CLI_RUN;
}

/* 1 when dir does not exist or is empty, 0 when it holds anything. */
static int
home_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return errno == ENOENT ? 1 : -errno;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

/* The code from a file, or stdin ('-'; a prompt on a terminal). */
static int
read_code(const char *file, char *buf, size_t size)
{
	FILE *f = stdin;
	size_t n = 0;
	int tty = 0;

	if (strcmp(file, "-") != 0) {
		if (!(f = fopen(file, "r"))) {
			fprintf(stderr, "peerfs restore: code file %s: %s\n",
			    file, strerror(errno));
			return -errno;
		}
	} else if (isatty(0)) {
		tty = 1;
		fprintf(stderr, "recovery code (groups as printed by `peerfs "
		    "key export`, then an empty line):\n");
	}
	char line[512];		/* a piece of the code: wiped below */

	for (;;) {
		if (!fgets(line, sizeof line, f))
			break;
		if (tty && (line[0] == '\n' || line[0] == '\0'))
			break;
		size_t l = strlen(line);
		if (n + l + 1 > size) {
			fprintf(stderr, "peerfs restore: the code is too long to "
			    "be a recovery code\n");
			n = 0;
			break;
		}
		memcpy(buf + n, line, l);
		n += l;
	}
	buf[n] = '\0';
	sodium_memzero(line, sizeof line);
	if (f != stdin)
		fclose(f);
	return n ? 0 : -EINVAL;
}

struct count {
	struct store_txn *t;
	uint64_t files, dirs, other;
	int depth;
};

static int count_dir(struct count *c, uint64_t ino);

static int
count_one(void *arg, const char *name, uint64_t ino)
{
	struct count *c = arg;
	struct store_inode in;

	if (store_ino_get(c->t, ino, &in) < 0)
		return 0;
	if (S_ISDIR(in.mode)) {
		c->dirs++;
		if (c->depth < 256)
			return count_dir(c, ino);
	} else if (S_ISREG(in.mode)) {
		c->files++;
	} else {
		c->other++;
	}
	return 0;
}

static int
count_dir(struct count *c, uint64_t ino)
{
	int rc;

	c->depth++;
	rc = store_dirent_iter(c->t, ino, NULL, count_one, c);
	c->depth--;
	return rc;
}

/* Remembers every supplier the network knows now, so that `peerfs
 * mount` needs no --peer: in <home>/peers, or for a home restored
 * through the network (hired) in <home>/hired as cli/network.c reads it
 * ("<hex id> <address>": the mount looks each id up again). */
static void
write_peers(const char *home, struct net *n, int hired)
{
	struct net_peer_info *pi = calloc(256, sizeof *pi);
	char *path = cli_path(home, hired ? "hired" : "peers");
	char x[2 * CR_PK_BYTES + 1];
	FILE *f;
	int np;

	if (pi && (np = net_peers(n, pi, 256, 0)) > 0 && (f = fopen(path, "w"))) {
		for (int i = 0; i < np && i < 256; i++) {
			if (!pi[i].addr[0])
				continue;
			if (!hired) {
				fprintf(f, "%s\n", pi[i].addr);
				continue;
			}
			if (sodium_is_zero(pi[i].pk, CR_PK_BYTES))
				continue;
			hex_encode(x, pi[i].pk, CR_PK_BYTES);
			fprintf(f, "%s %s\n", x, pi[i].addr);
		}
		if (fclose(f) != 0)
			fprintf(stderr, "peerfs restore: %s: %s\n", path,
			    strerror(errno));
	}
	free(pi);
	free(path);
}

/* What a failed restore created goes, so that it can be run again. */
static void
undo_home(const char *home, int created)
{
	static const char *const files[] = {
		"key", "meta/data.mdb", "meta/lock.mdb", "peers", "hired",
		"bootstrap", NULL,
	};
	static const char *const dirs[] = {
		"meta", "journal", "retired", "spare", NULL,
	};

	for (int i = 0; files[i]; i++) {
		char *p = cli_path(home, files[i]);
		unlink(p);
		free(p);
	}
	for (int i = 0; dirs[i]; i++) {
		char *p = cli_path(home, dirs[i]);
		DIR *d;
		struct dirent *de;

		/* spare/ holds the empty files the store made ready. */
		if (strcmp(dirs[i], "spare") == 0 && (d = opendir(p)) != NULL) {
			while ((de = readdir(d)) != NULL)
				if (de->d_name[0] != '.')
					unlinkat(dirfd(d), de->d_name, 0);
			closedir(d);
		}
		rmdir(p);
		free(p);
	}
	if (created)
		rmdir(home);
}

#define RESTORE_EC_K	4	/* the first guess: --ec's default */
#define RESTORE_EC_M	2

#define LOCATE_MS	20000	/* for the suppliers' records under our locator */
#define LOCATE_MAX	64

/* Without --peer: a DHT node joins through --bootstrap, and the suppliers
 * that hold our heads are read under our locator (a key derived from the
 * master secret: the suppliers announce themselves there, the owner's
 * machine may be gone). Each found key is pinned to its record's address
 * before any byte goes there. Returns how many were added, 0 none found. */
static int
restore_locate(struct cli_conf *o, const struct cr_identity *id,
    struct net *n, struct net_dht **dht)
{
	unsigned char loc[CR_KEY_BYTES];
	struct net_record *recs;
	char bind[80];
	int rc = -EINVAL, nr, added = 0;

	for (int i = 0; i < o->bootstrap.n && rc < 0; i++)
		rc = cli_local_addr_for(o->bootstrap.v[i], bind, sizeof bind);
	if (rc < 0) {
		fprintf(stderr, "peerfs restore: no route to %s\n",
		    o->bootstrap.v[0]);
		return rc;
	}
	struct net_dht_conf dc = {
		.id = id, .bind = bind,
		.bootstrap = (const char *const *)o->bootstrap.v,
		.nbootstrap = o->bootstrap.n,
	};
	/* A second network (another code) asks the node it has: the
	 * records found are kept there. */
	if (!*dht && (rc = net_dht_new(dht, &dc)) < 0) {
		fprintf(stderr, "peerfs restore: DHT node on %s: %s\n", bind,
		    strerror(-rc));
		return rc;
	}
	if (!(recs = calloc(LOCATE_MAX, sizeof *recs)))
		return -ENOMEM;
	cr_subkey(loc, id, CR_SUBKEY_LOCATOR);
	nr = net_dht_locate(*dht, loc, 1, LOCATE_MS, recs, LOCATE_MAX);
	sodium_memzero(loc, sizeof loc);
	for (int i = 0; i < nr; i++) {
		char addr[NET_RECORD_ADDR_MAX + 1];

		cli_record_addr(&recs[i], addr, sizeof addr);
		if ((rc = net_add_known_peer(n, addr, recs[i].id)) < 0)
			fprintf(stderr, "peerfs restore: supplier %s: %s\n",
			    addr, strerror(-rc));
		else
			added++;
	}
	free(recs);
	if (added == 0)
		fprintf(stderr, "peerfs restore: no supplier holding this "
		    "owner's index answered in the network through %s%s "
		    "(wrong code, never synced, or its suppliers are gone)\n",
		    o->bootstrap.v[0], o->bootstrap.n > 1 ? ", ..." : "");
	return added;
}

/* A network with code k+m, the --peer suppliers added (or, with only
 * --bootstrap, those found in the DHT: *dht is then the node, to free
 * after the network); NULL on failure (said why). */
static struct net *
restore_net(struct cli_conf *o, struct store *st, const struct cr_identity *id,
    struct cr_ec *ec, struct net_dht **dht)
{
	struct net *n = NULL;
	int rc, want = o->peers.n;

	struct net_conf nc = {
		.id = id, .store = st, .ec = ec, .timeout_ms = (int)o->timeout_ms,
		.reconnect_ms = (int)o->reconnect_ms,
		.ping_interval_ms = (int)o->ping_ms,
		.suspect_after_ms = (int)o->suspect_ms,
		.dead_after_ms = (int)o->dead_ms,
	};
	cr_subkey(nc.audit_key, id, CR_SUBKEY_AUDIT);
	rc = net_new(&n, &nc);
	sodium_memzero(nc.audit_key, sizeof nc.audit_key);
	if (rc < 0) {
		fprintf(stderr, "peerfs restore: network: %s\n", strerror(-rc));
		return NULL;
	}
	for (int i = 0; i < o->peers.n; i++)
		if ((rc = net_add_peer(n, o->peers.v[i])) < 0)
			fprintf(stderr, "peerfs restore: peer %s: %s\n",
			    o->peers.v[i], strerror(-rc));
	if (want == 0 && (want = restore_locate(o, id, n, dht)) <= 0) {
		net_free(n);
		return NULL;
	}
	if (net_wait_online(n, want, (int)o->timeout_ms) <= 0) {
		fprintf(stderr, "peerfs restore: no supplier reachable (%s%s)\n",
		    o->peers.n ? o->peers.v[0] : "found in the network",
		    o->peers.n > 1 ? ", ..." : "");
		net_free(n);
		return NULL;
	}
	return n;
}

/* What the index needs besides the key comes from its head: the code
 * (the network reads with one code, so it is opened again with the
 * head's when that differs from the default), and it is recorded in the
 * home for the mounts to come. */
static int
restore_code(struct cli_conf *o, struct store *st, const struct cr_identity *id,
    struct cr_ec **ec, struct net **n, struct net_dht **dht)
{
	struct owner_code c;
	struct store_txn *t;
	uint64_t v[2], bs;
	int rc, k, m;

	net_code(*n, &k, &m);
	if ((rc = owner_index_head_code(*n, id, o->version, &c)) < 0)
		return 0;	/* owner_index_restore says why */
	if (c.k != k || c.m != m) {
		net_free(*n);
		*n = NULL;
		cr_ec_free(*ec);
		*ec = NULL;
		if ((rc = cr_ec_new(ec, c.k, c.m)) < 0) {
			fprintf(stderr, "peerfs restore: the index's erasure "
			    "code %d+%d: %s\n", c.k, c.m, strerror(-rc));
			return rc;
		}
		if (!(*n = restore_net(o, st, id, *ec, dht)))
			return -EHOSTUNREACH;
	}
	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	v[0] = (uint64_t)c.k;
	v[1] = (uint64_t)c.m;
	rc = store_misc_u64s_put(t, STORE_MISC_EC, v, 2);
	if (rc == 0 && c.block_size &&
	    store_misc_u64_get(t, STORE_MISC_BLOCK_SIZE, &bs) == -ENOENT)
		rc = store_misc_u64_put(t, STORE_MISC_BLOCK_SIZE, c.block_size);
	if (rc < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

/* The index's blocks as they come: the first and last always shown. */
static void
restore_progress(void *arg, uint64_t done, uint64_t total,
    uint64_t bytes_left)
{
	cli_progress_show(arg, (long long)(total - done), (long long)total,
	    (long long)bytes_left, done == 0 || done == total);
}

static int
restore_run(struct cli_conf *o, const char *home,
    const struct cr_identity *id)
{
	struct cli_progress pg;
	struct owner_progress to = { restore_progress, &pg };
	struct store *st = NULL;
	struct cr_ec *ec = NULL;
	struct net *n = NULL;
	struct net_dht *dht = NULL;
	struct store_txn *t;
	struct count cnt = { 0 };
	uint64_t info[2];	/* seq, time of the head used */
	char when[64];
	time_t tt;
	int rc;

	if ((rc = store_open(&st, home, (size_t)o->map_size)) < 0) {
		fprintf(stderr, "peerfs restore: metadata in %s/meta: %s\n",
		    home, strerror(-rc));
		return rc;
	}
	/* Heads are fetched with any code; most homes use mount's default,
	 * so the network is opened with it and again only for another. */
	if ((rc = cr_ec_new(&ec, RESTORE_EC_K, RESTORE_EC_M)) < 0) {
		fprintf(stderr, "peerfs restore: erasure code: %s\n",
		    strerror(-rc));
		goto out;
	}
	if (!(n = restore_net(o, st, id, ec, &dht))) {
		rc = -EHOSTUNREACH;
		goto out;
	}
	if ((rc = restore_code(o, st, id, &ec, &n, &dht)) < 0)
		goto out;
	cli_progress_start(&pg, "restore", "index blocks", 1);
	rc = owner_index_restore(n, id, st, o->version, &to);
	cli_progress_end(&pg);
	if (rc < 0) {
		if (rc == -ENOENT && o->version)
			fprintf(stderr, "peerfs restore: version %" PRIu64 " is "
			    "on no reachable supplier\n", o->version);
		else if (rc == -ENOENT)
			fprintf(stderr, "peerfs restore: the suppliers hold no "
			    "index of this identity (wrong code, or never "
			    "synced?)\n");
		else
			fprintf(stderr, "peerfs restore: cannot restore the "
			    "index: %s\n", strerror(-rc));
		goto out;
	}
	write_peers(home, n, dht != NULL);
	if (dht) {
		char **boot;
		int nboot;

		/* The bootstrap given is remembered for the mount. */
		cli_bootstrap_merge(home, (const char *const *)o->bootstrap.v,
		    o->bootstrap.n, 0, &boot, &nboot);
		cli_strv_free(boot, nboot);
	}
	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		goto out;
	memset(info, 0, sizeof info);
	store_misc_u64s_get(t, STORE_MISC_INDEX_RESTORED, info, 2);
	cnt.t = t;
	count_dir(&cnt, STORE_ROOT_INO);
	store_txn_abort(t);
	tt = (time_t)info[1];
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&tt));
	printf("restored version %" PRIu64 " of %s: %" PRIu64 " files, %"
	    PRIu64 " directories, %" PRIu64 " other entries\n"
	    "now: peerfs mount --home %s MOUNTPOINT\n", info[0], when,
	    cnt.files, cnt.dirs, cnt.other, home);
	rc = 0;
out:
	net_free(n);
	net_dht_free(dht);
	cr_ec_free(ec);
	if (st)
		store_close(st);
	return rc;
}

int
cmd_restore(int argc, char **argv)
{
	struct cli_conf o;
	struct cr_identity *id = NULL;
	char *home, *key, *pass = NULL, *code;
	int rc, bad = 0, empty, created;

	/* Progress lines would drown the summary; warnings (a supplier
	 * offering an old head) stay. --debug shows everything. */
	log_init("peerfs", LOG_WARN, NULL);
	if ((rc = restore_parse(argc, argv, &o)) != CLI_RUN)
		return rc;
	if (cr_init() < 0)
		return 1;
	home = cli_home(o.home);
	if ((empty = home_empty(home)) <= 0) {
		fprintf(stderr, "peerfs restore: %s %s; restore only into a new, "
		    "empty home\n", home, empty < 0 ? strerror(-empty) :
		    "is not empty");
		free(home);
		return 1;
	}
	if (!(code = sodium_malloc(CODE_MAX))) {
		free(home);
		return 1;
	}
	if ((rc = read_code(o.code_file, code, CODE_MAX)) == 0)
		rc = cr_recovery_decode(code, &id, &bad);
	else if (rc == -EINVAL)
		fprintf(stderr, "peerfs restore: no recovery code given\n");
	sodium_free(code);
	if (rc == -EINVAL && bad > 0)
		fprintf(stderr, "peerfs restore: group %d of the recovery code "
		    "is mistyped\n", bad);
	else if (rc == -EBADMSG)
		fprintf(stderr, "peerfs restore: every group of the recovery "
		    "code checks but the whole does not: groups swapped or "
		    "missing?\n");
	else if (rc == -EPROTO)
		fprintf(stderr, "peerfs restore: this is not a peerfs recovery "
		    "code (wrong length or version)\n");
	if (rc < 0) {
		free(home);
		return 1;
	}
	if (!o.no_passphrase &&
	    (rc = cli_passphrase(o.passphrase_file, 1, 1, &pass)) < 0) {
		cr_identity_free(id);
		free(home);
		return 1;
	}
	created = access(home, F_OK) != 0;
	if ((rc = cli_mkdir_p(home, 0700)) < 0) {
		fprintf(stderr, "peerfs restore: cannot create %s: %s\n", home,
		    strerror(-rc));
		goto out;
	}
	key = cli_path(home, "key");
	rc = cr_keyfile_write(key, pass, id);
	if (rc < 0)
		fprintf(stderr, "peerfs restore: cannot write %s: %s\n", key,
		    strerror(-rc));
	free(key);
	if (rc == 0)
		rc = restore_run(&o, home, id);
	if (rc < 0)
		undo_home(home, created);
out:
	cli_passphrase_free(pass);
	cr_identity_free(id);
	free(home);
	return rc < 0 ? 1 : 0;
}

/* ---- peerfs versions ------------------------------------------------------ */

int
cmd_versions(int argc, char **argv)
{
	struct cli_conf o;
	const char *mnt;
	char *text, *line, *save = NULL;
	struct statfs sf;
	int rc;

	if ((rc = cli_parse(CLI_VERSIONS, argc, argv, &o)) != CLI_RUN)
		return rc;
	mnt = o.args[0];
	if (statfs(mnt, &sf) != 0) {
		fprintf(stderr, "peerfs versions: %s: %s\n", mnt, strerror(errno));
		return 1;
	}
	if ((rc = cli_ctl_get(mnt, FS_CTL_VERSIONS, &text)) < 0) {
		if (rc == -ENODATA || rc == -ENOTSUP)
			fprintf(stderr, "peerfs versions: %s is not a peerfs "
			    "mount\n", mnt);
		else
			fprintf(stderr, "peerfs versions: %s: %s\n", mnt,
			    strerror(-rc));
		return 1;
	}
	printf("%-8s %-19s %-16s %s\n", "VERSION", "TIME", "NODE", "SIZE");
	for (line = strtok_r(text, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		unsigned long long seq, when, size;
		char stamp[32], node[17];
		time_t tt;

		/* seq time node size: node is who published the version
		 * ("unknown" for versions made before nodes were named). */
		if (sscanf(line, "%llu %llu %16s %llu", &seq, &when, node,
		    &size) != 4)
			continue;
		tt = (time_t)when;
		strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S",
		    localtime(&tt));
		printf("%-8llu %-19s %-16s %llu\n", seq, stamp, node, size);
	}
	free(text);
	return 0;
}
