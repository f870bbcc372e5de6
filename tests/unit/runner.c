/* tests/unit/runner.c - runs every suite listed in the generated suites.inc;
 * optional arguments select suites or suite/test names by prefix. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define SUITE(name) extern const struct test tests_##name[];
#include "suites.inc"
#undef SUITE

static const struct { const char *name; const struct test *tests; } suites[] = {
#define SUITE(name) { #name, tests_##name },
#include "suites.inc"
#undef SUITE
};

static int
selected(int argc, char **argv, const char *full)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (strncmp(full, argv[i], strlen(argv[i])) == 0)
			return 1;
	return 0;
}

static int
run_one(const struct test *t)
{
	char dir[] = "/tmp/peerfs-unit-XXXXXX";
	int status;
	pid_t pid;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(1);
		alarm(300);
		_exit(t->fn());
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "  killed by signal %d%s\n", WTERMSIG(status),
		    WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
		return 1;
	}
	return WEXITSTATUS(status);
}

int
main(int argc, char **argv)
{
	int n = 0, passed = 0, failed = 0, skipped = 0;

	signal(SIGPIPE, SIG_IGN);
	for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
		for (const struct test *t = suites[s].tests; t->name; t++) {
			char full[256];
			snprintf(full, sizeof full, "%s/%s", suites[s].name, t->name);
			if (!selected(argc, argv, full))
				continue;
			int rc = run_one(t);
			n++;
			if (rc == 0) {
				passed++;
				printf("ok %d - %s\n", n, full);
			} else if (rc == 77) {
				skipped++;
				printf("ok %d - %s # SKIP\n", n, full);
			} else {
				failed++;
				printf("not ok %d - %s\n", n, full);
			}
			fflush(stdout);
		}
	}
	if (skipped)
		printf("%d skipped\n", skipped);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
