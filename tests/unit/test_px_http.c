/* Unit tests for netns/px_http.c: head detection, strict head parsing, CONNECT and forward
 * targets, the forward rewrite and the exact wire responses of contract §8.
 *
 * Inputs are copied into heap buffers of their exact length (no terminator) so ASan flags any
 * read past the end. Responses are compared byte for byte with literal expectations.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/px_http.h"
#include "supervisor/json.h"

struct xbuf {
	char *p;
	size_t n;
};

static struct xbuf xb(const char *s, size_t n)
{
	struct xbuf b = {malloc(n ? n : 1), n};
	ck_assert_ptr_nonnull(b.p);
	memcpy(b.p, s, n);
	return b;
}

/* Parse a head given as a C literal (may contain NUL when @n is given). */
static int parse_n(const char *s, size_t n, struct px_http_req *req, struct sv_err *err)
{
	static struct xbuf keep; /* the request borrows from it until the next call */
	free(keep.p);
	keep = xb(s, n);
	return px_http_parse_head(keep.p, keep.n, req, err);
}

static int parse(const char *s, struct px_http_req *req)
{
	struct sv_err err = {0};
	return parse_n(s, strlen(s), req, &err);
}

static bool span_is(const char *p, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(p, want, n) == 0;
}

/* ---- detection ---------------------------------------------------------------------------- */

START_TEST(head_end_reports_the_length_up_to_crlfcrlf)
{
	const char *s = "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\nBODY";
	struct xbuf b = xb(s, strlen(s));
	size_t resume = 0;
	ck_assert_int_eq(px_http_head_end(b.p, b.n, &resume), (int)strlen(s) - 4);
	ck_assert_int_eq(px_http_head_end(b.p, b.n, NULL), (int)strlen(s) - 4);
	ck_assert_int_eq(px_http_head_end(b.p, 20, NULL), 0);
	free(b.p);
}
END_TEST

START_TEST(head_end_finds_a_terminator_split_across_one_byte_reads)
{
	const char *s = "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n";
	size_t n = strlen(s), resume = 0;
	for (size_t len = 1; len < n; len++) {
		struct xbuf b = xb(s, len);
		ck_assert_int_eq(px_http_head_end(b.p, len, &resume), 0);
		ck_assert_uint_le(resume, len);
		free(b.p);
	}
	struct xbuf b = xb(s, n);
	ck_assert_int_eq(px_http_head_end(b.p, n, &resume), (int)n);
	free(b.p);
}
END_TEST

/* A head of exactly PX_HEAD_MAX bytes (terminator included) is accepted. */
START_TEST(head_of_exactly_8192_bytes_is_accepted)
{
	char *s = malloc(PX_HEAD_MAX + 10);
	const char *pre = "GET http://a/ HTTP/1.1\r\nX: ";
	size_t pl = strlen(pre);
	memcpy(s, pre, pl);
	memset(s + pl, 'v', PX_HEAD_MAX - pl - 4);
	memcpy(s + PX_HEAD_MAX - 4, "\r\n\r\nbody", 8);
	size_t resume = 0;
	ck_assert_int_eq(px_http_head_end(s, PX_HEAD_MAX, &resume), PX_HEAD_MAX);
	ck_assert_int_eq(px_http_head_end(s, PX_HEAD_MAX + 8, NULL), PX_HEAD_MAX);
	struct px_http_req req;
	ck_assert_int_eq(px_http_parse_head(s, PX_HEAD_MAX, &req, NULL), 0);
	ck_assert_uint_eq(req.headers[0].value_len, PX_HEAD_MAX - pl - 4);
	free(s);
}
END_TEST

/* One byte more and the head cannot fit: 431, whether the terminator came or not. */
START_TEST(head_of_8193_bytes_is_too_large)
{
	char *s = malloc(PX_HEAD_MAX + 1);
	const char *pre = "GET http://a/ HTTP/1.1\r\nX: ";
	size_t pl = strlen(pre);
	memcpy(s, pre, pl);
	memset(s + pl, 'v', PX_HEAD_MAX + 1 - pl - 4);
	memcpy(s + PX_HEAD_MAX + 1 - 4, "\r\n\r\n", 4);
	size_t resume = 0;
	ck_assert_int_eq(px_http_head_end(s, PX_HEAD_MAX - 1, &resume), 0);
	ck_assert_int_eq(px_http_head_end(s, PX_HEAD_MAX, &resume), -EMSGSIZE);
	ck_assert_int_eq(px_http_head_end(s, PX_HEAD_MAX + 1, NULL), -EMSGSIZE);
	free(s);
}
END_TEST

/* ---- head parsing -------------------------------------------------------------------------- */

