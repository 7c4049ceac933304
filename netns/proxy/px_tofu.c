/* Egress proxy: TOFU SHA-256 pins of agent executables by path (contract §8, §13 fix 22).
 *
 * The only mbedTLS glue in netns/. Written against the API common to mbedTLS 2.28 (Debian's, for
 * the glibc tests) and 3.6 (the static product). Never rehashes a file whose fingerprint is
 * unchanged, never replaces a pin, never drops one the policy names literally, and never holds
 * the cache lock while reading a file.
 */
#include "netns/proxy/px_tofu.h"

#include "netns/proxy/px_policy.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

/* Read size while hashing: heap-allocated (a musl thread has a 128 KiB stack). */
#define HASH_CHUNK ((size_t)64 * 1024)

/* ------------------------------------------------------------------ SHA-256 */

/* 2.28 has int-returning *_ret calls (the plain names are deprecated voids); 3.x renamed the
 * *_ret calls to the plain names. Both take is224 = 0 for SHA-256. */
static int sha_starts(mbedtls_sha256_context *c)
{
#if MBEDTLS_VERSION_MAJOR >= 3
	return mbedtls_sha256_starts(c, 0);
#else
	return mbedtls_sha256_starts_ret(c, 0);
#endif
}

static int sha_update(mbedtls_sha256_context *c, const unsigned char *p, size_t n)
{
#if MBEDTLS_VERSION_MAJOR >= 3
	return mbedtls_sha256_update(c, p, n);
#else
	return mbedtls_sha256_update_ret(c, p, n);
#endif
}

static int sha_finish(mbedtls_sha256_context *c, unsigned char out[PX_SHA256_LEN])
{
#if MBEDTLS_VERSION_MAJOR >= 3
	return mbedtls_sha256_finish(c, out);
#else
	return mbedtls_sha256_finish_ret(c, out);
#endif
}

