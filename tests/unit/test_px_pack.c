/* Unit tests for the policy blob (netns/proxy/px_pack.c): a policy with every network field set
 * survives pack → unpack → pack byte for byte, and every truncation or corrupted field is
 * refused with the offset named, never half-read.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/px_pack.h"

static char *sdup(const char *s)
{
	char *d = strdup(s);
	ck_assert_ptr_nonnull(d);
	return d;
}

static void strv(struct pol_strv *sv, const char *a, const char *b)
{
	ck_assert_int_eq(pol_strv_push(sv, a), 0);
	if (b)
		ck_assert_int_eq(pol_strv_push(sv, b), 0);
}

static void matcher(struct pol_matcher *m, const char *key, bool any)
{
	m->key = key ? sdup(key) : NULL;
	strv(&m->globs, "g*", any ? "h?" : NULL);
	m->any = any;
}

static void l7_rule(struct pol_l7_rule *r, int k)
{
	r->method = sdup(k ? "POST" : "GET");
	r->path = sdup("/v1/**");
	r->command = k ? sdup("SELECT") : NULL;
	r->n_query = 2;
	r->query = calloc(2, sizeof(*r->query));
	matcher(&r->query[0], "q", false);
	matcher(&r->query[1], "page", true);
	r->operation_type = sdup("query");
	r->operation_name = k ? NULL : sdup("Op");
	strv(&r->fields, "a", "b.c");
	r->tool = calloc(1, sizeof(*r->tool));
	matcher(r->tool, NULL, true);
	r->n_params = 1;
	r->params = calloc(1, sizeof(*r->params));
	matcher(&r->params[0], "a.b", false);
}

/* Every field of every struct the blob carries, none at its zero value where it has one. */
static void full_policy(struct pol_policy *p)
{
	pol_init(p);
	p->source = sdup("gateway:v7");
	p->n_rules = 2;
	p->rules = calloc(2, sizeof(*p->rules));
	for (int i = 0; i < 2; i++) {
		struct pol_network_rule *nr = &p->rules[i];
		nr->name = sdup(i ? "second" : "first");
		strv(&nr->binaries, "/usr/bin/curl", i ? "/usr/**" : NULL);
		nr->n_endpoints = 2;
		nr->endpoints = calloc(2, sizeof(*nr->endpoints));
		struct pol_endpoint *e = &nr->endpoints[0];
		e->kind = POL_HOST_GLOB;
		e->host = sdup("*.example.com");
		e->n_ports = 2;
		e->ports = calloc(2, sizeof(*e->ports));
		e->ports[0] = 443;
		e->ports[1] = 65535;
		e->n_allowed_ips = 2;
		e->allowed_ips = calloc(2, sizeof(*e->allowed_ips));
		e->allowed_ips[0] = (struct pol_cidr){.family = 4, .prefix = 24, .addr = {10, 0, 5}};
		e->allowed_ips[1] = (struct pol_cidr){.family = 6, .prefix = 8, .addr = {0xfd}};
		e->path = sdup("/api");
		e->protocol = POL_PROTO_MCP;
		e->tls = POL_TLS_PASSTHROUGH;
		e->tls_set = true;
		e->enforcement = POL_ENFORCE_ENFORCE;
		e->access = POL_ACCESS_UNKNOWN;
		e->access_raw = sdup("sometimes");
		e->n_rules = 2;
		e->rules = calloc(2, sizeof(*e->rules));
		l7_rule(&e->rules[0], 0);
		l7_rule(&e->rules[1], 1);
		e->rules_set = true;
		e->n_deny_rules = 1;
		e->deny_rules = calloc(1, sizeof(*e->deny_rules));
		l7_rule(&e->deny_rules[0], 1);
		e->deny_rules_set = true;
		e->allow_encoded_slash = true;
		e->websocket_credential_rewrite = true;
		e->request_body_credential_rewrite = true;
		e->allow_uninspected_credentials = true;
		e->provider_credentialed = true;
		e->advisor_proposed = true;
		e->credential_signing = sdup("sigv4:body");
		e->signing_service = sdup("s3");
		e->signing_region = sdup("eu-west-1");
		e->credential_binding = sdup("aws");
		e->persisted_queries = sdup("allow_registered");
		e->n_gql_ops = 1;
		e->gql_ops = calloc(1, sizeof(*e->gql_ops));
		e->gql_ops[0].id = sdup("abc");
		e->gql_ops[0].operation_type = sdup("mutation");
		e->gql_ops[0].operation_name = sdup("M");
		strv(&e->gql_ops[0].fields, "x", NULL);
		e->graphql_max_body_bytes = 12345;
		e->json_rpc_max_body_bytes = 0xfffffff0u;
		e->mcp_strict_tool_names = POL_TRUE;
		e->mcp_allow_all_known_mcp_methods = POL_FALSE;
		e = &nr->endpoints[1]; /* hostless, plain L4 */
		e->kind = POL_HOST_NONE;
		e->n_ports = 1;
		e->ports = calloc(1, sizeof(*e->ports));
		e->ports[0] = 80;
		e->n_allowed_ips = 1;
		e->allowed_ips = calloc(1, sizeof(*e->allowed_ips));
		e->allowed_ips[0] = (struct pol_cidr){.family = 4, .prefix = 32, .addr = {1, 2, 3, 4}};
	}
	p->n_middlewares = 1;
	p->middlewares = calloc(1, sizeof(*p->middlewares));
	p->middlewares[0].name = sdup("mw");
	p->middlewares[0].middleware = sdup("redact");
	p->middlewares[0].on_error = sdup("deny");
	p->middlewares[0].config_json = sdup("{\"a\":1}");
	strv(&p->middlewares[0].include, "first", NULL);
	strv(&p->middlewares[0].exclude, "second", "third");
	p->middlewares[0].order = -7;
}

