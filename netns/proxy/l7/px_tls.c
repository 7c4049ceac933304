/* TLS configurations and sessions for the layer-7 proxy (l7 contract §1.4, §1.5): the agent
 * side serves the CONNECT host's leaf (never chosen by SNI), the upstream side verifies against
 * the system bundle plus the bundled Mozilla roots; both TLS 1.2-1.3, ALPN http/1.1 only.
 *
 * Sessions run over a borrowed non-blocking socket and never block: every call returns -EAGAIN
 * with the direction to wait for. Not thread-safe per object: one event loop owns them.
 */
#include "netns/proxy/l7/px_tls_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#define PX_SESSION_CACHE_MAX 256 /* upstream resumption, per host; cleared whole on overflow */

static const char *alpn_http11[] = {"http/1.1", NULL};

struct px_tls_server {
	struct px_rng rng;
	mbedtls_ssl_config conf;
	struct px_leaf_cache *leaves; /* borrowed */
};

struct px_saved_session {
	char *host;
	mbedtls_ssl_session session;
};

struct px_tls_client {
	struct px_rng rng;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt roots;
	size_t nroots;
	struct px_saved_session saved[PX_SESSION_CACHE_MAX];
	size_t nsaved;
};

struct px_tls_conn {
	mbedtls_ssl_context ssl;
	int fd;
	int io_errno;
	struct px_leaf *leaf;	      /* agent side: our reference */
	struct px_tls_client *client; /* upstream side: for saving the session */
	char *host;
	unsigned char ip[16]; /* upstream IP literal to find in the IP SANs */
	size_t ip_len;	      /* 0: a DNS name, verified by mbedTLS */
	bool offered;	      /* a saved session was offered */
};

/* ---- configurations ------------------------------------------------------------------------- */

static int conf_common(mbedtls_ssl_config *conf, int endpoint, struct px_rng *rng,
		       struct sv_err *err)
{
	int r = mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
					    MBEDTLS_SSL_PRESET_DEFAULT);
	if (r == 0)
		r = mbedtls_ssl_conf_alpn_protocols(conf, alpn_http11);
	if (r != 0) {
		char e[PX_TLS_REASON_MAX];
		px_tls_strerror(r, e, sizeof(e));
		return sv_err_set(err, EIO, "TLS configuration: %s", e);
	}
	mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
	mbedtls_ssl_conf_max_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_3);
	mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &rng->drbg);
	return 0;
}

/* Called once the ClientHello is parsed, SNI or not: the CONNECT host's leaf. */
static int server_cert_cb(mbedtls_ssl_context *ssl)
{
	struct px_tls_conn *t = mbedtls_ssl_get_user_data_p(ssl);
	if (!t || !t->leaf)
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
	return mbedtls_ssl_set_hs_own_cert(ssl, px_leaf_chain(t->leaf), px_leaf_key(t->leaf));
}

void px_tls_server_free(struct px_tls_server *s)
{
	if (!s)
		return;
	mbedtls_ssl_config_free(&s->conf);
	px_rng_free(&s->rng);
	free(s);
}

int px_tls_server_new(struct px_leaf_cache *leaves, struct px_tls_server **out,
		      struct sv_err *err)
{
	*out = NULL;
	struct px_tls_server *s = calloc(1, sizeof(*s));
	if (!s)
		return sv_err_set(err, ENOMEM, "out of memory");
	mbedtls_ssl_config_init(&s->conf);
	s->leaves = leaves;
	int r = px_rng_init(&s->rng, err);
	if (r == 0)
		r = px_psa_init(err);
	if (r == 0)
		r = conf_common(&s->conf, MBEDTLS_SSL_IS_SERVER, &s->rng, err);
	if (r < 0) {
		px_tls_server_free(s);
		return r;
	}
	mbedtls_ssl_conf_authmode(&s->conf, MBEDTLS_SSL_VERIFY_NONE); /* no client certificate */
	mbedtls_ssl_conf_cert_cb(&s->conf, server_cert_cb);
	*out = s;
	return 0;
}

