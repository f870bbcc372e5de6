/* strbuf.h - a growing string for reports (status, versions, check): on
 * allocation failure it goes into an error state that the caller checks
 * once at the end, so building one needs no error path per line. */
#ifndef PEERFS_STRBUF_H
#define PEERFS_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *p;		/* NUL-terminated once anything is added */
	size_t len, cap;
	int failed;		/* an allocation failed: p is incomplete */
};

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hands the string over (*val malloc()'d, "" when empty): 0, or -ENOMEM
 * when an append failed (then sb is released). */
int  strbuf_take(struct strbuf *sb, char **val, size_t *len);
void strbuf_release(struct strbuf *sb);

#endif
