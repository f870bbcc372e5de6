/* cli/config.c - where options come from besides the command line:
 * HOME/config (INI, read by Debian's libinih), `-o` options of `peerfs
 * mount`, mount(8)'s helper form (mount.peerfs, and fuse3's mount.fuse3
 * for type fuse.peerfs), and `peerfs config`, which shows the result.
 *
 * The option table (cli/options.c) stays the only list of names, kinds,
 * defaults and bounds: a key of the file or of -o is an option's long
 * name (with '_' for '-', as -o lists cannot hold some spellings the
 * shell can), and its value goes through cli_opt_set like argv's. */
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"

/* ---- text kept for the conf's lifetime ---------------------------------- */

struct mem {
	struct mem *next;
	char s[];
};

/* A copy of s[0..n) (s NULL: n bytes of room, empty) that lives until
 * cli_conf_free(c). */
static char *
keep(struct cli_conf *c, const char *s, size_t n)
{
	struct mem *m = malloc(sizeof *m + n + 1);

	if (!m)
		return NULL;
	if (s)
		memcpy(m->s, s, n);
	m->s[s ? n : 0] = '\0';
	m->next = c->mem;
	c->mem = m;
	return m->s;
}

void
cli_conf_free(struct cli_conf *c)
{
	struct mem *m = c->mem, *next;

	for (; m; m = next) {
		next = m->next;
		free(m);
	}
	c->mem = NULL;
}

/* "cache_size" -> "cache-size" into buf; 0, or -1 when too long. */
static int
option_name(const char *key, size_t n, char *buf, size_t size)
{
	if (n >= size)
		return -1;
	for (size_t i = 0; i < n; i++)
		buf[i] = key[i] == '_' ? '-' : key[i];
	buf[n] = '\0';
	return 0;
}

/* The option `name` of cmd that a file or -o may set, or NULL. */
static const struct cli_opt *
settable(enum cli_cmd cmd, const char *name)
{
	const struct cli_opt *op = cli_opt_find(cmd, name);

	if (!op || !op->name ||
	    (op->flags & (CLI_ARGV_ONLY | CLI_HIDDEN | CLI_MOUNTOPTS)))
		return NULL;
	return op;
}

/* Sets op from text (a LIST: values separated by commas or blanks) and
 * records where it came from. 0, or an error from cli_opt_set with the
 * bad value in *bad. */
static int
set_from(struct cli_conf *c, const struct cli_opt *op, const char *text,
    int from, int line, const char **bad)
{
	int i = (int)(op - cli_opts), rc;
	char *copy, *item, *save;

	if (op->kind != CLI_LIST) {
		if (!(copy = keep(c, text, strlen(text))))
			return -ENOMEM;
		*bad = copy;
		if ((rc = cli_opt_set(op, copy, c)) < 0)
			return rc;
	} else {
		/* A list replaces what a weaker source gave, and grows with
		 * the same source's repeated keys. */
		if (c->given[i] != from)
			((struct cli_list *)((char *)c + op->off))->n = 0;
		if (!(copy = keep(c, text, strlen(text))))
			return -ENOMEM;
		for (item = strtok_r(copy, ", \t", &save); item;
		    item = strtok_r(NULL, ", \t", &save)) {
			*bad = item;
			if ((rc = cli_opt_set(op, item, c)) < 0)
				return rc;
		}
	}
	c->given[i] = (unsigned char)from;
	c->line[i] = line;
	return 0;
}

/* ---- HOME/config -------------------------------------------------------- */

struct entry {
	char *section, *key, *value;
	int line;
};

struct ini {
	FILE *f;
	int line, at_start;	/* lines begun; the last read ended one */
	struct entry *v;
	int n, cap, nomem;
	int bad_line;		/* of the first unknown [section], or 0 */
	char bad[64];
};

static int
known_section(const char *name, size_t n)
{
	return (n == 5 && !strncmp(name, "mount", 5)) ||
	    (n == 8 && !strncmp(name, "supplier", 8)) ||
	    (n == 7 && !strncmp(name, "network", 7));
}

/* libinih's reader, counting lines for the handler (Debian builds inih
 * without INI_HANDLER_LINENO). */