/* SHA-256 of all of @fd from offset 0; *@total = bytes hashed. */
static int sha256_fd(int fd, const char *path, unsigned char out[PX_SHA256_LEN],
		     unsigned long long *total, struct sv_err *err)
{
	_cleanup_free_ unsigned char *buf = malloc(HASH_CHUNK);
	if (!buf)
		return sv_err_set(err, ENOMEM, "cannot hash %s: out of memory", path);
	mbedtls_sha256_context ctx;
	mbedtls_sha256_init(&ctx);
	int r = sha_starts(&ctx) ? -EIO : 0;
	off_t off = 0;
	while (r == 0) {
		ssize_t n = pread(fd, buf, HASH_CHUNK, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		else if (n == 0)
			break;
		else if (sha_update(&ctx, buf, (size_t)n) != 0)
			r = -EIO;
		else
			off += n;
	}
	if (r == 0 && sha_finish(&ctx, out) != 0)
		r = -EIO;
	mbedtls_sha256_free(&ctx);
	if (r < 0)
		return sv_err_set(err, r, "cannot hash %s: %s", path, strerror(-r));
	*total = (unsigned long long)off;
	return 0;
}

void px_sha256_hex(const unsigned char digest[PX_SHA256_LEN], char hex[2 * PX_SHA256_LEN + 1])
{
	static const char xd[] = "0123456789abcdef";
	for (size_t i = 0; i < PX_SHA256_LEN; i++) {
		hex[2 * i] = xd[digest[i] >> 4];
		hex[2 * i + 1] = xd[digest[i] & 0xf];
	}
	hex[(size_t)PX_SHA256_LEN * 2] = '\0';
}

/* ------------------------------------------------------------------ cache */

/* §8 TOFU fingerprint: (len, mtime, ctime, dev, ino). */
struct fp {
	unsigned long long size, dev, ino;
	long long mtime_s, mtime_ns, ctime_s, ctime_ns;
};

struct entry {
	struct entry *chain;	     /* next in the bucket */
	struct entry *older, *newer; /* the eviction list (evictable pins only) */
	bool keep;		     /* never evicted */
	char *path;
	unsigned char hash[PX_SHA256_LEN]; /* first seen: never replaced while pinned */
	struct fp fp;			   /* of the last file that hashed to it */
};

struct px_tofu {
	pthread_mutex_t lock;
	size_t max;	  /* evictable pins at most */
	size_t n_buckets; /* power of two */
	struct entry **buckets;
	struct entry *lru_new, *lru_old; /* evictable pins, most recently used first */
	size_t count, n_evictable, n_kept;
	/* The large-file lane: one hash of a file over PX_TOFU_BIG_BYTES at a time. */
	pthread_cond_t big_done;
	bool big_busy;
	struct fp big_fp; /* the file being hashed in the lane */
	unsigned big_waiters;
	uint64_t hashes;				  /* __atomic */
	uint64_t hits, evictions, skipped, busy, too_big; /* under lock */
};

static void fp_from_stat(const struct stat *st, struct fp *f)
{
	f->size = (unsigned long long)st->st_size;
	f->dev = (unsigned long long)st->st_dev;
	f->ino = (unsigned long long)st->st_ino;
	f->mtime_s = (long long)st->st_mtim.tv_sec;
	f->mtime_ns = (long long)st->st_mtim.tv_nsec;
	f->ctime_s = (long long)st->st_ctim.tv_sec;
	f->ctime_ns = (long long)st->st_ctim.tv_nsec;
}

static bool fp_equal(const struct fp *a, const struct fp *b)
{
	return a->size == b->size && a->dev == b->dev && a->ino == b->ino &&
	       a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns && a->ctime_s == b->ctime_s &&
	       a->ctime_ns == b->ctime_ns;
}

static size_t path_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

/* The link pointing at @path's entry, or at the NULL ending its bucket. Under lock. */
static struct entry **slot_find(struct px_tofu *c, const char *path)
{
	struct entry **link = &c->buckets[path_hash(path) & (c->n_buckets - 1)];
	while (*link && strcmp((*link)->path, path) != 0)
		link = &(*link)->chain;
	return link;
}

static void lru_unlink(struct px_tofu *c, struct entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		c->lru_old = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->lru_new = e->older;
	e->older = e->newer = NULL;
}

static void lru_push_new(struct px_tofu *c, struct entry *e)
{
	e->older = c->lru_new;
	e->newer = NULL;
	if (c->lru_new)
		c->lru_new->newer = e;
	else
		c->lru_old = e;
	c->lru_new = e;
}

/* A use of @e under the class @pin: a pin the policy now names literally is kept for good; an
 * evictable one becomes the most recently used. */
static void entry_used(struct px_tofu *c, struct entry *e, enum px_tofu_pin pin)
{
	if (e->keep)
		return;
	lru_unlink(c, e);
	if (pin == PX_TOFU_KEEP) {
		e->keep = true;
		c->n_evictable--;
		c->n_kept++;
	} else {
		lru_push_new(c, e);
	}
}

static void entry_free(struct entry *e)
{
	free(e->path);
	free(e);
}

/* Drop the least recently used evictable pin. Under lock. */
static void evict_oldest(struct px_tofu *c)
{
	struct entry *e = c->lru_old;
	if (!e)
		return;
	lru_unlink(c, e);
	struct entry **link = slot_find(c, e->path);
	*link = e->chain;
	c->n_evictable--;
	c->count--;
	c->evictions++;
	entry_free(e);
}

int px_tofu_new(size_t max_entries, struct px_tofu **out)
{
	*out = NULL;
	if (max_entries == 0)
		max_entries = PX_TOFU_MAX_ENTRIES;
	if (max_entries > (SIZE_MAX / 4) / sizeof(struct entry *))
		return -EINVAL;
	struct px_tofu *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->max = max_entries;
	c->n_buckets = 16;
	while (c->n_buckets < max_entries)
		c->n_buckets <<= 1;
	c->buckets = calloc(c->n_buckets, sizeof(struct entry *));
	if (!c->buckets || pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c->buckets);
		free(c);
		return -ENOMEM;
	}
	if (pthread_cond_init(&c->big_done, NULL) != 0) {
		pthread_mutex_destroy(&c->lock);
		free(c->buckets);
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void px_tofu_free(struct px_tofu *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_buckets; i++) {
		for (struct entry *e = c->buckets[i], *next; e; e = next) {
			next = e->chain;
			entry_free(e);
		}
	}
	free(c->buckets);
	pthread_cond_destroy(&c->big_done);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Under lock: pin @path to @hash with @fp, or compare with its pin. */
static int pin_locked(struct px_tofu *c, const char *path, enum px_tofu_pin pin,
		      const unsigned char *hash, const struct fp *fp, struct sv_err *err)
{
	struct entry **slot = slot_find(c, path);
	if (*slot) {
		if (memcmp((*slot)->hash, hash, PX_SHA256_LEN) != 0)
			return sv_err_set(
			    err, EPERM, "Binary integrity violation: %s executable changed", path);
		(*slot)->fp = *fp; /* same content under a new fingerprint: no rehash next time */
		entry_used(c, *slot, pin);
		return 0;
	}
	struct entry *e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path))) {
		free(e);
		return sv_err_set(err, ENOMEM, "cannot pin %s: out of memory", path);
	}
	memcpy(e->hash, hash, PX_SHA256_LEN);
	e->fp = *fp;
	if (pin == PX_TOFU_KEEP) {
		e->keep = true;
		c->n_kept++;
	} else {
		if (c->n_evictable >= c->max)
			evict_oldest(c);
		slot = slot_find(c, path); /* the eviction may have unlinked our bucket's tail */
		lru_push_new(c, e);
		c->n_evictable++;
	}
	*slot = e;
	c->count++;
	return 0;
}

