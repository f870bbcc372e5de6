/* peerfs.c - the command line: parses commands and wires the layers.
 *
 *   peerfs init | supplier | mount | sync | umount | status | pin | unpin
 *          | check | demo | key | restore | versions
 *
 * Exit status: 0 success, 1 failure, 2 bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "fs/fs.h"
#include "log.h"
#include "net/net.h"
#include "store/store.h"

static const struct cli_command commands[] = {
	{ "init", cmd_init, "create an identity and master key in a home" },
	{ "supplier", cmd_supplier, "lend disk space to owners (foreground)" },
	{ "mount", cmd_mount, "mount the owner's folder" },
	{ "sync", cmd_sync, "wait until everything written is on suppliers" },
	{ "umount", cmd_umount, "upload what is pending, then unmount" },
	{ "status", cmd_status, "suppliers, blocks, pending uploads" },
	{ "pin", cmd_pin, "keep a subtree's blocks local for offline use" },
	{ "unpin", cmd_unpin, "stop keeping a subtree local" },
	{ "check", cmd_check, "audit every fragment now, repair, report" },
	{ "demo", cmd_demo, "local swarm of 8 suppliers and a mount" },
	{ "key", cmd_key, "key export: print the recovery code" },
	{ "restore", cmd_restore, "new home from a recovery code and a supplier" },
	{ "id", cmd_id, "print this node's id (its public key)" },
	{ "versions", cmd_versions, "index versions the suppliers hold" },
	{ NULL, NULL, NULL },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: peerfs COMMAND [OPTIONS]\n\ncommands:\n");
	for (const struct cli_command *c = commands; c->name; c++)
		fprintf(f, "  %-9s %s\n", c->name, c->help);
	fprintf(f, "\n`peerfs COMMAND --help` describes each command.\n");
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	/* Blocks (4 MiB) and fragment records (1 MiB) are allocated and freed
	 * all day long. Above glibc's default thresholds each one is a fresh
	 * mmap whose pages the kernel faults in and zeroes, then unmaps: that
	 * cost 2-3 CPU seconds per GB written. Kept in the heap, they are
	 * reused. A small trim threshold and few arenas keep what the
	 * heap holds on to bounded (RSS must not grow with file size). */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	mallopt(M_ARENA_MAX, 2);
	log_init("peerfs", LOG_INFO, NULL);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("peerfs 0.1\n");
		return 0;
	}
	for (const struct cli_command *c = commands; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->fn(argc - 1, argv + 1);
	fprintf(stderr, "peerfs: unknown command '%s' (see peerfs --help)\n",
	    argv[1]);
	return 2;
}
