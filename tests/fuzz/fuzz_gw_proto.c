/* libFuzzer target for every protobuf message the supervisor decodes from the gateway.
 *
 * Each input is unpacked as each inbound type (GatewayMessage, RelayFrame, the config, provider
 * environment, token and empty responses) and packed again; a decoded GetSandboxConfigResponse
 * policy goes through gw_policy_convert, whose result must pass pol_validate or leave the model
 * empty, and a converted policy must come back field for field through gw_policy_to_proto and
 * through the INI text of pol_describe; its settings are taken as the poll takes them. Nothing here
 * may crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openshell.pb-c.h"
#include "sandbox.pb-c.h"
#include "session/gateway/gw_policy.h"
#include "session/gateway/gw_sync.h"
#include "supervisor/log.h"
#include "tests/fuzz/fuzz.h"

/* Pack @m again and decode the bytes (for ASan/UBSan, not for equality). protobuf-c keeps unknown
 * fields verbatim, malformed ones included (a tag 0 written as 0x80 0x00 survives the first
 * unpack, at any depth), so the second decode may fail; the supervisor never re-sends a message
 * it received. The packed size must still be what protobuf-c announced. */
static void repack(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	FUZZ_CHECK(buf != NULL);
	FUZZ_CHECK(protobuf_c_message_pack(m, buf) == n);
	ProtobufCMessage *again = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
	if (again)
		protobuf_c_message_free_unpacked(again, NULL);
	free(buf);
}

static bool policy_is_empty(const struct pol_policy *p)
{
	return p->read_only.n == 0 && p->read_write.n == 0 && p->n_rules == 0 && !p->rules &&
	       !p->run_as_user && !p->run_as_group && !p->source;
}

static void config(const uint8_t *data, size_t size)
{
	Openshell__Sandbox__V1__GetSandboxConfigResponse *r =
	    openshell__sandbox__v1__get_sandbox_config_response__unpack(NULL, size, data);
	if (!r)
		return;
	repack(&r->base);
	FUZZ_CHECK(r->policy_hash != NULL && r->policy_validation_failure_mode != NULL);
	/* Its settings (gw_settings.c); the same config_revision again changes nothing. */
	static struct gw_settings settings;
	(void)gw_settings_apply(&settings, r);
	FUZZ_CHECK(!gw_settings_apply(&settings, r));
	if (r->policy) {
		struct pol_policy p;
		struct sv_err err = {0};
		if (gw_policy_convert(r->policy, &p, false, &err) == 0) {
			FUZZ_CHECK(p.source && strcmp(p.source, "gateway") == 0);
			/* The reverse conversion (UpdateConfig) gives back every field. */
			Openshell__Sandbox__V1__SandboxPolicy *out = NULL;
			FUZZ_CHECK(gw_policy_to_proto(&p, &out, &err) == 0);
			size_t n = openshell__sandbox__v1__sandbox_policy__get_packed_size(out);
			uint8_t *wire = malloc(n + 1);
			FUZZ_CHECK(wire != NULL);
			openshell__sandbox__v1__sandbox_policy__pack(out, wire);
			gw_policy_proto_free(out);
			Openshell__Sandbox__V1__SandboxPolicy *in =
			    openshell__sandbox__v1__sandbox_policy__unpack(NULL, n, wire);
			FUZZ_CHECK(in != NULL);
			struct pol_policy again;
			if (gw_policy_convert(in, &again, false, &err) != 0) {
				fprintf(stderr, "%s\n", err.msg);
				FUZZ_CHECK(!"a converted policy converts back from its own protobuf");
			}
			FUZZ_CHECK(pol_equal(&p, &again));
			pol_free(&again);
			openshell__sandbox__v1__sandbox_policy__free_unpacked(in, NULL);
			free(wire);
			/* One model whichever loader filled it: the INI text of the converted policy
			 * loads back into the same policy, every field (layer 7 and middlewares
			 * included). Only a value longer than an INI line (4093 bytes) cannot. */
			char *ini = NULL;
			FUZZ_CHECK(pol_describe(&p, &ini) == 0);
			struct pol_policy back;
			if (pol_load_buffer("fuzz", ini, strlen(ini), &back, &err) != 0) {
				if (!strstr(err.msg, "line is longer than")) {
					fprintf(stderr, "%s\n---\n%s\n", err.msg, ini);
					FUZZ_CHECK(!"the INI text of a converted policy loads back");
				}
				free(ini);
				pol_free(&p);
				openshell__sandbox__v1__get_sandbox_config_response__free_unpacked(r, NULL);
				return;
			}
			FUZZ_CHECK(pol_equal(&p, &back));
			pol_free(&back);
			free(ini);
			pol_free(&p);
		} else {
			FUZZ_CHECK(policy_is_empty(&p));
			FUZZ_CHECK(strncmp(err.msg, "gateway policy", 14) == 0);
		}
	}
	openshell__sandbox__v1__get_sandbox_config_response__free_unpacked(r, NULL);
}

static void provider_env(const uint8_t *data, size_t size)
{
	Openshell__V1__GetSandboxProviderEnvironmentResponse *r =
	    openshell__v1__get_sandbox_provider_environment_response__unpack(NULL, size, data);
	if (!r)
		return;
	repack(&r->base);
	for (size_t i = 0; i < r->n_environment; i++)
		FUZZ_CHECK(r->environment[i]->key != NULL && r->environment[i]->value != NULL);
	openshell__v1__get_sandbox_provider_environment_response__free_unpacked(r, NULL);
}

static void gateway_message(const uint8_t *data, size_t size)
{
	Openshell__V1__GatewayMessage *m = openshell__v1__gateway_message__unpack(NULL, size, data);
	if (!m)
		return;
	repack(&m->base);
	if (m->payload_case == OPENSHELL__V1__GATEWAY_MESSAGE__PAYLOAD_RELAY_OPEN) {
		const Openshell__V1__RelayOpen *o = m->relay_open;
		FUZZ_CHECK(o != NULL && o->channel_id != NULL);
		if (o->target_case == OPENSHELL__V1__RELAY_OPEN__TARGET_TCP)
			FUZZ_CHECK(o->tcp != NULL && o->tcp->host != NULL);
	}
	openshell__v1__gateway_message__free_unpacked(m, NULL);
}

static void relay_frame(const uint8_t *data, size_t size)
{
	Openshell__V1__RelayFrame *f = openshell__v1__relay_frame__unpack(NULL, size, data);
	if (!f)
		return;
	repack(&f->base);
	if (f->payload_case == OPENSHELL__V1__RELAY_FRAME__PAYLOAD_DATA)
		FUZZ_CHECK(f->data.len <= size && (f->data.len == 0 || f->data.data != NULL));
	openshell__v1__relay_frame__free_unpacked(f, NULL);
}

static void one(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size, data);
	if (!m)
		return;
	repack(m);
	protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		sv_log_setup(SV_LOG_ERROR, SV_LOG_TEXT); /* L7 drop warnings would flood */
		quiet = true;
	}
	gateway_message(data, size);
	relay_frame(data, size);
	config(data, size);
	provider_env(data, size);
	one(&openshell__v1__issue_sandbox_token_response__descriptor, data, size);
	one(&openshell__v1__refresh_sandbox_token_response__descriptor, data, size);
	one(&openshell__v1__report_main_process_exit_response__descriptor, data, size);
	one(&openshell__v1__report_policy_status_response__descriptor, data, size);
	one(&openshell__v1__push_sandbox_logs_response__descriptor, data, size);
	return 0;
}
