/* Unit tests for session/gw_util.c: the gateway session's pure pieces (contract §10).
 *
 * Backoff growth, cap and jitter bounds; the instance UUID's version and variant bits; token
 * trimming, file reading and the JWT exp claim; the refresh schedule's percentages and clamps;
 * relay TCP target checks with the contract's exact error strings; abstract unix addresses.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "openshell.pb-c.h"
#include "session/gateway/gw_core.h"
#include "session/session.h"

START_TEST(backoff_doubles_from_one_second_to_a_thirty_second_cap)
{
	struct gw_backoff b = {0};
	const uint32_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_uint_eq(gw_backoff_next(&b, 0), want[i]);
	for (int i = 0; i < 100; i++) /* no overflow after many failures */
		ck_assert_uint_eq(gw_backoff_next(&b, 0), 30000);
}
END_TEST

START_TEST(backoff_jitter_stays_within_twenty_percent_below)
{
	for (uint32_t rnd = 0; rnd < 5000; rnd += 7) {
		struct gw_backoff b = {0};
		uint32_t d = gw_backoff_next(&b, rnd * 2654435761u);
		ck_assert_uint_ge(d, 800);
		ck_assert_uint_le(d, 1000);
		b.failures = 10;
		d = gw_backoff_next(&b, rnd * 2654435761u);
		ck_assert_uint_ge(d, 24000);
		ck_assert_uint_le(d, 30000);
	}
	struct gw_backoff b = {0};
	ck_assert_uint_eq(gw_backoff_next(&b, 200), 800); /* the full 20% is reachable */
}
END_TEST

START_TEST(backoff_reset_starts_again_at_one_second)
{
	struct gw_backoff b = {0};
	for (int i = 0; i < 6; i++)
		(void)gw_backoff_next(&b, 0);
	gw_backoff_reset(&b);
	ck_assert_uint_eq(gw_backoff_next(&b, 0), 1000);
	ck_assert_uint_eq(gw_backoff_next(&b, 0), 2000);
}
END_TEST

/* The exit report's and the status outbox's schedules are the same arithmetic without jitter. */
START_TEST(backoff_custom_schedules_keep_their_bounds_and_no_jitter)
{
	struct gw_backoff b = GW_BACKOFF_INIT(250, 2000, 0);
	const uint32_t want[] = {250, 500, 1000, 2000, 2000};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_uint_eq(gw_backoff_next(&b, 0xffffffffu), want[i]);
	b = GW_BACKOFF_INIT(1000, 32000, 0);
	const uint32_t want2[] = {1000, 2000, 4000, 8000, 16000, 32000, 32000};
	for (size_t i = 0; i < sizeof(want2) / sizeof(want2[0]); i++)
		ck_assert_uint_eq(gw_backoff_next(&b, 12345), want2[i]);
	gw_backoff_reset(&b);
	ck_assert_uint_eq(gw_backoff_next(&b, 7), 1000);
}
END_TEST

START_TEST(uuid_has_version_four_and_rfc4122_variant)
{
	uint8_t ones[16], zeros[16] = {0};
	memset(ones, 0xff, sizeof(ones));
	char out[GW_UUID_LEN + 1];
	gw_uuid_format(ones, out);
	ck_assert_str_eq(out, "ffffffff-ffff-4fff-bfff-ffffffffffff");
	gw_uuid_format(zeros, out);
	ck_assert_str_eq(out, "00000000-0000-4000-8000-000000000000");
	char a[GW_UUID_LEN + 1], b2[GW_UUID_LEN + 1];
	ck_assert_int_eq(gw_uuid4(a, NULL), 0);
	ck_assert_int_eq(gw_uuid4(b2, NULL), 0);
	ck_assert_uint_eq(strlen(a), 36);
	ck_assert_int_eq(a[14], '4');
	ck_assert_ptr_nonnull(strchr("89ab", a[19]));
	ck_assert_str_ne(a, b2);
}
END_TEST

/* The whole endpoint is checked at setup, not only its scheme: a malformed one is a setup error
 * naming OPENSHELL_ENDPOINT instead of a session that retries for the whole run. */
