/* Private helpers shared by the files of netns/proxy/l7/ (byte classes, UTF-8, an appending
 * writer). Not part of the folder's API: only px_l7_*.c include this.
 */
#ifndef PX_L7_INT_H
#define PX_L7_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool px_l7_is_tchar(unsigned char c);
unsigned char px_l7_lower(unsigned char c);
/* @a (@an bytes) equals NUL-terminated @lit, ASCII case-insensitively. */
bool px_l7_ieq(const char *a, size_t an, const char *lit);
/* Length of the well-formed UTF-8 sequence at @s (at most @n bytes), 0 if ill-formed. */
size_t px_l7_utf8_len(const unsigned char *s, size_t n);
bool px_l7_utf8_valid(const unsigned char *s, size_t n);
/* Trim SP, HT (and CR, LF, VT, FF, as Rust's str::trim does for ASCII) from both ends. */
void px_l7_trim(const char **p, size_t *n);
/* Does the comma-separated list @v contain @tok (each element trimmed, case-insensitive)? */
bool px_l7_list_has(const char *v, size_t n, const char *tok);
bool px_l7_list_hasn(const char *v, size_t n, const char *tok, size_t tok_len);

/* Appends while it fits and keeps counting, so the caller can report -ENOBUFS. */
struct px_l7_w {
	char *buf;
	size_t size, len;
};
void px_l7_w_put(struct px_l7_w *w, const char *s, size_t n);
void px_l7_w_str(struct px_l7_w *w, const char *s);
void px_l7_w_uint(struct px_l7_w *w, uint64_t v);
/* A JSON string as serde_json writes it (", \, \b \f \n \r \t, other C0 as \u00xx); bytes that
 * are not UTF-8 become U+FFFD like String::from_utf8_lossy. */
void px_l7_w_json(struct px_l7_w *w, const char *s, size_t n);
/* The same escaping without the surrounding quotes (to build one string from pieces). */
void px_l7_w_json_inner(struct px_l7_w *w, const char *s, size_t n);
/* 0 when it all fit (and was NUL-terminated), else -ENOBUFS. */
int px_l7_w_end(struct px_l7_w *w);

#endif