START_TEST(parse_fills_method_target_version_and_trimmed_fields)
{
	struct px_http_req req;
	ck_assert_int_eq(parse("POST http://h/p?q HTTP/1.0\r\nHost: h\r\nX-A:\t v 1 \t\r\n"
			       "Empty:\r\nContent-Length: 007\r\n\r\n",
			       &req),
			 0);
	ck_assert(span_is(req.method, req.method_len, "POST"));
	ck_assert(span_is(req.target, req.target_len, "http://h/p?q"));
	ck_assert_int_eq(req.version_minor, 0);
	ck_assert(!req.is_connect);
	ck_assert_uint_eq(req.n_headers, 4);
	ck_assert(span_is(req.headers[1].name, req.headers[1].name_len, "X-A"));
	ck_assert(span_is(req.headers[1].value, req.headers[1].value_len, "v 1"));
	ck_assert_uint_eq(req.headers[2].value_len, 0);
	ck_assert_int_eq(req.body, PX_BODY_LENGTH);
	ck_assert_uint_eq(req.content_length, 7);
	ck_assert_ptr_eq(px_http_header_find(&req, "x-a"), &req.headers[1]);
	ck_assert_ptr_null(px_http_header_find(&req, "x-b"));
}
END_TEST

START_TEST(connect_is_recognised_case_sensitively)
{
	struct px_http_req req;
	ck_assert_int_eq(parse("CONNECT a:1 HTTP/1.1\r\n\r\n", &req), 0);
	ck_assert(req.is_connect);
	ck_assert_int_eq(parse("connect a:1 HTTP/1.1\r\n\r\n", &req), 0);
	ck_assert(!req.is_connect);
}
END_TEST

START_TEST(malformed_request_lines_are_rejected)
{
	static const char *const bad[] = {
	    "GET  http://a/ HTTP/1.1\r\n\r\n",
	    "GET http://a/  HTTP/1.1\r\n\r\n",
	    "GET\thttp://a/ HTTP/1.1\r\n\r\n",
	    "GET http://a/ HTTP/2.0\r\n\r\n",
	    "GET http://a/ HTTP/1.2\r\n\r\n",
	    "GET http://a/ http/1.1\r\n\r\n",
	    "GET http://a/\r\n\r\n",
	    " GET http://a/ HTTP/1.1\r\n\r\n",
	    "\r\nGET http://a/ HTTP/1.1\r\n\r\n",
	    "G(T http://a/ HTTP/1.1\r\n\r\n",
	    "GET http://a/\x80 HTTP/1.1\r\n\r\n",
	    "GET http://a/ HTTP/1.1 \r\n\r\n",
	    "GET http://a/ HTTP/1.1\n\r\n\r\n",
	    "GET http://a/ HTTP/1.1\r\n",
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		struct px_http_req req;
		ck_assert_msg(parse(bad[i], &req) == -EBADMSG, "accepted #%zu", i);
	}
}
END_TEST

/* Header injection: CR, LF, NUL and other control bytes inside a value never pass. */
START_TEST(control_bytes_in_field_values_are_rejected)
{
	static const char *const bad[] = {
	    "GET http://a/ HTTP/1.1\r\nX: a\rInjected: 1\r\n\r\n",
	    "GET http://a/ HTTP/1.1\r\nX: a\nInjected: 1\r\n\r\n",
	    "GET http://a/ HTTP/1.1\r\nX: a\x01\r\n\r\n",
	    "GET http://a/ HTTP/1.1\r\nX: a\x7f\r\n\r\n",
	    "GET http://a/ HTTP/1.1\r\nX: a\r\r\n\r\n",
	};
	struct px_http_req req;
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++)
		ck_assert_msg(parse(bad[i], &req) == -EBADMSG, "accepted #%zu", i);

	static const char nul[] = "GET http://a/ HTTP/1.1\r\nX: a\0b\r\n\r\n";
	struct sv_err err = {0};
	ck_assert_int_eq(parse_n(nul, sizeof(nul) - 1, &req, &err), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err.msg, "byte 28"));
	/* obs-text is allowed in values */
	ck_assert_int_eq(parse("GET http://a/ HTTP/1.1\r\nX: caf\xc3\xa9\xff\r\n\r\n", &req), 0);
}
END_TEST

START_TEST(obs_fold_and_bad_field_names_are_rejected)
{
	static const char *const bad[] = {
	    "GET http://a/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
	    "GET http://a/ HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",
	    "GET http://a/ HTTP/1.1\r\nX : a\r\n\r\n",
	    "GET http://a/ HTTP/1.1\r\n: a\r\n\r\n",
	    "GET http://a/ HTTP/1.1\r\nX(1): a\r\n\r\n",
	    "GET http://a/ HTTP/1.1\r\nNoColon\r\n\r\n",
	    "GET http://a/ HTTP/1.1\r\nX\xc3\xa9: a\r\n\r\n",
	};
	struct px_http_req req;
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++)
		ck_assert_msg(parse(bad[i], &req) == -EBADMSG, "accepted #%zu", i);
	struct sv_err err = {0};
	ck_assert_int_eq(parse_n(bad[0], strlen(bad[0]), &req, &err), -EBADMSG);
	ck_assert_str_eq(err.msg, "request head: byte 30: obs-fold (line folding) is not accepted");
}
END_TEST

START_TEST(fault_position_is_reported_without_input_bytes)
{
	struct px_http_req req;
	struct sv_err err = {0};
	const char *s = "GET http://a/ HTTP/1.1\r\nHost: a\r\nEvil\"Name: x\r\n\r\n";
	ck_assert_int_eq(parse_n(s, strlen(s), &req, &err), -EBADMSG);
	ck_assert_int_eq(err.code, EBADMSG);
	ck_assert_str_eq(err.msg, "request head: byte 37: field name is not a token followed by "
				  "a colon");
}
END_TEST

