/* The one in-memory sandbox policy, mirroring OpenShell's SandboxPolicy (contract §3.1).
 *
 * Loaders (INI and YAML files, the gateway's protobuf) fill this model and must leave it
 * passing pol_validate(); enforcement code (identity, Landlock, seccomp, the egress proxy) only
 * ever reads it. Nothing here enforces anything: the only kernel contact is stat(2)/readdir(3)
 * during baseline enrichment and reading the policy file.
 */
#ifndef SV_POLICY_H
#define SV_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor/err.h"

/* Limits from contract §3.4 (validate_sandbox_policy). */
#define POL_PATH_MAX  4096	    /* bytes in one path (filesystem path or binary) */
#define POL_PATHS_MAX 256	    /* filesystem paths in total (read_only + read_write) */
#define POL_ID_MAX    4294967294ULL /* numeric run_as_user / run_as_group upper bound */

/* Our own bounds (docs/policy.md): a policy can never make the supervisor allocate much. */
#define POL_FILE_MAX	     1048576 /* bytes in a policy file (1 MiB) */
#define POL_NAME_MAX	     32		   /* bytes in a user or group name (useradd's limit) */
#define POL_HOST_MAX	     253	   /* bytes in a DNS name */
#define POL_LABEL_MAX	     63		   /* bytes in one DNS label */
#define POL_RULE_NAME_MAX    128	   /* bytes in a network rule name */
#define POL_RULES_MAX	     256	   /* network rules */
#define POL_RULE_ITEMS_MAX   256	   /* endpoints, binaries, allowed_ips each, per rule */
#define POL_PORTS_MAX	     64		   /* ports per endpoint */
#define POL_ENDPOINT_IPS_MAX 65536	   /* allowed_ips entries summed over every endpoint */
#define POL_L7_ITEMS_MAX     256	   /* rules, deny_rules, matchers, globs, fields each */
/* OpenShell's bounds (openshell-core middleware.rs). */
#define POL_MIDDLEWARES_MAX	 10 /* network_middlewares entries */
#define POL_MIDDLEWARE_PATTERNS_MAX 32 /* include + exclude patterns of one middleware */

/* Looked for, in this order, when neither --policy nor OPENSHELL_POLICY_FILE names a file
 * (contract §3.4; docs/policy.md "Which policy file"). The first YAML found wins over the INI. */
#define POL_YAML_FILE	     "/etc/openshell/policy.yaml"
#define POL_LEGACY_YAML_FILE "/etc/navigator/policy.yaml" /* before navigator → openshell */
#define POL_INI_FILE	     "/etc/openshell/policy.ini"

enum pol_compat {
	POL_BEST_EFFORT = 0,
	POL_HARD_REQUIREMENT,
};

enum pol_host_kind {
	POL_HOST_NONE = 0, /* hostless: any host name, destination must be in allowed_ips */
	POL_HOST_NAME,	   /* exact DNS name, lower case */
	POL_HOST_GLOB,	   /* DNS name with '*' inside the first label or as whole labels */
	POL_HOST_IPV4,	   /* dotted quad, canonical */
	POL_HOST_IPV6,	   /* IPv6 literal without brackets, canonical (inet_ntop) */
};

struct pol_cidr {
	uint8_t family;	  /* 4 or 6 */
	uint8_t prefix;	  /* 0..32 or 0..128 */
	uint8_t addr[16]; /* network byte order (IPv4 uses the first 4); host bits are zero */
};

struct pol_strv {
	char **v; /* owned array of owned strings */
	size_t n;
};

/* --- layer 7 (openshell-l7-contract.md §1, §2, §5) ------------------------------------------
 * The model mirrors OpenShell's NetworkEndpoint (proto/sandbox.proto) field for field, as
 * written: presets are NOT expanded here (the proxy compiles `access` into rules), so a policy
 * read from YAML, INI or the gateway goes back out (UpdateConfig, pol_describe) as it came in.
 * Which fields are enforced and which are validated and then denied is in docs/policy.md. */

/* `protocol`. NONE: the field is absent (a plain L4 endpoint). TCP: the explicit L4 marker. */
enum pol_protocol {
	POL_PROTO_NONE = 0,
	POL_PROTO_TCP,
	POL_PROTO_REST,
	POL_PROTO_WEBSOCKET,
	POL_PROTO_GRAPHQL,
	POL_PROTO_SQL,
	POL_PROTO_JSONRPC,
	POL_PROTO_MCP,
};

