/* Unit tests for supervisor/log.c: timestamps, text/JSON/OCSF line shapes, level filtering and
 * truncation (contract §11, STYLE.md "Logging").
 *
 * Lines are captured by putting a memfd on fd 2 for the duration of one call. JSON lines are
 * checked by parsing them with supervisor/json.c, never by string matching alone.
 */
#include <check.h>
#include <fcntl.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/json.h"
#include "supervisor/log.h"

#define TS_RE "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

static int g_saved = -1;
static int g_cap = -1;
static char g_out[4 * SV_LOG_LINE_MAX];
static size_t g_outlen;

static void capture_start(int fd)
{
	g_cap = memfd_create("capture", MFD_CLOEXEC);
	ck_assert_int_ge(g_cap, 0);
	g_saved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	ck_assert_int_ge(g_saved, 0);
	ck_assert_int_eq(dup2(g_cap, fd), fd);
}

/* Restore @fd; the bytes written meanwhile land in g_out (NUL-terminated) and g_outlen. */
static const char *capture_end(int fd)
{
	ck_assert_int_eq(dup2(g_saved, fd), fd);
	close(g_saved);
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(g_out) - 1 &&
	       (k = pread(g_cap, g_out + n, sizeof(g_out) - 1 - n, (off_t)n)) > 0)
		n += (size_t)k;
	g_out[n] = '\0';
	g_outlen = n;
	close(g_cap);
	return g_out;
}

static void assert_matches(const char *s, const char *re)
{
	regex_t rx;
	ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
	int r = regexec(&rx, s, 0, NULL, 0);
	regfree(&rx);
	ck_assert_msg(r == 0, "'%s' does not match /%s/", s, re);
}

static void assert_ts(long long sec, long msec, const char *want)
{
	char buf[40];
	size_t n = sv_log_timestamp(buf, sizeof(buf), sec, msec);
	ck_assert_str_eq(buf, want);
	ck_assert_uint_eq(n, strlen(want));
}

/* A decoded JSON line: up to 16 key/value string pairs. */
struct jline {
	char *keys[16];
	char *vals[16];
	size_t n;
};

/* Parse one JSON line (without its newline) as an object of strings. */
static int jline_parse(const char *text, size_t len, struct jline *out, struct sv_err *err)
{
	struct sv_json j;
	int r;
	memset(out, 0, sizeof(*out));
	sv_json_init(&j, "logline", text, len);
	if ((r = sv_json_object_begin(&j, err)) < 0)
		return r;
	for (;;) {
		char *key = NULL;
		r = sv_json_object_next(&j, &key, err);
		if (r <= 0)
			break;
		char *val = NULL;
		r = sv_json_string(&j, &val, NULL, false, err);
		if (r < 0 || out->n == SV_ARRAY_SIZE(out->keys)) {
			free(key);
			free(val);
			return r < 0 ? r : -E2BIG;
		}
		out->keys[out->n] = key;
		out->vals[out->n++] = val;
	}
	return r < 0 ? r : sv_json_end(&j, err);
}

static const char *jline_get(const struct jline *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->keys[i], key) == 0)
			return l->vals[i];
	}
	return NULL;
}

static void jline_free(struct jline *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->keys[i]);
		free(l->vals[i]);
	}
	l->n = 0;
}

/* The captured output is exactly one line; returns its length without the newline. */
static size_t one_line(void)
{
	ck_assert_msg(g_outlen > 0 && g_out[g_outlen - 1] == '\n', "no line: '%s'", g_out);
	ck_assert_msg(memchr(g_out, '\n', g_outlen - 1) == NULL, "more than one line: '%s'", g_out);
	return g_outlen - 1;
}

START_TEST(timestamp_known_epochs)
{
	assert_ts(0, 0, "1970-01-01T00:00:00.000Z");
	assert_ts(1709164800, 0, "2024-02-29T00:00:00.000Z");
	assert_ts(1709251199, 999, "2024-02-29T23:59:59.999Z");
	assert_ts(1709251200, 1, "2024-03-01T00:00:00.001Z");
	assert_ts(1795431480, 123, "2026-11-23T10:58:00.123Z");
	assert_ts(951825600, 0, "2000-02-29T12:00:00.000Z");  /* century leap year */
	assert_ts(4107542400, 0, "2100-03-01T00:00:00.000Z"); /* 2100 is not a leap year */
	assert_ts(4107542400 - 1, 0, "2100-02-28T23:59:59.000Z");
	assert_ts(2147483648LL, 0, "2038-01-19T03:14:08.000Z"); /* past 32-bit time_t */
	assert_ts(-1, 0, "1969-12-31T23:59:59.000Z");
}
END_TEST

