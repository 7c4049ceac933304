/* Command line and environment options (contract §1.2, §1.3).
 *
 * Parsing is pure: it reads argv and a getenv-like callback and fills struct sv_cli, so tests
 * can drive it without touching the process environment. Every OpenShell flag is recognised;
 * those whose feature is not built yet are listed in sv_cli.unsupported for a warning.
 */
#ifndef SV_CLI_H
#define SV_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "log.h"

#define SV_EXIT_USAGE 2 /* as clap: unknown flag, missing or malformed value */
#define SV_CLI_UNSUPPORTED_MAX 32
#define SV_EXIT_REPORT_TIMEOUT_DEFAULT_S 300 /* --exit-report-timeout, docs/gateway.md */

enum sv_cli_cmd {
	SV_CMD_RUN,
	SV_CMD_HELP,
	SV_CMD_VERSION,
	SV_CMD_COPY_SELF,
	SV_CMD_SELF_TEST,
};

struct sv_cli {
	enum sv_cli_cmd cmd;
	const char *workdir;
	uint64_t timeout_s;
	uint64_t grace_ms;
	uint64_t exit_report_timeout_s;
	bool interactive;
	bool self_test_json;
	enum sv_log_level log_level;
	enum sv_log_format log_format;
	const char *policy_file;
	const char *copy_dest;
	/* OpenShell options that are parsed and kept for the features that will use them. */
	const char *sandbox_id;
	const char *sandbox_name;
	const char *endpoint;
	const char *policy_rules;
	const char *policy_data;
	const char *ssh_socket_path;
	const char *inference_routes;
	const char *mode;
	/* --upstream-proxy* (argv only, no variables: contract §1.2). */
	const char *upstream_proxy, *upstream_no_proxy, *upstream_auth_file;
	bool upstream_auth_insecure, upstream_by_hostname;
	/* The main-process words (after `--` or the first positional). Borrowed from argv. */
	char *const *args;
	size_t nargs;
	/* "--flag" or "ENV_VAR" names given for features this build does not have yet. */
	const char *unsupported[SV_CLI_UNSUPPORTED_MAX];
	size_t nunsupported;
	/* A RUST_LOG value that was not a plain level: reported, not applied. */
	const char *ignored_rust_log;
};

typedef const char *(*sv_getenv_fn)(const char *name);

/* Returns 0, or -EINVAL with @err naming the argument (exit SV_EXIT_USAGE). */
int sv_cli_parse(int argc, char *const *argv, sv_getenv_fn getenv_fn, struct sv_cli *cli,
		 struct sv_err *err);

/* Parse a duration: "N" seconds or "Nms" milliseconds. */
int sv_cli_parse_duration_ms(const char *s, uint64_t *ms);

void sv_cli_usage(int fd);

#endif
