/* Unit tests for the denial summaries' pure half (session/gateway/gw_denials_map.c): the bounded
 * aggregation table and the SubmitPolicyAnalysis request with OpenShell's mechanistic proposals
 * (mechanistic_mapper.rs's naming, path generalisation, confidence, always-blocked skip).
 *
 * Sending (the flush timer, a gateway that is away) is covered by
 * tests/integration/cases_denials.py.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/gateway/gw_denials.h"

static struct gw_denial ev(const char *host, uint16_t port, const char *bin, const char *stage)
{
	return (struct gw_denial){.host = host, .port = port, .binary = bin, .stage = stage,
				  .reason = "endpoint is not allowed by any policy"};
}

START_TEST(same_host_port_binary_aggregate_others_do_not)
{
	struct gw_dagg a = {0};
	struct gw_denial e = ev("api.example.com", 443, "/usr/bin/curl", "connect");
	const char *anc[] = {"/bin/sh", "/sbin/init"};
	e.ancestors = anc;
	e.n_ancestors = 2;
	ck_assert_int_eq(gw_dagg_add(&a, &e, 1000), 0);
	ck_assert_int_eq(gw_dagg_add(&a, &e, 2000), 0);
	ck_assert_int_eq(gw_dagg_add(&a, &e, 3000), 0);
	struct gw_denial other_port = ev("api.example.com", 80, "/usr/bin/curl", "connect");
	struct gw_denial other_bin = ev("api.example.com", 443, "/usr/bin/wget", "connect");
	ck_assert_int_eq(gw_dagg_add(&a, &other_port, 4000), 0);
	ck_assert_int_eq(gw_dagg_add(&a, &other_bin, 5000), 0);
	ck_assert_uint_eq(a.n, 3);
	ck_assert_str_eq(a.e[0]->host, "api.example.com");
	ck_assert_uint_eq(a.e[0]->count, 3);
	ck_assert_int_eq(a.e[0]->first_ms, 1000);
	ck_assert_int_eq(a.e[0]->last_ms, 3000);
	ck_assert_uint_eq(a.e[0]->n_ancestors, 2);
	ck_assert_str_eq(a.e[0]->ancestors[1], "/sbin/init");
	ck_assert_uint_eq(a.e[1]->count, 1);
	gw_dagg_clear(&a);
	ck_assert_uint_eq(a.n, 0);
}
END_TEST

START_TEST(table_is_bounded_and_drops_are_counted)
{
	struct gw_dagg a = {0};
	char host[64];
	for (int i = 0; i < GW_DENIALS_MAX + 10; i++) {
		snprintf(host, sizeof(host), "h%d.example.com", i);
		struct gw_denial e = ev(host, 443, "/usr/bin/curl", "connect");
		ck_assert_int_eq(gw_dagg_add(&a, &e, i), i < GW_DENIALS_MAX ? 0 : -ENOSPC);
	}
	ck_assert_uint_eq(a.n, GW_DENIALS_MAX);
	ck_assert_uint_eq(a.dropped, 10);
	/* A key already in the table still counts when it is full. */
	struct gw_denial again = ev("h0.example.com", 443, "/usr/bin/curl", "connect");
	ck_assert_int_eq(gw_dagg_add(&a, &again, 99), 0);
	ck_assert_uint_eq(a.e[0]->count, 2);
	gw_dagg_clear(&a);
	ck_assert_uint_eq(a.dropped, 0);
}
END_TEST

