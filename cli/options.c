/* cli/options.c - the command table, the option table, and what is made
 * of them: defaults, the parser, bounds checks and every command's --help
 * (see cli/options.h). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "crypto/crypto.h"

/* ---- the commands ------------------------------------------------------ */

const struct cli_command cli_commands[CLI_NCMDS] = {
	[CLI_INIT] = { "init", cmd_init,
	    "create an identity and master key in a home", NULL, NULL, 0, 0,
	    "Creates an Ed25519 identity and a 32-byte master secret in "
	    "DIR/key, sealed with a passphrase (Argon2id, then secretbox)." },
	[CLI_SUPPLIER] = { "supplier", cmd_supplier,
	    "lend disk space to owners (foreground)", NULL,
	    "[SUBCOMMAND]", 0, 2,
	    "Serves fragments to their owners until SIGTERM or SIGINT. "
	    "Fragments are stored under the store directory, acknowledged "
	    "only after fsync. Each owner is charged what its fragments and "
	    "heads cost the disk (whole blocks plus a record each). A home "
	    "without a key gets one, without a passphrase. SUBCOMMAND "
	    "`accounts` lists the owners (usage, quota, heads, last contact); `evict PK` "
	    "deletes everything owner PK stores here." },
	[CLI_MOUNT] = { "mount", cmd_mount, "mount the owner's folder", NULL,
	    "MOUNTPOINT", 1, 1,
	    "Mounts the owner's folder and returns once it serves (the daemon "
	    "stays in the background; its log is DIR/mount.log). Written "
	    "blocks wait in the local journal until untouched for "
	    "--write-back; full blocks, fsync, `peerfs sync` and umount send "
	    "them at once." },
	[CLI_SYNC] = { "sync", cmd_sync,
	    "wait until everything written is on suppliers", NULL,
	    "MOUNTPOINT", 1, 1,
	    "Returns when everything written to MOUNTPOINT so far is stored "
	    "on suppliers (the whole mount's fsync)." },
	[CLI_UMOUNT] = { "umount", cmd_umount,
	    "upload what is pending, then unmount", NULL, "MOUNTPOINT", 1, 1,
	    "Uploads everything still in the local journal (progress on "
	    "stderr: blocks and bytes left, rate), lets blocks doubled up "
	    "for a slow supplier spread out while one that can take them "
	    "is online (reported, not waited for, past --timeout or a "
	    "minute without progress), then unmounts and waits for the "
	    "mount daemon to exit." },
	[CLI_STATUS] = { "status", cmd_status,
	    "suppliers, blocks, pending uploads", NULL, "MOUNTPOINT", 1, 1,
	    "Per supplier: id, address, state, round-trip time, fragments and "
	    "bytes; totals: blocks (full, degraded, lost, pending upload), "
	    "journal and cache bytes." },
	[CLI_PIN] = { "pin", cmd_pin,
	    "keep a subtree's blocks local for offline use", NULL, "PATH", 1, 1,
	    "Keeps every block of the files under PATH (a file or a directory "
	    "in a peerfs mount) on this machine's disk, so they read with no "
	    "supplier reachable. Files written later under a pinned directory "
	    "are kept too. Returns once every block is local (progress on "
	    "stderr); exits 1 when "
	    "some could not be fetched (they are fetched when suppliers are "
	    "back)." },
	[CLI_UNPIN] = { "unpin", cmd_unpin, "stop keeping a subtree local",
	    NULL, "PATH", 1, 1,
	    "Removes the pin of PATH and of everything pinned below it, and "
	    "frees the local copies of blocks no pinned file uses." },
	[CLI_CHECK] = { "check", cmd_check,
	    "audit every fragment now, repair, report", NULL, "MOUNTPOINT",
	    1, 1,
	    "Challenges every fragment of the mount on its supplier now (a "
	    "proof of storage), queues what is bad, missing or on dead "
	    "suppliers for rebuild (progress on stderr), waits for the "
	    "rebuilds, and prints what it found and repaired. Exits 0 when every block is at full "
	    "redundancy, 1 otherwise." },
	[CLI_DEMO] = { "demo", cmd_demo,
	    "local swarm of 8 suppliers and a mount", NULL, "[DIR]", 0, 1,
	    "Starts 8 suppliers on loopback, supplier N on 127.0.N.1 (6 used "
	    "by the default 4+2 code, 2 spare), joined by a DHT the first one "
	    "starts, with their stores under DIR (default ./peerfs-demo), and "
	    "mounts DIR/mnt with only a bootstrap address: its suppliers are "
	    "hired through the DHT." },
	[CLI_KEY] = { "key", cmd_key, "key export: print the recovery code",
	    "export", NULL, 0, 0,
	    "Prints the recovery code of the home's identity on stdout: the "
	    "identity and the master secret, in checked groups a person can "
	    "copy down. With it alone, `peerfs restore` brings every file back "
	    "on a new machine." },
	[CLI_RESTORE] = { "restore", cmd_restore,
	    "new home from a recovery code and a supplier", NULL, NULL, 0, 0,
	    "Creates a new home (DIR must not exist or be empty) from a "
	    "recovery code (`peerfs key export`): "
	    "writes the key file, finds the newest index version that "
	    "verifies on the suppliers (or --version N, see `peerfs "
	    "versions`), fetches it (progress on stderr) and rebuilds the "
	    "metadata. Then `peerfs "
	    "mount --home DIR MOUNTPOINT` shows the tree. One supplier address "
	    "is enough: the others are learnt from the index; or, with "
	    "--bootstrap instead, any node of the network: the suppliers "
	    "holding the index are found in its DHT under a key only the "
	    "recovery code computes." },
	[CLI_VERSIONS] = { "versions", cmd_versions,
	    "index versions the suppliers hold", NULL, "MOUNTPOINT", 1, 1,
	    "Lists the versions of the index (the metadata) that the "
	    "suppliers hold, newest first: sequence number, time, index size. "
	    "`peerfs restore --version N` restores one of them into a new "
	    "home." },
	[CLI_ID] = { "id", cmd_id, "print this node's id (its public key)",
	    NULL, NULL, 0, 0,
	    "Prints this node's id, its Ed25519 public key in hex: what the "
	    "network knows it by." },
	[CLI_CONFIG] = { "config", cmd_config,
	    "the effective configuration and where each value is from", NULL,
	    "[mount|supplier [OPTIONS]]", 0, 0,
	    "Prints the options of `mount` and `supplier` as they would "
	    "apply, each with where its value comes from: the default, "
	    "DIR/config (file:line) or the command line. After `mount` or "
	    "`supplier`, that command's options (-o included) are applied as "
	    "the command would. DIR/config is an INI file with sections "
	    "[mount], [supplier] and [network] (listen, bootstrap, dht, peer: "
	    "for whichever command takes them); keys are the long option "
	    "names, with - or _ (cache_size = 64M); a flag is true or false; "
	    "a repeatable option takes several values separated by commas, or "
	    "the key repeated. The command line overrides the file, [mount] "
	    "and [supplier] override [network]." },
	[CLI_SIM] = { "sim", cmd_sim,
	    "simulate durability over thousands of peers", NULL, NULL, 0, 0,
	    "Runs the durability simulator (docs/durability.md): 10,000 "
	    "simulated suppliers with daily sessions, departures, disk losses "
	    "and outages, and a few hundred owners hiring, firing and "
	    "rebuilding with peerfs's own policy code, over a simulated year, "
	    "for every scenario of the grid (erasure code, availability, "
	    "--dead-after, outages, the owner's hours). Prints a table: "
	    "the probability of losing a block in a year (with its 95% "
	    "confidence interval, and the Markov model's figure), the time "
	    "degraded, repair traffic per stored TB and month, the time to "
	    "full redundancy after a supplier dies. The same seed gives the "
	    "same table." },
};

