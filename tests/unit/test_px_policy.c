/* Unit tests for the proxy's policy decision (netns/px_policy.c, contract §8 "Matching").
 *
 * Policies are built with the real INI loader (pol_load_buffer). Every glob case of the issue,
 * case-insensitivity, ports, rule precedence, binary exact/ancestor/glob matching and each deny
 * reason string is pinned exactly, so a change in any of them fails here.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "netns/proxy/px_policy.h"
#include "pol_build.h"

static struct pol_policy pol;
static struct px_decision dec;

static void load(const char *text)
{
	struct sv_err e = {0};
	pol_init(&pol);
	int r = pol_load_buffer("test.ini", text, strlen(text), &pol, &e);
	ck_assert_msg(r == 0, "policy did not load: %s", e.msg);
}

static void teardown(void)
{
	pol_free(&pol);
}

/* Decide for @exe with no ancestors and no cmdline. */
static const struct px_decision *decide(const char *host, uint16_t port, const char *exe)
{
	struct px_query q = {.host = host, .port = port, .exe = exe};
	px_policy_decide(&pol, &q, &dec);
	return &dec;
}

static void ck_allowed_by(const struct px_decision *d, const char *rule)
{
	ck_assert_msg(d->allow, "denied: %s", d->reason);
	ck_assert_ptr_nonnull(d->rule);
	ck_assert_str_eq(d->rule->name, rule);
	ck_assert_ptr_nonnull(d->endpoint);
	ck_assert_str_eq(d->reason, "");
}

static void ck_denied(const struct px_decision *d, const char *reason)
{
	ck_assert_msg(!d->allow, "allowed by %s", d->rule ? d->rule->name : "?");
	ck_assert_ptr_null(d->rule);
	ck_assert_ptr_null(d->endpoint);
	ck_assert_str_eq(d->reason, reason);
}

/* --- host globs ---------------------------------------------------------------------------- */

START_TEST(star_matches_exactly_one_label)
{
	ck_assert(px_policy_host_glob_match("*.example.com", "a.example.com"));
	ck_assert(px_policy_host_glob_match("*.example.com", "api-v2.example.com"));
	ck_assert(!px_policy_host_glob_match("*.example.com", "example.com"));
	ck_assert(!px_policy_host_glob_match("*.example.com", "a.b.example.com"));
	ck_assert(!px_policy_host_glob_match("*.example.com", "a.example.org"));
	ck_assert(!px_policy_host_glob_match("*.example.com", "aexample.com"));
	ck_assert(!px_policy_host_glob_match("*.example.com", "a.example.com.evil.net"));
}
END_TEST

START_TEST(double_star_matches_one_or_more_labels_but_not_the_apex)
{
	ck_assert(px_policy_host_glob_match("**.example.com", "a.example.com"));
	ck_assert(px_policy_host_glob_match("**.example.com", "a.b.example.com"));
	ck_assert(px_policy_host_glob_match("**.example.com", "x.y.z.example.com"));
	ck_assert(!px_policy_host_glob_match("**.example.com", "example.com"));
	ck_assert(!px_policy_host_glob_match("**.example.com", "badexample.com"));
	ck_assert(!px_policy_host_glob_match("**.example.com", "a.example.com.evil.net"));
}
END_TEST

START_TEST(star_inside_first_label_matches_within_that_label_only)
{
	ck_assert(px_policy_host_glob_match("api-*.example.com", "api-v1.example.com"));
	ck_assert(px_policy_host_glob_match("api-*.example.com", "api-.example.com"));
	ck_assert(!px_policy_host_glob_match("api-*.example.com", "api.example.com"));
	ck_assert(!px_policy_host_glob_match("api-*.example.com", "web-v1.example.com"));
	ck_assert(!px_policy_host_glob_match("api-*.example.com", "api-v1.x.example.com"));
	ck_assert(px_policy_host_glob_match("*-api-*.example.com", "eu-api-v2.example.com"));
	ck_assert(!px_policy_host_glob_match("*-api-*.example.com", "euapi-v2.example.com"));
	ck_assert(px_policy_host_glob_match("a*b*c.example.com", "abbbc.example.com"));
	ck_assert(!px_policy_host_glob_match("a*b*c.example.com", "abbbcd.example.com"));
}
END_TEST

START_TEST(whole_middle_label_star_matches_one_label)
{
	ck_assert(px_policy_host_glob_match("a.*.example.com", "a.b.example.com"));
	ck_assert(!px_policy_host_glob_match("a.*.example.com", "a.example.com"));
	ck_assert(!px_policy_host_glob_match("a.*.example.com", "a.b.c.example.com"));
}
END_TEST