/* `tls`. Only SKIP changes behaviour; TERMINATE and PASSTHROUGH are deprecated aliases of AUTO
 * (a warning, §1.1) and any other string is AUTO silently. */
enum pol_tls {
	POL_TLS_AUTO = 0,
	POL_TLS_SKIP,
	POL_TLS_TERMINATE,
	POL_TLS_PASSTHROUGH,
};

/* `enforcement`: only the literal "enforce" enforces; absent or anything else is audit (§2.4). */
enum pol_enforcement {
	POL_ENFORCE_AUDIT = 0,
	POL_ENFORCE_ENFORCE,
};

/* `access` presets (§2.2). UNKNOWN: a value outside the three, accepted with a warning and
 * generating no rules (every request is then a policy miss). */
enum pol_access {
	POL_ACCESS_NONE = 0,
	POL_ACCESS_READ_ONLY,
	POL_ACCESS_READ_WRITE,
	POL_ACCESS_FULL,
	POL_ACCESS_UNKNOWN,
};

/* One query (or MCP params / tool) matcher: `key: "glob"` (any == false, one glob) or
 * `key: {any: [globs]}` (any == true, one or more globs). Every value of the key must match one
 * glob for an allow rule; at least one value for a deny rule (§2.3). */
struct pol_matcher {
	char *key;		/* owned; NULL for a `tool` matcher; MCP params flattened as "a.b" */
	struct pol_strv globs;	/* owned, at least one */
	bool any;		/* written as {any: [...]} */
};

/* An allow rule (`rules: - allow: {...}`) or a deny rule (`deny_rules: - {...}`). Absent string
 * fields are NULL ("" is kept as given: a REST allow rule with path "" matches no request). */
struct pol_l7_rule {
	char *method;  /* owned; "*" or a method name, compared case-insensitively */
	char *path;    /* owned; glob, '*' inside one segment, '**' across */
	char *command; /* owned; sql only (a warning on REST deny rules) */
	struct pol_matcher *query; /* owned, n_query entries, keys unique */
	size_t n_query;
	/* GraphQL */
	char *operation_type; /* owned; query | mutation | subscription | "*" */
	char *operation_name; /* owned */
	struct pol_strv fields;
	/* MCP / JSON-RPC */
	struct pol_matcher *tool; /* owned, NULL when absent */
	struct pol_matcher *params; /* owned, n_params entries */
	size_t n_params;
};

/* `graphql_persisted_queries` entry: id → operation. */
struct pol_gql_op {
	char *id;	      /* owned */
	char *operation_type; /* owned */
	char *operation_name; /* owned, may be NULL */
	struct pol_strv fields;
};

/* Unset, false or true, for the optional booleans of the schema (`mcp.strict_tool_names`). */
enum pol_tristate {
	POL_UNSET = 0,
	POL_FALSE,
	POL_TRUE,
};

struct pol_endpoint {
	enum pol_host_kind kind;
	char *host;	 /* owned; NULL iff kind == POL_HOST_NONE */
	uint16_t *ports; /* owned; 1..POL_PORTS_MAX distinct values in 1..65535 */
	size_t n_ports;
	struct pol_cidr *allowed_ips; /* owned; non-empty when kind == POL_HOST_NONE */
	size_t n_allowed_ips;

	/* Layer 7. All zero/NULL: a plain L4 endpoint, exactly as before. */
	char *path; /* owned; endpoint path selector (§2.1): NULL = all paths */
	enum pol_protocol protocol;
	enum pol_tls tls;
	bool tls_set; /* the field was present (tls_set && tls == AUTO: an unknown string) */
	enum pol_enforcement enforcement;
	enum pol_access access;
	char *access_raw; /* owned; the value as written when access == POL_ACCESS_UNKNOWN */
	struct pol_l7_rule *rules; /* owned, allow rules */
	size_t n_rules;
	bool rules_set; /* `rules:` present (an empty list is a validation error, §5) */
	struct pol_l7_rule *deny_rules; /* owned */
	size_t n_deny_rules;
	bool deny_rules_set;
	bool allow_encoded_slash;
	/* Credentials (§3) */
	bool websocket_credential_rewrite;
	bool request_body_credential_rewrite;
	bool allow_uninspected_credentials;
	bool provider_credentialed; /* set by the gateway only, never by a file */
	bool advisor_proposed;	    /* set by the gateway only */
	char *credential_signing;   /* owned; sigv4 | sigv4:body | sigv4:no_body */
	char *signing_service;	    /* owned */
	char *signing_region;	    /* owned */
	char *credential_binding;   /* owned; `credential_binding: {provider: X}` → "X" */
	/* GraphQL */
	char *persisted_queries; /* owned; deny | allow_registered */
	struct pol_gql_op *gql_ops; /* owned, graphql_persisted_queries */
	size_t n_gql_ops;
	uint32_t graphql_max_body_bytes; /* 0 = default (64 KiB) */
	/* JSON-RPC / MCP */
	uint32_t json_rpc_max_body_bytes; /* 0 = default (64 KiB); YAML json_rpc/mcp.max_body_bytes */
	enum pol_tristate mcp_strict_tool_names;
	enum pol_tristate mcp_allow_all_known_mcp_methods;
};

