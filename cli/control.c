/* cli/control.c - `peerfs sync | umount | status | check MOUNTPOINT`: they talk to
 * the mount daemon through control attributes on the mount's root, so they
 * need nothing but the mountpoint. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli/cli.h"
#include "fs/ctl.h"

#define FUSE_SUPER_MAGIC 0x65735546
/* sync and umount on a mount that can upload nothing (owner_conf's
 * finds_suppliers false, no supplier known). */
#define NO_SUPPLIER_WHY	"this mount knows no supplier (mounted without " \
	"--peer and without --bootstrap, or none could be found)"

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
	    getxattr(mnt, FS_CTL_STATUS, NULL, 0) < 0)
		return not_peerfs(cmd, mnt, ENODATA);
	return 0;
}

/* Parses cmd's options into *o; its one operand must be a peerfs mount. */
static int
one_mountpoint(enum cli_cmd cmd, int argc, char **argv, struct cli_conf *o)
{
	int rc;

	if ((rc = cli_parse(cmd, argc, argv, o)) != CLI_RUN)
		return rc;
	return check_mount(cli_commands[cmd].name, o->args[0]) ? 1 : CLI_RUN;
}

/* Prints the suppliers that refuse our data (status_refusals in
 * owner/status.c) after "peerfs CMD: MNT: ". */
static void
print_refusals(const char *cmd, const char *mnt)
{
	static const char tag[] = "refused by suppliers: ";
	char *st = NULL, *p, *e;

	if (cli_ctl_get(mnt, FS_CTL_STATUS_TEXT, &st) == 0 &&
	    (p = strstr(st, tag)) != NULL) {
		p += sizeof tag - 1;
		if ((e = strchr(p, '\n')))
			*e = '\0';
		fprintf(stderr, "peerfs %s: %s: suppliers refuse this owner's "
		    "data: %s; what is not uploaded stays in the local "
		    "journal\n", cmd, mnt, p);
	} else {
		fprintf(stderr, "peerfs %s: %s: suppliers refuse this owner's "
		    "data (see `peerfs status`); what is not uploaded stays "
		    "in the local journal\n", cmd, mnt);
	}
	free(st);
}

/* The status lines that say why this node cannot publish (another node
 * holds the lease, or published a newer version): 1 when there was one. */
static int
lease_why(const char *cmd, const char *mnt)
{
	char *st, *line, *save = NULL;
	int found = 0;

	if (cli_ctl_get(mnt, FS_CTL_STATUS_TEXT, &st) < 0)
		st = NULL;
	for (line = st ? strtok_r(st, "\n", &save) : NULL; line;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "diverged:", 9) == 0 ||
		    (strncmp(line, "node:", 5) == 0 && strstr(line, "read-only"))) {
			fprintf(stderr, "peerfs %s: %s: %s\n", cmd, mnt, line);
			found = 1;
		}
	}
	free(st);
	if (found)
		fprintf(stderr, "peerfs %s: %s: this node's changes are not on "
		    "the network: they stay in its journal and are replayed "
		    "when it holds the write lease again (`peerfs mount "
		    "--take-over`)\n", cmd, mnt);
	else
		fprintf(stderr, "peerfs %s: %s: the index version naming the "
		    "changes could not be published\n", cmd, mnt);
	return found;
}

int
cmd_sync(int argc, char **argv)
{
	struct cli_conf o;
	const char *mnt;
	int rc;

	if ((rc = one_mountpoint(CLI_SYNC, argc, argv, &o)) != CLI_RUN)
		return rc;
	mnt = o.args[0];
	if (setxattr(mnt, FS_CTL_SYNC, "1", 1, 0) != 0) {
		if (errno == EDQUOT) {
			print_refusals("sync", mnt);
			return 1;
		}
		if (errno == ESTALE || errno == EROFS) {
			lease_why("sync", mnt);
			return 1;
		}
		if (errno == ENOTCONN) {
			fprintf(stderr, "peerfs sync: %s: %s: what is pending "
			    "stays in the journal until a mount that has "
			    "suppliers uploads it\n", mnt, NO_SUPPLIER_WHY);
			return 1;
		}
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

/* Starts `setxattr sync` in a child process: the daemon answers it only
 * when the journal is empty or after its own sync timeout, and a thread
 * stuck in that request would keep this process from exiting when our
 * --timeout runs out. The child's stdio goes to /dev/null so that nobody
 * waits for its output. Returns its pid or -1. */
#define SYNC_REFUSED	3	/* start_sync's child: suppliers refuse */

static pid_t
start_sync(const char *mnt)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (setxattr(mnt, FS_CTL_SYNC, "1", 1, 0) == 0)
			_exit(0);
		_exit(errno == EDQUOT ? SYNC_REFUSED : 1);
	}
	return pid;
}

