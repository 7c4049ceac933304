/* OCSF JSONL (contract §11): one OCSF v1.8.0 object per security record, for the
 * openshell-ocsf daily file.
 *
 * Our CLASS:ACTIVITY shorthand maps to OCSF class and activity ids as OpenShell's openshell-ocsf
 * crate names them; a shorthand not in the tables becomes activity 99 (Other) or the Base Event
 * (class 0). It renders only what the record says and never invents a field.
 */
#include <string.h>
#include <time.h>

#include "log_int.h"

#ifndef SV_VERSION
#define SV_VERSION "0.0.0-dev"
#endif

#define OCSF_SCHEMA_VERSION "1.8.0"
#define OCSF_PRODUCT	    "OpenShell Sandbox Supervisor"
#define OCSF_VENDOR	    "OpenShell"
#define OCSF_MSG_FALLBACK   1024 /* a record that does not fit: message cut, fields left out */

struct act {
	const char *word;
	unsigned id;
	const char *name;
};

struct cls {
	const char *word;
	unsigned uid;
	const char *name;
	unsigned category;
	const char *category_name;
	const struct act *acts;
	size_t nacts;
};

/* OCSF 1.8.0 activity ids per class (openshell-ocsf enums/activity.rs). */
static const struct act net_acts[] = {
	{"OPEN", 1, "Open"},	   {"CLOSE", 2, "Close"},     {"RESET", 3, "Reset"},
	{"FAIL", 4, "Fail"},	   {"REFUSE", 5, "Refuse"},   {"TRAFFIC", 6, "Traffic"},
	{"LISTEN", 7, "Listen"},
};
static const struct act http_acts[] = {
	{"CONNECT", 1, "Connect"}, {"DELETE", 2, "Delete"},   {"GET", 3, "Get"},
	{"HEAD", 4, "Head"},	   {"OPTIONS", 5, "Options"}, {"POST", 6, "Post"},
	{"PUT", 7, "Put"},	   {"TRACE", 8, "Trace"},     {"PATCH", 9, "Patch"},
};
static const struct act proc_acts[] = {
	{"LAUNCH", 1, "Launch"}, {"TERMINATE", 2, "Terminate"},	  {"OPEN", 3, "Open"},
	{"INJECT", 4, "Inject"}, {"SET_USER_ID", 5, "Set User ID"},
};
/* Our FINDING:OPEN is a finding being created. */
static const struct act finding_acts[] = {
	{"CREATE", 1, "Create"}, {"OPEN", 1, "Create"},
	{"UPDATE", 2, "Update"}, {"CLOSE", 3, "Close"},
};
static const struct act lifecycle_acts[] = {
	{"INSTALL", 1, "Install"}, {"REMOVE", 2, "Remove"},   {"START", 3, "Start"},
	{"STOP", 4, "Stop"},	   {"RESTART", 5, "Restart"}, {"ENABLE", 6, "Enable"},
	{"DISABLE", 7, "Disable"}, {"UPDATE", 8, "Update"},
};
static const struct act api_acts[] = {
	{"CREATE", 1, "Create"}, {"READ", 2, "Read"},
	{"UPDATE", 3, "Update"}, {"DELETE", 4, "Delete"},
};
/* Device Config State Change: the shorthand's second word is the state; the activity is Log. */
static const struct act config_acts[] = {{"", 1, "Log"}};

