/* The two glob dialects of L7 policy: Rego's glob.match (regorus 0.9 over globset with literal
 * separators) for rule paths and query values, and the Rust glob crate for endpoint `path`
 * selectors (contract §2.1, §2.3).
 *
 * Both compile to one small token language matched over the set of reachable positions, so a
 * match costs O(tokens x bytes) and no input can make it backtrack exponentially. Never
 * guesses on syntax we do not implement ('{' alternates, non-ASCII classes): Rego errors
 * there, and so do we (fail closed).
 */
#include "netns/proxy/l7/px_l7.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/l7/px_l7_int.h"

enum tok_kind {
	T_LIT,	      /* one byte */
	T_ANY,	      /* any byte */
	T_ANY_NOSEP,  /* any byte but '/' */
	T_STAR,	      /* any run */
	T_STAR_NOSEP, /* any run without '/' */
	T_REC_PREFIX, /* "" or any run ending in '/' */
	T_REC_SUFFIX, /* "/" then any run */
	T_REC_ZOM,    /* "/" or "/" any run "/" */
	T_CLASS,      /* one byte in (or, negated, not in) ranges */
	T_ALT,	      /* one of several sub-programs ({a,b} alternates) */
};

struct prog;

struct tok {
	unsigned char kind, neg, byte;
	size_t r_off, n_r; /* ranges[r_off .. r_off + n_r) */
	struct prog *alt;  /* T_ALT: n_alt owned branches */
	size_t n_alt;
};

struct prog {
	struct tok *t;
	size_t n;
	unsigned char (*r)[2];
	size_t nr;
};

/* Our bounds on {a,b} alternates (globset has none): branches in one pattern, nesting. */
#define ALT_BRANCHES_MAX 64
#define ALT_DEPTH_MAX	 8

static void prog_free(struct prog *p)
{
	for (size_t k = 0; p->t && k < p->n; k++) {
		for (size_t b = 0; b < p->t[k].n_alt; b++)
			prog_free(&p->t[k].alt[b]);
		free(p->t[k].alt);
	}
	free(p->t);
	free(p->r);
	p->t = NULL;
	p->r = NULL;
	p->n = p->nr = 0;
}

