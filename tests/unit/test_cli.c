/* Unit tests for supervisor/cli.c: OpenShell's flags (contract §1.2), their environment
 * fallbacks (§1.3) and the supervisor's own options.
 *
 * The environment is faked through the getenv callback; tests never read or change the real
 * process environment.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/cli.h"
#include "supervisor/run.h"

/* The fake environment: NULL-terminated pairs {name, value}. */
static const char *const *g_env;

static const char *fake_getenv(const char *name)
{
	for (const char *const *p = g_env; p && p[0]; p += 2) {
		if (strcmp(p[0], name) == 0)
			return p[1];
	}
	return NULL;
}

#define ENV(...)  ((const char *const[]){__VA_ARGS__, NULL})
#define ARGV(...) ((char *const[]){"openshell-sandbox", __VA_ARGS__, NULL})
#define ARGC(...) \
	((int)(sizeof((char *const[]){"openshell-sandbox", __VA_ARGS__}) / sizeof(char *)))

#define PARSE(cli, err, env, ...) \
	(g_env = (env), sv_cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), fake_getenv, cli, err))

static bool has_unsupported(const struct sv_cli *cli, const char *what)
{
	for (size_t i = 0; i < cli->nunsupported; i++) {
		if (cli->unsupported[i] && strcmp(cli->unsupported[i], what) == 0)
			return true;
	}
	return false;
}

/* "a,b,c" of the unsupported list, for failure messages. */
static const char *unsupported_list(const struct sv_cli *cli)
{
	static char buf[1024];
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < cli->nunsupported && n < sizeof(buf); i++)
		n += sv_fmt(buf + n, sizeof(buf) - n, "%s%s", i ? "," : "",
			    cli->unsupported[i] ? cli->unsupported[i] : "(null)");
	return buf;
}

static void assert_usage_error(int r, const struct sv_err *err, const char *want)
{
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_msg(strstr(err->msg, want) != NULL, "got '%s', want '%s'", err->msg, want);
}

START_TEST(no_arguments_gives_defaults)
{
	char *const argv[] = {"openshell-sandbox", NULL};
	struct sv_cli cli;
	struct sv_err err = {0};
	g_env = NULL;
	ck_assert_int_eq(sv_cli_parse(1, argv, fake_getenv, &cli, &err), 0);
	ck_assert_int_eq(cli.cmd, SV_CMD_RUN);
	ck_assert_ptr_null(cli.workdir);
	ck_assert_uint_eq(cli.timeout_s, 0);
	ck_assert_uint_eq(cli.grace_ms, SV_GRACE_DEFAULT_MS);
	ck_assert(!cli.interactive);
	ck_assert_int_eq(cli.log_level, SV_LOG_WARN);
	ck_assert_int_eq(cli.log_format, SV_LOG_TEXT);
	ck_assert_uint_eq(cli.nargs, 0);
	ck_assert_uint_eq(cli.nunsupported, 0);
	ck_assert_ptr_null(cli.ignored_rust_log);
}
END_TEST

START_TEST(workdir_every_form)
{
	static const char *const forms[][2] = {
	    {"--workdir", "/sandbox"},
	    {"-w", "/sandbox"},
	    {"--workdir=/sandbox", NULL},
	    {"-w/sandbox", NULL},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(forms); i++) {
		char *argv[4] = {"openshell-sandbox", (char *)forms[i][0], (char *)forms[i][1],
				 NULL};
		int argc = forms[i][1] ? 3 : 2;
		struct sv_cli cli;
		struct sv_err err = {0};
		g_env = NULL;
		ck_assert_msg(sv_cli_parse(argc, argv, fake_getenv, &cli, &err) == 0, "%s: %s",
			      forms[i][0], err.msg);
		ck_assert_str_eq(cli.workdir, "/sandbox");
		ck_assert_uint_eq(cli.nargs, 0);
	}
}
END_TEST

