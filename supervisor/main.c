/* Entry point: block signals, parse options, resolve the main process, run it as PID 1.
 *
 * This is the setup phase: a failure here ends the process with one clear error line and a
 * documented status (1 setup, 2 usage). Signals are blocked before anything else happens, so
 * none is lost before the event loop exists.
 */
#include <limits.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/netns.h"
#include "netns/proxy/l7/px_cred.h"
#include "netns/proxy/l7/px_tls.h"
#include "netns/proxy/px_creator.h"
#include "netns/proxy/px_ident.h"
#include "netns/proxy/px_upstream.h"
#include "session/session.h"
#include "cli.h"
#include "copyself.h"
#include "env.h"
#include "log.h"
#include "run.h"
#include "sandbox.h"
#include "supervisor/isolation/caps.h"
#include "supervisor/isolation/connmon.h"
#include "supervisor/isolation/seccomp.h"
#include "supervisor/selftest/selftest.h"
#include "spawn.h"
#include "spec.h"

#ifndef SV_VERSION
#define SV_VERSION "0.0.0-dev"
#endif

#define COMP "supervisor"
#define SV_EXIT_SETUP 1

extern char **environ;

static const char *env_get(const char *name)
{
	return getenv(name);
}

static void warn_unsupported(const struct sv_cli *cli)
{
	for (size_t i = 0; i < cli->nunsupported; i++)
		sv_log_kv(SV_LOG_WARN, COMP, "option_unsupported",
			  "unsupported option: its feature is not in this build, so it has no effect",
			  SV_KVS({"option", cli->unsupported[i]}));
	if (cli->ignored_rust_log)
		sv_log_kv(SV_LOG_WARN, COMP, "rust_log_ignored",
			  "RUST_LOG is not a plain level name; using the configured level",
			  SV_KVS({"value", cli->ignored_rust_log}));
}

/* The scratch default is /bin/bash -l; images without bash get /bin/sh -l, said out loud. */
static int apply_default_shell(struct sv_spec *spec)
{
	if (spec->source != SV_SPEC_FROM_DEFAULT || access(spec->argv[0], X_OK) == 0)
		return 0;
	char *sh = strdup("/bin/sh");
	if (!sh)
		return -ENOMEM;
	sv_log_kv(SV_LOG_WARN, COMP, "default_shell_fallback",
		  "image has no /bin/bash; running /bin/sh -l instead",
		  SV_KVS({"argv0", "/bin/sh"}));
	free(spec->argv[0]);
	spec->argv[0] = sh;
	return 0;
}

static int absolute_workdir(const char *workdir, char *buf, size_t size, struct sv_err *err)
{
	if (strcmp(workdir, ".") == 0) {
		if (!getcwd(buf, size))
			return sv_err_set(err, errno, "cannot find the current directory: %s",
					  strerror(errno));
		return 0;
	}
	if (workdir[0] == '/') {
		if (sv_fmt(buf, size, "%s", workdir) >= size - 1)
			return sv_err_set(err, ENAMETOOLONG, "--workdir: path too long");
		return 0;
	}
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return sv_err_set(err, errno, "--workdir: cannot resolve '%s': %s", workdir,
				  strerror(errno));
	if (sv_fmt(buf, size, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, workdir) >= size - 1)
		return sv_err_set(err, ENAMETOOLONG, "--workdir: path too long");
	return 0;
}

/* --upstream-proxy and its options: checked, the credential read, handed to the proxy. */
static int upstream_setup(const struct sv_cli *cli, struct sv_err *err)
{
	const struct px_upstream_args a = {
	    .url = cli->upstream_proxy,
	    .no_proxy = cli->upstream_no_proxy,
	    .auth_file = cli->upstream_auth_file,
	    .auth_allow_insecure = cli->upstream_auth_insecure,
	    .by_hostname = cli->upstream_by_hostname,
	};
	struct px_upstream *u = NULL;
	int r = px_upstream_new(&a, &u, err);
	if (r < 0 || !u)
		return r;
	char d[512];
	px_upstream_describe(u, d, sizeof(d));
	sv_log_kv(SV_LOG_INFO, COMP, "upstream_proxy_configured",
		  "egress goes through an upstream proxy", SV_KVS({"upstream", d}));
	r = px_proxy_set_upstream(u, err);
	px_upstream_free(u);
	return r;
}

