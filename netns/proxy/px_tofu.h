/* Egress proxy: trust-on-first-use SHA-256 pinning of agent executables (contract §8 "TOFU",
 * §13 fix 22).
 *
 * Private to netns/. Hashing uses mbedTLS (never a hand-written SHA-256) and reads whole
 * executables: call from a worker thread, never from the event loop. A pin is never replaced,
 * a pin the policy names literally is never dropped, and every doubt (I/O error, a file that
 * changes while hashed, a large-file hash already running) denies. Thread-safe: one mutex per
 * cache, never held while hashing.
 *
 * What is pinned (issue 17): only binaries some rule could allow (px_policy_binary_class), so
 * the agent cannot fill the cache with binaries that are denied anyway; with binary identity
 * relaxed nothing is. The eviction rule: pins of paths a rule names literally (PX_TOFU_KEEP)
 * are kept for the supervisor's life and never count against the bound: their number is bounded
 * by the policies loaded. Pins of paths only a glob admits (PX_TOFU_EVICTABLE) are bounded by
 * max_entries and the least recently used one is dropped to make room. Eviction never denies
 * anything (a new path is always pinned); it can only let a glob-admitted path be pinned afresh,
 * and making the many new paths that evict a pin needs exactly the write access that would put
 * new content under a fresh glob-admitted name. Fairness: one cache per sandbox; its main
 * process and SSH sessions share it, and no process can evict a literally named pin.
 */
#ifndef PX_TOFU_H
#define PX_TOFU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "netns/proxy/px_ident.h"
#include "supervisor/err.h"

#define PX_SHA256_LEN 32
/* Evictable pins per cache (upstream's MAX_IDENTITY_CACHE_ENTRIES, §8 TOFU, where a full cache
 * refuses every new path until restart: issue 17). */
#define PX_TOFU_MAX_ENTRIES 4096
/* Files above this size are "large": at most one is hashed at a time (the large-file lane) and
 * at most PX_TOFU_BIG_WAITERS further checks of that same file wait for it; any other check
 * needing a large hash meanwhile is refused at once (-EBUSY), so large files occupy at most
 * 1 + PX_TOFU_BIG_WAITERS decision workers and checks of other files never wait for one. Ours. */
#define PX_TOFU_BIG_BYTES   (64ULL << 20)
#define PX_TOFU_BIG_WAITERS 1
/* A candidate executable larger than this is refused unread (-EFBIG): it would hold the
 * large-file lane for seconds. Ours; no real executable comes near it. */
#define PX_TOFU_HASH_MAX (1024ULL << 20)
/* The exact prefixes of upstream's deny reasons (§8 TOFU). */
#define PX_TOFU_REASON_EXE	"binary integrity check failed"
#define PX_TOFU_REASON_ANCESTOR "ancestor integrity check failed for"

struct px_tofu;
struct pol_policy;

/* What a check does with one binary. */
enum px_tofu_pin {
	PX_TOFU_SKIP,	   /* no rule could allow it: neither read nor pinned, always passes */
	PX_TOFU_EVICTABLE, /* pinned; the least recently used such pin may be dropped */
	PX_TOFU_KEEP,	   /* pinned for the supervisor's life (an evictable pin is promoted) */
};

/* A cache for at most @max_entries evictable pins (0: PX_TOFU_MAX_ENTRIES). Returns 0 and *@out
 * (owned; free with px_tofu_free) or -ENOMEM. */
int px_tofu_new(size_t max_entries, struct px_tofu **out);
void px_tofu_free(struct px_tofu *cache);

/* Verify or pin the executable @pid runs under the name @path (px_ident's exe path). Hashes
 * /proc/<pid>/exe, the running image even when @path was since replaced or deleted. Fills
 * @digest (may be NULL) with the pinned hash. Returns:
 *   0        first sight (pinned), or same hash as the pin;
 *   -EPERM   a different hash than the pin: "Binary integrity violation: <path> executable
 *            changed" (the pin is kept);
 *   -EBUSY   a large file (> PX_TOFU_BIG_BYTES) to hash while the large-file lane is taken;
 *   -EFBIG   a file over PX_TOFU_HASH_MAX to hash;
 *   -EAGAIN  the file changed while it was being hashed;
 *   -errno   the executable could not be opened or read.
 * Unchanged fingerprint (size, mtime, ctime, dev, inode, all from fstat of the opened file) since
 * the last hash: the pinned verdict without reading the file (fix 22). */
int px_tofu_check(struct px_tofu *cache, pid_t pid, const char *path,
		  unsigned char digest[PX_SHA256_LEN], struct sv_err *err);

/* px_tofu_check() on an open regular file @fd (borrowed; read with pread, offset untouched),
 * pinned PX_TOFU_EVICTABLE. */
int px_tofu_check_fd(struct px_tofu *cache, int fd, const char *path,
		     unsigned char digest[PX_SHA256_LEN], struct sv_err *err);

/* px_tofu_check_fd() with the class @pin. PX_TOFU_SKIP returns 0 at once, @fd unused and
 * @digest zeroed. */
int px_tofu_check_fd_as(struct px_tofu *cache, int fd, const char *path, enum px_tofu_pin pin,
			unsigned char digest[PX_SHA256_LEN], struct sv_err *err);

/* TOFU for a whole identity: its executable, then every ancestor, each through its own
 * /proc/<pid>/exe after checking that the process still runs the inode px_ident saw (-ESTALE
 * otherwise). On failure @err holds the deny reason, with upstream's wording:
 *   "binary integrity check failed: Binary integrity violation: /usr/bin/x executable changed"
 *   "ancestor integrity check failed for /bin/sh: ..." */
int px_tofu_verify_ident(struct px_tofu *cache, const struct px_ident *id,
			 unsigned char exe_digest[PX_SHA256_LEN], struct sv_err *err);

/* px_tofu_verify_ident() for the decision under policy @p (borrowed; NULL: no rules): each
 * binary is checked by its px_policy_binary_class: literally named ones pinned PX_TOFU_KEEP,
 * glob-only ones PX_TOFU_EVICTABLE, the rest (and, with @endpoint_only, every binary) skipped
 * unread, since policy can never allow on them. So a binary no rule names is never hashed.
 * @exe_digest is zeroed when the executable was skipped. */
int px_tofu_verify_ident_policy(struct px_tofu *cache, const struct px_ident *id,
				const struct pol_policy *p, bool endpoint_only,
				unsigned char exe_digest[PX_SHA256_LEN], struct sv_err *err);

struct px_tofu_stats {
	uint64_t hashes;    /* whole-file hashes computed */
	uint64_t hits;	    /* verdicts answered from an unchanged fingerprint */
	size_t entries;	    /* pinned paths */
	size_t kept;	    /* of them PX_TOFU_KEEP */
	uint64_t evictions; /* evictable pins dropped to make room */
	uint64_t skipped;   /* binaries no rule could allow, not read */
	uint64_t busy;	    /* large-file checks refused because the lane was taken */
	uint64_t too_big;   /* files over PX_TOFU_HASH_MAX refused */
	bool lane_busy;	    /* a large file is being hashed now */
	unsigned lane_waiters; /* checks waiting for that hash */
};

void px_tofu_stats_get(struct px_tofu *cache, struct px_tofu_stats *out);

/* Lower-case hex of a digest into @hex (65 bytes with the NUL). */
void px_sha256_hex(const unsigned char digest[PX_SHA256_LEN], char hex[2 * PX_SHA256_LEN + 1]);

#endif
