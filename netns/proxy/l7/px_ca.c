/* The sandbox CA and the leaf certificates it signs per CONNECT host (l7 contract §1.2, §1.4).
 *
 * Keys are ECDSA P-256 from a CTR_DRBG seeded by getrandom only (supervisor/entropy). The CA key
 * never leaves memory except through px_ca_key_der into a caller's buffer. The leaf cache is
 * cleared whole on overflow, as upstream does; leaves are reference-counted so a clear never
 * frees one a session still serves.
 */
#include "netns/proxy/l7/px_tls_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/x509_crt.h>

#include "supervisor/entropy.h"

/* rcgen's CertificateParams::default validity (§1.2); mbedTLS writes GeneralizedTime past 2049. */
#define PX_VALID_FROM "19750101000000"
#define PX_VALID_TO "40960101000000"
#define PX_CA_SUBJECT "CN=OpenShell Sandbox CA,O=OpenShell"
#define PX_DER_MAX 4096
#define PX_HOST_MAX 253

struct px_ca {
	struct px_rng rng;
	mbedtls_pk_context key;
	mbedtls_x509_crt crt; /* parsed back: the issuer for leaves, chain tail for sessions */
	char *pem;
};

struct px_leaf {
	unsigned int refs; /* atomic: the cache's reference and each holder's */
	mbedtls_x509_crt chain; /* leaf, then the CA */
	mbedtls_pk_context key;
	char host[PX_HOST_MAX + 1];
};

struct px_leaf_cache {
	const struct px_ca *ca;
	struct px_rng rng;
	pthread_mutex_t lock;
	struct px_leaf *leaves[PX_TLS_LEAF_CACHE_MAX];
	size_t n;
};

void px_tls_strerror(int r, char *buf, size_t size)
{
	mbedtls_strerror(r, buf, size);
	size_t n = strlen(buf);
	sv_fmt(buf + n, size - n, " (-0x%04x)", (unsigned)-r);
}

int px_rng_init(struct px_rng *rng, struct sv_err *err)
{
	mbedtls_ctr_drbg_init(&rng->drbg);
	int r = sv_entropy_setup(&rng->entropy, err);
	if (r < 0) {
		mbedtls_entropy_init(&rng->entropy); /* px_rng_free frees it again: harmless */
		return r;
	}
	r = mbedtls_ctr_drbg_seed(&rng->drbg, mbedtls_entropy_func, &rng->entropy,
				  (const unsigned char *)"openshell-px-tls", 16);
	if (r != 0)
		return sv_err_set(err, EIO, "cannot seed the random generator: -0x%04x",
				  (unsigned)-r);
	return 0;
}

void px_rng_free(struct px_rng *rng)
{
	mbedtls_ctr_drbg_free(&rng->drbg);
	mbedtls_entropy_free(&rng->entropy);
}

int px_psa_init(struct sv_err *err)
{
	psa_status_t s = psa_crypto_init();
	if (s != PSA_SUCCESS)
		return sv_err_set(err, EIO, "psa_crypto_init failed: %d", (int)s);
	return 0;
}

static int gen_p256(struct px_rng *rng, mbedtls_pk_context *key, struct sv_err *err)
{
	int r = mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
	if (r == 0)
		r = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key),
					mbedtls_ctr_drbg_random, &rng->drbg);
	if (r != 0) {
		char e[PX_TLS_REASON_MAX];
		px_tls_strerror(r, e, sizeof(e));
		return sv_err_set(err, EIO, "P-256 key generation: %s", e);
	}
	return 0;
}

/* A random positive 16-byte serial. */
static int set_serial(mbedtls_x509write_cert *w, struct px_rng *rng)
{
	unsigned char serial[16];
	int r = mbedtls_ctr_drbg_random(&rng->drbg, serial, sizeof(serial));
	if (r != 0)
		return r;
	serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x01);
	return mbedtls_x509write_crt_set_serial_raw(w, serial, sizeof(serial));
}

