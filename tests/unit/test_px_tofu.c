/* Unit tests for the proxy's TOFU binary pinning (px_tofu: contract §8 "TOFU", §13 fix 22).
 *
 * Files in a temporary directory stand for executables; the by-PID tests exec a copy of
 * /bin/sleep. The hash counter of px_tofu_stats_get() shows when a file was really read.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns/proxy/px_ident.h"
#include "netns/proxy/px_tofu.h"

/* SHA-256 test vectors. */
#define HELLO_SHA "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char g_dir[64];
static pid_t g_kids[4];
static int g_nkids;

static void setup(void)
{
	snprintf(g_dir, sizeof(g_dir), "/tmp/px-tofu-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void teardown(void)
{
	for (int i = 0; i < g_nkids; i++) {
		kill(g_kids[i], SIGKILL);
		waitpid(g_kids[i], NULL, 0);
	}
	g_nkids = 0;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void path_in_dir(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", g_dir, name);
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	ck_assert_int_ge(fd, 0);
	size_t len = strlen(data);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

/* Overwrite in place (same inode, same size) and move mtime to @sec, so the fingerprint changes
 * even where timestamps are coarse. */
static void rewrite_in_place(const char *path, const char *data, time_t sec)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	size_t len = strlen(data);
	ck_assert_int_eq(pwrite(fd, data, len, 0), (ssize_t)len);
	struct timespec ts[2] = {{sec, 0}, {sec, 0}};
	ck_assert_int_eq(futimens(fd, ts), 0);
	ck_assert_int_eq(close(fd), 0);
}

static int check_path(struct px_tofu *t, const char *path, unsigned char *digest,
		      struct sv_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	int r = px_tofu_check_fd(t, fd, path, digest, err);
	close(fd);
	return r;
}

static struct px_tofu_stats stats(struct px_tofu *t)
{
	struct px_tofu_stats s;
	px_tofu_stats_get(t, &s);
	return s;
}

static void copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(in, 0);
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	ck_assert_int_ge(out, 0);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	ck_assert_int_eq(close(out), 0);
}

/* Fork and exec @path as "sleep 30"; return once exec happened. */
static pid_t spawn_exec(const char *path)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *const argv[] = {(char *)"sleep", (char *)"30", NULL};
		for (int i = 0; i < 50; i++) {
			execv(path, argv);
			if (errno != ETXTBSY)
				break;
			usleep(20000);
		}
		int e = errno;
		(void)!write(p[1], &e, sizeof(e));
		_exit(127);
	}
	close(p[1]);
	int e = 0;
	ssize_t n = read(p[0], &e, sizeof(e));
	close(p[0]);
	ck_assert_msg(n == 0, "exec %s failed: %s", path, strerror(e));
	ck_assert_int_lt(g_nkids, 4);
	g_kids[g_nkids++] = pid;
	return pid;
}

static void hex(const unsigned char *d, char out[65])
{
	px_sha256_hex(d, out);
}

/* ------------------------------------------------------------------ TOFU */

START_TEST(first_check_pins_the_files_sha256)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	char p[128], h[65];
	unsigned char d[PX_SHA256_LEN];
	struct sv_err err = {0};
	path_in_dir(p, sizeof(p), "hello");
	write_file(p, "hello world");
	ck_assert_msg(check_path(t, p, d, &err) == 0, "%s", err.msg);
	hex(d, h);
	ck_assert_str_eq(h, HELLO_SHA);
	path_in_dir(p, sizeof(p), "empty");
	write_file(p, "");
	ck_assert_msg(check_path(t, p, d, &err) == 0, "%s", err.msg);
	hex(d, h);
	ck_assert_str_eq(h, EMPTY_SHA);
	ck_assert_uint_eq(stats(t).entries, 2);
	ck_assert_uint_eq(stats(t).hashes, 2);
	px_tofu_free(t);
}
END_TEST

