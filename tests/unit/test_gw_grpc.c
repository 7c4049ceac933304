/* Unit tests for the gateway's gRPC wire helpers (session/gw_grpc.c): endpoint parsing, the
 * 5-byte message prefix and its reassembly across arbitrary splits, the limits on compressed
 * and oversize messages, grpc-timeout, grpc-message percent-decoding and status mapping.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "session/gateway/gw_int.h"

/* Frame @n messages of sizes @sizes into one buffer (content: byte i of message k = k + i). */
static uint8_t *frame_all(const size_t *sizes, size_t n, size_t *total)
{
	size_t t = 0;
	for (size_t k = 0; k < n; k++)
		t += GW_GRPC_PREFIX + sizes[k];
	uint8_t *b = malloc(t ? t : 1), *p = b;
	ck_assert_ptr_nonnull(b);
	for (size_t k = 0; k < n; k++) {
		gw_grpc_prefix(p, (uint32_t)sizes[k]);
		p += GW_GRPC_PREFIX;
		for (size_t i = 0; i < sizes[k]; i++)
			*p++ = (uint8_t)(k + i);
	}
	*total = t;
	return b;
}

/* Feed @buf in chunks of @chunk bytes; check every message comes out whole and in order.
 * Asserts only at the end: each ck_assert writes to Check's pipe, too slow per byte. */
static void deframe_in_chunks(const uint8_t *buf, size_t total, size_t chunk, const size_t *sizes,
			      size_t n)
{
	struct gw_deframer d;
	struct sv_err err = {0};
	gw_deframer_init(&d, GW_MSG_MAX);
	size_t got = 0, bad = 0;
	int fail = 0;
	for (size_t off = 0; off < total && fail == 0;) {
		size_t len = total - off < chunk ? total - off : chunk;
		size_t pos = 0;
		while (pos < len && fail == 0) {
			size_t used;
			const uint8_t *m = NULL;
			size_t mlen = 0;
			int r = gw_deframer_feed(&d, buf + off + pos, len - pos, &used, &m, &mlen,
						 &err);
			if (r < 0)
				fail = r;
			pos += used;
			if (r == 1) {
				if (got >= n || mlen != sizes[got])
					bad++;
				for (size_t i = 0; i < mlen && got < n; i++)
					bad += m[i] != (uint8_t)(got + i);
				got++;
			}
		}
		off += len;
	}
	ck_assert_msg(fail == 0, "chunk %zu: %s", chunk, err.msg);
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(got, n);
	ck_assert(gw_deframer_is_idle(&d));
	gw_deframer_free(&d);
}

START_TEST(prefix_is_flag_zero_and_big_endian_length)
{
	uint8_t p[GW_GRPC_PREFIX];
	gw_grpc_prefix(p, 0x01020304);
	const uint8_t want[] = {0, 1, 2, 3, 4};
	ck_assert_mem_eq(p, want, sizeof(want));
}
END_TEST

START_TEST(messages_survive_every_split_including_empty_ones)
{
	const size_t sizes[] = {3, 0, 1, 70000, 5, 0, 200000};
	size_t total;
	uint8_t *buf = frame_all(sizes, SV_ARRAY_SIZE(sizes), &total);
	const size_t chunks[] = {1, 2, 3, 4, 5, 6, 7, 13, 4096, 65536, 1 << 20};
	for (size_t c = 0; c < SV_ARRAY_SIZE(chunks); c++)
		deframe_in_chunks(buf, total, chunks[c], sizes, SV_ARRAY_SIZE(sizes));
	free(buf);
}
END_TEST

START_TEST(a_partial_message_is_not_idle)
{
	struct gw_deframer d;
	struct sv_err err = {0};
	gw_deframer_init(&d, 100);
	const uint8_t in[] = {0, 0, 0, 0, 4, 'a', 'b'};
	size_t used;
	const uint8_t *m;
	size_t mlen;
	ck_assert(gw_deframer_is_idle(&d));
	ck_assert_int_eq(gw_deframer_feed(&d, in, 2, &used, &m, &mlen, &err), 0);
	ck_assert(!gw_deframer_is_idle(&d));
	ck_assert_int_eq(gw_deframer_feed(&d, in + 2, sizeof(in) - 2, &used, &m, &mlen, &err), 0);
	ck_assert_uint_eq(used, sizeof(in) - 2);
	ck_assert(!gw_deframer_is_idle(&d));
	ck_assert_int_eq(gw_deframer_feed(&d, (const uint8_t *)"cdXX", 4, &used, &m, &mlen, &err),
			 1);
	ck_assert_uint_eq(used, 2); /* stops right after the message */
	ck_assert_uint_eq(mlen, 4);
	ck_assert_mem_eq(m, "abcd", 4);
	ck_assert(gw_deframer_is_idle(&d));
	gw_deframer_free(&d);
}
END_TEST

