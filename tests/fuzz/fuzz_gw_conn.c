/* libFuzzer target for what a gateway sends back over HTTP/2 (session/gw_call.c under nghttp2).
 *
 * Three calls are open (a unary one, a bidi one still sending, a paused one) when the input is
 * fed to the client session as the server's bytes, then delivered, the client's answer drained,
 * the paused call resumed and delivered again. Invariants: at most one final status per call,
 * statuses and messages within bounds, grpc-message printable, no leak or memory error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/gateway/gw_int.h"
#include "tests/fuzz/fuzz.h"

#define NCALLS 3

struct rec {
	int statuses;
	size_t msgs;
	bool pause_each;
	struct gw_call *call;
};

static void on_message(struct gw_call *call, const uint8_t *m, size_t len, void *data)
{
	(void)m;
	struct rec *r = data;
	FUZZ_CHECK(r->statuses == 0);
	FUZZ_CHECK(len <= GW_MSG_MAX);
	r->msgs++;
	if (r->pause_each)
		gw_call_pause(call, true);
}

static void on_status(struct gw_call *call, int status, const char *msg, void *data)
{
	(void)call;
	struct rec *r = data;
	r->statuses++;
	FUZZ_CHECK(r->statuses == 1);
	FUZZ_CHECK(status >= 0 && status <= 99);
	for (const char *p = msg; *p; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 || *p == '\t');
	r->call = NULL;
}

static void drain(struct gw_conn *c)
{
	const uint8_t *out;
	for (int i = 0; i < 64 && nghttp2_session_mem_send(c->h2, &out) > 0; i++)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sv_loop loop;
	if (sv_loop_init(&loop, NULL) < 0)
		return 0;
	struct gw_conn_opts o = {.endpoint = "http://127.0.0.1:1"};
	struct gw_conn_cbs cbs = {0};
	struct gw_conn *c = NULL;
	struct sv_err err = {0};
	FUZZ_CHECK(gw_conn_new(&loop, &o, &cbs, &c, &err) == 0);
	struct rec recs[NCALLS];
	memset(recs, 0, sizeof(recs));
	recs[2].pause_each = true;
	for (int i = 0; i < NCALLS; i++) {
		struct gw_call_cbs ccb = {
		    .on_message = on_message, .on_status = on_status, .data = &recs[i]};
		FUZZ_CHECK(gw_call_start(c, "/f.S/M", i == 0 ? "tok" : NULL, i == 1 ? 1000 : 0,
					 &ccb, &recs[i].call, &err) == 0);
		FUZZ_CHECK(gw_call_send(recs[i].call, (const uint8_t *)"req", 3) == 0);
		if (i != 1)
			FUZZ_CHECK(gw_call_close_send(recs[i].call) == 0);
	}
	drain(c); /* preface, SETTINGS, the three requests */
	bool ok = nghttp2_session_mem_recv(c->h2, data, size) >= 0;
	gw_calls_dispatch(c);
	if (ok) {
		if (recs[1].call)
			(void)gw_call_send(recs[1].call, (const uint8_t *)"more", 4);
		drain(c);
		for (int round = 0; round < 4 && recs[2].call; round++) {
			gw_call_pause(recs[2].call, false);
			gw_calls_dispatch(c);
		}
		drain(c);
	}
	gw_conn_free(c);
	sv_loop_close(&loop);
	return 0;
}
