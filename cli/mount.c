/* cli/mount.c - `peerfs mount`: open the home's metadata, connect to the
 * suppliers, mount, and stay in the background like sshfs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "fs/fs.h"
#include "log.h"
#include "net/dht.h"
#include "net/net.h"
#include "owner/owner.h"
#include "store/store.h"

/* The options of `peerfs mount` are cli_opts[] entries for CLI_MOUNT
 * (cli/options.c); MOUNTPOINT is args[0]. */

/* Adds the configured peers of <home>/peers to o and writes back the
 * union, so that peers given once are remembered. */
static int
merge_peers(const char *home, struct cli_conf *o)
{
	char *path = cli_path(home, "peers"), *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	struct cli_list *pl = &o->peers;
	int given = pl->n;

	if ((f = fopen(path, "r"))) {
		while ((n = getline(&line, &cap, f)) > 0) {
			line[strcspn(line, "\r\n \t#")] = '\0';
			if (!*line)
				continue;
			int dup = 0;
			for (int i = 0; i < pl->n; i++)
				dup |= !strcmp(pl->v[i], line);
			if (!dup && pl->n < CLI_LIST_MAX)
				pl->v[pl->n++] = strdup(line);
		}
		fclose(f);
	}
	free(line);
	if (given) {
		char *tmp = cli_path(home, "peers.tmp");
		if ((f = fopen(tmp, "w"))) {
			for (int i = 0; i < pl->n; i++)
				fprintf(f, "%s\n", pl->v[i]);
			if (fclose(f) == 0)
				rename(tmp, path);
		}
		free(tmp);
	}
	free(path);
	return 0;
}

/* The block size decides which bytes an extent covers, so it is fixed by
 * the first mount of a home. */
static int
settle_block_size(struct store *st, struct cli_conf *o)
{
	struct store_txn *t;
	uint64_t stored;
	int rc;

	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	rc = store_misc_u64_get(t, STORE_MISC_BLOCK_SIZE, &stored);
	if (rc == 0) {
		store_txn_abort(t);
		if (cli_given(o, "block-size") && stored != o->block_size) {
			log_error("this home uses --block-size %" PRIu64 "; it "
			    "cannot change after the first mount", stored);
			return -EINVAL;
		}
		o->block_size = stored;
		return 0;
	}
	if (rc == -ENOENT)
		rc = store_misc_u64_put(t, STORE_MISC_BLOCK_SIZE, o->block_size);
	if (rc < 0) {
		store_txn_abort(t);
		log_error("block size of this home: %s", strerror(-rc));
		return rc;
	}
	return store_txn_commit(t);
}

/* Every block records its own code, but the network layer reads and
 * rebuilds with one code per mount: a home keeps the code of its first
 * mount, and an --ec that differs is refused rather than applied to new
 * blocks (the old ones would no longer be readable by this mount). Homes
 * mounted before the code was recorded take it from their index. */
static int
settle_ec(struct store *st, struct cli_conf *o)
{
	struct store_txn *t;
	uint64_t v[2];
	int rc, k, m;

	if ((rc = store_txn_begin(st, 1, &t)) < 0)
		return rc;
	rc = store_misc_u64s_get(t, STORE_MISC_EC, v, 2);
	store_txn_abort(t);
	if (rc == 2) {
		k = (int)v[0];
		m = (int)v[1];
	} else {
		if (owner_home_code(st, &k, &m) < 0) {
			k = o->ec.k;
			m = o->ec.m;
		}
		v[0] = (uint64_t)k;
		v[1] = (uint64_t)m;
		if ((rc = store_txn_begin(st, 0, &t)) == 0) {
			if ((rc = store_misc_u64s_put(t, STORE_MISC_EC, v, 2)) < 0)
				store_txn_abort(t);
			else
				rc = store_txn_commit(t);
		}
		if (rc < 0) {
			log_error("erasure code of this home: %s", strerror(-rc));
			return rc;
		}
	}
	if (cli_given(o, "ec") && (k != o->ec.k || m != o->ec.m)) {
		log_error("this home's blocks use --ec %d+%d; --ec %d+%d cannot "
		    "apply to it (the code is fixed by a home's first mount): "
		    "leave --ec out, or use a new home", k, m, o->ec.k, o->ec.m);
		return -EINVAL;
	}
	o->ec.k = k;
	o->ec.m = m;
	return 0;
}

static int
parse(int argc, char **argv, struct cli_conf *o)
{
	int rc;

	if ((rc = cli_parse(CLI_MOUNT, argc, argv, o)) != CLI_RUN)
		return rc;
	if (o->debug)
		log_init("peerfs", LOG_DEBUG, NULL);
	if (o->suspect_ms > o->dead_ms)
		return cli_bad_usage("mount", "--suspect-after is longer than "
		    "--dead-after");
	/* Checked before detaching, so a wrong address is said on the
	 * terminal, not only in mount.log. */
	struct sockaddr_storage ss;
	if (o->status_page && cli_statuspage_addr(o->status_page, &ss) < 0)
		return CLI_USAGE;
	return CLI_RUN;
}

