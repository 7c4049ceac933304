/* The pure parts of the gateway session (see gw_core.h): backoff, UUIDs, token text, the
 * refresh schedule, relay target checks.
 *
 * Token text is a secret: nothing here logs it or copies it into an error message.
 */
#include "gw_core.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/un.h>

#include "supervisor/spec.h"

uint32_t gw_backoff_next(struct gw_backoff *b, uint32_t rnd)
{
	uint32_t first = b->first_ms ? b->first_ms : GW_BACKOFF_FIRST_MS;
	uint32_t max = b->max_ms ? b->max_ms : GW_BACKOFF_MAX_MS;
	uint32_t jitter = b->custom ? b->jitter_pct : GW_BACKOFF_JITTER_PCT;
	if (jitter > 100)
		jitter = 100;
	uint32_t ms = max;
	if (b->failures < 32) {
		uint64_t d = (uint64_t)first << b->failures;
		if (d < max)
			ms = (uint32_t)d;
	}
	if (b->failures < UINT32_MAX)
		b->failures++;
	uint32_t span = (uint32_t)((uint64_t)ms * jitter / 100);
	return span ? ms - rnd % (span + 1) : ms;
}

void gw_backoff_reset(struct gw_backoff *b)
{
	b->failures = 0;
}

int gw_random_fill(void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = getrandom((char *)buf + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

uint32_t gw_random_u32(void)
{
	uint32_t v = 0;
	(void)gw_random_fill(&v, sizeof(v)); /* jitter only: a failure leaves no jitter */
	return v;
}

void gw_uuid_format(const uint8_t rnd[16], char out[GW_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	memcpy(b, rnd, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	size_t o = 0;
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
}

int gw_uuid4(char out[GW_UUID_LEN + 1], struct sv_err *err)
{
	uint8_t rnd[16];
	int r = gw_random_fill(rnd, sizeof(rnd));
	if (r < 0)
		return sv_err_set(err, -r, "getrandom for the instance id: %s", strerror(-r));
	gw_uuid_format(rnd, out);
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

size_t gw_token_trim(char *buf, size_t len)
{
	size_t start = 0;
	while (start < len && is_space(buf[start]))
		start++;
	while (len > start && is_space(buf[len - 1]))
		len--;
	memmove(buf, buf + start, len - start);
	return len - start;
}

bool gw_token_is_valid(const char *tok, size_t len)
{
	if (len == 0 || len > GW_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)tok[i];
		if (c <= 0x20 || c >= 0x7f)
			return false;
	}
	return true;
}

int gw_token_read_file(const char *var, const char *path, char **out, struct sv_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sv_err_set(err, errno, "%s: cannot open '%s': %s", var, path,
				  strerror(errno));
	char *buf = malloc(GW_TOKEN_MAX + 2);
	if (!buf) {
		close(fd);
		return sv_err_set(err, ENOMEM, "%s: out of memory", var);
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, GW_TOKEN_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			free(buf);
			return sv_err_set(err, e, "%s: cannot read '%s': %s", var, path,
					  strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > GW_TOKEN_MAX)
			break;
	}
	close(fd);
	if (len > GW_TOKEN_MAX) {
		free(buf);
		return sv_err_set(err, EFBIG, "%s: '%s' is larger than %d bytes", var, path,
				  GW_TOKEN_MAX);
	}
	len = gw_token_trim(buf, len);
	buf[len] = '\0';
	if (len == 0 || !gw_token_is_valid(buf, len)) {
		free(buf);
		return sv_err_set(err, EINVAL, "%s: '%s' %s", var, path,
				  len ? "holds characters a token cannot have" : "is empty");
	}
	*out = buf;
	return 0;
}

/* Find "exp" at the top level of a small JSON object and read its integer value. A bounded
 * scan, not a full parser: strings are skipped with their escapes, nesting is tracked. */
static uint64_t json_exp(const char *s, size_t n)
{
	int depth = 0;
	size_t i = 0;
	while (i < n) {
		char c = s[i];
		if (c == '{' || c == '[') {
			depth++;
			i++;
			continue;
		}
		if (c == '}' || c == ']') {
			depth--;
			i++;
			continue;
		}
		if (c != '"') {
			i++;
			continue;
		}
		size_t start = ++i;
		while (i < n && s[i] != '"')
			i += s[i] == '\\' ? 2 : 1;
		if (i >= n)
			return 0;
		size_t klen = i - start;
		i++;
		if (depth != 1 || klen != 3 || memcmp(s + start, "exp", 3) != 0)
			continue;
		size_t j = i;
		while (j < n && is_space(s[j]))
			j++;
		if (j >= n || s[j] != ':')
			continue; /* a string value "exp", not the key */
		j++;
		while (j < n && is_space(s[j]))
			j++;
		uint64_t v = 0;
		size_t digits = 0;
		while (j < n && s[j] >= '0' && s[j] <= '9' && digits < 12) {
			v = v * 10 + (uint64_t)(s[j] - '0');
			j++;
			digits++;
		}
		/* a fraction (1.5e9) is cut at the dot; seconds are what matter */
		return digits ? v : 0;
	}
	return 0;
}

uint64_t gw_jwt_exp(const char *tok, size_t len)
{
	const char *dot1 = memchr(tok, '.', len);
	if (!dot1)
		return 0;
	const char *p = dot1 + 1;
	const char *dot2 = memchr(p, '.', len - (size_t)(p - tok));
	if (!dot2)
		return 0;
	size_t plen = (size_t)(dot2 - p);
	if (plen == 0 || plen > GW_TOKEN_MAX)
		return 0;
	unsigned char *out = malloc(plen * 3 / 4 + 3);
	if (!out)
		return 0;
	size_t bad;
	long n = sv_b64url_decode(p, plen, out, &bad);
	uint64_t exp = n > 0 ? json_exp((const char *)out, (size_t)n) : 0;
	free(out);
	return exp;
}

uint64_t gw_token_refresh_delay(uint64_t now_ms, uint64_t exp_ms, size_t token_len)
{
	if (exp_ms == 0)
		return GW_TOKEN_REFRESH_NOEXP_MS;
	uint64_t left = exp_ms > now_ms ? exp_ms - now_ms : 0;
	uint64_t pct = 80 + token_len % 10;
	uint64_t d = left / 100 * pct + left % 100 * pct / 100;
	if (d < GW_TOKEN_REFRESH_MIN_MS)
		d = GW_TOKEN_REFRESH_MIN_MS;
	if (d > GW_TOKEN_REFRESH_MAX_MS)
		d = GW_TOKEN_REFRESH_MAX_MS;
	return d;
}

int gw_tcp_target_resolve(const char *host, uint32_t port, struct sockaddr_storage *ss,
			  socklen_t *sslen, struct sv_err *err)
{
	memset(ss, 0, sizeof(*ss));
	char h[INET6_ADDRSTRLEN + 3];
	size_t hl = strlen(host);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		host++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(h))
		return sv_err_set(err, EINVAL, GW_ERR_TCP_HOST);
	memcpy(h, host, hl);
	h[hl] = '\0';
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (strcasecmp(h, "localhost") == 0) {
		v4->sin_family = AF_INET;
		v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*sslen = sizeof(*v4);
	} else if (inet_pton(AF_INET, h, &v4->sin_addr) == 1) {
		if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127)
			return sv_err_set(err, EINVAL, GW_ERR_TCP_HOST);
		v4->sin_family = AF_INET;
		*sslen = sizeof(*v4);
	} else if (inet_pton(AF_INET6, h, &v6->sin6_addr) == 1) {
		const uint8_t *a = v6->sin6_addr.s6_addr;
		bool mapped = IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && a[12] == 127;
		if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) && !mapped)
			return sv_err_set(err, EINVAL, GW_ERR_TCP_HOST);
		v6->sin6_family = AF_INET6;
		*sslen = sizeof(*v6);
	} else {
		return sv_err_set(err, EINVAL, GW_ERR_TCP_HOST);
	}
	if (port < 1 || port > 65535) {
		memset(ss, 0, sizeof(*ss));
		return sv_err_set(err, EINVAL, GW_ERR_TCP_PORT);
	}
	if (ss->ss_family == AF_INET)
		v4->sin_port = htons((uint16_t)port);
	else
		v6->sin6_port = htons((uint16_t)port);
	return 0;
}

