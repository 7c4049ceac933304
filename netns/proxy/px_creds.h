/* The proxy child's copy of the provider credential store (docs/credentials.md): loaded from
 * the memfd PID 1 sends with PX_MSG_CREDS, read by the relay for each inspected request.
 *
 * Private to netns/proxy/. The child is single-threaded: no locking. Never logs a value.
 */
#ifndef PX_CREDS_H
#define PX_CREDS_H

#include <stdint.h>

#include "netns/proxy/l7/px_cred.h"
#include "supervisor/err.h"

/* Read @len bytes of a px_cred_store_pack blob from @memfd (consumed), unpack and make it the
 * current store. On failure the current store is dropped (fail closed: every placeholder then
 * fails) and @err says why. 0 or -errno. */
int px_creds_load(int memfd, uint64_t len, struct sv_err *err);
/* The current store (borrowed until the next load), NULL before any. */
const struct px_cred_store *px_creds_current(void);
void px_creds_clear(void);

#endif
