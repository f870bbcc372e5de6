/* worker.h - the one way peerfs starts a background thread: a named thread
 * (or a pool of them) running a pass function again and again, with kick,
 * stop and every wait on CLOCK_MONOTONIC (redis src/bio.c and libuv's
 * threadpool are the models).
 *
 * A pass does one round of work and says when it wants the next one. The
 * helper owns the waiting between passes: a kick (new work) ends the wait
 * at once, stop ends it for good. Work state (queues, their locks) stays
 * with the caller; the helper's lock is never held while a pass runs, so a
 * pass may take any lock and call worker_kick() on any worker.
 *
 * No lost wakeups: the helper snapshots a kick counter, under its lock,
 * just before each pass starts. A kick at any moment after that point (in
 * the middle of the pass, or between the pass's last look at its queue and
 * its return) makes the following wait return at once. A kick thus costs
 * at most one extra pass, never a missed one. */
#ifndef PEERFS_WORKER_H
#define PEERFS_WORKER_H

#include <stdint.h>

#define WORKER_IDLE INT64_MAX	/* pass(): sleep until kicked */
#define WORKER_EXIT (-1)	/* pass(): this thread is done */

struct worker;			/* defined in worker.c */

struct worker_conf {
	/* Thread name, also used in log lines (pthread_setname_np: at most
	 * 15 characters; a pool's threads are "<name>/<idx>", the name cut
	 * to fit). Copied: it need not outlive worker_start(). */
	const char *name;
	int threads;		/* threads running pass (a pool); 1 if 0 */
	/* Added to each thread's nice value (Linux nice is per thread), so
	 * background work yields to the threads that answer the user. Best
	 * effort: a failure is logged at debug level. 0 = unchanged. */
	int nice;
	/* One pass of thread idx (0 .. threads - 1), run without any lock
	 * of the helper held. Returns the ms to wait before the next pass
	 * of this thread (0 = at once), WORKER_IDLE (until kicked) or
	 * WORKER_EXIT (this thread ends; the others go on). Any other
	 * negative value is a bug (assert). */
	int64_t (*pass)(void *arg, int idx);
	/* Optional, for a pass that blocks somewhere the helper cannot
	 * reach (a libuv loop run as one long pass): called once by
	 * worker_stop(), from the stopping thread, after worker_stopping()
	 * turned 1 and before joining. It must make such a pass return
	 * (uv_async_send() whose callback checks worker_stopping()); the
	 * pass must check worker_stopping() after arming what wake
	 * triggers, since wake may run before the pass blocks. */
	void (*wake)(void *arg);
	void *arg;		/* given to pass and wake */
	int64_t first_ms;	/* delay before the first pass; 0 = at once */
};

/* Starts c->threads threads (*c is copied). Returns 0 and sets *out, or
 * -errno (-EINVAL: no pass or name; -ENOMEM; pthread_create's error):
 * then no pass has run and no thread is left running. *out is set before
 * the first pass starts, so a pass may read it: start with
 * worker_start(&ctx->w, &c) when passes call worker_sleep(ctx->w, ...).
 * A kick ends the first_ms delay early; first_ms = WORKER_IDLE waits for
 * the first kick. */
int  worker_start(struct worker **out, const struct worker_conf *c);

/* Stops every thread: worker_stopping() turns 1, waits end, wake is
 * called, then each thread is joined once its pass returns, and w is
 * freed. NULL-safe. Call it once, never from one of w's own passes. */
void worker_stop(struct worker *w);

/* The next wait of every thread of w returns at once (a thread waiting
 * now runs its pass now; one in a pass runs another right after). Kicks
 * made before a wait are coalesced into one pass. Any thread, any time
 * before worker_stop(); NULL (a worker that was never started, e.g.
 * without a network) is ignored. */
void worker_kick(struct worker *w);

/* The same for one thread of a pool: one that waits runs its pass now,
 * else the first whose pass ends runs another at once. Kicks that no
 * thread took yet are counted up to the number of threads (more would
 * not run more passes at once). Any pass that starts takes one. On a
 * single thread, the same as worker_kick(). NULL is ignored. */
void worker_kick_one(struct worker *w);

/* 1 once worker_stop() began: a long pass checks it between items and
 * returns early. Any thread; no lock taken. */
int  worker_stopping(const struct worker *w);

/* Inside a pass of w, the calling thread sleeps for ms (WORKER_IDLE: until
 * kicked or stopping), as a rate limit or a backoff would. Returns
 *   0           the time ran out;
 *   1           w was kicked by worker_kick() since this pass began, or
 *               since the last worker_sleep() that returned 1 (a kick
 *               made just before the call is not lost; at once then);
 *   -ECANCELED  w is stopping (at once, if it already was).
 * A kick it reports still makes the wait after the pass return at once.
 * worker_kick_one() on a pool does not end it: that kick is left for a
 * thread between passes. Only from a thread of w. */
int  worker_sleep(struct worker *w, int64_t ms);

/* CLOCK_MONOTONIC in ms: the clock every wait of the helper is timed on,
 * for callers' deadlines and "ms until the next pass" arithmetic. */
int64_t worker_now_ms(void);

#endif
