/* Egress proxy: chaining through a corporate HTTP proxy (px_upstream.h; contract §1.2,
 * OpenShell's upstream_proxy.rs and driver_utils.rs): option checks, the credential file,
 * --upstream-no-proxy matching, the PX_MSG_UPSTREAM wire form and the CONNECT handshake.
 *
 * Never logs or returns the credential; never changes what the policy or SSRF checks decided.
 */
#include "netns/proxy/px_upstream.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns/proxy/px_ipc.h"
#include "supervisor/policy/policy.h"

#define ARG_URL	     "--upstream-proxy"
#define ARG_NO_PROXY "--upstream-no-proxy"
#define ARG_AUTH     "--upstream-proxy-auth-file"
#define ARG_INSECURE "--upstream-proxy-auth-allow-insecure"
#define ARG_BY_HOST  "--upstream-proxy-connect-by-hostname"
#define HOST_MAX     253

enum np_kind { NP_ANY, NP_DOMAIN, NP_IP, NP_CIDR };

struct np_entry {
	enum np_kind kind;
	uint16_t port; /* 0: any */
	char domain[HOST_MAX + 1];
	struct px_ssrf_ip ip;
	struct pol_cidr cidr;
};

struct px_upstream {
	char host[HOST_MAX + 3]; /* as given (v6 without brackets), for messages */
	uint16_t port;
	struct px_ssrf_ip ip; /* what is dialled */
	bool by_hostname;
	char *auth; /* "Basic <b64>" or NULL; a secret */
	char *no_proxy_raw;
	struct np_entry np[PX_UPSTREAM_NO_PROXY_MAX];
	size_t n_np;
};

/* ---- options ----------------------------------------------------------------------------- */

static int parse_url(const char *raw, struct px_upstream *u, struct sv_err *err)
{
	while (*raw == ' ' || *raw == '\t')
		raw++;
	size_t len = strlen(raw);
	while (len && (raw[len - 1] == ' ' || raw[len - 1] == '\t'))
		len--;
	if (!len)
		return sv_err_set(err, EINVAL, ARG_URL " must not be empty when set");
	const char *sep = strstr(raw, "://");
	if (!sep || (size_t)(sep - raw) >= len)
		return sv_err_set(err, EINVAL, ARG_URL " is invalid: proxy URL must include a scheme, "
					       "e.g. http://proxy.corp.com:3128");
	if (sep - raw != 4 || strncasecmp(raw, "http", 4) != 0)
		return sv_err_set(err, EINVAL, ARG_URL " is invalid: unsupported proxy scheme '%.*s' "
					       "(only http is supported)", (int)(sep - raw > 16 ? 16 : sep - raw), raw);
	const char *a = sep + 3, *end = raw + len;
	const char *aend = a;
	while (aend < end && *aend != '/' && *aend != '?' && *aend != '#')
		aend++;
	if (memchr(a, '@', (size_t)(aend - a)))
		return sv_err_set(err, EINVAL, ARG_URL " is invalid: proxy URL must not embed "
					       "credentials; supply them via the proxy auth file");
	const char *rest = aend;
	if (rest < end && *rest == '/')
		rest++;
	if (rest < end) {
		const char *what = *aend == '?' ? "query" : *aend == '#' ? "fragment" : "path";
		if (*aend == '/' && (*rest == '?' || *rest == '#'))
			what = *rest == '?' ? "query" : "fragment";
		return sv_err_set(err, EINVAL, ARG_URL " is invalid: proxy URL must not contain a %s; "
					       "use scheme://host:port only", what);
	}
	const char *hend, *colon;
	if (a < aend && *a == '[') {
		const char *rb = memchr(a, ']', (size_t)(aend - a));
		if (!rb || (size_t)(rb - a - 1) >= sizeof(u->host))
			return sv_err_set(err, EINVAL, ARG_URL " is invalid: bad IPv6 literal");
		sv_fmt(u->host, sizeof(u->host), "%.*s", (int)(rb - a - 1), a + 1);
		hend = rb + 1;
		colon = hend < aend && *hend == ':' ? hend : NULL;
	} else {
		colon = memchr(a, ':', (size_t)(aend - a));
		hend = colon ? colon : aend;
		if ((size_t)(hend - a) > HOST_MAX)
			return sv_err_set(err, EINVAL, ARG_URL " is invalid: host too long");
		sv_fmt(u->host, sizeof(u->host), "%.*s", (int)(hend - a), a);
	}
	if (!u->host[0])
		return sv_err_set(err, EINVAL, ARG_URL " is invalid: proxy URL is missing a proxy host");
	if (!colon || colon + 1 >= aend)
		return sv_err_set(err, EINVAL, ARG_URL " is invalid: proxy URL must include an "
					       "explicit proxy port, e.g. http://proxy.corp.com:3128");
	char port[8];
	if ((size_t)(aend - colon - 1) >= sizeof(port))
		return sv_err_set(err, EINVAL, ARG_URL " is invalid: bad port");
	sv_fmt(port, sizeof(port), "%.*s", (int)(aend - colon - 1), colon + 1);
	unsigned long long p;
	if (sv_parse_uint(port, 0, 65535, &p) < 0)
		return sv_err_set(err, EINVAL, ARG_URL " is invalid: bad port");
	if (p == 0)
		return sv_err_set(err, EINVAL, ARG_URL " is invalid: proxy URL port must not be 0");
	u->port = (uint16_t)p;
	return 0;
}

