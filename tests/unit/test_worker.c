/* tests/unit/test_worker.c - the periodic-worker helper (worker.h): passes
 * at their interval, kicks (never lost, one or all of a pool), pools,
 * WORKER_EXIT, worker_sleep(), the wake hook and a prompt stop.
 *
 * The machine is shared and noisy: a test never asks for something to
 * happen within a short time, only within generous bounds (SOON), and
 * checks that nothing happens early, which no load can break. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/test.h"
#include "worker.h"

#define SOON	5000	/* ms: "promptly", on a loaded machine */
#define HOUR	(3600 * 1000)

/* What the passes of one test saw; every field read by the test thread
 * while passes run is atomic. */
struct probe {
	struct worker	*w;
	atomic_int	 passes;
	atomic_int	 by_idx[8];
	int64_t		 at[64];	/* pass start times */
	int64_t		 ret;		/* what pass returns */
};

/* Polls until *v >= want or ms passed; returns the last value seen. */
static int
wait_count(atomic_int *v, int want, int64_t ms)
{
	int64_t end = worker_now_ms() + ms;
	int got;

	while ((got = atomic_load(v)) < want && worker_now_ms() < end)
		usleep(1000);
	return got;
}

static int64_t
count_pass(void *arg, int idx)
{
	struct probe *p = arg;
	int n = atomic_fetch_add(&p->passes, 1);

	if (n < 64)
		p->at[n] = worker_now_ms();
	atomic_fetch_add(&p->by_idx[idx], 1);
	return p->ret;
}

/* ---- timing -------------------------------------------------------------- */

static int
test_interval(void)
{
	struct probe p = { .ret = 50 };
	struct worker_conf c = { .name = "interval", .pass = count_pass,
	    .arg = &p, .first_ms = 100 };
	int64_t t0 = worker_now_ms();
	int n;

	CHECK_EQ(worker_start(&p.w, &c), 0);
	CHECK(wait_count(&p.passes, 6, SOON) >= 6);
	worker_stop(p.w);
	n = atomic_load(&p.passes);
	/* Never early: the first after first_ms, each next one at least
	 * the interval after the one before began (the same ms clock). */
	CHECK(p.at[0] >= t0 + 100);
	for (int i = 1; i < n && i < 64; i++)
		CHECK(p.at[i] - p.at[i - 1] >= 50);
	/* Stopped: no pass after worker_stop() returned. */
	usleep(200000);
	CHECK_EQ(atomic_load(&p.passes), n);
	return 0;
}

static int
test_bad_conf(void)
{
	struct probe p = { 0 };
	struct worker_conf c = { .name = "bad", .arg = &p };
	struct worker *w = NULL;

	CHECK_EQ(worker_start(&w, &c), -EINVAL);
	CHECK(w == NULL);
	c.pass = count_pass;
	c.name = NULL;
	CHECK_EQ(worker_start(&w, &c), -EINVAL);
	CHECK(w == NULL);
	worker_stop(NULL);
	return 0;
}

/* ---- kicks --------------------------------------------------------------- */

static int
test_kick_idle(void)
{
	struct probe p = { .ret = WORKER_IDLE };
	struct worker_conf c = { .name = "idle", .pass = count_pass,
	    .arg = &p };

	CHECK_EQ(worker_start(&p.w, &c), 0);
	CHECK_EQ(wait_count(&p.passes, 1, SOON), 1);
	usleep(300000);
	CHECK_EQ(atomic_load(&p.passes), 1);	/* idle until kicked */
	worker_kick(p.w);
	CHECK_EQ(wait_count(&p.passes, 2, SOON), 2);
	/* Several kicks while it waits: coalesced into passes, at least
	 * one, each kick seen by a pass that began after it. */
	worker_kick(p.w);
	worker_kick(p.w);
	worker_kick(p.w);
	CHECK(wait_count(&p.passes, 3, SOON) >= 3);
	worker_stop(p.w);
	return 0;
}

static int
test_kick_first_delay(void)
{
	struct probe p = { .ret = WORKER_IDLE };
	struct worker_conf c = { .name = "first", .pass = count_pass,
	    .arg = &p, .first_ms = HOUR };

	CHECK_EQ(worker_start(&p.w, &c), 0);
	usleep(200000);
	CHECK_EQ(atomic_load(&p.passes), 0);
	worker_kick(p.w);	/* ends the first delay */
	CHECK_EQ(wait_count(&p.passes, 1, SOON), 1);
	worker_stop(p.w);
	return 0;
}

