/* Layer-7 (HTTP/1 REST) inspection building blocks of the egress proxy (openshell-l7-contract.md
 * §2): request-target canonicalisation, the strict in-tunnel request head parser, body framing
 * decoders, the REST rule matcher and the exact denial bodies and log lines.
 *
 * Pure functions over caller buffers: no I/O, no logging, no global state. Agent bytes never go
 * into an sv_err message (positions and fixed reasons only). Nothing here decides what to do
 * with a socket: the relay that calls these owns every read and write.
 */
#ifndef PX_L7_H
#define PX_L7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netns/proxy/px_policy.h"
#include "supervisor/err.h"
#include "supervisor/policy/policy.h"

/* §6: L7 request and response header blocks (CRLFCRLF included) are at most this long. */
#define PX_L7_HEAD_MAX 16384
/* §2.5: the raw path of a request target is at most this long. */
#define PX_L7_PATH_MAX 4096
/* A canonical path (every decoded byte re-encoded as %HH at worst) always fits this buffer. */
#define PX_L7_CANON_MAX (3 * PX_L7_PATH_MAX + 1)
/* Header fields in one in-tunnel request head. Our bound (OpenShell has only the byte cap). */
#define PX_L7_HEADERS_MAX 256
/* Fixed deny reasons (§2.1, §2.7). */
#define PX_L7_REASON_NO_ENDPOINT "no L7 endpoint path matched request"
#define PX_L7_REASON_WS_REQUIRED "websocket endpoint requires a valid WebSocket upgrade request"
#define PX_L7_REASON_H2C \
	"HTTP/2 cleartext upgrade (h2c) is not supported for L7-inspected endpoints"
#define PX_L7_REASON_FALLBACK "request denied by policy"
#define PX_L7_REASON_ENCODED_SLASH \
	"request-target contains an encoded '/' (%2F) which is not allowed on this endpoint"

/* ---- request-target canonicalisation (px_l7_path.c, §2.5) -------------------------------- */

enum px_l7_path_err {
	PX_L7_PATH_OK = 0,
	PX_L7_PATH_CONTROL,	  /* raw or decoded NUL/control byte */
	PX_L7_PATH_BAD_PERCENT,	  /* '%' not followed by two hex digits */
	PX_L7_PATH_ENCODED_SLASH, /* %2F without allow_encoded_slash */
	PX_L7_PATH_FRAGMENT,	  /* '#' */
	PX_L7_PATH_NON_ASCII,	  /* raw byte >= 0x80 */
	PX_L7_PATH_TRAVERSAL,	  /* '..' above the root */
	PX_L7_PATH_RESIDUAL_DOT,  /* a '.'/'..' survived (behind a kept %2F) */
	PX_L7_PATH_TOO_LONG,	  /* raw path over PX_L7_PATH_MAX */
	PX_L7_PATH_MALFORMED,	  /* not origin-form or absolute-form */
};

struct px_l7_canon {
	size_t path_len;   /* canonical path written to the caller's buffer (NUL-terminated) */
	const char *query; /* after the first '?', borrowed from the target; NULL without '?' */
	size_t query_len;
	bool rewritten; /* the canonical path differs from the raw path */
};

/* Canonicalise @target (@len bytes, origin-form or absolute-form) into @buf (@size bytes;
 * PX_L7_CANON_MAX always fits). Returns 0, or -EINVAL with *@why (may be NULL) saying which
 * rule refused it, or -ENOBUFS. The query is never decoded or altered. */
int px_l7_path_canon(const char *target, size_t len, bool allow_encoded_slash, char *buf,
		     size_t size, struct px_l7_canon *out, enum px_l7_path_err *why);
/* OpenShell's message for a refusal ("request-target's `..` segment would escape ..."). */
const char *px_l7_path_strerror(enum px_l7_path_err why);
/* A kept %2F in a canonical path (re-checked against the endpoint route selection chose). */
bool px_l7_path_has_encoded_slash(const char *canon, size_t len);

