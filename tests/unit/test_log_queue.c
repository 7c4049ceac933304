/* Unit tests for supervisor/log_console.c: once attached to the loop, a stalled stderr never
 * blocks a logging thread; lines queue, overflow is dropped and counted, the loop drains the
 * queue with whole lines and reports the drops; sinks lose nothing; forked children keep the
 * direct write.
 *
 * stderr is a pipe the test reads only when it chooses to (Check forks each test, so fd 2 and the
 * module's state are the test's own).
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop_wait.h"
#include "supervisor/log.h"
#include "supervisor/loop.h"

static int g_rd = -1; /* the read end of the pipe on fd 2 */
static char *g_got;   /* what the test read from it */
static size_t g_gotlen, g_gotcap;

/* fd 2 becomes a pipe whose reader is not reading. */
static void stderr_pipe(void)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	close(p[1]);
	g_rd = p[0];
	ck_assert_int_ge(fcntl(g_rd, F_SETFL, O_NONBLOCK), 0);
	g_gotlen = 0;
}

/* Fill the pipe on fd 2 until it takes no more. */
static void stderr_fill(void)
{
	int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	char junk[4096];
	memset(junk, 'j', sizeof(junk));
	junk[sizeof(junk) - 1] = '\n';
	while (write(fd, junk, sizeof(junk)) > 0)
		;
	close(fd);
}

/* Read what is there now (the reader coming back). */
static void reader_take(void)
{
	for (;;) {
		if (g_gotcap - g_gotlen < 65536) {
			g_gotcap = g_gotcap ? 2 * g_gotcap : 1 << 20;
			g_got = realloc(g_got, g_gotcap + 1);
			ck_assert_ptr_nonnull(g_got);
		}
		ssize_t n = read(g_rd, g_got + g_gotlen, g_gotcap - g_gotlen);
		if (n <= 0)
			break;
		g_gotlen += (size_t)n;
	}
	g_got[g_gotlen] = '\0';
}

