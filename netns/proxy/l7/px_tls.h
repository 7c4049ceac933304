/* TLS building blocks for the layer-7 proxy (l7 contract §1): the ephemeral sandbox CA, leaf
 * certificates per CONNECT host, the agent-side (server) and upstream (client) configurations, a
 * non-blocking session over a socket, the tunnel classifier and the CA files for the agent.
 *
 * Never writes the CA private key anywhere but a caller's buffer; never trusts the agent's SNI
 * for the leaf (the CONNECT host decides). mbedTLS 3.6 only (product and tests).
 */
#ifndef PX_TLS_H
#define PX_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "supervisor/err.h"

#define PX_TLS_DIR_ENV "OPENSHELL_PROXY_TLS_DIR" /* §1.2 */
#define PX_TLS_DIR_DEFAULT "/etc/openshell-tls"	 /* §1.2 */
#define PX_TLS_CA_FILE "openshell-ca.pem"	 /* §1.2 */
#define PX_TLS_BUNDLE_FILE "ca-bundle.pem"	 /* §1.2 */
#define PX_TLS_LEAF_CACHE_MAX 256		 /* §1.4, §6 */
#define PX_TLS_PEEK_MAX 24			 /* §1.1: the HTTP/2 preface length */
#define PX_TLS_REASON_MAX 160

/* ---- the sandbox CA (§1.2) ------------------------------------------------------------------ */

struct px_ca;

/* A fresh ECDSA P-256 CA: CN=OpenShell Sandbox CA, O=OpenShell, CA:true, keyCertSign+cRLSign,
 * valid 1975-01-01 to 4096-01-01. The key lives only in the returned object (owned). */
int px_ca_generate(struct px_ca **out, struct sv_err *err);
/* Rebuild a CA from its certificate DER and private key DER (what px_ca_key_der exported: the
 * proxy process gets them from PID 1). Checks the pair matches. */
int px_ca_from_der(const uint8_t *cert, size_t cert_len, const uint8_t *key, size_t key_len,
		   struct px_ca **out, struct sv_err *err);
void px_ca_free(struct px_ca *ca);

/* The certificate DER (borrowed, lives as long as @ca). */
const uint8_t *px_ca_cert_der(const struct px_ca *ca, size_t *len);
/* The certificate PEM, NUL-terminated (borrowed). */
const char *px_ca_cert_pem(const struct px_ca *ca);
/* The private key as DER into @buf; returns its length or -errno (-ENOBUFS: too small; 512 is
 * plenty). The caller wipes @buf (explicit_bzero) when done. */
int px_ca_key_der(const struct px_ca *ca, uint8_t *buf, size_t size);

/* ---- leaf certificates per CONNECT host (§1.4) ---------------------------------------------- */

struct px_leaf_cache;
struct px_leaf;

/* A cache of leaves signed by @ca (borrowed: outlives the cache). */
int px_leaf_cache_new(const struct px_ca *ca, struct px_leaf_cache **out, struct sv_err *err);
void px_leaf_cache_free(struct px_leaf_cache *c);
/* The leaf for @host (lower-cased here; a DNS name or an IP literal, IPv6 without brackets):
 * cached, else made (SAN DNS or IP, CN=host, AKI, fresh P-256 key). When the cache holds
 * PX_TLS_LEAF_CACHE_MAX hosts it is cleared whole first. The leaf is reference-counted: release
 * it with px_leaf_put (sessions hold their own reference, so a clear never frees one in use). */
int px_leaf_get(struct px_leaf_cache *c, const char *host, struct px_leaf **out,
		struct sv_err *err);
void px_leaf_put(struct px_leaf *leaf);
size_t px_leaf_cache_count(const struct px_leaf_cache *c);
/* The leaf's certificate DER (borrowed). */
const uint8_t *px_leaf_cert_der(const struct px_leaf *leaf, size_t *len);

/* Is @host an IP literal (v4 dotted quad or v6)? */
bool px_tls_host_is_ip(const char *host);

/* ---- trust store for upstream verification (§1.5) ------------------------------------------ */

/* The first non-empty readable system bundle (§1.2 order). Returns its contents NUL-terminated
 * (owned, *@len without the NUL) and its path (static), or -ENOENT when there is none. */
int px_tls_system_bundle(char **text, size_t *len, const char **path);
/* Parse every certificate in PEM @text (@len bytes, no NUL needed) into @chain (a
 * mbedtls_x509_crt *); returns how many were added (0 for garbage, never an error for a bad
 * block: it is skipped). */
int px_tls_load_pem_certs(void *chain, const char *text, size_t len);
/* The Mozilla roots bundled at build time (Debian's ca-certificates): count, and DER i. */
size_t px_roots_count(void);
const uint8_t *px_roots_der(size_t i, size_t *len);

/* ---- configurations ------------------------------------------------------------------------- */

struct px_tls_server; /* agent side: our leaf, ALPN http/1.1 only, TLS 1.2+1.3 */
struct px_tls_client; /* upstream: verified, ALPN http/1.1 only, TLS 1.2+1.3 */

int px_tls_server_new(struct px_leaf_cache *leaves, struct px_tls_server **out,
		      struct sv_err *err);
void px_tls_server_free(struct px_tls_server *s);

/* Trust: the system bundle plus the bundled roots; @extra_pem (NULL: none) adds more (tests).
 * @flags: PX_TLS_CLIENT_NO_DEFAULT_ROOTS trusts only @extra_pem (tests). -ENOENT: no trust. */
