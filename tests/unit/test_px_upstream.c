/* Unit tests for the upstream proxy chaining (netns/proxy/px_upstream.c): OpenShell's option
 * checks, --upstream-no-proxy routing, the PX_MSG_UPSTREAM round trip and the CONNECT
 * handshake over a socketpair. The dial through a real proxy is in
 * tests/integration/cases_upstream.py.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netns/proxy/px_ipc.h"
#include "netns/proxy/px_upstream.h"

static int mk(const struct px_upstream_args *a, struct px_upstream **u, struct sv_err *e)
{
	memset(e, 0, sizeof(*e));
	return px_upstream_new(a, u, e);
}

static void refused(const struct px_upstream_args *a, const char *want)
{
	struct px_upstream *u = NULL;
	struct sv_err e;
	ck_assert_int_lt(mk(a, &u, &e), 0);
	ck_assert_ptr_null(u);
	ck_assert_msg(strstr(e.msg, want), "'%s' does not say '%s'", e.msg, want);
}

START_TEST(options_are_checked_as_openshell_does)
{
	struct px_upstream *u = NULL;
	struct sv_err e;
	ck_assert_int_eq(mk(&(struct px_upstream_args){0}, &u, &e), 0);
	ck_assert_ptr_null(u); /* nothing configured */
	refused(&(struct px_upstream_args){.no_proxy = "a"}, "no upstream proxy is configured");
	refused(&(struct px_upstream_args){.by_hostname = true}, "no upstream proxy");
	refused(&(struct px_upstream_args){.url = ""}, "must not be empty");
	refused(&(struct px_upstream_args){.url = "proxy:3128"}, "include a scheme");
	refused(&(struct px_upstream_args){.url = "socks5://p:1"}, "unsupported proxy scheme");
	refused(&(struct px_upstream_args){.url = "http://u:p@p:1"}, "must not embed credentials");
	refused(&(struct px_upstream_args){.url = "http://p"}, "explicit proxy port");
	refused(&(struct px_upstream_args){.url = "http://p:"}, "explicit proxy port");
	refused(&(struct px_upstream_args){.url = "http://p:0"}, "must not be 0");
	refused(&(struct px_upstream_args){.url = "http://p:1/x"}, "must not contain a path");
	refused(&(struct px_upstream_args){.url = "http://p:1?q"}, "must not contain a query");
	refused(&(struct px_upstream_args){.url = "http://:1"}, "missing a proxy host");
	refused(&(struct px_upstream_args){.url = "http://127.0.0.1:1", .auth_file = "/x"},
		"refusing without --upstream-proxy-auth-allow-insecure");
	refused(&(struct px_upstream_args){.url = "http://127.0.0.1:1", .auth_allow_insecure = true},
		"no --upstream-proxy-auth-file");
	refused(&(struct px_upstream_args){.url = "http://127.0.0.1:1", .auth_file = "/nonexistent",
					   .auth_allow_insecure = true},
		"failed to open proxy auth file");
	char path[] = "/tmp/test_px_upstream_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "nocolon\n", 8), 8);
	close(fd);
	refused(&(struct px_upstream_args){.url = "http://127.0.0.1:1", .auth_file = path,
					   .auth_allow_insecure = true},
		"missing ':'");
	unlink(path);
	ck_assert_int_eq(mk(&(struct px_upstream_args){.url = " HTTP://[::1]:8080/ "}, &u, &e), 0);
	char d[256];
	px_upstream_describe(u, d, sizeof(d));
	ck_assert_msg(strstr(d, "::1:8080") && strstr(d, "validated-ip"), "%s", d);
	px_upstream_free(u);
}
END_TEST

static struct px_upstream *with_no_proxy(const char *np)
{
	struct px_upstream *u = NULL;
	struct sv_err e;
	ck_assert_int_eq(mk(&(struct px_upstream_args){.url = "http://127.0.0.1:3128",
						       .no_proxy = np},
			    &u, &e),
			 0);
	return u;
}

