/* px_l7_judge (px_tunnel.h): the per-request judgement the tunnel and the forward-proxy path
 * share (l7 contract §2.1-§2.4, §2.7): route selection by the most specific endpoint path,
 * enforcement per chosen endpoint, deny reasons, websocket and encoded-slash checks, parse
 * errors. Policies come from the INI loader.
 */
#include <check.h>
#include <string.h>

#include "netns/proxy/px_tunnel.h"
#include "supervisor/policy/policy.h"

static const char POLICY[] =
    "[network.api]\n"
    "binary = /usr/bin/curl\n"
    "\n"
    "[network.api.endpoint.all]\n"
    "host = api.example.com\nport = 443\nprotocol = rest\nenforcement = enforce\n"
    "rule.1.method = GET\nrule.1.path = /**\n"
    "\n"
    "[network.api.endpoint.admin]\n"
    "host = api.example.com\nport = 443\nprotocol = rest\npath = /admin/**\n"
    "rule.1.method = GET\nrule.1.path = /admin/read\n"
    "deny.1.method = GET\ndeny.1.path = /admin/secret\n"
    "\n"
    "[network.ws]\n"
    "binary = /usr/bin/curl\n"
    "\n"
    "[network.ws.endpoint.w]\n"
    "host = ws.example.com\nport = 443\nprotocol = websocket\nenforcement = enforce\n"
    "access = full\n";

static struct pol_policy pol;
static struct px_l7_judgement j;
static char qbuf[256];

static void setup(void)
{
	struct sv_err err = {0};
	pol_init(&pol);
	ck_assert_msg(pol_load_buffer("t.ini", POLICY, strlen(POLICY), &pol, &err) == 0, "%s",
		      err.msg);
}

static void teardown(void)
{
	pol_free(&pol);
}

static int judge(const char *host, const char *exe, const char *method, const char *path,
		 const char *query)
{
	const struct px_query q = {.host = host, .port = 443, .exe = exe};
	const struct px_l7_judge_req r = {.method = method, .path = path, .canon = path,
					  .canon_len = strlen(path), .query = query,
					  .query_len = query ? strlen(query) : 0, .qbuf = qbuf,
					  .qbuf_size = sizeof(qbuf)};
	return px_l7_judge(&pol, &q, &r, &j);
}

START_TEST(allowed_request_is_allow_with_its_policy)
{
	ck_assert_int_eq(judge("api.example.com", "/usr/bin/curl", "GET", "/v1/x", "a=1"), 0);
	ck_assert_str_eq(j.decision, "allow");
	ck_assert_str_eq(j.policy, "api");
	ck_assert_str_eq(j.reason, "");
	ck_assert_ptr_eq(j.ep, &pol.rules[0].endpoints[0]);
}
END_TEST

START_TEST(most_specific_endpoint_path_decides_enforcement)
{
	/* The admin endpoint path wins over the catch-all: its rules and (audit) enforcement apply. */
	ck_assert_int_eq(judge("api.example.com", "/usr/bin/curl", "POST", "/admin/x", NULL), 0);
	ck_assert_ptr_eq(j.ep, &pol.rules[0].endpoints[1]);
	ck_assert_str_eq(j.decision, "audit");
	ck_assert_str_eq(j.reason, "POST /admin/x not permitted by policy");
	/* The deny rule of the selected endpoint is a deny reason though the catch-all allows GET. */
	ck_assert_int_eq(judge("api.example.com", "/usr/bin/curl", "GET", "/admin/secret", NULL), 0);
	ck_assert_str_eq(j.reason, "GET /admin/secret blocked by deny rule");
	/* Elsewhere the enforcing endpoint denies. */
	ck_assert_int_eq(judge("api.example.com", "/usr/bin/curl", "DELETE", "/v1/x", NULL), 0);
	ck_assert_str_eq(j.decision, "deny");
	ck_assert_str_eq(j.reason, "DELETE /v1/x not permitted by policy");
}
END_TEST

START_TEST(other_binary_finds_no_route_and_is_denied)
{
	ck_assert_int_eq(judge("api.example.com", "/usr/bin/wget", "GET", "/v1/x", NULL), 0);
	ck_assert_str_eq(j.decision, "deny");
	ck_assert_str_eq(j.reason, "no L7 endpoint path matched request");
	ck_assert_ptr_null(j.ep);
}
END_TEST

START_TEST(websocket_endpoint_requires_an_upgrade)
{
	ck_assert_int_eq(judge("ws.example.com", "/usr/bin/curl", "GET", "/chat", NULL), 0);
	ck_assert_str_eq(j.decision, "deny");
	ck_assert_str_eq(j.reason, "websocket endpoint requires a valid WebSocket upgrade request");
}
END_TEST

START_TEST(encoded_slash_is_denied_unless_the_endpoint_allows_it)
{
	ck_assert_int_eq(judge("api.example.com", "/usr/bin/curl", "GET", "/a%2Fb", NULL), 0);
	ck_assert_str_eq(j.decision, "deny");
	ck_assert_ptr_nonnull(strstr(j.reason, "%2F"));
	pol.rules[0].endpoints[0].allow_encoded_slash = true;
	ck_assert_int_eq(judge("api.example.com", "/usr/bin/curl", "GET", "/a%2Fb", NULL), 0);
	ck_assert_str_eq(j.decision, "allow");
}
END_TEST

START_TEST(malformed_query_closes_without_a_decision)
{
	ck_assert_int_lt(judge("api.example.com", "/usr/bin/curl", "GET", "/v1/x", "a=%zz"), 0);
	ck_assert(j.close);
}
END_TEST

static Suite *px_tunnel_suite(void)
{
	Suite *s = suite_create("px_tunnel");
	TCase *tc = tcase_create("judge");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, allowed_request_is_allow_with_its_policy);
	tcase_add_test(tc, most_specific_endpoint_path_decides_enforcement);
	tcase_add_test(tc, other_binary_finds_no_route_and_is_denied);
	tcase_add_test(tc, websocket_endpoint_requires_an_upgrade);
	tcase_add_test(tc, encoded_slash_is_denied_unless_the_endpoint_allows_it);
	tcase_add_test(tc, malformed_query_closes_without_a_decision);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(px_tunnel_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