struct pol_network_rule {
	char *name;			/* owned; unique within the policy */
	struct pol_endpoint *endpoints; /* owned; at least one */
	size_t n_endpoints;
	struct pol_strv binaries; /* absolute canonical paths, '*' and '**' globs allowed */
};

/* `network_middlewares` entry (OpenShell's supervisor middleware services). The supervisor runs
 * no middleware: requests to an endpoint a middleware selects are denied (docs/policy.md), never
 * let through unfiltered. Kept so the policy round-trips. */
struct pol_middleware {
	char *name;	  /* owned; the map key */
	char *middleware; /* owned */
	char *on_error;	  /* owned, may be NULL */
	char *config_json; /* owned; the `config` object as compact JSON, may be NULL */
	struct pol_strv include, exclude; /* endpoint selectors */
	int32_t order;
};

struct pol_policy {
	uint32_t version; /* always 1 */
	bool include_workdir;
	struct pol_strv read_only;  /* absolute, lexically normalised, no duplicates */
	struct pol_strv read_write; /* idem; never "/" */
	enum pol_compat landlock_compat;
	char *run_as_user;		/* owned; NULL = omitted (resolved later from the image) */
	char *run_as_group;		/* owned; NULL = omitted */
	struct pol_network_rule *rules; /* owned; empty = all egress denied */
	size_t n_rules;
	struct pol_middleware *middlewares; /* owned */
	size_t n_middlewares;
	char *source; /* owned; the file it came from, or "default", for logs */
};

/* --- the model (policy.c) ------------------------------------------------------------------ */

/* An empty policy: version 1, include_workdir true, best_effort, nothing else. */
void pol_init(struct pol_policy *p);
/* Free everything @p owns and leave it as pol_init() does (policy_copy.c). */
void pol_free(struct pol_policy *p);
/* Free what one part owns and zero it (for loaders building a part on the side). */
void pol_endpoint_free(struct pol_endpoint *e);
void pol_network_rule_free(struct pol_network_rule *r);
void pol_middleware_free(struct pol_middleware *m);

/* Deep-copy every field of @src into @dst (overwritten, not freed first: pass it empty). On
 * failure (-ENOMEM) @dst is left empty. @src is only read and never referenced afterwards. */
int pol_copy(const struct pol_policy *src, struct pol_policy *dst);

/* Field-by-field equality (source excluded). pol_network_equal compares network rules and
 * middlewares only, in order; pol_endpoint_equal one endpoint, every layer-7 field included. */
bool pol_equal(const struct pol_policy *a, const struct pol_policy *b);
bool pol_network_equal(const struct pol_policy *a, const struct pol_policy *b);
bool pol_endpoint_equal(const struct pol_endpoint *a, const struct pol_endpoint *b);

/* The restrictive default of contract §3.2 into an empty @p (on failure @p stays empty). */
int pol_set_default(struct pol_policy *p, struct sv_err *err);

int pol_strv_push(struct pol_strv *sv, const char *s); /* copies @s; 0 or -ENOMEM */
bool pol_strv_contains(const struct pol_strv *sv, const char *s);
void pol_strv_free(struct pol_strv *sv);

/* Validators. Each returns 0, or -EINVAL (-ERANGE, -ENAMETOOLONG) with @err saying what is
 * wrong and quoting the value: "path must be absolute (got 'usr')". Loaders prefix position. */
int pol_fs_path_check(const char *path, bool read_write, struct sv_err *err);
int pol_identity_check(const char *id, struct sv_err *err);
int pol_rule_name_check(const char *name, struct sv_err *err);
int pol_binary_check(const char *path, struct sv_err *err);
/* Validate @host (no brackets, not empty) and write its canonical form into @buf (at least
 * POL_HOST_MAX + 1 bytes): lower case names, canonical IP literals. */
