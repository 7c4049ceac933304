/* The agent's environment (contract §6.2): the supervisor's own environment minus the
 * supervisor's secrets, plus the sandbox markers and terminal defaults.
 *
 * Never hand a token, key path or driver-private variable to the agent: the strip list is the
 * single place that decides this.
 */
#ifndef SV_ENV_H
#define SV_ENV_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct sv_env {
	char **vars; /* owned "KEY=VALUE" strings, NULL-terminated */
	size_t n;
};

/* True for variables that must never reach the agent (contract §6.2 strip list). */
bool sv_env_is_secret(const char *name, size_t len);

/* Start from @base (e.g. environ) without the secrets. */
int sv_env_from(struct sv_env *env, char *const *base);
/* Set or replace NAME to VALUE. */
int sv_env_set(struct sv_env *env, const char *name, const char *value);
const char *sv_env_get(const struct sv_env *env, const char *name);
void sv_env_free(struct sv_env *env);

/* Names defined by OPENSHELL_USER_ENVIRONMENT (a JSON object of strings; parsed leniently: a
 * malformed value counts as empty and is reported through @err with the position). Returns
 * true when @name is one of its keys. */
bool sv_env_user_defines(const char *user_env_json, const char *name, struct sv_err *err);

/* What the agent's identity contributes (contract §6.2); NULL members are not set. */
struct sv_env_identity {
	const char *home;
	const char *user;
	const char *shell;
};

/* Build the main process's environment: @base without secrets, OPENSHELL_SANDBOX=1, then HOME,
 * USER, SHELL (from @id, may be NULL) and TERM unless OPENSHELL_USER_ENVIRONMENT defines them. */
int sv_env_build_main(struct sv_env *env, char *const *base, bool tty,
		      const struct sv_env_identity *id, struct sv_err *err);

#endif