#define CLS(w, u, n, c, cn, a) {w, u, n, c, cn, a, SV_ARRAY_SIZE(a)}
static const struct cls classes[] = {
	CLS("NET", 4001, "Network Activity", 4, "Network Activity", net_acts),
	CLS("HTTP", 4002, "HTTP Activity", 4, "Network Activity", http_acts),
	CLS("SSH", 4007, "SSH Activity", 4, "Network Activity", net_acts),
	CLS("PROC", 1007, "Process Activity", 1, "System Activity", proc_acts),
	CLS("FINDING", 2004, "Detection Finding", 2, "Findings", finding_acts),
	CLS("CONFIG", 5019, "Device Config State Change", 5, "Discovery", config_acts),
	CLS("LIFECYCLE", 6002, "Application Lifecycle", 6, "Application Activity", lifecycle_acts),
	CLS("API", 6003, "API Activity", 6, "Application Activity", api_acts),
};
static const struct cls base_class = {"", 0, "Base Event", 0, "Uncategorized", NULL, 0};
static const struct act other_act = {"", 99, "Other"};

static const struct {
	unsigned id;
	const char *name;
} severities[] = {{1, "Informational"}, {2, "Low"},	 {3, "Medium"},
		  {4, "High"},		{5, "Critical"}, {6, "Fatal"}};

/* What the shorthand's ACTION word means in OCSF terms (0: not stated). */
struct outcome {
	const char *word;
	unsigned status_id; /* 1 Success, 2 Failure */
	unsigned action_id; /* 1 Allowed, 2 Denied */
	unsigned disposition_id;
	const char *disposition; /* 1 Allowed, 2 Blocked */
};
static const struct outcome outcomes[] = {
	{"ALLOWED", 1, 1, 1, "Allowed"}, {"DENIED", 2, 2, 2, "Blocked"},
	{"REFUSED", 2, 2, 2, "Blocked"}, {"APPLIED", 1, 0, 0, NULL},
	{"SUCCESS", 1, 0, 0, NULL},	 {"FAILED", 2, 0, 0, NULL},
};

static void split(const char *ca, char *cw, size_t cw_size, char *aw, size_t aw_size)
{
	const char *colon = strchr(ca, ':');
	size_t n = colon ? (size_t)(colon - ca) : strlen(ca);
	sv_fmt(cw, cw_size, "%.*s", (int)n, ca);
	sv_fmt(aw, aw_size, "%s", colon ? colon + 1 : "");
}

static void kv_str(struct sv_log_line *l, const char *k, const char *v, size_t max)
{
	sv_log_line_put(l, ",", 1);
	sv_log_line_json_strn(l, k, (size_t)-1);
	sv_log_line_put(l, ":", 1);
	sv_log_line_json_strn(l, v ? v : "-", max);
}

static void kv_num(struct sv_log_line *l, const char *k, long long v)
{
	char buf[64];
	size_t n = sv_fmt(buf, sizeof(buf), ",\"%s\":%lld", k, v);
	sv_log_line_put(l, buf, n);
}

