/* The credential store as a length-prefixed blob, for PID 1 to hand the proxy child its copy in
 * a sealed memfd (docs/credentials.md "Where secrets live").
 *
 * Little-endian integers; a string is a u32 length and its bytes. The reader checks every
 * length and count against the bytes left and never names a value in an error; every buffer
 * that held a value is wiped before it is freed.
 */
#include "netns/proxy/l7/px_cred_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PC_MAGIC    0x31435850u /* "PXC1" */
#define PC_PACK_MAX ((size_t)64 * 1024 * 1024)

struct wr {
	uint8_t *buf;
	size_t len, cap;
	int err;
};

static void put(struct wr *w, const void *p, size_t n)
{
	if (w->err)
		return;
	if (w->len + n > PC_PACK_MAX) {
		w->err = -E2BIG;
		return;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 1024;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *nb = malloc(cap);
		if (!nb) {
			w->err = -ENOMEM;
			return;
		}
		if (w->buf) {
			memcpy(nb, w->buf, w->len);
			px_cred_wipe(w->buf, w->cap);
			free(w->buf);
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_u64(struct wr *w, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(w, b, 8);
}

static void put_u32(struct wr *w, size_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	put(w, b, 4);
}

static void put_str(struct wr *w, const char *s, size_t n)
{
	put_u32(w, n);
	put(w, s, n);
}

static void put_cstr(struct wr *w, const char *s)
{
	put_str(w, s ? s : "", s ? strlen(s) : 0);
}

int px_cred_store_pack(const struct px_cred_store *s, uint8_t **out, size_t *len)
{
	struct wr w = {0};
	put_u32(&w, PC_MAGIC);
	put_u64(&w, s->revision);
	put_u32(&w, s->n_vars);
	for (size_t i = 0; i < s->n_vars; i++) {
		const struct pc_var *v = &s->vars[i];
		put_cstr(&w, v->key);
		put_str(&w, v->value, v->value_len);
		put_u64(&w, (uint64_t)v->exp);
		put_u32(&w, v->bound);
		put_cstr(&w, v->bound ? v->identity : "");
		put_cstr(&w, v->handle);
		put_u32(&w, v->n_eps);
		for (size_t e = 0; e < v->n_eps; e++) {
			put_cstr(&w, v->eps[e].host);
			put_u32(&w, v->eps[e].port);
			put_cstr(&w, v->eps[e].path);
		}
	}
	put_u32(&w, s->n_gens);
	for (size_t g = 0; g < s->n_gens; g++) {
		put_u64(&w, s->gens[g].rev);
		put_u32(&w, s->gens[g].n);
		for (size_t i = 0; i < s->gens[g].n; i++) {
			put_cstr(&w, s->gens[g].e[i].key);
			put_str(&w, s->gens[g].e[i].value, s->gens[g].e[i].value_len);
			put_u64(&w, (uint64_t)s->gens[g].e[i].exp);
		}
	}
	put_u32(&w, s->n_known);
	for (size_t i = 0; i < s->n_known; i++)
		put_cstr(&w, s->known[i]);
	put_u32(&w, s->n_epochs);
	for (size_t i = 0; i < s->n_epochs; i++) {
		put_cstr(&w, s->epochs[i].key);
		put_cstr(&w, s->epochs[i].identity);
		put_u32(&w, s->epochs[i].n);
		for (size_t r = 0; r < s->epochs[i].n; r++)
			put_u64(&w, s->epochs[i].revs[r]);
	}
	if (w.err) {
		px_cred_wipe(w.buf, w.cap);
		free(w.buf);
		return w.err;
	}
	*out = w.buf;
	*len = w.len;
	return 0;
}

/* ------------------------------------------------------------------------------- reading */

struct rd {
	const uint8_t *b;
	size_t len, off;
	bool bad;
	size_t bad_at;
};

static bool need(struct rd *r, size_t n)
{
	if (r->bad || r->len - r->off < n) {
		if (!r->bad)
			r->bad_at = r->off;
		r->bad = true;
		return false;
	}
	return true;
}

static uint64_t get_u64(struct rd *r)
{
	uint64_t v = 0;
	if (!need(r, 8))
		return 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)r->b[r->off + (size_t)i] << (8 * i);
	r->off += 8;
	return v;
}

static uint32_t get_u32(struct rd *r)
{
	if (!need(r, 4))
		return 0;
	const uint8_t *p = r->b + r->off;
	r->off += 4;
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A count of items each at least @min bytes long: never more than the bytes left allow. */
static size_t get_count(struct rd *r, size_t min)
{
	size_t n = get_u32(r);
	if (!r->bad && n > (r->len - r->off) / min) {
		r->bad = true;
		r->bad_at = r->off;
		return 0;
	}
	return n;
}

/* An owned NUL-terminated copy; a NUL inside is malformed. */
static char *get_str(struct rd *r, size_t *n_out)
{
	size_t n = get_u32(r);
	if (!need(r, n))
		return NULL;
	if (memchr(r->b + r->off, '\0', n)) {
		r->bad = true;
		r->bad_at = r->off;
		return NULL;
	}
	char *s = px_cred_strndup((const char *)r->b + r->off, n);
	if (!s) {
		r->bad = true;
		r->bad_at = r->off;
		return NULL;
	}
	r->off += n;
	if (n_out)
		*n_out = n;
	return s;
}

static void get_var(struct rd *r, struct pc_var *v)
{
	v->key = get_str(r, NULL);
	v->value = get_str(r, &v->value_len);
	v->exp = (int64_t)get_u64(r);
	v->bound = get_u32(r) != 0;
	v->identity = get_str(r, NULL);
	size_t hn = 0;
	char *h = get_str(r, &hn);
	if (h && (hn == 0 || px_cred_is_hex64(h, hn)))
		memcpy(v->handle, h, hn + 1);
	else if (!r->bad)
		r->bad = true, r->bad_at = r->off;
	free(h);
	if (r->bad)
		return;
	v->n_eps = get_count(r, 10);
	v->eps = calloc(v->n_eps ? v->n_eps : 1, sizeof(*v->eps));
	if (!v->eps) {
		v->n_eps = 0;
		r->bad = true;
		return;
	}
	for (size_t e = 0; e < v->n_eps && !r->bad; e++) {
		v->eps[e].host = get_str(r, NULL);
		v->eps[e].port = (uint16_t)get_u32(r);
		v->eps[e].path = get_str(r, NULL);
	}
}

int px_cred_store_unpack(const uint8_t *buf, size_t len, struct px_cred_store **out,
			 struct sv_err *err)
{
	struct rd r = {buf, len, 0, false, 0};
	struct px_cred_store *s = px_cred_store_new();
	if (!s)
		return -ENOMEM;
	if (get_u32(&r) != PC_MAGIC && !r.bad)
		r.bad = true;
	s->revision = get_u64(&r);
	s->n_vars = get_count(&r, 32);
	s->vars = calloc(s->n_vars ? s->n_vars : 1, sizeof(*s->vars));
	if (!s->vars)
		s->n_vars = 0, r.bad = true;
	for (size_t i = 0; i < s->n_vars && !r.bad; i++)
		get_var(&r, &s->vars[i]);
	size_t ng = get_count(&r, 12);
	if (ng > PX_CRED_GENERATIONS)
		r.bad = true, r.bad_at = r.off;
	for (size_t g = 0; g < ng && !r.bad; g++) {
		struct pc_gen *G = &s->gens[s->n_gens++];
		G->rev = get_u64(&r);
		G->n = get_count(&r, 16);
		G->e = calloc(G->n ? G->n : 1, sizeof(*G->e));
		if (!G->e)
			G->n = 0, r.bad = true;
		for (size_t i = 0; i < G->n && !r.bad; i++) {
			G->e[i].key = get_str(&r, NULL);
			G->e[i].value = get_str(&r, &G->e[i].value_len);
			G->e[i].exp = (int64_t)get_u64(&r);
		}
	}
	s->n_known = get_count(&r, 4);
	s->known = calloc(s->n_known ? s->n_known : 1, sizeof(char *));
	if (!s->known)
		s->n_known = 0, r.bad = true;
	for (size_t i = 0; i < s->n_known && !r.bad; i++)
		s->known[i] = get_str(&r, NULL);
	s->n_epochs = get_count(&r, 12);
	s->epochs = calloc(s->n_epochs ? s->n_epochs : 1, sizeof(*s->epochs));
	if (!s->epochs)
		s->n_epochs = 0, r.bad = true;
	for (size_t i = 0; i < s->n_epochs && !r.bad; i++) {
		struct pc_epoch *e = &s->epochs[i];
		e->key = get_str(&r, NULL);
		e->identity = get_str(&r, NULL);
		e->n = get_count(&r, 8);
		e->revs = calloc(e->n ? e->n : 1, sizeof(uint64_t));
		if (!e->revs)
			e->n = 0, r.bad = true;
		for (size_t k = 0; k < e->n && !r.bad; k++)
			e->revs[k] = get_u64(&r);
	}
	if (!r.bad && r.off != len)
		r.bad = true, r.bad_at = r.off;
	if (r.bad) {
		/* partially filled entries may hold NULL strings: free treats them as empty */
		for (size_t i = 0; i < s->n_vars; i++)
			if (!s->vars[i].value)
				s->vars[i].value_len = 0;
		px_cred_store_free(s);
		return sv_err_set(err, EINVAL, "credential blob: malformed at offset %zu",
				  r.bad_at);
	}
	*out = s;
	return 0;
}