/* Under lock: may this thread hash the large file @f? 0 yes (the lane is ours), 1 the same file
 * was hashed meanwhile (look again), -EBUSY refused. */
static int big_lane_enter(struct px_tofu *c, const struct fp *f)
{
	if (!c->big_busy) {
		c->big_busy = true;
		c->big_fp = *f;
		return 0;
	}
	/* Another large file, or a second waiter: refuse at once rather than hold a worker. */
	if (!fp_equal(&c->big_fp, f) || c->big_waiters >= PX_TOFU_BIG_WAITERS)
		return -EBUSY;
	c->big_waiters++;
	while (c->big_busy && fp_equal(&c->big_fp, f))
		pthread_cond_wait(&c->big_done, &c->lock);
	c->big_waiters--;
	return 1;
}

static void big_lane_leave_locked(struct px_tofu *c)
{
	c->big_busy = false;
	pthread_cond_broadcast(&c->big_done);
}

int px_tofu_check_fd_as(struct px_tofu *c, int fd, const char *path, enum px_tofu_pin pin,
			unsigned char digest[PX_SHA256_LEN], struct sv_err *err)
{
	if (!path || path[0] != '/')
		return sv_err_set(err, EINVAL, "TOFU: path must be absolute");
	if (pin == PX_TOFU_SKIP) {
		pthread_mutex_lock(&c->lock);
		c->skipped++;
		pthread_mutex_unlock(&c->lock);
		if (digest)
			memset(digest, 0, PX_SHA256_LEN);
		return 0;
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sv_err_set(err, errno, "Failed to stat %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return sv_err_set(err, EINVAL, "%s: not a regular file", path);
	struct fp before;
	fp_from_stat(&st, &before);

	unsigned char hash[PX_SHA256_LEN];
	bool hit = false, big = false;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct entry *e = *slot_find(c, path);
		if (e && fp_equal(&e->fp, &before)) {
			memcpy(hash, e->hash, PX_SHA256_LEN);
			entry_used(c, e, pin);
			c->hits++;
			hit = true;
			break;
		}
		if (before.size <= PX_TOFU_BIG_BYTES)
			break;
		if (before.size > PX_TOFU_HASH_MAX) {
			c->too_big++;
			pthread_mutex_unlock(&c->lock);
			return sv_err_set(err, EFBIG,
					  "%s is %llu MiB, larger than the %llu MiB an executable "
					  "may be to be verified",
					  path, before.size >> 20, PX_TOFU_HASH_MAX >> 20);
		}
		int r = big_lane_enter(c, &before);
		if (r == -EBUSY) {
			c->busy++;
			pthread_mutex_unlock(&c->lock);
			return sv_err_set(err, EBUSY,
					  "%s (%llu MiB) was not verified: another large "
					  "executable is being hashed; retry",
					  path, before.size >> 20);
		}
		if (r == 0) {
			big = true;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (!hit) {
		unsigned long long total = 0;
		__atomic_fetch_add(&c->hashes, 1, __ATOMIC_RELAXED);
		int r = sha256_fd(fd, path, hash, &total, err);
		if (r == 0 && fstat(fd, &st) < 0)
			r = sv_err_set(err, errno, "Failed to stat %s: %s", path, strerror(errno));
		struct fp after;
		fp_from_stat(&st, &after);
		if (r == 0 && (!fp_equal(&before, &after) || total != before.size))
			r = sv_err_set(err, EAGAIN, "%s changed while it was being hashed", path);
		/* Pinned before the lane is given up: a waiter that wakes finds the pin, never
		 * an empty slot to hash the same file again into. */
		pthread_mutex_lock(&c->lock);
		if (r == 0)
			r = pin_locked(c, path, pin, hash, &before, err);
		if (big)
			big_lane_leave_locked(c);
		pthread_mutex_unlock(&c->lock);
		if (r < 0)
			return r;
	}
	if (digest)
		memcpy(digest, hash, PX_SHA256_LEN);
	return 0;
}

int px_tofu_check_fd(struct px_tofu *c, int fd, const char *path,
		     unsigned char digest[PX_SHA256_LEN], struct sv_err *err)
{
	return px_tofu_check_fd_as(c, fd, path, PX_TOFU_EVICTABLE, digest, err);
}

int px_tofu_check(struct px_tofu *c, pid_t pid, const char *path,
		  unsigned char digest[PX_SHA256_LEN], struct sv_err *err)
{
	char link[64];
	sv_fmt(link, sizeof(link), "/proc/%d/exe", (int)pid);
	_cleanup_close_ int fd = open(link, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sv_err_set(err, errno, "cannot open %s: %s", link, strerror(errno));
	return px_tofu_check_fd(c, fd, path, digest, err);
}

/* TOFU of one px_ident executable, refusing a process that no longer runs that inode. */
static int bin_check(struct px_tofu *c, const struct px_ident_bin *b, enum px_tofu_pin pin,
		     unsigned char digest[PX_SHA256_LEN], struct sv_err *err)
{
	if (pin == PX_TOFU_SKIP) /* not even opened: nothing about it can allow */
		return px_tofu_check_fd_as(c, -1, b->path, pin, digest, err);
	char link[64];
	sv_fmt(link, sizeof(link), "/proc/%d/exe", (int)b->pid);
	_cleanup_close_ int fd = open(link, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sv_err_set(err, errno, "cannot open %s: %s", link, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sv_err_set(err, errno, "cannot stat %s: %s", link, strerror(errno));
	if (st.st_dev != b->dev || st.st_ino != b->ino)
		return sv_err_set(err, ESTALE, "process %d no longer runs %s", (int)b->pid,
				  b->path);
	return px_tofu_check_fd_as(c, fd, b->path, pin, digest, err);
}

static enum px_tofu_pin pin_of(const struct pol_policy *p, bool endpoint_only, const char *path)
{
	if (!p)
		return PX_TOFU_EVICTABLE; /* no policy: every binary (px_tofu_verify_ident) */
	if (endpoint_only)
		return PX_TOFU_SKIP;
	switch (px_policy_binary_class(p, path)) {
	case PX_BIN_EXACT:
		return PX_TOFU_KEEP;
	case PX_BIN_GLOB:
		return PX_TOFU_EVICTABLE;
	case PX_BIN_NONE:
		break;
	}
	return PX_TOFU_SKIP;
}

static int verify(struct px_tofu *c, const struct px_ident *id, const struct pol_policy *p,
		  bool endpoint_only, unsigned char exe_digest[PX_SHA256_LEN], struct sv_err *err)
{
	int r = bin_check(c, &id->exe, pin_of(p, endpoint_only, id->exe.path), exe_digest, err);
	if (r < 0) {
		sv_err_prefix(err, PX_TOFU_REASON_EXE);
		return r;
	}
	for (size_t i = 0; i < id->n_ancestors && i < PX_IDENT_ANCESTORS_MAX; i++) {
		const struct px_ident_bin *a = &id->ancestors[i];
		r = bin_check(c, a, pin_of(p, endpoint_only, a->path), NULL, err);
		if (r < 0) {
			sv_err_prefix(err, PX_TOFU_REASON_ANCESTOR " %s", a->path);
			return r;
		}
	}
	return 0;
}

int px_tofu_verify_ident(struct px_tofu *c, const struct px_ident *id,
			 unsigned char exe_digest[PX_SHA256_LEN], struct sv_err *err)
{
	return verify(c, id, NULL, false, exe_digest, err);
}

int px_tofu_verify_ident_policy(struct px_tofu *c, const struct px_ident *id,
				const struct pol_policy *p, bool endpoint_only,
				unsigned char exe_digest[PX_SHA256_LEN], struct sv_err *err)
{
	static const struct pol_policy none = {0};
	return verify(c, id, p ? p : &none, endpoint_only, exe_digest, err);
}

void px_tofu_stats_get(struct px_tofu *c, struct px_tofu_stats *out)
{
	pthread_mutex_lock(&c->lock);
	out->hits = c->hits;
	out->entries = c->count;
	out->kept = c->n_kept;
	out->evictions = c->evictions;
	out->skipped = c->skipped;
	out->busy = c->busy;
	out->too_big = c->too_big;
	out->lane_busy = c->big_busy;
	out->lane_waiters = c->big_waiters;
	pthread_mutex_unlock(&c->lock);
	out->hashes = __atomic_load_n(&c->hashes, __ATOMIC_RELAXED);
}
