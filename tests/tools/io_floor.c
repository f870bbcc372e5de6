/* tests/tools/io_floor.c - the least kernel work that writing through
 * peerfs needs per GB, with no peerfs daemon at all, for make bench: each
 * step done the cheapest way this machine allows, timed alone in CPU
 * time. crypto_floor says what the format's arithmetic costs; this says
 * what moving the bytes costs. Their sums are the floors under
 * owner_cpu_s_per_GB and supplier_cpu_s_per_GB: a target below its floor
 * cannot be met by any change to peerfs's code on this machine, only by a
 * different machine or by doing less (no journal, no session MAC, no
 * fsync before PUT_OK).
 *
 *   io_floor DIR [MiB] [k m]     (default 256 MiB, 4 + 2)
 *
 * DIR is where the files go (the disk the journal and the stores use);
 * everything written under it is removed again. One figure per line,
 * "name value s/GB":
 *   io_journal_write_s_per_GB  the FUSE thread's part: the written bytes
 *                              copied into a file in 1 MiB pwrites, one
 *                              fdatasync at the end (over pages already
 *                              cached: see journal())
 *   io_journal_read_s_per_GB   the upload's part: read back in 1 MiB
 *                              preads from the page cache
 *   io_send_s_per_GB           (k + m) / k GB sent over loopback TCP in
 *                              1 MiB writes, the sender's CPU
 *   owner_io_s_per_GB          the three, per GB written
 *   io_recv_s_per_GB           per GB received: the receiver's CPU
 *   io_store_file_s_per_GB     per GB stored the way the store does it
 *                              today: a file per 1 MiB fragment, written,
 *                              fdatasync'd, renamed into one of 256
 *                              directories, the directory fsync'd
 *   io_store_packed_s_per_GB   per GB stored the cheapest durable way: 1
 *                              MiB fragments appended to one file with
 *                              O_DIRECT, fdatasync'd one by one (a PUT is
 *                              durable before its PUT_OK)
 *   supplier_io_s_per_GB       io_recv + io_store_packed
 * On loopback the kernel does part of the receiving in the sender's
 * context, so send and receive are apart only roughly; their sum holds.
 * Work done later by kernel threads (writeback, the ext4 journal) is
 * billed to no process, here as in the daemons' own figures. Exits 1
 * with a message when a step fails (O_DIRECT refused: DIR must be on a
 * file system that has it, such as ext4; tmpfs before Linux 6.6 has
 * not). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IO_CHUNK (1u << 20)	/* a write, a read, a fragment */

static double
cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
fail(const char *what, const char *path)
{
	fprintf(stderr, "io_floor: %s%s%s: %s\n", what, path ? " " : "",
	    path ? path : "", strerror(errno));
	return -1;
}

