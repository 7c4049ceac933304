/* Bounded, back-pressured fd-to-fd copying on the event loop.
 *
 * It must never block the loop on a pollable fd and never hold more than SV_RELAY_BUF bytes.
 * A destination that cannot be polled (a regular file) is written synchronously.
 */
#include "relay.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "log.h"

static void relay_finish(struct sv_loop *loop, struct sv_relay *r)
{
	if (r->done)
		return;
	r->done = true;
	sv_loop_del(loop, &r->src);
	sv_loop_del(loop, &r->dst);
	if (r->close_src && r->src.fd >= 0)
		close(r->src.fd);
	if (r->close_dst && r->dst.fd >= 0)
		close(r->dst.fd);
	r->src.fd = r->dst.fd = -1;
	if (r->on_done)
		r->on_done(r, r->data);
}

void sv_relay_stop(struct sv_loop *loop, struct sv_relay *r)
{
	relay_finish(loop, r);
}

/* Re-register interest after a state change: read when there is room, write when there is
 * data (or, for an unpollable source, when the destination can take more). */
static void relay_update(struct sv_loop *loop, struct sv_relay *r)
{
	bool want_read = !r->src_eof && r->len == 0;
	bool want_write = r->len > 0 || (!r->src_pollable && want_read);

	if (r->src_pollable) {
		if (want_read && !r->src.added)
			(void)sv_loop_add(loop, &r->src, EPOLLIN);
		else if (!want_read && r->src.added)
			sv_loop_del(loop, &r->src);
	}
	if (r->dst_pollable) {
		if (want_write && !r->dst.added)
			(void)sv_loop_add(loop, &r->dst, EPOLLOUT);
		else if (!want_write && r->dst.added)
			sv_loop_del(loop, &r->dst);
	}
}

/* Write what is buffered. Returns false when the relay finished (destination gone). */
static bool relay_flush(struct sv_loop *loop, struct sv_relay *r)
{
	while (r->len > 0) {
		ssize_t n = write(r->dst.fd, r->buf + r->off, r->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return true;
			sv_debug("supervisor", "relay_write_failed", "%s: write: %s", r->name,
				 strerror(errno));
			relay_finish(loop, r);
			return false;
		}
		r->off += (size_t)n;
		r->len -= (size_t)n;
	}
	r->off = 0;
	if (r->src_eof) {
		relay_finish(loop, r);
		return false;
	}
	return true;
}

static void relay_fill(struct sv_relay *r)
{
	ssize_t n;
	do {
		n = read(r->src.fd, r->buf, sizeof(r->buf));
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		if (n < 0 && !(r->src_is_pty && errno == EIO))
			sv_debug("supervisor", "relay_read_failed", "%s: read: %s", r->name,
				 strerror(errno));
		r->src_eof = true;
		return;
	}
	r->off = 0;
	r->len = (size_t)n;
	if (r->on_data)
		r->on_data(r, r->data);
}

static void relay_step(struct sv_loop *loop, struct sv_relay *r)
{
	if (r->len == 0 && !r->src_eof)
		relay_fill(r);
	if (!relay_flush(loop, r))
		return;
	if (r->src_eof && r->len == 0) {
		relay_finish(loop, r);
		return;
	}
	relay_update(loop, r);
}

static void on_src(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)events;
	relay_step(loop, w->data);
}

static void on_dst(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	struct sv_relay *r = w->data;
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLOUT)) {
		relay_finish(loop, r); /* reader went away */
		return;
	}
	relay_step(loop, r);
}

int sv_relay_start(struct sv_loop *loop, struct sv_relay *r, int src, int dst)
{
	r->src = (struct sv_watch){.fd = src, .fn = on_src, .data = r};
	r->dst = (struct sv_watch){.fd = dst, .fn = on_dst, .data = r};
	r->off = r->len = 0;
	r->src_eof = r->done = false;
	r->src_pollable = true;
	r->dst_pollable = true;

	int rc = sv_loop_add(loop, &r->src, EPOLLIN);
	if (rc == -EPERM) {
		r->src_pollable = false; /* regular file: always readable */
	} else if (rc < 0) {
		return rc;
	}
	/* Probe the destination once; unpollable or blocking ones are written synchronously. */
	int fl = fcntl(dst, F_GETFL);
	rc = sv_loop_add(loop, &r->dst, EPOLLOUT);
	if (rc == 0)
		sv_loop_del(loop, &r->dst);
	if (rc < 0 || fl < 0 || !(fl & O_NONBLOCK))
		r->dst_pollable = false;
	if (!r->src_pollable && !r->dst_pollable) {
		/* Nothing to wait on at all: copy now (a file into a blocking fd). */
		while (!r->done)
			relay_step(loop, r);
		return 0;
	}
	relay_update(loop, r);
	return 0;
}

int sv_stdio_reopen_nonblock(int fd, int flags)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
		return -ENOTSUP;
	char path[64];
	sv_fmt(path, sizeof(path), "/proc/self/fd/%d", fd);
	int nfd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (nfd < 0)
		return -errno;
	struct stat nst;
	if (fstat(nfd, &nst) < 0 || nst.st_dev != st.st_dev || nst.st_ino != st.st_ino ||
	    nst.st_rdev != st.st_rdev) {
		close(nfd); /* not the same object: never write somewhere else */
		return -EXDEV;
	}
	return nfd;
}
