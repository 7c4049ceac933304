/* A small strict JSON pull parser for the few JSON inputs the supervisor reads from its
 * environment (the main-process spec, later the user environment object).
 *
 * It reads RFC 8259 JSON from a bounded buffer, validates UTF-8, and reports faults with the byte
 * offset. It never trusts lengths from the input and never recurses deeper than SV_JSON_DEPTH_MAX.
 */
#ifndef SV_JSON_H
#define SV_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SV_JSON_DEPTH_MAX 64

struct sv_json {
	const char *buf;
	size_t len;
	size_t pos;
	const char *what; /* input name used in messages, e.g. "OPENSHELL_MAIN_PROCESS_SPEC" */
};

enum sv_json_type {
	SV_JSON_NULL,
	SV_JSON_BOOL,
	SV_JSON_NUMBER,
	SV_JSON_STRING,
	SV_JSON_ARRAY,
	SV_JSON_OBJECT,
	SV_JSON_BAD,
};

void sv_json_init(struct sv_json *j, const char *what, const char *buf, size_t len);

/* Type of the next value (after skipping white space), without consuming it. */
enum sv_json_type sv_json_peek(struct sv_json *j);

/* Reads a string into a newly allocated NUL-terminated buffer (returned owned in *out). Strings
 * containing U+0000 are refused when @allow_nul is false. */
int sv_json_string(struct sv_json *j, char **out, size_t *outlen, bool allow_nul,
		   struct sv_err *err);
int sv_json_bool(struct sv_json *j, bool *out, struct sv_err *err);
/* A non-negative integer without fraction or exponent. */
int sv_json_uint(struct sv_json *j, uint64_t *out, struct sv_err *err);
/* Skip any value, bounded by SV_JSON_DEPTH_MAX. */
int sv_json_skip(struct sv_json *j, struct sv_err *err);

/* Containers: call _begin, then _next until it returns 0 (end) or <0 (error); it returns 1 when
 * another element (for objects: "key": consumed, key returned owned in *key) follows. */
int sv_json_object_begin(struct sv_json *j, struct sv_err *err);
int sv_json_object_next(struct sv_json *j, char **key, struct sv_err *err);
int sv_json_array_begin(struct sv_json *j, struct sv_err *err);
int sv_json_array_next(struct sv_json *j, struct sv_err *err);

/* After the top-level value: only white space may follow. */
int sv_json_end(struct sv_json *j, struct sv_err *err);

/* Report a fault at the current position: "<what>: <msg> at byte N". */
int sv_json_fail(struct sv_json *j, struct sv_err *err, const char *msg);

#endif
