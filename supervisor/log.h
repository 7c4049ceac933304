/* The one logging module: operator lines, OCSF-shorthand security events, JSON lines, the daily
 * files in /var/log (contract §11).
 *
 * Every line is formatted into a stack buffer. During setup, in forked children and at exit it
 * is written with a single write(2) to stderr, so logging is safe between fork and exec and never
 * interleaves; once attached to the event loop, stderr is fed from a bounded queue and never
 * blocks the loop. Nothing is ever written to stdout: that belongs to the agent. Never pass
 * secrets (tokens, keys, provider values) here.
 */
#ifndef SV_LOG_H
#define SV_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct sv_loop;

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

/* --- Outputs --------------------------------------------------------------------------------
 *
 * stderr. Until sv_log_attach, every line is one blocking write(2). Attached (the loop exists),
 * a line logged by the process that attached, on any thread, is written at once with a
 * non-blocking write when nothing is queued, else queued: SV_LOG_QUEUE_BYTES of whole lines,
 * drained by the loop when stderr is writable. A full queue drops lines and counts them; once
 * stderr takes lines again one WARN line (log_lines_dropped) says how many. Forked children
 * always write directly (no lock, no heap). A stderr that is a regular file is written
 * directly; one that cannot be re-opened non-blocking is too (log_stderr_blocking). */
#define SV_LOG_QUEUE_BYTES ((size_t)256 * 1024)
#define SV_LOG_EXIT_FLUSH_MS 1000u /* sv_log_detach waits at most this long for stderr */

/* From the loop thread, once the loop exists. Returns 0 or -errno (the module then stays in
 * direct mode). Also starts the daily files' writer thread. */
int sv_log_attach(struct sv_loop *loop, struct sv_err *err);
/* On the loop thread before the loop is closed: flush the queue for at most
 * SV_LOG_EXIT_FLUSH_MS, stop the files' writer (same bound), unregister. Lines logged afterwards
 * are written directly, never waiting past that deadline. Safe when not attached. */
void sv_log_detach(void);

/* Daily files: <dir>/openshell.YYYY-MM-DD.log (UTC day of writing), the text line format at
 * info and above whatever the console's level and format; and, while sv_log_set_ocsf_json is
 * on, <dir>/openshell-ocsf.YYYY-MM-DD.log, one OCSF JSON object per OCSF record. Written only
 * by the process that opened them (O_APPEND|O_NOFOLLOW, mode 0644), by a writer thread with
 * its own bounded queue once attached (SV_LOG_FILE_QUEUE_BYTES per file; full: dropped and
 * counted). A file that reaches @max_bytes in a day is renamed to <name>.1 once and restarted;
 * when the restarted file reaches it too, its last line says so and the day's further lines
 * are dropped and counted (the next day's file opens with the count). Days older than
 * SV_LOG_FILE_KEEP_DAYS are removed when a day's file is opened. */
#define SV_LOG_DIR "/var/log"
#define SV_LOG_FILE_MAX ((long long)16 << 20)
#define SV_LOG_FILE_QUEUE_BYTES ((size_t)512 * 1024)
#define SV_LOG_FILE_KEEP_DAYS 7

/* During setup. Returns 0, or -errno with @err set when @dir or today's file cannot be opened
 * for writing (then no file is written at all). */
int sv_log_files_open(const char *dir, long long max_bytes, struct sv_err *err);
/* Stop writing files (tests). */
void sv_log_files_close(void);

/* The OCSF JSONL file, off by default (the gateway setting ocsf_json_enabled). Any thread. */
void sv_log_set_ocsf_json(bool on);
bool sv_log_ocsf_json_enabled(void);

struct sv_log_stats {
	bool attached;
	size_t queued;			 /* bytes waiting for stderr */
	unsigned long dropped;		 /* stderr lines dropped and not yet reported */
	unsigned long dropped_total;	 /* stderr lines dropped since start */
	unsigned long file_dropped[2];	 /* text, OCSF: lines the files did not take */
};
void sv_log_stats(struct sv_log_stats *out);

/* Format a UTC RFC 3339 timestamp with milliseconds ("2026-11-23T10:58:00.123Z") into @buf
 * (at least 25 bytes). Exposed for tests. */
size_t sv_log_timestamp(char *buf, size_t size, long long sec, long msec);

#endif
