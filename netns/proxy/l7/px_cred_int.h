/* The credential store's representation and the resolver, shared by px_cred_store.c (install,
 * rotation), px_cred_pack.c (the copy for the proxy child) and px_cred.c (substitution).
 * Private to those three files.
 */
#ifndef PX_CRED_INT_H
#define PX_CRED_INT_H

#include "netns/proxy/l7/px_cred.h"

struct pc_ep {
	char *host; /* lower-cased pattern */
	uint16_t port;
	char *path; /* "" everywhere */
};

struct pc_var {
	char *key;
	char *value;
	size_t value_len;
	int64_t exp;
	bool bound;
	char *identity;	 /* bound only */
	char handle[65]; /* "" none */
	struct pc_ep *eps;
	size_t n_eps;
};

struct pc_gent {
	char *key;
	char *value;
	size_t value_len;
	int64_t exp;
};

struct pc_gen {
	uint64_t rev;
	struct pc_gent *e;
	size_t n;
};

struct pc_epoch {
	char *key;
	char *identity;
	uint64_t *revs;
	size_t n;
};

struct px_cred_store {
	uint64_t revision;
	struct pc_var *vars;
	size_t n_vars;
	struct pc_gen gens[PX_CRED_GENERATIONS]; /* oldest first */
	size_t n_gens;
	char **known; /* every key ever bound (§3.4 "denied" keys come from here) */
	size_t n_known;
	struct pc_epoch *epochs;
	size_t n_epochs;
};

enum pc_form { PF_CANON = 1, PF_REV, PF_STABLE, PF_ALIAS };

struct pc_tok {
	enum pc_form form;
	const char *key;
	size_t key_len;
	uint64_t rev;
	const char *handle; /* 64 bytes */
};

bool px_cred_key_char(unsigned char c);
bool px_cred_alias_char(unsigned char c);
bool px_cred_is_hex64(const char *h, size_t n);
/* Is @t (@n bytes) a whole placeholder token of one of the §3.1 forms? */
bool px_cred_tok_parse(const char *t, size_t n, struct pc_tok *o);

/* One request's view of the store (§3.4): the scope's host labels, port and redacted path. */
struct pc_view {
	const struct px_cred_store *s; /* NULL: no resolver */
	const char *host;
	uint16_t port;
	const char *path; /* redacted, no query, NUL-terminated */
	int64_t now_ms;
};

/* Resolve a whole token: 0 with the value in @val, @vlen (borrowed), PX_CRED_E_MISMATCH or
 * PX_CRED_E_UNAVAIL. */
int px_cred_resolve(const struct pc_view *v, const char *tok, size_t n, const char **val,
		    size_t *vlen);
/* Does the store hold an exact entry for @tok (any scope)? For the longest-token choice. */
bool px_cred_known(const struct px_cred_store *s, const char *tok, size_t n);

void px_cred_var_free(struct pc_var *v);
void px_cred_gen_free(struct pc_gen *g);
void px_cred_epoch_free(struct pc_epoch *e);
char *px_cred_strndup(const char *s, size_t n);

#endif
