/* crypto/ec.c - liberasurecode wrapper.
 *
 * Fragments come back from peers, so cr_ec_decode() checks every header
 * itself before liberasurecode sees it: liberasurecode trusts the sizes in
 * a header and would read past a short or forged fragment. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <erasurecode.h>
/* erasurecode.h drags in <syslog.h>, whose LOG_INFO and LOG_DEBUG macros
 * would shadow our log levels. */
#undef LOG_INFO
#undef LOG_DEBUG

#include "crypto/crypto.h"
#include "log.h"

/* Exported by liberasurecode, declared only in its internal headers:
 * verifies the header's own checksum (it reads the header alone). */
int is_invalid_fragment_header(fragment_header_t *header);

struct cr_ec {
	int desc;		/* liberasurecode instance, read-only */
	int k, m;
	ec_backend_id_t backend;
};

static const struct {
	ec_backend_id_t id;
	int w;
	const char *name;
} backends[] = {
	{ EC_BACKEND_ISA_L_RS_VAND, 8, "isa_l_rs_vand" },
	{ EC_BACKEND_LIBERASURECODE_RS_VAND, 16, "liberasurecode_rs_vand" },
};

/* liberasurecode codes (and its passed-through errno) -> -errno. */
static int
ec_err(int rc)
{
	switch (-rc) {
	case EINSUFFFRAGS:	return -EIO;
	case EBADHEADER:
	case EBADCHKSUM:	return -EBADMSG;
	case EINVALIDPARAMS:	return -EINVAL;
	case EBACKENDNOTSUPP:
	case EECMETHODNOTIMPL:
	case EBACKENDINITERR:
	case EBACKENDINUSE:
	case EBACKENDNOTAVAIL:	return -ENOTSUP;
	case ENOMEM:		return -ENOMEM;
	default:		return -EIO;
	}
}

int
cr_ec_new(struct cr_ec **out, int k, int m)
{
	struct ec_args args;
	struct cr_ec *ec;
	int desc = -1;
	size_t i;

	if (k < 1 || m < 1 || k + m > CR_EC_MAX)
		return -EINVAL;
	ec = calloc(1, sizeof *ec);
	if (!ec)
		return -ENOMEM;
	for (i = 0; i < sizeof backends / sizeof backends[0]; i++) {
		if (!liberasurecode_backend_available(backends[i].id))
			continue;
		memset(&args, 0, sizeof args);
		args.k = k;
		args.m = m;
		args.w = backends[i].w;
		args.hd = m;
		args.ct = CHKSUM_NONE;	/* we keep BLAKE2b hashes ourselves */
		desc = liberasurecode_instance_create(backends[i].id, &args);
		if (desc > 0)
			break;
		log_debug("%s: %s %d+%d: error %d", __func__,
		    backends[i].name, k, m, desc);
	}
	if (desc <= 0) {
		free(ec);
		log_error("%s: no erasure code backend for %d+%d", __func__,
		    k, m);
		return -ENOTSUP;
	}
	ec->desc = desc;
	ec->k = k;
	ec->m = m;
	ec->backend = backends[i].id;
	*out = ec;
	return 0;
}

void
cr_ec_free(struct cr_ec *ec)
{
	if (!ec)
		return;
	liberasurecode_instance_destroy(ec->desc);
	free(ec);
}

const char *
cr_ec_backend(const struct cr_ec *ec)
{
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
		if (backends[i].id == ec->backend)
			return backends[i].name;
	return "unknown";
}

int
cr_ec_k(const struct cr_ec *ec)
{
	return ec->k;
}

int
cr_ec_m(const struct cr_ec *ec)
{
	return ec->m;
}

int
cr_ec_encode(struct cr_ec *ec, const void *data, size_t len,
    unsigned char *frags[CR_EC_MAX], size_t *frag_len)
{
	char **d = NULL, **p = NULL;
	uint64_t flen = 0;
	int i, rc;

	/* liberasurecode keeps sizes in int and headers in uint32. */
	if (len > INT_MAX / 2)
		return -EINVAL;
	rc = liberasurecode_encode(ec->desc, data, len, &d, &p, &flen);
	if (rc != 0)
		return ec_err(rc);	/* it cleaned up after itself */
	for (i = 0; i < ec->k; i++)
		frags[i] = (unsigned char *)d[i];
	for (i = 0; i < ec->m; i++)
		frags[ec->k + i] = (unsigned char *)p[i];
	/* Hand back the pointer arrays now (empty: free(NULL) per entry);
	 * cr_ec_encode_free() rebuilds them for the fragments. */
	memset(d, 0, sizeof *d * ec->k);
	memset(p, 0, sizeof *p * ec->m);
	liberasurecode_encode_cleanup(ec->desc, d, p);
	*frag_len = flen;
	return 0;
}