static void render(struct sv_log_line *l, bool fallback, const char *class_activity,
		   enum sv_sev sev, const char *action, const char *event, const char *msg,
		   const struct sv_kv *kv, size_t nkv, long long time_ms)
{
	char cw[32], aw[64];
	split(class_activity ? class_activity : "", cw, sizeof(cw), aw, sizeof(aw));
	const struct cls *c = &base_class;
	for (size_t i = 0; i < SV_ARRAY_SIZE(classes); i++)
		if (strcmp(classes[i].word, cw) == 0)
			c = &classes[i];
	const struct act *a = &other_act;
	bool config = c->uid == 5019;
	for (size_t i = 0; i < c->nacts; i++)
		if (config || strcmp(c->acts[i].word, aw) == 0)
			a = &c->acts[i];
	const struct outcome *o = NULL;
	for (size_t i = 0; action && i < SV_ARRAY_SIZE(outcomes); i++)
		if (strcmp(outcomes[i].word, action) == 0)
			o = &outcomes[i];
	unsigned s = (unsigned)sev < SV_ARRAY_SIZE(severities) ? (unsigned)sev : 0;

	char type_name[128];
	sv_fmt(type_name, sizeof(type_name), "%s: %s", c->name, a->name);
	l->len = 0;
	l->full = false;
	sv_log_line_puts(l, "{");
	char buf[32];
	size_t n = sv_fmt(buf, sizeof(buf), "\"class_uid\":%u", c->uid);
	sv_log_line_put(l, buf, n);
	kv_str(l, "class_name", c->name, (size_t)-1);
	kv_num(l, "category_uid", c->category);
	kv_str(l, "category_name", c->category_name, (size_t)-1);
	kv_num(l, "activity_id", a->id);
	kv_str(l, "activity_name", a->name, (size_t)-1);
	kv_num(l, "type_uid", (long long)c->uid * 100 + a->id);
	kv_str(l, "type_name", type_name, (size_t)-1);
	kv_num(l, "time", time_ms);
	kv_num(l, "severity_id", severities[s].id);
	kv_str(l, "severity", severities[s].name, (size_t)-1);
	if (o && o->status_id) {
		kv_num(l, "status_id", o->status_id);
		kv_str(l, "status", o->status_id == 1 ? "Success" : "Failure", (size_t)-1);
	}
	if (o && o->action_id) {
		kv_num(l, "action_id", o->action_id);
		kv_str(l, "action", o->action_id == 1 ? "Allowed" : "Denied", (size_t)-1);
		kv_num(l, "disposition_id", o->disposition_id);
		kv_str(l, "disposition", o->disposition, (size_t)-1);
	}
	if (config && aw[0]) {
		bool en = strcmp(aw, "ENABLED") == 0, dis = strcmp(aw, "DISABLED") == 0;
		kv_num(l, "state_id", en ? 2 : dis ? 1 : 99);
		kv_str(l, "state", en ? "Enabled" : dis ? "Disabled" : aw, (size_t)-1);
	}
	kv_str(l, "message", msg ? msg : "", fallback ? OCSF_MSG_FALLBACK : (size_t)-1);
	sv_log_line_puts(l, ",\"metadata\":{\"version\":\"" OCSF_SCHEMA_VERSION "\",\"product\":{"
			    "\"name\":\"" OCSF_PRODUCT "\",\"vendor_name\":\"" OCSF_VENDOR "\"");
	kv_str(l, "version", SV_VERSION, 64);
	sv_log_line_puts(l, "}}");
	/* What the shorthand carried besides: the event name, the class and action words, and
	 * the record's own pairs (a pair named like one of ours gets a "field_" prefix). */
	sv_log_line_puts(l, ",\"unmapped\":{");
	sv_log_line_json_strn(l, "event", (size_t)-1);
	sv_log_line_put(l, ":", 1);
	sv_log_line_json_strn(l, event ? event : "-", (size_t)-1);
	kv_str(l, "shorthand", class_activity, 64);
	kv_str(l, "action", action, 64);
	if (fallback) {
		sv_log_line_puts(l, ",\"truncated\":true");
	} else {
		for (size_t i = 0; i < nkv; i++) {
			const char *k = kv[i].key;
			char key[96];
			if (strcmp(k, "event") == 0 || strcmp(k, "shorthand") == 0 ||
			    strcmp(k, "action") == 0 || strcmp(k, "truncated") == 0) {
				sv_fmt(key, sizeof(key), "field_%s", k);
				k = key;
			}
			kv_str(l, k, kv[i].val, (size_t)-1);
		}
	}
	sv_log_line_puts(l, "}}");
}

void sv_log_ocsf_jsonl(const char *class_activity, enum sv_sev sev, const char *action,
		       const char *event, const char *msg, const struct sv_kv *kv, size_t nkv)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	struct sv_log_line l;
	render(&l, false, class_activity, sev, action, event, msg, kv, nkv, ms);
	if (l.full)
		render(&l, true, class_activity, sev, action, event, msg, kv, nkv, ms);
	l.full = false; /* even the fallback is cut only if the fixed fields are absurd */
	sv_log_line_end(&l);
	sv_log_file_put(SV_LOG_FILE_OCSF, l.buf, l.len);
}
