/* cli/supplier.c - `peerfs supplier`: lend disk space to owners. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "log.h"
#include "net/dht.h"
#include "net/net.h"
#include "store/store.h"
#include "util.h"
#include "worker.h"

struct ready_ctx {
	const char *home;
	int notify_fd;		/* --daemon: tells the parent we listen */
	struct net_dht *dht;	/* NULL: not in a network */
	/* The reachability ladder (net/reach.c), started once we listen:
	 * a dial-back needs our listener up. */
	const struct cr_identity *id;
	const char *listen;
	int64_t reach_every_ms;
	struct net_reach *reach;
	int64_t last_kick;	/* worker_now_ms() of on_lost's last kick */
	int test_relayed;		/* no checks: relays only (tests) */
	int lan;			/* --lan: a private listen address is
					 * how the network reaches us */
	/* 1 while the ladder found no way in but relays (set on
	 * net-reach, read on the supplier's loop). */
	_Atomic int want_relay;
	/* What HOME/reach says while relays hold us ("relay via ID ADDR"),
	 * "" none: kept when the ladder says "not reachable" again. Written
	 * on the supplier's loop, read on net-reach. */
	pthread_mutex_t relay_lock;
	char relay_state[48], relay_addr[NET_RECORD_ADDR_MAX + 1];
};

/* Other suppliers, from the DHT, to dial us back. */
static int
reach_helpers(void *arg, char (*addr)[NET_REACH_ADDR_MAX],
    unsigned char (*pk)[CR_PK_BYTES], int max)
{
	struct ready_ctx *r = arg;
	struct net_record recs[8];
	int n = net_dht_suppliers(r->dht, 1, 0, recs, max < 8 ? max : 8), k = 0;

	for (int i = 0; i < n; i++) {
		snprintf(addr[k], NET_REACH_ADDR_MAX, "%s", recs[i].addr[0]);
		memcpy(pk[k++], recs[i].id, CR_PK_BYTES);
	}
	return k;
}

/* HOME/reach: "STATE[ ADDR]", replaced whole. */
static void
reach_write(struct ready_ctx *r, const char *state, const char *addr)
{
	char *path = cli_path(r->home, "reach"), *tmp = NULL;
	FILE *f;

	if (path && asprintf(&tmp, "%s.tmp", path) > 0 &&
	    (f = fopen(tmp, "w"))) {
		fprintf(f, "%s%s%s\n", state, addr ? " " : "", addr ? addr : "");
		if (fclose(f) == 0)
			rename(tmp, path);
	}
	free(tmp);
	free(path);
}

/* The verdict goes into our record (the address others should dial, and
 * how it was found) and into HOME/reach ("direct ADDR", "mapped ADDR",
 * "not reachable"): the supplier's own status. */
static void
reach_changed(void *arg, enum net_reach_state st, const char *addr)
{
	struct ready_ctx *r = arg;
	uint32_t bits = st == NET_REACH_DIRECT ? NET_RECORD_DIRECT :
	    st == NET_REACH_MAPPED ? NET_RECORD_MAPPED : 0;

	net_dht_set_announce(r->dht, addr, bits);
	/* Step 3 of the ladder: relays, when nothing else lets others in
	 * (the supplier's loop reserves; relay_changed announces). */
	r->want_relay = st == NET_REACH_NONE;
	pthread_mutex_lock(&r->relay_lock);
	if (st == NET_REACH_NONE && r->relay_state[0])
		reach_write(r, r->relay_state, r->relay_addr);
	else
		reach_write(r, net_reach_name(st), addr);
	pthread_mutex_unlock(&r->relay_lock);
}

/* ---- relays: reserving on them (net/relay.c) ---------------------------*/
static int
relay_want(void *arg)
{
	struct ready_ctx *r = arg;

	return r->want_relay;
}

/* Records that offer relaying, as the DHT holds them now (no waiting:
 * the supplier's loop asks). Never our own, never a relayed node. */
