/* Unit tests for --self-test: the probe runner (timeouts, crashes, isolation of the caller), the
 * report formats, the cgroup pids walk, and a full collection on this machine that must leave
 * the caller exactly as it was. Probes that need root report "unavailable" without it, which
 * the collection test accepts; nothing here is skipped.
 */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "landlock/landlock.h"
#include "supervisor/json.h"
#include "supervisor/selftest/selftest.h"

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the runner ------------------------------------------------------------------------- */

struct nnp_out {
	int nnp;
	pid_t pid;
};

static void set_nnp(void *ctx, void *out)
{
	(void)ctx;
	struct nnp_out *o = out;
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	o->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	o->pid = getpid();
}

START_TEST(fork_probe_returns_the_childs_report_and_leaves_the_caller_alone)
{
	ck_assert_int_eq(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
	struct nnp_out o = {-1, -1};
	struct sv_err err = {0};
	ck_assert_int_eq(sv_selftest_fork_probe(set_nnp, NULL, &o, sizeof(o), 2000, &err), 0);
	ck_assert_int_eq(o.nnp, 1);
	ck_assert_int_ne(o.pid, getpid());
	ck_assert_int_eq(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1); /* the child was reaped */
}
END_TEST

/* Forks a grandchild that sleeps, tells the test its pid, then hangs itself. */
static void hang_with_grandchild(void *ctx, void *out)
{
	(void)out;
	int fd = *(int *)ctx;
	pid_t g = fork();
	if (g == 0) {
		pause();
		_exit(0);
	}
	(void)sv_write_all(fd, &g, sizeof(g));
	pause();
}

START_TEST(fork_probe_kills_a_hung_probe_and_its_whole_group_after_the_timeout)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0); /* adopt the grandchild */
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	char out[16];
	struct sv_err err = {0};
	long t0 = now_ms();
	int rc = sv_selftest_fork_probe(hang_with_grandchild, &p[1], out, sizeof(out), 300, &err);
	long took = now_ms() - t0;
	ck_assert_int_eq(rc, -ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(err.msg, "300 ms"));
	ck_assert_int_ge(took, 290);
	ck_assert_int_lt(took, 2000);
	pid_t g = -1;
	ck_assert_int_eq(read(p[0], &g, sizeof(g)), (ssize_t)sizeof(g));
	int status = 0;
	ck_assert_int_eq(waitpid(g, &status, 0), g); /* killed with the group, not left running */
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}
END_TEST

static void die_by_signal(void *ctx, void *out)
{
	(void)ctx;
	(void)out;
	raise(SIGKILL);
}

static void exit_silently(void *ctx, void *out)
{
	(void)ctx;
	(void)out;
	_exit(3);
}

START_TEST(fork_probe_reports_a_child_that_dies_or_exits_without_a_report)
{
	char out[64];
	struct sv_err err = {0};
	long t0 = now_ms();
	ck_assert_int_eq(sv_selftest_fork_probe(die_by_signal, NULL, out, sizeof(out), 5000, &err),
			 -EPROTO);
	ck_assert_ptr_nonnull(strstr(err.msg, "signal 9"));
	ck_assert_int_eq(sv_selftest_fork_probe(exit_silently, NULL, out, sizeof(out), 5000, &err),
			 -EPROTO);
	ck_assert_ptr_nonnull(strstr(err.msg, "status 3"));
	ck_assert_int_lt(now_ms() - t0, 2000); /* noticed at once, not at the timeout */
}
END_TEST

/* ---- formats ------------------------------------------------------------------------------ */

static void add(struct sv_selftest_report *r, const char *name, enum sv_selftest_status s,
		enum sv_selftest_impact i, const char *reason)
{
	struct sv_selftest_layer *l = &r->layers[r->n++];
	snprintf(l->layer, sizeof(l->layer), "%s", name);
	l->status = s;
	l->impact = i;
	snprintf(l->reason, sizeof(l->reason), "%s", reason);
	snprintf(l->best_effort, sizeof(l->best_effort), "be-%s", name);
	snprintf(l->hard_requirement, sizeof(l->hard_requirement), "hard-%s", name);
}

