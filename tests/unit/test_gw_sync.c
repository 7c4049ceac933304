/* Unit tests for the UpdateConfig sync and the settings (session/gateway/gw_sync.c,
 * gw_settings.c, gw_config.c): against the real test gateway (tests/gateway/gateway.py,
 * Debian's python3-grpcio) run as a subprocess in its command mode, under ASan/UBSan, and on
 * hand-built responses for the settings and the provider-rule stripping.
 *
 * What the gateway received is read from its JSON-lines event file.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "openshell.pb-c.h"
#include "sandbox.pb-c.h"
#include "session/gateway/gw_client.h"
#include "session/gateway/gw_policy.h"
#include "session/gateway/gw_sync.h"
#include "session/session.h"
#include "supervisor/log.h"
#include "supervisor/loop.h"
#include "tests/unit/loop_wait.h"

#define GATEWAY_PY "tests/gateway/gateway.py"
#define SANDBOX	   "sb-sync"
#define NAME	   "sb-sync-name"
#define TOKEN	   "sync-token"

/* ------------------------------------------------------------------ the gateway subprocess */

static struct {
	pid_t pid;
	int in, out;
	char endpoint[64];
	char dir[64];
	char events[96];
} G;

static void read_line(int fd, char *buf, size_t size)
{
	size_t got = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (got + 1 < size) {
		ck_assert_msg(poll(&p, 1, 20000) == 1, "the test gateway did not answer");
		char c;
		ck_assert_msg(read(fd, &c, 1) == 1, "the test gateway exited");
		if (c == '\n')
			break;
		buf[got++] = c;
	}
	buf[got] = '\0';
}