static int prog_alloc(struct prog *p, size_t len)
{
	p->n = p->nr = 0;
	p->t = malloc((len + 1) * sizeof(*p->t));
	p->r = malloc((len + 1) * sizeof(*p->r));
	if (!p->t || !p->r) {
		prog_free(p);
		p->t = NULL;
		p->r = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void push(struct prog *p, unsigned char kind, unsigned char byte)
{
	p->t[p->n++] = (struct tok){.kind = kind, .byte = byte};
}

/* ---- globset (regorus glob.match) -------------------------------------------------------- */

static int gs_class(struct prog *p, const char *s, size_t n, size_t *i)
{
	struct tok t = {.kind = T_CLASS, .r_off = p->nr};
	bool first = true, in_range = false;

	if (*i < n && (s[*i] == '!' || s[*i] == '^')) {
		t.neg = 1;
		(*i)++;
	}
	for (;;) {
		if (*i >= n)
			return -EINVAL; /* unclosed class */
		unsigned char c = (unsigned char)s[(*i)++];
		if (c >= 0x80)
			return -EINVAL; /* non-ASCII classes: not implemented */
		if (c == ']' && !first)
			break;
		if (c == '-' && !first && !in_range) {
			in_range = true;
		} else if (in_range) {
			if (c < p->r[p->nr - 1][0])
				return -EINVAL; /* inverted range */
			p->r[p->nr - 1][1] = c;
			in_range = false;
		} else {
			p->r[p->nr][0] = p->r[p->nr][1] = c;
			p->nr++;
		}
		first = false;
	}
	if (in_range) {
		p->r[p->nr][0] = p->r[p->nr][1] = '-';
		p->nr++;
	}
	t.n_r = p->nr - t.r_off;
	p->t[p->n++] = t;
	return 0;
}

/* globset's parse_star with literal_separator. @i is just past the first '*'; @prev is the
 * pattern byte before it (0 at the start); @in_alt: inside {alternates}. */
static int gs_star(struct prog *p, const char *s, size_t n, size_t *i, unsigned char prev,
		   bool in_alt)
{
	if (*i >= n || s[*i] != '*') {
		push(p, T_STAR_NOSEP, 0);
		return 0;
	}
	(*i)++;
	if (p->n == 0) {
		if (*i < n && s[*i] != '/') {
			push(p, T_STAR_NOSEP, 0);
			push(p, T_STAR_NOSEP, 0);
		} else {
			push(p, T_REC_PREFIX, 0);
			if (*i < n)
				(*i)++;
		}
		return 0;
	}
	bool suffix;
	if (prev != '/' && (!in_alt || (prev != ',' && prev != '{'))) {
		push(p, T_STAR_NOSEP, 0);
		push(p, T_STAR_NOSEP, 0);
		return 0;
	}
	if (*i >= n || (in_alt && (s[*i] == ',' || s[*i] == '}'))) {
		suffix = true;
	} else if (s[*i] == '/') {
		(*i)++;
		suffix = false;
	} else {
		push(p, T_STAR_NOSEP, 0);
		push(p, T_STAR_NOSEP, 0);
		return 0;
	}
	unsigned char last = p->t[--p->n].kind;
	if (last == T_ALT)
		return -EINVAL; /* globset drops an alternation here; we refuse instead */
	if (last == T_REC_PREFIX || last == T_REC_SUFFIX)
		push(p, last, 0);
	else
		push(p, suffix ? T_REC_SUFFIX : T_REC_ZOM, 0);
	return 0;
}

static int gs_seq(struct prog *p, const char *s, size_t n, size_t *i, int depth, char *stop,
		  int *budget);

/* After '{': branches up to the matching '}', pushed as one T_ALT (empty branches dropped, as
 * globset does without empty_alternates; nothing at all if every branch is empty). */
static int gs_alt(struct prog *p, const char *s, size_t n, size_t *i, int depth, int *budget)
{
	struct prog *br = NULL;
	size_t nb = 0, kept = 0;
	char stop = 0;
	int r = 0;

	if (depth > ALT_DEPTH_MAX)
		return -EINVAL;
	do {
		struct prog *grown;
		if (--*budget < 0 || !(grown = realloc(br, (nb + 1) * sizeof(*br)))) {
			r = *budget < 0 ? -EINVAL : -ENOMEM;
			break;
		}
		br = grown;
		r = prog_alloc(&br[nb], n - *i);
		if (r < 0)
			break;
		r = gs_seq(&br[nb++], s, n, i, depth, &stop, budget);
	} while (r == 0 && stop == ',');
	if (r == 0 && stop != '}')
		r = -EINVAL; /* unclosed alternates */
	for (size_t b = 0; b < nb; b++) {
		if (r == 0 && br[b].n > 0)
			br[kept++] = br[b];
		else
			prog_free(&br[b]);
	}
	if (r < 0 || kept == 0) {
		free(br);
		return r;
	}
	p->t[p->n++] = (struct tok){.kind = T_ALT, .alt = br, .n_alt = kept};
	return 0;
}

/* One sequence of tokens, up to the end of the pattern (@depth 0) or a ',' or '}' of the
 * enclosing alternation (reported in *@stop). */
static int gs_seq(struct prog *p, const char *s, size_t n, size_t *i, int depth, char *stop,
		  int *budget)
{
	int r;
	*stop = 0;
	while (*i < n) {
		unsigned char prev = *i ? (unsigned char)s[*i - 1] : 0,
			      c = (unsigned char)s[(*i)++];
		switch (c) {
		case '?':
			push(p, T_ANY_NOSEP, 0);
			break;
		case '*':
			r = gs_star(p, s, n, i, prev, depth > 0);
			if (r < 0)
				return r;
			break;
		case '[':
			r = gs_class(p, s, n, i);
			if (r < 0)
				return r;
			break;
		case '{':
			r = gs_alt(p, s, n, i, depth + 1, budget);
			if (r < 0)
				return r;
			break;
		case '}':
			if (depth == 0)
				return -EINVAL; /* unopened alternates */
			*stop = '}';
			return 0;
		case ',':
			if (depth == 0) {
				push(p, T_LIT, c);
				break;
			}
			*stop = ',';
			return 0;
		case '\\':
			if (*i >= n)
				return -EINVAL; /* dangling escape */
			push(p, T_LIT, (unsigned char)s[(*i)++]);
			break;
		default:
			push(p, T_LIT, c);
			break;
		}
	}
	return 0;
}

static int gs_compile(struct prog *p, const char *s, size_t n)
{
	int budget = ALT_BRANCHES_MAX;
	size_t i = 0;
	char stop;
	int r = prog_alloc(p, n);
	return r < 0 ? r : gs_seq(p, s, n, &i, 0, &stop, &budget);
}

/* ---- matching ---------------------------------------------------------------------------- */

static bool in_class(const struct prog *p, const struct tok *t, unsigned char c)
{
	bool in = false;
	for (size_t k = 0; k < t->n_r && !in; k++)
		in = c >= p->r[t->r_off + k][0] && c <= p->r[t->r_off + k][1];
	return in != (t->neg != 0);
}

/* The positions of @v reachable after @p from the positions set in @in, written to @out
 * (both n + 1 bytes). 0 or -ENOMEM. */
static int run(const struct prog *p, const unsigned char *v, size_t n, const unsigned char *in,
	       unsigned char *out)
{
	unsigned char *cur = malloc(3 * (n + 1));
	if (!cur)
		return -ENOMEM;
	unsigned char *base = cur, *nxt = cur + n + 1, *tmp = nxt + n + 1;
	memcpy(cur, in, n + 1);
	for (size_t k = 0; k < p->n; k++) {
		const struct tok *t = &p->t[k];
		bool f = false;
		memset(nxt, 0, n + 1);
		if (t->kind == T_ALT) {
			for (size_t b = 0; b < t->n_alt; b++) {
				int r = run(&t->alt[b], v, n, cur, tmp);
				if (r < 0) {
					free(base);
					return r;
				}
				for (size_t j = 0; j <= n; j++)
					nxt[j] |= tmp[j];
			}
		}
		for (size_t j = 0; j <= n && t->kind != T_ALT; j++) {
			bool sep = j > 0 && v[j - 1] == '/';
			switch (t->kind) {
			case T_LIT:
				if (j < n && cur[j] && v[j] == t->byte)
					nxt[j + 1] = 1;
				break;
			case T_ANY:
				if (j < n && cur[j])
					nxt[j + 1] = 1;
				break;
			case T_ANY_NOSEP:
				if (j < n && cur[j] && v[j] != '/')
					nxt[j + 1] = 1;
				break;
			case T_CLASS:
				if (j < n && cur[j] && in_class(p, t, v[j]))
					nxt[j + 1] = 1;
				break;
			case T_STAR:
				nxt[j] = cur[j] || (j > 0 && nxt[j - 1]);
				break;
			case T_STAR_NOSEP:
				nxt[j] = cur[j] || (j > 0 && nxt[j - 1] && v[j - 1] != '/');
				break;
			case T_REC_PREFIX:
				f = f || (j > 0 && cur[j - 1]);
				nxt[j] = cur[j] || (sep && f);
				break;
			case T_REC_SUFFIX:
				nxt[j] = f;
				f = f || (j < n && cur[j] && v[j] == '/');
				break;
			case T_REC_ZOM:
				f = f || (sep && cur[j - 1]);
				nxt[j] = sep && f;
				break;
			default:
				break;
			}
		}
		unsigned char *sw = cur;
		cur = nxt;
		nxt = sw;
	}
	memcpy(out, cur, n + 1);
	free(base);
	return 0;
}

/* 1 when the whole of @v matches @p, 0 when not, -ENOMEM. */
static int prog_match(const struct prog *p, const unsigned char *v, size_t n)
{
	/* The special case of globset: a lone "**" matches everything. */
	if (p->n == 1 && p->t[0].kind == T_REC_PREFIX)
		return 1;
	unsigned char *in = calloc(2 * (n + 1), 1);
	if (!in)
		return -ENOMEM;
	in[0] = 1;
	int r = run(p, v, n, in, in + n + 1);
	if (r == 0)
		r = in[n + 1 + n];
	free(in);
	return r;
}

/* Rewrite for regorus' delimiter handling: without '/' among the delimiters '/' becomes NUL
 * (a plain byte), and a delimiter d other than '/' becomes "/d/". */
static char *delimit(const char *s, size_t n, char delim, size_t *out_len)
{
	char *o = malloc(3 * n + 1);
	size_t w = 0;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (delim != '/' && s[i] == '/') {
			o[w++] = '\0';
		} else if (delim != '/' && s[i] == delim) {
			o[w++] = '/';
			o[w++] = delim;
			o[w++] = '/';
		} else {
			o[w++] = s[i];
		}
	}
	*out_len = w;
	return o;
}

int px_l7_glob_match(const char *pattern, const char *value, size_t value_len, char delim)
{
	size_t pl = strlen(pattern), pn, vn;
	struct prog p;

	if (memchr(value, '\0', value_len))
		return -EINVAL; /* regorus: "string contains internal glob placeholder" */
	_cleanup_free_ char *pat = delimit(pattern, pl, delim, &pn);
	_cleanup_free_ char *val = delimit(value, value_len, delim, &vn);
	if (!pat || !val)
		return -ENOMEM;
	int r = gs_compile(&p, pat, pn);
	if (r == 0)
		r = prog_match(&p, (const unsigned char *)val, vn);
	prog_free(&p);
	return r;
}

/* ---- Rust glob crate (endpoint path selectors) ------------------------------------------- */

/* glob 0.3 Pattern::new; -EINVAL for an invalid pattern. */
static int rg_compile(struct prog *p, const char *s, size_t n)
{
	int r = prog_alloc(p, n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (c == '?') {
			push(p, T_ANY, 0);
			i++;
		} else if (c == '*') {
			size_t old = i;
			while (i < n && s[i] == '*')
				i++;
			size_t count = i - old;
			if (count > 2)
				return -EINVAL;
			if (count == 1) {
				push(p, T_STAR, 0);
				continue;
			}
			if (!(i == 2 || s[old - 1] == '/'))
				return -EINVAL;
			if (i < n && s[i] == '/')
				i++;
			else if (i != n)
				return -EINVAL;
			if (!(p->n > 1 && p->t[p->n - 1].kind == T_REC_PREFIX))
				push(p, T_REC_PREFIX, 0);
		} else if (c == '[') {
			bool neg = i + 4 <= n && s[i + 1] == '!';
			size_t from = neg ? i + 3 : i + 2;
			if (!neg && !(i + 3 <= n && s[i + 1] != '!'))
				return -EINVAL;
			const char *close = memchr(s + from, ']', n - from);
			if (!close)
				return -EINVAL;
			size_t spec = neg ? i + 2 : i + 1, end = (size_t)(close - s);
			struct tok t = {.kind = T_CLASS, .neg = neg, .r_off = p->nr};
			for (size_t k = spec; k < end;) {
				if (k + 3 <= end && s[k + 1] == '-') {
					p->r[p->nr][0] = (unsigned char)s[k];
					p->r[p->nr][1] = (unsigned char)s[k + 2];
					k += 3;
				} else {
					p->r[p->nr][0] = p->r[p->nr][1] = (unsigned char)s[k];
					k++;
				}
				p->nr++;
			}
			t.n_r = p->nr - t.r_off;
			p->t[p->n++] = t;
			i = end + 1;
		} else {
			push(p, T_LIT, c);
			i++;
		}
	}
	return 0;
}

bool px_l7_endpoint_path_matches(const char *pattern, const char *path)
{
	size_t n;
	struct prog p;

	if (!pattern || !*pattern || strcmp(pattern, path) == 0 || strcmp(pattern, "**") == 0 ||
	    strcmp(pattern, "/**") == 0)
		return true;
	n = strlen(pattern);
	if (n >= 3 && strcmp(pattern + n - 3, "/**") == 0) {
		size_t pre = n - 3;
		return strncmp(path, pattern, pre) == 0 && (path[pre] == '\0' || path[pre] == '/');
	}
	if (rg_compile(&p, pattern, n) < 0) {
		prog_free(&p);
		return false; /* an invalid glob matches only itself (compared above) */
	}
	int r = prog_match(&p, (const unsigned char *)path, strlen(path));
	prog_free(&p);
	return r == 1;
}

size_t px_l7_endpoint_path_specificity(const char *pattern)
{
	size_t n = 0;
	for (const unsigned char *s = (const unsigned char *)(pattern ? pattern : ""); *s; s++)
		n += *s != '*' && (*s & 0xc0) != 0x80;
	return n;
}
