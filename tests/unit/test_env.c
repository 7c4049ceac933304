/* Unit tests for supervisor/env.c: the agent's environment (contract §6.2).
 *
 * The strip list is security-relevant: every listed name must vanish, and nothing else may. The
 * warning for a malformed OPENSHELL_USER_ENVIRONMENT is captured from fd 2 and must not carry
 * the variable's value.
 */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "supervisor/env.h"
#include "supervisor/log.h"

/* Contract §6.2 strip list, plus the name drivers strip themselves. */
static const char *const secrets[] = {
    "OPENSHELL_OCI_IMAGE_USER",
    "OPENSHELL_SANDBOX_UID",
    "OPENSHELL_SANDBOX_GID",
    "OPENSHELL_SANDBOX_TOKEN",
    "OPENSHELL_SANDBOX_TOKEN_FILE",
    "OPENSHELL_K8S_SA_TOKEN_FILE",
    "OPENSHELL_TLS_CA",
    "OPENSHELL_TLS_CERT",
    "OPENSHELL_TLS_KEY",
    "OPENSHELL_PROVIDER_SPIFFE_WORKLOAD_API_SOCKET",
    "OPENSHELL_NETWORK_RUNTIME_CAPABILITIES",
    "OPENSHELL_GATEWAY_TLS_SERVER_NAME",
};

/* Variables the agent keeps seeing (contract §6.2: "other OPENSHELL_* … remain visible"). */
static const char *const kept[] = {
    "OPENSHELL_ENDPOINT",
    "OPENSHELL_SANDBOX_ID",
    "OPENSHELL_MAIN_PROCESS_SPEC",
    "OPENSHELL_SSH_SOCKET_PATH",
    "OPENSHELL_TLS_CA_EXTRA",
    "OPENSHELL_TLS_C",
    "XOPENSHELL_TLS_KEY",
    "openshell_tls_key",
    "PATH",
    "OPENSHELL_SANDBOX_TOKENX",
    "HOME",
};

static int g_saved_stderr = -1;
static int g_capture_fd = -1;