START_TEST(timeout_every_form)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--timeout", "30"), 0);
	ck_assert_uint_eq(cli.timeout_s, 30);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "-t", "7"), 0);
	ck_assert_uint_eq(cli.timeout_s, 7);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--timeout=0"), 0);
	ck_assert_uint_eq(cli.timeout_s, 0);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "-t5"), 0);
	ck_assert_uint_eq(cli.timeout_s, 5);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "-t", "4294967295"), 0);
	ck_assert_uint_eq(cli.timeout_s, 4294967295u);
}
END_TEST

START_TEST(timeout_bad_values_are_usage_errors)
{
	static const char *const bad[] = {"abc", "-1", "",	     "1.5",
					  "5s",	 " 5", "4294967296", "99999999999999999999999"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		struct sv_cli cli;
		struct sv_err err = {0};
		int r = PARSE(&cli, &err, NULL, "--timeout", (char *)bad[i]);
		ck_assert_msg(r == -EINVAL, "'%s' accepted", bad[i]);
		ck_assert_msg(strstr(err.msg, "--timeout") && strstr(err.msg, "not a number"),
			      "'%s': %s", bad[i], err.msg);
	}
}
END_TEST

START_TEST(interactive_version_help_forms)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "-i"), 0);
	ck_assert(cli.interactive);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--interactive"), 0);
	ck_assert(cli.interactive);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "-V"), 0);
	ck_assert_int_eq(cli.cmd, SV_CMD_VERSION);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--version"), 0);
	ck_assert_int_eq(cli.cmd, SV_CMD_VERSION);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "-h"), 0);
	ck_assert_int_eq(cli.cmd, SV_CMD_HELP);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--help"), 0);
	ck_assert_int_eq(cli.cmd, SV_CMD_HELP);
}
END_TEST

START_TEST(boolean_flag_with_value_is_refused)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	assert_usage_error(PARSE(&cli, &err, NULL, "--interactive=yes"), &err,
			   "--interactive takes no value");
	assert_usage_error(PARSE(&cli, &err, NULL, "--health-check=1"), &err,
			   "--health-check takes no value");
	/* A flag without a value cannot swallow the rest of its word. */
	assert_usage_error(PARSE(&cli, &err, NULL, "-ix"), &err, "unknown option '-ix'");
}
END_TEST

START_TEST(missing_value_is_a_usage_error)
{
	static const char *const flags[] = {"--workdir", "-w",		 "--timeout",
					    "-t",	 "--log-level",	 "--grace-period",
					    "--mode",	 "--sandbox-id", "--log-format"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(flags); i++) {
		char *argv[] = {"openshell-sandbox", (char *)flags[i], NULL};
		struct sv_cli cli;
		struct sv_err err = {0};
		g_env = NULL;
		int r = sv_cli_parse(2, argv, fake_getenv, &cli, &err);
		ck_assert_msg(r == -EINVAL, "%s accepted", flags[i]);
		ck_assert_msg(strstr(err.msg, "requires a value"), "%s: %s", flags[i], err.msg);
	}
	struct sv_cli cli;
	struct sv_err err = {0};
	assert_usage_error(PARSE(&cli, &err, NULL, "-w"), &err, "--workdir requires a value");
	assert_usage_error(PARSE(&cli, &err, NULL, "--workdir="), &err,
			   "--workdir: must not be empty");
}
END_TEST

START_TEST(unknown_flag_error_names_it)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	assert_usage_error(PARSE(&cli, &err, NULL, "--bogus"), &err, "unknown option '--bogus'");
	ck_assert_str_eq(err.msg, "unknown option '--bogus'");
	assert_usage_error(PARSE(&cli, &err, NULL, "--bogus=1"), &err, "unknown option '--bogus'");
	ck_assert_ptr_null(strstr(err.msg, "=1"));
	assert_usage_error(PARSE(&cli, &err, NULL, "-x"), &err, "unknown option '-x'");
	/* No prefix abbreviation of long names. */
	assert_usage_error(PARSE(&cli, &err, NULL, "--work", "/x"), &err,
			   "unknown option '--work'");
	/* An unknown flag before `--` is still an error. */
	assert_usage_error(PARSE(&cli, &err, NULL, "--nope", "--", "ls"), &err, "'--nope'");
}
END_TEST