static void b64(const unsigned char *in, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = '\0';
}

static int read_credential(const char *path, struct px_upstream *u, struct sv_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sv_err_set(err, errno, "failed to open proxy auth file '%s': %s", path,
				  strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return sv_err_set(err, EINVAL, "proxy auth file '%s' is not a regular file", path);
	if (st.st_size > PX_UPSTREAM_CRED_MAX)
		return sv_err_set(err, EFBIG, "proxy auth file '%s' exceeds %d bytes", path,
				  PX_UPSTREAM_CRED_MAX);
	char buf[PX_UPSTREAM_CRED_MAX + 1];
	ssize_t n = read(fd, buf, PX_UPSTREAM_CRED_MAX + 1);
	if (n < 0 || n > PX_UPSTREAM_CRED_MAX) {
		explicit_bzero(buf, sizeof(buf));
		return sv_err_set(err, EIO, "failed to read proxy auth file '%s'", path);
	}
	size_t s = 0, e = (size_t)n;
	while (s < e && isspace((unsigned char)buf[s]))
		s++;
	while (e > s && isspace((unsigned char)buf[e - 1]))
		e--;
	const char *why = NULL;
	if (s == e)
		why = "credential is empty";
	for (size_t i = s; !why && i < e; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			why = "credential contains control characters";
	const char *c = why ? NULL : memchr(buf + s, ':', e - s);
	if (!why && !c)
		why = "credential must use the user:pass form (missing ':')";
	if (!why && c == buf + s)
		why = "credential must use the user:pass form (empty user)";
	if (why) {
		explicit_bzero(buf, sizeof(buf));
		return sv_err_set(err, EINVAL, "invalid credential in upstream proxy auth file '%s': %s",
				  path, why);
	}
	size_t need = 6 + (e - s + 2) / 3 * 4 + 1;
	u->auth = malloc(need);
	if (!u->auth) {
		explicit_bzero(buf, sizeof(buf));
		return sv_err_set(err, ENOMEM, "out of memory");
	}
	memcpy(u->auth, "Basic ", 6);
	b64((const unsigned char *)buf + s, e - s, u->auth + 6);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

static void np_parse(struct px_upstream *u, const char *raw)
{
	char item[HOST_MAX + 16];
	for (const char *p = raw; *p && u->n_np < PX_UPSTREAM_NO_PROXY_MAX;) {
		size_t n = strcspn(p, ",");
		const char *s = p, *e = p + n;
		p = *e ? e + 1 : e;
		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s == e || (size_t)(e - s) >= sizeof(item))
			continue;
		sv_fmt(item, sizeof(item), "%.*s", (int)(e - s), s);
		struct np_entry *x = &u->np[u->n_np];
		memset(x, 0, sizeof(*x));
		if (strcmp(item, "*") == 0) {
			x->kind = NP_ANY;
			u->n_np++;
			continue;
		}
		/* A trailing :port (not for a bare IPv6 literal). */
		char *colon = strrchr(item, ':');
		if (colon && (strchr(item, ':') == colon || item[0] == '[')) {
			unsigned long long port;
			if (colon[1] && sv_parse_uint(colon + 1, 1, 65535, &port) == 0) {
				x->port = (uint16_t)port;
				*colon = '\0';
			}
		}
		char *h = item;
		size_t hl = strlen(h);
		if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') {
			h[hl - 1] = '\0';
			h++;
		}
		if (strchr(h, '/') && pol_cidr_parse(h, &x->cidr, NULL) == 0) {
			x->kind = NP_CIDR;
		} else if (px_ssrf_ip_parse(h, &x->ip) == 0) {
			px_ssrf_ip_normalize(&x->ip);
			x->kind = NP_IP;
		} else {
			if (strncmp(h, "*.", 2) == 0)
				h += 2;
			else if (h[0] == '.')
				h++;
			if (!*h)
				continue;
			x->kind = NP_DOMAIN;
			sv_fmt(x->domain, sizeof(x->domain), "%s", h);
			for (char *q = x->domain; *q; q++)
				*q = (char)tolower((unsigned char)*q);
		}
		u->n_np++;
	}
}

static int resolve(struct px_upstream *u, struct sv_err *err)
{
	if (px_ssrf_ip_parse(u->host, &u->ip) == 0)
		return 0;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int r = getaddrinfo(u->host, NULL, &hints, &res);
	if (r != 0)
		return sv_err_set(err, EHOSTUNREACH, ARG_URL ": cannot resolve '%s': %s", u->host,
				  gai_strerror(r));
	int ok = -1;
	for (struct addrinfo *ai = res; ai && ok < 0; ai = ai->ai_next)
		ok = px_ssrf_ip_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &u->ip);
	freeaddrinfo(res);
	if (ok < 0)
		return sv_err_set(err, EHOSTUNREACH, ARG_URL ": no address for '%s'", u->host);
	return 0;
}

