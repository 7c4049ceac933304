/* Log line formatting and dispatch to the outputs (stderr, the sink, the daily files).
 *
 * Lines are built in a fixed stack buffer. No heap, no stdio streams: this runs in forked
 * children before exec too, where every output but stderr's direct write(2) stays silent (see
 * log_console.c, log_file.c). A line that does not fit is truncated and ends with "…" rather
 * than being split.
 */
#include "log.h"
#include "log_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum sv_log_level g_level = SV_LOG_WARN;
static enum sv_log_format g_format = SV_LOG_TEXT;

/* The second destination (sv_log_set_sink). Set on the loop thread before worker threads log. */
static sv_log_sink_fn g_sink;
static void *g_sink_data;
static enum sv_log_level g_sink_level;
static pid_t g_sink_pid;
static __thread bool t_in_sink;

/* The forwarder (sv_log_set_forward): when set, records go there and nowhere else. */
static sv_log_fwd_fn g_fwd;
static void *g_fwd_data;
static enum sv_log_level g_fwd_level;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
static const char *const level_json[] = {"error", "warn", "info", "debug", "trace"};
static const char *const sev_names[] = {"INFO", "LOW", "MED", "HIGH", "CRIT", "FATAL"};

void sv_log_setup(enum sv_log_level level, enum sv_log_format format)
{
	g_level = level;
	g_format = format;
}

enum sv_log_level sv_log_get_level(void)
{
	return g_level;
}

enum sv_log_format sv_log_get_format(void)
{
	return g_format;
}

enum sv_log_level sv_log_wanted_level(void)
{
	return g_sink && g_sink_level > g_level ? g_sink_level : g_level;
}

bool sv_log_enabled(enum sv_log_level level)
{
	return level <= g_level;
}

void sv_log_set_sink(sv_log_sink_fn fn, void *data, enum sv_log_level level)
{
	g_sink = fn;
	g_sink_data = data;
	g_sink_level = level;
	g_sink_pid = getpid();
}

void sv_log_set_forward(sv_log_fwd_fn fn, void *data, enum sv_log_level level)
{
	g_fwd = fn;
	g_fwd_data = data;
	g_fwd_level = level;
}

static bool sink_wants(enum sv_log_level level)
{
	return g_sink && level <= g_sink_level && !t_in_sink && getpid() == g_sink_pid;
}

