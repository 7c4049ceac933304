/* The pure half of the denial summaries (gw_denials.h): the bounded aggregation table and the
 * SubmitPolicyAnalysis request with OpenShell's mechanistic proposals (mechanistic_mapper.rs:
 * rule names, path generalisation, confidence, rationale and security notes).
 *
 * Never does I/O and never trusts a length: every string is the agent's and is cut here.
 */
#include "gw_denials.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "supervisor/log.h"

/* ---- the table ------------------------------------------------------------------------------ */

static char *dup_cut(const char *s)
{
	return strndup(s ? s : "", GW_DENIAL_TEXT_MAX);
}

static void entry_free(struct gw_dentry *e)
{
	if (!e)
		return;
	free(e->host);
	free(e->binary);
	for (size_t i = 0; i < e->n_ancestors; i++)
		free(e->ancestors[i]);
	free(e->reason);
	free(e->stage);
	for (size_t i = 0; i < e->n_l7; i++) {
		free(e->l7[i].method);
		free(e->l7[i].path);
	}
	free(e);
}

static struct gw_dentry *entry_new(const struct gw_denial *ev, int64_t now)
{
	struct gw_dentry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->port = ev->port;
	e->first_ms = e->last_ms = now;
	e->host = dup_cut(ev->host);
	e->binary = dup_cut(ev->binary);
	e->reason = dup_cut(ev->reason);
	e->stage = strndup(ev->stage && *ev->stage ? ev->stage : "connect", 32);
	bool ok = e->host && e->binary && e->reason && e->stage;
	for (size_t i = 0; ok && i < ev->n_ancestors && i < GW_DENIAL_ANCESTORS_MAX; i++) {
		if (!(e->ancestors[i] = dup_cut(ev->ancestors[i])))
			ok = false;
		else
			e->n_ancestors = i + 1;
	}
	if (!ok) {
		entry_free(e);
		return NULL;
	}
	return e;
}

static void sample_add(struct gw_dentry *e, const char *method, const char *full)
{
	/* The query never leaves the sandbox (it may carry secrets): the path up to '?'. */
	char path[GW_DENIAL_PATH_MAX + 1];
	sv_fmt(path, sizeof(path), "%.*s", (int)strcspn(full, "?"), full);
	for (size_t i = 0; i < e->n_l7; i++) {
		if (strncmp(e->l7[i].method, method, 32) == 0 &&
		    strlen(e->l7[i].method) == strnlen(method, 32) &&
		    strncmp(e->l7[i].path, path, GW_DENIAL_PATH_MAX) == 0 &&
		    strlen(e->l7[i].path) == strnlen(path, GW_DENIAL_PATH_MAX)) {
			e->l7[i].count++;
			return;
		}
	}
	if (e->n_l7 == GW_DENIAL_L7_SAMPLES)
		return;
	struct gw_dsample *s = &e->l7[e->n_l7];
	s->method = strndup(method, 32);
	s->path = strndup(path, GW_DENIAL_PATH_MAX);
	if (!s->method || !s->path) {
		free(s->method);
		free(s->path);
		*s = (struct gw_dsample){0};
		return;
	}
	s->count = 1;
	e->n_l7++;
}

int gw_dagg_add(struct gw_dagg *a, const struct gw_denial *ev, int64_t now_ms)
{
	const char *host = ev->host ? ev->host : "", *bin = ev->binary ? ev->binary : "";
	struct gw_dentry *e = NULL;
	for (size_t i = 0; i < a->n && !e; i++) {
		struct gw_dentry *x = a->e[i];
		if (x->port == ev->port && strncmp(x->host, host, GW_DENIAL_TEXT_MAX) == 0 &&
		    strlen(x->host) == strnlen(host, GW_DENIAL_TEXT_MAX) &&
		    strncmp(x->binary, bin, GW_DENIAL_TEXT_MAX) == 0 &&
		    strlen(x->binary) == strnlen(bin, GW_DENIAL_TEXT_MAX))
			e = x;
	}
	if (!e) {
		if (a->n == GW_DENIALS_MAX) {
			a->dropped++;
			return -ENOSPC;
		}
		if (!(e = entry_new(ev, now_ms))) {
			a->dropped++;
			return -ENOMEM;
		}
		a->e[a->n++] = e;
	}
	if (e->count < UINT32_MAX)
		e->count++;
	e->last_ms = now_ms;
	if (ev->l7_method && ev->l7_path)
		sample_add(e, ev->l7_method, ev->l7_path);
	return 0;
}

