/* cli/supplier.c - `peerfs supplier`: lend disk space to owners. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "log.h"
#include "net/net.h"
#include "store/store.h"

static const char supplier_help[] =
"usage: peerfs supplier [--home DIR] --listen HOST:PORT --store DIR\n"
"                       [--quota SIZE] [--daemon] [--debug]\n"
"                       [--max-sessions N] [--max-per-address N]\n"
"                       [--max-per-key N] [--max-inflight SIZE]\n"
"                       [--handshake-timeout D] [--frame-timeout D]\n"
"                       [--idle-timeout D]\n"
"\n"
"Serves fragments to their owners until SIGTERM or SIGINT. Fragments are\n"
"stored under the store directory, acknowledged only after fsync.\n"
"  --home DIR        identity of this supplier (created, without a\n"
"                    passphrase, when DIR has no key yet)\n"
"  --listen H:P      address to listen on, e.g. 127.0.0.1:7071\n"
"  --store DIR       where fragments are kept\n"
"  --quota SIZE      most bytes to lend (e.g. 2G; default: the disk)\n"
"  --daemon          detach; pid in DIR/supplier.pid, log in DIR/supplier.log\n"
"Limits for peers it does not know (refusals are logged once a minute):\n"
"  --max-sessions N       sessions in all (default 1024, fewer when the\n"
"                         file descriptor limit is lower)\n"
"  --max-per-address N    sessions from one address (default 32)\n"
"  --max-per-key N        sessions of one owner key (default 8)\n"
"  --max-inflight SIZE    bytes held for frames, requests and replies of\n"
"                         all sessions (default 128M)\n"
"  --handshake-timeout D  to complete the handshake (default 10s)\n"
"  --frame-timeout D      for a frame begun to make progress, and for\n"
"                         replies to be read (default 30s)\n"
"  --idle-timeout D       an authenticated session with no traffic is\n"
"                         closed (default 5m; owners ping every 30s)\n"
"  (one more option and PEERFS_TEST_FAIL_ACCEPT=N exist for tests only)\n";

struct ready_ctx {
	const char *home;
	int notify_fd;		/* --daemon: tells the parent we listen */
};

static void
on_ready(void *arg, const char *addr)
{
	struct ready_ctx *r = arg;

	if (r->notify_fd >= 0) {
		/* Detached: errors up to here went to the caller's terminal. */
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 2);
			close(null);
		}
		ssize_t n = write(r->notify_fd, "ok", 2);
		(void)n;
		close(r->notify_fd);
		r->notify_fd = -1;
	}
}

/* A supplier runs unattended: its key is created without a passphrase
 * unless PEERFS_PASSPHRASE says otherwise. */
static int
supplier_identity(const char *home, struct cr_identity **id)
{
	char *key = cli_path(home, "key");
	int rc;

	if (access(key, F_OK) != 0) {
		if ((rc = cli_mkdir_p(home, 0700)) < 0) {
			fprintf(stderr, "peerfs supplier: cannot create %s: %s\n",
			    home, strerror(-rc));
			free(key);
			return rc;
		}
		rc = cr_keyfile_create(key, getenv("PEERFS_PASSPHRASE"), id);
		if (rc < 0)
			fprintf(stderr, "peerfs supplier: cannot create %s: %s\n",
			    key, strerror(-rc));
		free(key);
		return rc;
	}
	free(key);
	return cli_load_identity(home, NULL, id);
}

/* A session is a file descriptor: take all the kernel allows us. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("supplier: cannot raise the file descriptor "
			    "limit: %s", strerror(errno));
	}
}

/* A count option: 1 .. 1000000. */
static int
parse_count(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v == 0 || v > 1000000)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* A deadline option: 1 ms .. 1 day. */
static int
parse_ms(const char *s, unsigned *out)
{
	uint64_t ms;

	if (cli_parse_duration(s, &ms) < 0 || ms == 0 || ms > 86400000)
		return -EINVAL;
	*out = (unsigned)ms;
	return 0;
}

static int
daemonize(const char *home, int *notify_fd)
{
	int null, rc;

	if ((rc = cli_detach(notify_fd)) < 0)
		return rc;
	char *log_path = cli_path(home, "supplier.log");
	FILE *lf = fopen(log_path, "a");
	free(log_path);
	if (lf) {
		setvbuf(lf, NULL, _IOLBF, 0);
		log_set_file(lf);
	}
	/* stderr stays the caller's until on_ready: start-up errors show. */
	if ((null = open("/dev/null", O_RDWR)) >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		if (null > 2)
			close(null);
	}
	cli_write_pid(home, "supplier.pid");
	return 0;
}

