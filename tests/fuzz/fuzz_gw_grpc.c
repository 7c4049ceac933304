/* libFuzzer target for the gateway's gRPC wire helpers (session/gw_grpc.c).
 *
 * The input is peer bytes: the deframer eats it whole and split at points taken from its first
 * bytes; both runs must agree message for message (split independence), never exceed the limit,
 * and stop at the same error. The same bytes go through grpc-message decoding (bounded, no control
 * bytes out), grpc-status parsing and endpoint parsing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/gateway/gw_int.h"
#include "tests/fuzz/fuzz.h"

/* A small limit so the fuzzer reaches oversize quickly. */
#define FUZZ_MSG_MAX 4096
#define MAX_MSGS     4096

struct run {
	size_t n;
	size_t lens[MAX_MSGS];
	uint32_t sums[MAX_MSGS];
	int err;
};

static uint32_t sum(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Deframe @p in chunks whose sizes cycle through @steps (each 1..256). */
static void deframe(const uint8_t *p, size_t len, const uint8_t *steps, size_t nsteps,
		    struct run *out)
{
	struct gw_deframer d;
	struct sv_err err = {0};
	gw_deframer_init(&d, FUZZ_MSG_MAX);
	memset(out, 0, sizeof(*out));
	size_t off = 0, k = 0;
	while (off < len && out->err == 0) {
		size_t chunk = nsteps ? (size_t)steps[k++ % nsteps] + 1 : len;
		if (chunk > len - off)
			chunk = len - off;
		size_t pos = 0;
		while (pos < chunk) {
			size_t used = 0;
			const uint8_t *m = NULL;
			size_t mlen = 0;
			int r = gw_deframer_feed(&d, p + off + pos, chunk - pos, &used, &m, &mlen,
						 &err);
			FUZZ_CHECK(used <= chunk - pos);
			pos += used;
			if (r < 0) {
				FUZZ_CHECK(err.msg[0] != '\0');
				out->err = r;
				break;
			}
			if (r == 1) {
				FUZZ_CHECK(mlen <= FUZZ_MSG_MAX);
				if (out->n < MAX_MSGS) {
					out->lens[out->n] = mlen;
					out->sums[out->n] = sum(m, mlen);
				}
				out->n++;
			} else {
				FUZZ_CHECK(pos == chunk);
			}
		}
		off += chunk;
	}
	gw_deframer_free(&d);
}

static void check_text(const char *s, size_t n)
{
	FUZZ_CHECK(strlen(s) == n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		FUZZ_CHECK(c >= 0x20 || c == '\t');
		FUZZ_CHECK(c != 0x7f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nsteps = size ? data[0] % 8 : 0;
	if (1 + nsteps > size)
		nsteps = 0;
	const uint8_t *steps = data + 1, *body = data + 1 + nsteps;
	size_t blen = size - (size ? 1 + nsteps : 0);

	static struct run whole, split;
	deframe(body, blen, NULL, 0, &whole);
	deframe(body, blen, steps, nsteps, &split);
	FUZZ_CHECK(whole.err == split.err);
	FUZZ_CHECK(whole.n == split.n);
	for (size_t i = 0; i < whole.n && i < MAX_MSGS; i++)
		FUZZ_CHECK(whole.lens[i] == split.lens[i] && whole.sums[i] == split.sums[i]);

	char out[128];
	size_t n = gw_grpc_pct_decode((const char *)data, size, out, sizeof(out));
	FUZZ_CHECK(n < sizeof(out));
	check_text(out, n);
	n = gw_grpc_pct_decode((const char *)data, size, out, 1);
	FUZZ_CHECK(n == 0 && out[0] == '\0');

	int st = gw_grpc_status_parse((const char *)data, size);
	FUZZ_CHECK(st == -EINVAL || (st >= 0 && st <= 99));

	char ep_str[300];
	size_t el = size < sizeof(ep_str) - 1 ? size : sizeof(ep_str) - 1;
	memcpy(ep_str, data, el);
	ep_str[el] = '\0';
	struct gw_endpoint ep;
	struct sv_err err = {0};
	if (gw_endpoint_parse(ep_str, &ep, &err) == 0) {
		FUZZ_CHECK(ep.host[0] != '\0' && ep.port != 0);
		FUZZ_CHECK(strlen(ep.authority) <= el);
	} else {
		FUZZ_CHECK(err.msg[0] != '\0');
	}
	return 0;
}
