/* Command-line parsing: OpenShell's flags (contract §1.2) plus the supervisor's own.
 *
 * Table driven; flags override their environment variables. Never exits and never logs: the
 * caller decides what an error or an unsupported option means.
 */
#include "cli.h"

#include <string.h>

#include "run.h"

enum opt_id {
	OPT_WORKDIR,
	OPT_TIMEOUT,
	OPT_INTERACTIVE,
	OPT_SANDBOX_ID,
	OPT_SANDBOX,
	OPT_ENDPOINT,
	OPT_POLICY_RULES,
	OPT_POLICY_DATA,
	OPT_LOG_LEVEL,
	OPT_SSH_SOCKET,
	OPT_INFERENCE_ROUTES,
	OPT_HEALTH_CHECK,
	OPT_HEALTH_PORT,
	OPT_MODE,
	OPT_PROXY_UID,
	OPT_PROXY_GID,
	OPT_SIDECAR_STATE,
	OPT_SIDECAR_TLS,
	OPT_UPSTREAM_PROXY,
	OPT_UPSTREAM_NO_PROXY,
	OPT_UPSTREAM_AUTH_FILE,
	OPT_UPSTREAM_AUTH_INSECURE,
	OPT_UPSTREAM_BY_HOSTNAME,
	OPT_GRACE,
	OPT_LOG_FORMAT,
	OPT_POLICY,
	OPT_EXIT_REPORT_TIMEOUT,
	OPT_VERSION,
	OPT_HELP,
	OPT_SELF_TEST,
	OPT_JSON,
};

struct opt {
	enum opt_id id;
	const char *name; /* long name with its dashes: also what warnings print */
	char short_name;
	bool has_value;
	const char *env;  /* fallback variable, or NULL */
	bool unsupported; /* feature not in this build: warn when used */
};

static const struct opt opts[] = {
	{OPT_WORKDIR, "--workdir", 'w', true, NULL, false},
	{OPT_TIMEOUT, "--timeout", 't', true, NULL, false},
	{OPT_INTERACTIVE, "--interactive", 'i', false, NULL, false},
	{OPT_SANDBOX_ID, "--sandbox-id", 0, true, "OPENSHELL_SANDBOX_ID", false},
	{OPT_SANDBOX, "--sandbox", 0, true, "OPENSHELL_SANDBOX", false},
	{OPT_ENDPOINT, "--openshell-endpoint", 0, true, "OPENSHELL_ENDPOINT", false},
	{OPT_POLICY_RULES, "--policy-rules", 0, true, "OPENSHELL_POLICY_RULES", true},
	{OPT_POLICY_DATA, "--policy-data", 0, true, "OPENSHELL_POLICY_DATA", true},
	{OPT_LOG_LEVEL, "--log-level", 0, true, "OPENSHELL_LOG_LEVEL", false},
	{OPT_SSH_SOCKET, "--ssh-socket-path", 0, true, "OPENSHELL_SSH_SOCKET_PATH", false},
	{OPT_INFERENCE_ROUTES, "--inference-routes", 0, true, "OPENSHELL_INFERENCE_ROUTES", true},
	{OPT_HEALTH_CHECK, "--health-check", 0, false, NULL, true},
	{OPT_HEALTH_PORT, "--health-port", 0, true, NULL, true},
	{OPT_MODE, "--mode", 0, true, NULL, false},
	{OPT_PROXY_UID, "--proxy-uid", 0, true, "OPENSHELL_PROXY_UID", true},
	{OPT_PROXY_GID, "--proxy-gid", 0, true, "OPENSHELL_PROXY_GID", true},
	{OPT_SIDECAR_STATE, "--sidecar-state-dir", 0, true, "OPENSHELL_SIDECAR_STATE_DIR", true},
	{OPT_SIDECAR_TLS, "--sidecar-tls-dir", 0, true, NULL, true},
	{OPT_UPSTREAM_PROXY, "--upstream-proxy", 0, true, NULL, false},
	{OPT_UPSTREAM_NO_PROXY, "--upstream-no-proxy", 0, true, NULL, false},
	{OPT_UPSTREAM_AUTH_FILE, "--upstream-proxy-auth-file", 0, true, NULL, false},
	{OPT_UPSTREAM_AUTH_INSECURE, "--upstream-proxy-auth-allow-insecure", 0, false, NULL, false},
	{OPT_UPSTREAM_BY_HOSTNAME, "--upstream-proxy-connect-by-hostname", 0, false, NULL, false},
	{OPT_GRACE, "--grace-period", 0, true, NULL, false},
	{OPT_LOG_FORMAT, "--log-format", 0, true, NULL, false},
	{OPT_POLICY, "--policy", 0, true, "OPENSHELL_POLICY_FILE", false},
	{OPT_EXIT_REPORT_TIMEOUT, "--exit-report-timeout", 0, true, NULL, false},
	{OPT_VERSION, "--version", 'V', false, NULL, false},
	{OPT_HELP, "--help", 'h', false, NULL, false},
	{OPT_SELF_TEST, "--self-test", 0, false, NULL, false},
	{OPT_JSON, "--json", 0, false, NULL, false},
};

