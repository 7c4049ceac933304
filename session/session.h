/* The gateway session (contract §10): what supervisor/main.c sees of session/.
 *
 * With an endpoint, a sandbox id and an SSH socket path the supervisor registers with
 * OpenShell's gateway over ConnectSupervisor, keeps the session alive, serves relays into the
 * sandbox and reports the main process's exit. Without an endpoint nothing here runs and the
 * supervisor is the standalone PID 1 it always was. Everything lives on the supervisor's loop.
 */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "supervisor/err.h"
#include "supervisor/loop.h"

struct nns;
struct gw_session;

#define GW_EXIT_REPORT_TIMEOUT_DEFAULT_S 300 /* --exit-report-timeout (ours, not OpenShell's) */

/* Where each value comes from: --openshell-endpoint / OPENSHELL_ENDPOINT, --sandbox-id /
 * OPENSHELL_SANDBOX_ID, --ssh-socket-path / OPENSHELL_SSH_SOCKET_PATH (all borrowed for the
 * session's life; NULL or "" = unset). @getenv_fn reads the token and TLS variables
 * (OPENSHELL_SANDBOX_TOKEN, _TOKEN_FILE, OPENSHELL_K8S_SA_TOKEN_FILE, OPENSHELL_TLS_CA, _CERT,
 * _KEY, OPENSHELL_GATEWAY_TLS_SERVER_NAME); the strings it returns must stay valid. */
struct gw_session_opts {
	const char *endpoint;
	const char *sandbox_id;
	const char *ssh_socket_path;
	const struct nns *netns; /* borrowed: the agent's namespace, where TCP relays are dialed */
	uint64_t exit_report_timeout_ms;
	const char *(*getenv_fn)(const char *name);
};

enum gw_plan {
	GW_PLAN_STANDALONE = 0, /* no endpoint: the supervisor runs as it always did */
	GW_PLAN_NO_SESSION,     /* endpoint set, but no sandbox id or no SSH socket path */
	GW_PLAN_SESSION,        /* everything set: the session starts with the main process */
};

/* Setup phase, before anything starts: decide what runs and check what can be checked now.
 * Logs the standalone decision (gateway_standalone) or why the session will not start
 * (gateway_session_not_started) once. Returns an enum gw_plan, or -errno on a setup error:
 * a malformed endpoint, or an https:// endpoint with OPENSHELL_TLS_CA, OPENSHELL_TLS_CERT or
 * OPENSHELL_TLS_KEY unset or unreadable (@err names the variable; exit 1). */
int gw_session_plan(const struct gw_session_opts *opts, struct sv_err *err);

/* Create the session on @loop (nothing is sent yet). @opts is copied; its strings are
 * borrowed. Returns 0 and *@out (owned: gw_session_free) or -errno. */
int gw_session_new(struct sv_loop *loop, const struct gw_session_opts *opts,
		   struct gw_session **out, struct sv_err *err);

/* The main process runs: connect, Hello, heartbeats, relays; reconnect with backoff. */
void gw_session_start(struct gw_session *s);

/* Every process has exited with @code: end the session (open relays are cut), then report
 * ReportMainProcessExit{sandbox_id, instance_id, @code}, retried with backoff for at most the
 * exit report timeout. Returns true when that work is pending: @done(@done_arg) is then called
 * exactly once, later, from a loop callback. Returns false when there is nothing to do (the
 * session never started). */
bool gw_session_finish(struct gw_session *s, int code, void (*done)(void *arg), void *done_arg);

/* The instance id sent in Hello (a UUIDv4 made once per supervisor start). */
const char *gw_session_instance_id(const struct gw_session *s);

/* Stop everything now (no callbacks after) and free. NULL is a no-op. */
void gw_session_free(struct gw_session *s);

#endif