/* Write @w as DER and parse it into @out (appended). */
static int write_and_parse(mbedtls_x509write_cert *w, struct px_rng *rng, mbedtls_x509_crt *out)
{
	unsigned char *buf = malloc(PX_DER_MAX);
	if (!buf)
		return MBEDTLS_ERR_X509_ALLOC_FAILED;
	int n = mbedtls_x509write_crt_der(w, buf, PX_DER_MAX, mbedtls_ctr_drbg_random, &rng->drbg);
	int r = n;
	if (n > 0) /* written at the end of the buffer */
		r = mbedtls_x509_crt_parse_der(out, buf + PX_DER_MAX - n, (size_t)n);
	free(buf);
	return r;
}

void px_ca_free(struct px_ca *ca)
{
	if (!ca)
		return;
	mbedtls_pk_free(&ca->key);
	mbedtls_x509_crt_free(&ca->crt);
	free(ca->pem);
	px_rng_free(&ca->rng);
	free(ca);
}

static struct px_ca *ca_alloc(struct sv_err *err)
{
	struct px_ca *ca = calloc(1, sizeof(*ca));
	if (!ca) {
		sv_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	mbedtls_pk_init(&ca->key);
	mbedtls_x509_crt_init(&ca->crt);
	if (px_rng_init(&ca->rng, err) < 0 || px_psa_init(err) < 0) {
		px_ca_free(ca);
		return NULL;
	}
	return ca;
}

static int ca_make_pem(struct px_ca *ca, struct sv_err *err)
{
	size_t size = ca->crt.raw.len * 4 / 3 + 128, olen = 0;
	ca->pem = malloc(size);
	if (!ca->pem)
		return sv_err_set(err, ENOMEM, "out of memory");
	int r = mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n",
					 "-----END CERTIFICATE-----\n", ca->crt.raw.p, ca->crt.raw.len,
					 (unsigned char *)ca->pem, size, &olen);
	if (r != 0)
		return sv_err_set(err, EIO, "CA certificate PEM: -0x%04x", (unsigned)-r);
	return 0;
}

int px_ca_generate(struct px_ca **out, struct sv_err *err)
{
	*out = NULL;
	struct px_ca *ca = ca_alloc(err);
	if (!ca)
		return -(err && err->code ? err->code : ENOMEM);
	int r = gen_p256(&ca->rng, &ca->key, err);
	if (r < 0) {
		px_ca_free(ca);
		return r;
	}
	mbedtls_x509write_cert w;
	mbedtls_x509write_crt_init(&w);
	mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&w, &ca->key);
	mbedtls_x509write_crt_set_issuer_key(&w, &ca->key);
	r = set_serial(&w, &ca->rng);
	if (r == 0)
		r = mbedtls_x509write_crt_set_subject_name(&w, PX_CA_SUBJECT);
	if (r == 0)
		r = mbedtls_x509write_crt_set_issuer_name(&w, PX_CA_SUBJECT);
	if (r == 0)
		r = mbedtls_x509write_crt_set_validity(&w, PX_VALID_FROM, PX_VALID_TO);
	if (r == 0)
		r = mbedtls_x509write_crt_set_basic_constraints(&w, 1, -1);
	if (r == 0)
		r = mbedtls_x509write_crt_set_key_usage(
		    &w, MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN);
	if (r == 0)
		r = mbedtls_x509write_crt_set_subject_key_identifier(&w);
	if (r == 0)
		r = write_and_parse(&w, &ca->rng, &ca->crt);
	mbedtls_x509write_crt_free(&w);
	if (r != 0) {
		char e[PX_TLS_REASON_MAX];
		px_tls_strerror(r, e, sizeof(e));
		px_ca_free(ca);
		return sv_err_set(err, EIO, "CA certificate: %s", e);
	}
	if ((r = ca_make_pem(ca, err)) < 0) {
		px_ca_free(ca);
		return r;
	}
	*out = ca;
	return 0;
}