static void saved_clear(struct px_tls_client *c)
{
	for (size_t i = 0; i < c->nsaved; i++) {
		free(c->saved[i].host);
		mbedtls_ssl_session_free(&c->saved[i].session);
	}
	c->nsaved = 0;
}

void px_tls_client_free(struct px_tls_client *c)
{
	if (!c)
		return;
	saved_clear(c);
	mbedtls_ssl_config_free(&c->conf);
	mbedtls_x509_crt_free(&c->roots);
	px_rng_free(&c->rng);
	free(c);
}

static int load_default_roots(struct px_tls_client *c)
{
	int n = 0;
	char *text;
	size_t len;
	const char *path;
	if (px_tls_system_bundle(&text, &len, &path) == 0) {
		n += px_tls_load_pem_certs(&c->roots, text, len);
		free(text);
	}
	for (size_t i = 0; i < px_roots_count(); i++) {
		size_t dlen;
		const uint8_t *der = px_roots_der(i, &dlen);
		if (mbedtls_x509_crt_parse_der_nocopy(&c->roots, der, dlen) == 0)
			n++;
	}
	return n;
}

int px_tls_client_new(const char *extra_pem, unsigned int flags, struct px_tls_client **out,
		      struct sv_err *err)
{
	*out = NULL;
	struct px_tls_client *c = calloc(1, sizeof(*c));
	if (!c)
		return sv_err_set(err, ENOMEM, "out of memory");
	mbedtls_ssl_config_init(&c->conf);
	mbedtls_x509_crt_init(&c->roots);
	int r = px_rng_init(&c->rng, err);
	if (r == 0)
		r = px_psa_init(err);
	if (r == 0)
		r = conf_common(&c->conf, MBEDTLS_SSL_IS_CLIENT, &c->rng, err);
	if (r < 0) {
		px_tls_client_free(c);
		return r;
	}
	int n = 0;
	if (!(flags & PX_TLS_CLIENT_NO_DEFAULT_ROOTS))
		n += load_default_roots(c);
	if (extra_pem)
		n += px_tls_load_pem_certs(&c->roots, extra_pem, strlen(extra_pem));
	if (n == 0) {
		px_tls_client_free(c);
		return sv_err_set(err, ENOENT,
				  "upstream TLS: no trust anchors (no system bundle, no bundled roots)");
	}
	c->nroots = (size_t)n;
	mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&c->conf, &c->roots, NULL);
	mbedtls_ssl_conf_session_tickets(&c->conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
	mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
	    &c->conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
	*out = c;
	return 0;
}

size_t px_tls_client_roots(const struct px_tls_client *c)
{
	return c->nroots;
}

const char *const *px_tls_client_alpn(const struct px_tls_client *c)
{
	(void)c;
	return alpn_http11;
}

static struct px_saved_session *saved_find(struct px_tls_client *c, const char *host)
{
	for (size_t i = 0; i < c->nsaved; i++)
		if (strcmp(c->saved[i].host, host) == 0)
			return &c->saved[i];
	return NULL;
}

/* Keep the session just negotiated (or ticketed) for @t's host; failures only cost a later
 * full handshake. */
static void saved_store(struct px_tls_conn *t)
{
	struct px_tls_client *c = t->client;
	struct px_saved_session *s = saved_find(c, t->host);
	if (!s) {
		if (c->nsaved >= PX_SESSION_CACHE_MAX)
			saved_clear(c);
		char *host = strdup(t->host);
		if (!host)
			return;
		s = &c->saved[c->nsaved++];
		s->host = host;
	} else {
		mbedtls_ssl_session_free(&s->session);
	}
	mbedtls_ssl_session_init(&s->session);
	if (mbedtls_ssl_get_session(&t->ssl, &s->session) != 0) {
		mbedtls_ssl_session_free(&s->session);
		free(s->host);
		*s = c->saved[--c->nsaved];
	}
}

