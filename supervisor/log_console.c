/* stderr for log lines: direct during setup, a bounded queue drained by the event loop after.
 *
 * A stuck stderr reader must never stop PID 1: once attached, no thread ever waits on stderr
 * (until the bounded exit flush). Forked children see another pid and write directly, without
 * touching the lock or the queue. Lines are whole: the drain writes at most PIPE_BUF bytes
 * ending on a newline, which a pipe takes entirely or not at all.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log_int.h"
#include "loop.h"
#include "relay.h"

#define COMP "supervisor"

enum mode {
	MODE_DIRECT = 0, /* setup, or never attached: blocking write(2) on fd 2 */
	MODE_QUEUED,	 /* attached */
	MODE_EXIT, /* detached: non-blocking writes, waiting no later than the exit deadline */
};

static struct {
	pthread_mutex_t lock; /* guards everything below but owner (atomic) */
	atomic_int owner;     /* the attached process; 0 when not attached */
	enum mode mode;
	int fd;		/* non-blocking stderr (own open file description), or -1 */
	bool is_socket; /* fd is a dup of a socket: send(MSG_DONTWAIT) */
	bool broken;	/* the reader is gone (EPIPE...): lines are discarded */
	bool stuck;	/* the exit deadline passed with stderr full */
	uint64_t exit_deadline_ms;
	size_t head, len; /* in g_ring */
	unsigned long dropped, dropped_total;
	int efd; /* eventfd: the queue went from empty to not empty */
	struct sv_loop *loop;
	struct sv_watch ew, ow;
} C = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1, .efd = -1};

/* The process that attached or opened: a forked child is never it. */
static bool is_owner(void)
{
	int o = atomic_load_explicit(&C.owner, memory_order_acquire);
	return o != 0 && o == (int)getpid();
}

static char g_ring[SV_LOG_QUEUE_BYTES]; /* zero-initialised: .bss, not in the binary */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static ssize_t nb_write(const char *buf, size_t len)
{
	ssize_t n;
	do {
		n = C.is_socket ? send(C.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL)
				: write(C.fd, buf, len);
	} while (n < 0 && errno == EINTR);
	return n;
}

static void ring_push(const char *buf, size_t len)
{
	size_t tail = (C.head + C.len) % sizeof(g_ring);
	size_t first = sizeof(g_ring) - tail < len ? sizeof(g_ring) - tail : len;
	memcpy(g_ring + tail, buf, first);
	memcpy(g_ring, buf + first, len - first);
	C.len += len;
}

/* Up to PIPE_BUF queued bytes ending on a newline into @out. */
static size_t ring_peek(char *out)
{
	size_t n = C.len < PIPE_BUF ? C.len : PIPE_BUF;
	size_t first = sizeof(g_ring) - C.head < n ? sizeof(g_ring) - C.head : n;
	memcpy(out, g_ring + C.head, first);
	memcpy(out + first, g_ring, n - first);
	size_t k = n;
	while (k > 0 && out[k - 1] != '\n')
		k--;
	return k ? k : n; /* no newline within PIPE_BUF: cannot happen, lines are shorter */
}

static void ring_consume(size_t n)
{
	C.head = (C.head + n) % sizeof(g_ring);
	C.len -= n;
	if (!C.len)
		C.head = 0;
}

static void drop_queue_locked(void)
{
	/* Count the lines thrown away. */
	for (size_t i = 0; i < C.len; i++)
		if (g_ring[(C.head + i) % sizeof(g_ring)] == '\n') {
			C.dropped++;
			C.dropped_total++;
		}
	C.head = C.len = 0;
}

static void wake(void)
{
	uint64_t one = 1;
	ssize_t w = write(C.efd, &one, sizeof(one));
	(void)w; /* a wake-up already pending is as good */
}

/* Wait until stderr is writable or the exit deadline passes. Returns false on the deadline. */
static bool wait_writable(void)
{
	uint64_t now = mono_ms();
	if (now >= C.exit_deadline_ms)
		return false;
	struct pollfd p = {.fd = C.fd, .events = POLLOUT};
	int r = poll(&p, 1, (int)(C.exit_deadline_ms - now));
	return r > 0 || (r < 0 && errno == EINTR);
}

