/* The egress proxy's policy decision (contract §8 "Matching"): does a rule of the policy allow
 * this binary to reach this host and port, and if not, the exact deny reason OpenShell gives.
 *
 * Pure functions over struct pol_policy: no I/O, no allocation, no logging. The caller's
 * process facts (exe, ancestors) come from the kernel; cmdline is shown, never trusted.
 */
#ifndef PX_POLICY_H
#define PX_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisor/policy/policy.h"

/* Bytes of a deny reason, NUL included. Longer reasons (many rules, deep ancestry) are cut and
 * end in "...". Our own bound: OpenShell's reasons are unbounded. */
#define PX_REASON_MAX 4096

/* Deny reasons of contract §8 that are fixed strings. */
#define PX_REASON_NO_RULES "network connections not allowed by policy"

struct px_query {
	const char *host; /* destination host, without brackets; matched case-insensitively */
	uint16_t port;
	const char *exe;	      /* the peer's /proc/<pid>/exe target; NULL = unknown */
	const char *const *ancestors; /* exe paths of its ancestors, nearest first */
	size_t n_ancestors;
	const char *const *cmdline; /* informational only: shown in deny reasons */
	size_t n_cmdline;
	/* OPENSHELL_NETWORK_BINARY_IDENTITY relaxed (px_binary_identity_is_relaxed): binaries are
	 * ignored and any rule whose endpoint matches allows. */
	bool endpoint_only;
	/* Optional: is this literal policy binary path a symlink in the sandbox's filesystem?
	 * Consulted only for a deny reason's SYMLINK HINT; must not block (answer from a set
	 * computed when the policy was loaded). NULL = never hint. */
	bool (*binary_is_symlink)(void *ctx, const char *policy_path);
	void *symlink_ctx;
};

struct px_decision {
	bool allow;
	/* Allowed, and some allowing rule names @host exactly (no glob, not hostless) with this
	 * port: the SSRF guard then lets the name resolve to internal addresses. */
	bool exact_declared;
	/* Allowed: the lexicographically smallest allowing rule (borrowed from the policy). */
	const struct pol_network_rule *rule;
	/* Allowed: the endpoint whose allowed_ips the SSRF guard applies (borrowed), rules taken
	 * in name order, endpoints in order: the first matching endpoint that names the host and
	 * has allowed_ips; else the first that names the host; else the first hostless one. Unlike
	 * OpenShell, a hostless endpoint's allowed_ips never restrict a host that another allowing
	 * endpoint names (that was a false denial). */
	const struct pol_endpoint *endpoint;
	/* Allowed: the first matching endpoint with an endpoint config says `tls: skip` (l7
	 * contract §1.1): relay raw, never terminate. */
	bool tls_skip;
	/* Allowed: some matching endpoint of an allowing rule is protocol rest or websocket (and
	 * the tunnel is not skipped): every request in the tunnel is judged (l7 contract §2). */
	bool inspect;
	char reason[PX_REASON_MAX]; /* denied: the reason of contract §8; "" when allowed */
};

/* Decide @q against @p and fill @d. Allow iff some rule has an endpoint matching host and port
 * AND (unless endpoint_only) a binary matching the exe or an ancestor. Deny reasons:
 *   no rules at all:       "network connections not allowed by policy"
 *   no endpoint matches:   "endpoint <host>:<port> is not allowed by any policy" (host lower case)
 *   endpoint but no binary, one part per such rule in name order, joined by "; ":
 *     "binary '<exe>' not allowed in policy '<name>' (ancestors: [<a1> -> <a2>], cmdline:
 *     [<c1>, <c2>])", followed by ". SYMLINK HINT: ..." when a literal binary path of that
 *     rule is a symlink (per @q->binary_is_symlink). The list formats are OpenShell's Rego
 *     ones: ancestors joined by " -> ", cmdline by ", ".
 * REST and WebSocket endpoints admit the CONNECT (d->inspect: the tunnel judges each
 * request). Interim, until the proxy inspects them (docs/policy.md "What is enforced"): an
 * endpoint with protocol graphql, sql, json-rpc or mcp (and no `tls: skip`) never allows. When such endpoints are all that admit the request (binary matched):
 *     "endpoint <host>:<port> in policy '<name>' requires layer-7 inspection (protocol
 *     <protocol>), which is not enforced by this supervisor yet" (first such rule by name)
 * and when an allowed host is selected by a network middleware (policy order):
 *     "endpoint <host>:<port> is selected by network middleware '<name>' (<middleware>), which
 *     is not run by this supervisor yet" */
void px_policy_decide(const struct pol_policy *p, const struct px_query *q, struct px_decision *d);

/* Protocol rest or websocket without `tls: skip`: inspected in the tunnel. */
bool px_policy_endpoint_is_rest(const struct pol_endpoint *e);

/* Host pattern match, '.' separating labels, case-insensitive (OpenShell's
 * glob.match(lower(pattern), ["."], lower(host))): '*' matches any run of characters inside
 * one label, empty included ("api-*.example.com"); a whole first label '**' matches one or more
 * labels. So "*.example.com" matches "a.example.com" but neither "example.com" nor
 * "a.b.example.com", and "**.example.com" matches both of those but not the apex
 * "example.com". A host that is empty or has an empty label matches nothing. */
bool px_policy_host_glob_match(const char *pattern, const char *host);

/* Path pattern match, '/' separating components, case-sensitive: '*' within one component,
 * a whole component '**' matches one or more components: "/usr/lib/" "**" "/copilot" (one
 * pattern, split here only because C comments cannot hold it) matches "/usr/lib/x/copilot" and
 * "/usr/lib/x/y/copilot", not "/usr/lib/copilot". */
bool px_policy_path_glob_match(const char *pattern, const char *path);

/* Does @e admit @host:@port? Exact hosts compare case-insensitively (IPv6 literals as
 * addresses), globs as above, hostless endpoints admit every host; @port must be listed. */
bool px_policy_endpoint_matches(const struct pol_endpoint *e, const char *host, uint16_t port);

/* Does a binary of @r equal, or as a glob match, @exe or one of @ancestors? */
bool px_policy_binary_matches(const struct pol_network_rule *r, const char *exe,
			      const char *const *ancestors, size_t n_ancestors);

/* How policy @p stands towards the binary path @path, over every rule's binaries whatever the
 * endpoint (the TOFU cache pins only paths some rule could allow, issue 17):
 *   PX_BIN_NONE   no rule names it, exactly or by glob: as exe or ancestor it never grants;
 *   PX_BIN_GLOB   only globs match it (the agent may be able to make many such paths);
 *   PX_BIN_EXACT  some rule names it literally (bounded by the policy's size).
 * A NULL policy or path is PX_BIN_NONE. */
enum px_bin_class {
	PX_BIN_NONE,
	PX_BIN_GLOB,
	PX_BIN_EXACT,
};
enum px_bin_class px_policy_binary_class(const struct pol_policy *p, const char *path);

/* px_policy_binary_class() != PX_BIN_NONE: could some rule allow a process because it (or an
 * ancestor) runs @path? */
bool px_policy_binary_is_candidate(const struct pol_policy *p, const char *path);

/* The value of OPENSHELL_NETWORK_BINARY_IDENTITY turns binary matching off when it is
 * "relaxed", "disabled", "endpoint-only", "false" or "0" (ASCII case and surrounding blanks
 * ignored). Unset, empty or anything else keeps binary identity required. */
bool px_binary_identity_is_relaxed(const char *value);

#endif
