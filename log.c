/* log.c - timestamped lines to one FILE; safe from any thread (stdio locks). */
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_prog = "peerfs";
static enum log_level log_level = LOG_INFO;
static FILE *log_file;

void
log_init(const char *prog, enum log_level level, FILE *file)
{
	log_prog = prog;
	log_level = level;
	log_file = file;
}

void
log_set_file(FILE *file)
{
	log_file = file;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

const char *
log_peer_text(char *out, size_t size, const void *text, size_t len)
{
	const unsigned char *s = text;
	size_t cap, i;

	if (size == 0)
		return "";
	cap = size - 1 < LOG_PEER_TEXT_MAX ? size - 1 : LOG_PEER_TEXT_MAX;
	if (!s)
		len = 0;
	if (len > cap && cap >= 3)
		cap -= 3;		/* room for "..." */
	for (i = 0; i < len && i < cap; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	if (i < len && size - 1 - i >= 3) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	FILE *f = log_file ? log_file : stderr;
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	va_list ap;

	if (lvl > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
	flockfile(f);
	fprintf(f, "%s.%03ld %s[%d] %s: ", stamp, ts.tv_nsec / 1000000,
	    log_prog, (int)getpid(), names[lvl]);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fflush(f);
	funlockfile(f);
}
