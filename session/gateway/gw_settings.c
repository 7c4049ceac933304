/* GetSandboxConfigResponse.settings and config_revision (contract §10 "Policy poll loop"):
 * ocsf_json_enabled switches the OCSF JSONL file live, agent_policy_proposals_enabled is
 * recorded for the policy advisor, setting changes are logged as OpenShell logs them. An
 * unchanged config_revision changes nothing. Never enforces a policy; values are bounded.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gw_sync.h"
#include "session/session.h"
#include "supervisor/log.h"

#define COMP "gateway"

#define GW_SETTINGS_MAX	   64  /* settings kept and compared (our bound) */
#define GW_SETTING_VAL_MAX 256 /* bytes of a value as logged (our bound) */

#define GW_SETTING_OCSF_JSON "ocsf_json_enabled"
#define GW_SETTING_PROPOSALS "agent_policy_proposals_enabled"

static atomic_bool g_proposals;

bool gw_agent_proposals_enabled(void)
{
	return atomic_load(&g_proposals);
}

typedef Openshell__Sandbox__V1__GetSandboxConfigResponse__SettingsEntry entry;

static const Openshell__Sandbox__V1__SettingValue *value_of(const entry *e)
{
	return e && e->value && e->value->value ? e->value->value : NULL;
}

/* OpenShell's extract_bool_setting: only a bool value counts; anything else is false. */
static bool bool_setting(const gw_config_resp *r, const char *key)
{
	for (size_t i = 0; i < r->n_settings; i++) {
		const entry *e = r->settings[i];
		if (!e || !e->key || strcmp(e->key, key) != 0)
			continue;
		const Openshell__Sandbox__V1__SettingValue *v = value_of(e);
		return v &&
		       v->value_case == OPENSHELL__SANDBOX__V1__SETTING_VALUE__VALUE_BOOL_VALUE &&
		       v->bool_value;
	}
	return false;
}

/* OpenShell's format_setting_value. */
static void format_value(const entry *e, char *buf, size_t size)
{
	const Openshell__Sandbox__V1__SettingValue *v = value_of(e);
	switch (v ? v->value_case : OPENSHELL__SANDBOX__V1__SETTING_VALUE__VALUE__NOT_SET) {
	case OPENSHELL__SANDBOX__V1__SETTING_VALUE__VALUE_STRING_VALUE:
		sv_fmt(buf, size, "%s", v->string_value ? v->string_value : "");
		break;
	case OPENSHELL__SANDBOX__V1__SETTING_VALUE__VALUE_BOOL_VALUE:
		sv_fmt(buf, size, "%s", v->bool_value ? "true" : "false");
		break;
	case OPENSHELL__SANDBOX__V1__SETTING_VALUE__VALUE_INT_VALUE:
		sv_fmt(buf, size, "%" PRId64, v->int_value);
		break;
	case OPENSHELL__SANDBOX__V1__SETTING_VALUE__VALUE_BYTES_VALUE:
		sv_fmt(buf, size, "<%zu bytes>", v->bytes_value.len);
		break;
	default:
		sv_fmt(buf, size, "<unset>");
	}
}

static const struct gw_setting *find(const struct gw_settings *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].key, key) == 0)
			return &s->v[i];
	return NULL;
}

static bool in_response(const gw_config_resp *r, const char *key)
{
	for (size_t i = 0; i < r->n_settings && i < GW_SETTINGS_MAX; i++)
		if (r->settings[i] && r->settings[i]->key && strcmp(r->settings[i]->key, key) == 0)
			return true;
	return false;
}

static void log_setting(const char *event, const char *msg, const char *key, const char *old,
			const char *val)
{
	sv_log_ocsf("CONFIG:UPDATE", SV_SEV_INFO,
		    strcmp(event, "setting_removed") == 0 ? "DISABLED" : "ENABLED", event, msg,
		    SV_KVS({"key", key}, {"old", old}, {"new", val}));
}

/* Log what changed from @s to @r and make @s the new snapshot (on ENOMEM the old one stays). */
static void take_settings(struct gw_settings *s, const gw_config_resp *r, bool log)
{
	size_t n = r->n_settings < GW_SETTINGS_MAX ? r->n_settings : GW_SETTINGS_MAX;
	struct gw_setting *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return;
	size_t k = 0;
	char val[GW_SETTING_VAL_MAX];
	for (size_t i = 0; i < n; i++) {
		const entry *e = r->settings[i];
		if (!e || !e->key)
			continue;
		format_value(e, val, sizeof(val));
		if (!(v[k].key = strdup(e->key)) || !(v[k].val = strdup(val))) {
			free(v[k].key);
			break;
		}
		const struct gw_setting *old = find(s, e->key);
		if (log && !old)
			log_setting("setting_added", "setting added", e->key, NULL, val);
		else if (log && strcmp(old->val, val) != 0)
			log_setting("setting_changed", "setting changed", e->key, old->val, val);
		k++;
	}
	if (log)
		for (size_t i = 0; i < s->n; i++)
			if (!in_response(r, s->v[i].key))
				log_setting("setting_removed", "setting removed", s->v[i].key,
					    s->v[i].val, NULL);
	struct gw_settings keep = *s;
	s->v = v;
	s->n = k;
	keep.have = false;
	gw_settings_free(&keep);
}

bool gw_settings_apply(struct gw_settings *s, const gw_config_resp *r)
{
	if (s->have && s->revision == r->config_revision)
		return false;
	if (s->have) {
		char from[24], to[24];
		sv_fmt(from, sizeof(from), "%" PRIu64, s->revision);
		sv_fmt(to, sizeof(to), "%" PRIu64, r->config_revision);
		sv_log_ocsf("CONFIG:UPDATE", SV_SEV_INFO, "DETECTED", "gateway_config_changed",
			    "gateway config change detected",
			    SV_KVS({"old_config_revision", from}, {"new_config_revision", to}));
	}
	take_settings(s, r, s->have);
	sv_log_set_ocsf_json(bool_setting(r, GW_SETTING_OCSF_JSON)); /* logs a toggle */
	bool prop = bool_setting(r, GW_SETTING_PROPOSALS);
	if (atomic_exchange(&g_proposals, prop) != prop) {
		char rev[24];
		sv_fmt(rev, sizeof(rev), "%" PRIu64, r->config_revision);
		sv_log_kv(SV_LOG_INFO, COMP, "agent_proposals_toggled",
			  "agent-driven policy proposals toggled",
			  SV_KVS({"agent_policy_proposals_enabled", prop ? "true" : "false"},
				 {"config_revision", rev}));
	}
	s->have = true;
	s->revision = r->config_revision;
	return true;
}

void gw_settings_free(struct gw_settings *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key);
		free(s->v[i].val);
	}
	free(s->v);
	*s = (struct gw_settings){0};
}