START_TEST(host_globs_ignore_case_and_reject_empty_labels)
{
	ck_assert(px_policy_host_glob_match("*.example.com", "A.EXAMPLE.COM"));
	ck_assert(px_policy_host_glob_match("**.example.com", "X.Y.Example.Com"));
	ck_assert(!px_policy_host_glob_match("*.example.com", ".example.com"));
	ck_assert(!px_policy_host_glob_match("**.example.com", "a..example.com"));
	ck_assert(!px_policy_host_glob_match("*.example.com", "a.example.com."));
	ck_assert(!px_policy_host_glob_match("*.example.com", ""));
	ck_assert(!px_policy_host_glob_match("*.example.com", NULL));
}
END_TEST

/* --- path globs ---------------------------------------------------------------------------- */

START_TEST(path_star_stays_within_one_component)
{
	ck_assert(px_policy_path_glob_match("/usr/bin/python3*", "/usr/bin/python3"));
	ck_assert(px_policy_path_glob_match("/usr/bin/python3*", "/usr/bin/python3.11"));
	ck_assert(!px_policy_path_glob_match("/usr/bin/python3*", "/usr/bin/python"));
	ck_assert(!px_policy_path_glob_match("/usr/bin/python3*", "/usr/bin/python3.11/x"));
	ck_assert(px_policy_path_glob_match("/opt/*/bin/tool", "/opt/x/bin/tool"));
	ck_assert(!px_policy_path_glob_match("/opt/*/bin/tool", "/opt/x/y/bin/tool"));
	ck_assert(!px_policy_path_glob_match("/usr/bin/Curl*", "/usr/bin/curl"));
}
END_TEST

START_TEST(path_double_star_spans_one_or_more_components)
{
	const char *pat = "/usr/lib/**/copilot";
	ck_assert(px_policy_path_glob_match(pat, "/usr/lib/node/copilot"));
	ck_assert(px_policy_path_glob_match(pat, "/usr/lib/a/b/c/copilot"));
	ck_assert(!px_policy_path_glob_match(pat, "/usr/lib/copilot"));
	ck_assert(!px_policy_path_glob_match(pat, "/usr/lib/a/copilot2"));
	ck_assert(!px_policy_path_glob_match(pat, "/usr/lib64/a/copilot"));
	ck_assert(px_policy_path_glob_match("/opt/**", "/opt/a"));
	ck_assert(px_policy_path_glob_match("/opt/**", "/opt/a/b/c"));
	ck_assert(!px_policy_path_glob_match("/opt/**", "/opt"));
	ck_assert(px_policy_path_glob_match("/a/**/b/**/c", "/a/x/b/y/c"));
	ck_assert(px_policy_path_glob_match("/a/**/b/**/c", "/a/b/b/x/c"));
	ck_assert(px_policy_path_glob_match("/a/**/b/**/c", "/a/x/y/b/z/w/c"));
	ck_assert(!px_policy_path_glob_match("/a/**/b/**/c", "/a/b/c"));
	ck_assert(!px_policy_path_glob_match("/**", "relative/path"));
}
END_TEST

START_TEST(path_glob_stays_fast_on_hostile_deep_paths)
{
	/* Many '**' against a deep agent-made path: exponential backtracking would hang here. */
	static char path[4096];
	size_t o = 0;
	for (int i = 0; i < 1000; i++)
		o += (size_t)snprintf(path + o, sizeof(path) - o, "/d");
	snprintf(path + o, sizeof(path) - o, "/y");
	const char *pat = "/**/d/**/d/**/d/**/d/**/d/**/d/**/d/**/d/**/x";
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert(!px_policy_path_glob_match(pat, path));
	clock_gettime(CLOCK_MONOTONIC, &b);
	double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	ck_assert_msg(secs < 1.0, "glob took %.2f s", secs);
}
END_TEST

/* --- endpoints ----------------------------------------------------------------------------- */

START_TEST(wildcard_endpoint_decisions_follow_the_issue_cases)
{
	load("[network.web]\nendpoint = *.example.com:443\nbinary = /usr/bin/curl\n");
	ck_allowed_by(decide("a.example.com", 443, "/usr/bin/curl"), "web");
	ck_denied(decide("example.com", 443, "/usr/bin/curl"),
		  "endpoint example.com:443 is not allowed by any policy");
	ck_denied(decide("a.b.example.com", 443, "/usr/bin/curl"),
		  "endpoint a.b.example.com:443 is not allowed by any policy");
}
END_TEST