START_TEST(session_plan_refuses_a_malformed_endpoint)
{
	static const char *const bad[] = {"grpc://x", "https://", "http://h/path", "https://[x",
					  "http://h:99999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gw_session_opts o = {.endpoint = bad[i], .sandbox_id = "sb",
					    .ssh_socket_path = "/run/s.sock"};
		struct sv_err err = {0};
		ck_assert_int_eq(gw_session_plan(&o, &err), -EINVAL);
		ck_assert_msg(strstr(err.msg, "OPENSHELL_ENDPOINT") != NULL, "%s: %s", bad[i],
			      err.msg);
	}
	struct gw_session_opts ok = {.endpoint = "http://127.0.0.1:9", .sandbox_id = "sb",
				     .ssh_socket_path = "/run/s.sock"};
	struct sv_err err = {0};
	ck_assert_int_eq(gw_session_plan(&ok, &err), GW_PLAN_SESSION);
}
END_TEST

START_TEST(token_trim_and_validity)
{
	char buf[] = " \n\tabc.def-ghi\r\n ";
	size_t n = gw_token_trim(buf, strlen(buf));
	ck_assert_uint_eq(n, 11);
	ck_assert_int_eq(memcmp(buf, "abc.def-ghi", 11), 0);
	ck_assert(gw_token_is_valid("abc", 3));
	ck_assert(!gw_token_is_valid("a c", 3));
	ck_assert(!gw_token_is_valid("a\nc", 3));
	ck_assert(!gw_token_is_valid("", 0));
	char spaces[] = "   ";
	ck_assert_uint_eq(gw_token_trim(spaces, 3), 0);
}
END_TEST

static char *tmpfile_with(const char *content, size_t len)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/gwtok-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, content, len), (ssize_t)len);
	close(fd);
	return path;
}

