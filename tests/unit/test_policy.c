/* Unit tests for the policy model, its validation, baseline enrichment and the INI loader.
 *
 * Each validation rule of contract §3.4 and each enrichment rule of §3.3 has a test that fails
 * when the rule is removed. Enrichment runs against a fake root in a temporary directory; no
 * test touches the real /etc/openshell or /dev.
 */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/policy/policy.h"

#define NAME "policy.ini"

static int load(const char *text, struct pol_policy *p, struct sv_err *err)
{
	return pol_load_buffer(NAME, text, strlen(text), p, err);
}

static bool policy_is_empty(const struct pol_policy *p)
{
	return p->read_only.n == 0 && p->read_write.n == 0 && p->n_rules == 0 && !p->rules &&
	       !p->run_as_user && !p->run_as_group && !p->source;
}

/* Loading @text fails, the message contains @want, and nothing is left half-filled. */
#define ck_load_fails(text, want)                                                                 \
	do {                                                                                      \
		struct pol_policy p_;                                                             \
		struct sv_err e_ = {0};                                                           \
		int r_ = load((text), &p_, &e_);                                                  \
		ck_assert_msg(r_ < 0, "expected failure for:\n%s", (text));                       \
		ck_assert_msg(strstr(e_.msg, (want)), "message '%s' lacks '%s'", e_.msg, (want)); \
		ck_assert(policy_is_empty(&p_));                                                  \
	} while (0)

#define ck_load_ok(text, p)                                               \
	do {                                                              \
		struct sv_err e_ = {0};                                   \
		int r_ = load((text), (p), &e_);                          \
		ck_assert_msg(r_ == 0, "unexpected failure: %s", e_.msg); \
		ck_assert_int_eq(pol_validate((p), &e_), 0);              \
	} while (0)

/* --- restrictive default (§3.2) ------------------------------------------------------------ */

START_TEST(restrictive_default_matches_contract)
{
	struct pol_policy p;
	ck_assert_int_eq(pol_set_default(&p, NULL), 0);
	const char *ro[] = {"/usr", "/lib", "/proc", "/dev/urandom", "/app", "/etc", "/var/log"};
	ck_assert_uint_eq(p.read_only.n, 7);
	for (size_t i = 0; i < 7; i++)
		ck_assert_str_eq(p.read_only.v[i], ro[i]);
	ck_assert_uint_eq(p.read_write.n, 2);
	ck_assert_str_eq(p.read_write.v[0], "/tmp");
	ck_assert_str_eq(p.read_write.v[1], "/dev/null");
	ck_assert(p.include_workdir);
	ck_assert_int_eq(p.landlock_compat, POL_BEST_EFFORT);
	ck_assert_ptr_null(p.run_as_user);
	ck_assert_ptr_null(p.run_as_group);
	ck_assert_uint_eq(p.n_rules, 0);
	ck_assert_str_eq(p.source, "default");
	ck_assert_int_eq(pol_validate(&p, NULL), 0);
	pol_free(&p);
	ck_assert(policy_is_empty(&p));
}
END_TEST

START_TEST(empty_file_gives_empty_policy_with_workdir)
{
	struct pol_policy p;
	ck_load_ok("", &p);
	ck_assert(p.include_workdir);
	ck_assert_uint_eq(p.read_only.n + p.read_write.n + p.n_rules, 0);
	ck_assert_str_eq(p.source, NAME);
	pol_free(&p);
}
END_TEST

/* --- filesystem validation ----------------------------------------------------------------- */

START_TEST(relative_path_rejected_with_file_and_line)
{
	ck_load_fails("[filesystem]\n; comment\nread_only = usr/lib\n",
		      "policy.ini:3: read_only: path must be absolute");
}
END_TEST

START_TEST(dotdot_component_rejected_but_dotdot_in_name_allowed)
{
	ck_load_fails("[filesystem]\nread_write = /tmp/../etc\n",
		      "policy.ini:2: read_write: path must not contain a '..' component");
	ck_load_fails("[filesystem]\nread_only = /usr/..\n", "'..' component");
	struct pol_policy p;
	ck_load_ok("[filesystem]\nread_only = /opt/..data\n", &p);
	ck_assert_str_eq(p.read_only.v[0], "/opt/..data");
	pol_free(&p);
}
END_TEST

START_TEST(path_longer_than_4096_bytes_rejected)
{
	char path[POL_PATH_MAX + 2];
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[POL_PATH_MAX] = '\0'; /* exactly 4096 bytes */
	struct sv_err err = {0};
	ck_assert_int_eq(pol_fs_path_check(path, false, &err), 0);
	path[POL_PATH_MAX] = 'a';
	path[POL_PATH_MAX + 1] = '\0';
	ck_assert_int_eq(pol_fs_path_check(path, false, &err), -ENAMETOOLONG);
	ck_assert_ptr_nonnull(strstr(err.msg, "longer than 4096"));

	struct pol_policy p;
	pol_init(&p);
	ck_assert_int_eq(pol_strv_push(&p.read_only, path), 0);
	ck_assert_int_lt(pol_validate(&p, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "read_only"));
	pol_free(&p);
}
END_TEST

static char *many_paths(size_t n)
{
	char *s = malloc(32 + n * 24);
	size_t o = (size_t)sprintf(s, "[filesystem]\n");
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(s + o, "%s = /p%zu\n", i % 2 ? "read_write" : "read_only", i);
	return s;
}

START_TEST(at_most_256_paths_in_total)
{
	char *ok = many_paths(POL_PATHS_MAX);
	struct pol_policy p;
	ck_load_ok(ok, &p);
	ck_assert_uint_eq(p.read_only.n + p.read_write.n, POL_PATHS_MAX);
	pol_free(&p);
	free(ok);
	char *bad = many_paths(POL_PATHS_MAX + 1);
	ck_load_fails(bad, "policy.ini:258: read_only: too many filesystem paths (max 256");
	free(bad);
}
END_TEST

START_TEST(fs_add_after_loading_is_not_capped)
{
	/* the cap bounds the file; the supervisor still adds baselines and the workdir */
	char *full = many_paths(POL_PATHS_MAX);
	struct pol_policy p;
	ck_load_ok(full, &p);
	free(full);
	struct sv_err err = {0};
	ck_assert_int_eq(pol_fs_add(&p, true, "/sandbox/", &err), 1);
	ck_assert_int_eq(pol_fs_add(&p, true, "/sandbox", &err), 0);
	ck_assert_str_eq(p.read_write.v[p.read_write.n - 1], "/sandbox");
	ck_assert_int_eq(pol_fs_add(&p, true, "/", &err), -EINVAL);
	ck_assert_int_eq(pol_fs_add(&p, false, "rel", &err), -EINVAL);
	pol_free(&p);
}
END_TEST

START_TEST(read_write_root_rejected_read_only_root_allowed)
{
	ck_load_fails("[filesystem]\nread_write = /\n",
		      "policy.ini:2: read_write: read-write '/' is overly broad");
	ck_load_fails("[filesystem]\nread_write = //./\n", "overly broad");
	/* "/data /" would normalise to "/data ", which INI cannot say (values are trimmed) */
	ck_load_fails("[filesystem]\nread_only = /data /./\n", "path must not end in a blank");
	struct pol_policy p;
	ck_load_ok("[filesystem]\nread_only = /\n", &p);
	ck_assert_str_eq(p.read_only.v[0], "/");
	pol_free(&p);
}
END_TEST

