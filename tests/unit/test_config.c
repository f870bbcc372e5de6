/* tests/unit/test_config.c - the config file (HOME/config, INI) and -o
 * (cli/config.c): which option each key sets, what wins over what, where
 * each value is said to come from, and the errors a user sees. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "tests/unit/test.h"

#define ARGV(...) ((char *[]){ __VA_ARGS__, NULL })


/* h/config with the given text (the test runs in a fresh directory). */
static int
write_config(const char *text)
{
	FILE *f;

	mkdir("h", 0700);
	if (!(f = fopen("h/config", "w")))
		return -1;
	fputs(text, f);
	return fclose(f);
}

static char err_text[4096];


static int
origin(const struct cli_conf *c, const char *name)
{
	const struct cli_opt *op = cli_opt_find(c->cmd, name);

	return op ? c->given[op - cli_opts] : -1;
}

static int
line_of(const struct cli_conf *c, const char *name)
{
	const struct cli_opt *op = cli_opt_find(c->cmd, name);

	return op ? c->line[op - cli_opts] : -1;
}

/* Keys set the option of their section, with - or _; [network] fills
 * what the section leaves out; the command line wins over both. */
static int
test_file_values(void)
{
	struct cli_conf c;

	CHECK_EQ(write_config(
	    "; peerfs\n"
	    "[network]\n"
	    "bootstrap = 10.0.0.1:1, 10.0.0.2:2\n"
	    "peer = 10.0.0.9:9\n"
	    "listen = 127.0.0.1:7000\n"
	    "\n"
	    "[mount]\n"
	    "cache_size = 64M\n"
	    "write-back = 2s\n"
	    "ec = 6+3\n"
	    "peer = 10.0.0.3:3\n"
	    "peer = 10.0.0.4:4\n"
	    "take_over = yes\n"
	    "debug = off\n"
	    "[supplier]\n"
	    "quota = 2G\n"
	    "daemon = true\n"), 0);
	char **argv = ARGV("mount", "--home", "h", "--write-back", "1s", "mnt");

	CHECK_EQ(cli_parse(CLI_MOUNT, test_argc(argv), argv, &c), CLI_RUN);
	CHECK_EQ(c.cache_size, 64ull << 20);
	CHECK_EQ(c.write_back_ms, 1000);
	CHECK(c.ec.k == 6 && c.ec.m == 3);
	CHECK(c.take_over && !c.debug);
	CHECK_EQ(c.peers.n, 2);	/* [mount] replaces [network] */
	CHECK(!strcmp(c.peers.v[0], "10.0.0.3:3"));
	CHECK(!strcmp(c.peers.v[1], "10.0.0.4:4"));
	CHECK_EQ(c.bootstrap.n, 2);
	CHECK(!strcmp(c.bootstrap.v[1], "10.0.0.2:2"));
	CHECK(c.config_found);
	CHECK(!strcmp(c.config + strlen(c.config) - 9, "/h/config"));
	CHECK_EQ(origin(&c, "cache-size"), CLI_FROM_FILE);
	CHECK_EQ(line_of(&c, "cache-size"), 8);
	CHECK_EQ(origin(&c, "bootstrap"), CLI_FROM_NET);
	CHECK_EQ(line_of(&c, "bootstrap"), 3);
	CHECK_EQ(origin(&c, "peer"), CLI_FROM_FILE);
	CHECK_EQ(line_of(&c, "peer"), 12);
	CHECK_EQ(origin(&c, "write-back"), CLI_FROM_ARGV);
	CHECK_EQ(origin(&c, "block-size"), 0);
	CHECK(cli_given(&c, "ec"));	/* settle_ec refuses a change */
	cli_conf_free(&c);

	/* A list on the command line replaces the file's. */
	char **argv2 = ARGV("mount", "--home", "h", "--peer", "1.2.3.4:5",
	    "mnt");
	CHECK_EQ(cli_parse(CLI_MOUNT, test_argc(argv2), argv2, &c), CLI_RUN);
	CHECK_EQ(c.peers.n, 1);
	CHECK(!strcmp(c.peers.v[0], "1.2.3.4:5"));
	cli_conf_free(&c);

	char **sargv = ARGV("supplier", "--home", "h");
	CHECK_EQ(cli_parse(CLI_SUPPLIER, test_argc(sargv), sargv, &c), CLI_RUN);
	CHECK_EQ(c.quota, 2ull << 30);
	CHECK(c.daemon);
	CHECK(c.listen && !strcmp(c.listen, "127.0.0.1:7000"));
	CHECK_EQ(c.bootstrap.n, 2);
	cli_conf_free(&c);

	/* No file: the defaults, and nothing is said to come from it. */
	char **argv3 = ARGV("mount", "--home", "none", "mnt");
	CHECK_EQ(cli_parse(CLI_MOUNT, test_argc(argv3), argv3, &c), CLI_RUN);
	CHECK(!c.config_found);
	CHECK_EQ(c.cache_size, 32ull << 20);
	CHECK_EQ(origin(&c, "cache-size"), 0);
	return 0;
}

