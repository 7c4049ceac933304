/* The one logging module: operator lines, OCSF-shorthand security events, JSON lines.
 *
 * Every line is formatted into a stack buffer and written with a single write(2) to stderr, so
 * logging is safe between fork and exec and never interleaves. Nothing is ever written to
 * stdout: that belongs to the agent. Never pass secrets (tokens, keys, provider values) here.
 */
#ifndef SV_LOG_H
#define SV_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum sv_log_level {
	SV_LOG_ERROR = 0,
	SV_LOG_WARN,
	SV_LOG_INFO,
	SV_LOG_DEBUG,
	SV_LOG_TRACE,
};

enum sv_log_format {
	SV_LOG_TEXT = 0,
	SV_LOG_JSON,
};

/* OCSF severity tags, contract §11. */
enum sv_sev {
	SV_SEV_INFO = 0,
	SV_SEV_LOW,
	SV_SEV_MED,
	SV_SEV_HIGH,
	SV_SEV_CRIT,
	SV_SEV_FATAL,
};

struct sv_kv {
	const char *key;
	const char *val; /* NULL prints as "-" */
};

#define SV_LOG_LINE_MAX 4096

void sv_log_setup(enum sv_log_level level, enum sv_log_format format);
enum sv_log_level sv_log_get_level(void);
enum sv_log_format sv_log_get_format(void);
/* The most verbose level any destination wants (the console or the sink): what a process that
 * forwards its records here should forward. */
enum sv_log_level sv_log_wanted_level(void);
bool sv_log_enabled(enum sv_log_level level);

/* "error", "warn", "info", "debug", "trace" (also "warning"); case-insensitive. */
int sv_log_level_parse(const char *s, enum sv_log_level *out);
int sv_log_format_parse(const char *s, enum sv_log_format *out);

/* @event is a stable snake_case name catalogued in docs/usage.md. */
void sv_log(enum sv_log_level level, const char *component, const char *event, const char *fmt,
	    ...) __attribute__((format(printf, 4, 5)));

void sv_log_kv(enum sv_log_level level, const char *component, const char *event, const char *msg,
	       const struct sv_kv *kv, size_t nkv);

/* A security finding in OCSF shorthand:
 * `<ts> OCSF <CLASS:ACTIVITY> [SEV] <ACTION> <msg> [k:v ...]`. */
void sv_log_ocsf(const char *class_activity, enum sv_sev sev, const char *action,
		 const char *event, const char *msg, const struct sv_kv *kv, size_t nkv);

#define SV_KVS(...) ((const struct sv_kv[]){__VA_ARGS__}), \
	(sizeof((const struct sv_kv[]){__VA_ARGS__}) / sizeof(struct sv_kv))

#define sv_error(comp, event, ...) sv_log(SV_LOG_ERROR, comp, event, __VA_ARGS__)
#define sv_warn(comp, event, ...) sv_log(SV_LOG_WARN, comp, event, __VA_ARGS__)
#define sv_info(comp, event, ...) sv_log(SV_LOG_INFO, comp, event, __VA_ARGS__)
#define sv_debug(comp, event, ...) sv_log(SV_LOG_DEBUG, comp, event, __VA_ARGS__)

/* A second destination for log records: the gateway log push (session/gw_logs.c).
 * @text is the operator line without its timestamp, level and component ("<msg> k=v ..."), or
 * for OCSF the shorthand "<CLASS:ACTIVITY> [SEV] <ACTION> <msg> [k:v ...]"; borrowed for the
 * call. OCSF records have level INFO, or WARN from severity MED up. */
struct sv_log_record {
	enum sv_log_level level;
	bool ocsf;
	const char *component;
	const char *event;
	const char *text;
	size_t len;
};

typedef void (*sv_log_sink_fn)(const struct sv_log_record *rec, void *data);

/* Install @fn (NULL removes it) for records at @level or more severe, whatever the console
 * level. It runs on the thread that logs, only in the process that installed it (never in a
 * forked child), and a record logged from inside @fn does not reach @fn again. */
void sv_log_set_sink(sv_log_sink_fn fn, void *data, enum sv_log_level level);

/* Forwarding, for a process whose records belong in another process's log (the unprivileged
 * proxy process hands them to PID 1, which logs them as its own through sv_log_kv and
 * sv_log_ocsf, so they reach every destination alike). With a forwarder installed, sv_log_kv
 * and sv_log_ocsf format nothing: every record at @level or more severe (OCSF records are
 * INFO, or WARN from severity MED) is handed to @fn, borrowed for the call, and nothing else is
 * written. @class_activity, @sev and @action are set for OCSF records only (ocsf == true). */
struct sv_log_fwd {
	bool ocsf;
	enum sv_log_level level;
	const char *component;
	const char *event;
	const char *msg;
	const struct sv_kv *kv;
	size_t nkv;
	const char *class_activity;
	enum sv_sev sev;
	const char *action;
};
typedef void (*sv_log_fwd_fn)(const struct sv_log_fwd *rec, void *data);
void sv_log_set_forward(sv_log_fwd_fn fn, void *data, enum sv_log_level level);

/* Format a UTC RFC 3339 timestamp with milliseconds ("2026-11-23T10:58:00.123Z") into @buf
 * (at least 25 bytes). Exposed for tests. */
size_t sv_log_timestamp(char *buf, size_t size, long long sec, long msec);

#endif