START_TEST(token_file_is_trimmed_and_errors_never_show_contents)
{
	struct sv_err err = {0};
	char *tok = NULL;
	char *p = tmpfile_with("  secret.tok.en\n", 16);
	ck_assert_int_eq(gw_token_read_file("OPENSHELL_SANDBOX_TOKEN_FILE", p, &tok, &err), 0);
	ck_assert_str_eq(tok, "secret.tok.en");
	free(tok);
	unlink(p);

	p = tmpfile_with("bad secret\n", 11);
	ck_assert_int_eq(gw_token_read_file("OPENSHELL_SANDBOX_TOKEN_FILE", p, &tok, &err),
			 -EINVAL);
	ck_assert_ptr_null(strstr(err.msg, "secret"));
	ck_assert_ptr_nonnull(strstr(err.msg, "OPENSHELL_SANDBOX_TOKEN_FILE"));
	unlink(p);

	p = tmpfile_with(" \n", 2);
	ck_assert_int_eq(gw_token_read_file("V", p, &tok, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "empty"));
	unlink(p);

	ck_assert_int_eq(gw_token_read_file("V", "/nonexistent/tok", &tok, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/tok"));

	char *big = malloc(GW_TOKEN_MAX + 10);
	memset(big, 'a', GW_TOKEN_MAX + 10);
	p = tmpfile_with(big, GW_TOKEN_MAX + 10);
	free(big);
	ck_assert_int_eq(gw_token_read_file("V", p, &tok, &err), -EFBIG);
	unlink(p);
}
END_TEST

static void b64url(const char *in, char *out)
{
	static const char t[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t n = strlen(in), o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 |
			     (unsigned char)in[i + 2];
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = t[(v >> 6) & 63];
		out[o++] = t[v & 63];
	}
	if (n - i == 1) {
		unsigned v = (unsigned char)in[i] << 16;
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
	} else if (n - i == 2) {
		unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = t[(v >> 6) & 63];
	}
	out[o] = '\0';
}

static uint64_t exp_of(const char *payload)
{
	char tok[1024], p[700];
	b64url(payload, p);
	snprintf(tok, sizeof(tok), "eyJhbGciOiJub25lIn0.%s.sig", p);
	return gw_jwt_exp(tok, strlen(tok));
}

START_TEST(jwt_exp_is_read_from_the_payload_top_level_only)
{
	ck_assert_uint_eq(exp_of("{\"sub\":\"x\",\"exp\":1767225600}"), 1767225600ull);
	ck_assert_uint_eq(exp_of("{ \"exp\" : 42 , \"iat\":1}"), 42);
	ck_assert_uint_eq(exp_of("{\"a\":{\"exp\":5},\"exp\":7}"), 7);
	ck_assert_uint_eq(exp_of("{\"sub\":\"exp\",\"x\":1}"), 0);
	ck_assert_uint_eq(exp_of("{\"sub\":\"a\\\"exp\",\"exp\":9}"), 9);
	ck_assert_uint_eq(exp_of("{\"exp\":\"soon\"}"), 0);
	ck_assert_uint_eq(exp_of("{\"iat\":1}"), 0);
	ck_assert_uint_eq(gw_jwt_exp("opaque-token", 12), 0);
	ck_assert_uint_eq(gw_jwt_exp("a.!!!.c", 7), 0);
	ck_assert_uint_eq(gw_jwt_exp("a..c", 4), 0);
}
END_TEST

START_TEST(refresh_schedule_follows_the_contract)
{
	/* 80% + (len mod 10)% of the remaining lifetime */
	ck_assert_uint_eq(gw_token_refresh_delay(0, 100000, 10), 80000);
	ck_assert_uint_eq(gw_token_refresh_delay(0, 100000, 13), 83000);
	ck_assert_uint_eq(gw_token_refresh_delay(50000, 150000, 19), 89000);
	/* clamps */
	ck_assert_uint_eq(gw_token_refresh_delay(0, 500, 0), 1000);
	ck_assert_uint_eq(gw_token_refresh_delay(10000, 5000, 0), 1000); /* already expired */
	ck_assert_uint_eq(gw_token_refresh_delay(0, 100ull * 3600 * 1000, 0), 12ull * 3600 * 1000);
	/* no expiry: 6 h */
	ck_assert_uint_eq(gw_token_refresh_delay(123, 0, 7), 6ull * 3600 * 1000);
}
END_TEST

static void assert_target(const char *host, uint32_t port, int want, const char *msg,
			  int family)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	struct sv_err err = {0};
	int r = gw_tcp_target_resolve(host, port, &ss, &len, &err);
	ck_assert_msg(r == want, "%s:%u -> %d, want %d", host, port, r, want);
	if (r < 0)
		ck_assert_str_eq(err.msg, msg);
	else
		ck_assert_int_eq(ss.ss_family, family);
}

START_TEST(tcp_targets_must_be_loopback_with_a_valid_port)
{
	assert_target("localhost", 22, 0, NULL, AF_INET);
	assert_target("LocalHost", 22, 0, NULL, AF_INET);
	assert_target("127.0.0.1", 65535, 0, NULL, AF_INET);
	assert_target("127.3.2.1", 1, 0, NULL, AF_INET);
	assert_target("::1", 8080, 0, NULL, AF_INET6);
	assert_target("[::1]", 8080, 0, NULL, AF_INET6);
	assert_target("::ffff:127.0.0.1", 80, 0, NULL, AF_INET6);
	assert_target("10.0.0.1", 22, -EINVAL, "tcp target host must be loopback", 0);
	assert_target("128.0.0.1", 22, -EINVAL, "tcp target host must be loopback", 0);
	assert_target("example.com", 22, -EINVAL, "tcp target host must be loopback", 0);
	assert_target("localhost.", 22, -EINVAL, "tcp target host must be loopback", 0);
	assert_target("::ffff:10.0.0.1", 22, -EINVAL, "tcp target host must be loopback", 0);
	assert_target("::", 22, -EINVAL, "tcp target host must be loopback", 0);
	assert_target("0.0.0.0", 22, -EINVAL, "tcp target host must be loopback", 0);
	assert_target("", 22, -EINVAL, "tcp target host must be loopback", 0);
	assert_target("localhost", 0, -EINVAL, "tcp target port must be between 1 and 65535", 0);
	assert_target("127.0.0.1", 65536, -EINVAL, "tcp target port must be between 1 and 65535",
		      0);

	struct sockaddr_storage ss;
	socklen_t len;
	ck_assert_int_eq(gw_tcp_target_resolve("127.0.0.1", 4242, &ss, &len, NULL), 0);
	ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 4242);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
}
END_TEST

START_TEST(unix_addr_handles_paths_and_abstract_names)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct sockaddr_un *un = (struct sockaddr_un *)&ss;
	ck_assert_int_eq(gw_unix_addr("/run/openshell/ssh.sock", &ss, &len, NULL), 0);
	ck_assert_str_eq(un->sun_path, "/run/openshell/ssh.sock");
	ck_assert_int_eq(gw_unix_addr("@openshell-sidecar-ssh", &ss, &len, NULL), 0);
	ck_assert_int_eq(un->sun_path[0], '\0');
	ck_assert_int_eq(memcmp(un->sun_path + 1, "openshell-sidecar-ssh", 21), 0);
	ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 22);
	ck_assert_int_eq(gw_unix_addr("@", &ss, &len, NULL), -EINVAL);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_int_eq(gw_unix_addr(longp, &ss, &len, NULL), -ENAMETOOLONG);
}
END_TEST