void px_upstream_free(struct px_upstream *u)
{
	if (!u)
		return;
	if (u->auth) {
		explicit_bzero(u->auth, strlen(u->auth));
		free(u->auth);
	}
	free(u->no_proxy_raw);
	free(u);
}

int px_upstream_new(const struct px_upstream_args *a, struct px_upstream **out,
		    struct sv_err *err)
{
	*out = NULL;
	if (!a->url) {
		const char *set = a->auth_file	       ? ARG_AUTH
				  : a->auth_allow_insecure ? ARG_INSECURE
				  : a->by_hostname	   ? ARG_BY_HOST
				  : a->no_proxy		   ? ARG_NO_PROXY
							   : NULL;
		if (set)
			return sv_err_set(err, EINVAL, "%s is set but no upstream proxy is configured",
					  set);
		return 0;
	}
	if (a->no_proxy && !a->no_proxy[strspn(a->no_proxy, " \t")])
		return sv_err_set(err, EINVAL, ARG_NO_PROXY " must not be empty when set");
	if (a->auth_file && !a->auth_file[strspn(a->auth_file, " \t")])
		return sv_err_set(err, EINVAL, ARG_AUTH " must not be empty when set");
	if (!a->auth_file && a->auth_allow_insecure)
		return sv_err_set(err, EINVAL, ARG_INSECURE " is set but no " ARG_AUTH
						   " is configured");
	if (a->auth_file && !a->auth_allow_insecure)
		return sv_err_set(err, EINVAL, ARG_AUTH " sends the credential as cleartext Basic "
						   "auth over the plain-TCP proxy connection; refusing "
						   "without " ARG_INSECURE);
	struct px_upstream *u = calloc(1, sizeof(*u));
	if (!u)
		return sv_err_set(err, ENOMEM, "out of memory");
	u->by_hostname = a->by_hostname;
	int r = parse_url(a->url, u, err);
	if (r == 0 && a->auth_file)
		r = read_credential(a->auth_file, u, err);
	if (r == 0 && !(u->no_proxy_raw = strdup(a->no_proxy ? a->no_proxy : "")))
		r = sv_err_set(err, ENOMEM, "out of memory");
	if (r == 0)
		np_parse(u, u->no_proxy_raw);
	if (r == 0)
		r = resolve(u, err);
	if (r < 0) {
		px_upstream_free(u);
		return r;
	}
	*out = u;
	return 0;
}

