/* Strict, bounded JSON pull parser (RFC 8259).
 *
 * Only what the supervisor needs: objects, arrays, strings (with \u escapes and surrogate pairs
 * turned into UTF-8), booleans, null, unsigned integers, and skipping of anything else. It must
 * never read past buf+len, never recurse without bound, and never accept invalid UTF-8.
 */
#include "json.h"

#include <stdlib.h>
#include <string.h>

void sv_json_init(struct sv_json *j, const char *what, const char *buf, size_t len)
{
	j->buf = buf;
	j->len = len;
	j->pos = 0;
	j->what = what;
}

int sv_json_fail(struct sv_json *j, struct sv_err *err, const char *msg)
{
	return sv_err_set(err, EINVAL, "%s: invalid JSON: %s at byte %zu", j->what, msg, j->pos);
}

static void skip_ws(struct sv_json *j)
{
	while (j->pos < j->len) {
		char c = j->buf[j->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		j->pos++;
	}
}

static int peek_char(struct sv_json *j)
{
	skip_ws(j);
	return j->pos < j->len ? (unsigned char)j->buf[j->pos] : -1;
}

enum sv_json_type sv_json_peek(struct sv_json *j)
{
	switch (peek_char(j)) {
	case 'n':
		return SV_JSON_NULL;
	case 't':
	case 'f':
		return SV_JSON_BOOL;
	case '"':
		return SV_JSON_STRING;
	case '[':
		return SV_JSON_ARRAY;
	case '{':
		return SV_JSON_OBJECT;
	case '-':
	case '0':
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7':
	case '8':
	case '9':
		return SV_JSON_NUMBER;
	default:
		return SV_JSON_BAD;
	}
}

static bool literal(struct sv_json *j, const char *word)
{
	size_t n = strlen(word);
	if (j->len - j->pos < n || memcmp(j->buf + j->pos, word, n) != 0)
		return false;
	j->pos += n;
	return true;
}

/* Length of the valid UTF-8 sequence at s (max n bytes), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned int cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0; /* overlong or out of range */
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0; /* surrogates are not characters */
	return len;
}