/* ---- the gateway as policy source, provider environment, log push --------------------------- */

struct gwp {
	struct gw_client *client;  /* NULL: no gateway; the one connection, backoff and token */
	struct gw_policy_src *src; /* the gateway is the policy source */
	struct pol_policy policy;  /* what gw_config_fetch chose, handed to the sandbox */
	struct px_cred_store *creds; /* provider credentials: the only copy of their values */
	struct gw_denials *denials; /* the proxy's denials, summarised to the gateway */
};

/* Gateway identity set: the one client is made (no connection yet) and the log push starts
 * queueing now (contract §2 step 2). */
static void gwp_init(struct gwp *g, const struct sv_cli *cli)
{
	pol_init(&g->policy);
	if (!cli->endpoint || !*cli->endpoint || !cli->sandbox_id || !*cli->sandbox_id)
		return;
	struct sv_err err = {0};
	if (gw_client_new(cli->endpoint, cli->sandbox_id, &g->client, &err) < 0) {
		sv_warn(COMP, "gateway_client_unavailable", "gateway client: %s", err.msg);
		g->client = NULL;
		return;
	}
	if (gw_logs_install(g->client, &err) < 0)
		sv_warn(COMP, "log_push_unavailable", "log push: %s", err.msg);
	if (gw_denials_new(g->client, cli->sandbox_name, &g->denials, &err) < 0)
		sv_warn(COMP, "denial_summaries_unavailable", "denial summaries: %s", err.msg);
}

/* Gateway mode: the policy comes from GetSandboxConfig (contract §3.4). */
static int gwp_policy(struct gwp *g, const struct sv_cli *cli, struct sv_sandbox_opts *sbo,
		      struct sv_err *err)
{
	if (!g->client || !gw_config_wanted(cli->endpoint, cli->sandbox_id, cli->policy_file))
		return 0;
	const struct gw_fetch_opts o = {.sandbox_name = cli->sandbox_name, .root = "/"};
	int r = gw_config_fetch(g->client, &o, &g->policy, &g->src, err);
	if (r < 0)
		return r;
	sbo->policy = &g->policy;
	return 0;
}

static void gwp_provider_env(struct gwp *g, struct sv_env *env)
{
	if (!g->client)
		return;
	g->creds = px_cred_store_new();
	if (!g->creds)
		sv_error(COMP, "provider_env_failed", "out of memory: no provider environment");
	else
		gw_provider_env(g->client, env, g->creds);
}

static void gwp_set_policy(void *ctx, const struct pol_policy *policy)
{
	px_proxy_set_policy(ctx, policy);
}

/* A proxy denial (netns.h) for the summaries (session.h): the same fields. */
static void gwp_denial(const struct px_denial *d, void *ctx)
{
	const struct gw_denial ev = {
	    .host = d->host,
	    .port = d->port,
	    .binary = d->binary,
	    .ancestors = d->ancestors,
	    .n_ancestors = d->n_ancestors,
	    .reason = d->reason,
	    .stage = d->stage,
	    .l7_method = d->l7_method,
	    .l7_path = d->l7_path,
	};
	gw_denials_add(ctx, &ev);
}

/* The client's loop joins the run loop; false when it cannot (nothing of the gateway runs). */
static bool gwp_attach(struct gwp *g, struct sv_loop *loop, struct px_proxy *proxy)
{
	struct sv_err err = {0};
	if (!g->client)
		return false;
	if (gw_client_attach(g->client, loop, &err) < 0) {
		sv_warn(COMP, "gateway_client_unavailable", "gateway client: %s", err.msg);
		return false;
	}
	const struct gw_policy_sink sink = {gwp_set_policy, proxy};
	if (g->src && gw_policy_poll_start(g->src, loop, &sink, &err) < 0)
		sv_warn(COMP, "policy_poll_unavailable", "policy poll: %s", err.msg);
	if (gw_logs_attach(loop, &err) < 0)
		sv_warn(COMP, "log_push_unavailable", "log push: %s", err.msg);
	if (g->denials && gw_denials_attach(g->denials, loop, &err) < 0) {
		sv_warn(COMP, "denial_summaries_unavailable", "denial summaries: %s", err.msg);
		gw_denials_free(g->denials);
		g->denials = NULL;
	}
	if (g->denials)
		px_proxy_set_denial_sink(proxy, gwp_denial, g->denials);
	return true;
}

