/* worker.c - named background threads running a pass function, with kick
 * and stop (worker.h). One lock and one condition per worker; the
 * condition is timed on CLOCK_MONOTONIC, so setting the wall clock moves
 * no deadline.
 *
 * Kicks are counters, not flags, so that no kick is lost: w->kicks counts
 * worker_kick() calls, and each thread compares it with the value it saw
 * when its pass began (wthread.pass_gen). A thread waits only while the
 * two are equal, and both are read under w->lock, so a kick that lands
 * while the pass runs, or after the pass last looked at its queue, ends
 * the next wait at once. worker_kick_one() leaves a token (w->kick_one)
 * that the first pass to start takes. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

#define NAME_LEN 16	/* pthread_setname_np's limit, with the NUL */

struct wthread {
	struct worker *w;
	pthread_t th;
	int idx;
	int started;		/* th is joinable */
	/* w->kicks when this pass began (protected by w->lock) */
	uint64_t pass_gen;
	/* the same, moved on by a worker_sleep() that reported a kick */
	uint64_t sleep_gen;
};

struct worker {
	struct worker_conf conf;	/* read-only once started */
	char name[NAME_LEN];		/* conf.name points here */
	pthread_mutex_t lock;		/* never held while a pass runs */
	pthread_cond_t cond;		/* kick, go, stop; monotonic */
	uint64_t kicks;			/* worker_kick() count; lock */
	int kick_one;			/* worker_kick_one() tokens not yet
					 * taken, <= nthreads; lock */
	int go;				/* *out is set; lock */
	atomic_int stopping;		/* set under lock, read anywhere */
	int nthreads;
	struct wthread t[];
};

/* The wthread whose pass runs on this thread, for worker_sleep(). */
static __thread struct wthread *self;

int64_t
worker_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* now + ms, saturated: anything past INT64_MAX is WORKER_IDLE (never). */
static int64_t
deadline(int64_t now, int64_t ms)
{
	return ms >= WORKER_IDLE - now ? WORKER_IDLE : now + ms;
}

/* One wait on w->cond (w->lock held) until due, a monotonic ms time;
 * callers loop on their own condition (spurious wakeups, other threads'
 * kicks), so the deadline is absolute and never stretches. */
static void
wait_until(struct worker *w, int64_t due)
{
	struct timespec ts;

	if (due == WORKER_IDLE) {
		pthread_cond_wait(&w->cond, &w->lock);
		return;
	}
	ts.tv_sec = due / 1000;
	ts.tv_nsec = (long)(due % 1000) * 1000000;
	pthread_cond_timedwait(&w->cond, &w->lock, &ts);
}

static void
set_name(const struct wthread *t)
{
	const struct worker *w = t->w;
	char buf[NAME_LEN], sfx[12] = "";
	size_t n = 0, len;

	if (w->nthreads > 1)
		n = (size_t)snprintf(sfx, sizeof sfx, "/%d", t->idx);
	/* Cut the name, not the index: top -H tells the threads apart. */
	len = strnlen(w->name, NAME_LEN - 1 - n);
	memcpy(buf, w->name, len);
	memcpy(buf + len, sfx, n + 1);
	pthread_setname_np(pthread_self(), buf);
}

/* Linux nice is per thread (a task of its own), so setpriority() on the
 * thread id touches this thread only. Best effort: lowering it needs a
 * privilege peerfs does not ask for. */
static void
set_nice(const struct worker *w)
{
	id_t tid = (id_t)syscall(SYS_gettid);
	int cur;

	if (w->conf.nice == 0)
		return;
	errno = 0;
	cur = getpriority(PRIO_PROCESS, tid);
	if ((cur == -1 && errno != 0) ||
	    setpriority(PRIO_PROCESS, tid, cur + w->conf.nice) < 0)
		log_debug("%s: nice %+d: %s", w->name, w->conf.nice,
		    strerror(errno));
}

/* Waits (w->lock held) until thread t should run a pass: kicked since its
 * last pass began, a kick_one token left, or due passed. Returns 1 then,
 * 0 when w is stopping. */
static int
wait_turn(struct worker *w, struct wthread *t, int64_t due)
{
	while (!atomic_load(&w->stopping)) {
		if (w->kicks != t->pass_gen || w->kick_one > 0)
			return 1;
		if (due != WORKER_IDLE && worker_now_ms() >= due)
			return 1;
		wait_until(w, due);
	}
	return 0;
}

