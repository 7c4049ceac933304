/* libFuzzer target for the egress proxy's HTTP wire code (netns/px_http.c).
 *
 * Arbitrary bytes go through head detection (one-shot and split in two reads), head parsing,
 * the CONNECT or forward target parser, the forward rewrite and every JSON response builder.
 * Invariants: detection is split-independent; parsed fields obey the grammar; the rewrite always
 * fits PX_REWRITE_MAX, is NUL-free and re-parses with one Host and "Connection: close"; every
 * JSON response is valid JSON with an exact Content-Length and no raw control byte.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "netns/proxy/px_http.h"
#include "supervisor/json.h"
#include "tests/fuzz/fuzz.h"

static bool tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool span_eq_ci(const char *p, size_t n, const char *lit)
{
	return n == strlen(lit) && strncasecmp(p, lit, n) == 0;
}

static size_t count_fields(const struct px_http_req *r, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_headers; i++)
		n += span_eq_ci(r->headers[i].name, r->headers[i].name_len, name);
	return n;
}

static void check_req(const struct px_http_req *r, const char *head, size_t len)
{
	FUZZ_CHECK(r->head_len == len);
	FUZZ_CHECK(r->method_len > 0 && r->target_len > 0);
	FUZZ_CHECK(r->method >= head && r->target + r->target_len <= head + len);
	for (size_t i = 0; i < r->method_len; i++)
		FUZZ_CHECK(tchar((unsigned char)r->method[i]));
	for (size_t i = 0; i < r->target_len; i++)
		FUZZ_CHECK((unsigned char)r->target[i] > 0x20 &&
			   (unsigned char)r->target[i] < 0x7f);
	FUZZ_CHECK(r->version_minor == 0 || r->version_minor == 1);
	FUZZ_CHECK(r->n_headers <= PX_HEADERS_MAX);
	for (size_t i = 0; i < r->n_headers; i++) {
		const struct px_http_header *f = &r->headers[i];
		FUZZ_CHECK(f->name_len > 0);
		FUZZ_CHECK(f->name >= head && f->value + f->value_len <= head + len);
		for (size_t k = 0; k < f->name_len; k++)
			FUZZ_CHECK(tchar((unsigned char)f->name[k]));
		for (size_t k = 0; k < f->value_len; k++) {
			unsigned char c = (unsigned char)f->value[k];
			FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
		}
		if (f->value_len) {
			FUZZ_CHECK(f->value[0] != ' ' && f->value[0] != '\t');
			FUZZ_CHECK(f->value[f->value_len - 1] != ' ' &&
				   f->value[f->value_len - 1] != '\t');
		}
	}
	FUZZ_CHECK(count_fields(r, "host") <= 1);
	size_t cl = count_fields(r, "content-length"), te = count_fields(r, "transfer-encoding");
	FUZZ_CHECK(cl <= 1 && te <= 1 && !(cl && te));
	FUZZ_CHECK((r->body == PX_BODY_CHUNKED) == (te == 1));
	FUZZ_CHECK((r->body == PX_BODY_LENGTH) == (cl == 1));
	FUZZ_CHECK(r->body != PX_BODY_CHUNKED || r->version_minor == 1);
}

static void check_authority(const struct px_http_authority *a)
{
	size_t n = strnlen(a->host, sizeof(a->host));
	unsigned char addr[16] = {0};
	FUZZ_CHECK(n > 0 && n <= PX_HOST_MAX);
	FUZZ_CHECK(a->port >= 1);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(strchr("abcdefghijklmnopqrstuvwxyz0123456789.-_:", a->host[i]));
	if (a->kind == PX_HOST_IPV6) {
		FUZZ_CHECK(inet_pton(AF_INET6, a->host, addr) == 1);
		FUZZ_CHECK(memcmp(addr, a->addr, 16) == 0);
	} else {
		FUZZ_CHECK(!strchr(a->host, ':') && a->host[0] != '.' && a->host[n - 1] != '.');
		FUZZ_CHECK((inet_pton(AF_INET, a->host, addr) == 1) == (a->kind == PX_HOST_IPV4));
		if (a->kind == PX_HOST_IPV4)
			FUZZ_CHECK(memcmp(addr, a->addr, 4) == 0);
	}
}

/* A JSON error response: exact framing, Content-Length, valid JSON object of strings. */
static void check_resp(const char *buf, int n)
{
	static const char ct[] = "\r\nContent-Type: application/json\r\nContent-Length: ";
	FUZZ_CHECK(n > 0 && n <= PX_RESP_MAX);
	const char *end = buf + n, *sep = memmem(buf, (size_t)n, "\r\n\r\n", 4);
	FUZZ_CHECK(sep && memcmp(buf, "HTTP/1.1 ", 9) == 0);
	const char *c = memmem(buf, (size_t)(sep - buf), ct, sizeof(ct) - 1);
	FUZZ_CHECK(c);
	const char *body = sep + 4;
	FUZZ_CHECK((size_t)strtoul(c + sizeof(ct) - 1, NULL, 10) == (size_t)(end - body));
	FUZZ_CHECK(memmem(buf, (size_t)(body - buf), "\r\nConnection: close\r\n\r\n", 23));
	for (const char *p = body; p < end; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20);

	struct sv_json j;
	struct sv_err err = {0};
	char *key = NULL, *val = NULL;
	size_t vlen, members = 0;
	int r;
	sv_json_init(&j, "resp", body, (size_t)(end - body));
	FUZZ_CHECK(sv_json_object_begin(&j, &err) == 0);
	while ((r = sv_json_object_next(&j, &key, &err)) > 0) {
		FUZZ_CHECK(sv_json_string(&j, &val, &vlen, false, &err) == 0);
		/* Alphabetical, as OpenShell's serde_json writes them: detail, error[, reason]. */
		static const char *const order[] = {"detail", "error", "reason"};
		FUZZ_CHECK(members < 3 && strcmp(key, order[members]) == 0);
		members++;
		free(key);
		free(val);
	}
	FUZZ_CHECK(r == 0 && members >= 2 && members <= 3);
	FUZZ_CHECK(sv_json_end(&j, &err) == 0);
}

