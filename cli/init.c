/* cli/init.c - `peerfs init`: identity and master key, sealed in <home>/key. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int
cmd_init(int argc, char **argv)
{
	struct cli_conf o;
	struct cr_identity *id;
	char *home, *key, *pass = NULL, hex[2 * CR_PK_BYTES + 1];
	int rc;

	if ((rc = cli_parse(CLI_INIT, argc, argv, &o)) != CLI_RUN)
		return rc;
	if (o.no_passphrase && o.passphrase_file)
		return cli_bad_usage("init", "--no-passphrase and --passphrase-file exclude each other");
	if (cr_init() < 0)
		return 1;
	home = cli_home(o.home);
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
	if (!o.no_passphrase &&
	    (rc = cli_passphrase(o.passphrase_file, 1, 1, &pass)) < 0)
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
