/* Unit tests for supervisor/isolation/fence.c: the plan (which paths are bound where, read-only
 * or not, which skeleton directories are made) and, as root, a real fence entered in a child.
 *
 * Plans are built over a scratch tree in /tmp with a symlink, a nested read_write directory and
 * a missing path. The namespace test needs root and mount namespaces; it is skipped otherwise
 * (a failure with CI=true).
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor/isolation/fence.h"

static char g_top[256];

static const char *at(const char *rel)
{
	static char buf[8][PATH_MAX];
	static int next;
	next = (next + 1) % 8;
	snprintf(buf[next], sizeof(buf[next]), "%s/%s", g_top, rel);
	return buf[next];
}

static void setup(void)
{
	snprintf(g_top, sizeof(g_top), "/tmp/test_fence.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_top));
	ck_assert_int_eq(mkdir(at("ro"), 0755), 0);
	ck_assert_int_eq(mkdir(at("ro/rw"), 0777), 0);
	ck_assert_int_eq(mkdir(at("ro/sub"), 0755), 0);
	ck_assert_int_eq(mkdir(at("rw"), 0777), 0);
	ck_assert_int_eq(mkdir(at("rw/ro"), 0755), 0);
	int fd = open(at("ro/file"), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(symlink("ro", at("link")), 0);
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_top);
	(void)system(cmd);
}

static const struct sv_fence_mount *find(const struct sv_fence_plan *p, const char *path)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->mounts[i].path, path))
			return &p->mounts[i];
	return NULL;
}

static bool has_skeleton(const struct sv_fence_plan *p, const char *dir)
{
	for (size_t i = 0; i < p->n_skeleton; i++)
		if (!strcmp(p->skeleton[i], dir))
			return true;
	return false;
}

START_TEST(plan_resolves_merges_nests_and_orders_parents_first)
{
	char ro_real[PATH_MAX], rw_real[PATH_MAX], top_real[PATH_MAX];
	ck_assert_ptr_nonnull(realpath(at("ro"), ro_real));
	ck_assert_ptr_nonnull(realpath(at("rw"), rw_real));
	ck_assert_ptr_nonnull(realpath(g_top, top_real));
	const char *ro[] = {at("link"), at("ro/sub"), at("rw/ro"), at("missing"), "/proc/self/net",
			    at("ro/file")};
	const char *rw[] = {at("ro/rw"), at("rw"), "/proc"};
	struct sv_fence_spec spec = {ro, 6, rw, 3, false, "/nonexistent-wd/agent"};
	struct sv_fence_plan p;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_fence_plan_build(&spec, &p, &err), 0);
	ck_assert_uint_eq(p.n_missing, 1);
	/* The symlink is bound at its target; ro/sub and ro/file add nothing to ro. */
	const struct sv_fence_mount *m = find(&p, ro_real);
	ck_assert_ptr_nonnull(m);
	ck_assert(!m->rw && m->dir && !m->proc);
	ck_assert_ptr_null(find(&p, at("link")));
	char sub[PATH_MAX + 8];
	snprintf(sub, sizeof(sub), "%s/sub", ro_real);
	ck_assert_ptr_null(find(&p, sub));
	snprintf(sub, sizeof(sub), "%s/file", ro_real);
	ck_assert_ptr_null(find(&p, sub));
	/* read_write below read_only widens it: kept, writable. */
	snprintf(sub, sizeof(sub), "%s/rw", ro_real);
	m = find(&p, sub);
	ck_assert_ptr_nonnull(m);
	ck_assert(m->rw);
	/* read_only below read_write is writable anyway (Landlock's union): not bound. */
	m = find(&p, rw_real);
	ck_assert(m && m->rw);
	snprintf(sub, sizeof(sub), "%s/ro", rw_real);
	ck_assert_ptr_null(find(&p, sub));
	/* Anything under /proc is a new procfs at /proc, writable because /proc is read_write. */
	m = find(&p, "/proc");
	ck_assert(m && m->proc && m->rw);
	/* Parents come before children. */
	for (size_t i = 1; i < p.n; i++)
		ck_assert_int_lt(strcmp(p.mounts[i - 1].path, p.mounts[i].path), 0);
	/* The skeleton: every ancestor not inside a bind, never a bound path itself. */
	ck_assert(has_skeleton(&p, "/"));
	ck_assert(has_skeleton(&p, top_real));
	ck_assert(!has_skeleton(&p, ro_real));
	/* A workdir no policy path shows gets an empty directory, so a child can start there. */
	ck_assert_str_eq(p.workdir_stub, "/nonexistent-wd/agent");
	ck_assert(has_skeleton(&p, "/nonexistent-wd"));
	sv_fence_plan_free(&p);
}
END_TEST