static char *many_fields(size_t n, const char *extra)
{
	size_t cap = 64 + n * 16 + strlen(extra);
	char *s = malloc(cap);
	size_t len = (size_t)snprintf(s, cap, "GET http://a/ HTTP/1.1\r\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "X-%zu: v\r\n", i);
	snprintf(s + len, cap - len, "%s\r\n", extra);
	return s;
}

START_TEST(header_count_is_bounded)
{
	struct px_http_req req;
	char *ok = many_fields(PX_HEADERS_MAX, "");
	char *over = many_fields(PX_HEADERS_MAX + 1, "");
	ck_assert_int_eq(parse(ok, &req), 0);
	ck_assert_uint_eq(req.n_headers, PX_HEADERS_MAX);
	ck_assert_int_eq(parse(over, &req), -EBADMSG);
	free(ok);
	free(over);
}
END_TEST

START_TEST(content_length_must_be_single_and_decimal)
{
	static const char *const bad[] = {
	    "Content-Length: 5\r\nContent-Length: 5\r\n",
	    "Content-Length: 5, 5\r\n",
	    "Content-Length: +5\r\n",
	    "Content-Length: -1\r\n",
	    "Content-Length: 0x10\r\n",
	    "Content-Length: 1 2\r\n",
	    "Content-Length:\r\n",
	    "Content-Length: 99999999999999999999\r\n",
	    "content-length: 1\r\nCONTENT-LENGTH: 1\r\n",
	};
	struct px_http_req req;
	char s[256];
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		snprintf(s, sizeof(s), "POST http://a/ HTTP/1.1\r\n%s\r\n", bad[i]);
		ck_assert_msg(parse(s, &req) == -EBADMSG, "accepted #%zu", i);
	}
	ck_assert_int_eq(parse("POST http://a/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.body, PX_BODY_LENGTH);
	ck_assert_uint_eq(req.content_length, 0);
	ck_assert_int_eq(parse("GET http://a/ HTTP/1.1\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.body, PX_BODY_NONE);
}
END_TEST

START_TEST(transfer_encoding_rules_fail_closed)
{
	struct px_http_req req;
	ck_assert_int_eq(parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
			       "Content-Length: 3\r\n\r\n",
			       &req),
			 -EBADMSG);
	ck_assert_int_eq(
	    parse("POST http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", &req), -EBADMSG);
	ck_assert_int_eq(parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", &req),
			 -EBADMSG);
	ck_assert_int_eq(
	    parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", &req),
	    -EBADMSG);
	ck_assert_int_eq(parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
			       "Transfer-Encoding: chunked\r\n\r\n",
			       &req),
			 -EBADMSG);
	ck_assert_int_eq(
	    parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", &req),
	    -EBADMSG);
	ck_assert_int_eq(
	    parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", &req),
	    -EBADMSG);
	ck_assert_int_eq(
	    parse("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n", &req), 0);
	ck_assert_int_eq(req.body, PX_BODY_CHUNKED);
}
END_TEST

START_TEST(duplicate_host_and_bad_connection_lists_are_rejected)
{
	struct px_http_req req;
	ck_assert_int_eq(parse("GET http://a/ HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", &req),
			 -EBADMSG);
	ck_assert_int_eq(parse("GET http://a/ HTTP/1.1\r\nConnection: a b\r\n\r\n", &req),
			 -EBADMSG);
	ck_assert_int_eq(parse("POST http://a/ HTTP/1.1\r\nContent-Length: 1\r\n"
			       "Connection: close, Content-Length\r\n\r\n",
			       &req),
			 -EBADMSG);
	ck_assert_int_eq(parse("GET http://a/ HTTP/1.1\r\nConnection: , close ,x-y,\r\n\r\n", &req),
			 0);
}
END_TEST

/* ---- CONNECT targets ---------------------------------------------------------------------- */

static int ctarget(const char *s, struct px_http_authority *a)
{
	struct xbuf b = xb(s, strlen(s));
	int r = px_http_parse_connect_target(b.p, b.n, a, NULL);
	free(b.p);
	return r;
}

START_TEST(connect_target_host_and_port_are_parsed_and_normalised)
{
	struct px_http_authority a;
	ck_assert_int_eq(ctarget("API.Example.com.:443", &a), 0);
	ck_assert_str_eq(a.host, "api.example.com");
	ck_assert_int_eq(a.kind, PX_HOST_NAME);
	ck_assert_uint_eq(a.port, 443);
	ck_assert_int_eq(ctarget("10.0.0.7:8080", &a), 0);
	ck_assert_int_eq(a.kind, PX_HOST_IPV4);
	ck_assert_mem_eq(a.addr, "\x0a\x00\x00\x07", 4);
	ck_assert_int_eq(ctarget("under_score-1.x:1", &a), 0);
	ck_assert_int_eq(ctarget("h:65535", &a), 0);
	ck_assert_uint_eq(a.port, 65535);
}
END_TEST

START_TEST(connect_target_ipv6_literals_need_brackets)
{
	struct px_http_authority a;
	ck_assert_int_eq(ctarget("[2001:DB8::1]:443", &a), 0);
	ck_assert_str_eq(a.host, "2001:db8::1");
	ck_assert_int_eq(a.kind, PX_HOST_IPV6);
	ck_assert_mem_eq(a.addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	ck_assert_int_eq(ctarget("[::ffff:127.0.0.1]:80", &a), 0);
	ck_assert_int_eq(ctarget("::1:443", &a), -EINVAL);
	ck_assert_int_eq(ctarget("[::1]", &a), -EINVAL);
	ck_assert_int_eq(ctarget("[::1]443", &a), -EINVAL);
	ck_assert_int_eq(ctarget("[::1:443", &a), -EINVAL);
	ck_assert_int_eq(ctarget("[fe80::1%25eth0]:443", &a), -EINVAL);
	ck_assert_int_eq(ctarget("[example.com]:443", &a), -EINVAL);
	ck_assert_int_eq(ctarget("[]:443", &a), -EINVAL);
}
END_TEST

START_TEST(connect_target_ports_outside_1_to_65535_are_rejected)
{
	static const char *const bad[] = {"h:0",  "h:65536",  "h:",   "h",    "h:+1",
					  "h:1a", "h:000443", "h: 1", ":443", "h:99999"};
	struct px_http_authority a;
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++)
		ck_assert_msg(ctarget(bad[i], &a) == -EINVAL, "accepted %s", bad[i]);
	ck_assert_int_eq(ctarget("h:00443", &a), 0);
	ck_assert_uint_eq(a.port, 443);
}
END_TEST

START_TEST(connect_target_odd_hosts_are_rejected)
{
	static const char *const bad[] = {
	    "127.1:80", "0x7f.0.0.1:80", "2130706433:80", "01.2.3.4:80", "1.2.3.4.5:80",
	    "a.123:80", "a b:80",	 "a\"b:80",	  "*.a.com:80",	 "a..b:80",
	    ".a:80",	"a%2eb:80",	 "user@a:80",	  ".:80",	 "256.1.1.1:80",
	};
	struct px_http_authority a;
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++)
		ck_assert_msg(ctarget(bad[i], &a) == -EINVAL, "accepted %s", bad[i]);

	char host[300];
	memset(host, 'a', sizeof(host));
	for (size_t i = 63; i < 253; i += 64)
		host[i] = '.';
	snprintf(host + 253, sizeof(host) - 253, ":1");
	ck_assert_int_eq(ctarget(host, &a), 0);
	ck_assert_uint_eq(strlen(a.host), 253);
	memcpy(host + 253, "a:1", 4);
	ck_assert_int_eq(ctarget(host, &a), -EINVAL);
	memset(host, 'b', 64);
	snprintf(host + 64, sizeof(host) - 64, ":1");
	ck_assert_int_eq(ctarget(host, &a), -EINVAL);
}
END_TEST

/* ---- forward targets ---------------------------------------------------------------------- */

static int ftarget(const char *s, struct px_http_uri *u)
{
	static struct xbuf keep;
	free(keep.p);
	keep = xb(s, strlen(s));
	return px_http_parse_forward_target(keep.p, keep.n, u, NULL);
}

START_TEST(forward_target_splits_host_port_path_and_query)
{
	struct px_http_uri u;
	ck_assert_int_eq(ftarget("http://Example.COM/a/b?x=1&y=%20", &u), 0);
	ck_assert_int_eq(u.scheme, PX_SCHEME_HTTP);
	ck_assert_str_eq(u.auth.host, "example.com");
	ck_assert_uint_eq(u.auth.port, 80);
	ck_assert(span_is(u.path, u.path_len, "/a/b"));
	ck_assert(span_is(u.query, u.query_len, "x=1&y=%20"));
	ck_assert_int_eq(ftarget("HTTP://h:8080", &u), 0);
	ck_assert(span_is(u.path, u.path_len, "/"));
	ck_assert_ptr_null(u.query);
	ck_assert_uint_eq(u.auth.port, 8080);
	ck_assert_int_eq(ftarget("http://h?", &u), 0);
	ck_assert(span_is(u.path, u.path_len, "/"));
	ck_assert_ptr_nonnull(u.query);
	ck_assert_uint_eq(u.query_len, 0);
	ck_assert_int_eq(ftarget("http://[::1]:8080/v6", &u), 0);
	ck_assert_int_eq(u.auth.kind, PX_HOST_IPV6);
	ck_assert_str_eq(u.auth.host, "::1");
	ck_assert(span_is(u.path, u.path_len, "/v6"));
}
END_TEST

START_TEST(forward_target_reports_https_and_other_schemes)
{
	struct px_http_uri u;
	ck_assert_int_eq(ftarget("https://h/x", &u), 0);
	ck_assert_int_eq(u.scheme, PX_SCHEME_HTTPS);
	ck_assert_uint_eq(u.auth.port, 443);
	ck_assert_int_eq(ftarget("ftp://h/x", &u), 0);
	ck_assert_int_eq(u.scheme, PX_SCHEME_OTHER);
	ck_assert_int_eq(ftarget("ws+x.1://h/x", &u), 0);
	ck_assert_int_eq(u.scheme, PX_SCHEME_OTHER);
}
END_TEST

START_TEST(forward_target_malformed_forms_are_rejected)
{
	static const char *const bad[] = {
	    "/origin/form",  "h:80",	     "*",
	    "http:/h/",	     "http://",	     "http:///p",
	    "http://u:p@h/", "http://@h/",   "http://h/#frag",
	    "http://h#",     "http://h:0/",  "http://h:65536/",
	    "http://h:/",    "http://h/%zz", "http://h/%2",
	    "http://h/\"x",  "http://[::1/", "http://[::1]x/",
	    "http://127.1/", "1http://h/",   "http://h/\x7f",
	    "http://a b/",   "http://h%2e/",
	};
	struct px_http_uri u;
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++)
		ck_assert_msg(ftarget(bad[i], &u) == -EBADMSG, "accepted %s", bad[i]);
	struct xbuf b = xb("http://h/\0", 10);
	ck_assert_int_eq(px_http_parse_forward_target(b.p, b.n, &u, NULL), -EBADMSG);
	free(b.p);
}
END_TEST

