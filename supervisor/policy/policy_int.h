/* Private to supervisor/policy/: what the model's files share and loaders need not see.
 *
 * Never included from outside this folder.
 */
#ifndef POL_INT_H
#define POL_INT_H

#include "policy.h"

/* The layer-4 checks of pol_validate (filesystem, identity, rules, hosts, ports, addresses):
 * 0 or -errno with @err naming the field. policy.c. */
int pol_validate_l4(const struct pol_policy *p, struct sv_err *err);

/* A growing text buffer for the INI writer (policy_ini.c). On allocation failure it sets oom
 * and ignores further output. */
struct pol_sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};
void pol_sbuf_put(struct pol_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The INI spelling of layer 7 and middlewares (policy_ini_l7.c, docs/policy.md). */
/* A string value: raw, or "..." with %XX escapes. *@out returned owned. */
int pol_ini_value(const char *v, char **out, struct sv_err *err);
/* One key of a [network.NAME.endpoint.ID] section other than host, port and allowed_ips;
 * @seen tracks the keys given once. */
int pol_ini_endpoint_key(struct pol_endpoint *e, unsigned *seen, const char *key, const char *v,
			 struct sv_err *err);
/* One key of a [middleware.NAME] section. */
int pol_ini_middleware_key(struct pol_middleware *m, unsigned *seen, const char *key,
			   const char *v, struct sv_err *err);
/* Percent-decode a key or section part. */
int pol_ini_key_decode(const char *k, size_t n, char **out, struct sv_err *err);
/* Every endpoint of @r is plain L4 with the same allowed_ips: the one-line form fits. */
bool pol_ini_rule_is_plain(const struct pol_network_rule *r);
void pol_ini_put_endpoint(struct pol_sbuf *b, const char *rule, size_t n,
			  const struct pol_endpoint *e);
void pol_ini_put_middleware(struct pol_sbuf *b, const struct pol_middleware *m);
void pol_ini_put_value(struct pol_sbuf *b, const char *s);
void pol_ini_put_key(struct pol_sbuf *b, const char *k);

#endif
