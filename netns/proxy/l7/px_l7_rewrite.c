/* The upstream head of an allowed in-tunnel request (contract §2.5, §2.6): the canonical
 * target in the request line, hop-by-hop upgrade fields and Connection-nominated fields
 * removed, WebSocket upgrade fields re-appended in their canonical spelling.
 *
 * Pure: writes only into the caller's buffer. Field lines that are kept go out byte for byte
 * as received (they were validated by px_l7_req_parse).
 */
#include "netns/proxy/l7/px_l7.h"

#include <errno.h>
#include <string.h>

#include "netns/proxy/l7/px_l7_int.h"

/* Is @f named by a token of some Connection field? */
static bool nominated(const struct px_l7_req *req, const struct px_l7_header *f)
{
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct px_l7_header *c = &req->headers[i];
		if (px_l7_ieq(c->name, c->name_len, "connection") &&
		    px_l7_list_hasn(c->value, c->value_len, f->name, f->name_len))
			return true;
	}
	return false;
}

int px_l7_req_rewrite(const struct px_l7_req *req, const struct px_l7_canon *canon,
		      const char *canon_path, bool websocket, char *out, size_t size)
{
	struct px_l7_w w = {out, size, 0};

	px_l7_w_put(&w, req->method, req->method_len);
	px_l7_w_put(&w, " ", 1);
	if (canon && canon->rewritten) {
		px_l7_w_put(&w, canon_path, canon->path_len);
		if (canon->query && canon->query_len) {
			px_l7_w_put(&w, "?", 1);
			px_l7_w_put(&w, canon->query, canon->query_len);
		}
	} else {
		px_l7_w_put(&w, req->target, req->target_len);
	}
	px_l7_w_str(&w, req->version_minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct px_l7_header *f = &req->headers[i];
		if (px_l7_ieq(f->name, f->name_len, "connection") ||
		    px_l7_ieq(f->name, f->name_len, "upgrade") || nominated(req, f))
			continue;
		px_l7_w_put(&w, f->line, f->line_len);
		px_l7_w_put(&w, "\r\n", 2);
	}
	if (websocket)
		px_l7_w_str(&w, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
	px_l7_w_put(&w, "\r\n", 2);
	if (w.len > size || w.len > (size_t)INT32_MAX)
		return -ENOBUFS;
	return (int)w.len;
}
