/* Unit tests for supervisor/isolation/caps.c: the kept table and the drop itself (in a forked
 * child, so this process keeps its capabilities for the other tests). */
#include <check.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor/isolation/caps.h"

START_TEST(nothing_forbidden_is_kept_and_at_most_ten_are)
{
	size_t n;
	const struct sv_caps_kept *k = sv_caps_kept_table(&n);
	ck_assert_uint_le(n, 10);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(!sv_caps_is_forbidden(k[i].cap), "cap %d is forbidden", k[i].cap);
		ck_assert(k[i].why && *k[i].why);
	}
	ck_assert(sv_caps_is_forbidden(CAP_SYS_MODULE));
	ck_assert(sv_caps_is_forbidden(CAP_SETFCAP));
	ck_assert(!sv_caps_is_forbidden(CAP_KILL));
	char b[32];
	ck_assert_str_eq(sv_caps_name(CAP_SYS_ADMIN, b, sizeof(b)), "cap_sys_admin");
}
END_TEST

static uint64_t effective(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	return d[0].effective | ((uint64_t)d[1].effective << 32);
}

START_TEST(the_drop_leaves_exactly_the_kept_set_minus_the_extra)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP %s: needs root\n", __func__);
		return;
	}
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct sv_err err = {0};
		if (sv_caps_drop_after_setup("cap_kill", &err) < 0)
			_exit(10);
		uint64_t want = sv_caps_kept_mask() & ~(1ULL << CAP_KILL);
		if (effective() != want)
			_exit(11);
		if (prctl(PR_CAPBSET_READ, CAP_SYS_MODULE, 0, 0, 0) != 0 ||
		    prctl(PR_CAPBSET_READ, CAP_KILL, 0, 0, 0) != 0 ||
		    prctl(PR_CAPBSET_READ, CAP_SYS_PTRACE, 0, 0, 0) != 1)
			_exit(12);
		_exit(0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
}
END_TEST

START_TEST(an_unknown_extra_name_is_refused_naming_it)
{
	struct sv_err err = {0};
	ck_assert_int_eq(sv_caps_drop_after_setup("cap_kill,cap_nonsense", &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "cap_nonsense"));
}
END_TEST

static Suite *caps_suite(void)
{
	Suite *s = suite_create("caps");
	TCase *tc = tcase_create("caps");
	tcase_add_test(tc, nothing_forbidden_is_kept_and_at_most_ten_are);
	tcase_add_test(tc, the_drop_leaves_exactly_the_kept_set_minus_the_extra);
	tcase_add_test(tc, an_unknown_extra_name_is_refused_naming_it);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(caps_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
