/* cli/common.c - the home directory, passphrases, usage errors, the
 * control attributes, detaching. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"

char *
cli_home(const char *opt)
{
	const char *h = opt;
	char buf[PATH_MAX];

	if (!h || !*h)
		h = getenv("PEERFS_HOME");
	if (!h || !*h) {
		const char *home = getenv("HOME");
		snprintf(buf, sizeof buf, "%s/.peerfs", home ? home : "/root");
		h = buf;
	}
	if (h[0] != '/') {
		char cwd[PATH_MAX], *p;
		if (!getcwd(cwd, sizeof cwd))
			return strdup(h);
		if (asprintf(&p, "%s/%s", cwd, h) < 0)
			return NULL;
		return p;
	}
	return strdup(h);
}

char *
cli_path(const char *home, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", home, name) < 0) {
		fprintf(stderr, "peerfs: out of memory\n");
		exit(1);
	}
	return p;
}

int
cli_mkdir_p(const char *path, int mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int
read_line(FILE *f, char **out)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);

	if (n < 0) {
		free(line);
		line = strdup("");
		if (!line)
			return -ENOMEM;
	} else {
		line[strcspn(line, "\r\n")] = '\0';
	}
	*out = line;
	return 0;
}

static int
prompt_tty(const char *question, char **out)
{
	struct termios old, quiet;
	FILE *tty = fopen("/dev/tty", "r+");
	int rc;

	if (!tty)
		return -ENOTTY;
	fprintf(tty, "%s", question);
	fflush(tty);
	tcgetattr(fileno(tty), &old);
	quiet = old;
	quiet.c_lflag &= ~ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	rc = read_line(tty, out);
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fprintf(tty, "\n");
	fclose(tty);
	return rc;
}

void
cli_home_tighten(const char *home)
{
	struct stat sb;

	if (stat(home, &sb) != 0 || !S_ISDIR(sb.st_mode) ||
	    (sb.st_mode & 077) == 0 || sb.st_uid != geteuid())
		return;
	if (chmod(home, 0700) == 0)
		fprintf(stderr, "peerfs: %s was readable by others (mode %03o): "
		    "now 0700\n", home, (unsigned)(sb.st_mode & 0777));
	else
		fprintf(stderr, "peerfs: %s is readable by others and cannot "
		    "be made 0700: %s\n", home, strerror(errno));
}

FILE *
cli_open_log(const char *home, const char *name)
{
	char *path = cli_path(home, name);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	FILE *f;

	free(path);
	if (fd < 0)
		return NULL;
	if (fchmod(fd, 0600) != 0 || !(f = fdopen(fd, "a"))) {
		close(fd);
		return NULL;
	}
	return f;
}

void
cli_passphrase_free(char *pass)
{
	if (!pass)
		return;
	sodium_memzero(pass, strlen(pass));
	free(pass);
}

/* The variable's bytes live in the process's initial environment block,
 * which /proc/PID/environ shows for as long as the process lives:
 * unsetenv() only drops the pointer, so the bytes are wiped first. */
static int
take_env_passphrase(char **out)
{
	static const char name[] = "PEERFS_PASSPHRASE";
	char *env = getenv(name), *entry;

	if (!env)
		return -ENOENT;
	*out = strdup(env);
	entry = env - sizeof name;	/* "NAME=value": the whole entry */
	unsetenv(name);
	sodium_memzero(entry, strlen(entry));
	return *out ? 0 : -ENOMEM;
}

int
cli_passphrase(const char *file, int prompt, int confirm, char **out)
{
	int rc;

	if (file) {
		FILE *f = fopen(file, "r");
		if (!f) {
			rc = -errno;
			fprintf(stderr, "peerfs: passphrase file %s: %s\n", file,
			    strerror(errno));
			return rc;
		}
		rc = read_line(f, out);
		fclose(f);
		return rc;
	}
	if ((rc = take_env_passphrase(out)) != -ENOENT)
		return rc;
	if (!prompt)
		return -ENOENT;
	if ((rc = prompt_tty("passphrase: ", out)) < 0) {
		fprintf(stderr, "peerfs: a passphrase is needed: use "
		    "--passphrase-file, PEERFS_PASSPHRASE or a terminal\n");
		return rc;
	}
	if (confirm) {
		char *again;
		if ((rc = prompt_tty("passphrase again: ", &again)) < 0)
			return rc;
		rc = strcmp(again, *out) ? -EINVAL : 0;
		cli_passphrase_free(again);
		if (rc) {
			fprintf(stderr, "peerfs: passphrases differ\n");
			cli_passphrase_free(*out);
		}
	}
	return rc;
}

int
cli_load_identity(const char *home, const char *pass_file,
    struct cr_identity **out)
{
	char *key = cli_path(home, "key"), *pass = NULL;
	int rc;

