/* log.h - one log sink for every layer (tmux log.c style). */
#ifndef PEERFS_LOG_H
#define PEERFS_LOG_H

#include <stdio.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Set once in main() before any thread starts. NULL file = stderr. */
void log_init(const char *prog, enum log_level level, FILE *file);
void log_set_file(FILE *file);
enum log_level log_get_level(void);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Text a peer sent (an ERR reply's message, a name), made fit for a log
 * line: every byte outside printable ASCII becomes '?' (no control
 * characters, no terminal escapes, no newline to forge a line with), and
 * at most LOG_PEER_TEXT_MAX bytes are kept ("..." marks a cut). Writes a
 * NUL-terminated string into out (size bytes, at least 4) and returns
 * out, so it can be an argument of log_warn() directly. */
#define LOG_PEER_TEXT_MAX	200
const char *log_peer_text(char *out, size_t size, const void *text,
    size_t len);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