/* ---- forward rewrite ---------------------------------------------------------------------- */

static int rewrite(const char *head, char *out, size_t size, struct px_http_uri *u)
{
	static struct px_http_req req;
	ck_assert_int_eq(parse(head, &req), 0);
	ck_assert_int_eq(px_http_parse_forward_target(req.target, req.target_len, u, NULL), 0);
	return px_http_forward_rewrite(&req, u, out, size, NULL);
}

START_TEST(rewrite_drops_hop_by_hop_fields_and_regenerates_host)
{
	char out[PX_REWRITE_MAX];
	struct px_http_uri u;
	const char *in = "POST http://Api.Example:80/v1/x?k=v HTTP/1.1\r\n"
			 "Host: evil.example\r\n"
			 "Proxy-Connection: keep-alive\r\n"
			 "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
			 "Proxy-Authenticate: x\r\n"
			 "Connection: X-Secret\r\n"
			 "X-Secret: s\r\n"
			 "x-secret: t\r\n"
			 "Upgrade: websocket\r\n"
			 "Keep-Alive: timeout=5\r\n"
			 "Accept:*/*\r\n"
			 "X-Empty:\r\n"
			 "Content-Length: 4\r\n"
			 "\r\n";
	int n = rewrite(in, out, sizeof(out), &u);
	const char *want = "POST /v1/x?k=v HTTP/1.1\r\n"
			   "Accept: */*\r\n"
			   "X-Empty:\r\n"
			   "Content-Length: 4\r\n"
			   "Host: api.example\r\n"
			   "Connection: close\r\n"
			   "Via: 1.1 openshell-sandbox\r\n"
			   "\r\n";
	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert_mem_eq(out, want, strlen(want));
}
END_TEST