static char *
ini_read(char *str, int num, void *stream)
{
	struct ini *in = stream;
	char *r = fgets(str, num, in->f);

	if (r) {
		size_t n = strlen(r);
		const char *p = r + strspn(r, " \t");

		/* libinih tells the handler of keys only: a section holding
		 * none would pass unseen. */
		if (in->at_start && *p == '[' && !in->bad_line) {
			size_t len = strcspn(p + 1, "]\n");

			if (!known_section(p + 1, len)) {
				in->bad_line = in->line + 1;
				snprintf(in->bad, sizeof in->bad, "%.*s",
				    (int)len, p + 1);
			}
		}
		in->line += in->at_start;
		in->at_start = n > 0 && r[n - 1] == '\n';
	}
	return r;
}

static int
ini_entry(void *user, const char *section, const char *key,
    const char *value)
{
	struct ini *in = user;
	struct entry *e;

	if (in->n == in->cap) {
		int cap = in->cap ? 2 * in->cap : 32;
		struct entry *v = realloc(in->v, (size_t)cap * sizeof *v);

		if (!v)
			return in->nomem = 1, 0;
		in->v = v;
		in->cap = cap;
	}
	e = &in->v[in->n];
	e->section = strdup(section);
	e->key = strdup(key);
	e->value = strdup(value ? value : "");
	e->line = in->line;
	if (!e->section || !e->key || !e->value) {
		free(e->section);
		free(e->key);
		free(e->value);
		return in->nomem = 1, 0;
	}
	in->n++;
	return 1;
}

static void
ini_free(struct ini *in)
{
	for (int i = 0; i < in->n; i++) {
		free(in->v[i].section);
		free(in->v[i].key);
		free(in->v[i].value);
	}
	free(in->v);
}

/* The option an entry names, or NULL. A [network] key is an option of
 * mount or supplier marked CLI_NETWORK; *cmd is a command taking it. */
static const struct cli_opt *
entry_opt(const struct entry *e, enum cli_cmd *cmd)
{
	char name[64];
	const struct cli_opt *op;

	if (option_name(e->key, strlen(e->key), name, sizeof name) < 0)
		return NULL;
	if (!strcmp(e->section, "mount") || !strcmp(e->section, "supplier")) {
		*cmd = e->section[0] == 'm' ? CLI_MOUNT : CLI_SUPPLIER;
		return settable(*cmd, name);
	}
	if (strcmp(e->section, "network"))
		return NULL;
	*cmd = CLI_MOUNT;
	if (!(op = settable(*cmd, name))) {
		*cmd = CLI_SUPPLIER;
		op = settable(*cmd, name);
	}
	return op && (op->flags & CLI_NETWORK) ? op : NULL;
}

static int
file_error(const struct cli_conf *c, int line, const char *fmt, const char *a,
    const char *b)
{
	fprintf(stderr, "peerfs %s: %s:%d: ", cli_commands[c->cmd].name,
	    c->config, line);
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return CLI_USAGE;
}

/* Every entry is checked, whichever command reads the file, so that a
 * mistake in [supplier] shows at the next mount too. */
static int
check_entries(struct cli_conf *c, const struct ini *in)
{
	for (int i = 0; i < in->n; i++) {
		const struct entry *e = &in->v[i];
		struct cli_conf scratch;
		const struct cli_opt *op;
		const char *bad = e->value;
		enum cli_cmd cmd;
		char msg[512];
		int rc;

		if (!e->section[0])
			return file_error(c, e->line, "'%s' before any section "
			    "(%s[mount], [supplier] or [network])", e->key, "");
		if (!known_section(e->section, strlen(e->section)))
			return file_error(c, e->line, "unknown section [%s] (%s"
			    "[mount], [supplier] or [network])", e->section,
			    "");
		if (!(op = entry_opt(e, &cmd)))
			return file_error(c, e->line, "unknown key '%s' in [%s] "
			    "(see `peerfs mount --help`, `peerfs supplier "
			    "--help`; [network] holds listen, bootstrap, dht, "
			    "peer)", e->key, e->section);
		memset(&scratch, 0, sizeof scratch);
		scratch.cmd = cmd;
		rc = set_from(&scratch, op, e->value, CLI_FROM_FILE, e->line,
		    &bad);
		if (rc < 0) {
			cli_value_error(op, e->key, bad, rc, msg, sizeof msg);
			cli_conf_free(&scratch);
			return file_error(c, e->line, "[%s] %s", e->section,
			    msg);
		}
		cli_conf_free(&scratch);
	}
	return CLI_RUN;
}