/* ---- the options --------------------------------------------------------
 * Offsets are checked against the field's type at compile time. */

#define FIELD(f, type) (offsetof(struct cli_conf, f) + 0 * sizeof(char[ \
	__builtin_types_compatible_p(__typeof__(((struct cli_conf *)0)->f), \
	type) ? 1 : -1]))
#define SIZE(n, f, cmds, def, lo, hi, fl, help) \
	{ n, 0, CLI_SIZE, cmds, FIELD(f, uint64_t), def, lo, hi, NULL, fl, \
	  help }
#define DUR(n, f, cmds, def, lo, hi, fl, help) \
	{ n, 0, CLI_DURATION, cmds, FIELD(f, uint64_t), def, lo, hi, NULL, fl, \
	  help }
#define COUNT(n, f, cmds, def, lo, hi, fl, help) \
	{ n, 0, CLI_COUNT, cmds, FIELD(f, uint64_t), def, lo, hi, NULL, fl, \
	  help }
#define EC(n, f, cmds, def, help) \
	{ n, 0, CLI_EC, cmds, FIELD(f, struct cli_ec), def, NULL, NULL, NULL, \
	  0, help }
#define STR(n, s, f, cmds, arg, fl, help) \
	{ n, s, CLI_STRING, cmds, FIELD(f, const char *), NULL, NULL, NULL, \
	  arg, fl, help }
#define FLAG(n, s, f, cmds, fl, help) \
	{ n, s, CLI_FLAG, cmds, FIELD(f, int), NULL, NULL, NULL, NULL, fl, \
	  help }
#define LIST(n, f, cmds, hi, arg, fl, help) \
	{ n, 0, CLI_LIST, cmds, FIELD(f, struct cli_list), NULL, NULL, hi, \
	  arg, fl, help }

#define INIT		CLI_CMD(INIT)
#define SUPPLIER	CLI_CMD(SUPPLIER)
#define MOUNT		CLI_CMD(MOUNT)
#define UMOUNT		CLI_CMD(UMOUNT)
#define STATUS		CLI_CMD(STATUS)
#define DEMO		CLI_CMD(DEMO)
#define KEY		CLI_CMD(KEY)
#define RESTORE		CLI_CMD(RESTORE)
#define ID		CLI_CMD(ID)
#define CONFIG		CLI_CMD(CONFIG)
#define SIM		CLI_CMD(SIM)