START_TEST(rewrite_keeps_an_existing_via_and_formats_host_ports)
{
	char out[PX_REWRITE_MAX];
	struct px_http_uri u;
	int n = rewrite("GET http://[2001:db8::2]:8080 HTTP/1.0\r\nVia: 1.0 corp\r\n\r\n", out,
			sizeof(out), &u);
	const char *want = "GET / HTTP/1.1\r\nVia: 1.0 corp\r\nHost: [2001:db8::2]:8080\r\n"
			   "Connection: close\r\n\r\n";
	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert_mem_eq(out, want, strlen(want));

	n = rewrite("GET http://10.1.2.3:81/?a HTTP/1.1\r\n\r\n", out, sizeof(out), &u);
	want = "GET /?a HTTP/1.1\r\nHost: 10.1.2.3:81\r\nConnection: close\r\n"
	       "Via: 1.1 openshell-sandbox\r\n\r\n";
	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert_mem_eq(out, want, strlen(want));
}
END_TEST

START_TEST(rewrite_output_reparses_as_a_valid_head)
{
	char out[PX_REWRITE_MAX];
	struct px_http_uri u;
	int n = rewrite("PUT http://h:9/p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			"Connection: te\r\nTE: trailers\r\n\r\n",
			out, sizeof(out), &u);
	ck_assert_int_gt(n, 0);
	struct px_http_req again;
	ck_assert_int_eq(px_http_head_end(out, (size_t)n, NULL), n);
	ck_assert_int_eq(px_http_parse_head(out, (size_t)n, &again, NULL), 0);
	ck_assert_int_eq(again.body, PX_BODY_CHUNKED);
	ck_assert(span_is(again.target, again.target_len, "/p"));
	ck_assert_ptr_null(px_http_header_find(&again, "te"));
	const struct px_http_header *h = px_http_header_find(&again, "host");
	ck_assert(span_is(h->value, h->value_len, "h:9"));
}
END_TEST