int sv_cli_parse_duration_ms(const char *s, uint64_t *ms)
{
	size_t n = strlen(s);
	unsigned long long v;
	uint64_t scale = 1000;
	char num[32];
	if (n > 2 && strcmp(s + n - 2, "ms") == 0) {
		n -= 2;
		scale = 1;
	} else if (n > 1 && s[n - 1] == 's') {
		n -= 1;
	}
	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	if (sv_parse_uint(num, 0, UINT64_MAX / 1000, &v) < 0)
		return -EINVAL;
	*ms = v * scale;
	return 0;
}

/* --mode: a comma list of network, process, network-init; the last is exclusive. */
static int check_mode(const char *mode, struct sv_err *err)
{
	bool any = false, init = false, other = false;
	const char *p = mode;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 7 && (strncmp(p, "network", 7) == 0 || strncmp(p, "process", 7) == 0))
			other = any = true;
		else if (len == 12 && strncmp(p, "network-init", 12) == 0)
			init = any = true;
		else if (len != 0)
			return sv_err_set(err, EINVAL, "--mode: unknown component '%.*s'", (int)len, p);
		p += len;
		if (*p == ',')
			p++;
	}
	if (!any)
		return sv_err_set(err, EINVAL,
				  "--mode must enable at least one of network, process, network-init");
	if (init && other)
		return sv_err_set(err, EINVAL, "--mode: network-init cannot be combined");
	return 0;
}

static void note_unsupported(struct sv_cli *cli, const char *what)
{
	for (size_t i = 0; i < cli->nunsupported; i++) {
		if (strcmp(cli->unsupported[i], what) == 0)
			return;
	}
	if (cli->nunsupported < SV_CLI_UNSUPPORTED_MAX)
		cli->unsupported[cli->nunsupported++] = what;
}

/* @shown is the option's name as the user gave it (a static string: the flag or the variable). */
static int apply(struct sv_cli *cli, const struct opt *o, const char *v, const char *shown,
		 struct sv_err *err)
{
	uint64_t ms;
	unsigned long long n;
	switch (o->id) {
	case OPT_WORKDIR:
		if (!*v)
			return sv_err_set(err, EINVAL, "%s: must not be empty", shown);
		cli->workdir = v;
		break;
	case OPT_TIMEOUT:
		if (sv_parse_uint(v, 0, UINT32_MAX, &n) < 0)
			return sv_err_set(err, EINVAL, "%s: '%s' is not a number of seconds", shown,
					  v);
		cli->timeout_s = n;
		break;
	case OPT_INTERACTIVE:
		cli->interactive = true;
		break;
	case OPT_EXIT_REPORT_TIMEOUT:
		if (sv_parse_uint(v, 0, UINT32_MAX, &n) < 0)
			return sv_err_set(err, EINVAL, "%s: '%s' is not a number of seconds", shown,
					  v);
		cli->exit_report_timeout_s = n;
		break;
	case OPT_GRACE:
		if (sv_cli_parse_duration_ms(v, &ms) < 0)
			return sv_err_set(err, EINVAL,
					  "%s: '%s' is not a duration (N seconds or Nms)", shown, v);
		cli->grace_ms = ms;
		break;
	case OPT_LOG_LEVEL:
		if (sv_log_level_parse(v, &cli->log_level) < 0)
			return sv_err_set(err, EINVAL,
					  "%s: '%s' is not one of error, warn, info, debug, trace",
					  shown, v);
		break;
	case OPT_LOG_FORMAT:
		if (sv_log_format_parse(v, &cli->log_format) < 0)
			return sv_err_set(err, EINVAL, "%s: '%s' is not text or json", shown, v);
		break;
	case OPT_MODE:
		if (check_mode(v, err) < 0)
			return -EINVAL;
		cli->mode = v;
		if (strcmp(v, "network,process") != 0 && strcmp(v, "process,network") != 0)
			note_unsupported(cli, "--mode");
		break;
	case OPT_HEALTH_PORT:
		if (sv_parse_uint(v, 0, 65535, &n) < 0)
			return sv_err_set(err, EINVAL, "%s: '%s' is not a port", shown, v);
		break;
	case OPT_SANDBOX_ID:
		cli->sandbox_id = v;
		break;
	case OPT_SANDBOX:
		cli->sandbox_name = v;
		break;
	case OPT_ENDPOINT:
		cli->endpoint = v;
		break;
	case OPT_POLICY_RULES:
		cli->policy_rules = v;
		break;
	case OPT_POLICY_DATA:
		cli->policy_data = v;
		break;
	case OPT_SSH_SOCKET:
		cli->ssh_socket_path = v;
		break;
	case OPT_INFERENCE_ROUTES:
		cli->inference_routes = v;
		break;
	case OPT_POLICY:
		cli->policy_file = v;
		break;
	case OPT_UPSTREAM_PROXY:
		cli->upstream_proxy = v;
		break;
	case OPT_UPSTREAM_NO_PROXY:
		cli->upstream_no_proxy = v;
		break;
	case OPT_UPSTREAM_AUTH_FILE:
		cli->upstream_auth_file = v;
		break;
	case OPT_UPSTREAM_AUTH_INSECURE:
		cli->upstream_auth_insecure = true;
		break;
	case OPT_UPSTREAM_BY_HOSTNAME:
		cli->upstream_by_hostname = true;
		break;
	case OPT_VERSION:
		cli->cmd = SV_CMD_VERSION;
		break;
	case OPT_HELP:
		cli->cmd = SV_CMD_HELP;
		break;
	case OPT_SELF_TEST:
		cli->cmd = SV_CMD_SELF_TEST;
		break;
	case OPT_JSON:
		cli->self_test_json = true;
		break;
	default:
		break;
	}
	if (o->unsupported)
		note_unsupported(cli, shown);
	return 0;
}