static void gw_start(void)
{
	int in[2], out[2];
	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	snprintf(G.dir, sizeof(G.dir), "/tmp/test-gw-sync-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(G.dir));
	snprintf(G.events, sizeof(G.events), "%s/events.jsonl", G.dir);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl("/usr/bin/python3", "python3", GATEWAY_PY, "--sandbox-id", SANDBOX,
		      "--events", G.events, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	G.pid = pid;
	G.in = in[1];
	G.out = out[0];
	char line[256];
	read_line(G.out, line, sizeof(line));
	const char *e = strstr(line, "\"endpoint\": \"");
	ck_assert_msg(e != NULL, "no endpoint in '%s'", line);
	e += strlen("\"endpoint\": \"");
	size_t n = strcspn(e, "\"");
	ck_assert_uint_lt(n, sizeof(G.endpoint));
	memcpy(G.endpoint, e, n);
	G.endpoint[n] = '\0';
}

static void gw_stop(void)
{
	close(G.in);
	close(G.out);
	kill(G.pid, SIGKILL);
	waitpid(G.pid, NULL, 0);
	unlink(G.events);
	rmdir(G.dir);
}

static void gw_cmd(const char *json)
{
	char ans[512];
	size_t n = strlen(json);
	ck_assert_int_eq(write(G.in, json, n), (ssize_t)n);
	ck_assert_int_eq(write(G.in, "\n", 1), 1);
	read_line(G.out, ans, sizeof(ans));
	ck_assert_msg(strstr(ans, "\"ok\": true"), "gateway refused %s: %s", json, ans);
}

/* How many event lines have every one of @a and @b (NULL: not checked). */
static int events_count(const char *a, const char *b)
{
	FILE *f = fopen(G.events, "re");
	if (!f)
		return 0;
	static char line[65536];
	int n = 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, a) && (!b || strstr(line, b));
	fclose(f);
	return n;
}

static bool events_have_v(void *needle)
{
	return events_count(needle, NULL) > 0;
}

/* ------------------------------------------------------------------ fixtures */

static struct gw_client *client;
static char root[64]; /* a fake image root: what enrichment may find */

static void setup(void)
{
	sv_log_setup(SV_LOG_ERROR, SV_LOG_TEXT);
	gw_start();
	setenv("OPENSHELL_SANDBOX_TOKEN", TOKEN, 1);
	setenv(GW_POLICY_POLL_ENV, "1", 1);
	struct sv_err err = {0};
	ck_assert_msg(gw_client_new(G.endpoint, SANDBOX, &client, &err) == 0, "%s", err.msg);
	snprintf(root, sizeof(root), "/tmp/test-gw-sync-root-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void)
{
	gw_client_free(client);
	client = NULL;
	unsetenv("OPENSHELL_SANDBOX_TOKEN");
	gw_stop();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
}

static void root_dir(const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s%s", root, rel);
	ck_assert_int_eq(mkdir(p, 0755), 0);
}

#define POLICY_A                                                                          \
	"{\"filesystem\": {\"read_only\": [\"/usr\"]}, \"network_policies\": {\"a\": "    \
	"{\"endpoints\": [{\"host\": \"a.example\", \"port\": 443}]}, \"_provider_gh\": " \
	"{\"endpoints\": [{\"host\": \"api.github.com\", \"port\": 443}]}}}"

/* ------------------------------------------------------------------ the sync */

START_TEST(no_gateway_policy_syncs_the_discovered_one_then_refetches_and_acknowledges_it)
{
	/* No policy at the gateway, none on this host's /etc/openshell: the restrictive default
	 * is what is discovered, synced under the sandbox's name, and re-fetched. */
	const struct gw_fetch_opts o = {.sandbox_name = NAME, .root = root};
	struct pol_policy p;
	struct gw_policy_src *src = NULL;
	struct sv_err err = {0};
	ck_assert_msg(gw_config_fetch(client, &o, &p, &src, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(events_count("\"rpc\": \"UpdateConfig\", \"type\": \"message\"",
				      "\"name\": \"" NAME "\""),
			 1);
	ck_assert_int_eq(
	    events_count("\"rpc\": \"UpdateConfig\", \"type\": \"message\"", "\"/dev/urandom\""),
	    1); /* the default's read_only list went out */
	/* fetch, then the re-fetch after the sync */
	ck_assert_int_eq(events_count("\"rpc\": \"GetSandboxConfig\", \"type\": \"call\"", NULL),
			 2);
	ck_assert(pol_strv_contains(&p.read_only, "/dev/urandom"));
	ck_assert_uint_eq(p.n_rules, 0);

	/* The re-fetched revision is the one acknowledged, and the poll sees no change. */
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, &err), 0);
	ck_assert_int_eq(gw_client_attach(client, &loop, &err), 0);
	const struct gw_policy_sink sink = {0};
	ck_assert_int_eq(gw_policy_poll_start(src, &loop, &sink, &err), 0);
	ck_assert(run_until(&loop, events_have_v,
			    "\"version\": 1, \"status\": \"POLICY_STATUS_LOADED\"", 5000));
	/* Two polls later (1 s each) there is still only the one sync. */
	ck_assert(!run_until(&loop, events_have_v, "no such event", 2200));
	ck_assert_int_eq(events_count("\"rpc\": \"UpdateConfig\", \"type\": \"call\"", NULL), 1);
	gw_policy_src_free(src);
	gw_client_detach(client);
	sv_loop_close(&loop);
	pol_free(&p);
}
END_TEST

START_TEST(no_sandbox_name_is_an_error_and_nothing_is_synced)
{
	const struct gw_fetch_opts o = {.sandbox_name = NULL, .root = root};
	struct pol_policy p;
	struct gw_policy_src *src = NULL;
	struct sv_err err = {0};
	ck_assert_int_lt(gw_config_fetch(client, &o, &p, &src, &err), 0);
	ck_assert_msg(strstr(err.msg, "OPENSHELL_SANDBOX"), "%s", err.msg);
	ck_assert_ptr_null(src);
	ck_assert_int_eq(events_count("\"rpc\": \"UpdateConfig\"", NULL), 0);
}
END_TEST

START_TEST(a_refused_sync_of_the_discovered_policy_fails_the_start_at_once)
{
	gw_cmd("{\"cmd\": \"set\", \"name\": \"sandbox_name\", \"value\": \"someone-else\"}");
	const struct gw_fetch_opts o = {.sandbox_name = NAME, .root = root};
	struct pol_policy p;
	struct gw_policy_src *src = NULL;
	struct sv_err err = {0};
	ck_assert_int_lt(gw_config_fetch(client, &o, &p, &src, &err), 0);
	ck_assert_msg(strstr(err.msg, "UpdateConfig failed after 1 attempt: NOT_FOUND"), "%s",
		      err.msg);
	ck_assert_ptr_null(src);
}
END_TEST

START_TEST(an_enriched_gateway_policy_is_synced_without_provider_rules_and_refetched)
{
	root_dir("/lib");
	root_dir("/etc");
	gw_cmd("{\"cmd\": \"set_policy\", \"policy\": " POLICY_A "}");
	const struct gw_fetch_opts o = {.sandbox_name = NAME, .root = root};
	struct pol_policy p;
	struct gw_policy_src *src = NULL;
	struct sv_err err = {0};
	ck_assert_msg(gw_config_fetch(client, &o, &p, &src, &err) == 0, "%s", err.msg);
	const char *upd = "\"rpc\": \"UpdateConfig\", \"type\": \"message\"";
	ck_assert_int_eq(events_count(upd, NULL), 1);
	ck_assert_int_eq(events_count(upd, "\"/lib\""), 1); /* the proxy baseline that exists */
	ck_assert_int_eq(events_count(upd, "\"/etc\""), 1);
	ck_assert_int_eq(events_count(upd, "\"/proc\""), 0); /* absent under the root */
	ck_assert_int_eq(events_count(upd, "_provider_gh"), 0);
	ck_assert_int_eq(events_count(upd, "\"a.example\""), 1);
	/* What is enforced is the re-fetched policy: version 2. */
	ck_assert(pol_strv_contains(&p.read_only, "/lib"));
	ck_assert_uint_eq(p.n_rules, 1);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, &err), 0);
	ck_assert_int_eq(gw_client_attach(client, &loop, &err), 0);
	const struct gw_policy_sink sink = {0};
	ck_assert_int_eq(gw_policy_poll_start(src, &loop, &sink, &err), 0);
	ck_assert(run_until(&loop, events_have_v,
			    "\"version\": 2, \"status\": \"POLICY_STATUS_LOADED\"", 5000));
	ck_assert_int_eq(events_count("\"version\": 1, \"status\"", NULL), 0);
	gw_policy_src_free(src);
	gw_client_detach(client);
	sv_loop_close(&loop);
	pol_free(&p);
}
END_TEST

START_TEST(an_enriched_policy_whose_sync_fails_keeps_the_fetched_one)
{
	root_dir("/lib");
	gw_cmd("{\"cmd\": \"set\", \"name\": \"sandbox_name\", \"value\": \"someone-else\"}");
	gw_cmd("{\"cmd\": \"set_policy\", \"policy\": " POLICY_A "}");
	const struct gw_fetch_opts o = {.sandbox_name = NAME, .root = root};
	struct pol_policy p;
	struct gw_policy_src *src = NULL;
	struct sv_err err = {0};
	/* Best effort: the start goes on with the gateway's policy as fetched (the sandbox
	 * enriches it locally all the same). */
	ck_assert_msg(gw_config_fetch(client, &o, &p, &src, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(events_count("\"rpc\": \"UpdateConfig\", \"type\": \"call\"", NULL), 1);
	ck_assert_uint_eq(p.n_rules, 2);
	gw_policy_src_free(src);
	pol_free(&p);
}
END_TEST

/* ------------------------------------------------------------------ settings */

static bool ocsf_on(void *arg)
{
	(void)arg;
	return sv_log_ocsf_json_enabled() && gw_agent_proposals_enabled();
}

static bool ocsf_off(void *arg)
{
	(void)arg;
	return !sv_log_ocsf_json_enabled();
}

START_TEST(the_poll_switches_settings_live_and_an_unchanged_revision_does_nothing)
{
	gw_cmd("{\"cmd\": \"set_policy\", \"policy\": {\"filesystem\": {\"read_only\": "
	       "[\"/usr\"]}}}");
	const struct gw_fetch_opts o = {.sandbox_name = NAME, .root = root};
	struct pol_policy p;
	struct gw_policy_src *src = NULL;
	struct sv_err err = {0};
	ck_assert_msg(gw_config_fetch(client, &o, &p, &src, &err) == 0, "%s", err.msg);
	ck_assert(!sv_log_ocsf_json_enabled());
	ck_assert(!gw_agent_proposals_enabled());
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, &err), 0);
	ck_assert_int_eq(gw_client_attach(client, &loop, &err), 0);
	const struct gw_policy_sink sink = {0};
	ck_assert_int_eq(gw_policy_poll_start(src, &loop, &sink, &err), 0);
	gw_cmd("{\"cmd\": \"set\", \"name\": \"settings\", \"value\": {\"ocsf_json_enabled\": "
	       "true, \"agent_policy_proposals_enabled\": true}}");
	ck_assert_msg(run_until(&loop, ocsf_on, NULL, 5000), "the settings were not applied");
	/* The gateway changes a setting but not config_revision: nothing happens. */
	gw_cmd("{\"cmd\": \"set\", \"name\": \"config_revision\", \"value\": 77}");
	ck_assert(run_until(&loop, ocsf_off, NULL, 2500) == false); /* two polls at least */
	gw_cmd("{\"cmd\": \"set\", \"name\": \"settings\", \"value\": {\"ocsf_json_enabled\": "
	       "false}}");
	ck_assert(run_until(&loop, ocsf_off, NULL, 2500) == false);
	/* A new revision applies it. */
	gw_cmd("{\"cmd\": \"set\", \"name\": \"config_revision\", \"value\": 78}");
	ck_assert_msg(run_until(&loop, ocsf_off, NULL, 5000), "the new revision was ignored");
	ck_assert(!gw_agent_proposals_enabled()); /* removed: off */
	gw_policy_src_free(src);
	gw_client_detach(client);
	sv_loop_close(&loop);
	pol_free(&p);
	sv_log_set_ocsf_json(false);
}
END_TEST

/* ------------------------------------------------------------------ hand-built messages */

typedef Openshell__Sandbox__V1__GetSandboxConfigResponse__SettingsEntry sentry;

static char seen[32][48];
static int n_seen;

static void record(const struct sv_log_record *rec, void *data)
{
	(void)data;
	if (n_seen < 32)
		snprintf(seen[n_seen++], sizeof(seen[0]), "%s", rec->event);
}

static int count_seen(const char *event)
{
	int n = 0;
	for (int i = 0; i < n_seen; i++)
		n += strcmp(seen[i], event) == 0;
	return n;
}

START_TEST(settings_changes_are_logged_per_key_only_when_the_revision_moves)
{
	Openshell__Sandbox__V1__SettingValue v1 = OPENSHELL__SANDBOX__V1__SETTING_VALUE__INIT,
					     v2 = OPENSHELL__SANDBOX__V1__SETTING_VALUE__INIT;
	v1.value_case = OPENSHELL__SANDBOX__V1__SETTING_VALUE__VALUE_BOOL_VALUE;
	v1.bool_value = 1;
	v2.value_case = OPENSHELL__SANDBOX__V1__SETTING_VALUE__VALUE_STRING_VALUE;
	v2.string_value = "x";
	Openshell__Sandbox__V1__EffectiveSetting
	    e1 = OPENSHELL__SANDBOX__V1__EFFECTIVE_SETTING__INIT,
	    e2 = OPENSHELL__SANDBOX__V1__EFFECTIVE_SETTING__INIT;
	e1.value = &v1;
	e2.value = &v2;
	sentry s1 = OPENSHELL__SANDBOX__V1__GET_SANDBOX_CONFIG_RESPONSE__SETTINGS_ENTRY__INIT,
	       s2 = OPENSHELL__SANDBOX__V1__GET_SANDBOX_CONFIG_RESPONSE__SETTINGS_ENTRY__INIT;
	s1.key = "ocsf_json_enabled";
	s1.value = &e1;
	s2.key = "other";
	s2.value = &e2;
	sentry *both[] = {&s1, &s2};
	gw_config_resp r = OPENSHELL__SANDBOX__V1__GET_SANDBOX_CONFIG_RESPONSE__INIT;
	r.config_revision = 5;
	r.n_settings = 2;
	r.settings = both;

	struct gw_settings st = {0};
	sv_log_set_sink(record, NULL, SV_LOG_DEBUG);
	n_seen = 0;
	ck_assert(gw_settings_apply(&st, &r)); /* the first: taken, nothing "changed" */
	ck_assert(sv_log_ocsf_json_enabled());
	ck_assert_int_eq(count_seen("setting_added"), 0);
	ck_assert_int_eq(count_seen("gateway_config_changed"), 0);
	v1.bool_value = 0; /* changed, but under the same revision */
	ck_assert(!gw_settings_apply(&st, &r));
	ck_assert(sv_log_ocsf_json_enabled());
	r.config_revision = 6;
	r.n_settings = 1; /* "other" removed, ocsf_json_enabled changed */
	ck_assert(gw_settings_apply(&st, &r));
	ck_assert(!sv_log_ocsf_json_enabled());
	ck_assert_int_eq(count_seen("gateway_config_changed"), 1);
	ck_assert_int_eq(count_seen("setting_changed"), 1);
	ck_assert_int_eq(count_seen("setting_removed"), 1);
	r.config_revision = 7;
	r.n_settings = 2;
	ck_assert(gw_settings_apply(&st, &r));
	ck_assert_int_eq(count_seen("setting_added"), 1);
	/* A string "true" is not a bool: OpenShell reads only bool values. */
	v1.value_case = OPENSHELL__SANDBOX__V1__SETTING_VALUE__VALUE_STRING_VALUE;
	v1.string_value = "true";
	r.config_revision = 8;
	ck_assert(gw_settings_apply(&st, &r));
	ck_assert(!sv_log_ocsf_json_enabled());
	sv_log_set_sink(NULL, NULL, SV_LOG_INFO);
	gw_settings_free(&st);
}
END_TEST

START_TEST(provider_rules_are_stripped_and_nothing_else)
{
	struct pol_policy p;
	pol_init(&p);
	const char *names[] = {"_provider_github", "mine", "provider_x", "_provider_"};
	p.rules = calloc(4, sizeof(*p.rules));
	ck_assert_ptr_nonnull(p.rules);
	p.n_rules = 4;
	for (int i = 0; i < 4; i++) {
		p.rules[i].name = strdup(names[i]);
		p.rules[i].endpoints = calloc(1, sizeof(*p.rules[i].endpoints));
		p.rules[i].n_endpoints = 1;
		p.rules[i].endpoints[0].host = strdup("example.com");
	}
	Openshell__Sandbox__V1__SandboxPolicy *m = NULL;
	struct sv_err err = {0};
	ck_assert_msg(gw_policy_to_proto(&p, &m, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(gw_policy_strip_provider_rules(m), 2);
	ck_assert_uint_eq(m->n_network_policies, 2);
	ck_assert_str_eq(m->network_policies[0]->key, "mine");
	ck_assert_str_eq(m->network_policies[1]->key, "provider_x");
	gw_policy_proto_free(m);
	pol_free(&p);
}
END_TEST

static Suite *gw_sync_suite(void)
{
	Suite *s = suite_create("gw_sync");
	TCase *tc = tcase_create("gateway");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(
	    tc, no_gateway_policy_syncs_the_discovered_one_then_refetches_and_acknowledges_it);
	tcase_add_test(tc, no_sandbox_name_is_an_error_and_nothing_is_synced);
	tcase_add_test(tc, a_refused_sync_of_the_discovered_policy_fails_the_start_at_once);
	tcase_add_test(tc,
		       an_enriched_gateway_policy_is_synced_without_provider_rules_and_refetched);
	tcase_add_test(tc, an_enriched_policy_whose_sync_fails_keeps_the_fetched_one);
	tcase_add_test(tc, the_poll_switches_settings_live_and_an_unchanged_revision_does_nothing);
	suite_add_tcase(s, tc);
	TCase *pure = tcase_create("messages");
	tcase_add_test(pure, settings_changes_are_logged_per_key_only_when_the_revision_moves);
	tcase_add_test(pure, provider_rules_are_stripped_and_nothing_else);
	suite_add_tcase(s, pure);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gw_sync_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