static void check_rewrite(const struct px_http_req *req, const struct px_http_uri *u)
{
	static char out[PX_REWRITE_MAX];
	struct px_http_req again;
	int n = px_http_forward_rewrite(req, u, out, sizeof(out), NULL);
	if (n == -E2BIG)
		return;
	FUZZ_CHECK(n > 0);
	FUZZ_CHECK(memchr(out, '\0', (size_t)n) == NULL);
	const char *first = memmem(out, (size_t)n, "\r\n\r\n", 4);
	FUZZ_CHECK(first && first + 4 == out + n);
	FUZZ_CHECK(px_http_parse_head(out, (size_t)n, &again, NULL) == 0);
	FUZZ_CHECK(again.version_minor == 1);
	FUZZ_CHECK(again.method_len == req->method_len &&
		   memcmp(again.method, req->method, req->method_len) == 0);
	FUZZ_CHECK(again.target_len >= u->path_len &&
		   memcmp(again.target, u->path, u->path_len) == 0);
	FUZZ_CHECK(count_fields(&again, "host") == 1 && count_fields(&again, "connection") == 1);
	FUZZ_CHECK(count_fields(&again, "via") >= 1);
	static const char *const gone[] = {"proxy-connection", "proxy-authorization",
					   "proxy-authenticate", "upgrade", "keep-alive"};
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		FUZZ_CHECK(count_fields(&again, gone[i]) == 0);
	const struct px_http_header *h = px_http_header_find(&again, "connection");
	FUZZ_CHECK(h->value_len == 5 && memcmp(h->value, "close", 5) == 0);
	h = px_http_header_find(&again, "host");
	FUZZ_CHECK(h->value_len >= strlen(u->auth.host));
	FUZZ_CHECK(again.body == req->body && again.content_length == req->content_length);
}

static void check_head(const char *head, size_t len, const char *reason)
{
	static char resp[PX_RESP_MAX];
	struct px_http_req req;
	if (px_http_parse_head(head, len, &req, NULL) < 0)
		return;
	check_req(&req, head, len);
	if (req.is_connect) {
		struct px_http_authority a;
		if (px_http_parse_connect_target(req.target, req.target_len, &a, NULL) < 0)
			return;
		check_authority(&a);
		check_resp(resp, px_http_resp_connect_denied(resp, sizeof(resp), &a, reason));
		check_resp(resp, px_http_resp_connect_ssrf(resp, sizeof(resp), &a, reason));
		return;
	}
	struct px_http_uri u;
	if (px_http_parse_forward_target(req.target, req.target_len, &u, NULL) < 0)
		return;
	check_authority(&u.auth);
	FUZZ_CHECK(u.path_len > 0 && u.path[0] == '/');
	check_resp(resp, px_http_resp_forward_denied(resp, sizeof(resp), &req, &u));
	check_resp(resp, px_http_resp_forward_ssrf(resp, sizeof(resp), &req, &u.auth, reason));
	check_resp(resp, px_http_resp_upstream_unreachable(resp, sizeof(resp), &u.auth));
	if (u.scheme == PX_SCHEME_HTTP)
		check_rewrite(&req, &u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	static char resp[PX_RESP_MAX];
	char reason[1025];

	/* detection must not depend on how the bytes arrived */
	size_t resume = 0, split = size ? data[0] % (size + 1) : 0;
	int whole = px_http_head_end(buf, size, NULL);
	int part = px_http_head_end(buf, split, &resume);
	int inc = part > 0 ? part : px_http_head_end(buf, size, &resume);
	FUZZ_CHECK(whole == inc);
	FUZZ_CHECK(whole == -EMSGSIZE || whole == 0 || (whole >= 4 && whole <= PX_HEAD_MAX));
	FUZZ_CHECK(whole != 0 || size < PX_HEAD_MAX);

	/* a reason string made of whatever follows the head (or the whole input) */
	size_t off = whole > 0 ? (size_t)whole : 0, rl = size - off < 1024 ? size - off : 1024;
	memcpy(reason, buf + off, rl);
	reason[rl] = '\0';
	check_resp(resp,
		   px_http_resp_json(resp, sizeof(resp), 403, "policy_denied", reason, reason));

	if (whole > 0)
		check_head(buf, (size_t)whole, reason);

	/* the target parsers also see raw bytes the request line would have refused */
	struct px_http_authority a;
	struct px_http_uri u;
	if (px_http_parse_connect_target(buf, size, &a, NULL) == 0)
		check_authority(&a);
	if (px_http_parse_forward_target(buf, size, &u, NULL) == 0)
		check_authority(&u.auth);
	return 0;
}