START_TEST(every_network_field_round_trips_byte_for_byte)
{
	struct pol_policy p, q;
	full_policy(&p);
	uint8_t *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	ck_assert_int_eq(px_pack_policy(&p, &a, &na), 0);
	struct sv_err err = {0};
	ck_assert_msg(px_unpack_policy(a, na, &q, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(px_pack_policy(&q, &b, &nb), 0);
	ck_assert_uint_eq(na, nb);
	ck_assert(memcmp(a, b, na) == 0);
	/* Spot checks that the reader put things where they belong. */
	ck_assert_str_eq(q.source, "gateway:v7");
	ck_assert_uint_eq(q.n_rules, 2);
	const struct pol_endpoint *e = &q.rules[1].endpoints[0];
	ck_assert_str_eq(q.rules[1].binaries.v[1], "/usr/**");
	ck_assert_int_eq(e->protocol, POL_PROTO_MCP);
	ck_assert_uint_eq(e->ports[1], 65535);
	ck_assert_uint_eq(e->allowed_ips[1].addr[0], 0xfd);
	ck_assert_str_eq(e->rules[0].query[1].globs.v[1], "h?");
	ck_assert_ptr_null(e->rules[0].tool->key);
	ck_assert_ptr_null(e->rules[1].operation_name);
	ck_assert_str_eq(e->signing_region, "eu-west-1");
	ck_assert_uint_eq(e->json_rpc_max_body_bytes, 0xfffffff0u);
	ck_assert_int_eq(e->mcp_allow_all_known_mcp_methods, POL_FALSE);
	ck_assert_ptr_null(q.rules[0].endpoints[1].host);
	ck_assert_int_eq(q.middlewares[0].order, -7);
	ck_assert_str_eq(q.middlewares[0].exclude.v[1], "third");
	free(a);
	free(b);
	pol_free(&p);
	pol_free(&q);
}
END_TEST

START_TEST(empty_policy_round_trips)
{
	struct pol_policy p, q;
	pol_init(&p);
	uint8_t *a = NULL;
	size_t na = 0;
	ck_assert_int_eq(px_pack_policy(&p, &a, &na), 0);
	struct sv_err err = {0};
	ck_assert_int_eq(px_unpack_policy(a, na, &q, &err), 0);
	ck_assert_ptr_null(q.source);
	ck_assert_uint_eq(q.n_rules, 0);
	free(a);
	pol_free(&q);
}
END_TEST

START_TEST(every_truncation_is_refused_and_leaves_the_output_empty)
{
	struct pol_policy p, q;
	full_policy(&p);
	uint8_t *a = NULL;
	size_t na = 0;
	ck_assert_int_eq(px_pack_policy(&p, &a, &na), 0);
	for (size_t cut = 0; cut < na; cut++) {
		struct sv_err err = {0};
		ck_assert_int_eq(px_unpack_policy(a, cut, &q, &err), -EINVAL);
		ck_assert_uint_eq(q.n_rules, 0);
		ck_assert_ptr_null(q.rules);
		ck_assert_ptr_nonnull(strstr(err.msg, "policy blob: offset "));
	}
	/* One byte too many. */
	uint8_t *longer = malloc(na + 1);
	memcpy(longer, a, na);
	longer[na] = 0;
	struct sv_err err = {0};
	ck_assert_int_eq(px_unpack_policy(longer, na + 1, &q, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "trailing bytes"));
	free(longer);
	free(a);
	pol_free(&p);
}
END_TEST

START_TEST(corrupted_fields_are_refused)
{
	struct pol_policy p, q;
	pol_init(&p);
	p.n_rules = 1;
	p.rules = calloc(1, sizeof(*p.rules));
	p.rules[0].name = sdup("r");
	p.rules[0].n_endpoints = 1;
	p.rules[0].endpoints = calloc(1, sizeof(*p.rules[0].endpoints));
	p.rules[0].endpoints[0].kind = POL_HOST_NAME;
	p.rules[0].endpoints[0].host = sdup("a.b");
	uint8_t *a = NULL;
	size_t na = 0;
	ck_assert_int_eq(px_pack_policy(&p, &a, &na), 0);
	/* magic(4) source(4) n_rules(4) name(4+1) n_endpoints(4) kind(1) */
	const size_t kind_off = 4 + 4 + 4 + 5 + 4;
	struct sv_err err = {0};
	a[kind_off] = POL_HOST_IPV6 + 1;
	ck_assert_int_eq(px_unpack_policy(a, na, &q, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "host kind out of range"));
	a[kind_off] = POL_HOST_NONE; /* but a host is there */
	ck_assert_int_eq(px_unpack_policy(a, na, &q, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "host does not match its kind"));
	a[kind_off] = POL_HOST_NAME;
	a[kind_off + 1 + 4] = '\0'; /* NUL inside the host */
	ck_assert_int_eq(px_unpack_policy(a, na, &q, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "NUL inside a string"));
	a[kind_off + 1 + 4] = 'a';
	a[8] = 0xff; /* n_rules: huge */
	ck_assert_int_eq(px_unpack_policy(a, na, &q, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "too many network rules"));
	a[8] = 1;
	a[0] ^= 1;
	ck_assert_int_eq(px_unpack_policy(a, na, &q, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "bad magic"));
	free(a);
	pol_free(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("px_pack");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, every_network_field_round_trips_byte_for_byte);
	tcase_add_test(tc, empty_policy_round_trips);
	tcase_add_test(tc, every_truncation_is_refused_and_leaves_the_output_empty);
	tcase_add_test(tc, corrupted_fields_are_refused);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