void
cr_ec_frag_free(void *frag)
{
	free(frag);	/* liberasurecode_encode_cleanup frees each so */
}

void
cr_ec_encode_free(struct cr_ec *ec, unsigned char *frags[CR_EC_MAX])
{
	char **d, **p;
	int i;

	d = calloc(ec->k, sizeof *d);
	p = calloc(ec->m, sizeof *p);
	if (!d || !p) {
		/* No memory for the arrays the cleanup call wants: the
		 * fragments are plain malloc()/posix_memalign() memory. */
		free(d);
		free(p);
		for (i = 0; i < ec->k + ec->m; i++)
			free(frags[i]);
		goto out;
	}
	for (i = 0; i < ec->k; i++)
		d[i] = (char *)frags[i];
	for (i = 0; i < ec->m; i++)
		p[i] = (char *)frags[ec->k + i];
	liberasurecode_encode_cleanup(ec->desc, d, p);
out:
	for (i = 0; i < ec->k + ec->m; i++)
		frags[i] = NULL;
}

/* Reads and checks a fragment header (frag may be unaligned).
 * -EINVAL when it is not a sound liberasurecode header. */
static int
read_header(fragment_header_t *h, const unsigned char *frag, size_t frag_len)
{
	if (frag_len < sizeof *h || frag_len > INT_MAX)
		return -EINVAL;
	memcpy(h, frag, sizeof *h);
	/* Versions before 1.2.0 carry no header checksum. */
	if (h->magic != LIBERASURECODE_FRAG_HEADER_MAGIC ||
	    h->libec_version < (1u << 16 | 2u << 8) ||
	    h->libec_version > liberasurecode_get_version() ||
	    is_invalid_fragment_header(h) ||
	    h->meta.idx >= CR_EC_MAX)
		return -EINVAL;
	/* Payload and backend metadata must fill the fragment exactly. */
	if ((uint64_t)h->meta.size + h->meta.frag_backend_metadata_size !=
	    frag_len - sizeof *h)
		return -EINVAL;
	return 0;
}

/* liberasurecode's encode pads the data to its aligned size and cuts that
 * into k equal payloads, data fragment i taking the i-th (its
 * fragment_header_t first, then the payload, then any backend metadata).
 * Backends without metadata (both of ours) make fragments of exactly
 * header + payload bytes: that is checked, not assumed. */
int
cr_ec_data_layout(const struct cr_ec *ec, size_t data_len, size_t frag_len,
    size_t *hdr, size_t *payload)
{
	int aligned;

	if (data_len > INT_MAX / 2)
		return -EINVAL;
	aligned = liberasurecode_get_aligned_data_size(ec->desc, data_len);
	if (aligned <= 0 || aligned % ec->k != 0 ||
	    (size_t)aligned < data_len)
		return -EINVAL;
	if (frag_len != sizeof(fragment_header_t) + (size_t)aligned / ec->k)
		return frag_len > sizeof(fragment_header_t) +
		    (size_t)aligned / ec->k ? -ENOTSUP : -EINVAL;
	*hdr = sizeof(fragment_header_t);
	*payload = (size_t)aligned / ec->k;
	return 0;
}

int
cr_ec_frag_index(const unsigned char *frag, size_t frag_len)
{
	fragment_header_t h;

	if (!frag || read_header(&h, frag, frag_len) < 0)
		return -EINVAL;
	return (int)h.meta.idx;
}

/* Picks at most one well-formed fragment per index into use[]; returns
 * how many, or -EBADMSG when well-formed fragments disagree. */
