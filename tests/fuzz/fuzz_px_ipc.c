/* libFuzzer target for what PID 1 reads from the proxy process (netns/proxy/px_ipc.c) and what
 * the proxy process reads from PID 1's policy blob (px_pack.c).
 *
 * Arbitrary bytes go through every message decoder and the policy unpacker. Invariants: a
 * decoded LOG record has valid names and NUL-free texts within their bounds and re-encodes to a
 * message that decodes again; a decoded IDENT_REQ, DENIAL or UPSTREAM re-encodes to the same
 * bytes; a decoded IDENT_RESP carries a creator only beside an identity and with its exe, and
 * re-encodes to an answer that decodes to the same creator; an unpacked policy packs to exactly
 * the input. Seeds: tests/fuzz/corpus/fuzz_px_ipc (tests/fuzz/px_ipc_seeds.py writes them).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/px_ipc.h"
#include "netns/proxy/px_pack.h"
#include "netns/proxy/px_upstream.h"
#include "tests/fuzz/fuzz.h"

static uint8_t buf[PX_MSG_MAX];
static uint8_t out[PX_MSG_MAX];

static struct px_ident id;

/* Invariants of a decoded identity answer, and its re-encoding. */
static void check_resp(const struct px_msg_ident_resp *r)
{
	struct sv_err err = {0};
	FUZZ_CHECK(r->n_ancestors <= PX_IDENT_ANCESTORS_MAX);
	FUZZ_CHECK(r->n_creator_ancestors <= PX_IDENT_ANCESTORS_MAX);
	FUZZ_CHECK(r->creator <= PX_CREATOR_FOUND);
	if (r->creator != PX_CREATOR_FOUND) {
		FUZZ_CHECK(r->creator_exe[0] == '\0' && r->n_creator_ancestors == 0 &&
			   r->creator_pid == 0 && !r->creator_too_long);
		return;
	}
	FUZZ_CHECK(r->status != PX_IDENT_DENY_NONE && r->creator_exe[0] != '\0');
	id.exe.pid = r->pid;
	sv_fmt(id.exe.path, sizeof(id.exe.path), "%s", r->exe);
	id.n_ancestors = r->n_ancestors;
	for (size_t i = 0; i < r->n_ancestors; i++)
		sv_fmt(id.ancestors[i].path, sizeof(id.ancestors[i].path), "%s", r->ancestors[i]);
	struct px_creator cr;
	FUZZ_CHECK(px_creator_from(&cr, r->creator_pid, r->creator_too_long, r->creator_exe,
				   r->creator_ancestors, r->n_creator_ancestors) == 0);
	int n = px_msg_ident_resp_encode(out, sizeof(out), r->seq, r->status, r->reason, &id,
					 r->creator, &cr);
	FUZZ_CHECK(n > 0);
	struct px_msg_ident_resp again;
	FUZZ_CHECK(px_msg_ident_resp_decode(out, (size_t)n, &again, &err) == 0);
	FUZZ_CHECK(again.creator == PX_CREATOR_FOUND && again.creator_pid == r->creator_pid &&
		   again.creator_too_long == (r->creator_too_long || cr.too_long));
	FUZZ_CHECK(strcmp(again.creator_exe, r->creator_exe) == 0);
	px_creator_release(&cr);
}

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
			check_resp(&r);
		struct px_denial d;
		uint32_t dropped;
		if (px_msg_denial_decode(buf, size, &d, &dropped, &err) == 0) {
			/* A decoded DENIAL re-encodes to the very bytes. */
			FUZZ_CHECK(d.port != 0 && d.host[0] && d.n_ancestors <= PX_DENIAL_ANCESTORS_MAX);
			int n = px_msg_denial_encode(out, sizeof(out), &d, dropped);
			FUZZ_CHECK(n == (int)size && memcmp(out, data, size) == 0);
		}
		struct px_upstream *u = NULL;
		if (px_upstream_decode(buf, size, &u, &err) == 0) {
			int n = px_upstream_encode(u, out, sizeof(out));
			FUZZ_CHECK(n == (int)size && memcmp(out, data, size) == 0);
			px_upstream_free(u);
		}
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