int
cli_config_apply(struct cli_conf *c)
{
	struct ini in = { .at_start = 1 };
	const char *section = c->cmd == CLI_MOUNT ? "mount" : "supplier";
	char *home = cli_home(c->home);
	int rc;

	if (!home)
		return 1;
	snprintf(c->config, sizeof c->config, "%s/config", home);
	free(home);
	if (!(in.f = fopen(c->config, "r"))) {
		if (errno == ENOENT)
			return CLI_RUN;
		fprintf(stderr, "peerfs %s: %s: %s\n", cli_commands[c->cmd].name,
		    c->config, strerror(errno));
		return CLI_USAGE;
	}
	c->config_found = 1;
	rc = ini_parse_stream(ini_read, &in, ini_entry, &in);
	fclose(in.f);
	if (in.nomem || rc < 0) {
		ini_free(&in);
		fprintf(stderr, "peerfs: out of memory\n");
		return 1;
	}
	if (rc > 0) {
		ini_free(&in);
		return file_error(c, rc, "not INI: want [section], key = value, "
		    "or a comment starting with ; or #%s%s", "", "");
	}
	if (in.bad_line) {
		ini_free(&in);
		return file_error(c, in.bad_line, "unknown section [%s] (%s"
		    "[mount], [supplier] or [network])", in.bad, "");
	}
	if ((rc = check_entries(c, &in)) != CLI_RUN) {
		ini_free(&in);
		return rc;
	}
	/* [network] first, the command's section over it; the command line
	 * over both. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < in.n; i++) {
			const struct entry *e = &in.v[i];
			const struct cli_opt *op;
			const char *bad;
			enum cli_cmd cmd;
			char name[64];
			int from = pass ? CLI_FROM_FILE : CLI_FROM_NET;

			if (strcmp(e->section, pass ? section : "network"))
				continue;
			entry_opt(e, &cmd);
			option_name(e->key, strlen(e->key), name, sizeof name);
			if (!(op = settable(c->cmd, name)) ||
			    c->given[op - cli_opts] == CLI_FROM_ARGV)
				continue;
			if (set_from(c, op, e->value, from, e->line, &bad) < 0) {
				ini_free(&in);
				return 1;	/* checked above: memory */
			}
		}
	ini_free(&in);
	return CLI_RUN;
}

/* ---- -o ----------------------------------------------------------------- */

/* FUSE's own mount options (libfuse 3's fuse_session_new and the kernel's
 * mount flags), passed through; "=" ends those that take a value. */
static const char *const fuse_own[] = {
	"allow_other", "allow_root", "auto_unmount", "default_permissions",
	"fsname=", "subtype=", "max_read=", "blkdev", "blksize=", "context=",
	"fscontext=", "defcontext=", "rootcontext=", "rw", "ro", "suid",
	"nosuid", "dev", "nodev", "exec", "noexec", "async", "sync", "atime",
	"noatime", "dirsync", "max_idle_threads=", "max_threads=",
};

/* mount(8)'s and fstab's bookkeeping, meaningless to the filesystem:
 * accepted and dropped, as sshfs does. */
static const char *const mount_noise[] = {
	"_netdev", "noauto", "auto", "user", "users", "nouser", "owner",
	"group", "nofail", "defaults", "comment=", "x-",
};

/* 1 when item is in list: equal to an entry, or starting with an entry
 * that ends in '=' or '-'. */
static int
listed(const char *const *list, size_t n, const char *item, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(list[i]);
		char last = list[i][l - 1];

		if ((last == '=' || last == '-') ? len >= l &&
		    !strncmp(item, list[i], l) :
		    len == l && !strncmp(item, list[i], l))
			return 1;
	}
	return 0;
}