static int
relay_candidates(void *arg, struct net_dht_relays *out)
{
	struct ready_ctx *r = arg;
	struct net_record recs[32];
	int n = net_dht_suppliers(r->dht, 0, 0, recs, 32);

	out->n = 0;
	for (int i = 0; i < n && out->n < NET_RECORD_ADDRS; i++) {
		if (!(recs[i].flags & NET_RECORD_RELAY) ||
		    (recs[i].flags & NET_RECORD_RELAYED) ||
		    !memcmp(recs[i].id, r->id->pk, CR_PK_BYTES))
			continue;
		snprintf(out->addr[out->n], sizeof out->addr[out->n], "%s",
		    recs[i].addr[0]);
		memcpy(out->id[out->n++], recs[i].id, CR_PK_BYTES);
	}
	return out->n;
}

/* Our reservations changed: the record names the relays, and HOME/reach
 * says "relay via ID ADDR" (ID: the start of the relay's key). */
static void
relay_changed(void *arg, const struct net_dht_relays *held)
{
	struct ready_ctx *r = arg;
	char hex[17];

	net_dht_set_relays(r->dht, held);
	pthread_mutex_lock(&r->relay_lock);
	r->relay_state[0] = r->relay_addr[0] = '\0';
	if (held->n) {
		sodium_bin2hex(hex, sizeof hex, held->id[0], 8);
		snprintf(r->relay_state, sizeof r->relay_state,
		    "relay via %s", hex);
		snprintf(r->relay_addr, sizeof r->relay_addr, "%s",
		    held->addr[0]);
	}
	if (r->want_relay)
		reach_write(r, held->n ? r->relay_state :
		    net_reach_name(NET_REACH_NONE), held->n ? r->relay_addr :
		    NULL);
	pthread_mutex_unlock(&r->relay_lock);
}

/* An owner's session went silent: owners ping, so the way to us may
 * have changed (the router got a new outside address, forgot our
 * mapping). The ladder looks again; at most every LOST_KICK_MS, as
 * several owners' sessions go silent together. */
#define LOST_KICK_MS	5000

static void
on_lost(void *arg)
{
	struct ready_ctx *r = arg;
	int64_t now = worker_now_ms();

	if (!r->reach || now - r->last_kick < LOST_KICK_MS)
		return;
	r->last_kick = now;
	log_info("supplier: an owner's session went silent: reachability "
	    "checked again");
	net_reach_kick(r->reach);
}

/* An owner handed over a new locator: announce under it at once. */
static void
on_locator(void *arg)
{
	struct ready_ctx *r = arg;

	if (r->dht)
		net_dht_announce_now(r->dht);
}

static void
on_ready(void *arg, const char *addr)
{
	struct ready_ctx *r = arg;
	int rc;

	if (r->dht && r->listen && r->test_relayed) {
		log_warn("supplier: TEST MODE: reachable only through relays");
		reach_changed(r, NET_REACH_NONE, NULL);
	} else if (r->dht && r->listen) {
		struct net_reach_conf rc_conf = { .id = r->id, .listen = r->listen,
		    .helpers = reach_helpers, .on_change = reach_changed,
		    .arg = r, .recheck_ms = (int)r->reach_every_ms,
		    .lan = r->lan };
		if ((rc = net_reach_start(&r->reach, &rc_conf)) < 0)
			log_warn("supplier: reachability not checked: %s",
			    strerror(-rc));
	}
	cli_sd_notify("READY=1");
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

static int
daemonize(const char *home, int *notify_fd)
{
	int null, rc;

	if ((rc = cli_detach(notify_fd)) < 0)
		return rc;
	FILE *lf = cli_open_log(home, "supplier.log");
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

/* ---- friends ---------------------------------------------------------- */

struct friends {
	unsigned char (*pk)[CR_PK_BYTES];
	size_t n, cap;
};

static int
parse_pk(const char *s, unsigned char pk[CR_PK_BYTES])
{
	if (strlen(s) != 2 * CR_PK_BYTES)
		return -EINVAL;
	for (int i = 0; i < CR_PK_BYTES; i++) {
		unsigned v;
		char two[3] = { s[2 * i], s[2 * i + 1], 0 };

		if (!strchr("0123456789abcdefABCDEF", two[0]) ||
		    !strchr("0123456789abcdefABCDEF", two[1]) ||
		    sscanf(two, "%x", &v) != 1)
			return -EINVAL;
		pk[i] = (unsigned char)v;
	}
	return 0;
}

static int
friend_add(struct friends *f, const char *hex)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		void *p = realloc(f->pk, cap * sizeof *f->pk);

		if (!p)
			return -ENOMEM;
		f->pk = p;
		f->cap = cap;
	}
	if (parse_pk(hex, f->pk[f->n]) < 0)
		return -EINVAL;
	f->n++;
	return 0;
}