static int
write_all(int fd, const unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
read_all(int fd, unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EPIPE;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The journal's share: nchunks MiB in and back out; CPU of each half. */
static int
journal(const char *dir, size_t nchunks, unsigned char *buf, double *wr,
    double *rd)
{
	char path[4096];
	double t0;
	int fd, rc = 0;

	snprintf(path, sizeof path, "%s/journal", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0)
		return fail("open", path);
	/* Timed is the second pass, over pages already in the cache and
	 * blocks already allocated: the copy at its cheapest. A fresh page
	 * can cost many times the copy on a VM whose host takes freed pages
	 * back (a host fault on first touch: measured here, 2.3-3.7 s per GB
	 * against 0.2 once the page cache held 2 GiB of another file); that
	 * is the machine's price for new pages, not the journal's floor. */
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		t0 = cpu_now();
		for (size_t i = 0; i < nchunks && rc == 0; i++)
			if (pwrite(fd, buf, IO_CHUNK, (off_t)(i * IO_CHUNK)) !=
			    (ssize_t)IO_CHUNK)
				rc = fail("pwrite", path);
		if (rc == 0 && fdatasync(fd) != 0)
			rc = fail("fdatasync", path);
		*wr = cpu_now() - t0;
	}
	t0 = cpu_now();
	for (size_t i = 0; i < nchunks && rc == 0; i++)
		if (pread(fd, buf, IO_CHUNK, (off_t)(i * IO_CHUNK)) !=
		    (ssize_t)IO_CHUNK)
			rc = fail("pread", path);
	*rd = cpu_now() - t0;
	close(fd);
	unlink(path);
	return rc;
}

/* nchunks MiB over a loopback TCP connection to a child; the sender's
 * CPU in *tx, the receiver's in *rx (sent back over a pipe). */
static int
transfer(size_t nchunks, unsigned char *buf, double *tx, double *rx)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;
	int ls, c, pfd[2], status, rc = 0;
	double t0;
	pid_t pid;

	if ((ls = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(ls, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) != 0 ||
	    listen(ls, 1) != 0 || pipe(pfd) != 0)
		return fail("loopback listen", NULL);
	if ((pid = fork()) < 0)
		return fail("fork", NULL);
	if (pid == 0) {
		int s = accept(ls, NULL, NULL);
		double used;

		t0 = cpu_now();
		for (size_t i = 0; i < nchunks; i++)
			if (s < 0 || read_all(s, buf, IO_CHUNK) != 0) {
				fail("receive", NULL);
				_exit(1);
			}
		used = cpu_now() - t0;
		_exit(write(pfd[1], &used, sizeof used) == sizeof used ? 0 : 1);
	}
	close(pfd[1]);
	if ((c = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(c, (struct sockaddr *)&a, sizeof a) != 0)
		rc = fail("loopback connect", NULL);
	t0 = cpu_now();
	for (size_t i = 0; i < nchunks && rc == 0; i++)
		if (write_all(c, buf, IO_CHUNK) != 0)
			rc = fail("send", NULL);
	*tx = cpu_now() - t0;
	if (c >= 0)
		close(c);
	close(ls);
	if (rc == 0 && read_all(pfd[0], (unsigned char *)rx, sizeof *rx) != 0)
		rc = fail("the receiver's figure", NULL);
	close(pfd[0]);
	if (rc != 0)		/* it may still wait in accept() */
		kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		rc = -1;
	return rc;
}

/* Today's store: each fragment its own file, made durable and renamed
 * into place, its directory fsync'd (as store_frag_put does). */
static int
store_files(const char *dir, size_t nchunks, const unsigned char *buf,
    double *cpu)
{
	char sub[4096], tmp[4200], dst[4200];
	double t0 = cpu_now();
	int rc = 0;

	for (size_t i = 0; i < nchunks && rc == 0; i++) {
		int fd, dfd = -1;

		snprintf(sub, sizeof sub, "%s/%02zx", dir, i & 0xff);
		if (mkdir(sub, 0700) != 0 && errno != EEXIST) {
			rc = fail("mkdir", sub);
			break;
		}
		snprintf(tmp, sizeof tmp, "%s/.tmp%zu", sub, i);
		snprintf(dst, sizeof dst, "%s/f%zu", sub, i);
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) {
			rc = fail("open", tmp);
			break;
		}
		if (write_all(fd, buf, IO_CHUNK) != 0 || fdatasync(fd) != 0)
			rc = fail("write", tmp);
		close(fd);
		if (rc == 0 && rename(tmp, dst) != 0)
			rc = fail("rename", tmp);
		if (rc != 0)
			unlink(tmp);
		if (rc == 0 && ((dfd = open(sub, O_RDONLY | O_DIRECTORY)) < 0 ||
		    fsync(dfd) != 0))
			rc = fail("fsync", sub);
		if (dfd >= 0)
			close(dfd);
	}
	*cpu = cpu_now() - t0;
	for (size_t i = 0; i < nchunks; i++) {
		snprintf(dst, sizeof dst, "%s/%02zx/f%zu", dir, i & 0xff, i);
		unlink(dst);
	}
	for (size_t i = 0; i < 256 && i < nchunks; i++) {
		snprintf(sub, sizeof sub, "%s/%02zx", dir, i);
		rmdir(sub);
	}
	return rc;
}

/* The cheapest durable store: one file, appended with O_DIRECT (no
 * page-cache copy), each fragment fdatasync'd before the next. */
static int
store_packed(const char *dir, size_t nchunks, const unsigned char *buf,
    double *cpu)
{
	char path[4096];
	double t0;
	int fd, rc = 0;

	snprintf(path, sizeof path, "%s/pack", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT,
	    0600)) < 0)
		return fail("open with O_DIRECT", path);
	t0 = cpu_now();
	for (size_t i = 0; i < nchunks && rc == 0; i++)
		if (write_all(fd, buf, IO_CHUNK) != 0 || fdatasync(fd) != 0)
			rc = fail("O_DIRECT write", path);
	*cpu = cpu_now() - t0;
	close(fd);
	unlink(path);
	return rc;
}

int
main(int argc, char **argv)
{
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 256;
	int k = argc > 4 ? atoi(argv[3]) : 4, m = argc > 4 ? atoi(argv[4]) : 2;
	double jw = 0, jr = 0, tx = 0, rx = 0, sf = 0, sp = 0, gb, sent_gb;
	size_t nsent;
	unsigned char *buf;
	struct stat st;

	if (argc < 2 || mib == 0 || k < 1 || m < 0) {
		fprintf(stderr, "usage: io_floor DIR [MiB] [k m]\n");
		return 2;
	}
	if (stat(argv[1], &st) != 0) {
		fail("no directory", argv[1]);
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		fail("no directory", argv[1]);
		return 1;
	}
	/* Aligned for O_DIRECT; filled so that no page is a shared zero. */
	if (posix_memalign((void **)&buf, 4096, IO_CHUNK) != 0)
		return 1;
	for (size_t i = 0; i < IO_CHUNK; i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	signal(SIGPIPE, SIG_IGN);	/* a receiver that failed: EPIPE */
	nsent = (mib * (size_t)(k + m) + (size_t)k - 1) / (size_t)k;
	gb = (double)mib * IO_CHUNK / 1e9;
	sent_gb = (double)nsent * IO_CHUNK / 1e9;
	if (journal(argv[1], mib, buf, &jw, &jr) != 0 ||
	    transfer(nsent, buf, &tx, &rx) != 0 ||
	    store_files(argv[1], mib, buf, &sf) != 0 ||
	    store_packed(argv[1], mib, buf, &sp) != 0) {
		free(buf);
		return 1;
	}
	printf("io_journal_write_s_per_GB %.2f s/GB\n", jw / gb);
	printf("io_journal_read_s_per_GB %.2f s/GB\n", jr / gb);
	printf("io_send_s_per_GB %.2f s/GB\n", tx / gb);
	printf("owner_io_s_per_GB %.2f s/GB\n", (jw + jr + tx) / gb);
	printf("io_recv_s_per_GB %.2f s/GB\n", rx / sent_gb);
	printf("io_store_file_s_per_GB %.2f s/GB\n", sf / gb);
	printf("io_store_packed_s_per_GB %.2f s/GB\n", sp / gb);
	printf("supplier_io_s_per_GB %.2f s/GB\n", rx / sent_gb + sp / gb);
	free(buf);
	return 0;
}
