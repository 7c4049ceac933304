/* Egress proxy: request-head parsing, target parsing, forward rewrite and the exact wire
 * responses of the contract (§8 "Request head", "CONNECT flow", "Forward HTTP").
 *
 * Private to netns/. Pure functions over caller buffers: no I/O, no allocation, no logging.
 * Never copy agent bytes into an sv_err message (positions and fixed reasons only), and never
 * emit a response byte that was not escaped or validated first.
 */
#ifndef PX_HTTP_H
#define PX_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor/err.h"

/* §8 Request head: read until CRLFCRLF, at most 8192 bytes, else 431. */
#define PX_HEAD_MAX 8192
/* Header fields per request head; more is malformed (400). Our bound; §8 is silent. */
#define PX_HEADERS_MAX 100
/* Longest host name (RFC 1035, without the trailing dot); IPv6 literal text is shorter. */
#define PX_HOST_MAX 253
/* An output buffer this large always holds the forward rewrite of a head that parsed. */
#define PX_REWRITE_MAX (PX_HEAD_MAX + 1024)
/* A response buffer this large holds every JSON error whose inputs came from one parsed head
 * plus a reason of up to 1 KiB. Builders return -ENOBUFS rather than truncate. */
#define PX_RESP_MAX (4 * PX_HEAD_MAX)

/* Exact fixed responses (§8). Send sizeof(X) - 1 bytes. */
#define PX_HTTP_431 "HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n"
#define PX_HTTP_400 "HTTP/1.1 400 Bad Request\r\n\r\n"
#define PX_HTTP_400_HTTPS \
	"HTTP/1.1 400 Bad Request\r\nContent-Length: 27\r\n\r\nUse CONNECT for HTTPS URLs"
#define PX_HTTP_200_CONNECT "HTTP/1.1 200 Connection Established\r\n\r\n"

/* ---- head detection ---------------------------------------------------------------------- */

/* Find the end of the request head in the @len bytes received so far. *@resume (start it at 0,
 * keep it across calls for the same buffer) skips bytes already scanned.
 * Returns the head length including CRLFCRLF (> 0), 0 when more bytes are needed, or -EMSGSIZE
 * when the first PX_HEAD_MAX bytes hold no complete head: answer PX_HTTP_431. Bytes after the
 * head (a body prefix, tunnel data) are not examined. */
int px_http_head_end(const char *buf, size_t len, size_t *resume);

/* ---- head parsing ------------------------------------------------------------------------ */

struct px_http_header {
	const char *name; /* borrowed from the head, not NUL-terminated */
	size_t name_len;
	const char *value; /* borrowed; leading/trailing OWS trimmed; no CR, LF, NUL */
	size_t value_len;
};

enum px_http_body {
	PX_BODY_NONE,	 /* no Content-Length, no Transfer-Encoding */
	PX_BODY_LENGTH,	 /* Content-Length: content_length bytes */
	PX_BODY_CHUNKED, /* Transfer-Encoding ending in chunked */
};

struct px_http_req {
	const char *method; /* borrowed token */
	size_t method_len;
	const char *target; /* borrowed, visible ASCII only */
	size_t target_len;
	int version_minor; /* HTTP/1.<0|1> */
	bool is_connect;   /* method is exactly "CONNECT" */
	enum px_http_body body;
	uint64_t content_length;
	size_t head_len;
	size_t n_headers;
	struct px_http_header headers[PX_HEADERS_MAX];
};

/* Parse the @head_len bytes of a complete head (as found by px_http_head_end; it must end in
 * CRLFCRLF). Strict RFC 9110/9112 syntax: single spaces in the request line, HTTP/1.0 or 1.1,
 * token field names with no space before ':', no obs-fold, no CTL but HTAB in values, at most
 * PX_HEADERS_MAX fields, at most one Host, one Content-Length of digits only, Transfer-Encoding
 * only on HTTP/1.1, once, ending in chunked and never with Content-Length, Connection a token
 * list that does not nominate Content-Length or Transfer-Encoding. @req points into @head.
 * Returns 0 or -EBADMSG (answer PX_HTTP_400); @err names the byte offset of the fault. */
int px_http_parse_head(const char *head, size_t head_len, struct px_http_req *req,
		       struct sv_err *err);

/* Case-insensitive lookup of the first header called @name (NUL-terminated); NULL if absent. */
const struct px_http_header *px_http_header_find(const struct px_http_req *req, const char *name);

/* ---- targets ----------------------------------------------------------------------------- */

enum px_host_kind {
	PX_HOST_NAME, /* DNS name: letters, digits, '-', '_', dot-separated labels */
	PX_HOST_IPV4, /* strict dotted quad */
	PX_HOST_IPV6, /* bracketed literal in the input; stored without brackets */
};

