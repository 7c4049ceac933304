/* libFuzzer target for netns/proxy/l7/px_cred*.c: the request-head rewriter (path segments,
 * query values, header values, Basic), the body rewriter and the blob reader.
 *
 * Invariants: a successful rewrite carries no credential marker, raw or percent-decoded; a
 * value bound to one endpoint never appears in a rewrite for another unless the agent sent it
 * itself; a rewritten head re-parses; a failure is one of the documented codes and leaves
 * nothing in the output; the blob reader accepts or refuses without crashing.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/l7/px_cred.h"
#include "tests/fuzz/fuzz.h"

#define BOUND_VALUE "B0UNDs3cret-~!"

static struct px_cred_store *store(void)
{
	static struct px_cred_store *s;
	if (s)
		return s;
	static const struct px_cred_endpoint_in ep[] = {{"api.example.com", 443, "/v1/**"}};
	static const struct px_cred_var_in v[] = {
	    {"BOUND", BOUND_VALUE, 0},
	    {"PLAIN", "plain value&=/?", 0},
	    {"EXPIRED", "gone", 1},
	};
	static const struct px_cred_binding_in b[] = {{"BOUND", "id", NULL, ep, 1}};
	static const char *ns[] = {"PLAIN", "EXPIRED"};
	struct px_cred_input in = {7, v, 3, true, b, 1, ns, 2};
	s = px_cred_store_new();
	if (!s || px_cred_store_install(s, &in, NULL) != 0)
		abort();
	return s;
}

static bool has(const char *s, size_t n, const char *lit)
{
	return memmem(s, n, lit, strlen(lit)) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char head[PX_L7_HEAD_MAX + 8], out[PX_L7_HEAD_MAX * 4];
	static struct px_l7_req req, again;
	if (size < 1)
		return 0;
	unsigned sel = data[0];
	const char *in = (const char *)data + 1;
	size_t n = size - 1;

	/* the blob reader */
	if (sel == 0xff) {
		struct px_cred_store *t = NULL;
		if (px_cred_store_unpack(data + 1, n, &t, NULL) == 0)
			px_cred_store_free(t);
		return 0;
	}
	const char *host = (sel & 1) ? "api.example.com" : "evil.test";
	struct px_cred_scope sc = {host, 443, 1000};
	bool agent_sent_value = has(in, n, "B0UNDs3cret");

	/* the body rewriter */
	if (sel & 2) {
		const char *ct =
		    (sel & 4) ? "application/x-www-form-urlencoded" : "application/json";
		int r = px_cred_rewrite_body(store(), &sc, "/v1/x", 5, ct, strlen(ct), in, n, out,
					     sizeof(out), NULL);
		FUZZ_CHECK(r >= 0 || r == PX_CRED_E_MISMATCH || r == PX_CRED_E_UNAVAIL ||
			   r == -ENOBUFS || r == -EFBIG || r == -EBADMSG || r == -ENOMEM);
		if (r >= 0) {
			FUZZ_CHECK(!has(out, (size_t)r, PX_CRED_PREFIX) &&
				   !has(out, (size_t)r, PX_CRED_ALIAS));
			if (!(sel & 1) && !agent_sent_value)
				FUZZ_CHECK(!has(out, (size_t)r, "B0UNDs3cret"));
		}
		return 0;
	}

	/* the head rewriter, on whatever the strict parser accepts */
	if (n > PX_L7_HEAD_MAX - 4)
		return 0;
	memcpy(head, in, n);
	size_t hl = n;
	if (hl < 4 || memcmp(head + hl - 4, "\r\n\r\n", 4) != 0) {
		memcpy(head + hl, "\r\n\r\n", 4);
		hl += 4;
	}
	int end = px_l7_head_scan(head, hl);
	if (end <= 0 || px_l7_req_parse(head, (size_t)end, &req, NULL) != 0)
		return 0;
	int r = px_cred_rewrite(store(), &sc, &req, NULL, 0, out, sizeof(out), NULL);
	FUZZ_CHECK(r >= 0 || r == PX_CRED_E_MISMATCH || r == PX_CRED_E_UNAVAIL || r == -ENOBUFS ||
		   r == -ENOMEM);
	if (r < 0)
		return 0;
	FUZZ_CHECK(!px_l7_has_credential_marker(out, (size_t)r));
	if (!(sel & 1) && !agent_sent_value)
		FUZZ_CHECK(!has(out, (size_t)r, "B0UNDs3cret"));
	/* the relay checks Host against the CONNECT target before this; one with a marker in it
	 * never gets here, and once rewritten it need not be a valid authority */
	if ((size_t)r <= PX_L7_HEAD_MAX &&
	    !(req.host && px_l7_has_credential_marker(req.host, req.host_len))) {
		FUZZ_CHECK(px_l7_head_scan(out, (size_t)r) == r);
		FUZZ_CHECK(px_l7_req_parse(out, (size_t)r, &again, NULL) == 0);
		FUZZ_CHECK(again.n_headers == req.n_headers);
	}
	return 0;
}
