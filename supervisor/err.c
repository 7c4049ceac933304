/* Error context, bounded formatting and small I/O helpers.
 *
 * Everything here is async-signal-safe in practice (vsnprintf into caller buffers, write(2)),
 * because the spawn path uses it between fork and exec. Nothing here may allocate.
 */
#include "err.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

size_t sv_vfmt(char *buf, size_t size, const char *fmt, va_list ap)
{
	if (size == 0)
		return 0;
	int n = vsnprintf(buf, size, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	if (n < 0) {
		buf[0] = '\0';
		return 0;
	}
	return (size_t)n >= size ? size - 1 : (size_t)n;
}

size_t sv_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = sv_vfmt(buf, size, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	va_end(ap);
	return n;
}

static bool token_byte_is_plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("/._+,@%~-", c) != NULL;
}

size_t sv_fmt_token(char *buf, size_t size, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	if (size == 0)
		return 0;
	bool plain = s && *s;
	for (const char *p = s; plain && *p; p++)
		plain = token_byte_is_plain((unsigned char)*p);
	if (plain || size < 3)
		return sv_fmt(buf, size, "%s", plain ? s : "");
	/* Room is kept for the widest escape (4 bytes), the closing quote and the NUL. */
	size_t n = 0;
	buf[n++] = '"';
	for (const char *p = s ? s : ""; *p && n + 6 <= size; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			buf[n++] = '\\';
			buf[n++] = 'x';
			buf[n++] = hex[c >> 4];
			buf[n++] = hex[c & 15];
		} else {
			buf[n++] = (char)c;
		}
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return n;
}

int sv_err_set(struct sv_err *err, int code, const char *fmt, ...)
{
	if (code < 0)
		code = -code;
	if (code == 0)
		code = EINVAL;
	if (err) {
		va_list ap;
		err->code = code;
		va_start(ap, fmt);
		sv_vfmt(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -code;
}

void sv_err_prefix(struct sv_err *err, const char *fmt, ...)
{
	if (!err)
		return;
	char prefix[SV_ERR_MSG_MAX];
	char old[SV_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	sv_vfmt(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	sv_fmt(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
}

int sv_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Symbolic names for the errnos the supervisor reports to operators. */
static const struct {
	int e;
	const char *name;
} errno_names[] = {
/* clang-format off */
#define SV_E(x) {x, #x}
    SV_E(EPERM),	   SV_E(ENOENT),	  SV_E(ESRCH),	       SV_E(EINTR),
    SV_E(EIO),		   SV_E(ENXIO),		  SV_E(E2BIG),	       SV_E(EBADF),
    SV_E(ECHILD),	   SV_E(EAGAIN),	  SV_E(ENOMEM),	       SV_E(EACCES),
    SV_E(EFAULT),	   SV_E(EBUSY),		  SV_E(EEXIST),	       SV_E(ENODEV),
    SV_E(ENOTDIR),	   SV_E(EISDIR),	  SV_E(EINVAL),	       SV_E(ENFILE),
    SV_E(EMFILE),	   SV_E(ENOSPC),	  SV_E(EROFS),	       SV_E(EPIPE),
    SV_E(ERANGE),	   SV_E(ENAMETOOLONG),	  SV_E(ENOSYS),	       SV_E(ELOOP),
    SV_E(EPROTO),	   SV_E(EOVERFLOW),	  SV_E(EUSERS),	       SV_E(ENOTSOCK),
    SV_E(EPROTONOSUPPORT), SV_E(EOPNOTSUPP),	  SV_E(EAFNOSUPPORT),  SV_E(ETIMEDOUT),
    SV_E(ECONNREFUSED),	   SV_E(ENOTRECOVERABLE), SV_E(ESOCKTNOSUPPORT), SV_E(EADDRINUSE),
    SV_E(EADDRNOTAVAIL),   SV_E(ENETUNREACH),	  SV_E(EHOSTUNREACH),  SV_E(EXDEV),
#undef ST_E
    /* clang-format on */
};

const char *sv_errno_name(int e)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(errno_names); i++) {
		if (errno_names[i].e == e)
			return errno_names[i].name;
	}
	return NULL;
}

const char *sv_errno_ename(int e, char *buf, size_t size)
{
	const char *n = sv_errno_name(e);
	if (n)
		return n;
	sv_fmt(buf, size, "errno %d", e);
	return buf;
}

int sv_parse_uint(const char *s, unsigned long long min, unsigned long long max,
		  unsigned long long *out)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	unsigned long long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*s - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}
