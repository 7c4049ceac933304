/* pol_describe: the policy as INI text that pol_load_buffer reads back to the same model
 * (docs/policy.md), every layer-7 and middleware field included.
 *
 * Pure formatting into a heap buffer; it never fails half-way (out of memory: nothing).
 */
#include "policy_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- writing ------------------------------------------------------------------------------- */

void pol_sbuf_put(struct pol_sbuf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->oom)
		return;
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above */
	int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (b->s && (size_t)n < b->cap - b->len) {
		b->len += (size_t)n;
		return;
	}
	size_t need = b->len + (size_t)n + 1, cap = b->cap ? b->cap : 1024;
	while (cap < need)
		cap *= 2;
	char *s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return;
	}
	b->s = s;
	b->cap = cap;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void put_list(struct pol_sbuf *b, const char *key, const struct pol_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		pol_sbuf_put(b, "%s = %s\n", key, sv->v[i]);
}

static void put_ips(struct pol_sbuf *b, const char *prefix, const struct pol_endpoint *e)
{
	char cidr[64];
	for (size_t i = 0; i < e->n_allowed_ips; i++) {
		pol_cidr_format(&e->allowed_ips[i], cidr, sizeof(cidr));
		pol_sbuf_put(b, "%sallowed_ips = %s\n", prefix, cidr);
	}
}

static void put_rule(struct pol_sbuf *b, const struct pol_network_rule *r)
{
	pol_sbuf_put(b, "\n[network.%s]\n", r->name);
	if (!pol_ini_rule_is_plain(r)) {
		/* Per-endpoint settings: every endpoint gets its own section. */
		put_list(b, "binary", &r->binaries);
		for (size_t i = 0; i < r->n_endpoints; i++)
			pol_ini_put_endpoint(b, r->name, i + 1, &r->endpoints[i]);
		return;
	}
	for (size_t i = 0; i < r->n_endpoints; i++) {
		const struct pol_endpoint *e = &r->endpoints[i];
		bool v6 = e->kind == POL_HOST_IPV6;
		pol_sbuf_put(b, "endpoint = %s%s%s:", v6 ? "[" : "", e->host ? e->host : "",
			     v6 ? "]" : "");
		for (size_t j = 0; j < e->n_ports; j++)
			pol_sbuf_put(b, "%s%u", j ? "," : "", e->ports[j]);
		pol_sbuf_put(b, "\n");
	}
	put_list(b, "binary", &r->binaries);
	if (r->n_endpoints)
		put_ips(b, "", &r->endpoints[0]);
}

/* "key = ;x" reads back as an empty value and an inline comment, "key =;x" as ";x" (inih
 * takes ';' as a comment only after a blank): every value that starts with ';' loses the
 * blank before it, so what is written reads back as it was. */
static void glue_semicolons(char *s)
{
	for (char *line = s; line && *line;) {
		char *nl = strchr(line, '\n');
		/* Only the separator: the first " = " of the line (keys hold none). */
		char *eq = strstr(line, " = ");
		if (eq && (!nl || eq < nl) && eq[3] == ';') {
			memmove(eq + 2, eq + 3, strlen(eq + 3) + 1); /* drop the blank after '=' */
			if (nl)
				nl--;
		}
		line = nl ? nl + 1 : NULL;
	}
}

int pol_describe(const struct pol_policy *p, char **out)
{
	struct pol_sbuf b = {0};
	char src[128];
	size_t i = 0;
	for (const char *s = p->source ? p->source : "-"; *s && i + 1 < sizeof(src); s++)
		src[i++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
	src[i] = '\0';
	pol_sbuf_put(&b, "; effective sandbox policy (source: %s)\n", src);
	pol_sbuf_put(&b, "[filesystem]\ninclude_workdir = %s\n",
		     p->include_workdir ? "true" : "false");
	put_list(&b, "read_only", &p->read_only);
	put_list(&b, "read_write", &p->read_write);
	pol_sbuf_put(&b, "\n[landlock]\ncompatibility = %s\n",
		     p->landlock_compat == POL_HARD_REQUIREMENT ? "hard_requirement"
								: "best_effort");
	pol_sbuf_put(&b, "\n[process]\n");
	if (p->run_as_user)
		pol_sbuf_put(&b, "run_as_user = %s\n", p->run_as_user);
	else
		pol_sbuf_put(&b, "; run_as_user omitted: taken from the image or driver\n");
	if (p->run_as_group)
		pol_sbuf_put(&b, "run_as_group = %s\n", p->run_as_group);
	else
		pol_sbuf_put(&b, "; run_as_group omitted: taken from the image or driver\n");
	if (p->n_rules == 0)
		pol_sbuf_put(&b, "\n; no [network.*] rules: all egress is denied\n");
	for (size_t r = 0; r < p->n_rules; r++)
		put_rule(&b, &p->rules[r]);
	for (size_t m = 0; m < p->n_middlewares; m++)
		pol_ini_put_middleware(&b, &p->middlewares[m]);
	if (b.oom || !b.s) {
		free(b.s);
		return -ENOMEM;
	}
	glue_semicolons(b.s);
	*out = b.s;
	return 0;
}
