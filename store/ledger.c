/* store/ledger.c - the audit ledger: what our audits proved about each
 * supplier, written by the mount's auditor (owner/audit.c) and read by the
 * supplier of the same home (the fair deal, net/supplier.c).
 *
 * <home>/ledger, text:
 *   peerfs-ledger 3
 *   mount <written> <rebuilding> <pass_end>
 *   <supplier id, 64 hex> <held> <proved> <first_ok> <last_ok> <last_fail>
 *       <relayed>
 * (bytes; unix seconds, 0 never; rebuilding 0 or 1; relayed: bytes it
 * carried for us as a relay). Version 2 (no relayed) still reads. The mount line says
 * how far the supplier may trust the balances (the eviction rule, store/
 * accounts.c): when they were written, whether a rebuild was moving our
 * fragments, when the auditor last finished a pass over every fragment.
 * Version 1 (no mount line) still reads, as a ledger never written: its
 * balances count, it is evidence of no breach. Replaced whole: written beside as
 * ledger.tmp, fsync'd, renamed over, so a reader sees the old file or the
 * new one. A file rather than the mount's LMDB: the two are separate
 * processes and the supplier runs when no mount does; a supplier holding
 * a read transaction in the mount's environment would pin its pages, and
 * a few hundred lines are cheap to read again when the file changes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/internal.h"
#include "store/store.h"
#include "util.h"

#define LEDGER_MAGIC	"peerfs-ledger 3\n"
#define LEDGER_MAGIC2	"peerfs-ledger 2\n"
#define LEDGER_MAGIC1	"peerfs-ledger 1\n"
#define LEDGER_MAX	100000	/* suppliers; beyond: a damaged file */

int
store_ledger_write(const char *path, const struct store_ledger_state *s,
    const struct store_ledger_ent *e, size_t n)
{
	char *tmp, id[2 * CR_PK_BYTES + 1];
	FILE *f;
	int fd, rc = 0;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		free(tmp);
		return rc;
	}
	fputs(LEDGER_MAGIC, f);
	fprintf(f, "mount %" PRId64 " %d %" PRId64 "\n", s->written,
	    s->rebuilding ? 1 : 0, s->pass_end);
	for (size_t i = 0; i < n; i++) {
		hex_encode(id, e[i].pk, CR_PK_BYTES);
		fprintf(f, "%s %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64
		    " %" PRId64 " %" PRIu64 "\n", id, e[i].held, e[i].proved,
		    e[i].first_ok, e[i].last_ok, e[i].last_fail, e[i].relayed);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = -errno;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

int
store_ledger_read(const char *path, struct store_ledger_state *s,
    struct store_ledger_ent **out, size_t *nout)
{
	struct store_ledger_ent *e = NULL;
	size_t n = 0, cap = 0;
	char line[256];
	FILE *f;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	if (s)
		memset(s, 0, sizeof *s);
	if (!(f = fopen(path, "re")))
		return -errno;
	if (!fgets(line, sizeof line, f) || (strcmp(line, LEDGER_MAGIC) != 0 &&
	    strcmp(line, LEDGER_MAGIC2) != 0 &&
	    strcmp(line, LEDGER_MAGIC1) != 0)) {
		fclose(f);
		return -EINVAL;
	}
	int v3 = strcmp(line, LEDGER_MAGIC) == 0;
	if (strcmp(line, LEDGER_MAGIC1) != 0) {
		struct store_ledger_state x;
		int used = 0;

		memset(&x, 0, sizeof x);
		if (!fgets(line, sizeof line, f) || sscanf(line, "mount %"
		    SCNd64 " %d %" SCNd64 "%n", &x.written, &x.rebuilding,
		    &x.pass_end, &used) != 3 || line[used] != '\n' ||
		    (x.rebuilding != 0 && x.rebuilding != 1)) {
			fclose(f);
			return -EINVAL;
		}
		if (s)
			*s = x;
	}
	while (fgets(line, sizeof line, f)) {
		struct store_ledger_ent x;
		char id[2 * CR_PK_BYTES + 2];
		int used = 0, used2 = 0;

		memset(&x, 0, sizeof x);
		if (sscanf(line, "%65s %" SCNu64 " %" SCNu64 " %" SCNd64 " %"
		    SCNd64 " %" SCNd64 "%n", id, &x.held, &x.proved,
		    &x.first_ok, &x.last_ok, &x.last_fail, &used) != 6 ||
		    (v3 && sscanf(line + used, " %" SCNu64 "%n", &x.relayed,
		    &used2) != 1) || line[used + used2] != '\n' || !store__fr_is_hex(id,
		    2 * CR_PK_BYTES) || n >= LEDGER_MAX) {
			rc = -EINVAL;
			break;
		}
		store__fr_hex_decode(x.pk, id, CR_PK_BYTES);
		if (n == cap) {
			size_t c = cap ? 2 * cap : 64;
			void *p = realloc(e, c * sizeof *e);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			e = p;
			cap = c;
		}
		e[n++] = x;
	}
	fclose(f);
	if (rc < 0) {
		free(e);
		return rc;
	}
	*out = e;
	*nout = n;
	return 0;
}