static const struct opt *find_long(const char *name, size_t len)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(opts); i++) {
		const char *n = opts[i].name + 2;
		if (strlen(n) == len && strncmp(n, name, len) == 0)
			return &opts[i];
	}
	return NULL;
}

static const struct opt *find_short(char c)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(opts); i++) {
		if (opts[i].short_name == c)
			return &opts[i];
	}
	return NULL;
}

static void cli_defaults(struct sv_cli *cli)
{
	memset(cli, 0, sizeof(*cli));
	cli->cmd = SV_CMD_RUN;
	cli->grace_ms = SV_GRACE_DEFAULT_MS;
	cli->exit_report_timeout_s = SV_EXIT_REPORT_TIMEOUT_DEFAULT_S;
	cli->log_level = SV_LOG_WARN;
	cli->log_format = SV_LOG_TEXT;
}

static int apply_env(struct sv_cli *cli, const bool *seen, sv_getenv_fn getenv_fn,
		     struct sv_err *err)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(opts); i++) {
		const struct opt *o = &opts[i];
		if (!o->env || seen[i])
			continue;
		const char *v = getenv_fn(o->env);
		if (!v || !*v)
			continue; /* drivers blank what they do not use */
		int r = apply(cli, o, v, o->env, err);
		if (r < 0)
			return r;
	}
	/* RUST_LOG overrides the level when it is a plain level name. */
	const char *rl = getenv_fn("RUST_LOG");
	if (rl && *rl && sv_log_level_parse(rl, &cli->log_level) < 0)
		cli->ignored_rust_log = rl;
	return 0;
}

int sv_cli_parse(int argc, char *const *argv, sv_getenv_fn getenv_fn, struct sv_cli *cli,
		 struct sv_err *err)
{
	bool seen[SV_ARRAY_SIZE(opts)] = {false};
	cli_defaults(cli);

