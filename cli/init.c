/* cli/init.c - `peerfs init`: identity and master key, sealed in <home>/key. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char init_help[] =
"usage: peerfs init [--home DIR] [--no-passphrase | --passphrase-file F]\n"
"\n"
"Creates an Ed25519 identity and a 32-byte master secret in DIR/key,\n"
"sealed with a passphrase (Argon2id, then secretbox).\n"
"  --home DIR            home directory (default $PEERFS_HOME or ~/.peerfs)\n"
"  --no-passphrase       do not protect the key file with a passphrase\n"
"  --passphrase-file F   read the passphrase from the first line of F\n"
"                        ($PEERFS_PASSPHRASE also works; else a prompt)\n";

int
cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "home", required_argument, NULL, 'H' },
		{ "no-passphrase", no_argument, NULL, 'n' },
		{ "passphrase-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *home_opt = NULL, *pass_file = NULL;
	int no_pass = 0, c, rc;
	struct cr_identity *id;
	char *home, *key, *pass = NULL, hex[2 * CR_PK_BYTES + 1];

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'H': home_opt = optarg; break;
		case 'n': no_pass = 1; break;
		case 'p': pass_file = optarg; break;
		case 'h': fputs(init_help, stdout); return 0;
		case ':': return cli_bad_usage("init", "%s needs a value", argv[optind - 1]);
		default:  return cli_bad_usage("init", "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_bad_usage("init", "unexpected argument '%s'", argv[optind]);
	if (no_pass && pass_file)
		return cli_bad_usage("init", "--no-passphrase and --passphrase-file exclude each other");
	if (cr_init() < 0)
		return 1;
	home = cli_home(home_opt);
	if ((rc = cli_mkdir_p(home, 0700)) < 0) {
		fprintf(stderr, "peerfs init: cannot create %s: %s\n", home, strerror(-rc));
		return 1;
	}
	cli_home_tighten(home);
	key = cli_path(home, "key");
	if (access(key, F_OK) == 0) {
		fprintf(stderr, "peerfs init: %s already exists; refusing to "
		    "overwrite an identity\n", key);
		return 1;
	}
	if (!no_pass && (rc = cli_passphrase(pass_file, 1, 1, &pass)) < 0)
		return 1;
	rc = cr_keyfile_create(key, pass, &id);
	cli_passphrase_free(pass);
	if (rc < 0) {
		fprintf(stderr, "peerfs init: cannot write %s: %s\n", key, strerror(-rc));
		return 1;
	}
	for (int i = 0; i < CR_PK_BYTES; i++)
		sprintf(hex + 2 * i, "%02x", id->pk[i]);
	printf("created %s\npeer id %s\n", key, hex);
	cr_identity_free(id);
	free(key);
	free(home);
	return 0;
}