static void gwp_detach(struct gwp *g)
{
	gw_policy_poll_stop(g->src);
	gw_denials_free(g->denials); /* before the client it calls on */
	g->denials = NULL;
	if (g->client) {
		gw_logs_detach();
		gw_client_detach(g->client);
	}
}

static void gwp_free(struct gwp *g)
{
	gw_policy_src_free(g->src);
	g->src = NULL;
	pol_free(&g->policy);
	px_cred_store_free(g->creds);
	g->creds = NULL;
	gw_denials_free(g->denials);
	g->denials = NULL;
	gw_client_free(g->client);
	g->client = NULL;
}

/* What lives on the event loop besides the main process: the egress proxy and, with a gateway,
 * the supervisor session (docs/gateway.md). */
struct services {
	const struct sv_sandbox *sb;
	int listen_fd;
	struct px_proxy *proxy;
	int gw_plan; /* enum gw_plan */
	struct gw_session_opts gw_opts;
	struct gw_session *gw;
	struct gwp *gwp;
	void (*done)(void *arg); /* services_finish's, kept for the log push after the session */
	void *done_arg;
	int code; /* the sandbox's exit code, for the gateway's exit report */
	int ssh_fd; /* -1: no SSH server (--ssh-socket-path / OPENSHELL_SSH_SOCKET_PATH unset) */
	struct sshd_opts ssh_opts;
	const struct sv_env *env; /* the main process's, final by the time the loop runs */
	struct sshd_server *sshd;
};

static int services_attach(void *ctx, struct sv_loop *loop, struct sv_err *err)
{
	struct services *s = ctx;
	int r = px_proxy_start(loop, s->listen_fd, &s->sb->policy, s->sb->id.uid, &s->proxy, err);
	if (r < 0)
		return r;
	if (s->gwp->creds)
		px_proxy_set_creds(s->proxy, s->gwp->creds);
	bool gateway = gwp_attach(s->gwp, loop, s->proxy);
	if (s->ssh_fd >= 0) {
		int fd = s->ssh_fd;
		s->ssh_fd = -1; /* consumed */
		s->ssh_opts.envp = s->env->vars;
		r = sshd_server_new(loop, fd, &s->ssh_opts, &s->sshd, err);
		if (r < 0)
			return r;
	}
	if (s->gw_plan != GW_PLAN_SESSION || !gateway)
		return 0;
	return gw_session_new(s->gwp->client, &s->gw_opts, &s->gw, err);
}

static bool services_child_reaped(void *ctx, const siginfo_t *si)
{
	struct services *s = ctx;
	return px_proxy_child_exited(s->proxy, si) || sshd_server_child_exited(s->sshd, si);
}

/* The proxy process never keeps the sandbox running (run.h). */
static bool services_is_service_child(void *ctx, pid_t pid)
{
	struct services *s = ctx;
	return px_proxy_is_child(s->proxy, pid);
}

/* The main process's stdio for SSH `openshell-main` attaches (run.h). */
static void services_main_output(void *ctx, int stream, const char *buf, size_t len)
{
	struct services *s = ctx;
	sshd_server_main_output(s->sshd, stream, buf, len);
}

static void services_main_input(void *ctx, int fd, bool tty)
{
	struct services *s = ctx;
	sshd_server_main_input(s->sshd, fd, tty);
}

static void services_main_exit(void *ctx, int code)
{
	struct services *s = ctx;
	sshd_server_main_exited(s->sshd, code);
}

static void services_main_started(void *ctx, pid_t pid)
{
	struct services *s = ctx;
	px_proxy_set_entrypoint(s->proxy, pid);
	sshd_server_main_started(s->sshd, pid);
	if (s->gw)
		gw_session_start(s->gw);
}

