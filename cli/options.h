/* cli/options.h - every command and every option of the command line in
 * two tables (cli/options.c), as sshfs's SSHFS_OPT table and redis's
 * config.c keep theirs: an option's name, the kind of its value, its
 * default, its bounds and one help line. The parser, the defaults and
 * `peerfs CMD --help` all come from the tables, so a default is written
 * once; the layers below cli/ receive complete configurations built from
 * struct cli_conf.
 *
 * Adding an option: a field in struct cli_conf and one entry in
 * cli_opts[] (cli/options.c); the command reads the field. */
#ifndef PEERFS_CLI_OPTIONS_H
#define PEERFS_CLI_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

/* The commands, in the order of `peerfs --help`. */
enum cli_cmd {
	CLI_INIT, CLI_SUPPLIER, CLI_MOUNT, CLI_SYNC, CLI_UMOUNT, CLI_STATUS,
	CLI_PIN, CLI_UNPIN, CLI_CHECK, CLI_DEMO, CLI_KEY, CLI_RESTORE,
	CLI_VERSIONS, CLI_ID, CLI_CONFIG, CLI_SIM, CLI_NCMDS
};
#define CLI_CMD(c)	(1u << CLI_##c)		/* cli_opt.cmds */

struct cli_command {
	const char *name;
	int (*fn)(int argc, char **argv);	/* argv[0] is the name */
	const char *summary;	/* one line of `peerfs --help` */
	const char *sub;	/* a word after the name ("export"), or NULL */
	const char *operands;	/* "MOUNTPOINT", "[DIR]", or NULL */
	int min_args, max_args;	/* operands accepted */
	const char *about;	/* what the command does, for its --help */
};
extern const struct cli_command cli_commands[CLI_NCMDS];

/* What an option's value is and where it lands in struct cli_conf. */
enum cli_kind {
	CLI_SIZE,	/* bytes: 4096, 64K, 1.5M, 4MiB, 2G -> uint64_t */
	CLI_DURATION,	/* 500ms, 30s (or 30), 2m, 1h, 7d -> uint64_t ms */
	CLI_COUNT,	/* a whole number -> uint64_t */
	CLI_EC,		/* K+M -> struct cli_ec */
	CLI_STRING,	/* any text -> const char * (points into argv) */
	CLI_FLAG,	/* no value -> int, 1 when given */
	CLI_LIST,	/* text, repeatable -> struct cli_list */
};

/* cli_opt.flags */
#define CLI_REQUIRED	0x1	/* the command needs it */
#define CLI_HIDDEN	0x2	/* for tests: not in --help */
#define CLI_HOSTPORT	0x4	/* STRING, LIST: HOST:PORT */
#define CLI_PAGES	0x8	/* SIZE: a multiple of 4K */
#define CLI_NETWORK	0x10	/* may sit in the config file's [network] */
#define CLI_MOUNTOPTS	0x20	/* -o: peerfs options, FUSE's, mount(8)'s */
#define CLI_ARGV_ONLY	0x40	/* not in the config file, nor in -o */

struct cli_opt {
	const char *name;	/* long name without "--", or NULL */
	char short_name;	/* 'f' for -f, or 0 */
	enum cli_kind kind;
	unsigned cmds;		/* CLI_CMD(MOUNT) | ...: who takes it */
	size_t off;		/* of the value in struct cli_conf */
	/* Default and bounds as a user would type them ("4M", "4K",
	 * "16M"), parsed by the kind's parser: help shows them as
	 * written. NULL: no default (the field stays 0, NULL or empty) or
	 * no bound on that side. A LIST's max is its number of values. */
	const char *def, *min, *max;
	const char *arg;	/* name of the value in help ("HOST:PORT");
				 * NULL: the kind's ("SIZE", "D", "N") */
	unsigned flags;
	const char *help;	/* one line; default and bounds are added */
};
extern const struct cli_opt cli_opts[];
extern const int cli_nopts;