/* ---- in-tunnel request head (px_l7_head.c, §2.5) ----------------------------------------- */

/* Where a request head ends in the @len bytes read so far: the head length (CRLFCRLF
 * included, > 0), 0 when more is needed, -EMSGSIZE past PX_L7_HEAD_MAX. Nothing after the
 * first CRLFCRLF is examined. */
int px_l7_head_scan(const char *buf, size_t len);
/* How many more bytes may be read into a head buffer holding @len bytes without any chance of
 * reading past the head's end (1..4): read at most this much, scan, repeat. 0 once the head is
 * complete. This is what keeps pipelined requests unread. */
size_t px_l7_head_safe_read(const char *buf, size_t len);

struct px_l7_header {
	const char *name; /* borrowed, not NUL-terminated */
	size_t name_len;
	const char *value; /* borrowed, surrounding SP/HT trimmed */
	size_t value_len;
	const char *line; /* the whole field line as received, without CRLF */
	size_t line_len;
};

enum px_l7_body_kind {
	PX_L7_BODY_NONE = 0,
	PX_L7_BODY_LENGTH,
	PX_L7_BODY_CHUNKED,
};

struct px_l7_req {
	const char *method; /* borrowed token */
	size_t method_len;
	const char *target; /* borrowed, as received */
	size_t target_len;
	int version_minor; /* HTTP/1.0 or HTTP/1.1 */
	size_t head_len;
	enum px_l7_body_kind body;
	uint64_t content_length;
	bool absolute_form; /* "scheme://authority[/path]" target */
	const char *host;   /* Host field value (trimmed), NULL without one */
	size_t host_len;
	size_t n_headers;
	struct px_l7_header headers[PX_L7_HEADERS_MAX];
};

/* Parse a complete head (px_l7_head_scan's length; it must end in CRLFCRLF) with OpenShell's
 * rejections: bare LF; invalid UTF-8; a request line other than METHOD SP target SP
 * HTTP/1.0|1.1; a non-token method; whitespace or control bytes in the target (or bytes the
 * URI grammar refuses); continuation lines; whitespace before ':'; non-token names; control
 * bytes in values; an invalid Connection token list or one naming host, content-length or
 * transfer-encoding; several Host fields; an invalid Host authority; HTTP/1.1 without Host;
 * an absolute-form authority other than Host's; CL with TE; differing CLs; any TE other than a
 * single "chunked"; more than PX_L7_HEADERS_MAX fields. 0 or -EBADMSG (close the tunnel with
 * no response), @err naming the byte offset. */
int px_l7_req_parse(const char *head, size_t len, struct px_l7_req *req, struct sv_err *err);

/* First field called @name (ASCII case-insensitive), NULL if absent. */
const struct px_l7_header *px_l7_req_header(const struct px_l7_req *req, const char *name);

/* Does the request's authority (absolute-form authority, else Host) name @host:@port, the
 * CONNECT target? Hosts compare case-insensitively with brackets and trailing dots ignored; an
 * omitted port is 443 inside TLS (@tls) and 80 in plaintext (absolute-form: by its scheme).
 * Without any authority (HTTP/1.0 without Host) it passes only if the head carries no
 * credential marker, raw or percent-decoded. False: answer px_l7_resp_authority_mismatch. */
bool px_l7_req_authority_ok(const struct px_l7_req *req, const char *host, uint16_t port, bool tls);

enum px_l7_ws {
	PX_L7_WS_NONE = 0, /* no WebSocket upgrade attempt */
	PX_L7_WS_VALID,	   /* GET, Upgrade: websocket, Connection: upgrade, one 16-byte key, v13 */
	PX_L7_WS_INVALID,  /* an attempt that fails one of those (treated as not an upgrade) */
};
enum px_l7_ws px_l7_req_websocket(const struct px_l7_req *req);
/* Upgrade naming h2c together with Connection naming upgrade (§2.7): deny PX_L7_REASON_H2C. */
bool px_l7_req_is_h2c_upgrade(const struct px_l7_req *req);
/* Any Upgrade field plus a Connection field naming upgrade: only then may a 101 pass. */
bool px_l7_req_wants_upgrade(const struct px_l7_req *req);
/* Any Upgrade field at all (the "allow_upgrade" decision of the single-config relay). */
bool px_l7_req_has_upgrade_field(const struct px_l7_req *req);

