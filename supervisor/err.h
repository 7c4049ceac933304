/* Error context and cleanup helpers shared by every module.
 *
 * A fallible function returns 0 (or a count) on success and -errno on failure; an optional
 * struct sv_err carries a human message up. The message lives in a fixed buffer so filling it
 * is safe after fork and under memory pressure: never allocate here.
 */
#ifndef SV_ERR_H
#define SV_ERR_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#define SV_ERR_MSG_MAX 512

struct sv_err {
	int code;                  /* positive errno, 0 when unset */
	char msg[SV_ERR_MSG_MAX];  /* NUL-terminated, may be truncated */
};

/* Fill @err (may be NULL) and return -@code, so callers can write `return sv_err_set(...)`. */
int sv_err_set(struct sv_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix the existing message with "<prefix>: ". */
void sv_err_prefix(struct sv_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bounded formatting into a fixed buffer; always NUL-terminates, returns the length written. */
size_t sv_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
size_t sv_vfmt(char *buf, size_t size, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* @s as one unambiguous token for a log line: unchanged when every byte is in
 * [A-Za-z0-9/._+,@%~-], else double-quoted with '"', '\\' and control bytes escaped, so that
 * an agent-chosen name ("/tmp/x -> good:443 [policy:canary") cannot pass for log syntax.
 * Always NUL-terminates (when @size > 0); returns the length written. */
size_t sv_fmt_token(char *buf, size_t size, const char *s);

/* Write all of @buf, retrying on EINTR and short writes. Returns 0 or -errno. */
int sv_write_all(int fd, const void *buf, size_t len);

/* "EPERM" for EPERM; NULL for an errno without a name here. */
const char *sv_errno_name(int e);
/* The name, or "errno N" formatted into @buf. */
const char *sv_errno_ename(int e, char *buf, size_t size);

/* Parse a decimal unsigned integer in [min, max]; the whole string must be a number. */
int sv_parse_uint(const char *s, unsigned long long min, unsigned long long max,
		  unsigned long long *out);

static inline void sv_freep(void *p)
{
	free(*(void **)p);
}

static inline void sv_closep(const int *fd)
{
	if (*fd >= 0)
		close(*fd); /* never retried on EINTR: the fd is gone either way */
}

#define _cleanup_free_ __attribute__((cleanup(sv_freep)))
#define _cleanup_close_ __attribute__((cleanup(sv_closep)))

/* Hand ownership on: returns the value and leaves the cleanup variable inert. */
static inline int sv_steal_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

static inline void *sv_steal_ptr(void *pp)
{
	void **p = pp;
	void *r = *p;
	*p = NULL;
	return r;
}

#define SV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