START_TEST(rewrite_fails_cleanly_when_it_does_not_fit)
{
	char out[PX_REWRITE_MAX];
	struct px_http_uri u;
	const char *head = "GET http://h/ HTTP/1.1\r\nA: b\r\n\r\n";
	int full = rewrite(head, out, sizeof(out), &u);
	ck_assert_int_gt(full, 0);
	for (size_t size = 0; size < (size_t)full; size++) {
		memset(out, '#', sizeof(out));
		ck_assert_int_eq(rewrite(head, out, size, &u), -ENOBUFS);
		ck_assert_int_eq(out[size], '#');
	}
	ck_assert_int_eq(rewrite(head, out, (size_t)full, &u), full);
}
END_TEST

/* A head of PX_HEAD_MAX bytes of minimal fields still fits PX_REWRITE_MAX. */
START_TEST(rewrite_of_a_maximal_head_fits_rewrite_max)
{
	char *head = malloc(PX_HEAD_MAX + 1);
	size_t len = (size_t)snprintf(head, PX_HEAD_MAX, "GET http://a/ HTTP/1.1\r\n");
	for (int i = 0; i < 96; i++)
		len += (size_t)snprintf(head + len, PX_HEAD_MAX - len, "%c:\r\n", 'a' + i % 26);
	size_t pad = PX_HEAD_MAX - len - 2 - 4;
	memcpy(head + len, "Z:", 2);
	memset(head + len + 2, 'z', pad);
	memcpy(head + len + 2 + pad, "\r\n\r\n", 5);
	ck_assert_uint_eq(strlen(head), PX_HEAD_MAX);
	char *out = malloc(PX_REWRITE_MAX);
	struct px_http_uri u;
	int n = rewrite(head, out, PX_REWRITE_MAX, &u);
	ck_assert_int_gt(n, PX_HEAD_MAX);
	ck_assert_int_le(n, PX_REWRITE_MAX);
	free(out);
	free(head);
}
END_TEST

START_TEST(rewrite_refuses_more_fields_than_a_head_may_carry)
{
	char out[PX_REWRITE_MAX];
	struct px_http_uri u;
	char *head = many_fields(PX_HEADERS_MAX - 2, "");
	ck_assert_int_eq(rewrite(head, out, sizeof(out), &u), -E2BIG);
	free(head);
	head = many_fields(PX_HEADERS_MAX - 3, "");
	ck_assert_int_gt(rewrite(head, out, sizeof(out), &u), 0);
	free(head);
	/* dropped fields do not count: 97 kept + Host, Connection, Via */
	head = many_fields(PX_HEADERS_MAX - 3, "Host: a\r\nConnection: close\r\n");
	ck_assert_int_gt(rewrite(head, out, sizeof(out), &u), 0);
	free(head);
}
END_TEST

/* ---- responses ---------------------------------------------------------------------------- */

START_TEST(fixed_responses_are_exact)
{
	ck_assert_str_eq(PX_HTTP_431, "HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n");
	ck_assert_str_eq(PX_HTTP_400, "HTTP/1.1 400 Bad Request\r\n\r\n");
	ck_assert_str_eq(PX_HTTP_200_CONNECT, "HTTP/1.1 200 Connection Established\r\n\r\n");
	const char *https = PX_HTTP_400_HTTPS;
	ck_assert_str_eq(https, "HTTP/1.1 400 Bad Request\r\nContent-Length: 27\r\n\r\n"
				"Use CONNECT for HTTPS URLs");
	/* the contract's Content-Length: 27 against a 26-byte body, kept verbatim */
	ck_assert_uint_eq(strlen(strstr(https, "\r\n\r\n") + 4), 26);
}
END_TEST

#define JSON_HEAD(status, len)                                                          \
	"HTTP/1.1 " status "\r\nContent-Type: application/json\r\nContent-Length: " len \
	"\r\nConnection: close\r\n\r\n"

static void assert_resp(int n, const char *buf, const char *want)
{
	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert_mem_eq(buf, want, strlen(want));
	/* Content-Length is the body's byte count */
	const char *body = strstr(want, "\r\n\r\n") + 4;
	unsigned long cl = strtoul(strstr(want, "Content-Length: ") + 16, NULL, 10);
	ck_assert_uint_eq(cl, strlen(body));
}

START_TEST(connect_denied_body_is_exact)
{
	char buf[PX_RESP_MAX];
	struct px_http_authority a;
	ck_assert_int_eq(ctarget("Evil.example:443", &a), 0);
	int n = px_http_resp_connect_denied(
	    buf, sizeof(buf), &a, "endpoint evil.example:443 is not allowed by any policy");
	assert_resp(
	    n, buf,
	    JSON_HEAD(
		"403 Forbidden",
		"151") "{\"detail\":\"CONNECT evil.example:443 not permitted by policy\","
		       "\"error\":\"policy_denied\",\"reason\":\"endpoint "
		       "evil.example:443 is not allowed by any policy\"}");
	n = px_http_resp_connect_denied(buf, sizeof(buf), &a, "");
	assert_resp(n, buf,
		    JSON_HEAD("403 Forbidden",
			      "85") "{\"detail\":\"CONNECT evil.example:443 not permitted by policy\","
				    "\"error\":\"policy_denied\"}");
}
END_TEST