static void *
thread_main(void *arg)
{
	struct wthread *t = arg;
	struct worker *w = t->w;
	int64_t due, ms;

	self = t;
	set_name(t);
	set_nice(w);
	pthread_mutex_lock(&w->lock);
	while (!w->go && !atomic_load(&w->stopping))
		pthread_cond_wait(&w->cond, &w->lock);
	due = deadline(worker_now_ms(), w->conf.first_ms);
	while (wait_turn(w, t, due)) {
		/* The snapshot that makes a kick from now on count. */
		t->pass_gen = t->sleep_gen = w->kicks;
		if (w->kick_one > 0)
			w->kick_one--;
		pthread_mutex_unlock(&w->lock);
		ms = w->conf.pass(w->conf.arg, t->idx);
		if (ms == WORKER_EXIT)
			return NULL;
		assert(ms >= 0);
		due = deadline(worker_now_ms(), ms);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Makes every thread of w leave its wait, then joins them; wake (when
 * asked) ends passes blocked elsewhere. */
static void
halt(struct worker *w, int wake)
{
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->stopping, 1);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (wake && w->conf.wake)
		w->conf.wake(w->conf.arg);
	for (int i = 0; i < w->nthreads; i++)
		if (w->t[i].started)
			pthread_join(w->t[i].th, NULL);
}

static void
destroy(struct worker *w)
{
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static int
cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t ca;
	int rc;

	if ((rc = pthread_condattr_init(&ca)) != 0)
		return -rc;
	if ((rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
		rc = pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
	return -rc;
}

int
worker_start(struct worker **out, const struct worker_conf *c)
{
	int n = c->threads > 0 ? c->threads : 1;
	struct worker *w;
	int rc = 0;

	if (c->pass == NULL || c->name == NULL)
		return -EINVAL;
	if ((w = calloc(1, sizeof *w + (size_t)n * sizeof w->t[0])) == NULL)
		return -ENOMEM;
	w->conf = *c;
	snprintf(w->name, sizeof w->name, "%s", c->name);
	w->conf.name = w->name;
	w->conf.threads = w->nthreads = n;
	atomic_init(&w->stopping, 0);
	if ((rc = cond_init_monotonic(&w->cond)) < 0) {
		free(w);
		return rc;
	}
	pthread_mutex_init(&w->lock, NULL);
	for (int i = 0; i < n; i++) {
		w->t[i].w = w;
		w->t[i].idx = i;
		if ((rc = -pthread_create(&w->t[i].th, NULL, thread_main,
		    &w->t[i])) < 0)
			break;
		w->t[i].started = 1;
	}
	if (rc < 0) {
		halt(w, 0);	/* no pass ran: nothing for wake to end */
		destroy(w);
		return rc;
	}
	/* Threads hold back their first pass until *out is set: a pass that
	 * reads it (to sleep, or to check stopping) never sees it unset. */
	*out = w;
	pthread_mutex_lock(&w->lock);
	w->go = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void
worker_stop(struct worker *w)
{
	if (w == NULL)
		return;
	assert(self == NULL || self->w != w);	/* would join itself */
	halt(w, 1);
	destroy(w);
}

void
worker_kick(struct worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->kicks++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void
worker_kick_one(struct worker *w)
{
	if (w == NULL)
		return;
	if (w->nthreads == 1) {
		worker_kick(w);
		return;
	}
	pthread_mutex_lock(&w->lock);
	if (w->kick_one < w->nthreads)
		w->kick_one++;
	/* Broadcast, not signal: the one thread signalled could be in a
	 * worker_sleep(), which leaves tokens alone; an idle one must see
	 * it. The threads that find no token left wait again. */
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int
worker_stopping(const struct worker *w)
{
	return atomic_load(&w->stopping);
}

int
worker_sleep(struct worker *w, int64_t ms)
{
	struct wthread *t = self;
	int64_t due = deadline(worker_now_ms(), ms);
	int rc;

	assert(t != NULL && t->w == w);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		if (atomic_load(&w->stopping)) {
			rc = -ECANCELED;
			break;
		}
		if (w->kicks != t->sleep_gen) {
			t->sleep_gen = w->kicks;
			rc = 1;
			break;
		}
		if (due != WORKER_IDLE && worker_now_ms() >= due) {
			rc = 0;
			break;
		}
		wait_until(w, due);
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}