static bool via(struct px_upstream *u, const char *host, uint16_t port, const char *ip, size_t *n)
{
	struct px_ssrf_ip a[2];
	ck_assert_int_eq(px_ssrf_ip_parse(ip, &a[0]), 0);
	ck_assert_int_eq(px_ssrf_ip_parse("203.0.113.9", &a[1]), 0);
	*n = 2;
	return px_upstream_route(u, host, port, a, n);
}

START_TEST(no_proxy_routes_as_openshell_does)
{
	struct px_upstream *u = with_no_proxy(" .corp.example , *.svc.local, 10.0.0.0/8 ,"
					      "192.0.2.7, api.example.com:8443, [2001:db8::1]");
	size_t n;
	ck_assert(via(u, "api.github.com", 443, "140.82.1.1", &n));
	ck_assert(!via(u, "corp.example", 443, "198.51.100.1", &n));
	ck_assert(!via(u, "git.corp.example", 443, "198.51.100.1", &n));
	ck_assert(via(u, "notcorp.example", 443, "198.51.100.1", &n));
	ck_assert(!via(u, "KUBE.svc.local", 443, "198.51.100.1", &n));
	ck_assert(!via(u, "api.example.com", 8443, "198.51.100.1", &n));
	ck_assert(via(u, "api.example.com", 443, "198.51.100.1", &n)); /* port-scoped entry */
	ck_assert(!via(u, "10.1.2.3", 80, "10.1.2.3", &n));
	ck_assert(!via(u, "127.0.0.1", 80, "127.0.0.1", &n)); /* loopback is always direct */
	ck_assert(!via(u, "2001:db8::1", 80, "2001:db8::1", &n));
	/* A name resolving partly into a no-proxy range: direct, to those addresses only. */
	ck_assert(!via(u, "mixed.example", 80, "10.9.9.9", &n));
	ck_assert_uint_eq(n, 1);
	px_upstream_free(u);
	u = with_no_proxy("*");
	ck_assert(!via(u, "anything.example", 1, "198.51.100.1", &n));
	px_upstream_free(u);
}
END_TEST