const struct cli_opt cli_opts[] = {
	STR("home", 0, home, INIT | SUPPLIER | MOUNT | KEY | RESTORE | ID | CONFIG,
	    "DIR", CLI_ARGV_ONLY,
	    "home directory (default $PEERFS_HOME, else ~/.peerfs)"),
	FLAG("no-passphrase", 0, no_passphrase, INIT | RESTORE, 0,
	    "do not protect the key file with a passphrase"),
	STR("passphrase-file", 0, passphrase_file, INIT | MOUNT | KEY | RESTORE,
	    "F", 0, "the key file's passphrase is the first line of F (else "
	    "$PEERFS_PASSPHRASE, else a prompt)"),

	/* supplier */
	STR("listen", 0, listen, SUPPLIER, "HOST:PORT", CLI_HOSTPORT | CLI_NETWORK,
	    "address to listen on (required to serve)"),
	STR("store", 0, store, SUPPLIER, "DIR", 0,
	    "where fragments are kept (required to serve; remembered in the "
	    "home for accounts and evict)"),
	SIZE("quota", quota, SUPPLIER, NULL, NULL, "4096T", 0,
	    "most bytes to lend, every owner together (when not given: a "
	    "tenth of the free space when the store was created)"),
	STR("accept", 0, accept, SUPPLIER, "deal|open|friends", 0,
	    "deal: a stranger may store what its node holds for this home "
	    "and our audits proved, plus --credit, within --stranger-quota; "
	    "open: anyone, strangers within --stranger-quota; friends: only "
	    "the --friend keys (default deal)"),
	SIZE("credit", credit, SUPPLIER, "1G", NULL, "4096T", 0,
	    "--accept deal: what a stranger may store beyond what it earned"),
	DUR("evict-grace", evict_grace_ms, SUPPLIER, "7d", "1s", "36500d", 0,
	    "--accept deal: how long a stranger may hold more than it earned "
	    "plus --credit, as this home's fresh audits show it, before its "
	    "data here is evicted (never while this home's mount rebuilds)"),
	LIST("friend", friends, SUPPLIER, "256", "PK", 0,
	    "an owner's key (64 hex) that may use up to the whole quota; "
	    "repeatable"),
	STR("friends-file", 0, friends_file, SUPPLIER, "F", 0,
	    "friends' keys, one a line (# comments)"),
	SIZE("stranger-quota", stranger_quota, SUPPLIER, "256M", "4K", "4096T",
	    0, "most any other owner may store; strangers together get at "
	    "most half of the quota when there are friends"),
	COUNT("max-fragments", max_fragments, SUPPLIER, NULL, "1", NULL, 0,
	    "most fragments per owner (when not given: its quota / 16K, at "
	    "least 4096)"),
	COUNT("max-sessions", max_sessions, SUPPLIER, "1024", "1", "1000000", 0,
	    "sessions in all (fewer when the file descriptor limit is "
	    "lower)"),
	COUNT("max-per-address", max_per_address, SUPPLIER, "32", "1",
	    "1000000", 0, "sessions from one address (IPv6: one /64)"),
	COUNT("max-per-key", max_per_key, SUPPLIER, "8", "1", "1000000", 0,
	    "sessions of one owner key"),
	SIZE("max-inflight", max_inflight, SUPPLIER, "128M", "1M", "64G", 0,
	    "bytes held for frames, requests and replies of all sessions"),
	DUR("handshake-timeout", handshake_timeout_ms, SUPPLIER, "10s", "1ms",
	    "1d", 0, "to complete the handshake"),
	DUR("frame-timeout", frame_timeout_ms, SUPPLIER, "30s", "1ms", "1d", 0,
	    "for a frame begun to make progress, and for replies to be read"),
	DUR("idle-timeout", idle_timeout_ms, SUPPLIER, "5m", "1ms", "1d", 0,
	    "an authenticated session with no traffic is closed (owners ping "
	    "every --ping-interval); in a network, reachability is then "
	    "checked again (the way to us may have changed)"),
	FLAG("daemon", 0, daemon, SUPPLIER, 0,
	    "detach; pid in DIR/supplier.pid, log in DIR/supplier.log"),
	FLAG("test-lie", 0, test_lie, SUPPLIER, CLI_HIDDEN,
	    "serve forged fragments and audit answers"),
	FLAG("test-relayed", 0, test_relayed, SUPPLIER, CLI_HIDDEN,
	    "skip the reachability checks: reachable only through relays "
	    "(one machine: the benchmark)"),
	/* the network (cli/network.c) */
	LIST("bootstrap", bootstrap, SUPPLIER | MOUNT | RESTORE, "16",
	    "HOST:PORT", CLI_HOSTPORT | CLI_NETWORK, "a node of the network to join "
	    "(remembered in DIR/bootstrap); mount: without --peer, suppliers "
	    "are found and hired there; restore: without --peer, the "
	    "suppliers holding this owner's index are found there"),
	FLAG("dht", 0, dht, SUPPLIER, CLI_NETWORK,
	    "run the network's DHT node without a bootstrap: the first node "
	    "of a new network"),
	FLAG("leave", 0, leave, SUPPLIER, CLI_ARGV_ONLY,
	    "tell the running supplier of this home to leave the network: "
	    "it says so in its record, owners move their fragments off it, "
	    "and it exits once it holds none (DIR/leaving)"),
	DUR("leave-within", leave_within_ms, SUPPLIER, "1d", "1s", "24d", 0,
	    "a leaving supplier exits after this even if owners left "
	    "fragments on it (it logs how many)"),
	DUR("reach-every", reach_every_ms, SUPPLIER, "5m", "10s", "1d", 0,
	    "in a network, check this often that others can reach us "
	    "(a dial-back by another supplier, else a NAT-PMP or UPnP port "
	    "mapping on the home router); DIR/reach says the verdict"),
	FLAG("lan", 0, lan, SUPPLIER | MOUNT, CLI_NETWORK,
	    "a network of machines on one private LAN (10/8, 172.16/12, "
	    "192.168/16, 100.64/10): a supplier announces its private "
	    "listen address, and a mount hires and places fragments on "
	    "private addresses without the one-per-address-block rule, as on "
	    "loopback (the machines of one LAN share a block)"),
	FLAG("relay", 0, relay, SUPPLIER, CLI_NETWORK,
	    "offer relaying (a public node): nodes behind home routers that "
	    "nobody can dial hold a reservation here, and owners reach them "
	    "through it; the relay pipes bytes it cannot read (the session "
	    "inside is encrypted end to end)"),
	COUNT("relay-reservations", relay_reservations, SUPPLIER, "64", "1",
	    "100000", 0, "--relay: nodes holding a reservation at a time"),
	COUNT("relay-circuits", relay_circuits, SUPPLIER, "16", "1", "10000",
	    0, "--relay: circuits open to one reserved node at a time"),
	COUNT("relay-per-address", relay_per_address, SUPPLIER, "32", "1",
	    "100000", 0, "--relay: circuits asked from one address at a time"),
	SIZE("relay-bytes", relay_bytes, SUPPLIER, "64G", "4K", "4096T", 0,
	    "--relay: bytes one circuit may carry (both ways); then it is "
	    "closed"),
	SIZE("relay-rate", relay_rate, SUPPLIER, "64M", "4K", "64G", 0,
	    "--relay: bytes per second one circuit may carry"),
	DUR("relay-keepalive", relay_keepalive_ms, SUPPLIER, "20s", "1s", "10m",
	    0, "--relay: how often nodes renew their reservation; below the "
	    "idle timeout of the home routers they sit behind, which forget "
	    "a quiet connection"),

	/* mount (and restore, which reads what a mount stored) */
	LIST("peer", peers, MOUNT | RESTORE, "256", "HOST:PORT",
	    CLI_HOSTPORT | CLI_NETWORK,
	    "a supplier; mount remembers it in DIR/peers for next time"),
	EC("ec", ec, MOUNT, "4+2", "erasure code: K data and M parity "
	    "fragments per block, fixed at the first mount of a home (restore "
	    "reads it from the index's heads)"),
	SIZE("block-size", block_size, MOUNT, "4M", "4K", "16M", CLI_PAGES,
	    "block size, fixed at the first mount of a home"),
	SIZE("cache-size", cache_size, MOUNT, "32M", "0", NULL, 0,
	    "read cache in memory; 0: none"),
	DUR("timeout", timeout_ms, MOUNT | RESTORE, "10s", "1ms", "24d", 0,
	    "network request timeout"),
	DUR("write-back", write_back_ms, MOUNT, "5s", "0", "24h", 0,
	    "upload a block once untouched this long, its file closed or not; "
	    "0: at close"),
	DUR("lease", lease_ms, MOUNT, "5m", "1s", "1d", 0,
	    "the write lease this node holds while mounted, renewed every "
	    "third of it (a renewal pushes no version out); a crashed node "
	    "blocks writes elsewhere this long at most"),
	FLAG("take-over", 0, take_over, MOUNT, 0,
	    "when another node holds the lease: ask it to hand over (it "
	    "publishes its changes first), or take the lease once it runs out; "
	    "read-only until then"),
	DUR("ping-interval", ping_ms, MOUNT | RESTORE, "30s", "1ms", "24d", 0,
	    "ping every supplier this often"),
	DUR("suspect-after", suspect_ms, MOUNT | RESTORE, "2m", "1ms", "24d", 0,
	    "a supplier silent this long is suspect: no new placements"),
	/* 3d, not 30m: home machines sleep longer than 30 minutes every
	 * day (docs/durability.md: at 80% availability 30m keeps blocks
	 * degraded 96-98% of the time and moves 75-149 TB per stored TB a
	 * month; 3d 5-6% and 8-19, nothing lost); --fire-below notices real
	 * departures within a day. */
	DUR("dead-after", dead_ms, MOUNT | RESTORE, "3d", "1ms", "24d", 0,
	    "silent this long: dead, its fragments are rebuilt elsewhere; the "
	    "gap to --suspect-after keeps a reboot from starting a rebuild"),
	COUNT("fire-below", fire_below, MOUNT, "50", "0", "100", 0,
	    "a supplier hired through the network that was online less than "
	    "this percentage of --availability-window is fired and replaced "
	    "(one at a time); 0: never"),
	DUR("availability-window", avail_window_ms, MOUNT, "1d", "1s", "365d",
	    0, "the window --fire-below looks at"),
	DUR("audit-interval", audit_ms, MOUNT, "7d", "1ms", "36500d", 0,
	    "one proof-of-storage pass over every fragment"),
	DUR("vet-after", vet_after_ms, MOUNT, "3d", NULL, "36500d", 0,
	    "a supplier whose audits pass this long is vetted; until then it "
	    "holds at most one fragment of a block (0: no vetting)"),
	SIZE("rebuild-rate", rebuild_rate, MOUNT, "50M", "4K", NULL, 0,
	    "bytes per second rebuilds may move"),
	COUNT("rebuild-jobs", rebuild_jobs, MOUNT, "2", "1", "16", 0,
	    "blocks rebuilt at once"),
	COUNT("keep-versions", keep_versions, MOUNT, "10", "0", "100", 0,
	    "index versions whose data stays restorable with `peerfs restore "
	    "--version`; 0 gives freed space back at once"),
	DUR("sweep-interval", sweep_ms, MOUNT, "5m", "1ms", "36500d", 0,
	    "compare suppliers' fragments with the metadata this often and "
	    "delete what nothing references in two sweeps running"),
	COUNT("upload-jobs", upload_jobs, MOUNT, "2", "1", "16", 0,
	    "blocks sealed and uploaded at once"),
	DUR("sync-timeout", sync_timeout_ms, MOUNT, "2m", "1ms", "24d", 0,
	    "fsync, `peerfs sync` and `peerfs check` give up after this long"),
	DUR("reconnect", reconnect_ms, MOUNT | RESTORE, "1s", "1ms", "24d", 0,
	    "retry a closed supplier session this often"),
	COUNT("fuse-threads", fuse_threads, MOUNT, "16", "1", "1024", 0,
	    "idle FUSE worker threads kept at most"),
	SIZE("map-size", map_size, MOUNT | RESTORE, "1G", "64K", NULL,
	    CLI_HIDDEN, "LMDB map: a tiny one shows that a full map gives "
	    "ENOSPC, not corruption"),
	STR("status-page", 0, status_page, MOUNT, "ADDR:PORT", CLI_HOSTPORT,
	    "serve a live status page on this loopback address (port 0: any "
	    "free one); its URL holds a random token, printed and logged"),
	FLAG(NULL, 'f', foreground, MOUNT, 0,
	    "stay in the foreground, log to stderr"),
	STR(NULL, 'o', fuse_opts, MOUNT, "OPTS", CLI_MOUNTOPTS,
	    "options, comma-separated: any long option above as NAME=VALUE "
	    "(cache_size=64M; a flag as NAME), FUSE's (allow_other, ro, ...); "
	    "mount(8)'s _netdev, noauto, user, x-* are ignored; repeatable"),

	/* restore */
	STR("code-file", 0, code_file, RESTORE, "F", CLI_REQUIRED,
	    "the recovery code; '-' reads standard input (a prompt on a "
	    "terminal)"),
	COUNT("version", version, RESTORE, NULL, "1", NULL, 0,
	    "restore that version (`peerfs versions`) instead of the newest"),

	/* umount, status, demo */
	DUR("timeout", umount_timeout_ms, UMOUNT, "10m", "0", NULL, 0,
	    "give up uploading after this long: print what is still pending, "
	    "keep it in the local journal, leave the folder mounted, exit 1; "
	    "0: never"),
	FLAG("force", 0, force, UMOUNT, 0,
	    "unmount at once; pending data stays in the journal and is "
	    "uploaded by the next mount"),
	FLAG("json", 0, json, STATUS, 0, "the same as JSON, for scripts"),
	FLAG("stop", 0, stop, DEMO, 0,
	    "unmount (uploading what is pending) and stop the suppliers"),

	FLAG("debug", 0, debug, SUPPLIER | MOUNT | RESTORE, 0, "verbose log"),

	/* sim */
	STR("config", 0, sim_config, SIM, "FILE", CLI_ARGV_ONLY,
	    "scenarios: key = value lines (docs/durability.md); a list "
	    "(ec = 4+2, 6+3) makes an axis of the grid"),
	COUNT("seed", sim_seed, SIM, "1", "1", NULL, CLI_ARGV_ONLY,
	    "the seed every scenario's own is derived from"),
	COUNT("jobs", sim_jobs, SIM, "2", "1", "64", CLI_ARGV_ONLY,
	    "scenarios run at once, one process each"),
	FLAG("quick", 0, sim_quick, SIM, CLI_ARGV_ONLY,
	    "a smaller world (2,000 suppliers, 40 owners, a quarter year)"),
	STR("out", 0, sim_out, SIM, "DIR", CLI_ARGV_ONLY,
	    "also write DIR/durability.tsv, the numbers the plots are made of"),
};
const int cli_nopts = sizeof cli_opts / sizeof cli_opts[0];
_Static_assert(sizeof cli_opts / sizeof cli_opts[0] <= CLI_OPTS_MAX,
    "cli_conf.given has room for CLI_OPTS_MAX options");

