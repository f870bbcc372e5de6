/* tests/unit/test_options.c - the option table (cli/options.c): values of
 * each kind, defaults and bounds of every entry, parsing, the errors a
 * user sees, and the generated --help naming every option. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "tests/unit/test.h"

/* ---- helpers ----------------------------------------------------------- */

/* argv from a NULL-terminated list; argv[0] is the command's name. */
#define ARGV(...) ((char *[]){ __VA_ARGS__, NULL })

static char err_text[4096];


/* The help of cmd as one malloc()'d string. */
static char *
help_of(enum cli_cmd cmd)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	cli_help(cmd, f);
	fclose(f);
	return buf;
}

/* ---- values ------------------------------------------------------------ */

static int
test_sizes(void)
{
	static const struct { const char *s; uint64_t v; } good[] = {
		{ "0", 0 }, { "100", 100 }, { "4K", 4096 }, { "4k", 4096 },
		{ "1.5M", 3u << 19 }, { "4MiB", 4u << 20 },
		{ "2G", 2ull << 30 },
		{ "1T", 1ull << 40 }, { "64KB", 65536 }, { ".5K", 512 },
	};
	static const char *const bad[] = {
		"", "-1", "abc", "4Q", "12 M", "4KK", "M", "1e30T", "4K4",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		v = 12345;
		CHECK_EQ(cli_parse_size(good[i].s, &v), 0);
		CHECK_EQ(v, good[i].v);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = 12345;
		if (cli_parse_size(bad[i], &v) != -EINVAL) {
			fprintf(stderr, "size '%s' accepted\n", bad[i]);
			return 1;
		}
		CHECK_EQ(v, 12345);	/* untouched on error */
	}
	return 0;
}

