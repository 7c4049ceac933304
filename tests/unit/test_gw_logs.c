/* Unit tests for the log push queue (session/gw_logs.c) without a gateway: what the sink keeps,
 * the 1024-line bound with counted drops, the push level, forked children and many threads.
 *
 * Sending (batches, Unauthenticated) needs a gateway and is covered by the integration cases
 * (tests/integration/cases_gateway_policy.py).
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "session/gateway/gw_logs.h"
#include "session/session.h"
#include "supervisor/log.h"

static struct gw_client *client; /* never connects: nothing here attaches it to a loop */

static void install(const char *level)
{
	sv_log_setup(SV_LOG_ERROR, SV_LOG_TEXT); /* a quiet console: the push level is separate */
	if (level)
		setenv(GW_LOG_PUSH_ENV, level, 1);
	else
		unsetenv(GW_LOG_PUSH_ENV);
	struct sv_err err = {0};
	if (!client)
		ck_assert_int_eq(gw_client_new("http://127.0.0.1:1", "sb", &client, &err), 0);
	ck_assert_msg(gw_logs_install(client, &err) == 0, "%s", err.msg);
}

static struct gw_logs_stats stats(void)
{
	struct gw_logs_stats s;
	gw_logs_stats(&s);
	return s;
}

START_TEST(info_and_ocsf_are_queued_debug_is_not)
{
	install(NULL);
	sv_info("t", "ev", "one");
	sv_log_ocsf("NET:OPEN", SV_SEV_INFO, "ALLOWED", "ev", "two", NULL, 0);
	sv_debug("t", "ev", "below the push level");
	ck_assert_uint_eq(stats().queued, 2);
	ck_assert_uint_eq(stats().dropped, 0);
}
END_TEST

START_TEST(push_level_comes_from_the_environment)
{
	install("warn");
	sv_info("t", "ev", "not pushed");
	sv_warn("t", "ev", "pushed");
	sv_error("t", "ev", "pushed too");
	ck_assert_uint_eq(stats().queued, 2);
}
END_TEST

START_TEST(queue_is_bounded_and_drops_are_counted)
{
	install(NULL);
	for (int i = 0; i < GW_LOG_QUEUE_MAX + 76; i++)
		sv_info("t", "ev", "line %d", i);
	struct gw_logs_stats s = stats();
	ck_assert_uint_eq(s.queued, GW_LOG_QUEUE_MAX);
	ck_assert_uint_eq(s.dropped, 76);
	ck_assert(!s.disabled);
}
END_TEST

START_TEST(forked_child_lines_never_reach_the_queue)
{
	install(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (int i = 0; i < 10; i++)
			sv_info("t", "ev", "from the child");
		_exit(stats().queued == 0 ? 0 : 1);
	}
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_uint_eq(stats().queued, 0);
}
END_TEST

#define THREADS		 4
#define LINES_PER_THREAD 500

static void *log_many(void *arg)
{
	(void)arg;
	for (int i = 0; i < LINES_PER_THREAD; i++)
		sv_info("t", "ev", "thread line %d", i);
	return NULL;
}

START_TEST(concurrent_loggers_lose_no_accounting)
{
	install(NULL);
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, log_many, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	struct gw_logs_stats s = stats();
	ck_assert_uint_eq(s.queued, GW_LOG_QUEUE_MAX);
	ck_assert_uint_eq(s.queued + s.dropped, THREADS * LINES_PER_THREAD);
}
END_TEST

static Suite *gw_logs_suite(void)
{
	Suite *s = suite_create("gw_logs");
	TCase *tc = tcase_create("queue");
	tcase_add_test(tc, info_and_ocsf_are_queued_debug_is_not);
	tcase_add_test(tc, push_level_comes_from_the_environment);
	tcase_add_test(tc, queue_is_bounded_and_drops_are_counted);
	tcase_add_test(tc, forked_child_lines_never_reach_the_queue);
	tcase_add_test(tc, concurrent_loggers_lose_no_accounting);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gw_logs_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