/* ---- sessions ------------------------------------------------------------------------------- */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct px_tls_conn *t = ctx;
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
	struct px_tls_conn *t = ctx;
	for (;;) {
		ssize_t n = recv(t->fd, buf, len, 0);
		if (n >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return MBEDTLS_ERR_SSL_WANT_READ;
		t->io_errno = errno;
		return MBEDTLS_ERR_NET_RECV_FAILED;
	}
}

void px_tls_conn_free(struct px_tls_conn *t)
{
	if (!t)
		return;
	mbedtls_ssl_free(&t->ssl);
	px_leaf_put(t->leaf);
	free(t->host);
	free(t);
}

static int conn_new(const mbedtls_ssl_config *conf, int fd, const char *host,
		    struct px_tls_conn **out, struct sv_err *err)
{
	struct px_tls_conn *t = calloc(1, sizeof(*t));
	if (!t)
		return sv_err_set(err, ENOMEM, "out of memory");
	mbedtls_ssl_init(&t->ssl);
	t->fd = fd;
	t->host = strdup(host);
	int r = t->host ? mbedtls_ssl_setup(&t->ssl, conf) : MBEDTLS_ERR_SSL_ALLOC_FAILED;
	if (r != 0) {
		char e[PX_TLS_REASON_MAX];
		px_tls_strerror(r, e, sizeof(e));
		px_tls_conn_free(t);
		return sv_err_set(err, ENOMEM, "TLS session: %s", e);
	}
	mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
	mbedtls_ssl_set_user_data_p(&t->ssl, t);
	*out = t;
	return 0;
}

int px_tls_accept(struct px_tls_server *s, int fd, const char *host, struct px_tls_conn **out,
		  struct sv_err *err)
{
	*out = NULL;
	struct px_leaf *leaf;
	int r = px_leaf_get(s->leaves, host, &leaf, err);
	if (r < 0)
		return r;
	struct px_tls_conn *t = NULL;
	r = conn_new(&s->conf, fd, host, &t, err);
	if (r < 0 || !t) {
		px_leaf_put(leaf);
		return r < 0 ? r : -ENOMEM;
	}
	t->leaf = leaf;
	*out = t;
	return 0;
}

/* Depth 0 of an IP-literal upstream: the certificate must carry that address as an IP SAN
 * (mbedTLS checks DNS names itself; with no hostname set it checks no name at all). */
static int verify_ip_san(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	const struct px_tls_conn *t = ctx;
	if (depth != 0)
		return 0;
	bool match = false;
	for (const mbedtls_x509_sequence *cur = &crt->subject_alt_names; cur && !match;
	     cur = cur->next) {
		mbedtls_x509_subject_alternative_name san;
		if (!cur->buf.p || mbedtls_x509_parse_subject_alt_name(&cur->buf, &san) != 0)
			continue;
		match = san.type == MBEDTLS_X509_SAN_IP_ADDRESS &&
			san.san.unstructured_name.len == t->ip_len &&
			memcmp(san.san.unstructured_name.p, t->ip, t->ip_len) == 0;
		mbedtls_x509_free_subject_alt_name(&san);
	}
	if (!match)
		*flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
	return 0;
}

