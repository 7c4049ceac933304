/* TLS for the gateway connection (contract §10 "Transport/auth"): mbedTLS client, TLS 1.2 or
 * 1.3, ALPN "h2" required, the peer verified against OPENSHELL_TLS_CA only, the client
 * certificate and key presented, SNI and verification for the server-name override if set.
 *
 * Non-blocking over the connection's socket. The DRBG is seeded from getrandom only
 * (supervisor/entropy); a seeding failure fails the setup. Key material is wiped after parsing.
 * Written against mbedTLS 2.28 (Debian's, for the glibc tests: TLS 1.2 only) and 3.6 (product).
 */
#include "session/gateway/gw_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#if MBEDTLS_VERSION_MAJOR >= 3
#include <psa/crypto.h>
#endif

#include "supervisor/entropy.h"

/* TLS 1.3 runs on PSA crypto, whose global RNG gathers from mbedTLS's default sources:
 * /dev/urandom on musl. mbedTLS 3.x has a hook to give it ours instead (declared in its
 * library-internal psa_crypto_invasive.h, not installed, exported by libmbedcrypto). */
#if MBEDTLS_VERSION_MAJOR == 3 && defined(MBEDTLS_PSA_CRYPTO_C) && \
    !defined(MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG)
#define PSA_ENTROPY_FROM_GETRANDOM 1
psa_status_t
mbedtls_psa_crypto_configure_entropy_sources(void (*entropy_init)(mbedtls_entropy_context *ctx),
					     void (*entropy_free)(mbedtls_entropy_context *ctx));

/* A context with getrandom as its only source, or with no source at all (seeding then fails
 * and so does psa_crypto_init: never a silent fallback). */
static void psa_entropy_init(mbedtls_entropy_context *ctx)
{
	if (sv_entropy_setup(ctx, NULL) < 0) {
		mbedtls_entropy_init(ctx);
		ctx->MBEDTLS_PRIVATE(source_count) = 0;
	}
}
#else
#define PSA_ENTROPY_FROM_GETRANDOM 0
#endif

/* Certificates and keys are small; anything bigger is not one. */
#define PEM_FILE_MAX ((size_t)1024 * 1024)

struct gw_tls {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_x509_crt ca, cert;
	mbedtls_pk_context key;
	mbedtls_ssl_config conf;
	mbedtls_ssl_context ssl;
	int fd;
	int io_errno; /* errno of the last failed send/recv */
};

static const char *alpn_h2[] = {"h2", NULL};

static void tls_strerror(int r, char *buf, size_t size)
{
	mbedtls_strerror(r, buf, size);
	size_t n = strlen(buf);
	sv_fmt(buf + n, size - n, " (-0x%04x)", (unsigned)-r);
}

/* Read the whole file named by environment variable @var (value @path) into a NUL-terminated
 * buffer; *@len counts the NUL, as mbedTLS's PEM parsers want. */
static int missing(const char *var, struct sv_err *err)
{
	return sv_err_set(err, EINVAL, "%s is not set (required for an https:// gateway)", var);
}

static int read_pem(const char *var, const char *path, unsigned char **out, size_t *len,
		    struct sv_err *err)
{
	*out = NULL;
	*len = 0;
	if (!path || !*path)
		return missing(var, err);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sv_err_set(err, errno, "%s=%s: cannot read: %s", var, path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > PEM_FILE_MAX) {
		close(fd);
		return sv_err_set(err, EINVAL, "%s=%s: not a regular file of at most %zu bytes",
				  var, path, PEM_FILE_MAX);
	}
	size_t size = (size_t)st.st_size, got = 0;
	unsigned char *buf = malloc(size + 1);
	if (!buf) {
		close(fd);
		return sv_err_set(err, ENOMEM, "out of memory");
	}
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			explicit_bzero(buf, size + 1);
			free(buf);
			return sv_err_set(err, e, "%s=%s: cannot read: %s", var, path, strerror(e));
		}
		got += (size_t)n;
	}
	close(fd);
	buf[size] = '\0';
	*out = buf;
	*len = size + 1;
	return 0;
}

static int load_crt(mbedtls_x509_crt *crt, const char *var, const char *path, struct sv_err *err)
{
	unsigned char *buf;
	size_t len;
	int r = read_pem(var, path, &buf, &len, err);
	if (r < 0 || !buf)
		return r < 0 ? r : -EIO;
	r = mbedtls_x509_crt_parse(crt, buf, len);
	free(buf);
	if (r < 0 || crt->version == 0) {
		char e[160] = "no certificate found";
		if (r < 0)
			tls_strerror(r, e, sizeof(e));
		return sv_err_set(err, EINVAL, "%s=%s: not a certificate: %s", var, path, e);
	}
	return 0;
}