START_TEST(forward_denied_body_names_method_host_port_and_path)
{
	char buf[PX_RESP_MAX];
	struct px_http_req req;
	struct px_http_uri u;
	ck_assert_int_eq(parse("DELETE http://H.example/a/b?secret=1 HTTP/1.1\r\n\r\n", &req), 0);
	ck_assert_int_eq(px_http_parse_forward_target(req.target, req.target_len, &u, NULL), 0);
	int n = px_http_resp_forward_denied(buf, sizeof(buf), &req, &u);
	assert_resp(n, buf,
		    JSON_HEAD("403 Forbidden",
			      "84") "{\"detail\":\"DELETE h.example:80/a/b not permitted by policy\","
				    "\"error\":\"policy_denied\"}");
}
END_TEST

START_TEST(ssrf_and_upstream_bodies_are_exact)
{
	char buf[PX_RESP_MAX];
	struct px_http_authority a;
	ck_assert_int_eq(ctarget("[::1]:8443", &a), 0);
	int n = px_http_resp_connect_ssrf(buf, sizeof(buf), &a, "internal address");
	assert_resp(
	    n, buf,
	    JSON_HEAD("403 Forbidden", "77") "{\"detail\":\"CONNECT ::1:8443 blocked: internal "
					     "address\",\"error\":\"ssrf_denied\"}");

	struct px_http_req req;
	ck_assert_int_eq(parse("GET http://10.0.0.1/ HTTP/1.1\r\n\r\n", &req), 0);
	ck_assert_int_eq(ctarget("10.0.0.1:80", &a), 0);
	n = px_http_resp_forward_ssrf(buf, sizeof(buf), &req, &a, "allowed_ips check failed");
	assert_resp(n, buf,
		    JSON_HEAD("403 Forbidden",
			      "84") "{\"detail\":\"GET 10.0.0.1:80 blocked: allowed_ips check failed\","
				    "\"error\":\"ssrf_denied\"}");

	ck_assert_int_eq(ctarget("down.example:81", &a), 0);
	n = px_http_resp_upstream_unreachable(buf, sizeof(buf), &a);
	assert_resp(n, buf,
		    JSON_HEAD("502 Bad Gateway",
			      "80") "{\"detail\":\"connection to down.example:81 failed\","
				    "\"error\":\"upstream_unreachable\"}");

	n = px_http_resp_unsupported_scheme(buf, sizeof(buf));
	assert_resp(n, buf,
		    JSON_HEAD("400 Bad Request",
			      "84") "{\"detail\":\"Forward proxy requests must use http\","
				    "\"error\":\"unsupported_proxy_scheme\"}");
}
END_TEST

/* Decode the "reason" member of a response body with the project's strict JSON parser. */
static char *decoded_reason(const char *resp, int n)
{
	const char *body = strstr(resp, "\r\n\r\n") + 4;
	struct sv_json j;
	struct sv_err err = {0};
	char *key = NULL, *val = NULL, *out = NULL;
	size_t vlen;
	sv_json_init(&j, "resp", body, (size_t)(resp + n - body));
	ck_assert_int_eq(sv_json_object_begin(&j, &err), 0);
	while (sv_json_object_next(&j, &key, &err) > 0) {
		ck_assert_int_eq(sv_json_string(&j, &val, &vlen, false, &err), 0);
		if (strcmp(key, "reason") == 0)
			out = val;
		else
			free(val);
		free(key);
	}
	ck_assert_int_eq(sv_json_end(&j, &err), 0);
	return out;
}

START_TEST(json_strings_escape_quotes_controls_and_invalid_utf8)
{
	char buf[PX_RESP_MAX];
	const char *reason =
	    "binary '/usr/bin/\"x\"' \\ \x01\x1f\x7f\t\r\n caf\xc3\xa9 bad\xff\xc3";
	int n = px_http_resp_json(buf, sizeof(buf), 403, "policy_denied", "d", reason);
	ck_assert_int_gt(n, 0);
	const char *body = strstr(buf, "\r\n\r\n") + 4;
	const char *want = "{\"detail\":\"d\",\"error\":\"policy_denied\",\"reason\":\"binary "
			   "'/usr/bin/\\\"x\\\"' \\\\ \\u0001\\u001f\\u007f\\t\\r\\n caf\xc3\xa9 "
			   "bad\\ufffd\\ufffd\"}";
	ck_assert_uint_eq((size_t)(buf + n - body), strlen(want));
	ck_assert_mem_eq(body, want, strlen(want));
	for (const char *p = body; p < buf + n; p++)
		ck_assert_uint_ge((unsigned char)*p, 0x20);
	char *back = decoded_reason(buf, n);
	ck_assert_str_eq(back, "binary '/usr/bin/\"x\"' \\ \x01\x1f\x7f\t\r\n caf\xc3\xa9 "
			       "bad\xef\xbf\xbd\xef\xbf\xbd");
	free(back);
}
END_TEST

/* Method, host and path are validated before they reach a body: quotes and backslashes are
 * refused where they could appear, so the agent cannot add members to the JSON. */