/* What umount waits on, from the daemon's status. offline: no supplier
 * reachable now; 2 when none is known and nothing looks for one, so
 * nothing can be uploaded before the next mount. */
static int
pending_now(const char *mnt, long long *pending, long long *bytes,
    long long *uploading, long long *spreading, int *offline)
{
	char *st;

	if (cli_ctl_get(mnt, FS_CTL_STATUS, &st) < 0)
		return -1;
	*pending = json_number(st, "pending");
	*bytes = json_number(st, "journal_bytes");
	*uploading = json_number(st, "uploading");
	*spreading = json_number(st, "spreading");
	*offline = strstr(st, "\"state\": \"offline\"") != NULL;
	if (*offline && json_number(st, "suppliers_known") == 0 &&
	    strstr(st, "\"finds_suppliers\": false"))
		*offline = 2;
	/* Metadata no published version holds yet: one more thing to
	 * upload, unless another node writes (then nothing would). */
	if (strstr(st, "\"index_pending\": true")) {
		(*uploading)++;
		if (strstr(st, "\"writer\": false")) {
			free(st);
			return 1;
		}
	}
	free(st);
	return 0;
}

static int
run_fusermount(const char *mnt, int lazy, int quiet)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		if (fd >= 0 && quiet) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (lazy) {
			execlp("fusermount3", "fusermount3", "-u", "-z", mnt,
			    (char *)NULL);
			execlp("umount", "umount", "-l", mnt, (char *)NULL);
		} else {
			execlp("fusermount3", "fusermount3", "-u", mnt,
			    (char *)NULL);
			execlp("umount", "umount", mnt, (char *)NULL);
		}
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

#define SPREAD_STALL_MS	60000
/* A mount that just started may still be connecting: say it is
 * offline only when it has been for this long. */
#define OFFLINE_TELL_MS	3000

/* Uploads until nothing is pending or timeout_ms passes: 0 when done,
 * 1 (with a report on stderr) when not. Blocks doubled up on a supplier
 * (a slow one's fragment, no spare) are waited for too while a supplier
 * that can take them is online, so the machine goes offline with every
 * block at full redundancy; at the timeout, or when their count has not
 * dropped for SPREAD_STALL_MS (the placement rules may keep the one
 * supplier online from taking them), they are only reported: each
 * already survives any one supplier's loss, and the next mount spreads
 * them. */