/* ---- values ------------------------------------------------------------ */

int
cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;
	uint64_t mult = 1;

	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || v < 0)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 'K': mult = 1ull << 10; end++; break;
	case 'M': mult = 1ull << 20; end++; break;
	case 'G': mult = 1ull << 30; end++; break;
	case 'T': mult = 1ull << 40; end++; break;
	}
	if (mult > 1 && *end == 'i')
		end++;
	if ((*end == 'B' || *end == 'b') && end[1] == '\0')
		end++;
	if (*end != '\0' || v * mult > 9e18)
		return -EINVAL;
	*out = (uint64_t)llround(v * mult);
	return 0;
}

int
cli_parse_duration(const char *s, uint64_t *ms)
{
	char *end;
	double v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	v = strtod(s, &end);
	if (!strcmp(end, "ms"))
		;
	else if (!strcmp(end, "s") || !*end)
		v *= 1e3;
	else if (!strcmp(end, "m"))
		v *= 60e3;
	else if (!strcmp(end, "h"))
		v *= 3600e3;
	else if (!strcmp(end, "d"))
		v *= 86400e3;
	else
		return -EINVAL;
	if (!(v < 9e18))
		return -EINVAL;
	*ms = (uint64_t)v;
	return 0;
}

int
cli_parse_count(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int
cli_parse_ec(const char *s, int *k, int *m)
{
	char *end;
	long a, b;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	a = strtol(s, &end, 10);
	if (*end != '+' || !isdigit((unsigned char)end[1]))
		return -EINVAL;
	b = strtol(end + 1, &end, 10);
	if (*end || a < 1 || b < 1 || a + b > CR_EC_MAX)
		return -EINVAL;
	*k = (int)a;
	*m = (int)b;
	return 0;
}

/* A number of a numeric kind (bounds use it too). */
static int
parse_number(enum cli_kind kind, const char *s, uint64_t *out)
{
	switch (kind) {
	case CLI_SIZE:		return cli_parse_size(s, out);
	case CLI_DURATION:	return cli_parse_duration(s, out);
	default:		return cli_parse_count(s, out);
	}
}

/* The table's own texts (defaults, bounds) always parse: a unit test
 * reads every one. */
static uint64_t
bound(const struct cli_opt *op, const char *text, uint64_t none)
{
	uint64_t v;

	if (!text)
		return none;
	if (op->kind == CLI_LIST ? cli_parse_count(text, &v) :
	    parse_number(op->kind, text, &v)) {
		fprintf(stderr, "peerfs: option table: --%s: bad bound '%s'\n",
		    op->name, text);
		abort();
	}
	return v;
}

int
cli_opt_set(const struct cli_opt *op, const char *text, struct cli_conf *c)
{
	void *dst = (char *)c + op->off;
	uint64_t v;

	switch (op->kind) {
	case CLI_SIZE:
	case CLI_DURATION:
	case CLI_COUNT:
		if (parse_number(op->kind, text, &v) < 0)
			return -EINVAL;
		if ((op->flags & CLI_PAGES) && (v & 4095))
			return -ERANGE;
		if (v < bound(op, op->min, 0) || v > bound(op, op->max,
		    UINT64_MAX))
			return -ERANGE;
		*(uint64_t *)dst = v;
		return 0;
	case CLI_EC: {
		struct cli_ec *ec = dst;

		return cli_parse_ec(text, &ec->k, &ec->m);
	}
	case CLI_FLAG: {
		static const char *const on[] = { "", "true", "yes", "on", "1" },
		    *const off[] = { "false", "no", "off", "0" };

		for (size_t i = 0; i < sizeof on / sizeof on[0]; i++)
			if (!strcasecmp(text, on[i]))
				return *(int *)dst = 1, 0;
		for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
			if (!strcasecmp(text, off[i]))
				return *(int *)dst = 0, 0;
		return -EINVAL;
	}
	case CLI_STRING:
	case CLI_LIST:
		if ((op->flags & CLI_HOSTPORT) &&
		    (!strchr(text, ':') || text[0] == ':'))
			return -EINVAL;
		if (op->kind == CLI_STRING) {
			*(const char **)dst = text;
			return 0;
		}
		struct cli_list *l = dst;

		if (l->n >= CLI_LIST_MAX ||
		    (uint64_t)l->n >= bound(op, op->max, CLI_LIST_MAX))
			return -ERANGE;
		l->v[l->n++] = text;
		return 0;
	}
	return -EINVAL;
}

const char *
cli_opt_metavar(const struct cli_opt *op)
{
	if (op->arg)
		return op->arg;
	switch (op->kind) {
	case CLI_SIZE:		return "SIZE";
	case CLI_DURATION:	return "D";
	case CLI_COUNT:		return "N";
	case CLI_EC:		return "K+M";
	default:		return "VALUE";
	}
}

/* "--block-size" or "-f", for messages. */
static const char *
display(const struct cli_opt *op, char *buf, size_t size)
{
	if (op->name)
		snprintf(buf, size, "--%s", op->name);
	else
		snprintf(buf, size, "-%c", op->short_name);
	return buf;
}

void
cli_opt_accepts(const struct cli_opt *op, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
#define PUT(...) do { if (n < size) \
	n += (size_t)snprintf(buf + n, size - n, __VA_ARGS__); } while (0)
	if (op->kind == CLI_LIST) {
		PUT("repeatable");
		if (op->max)
			PUT(", at most %s times", op->max);
	} else if (op->min && op->max) {
		PUT("%s to %s", op->min, op->max);
	} else if (op->min && bound(op, op->min, 0) > 0) {
		PUT("at least %s", op->min);
	} else if (op->max) {
		PUT("at most %s", op->max);
	} else if (op->kind == CLI_EC) {
		PUT("each at least 1, K+M at most %d", CR_EC_MAX);
	}
	if (op->flags & CLI_PAGES)
		PUT("%sa multiple of 4K", n ? "; " : "");
#undef PUT
}