int
cli_mount_o(struct cli_conf *c, const char *opts)
{
	const char *p = opts;
	char *fuse = NULL, *q;
	size_t nf = 0;

	/* What FUSE gets: the earlier -o's and this one's share. */
	if (c->fuse_opts)
		nf = strlen(c->fuse_opts);
	if (!(fuse = keep(c, NULL, nf + strlen(opts) + 2)))
		return 1;
	if (c->fuse_opts)
		memcpy(fuse, c->fuse_opts, nf);
	fuse[nf] = '\0';
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *eq = memchr(p, '=', len);
		const struct cli_opt *op;
		char name[64], msg[512];
		const char *bad;
		int rc;

		if (len == 0) {
			p++;
			continue;
		}
		if (option_name(p, eq ? (size_t)(eq - p) : len, name,
		    sizeof name) == 0 && (op = settable(c->cmd, name))) {
			if (!eq && op->kind != CLI_FLAG)
				return cli_bad_usage(cli_commands[c->cmd].name,
				    "-o %s needs a value (%s=...)", name, name);
			q = keep(c, eq ? eq + 1 : "", eq ? len - (size_t)(eq -
			    p) - 1 : 0);
			if (!q)
				return 1;
			rc = set_from(c, op, q, CLI_FROM_ARGV, 0, &bad);
			if (rc < 0) {
				snprintf(name, sizeof name, "-o %.*s", (int)(eq ?
				    eq - p : (ptrdiff_t)len), p);
				cli_value_error(op, name, bad, rc, msg,
				    sizeof msg);
				return cli_bad_usage(cli_commands[c->cmd].name,
				    "%s", msg);
			}
		} else if (listed(fuse_own, sizeof fuse_own /
		    sizeof fuse_own[0], p, len)) {
			if (nf)
				fuse[nf++] = ',';
			memcpy(fuse + nf, p, len);
			fuse[nf += len] = '\0';
		} else if (!listed(mount_noise, sizeof mount_noise /
		    sizeof mount_noise[0], p, len)) {
			return cli_bad_usage(cli_commands[c->cmd].name,
			    "unknown -o option '%.*s' (peerfs's long options "
			    "as NAME=VALUE, FUSE's allow_other, ro, ...)",
			    (int)len, p);
		}
		p += len;
	}
	c->fuse_opts = nf ? fuse : NULL;
	return CLI_RUN;
}

/* ---- mount(8)'s helper form --------------------------------------------- */

int
cli_mount_helper(int argc, char **argv)
{
	char *args[2 * 64 + 8];
	const char *ops[64];
	int nargs = 0, nops = 0, rc, fake = 0;
	const char *src = NULL, *mnt = NULL;

	/* mount(8) calls helpers as `mount.TYPE SRC DIR [-sfnv] [-N NS]
	 * [-o OPTS] [-t TYPE]`; mount.fuse3 as `TYPE SRC DIR -o OPTS`. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-o") || !strcmp(a, "-t") || !strcmp(a, "-N")) {
			if (++i == argc) {
				fprintf(stderr, "mount.peerfs: %s needs a value\n",
				    a);
				return CLI_USAGE;
			}
			if (a[1] == 'N') {
				fprintf(stderr, "mount.peerfs: -N (another "
				    "mount namespace) is not supported\n");
				return CLI_USAGE;
			}
			if (a[1] == 'o' && nops < 64)
				ops[nops++] = argv[i];
		} else if (!strncmp(a, "-o", 2)) {
			if (nops < 64)
				ops[nops++] = a + 2;
		} else if (a[0] == '-' && a[1] && strspn(a + 1, "sfnvi") ==
		    strlen(a + 1)) {
			/* sloppy, verbose, no mtab, no helper: nothing to do;
			 * fake: stop before mounting */
			fake |= strchr(a, 'f') != NULL;
		} else if (!src) {
			src = a;
		} else if (!mnt) {
			mnt = a;
		} else {
			fprintf(stderr, "mount.peerfs: unexpected argument '%s' "
			    "(usage: mount.peerfs HOME MOUNTPOINT [-o OPTIONS])\n",
			    a);
			return CLI_USAGE;
		}
	}
	if (!src || !mnt) {
		fprintf(stderr, "usage: mount.peerfs HOME MOUNTPOINT [-o "
		    "OPTIONS] (as mount(8) runs it for type peerfs or "
		    "fuse.peerfs; see peerfs mount --help)\n");
		return CLI_USAGE;
	}
	if (fake)
		return 0;
	args[nargs++] = "mount";
	args[nargs++] = "--home";
	args[nargs++] = (char *)src;
	for (int i = 0; i < nops; i++) {
		args[nargs++] = "-o";
		args[nargs++] = (char *)ops[i];
	}
	args[nargs++] = "--";
	args[nargs++] = (char *)mnt;
	args[nargs] = NULL;
	rc = cmd_mount(nargs, args);
	return rc;
}