void gw_dagg_clear(struct gw_dagg *a)
{
	for (size_t i = 0; i < a->n; i++)
		entry_free(a->e[i]);
	a->n = 0;
	a->dropped = 0;
}

/* ---- OpenShell's mechanistic mapper --------------------------------------------------------- */

static const struct {
	uint16_t port;
	const char *name;
} well_known[] = {
    {80, "HTTP"},	 {443, "HTTPS"},	  {8080, "HTTP-alt"},  {8443, "HTTPS-alt"},
    {5432, "PostgreSQL"}, {3306, "MySQL"},	  {6379, "Redis"},     {27017, "MongoDB"},
    {9200, "Elasticsearch"}, {9092, "Kafka"},	  {2181, "ZooKeeper"}, {11211, "Memcached"},
    {5672, "RabbitMQ"},	 {6443, "Kubernetes API"}, {53, "DNS"},	       {587, "SMTP"},
    {993, "IMAP"},	 {995, "POP3"},
};

static const char *port_name(uint32_t port)
{
	for (size_t i = 0; i < sizeof(well_known) / sizeof(well_known[0]); i++)
		if (well_known[i].port == port)
			return well_known[i].name;
	return NULL;
}

void gw_denial_rule_name(const char *host, uint32_t port, char *buf, size_t size)
{
	/* "allow_<host with . and - as _, other non-alphanumerics dropped>_<port>". */
	size_t n = sv_fmt(buf, size, "allow_");
	for (const char *p = host; *p && n + 1 < size; p++) {
		char c = *p;
		if (c == '.' || c == '-')
			c = '_';
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_')
			buf[n++] = c;
	}
	buf[n < size ? n : size - 1] = '\0';
	if (n < size)
		sv_fmt(buf + n, size - n, "_%u", port);
}

static bool looks_like_id(const char *seg)
{
	size_t len = strlen(seg), hex = 0, digits = 0;
	if (!len)
		return false;
	for (const char *p = seg; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F'))
			hex++;
	}
	if (digits == len && len >= 2)
		return true;
	if (hex >= 24 && strchr(seg, '-'))
		return true;
	return hex >= 16 && hex == len;
}

void gw_denial_generalise_path(const char *path, char *buf, size_t size)
{
	/* The query goes; a last segment that looks like an id becomes "*". */
	size_t n = strcspn(path, "?");
	sv_fmt(buf, size, "%.*s", (int)n, path);
	char *slash = strrchr(buf, '/');
	if (slash && looks_like_id(slash + 1))
		sv_fmt(slash + 1, size - (size_t)(slash + 1 - buf), "*");
}

float gw_denial_confidence(uint32_t count, uint32_t port, bool ssrf)
{
	float score = 0.5f;
	if (count >= 10)
		score += 0.2f;
	else if (count >= 3)
		score += 0.1f;
	if (port_name(port))
		score += 0.15f;
	if (ssrf)
		score -= 0.2f;
	return score < 0.1f ? 0.1f : score > 0.95f ? 0.95f : score;
}

/* OpenShell's is_internal_ip for an IP literal (the SSRF module's "internal" set). */
static bool internal_ip(const char *host)
{
	unsigned char a[16];
	if (inet_pton(AF_INET, host, a) == 1) {
		return a[0] == 10 || a[0] == 127 || a[0] == 0 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
		       (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) ||
		       (a[0] == 100 && (a[1] & 0xc0) == 64);
	}
	if (inet_pton(AF_INET6, host, a) == 1) {
		static const unsigned char loop6[16] = {[15] = 1}, any6[16] = {0};
		return memcmp(a, loop6, 16) == 0 || memcmp(a, any6, 16) == 0 ||
		       (a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80);
	}
	return false;
}

