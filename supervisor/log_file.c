/* The daily log files (contract §11): <dir>/openshell.YYYY-MM-DD.log, the text lines at info and
 * up, and <dir>/openshell-ocsf.YYYY-MM-DD.log, OCSF JSONL while switched on.
 *
 * Written only by the process that opened them. During setup the logging thread writes them
 * itself; once attached a writer thread does, from a bounded queue per file, so a slow disk never
 * stalls the loop. Never follows a symlink or opens anything but a regular file in the directory.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log_int.h"

#define COMP	  "supervisor"
#define NAME_MAX_ 96
/* Kept free under the cap for the line that says the cap was reached. */
#define CAP_NOTE_RESERVE 512
#define WRITER_CHUNK	 ((size_t)64 * 1024)
#define WRITER_STACK	 ((size_t)128 * 1024)

static const char *const prefixes[SV_LOG_FILE_KINDS] = {"openshell", "openshell-ocsf"};

struct lfile {
	int fd;
	long long day; /* of fd; -1 before the first open */
	long long size;
	bool rotated;		   /* today's .1 exists: no second rotation */
	bool capped;		   /* the restarted file reached the cap too */
	unsigned long cap_dropped; /* today, over the cap */
	atomic_ulong dropped;	   /* every line not written, for sv_log_stats */
	unsigned long q_dropped;   /* queue full, not yet noted in the file */
	int warn_errno;		   /* an open or write failure to report (io lock not held) */
	long long warned_day;	   /* one warning a day */
	char *ring;		   /* g_rings[kind] */
	size_t head, len;
};

static struct {
	pthread_mutex_t lock; /* queues and thread state */
	pthread_mutex_t io;   /* the files themselves */
	pthread_cond_t cond;  /* to the writer: data or stop */
	pthread_cond_t done_cond;
	atomic_int owner; /* 0: no files */
	int dirfd;
	long long max;
	bool thread, stop, done, abandoned;
	pthread_t tid;
	struct lfile f[SV_LOG_FILE_KINDS];
} F = {.lock = PTHREAD_MUTEX_INITIALIZER, .io = PTHREAD_MUTEX_INITIALIZER, .dirfd = -1};

/* The process that attached or opened: a forked child is never it. */
static bool is_owner(void)
{
	int o = atomic_load_explicit(&F.owner, memory_order_acquire);
	return o != 0 && o == (int)getpid();
}

static atomic_bool g_ocsf_json;
static char g_rings[SV_LOG_FILE_KINDS][SV_LOG_FILE_QUEUE_BYTES]; /* .bss, not in the binary */
static char g_wbuf[WRITER_CHUNK]; /* the writer thread's, then the final flush's */

static long long today(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec / 86400;
}

static void file_name(enum sv_log_file_kind k, long long day, bool dot1, char *buf, size_t size)
{
	char d[16];
	sv_log_day_name(day, d, sizeof(d));
	sv_fmt(buf, size, "%s.%s.log%s", prefixes[k], d, dot1 ? ".1" : "");
}

static size_t count_lines(const char *buf, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += buf[i] == '\n';
	return n;
}

static int write_raw(struct lfile *f, const char *buf, size_t len)
{
	int r = sv_write_all(f->fd, buf, len);
	if (r < 0) {
		f->warn_errno = -r;
		f->dropped += count_lines(buf, len);
		return r;
	}
	f->size += (long long)len;
	return 0;
}

/* A line of our own in the text file (never in the OCSF file, which holds OCSF objects only):
 * @kv is "key=value ..." already formatted. */