static int load_key(struct gw_tls *t, const char *path, struct sv_err *err)
{
	unsigned char *buf;
	size_t len;
	int r = read_pem("OPENSHELL_TLS_KEY", path, &buf, &len, err);
	if (r < 0 || !buf)
		return r < 0 ? r : -EIO;
#if MBEDTLS_VERSION_MAJOR >= 3
	r = mbedtls_pk_parse_key(&t->key, buf, len, NULL, 0, mbedtls_ctr_drbg_random, &t->drbg);
#else
	r = mbedtls_pk_parse_key(&t->key, buf, len, NULL, 0);
#endif
	explicit_bzero(buf, len);
	free(buf);
	char e[160];
	if (r != 0) {
		tls_strerror(r, e, sizeof(e));
		return sv_err_set(err, EINVAL, "OPENSHELL_TLS_KEY=%s: not a private key: %s", path,
				  e);
	}
#if MBEDTLS_VERSION_MAJOR >= 3
	r = mbedtls_pk_check_pair(&t->cert.pk, &t->key, mbedtls_ctr_drbg_random, &t->drbg);
#else
	r = mbedtls_pk_check_pair(&t->cert.pk, &t->key);
#endif
	if (r != 0)
		return sv_err_set(err, EINVAL,
				  "OPENSHELL_TLS_KEY=%s does not match the certificate in "
				  "OPENSHELL_TLS_CERT",
				  path);
	return 0;
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct gw_tls *t = ctx;
	for (;;) {
		ssize_t n = send(t->fd, buf, len, MSG_NOSIGNAL);
		if (n >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return MBEDTLS_ERR_SSL_WANT_WRITE;
		t->io_errno = errno;
		return MBEDTLS_ERR_NET_SEND_FAILED;
	}
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct gw_tls *t = ctx;
	for (;;) {
		ssize_t n = recv(t->fd, buf, len, 0);
		if (n >= 0)
			return (int)n; /* 0: EOF, which mbedTLS reports as such */
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return MBEDTLS_ERR_SSL_WANT_READ;
		t->io_errno = errno;
		return MBEDTLS_ERR_NET_RECV_FAILED;
	}
}

void gw_tls_free(struct gw_tls *t)
{
	if (!t)
		return;
	mbedtls_ssl_free(&t->ssl);
	mbedtls_ssl_config_free(&t->conf);
	mbedtls_x509_crt_free(&t->ca);
	mbedtls_x509_crt_free(&t->cert);
	mbedtls_pk_free(&t->key);
	mbedtls_ctr_drbg_free(&t->drbg);
	mbedtls_entropy_free(&t->entropy);
	free(t);
}

int gw_tls_new(const struct gw_conn_opts *opts, const char *host, struct gw_tls **out,
	       struct sv_err *err)
{
	/* Name every missing variable before any work, the first one first. */
	if (!opts->ca_file || !*opts->ca_file)
		return missing("OPENSHELL_TLS_CA", err);
	if (!opts->cert_file || !*opts->cert_file)
		return missing("OPENSHELL_TLS_CERT", err);
	if (!opts->key_file || !*opts->key_file)
		return missing("OPENSHELL_TLS_KEY", err);
	struct gw_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return sv_err_set(err, ENOMEM, "out of memory");
	t->fd = -1;
	mbedtls_ctr_drbg_init(&t->drbg);
	mbedtls_x509_crt_init(&t->ca);
	mbedtls_x509_crt_init(&t->cert);
	mbedtls_pk_init(&t->key);
	mbedtls_ssl_config_init(&t->conf);
	mbedtls_ssl_init(&t->ssl);
	int r = sv_entropy_setup(&t->entropy, err);
	if (r < 0) {
		mbedtls_entropy_init(&t->entropy); /* freed again by gw_tls_free: harmless */
		gw_tls_free(t);
		return r;
	}
	static const unsigned char pers[] = "openshell gateway tls";
	r = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy, pers,
				  sizeof(pers) - 1);
	if (r != 0) {
		gw_tls_free(t);
		return sv_err_set(err, EIO,
				  "cannot seed the TLS random generator from getrandom: "
				  "-0x%04x",
				  (unsigned)-r);
	}
#if PSA_ENTROPY_FROM_GETRANDOM
	/* Before the first psa_crypto_init only; BAD_STATE after it (already ours). */
	(void)mbedtls_psa_crypto_configure_entropy_sources(psa_entropy_init, mbedtls_entropy_free);
#endif
#if MBEDTLS_VERSION_MAJOR >= 3 && defined(MBEDTLS_PSA_CRYPTO_C)
	psa_status_t ps = psa_crypto_init(); /* TLS 1.3 runs on PSA */
	if (ps != PSA_SUCCESS) {
		gw_tls_free(t);
		return sv_err_set(err, EIO, "cannot initialise PSA crypto for TLS 1.3: %d",
				  (int)ps);
	}
#endif
	if ((r = load_crt(&t->ca, "OPENSHELL_TLS_CA", opts->ca_file, err)) < 0 ||
	    (r = load_crt(&t->cert, "OPENSHELL_TLS_CERT", opts->cert_file, err)) < 0 ||
	    (r = load_key(t, opts->key_file, err)) < 0) {
		gw_tls_free(t);
		return r;
	}
	char e[160];
	r = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT,
					MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (r == 0) {
		mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
		mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
		mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
#if MBEDTLS_VERSION_MAJOR >= 3
		mbedtls_ssl_conf_min_tls_version(&t->conf, MBEDTLS_SSL_VERSION_TLS1_2);
#else
		mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
					     MBEDTLS_SSL_MINOR_VERSION_3);
#endif
		r = mbedtls_ssl_conf_own_cert(&t->conf, &t->cert, &t->key);
	}
	if (r == 0)
		r = mbedtls_ssl_conf_alpn_protocols(&t->conf, alpn_h2);
	if (r == 0)
		r = mbedtls_ssl_setup(&t->ssl, &t->conf);
	const char *name = opts->server_name && *opts->server_name ? opts->server_name : host;
	if (r == 0)
		r = mbedtls_ssl_set_hostname(&t->ssl, name); /* SNI and the name verified */
	if (r != 0) {
		tls_strerror(r, e, sizeof(e));
		gw_tls_free(t);
		return sv_err_set(err, EINVAL, "TLS setup for %s: %s", name, e);
	}
	mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
	*out = t;
	return 0;
}

