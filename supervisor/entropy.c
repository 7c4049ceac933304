/* getrandom(2) as mbedTLS's only entropy source (see entropy.h).
 *
 * Written against the API common to mbedTLS 2.28 (Debian's, for the glibc tests) and 3.6 (the
 * static product).
 */
#include "entropy.h"

#include <errno.h>
#include <sys/random.h>
#include <sys/types.h>

#include <mbedtls/entropy.h>
#include <mbedtls/version.h>

/* Bytes sv_entropy_getrandom must deliver before the accumulator counts it (mbedTLS's own
 * MBEDTLS_ENTROPY_MIN_PLATFORM). */
#define ENTROPY_THRESHOLD 32

int sv_entropy_getrandom(void *data, unsigned char *output, size_t len, size_t *olen)
{
	(void)data;
	size_t done = 0;
	*olen = 0;
	while (done < len) {
		ssize_t n = getrandom(output + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
		done += (size_t)n;
	}
	*olen = len;
	return 0;
}

int sv_entropy_setup(struct mbedtls_entropy_context *ctx, struct sv_err *err)
{
	mbedtls_entropy_init(ctx);
	/* No API removes the default sources (on musl the platform one reads /dev/urandom, and any
	 * failing source fails the whole gather). They are plain table entries, nothing to free:
	 * forgetting them is enough. */
#if MBEDTLS_VERSION_MAJOR >= 3
	ctx->MBEDTLS_PRIVATE(source_count) = 0;
#else
	ctx->source_count = 0;
#endif
	int r = mbedtls_entropy_add_source(ctx, sv_entropy_getrandom, NULL, ENTROPY_THRESHOLD,
					   MBEDTLS_ENTROPY_SOURCE_STRONG);
	if (r != 0) {
		mbedtls_entropy_free(ctx);
		return sv_err_set(err, EIO, "cannot add the getrandom entropy source: -0x%04x",
				  (unsigned)-r);
	}
	return 0;
}
