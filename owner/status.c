/* owner/status.c - what `peerfs status` shows: each supplier with its
 * state and what it holds of ours, blocks by what can be read now, the
 * upload, rebuild, audit and delete figures; as JSON or as lines. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "owner/internal.h"
#include "strbuf.h"
#include "util.h"

#define CTL_MAX_PEERS 256

struct redundancy {
	const struct net_peer_info *peers;
	int npeers;
	uint64_t total, full, degraded, lost;
	uint64_t by_missing[CR_EC_MAX + 1];	/* degraded blocks */
	uint64_t needs_rebuild;	/* lost marks or DEAD holders */
	uint64_t doubled;	/* a supplier holds two of its fragments */
	uint64_t spreading;	/* of those, ones a supplier online holding
				 * none of the block could take: the
				 * rebuild spreads them (umount waits);
				 * while uploads are busy, one not lagging
				 * (owner/rebuild.c: block_missing) */
	int busy;		/* owner__dirty_busy */
	uint64_t index_blocks;	/* the index's own, not in total */
	uint64_t *frags_on;	/* per peer: fragments placed there */
};

/* The state of the supplier holding pk (DEAD when unknown). */
static int
peer_state(const struct redundancy *r, const unsigned char *pk, int *idx)
{
	for (int i = 0; i < r->npeers; i++)
		if (memcmp(r->peers[i].pk, pk, CR_PK_BYTES) == 0) {
			*idx = i;
			return r->peers[i].state;
		}
	*idx = -1;
	return NET_PEER_DEAD;
}

/* 1 when a supplier online and taking our data holds none of b's n
 * fragments. */
static int
spread_target_online(const struct redundancy *r, const struct store_block *b,
    int n)
{
	for (int j = 0; j < r->npeers; j++) {
		int holds = 0;
		if (r->peers[j].state != NET_PEER_ONLINE ||
		    r->peers[j].refusal[0] ||
		    (r->busy && r->peers[j].lagging))
			continue;
		for (int i = 0; i < n && !holds; i++)
			holds = memcmp(r->peers[j].pk, b->peer[i],
			    CR_PK_BYTES) == 0;
		if (!holds)
			return 1;
	}
	return 0;
}

static int
count_block(void *arg, const struct store_block *b)
{
	struct redundancy *r = arg;
	int n = b->k + b->m, up = 0, rebuild = 0, idx, st;

	if (n > CR_EC_MAX)
		n = CR_EC_MAX;
	/* The index's own blocks (owner/index.c) are not the user's data, but
	 * their fragments are on the suppliers' disks all the same. */
	if (b->pad[0] & STORE_BLOCK_INDEX) {
		for (int i = 0; i < n; i++)
			if (peer_state(r, b->peer[i], &idx), idx >= 0)
				r->frags_on[idx]++;
		r->index_blocks++;
		return 0;
	}
	/* Full, degraded and lost say what can be read now: a fragment
	 * counts when it is not marked lost and its supplier is online. */
	for (int i = 0; i < n; i++) {
		st = peer_state(r, b->peer[i], &idx);
		up += st == NET_PEER_ONLINE && !b->lost[i];
		rebuild |= st == NET_PEER_DEAD || b->lost[i];
		if (idx >= 0)
			r->frags_on[idx]++;
	}
	r->total++;
	r->needs_rebuild += rebuild;
	if (net_place_doubled(n, b->peer, ~0u, ~0u)) {
		r->doubled++;
		r->spreading += spread_target_online(r, b, n);
	}
	if (up == n) {
		r->full++;
	} else if (up >= b->k) {
		r->degraded++;
		r->by_missing[n - up]++;
	} else {
		r->lost++;
	}
	return 0;
}

/* "spare": online but holding nothing of ours (yet). */
static const char *
state_name(enum net_peer_state s, uint64_t placed)
{
	switch (s) {
	case NET_PEER_ONLINE:	return placed ? "online" : "spare";
	case NET_PEER_OFFLINE:	return "offline";
	case NET_PEER_SUSPECT:	return "suspect";
	case NET_PEER_DEAD:	return "dead";
	default:		return "connecting";
	}
}

struct status {
	struct net_peer_info *peers;
	struct redundancy r;
	struct owner_upload_stats ds;
	struct owner_maint_stats ms;
	uint64_t pending, journal_bytes, cache_bytes;
	uint64_t fetched_bytes;		/* fragment bytes reads fetched */
	int online;
};

static void
status_release(struct status *s)
{
	free(s->r.frags_on);
	free(s->peers);
}