/* A queue and the pass that drains it, to play the race a kick must win:
 * new work arriving after the pass last looked at the queue. */
struct queue {
	struct worker	*w;
	pthread_mutex_t	 lock;
	int		 queued;	/* items waiting; lock */
	atomic_int	 done;		/* items taken */
	atomic_int	 passes;
	/* when set, the first pass stops after finding the queue empty
	 * until the test has queued an item and kicked */
	atomic_int	 hold, held, release;
};

static int64_t
drain_pass(void *arg, int idx)
{
	struct queue *q = arg;
	int n;

	atomic_fetch_add(&q->passes, 1);
	pthread_mutex_lock(&q->lock);
	n = q->queued;
	q->queued = 0;
	pthread_mutex_unlock(&q->lock);
	atomic_fetch_add(&q->done, n);
	if (atomic_exchange(&q->hold, 0)) {
		/* The queue looked empty; the pass has not returned yet. */
		atomic_store(&q->held, 1);
		while (!atomic_load(&q->release))
			usleep(1000);
	}
	return WORKER_IDLE;
}

static void
queue_put(struct queue *q, int one)
{
	pthread_mutex_lock(&q->lock);
	q->queued++;
	pthread_mutex_unlock(&q->lock);
	if (one)
		worker_kick_one(q->w);
	else
		worker_kick(q->w);
}

static int
test_kick_during_pass(void)
{
	struct queue q = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct worker_conf c = { .name = "race", .pass = drain_pass,
	    .arg = &q };

	atomic_store(&q.hold, 1);
	CHECK_EQ(worker_start(&q.w, &c), 0);
	CHECK_EQ(wait_count(&q.held, 1, SOON), 1);
	queue_put(&q, 0);		/* after the pass's last look */
	atomic_store(&q.release, 1);
	/* The pass returns WORKER_IDLE; the kick must still run the next
	 * one, which takes the item. */
	CHECK_EQ(wait_count(&q.done, 1, SOON), 1);
	CHECK_EQ(atomic_load(&q.passes), 2);
	worker_stop(q.w);
	return 0;
}

struct producer {
	struct queue	*q;
	int		 n, one;
};

static void *
produce(void *arg)
{
	struct producer *pr = arg;

	for (int i = 0; i < pr->n; i++) {
		queue_put(pr->q, pr->one);
		if (i % 64 == 0)
			usleep(100);	/* let passes overlap the puts */
	}
	return NULL;
}

/* Many items, each with its kick, from two threads, against idle passes:
 * a lost wakeup leaves the last items queued for ever. Once with
 * worker_kick() on one thread, once with worker_kick_one() on a pool. */
static int
kick_storm(int threads, int one)
{
	struct queue q = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct worker_conf c = { .name = "storm", .threads = threads,
	    .pass = drain_pass, .arg = &q };
	struct producer pr = { .q = &q, .n = 3000, .one = one };
	pthread_t th[2];

	CHECK_EQ(worker_start(&q.w, &c), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, produce, &pr), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(wait_count(&q.done, 2 * pr.n, 10000), 2 * pr.n);
	worker_stop(q.w);
	return 0;
}

static int
test_kick_storm(void)
{
	return kick_storm(1, 0);
}

static int
test_kick_one_storm(void)
{
	return kick_storm(3, 1);
}

/* ---- pools --------------------------------------------------------------- */

struct pool_probe {
	atomic_int	passes;
	atomic_int	by_idx[4];
	pthread_t	th[4];
	char		name[4][16];
};

static int64_t
pool_pass(void *arg, int idx)
{
	struct pool_probe *p = arg;

	if (atomic_fetch_add(&p->by_idx[idx], 1) == 0) {
		p->th[idx] = pthread_self();
		pthread_getname_np(pthread_self(), p->name[idx],
		    sizeof p->name[idx]);
	}
	atomic_fetch_add(&p->passes, 1);
	return WORKER_IDLE;
}

