/* cli/cli.h - the command line's commands and their shared helpers.
 * The cli sits above every layer and wires them together; its commands
 * and options are tables in cli/options.h. */
#ifndef PEERFS_CLI_H
#define PEERFS_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "cli/options.h"
#include "crypto/crypto.h"

#define CLI_USAGE 2	/* exit status for bad usage */

int cmd_init(int argc, char **argv);
int cmd_supplier(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_key(int argc, char **argv);		/* cli/recover.c */
int cmd_restore(int argc, char **argv);
int cmd_versions(int argc, char **argv);
int cmd_pin(int argc, char **argv);
int cmd_unpin(int argc, char **argv);
/* `peerfs help --man 1|5|8`, `peerfs help --bash-completion`: the manual
 * pages and the completion on stdout, from the tables (cli/manual.c).
 * argv[0] is "help". */
int cli_manual(int argc, char **argv);

/* Tells systemd our state ("READY=1", "STOPPING=1") when it started us
 * as a Type=notify service ($NOTIFY_SOCKET); 0 when it did not (cli/sdnotify.c). */
int cli_sd_notify(const char *state);

/* Home directory: opt, else $PEERFS_HOME, else ~/.peerfs. Returns a
 * malloc()'d absolute path. */
char *cli_home(const char *opt);
/* <home>/<name>, malloc()'d. */
char *cli_path(const char *home, const char *name);
int cli_mkdir_p(const char *path, int mode);
/* An owner's home holds its key file, metadata and journal (README, "Home
 * at rest"): at mount and init an existing one loses any group and other
 * permission (0700), with a note on stderr when it had some. */
void cli_home_tighten(const char *home);
/* Opens <home>/<name> for appending, created 0600 (an existing file is
 * tightened to 0600): logs may name files and suppliers. NULL on error. */
FILE *cli_open_log(const char *home, const char *name);

/* Passphrase from --passphrase-file, $PEERFS_PASSPHRASE, or a prompt on
 * the terminal when `prompt` is set. *out is malloc()'d (may be ""):
 * release with cli_passphrase_free. $PEERFS_PASSPHRASE is wiped and
 * unset once read, so it is not in /proc/PID/environ of a daemon. */
int cli_passphrase(const char *file, int prompt, int confirm, char **out);
/* Wipes (sodium_memzero: not a dead store) and frees; NULL-safe. */
void cli_passphrase_free(char *pass);
/* Loads <home>/key, prompting for the passphrase when needed. Prints a
 * clear error and returns -errno on failure. */
int cli_load_identity(const char *home, const char *pass_file,
    struct cr_identity **out);

/* One person, one peer. The supplier of a home runs unattended: when the
 * home's key has a passphrase it serves with <home>/node.key (no
 * passphrase), and the mount, which has the owner key open, binds that
 * node key to it (cr_bind_sign: both keys sign) and presents the binding
 * to the suppliers it uses. cli_node_bind: 1 with node's key and the
 * binding
 * when the home has a node key of its own (made here for a home whose key
 * has a passphrase), 0 when the node is the owner key itself, -errno. */
int cli_node_bind(const char *home, const struct cr_identity *id,
    unsigned char node[CR_PK_BYTES], unsigned char bind[CR_BIND_BYTES]);
/* The key a supplier of home serves with: node.key when there is one or
 * the home's key needs a passphrase (node.key then made), else the home's
 * key (made without a passphrase when there is none). */
int cli_node_identity(const char *home, struct cr_identity **out);

/* getopt error -> one line on stderr; returns CLI_USAGE. */
int cli_bad_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Detaches like sshfs: forks; the parent exits 0 once the child writes
 * "ok" to *notify_fd (1 when the child exits without), the child starts
 * a new session and continues. */
int cli_detach(int *notify_fd);
/* Writes our pid to <home>/<name>. */
void cli_write_pid(const char *home, const char *name);

/* ---- progress of long work (cli/progress.c) ----
 * On a terminal (stderr) a bar redrawn in place twice a second; else,
 * when the command asks for them, a plain line on stderr every few
 * seconds ("peerfs pin: 12/40 blocks, 3s") for logs and scripts. */
enum cli_progress_mode {
	CLI_PROGRESS_NONE, CLI_PROGRESS_BAR, CLI_PROGRESS_LINES
};
struct cli_progress {
	const char *cmd, *unit;		/* "pin", "blocks" */
	enum cli_progress_mode mode;
	long long total;		/* the most seen */
	double rate;			/* bytes/s, smoothed */
	long long last_bytes;
	int64_t last_ms, start_ms, next_ms;
	int drawn;
};
/* lines: plain lines when stderr is not a terminal (0: nothing then). */
void cli_progress_start(struct cli_progress *pg, const char *cmd,
    const char *unit, int lines);
/* left of total units to go (total: 0 when not known; the most seen
 * counts); bytes_left < 0: not known (else with the rate). Draws when
 * due, or now when force. */
void cli_progress_show(struct cli_progress *pg, long long left,
    long long total, long long bytes_left, int force);
/* Ends the bar's line. */
void cli_progress_end(struct cli_progress *pg);
int64_t cli_mono_ms(void);
/* "3.0 MiB", "512 KiB". */
void cli_fmt_bytes(char *buf, size_t size, double b);

/* Reads the root control attribute of a mount into a malloc()'d string. */
int cli_ctl_get(const char *mnt, const char *name, char **out);

/* ---- the status page (cli/statuspage.c) ---- */
struct owner;
struct sockaddr_storage;
struct cli_statuspage;
/* --status-page's ADDRESS:PORT into *ss: 0, or -EINVAL after one line on
 * stderr (not ADDRESS:PORT, or not a loopback address: refused). */
int  cli_statuspage_addr(const char *hostport, struct sockaddr_storage *ss);
/* Serves the mount's status page on hostport (a loopback address; port 0
 * picks one) under a fresh random token, and writes the page's URL, token
 * included, into url. The server runs on libmicrohttpd's own thread
 * ("status-page", one, not worker.h's: the library starts and joins it),
 * which calls owner_status(): o must outlive cli_statuspage_stop. */
int  cli_statuspage_start(struct cli_statuspage **out, struct owner *o,
    const char *mnt, const char *hostport, char *url, size_t urlsize);
/* Stops the server and joins its thread; NULL-safe. */
void cli_statuspage_stop(struct cli_statuspage *sp);

/* ---- the network (cli/network.c) ---- */
struct net;
struct net_dht;
struct net_record;
/* Where to connect for a node's record: its address, or for a node
 * reached only through relays "RELAY~ID" (its first relay's address and
 * the start of its id: net/client.c asks that relay for a circuit); ""
 * when that name would not fit size. */
void cli_record_addr(const struct net_record *r, char *out, size_t size);
int cmd_id(int argc, char **argv);
int cmd_config(int argc, char **argv);	/* cli/config.c */
int cmd_sim(int argc, char **argv);	/* cli/sim.c */
/* given[] and <home>/bootstrap, deduplicated, into *out (malloc'd,
 * cli_strv_free). Writes the union back when something was given, or
 * when create is set and there was no file (the first node of a network).
 * Returns 1 when the node is on a network (a file, or something given),
 * else 0. */
int  cli_bootstrap_merge(const char *home, const char *const *given,
    int ngiven, int create, char ***out, int *n);
void cli_strv_free(char **v, int n);
/* --lan, remembered: given, it writes <home>/lan (a restart or remount
 * with nothing given stays on the LAN network; deleting the file leaves
 * it). Returns 1 when given or remembered. */
int  cli_lan_remember(const char *home, int given);
/* The local address a packet to hostport leaves from, as "HOST:0": where
 * a DHT node binds that has no listen address of its own. */
int  cli_local_addr_for(const char *hostport, char *out, size_t size);
/* Starts the mount's DHT node (bootstrapping from boot[] and from the
 * suppliers hired before), adds the suppliers hired before (at the
 * address their newest record gives) and hires more from the network up
 * to k + m + 2, each pinned to its record's key before it is contacted;
 * remembers them in <home>/hired. Returns how many were added and sets
 * *out (net_dht_free after net_free), or -errno. */
int  cli_net_hire(struct net *net, const struct cr_identity *id,
    const char *home, char **boot, int nboot, int k, int m,
    struct net_dht **out);

/* The mount's hirer (thread "net-hire", cli/network.c), for a mount that
 * hired through the network: every HIRER_MS it looks at the suppliers
 * in <home>/hired. One whose session is lost is looked up by id in the
 * DHT before it turns suspect, and followed to the address of its newer
 * record (net_peer_move: no rebuild). One whose record says it is
 * leaving is fired (its fragments are rebuilt elsewhere). While fewer
 * than k + m + 2 hired ones are alive, one new supplier at a time is
 * hired from the DHT's records (a /24 of its own, never one known
 * already) in the place of a dead one; <home>/hired is rewritten. One
 * online less than fire_below percent of the last window_ms (a moving
 * average, once watched that long) is fired, at most one per window and
 * only while k + m others are alive (0: never). Only that thread
 * touches its state. stop: before net_free. NULL-safe. */
struct cli_hirer;
int  cli_hirer_start(struct cli_hirer **out, struct net *net,
    struct net_dht *d, const char *home, int k, int m, int fire_below,
    int64_t window_ms);
void cli_hirer_stop(struct cli_hirer *c);

#endif
