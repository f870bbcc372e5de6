/* cli/control.c - `peerfs sync | umount | status MOUNTPOINT`: they talk to
 * the mount daemon through control attributes on the mount's root, so they
 * need nothing but the mountpoint. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

#define FUSE_SUPER_MAGIC 0x65735546
#define CTL_STATUS	"user.peerfs.status"
#define CTL_STATUS_TEXT	"user.peerfs.status.text"
#define CTL_SYNC	"user.peerfs.sync"

/* Value of "name": N in a flat JSON text, or -1. Good enough for the few
 * numeric fields the cli reads from its own daemon's status. */
static long long
json_number(const char *json, const char *name)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof key, "\"%s\": ", name);
	if (!(p = strstr(json, key)))
		return -1;
	return strtoll(p + strlen(key), NULL, 10);
}

static int
not_peerfs(const char *cmd, const char *mnt, int err)
{
	if (err == ENODATA || err == ENOTSUP)
		fprintf(stderr, "peerfs %s: %s is not a peerfs mount\n", cmd, mnt);
	else
		fprintf(stderr, "peerfs %s: %s: %s\n", cmd, mnt, strerror(err));
	return 1;
}

/* A plain directory would happily store user.peerfs.* attributes; only a
 * FUSE mount answering our status attribute is a peerfs mount. */
static int
check_mount(const char *cmd, const char *mnt)
{
	struct statfs sf;

	if (statfs(mnt, &sf) != 0)
		return not_peerfs(cmd, mnt, errno);
	if (sf.f_type != FUSE_SUPER_MAGIC ||
	    getxattr(mnt, CTL_STATUS, NULL, 0) < 0)
		return not_peerfs(cmd, mnt, ENODATA);
	return 0;
}

static int
one_mountpoint(const char *cmd, const char *help, int argc, char **argv,
    int *json, int *force, const char **mnt, uint64_t *timeout_ms)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'F' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (!json)
				return cli_bad_usage(cmd, "unknown option --json");
			*json = 1;
			break;
		case 'F':
			if (!force)
				return cli_bad_usage(cmd, "unknown option --force");
			*force = 1;
			break;
		case 't':
			if (!timeout_ms)
				return cli_bad_usage(cmd, "unknown option --timeout");
			if (cli_parse_duration(optarg, timeout_ms) < 0)
				return cli_bad_usage(cmd, "bad --timeout '%s'", optarg);
			break;
		case 'h': fputs(help, stdout); exit(0);
		case ':': return cli_bad_usage(cmd, "%s needs a value", argv[optind - 1]);
		default:  return cli_bad_usage(cmd, "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_bad_usage(cmd, optind < argc ?
		    "exactly one MOUNTPOINT expected" : "MOUNTPOINT missing");
	*mnt = argv[optind];
	return check_mount(cmd, *mnt);
}

static const char sync_help[] =
"usage: peerfs sync MOUNTPOINT\n"
"\n"
"Returns when everything written to MOUNTPOINT so far is stored on\n"
"suppliers (the whole mount's fsync).\n";

int
cmd_sync(int argc, char **argv)
{
	const char *mnt;
	int rc;

	if ((rc = one_mountpoint("sync", sync_help, argc, argv, NULL, NULL,
	    &mnt, NULL)) != 0)
		return rc;
	if (setxattr(mnt, CTL_SYNC, "1", 1, 0) != 0) {
		if (errno == EIO || errno == ETIMEDOUT) {
			fprintf(stderr, "peerfs sync: %s: not everything could be "
			    "uploaded (suppliers unreachable?); it stays in the "
			    "journal\n", mnt);
			return 1;
		}
		return not_peerfs("sync", mnt, errno);
	}
	return 0;
}

struct sync_job {
	const char *mnt;
	int err;
	volatile int done;
};

static void *
sync_thread(void *arg)
{
	struct sync_job *j = arg;

	j->err = setxattr(j->mnt, CTL_SYNC, "1", 1, 0) == 0 ? 0 : errno;
	j->done = 1;
	return NULL;
}