static int
upload_all(const char *mnt, uint64_t timeout_ms)
{
	struct cli_progress pg;
	long long pending = -1, bytes = 0, uploading = 0, spreading = 0;
	long long spread_last = -1;
	int64_t start = cli_mono_ms(), spread_moved = start;
	int offline = 0, status, refused = 0, told_offline = 0;
	pid_t child = -1;
	char wait_for[32];

	if (timeout_ms % 60000 == 0)
		snprintf(wait_for, sizeof wait_for, "%llu min",
		    (unsigned long long)(timeout_ms / 60000));
	else
		snprintf(wait_for, sizeof wait_for, "%.0f s",
		    timeout_ms / 1000.0);
	cli_progress_start(&pg, "umount", "blocks", 1);
	for (;;) {
		int prc = pending_now(mnt, &pending, &bytes, &uploading,
		    &spreading, &offline);

		if (prc > 0) {
			if (child > 0)
				kill(child, SIGKILL);
			lease_why("umount", mnt);
			fprintf(stderr, "peerfs umount: %s is still mounted "
			    "(`peerfs umount --force` unmounts anyway; the "
			    "journal stays in the home)\n", mnt);
			return 1;
		}
		if (prc < 0) {
			fprintf(stderr, "peerfs umount: %s: the mount daemon "
			    "stopped answering\n", mnt);
			pending = -1;
			break;
		}
		if (pending == 0 && uploading <= 0 && spreading <= 0)
			break;
		if (offline == 2 && (pending > 0 || uploading > 0))
			break;		/* waiting cannot help: said below */
		if (offline && !told_offline &&
		    cli_mono_ms() - start >= OFFLINE_TELL_MS) {
			told_offline = 1;
			fprintf(stderr, "%speerfs umount: %s: no supplier is "
			    "reachable; waiting for one to come back%s%s "
			    "(`peerfs umount --force` unmounts now; the "
			    "journal stays in the home and the next mount "
			    "uploads it)\n", pg.drawn ? "\n" : "", mnt,
			    timeout_ms ? " for up to " : "",
			    timeout_ms ? wait_for : "");
		}
		if (pending != 0 || uploading > 0 || spreading != spread_last) {
			spread_last = spreading;
			spread_moved = cli_mono_ms();
		} else if (cli_mono_ms() - spread_moved >= SPREAD_STALL_MS) {
			break;
		}
		/* A sync makes every block go now, backoff or not; start
		 * another when the last one gave up. Not while no supplier
		 * is reachable: it could not upload anything, and its request
		 * would outlive our timeout and keep the mount busy. */
		if (child > 0 && waitpid(child, &status, WNOHANG) == child) {
			child = -1;
			/* Suppliers refuse us: waiting will not change it. */
			if (WIFEXITED(status) &&
			    WEXITSTATUS(status) == SYNC_REFUSED) {
				refused = 1;
				break;
			}
		}
		if (child < 0 && !offline && (pending > 0 || uploading > 0))
			child = start_sync(mnt);
		cli_progress_show(&pg, pending > 0 ? pending : spreading, 0,
		    bytes, 0);
		if (timeout_ms && (uint64_t)(cli_mono_ms() - start) >= timeout_ms)
			break;
		usleep(100000);
	}
	if (child > 0 && pending == 0 && uploading <= 0) {
		/* Its sync returns now that the journal is empty; until it
		 * does its request keeps the mount busy. */
		waitpid(child, &status, 0);
	} else if (child > 0) {
		/* It ends when the daemon answers (its sync timeout at most);
		 * init reaps it. */
		kill(child, SIGKILL);
	}
	if (pg.drawn && pending == 0 && uploading <= 0)
		cli_progress_show(&pg, 0, 0, 0, 1);
	cli_progress_end(&pg);
	if (pending == 0 && uploading <= 0) {
		if (spreading > 0)
			fprintf(stderr, "peerfs umount: %s: after %.0f s, %lld "
			    "blocks still have two fragments on one supplier "
			    "(a slow supplier has not taken its own); each "
			    "survives the loss of any one supplier, and the "
			    "next mount spreads them out\n", mnt,
			    (cli_mono_ms() - start) / 1000.0, spreading);
		return 0;
	}
	if (offline == 2) {
		char left[64];

		if (pending > 0) {
			cli_fmt_bytes(left, sizeof left, (double)bytes);
			snprintf(left + strlen(left), sizeof left -
			    strlen(left), " in %lld blocks", pending);
		} else {
			snprintf(left, sizeof left, "the latest metadata");
		}
		fprintf(stderr, "peerfs umount: %s: %s cannot be uploaded: "
		    "%s; it stays in the local journal and %s is still mounted "
		    "(`peerfs umount --force` unmounts; mount again with "
		    "--peer HOST:PORT or --bootstrap HOST:PORT and the journal "
		    "uploads)\n", mnt, left, NO_SUPPLIER_WHY, mnt);
		return 1;
	}
	if (refused) {
		print_refusals("umount", mnt);
		fprintf(stderr, "peerfs umount: %s is still mounted (`peerfs "
		    "umount --force` unmounts anyway; the next mount uploads "
		    "the journal)\n", mnt);
		return 1;
	}
	if (pending == 0) {
		/* Tiny files live in the index until a published version
		 * holds them (and blocks still in flight). */
		fprintf(stderr, "peerfs umount: %s: after %.0f s, %lld blocks "
		    "are still on their way (tiny files wait for the index to "
		    "be published)%s; %s is still mounted (`peerfs umount "
		    "--force` unmounts anyway; the next mount publishes them)\n",
		    mnt, (cli_mono_ms() - start) / 1000.0, uploading,
		    offline ? " (no supplier reachable)" : "", mnt);
	} else if (pending > 0) {
		char left[32];

		cli_fmt_bytes(left, sizeof left, (double)bytes);
		fprintf(stderr, "peerfs umount: %s: still pending after %.0f s: "
		    "%lld blocks (%s) not yet on suppliers%s; they stay in the "
		    "local journal and %s is still mounted (`peerfs umount "
		    "--force` unmounts anyway; the next mount uploads them)\n",
		    mnt, (cli_mono_ms() - start) / 1000.0, pending, left,
		    offline ? " (no supplier reachable)" : "", mnt);
	}
	return 1;
}