static void sample(struct sv_selftest_report *r)
{
	memset(r, 0, sizeof(*r));
	add(r, "a", SV_SELFTEST_OK, SV_SELFTEST_NONE, "fine");
	add(r, "longer_layer", SV_SELFTEST_UNAVAILABLE, SV_SELFTEST_FATAL,
	    "EPERM: quote \" back\\slash ctl\x01 end");
	add(r, "c", SV_SELFTEST_DEGRADED, SV_SELFTEST_WEAKER, "a much longer reason than the rest");
	r->exit = sv_selftest_exit_status(r);
}

START_TEST(exit_status_is_the_worst_impact)
{
	struct sv_selftest_report r;
	sample(&r);
	ck_assert_int_eq(sv_selftest_exit_status(&r), 2);
	r.layers[1].impact = SV_SELFTEST_NONE;
	ck_assert_int_eq(sv_selftest_exit_status(&r), 1);
	r.layers[2].impact = SV_SELFTEST_NONE;
	ck_assert_int_eq(sv_selftest_exit_status(&r), 0);
}
END_TEST

START_TEST(text_report_aligns_columns_and_states_the_exit)
{
	struct sv_selftest_report r;
	sample(&r);
	char buf[4096];
	size_t n = sv_selftest_format_text(&r, buf, sizeof(buf));
	ck_assert_uint_eq(n, strlen(buf));
	long col_status = -1, col_be = -1;
	int lines = 0;
	for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
		*nl = '\0';
		if (line[0] == '#') {
			ck_assert_str_eq(line, "# exit 2: a sandbox cannot start here because of: "
					       "longer_layer");
			continue;
		}
		const char *st = strstr(line, "ok ");
		if (!st)
			st = strstr(line, "degraded");
		if (!st)
			st = strstr(line, "unavailable");
		const char *be = strstr(line, "  best_effort: be-");
		ck_assert_ptr_nonnull(st);
		ck_assert_ptr_nonnull(be);
		ck_assert_ptr_nonnull(strstr(be, "  hard_requirement: hard-"));
		if (col_status < 0) {
			col_status = st - line;
			col_be = be - line;
		}
		ck_assert_int_eq(st - line, col_status);
		ck_assert_int_eq(be - line, col_be);
	}
	ck_assert_int_eq(lines, 4);
	ck_assert_int_eq(col_status, (long)strlen("longer_layer") + 2);
}
END_TEST

START_TEST(format_returns_the_needed_length_when_the_buffer_is_short)
{
	struct sv_selftest_report r;
	sample(&r);
	char full[4096], small[10];
	size_t need = sv_selftest_format_json(&r, full, sizeof(full));
	ck_assert_uint_eq(sv_selftest_format_json(&r, small, sizeof(small)), need);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_int_eq(memcmp(small, full, sizeof(small) - 1), 0);
	ck_assert_uint_eq(sv_selftest_format_text(&r, NULL, 0),
			  sv_selftest_format_text(&r, full, sizeof(full)));
}
END_TEST

/* Read the next string value in @j into @buf. */
static void json_str(struct sv_json *j, char *buf, size_t size)
{
	struct sv_err err = {0};
	char *s = NULL;
	size_t len = 0;
	ck_assert_msg(sv_json_string(j, &s, &len, false, &err) == 0, "%s", err.msg);
	snprintf(buf, size, "%s", s);
	free(s);
}

static const char *field_of(const struct sv_selftest_layer *l, const char *key)
{
	if (strcmp(key, "layer") == 0)
		return l->layer;
	if (strcmp(key, "status") == 0)
		return sv_selftest_status_name(l->status);
	if (strcmp(key, "reason") == 0)
		return l->reason;
	if (strcmp(key, "best_effort") == 0)
		return l->best_effort;
	if (strcmp(key, "hard_requirement") == 0)
		return l->hard_requirement;
	return NULL;
}