/* A mistake anywhere in the file is an error naming the file and line,
 * whichever command reads it. */
static int
test_file_errors(void)
{
	static const struct {
		const char *text, *want;
		int line;
	} cases[] = {
		{ "[mount]\ncache_size = lots\n", "bad cache_size 'lots'", 2 },
		{ "[mount]\n\nblock_size = 5K\n", "block_size 5K is out of "
		    "bounds", 3 },
		{ "[supplier]\nno_such = 1\n", "unknown key 'no_such' in "
		    "[supplier]", 2 },
		{ "[network]\ncache_size = 1M\n", "unknown key 'cache_size' "
		    "in [network]", 2 },
		{ "[mount]\nhome = /x\n", "unknown key 'home'", 2 },
		{ "[mount]\nf = true\n", "unknown key 'f'", 2 },
		{ "[disk]\nquota = 1G\n", "unknown section [disk]", 1 },
		{ "[supplier]\nquota = 1G\n  [moutn]\n", "unknown section "
		    "[moutn]", 3 },
		{ "quota = 1G\n", "'quota' before any section", 1 },
		{ "[mount]\njunk\n", "not INI", 2 },
		{ "[mount]\ndebug = maybe\n", "bad debug 'maybe' (true or "
		    "false)", 2 },
		{ "[network]\nbootstrap = a:1, nocolon\n", "bad bootstrap "
		    "'nocolon'", 2 },
	};
	char **argv = ARGV("supplier", "--home", "h");
	struct cli_conf c;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char where[64];

		CHECK_EQ(write_config(cases[i].text), 0);
		CHECK_EQ(test_parse_caught(CLI_SUPPLIER, argv, &c,
		    err_text, sizeof err_text), CLI_USAGE);
		snprintf(where, sizeof where, "h/config:%d: ", cases[i].line);
		if (!strstr(err_text, where) || !strstr(err_text,
		    cases[i].want)) {
			fprintf(stderr, "case %zu: got: %s", i, err_text);
			return 1;
		}
		cli_conf_free(&c);
	}
	return 0;
}

/* -o: peerfs's options as NAME=VALUE, FUSE's passed on, mount(8)'s
 * dropped, anything else refused. */