/* What a value of this kind looks like, for errors. */
static const char *
example(enum cli_kind kind)
{
	switch (kind) {
	case CLI_SIZE:		return "a size: 4096, 64K, 4M, 1G";
	case CLI_DURATION:	return "a duration: 500ms, 30s, 2m, 1h, 7d";
	case CLI_COUNT:		return "a whole number";
	case CLI_EC:		return "K+M, e.g. 4+2";
	case CLI_FLAG:		return "true or false";
	default:		return "HOST:PORT";
	}
}

/* ---- the parser -------------------------------------------------------- */

const struct cli_opt *
cli_opt_find(enum cli_cmd cmd, const char *name)
{
	for (int i = 0; i < cli_nopts; i++) {
		const struct cli_opt *op = &cli_opts[i];

		if (!(op->cmds & (1u << cmd)))
			continue;
		if (op->name ? strcmp(op->name, name) == 0 :
		    name[0] == op->short_name && name[1] == '\0')
			return op;
	}
	return NULL;
}

int
cli_given(const struct cli_conf *c, const char *name)
{
	const struct cli_opt *op = cli_opt_find(c->cmd, name);

	return op != NULL && c->given[op - cli_opts];
}

static void
defaults(enum cli_cmd cmd, struct cli_conf *c)
{
	memset(c, 0, sizeof *c);
	c->cmd = cmd;
	for (int i = 0; i < cli_nopts; i++) {
		const struct cli_opt *op = &cli_opts[i];

		if (!(op->cmds & (1u << cmd)) || !op->def)
			continue;
		if (cli_opt_set(op, op->def, c) < 0) {
			fprintf(stderr, "peerfs: option table: --%s: bad "
			    "default '%s'\n", op->name, op->def);
			abort();
		}
	}
}