void gw_tls_set_fd(struct gw_tls *t, int fd)
{
	t->fd = fd;
}

/* Map an mbedTLS result that is not data: -EAGAIN for the two WANTs, else an error. */
static int tls_result(struct gw_tls *t, int r, bool *want_write, struct sv_err *err)
{
	char e[160];
	if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {
		*want_write = r == MBEDTLS_ERR_SSL_WANT_WRITE;
		return -EAGAIN;
	}
	if (r == MBEDTLS_ERR_NET_SEND_FAILED || r == MBEDTLS_ERR_NET_RECV_FAILED) {
		int en = t->io_errno ? t->io_errno : EIO;
		return sv_err_set(err, en, "%s", strerror(en));
	}
	if (r == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
		char info[256];
		uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
		int n = mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
		while (n > 0 && (info[n - 1] == '\n' || info[n - 1] == ' '))
			info[--n] = '\0';
		for (int i = 0; i < n; i++)
			if (info[i] == '\n')
				info[i] = ';';
		return sv_err_set(err, EPERM, "the gateway's certificate does not verify: %s",
				  n > 0 ? info : "unknown reason");
	}
	tls_strerror(r, e, sizeof(e));
	return sv_err_set(err, EPROTO, "%s", e);
}

int gw_tls_handshake(struct gw_tls *t, bool *want_write, struct sv_err *err)
{
	int r = mbedtls_ssl_handshake(&t->ssl);
	if (r != 0)
		return tls_result(t, r, want_write, err);
	*want_write = false;
	const char *alpn = mbedtls_ssl_get_alpn_protocol(&t->ssl);
	if (!alpn || strcmp(alpn, "h2") != 0)
		return sv_err_set(err, EPROTO, "the gateway did not negotiate HTTP/2 (ALPN h2)");
	return 0;
}

ssize_t gw_tls_read(struct gw_tls *t, uint8_t *buf, size_t len, bool *want_write,
		    struct sv_err *err)
{
	for (;;) {
		int r = mbedtls_ssl_read(&t->ssl, buf, len);
		if (r > 0) {
			*want_write = false;
			return r;
		}
		if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
			return 0;
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
		if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
			continue; /* TLS 1.3 ticket: nothing for us */
#endif
		return tls_result(t, r, want_write, err);
	}
}

ssize_t gw_tls_write(struct gw_tls *t, const uint8_t *buf, size_t len, bool *want_write,
		     struct sv_err *err)
{
	for (;;) {
		int r = mbedtls_ssl_write(&t->ssl, buf, len);
		if (r >= 0) {
			*want_write = false;
			return r;
		}
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
		if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
			continue;
#endif
		return tls_result(t, r, want_write, err);
	}
}

void gw_tls_close_notify(struct gw_tls *t)
{
	if (t && t->fd >= 0)
		(void)mbedtls_ssl_close_notify(&t->ssl);
}

size_t gw_tls_pending(const struct gw_tls *t)
{
	return mbedtls_ssl_get_bytes_avail(&t->ssl);
}
