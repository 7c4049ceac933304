/* Message body framing as incremental state machines (contract §2.6): Content-Length and
 * chunked, reporting exactly how many fed bytes belong to the body.
 *
 * Pure: no buffering, no allocation. It never consumes a byte past the body's end, so a
 * pipelined request is never forwarded without its own policy check. Chunk-size lines,
 * chunk terminators and trailer fields are validated; anything else is -EBADMSG.
 */
#include "netns/proxy/l7/px_l7.h"

#include <errno.h>
#include <string.h>

#include "netns/proxy/l7/px_l7_int.h"

/* Our bounds on chunk framing: a chunk size of 15 hex digits, 4 KiB of chunk-size line
 * (extensions included), 16 KiB of trailers (the header cap of §6). */
#define CHUNK_DIGITS_MAX 15
#define CHUNK_LINE_MAX	 4096
#define TRAILERS_MAX	 PX_L7_HEAD_MAX

enum {
	S_SIZE_LWS,	 /* before the size: optional SP/HT */
	S_SIZE,		 /* hex digits */
	S_SIZE_RWS,	 /* after the digits: SP/HT, then ';' or CR */
	S_EXT,		 /* chunk extension up to CR */
	S_SIZE_LF,	 /* LF after the size line's CR */
	S_DATA,		 /* chunk payload */
	S_DATA_CR,	 /* CR after the payload */
	S_DATA_LF,	 /* LF after the payload */
	S_TRAILER_START, /* a trailer line or the final CRLF */
	S_TRAILER_NAME,	 /* field name */
	S_TRAILER_VALUE, /* field value up to CR */
	S_TRAILER_LF,	 /* LF after a trailer line */
	S_FINAL_LF,	 /* LF of the terminating empty line */
	S_DONE,
};

void px_l7_body_init(struct px_l7_body *b, enum px_l7_body_kind kind, uint64_t content_length)
{
	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->remaining = kind == PX_L7_BODY_LENGTH ? content_length : 0;
	b->state = kind == PX_L7_BODY_CHUNKED ? S_SIZE_LWS : S_DONE;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int chunked_byte(struct px_l7_body *b, unsigned char c)
{
	if (b->state <= S_SIZE_LF && ++b->line > CHUNK_LINE_MAX)
		return -EBADMSG;
	if (b->state >= S_TRAILER_START && b->state <= S_FINAL_LF && ++b->trailers > TRAILERS_MAX)
		return -EBADMSG;
	switch (b->state) {
	case S_SIZE_LWS:
		if (c == ' ' || c == '\t')
			return 0;
		b->state = S_SIZE;
		/* fall through */
	case S_SIZE: {
		int h = hexval(c);
		if (h >= 0) {
			if (++b->digits > CHUNK_DIGITS_MAX)
				return -EBADMSG;
			b->remaining = b->remaining << 4 | (uint64_t)h;
			return 0;
		}
		if (b->digits == 0)
			return -EBADMSG;
		b->state = S_SIZE_RWS;
	}
		/* fall through */
	case S_SIZE_RWS:
		if (c == ' ' || c == '\t')
			return 0;
		if (c == ';') {
			b->state = S_EXT;
			return 0;
		}
		if (c == '\r') {
			b->state = S_SIZE_LF;
			return 0;
		}
		return -EBADMSG;
	case S_EXT:
		if (c == '\r')
			b->state = S_SIZE_LF;
		else if (c != '\t' && (c < 0x20 || c == 0x7f))
			return -EBADMSG;
		return 0;
	case S_SIZE_LF:
		if (c != '\n')
			return -EBADMSG;
		b->line = 0;
		b->digits = 0;
		b->state = b->remaining ? S_DATA : S_TRAILER_START;
		return 0;
	case S_DATA_CR:
		if (c != '\r')
			return -EBADMSG;
		b->state = S_DATA_LF;
		return 0;
	case S_DATA_LF:
		if (c != '\n')
			return -EBADMSG;
		b->state = S_SIZE_LWS;
		return 0;
	case S_TRAILER_START:
		if (c == '\r') {
			b->state = S_FINAL_LF;
			return 0;
		}
		b->state = S_TRAILER_NAME;
		/* fall through */
	case S_TRAILER_NAME:
		if (c == ':') {
			if (b->line == 0)
				return -EBADMSG;
			b->state = S_TRAILER_VALUE;
			return 0;
		}
		if (!px_l7_is_tchar(c))
			return -EBADMSG;
		b->line++;
		return 0;
	case S_TRAILER_VALUE:
		if (c == '\r') {
			b->state = S_TRAILER_LF;
			return 0;
		}
		if (c != '\t' && (c < 0x20 || c == 0x7f))
			return -EBADMSG;
		return 0;
	case S_TRAILER_LF:
		if (c != '\n')
			return -EBADMSG;
		b->line = 0;
		b->state = S_TRAILER_START;
		return 0;
	case S_FINAL_LF:
		if (c != '\n')
			return -EBADMSG;
		b->state = S_DONE;
		return 1;
	default:
		return -EBADMSG;
	}
}

int px_l7_body_feed(struct px_l7_body *b, const char *buf, size_t len, size_t *used)
{
	size_t i = 0;

	*used = 0;
	if (b->kind == PX_L7_BODY_NONE || b->state == S_DONE) {
		if (b->kind != PX_L7_BODY_LENGTH || b->remaining == 0)
			return 1;
	}
	if (b->kind == PX_L7_BODY_LENGTH) {
		uint64_t take = b->remaining < len ? b->remaining : len;
		b->remaining -= take;
		b->total += take;
		*used = (size_t)take;
		return b->remaining == 0;
	}
	while (i < len) {
		if (b->state == S_DATA) {
			uint64_t take = b->remaining < len - i ? b->remaining : len - i;
			b->remaining -= take;
			i += (size_t)take;
			if (b->remaining == 0)
				b->state = S_DATA_CR;
			continue;
		}
		int r = chunked_byte(b, (unsigned char)buf[i++]);
		if (r < 0) {
			*used = i - 1;
			b->total += i - 1;
			return r;
		}
		if (r == 1)
			break;
	}
	*used = i;
	b->total += i;
	return b->state == S_DONE;
}
