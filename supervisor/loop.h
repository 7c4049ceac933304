/* The single-threaded event loop: epoll over signalfd, timerfds, pidfds and sockets.
 *
 * Every fd the supervisor waits on is registered here with a callback. Callbacks must never
 * block; slow work belongs on a worker that posts back through an fd. An object embedding a
 * watch is freed through sv_loop_defer_free, never directly from a callback. Later modules (the egress
 * proxy, the gateway session, the SSH server) plug in with sv_loop_add and sv_timer.
 */
#ifndef SV_LOOP_H
#define SV_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct sv_loop;
struct sv_watch;

typedef void (*sv_watch_fn)(struct sv_loop *loop, struct sv_watch *w, uint32_t events);

/* Embedded in the owner's state; borrowed by the loop while registered. */
struct sv_watch {
	int fd;
	sv_watch_fn fn;
	void *data;
	bool added;
};

struct sv_loop {
	int epfd;
	bool stop;
	void **deferred; /* freed after the current batch of events (sv_loop_defer_free) */
	size_t n_deferred, cap_deferred;
	uint64_t batch; /* counts dispatched batches: an object retired in an earlier batch has no
			 * events left in the current one, so it may be reused */
};

int sv_loop_init(struct sv_loop *loop, struct sv_err *err);
void sv_loop_close(struct sv_loop *loop);

/* Register @w (fd, fn and data set by the caller) for @events (EPOLLIN, EPOLLOUT, ...). */
int sv_loop_add(struct sv_loop *loop, struct sv_watch *w, uint32_t events);
int sv_loop_mod(struct sv_loop *loop, struct sv_watch *w, uint32_t events);
/* Unregister; safe to call on a watch that is not registered. Does not close the fd. */
void sv_loop_del(struct sv_loop *loop, struct sv_watch *w);

/* Free @p (with free(3)) once the current batch of events is dispatched: an object embedding a
 * watch may be closed by a callback while its events are still queued in the batch. */
void sv_loop_defer_free(struct sv_loop *loop, void *p);

/* Dispatch events until sv_loop_quit. Returns 0, or -errno if epoll itself fails. */
int sv_loop_run(struct sv_loop *loop);
/* Wait at most @timeout_ms (0: not at all) and dispatch one batch of events. A loop can be nested
 * in another this way: its epoll fd, registered there for EPOLLIN, is readable while it has
 * events, and the outer callback dispatches them with @timeout_ms 0. Returns 0 or -errno. */
int sv_loop_dispatch(struct sv_loop *loop, int timeout_ms);
void sv_loop_quit(struct sv_loop *loop);

/* One-shot or periodic timer on a timerfd of CLOCK_MONOTONIC. */
struct sv_timer {
	struct sv_watch w;
	void (*fn)(struct sv_loop *loop, struct sv_timer *t);
	void *data;
};

int sv_timer_init(struct sv_loop *loop, struct sv_timer *t,
		  void (*fn)(struct sv_loop *, struct sv_timer *), void *data);
/* Arm to fire after @ms milliseconds, then every @interval_ms (0 = once). */
int sv_timer_arm(struct sv_timer *t, uint64_t ms, uint64_t interval_ms);
int sv_timer_disarm(struct sv_timer *t);
void sv_timer_close(struct sv_loop *loop, struct sv_timer *t);

#endif