/* After the exit report, the last log lines go to the gateway. */
static void services_session_finished(void *ctx)
{
	struct services *s = ctx;
	if (!gw_logs_finish(s->done, s->done_arg))
		s->done(s->done_arg);
}

/* Last: the gateway session reports the exit before the supervisor exits, then the log push
 * sends what is left. */
static bool services_finish_report(struct services *s)
{
	if (s->gw && gw_session_finish(s->gw, s->code, services_session_finished, s))
		return true;
	return gw_logs_finish(s->done, s->done_arg);
}

/* The last denial window has gone (or its time ran out): on to the exit report. */
static void services_denials_sent(void *ctx)
{
	struct services *s = ctx;
	if (!services_finish_report(s))
		s->done(s->done_arg);
}

/* After the SSH exit reports: the last denial summaries, then the exit report. */
static bool services_finish_denials(struct services *s)
{
	px_proxy_drain(s->proxy); /* denials sent just before the agent ended */
	if (gw_denials_finish(s->gwp->denials, services_denials_sent, s))
		return true;
	return services_finish_report(s);
}

static void services_sshd_finished(void *ctx)
{
	struct services *s = ctx;
	if (!services_finish_denials(s))
		s->done(s->done_arg);
}

/* Every process is gone: SSH clients get their sessions' exit reports, the last denial summaries
 * go, the gateway session reports the exit, then the log push sends what is left, before the
 * supervisor exits. */
static bool services_finish(void *ctx, int code, void (*done)(void *), void *done_arg)
{
	struct services *s = ctx;
	s->done = done;
	s->done_arg = done_arg;
	s->code = code;
	if (sshd_server_finish(s->sshd, services_sshd_finished, s))
		return true;
	return services_finish_denials(s);
}

static void services_detach(void *ctx)
{
	struct services *s = ctx;
	gw_session_free(s->gw);
	s->gw = NULL;
	px_proxy_set_denial_sink(s->proxy, NULL, NULL);
	gwp_detach(s->gwp); /* before the proxy it borrows goes */
	px_proxy_free(s->proxy);
	s->proxy = NULL;
	sshd_server_free(s->sshd);
	s->sshd = NULL;
}

/* The SSH server's socket (contract §9): bound during setup, so it listens before the gateway
 * session's hello (§2 step 21); served once the loop runs. Its children share the main process's
 * isolation and environment. Returns 0 (also when OPENSHELL_SSH_SOCKET_PATH is unset) or -errno. */
static int ssh_setup(struct services *s, const char *path, const struct sv_env *env,
		     const char *workdir, struct sv_err *err)
{
	s->ssh_fd = -1;
	if (!path || !*path)
		return 0;
	int fd = sshd_listen(path, err);
	if (fd < 0)
		return fd;
	s->ssh_fd = fd;
	s->env = env;
	s->ssh_opts = (struct sshd_opts){.sandbox = s->sb, .workdir = workdir};
	sv_log_kv(SV_LOG_INFO, COMP, "ssh_listening", "ssh server listening",
		  SV_KVS({"socket", path}));
	return 0;
}

/* The capabilities kept for the run phase, by name. */
static void log_kept_caps(void)
{
	size_t n, len = 0;
	const struct sv_caps_kept *k = sv_caps_kept_table(&n);
	char list[512], name[64];
	list[0] = '\0';
	for (size_t i = 0; i < n && len < sizeof(list); i++)
		len += sv_fmt(list + len, sizeof(list) - len, "%s%s", i ? "," : "",
			      sv_caps_name(k[i].cap, name, sizeof(name)));
	sv_log_kv(SV_LOG_INFO, COMP, "caps_dropped", "capabilities dropped for the run phase",
		  SV_KVS({"kept", list}));
}

