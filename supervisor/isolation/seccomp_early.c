/* Start-up: the agent filter and the supervisor prelude compiled on a thread while PID 1 waits
 * for its fence helper and builds the network namespace (issue 16, start-up goal).
 *
 * Same programs as sv_seccomp_build_agent(.., opts, ..) and sv_seccomp_build_prelude (an agent
 * filter asked with other options than the thread guessed is built again inline); the thread
 * only runs libseccomp, touches nothing else, and is always joined before either is used, so
 * the capability drop (which needs a single thread) never sees it.
 */
#include "supervisor/isolation/seccomp.h"

#include <pthread.h>
#include <string.h>

static struct {
	pthread_t thread;
	bool started, joined, agent_taken, prelude_taken;
	unsigned int agent_opts;
	int agent_r, prelude_r;
	struct sv_seccomp_prog agent, prelude;
	struct sv_err agent_err, prelude_err;
} early;

static void *early_main(void *arg)
{
	(void)arg;
	early.agent_r = sv_seccomp_build_agent(&early.agent, early.agent_opts, &early.agent_err);
	early.prelude_r = sv_seccomp_build_prelude(&early.prelude, &early.prelude_err);
	return NULL;
}

void sv_seccomp_early_start(unsigned int agent_opts)
{
	if (early.started)
		return;
	memset(&early, 0, sizeof(early));
	early.agent_opts = agent_opts;
	/* The thread inherits our signal mask (all blocked in setup). No thread: built inline. */
	early.started = pthread_create(&early.thread, NULL, early_main, NULL) == 0;
}

static void early_join(void)
{
	if (early.started && !early.joined) {
		pthread_join(early.thread, NULL);
		early.joined = true;
	}
}

/* Hand over a program the thread made (moved into @out), or build it here. */
static int early_take(struct sv_seccomp_prog *mine, int r, const struct sv_err *merr,
		      struct sv_seccomp_prog *out, struct sv_err *err)
{
	if (r < 0) {
		sv_seccomp_prog_free(mine);
		if (err)
			*err = *merr;
		return r;
	}
	*out = *mine;
	memset(mine, 0, sizeof(*mine));
	return 0;
}

int sv_seccomp_early_agent(struct sv_seccomp_prog *out, unsigned int opts, struct sv_err *err)
{
	early_join();
	if (early.started && !early.agent_taken && opts != early.agent_opts) {
		early.agent_taken = true;
		sv_seccomp_prog_free(&early.agent);
	}
	if (!early.started || early.agent_taken)
		return sv_seccomp_build_agent(out, opts, err);
	early.agent_taken = true;
	return early_take(&early.agent, early.agent_r, &early.agent_err, out, err);
}

int sv_seccomp_early_prelude(struct sv_seccomp_prog *out, struct sv_err *err)
{
	early_join();
	if (!early.started || early.prelude_taken)
		return sv_seccomp_build_prelude(out, err);
	early.prelude_taken = true;
	return early_take(&early.prelude, early.prelude_r, &early.prelude_err, out, err);
}