START_TEST(timestamp_truncates_to_buffer)
{
	char buf[11];
	memset(buf, 'X', sizeof(buf));
	size_t n = sv_log_timestamp(buf, sizeof(buf), 1795431480, 123);
	ck_assert_uint_eq(n, 10);
	ck_assert_str_eq(buf, "2026-11-23");
}
END_TEST

START_TEST(level_and_format_names_parse)
{
	static const struct {
		const char *s;
		enum sv_log_level l;
	} ok[] = {
	    {"error", SV_LOG_ERROR}, {"warn", SV_LOG_WARN},   {"warning", SV_LOG_WARN},
	    {"info", SV_LOG_INFO},   {"debug", SV_LOG_DEBUG}, {"trace", SV_LOG_TRACE},
	    {"INFO", SV_LOG_INFO},   {"Warn", SV_LOG_WARN},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(ok); i++) {
		enum sv_log_level l = SV_LOG_TRACE + 1;
		ck_assert_int_eq(sv_log_level_parse(ok[i].s, &l), 0);
		ck_assert_int_eq(l, ok[i].l);
	}
	static const char *const bad[] = {"", "verbose", "info ", "sandbox=info", "off"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		enum sv_log_level l = SV_LOG_ERROR;
		ck_assert_int_eq(sv_log_level_parse(bad[i], &l), -EINVAL);
		ck_assert_int_eq(l, SV_LOG_ERROR);
	}
	enum sv_log_level l;
	ck_assert_int_eq(sv_log_level_parse(NULL, &l), -EINVAL);
	enum sv_log_format f;
	ck_assert_int_eq(sv_log_format_parse("json", &f), 0);
	ck_assert_int_eq(f, SV_LOG_JSON);
	ck_assert_int_eq(sv_log_format_parse("text", &f), 0);
	ck_assert_int_eq(f, SV_LOG_TEXT);
	ck_assert_int_eq(sv_log_format_parse("JSON", &f), -EINVAL);
	ck_assert_int_eq(sv_log_format_parse(NULL, &f), -EINVAL);
}
END_TEST

START_TEST(text_line_shape)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	capture_start(STDERR_FILENO);
	sv_log_kv(SV_LOG_INFO, "comp", "some_event", "msg", SV_KVS({"k", "v"}));
	capture_end(STDERR_FILENO);
	one_line();
	assert_matches(g_out, "^" TS_RE " INFO comp: msg k=v\n$");

	capture_start(STDERR_FILENO);
	sv_warn("netns", "netns_ready", "namespace %s ready in %d ms", "sbx", 12);
	capture_end(STDERR_FILENO);
	assert_matches(g_out, "^" TS_RE " WARN netns: namespace sbx ready in 12 ms\n$");

	capture_start(STDERR_FILENO);
	sv_error("core", "e", "boom");
	capture_end(STDERR_FILENO);
	assert_matches(g_out, "^" TS_RE " ERROR core: boom\n$");
}
END_TEST

START_TEST(text_line_timestamp_is_now)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char want[40];
	sv_log_timestamp(want, sizeof(want), (long long)ts.tv_sec, 0);
	capture_start(STDERR_FILENO);
	sv_info("c", "e", "m");
	capture_end(STDERR_FILENO);
	/* Same date, hour and minute (allowing for a minute boundary would need a retry). */
	if (strncmp(g_out, want, 16) != 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		sv_log_timestamp(want, sizeof(want), (long long)ts.tv_sec, 0);
	}
	ck_assert_msg(strncmp(g_out, want, 16) == 0, "'%s' vs now '%s'", g_out, want);
}
END_TEST