bool gw_denial_always_blocked(const char *host)
{
	unsigned char a[16];
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127 || (a[0] == 169 && a[1] == 254) ||
		       (a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0);
	if (inet_pton(AF_INET6, host, a) == 1) {
		static const unsigned char loop6[16] = {[15] = 1}, any6[16] = {0};
		static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
		if (memcmp(a, loop6, 16) == 0 || memcmp(a, any6, 16) == 0 ||
		    (a[0] == 0xfe && (a[1] & 0xc0) == 0x80))
			return true;
		if (memcmp(a, mapped, 12) == 0)
			return a[12] == 127 || (a[12] == 169 && a[13] == 254) ||
			       (a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] == 0);
		return false;
	}
	size_t n = strlen(host);
	while (n && host[n - 1] == '.')
		n--;
	return (n == 9 && strncasecmp(host, "localhost", 9) == 0) ||
	       (n == 24 && strncasecmp(host, "metadata.google.internal", 24) == 0);
}

/* ---- the request ---------------------------------------------------------------------------- */

static void *own(struct gw_dreq *r, void *p)
{
	if (!p)
		return NULL;
	if (r->n_owned == r->cap_owned) {
		size_t cap = r->cap_owned ? r->cap_owned * 2 : 64;
		void **n = realloc(r->owned, cap * sizeof(*n));
		if (!n) {
			free(p);
			return NULL;
		}
		r->owned = n;
		r->cap_owned = cap;
	}
	r->owned[r->n_owned++] = p;
	return p;
}

#define NEW(r, T) ((T *)own((r), calloc(1, sizeof(T))))
#define ARR(r, n, T) ((T *)own((r), calloc((n) ? (n) : 1, sizeof(T))))

static char *own_fmt(struct gw_dreq *r, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static char *own_fmt(struct gw_dreq *r, size_t size, const char *fmt, ...)
{
	char *s = own(r, malloc(size));
	if (!s)
		return NULL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s, size, fmt, ap);
	va_end(ap);
	return s;
}

static Openshell__V1__DenialSummary *summary(struct gw_dreq *r, const struct gw_dentry *e)
{
	Openshell__V1__DenialSummary *s = NEW(r, Openshell__V1__DenialSummary);
	if (!s)
		return NULL;
	openshell__v1__denial_summary__init(s);
	s->host = e->host;
	s->port = e->port;
	s->binary = e->binary;
	s->deny_reason = e->reason;
	s->denial_stage = e->stage;
	s->first_seen_ms = e->first_ms;
	s->last_seen_ms = e->last_ms;
	s->count = s->total_count = e->count;
	s->n_ancestors = e->n_ancestors;
	s->ancestors = (char **)e->ancestors;
	if (e->n_l7) {
		s->l7_request_samples = ARR(r, e->n_l7, Openshell__V1__L7RequestSample *);
		if (!s->l7_request_samples)
			return NULL;
		for (size_t i = 0; i < e->n_l7; i++) {
			Openshell__V1__L7RequestSample *x = NEW(r, Openshell__V1__L7RequestSample);
			if (!x)
				return NULL;
			openshell__v1__l7_request_sample__init(x);
			x->method = e->l7[i].method;
			x->path = e->l7[i].path;
			x->decision = "deny";
			x->count = e->l7[i].count;
			s->l7_request_samples[s->n_l7_request_samples++] = x;
		}
	}
	return s;
}

/* L7 allow rules from the samples: method and generalised path, deduplicated, sorted. */
static int l7_rules(struct gw_dreq *r, const struct gw_dentry *e,
		    Openshell__Sandbox__V1__NetworkEndpoint *ep)
{
	ep->rules = ARR(r, e->n_l7, Openshell__Sandbox__V1__L7Rule *);
	if (!ep->rules)
		return -ENOMEM;
	for (size_t i = 0; i < e->n_l7; i++) {
		char *path = own(r, malloc(strlen(e->l7[i].path) + 2));
		if (!path)
			return -ENOMEM;
		gw_denial_generalise_path(e->l7[i].path, path, strlen(e->l7[i].path) + 2);
		size_t at = 0;
		bool dup = false;
		for (; at < ep->n_rules; at++) {
			const Openshell__Sandbox__V1__L7Rule *ru = ep->rules[at];
			const Openshell__Sandbox__V1__L7Allow *o = ru ? ru->allow : NULL;
			if (!o)
				continue; /* never: every rule here is set, with its allow */
			int c = strcmp(o->method, e->l7[i].method);
			if (c == 0)
				c = strcmp(o->path, path);
			if (c == 0)
				dup = true;
			if (c >= 0)
				break;
		}
		if (dup)
			continue;
		Openshell__Sandbox__V1__L7Rule *rule = NEW(r, Openshell__Sandbox__V1__L7Rule);
		Openshell__Sandbox__V1__L7Allow *allow = NEW(r, Openshell__Sandbox__V1__L7Allow);
		if (!rule || !allow)
			return -ENOMEM;
		openshell__sandbox__v1__l7_rule__init(rule);
		openshell__sandbox__v1__l7_allow__init(allow);
		allow->method = e->l7[i].method;
		allow->path = path;
		rule->allow = allow;
		memmove(ep->rules + at + 1, ep->rules + at, (ep->n_rules - at) * sizeof(Openshell__Sandbox__V1__L7Rule *));
		ep->rules[at] = rule;
		ep->n_rules++;
	}
	return 0;
}