static int
test_pool(void)
{
	struct pool_probe p = { 0 };
	struct worker_conf c = { .name = "upload-workers", .threads = 4,
	    .pass = pool_pass, .arg = &p };
	struct worker *w;
	char want[32];

	CHECK_EQ(worker_start(&w, &c), 0);
	CHECK_EQ(wait_count(&p.passes, 4, SOON), 4);
	/* Each idx once, each on its own thread, named <name>/<idx> with
	 * the name cut to fit 15 characters. */
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(atomic_load(&p.by_idx[i]), 1);
		for (int j = 0; j < i; j++)
			CHECK(!pthread_equal(p.th[i], p.th[j]));
		snprintf(want, sizeof want, "upload-worker/%d", i);
		CHECK(strcmp(p.name[i], want) == 0);
	}
	/* A kick: every thread once more. */
	worker_kick(w);
	CHECK_EQ(wait_count(&p.passes, 8, SOON), 8);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(atomic_load(&p.by_idx[i]), 2);
	/* A kick for one: one pass, by any one thread, and no more. */
	worker_kick_one(w);
	CHECK_EQ(wait_count(&p.passes, 9, SOON), 9);
	usleep(300000);
	CHECK_EQ(atomic_load(&p.passes), 9);
	worker_stop(w);
	return 0;
}

/* ---- WORKER_EXIT --------------------------------------------------------- */

static int64_t
exit_pass(void *arg, int idx)
{
	struct probe *p = arg;

	atomic_fetch_add(&p->passes, 1);
	atomic_fetch_add(&p->by_idx[idx], 1);
	return idx == 0 ? WORKER_EXIT : WORKER_IDLE;
}

static int
test_exit(void)
{
	struct probe p = { 0 };
	struct worker_conf c = { .name = "quit", .threads = 2,
	    .pass = exit_pass, .arg = &p };

	CHECK_EQ(worker_start(&p.w, &c), 0);
	CHECK_EQ(wait_count(&p.passes, 2, SOON), 2);
	/* Thread 0 is gone, thread 1 waits. */
	CHECK_EQ(test_threads_become("quit/0", 0), 0);
	CHECK_EQ(test_threads_named("quit/1"), 1);
	worker_kick(p.w);
	CHECK_EQ(wait_count(&p.by_idx[1], 2, SOON), 2);
	usleep(200000);
	CHECK_EQ(atomic_load(&p.by_idx[0]), 1);
	worker_stop(p.w);		/* joins the one that left too */
	CHECK_EQ(test_threads_become("quit/1", 0), 0);
	return 0;
}

/* ---- stop ---------------------------------------------------------------- */

static int
test_stop_long_sleep(void)
{
	struct probe p = { .ret = HOUR };
	struct worker_conf c = { .name = "sleepy", .threads = 3,
	    .pass = count_pass, .arg = &p };
	struct probe q = { 0 };
	struct worker_conf cq = { .name = "never", .pass = count_pass,
	    .arg = &q, .first_ms = HOUR };
	int64_t t0;

	CHECK_EQ(worker_start(&p.w, &c), 0);
	CHECK_EQ(worker_start(&q.w, &cq), 0);
	CHECK_EQ(wait_count(&p.passes, 3, SOON), 3);
	usleep(100000);
	/* Threads in an hour-long wait, and one before its first pass:
	 * stop ends the waits instead of joining after them. */
	t0 = worker_now_ms();
	worker_stop(p.w);
	worker_stop(q.w);
	CHECK(worker_now_ms() - t0 < SOON);
	CHECK_EQ(atomic_load(&p.passes), 3);
	CHECK_EQ(atomic_load(&q.passes), 0);
	CHECK_EQ(test_threads_become("sleepy/0", 0) +
	    test_threads_become("never", 0), 0);
	return 0;
}

/* ---- worker_sleep() and worker_stopping() -------------------------------- */

struct sleeper {
	struct worker	*w;
	atomic_int	 step;		/* the pass's progress */
	atomic_int	 go;		/* the test's answer */
	int		 rc[5];
	int64_t		 took[5];
	int		 saw_w, stopping_at_start;
};

static int
timed_sleep(struct sleeper *s, int i, int64_t ms)
{
	int64_t t0 = worker_now_ms();

	s->rc[i] = worker_sleep(s->w, ms);
	s->took[i] = worker_now_ms() - t0;
	atomic_store(&s->step, i + 1);
	return s->rc[i];
}