	if (argc < 1) /* argv[0] missing (execve with an empty argv): no options, no command */
		argc = 1;
	if (argc >= 2 && strcmp(argv[1], "copy-self") == 0) {
		if (argc != 3 || !*argv[2])
			return sv_err_set(err, EINVAL, "usage: copy-self DEST");
		cli->cmd = SV_CMD_COPY_SELF;
		cli->copy_dest = argv[2];
		return 0;
	}

	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		const struct opt *o;
		const char *v = NULL;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break; /* the command starts here (trailing arguments, as clap) */
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			o = find_long(a + 2, len);
			if (!o)
				return sv_err_set(err, EINVAL, "unknown option '%.*s'", (int)(len + 2),
						  a);
			if (eq && !o->has_value)
				return sv_err_set(err, EINVAL, "%s takes no value", o->name);
			if (eq)
				v = eq + 1;
		} else {
			o = find_short(a[1]);
			if (!o)
				return sv_err_set(err, EINVAL, "unknown option '-%c'", a[1]);
			if (a[2] != '\0') {
				if (!o->has_value)
					return sv_err_set(err, EINVAL, "unknown option '%s'", a);
				v = a + 2;
			}
		}
		if (o->has_value && !v) {
			if (i + 1 >= argc)
				return sv_err_set(err, EINVAL, "%s requires a value", o->name);
			v = argv[++i];
		}
		int r = apply(cli, o, v ? v : "", o->name, err);
		if (r < 0)
			return r;
		seen[o - opts] = true;
	}
	cli->args = argv + i;
	cli->nargs = (size_t)(argc - i);
	if (cli->self_test_json && cli->cmd != SV_CMD_SELF_TEST)
		return sv_err_set(err, EINVAL, "--json goes with --self-test");
	return apply_env(cli, seen, getenv_fn, err);
}

void sv_cli_usage(int fd)
{
	static const char text[] =
		"Usage: openshell-sandbox [OPTIONS] [--] [COMMAND]...\n"
		"       openshell-sandbox copy-self DEST\n"
		"\n"
		"Runs COMMAND (or OPENSHELL_MAIN_PROCESS_SPEC, or OPENSHELL_SANDBOX_COMMAND, or\n"
		"/bin/bash -l) as the sandbox's main process, as PID 1 of the container.\n"
		"\n"
		"Options:\n"
		"  -w, --workdir DIR        working directory of the main process\n"
		"  -t, --timeout SECONDS    stop the main process after SECONDS (exit 124)\n"
		"  -i, --interactive        run an explicit COMMAND on a PTY\n"
		"      --grace-period DUR   SIGTERM-to-SIGKILL delay at shutdown (default 10s)\n"
		"      --log-level LEVEL    error, warn (default), info, debug, trace\n"
		"                           [env OPENSHELL_LOG_LEVEL; RUST_LOG overrides]\n"
		"      --log-format FORMAT  text (default) or json\n"
		"      --policy FILE        sandbox policy, YAML or INI [env OPENSHELL_POLICY_FILE;\n"
		"                           default /etc/openshell/policy.yaml, then\n"
		"                           /etc/navigator/policy.yaml, then /etc/openshell/policy.ini]\n"
		"      --self-test [--json] report what isolation this kernel and container allow\n"
		"      --openshell-endpoint URL  gateway (http:// or https:// with mTLS)\n"
		"                           [env OPENSHELL_ENDPOINT]\n"
		"      --sandbox-id ID      this sandbox's id at the gateway [env OPENSHELL_SANDBOX_ID]\n"
		"      --sandbox NAME       this sandbox's name at the gateway [env OPENSHELL_SANDBOX]\n"
		"      --ssh-socket-path P  serve SSH on unix socket P, where gateway relays connect\n"
		"                           (@name: abstract) [env OPENSHELL_SSH_SOCKET_PATH]\n"
		"      --exit-report-timeout SECONDS  give up reporting the exit to the gateway\n"
		"                           after SECONDS (default 300)\n"
		"      --upstream-proxy URL dial egress through this HTTP proxy (http://host:port)\n"
		"      --upstream-no-proxy LIST   destinations dialled directly (a,.b,10.0.0.0/8,c:443)\n"
		"      --upstream-proxy-auth-file F  user:pass sent as Basic Proxy-Authorization\n"
		"                           (needs --upstream-proxy-auth-allow-insecure)\n"
		"      --upstream-proxy-connect-by-hostname  CONNECT by name, not validated IP\n"
		"  -V, --version            print the version and exit\n"
		"  -h, --help               print this help and exit\n"
		"\n"
		"OpenShell options accepted for compatibility (warned about while their feature is\n"
		"not in this build): --policy-rules,\n"
		"--policy-data, --inference-routes, --health-check, --health-port,\n"
		"--mode, --proxy-uid, --proxy-gid, --sidecar-state-dir, --sidecar-tls-dir.\n"
		"\n"
		"Exit status: the main process's, or 128+signal; 124 on timeout; 126/127 when the\n"
		"command cannot be executed or found; 1 on a setup error; 2 on a usage error.\n";
	(void)sv_write_all(fd, text, sizeof(text) - 1);
}