#define CLI_LIST_MAX	256	/* values of one repeatable option */
#define CLI_OPTS_MAX	128	/* entries of cli_opts[] */

struct cli_list {
	const char *v[CLI_LIST_MAX];	/* argv's, or the command's own */
	int n;
};

struct cli_ec {
	int k, m;
};

/* Every command's options; a command reads the fields its options fill
 * (the others stay zero). Units: sizes in bytes, durations in ms. */
struct cli_conf {
	enum cli_cmd cmd;
	/* several commands */
	const char *home, *passphrase_file;
	int no_passphrase, debug;
	struct cli_list peers;
	struct cli_ec ec;
	uint64_t timeout_ms;		/* network requests */
	uint64_t map_size;		/* LMDB map bytes */
	/* supplier */
	const char *listen, *store;
	uint64_t quota;			/* 0: a tenth of the free space */
	const char *accept, *friends_file;
	struct cli_list friends;
	uint64_t stranger_quota;
	uint64_t credit;		/* --accept deal: beyond what was earned */
	uint64_t evict_grace_ms;	/* --accept deal: deficit before eviction */
	uint64_t max_fragments;		/* 0: each owner's quota / 16K */
	uint64_t max_sessions, max_per_address, max_per_key, max_inflight;
	uint64_t handshake_timeout_ms, frame_timeout_ms, idle_timeout_ms;
	int daemon, test_lie, test_relayed;
	int leave;			/* --leave: tell the daemon */
	uint64_t leave_within_ms;	/* then exit, what may remain */
	uint64_t reach_every_ms;	/* reachability re-checks */
	int relay;			/* offer relaying */
	int lan;			/* a network on one private LAN */
	uint64_t relay_reservations, relay_circuits, relay_per_address;
	uint64_t relay_bytes, relay_rate, relay_keepalive_ms;
	/* mount */
	uint64_t block_size, cache_size, write_back_ms;
	uint64_t ping_ms, suspect_ms, dead_ms, audit_ms, sweep_ms;
	uint64_t fire_below, avail_window_ms;	/* hirer: availability */
	uint64_t vet_after_ms;		/* audits passed this long: vetted */
	uint64_t rebuild_rate, rebuild_jobs, keep_versions;
	uint64_t upload_jobs, sync_timeout_ms, reconnect_ms, fuse_threads;
	int foreground;
	const char *fuse_opts;		/* what -o leaves for FUSE, or NULL */
	uint64_t lease_ms;
	int take_over;
	const char *status_page;		/* ADDRESS:PORT, loopback */
	/* the network (cli/network.c): supplier, mount */
	struct cli_list bootstrap;
	int dht;
	/* restore */
	const char *code_file;
	uint64_t version;		/* 0: the newest */
	/* umount, status, demo */
	uint64_t umount_timeout_ms;	/* 0: never give up */
	int force, json, stop;
	/* sim */
	const char *sim_config, *sim_out;
	uint64_t sim_seed, sim_jobs;
	int sim_quick;
	/* the operands, in order (argv's) */
	char **args;
	int nargs;
	/* Where each option's value came from, by cli_opts[] index:
	 * 0 the table's default, else one of CLI_FROM_*; for a value from
	 * the config file, its line there. */
	unsigned char given[CLI_OPTS_MAX];
	int line[CLI_OPTS_MAX];
	char config[4096];		/* the config file's path, or "" */
	int config_found;		/* it exists */
	void *mem;			/* text the file and -o gave: cli_conf_free */
};
#define CLI_FROM_ARGV	1	/* the command line (-o included) */
#define CLI_FROM_FILE	2	/* the config file's command section */
#define CLI_FROM_NET	3	/* the config file's [network] */

/* cli_parse's answer when the command goes on. */
#define CLI_RUN (-1)

/* Fills *c with cmd's defaults, then with argv[1..argc) (argv[0] is the
 * command's name; options and operands may mix, as getopt_long permutes).
 * CLI_RUN: go on. Otherwise the exit status to return at once: 0 after
 * printing --help on stdout, CLI_USAGE after one line on stderr naming the
 * option and what it accepts (bounds included). */