int
cmd_umount(int argc, char **argv)
{
	struct cli_conf o;
	const char *mnt;
	int rc, force;
	char *st;
	long long pid;

	if ((rc = one_mountpoint(CLI_UMOUNT, argc, argv, &o)) != CLI_RUN)
		return rc;
	mnt = o.args[0];
	force = o.force;
	if ((rc = cli_ctl_get(mnt, FS_CTL_STATUS, &st)) < 0)
		return not_peerfs("umount", mnt, -rc);
	pid = json_number(st, "pid");
	free(st);

	if (!force && upload_all(mnt, o.umount_timeout_ms) != 0)
		return 1;
	if (run_fusermount(mnt, 0, force) < 0) {
		/* --force: a request still running (e.g. a sync given up by
		 * an earlier umount) keeps the mount busy; detach it now, the
		 * daemon exits when that request ends. */
		if (!force || run_fusermount(mnt, 1, 0) < 0) {
			fprintf(stderr, "peerfs umount: could not unmount %s "
			    "(busy?)\n", mnt);
			return 1;
		}
	}
	/* Return after the daemon has closed its metadata, so that the next
	 * mount of this home can start at once. */
	for (int i = 0; pid > 0 && i < 600 && kill((pid_t)pid, 0) == 0; i++)
		usleep(100000);
	return 0;
}

int
cmd_status(int argc, char **argv)
{
	struct cli_conf o;
	const char *mnt;
	char *st;
	int rc;

	if ((rc = one_mountpoint(CLI_STATUS, argc, argv, &o)) != CLI_RUN)
		return rc;
	mnt = o.args[0];
	if ((rc = cli_ctl_get(mnt, o.json ? FS_CTL_STATUS : FS_CTL_STATUS_TEXT, &st)) < 0)
		return not_peerfs("status", mnt, -rc);
	fputs(st, stdout);
	free(st);
	return 0;
}

/* Sets attribute name of path to "1" in a child process: the call
 * returns only once the work is done, and meanwhile this one shows
 * progress from poll (0 with what is left of how many; else nothing to
 * show). Returns 0, or the errno the call failed with. */
