/* Worker threads for blocking work the event loop must never do itself: name resolution,
 * reading /proc for a client's identity, hashing large binaries.
 *
 * A job's run() executes on a worker thread and must touch only the job's own data; its done()
 * executes later on the loop thread, posted back through an eventfd. Threads start lazily on the
 * first submit, so a supervisor that never needs them stays single-threaded. Children are forked
 * only from the loop thread and exec at once, so worker threads never leak into them.
 */
#ifndef SV_WORKER_H
#define SV_WORKER_H

#include <stdbool.h>

#include "err.h"
#include "loop.h"

#define SV_WORKERS_MAX 8
#define SV_WORKER_STACK ((size_t)256 * 1024)

struct sv_job {
	void (*run)(struct sv_job *job);                       /* worker thread */
	void (*done)(struct sv_loop *loop, struct sv_job *job); /* loop thread */
	struct sv_job *next;                                    /* queue link, owned by the pool */
};

struct sv_workers;

/* Create a pool of at most @nthreads threads (1..SV_WORKERS_MAX) attached to @loop. */
int sv_workers_new(struct sv_loop *loop, unsigned nthreads, struct sv_workers **out,
		   struct sv_err *err);

/* Queue @job (borrowed until its done() has run). Returns 0 or -errno (-EAGAIN when no thread
 * could be started: the caller may retry later; nothing is queued then). */
int sv_workers_submit(struct sv_workers *w, struct sv_job *job);

/* Number of jobs queued or running, for logs and back-pressure. */
unsigned sv_workers_pending(const struct sv_workers *w);

/* Stop the threads after the jobs already queued have run, and keep the pool: the next submit
 * starts threads afresh, and completions are still delivered on the loop. For a process about
 * to change per-thread state (capabilities) that threads started later must inherit. */
void sv_workers_park(struct sv_workers *w);
/* Stop the threads after the jobs already queued have run; completions still pending are
 * delivered before this returns. */
void sv_workers_free(struct sv_workers *w);

#endif
