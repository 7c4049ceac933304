/* gRPC over HTTP/2 wire helpers for the gateway transport: endpoint parsing, the 5-byte message
 * prefix and its reassembly, grpc-timeout, grpc-status and grpc-message.
 *
 * Pure functions over bytes, no I/O. Everything read here comes from the peer (or from the
 * endpoint configuration): bounded, never trusted, fuzzed by tests/fuzz/fuzz_gw_grpc.c.
 */
#include "session/gateway/gw_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buffers up to this size are kept between messages; bigger ones are freed once delivered. */
#define DEFRAMER_KEEP ((size_t)64 * 1024)
/* grpc-timeout: "TimeoutValue -> {positive integer as ASCII string of at most 8 digits}". */
#define TIMEOUT_DIGITS_MAX 99999999u

/* ------------------------------------------------------------------ endpoint */

static bool host_char_ok(char c, bool bracketed)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	if (c == '.' || c == '-' || c == '_')
		return true;
	return bracketed && (c == ':' || c == '%');
}

int gw_endpoint_parse(const char *endpoint, struct gw_endpoint *ep, struct sv_err *err)
{
	memset(ep, 0, sizeof(*ep));
	if (!endpoint || !*endpoint)
		return sv_err_set(err, EINVAL, "gateway endpoint is empty");
	const char *p;
	if (strncmp(endpoint, "http://", 7) == 0) {
		p = endpoint + 7;
	} else if (strncmp(endpoint, "https://", 8) == 0) {
		ep->tls = true;
		p = endpoint + 8;
	} else {
		return sv_err_set(
		    err, EINVAL, "gateway endpoint \"%.200s\": must start with http:// or https://",
		    endpoint);
	}
	size_t alen = strcspn(p, "/");
	if (p[alen] == '/' && p[alen + 1] != '\0')
		return sv_err_set(err, EINVAL, "gateway endpoint \"%.200s\": a path is not allowed",
				  endpoint);
	if (alen == 0)
		return sv_err_set(err, EINVAL, "gateway endpoint \"%.200s\": no host", endpoint);
	if (alen >= sizeof(ep->authority))
		return sv_err_set(err, EINVAL, "gateway endpoint \"%.200s\": host is too long",
				  endpoint);
	memcpy(ep->authority, p, alen);
	ep->authority[alen] = '\0';

	const char *h = ep->authority, *rest;
	size_t hlen;
	bool bracketed = h[0] == '[';
	if (bracketed) {
		const char *close = strchr(h, ']');
		if (!close)
			return sv_err_set(err, EINVAL, "gateway endpoint \"%.200s\": unclosed '['",
					  endpoint);
		h++;
		hlen = (size_t)(close - h);
		rest = close + 1;
	} else {
		hlen = strcspn(h, ":");
		rest = h + hlen;
	}
	if (hlen == 0 || hlen > GW_HOST_MAX)
		return sv_err_set(err, EINVAL, "gateway endpoint \"%.200s\": bad host length",
				  endpoint);
	for (size_t i = 0; i < hlen; i++)
		if (!host_char_ok(h[i], bracketed))
			return sv_err_set(err, EINVAL,
					  "gateway endpoint \"%.200s\": invalid character at "
					  "offset %zu of the host",
					  endpoint, i);
	memcpy(ep->host, h, hlen);
	ep->host[hlen] = '\0';

	ep->port = ep->tls ? 443 : 80;
	if (*rest == ':') {
		unsigned long long port;
		if (sv_parse_uint(rest + 1, 1, 65535, &port) < 0)
			return sv_err_set(err, EINVAL,
					  "gateway endpoint \"%.200s\": port must be 1..65535",
					  endpoint);
		ep->port = (uint16_t)port;
	} else if (*rest != '\0') {
		return sv_err_set(err, EINVAL, "gateway endpoint \"%.200s\": junk after the host",
				  endpoint);
	}
	return 0;
}

/* ------------------------------------------------------------------ framing */

