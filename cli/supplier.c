/* cli/supplier.c - `peerfs supplier`: lend disk space to owners. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "log.h"
#include "net/dht.h"
#include "net/net.h"
#include "store/store.h"

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

static uint64_t
frag_avail(void *arg)
{
	return store_frag_avail(arg);
}

/* The network (cli/network.c): a DHT node on the listen address, UDP
 * beside TCP, announcing this supplier, when a bootstrap was given now
 * or before, or --dht starts a network. */
static int
supplier_dht(const char *home, const struct cr_identity *id,
    const char *listen, struct store_frag *frags, const struct cli_conf *o,
    struct net_dht **out)
{
	char **boot;
	int nboot, rc;

	if (!cli_bootstrap_merge(home, o->bootstrap.v, o->bootstrap.n, o->dht,
	    &boot, &nboot))
		return 0;
	/* An address that means "every interface" is no address to give
	 * others: the node then runs, but announces nothing. */
	int anywhere = !strncmp(listen, "0.0.0.0:", 8) ||
	    !strncmp(listen, "[::]:", 5);
	if (anywhere)
		log_warn("supplier: listening on %s: not announced in the "
		    "network (listen on the address others reach)", listen);
	struct net_dht_conf dc = {
		.id = id, .bind = listen, .bootstrap = (const char *const *)boot,
		.nbootstrap = nboot, .announce_addr = anywhere ? NULL : listen,
		.flags = NET_RECORD_SUPPLIER, .free_bytes = frag_avail,
		.arg = frags,
	};
	if ((rc = net_dht_new(out, &dc)) < 0)
		log_error("supplier: DHT node on udp %s: %s", listen,
		    strerror(-rc));
	cli_strv_free(boot, nboot);
	return rc;
}

int
cmd_supplier(int argc, char **argv)
{
	struct cli_conf o;
	int rc;
	struct ready_ctx ready = { .notify_fd = -1 };
	struct cr_identity *id = NULL;
	struct store_frag *frags = NULL;
	char *home;

	if ((rc = cli_parse(CLI_SUPPLIER, argc, argv, &o)) != CLI_RUN)
		return rc;
	if (o.debug)
		log_init("peerfs", LOG_DEBUG, NULL);
	if (cr_init() < 0)
		return 1;
	home = cli_home(o.home);
	if (supplier_identity(home, &id) < 0)
		return 1;
	log_init("peerfs-supplier", log_get_level(), NULL);
	/* Fork before LMDB opens: an environment must not cross a fork. */
	if (o.daemon && (rc = daemonize(home, &ready.notify_fd)) < 0) {
		fprintf(stderr, "peerfs supplier: cannot detach: %s\n", strerror(-rc));
		return 1;
	}
	if ((rc = cli_mkdir_p(o.store, 0700)) < 0 ||
	    (rc = store_frag_open(&frags, o.store, o.quota)) < 0) {
		fprintf(stderr, "peerfs supplier: store %s: %s\n", o.store,
		    strerror(-rc));
		cr_identity_free(id);
		return 1;
	}
	ready.home = home;
	struct net_dht *dht = NULL;
	if (supplier_dht(home, id, o.listen, frags, &o, &dht) < 0) {
		store_frag_close(frags);
		cr_identity_free(id);
		return 1;
	}
	struct net_supplier_conf conf = {
		.id = id, .listen = o.listen, .frags = frags,
		.on_ready = on_ready, .arg = &ready, .test_lie = o.test_lie,
	};
	rc = net_supplier_run(&conf);
	if (rc < 0)
		log_error("supplier on %s: %s", o.listen, strerror(-rc));
	net_dht_free(dht);
	store_frag_close(frags);
	cr_identity_free(id);
	if (o.daemon) {
		char *pid_path = cli_path(home, "supplier.pid");
		unlink(pid_path);
		free(pid_path);
	}
	free(home);
	return rc < 0 ? 1 : 0;
}
