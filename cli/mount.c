/* cli/mount.c - `peerfs mount`: open the home's metadata, connect to the
 * suppliers, mount, and stay in the background like sshfs. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "fs/fs.h"
#include "log.h"
#include "net/net.h"
#include "owner/owner.h"
#include "store/store.h"

#define MAX_PEERS 256
#define DEFAULT_CACHE (32ull << 20)

static const char mount_help[] =
"usage: peerfs mount [--home DIR] [--peer HOST:PORT]... [--ec K+M]\n"
"                    [--block-size SIZE] [--cache-size SIZE] [-f]\n"
"                    [--ping-interval D] [--suspect-after D] [--dead-after D]\n"
"                    [--audit-interval D] [--rebuild-rate SIZE]\n"
"                    [--rebuild-jobs N] [--sweep-interval D]\n"
"                    [--keep-versions N] [--write-back D]\n"
"                    [--lease D] [--take-over]\n"
"                    [-o FUSE_OPTS] MOUNTPOINT\n"
"\n"
"Mounts the owner's folder and returns once it serves (the daemon stays in\n"
"the background; its log is DIR/mount.log).\n"
"  --home DIR            home made by `peerfs init` (default $PEERFS_HOME or\n"
"                        ~/.peerfs)\n"
"  --peer HOST:PORT      a supplier; remembered in DIR/peers for next time\n"
"  --ec K+M              erasure code for new blocks (default 4+2)\n"
"  --block-size SIZE     block size, fixed at the first mount (default 4M)\n"
"  --cache-size SIZE     read cache in memory (default 32M; 0 = none)\n"
"  --timeout DURATION    network request timeout (default 10s)\n"
"  --passphrase-file F   passphrase of the key file\n"
"  --write-back D        upload a block once untouched this long, its file\n"
"                        closed or not (default 5s; 0 = at close). Full\n"
"                        blocks, fsync, `peerfs sync` and umount go at once\n"
"keeping data alive (durations: 500ms, 30s, 2m, 1h):\n"
"  --ping-interval D     ping every supplier this often (default 30s)\n"
"  --suspect-after D     silent this long: suspect, no new placements\n"
"                        (default 2m)\n"
"  --dead-after D        silent this long: dead, its fragments are rebuilt\n"
"                        elsewhere (default 30m; the gap to --suspect-after\n"
"                        keeps a reboot from starting a rebuild)\n"
"  --audit-interval D    one proof-of-storage pass over every fragment\n"
"                        (default 7d)\n"
"  --rebuild-rate SIZE   bytes per second rebuilds may move (default 50M)\n"
"  --rebuild-jobs N      blocks rebuilt at once (default 2)\n"
"  --keep-versions N     index versions whose data stays restorable with\n"
"                        `peerfs restore --version` (default 10, 0..100;\n"
"                        0 gives freed space back at once)\n"
"  --sweep-interval D    compare suppliers' fragments with the metadata this\n"
"                        often and delete what nothing references (default\n"
"                        5m; a fragment must be unreferenced in two sweeps)\n"
"one vault on several machines (homes restored from one recovery code):\n"
"  --lease D             the write lease this node holds while mounted,\n"
"                        renewed every third of it (default 60s); a crashed\n"
"                        node blocks writes elsewhere this long at most\n"
"  --take-over           when another node holds the lease: ask it to hand\n"
"                        over (it publishes its changes first), or take the\n"
"                        lease once it runs out; read-only until then\n"
"  -f                    stay in the foreground, log to stderr\n"
"  -o OPTS               FUSE mount options (allow_other, ...)\n"
"  --debug               verbose log\n";

struct mount_opts {
	const char *home_opt, *pass_file, *fuse_opts, *mnt;
	const char *peers[MAX_PEERS];
	int npeers, k, m, foreground;
	uint64_t block_size, cache_size, timeout_ms;
	int block_size_set;
	uint64_t ping_ms, suspect_ms, dead_ms, audit_ms, rebuild_rate;
	int rebuild_jobs;
	int keep_versions;
	uint64_t sweep_ms;
	uint64_t write_back_ms;
	int write_back_set;
	uint64_t map_size;		/* hidden, for tests: LMDB map bytes */
	uint64_t lease_ms;
	int take_over;
};

