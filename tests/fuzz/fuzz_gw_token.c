/* libFuzzer target: arbitrary bytes as a sandbox token and as a relay target host, through the
 * session's pure parsers (session/gw_util.c): gw_jwt_exp, gw_token_trim/gw_token_is_valid and
 * gw_tcp_target_resolve.
 *
 * The same bytes as an inbound relay frame through gw_relay_data_view must agree with protobuf-c.
 *
 * Invariants: no crash or overread (ASan); a trimmed token has no white space at either end; a
 * resolved target is a loopback address with the requested port, and a refused one carries one of
 * the contract's two exact messages.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openshell.pb-c.h"
#include "session/gateway/gw_core.h"
#include "tests/fuzz/fuzz.h"

static void die(const char *what)
{
	fprintf(stderr, "invariant broken: %s\n", what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	const uint8_t *view;
	size_t vn;
	if (gw_relay_data_view(data, size, &view, &vn)) {
		Openshell__V1__RelayFrame *f = openshell__v1__relay_frame__unpack(NULL, size, data);
		if (!f || f->payload_case != OPENSHELL__V1__RELAY_FRAME__PAYLOAD_DATA ||
		    f->data.len != vn || (vn && memcmp(f->data.data, view, vn) != 0))
			die("relay frame fast path disagrees with protobuf-c");
		openshell__v1__relay_frame__free_unpacked(f, NULL);
	}
	char *tok = malloc(size + 1);
	if (!tok)
		return 0;
	memcpy(tok, data, size);
	tok[size] = '\0';
	(void)gw_jwt_exp(tok, size);

	size_t n = gw_token_trim(tok, size);
	if (n > size)
		die("trim grew the token");
	if (n && (tok[0] == ' ' || tok[0] == '\n' || tok[n - 1] == ' ' || tok[n - 1] == '\n'))
		die("white space left after trim");
	(void)gw_token_is_valid(tok, n);

	/* The first two bytes pick a port, the rest (up to a NUL) is the host. */
	uint32_t port = size >= 2 ? (uint32_t)data[0] << 9 | (uint32_t)data[1] : 0;
	size_t hl = size >= 2 ? size - 2 : 0;
	char *host = malloc(hl + 1);
	if (!host) {
		free(tok);
		return 0;
	}
	if (hl)
		memcpy(host, data + 2, hl);
	host[hl] = '\0';
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	struct sv_err err = {0};
	int r = gw_tcp_target_resolve(host, port, &ss, &sl, &err);
	if (r == 0) {
		if (port < 1 || port > 65535)
			die("bad port accepted");
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
			if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127 || ntohs(v4->sin_port) != port)
				die("non-loopback IPv4 accepted");
		} else if (ss.ss_family != AF_INET6) {
			die("unknown family");
		}
	} else if (strcmp(err.msg, GW_ERR_TCP_HOST) != 0 && strcmp(err.msg, GW_ERR_TCP_PORT) != 0) {
		die("refusal without the contract's message");
	}
	free(host);
	free(tok);
	return 0;
}