static void write_note(enum sv_log_file_kind k, const char *event, const char *msg, const char *kv)
{
	struct lfile *f = &F.f[k];
	if (k != SV_LOG_FILE_TEXT || f->fd < 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char t[40], line[512];
	sv_log_timestamp(t, sizeof(t), (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	size_t n =
	    sv_fmt(line, sizeof(line), "%s WARN %s: %s %s event=%s\n", t, COMP, msg, kv, event);
	(void)write_raw(f, line, n);
}

/* Remove both kinds' files of days before the last SV_LOG_FILE_KEEP_DAYS (today included). */
static void prune(long long day)
{
	char cutoff[16];
	sv_log_day_name(day - SV_LOG_FILE_KEEP_DAYS + 1, cutoff, sizeof(cutoff));
	int d = openat(F.dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return;
	DIR *dp = fdopendir(d);
	if (!dp) {
		close(d);
		return;
	}
	struct dirent *e;
	while ((e = readdir(dp))) {
		for (int k = 0; k < SV_LOG_FILE_KINDS; k++) {
			size_t pl = strlen(prefixes[k]);
			const char *n = e->d_name;
			if (strncmp(n, prefixes[k], pl) != 0 || n[pl] != '.')
				continue;
			const char *date = n + pl + 1; /* YYYY-MM-DD.log[.1] */
			bool shape =
			    strlen(date) >= 14 && date[4] == '-' && date[7] == '-' &&
			    (strcmp(date + 10, ".log") == 0 || strcmp(date + 10, ".log.1") == 0);
			for (int i = 0; shape && i < 10; i++)
				shape = i == 4 || i == 7 || (date[i] >= '0' && date[i] <= '9');
			if (shape && strncmp(date, cutoff, 10) < 0)
				(void)unlinkat(F.dirfd, n, 0);
		}
	}
	closedir(dp);
}

/* Open @name for appending: a regular file only (O_NONBLOCK: a planted FIFO fails, never
 * blocks), never through a symlink. */
static int open_append(const char *name)
{
	int fd = openat(
	    F.dirfd, name,
	    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0644);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* Make f's fd today's file. io lock held. */
static void open_day(enum sv_log_file_kind k, long long day)
{
	struct lfile *f = &F.f[k];
	unsigned long prev_dropped = f->cap_dropped;
	long long prev_day = f->day;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	f->day = day;
	f->cap_dropped = 0;
	f->capped = false;
	char name[NAME_MAX_], name1[NAME_MAX_];
	file_name(k, day, false, name, sizeof(name));
	file_name(k, day, true, name1, sizeof(name1));
	int fd = open_append(name);
	if (fd < 0) {
		f->warn_errno = -fd;
		return;
	}
	struct stat st;
	f->fd = fd;
	f->size = fstat(fd, &st) == 0 ? (long long)st.st_size : 0;
	f->rotated = fstatat(F.dirfd, name1, &st, AT_SYMLINK_NOFOLLOW) == 0;
	f->capped = f->rotated && f->size > F.max - CAP_NOTE_RESERVE;
	if (prev_dropped && prev_day >= 0) {
		char d[16], kv[64];
		sv_log_day_name(prev_day, d, sizeof(d));
		sv_fmt(kv, sizeof(kv), "dropped=%lu day=%s", prev_dropped, d);
		write_note(k, "log_file_lines_dropped",
			   "lines were dropped on an earlier day: its file reached the daily cap",
			   kv);
	}
	prune(day);
}

/* Today's file reached the cap: move it to .1 once and start again. io lock held. */
static void rotate(enum sv_log_file_kind k)
{
	struct lfile *f = &F.f[k];
	char name[NAME_MAX_], name1[NAME_MAX_];
	file_name(k, f->day, false, name, sizeof(name));
	file_name(k, f->day, true, name1, sizeof(name1));
	f->rotated = true;
	if (renameat(F.dirfd, name, F.dirfd, name1) < 0) {
		f->warn_errno = errno;
		return;
	}
	close(f->fd);
	f->size = 0;
	f->fd = open_append(name);
	if (f->fd < 0)
		f->warn_errno = -f->fd;
}

/* Append whole lines, keeping the day's cap. io lock held. */
static void write_lines(enum sv_log_file_kind k, const char *buf, size_t len)
{
	struct lfile *f = &F.f[k];
	long long day = today();
	if (f->day != day)
		open_day(k, day);
	if (f->q_dropped) {
		char kv[32];
		sv_fmt(kv, sizeof(kv), "dropped=%lu", f->q_dropped);
		write_note(k, "log_file_lines_dropped",
			   "the log file writer fell behind: lines were dropped", kv);
		f->q_dropped = 0;
	}
	const long long limit = F.max - CAP_NOTE_RESERVE;
	const char *start = buf, *p = buf, *end = buf + len; /* [start, p): taken, not written */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl + 1 : end;
		long long n = (long long)(e - p);
		if (f->fd >= 0 && !f->capped && f->size + (p - start) + n > limit) {
			if (p > start)
				(void)write_raw(f, start, (size_t)(p - start));
			start = p;
			if (!f->rotated)
				rotate(k);
			if (f->fd >= 0 && f->size + n > limit) {
				char kv[48];
				sv_fmt(kv, sizeof(kv), "max_bytes=%lld", F.max);
				write_note(
				    k, "log_file_capped",
				    "the log file reached its daily cap: further lines today are "
				    "dropped",
				    kv);
				f->capped = true;
			}
		}
		if (f->fd < 0 || f->capped) {
			if (f->fd >= 0 && p > start)
				(void)write_raw(f, start, (size_t)(p - start));
			f->dropped++;
			if (f->capped)
				f->cap_dropped++;
			start = e;
		}
		p = e;
	}
	if (f->fd >= 0 && p > start)
		(void)write_raw(f, start, (size_t)(p - start));
}

/* Report an open or write failure, once a day, with no lock held (the warning is a log line). */
static void report_failures(void)
{
	for (int k = 0; k < SV_LOG_FILE_KINDS; k++) {
		pthread_mutex_lock(&F.io);
		struct lfile *f = &F.f[k];
		int e = f->warn_errno;
		bool say = e && f->warned_day != f->day;
		f->warn_errno = 0;
		if (say)
			f->warned_day = f->day;
		char name[NAME_MAX_];
		file_name(k, f->day, false, name, sizeof(name));
		pthread_mutex_unlock(&F.io);
		if (say)
			sv_log_kv(SV_LOG_WARN, COMP, "log_file_failed",
				  "cannot write the log file: its lines are dropped today",
				  SV_KVS({"file", name}, {"error", strerror(e)}));
	}
}

bool sv_log_file_wants(enum sv_log_file_kind kind)
{
	if (!is_owner())
		return false;
	return kind == SV_LOG_FILE_TEXT || atomic_load_explicit(&g_ocsf_json, memory_order_relaxed);
}

void sv_log_file_put(enum sv_log_file_kind kind, const char *buf, size_t len)
{
	if (!sv_log_file_wants(kind))
		return;
	struct lfile *f = &F.f[kind];
	pthread_mutex_lock(&F.lock);
	if (F.abandoned) {
		f->dropped++;
	} else if (F.thread) {
		if (f->len + len > SV_LOG_FILE_QUEUE_BYTES) {
			f->q_dropped++;
			f->dropped++;
		} else {
			size_t tail = (f->head + f->len) % SV_LOG_FILE_QUEUE_BYTES;
			size_t first = SV_LOG_FILE_QUEUE_BYTES - tail < len
					   ? SV_LOG_FILE_QUEUE_BYTES - tail
					   : len;
			memcpy(f->ring + tail, buf, first);
			memcpy(f->ring, buf + first, len - first);
			f->len += len;
			pthread_cond_signal(&F.cond);
		}
	} else {
		/* Setup, or after the writer stopped: this thread writes. */
		pthread_mutex_unlock(&F.lock);
		pthread_mutex_lock(&F.io);
		write_lines(kind, buf, len);
		pthread_mutex_unlock(&F.io);
		report_failures();
		return;
	}
	pthread_mutex_unlock(&F.lock);
}

/* Take whole lines from f's queue into g_wbuf. F.lock held. */
static size_t take(struct lfile *f)
{
	size_t n = f->len < sizeof(g_wbuf) ? f->len : sizeof(g_wbuf);
	size_t first =
	    SV_LOG_FILE_QUEUE_BYTES - f->head < n ? SV_LOG_FILE_QUEUE_BYTES - f->head : n;
	memcpy(g_wbuf, f->ring + f->head, first);
	memcpy(g_wbuf + first, f->ring, n - first);
	size_t k = n;
	while (k > 0 && g_wbuf[k - 1] != '\n')
		k--;
	if (!k)
		k = n; /* cannot happen: the queue holds whole lines */
	f->head = (f->head + k) % SV_LOG_FILE_QUEUE_BYTES;
	f->len -= k;
	if (!f->len)
		f->head = 0;
	return k;
}

static void *writer(void *arg)
{
	(void)arg;
	int next = 0;
	pthread_mutex_lock(&F.lock);
	for (;;) {
		int k = -1;
		for (int i = 0; i < SV_LOG_FILE_KINDS && k < 0; i++)
			if (F.f[(next + i) % SV_LOG_FILE_KINDS].len)
				k = (next + i) % SV_LOG_FILE_KINDS;
		if (k < 0) {
			if (F.stop)
				break;
			pthread_cond_wait(&F.cond, &F.lock);
			continue;
		}
		next = (k + 1) % SV_LOG_FILE_KINDS;
		size_t n = take(&F.f[k]);
		pthread_mutex_unlock(&F.lock);
		pthread_mutex_lock(&F.io);
		write_lines(k, g_wbuf, n);
		pthread_mutex_unlock(&F.io);
		report_failures();
		pthread_mutex_lock(&F.lock);
	}
	F.done = true;
	pthread_cond_broadcast(&F.done_cond);
	pthread_mutex_unlock(&F.lock);
	return NULL;
}

void sv_log_file_start(void)
{
	if (!is_owner())
		return;
	pthread_mutex_lock(&F.lock);
	if (F.thread || F.abandoned) {
		pthread_mutex_unlock(&F.lock);
		return;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&F.cond, &ca);
	pthread_cond_init(&F.done_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, WRITER_STACK);
	F.stop = F.done = false;
	int r = pthread_create(&F.tid, &a, writer, NULL);
	pthread_attr_destroy(&a);
	F.thread = r == 0;
	pthread_mutex_unlock(&F.lock);
	if (r != 0)
		sv_log_kv(SV_LOG_WARN, COMP, "log_file_writer_unavailable",
			  "no log file writer thread: the files are written by the loop",
			  SV_KVS({"error", strerror(r)}));
}

void sv_log_file_stop(unsigned timeout_ms)
{
	if (!is_owner())
		return;
	pthread_mutex_lock(&F.lock);
	if (!F.thread) {
		pthread_mutex_unlock(&F.lock);
		return;
	}
	F.stop = true;
	pthread_cond_signal(&F.cond);
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	while (!F.done)
		if (pthread_cond_timedwait(&F.done_cond, &F.lock, &until) != 0)
			break;
	F.thread = false;
	bool done = F.done;
	if (!done) {
		/* A disk that hangs: leave the writer, drop what is left, write nothing more. */
		F.abandoned = true;
		for (int k = 0; k < SV_LOG_FILE_KINDS; k++) {
			struct lfile *f = &F.f[k];
			for (size_t i = 0; i < f->len; i++)
				f->dropped +=
				    f->ring[(f->head + i) % SV_LOG_FILE_QUEUE_BYTES] == '\n';
			f->len = f->head = 0;
		}
		pthread_detach(F.tid);
	}
	pthread_mutex_unlock(&F.lock);
	if (!done)
		return;
	pthread_join(F.tid, NULL);
	/* Lines queued between the writer's last look and F.thread going false: written here. */
	for (int k = 0; k < SV_LOG_FILE_KINDS; k++) {
		for (;;) {
			pthread_mutex_lock(&F.lock);
			size_t n = F.f[k].len ? take(&F.f[k]) : 0;
			pthread_mutex_unlock(&F.lock);
			if (!n)
				break;
			pthread_mutex_lock(&F.io);
			write_lines(k, g_wbuf, n);
			pthread_mutex_unlock(&F.io);
		}
	}
}

int sv_log_files_open(const char *dir, long long max_bytes, struct sv_err *err)
{
	if (atomic_load(&F.owner))
		return sv_err_set(err, EBUSY, "log files already open");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sv_err_set(err, errno, "%s: %s", dir, strerror(errno));
	pthread_mutex_lock(&F.io);
	F.dirfd = dfd;
	F.max = max_bytes;
	F.abandoned = false;
	for (int k = 0; k < SV_LOG_FILE_KINDS; k++) {
		F.f[k].fd = -1;
		F.f[k].day = -1;
		F.f[k].warned_day = -1;
		F.f[k].dropped = 0;
		F.f[k].q_dropped = F.f[k].cap_dropped = 0;
		F.f[k].warn_errno = 0;
		F.f[k].head = F.f[k].len = 0;
		F.f[k].ring = g_rings[k];
	}
	long long day = today();
	open_day(SV_LOG_FILE_TEXT, day);
	int e = F.f[SV_LOG_FILE_TEXT].warn_errno;
	F.f[SV_LOG_FILE_TEXT].warn_errno = 0;
	if (F.f[SV_LOG_FILE_TEXT].fd < 0) {
		char name[NAME_MAX_];
		file_name(SV_LOG_FILE_TEXT, day, false, name, sizeof(name));
		close(F.dirfd);
		F.dirfd = -1;
		pthread_mutex_unlock(&F.io);
		return sv_err_set(err, e ? e : EIO, "%s/%s: %s", dir, name, strerror(e ? e : EIO));
	}
	atomic_store(&F.owner, (int)getpid());
	pthread_mutex_unlock(&F.io);
	return 0;
}

void sv_log_files_close(void)
{
	if (!is_owner())
		return;
	sv_log_file_stop(SV_LOG_EXIT_FLUSH_MS);
	pthread_mutex_lock(&F.io);
	atomic_store(&F.owner, 0);
	for (int k = 0; k < SV_LOG_FILE_KINDS; k++) {
		if (F.f[k].fd >= 0)
			close(F.f[k].fd);
		F.f[k].fd = -1;
	}
	close(F.dirfd);
	F.dirfd = -1;
	pthread_mutex_unlock(&F.io);
}

void sv_log_set_ocsf_json(bool on)
{
	bool was = atomic_exchange(&g_ocsf_json, on);
	if (was != on)
		sv_log_kv(SV_LOG_INFO, COMP, "ocsf_json_toggled", "OCSF JSONL logging toggled",
			  SV_KVS({"ocsf_json_enabled", on ? "true" : "false"}));
}

bool sv_log_ocsf_json_enabled(void)
{
	return atomic_load(&g_ocsf_json);
}

void sv_log_file_stats(unsigned long dropped[SV_LOG_FILE_KINDS])
{
	pthread_mutex_lock(&F.lock);
	for (int k = 0; k < SV_LOG_FILE_KINDS; k++)
		dropped[k] = F.f[k].dropped;
	pthread_mutex_unlock(&F.lock);
}