/* MODE_EXIT: one line, non-blocking, waiting no later than the deadline. Lock held. */
static void exit_write_locked(const char *buf, size_t len)
{
	while (len && !C.broken && !C.stuck) {
		ssize_t n = nb_write(buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			if (!wait_writable())
				C.stuck = true;
		} else {
			C.broken = true;
		}
	}
	if (len) {
		C.dropped++;
		C.dropped_total++;
	}
}

void sv_log_console_write(const char *buf, size_t len)
{
	int saved = errno;
	/* A forked child sees another pid: the plain, lock-free path. */
	if (!is_owner()) {
		(void)sv_write_all(STDERR_FILENO, buf, len);
		errno = saved;
		return;
	}
	bool need_wake = false;
	pthread_mutex_lock(&C.lock);
	if (C.mode == MODE_EXIT) {
		exit_write_locked(buf, len);
	} else if (C.mode != MODE_QUEUED || C.fd < 0) {
		(void)sv_write_all(STDERR_FILENO, buf, len); /* unpollable stderr: as before */
	} else if (C.broken) {
		C.dropped_total++;
	} else {
		if (C.len == 0) {
			ssize_t n = nb_write(buf, len);
			if (n > 0) {
				buf += n;
				len -= (size_t)n;
			} else if (n < 0 && errno != EAGAIN) {
				C.broken = true;
				len = 0;
				C.dropped_total++;
			}
			need_wake = len > 0;
		}
		if (len && C.len + len > sizeof(g_ring)) {
			C.dropped++;
			C.dropped_total++;
		} else if (len) {
			ring_push(buf, len);
		}
	}
	pthread_mutex_unlock(&C.lock);
	if (need_wake)
		wake();
	errno = saved;
}

/* Write what the queue holds until stderr is full. Loop thread only (the only consumer).
 * Returns the lines dropped so far when room came back, to report (0: nothing to say). */
static unsigned long drain(bool *blocked)
{
	char chunk[PIPE_BUF];
	*blocked = false;
	pthread_mutex_lock(&C.lock);
	while (C.len && !C.broken) {
		size_t k = ring_peek(chunk);
		/* The write happens with the lock held: it never blocks, and producers must not
		 * write around a line that is half out. */
		ssize_t n = nb_write(chunk, k);
		if (n > 0) {
			ring_consume((size_t)n);
		} else if (n < 0 && errno == EAGAIN) {
			*blocked = true;
			break;
		} else {
			C.broken = true;
			drop_queue_locked();
		}
	}
	unsigned long report = 0;
	if (C.dropped && !C.broken && C.len <= sizeof(g_ring) / 2) {
		report = C.dropped;
		C.dropped = 0;
	}
	pthread_mutex_unlock(&C.lock);
	return report;
}

static void report_drops(unsigned long n)
{
	char d[24];
	sv_fmt(d, sizeof(d), "%lu", n);
	sv_log_kv(SV_LOG_WARN, COMP, "log_lines_dropped",
		  "stderr was not read fast enough: log lines were dropped",
		  SV_KVS({"dropped", d}));
}

static void pump(struct sv_loop *loop)
{
	bool blocked;
	unsigned long report = drain(&blocked);
	if (report) {
		report_drops(report);
		report = drain(&blocked);
		if (report) { /* new drops meanwhile: kept for the next report */
			pthread_mutex_lock(&C.lock);
			C.dropped += report;
			pthread_mutex_unlock(&C.lock);
		}
	}
	if (blocked && !C.ow.added) {
		(void)sv_loop_add(loop, &C.ow, EPOLLOUT); /* failing, lines wait for a wake-up */
	} else if (!blocked && C.ow.added) {
		sv_loop_del(loop, &C.ow);
	}
}

static void on_wake(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)events;
	uint64_t v;
	ssize_t r = read(w->fd, &v, sizeof(v));
	(void)r;
	pump(loop);
}

static void on_writable(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)w;
	(void)events;
	pump(loop);
}

