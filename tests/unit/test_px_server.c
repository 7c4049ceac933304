/* Unit tests for the egress proxy server (netns/px_server.c) on a real loop and real sockets:
 * policy swaps through px_server_set_policy.
 *
 * The test process is the "agent": it listens on 127.0.0.1, is its own entrypoint, and asks for
 * destinations whose deny reason tells which policy decided (a rule for another host gives
 * "endpoint ... is not allowed by any policy", no rules "network connections not allowed").
 */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netns/proxy/px_server.h"
#include "supervisor/loop.h"
#include "supervisor/policy/policy.h"

#define REASON_A "endpoint blocked.example:443 is not allowed by any policy"
#define REASON_B "network connections not allowed by policy"
#define CONNS_MAX 64

struct client {
	struct sv_watch w;
	char resp[4096];
	size_t len;
	bool done;
};

static struct sv_loop loop;
static struct sv_timer deadline;
static struct px_server *srv;
static int lfd = -1;
static struct sockaddr_in laddr;
static struct client clients[CONNS_MAX];
static size_t n_clients, n_done;
static void (*on_first_answer)(void);

static void load_a(struct pol_policy *p)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	char text[8192];
	snprintf(text, sizeof(text), "[network.a]\nendpoint = a.example:443\nbinary = %s\n", exe);
	struct sv_err e = {0};
	pol_init(p);
	ck_assert_msg(pol_load_buffer("a.ini", text, strlen(text), p, &e) == 0, "%s", e.msg);
}

static void on_deadline(struct sv_loop *l, struct sv_timer *t)
{
	(void)t;
	sv_loop_quit(l);
}

static void setup(void)
{
	struct sv_err e = {0};
	ck_assert_int_eq(sv_loop_init(&loop, &e), 0);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	laddr = (struct sockaddr_in){.sin_family = AF_INET,
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(laddr);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&laddr, len), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&laddr, &len), 0);
	ck_assert_int_eq(listen(lfd, 128), 0);
	ck_assert_int_eq(sv_timer_init(&loop, &deadline, on_deadline, NULL), 0);
	n_clients = n_done = 0;
	on_first_answer = NULL;
}

static void teardown(void)
{
	px_server_free(srv);
	srv = NULL;
	for (size_t i = 0; i < n_clients; i++) {
		if (clients[i].w.fd >= 0) {
			sv_loop_del(&loop, &clients[i].w);
			close(clients[i].w.fd);
		}
	}
	sv_timer_close(&loop, &deadline);
	close(lfd);
	sv_loop_close(&loop);
}

static void on_answer(struct sv_loop *l, struct sv_watch *w, uint32_t events)
{
	(void)events;
	struct client *c = w->data;
	ssize_t n = recv(w->fd, c->resp + c->len, sizeof(c->resp) - 1 - c->len, MSG_DONTWAIT);
	if (n < 0)
		return;
	c->len += (size_t)n;
	c->resp[c->len] = '\0';
	if (n > 0 && c->len < sizeof(c->resp) - 1)
		return;
	c->done = true;
	sv_loop_del(l, w);
	close(w->fd);
	w->fd = -1;
	if (n_done++ == 0 && on_first_answer)
		on_first_answer();
	if (n_done == n_clients)
		sv_loop_quit(l);
}

/* Connect and send @bytes (may be empty) before the loop runs. */
static struct client *ask_raw(const char *bytes)
{
	ck_assert_uint_lt(n_clients, CONNS_MAX);
	struct client *c = &clients[n_clients++];
	memset(c, 0, sizeof(*c));
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&laddr, sizeof(laddr)), 0);
	size_t n = strlen(bytes);
	if (n)
		ck_assert_int_eq(send(fd, bytes, n, MSG_NOSIGNAL), (ssize_t)n);
	c->w = (struct sv_watch){.fd = fd, .fn = on_answer, .data = c};
	ck_assert_int_eq(sv_loop_add(&loop, &c->w, EPOLLIN), 0);
	return c;
}

static struct client *ask(const char *target)
{
	char head[512];
	snprintf(head, sizeof(head), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target);
	return ask_raw(head);
}

static void run_until_answered(void)
{
	loop.stop = false; /* sv_loop_run does not reset it */
	ck_assert_int_eq(sv_timer_arm(&deadline, 30000, 0), 0);
	ck_assert_int_eq(sv_loop_run(&loop), 0);
	ck_assert_msg(n_done == n_clients, "%zu of %zu requests answered", n_done, n_clients);
}

static bool answered_with(const struct client *c, const char *reason)
{
	return strncmp(c->resp, "HTTP/1.1 403 ", 13) == 0 && strstr(c->resp, reason);
}

static void start(const struct pol_policy *p)
{
	struct sv_err e = {0};
	ck_assert_int_eq(px_server_new(&loop, lfd, p, &srv, &e), 0);
	px_server_set_entrypoint(srv, getpid());
}

START_TEST(new_connections_decide_with_the_policy_set_last)
{
	struct pol_policy a, b;
	load_a(&a);
	start(&a);
	pol_free(&a); /* the proxy copied it: the caller may free at once */
	ask("blocked.example:443");
	run_until_answered();
	ck_assert_msg(answered_with(&clients[0], REASON_A), "%s", clients[0].resp);

	pol_init(&b); /* no rules */
	px_server_set_policy(srv, &b);
	pol_free(&b);
	ask("blocked.example:443");
	run_until_answered();
	ck_assert_msg(answered_with(&clients[1], REASON_B), "%s", clients[1].resp);

	load_a(&a);
	px_server_set_policy(srv, &a);
	pol_free(&a);
	ask("blocked.example:443");
	run_until_answered();
	ck_assert_msg(answered_with(&clients[2], REASON_A), "%s", clients[2].resp);

	px_server_set_policy(srv, NULL); /* NULL denies all */
	ask("a.example:443");
	run_until_answered();
	ck_assert_msg(answered_with(&clients[3], REASON_B), "%s", clients[3].resp);
}
END_TEST