START_TEST(paths_are_normalised_and_duplicates_collapsed)
{
	struct pol_policy p;
	ck_load_ok("[filesystem]\nread_only = //usr/./lib/\nread_only = /usr/lib\n"
		   "read_only = /etc\n",
		   &p);
	ck_assert_uint_eq(p.read_only.n, 2);
	ck_assert_str_eq(p.read_only.v[0], "/usr/lib");
	ck_assert_str_eq(p.read_only.v[1], "/etc");
	pol_free(&p);
}
END_TEST

START_TEST(path_in_both_lists_rejected)
{
	ck_load_fails("[filesystem]\nread_only = /data\nread_write = /data/\n",
		      "policy.ini:3: read_write: '/data' is already listed in read_only");
}
END_TEST

START_TEST(control_character_in_path_rejected_by_model)
{
	struct sv_err err = {0};
	ck_assert_int_lt(pol_fs_path_check("/tmp/a\nb", true, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "control character"));
	ck_assert_ptr_null(strchr(err.msg, '\n'));
	char longrel[200];
	memset(longrel, 'r', sizeof(longrel) - 1);
	longrel[sizeof(longrel) - 1] = '\0';
	ck_assert_int_lt(pol_fs_path_check(longrel, false, &err), 0); /* quoted value is bounded */
	ck_assert_ptr_nonnull(strstr(err.msg, "rrr...')"));
	ck_assert_uint_lt(strlen(err.msg), 120);
}
END_TEST

START_TEST(repeatable_keys_accumulate_in_order)
{
	struct pol_policy p;
	ck_load_ok("[filesystem]\nread_only = /usr\nread_write = /tmp\nread_only = /etc\n"
		   "read_only = /lib ; inline comment\nread_write = /var/tmp\n",
		   &p);
	ck_assert_uint_eq(p.read_only.n, 3);
	ck_assert_str_eq(p.read_only.v[0], "/usr");
	ck_assert_str_eq(p.read_only.v[1], "/etc");
	ck_assert_str_eq(p.read_only.v[2], "/lib");
	ck_assert_uint_eq(p.read_write.n, 2);
	ck_assert_str_eq(p.read_write.v[1], "/var/tmp");
	pol_free(&p);
}
END_TEST

START_TEST(include_workdir_parses_booleans_strictly)
{
	struct pol_policy p;
	ck_load_ok("[filesystem]\ninclude_workdir = false\n", &p);
	ck_assert(!p.include_workdir);
	pol_free(&p);
	ck_load_ok("[filesystem]\ninclude_workdir = true\n", &p);
	ck_assert(p.include_workdir);
	pol_free(&p);
	ck_load_fails("[filesystem]\ninclude_workdir = yes\n",
		      "policy.ini:2: include_workdir: expected true or false");
	ck_load_fails("[filesystem]\ninclude_workdir = TRUE\n", "expected true or false");
}
END_TEST

/* --- landlock and process ------------------------------------------------------------------ */

START_TEST(compatibility_accepts_only_the_two_modes)
{
	struct pol_policy p;
	ck_load_ok("[landlock]\ncompatibility = hard_requirement\n", &p);
	ck_assert_int_eq(p.landlock_compat, POL_HARD_REQUIREMENT);
	pol_free(&p);
	ck_load_ok("[landlock]\ncompatibility = best_effort\n", &p);
	ck_assert_int_eq(p.landlock_compat, POL_BEST_EFFORT);
	pol_free(&p);
	ck_load_fails("[landlock]\ncompatibility = hard\n",
		      "policy.ini:2: compatibility: expected best_effort or hard_requirement");
}
END_TEST

START_TEST(identity_sandbox_names_and_numbers_accepted)
{
	struct pol_policy p;
	ck_load_ok("[process]\nrun_as_user = sandbox\nrun_as_group = 4294967294\n", &p);
	ck_assert_str_eq(p.run_as_user, "sandbox");
	ck_assert_str_eq(p.run_as_group, "4294967294");
	pol_free(&p);
	ck_load_ok("[process]\nrun_as_user = 007\nrun_as_group = dev_team.1-x\n", &p);
	ck_assert_str_eq(p.run_as_user, "7");
	ck_assert_str_eq(p.run_as_group, "dev_team.1-x");
	pol_free(&p);
}
END_TEST

START_TEST(identity_root_rejected_by_name_and_number)
{
	ck_load_fails("[process]\nrun_as_user = root\n",
		      "policy.ini:2: run_as_user: must not be root");
	ck_load_fails("[process]\nrun_as_group = 0\n",
		      "policy.ini:2: run_as_group: must not be root");
	ck_load_fails("[process]\nrun_as_user = 000\n", "must not be root");
}
END_TEST

START_TEST(identity_number_range_is_1_to_4294967294)
{
	ck_load_fails("[process]\nrun_as_user = 4294967295\n",
		      "policy.ini:2: run_as_user: numeric id must be in 1..4294967294");
	ck_load_fails("[process]\nrun_as_user = 99999999999999999999999\n", "must be in 1..");
	struct sv_err err = {0};
	ck_assert_int_eq(pol_identity_check("1", &err), 0);
	ck_assert_int_lt(pol_identity_check("01", &err), 0); /* model keeps ids canonical */
}
END_TEST

START_TEST(identity_names_must_be_portable)
{
	ck_load_fails("[process]\nrun_as_user = -sandbox\n", "not a portable name");
	ck_load_fails("[process]\nrun_as_user = a b\n", "not a portable name");
	ck_load_fails("[process]\nrun_as_user = us$er\n", "not a portable name");
	ck_load_fails("[process]\nrun_as_user = ..\n", "not a portable name");
	ck_load_fails("[process]\nrun_as_user = abcdefghijabcdefghijabcdefghijabc\n",
		      "longer than 32 bytes");
	ck_load_fails("[process]\nrun_as_user =\n", "run_as_user: must not be empty");
}
END_TEST

START_TEST(omitted_identity_stays_null)
{
	struct pol_policy p;
	ck_load_ok("[process]\nrun_as_group = sandbox\n", &p);
	ck_assert_ptr_null(p.run_as_user);
	ck_assert_str_eq(p.run_as_group, "sandbox");
	pol_free(&p);
}
END_TEST

/* --- INI structure ------------------------------------------------------------------------- */

START_TEST(unknown_section_rejected_even_when_empty)
{
	ck_load_fails("[filesystem]\n\n[network_policies]\n",
		      "policy.ini:3: unknown section [network_policies]");
	ck_load_fails("[Filesystem]\nread_only = /usr\n", "policy.ini:1: unknown section");
	ck_load_fails("[network]\n", "policy.ini:1: a network rule needs a name");
}
END_TEST

START_TEST(unknown_key_rejected)
{
	ck_load_fails("[filesystem]\nread_onyl = /usr\n",
		      "policy.ini:2: unknown key 'read_onyl' in [filesystem]");
	ck_load_fails("[landlock]\nmode = strict\n", "unknown key 'mode' in [landlock]");
	ck_load_fails("[process]\nrun_as = x\n", "unknown key 'run_as' in [process]");
	ck_load_fails("[network.a]\nhost = x\n", "unknown key 'host' in [network.a]");
}
END_TEST

START_TEST(key_outside_section_rejected)
{
	ck_load_fails("read_only = /usr\n", "policy.ini:1: key 'read_only' outside any section");
}
END_TEST

