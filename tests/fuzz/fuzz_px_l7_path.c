/* libFuzzer target for the L7 request-target canonicaliser (netns/proxy/l7/px_l7_path.c).
 *
 * The first byte picks allow_encoded_slash; the rest is the target. Invariants: a canonical
 * path starts with '/', holds only pchar bytes and upper-case %HH escapes, has no '.' or '..'
 * segment and no ';'; canonicalising it again gives the same bytes, unrewritten (unless it
 * grew past the raw-length cap); the query is the input's, byte for byte.
 */
#include <stdbool.h>
#include <string.h>

#include "netns/proxy/l7/px_l7.h"
#include "tests/fuzz/fuzz.h"

static bool pchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("-._~!$&'()*+,=:@", c));
}

static bool upper_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char a[PX_L7_CANON_MAX], b[PX_L7_CANON_MAX];
	struct px_l7_canon ca, cb;
	enum px_l7_path_err why;

	if (size < 1)
		return 0;
	bool slash = data[0] & 1;
	const char *t = (const char *)data + 1;
	size_t n = size - 1;
	if (px_l7_path_canon(t, n, slash, a, sizeof(a), &ca, &why) < 0) {
		FUZZ_CHECK(why != PX_L7_PATH_OK);
		return 0;
	}
	FUZZ_CHECK(ca.path_len > 0 && a[0] == '/' && a[ca.path_len] == '\0');
	FUZZ_CHECK(strlen(a) == ca.path_len);
	for (size_t i = 0; i < ca.path_len; i++) {
		unsigned char c = (unsigned char)a[i];
		if (c == '%') {
			FUZZ_CHECK(i + 2 < ca.path_len && upper_hex((unsigned char)a[i + 1]) &&
				   upper_hex((unsigned char)a[i + 2]));
			i += 2;
			continue;
		}
		FUZZ_CHECK(c == '/' || pchar(c));
	}
	/* no dot segments survive */
	for (size_t s = 1; s <= ca.path_len;) {
		const char *e = memchr(a + s, '/', ca.path_len - s);
		size_t l = e ? (size_t)(e - (a + s)) : ca.path_len - s;
		FUZZ_CHECK(!(l == 1 && a[s] == '.'));
		FUZZ_CHECK(!(l == 2 && a[s] == '.' && a[s + 1] == '.'));
		s += l + 1;
	}
	FUZZ_CHECK(!slash ? !px_l7_path_has_encoded_slash(a, ca.path_len) : true);
	/* the query is split off verbatim */
	const char *q = memchr(t, '?', n);
	if (q)
		FUZZ_CHECK(ca.query == q + 1 && ca.query_len == n - (size_t)(q - t) - 1);
	else
		FUZZ_CHECK(ca.query == NULL);
	/* idempotence */
	int r = px_l7_path_canon(a, ca.path_len, slash, b, sizeof(b), &cb, &why);
	if (r < 0) {
		FUZZ_CHECK(why == PX_L7_PATH_TOO_LONG && ca.path_len > PX_L7_PATH_MAX);
		return 0;
	}
	FUZZ_CHECK(cb.path_len == ca.path_len && memcmp(a, b, ca.path_len) == 0);
	FUZZ_CHECK(!cb.rewritten);
	return 0;
}