/* One key a line; blank lines and # comments skipped. */
static int
friends_file(struct friends *f, const char *path, int *line_no)
{
	char line[256];
	FILE *fp = fopen(path, "r");
	int rc = 0;

	*line_no = 0;
	if (!fp)
		return -errno;
	while (rc == 0 && fgets(line, sizeof line, fp)) {
		char *p = line, *e;

		(*line_no)++;
		while (*p == ' ' || *p == '\t')
			p++;
		if ((e = strchr(p, '#')))
			*e = '\0';
		e = p + strlen(p);
		while (e > p && strchr(" \t\r\n", e[-1]))
			*--e = '\0';
		if (*p)
			rc = friend_add(f, p);
	}
	fclose(fp);
	return rc;
}

/* ---- accounts and evict ------------------------------------------------ */

/* The store a home serves: --store, else the one its last start noted. */
static char *
store_of(const char *home, const char *store_opt)
{
	char *path, buf[4096];
	FILE *fp;
	size_t n;

	if (store_opt)
		return strdup(store_opt);
	path = cli_path(home, "supplier.store");
	fp = fopen(path, "r");
	free(path);
	if (!fp)
		return NULL;
	n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	return n ? strdup(buf) : NULL;
}

static void
note_store(const char *home, const char *store_dir)
{
	char *path = cli_path(home, "supplier.store"), *abs = realpath(store_dir,
	    NULL);
	FILE *fp = fopen(path, "w");

	if (fp) {
		fprintf(fp, "%s\n", abs ? abs : store_dir);
		fclose(fp);
	}
	free(abs);
	free(path);
}

static int
print_acct(void *arg, const struct store_frag_acct *a)
{
	char pk[2 * CR_PK_BYTES + 1], quota[24], left[24], when[32];
	char deal[48];
	int *n = arg;

	hex_encode(pk, a->owner, CR_PK_BYTES);
	if (a->quota) {
		snprintf(quota, sizeof quota, "%llu",
		    (unsigned long long)a->quota);
		snprintf(left, sizeof left, "%llu", (unsigned long long)a->left);
	} else {
		snprintf(quota, sizeof quota, "-");
		snprintf(left, sizeof left, "-");
	}
	if (a->last_contact > 0) {
		time_t t = (time_t)a->last_contact;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	} else {
		snprintf(when, sizeof when, "never");
	}
	/* The fair deal's eviction: "deficit:TIME" (beyond the deal since),
	 * "evicted:TIME" (refused for a grace since), else "-". */
	if (a->evicted > 0 || a->deficit_since > 0) {
		time_t t = (time_t)(a->evicted > 0 ? a->evicted :
		    a->deficit_since);
		struct tm tm;
		size_t l = (size_t)snprintf(deal, sizeof deal, "%s:",
		    a->evicted > 0 ? "evicted" : "deficit");

		gmtime_r(&t, &tm);
		strftime(deal + l, sizeof deal - l, "%Y-%m-%dT%H:%M:%SZ", &tm);
	} else {
		snprintf(deal, sizeof deal, "-");
	}
	/* Bytes as the disk pays them, exact (scripts read this too). */
	if ((*n)++ == 0)
		printf("%-64s  %-8s  %9s  %5s  %12s  %12s  %12s  %-20s  %s\n",
		    "owner", "kind", "fragments", "heads", "used", "quota",
		    "left", "last contact", "deal");
	printf("%-64s  %-8s  %9llu  %5llu  %12llu  %12s  %12s  %-20s  %s\n",
	    pk, a->quota == 0 ? "-" : !a->admitted ? "refused" :
	    a->friend ? "friend" : "stranger",
	    (unsigned long long)a->fragments, (unsigned long long)a->heads,
	    (unsigned long long)a->charged, quota, left, when, deal);
	return 0;
}