static size_t count(const char *needle)
{
	size_t n = 0;
	for (const char *p = g_got; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static bool has_report(void *arg)
{
	(void)arg;
	reader_take();
	return strstr(g_got, "log_lines_dropped") || strstr(g_got, "log lines were dropped");
}

static const char *g_want;
static size_t g_want_n;

static bool has_all(void *arg)
{
	(void)arg;
	reader_take();
	return count(g_want) >= g_want_n;
}

/* Every line read is whole: it is either the filler or a complete log line. */
static void assert_whole_lines(void)
{
	regex_t rx;
	ck_assert_int_eq(regcomp(&rx,
				 "^(j+|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (INFO|WARN) "
				 "[a-z]+: .*)$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	char *copy = strdup(g_got), *save = NULL;
	ck_assert_ptr_nonnull(copy);
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		ck_assert_msg(regexec(&rx, l, 0, NULL, 0) == 0, "not a whole line: '%.200s'", l);
	free(copy);
	regfree(&rx);
}

static void log_pad(int i)
{
	char pad[900];
	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	char n[16];
	sv_fmt(n, sizeof(n), "%d", i);
	sv_log_kv(SV_LOG_INFO, "test", "test_line", "queued line", SV_KVS({"n", n}, {"pad", pad}));
}

START_TEST(full_queue_drops_and_counts_then_reports_once_stderr_drains)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	stderr_pipe();
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	ck_assert_int_eq(sv_log_attach(&loop, NULL), 0);
	/* ~1 KiB lines: 600 of them are more than the pipe and the queue together. Today's code
	 * would sleep in write(2) here, forever: the test's timeout says so. */
	uint64_t t0 = now_ms();
	for (int i = 0; i < 600; i++)
		log_pad(i);
	ck_assert_uint_lt(now_ms() - t0, 1000);
	struct sv_log_stats st;
	sv_log_stats(&st);
	ck_assert(st.attached);
	ck_assert_uint_gt(st.dropped, 0);
	ck_assert_uint_eq(st.dropped, st.dropped_total);
	ck_assert_uint_le(st.queued, SV_LOG_QUEUE_BYTES);
	ck_assert_uint_gt(st.queued, SV_LOG_QUEUE_BYTES - 2048);
	unsigned long dropped = st.dropped;

	/* The reader comes back: the loop drains the queue and says how many were lost. */
	ck_assert(run_until(&loop, has_report, NULL, 3000));
	g_want = "queued line";
	g_want_n = 600 - dropped;
	ck_assert(run_until(&loop, has_all, NULL, 3000));
	char want[64];
	sv_fmt(want, sizeof(want), "dropped=%lu", dropped);
	ck_assert_msg(strstr(g_got, want), "no '%s' in the report", want);
	ck_assert_uint_eq(count("queued line"), 600 - dropped);
	ck_assert_uint_eq(count("log_lines_dropped") + count("log lines were dropped"), 1);
	sv_log_stats(&st);
	ck_assert_uint_eq(st.dropped, 0);
	ck_assert_uint_eq(st.queued, 0);
	assert_whole_lines();

	/* Recovered: the next line goes straight out. */
	sv_log_kv(SV_LOG_INFO, "test", "test_line", "after recovery", NULL, 0);
	reader_take();
	ck_assert_ptr_nonnull(strstr(g_got, "after recovery"));
	sv_log_detach();
	sv_loop_close(&loop);
}
END_TEST

struct tctx {
	int id;
};

static void *logger(void *arg)
{
	struct tctx *t = arg;
	for (int i = 0; i < 200; i++) {
		char id[16], n[16];
		sv_fmt(id, sizeof(id), "%d", t->id);
		sv_fmt(n, sizeof(n), "%d", i);
		sv_log_kv(SV_LOG_INFO, "worker", "test_line", "from a worker thread",
			  SV_KVS({"thread", id}, {"n", n},
				 {"pad", "0123456789012345678901234567890123456789"}));
	}
	return NULL;
}

START_TEST(worker_threads_never_block_and_the_loop_writes_their_lines)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	stderr_pipe();
	stderr_fill(); /* every line below must queue */
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	ck_assert_int_eq(sv_log_attach(&loop, NULL), 0);
	pthread_t th[4];
	struct tctx ctx[4];
	uint64_t t0 = now_ms();
	for (int i = 0; i < 4; i++) {
		ctx[i].id = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, logger, &ctx[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ck_assert_uint_lt(now_ms() - t0, 1000); /* nobody read, nobody waited */
	struct sv_log_stats st;
	sv_log_stats(&st);
	ck_assert_uint_eq(st.dropped, 0);
	ck_assert_uint_gt(st.queued, 0);

	/* The workers are done; only the loop (woken through its eventfd) can write now. */
	g_want = "from a worker thread";
	g_want_n = 800;
	ck_assert(run_until(&loop, has_all, NULL, 3000));
	ck_assert_uint_eq(count("from a worker thread"), 800);
	assert_whole_lines();
	sv_log_detach();
	sv_loop_close(&loop);
}
END_TEST

START_TEST(forked_child_writes_directly_not_into_the_queue)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	stderr_pipe();
	stderr_fill();
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	ck_assert_int_eq(sv_log_attach(&loop, NULL), 0);
	sv_log_kv(SV_LOG_INFO, "test", "test_line", "queued in the parent", NULL, 0);
	struct sv_log_stats st;
	sv_log_stats(&st);
	ck_assert_uint_gt(st.queued, 0);

	int mfd = memfd_create("child", MFD_CLOEXEC);
	ck_assert_int_ge(mfd, 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* As between fork and exec: the line must go to whatever fd 2 is, now. */
		if (dup2(mfd, STDERR_FILENO) < 0)
			_exit(2);
		sv_log_kv(SV_LOG_INFO, "child", "test_line", "from the child", NULL, 0);
		sv_log_ocsf("FINDING:OPEN", SV_SEV_HIGH, "DEGRADED", "test_event", "child finding",
			    NULL, 0);
		_exit(0);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char buf[2048];
	ssize_t n = pread(mfd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, "INFO child: from the child"));
	ck_assert_ptr_nonnull(strstr(buf, "OCSF FINDING:OPEN [HIGH] DEGRADED child finding"));
	ck_assert_ptr_null(strstr(buf, "queued in the parent"));
	close(mfd);
	sv_log_stats(&st);
	ck_assert_uint_gt(st.queued, 0); /* the parent's queue is untouched */
	sv_log_detach();
	sv_loop_close(&loop);
}
END_TEST

START_TEST(detach_gives_up_on_a_stuck_stderr_within_a_second)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	stderr_pipe();
	stderr_fill();
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	ck_assert_int_eq(sv_log_attach(&loop, NULL), 0);
	for (int i = 0; i < 10; i++)
		log_pad(i);
	uint64_t t0 = now_ms();
	sv_log_detach();
	uint64_t took = now_ms() - t0;
	ck_assert_uint_ge(took, SV_LOG_EXIT_FLUSH_MS - 50);
	ck_assert_uint_le(took, SV_LOG_EXIT_FLUSH_MS + 500);
	/* After the deadline a line never waits. */
	t0 = now_ms();
	sv_log_kv(SV_LOG_INFO, "test", "test_line", "after detach", NULL, 0);
	ck_assert_uint_lt(now_ms() - t0, 100);
	struct sv_log_stats st;
	sv_log_stats(&st);
	ck_assert(!st.attached);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_ge(st.dropped_total, 11);
	sv_loop_close(&loop);
}
END_TEST

static void *late_reader(void *arg)
{
	(void)arg;
	usleep(200 * 1000);
	reader_take();
	for (int i = 0; i < 100; i++) {
		usleep(5 * 1000);
		reader_take();
	}
	return NULL;
}

START_TEST(detach_flushes_the_queue_when_the_reader_returns)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	stderr_pipe();
	stderr_fill();
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	ck_assert_int_eq(sv_log_attach(&loop, NULL), 0);
	for (int i = 0; i < 50; i++)
		log_pad(i);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, late_reader, NULL), 0);
	sv_log_detach();
	sv_log_kv(SV_LOG_INFO, "test", "test_line", "last line", NULL, 0);
	pthread_join(th, NULL);
	ck_assert_uint_eq(count("queued line"), 50);
	ck_assert_ptr_nonnull(strstr(g_got, "last line"));
	sv_loop_close(&loop);
}
END_TEST

