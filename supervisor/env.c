/* Child environment construction and the secret strip list.
 *
 * Runs in the parent before fork; the resulting array is handed to the spawn path as is.
 */
#include "env.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

/* Contract §6.2: supervisor-private variables removed from every child environment. */
static const char *const secret_vars[] = {
	"OPENSHELL_OCI_IMAGE_USER",
	"OPENSHELL_SANDBOX_UID",
	"OPENSHELL_SANDBOX_GID",
	"OPENSHELL_SANDBOX_TOKEN",
	"OPENSHELL_SANDBOX_TOKEN_FILE",
	"OPENSHELL_K8S_SA_TOKEN_FILE",
	"OPENSHELL_TLS_CA",
	"OPENSHELL_TLS_CERT",
	"OPENSHELL_TLS_KEY",
	"OPENSHELL_PROVIDER_SPIFFE_WORKLOAD_API_SOCKET",
	"OPENSHELL_NETWORK_RUNTIME_CAPABILITIES",
	"OPENSHELL_GATEWAY_TLS_SERVER_NAME",
};

bool sv_env_is_secret(const char *name, size_t len)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(secret_vars); i++) {
		if (strlen(secret_vars[i]) == len && memcmp(secret_vars[i], name, len) == 0)
			return true;
	}
	return false;
}

void sv_env_free(struct sv_env *env)
{
	for (size_t i = 0; i < env->n; i++)
		free(env->vars[i]);
	free(env->vars);
	env->vars = NULL;
	env->n = 0;
}

static int push(struct sv_env *env, char *kv)
{
	char **n = realloc(env->vars, (env->n + 2) * sizeof(*n));
	if (!n) {
		free(kv);
		return -ENOMEM;
	}
	env->vars = n;
	env->vars[env->n++] = kv;
	env->vars[env->n] = NULL;
	return 0;
}

int sv_env_from(struct sv_env *env, char *const *base)
{
	env->vars = NULL;
	env->n = 0;
	int r = push(env, NULL); /* allocate the terminator slot */
	if (r < 0)
		return r;
	env->n = 0;
	for (; base && *base; base++) {
		const char *eq = strchr(*base, '=');
		if (!eq || eq == *base || sv_env_is_secret(*base, (size_t)(eq - *base)))
			continue;
		char *kv = strdup(*base);
		if (!kv || push(env, kv) < 0) {
			sv_env_free(env);
			return -ENOMEM;
		}
	}
	return 0;
}

static ssize_t find(const struct sv_env *env, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < env->n; i++) {
		if (strncmp(env->vars[i], name, len) == 0 && env->vars[i][len] == '=')
			return (ssize_t)i;
	}
	return -1;
}

const char *sv_env_get(const struct sv_env *env, const char *name)
{
	ssize_t i = find(env, name);
	return i < 0 ? NULL : env->vars[i] + strlen(name) + 1;
}

int sv_env_set(struct sv_env *env, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	char *kv = malloc(nl + vl + 2);
	if (!kv)
		return -ENOMEM;
	memcpy(kv, name, nl);
	kv[nl] = '=';
	memcpy(kv + nl + 1, value, vl);
	kv[nl + 1 + vl] = '\0';
	ssize_t i = find(env, name);
	if (i >= 0) {
		free(env->vars[i]);
		env->vars[i] = kv;
		return 0;
	}
	return push(env, kv);
}

bool sv_env_user_defines(const char *json, const char *name, struct sv_err *err)
{
	if (!json || !*json)
		return false;
	struct sv_json j;
	sv_json_init(&j, "OPENSHELL_USER_ENVIRONMENT", json, strlen(json));
	if (sv_json_object_begin(&j, err) < 0)
		return false;
	bool found = false;
	for (;;) {
		_cleanup_free_ char *key = NULL;
		int r = sv_json_object_next(&j, &key, err);
		if (r < 0)
			return false; /* lenient: a malformed object defines nothing */
		if (r == 0)
			break;
		if (sv_json_peek(&j) != SV_JSON_STRING) {
			sv_json_fail(&j, err, "values must be strings");
			return false;
		}
		if (sv_json_skip(&j, err) < 0)
			return false;
		if (strcmp(key, name) == 0)
			found = true;
	}
	if (sv_json_end(&j, err) < 0)
		return false;
	return found;
}

int sv_env_build_main(struct sv_env *env, char *const *base, bool tty,
		      const struct sv_env_identity *id, struct sv_err *err)
{
	int r = sv_env_from(env, base);
	if (r < 0)
		return sv_err_set(err, r, "child environment: out of memory");
	const char *user_env = sv_env_get(env, "OPENSHELL_USER_ENVIRONMENT");
	struct sv_err jerr = {0};
	(void)sv_env_user_defines(user_env, "", &jerr); /* validate once, warn once */
	if (jerr.code)
		sv_warn("supervisor", "user_environment_invalid", "ignoring malformed value: %s",
			jerr.msg);
	const struct {
		const char *name;
		const char *value;
	} defaults[] = {
		{"HOME", id ? id->home : NULL},
		{"USER", id ? id->user : NULL},
		{"SHELL", id ? id->shell : NULL},
		{"TERM", tty ? "xterm-256color" : "dumb"},
	};
	r = sv_env_set(env, "OPENSHELL_SANDBOX", "1");
	for (size_t i = 0; r == 0 && i < SV_ARRAY_SIZE(defaults); i++) {
		if (defaults[i].value && !sv_env_user_defines(user_env, defaults[i].name, NULL))
			r = sv_env_set(env, defaults[i].name, defaults[i].value);
	}
	if (r < 0) {
		sv_env_free(env);
		return sv_err_set(err, r, "child environment: out of memory");
	}
	return 0;
}