/* Upstream head for an allowed request (§2.6): the request line with @canon as target plus
 * "?query" (when the query is non-empty) if @canon_rewritten, else as received; every field
 * line as received except Connection, Upgrade and every field Connection nominates; then
 * "Connection: Upgrade" and "Upgrade: websocket" when @websocket. Returns the length written
 * to @out or -ENOBUFS (head_len + 64 always fits). */
int px_l7_req_rewrite(const struct px_l7_req *req, const struct px_l7_canon *canon,
		      const char *canon_path, bool websocket, char *out, size_t size);

/* ---- query strings (px_l7_query.c, §2.5) ------------------------------------------------- */

struct px_l7_qparam {
	const char *key; /* decoded, in the caller's buffer, not NUL-terminated; valid UTF-8 */
	size_t key_len;
	const char *val;
	size_t val_len;
};

/* Split @q on '&' (empty pairs skipped), key[=value], '+' -> space, %HH decoded, each part
 * valid UTF-8. Decoded bytes go to @buf (@size >= @len always fits). Returns the number of
 * parameters stored in @params (at most @max), -EBADMSG on a malformed escape or invalid
 * UTF-8 (a parse error: close), -E2BIG when more than @max. */
int px_l7_query_parse(const char *q, size_t len, char *buf, size_t size,
		      struct px_l7_qparam *params, size_t max, struct sv_err *err);

/* ---- body framing (px_l7_body.c, §2.6) --------------------------------------------------- */

/* Incremental decoder for one message body. Feed it whatever was read; it reports how many of
 * those bytes belong to the body, so bytes of the next message are never swallowed. */
struct px_l7_body {
	enum px_l7_body_kind kind;
	int state;
	uint64_t remaining; /* LENGTH: bytes left; CHUNKED: bytes left in the current chunk */
	uint64_t total;	    /* body bytes consumed so far (framing included) */
	size_t line;	    /* bytes in the current chunk-size or trailer line */
	size_t trailers;    /* trailer bytes so far */
	unsigned digits;
};

void px_l7_body_init(struct px_l7_body *b, enum px_l7_body_kind kind, uint64_t content_length);
/* Consume from @buf. *@used = bytes that belong to the body. Returns 1 when the body is
 * complete (the rest of @buf is the next message), 0 when more is needed (all of @buf used),
 * -EBADMSG on a malformed chunk-size line, chunk terminator or trailer. NONE completes at
 * once with nothing used. */
int px_l7_body_feed(struct px_l7_body *b, const char *buf, size_t len, size_t *used);

/* ---- responses (px_l7_resp.c, §2.6) ------------------------------------------------------ */

/* Like px_l7_head_scan, for an upstream response head (PX_L7_HEAD_MAX). */
int px_l7_resp_scan(const char *buf, size_t len);

struct px_l7_resp {
	int status;	   /* second word of the status line; 200 when absent or not a number */
	bool conn_close;   /* the first Connection field contains "close" */
	bool event_stream; /* a Content-Type whose media type is text/event-stream */
	enum px_l7_body_kind body;
	uint64_t content_length;
	size_t head_len;
};

/* Parse a complete response head (leniently, as OpenShell does: only the framing fields are
 * judged). 0, or -EBADMSG for CL with TE, differing CLs, a bad CL, a TE other than a single
 * chunked: the tunnel ends. */
int px_l7_resp_parse(const char *head, size_t len, struct px_l7_resp *resp, struct sv_err *err);