static const char *security_notes(struct gw_dreq *r, const char *host, uint32_t port, bool ssrf)
{
	char buf[1024];
	size_t n = 0;
	buf[0] = '\0';
	if (ssrf)
		n += sv_fmt(buf + n, sizeof(buf) - n,
			    "This connection was blocked by SSRF protection. Private IP access "
			    "requires an explicit `allowed_ips` policy entry.");
	if (internal_ip(host) || strcmp(host, "localhost") == 0)
		n += sv_fmt(buf + n, sizeof(buf) - n,
			    "%sDestination '%.200s' appears to be an internal/private address.",
			    n ? " " : "", host);
	if (port > 49152)
		n += sv_fmt(buf + n, sizeof(buf) - n,
			    "%sPort %u is in the ephemeral range \xe2\x80\x94 this may be a "
			    "temporary service.",
			    n ? " " : "", port);
	static const uint32_t db[] = {5432, 3306, 6379, 27017, 9200, 11211, 5672};
	for (size_t i = 0; i < sizeof(db) / sizeof(db[0]); i++)
		if (db[i] == port)
			n += sv_fmt(buf + n, sizeof(buf) - n,
				    "%sPort %u is a well-known database/service port. Consider "
				    "restricting with L7 rules or read-only access.",
				    n ? " " : "", port);
	return own_fmt(r, n + 1, "%s", buf);
}