#define PX_TLS_CLIENT_NO_DEFAULT_ROOTS 0x1u
int px_tls_client_new(const char *extra_pem, unsigned int flags, struct px_tls_client **out,
		      struct sv_err *err);
void px_tls_client_free(struct px_tls_client *c);
/* How many trust anchors the client holds. */
size_t px_tls_client_roots(const struct px_tls_client *c);
/* The ALPN list offered upstream (NULL-terminated, static): {"http/1.1", NULL}. */
const char *const *px_tls_client_alpn(const struct px_tls_client *c);

/* ---- sessions over a non-blocking socket ---------------------------------------------------- */

struct px_tls_conn;

/* Agent side: the leaf for @host (the CONNECT host, not SNI). @fd is borrowed (the caller
 * closes it after px_tls_conn_free). */
int px_tls_accept(struct px_tls_server *s, int fd, const char *host, struct px_tls_conn **out,
		  struct sv_err *err);
/* Upstream: SNI = @host unless it is an IP literal; the certificate must name @host (DNS or IP
 * SAN). A session saved for @host earlier is offered for resumption. */
int px_tls_connect(struct px_tls_client *c, int fd, const char *host, struct px_tls_conn **out,
		   struct sv_err *err);
void px_tls_conn_free(struct px_tls_conn *t);

/* Every call below returns >= 0 on success (handshake: 0 = done; read: bytes, 0 = the peer
 * closed, by close_notify or EOF; write: bytes), -EAGAIN when it must be called again once the
 * socket is readable (*@want_write false) or writable (true), or another -errno with @err
 * saying why (a verification failure: -EPERM and "certificate verify failed: expired", "unknown
 * CA", "name mismatch", ...). */
int px_tls_handshake(struct px_tls_conn *t, bool *want_write, struct sv_err *err);
ssize_t px_tls_read(struct px_tls_conn *t, uint8_t *buf, size_t len, bool *want_write,
		    struct sv_err *err);
ssize_t px_tls_write(struct px_tls_conn *t, const uint8_t *buf, size_t len, bool *want_write,
		     struct sv_err *err);
/* Send close_notify (best effort; -EAGAIN as above when it could not be sent yet). */
int px_tls_close_notify(struct px_tls_conn *t, bool *want_write);
/* Decrypted bytes buffered inside (readable without the socket). */
size_t px_tls_pending(const struct px_tls_conn *t);
/* After the handshake: the ALPN protocol ("http/1.1") or NULL, the version ("TLSv1.3"), and
 * whether a session saved for this host was offered for resumption (upstream only). */
const char *px_tls_alpn(const struct px_tls_conn *t);
const char *px_tls_version(const struct px_tls_conn *t);
bool px_tls_session_offered(const struct px_tls_conn *t);

/* ---- tunnel classification (§1.1) ----------------------------------------------------------- */

enum px_tunnel_kind {
	PX_TUNNEL_NEED_MORE, /* still a prefix of something supported: peek again */
	PX_TUNNEL_TLS,	     /* 0x16 0x03 <=0x04 */
	PX_TUNNEL_HTTP1,     /* a method prefix ("GET ", ...) */
	PX_TUNNEL_H2C,	     /* >= 8 bytes of the HTTP/2 prior-knowledge preface */
	PX_TUNNEL_OTHER,
};

/* Classify the first bytes of a tunnel. NEED_MORE only while @len < PX_TLS_PEEK_MAX and the
 * bytes can still become a supported protocol; the caller's deadline (100 ms) then decides. */
enum px_tunnel_kind px_tunnel_classify(const uint8_t *buf, size_t len);
/* §1.1's looks_like_tls: >= 3 bytes, 0x16 0x03 <= 0x04. */
bool px_tls_looks_like_tls(const uint8_t *buf, size_t len);

/* ---- CA files for the agent (§1.2, §1.3) ---------------------------------------------------- */

/* $OPENSHELL_PROXY_TLS_DIR or /etc/openshell-tls. */
const char *px_tls_dir(void);
/* mkdir -p @dir, then write <dir>/openshell-ca.pem (the CA) and <dir>/ca-bundle.pem (system
 * bundle, '\n' if it lacks one, then the CA), both 0644, each atomically (temp + rename). */
int px_tls_write_ca_files(const char *dir, const char *ca_pem, struct sv_err *err);
/* mkdir -p @path (0755). */
int px_tls_mkdirs(const char *path, struct sv_err *err);

/* ---- PID 1: the CA at start (px_boot.c) ------------------------------------------------------ */

struct sv_env;
/* Early in setup: mkdir -p px_tls_dir() now (the policy baseline must see it), then make the CA
 * and write the files on a thread. -errno when the directory cannot be made (finish reports). */
int px_tls_boot_start(void);
/* Before the agent's environment is used: join; on success set NODE_EXTRA_CA_CERTS, DENO_CERT
 * (<dir>/openshell-ca.pem) and SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
 * GIT_SSL_CAINFO (<dir>/ca-bundle.pem) in @env. On failure: a HIGH finding, no variables, and
 * -errno (the sandbox still starts). Idempotent. */
int px_tls_boot_finish(struct sv_env *env);
/* false until px_tls_boot_finish succeeded: the proxy answers terminating CONNECTs with 503
 * (§1.2) while it is false. */
bool px_tls_boot_ok(void);
/* The CA (key included, borrowed, lives until exit) once px_tls_boot_ok(), else NULL: to be
 * handed to the proxy process (px_ca_key_der / px_ca_cert_der). */
const struct px_ca *px_tls_boot_ca(void);

#endif
