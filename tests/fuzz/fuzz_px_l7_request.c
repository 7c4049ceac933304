/* libFuzzer target for the in-tunnel request pieces of netns/proxy/l7/: head scanning,
 * the strict head parser, canonicalisation, the query parser, the forwarding rewrite, body
 * framing and the response head parser.
 *
 * Invariants: feeding the stream as px_l7_head_safe_read allows never reads past the head's
 * end; a parsed head obeys its grammar; the rewrite fits head_len + 64, carries no Connection
 * or Upgrade field except the re-appended WebSocket pair, re-parses (when within the cap) and
 * rewrites to itself; glob matching (the query as a pattern over the path) terminates with
 * 1, 0 or -EINVAL and "**" matches everything; decoded query parts are UTF-8 and no longer than the
 * query; a body decoder never claims more bytes than it was fed.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/l7/px_l7.h"
#include "tests/fuzz/fuzz.h"

static bool ieq(const char *a, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	if (n != l)
		return false;
	for (size_t i = 0; i < n; i++) {
		char x = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] + 32) : a[i];
		if (x != lit[i])
			return false;
	}
	return true;
}

static void check_req(const struct px_l7_req *r)
{
	FUZZ_CHECK(r->method_len > 0 && r->target_len > 0);
	for (size_t i = 0; i < r->target_len; i++)
		FUZZ_CHECK((unsigned char)r->target[i] > ' ' && (unsigned char)r->target[i] < 0x7f);
	FUZZ_CHECK(r->version_minor == 0 || r->version_minor == 1);
	FUZZ_CHECK(r->version_minor == 0 || r->host != NULL);
	FUZZ_CHECK(r->body != PX_L7_BODY_NONE || r->content_length == 0);
	for (size_t i = 0; i < r->n_headers; i++) {
		const struct px_l7_header *h = &r->headers[i];
		FUZZ_CHECK(h->name_len > 0 && h->name == h->line);
		FUZZ_CHECK(!memchr(h->line, '\r', h->line_len) &&
			   !memchr(h->line, '\n', h->line_len));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct px_l7_req req, again;
	static char canon[PX_L7_CANON_MAX];
	if (size < 1)
		return 0;
	unsigned flags = data[0];
	const char *in = (const char *)data + 1;
	size_t n = size - 1;

	/* Incremental reading never passes the head's end. */
	size_t have = 0;
	int end;
	while ((end = px_l7_head_scan(in, have)) == 0 && have < n) {
		size_t k = px_l7_head_safe_read(in, have);
		FUZZ_CHECK(k >= 1 && k <= 4);
		have += k < n - have ? k : n - have;
	}
	int one_shot = px_l7_head_scan(in, n);
	if (end > 0) {
		FUZZ_CHECK((size_t)end == have && end == one_shot);
	} else if (end == 0) {
		FUZZ_CHECK(one_shot == 0);
	}

	/* The response head parser takes anything. */
	struct px_l7_resp rs;
	struct px_l7_resp_plan plan;
	if (one_shot > 0 && px_l7_resp_parse(in, (size_t)one_shot, &rs, NULL) == 0) {
		px_l7_resp_plan(&rs, "GET", 3, flags & 4, &plan);
		FUZZ_CHECK(rs.status >= 0 && rs.status <= 65535);
	}
	if (one_shot <= 0 || px_l7_req_parse(in, (size_t)one_shot, &req, NULL) < 0)
		return 0;
	check_req(&req);
	(void)px_l7_req_authority_ok(&req, "api.example.com", 443, flags & 8);
	(void)px_l7_req_is_h2c_upgrade(&req);
	(void)px_l7_req_wants_upgrade(&req);
	bool ws = px_l7_req_websocket(&req) == PX_L7_WS_VALID;
	if (ws)
		FUZZ_CHECK(ieq(req.method, req.method_len, "get"));

	struct px_l7_canon c;
	if (px_l7_path_canon(req.target, req.target_len, flags & 1, canon, sizeof(canon), &c,
			     NULL) == 0) {
		if (c.query) {
			/* The query doubles as a glob pattern over the canonical path. */
			char *pat = malloc(c.query_len + 1);
			memcpy(pat, c.query, c.query_len);
			pat[c.query_len] = '\0';
			int g1 = px_l7_glob_match(pat, canon, c.path_len, '/');
			int g2 = px_l7_glob_match(pat, canon, c.path_len, '.');
			FUZZ_CHECK(g1 >= -EINVAL && g1 <= 1 && g2 >= -EINVAL && g2 <= 1);
			FUZZ_CHECK(g1 != -ENOMEM && g2 != -ENOMEM);
			if (strcmp(pat, "**") == 0)
				FUZZ_CHECK(g1 == 1 && g2 == 1);
			(void)px_l7_endpoint_path_matches(pat, canon);
			free(pat);
			struct px_l7_qparam qp[64];
			char *qb = malloc(c.query_len + 1);
			int nq = px_l7_query_parse(c.query, c.query_len, qb, c.query_len + 1, qp,
						   64, NULL);
			size_t total = 0;
			for (int i = 0; i < nq; i++)
				total += qp[i].key_len + qp[i].val_len;
			FUZZ_CHECK(total <= c.query_len);
			free(qb);
		}
		size_t cap = req.head_len + c.path_len + 64;
		char *out = malloc(cap), *out2 = malloc(cap);
		int w = px_l7_req_rewrite(&req, &c, canon, ws, out, cap);
		FUZZ_CHECK(w > 0 && (size_t)w <= cap);
		FUZZ_CHECK(memcmp(out + w - 4, "\r\n\r\n", 4) == 0);
		if ((size_t)w <= PX_L7_HEAD_MAX && px_l7_head_scan(out, (size_t)w) == w) {
			FUZZ_CHECK(px_l7_req_parse(out, (size_t)w, &again, NULL) == 0);
			size_t conns = 0, upgrades = 0;
			for (size_t i = 0; i < again.n_headers; i++) {
				conns += ieq(again.headers[i].name, again.headers[i].name_len,
					     "connection");
				upgrades += ieq(again.headers[i].name, again.headers[i].name_len,
						"upgrade");
			}
			FUZZ_CHECK(conns == (ws ? 1u : 0u) && upgrades == (ws ? 1u : 0u));
			FUZZ_CHECK(again.body == req.body &&
				   again.content_length == req.content_length);
			int w2 = px_l7_req_rewrite(&again, NULL, NULL, ws, out2, cap);
			FUZZ_CHECK(w2 == w && memcmp(out, out2, (size_t)w) == 0);
		}
		free(out);
		free(out2);
	}

	/* Body framing over what follows the head. */
	struct px_l7_body b;
	size_t used = 0, total = 0, rest = n - (size_t)one_shot;
	const char *body = in + one_shot;
	px_l7_body_init(&b, req.body, req.content_length);
	int r = 0;
	for (size_t off = 0; off < rest && r == 0;) {
		size_t k = 1 + (size_t)(body[off] & 7);
		if (k > rest - off)
			k = rest - off;
		r = px_l7_body_feed(&b, body + off, k, &used);
		FUZZ_CHECK(used <= k);
		total += used;
		off += k;
		if (r == 0)
			FUZZ_CHECK(used == k);
	}
	FUZZ_CHECK(total <= rest);
	return 0;
}