void px_upstream_describe(const struct px_upstream *u, char *buf, size_t size)
{
	char ip[64];
	px_ssrf_ip_format(&u->ip, ip, sizeof(ip));
	sv_fmt(buf, size, "%s:%u (%s) no_proxy_entries=%zu connect_target=%s auth=%s", u->host,
	       u->port, ip, u->n_np, u->by_hostname ? "hostname" : "validated-ip",
	       u->auth ? "basic" : "none");
}

/* ---- wire form --------------------------------------------------------------------------- */

static size_t put(uint8_t *buf, size_t at, size_t size, const void *p, size_t n, bool *full)
{
	if (*full || at + n > size) {
		*full = true;
		return at;
	}
	memcpy(buf + at, p, n);
	return at + n;
}

static size_t put_txt(uint8_t *buf, size_t at, size_t size, const char *s, bool *full)
{
	size_t n = s ? strlen(s) : 0;
	uint8_t l[2] = {(uint8_t)n, (uint8_t)(n >> 8)};
	if (n > 0xfffe) {
		*full = true;
		return at;
	}
	at = put(buf, at, size, l, 2, full);
	return put(buf, at, size, s ? s : "", n, full);
}

int px_upstream_encode(const struct px_upstream *u, uint8_t *buf, size_t size)
{
	bool full = false;
	size_t at = PX_MSG_HDR;
	uint8_t fix[4] = {u->ip.family, (uint8_t)u->port, (uint8_t)(u->port >> 8), u->by_hostname};
	at = put(buf, at, size, fix, 4, &full);
	at = put(buf, at, size, u->ip.addr, 16, &full);
	at = put_txt(buf, at, size, u->host, &full);
	at = put_txt(buf, at, size, u->auth, &full);
	at = put_txt(buf, at, size, u->no_proxy_raw, &full);
	if (full || size < PX_MSG_HDR)
		return -E2BIG;
	uint32_t n = (uint32_t)(at - PX_MSG_HDR);
	uint8_t hdr[PX_MSG_HDR] = {PX_MSG_UPSTREAM, 0, 0, 0, (uint8_t)n, (uint8_t)(n >> 8),
				   (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
	memcpy(buf, hdr, PX_MSG_HDR);
	return (int)at;
}

static const char *get_txt(const uint8_t *buf, size_t len, size_t *at, char *tmp, size_t max)
{
	if (*at + 2 > len)
		return NULL;
	size_t n = (size_t)buf[*at] | (size_t)buf[*at + 1] << 8;
	*at += 2;
	if (n >= max || *at + n > len || memchr(buf + *at, '\0', n))
		return NULL;
	memcpy(tmp, buf + *at, n);
	tmp[n] = '\0';
	*at += n;
	return tmp;
}

int px_upstream_decode(const uint8_t *buf, size_t len, struct px_upstream **out,
		       struct sv_err *err)
{
	*out = NULL;
	if (px_msg_type(buf, len) != PX_MSG_UPSTREAM || len < PX_MSG_HDR + 20)
		return sv_err_set(err, EPROTO, "UPSTREAM: bad header or too short");
	struct px_upstream *u = calloc(1, sizeof(*u));
	char *tmp = malloc(PX_MSG_MAX);
	if (!u || !tmp) {
		free(u);
		free(tmp);
		return sv_err_set(err, ENOMEM, "out of memory");
	}
	size_t at = PX_MSG_HDR;
	u->ip.family = buf[at];
	u->port = (uint16_t)(buf[at + 1] | buf[at + 2] << 8);
	unsigned byh = buf[at + 3];
	memcpy(u->ip.addr, buf + at + 4, 16);
	at += 20;
	const char *why = NULL;
	if ((u->ip.family != 4 && u->ip.family != 6) || u->port == 0 || byh > 1)
		why = "field out of range";
	u->by_hostname = byh;
	const char *s;
	if (!why && !(s = get_txt(buf, len, &at, tmp, sizeof(u->host))))
		why = "host invalid";
	else if (!why)
		sv_fmt(u->host, sizeof(u->host), "%s", s);
	if (!why && !(s = get_txt(buf, len, &at, tmp, (size_t)PX_UPSTREAM_CRED_MAX * 2)))
		why = "auth invalid";
	else if (!why && *s && !(u->auth = strdup(s)))
		why = "out of memory";
	if (!why && !(s = get_txt(buf, len, &at, tmp, PX_MSG_MAX)))
		why = "no_proxy invalid";
	else if (!why && !(u->no_proxy_raw = strdup(s)))
		why = "out of memory";
	if (!why && at != len)
		why = "trailing bytes";
	explicit_bzero(tmp, PX_MSG_MAX);
	free(tmp);
	if (why) {
		px_upstream_free(u);
		return sv_err_set(err, EPROTO, "UPSTREAM: %s", why);
	}
	np_parse(u, u->no_proxy_raw);
	*out = u;
	return 0;
}

/* ---- routing ----------------------------------------------------------------------------- */

static bool ip_is_loopback(const struct px_ssrf_ip *ip)
{
	static const uint8_t lo6[16] = {[15] = 1};
	return ip->family == 4 ? ip->addr[0] == 127 : memcmp(ip->addr, lo6, 16) == 0;
}

bool px_upstream_route(const struct px_upstream *u, const char *host, uint16_t port,
		       struct px_ssrf_ip *addrs, size_t *n)
{
	struct px_ssrf_ip hip;
	bool literal = px_ssrf_ip_parse(host, &hip) == 0;
	if (literal)
		px_ssrf_ip_normalize(&hip);
	if (literal && ip_is_loopback(&hip))
		return false;
	if (!literal && strcasecmp(host, "localhost") == 0 && *n) {
		bool all = true;
		for (size_t i = 0; i < *n; i++)
			all = all && ip_is_loopback(&addrs[i]);
		if (all)
			return false;
	}
	bool keep[64] = {false};
	size_t nkeep = 0, cap = *n < 64 ? *n : 64;
	for (size_t e = 0; e < u->n_np; e++) {
		const struct np_entry *x = &u->np[e];
		if (x->port && x->port != port)
			continue;
		switch (x->kind) {
		case NP_ANY:
			return false;
		case NP_DOMAIN: {
			size_t hl = strlen(host), dl = strlen(x->domain);
			if (hl == dl ? strcasecmp(host, x->domain) == 0
				     : hl > dl && host[hl - dl - 1] == '.' &&
					   strcasecmp(host + hl - dl, x->domain) == 0)
				return false;
			break;
		}
		case NP_IP:
		case NP_CIDR:
			if (literal && (x->kind == NP_IP ? px_ssrf_ip_equal(&hip, &x->ip)
							 : px_ssrf_cidr_contains(&x->cidr, &hip)))
				return false;
			for (size_t i = 0; i < cap; i++) {
				bool m = x->kind == NP_IP ? px_ssrf_ip_equal(&addrs[i], &x->ip)
							  : px_ssrf_cidr_contains(&x->cidr, &addrs[i]);
				if (m && !keep[i]) {
					keep[i] = true;
					nkeep++;
				}
			}
			break;
		}
	}
	if (!nkeep)
		return true;
	size_t o = 0;
	for (size_t i = 0; i < cap; i++)
		if (keep[i])
			addrs[o++] = addrs[i];
	*n = o;
	return false;
}

bool px_upstream_by_hostname(const struct px_upstream *u)
{
	return u->by_hostname;
}

socklen_t px_upstream_addr(const struct px_upstream *u, struct sockaddr_storage *ss)
{
	return px_ssrf_ip_to_sockaddr(&u->ip, u->port, ss);
}

/* ---- the handshake ----------------------------------------------------------------------- */

struct px_uphs {
	char target[HOST_MAX + 16];
	char error[320];
};

int px_uphs_start(const struct px_upstream *u, int fd, const struct px_ssrf_ip *ip,
		  const char *host, uint16_t port, struct px_uphs **out)
{
	struct px_uphs *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (ip) {
		char a[64];
		px_ssrf_ip_format(ip, a, sizeof(a));
		sv_fmt(h->target, sizeof(h->target), ip->family == 6 ? "[%s]:%u" : "%s:%u", a, port);
	} else {
		sv_fmt(h->target, sizeof(h->target), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
		       port);
	}
	char req[(size_t)PX_UPSTREAM_CRED_MAX * 2 + 2 * sizeof(h->target) + 128];
	size_t n = sv_fmt(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s%s%s\r\n",
			  h->target, h->target, u->auth ? "Proxy-Authorization: " : "",
			  u->auth ? u->auth : "", u->auth ? "\r\n" : "");
	/* A fresh connection's send buffer takes this whole: anything less is a failure. */
	ssize_t w = send(fd, req, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	explicit_bzero(req, sizeof(req));
	if (w != (ssize_t)n) {
		free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

int px_uphs_step(struct px_uphs *h, int fd)
{
	char buf[PX_UPSTREAM_RESP_MAX];
	/* Peek, so nothing past the head is taken from the socket: what follows belongs to the
	 * client and the relay reads it from there. */
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		sv_fmt(h->error, sizeof(h->error), "upstream proxy closed the connection during "
						   "CONNECT to %s", h->target);
		return -1;
	}
	char *end = memmem(buf, (size_t)n, "\r\n\r\n", 4);
	if (!end) {
		if ((size_t)n == sizeof(buf)) {
			sv_fmt(h->error, sizeof(h->error), "upstream proxy CONNECT response headers "
							   "exceed %d bytes", PX_UPSTREAM_RESP_MAX);
			return -1;
		}
		return 0;
	}
	size_t head = (size_t)(end - buf) + 4;
	if (recv(fd, buf, head, MSG_DONTWAIT) != (ssize_t)head) {
		sv_fmt(h->error, sizeof(h->error), "upstream proxy: short read");
		return -1;
	}
	unsigned code = 0;
	if (head < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
	    sscanf(buf + 9, "%3u", &code) != 1) {
		sv_fmt(h->error, sizeof(h->error), "upstream proxy sent a malformed CONNECT response");
		return -1;
	}
	if (code != 200) {
		sv_fmt(h->error, sizeof(h->error), "upstream proxy refused CONNECT to %s: HTTP %u",
		       h->target, code);
		return -1;
	}
	return 1;
}

const char *px_uphs_error(const struct px_uphs *h)
{
	return h->error;
}

void px_uphs_free(struct px_uphs *h)
{
	free(h);
}
