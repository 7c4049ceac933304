/* netns/proxy/l7 TLS building blocks (l7 contract §1): black-box ports of upstream's tls.rs
 * tests (ca_generation, leaf_cert_generation, cache_*, looks_like_tls_*, upstream_config_alpn,
 * load_pem_certs_*, write_ca_files_includes_sandbox_ca), the tunnel classifier (§1.1), and
 * in-process handshakes: our server wrapper with a leaf against our client wrapper over a
 * non-blocking socketpair, against mbedTLS 3.6 (the product's).
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "netns/proxy/l7/px_tls.h"

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct px_ca *new_ca(void)
{
	struct px_ca *ca = NULL;
	struct sv_err err = {0};
	ck_assert_msg(px_ca_generate(&ca, &err) == 0, "%s", err.msg);
	return ca;
}

static void parse_der(mbedtls_x509_crt *crt, const uint8_t *der, size_t len)
{
	mbedtls_x509_crt_init(crt);
	ck_assert_int_eq(mbedtls_x509_crt_parse_der(crt, der, len), 0);
}

static void parse_ca(mbedtls_x509_crt *crt, const struct px_ca *ca)
{
	size_t len;
	const uint8_t *der = px_ca_cert_der(ca, &len);
	parse_der(crt, der, len);
}

/* ---- CA ------------------------------------------------------------------------------------- */