static int
pick_fragments(struct cr_ec *ec, unsigned char *const *frags, int n,
    size_t frag_len, char *use[CR_EC_MAX], uint64_t *orig)
{
	fragment_header_t h;
	int i, got = 0, want_len;

	for (i = 0; i < CR_EC_MAX; i++)
		use[i] = NULL;
	for (i = 0; i < n; i++) {
		if (!frags[i] || read_header(&h, frags[i], frag_len) < 0 ||
		    h.meta.idx >= (uint32_t)(ec->k + ec->m) ||
		    h.meta.backend_id != ec->backend)
			continue;
		if (h.meta.orig_data_size > INT_MAX / 2)
			return -EBADMSG;
		if (got == 0) {
			*orig = h.meta.orig_data_size;
			want_len = liberasurecode_get_fragment_size(ec->desc,
			    (int)*orig);
			if (want_len < 0 || (size_t)want_len +
			    sizeof(fragment_header_t) != frag_len)
				return -EBADMSG;
		} else if (h.meta.orig_data_size != *orig) {
			return -EBADMSG;
		}
		if (use[h.meta.idx])
			continue;	/* a duplicate adds nothing */
		use[h.meta.idx] = (char *)frags[i];
		got++;
	}
	return got;
}

/* With every data fragment at hand the data is their payloads end to end
 * (what liberasurecode's decode returns then, after copying the fragments
 * twice and the result once more): copied straight into out. 1 when a
 * data fragment is missing or carries backend metadata (then decode). */
static int
join_data(struct cr_ec *ec, char *const use[CR_EC_MAX], uint64_t orig,
    unsigned char *out)
{
	fragment_header_t h;
	uint64_t done = 0;
	int i;

	for (i = 0; i < ec->k; i++) {
		if (!use[i])
			return 1;
		memcpy(&h, use[i], sizeof h);
		if (h.meta.frag_backend_metadata_size != 0)
			return 1;
	}
	for (i = 0; i < ec->k && done < orig; i++) {
		uint64_t n;

		memcpy(&h, use[i], sizeof h);
		n = orig - done < h.meta.size ? orig - done : h.meta.size;
		memcpy(out + done, use[i] + sizeof h, n);
		done += n;
	}
	return done == orig ? 0 : -EBADMSG;
}

int
cr_ec_decode(struct cr_ec *ec, unsigned char *const *frags, int n,
    size_t frag_len, void *out, size_t out_cap, size_t *out_len)
{
	char *use[CR_EC_MAX], *avail[CR_EC_MAX], *dec = NULL;
	uint64_t orig = 0, dlen = 0;
	int i, got, rc;

	if (n < 0 || (n > 0 && !frags))
		return -EINVAL;
	got = pick_fragments(ec, frags, n, frag_len, use, &orig);
	if (got < 0)
		return got;
	if (got < ec->k)
		return -EIO;
	if (orig > out_cap)
		return -ENOSPC;
	if ((rc = join_data(ec, use, orig, out)) <= 0) {
		if (rc < 0)
			return rc;
		*out_len = orig;
		return 0;
	}
	got = 0;
	for (i = 0; i < ec->k + ec->m; i++)
		if (use[i])
			avail[got++] = use[i];
	rc = liberasurecode_decode(ec->desc, avail, got, frag_len, 0, &dec,
	    &dlen);
	if (rc != 0)
		return ec_err(rc);
	if (dlen != orig) {
		rc = -EBADMSG;
	} else {
		if (dlen)
			memcpy(out, dec, dlen);
		*out_len = dlen;
	}
	liberasurecode_decode_cleanup(ec->desc, dec);
	return rc;
}

int
cr_ec_reconstruct(struct cr_ec *ec, unsigned char *const *frags, int n,
    size_t frag_len, int idx, unsigned char *out)
{
	char *use[CR_EC_MAX], *avail[CR_EC_MAX];
	uint64_t orig = 0;
	int i, got, rc;

	if (n < 0 || (n > 0 && !frags) || idx < 0 || idx >= ec->k + ec->m)
		return -EINVAL;
	got = pick_fragments(ec, frags, n, frag_len, use, &orig);
	if (got < 0)
		return got;
	if (got < ec->k)
		return -EIO;
	got = 0;
	for (i = 0; i < ec->k + ec->m; i++)
		if (use[i] && i != idx)
			avail[got++] = use[i];
	if (got < ec->k)
		return -EIO;
	rc = liberasurecode_reconstruct_fragment(ec->desc, avail, got,
	    (int)frag_len, idx, (char *)out);
	if (rc != 0)
		return ec_err(rc);
	return cr_ec_frag_index(out, frag_len) == idx ? 0 : -EBADMSG;
}
