/* Unit tests for supervisor/worker.c: jobs run off the loop thread, completions come back on it,
 * threads start only when needed and never exceed the limit. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "supervisor/loop.h"
#include "supervisor/worker.h"

#define NJOBS 64

struct tjob {
	struct sv_job job;
	pthread_t ran_on;
	pthread_t done_on;
	int value, result;
	int *remaining;
};

static pthread_t main_thread;

static void job_run(struct sv_job *j)
{
	struct tjob *t = (struct tjob *)j;
	t->ran_on = pthread_self();
	struct timespec ts = {0, 2 * 1000 * 1000};
	nanosleep(&ts, NULL); /* blocking work: exactly what the loop must not do */
	t->result = t->value * 2;
}

static void job_done(struct sv_loop *loop, struct sv_job *j)
{
	struct tjob *t = (struct tjob *)j;
	t->done_on = pthread_self();
	if (--*t->remaining == 0)
		sv_loop_quit(loop);
}

static int thread_count(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	int n = -1;
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	}
	if (f)
		fclose(f);
	return n;
}

START_TEST(jobs_run_on_workers_and_complete_on_the_loop_thread)
{
	struct sv_loop loop;
	struct sv_err err = {0};
	struct sv_workers *w;
	main_thread = pthread_self();
	ck_assert_int_eq(sv_loop_init(&loop, &err), 0);
	ck_assert_int_eq(sv_workers_new(&loop, 4, &w, &err), 0);
	ck_assert_int_eq(thread_count(), 1); /* lazily started: nothing yet */

	static struct tjob jobs[NJOBS];
	int remaining = NJOBS;
	for (int i = 0; i < NJOBS; i++) {
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].job.run = job_run;
		jobs[i].job.done = job_done;
		jobs[i].value = i;
		jobs[i].remaining = &remaining;
		ck_assert_int_eq(sv_workers_submit(w, &jobs[i].job), 0);
	}
	ck_assert_int_le(thread_count(), 1 + 4);
	ck_assert_int_eq(sv_loop_run(&loop), 0);
	ck_assert_int_eq(remaining, 0);
	ck_assert_uint_eq(sv_workers_pending(w), 0);
	for (int i = 0; i < NJOBS; i++) {
		ck_assert_int_eq(jobs[i].result, 2 * i);
		ck_assert(!pthread_equal(jobs[i].ran_on, main_thread));
		ck_assert(pthread_equal(jobs[i].done_on, main_thread));
	}
	sv_workers_free(w);
	ck_assert_int_eq(thread_count(), 1);
	sv_loop_close(&loop);
}
END_TEST

START_TEST(free_delivers_jobs_still_queued)
{
	struct sv_loop loop;
	struct sv_err err = {0};
	struct sv_workers *w;
	main_thread = pthread_self();
	ck_assert_int_eq(sv_loop_init(&loop, &err), 0);
	ck_assert_int_eq(sv_workers_new(&loop, 1, &w, &err), 0);
	static struct tjob jobs[8];
	int remaining = 8;
	for (int i = 0; i < 8; i++) {
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].job.run = job_run;
		jobs[i].job.done = job_done;
		jobs[i].value = i;
		jobs[i].remaining = &remaining;
		ck_assert_int_eq(sv_workers_submit(w, &jobs[i].job), 0);
	}
	sv_workers_free(w); /* without running the loop: completions still arrive */
	ck_assert_int_eq(remaining, 0);
	for (int i = 0; i < 8; i++)
		ck_assert(pthread_equal(jobs[i].done_on, main_thread));
	sv_loop_close(&loop);
}
END_TEST

START_TEST(thread_limit_is_checked)
{
	struct sv_loop loop;
	struct sv_err err = {0};
	struct sv_workers *w = NULL;
	ck_assert_int_eq(sv_loop_init(&loop, &err), 0);
	ck_assert_int_eq(sv_workers_new(&loop, 0, &w, &err), -EINVAL);
	ck_assert_int_eq(sv_workers_new(&loop, SV_WORKERS_MAX + 1, &w, &err), -EINVAL);
	ck_assert_ptr_null(w);
	sv_loop_close(&loop);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("pool");
	tcase_add_test(tc, jobs_run_on_workers_and_complete_on_the_loop_thread);
	tcase_add_test(tc, free_delivers_jobs_still_queued);
	tcase_add_test(tc, thread_limit_is_checked);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