int px_tls_connect(struct px_tls_client *c, int fd, const char *host, struct px_tls_conn **out,
		   struct sv_err *err)
{
	*out = NULL;
	struct px_tls_conn *t = NULL;
	int r = conn_new(&c->conf, fd, host, &t, err);
	if (r < 0 || !t)
		return r < 0 ? r : -ENOMEM;
	t->client = c;
	for (char *p = t->host; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (inet_pton(AF_INET, t->host, t->ip) == 1)
		t->ip_len = 4;
	else if (inet_pton(AF_INET6, t->host, t->ip) == 1)
		t->ip_len = 16;
	if (t->ip_len) {
		r = mbedtls_ssl_set_hostname(&t->ssl, NULL); /* no SNI, no DNS-name check */
		mbedtls_ssl_set_verify(&t->ssl, verify_ip_san, t);
	} else {
		r = mbedtls_ssl_set_hostname(&t->ssl, t->host); /* SNI + name check */
	}
	if (r != 0) {
		px_tls_conn_free(t);
		return sv_err_set(err, EINVAL, "upstream TLS: bad host name '%s'", host);
	}
	const struct px_saved_session *s = saved_find(c, t->host);
	if (s && mbedtls_ssl_set_session(&t->ssl, &s->session) == 0)
		t->offered = true;
	*out = t;
	return 0;
}

/* "expired, unknown CA" from mbedTLS's verification flags. */
static void verify_reason(uint32_t flags, char *buf, size_t size)
{
	static const struct {
		uint32_t flag;
		const char *what;
	} map[] = {
	    {MBEDTLS_X509_BADCERT_EXPIRED, "expired"},
	    {MBEDTLS_X509_BADCERT_FUTURE, "not yet valid"},
	    {MBEDTLS_X509_BADCERT_NOT_TRUSTED, "unknown CA"},
	    {MBEDTLS_X509_BADCERT_CN_MISMATCH, "name mismatch"},
	    {MBEDTLS_X509_BADCERT_REVOKED, "revoked"},
	    {MBEDTLS_X509_BADCERT_MISSING, "no certificate"},
	    {MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE |
		 MBEDTLS_X509_BADCERT_NS_CERT_TYPE,
	     "not valid for server authentication"},
	    {MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK |
		 MBEDTLS_X509_BADCERT_BAD_KEY,
	     "unacceptable algorithm or key"},
	};
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < SV_ARRAY_SIZE(map); i++)
		if (flags & map[i].flag)
			n += sv_fmt(buf + n, size - n, "%s%s", n ? ", " : "", map[i].what);
	if (n == 0)
		sv_fmt(buf, size, "invalid certificate (flags 0x%x)", (unsigned)flags);
}

static int tls_result(struct px_tls_conn *t, int r, bool *want_write, struct sv_err *err)
{
	char e[PX_TLS_REASON_MAX];
	switch (r) {
	case MBEDTLS_ERR_SSL_WANT_READ:
		*want_write = false;
		return -EAGAIN;
	case MBEDTLS_ERR_SSL_WANT_WRITE:
		*want_write = true;
		return -EAGAIN;
	case MBEDTLS_ERR_NET_SEND_FAILED:
	case MBEDTLS_ERR_NET_RECV_FAILED: {
		int e2 = t->io_errno ? t->io_errno : EIO;
		return sv_err_set(err, e2, "TLS %s: %s",
				  r == MBEDTLS_ERR_NET_SEND_FAILED ? "send" : "recv", strerror(e2));
	}
	case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
		verify_reason(mbedtls_ssl_get_verify_result(&t->ssl), e, sizeof(e));
		return sv_err_set(err, EPERM, "certificate verify failed: %s", e);
	case MBEDTLS_ERR_SSL_NO_APPLICATION_PROTOCOL:
		return sv_err_set(err, EPROTO, "no common application protocol (only http/1.1)");
	case MBEDTLS_ERR_SSL_CONN_EOF:
		return sv_err_set(err, ECONNRESET, "TLS handshake eof");
	default:
		px_tls_strerror(r, e, sizeof(e));
		return sv_err_set(err, EPROTO, "TLS: %s", e);
	}
}

int px_tls_handshake(struct px_tls_conn *t, bool *want_write, struct sv_err *err)
{
	for (;;) {
		int r = mbedtls_ssl_handshake(&t->ssl);
		if (r == 0) {
			*want_write = false;
			if (t->client && !t->offered)
				saved_store(t); /* TLS 1.2 session (1.3 sends tickets later) */
			return 0;
		}
		if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
			if (t->client)
				saved_store(t);
			continue;
		}
		return tls_result(t, r, want_write, err);
	}
}