	if ((rc = cr_init()) < 0)
		goto out;
	rc = cr_keyfile_has_passphrase(key);
	if (rc == -ENOENT) {
		fprintf(stderr, "peerfs: no key in %s (run `peerfs init --home "
		    "%s` first)\n", home, home);
		goto out;
	}
	if (rc < 0) {
		fprintf(stderr, "peerfs: key file %s: %s\n", key, strerror(-rc));
		goto out;
	}
	if (rc == 1 && (rc = cli_passphrase(pass_file, 1, 0, &pass)) < 0)
		goto out;
	rc = cr_keyfile_load(key, pass, out);
	if (rc == -EACCES)
		fprintf(stderr, "peerfs: wrong passphrase for %s\n", key);
	else if (rc == -EINVAL)
		fprintf(stderr, "peerfs: key file %s is damaged or not a peerfs "
		    "key\n", key);
	else if (rc < 0)
		fprintf(stderr, "peerfs: key file %s: %s\n", key, strerror(-rc));
out:
	cli_passphrase_free(pass);
	free(key);
	return rc;
}

/* Opens <home>/node.key, made (without a passphrase) when missing. */
static int
node_key(const char *home, struct cr_identity **out)
{
	char *path = cli_path(home, "node.key");
	int rc = cr_keyfile_load(path, NULL, out);

	if (rc == -ENOENT)
		rc = cr_keyfile_create(path, NULL, out);
	if (rc == -EEXIST)	/* made meanwhile by the supplier or mount */
		rc = cr_keyfile_load(path, NULL, out);
	if (rc < 0)
		fprintf(stderr, "peerfs: node key %s: %s\n", path,
		    strerror(-rc));
	free(path);
	return rc;
}

int
cli_node_bind(const char *home, const struct cr_identity *id,
    unsigned char node[CR_PK_BYTES], unsigned char bind[CR_BIND_BYTES])
{
	char *key = cli_path(home, "key"), *nk = cli_path(home, "node.key");
	struct cr_identity *nid = NULL;
	int rc = access(nk, F_OK) == 0 ? 1 : cr_keyfile_has_passphrase(key);

	free(key);
	free(nk);
	if (rc <= 0)
		return rc == -ENOENT ? 0 : rc;
	if ((rc = node_key(home, &nid)) < 0)
		return rc;
	memcpy(node, nid->pk, CR_PK_BYTES);
	cr_bind_sign(id, nid, bind);
	cr_identity_free(nid);
	return 1;
}

int
cli_node_identity(const char *home, struct cr_identity **out)
{
	char *key = cli_path(home, "key"), *nk = cli_path(home, "node.key");
	int rc;

	if (access(nk, F_OK) == 0 || cr_keyfile_has_passphrase(key) == 1) {
		rc = node_key(home, out);
	} else if (access(key, F_OK) != 0) {
		/* A home that only supplies: its key is its node. */
		if ((rc = cli_mkdir_p(home, 0700)) < 0 ||
		    (rc = cr_keyfile_create(key, getenv("PEERFS_PASSPHRASE"),
		    out)) < 0)
			fprintf(stderr, "peerfs supplier: cannot create %s: "
			    "%s\n", key, strerror(-rc));
	} else {
		rc = cli_load_identity(home, NULL, out);
	}
	free(key);
	free(nk);
	return rc;
}

int
cli_bad_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "peerfs %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see peerfs %s --help)\n", cmd);
	return CLI_USAGE;
}

int
cli_ctl_get(const char *mnt, const char *name, char **out)
{
	ssize_t n;
	char *buf;

	/* The answer is generated per call; ask for the size, then retry if
	 * it grew in between. */
	for (int tries = 0; tries < 5; tries++) {
		n = getxattr(mnt, name, NULL, 0);
		if (n < 0)
			return -errno;
		if (!(buf = malloc(n + 4096 + 1)))
			return -ENOMEM;
		n = getxattr(mnt, name, buf, n + 4096);
		if (n >= 0) {
			buf[n] = '\0';
			*out = buf;
			return 0;
		}
		free(buf);
		if (errno != ERANGE)
			return -errno;
	}
	return -ERANGE;
}

int
cli_detach(int *notify_fd)
{
	int fds[2];
	char msg[8];
	pid_t pid;

	if (pipe(fds) != 0)
		return -errno;
	if ((pid = fork()) < 0)
		return -errno;
	if (pid > 0) {
		close(fds[1]);
		ssize_t n = read(fds[0], msg, sizeof msg);
		_exit(n == 2 && !memcmp(msg, "ok", 2) ? 0 : 1);
	}
	close(fds[0]);
	setsid();
	*notify_fd = fds[1];
	return 0;
}

void
cli_write_pid(const char *home, const char *name)
{
	char *path = cli_path(home, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f;

	free(path);
	if (fd < 0)
		return;
	if (fchmod(fd, 0600) != 0 || !(f = fdopen(fd, "w"))) {
		close(fd);
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}