START_TEST(long_agent_texts_are_cut)
{
	struct gw_dagg a = {0};
	size_t big = 1 << 16;
	char *host = malloc(big + 1);
	memset(host, 'a', big);
	host[big] = '\0';
	struct gw_denial e = ev(host, 443, host, "connect");
	e.reason = host;
	e.l7_method = "GET";
	e.l7_path = host;
	const char *anc[20];
	for (int i = 0; i < 20; i++)
		anc[i] = host;
	e.ancestors = anc;
	e.n_ancestors = 20;
	ck_assert_int_eq(gw_dagg_add(&a, &e, 1), 0);
	ck_assert_int_eq(gw_dagg_add(&a, &e, 2), 0); /* same (cut) key */
	ck_assert_uint_eq(a.n, 1);
	ck_assert_uint_eq(a.e[0]->count, 2);
	ck_assert_uint_eq(strlen(a.e[0]->host), GW_DENIAL_TEXT_MAX);
	ck_assert_uint_eq(strlen(a.e[0]->reason), GW_DENIAL_TEXT_MAX);
	ck_assert_uint_eq(strlen(a.e[0]->l7[0].path), GW_DENIAL_PATH_MAX);
	ck_assert_uint_eq(a.e[0]->l7[0].count, 2);
	ck_assert_uint_eq(a.e[0]->n_ancestors, GW_DENIAL_ANCESTORS_MAX);
	ck_assert_uint_eq(strlen(a.e[0]->ancestors[GW_DENIAL_ANCESTORS_MAX - 1]), GW_DENIAL_TEXT_MAX);
	gw_dagg_clear(&a);
	free(host);
}
END_TEST

START_TEST(l7_samples_are_counted_and_bounded)
{
	struct gw_dagg a = {0};
	char path[64];
	for (int i = 0; i < GW_DENIAL_L7_SAMPLES + 5; i++) {
		snprintf(path, sizeof(path), "/v1/p%d", i);
		struct gw_denial e = ev("api.example.com", 443, "/usr/bin/curl", "l7");
		e.l7_method = "POST";
		e.l7_path = path;
		ck_assert_int_eq(gw_dagg_add(&a, &e, i), 0);
		ck_assert_int_eq(gw_dagg_add(&a, &e, i), 0);
	}
	ck_assert_uint_eq(a.n, 1);
	ck_assert_uint_eq(a.e[0]->n_l7, GW_DENIAL_L7_SAMPLES);
	ck_assert_uint_eq(a.e[0]->l7[3].count, 2);
	ck_assert_uint_eq(a.e[0]->count, 2 * (GW_DENIAL_L7_SAMPLES + 5));
	gw_dagg_clear(&a);
}
END_TEST

START_TEST(naming_paths_and_confidence_match_openshell)
{
	char b[128];
	gw_denial_rule_name("api.github.com", 443, b, sizeof(b));
	ck_assert_str_eq(b, "allow_api_github_com_443");
	gw_denial_rule_name("my-host.example.com", 8080, b, sizeof(b));
	ck_assert_str_eq(b, "allow_my_host_example_com_8080");
	gw_denial_rule_name("*.x:y", 1, b, sizeof(b));
	ck_assert_str_eq(b, "allow__xy_1");
	gw_denial_generalise_path("/repos/org/issues/12345?x=1", b, sizeof(b));
	ck_assert_str_eq(b, "/repos/org/issues/*");
	gw_denial_generalise_path("/v1/models", b, sizeof(b));
	ck_assert_str_eq(b, "/v1/models");
	gw_denial_generalise_path("/items/550e8400-e29b-41d4-a716-446655440000", b, sizeof(b));
	ck_assert_str_eq(b, "/items/*");
	gw_denial_generalise_path("/blob/0123456789abcdef", b, sizeof(b));
	ck_assert_str_eq(b, "/blob/*");
	gw_denial_generalise_path("/page/7", b, sizeof(b));
	ck_assert_str_eq(b, "/page/7"); /* one digit is not an id */
	ck_assert(gw_denial_confidence(10, 443, false) > 0.8f);
	ck_assert(gw_denial_confidence(5, 80, true) < 0.6f);
	ck_assert_float_eq_tol(gw_denial_confidence(1, 12345, false), 0.5f, 1e-6);
	ck_assert_float_eq_tol(gw_denial_confidence(100, 443, false), 0.85f, 1e-6);
	ck_assert(gw_denial_always_blocked("127.0.0.1"));
	ck_assert(gw_denial_always_blocked("169.254.169.254"));
	ck_assert(gw_denial_always_blocked("::1"));
	ck_assert(gw_denial_always_blocked("::ffff:127.0.0.1"));
	ck_assert(gw_denial_always_blocked("fe80::1"));
	ck_assert(gw_denial_always_blocked("LOCALHOST."));
	ck_assert(gw_denial_always_blocked("metadata.google.internal"));
	ck_assert(!gw_denial_always_blocked("10.0.0.1"));
	ck_assert(!gw_denial_always_blocked("example.com"));
}
END_TEST