int sv_log_level_parse(const char *s, enum sv_log_level *out)
{
	static const struct {
		const char *name;
		enum sv_log_level level;
	} names[] = {
		{"error", SV_LOG_ERROR}, {"warn", SV_LOG_WARN},   {"warning", SV_LOG_WARN},
		{"info", SV_LOG_INFO},   {"debug", SV_LOG_DEBUG}, {"trace", SV_LOG_TRACE},
	};
	for (size_t i = 0; s && i < SV_ARRAY_SIZE(names); i++) {
		if (strcasecmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

int sv_log_format_parse(const char *s, enum sv_log_format *out)
{
	if (s && strcmp(s, "text") == 0)
		*out = SV_LOG_TEXT;
	else if (s && strcmp(s, "json") == 0)
		*out = SV_LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm); no libc time zone code. */
static void civil_from_days(long long z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long yy = (long long)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yy + (*m <= 2));
}

void sv_log_day_name(long long day, char *buf, size_t size)
{
	int y;
	unsigned m, d;
	civil_from_days(day, &y, &m, &d);
	sv_fmt(buf, size, "%04d-%02u-%02u", y, m, d);
}

size_t sv_log_timestamp(char *buf, size_t size, long long sec, long msec)
{
	long long days = sec / 86400;
	long long rem = sec % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	int y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	return sv_fmt(buf, size, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%03ldZ", y, m, d, rem / 3600,
		      (rem / 60) % 60, rem % 60, msec);
}

/* Room kept at the end of every line for the truncation mark and the newline. */
#define LINE_RESERVE 8
/* A JSON line that overflows is re-rendered without its pairs and with the message cut here. */
#define JSON_MSG_FALLBACK_MAX 1024

static void put(struct sv_log_line *l, const char *s, size_t n)
{
	size_t room = sizeof(l->buf) - LINE_RESERVE - l->len;
	if (l->full)
		return;
	if (n > room) {
		n = room;
		/* Never cut a UTF-8 sequence: back up to the start of the character. */
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		l->full = true;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void puts_(struct sv_log_line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* JSON string body (at most @max bytes of @s): quotes, backslashes and control bytes escaped. */
static void put_json_strn(struct sv_log_line *l, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	put(l, "\"", 1);
	for (size_t i = 0; s && s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put(l, e, 2);
		} else if (c == '\n') {
			put(l, "\\n", 2);
		} else if (c == '\t') {
			put(l, "\\t", 2);
		} else if (c < 0x20 || c == 0x7f) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			put(l, e, 6);
		} else {
			size_t run = 1;
			while (i + run < max && s[i + run] && (unsigned char)s[i + run] >= 0x20 &&
			       s[i + run] != '"' && s[i + run] != '\\' && s[i + run] != 0x7f)
				run++;
			put(l, s + i, run);
			i += run - 1;
		}
	}
	put(l, "\"", 1);
}

static void put_json_str(struct sv_log_line *l, const char *s)
{
	put_json_strn(l, s, (size_t)-1);
}

/* Text: control bytes would let a message forge a second log line; show them escaped. */
static void put_text(struct sv_log_line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	while (s && *s) {
		/* Plain runs go in one piece so truncation can respect character boundaries. */
		size_t run = 0;
		while (s[run] && (unsigned char)s[run] >= 0x20 && (unsigned char)s[run] != 0x7f)
			run++;
		if (run) {
			put(l, s, run);
			s += run;
			continue;
		}
		unsigned char c = (unsigned char)*s++;
		if (c == '\n') {
			put(l, "\\n", 2);
		} else {
			char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
			put(l, e, 4);
		}
	}
}

/* Text values: printed bare unless they contain spaces, quotes or control bytes. */
static void put_text_val(struct sv_log_line *l, const char *v)
{
	if (!v) {
		put(l, "-", 1);
		return;
	}
	bool quote = *v == '\0';
	for (const char *p = v; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == '"' || *p == '=' || *p == 0x7f)
			quote = true;
	}
	if (quote)
		put_json_str(l, v);
	else
		puts_(l, v);
}

static void put_time(struct sv_log_line *l)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char t[40];
	size_t n = sv_log_timestamp(t, sizeof(t), (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	put(l, t, n);
}

static void put_json_kv(struct sv_log_line *l, const char *k, const char *v)
{
	put(l, ",", 1);
	put_json_str(l, k);
	put(l, ":", 1);
	put_json_str(l, v ? v : "-");
}

void sv_log_line_end(struct sv_log_line *l)
{
	if (l->full) {
		memcpy(l->buf + l->len, "\xe2\x80\xa6", 3); /* LINE_RESERVE keeps room */
		l->len += 3;
	}
	l->buf[l->len++] = '\n';
}

void sv_log_line_put(struct sv_log_line *l, const char *s, size_t n)
{
	put(l, s, n);
}

void sv_log_line_puts(struct sv_log_line *l, const char *s)
{
	puts_(l, s);
}

void sv_log_line_json_strn(struct sv_log_line *l, const char *s, size_t max)
{
	put_json_strn(l, s, max);
}

static void emit(struct sv_log_line *l)
{
	sv_log_line_end(l);
	sv_log_console_write(l->buf, l->len);
}

/* What one line says; the two public entry points fill it. */
struct record {
	const char *level; /* JSON level */
	const struct sv_kv *head; /* fixed fields after "level" */
	size_t nhead;
	const char *msg;
	const struct sv_kv *kv;
	size_t nkv;
};

/* JSON: {"time":..,"level":..,<head>,"msg":..,<kv>}. A line that does not fit is rendered again
 * without its pairs and with a shortened message, so every line stays valid JSON. */
static void emit_json(const struct record *r)
{
	struct sv_log_line l;
	for (int attempt = 0; attempt < 2; attempt++) {
		bool fallback = attempt == 1;
		l.len = 0;
		l.full = false;
		puts_(&l, "{\"time\":\"");
		put_time(&l);
		puts_(&l, "\"");
		put_json_kv(&l, "level", r->level);
		for (size_t i = 0; i < r->nhead; i++)
			put_json_kv(&l, r->head[i].key, r->head[i].val);
		puts_(&l, ",\"msg\":");
		put_json_strn(&l, r->msg, fallback ? JSON_MSG_FALLBACK_MAX : (size_t)-1);
		if (fallback) {
			put_json_kv(&l, "truncated", "true");
		} else {
			for (size_t i = 0; i < r->nkv; i++)
				put_json_kv(&l, r->kv[i].key, r->kv[i].val);
		}
		puts_(&l, "}");
		if (!l.full)
			break;
	}
	l.full = false; /* even the fallback is cut only if the fixed fields are absurd */
	emit(&l);
}

/* Hand the body of a text line (after @off, before the newline) to the sink. */
static void to_sink(enum sv_log_level level, bool ocsf, const char *component, const char *event,
		    const struct sv_log_line *l, size_t off)
{
	const struct sv_log_record rec = {level, ocsf,	       component,
					  event, l->buf + off, l->len - off};
	t_in_sink = true;
	g_sink(&rec, g_sink_data);
	t_in_sink = false;
}

void sv_log_kv(enum sv_log_level level, const char *component, const char *event, const char *msg,
	       const struct sv_kv *kv, size_t nkv)
{
	if (g_fwd) {
		if (level <= g_fwd_level) {
			const struct sv_log_fwd f = {.level = level, .component = component,
						     .event = event, .msg = msg, .kv = kv, .nkv = nkv};
			g_fwd(&f, g_fwd_data);
		}
		return;
	}
	bool console = sv_log_enabled(level), sink = sink_wants(level);
	bool file = level <= SV_LOG_INFO && sv_log_file_wants(SV_LOG_FILE_TEXT);
	if (!console && !sink && !file)
		return;
	int saved = errno;
	if (console && g_format == SV_LOG_JSON) {
		const struct sv_kv head[] = {{"component", component}, {"event", event}};
		struct record r = {level_json[level], head, SV_ARRAY_SIZE(head), msg, kv, nkv};
		emit_json(&r);
		console = false;
	}
	if (console || sink || file) {
		struct sv_log_line l;
		l.len = 0;
		l.full = false;
		put_time(&l);
		put(&l, " ", 1);
		puts_(&l, level_names[level]);
		put(&l, " ", 1);
		puts_(&l, component);
		puts_(&l, ": ");
		size_t body = l.len;
		put_text(&l, msg);
		for (size_t i = 0; i < nkv; i++) {
			put(&l, " ", 1);
			puts_(&l, kv[i].key);
			put(&l, "=", 1);
			put_text_val(&l, kv[i].val);
		}
		if (sink)
			to_sink(level, false, component, event, &l, body);
		sv_log_line_end(&l);
		if (file)
			sv_log_file_put(SV_LOG_FILE_TEXT, l.buf, l.len);
		if (console)
			sv_log_console_write(l.buf, l.len);
	}
	errno = saved;
}

void sv_log(enum sv_log_level level, const char *component, const char *event, const char *fmt,
	    ...)
{
	if (!sv_log_enabled(level) && !sink_wants(level) && !(g_fwd && level <= g_fwd_level) &&
	    !(level <= SV_LOG_INFO && sv_log_file_wants(SV_LOG_FILE_TEXT)))
		return;
	char msg[SV_LOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	sv_vfmt(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sv_log_kv(level, component, event, msg, NULL, 0);
}

void sv_log_ocsf(const char *class_activity, enum sv_sev sev, const char *action,
		 const char *event, const char *msg, const struct sv_kv *kv, size_t nkv)
{
	/* Findings of medium severity and above are shown at the default level (warn). */
	enum sv_log_level level = sev >= SV_SEV_MED ? SV_LOG_WARN : SV_LOG_INFO;
	if (g_fwd) {
		if (level <= g_fwd_level) {
			const struct sv_log_fwd f = {.ocsf = true, .level = level, .component = "ocsf",
						     .event = event, .msg = msg, .kv = kv, .nkv = nkv,
						     .class_activity = class_activity, .sev = sev,
						     .action = action};
			g_fwd(&f, g_fwd_data);
		}
		return;
	}
	bool console = sv_log_enabled(level), sink = sink_wants(level);
	bool file = sv_log_file_wants(SV_LOG_FILE_TEXT); /* OCSF records are info or above */
	if (sv_log_file_wants(SV_LOG_FILE_OCSF)) {
		int e = errno;
		sv_log_ocsf_jsonl(class_activity, sev, action, event, msg, kv, nkv);
		errno = e;
	}
	if (!console && !sink && !file)
		return;
	int saved = errno;
	if (console && g_format == SV_LOG_JSON) {
		const struct sv_kv head[] = {{"component", "ocsf"},
					     {"class", class_activity},
					     {"severity", sev_names[sev]},
					     {"action", action},
					     {"event", event}};
		struct record r = {"ocsf", head, SV_ARRAY_SIZE(head), msg, kv, nkv};
		emit_json(&r);
		console = false;
	}
	if (console || sink || file) {
		struct sv_log_line l;
		l.len = 0;
		l.full = false;
		put_time(&l);
		puts_(&l, " OCSF ");
		size_t body = l.len;
		puts_(&l, class_activity);
		puts_(&l, " [");
		puts_(&l, sev_names[sev]);
		puts_(&l, "] ");
		puts_(&l, action);
		put(&l, " ", 1);
		put_text(&l, msg);
		if (nkv) {
			puts_(&l, " [");
			for (size_t i = 0; i < nkv; i++) {
				if (i)
					put(&l, " ", 1);
				puts_(&l, kv[i].key);
				put(&l, ":", 1);
				put_text_val(&l, kv[i].val);
			}
			puts_(&l, "]");
		}
		if (sink)
			to_sink(level, true, "ocsf", event, &l, body);
		sv_log_line_end(&l);
		if (file)
			sv_log_file_put(SV_LOG_FILE_TEXT, l.buf, l.len);
		if (console)
			sv_log_console_write(l.buf, l.len);
	}
	errno = saved;
}
