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
#include <time.h>
#include <unistd.h>

#include "netns/proxy/px_ident.h"
#include "netns/proxy/px_tofu.h"
#include "supervisor/policy/policy.h"

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

START_TEST(full_cache_evicts_the_least_recently_used_pin_and_never_refuses_a_new_path)
{
	/* Issue 17: a full cache used to refuse every new path until restart. */
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
	ck_assert_int_eq(check_path(t, a, NULL, &err), 0); /* a is now the most recent */
	ck_assert_msg(check_path(t, c, NULL, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(stats(t).entries, 2);
	ck_assert_uint_eq(stats(t).evictions, 1);
	uint64_t h = stats(t).hashes;
	ck_assert_int_eq(check_path(t, a, NULL, &err), 0); /* still pinned: no rehash */
	ck_assert_uint_eq(stats(t).hashes, h);
	ck_assert_int_eq(check_path(t, b, NULL, &err), 0); /* b was the one dropped */
	ck_assert_uint_eq(stats(t).hashes, h + 1);
	px_tofu_free(t);
}
END_TEST

START_TEST(literally_named_pins_are_never_evicted_and_do_not_count_against_the_bound)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(1, &t), 0);
	char k[128], g[128], name[32];
	struct sv_err err = {0};
	path_in_dir(k, sizeof(k), "kept");
	write_file(k, "kept");
	int fd = open(k, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(px_tofu_check_fd_as(t, fd, k, PX_TOFU_KEEP, NULL, &err), 0);
	close(fd);
	for (int i = 0; i < 50; i++) { /* the agent's many glob-admitted paths */
		snprintf(name, sizeof(name), "g%d", i);
		path_in_dir(g, sizeof(g), name);
		write_file(g, name);
		ck_assert_int_eq(check_path(t, g, NULL, &err), 0);
	}
	ck_assert_uint_eq(stats(t).entries, 2);
	ck_assert_uint_eq(stats(t).kept, 1);
	ck_assert_uint_eq(stats(t).evictions, 49);
	/* The kept pin still holds: replacing the file is an integrity failure, not a new pin. */
	rewrite_in_place(k, "KEPT", 1000000);
	fd = open(k, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(px_tofu_check_fd_as(t, fd, k, PX_TOFU_KEEP, NULL, &err), -EPERM);
	close(fd);
	px_tofu_free(t);
}
END_TEST

START_TEST(an_evictable_pin_named_later_by_the_policy_is_kept)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(1, &t), 0);
	char a[128], b[128];
	struct sv_err err = {0};
	path_in_dir(a, sizeof(a), "a");
	path_in_dir(b, sizeof(b), "b");
	write_file(a, "a");
	write_file(b, "b");
	ck_assert_int_eq(check_path(t, a, NULL, &err), 0);
	int fd = open(a, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(px_tofu_check_fd_as(t, fd, a, PX_TOFU_KEEP, NULL, &err), 0);
	close(fd);
	ck_assert_uint_eq(stats(t).kept, 1);
	ck_assert_int_eq(check_path(t, b, NULL, &err), 0);
	ck_assert_uint_eq(stats(t).evictions, 0);
	ck_assert_uint_eq(stats(t).entries, 2);
	px_tofu_free(t);
}
END_TEST

START_TEST(skipped_binaries_are_neither_read_nor_pinned)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	struct sv_err err = {0};
	unsigned char d[PX_SHA256_LEN];
	memset(d, 0xaa, sizeof(d));
	ck_assert_int_eq(px_tofu_check_fd_as(t, -1, "/nonexistent/tool", PX_TOFU_SKIP, d, &err), 0);
	ck_assert_uint_eq(stats(t).hashes, 0);
	ck_assert_uint_eq(stats(t).entries, 0);
	ck_assert_uint_eq(stats(t).skipped, 1);
	ck_assert_uint_eq(d[0], 0);
	px_tofu_free(t);
}
END_TEST

