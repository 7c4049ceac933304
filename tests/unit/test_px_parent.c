/* Unit tests for PID 1's side of the proxy process (netns/proxy/px_parent.c) and the message
 * codec (px_ipc.c): the test plays a hostile proxy process on the other ends of the socketpairs
 * (px_proxy_adopt) and checks that every malformed message gets the "child" SIGKILLed, that
 * valid records are logged as PID 1's own, and that identity questions are answered only for
 * the proxy's own listener.
 */
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop_wait.h"
#include "netns/proxy/px_ipc.h"
#include "netns/proxy/px_pack.h"
#include "netns/proxy/px_parent.h"
#include "supervisor/log.h"
#include "supervisor/loop.h"
#include "supervisor/policy/policy.h"

static struct sv_loop loop;
static int lfd = -1, ctl = -1, idt = -1;
static struct sockaddr_in laddr;
static pid_t child;
static int child_status;
static bool child_dead;
static struct px_proxy *px;
static char seen[64][96];
static size_t n_seen;

static void record(const struct sv_log_record *rec, void *data)
{
	(void)data;
	if (n_seen < 64)
		sv_fmt(seen[n_seen++], sizeof(seen[0]), "%s %s", rec->component, rec->event);
}

static bool saw(const char *what)
{
	for (size_t i = 0; i < n_seen; i++) {
		if (strcmp(seen[i], what) == 0)
			return true;
	}
	return false;
}

static bool dead(void *arg)
{
	(void)arg;
	if (!child_dead && waitpid(child, &child_status, WNOHANG) == child)
		child_dead = true;
	return child_dead;
}

static void start(uid_t agent_uid)
{
	struct sv_err e = {0};
	ck_assert_int_eq(sv_loop_init(&loop, &e), 0);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	laddr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(laddr);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&laddr, len), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&laddr, &len), 0);
	ck_assert_int_eq(listen(lfd, 16), 0);
	int c[2], i[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, i), 0);
	ctl = c[1];
	idt = i[1];
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		for (;;)
			pause();
	}
	child_dead = false;
	n_seen = 0;
	sv_log_set_sink(record, NULL, SV_LOG_DEBUG);
	struct pol_policy pol;
	pol_init(&pol);
	pol.source = strdup("unit");
	ck_assert_msg(px_proxy_adopt(&loop, lfd, &pol, agent_uid, c[0], i[0], child, &px, &e) == 0,
		      "%s", e.msg);
	pol_free(&pol);
}

static void stop(void)
{
	if (!child_dead) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	px_proxy_free(px);
	px = NULL;
	sv_log_set_sink(NULL, NULL, SV_LOG_ERROR);
	close(ctl);
	close(idt);
	close(lfd);
	sv_loop_close(&loop);
}

static void send_raw(int fd, const uint8_t *buf, size_t len)
{
	ck_assert_int_eq(send(fd, buf, len, 0), (ssize_t)len);
}

static void expect_killed(void)
{
	ck_assert_msg(run_until(&loop, dead, NULL, 5000), "the child was not killed");
	ck_assert(WIFSIGNALED(child_status) && WTERMSIG(child_status) == SIGKILL);
	ck_assert_uint_ge(px_proxy_malformed_count(px), 1);
	ck_assert(saw("proxy proxy_child_malformed"));
}

static void expect_alive(void)
{
	ck_assert(!run_until(&loop, dead, NULL, 300));
	ck_assert_uint_eq(px_proxy_malformed_count(px), 0);
}

static int log_msg(uint8_t *buf, const char *component, const char *event, bool ocsf)
{
	const struct sv_kv kv[] = {{"reason", "x"}, {"policy", NULL}};
	const struct sv_log_fwd f = {.level = ocsf ? SV_LOG_WARN : SV_LOG_INFO, .ocsf = ocsf,
				     .component = component, .event = event, .msg = "hello",
				     .kv = kv, .nkv = 2, .class_activity = "NET:OPEN",
				     .sev = SV_SEV_MED, .action = "DENIED"};
	int n = px_msg_log_encode(buf, PX_LOG_WIRE_MAX, &f, 0);
	ck_assert_int_gt(n, 0);
	return n;
}

