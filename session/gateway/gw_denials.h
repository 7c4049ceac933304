/* Private to session/: the pure half of the denial summaries (docs/gateway.md "Denial
 * summaries"): the bounded aggregation table keyed by (host, port, binary) and the
 * SubmitPolicyAnalysis request with its mechanistic proposals (OpenShell's denial_aggregator and
 * mechanistic_mapper). No I/O, no clock: unit tests drive it directly.
 *
 * Everything stored is the agent's choice (host names, paths): bounded in count and length here,
 * so the agent cannot grow PID 1's memory past GW_DENIALS_MAX entries of bounded size.
 */
#ifndef GW_DENIALS_H
#define GW_DENIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openshell.pb-c.h"
#include "session/session.h"

#define GW_DENIAL_L7_SAMPLES	20  /* distinct (method, path) per entry, as OpenShell */
#define GW_DENIAL_ANCESTORS_MAX 8   /* nearest first; more are left out */
#define GW_DENIAL_TEXT_MAX	512 /* host, binary, ancestors, reason: cut past this */
#define GW_DENIAL_PATH_MAX	256 /* an L7 sample's path: cut past this */
/* So one entry holds at most 11 texts of 512 bytes and 20 samples of 256 + 32: the table's
 * worst case is about 256 * 11.5 KiB = 2.9 MiB, whatever the agent does. */

struct gw_dsample {
	char *method, *path;
	uint32_t count;
};

struct gw_dentry {
	char *host;
	uint16_t port;
	char *binary;
	char *ancestors[GW_DENIAL_ANCESTORS_MAX];
	size_t n_ancestors;
	char *reason, *stage; /* the first denial's */
	int64_t first_ms, last_ms;
	uint32_t count;
	struct gw_dsample l7[GW_DENIAL_L7_SAMPLES];
	size_t n_l7;
};

struct gw_dagg {
	struct gw_dentry *e[GW_DENIALS_MAX];
	size_t n;
	uint64_t dropped; /* denials not aggregated (table full, out of memory) since last clear */
};

/* Count @ev (copied) at @now_ms (epoch ms). 0, or -ENOSPC / -ENOMEM when it was dropped (then
 * counted in @a->dropped). */
int gw_dagg_add(struct gw_dagg *a, const struct gw_denial *ev, int64_t now_ms);
/* Forget every entry (and the drop count). */
void gw_dagg_clear(struct gw_dagg *a);

/* The request for @a's entries: summaries in table order and one mechanistic proposal per
 * entry whose destination is not always blocked, by descending confidence. Strings of @a are
 * borrowed: keep @a unchanged until gw_dreq_free. */
struct gw_dreq {
	Openshell__V1__SubmitPolicyAnalysisRequest req;
	void **owned; /* everything allocated for req */
	size_t n_owned, cap_owned;
};
int gw_dreq_build(const struct gw_dagg *a, const char *name, struct gw_dreq *out);
void gw_dreq_free(struct gw_dreq *r);

/* Exposed for tests: OpenShell's naming, path generalisation and scoring. */
void gw_denial_rule_name(const char *host, uint32_t port, char *buf, size_t size);
void gw_denial_generalise_path(const char *path, char *buf, size_t size);
float gw_denial_confidence(uint32_t count, uint32_t port, bool ssrf);
bool gw_denial_always_blocked(const char *host);

#endif