START_TEST(exact_host_matches_case_insensitively_and_reason_is_lower_case)
{
	load("[network.claude]\nendpoint = api.anthropic.com:443\nbinary = /usr/bin/curl\n");
	ck_allowed_by(decide("API.Anthropic.COM", 443, "/usr/bin/curl"), "claude");
	ck_assert(dec.exact_declared);
	ck_denied(decide("API.Anthropic.NET", 443, "/usr/bin/curl"),
		  "endpoint api.anthropic.net:443 is not allowed by any policy");
	ck_denied(decide("api.anthropic.com.evil.net", 443, "/usr/bin/curl"),
		  "endpoint api.anthropic.com.evil.net:443 is not allowed by any policy");
}
END_TEST

START_TEST(port_must_be_listed)
{
	load("[network.api]\nendpoint = api.example.com:443,8443\nbinary = /usr/bin/curl\n");
	ck_allowed_by(decide("api.example.com", 443, "/usr/bin/curl"), "api");
	ck_allowed_by(decide("api.example.com", 8443, "/usr/bin/curl"), "api");
	ck_denied(decide("api.example.com", 80, "/usr/bin/curl"),
		  "endpoint api.example.com:80 is not allowed by any policy");
	ck_denied(decide("api.example.com", 444, "/usr/bin/curl"),
		  "endpoint api.example.com:444 is not allowed by any policy");
}
END_TEST

START_TEST(ip_literal_endpoints_match_the_same_address)
{
	load("[network.v6]\nendpoint = [2001:db8::1]:443\nbinary = /usr/bin/curl\n"
	     "[network.v4]\nendpoint = 10.0.0.5:5432\nbinary = /usr/bin/curl\n");
	ck_allowed_by(decide("2001:DB8:0:0::1", 443, "/usr/bin/curl"), "v6");
	ck_allowed_by(decide("10.0.0.5", 5432, "/usr/bin/curl"), "v4");
	ck_denied(decide("2001:db8::2", 443, "/usr/bin/curl"),
		  "endpoint 2001:db8::2:443 is not allowed by any policy");
	ck_denied(decide("10.0.0.50", 5432, "/usr/bin/curl"),
		  "endpoint 10.0.0.50:5432 is not allowed by any policy");
}
END_TEST

START_TEST(hostless_endpoint_matches_any_host_on_its_ports)
{
	load("[network.db]\nendpoint = :5432\nallowed_ips = 10.0.5.0/24\nbinary = /usr/bin/psql\n");
	ck_allowed_by(decide("anything.internal", 5432, "/usr/bin/psql"), "db");
	ck_assert_int_eq(dec.endpoint->kind, POL_HOST_NONE);
	ck_assert(!dec.exact_declared);
	ck_allowed_by(decide("10.0.5.9", 5432, "/usr/bin/psql"), "db");
	ck_denied(decide("anything.internal", 5433, "/usr/bin/psql"),
		  "endpoint anything.internal:5433 is not allowed by any policy");
}
END_TEST

START_TEST(smallest_rule_name_wins_among_matching_rules)
{
	load("[network.zeta]\nendpoint = api.example.com:443\nbinary = /usr/bin/curl\n"
	     "[network.alpha]\nendpoint = *.example.com:443\nbinary = /usr/bin/curl\n"
	     "[network.mid]\nendpoint = **.example.com:443\nbinary = /usr/bin/curl\n"
	     "[network.aaa]\nendpoint = api.example.com:443\nbinary = /usr/bin/wget\n");
	ck_allowed_by(decide("api.example.com", 443, "/usr/bin/curl"), "alpha");
	ck_allowed_by(decide("a.b.example.com", 443, "/usr/bin/curl"), "mid");
	ck_allowed_by(decide("api.example.com", 443, "/usr/bin/wget"), "aaa");
}
END_TEST

START_TEST(no_rules_denies_every_connection)
{
	ck_assert_int_eq(pol_set_default(&pol, NULL), 0);
	ck_denied(decide("api.example.com", 443, "/usr/bin/curl"),
		  "network connections not allowed by policy");
	struct px_query q = {.host = "a.example.com", .port = 443, .endpoint_only = true};
	px_policy_decide(&pol, &q, &dec);
	ck_denied(&dec, PX_REASON_NO_RULES);
	px_policy_decide(NULL, &q, &dec);
	ck_denied(&dec, PX_REASON_NO_RULES);
}
END_TEST

/* --- binaries ------------------------------------------------------------------------------ */