START_TEST(start_carries_the_proxy_identity_listener_and_policy)
{
	start(PX_PROXY_ID); /* the agent already has 65533: the proxy takes the other id */
	uint8_t buf[PX_MSG_MAX];
	int fds[2];
	size_t nfds = 0;
	ssize_t n = px_ipc_recv(ctl, buf, fds, &nfds, 0);
	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(nfds, 2);
	struct px_msg_start m;
	struct sv_err e = {0};
	ck_assert_msg(px_msg_start_decode(buf, (size_t)n, &m, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(m.uid, PX_PROXY_ID_ALT);
	ck_assert_uint_eq(m.gid, PX_PROXY_ID_ALT);
	struct stat a, b;
	ck_assert_int_eq(fstat(fds[0], &a), 0);
	ck_assert_int_eq(fstat(lfd, &b), 0);
	ck_assert(a.st_ino == b.st_ino); /* the very listener */
	uint8_t *blob = malloc(m.policy_len);
	ck_assert_int_eq(pread(fds[1], blob, m.policy_len, 0), (ssize_t)m.policy_len);
	struct pol_policy pol;
	ck_assert_int_eq(px_unpack_policy(blob, m.policy_len, &pol, &e), 0);
	ck_assert_str_eq(pol.source, "unit");
	pol_free(&pol);
	free(blob);
	close(fds[0]);
	close(fds[1]);
	stop();
}
END_TEST

START_TEST(valid_log_records_are_logged_as_pid1s_own)
{
	start(1000);
	uint8_t buf[PX_LOG_WIRE_MAX];
	send_raw(ctl, buf, (size_t)log_msg(buf, "proxy", "policy_set", false));
	send_raw(ctl, buf, (size_t)log_msg(buf, "proxy", "proxy_denied", true));
	expect_alive();
	ck_assert(saw("proxy policy_set"));
	ck_assert(saw("ocsf proxy_denied"));
	stop();
}
END_TEST

static struct {
	int calls;
	char host[64], binary[64], stage[16], anc1[64];
	uint16_t port;
	size_t n_anc;
} dgot;

static void denial_sink(const struct px_denial *d, void *data)
{
	(void)data;
	dgot.calls++;
	snprintf(dgot.host, sizeof(dgot.host), "%s", d->host);
	snprintf(dgot.binary, sizeof(dgot.binary), "%s", d->binary);
	snprintf(dgot.stage, sizeof(dgot.stage), "%s", d->stage);
	dgot.port = d->port;
	dgot.n_anc = d->n_ancestors;
	snprintf(dgot.anc1, sizeof(dgot.anc1), "%s", d->n_ancestors > 1 ? d->ancestors[1] : "");
}

static bool denial_seen(void *arg)
{
	(void)arg;
	return dgot.calls > 0;
}

START_TEST(denials_reach_the_sink_and_a_malformed_one_gets_the_child_killed)
{
	start(1000);
	memset(&dgot, 0, sizeof(dgot));
	px_proxy_set_denial_sink(px, denial_sink, NULL);
	uint8_t buf[PX_MSG_MAX];
	struct px_denial d = {.host = "evil.example", .port = 443, .binary = "/usr/bin/curl",
			      .ancestors = {"/bin/sh", "/usr/bin/python3"}, .n_ancestors = 2,
			      .reason = "endpoint evil.example:443 is not allowed by any policy",
			      .stage = "connect"};
	int n = px_msg_denial_encode(buf, sizeof(buf), &d, 0);
	ck_assert_int_gt(n, 0);
	send_raw(ctl, buf, (size_t)n);
	ck_assert(run_until(&loop, denial_seen, NULL, 3000));
	ck_assert_str_eq(dgot.host, "evil.example");
	ck_assert_uint_eq(dgot.port, 443);
	ck_assert_str_eq(dgot.binary, "/usr/bin/curl");
	ck_assert_str_eq(dgot.stage, "connect");
	ck_assert_uint_eq(dgot.n_anc, 2);
	ck_assert_str_eq(dgot.anc1, "/usr/bin/python3");
	expect_alive();
	/* Port 0 is no destination: the child lies, and is killed. */
	d.port = 0;
	n = px_msg_denial_encode(buf, sizeof(buf), &d, 0);
	ck_assert_int_gt(n, 0);
	send_raw(ctl, buf, (size_t)n);
	expect_killed();
	stop();
}
END_TEST

START_TEST(denial_stage_that_is_no_name_gets_the_child_killed)
{
	start(1000);
	uint8_t buf[PX_MSG_MAX];
	struct px_denial d = {.host = "h", .port = 1, .binary = "", .reason = "",
			      .stage = "Not A Stage"};
	int n = px_msg_denial_encode(buf, sizeof(buf), &d, 0);
	ck_assert_int_gt(n, 0);
	send_raw(ctl, buf, (size_t)n);
	expect_killed();
	stop();
}
END_TEST

START_TEST(unknown_message_type_gets_the_child_killed)
{
	start(1000);
	uint8_t buf[PX_MSG_HDR] = {99, 0, 0, 0, 0, 0, 0, 0};
	send_raw(ctl, buf, sizeof(buf));
	expect_killed();
	stop();
}
END_TEST

START_TEST(length_that_disagrees_with_the_datagram_gets_the_child_killed)
{
	start(1000);
	uint8_t buf[PX_LOG_WIRE_MAX];
	int n = log_msg(buf, "proxy", "policy_set", false);
	send_raw(ctl, buf, (size_t)n - 1); /* header says one byte more */
	expect_killed();
	stop();
}
END_TEST

START_TEST(invalid_event_name_gets_the_child_killed)
{
	start(1000);
	uint8_t buf[PX_LOG_WIRE_MAX];
	send_raw(ctl, buf, (size_t)log_msg(buf, "proxy", "Bad Event", false));
	expect_killed();
	stop();
}
END_TEST

START_TEST(ocsf_level_that_disagrees_with_its_severity_gets_the_child_killed)
{
	start(1000);
	uint8_t buf[PX_LOG_WIRE_MAX];
	int n = log_msg(buf, "proxy", "proxy_denied", true);
	buf[PX_MSG_HDR] = SV_LOG_ERROR; /* MED must be WARN: a forged ERROR is refused */
	send_raw(ctl, buf, (size_t)n);
	expect_killed();
	stop();
}
END_TEST

START_TEST(fds_sent_by_the_child_get_it_killed)
{
	start(1000);
	uint8_t buf[PX_MSG_HDR];
	ck_assert_int_eq(px_msg_ready_encode(buf, sizeof(buf)), PX_MSG_HDR);
	int fd = 0;
	ck_assert_int_eq(px_ipc_send(ctl, buf, sizeof(buf), &fd, 1, 0), 0);
	expect_killed();
	stop();
}
END_TEST

static void ident_req(struct px_msg_ident_req *q, uint16_t local_port)
{
	memset(q, 0, sizeof(*q));
	q->seq = 7;
	struct sockaddr_in *peer = (struct sockaddr_in *)&q->peer;
	struct sockaddr_in *local = (struct sockaddr_in *)&q->local;
	*peer = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(40000),
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	*local = laddr;
	local->sin_port = local_port;
	q->peer_len = q->local_len = sizeof(struct sockaddr_in);
}

START_TEST(identity_question_about_another_socket_gets_the_child_killed)
{
	start(1000);
	struct px_msg_ident_req q;
	ident_req(&q, htons((uint16_t)(ntohs(laddr.sin_port) + 1)));
	uint8_t buf[128];
	int n = px_msg_ident_req_encode(buf, sizeof(buf), &q);
	send_raw(idt, buf, (size_t)n);
	expect_killed();
	stop();
}
END_TEST

START_TEST(truncated_identity_question_gets_the_child_killed)
{
	start(1000);
	struct px_msg_ident_req q;
	ident_req(&q, laddr.sin_port);
	uint8_t buf[128];
	int n = px_msg_ident_req_encode(buf, sizeof(buf), &q);
	buf[4] = (uint8_t)(n - PX_MSG_HDR - 1); /* header and size agree, but a field is missing */
	send_raw(idt, buf, (size_t)n - 1);
	expect_killed();
	stop();
}
END_TEST

START_TEST(identity_question_before_the_entrypoint_is_answered_not_spawned)
{
	start(1000);
	struct px_msg_ident_req q;
	ident_req(&q, laddr.sin_port);
	uint8_t buf[PX_MSG_MAX];
	int n = px_msg_ident_req_encode(buf, sizeof(buf), &q);
	send_raw(idt, buf, (size_t)n);
	size_t nfds = 0;
	ssize_t got = px_ipc_recv(idt, buf, NULL, &nfds, 0);
	ck_assert_int_gt(got, 0);
	struct px_msg_ident_resp r;
	struct sv_err e = {0};
	ck_assert_msg(px_msg_ident_resp_decode(buf, (size_t)got, &r, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(r.seq, 7);
	ck_assert_int_eq(r.status, PX_IDENT_DENY_NONE);
	ck_assert_str_eq(r.reason, "entrypoint process not yet spawned");
	expect_alive();
	stop();
}
END_TEST

START_TEST(identity_answer_keeps_what_fits_and_says_truncated)
{
	struct px_ident *id = calloc(1, sizeof(*id));
	id->exe.pid = 42;
	sv_fmt(id->exe.path, sizeof(id->exe.path), "/usr/bin/curl");
	id->n_ancestors = PX_IDENT_ANCESTORS_MAX;
	for (size_t i = 0; i < id->n_ancestors; i++) {
		memset(id->ancestors[i].path, 'a', 2000);
		id->ancestors[i].path[0] = '/';
	}
	static uint8_t buf[PX_MSG_MAX];
	int n = px_msg_ident_resp_encode(buf, sizeof(buf), 3, PX_IDENT_OK, "", id);
	ck_assert_int_gt(n, 0);
	ck_assert_uint_le((size_t)n, PX_MSG_MAX);
	struct px_msg_ident_resp r;
	struct sv_err e = {0};
	ck_assert_msg(px_msg_ident_resp_decode(buf, (size_t)n, &r, &e) == 0, "%s", e.msg);
	ck_assert(r.truncated);
	ck_assert_uint_gt(r.n_ancestors, 10);
	ck_assert_uint_lt(r.n_ancestors, PX_IDENT_ANCESTORS_MAX);
	ck_assert_str_eq(r.exe, "/usr/bin/curl");
	ck_assert_int_eq(r.pid, 42);
	free(id);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("px_parent");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, start_carries_the_proxy_identity_listener_and_policy);
	tcase_add_test(tc, valid_log_records_are_logged_as_pid1s_own);
	tcase_add_test(tc, unknown_message_type_gets_the_child_killed);
	tcase_add_test(tc, length_that_disagrees_with_the_datagram_gets_the_child_killed);
	tcase_add_test(tc, invalid_event_name_gets_the_child_killed);
	tcase_add_test(tc, ocsf_level_that_disagrees_with_its_severity_gets_the_child_killed);
	tcase_add_test(tc, fds_sent_by_the_child_get_it_killed);
	tcase_add_test(tc, identity_question_about_another_socket_gets_the_child_killed);
	tcase_add_test(tc, truncated_identity_question_gets_the_child_killed);
	tcase_add_test(tc, identity_question_before_the_entrypoint_is_answered_not_spawned);
	tcase_add_test(tc, identity_answer_keeps_what_fits_and_says_truncated);
	tcase_add_test(tc, denials_reach_the_sink_and_a_malformed_one_gets_the_child_killed);
	tcase_add_test(tc, denial_stage_that_is_no_name_gets_the_child_killed);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
