/* libFuzzer target for what PID 1 reads from the proxy process (netns/proxy/px_ipc.c) and what
 * the proxy process reads from PID 1's policy blob (px_pack.c).
 *
 * Arbitrary bytes go through every message decoder and the policy unpacker. Invariants: a
 * decoded LOG record has valid names and NUL-free texts within their bounds and re-encodes to a
 * message that decodes again; a decoded IDENT_REQ re-encodes to the same bytes; an unpacked
 * policy packs to exactly the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/px_ipc.h"
#include "netns/proxy/px_pack.h"
#include "tests/fuzz/fuzz.h"

static uint8_t buf[PX_MSG_MAX];
static uint8_t out[PX_MSG_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sv_err err = {0};
	if (size <= PX_MSG_MAX) {
		memcpy(buf, data, size);
		struct px_msg_log m;
		if (px_msg_log_decode(buf, size, &m, &err) == 0) {
			FUZZ_CHECK(m.rec.nkv <= PX_LOG_KV_MAX);
			FUZZ_CHECK(strlen(m.rec.msg) <= PX_LOG_TEXT_MAX);
			FUZZ_CHECK(strlen(m.rec.event) >= 1 && strlen(m.rec.event) <= PX_LOG_NAME_MAX);
			int n = px_msg_log_encode(out, sizeof(out), &m.rec, m.dropped);
			FUZZ_CHECK(n > 0);
			struct px_msg_log again;
			FUZZ_CHECK(px_msg_log_decode(out, (size_t)n, &again, &err) == 0);
		}
		struct px_msg_ident_req q;
		if (px_msg_ident_req_decode(buf, size, &q, &err) == 0) {
			int n = px_msg_ident_req_encode(out, sizeof(out), &q);
			FUZZ_CHECK(n == (int)size && memcmp(out, data, size) == 0);
		}
		struct px_msg_ident_resp r;
		if (px_msg_ident_resp_decode(buf, size, &r, &err) == 0)
			FUZZ_CHECK(r.n_ancestors <= PX_IDENT_ANCESTORS_MAX);
		struct px_msg_start s;
		(void)px_msg_start_decode(buf, size, &s, &err);
		uint64_t len;
		(void)px_msg_policy_decode(buf, size, &len, &err);
		if (px_msg_creds_decode(buf, size, &len, &err) == 0) {
			int n = px_msg_creds_encode(out, sizeof(out), len);
			FUZZ_CHECK(n == (int)size && memcmp(out, data, size) == 0);
		}
	}
	struct pol_policy p;
	if (px_unpack_policy(data, size, &p, &err) == 0) {
		uint8_t *again = NULL;
		size_t n = 0;
		FUZZ_CHECK(px_pack_policy(&p, &again, &n) == 0);
		FUZZ_CHECK(n == size && memcmp(again, data, size) == 0);
		free(again);
		pol_free(&p);
	}
	return 0;
}