static void swap_to_empty(void)
{
	struct pol_policy b;
	pol_init(&b);
	px_server_set_policy(srv, &b);
	pol_free(&b);
}

/* The first answer swaps the policy while the other decisions are queued or running on the
 * workers: the old snapshot must outlive them (ASan reports any read after its free), each of
 * them still answers, and nothing after the swap decides with the old rules. */
START_TEST(decisions_in_flight_keep_their_policy_when_it_is_swapped)
{
	struct pol_policy a;
	load_a(&a);
	start(&a);
	pol_free(&a);
	const size_t n = 48;
	for (size_t i = 0; i < n; i++)
		ask("blocked.example:443");
	on_first_answer = swap_to_empty;
	run_until_answered();
	size_t with_a = 0, with_b = 0;
	for (size_t i = 0; i < n; i++) {
		if (answered_with(&clients[i], REASON_A))
			with_a++;
		else if (answered_with(&clients[i], REASON_B))
			with_b++;
		else
			ck_abort_msg("request %zu: unexpected answer: %s", i, clients[i].resp);
	}
	ck_assert_uint_ge(with_a, 1);
	ck_assert_uint_eq(with_a + with_b, n);
	on_first_answer = NULL;
	ask("blocked.example:443");
	run_until_answered();
	ck_assert_msg(answered_with(&clients[n], REASON_B), "%s", clients[n].resp);
}
END_TEST


/* Every target the parser refuses is answered 400 with a JSON reason naming the fault. */
START_TEST(unparsable_connect_targets_get_400_naming_the_fault)
{
	static const struct {
		const char *target, *reason;
	} cases[] = {
		{"2130706433:18999", "numeric host is not a dotted-quad IPv4 address"},
		{"127.1:18999", "numeric host is not a dotted-quad IPv4 address"},
		{"0177.0.0.1:80", "numeric host"},
		{"0x7f000001:80", "numeric host"},
		{"[fe80::1%25eth0]:443", "not an IPv6 literal"},
		{"example.com", "missing port"},
		{"example.com:0", "port is not a number in 1..65535"},
		{"example.com:99999", "port is not a number in 1..65535"},
	};
	struct pol_policy a;
	load_a(&a);
	start(&a);
	pol_free(&a);
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	for (size_t i = 0; i < n; i++)
		ask(cases[i].target);
	run_until_answered();
	for (size_t i = 0; i < n; i++) {
		const char *r = clients[i].resp;
		ck_assert_msg(strncmp(r, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s: %s",
			      cases[i].target, r);
		ck_assert_msg(strstr(r, "Content-Type: application/json\r\n"), "%s", r);
		ck_assert_msg(strstr(r, "\"error\":\"invalid_connect_target\""), "%s", r);
		ck_assert_msg(strstr(r, cases[i].reason), "%s: want %s in %s", cases[i].target,
			      cases[i].reason, r);
	}
}
END_TEST

START_TEST(head_ended_by_bare_lfs_gets_400_not_a_hang)
{
	struct pol_policy a;
	load_a(&a);
	start(&a);
	pol_free(&a);
	ask_raw("CONNECT a.example:443 HTTP/1.1\nHost: a.example:443\n\n");
	run_until_answered();
	ck_assert_msg(strncmp(clients[0].resp, "HTTP/1.1 400 ", 13) == 0, "%s", clients[0].resp);
	ck_assert_msg(strstr(clients[0].resp, "bare LF"), "%s", clients[0].resp);
}
END_TEST

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t first_answer_ms;

static void note_first_answer(void)
{
	first_answer_ms = mono_ms();
}

/* A silent client does not hold up a request behind it, and is itself answered 408 once its
 * head deadline (10 s) has passed. */
START_TEST(silent_client_does_not_delay_others_and_gets_408_after_the_deadline)
{
	struct pol_policy a;
	load_a(&a);
	start(&a);
	pol_free(&a);
	uint64_t t0 = mono_ms();
	struct client *idle = ask_raw("");
	struct client *busy = ask("blocked.example:443");
	on_first_answer = note_first_answer;
	run_until_answered();
	ck_assert_msg(answered_with(busy, REASON_A), "%s", busy->resp);
	ck_assert_msg(first_answer_ms - t0 < 5000, "first answer after %llu ms",
		      (unsigned long long)(first_answer_ms - t0));
	ck_assert_msg(strncmp(idle->resp, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0, "%s",
		      idle->resp);
	uint64_t waited = mono_ms() - t0;
	ck_assert_msg(waited >= 10000 && waited < 13000, "408 after %llu ms",
		      (unsigned long long)waited);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("px_server");
	TCase *tc = tcase_create("server");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, new_connections_decide_with_the_policy_set_last);
	tcase_add_test(tc, decisions_in_flight_keep_their_policy_when_it_is_swapped);
	tcase_add_test(tc, unparsable_connect_targets_get_400_naming_the_fault);
	tcase_add_test(tc, head_ended_by_bare_lfs_gets_400_not_a_hang);
	tcase_add_test(tc, silent_client_does_not_delay_others_and_gets_408_after_the_deadline);
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
