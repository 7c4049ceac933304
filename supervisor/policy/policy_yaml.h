/* Private to the YAML policy loader (policy_yaml.c, policy_yaml_net.c): the event walker.
 *
 * libyaml's event stream is walked directly against OpenShell's schema, with no document tree:
 * the schema bounds the nesting, and every value is checked where it stands so an error can name
 * "<file>:<line>:<col>: <field path>". Nothing here may accept an alias, an anchor, a tag, a
 * duplicate key or a key the schema does not name.
 */
#ifndef SV_POLICY_YAML_H
#define SV_POLICY_YAML_H

#include <yaml.h>

#include "policy.h"

/* Our own bounds (docs/policy.md, "YAML"). */
#define POL_YAML_DEPTH_MAX 16	/* nested mappings and lists; the schema needs 11 */
#define POL_YAML_ITEMS_MAX 1024 /* entries in any list or map the model gives no bound */
#define POL_YAML_KEY_MAX   256	/* bytes in a mapping key */
#define POL_YAML_PATH_MAX  320	/* bytes of the field path quoted in messages */

struct pol_yaml {
	const char *name; /* borrowed; the file name in messages */
	yaml_parser_t parser;
	yaml_event_t ev; /* the current event, owned */
	bool have_ev;
	struct sv_err *err;
	int rc; /* first failure, -errno */
	unsigned depth;
	char path[POL_YAML_PATH_MAX];
	size_t path_len;
	struct pol_policy *p;
	size_t total_ips; /* allowed_ips entries over every endpoint so far */
	yaml_mark_t doc;  /* where the document's mapping starts */
};

/* Advance to the next event; refuses aliases, anchors and tags. 0 or c->rc. */
int pol_yaml_next(struct pol_yaml *c);

/* Record the first failure as "<name>:<line>:<col>: <path>: <message>"; returns c->rc. */
int pol_yaml_fail(struct pol_yaml *c, const yaml_mark_t *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same at the current event. */
#define pol_yaml_fail_here(c, code, ...) \
	pol_yaml_fail((c), &(c)->ev.start_mark, (code), __VA_ARGS__)
/* A validator's message (@e) at @m. */
int pol_yaml_fail_err(struct pol_yaml *c, const yaml_mark_t *m, int r, const struct sv_err *e);

/* Field path bookkeeping: push returns the length to hand back to pop. */
size_t pol_yaml_push_key(struct pol_yaml *c, const char *key);
size_t pol_yaml_push_index(struct pol_yaml *c, size_t i);
void pol_yaml_pop(struct pol_yaml *c, size_t len);

/* Nesting: enter() on a collection's start event (fails past POL_YAML_DEPTH_MAX), leave() at
 * its end. next_key() reads a mapping's next key into @key (at most @size - 1 bytes), or
 * returns 1 at the mapping's end. */
int pol_yaml_enter(struct pol_yaml *c);
void pol_yaml_leave(struct pol_yaml *c);
int pol_yaml_next_key(struct pol_yaml *c, char *key, size_t size);
/* Fail unless the current event is @type ("expected <what>, got ..."). */
int pol_yaml_expect(struct pol_yaml *c, yaml_event_type_t type, const char *what);
/* The current scalar, checked (no NUL, no control byte; tab allowed), borrowed until next. */
int pol_yaml_text(struct pol_yaml *c, const char *what, const char **out);
bool pol_yaml_is_plain(const struct pol_yaml *c);

/* A fixed-schema mapping: the current event must start it. Each key must be in @fields (else
 * "unknown key") and appear once; its handler is called with the value as the current event
 * and must leave the value's last event current. */
struct pol_yaml_field {
	const char *key;
	int (*fn)(struct pol_yaml *c, void *obj);
};
int pol_yaml_struct(struct pol_yaml *c, const struct pol_yaml_field *fields, size_t n, void *obj);

/* A mapping with free keys (rule names, query keys, ...): at most @max entries, no key twice;
 * @fn gets the key (borrowed for the call), its mark, and the value as the current event. */
typedef int (*pol_yaml_entry_fn)(struct pol_yaml *c, void *obj, const char *key,
				 const yaml_mark_t *key_mark);
int pol_yaml_dict(struct pol_yaml *c, size_t max, pol_yaml_entry_fn fn, void *obj);

/* A list of at most @max items; @fn gets the item as the current event. */
typedef int (*pol_yaml_item_fn)(struct pol_yaml *c, void *obj, size_t i);
int pol_yaml_list(struct pol_yaml *c, size_t max, pol_yaml_item_fn fn, void *obj);

/* Scalars, from the current event. Strings must be scalars other than a plain null ("", "~",
 * "null"), with no NUL or control byte. */
bool pol_yaml_is_null(const struct pol_yaml *c);
int pol_yaml_str(struct pol_yaml *c, char **out);     /* returned owned */
int pol_yaml_str_opt(struct pol_yaml *c, char **out); /* "" leaves *out NULL */
int pol_yaml_bool(struct pol_yaml *c, bool *out);
int pol_yaml_uint(struct pol_yaml *c, unsigned long long min, unsigned long long max,
		  unsigned long long *out);
int pol_yaml_int32(struct pol_yaml *c, int32_t *out);
/* A list of strings appended to @sv (at most @max in total). */
int pol_yaml_strv(struct pol_yaml *c, struct pol_strv *sv, size_t max);

/* policy_yaml_net.c: `network_policies` and `network_middlewares`. */
int pol_yaml_network_policies(struct pol_yaml *c, void *obj);
int pol_yaml_network_middlewares(struct pol_yaml *c, void *obj);

#endif