START_TEST(binary_matches_exe_exactly)
{
	load("[network.web]\nendpoint = api.example.com:443\nbinary = /usr/bin/curl\n");
	ck_allowed_by(decide("api.example.com", 443, "/usr/bin/curl"), "web");
	ck_denied(
	    decide("api.example.com", 443, "/usr/bin/curl2"),
	    "binary '/usr/bin/curl2' not allowed in policy 'web' (ancestors: [], cmdline: [])");
	ck_denied(decide("api.example.com", 443, "/usr/bin"),
		  "binary '/usr/bin' not allowed in policy 'web' (ancestors: [], cmdline: [])");
	ck_denied(decide("api.example.com", 443, NULL),
		  "binary '' not allowed in policy 'web' (ancestors: [], cmdline: [])");
}
END_TEST

START_TEST(binary_matches_any_ancestor)
{
	load(
	    "[network.claude]\nendpoint = api.anthropic.com:443\nbinary = /usr/local/bin/claude\n");
	const char *anc[] = {"/bin/bash", "/usr/local/bin/claude", "/sbin/init"};
	struct px_query q = {.host = "api.anthropic.com",
			     .port = 443,
			     .exe = "/usr/bin/node",
			     .ancestors = anc,
			     .n_ancestors = 3};
	px_policy_decide(&pol, &q, &dec);
	ck_allowed_by(&dec, "claude");
	q.n_ancestors = 1;
	px_policy_decide(&pol, &q, &dec);
	ck_denied(&dec, "binary '/usr/bin/node' not allowed in policy 'claude' "
			"(ancestors: [/bin/bash], cmdline: [])");
}
END_TEST

START_TEST(binary_glob_matches_exe_or_ancestor)
{
	load("[network.copilot]\nendpoint = api.github.com:443\nbinary = /usr/lib/**/copilot\n"
	     "binary = /usr/bin/python3*\n");
	ck_allowed_by(decide("api.github.com", 443, "/usr/lib/node_modules/x/copilot"), "copilot");
	ck_allowed_by(decide("api.github.com", 443, "/usr/bin/python3.11"), "copilot");
	const char *anc[] = {"/usr/lib/a/copilot"};
	struct px_query q = {.host = "api.github.com",
			     .port = 443,
			     .exe = "/usr/bin/git",
			     .ancestors = anc,
			     .n_ancestors = 1};
	px_policy_decide(&pol, &q, &dec);
	ck_allowed_by(&dec, "copilot");
	ck_denied(decide("api.github.com", 443, "/usr/lib/copilot"),
		  "binary '/usr/lib/copilot' not allowed in policy 'copilot' "
		  "(ancestors: [], cmdline: [])");
}
END_TEST

START_TEST(cmdline_is_shown_but_never_grants)
{
	load("[network.web]\nendpoint = api.example.com:443\nbinary = /usr/bin/curl\n");
	const char *anc[] = {"/bin/bash", "/sbin/init"};
	const char *cmd[] = {"/usr/bin/curl", "https://api.example.com/"};
	struct px_query q = {.host = "api.example.com",
			     .port = 443,
			     .exe = "/usr/bin/wget",
			     .ancestors = anc,
			     .n_ancestors = 2,
			     .cmdline = cmd,
			     .n_cmdline = 2};
	px_policy_decide(&pol, &q, &dec);
	ck_denied(&dec, "binary '/usr/bin/wget' not allowed in policy 'web' (ancestors: [/bin/bash "
			"-> /sbin/init], cmdline: [/usr/bin/curl, https://api.example.com/])");
}
END_TEST

START_TEST(binary_misses_listed_per_rule_in_name_order)
{
	load("[network.b_rule]\nendpoint = api.example.com:443\nbinary = /usr/bin/curl\n"
	     "[network.other]\nendpoint = other.example.com:443\nbinary = /usr/bin/wget\n"
	     "[network.a_rule]\nendpoint = *.example.com:443\nbinary = /usr/bin/python3\n");
	ck_denied(decide("api.example.com", 443, "/usr/bin/wget"),
		  "binary '/usr/bin/wget' not allowed in policy 'a_rule' (ancestors: [], cmdline: "
		  "[]); binary '/usr/bin/wget' not allowed in policy 'b_rule' (ancestors: [], "
		  "cmdline: [])");
}
END_TEST

START_TEST(binary_miss_in_one_rule_does_not_stop_another_from_allowing)
{
	load("[network.a]\nendpoint = api.example.com:443\nbinary = /usr/bin/curl\n"
	     "[network.b]\nendpoint = api.example.com:443\nbinary = /usr/bin/wget\n");
	ck_allowed_by(decide("api.example.com", 443, "/usr/bin/wget"), "b");
}
END_TEST