static void
show_progress(const char *mnt, int tty)
{
	char *st;

	if (!tty || cli_ctl_get(mnt, CTL_STATUS, &st) < 0)
		return;
	long long pending = json_number(st, "pending");
	long long jbytes = json_number(st, "journal_bytes");
	fprintf(stderr, "\ruploading: %lld blocks pending, %.1f MiB in the "
	    "journal   ", pending, jbytes / 1048576.0);
	free(st);
}

static const char umount_help[] =
"usage: peerfs umount [--force] [--timeout DURATION] MOUNTPOINT\n"
"\n"
"Uploads everything still pending (progress on a terminal), then unmounts\n"
"and waits for the mount daemon to exit.\n"
"  --timeout D   give up uploading after D (e.g. 10m); pending data stays\n"
"                in the local journal and the folder stays mounted\n"
"  --force       unmount at once; pending data stays in the journal and is\n"
"                uploaded by the next mount\n";

static int
run_fusermount(const char *mnt)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", mnt, (char *)NULL);
		execlp("umount", "umount", mnt, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int
cmd_umount(int argc, char **argv)
{
	const char *mnt;
	int rc, force = 0, tty = isatty(2);
	uint64_t timeout_ms = 0;
	struct sync_job job = { 0 };
	pthread_t th;
	char *st;
	long long pid;

	if ((rc = one_mountpoint("umount", umount_help, argc, argv, NULL,
	    &force, &mnt, &timeout_ms)) != 0)
		return rc;
	if ((rc = cli_ctl_get(mnt, CTL_STATUS, &st)) < 0)
		return not_peerfs("umount", mnt, -rc);
	pid = json_number(st, "pid");
	free(st);

	if (!force) {
		struct timespec start, now;
		job.mnt = mnt;
		clock_gettime(CLOCK_MONOTONIC, &start);
		if (pthread_create(&th, NULL, sync_thread, &job) != 0)
			return 1;
		while (!job.done) {
			usleep(200000);
			show_progress(mnt, tty);
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (timeout_ms && (uint64_t)((now.tv_sec - start.tv_sec) * 1000 +
			    (now.tv_nsec - start.tv_nsec) / 1000000) > timeout_ms) {
				job.err = ETIMEDOUT;
				break;
			}
		}
		if (tty)
			fprintf(stderr, "\n");
		if (job.err) {
			char *s = NULL;
			long long pending = -1;
			if (cli_ctl_get(mnt, CTL_STATUS, &s) == 0)
				pending = json_number(s, "pending");
			free(s);
			fprintf(stderr, "peerfs umount: %s: %lld blocks could not be "
			    "uploaded (%s); they stay in the local journal and %s is "
			    "still mounted (--force unmounts anyway)\n", mnt, pending,
			    strerror(job.err), mnt);
			if (job.done)
				pthread_join(th, NULL);
			else
				pthread_detach(th);
			return 1;
		}
		pthread_join(th, NULL);
	}
	if (run_fusermount(mnt) < 0) {
		fprintf(stderr, "peerfs umount: could not unmount %s (busy?)\n", mnt);
		return 1;
	}
	/* Return after the daemon has closed its metadata, so that the next
	 * mount of this home can start at once. */
	for (int i = 0; pid > 0 && i < 600 && kill((pid_t)pid, 0) == 0; i++)
		usleep(100000);
	return 0;
}

static const char status_help[] =
"usage: peerfs status [--json] MOUNTPOINT\n"
"\n"
"Per supplier: id, address, state, round-trip time, fragments and bytes;\n"
"totals: blocks (full, degraded, lost, pending upload), journal and cache\n"
"bytes. --json prints the same as JSON for scripts.\n";

int
cmd_status(int argc, char **argv)
{
	const char *mnt;
	int rc, json = 0;
	char *st;

	if ((rc = one_mountpoint("status", status_help, argc, argv, &json, NULL,
	    &mnt, NULL)) != 0)
		return rc;
	if ((rc = cli_ctl_get(mnt, json ? CTL_STATUS : CTL_STATUS_TEXT, &st)) < 0)
		return not_peerfs("status", mnt, -rc);
	fputs(st, stdout);
	free(st);
	return 0;
}
