/* util.h - tiny helpers every layer may use (header only). */
#ifndef PEERFS_UTIL_H
#define PEERFS_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static inline uint32_t
get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static inline void
put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, v >> 32);
	put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t
get_be64(const unsigned char *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* A growable array of elements of one size: struct vec v = { 0 };
 * vec_push(&v, &x, sizeof x); ((T *)v.p)[i]; vec_release(&v). */
struct vec {
	void *p;
	size_t n, cap;		/* elements */
};

/* Appends one element of size bytes (copied): 0 or -ENOMEM. */
static inline int
vec_push(struct vec *v, const void *elem, size_t size)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		void *p = realloc(v->p, cap * size);

		if (p == NULL)
			return -ENOMEM;
		v->p = p;
		v->cap = cap;
	}
	memcpy((char *)v->p + v->n * size, elem, size);
	v->n++;
	return 0;
}

static inline void
vec_release(struct vec *v)
{
	free(v->p);
	v->p = NULL;
	v->n = v->cap = 0;
}

/* The host part of "HOST:PORT" or "[V6]:PORT" into host (size bytes):
 * 0, or -EINVAL when there is none or it does not fit. */
static inline int
hostport_host(const char *hostport, char *host, size_t size)
{
	const char *colon = strrchr(hostport, ':'), *h = hostport;
	size_t hl;

	if (!colon || colon == hostport)
		return -EINVAL;
	if (*h == '[')
		h++;
	hl = (size_t)(colon - h);
	if (hl && h[hl - 1] == ']')
		hl--;
	if (hl == 0 || hl >= size)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	return 0;
}

/* Lower-case hex of n bytes into out (2n+1 bytes). */
static inline void
hex_encode(char *out, const unsigned char *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

#endif
