/* net/deal.c - the supplier's side of the fair deal: which supplier node
 * acts for each owner (the bindings owners present in RESERVE), and what
 * that node holds for the person of this home and has proved in the
 * audits of this home's mount (<home>/ledger, store/ledger.c). The store
 * asks net_deal_earned() under its own lock, from libuv's pool threads;
 * bindings arrive on the supplier's loop: one mutex. net_deal_evict()
 * hands the mount's state in the ledger to the store's eviction rule. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "net/net.h"
#include "store/store.h"

/* Owners remembered with a binding; beyond, the oldest is replaced (an
 * owner presents its binding with every RESERVE). */
#define DEAL_BINDINGS	4096

struct net_deal {
	pthread_mutex_t lock;
	char *ledger;			/* path */
	struct stat st;			/* of the ledger last read */
	int have_st;
	struct store_ledger_ent *e;
	size_t ne;
	struct store_ledger_state ls;	/* the mount's, of the ledger read */
	struct {
		unsigned char owner[CR_PK_BYTES], node[CR_PK_BYTES];
	} *b;
	size_t nb, next;
};

int
net_deal_new(struct net_deal **out, const char *ledger_path)
{
	struct net_deal *d = calloc(1, sizeof *d);

	if (!d || !(d->ledger = strdup(ledger_path)) ||
	    !(d->b = calloc(DEAL_BINDINGS, sizeof *d->b))) {
		if (d)
			free(d->ledger);
		free(d);
		return -ENOMEM;
	}
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

void
net_deal_free(struct net_deal *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->lock);
	free(d->ledger);
	free(d->e);
	free(d->b);
	free(d);
}

int
net_deal_bind(struct net_deal *d, const unsigned char owner[CR_PK_BYTES],
    const unsigned char node[CR_PK_BYTES],
    const unsigned char bind[CR_BIND_BYTES])
{
	size_t i;

	if (cr_bind_verify(owner, node, bind) < 0)
		return -EBADMSG;
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->nb; i++)
		if (memcmp(d->b[i].owner, owner, CR_PK_BYTES) == 0)
			break;
	if (i == d->nb) {
		if (d->nb < DEAL_BINDINGS)
			i = d->nb++;
		else
			i = d->next++ % DEAL_BINDINGS;
		memcpy(d->b[i].owner, owner, CR_PK_BYTES);
	}
	memcpy(d->b[i].node, node, CR_PK_BYTES);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* Under d->lock: the ledger read again when the file changed. */
static void
ledger_fresh(struct net_deal *d)
{
	struct store_ledger_ent *e;
	struct store_ledger_state ls;
	struct stat st;
	size_t n;
	int rc;

	if (stat(d->ledger, &st) != 0) {
		free(d->e);
		d->e = NULL;
		d->ne = 0;
		d->have_st = 0;
		memset(&d->ls, 0, sizeof d->ls);
		return;
	}
	if (d->have_st && st.st_ino == d->st.st_ino &&
	    st.st_size == d->st.st_size &&
	    st.st_mtim.tv_sec == d->st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == d->st.st_mtim.tv_nsec)
		return;
	if ((rc = store_ledger_read(d->ledger, &ls, &e, &n)) < 0) {
		log_warn("supplier: ledger %s: %s (balances unchanged)",
		    d->ledger, strerror(-rc));
		return;
	}
	free(d->e);
	d->e = e;
	d->ne = n;
	d->ls = ls;
	d->st = st;
	d->have_st = 1;
}

uint64_t
net_deal_earned(void *arg, const unsigned char owner[CR_PK_BYTES])
{
	struct net_deal *d = arg;
	const unsigned char *node = owner;
	uint64_t v = 0;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->nb; i++)
		if (memcmp(d->b[i].owner, owner, CR_PK_BYTES) == 0) {
			node = d->b[i].node;
			break;
		}
	ledger_fresh(d);
	for (size_t i = 0; i < d->ne; i++)
		if (memcmp(d->e[i].pk, node, CR_PK_BYTES) == 0) {
			/* Bytes it carried for us as a relay count like
			 * bytes it holds: both are service to this home. */
			v = d->e[i].proved + d->e[i].relayed;
			break;
		}
	pthread_mutex_unlock(&d->lock);
	return v;
}

int
net_deal_evict(struct net_deal *d, struct store_frag *sf, int64_t grace_s)
{
	struct store_ledger_state ls;

	pthread_mutex_lock(&d->lock);
	ledger_fresh(d);
	ls = d->ls;
	pthread_mutex_unlock(&d->lock);
	/* Not under d->lock: the store calls net_deal_earned() back. */
	return store_frag_deal_evict(sf, (int64_t)time(NULL), grace_s, &ls);
}