static int
status_collect(struct owner *o, struct status *s)
{
	struct store_txn *t;
	int n, rc;

	memset(s, 0, sizeof *s);
	s->peers = calloc(CTL_MAX_PEERS, sizeof *s->peers);
	s->r.frags_on = calloc(CTL_MAX_PEERS, sizeof *s->r.frags_on);
	if (!s->peers || !s->r.frags_on)
		return -ENOMEM;
	n = net_peers(o->conf.net, s->peers, CTL_MAX_PEERS, 1);
	s->r.peers = s->peers;
	s->r.npeers = n < 0 ? 0 : n > CTL_MAX_PEERS ? CTL_MAX_PEERS : n;
	s->r.busy = owner__dirty_busy(o);
	for (int i = 0; i < s->r.npeers; i++)
		s->online += s->peers[i].state == NET_PEER_ONLINE;
	if ((rc = store_txn_begin(o->conf.store, 1, &t)) < 0)
		return rc;
	rc = store_block_iter(t, count_block, &s->r);
	if (rc == 0)
		rc = store_jrnl_count(t, &s->pending);
	store_txn_abort(t);
	if (rc < 0)
		return rc;
	owner__dirty_stats(o, &s->ds);
	owner__rebuild_stats(o, &s->ms);
	owner__audit_stats(o, &s->ms);
	owner__delete_stats(o, &s->ms);
	s->journal_bytes = store_jrnl_bytes(o->conf.store);
	s->cache_bytes = store_cache_bytes(o->conf.cache);
	s->fetched_bytes = net_fetched_bytes(o->conf.net);
	return 0;
}

/* Addresses and paths are ours, but a path may hold any byte. */
static void
sb_json_str(struct strbuf *sb, const char *str)
{
	strbuf_printf(sb, "\"");
	for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
		if (*p == '"' || *p == '\\')
			strbuf_printf(sb, "\\%c", *p);
		else if (*p < 0x20)
			strbuf_printf(sb, "\\u%04x", *p);
		else
			strbuf_printf(sb, "%c", *p);
	}
	strbuf_printf(sb, "\"");
}

/* What our audits proved of it (owner/audit.c's ledger): the balance the
 * supplier of this home grants its owner against (--accept deal). */
static void
status_balance_json(struct owner *o, const unsigned char *pk,
    struct strbuf *sb)
{
	struct store_ledger_ent e;
	int v = 0;

	if (owner__ledger_get(o, pk, &e, &v) < 0)
		memset(&e, 0, sizeof e);
	strbuf_printf(sb, ", \"balance\": {\"held\": %llu, \"proved\": %llu, "
	    "\"vetted\": %s, \"last_audit_ok\": %lld, "
	    "\"last_audit_failed\": %lld}", (unsigned long long)e.held,
	    (unsigned long long)e.proved, v ? "true" : "false",
	    (long long)e.last_ok, (long long)e.last_fail);
}