/* A sparse file of @mib MiB (hashing it reads zero pages: CPU only). */
static void sparse_file(const char *path, unsigned long long mib)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)(mib << 20)), 0);
	ck_assert_int_eq(close(fd), 0);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(a_file_over_the_hash_cap_is_refused_unread)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	char p[128];
	struct sv_err err = {0};
	path_in_dir(p, sizeof(p), "huge");
	sparse_file(p, (PX_TOFU_HASH_MAX >> 20) + 1);
	double t0 = now_s();
	ck_assert_int_eq(check_path(t, p, NULL, &err), -EFBIG);
	ck_assert_double_lt(now_s() - t0, 0.5);
	ck_assert_uint_eq(stats(t).hashes, 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "larger than the 1024 MiB"));
	px_tofu_free(t);
}
END_TEST

struct lane_arg {
	struct px_tofu *t;
	const char *path;
	int rc;
	unsigned char d[PX_SHA256_LEN];
};

static void *lane_one(void *arg)
{
	struct lane_arg *a = arg;
	int fd = open(a->path, O_RDONLY | O_CLOEXEC);
	a->rc = fd < 0 ? -errno : px_tofu_check_fd(a->t, fd, a->path, a->d, NULL);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Start a check of @a->path on a thread and return once the large-file lane is taken. */
static pthread_t lane_start(struct lane_arg *a)
{
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, lane_one, a), 0);
	for (int i = 0; i < 2000 && !stats(a->t).lane_busy; i++)
		usleep(1000);
	ck_assert_msg(stats(a->t).lane_busy, "the large file never entered the lane");
	return th;
}

START_TEST(a_large_hash_never_delays_a_small_file_and_a_second_large_one_is_refused_at_once)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	char big[128], big2[128], small[128];
	struct sv_err err = {0};
	path_in_dir(big, sizeof(big), "big");
	path_in_dir(big2, sizeof(big2), "big2");
	path_in_dir(small, sizeof(small), "small");
	sparse_file(big, 1000); /* about a second or more of hashing */
	sparse_file(big2, 100);
	write_file(small, "small");
	struct lane_arg a = {.t = t, .path = big};
	pthread_t th = lane_start(&a);
	double t0 = now_s();
	ck_assert_int_eq(check_path(t, small, NULL, &err), 0);
	ck_assert_int_eq(check_path(t, big2, NULL, &err), -EBUSY);
	ck_assert_double_lt(now_s() - t0, 1.0);
	ck_assert_ptr_nonnull(strstr(err.msg, "another large executable is being hashed"));
	ck_assert(stats(t).lane_busy); /* all that happened while the big hash ran */
	pthread_join(th, NULL);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(check_path(t, big2, NULL, &err), 0); /* the lane is free again */
	ck_assert_uint_eq(stats(t).busy, 1);
	px_tofu_free(t);
}
END_TEST

START_TEST(one_check_of_the_same_large_file_waits_for_its_hash_instead_of_hashing_again)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	char big[128];
	path_in_dir(big, sizeof(big), "big");
	sparse_file(big, 1000); /* long enough for b to queue behind it */
	struct lane_arg a = {.t = t, .path = big}, b = {.t = t, .path = big},
			c = {.t = t, .path = big};
	pthread_t ta = lane_start(&a), tb;
	ck_assert_int_eq(pthread_create(&tb, NULL, lane_one, &b), 0);
	/* b waits in the lane (the one waiter allowed); a busy machine may start it late */
	for (int i = 0; i < 20000 && stats(t).lane_waiters < 1 && stats(t).lane_busy; i++)
		usleep(1000);
	ck_assert_msg(stats(t).lane_waiters == 1, "the second check never waited in the lane");
	lane_one(&c);	/* a third one is refused at once */
	ck_assert_int_eq(c.rc, -EBUSY);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(b.rc, 0);
	ck_assert_mem_eq(a.d, b.d, PX_SHA256_LEN);
	ck_assert_uint_eq(stats(t).hashes, 1);
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