START_TEST(duplicate_scalar_key_rejected_naming_both_lines)
{
	ck_load_fails("[filesystem]\ninclude_workdir = true\n\ninclude_workdir = true\n",
		      "policy.ini:4: include_workdir: duplicate key (first set on line 2)");
	ck_load_fails("[process]\nrun_as_user = 1000\nrun_as_user = 1001\n",
		      "policy.ini:3: run_as_user: duplicate key (first set on line 2)");
	ck_load_fails("[landlock]\ncompatibility = best_effort\ncompatibility = best_effort\n",
		      "duplicate key");
}
END_TEST

START_TEST(duplicate_section_rejected)
{
	ck_load_fails("[filesystem]\n[process]\n[filesystem]\n",
		      "policy.ini:3: duplicate section [filesystem] (first on line 1)");
	ck_load_fails("[network.a]\nendpoint = a.example.com:443\n[network.a]\n",
		      "policy.ini:3: duplicate section [network.a]");
}
END_TEST

START_TEST(malformed_lines_rejected_with_line)
{
	ck_load_fails("[filesystem]\nread_only /usr\n",
		      "policy.ini:2: expected 'key = value', '[section]' or a comment");
	ck_load_fails("[filesystem\n", "policy.ini:1: section header has no closing ']'");
	ck_load_fails("[filesystem] junk\n", "policy.ini:1: unexpected text after the section");
}
END_TEST

START_TEST(hash_inline_is_not_a_comment_and_is_rejected)
{
	ck_load_fails("[filesystem]\nread_only = /usr # system\n",
		      "policy.ini:2: read_only: '#' starts a comment only at the start of a line");
	struct pol_policy p;
	ck_load_ok("# full-line comment\n[filesystem]\n  ; indented comment\nread_only = /a;b\n",
		   &p);
	ck_assert_str_eq(p.read_only.v[0], "/a;b");
	pol_free(&p);
}
END_TEST

static char *line_of(size_t content)
{
	/* "[filesystem]\nread_only = /aaaa...\n" with the second line @content bytes long */
	char *s = malloc(content + 32);
	size_t o = (size_t)sprintf(s, "[filesystem]\nread_only = /");
	size_t prefix = strlen("read_only = /");
	memset(s + o, 'a', content - prefix);
	o += content - prefix;
	strcpy(s + o, "\n");
	return s;
}

START_TEST(line_longer_than_4093_bytes_rejected_not_truncated)
{
	char *ok = line_of(4093);
	struct pol_policy p;
	ck_load_ok(ok, &p);
	ck_assert_uint_eq(strlen(p.read_only.v[0]), 4093 - strlen("read_only = "));
	pol_free(&p);
	free(ok);
	char *bad = line_of(4094);
	ck_load_fails(bad, "policy.ini:2: line is longer than 4093 bytes");
	free(bad);
	char *huge = line_of(9000);
	ck_load_fails(huge, "policy.ini:2: line is longer");
	free(huge);
	/* a long comment is not silently cut either */
	char comment[5000];
	memset(comment, 'x', sizeof(comment));
	comment[0] = ';';
	comment[sizeof(comment) - 1] = '\0';
	ck_load_fails(comment, "policy.ini:1: line is longer");
}
END_TEST

START_TEST(crlf_line_endings_accepted)
{
	struct pol_policy p;
	ck_load_ok("[filesystem]\r\nread_only = /usr\r\n", &p);
	ck_assert_str_eq(p.read_only.v[0], "/usr");
	pol_free(&p);
}
END_TEST

START_TEST(nul_and_control_bytes_rejected)
{
	static const char nul[] = "[filesystem]\nread_only = /usr\0/evil\n";
	struct pol_policy p;
	struct sv_err err = {0};
	ck_assert_int_lt(pol_load_buffer(NAME, nul, sizeof(nul) - 1, &p, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "policy.ini:2: control character 0x00"));
	ck_load_fails("[filesystem]\nread_only = /us\033r\n",
		      "policy.ini:2: control character 0x1b");
}
END_TEST

START_TEST(buffer_larger_than_1_mib_rejected)
{
	size_t n = POL_FILE_MAX + 1;
	char *big = malloc(n);
	memset(big, '\n', n);
	struct pol_policy p;
	struct sv_err err = {0};
	ck_assert_int_eq(pol_load_buffer(NAME, big, n, &p, &err), -EFBIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "larger than 1048576"));
	ck_assert_int_eq(pol_load_buffer(NAME, big, n - 1, &p, &err), 0);
	pol_free(&p);
	free(big);
}
END_TEST

/* --- network rules ------------------------------------------------------------------------- */

START_TEST(network_sections_parse_into_rules)
{
	struct pol_policy p;
	ck_load_ok("[network.claude_code]\n"
		   "endpoint = API.Anthropic.com:443\n"
		   "endpoint = *.example.com:443, 8443\n"
		   "binary = /usr/local/bin/claude\n"
		   "binary = /usr/lib/**/copilot\n"
		   "allowed_ips = 10.0.5.0/24\n"
		   "allowed_ips = fd00::/8\n"
		   "[network.internal-db]\n"
		   "endpoint = [2001:DB8::1]:5432\n"
		   "endpoint = 192.168.1.10:5432\n",
		   &p);
	ck_assert_uint_eq(p.n_rules, 2);
	const struct pol_network_rule *r = &p.rules[0];
	ck_assert_str_eq(r->name, "claude_code");
	ck_assert_uint_eq(r->n_endpoints, 2);
	ck_assert_int_eq(r->endpoints[0].kind, POL_HOST_NAME);
	ck_assert_str_eq(r->endpoints[0].host, "api.anthropic.com");
	ck_assert_uint_eq(r->endpoints[0].n_ports, 1);
	ck_assert_uint_eq(r->endpoints[0].ports[0], 443);
	ck_assert_int_eq(r->endpoints[1].kind, POL_HOST_GLOB);
	ck_assert_uint_eq(r->endpoints[1].n_ports, 2);
	ck_assert_uint_eq(r->endpoints[1].ports[1], 8443);
	ck_assert_uint_eq(r->binaries.n, 2);
	ck_assert_str_eq(r->binaries.v[1], "/usr/lib/**/copilot");
	for (size_t i = 0; i < 2; i++) { /* the section's allowed_ips apply to every endpoint */
		char buf[64];
		ck_assert_uint_eq(r->endpoints[i].n_allowed_ips, 2);
		pol_cidr_format(&r->endpoints[i].allowed_ips[0], buf, sizeof(buf));
		ck_assert_str_eq(buf, "10.0.5.0/24");
		pol_cidr_format(&r->endpoints[i].allowed_ips[1], buf, sizeof(buf));
		ck_assert_str_eq(buf, "fd00::/8");
	}
	r = &p.rules[1];
	ck_assert_str_eq(r->name, "internal-db");
	ck_assert_int_eq(r->endpoints[0].kind, POL_HOST_IPV6);
	ck_assert_str_eq(r->endpoints[0].host, "2001:db8::1");
	ck_assert_int_eq(r->endpoints[1].kind, POL_HOST_IPV4);
	ck_assert_uint_eq(r->endpoints[1].n_allowed_ips, 0);
	ck_assert_uint_eq(r->binaries.n, 0);
	pol_free(&p);
}
END_TEST

START_TEST(rule_without_endpoint_rejected_at_its_header)
{
	ck_load_fails("[network.a]\nbinary = /usr/bin/curl\n[filesystem]\n",
		      "policy.ini:1: [network.a]: rule has no endpoint");
	ck_load_fails("\n[network.empty]\n", "policy.ini:2: [network.empty]: rule has no endpoint");
}
END_TEST

