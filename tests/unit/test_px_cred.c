/* Unit tests for netns/proxy/l7/px_cred*.c: placeholders (§3.1), substitution in the request
 * line, headers and bodies with the fail-closed re-scan (§3.3), endpoint bindings and their
 * validation (§3.4, §3.5), rotation, stable handles and expiry (§3.6), the error responses and
 * the blob for the proxy child. Names follow OpenShell's C/secrets.rs and
 * C/provider_credentials.rs cases where one exists; expectations are written from the contract.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/l7/px_cred.h"

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define NOW 1000000

static char out[65536];

static struct px_cred_store *legacy(uint64_t rev, const struct px_cred_var_in *v, size_t n)
{
	struct px_cred_store *s = px_cred_store_new();
	struct px_cred_input in = {.revision = rev, .vars = v, .n_vars = n};
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(px_cred_store_install(s, &in, NULL), 0);
	return s;
}

static struct px_cred_store *one(const char *k, const char *v)
{
	struct px_cred_var_in x = {k, v, 0};
	return legacy(0, &x, 1);
}

/* Rewrite @head for host:port; the result NUL-terminated in out. */
static int rw_at(const struct px_cred_store *s, const char *host, uint16_t port, const char *head,
		 const char *tail)
{
	struct px_l7_req req;
	struct sv_err err = {0};
	ck_assert_msg(px_l7_req_parse(head, strlen(head), &req, &err) == 0, "parse: %s", err.msg);
	struct px_cred_scope sc = {host, port, NOW};
	int n = px_cred_rewrite(s, &sc, &req, tail, tail ? strlen(tail) : 0, out, sizeof(out) - 1,
				NULL);
	out[n > 0 ? n : 0] = '\0';
	return n;
}

static int rw(const struct px_cred_store *s, const char *head)
{
	return rw_at(s, "x", 443, head, NULL);
}

#define PH(k) PX_CRED_PREFIX k

/* ---- placeholders (§3.1, §3.2) ------------------------------------------------------------ */

START_TEST(provider_env_is_replaced_with_placeholders)
{
	char b[512];
	struct px_cred_store *s = one("ANTHROPIC_API_KEY", "sk-abc");
	ck_assert_int_eq(px_cred_store_count(s), 1);
	ck_assert_str_eq(px_cred_store_key(s, 0), "ANTHROPIC_API_KEY");
	ck_assert_int_gt(px_cred_store_placeholder(s, 0, b, sizeof(b)), 0);
	ck_assert_str_eq(b, "openshell:resolve:env:ANTHROPIC_API_KEY");
	px_cred_store_free(s);
	struct px_cred_var_in v = {"GITHUB_TOKEN", "ghp", 0};
	s = legacy(42, &v, 1);
	ck_assert_int_gt(px_cred_store_placeholder(s, 0, b, sizeof(b)), 0);
	ck_assert_str_eq(b, "openshell:resolve:env:v42_GITHUB_TOKEN");
	ck_assert_int_eq(px_cred_store_placeholder(s, 0, b, 10), -ENOBUFS);
	px_cred_store_free(s);
}
END_TEST

START_TEST(provider_env_rejects_revision_namespace_keys)
{
	struct px_cred_var_in v[] = {
	    {"v1_TOKEN", "a", 0}, {"s" H64 "_TOKEN", "b", 0}, {"v_TOKEN", "c", 0},
	    {"vX_1", "d", 0},	  {"BAD-NAME", "e", 0},	      {"OK", "f", 0},
	};
	struct px_cred_store *s = legacy(0, v, 6);
	ck_assert_int_eq(px_cred_store_count(s), 3);
	ck_assert_str_eq(px_cred_store_key(s, 0), "v_TOKEN");
	ck_assert_str_eq(px_cred_store_key(s, 1), "vX_1");
	ck_assert_str_eq(px_cred_store_key(s, 2), "OK");
	px_cred_store_free(s);
}
END_TEST

/* ---- headers (§3.3) ----------------------------------------------------------------------- */

START_TEST(rewrites_exact_and_bearer_placeholder_header_values)
{
	struct px_cred_store *s = one("KEY", "sk-real");
	int n = rw(s, "GET / HTTP/1.1\r\nHost: x\r\nx-api-key: " PH(
			  "KEY") "\r\n"
				 "Authorization: Bearer " PH("KEY") "\r\nAccept: */*\r\n\r\n");
	ck_assert_int_gt(n, 0);
	ck_assert_str_eq(out, "GET / HTTP/1.1\r\nHost: x\r\nx-api-key: sk-real\r\n"
			      "Authorization: Bearer sk-real\r\nAccept: */*\r\n\r\n");
	px_cred_store_free(s);
}
END_TEST

START_TEST(non_secret_headers_are_not_modified)
{
	struct px_cred_store *s = one("KEY", "v");
	const char *h = "POST /a?b=c HTTP/1.1\r\nHost: x\r\nX-Thing:   spaced  \r\n\r\n";
	ck_assert_int_eq(rw(s, h), (int)strlen(h));
	ck_assert_str_eq(out, h);
	px_cred_store_free(s);
}
END_TEST

