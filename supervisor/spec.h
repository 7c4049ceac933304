/* Main-process specification: which argv the agent runs and whether it gets a terminal.
 *
 * Resolution (contract §1.4), first match wins: argv after `--`; OPENSHELL_MAIN_PROCESS_SPEC
 * (JSON or "base64url:"-prefixed); legacy OPENSHELL_SANDBOX_COMMAND (whitespace split, no
 * shell); default "/bin/bash -l" on a PTY. Parsing never runs a shell and never guesses.
 */
#ifndef SV_SPEC_H
#define SV_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define SV_SPEC_ENV "OPENSHELL_MAIN_PROCESS_SPEC"
#define SV_SPEC_LEGACY_ENV "OPENSHELL_SANDBOX_COMMAND"
#define SV_SPEC_B64_PREFIX "base64url:"
#define SV_SPEC_VERSION 1
#define SV_SPEC_ARGS_MAX 65536      /* more argv entries than any exec could take */
#define SV_SPEC_TEXT_MAX (1u << 20) /* decoded JSON bytes */

enum sv_spec_source {
	SV_SPEC_FROM_ARGV,
	SV_SPEC_FROM_JSON,
	SV_SPEC_FROM_LEGACY,
	SV_SPEC_FROM_DEFAULT,
};

struct sv_spec {
	char **argv; /* owned, NULL-terminated */
	size_t argc;
	bool tty;
	enum sv_spec_source source;
};

/* Parse the JSON form {"version":1,"command":[...],"tty":bool}; unknown fields are ignored. */
int sv_spec_parse_json(const char *text, size_t len, struct sv_spec *out, struct sv_err *err);

/* Decode an OPENSHELL_MAIN_PROCESS_SPEC value: plain JSON or "base64url:" + unpadded base64url. */
int sv_spec_parse_env(const char *value, struct sv_spec *out, struct sv_err *err);

/* Split a legacy OPENSHELL_SANDBOX_COMMAND on ASCII white space. Empty → -EINVAL. */
int sv_spec_parse_legacy(const char *value, struct sv_spec *out, struct sv_err *err);

/* Decode unpadded URL-safe base64 (RFC 4648 §5). @out must hold len*3/4+3 bytes. Returns the
 * decoded length, or -EINVAL with the offending offset in *bad_pos. */
long sv_b64url_decode(const char *in, size_t len, unsigned char *out, size_t *bad_pos);

/* The whole resolution order. @args/@nargs are the words after `--` (may be 0). @interactive is
 * -i (PTY for explicit argv). @spec_env/@legacy_env are the variables' values or NULL. */
int sv_spec_resolve(char *const *args, size_t nargs, bool interactive, const char *spec_env,
		    const char *legacy_env, struct sv_spec *out, struct sv_err *err);

void sv_spec_free(struct sv_spec *spec);

const char *sv_spec_source_name(enum sv_spec_source src);

#endif
