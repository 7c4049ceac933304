/* Unit tests for supervisor/log_file.c and log_ocsf.c: the daily text file (info and up, text
 * format whatever the console's), its cap and one rotation, the removal of old days, symlink
 * and missing-directory refusals, the OCSF JSONL switch and the shape of its objects, the
 * writer thread, and forked children that never write a file.
 *
 * Each test works in its own temporary directory (Check forks per test).
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loop_wait.h"
#include "supervisor/json.h"
#include "supervisor/log.h"
#include "supervisor/loop.h"

static char g_dir[64];

static void mkdir_tmp(void)
{
	sv_fmt(g_dir, sizeof(g_dir), "/tmp/sv-logfile-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
	/* Console lines go nowhere: these tests look at files. */
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

/* Checked teardown: the directory and what is in it. */
static void rm_tmp(void)
{
	DIR *d = opendir(g_dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		(void)unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(g_dir);
}

static void day_name(long long offset, char *buf, size_t size)
{
	char ts[40];
	sv_log_timestamp(ts, sizeof(ts), (long long)time(NULL) + offset * 86400, 0);
	sv_fmt(buf, size, "%.10s", ts);
}

static void path_of(const char *prefix, long long offset, const char *suffix, char *buf,
		    size_t size)
{
	char d[16];
	day_name(offset, d, sizeof(d));
	sv_fmt(buf, size, "%s/%s.%s.log%s", g_dir, prefix, d, suffix);
}

/* The whole file, NUL-terminated (owned), or NULL when it does not exist. */
static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	char *buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ssize_t n = read(fd, buf, (size_t)st.st_size);
	ck_assert_int_eq(n, st.st_size);
	buf[n] = '\0';
	close(fd);
	if (len)
		*len = (size_t)n;
	return buf;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void touch(const char *name)
{
	char p[256];
	sv_fmt(p, sizeof(p), "%s/%s", g_dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

START_TEST(text_file_gets_info_and_up_in_text_whatever_the_console)
{
	mkdir_tmp();
	sv_log_setup(SV_LOG_ERROR, SV_LOG_JSON);
	struct sv_err err = {0};
	ck_assert_int_eq(sv_log_files_open(g_dir, SV_LOG_FILE_MAX, &err), 0);
	sv_log_kv(SV_LOG_INFO, "test", "test_line", "an info line", SV_KVS({"k", "v w"}));
	sv_log_kv(SV_LOG_DEBUG, "test", "test_line", "a debug line", NULL, 0);
	sv_log_ocsf("NET:OPEN", SV_SEV_INFO, "ALLOWED", "proxy_allowed", "a -> b:443", NULL, 0);
	char p[256];
	path_of("openshell", 0, "", p, sizeof(p));
	char *s = slurp(p, NULL);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(strstr(s, "Z INFO test: an info line k=\"v w\"\n"));
	ck_assert_ptr_nonnull(strstr(s, "Z OCSF NET:OPEN [INFO] ALLOWED a -> b:443\n"));
	ck_assert_ptr_null(strstr(s, "debug"));
	ck_assert_ptr_null(strstr(s, "{")); /* never the console's JSON */
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0644 & ~(unsigned)umask(022));
	free(s);
	/* Off by default: no OCSF file. */
	path_of("openshell-ocsf", 0, "", p, sizeof(p));
	ck_assert(!exists(p));
	sv_log_files_close();
}
END_TEST

START_TEST(cap_rotates_once_then_drops_and_says_so)
{
	mkdir_tmp();
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	const long long cap = 16 * 1024;
	ck_assert_int_eq(sv_log_files_open(g_dir, cap, NULL), 0);
	char pad[200];
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (int i = 0; i < 400; i++) /* ~100 KiB: well past two caps */
		sv_log_kv(SV_LOG_INFO, "test", "test_line", pad, NULL, 0);
	char p[256], p1[256];
	path_of("openshell", 0, "", p, sizeof(p));
	path_of("openshell", 0, ".1", p1, sizeof(p1));
	size_t n, n1;
	char *s = slurp(p, &n), *s1 = slurp(p1, &n1);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(s1);
	ck_assert_uint_le(n, (size_t)cap);
	ck_assert_uint_le(n1, (size_t)cap);
	ck_assert_uint_gt(n1, (size_t)cap / 2);
	ck_assert_ptr_null(strstr(s1, "daily cap"));
	/* The restarted file ends with the line that says so, then nothing more. */
	const char *last = strstr(s, "reached its daily cap");
	ck_assert_ptr_nonnull(last);
	ck_assert_ptr_nonnull(strstr(last, "max_bytes=16384 event=log_file_capped\n"));
	ck_assert_ptr_null(strchr(strchr(last, '\n') + 1, '\n'));
	/* Whole lines only, in both files. */
	for (char *f = s; f; f = f == s ? s1 : NULL) {
		for (char *l = f; *l; l = strchr(l, '\n') + 1) {
			size_t len = (size_t)(strchr(l, '\n') - l);
			const char *rest = l + 24; /* after the timestamp */
			bool pad_line = len == 24 + 12 + 199 && l[len - 1] == 'x' &&
					strncmp(rest, " INFO test: ", 12) == 0;
			bool note = strncmp(rest, " WARN supervisor: the log file reached", 38) == 0;
			ck_assert_msg(pad_line || note, "cut line: '%.*s'", (int)len, l);
		}
	}
	struct sv_log_stats st;
	sv_log_stats(&st);
	ck_assert_uint_gt(st.file_dropped[0], 200);
	/* No second rotation: .2 never exists, and .1 kept its lines. */
	path_of("openshell", 0, ".2", p1, sizeof(p1));
	ck_assert(!exists(p1));
	free(s);
	free(s1);
	sv_log_files_close();
}
END_TEST

START_TEST(days_beyond_the_last_seven_are_removed)
{
	mkdir_tmp();
	char d10[16], d7[16], d6[16], d8[16];
	day_name(-10, d10, sizeof(d10));
	day_name(-7, d7, sizeof(d7));
	day_name(-6, d6, sizeof(d6));
	day_name(-8, d8, sizeof(d8));
	char name[128];
	const char *gone[4], *kept[5];
	static char names[9][128];
	sv_fmt(names[0], 128, "openshell.%s.log", d10);
	sv_fmt(names[1], 128, "openshell.%s.log.1", d7);
	sv_fmt(names[2], 128, "openshell-ocsf.%s.log", d8);
	sv_fmt(names[3], 128, "openshell-ocsf.%s.log.1", d10);
	sv_fmt(names[4], 128, "openshell.%s.log", d6);
	sv_fmt(names[5], 128, "openshell-ocsf.%s.log.1", d6);
	sv_fmt(names[6], 128, "openshell.notes");
	sv_fmt(names[7], 128, "other.%s.log", d10);
	sv_fmt(names[8], 128, "openshell.%s.log.bak", d10);
	for (int i = 0; i < 4; i++)
		gone[i] = names[i];
	for (int i = 0; i < 5; i++)
		kept[i] = names[4 + i];
	for (int i = 0; i < 9; i++)
		touch(names[i]);
	ck_assert_int_eq(sv_log_files_open(g_dir, SV_LOG_FILE_MAX, NULL), 0);
	for (int i = 0; i < 4; i++) {
		sv_fmt(name, sizeof(name), "%s/%s", g_dir, gone[i]);
		ck_assert_msg(!exists(name), "%s was kept", gone[i]);
	}
	for (int i = 0; i < 5; i++) {
		sv_fmt(name, sizeof(name), "%s/%s", g_dir, kept[i]);
		ck_assert_msg(exists(name), "%s was removed", kept[i]);
	}
	sv_log_files_close();
}
END_TEST

START_TEST(missing_dir_or_symlinked_file_means_no_file)
{
	mkdir_tmp();
	struct sv_err err = {0};
	char missing[128];
	sv_fmt(missing, sizeof(missing), "%s/nope", g_dir);
	ck_assert_int_eq(sv_log_files_open(missing, SV_LOG_FILE_MAX, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "nope"));
	/* Today's name planted as a symlink: never followed. */
	char p[256], target[256];
	path_of("openshell", 0, "", p, sizeof(p));
	sv_fmt(target, sizeof(target), "%s/target", g_dir);
	ck_assert_int_eq(symlink(target, p), 0);
	ck_assert_int_eq(sv_log_files_open(g_dir, SV_LOG_FILE_MAX, &err), -ELOOP);
	sv_log_setup(SV_LOG_INFO, SV_LOG_TEXT);
	sv_log_kv(SV_LOG_INFO, "test", "test_line", "goes nowhere", NULL, 0);
	ck_assert(!exists(target));
	/* A FIFO never blocks the open. */
	unlink(p);
	ck_assert_int_eq(mkfifo(p, 0644), 0);
	ck_assert_int_lt(sv_log_files_open(g_dir, SV_LOG_FILE_MAX, &err), 0);
}
END_TEST

/* Flatten a JSON object into "a.b.c=value" lines (strings and unsigned numbers). */
static void flatten(struct sv_json *j, const char *prefix, char *out, size_t size, size_t *n)
{
	struct sv_err err = {0};
	ck_assert_msg(sv_json_object_begin(j, &err) == 0, "%s", err.msg);
	char *key;
	int r;
	while ((r = sv_json_object_next(j, &key, &err)) == 1) {
		char path[256];
		sv_fmt(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", key);
		free(key);
		enum sv_json_type t = sv_json_peek(j);
		if (t == SV_JSON_OBJECT) {
			flatten(j, path, out, size, n);
		} else if (t == SV_JSON_STRING) {
			char *v;
			ck_assert_int_eq(sv_json_string(j, &v, NULL, false, &err), 0);
			*n += sv_fmt(out + *n, size - *n, "%s=%s\n", path, v);
			free(v);
		} else if (t == SV_JSON_NUMBER) {
			uint64_t v;
			ck_assert_int_eq(sv_json_uint(j, &v, &err), 0);
			*n += sv_fmt(out + *n, size - *n, "%s=%llu\n", path, (unsigned long long)v);
		} else {
			ck_assert_int_eq(sv_json_skip(j, &err), 0);
		}
	}
	ck_assert_msg(r == 0, "%s", err.msg);
}

static void assert_has(const char *flat, const char *want)
{
	char w[256];
	sv_fmt(w, sizeof(w), "\n%s\n", want);
	ck_assert_msg(strstr(flat, w), "missing %s in\n%s", want, flat);
}

START_TEST(ocsf_jsonl_only_when_switched_on_one_object_per_record)
{
	mkdir_tmp();
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	ck_assert_int_eq(sv_log_files_open(g_dir, SV_LOG_FILE_MAX, NULL), 0);
	sv_log_ocsf("NET:OPEN", SV_SEV_MED, "DENIED", "proxy_denied", "before", NULL, 0);
	char p[256];
	path_of("openshell-ocsf", 0, "", p, sizeof(p));
	ck_assert(!exists(p));
	ck_assert(!sv_log_ocsf_json_enabled());

	sv_log_set_ocsf_json(true);
	sv_log_ocsf("NET:OPEN", SV_SEV_MED, "DENIED", "proxy_denied",
		    "/usr/bin/curl(42) -> example.com:443",
		    SV_KVS({"policy", "-"}, {"reason", "not \"allowed\""}, {"event", "dup"}));
	sv_log_ocsf("CONFIG:ENABLED", SV_SEV_INFO, "APPLIED", "landlock_prepared", "abi 6", NULL,
		    0);
	sv_log_ocsf("WEIRD:THING", SV_SEV_LOW, "NOTED", "other_event", "odd", NULL, 0);
	sv_log_kv(SV_LOG_WARN, "test", "test_line", "not an OCSF record", NULL, 0);
	sv_log_set_ocsf_json(false);
	sv_log_ocsf("NET:OPEN", SV_SEV_MED, "DENIED", "proxy_denied", "after", NULL, 0);

	char *s = slurp(p, NULL);
	ck_assert_ptr_nonnull(s);
	char *save = NULL;
	char *lines[8];
	int n = 0;
	for (char *l = strtok_r(s, "\n", &save); l && n < 8; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	ck_assert_int_eq(n, 3);
	static char flat[3][8192];
	for (int i = 0; i < n; i++) {
		struct sv_json j;
		sv_json_init(&j, "ocsf line", lines[i], strlen(lines[i]));
		size_t k = sv_fmt(flat[i], sizeof(flat[i]), "\n");
		flatten(&j, "", flat[i], sizeof(flat[i]), &k);
		ck_assert_int_eq(sv_json_end(&j, NULL), 0);
	}
	assert_has(flat[0], "class_uid=4001");
	assert_has(flat[0], "class_name=Network Activity");
	assert_has(flat[0], "category_uid=4");
	assert_has(flat[0], "activity_id=1");
	assert_has(flat[0], "activity_name=Open");
	assert_has(flat[0], "type_uid=400101");
	assert_has(flat[0], "severity_id=3");
	assert_has(flat[0], "severity=Medium");
	assert_has(flat[0], "action_id=2");
	assert_has(flat[0], "action=Denied");
	assert_has(flat[0], "disposition=Blocked");
	assert_has(flat[0], "status_id=2");
	assert_has(flat[0], "message=/usr/bin/curl(42) -> example.com:443");
	assert_has(flat[0], "metadata.version=1.8.0");
	assert_has(flat[0], "metadata.product.name=OpenShell Sandbox Supervisor");
	assert_has(flat[0], "metadata.product.vendor_name=OpenShell");
	assert_has(flat[0], "unmapped.event=proxy_denied");
	assert_has(flat[0], "unmapped.reason=not \"allowed\"");
	assert_has(flat[0], "unmapped.field_event=dup");
	ck_assert_ptr_nonnull(strstr(flat[0], "\ntime=1"));
	assert_has(flat[1], "class_uid=5019");
	assert_has(flat[1], "activity_id=1");
	assert_has(flat[1], "state_id=2");
	assert_has(flat[1], "status=Success");
	assert_has(flat[1], "severity_id=1");
	assert_has(flat[2], "class_uid=0");
	assert_has(flat[2], "activity_id=99");
	assert_has(flat[2], "type_uid=99");
	assert_has(flat[2], "unmapped.shorthand=WEIRD:THING");
	free(s);
	sv_log_files_close();
}
END_TEST

START_TEST(writer_thread_writes_after_attach_and_flushes_on_detach)
{
	mkdir_tmp();
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	ck_assert_int_eq(sv_log_files_open(g_dir, SV_LOG_FILE_MAX, NULL), 0);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	ck_assert_int_eq(sv_log_attach(&loop, NULL), 0);
	for (int i = 0; i < 2000; i++) {
		char n[16];
		sv_fmt(n, sizeof(n), "%d", i);
		sv_log_kv(SV_LOG_INFO, "test", "test_line", "threaded", SV_KVS({"n", n}));
	}
	sv_log_detach();
	sv_loop_close(&loop);
	char p[256];
	path_of("openshell", 0, "", p, sizeof(p));
	char *s = slurp(p, NULL);
	ck_assert_ptr_nonnull(s);
	size_t count = 0;
	for (const char *q = s; (q = strstr(q, "INFO test: threaded n=")); q++)
		count++;
	ck_assert_uint_eq(count, 2000);
	ck_assert_ptr_nonnull(strstr(s, "threaded n=1999\n"));
	free(s);
	sv_log_files_close();
}
END_TEST

START_TEST(forked_child_never_writes_the_files)
{
	mkdir_tmp();
	sv_log_setup(SV_LOG_WARN, SV_LOG_TEXT);
	ck_assert_int_eq(sv_log_files_open(g_dir, SV_LOG_FILE_MAX, NULL), 0);
	sv_log_set_ocsf_json(true);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		sv_log_kv(SV_LOG_WARN, "child", "test_line", "from the child", NULL, 0);
		sv_log_ocsf("FINDING:OPEN", SV_SEV_HIGH, "DEGRADED", "x", "child finding", NULL, 0);
		_exit(0);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	sv_log_kv(SV_LOG_WARN, "parent", "test_line", "from the parent", NULL, 0);
	char p[256];
	path_of("openshell", 0, "", p, sizeof(p));
	char *s = slurp(p, NULL);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(strstr(s, "from the child"));
	ck_assert_ptr_nonnull(strstr(s, "from the parent"));
	free(s);
	path_of("openshell-ocsf", 0, "", p, sizeof(p));
	ck_assert(!exists(p));
	sv_log_files_close();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("log_file");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 10);
	tcase_add_checked_fixture(tc, NULL, rm_tmp);
	tcase_add_test(tc, text_file_gets_info_and_up_in_text_whatever_the_console);
	tcase_add_test(tc, cap_rotates_once_then_drops_and_says_so);
	tcase_add_test(tc, days_beyond_the_last_seven_are_removed);
	tcase_add_test(tc, missing_dir_or_symlinked_file_means_no_file);
	tcase_add_test(tc, ocsf_jsonl_only_when_switched_on_one_object_per_record);
	tcase_add_test(tc, writer_thread_writes_after_attach_and_flushes_on_detach);
	tcase_add_test(tc, forked_child_never_writes_the_files);
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