START_TEST(unchanged_fingerprint_is_answered_without_rehashing)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	char p[128], h[65];
	unsigned char d[PX_SHA256_LEN];
	struct sv_err err = {0};
	path_in_dir(p, sizeof(p), "tool");
	write_file(p, "hello world");
	for (int i = 0; i < 5; i++) {
		memset(d, 0, sizeof(d));
		ck_assert_msg(check_path(t, p, d, &err) == 0, "%s", err.msg);
		hex(d, h);
		ck_assert_str_eq(h, HELLO_SHA); /* the cached verdict carries the pinned hash */
	}
	ck_assert_uint_eq(stats(t).hashes, 1);
	ck_assert_uint_eq(stats(t).hits, 4);
	px_tofu_free(t);
}
END_TEST

START_TEST(in_place_modification_fails_integrity_and_the_pin_is_never_reset)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	char p[128], want[256];
	struct sv_err err = {0};
	path_in_dir(p, sizeof(p), "tool");
	write_file(p, "hello world");
	ck_assert_int_eq(check_path(t, p, NULL, &err), 0);
	rewrite_in_place(p, "HELLO world", 1000000);
	ck_assert_int_eq(check_path(t, p, NULL, &err), -EPERM);
	snprintf(want, sizeof(want), "Binary integrity violation: %s executable changed", p);
	ck_assert_str_eq(err.msg, want);
	ck_assert_uint_eq(stats(t).hashes, 2);
	/* Still denied on the next try (no new pin), and the original content is still good. */
	ck_assert_int_eq(check_path(t, p, NULL, &err), -EPERM);
	rewrite_in_place(p, "hello world", 2000000);
	ck_assert_int_eq(check_path(t, p, NULL, &err), 0);
	rewrite_in_place(p, "HELLO world", 3000000);
	ck_assert_int_eq(check_path(t, p, NULL, &err), -EPERM);
	ck_assert_uint_eq(stats(t).entries, 1);
	px_tofu_free(t);
}
END_TEST

START_TEST(same_content_with_a_new_mtime_is_rehashed_and_allowed)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	char p[128];
	struct sv_err err = {0};
	path_in_dir(p, sizeof(p), "tool");
	write_file(p, "hello world");
	ck_assert_int_eq(check_path(t, p, NULL, &err), 0);
	rewrite_in_place(p, "hello world", 1000000);
	ck_assert_msg(check_path(t, p, NULL, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(stats(t).hashes, 2);
	/* the new fingerprint is remembered: no third hash */
	ck_assert_int_eq(check_path(t, p, NULL, &err), 0);
	ck_assert_uint_eq(stats(t).hashes, 2);
	px_tofu_free(t);
}
END_TEST

START_TEST(replacement_by_rename_is_an_integrity_failure)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	char p[128], q[128];
	struct sv_err err = {0};
	path_in_dir(p, sizeof(p), "tool");
	path_in_dir(q, sizeof(q), "tool.new");
	write_file(p, "hello world");
	ck_assert_int_eq(check_path(t, p, NULL, &err), 0);
	write_file(q, "hello world!");
	ck_assert_int_eq(rename(q, p), 0);
	ck_assert_int_eq(check_path(t, p, NULL, &err), -EPERM);
	px_tofu_free(t);
}
END_TEST

START_TEST(full_cache_refuses_new_paths_but_keeps_serving_pinned_ones)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(2, &t), 0);
	char a[128], b[128], c[128];
	struct sv_err err = {0};
	path_in_dir(a, sizeof(a), "a");
	path_in_dir(b, sizeof(b), "b");
	path_in_dir(c, sizeof(c), "c");
	write_file(a, "a");
	write_file(b, "b");
	write_file(c, "c");
	ck_assert_int_eq(check_path(t, a, NULL, &err), 0);
	ck_assert_int_eq(check_path(t, b, NULL, &err), 0);
	ck_assert_int_eq(check_path(t, c, NULL, &err), -ENOSPC);
	ck_assert_str_eq(err.msg,
			 "Binary identity cache capacity exhausted (maximum 2 pinned paths)");
	ck_assert_uint_eq(stats(t).hashes, 2); /* refused before reading c */
	ck_assert_int_eq(check_path(t, a, NULL, &err), 0);
	rewrite_in_place(b, "b", 1000000); /* a known path may still be rehashed */
	ck_assert_int_eq(check_path(t, b, NULL, &err), 0);
	ck_assert_uint_eq(stats(t).entries, 2);
	px_tofu_free(t);
}
END_TEST

