/* The spellings every policy loader shares: protocol, tls and access names in OpenShell's
 * strings, and the OCSF line a validation warning becomes.
 *
 * No policy logic here: what a value means is decided by policy_l7.c and the proxy.
 */
#include "policy_int.h"

#include <string.h>
#include <strings.h>

#include "supervisor/log.h"

/* --- spellings ----------------------------------------------------------------------------- */

static const char *const proto_names[] = {
    [POL_PROTO_NONE] = "",
    [POL_PROTO_TCP] = "tcp",
    [POL_PROTO_REST] = "rest",
    [POL_PROTO_WEBSOCKET] = "websocket",
    [POL_PROTO_GRAPHQL] = "graphql",
    [POL_PROTO_SQL] = "sql",
    [POL_PROTO_JSONRPC] = "json-rpc",
    [POL_PROTO_MCP] = "mcp",
};

const char *pol_protocol_name(enum pol_protocol v)
{
	return (size_t)v < SV_ARRAY_SIZE(proto_names) ? proto_names[v] : "?";
}

int pol_protocol_parse(const char *s, enum pol_protocol *out, struct sv_err *err)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(proto_names); i++) {
		if (strcasecmp(s, proto_names[i]) == 0) {
			*out = (enum pol_protocol)i;
			return 0;
		}
	}
	return sv_err_set(err, EINVAL,
			  "unknown protocol '%.64s' (expected tcp, rest, websocket, graphql, sql, "
			  "json-rpc, or mcp)",
			  s);
}

bool pol_protocol_is_l7(enum pol_protocol v)
{
	return v >= POL_PROTO_REST && v <= POL_PROTO_MCP;
}

const char *pol_tls_name(enum pol_tls v)
{
	switch (v) {
	case POL_TLS_SKIP:
		return "skip";
	case POL_TLS_TERMINATE:
		return "terminate";
	case POL_TLS_PASSTHROUGH:
		return "passthrough";
	case POL_TLS_AUTO:
		break;
	}
	return "auto";
}

enum pol_tls pol_tls_parse(const char *s)
{
	if (strcmp(s, "skip") == 0)
		return POL_TLS_SKIP;
	if (strcmp(s, "terminate") == 0)
		return POL_TLS_TERMINATE;
	if (strcmp(s, "passthrough") == 0)
		return POL_TLS_PASSTHROUGH;
	return POL_TLS_AUTO;
}

const char *pol_access_name(const struct pol_endpoint *e)
{
	switch (e->access) {
	case POL_ACCESS_READ_ONLY:
		return "read-only";
	case POL_ACCESS_READ_WRITE:
		return "read-write";
	case POL_ACCESS_FULL:
		return "full";
	case POL_ACCESS_UNKNOWN:
		return e->access_raw ? e->access_raw : "";
	case POL_ACCESS_NONE:
		break;
	}
	return "";
}

enum pol_access pol_access_parse(const char *s)
{
	if (!*s)
		return POL_ACCESS_NONE;
	if (strcmp(s, "read-only") == 0)
		return POL_ACCESS_READ_ONLY;
	if (strcmp(s, "read-write") == 0)
		return POL_ACCESS_READ_WRITE;
	if (strcmp(s, "full") == 0)
		return POL_ACCESS_FULL;
	return POL_ACCESS_UNKNOWN;
}

void pol_warn_log(void *ctx, const char *field, const char *msg)
{
	const char *source = ctx;
	sv_log_ocsf("CONFIG:VALIDATED", SV_SEV_MED, "WARNING", "policy_warning", msg,
		    SV_KVS({"field", field}, {"source", source ? source : "-"}));
}