static Openshell__V1__PolicyChunk *proposal(struct gw_dreq *r, const struct gw_dentry *e)
{
	Openshell__V1__PolicyChunk *ch = NEW(r, Openshell__V1__PolicyChunk);
	Openshell__Sandbox__V1__NetworkPolicyRule *rule =
	    NEW(r, Openshell__Sandbox__V1__NetworkPolicyRule);
	Openshell__Sandbox__V1__NetworkEndpoint *ep = NEW(r, Openshell__Sandbox__V1__NetworkEndpoint);
	Openshell__Sandbox__V1__NetworkEndpoint **eps = ARR(r, 1, Openshell__Sandbox__V1__NetworkEndpoint *);
	uint32_t *ports = ARR(r, 1, uint32_t);
	char *name = own(r, malloc(strlen(e->host) + 24));
	if (!ch || !rule || !ep || !eps || !ports || !name)
		return NULL;
	openshell__v1__policy_chunk__init(ch);
	openshell__sandbox__v1__network_policy_rule__init(rule);
	openshell__sandbox__v1__network_endpoint__init(ep);
	gw_denial_rule_name(e->host, e->port, name, strlen(e->host) + 24);
	bool ssrf = strcmp(e->stage, "ssrf") == 0;
	ep->host = e->host;
	ep->port = e->port;
	ports[0] = e->port;
	ep->ports = ports;
	ep->n_ports = 1;
	ep->advisor_proposed = true;
	if (e->n_l7) {
		if (l7_rules(r, e, ep) < 0)
			return NULL;
		ep->protocol = "rest";
		ep->enforcement = "enforce";
	}
	eps[0] = ep;
	rule->name = name;
	rule->endpoints = eps;
	rule->n_endpoints = 1;
	if (e->binary[0]) {
		Openshell__Sandbox__V1__NetworkBinary **bins =
		    ARR(r, 1, Openshell__Sandbox__V1__NetworkBinary *);
		Openshell__Sandbox__V1__NetworkBinary *b = NEW(r, Openshell__Sandbox__V1__NetworkBinary);
		if (!bins || !b)
			return NULL;
		openshell__sandbox__v1__network_binary__init(b);
		b->path = e->binary;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
		b->harness = true; /* as OpenShell's mapper sets it */
#pragma GCC diagnostic pop
		bins[0] = b;
		rule->binaries = bins;
		rule->n_binaries = 1;
	}
	const char *short_bin = e->binary[0] ? strrchr(e->binary, '/') : NULL;
	short_bin = !e->binary[0] ? "unknown binary" : short_bin ? short_bin + 1 : e->binary;
	const char *pn = port_name(e->port);
	char pname[32] = "";
	if (pn)
		sv_fmt(pname, sizeof(pname), " (%s)", pn);
	size_t size = strlen(short_bin) + strlen(e->host) + 128;
	if (e->n_l7) {
		for (size_t i = 0; i < e->n_l7; i++)
			size += strlen(e->l7[i].method) + strlen(e->l7[i].path) + 3;
		char *s = own(r, malloc(size));
		if (!s)
			return NULL;
		size_t n = sv_fmt(s, size, "Allow %s to connect to %s:%u%s with L7 inspection. "
				  "Allowed paths: ", short_bin, e->host, e->port, pname);
		for (size_t i = 0; i < e->n_l7; i++)
			n += sv_fmt(s + n, size - n, "%s%s %s", i ? ", " : "", e->l7[i].method,
				    e->l7[i].path);
		sv_fmt(s + n, size - n, ".");
		ch->rationale = s;
	} else {
		ch->rationale = own_fmt(r, size, "Allow %s to connect to %s:%u%s.", short_bin,
					e->host, e->port, pname);
	}
	ch->security_notes = (char *)security_notes(r, e->host, e->port, ssrf);
	if (!ch->rationale || !ch->security_notes)
		return NULL;
	ch->status = "pending";
	ch->rule_name = name;
	ch->proposed_rule = rule;
	ch->confidence = gw_denial_confidence(e->count, e->port, ssrf);
	ch->stage = e->stage;
	ch->hit_count = e->count > INT32_MAX ? INT32_MAX : (int32_t)e->count;
	ch->first_seen_ms = e->first_ms;
	ch->last_seen_ms = e->last_ms;
	ch->binary = e->binary;
	return ch;
}

int gw_dreq_build(const struct gw_dagg *a, const char *name, struct gw_dreq *out)
{
	memset(out, 0, sizeof(*out));
	Openshell__V1__SubmitPolicyAnalysisRequest *q = &out->req;
	openshell__v1__submit_policy_analysis_request__init(q);
	q->name = (char *)(name ? name : "");
	q->analysis_mode = "mechanistic";
	q->summaries = ARR(out, a->n, Openshell__V1__DenialSummary *);
	q->proposed_chunks = ARR(out, a->n, Openshell__V1__PolicyChunk *);
	if (!q->summaries || !q->proposed_chunks)
		goto oom;
	for (size_t i = 0; i < a->n; i++) {
		const struct gw_dentry *e = a->e[i];
		if (!(q->summaries[q->n_summaries] = summary(out, e)))
			goto oom;
		q->n_summaries++;
		if (gw_denial_always_blocked(e->host))
			continue; /* never proposed (SSRF hardening), as OpenShell */
		Openshell__V1__PolicyChunk *ch = proposal(out, e);
		if (!ch)
			goto oom;
		/* Insertion by descending confidence, stable. */
		size_t at = q->n_proposed_chunks;
		while (at > 0 && q->proposed_chunks[at - 1]->confidence < ch->confidence)
			at--;
		memmove(q->proposed_chunks + at + 1, q->proposed_chunks + at,
			(q->n_proposed_chunks - at) * sizeof(Openshell__V1__PolicyChunk *));
		q->proposed_chunks[at] = ch;
		q->n_proposed_chunks++;
	}
	return 0;
oom:
	gw_dreq_free(out);
	return -ENOMEM;
}

void gw_dreq_free(struct gw_dreq *r)
{
	for (size_t i = 0; i < r->n_owned; i++)
		free(r->owned[i]);
	free(r->owned);
	memset(r, 0, sizeof(*r));
}