START_TEST(text_values_are_quoted_when_needed)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	capture_start(STDERR_FILENO);
	sv_log_kv(SV_LOG_INFO, "c", "e", "m",
		  SV_KVS({"bare", "abc-/:.,_@9"}, {"sp", "x y"}, {"empty", ""}, {"null", NULL},
			 {"eq", "p=q"}, {"q", "say \"hi\""}, {"nl", "l1\nl2"}, {"tab", "a\tb"},
			 {"bs", "a\\b c"}, {"ctl", "a\x01"}));
	capture_end(STDERR_FILENO);
	one_line();
	const char *tail = strstr(g_out, " INFO c: m ");
	ck_assert_ptr_nonnull(tail);
	ck_assert_str_eq(tail + strlen(" INFO c: m "),
			 "bare=abc-/:.,_@9 sp=\"x y\" empty=\"\" null=- eq=\"p=q\" "
			 "q=\"say \\\"hi\\\"\" nl=\"l1\\nl2\" tab=\"a\\tb\" bs=\"a\\\\b c\" "
			 "ctl=\"a\\u0001\"\n");
}
END_TEST

START_TEST(json_line_is_valid_json_with_required_keys)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_JSON);
	capture_start(STDERR_FILENO);
	sv_log_kv(SV_LOG_INFO, "proxy", "conn_open", "say \"hi\"\n\ttab \\ \x01 \xc3\xa9",
		  SV_KVS({"dst", "example.com:443"}, {"none", NULL}, {"q\"k", "v\x7f"}));
	capture_end(STDERR_FILENO);
	size_t len = one_line();
	struct jline l;
	struct sv_err err = {0};
	ck_assert_msg(jline_parse(g_out, len, &l, &err) == 0, "%s: '%s'", err.msg, g_out);
	ck_assert_str_eq(l.keys[0], "time"); /* first, as runc and crun write it */
	assert_matches(jline_get(&l, "time"), "^" TS_RE "$");
	ck_assert_str_eq(jline_get(&l, "level"), "info");
	ck_assert_str_eq(jline_get(&l, "component"), "proxy");
	ck_assert_str_eq(jline_get(&l, "event"), "conn_open");
	ck_assert_str_eq(jline_get(&l, "msg"), "say \"hi\"\n\ttab \\ \x01 \xc3\xa9");
	ck_assert_str_eq(jline_get(&l, "dst"), "example.com:443");
	ck_assert_str_eq(jline_get(&l, "none"), "-");
	ck_assert_str_eq(jline_get(&l, "q\"k"), "v\x7f");
	jline_free(&l);

	static const char *const levels[] = {"error", "warn", "info", "debug", "trace"};
	sv_log_setup(SV_LOG_TRACE, SV_LOG_JSON);
	for (enum sv_log_level v = SV_LOG_ERROR; v <= SV_LOG_TRACE; v++) {
		capture_start(STDERR_FILENO);
		sv_log(v, "c", "e", "n=%d", (int)v);
		capture_end(STDERR_FILENO);
		len = one_line();
		ck_assert_msg(jline_parse(g_out, len, &l, &err) == 0, "%s", err.msg);
		ck_assert_str_eq(jline_get(&l, "level"), levels[v]);
		jline_free(&l);
	}
}
END_TEST

START_TEST(ocsf_text_line_shape)
{
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	capture_start(STDERR_FILENO);
	sv_log_ocsf("NET:OPEN", SV_SEV_MED, "DENIED", "net_connect_denied",
		    "/usr/bin/curl(42) -> example.com:443",
		    SV_KVS({"policy", NULL}, {"engine", "opa"}));
	capture_end(STDERR_FILENO);
	one_line();
	assert_matches(g_out, "^" TS_RE " OCSF NET:OPEN \\[MED\\] DENIED /usr/bin/curl\\(42\\) -> "
			      "example\\.com:443 \\[policy:- engine:opa\\]\n$");

	capture_start(STDERR_FILENO);
	sv_log_ocsf("PROC:LAUNCH", SV_SEV_HIGH, "ALLOWED", "e", "no context", NULL, 0);
	capture_end(STDERR_FILENO);
	assert_matches(g_out, "^" TS_RE " OCSF PROC:LAUNCH \\[HIGH\\] ALLOWED no context\n$");

	static const char *const tags[] = {"INFO", "LOW", "MED", "HIGH", "CRIT", "FATAL"};
	sv_log_setup(SV_LOG_TRACE, SV_LOG_TEXT);
	for (enum sv_sev s = SV_SEV_INFO; s <= SV_SEV_FATAL; s++) {
		char want[32];
		sv_fmt(want, sizeof(want), " OCSF X:Y [%s] A m\n", tags[s]);
		capture_start(STDERR_FILENO);
		sv_log_ocsf("X:Y", s, "A", "e", "m", NULL, 0);
		capture_end(STDERR_FILENO);
		ck_assert_msg(strstr(g_out, want), "'%s' lacks '%s'", g_out, want);
	}
}
END_TEST