START_TEST(relay_data_header_matches_protobuf_c_for_every_size)
{
	static uint8_t buf[GW_RELAY_HDR + GW_RELAY_CHUNK], want[GW_RELAY_CHUNK + 16];
	for (size_t n = 1; n <= GW_RELAY_CHUNK; n += (n < 300 ? 1 : 97)) {
		for (size_t i = 0; i < n; i++)
			buf[GW_RELAY_HDR + i] = (uint8_t)(i * 7 + n);
		Openshell__V1__RelayFrame f = OPENSHELL__V1__RELAY_FRAME__INIT;
		f.payload_case = OPENSHELL__V1__RELAY_FRAME__PAYLOAD_DATA;
		f.data.data = buf + GW_RELAY_HDR;
		f.data.len = n;
		size_t wl = openshell__v1__relay_frame__pack(&f, want);
		size_t off = gw_relay_data_header(buf, n);
		ck_assert_uint_eq(GW_RELAY_HDR - off + n, wl);
		ck_assert_int_eq(memcmp(buf + off, want, wl), 0);
		const uint8_t *d;
		size_t dn;
		ck_assert(gw_relay_data_view(want, wl, &d, &dn));
		ck_assert_uint_eq(dn, n);
		ck_assert_ptr_eq(d, want + wl - n);
	}
	/* n = 16384 exactly: a three-byte varint */
	size_t off = gw_relay_data_header(buf, GW_RELAY_CHUNK);
	ck_assert_uint_eq(off, 0);
	ck_assert_int_eq(buf[0], 0x12);
}
END_TEST

START_TEST(relay_data_view_refuses_everything_but_a_lone_data_field)
{
	const uint8_t *d;
	size_t n;
	static const uint8_t init[] = {0x0a, 0x03, 0x0a, 0x01, 'x'};  /* RelayInit */
	static const uint8_t extra[] = {0x12, 0x01, 'a', 0x12, 0x01, 'b'}; /* data twice */
	static const uint8_t shortv[] = {0x12, 0x05, 'a'};              /* length past the end */
	static const uint8_t longv[] = {0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
	static const uint8_t empty[] = {0x12, 0x00};
	ck_assert(!gw_relay_data_view(init, sizeof(init), &d, &n));
	ck_assert(!gw_relay_data_view(extra, sizeof(extra), &d, &n));
	ck_assert(!gw_relay_data_view(shortv, sizeof(shortv), &d, &n));
	ck_assert(!gw_relay_data_view(longv, sizeof(longv), &d, &n));
	ck_assert(!gw_relay_data_view(empty, 1, &d, &n));
	ck_assert(gw_relay_data_view(empty, 2, &d, &n));
	ck_assert_uint_eq(n, 0);
}
END_TEST

static Suite *gw_core_suite(void)
{
	Suite *s = suite_create("gw_core");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, backoff_doubles_from_one_second_to_a_thirty_second_cap);
	tcase_add_test(tc, backoff_jitter_stays_within_twenty_percent_below);
	tcase_add_test(tc, backoff_reset_starts_again_at_one_second);
	tcase_add_test(tc, backoff_custom_schedules_keep_their_bounds_and_no_jitter);
	tcase_add_test(tc, uuid_has_version_four_and_rfc4122_variant);
	tcase_add_test(tc, session_plan_refuses_a_malformed_endpoint);
	tcase_add_test(tc, token_trim_and_validity);
	tcase_add_test(tc, token_file_is_trimmed_and_errors_never_show_contents);
	tcase_add_test(tc, jwt_exp_is_read_from_the_payload_top_level_only);
	tcase_add_test(tc, refresh_schedule_follows_the_contract);
	tcase_add_test(tc, tcp_targets_must_be_loopback_with_a_valid_port);
	tcase_add_test(tc, unix_addr_handles_paths_and_abstract_names);
	tcase_add_test(tc, relay_data_header_matches_protobuf_c_for_every_size);
	tcase_add_test(tc, relay_data_view_refuses_everything_but_a_lone_data_field);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gw_core_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