START_TEST(compressed_messages_are_refused)
{
	struct gw_deframer d;
	struct sv_err err = {0};
	gw_deframer_init(&d, GW_MSG_MAX);
	const uint8_t in[] = {1, 0, 0, 0, 1, 'x'};
	size_t used;
	const uint8_t *m;
	size_t mlen;
	ck_assert_int_eq(gw_deframer_feed(&d, in, sizeof(in), &used, &m, &mlen, &err), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(err.msg, "compressed"));
	gw_deframer_free(&d);

	gw_deframer_init(&d, GW_MSG_MAX);
	const uint8_t bad[] = {0x80, 0, 0, 0, 1, 'x'};
	ck_assert_int_eq(gw_deframer_feed(&d, bad, sizeof(bad), &used, &m, &mlen, &err), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err.msg, "0x80"));
	gw_deframer_free(&d);
}
END_TEST

START_TEST(oversize_messages_are_refused_before_any_allocation)
{
	struct gw_deframer d;
	struct sv_err err = {0};
	gw_deframer_init(&d, GW_MSG_MAX);
	uint8_t in[GW_GRPC_PREFIX];
	gw_grpc_prefix(in, (uint32_t)GW_MSG_MAX + 1);
	size_t used;
	const uint8_t *m;
	size_t mlen;
	ck_assert_int_eq(gw_deframer_feed(&d, in, sizeof(in), &used, &m, &mlen, &err), -EMSGSIZE);
	ck_assert_ptr_nonnull(strstr(err.msg, "4194305 bytes exceeds the limit of 4194304"));
	ck_assert_ptr_null(d.msg);
	gw_deframer_free(&d);

	gw_deframer_init(&d, GW_MSG_MAX); /* exactly the limit is fine */
	gw_grpc_prefix(in, (uint32_t)GW_MSG_MAX);
	ck_assert_int_eq(gw_deframer_feed(&d, in, sizeof(in), &used, &m, &mlen, &err), 0);
	gw_deframer_free(&d);
}
END_TEST

START_TEST(grpc_timeout_uses_milliseconds_up_to_eight_digits)
{
	char b[16];
	ck_assert_uint_eq(gw_grpc_timeout_fmt(250, b, sizeof(b)), 4);
	ck_assert_str_eq(b, "250m");
	gw_grpc_timeout_fmt(99999999, b, sizeof(b));
	ck_assert_str_eq(b, "99999999m");
	gw_grpc_timeout_fmt(100000000, b, sizeof(b));
	ck_assert_str_eq(b, "100000S");
	gw_grpc_timeout_fmt(100000001, b, sizeof(b));
	ck_assert_str_eq(b, "100001S"); /* rounded up, never shorter than asked */
	gw_grpc_timeout_fmt(UINT32_MAX, b, sizeof(b));
	ck_assert_str_eq(b, "4294968S");
}
END_TEST

START_TEST(grpc_message_is_percent_decoded_and_made_printable)
{
	char out[64];
	const char *in = "not%20found%3A%20%E2%9C%93 x%2";
	gw_grpc_pct_decode(in, strlen(in), out, sizeof(out));
	ck_assert_str_eq(out, "not found: \xe2\x9c\x93 x%2");
	in = "bad%zz%0Aline%25";
	gw_grpc_pct_decode(in, strlen(in), out, sizeof(out));
	ck_assert_str_eq(out, "bad%zz?line%");
	ck_assert_uint_eq(gw_grpc_pct_decode("abcdef", 6, out, 4), 3);
	ck_assert_str_eq(out, "abc");
	ck_assert_uint_eq(gw_grpc_pct_decode("%41", 3, out, sizeof(out)), 1);
	ck_assert_str_eq(out, "A");
}
END_TEST