START_TEST(ocsf_json_line_is_valid_json)
{
	sv_log_setup(SV_LOG_WARN, SV_LOG_JSON);
	capture_start(STDERR_FILENO);
	sv_log_ocsf("NET:OPEN", SV_SEV_MED, "DENIED", "net_connect_denied", "curl -> \"x\"",
		    SV_KVS({"policy", NULL}));
	capture_end(STDERR_FILENO);
	size_t len = one_line();
	struct jline l;
	struct sv_err err = {0};
	ck_assert_msg(jline_parse(g_out, len, &l, &err) == 0, "%s: '%s'", err.msg, g_out);
	assert_matches(jline_get(&l, "time"), "^" TS_RE "$");
	ck_assert_str_eq(jline_get(&l, "level"), "ocsf");
	ck_assert_str_eq(jline_get(&l, "class"), "NET:OPEN");
	ck_assert_str_eq(jline_get(&l, "severity"), "MED");
	ck_assert_str_eq(jline_get(&l, "action"), "DENIED");
	ck_assert_str_eq(jline_get(&l, "event"), "net_connect_denied");
	ck_assert_str_eq(jline_get(&l, "msg"), "curl -> \"x\"");
	ck_assert_str_eq(jline_get(&l, "policy"), "-");
	jline_free(&l);
}
END_TEST

START_TEST(level_filtering)
{
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	ck_assert_int_eq(sv_log_get_level(), SV_LOG_WARN);
	ck_assert(sv_log_enabled(SV_LOG_ERROR));
	ck_assert(sv_log_enabled(SV_LOG_WARN));
	ck_assert(!sv_log_enabled(SV_LOG_INFO));
	capture_start(STDERR_FILENO);
	sv_info("c", "e", "hidden-info");
	sv_debug("c", "e", "hidden-debug");
	sv_log_kv(SV_LOG_TRACE, "c", "e", "hidden-trace", NULL, 0);
	sv_warn("c", "e", "shown-warn");
	sv_error("c", "e", "shown-error");
	capture_end(STDERR_FILENO);
	ck_assert_ptr_null(strstr(g_out, "hidden"));
	ck_assert_ptr_nonnull(strstr(g_out, "shown-warn"));
	ck_assert_ptr_nonnull(strstr(g_out, "shown-error"));

	sv_log_setup(SV_LOG_ERROR, SV_LOG_TEXT);
	capture_start(STDERR_FILENO);
	sv_warn("c", "e", "hidden-warn");
	capture_end(STDERR_FILENO);
	ck_assert_str_eq(g_out, "");

	sv_log_setup(SV_LOG_TRACE, SV_LOG_TEXT);
	capture_start(STDERR_FILENO);
	sv_log_kv(SV_LOG_TRACE, "c", "e", "shown-trace", NULL, 0);
	capture_end(STDERR_FILENO);
	ck_assert_ptr_nonnull(strstr(g_out, " TRACE c: shown-trace"));
}
END_TEST

START_TEST(ocsf_medium_and_above_show_at_warn)
{
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	capture_start(STDERR_FILENO);
	sv_log_ocsf("A:B", SV_SEV_INFO, "X", "e", "hidden-info", NULL, 0);
	sv_log_ocsf("A:B", SV_SEV_LOW, "X", "e", "hidden-low", NULL, 0);
	sv_log_ocsf("A:B", SV_SEV_MED, "X", "e", "shown-med", NULL, 0);
	sv_log_ocsf("A:B", SV_SEV_CRIT, "X", "e", "shown-crit", NULL, 0);
	capture_end(STDERR_FILENO);
	ck_assert_ptr_null(strstr(g_out, "hidden"));
	ck_assert_ptr_nonnull(strstr(g_out, "shown-med"));
	ck_assert_ptr_nonnull(strstr(g_out, "shown-crit"));
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	capture_start(STDERR_FILENO);
	sv_log_ocsf("A:B", SV_SEV_LOW, "X", "e", "shown-low", NULL, 0);
	capture_end(STDERR_FILENO);
	ck_assert_ptr_nonnull(strstr(g_out, "shown-low"));
}
END_TEST

