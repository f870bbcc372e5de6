/* cli/demo.c - `peerfs demo [DIR]`: a whole swarm on one machine, 8
 * suppliers on loopback and a mounted folder, for trying peerfs out. */
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

static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
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
			if ((ports[n] = free_port()) < 0)
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
	for (int i = 1; i <= DEMO_SUPPLIERS; i++) {
		char name[64], *pidf;
		FILE *f;
		int pid;

		snprintf(name, sizeof name, "supplier-%d/supplier.pid", i);
		pidf = cli_path(dir, name);
		if ((f = fopen(pidf, "r"))) {
			if (fscanf(f, "%d", &pid) == 1 && pid > 0 &&
			    kill(pid, SIGTERM) == 0) {
				for (int w = 0; w < 100 && kill(pid, 0) == 0; w++)
					usleep(50000);
				printf("stopped supplier %d (pid %d)\n", i, pid);
			}
			fclose(f);
		}
		free(pidf);
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
	char *mount_argv[8 + 2 * DEMO_SUPPLIERS];
	char addrs[DEMO_SUPPLIERS][32];
	int na = 0;
	mount_argv[na++] = "peerfs";
	mount_argv[na++] = "mount";
	mount_argv[na++] = "--home";
	mount_argv[na++] = home;
	for (int i = 0; i < DEMO_SUPPLIERS; i++) {
		char sname[32], *sdir, *store;
		snprintf(sname, sizeof sname, "supplier-%d", i + 1);
		sdir = cli_path(dir, sname);
		store = cli_path(sdir, "store");
		snprintf(addrs[i], sizeof addrs[i], "127.0.0.1:%d", ports[i]);
		char *argv_sup[] = { "peerfs", "supplier", "--daemon", "--home",
		    sdir, "--listen", addrs[i], "--store", store, "--quota", "2G",
		    NULL };
		if (run(argv_sup) != 0) {
			fprintf(stderr, "peerfs demo: supplier %d on %s did not "
			    "start (see %s/supplier.log)\n", i + 1, addrs[i], sdir);
			return 1;
		}
		printf("supplier %d listening on %s, store %s\n", i + 1,
		    addrs[i], store);
		mount_argv[na++] = "--peer";
		mount_argv[na++] = addrs[i];
	}
	if (cli_mkdir_p(mnt, 0755) < 0)
		return 1;
	mount_argv[na++] = mnt;
	mount_argv[na] = NULL;
	if (run(mount_argv) != 0) {
		fprintf(stderr, "peerfs demo: mount failed (see %s/mount.log)\n", home);
		return 1;
	}
	printf("\nmounted %s (erasure code 4+2 over %d suppliers)\n\n"
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