enum px_l7_resp_action {
	PX_L7_RESP_UPGRADE,   /* 101 the client asked for: send head, switch to raw relay */
	PX_L7_RESP_DROP,      /* unsolicited 101: send nothing, end the tunnel */
	PX_L7_RESP_HEAD_ONLY, /* HEAD request, 1xx, 204, 304: headers only */
	PX_L7_RESP_LENGTH,    /* Content-Length body */
	PX_L7_RESP_CHUNKED,   /* chunked body */
	PX_L7_RESP_EOF_IDLE,  /* unframed + Connection: close: until EOF, 5 s idle timeout */
	PX_L7_RESP_EOF,	      /* unframed text/event-stream: until EOF, no timeout */
	PX_L7_RESP_EMPTY,     /* unframed otherwise: empty body, connection kept */
};

struct px_l7_resp_plan {
	enum px_l7_resp_action action;
	bool keep_alive; /* parse the next request after this response */
	bool add_close;	 /* write the head via px_l7_resp_head_close (adds Connection: close) */
};

void px_l7_resp_plan(const struct px_l7_resp *resp, const char *method, size_t method_len,
		     bool client_wants_upgrade, struct px_l7_resp_plan *plan);
/* The head with "Connection: close" inserted before the final CRLF (the EOF_IDLE case). */
int px_l7_resp_head_close(const char *head, size_t len, char *out, size_t size);

/* ---- glob matching (px_l7_glob.c) -------------------------------------------------------- */

/* OpenShell's Rego glob.match(pattern, [delim], value) (regorus over globset, literal
 * separators): '/' (paths) or '.' (hosts; also the default of an empty delimiter list, which
 * query matchers use). '*' and '?' stay inside a delimited part, '**' as a whole part crosses,
 * [classes], {alternates} and \escapes as globset. Returns 1, 0, or -EINVAL when Rego would
 * raise an error (an invalid glob, a NUL byte) and where we refuse rather than guess
 * (non-ASCII classes, over 64 alternatives or 8 nesting levels): fail closed. */
int px_l7_glob_match(const char *pattern, const char *value, size_t value_len, char delim);

/* The endpoint `path` selector (OpenShell C/endpoint_path.rs): NULL, "", "**" and "/" "**"
 * match everything; "/x" followed by "/" "**" matches /x and below; otherwise the Rust glob crate
 * ('*' crosses '/'); an invalid glob matches only itself. */
bool px_l7_endpoint_path_matches(const char *pattern, const char *path);
/* Non-'*' characters of the pattern (0 for NULL or ""): the most specific endpoint wins. */
size_t px_l7_endpoint_path_specificity(const char *pattern);

/* ---- REST matcher (px_l7_match.c, §2.1-2.4) ---------------------------------------------- */

/* What policy evaluation sees of one request. */
struct px_l7_request {
	const char *method; /* as sent, NUL-terminated */
	const char *path;   /* canonical, placeholder-redacted, no query, NUL-terminated */
	const struct px_l7_qparam *query;
	size_t n_query;
};

/* One endpoint's effective REST rules: `rules`, or the `access` preset expanded (§2.2) only
 * when no rules are given. JSON-RPC/MCP endpoints carry no REST rules; GraphQL operation rules
 * and SQL command rules are not REST rules and never match here. Borrows from the endpoint. */
struct px_l7_matcher {
	const struct pol_endpoint *ep;
	const struct pol_l7_rule *allow;
	size_t n_allow;
	const struct pol_l7_rule *deny;
	size_t n_deny;
};

void px_l7_matcher_compile(const struct pol_endpoint *ep, struct px_l7_matcher *m);
/* 1 when an allow rule matches (method, path, query), 0 when none, -EINVAL on a glob error. */
int px_l7_matcher_allows(const struct px_l7_matcher *m, const struct px_l7_request *r);
/* 1 when a deny rule matches, 0 when none, -EINVAL on a glob error. */
int px_l7_matcher_denies(const struct px_l7_matcher *m, const struct px_l7_request *r);

/* Among the L7 endpoints @eps (n), the one whose `path` matches @path with the most non-'*'
 * characters (the last of equals, as Rust's max_by_key); NULL: deny PX_L7_REASON_NO_ENDPOINT. */