START_TEST(request_carries_summaries_and_proposals)
{
	struct gw_dagg a = {0};
	struct gw_denial l4 = ev("api.example.com", 443, "/usr/bin/curl", "connect");
	for (int i = 0; i < 12; i++)
		ck_assert_int_eq(gw_dagg_add(&a, &l4, 1000 + i), 0);
	struct gw_denial ssrf = ev("10.1.2.3", 5432, "", "ssrf");
	ck_assert_int_eq(gw_dagg_add(&a, &ssrf, 2000), 0);
	struct gw_denial loop = ev("127.0.0.1", 8080, "/usr/bin/curl", "connect");
	ck_assert_int_eq(gw_dagg_add(&a, &loop, 3000), 0);
	struct gw_denial l7 = ev("api.github.com", 443, "/usr/bin/gh", "l7");
	l7.l7_method = "POST";
	l7.l7_path = "/repos/o/r/issues/42";
	ck_assert_int_eq(gw_dagg_add(&a, &l7, 4000), 0);
	l7.l7_path = "/repos/o/r/issues/43"; /* generalises to the same rule */
	ck_assert_int_eq(gw_dagg_add(&a, &l7, 4001), 0);
	l7.l7_method = "GET";
	l7.l7_path = "/user?token=s3cret";
	ck_assert_int_eq(gw_dagg_add(&a, &l7, 4002), 0);

	struct gw_dreq r;
	ck_assert_int_eq(gw_dreq_build(&a, "my-sandbox", &r), 0);
	const Openshell__V1__SubmitPolicyAnalysisRequest *q = &r.req;
	ck_assert_str_eq(q->name, "my-sandbox");
	ck_assert_str_eq(q->analysis_mode, "mechanistic");
	ck_assert_uint_eq(q->n_summaries, 4);
	ck_assert_str_eq(q->summaries[0]->host, "api.example.com");
	ck_assert_uint_eq(q->summaries[0]->port, 443);
	ck_assert_uint_eq(q->summaries[0]->count, 12);
	ck_assert_str_eq(q->summaries[0]->denial_stage, "connect");
	ck_assert_int_eq(q->summaries[0]->first_seen_ms, 1000);
	ck_assert_int_eq(q->summaries[0]->last_seen_ms, 1011);
	ck_assert_uint_eq(q->summaries[3]->n_l7_request_samples, 3);
	ck_assert_str_eq(q->summaries[3]->l7_request_samples[0]->decision, "deny");
	ck_assert_str_eq(q->summaries[3]->l7_request_samples[2]->path, "/user"); /* no query */
	/* The loopback destination is summarised but never proposed. */
	ck_assert_uint_eq(q->n_proposed_chunks, 3);
	for (size_t i = 0; i < q->n_proposed_chunks; i++) {
		ck_assert_str_ne(q->proposed_chunks[i]->rule_name, "allow_127_0_0_1_8080");
		if (i)
			ck_assert(q->proposed_chunks[i - 1]->confidence >=
				  q->proposed_chunks[i]->confidence);
	}
	const Openshell__V1__PolicyChunk *c0 = q->proposed_chunks[0];
	ck_assert_str_eq(c0->rule_name, "allow_api_example_com_443");
	ck_assert_str_eq(c0->status, "pending");
	ck_assert_int_eq(c0->hit_count, 12);
	ck_assert_str_eq(c0->rationale, "Allow curl to connect to api.example.com:443 (HTTPS).");
	ck_assert_str_eq(c0->proposed_rule->name, "allow_api_example_com_443");
	ck_assert_uint_eq(c0->proposed_rule->n_endpoints, 1);
	ck_assert_str_eq(c0->proposed_rule->endpoints[0]->host, "api.example.com");
	ck_assert_uint_eq(c0->proposed_rule->endpoints[0]->ports[0], 443);
	ck_assert(c0->proposed_rule->endpoints[0]->advisor_proposed);
	ck_assert_str_eq(c0->proposed_rule->endpoints[0]->protocol, "");
	ck_assert_uint_eq(c0->proposed_rule->n_binaries, 1);
	ck_assert_str_eq(c0->proposed_rule->binaries[0]->path, "/usr/bin/curl");
	const Openshell__V1__PolicyChunk *gh = NULL, *db = NULL;
	for (size_t i = 0; i < q->n_proposed_chunks; i++) {
		if (strcmp(q->proposed_chunks[i]->rule_name, "allow_api_github_com_443") == 0)
			gh = q->proposed_chunks[i];
		if (strcmp(q->proposed_chunks[i]->rule_name, "allow_10_1_2_3_5432") == 0)
			db = q->proposed_chunks[i];
	}
	ck_assert_ptr_nonnull(gh);
	ck_assert_ptr_nonnull(db);
	const Openshell__Sandbox__V1__NetworkEndpoint *ep = gh->proposed_rule->endpoints[0];
	ck_assert_str_eq(ep->protocol, "rest");
	ck_assert_str_eq(ep->enforcement, "enforce");
	ck_assert_uint_eq(ep->n_rules, 2); /* GET /user, then POST on the generalised path (sorted) */
	ck_assert_str_eq(ep->rules[0]->allow->method, "GET");
	ck_assert_str_eq(ep->rules[0]->allow->path, "/user");
	ck_assert_str_eq(ep->rules[1]->allow->method, "POST");
	ck_assert_str_eq(ep->rules[1]->allow->path, "/repos/o/r/issues/*");
	ck_assert_ptr_nonnull(strstr(gh->rationale, "with L7 inspection"));
	ck_assert_uint_eq(db->proposed_rule->n_binaries, 0); /* unknown binary */
	ck_assert_ptr_nonnull(strstr(db->rationale, "unknown binary"));
	ck_assert_ptr_nonnull(strstr(db->security_notes, "SSRF"));
	ck_assert_ptr_nonnull(strstr(db->security_notes, "internal/private"));
	ck_assert_ptr_nonnull(strstr(db->security_notes, "database"));
	/* It packs (what goes on the wire). */
	size_t len = openshell__v1__submit_policy_analysis_request__get_packed_size(q);
	uint8_t *buf = malloc(len);
	ck_assert_uint_eq(openshell__v1__submit_policy_analysis_request__pack(q, buf), len);
	Openshell__V1__SubmitPolicyAnalysisRequest *back =
	    openshell__v1__submit_policy_analysis_request__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(back);
	ck_assert_uint_eq(back->n_proposed_chunks, 3);
	openshell__v1__submit_policy_analysis_request__free_unpacked(back, NULL);
	free(buf);
	gw_dreq_free(&r);
	gw_dagg_clear(&a);
}
END_TEST

static Suite *gw_denials_suite(void)
{
	Suite *s = suite_create("gw_denials");
	TCase *tc = tcase_create("aggregate");
	tcase_add_test(tc, same_host_port_binary_aggregate_others_do_not);
	tcase_add_test(tc, table_is_bounded_and_drops_are_counted);
	tcase_add_test(tc, long_agent_texts_are_cut);
	tcase_add_test(tc, l7_samples_are_counted_and_bounded);
	tcase_add_test(tc, naming_paths_and_confidence_match_openshell);
	tcase_add_test(tc, request_carries_summaries_and_proposals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gw_denials_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
