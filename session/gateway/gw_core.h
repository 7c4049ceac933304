/* Private to session/: the pure pieces of the gateway session (contract §10) that need no
 * transport, kept apart so unit tests and fuzzers can reach them: reconnect backoff, the
 * instance UUID, token text and refresh schedule, relay target validation, endpoint scheme.
 *
 * Nothing here does I/O except gw_random_fill (getrandom) and gw_token_read_file.
 */
#ifndef GW_CORE_H
#define GW_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "supervisor/err.h"

/* Contract §10 step 6: reconnect backoff starts at 1 s, doubles, is capped at 30 s. */
#define GW_BACKOFF_FIRST_MS 1000u
#define GW_BACKOFF_MAX_MS 30000u
/* Jitter takes up to this share (percent) off each delay, so a fleet does not reconnect in step. */
#define GW_BACKOFF_JITTER_PCT 20u
/* Ours, not OpenShell's: an accepted session that stayed up this long resets the backoff. */
#define GW_BACKOFF_RESET_MS 5000u

/* Contract §10 step 3: heartbeats every max(heartbeat_interval_secs, 5) s. */
#define GW_HEARTBEAT_MIN_S 5u

/* Contract §10 transport/auth: refresh at 80% of the remaining lifetime plus (len mod 10)%,
 * clamped 1 s .. 12 h, 6 h when the token has no expiry; failures retry after 10 s. */
#define GW_TOKEN_REFRESH_MIN_MS 1000ull
#define GW_TOKEN_REFRESH_MAX_MS (12ull * 3600 * 1000)
#define GW_TOKEN_REFRESH_NOEXP_MS (6ull * 3600 * 1000)
#define GW_TOKEN_RETRY_MS 10000ull
#define GW_TOKEN_MAX 16384 /* bytes of a token (file or response); larger is refused */

/* Contract §10 step 4: relay data frames carry at most 16 KiB. */
#define GW_RELAY_CHUNK 16384

/* A RelayFrame{data} of n <= GW_RELAY_CHUNK bytes is the tag 0x12 and n as a varint (at most 3
 * bytes) in front of the bytes: relays read straight after that room and never copy to pack. */
#define GW_RELAY_HDR 4
#define GW_RELAY_TAG_DATA 0x12 /* field 2, wire type 2 (contract §10 RelayFrame.data) */

#define GW_UUID_LEN 36

/* The one backoff of the gateway code. Zero-initialised it is the reconnect schedule (1 s
 * doubling to 30 s, up to 20 % jitter); GW_BACKOFF_INIT gives another schedule (the exit report's
 * 250 ms .. 2 s, the policy status outbox's 1 .. 32 s) with the same arithmetic. */
struct gw_backoff {
	uint32_t failures; /* consecutive failed attempts since the last reset */
	uint32_t first_ms, max_ms; /* 0: GW_BACKOFF_FIRST_MS / GW_BACKOFF_MAX_MS */
	uint32_t jitter_pct;	   /* used only when custom */
	bool custom;		   /* false: GW_BACKOFF_JITTER_PCT */
};

#define GW_BACKOFF_INIT(first, max, jitter)                                                     \
	((struct gw_backoff){.first_ms = (first), .max_ms = (max), .jitter_pct = (jitter),    \
			     .custom = true})

/* The delay before the next attempt, in ms, and count the failure: first, doubling, capped at
 * max (1 s, 2 s, 4 s ... 30 s by default), each less up to the jitter percentage chosen by @rnd
 * (any 32-bit value). */
uint32_t gw_backoff_next(struct gw_backoff *b, uint32_t rnd);
void gw_backoff_reset(struct gw_backoff *b);

/* Fill @buf from getrandom(2). Returns 0 or -errno. */
int gw_random_fill(void *buf, size_t len);
uint32_t gw_random_u32(void);

/* Format 16 random bytes as a version-4, variant-1 UUID ("xxxxxxxx-xxxx-4xxx-[89ab]xxx-..."). */
void gw_uuid_format(const uint8_t rnd[16], char out[GW_UUID_LEN + 1]);
int gw_uuid4(char out[GW_UUID_LEN + 1], struct sv_err *err);

/* Trim ASCII white space at both ends of @buf (@len bytes) in place; returns the new length.
 * The token is then buf[0..len). */
size_t gw_token_trim(char *buf, size_t len);

/* A token must be printable ASCII without spaces (it goes into an HTTP header). */
bool gw_token_is_valid(const char *tok, size_t len);

/* Read and trim a token file: at most GW_TOKEN_MAX bytes, not empty, header-safe. Returns an
 * owned NUL-terminated string in *out, or -errno with @err naming @var and the path (never the
 * contents). */
int gw_token_read_file(const char *var, const char *path, char **out, struct sv_err *err);

/* The `exp` claim of a JWT (seconds since the epoch) from its payload, or 0 when the token is
 * not a JWT or has no numeric exp. Never fails. */
uint64_t gw_jwt_exp(const char *tok, size_t len);

/* Milliseconds until the next refresh, contract §10: @exp_ms 0 means no expiry. */
uint64_t gw_token_refresh_delay(uint64_t now_ms, uint64_t exp_ms, size_t token_len);

/* Relay TCP targets (contract §10 step 4): @host must be "localhost" or a loopback literal
 * (127/8, ::1, ::ffff:127.x.y.z, optionally bracketed), @port 1..65535. Fills @ss/@sslen with
 * the address to dial. The errors are the contract's exact strings. */
#define GW_ERR_TCP_HOST "tcp target host must be loopback"
#define GW_ERR_TCP_PORT "tcp target port must be between 1 and 65535"
int gw_tcp_target_resolve(const char *host, uint32_t port, struct sockaddr_storage *ss,
			  socklen_t *sslen, struct sv_err *err);

/* A unix socket address for the SSH socket path; "@name" is the abstract "\0name". */
int gw_unix_addr(const char *path, struct sockaddr_storage *ss, socklen_t *sslen,
		 struct sv_err *err);

/* Write RelayFrame{data}'s tag and length so that they end at @buf + GW_RELAY_HDR, where @n
 * (1..GW_RELAY_CHUNK) bytes of data already are; returns the frame's offset in @buf. */
size_t gw_relay_data_header(uint8_t *buf, size_t n);

/* The common inbound frame, a RelayFrame holding only its data field: *@data points into @msg.
 * False for anything else (the caller then unpacks with protobuf-c). Never reads past @len. */
bool gw_relay_data_view(const uint8_t *msg, size_t len, const uint8_t **data, size_t *n);

#endif