START_TEST(json_report_escapes_strings_and_parses_back)
{
	struct sv_selftest_report r;
	sample(&r);
	char buf[4096];
	size_t n = sv_selftest_format_json(&r, buf, sizeof(buf));
	ck_assert_uint_eq(n, strlen(buf));
	ck_assert(buf[n - 1] == '\n');
	ck_assert_ptr_nonnull(strstr(buf, "quote \\\" back\\\\slash ctl\\u0001 end"));
	struct sv_json j;
	struct sv_err err = {0};
	sv_json_init(&j, "report", buf, n);
	ck_assert_int_eq(sv_json_object_begin(&j, &err), 0);
	char *key = NULL;
	size_t layers = 0;
	uint64_t exit_code = 99;
	while (sv_json_object_next(&j, &key, &err) == 1) {
		if (strcmp(key, "exit") == 0) {
			ck_assert_int_eq(sv_json_uint(&j, &exit_code, &err), 0);
		} else {
			ck_assert_str_eq(key, "layers");
			ck_assert_int_eq(sv_json_array_begin(&j, &err), 0);
			while (sv_json_array_next(&j, &err) == 1) {
				const struct sv_selftest_layer *l = &r.layers[layers++];
				char *k = NULL;
				char v[SV_SELFTEST_REASON_MAX];
				int fields = 0;
				ck_assert_int_eq(sv_json_object_begin(&j, &err), 0);
				while (sv_json_object_next(&j, &k, &err) == 1) {
					json_str(&j, v, sizeof(v));
					const char *want = field_of(l, k);
					ck_assert_msg(want != NULL, "unexpected key %s", k);
					ck_assert_str_eq(v, want);
					fields++;
					free(k);
				}
				ck_assert_int_eq(fields, 5);
			}
		}
		free(key);
	}
	ck_assert_int_eq(sv_json_end(&j, &err), 0);
	ck_assert_uint_eq(layers, 3);
	ck_assert_uint_eq(exit_code, 2);
}
END_TEST

START_TEST(errno_names_are_symbolic)
{
	ck_assert_str_eq(sv_errno_name(EPERM), "EPERM");
	ck_assert_str_eq(sv_errno_name(ENOSYS), "ENOSYS");
	ck_assert_str_eq(sv_errno_name(EOPNOTSUPP), "EOPNOTSUPP");
	ck_assert_str_eq(sv_errno_name(ENOSPC), "ENOSPC");
	ck_assert_ptr_null(sv_errno_name(4000));
	ck_assert_str_eq(sv_selftest_status_name(SV_SELFTEST_DEGRADED), "degraded");
}
END_TEST

/* ---- cgroup pids ---------------------------------------------------------------------------- */