START_TEST(log_level_flag_and_env_fallback)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--log-level", "debug"), 0);
	ck_assert_int_eq(cli.log_level, SV_LOG_DEBUG);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--log-level=ERROR"), 0);
	ck_assert_int_eq(cli.log_level, SV_LOG_ERROR);
	ck_assert_int_eq(PARSE(&cli, &err, ENV("OPENSHELL_LOG_LEVEL", "info"), "-i"), 0);
	ck_assert_int_eq(cli.log_level, SV_LOG_INFO);
	/* Blank is how drivers unset: the default stays. */
	ck_assert_int_eq(PARSE(&cli, &err, ENV("OPENSHELL_LOG_LEVEL", ""), "-i"), 0);
	ck_assert_int_eq(cli.log_level, SV_LOG_WARN);
	assert_usage_error(PARSE(&cli, &err, NULL, "--log-level", "loud"), &err,
			   "--log-level: 'loud' is not one of");
	assert_usage_error(PARSE(&cli, &err, ENV("OPENSHELL_LOG_LEVEL", "loud"), "-i"), &err,
			   "OPENSHELL_LOG_LEVEL: 'loud'");
}
END_TEST

START_TEST(flags_override_their_environment_variables)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	const char *const *env = ENV("OPENSHELL_LOG_LEVEL", "trace", "OPENSHELL_SANDBOX_ID",
				     "env-id", "OPENSHELL_ENDPOINT", "http://env:1");
	ck_assert_int_eq(PARSE(&cli, &err, env, "--log-level", "error", "--sandbox-id", "flag-id",
			       "--openshell-endpoint=http://flag:2"),
			 0);
	ck_assert_int_eq(cli.log_level, SV_LOG_ERROR);
	ck_assert_str_eq(cli.sandbox_id, "flag-id");
	ck_assert_str_eq(cli.endpoint, "http://flag:2");
	/* A flag also shields a bad environment value from validation. */
	ck_assert_int_eq(
	    PARSE(&cli, &err, ENV("OPENSHELL_LOG_LEVEL", "loud"), "--log-level", "info"), 0);
	ck_assert_int_eq(cli.log_level, SV_LOG_INFO);
}
END_TEST

START_TEST(env_fallbacks_fill_openshell_options)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	const char *const *env =
	    ENV("OPENSHELL_SANDBOX_ID", "id-1", "OPENSHELL_SANDBOX", "box", "OPENSHELL_ENDPOINT",
		"https://gw:443", "OPENSHELL_POLICY_RULES", "r.rego", "OPENSHELL_POLICY_DATA",
		"d.yaml", "OPENSHELL_SSH_SOCKET_PATH", "/run/s.sock", "OPENSHELL_INFERENCE_ROUTES",
		"routes.yaml", "OPENSHELL_POLICY_FILE", "p.ini");
	ck_assert_int_eq(PARSE(&cli, &err, env, "-i"), 0);
	ck_assert_str_eq(cli.sandbox_id, "id-1");
	ck_assert_str_eq(cli.sandbox_name, "box");
	ck_assert_str_eq(cli.endpoint, "https://gw:443");
	ck_assert_str_eq(cli.policy_rules, "r.rego");
	ck_assert_str_eq(cli.policy_data, "d.yaml");
	ck_assert_str_eq(cli.ssh_socket_path, "/run/s.sock");
	ck_assert_str_eq(cli.inference_routes, "routes.yaml");
	ck_assert_str_eq(cli.policy_file, "p.ini");
}
END_TEST

START_TEST(rust_log_plain_level_overrides_everything)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	ck_assert_int_eq(
	    PARSE(&cli, &err, ENV("RUST_LOG", "debug", "OPENSHELL_LOG_LEVEL", "error"), "-i"), 0);
	ck_assert_int_eq(cli.log_level, SV_LOG_DEBUG);
	ck_assert_ptr_null(cli.ignored_rust_log);
	/* Contract §1.2: RUST_LOG overrides --log-level too. */
	ck_assert_int_eq(PARSE(&cli, &err, ENV("RUST_LOG", "TRACE"), "--log-level", "error"), 0);
	ck_assert_int_eq(cli.log_level, SV_LOG_TRACE);
}
END_TEST

