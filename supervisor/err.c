/* Error context, bounded formatting and small I/O helpers.
 *
 * Everything here is async-signal-safe in practice (vsnprintf into caller buffers, write(2)),
 * because the spawn path uses it between fork and exec. Nothing here may allocate.
 */
#include "err.h"

#include <limits.h>
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
