/* cli/demo.c - `peerfs demo [DIR]`: a whole swarm on one machine, 8
 * suppliers on loopback (127.0.N.1, a /24 each) joined by a DHT, and a
 * folder mounted with only a bootstrap address, for trying peerfs out. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli/cli.h"
#include "fs/ctl.h"

#define DEMO_SUPPLIERS 8

static int
run(char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A free TCP port on 127.0.n.1 (loopback answers the whole /8): each
 * supplier on a /24 of its own, as hiring from the network wants. Its
 * DHT node takes the same port in UDP on 127.0.0.1 (net/dht.c says why),
 * so that must be free too. */
static int
free_port(int n)
{
	for (int tries = 0; tries < 32; tries++) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		socklen_t len = sizeof a;
		int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1, u;

		a.sin_addr.s_addr = htonl(0x7f000001u | (uint32_t)n << 8);
		if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
		    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
			port = ntohs(a.sin_port);
		if (fd >= 0)
			close(fd);
		if (port < 0)
			return -1;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if ((u = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
			return -1;
		int free_udp = bind(u, (struct sockaddr *)&a, sizeof a) == 0;
		close(u);
		if (free_udp)
			return port;
	}
	return -1;
}

/* Ports are kept in DIR/ports so that a restarted demo finds its
 * suppliers at the addresses its home has pinned. */
static int
demo_ports(const char *dir, int ports[DEMO_SUPPLIERS])
{
	char *path = cli_path(dir, "ports");
	FILE *f = fopen(path, "r");
	int n = 0;

	if (f) {
		while (n < DEMO_SUPPLIERS && fscanf(f, "%d", &ports[n]) == 1)
			n++;
		fclose(f);
	}
	if (n != DEMO_SUPPLIERS) {
		for (n = 0; n < DEMO_SUPPLIERS; n++)
			if ((ports[n] = free_port(n + 1)) < 0)
				return -EADDRNOTAVAIL;
		if ((f = fopen(path, "w"))) {
			for (n = 0; n < DEMO_SUPPLIERS; n++)
				fprintf(f, "%d\n", ports[n]);
			fclose(f);
		}
	}
	free(path);
	return 0;
}

static int
is_mounted(const char *mnt)
{
	return getxattr(mnt, FS_CTL_STATUS, NULL, 0) > 0;
}

static int
demo_stop(const char *dir)
{
	char *mnt = cli_path(dir, "mnt");
	int rc = 0;

	if (is_mounted(mnt)) {
		char *argv[] = { "peerfs", "umount", mnt, NULL };
		printf("unmounting %s (uploading what is pending)\n", mnt);
		if (run(argv) != 0)
			rc = 1;
	}
	/* All told first, then waited for: each takes a moment to leave
	 * the DHT. */
	int pids[DEMO_SUPPLIERS] = { 0 };
	for (int i = 1; i <= DEMO_SUPPLIERS; i++) {
		char name[64], *pidf;
		FILE *f;
		int pid;

		snprintf(name, sizeof name, "supplier-%d/supplier.pid", i);
		pidf = cli_path(dir, name);
		if ((f = fopen(pidf, "r"))) {
			if (fscanf(f, "%d", &pid) == 1 && pid > 0 &&
			    kill(pid, SIGTERM) == 0)
				pids[i - 1] = pid;
			fclose(f);
		}
		free(pidf);
	}
	for (int i = 1; i <= DEMO_SUPPLIERS; i++) {
		if (!pids[i - 1])
			continue;
		for (int w = 0; w < 200 && kill(pids[i - 1], 0) == 0; w++)
			usleep(50000);
		printf("stopped supplier %d (pid %d)\n", i, pids[i - 1]);
	}
	free(mnt);
	return rc;
}

int
cmd_demo(int argc, char **argv)
{
	struct cli_conf o;
	int ports[DEMO_SUPPLIERS], rc;
	char *dir, *home, *mnt, *key;

	if ((rc = cli_parse(CLI_DEMO, argc, argv, &o)) != CLI_RUN)
		return rc;
	dir = cli_home(o.nargs ? o.args[0] : "peerfs-demo");
	if (o.stop)
		return demo_stop(dir);
	if ((rc = cli_mkdir_p(dir, 0700)) < 0) {
		fprintf(stderr, "peerfs demo: %s: %s\n", dir, strerror(-rc));
		return 1;
	}
	home = cli_path(dir, "home");
	mnt = cli_path(dir, "mnt");
	if (is_mounted(mnt)) {
		printf("the demo in %s is already running (stop it with "
		    "`peerfs demo --stop %s`)\n", dir, dir);
		return 0;
	}
	if (demo_ports(dir, ports) < 0) {
		fprintf(stderr, "peerfs demo: no free loopback ports\n");
		return 1;
	}
	key = cli_path(home, "key");
	if (access(key, F_OK) != 0) {
		char *argv_init[] = { "peerfs", "init", "--home", home,
		    "--no-passphrase", NULL };
		if (run(argv_init) != 0)
			return 1;
	}
	/* The demo's owner is its suppliers' friend: a stranger may store
	 * only --stranger-quota (256M) on each. */
	struct cr_identity *me = NULL;
	char me_hex[2 * CR_PK_BYTES + 1];
	if (cli_load_identity(home, NULL, &me) < 0)
		return 1;
	for (int i = 0; i < CR_PK_BYTES; i++)
		snprintf(me_hex + 2 * i, 3, "%02x", me->pk[i]);
	cr_identity_free(me);
	/* A network of its own on loopback: the first supplier starts the
	 * DHT, the others and the mount join through it, and the mount
	 * hires its suppliers there (no --peer). */
	char *mount_argv[16];
	char addrs[DEMO_SUPPLIERS][32];
	int na = 0;
	for (int i = 0; i < DEMO_SUPPLIERS; i++) {
		char sname[32], *sdir, *store;
		snprintf(sname, sizeof sname, "supplier-%d", i + 1);
		sdir = cli_path(dir, sname);
		store = cli_path(sdir, "store");
		snprintf(addrs[i], sizeof addrs[i], "127.0.%d.1:%d", i + 1,
		    ports[i]);
		char *argv_sup[] = { "peerfs", "supplier", "--daemon", "--home",
		    sdir, "--listen", addrs[i], "--store", store, "--quota", "2G",
		    "--friend", me_hex, i ? "--bootstrap" : "--dht",
		    i ? addrs[0] : NULL, NULL };
		if (run(argv_sup) != 0) {
			fprintf(stderr, "peerfs demo: supplier %d on %s did not "
			    "start (see %s/supplier.log)\n", i + 1, addrs[i], sdir);
			return 1;
		}
		printf("supplier %d listening on %s, store %s\n", i + 1,
		    addrs[i], store);
	}
	mount_argv[na++] = "peerfs";
	mount_argv[na++] = "mount";
	mount_argv[na++] = "--home";
	mount_argv[na++] = home;
	mount_argv[na++] = "--bootstrap";
	mount_argv[na++] = addrs[0];
	if (cli_mkdir_p(mnt, 0755) < 0)
		return 1;
	mount_argv[na++] = mnt;
	mount_argv[na] = NULL;
	if (run(mount_argv) != 0) {
		fprintf(stderr, "peerfs demo: mount failed (see %s/mount.log)\n", home);
		return 1;
	}
	printf("\nmounted %s (erasure code 4+2 over %d suppliers found "
	    "through the DHT)\n\n"
	    "try:\n"
	    /* Symlinks compared as links: /usr/include has relative ones
	     * that point outside the tree. */
	    "  cp -a /usr/include %s/ &&\n"
	    "    diff -r --no-dereference /usr/include %s/include\n"
	    "  peerfs status %s\n"
	    "  peerfs sync %s\n"
	    "  getfattr -d %s/include\n\n"
	    "stop:\n"
	    "  peerfs demo --stop %s\n", mnt, DEMO_SUPPLIERS, mnt, mnt, mnt,
	    mnt, mnt, dir);
	return 0;
}