START_TEST(rust_log_directives_are_reported_not_applied)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	ck_assert_int_eq(
	    PARSE(&cli, &err, ENV("RUST_LOG", "openshell_sandbox=debug"), "--log-level", "info"),
	    0);
	ck_assert_int_eq(cli.log_level, SV_LOG_INFO);
	ck_assert_ptr_nonnull(cli.ignored_rust_log);
	ck_assert_str_eq(cli.ignored_rust_log, "openshell_sandbox=debug");
	ck_assert_int_eq(PARSE(&cli, &err, ENV("RUST_LOG", ""), "-i"), 0);
	ck_assert_ptr_null(cli.ignored_rust_log);
	ck_assert_int_eq(cli.log_level, SV_LOG_WARN);
}
END_TEST

START_TEST(log_format_values)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--log-format", "json"), 0);
	ck_assert_int_eq(cli.log_format, SV_LOG_JSON);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--log-format=text"), 0);
	ck_assert_int_eq(cli.log_format, SV_LOG_TEXT);
	assert_usage_error(PARSE(&cli, &err, NULL, "--log-format", "xml"), &err,
			   "'xml' is not text or json");
}
END_TEST

START_TEST(unsupported_flags_are_listed_once_each)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--inference-routes", "a.yaml", "--sandbox",
			       "abc", "--openshell-endpoint", "http://gw:1", "--health-check",
			       "--health-port", "8080", "--inference-routes", "b.yaml", "--sandbox",
			       "again", "--sandbox-id", "id"),
			 0);
	ck_assert_str_eq(cli.sandbox_name, "again");
	/* Each entry must stay valid after parsing returns (it is read later for the warning). */
	static const char *const want[] = {"--inference-routes", "--health-check",
					   "--health-port"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(want); i++)
		ck_assert_msg(has_unsupported(&cli, want[i]), "%s not listed; list is [%s]",
			      want[i], unsupported_list(&cli));
	/* The gateway session uses these now (--sandbox: the UpdateConfig policy sync). */
	ck_assert(!has_unsupported(&cli, "--sandbox"));
	ck_assert(!has_unsupported(&cli, "--sandbox-id"));
	ck_assert(!has_unsupported(&cli, "--openshell-endpoint"));
	ck_assert_uint_eq(cli.nunsupported, 3);
}
END_TEST

START_TEST(upstream_proxy_flags_are_kept_and_read_no_variables)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--upstream-proxy", "http://p:3128",
			       "--upstream-no-proxy", "a,b", "--upstream-proxy-auth-file", "/f",
			       "--upstream-proxy-auth-allow-insecure",
			       "--upstream-proxy-connect-by-hostname"),
			 0);
	ck_assert_str_eq(cli.upstream_proxy, "http://p:3128");
	ck_assert_str_eq(cli.upstream_no_proxy, "a,b");
	ck_assert_str_eq(cli.upstream_auth_file, "/f");
	ck_assert(cli.upstream_auth_insecure && cli.upstream_by_hostname);
	ck_assert_uint_eq(cli.nunsupported, 0);
}
END_TEST

START_TEST(exit_report_timeout_defaults_to_300_and_parses_seconds)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "true"), 0);
	ck_assert_uint_eq(cli.exit_report_timeout_s, 300);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--exit-report-timeout", "7", "true"), 0);
	ck_assert_uint_eq(cli.exit_report_timeout_s, 7);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--exit-report-timeout=0", "true"), 0);
	ck_assert_uint_eq(cli.exit_report_timeout_s, 0);
	assert_usage_error(PARSE(&cli, &err, NULL, "--exit-report-timeout", "5m"), &err,
			   "--exit-report-timeout: '5m' is not a number of seconds");
}
END_TEST

