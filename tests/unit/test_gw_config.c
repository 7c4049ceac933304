/* Unit tests for the gateway policy source, provider environment and log push against the real
 * test gateway (tests/gateway/gateway.py, Debian's python3-grpcio) run as a subprocess in its
 * command mode, under ASan/UBSan: session/gw_config.c, gw_env.c, gw_logs.c and gw_rpc.c, and the
 * one client (gw_client.c) carrying a session, a relay and a stalled unary call at once.
 *
 * What the gateway received is read from its JSON-lines event file; what the supervisor decided
 * is read from its own log records through the log sink (supervisor/log.h).
 */
#include <check.h>

#include "netns/proxy/l7/px_cred.h"
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sys/un.h>

#include "netns/netns.h"
#include "netns/proxy/px_server.h"
#include "openshell.pb-c.h"
#include "session/gateway/gw_client.h"
#include "session/gateway/gw_logs.h"
#include "session/session.h"
#include "supervisor/env.h"
#include "supervisor/log.h"
#include "supervisor/loop.h"
#include "tests/unit/loop_wait.h"

#define GATEWAY_PY "tests/gateway/gateway.py"
#define SANDBOX	   "sb-unit"
#define TOKEN	   "unit-token"

/* ------------------------------------------------------------------ the gateway subprocess */

struct gwsrv {
	pid_t pid;
	int in, out;
	char endpoint[64];
	char dir[64];
	char events[96];
};

static struct gwsrv G;

static size_t read_line(int fd, char *buf, size_t size)
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
	return got;
}