ssize_t px_tls_read(struct px_tls_conn *t, uint8_t *buf, size_t len, bool *want_write,
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
		if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
			if (t->client)
				saved_store(t);
			continue;
		}
		return tls_result(t, r, want_write, err);
	}
}

ssize_t px_tls_write(struct px_tls_conn *t, const uint8_t *buf, size_t len, bool *want_write,
		     struct sv_err *err)
{
	for (;;) {
		int r = mbedtls_ssl_write(&t->ssl, buf, len);
		if (r >= 0) {
			*want_write = false;
			return r;
		}
		if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
			if (t->client)
				saved_store(t);
			continue;
		}
		return tls_result(t, r, want_write, err);
	}
}

int px_tls_close_notify(struct px_tls_conn *t, bool *want_write)
{
	int r = mbedtls_ssl_close_notify(&t->ssl);
	if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE) {
		*want_write = r == MBEDTLS_ERR_SSL_WANT_WRITE;
		return -EAGAIN;
	}
	*want_write = false;
	return r == 0 ? 0 : -EIO;
}

size_t px_tls_pending(const struct px_tls_conn *t)
{
	return mbedtls_ssl_get_bytes_avail(&t->ssl);
}

const char *px_tls_alpn(const struct px_tls_conn *t)
{
	return mbedtls_ssl_get_alpn_protocol(&t->ssl);
}

const char *px_tls_version(const struct px_tls_conn *t)
{
	return mbedtls_ssl_get_version(&t->ssl);
}

bool px_tls_session_offered(const struct px_tls_conn *t)
{
	return t->offered;
}

/* ---- tunnel classification (§1.1) ----------------------------------------------------------- */

static const char *const http_methods[] = {"GET ",   "HEAD ",    "POST ",    "PUT ",  "DELETE ",
					   "PATCH ", "OPTIONS ", "CONNECT ", "TRACE "};
static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2C_MIN_BYTES 8

bool px_tls_looks_like_tls(const uint8_t *buf, size_t len)
{
	return len >= 3 && buf[0] == 0x16 && buf[1] == 0x03 && buf[2] <= 0x04;
}

static bool is_prefix_of(const uint8_t *buf, size_t len, const char *s, size_t slen)
{
	return len <= slen && memcmp(buf, s, len) == 0;
}

enum px_tunnel_kind px_tunnel_classify(const uint8_t *buf, size_t len)
{
	if (px_tls_looks_like_tls(buf, len))
		return PX_TUNNEL_TLS;
	for (size_t i = 0; i < SV_ARRAY_SIZE(http_methods); i++) {
		size_t m = strlen(http_methods[i]);
		if (len >= m && memcmp(buf, http_methods[i], m) == 0)
			return PX_TUNNEL_HTTP1;
	}
	size_t plen = sizeof(h2_preface) - 1;
	if (len >= H2C_MIN_BYTES && is_prefix_of(buf, len, h2_preface, plen))
		return PX_TUNNEL_H2C;
	if (len == 0 || len >= PX_TLS_PEEK_MAX)
		return len == 0 ? PX_TUNNEL_NEED_MORE : PX_TUNNEL_OTHER;
	/* Could the bytes still become one of them? */
	if ((len == 1 && buf[0] == 0x16) || (len == 2 && buf[0] == 0x16 && buf[1] == 0x03))
		return PX_TUNNEL_NEED_MORE;
	for (size_t i = 0; i < SV_ARRAY_SIZE(http_methods); i++) {
		size_t m = strlen(http_methods[i]);
		if (len < m && memcmp(buf, http_methods[i], len) == 0)
			return PX_TUNNEL_NEED_MORE;
	}
	if (len < H2C_MIN_BYTES && memcmp(buf, h2_preface, len) == 0)
		return PX_TUNNEL_NEED_MORE;
	return PX_TUNNEL_OTHER;
}