START_TEST(unsupported_env_options_are_listed_by_variable)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	ck_assert_int_eq(PARSE(&cli, &err,
			       ENV("OPENSHELL_ENDPOINT", "http://gw:1", "OPENSHELL_PROXY_UID",
				   "1337", "OPENSHELL_SANDBOX_ID", ""),
			       "-w", "/sandbox"),
			 0);
	ck_assert(!has_unsupported(&cli, "OPENSHELL_ENDPOINT")); /* the gateway session uses it */
	ck_assert(has_unsupported(&cli, "OPENSHELL_PROXY_UID"));
	ck_assert(!has_unsupported(&cli, "OPENSHELL_SANDBOX_ID")); /* blank = absent */
	ck_assert_uint_eq(cli.nunsupported, 1);
	/* Supported options never appear. */
	ck_assert_int_eq(PARSE(&cli, &err, ENV("OPENSHELL_LOG_LEVEL", "info"), "-w", "/x", "-t",
			       "1", "-i", "--grace-period", "1", "--log-format", "json"),
			 0);
	ck_assert_uint_eq(cli.nunsupported, 0);
}
END_TEST

START_TEST(mode_validation)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	assert_usage_error(PARSE(&cli, &err, NULL, "--mode", ""), &err,
			   "--mode must enable at least one of network, process, network-init");
	assert_usage_error(PARSE(&cli, &err, NULL, "--mode="), &err, "must enable at least one");
	assert_usage_error(PARSE(&cli, &err, NULL, "--mode", ","), &err,
			   "must enable at least one");
	assert_usage_error(PARSE(&cli, &err, NULL, "--mode", "bogus"), &err,
			   "--mode: unknown component 'bogus'");
	assert_usage_error(PARSE(&cli, &err, NULL, "--mode", "network,netw"), &err,
			   "unknown component 'netw'");
	assert_usage_error(PARSE(&cli, &err, NULL, "--mode", "network-init,process"), &err,
			   "network-init cannot be combined");
	assert_usage_error(PARSE(&cli, &err, NULL, "--mode", "network,network-init"), &err,
			   "network-init cannot be combined");
	/* The combined default is the built mode; the sidecar modes are parsed but flagged. */
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--mode", "network,process"), 0);
	ck_assert_str_eq(cli.mode, "network,process");
	ck_assert(!has_unsupported(&cli, "--mode"));
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--mode=process,network"), 0);
	ck_assert(!has_unsupported(&cli, "--mode"));
	static const char *const sidecar[] = {"network", "process", "network-init"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(sidecar); i++) {
		ck_assert_int_eq(PARSE(&cli, &err, NULL, "--mode", (char *)sidecar[i]), 0);
		ck_assert_str_eq(cli.mode, sidecar[i]);
		ck_assert_msg(has_unsupported(&cli, "--mode"), "--mode %s not flagged", sidecar[i]);
	}
}
END_TEST

START_TEST(grace_period_parsing)
{
	static const struct {
		const char *in;
		uint64_t ms;
	} ok[] = {{"10", 10000}, {"500ms", 500}, {"2s", 2000}, {"0", 0}, {"0ms", 0}};
	for (size_t i = 0; i < SV_ARRAY_SIZE(ok); i++) {
		struct sv_cli cli;
		struct sv_err err = {0};
		ck_assert_msg(PARSE(&cli, &err, NULL, "--grace-period", (char *)ok[i].in) == 0,
			      "%s: %s", ok[i].in, err.msg);
		ck_assert_uint_eq(cli.grace_ms, ok[i].ms);
	}
	static const char *const bad[] = {
	    "bad", "", "s", "ms", "-1", "1.5s", "10m", "5 s", "2ms5", "s5", "18446744073709551616"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		struct sv_cli cli;
		struct sv_err err = {0};
		int r = PARSE(&cli, &err, NULL, "--grace-period", (char *)bad[i]);
		ck_assert_msg(r == -EINVAL, "'%s' accepted", bad[i]);
		ck_assert_msg(strstr(err.msg, "--grace-period") &&
				  strstr(err.msg, "not a duration"),
			      "%s", err.msg);
	}
}
END_TEST

