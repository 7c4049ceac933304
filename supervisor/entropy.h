/* The one entropy source every mbedTLS DRBG in the supervisor is seeded from: getrandom(2).
 *
 * mbedTLS's platform source uses getrandom() only with glibc; with musl it opens /dev/urandom,
 * which a scratch image may lack. Seeding fails hard when getrandom() fails, never falling back
 * to a file. Used by the gateway's TLS (session/gw_tls.c).
 */
#ifndef SV_ENTROPY_H
#define SV_ENTROPY_H

#include <stddef.h>

#include "err.h"

/* A strong source with the signature of mbedtls_entropy_f_source_ptr: fills all @len bytes
 * through getrandom(2) (retrying EINTR and short reads) or returns
 * MBEDTLS_ERR_ENTROPY_SOURCE_FAILED. @data is unused. */
int sv_entropy_getrandom(void *data, unsigned char *output, size_t len, size_t *olen);

/* mbedtls_entropy_init(@ctx), drop every default source (mbedTLS has no call for that: this
 * resets the context's source count, a private field in 3.x), then add sv_entropy_getrandom as
 * the only, strong source. Returns 0 (free @ctx with mbedtls_entropy_free) or -EIO (@ctx
 * already freed). */
struct mbedtls_entropy_context;
int sv_entropy_setup(struct mbedtls_entropy_context *ctx, struct sv_err *err);

#endif