START_TEST(nothing_is_written_to_stdout)
{
	sv_log_setup(SV_LOG_TRACE, SV_LOG_TEXT);
	capture_start(STDOUT_FILENO);
	int saved_err = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(devnull, 0);
	dup2(devnull, STDERR_FILENO);
	sv_error("c", "e", "x");
	sv_log_ocsf("A:B", SV_SEV_HIGH, "X", "e", "m", NULL, 0);
	sv_log_setup(SV_LOG_TRACE, SV_LOG_JSON);
	sv_info("c", "e", "y");
	dup2(saved_err, STDERR_FILENO);
	close(saved_err);
	close(devnull);
	capture_end(STDOUT_FILENO);
	ck_assert_uint_eq(g_outlen, 0);
}
END_TEST

START_TEST(logging_preserves_errno)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	capture_start(STDERR_FILENO);
	errno = EXDEV;
	sv_info("c", "e", "m");
	int after = errno;
	capture_end(STDERR_FILENO);
	ck_assert_int_eq(after, EXDEV);
}
END_TEST

START_TEST(long_text_line_is_truncated_not_overflowed)
{
	static char big[3 * SV_LOG_LINE_MAX];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);

	capture_start(STDERR_FILENO);
	sv_info("c", "e", "%s", big);
	capture_end(STDERR_FILENO);
	one_line();
	ck_assert_uint_le(g_outlen, SV_LOG_LINE_MAX);
	ck_assert_msg(g_outlen > SV_LOG_LINE_MAX - 16, "truncated too early: %zu", g_outlen);
	ck_assert_int_eq(memcmp(g_out + g_outlen - 4, "\xe2\x80\xa6\n", 4), 0);

	/* Long key/value pairs and many of them. */
	struct sv_kv kv[64];
	for (size_t i = 0; i < SV_ARRAY_SIZE(kv); i++) {
		kv[i].key = "key";
		kv[i].val = big + sizeof(big) - 200; /* 199 bytes each */
	}
	capture_start(STDERR_FILENO);
	sv_log_kv(SV_LOG_INFO, "c", "e", big, kv, SV_ARRAY_SIZE(kv));
	capture_end(STDERR_FILENO);
	one_line();
	ck_assert_uint_le(g_outlen, SV_LOG_LINE_MAX);
	ck_assert_int_eq(memcmp(g_out + g_outlen - 4, "\xe2\x80\xa6\n", 4), 0);

	capture_start(STDERR_FILENO);
	sv_log_ocsf("A:B", SV_SEV_HIGH, "X", "e", big, kv, SV_ARRAY_SIZE(kv));
	capture_end(STDERR_FILENO);
	one_line();
	ck_assert_uint_le(g_outlen, SV_LOG_LINE_MAX);

	/* A line that just fits is not marked as truncated. */
	capture_start(STDERR_FILENO);
	sv_info("c", "e", "%.100s", big);
	capture_end(STDERR_FILENO);
	ck_assert_ptr_null(strstr(g_out, "\xe2\x80\xa6"));
}
END_TEST

START_TEST(long_json_line_is_truncated_not_overflowed)
{
	static char big[3 * SV_LOG_LINE_MAX];
	memset(big, '"', sizeof(big) - 1); /* every byte doubles when escaped */
	big[sizeof(big) - 1] = '\0';
	sv_log_setup(SV_LOG_INFO, SV_LOG_JSON);
	capture_start(STDERR_FILENO);
	sv_log_kv(SV_LOG_INFO, "c", "e", big, SV_KVS({"k", big}));
	capture_end(STDERR_FILENO);
	one_line();
	ck_assert_uint_le(g_outlen, SV_LOG_LINE_MAX);
}
END_TEST

START_TEST(long_json_line_stays_valid_json)
{
	/* A consumer reading JSON lines must be able to parse every line, long ones included. */
	static char big[2 * SV_LOG_LINE_MAX];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sv_log_setup(SV_LOG_INFO, SV_LOG_JSON);
	capture_start(STDERR_FILENO);
	sv_log_kv(SV_LOG_INFO, "c", "long_event", big, NULL, 0);
	capture_end(STDERR_FILENO);
	size_t len = one_line();
	ck_assert_uint_le(g_outlen, SV_LOG_LINE_MAX);
	struct jline l;
	struct sv_err err = {0};
	ck_assert_msg(jline_parse(g_out, len, &l, &err) == 0, "truncated JSON line is invalid: %s",
		      err.msg);
	ck_assert_str_eq(jline_get(&l, "event"), "long_event");
	jline_free(&l);
}
END_TEST