static void gw_start(void)
{
	int in[2], out[2];
	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	snprintf(G.dir, sizeof(G.dir), "/tmp/test-gw-config-XXXXXX");
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

/* One command line; the answer must say ok (and is left in @ans when given). */
static void gw_cmd_ans(const char *json, char *ans, size_t size)
{
	size_t n = strlen(json);
	ck_assert_int_eq(write(G.in, json, n), (ssize_t)n);
	ck_assert_int_eq(write(G.in, "\n", 1), 1);
	read_line(G.out, ans, size);
	ck_assert_msg(strstr(ans, "\"ok\": true"), "gateway refused %s: %s", json, ans);
}

static void gw_cmd(const char *json)
{
	char ans[512];
	gw_cmd_ans(json, ans, sizeof(ans));
}

static bool events_have(const char *needle)
{
	FILE *f = fopen(G.events, "re");
	if (!f)
		return false;
	char line[16384];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static bool events_have_v(void *needle)
{
	return events_have(needle);
}

/* Run @loop until the gateway's event log has @needle or @ms pass. */
static bool run_until_event(struct sv_loop *loop, const char *needle, unsigned ms)
{
	return run_until(loop, events_have_v, (void *)needle, ms);
}

/* ------------------------------------------------------------------ the supervisor side */

/* The one client, made per test with OPENSHELL_SANDBOX_TOKEN as its bearer. */
static struct gw_client *client;

/* Log records seen through the sink: their event names, in order. */
static char seen[64][48];
static int n_seen;

static void record(const struct sv_log_record *rec, void *data)
{
	(void)data;
	if (n_seen < 64)
		snprintf(seen[n_seen++], sizeof(seen[0]), "%s", rec->event);
}

static bool saw(const char *event)
{
	for (int i = 0; i < n_seen; i++)
		if (strcmp(seen[i], event) == 0)
			return true;
	return false;
}

static void setup(void)
{
	sv_log_setup(SV_LOG_ERROR, SV_LOG_TEXT);
	n_seen = 0;
	gw_start();
	setenv("OPENSHELL_SANDBOX_TOKEN", TOKEN, 1);
	struct sv_err err = {0};
	ck_assert_msg(gw_client_new(G.endpoint, SANDBOX, &client, &err) == 0, "%s", err.msg);
	setenv(GW_POLICY_POLL_ENV, "1", 1);
}

static void teardown(void)
{
	sv_log_set_sink(NULL, NULL, SV_LOG_INFO);
	gw_client_free(client);
	client = NULL;
	unsetenv("OPENSHELL_SANDBOX_TOKEN");
	gw_stop();
}

static int listen_fd(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	return fd;
}

#define POLICY_A                                                                       \
	"{\"filesystem\": {\"read_only\": [\"/usr\"]}, \"network_policies\": {\"a\": " \
	"{\"endpoints\": [{\"host\": \"a.example\", \"port\": 443}]}}}"
#define POLICY_AB                                                                              \
	"{\"filesystem\": {\"read_only\": [\"/usr\"]}, \"network_policies\": {\"a\": "         \
	"{\"endpoints\": [{\"host\": \"a.example\", \"port\": 443}]}, \"b\": {\"endpoints\": " \
	"[{\"host\": \"b.example\", \"port\": 443}]}}}"
#define POLICY_BAD "{\"filesystem\": {\"read_only\": [\"usr\"]}}"

static void px_sink_set(void *ctx, const struct pol_policy *policy)
{
	px_server_set_policy(ctx, policy);
}

/* ------------------------------------------------------------------ tests */

START_TEST(valid_policy_is_loaded_reported_and_a_change_reaches_the_proxy)
{
	gw_cmd("{\"cmd\": \"set_policy\", \"policy\": " POLICY_A "}");
	struct pol_policy p;
	struct gw_policy_src *src = NULL;
	struct sv_err err = {0};
	ck_assert_msg(gw_config_fetch(client, NULL, &p, &src, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(p.read_only.n, 1);
	ck_assert_str_eq(p.read_only.v[0], "/usr");
	ck_assert_uint_eq(p.n_rules, 1);
	ck_assert(events_have("\"authorization\": \"Bearer " TOKEN "\""));

	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, &err), 0);
	ck_assert_int_eq(gw_client_attach(client, &loop, &err), 0);
	int fd = listen_fd();
	struct px_server *px = NULL;
	ck_assert_int_eq(px_server_new(&loop, fd, &p, &px, &err), 0);
	sv_log_set_sink(record, NULL, SV_LOG_INFO);
	const struct gw_policy_sink sink = {px_sink_set, px};
	ck_assert_int_eq(gw_policy_poll_start(src, &loop, &sink, &err), 0);
	ck_assert_msg(run_until_event(&loop,
				"\"version\": 1, \"status\": \"POLICY_STATUS_LOADED\"", 5000),
		      "no LOADED for the startup policy");
	gw_cmd("{\"cmd\": \"set_policy\", \"policy\": " POLICY_AB "}");
	ck_assert_msg(run_until_event(&loop,
				"\"version\": 2, \"status\": \"POLICY_STATUS_LOADED\"", 5000),
		      "no LOADED for the second generation");
	ck_assert(saw("gateway_policy_reloaded"));
	ck_assert(saw("policy_set")); /* the proxy took the new rules */
	ck_assert(!saw("policy_static_change_deferred"));
	gw_policy_src_free(src);
	px_server_free(px);
	close(fd);
	gw_client_detach(client);
	sv_loop_close(&loop);
	pol_free(&p);
}
END_TEST

START_TEST(invalid_policy_gives_the_default_failed_then_quarantine_then_retained)
{
	gw_cmd("{\"cmd\": \"set_policy\", \"policy\": " POLICY_BAD "}");
	struct pol_policy p, def;
	struct gw_policy_src *src = NULL;
	struct sv_err err = {0};
	ck_assert_msg(gw_config_fetch(client, NULL, &p, &src, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(pol_set_default(&def, &err), 0);
	ck_assert_uint_eq(p.read_only.n, def.read_only.n); /* the restrictive default */
	ck_assert_uint_eq(p.n_rules, 0);
	pol_free(&def);

	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, &err), 0);
	ck_assert_int_eq(gw_client_attach(client, &loop, &err), 0);
	int fd = listen_fd();
	struct px_server *px = NULL;
	ck_assert_int_eq(px_server_new(&loop, fd, &p, &px, &err), 0);
	sv_log_set_sink(record, NULL, SV_LOG_INFO);
	const struct gw_policy_sink sink = {px_sink_set, px};
	ck_assert_int_eq(gw_policy_poll_start(src, &loop, &sink, &err), 0);
	ck_assert_msg(
	    run_until_event(&loop, "filesystem.read_only[0]: path must be absolute", 5000),
	    "no FAILED status naming the field");
	ck_assert(events_have("\"version\": 1, \"status\": \"POLICY_STATUS_FAILED\""));
	/* Valid: loaded, and the filesystem change is only for the next start. */
	gw_cmd("{\"cmd\": \"set_policy\", \"policy\": " POLICY_A "}");
	ck_assert(run_until_event(&loop,
			    "\"version\": 2, \"status\": \"POLICY_STATUS_LOADED\"", 5000));
	ck_assert(saw("policy_static_change_deferred"));
	/* Invalid again, fail_closed by default: quarantine. */
	gw_cmd("{\"cmd\": \"set_policy\", \"policy\": " POLICY_BAD "}");
	ck_assert(run_until_event(&loop,
			    "\"version\": 3, \"status\": \"POLICY_STATUS_FAILED\"", 5000));
	ck_assert(saw("gateway_policy_quarantine"));
	/* retain_last_valid: no second quarantine. */
	n_seen = 0;
	gw_cmd("{\"cmd\": \"set_policy\", \"policy\": " POLICY_A "}");
	ck_assert(run_until_event(&loop,
			    "\"version\": 4, \"status\": \"POLICY_STATUS_LOADED\"", 5000));
	gw_cmd("{\"cmd\": \"set_policy\", \"failure_mode\": \"retain_last_valid\", \"policy\": "
	       "{\"filesystem\": {\"read_only\": [\"/usr\", \"lib\"]}}}");
	ck_assert(run_until_event(&loop,
			    "\"version\": 5, \"status\": \"POLICY_STATUS_FAILED\"", 5000));
	ck_assert(saw("gateway_policy_invalid"));
	ck_assert(!saw("gateway_policy_quarantine"));
	gw_policy_src_free(src);
	px_server_free(px);
	close(fd);
	gw_client_detach(client);
	sv_loop_close(&loop);
	pol_free(&p);
}
END_TEST

START_TEST(non_transient_status_fails_the_fetch_at_once)
{
	gw_cmd("{\"cmd\": \"set\", \"name\": \"unauthenticated\", \"value\": "
	       "[\"GetSandboxConfig\"]}");
	struct pol_policy p;
	struct gw_policy_src *src = NULL;
	struct sv_err err = {0};
	uint64_t t0 = now_ms();
	ck_assert_int_lt(gw_config_fetch(client, NULL, &p, &src, &err), 0);
	ck_assert_msg(strstr(err.msg, "after 1 attempt: UNAUTHENTICATED"), "%s", err.msg);
	ck_assert_uint_lt(now_ms() - t0, 5000); /* no retry sleeps */
	ck_assert_ptr_null(src);
}
END_TEST

START_TEST(provider_environment_is_added_without_replacing_identity)
{
	gw_cmd("{\"cmd\": \"set\", \"name\": \"provider_env\", \"value\": {\"API_KEY\": \"k-1\", "
	       "\"HOME\": \"/evil\", \"1BAD\": \"x\", \"OPENSHELL_TLS_KEY\": \"/k\"}}");
	char *base[] = {"PATH=/bin", NULL};
	struct sv_env env;
	ck_assert_int_eq(sv_env_from(&env, base), 0);
	ck_assert_int_eq(sv_env_set(&env, "HOME", "/sandbox"), 0);
	struct px_cred_store *store = px_cred_store_new();
	ck_assert_int_eq(gw_provider_env(client, &env, store), 1);
	/* the agent gets the placeholder; the value is only in the store (l7 contract §3.2) */
	ck_assert_str_eq(sv_env_get(&env, "API_KEY"), "openshell:resolve:env:v1_API_KEY");
	for (size_t i = 0; i < env.n; i++)
		ck_assert_ptr_null(strstr(env.vars[i], "k-1"));
	static const char head[] = "GET / HTTP/1.1\r\nHost: h\r\nx-api-key: "
				   "openshell:resolve:env:v1_API_KEY\r\n\r\n";
	struct px_l7_req req;
	ck_assert_int_eq(px_l7_req_parse(head, sizeof(head) - 1, &req, NULL), 0);
	struct px_cred_scope sc = {"h", 443, 0};
	char out[256];
	int n = px_cred_rewrite(store, &sc, &req, NULL, 0, out, sizeof(out) - 1, NULL);
	ck_assert_int_gt(n, 0);
	out[n] = '\0';
	ck_assert_ptr_nonnull(strstr(out, "x-api-key: k-1\r\n"));
	px_cred_store_free(store);
	ck_assert_str_eq(sv_env_get(&env, "HOME"), "/sandbox");
	ck_assert_ptr_null(sv_env_get(&env, "1BAD"));
	ck_assert_ptr_null(sv_env_get(&env, "OPENSHELL_TLS_KEY"));
	ck_assert(events_have("\"GetSandboxProviderEnvironment\""));
	/* the relay enforces bindings (px_l7_cred.c): the capability is claimed, and the
	 * stripped OPENSHELL_TLS_KEY the gateway lists as non-secret did not revoke the set */
	ck_assert(events_have("\"supports_static_credential_bindings\": true"));
	sv_env_free(&env);
}
END_TEST

/* PushSandboxLogs messages carrying this test's lines: how many, and the largest. */
static void unit_batches(size_t *n_batches, size_t *largest)
{
	*n_batches = *largest = 0;
	FILE *f = fopen(G.events, "re");
	ck_assert_ptr_nonnull(f);
	static char line[1 << 20];
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "\"rpc\": \"PushSandboxLogs\"") ||
		    !strstr(line, "\"type\": \"message\""))
			continue;
		size_t n = 0;
		for (const char *p = line; (p = strstr(p, "\"fields\": {\"event\": \"unit_line\"")); p++)
			n++;
		if (n == 0)
			continue;
		(*n_batches)++;
		if (n > *largest)
			*largest = n;
	}
	fclose(f);
}