int gw_unix_addr(const char *path, struct sockaddr_storage *ss, socklen_t *sslen,
		 struct sv_err *err)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	size_t n = strlen(path);
	if (n == 0 || (path[0] == '@' && n == 1))
		return sv_err_set(err, EINVAL, "ssh socket path is empty");
	if (n >= sizeof(un->sun_path))
		return sv_err_set(err, ENAMETOOLONG, "ssh socket path '%s' is too long", path);
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n);
	if (path[0] == '@')
		un->sun_path[0] = '\0'; /* abstract: the name is the bytes after the NUL, unterminated */
	*sslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	return 0;
}

/* Write RelayFrame{data}'s tag and length so that they end at buf + GW_RELAY_HDR, where @n bytes
 * of data already are; returns the frame's offset in @buf. */
size_t gw_relay_data_header(uint8_t *buf, size_t n)
{
	uint8_t v[3];
	size_t vl = 0;
	do {
		v[vl] = (uint8_t)(n & 0x7f);
		n >>= 7;
		if (n)
			v[vl] |= 0x80;
		vl++;
	} while (n && vl < sizeof(v));
	size_t off = GW_RELAY_HDR - 1 - vl;
	buf[off] = GW_RELAY_TAG_DATA;
	memcpy(buf + off + 1, v, vl);
	return off;
}

/* The common inbound frame, RelayFrame{data} alone: its bytes in place, without unpacking.
 * Returns false for anything else (then protobuf-c decides). */
bool gw_relay_data_view(const uint8_t *msg, size_t len, const uint8_t **data, size_t *n)
{
	if (len < 2 || msg[0] != GW_RELAY_TAG_DATA)
		return false;
	uint64_t v = 0;
	size_t i = 1;
	for (unsigned shift = 0; i < len && shift < 35; shift += 7) {
		uint8_t b = msg[i++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (v != len - i)
				return false; /* more fields follow: the slow path */
			*data = msg + i;
			*n = (size_t)v;
			return true;
		}
	}
	return false;
}