START_TEST(truncated_line_is_valid_utf8)
{
	/* Two-byte characters: a cut in the middle of one would leave a broken sequence. */
	static char big[2 * SV_LOG_LINE_MAX + 2];
	for (size_t i = 0; i + 1 < sizeof(big) - 1; i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[sizeof(big) - 1] = '\0';
	for (int odd = 0; odd < 2; odd++) {
		sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
		capture_start(STDERR_FILENO);
		sv_log_kv(SV_LOG_INFO, odd ? "cc" : "c", "e", big, NULL, 0);
		capture_end(STDERR_FILENO);
		size_t len = one_line();
		/* Validate by wrapping the line in a JSON string and parsing it. */
		char *quoted = malloc(len + 2);
		ck_assert_ptr_nonnull(quoted);
		quoted[0] = '"';
		memcpy(quoted + 1, g_out, len);
		quoted[len + 1] = '"';
		struct sv_json j;
		struct sv_err err = {0};
		char *s = NULL;
		sv_json_init(&j, "line", quoted, len + 2);
		int r = sv_json_string(&j, &s, NULL, false, &err);
		free(s);
		free(quoted);
		ck_assert_msg(r == 0, "component '%s': %s", odd ? "cc" : "c", err.msg);
	}
}
END_TEST

/* --- the sink (gateway log push) ---------------------------------------------------------- */

struct sunk {
	int n;
	enum sv_log_level level[4];
	bool ocsf[4];
	char text[4][256];
	char event[4][64];
};

static void sink_record(const struct sv_log_record *rec, void *data)
{
	struct sunk *k = data;
	if (k->n >= 4)
		return;
	k->level[k->n] = rec->level;
	k->ocsf[k->n] = rec->ocsf;
	snprintf(k->text[k->n], sizeof(k->text[0]), "%.*s", (int)rec->len, rec->text);
	snprintf(k->event[k->n], sizeof(k->event[0]), "%s", rec->event);
	k->n++;
	/* A record logged from inside the sink must not come back here. */
	sv_log(SV_LOG_ERROR, "test", "inside_sink", "from the sink");
}

START_TEST(sink_gets_records_at_its_level_whatever_the_console_level)
{
	struct sunk k = {0};
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	sv_log_set_sink(sink_record, &k, SV_LOG_INFO);
	capture_start(STDERR_FILENO);
	sv_log_kv(SV_LOG_INFO, "comp", "ev_info", "hello world", SV_KVS({"k", "v w"}));
	sv_log(SV_LOG_DEBUG, "comp", "ev_debug", "not pushed");
	sv_log_ocsf("NET:OPEN", SV_SEV_LOW, "ALLOWED", "ev_ocsf", "curl -> a:443", NULL, 0);
	const char *out = capture_end(STDERR_FILENO);
	sv_log_set_sink(NULL, NULL, SV_LOG_INFO);
	/* The console (warn) shows only what the sink's own call logged at error. */
	ck_assert_ptr_null(strstr(out, "hello world"));
	ck_assert_ptr_nonnull(strstr(out, "from the sink"));
	ck_assert_int_eq(k.n, 2);
	ck_assert_int_eq(k.level[0], SV_LOG_INFO);
	ck_assert(!k.ocsf[0]);
	ck_assert_str_eq(k.text[0], "hello world k=\"v w\"");
	ck_assert_str_eq(k.event[0], "ev_info");
	ck_assert(k.ocsf[1]);
	ck_assert_int_eq(k.level[1], SV_LOG_INFO);
	ck_assert_str_eq(k.text[1], "NET:OPEN [LOW] ALLOWED curl -> a:443");
}
END_TEST

START_TEST(sink_not_called_in_a_forked_child)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	struct sunk k = {0};
	sv_log_setup(SV_LOG_ERROR, SV_LOG_TEXT);
	sv_log_set_sink(sink_record, &k, SV_LOG_INFO);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		sv_info("comp", "in_child", "child line");
		char c = (char)('0' + k.n);
		_exit(write(p[1], &c, 1) == 1 ? 0 : 1);
	}
	char c = 'x';
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	waitpid(pid, NULL, 0);
	ck_assert_int_eq(c, '0');
	sv_info("comp", "in_parent", "parent line");
	ck_assert_int_eq(k.n, 1);
	sv_log_set_sink(NULL, NULL, SV_LOG_INFO);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(json_console_still_gives_the_sink_text)
{
	struct sunk k = {0};
	sv_log_setup(SV_LOG_INFO, SV_LOG_JSON);
	sv_log_set_sink(sink_record, &k, SV_LOG_INFO);
	capture_start(STDERR_FILENO);
	sv_info("comp", "ev", "plain %d", 7);
	const char *out = capture_end(STDERR_FILENO);
	sv_log_set_sink(NULL, NULL, SV_LOG_INFO);
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	ck_assert_ptr_nonnull(strstr(out, "\"msg\":\"plain 7\""));
	ck_assert_int_eq(k.n, 1);
	ck_assert_str_eq(k.text[0], "plain 7");
}
END_TEST