START_TEST(duration_helper_scales_and_bounds)
{
	uint64_t ms = 1;
	ck_assert_int_eq(sv_cli_parse_duration_ms("3", &ms), 0);
	ck_assert_uint_eq(ms, 3000);
	ck_assert_int_eq(sv_cli_parse_duration_ms("3s", &ms), 0);
	ck_assert_uint_eq(ms, 3000);
	ck_assert_int_eq(sv_cli_parse_duration_ms("3ms", &ms), 0);
	ck_assert_uint_eq(ms, 3);
	ms = 42;
	ck_assert_int_eq(sv_cli_parse_duration_ms("", &ms), -EINVAL);
	ck_assert_int_eq(sv_cli_parse_duration_ms("x", &ms), -EINVAL);
	/* Seconds that would overflow a millisecond count are refused, not wrapped. */
	ck_assert_int_eq(sv_cli_parse_duration_ms("18446744073709552", &ms), -EINVAL);
	ck_assert_uint_eq(ms, 42);
	/* A very long number cannot overflow the internal copy. */
	char longnum[200];
	memset(longnum, '1', sizeof(longnum) - 1);
	longnum[sizeof(longnum) - 1] = '\0';
	ck_assert_int_eq(sv_cli_parse_duration_ms(longnum, &ms), -EINVAL);
}
END_TEST

START_TEST(trailing_command_after_first_positional)
{
	char *const argv[] = {"openshell-sandbox", "-w", "/x", "ls", "-l",
			      "--timeout",	   "5",	 "--", NULL};
	struct sv_cli cli;
	struct sv_err err = {0};
	g_env = NULL;
	ck_assert_int_eq(sv_cli_parse(8, argv, fake_getenv, &cli, &err), 0);
	ck_assert_str_eq(cli.workdir, "/x");
	ck_assert_uint_eq(cli.timeout_s, 0); /* belongs to the command */
	ck_assert_uint_eq(cli.nargs, 5);
	ck_assert_ptr_eq(cli.args, argv + 3);
	ck_assert_str_eq(cli.args[0], "ls");
	ck_assert_str_eq(cli.args[1], "-l");
	ck_assert_str_eq(cli.args[2], "--timeout");
	ck_assert_str_eq(cli.args[4], "--");
	/* A lone "-" is a positional, not a flag. */
	char *const dash[] = {"openshell-sandbox", "-", "x", NULL};
	ck_assert_int_eq(sv_cli_parse(3, dash, fake_getenv, &cli, &err), 0);
	ck_assert_uint_eq(cli.nargs, 2);
	ck_assert_str_eq(cli.args[0], "-");
}
END_TEST

START_TEST(trailing_command_after_double_dash)
{
	char *const argv[] = {"openshell-sandbox", "-i", "--", "--version", "-w", "x", NULL};
	struct sv_cli cli;
	struct sv_err err = {0};
	g_env = NULL;
	ck_assert_int_eq(sv_cli_parse(6, argv, fake_getenv, &cli, &err), 0);
	ck_assert(cli.interactive);
	ck_assert_int_eq(cli.cmd, SV_CMD_RUN);
	ck_assert_ptr_null(cli.workdir);
	ck_assert_uint_eq(cli.nargs, 3);
	ck_assert_str_eq(cli.args[0], "--version");
	ck_assert_ptr_null(cli.args[cli.nargs]);
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "-i", "--"), 0);
	ck_assert_uint_eq(cli.nargs, 0);
}
END_TEST

START_TEST(argc_zero_yields_no_command)
{
	/* execve(path, {NULL}, envp) gives argc 0 on kernels before 5.18 (the pkexec
	 * CVE-2021-4034 pattern): the command must not be taken from past the argv array. */
	char *const argv[] = {NULL, "OPENSHELL_FAKE=env", NULL};
	struct sv_cli cli;
	struct sv_err err = {0};
	g_env = NULL;
	int r = sv_cli_parse(0, argv, fake_getenv, &cli, &err);
	if (r == 0)
		ck_assert_msg(cli.nargs == 0, "argc 0 gave nargs %zu", cli.nargs);
	else
		ck_assert_int_eq(r, -EINVAL);
}
END_TEST