static int
test_mount_o(void)
{
	char **argv = ARGV("mount", "-o", "ec=6+3,cache_size=64M,allow_other",
	    "-o", "_netdev,noauto,user,x-systemd.automount,take-over,rw",
	    "-ofsname=vault", "--write-back", "3s", "mnt");
	struct cli_conf c;

	CHECK_EQ(cli_parse(CLI_MOUNT, test_argc(argv), argv, &c), CLI_RUN);
	CHECK(c.ec.k == 6 && c.ec.m == 3);
	CHECK_EQ(c.cache_size, 64ull << 20);
	CHECK_EQ(c.write_back_ms, 3000);
	CHECK(c.take_over);
	CHECK(c.fuse_opts && !strcmp(c.fuse_opts, "allow_other,rw,"
	    "fsname=vault"));
	CHECK_EQ(origin(&c, "cache-size"), CLI_FROM_ARGV);
	CHECK_EQ(c.nargs, 1);
	cli_conf_free(&c);

	/* Only noise: nothing for FUSE. */
	char **argv2 = ARGV("mount", "-o", "_netdev,noauto", "mnt");
	CHECK_EQ(cli_parse(CLI_MOUNT, test_argc(argv2), argv2, &c), CLI_RUN);
	CHECK(c.fuse_opts == NULL);
	cli_conf_free(&c);

	/* -o wins over the file, as the command line does. */
	CHECK_EQ(write_config("[mount]\ncache_size = 1M\n"), 0);
	char **argv3 = ARGV("mount", "--home", "h", "-o", "cache_size=2M",
	    "mnt");
	CHECK_EQ(cli_parse(CLI_MOUNT, test_argc(argv3), argv3, &c), CLI_RUN);
	CHECK_EQ(c.cache_size, 2ull << 20);
	cli_conf_free(&c);

	static const struct {
		const char *o, *want;
	} bad[] = {
		{ "allow_other,frobnicate", "unknown -o option 'frobnicate'" },
		{ "cache_size=lots", "bad -o cache_size 'lots'" },
		{ "cache_size", "-o cache-size needs a value" },
		{ "home=/x", "unknown -o option 'home=/x'" },
		{ "leave", "unknown -o option 'leave'" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char **a = ARGV("mount", "-o", (char *)bad[i].o, "mnt");

		CHECK_EQ(test_parse_caught(CLI_MOUNT, a, &c,
		    err_text, sizeof err_text), CLI_USAGE);
		if (!strstr(err_text, bad[i].want)) {
			fprintf(stderr, "-o %s: got: %s", bad[i].o, err_text);
			return 1;
		}
		cli_conf_free(&c);
	}
	return 0;
}

/* What `peerfs config` prints of a value reads back as the same value:
 * its output is a valid config file. */
static int
test_format_round_trip(void)
{
	static const enum cli_cmd cmds[] = { CLI_MOUNT, CLI_SUPPLIER };
	char text[4096];

	CHECK_EQ(write_config("[network]\nbootstrap = a:1,b:2\n[mount]\n"
	    "write_back = 1500ms\nrebuild_rate = 1536K\ncache_size = 0\n"), 0);
	for (size_t k = 0; k < 2; k++) {
		char **argv = ARGV((char *)cli_commands[cmds[k]].name,
		    "--home", "h", "mnt");
		struct cli_conf c, d;

		CHECK_EQ(cli_parse_opts(cmds[k], test_argc(argv), argv, &c),
		    CLI_RUN);
		memset(&d, 0, sizeof d);
		d.cmd = cmds[k];
		for (int i = 0; i < cli_nopts; i++) {
			const struct cli_opt *op = &cli_opts[i];

			/* Without a default, an unset value is shown as
			 * not set, not as a value. */
			if (!(op->cmds & (1u << cmds[k])) || !op->name ||
			    op->kind == CLI_STRING || (!op->def && !c.given[i]))
				continue;
			cli_opt_format(op, &c, text, sizeof text);
			if (op->kind == CLI_LIST) {
				if (!text[0])
					continue;
				CHECK(!strcmp(text, "a:1,b:2"));
				continue;
			}
			CHECK_EQ(cli_opt_set(op, text, &d), 0);
			CHECK_MEM((char *)&c + op->off, (char *)&d + op->off,
			    op->kind == CLI_EC ? sizeof(struct cli_ec) :
			    op->kind == CLI_FLAG ? sizeof(int) :
			    sizeof(uint64_t));
		}
		if (cmds[k] == CLI_MOUNT) {
			const struct cli_opt *wb = cli_opt_find(CLI_MOUNT,
			    "write-back");

			cli_opt_format(wb, &c, text, sizeof text);
			CHECK(!strcmp(text, "1500ms"));
		}
		cli_conf_free(&c);
	}
	return 0;
}

/* mount(8)'s -f (fake) mounts nothing; a missing operand is a usage
 * error, not a mount. */
static int
test_mount_helper_args(void)
{
	char **fake = ARGV("mount.peerfs", "h", "mnt", "-f", "-o", "rw");
	char **one = ARGV("mount.peerfs", "h");
	char **ns = ARGV("mount.peerfs", "h", "mnt", "-N", "1");
	char **three = ARGV("mount.peerfs", "h", "mnt", "extra");
	int fd = open("stderr.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	dup2(fd, 2);	/* the usage lines */
	CHECK_EQ(cli_mount_helper(test_argc(fake), fake), 0);
	CHECK_EQ(cli_mount_helper(test_argc(one), one), CLI_USAGE);
	CHECK_EQ(cli_mount_helper(test_argc(ns), ns), CLI_USAGE);
	CHECK_EQ(cli_mount_helper(test_argc(three), three), CLI_USAGE);
	return 0;
}

const struct test tests_config[] = {
	{ "file_values", test_file_values },
	{ "file_errors", test_file_errors },
	{ "mount_o", test_mount_o },
	{ "format_round_trip", test_format_round_trip },
	{ "mount_helper_args", test_mount_helper_args },
	{ NULL, NULL },
};