const struct pol_endpoint *px_l7_select_endpoint(const struct pol_endpoint *const *eps, size_t n,
						 const char *path);

#define PX_L7_REASON_MAX 512

struct px_l7_verdict {
	bool allowed;
	char reason[PX_L7_REASON_MAX]; /* "" when allowed */
};

/* The Rego decision (§2.3): allowed iff some rule of @p whose endpoint matches @q's host and
 * port and whose binaries match @q (unless endpoint_only) has an endpoint, matching host, port
 * and endpoint path (Rego glob), with a matching allow rule, and no deny rule of any such
 * endpoint matches. Reasons: "<METHOD> <path> blocked by deny rule" / "<METHOD> <path> not
 * permitted by policy". Returns 0, or -EINVAL when a glob errors (close the tunnel). */
int px_l7_evaluate(const struct pol_policy *p, const struct px_query *q,
		   const struct px_l7_request *r, struct px_l7_verdict *v);

/* "allow", "allow_upgrade" (@upgrade: px_l7_req_has_upgrade_field), "audit" (denied under
 * audit enforcement) or "deny" (denied under enforce, or @force_deny). */
const char *px_l7_decision(bool allowed, enum pol_enforcement enforcement, bool force_deny,
			   bool upgrade);

/* ---- wire bodies and log lines (px_l7_deny.c, §1.1, §2.5, §2.8, §2.9) -------------------- */

struct px_l7_deny {
	const char *policy; /* X-OpenShell-Policy and "policy"; no CR, LF or other control */
	const char *method;
	const char *path; /* redacted canonical path; anything after '?' is dropped */
	const char *host; /* omitted when NULL or blank */
	uint16_t port;
	const char *binary; /* omitted when NULL or blank */
	const char *reason; /* "detail" */
	bool proposals;	    /* agent proposals enabled: next_steps objects + agent_guidance */
};

/* The §2.8 403 (X-OpenShell-Policy, Connection: close, alphabetical compact JSON). Returns
 * the length written, -ENOBUFS, or -EINVAL (a control byte in the policy name). */
int px_l7_resp_deny(char *buf, size_t size, const struct px_l7_deny *d);
/* Forward-proxy L7 denial: 403 {"detail":"<M> <host>:<port><path> denied by L7 policy:
 * <reason>","error":"policy_denied"}. */
int px_l7_resp_forward_deny(char *buf, size_t size, const char *method, const char *host,
			    uint16_t port, const char *path, const char *reason);
/* 403 request_authority_mismatch (§2.5). */
int px_l7_resp_authority_mismatch(char *buf, size_t size);
/* 403 unsupported_l7_protocol (§1.1): @h2c selects the prior-knowledge detail. */
int px_l7_resp_unsupported_protocol(char *buf, size_t size, bool h2c);

/* Replace credential placeholders (openshell:resolve:env:KEY in any revision/handle form, and
 * the <prefix>OPENSHELL-RESOLVE-ENV-KEY alias) in @path by "[CREDENTIAL]", segment by segment
 * as OpenShell does (a segment holding one is emitted decoded). Anything from '?' on is dropped.
 * Returns the length written (NUL-terminated), -ENOBUFS, or -EINVAL for a marker that forms
 * no valid placeholder (answer credential_unavailable). */
int px_l7_redact_path(const char *path, size_t len, char *out, size_t size);
/* Does @s contain a reserved credential marker, raw or percent-decoded? */
bool px_l7_has_credential_marker(const char *s, size_t len);

/* "L7_REQUEST <decision> <METHOD> <host>:<port><path>[<summary>] reason=<reason>" with @path
 * redacted by px_l7_redact_path (a path that cannot be redacted is logged as /[CREDENTIAL];
 * the deny bodies do the same).
 * Returns the length written (NUL-terminated) or -ENOBUFS. */
int px_l7_log_request(char *buf, size_t size, const char *decision, const char *method,
		      const char *host, uint16_t port, const char *path, const char *summary,
		      const char *reason);

#endif