START_TEST(verify_ident_policy_hashes_only_binaries_a_rule_could_allow)
{
	struct px_tofu *t;
	ck_assert_int_eq(px_tofu_new(0, &t), 0);
	char tool[128], text[512];
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

	/* A policy naming neither: nothing is read. */
	struct pol_policy pol;
	pol_init(&pol);
	snprintf(text, sizeof(text), "[network.a]\nendpoint = example.com:443\nbinary = /opt/x\n");
	ck_assert_int_eq(pol_load_buffer("t.ini", text, strlen(text), &pol, &err), 0);
	ck_assert_msg(px_tofu_verify_ident_policy(t, id, &pol, false, d, &err) == 0, "%s",
		      err.msg);
	ck_assert_uint_eq(stats(t).hashes, 0);
	ck_assert_uint_eq(stats(t).entries, 0);
	ck_assert_uint_eq(stats(t).skipped, 2);
	pol_free(&pol);

	/* The tool named literally: pinned for good; the test binary (by glob): evictable. */
	pol_init(&pol);
	snprintf(text, sizeof(text),
		 "[network.a]\nendpoint = example.com:443\nbinary = %s\n"
		 "[network.b]\nendpoint = example.org:443\nbinary = /**\n",
		 tool);
	ck_assert_int_eq(pol_load_buffer("t.ini", text, strlen(text), &pol, &err), 0);
	ck_assert_msg(px_tofu_verify_ident_policy(t, id, &pol, false, d, &err) == 0, "%s",
		      err.msg);
	ck_assert_uint_eq(stats(t).hashes, 2);
	ck_assert_uint_eq(stats(t).entries, 2);
	ck_assert_uint_eq(stats(t).kept, 1);

	/* Binary identity relaxed: nothing needs pinning. */
	ck_assert_int_eq(px_tofu_verify_ident_policy(t, id, &pol, true, d, &err), 0);
	ck_assert_uint_eq(stats(t).hashes, 2);
	ck_assert_uint_eq(stats(t).skipped, 4);
	/* No policy (deny all): nothing either. */
	ck_assert_int_eq(px_tofu_verify_ident_policy(t, id, NULL, false, d, &err), 0);
	ck_assert_uint_eq(stats(t).skipped, 6);
	pol_free(&pol);
	free(id);
	px_tofu_free(t);
}
END_TEST

static Suite *px_tofu_suite(void)
{
	Suite *s = suite_create("px_tofu");
	TCase *tc = tcase_create("tofu");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, first_check_pins_the_files_sha256);
	tcase_add_test(tc, unchanged_fingerprint_is_answered_without_rehashing);
	tcase_add_test(tc, in_place_modification_fails_integrity_and_the_pin_is_never_reset);
	tcase_add_test(tc, same_content_with_a_new_mtime_is_rehashed_and_allowed);
	tcase_add_test(tc, replacement_by_rename_is_an_integrity_failure);
	tcase_add_test(tc,
		       full_cache_evicts_the_least_recently_used_pin_and_never_refuses_a_new_path);
	tcase_add_test(tc,
		       literally_named_pins_are_never_evicted_and_do_not_count_against_the_bound);
	tcase_add_test(tc, an_evictable_pin_named_later_by_the_policy_is_kept);
	tcase_add_test(tc, skipped_binaries_are_neither_read_nor_pinned);
	tcase_add_test(tc, a_file_over_the_hash_cap_is_refused_unread);
	tcase_add_test(
	    tc, a_large_hash_never_delays_a_small_file_and_a_second_large_one_is_refused_at_once);
	tcase_add_test(tc,
		       one_check_of_the_same_large_file_waits_for_its_hash_instead_of_hashing_again);
	tcase_add_test(tc, verify_ident_policy_hashes_only_binaries_a_rule_could_allow);
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