START_TEST(log_lines_are_pushed_in_batches)
{
	struct sv_err err = {0};
	ck_assert_int_eq(gw_logs_install(client, &err), 0);
	for (int i = 0; i < 120; i++)
		sv_info("unit", "unit_line", "line %d", i);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, &err), 0);
	ck_assert_int_eq(gw_client_attach(client, &loop, &err), 0);
	ck_assert_int_eq(gw_logs_attach(&loop, &err), 0);
	ck_assert_msg(run_until_event(&loop, "\"message\": \"line 119\"", 5000),
		      "the last line never arrived");
	ck_assert(events_have("\"level\": \"INFO\", \"target\": \"unit\""));
	ck_assert(events_have("\"source\": \"sandbox\", \"fields\": {\"event\": \"unit_line\"}"));
	/* 120 lines queued at once: at most 50 per request, so at least three requests. */
	size_t batches, largest;
	unit_batches(&batches, &largest);
	ck_assert_msg(batches >= 3 && largest <= 50, "%zu batches, the largest of %zu lines",
		      batches, largest);
	struct gw_logs_stats s;
	gw_logs_stats(&s);
	ck_assert_uint_eq(s.queued, 0);
	gw_logs_detach();
	gw_client_detach(client);
	sv_loop_close(&loop);
}
END_TEST