void
cli_value_error(const struct cli_opt *op, const char *name, const char *text,
    int err, char *buf, size_t size)
{
	char ok[128];

	cli_opt_accepts(op, ok, sizeof ok);
	if (err == -ERANGE && op->kind == CLI_LIST)
		snprintf(buf, size, "too many %s (%s)", name, ok);
	else if (err == -ERANGE)
		snprintf(buf, size, "%s %s is out of bounds (%s)", name, text,
		    ok);
	else if (ok[0] && op->kind != CLI_STRING && op->kind != CLI_LIST)
		snprintf(buf, size, "bad %s '%s' (%s; %s)", name, text,
		    example(op->kind), ok);
	else
		snprintf(buf, size, "bad %s '%s' (%s)", name, text,
		    example(op->kind));
}

static int
bad_value(enum cli_cmd cmd, const struct cli_opt *op, const char *text,
    int err)
{
	char name[64], msg[512];

	display(op, name, sizeof name);
	cli_value_error(op, name, text, err, msg, sizeof msg);
	return cli_bad_usage(cli_commands[cmd].name, "%s", msg);
}

/* A size or a duration the way the table writes them: the largest unit
 * that divides it. */
static void
format_number(enum cli_kind kind, uint64_t v, char *buf, size_t size)
{
	static const struct { const char *unit; uint64_t n; } sizes[] = {
		{ "T", 1ull << 40 }, { "G", 1ull << 30 }, { "M", 1ull << 20 },
		{ "K", 1ull << 10 },
	}, durations[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 },
		{ "s", 1000 },
	};
	const __typeof__(sizes[0]) *u = kind == CLI_SIZE ? sizes : durations;

	if (kind != CLI_COUNT && v != 0)
		for (int i = 0; i < 4; i++)
			if (v % u[i].n == 0) {
				snprintf(buf, size, "%llu%s",
				    (unsigned long long)(v / u[i].n), u[i].unit);
				return;
			}
	snprintf(buf, size, "%llu%s", (unsigned long long)v,
	    kind == CLI_DURATION && v ? "ms" : "");
}