int  cli_parse(enum cli_cmd cmd, int argc, char **argv, struct cli_conf *c);
/* Frees what the config file and -o left in c (a command may skip it:
 * it lives as long as the process). */
void cli_conf_free(struct cli_conf *c);
/* cli_parse without the check of operands and required options: what
 * `peerfs config mount ...` shows. */
int  cli_parse_opts(enum cli_cmd cmd, int argc, char **argv,
    struct cli_conf *c);
/* 1 when the option `name` of c's command was set by the user: on the
 * command line or in the config file. */
int  cli_given(const struct cli_conf *c, const char *name);
/* The help of cmd (usage line, about, one entry per option). */
void cli_help(enum cli_cmd cmd, FILE *f);
/* The entry of option `name` (long name, or one letter) that cmd takes. */
const struct cli_opt *cli_opt_find(enum cli_cmd cmd, const char *name);
/* One value of op into its field of c, as the parser does: 0, -EINVAL
 * (not a value of its kind), -ERANGE (out of bounds, or too many). A
 * FLAG takes "" (set), true/yes/on/1 or false/no/off/0. */
int  cli_opt_set(const struct cli_opt *op, const char *text,
    struct cli_conf *c);
/* What is wrong with `text` as op's value after cli_opt_set said err,
 * into buf: "bad NAME 'x' (a size: ...)". name: how the user spelled the
 * option ("--cache-size", "cache_size"). */
void cli_value_error(const struct cli_opt *op, const char *name,
    const char *text, int err, char *buf, size_t size);
/* The value of op in c as a user would type it ("64M", "5s", "4+2",
 * "a:1,b:2", "true"); "" when unset. */
void cli_opt_format(const struct cli_opt *op, const struct cli_conf *c,
    char *buf, size_t size);

/* The config file and -o (cli/config.c). */
/* Fills the options of c's command (MOUNT, SUPPLIER) not given on the
 * command line from HOME/config: CLI_RUN, or CLI_USAGE after an error
 * naming the file and line. */
int  cli_config_apply(struct cli_conf *c);
/* One -o argument of `peerfs mount`: "ec=4+2,cache_size=64M,allow_other".
 * peerfs's options are set as from the command line, FUSE's are kept in
 * c->fuse_opts, mount(8)'s bookkeeping (_netdev, noauto, user, x-*) is
 * dropped. CLI_RUN, or CLI_USAGE after naming the unknown one. */
int  cli_mount_o(struct cli_conf *c, const char *opts);
/* mount(8)'s form: `mount.peerfs HOME MOUNTPOINT [-o OPTS] [-nsvf]`, and
 * `peerfs HOME MOUNTPOINT -o OPTS` as fuse3's mount.fuse3 runs it for
 * type fuse.peerfs. */
int  cli_mount_helper(int argc, char **argv);

/* The name of op's value in help: its arg, else the kind's ("SIZE"). */
const char *cli_opt_metavar(const struct cli_opt *op);
/* What op accepts, for errors, help and the manual: "4K to 16M; a
 * multiple of 4K", or "" when anything of its kind goes. */
void cli_opt_accepts(const struct cli_opt *op, char *buf, size_t size);

/* Values, as the table and the user write them. -EINVAL on junk. */
/* "4K", "2G", "1.5M", "4MiB", "100" -> bytes. */
int  cli_parse_size(const char *s, uint64_t *out);
/* "500ms", "30s", "30", "2m", "1h", "7d" -> milliseconds. */
int  cli_parse_duration(const char *s, uint64_t *ms);
/* "16" -> 16; no sign, no junk. */
int  cli_parse_count(const char *s, uint64_t *out);
/* "4+2" -> k, m, each at least 1, together at most CR_EC_MAX. */
int  cli_parse_ec(const char *s, int *k, int *m);

#endif