/* A non-blocking stderr of our own: pipes and terminals are re-opened through /proc (fd 2's own
 * open file description, shared with whoever else holds it, keeps its flags); a socket is dup'ed
 * and written with MSG_DONTWAIT.
 * Returns -1 when stderr is best written directly (a regular file, /dev/null) or cannot be made
 * non-blocking (then @why says so). */
static int stderr_nonblock(bool *is_socket, const char **why)
{
	struct stat st;
	*why = NULL;
	*is_socket = false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return -1; /* closed: writes fail at once, nothing blocks */
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
		return -1;
	if (S_ISSOCK(st.st_mode)) {
		*is_socket = true;
		return fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	}
	int fd = sv_stdio_reopen_nonblock(STDERR_FILENO, O_WRONLY);
	if (fd < 0)
		*why = strerror(-fd);
	return fd;
}

int sv_log_attach(struct sv_loop *loop, struct sv_err *err)
{
	if (C.mode == MODE_QUEUED)
		return sv_err_set(err, EBUSY, "log: already attached");
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return sv_err_set(err, errno, "log: eventfd: %s", strerror(errno));
	bool is_socket;
	const char *why;
	int fd = stderr_nonblock(&is_socket, &why);
	C.ew = (struct sv_watch){.fd = efd, .fn = on_wake};
	/* Never registered when fd < 0: writes are direct then. */
	C.ow = (struct sv_watch){.fd = fd, .fn = on_writable};
	int r = sv_loop_add(loop, &C.ew, EPOLLIN);
	if (r < 0) {
		close(efd);
		if (fd >= 0)
			close(fd);
		return sv_err_set(err, -r, "log: epoll: %s", strerror(-r));
	}
	pthread_mutex_lock(&C.lock);
	if (C.fd >= 0)
		close(C.fd); /* a previous attach's */
	C.loop = loop;
	C.efd = efd;
	C.fd = fd;
	C.is_socket = is_socket;
	C.broken = C.stuck = false;
	C.mode = MODE_QUEUED;
	atomic_store(&C.owner, (int)getpid());
	pthread_mutex_unlock(&C.lock);
	sv_log_file_start();
	if (why)
		sv_log_kv(SV_LOG_WARN, COMP, "log_stderr_blocking",
			  "stderr cannot be made non-blocking: a stalled reader can stall the "
			  "supervisor",
			  SV_KVS({"error", why}));
	return 0;
}

void sv_log_detach(void)
{
	if (!is_owner() || C.mode != MODE_QUEUED)
		return;
	sv_loop_del(C.loop, &C.ew);
	sv_loop_del(C.loop, &C.ow);
	uint64_t deadline = mono_ms() + SV_LOG_EXIT_FLUSH_MS;
	pthread_mutex_lock(&C.lock);
	C.exit_deadline_ms = deadline;
	C.mode = MODE_EXIT;
	char chunk[PIPE_BUF];
	while (C.len && !C.broken && !C.stuck) {
		size_t k = ring_peek(chunk);
		ssize_t n = nb_write(chunk, k);
		if (n > 0)
			ring_consume((size_t)n);
		else if (n < 0 && errno == EAGAIN)
			C.stuck = !wait_writable();
		else
			C.broken = true;
	}
	drop_queue_locked();
	unsigned long report = C.stuck || C.broken ? 0 : C.dropped;
	if (report)
		C.dropped = 0;
	close(C.efd);
	C.efd = -1;
	C.loop = NULL;
	pthread_mutex_unlock(&C.lock);
	if (report)
		report_drops(report);
	/* The files' writer gets what is left of the same second. */
	uint64_t now = mono_ms();
	sv_log_file_stop(now < deadline ? (unsigned)(deadline - now) : 0);
}

void sv_log_stats(struct sv_log_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&C.lock);
	out->attached = C.mode == MODE_QUEUED;
	out->queued = C.len;
	out->dropped = C.dropped;
	out->dropped_total = C.dropped_total;
	pthread_mutex_unlock(&C.lock);
	sv_log_file_stats(out->file_dropped);
}
