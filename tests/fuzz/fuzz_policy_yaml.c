/* libFuzzer target: arbitrary bytes through the YAML policy loader (pol_load_yaml_buffer).
 *
 * Invariants: a failed load sets a matching errno, names the input with a line and column
 * ("fuzz.yaml:L:C: ...") and leaves the policy empty; a successful load passes pol_validate,
 * keeps every middleware config as valid JSON, and loading the same bytes again gives the same
 * policy (compared through pol_describe).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/json.h"
#include "supervisor/policy/policy.h"
#include "tests/fuzz/fuzz.h"

#define NAME "fuzz.yaml"

static bool is_empty(const struct pol_policy *p)
{
	return !p->read_only.n && !p->read_write.n && !p->n_rules && !p->rules && !p->run_as_user &&
	       !p->run_as_group && !p->source && !p->middlewares && !p->n_middlewares;
}

/* "fuzz.yaml:<line>:<col>: " */
static bool has_position(const char *msg)
{
	const char *s = msg + sizeof(NAME);
	if (strncmp(msg, NAME ":", sizeof(NAME)) != 0)
		return false;
	for (int field = 0; field < 2; field++) {
		size_t n = strspn(s, "0123456789");
		if (n == 0 || *s == '0' || s[n] != ':')
			return false;
		s += n + 1;
	}
	return *s == ' ';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pol_policy p, q;
	struct sv_err err = {0};
	int r = pol_load_yaml_buffer(NAME, (const char *)data, size, &p, &err);
	if (r < 0) {
		FUZZ_CHECK(err.code == -r);
		FUZZ_CHECK(has_position(err.msg));
		FUZZ_CHECK(is_empty(&p));
		return 0;
	}
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(pol_validate(&p, &err) == 0);
	for (size_t i = 0; i < p.n_middlewares; i++) {
		const char *cfg = p.middlewares[i].config_json;
		if (!cfg)
			continue;
		struct sv_json j;
		sv_json_init(&j, "config", cfg, strlen(cfg));
		FUZZ_CHECK(sv_json_peek(&j) == SV_JSON_OBJECT);
		FUZZ_CHECK(sv_json_skip(&j, &err) == 0 && sv_json_end(&j, &err) == 0);
	}
	FUZZ_CHECK(pol_load_yaml_buffer(NAME, (const char *)data, size, &q, &err) == 0);
	char *a = NULL, *b = NULL;
	FUZZ_CHECK(pol_describe(&p, &a) == 0 && pol_describe(&q, &b) == 0);
	FUZZ_CHECK(strcmp(a, b) == 0);
	free(a);
	free(b);
	pol_free(&p);
	pol_free(&q);
	return 0;
}
