/* Private to the logging module (supervisor/log*.c): the line buffer and the outputs.
 *
 * log.c formats; log_console.c owns stderr (direct, or the loop-drained queue); log_file.c owns
 * the daily files and their writer thread; log_ocsf.c renders OCSF JSONL. Nothing else includes
 * this header.
 */
#ifndef SV_LOG_INT_H
#define SV_LOG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

/* One line in a fixed buffer; never longer than SV_LOG_LINE_MAX bytes with its newline, so a
 * line reaches a pipe in one atomic write (PIPE_BUF is 4096 on Linux). */
struct sv_log_line {
	char buf[SV_LOG_LINE_MAX];
	size_t len;
	bool full;
};

void sv_log_line_put(struct sv_log_line *l, const char *s, size_t n);
void sv_log_line_puts(struct sv_log_line *l, const char *s);
/* A JSON string (quoted, escaped) of at most @max bytes of @s. */
void sv_log_line_json_strn(struct sv_log_line *l, const char *s, size_t max);
/* Mark a cut line with "…" and end it with '\n'. */
void sv_log_line_end(struct sv_log_line *l);

/* "YYYY-MM-DD" of a day count since 1970-01-01 into @buf (at least 11 bytes). */
void sv_log_day_name(long long day, char *buf, size_t size);

/* stderr (log_console.c): a finished line, newline included. Direct write(2) before attach, in
 * forked children and when stderr cannot be polled; queued while attached. */
void sv_log_console_write(const char *buf, size_t len);

/* The daily files (log_file.c). */
enum sv_log_file_kind {
	SV_LOG_FILE_TEXT = 0, /* /var/log/openshell.YYYY-MM-DD.log */
	SV_LOG_FILE_OCSF,     /* /var/log/openshell-ocsf.YYYY-MM-DD.log */
	SV_LOG_FILE_KINDS,
};
/* Whether a line of @kind would be kept (the file is open in this process and, for OCSF, the
 * JSONL switch is on). Cheap: no lock. */
bool sv_log_file_wants(enum sv_log_file_kind kind);
/* A finished line, newline included. Never blocks on the disk once attached. */
void sv_log_file_put(enum sv_log_file_kind kind, const char *buf, size_t len);
/* The writer thread: started on attach, stopped (bounded) on detach. */
void sv_log_file_start(void);
void sv_log_file_stop(unsigned timeout_ms);
void sv_log_file_stats(unsigned long dropped[SV_LOG_FILE_KINDS]);

/* OCSF JSONL (log_ocsf.c): render one record and hand it to the OCSF file. */
void sv_log_ocsf_jsonl(const char *class_activity, enum sv_sev sev, const char *action,
		       const char *event, const char *msg, const struct sv_kv *kv, size_t nkv);

#endif