START_TEST(before_attach_a_line_is_written_at_once)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	stderr_pipe();
	sv_log_kv(SV_LOG_INFO, "test", "test_line", "setup line", NULL, 0);
	reader_take();
	ck_assert_ptr_nonnull(strstr(g_got, "INFO test: setup line\n"));
	struct sv_log_stats st;
	sv_log_stats(&st);
	ck_assert(!st.attached);
}
END_TEST

START_TEST(socket_stderr_never_blocks_either)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	int sp[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	ck_assert_int_eq(dup2(sp[0], STDERR_FILENO), STDERR_FILENO);
	close(sp[0]);
	g_rd = sp[1];
	ck_assert_int_ge(fcntl(g_rd, F_SETFL, O_NONBLOCK), 0);
	g_gotlen = 0;
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	ck_assert_int_eq(sv_log_attach(&loop, NULL), 0);
	uint64_t t0 = now_ms();
	for (int i = 0; i < 2000; i++) /* ~2 MiB: far more than the socket buffer and the queue */
		log_pad(i);
	ck_assert_uint_lt(now_ms() - t0, 1000);
	struct sv_log_stats st;
	sv_log_stats(&st);
	ck_assert_uint_gt(st.dropped, 0);
	ck_assert(run_until(&loop, has_report, NULL, 3000));
	g_want = "queued line";
	g_want_n = 2000 - st.dropped;
	ck_assert(run_until(&loop, has_all, NULL, 3000));
	assert_whole_lines();
	sv_log_detach();
	sv_loop_close(&loop);
}
END_TEST

START_TEST(regular_file_stderr_is_written_directly)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	int mfd = memfd_create("stderr", MFD_CLOEXEC);
	ck_assert_int_ge(mfd, 0);
	ck_assert_int_eq(dup2(mfd, STDERR_FILENO), STDERR_FILENO);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	ck_assert_int_eq(sv_log_attach(&loop, NULL), 0);
	sv_log_kv(SV_LOG_INFO, "test", "test_line", "into a file", NULL, 0);
	char buf[512];
	ssize_t n = pread(mfd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, "INFO test: into a file\n"));
	ck_assert_ptr_null(strstr(buf, "log_stderr_blocking")); /* a file cannot stall: no warning */
	ck_assert_ptr_null(strstr(buf, "cannot be made non-blocking"));
	sv_log_detach();
	sv_loop_close(&loop);
}
END_TEST

static unsigned g_sunk;

static void count_sink(const struct sv_log_record *rec, void *data)
{
	(void)data;
	if (strstr(rec->text, "queued line"))
		g_sunk++;
}

START_TEST(sink_gets_every_record_while_stderr_is_stuck)
{
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	stderr_pipe();
	stderr_fill();
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	ck_assert_int_eq(sv_log_attach(&loop, NULL), 0);
	sv_log_set_sink(count_sink, NULL, SV_LOG_INFO);
	for (int i = 0; i < 600; i++)
		log_pad(i);
	struct sv_log_stats st;
	sv_log_stats(&st);
	ck_assert_uint_gt(st.dropped, 0); /* stderr lost lines ... */
	ck_assert_uint_eq(g_sunk, 600);	  /* ... the sink none */
	sv_log_set_sink(NULL, NULL, SV_LOG_INFO);
	sv_log_detach();
	sv_loop_close(&loop);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("log_queue");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, full_queue_drops_and_counts_then_reports_once_stderr_drains);
	tcase_add_test(tc, worker_threads_never_block_and_the_loop_writes_their_lines);
	tcase_add_test(tc, forked_child_writes_directly_not_into_the_queue);
	tcase_add_test(tc, detach_gives_up_on_a_stuck_stderr_within_a_second);
	tcase_add_test(tc, detach_flushes_the_queue_when_the_reader_returns);
	tcase_add_test(tc, before_attach_a_line_is_written_at_once);
	tcase_add_test(tc, socket_stderr_never_blocks_either);
	tcase_add_test(tc, regular_file_stderr_is_written_directly);
	tcase_add_test(tc, sink_gets_every_record_while_stderr_is_stuck);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