START_TEST(rewrites_stale_revisioned_bearer_placeholder_to_current_alias)
{
	struct px_cred_var_in v = {"GITHUB_TOKEN", "ghp-current", 0};
	struct px_cred_store *s = legacy(42, &v, 1);
	ck_assert_int_gt(rw(s, "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " PH(
				   "v10_GITHUB_TOKEN") "\r\n\r\n"),
			 0);
	ck_assert_ptr_nonnull(strstr(out, "Authorization: Bearer ghp-current\r\n"));
	/* stale_revisioned_placeholder_fails_when_key_is_unknown */
	ck_assert_int_eq(rw(s, "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " PH(
				   "v10_OTHER_TOKEN") "\r\n\r\n"),
			 PX_CRED_E_UNAVAIL);
	px_cred_store_free(s);
}
END_TEST

START_TEST(rewrites_provider_shaped_alias_header_values)
{
	struct px_cred_var_in v[] = {{"API_TOKEN", "provider-real-token", 0},
				     {"CHAT_APP_TOKEN", "app-real-token", 0}};
	struct px_cred_store *s = legacy(0, v, 2);
	ck_assert_int_gt(rw(s,
			    "GET / HTTP/1.1\r\nHost: x\r\n"
			    "Authorization: Bearer vendor-OPENSHELL-RESOLVE-ENV-API_TOKEN\r\n"
			    "x-app-token: token.v1-OPENSHELL-RESOLVE-ENV-CHAT_APP_TOKEN\r\n\r\n"),
			 0);
	ck_assert_ptr_nonnull(strstr(out, "Authorization: Bearer provider-real-token\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "x-app-token: app-real-token\r\n"));
	/* unresolved_provider_shaped_alias_fails_closed */
	ck_assert_int_eq(rw(s,
			    "GET / HTTP/1.1\r\nHost: x\r\n"
			    "Authorization: Bearer vendor-OPENSHELL-RESOLVE-ENV-MISSING\r\n\r\n"),
			 PX_CRED_E_UNAVAIL);
	px_cred_store_free(s);
}
END_TEST

START_TEST(marker_in_any_other_header_position_fails)
{
	struct px_cred_store *s = one("KEY", "v");
	ck_assert_int_eq(rw(s, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a " PH("KEY") " b\r\n\r\n"),
			 PX_CRED_E_UNAVAIL);
	ck_assert_int_eq(rw(s, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a,b" PH("KEY") "\r\n\r\n"),
			 PX_CRED_E_UNAVAIL);
	ck_assert_int_eq(
	    rw(s, "GET / HTTP/1.1\r\nHost: x\r\nX-A: openshell%3Aresolve%3Aenv%3AKEY\r\n\r\n"),
	    PX_CRED_E_UNAVAIL);
	/* header names are never rewritten: a marker there stays and the re-scan refuses it */
	ck_assert_int_eq(
	    rw(s, "GET / HTTP/1.1\r\nHost: x\r\nx-OPENSHELL-RESOLVE-ENV-KEY: 1\r\n\r\n"),
	    PX_CRED_E_UNAVAIL);
	px_cred_store_free(s);
}
END_TEST

START_TEST(resolve_placeholder_rejects_crlf_and_null)
{
	struct px_cred_store *s = one("KEY", "bad\r\nX-Injected: 1");
	ck_assert_int_eq(rw(s, "GET / HTTP/1.1\r\nHost: x\r\nx-api-key: " PH("KEY") "\r\n\r\n"),
			 PX_CRED_E_UNAVAIL);
	px_cred_store_free(s);
	s = one("KEY", "bad\nvalue");
	ck_assert_int_eq(rw(s, "GET / HTTP/1.1\r\nHost: x\r\nx-api-key: " PH("KEY") "\r\n\r\n"),
			 PX_CRED_E_UNAVAIL);
	px_cred_store_free(s);
}
END_TEST

static const char b64_admin_ph[] = "YWRtaW46b3BlbnNoZWxsOnJlc29sdmU6ZW52OkRCX1BBU1NXT1JE";

START_TEST(rewrites_basic_auth_placeholder_in_decoded_token)
{
	/* base64("admin:openshell:resolve:env:DB_PASSWORD") -> base64("admin:s3cret!") */
	struct px_cred_store *s = one("DB_PASSWORD", "s3cret!");
	char h[512];
	snprintf(h, sizeof(h), "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n\r\n",
		 b64_admin_ph);
	ck_assert_int_gt(rw(s, h), 0);
	ck_assert_msg(strstr(out, "Authorization: Basic YWRtaW46czNjcmV0IQ==\r\n"), "got %s", out);
	ck_assert_ptr_null(strstr(out, "openshell"));
	/* basic_auth_without_placeholder_unchanged */
	const char *plain =
	    "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n";
	ck_assert_int_eq(rw(s, plain), (int)strlen(plain));
	ck_assert_str_eq(out, plain);
	px_cred_store_free(s);
	/* an unknown key inside Basic fails closed */
	s = one("OTHER", "x");
	ck_assert_int_eq(rw(s, h), PX_CRED_E_UNAVAIL);
	px_cred_store_free(s);
}
END_TEST

/* ---- request line (§3.3) ------------------------------------------------------------------ */

START_TEST(rewrites_query_param_placeholders)
{
	struct px_cred_store *s = one("API_KEY", "key with spaces&symbols=yes");
	ck_assert_int_gt(
	    rw(s, "GET /api?a=1&token=" PH("API_KEY") "&flag HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	ck_assert_ptr_nonnull(
	    strstr(out, "GET /api?a=1&token=key%20with%20spaces%26symbols%3Dyes&flag HTTP/1.1"));
	/* percent_encoded_canonical_placeholder_in_query_rewrites */
	ck_assert_int_gt(rw(s, "GET /api?token=openshell%3Aresolve%3Aenv%3AAPI_KEY HTTP/1.1\r\n"
			       "Host: x\r\n\r\n"),
			 0);
	ck_assert_ptr_nonnull(strstr(out, "?token=key%20with%20spaces%26symbols%3Dyes HTTP/1.1"));
	/* a placeholder as a query key (no value position) is left and refused by the re-scan */
	ck_assert_int_eq(rw(s, "GET /api?" PH("API_KEY") " HTTP/1.1\r\nHost: x\r\n\r\n"),
			 PX_CRED_E_UNAVAIL);
	/* unresolved_query_param_returns_error */
	ck_assert_int_eq(rw(s, "GET /api?t=" PH("NOPE") " HTTP/1.1\r\nHost: x\r\n\r\n"),
			 PX_CRED_E_UNAVAIL);
	px_cred_store_free(s);
}
END_TEST

START_TEST(rewrite_path_segments)
{
	struct px_cred_store *s =
	    one("TELEGRAM_TOKEN", "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11");
	ck_assert_int_gt(rw(s, "POST /bot" PH("TELEGRAM_TOKEN") "/sendMessage?x=1 HTTP/1.1\r\n"
								"Host: api.telegram.org\r\n\r\n"),
			 0);
	ck_assert_ptr_nonnull(strstr(
	    out,
	    "POST /bot123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11/sendMessage?x=1 HTTP/1.1\r\n"));
	px_cred_store_free(s);

	struct px_cred_var_in v[] = {{"A", "one", 0}, {"B", "hello world", 0}};
	s = legacy(0, v, 2);
	ck_assert_int_gt(rw(s, "GET /x/" PH("A") "/y/" PH("B") "/z HTTP/1.1\r\nHost: x\r\n\r\n"),
			 0);
	ck_assert_ptr_nonnull(strstr(out, "GET /x/one/y/hello%20world/z HTTP/1.1\r\n"));
	/* percent_encoded_placeholder_in_path_caught (and resolved, segment-decoded) */
	ck_assert_int_gt(rw(s, "GET /x/openshell%3Aresolve%3Aenv%3AA HTTP/1.1\r\nHost: x\r\n\r\n"),
			 0);
	ck_assert_ptr_nonnull(strstr(out, "GET /x/one HTTP/1.1"));
	/* unresolved_path_placeholder_returns_error */
	ck_assert_int_eq(rw(s, "GET /x/" PH("C") " HTTP/1.1\r\nHost: x\r\n\r\n"),
			 PX_CRED_E_UNAVAIL);
	ck_assert_int_eq(rw(s, "GET /x/openshell%3Aresolve%3Aenv%3AC HTTP/1.1\r\nHost: x\r\n\r\n"),
			 PX_CRED_E_UNAVAIL);
	px_cred_store_free(s);
}
END_TEST

START_TEST(rewrite_path_credential_unsafe_values_rejected)
{
	static const char *bad[] = {"../etc", "a/b", "a\\b", "..", "a?b", "a#b", "..\\x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct px_cred_store *s = one("T", bad[i]);
		ck_assert_int_eq(rw(s, "GET /api/" PH("T") "/data HTTP/1.1\r\nHost: x\r\n\r\n"),
				 PX_CRED_E_UNAVAIL);
		/* the same values are fine in a header */
		ck_assert_int_gt(rw(s, "GET / HTTP/1.1\r\nHost: x\r\nX-K: " PH("T") "\r\n\r\n"), 0);
		px_cred_store_free(s);
	}
}
END_TEST

/* ---- fail closed (§3.3) ------------------------------------------------------------------- */

START_TEST(no_resolver_with_any_marker_fails_closed)
{
	static const char *heads[] = {
	    "GET /x/" PH("KEY") " HTTP/1.1\r\nHost: x\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " PH("KEY") "\r\n\r\n",
	    "GET /x/openshell%3Aresolve%3Aenv%3AKEY HTTP/1.1\r\nHost: x\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: x\r\nX-T: a-OPENSHELL-RESOLVE-ENV-KEY\r\n\r\n",
	    "GET /?q=%6fpenshell%3aresolve%3aenv%3aKEY HTTP/1.1\r\nHost: x\r\n\r\n",
	};
	struct px_cred_store *empty = px_cred_store_new();
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		ck_assert_int_eq(rw(NULL, heads[i]), PX_CRED_E_UNAVAIL);
		ck_assert_int_eq(rw(empty, heads[i]), PX_CRED_E_UNAVAIL);
	}
	const char *ok = "GET /a HTTP/1.1\r\nHost: x\r\nX: y\r\n\r\n";
	ck_assert_int_eq(rw(NULL, ok), (int)strlen(ok));
	ck_assert_str_eq(out, ok);
	px_cred_store_free(empty);
}
END_TEST

START_TEST(rescan_covers_the_first_body_bytes)
{
	struct px_cred_store *s = one("KEY", "v");
	const char *h = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n";
	char tail[400];
	memset(tail, 'a', sizeof(tail));
	memcpy(tail + 10, PH("KEY"), strlen(PH("KEY")));
	tail[300] = '\0';
	ck_assert_int_eq(rw_at(s, "x", 443, h, tail), PX_CRED_E_UNAVAIL);
	memset(tail, 'a', sizeof(tail));
	memcpy(tail + 260, PH("KEY"), strlen(PH("KEY")));
	tail[300] = '\0';
	ck_assert_int_eq(rw_at(s, "x", 443, h, tail), (int)strlen(h));
	px_cred_store_free(s);
}
END_TEST

/* ---- bindings (§3.4, §3.5) ---------------------------------------------------------------- */

static const struct px_cred_endpoint_in ep_api[] = {{"api.example.com", 443, "/v1/**"}};
static const struct px_cred_endpoint_in ep_other[] = {{"*.other.test", 8443, NULL}};

static struct px_cred_store *bound(uint64_t rev, const char *identity, const char *value)
{
	static struct px_cred_var_in v[3];
	v[0] = (struct px_cred_var_in){"API_TOKEN", value, 0};
	v[1] = (struct px_cred_var_in){"OTHER_TOKEN", "other-secret", 0};
	v[2] = (struct px_cred_var_in){"REGION", "eu", 0};
	static struct px_cred_binding_in b[2];
	b[0] = (struct px_cred_binding_in){"API_TOKEN", identity, NULL, ep_api, 1};
	b[1] = (struct px_cred_binding_in){"OTHER_TOKEN", "id-o", NULL, ep_other, 1};
	static const char *ns[] = {"REGION"};
	struct px_cred_input in = {rev, v, 3, true, b, 2, ns, 1};
	struct px_cred_store *s = px_cred_store_new();
	ck_assert_int_eq(px_cred_store_install(s, &in, NULL), 0);
	return s;
}

#define AUTH_HEAD(path, ph) \
	"GET " path " HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer " ph "\r\n\r\n"

START_TEST(bound_credentials_resolve_only_at_matching_endpoint)
{
	struct px_cred_store *s = bound(3, "id-a", "api-secret");
	ck_assert_int_gt(
	    rw_at(s, "API.example.com", 443, AUTH_HEAD("/v1/x", PH("v3_API_TOKEN")), NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "Bearer api-secret\r\n"));
	ck_assert_int_eq(rw_at(s, "evil.test", 443, AUTH_HEAD("/v1/x", PH("v3_API_TOKEN")), NULL),
			 PX_CRED_E_MISMATCH);
	ck_assert_int_eq(
	    rw_at(s, "api.example.com", 8443, AUTH_HEAD("/v1/x", PH("v3_API_TOKEN")), NULL),
	    PX_CRED_E_MISMATCH);
	ck_assert_int_eq(
	    rw_at(s, "api.example.com", 443, AUTH_HEAD("/v2/x", PH("v3_API_TOKEN")), NULL),
	    PX_CRED_E_MISMATCH);
	/* bound keys never resolve through the canonical or alias forms */
	ck_assert_int_eq(
	    rw_at(s, "api.example.com", 443, AUTH_HEAD("/v1/x", PH("API_TOKEN")), NULL),
	    PX_CRED_E_UNAVAIL);
	ck_assert_int_eq(rw_at(s, "api.example.com", 443,
			       AUTH_HEAD("/v1/x", "a-OPENSHELL-RESOLVE-ENV-API_TOKEN"), NULL),
			 PX_CRED_E_UNAVAIL);
	/* a mismatch in the path is typed too */
	ck_assert_int_eq(rw_at(s, "evil.test", 443,
			       "GET /k/" PH("v3_API_TOKEN") " HTTP/1.1\r\n"
							    "Host: evil.test\r\n\r\n",
			       NULL),
			 PX_CRED_E_MISMATCH);
	/* non_secret_provider_config_is_not_endpoint_scoped */
	ck_assert_int_gt(rw_at(s, "anywhere.test", 80, AUTH_HEAD("/", PH("REGION")), NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "Bearer eu\r\n"));
	px_cred_store_free(s);
}
END_TEST

START_TEST(multiple_credentials_resolve_only_at_their_own_endpoints)
{
	struct px_cred_store *s = bound(3, "id-a", "api-secret");
	ck_assert_int_gt(
	    rw_at(s, "a.other.test", 8443, AUTH_HEAD("/any", PH("v3_OTHER_TOKEN")), NULL), 0);
	ck_assert_ptr_nonnull(strstr(out, "Bearer other-secret\r\n"));
	ck_assert_int_eq(
	    rw_at(s, "a.other.test", 8443, AUTH_HEAD("/v1/x", PH("v3_API_TOKEN")), NULL),
	    PX_CRED_E_MISMATCH);
	ck_assert_int_eq(
	    rw_at(s, "api.example.com", 443, AUTH_HEAD("/v1/x", PH("v3_OTHER_TOKEN")), NULL),
	    PX_CRED_E_MISMATCH);
	/* '*' is one label: neither the bare domain nor two labels deep */
	ck_assert_int_eq(rw_at(s, "other.test", 8443, AUTH_HEAD("/", PH("v3_OTHER_TOKEN")), NULL),
			 PX_CRED_E_MISMATCH);
	ck_assert_int_eq(
	    rw_at(s, "a.b.other.test", 8443, AUTH_HEAD("/", PH("v3_OTHER_TOKEN")), NULL),
	    PX_CRED_E_MISMATCH);
	px_cred_store_free(s);
}
END_TEST

START_TEST(recursive_host_pattern_matches_one_or_more_labels)
{
	static const struct px_cred_endpoint_in ep[] = {{"**.corp.test", 443, ""}};
	struct px_cred_var_in v = {"K", "s", 0};
	struct px_cred_binding_in b = {"K", "id", NULL, ep, 1};
	struct px_cred_input in = {1, &v, 1, true, &b, 1, NULL, 0};
	struct px_cred_store *s = px_cred_store_new();
	ck_assert_int_eq(px_cred_store_install(s, &in, NULL), 0);
	ck_assert_int_gt(rw_at(s, "a.corp.test", 443, AUTH_HEAD("/", PH("v1_K")), NULL), 0);
	ck_assert_int_gt(rw_at(s, "a.b.corp.test", 443, AUTH_HEAD("/", PH("v1_K")), NULL), 0);
	ck_assert_int_eq(rw_at(s, "corp.test", 443, AUTH_HEAD("/", PH("v1_K")), NULL),
			 PX_CRED_E_MISMATCH);
	ck_assert_int_eq(rw_at(s, "a.corp.test.evil", 443, AUTH_HEAD("/", PH("v1_K")), NULL),
			 PX_CRED_E_MISMATCH);
	px_cred_store_free(s);
}
END_TEST

START_TEST(rejects_each_malformed_static_credential_binding_shape)
{
	struct px_cred_endpoint_in good = {"api.test", 443, NULL};
	struct px_cred_endpoint_in port0 = {"api.test", 0, NULL};
	struct px_cred_endpoint_in port_big = {"api.test", 65536, NULL};
	struct px_cred_endpoint_in badhost = {"a..test", 443, NULL};
	struct px_cred_endpoint_in brace = {"{a,b}.test", 443, NULL};
	struct px_cred_var_in v[] = {{"K", "SECRETV1", 0}, {"N", "n", 0}};
	struct {
		struct px_cred_binding_in b;
		const char *ns[2];
		size_t n_ns, n_vars;
	} cases[] = {
	    {{"K", "id", NULL, &good, 1}, {"N", "N"}, 2, 2}, /* non-secret repeated */
	    {{"K", "id", NULL, &good, 1}, {"N", "K"}, 2, 2}, /* both bound and non-secret */
	    {{"K", "id", NULL, &good, 1}, {NULL}, 0, 2},     /* N unclassified */
	    {{"Z", "id", NULL, &good, 1}, {"N", "K"}, 1, 2}, /* binding of a missing key */
	    {{"K", "id", NULL, &good, 1}, {"N", "M"}, 2, 2}, /* non-secret missing key */
	    {{"K", "", NULL, &good, 1}, {"N"}, 1, 2},	     /* empty identity */
	    {{"K", "id", NULL, &good, 0}, {"N"}, 1, 2},	     /* no endpoints */
	    {{"K", "id", "ABC", &good, 1}, {"N"}, 1, 2},     /* bad handle */
	    {{"K", "id", NULL, &port0, 1}, {"N"}, 1, 2},     /* port 0 */
	    {{"K", "id", NULL, &port_big, 1}, {"N"}, 1, 2},  /* port > 65535 */
	    {{"K", "id", NULL, &badhost, 1}, {"N"}, 1, 2},   /* empty label */
	    {{"K", "id", NULL, &brace, 1}, {"N"}, 1, 2},     /* brace alternates */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct px_cred_store *s = one("OLD", "old"); /* something to revoke */
		struct px_cred_input in = {5,		v, cases[i].n_vars, true,
					   &cases[i].b, 1, cases[i].ns,	    cases[i].n_ns};
		struct sv_err err = {0};
		ck_assert_msg(px_cred_store_install(s, &in, &err) == -EINVAL, "case %zu", i);
		ck_assert_ptr_null(strstr(err.msg, "SECRETV1")); /* never a value */
		ck_assert_uint_gt(strlen(err.msg), 0);
		ck_assert_int_eq(px_cred_store_count(s), 0);
		px_cred_store_free(s);
	}
	/* the well-formed shape installs */
	struct px_cred_binding_in b = {"K", "id", H64, &good, 1};
	const char *ns[] = {"N"};
	struct px_cred_input in = {5, v, 2, true, &b, 1, ns, 1};
	struct px_cred_store *s = px_cred_store_new();
	ck_assert_int_eq(px_cred_store_install(s, &in, NULL), 0);
	ck_assert_int_eq(px_cred_store_count(s), 2);
	px_cred_store_free(s);
}
END_TEST

/* ---- rotation, handles, expiry (§3.6) ----------------------------------------------------- */

static void reinstall(struct px_cred_store *s, uint64_t rev, const char *identity,
		      const char *value)
{
	static struct px_cred_var_in v[3];
	v[0] = (struct px_cred_var_in){"API_TOKEN", value, 0};
	v[1] = (struct px_cred_var_in){"OTHER_TOKEN", "other-secret", 0};
	v[2] = (struct px_cred_var_in){"REGION", "eu", 0};
	static struct px_cred_binding_in b[2];
	b[0] = (struct px_cred_binding_in){"API_TOKEN", identity, NULL, ep_api, 1};
	b[1] = (struct px_cred_binding_in){"OTHER_TOKEN", "id-o", NULL, ep_other, 1};
	static const char *ns[] = {"REGION"};
	struct px_cred_input in = {rev, v, 3, true, b, 2, ns, 1};
	ck_assert_int_eq(px_cred_store_install(s, &in, NULL), 0);
}

static int api(const struct px_cred_store *s, const char *ph)
{
	char h[512];
	snprintf(h, sizeof(h), AUTH_HEAD("/v1/x", "%s"), ph);
	return rw_at(s, "api.example.com", 443, h, NULL);
}

START_TEST(retained_generation_survives_rotation_of_same_provider_credential)
{
	struct px_cred_store *s = bound(1, "id-a", "first");
	reinstall(s, 2, "id-a", "second");
	ck_assert_int_gt(api(s, PH("v1_API_TOKEN")), 0);
	ck_assert_ptr_nonnull(strstr(out, "Bearer first\r\n"));
	ck_assert_int_gt(api(s, PH("v2_API_TOKEN")), 0);
	ck_assert_ptr_nonnull(strstr(out, "Bearer second\r\n"));
	/* stale_generation_falls_back_to_current_credential_after_retention_window */
	for (uint64_t r = 3; r <= 12; r++)
		reinstall(s, r, "id-a", "latest");
	ck_assert_int_gt(api(s, PH("v1_API_TOKEN")), 0);
	ck_assert_ptr_nonnull(strstr(out, "Bearer latest\r\n"));
	/* a revision never issued under this identity does not fall back */
	ck_assert_int_eq(api(s, PH("v99_API_TOKEN")), PX_CRED_E_UNAVAIL);
	/* a changed identity clears the retained generations and the epoch */
	reinstall(s, 13, "id-b", "new-provider");
	ck_assert_int_eq(api(s, PH("v12_API_TOKEN")), PX_CRED_E_UNAVAIL);
	ck_assert_int_eq(api(s, PH("v1_API_TOKEN")), PX_CRED_E_UNAVAIL);
	ck_assert_int_gt(api(s, PH("v13_API_TOKEN")), 0);
	ck_assert_ptr_nonnull(strstr(out, "Bearer new-provider\r\n"));
	px_cred_store_free(s);
}
END_TEST

START_TEST(stable_handle_placeholders_resolve_only_to_the_current_value)
{
	struct px_cred_var_in v = {"K", "one", 0};
	struct px_cred_binding_in b = {"K", "id", H64, ep_api, 1};
	struct px_cred_input in = {4, &v, 1, true, &b, 1, NULL, 0};
	struct px_cred_store *s = px_cred_store_new();
	ck_assert_int_eq(px_cred_store_install(s, &in, NULL), 0);
	char ph[512];
	ck_assert_int_gt(px_cred_store_placeholder(s, 0, ph, sizeof(ph)), 0);
	ck_assert_str_eq(ph, PX_CRED_PREFIX "s" H64 "_K");
	ck_assert_int_gt(api(s, ph), 0);
	ck_assert_ptr_nonnull(strstr(out, "Bearer one\r\n"));
	v.value = "two";
	in.revision = 5;
	ck_assert_int_eq(px_cred_store_install(s, &in, NULL), 0);
	ck_assert_int_gt(api(s, ph), 0);
	ck_assert_ptr_nonnull(strstr(out, "Bearer two\r\n"));
	/* handle-managed keys never enter the revision generations */
	ck_assert_int_eq(api(s, PH("v4_K")), PX_CRED_E_UNAVAIL);
	ck_assert_int_eq(api(s, PX_CRED_PREFIX
			     "s"
			     "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			     "_K"),
			 PX_CRED_E_UNAVAIL);
	px_cred_store_free(s);
}
END_TEST

START_TEST(expired_credentials_do_not_resolve)
{
	struct px_cred_var_in v[] = {{"OLD", "a", NOW}, {"NEW", "b", NOW + 1}, {"NONE", "c", 0}};
	struct px_cred_store *s = legacy(0, v, 3);
	ck_assert_int_eq(rw(s, AUTH_HEAD("/", PH("OLD"))), PX_CRED_E_UNAVAIL);
	ck_assert_int_gt(rw(s, AUTH_HEAD("/", PH("NEW"))), 0);
	ck_assert_int_gt(rw(s, AUTH_HEAD("/", PH("NONE"))), 0);
	px_cred_store_free(s);
}
END_TEST

START_TEST(revoke_drops_every_static_credential)
{
	struct px_cred_store *s = bound(2, "id-a", "api-secret");
	px_cred_store_revoke(s, 3);
	ck_assert_int_eq(px_cred_store_count(s), 0);
	ck_assert_int_eq(api(s, PH("v2_API_TOKEN")), PX_CRED_E_UNAVAIL);
	px_cred_store_free(s);
}
END_TEST

/* ---- bodies (§3.3) ------------------------------------------------------------------------ */

static int body(const struct px_cred_store *s, const char *host, const char *ct, const char *b)
{
	struct px_cred_scope sc = {host, 443, NOW};
	int n = px_cred_rewrite_body(s, &sc, "/v1/x", 5, ct, ct ? strlen(ct) : 0, b, strlen(b), out,
				     sizeof(out) - 1, NULL);
	out[n > 0 ? n : 0] = '\0';
	return n;
}

START_TEST(relay_request_body_rewrites)
{
	struct px_cred_store *s = one("KEY", "x y&z\"");
	ck_assert_int_gt(
	    body(s, "h", "application/json; charset=utf-8", "{\"k\":\"" PH("KEY") "\",\"n\":1}"),
	    0);
	ck_assert_str_eq(out, "{\"k\":\"x y&z\"\",\"n\":1}");
	ck_assert_int_gt(body(s, "h", "text/plain", "a " PH("KEY") PH("KEY")), 0);
	ck_assert_str_eq(out, "a x y&z\"x y&z\"");
	ck_assert_int_gt(body(s, "h", "application/x-www-form-urlencoded", "a=1&t=" PH("KEY") "&b"),
			 0);
	ck_assert_str_eq(out, "a=1&t=x+y%26z%22&b");
	ck_assert_int_gt(
	    body(s, "h", "application/x-www-form-urlencoded", "t=openshell%3Aresolve%3Aenv%3AKEY"),
	    0);
	ck_assert_str_eq(out, "t=x+y%26z%22");
	/* form field names, unsupported types, unknown keys: refused */
	ck_assert_int_eq(body(s, "h", "application/x-www-form-urlencoded", PH("KEY") "=1"),
			 PX_CRED_E_UNAVAIL);
	ck_assert_int_eq(body(s, "h", "application/octet-stream", PH("KEY")), PX_CRED_E_UNAVAIL);
	ck_assert_int_eq(body(s, "h", NULL, PH("KEY")), PX_CRED_E_UNAVAIL);
	ck_assert_int_eq(body(s, "h", "text/plain", PH("NOPE")), PX_CRED_E_UNAVAIL);
	/* marker-free bodies of any type pass unchanged */
	ck_assert_int_eq(body(s, "h", "application/octet-stream", "plain"), 5);
	px_cred_store_free(s);

	s = bound(3, "id-a", "api-secret");
	ck_assert_int_eq(body(s, "evil.test", "application/json", "\"" PH("v3_API_TOKEN") "\""),
			 PX_CRED_E_MISMATCH);
	ck_assert_int_gt(
	    body(s, "api.example.com", "application/json", "\"" PH("v3_API_TOKEN") "\""), 0);
	ck_assert_str_eq(out, "\"api-secret\"");
	px_cred_store_free(s);
}
END_TEST

/* ---- wire and transport ------------------------------------------------------------------- */

START_TEST(error_responses_are_exact)
{
	char b[512];
	const char *mm =
	    "{\"error\":\"credential_endpoint_mismatch\",\"message\":\"Credential is not "
	    "authorized for this request endpoint\"}";
	char want[512];
	snprintf(want, sizeof(want),
		 "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: "
		 "%zu\r\nConnection: close\r\n\r\n%s",
		 strlen(mm), mm);
	ck_assert_int_eq(px_cred_resp(PX_CRED_E_MISMATCH, b, sizeof(b)), (int)strlen(want));
	ck_assert_str_eq(b, want);
	const char *un =
	    "{\"error\":\"credential_unavailable\",\"message\":\"Credential placeholder "
	    "could not be resolved\"}";
	snprintf(want, sizeof(want),
		 "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		 strlen(un), un);
	ck_assert_int_eq(px_cred_resp(PX_CRED_E_UNAVAIL, b, sizeof(b)), (int)strlen(want));
	ck_assert_str_eq(b, want);
	ck_assert_int_eq(px_cred_resp(-EIO, b, sizeof(b)), -EINVAL);
}
END_TEST

START_TEST(pack_round_trip_keeps_resolution_and_truncation_is_refused)
{
	struct px_cred_store *s = bound(1, "id-a", "first");
	reinstall(s, 2, "id-a", "second");
	uint8_t *blob;
	size_t len;
	ck_assert_int_eq(px_cred_store_pack(s, &blob, &len), 0);
	struct px_cred_store *c = NULL;
	struct sv_err err = {0};
	ck_assert_int_eq(px_cred_store_unpack(blob, len, &c, &err), 0);
	ck_assert_int_gt(api(c, PH("v1_API_TOKEN")), 0);
	ck_assert_ptr_nonnull(strstr(out, "Bearer first\r\n"));
	ck_assert_int_eq(rw_at(c, "evil.test", 443, AUTH_HEAD("/v1/x", PH("v2_API_TOKEN")), NULL),
			 PX_CRED_E_MISMATCH);
	ck_assert_int_eq(px_cred_store_revision(c), 2);
	for (size_t cut = 0; cut < len; cut++) {
		struct px_cred_store *t = NULL;
		ck_assert_int_eq(px_cred_store_unpack(blob, cut, &t, &err), -EINVAL);
		ck_assert_ptr_null(strstr(err.msg, "first"));
	}
	px_cred_wipe(blob, len);
	free(blob);
	px_cred_store_free(c);
	px_cred_store_free(s);
}
END_TEST

START_TEST(rewrite_in_place_for_the_relay_call_site)
{
	struct px_cred_store *s =
	    one("KEY", "a-much-longer-secret-value-than-the-placeholder-itself-0123456789");
	char head[512];
	const char *h = "GET /x HTTP/1.1\r\nHost: x\r\nx-api-key: " PH("KEY") "\r\n\r\n";
	size_t n = strlen(h);
	memcpy(head, h, n);
	struct px_cred_scope sc = {"x", 443, NOW};
	int r = px_cred_rewrite_inplace(s, &sc, head, n, sizeof(head), NULL);
	ck_assert_int_gt(r, (int)n);
	head[r] = '\0';
	ck_assert_ptr_nonnull(strstr(head, "x-api-key: a-much-longer-secret"));
	/* no room: refused, the head left as it was */
	memcpy(head, h, n);
	ck_assert_int_eq(px_cred_rewrite_inplace(s, &sc, head, n, n + 8, NULL), -ENOBUFS);
	ck_assert_int_eq(memcmp(head, h, n), 0);
	/* a mismatch or unknown key leaves it unchanged as well */
	const char *u = "GET /x HTTP/1.1\r\nHost: x\r\nx-api-key: " PH("NOPE") "\r\n\r\n";
	memcpy(head, u, strlen(u));
	ck_assert_int_eq(px_cred_rewrite_inplace(s, &sc, head, strlen(u), sizeof(head), NULL),
			 PX_CRED_E_UNAVAIL);
	ck_assert_int_eq(memcmp(head, u, strlen(u)), 0);
	ck_assert_int_eq(px_cred_rewrite_inplace(s, &sc, head, 5, sizeof(head), NULL), -EBADMSG);
	px_cred_store_free(s);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("px_cred");
	TCase *tc = tcase_create("cred");
	tcase_add_test(tc, provider_env_is_replaced_with_placeholders);
	tcase_add_test(tc, provider_env_rejects_revision_namespace_keys);
	tcase_add_test(tc, rewrites_exact_and_bearer_placeholder_header_values);
	tcase_add_test(tc, non_secret_headers_are_not_modified);
	tcase_add_test(tc, rewrites_stale_revisioned_bearer_placeholder_to_current_alias);
	tcase_add_test(tc, rewrites_provider_shaped_alias_header_values);
	tcase_add_test(tc, marker_in_any_other_header_position_fails);
	tcase_add_test(tc, resolve_placeholder_rejects_crlf_and_null);
	tcase_add_test(tc, rewrites_basic_auth_placeholder_in_decoded_token);
	tcase_add_test(tc, rewrites_query_param_placeholders);
	tcase_add_test(tc, rewrite_path_segments);
	tcase_add_test(tc, rewrite_path_credential_unsafe_values_rejected);
	tcase_add_test(tc, no_resolver_with_any_marker_fails_closed);
	tcase_add_test(tc, rescan_covers_the_first_body_bytes);
	tcase_add_test(tc, bound_credentials_resolve_only_at_matching_endpoint);
	tcase_add_test(tc, multiple_credentials_resolve_only_at_their_own_endpoints);
	tcase_add_test(tc, recursive_host_pattern_matches_one_or_more_labels);
	tcase_add_test(tc, rejects_each_malformed_static_credential_binding_shape);
	tcase_add_test(tc, retained_generation_survives_rotation_of_same_provider_credential);
	tcase_add_test(tc, stable_handle_placeholders_resolve_only_to_the_current_value);
	tcase_add_test(tc, expired_credentials_do_not_resolve);
	tcase_add_test(tc, revoke_drops_every_static_credential);
	tcase_add_test(tc, relay_request_body_rewrites);
	tcase_add_test(tc, error_responses_are_exact);
	tcase_add_test(tc, pack_round_trip_keeps_resolution_and_truncation_is_refused);
	tcase_add_test(tc, rewrite_in_place_for_the_relay_call_site);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