static int
cmd_accounts(const char *home, const char *store_opt)
{
	char *dir = store_of(home, store_opt);
	int rc, n = 0;

	if (!dir) {
		fprintf(stderr, "peerfs supplier accounts: which store? (--store "
		    "DIR, or start the supplier once with this home)\n");
		return 1;
	}
	/* Read only, served now or not: the records and the policy its
	 * server saved. */
	rc = store_frag_accounts(NULL, dir, print_acct, &n);
	if (rc < 0) {
		fprintf(stderr, "peerfs supplier accounts: %s: %s\n", dir,
		    strerror(-rc));
		free(dir);
		return 1;
	}
	if (n == 0)
		printf("no owner stores anything in %s\n", dir);
	free(dir);
	return 0;
}

static int
cmd_evict(const char *home, const char *store_opt, const char *hex)
{
	unsigned char pk[CR_PK_BYTES];
	char *dir, *req;
	struct store_frag *sf = NULL;
	uint64_t freed = 0;
	long pid;
	int rc;

	if (parse_pk(hex, pk) < 0)
		return cli_bad_usage("supplier", "evict: bad key '%s' (64 hex "
		    "digits)", hex);
	if (!(dir = store_of(home, store_opt))) {
		fprintf(stderr, "peerfs supplier evict: which store? (--store "
		    "DIR)\n");
		return 1;
	}
	rc = store_frag_open(&sf, dir, 0);
	if (rc == 0) {
		rc = store_frag_evict(sf, pk, &freed);
		store_frag_close(sf);
		if (rc == 0)
			printf("evicted %s: %llu bytes freed\n", hex,
			    (unsigned long long)freed);
	} else if (rc == -EBUSY) {
		/* Served now: the server does it (one process per store). */
		if ((rc = store_frag_evict_request(dir, pk, &pid)) == 0 &&
		    asprintf(&req, "%s/evict/%s", dir, hex) >= 0) {
			for (int i = 0; i < 600 && access(req, F_OK) == 0; i++) {
				if (i % 50 == 0 && kill((pid_t)pid, SIGUSR1) != 0) {
					rc = -errno;
					break;
				}
				usleep(100000);
			}
			if (rc == 0 && access(req, F_OK) == 0)
				rc = -ETIMEDOUT;
			free(req);
			if (rc == 0)
				printf("evicted %s\n", hex);
		}
	}
	if (rc < 0)
		fprintf(stderr, "peerfs supplier evict: %s: %s\n", dir,
		    strerror(-rc));
	free(dir);
	return rc < 0 ? 1 : 0;
}

static uint64_t
frag_avail(void *arg)
{
	return store_frag_avail(arg);
}

static int
frag_locators(void *arg, unsigned char (*out)[32], int max)
{
	int n = store_locator_list(arg, out, max);

	return n < 0 ? 0 : n;
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
	/* A private address (behind a home router) is announced only once
	 * the reachability checks found how others reach us, unless the
	 * whole network is on this LAN (--lan): then it is that way. */
	char host[NET_REACH_ADDR_MAX];
	snprintf(host, sizeof host, "%s", listen);
	if (strrchr(host, ':'))
		*strrchr(host, ':') = '\0';
	int private = net_addr_private(host) && !o->lan;
	if (private)
		log_info("supplier: %s is a private address: announced once "
		    "others can reach us (--lan: a network on this LAN "
		    "announces it as it is)", listen);
	else if (o->lan && net_addr_private(host))
		log_info("supplier: --lan: announced at the private address "
		    "%s, for the machines of this LAN", listen);
	struct net_dht_conf dc = {
		.id = id, .bind = listen, .bootstrap = (const char *const *)boot,
		.nbootstrap = nboot,
		.announce_addr = anywhere || private ? NULL : listen,
		.watch_suppliers = 1,
		.flags = NET_RECORD_SUPPLIER | (o->relay ? NET_RECORD_RELAY : 0),
		.free_bytes = frag_avail,
		.locators = frag_locators, .arg = frags,
	};
	if ((rc = net_dht_new(out, &dc)) < 0)
		log_error("supplier: DHT node on udp %s: %s", listen,
		    strerror(-rc));
	cli_strv_free(boot, nboot);
	return rc;
}

