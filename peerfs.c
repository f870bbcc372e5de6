/* peerfs.c - main(): finds the command in the table of cli/options.c.
 *
 *   peerfs init | supplier | mount | sync | umount | status | pin | unpin
 *          | check | demo | key | restore | versions | id | config
 *   mount.peerfs HOME MOUNTPOINT [-o OPTIONS]	(mount(8)'s helper)
 *   peerfs HOME MOUNTPOINT -o OPTIONS		(as mount.fuse3 runs it)
 *
 * Exit status: 0 success, 1 failure, 2 bad usage. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "log.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: peerfs COMMAND [OPTIONS]\n\ncommands:\n");
	for (int i = 0; i < CLI_NCMDS; i++)
		fprintf(f, "  %-9s %s\n", cli_commands[i].name,
		    cli_commands[i].summary);
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
	/* mount(8) runs /sbin/mount.peerfs (type peerfs) or, for type
	 * fuse.peerfs, mount.fuse3, which runs `peerfs HOME MOUNTPOINT -o
	 * ...`: a first word with a slash is a home, never a command. */
	const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 :
	    argv[0];

	if (!strncmp(self, "mount.", 6) ||
	    (argc > 1 && strchr(argv[1], '/')))
		return cli_mount_helper(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") && argc > 2)
		return cli_manual(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("peerfs 0.1\n");
		return 0;
	}
	for (int i = 0; i < CLI_NCMDS; i++)
		if (!strcmp(argv[1], cli_commands[i].name))
			return cli_commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "peerfs: unknown command '%s' (see peerfs --help)\n",
	    argv[1]);
	return 2;
}
