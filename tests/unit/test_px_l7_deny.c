/* Unit tests for netns/proxy/l7/px_l7_deny.c: the §2.8 L7 denial, the forward-proxy L7
 * denial, request_authority_mismatch and unsupported_l7_protocol responses byte for byte
 * (expected bytes written out by hand from the contract, not produced by the code), the
 * L7_REQUEST log line and placeholder redaction.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/l7/px_l7.h"

static char buf[16384];

static void expect_response(int n, const char *head_before_len, const char *head_after_len,
			    const char *body)
{
	char want[16384];
	snprintf(want, sizeof(want), "%s%zu%s%s", head_before_len, strlen(body), head_after_len,
		 body);
	ck_assert_int_eq(n, (int)strlen(want));
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);
}

#define JSON_HEAD "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: "

START_TEST(deny_response_body_is_agent_readable_and_redacted)
{
	struct px_l7_deny d = {
	    .policy = "github-readonly",
	    .method = "PUT",
	    .path = "/repos/NVIDIA/OpenShell/contents/README.md?access_token=secret-token",
	    .host = "api.github.com",
	    .port = 443,
	    .binary = "/usr/bin/gh",
	    .reason = "no matching L7 allow rule",
	    .proposals = true,
	};
	int n = px_l7_resp_deny(buf, sizeof(buf) - 1, &d);
	expect_response(
	    n, JSON_HEAD, "\r\nX-OpenShell-Policy: github-readonly\r\nConnection: close\r\n\r\n",
	    "{\"agent_guidance\":\"OpenShell blocked this request with sandbox policy. If the "
	    "user's task still needs this network action, do not stop here: read "
	    "/etc/openshell/skills/policy_advisor.md, submit the narrowest policy proposal to "
	    "http://policy.local/v1/proposals, wait for approval and `policy_reloaded: true`, then "
	    "retry the original request.\",\"binary\":\"/usr/bin/gh\",\"detail\":\"no matching L7 "
	    "allow rule\",\"error\":\"policy_denied\",\"host\":\"api.github.com\",\"layer\":\"l7\","
	    "\"method\":\"PUT\",\"next_steps\":[{\"action\":\"read_skill\",\"path\":\"/etc/"
	    "openshell/skills/"
	    "policy_advisor.md\"},{\"action\":\"inspect_policy\",\"method\":\"GET\","
	    "\"url\":\"http://policy.local/v1/policy/current\"},{\"action\":\"inspect_recent_"
	    "denials\",\"method\":\"GET\",\"url\":\"http://policy.local/v1/denials?last=5\"},"
	    "{\"action\":\"submit_proposal\",\"body_type\":\"PolicyMergeOperation\",\"method\":"
	    "\"POST\",\"url\":\"http://policy.local/v1/proposals\"}],\"path\":\"/repos/NVIDIA/"
	    "OpenShell/contents/README.md\",\"policy\":\"github-readonly\",\"port\":443,"
	    "\"protocol\":\"rest\",\"rule\":\"PUT /repos/NVIDIA/OpenShell/contents/README.md\","
	    "\"rule_missing\":{\"binary\":\"/usr/bin/gh\",\"host\":\"api.github.com\",\"layer\":"
	    "\"l7\",\"method\":\"PUT\",\"path\":\"/repos/NVIDIA/OpenShell/contents/README.md\","
	    "\"port\":443,\"type\":\"rest_allow\"}}");
	ck_assert_ptr_null(strstr(buf, "secret-token"));
}
END_TEST

START_TEST(deny_response_body_omits_agent_guidance_when_policy_advisor_is_off)
{
	struct px_l7_deny d = {
	    .policy = "p",
	    .method = "GET",
	    .path = "/bot openshell:resolve:env:TOKEN/x",
	    .host = "  ",
	    .port = 8080,
	    .binary = NULL,
	    .reason = "GET /gists \"quoted\"\n",
	};
	d.path = "/botopenshell:resolve:env:TOKEN/x";
	int n = px_l7_resp_deny(buf, sizeof(buf) - 1, &d);
	expect_response(n, JSON_HEAD, "\r\nX-OpenShell-Policy: p\r\nConnection: close\r\n\r\n",
			"{\"detail\":\"GET /gists \\\"quoted\\\"\\n\",\"error\":\"policy_denied\","
			"\"layer\":\"l7\",\"method\":\"GET\",\"next_steps\":[],\"path\":\"/bot["
			"CREDENTIAL]/x\",\"policy\":\"p\",\"port\":8080,\"protocol\":\"rest\","
			"\"rule\":\"GET /bot[CREDENTIAL]/x\",\"rule_missing\":{\"layer\":\"l7\","
			"\"method\":\"GET\",\"path\":\"/bot[CREDENTIAL]/x\",\"port\":8080,\"type\":"
			"\"rest_allow\"}}");
	ck_assert_ptr_null(strstr(buf, "openshell:resolve"));
	/* A policy name that could split the header block is refused. */
	d.policy = "p\r\nX-Evil: 1";
	ck_assert_int_eq(px_l7_resp_deny(buf, sizeof(buf), &d), -EINVAL);
	d.policy = "p";
	ck_assert_int_eq(px_l7_resp_deny(buf, 64, &d), -ENOBUFS);
}
END_TEST