static void
status_json(struct owner *o, const char *mnt, const struct status *s,
    struct strbuf *sb)
{
	strbuf_printf(sb, "{\"pid\": %d, \"mountpoint\": ", (int)getpid());
	sb_json_str(sb, mnt ? mnt : "");
	strbuf_printf(sb, ", \"suppliers\": [");
	for (int i = 0; i < s->r.npeers; i++) {
		const struct net_peer_info *p = &s->peers[i];
		char id[2 * CR_PK_BYTES + 1];

		hex_encode(id, p->pk, CR_PK_BYTES);
		strbuf_printf(sb, "%s{\"id\": \"%s\", \"address\": ", i ? ", " : "", id);
		sb_json_str(sb, p->addr);
		strbuf_printf(sb, ", \"state\": \"%s\", \"rtt_ms\": %.3f, "
		    "\"score\": %.3f, \"audits_ok\": %llu, "
		    "\"audits_failed\": %llu, \"bad_fragments\": %llu, "
		    "\"late\": %llu, \"lags\": %llu, \"lagging\": %s, ",
		    state_name(p->state, s->r.frags_on[i]), p->rtt_ms, p->score,
		    (unsigned long long)p->audits_ok,
		    (unsigned long long)p->audits_failed,
		    (unsigned long long)p->bad_fragments,
		    (unsigned long long)p->late, (unsigned long long)p->lags,
		    p->lagging ? "true" : "false");
		strbuf_printf(sb, "\"fragments\": %llu, \"bytes\": %llu, "
		    "\"placed_fragments\": %llu, \"avail\": %llu, "
		    "\"quota\": %llu, \"last_error\": ",
		    (unsigned long long)p->fragments,
		    (unsigned long long)p->bytes,
		    (unsigned long long)s->r.frags_on[i],
		    (unsigned long long)p->avail, (unsigned long long)p->quota);
		sb_json_str(sb, p->last_error);
		strbuf_printf(sb, ", \"refusal\": ");
		sb_json_str(sb, p->refusal);
		strbuf_printf(sb, ", \"reach\": ");
		sb_json_str(sb, p->reach);
		status_balance_json(o, p->pk, sb);
		strbuf_printf(sb, "}");
	}
	strbuf_printf(sb, "], \"state\": \"%s\", ", s->online ? "online" : "offline");
	strbuf_printf(sb, "\"suppliers_known\": %d, \"finds_suppliers\": %s, ",
	    s->r.npeers, o->conf.finds_suppliers ? "true" : "false");
	strbuf_printf(sb, "\"blocks\": {\"total\": %llu, \"full\": %llu, "
	    "\"degraded\": %llu, \"lost\": %llu, \"pending\": %llu, "
	    "\"needs_rebuild\": %llu, \"doubled\": %llu, \"spreading\": %llu, "
	    "\"index\": %llu, "
	    "\"degraded_by_missing\": {",
	    (unsigned long long)s->r.total, (unsigned long long)s->r.full,
	    (unsigned long long)s->r.degraded, (unsigned long long)s->r.lost,
	    (unsigned long long)s->pending,
	    (unsigned long long)s->r.needs_rebuild,
	    (unsigned long long)s->r.doubled,
	    (unsigned long long)s->r.spreading,
	    (unsigned long long)s->r.index_blocks);
	for (int i = 1, first = 1; i <= CR_EC_MAX; i++)
		if (s->r.by_missing[i]) {
			strbuf_printf(sb, "%s\"%d\": %llu", first ? "" : ", ", i,
			    (unsigned long long)s->r.by_missing[i]);
			first = 0;
		}
	strbuf_printf(sb, "}}, ");
	strbuf_printf(sb, "\"rebuild\": {\"queued\": %llu, \"running\": %d, "
	    "\"blocks\": %llu, \"fragments\": %llu, \"bytes\": %llu, "
	    "\"errors\": %llu, \"rate\": %.0f, \"rate_max\": %llu}, ",
	    (unsigned long long)s->ms.rebuild_queued, s->ms.rebuilding,
	    (unsigned long long)s->ms.rebuilt_blocks,
	    (unsigned long long)s->ms.rebuilt_frags,
	    (unsigned long long)s->ms.rebuild_bytes,
	    (unsigned long long)s->ms.rebuild_errors, s->ms.rebuild_rate,
	    (unsigned long long)s->ms.rebuild_rate_max);
	strbuf_printf(sb, "\"audit\": {\"ok\": %llu, \"failed\": %llu, "
	    "\"errors\": %llu, \"interval_s\": %.3f}, ",
	    (unsigned long long)s->ms.audits_ok,
	    (unsigned long long)s->ms.audits_failed,
	    (unsigned long long)s->ms.audits_error,
	    s->ms.audit_interval_ms / 1000.0);
	{
		uint64_t blocks, audited;
		int running = owner__check_progress(o, &blocks, &audited);

		/* `peerfs check`'s progress, while it waits. */
		strbuf_printf(sb, "\"check\": {\"check_running\": %d, "
		    "\"check_blocks\": %llu, \"check_audited\": %llu}, ",
		    running, (unsigned long long)blocks,
		    (unsigned long long)audited);
	}
	strbuf_printf(sb, "\"deletes\": {\"pending\": %llu, \"bytes\": %llu, "
	    "\"done\": %llu}, ",
	    (unsigned long long)s->ms.delq_count,
	    (unsigned long long)s->ms.delq_bytes,
	    (unsigned long long)s->ms.deleted);
	strbuf_printf(sb, "\"uploading\": %llu, \"uploaded\": %llu, "
	    "\"deduplicated\": %llu, \"upload_errors\": %llu, ",
	    (unsigned long long)s->ds.uploading,
	    (unsigned long long)s->ds.uploaded_blocks,
	    (unsigned long long)s->ds.known_blocks,
	    (unsigned long long)s->ds.upload_errors);
	owner__index_status(o, sb, 0);
	strbuf_printf(sb, "\"journal_bytes\": %llu, \"cache_bytes\": %llu, "
	    "\"fetched_bytes\": %llu, \"block_size\": %u}\n",
	    (unsigned long long)s->journal_bytes,
	    (unsigned long long)s->cache_bytes,
	    (unsigned long long)s->fetched_bytes, o->conf.block_size);
}

/* One line naming the suppliers that refuse our data, and why; `peerfs
 * sync` and `umount` print it when they give up (cli/control.c looks for
 * its first words). */
static void
status_refusals(const struct status *s, struct strbuf *sb)
{
	int n = 0;

	for (int i = 0; i < s->r.npeers; i++) {
		const struct net_peer_info *p = &s->peers[i];

		if (!p->refusal[0])
			continue;
		strbuf_printf(sb, "%s%s (%s)", n++ ? ", " :
		    "\nrefused by suppliers: ", p->addr, p->refusal);
	}
	if (n)
		strbuf_printf(sb, "\n");
}