/* The proxy listens inside the agent's namespace before the agent exists (contract §2). */
static int proxy_listen(const struct sv_sandbox *sb, struct sv_env *env, struct sv_err *err)
{
	int fd = nns_listen_tcp(&sb->netns, NNS_PROXY_ADDR, NNS_PROXY_PORT, SOMAXCONN, err);
	if (fd < 0)
		return fd;
	size_t n;
	const struct nns_env_var *vars = nns_proxy_env(&n);
	for (size_t i = 0; i < n; i++) {
		int r = sv_env_set(env, vars[i].name, vars[i].value);
		if (r < 0) {
			close(fd);
			return sv_err_set(err, r, "proxy environment: out of memory");
		}
	}
	/* The sandbox CA (thread started in run_sandbox) and its trust-store variables; a
	 * failure is a HIGH finding and no variables, never a stop (l7 contract §1.2). */
	(void)px_tls_boot_finish(env);
	sv_log_kv(SV_LOG_INFO, COMP, "proxy_listening", "egress proxy listening",
		  SV_KVS({"address", NNS_PROXY_URL}));
	return fd;
}

static int run_sandbox(const struct sv_cli *cli, struct gwp *gwp)
{
	/* The sandbox CA is made on a thread while the sandbox is prepared (l7 contract §1.2);
	 * proxy_listen joins it. Only its directory is made here, for the policy baseline. */
	(void)px_tls_boot_start();
	/* Both seccomp programs are compiled on a thread too, joined where each is first used
	 * (sv_sandbox_prepare, the prelude below), before the capability drop. */
	sv_seccomp_early_start(SV_SECCOMP_NOTIFY_CONNECT); /* the usual case: see sbo below */
	struct sv_err err = {0};
	struct sv_spec spec = {0};
	int r = sv_spec_resolve(cli->args, cli->nargs, cli->interactive, getenv(SV_SPEC_ENV),
				getenv(SV_SPEC_LEGACY_ENV), &spec, &err);
	if (r < 0) {
		sv_error(COMP, "main_process_spec_invalid", "%s", err.msg);
		return SV_EXIT_SETUP;
	}
	if (apply_default_shell(&spec) < 0) {
		sv_spec_free(&spec);
		return SV_EXIT_SETUP;
	}

	/* Without --workdir the child keeps the directory we were started in; we leave it. */
	char workdir[PATH_MAX];
	if (absolute_workdir(cli->workdir ? cli->workdir : ".", workdir, sizeof(workdir), &err) <
	    0) {
		sv_error(COMP, "workdir_invalid", "%s", err.msg);
		sv_spec_free(&spec);
		return SV_EXIT_SETUP;
	}

	/* The gateway's setup errors (a malformed endpoint, https without its TLS files) stop the
	 * sandbox before anything is built or started. */
	const struct gw_session_opts gw_opts = {
		.endpoint = cli->endpoint,
		.sandbox_id = cli->sandbox_id,
		.ssh_socket_path = cli->ssh_socket_path,
		.exit_report_timeout_ms = cli->exit_report_timeout_s * 1000,
	};
	int gw_plan = gw_session_plan(&gw_opts, &err);
	if (gw_plan < 0) {
		sv_error(COMP, "gateway_setup_failed", "%s", err.msg);
		sv_spec_free(&spec);
		return SV_EXIT_SETUP;
	}

	/* Isolation is prepared before anything runs: a policy, identity, Landlock or seccomp
	 * problem stops the sandbox here, with nothing started. */
	/* The test-only variable can only take the monitor away (then every request is denied). */
	const char *cm_off = getenv(SV_CONNMON_TEST_OFF_ENV);
	struct sv_sandbox_opts sbo = {.policy_file = cli->policy_file,
				      .workdir = workdir,
				      .notify_connect = sv_connmon_supported() &&
							!(cm_off && strcmp(cm_off, "1") == 0)};
	px_creator_set_monitored(sbo.notify_connect);
	if (!sbo.notify_connect)
		sv_log_ocsf("FINDING:OPEN", SV_SEV_HIGH, "DEGRADED", "connect_monitor_unavailable",
			    "seccomp user notification is not available (Linux 5.5+): the proxy "
			    "cannot learn who made a connection and denies every request",
			    NULL, 0);
	if (gwp_policy(gwp, cli, &sbo, &err) < 0) {
		sv_error(COMP, "gateway_policy_failed", "%s", err.msg);
		sv_spec_free(&spec);
		return SV_EXIT_SETUP;
	}
	struct sv_sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb || sv_sandbox_prepare(sb, &sbo, &err) < 0) {
		sv_error(COMP, "sandbox_setup_failed", "%s", sb ? err.msg : "out of memory");
		if (sb)
			sv_sandbox_free(sb);
		free(sb);
		sv_spec_free(&spec);
		return SV_EXIT_SETUP;
	}

	/* Agents run chrooted in the mount fence: the proxy reads their executables from outside. */
	px_ident_set_root_prefix(sb->fence.root_seen);

	struct sv_env env;
	const struct sv_env_identity ident = {sb->id.home, sb->id.user, sb->id.shell};
	if (sv_env_build_main(&env, environ, spec.tty, &ident, &err) < 0) {
		sv_error(COMP, "environment_failed", "%s", err.msg);
		sv_sandbox_free(sb);
		free(sb);
		sv_spec_free(&spec);
		return SV_EXIT_SETUP;
	}
	gwp_provider_env(gwp, &env);

	struct services services = {.sb = sb,
				    .listen_fd = proxy_listen(sb, &env, &err),
				    .ssh_fd = -1,
				    .gwp = gwp,
				    .gw_plan = gw_plan,
				    .gw_opts = gw_opts};
	services.gw_opts.netns = &sb->netns; /* TCP relays are dialed inside it */
	if (services.listen_fd >= 0 &&
	    ssh_setup(&services, cli->ssh_socket_path, &env, workdir, &err) < 0) {
		sv_error(COMP, "ssh_listen_failed", "ssh server: %s", err.msg);
		close(services.listen_fd);
		sv_env_free(&env);
		sv_sandbox_free(sb);
		free(sb);
		sv_spec_free(&spec);
		return SV_EXIT_SETUP;
	}
	if (services.listen_fd < 0) {
		sv_error(COMP, "proxy_listen_failed", "egress proxy: %s", err.msg);
		sv_env_free(&env);
		sv_sandbox_free(sb);
		free(sb);
		sv_spec_free(&spec);
		return SV_EXIT_SETUP;
	}

	/* The proxy process is our own executable re-executed: opened once, now. The upstream
	 * proxy options (contract §1.2): any present-but-invalid value is fatal. */
	if (px_proxy_prepare(&err) < 0 || upstream_setup(cli, &err) < 0) {
		sv_error(COMP, "proxy_prepare_failed", "egress proxy: %s", err.msg);
		close(services.listen_fd);
		sv_env_free(&env);
		sv_sandbox_free(sb);
		free(sb);
		sv_spec_free(&spec);
		return SV_EXIT_SETUP;
	}

	/* The supervisor's own seccomp prelude (contract §5.2): from here on it cannot mount, load
	 * modules or BPF programs, even if the agent found a way to drive it. */
	if (sv_seccomp_apply_supervisor_prelude(&err) < 0) {
		sv_error(COMP, "seccomp_prelude_failed", "supervisor seccomp prelude: %s", err.msg);
		close(services.listen_fd);
		sv_env_free(&env);
		sv_sandbox_free(sb);
		free(sb);
		sv_spec_free(&spec);
		return SV_EXIT_SETUP;
	}
	sv_info(COMP, "seccomp_prelude_applied", "supervisor seccomp prelude installed");

	/* Least privilege for PID 1 itself (docs/security.md): before the loop starts any thread,
	 * every capability the run phase does not use goes, from all five sets. The gateway
	 * client's resolver thread from the setup-phase calls is stopped first. */
	gw_client_park(gwp->client);
	if (sv_caps_drop_after_setup(getenv(SV_CAPS_TEST_DROP_ENV), &err) < 0) {
		sv_error(COMP, "caps_drop_failed", "cannot drop the supervisor's capabilities: %s",
			 err.msg);
		close(services.listen_fd);
		sv_env_free(&env);
		sv_sandbox_free(sb);
		free(sb);
		sv_spec_free(&spec);
		return SV_EXIT_SETUP;
	}
	log_kept_caps();
	/* After the drop (the thread inherits the kept set), before the first child. */
	if (sbo.notify_connect) {
		if (sv_connmon_start(&err) < 0) {
			sv_error(COMP, "connmon_failed", "%s", err.msg);
			close(services.listen_fd);
			sv_env_free(&env);
			sv_sandbox_free(sb);
			free(sb);
			sv_spec_free(&spec);
			return SV_EXIT_SETUP;
		}
		sv_spawn_set_fd_sink(sv_connmon_add);
	}

	sv_log_kv(SV_LOG_INFO, COMP, "sandbox_starting", "Starting sandbox",
		  SV_KVS({"version", SV_VERSION}, {"source", sv_spec_source_name(spec.source)}));
	/* Do not pin whatever directory we were started in (it may be a mount). */
	if (chdir("/") < 0)
		sv_debug(COMP, "chdir_root_failed", "chdir /: %s", strerror(errno));

	struct sv_run_opts opts = {
		.spec = &spec,
		.envp = env.vars,
		.workdir = workdir,
		.timeout_ms = cli->timeout_s * 1000,
		.grace_ms = cli->grace_ms,
		.hook = sv_sandbox_child_hook,
		.hook_ctx = sb,
		.attach = services_attach,
		.main_started = services_main_started,
		.detach = services_detach,
		.finish = services_finish,
		.child_reaped = services_child_reaped,
		.is_service_child = services_is_service_child,
		.main_output = services_main_output,
		.main_input = services_main_input,
		.main_exit = services_main_exit,
		.services_ctx = &services,
	};
	int code = sv_run_main(&opts, &err);
	if (code < 0) {
		sv_error(COMP, "main_process_spawn_failed", "cannot start the main process: %s",
			 err.msg);
		code = SV_EXIT_SETUP;
	}
	close(services.listen_fd);
	if (services.ssh_fd >= 0)
		close(services.ssh_fd);
	sv_env_free(&env);
	sv_sandbox_free(sb);
	free(sb);
	sv_spec_free(&spec);
	return code;
}