static int64_t
sleep_pass(void *arg, int idx)
{
	struct sleeper *s = arg;

	/* *out of worker_start() is set before the first pass. */
	s->saw_w = s->w != NULL;
	if (!s->saw_w)
		return WORKER_EXIT;
	s->stopping_at_start = worker_stopping(s->w);
	timed_sleep(s, 0, 100);			/* runs out */
	timed_sleep(s, 1, HOUR);		/* kicked while asleep */
	while (atomic_load(&s->go) < 1)	/* kicked before the call */
		usleep(1000);
	timed_sleep(s, 2, HOUR);
	timed_sleep(s, 3, 0);			/* that kick is spent */
	timed_sleep(s, 4, HOUR);		/* stopped */
	return WORKER_IDLE;
}

static int
test_sleep(void)
{
	struct sleeper s = { 0 };
	struct worker_conf c = { .name = "sleeper", .pass = sleep_pass,
	    .arg = &s };
	int64_t t0;

	CHECK_EQ(worker_start(&s.w, &c), 0);
	CHECK_EQ(wait_count(&s.step, 1, SOON), 1);
	CHECK(s.saw_w);
	CHECK_EQ(s.stopping_at_start, 0);
	CHECK_EQ(s.rc[0], 0);
	CHECK(s.took[0] >= 100);
	usleep(100000);
	worker_kick(s.w);
	CHECK_EQ(wait_count(&s.step, 2, SOON), 2);
	CHECK_EQ(s.rc[1], 1);
	worker_kick(s.w);
	atomic_store(&s.go, 1);
	CHECK_EQ(wait_count(&s.step, 4, SOON), 4);
	CHECK_EQ(s.rc[2], 1);
	CHECK_EQ(s.rc[3], 0);
	usleep(100000);
	CHECK_EQ(atomic_load(&s.step), 4);	/* asleep for the hour */
	t0 = worker_now_ms();
	worker_stop(s.w);
	CHECK(worker_now_ms() - t0 < SOON);
	CHECK_EQ(s.rc[4], -ECANCELED);
	return 0;
}

/* ---- the wake hook ------------------------------------------------------- */

/* A pass that blocks where the helper cannot reach: its own condition,
 * as a libuv loop blocks in epoll. Only wake() gets it out. */
struct blocker {
	struct worker	*w;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	int		 woken;		/* lock */
	atomic_int	 wakes, in_pass, saw_stopping;
};

static int64_t
block_pass(void *arg, int idx)
{
	struct blocker *b = arg;

	pthread_mutex_lock(&b->lock);
	atomic_store(&b->in_pass, 1);
	while (!b->woken)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
	atomic_store(&b->saw_stopping, worker_stopping(b->w));
	return 0;	/* would run again at once, were it not stopping */
}

static void
block_wake(void *arg)
{
	struct blocker *b = arg;

	atomic_fetch_add(&b->wakes, 1);
	pthread_mutex_lock(&b->lock);
	b->woken = 1;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static int
test_wake(void)
{
	struct blocker b = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .cond = PTHREAD_COND_INITIALIZER };
	struct worker_conf c = { .name = "blocked", .pass = block_pass,
	    .wake = block_wake, .arg = &b };
	int64_t t0;

	CHECK_EQ(worker_start(&b.w, &c), 0);
	CHECK_EQ(wait_count(&b.in_pass, 1, SOON), 1);
	worker_kick(b.w);	/* a kick does not call wake */
	usleep(100000);
	CHECK_EQ(atomic_load(&b.wakes), 0);
	t0 = worker_now_ms();
	worker_stop(b.w);
	CHECK(worker_now_ms() - t0 < SOON);
	CHECK_EQ(atomic_load(&b.wakes), 1);
	CHECK_EQ(atomic_load(&b.saw_stopping), 1);
	return 0;
}

const struct test tests_worker[] = {
	{ "interval", test_interval },
	{ "bad_conf", test_bad_conf },
	{ "kick_idle", test_kick_idle },
	{ "kick_first_delay", test_kick_first_delay },
	{ "kick_during_pass", test_kick_during_pass },
	{ "kick_storm", test_kick_storm },
	{ "kick_one_storm", test_kick_one_storm },
	{ "pool", test_pool },
	{ "exit", test_exit },
	{ "stop_long_sleep", test_stop_long_sleep },
	{ "sleep", test_sleep },
	{ "wake", test_wake },
	{ NULL, NULL },
};