int
cmd_supplier(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "home", required_argument, NULL, 'H' },
		{ "listen", required_argument, NULL, 'l' },
		{ "store", required_argument, NULL, 's' },
		{ "quota", required_argument, NULL, 'q' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "debug", no_argument, NULL, 'D' },
		{ "max-sessions", required_argument, NULL, 'S' },
		{ "max-per-address", required_argument, NULL, 'A' },
		{ "max-per-key", required_argument, NULL, 'K' },
		{ "max-inflight", required_argument, NULL, 'I' },
		{ "handshake-timeout", required_argument, NULL, 'T' },
		{ "frame-timeout", required_argument, NULL, 'F' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		/* Tests only: serve forged fragments and audit answers. */
		{ "test-lie", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *home_opt = NULL, *listen = NULL, *store_dir = NULL;
	uint64_t quota = 0;
	int daemon = 0, test_lie = 0, c, rc;
	struct ready_ctx ready = { .notify_fd = -1 };
	struct cr_identity *id = NULL;
	struct store_frag *frags = NULL;
	struct net_supplier_conf conf = { 0 };
	const char *fail = getenv("PEERFS_TEST_FAIL_ACCEPT");
	char *home;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'H': home_opt = optarg; break;
		case 'l': listen = optarg; break;
		case 's': store_dir = optarg; break;
		case 'q':
			if (cli_parse_size(optarg, &quota) < 0)
				return cli_bad_usage("supplier", "bad --quota '%s'", optarg);
			break;
		case 'd': daemon = 1; break;
		case 'S':
			if (parse_count(optarg, &conf.max_sessions) < 0)
				return cli_bad_usage("supplier", "bad --max-sessions '%s'", optarg);
			break;
		case 'A':
			if (parse_count(optarg, &conf.max_per_addr) < 0)
				return cli_bad_usage("supplier", "bad --max-per-address '%s'", optarg);
			break;
		case 'K':
			if (parse_count(optarg, &conf.max_per_key) < 0)
				return cli_bad_usage("supplier", "bad --max-per-key '%s'", optarg);
			break;
		case 'I':
			if (cli_parse_size(optarg, &conf.inflight_max) < 0 ||
			    conf.inflight_max < (1u << 20))
				return cli_bad_usage("supplier", "bad --max-inflight '%s' (1M at least)", optarg);
			break;
		case 'T':
			if (parse_ms(optarg, &conf.hs_timeout_ms) < 0)
				return cli_bad_usage("supplier", "bad --handshake-timeout '%s'", optarg);
			break;
		case 'F':
			if (parse_ms(optarg, &conf.frame_timeout_ms) < 0)
				return cli_bad_usage("supplier", "bad --frame-timeout '%s'", optarg);
			break;
		case 'i':
			if (parse_ms(optarg, &conf.idle_timeout_ms) < 0)
				return cli_bad_usage("supplier", "bad --idle-timeout '%s'", optarg);
			break;
		case 'L': test_lie = 1; break;
		case 'D': log_init("peerfs", LOG_DEBUG, NULL); break;
		case 'h': fputs(supplier_help, stdout); return 0;
		case ':': return cli_bad_usage("supplier", "%s needs a value", argv[optind - 1]);
		default:  return cli_bad_usage("supplier", "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_bad_usage("supplier", "unexpected argument '%s'", argv[optind]);
	if (!listen || !strchr(listen, ':'))
		return cli_bad_usage("supplier", "--listen HOST:PORT is required");
	if (!store_dir)
		return cli_bad_usage("supplier", "--store DIR is required");
	if (cr_init() < 0)
		return 1;
	home = cli_home(home_opt);
	if (supplier_identity(home, &id) < 0)
		return 1;
	log_init("peerfs-supplier", log_get_level(), NULL);
	/* Fork before LMDB opens: an environment must not cross a fork. */
	if (daemon && (rc = daemonize(home, &ready.notify_fd)) < 0) {
		fprintf(stderr, "peerfs supplier: cannot detach: %s\n", strerror(-rc));
		return 1;
	}
	if ((rc = cli_mkdir_p(store_dir, 0700)) < 0 ||
	    (rc = store_frag_open(&frags, store_dir, quota)) < 0) {
		fprintf(stderr, "peerfs supplier: store %s: %s\n", store_dir,
		    strerror(-rc));
		cr_identity_free(id);
		return 1;
	}
	ready.home = home;
	raise_nofile();
	conf.id = id;
	conf.listen = listen;
	conf.frags = frags;
	conf.on_ready = on_ready;
	conf.arg = &ready;
	conf.test_lie = test_lie;
	/* Test hook: the first N sessions fail to allocate, as under
	 * memory pressure (tests/integ/test_strangers.py). */
	if (fail)
		conf.test_fail_accept = (unsigned)strtoul(fail, NULL, 10);
	rc = net_supplier_run(&conf);
	if (rc < 0)
		log_error("supplier on %s: %s", listen, strerror(-rc));
	store_frag_close(frags);
	cr_identity_free(id);
	if (daemon) {
		char *pid_path = cli_path(home, "supplier.pid");
		unlink(pid_path);
		free(pid_path);
	}
	free(home);
	return rc < 0 ? 1 : 0;
}