START_TEST(rule_without_binaries_allows_nothing_unless_endpoint_only)
{
	load("[network.open]\nendpoint = api.example.com:443\n");
	ck_denied(
	    decide("api.example.com", 443, "/usr/bin/curl"),
	    "binary '/usr/bin/curl' not allowed in policy 'open' (ancestors: [], cmdline: [])");
	struct px_query q = {.host = "api.example.com", .port = 443, .endpoint_only = true};
	px_policy_decide(&pol, &q, &dec);
	ck_allowed_by(&dec, "open");
}
END_TEST

START_TEST(endpoint_only_mode_ignores_binaries_but_not_endpoints)
{
	load("[network.web]\nendpoint = api.example.com:443\nbinary = /usr/bin/curl\n");
	struct px_query q = {
	    .host = "api.example.com", .port = 443, .exe = "/usr/bin/wget", .endpoint_only = true};
	px_policy_decide(&pol, &q, &dec);
	ck_allowed_by(&dec, "web");
	q.host = "evil.example.com";
	px_policy_decide(&pol, &q, &dec);
	ck_denied(&dec, "endpoint evil.example.com:443 is not allowed by any policy");
}
END_TEST

START_TEST(binary_class_covers_every_rule_exact_and_glob_whatever_the_endpoint)
{
	load("[network.a]\nendpoint = api.example.com:443\nbinary = /usr/bin/curl\n"
	     "[network.b]\nendpoint = other.example.com:443\nbinary = /sandbox/**\n"
	     "binary = /usr/lib/*/node\n");
	ck_assert_int_eq(px_policy_binary_class(&pol, "/usr/bin/curl"), PX_BIN_EXACT);
	ck_assert_int_eq(px_policy_binary_class(&pol, "/sandbox/a/tool"), PX_BIN_GLOB);
	ck_assert_int_eq(px_policy_binary_class(&pol, "/usr/lib/x/node"), PX_BIN_GLOB);
	ck_assert_int_eq(px_policy_binary_class(&pol, "/usr/lib/x/y/node"), PX_BIN_NONE);
	ck_assert_int_eq(px_policy_binary_class(&pol, "/tmp/link-4200"), PX_BIN_NONE);
	ck_assert_int_eq(px_policy_binary_class(&pol, "/usr/bin/curl2"), PX_BIN_NONE);
	ck_assert(px_policy_binary_is_candidate(&pol, "/sandbox/x"));
	ck_assert(!px_policy_binary_is_candidate(&pol, "/usr/bin/wget"));
	ck_assert(!px_policy_binary_is_candidate(NULL, "/usr/bin/curl"));
	ck_assert(!px_policy_binary_is_candidate(&pol, NULL));
	/* Exact wins over a glob matching the same path. */
	pol_free(&pol);
	load("[network.a]\nendpoint = api.example.com:443\nbinary = /sandbox/**\n"
	     "[network.b]\nendpoint = api.example.com:443\nbinary = /sandbox/bin/tool\n");
	ck_assert_int_eq(px_policy_binary_class(&pol, "/sandbox/bin/tool"), PX_BIN_EXACT);
}
END_TEST

/* Every binary that can make a decision allow is a candidate: the TOFU cache relies on it. */
START_TEST(every_allowed_exe_or_ancestor_is_a_candidate)
{
	load("[network.a]\nendpoint = api.example.com:443\nbinary = /usr/bin/curl\n"
	     "[network.b]\nendpoint = api.example.com:443\nbinary = /opt/**/bin/*\n");
	const char *const exes[] = {"/usr/bin/curl", "/opt/x/bin/tool", "/usr/bin/wget",
				    "/opt/bin/tool"};
	for (size_t i = 0; i < 4; i++) {
		const struct px_decision *d = decide("api.example.com", 443, exes[i]);
		ck_assert_int_eq(d->allow, px_policy_binary_is_candidate(&pol, exes[i]));
	}
}
END_TEST

