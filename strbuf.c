/* strbuf.c - see strbuf.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "strbuf.h"

void
strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(sb->p + sb->len, sb->cap - sb->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			sb->failed = 1;
			return;
		}
		if (sb->len + n < sb->cap) {
			sb->len += n;
			return;
		}
		size_t cap = (sb->cap + n + 1) * 2;
		char *p = realloc(sb->p, cap);
		if (!p) {
			sb->failed = 1;
			return;
		}
		sb->p = p;
		sb->cap = cap;
	}
}

int
strbuf_take(struct strbuf *sb, char **val, size_t *len)
{
	if (!sb->failed && sb->p == NULL)
		strbuf_printf(sb, "%s", "");
	if (sb->failed) {
		strbuf_release(sb);
		return -ENOMEM;
	}
	*val = sb->p;
	*len = sb->len;
	sb->p = NULL;
	sb->len = sb->cap = 0;
	return 0;
}

void
strbuf_release(struct strbuf *sb)
{
	free(sb->p);
	sb->p = NULL;
	sb->len = sb->cap = 0;
	sb->failed = 0;
}
