/* tests/unit/testutil.c - helpers shared by the unit tests (test.h) and
 * the supplier swarm (testutil.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "net/net.h"
#include "store/store.h"
#include "tests/unit/test.h"
#include "tests/unit/testutil.h"

struct cr_identity *
test_identity(void)
{
	struct cr_identity *id;

	if (cr_init() != 0 || !(id = sodium_malloc(sizeof *id)))
		abort();
	crypto_sign_keypair(id->pk, id->sk);
	randombytes_buf(id->master, sizeof id->master);
	return id;
}

void
test_fill_id(unsigned char *id, unsigned seed)
{
	for (int i = 0; i < CR_ID_BYTES; i++)
		id[i] = (unsigned char)(seed * 131 + i * 7 + 1);
}

int
test_threads_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	char path[300], comm[32];
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm",
		    e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(comm, sizeof comm, f) != NULL) {
			comm[strcspn(comm, "\n")] = '\0';
			n += strcmp(comm, name) == 0;
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

int
test_threads_become(const char *name, int n)
{
	int got = 0;

	for (int i = 0; i < 500; i++) {
		if ((got = test_threads_named(name)) == n)
			break;
		usleep(10000);
	}
	return got;
}

/* ---- supplier swarm ------------------------------------------------------ */

void
test_sup_ready(int fd, const char *bound)
{
	if (write(fd, bound, strlen(bound) + 1) < 0)
		_exit(3);
	close(fd);
}

static void
on_ready(void *arg, const char *bound)
{
	test_sup_ready(*(int *)arg, bound);
}

/* Child: a real supplier serving dir on host:port until signalled. Exits
 * 2 when the port is taken, so the parent tries another. */
static void
supplier_child(const struct test_swarm *sw, int i, int fd, const char *host,
    int port)
{
	/* The defaults of `peerfs supplier` (cli/options.c). */
	struct net_supplier_conf c = { .max_sessions = 1024,
	    .max_per_addr = 32, .max_per_key = 8, .inflight_max = 128 << 20,
	    .hs_timeout_ms = 10000, .frame_timeout_ms = 30000,
	    .idle_timeout_ms = 300000 };
	struct store_frag *sf;
	char dir[64], listen[64];
	int rc;

	log_init("supplier", sw->sup_log, NULL);
	snprintf(dir, sizeof dir, "sup%d", i);
	if (cr_init() < 0 || store_frag_open(&sf, dir, sw->quota[i]) < 0)
		_exit(4);
	snprintf(listen, sizeof listen, "%s:%d", host, port);
	c.id = sw->sid[i];
	c.test_lie = sw->lie[i];
	c.test_old = sw->old[i];
	c.listen = listen;
	c.frags = sf;
	c.on_ready = on_ready;
	c.arg = &fd;
	rc = net_supplier_run(&c);
	store_frag_close(sf);
	_exit(rc == 0 ? 0 : rc == UV_EADDRINUSE || rc == -EADDRINUSE ? 2 : 5);
}

int
test_sup_start_child(struct test_swarm *sw, int i, int port,
    test_sup_child_fn child, void *arg)
{
	const char *host = sw->host ? sw->host : "127.0.0.1";
	char buf[64];

	if (!sw->sid[i])
		sw->sid[i] = test_identity();
	for (int tries = 0; tries < 40; tries++) {
		int p = port ? port : 20000 + (getpid() * 13) % 20000 +
		    sw->nports++;
		int fds[2];
		ssize_t n;
		pid_t pid;

		if (pipe(fds) < 0)
			return -errno;
		fflush(NULL);
		if ((pid = fork()) == 0) {
			close(fds[0]);
			setpgid(0, 0);
			if (child)
				child(fds[1], host, p, sw->sid[i], arg);
			supplier_child(sw, i, fds[1], host, p);
		}
		close(fds[1]);
		n = read(fds[0], buf, sizeof buf - 1);
		close(fds[0]);
		if (n > 0) {
			sw->pid[i] = pid;
			sw->port[i] = p;
			snprintf(sw->addr[i], sizeof sw->addr[i], "%s:%d",
			    host, p);
			return 0;
		}
		waitpid(pid, NULL, 0);
		if (port)	/* a fixed port may take a moment to free */
			usleep(100000);
	}
	return -EADDRINUSE;
}

int
test_sup_start(struct test_swarm *sw, int i, int port)
{
	return test_sup_start_child(sw, i, port, NULL, NULL);
}

void
test_sup_kill(struct test_swarm *sw, int i, int sig)
{
	if (sw->pid[i] > 0) {
		kill(sw->pid[i], sig);
		waitpid(sw->pid[i], NULL, 0);
		sw->pid[i] = 0;
	}
}

int
test_swarm_client(struct test_swarm *sw, int nadd, const struct net_conf *nc)
{
	struct net_conf c = *nc;

	CHECK(cr_init() == 0);
	if (!sw->me)
		sw->me = test_identity();
	randombytes_buf(sw->datakey, sizeof sw->datakey);
	CHECK_EQ(store_open(&sw->st, "owner", 64 << 20), 0);
	CHECK_EQ(cr_ec_new(&sw->ec, 4, 2), 0);
	c.id = sw->me;
	c.store = sw->st;
	c.ec = sw->ec;
	CHECK_EQ(net_new(&sw->net, &c), 0);
	for (int i = 0; i < nadd; i++)
		CHECK_EQ(net_add_peer(sw->net, sw->addr[i]), 0);
	CHECK_EQ(net_wait_online(sw->net, nadd, 10000), nadd);
	return 0;
}

int
test_swarm_start(struct test_swarm *sw, int nsup, int nadd,
    const struct net_conf *nc)
{
	CHECK(cr_init() == 0);
	for (int i = 0; i < nsup; i++)
		CHECK_EQ(test_sup_start(sw, i, 0), 0);
	return test_swarm_client(sw, nadd, nc);
}

void
test_swarm_stop(struct test_swarm *sw)
{
	if (sw->net)
		net_free(sw->net);
	sw->net = NULL;
	for (int i = 0; i < TEST_MAXSUP; i++)
		test_sup_kill(sw, i, SIGKILL);
	if (sw->st)
		store_close(sw->st);
	if (sw->ec)
		cr_ec_free(sw->ec);
	if (sw->me)
		sodium_free(sw->me);
	for (int i = 0; i < TEST_MAXSUP; i++)
		if (sw->sid[i])
			sodium_free(sw->sid[i]);
	if (sw->log)
		fclose(sw->log);
	memset(sw, 0, sizeof *sw);
}

int
test_swarm_run(int (*body)(struct test_swarm *sw))
{
	struct test_swarm sw = { 0 };
	int rc = body(&sw);

	test_swarm_stop(&sw);
	return rc;
}

int
test_argc(char **argv)
{
	int n = 0;

	while (argv[n])
		n++;
	return n;
}

int
test_parse_caught(int cmd, char **argv, struct cli_conf *c, char *err,
    size_t cap)
{
	int fd, saved, rc;
	ssize_t n;

	fflush(stderr);
	saved = dup(2);
	fd = open("stderr.txt", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || saved < 0)
		return -100;
	dup2(fd, 2);
	rc = cli_parse((enum cli_cmd)cmd, test_argc(argv), argv, c);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, err, cap - 1, 0);
	err[n > 0 ? n : 0] = '\0';
	close(fd);
	return rc;
}

int
test_dir_count(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}