static int
test_durations(void)
{
	static const struct { const char *s; uint64_t ms; } good[] = {
		{ "0", 0 }, { "500ms", 500 }, { "30", 30000 }, { "30s", 30000 },
		{ "2m", 120000 }, { "1h", 3600000 }, { "7d", 604800000 },
		{ "1.5s", 1500 },
	};
	static const char *const bad[] = {
		"", "-1s", "soon", "5x", "s", "5 s", "1e30d",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		CHECK_EQ(cli_parse_duration(good[i].s, &v), 0);
		CHECK_EQ(v, good[i].ms);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (cli_parse_duration(bad[i], &v) != -EINVAL) {
			fprintf(stderr, "duration '%s' accepted\n", bad[i]);
			return 1;
		}
	return 0;
}

static int
test_counts_and_codes(void)
{
	uint64_t v;
	int k = 0, m = 0;

	CHECK_EQ(cli_parse_count("16", &v), 0);
	CHECK_EQ(v, 16);
	CHECK_EQ(cli_parse_count("0", &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(cli_parse_count("-1", &v), -EINVAL);
	CHECK_EQ(cli_parse_count("x", &v), -EINVAL);
	CHECK_EQ(cli_parse_count("1x", &v), -EINVAL);
	CHECK_EQ(cli_parse_count("", &v), -EINVAL);
	CHECK_EQ(cli_parse_count("99999999999999999999999", &v), -EINVAL);

	CHECK_EQ(cli_parse_ec("4+2", &k, &m), 0);
	CHECK(k == 4 && m == 2);
	CHECK_EQ(cli_parse_ec("1+1", &k, &m), 0);
	CHECK_EQ(cli_parse_ec("30+2", &k, &m), 0);
	static const char *const bad[] = {
		"4x2", "0+2", "4+0", "4+", "+2", "a+b", "4+2+1", "", "31+2",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (cli_parse_ec(bad[i], &k, &m) != -EINVAL) {
			fprintf(stderr, "code '%s' accepted\n", bad[i]);
			return 1;
		}
	return 0;
}

/* ---- the table ----------------------------------------------------------- */

/* A number of op's kind (a list's bound is a count). */
static int
number(const struct cli_opt *op, const char *text, uint64_t *v)
{
	switch (op->kind) {
	case CLI_SIZE:		return cli_parse_size(text, v);
	case CLI_DURATION:	return cli_parse_duration(text, v);
	default:		return cli_parse_count(text, v);
	}
}

/* Every default and bound parses, every default lies within its bounds,
 * names are unique per command (and leave -h, --help to the parser),
 * every entry serves some command. */
static int
test_table_consistent(void)
{
	CHECK(cli_nopts > 0 && cli_nopts <= CLI_OPTS_MAX);
	for (int i = 0; i < cli_nopts; i++) {
		const struct cli_opt *op = &cli_opts[i];
		int numeric = op->kind == CLI_SIZE ||
		    op->kind == CLI_DURATION || op->kind == CLI_COUNT;
		uint64_t lo = 0, hi = UINT64_MAX, def;

		CHECK(op->name || op->short_name);
		CHECK(!op->name || strcmp(op->name, "help") != 0);
		CHECK(op->short_name != 'h');
		CHECK(op->help && op->help[0]);
		CHECK(op->cmds != 0 && op->cmds < (1u << CLI_NCMDS));
		CHECK(op->off + sizeof(int) <= sizeof(struct cli_conf));
		if (op->min) {
			CHECK(numeric);
			CHECK_EQ(number(op, op->min, &lo), 0);
		}
		if (op->max) {
			CHECK(numeric || op->kind == CLI_LIST);
			CHECK_EQ(number(op, op->max, &hi), 0);
		}
		CHECK(lo <= hi);
		if (op->kind == CLI_LIST)
			CHECK(hi <= CLI_LIST_MAX);
		if (op->def && numeric) {
			CHECK_EQ(number(op, op->def, &def), 0);
			if (def < lo || def > hi) {
				fprintf(stderr, "--%s: default %s outside its "
				    "bounds\n", op->name, op->def);
				return 1;
			}
		}
		if (op->def && op->kind == CLI_EC) {
			int k, m;

			CHECK_EQ(cli_parse_ec(op->def, &k, &m), 0);
		}
		CHECK(!op->def || (op->kind != CLI_FLAG &&
		    op->kind != CLI_LIST && op->kind != CLI_STRING));
		for (int j = 0; j < i; j++) {
			const struct cli_opt *o2 = &cli_opts[j];
			int same = op->name && o2->name &&
			    !strcmp(op->name, o2->name);

			same |= op->short_name &&
			    op->short_name == o2->short_name;
			if (same && (op->cmds & o2->cmds)) {
				fprintf(stderr, "option %s twice for one "
				    "command\n", op->name ? op->name : "-?");
				return 1;
			}
		}
	}
	for (int c = 0; c < CLI_NCMDS; c++) {
		const struct cli_command *k = &cli_commands[c];

		CHECK(k->name && k->fn && k->summary && k->about);
		CHECK(k->min_args <= k->max_args);
		CHECK(k->max_args == 0 || k->operands);
	}
	return 0;
}

/* With nothing given, a command gets the table's defaults. */
static int
test_defaults(void)
{
	struct cli_conf c;
	/* A variable, not ARGV(): c.args points into it after the call. */
	char *argv[] = { "mount", "mnt", NULL };

	CHECK_EQ(cli_parse(CLI_MOUNT, 2, argv, &c), CLI_RUN);
	CHECK_EQ(c.cmd, CLI_MOUNT);
	CHECK_EQ(c.nargs, 1);
	CHECK(strcmp(c.args[0], "mnt") == 0);
	CHECK(c.ec.k == 4 && c.ec.m == 2);
	CHECK_EQ(c.block_size, 4u << 20);
	CHECK_EQ(c.cache_size, 32u << 20);
	CHECK_EQ(c.timeout_ms, 10000);
	CHECK_EQ(c.write_back_ms, 5000);
	CHECK_EQ(c.ping_ms, 30000);
	CHECK_EQ(c.suspect_ms, 120000);
	CHECK_EQ(c.dead_ms, 3ll * 86400 * 1000);
	CHECK_EQ(c.audit_ms, 7ull * 86400 * 1000);
	CHECK_EQ(c.rebuild_rate, 50u << 20);
	CHECK_EQ(c.rebuild_jobs, 2);
	CHECK_EQ(c.keep_versions, 10);
	CHECK_EQ(c.sweep_ms, 300000);
	CHECK_EQ(c.upload_jobs, 2);
	CHECK_EQ(c.sync_timeout_ms, 120000);
	CHECK_EQ(c.reconnect_ms, 1000);
	CHECK_EQ(c.fuse_threads, 16);
	CHECK_EQ(c.map_size, 1u << 30);
	CHECK_EQ(c.peers.n, 0);
	CHECK(c.home == NULL && c.fuse_opts == NULL && !c.foreground);
	CHECK(!cli_given(&c, "block-size"));
	/* Options of other commands stay zero. */
	CHECK_EQ(c.umount_timeout_ms, 0);
	CHECK_EQ(c.quota, 0);

	CHECK_EQ(cli_parse(CLI_UMOUNT, 2, ARGV("umount", "mnt"), &c), CLI_RUN);
	CHECK_EQ(c.umount_timeout_ms, 600000);
	CHECK_EQ(c.timeout_ms, 0);
	CHECK_EQ(c.block_size, 0);
	return 0;
}

/* Values of every kind land in their fields; options and operands mix;
 * a process may parse twice (getopt starts afresh). */
static int
test_parse_values(void)
{
	char **argv = ARGV("mount", "--block-size", "64K", "--peer", "a:1",
	    "mnt", "--peer", "b:2", "--ec", "6+3", "-f", "-o", "allow_other",
	    "--write-back", "0", "--keep-versions", "0", "--home", "h",
	    "--dead-after", "1h", "--debug");
	struct cli_conf c;

	for (int round = 0; round < 2; round++) {
		CHECK_EQ(cli_parse(CLI_MOUNT, test_argc(argv), argv, &c),
		    CLI_RUN);
		CHECK_EQ(c.block_size, 65536);
		CHECK_EQ(c.peers.n, 2);
		CHECK(!strcmp(c.peers.v[0], "a:1"));
		CHECK(!strcmp(c.peers.v[1], "b:2"));
		CHECK(c.ec.k == 6 && c.ec.m == 3);
		CHECK(c.foreground && c.debug);
		CHECK(c.fuse_opts && !strcmp(c.fuse_opts, "allow_other"));
		CHECK_EQ(c.write_back_ms, 0);
		CHECK_EQ(c.keep_versions, 0);
		CHECK(c.home && !strcmp(c.home, "h"));
		CHECK_EQ(c.dead_ms, 3600000);
		CHECK_EQ(c.nargs, 1);
		CHECK(!strcmp(c.args[0], "mnt"));
		CHECK(cli_given(&c, "block-size"));
		CHECK(cli_given(&c, "f"));
		CHECK(!cli_given(&c, "cache-size"));
		CHECK(!cli_given(&c, "no-such-option"));
		cli_conf_free(&c);	/* -o's text */
	}

	char **sargv = ARGV("supplier", "--listen", "127.0.0.1:7", "--store",
	    "st", "--quota", "2G", "--daemon", "--test-lie");
	CHECK_EQ(cli_parse(CLI_SUPPLIER, test_argc(sargv), sargv, &c), CLI_RUN);
	CHECK(!strcmp(c.listen, "127.0.0.1:7") && !strcmp(c.store, "st"));
	CHECK_EQ(c.quota, 2ull << 30);
	CHECK(c.daemon && c.test_lie);

	char **rargv = ARGV("restore", "--code-file", "-", "--peer", "x:1",
	    "--version", "7", "--no-passphrase");
	CHECK_EQ(cli_parse(CLI_RESTORE, test_argc(rargv), rargv, &c), CLI_RUN);
	CHECK_EQ(c.version, 7);
	CHECK(c.no_passphrase);
	CHECK_EQ(c.map_size, 1u << 30);		/* shared with mount */
	return 0;
}

/* Each error is one line on stderr naming the option and what it
 * accepts, and exit status CLI_USAGE; the conf of a failed parse is not
 * used, so only the message and status matter. */
static int
test_errors(void)
{
	const struct {
		enum cli_cmd cmd;
		char **argv;
		const char *want[3];
	} cases[] = {
		{ CLI_MOUNT, ARGV("mount", "--rebuild-jobs", "17", "m"),
		    { "--rebuild-jobs", "17", "1 to 16" } },
		{ CLI_MOUNT, ARGV("mount", "--rebuild-jobs", "0", "m"),
		    { "--rebuild-jobs", "out of bounds", "1 to 16" } },
		{ CLI_MOUNT, ARGV("mount", "--rebuild-jobs", "x", "m"),
		    { "--rebuild-jobs", "'x'", "whole number" } },
		{ CLI_MOUNT, ARGV("mount", "--block-size", "5000", "m"),
		    { "--block-size", "4K to 16M", "multiple of 4K" } },
		{ CLI_MOUNT, ARGV("mount", "--block-size", "32M", "m"),
		    { "--block-size", "32M", "4K to 16M" } },
		{ CLI_MOUNT, ARGV("mount", "--block-size", "4Q", "m"),
		    { "--block-size", "'4Q'", "a size" } },
		{ CLI_MOUNT, ARGV("mount", "--keep-versions", "101", "m"),
		    { "--keep-versions", "0 to 100", NULL } },
		{ CLI_MOUNT, ARGV("mount", "--write-back", "25h", "m"),
		    { "--write-back", "0 to 24h", NULL } },
		{ CLI_MOUNT, ARGV("mount", "--ping-interval", "0", "m"),
		    { "--ping-interval", "1ms to 24d", NULL } },
		{ CLI_MOUNT, ARGV("mount", "--audit-interval", "-1s", "m"),
		    { "--audit-interval", "a duration", NULL } },
		{ CLI_MOUNT, ARGV("mount", "--rebuild-rate", "1K", "m"),
		    { "--rebuild-rate", "at least 4K", NULL } },
		{ CLI_MOUNT, ARGV("mount", "--ec", "4x2", "m"),
		    { "--ec", "K+M", "at most 32" } },
		{ CLI_MOUNT, ARGV("mount", "--peer", "nocolon", "m"),
		    { "--peer", "HOST:PORT", NULL } },
		{ CLI_MOUNT, ARGV("mount", "--timeout"),
		    { "--timeout", "needs a value", NULL } },
		{ CLI_MOUNT, ARGV("mount", "--no-such-xyz", "m"),
		    { "unknown option", "--no-such-xyz", NULL } },
		{ CLI_MOUNT, ARGV("mount", "--quota", "1G", "m"),
		    { "unknown option", "--quota", NULL } },
		{ CLI_MOUNT, ARGV("mount"), { "MOUNTPOINT missing", NULL } },
		{ CLI_MOUNT, ARGV("mount", "a", "b"),
		    { "exactly one MOUNTPOINT", NULL } },
		{ CLI_SUPPLIER, ARGV("supplier", "--listen", "nocolon",
		    "--store", "s"), { "--listen", "'nocolon'", NULL } },
		{ CLI_SUPPLIER, ARGV("supplier", "--listen", "a:1", "--store",
		    "s", "--quota", "lots"), { "--quota", "'lots'", NULL } },
		{ CLI_SUPPLIER, ARGV("supplier", "--listen", "a:1", "--store",
		    "s", "x", "y", "z"), { "at most 2", NULL } },
		{ CLI_UMOUNT, ARGV("umount", "--json", "m"),
		    { "unknown option --json", NULL } },
		{ CLI_DEMO, ARGV("demo", "a", "b"),
		    { "at most one DIR", NULL } },
		{ CLI_RESTORE, ARGV("restore", "--peer", "a:1", "--version",
		    "0", "--code-file", "c"),
		    { "--version", "at least 1", NULL } },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cli_conf c;
		int rc = test_parse_caught(cases[i].cmd, cases[i].argv, &c,
		    err_text, sizeof err_text);
		char *nl = strchr(err_text, '\n');

		if (rc != CLI_USAGE || !nl || nl[1] != '\0') {
			fprintf(stderr, "case %zu (%s %s): status %d, stderr "
			    "'%s': want %d and one line\n", i,
			    cases[i].argv[0], cases[i].argv[1] ?
			    cases[i].argv[1] : "", rc, err_text, CLI_USAGE);
			return 1;
		}
		for (int w = 0; w < 3 && cases[i].want[w]; w++)
			if (!strstr(err_text, cases[i].want[w])) {
				fprintf(stderr, "case %zu: '%s' lacks "
				    "'%s'\n", i, err_text, cases[i].want[w]);
				return 1;
			}
	}
	return 0;
}

/* A list holds at most its bound (mount's --peer: 256). */
static int
test_list_bound(void)
{
	static char *argv[2 * CLI_LIST_MAX + 8];
	static char addr[CLI_LIST_MAX + 1][16];
	struct cli_conf c;
	int n = 0;

	argv[n++] = "mount";
	for (int i = 0; i <= CLI_LIST_MAX; i++) {
		snprintf(addr[i], sizeof addr[i], "h:%d", i);
		argv[n++] = "--peer";
		argv[n++] = addr[i];
	}
	argv[n++] = "m";
	argv[n] = NULL;
	CHECK_EQ(test_parse_caught(CLI_MOUNT, argv, &c,
	    err_text, sizeof err_text), CLI_USAGE);
	CHECK(strstr(err_text, "too many --peer"));
	CHECK(strstr(err_text, "at most 256"));
	argv[n - 3] = "m";	/* one --peer fewer */
	argv[n - 2] = NULL;
	CHECK_EQ(test_parse_caught(CLI_MOUNT, argv, &c,
	    err_text, sizeof err_text), CLI_RUN);
	CHECK_EQ(c.peers.n, CLI_LIST_MAX);
	CHECK(!strcmp(c.peers.v[CLI_LIST_MAX - 1], addr[CLI_LIST_MAX - 1]));
	return 0;
}

/* --help: status 0, and for every command each option it takes (not the
 * hidden ones) with its default, no line over 80 columns. */
static int
test_help_covers_every_option(void)
{
	for (int cmd = 0; cmd < CLI_NCMDS; cmd++) {
		const struct cli_command *k = &cli_commands[cmd];
		char *h = help_of(cmd), want[96];
		struct cli_conf c;

		CHECK(h);
		snprintf(want, sizeof want, "usage: peerfs %s", k->name);
		CHECK(strncmp(h, want, strlen(want)) == 0);
		if (k->operands)
			CHECK(strstr(h, k->operands));
		for (int i = 0; i < cli_nopts; i++) {
			const struct cli_opt *op = &cli_opts[i];
			int shown;

			if (!(op->cmds & (1u << cmd)))
				continue;
			if (op->name)
				snprintf(want, sizeof want, "  --%s", op->name);
			else
				snprintf(want, sizeof want, "  -%c",
				    op->short_name);
			shown = strstr(h, want) != NULL;
			if (shown != !(op->flags & CLI_HIDDEN)) {
				fprintf(stderr, "peerfs %s --help: %s %s\n",
				    k->name, want, shown ? "shown (hidden)" :
				    "missing");
				return 1;
			}
			if (op->def && !(op->flags & CLI_HIDDEN)) {
				snprintf(want, sizeof want, "default %s",
				    op->def);
				if (!strstr(h, want)) {
					fprintf(stderr, "peerfs %s --help: no "
					    "'%s' for --%s\n", k->name, want,
					    op->name);
					return 1;
				}
			}
		}
		for (char *l = h, *e; *l; l = e + 1) {
			if (!(e = strchr(l, '\n')))
				break;
			if (e - l > 80) {
				fprintf(stderr, "peerfs %s --help: a line of "
				    "%d columns: %.*s\n", k->name, (int)(e - l),
				    (int)(e - l), l);
				return 1;
			}
		}
		free(h);

		/* --help through the parser: status 0, on stdout. */
		fflush(stdout);
		int saved = dup(1), fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		int rc = cli_parse(cmd, 2, ARGV((char *)k->name, "--help"), &c);
		fflush(stdout);
		dup2(saved, 1);
		close(fd);
		close(saved);
		CHECK_EQ(rc, 0);
	}
	return 0;
}

const struct test tests_options[] = {
	{ "sizes", test_sizes },
	{ "durations", test_durations },
	{ "counts_and_codes", test_counts_and_codes },
	{ "table_consistent", test_table_consistent },
	{ "defaults", test_defaults },
	{ "parse_values", test_parse_values },
	{ "errors", test_errors },
	{ "list_bound", test_list_bound },
	{ "help_covers_every_option", test_help_covers_every_option },
	{ NULL, NULL },
};