int pol_host_canon(const char *host, char *buf, size_t size, enum pol_host_kind *kind,
		   struct sv_err *err);
/* "10.0.5.0/24", "fd00::/8", or a bare address (a /32 or /128). Host bits must be zero. */
int pol_cidr_parse(const char *s, struct pol_cidr *out, struct sv_err *err);
/* Render as "a.b.c.d/n" or "x::y/n" into @buf (at least 64 bytes); returns the length. */
size_t pol_cidr_format(const struct pol_cidr *c, char *buf, size_t size);

/* Lexically normalise an absolute path ("//a/./b/" -> "/a/b"); *out is returned owned.
 * Does not check validity: call pol_fs_path_check first. 0 or -ENOMEM. */
int pol_path_normalize(const char *path, char **out);

/* Check, normalise and append @path to read_only or read_write. Returns 1 when added, 0 when
 * the same normalised path is already in that list, or -errno (invalid path). POL_PATHS_MAX is
 * not enforced here: it bounds what a policy file asks for (loaders, pol_validate), while the
 * supervisor may still add baselines and the workdir after loading. */
int pol_fs_add(struct pol_policy *p, bool read_write, const char *path, struct sv_err *err);

/* Every invariant this header promises, on a loader's output (before enrichment, which may
 * take the path count over POL_PATHS_MAX). 0 or -EINVAL with @err naming the field. Layer-7
 * and middleware checks follow openshell-l7-contract.md §5 with OpenShell's messages, after a
 * field path: "network.<rule>.endpoints[0].rules[2].allow.query.repo: ...". */
int pol_validate(const struct pol_policy *p, struct sv_err *err);

/* A policy that is valid but says something that has no effect or is deprecated (§5 "accepted
 * with warning"). @field is the path ("network.api.endpoints[0]"), @msg the text; both borrowed
 * for the call. */
typedef void (*pol_warn_fn)(void *ctx, const char *field, const char *msg);

/* pol_validate, reporting every warning to @warn (NULL: none) before returning. Warnings found
 * before the first error are reported even when the policy is invalid. */
int pol_validate_full(const struct pol_policy *p, pol_warn_fn warn, void *ctx,
		      struct sv_err *err);

/* A pol_warn_fn for loaders: one OCSF line `CONFIG:VALIDATED [MED] WARNING` (event
 * policy_warning, keys field and source) per warning. @ctx is the policy's source name (a
 * const char *, may be NULL). */
void pol_warn_log(void *ctx, const char *field, const char *msg);

/* Spellings shared by every loader (OpenShell's strings). The parsers return 0, or -EINVAL
 * for a value the schema does not know (protocol: with a message naming the valid ones). */
const char *pol_protocol_name(enum pol_protocol v); /* "" for POL_PROTO_NONE */
int pol_protocol_parse(const char *s, enum pol_protocol *out, struct sv_err *err); /* any case */
const char *pol_tls_name(enum pol_tls v);		/* "auto", "skip", ... */
/* "skip", "terminate", "passthrough"; anything else is AUTO (OpenShell ignores it). */
enum pol_tls pol_tls_parse(const char *s);
const char *pol_access_name(const struct pol_endpoint *e); /* "" when NONE; raw when UNKNOWN */
enum pol_access pol_access_parse(const char *s);	   /* "" = NONE, unknown = UNKNOWN */
bool pol_protocol_is_l7(enum pol_protocol v); /* rest, websocket, graphql, sql, json-rpc, mcp */

/* OpenShell's host pattern match, case-sensitive on canonical (lower-case) text: '*' within one
 * label, a whole first label '**' over one or more labels ("**.example.com" matches
 * "a.b.example.com", not "example.com"); a pattern without '*' is an exact name. */
bool pol_host_pattern_match(const char *pattern, const char *host);
/* Does middleware @m select @host (lower case): some include pattern matches, no exclude? */
bool pol_middleware_selects(const struct pol_middleware *m, const char *host);

/* --- baseline enrichment (contract §3.3) --------------------------------------------------- */

#define POL_ENRICH_PROXY                                                    \
	0x1u /* add the proxy baseline: file mode always; gateway mode only \
	      * when the policy has network rules */