START_TEST(ca_generation)
{
	long long t0 = now_us();
	struct px_ca *ca = new_ca();
	fprintf(stderr, "px_tls: CA generation %lld us\n", now_us() - t0);
	const char *pem = px_ca_cert_pem(ca);
	ck_assert(strncmp(pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
	ck_assert_ptr_nonnull(strstr(pem, "-----END CERTIFICATE-----"));
	mbedtls_x509_crt crt;
	parse_ca(&crt, ca);
	char dn[256];
	ck_assert_int_gt(mbedtls_x509_dn_gets(dn, sizeof(dn), &crt.subject), 0);
	ck_assert_str_eq(dn, "CN=OpenShell Sandbox CA, O=OpenShell");
	ck_assert_int_gt(mbedtls_x509_dn_gets(dn, sizeof(dn), &crt.issuer), 0);
	ck_assert_str_eq(dn, "CN=OpenShell Sandbox CA, O=OpenShell");
	ck_assert_int_eq(mbedtls_x509_crt_get_ca_istrue(&crt), 1);
	ck_assert_int_eq(mbedtls_x509_crt_check_key_usage(&crt, MBEDTLS_X509_KU_KEY_CERT_SIGN |
								   MBEDTLS_X509_KU_CRL_SIGN),
			 0);
	ck_assert_int_ne(mbedtls_x509_crt_check_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE),
			 0);
	ck_assert_int_eq(crt.valid_from.year, 1975);
	ck_assert_int_eq(crt.valid_from.mon, 1);
	ck_assert_int_eq(crt.valid_from.day, 1);
	ck_assert_int_eq(crt.valid_to.year, 4096);
	ck_assert_int_eq(mbedtls_pk_get_type(&crt.pk), MBEDTLS_PK_ECKEY);
	ck_assert_int_eq(mbedtls_pk_get_bitlen(&crt.pk), 256);
	ck_assert_int_eq(crt.MBEDTLS_PRIVATE(sig_md), MBEDTLS_MD_SHA256);
	/* Self-signed: it verifies against itself. */
	uint32_t flags = 0;
	ck_assert_int_eq(mbedtls_x509_crt_verify(&crt, &crt, NULL, NULL, &flags, NULL, NULL), 0);
	mbedtls_x509_crt_free(&crt);
	/* Two CAs are two keys. */
	struct px_ca *other = new_ca();
	size_t a_len, b_len;
	const uint8_t *a = px_ca_cert_der(ca, &a_len), *b = px_ca_cert_der(other, &b_len);
	ck_assert(a_len != b_len || memcmp(a, b, a_len) != 0);
	px_ca_free(other);
	px_ca_free(ca);
}
END_TEST

START_TEST(ca_key_export_rebuilds_the_same_ca)
{
	struct px_ca *ca = new_ca();
	uint8_t key[512];
	int n = px_ca_key_der(ca, key, sizeof(key));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(px_ca_key_der(ca, key, 8), -ENOBUFS);
	n = px_ca_key_der(ca, key, sizeof(key));
	size_t len;
	const uint8_t *der = px_ca_cert_der(ca, &len);
	struct px_ca *copy = NULL;
	struct sv_err err = {0};
	ck_assert_msg(px_ca_from_der(der, len, key, (size_t)n, &copy, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(px_ca_cert_pem(copy), px_ca_cert_pem(ca));
	/* A key that does not match the certificate is refused. */
	struct px_ca *other = new_ca();
	uint8_t key2[512];
	int n2 = px_ca_key_der(other, key2, sizeof(key2));
	struct px_ca *bad = NULL;
	ck_assert_int_eq(px_ca_from_der(der, len, key2, (size_t)n2, &bad, &err), -EINVAL);
	ck_assert_ptr_null(bad);
	ck_assert_ptr_nonnull(strstr(err.msg, "CA private key"));
	/* The copy signs leaves the original's certificate verifies. */
	struct px_leaf_cache *c;
	ck_assert_int_eq(px_leaf_cache_new(copy, &c, &err), 0);
	struct px_leaf *leaf;
	ck_assert_int_eq(px_leaf_get(c, "copy.test", &leaf, &err), 0);
	mbedtls_x509_crt crt, cacrt;
	const uint8_t *ld = px_leaf_cert_der(leaf, &len);
	parse_der(&crt, ld, len);
	parse_ca(&cacrt, ca);
	uint32_t flags = 0;
	ck_assert_int_eq(
	    mbedtls_x509_crt_verify(&crt, &cacrt, NULL, "copy.test", &flags, NULL, NULL), 0);
	mbedtls_x509_crt_free(&crt);
	mbedtls_x509_crt_free(&cacrt);
	px_leaf_put(leaf);
	px_leaf_cache_free(c);
	explicit_bzero(key, sizeof(key));
	explicit_bzero(key2, sizeof(key2));
	px_ca_free(other);
	px_ca_free(copy);
	px_ca_free(ca);
}
END_TEST

/* ---- leaves --------------------------------------------------------------------------------- */

static bool has_san(const mbedtls_x509_crt *crt, int type, const void *val, size_t len)
{
	for (const mbedtls_x509_sequence *cur = &crt->subject_alt_names; cur; cur = cur->next) {
		mbedtls_x509_subject_alternative_name san;
		if (!cur->buf.p || mbedtls_x509_parse_subject_alt_name(&cur->buf, &san) != 0)
			continue;
		bool hit = san.type == type && san.san.unstructured_name.len == len &&
			   memcmp(san.san.unstructured_name.p, val, len) == 0;
		mbedtls_x509_free_subject_alt_name(&san);
		if (hit)
			return true;
	}
	return false;
}

START_TEST(leaf_cert_generation)
{
	struct px_ca *ca = new_ca();
	struct px_leaf_cache *c;
	struct sv_err err = {0};
	ck_assert_int_eq(px_leaf_cache_new(ca, &c, &err), 0);
	struct px_leaf *leaf;
	long long t0 = now_us();
	ck_assert_msg(px_leaf_get(c, "API.Example.com", &leaf, &err) == 0, "%s", err.msg);
	long long dt = now_us() - t0;
	size_t len;
	const uint8_t *der = px_leaf_cert_der(leaf, &len);
	mbedtls_x509_crt crt, cacrt;
	parse_der(&crt, der, len);
	parse_ca(&cacrt, ca);
	char dn[256];
	mbedtls_x509_dn_gets(dn, sizeof(dn), &crt.subject);
	ck_assert_str_eq(dn, "CN=api.example.com"); /* lower-cased CONNECT host */
	mbedtls_x509_dn_gets(dn, sizeof(dn), &crt.issuer);
	ck_assert_str_eq(dn, "CN=OpenShell Sandbox CA, O=OpenShell");
	ck_assert(has_san(&crt, MBEDTLS_X509_SAN_DNS_NAME, "api.example.com", 15));
	ck_assert_int_ne(mbedtls_x509_crt_get_ca_istrue(&crt), 1); /* no BasicConstraints, as rcgen */
	ck_assert_uint_gt(crt.authority_key_id.keyIdentifier.len, 0);
	ck_assert_uint_eq(crt.authority_key_id.keyIdentifier.len, cacrt.subject_key_id.len);
	ck_assert(memcmp(crt.authority_key_id.keyIdentifier.p, cacrt.subject_key_id.p,
			 cacrt.subject_key_id.len) == 0);
	ck_assert_int_eq(mbedtls_pk_get_type(&crt.pk), MBEDTLS_PK_ECKEY);
	uint32_t flags = 0;
	ck_assert_int_eq(
	    mbedtls_x509_crt_verify(&crt, &cacrt, NULL, "api.example.com", &flags, NULL, NULL), 0);
	ck_assert_int_ne(
	    mbedtls_x509_crt_verify(&crt, &cacrt, NULL, "other.example.com", &flags, NULL, NULL),
	    0);
	mbedtls_x509_crt_free(&crt);
	px_leaf_put(leaf);

	/* An IP literal gets an IP SAN, v4 and v6. */
	ck_assert_int_eq(px_leaf_get(c, "10.1.2.3", &leaf, &err), 0);
	der = px_leaf_cert_der(leaf, &len);
	parse_der(&crt, der, len);
	ck_assert(has_san(&crt, MBEDTLS_X509_SAN_IP_ADDRESS, "\x0a\x01\x02\x03", 4));
	ck_assert(!has_san(&crt, MBEDTLS_X509_SAN_DNS_NAME, "10.1.2.3", 8));
	ck_assert_int_eq(
	    mbedtls_x509_crt_verify(&crt, &cacrt, NULL, "10.1.2.3", &flags, NULL, NULL), 0);
	mbedtls_x509_crt_free(&crt);
	px_leaf_put(leaf);
	ck_assert_int_eq(px_leaf_get(c, "::1", &leaf, &err), 0);
	der = px_leaf_cert_der(leaf, &len);
	parse_der(&crt, der, len);
	ck_assert(has_san(&crt, MBEDTLS_X509_SAN_IP_ADDRESS,
			  "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16));
	mbedtls_x509_crt_free(&crt);
	px_leaf_put(leaf);

	/* A host that could smuggle another attribute into the subject is refused. */
	ck_assert_int_eq(px_leaf_get(c, "a.test,O=Evil", &leaf, &err), -EINVAL);
	ck_assert_int_eq(px_leaf_get(c, "", &leaf, &err), -EINVAL);

	/* Cost of one more leaf, averaged. */
	t0 = now_us();
	char host[32];
	for (int i = 0; i < 20; i++) {
		snprintf(host, sizeof(host), "h%d.cost.test", i);
		ck_assert_int_eq(px_leaf_get(c, host, &leaf, &err), 0);
		px_leaf_put(leaf);
	}
	fprintf(stderr, "px_tls: first leaf %lld us, then %lld us per leaf\n", dt,
		(now_us() - t0) / 20);
	mbedtls_x509_crt_free(&cacrt);
	px_leaf_cache_free(c);
	px_ca_free(ca);
}
END_TEST

START_TEST(cache_dedup)
{
	struct px_ca *ca = new_ca();
	struct px_leaf_cache *c;
	struct sv_err err = {0};
	ck_assert_int_eq(px_leaf_cache_new(ca, &c, &err), 0);
	struct px_leaf *a, *b, *d;
	ck_assert_int_eq(px_leaf_get(c, "example.com", &a, &err), 0);
	ck_assert_int_eq(px_leaf_get(c, "EXAMPLE.com", &b, &err), 0);
	ck_assert_ptr_eq(a, b);
	ck_assert_uint_eq(px_leaf_cache_count(c), 1);
	ck_assert_int_eq(px_leaf_get(c, "example.org", &d, &err), 0);
	ck_assert_ptr_ne(a, d);
	ck_assert_uint_eq(px_leaf_cache_count(c), 2);
	px_leaf_put(a);
	px_leaf_put(b);
	px_leaf_put(d);
	px_leaf_cache_free(c);
	px_ca_free(ca);
}
END_TEST

START_TEST(cache_overflow_clears)
{
	struct px_ca *ca = new_ca();
	struct px_leaf_cache *c;
	struct sv_err err = {0};
	ck_assert_int_eq(px_leaf_cache_new(ca, &c, &err), 0);
	char host[32];
	struct px_leaf *held = NULL, *l;
	for (int i = 0; i < PX_TLS_LEAF_CACHE_MAX; i++) {
		snprintf(host, sizeof(host), "host%d.test", i);
		ck_assert_int_eq(px_leaf_get(c, host, &l, &err), 0);
		if (i == 0)
			held = l; /* a session still serving it */
		else
			px_leaf_put(l);
	}
	ck_assert_uint_eq(px_leaf_cache_count(c), 256);
	ck_assert_int_eq(px_leaf_get(c, "one-more.test", &l, &err), 0);
	ck_assert_uint_eq(px_leaf_cache_count(c), 1);
	px_leaf_put(l);
	/* The held leaf survived the clear (ASan would see a use after free). */
	size_t len;
	ck_assert_ptr_nonnull(px_leaf_cert_der(held, &len));
	ck_assert_uint_gt(len, 100);
	/* A cleared host gets a new leaf. */
	ck_assert_int_eq(px_leaf_get(c, "host0.test", &l, &err), 0);
	ck_assert_ptr_ne(l, held);
	ck_assert_uint_eq(px_leaf_cache_count(c), 2);
	px_leaf_put(l);
	px_leaf_put(held);
	px_leaf_cache_free(c);
	px_ca_free(ca);
}
END_TEST

/* ---- classification (§1.1) ------------------------------------------------------------------ */

#define CLS(s) px_tunnel_classify((const uint8_t *)(s), sizeof(s) - 1)

START_TEST(looks_like_tls_valid_clienthello)
{
	static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
	ck_assert(px_tls_looks_like_tls(hello, sizeof(hello)));
	static const uint8_t tls13[] = {0x16, 0x03, 0x04};
	ck_assert(px_tls_looks_like_tls(tls13, 3));
	ck_assert_int_eq(px_tunnel_classify(hello, sizeof(hello)), PX_TUNNEL_TLS);
}
END_TEST

START_TEST(looks_like_tls_rejects_http)
{
	ck_assert(!px_tls_looks_like_tls((const uint8_t *)"GET / HTTP/1.1\r\n", 16));
}
END_TEST

START_TEST(looks_like_tls_rejects_short_input)
{
	static const uint8_t two[] = {0x16, 0x03};
	ck_assert(!px_tls_looks_like_tls(two, 2));
	ck_assert(!px_tls_looks_like_tls(two, 0));
}
END_TEST

START_TEST(looks_like_tls_rejects_non_tls_binary)
{
	static const uint8_t a[] = {0x00, 0x01, 0x02, 0x03}, b[] = {0x16, 0x02, 0x01},
			     c[] = {0x16, 0x03, 0x05}, d[] = {0x17, 0x03, 0x03};
	ck_assert(!px_tls_looks_like_tls(a, sizeof(a)));
	ck_assert(!px_tls_looks_like_tls(b, sizeof(b)));
	ck_assert(!px_tls_looks_like_tls(c, sizeof(c)));
	ck_assert(!px_tls_looks_like_tls(d, sizeof(d)));
}
END_TEST

START_TEST(tunnel_protocol_classification_detects_supported_protocols)
{
	static const char *const methods[] = {"GET ",	  "HEAD ",     "POST ",
					      "PUT ",	  "DELETE ",   "PATCH ",
					      "OPTIONS ", "CONNECT ", "TRACE "};
	for (size_t i = 0; i < SV_ARRAY_SIZE(methods); i++)
		ck_assert_int_eq(px_tunnel_classify((const uint8_t *)methods[i], strlen(methods[i])),
				 PX_TUNNEL_HTTP1);
	ck_assert_int_eq(CLS("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"), PX_TUNNEL_HTTP1);
	ck_assert_int_eq(CLS("PRI * HT"), PX_TUNNEL_H2C);
	ck_assert_int_eq(CLS("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), PX_TUNNEL_H2C);
	ck_assert_int_eq(CLS("SSH-2.0-OpenSSH_9.2\r\n"), PX_TUNNEL_OTHER);
	ck_assert_int_eq(CLS("get / HTTP/1.1"), PX_TUNNEL_OTHER); /* methods are case-sensitive */
	ck_assert_int_eq(CLS("PRI * HTTP/1.1\r\n"), PX_TUNNEL_OTHER);
	ck_assert_int_eq(CLS("\x16\x03\x03\x00\x10"), PX_TUNNEL_TLS);
}
END_TEST

START_TEST(tunnel_protocol_prefix_detection_waits_for_partial_supported_prefixes)
{
	ck_assert_int_eq(px_tunnel_classify(NULL, 0), PX_TUNNEL_NEED_MORE);
	ck_assert_int_eq(CLS("\x16"), PX_TUNNEL_NEED_MORE);
	ck_assert_int_eq(CLS("\x16\x03"), PX_TUNNEL_NEED_MORE);
	ck_assert_int_eq(CLS("G"), PX_TUNNEL_NEED_MORE);
	ck_assert_int_eq(CLS("GET"), PX_TUNNEL_NEED_MORE);
	ck_assert_int_eq(CLS("OPTIONS"), PX_TUNNEL_NEED_MORE);
	ck_assert_int_eq(CLS("P"), PX_TUNNEL_NEED_MORE);
	ck_assert_int_eq(CLS("PRI * H"), PX_TUNNEL_NEED_MORE); /* 7 bytes: h2c needs 8 */
	/* No longer a possible prefix: decided now. */
	ck_assert_int_eq(CLS("\x16\x04"), PX_TUNNEL_OTHER);
	ck_assert_int_eq(CLS("GEX"), PX_TUNNEL_OTHER);
	ck_assert_int_eq(CLS("X"), PX_TUNNEL_OTHER);
	ck_assert_int_eq(CLS("\x00"), PX_TUNNEL_OTHER);
}
END_TEST

/* ---- trust store ---------------------------------------------------------------------------- */

START_TEST(upstream_config_alpn)
{
	struct px_tls_client *c = NULL;
	struct sv_err err = {0};
	ck_assert_msg(px_tls_client_new(NULL, 0, &c, &err) == 0, "%s", err.msg);
	const char *const *alpn = px_tls_client_alpn(c);
	ck_assert_str_eq(alpn[0], "http/1.1");
	ck_assert_ptr_null(alpn[1]);
	/* Default trust: system bundle plus the bundled Mozilla roots. */
	ck_assert_uint_gt(px_roots_count(), 100);
	ck_assert_uint_ge(px_tls_client_roots(c), px_roots_count());
	px_tls_client_free(c);
	/* No trust anchors at all is an error, not an open door. */
	ck_assert_int_eq(px_tls_client_new(NULL, PX_TLS_CLIENT_NO_DEFAULT_ROOTS, &c, &err),
			 -ENOENT);
	ck_assert_ptr_null(c);
}
END_TEST

static int load_pem(const char *text)
{
	mbedtls_x509_crt chain;
	mbedtls_x509_crt_init(&chain);
	int n = px_tls_load_pem_certs(&chain, text, strlen(text));
	mbedtls_x509_crt_free(&chain);
	return n;
}

START_TEST(load_pem_certs_single_ca)
{
	struct px_ca *ca = new_ca();
	ck_assert_int_eq(load_pem(px_ca_cert_pem(ca)), 1);
	px_ca_free(ca);
}
END_TEST

START_TEST(load_pem_certs_multiple_cas)
{
	struct px_ca *a = new_ca(), *b = new_ca();
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s%s", px_ca_cert_pem(a), px_ca_cert_pem(b));
	ck_assert_int_eq(load_pem(buf), 2);
	px_ca_free(a);
	px_ca_free(b);
}
END_TEST

START_TEST(load_pem_certs_empty_string)
{
	ck_assert_int_eq(load_pem(""), 0);
}
END_TEST

START_TEST(load_pem_certs_garbage_input)
{
	ck_assert_int_eq(load_pem("this is not a certificate\n\x01\x02"), 0);
}
END_TEST

START_TEST(load_pem_certs_malformed_pem_block)
{
	ck_assert_int_eq(
	    load_pem("-----BEGIN CERTIFICATE-----\nnot*base64!!\n-----END CERTIFICATE-----\n"),
	    0);
}
END_TEST

START_TEST(load_pem_certs_mixed_valid_and_invalid)
{
	struct px_ca *a = new_ca(), *b = new_ca();
	char buf[8192];
	snprintf(buf, sizeof(buf),
		 "%s-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n%s",
		 px_ca_cert_pem(a), px_ca_cert_pem(b));
	ck_assert_int_eq(load_pem(buf), 2);
	px_ca_free(a);
	px_ca_free(b);
}
END_TEST

/* ---- CA files ------------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	char *buf = malloc(4 * 1024 * 1024);
	*len = fread(buf, 1, 4 * 1024 * 1024 - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

START_TEST(write_ca_files_includes_sandbox_ca)
{
	char base[] = "/tmp/px_tls_XXXXXX", dir[128], path[256];
	ck_assert_ptr_nonnull(mkdtemp(base));
	snprintf(dir, sizeof(dir), "%s/etc/openshell-tls", base); /* mkdir -p */
	struct px_ca *ca = new_ca();
	struct sv_err err = {0};
	ck_assert_msg(px_tls_write_ca_files(dir, px_ca_cert_pem(ca), &err) == 0, "%s", err.msg);
	size_t len;
	snprintf(path, sizeof(path), "%s/openshell-ca.pem", dir);
	char *cafile = slurp(path, &len);
	ck_assert_str_eq(cafile, px_ca_cert_pem(ca));
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0644);
	snprintf(path, sizeof(path), "%s/ca-bundle.pem", dir);
	char *bundle = slurp(path, &len);
	size_t pl = strlen(px_ca_cert_pem(ca));
	ck_assert_uint_ge(len, pl);
	ck_assert_str_eq(bundle + len - pl, px_ca_cert_pem(ca)); /* the CA comes last */
	char *sys;
	size_t sys_len;
	const char *sys_path;
	if (px_tls_system_bundle(&sys, &sys_len, &sys_path) == 0) {
		ck_assert(memcmp(bundle, sys, sys_len) == 0); /* the system bundle first */
		ck_assert_uint_eq(len, sys_len + (sys[sys_len - 1] != '\n') + pl);
		free(sys);
	} else {
		ck_assert_uint_eq(len, pl);
	}
	free(cafile);
	free(bundle);
	/* Rewriting is fine (a restart); a file where the directory should be is an error. */
	ck_assert_int_eq(px_tls_write_ca_files(dir, px_ca_cert_pem(ca), &err), 0);
	snprintf(path, sizeof(path), "%s/file", base);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(dir, sizeof(dir), "%s/file/sub", base);
	ck_assert_int_lt(px_tls_write_ca_files(dir, px_ca_cert_pem(ca), &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "file"));
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	ck_assert_int_eq(system(cmd), 0);
	px_ca_free(ca);
}
END_TEST

START_TEST(tls_dir_comes_from_the_environment)
{
	unsetenv("OPENSHELL_PROXY_TLS_DIR");
	ck_assert_str_eq(px_tls_dir(), "/etc/openshell-tls");
	setenv("OPENSHELL_PROXY_TLS_DIR", "/run/x-tls", 1);
	ck_assert_str_eq(px_tls_dir(), "/run/x-tls");
	setenv("OPENSHELL_PROXY_TLS_DIR", "", 1);
	ck_assert_str_eq(px_tls_dir(), "/etc/openshell-tls");
	unsetenv("OPENSHELL_PROXY_TLS_DIR");
}
END_TEST

/* ---- handshakes over a socketpair ----------------------------------------------------------- */

struct pair {
	int fd[2];
	struct px_ca *ca;
	struct px_leaf_cache *leaves;
	struct px_tls_server *server;
	struct px_tls_client *client;
	struct px_tls_conn *s, *c;
	int sr, cr; /* last handshake results */
	struct sv_err serr, cerr;
};

static void pair_open(struct pair *p, const char *trust_pem)
{
	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->fd),
			 0);
	p->ca = new_ca();
	struct sv_err err = {0};
	ck_assert_int_eq(px_leaf_cache_new(p->ca, &p->leaves, &err), 0);
	ck_assert_int_eq(px_tls_server_new(p->leaves, &p->server, &err), 0);
	ck_assert_msg(px_tls_client_new(trust_pem ? trust_pem : px_ca_cert_pem(p->ca),
					PX_TLS_CLIENT_NO_DEFAULT_ROOTS, &p->client, &err) == 0,
		      "%s", err.msg);
}

static void pair_close(struct pair *p)
{
	px_tls_conn_free(p->s);
	px_tls_conn_free(p->c);
	px_tls_client_free(p->client);
	px_tls_server_free(p->server);
	px_leaf_cache_free(p->leaves);
	px_ca_free(p->ca);
	close(p->fd[0]);
	close(p->fd[1]);
}

/* Drive both handshakes, non-blocking, until both finish or one fails. */
static void pair_handshake(struct pair *p)
{
	p->sr = p->cr = -EAGAIN;
	for (int i = 0; i < 10000 && (p->sr == -EAGAIN || p->cr == -EAGAIN); i++) {
		bool ww;
		if (p->cr == -EAGAIN)
			p->cr = px_tls_handshake(p->c, &ww, &p->cerr);
		if (p->sr == -EAGAIN)
			p->sr = px_tls_handshake(p->s, &ww, &p->serr);
		if ((p->sr < 0 && p->sr != -EAGAIN) || (p->cr < 0 && p->cr != -EAGAIN))
			break;
	}
}

static void pair_connect(struct pair *p, const char *connect_host, const char *client_host)
{
	struct sv_err err = {0};
	ck_assert_int_eq(px_tls_accept(p->server, p->fd[0], connect_host, &p->s, &err), 0);
	ck_assert_int_eq(px_tls_connect(p->client, p->fd[1], client_host, &p->c, &err), 0);
	pair_handshake(p);
}

static void exchange(struct px_tls_conn *from, struct px_tls_conn *to, const char *msg)
{
	bool ww;
	struct sv_err err = {0};
	ck_assert_int_eq(px_tls_write(from, (const uint8_t *)msg, strlen(msg), &ww, &err),
			 (ssize_t)strlen(msg));
	uint8_t buf[256];
	ssize_t n = -EAGAIN;
	for (int i = 0; i < 1000 && n == -EAGAIN; i++)
		n = px_tls_read(to, buf, sizeof(buf), &ww, &err);
	ck_assert_int_eq(n, (ssize_t)strlen(msg));
	ck_assert(memcmp(buf, msg, strlen(msg)) == 0);
}

START_TEST(handshake_with_a_leaf_negotiates_http11_both_ways)
{
	struct pair p;
	pair_open(&p, NULL);
	long long t0 = now_us();
	pair_connect(&p, "API.example.test", "api.example.test");
	long long dt = now_us() - t0;
	ck_assert_msg(p.cr == 0, "client: %s", p.cerr.msg);
	ck_assert_msg(p.sr == 0, "server: %s", p.serr.msg);
	fprintf(stderr, "px_tls: handshake (leaf made on the way) %lld us, %s\n", dt,
		px_tls_version(p.c));
	ck_assert_str_eq(px_tls_alpn(p.c), "http/1.1");
	ck_assert_str_eq(px_tls_alpn(p.s), "http/1.1");
	ck_assert_str_eq(px_tls_version(p.c), "TLSv1.3");
	exchange(p.c, p.s, "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n");
	exchange(p.s, p.c, "HTTP/1.1 204 No Content\r\n\r\n");
	/* close_notify reads as a clean 0 on the other side. */
	bool ww;
	ck_assert_int_eq(px_tls_close_notify(p.c, &ww), 0);
	uint8_t buf[16];
	ssize_t n = -EAGAIN;
	for (int i = 0; i < 1000 && n == -EAGAIN; i++)
		n = px_tls_read(p.s, buf, sizeof(buf), &ww, &p.serr);
	ck_assert_int_eq(n, 0);
	pair_close(&p);
}
END_TEST

START_TEST(the_leaf_follows_the_connect_host_not_sni)
{
	/* The agent says SNI "evil.test", the CONNECT was for good.test: the leaf names
	 * good.test, so a client verifying evil.test fails with a name mismatch. */
	struct pair p;
	pair_open(&p, NULL);
	pair_connect(&p, "good.test", "evil.test");
	ck_assert_int_eq(p.cr, -EPERM);
	ck_assert_msg(strstr(p.cerr.msg, "certificate verify failed") &&
			  strstr(p.cerr.msg, "name mismatch"),
		      "%s", p.cerr.msg);
	pair_close(&p);
}
END_TEST

START_TEST(an_ip_literal_host_verifies_against_the_ip_san)
{
	struct pair p;
	pair_open(&p, NULL);
	pair_connect(&p, "127.0.0.1", "127.0.0.1");
	ck_assert_msg(p.cr == 0, "client: %s", p.cerr.msg);
	ck_assert_msg(p.sr == 0, "server: %s", p.serr.msg);
	pair_close(&p);
	/* A DNS leaf does not satisfy an IP literal, nor a different IP. */
	pair_open(&p, NULL);
	pair_connect(&p, "127.0.0.1", "127.0.0.2");
	ck_assert_int_eq(p.cr, -EPERM);
	ck_assert_msg(strstr(p.cerr.msg, "name mismatch"), "%s", p.cerr.msg);
	pair_close(&p);
	pair_open(&p, NULL);
	pair_connect(&p, "localhost", "127.0.0.1");
	ck_assert_int_eq(p.cr, -EPERM);
	ck_assert_msg(strstr(p.cerr.msg, "name mismatch"), "%s", p.cerr.msg);
	pair_close(&p);
}
END_TEST

START_TEST(an_untrusted_upstream_fails_verification_with_a_reason)
{
	struct px_ca *other = new_ca();
	struct pair p;
	pair_open(&p, px_ca_cert_pem(other)); /* the client trusts another CA */
	pair_connect(&p, "api.example.test", "api.example.test");
	ck_assert_int_eq(p.cr, -EPERM);
	ck_assert_msg(strstr(p.cerr.msg, "certificate verify failed: unknown CA"), "%s",
		      p.cerr.msg);
	pair_close(&p);
	px_ca_free(other);
}
END_TEST

/* A raw mbedTLS client offering only h2. */
START_TEST(a_client_offering_only_h2_fails)
{
	struct pair p;
	pair_open(&p, NULL);
	struct sv_err err = {0};
	ck_assert_int_eq(px_tls_accept(p.server, p.fd[0], "api.example.test", &p.s, &err), 0);
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ssl_config conf;
	mbedtls_ssl_context ssl;
	mbedtls_entropy_init(&ent);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_ssl_config_init(&conf);
	mbedtls_ssl_init(&ssl);
	ck_assert_int_eq(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0), 0);
	ck_assert_int_eq(mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT,
						     MBEDTLS_SSL_TRANSPORT_STREAM,
						     MBEDTLS_SSL_PRESET_DEFAULT),
			 0);
	static const char *h2[] = {"h2", NULL};
	ck_assert_int_eq(mbedtls_ssl_conf_alpn_protocols(&conf, h2), 0);
	mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_NONE);
	mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
	ck_assert_int_eq(mbedtls_ssl_setup(&ssl, &conf), 0);
	/* mbedtls_net's BIO over the non-blocking fd (an mbedtls_net_context is one int). */
	mbedtls_ssl_set_bio(&ssl, &p.fd[1], mbedtls_net_send, mbedtls_net_recv, NULL);
	int cr = MBEDTLS_ERR_SSL_WANT_READ, sr = -EAGAIN;
	for (int i = 0; i < 10000; i++) {
		if (cr == MBEDTLS_ERR_SSL_WANT_READ || cr == MBEDTLS_ERR_SSL_WANT_WRITE)
			cr = mbedtls_ssl_handshake(&ssl);
		bool ww;
		if (sr == -EAGAIN)
			sr = px_tls_handshake(p.s, &ww, &p.serr);
		if (sr != -EAGAIN &&
		    cr != MBEDTLS_ERR_SSL_WANT_READ && cr != MBEDTLS_ERR_SSL_WANT_WRITE)
			break;
		if (sr < 0 && sr != -EAGAIN)
			break;
	}
	ck_assert_int_eq(sr, -EPROTO);
	ck_assert_msg(strstr(p.serr.msg, "no common application protocol"), "%s", p.serr.msg);
	ck_assert_int_ne(cr, 0);
	mbedtls_ssl_free(&ssl);
	mbedtls_ssl_config_free(&conf);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&ent);
	pair_close(&p);
}
END_TEST