static int hex4(struct sv_json *j, unsigned int *out)
{
	if (j->len - j->pos < 4)
		return -1;
	unsigned int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = j->buf[j->pos + (size_t)i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	j->pos += 4;
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned int cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static int parse_escape(struct sv_json *j, char *o, size_t *olen, unsigned int *cp_out,
			struct sv_err *err)
{
	if (j->pos >= j->len)
		return sv_json_fail(j, err, "unterminated string");
	char c = j->buf[j->pos++];
	static const char from[] = "\"\\/bfnrt";
	static const char to[] = "\"\\/\b\f\n\r\t";
	const char *p = c ? strchr(from, c) : NULL;
	if (p) {
		o[0] = to[p - from];
		*olen = 1;
		*cp_out = (unsigned char)o[0];
		return 0;
	}
	if (c != 'u')
		return sv_json_fail(j, err, "invalid escape");
	unsigned int cp;
	if (hex4(j, &cp) < 0)
		return sv_json_fail(j, err, "invalid \\u escape");
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return sv_json_fail(j, err, "lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		unsigned int lo;
		if (!literal(j, "\\u") || hex4(j, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
			return sv_json_fail(j, err, "unpaired high surrogate");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	*olen = put_utf8(o, cp);
	*cp_out = cp;
	return 0;
}

int sv_json_string(struct sv_json *j, char **out, size_t *outlen, bool allow_nul,
		   struct sv_err *err)
{
	if (peek_char(j) != '"')
		return sv_json_fail(j, err, "expected a string");
	j->pos++;
	/* The decoded string is never longer than its encoded form. */
	size_t start = j->pos;
	size_t end = start;
	while (end < j->len && j->buf[end] != '"') {
		if (j->buf[end] == '\\')
			end++;
		end++;
	}
	_cleanup_free_ char *s = malloc(end - start + 1);
	if (!s)
		return sv_err_set(err, ENOMEM, "%s: out of memory", j->what);
	size_t n = 0;
	for (;;) {
		if (j->pos >= j->len)
			return sv_json_fail(j, err, "unterminated string");
		unsigned char c = (unsigned char)j->buf[j->pos];
		if (c == '"') {
			j->pos++;
			break;
		}
		if (c < 0x20)
			return sv_json_fail(j, err, "control character in string");
		if (c == '\\') {
			j->pos++;
			size_t k = 0;
			unsigned int cp = 0;
			int r = parse_escape(j, s + n, &k, &cp, err);
			if (r < 0)
				return r;
			if (!allow_nul && cp == 0)
				return sv_json_fail(j, err, "NUL character in string");
			n += k;
			continue;
		}
		size_t k = utf8_seq((const unsigned char *)j->buf + j->pos, j->len - j->pos);
		if (k == 0)
			return sv_json_fail(j, err, "invalid UTF-8");
		memcpy(s + n, j->buf + j->pos, k);
		n += k;
		j->pos += k;
	}
	s[n] = '\0';
	if (outlen)
		*outlen = n;
	*out = sv_steal_ptr(&s);
	return 0;
}

int sv_json_bool(struct sv_json *j, bool *out, struct sv_err *err)
{
	skip_ws(j);
	if (literal(j, "true"))
		*out = true;
	else if (literal(j, "false"))
		*out = false;
	else
		return sv_json_fail(j, err, "expected true or false");
	return 0;
}

/* Scan a JSON number's grammar; *is_uint tells whether it was a plain non-negative integer. */
static int scan_number(struct sv_json *j, bool *is_uint, struct sv_err *err)
{
	size_t p = j->pos;
	bool neg = false, frac = false;
	if (p < j->len && j->buf[p] == '-') {
		neg = true;
		p++;
	}
	if (p >= j->len || j->buf[p] < '0' || j->buf[p] > '9')
		return sv_json_fail(j, err, "invalid number");
	if (j->buf[p] == '0' && p + 1 < j->len && j->buf[p + 1] >= '0' && j->buf[p + 1] <= '9')
		return sv_json_fail(j, err, "leading zero in number");
	while (p < j->len && j->buf[p] >= '0' && j->buf[p] <= '9')
		p++;
	if (p < j->len && j->buf[p] == '.') {
		frac = true;
		p++;
		if (p >= j->len || j->buf[p] < '0' || j->buf[p] > '9')
			return sv_json_fail(j, err, "invalid number");
		while (p < j->len && j->buf[p] >= '0' && j->buf[p] <= '9')
			p++;
	}
	if (p < j->len && (j->buf[p] == 'e' || j->buf[p] == 'E')) {
		frac = true;
		p++;
		if (p < j->len && (j->buf[p] == '+' || j->buf[p] == '-'))
			p++;
		if (p >= j->len || j->buf[p] < '0' || j->buf[p] > '9')
			return sv_json_fail(j, err, "invalid number");
		while (p < j->len && j->buf[p] >= '0' && j->buf[p] <= '9')
			p++;
	}
	*is_uint = !neg && !frac;
	return (int)(p - j->pos);
}

int sv_json_uint(struct sv_json *j, uint64_t *out, struct sv_err *err)
{
	skip_ws(j);
	bool is_uint;
	int n = scan_number(j, &is_uint, err);
	if (n < 0)
		return n;
	if (!is_uint)
		return sv_json_fail(j, err, "expected a non-negative integer");
	uint64_t v = 0;
	for (int i = 0; i < n; i++) {
		unsigned d = (unsigned)(j->buf[j->pos + (size_t)i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return sv_json_fail(j, err, "integer out of range");
		v = v * 10 + d;
	}
	j->pos += (size_t)n;
	*out = v;
	return 0;
}

static int expect(struct sv_json *j, char c, const char *msg, struct sv_err *err)
{
	if (peek_char(j) != (unsigned char)c)
		return sv_json_fail(j, err, msg);
	j->pos++;
	return 0;
}

int sv_json_object_begin(struct sv_json *j, struct sv_err *err)
{
	return expect(j, '{', "expected an object", err);
}

int sv_json_array_begin(struct sv_json *j, struct sv_err *err)
{
	return expect(j, '[', "expected an array", err);
}

/* Shared element step: the character before the element tells whether it is the first. */
static int container_next(struct sv_json *j, char close, struct sv_err *err)
{
	int c = peek_char(j);
	if (c == close) {
		j->pos++;
		return 0;
	}
	/* First element iff the last significant byte is the opening bracket. */
	size_t p = j->pos;
	while (p > 0) {
		char b = j->buf[p - 1];
		if (b != ' ' && b != '\t' && b != '\n' && b != '\r')
			break;
		p--;
	}
	bool first = p > 0 && (j->buf[p - 1] == '{' || j->buf[p - 1] == '[');
	if (!first) {
		if (c != ',')
			return sv_json_fail(j, err, close == '}' ? "expected ',' or '}'"
								 : "expected ',' or ']'");
		j->pos++;
		if (peek_char(j) == close)
			return sv_json_fail(j, err, "trailing comma");
	}
	if (j->pos >= j->len)
		return sv_json_fail(j, err, "unexpected end of input");
	return 1;
}

int sv_json_object_next(struct sv_json *j, char **key, struct sv_err *err)
{
	int r = container_next(j, '}', err);
	if (r <= 0)
		return r;
	r = sv_json_string(j, key, NULL, false, err);
	if (r < 0)
		return r;
	r = expect(j, ':', "expected ':'", err);
	if (r < 0) {
		free(*key);
		*key = NULL;
		return r;
	}
	return 1;
}

int sv_json_array_next(struct sv_json *j, struct sv_err *err)
{
	return container_next(j, ']', err);
}

static int skip_depth(struct sv_json *j, int depth, struct sv_err *err)
{
	if (depth > SV_JSON_DEPTH_MAX)
		return sv_json_fail(j, err, "nesting too deep");
	int r;
	switch (sv_json_peek(j)) {
	case SV_JSON_NULL:
		return literal(j, "null") ? 0 : sv_json_fail(j, err, "invalid literal");
	case SV_JSON_BOOL: {
		bool b;
		return sv_json_bool(j, &b, err);
	}
	case SV_JSON_NUMBER: {
		bool is_uint;
		r = scan_number(j, &is_uint, err);
		if (r < 0)
			return r;
		j->pos += (size_t)r;
		return 0;
	}
	case SV_JSON_STRING: {
		_cleanup_free_ char *s = NULL;
		return sv_json_string(j, &s, NULL, true, err);
	}
	case SV_JSON_ARRAY:
		j->pos++;
		while ((r = sv_json_array_next(j, err)) > 0) {
			r = skip_depth(j, depth + 1, err);
			if (r < 0)
				return r;
		}
		return r;
	case SV_JSON_OBJECT:
		j->pos++;
		for (;;) {
			_cleanup_free_ char *key = NULL;
			r = sv_json_object_next(j, &key, err);
			if (r <= 0)
				return r;
			r = skip_depth(j, depth + 1, err);
			if (r < 0)
				return r;
		}
	case SV_JSON_BAD:
	default:
		return sv_json_fail(j, err, j->pos >= j->len ? "unexpected end of input"
							     : "expected a value");
	}
}

int sv_json_skip(struct sv_json *j, struct sv_err *err)
{
	return skip_depth(j, 1, err);
}

int sv_json_end(struct sv_json *j, struct sv_err *err)
{
	if (peek_char(j) != -1)
		return sv_json_fail(j, err, "trailing characters after the value");
	return 0;
}