START_TEST(cgroup_path_finds_the_v2_line_and_the_v1_pids_controller)
{
	static const char text[] =
	    "12:cpu,cpuacct:/a\n8:net_cls,pids:/kube/pod:1\n0::/user.slice/x\n";
	char out[64];
	ck_assert_int_eq(sv_selftest_cgroup_path(text, true, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/user.slice/x");
	ck_assert_int_eq(sv_selftest_cgroup_path(text, false, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/kube/pod:1"); /* a ':' in the path is kept */
	ck_assert_int_eq(sv_selftest_cgroup_path("3:pidsx:/a\n4:cpu:/b", false, out, sizeof(out)),
			 -ENOENT);
	ck_assert_int_eq(sv_selftest_cgroup_path("1:name=systemd:/\n", true, out, sizeof(out)),
			 -ENOENT);
	ck_assert_int_eq(sv_selftest_cgroup_path(text, true, out, 4), -ENAMETOOLONG);
}
END_TEST

static char g_dir[64];

static void put(const char *rel, const char *content)
{
	char path[256];
	snprintf(path, sizeof(path), "%s%s", g_dir, rel);
	if (!content) {
		ck_assert_int_eq(mkdir(path, 0755), 0);
		return;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(sv_write_all(fd, content, strlen(content)), 0);
	close(fd);
}

static void tree_setup(void)
{
	snprintf(g_dir, sizeof(g_dir), "/tmp/test_selftest.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
	put("/a", NULL);
	put("/a/b", NULL);
	put("/a/b/c", NULL);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tree_teardown(void)
{
	nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

START_TEST(pids_limit_walks_up_to_the_base_and_keeps_the_tightest)
{
	unsigned long long lim = 0;
	char where[256];
	ck_assert_int_eq(sv_selftest_pids_limit(g_dir, "/a/b/c", &lim, where, sizeof(where)),
			 -ENOENT);
	put("/a/b/c/pids.max", "max\n");
	ck_assert_int_eq(sv_selftest_pids_limit(g_dir, "/a/b/c", &lim, where, sizeof(where)), 0);
	put("/a/pids.max", "512\n");
	put("/a/b/pids.max", "4096\n");
	ck_assert_int_eq(sv_selftest_pids_limit(g_dir, "/a/b/c/", &lim, where, sizeof(where)), 1);
	ck_assert_uint_eq(lim, 512);
	char want[256];
	snprintf(want, sizeof(want), "%s/a", g_dir);
	ck_assert_str_eq(where, want);
	put("/pids.max", "100\n"); /* the base itself counts */
	ck_assert_int_eq(sv_selftest_pids_limit(g_dir, "/a/b/c", &lim, where, sizeof(where)), 1);
	ck_assert_uint_eq(lim, 100);
	ck_assert_str_eq(where, g_dir);
	put("/a/b/pids.max", "lots\n");
	ck_assert_int_eq(sv_selftest_pids_limit(g_dir, "/a/b/c", &lim, where, sizeof(where)),
			 -EINVAL);
	ck_assert_int_eq(sv_selftest_pids_limit(g_dir, "/../..", &lim, where, sizeof(where)),
			 -ENOENT); /* outside the cgroup namespace */
}
END_TEST

/* ---- the whole collection on this machine --------------------------------------------------- */

struct proc_facts {
	int nnp, dumpable;
	uid_t uid, euid;
	uint32_t caps[6];
	long seccomp;
	ino_t ns[4];
};

static void facts(struct proc_facts *f)
{
	static const char *const ns[] = {"user", "pid", "mnt", "net"};
	memset(f, 0, sizeof(*f));
	f->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	f->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	f->uid = getuid();
	f->euid = geteuid();
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	ck_assert_int_eq(syscall(SYS_capget, &h, (struct __user_cap_data_struct *)f->caps), 0);
	for (size_t i = 0; i < 4; i++) {
		char path[64];
		struct stat st;
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns[i]);
		ck_assert_int_eq(stat(path, &st), 0);
		f->ns[i] = st.st_ino;
	}
	FILE *s = fopen("/proc/self/status", "re");
	ck_assert_ptr_nonnull(s);
	char line[256];
	f->seccomp = -1;
	while (fgets(line, sizeof(line), s))
		if (strncmp(line, "Seccomp:", 8) == 0)
			f->seccomp = strtol(line + 8, NULL, 10);
	fclose(s);
}

START_TEST(collect_reports_every_layer_and_leaves_the_caller_unchanged)
{
	static const char *const names[] = {
	    "pid1",	   "proc",	   "capabilities", "privilege_drop", "no_new_privs",
	    "seccomp",	   "landlock",	   "userns",	   "pidns",	     "mountns",
	    "mount_fence", "netns",	   "netlink",	   "cgroup_pids",    "kmsg",
	    "gpu"};
	struct proc_facts before, after;
	facts(&before);
	struct sv_selftest_report r;
	sv_selftest_collect(&r);
	facts(&after);
	ck_assert_int_eq(memcmp(&before, &after, sizeof(before)), 0);
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1); /* no child left behind */
	ck_assert_uint_eq(r.n, sizeof(names) / sizeof(names[0]));
	int worst = 0;
	for (size_t i = 0; i < r.n; i++) {
		const struct sv_selftest_layer *l = &r.layers[i];
		ck_assert_str_eq(l->layer, names[i]);
		ck_assert_msg(l->reason[0] && l->best_effort[0] && l->hard_requirement[0],
			      "%s has an empty column", l->layer);
		ck_assert_msg(l->status != SV_SELFTEST_OK || l->impact == SV_SELFTEST_NONE,
			      "%s ok but with an impact", l->layer);
		if ((int)l->impact > worst)
			worst = (int)l->impact;
	}
	ck_assert_int_eq(r.exit, worst);
	/* Not PID 1 under Check: a subreaper, which needs no privilege. */
	ck_assert_int_eq(r.layers[0].status, SV_SELFTEST_DEGRADED);
	ck_assert_ptr_nonnull(strstr(r.layers[0].reason, "subreaper"));
	ck_assert_int_eq(r.layers[1].status, SV_SELFTEST_OK); /* /proc is mounted here */
}
END_TEST

START_TEST(collect_landlock_line_matches_the_kernel)
{
	struct sv_err err = {0};
	int abi = ll_abi_probe(&err);
	struct sv_selftest_report r;
	sv_selftest_collect(&r);
	const struct sv_selftest_layer *l = &r.layers[6];
	ck_assert_str_eq(l->layer, "landlock");
	if (abi < 0) {
		ck_assert_int_eq(l->status, SV_SELFTEST_UNAVAILABLE);
		ck_assert_str_eq(l->hard_requirement, "refuse to start");
		ck_assert_int_eq(strncmp(l->reason, sv_errno_name(-abi),
					 strlen(sv_errno_name(-abi))),
				 0);
		return;
	}
	char want[32];
	snprintf(want, sizeof(want), "ABI %d", abi);
	ck_assert_int_eq(strncmp(l->reason, want, strlen(want)), 0);
	ck_assert_int_eq(l->status, abi >= 6 ? SV_SELFTEST_OK : SV_SELFTEST_DEGRADED);
}
END_TEST

START_TEST(collect_privilege_drop_matches_our_capabilities)
{
	struct sv_selftest_report r;
	sv_selftest_collect(&r);
	const struct sv_selftest_layer *l = &r.layers[3];
	ck_assert_str_eq(l->layer, "privilege_drop");
	bool can = geteuid() == 0 && prctl(PR_CAPBSET_READ, CAP_SETUID, 0, 0, 0) == 1;
	if (can) {
		ck_assert_int_eq(l->status, SV_SELFTEST_OK);
		ck_assert_ptr_nonnull(strstr(l->reason, "setuid(0) fails with EPERM"));
	} else {
		ck_assert_int_eq(l->status, SV_SELFTEST_UNAVAILABLE);
		ck_assert_int_eq(l->impact, SV_SELFTEST_FATAL);
		ck_assert_int_eq(r.exit, 2);
	}
}
END_TEST

static Suite *selftest_suite(void)
{
	Suite *s = suite_create("selftest");
	TCase *tc = tcase_create("selftest");
	tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, fork_probe_returns_the_childs_report_and_leaves_the_caller_alone);
	tcase_add_test(tc, fork_probe_kills_a_hung_probe_and_its_whole_group_after_the_timeout);
	tcase_add_test(tc, fork_probe_reports_a_child_that_dies_or_exits_without_a_report);
	tcase_add_test(tc, exit_status_is_the_worst_impact);
	tcase_add_test(tc, text_report_aligns_columns_and_states_the_exit);
	tcase_add_test(tc, format_returns_the_needed_length_when_the_buffer_is_short);
	tcase_add_test(tc, json_report_escapes_strings_and_parses_back);
	tcase_add_test(tc, errno_names_are_symbolic);
	tcase_add_test(tc, cgroup_path_finds_the_v2_line_and_the_v1_pids_controller);
	tcase_add_test(tc, pids_limit_walks_up_to_the_base_and_keeps_the_tightest);
	tcase_add_test(tc, collect_reports_every_layer_and_leaves_the_caller_unchanged);
	tcase_add_test(tc, collect_landlock_line_matches_the_kernel);
	tcase_add_test(tc, collect_privilege_drop_matches_our_capabilities);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(selftest_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
