/* The run phase: PID-1 duties around the main process.
 *
 * Spawns the main process, copies its stdio, forwards signals, reaps every child (orphans
 * included), enforces --timeout and the shutdown grace period, and returns the exit code. Once
 * the main process is running, this code logs and carries on; it never exits early.
 */
#ifndef SV_RUN_H
#define SV_RUN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <sys/types.h>

#include "err.h"
#include "loop.h"
#include "spec.h"

#define SV_EXIT_TIMEOUT 124          /* contract §1.2 --timeout */
#define SV_TIMEOUT_KILL_DELAY_MS 100 /* SIGTERM → SIGKILL on timeout, contract §1.2 */
#define SV_GRACE_DEFAULT_MS 10000
#define SV_DRAIN_MS 2000   /* how long output may trail the last process (contract §6.6) */
#define SV_KILL_SWEEP_MS 100
#define SV_PTY_EOF_QUIET_MS 200 /* PTY output quiet this long before our stdin's EOF is sent */

struct sv_run_opts {
	const struct sv_spec *spec; /* borrowed */
	char *const *envp;          /* borrowed: the main process's environment */
	const char *workdir;        /* borrowed, absolute, or NULL */
	uint64_t timeout_ms;        /* 0: none */
	uint64_t grace_ms;
	/* Isolation applied in the child before exec (see spawn.h). */
	int (*hook)(void *ctx, struct sv_err *err);
	void *hook_ctx;
	/* Services that live on the event loop (the egress proxy now, the gateway session and SSH
	 * server later): attached once the loop exists and before the main process starts, told
	 * its pid, and detached when everything has exited. All optional. */
	int (*attach)(void *ctx, struct sv_loop *loop, struct sv_err *err);
	void (*main_started)(void *ctx, pid_t pid);
	void (*detach)(void *ctx);
	/* Once every process has exited and the output is drained: a service that still needs the
	 * loop (the gateway's exit report) returns true and later calls @done(@done_arg) exactly
	 * once from a loop callback; the supervisor exits after that (reaping and signals keep
	 * working meanwhile). A SIGTERM or SIGINT during that wait ends it at once. @code is the
	 * supervisor's exit status. Optional. */
	bool (*finish)(void *ctx, int code, void (*done)(void *arg), void *done_arg);
	void *services_ctx;
	/* Child ownership (the SSH server's session processes): every reaped child other than the
	 * main process is offered here first (with services_ctx); return true to claim its status.
	 * Optional. */
	bool (*child_reaped)(void *ctx, const siginfo_t *si);
	/* A child that is a service's helper (the proxy process), not a sandbox process: once
	 * only such children remain, the sandbox counts as empty (the service ends them in
	 * detach). Optional. */
	bool (*is_service_child)(void *ctx, pid_t pid);
	/* The main process's stdio for attaches (the SSH server's openshell-main), all optional:
	 * every chunk read from its output as it is relayed (@stream 1 = stdout or the PTY, 2 =
	 * stderr); an fd writing to its input (a dup of its PTY master, or of its stdin pipe when
	 * our own stdin is not forwarded; owned by the callee; -1 when there is none); its exit
	 * code (128+signal when killed). */
	void (*main_output)(void *ctx, int stream, const char *buf, size_t len);
	void (*main_input)(void *ctx, int fd, bool tty);
	void (*main_exit)(void *ctx, int code);
};

/* Returns the supervisor's exit status (the main process's code, 128+signal, or 124), or
 * -errno when the main process could not be started at all (@err says why). */
int sv_run_main(const struct sv_run_opts *opts, struct sv_err *err);

/* Block every asynchronous signal; called first thing in main() so nothing is lost before the
 * loop exists. Synchronous faults (SEGV, BUS, ...) stay deliverable. Also resets inherited
 * SIG_IGN dispositions (an ignored SIGCHLD would make the kernel discard exit statuses). */
void sv_signals_block_all(void);

#endif