START_TEST(health_port_must_be_a_port)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "--health-port", "65535"), 0);
	assert_usage_error(PARSE(&cli, &err, NULL, "--health-port", "65536"), &err,
			   "--health-port: '65536' is not a port");
	assert_usage_error(PARSE(&cli, &err, NULL, "--health-port=http"), &err, "is not a port");
}
END_TEST

START_TEST(copy_self_usage)
{
	struct sv_cli cli;
	struct sv_err err = {0};
	char *const argv[] = {"openshell-sandbox", "copy-self", "/opt/openshell/bin", NULL};
	g_env = NULL;
	ck_assert_int_eq(sv_cli_parse(3, argv, fake_getenv, &cli, &err), 0);
	ck_assert_int_eq(cli.cmd, SV_CMD_COPY_SELF);
	ck_assert_str_eq(cli.copy_dest, "/opt/openshell/bin");
	assert_usage_error(PARSE(&cli, &err, NULL, "copy-self"), &err, "usage: copy-self DEST");
	assert_usage_error(PARSE(&cli, &err, NULL, "copy-self", ""), &err, "usage: copy-self DEST");
	assert_usage_error(PARSE(&cli, &err, NULL, "copy-self", "a", "b"), &err,
			   "usage: copy-self DEST");
	/* Only argv[1] selects the subcommand; later it is just the command's name. */
	ck_assert_int_eq(PARSE(&cli, &err, NULL, "-i", "copy-self", "x"), 0);
	ck_assert_int_eq(cli.cmd, SV_CMD_RUN);
	ck_assert_uint_eq(cli.nargs, 2);
}
END_TEST

START_TEST(usage_text_lists_the_flags)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	sv_cli_usage(p[1]);
	close(p[1]);
	char buf[8192];
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(buf) - 1 && (k = read(p[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)k;
	close(p[0]);
	buf[n] = '\0';
	static const char *const want[] = {
	    "--workdir",      "--timeout",    "--interactive",
	    "--grace-period", "--log-level",  "--log-format",
	    "copy-self",      "--sandbox-id", "OPENSHELL_MAIN_PROCESS_SPEC"};
	for (size_t i = 0; i < SV_ARRAY_SIZE(want); i++)
		ck_assert_msg(strstr(buf, want[i]), "usage lacks %s", want[i]);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("flags");
	tcase_add_test(tc, no_arguments_gives_defaults);
	tcase_add_test(tc, workdir_every_form);
	tcase_add_test(tc, timeout_every_form);
	tcase_add_test(tc, timeout_bad_values_are_usage_errors);
	tcase_add_test(tc, interactive_version_help_forms);
	tcase_add_test(tc, boolean_flag_with_value_is_refused);
	tcase_add_test(tc, missing_value_is_a_usage_error);
	tcase_add_test(tc, unknown_flag_error_names_it);
	tcase_add_test(tc, log_format_values);
	tcase_add_test(tc, mode_validation);
	tcase_add_test(tc, grace_period_parsing);
	tcase_add_test(tc, duration_helper_scales_and_bounds);
	tcase_add_test(tc, trailing_command_after_first_positional);
	tcase_add_test(tc, trailing_command_after_double_dash);
	tcase_add_test(tc, argc_zero_yields_no_command);
	tcase_add_test(tc, health_port_must_be_a_port);
	tcase_add_test(tc, copy_self_usage);
	tcase_add_test(tc, usage_text_lists_the_flags);
	suite_add_tcase(s, tc);

	tc = tcase_create("environment");
	tcase_add_test(tc, log_level_flag_and_env_fallback);
	tcase_add_test(tc, flags_override_their_environment_variables);
	tcase_add_test(tc, env_fallbacks_fill_openshell_options);
	tcase_add_test(tc, rust_log_plain_level_overrides_everything);
	tcase_add_test(tc, rust_log_directives_are_reported_not_applied);
	tcase_add_test(tc, unsupported_flags_are_listed_once_each);
	tcase_add_test(tc, upstream_proxy_flags_are_kept_and_read_no_variables);
	tcase_add_test(tc, unsupported_env_options_are_listed_by_variable);
	tcase_add_test(tc, exit_report_timeout_defaults_to_300_and_parses_seconds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cli_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