static void capture_start(void)
{
	g_capture_fd = memfd_create("stderr", MFD_CLOEXEC);
	ck_assert_int_ge(g_capture_fd, 0);
	g_saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	ck_assert_int_ge(g_saved_stderr, 0);
	ck_assert_int_eq(dup2(g_capture_fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restore fd 2 and return what was written (NUL-terminated, static storage). */
static const char *capture_end(void)
{
	static char buf[16384];
	ck_assert_int_eq(dup2(g_saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(g_saved_stderr);
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(buf) - 1 &&
	       (k = pread(g_capture_fd, buf + n, sizeof(buf) - 1 - n, (off_t)n)) > 0)
		n += (size_t)k;
	buf[n] = '\0';
	close(g_capture_fd);
	return buf;
}

static size_t count_name(const struct sv_env *env, const char *name)
{
	size_t len = strlen(name), c = 0;
	for (size_t i = 0; i < env->n; i++) {
		if (strncmp(env->vars[i], name, len) == 0 && env->vars[i][len] == '=')
			c++;
	}
	return c;
}

START_TEST(every_secret_name_is_recognised)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(secrets); i++)
		ck_assert_msg(sv_env_is_secret(secrets[i], strlen(secrets[i])), "%s", secrets[i]);
	for (size_t i = 0; i < SV_ARRAY_SIZE(kept); i++)
		ck_assert_msg(!sv_env_is_secret(kept[i], strlen(kept[i])), "%s", kept[i]);
	/* The length bounds the comparison: a prefix of the buffer is what is asked about. */
	ck_assert(sv_env_is_secret("OPENSHELL_TLS_KEY=/k", 17));
	ck_assert(!sv_env_is_secret("OPENSHELL_TLS_KEY", 16));
}
END_TEST

START_TEST(from_strips_every_secret_and_keeps_the_rest)
{
	char *base[SV_ARRAY_SIZE(secrets) + SV_ARRAY_SIZE(kept) + 1];
	char store[SV_ARRAY_SIZE(secrets) + SV_ARRAY_SIZE(kept)][96];
	size_t n = 0;
	for (size_t i = 0; i < SV_ARRAY_SIZE(secrets); i++, n++) {
		sv_fmt(store[n], sizeof(store[n]), "%s=secret-%zu", secrets[i], i);
		base[n] = store[n];
	}
	for (size_t i = 0; i < SV_ARRAY_SIZE(kept); i++, n++) {
		sv_fmt(store[n], sizeof(store[n]), "%s=v%zu", kept[i], i);
		base[n] = store[n];
	}
	base[n] = NULL;
	struct sv_env env;
	ck_assert_int_eq(sv_env_from(&env, base), 0);
	ck_assert_uint_eq(env.n, SV_ARRAY_SIZE(kept));
	ck_assert_ptr_null(env.vars[env.n]);
	for (size_t i = 0; i < SV_ARRAY_SIZE(secrets); i++)
		ck_assert_msg(sv_env_get(&env, secrets[i]) == NULL, "%s leaked", secrets[i]);
	for (size_t i = 0; i < env.n; i++)
		ck_assert_msg(strstr(env.vars[i], "secret-") == NULL, "leaked: %s", env.vars[i]);
	for (size_t i = 0; i < SV_ARRAY_SIZE(kept); i++) {
		char want[16];
		sv_fmt(want, sizeof(want), "v%zu", i);
		ck_assert_str_eq(sv_env_get(&env, kept[i]), want);
	}
	/* Copies, not borrowed pointers. */
	ck_assert(env.vars[0] != base[SV_ARRAY_SIZE(secrets)]);
	sv_env_free(&env);
	ck_assert_ptr_null(env.vars);
	ck_assert_uint_eq(env.n, 0);
}
END_TEST

START_TEST(from_skips_entries_without_a_name)
{
	char *base[] = {"NOEQUALS", "=value", "A=", "B=1=2", NULL};
	struct sv_env env;
	ck_assert_int_eq(sv_env_from(&env, base), 0);
	ck_assert_uint_eq(env.n, 2);
	ck_assert_str_eq(sv_env_get(&env, "A"), "");
	ck_assert_str_eq(sv_env_get(&env, "B"), "1=2");
	ck_assert_ptr_null(sv_env_get(&env, "NOEQUALS"));
	sv_env_free(&env);
	ck_assert_int_eq(sv_env_from(&env, NULL), 0);
	ck_assert_uint_eq(env.n, 0);
	ck_assert_ptr_nonnull(env.vars);
	ck_assert_ptr_null(env.vars[0]);
	sv_env_free(&env);
}
END_TEST

START_TEST(set_adds_and_replaces)
{
	char *base[] = {"A=1", "AB=2", NULL};
	struct sv_env env;
	ck_assert_int_eq(sv_env_from(&env, base), 0);
	ck_assert_int_eq(sv_env_set(&env, "A", "x y"), 0);
	ck_assert_str_eq(sv_env_get(&env, "A"), "x y");
	ck_assert_str_eq(sv_env_get(&env, "AB"), "2"); /* a longer name is another variable */
	ck_assert_int_eq(sv_env_set(&env, "C", ""), 0);
	ck_assert_str_eq(sv_env_get(&env, "C"), "");
	ck_assert_uint_eq(env.n, 3);
	ck_assert_uint_eq(count_name(&env, "A"), 1);
	ck_assert_ptr_null(env.vars[env.n]);
	ck_assert_ptr_null(sv_env_get(&env, ""));
	sv_env_free(&env);
}
END_TEST

START_TEST(main_env_marks_sandbox_and_strips_secrets)
{
	char *base[] = {"PATH=/bin",
			"OPENSHELL_SANDBOX_TOKEN=jwt",
			"OPENSHELL_SANDBOX=my-box",
			"OPENSHELL_TLS_KEY=/k",
			"OPENSHELL_ENDPOINT=http://gw",
			NULL};
	struct sv_env env;
	struct sv_err err = {0};
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	ck_assert_int_eq(sv_env_build_main(&env, base, false, NULL, &err), 0);
	ck_assert_str_eq(sv_env_get(&env, "OPENSHELL_SANDBOX"), "1");
	ck_assert_uint_eq(count_name(&env, "OPENSHELL_SANDBOX"), 1);
	ck_assert_ptr_null(sv_env_get(&env, "OPENSHELL_SANDBOX_TOKEN"));
	ck_assert_ptr_null(sv_env_get(&env, "OPENSHELL_TLS_KEY"));
	ck_assert_str_eq(sv_env_get(&env, "OPENSHELL_ENDPOINT"), "http://gw");
	ck_assert_str_eq(sv_env_get(&env, "PATH"), "/bin");
	ck_assert_ptr_null(env.vars[env.n]);
	sv_env_free(&env);
}
END_TEST

START_TEST(main_env_term_follows_tty)
{
	char *base[] = {"TERM=xterm", NULL};
	struct sv_env env;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_env_build_main(&env, base, true, NULL, &err), 0);
	ck_assert_str_eq(sv_env_get(&env, "TERM"), "xterm-256color");
	ck_assert_uint_eq(count_name(&env, "TERM"), 1);
	sv_env_free(&env);
	ck_assert_int_eq(sv_env_build_main(&env, base, false, NULL, &err), 0);
	ck_assert_str_eq(sv_env_get(&env, "TERM"), "dumb");
	sv_env_free(&env);
	char *none[] = {NULL};
	ck_assert_int_eq(sv_env_build_main(&env, none, true, NULL, &err), 0);
	ck_assert_str_eq(sv_env_get(&env, "TERM"), "xterm-256color");
	sv_env_free(&env);
}
END_TEST

START_TEST(main_env_identity_sets_home_user_shell_unless_user_env_has_them)
{
	char *base[] = {"HOME=/root", "USER=root",
			"OPENSHELL_USER_ENVIRONMENT={\"SHELL\":\"/bin/zsh\"}", "SHELL=/bin/zsh", NULL};
	const struct sv_env_identity id = {"/sandbox", "sandbox", "/bin/bash"};
	struct sv_env env;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_env_build_main(&env, base, false, &id, &err), 0);
	ck_assert_str_eq(sv_env_get(&env, "HOME"), "/sandbox");
	ck_assert_str_eq(sv_env_get(&env, "USER"), "sandbox");
	ck_assert_str_eq(sv_env_get(&env, "SHELL"), "/bin/zsh");
	ck_assert_uint_eq(count_name(&env, "HOME"), 1);
	sv_env_free(&env);
}
END_TEST