START_TEST(rule_names_are_checked)
{
	ck_load_fails("[network.a b]\n", "rule name may only hold");
	ck_load_fails("[network.abcdefghijabcdefghijabcdefghijabcdefghijab]\n",
		      "rule name is longer than 41 bytes");
	struct pol_policy p;
	ck_load_ok("[network.abcdefghijabcdefghijabcdefghijabcdefghija]\nendpoint = a.b:1\n", &p);
	ck_assert_uint_eq(strlen(p.rules[0].name), 41);
	pol_free(&p);
}
END_TEST

START_TEST(ports_must_be_1_to_65535)
{
	ck_load_fails("[network.a]\nendpoint = a.example.com:0\n",
		      "policy.ini:2: endpoint: port must be a number in 1..65535");
	ck_load_fails("[network.a]\nendpoint = a.example.com:65536\n",
		      "policy.ini:2: endpoint: port must be a number in 1..65535");
	ck_load_fails("[network.a]\nendpoint = a.example.com:https\n", "1..65535");
	ck_load_fails("[network.a]\nendpoint = a.example.com:443,\n", "1..65535");
	ck_load_fails("[network.a]\nendpoint = a.example.com:443,443\n",
		      "policy.ini:2: endpoint: duplicate port 443");
	ck_load_fails("[network.a]\nendpoint = a.example.com\n", "missing port");
	struct pol_policy p;
	ck_load_ok("[network.a]\nendpoint = a.example.com:1,65535\n", &p);
	ck_assert_uint_eq(p.rules[0].endpoints[0].ports[1], 65535);
	pol_free(&p);
}
END_TEST

START_TEST(hostless_endpoint_needs_allowed_ips)
{
	ck_load_fails("[network.a]\nbinary = /usr/bin/psql\nendpoint = :5432\n",
		      "policy.ini:3: endpoint: a hostless endpoint needs allowed_ips");
	struct pol_policy p;
	ck_load_ok("[network.a]\nendpoint = :5432\nallowed_ips = 10.0.0.0/8\n", &p);
	ck_assert_int_eq(p.rules[0].endpoints[0].kind, POL_HOST_NONE);
	ck_assert_ptr_null(p.rules[0].endpoints[0].host);
	ck_assert_uint_eq(p.rules[0].endpoints[0].n_allowed_ips, 1);
	pol_free(&p);
}
END_TEST

START_TEST(tld_wildcards_rejected)
{
	ck_load_fails("[network.a]\nendpoint = *.com:443\n",
		      "policy.ini:2: endpoint: TLD wildcard is not allowed");
	ck_load_fails("[network.a]\nendpoint = **.com:443\n", "TLD wildcard");
	ck_load_fails("[network.a]\nendpoint = api-*.com:443\n", "TLD wildcard");
	ck_load_fails("[network.a]\nendpoint = *:443\n", "would match every host");
	ck_load_fails("[network.a]\nendpoint = **:443\n", "would match every host");
}
END_TEST

START_TEST(glob_placement_rules)
{
	const char *good[] = {"*.example.com",	     "**.example.com",	"api-*.example.com",
			      "*-api-*.example.com", "a.*.example.com", "x.*.*.example.com"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(good); i++) {
		char buf[POL_HOST_MAX + 1];
		enum pol_host_kind kind;
		struct sv_err err = {0};
		ck_assert_msg(pol_host_canon(good[i], buf, sizeof(buf), &kind, &err) == 0, "%s: %s",
			      good[i], err.msg);
		ck_assert_int_eq(kind, POL_HOST_GLOB);
	}
	ck_load_fails("[network.a]\nendpoint = a**.example.com:443\n",
		      "'**' is only allowed as the whole first label");
	ck_load_fails("[network.a]\nendpoint = a.**.example.com:443\n", "must be a whole label");
	ck_load_fails("[network.a]\nendpoint = a.b*.example.com:443\n", "must be a whole label");
	ck_load_fails("[network.a]\nendpoint = api.example.*:443\n",
		      "a wildcard is not allowed in the last label");
}
END_TEST