START_TEST(forward_proxy_l7_denial)
{
	int n = px_l7_resp_forward_deny(buf, sizeof(buf) - 1, "GET", "api.example.com", 80,
					"/x?token=secret", "GET /x not permitted by policy");
	expect_response(n, JSON_HEAD, "\r\nConnection: close\r\n\r\n",
			"{\"detail\":\"GET api.example.com:80/x denied by L7 policy: GET /x not "
			"permitted by policy\",\"error\":\"policy_denied\"}");
	ck_assert_ptr_null(strstr(buf, "X-OpenShell-Policy"));
}
END_TEST

START_TEST(request_authority_mismatch_response)
{
	int n = px_l7_resp_authority_mismatch(buf, sizeof(buf) - 1);
	expect_response(n, JSON_HEAD, "\r\nConnection: close\r\n\r\n",
			"{\"error\":\"request_authority_mismatch\",\"message\":\"HTTP request "
			"authority does not match the authorized tunnel endpoint\"}");
}
END_TEST

START_TEST(unsupported_l7_protocol_responses)
{
	int n = px_l7_resp_unsupported_protocol(buf, sizeof(buf) - 1, false);
	expect_response(n, JSON_HEAD, "\r\nConnection: close\r\n\r\n",
			"{\"detail\":\"Unsupported tunnel protocol for L7-inspected endpoint\","
			"\"error\":\"unsupported_l7_protocol\"}");
	n = px_l7_resp_unsupported_protocol(buf, sizeof(buf) - 1, true);
	expect_response(n, JSON_HEAD, "\r\nConnection: close\r\n\r\n",
			"{\"detail\":\"HTTP/2 prior-knowledge (h2c) is not supported for "
			"L7-inspected endpoints\",\"error\":\"unsupported_l7_protocol\"}");
}
END_TEST

static const char *redact(const char *p)
{
	static char out[1024];
	int n = px_l7_redact_path(p, strlen(p), out, sizeof(out));
	return n < 0 ? NULL : out;
}

START_TEST(redacted_target_replaces_path_secrets_with_credential_marker)
{
	ck_assert_str_eq(redact("/botopenshell:resolve:env:TOKEN/sendMessage"),
			 "/bot[CREDENTIAL]/sendMessage");
	ck_assert_str_eq(redact("/openshell:resolve:env:v3_TOKEN"), "/[CREDENTIAL]");
	ck_assert_str_eq(redact("/x/sk-OPENSHELL-RESOLVE-ENV-KEY/y"), "/x/[CREDENTIAL]/y");
	ck_assert_str_eq(redact("/a/openshell%3Aresolve%3Aenv%3AKEY%20b"), "/a/[CREDENTIAL] b");
	ck_assert_str_eq(redact("/v1/chat/completions?format=json"), "/v1/chat/completions");
	ck_assert_str_eq(redact("/plain%20path"), "/plain%20path");
	ck_assert_str_eq(redact("/aopenshell:resolve:env:A-openshell:resolve:env:B"),
			 "/a[CREDENTIAL]-[CREDENTIAL]");
	/* Key characters run on, as OpenShell's token grammar does. */
	ck_assert_str_eq(redact("/openshell:resolve:env:Aopenshell:resolve:env:B"),
			 "/[CREDENTIAL]:resolve:env:B");
	ck_assert_ptr_null(redact("/openshell:resolve:env:"));
	ck_assert_ptr_null(redact("/OPENSHELL-RESOLVE-ENV-KEY"));     /* alias needs a prefix */
	ck_assert_ptr_null(redact("/x-OPENSHELL-RESOLVE-ENV-KEY-y")); /* not a whole token */
	ck_assert(px_l7_has_credential_marker("%4fPENSHELL-RESOLVE-ENV-", 24));
	ck_assert(!px_l7_has_credential_marker("openshell:resolve", 17));
}
END_TEST

START_TEST(l7_request_log_line)
{
	char line[512];
	int n = px_l7_log_request(line, sizeof(line), "deny", "GET", "api.telegram.org", 443,
				  "/botopenshell:resolve:env:TOKEN/sendMessage?chat=1", "",
				  "GET /bot[CREDENTIAL]/sendMessage not permitted by policy");
	ck_assert_int_gt(n, 0);
	ck_assert_str_eq(line,
			 "L7_REQUEST deny GET api.telegram.org:443/bot[CREDENTIAL]/sendMessage "
			 "reason=GET /bot[CREDENTIAL]/sendMessage not permitted by policy");
	n = px_l7_log_request(line, sizeof(line), "allow", "POST", "h", 80,
			      "/openshell:resolve:env:", " rule_methods=a tools=b", "");
	ck_assert_str_eq(line,
			 "L7_REQUEST allow POST h:80/[CREDENTIAL] rule_methods=a tools=b reason=");
	ck_assert_int_eq(px_l7_log_request(line, 16, "allow", "GET", "h", 80, "/", NULL, ""),
			 -ENOBUFS);
	ck_assert_uint_lt(strlen(line), 16);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("px_l7_deny");
	TCase *tc = tcase_create("deny");
	tcase_add_test(tc, deny_response_body_is_agent_readable_and_redacted);
	tcase_add_test(tc, deny_response_body_omits_agent_guidance_when_policy_advisor_is_off);
	tcase_add_test(tc, forward_proxy_l7_denial);
	tcase_add_test(tc, request_authority_mismatch_response);
	tcase_add_test(tc, unsupported_l7_protocol_responses);
	tcase_add_test(tc, redacted_target_replaces_path_secrets_with_credential_marker);
	tcase_add_test(tc, l7_request_log_line);
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