START_TEST(log_push_unauthenticated_turns_it_off)
{
	gw_cmd(
	    "{\"cmd\": \"set\", \"name\": \"unauthenticated\", \"value\": [\"PushSandboxLogs\"]}");
	struct sv_err err = {0};
	ck_assert_int_eq(gw_logs_install(client, &err), 0);
	sv_info("unit", "unit_line", "refused");
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, &err), 0);
	ck_assert_int_eq(gw_client_attach(client, &loop, &err), 0);
	ck_assert_int_eq(gw_logs_attach(&loop, &err), 0);
	struct gw_logs_stats s = {0};
	for (int i = 0; i < 100 && !s.disabled; i++) {
		run_until_event(&loop, "\"rpc\": \"never\"", 50); /* 50 ms of loop */
		gw_logs_stats(&s);
	}
	ck_assert(s.disabled);
	sv_info("unit", "unit_line", "after");
	gw_logs_stats(&s);
	ck_assert_uint_eq(s.queued, 0);
	gw_logs_detach();
	gw_client_detach(client);
	sv_loop_close(&loop);
}
END_TEST


/* --- the one client: a stalled unary call next to a relay and the session -------------------- */

struct stall_rig {
	int lfd;	 /* the SSH socket path's listener: the relay's target */
	int target;	 /* the relay's connection to it */
	int gw;		 /* the test's TCP end of the relay, through the gateway */
	char got_gw[32]; /* bytes from the target, as the gateway's side saw them */
	size_t n_gw;
	char got_target[32];
	size_t n_target;
	bool unary_done;
};

static void stall_done(int status, const char *message, const uint8_t *resp, size_t len,
		       void *data)
{
	(void)status;
	(void)message;
	(void)resp;
	(void)len;
	((struct stall_rig *)data)->unary_done = true;
}

static bool saw_accepted(void *arg)
{
	(void)arg;
	return saw("gateway_session_accepted");
}

/* Both ways through the relay: what the target wrote reached the gateway's side and back. */
static bool relay_carried(void *arg)
{
	struct stall_rig *r = arg;
	if (r->target < 0) {
		r->target = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (r->target >= 0) {
			ck_assert_int_eq(write(r->target, "from-target", 11), 11);
			ck_assert_int_eq(write(r->gw, "from-gateway", 12), 12);
		}
		return false;
	}
	ssize_t n = read(r->gw, r->got_gw + r->n_gw, sizeof(r->got_gw) - 1 - r->n_gw);
	if (n > 0)
		r->n_gw += (size_t)n;
	n = read(r->target, r->got_target + r->n_target, sizeof(r->got_target) - 1 - r->n_target);
	if (n > 0)
		r->n_target += (size_t)n;
	return r->n_gw >= 11 && r->n_target >= 12;
}