int main(int argc, char **argv)
{
	/* The proxy process (netns.h): PID 1 re-executes us with this internal first argument. */
	if (argc >= 2 && strcmp(argv[1], "__proxy") == 0)
		return px_child_main(argc, argv);
	sv_signals_block_all();
	sv_spawn_raise_nofile();

	struct sv_cli cli;
	struct sv_err err = {0};
	if (sv_cli_parse(argc, argv, env_get, &cli, &err) < 0) {
		char line[SV_ERR_MSG_MAX + 64];
		size_t n = sv_fmt(line, sizeof(line),
				  "openshell-sandbox: %s\nTry 'openshell-sandbox --help'.\n", err.msg);
		(void)sv_write_all(STDERR_FILENO, line, n);
		return SV_EXIT_USAGE;
	}
	sv_log_setup(cli.log_level, cli.log_format);

	switch (cli.cmd) {
	case SV_CMD_HELP:
		sv_cli_usage(STDOUT_FILENO);
		return 0;
	case SV_CMD_VERSION: {
		static const char v[] = "openshell-sandbox " SV_VERSION "\n";
		return sv_write_all(STDOUT_FILENO, v, sizeof(v) - 1) < 0 ? SV_EXIT_SETUP : 0;
	}
	case SV_CMD_COPY_SELF:
		if (sv_copy_self(cli.copy_dest, &err) < 0) {
			sv_error(COMP, "copy_self_failed", "copy-self: %s", err.msg);
			return SV_EXIT_SETUP;
		}
		sv_log_kv(SV_LOG_INFO, COMP, "copy_self_done", "installed",
			  SV_KVS({"dest", cli.copy_dest}));
		return 0;
	case SV_CMD_SELF_TEST:
		return sv_selftest_run(cli.self_test_json);
	case SV_CMD_RUN:
	default:
		break;
	}
	/* Contract §2 step 2: the daily file, best effort. */
	if (sv_log_files_open(SV_LOG_DIR, SV_LOG_FILE_MAX, &err) < 0)
		sv_log_kv(SV_LOG_WARN, COMP, "log_file_unavailable",
			  "cannot open the daily log file: logging to stderr only",
			  SV_KVS({"error", err.msg}));
	warn_unsupported(&cli);
	struct gwp gwp = {0};
	gwp_init(&gwp, &cli);
	int code = run_sandbox(&cli, &gwp);
	gwp_free(&gwp);
	return code;
}
