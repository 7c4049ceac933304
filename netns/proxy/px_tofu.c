/* Egress proxy: TOFU SHA-256 pins of agent executables by path (contract §8, §13 fix 22).
 *
 * The only mbedTLS glue in netns/. Written against the API common to mbedTLS 2.28 (Debian's, for
 * the glibc tests) and 3.6 (the static product). Never rehashes a file whose fingerprint is
 * unchanged, never replaces or drops a pin, and never holds the cache lock while reading a file.
 */
#include "netns/proxy/px_tofu.h"

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
	char *path;
	unsigned char hash[PX_SHA256_LEN]; /* first seen: never replaced */
	struct fp fp;			   /* of the last file that hashed to it */
};

struct px_tofu {
	pthread_mutex_t lock;
	size_t max, count;
	size_t cap; /* power of two >= 2 * max: open addressing stays under half full */
	struct entry **slots;
	uint64_t hashes; /* __atomic */
	uint64_t hits;	 /* under lock */
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

/* The slot holding @path, or the empty slot where it would go. Under lock. */
static struct entry **slot_find(struct px_tofu *c, const char *path)
{
	size_t i = path_hash(path) & (c->cap - 1);
	while (c->slots[i] && strcmp(c->slots[i]->path, path) != 0)
		i = (i + 1) & (c->cap - 1);
	return &c->slots[i];
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
	c->cap = 2;
	while (c->cap < 2 * max_entries)
		c->cap <<= 1;
	c->slots = calloc(c->cap, sizeof(struct entry *));
	if (!c->slots || pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c->slots);
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
	for (size_t i = 0; i < c->cap; i++) {
		if (c->slots[i]) {
			free(c->slots[i]->path);
			free(c->slots[i]);
		}
	}
	free(c->slots);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static int capacity_error(const struct px_tofu *c, struct sv_err *err)
{
	return sv_err_set(err, ENOSPC,
			  "Binary identity cache capacity exhausted (maximum %zu pinned paths)",
			  c->max);
}

/* Under lock: pin @path to @hash with @fp, or compare with its pin. */
static int pin_locked(struct px_tofu *c, const char *path, const unsigned char *hash,
		      const struct fp *fp, struct sv_err *err)
{
	struct entry **slot = slot_find(c, path);
	if (*slot) {
		if (memcmp((*slot)->hash, hash, PX_SHA256_LEN) != 0)
			return sv_err_set(
			    err, EPERM, "Binary integrity violation: %s executable changed", path);
		(*slot)->fp = *fp; /* same content under a new fingerprint: no rehash next time */
		return 0;
	}
	if (c->count >= c->max)
		return capacity_error(c, err);
	struct entry *e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path))) {
		free(e);
		return sv_err_set(err, ENOMEM, "cannot pin %s: out of memory", path);
	}
	memcpy(e->hash, hash, PX_SHA256_LEN);
	e->fp = *fp;
	*slot = e;
	c->count++;
	return 0;
}

int px_tofu_check_fd(struct px_tofu *c, int fd, const char *path,
		     unsigned char digest[PX_SHA256_LEN], struct sv_err *err)
{
	if (!path || path[0] != '/')
		return sv_err_set(err, EINVAL, "TOFU: path must be absolute");
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sv_err_set(err, errno, "Failed to stat %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return sv_err_set(err, EINVAL, "%s: not a regular file", path);
	struct fp before;
	fp_from_stat(&st, &before);

	unsigned char hash[PX_SHA256_LEN];
	pthread_mutex_lock(&c->lock);
	struct entry *e = *slot_find(c, path);
	bool hit = e && fp_equal(&e->fp, &before);
	if (hit) {
		memcpy(hash, e->hash, PX_SHA256_LEN);
		c->hits++;
	}
	bool full = !e && c->count >= c->max;
	pthread_mutex_unlock(&c->lock);
	if (full) /* refuse before reading anything */
		return capacity_error(c, err);
	if (!hit) {
		unsigned long long total = 0;
		__atomic_fetch_add(&c->hashes, 1, __ATOMIC_RELAXED);
		int r = sha256_fd(fd, path, hash, &total, err);
		if (r < 0)
			return r;
		struct fp after;
		if (fstat(fd, &st) < 0)
			return sv_err_set(err, errno, "Failed to stat %s: %s", path,
					  strerror(errno));
		fp_from_stat(&st, &after);
		if (!fp_equal(&before, &after) || total != before.size)
			return sv_err_set(err, EAGAIN, "%s changed while it was being hashed",
					  path);
		pthread_mutex_lock(&c->lock);
		r = pin_locked(c, path, hash, &before, err);
		pthread_mutex_unlock(&c->lock);
		if (r < 0)
			return r;
	}
	if (digest)
		memcpy(digest, hash, PX_SHA256_LEN);
	return 0;
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
static int bin_check(struct px_tofu *c, const struct px_ident_bin *b,
		     unsigned char digest[PX_SHA256_LEN], struct sv_err *err)
{
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
	return px_tofu_check_fd(c, fd, b->path, digest, err);
}

int px_tofu_verify_ident(struct px_tofu *c, const struct px_ident *id,
			 unsigned char exe_digest[PX_SHA256_LEN], struct sv_err *err)
{
	int r = bin_check(c, &id->exe, exe_digest, err);
	if (r < 0) {
		sv_err_prefix(err, PX_TOFU_REASON_EXE);
		return r;
	}
	for (size_t i = 0; i < id->n_ancestors && i < PX_IDENT_ANCESTORS_MAX; i++) {
		r = bin_check(c, &id->ancestors[i], NULL, err);
		if (r < 0) {
			sv_err_prefix(err, PX_TOFU_REASON_ANCESTOR " %s", id->ancestors[i].path);
			return r;
		}
	}
	return 0;
}

void px_tofu_stats_get(struct px_tofu *c, struct px_tofu_stats *out)
{
	pthread_mutex_lock(&c->lock);
	out->hits = c->hits;
	out->entries = c->count;
	pthread_mutex_unlock(&c->lock);
	out->hashes = __atomic_load_n(&c->hashes, __ATOMIC_RELAXED);
}