/* Add the baselines whose paths exist under @root (NULL or "" = the real root; tests pass a
 * fake root). Whatever @flags say, /bin, /sbin and /lib64 are added read-only when they are real
 * directories (not symlinks into /usr): images that are not merged-/usr need them to run. User paths are never removed; a path already read_write is never added
 * read_only; an explicit read_only path is never made read_write, except /proc, which the GPU
 * baseline (when /dev/nvidiactl or /dev/dxg exists) promotes. Returns the number of paths
 * added or promoted, or -errno. */
int pol_enrich(struct pol_policy *p, const char *root, unsigned int flags, struct sv_err *err);

/* --- binary symlinks (policy_binres.c, docs/policy.md "Symlinked binaries") ------------------------------ */

/* Resolve absolute @path inside @root (NULL, "" or "/" = the real root) as the kernel would
 * for a process whose root it is: every component, symlinks followed (at most 40), an absolute
 * target restarting at @root, ".." never above it. Writes the path inside the root to @out.
 * -ENOENT (missing, or a dangling link), -ELOOP, -ENOTDIR, -ENAMETOOLONG, -EINVAL (not
 * absolute). */
int pol_binary_resolve(const char *root, const char *path, char *out, size_t size);

/* For each rule binary without a glob, add its resolved target (pol_binary_resolve) to the
 * same rule when it differs, so the link and the target both match; one that cannot be resolved
 * stays, matched literally, and is logged (policy_binary_unresolved, warn). Idempotent. Returns
 * how many paths were added, or -ENOMEM. */
int pol_resolve_binaries(struct pol_policy *p, const char *root);

/* The effective policy as text in the INI syntax pol_load_buffer() reads back, for logs and
 * --self-test. *out is returned owned (free()). 0 or -ENOMEM. */
int pol_describe(const struct pol_policy *p, char **out);

/* --- the INI loader (policy_ini.c, docs/policy.md) ----------------------------------------- */

/* Parse and validate @len bytes of INI text. @name (borrowed) is used in messages:
 * "<name>:<line>: <key>: <fault>". @out must be empty (pol_init or zeroed); on failure it is
 * left empty, never half-filled. */
int pol_load_buffer(const char *name, const char *buf, size_t len, struct pol_policy *out,
		    struct sv_err *err);

/* --- the YAML loader (policy_yaml*.c, docs/policy.md "YAML") ------------------------------ */

/* Parse and validate @len bytes of OpenShell's policy YAML (contract §3.5) into the same model
 * with the same validation. Refused: unknown keys at any level, wrong types, duplicate keys,
 * anchors, aliases and tags, more than one document, nesting past the schema. Messages are
 * "<name>:<line>:<col>: <field path>: <fault>". Same contract for @out as pol_load_buffer. */
int pol_load_yaml_buffer(const char *name, const char *buf, size_t len, struct pol_policy *out,
			 struct sv_err *err);

/* --- files and discovery (policy_load.c) ---------------------------------------------------- */

/* Read @path (a regular file of at most POL_FILE_MAX bytes; symlinks are followed) and parse
 * it as INI (pol_load_file) or YAML (pol_load_yaml_file). Returns -ENOENT when the file does
 * not exist. */
int pol_load_file(const char *path, struct pol_policy *out, struct sv_err *err);
int pol_load_yaml_file(const char *path, struct pol_policy *out, struct sv_err *err);

enum pol_format {
	POL_FORMAT_INI = 0,
	POL_FORMAT_YAML,
};

/* The format of a policy file: by @path's extension (.yaml/.yml, .ini), else by content: the
 * first line that is neither blank nor a comment ('#', ';') a `[section]` header is INI,
 * anything else YAML. @path may be NULL (content only). */
enum pol_format pol_format_guess(const char *path, const char *buf, size_t len);

/* Read @path and load it in the format pol_format_guess() picks. -ENOENT when absent. */
int pol_load_path(const char *path, struct pol_policy *out, struct sv_err *err);

/* Pick and load the policy. @explicit_path (--policy or OPENSHELL_POLICY_FILE; NULL or "" =
 * none) must exist and is read by pol_load_path. Otherwise, under @root (NULL or "" = "/";
 * tests pass a fake root): POL_YAML_FILE, else POL_LEGACY_YAML_FILE, else POL_INI_FILE, else
 * the restrictive default. When a YAML is used while another candidate also exists, a warning
 * (`policy_file_ignored`) names the file used and each one ignored. An existing but invalid
 * file is always an error, never a fall-through to the next candidate. */
int pol_load(const char *explicit_path, const char *root, struct pol_policy *out,
	     struct sv_err *err);

#endif