static void
status_text(struct owner *o, const char *mnt, const struct status *s,
    struct strbuf *sb)
{
	strbuf_printf(sb, "peerfs on %s (pid %d): %s, %d of %d suppliers online\n\n",
	    mnt ? mnt : "?", (int)getpid(),
	    s->online ? "online" : "OFFLINE", s->online, s->r.npeers);
	strbuf_printf(sb, "%-16s  %-21s  %-10s  %5s  %8s  %9s  %12s  %12s\n",
	    "supplier", "address", "state", "score", "rtt ms", "fragments",
	    "bytes", "balance");
	for (int i = 0; i < s->r.npeers; i++) {
		const struct net_peer_info *p = &s->peers[i];
		char id[2 * CR_PK_BYTES + 1];
		struct store_ledger_ent e;
		int v = 0;

		if (owner__ledger_get(o, p->pk, &e, &v) < 0)
			e.proved = 0;
		hex_encode(id, p->pk, CR_PK_BYTES);
		id[16] = '\0';
		strbuf_printf(sb, "%-16s  %-21s  %-10s  %5.2f  %8.2f  %9llu  %12llu"
		    "  %12llu%s%s%s%s%s\n", id, p->addr,
		    state_name(p->state, s->r.frags_on[i]), p->score, p->rtt_ms,
		    (unsigned long long)p->fragments,
		    (unsigned long long)p->bytes,
		    (unsigned long long)e.proved, v ? "" : "  (new)",
		    p->reach[0] ? "  " : "", p->reach,
		    p->last_error[0] ? "  " : "", p->last_error);
	}
	status_refusals(s, sb);
	strbuf_printf(sb, "\nblocks: %llu stored (%llu full, %llu degraded, %llu "
	    "lost), %llu pending upload, %llu uploading\n",
	    (unsigned long long)s->r.total, (unsigned long long)s->r.full,
	    (unsigned long long)s->r.degraded, (unsigned long long)s->r.lost,
	    (unsigned long long)s->pending, (unsigned long long)s->ds.uploading);
	if (s->r.doubled)
		strbuf_printf(sb, "doubled up: %llu blocks with two fragments "
		    "on one supplier (no spare took a slow one's), %llu "
		    "spreading out now; the others once a supplier holding "
		    "none of them is online (a slow one: once the uploads "
		    "are done)\n",
		    (unsigned long long)s->r.doubled,
		    (unsigned long long)s->r.spreading);
	if (s->r.degraded) {
		strbuf_printf(sb, "degraded by fragments missing:");
		for (int i = 1; i <= CR_EC_MAX; i++)
			if (s->r.by_missing[i])
				strbuf_printf(sb, " %d: %llu", i,
				    (unsigned long long)s->r.by_missing[i]);
		strbuf_printf(sb, "\n");
	}
	strbuf_printf(sb, "rebuild: %llu blocks queued, %d running; %llu blocks "
	    "(%llu fragments, %.1f MiB) rebuilt, %.1f MiB/s\n",
	    (unsigned long long)s->ms.rebuild_queued, s->ms.rebuilding,
	    (unsigned long long)s->ms.rebuilt_blocks,
	    (unsigned long long)s->ms.rebuilt_frags,
	    s->ms.rebuild_bytes / 1048576.0, s->ms.rebuild_rate / 1048576.0);
	strbuf_printf(sb, "audits: %llu good, %llu failed, %llu unanswered "
	    "(a full pass every %.0f s)\n",
	    (unsigned long long)s->ms.audits_ok,
	    (unsigned long long)s->ms.audits_failed,
	    (unsigned long long)s->ms.audits_error,
	    s->ms.audit_interval_ms / 1000.0);
	strbuf_printf(sb, "deletes: %llu fragments (%.1f MiB) awaiting deletion\n",
	    (unsigned long long)s->ms.delq_count,
	    s->ms.delq_bytes / 1048576.0);
	strbuf_printf(sb, "journal: %.1f MiB, cache: %.1f MiB, fetched for "
	    "reads: %.1f MiB\n", s->journal_bytes / 1048576.0,
	    s->cache_bytes / 1048576.0, s->fetched_bytes / 1048576.0);
	owner__index_status(o, sb, 1);
}

int
owner_status(struct owner *o, const char *mountpoint, int text, char **val,
    size_t *len)
{
	struct strbuf sb = { 0 };
	struct status s;
	int rc;

	if ((rc = status_collect(o, &s)) == 0) {
		if (text)
			status_text(o, mountpoint, &s, &sb);
		else
			status_json(o, mountpoint, &s, &sb);
	}
	status_release(&s);
	if (rc < 0) {
		strbuf_release(&sb);
		return rc;
	}
	return strbuf_take(&sb, val, len);
}