START_TEST(binary_identity_relaxed_values)
{
	const char *yes[] = {"relaxed", "disabled",  "endpoint-only", "false",
			     "0",	" Relaxed ", "FALSE",	      "endpoint-only\n"};
	const char *no[] = {"required", "", "1", "true", "yes", "relaxedx", "end point-only"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(px_binary_identity_is_relaxed(yes[i]), "'%s'", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!px_binary_identity_is_relaxed(no[i]), "'%s'", no[i]);
	ck_assert(!px_binary_identity_is_relaxed(NULL));
}
END_TEST

/* --- symlink hint -------------------------------------------------------------------------- */

static int symlink_calls;

static bool python_is_symlink(void *ctx, const char *path)
{
	(void)ctx;
	symlink_calls++;
	ck_assert_msg(!strchr(path, '*'), "glob '%s' passed to the symlink callback", path);
	return strcmp(path, "/usr/bin/python3") == 0;
}

START_TEST(symlink_hint_only_when_a_policy_binary_is_a_symlink)
{
	load("[network.py]\nendpoint = pypi.org:443\nbinary = /usr/bin/pip*\n"
	     "binary = /usr/bin/python3\n");
	struct px_query q = {.host = "pypi.org", .port = 443, .exe = "/usr/bin/python3.11"};
	px_policy_decide(&pol, &q, &dec);
	ck_denied(&dec, "binary '/usr/bin/python3.11' not allowed in policy 'py' (ancestors: [], "
			"cmdline: [])");
	q.binary_is_symlink = python_is_symlink;
	px_policy_decide(&pol, &q, &dec);
	ck_denied(&dec,
		  "binary '/usr/bin/python3.11' not allowed in policy 'py' (ancestors: [], "
		  "cmdline: []). SYMLINK HINT: policy binary '/usr/bin/python3' is a symlink, "
		  "but the kernel reports the resolved target (/proc/<pid>/exe); list the "
		  "canonical path in the policy (run 'readlink -f /usr/bin/python3' inside the "
		  "sandbox)");
	ck_assert_int_eq(symlink_calls, 1);
}
END_TEST

START_TEST(long_reasons_are_cut_with_an_ellipsis)
{
	load("[network.web]\nendpoint = api.example.com:443\nbinary = /usr/bin/curl\n");
	static char deep[200];
	memset(deep, 'd', sizeof(deep) - 1);
	deep[0] = '/';
	const char *anc[64];
	for (size_t i = 0; i < 64; i++)
		anc[i] = deep;
	struct px_query q = {.host = "api.example.com",
			     .port = 443,
			     .exe = "/usr/bin/wget",
			     .ancestors = anc,
			     .n_ancestors = 64};
	px_policy_decide(&pol, &q, &dec);
	ck_assert(!dec.allow);
	size_t n = strlen(dec.reason);
	ck_assert_uint_eq(n, PX_REASON_MAX - 1);
	ck_assert_str_eq(dec.reason + n - 3, "...");
	const char *start = "binary '/usr/bin/wget' not allowed in policy 'web' (ancestors: [/ddd";
	ck_assert(strncmp(dec.reason, start, strlen(start)) == 0);
}
END_TEST

/* --- what the SSRF guard receives ---------------------------------------------------------- */

START_TEST(exact_declared_only_for_exact_hosts_of_allowing_rules)
{
	load("[network.glob]\nendpoint = *.corp.net:443\nbinary = /usr/bin/curl\n"
	     "[network.exact_other_binary]\nendpoint = db.corp.net:443\nbinary = /usr/bin/psql\n");
	ck_allowed_by(decide("db.corp.net", 443, "/usr/bin/curl"), "glob");
	ck_assert(!dec.exact_declared);
	ck_allowed_by(decide("db.corp.net", 443, "/usr/bin/psql"), "exact_other_binary");
	ck_assert(dec.exact_declared);
}
END_TEST

START_TEST(endpoint_with_allowed_ips_is_chosen_across_rules_in_name_order)
{
	/* Among hostless endpoints (for a name no endpoint names): the first one carrying
	 * allowed_ips, rules in name order, even when another rule is the matched policy. A host
	 * an allowing endpoint names keeps that endpoint: hostless addresses never shadow it. */
	load("[network.z_ips]\nendpoint = :443\nallowed_ips = 10.0.0.0/8\nbinary = /usr/bin/curl\n"
	     "[network.y_ips]\nendpoint = :443\nallowed_ips = 192.168.0.0/16\n"
	     "binary = /usr/bin/curl\n"
	     "[network.a_plain]\nendpoint = api.x.com:443\nbinary = /usr/bin/curl\n");
	ck_allowed_by(decide("other.x.com", 443, "/usr/bin/curl"), "y_ips");
	ck_assert_int_eq(dec.endpoint->kind, POL_HOST_NONE);
	ck_assert_uint_eq(dec.endpoint->n_allowed_ips, 1);
	ck_assert_uint_eq(dec.endpoint->allowed_ips[0].addr[0], 192);
	ck_allowed_by(decide("api.x.com", 443, "/usr/bin/curl"), "a_plain");
	ck_assert(dec.exact_declared);
	ck_assert_ptr_eq(dec.endpoint, &pol.rules[2].endpoints[0]);
}
END_TEST

START_TEST(endpoint_is_the_first_match_of_the_rule_without_allowed_ips)
{
	load("[network.web]\nendpoint = other.example.com:443\nendpoint = *.example.com:443\n"
	     "endpoint = api.example.com:443\nbinary = /usr/bin/curl\n");
	ck_allowed_by(decide("api.example.com", 443, "/usr/bin/curl"), "web");
	ck_assert_ptr_eq(dec.endpoint, &pol.rules[0].endpoints[1]);
	ck_assert(dec.exact_declared);
}
END_TEST


/* --- interim: layer 7 and middlewares are refused, never widened to L4 ----------------------- */

START_TEST(rest_and_websocket_endpoints_admit_the_tunnel_for_inspection)
{
	pol_init(&pol);
	struct pol_endpoint *e = tb_endpoint(&pol, "github", "api.example.com", 443);
	e->protocol = POL_PROTO_REST;
	e->access = POL_ACCESS_READ_ONLY;
	ck_assert_int_eq(pol_validate(&pol, NULL), 0);
	ck_allowed_by(decide("API.example.com", 443, "/usr/bin/curl"), "github");
	ck_assert(dec.inspect);
	ck_assert(!dec.tls_skip);
	e->protocol = POL_PROTO_WEBSOCKET;
	ck_allowed_by(decide("api.example.com", 443, "/usr/bin/curl"), "github");
	ck_assert(dec.inspect);
	/* Another port or binary is still the usual reason. */
	ck_denied(decide("api.example.com", 80, "/usr/bin/curl"),
		  "endpoint api.example.com:80 is not allowed by any policy");
	decide("api.example.com", 443, "/usr/bin/wget");
	ck_assert_ptr_nonnull(strstr(dec.reason, "binary '/usr/bin/wget' not allowed"));
}
END_TEST

START_TEST(uninspected_l7_endpoint_alone_is_denied_naming_the_protocol)
{
	pol_init(&pol);
	struct pol_endpoint *e = tb_endpoint(&pol, "github", "api.example.com", 443);
	e->protocol = POL_PROTO_GRAPHQL;
	e->access = POL_ACCESS_READ_ONLY;
	ck_assert_int_eq(pol_validate(&pol, NULL), 0);
	ck_denied(decide("API.example.com", 443, "/usr/bin/curl"),
		  "endpoint api.example.com:443 in policy 'github' requires layer-7 inspection "
		  "(protocol graphql), which is not enforced by this supervisor yet");
	/* Each protocol not inspected yet is refused alike. */
	const enum pol_protocol l7[] = {POL_PROTO_SQL, POL_PROTO_JSONRPC, POL_PROTO_MCP};
	const char *names[] = {"sql", "json-rpc", "mcp"};
	for (size_t i = 0; i < 3; i++) {
		e->protocol = l7[i];
		decide("api.example.com", 443, "/usr/bin/curl");
		ck_assert(!dec.allow);
		ck_assert_msg(strstr(dec.reason, names[i]), "%s", dec.reason);
	}
}
END_TEST

START_TEST(tcp_and_tls_skip_endpoints_stay_plain_l4)
{
	pol_init(&pol);
	struct pol_endpoint *e = tb_endpoint(&pol, "raw", "git.example.com", 22);
	e->protocol = POL_PROTO_TCP;
	ck_allowed_by(decide("git.example.com", 22, "/usr/bin/curl"), "raw");
	e = tb_endpoint(&pol, "skip", "mtls.example.com", 8443);
	e->protocol = POL_PROTO_REST;
	e->access = POL_ACCESS_FULL;
	e->tls = POL_TLS_SKIP;
	e->tls_set = true;
	ck_assert_int_eq(pol_validate(&pol, NULL), 0);
	ck_allowed_by(decide("mtls.example.com", 8443, "/usr/bin/curl"), "skip");
	ck_assert(dec.tls_skip);
	ck_assert(!dec.inspect);
	ck_allowed_by(decide("git.example.com", 22, "/usr/bin/curl"), "raw");
	ck_assert(!dec.tls_skip && !dec.inspect);
}
END_TEST

START_TEST(plain_endpoint_of_another_rule_still_allows_beside_an_l7_one)
{
	pol_init(&pol);
	struct pol_endpoint *e = tb_endpoint(&pol, "a_l7", "api.example.com", 443);
	e->protocol = POL_PROTO_GRAPHQL;
	e->access = POL_ACCESS_FULL;
	tb_endpoint(&pol, "b_l4", "api.example.com", 443);
	ck_allowed_by(decide("api.example.com", 443, "/usr/bin/curl"), "b_l4");
	ck_assert(dec.exact_declared);
}
END_TEST

START_TEST(middleware_selected_host_is_denied_naming_the_middleware)
{
	pol_init(&pol);
	tb_endpoint(&pol, "web", "api.example.com", 443);
	tb_endpoint(&pol, "web", "other.example.org", 443);
	struct pol_middleware *m = tb_middleware(&pol, "redact", "*.example.com", 1);
	ck_assert_int_eq(pol_validate(&pol, NULL), 0);
	ck_denied(decide("API.example.com", 443, "/usr/bin/curl"),
		  "endpoint api.example.com:443 is selected by network middleware 'redact' "
		  "(builtin.redact), which is not run by this supervisor yet");
	ck_allowed_by(decide("other.example.org", 443, "/usr/bin/curl"), "web");
	ck_assert_int_eq(pol_strv_push(&m->exclude, "api.example.com"), 0);
	ck_allowed_by(decide("api.example.com", 443, "/usr/bin/curl"), "web");
}
END_TEST

static Suite *px_policy_suite(void)
{
	Suite *s = suite_create("px_policy");
	TCase *tc = tcase_create("globs");
	tcase_add_test(tc, star_matches_exactly_one_label);
	tcase_add_test(tc, double_star_matches_one_or_more_labels_but_not_the_apex);
	tcase_add_test(tc, star_inside_first_label_matches_within_that_label_only);
	tcase_add_test(tc, whole_middle_label_star_matches_one_label);
	tcase_add_test(tc, host_globs_ignore_case_and_reject_empty_labels);
	tcase_add_test(tc, path_star_stays_within_one_component);
	tcase_add_test(tc, path_double_star_spans_one_or_more_components);
	tcase_add_test(tc, path_glob_stays_fast_on_hostile_deep_paths);
	suite_add_tcase(s, tc);

	tc = tcase_create("endpoints");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, wildcard_endpoint_decisions_follow_the_issue_cases);
	tcase_add_test(tc, exact_host_matches_case_insensitively_and_reason_is_lower_case);
	tcase_add_test(tc, port_must_be_listed);
	tcase_add_test(tc, ip_literal_endpoints_match_the_same_address);
	tcase_add_test(tc, hostless_endpoint_matches_any_host_on_its_ports);
	tcase_add_test(tc, smallest_rule_name_wins_among_matching_rules);
	tcase_add_test(tc, no_rules_denies_every_connection);
	suite_add_tcase(s, tc);

	tc = tcase_create("binaries");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, binary_matches_exe_exactly);
	tcase_add_test(tc, binary_matches_any_ancestor);
	tcase_add_test(tc, binary_glob_matches_exe_or_ancestor);
	tcase_add_test(tc, cmdline_is_shown_but_never_grants);
	tcase_add_test(tc, binary_misses_listed_per_rule_in_name_order);
	tcase_add_test(tc, binary_miss_in_one_rule_does_not_stop_another_from_allowing);
	tcase_add_test(tc, rule_without_binaries_allows_nothing_unless_endpoint_only);
	tcase_add_test(tc, endpoint_only_mode_ignores_binaries_but_not_endpoints);
	tcase_add_test(tc, binary_identity_relaxed_values);
	tcase_add_test(tc, symlink_hint_only_when_a_policy_binary_is_a_symlink);
	tcase_add_test(tc, long_reasons_are_cut_with_an_ellipsis);
	suite_add_tcase(s, tc);

	tc = tcase_create("ssrf_inputs");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, exact_declared_only_for_exact_hosts_of_allowing_rules);
	tcase_add_test(tc, endpoint_with_allowed_ips_is_chosen_across_rules_in_name_order);
	tcase_add_test(tc, endpoint_is_the_first_match_of_the_rule_without_allowed_ips);
	tcase_add_test(tc, binary_class_covers_every_rule_exact_and_glob_whatever_the_endpoint);
	tcase_add_test(tc, every_allowed_exe_or_ancestor_is_a_candidate);
	suite_add_tcase(s, tc);

	tc = tcase_create("interim_l7");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, rest_and_websocket_endpoints_admit_the_tunnel_for_inspection);
	tcase_add_test(tc, uninspected_l7_endpoint_alone_is_denied_naming_the_protocol);
	tcase_add_test(tc, tcp_and_tls_skip_endpoints_stay_plain_l4);
	tcase_add_test(tc, plain_endpoint_of_another_rule_still_allows_beside_an_l7_one);
	tcase_add_test(tc, middleware_selected_host_is_denied_naming_the_middleware);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(px_policy_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