int px_ca_from_der(const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len,
		   struct px_ca **out, struct sv_err *err)
{
	*out = NULL;
	struct px_ca *ca = ca_alloc(err);
	if (!ca)
		return -(err && err->code ? err->code : ENOMEM);
	char e[PX_TLS_REASON_MAX];
	int r = mbedtls_x509_crt_parse_der(&ca->crt, cert, cert_len);
	if (r != 0) {
		px_tls_strerror(r, e, sizeof(e));
		px_ca_free(ca);
		return sv_err_set(err, EINVAL, "CA certificate DER: %s", e);
	}
	r = mbedtls_pk_parse_key(&ca->key, key, key_len, NULL, 0, mbedtls_ctr_drbg_random,
				 &ca->rng.drbg);
	if (r == 0)
		r = mbedtls_pk_check_pair(&ca->crt.pk, &ca->key, mbedtls_ctr_drbg_random,
					  &ca->rng.drbg);
	if (r != 0) {
		px_tls_strerror(r, e, sizeof(e));
		px_ca_free(ca);
		return sv_err_set(err, EINVAL, "CA private key: %s", e);
	}
	if ((r = ca_make_pem(ca, err)) < 0) {
		px_ca_free(ca);
		return r;
	}
	*out = ca;
	return 0;
}

const uint8_t *px_ca_cert_der(const struct px_ca *ca, size_t *len)
{
	*len = ca->crt.raw.len;
	return ca->crt.raw.p;
}

const char *px_ca_cert_pem(const struct px_ca *ca)
{
	return ca->pem;
}

int px_ca_key_der(const struct px_ca *ca, uint8_t *buf, size_t size)
{
	/* mbedtls_pk_write_key_der takes a non-const context but does not change it. */
	int n = mbedtls_pk_write_key_der((mbedtls_pk_context *)&ca->key, buf, size);
	if (n == MBEDTLS_ERR_ASN1_BUF_TOO_SMALL)
		return -ENOBUFS;
	if (n <= 0)
		return -EIO;
	memmove(buf, buf + size - (size_t)n, (size_t)n); /* written at the end */
	return n;
}

/* ---- leaves ----------------------------------------------------------------------------------- */

bool px_tls_host_is_ip(const char *host)
{
	unsigned char a[16];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* Lower-case @host into @out; only what a CONNECT host can be (letters, digits, '.', '-', '_',
 * and ':' for IPv6), so the CN string cannot inject another attribute. */
static int host_normalize(const char *host, char *out, struct sv_err *err)
{
	size_t n = strlen(host);
	if (n == 0 || n > PX_HOST_MAX)
		return sv_err_set(err, EINVAL, "leaf certificate: host length %zu not in 1..%d", n,
				  PX_HOST_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)host[i];
		if (!isalnum(ch) && ch != '.' && ch != '-' && ch != '_' && ch != ':')
			return sv_err_set(err, EINVAL,
					  "leaf certificate: host has a bad character at %zu", i);
		out[i] = (char)tolower(ch);
	}
	out[n] = '\0';
	return 0;
}

static void leaf_free(struct px_leaf *l)
{
	mbedtls_x509_crt_free(&l->chain);
	mbedtls_pk_free(&l->key);
	free(l);
}

