/* The gateway session (contract §10): what supervisor/main.c sees of session/.
 *
 * With an endpoint, a sandbox id and an SSH socket path the supervisor registers with
 * OpenShell's gateway over ConnectSupervisor, keeps the session alive, serves relays into the
 * sandbox and reports the main process's exit. Without an endpoint nothing here runs and the
 * supervisor is the standalone PID 1 it always was. Everything lives on the supervisor's loop.
 * The blocks below: the session itself, the gateway as policy source with provider environment
 * and log push, and the SSH server (docs/ssh.md) that SSH relays reach.
 */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "supervisor/env.h"
#include "supervisor/err.h"
#include "supervisor/log.h"
#include "supervisor/loop.h"
#include "supervisor/policy/policy.h"

struct nns;
struct gw_session;


/* Where each value comes from: --openshell-endpoint / OPENSHELL_ENDPOINT, --sandbox-id /
 * OPENSHELL_SANDBOX_ID, --ssh-socket-path / OPENSHELL_SSH_SOCKET_PATH (all borrowed for the
 * session's life; NULL or "" = unset). The token and TLS variables (OPENSHELL_SANDBOX_TOKEN,
 * _TOKEN_FILE, OPENSHELL_K8S_SA_TOKEN_FILE, OPENSHELL_TLS_CA, _CERT, _KEY,
 * OPENSHELL_GATEWAY_TLS_SERVER_NAME) are read from the environment. */