START_TEST(host_syntax_checked)
{
	ck_load_fails("[network.a]\nendpoint = a..example.com:443\n", "empty label");
	ck_load_fails("[network.a]\nendpoint = example.com.:443\n", "empty label");
	ck_load_fails("[network.a]\nendpoint = exa mple.com:443\n", "invalid character in host");
	ck_load_fails("[network.a]\nendpoint = 300.1.1.1:443\n", "invalid IPv4 address");
	ck_load_fails("[network.a]\nendpoint = 010.1.1.1:443\n", "invalid IPv4 address");
	ck_load_fails("[network.a]\nendpoint = 0x7f.1:443\n", "invalid IPv4 address");
	ck_load_fails("[network.a]\nendpoint = 2130706433:443\n", "invalid IPv4 address");
	char label[80];
	memset(label, 'a', 64);
	strcpy(label + 64, ".com:1");
	char text[160];
	snprintf(text, sizeof(text), "[network.a]\nendpoint = %s\n", label);
	ck_load_fails(text, "label is longer than 63 bytes");
	char longhost[300] = "[network.a]\nendpoint = ";
	for (int i = 0; i < 5; i++)
		strcat(longhost, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
	strcat(longhost, "com:1\n");
	ck_load_fails(longhost, "host is longer than 253 bytes");
}
END_TEST

START_TEST(ipv6_endpoints_need_brackets)
{
	ck_load_fails("[network.a]\nendpoint = ::1:443\n",
		      "policy.ini:2: endpoint: an IPv6 address must be in brackets");
	ck_load_fails("[network.a]\nendpoint = [::1]443\n", "expected '[IPv6]:port'");
	ck_load_fails("[network.a]\nendpoint = [::zz]:443\n", "invalid IPv6 address");
	ck_load_fails("[network.a]\nendpoint = [10.0.0.1]:443\n", "brackets are for IPv6");
	struct pol_policy p;
	ck_load_ok("[network.a]\nendpoint = [0:0::1]:443,80\n", &p);
	ck_assert_str_eq(p.rules[0].endpoints[0].host, "::1");
	pol_free(&p);
}
END_TEST

START_TEST(allowed_ips_cidr_syntax_checked)
{
	ck_load_fails("[network.a]\nendpoint = a.b:1\nallowed_ips = 10.0.5.1/24\n",
		      "policy.ini:3: allowed_ips: host bits are set; did you mean '10.0.5.0/24'?");
	ck_load_fails("[network.a]\nendpoint = a.b:1\nallowed_ips = 10.0.0.0/33\n",
		      "prefix length must be 0..32");
	ck_load_fails("[network.a]\nendpoint = a.b:1\nallowed_ips = fd00::/129\n",
		      "prefix length must be 0..128");
	ck_load_fails("[network.a]\nendpoint = a.b:1\nallowed_ips = 10.0.0/8\n",
		      "invalid IPv4 address");
	ck_load_fails("[network.a]\nendpoint = a.b:1\nallowed_ips = [::1]\n", "invalid IPv6");
	ck_load_fails("[network.a]\nendpoint = a.b:1\nallowed_ips = 10.0.0.0/\n", "prefix length");
	struct pol_cidr c;
	ck_assert_int_eq(pol_cidr_parse("10.1.2.3", &c, NULL), 0);
	ck_assert_uint_eq(c.prefix, 32);
	ck_assert_int_eq(pol_cidr_parse("::1", &c, NULL), 0);
	ck_assert_uint_eq(c.prefix, 128);
	ck_assert_int_eq(pol_cidr_parse("0.0.0.0/0", &c, NULL), 0);
}
END_TEST

START_TEST(binary_paths_absolute_canonical_simple_globs)
{
	ck_load_fails("[network.a]\nendpoint = a.b:1\nbinary = curl\n",
		      "policy.ini:3: binary: binary path must be absolute");
	ck_load_fails("[network.a]\nendpoint = a.b:1\nbinary = /usr//bin/curl\n", "canonical");
	ck_load_fails("[network.a]\nendpoint = a.b:1\nbinary = /usr/bin/\n", "canonical");
	ck_load_fails("[network.a]\nendpoint = a.b:1\nbinary = /usr/./bin/x\n", "canonical");
	ck_load_fails("[network.a]\nendpoint = a.b:1\nbinary = /usr/lib/a**/x\n",
		      "'**' must be a whole component");
	ck_load_fails("[network.a]\nendpoint = a.b:1\nbinary = /usr/bin/python?\n",
		      "unsupported glob character '?'");
	ck_load_fails("[network.a]\nendpoint = a.b:1\nbinary = /usr/bin/{a,b}\n",
		      "unsupported glob character '{'");
	struct pol_policy p;
	ck_load_ok("[network.a]\nendpoint = a.b:1\nbinary = /usr/bin/python3*\n", &p);
	pol_free(&p);
}
END_TEST

static void ep_line(char *out, size_t i)
{
	sprintf(out, "endpoint = h%zu.example.com:%zu\n", i, i + 1);
}

static void bin_line(char *out, size_t i)
{
	sprintf(out, "binary = /b/%zu\n", i);
}

static void ip_line(char *out, size_t i)
{
	sprintf(out, "allowed_ips = 10.%zu.%zu.0/24\n", i / 256, i % 256);
}

static void rule_line(char *out, size_t i)
{
	sprintf(out, "[network.r%zu]\nendpoint = a.b:%zu\n", i, i + 1);
}

/* @head followed by @n lines made by @line. */
static char *repeat_lines(const char *head, void (*line)(char *out, size_t i), size_t n)
{
	char *s = malloc(strlen(head) + n * 64 + 1);
	size_t o = (size_t)sprintf(s, "%s", head);
	for (size_t i = 0; i < n; i++) {
		line(s + o, i);
		o += strlen(s + o);
	}
	return s;
}

START_TEST(network_limits_enforced_at_the_line)
{
	char *t = repeat_lines("[network.a]\n", ep_line, 257);
	ck_load_fails(t, "policy.ini:258: endpoint: too many in one rule (max 256)");
	free(t);
	t = repeat_lines("[network.a]\nendpoint = a.b:1\n", bin_line, 257);
	ck_load_fails(t, "policy.ini:259: binary: too many in one rule (max 256)");
	free(t);
	t = repeat_lines("[network.a]\nendpoint = a.b:1\n", ip_line, 257);
	ck_load_fails(t, "policy.ini:259: allowed_ips: too many in one rule (max 256)");
	free(t);
	t = repeat_lines("", rule_line, 257);
	ck_load_fails(t, "policy.ini:513: too many network rules (max 256)");
	free(t);
	char ports[512] = "[network.a]\nendpoint = a.b:1";
	for (int i = 2; i <= 65; i++)
		sprintf(ports + strlen(ports), ",%d", i);
	strcat(ports, "\n");
	ck_load_fails(ports, "policy.ini:2: endpoint: too many ports (max 64)");
}
END_TEST

START_TEST(endpoint_times_allowed_ips_is_bounded)
{
	/* 4 rules x 256 endpoints x 64 addresses = 65536 pairs is the most; one more fails */
	size_t cap = 8 * 1024 * 1024, o = 0;
	char *t = malloc(cap);
	for (int r = 0; r < 5; r++) {
		o += (size_t)sprintf(t + o, "[network.r%d]\n", r);
		for (int e = 0; e < 256; e++)
			o += (size_t)sprintf(t + o, "endpoint = h%d.example.com:443\n", e);
		for (int i = 0; i < (r < 4 ? 64 : 1); i++)
			o += (size_t)sprintf(t + o, "allowed_ips = 10.%d.%d.0/24\n", r, i);
	}
	ck_load_fails(t, "[network.r4]: endpoints x allowed_ips exceed 65536 entries in total");
	t[strstr(t, "[network.r4]") - t] = '\0';
	struct pol_policy p;
	ck_load_ok(t, &p);
	ck_assert_uint_eq(p.rules[3].endpoints[255].n_allowed_ips, 64);
	pol_free(&p);
	free(t);
}
END_TEST

/* --- files and the resolver ---------------------------------------------------------------- */

static char tmpdir[64];

static void tmp_setup(void)
{
	strcpy(tmpdir, "/tmp/test_policy.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tmp_teardown(void)
{
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp_path(char *buf, const char *rel)
{
	snprintf(buf, PATH_MAX, "%s%s", tmpdir, rel);
	return buf;
}

/* Create @rel under the temporary root: a directory if it ends in '/', else an empty file. */
static void mk(const char *rel)
{
	char path[PATH_MAX];
	tmp_path(path, rel);
	for (char *s = path + strlen(tmpdir) + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(path, 0755);
			*s = '/';
		}
	if (rel[strlen(rel) - 1] != '/') {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		ck_assert_int_ge(fd, 0);
		close(fd);
	}
}

static void write_file(const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f = fopen(tmp_path(path, rel), "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(load_file_reads_and_names_the_path)
{
	char path[PATH_MAX], want[PATH_MAX + 64];
	write_file("/p.ini", "[filesystem]\nread_only = /usr\nread_write = tmp\n");
	struct pol_policy p;
	struct sv_err err = {0};
	ck_assert_int_eq(pol_load_file(tmp_path(path, "/p.ini"), &p, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: read_write: path must be absolute (got 'tmp')", path);
	ck_assert_str_eq(err.msg, want);
	ck_assert(policy_is_empty(&p));

	write_file("/p.ini", "[filesystem]\nread_only = /usr\n");
	ck_assert_int_eq(pol_load_file(path, &p, &err), 0);
	ck_assert_str_eq(p.source, path);
	ck_assert_str_eq(p.read_only.v[0], "/usr");
	pol_free(&p);
}
END_TEST

START_TEST(load_file_rejects_missing_non_regular_and_oversized)
{
	char path[PATH_MAX];
	struct pol_policy p;
	struct sv_err err = {0};
	ck_assert_int_eq(pol_load_file(tmp_path(path, "/absent.ini"), &p, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "absent.ini: cannot open policy file"));
	mk("/dir.ini/");
	ck_assert_int_eq(pol_load_file(tmp_path(path, "/dir.ini"), &p, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
	ck_assert_int_eq(mkfifo(tmp_path(path, "/fifo.ini"), 0600), 0);
	ck_assert_int_eq(pol_load_file(path, &p, &err), -EINVAL); /* does not block on open */
	int fd = open(tmp_path(path, "/big.ini"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, POL_FILE_MAX + 1), 0);
	close(fd);
	ck_assert_int_eq(pol_load_file(path, &p, &err), -EFBIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "larger than 1048576 bytes"));
	ck_assert(policy_is_empty(&p));
}
END_TEST

START_TEST(load_file_follows_symlinks)
{
	char path[PATH_MAX], link[PATH_MAX];
	write_file("/real.ini", "[landlock]\ncompatibility = hard_requirement\n");
	ck_assert_int_eq(symlink(tmp_path(path, "/real.ini"), tmp_path(link, "/link.ini")), 0);
	struct pol_policy p;
	ck_assert_int_eq(pol_load_file(link, &p, NULL), 0);
	ck_assert_int_eq(p.landlock_compat, POL_HARD_REQUIREMENT);
	pol_free(&p);
}
END_TEST

START_TEST(explicit_policy_file_must_exist)
{
	char path[PATH_MAX];
	mk("/etc/openshell/");
	write_file("/etc/openshell/policy.ini", "[landlock]\ncompatibility = hard_requirement\n");
	struct pol_policy p;
	struct sv_err err = {0};
	ck_assert_int_eq(pol_load(tmp_path(path, "/missing.ini"), tmpdir, &p, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "missing.ini"));
	ck_assert(policy_is_empty(&p));
}
END_TEST

START_TEST(default_file_used_only_when_present)
{
	char def[PATH_MAX];
	struct pol_policy p;
	struct sv_err err = {0};
	/* absent: the restrictive default */
	ck_assert_int_eq(pol_load(NULL, tmpdir, &p, &err), 0);
	ck_assert_str_eq(p.source, "default");
	ck_assert_uint_eq(p.read_only.n, 7);
	pol_free(&p);
	/* present: loaded; an empty explicit path counts as none */
	mk("/etc/openshell/");
	write_file("/etc/openshell/policy.ini", "[filesystem]\nread_only = /opt\n");
	ck_assert_int_eq(pol_load("", tmpdir, &p, &err), 0);
	ck_assert_str_eq(p.source, tmp_path(def, "/etc/openshell/policy.ini"));
	ck_assert_uint_eq(p.read_only.n, 1);
	pol_free(&p);
	/* present but invalid: an error, never a silent fallback */
	write_file("/etc/openshell/policy.ini", "[filesystem]\nread_write = /\n");
	ck_assert_int_lt(pol_load(NULL, tmpdir, &p, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "policy.ini:2: read_write"));
	ck_assert(policy_is_empty(&p));
}
END_TEST

START_TEST(explicit_file_wins_over_default)
{
	char path[PATH_MAX];
	mk("/etc/openshell/");
	write_file("/etc/openshell/policy.ini", "[filesystem]\nread_only = /default\n");
	write_file("/mine.ini", "[filesystem]\nread_only = /mine\n");
	struct pol_policy p;
	ck_assert_int_eq(pol_load(tmp_path(path, "/mine.ini"), tmpdir, &p, NULL), 0);
	ck_assert_str_eq(p.read_only.v[0], "/mine");
	pol_free(&p);
}
END_TEST

/* --- baseline enrichment (§3.3) ------------------------------------------------------------ */

static struct pol_policy fs_policy(const char *text)
{
	struct pol_policy p;
	struct sv_err err = {0};
	ck_assert_msg(load(text, &p, &err) == 0, "%s", err.msg);
	return p;
}

START_TEST(enrich_adds_only_existing_proxy_paths)
{
	mk("/usr/");
	mk("/etc/");
	mk("/proc/");
	mk("/tmp/");
	struct pol_policy p = fs_policy("");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, POL_ENRICH_PROXY, NULL), 4);
	ck_assert_uint_eq(p.read_only.n, 3);
	ck_assert_str_eq(p.read_only.v[0], "/usr");
	ck_assert_str_eq(p.read_only.v[1], "/etc");
	ck_assert_str_eq(p.read_only.v[2], "/proc");
	ck_assert(!pol_strv_contains(&p.read_only, "/lib")); /* absent in the image */
	ck_assert_uint_eq(p.read_write.n, 1);
	ck_assert_str_eq(p.read_write.v[0], "/tmp");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, POL_ENRICH_PROXY, NULL), 0); /* idempotent */
	pol_free(&p);
}
END_TEST

/* The sandbox CA directory the agent's trust-store variables point at (l7 contract §1.3) is
 * read-only in the proxy baseline, wherever OPENSHELL_PROXY_TLS_DIR puts it. */
START_TEST(enrich_adds_the_tls_ca_directory_read_only)
{
	mk("/run/");
	mk("/run/ca-here/");
	setenv("OPENSHELL_PROXY_TLS_DIR", "/run/ca-here", 1);
	struct pol_policy p = fs_policy("");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, POL_ENRICH_PROXY, NULL), 1);
	ck_assert(pol_strv_contains(&p.read_only, "/run/ca-here"));
	pol_free(&p);
	p = fs_policy("");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, 0, NULL), 0); /* proxy baseline only */
	pol_free(&p);
	unsetenv("OPENSHELL_PROXY_TLS_DIR");
	p = fs_policy("");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, POL_ENRICH_PROXY, NULL), 0); /* default: absent */
	ck_assert(!pol_strv_contains(&p.read_only, "/run/ca-here"));
	pol_free(&p);
}
END_TEST

