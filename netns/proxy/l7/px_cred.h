/* Provider credentials at egress (openshell-l7-contract.md §3): the store of secret values with
 * their endpoint bindings and retained revisions, the placeholders the agent sees instead, and
 * the per-request substitution into an inspected request head or body.
 *
 * Pure: no I/O, no logging, no clock (callers pass now_ms). A value never reaches an sv_err, a
 * return code or anything but the caller's output buffer of a successful rewrite; freed values
 * are wiped. PID 1 builds the store; the proxy child gets a copy (px_cred_pack/unpack).
 */
#ifndef PX_CRED_H
#define PX_CRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netns/proxy/l7/px_l7.h"
#include "supervisor/err.h"

/* §3.1: the placeholder prefix and the provider-shaped alias marker. */
#define PX_CRED_PREFIX "openshell:resolve:env:"
#define PX_CRED_ALIAS  "OPENSHELL-RESOLVE-ENV-"
/* §3.6: resolvers kept for this many earlier revisions. */
#define PX_CRED_GENERATIONS 8
/* §3.3: request bodies are rewritten up to this size. */
#define PX_CRED_BODY_MAX ((size_t)256 * 1024)
/* §3.3: bytes after the head the post-rewrite re-scan covers. */
#define PX_CRED_RESCAN_TAIL 256
/* Longest placeholder we make: prefix + "s" + 64 hex + "_" + key. */
#define PX_CRED_KEY_MAX		256
#define PX_CRED_PLACEHOLDER_MAX (sizeof(PX_CRED_PREFIX) + 66 + PX_CRED_KEY_MAX)

struct px_cred_store;

/* One endpoint a static credential is bound to (§3.4): host pattern, port, endpoint path. */
struct px_cred_endpoint_in {
	const char *host;
	uint32_t port;	  /* 1..65535, else the static set is rejected */
	const char *path; /* NULL or "": everywhere */
};

struct px_cred_binding_in {
	const char *key;
	const char *identity; /* credential_identity, non-empty */
	const char *handle;   /* workload_credential_handle: NULL/"" or 64 lower-hex */
	const struct px_cred_endpoint_in *endpoints;
	size_t n_endpoints;
};

struct px_cred_var_in {
	const char *key;
	const char *value;
	int64_t expires_at_ms; /* >0: unresolvable from then on; 0: never expires */
};

/* One GetSandboxProviderEnvironment answer, borrowed for the duration of the install. */
struct px_cred_input {
	uint64_t revision;
	const struct px_cred_var_in *vars;
	size_t n_vars;
	/* true: the §3.5 rules apply (every key bound or non-secret) and bound keys resolve only
	 * at their endpoints. false (we did not claim supports_static_credential_bindings): every
	 * key is unbound and resolves at any inspected endpoint, as OpenShell's legacy install. */
	bool bindings_enforced;
	const struct px_cred_binding_in *bindings;
	size_t n_bindings;
	const char *const *non_secret;
	size_t n_non_secret;
};

/* An empty store (no credentials: every marker fails closed). NULL on ENOMEM. */
struct px_cred_store *px_cred_store_new(void);
/* Wipes every value, then frees. NULL is fine. */
void px_cred_store_free(struct px_cred_store *s);

/* Install a snapshot (§3.2, §3.5, §3.6). Keys in the placeholder namespace (v<digits>_X,
 * s<64hex>_X) or not [A-Za-z0-9_]{1,PX_CRED_KEY_MAX} are skipped. Returns 0; -EINVAL when the
 * §3.5 validation rejects the static set: the store then holds no static credential (revoked)
 * and @err says which rule, never a value; -ENOMEM (store unchanged). */
int px_cred_store_install(struct px_cred_store *s, const struct px_cred_input *in,
			  struct sv_err *err);
/* A failed refetch (§3.6): every static credential and retained revision is dropped. */
void px_cred_store_revoke(struct px_cred_store *s, uint64_t revision);

uint64_t px_cred_store_revision(const struct px_cred_store *s);
/* Variables of the current snapshot, in install order; the key of the @i'th (borrowed). */
size_t px_cred_store_count(const struct px_cred_store *s);
const char *px_cred_store_key(const struct px_cred_store *s, size_t i);
/* The placeholder the agent gets for the @i'th variable (§3.1: s<handle>_ when bound with a
 * handle, v<rev>_ when the revision is not 0, else canonical). Returns its length, -ENOBUFS. */