START_TEST(a_stalled_unary_call_delays_neither_a_relay_nor_a_heartbeat)
{
	gw_cmd("{\"cmd\": \"set\", \"name\": \"stall\", \"value\": [\"ReportPolicyStatus\"]}");
	gw_cmd("{\"cmd\": \"set\", \"name\": \"heartbeat_interval_secs\", \"value\": 5}");
	struct stall_rig rig = {.target = -1, .gw = -1};
	char path[96];
	snprintf(path, sizeof(path), "%.80s/ssh.sock", G.dir);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	rig.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(rig.lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(rig.lfd, 4), 0);

	struct sv_err err = {0};
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, &err), 0);
	ck_assert_int_eq(gw_client_attach(client, &loop, &err), 0);
	sv_log_set_sink(record, NULL, SV_LOG_INFO);
	const struct gw_session_opts o = {.endpoint = G.endpoint,
					  .sandbox_id = SANDBOX,
					  .ssh_socket_path = path,
					  .exit_report_timeout_ms = 1000};
	struct gw_session *s = NULL;
	ck_assert_msg(gw_session_new(client, &o, &s, &err) == 0, "%s", err.msg);
	gw_session_start(s);
	ck_assert_msg(run_until(&loop, saw_accepted, NULL, 10000), "no SessionAccepted");
	uint64_t accepted = now_ms();

	/* A unary call the gateway never answers, on the same connection (60 s deadline). */
	Openshell__V1__ReportPolicyStatusRequest req = OPENSHELL__V1__REPORT_POLICY_STATUS_REQUEST__INIT;
	req.sandbox_id = (char *)SANDBOX;
	struct gw_unary *u = NULL;
	ck_assert_msg(gw_client_unary(client, GW_METHOD("ReportPolicyStatus"), &req.base, 60000,
				      stall_done, &rig, &u, &err) == 0,
		      "%s", err.msg);
	ck_assert_msg(run_until_event(&loop, "\"rpc\": \"ReportPolicyStatus\", \"type\": \"call\"",
				      5000),
		      "the stalled call never reached the gateway");

	/* A relay opened now carries bytes both ways at once. */
	char ans[256];
	gw_cmd_ans("{\"cmd\": \"open_relay\", \"kind\": \"ssh\"}", ans, sizeof(ans));
	const char *pp = strstr(ans, "\"port\": ");
	ck_assert_ptr_nonnull(pp);
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)atoi(pp + 8)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	rig.gw = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(rig.gw, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(fcntl(rig.gw, F_SETFL, O_NONBLOCK), 0);
	uint64_t t0 = now_ms();
	ck_assert_msg(run_until(&loop, relay_carried, &rig, 5000),
		      "the relay did not carry its bytes while a unary call stalled");
	ck_assert_uint_lt(now_ms() - t0, 3000);
	rig.got_gw[rig.n_gw] = rig.got_target[rig.n_target] = '\0';
	ck_assert_str_eq(rig.got_gw, "from-target");
	ck_assert_str_eq(rig.got_target, "from-gateway");

	/* The session's heartbeat leaves on time (max(5, 5) s after the accept). */
	ck_assert_msg(run_until_event(&loop, "\"heartbeat\": {}", 8000),
		      "no heartbeat while a unary call stalled");
	ck_assert_uint_lt(now_ms() - accepted, 7500);
	ck_assert_msg(!rig.unary_done, "the stalled call ended: the test proves nothing");

	gw_unary_cancel(u);
	gw_session_free(s);
	gw_client_detach(client);
	sv_loop_close(&loop);
	close(rig.gw);
	if (rig.target >= 0)
		close(rig.target);
	close(rig.lfd);
	unlink(path);
}
END_TEST

static Suite *gw_config_suite(void)
{
	Suite *s = suite_create("gw_config");
	TCase *tc = tcase_create("gateway");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, valid_policy_is_loaded_reported_and_a_change_reaches_the_proxy);
	tcase_add_test(tc, invalid_policy_gives_the_default_failed_then_quarantine_then_retained);
	tcase_add_test(tc, non_transient_status_fails_the_fetch_at_once);
	tcase_add_test(tc, provider_environment_is_added_without_replacing_identity);
	tcase_add_test(tc, log_lines_are_pushed_in_batches);
	tcase_add_test(tc, log_push_unauthenticated_turns_it_off);
	tcase_add_test(tc, a_stalled_unary_call_delays_neither_a_relay_nor_a_heartbeat);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gw_config_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
