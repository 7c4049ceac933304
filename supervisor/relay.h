/* One-directional byte relay between two fds on the event loop, with a bounded buffer and
 * back-pressure: when the destination is full the source is not read.
 *
 * Used for the main process's stdio (child output to the supervisor's stdout/stderr, the
 * supervisor's stdin to the child). The SSH attach issue adds a replay buffer on top.
 */
#ifndef SV_RELAY_H
#define SV_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "loop.h"

#define SV_RELAY_BUF (64 * 1024)

struct sv_relay {
	struct sv_watch src;
	struct sv_watch dst;
	bool src_pollable; /* false for regular files: read when dst is writable */
	bool dst_pollable; /* false for regular files and blocking stdio: write synchronously */
	bool src_eof;
	bool done;
	bool close_src;   /* close fds on finish (false for the supervisor's own stdio) */
	bool close_dst;
	bool src_is_pty;  /* EIO from a PTY master means the slave side hung up */
	size_t off, len;
	char buf[SV_RELAY_BUF];
	const char *name; /* for logs: "stdout", "stderr", "stdin" */
	/* Called after each read from src that produced data (NULL: none). */
	void (*on_data)(struct sv_relay *r, void *data);
	void (*on_done)(struct sv_relay *r, void *data);
	void *data;
};

/* Start relaying @src to @dst. Fds are borrowed unless close_src/close_dst are set by caller
 * before sv_relay_start (they are honoured when the relay finishes). */
int sv_relay_start(struct sv_loop *loop, struct sv_relay *r, int src, int dst);
/* Stop now, dropping undelivered bytes; closes owned fds. */
void sv_relay_stop(struct sv_loop *loop, struct sv_relay *r);

/* A non-blocking fd for the supervisor's own stdio without changing the flags of the open file
 * description it shares with others: re-open FIFOs and terminals through /proc/self/fd. Returns
 * the new fd (owned), or -errno when that is not possible (the caller keeps the original). */
int sv_stdio_reopen_nonblock(int fd, int flags);

#endif