int px_cred_store_placeholder(const struct px_cred_store *s, size_t i, char *buf, size_t size);

/* Copy for the proxy child: a self-describing blob (owned, free() after wiping it with
 * px_cred_wipe). -ENOMEM. */
int px_cred_store_pack(const struct px_cred_store *s, uint8_t **out, size_t *len);
/* The store from a blob; every length and count is checked. -EINVAL (@err names the offset),
 * -ENOMEM. */
int px_cred_store_unpack(const uint8_t *buf, size_t len, struct px_cred_store **out,
			 struct sv_err *err);
/* explicit_bzero that the compiler keeps. */
void px_cred_wipe(void *p, size_t n);

/* ---- per request --------------------------------------------------------------------------- */

/* Where the request goes: the CONNECT host and port (the request path comes from the head). */
struct px_cred_scope {
	const char *host;
	uint16_t port;
	int64_t now_ms; /* wall clock, for credential_expires_at_ms */
};

/* Failures, mapped to the wire by px_cred_resp (§3.4). Never positive errno. */
#define PX_CRED_E_MISMATCH (-EACCES) /* 403 credential_endpoint_mismatch */
#define PX_CRED_E_UNAVAIL  (-ENOENT) /* 500 credential_unavailable */

struct px_cred_stats {
	size_t replaced;      /* placeholders replaced */
	bool target_changed;  /* the request line was rewritten */
	const char *location; /* on failure: "path", "query_param", "header", "request_body" */
};

/* The one call the relay makes per inspected request (§3.3, §3.4): rewrite @req's head (parsed
 * from the buffer that starts at req->method, req->head_len bytes) for @scope into @out: the
 * request line's path segments and query values, header values (whole value, "<word> <ph>",
 * inside Basic), then the re-scan of the result plus @tail (the first PX_CRED_RESCAN_TAIL
 * body bytes already read, may be NULL) raw and percent-decoded. @s NULL: no resolver, any
 * marker fails. Returns the head length written (a marker-free head is copied unchanged),
 * PX_CRED_E_MISMATCH, PX_CRED_E_UNAVAIL or -ENOBUFS (head_len + 4096 + the values fits). */
int px_cred_rewrite(const struct px_cred_store *s, const struct px_cred_scope *scope,
		    const struct px_l7_req *req, const char *tail, size_t tail_len, char *out,
		    size_t size, struct px_cred_stats *st);

/* The same for a relay that holds only the head it is about to forward: @head (@len bytes, one
 * complete head as px_l7_req_rewrite writes it) is parsed and rewritten in place within @cap
 * bytes. Returns the new length or the errors of px_cred_rewrite (-EBADMSG: @head does not
 * parse). On failure @head is unchanged. */
int px_cred_rewrite_inplace(const struct px_cred_store *s, const struct px_cred_scope *scope,
			    char *head, size_t len, size_t cap, struct px_cred_stats *st);

/* Does the request's content type allow a body rewrite (application/json,
 * application/x-www-form-urlencoded, text/x; parameters ignored, case-insensitive)? */
bool px_cred_body_type_ok(const char *content_type, size_t len);
/* request_body_credential_rewrite (§3.3): rewrite a whole, de-chunked body (<=
 * PX_CRED_BODY_MAX) whose Content-Type is @ctype (may be NULL) for the request's @path (raw
 * target) at @scope. Marker-free bodies are copied. Placeholders in an unsupported type, in a
 * form field name or left unresolved fail. Returns the body length written to @out, the errors
 * of px_cred_rewrite, -EFBIG (over the cap) or -EBADMSG (not UTF-8). The caller sets
 * Content-Length to the new length. */
int px_cred_rewrite_body(const struct px_cred_store *s, const struct px_cred_scope *scope,
			 const char *path, size_t path_len, const char *ctype, size_t ctype_len,
			 const char *body, size_t len, char *out, size_t size,
			 struct px_cred_stats *st);

/* The response for a failure of the two calls above (§3.4): 403 credential_endpoint_mismatch
 * or 500 credential_unavailable with Content-Type, Content-Length, Connection: close. Returns
 * the length written or -ENOBUFS (256 always fits); -EINVAL for any other @rc. */
int px_cred_resp(int rc, char *buf, size_t size);

#endif