START_TEST(grpc_status_parses_small_decimals_only)
{
	ck_assert_int_eq(gw_grpc_status_parse("0", 1), 0);
	ck_assert_int_eq(gw_grpc_status_parse("14", 2), 14);
	ck_assert_int_eq(gw_grpc_status_parse("", 0), -EINVAL);
	ck_assert_int_eq(gw_grpc_status_parse("-1", 2), -EINVAL);
	ck_assert_int_eq(gw_grpc_status_parse("140", 3), -EINVAL);
	ck_assert_int_eq(gw_grpc_status_parse(" 1", 2), -EINVAL);
	ck_assert_int_eq(gw_grpc_status_from_http(503), GW_STATUS_UNAVAILABLE);
	ck_assert_int_eq(gw_grpc_status_from_http(401), GW_STATUS_UNAUTHENTICATED);
	ck_assert_int_eq(gw_grpc_status_from_http(404), GW_STATUS_UNIMPLEMENTED);
	ck_assert_int_eq(gw_grpc_status_from_http(500), GW_STATUS_UNKNOWN);
}
END_TEST

START_TEST(endpoints_parse_with_default_ports_and_ipv6)
{
	struct gw_endpoint ep;
	struct sv_err err = {0};
	ck_assert_msg(gw_endpoint_parse("http://gw.example:8080", &ep, &err) == 0, "%s", err.msg);
	ck_assert(!ep.tls);
	ck_assert_str_eq(ep.host, "gw.example");
	ck_assert_uint_eq(ep.port, 8080);
	ck_assert_str_eq(ep.authority, "gw.example:8080");
	ck_assert_int_eq(gw_endpoint_parse("https://gw/", &ep, &err), 0);
	ck_assert(ep.tls);
	ck_assert_uint_eq(ep.port, 443);
	ck_assert_str_eq(ep.authority, "gw");
	ck_assert_int_eq(gw_endpoint_parse("http://[::1]:9", &ep, &err), 0);
	ck_assert_str_eq(ep.host, "::1");
	ck_assert_str_eq(ep.authority, "[::1]:9");
	ck_assert_uint_eq(ep.port, 9);
}
END_TEST

START_TEST(bad_endpoints_are_refused_with_the_reason)
{
	struct gw_endpoint ep;
	struct sv_err err = {0};
	static const struct {
		const char *in, *why;
	} bad[] = {
	    {"", "empty"},
	    {"ftp://x", "must start with http:// or https://"},
	    {"gw:443", "must start with"},
	    {"http://", "no host"},
	    {"http://x/path", "a path is not allowed"},
	    {"http://x:0", "port must be 1..65535"},
	    {"http://x:65536", "port must be 1..65535"},
	    {"http://x:", "port must be"},
	    {"http://u@x", "invalid character"},
	    {"http://[::1", "unclosed"},
	    {"http://[::1]x", "junk after the host"},
	    {"http://x y", "invalid character"},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		ck_assert_int_eq(gw_endpoint_parse(bad[i].in, &ep, &err), -EINVAL);
		ck_assert_msg(strstr(err.msg, bad[i].why), "%s: %s", bad[i].in, err.msg);
	}
}
END_TEST

static Suite *gw_grpc_suite(void)
{
	Suite *s = suite_create("gw_grpc");
	TCase *tc = tcase_create("wire");
	tcase_add_test(tc, prefix_is_flag_zero_and_big_endian_length);
	tcase_add_test(tc, messages_survive_every_split_including_empty_ones);
	tcase_add_test(tc, a_partial_message_is_not_idle);
	tcase_add_test(tc, compressed_messages_are_refused);
	tcase_add_test(tc, oversize_messages_are_refused_before_any_allocation);
	tcase_add_test(tc, grpc_timeout_uses_milliseconds_up_to_eight_digits);
	tcase_add_test(tc, grpc_message_is_percent_decoded_and_made_printable);
	tcase_add_test(tc, grpc_status_parses_small_decimals_only);
	tcase_add_test(tc, endpoints_parse_with_default_ports_and_ipv6);
	tcase_add_test(tc, bad_endpoints_are_refused_with_the_reason);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gw_grpc_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