void gw_grpc_prefix(uint8_t out[GW_GRPC_PREFIX], uint32_t len)
{
	out[0] = 0; /* never compressed */
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

void gw_deframer_init(struct gw_deframer *d, size_t max)
{
	memset(d, 0, sizeof(*d));
	d->max = max;
}

void gw_deframer_free(struct gw_deframer *d)
{
	free(d->msg);
	d->msg = NULL;
	d->msg_cap = 0;
}

bool gw_deframer_is_idle(const struct gw_deframer *d)
{
	return d->hdr_have == 0 || d->done;
}

/* The last message was handed out: make room for the next. */
static void deframer_next(struct gw_deframer *d)
{
	d->done = false;
	d->hdr_have = 0;
	d->msg_len = d->msg_have = 0;
	if (d->msg_cap > DEFRAMER_KEEP) {
		free(d->msg);
		d->msg = NULL;
		d->msg_cap = 0;
	}
}

static int deframer_start(struct gw_deframer *d, struct sv_err *err)
{
	uint8_t flag = d->hdr[0];
	uint32_t len = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 |
		       (uint32_t)d->hdr[3] << 8 | d->hdr[4];
	if (flag == 1)
		return sv_err_set(err, ENOTSUP,
				  "compressed gRPC message received but no grpc-encoding was "
				  "negotiated");
	if (flag != 0)
		return sv_err_set(err, EPROTO, "invalid gRPC message flags 0x%02x", flag);
	if (len > d->max)
		return sv_err_set(err, EMSGSIZE,
				  "gRPC message of %u bytes exceeds the limit of %zu bytes", len,
				  d->max);
	size_t want = len ? len : 1;
	if (want > d->msg_cap) {
		uint8_t *m = malloc(want);
		if (!m)
			return sv_err_set(err, ENOMEM, "no memory for a gRPC message of %u bytes",
					  len);
		free(d->msg);
		d->msg = m;
		d->msg_cap = want;
	}
	d->msg_len = len;
	d->msg_have = 0;
	return 0;
}

int gw_deframer_feed(struct gw_deframer *d, const uint8_t *p, size_t len, size_t *used,
		     const uint8_t **msg, size_t *msg_len, struct sv_err *err)
{
	size_t off = 0;
	*used = 0;
	if (d->done)
		deframer_next(d);
	for (;;) {
		if (d->hdr_have < GW_GRPC_PREFIX) {
			size_t n = GW_GRPC_PREFIX - d->hdr_have;
			if (n > len - off)
				n = len - off;
			memcpy(d->hdr + d->hdr_have, p + off, n);
			d->hdr_have += n;
			off += n;
			*used = off;
			if (d->hdr_have < GW_GRPC_PREFIX)
				return 0;
			int r = deframer_start(d, err);
			if (r < 0)
				return r;
		}
		size_t n = d->msg_len - d->msg_have;
		if (n > len - off)
			n = len - off;
		if (n > 0)
			memcpy(d->msg + d->msg_have, p + off, n);
		d->msg_have += n;
		off += n;
		*used = off;
		if (d->msg_have == d->msg_len) {
			d->done = true;
			*msg = d->msg;
			*msg_len = d->msg_len;
			return 1;
		}
		if (off == len)
			return 0;
	}
}

/* ------------------------------------------------------------------ headers */

size_t gw_grpc_timeout_fmt(uint32_t ms, char *buf, size_t size)
{
	if (ms <= TIMEOUT_DIGITS_MAX)
		return sv_fmt(buf, size, "%um", ms);
	return sv_fmt(buf, size, "%uS", ms / 1000u + (ms % 1000u != 0)); /* rounded up */
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t gw_grpc_pct_decode(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;
	if (size == 0)
		return 0;
	for (size_t i = 0; i < len && o + 1 < size; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '%' && i + 2 < len && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
			c = (unsigned char)(hexval(in[i + 1]) << 4 | hexval(in[i + 2]));
			i += 2;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			c = '?';
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return o;
}

int gw_grpc_status_parse(const char *v, size_t len)
{
	if (len == 0 || len > 2)
		return -EINVAL;
	int s = 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		s = s * 10 + (v[i] - '0');
	}
	return s;
}

int gw_grpc_status_from_http(int http_status)
{
	switch (http_status) {
	case 400:
		return GW_STATUS_INTERNAL;
	case 401:
		return GW_STATUS_UNAUTHENTICATED;
	case 403:
		return GW_STATUS_PERMISSION_DENIED;
	case 404:
		return GW_STATUS_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return GW_STATUS_UNAVAILABLE;
	default:
		return GW_STATUS_UNKNOWN;
	}
}