START_TEST(non_regular_files_and_relative_paths_are_refused)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	struct sv_err err = {0};
	int fd = open(g_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(px_tofu_check_fd(t, fd, g_dir, NULL, &err), -EINVAL);
	ck_assert_int_eq(px_tofu_check_fd(t, fd, "relative/tool", NULL, &err), -EINVAL);
	close(fd);
	ck_assert_uint_eq(stats(t).entries, 0);
	px_tofu_free(t);
}
END_TEST

struct race {
	struct px_tofu *t;
	const char *path;
	int rc;
	unsigned char d[PX_SHA256_LEN];
};

static void *race_one(void *arg)
{
	struct race *r = arg;
	int fd = open(r->path, O_RDONLY | O_CLOEXEC);
	r->rc = fd < 0 ? -errno : px_tofu_check_fd(r->t, fd, r->path, r->d, NULL);
	if (fd >= 0)
		close(fd);
	return NULL;
}

START_TEST(concurrent_first_checks_pin_one_entry)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	char p[128], h[65];
	path_in_dir(p, sizeof(p), "tool");
	write_file(p, "hello world");
	struct race r[8];
	pthread_t th[8];
	for (int i = 0; i < 8; i++) {
		r[i] = (struct race){.t = t, .path = p};
		ck_assert_int_eq(pthread_create(&th[i], NULL, race_one, &r[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(r[i].rc, 0);
		hex(r[i].d, h);
		ck_assert_str_eq(h, HELLO_SHA);
	}
	ck_assert_uint_eq(stats(t).entries, 1);
	px_tofu_free(t);
}
END_TEST

START_TEST(by_pid_hashes_the_running_image_not_the_file_now_at_the_path)
{
	struct px_tofu *t, *ref;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	ck_assert_int_eq(px_tofu_new(0, &ref), 0);
	char tool[128], other[128];
	unsigned char d[PX_SHA256_LEN], want[PX_SHA256_LEN];
	struct sv_err err = {0};
	path_in_dir(tool, sizeof(tool), "tool");
	path_in_dir(other, sizeof(other), "other");
	copy_file("/bin/sleep", tool);
	ck_assert_int_eq(check_path(ref, tool, want, &err), 0);
	pid_t old = spawn_exec(tool);
	ck_assert_msg(px_tofu_check(t, old, tool, d, &err) == 0, "%s", err.msg);
	ck_assert_mem_eq(d, want, PX_SHA256_LEN);

	/* Replace the file at the path: the old process still runs, and is still trusted. */
	copy_file("/bin/sleep", other);
	int fd = open(other, O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "!", 1), 1); /* other bytes, still a working sleep */
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(rename(other, tool), 0);
	ck_assert_msg(px_tofu_check(t, old, tool, d, &err) == 0, "%s", err.msg);
	ck_assert_mem_eq(d, want, PX_SHA256_LEN);
	/* The unlink changed the old inode's ctime (link count): one rehash, same bytes. */
	ck_assert_uint_eq(stats(t).hashes, 2);
	ck_assert_int_eq(px_tofu_check(t, old, tool, d, &err), 0);
	ck_assert_uint_eq(stats(t).hashes, 2);

	/* A process started from the replacement runs different bytes under the pinned name. */
	pid_t fresh = spawn_exec(tool);
	ck_assert_int_eq(px_tofu_check(t, fresh, tool, d, &err), -EPERM);
	px_tofu_free(t);
	px_tofu_free(ref);
}
END_TEST

static void ident_of(pid_t pid, struct px_ident_bin *b)
{
	struct sv_err err = {0};
	ck_assert_msg(px_ident_exe_read(pid, b, &err) == 0, "%s", err.msg);
}

START_TEST(verify_ident_checks_exe_then_ancestors_with_upstream_reasons)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	char tool[128], want[2 * PX_IDENT_PATH_MAX + 128];
	path_in_dir(tool, sizeof(tool), "tool");
	copy_file("/bin/sleep", tool);
	pid_t kid = spawn_exec(tool);
	struct px_ident *id = calloc(1, sizeof(*id));
	ck_assert_ptr_nonnull(id);
	ident_of(kid, &id->exe);
	ident_of(getpid(), &id->ancestors[0]);
	id->n_ancestors = 1;
	struct sv_err err = {0};
	unsigned char d[PX_SHA256_LEN];
	ck_assert_msg(px_tofu_verify_ident(t, id, d, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(stats(t).entries, 2);

	/* A pin of other bytes under the ancestor's name: the ancestor fails. */
	struct px_tofu *t2;
	ck_assert_int_eq(px_tofu_new(0, &t2), 0);
	char decoy[128];
	path_in_dir(decoy, sizeof(decoy), "decoy");
	write_file(decoy, "not the test binary");
	int fd = open(decoy, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(px_tofu_check_fd(t2, fd, id->ancestors[0].path, NULL, &err), 0);
	ck_assert_int_eq(px_tofu_verify_ident(t2, id, d, &err), -EPERM);
	snprintf(want, sizeof(want),
		 "ancestor integrity check failed for %s: Binary integrity violation: %s "
		 "executable changed",
		 id->ancestors[0].path, id->ancestors[0].path);
	ck_assert_str_eq(err.msg, want);

	/* ... and the same for the executable itself. */
	struct px_tofu *t3;
	ck_assert_int_eq(px_tofu_new(0, &t3), 0);
	ck_assert_int_eq(px_tofu_check_fd(t3, fd, tool, NULL, &err), 0);
	ck_assert_int_eq(px_tofu_verify_ident(t3, id, d, &err), -EPERM);
	snprintf(want, sizeof(want),
		 "binary integrity check failed: Binary integrity violation: %s executable changed",
		 tool);
	ck_assert_str_eq(err.msg, want);
	close(fd);

	/* A process that no longer runs the inode px_ident saw is refused, not hashed. */
	id->exe.ino ^= 1;
	ck_assert_int_eq(px_tofu_verify_ident(t, id, d, &err), -ESTALE);
	free(id);
	px_tofu_free(t);
	px_tofu_free(t2);
	px_tofu_free(t3);
}
END_TEST

static Suite *px_tofu_suite(void)
{
	Suite *s = suite_create("px_tofu");
	TCase *tc = tcase_create("tofu");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, first_check_pins_the_files_sha256);
	tcase_add_test(tc, unchanged_fingerprint_is_answered_without_rehashing);
	tcase_add_test(tc, in_place_modification_fails_integrity_and_the_pin_is_never_reset);
	tcase_add_test(tc, same_content_with_a_new_mtime_is_rehashed_and_allowed);
	tcase_add_test(tc, replacement_by_rename_is_an_integrity_failure);
	tcase_add_test(tc, full_cache_refuses_new_paths_but_keeps_serving_pinned_ones);
	tcase_add_test(tc, non_regular_files_and_relative_paths_are_refused);
	tcase_add_test(tc, concurrent_first_checks_pin_one_entry);
	tcase_add_test(tc, by_pid_hashes_the_running_image_not_the_file_now_at_the_path);
	tcase_add_test(tc, verify_ident_checks_exe_then_ancestors_with_upstream_reasons);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(px_tofu_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