/* Adds the configured peers of <home>/peers to o and writes back the
 * union, so that peers given once are remembered. */
static int
merge_peers(const char *home, struct mount_opts *o)
{
	char *path = cli_path(home, "peers"), *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int given = o->npeers;

	if ((f = fopen(path, "r"))) {
		while ((n = getline(&line, &cap, f)) > 0) {
			line[strcspn(line, "\r\n \t#")] = '\0';
			if (!*line)
				continue;
			int dup = 0;
			for (int i = 0; i < o->npeers; i++)
				dup |= !strcmp(o->peers[i], line);
			if (!dup && o->npeers < MAX_PEERS)
				o->peers[o->npeers++] = strdup(line);
		}
		fclose(f);
	}
	free(line);
	if (given) {
		char *tmp = cli_path(home, "peers.tmp");
		if ((f = fopen(tmp, "w"))) {
			for (int i = 0; i < o->npeers; i++)
				fprintf(f, "%s\n", o->peers[i]);
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
settle_block_size(struct store *st, struct mount_opts *o)
{
	struct store_txn *t;
	uint32_t stored = 0;
	int rc;

	if ((rc = store_txn_begin(st, 0, &t)) < 0)
		return rc;
	rc = store_misc_get(t, "conf.block_size", &stored, sizeof stored);
	if (rc == (int)sizeof stored) {
		store_txn_abort(t);
		if (o->block_size_set && stored != o->block_size) {
			log_error("this home uses --block-size %u; it cannot "
			    "change after the first mount", stored);
			return -EINVAL;
		}
		o->block_size = stored;
		return 0;
	}
	stored = (uint32_t)o->block_size;
	if ((rc = store_misc_put(t, "conf.block_size", &stored, sizeof stored)) < 0) {
		store_txn_abort(t);
		return rc;
	}
	return store_txn_commit(t);
}

static int
parse(int argc, char **argv, struct mount_opts *o)
{
	static const struct option opts[] = {
		{ "home", required_argument, NULL, 'H' },
		{ "peer", required_argument, NULL, 'P' },
		{ "ec", required_argument, NULL, 'e' },
		{ "block-size", required_argument, NULL, 'b' },
		{ "cache-size", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "passphrase-file", required_argument, NULL, 'p' },
		{ "ping-interval", required_argument, NULL, 'I' },
		{ "suspect-after", required_argument, NULL, 'S' },
		{ "dead-after", required_argument, NULL, 'X' },
		{ "audit-interval", required_argument, NULL, 'A' },
		{ "rebuild-rate", required_argument, NULL, 'R' },
		{ "rebuild-jobs", required_argument, NULL, 'J' },
		{ "sweep-interval", required_argument, NULL, 'W' },
		{ "keep-versions", required_argument, NULL, 'K' },
		{ "write-back", required_argument, NULL, 'B' },
		{ "map-size", required_argument, NULL, 'M' },
		{ "lease", required_argument, NULL, 'L' },
		{ "take-over", no_argument, NULL, 'T' },
		{ "debug", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->k = 4;
	o->m = 2;
	o->block_size = 4u << 20;
	o->cache_size = DEFAULT_CACHE;
	o->timeout_ms = 10000;
	o->ping_ms = 30000;
	o->suspect_ms = 120000;
	o->dead_ms = 1800000;
	o->audit_ms = 7ull * 24 * 3600 * 1000;
	o->rebuild_rate = 50ull << 20;
	o->rebuild_jobs = 2;
	o->keep_versions = 10;
	o->sweep_ms = 5 * 60 * 1000;
	o->lease_ms = 60 * 1000;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hfo:", opts, NULL)) != -1) {
		switch (c) {
		case 'H': o->home_opt = optarg; break;
		case 'P':
			if (!strchr(optarg, ':'))
				return cli_bad_usage("mount", "bad --peer '%s' (HOST:PORT)", optarg);
			if (o->npeers == MAX_PEERS)
				return cli_bad_usage("mount", "too many --peer");
			o->peers[o->npeers++] = optarg;
			break;
		case 'e':
			if (cli_parse_ec(optarg, &o->k, &o->m) < 0)
				return cli_bad_usage("mount", "bad --ec '%s' (K+M, e.g. 4+2)", optarg);
			break;
		case 'b':
			if (cli_parse_size(optarg, &o->block_size) < 0 ||
			    o->block_size < 4096 || o->block_size > (16u << 20) ||
			    (o->block_size & 4095))
				return cli_bad_usage("mount", "bad --block-size '%s' "
				    "(a multiple of 4K, at most 16M)", optarg);
			o->block_size_set = 1;
			break;
		case 'c':
			if (cli_parse_size(optarg, &o->cache_size) < 0)
				return cli_bad_usage("mount", "bad --cache-size '%s'", optarg);
			break;
		case 't':
			if (cli_parse_duration(optarg, &o->timeout_ms) < 0 || !o->timeout_ms)
				return cli_bad_usage("mount", "bad --timeout '%s'", optarg);
			break;
		case 'I': case 'S': case 'X': case 'A': {
			uint64_t *v = c == 'I' ? &o->ping_ms : c == 'S' ?
			    &o->suspect_ms : c == 'X' ? &o->dead_ms : &o->audit_ms;

			if (cli_parse_duration(optarg, v) < 0 || *v == 0 ||
			    *v > (c == 'A' ? UINT64_MAX / 2 : (uint64_t)INT32_MAX))
				return cli_bad_usage("mount", "bad %s '%s' (a "
				    "duration: 500ms, 30s, 2m, 1h)", c == 'I' ?
				    "--ping-interval" : c == 'S' ? "--suspect-after" :
				    c == 'X' ? "--dead-after" : "--audit-interval",
				    optarg);
			break;
		}
		case 'R':
			if (cli_parse_size(optarg, &o->rebuild_rate) < 0 ||
			    o->rebuild_rate < 4096)
				return cli_bad_usage("mount", "bad --rebuild-rate "
				    "'%s' (bytes per second, at least 4K)", optarg);
			break;
		case 'J': {
			char *end;
			long n = strtol(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || n < 1 || n > 16)
				return cli_bad_usage("mount", "bad --rebuild-jobs "
				    "'%s' (1 to 16)", optarg);
			o->rebuild_jobs = (int)n;
			break;
		}
		case 'K': {
			char *end;
			long n = strtol(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || n < 0 || n > 100)
				return cli_bad_usage("mount", "bad --keep-versions "
				    "'%s' (0 to 100)", optarg);
			o->keep_versions = (int)n;
			break;
		}
		case 'B':
			if (cli_parse_duration(optarg, &o->write_back_ms) < 0 ||
			    o->write_back_ms > 24ull * 3600 * 1000)
				return cli_bad_usage("mount", "bad --write-back "
				    "'%s' (a duration up to 24h: 0, 500ms, 5s)",
				    optarg);
			o->write_back_set = 1;
			break;
		case 'W':
			if (cli_parse_duration(optarg, &o->sweep_ms) < 0 ||
			    o->sweep_ms == 0 || o->sweep_ms > UINT64_MAX / 2)
				return cli_bad_usage("mount", "bad --sweep-interval "
				    "'%s' (a duration: 500ms, 30s, 2m, 1h)", optarg);
			break;
		case 'L':
			if (cli_parse_duration(optarg, &o->lease_ms) < 0 ||
			    o->lease_ms < 1000 || o->lease_ms > 86400000)
				return cli_bad_usage("mount", "bad --lease '%s' "
				    "(a duration, 1s .. 24h)", optarg);
			break;
		case 'T': o->take_over = 1; break;
		case 'M':
			/* Hidden: a tiny map shows that a full one gives
			 * ENOSPC, not corruption. */
			if (cli_parse_size(optarg, &o->map_size) < 0 ||
			    o->map_size < (64u << 10))
				return cli_bad_usage("mount", "bad --map-size '%s'",
				    optarg);
			break;
		case 'p': o->pass_file = optarg; break;
		case 'f': o->foreground = 1; break;
		case 'o': o->fuse_opts = optarg; break;
		case 'D': log_init("peerfs", LOG_DEBUG, NULL); break;
		case 'h': fputs(mount_help, stdout); exit(0);
		case ':': return cli_bad_usage("mount", "%s needs a value", argv[optind - 1]);
		default:  return cli_bad_usage("mount", "unknown option %s", argv[optind - 1]);
		}
	}
	if (o->suspect_ms > o->dead_ms)
		return cli_bad_usage("mount", "--suspect-after is longer than "
		    "--dead-after");
	if (optind != argc - 1)
		return cli_bad_usage("mount", optind < argc ?
		    "exactly one MOUNTPOINT expected" : "MOUNTPOINT missing");
	o->mnt = argv[optind];
	return 0;
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
};

static void
unmount_all(struct mounted *m)
{
	fs_free(m->fs);
	owner_close(m->owner);	/* before net goes: the last index */
	net_free(m->net);
	cr_ec_free(m->ec);
	store_cache_free(m->cache);
	if (m->st)
		store_close(m->st);
}

/* Opens every layer and mounts; on failure logs why and returns -errno. */
static int
mount_all(struct mounted *m, const char *home, struct cr_identity *id,
    struct mount_opts *o)
{
	int rc;

	if ((rc = store_open(&m->st, home, (size_t)o->map_size)) < 0) {
		log_error("metadata in %s/meta: %s", home, strerror(-rc));
		return rc;
	}
	if ((rc = settle_block_size(m->st, o)) < 0)
		return rc;
	if ((rc = store_cache_new(&m->cache, o->cache_size)) < 0)
		return rc;
	if ((rc = cr_ec_new(&m->ec, o->k, o->m)) < 0) {
		log_error("cannot set up erasure code %d+%d: %s", o->k, o->m,
		    strerror(-rc));
		return rc;
	}
	struct net_conf nc = {
		.id = id, .store = m->st, .ec = m->ec,
		.timeout_ms = (int)o->timeout_ms,
		.ping_interval_ms = (int)o->ping_ms,
		.suspect_after_ms = (int)o->suspect_ms,
		.dead_after_ms = (int)o->dead_ms,
	};
	cr_subkey(nc.audit_key, id, CR_SUBKEY_AUDIT);
	rc = net_new(&m->net, &nc);
	sodium_memzero(nc.audit_key, sizeof nc.audit_key);
	if (rc < 0) {
		log_error("network: %s", strerror(-rc));
		return rc;
	}
	for (int i = 0; i < o->npeers; i++)
		if ((rc = net_add_peer(m->net, o->peers[i])) < 0)
			log_warn("peer %s: %s", o->peers[i], strerror(-rc));
	int want = o->npeers < o->k + o->m ? o->npeers : o->k + o->m;
	int up = want ? net_wait_online(m->net, want, 5000) : 0;
	if (up < o->k + o->m)
		log_warn("%d of %d suppliers online (%d+%d needs %d): writes stay "
		    "in the journal until enough are reachable", up, o->npeers,
		    o->k, o->m, o->k + o->m);
	struct owner_conf oc = {
		.store = m->st, .cache = m->cache, .net = m->net, .id = id,
		.block_size = (uint32_t)o->block_size,
		.ec_k = o->k, .ec_m = o->m,
		.upload_threads = 2,
		.sync_timeout_ms = 120000,
		.rebuild_jobs = o->rebuild_jobs,
		.keep_versions = o->keep_versions,
		.rebuild_rate = o->rebuild_rate,
		.audit_interval_ms = (int64_t)o->audit_ms,
		.sweep_interval_ms = (int64_t)o->sweep_ms,
		.write_back_ms = !o->write_back_set ? 5000 :
		    o->write_back_ms == 0 ? -1 : (int64_t)o->write_back_ms,
		.lease_ms = (int64_t)o->lease_ms,
		.take_over = o->take_over,
	};
	cr_subkey(oc.datakey, id, CR_SUBKEY_DATA);
	rc = owner_open(&m->owner, &oc);
	sodium_memzero(oc.datakey, sizeof oc.datakey);
	if (rc < 0) {
		log_error("owner: %s", strerror(-rc));
		return rc;
	}
	char why[200];
	if (owner_readonly(m->owner, why, sizeof why))
		fprintf(stderr, "peerfs mount: %s is %s%s\n", o->mnt, why,
		    o->take_over ? "; asked for the lease (--take-over): "
		    "writable once handed over or run out" : "; `peerfs mount "
		    "--take-over` asks for the lease");
	struct fs_conf fc = {
		.store = m->st, .owner = m->owner, .max_threads = 16,
	};
	if ((rc = fs_new(&m->fs, &fc)) < 0) {
		log_error("filesystem: %s", strerror(-rc));
		return rc;
	}
	if ((rc = fs_mount(m->fs, o->mnt, o->fuse_opts)) < 0)
		return rc;
	log_info("mounted %s (%d+%d, %s, block %llu, cache %llu)", o->mnt,
	    o->k, o->m, cr_ec_backend(m->ec), (unsigned long long)o->block_size,
	    (unsigned long long)o->cache_size);
	return 0;
}

int
cmd_mount(int argc, char **argv)
{
	struct mount_opts o = { 0 };
	struct mounted m = { 0 };
	struct cr_identity *id = NULL;
	struct stat sb;
	char *home, *lock_path, *log_path, *pid_path, *abs_mnt;
	int rc, lock_fd, notify_fd = -1;
	FILE *logf = NULL;

	if ((rc = parse(argc, argv, &o)) != 0)
		return rc;
	if (stat(o.mnt, &sb) != 0) {
		fprintf(stderr, "peerfs mount: mountpoint %s: %s\n", o.mnt,
		    strerror(errno));
		return 1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "peerfs mount: mountpoint %s is not a directory\n",
		    o.mnt);
		return 1;
	}
	if (!(abs_mnt = realpath(o.mnt, NULL))) {
		fprintf(stderr, "peerfs mount: %s: %s\n", o.mnt, strerror(errno));
		return 1;
	}
	o.mnt = abs_mnt;
	home = cli_home(o.home_opt);
	if (cli_load_identity(home, o.pass_file, &id) < 0)
		return 1;
	merge_peers(home, &o);
	if (o.npeers == 0)
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
	if (!o.foreground && (logf = fopen(log_path, "a"))) {
		setvbuf(logf, NULL, _IOLBF, 0);
		log_set_file(logf);
	}
	rc = mount_all(&m, home, id, &o);
	if (rc < 0) {
		fprintf(stderr, "peerfs mount: cannot mount %s (see %s)\n", o.mnt,
		    o.foreground ? "above" : log_path);
		unmount_all(&m);
		cr_identity_free(id);
		return 1;
	}
	cli_write_pid(home, "mount.pid");
	if (!o.foreground)
		detached_ready(notify_fd, home);
	rc = fs_loop(m.fs);
	log_info("unmounted %s", o.mnt);
	unmount_all(&m);
	cr_identity_free(id);
	unlink(pid_path);
	return rc < 0 ? 1 : 0;
}
