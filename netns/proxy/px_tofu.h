/* Egress proxy: trust-on-first-use SHA-256 pinning of agent executables (contract §8 "TOFU",
 * §13 fix 22).
 *
 * Private to netns/. Hashing uses mbedTLS (never a hand-written SHA-256) and reads whole
 * executables: call from a worker thread, never from the event loop. A pin is never reset or
 * replaced for the supervisor's lifetime, and every doubt (I/O error, full cache, a file that
 * changes while hashed) denies. Thread-safe: one mutex per cache, never held while hashing.
 */
#ifndef PX_TOFU_H
#define PX_TOFU_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "netns/proxy/px_ident.h"
#include "supervisor/err.h"

#define PX_SHA256_LEN 32
/* Pinned paths per cache, as upstream (MAX_IDENTITY_CACHE_ENTRIES, §8 TOFU). When full, a new
 * path is refused ("capacity exhausted"): failing closed beats evicting a pin, which would let a
 * replaced binary be pinned afresh. Known paths keep working. */
#define PX_TOFU_MAX_ENTRIES 4096
/* The exact prefixes of upstream's deny reasons (§8 TOFU). */
#define PX_TOFU_REASON_EXE	"binary integrity check failed"
#define PX_TOFU_REASON_ANCESTOR "ancestor integrity check failed for"

struct px_tofu;

/* A cache for at most @max_entries paths (0: PX_TOFU_MAX_ENTRIES). Returns 0 and *@out (owned;
 * free with px_tofu_free) or -ENOMEM. */
int px_tofu_new(size_t max_entries, struct px_tofu **out);
void px_tofu_free(struct px_tofu *cache);

/* Verify or pin the executable @pid runs under the name @path (px_ident's exe path). Hashes
 * /proc/<pid>/exe, the running image even when @path was since replaced or deleted. Fills
 * @digest (may be NULL) with the pinned hash. Returns:
 *   0        first sight (pinned), or same hash as the pin;
 *   -EPERM   a different hash than the pin: "Binary integrity violation: <path> executable
 *            changed" (the pin is kept);
 *   -ENOSPC  @path is new and the cache is full;
 *   -EAGAIN  the file changed while it was being hashed;
 *   -errno   the executable could not be opened or read.
 * Unchanged fingerprint (size, mtime, ctime, dev, inode, all from fstat of the opened file) since
 * the last hash: the pinned verdict without reading the file (fix 22). */
int px_tofu_check(struct px_tofu *cache, pid_t pid, const char *path,
		  unsigned char digest[PX_SHA256_LEN], struct sv_err *err);

/* px_tofu_check() on an open regular file @fd (borrowed; read with pread, offset untouched). */
int px_tofu_check_fd(struct px_tofu *cache, int fd, const char *path,
		     unsigned char digest[PX_SHA256_LEN], struct sv_err *err);

/* TOFU for a whole identity: its executable, then every ancestor, each through its own
 * /proc/<pid>/exe after checking that the process still runs the inode px_ident saw (-ESTALE
 * otherwise). On failure @err holds the deny reason, with upstream's wording:
 *   "binary integrity check failed: Binary integrity violation: /usr/bin/x executable changed"
 *   "ancestor integrity check failed for /bin/sh: ..." */
int px_tofu_verify_ident(struct px_tofu *cache, const struct px_ident *id,
			 unsigned char exe_digest[PX_SHA256_LEN], struct sv_err *err);

struct px_tofu_stats {
	uint64_t hashes; /* whole-file hashes computed */
	uint64_t hits;	 /* verdicts answered from an unchanged fingerprint */
	size_t entries;	 /* pinned paths */
};

void px_tofu_stats_get(struct px_tofu *cache, struct px_tofu_stats *out);

/* Lower-case hex of a digest into @hex (65 bytes with the NUL). */
void px_sha256_hex(const unsigned char digest[PX_SHA256_LEN], char hex[2 * PX_SHA256_LEN + 1]);

#endif