START_TEST(enrich_without_proxy_flag_or_gpu_changes_nothing)
{
	mk("/usr/");
	mk("/tmp/");
	mk("/dev/nvidia0"); /* a device node alone does not mean a GPU runtime */
	struct pol_policy p = fs_policy("[filesystem]\nread_only = /opt\n");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, 0, NULL), 0);
	ck_assert_uint_eq(p.read_only.n, 1);
	ck_assert_uint_eq(p.read_write.n, 0);
	pol_free(&p);
}
END_TEST

START_TEST(enrich_adds_real_bin_sbin_lib64_read_only_but_not_symlinks_into_usr)
{
	/* Not merged-/usr (Alpine, busybox): /bin and /sbin are real directories. */
	mk("/usr/bin/");
	mk("/bin/");
	mk("/sbin/");
	char path[PATH_MAX];
	ck_assert_int_eq(symlink("usr/lib", tmp_path(path, "/lib64")), 0); /* merged: skipped */
	struct pol_policy p = fs_policy("[filesystem]\nread_only = /opt\n");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, 0, NULL), 2); /* whatever the flags */
	ck_assert(pol_strv_contains(&p.read_only, "/bin"));
	ck_assert(pol_strv_contains(&p.read_only, "/sbin"));
	ck_assert(!pol_strv_contains(&p.read_only, "/lib64"));
	ck_assert_int_eq(pol_enrich(&p, tmpdir, POL_ENRICH_PROXY, NULL), 1); /* + /usr only */
	pol_free(&p);
	/* An explicit read_write choice is not narrowed. */
	p = fs_policy("[filesystem]\nread_write = /bin\n");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, 0, NULL), 1);
	ck_assert(!pol_strv_contains(&p.read_only, "/bin"));
	pol_free(&p);
}
END_TEST

START_TEST(enrich_never_removes_user_paths)
{
	mk("/usr/");
	struct pol_policy p = fs_policy("[filesystem]\nread_only = /opt/tools\n"
					"read_write = /sandbox/cache\n");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, POL_ENRICH_PROXY, NULL), 1);
	ck_assert_str_eq(p.read_only.v[0], "/opt/tools"); /* kept, though absent */
	ck_assert_str_eq(p.read_only.v[1], "/usr");
	ck_assert_str_eq(p.read_write.v[0], "/sandbox/cache");
	pol_free(&p);
}
END_TEST

START_TEST(enrich_does_not_add_read_only_what_is_read_write)
{
	mk("/usr/");
	mk("/etc/");
	struct pol_policy p = fs_policy("[filesystem]\nread_write = /usr\n");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, POL_ENRICH_PROXY, NULL), 1);
	ck_assert(!pol_strv_contains(&p.read_only, "/usr"));
	ck_assert(pol_strv_contains(&p.read_only, "/etc"));
	ck_assert_uint_eq(p.read_write.n, 1);
	pol_free(&p);
}
END_TEST