struct gw_session_opts {
	const char *endpoint;
	const char *sandbox_id;
	const char *ssh_socket_path;
	const struct nns *netns; /* borrowed: the agent's namespace, where TCP relays are dialed */
	uint64_t exit_report_timeout_ms;
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

/* --- the one gateway client ------------------------------------------------------------------
 *
 * One per supervisor with an endpoint and a sandbox id: it owns the only HTTP/2 connection to
 * the gateway (h2c or mTLS), its reconnect backoff (1 s doubling to 30 s, 20 % jitter, reset
 * after 5 s up) and the bearer token (OPENSHELL_SANDBOX_TOKEN, _TOKEN_FILE, or the Kubernetes
 * SA token exchanged once through IssueSandboxToken and renewed with RefreshSandboxToken). The
 * setup-phase calls (GetSandboxConfig, GetSandboxProviderEnvironment, the exchange) run its own
 * loop until they finish and leave the connection open; gw_client_attach then nests that loop
 * in the run loop, and the session, the relays, the policy poll and the log push all use that
 * same connection. Only the exit report opens its own. */
struct gw_client;

/* Setup phase: nothing is sent yet. @endpoint and @sandbox_id are copied. The token variables
 * are read now (token_missing / token_invalid / token_unavailable are logged here). Returns 0
 * and *@out (owned: gw_client_free) or -errno. */
int gw_client_new(const char *endpoint, const char *sandbox_id, struct gw_client **out,
		  struct sv_err *err);
/* Run phase: the client's loop is dispatched from @loop from now on (until gw_client_detach). */
int gw_client_attach(struct gw_client *c, struct sv_loop *loop, struct sv_err *err);
void gw_client_detach(struct gw_client *c);
/* Close the connection and free (after everything using it). NULL is a no-op. */
void gw_client_free(struct gw_client *c);
/* End of setup: stop the client's worker threads (name resolution) once their jobs are done;
 * the next lookup starts a fresh one. PID 1 drops capabilities per thread after this. */
void gw_client_park(struct gw_client *c);

/* Create the session on @c (borrowed, must outlive it; nothing is sent yet). @opts is copied;
 * its strings are borrowed. Returns 0 and *@out (owned: gw_session_free) or -errno. */
int gw_session_new(struct gw_client *c, const struct gw_session_opts *opts,
		   struct gw_session **out, struct sv_err *err);

/* The main process runs: connect, Hello, heartbeats, relays; reconnect with backoff. */
void gw_session_start(struct gw_session *s);

/* Every process has exited with @code: end the session (open relays are cut), then report
 * ReportMainProcessExit{sandbox_id, instance_id, @code}, retried with backoff for at most the
 * exit report timeout. Returns true when that work is pending: @done(@done_arg) is then called
 * exactly once, later, from a loop callback. Returns false when there is nothing to do (the
 * session never started). */
bool gw_session_finish(struct gw_session *s, int code, void (*done)(void *arg), void *done_arg);

/* Stop everything now (no callbacks after) and free. NULL is a no-op. */
void gw_session_free(struct gw_session *s);

/* --- the gateway as policy source, provider environment, log push ----------------------------- */


/* Contract §2 step 5 / §10: the startup fetch's attempts and the sleeps between them. */
#define GW_CONFIG_ATTEMPTS	 5
#define GW_CONFIG_POLL_DEFAULT_S 10 /* OPENSHELL_POLICY_POLL_INTERVAL_SECS */
#define GW_POLICY_POLL_ENV	 "OPENSHELL_POLICY_POLL_INTERVAL_SECS"

/* Gateway mode for the policy: endpoint and sandbox id set, no --policy/OPENSHELL_POLICY_FILE. */
bool gw_config_wanted(const char *endpoint, const char *sandbox_id, const char *policy_file);

struct gw_policy_src;

/* What gw_config_fetch needs besides the client. */
struct gw_fetch_opts {
	const char *sandbox_name; /* OPENSHELL_SANDBOX / --sandbox: the UpdateConfig name */
	const char *root;	  /* baseline and binary paths are looked up here; NULL = "/" */
};

/* Setup phase, before the main process, on @c's connection: GetSandboxConfig (5 attempts,
 * sleeping 1, 2, 4, 4 s after transport failures), then the policy in force into @out (empty on
 * entry): the gateway's if valid (status LOADED queued; when baseline enrichment changes it, it
 * is synced back with UpdateConfig and re-fetched, best effort), the restrictive default if it
 * is invalid (status FAILED queued with the message). When the gateway has none, the image's
 * policy (file mode's discovery, or the restrictive default) is enriched, synced with
 * UpdateConfig{name: @o->sandbox_name} and re-fetched; no name, or a sync that fails after the
 * retries, is an error. Binary symlinks are resolved under @o->root (pol_resolve_binaries) and
 * the response's settings taken (gw_agent_proposals_enabled, the OCSF JSONL file). Returns 0 and
 * *@src (owned: gw_policy_src_free) or -errno with @err saying why: the caller exits 1. @o may be
 * NULL (no name, the real root). */
int gw_config_fetch(struct gw_client *c, const struct gw_fetch_opts *o, struct pol_policy *out,
		    struct gw_policy_src **src, struct sv_err *err);

/* The setting agent_policy_proposals_enabled as last read from the gateway (false until then
 * and without a gateway). Any thread. */
bool gw_agent_proposals_enabled(void);

/* Run phase: poll GetSandboxConfig every OPENSHELL_POLICY_POLL_INTERVAL_SECS on @loop (the client
 * attached to it: the calls share its connection), send the queued statuses, and hand changed
 * network rules to @sink (copied; called on the loop until gw_policy_poll_stop) for new
 * connections. Each response's settings are taken when its config_revision changed (the OCSF
 * JSONL file, gw_agent_proposals_enabled). Never fails the sandbox: problems are logged. */
struct gw_policy_sink {
	void (*set)(void *ctx, const struct pol_policy *policy); /* NULL policy: deny all */
	void *ctx;
};
int gw_policy_poll_start(struct gw_policy_src *src, struct sv_loop *loop,
			 const struct gw_policy_sink *sink, struct sv_err *err);
/* Stop polling (no more calls to the proxy); @src stays valid. */
void gw_policy_poll_stop(struct gw_policy_src *src);
void gw_policy_src_free(struct gw_policy_src *src);

/* Setup phase, on @c's connection: GetSandboxProviderEnvironment (supports_static_credential_bindings
 * false until the relay enforces bindings) into @store (borrowed; see netns/proxy/l7/px_cred.h)
 * and each variable into @env as its placeholder, never its value (docs/credentials.md).
 * Values are never logged; names that the agent must never get (the secrets strip list) or
 * that are not valid names are skipped. On any failure the agent starts without provider
 * variables and the failure is logged. Returns the number of variables set. */
struct px_cred_store;
int gw_provider_env(struct gw_client *c, struct sv_env *env, struct px_cred_store *store);

/* Log push (PushSandboxLogs). gw_logs_install queues the supervisor's own records at
 * OPENSHELL_LOG_PUSH_LEVEL (info) and above from now on (OCSF lines as level "OCSF"), in a
 * bounded queue whose drops are counted; gw_logs_attach starts sending them on @loop in batches
 * of at most 50 lines or every 500 ms; gw_logs_detach flushes what it can and stops. An
 * Unauthenticated answer disables the push for good. */
#define GW_LOG_PUSH_ENV "OPENSHELL_LOG_PUSH_LEVEL"
int gw_logs_install(struct gw_client *c, struct sv_err *err);
int gw_logs_attach(struct sv_loop *loop, struct sv_err *err);
/* Every process has exited: send what is queued, half-close the stream, and call @done(@arg)
 * once from a loop callback when the gateway answered or after 2 s. Returns false (and never
 * calls @done) when there is nothing to send. */
bool gw_logs_finish(void (*done)(void *arg), void *arg);
void gw_logs_detach(void);

/* Denial summaries (contract §8 "Denial event", §10 SubmitPolicyAnalysis, docs/gateway.md):
 * the proxy's denials, aggregated per (host, port, binary) in a table of at most
 * GW_DENIALS_MAX entries (further keys in the same window are dropped and counted), sent every
 * OPENSHELL_DENIAL_FLUSH_INTERVAL_SECS (10) as SubmitPolicyAnalysis{name, summaries,
 * mechanistic proposals, analysis_mode "mechanistic"} on the client's connection. A window
 * that cannot be sent (connection down, a call still in flight past its deadline, an error) is
 * dropped and counted: denials are never queued without limit, and nothing here blocks. */
#define GW_DENIAL_FLUSH_ENV	  "OPENSHELL_DENIAL_FLUSH_INTERVAL_SECS"
#define GW_DENIAL_FLUSH_DEFAULT_S 10
#define GW_DENIALS_MAX		  256

/* One denial (borrowed for the call). */
struct gw_denial {
	const char *host;
	uint16_t port;
	const char *binary; /* "" when unknown */
	const char *const *ancestors;
	size_t n_ancestors;
	const char *reason;
	const char *stage;		 /* connect | forward | ssrf | l7 */
	const char *l7_method, *l7_path; /* both or neither */
};

struct gw_denials;
/* @name: the sandbox name (--sandbox / OPENSHELL_SANDBOX), or the id when unset (copied). */
int gw_denials_new(struct gw_client *c, const char *name, struct gw_denials **out,
		   struct sv_err *err);
/* Run phase: the flush timer on @loop (the client attached to it). */
int gw_denials_attach(struct gw_denials *d, struct sv_loop *loop, struct sv_err *err);
/* Loop thread. NULL @d is a no-op. */
void gw_denials_add(struct gw_denials *d, const struct gw_denial *ev);
/* Every process has exited: send the window so far now (the timer stops) and call
 * @done(@arg) once that call has an answer, or after at most 2 s. Returns true when @done will
 * be called (later, from a loop callback), false when there was nothing to send. */
bool gw_denials_finish(struct gw_denials *d, void (*done)(void *arg), void *arg);
/* Totals since start, for logs and tests. */
struct gw_denials_stats {
	uint64_t received, flushed_summaries, dropped, calls_ok, calls_failed;
};
void gw_denials_stats(const struct gw_denials *d, struct gw_denials_stats *out);
/* Stop (a call in flight is cancelled) and free. NULL is a no-op. */
void gw_denials_free(struct gw_denials *d);

/* --- SSH server (contract §9, docs/ssh.md) ---------------------------------------------------- */

#define SSHD_SOCKET_ENV "OPENSHELL_SSH_SOCKET_PATH"

struct sshd_server;
struct sv_sandbox;

struct sshd_opts {
	const struct sv_sandbox *sandbox; /* borrowed: the main process's isolation (spawn hook) */
	char *const *envp;                /* borrowed: the main process's environment */
	const char *workdir;              /* borrowed: children start here */
};

/* Setup phase: the listening socket at @path (OPENSHELL_SSH_SOCKET_PATH; "@name" is the abstract
 * socket "\0name"). For a filesystem path the parent directory is created and set to 0700, a
 * stale socket replaced (anything else there is an error) and the socket made 0600. Returns the
 * fd (O_CLOEXEC, non-blocking, owned by the caller) or -errno with @err naming the step. */
int sshd_listen(const char *path, struct sv_err *err);

/* Serve SSH on @listen_fd (consumed, also on failure) from @loop with a fresh Ed25519 host key
 * that never leaves memory. @opts is copied; what it points to is borrowed until
 * sshd_server_free. */
int sshd_server_new(struct sv_loop *loop, int listen_fd, const struct sshd_opts *opts,
		    struct sshd_server **out, struct sv_err *err);

/* A child was reaped (waitid in run.c): returns true when it was one of the server's, whose
 * status then goes to its channel. */
bool sshd_server_child_exited(struct sshd_server *s, const siginfo_t *si);

/* The main process, for `openshell-main` attaches (run.h's main_* hooks); NULL @s is a no-op
 * (@fd is closed). */
void sshd_server_main_started(struct sshd_server *s, pid_t pid);
void sshd_server_main_input(struct sshd_server *s, int fd, bool tty); /* @fd consumed */
void sshd_server_main_output(struct sshd_server *s, int stream, const char *buf, size_t len);
void sshd_server_main_exited(struct sshd_server *s, int code);

/* Close every connection (children get SIGHUP) and the socket. NULL is a no-op. */
/* The sandbox is ending and every process is gone: returns true and calls @done later once every
 * session channel has sent its exit report and every connection's output is flushed (at most
 * SSHD_FINISH_MS); false when there is nothing to wait for. */
bool sshd_server_finish(struct sshd_server *s, void (*done)(void *), void *arg);
void sshd_server_free(struct sshd_server *s);

#endif