START_TEST(wire_form_round_trips_and_refuses_garbage)
{
	char path[] = "/tmp/test_px_upstream_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, " alice:pw \n", 11), 11);
	close(fd);
	struct px_upstream *u = NULL, *back = NULL;
	struct sv_err e;
	ck_assert_int_eq(mk(&(struct px_upstream_args){.url = "http://127.0.0.1:3128",
						       .no_proxy = "a.example",
						       .auth_file = path,
						       .auth_allow_insecure = true,
						       .by_hostname = true},
			    &u, &e),
			 0);
	unlink(path);
	uint8_t buf[PX_MSG_MAX];
	int n = px_upstream_encode(u, buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(px_msg_type(buf, (size_t)n), PX_MSG_UPSTREAM);
	ck_assert_msg(px_upstream_decode(buf, (size_t)n, &back, &e) == 0, "%s", e.msg);
	ck_assert(px_upstream_by_hostname(back));
	struct px_ssrf_ip a[1];
	size_t cnt = 1;
	ck_assert_int_eq(px_ssrf_ip_parse("198.51.100.1", &a[0]), 0);
	ck_assert(!px_upstream_route(back, "a.example", 80, a, &cnt));
	/* The credential crosses as "Basic base64(alice:pw)", trimmed. */
	int s[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
	struct px_uphs *h = NULL;
	ck_assert_int_eq(px_uphs_start(back, s[0], NULL, "api.example.com", 443, &h), 0);
	char req[512] = {0};
	ck_assert_int_gt(read(s[1], req, sizeof(req) - 1), 0);
	ck_assert_str_eq(req, "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n"
			      "Proxy-Authorization: Basic YWxpY2U6cHc=\r\n\r\n");
	px_uphs_free(h);
	close(s[0]);
	close(s[1]);
	/* Garbage: a byte flipped in the fixed part, a truncated text, trailing bytes. */
	uint8_t bad[PX_MSG_MAX];
	memcpy(bad, buf, (size_t)n);
	bad[PX_MSG_HDR] = 5; /* family */
	struct px_upstream *g = NULL;
	ck_assert_int_lt(px_upstream_decode(bad, (size_t)n, &g, &e), 0);
	ck_assert_ptr_null(g);
	memcpy(bad, buf, (size_t)n);
	bad[4] = (uint8_t)(bad[4] - 1); /* header length one short: a truncated text */
	ck_assert_int_lt(px_upstream_decode(bad, (size_t)n - 1, &g, &e), 0);
	ck_assert_ptr_null(g);
	px_upstream_free(back);
	px_upstream_free(u);
}
END_TEST

START_TEST(handshake_takes_only_the_head_and_refuses_non_200)
{
	struct px_upstream *u = with_no_proxy(NULL);
	int s[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
	struct px_uphs *h = NULL;
	struct px_ssrf_ip ip;
	ck_assert_int_eq(px_ssrf_ip_parse("2001:db8::5", &ip), 0);
	ck_assert_int_eq(px_uphs_start(u, s[0], &ip, "ignored", 443, &h), 0);
	char req[256] = {0};
	ck_assert_int_gt(read(s[1], req, sizeof(req) - 1), 0);
	ck_assert_ptr_nonnull(strstr(req, "CONNECT [2001:db8::5]:443 HTTP/1.1\r\n"));
	ck_assert_ptr_null(strstr(req, "Proxy-Authorization"));
	ck_assert_int_eq(px_uphs_step(h, s[0]), 0); /* nothing yet */
	ck_assert_int_eq(write(s[1], "HTTP/1.1 200 OK\r\n", 17), 17);
	ck_assert_int_eq(px_uphs_step(h, s[0]), 0); /* head incomplete */
	ck_assert_int_eq(write(s[1], "X: y\r\n\r\nEARLY", 13), 13);
	ck_assert_int_eq(px_uphs_step(h, s[0]), 1);
	char rest[16] = {0};
	ck_assert_int_eq(read(s[0], rest, sizeof(rest) - 1), 5);
	ck_assert_str_eq(rest, "EARLY"); /* left for the relay */
	px_uphs_free(h);
	ck_assert_int_eq(px_uphs_start(u, s[0], &ip, NULL, 443, &h), 0);
	ck_assert_int_gt(read(s[1], req, sizeof(req)), 0);
	ck_assert_int_eq(write(s[1], "HTTP/1.1 407 Auth\r\n\r\n", 21), 21);
	ck_assert_int_eq(px_uphs_step(h, s[0]), -1);
	ck_assert_ptr_nonnull(strstr(px_uphs_error(h), "HTTP 407"));
	px_uphs_free(h);
	ck_assert_int_eq(px_uphs_start(u, s[0], &ip, NULL, 443, &h), 0);
	ck_assert_int_gt(read(s[1], req, sizeof(req)), 0);
	ck_assert_int_eq(write(s[1], "garbage\r\n\r\n", 11), 11);
	ck_assert_int_eq(px_uphs_step(h, s[0]), -1);
	px_uphs_free(h);
	ck_assert_int_eq(px_uphs_start(u, s[0], &ip, NULL, 443, &h), 0);
	close(s[1]);
	ck_assert_int_eq(px_uphs_step(h, s[0]), -1); /* closed before answering */
	px_uphs_free(h);
	close(s[0]);
	px_upstream_free(u);
}
END_TEST

static Suite *px_upstream_suite(void)
{
	Suite *s = suite_create("px_upstream");
	TCase *tc = tcase_create("upstream");
	tcase_add_test(tc, options_are_checked_as_openshell_does);
	tcase_add_test(tc, no_proxy_routes_as_openshell_does);
	tcase_add_test(tc, wire_form_round_trips_and_refuses_garbage);
	tcase_add_test(tc, handshake_takes_only_the_head_and_refuses_non_200);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(px_upstream_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
