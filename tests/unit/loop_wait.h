/* Unit-test helper: run an event loop until a condition holds or a deadline passes. */
#ifndef TESTS_UNIT_LOOP_WAIT_H
#define TESTS_UNIT_LOOP_WAIT_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "supervisor/loop.h"

static inline uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct loop_waiter {
	bool (*cond)(void *);
	void *arg;
	uint64_t deadline;
	bool timed_out;
};

static inline void loop_wait_tick(struct sv_loop *loop, struct sv_timer *t)
{
	struct loop_waiter *w = t->data;
	if (w->cond(w->arg)) {
		sv_loop_quit(loop);
	} else if (now_ms() > w->deadline) {
		w->timed_out = true;
		sv_loop_quit(loop);
	}
}

/* Run @loop until @cond(@arg) holds (true) or @ms pass (false); @cond is polled every 2 ms. */
static inline bool run_until(struct sv_loop *loop, bool (*cond)(void *), void *arg, unsigned ms)
{
	struct loop_waiter w = {.cond = cond, .arg = arg, .deadline = now_ms() + ms};
	struct sv_timer t;
	ck_assert_int_eq(sv_timer_init(loop, &t, loop_wait_tick, &w), 0);
	ck_assert_int_eq(sv_timer_arm(&t, 2, 2), 0);
	loop->stop = false;
	ck_assert_int_eq(sv_loop_run(loop), 0);
	sv_timer_close(loop, &t);
	return !w.timed_out;
}

#endif
