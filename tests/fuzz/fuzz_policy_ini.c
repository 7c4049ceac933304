/* libFuzzer target: arbitrary bytes through the INI policy loader (pol_load_buffer).
 *
 * Invariants: a failed load names the input, sets a matching errno and leaves the policy empty;
 * a successful load passes pol_validate, enrichment under a root that does not exist adds
 * nothing, and pol_describe's text loads back to exactly the same text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/policy/policy.h"
#include "tests/fuzz/fuzz.h"

#define NAME "fuzz.ini"

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "invariant broken: %s: %s\n", what, msg);
	abort();
}

static bool is_empty(const struct pol_policy *p)
{
	return !p->read_only.n && !p->read_write.n && !p->n_rules && !p->rules && !p->run_as_user &&
	       !p->run_as_group && !p->source;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pol_policy p, q;
	struct sv_err err = {0};
	int r = pol_load_buffer(NAME, (const char *)data, size, &p, &err);
	if (r < 0) {
		if (err.code != -r)
			die("errno", err.msg);
		if (strncmp(err.msg, NAME ":", sizeof(NAME)) != 0)
			die("message does not name the input", err.msg);
		if (!is_empty(&p))
			die("failed load left a policy behind", err.msg);
		return 0;
	}
	if (r != 0)
		die("positive return", "");
	if (pol_validate(&p, &err) != 0)
		die("loaded policy fails pol_validate", err.msg);

	char *a = NULL, *b = NULL;
	if (pol_describe(&p, &a) < 0)
		die("describe", "out of memory");
	if (pol_load_buffer(NAME, a, strlen(a), &q, &err) != 0)
		die("describe output does not load back", err.msg);
	if (!pol_equal(&p, &q))
		die("describe output loads back to a different policy", a);
	if (pol_describe(&q, &b) < 0 || strcmp(a, b) != 0)
		die("describe is not stable across a reload", a);

	if (pol_enrich(&q, "/nonexistent/fuzz-root", POL_ENRICH_PROXY, &err) != 0)
		die("enrichment added paths that do not exist", err.msg);

	free(a);
	free(b);
	pol_free(&p);
	pol_free(&q);
	return 0;
}