/* --- forwarding (the proxy process hands its records to PID 1) -------------------------------- */

struct fwded {
	int n;
	bool ocsf[4];
	enum sv_log_level level[4];
	char line[4][256];
};

static void fwd_record(const struct sv_log_fwd *f, void *data)
{
	struct fwded *d = data;
	if (d->n >= 4)
		return;
	d->ocsf[d->n] = f->ocsf;
	d->level[d->n] = f->level;
	snprintf(d->line[d->n], sizeof(d->line[0]), "%s|%s|%s|%s|%zu|%s", f->component, f->event,
		 f->msg, f->ocsf ? f->class_activity : "-", f->nkv, f->nkv ? f->kv[0].val : "-");
	d->n++;
}

START_TEST(forwarder_gets_structured_records_and_nothing_is_written)
{
	struct fwded d = {0};
	sv_log_setup(SV_LOG_TRACE, SV_LOG_TEXT);
	sv_log_set_forward(fwd_record, &d, SV_LOG_INFO);
	capture_start(STDERR_FILENO);
	sv_log_kv(SV_LOG_WARN, "proxy", "ev_warn", "w", SV_KVS({"k", "v"}));
	sv_log(SV_LOG_DEBUG, "proxy", "ev_debug", "below the forwarder's level");
	sv_log_ocsf("NET:OPEN", SV_SEV_MED, "DENIED", "ev_ocsf", "x -> y:443", SV_KVS({"a", "b"}));
	const char *out = capture_end(STDERR_FILENO);
	sv_log_set_forward(NULL, NULL, SV_LOG_INFO);
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(d.n, 2);
	ck_assert(!d.ocsf[0]);
	ck_assert_int_eq(d.level[0], SV_LOG_WARN);
	ck_assert_str_eq(d.line[0], "proxy|ev_warn|w|-|1|v");
	ck_assert(d.ocsf[1]);
	ck_assert_int_eq(d.level[1], SV_LOG_WARN);
	ck_assert_str_eq(d.line[1], "ocsf|ev_ocsf|x -> y:443|NET:OPEN|1|b");
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("format");
	tcase_add_test(tc, timestamp_known_epochs);
	tcase_add_test(tc, timestamp_truncates_to_buffer);
	tcase_add_test(tc, level_and_format_names_parse);
	tcase_add_test(tc, text_line_shape);
	tcase_add_test(tc, text_line_timestamp_is_now);
	tcase_add_test(tc, text_values_are_quoted_when_needed);
	tcase_add_test(tc, json_line_is_valid_json_with_required_keys);
	tcase_add_test(tc, ocsf_text_line_shape);
	tcase_add_test(tc, ocsf_json_line_is_valid_json);
	suite_add_tcase(s, tc);

	tc = tcase_create("emission");
	tcase_add_test(tc, level_filtering);
	tcase_add_test(tc, ocsf_medium_and_above_show_at_warn);
	tcase_add_test(tc, nothing_is_written_to_stdout);
	tcase_add_test(tc, logging_preserves_errno);
	tcase_add_test(tc, long_text_line_is_truncated_not_overflowed);
	tcase_add_test(tc, long_json_line_is_truncated_not_overflowed);
	tcase_add_test(tc, long_json_line_stays_valid_json);
	tcase_add_test(tc, truncated_line_is_valid_utf8);
	suite_add_tcase(s, tc);

	tc = tcase_create("sink");
	tcase_add_test(tc, sink_gets_records_at_its_level_whatever_the_console_level);
	tcase_add_test(tc, sink_not_called_in_a_forked_child);
	tcase_add_test(tc, json_console_still_gives_the_sink_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("forward");
	tcase_add_test(tc, forwarder_gets_structured_records_and_nothing_is_written);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
