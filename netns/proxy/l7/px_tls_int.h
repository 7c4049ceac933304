/* Private to netns/proxy/l7: what the CA, configuration and session files share. Never include
 * it from outside this folder; px_tls.h is the API.
 */
#ifndef PX_TLS_INT_H
#define PX_TLS_INT_H

#include "netns/proxy/l7/px_tls.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

/* A CTR_DRBG seeded from getrandom only. */
struct px_rng {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
};

int px_rng_init(struct px_rng *rng, struct sv_err *err);
void px_rng_free(struct px_rng *rng);
/* psa_crypto_init (TLS 1.3 needs it; idempotent). */
int px_psa_init(struct sv_err *err);
/* mbedTLS's message for @r plus its code. */
void px_tls_strerror(int r, char *buf, size_t size);

/* The leaf's chain [leaf, CA] and its key (borrowed from @leaf). */
mbedtls_x509_crt *px_leaf_chain(struct px_leaf *leaf);
mbedtls_pk_context *px_leaf_key(struct px_leaf *leaf);

#endif