START_TEST(a_peer_that_hangs_up_mid_handshake_is_an_error_not_a_hang)
{
	struct pair p;
	pair_open(&p, NULL);
	struct sv_err err = {0};
	ck_assert_int_eq(px_tls_connect(p.client, p.fd[1], "a.test", &p.c, &err), 0);
	bool ww;
	ck_assert_int_eq(px_tls_handshake(p.c, &ww, &err), -EAGAIN); /* ClientHello sent */
	ck_assert(!ww);
	shutdown(p.fd[0], SHUT_RDWR);
	int r = px_tls_handshake(p.c, &ww, &err);
	ck_assert_int_lt(r, 0);
	ck_assert_int_ne(r, -EAGAIN);
	pair_close(&p);
}
END_TEST

static Suite *px_tls_suite(void)
{
	Suite *s = suite_create("px_tls");
	TCase *tc = tcase_create("tls");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, ca_generation);
	tcase_add_test(tc, ca_key_export_rebuilds_the_same_ca);
	tcase_add_test(tc, leaf_cert_generation);
	tcase_add_test(tc, cache_dedup);
	tcase_add_test(tc, cache_overflow_clears);
	tcase_add_test(tc, looks_like_tls_valid_clienthello);
	tcase_add_test(tc, looks_like_tls_rejects_http);
	tcase_add_test(tc, looks_like_tls_rejects_short_input);
	tcase_add_test(tc, looks_like_tls_rejects_non_tls_binary);
	tcase_add_test(tc, tunnel_protocol_classification_detects_supported_protocols);
	tcase_add_test(tc, tunnel_protocol_prefix_detection_waits_for_partial_supported_prefixes);
	tcase_add_test(tc, upstream_config_alpn);
	tcase_add_test(tc, load_pem_certs_single_ca);
	tcase_add_test(tc, load_pem_certs_multiple_cas);
	tcase_add_test(tc, load_pem_certs_empty_string);
	tcase_add_test(tc, load_pem_certs_garbage_input);
	tcase_add_test(tc, load_pem_certs_malformed_pem_block);
	tcase_add_test(tc, load_pem_certs_mixed_valid_and_invalid);
	tcase_add_test(tc, write_ca_files_includes_sandbox_ca);
	tcase_add_test(tc, tls_dir_comes_from_the_environment);
	tcase_add_test(tc, handshake_with_a_leaf_negotiates_http11_both_ways);
	tcase_add_test(tc, the_leaf_follows_the_connect_host_not_sni);
	tcase_add_test(tc, an_ip_literal_host_verifies_against_the_ip_san);
	tcase_add_test(tc, an_untrusted_upstream_fails_verification_with_a_reason);
	tcase_add_test(tc, a_client_offering_only_h2_fails);
	tcase_add_test(tc, a_peer_that_hangs_up_mid_handshake_is_an_error_not_a_hang);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(px_tls_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
