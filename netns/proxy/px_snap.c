/* Refcounted deep copies of a policy's network rules for the egress proxy (see px_snap.h).
 *
 * Copies only what px_policy_decide and the logs read; never keeps a pointer into the source.
 */
#include "netns/proxy/px_snap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void *dup_mem(const void *src, size_t n, size_t size)
{
	if (n == 0)
		return NULL;
	void *p = calloc(n, size);
	if (p)
		memcpy(p, src, n * size);
	return p;
}

static int copy_endpoint(const struct pol_endpoint *s, struct pol_endpoint *d)
{
	d->kind = s->kind;
	if (s->host && !(d->host = strdup(s->host)))
		return -ENOMEM;
	if (s->n_ports && !(d->ports = dup_mem(s->ports, s->n_ports, sizeof(*s->ports))))
		return -ENOMEM;
	d->n_ports = s->n_ports;
	if (s->n_allowed_ips &&
	    !(d->allowed_ips = dup_mem(s->allowed_ips, s->n_allowed_ips, sizeof(*s->allowed_ips))))
		return -ENOMEM;
	d->n_allowed_ips = s->n_allowed_ips;
	return 0;
}

/* Fills @d in place; on failure what was copied stays in @d for pol_free to release. */
static int copy_rule(const struct pol_network_rule *s, struct pol_network_rule *d)
{
	if (s->name && !(d->name = strdup(s->name)))
		return -ENOMEM;
	if (s->n_endpoints && !(d->endpoints = calloc(s->n_endpoints, sizeof(*d->endpoints))))
		return -ENOMEM;
	for (size_t i = 0; i < s->n_endpoints; i++) {
		d->n_endpoints = i + 1;
		int r = copy_endpoint(&s->endpoints[i], &d->endpoints[i]);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < s->binaries.n; i++) {
		int r = pol_strv_push(&d->binaries, s->binaries.v[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

int px_snap_new(const struct pol_policy *src, struct px_snap **out)
{
	struct px_snap *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pol_init(&s->pol);
	s->refs = 1;
	int r = 0;
	if (src && src->source && !(s->pol.source = strdup(src->source)))
		r = -ENOMEM;
	if (r == 0 && src && src->n_rules &&
	    !(s->pol.rules = calloc(src->n_rules, sizeof(*s->pol.rules))))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && src && i < src->n_rules; i++) {
		s->pol.n_rules = i + 1;
		r = copy_rule(&src->rules[i], &s->pol.rules[i]);
	}
	if (r < 0) {
		pol_free(&s->pol);
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

struct px_snap *px_snap_get(struct px_snap *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void px_snap_put(struct px_snap *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pol_free(&s->pol);
	free(s);
}