START_TEST(main_env_user_term_is_not_overridden)
{
	char *base[] = {"TERM=screen",
			"OPENSHELL_USER_ENVIRONMENT={\"TERM\":\"screen\",\"A\":\"b\"}", NULL};
	struct sv_env env;
	struct sv_err err = {0};
	capture_start();
	int r = sv_env_build_main(&env, base, true, NULL, &err);
	const char *out = capture_end();
	ck_assert_int_eq(r, 0);
	ck_assert_str_eq(sv_env_get(&env, "TERM"), "screen");
	ck_assert_str_eq(out, ""); /* well-formed: no warning */
	sv_env_free(&env);
}
END_TEST

START_TEST(user_defines_reads_object_keys)
{
	struct sv_err err = {0};
	const char *json = " {\"HOME\":\"/h\", \"TERM\" : \"vt100\", \"X\":\"\\u00e9\"} ";
	ck_assert(sv_env_user_defines(json, "TERM", &err));
	ck_assert(sv_env_user_defines(json, "HOME", &err));
	ck_assert(!sv_env_user_defines(json, "TER", &err));
	ck_assert(!sv_env_user_defines(json, "term", &err));
	ck_assert(!sv_env_user_defines("{}", "TERM", &err));
	ck_assert(!sv_env_user_defines("", "TERM", &err));
	ck_assert(!sv_env_user_defines(NULL, "TERM", &err));
	ck_assert_int_eq(err.code, 0);
}
END_TEST

START_TEST(user_defines_is_lenient_and_reports_position)
{
	static const char *const bad[] = {
	    "{\"TERM\":\"x\"",		/* unterminated */
	    "{\"TERM\":1}",		/* non-string value */
	    "{\"TERM\":\"x\",}",	/* trailing comma */
	    "[\"TERM\"]",		/* not an object */
	    "{\"TERM\":\"x\"} junk",	/* trailing garbage */
	    "{\"TERM\":{\"a\":\"b\"}}", /* nested object */
	    "{\"A\":\"b\",\"TERM\":null}",
	    "not json",
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(bad); i++) {
		struct sv_err err = {0};
		ck_assert_msg(!sv_env_user_defines(bad[i], "TERM", &err), "%s", bad[i]);
		ck_assert_msg(err.code == EINVAL, "%s: no error reported", bad[i]);
		ck_assert_msg(strstr(err.msg, "OPENSHELL_USER_ENVIRONMENT") &&
				  strstr(err.msg, " at byte "),
			      "%s: '%s'", bad[i], err.msg);
	}
}
END_TEST

START_TEST(main_env_malformed_user_env_warns_and_defaults_term)
{
	char *base[] = {"OPENSHELL_USER_ENVIRONMENT={\"TERM\":\"hunter2-secret\",\"K\":7}", NULL};
	struct sv_env env;
	struct sv_err err = {0};
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	capture_start();
	int r = sv_env_build_main(&env, base, true, NULL, &err);
	const char *out = capture_end();
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(err.code, 0); /* lenient: not an error for the caller */
	ck_assert_str_eq(sv_env_get(&env, "TERM"), "xterm-256color");
	ck_assert_str_eq(sv_env_get(&env, "OPENSHELL_SANDBOX"), "1");
	ck_assert_msg(strstr(out, " WARN ") && strstr(out, "OPENSHELL_USER_ENVIRONMENT") &&
			  strstr(out, " at byte "),
		      "warning missing: '%s'", out);
	ck_assert_msg(strstr(out, "hunter2") == NULL, "value leaked into the log: '%s'", out);
	/* One line. */
	ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
	sv_env_free(&env);
}
END_TEST

static Suite *env_suite(void)
{
	Suite *s = suite_create("env");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, every_secret_name_is_recognised);
	tcase_add_test(tc, from_strips_every_secret_and_keeps_the_rest);
	tcase_add_test(tc, from_skips_entries_without_a_name);
	tcase_add_test(tc, set_adds_and_replaces);
	tcase_add_test(tc, main_env_marks_sandbox_and_strips_secrets);
	tcase_add_test(tc, main_env_term_follows_tty);
	tcase_add_test(tc, main_env_user_term_is_not_overridden);
	tcase_add_test(tc, main_env_identity_sets_home_user_shell_unless_user_env_has_them);
	tcase_add_test(tc, user_defines_reads_object_keys);
	tcase_add_test(tc, user_defines_is_lenient_and_reports_position);
	tcase_add_test(tc, main_env_malformed_user_env_warns_and_defaults_term);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(env_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
