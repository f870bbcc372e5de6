/* cli/progress.c - the progress of long work (umount's upload, pin's
 * fetch, check's audit): on a terminal one bar redrawn in place, else
 * plain lines a log or a script can read (see cli/cli.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

#define BAR_MS		500	/* a bar is redrawn this often */
#define LINE_MS		5000	/* a plain line is written this often */

int64_t
cli_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
cli_fmt_bytes(char *buf, size_t size, double b)
{
	if (b >= 1 << 30)
		snprintf(buf, size, "%.1f GiB", b / (1 << 30));
	else if (b >= 1 << 20)
		snprintf(buf, size, "%.1f MiB", b / (1 << 20));
	else
		snprintf(buf, size, "%.0f KiB", b / 1024);
}

void
cli_progress_start(struct cli_progress *pg, const char *cmd,
    const char *unit, int lines)
{
	*pg = (struct cli_progress){ .cmd = cmd, .unit = unit };
	pg->mode = isatty(2) ? CLI_PROGRESS_BAR : lines ? CLI_PROGRESS_LINES :
	    CLI_PROGRESS_NONE;
	pg->start_ms = cli_mono_ms();
}

void
cli_progress_show(struct cli_progress *pg, long long left, long long total,
    long long bytes_left, int force)
{
	int64_t now = cli_mono_ms();
	char bytes[64] = "", rate[32];
	int width = 24, fill;
	long long done;

	if (pg->mode == CLI_PROGRESS_NONE || (!force && now < pg->next_ms))
		return;
	pg->next_ms = now + (pg->mode == CLI_PROGRESS_BAR ? BAR_MS : LINE_MS);
	if (left < 0)
		left = 0;
	if (total > pg->total)
		pg->total = total;
	if (left > pg->total)
		pg->total = left;
	done = pg->total - left;
	if (bytes_left >= 0) {
		/* The rate, smoothed, from how fast the bytes left fall. */
		if (pg->last_ms && now > pg->last_ms) {
			double inst = (pg->last_bytes - bytes_left) * 1000.0 /
			    (double)(now - pg->last_ms);

			if (inst < 0)
				inst = 0;
			pg->rate = pg->rate == 0 ? inst :
			    0.7 * pg->rate + 0.3 * inst;
		}
		pg->last_bytes = bytes_left;
		cli_fmt_bytes(bytes, sizeof bytes, (double)bytes_left);
		cli_fmt_bytes(rate, sizeof rate, pg->rate);
		snprintf(bytes + strlen(bytes), sizeof bytes - strlen(bytes),
		    " left, %s/s, ", rate);
	}
	pg->last_ms = now;
	pg->drawn = 1;
	if (pg->mode == CLI_PROGRESS_LINES) {
		fprintf(stderr, "peerfs %s: %lld/%lld %s, %s%llds\n", pg->cmd,
		    done, pg->total, pg->unit, bytes,
		    (long long)((now - pg->start_ms) / 1000));
		return;
	}
	fill = pg->total > 0 ? (int)(done * width / pg->total) : width;
	fprintf(stderr, "\r[%.*s%.*s] %lld/%lld %s, %s%llds   ", fill,
	    "########################", width - fill,
	    "------------------------", done, pg->total, pg->unit, bytes,
	    (long long)((now - pg->start_ms) / 1000));
	fflush(stderr);
}

void
cli_progress_end(struct cli_progress *pg)
{
	if (pg->mode == CLI_PROGRESS_BAR && pg->drawn)
		fputc('\n', stderr);
	pg->drawn = 0;
}