static int
set_with_progress(const char *path, const char *name,
    struct cli_progress *pg,
    int (*poll)(const char *path, long long *left, long long *total))
{
	long long left, total;
	int status;
	pid_t pid = fork(), w;

	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(setxattr(path, name, "1", 1, 0) == 0 ? 0 : errno);
	while ((w = waitpid(pid, &status, WNOHANG)) != pid) {
		if (w < 0 && errno != EINTR)
			return errno;
		if (poll(path, &left, &total) == 0)
			cli_progress_show(pg, left, total, -1, 0);
		usleep(50000);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
}

/* A running check's blocks left to audit, from the status. */
static int
check_poll(const char *mnt, long long *left, long long *total)
{
	char *st;
	int running;

	if (cli_ctl_get(mnt, FS_CTL_STATUS, &st) < 0)
		return -1;
	running = json_number(st, "check_running") == 1;
	*total = json_number(st, "check_blocks");
	*left = *total - json_number(st, "check_audited");
	free(st);
	return running && *total >= 0 ? 0 : -1;
}

int
cmd_check(int argc, char **argv)
{
	struct cli_progress pg;
	struct cli_conf o;
	const char *mnt;
	long long blocks;
	char *rep, *st;
	int rc;

	if ((rc = one_mountpoint(CLI_CHECK, argc, argv, &o)) != CLI_RUN)
		return rc;
	mnt = o.args[0];
	if ((rc = cli_ctl_get(mnt, FS_CTL_STATUS, &st)) < 0)
		return not_peerfs("check", mnt, -rc);
	blocks = json_number(st, "total");	/* blocks.total comes first */
	free(st);
	cli_progress_start(&pg, "check", "blocks audited", 1);
	cli_progress_show(&pg, blocks, blocks, -1, 1);
	rc = set_with_progress(mnt, FS_CTL_CHECK, &pg, check_poll);
	if (rc == 0)
		cli_progress_show(&pg, 0, 0, -1, 1);
	cli_progress_end(&pg);
	if (rc != 0) {
		if (rc == ENOTCONN) {
			fprintf(stderr, "peerfs check: %s: no network\n", mnt);
			return 1;
		}
		return not_peerfs("check", mnt, rc);
	}
	if ((rc = cli_ctl_get(mnt, FS_CTL_REPORT, &rep)) < 0)
		return not_peerfs("check", mnt, -rc);
	fputs(rep, stdout);
	rc = strstr(rep, "result: full redundancy") != NULL ? 0 : 1;
	free(rep);
	return rc;
}

/* ---- pin / unpin ----------------------------------------------------------
 * Through the attribute user.peerfs.pin of the path itself (fs/pin.c). */

/* Parses cmd's options; its one operand must be in a peerfs mount. */
static int
pin_args(enum cli_cmd cmd, int argc, char **argv, const char **path)
{
	const char *name = cli_commands[cmd].name;
	struct cli_conf o;
	struct statfs sf;
	int rc;

	if ((rc = cli_parse(cmd, argc, argv, &o)) != CLI_RUN)
		return rc;
	*path = o.args[0];
	if (statfs(*path, &sf) != 0)
		return not_peerfs(name, *path, errno);
	if (sf.f_type != FUSE_SUPER_MAGIC || getxattr(*path, FS_CTL_PIN, NULL, 0) < 0) {
		fprintf(stderr, "peerfs %s: %s is not in a peerfs mount\n", name,
		    *path);
		return 1;
	}
	return CLI_RUN;
}

static void
pin_summary(const char *path, const char *info)
{
	long long files = json_number(info, "files");
	long long blocks = json_number(info, "blocks");
	long long local = json_number(info, "local");
	long long bytes = json_number(info, "bytes");
	char b[32];

	cli_fmt_bytes(b, sizeof b, (double)(bytes < 0 ? 0 : bytes));
	printf("%s: %s; %lld files (%s), %lld of %lld stored blocks kept "
	    "locally\n", path, json_number(info, "pinned") == 1 ? "pinned" :
	    "not pinned", files, b, local, blocks);
}

/* The subtree's blocks not yet local. */
static int
pin_poll(const char *path, long long *left, long long *total)
{
	char *info;

	if (cli_ctl_get(path, FS_CTL_PIN, &info) < 0)
		return -1;
	*total = json_number(info, "blocks");
	*left = *total - json_number(info, "local");
	free(info);
	return *total >= 0 && *left >= 0 ? 0 : -1;
}

int
cmd_pin(int argc, char **argv)
{
	struct cli_progress pg;
	long long left, total;
	const char *path;
	char *info = NULL;
	int rc, err = 0;

	if ((rc = pin_args(CLI_PIN, argc, argv, &path)) != CLI_RUN)
		return rc;
	cli_progress_start(&pg, "pin", "blocks local", 1);
	if (pin_poll(path, &left, &total) == 0)
		cli_progress_show(&pg, left, total, -1, 1);
	err = set_with_progress(path, FS_CTL_PIN, &pg, pin_poll);
	if (pin_poll(path, &left, &total) == 0)
		cli_progress_show(&pg, left, total, -1, 1);
	cli_progress_end(&pg);
	if (err && err != EIO) {
		fprintf(stderr, "peerfs pin: %s: %s\n", path, strerror(err));
		return 1;
	}
	if (cli_ctl_get(path, FS_CTL_PIN, &info) == 0) {
		pin_summary(path, info);
		free(info);
	}
	if (err == EIO) {
		fprintf(stderr, "peerfs pin: %s: pinned, but not every block "
		    "could be fetched (suppliers unreachable?); the rest is "
		    "fetched when suppliers are back\n", path);
		return 1;
	}
	return 0;
}

int
cmd_unpin(int argc, char **argv)
{
	const char *path;
	char *info = NULL;
	int rc;

	if ((rc = pin_args(CLI_UNPIN, argc, argv, &path)) != CLI_RUN)
		return rc;
	if (setxattr(path, FS_CTL_PIN, "0", 1, 0) != 0) {
		fprintf(stderr, "peerfs unpin: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (cli_ctl_get(path, FS_CTL_PIN, &info) == 0) {
		if (json_number(info, "pinned") == 1)
			printf("%s: still pinned through a pinned parent "
			    "directory\n", path);
		else
			printf("%s: not pinned\n", path);
		free(info);
	}
	return 0;
}