START_TEST(plan_rejects_a_relative_path_and_binds_root_as_is)
{
	const char *bad[] = {"relative/path"};
	struct sv_fence_spec spec = {bad, 1, NULL, 0, false, NULL};
	struct sv_fence_plan p;
	struct sv_err err = {0};
	ck_assert_int_eq(sv_fence_plan_build(&spec, &p, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "relative/path"));
	const char *root[] = {"/"};
	const char *rw[] = {at("rw")};
	struct sv_fence_spec spec2 = {root, 1, rw, 1, false, "/sandbox"};
	ck_assert_int_eq(sv_fence_plan_build(&spec2, &p, &err), 0);
	ck_assert_uint_eq(p.n, 2); /* "/" read-only, the read_write directory on top */
	ck_assert_str_eq(p.mounts[0].path, "/");
	ck_assert(!p.mounts[0].rw && p.mounts[1].rw);
	ck_assert_uint_eq(p.n_skeleton, 0);
	ck_assert_ptr_null(p.workdir_stub); /* "/" shows it */
	sv_fence_plan_free(&p);
}
END_TEST

/* In a child: enter the fence, then check what exists and what is writable. */
static int fenced_view(const struct sv_fence *f)
{
	struct sv_err err = {0};
	if (sv_fence_enter(f, &err) < 0)
		return 10;
	struct stat st;
	if (stat(at("ro/file"), &st) < 0)
		return 11; /* a read_only path is there */
	int fd = open(at("ro/file"), O_WRONLY | O_CLOEXEC);
	if (fd >= 0 || errno != EROFS)
		return 12; /* and read-only although mode 0666 and we are root */
	fd = open(at("ro/rw/new"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return 13; /* the read_write path inside it is writable */
	close(fd);
	if (stat(at("rw"), &st) == 0 || errno != ENOENT)
		return 14; /* a path in neither list does not exist */
	if (stat("/etc/passwd", &st) == 0 || errno != ENOENT)
		return 15;
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, "/"))
		return 16; /* the child starts at the fence's root */
	return 0;
}

START_TEST(fence_as_root_shows_only_policy_paths_read_only_where_listed)
{
	if (geteuid() != 0) {
		const char *ci = getenv("CI");
		ck_assert_msg(!(ci && !strcmp(ci, "true")), "needs root (CI=true)");
		fprintf(stderr, "SKIP %s: needs root\n", __func__);
		return;
	}
	const char *ro[] = {at("ro")};
	const char *rw[] = {at("ro/rw")};
	struct sv_fence_spec spec = {ro, 1, rw, 1, true, NULL};
	struct sv_fence f;
	struct sv_err err = {0};
	ck_assert_msg(sv_fence_prepare(&f, &spec, &err) == 0, "%s", err.msg);
	ck_assert_int_ge(f.mntns_fd, 0);
	ck_assert_int_ge(f.root_fd, 0);
	ck_assert(fcntl(f.mntns_fd, F_GETFD) & FD_CLOEXEC);
	/* The fence's root is a tmpfs on a staging directory, which is how our /proc names it. */
	ck_assert_msg(f.root_seen[0] == '/' && strlen(f.root_seen) > 1, "root_seen %s",
		      f.root_seen);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fenced_view(&f));
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fenced view check %d",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	/* Nothing was mounted here: the file made through the fence is in the real tree. */
	struct stat st;
	ck_assert_int_eq(stat(at("ro/rw/new"), &st), 0);
	sv_fence_close(&f);
	ck_assert_int_eq(f.mntns_fd, -1);
}
END_TEST

static Suite *fence_suite(void)
{
	Suite *s = suite_create("fence");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, plan_resolves_merges_nests_and_orders_parents_first);
	tcase_add_test(tc, plan_rejects_a_relative_path_and_binds_root_as_is);
	tcase_add_test(tc, fence_as_root_shows_only_policy_paths_read_only_where_listed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fence_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