static void
detached_ready(int notify_fd, const char *home)
{
	int null = open("/dev/null", O_RDWR);

	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
	if (write(notify_fd, "ok", 2) != 2)
		log_warn("could not tell the caller that the mount is ready");
	close(notify_fd);
}

struct mounted {
	struct store *st;
	struct store_cache *cache;
	struct cr_ec *ec;
	struct net *net;
	struct owner *owner;
	struct fs *fs;
	struct net_dht *dht;		/* the network: cli/network.c */
	struct cli_hirer *hirer;	/* with dht */
	char **boot;			/* bootstrap nodes, given or remembered */
	int nboot;
	char *ledger;			/* <home>/ledger (owner/audit.c) */
	struct cli_statuspage *page;	/* --status-page */
};

static void
unmount_all(struct mounted *m)
{
	cli_statuspage_stop(m->page);	/* it calls into owner */
	cli_hirer_stop(m->hirer);	/* it calls into net */
	fs_free(m->fs);
	owner_close(m->owner);	/* before net goes: the last index */
	net_free(m->net);
	net_dht_free(m->dht);
	cr_ec_free(m->ec);
	store_cache_free(m->cache);
	if (m->st)
		store_close(m->st);
	free(m->ledger);
}

/* Opens every layer and mounts; on failure logs why and returns -errno. */
static int
mount_all(struct mounted *m, const char *home, struct cr_identity *id,
    struct cli_conf *o, const char *mnt)
{
	int rc;

	if ((rc = store_open(&m->st, home, (size_t)o->map_size)) < 0) {
		log_error("metadata in %s/meta: %s", home, strerror(-rc));
		return rc;
	}
	if ((rc = settle_block_size(m->st, o)) < 0 ||
	    (rc = settle_ec(m->st, o)) < 0)
		return rc;
	if ((rc = store_cache_new(&m->cache, o->cache_size)) < 0)
		return rc;
	if ((rc = cr_ec_new(&m->ec, o->ec.k, o->ec.m)) < 0) {
		log_error("cannot set up erasure code %d+%d: %s", o->ec.k, o->ec.m,
		    strerror(-rc));
		return rc;
	}
	struct net_conf nc = {
		.id = id, .store = m->st, .ec = m->ec,
		.timeout_ms = (int)o->timeout_ms,
		.reconnect_ms = (int)o->reconnect_ms,
		.ping_interval_ms = (int)o->ping_ms,
		.suspect_after_ms = (int)o->suspect_ms,
		.dead_after_ms = (int)o->dead_ms,
		.lan = o->lan,
	};
	cr_subkey(nc.audit_key, id, CR_SUBKEY_AUDIT);
	if ((rc = cli_node_bind(home, id, nc.bind_node, nc.bind_sig)) < 0)
		return rc;
	nc.have_bind = rc;
	rc = net_new(&m->net, &nc);
	sodium_memzero(nc.audit_key, sizeof nc.audit_key);
	if (rc < 0) {
		log_error("network: %s", strerror(-rc));
		return rc;
	}
	int k = o->ec.k, km = o->ec.k + o->ec.m, np = o->peers.n;
	for (int i = 0; i < np; i++)
		if ((rc = net_add_peer(m->net, o->peers.v[i])) < 0)
			log_warn("peer %s: %s", o->peers.v[i], strerror(-rc));
	/* No --peer: suppliers come from the network (cli/network.c). */
	if (np == 0 && m->nboot > 0 &&
	    (rc = cli_net_hire(m->net, id, home, m->boot, m->nboot, k,
	    km - k, &m->dht)) > 0)
		np = rc;
	if (m->dht && (rc = cli_hirer_start(&m->hirer, m->net, m->dht, home,
	    k, km - k, (int)o->fire_below, (int64_t)o->avail_window_ms)) < 0)
		log_warn("network: no hirer (%s): lost suppliers are not "
		    "replaced", strerror(-rc));
	int want = np < km ? np : km;
	int up = want ? net_wait_online(m->net, want, 5000) : 0;
	if (up < km)
		log_warn("%d of %d suppliers online (%d+%d needs %d): writes stay "
		    "in the journal until enough are reachable", up, np,
		    k, km - k, km);
	if (!(m->ledger = cli_path(home, "ledger")))
		return -ENOMEM;
	struct owner_conf oc = {
		.store = m->st, .cache = m->cache, .net = m->net, .id = id,
		.block_size = (uint32_t)o->block_size,
		.ec_k = o->ec.k, .ec_m = o->ec.m,
		.upload_threads = (int)o->upload_jobs,
		.sync_timeout_ms = (int)o->sync_timeout_ms,
		.rebuild_jobs = (int)o->rebuild_jobs,
		.keep_versions = (int)o->keep_versions,
		.rebuild_rate = o->rebuild_rate,
		.audit_interval_ms = (int64_t)o->audit_ms,
		.ledger_path = m->ledger,
		.vet_after_ms = (int64_t)o->vet_after_ms,
		.sweep_interval_ms = (int64_t)o->sweep_ms,
		.write_back_ms = o->write_back_ms == 0 ? -1 :
		    (int64_t)o->write_back_ms,
		.lease_ms = (int64_t)o->lease_ms,
		.take_over = o->take_over,
		.finds_suppliers = m->hirer != NULL,
	};
	cr_subkey(oc.datakey, id, CR_SUBKEY_DATA);
	rc = owner_open(&m->owner, &oc);
	sodium_memzero(oc.datakey, sizeof oc.datakey);
	if (rc < 0) {
		log_error("owner: %s", strerror(-rc));
		return rc;
	}
	char why[200];
	/* 2: nobody holds the lease, only our try failed; asking a holder
	 * for it would be no use. */
	int ro = owner_readonly(m->owner, why, sizeof why);
	if (ro)
		fprintf(stderr, "peerfs mount: %s is %s%s\n", mnt, why,
		    ro == 2 ? "" : o->take_over ?
		    "; asked for the lease (--take-over): writable once "
		    "handed over or run out" : "; `peerfs mount --take-over` "
		    "asks for the lease");
	if (o->status_page) {
		char url[128];

		if ((rc = cli_statuspage_start(&m->page, m->owner, mnt,
		    o->status_page, url, sizeof url)) < 0)
			return rc;
		/* Before detaching stderr is still the caller's terminal;
		 * mount.log is 0600, so the token stays the user's. */
		fprintf(stderr, "peerfs mount: status page at %s\n", url);
		log_info("status page at %s", url);
	}
	struct fs_conf fc = {
		.store = m->st, .owner = m->owner,
		.max_threads = (int)o->fuse_threads,
	};
	if ((rc = fs_new(&m->fs, &fc)) < 0) {
		log_error("filesystem: %s", strerror(-rc));
		return rc;
	}
	if ((rc = fs_mount(m->fs, mnt, o->fuse_opts)) < 0)
		return rc;
	log_info("mounted %s (%d+%d, %s, block %llu, cache %llu)", mnt,
	    o->ec.k, o->ec.m, cr_ec_backend(m->ec),
	    (unsigned long long)o->block_size,
	    (unsigned long long)o->cache_size);
	return 0;
}