struct px_http_authority {
	char host[PX_HOST_MAX + 1]; /* lower-cased, one trailing dot removed, NUL-terminated */
	enum px_host_kind kind;
	unsigned char addr[16]; /* network order: 4 bytes for IPV4, 16 for IPV6, else zero */
	uint16_t port;		/* 1..65535 */
};

/* CONNECT authority-form: "host:port" or "[v6]:port", port 1..65535. Names ending in a
 * numeric label that are not a dotted quad ("127.1", "0x7f.1") are refused.
 * Returns 0 or -EINVAL with @err naming the fault ("CONNECT target: missing port"). Upstream
 * closes without a response (§8); we answer 400 invalid_connect_target with that reason. */
int px_http_parse_connect_target(const char *target, size_t len, struct px_http_authority *out,
				 struct sv_err *err);

enum px_uri_scheme {
	PX_SCHEME_HTTP,
	PX_SCHEME_HTTPS, /* answer PX_HTTP_400_HTTPS */
	PX_SCHEME_OTHER, /* answer px_http_resp_unsupported_scheme() */
};

struct px_http_uri {
	enum px_uri_scheme scheme;
	struct px_http_authority auth; /* port defaults to 80 (443 for https) */
	const char *path;	       /* "/..." borrowed from the target, or a static "/" */
	size_t path_len;
	const char *query; /* after '?', borrowed; NULL when the target has no '?' */
	size_t query_len;
};

/* Absolute-form forward target "scheme://host[:port][/path][?query]". Refused (-EBADMSG,
 * answer PX_HTTP_400): origin-form or any other form without "scheme://", userinfo, a
 * fragment, an empty or invalid host or port, a path or query byte outside RFC 3986
 * (unreserved, sub-delims, ':', '@', '/', '?', %XX). The scheme is reported, not judged: the
 * caller answers https and other schemes after its own checks. */
int px_http_parse_forward_target(const char *target, size_t len, struct px_http_uri *out,
				 struct sv_err *err);

/* ---- forward rewrite --------------------------------------------------------------------- */

/* Build the upstream head for a parsed forward request: "METHOD path[?query] HTTP/1.1", every
 * field kept as "Name: value" except Host, Proxy-Connection, Proxy-Authorization,
 * Proxy-Authenticate, Connection, Keep-Alive, Upgrade and every field Connection nominates;
 * then "Host: host[:port]" (port omitted when 80, IPv6 in brackets), "Connection: close" and
 * "Via: 1.1 openshell-sandbox" unless a Via field was kept. Body bytes after the head are the
 * caller's to relay unchanged. Returns the head length written to @out, -ENOBUFS if it does
 * not fit @size (PX_REWRITE_MAX always fits), or -E2BIG if the result would carry more than
 * PX_HEADERS_MAX fields (answer PX_HTTP_431). */
int px_http_forward_rewrite(const struct px_http_req *req, const struct px_http_uri *uri, char *out,
			    size_t size, struct sv_err *err);

/* ---- JSON error responses ---------------------------------------------------------------- */

/* "HTTP/1.1 <status> <phrase>\r\nContent-Type: application/json\r\nContent-Length: <n>\r\n
 * Connection: close\r\n\r\n" + {"error":@error,"detail":@detail[,"reason":@reason]}; "reason"
 * only when @reason is non-NULL and non-empty. Strings are JSON-escaped: quote, backslash and
 * every control byte; bytes that are not valid UTF-8 become U+FFFD. @status is one of 400,
 * 403, 408, 500, 502, 503. Returns the response length written to @buf or -ENOBUFS / -EINVAL. */
int px_http_resp_json(char *buf, size_t size, int status, const char *error, const char *detail,
		      const char *reason);

/* 403 policy_denied, "CONNECT <host>:<port> not permitted by policy", reason as given. */
int px_http_resp_connect_denied(char *buf, size_t size, const struct px_http_authority *a,
				const char *reason);
/* 403 policy_denied, "<METHOD> <host>:<port><path> not permitted by policy" (path without the
 * query, as OpenShell logs it); no reason field, as OpenShell sends none on this path. */
int px_http_resp_forward_denied(char *buf, size_t size, const struct px_http_req *req,
				const struct px_http_uri *uri);
/* 403 ssrf_denied, "CONNECT <host>:<port> blocked: <reason>". */
int px_http_resp_connect_ssrf(char *buf, size_t size, const struct px_http_authority *a,
			      const char *reason);
/* 403 ssrf_denied, "<METHOD> <host>:<port> blocked: <reason>" (forward path). */
int px_http_resp_forward_ssrf(char *buf, size_t size, const struct px_http_req *req,
			      const struct px_http_authority *a, const char *reason);
/* 502 upstream_unreachable, "connection to <host>:<port> failed". */
int px_http_resp_upstream_unreachable(char *buf, size_t size, const struct px_http_authority *a);
/* 400 unsupported_proxy_scheme, "Forward proxy requests must use http". */
int px_http_resp_unsupported_scheme(char *buf, size_t size);

#endif