/* ---- `peerfs config` ---------------------------------------------------- */

static void
show(const struct cli_conf *c, FILE *f)
{
	char value[4096], key[64];

	fprintf(f, "[%s]\n", cli_commands[c->cmd].name);
	for (int i = 0; i < cli_nopts; i++) {
		const struct cli_opt *op = &cli_opts[i];

		if (!settable(c->cmd, op->name ? op->name : "") ||
		    op != cli_opt_find(c->cmd, op->name))
			continue;
		snprintf(key, sizeof key, "%s", op->name);
		for (char *k = key; *k; k++)
			*k = *k == '-' ? '_' : *k;
		cli_opt_format(op, c, value, sizeof value);
		/* Unset options without a default (0 means "decide") are
		 * left out: "max_fragments = 0" would not read back. */
		if (c->given[i] == 0 && (!value[0] || !op->def)) {
			fprintf(f, "; %s is not set\n", key);
			continue;
		}
		fprintf(f, "%s = %s", key, value);
		switch (c->given[i]) {
		case CLI_FROM_ARGV:
			fprintf(f, "\t; command line\n");
			break;
		case CLI_FROM_FILE:
		case CLI_FROM_NET:
			fprintf(f, "\t; %s:%d\n", c->config, c->line[i]);
			break;
		default:
			fprintf(f, "\t; default\n");
		}
	}
}

/* The configuration `cmd` would run with, given `extra` options. */
static int
show_cmd(enum cli_cmd cmd, const char *home, int nextra, char **extra)
{
	char *args[2 * CLI_OPTS_MAX + 8];
	struct cli_conf o;
	int n = 0, rc;

	/* --home first: the command's own options come after and win, as
	 * getopt keeps the last. */
	args[n++] = (char *)cli_commands[cmd].name;
	if (home) {
		args[n++] = "--home";
		args[n++] = (char *)home;
	}
	for (int i = 0; i < nextra &&
	    n < (int)(sizeof args / sizeof args[0]) - 1; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	if ((rc = cli_parse_opts(cmd, n, args, &o)) != CLI_RUN) {
		cli_conf_free(&o);
		return rc;
	}
	printf("; %s%s\n", o.config, o.config_found ? "" : " (none: every "
	    "value is the default or the command line's)");
	show(&o, stdout);
	cli_conf_free(&o);
	return 0;
}

int
cmd_config(int argc, char **argv)
{
	struct cli_conf c;
	int split = argc, rc;

	/* `peerfs config [--home DIR] [mount|supplier [OPTIONS]]`: what
	 * follows the command's name is that command's. */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "mount") || !strcmp(argv[i], "supplier")) {
			split = i;
			break;
		}
	if ((rc = cli_parse(CLI_CONFIG, split, argv, &c)) != CLI_RUN)
		return rc;
	if (split < argc)
		return show_cmd(argv[split][0] == 'm' ? CLI_MOUNT :
		    CLI_SUPPLIER, c.home, argc - split - 1, argv + split + 1);
	if ((rc = show_cmd(CLI_MOUNT, c.home, 0, NULL)) != 0)
		return rc;
	putchar('\n');
	return show_cmd(CLI_SUPPLIER, c.home, 0, NULL);
}