/* ---- leaving the network (--leave) -------------------------------------
 * `peerfs supplier --leave` creates <home>/leaving; the daemon of that
 * home looks for it every LEAVE_POLL_MS (thread "leave"). A file rather
 * than a signal: it outlives a restart of the daemon (a supplier that
 * reboots while leaving goes on leaving), needs no pid that may be stale,
 * and SIGUSR1 already means "evict requests wait" to net/supplier.c. */
#define LEAVE_POLL_MS	1000

struct leaver {
	char *flag;			/* <home>/leaving */
	struct net_dht *dht;		/* NULL: no network to tell */
	struct store_frag *frags;
	int64_t within_ms, since;	/* since: 0 until leaving */
	struct worker *w;
};

static int64_t
leave_pass(void *arg, int idx)
{
	struct leaver *l = arg;
	uint64_t bytes = 0, frags = 0;

	if (!l->since && access(l->flag, F_OK) != 0)
		return LEAVE_POLL_MS;
	store_frag_usage(l->frags, NULL, &bytes, &frags, NULL);
	if (!l->since) {
		l->since = worker_now_ms();
		log_info("supplier: leaving the network: owners are to move "
		    "%llu fragment(s) off first", (unsigned long long)frags);
		/* Owners see it in our record and hire no more here. */
		if (l->dht)
			net_dht_set_flags(l->dht, NET_RECORD_SUPPLIER |
			    NET_RECORD_LEAVING);
	}
	if (frags == 0) {
		log_info("supplier: left the network: no fragment left");
	} else if (worker_now_ms() - l->since >= l->within_ms) {
		log_warn("supplier: leaving after --leave-within although %llu "
		    "fragment(s) (%llu bytes) remain: their owners rebuild "
		    "them from the others", (unsigned long long)frags,
		    (unsigned long long)bytes);
	} else {
		return LEAVE_POLL_MS;
	}
	/* Left: a later start joins again. */
	unlink(l->flag);
	kill(getpid(), SIGTERM);	/* net_supplier_run's loop stops */
	return WORKER_EXIT;
}

static int
cmd_leave(const char *home)
{
	char *flag = cli_path(home, "leaving"), *pidf = cli_path(home,
	    "supplier.pid");
	FILE *f = fopen(flag, "w");
	long pid = 0;
	int rc = 0;

	if (!f || fclose(f) != 0) {
		fprintf(stderr, "peerfs supplier --leave: %s: %s\n", flag,
		    strerror(errno));
		rc = 1;
	} else if ((f = fopen(pidf, "r")) && fscanf(f, "%ld", &pid) == 1 &&
	    pid > 0 && kill((pid_t)pid, 0) == 0) {
		printf("supplier %ld of %s is leaving: owners move their "
		    "fragments off it, then it exits (see its log)\n", pid,
		    home);
	} else {
		printf("no supplier of %s runs now: it leaves when started\n",
		    home);
	}
	if (f && rc == 0)
		fclose(f);
	free(flag);
	free(pidf);
	return rc;
}

