/* cli/sdnotify.c - readiness for systemd (Type=notify): the datagram of
 * sd_notify(3) written by hand rather than linking libsystemd. The protocol
 * is one of systemd's documented stable interfaces (a datagram of
 * "KEY=VALUE\n" lines to the AF_UNIX socket named by $NOTIFY_SOCKET, "@"
 * for the abstract namespace), it is all we use of the library, and without
 * the link the binary and the package stay free of a systemd dependency
 * for the many who run peerfs by hand. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "log.h"

int
cli_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	int fd, rc = 0;

	if (!path || !*path)
		return 0;	/* not started by systemd: nobody to tell */
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path) {
		log_warn("NOTIFY_SOCKET %s: not a socket path", path);
		return -EINVAL;
	}
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
		rc = -errno;
		log_warn("telling systemd %s: %s", state, strerror(errno));
	}
	close(fd);
	return rc;
}
