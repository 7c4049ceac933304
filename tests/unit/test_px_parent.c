/* Unit tests for PID 1's side of the proxy process (netns/proxy/px_parent.c) and the message
 * codec (px_ipc.c): the test plays a hostile proxy process on the other ends of the socketpairs
 * (px_proxy_adopt) and checks that every malformed message gets the "child" SIGKILLed, that
 * valid records are logged as PID 1's own, and that identity questions are answered only for
 * the proxy's own listener.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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
	int n = px_msg_ident_resp_encode(buf, sizeof(buf), 3, PX_IDENT_OK, "", id,
					 PX_CREATOR_MISSING, NULL);
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


/* Issue 17 item 1: the creator travels beside the holders, and both keep room. */
START_TEST(identity_answer_carries_the_creator_beside_the_holders)
{
	struct px_ident *id = calloc(1, sizeof(*id));
	id->exe.pid = 42;
	sv_fmt(id->exe.path, sizeof(id->exe.path), "/usr/local/bin/holdfd");
	id->n_ancestors = 1;
	sv_fmt(id->ancestors[0].path, sizeof(id->ancestors[0].path), "/bin/sh");
	struct px_creator cr;
	const char *anc[] = {"/bin/sh", "/sbin/init"};
	ck_assert_int_eq(px_creator_from(&cr, 41, false, "/usr/local/bin/borrow", anc, 2), 0);
	static uint8_t buf[PX_MSG_MAX];
	int n = px_msg_ident_resp_encode(buf, sizeof(buf), 9, PX_IDENT_OK, "", id,
					 PX_CREATOR_FOUND, &cr);
	ck_assert_int_gt(n, 0);
	struct px_msg_ident_resp r;
	struct sv_err e = {0};
	ck_assert_msg(px_msg_ident_resp_decode(buf, (size_t)n, &r, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(r.exe, "/usr/local/bin/holdfd");
	ck_assert_int_eq(r.creator, PX_CREATOR_FOUND);
	ck_assert_int_eq(r.creator_pid, 41);
	ck_assert_str_eq(r.creator_exe, "/usr/local/bin/borrow");
	ck_assert_uint_eq(r.n_creator_ancestors, 2);
	ck_assert_str_eq(r.creator_ancestors[1], "/sbin/init");
	ck_assert(!r.creator_truncated && !r.creator_too_long);

	/* Without an identity nothing of the creator is sent, whatever the caller passed. */
	n = px_msg_ident_resp_encode(buf, sizeof(buf), 9, PX_IDENT_DENY_NONE, "no", id,
				     PX_CREATOR_FOUND, &cr);
	ck_assert_msg(px_msg_ident_resp_decode(buf, (size_t)n, &r, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(r.creator, PX_CREATOR_MISSING);
	ck_assert_str_eq(r.creator_exe, "");

	/* Long holders' ancestry: the creator's ancestors still get half the room. */
	id->n_ancestors = PX_IDENT_ANCESTORS_MAX;
	for (size_t i = 0; i < id->n_ancestors; i++) {
		memset(id->ancestors[i].path, 'a', 2000);
		id->ancestors[i].path[0] = '/';
		id->ancestors[i].path[2000] = '\0';
	}
	const char *long_anc[PX_IDENT_ANCESTORS_MAX];
	static char lbuf[8][2001];
	for (size_t i = 0; i < 8; i++) {
		memset(lbuf[i], 'b', 2000);
		lbuf[i][0] = '/';
		long_anc[i] = lbuf[i];
	}
	px_creator_release(&cr);
	ck_assert_int_eq(px_creator_from(&cr, 41, false, "/x", long_anc, 8), 0);
	n = px_msg_ident_resp_encode(buf, sizeof(buf), 9, PX_IDENT_OK, "", id, PX_CREATOR_FOUND,
				     &cr);
	ck_assert_int_gt(n, 0);
	ck_assert_msg(px_msg_ident_resp_decode(buf, (size_t)n, &r, &e) == 0, "%s", e.msg);
	ck_assert(r.truncated);
	ck_assert_uint_eq(r.n_creator_ancestors, 8);
	ck_assert(!r.creator_truncated);
	px_creator_release(&cr);
	free(id);
}
END_TEST

/* The decoder refuses creator fields that disagree with the creator state. */
START_TEST(identity_answer_with_inconsistent_creator_fields_is_refused)
{
	struct px_ident *id = calloc(1, sizeof(*id));
	sv_fmt(id->exe.path, sizeof(id->exe.path), "/usr/bin/curl");
	static uint8_t buf[PX_MSG_MAX];
	int n = px_msg_ident_resp_encode(buf, sizeof(buf), 1, PX_IDENT_OK, "", id,
					 PX_CREATOR_MISSING, NULL);
	ck_assert_int_gt(n, 0);
	struct px_msg_ident_resp r;
	struct sv_err e = {0};
	ck_assert_int_eq(px_msg_ident_resp_decode(buf, (size_t)n, &r, &e), 0);
	/* Header 8, seq 4, st/trunc/count/pid 8: the creator state is byte 20, pid 24..27. */
	static uint8_t bad[PX_MSG_MAX];
	memcpy(bad, buf, (size_t)n);
	bad[20] = 3; /* no such state */
	ck_assert_int_eq(px_msg_ident_resp_decode(bad, (size_t)n, &r, &e), -EPROTO);
	ck_assert_msg(strstr(e.msg, "creator field out of range"), "%s", e.msg);
	memcpy(bad, buf, (size_t)n);
	bad[24] = 7; /* a creator pid without a creator */
	ck_assert_int_eq(px_msg_ident_resp_decode(bad, (size_t)n, &r, &e), -EPROTO);
	memcpy(bad, buf, (size_t)n);
	bad[20] = PX_CREATOR_FOUND; /* a creator without its exe */
	ck_assert_int_eq(px_msg_ident_resp_decode(bad, (size_t)n, &r, &e), -EPROTO);
	ck_assert_msg(strstr(e.msg, "creator exe"), "%s", e.msg);
	free(id);
}
END_TEST

/* The fuzzer's seeds (tests/fuzz/px_ipc_seeds.py) are valid answers: a seed the decoder refused
 * would only ever exercise the first checks. Run from the repository root, as make does. */
START_TEST(fuzz_seeds_of_identity_answers_decode)
{
	static const char *const names[] = {
	    "ident_resp_creator_found",	     "ident_resp_creator_too_long",
	    "ident_resp_creator_missing",    "ident_resp_creator_unavailable",
	    "ident_resp_denied_tofu",	     "ident_resp_not_spawned",
	};
	static uint8_t buf[PX_MSG_MAX];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[256];
		sv_fmt(path, sizeof(path), "tests/fuzz/corpus/fuzz_px_ipc/%s", names[i]);
		FILE *f = fopen(path, "rb");
		ck_assert_msg(f, "%s: missing", path);
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		struct px_msg_ident_resp r;
		struct sv_err e = {0};
		ck_assert_msg(px_msg_ident_resp_decode(buf, n, &r, &e) == 0, "%s: %s", path, e.msg);
		if (i == 0) {
			ck_assert_int_eq(r.creator, PX_CREATOR_FOUND);
			ck_assert_str_eq(r.creator_exe, "/usr/local/bin/borrow");
			ck_assert_uint_eq(r.n_creator_ancestors, 2);
		}
	}
}
END_TEST

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Ask about @q and decode the answer into @r (@buf keeps its texts). */
static void ask(const struct px_msg_ident_req *q, uint8_t *buf, struct px_msg_ident_resp *r)
{
	int n = px_msg_ident_req_encode(buf, PX_MSG_MAX, q);
	ck_assert_int_gt(n, 0);
	send_raw(idt, buf, (size_t)n);
	size_t nfds = 0;
	ssize_t got = px_ipc_recv(idt, buf, NULL, &nfds, 0);
	ck_assert_int_gt(got, 0);
	struct sv_err e = {0};
	ck_assert_msg(px_msg_ident_resp_decode(buf, (size_t)got, r, &e) == 0, "%s", e.msg);
}

/* Issue 17 item 1, PID 1's side: the identity answer carries the record of the socket it
 * resolved (this process holds it), taken once: the same question again finds none. */
START_TEST(identity_answer_takes_the_creator_record_of_the_resolved_socket)
{
	start(1000);
	px_proxy_set_entrypoint(px, getpid());
	int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(cfd, 0);
	ck_assert_int_eq(connect(cfd, (struct sockaddr *)&laddr, sizeof(laddr)), 0);
	int afd = -1;
	for (int i = 0; i < 500 && afd < 0; i++) {
		afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (afd < 0)
			usleep(1000);
	}
	ck_assert_int_ge(afd, 0);
	struct stat st;
	unsigned long long cookie = 0;
	socklen_t cl = sizeof(cookie);
	ck_assert_int_eq(fstat(cfd, &st), 0);
	ck_assert_int_eq(getsockopt(cfd, SOL_SOCKET, SO_COOKIE, &cookie, &cl), 0);
	struct px_ident *id = calloc(1, sizeof(*id));
	sv_fmt(id->exe.path, sizeof(id->exe.path), "/usr/local/bin/borrow");
	px_creator_reset();
	ck_assert_int_eq(px_creator_put(id, 41, cookie, st.st_ino, mono_ms()), 0);

	struct px_msg_ident_req q;
	ident_req(&q, laddr.sin_port);
	socklen_t pl = sizeof(q.peer);
	ck_assert_int_eq(getsockname(cfd, (struct sockaddr *)&q.peer, &pl), 0);
	q.peer_len = pl;
	static uint8_t buf[PX_MSG_MAX];
	struct px_msg_ident_resp r;
	ask(&q, buf, &r);
	ck_assert_msg(r.status != PX_IDENT_DENY_NONE, "no identity: %s", r.reason);
	ck_assert_int_eq(r.pid, getpid());
	ck_assert_int_eq(r.creator, PX_CREATOR_FOUND);
	ck_assert_int_eq(r.creator_pid, 41);
	ck_assert_str_eq(r.creator_exe, "/usr/local/bin/borrow");
	ck_assert_uint_eq(px_creator_count(), 0);

	ask(&q, buf, &r);
	ck_assert_msg(r.status != PX_IDENT_DENY_NONE, "no identity: %s", r.reason);
	ck_assert_int_eq(r.creator, PX_CREATOR_MISSING);
	ck_assert_str_eq(r.creator_exe, "");
	expect_alive();
	close(afd);
	close(cfd);
	free(id);
	stop();
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
	tcase_add_test(tc, identity_answer_carries_the_creator_beside_the_holders);
	tcase_add_test(tc, identity_answer_with_inconsistent_creator_fields_is_refused);
	tcase_add_test(tc, fuzz_seeds_of_identity_answers_decode);
	tcase_add_test(tc, identity_answer_takes_the_creator_record_of_the_resolved_socket);
	tcase_add_test(tc, denials_reach_the_sink_and_a_malformed_one_gets_the_child_killed);
	tcase_add_test(tc, denial_stage_that_is_no_name_gets_the_child_killed);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