int
cmd_mount(int argc, char **argv)
{
	struct cli_conf o;
	struct mounted m = { 0 };
	struct cr_identity *id = NULL;
	struct stat sb;
	const char *mnt;
	char *home, *lock_path, *log_path, *pid_path, *abs_mnt;
	int rc, lock_fd, notify_fd = -1;
	FILE *logf = NULL;

	if ((rc = parse(argc, argv, &o)) != CLI_RUN)
		return rc;
	mnt = o.args[0];
	if (stat(mnt, &sb) != 0) {
		fprintf(stderr, "peerfs mount: mountpoint %s: %s\n", mnt,
		    strerror(errno));
		return 1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "peerfs mount: mountpoint %s is not a directory\n",
		    mnt);
		return 1;
	}
	if (!(abs_mnt = realpath(mnt, NULL))) {
		fprintf(stderr, "peerfs mount: %s: %s\n", mnt, strerror(errno));
		return 1;
	}
	mnt = abs_mnt;
	home = cli_home(o.home);
	cli_home_tighten(home);
	if (cli_load_identity(home, o.passphrase_file, &id) < 0)
		return 1;
	merge_peers(home, &o);
	cli_bootstrap_merge(home, o.bootstrap.v, o.bootstrap.n, 0, &m.boot,
	    &m.nboot);
	o.lan = cli_lan_remember(home, o.lan);
	if (o.peers.n == 0 && m.nboot == 0)
		fprintf(stderr, "peerfs mount: no suppliers known (--peer "
		    "HOST:PORT): mounting offline\n");

	/* One mount per home: the journal and metadata have one writer. */
	lock_path = cli_path(home, "mount.lock");
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr, "peerfs mount: home %s is already mounted by "
		    "another peerfs\n", home);
		return 1;
	}
	/* Fork before any thread or LMDB environment exists. */
	if (!o.foreground && (rc = cli_detach(&notify_fd)) < 0) {
		fprintf(stderr, "peerfs mount: cannot detach: %s\n", strerror(-rc));
		return 1;
	}
	log_path = cli_path(home, "mount.log");
	pid_path = cli_path(home, "mount.pid");
	if (!o.foreground && (logf = cli_open_log(home, "mount.log"))) {
		setvbuf(logf, NULL, _IOLBF, 0);
		log_set_file(logf);
	}
	rc = mount_all(&m, home, id, &o, mnt);
	if (rc < 0) {
		fprintf(stderr, "peerfs mount: cannot mount %s (see %s)\n", mnt,
		    o.foreground ? "above" : log_path);
		unmount_all(&m);
		cr_identity_free(id);
		return 1;
	}
	cli_write_pid(home, "mount.pid");
	if (!o.foreground)
		detached_ready(notify_fd, home);
	/* The kernel mount exists: requests wait in /dev/fuse for the loop. */
	cli_sd_notify("READY=1");
	rc = fs_loop(m.fs);
	cli_sd_notify("STOPPING=1");
	log_info("unmounted %s", mnt);
	unmount_all(&m);
	cr_identity_free(id);
	unlink(pid_path);
	return rc < 0 ? 1 : 0;
}