static int leaf_make(struct px_leaf_cache *c, const char *host, struct px_leaf **out,
		     struct sv_err *err)
{
	struct px_leaf *l = calloc(1, sizeof(*l));
	if (!l)
		return sv_err_set(err, ENOMEM, "out of memory");
	mbedtls_x509_crt_init(&l->chain);
	mbedtls_pk_init(&l->key);
	sv_fmt(l->host, sizeof(l->host), "%s", host);
	int r = gen_p256(&c->rng, &l->key, err);
	if (r < 0) {
		leaf_free(l);
		return r;
	}
	unsigned char ip[16];
	mbedtls_x509_san_list san = {0};
	if (inet_pton(AF_INET, host, ip) == 1) {
		san.node.type = MBEDTLS_X509_SAN_IP_ADDRESS;
		san.node.san.unstructured_name = (mbedtls_x509_buf){.p = ip, .len = 4};
	} else if (inet_pton(AF_INET6, host, ip) == 1) {
		san.node.type = MBEDTLS_X509_SAN_IP_ADDRESS;
		san.node.san.unstructured_name = (mbedtls_x509_buf){.p = ip, .len = 16};
	} else {
		san.node.type = MBEDTLS_X509_SAN_DNS_NAME;
		san.node.san.unstructured_name =
		    (mbedtls_x509_buf){.p = (unsigned char *)l->host, .len = strlen(l->host)};
	}
	char subject[PX_HOST_MAX + 8];
	sv_fmt(subject, sizeof(subject), "CN=%s", host);
	mbedtls_x509write_cert w;
	mbedtls_x509write_crt_init(&w);
	mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&w, &l->key);
	mbedtls_x509write_crt_set_issuer_key(&w, (mbedtls_pk_context *)&c->ca->key);
	r = set_serial(&w, &c->rng);
	if (r == 0)
		r = mbedtls_x509write_crt_set_subject_name(&w, subject);
	if (r == 0)
		r = mbedtls_x509write_crt_set_issuer_name(&w, PX_CA_SUBJECT);
	if (r == 0)
		r = mbedtls_x509write_crt_set_validity(&w, PX_VALID_FROM, PX_VALID_TO);
	if (r == 0)
		r = mbedtls_x509write_crt_set_subject_alternative_name(&w, &san);
	if (r == 0)
		r = mbedtls_x509write_crt_set_authority_key_identifier(&w);
	if (r == 0)
		r = write_and_parse(&w, &c->rng, &l->chain);
	if (r == 0)
		r = mbedtls_x509_crt_parse_der(&l->chain, c->ca->crt.raw.p, c->ca->crt.raw.len);
	mbedtls_x509write_crt_free(&w);
	if (r != 0) {
		char e[PX_TLS_REASON_MAX];
		px_tls_strerror(r, e, sizeof(e));
		leaf_free(l);
		return sv_err_set(err, EIO, "leaf certificate for %s: %s", host, e);
	}
	*out = l;
	return 0;
}

int px_leaf_cache_new(const struct px_ca *ca, struct px_leaf_cache **out, struct sv_err *err)
{
	*out = NULL;
	struct px_leaf_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return sv_err_set(err, ENOMEM, "out of memory");
	c->ca = ca;
	pthread_mutex_init(&c->lock, NULL);
	int r = px_rng_init(&c->rng, err);
	if (r < 0) {
		px_leaf_cache_free(c);
		return r;
	}
	*out = c;
	return 0;
}

/* Drop the cache's reference to every leaf; the caller holds c->lock. */
static void cache_clear_locked(struct px_leaf_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		px_leaf_put(c->leaves[i]);
	c->n = 0;
}

void px_leaf_cache_free(struct px_leaf_cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	cache_clear_locked(c);
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_destroy(&c->lock);
	px_rng_free(&c->rng);
	free(c);
}

int px_leaf_get(struct px_leaf_cache *c, const char *host, struct px_leaf **out,
		struct sv_err *err)
{
	*out = NULL;
	char name[PX_HOST_MAX + 1];
	int r = host_normalize(host, name, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->leaves[i]->host, name) == 0) {
			__atomic_add_fetch(&c->leaves[i]->refs, 1, __ATOMIC_RELAXED);
			*out = c->leaves[i];
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
	if (c->n >= PX_TLS_LEAF_CACHE_MAX)
		cache_clear_locked(c); /* §1.4: the whole map goes */
	struct px_leaf *l = NULL;
	r = leaf_make(c, name, &l, err);
	if (r == 0 && l) {
		l->refs = 2; /* the cache's and the caller's */
		c->leaves[c->n++] = l;
		*out = l;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void px_leaf_put(struct px_leaf *l)
{
	if (!l)
		return;
	if (__atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) == 0)
		leaf_free(l);
}

size_t px_leaf_cache_count(const struct px_leaf_cache *c)
{
	return c->n;
}

const uint8_t *px_leaf_cert_der(const struct px_leaf *l, size_t *len)
{
	*len = l->chain.raw.len;
	return l->chain.raw.p;
}

mbedtls_x509_crt *px_leaf_chain(struct px_leaf *l)
{
	return &l->chain;
}

mbedtls_pk_context *px_leaf_key(struct px_leaf *l)
{
	return &l->key;
}