START_TEST(enrich_keeps_explicit_read_only_tmp_read_only)
{
	mk("/tmp/");
	struct pol_policy p = fs_policy("[filesystem]\nread_only = /tmp\n");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, POL_ENRICH_PROXY, NULL), 0);
	ck_assert(pol_strv_contains(&p.read_only, "/tmp"));
	ck_assert(!pol_strv_contains(&p.read_write, "/tmp"));
	pol_free(&p);
}
END_TEST

START_TEST(enrich_gpu_baseline_when_nvidiactl_exists)
{
	mk("/dev/nvidiactl");
	mk("/dev/nvidia-uvm");
	mk("/dev/nvidia0");
	mk("/dev/nvidia12");
	mk("/dev/nvidia2");
	mk("/dev/nvidia");	 /* not a per-GPU node */
	mk("/dev/nvidia-caps/"); /* neither */
	mk("/dev/nvidia1x");	 /* neither */
	mk("/proc/");
	mk("/usr/lib/wsl/");
	mk("/tmp/");
	struct pol_policy p =
	    fs_policy("[filesystem]\nread_only = /proc\nread_only = /dev/nvidia2\n");
	int n = pol_enrich(&p, tmpdir, 0, NULL);
	const char *rw[] = {"/dev/nvidiactl", "/dev/nvidia-uvm", "/proc", "/dev/nvidia0",
			    "/dev/nvidia12"};
	ck_assert_uint_eq(p.read_write.n, SV_ARRAY_SIZE(rw));
	for (size_t i = 0; i < SV_ARRAY_SIZE(rw); i++)
		ck_assert_str_eq(p.read_write.v[i], rw[i]);
	/* /proc promoted from read-only; an explicit read-only device node is not */
	ck_assert(!pol_strv_contains(&p.read_only, "/proc"));
	ck_assert(pol_strv_contains(&p.read_only, "/dev/nvidia2"));
	ck_assert(pol_strv_contains(&p.read_only, "/usr/lib/wsl"));
	ck_assert(!pol_strv_contains(&p.read_write, "/tmp")); /* no proxy flag */
	ck_assert_int_eq(n, 6);
	pol_free(&p);
}
END_TEST

START_TEST(enrich_gpu_with_proxy_puts_proc_read_write_only)
{
	mk("/dev/dxg");
	mk("/proc/");
	mk("/usr/");
	struct pol_policy p = fs_policy("");
	ck_assert_int_eq(pol_enrich(&p, tmpdir, POL_ENRICH_PROXY, NULL), 3);
	ck_assert(!pol_strv_contains(&p.read_only, "/proc"));
	ck_assert(pol_strv_contains(&p.read_write, "/proc"));
	ck_assert(pol_strv_contains(&p.read_write, "/dev/dxg"));
	ck_assert(pol_strv_contains(&p.read_only, "/usr"));
	pol_free(&p);
}
END_TEST

/* --- the text view ------------------------------------------------------------------------- */

static const char full_policy[] = "[filesystem]\n"
				  "include_workdir = false\n"
				  "read_only = /usr\n"
				  "read_write = /tmp\n"
				  "[landlock]\n"
				  "compatibility = hard_requirement\n"
				  "[process]\n"
				  "run_as_user = sandbox\n"
				  "run_as_group = 1000\n"
				  "[network.api]\n"
				  "endpoint = api.example.com:443,8443\n"
				  "endpoint = [::1]:80\n"
				  "endpoint = :5432\n"
				  "binary = /usr/bin/curl\n"
				  "allowed_ips = 10.0.0.0/8\n";

START_TEST(describe_output_reloads_to_the_same_policy)
{
	struct pol_policy p = fs_policy(full_policy), q;
	char *text = NULL, *again = NULL;
	ck_assert_int_eq(pol_describe(&p, &text), 0);
	ck_assert_ptr_nonnull(strstr(text, "include_workdir = false\n"));
	ck_assert_ptr_nonnull(strstr(text, "compatibility = hard_requirement\n"));
	ck_assert_ptr_nonnull(strstr(text, "endpoint = api.example.com:443,8443\n"));
	ck_assert_ptr_nonnull(strstr(text, "endpoint = [::1]:80\n"));
	ck_assert_ptr_nonnull(strstr(text, "endpoint = :5432\n"));
	ck_assert_ptr_nonnull(strstr(text, "allowed_ips = 10.0.0.0/8\n"));
	ck_assert_ptr_nonnull(strstr(text, "run_as_group = 1000\n"));
	struct sv_err err = {0};
	ck_assert_msg(pol_load_buffer("described", text, strlen(text), &q, &err) == 0, "%s",
		      err.msg);
	ck_assert_int_eq(pol_describe(&q, &again), 0);
	ck_assert_str_eq(strchr(text, '\n'), strchr(again, '\n')); /* all but the source line */
	free(text);
	free(again);
	pol_free(&p);
	pol_free(&q);
}
END_TEST

START_TEST(describe_says_when_egress_is_denied_and_identity_omitted)
{
	struct pol_policy p;
	char *text = NULL;
	ck_assert_int_eq(pol_set_default(&p, NULL), 0);
	ck_assert_int_eq(pol_describe(&p, &text), 0);
	ck_assert_ptr_nonnull(strstr(text, "(source: default)"));
	ck_assert_ptr_nonnull(strstr(text, "all egress is denied"));
	ck_assert_ptr_nonnull(strstr(text, "run_as_user omitted"));
	free(text);
	pol_free(&p);
}
END_TEST

/* --- the model's own validator ------------------------------------------------------------- */

START_TEST(validate_rejects_what_a_loader_must_never_produce)
{
	struct pol_policy p;
	struct sv_err err = {0};
	ck_assert_int_eq(pol_set_default(&p, NULL), 0);
	ck_assert_int_eq(pol_strv_push(&p.read_write, "/"), 0);
	ck_assert_int_lt(pol_validate(&p, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "read_write: read-write '/' is overly broad"));
	pol_free(&p);

	p = fs_policy("[network.a]\nendpoint = a.example.com:443\n");
	p.rules[0].endpoints[0].ports[0] = 0;
	ck_assert_int_lt(pol_validate(&p, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "network rule 'a': endpoint 1: port"));
	pol_free(&p);

	pol_init(&p);
	ck_assert_int_eq(pol_strv_push(&p.read_only, "/usr/"), 0); /* loaders store normalised */
	ck_assert_int_lt(pol_validate(&p, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "read_only: path is not normalised"));
	pol_free(&p);

	p = fs_policy("[process]\nrun_as_user = sandbox\n");
	p.run_as_user[0] = '0';
	strcpy(p.run_as_user, "0");
	ck_assert_int_lt(pol_validate(&p, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "run_as_user: must not be root"));
	pol_free(&p);
}
END_TEST