int
cmd_supplier(int argc, char **argv)
{
	struct cli_conf o;
	struct friends fr = { 0 };
	struct store_frag_policy pol = { 0 };
	struct net_deal *deal = NULL;
	int friends_only, rc, line;
	struct ready_ctx ready = { .notify_fd = -1,
	    .relay_lock = PTHREAD_MUTEX_INITIALIZER };
	struct cr_identity *id = NULL;
	struct store_frag *frags = NULL;
	struct net_supplier_conf conf = { 0 };
	const char *fail = getenv("PEERFS_TEST_FAIL_ACCEPT");
	char *home;

	if ((rc = cli_parse(CLI_SUPPLIER, argc, argv, &o)) != CLI_RUN)
		return rc;
	if (o.debug)
		log_init("peerfs", LOG_DEBUG, NULL);
	if (o.nargs > 0 && strcmp(o.args[0], "accounts") == 0) {
		if (o.nargs > 1)
			return cli_bad_usage("supplier", "unexpected argument "
			    "'%s'", o.args[1]);
		home = cli_home(o.home);
		rc = cmd_accounts(home, o.store);
		free(home);
		return rc;
	}
	if (o.nargs > 0 && strcmp(o.args[0], "evict") == 0) {
		if (o.nargs != 2)
			return cli_bad_usage("supplier", "usage: evict PK");
		home = cli_home(o.home);
		rc = cmd_evict(home, o.store, o.args[1]);
		free(home);
		return rc;
	}
	if (o.nargs > 0)
		return cli_bad_usage("supplier", "unexpected argument '%s'",
		    o.args[0]);
	if (o.leave) {
		home = cli_home(o.home);
		rc = cmd_leave(home);
		free(home);
		return rc;
	}
	if (o.accept == NULL)
		o.accept = "deal";
	if (strcmp(o.accept, "open") != 0 && strcmp(o.accept, "friends") != 0 &&
	    strcmp(o.accept, "deal") != 0)
		return cli_bad_usage("supplier", "bad --accept '%s' (deal, open "
		    "or friends)", o.accept);
	friends_only = strcmp(o.accept, "friends") == 0;
	for (int i = 0; i < o.friends.n; i++)
		if ((rc = friend_add(&fr, o.friends.v[i])) < 0) {
			free(fr.pk);
			return rc == -ENOMEM ? 1 : cli_bad_usage("supplier",
			    "bad --friend '%s' (64 hex digits)", o.friends.v[i]);
		}
	if (o.friends_file && (rc = friends_file(&fr, o.friends_file,
	    &line)) < 0) {
		free(fr.pk);
		if (rc == -EINVAL)
			return cli_bad_usage("supplier", "%s, line %d: not a "
			    "key (64 hex digits)", o.friends_file, line);
		fprintf(stderr, "peerfs supplier: %s: %s\n", o.friends_file,
		    strerror(-rc));
		return 1;
	}
	if (friends_only && fr.n == 0)
		return cli_bad_usage("supplier", "--accept friends needs "
		    "--friend or --friends-file");
	/* Serving needs both; accounts and evict need neither. */
	if (!o.listen || !o.store) {
		free(fr.pk);
		return cli_bad_usage("supplier", "%s is required", !o.listen ?
		    "--listen HOST:PORT" : "--store DIR");
	}
	if (cr_init() < 0)
		return 1;
	home = cli_home(o.home);
	if (cli_node_identity(home, &id) < 0)
		return 1;
	log_init("peerfs-supplier", log_get_level(), NULL);
	/* Fork before LMDB opens: an environment must not cross a fork. */
	if (o.daemon && (rc = daemonize(home, &ready.notify_fd)) < 0) {
		fprintf(stderr, "peerfs supplier: cannot detach: %s\n", strerror(-rc));
		return 1;
	}
	pol.friends_only = friends_only;
	pol.friends = (const unsigned char (*)[CR_PK_BYTES])fr.pk;
	pol.nfriends = fr.n;
	pol.stranger_quota = o.stranger_quota;
	pol.max_frags = o.max_fragments;
	if (strcmp(o.accept, "deal") == 0) {
		/* What this home's mount proved of each peer's node. */
		char *ledger = cli_path(home, "ledger");
		rc = net_deal_new(&deal, ledger);
		free(ledger);
		if (rc < 0) {
			cr_identity_free(id);
			free(fr.pk);
			return 1;
		}
		pol.deal = 1;
		pol.credit = o.credit;
		pol.earned = net_deal_earned;
		pol.earned_arg = deal;
	}
	if ((rc = cli_mkdir_p(o.store, 0700)) < 0 ||
	    (rc = store_frag_open(&frags, o.store, o.quota)) < 0 ||
	    (rc = store_frag_set_policy(frags, &pol)) < 0) {
		fprintf(stderr, "peerfs supplier: store %s: %s\n", o.store,
		    rc == -EBUSY ? "served by another process" :
		    strerror(-rc));
		store_frag_close(frags);
		net_deal_free(deal);
		cr_identity_free(id);
		free(fr.pk);
		return 1;
	}
	free(fr.pk);
	note_store(home, o.store);
	store_frag_evict_pending(frags);
	ready.home = home;
	o.lan = cli_lan_remember(home, o.lan);
	struct net_dht *dht = NULL;
	if (supplier_dht(home, id, o.listen, frags, &o, &dht) < 0) {
		store_frag_close(frags);
		net_deal_free(deal);
		cr_identity_free(id);
		return 1;
	}
	raise_nofile();
	conf.id = id;
	conf.listen = o.listen;
	conf.frags = frags;
	conf.on_ready = on_ready;
	conf.on_locator = on_locator;
	conf.on_lost = on_lost;
	ready.dht = dht;
	ready.id = id;
	/* "Every interface" is no address to announce (supplier_dht). */
	ready.listen = strncmp(o.listen, "0.0.0.0:", 8) &&
	    strncmp(o.listen, "[::]:", 5) ? o.listen : NULL;
	ready.reach_every_ms = (int64_t)o.reach_every_ms;
	ready.test_relayed = o.test_relayed;
	ready.lan = o.lan;
	conf.arg = &ready;
	conf.test_lie = o.test_lie;
	conf.deal = deal;
	conf.evict_grace_s = (int64_t)(o.evict_grace_ms / 1000);
	conf.max_sessions = (unsigned)o.max_sessions;
	conf.max_per_addr = (unsigned)o.max_per_address;
	conf.max_per_key = (unsigned)o.max_per_key;
	conf.inflight_max = o.max_inflight;
	conf.hs_timeout_ms = (unsigned)o.handshake_timeout_ms;
	conf.frame_timeout_ms = (unsigned)o.frame_timeout_ms;
	conf.idle_timeout_ms = (unsigned)o.idle_timeout_ms;
	struct net_relay_conf relay = {
		.max_reservations = (unsigned)o.relay_reservations,
		.max_circuits = (unsigned)o.relay_circuits,
		.max_per_addr = (unsigned)o.relay_per_address,
		.circuit_bytes = o.relay_bytes, .circuit_rate = o.relay_rate,
		.keepalive_s = (unsigned)(o.relay_keepalive_ms / 1000),
	};
	struct net_relay_client_conf relay_client = {
		.id = id, .want = relay_want, .candidates = relay_candidates,
		.on_change = relay_changed, .arg = &ready,
	};
	if (o.relay)
		conf.relay = &relay;
	/* Only a node in a network can be announced through relays. */
	if (dht && ready.listen)
		conf.relay_client = &relay_client;
	/* Test hook: the first N sessions fail to allocate, as under
	 * memory pressure (tests/integ/test_strangers.py). */
	if (fail)
		conf.test_fail_accept = (unsigned)strtoul(fail, NULL, 10);
	struct leaver lv = { .flag = cli_path(home, "leaving"), .dht = dht,
	    .frags = frags, .within_ms = (int64_t)o.leave_within_ms };
	struct worker_conf lc = { .name = "leave", .pass = leave_pass,
	    .arg = &lv };
	if ((rc = worker_start(&lv.w, &lc)) < 0)
		log_warn("supplier: --leave will not be heard: %s",
		    strerror(-rc));
	rc = net_supplier_run(&conf);
	cli_sd_notify("STOPPING=1");
	if (rc < 0)
		log_error("supplier on %s: %s", o.listen, strerror(-rc));
	worker_stop(lv.w);
	free(lv.flag);
	net_reach_stop(ready.reach);
	net_dht_free(dht);
	store_frag_close(frags);
	net_deal_free(deal);
	cr_identity_free(id);
	if (o.daemon) {
		char *pid_path = cli_path(home, "supplier.pid");
		unlink(pid_path);
		free(pid_path);
	}
	free(home);
	return rc < 0 ? 1 : 0;
}