START_TEST(agent_strings_cannot_break_out_of_the_json_body)
{
	char buf[PX_RESP_MAX];
	struct px_http_req req;
	struct px_http_uri u;
	static const char *const targets[] = {"http://h/\"},\"x\":\"", "http://h/a\\b",
					      "http://h\"/", "http://h/?q=\"", "http://h/{}"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(targets); i++)
		ck_assert_msg(ftarget(targets[i], &u) == -EBADMSG, "accepted %s", targets[i]);
	ck_assert_int_eq(parse("G\"T http://h/ HTTP/1.1\r\n\r\n", &req), -EBADMSG);
	ck_assert_int_eq(parse("G'T http://h/a'b%22 HTTP/1.1\r\n\r\n", &req), 0);
	ck_assert_int_eq(px_http_parse_forward_target(req.target, req.target_len, &u, NULL), 0);
	int n = px_http_resp_forward_denied(buf, sizeof(buf), &req, &u);
	assert_resp(
	    n, buf,
	    JSON_HEAD("403 Forbidden", "76") "{\"detail\":\"G'T h:80/a'b%22 not permitted by "
					     "policy\",\"error\":\"policy_denied\"}");
}
END_TEST

START_TEST(responses_never_overrun_a_small_buffer)
{
	char buf[512];
	struct px_http_authority a;
	ck_assert_int_eq(ctarget("a.example:443", &a), 0);
	int full = px_http_resp_connect_denied(buf, sizeof(buf), &a, "r\"");
	ck_assert_int_gt(full, 0);
	for (size_t size = 0; size < (size_t)full; size++) {
		memset(buf, '#', sizeof(buf));
		ck_assert_int_eq(px_http_resp_connect_denied(buf, size, &a, "r\""), -ENOBUFS);
		ck_assert_int_eq(buf[size], '#');
	}
	ck_assert_int_eq(px_http_resp_json(buf, sizeof(buf), 418, "e", "d", NULL), -EINVAL);
	ck_assert_int_gt(px_http_resp_json(buf, sizeof(buf), 404, "e", "d", NULL), 0); /* policy.local */
	ck_assert_int_eq(memcmp(buf, "HTTP/1.1 404 Not Found\r\n", 24), 0);
	ck_assert_int_gt(px_http_resp_json(buf, sizeof(buf), 503, "e", "d", NULL), 0);
	ck_assert_int_eq(memcmp(buf, "HTTP/1.1 503 Service Unavailable\r\n", 34), 0);
}
END_TEST

static Suite *px_http_suite(void)
{
	Suite *s = suite_create("px_http");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, head_end_reports_the_length_up_to_crlfcrlf);
	tcase_add_test(tc, head_end_finds_a_terminator_split_across_one_byte_reads);
	tcase_add_test(tc, head_of_exactly_8192_bytes_is_accepted);
	tcase_add_test(tc, head_of_8193_bytes_is_too_large);
	tcase_add_test(tc, parse_fills_method_target_version_and_trimmed_fields);
	tcase_add_test(tc, connect_is_recognised_case_sensitively);
	tcase_add_test(tc, malformed_request_lines_are_rejected);
	tcase_add_test(tc, control_bytes_in_field_values_are_rejected);
	tcase_add_test(tc, obs_fold_and_bad_field_names_are_rejected);
	tcase_add_test(tc, fault_position_is_reported_without_input_bytes);
	tcase_add_test(tc, header_count_is_bounded);
	tcase_add_test(tc, content_length_must_be_single_and_decimal);
	tcase_add_test(tc, transfer_encoding_rules_fail_closed);
	tcase_add_test(tc, duplicate_host_and_bad_connection_lists_are_rejected);
	tcase_add_test(tc, connect_target_host_and_port_are_parsed_and_normalised);
	tcase_add_test(tc, connect_target_ipv6_literals_need_brackets);
	tcase_add_test(tc, connect_target_ports_outside_1_to_65535_are_rejected);
	tcase_add_test(tc, connect_target_odd_hosts_are_rejected);
	tcase_add_test(tc, forward_target_splits_host_port_path_and_query);
	tcase_add_test(tc, forward_target_reports_https_and_other_schemes);
	tcase_add_test(tc, forward_target_malformed_forms_are_rejected);
	tcase_add_test(tc, rewrite_drops_hop_by_hop_fields_and_regenerates_host);
	tcase_add_test(tc, rewrite_keeps_an_existing_via_and_formats_host_ports);
	tcase_add_test(tc, rewrite_output_reparses_as_a_valid_head);
	tcase_add_test(tc, rewrite_fails_cleanly_when_it_does_not_fit);
	tcase_add_test(tc, rewrite_of_a_maximal_head_fits_rewrite_max);
	tcase_add_test(tc, rewrite_refuses_more_fields_than_a_head_may_carry);
	tcase_add_test(tc, fixed_responses_are_exact);
	tcase_add_test(tc, connect_denied_body_is_exact);
	tcase_add_test(tc, forward_denied_body_names_method_host_port_and_path);
	tcase_add_test(tc, ssrf_and_upstream_bodies_are_exact);
	tcase_add_test(tc, json_strings_escape_quotes_controls_and_invalid_utf8);
	tcase_add_test(tc, agent_strings_cannot_break_out_of_the_json_body);
	tcase_add_test(tc, responses_never_overrun_a_small_buffer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(px_http_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