void
cli_opt_format(const struct cli_opt *op, const struct cli_conf *c, char *buf,
    size_t size)
{
	const void *src = (const char *)c + op->off;

	buf[0] = '\0';
	switch (op->kind) {
	case CLI_SIZE:
	case CLI_DURATION:
	case CLI_COUNT:
		format_number(op->kind, *(const uint64_t *)src, buf, size);
		return;
	case CLI_EC: {
		const struct cli_ec *ec = src;

		snprintf(buf, size, "%d+%d", ec->k, ec->m);
		return;
	}
	case CLI_FLAG:
		snprintf(buf, size, "%s", *(const int *)src ? "true" : "false");
		return;
	case CLI_STRING:
		snprintf(buf, size, "%s", *(const char *const *)src ?
		    *(const char *const *)src : "");
		return;
	case CLI_LIST: {
		const struct cli_list *l = src;
		size_t n = 0;

		for (int i = 0; i < l->n && n < size; i++)
			n += (size_t)snprintf(buf + n, size - n, "%s%s",
			    i ? "," : "", l->v[i]);
		return;
	}
	}
}

/* The operands' name without brackets: "[DIR]" -> "DIR". */
static void
operand_name(const char *operands, char *buf, size_t size)
{
	size_t n = 0;

	for (const char *p = operands; *p && n + 1 < size; p++)
		if (*p != '[' && *p != ']' && *p != '.')
			buf[n++] = *p;
	buf[n] = '\0';
}

static int
check_operands(enum cli_cmd cmd, struct cli_conf *c)
{
	const struct cli_command *k = &cli_commands[cmd];
	char what[64];

	operand_name(k->operands ? k->operands : "", what, sizeof what);
	if (c->nargs < k->min_args)
		return cli_bad_usage(k->name, "%s missing", what);
	if (c->nargs <= k->max_args)
		return CLI_RUN;
	if (k->max_args == 0)
		return cli_bad_usage(k->name, "unexpected argument '%s'",
		    c->args[0]);
	if (k->max_args == 1)
		return cli_bad_usage(k->name, k->min_args == 1 ? "exactly one "
		    "%s expected" : "at most one %s", what);
	return cli_bad_usage(k->name, "at most %d %s", k->max_args, what);
}

