/* epoll dispatch and timerfd timers.
 *
 * The loop owns no fds but its epoll fd; owners register embedded watches and stay responsible
 * for closing their fds. A callback may delete any watch, including its own, during dispatch.
 */
#include "loop.h"

#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#define SV_LOOP_BATCH 64

int sv_loop_init(struct sv_loop *loop, struct sv_err *err)
{
	loop->stop = false;
	loop->deferred = NULL;
	loop->n_deferred = loop->cap_deferred = 0;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		return sv_err_set(err, errno, "epoll_create1: %s", strerror(errno));
	return 0;
}

static void flush_deferred(struct sv_loop *loop)
{
	for (size_t i = 0; i < loop->n_deferred; i++)
		free(loop->deferred[i]);
	loop->n_deferred = 0;
}

void sv_loop_defer_free(struct sv_loop *loop, void *p)
{
	if (loop->n_deferred == loop->cap_deferred) {
		size_t cap = loop->cap_deferred ? 2 * loop->cap_deferred : 64;
		void **n = realloc(loop->deferred, cap * sizeof(*n));
		if (!n)
			return; /* freeing now could be a use after free: leaking is the safe choice */
		loop->deferred = n;
		loop->cap_deferred = cap;
	}
	loop->deferred[loop->n_deferred++] = p;
}

void sv_loop_close(struct sv_loop *loop)
{
	flush_deferred(loop);
	free(loop->deferred);
	loop->deferred = NULL;
	loop->cap_deferred = 0;
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
}

int sv_loop_add(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0)
		return -errno;
	w->added = true;
	return 0;
}

int sv_loop_mod(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
		return -errno;
	return 0;
}

void sv_loop_del(struct sv_loop *loop, struct sv_watch *w)
{
	if (!w->added)
		return;
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->added = false;
}

void sv_loop_quit(struct sv_loop *loop)
{
	loop->stop = true;
}

int sv_loop_dispatch(struct sv_loop *loop, int timeout_ms)
{
	struct epoll_event evs[SV_LOOP_BATCH];
	int n = epoll_wait(loop->epfd, evs, SV_LOOP_BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n && !loop->stop; i++) {
		struct sv_watch *w = evs[i].data.ptr;
		/* A callback earlier in this batch may have removed this watch. */
		if (w->added)
			w->fn(loop, w, evs[i].events);
	}
	flush_deferred(loop);
	loop->batch++;
	return 0;
}

int sv_loop_run(struct sv_loop *loop)
{
	while (!loop->stop) {
		int r = sv_loop_dispatch(loop, -1);
		if (r < 0)
			return r;
	}
	return 0;
}

static void timer_ready(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)events;
	struct sv_timer *t = w->data;
	uint64_t expirations;
	if (read(w->fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return; /* spurious (EAGAIN after a re-arm): nothing to do */
	t->fn(loop, t);
}

int sv_timer_init(struct sv_loop *loop, struct sv_timer *t,
		  void (*fn)(struct sv_loop *, struct sv_timer *), void *data)
{
	t->fn = fn;
	t->data = data;
	t->w.fn = timer_ready;
	t->w.data = t;
	t->w.added = false;
	t->w.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (t->w.fd < 0)
		return -errno;
	int r = sv_loop_add(loop, &t->w, EPOLLIN);
	if (r < 0) {
		close(t->w.fd);
		t->w.fd = -1;
	}
	return r;
}

int sv_timer_arm(struct sv_timer *t, uint64_t ms, uint64_t interval_ms)
{
	struct itimerspec its = {
		.it_value = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000},
		.it_interval = {.tv_sec = (time_t)(interval_ms / 1000),
				.tv_nsec = (long)(interval_ms % 1000) * 1000000},
	};
	if (ms == 0)
		its.it_value.tv_nsec = 1; /* zero would disarm */
	if (timerfd_settime(t->w.fd, 0, &its, NULL) < 0)
		return -errno;
	return 0;
}

int sv_timer_disarm(struct sv_timer *t)
{
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	if (timerfd_settime(t->w.fd, 0, &its, NULL) < 0)
		return -errno;
	return 0;
}

void sv_timer_close(struct sv_loop *loop, struct sv_timer *t)
{
	if (t->w.fd < 0)
		return;
	sv_loop_del(loop, &t->w);
	close(t->w.fd);
	t->w.fd = -1;
}
