/* cli/sim.c - `peerfs sim`: the durability simulator's report (sim/). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "sim/sim.h"

int
cmd_sim(int argc, char **argv)
{
	struct cli_conf o;
	FILE *f = NULL;
	int rc;

	if ((rc = cli_parse(CLI_SIM, argc, argv, &o)) != CLI_RUN)
		return rc;
	if (o.sim_config && !(f = fopen(o.sim_config, "r"))) {
		fprintf(stderr, "peerfs sim: %s: %s\n", o.sim_config,
		    strerror(errno));
		return 1;
	}
	rc = sim_report(f, o.sim_seed, (int)o.sim_jobs, o.sim_quick, stdout,
	    o.sim_out);
	if (f)
		fclose(f);
	if (rc < 0) {
		fprintf(stderr, "peerfs sim: %s\n", rc == -EINVAL ?
		    "bad scenario (see the line above, or a value out of "
		    "range)" : strerror(-rc));
		return 1;
	}
	return 0;
}