int
cli_parse_opts(enum cli_cmd cmd, int argc, char **argv, struct cli_conf *c)
{
	struct option longs[CLI_OPTS_MAX + 2];
	char shorts[2 * CLI_OPTS_MAX + 4] = ":h";
	const char *name = cli_commands[cmd].name;
	int nl = 0, ns = 2, ch;

	defaults(cmd, c);
	for (int i = 0; i < cli_nopts; i++) {
		const struct cli_opt *op = &cli_opts[i];
		int has_arg = op->kind == CLI_FLAG ? no_argument :
		    required_argument;

		if (!(op->cmds & (1u << cmd)))
			continue;
		if (op->name)
			longs[nl++] = (struct option){ op->name, has_arg, NULL,
			    256 + i };
		if (op->short_name) {
			shorts[ns++] = op->short_name;
			if (has_arg == required_argument)
				shorts[ns++] = ':';
		}
	}
	longs[nl++] = (struct option){ "help", no_argument, NULL, 'h' };
	longs[nl] = (struct option){ NULL, 0, NULL, 0 };
	shorts[ns] = '\0';

	opterr = 0;
	optind = 0;	/* GNU: start afresh (a process may parse twice) */
	while ((ch = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct cli_opt *op = NULL;
		int rc;

		if (ch == 'h') {
			cli_help(cmd, stdout);
			return 0;
		}
		if (ch == ':')
			return cli_bad_usage(name, "%s needs a value",
			    argv[optind - 1]);
		if (ch >= 256 && ch < 256 + cli_nopts) {
			op = &cli_opts[ch - 256];
		} else if (ch != '?') {
			char s[2] = { (char)ch, '\0' };

			op = cli_opt_find(cmd, s);
		}
		if (!op)
			return cli_bad_usage(name, "unknown option %s",
			    argv[optind - 1]);
		if (op->flags & CLI_MOUNTOPTS) {
			if ((rc = cli_mount_o(c, optarg)) != CLI_RUN)
				return rc;
			continue;
		}
		if ((rc = cli_opt_set(op, op->kind == CLI_FLAG ? "" : optarg,
		    c)) < 0)
			return bad_value(cmd, op, optarg, rc);
		c->given[op - cli_opts] = CLI_FROM_ARGV;
	}
	c->args = argv + optind;
	c->nargs = argc - optind;
	/* The config file fills what the command line left out. */
	if (cmd == CLI_MOUNT || cmd == CLI_SUPPLIER)
		return cli_config_apply(c);
	return CLI_RUN;
}

int
cli_parse(enum cli_cmd cmd, int argc, char **argv, struct cli_conf *c)
{
	const char *name = cli_commands[cmd].name;
	int rc;

	if ((rc = cli_parse_opts(cmd, argc, argv, c)) != CLI_RUN)
		return rc;
	for (int i = 0; i < cli_nopts; i++) {
		const struct cli_opt *op = &cli_opts[i];
		char opt[64];

		if ((op->cmds & (1u << cmd)) && (op->flags & CLI_REQUIRED) &&
		    !c->given[i])
			return cli_bad_usage(name, "%s %s is required",
			    display(op, opt, sizeof opt), cli_opt_metavar(op));
	}
	return check_operands(cmd, c);
}

/* ---- help ---------------------------------------------------------------- */

#define HELP_WIDTH	79
#define HELP_COLUMN	24	/* where an option's help starts */

/* Writes text from column `col` (where the cursor is), wrapped at
 * HELP_WIDTH, continuation lines indented to `indent`. Breaks at spaces
 * only; a GLUE is written as a space that never breaks. */
#define GLUE	'\x01'
#define GLUE_S	"\x01"
static void
wrap(FILE *f, const char *text, int col, int indent)
{
	const char *p = text;

	while (*p) {
		size_t w = strcspn(p, " ");

		if (col > indent && col + 1 + (int)w > HELP_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		for (size_t i = 0; i < w; i++)
			fputc(p[i] == GLUE ? ' ' : p[i], f);
		col += (int)w;
		p += w;
		while (*p == ' ')
			p++;
	}
	fputc('\n', f);
}

static int
takes(enum cli_cmd cmd, const struct cli_opt *op)
{
	return (op->cmds & (1u << cmd)) && !(op->flags & CLI_HIDDEN);
}

/* "[--block-size SIZE] --listen HOST:PORT [--peer HOST:PORT]... -f" */
static int
synopsis(enum cli_cmd cmd, char *text, size_t size)
{
	size_t n = 0;
	int numbers = 0;
	char name[64];

	text[0] = '\0';
	for (int i = 0; i < cli_nopts && n < size; i++) {
		const struct cli_opt *op = &cli_opts[i];
		int req = op->flags & CLI_REQUIRED, flag = op->kind == CLI_FLAG;

		if (!takes(cmd, op))
			continue;
		display(op, name, sizeof name);
		if (flag)
			n += (size_t)snprintf(text + n, size - n, "%s%s%s%s",
			    n ? " " : "", req ? "" : "[", name, req ? "" : "]");
		else
			n += (size_t)snprintf(text + n, size - n,
			    "%s%s%s%c%s%s%s", n ? " " : "", req ? "" : "[",
			    name, GLUE, cli_opt_metavar(op), req ? "" : "]",
			    op->kind == CLI_LIST ? "..." : "");
		numbers |= op->kind == CLI_SIZE || op->kind == CLI_DURATION;
	}
	return numbers;
}

void
cli_help(enum cli_cmd cmd, FILE *f)
{
	const struct cli_command *k = &cli_commands[cmd];
	char text[2048], ok[128], name[64];
	int numbers, col, indent;
	size_t n;

	col = fprintf(f, "usage: peerfs %s%s%s ", k->name, k->sub ? " " : "",
	    k->sub ? k->sub : "");
	indent = col;
	numbers = synopsis(cmd, text, sizeof text);
	n = strlen(text);
	if (k->operands && n < sizeof text)
		snprintf(text + n, sizeof text - n, "%s%s", n ? " " : "",
		    k->operands);
	if (text[0])
		wrap(f, text, col, indent);
	else
		fputc('\n', f);
	fputc('\n', f);
	wrap(f, k->about, 0, 0);
	for (int i = 0, first = 1; i < cli_nopts; i++) {
		const struct cli_opt *op = &cli_opts[i];
		int req = op->flags & CLI_REQUIRED;

		if (!takes(cmd, op))
			continue;
		if (first)
			fputc('\n', f);
		first = 0;
		display(op, name, sizeof name);
		col = fprintf(f, "  %s%s%s", name, op->kind == CLI_FLAG ? "" :
		    " ", op->kind == CLI_FLAG ? "" : cli_opt_metavar(op));
		if (col >= HELP_COLUMN - 1) {
			fputc('\n', f);
			col = 0;
		}
		fprintf(f, "%*s", HELP_COLUMN - col, "");
		cli_opt_accepts(op, ok, sizeof ok);
		n = (size_t)snprintf(text, sizeof text, "%s", op->help);
		if ((op->def || ok[0] || req) && n < sizeof text)
			snprintf(text + n, sizeof text - n, " (%s%s%s%s%s%s)",
			    req ? "required" : "",
			    req && (op->def || ok[0]) ? "; " : "",
			    op->def ? "default" GLUE_S : "",
			    op->def ? op->def : "",
			    op->def && ok[0] ? "; " : "", ok);
		wrap(f, text, HELP_COLUMN, HELP_COLUMN);
	}
	if (numbers) {
		fputc('\n', f);
		wrap(f, "Sizes: 4096, 64K, 1.5M, 2G (powers of 1024). "
		    "Durations: 500ms, 30s, 2m, 1h, 7d (a bare number: "
		    "seconds).", 0, 0);
	}
}