/* Break one invariant of a valid loaded policy and expect pol_validate to name it. */
static void ck_invalid_after(void (*breaker)(struct pol_policy *p), const char *want)
{
	struct pol_policy p =
	    fs_policy("[filesystem]\nread_only = /usr\n"
		      "[network.a]\nendpoint = a.example.com:443\n"
		      "endpoint = :80\nallowed_ips = 10.0.0.0/8\nbinary = /bin/x\n"
		      "[network.b]\nendpoint = b.example.com:443\n");
	struct sv_err err = {0};
	ck_assert_int_eq(pol_validate(&p, &err), 0);
	breaker(&p);
	ck_assert_int_lt(pol_validate(&p, &err), 0);
	ck_assert_msg(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
	pol_free(&p);
}

static void upper_host(struct pol_policy *p)
{
	p->rules[0].endpoints[0].host[0] = 'A';
}

static void host_on_hostless(struct pol_policy *p)
{
	p->rules[0].endpoints[1].host = strdup("x.example.com");
}

static void no_ips_on_hostless(struct pol_policy *p)
{
	p->rules[0].endpoints[1].n_allowed_ips = 0;
}

static void dup_rule_name(struct pol_policy *p)
{
	p->rules[1].name[0] = 'a';
}

static void host_bits(struct pol_policy *p)
{
	p->rules[0].endpoints[0].allowed_ips[0].addr[3] = 1;
}

static void dup_port(struct pol_policy *p)
{
	struct pol_endpoint *e = &p->rules[0].endpoints[0];
	uint16_t *ports = realloc(e->ports, 2 * sizeof(*ports));
	ports[1] = ports[0];
	e->ports = ports;
	e->n_ports = 2;
}

static void bad_binary(struct pol_policy *p)
{
	p->rules[0].binaries.v[0][0] = 'b';
}

static void no_endpoint(struct pol_policy *p)
{
	struct pol_endpoint *e = &p->rules[1].endpoints[0];
	free(e->host);
	free(e->ports);
	free(e->allowed_ips);
	p->rules[1].n_endpoints = 0;
}

static void dup_path(struct pol_policy *p)
{
	pol_strv_push(&p->read_only, "/usr");
}

static void bad_version(struct pol_policy *p)
{
	p->version = 2;
}

START_TEST(validate_checks_network_and_model_invariants)
{
	ck_invalid_after(upper_host, "network rule 'a': endpoint 1: host is not canonical");
	ck_invalid_after(host_on_hostless, "endpoint 2: hostless endpoint has a host");
	ck_invalid_after(no_ips_on_hostless, "endpoint 2: hostless endpoint needs allowed_ips");
	ck_invalid_after(dup_rule_name, "duplicate network rule 'a'");
	ck_invalid_after(host_bits, "allowed_ips entry 0 is invalid");
	ck_invalid_after(dup_port, "duplicate port 443");
	ck_invalid_after(bad_binary, "binary: binary path must be absolute");
	ck_invalid_after(no_endpoint, "network rule 'b': rule has no endpoint");
	ck_invalid_after(dup_path, "read_only: duplicate path '/usr'");
	ck_invalid_after(bad_version, "unsupported policy version 2");
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("model");
	tcase_add_test(tc, restrictive_default_matches_contract);
	tcase_add_test(tc, empty_file_gives_empty_policy_with_workdir);
	tcase_add_test(tc, relative_path_rejected_with_file_and_line);
	tcase_add_test(tc, dotdot_component_rejected_but_dotdot_in_name_allowed);
	tcase_add_test(tc, path_longer_than_4096_bytes_rejected);
	tcase_add_test(tc, at_most_256_paths_in_total);
	tcase_add_test(tc, read_write_root_rejected_read_only_root_allowed);
	tcase_add_test(tc, fs_add_after_loading_is_not_capped);
	tcase_add_test(tc, paths_are_normalised_and_duplicates_collapsed);
	tcase_add_test(tc, path_in_both_lists_rejected);
	tcase_add_test(tc, control_character_in_path_rejected_by_model);
	tcase_add_test(tc, repeatable_keys_accumulate_in_order);
	tcase_add_test(tc, include_workdir_parses_booleans_strictly);
	tcase_add_test(tc, compatibility_accepts_only_the_two_modes);
	tcase_add_test(tc, identity_sandbox_names_and_numbers_accepted);
	tcase_add_test(tc, identity_root_rejected_by_name_and_number);
	tcase_add_test(tc, identity_number_range_is_1_to_4294967294);
	tcase_add_test(tc, identity_names_must_be_portable);
	tcase_add_test(tc, omitted_identity_stays_null);
	tcase_add_test(tc, validate_rejects_what_a_loader_must_never_produce);
	tcase_add_test(tc, validate_checks_network_and_model_invariants);
	suite_add_tcase(s, tc);

	tc = tcase_create("ini");
	tcase_add_test(tc, unknown_section_rejected_even_when_empty);
	tcase_add_test(tc, unknown_key_rejected);
	tcase_add_test(tc, key_outside_section_rejected);
	tcase_add_test(tc, duplicate_scalar_key_rejected_naming_both_lines);
	tcase_add_test(tc, duplicate_section_rejected);
	tcase_add_test(tc, malformed_lines_rejected_with_line);
	tcase_add_test(tc, hash_inline_is_not_a_comment_and_is_rejected);
	tcase_add_test(tc, line_longer_than_4093_bytes_rejected_not_truncated);
	tcase_add_test(tc, crlf_line_endings_accepted);
	tcase_add_test(tc, nul_and_control_bytes_rejected);
	tcase_add_test(tc, buffer_larger_than_1_mib_rejected);
	tcase_add_test(tc, describe_output_reloads_to_the_same_policy);
	tcase_add_test(tc, describe_says_when_egress_is_denied_and_identity_omitted);
	suite_add_tcase(s, tc);

	tc = tcase_create("network");
	tcase_add_test(tc, network_sections_parse_into_rules);
	tcase_add_test(tc, rule_without_endpoint_rejected_at_its_header);
	tcase_add_test(tc, rule_names_are_checked);
	tcase_add_test(tc, ports_must_be_1_to_65535);
	tcase_add_test(tc, hostless_endpoint_needs_allowed_ips);
	tcase_add_test(tc, tld_wildcards_rejected);
	tcase_add_test(tc, glob_placement_rules);
	tcase_add_test(tc, host_syntax_checked);
	tcase_add_test(tc, ipv6_endpoints_need_brackets);
	tcase_add_test(tc, allowed_ips_cidr_syntax_checked);
	tcase_add_test(tc, binary_paths_absolute_canonical_simple_globs);
	tcase_add_test(tc, network_limits_enforced_at_the_line);
	tcase_add_test(tc, endpoint_times_allowed_ips_is_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, load_file_reads_and_names_the_path);
	tcase_add_test(tc, load_file_rejects_missing_non_regular_and_oversized);
	tcase_add_test(tc, load_file_follows_symlinks);
	tcase_add_test(tc, explicit_policy_file_must_exist);
	tcase_add_test(tc, default_file_used_only_when_present);
	tcase_add_test(tc, explicit_file_wins_over_default);
	suite_add_tcase(s, tc);

	tc = tcase_create("enrich");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, enrich_adds_only_existing_proxy_paths);
	tcase_add_test(tc, enrich_adds_the_tls_ca_directory_read_only);
	tcase_add_test(tc, enrich_without_proxy_flag_or_gpu_changes_nothing);
	tcase_add_test(tc, enrich_never_removes_user_paths);
	tcase_add_test(tc, enrich_does_not_add_read_only_what_is_read_write);
	tcase_add_test(tc, enrich_keeps_explicit_read_only_tmp_read_only);
	tcase_add_test(tc, enrich_gpu_baseline_when_nvidiactl_exists);
	tcase_add_test(tc, enrich_gpu_with_proxy_puts_proc_read_write_only);
	tcase_add_test(tc, enrich_adds_real_bin_sbin_lib64_read_only_but_not_symlinks_into_usr);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
