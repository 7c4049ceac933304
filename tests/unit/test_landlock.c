/* Unit tests for landlock/: real rulesets on the running kernel, enforced in grandchildren.
 *
 * Each test builds a scratch tree under /tmp, prepares a ruleset as the parent would, then
 * forks a child that enforces it and probes the filesystem; the child reports its first
 * mismatch as text. Run as root (fix 5 needs it); features above the kernel's ABI are skipped.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "landlock/landlock.h"
#include "supervisor/log.h"

#define MSG_MAX 512

/* ---- scratch tree -------------------------------------------------------------------- */

static char g_base[64];
static char g_ro[128], g_rw[128], g_rw2[128], g_out[128];

static const char *at(const char *dir, const char *name)
{
	static char slots[8][256];
	static unsigned next;
	char *p = slots[next++ % 8];
	snprintf(p, sizeof(slots[0]), "%s/%s", dir, name);
	return p;
}

static void put_file(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, "data\n", 5), 5);
	close(fd);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void tree_setup(void)
{
	snprintf(g_base, sizeof(g_base), "/tmp/ll-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_base));
	snprintf(g_ro, sizeof(g_ro), "%s/ro", g_base);
	snprintf(g_rw, sizeof(g_rw), "%s/rw", g_base);
	snprintf(g_rw2, sizeof(g_rw2), "%s/rw2", g_base);
	snprintf(g_out, sizeof(g_out), "%s/out", g_base);
	ck_assert_int_eq(mkdir(g_ro, 0777), 0);
	ck_assert_int_eq(mkdir(g_rw, 0777), 0);
	ck_assert_int_eq(mkdir(g_rw2, 0777), 0);
	ck_assert_int_eq(mkdir(g_out, 0777), 0);
	/* World-writable despite the umask: only Landlock may stand in the way. */
	ck_assert_int_eq(chmod(g_ro, 0777), 0);
	ck_assert_int_eq(chmod(g_rw, 0777), 0);
	ck_assert_int_eq(chmod(g_rw2, 0777), 0);
	ck_assert_int_eq(chmod(g_out, 0777), 0);
	put_file(at(g_ro, "file"), 0666);
	put_file(at(g_rw, "file"), 0644);
	put_file(at(g_out, "secret"), 0777);
	sv_log_setup(SV_LOG_DEBUG, SV_LOG_JSON);
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
	if (g_base[0])
		nftw(g_base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ------------------------------------------------------------------------- */

static int kernel_abi(void)
{
	return ll_abi_probe(NULL);
}

/* A skip is reported; with CI=true it is a failure (as in tests/integration). */
static bool ci_strict(void)
{
	const char *ci = getenv("CI");
	return ci && !strcmp(ci, "true");
}

#define NEED_ABI(n)                                                                          \
	do {                                                                                 \
		if (kernel_abi() < (n)) {                                                    \
			ck_assert_msg(!ci_strict(), "needs Landlock ABI %d (CI=true)", (n)); \
			fprintf(stderr, "SKIP %s: needs Landlock ABI %d\n", __func__, (n));  \
			return;                                                              \
		}                                                                            \
	} while (0)

static void spec_paths(struct ll_spec *s, enum ll_compat compat, const char **ro, size_t nro,
		       const char **rw, size_t nrw)
{
	ll_spec_init(s);
	s->compat = compat;
	s->read_only = ro;
	s->n_read_only = nro;
	s->read_write = rw;
	s->n_read_write = nrw;
}

static void prepare_ok(const struct ll_spec *s, struct ll_prepared *p)
{
	struct sv_err err = {0};
	int rc = ll_prepare(s, p, &err);
	ck_assert_msg(rc == 0, "ll_prepare: %d %s", rc, err.msg);
	ck_assert_msg(p->report.enforced, "nothing to enforce");
	ck_assert_int_ge(p->ruleset_fd, 0);
}

/* The sandboxed body: leaves "ok" in msg or overwrites it with the first mismatch. */
typedef void (*body_fn)(char *msg);

static void failf(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(char *msg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, MSG_MAX, fmt, ap);
	va_end(ap);
}

/* The call must fail with errno @want. */
#define EXPECT_ERR(msg, call, want)                                                                \
	do {                                                                                       \
		errno = 0;                                                                         \
		long r_ = (long)(call);                                                            \
		int e_ = errno;                                                                    \
		if (r_ >= 0 || e_ != (want)) {                                                     \
			failf(msg, "%s:%d: %s = %ld (%s), want %s", __FILE__, __LINE__, #call, r_, \
			      r_ < 0 ? strerror(e_) : "success", #want);                           \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define EXPECT_OK(msg, call)                                                          \
	do {                                                                          \
		errno = 0;                                                            \
		long r_ = (long)(call);                                               \
		if (r_ < 0) {                                                         \
			failf(msg, "%s:%d: %s failed: %s", __FILE__, __LINE__, #call, \
			      strerror(errno));                                       \
			return;                                                       \
		}                                                                     \
	} while (0)

/* Fork; the child optionally drops to @uid, enforces @p, runs @body and reports. */
static void run_in_domain_as(const struct ll_prepared *p, uid_t uid, body_fn body, char *out)
{
	int pfd[2];
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char msg[MSG_MAX] = "ok";
		struct sv_err err = {0};
		close(pfd[0]);
		if (uid != (uid_t)-1 &&
		    (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
			failf(msg, "privilege drop: %s", strerror(errno));
		else if (ll_enforce(p, &err) < 0)
			failf(msg, "ll_enforce: %s", err.msg);
		else
			body(msg);
		(void)!write(pfd[1], msg, strlen(msg) + 1);
		_exit(0);
	}
	close(pfd[1]);
	size_t got = 0;
	ssize_t n;
	while (got < MSG_MAX - 1 && (n = read(pfd[0], out + got, MSG_MAX - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(pfd[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status 0x%x", status);
}

static void run_in_domain(const struct ll_prepared *p, body_fn body, char *out)
{
	run_in_domain_as(p, (uid_t)-1, body, out);
}

#define ASSERT_BODY(p, body)                                        \
	do {                                                        \
		char out_[MSG_MAX];                                 \
		run_in_domain((p), (body), out_);                   \
		ck_assert_msg(strcmp(out_, "ok") == 0, "%s", out_); \
	} while (0)

/* Capture what the log module writes to stderr during a stretch of code. */
struct capture {
	int saved;
	int fd;
	char text[16384];
};

static void capture_begin(struct capture *c)
{
	c->fd = memfd_create("ll-log", MFD_CLOEXEC);
	ck_assert_int_ge(c->fd, 0);
	c->saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	ck_assert_int_ge(c->saved, 0);
	ck_assert_int_eq(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

static void capture_end(struct capture *c)
{
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	ssize_t n = pread(c->fd, c->text, sizeof(c->text) - 1, 0);
	c->text[n > 0 ? n : 0] = '\0';
	close(c->fd);
	fputs(c->text, stderr); /* keep it visible in the test output */
}

/* In this (forked) test process: make landlock_create_ruleset fail with @errnum, the way a
 * container seccomp profile or gVisor would. */
static void fake_landlock_errno(int errnum)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_landlock_create_ruleset, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)errnum & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = (unsigned short)SV_ARRAY_SIZE(f), .filter = f};
	ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

/* ---- probe ---------------------------------------------------------------------------- */

START_TEST(abi_probe_reports_the_kernel_version)
{
	long raw = syscall(SYS_landlock_create_ruleset, NULL, 0, 1U);
	struct sv_err err = {0};
	int abi = ll_abi_probe(&err);
	ck_assert_msg(abi >= 1, "probe: %d %s", abi, err.msg);
	ck_assert_int_eq(abi, raw);
}
END_TEST

START_TEST(probe_names_not_built_disabled_and_blocked)
{
	static const struct {
		int errnum;
		const char *says;
	} cases[] = {
	    {ENOSYS, "not built into this kernel"},
	    {EOPNOTSUPP, "disabled at boot"},
	    {EPERM, "blocked"},
	};
	/* One filter per child: filters stack, the first installed would win. */
	for (size_t i = 0; i < SV_ARRAY_SIZE(cases); i++) {
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			fake_landlock_errno(cases[i].errnum);
			struct sv_err err = {0};
			int rc = ll_abi_probe(&err);
			bool good = rc == -cases[i].errnum && strstr(err.msg, cases[i].says) &&
				    strstr(err.msg, "seccomp");
			if (!good)
				fprintf(stderr, "case %zu: rc=%d msg=%s\n", i, rc, err.msg);
			_exit(good ? 0 : 1);
		}
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "case %zu (%s)", i,
			      cases[i].says);
	}
}
END_TEST

/* ---- filesystem rights ---------------------------------------------------------------- */

static void body_ro_dir(char *m)
{
	int fd;
	EXPECT_OK(m, fd = open(at(g_ro, "file"), O_RDONLY | O_CLOEXEC));
	close(fd);
	EXPECT_OK(m, fd = open(g_ro, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	close(fd);
	EXPECT_ERR(m, open(at(g_ro, "new"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), EACCES);
	EXPECT_ERR(m, open(at(g_ro, "file"), O_WRONLY | O_CLOEXEC), EACCES);
	EXPECT_ERR(m, mkdir(at(g_ro, "d"), 0755), EACCES);
	EXPECT_ERR(m, unlink(at(g_ro, "file")), EACCES);
}

START_TEST(ro_dir_is_readable_but_not_writable)
{
	const char *ro[] = {g_ro};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_BEST_EFFORT, ro, 1, NULL, 0);
	prepare_ok(&s, &p);
	ck_assert_int_eq(p.report.n_rules, 1);
	ASSERT_BODY(&p, body_ro_dir);
	ll_prepared_close(&p);
	/* The parent is untouched: still writable here. */
	put_file(at(g_ro, "parent-can-write"), 0644);
}
END_TEST

static void body_rw_dir(char *m)
{
	int fd;
	EXPECT_OK(m, fd = open(at(g_rw, "new"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
	EXPECT_OK(m, write(fd, "x", 1));
	close(fd);
	EXPECT_OK(m, fd = open(at(g_rw, "file"), O_WRONLY | O_TRUNC | O_CLOEXEC));
	close(fd);
	EXPECT_OK(m, truncate(at(g_rw, "new"), 0));
	EXPECT_OK(m, mkdir(at(g_rw, "d"), 0755));
	EXPECT_OK(m, rename(at(g_rw, "new"), at(g_rw, "d/moved")));
	EXPECT_OK(m, unlink(at(g_rw, "d/moved")));
	EXPECT_OK(m, rmdir(at(g_rw, "d")));
}

START_TEST(rw_dir_allows_create_write_truncate_mkdir_rename_unlink)
{
	const char *rw[] = {g_rw};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_HARD_REQUIREMENT, NULL, 0, rw, 1);
	prepare_ok(&s, &p);
	ASSERT_BODY(&p, body_rw_dir);
	ll_prepared_close(&p);
}
END_TEST

static void body_outside(char *m)
{
	EXPECT_ERR(m, open(at(g_out, "secret"), O_RDONLY | O_CLOEXEC), EACCES);
	EXPECT_ERR(m, open(g_out, O_RDONLY | O_DIRECTORY | O_CLOEXEC), EACCES);
	EXPECT_ERR(m, open(at(g_out, "new"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), EACCES);
	/* /etc/hostname-like world-readable system files are outside too. */
	EXPECT_ERR(m, open("/proc/self/status", O_RDONLY | O_CLOEXEC), EACCES);
}

START_TEST(file_outside_policy_is_unreadable_even_with_mode_0777)
{
	const char *ro[] = {g_ro};
	const char *rw[] = {g_rw};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_BEST_EFFORT, ro, 1, rw, 1);
	prepare_ok(&s, &p);
	ASSERT_BODY(&p, body_outside);
	ll_prepared_close(&p);
}
END_TEST

static void body_ro_file_rule(char *m)
{
	int fd;
	EXPECT_OK(m, fd = open(at(g_out, "secret"), O_RDONLY | O_CLOEXEC));
	close(fd);
	EXPECT_ERR(m, open(at(g_out, "secret"), O_WRONLY | O_CLOEXEC), EACCES);
	EXPECT_ERR(m, truncate(at(g_out, "secret"), 0), EACCES);
	/* A file rule covers that file only, not its siblings or directory. */
	EXPECT_ERR(m, open(g_out, O_RDONLY | O_DIRECTORY | O_CLOEXEC), EACCES);
}

START_TEST(ro_file_rule_grants_read_only_to_that_file)
{
	const char *ro[] = {at(g_out, "secret")};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_HARD_REQUIREMENT, ro, 1, NULL, 0);
	prepare_ok(&s, &p);
	ASSERT_BODY(&p, body_ro_file_rule);
	ll_prepared_close(&p);
}
END_TEST

static void body_truncate_ro(char *m)
{
	int fd;
	EXPECT_OK(m, fd = open(at(g_ro, "file"), O_RDONLY | O_CLOEXEC));
	close(fd);
	EXPECT_ERR(m, truncate(at(g_ro, "file"), 0), EACCES);
	EXPECT_ERR(m, open(at(g_ro, "file"), O_RDONLY | O_TRUNC | O_CLOEXEC), EACCES);
}

START_TEST(truncate_of_world_writable_file_in_ro_dir_is_denied)
{
	NEED_ABI(3);
	const char *ro[] = {g_ro};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_HARD_REQUIREMENT, ro, 1, NULL, 0);
	prepare_ok(&s, &p);
	ck_assert(p.report.fs_handled & LL_FS_TRUNCATE);
	ASSERT_BODY(&p, body_truncate_ro);
	ll_prepared_close(&p);
	struct stat st;
	ck_assert_int_eq(stat(at(g_ro, "file"), &st), 0);
	ck_assert_int_eq(st.st_size, 5);
}
END_TEST

static void body_truncate_gap(char *m)
{
	EXPECT_OK(m, truncate(at(g_ro, "file"), 0));
}

START_TEST(abi_capped_at_2_reports_degradation_and_truncate_gap_is_real)
{
	NEED_ABI(3);
	const char *ro[] = {g_ro};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_BEST_EFFORT, ro, 1, NULL, 0);
	s.max_abi = 2;
	struct capture c;
	capture_begin(&c);
	prepare_ok(&s, &p);
	capture_end(&c);
	ck_assert_int_eq(p.report.abi, 2);
	ck_assert_uint_eq(p.report.fs_missing, LL_FS_TRUNCATE | LL_FS_IOCTL_DEV);
	ck_assert_uint_eq(p.report.scopes_missing, LL_SCOPE_ALL);
	ck_assert_ptr_nonnull(strstr(c.text, "\"event\":\"landlock_degraded\""));
	ck_assert_ptr_nonnull(strstr(c.text, "\"severity\":\"HIGH\""));
	ck_assert_ptr_nonnull(strstr(c.text, "TRUNCATE (ABI 3), IOCTL_DEV (ABI 5), scopes "
					     "abstract_unix_socket,signal (ABI 6)"));
	/* What the finding warns about: without TRUNCATE handled, truncate(2) slips through. */
	ASSERT_BODY(&p, body_truncate_gap);
	ll_prepared_close(&p);
}
END_TEST

/* hard_requirement refuses only below OpenShell's V2 set (ABI 1: no REFER); above it every
 * missing right or scope is a HIGH finding and the rest is enforced. The ABI is faked with
 * max_abi, so the older-kernel paths run on any kernel with Landlock. */
START_TEST(hard_requirement_refuses_below_abi_2_only)
{
	NEED_ABI(1);
	const char *ro[] = {g_ro};
	struct ll_spec s;
	struct ll_prepared p;
	struct sv_err err = {0};
	spec_paths(&s, LL_HARD_REQUIREMENT, ro, 1, NULL, 0);
	s.max_abi = 1;
	ck_assert_int_eq(ll_prepare(&s, &p, &err), -EOPNOTSUPP);
	ck_assert_int_eq(p.ruleset_fd, -1);
	ck_assert_msg(strstr(err.msg, "hard_requirement") && strstr(err.msg, "REFER (ABI 2)") &&
			  !strstr(err.msg, "TRUNCATE"),
		      "%s", err.msg);
	ll_prepared_close(&p);
	/* Asking only for ABI 1 rights is fine on ABI 1. */
	s.fs_rights = LL_FS_V1;
	s.scopes = 0;
	prepare_ok(&s, &p);
	ck_assert_uint_eq(p.report.fs_handled, LL_FS_V1);
	ll_prepared_close(&p);
}
END_TEST

START_TEST(hard_requirement_starts_on_abi_2_to_5_with_a_high_finding)
{
	static const struct {
		int abi;
		uint64_t missing;
		uint64_t scopes_missing;
		const char *text;
	} cases[] = {
	    {2, LL_FS_TRUNCATE | LL_FS_IOCTL_DEV, LL_SCOPE_ALL,
	     "TRUNCATE (ABI 3), IOCTL_DEV (ABI 5), scopes abstract_unix_socket,signal (ABI 6)"},
	    {3, LL_FS_IOCTL_DEV, LL_SCOPE_ALL,
	     "IOCTL_DEV (ABI 5), scopes abstract_unix_socket,signal (ABI 6)"},
	    {4, LL_FS_IOCTL_DEV, LL_SCOPE_ALL,
	     "IOCTL_DEV (ABI 5), scopes abstract_unix_socket,signal (ABI 6)"},
	    {5, 0, LL_SCOPE_ALL, "scopes abstract_unix_socket,signal (ABI 6)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		NEED_ABI(cases[i].abi);
		const char *ro[] = {g_ro};
		struct ll_spec s;
		struct ll_prepared p;
		spec_paths(&s, LL_HARD_REQUIREMENT, ro, 1, NULL, 0);
		s.max_abi = cases[i].abi;
		struct capture c;
		capture_begin(&c);
		prepare_ok(&s, &p);
		capture_end(&c);
		ck_assert_int_eq(p.report.abi, cases[i].abi);
		ck_assert(p.report.enforced);
		ck_assert_uint_eq(p.report.fs_handled & LL_FS_V2, LL_FS_V2);
		ck_assert_uint_eq(p.report.fs_missing, cases[i].missing);
		ck_assert_uint_eq(p.report.scopes_missing, cases[i].scopes_missing);
		ck_assert_ptr_nonnull(strstr(c.text, "\"event\":\"landlock_degraded\""));
		ck_assert_ptr_nonnull(strstr(c.text, "\"severity\":\"HIGH\""));
		ck_assert_ptr_nonnull(strstr(c.text, "hard_requirement"));
		ck_assert_msg(strstr(c.text, cases[i].text), "ABI %d: %s", cases[i].abi, c.text);
		ll_prepared_close(&p);
	}
	/* At ABI 6 nothing we ask for is missing: no finding at all. */
	if (kernel_abi() >= 6) {
		const char *ro[] = {g_ro};
		struct ll_spec s;
		struct ll_prepared p;
		spec_paths(&s, LL_HARD_REQUIREMENT, ro, 1, NULL, 0);
		s.max_abi = 6;
		struct capture c;
		capture_begin(&c);
		prepare_ok(&s, &p);
		capture_end(&c);
		ck_assert_uint_eq(p.report.fs_missing, 0);
		ck_assert_uint_eq(p.report.scopes_missing, 0);
		ck_assert_ptr_null(strstr(c.text, "landlock_degraded"));
		ll_prepared_close(&p);
	}
}
END_TEST

static void body_refer(char *m)
{
	int fd;
	EXPECT_OK(m, fd = open(at(g_rw, "a"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	close(fd);
	EXPECT_OK(m, fd = open(at(g_rw, "b"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	close(fd);
	/* Between two read_write trees: REFER is granted on both. */
	EXPECT_OK(m, rename(at(g_rw, "a"), at(g_rw2, "a")));
	EXPECT_OK(m, link(at(g_rw2, "a"), at(g_rw, "a-link")));
	/* Into read_only or unlisted trees: no MAKE_REG there (EACCES prevails over EXDEV). */
	EXPECT_ERR(m, rename(at(g_rw, "b"), at(g_ro, "b")), EACCES);
	EXPECT_ERR(m, rename(at(g_rw, "b"), at(g_out, "b")), EACCES);
	EXPECT_ERR(m, link(at(g_rw, "b"), at(g_ro, "b")), EACCES);
	/* Out of read_only: no REMOVE_FILE there. */
	EXPECT_ERR(m, rename(at(g_ro, "file"), at(g_rw, "stolen")), EACCES);
}

START_TEST(rename_and_link_across_the_policy_boundary_are_denied)
{
	NEED_ABI(2);
	const char *ro[] = {g_ro};
	const char *rw[] = {g_rw, g_rw2};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_BEST_EFFORT, ro, 1, rw, 2);
	prepare_ok(&s, &p);
	ASSERT_BODY(&p, body_refer);
	ll_prepared_close(&p);
}
END_TEST

static int bind_unix_path(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

static void body_make_nodes(char *m)
{
	EXPECT_ERR(m, mkfifo(at(g_ro, "fifo"), 0644), EACCES);
	EXPECT_ERR(m, mknod(at(g_ro, "null"), S_IFCHR | 0666, makedev(1, 3)), EACCES);
	EXPECT_ERR(m, symlink("/etc", at(g_ro, "sym")), EACCES);
	EXPECT_ERR(m, bind_unix_path(at(g_ro, "sock")), EACCES);
	EXPECT_OK(m, mkfifo(at(g_rw, "fifo"), 0644));
	EXPECT_OK(m, symlink("/etc", at(g_rw, "sym")));
	EXPECT_OK(m, bind_unix_path(at(g_rw, "sock")));
	/* read_write grants MAKE_CHAR; whether it works is up to CAP_MKNOD, not Landlock. */
	errno = 0;
	if (mknod(at(g_rw, "null"), S_IFCHR | 0666, makedev(1, 3)) < 0 && errno == EACCES)
		failf(m, "mknod in read_write dir denied by Landlock");
}

START_TEST(special_files_can_be_made_in_rw_dirs_only)
{
	const char *ro[] = {g_ro};
	const char *rw[] = {g_rw};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_BEST_EFFORT, ro, 1, rw, 1);
	prepare_ok(&s, &p);
	ASSERT_BODY(&p, body_make_nodes);
	ll_prepared_close(&p);
}
END_TEST

static void body_ioctl(char *m)
{
	struct termios t;
	int ro_fd, rw_fd;
	/* /dev/null (read_only rule: no IOCTL_DEV) and /dev/zero (read_write rule). */
	EXPECT_OK(m, ro_fd = open("/dev/null", O_RDONLY | O_CLOEXEC));
	EXPECT_ERR(m, ioctl(ro_fd, TCGETS, &t), EACCES);
	EXPECT_OK(m, rw_fd = open("/dev/zero", O_RDWR | O_CLOEXEC));
	EXPECT_ERR(m, ioctl(rw_fd, TCGETS, &t), ENOTTY); /* reached the driver */
	/* Always-allowed generic commands still work on the denied device. */
	EXPECT_OK(m, ioctl(ro_fd, FIOCLEX));
}

START_TEST(device_ioctl_needs_ioctl_dev_from_a_rw_rule)
{
	NEED_ABI(5);
	const char *ro[] = {"/dev/null"};
	const char *rw[] = {"/dev/zero"};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_HARD_REQUIREMENT, ro, 1, rw, 1);
	prepare_ok(&s, &p);
	ASSERT_BODY(&p, body_ioctl);
	ll_prepared_close(&p);
}
END_TEST

static void body_dev_files(char *m)
{
	int fd;
	char buf[16];
	EXPECT_OK(m, fd = open("/dev/null", O_RDWR | O_TRUNC | O_CLOEXEC)); /* "> /dev/null" */
	EXPECT_OK(m, write(fd, "discard", 7));
	close(fd);
	EXPECT_OK(m, fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC));
	if (read(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
		failf(m, "short read from /dev/urandom");
		return;
	}
	close(fd);
	EXPECT_ERR(m, open("/dev/urandom", O_WRONLY | O_CLOEXEC), EACCES);
}

START_TEST(dev_null_rw_and_urandom_ro_file_rules_work_under_hard_requirement)
{
	const char *ro[] = {"/dev/urandom"};
	const char *rw[] = {"/dev/null"};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_HARD_REQUIREMENT, ro, 1, rw, 1);
	prepare_ok(&s, &p);
	ck_assert_int_eq(p.report.n_rules, 2);
	ASSERT_BODY(&p, body_dev_files);
	ll_prepared_close(&p);
}
END_TEST

/* ---- scopes --------------------------------------------------------------------------- */

static char g_abstract[64];

static void body_abstract_denied(char *m)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(g_abstract);
	memcpy(sa.sun_path + 1, g_abstract, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	EXPECT_ERR(m, connect(fd, (struct sockaddr *)&sa, len), EPERM);
}

static void body_abstract_allowed(char *m)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(g_abstract);
	memcpy(sa.sun_path + 1, g_abstract, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	EXPECT_OK(m, connect(fd, (struct sockaddr *)&sa, len));
}

START_TEST(abstract_unix_connect_out_of_the_domain_is_denied)
{
	NEED_ABI(6);
	snprintf(g_abstract, sizeof(g_abstract), "ll-test-%d", (int)getpid());
	int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(g_abstract);
	memcpy(sa.sun_path + 1, g_abstract, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	ck_assert_int_eq(bind(srv, (struct sockaddr *)&sa, len), 0);
	ck_assert_int_eq(listen(srv, 4), 0);

	const char *rw[] = {g_rw};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_HARD_REQUIREMENT, NULL, 0, rw, 1);
	prepare_ok(&s, &p);
	ck_assert_uint_eq(p.report.scopes, LL_SCOPE_ALL);
	ASSERT_BODY(&p, body_abstract_denied);
	ll_prepared_close(&p);
	/* Control: the same ruleset without the scope connects. */
	s.scopes = 0;
	prepare_ok(&s, &p);
	ASSERT_BODY(&p, body_abstract_allowed);
	ll_prepared_close(&p);
	close(srv);
}
END_TEST

static void body_kill_denied(char *m)
{
	EXPECT_ERR(m, kill(getppid(), 0), EPERM);
	EXPECT_ERR(m, kill(getppid(), SIGURG), EPERM);
	EXPECT_OK(m, kill(getpid(), 0)); /* inside the domain */
}

static void body_kill_allowed(char *m)
{
	EXPECT_OK(m, kill(getppid(), SIGURG));
}

START_TEST(signals_out_of_the_domain_are_denied_with_eperm)
{
	NEED_ABI(6);
	const char *rw[] = {g_rw};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_BEST_EFFORT, NULL, 0, rw, 1);
	prepare_ok(&s, &p);
	ASSERT_BODY(&p, body_kill_denied);
	ll_prepared_close(&p);
	s.scopes = LL_SCOPE_ABSTRACT_UNIX; /* control: no signal scope */
	prepare_ok(&s, &p);
	ASSERT_BODY(&p, body_kill_allowed);
	ll_prepared_close(&p);
}
END_TEST

/* ---- missing paths, zero rules, unavailability ------------------------------------------ */

static void body_missing_path(char *m)
{
	int fd;
	EXPECT_OK(m, fd = open(at(g_rw, "new"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	close(fd);
	EXPECT_ERR(m, open(at(g_ro, "new"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), EACCES);
	EXPECT_ERR(m, open(at(g_out, "secret"), O_RDONLY | O_CLOEXEC), EACCES);
}

START_TEST(missing_path_is_skipped_and_the_rest_enforced_under_best_effort)
{
	const char *ro[] = {"/nonexistent/ll-test/app", g_ro};
	const char *rw[] = {g_rw};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_BEST_EFFORT, ro, 2, rw, 1);
	prepare_ok(&s, &p);
	ck_assert_int_eq(p.report.n_rules, 2);
	ck_assert_int_eq(p.report.n_skipped, 1);
	ck_assert_ptr_nonnull(strstr(p.report.skipped, "/nonexistent/ll-test/app"));
	ASSERT_BODY(&p, body_missing_path);
	ll_prepared_close(&p);
}
END_TEST

START_TEST(missing_path_fails_hard_requirement_naming_it)
{
	const char *ro[] = {g_ro, "/nonexistent/ll-test/app"};
	struct ll_spec s;
	struct ll_prepared p;
	struct sv_err err = {0};
	spec_paths(&s, LL_HARD_REQUIREMENT, ro, 2, NULL, 0);
	ck_assert_int_eq(ll_prepare(&s, &p, &err), -ENOENT);
	ck_assert_int_eq(p.ruleset_fd, -1);
	ck_assert_msg(strstr(err.msg, "/nonexistent/ll-test/app") && strstr(err.msg, "read_only"),
		      "%s", err.msg);
	ll_prepared_close(&p);
}
END_TEST

START_TEST(inaccessible_path_is_a_degraded_finding_not_silence)
{
	/* ENOTDIR: a path through a regular file. */
	char bad[256];
	snprintf(bad, sizeof(bad), "%s/x", at(g_rw, "file"));
	const char *ro[] = {bad};
	const char *rw[] = {g_rw};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_BEST_EFFORT, ro, 1, rw, 1);
	struct capture c;
	capture_begin(&c);
	prepare_ok(&s, &p);
	capture_end(&c);
	ck_assert_int_eq(p.report.n_skipped, 1);
	ck_assert_ptr_nonnull(strstr(c.text, "\"event\":\"landlock_degraded\""));
	ck_assert_ptr_nonnull(strstr(c.text, bad));
	ll_prepared_close(&p);
}
END_TEST

START_TEST(zero_usable_rules_run_without_landlock_and_say_so_under_best_effort)
{
	const char *ro[] = {"/nonexistent/a", "/nonexistent/b"};
	struct ll_spec s;
	struct ll_prepared p;
	struct sv_err err = {0};
	spec_paths(&s, LL_BEST_EFFORT, ro, 2, NULL, 0);
	struct capture c;
	capture_begin(&c);
	int rc = ll_prepare(&s, &p, &err);
	capture_end(&c);
	ck_assert_int_eq(rc, 0);
	ck_assert(!p.report.enforced);
	ck_assert_int_eq(p.ruleset_fd, -1);
	ck_assert_int_eq(p.report.n_skipped, 2);
	ck_assert_ptr_nonnull(strstr(c.text, "\"event\":\"landlock_unavailable\""));
	ck_assert_ptr_nonnull(strstr(c.text, "\"severity\":\"HIGH\""));
	ck_assert_ptr_nonnull(strstr(c.text, "no usable paths"));
	ck_assert_int_eq(ll_enforce(&p, &err), 0); /* nothing to do, nothing restricted */
	ll_prepared_close(&p);
	ll_prepared_close(&p); /* idempotent */
}
END_TEST

START_TEST(zero_usable_rules_fail_hard_requirement)
{
	const char *ro[] = {"/nonexistent/a"};
	struct ll_spec s;
	struct ll_prepared p;
	struct sv_err err = {0};
	spec_paths(&s, LL_HARD_REQUIREMENT, NULL, 0, NULL, 0);
	ck_assert_int_lt(ll_prepare(&s, &p, &err), 0);
	ck_assert_msg(strstr(err.msg, "no usable paths"), "%s", err.msg);
	ll_prepared_close(&p);
	spec_paths(&s, LL_HARD_REQUIREMENT, ro, 1, NULL, 0);
	ck_assert_int_lt(ll_prepare(&s, &p, &err), 0);
	ll_prepared_close(&p);
}
END_TEST

START_TEST(unavailable_landlock_degrades_best_effort_with_a_high_finding)
{
	fake_landlock_errno(ENOSYS);
	const char *ro[] = {g_ro};
	struct ll_spec s;
	struct ll_prepared p;
	struct sv_err err = {0};
	spec_paths(&s, LL_BEST_EFFORT, ro, 1, NULL, 0);
	struct capture c;
	capture_begin(&c);
	int rc = ll_prepare(&s, &p, &err);
	capture_end(&c);
	ck_assert_int_eq(rc, 0);
	ck_assert(!p.report.enforced);
	ck_assert_int_eq(p.report.kernel_abi, -ENOSYS);
	ck_assert_int_eq(p.report.abi, 0);
	ck_assert_ptr_nonnull(strstr(c.text, "\"event\":\"landlock_unavailable\""));
	ck_assert_ptr_nonnull(strstr(c.text, "\"severity\":\"HIGH\""));
	ck_assert_ptr_nonnull(strstr(c.text, "not built into this kernel"));
	char line[2048];
	ll_report_format(&p.report, line, sizeof(line));
	ck_assert_msg(strstr(line, "enforced=no") && strstr(line, "kernel_abi=-38"), "%s", line);
	ll_prepared_close(&p);
}
END_TEST

START_TEST(unavailable_landlock_fails_hard_requirement)
{
	fake_landlock_errno(EOPNOTSUPP);
	const char *ro[] = {g_ro};
	struct ll_spec s;
	struct ll_prepared p;
	struct sv_err err = {0};
	spec_paths(&s, LL_HARD_REQUIREMENT, ro, 1, NULL, 0);
	ck_assert_int_eq(ll_prepare(&s, &p, &err), -EOPNOTSUPP);
	ck_assert_msg(strstr(err.msg, "hard_requirement") && strstr(err.msg, "disabled at boot"),
		      "%s", err.msg);
	ll_prepared_close(&p);
}
END_TEST

/* ---- privilege order, audit flags, report, self-test, input ----------------------------- */

static void body_after_drop(char *m)
{
	if (getuid() != 65534) {
		failf(m, "still uid %d", (int)getuid());
		return;
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		failf(m, "no_new_privs not set by ll_enforce");
		return;
	}
	/* out/ is mode 0777: only Landlock stands in the way. */
	EXPECT_ERR(m, open(at(g_out, "new"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), EACCES);
	EXPECT_OK(m, open(at(g_rw, "new"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
}

START_TEST(ruleset_built_as_root_is_enforced_after_the_privilege_drop)
{
	/* private/ is 0700 root: an unprivileged process cannot even O_PATH-open inner/. */
	char priv[160], inner[192];
	snprintf(priv, sizeof(priv), "%s/private", g_base);
	snprintf(inner, sizeof(inner), "%s/inner", priv);
	ck_assert_int_eq(mkdir(priv, 0700), 0);
	ck_assert_int_eq(mkdir(inner, 0755), 0);
	ck_assert_int_eq(chmod(g_base, 0755), 0);
	const char *ro[] = {inner};
	const char *rw[] = {g_rw};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_HARD_REQUIREMENT, ro, 1, rw, 1);
	prepare_ok(&s, &p);
	ck_assert_int_eq(p.report.n_rules, 2);
	char out[MSG_MAX];
	run_in_domain_as(&p, 65534, body_after_drop, out);
	ck_assert_msg(strcmp(out, "ok") == 0, "%s", out);
	ll_prepared_close(&p);
}
END_TEST

START_TEST(audit_flags_follow_the_abi_and_never_fail_hard_requirement)
{
	NEED_ABI(6);
	const char *rw[] = {g_rw};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_HARD_REQUIREMENT, NULL, 0, rw, 1);
	s.audit = LL_AUDIT_NEW_EXEC_ON;
	if (kernel_abi() >= 7) {
		prepare_ok(&s, &p);
		ck_assert_uint_eq(p.restrict_flags, LL_AUDIT_NEW_EXEC_ON);
		ASSERT_BODY(&p, body_rw_dir); /* the kernel accepts the flag */
		ll_prepared_close(&p);
	}
	s.max_abi = 6;
	prepare_ok(&s, &p);
	ck_assert_uint_eq(p.restrict_flags, 0);
	ck_assert_uint_eq(p.report.audit_missing, LL_AUDIT_NEW_EXEC_ON);
	ll_prepared_close(&p);
}
END_TEST

START_TEST(report_lists_abi_rights_scopes_rules_and_skips)
{
	const char *ro[] = {g_ro, "/nonexistent/ll-test/opt"};
	const char *rw[] = {g_rw};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_BEST_EFFORT, ro, 2, rw, 1);
	prepare_ok(&s, &p);
	char line[2048];
	ll_report_format(&p.report, line, sizeof(line));
	char want[32];
	snprintf(want, sizeof(want), "abi=%d ", kernel_abi());
	ck_assert_msg(strstr(line, want), "%s", line);
	ck_assert_msg(strstr(line, "enforced=yes compat=best_effort"), "%s", line);
	ck_assert_msg(strstr(line, "rules=2 skipped=1 [/nonexistent/ll-test/opt ("), "%s", line);
	ck_assert_msg(strstr(line, "fs=execute,write_file,read_file,read_dir"), "%s", line);
	if (kernel_abi() >= 6)
		ck_assert_msg(strstr(line, "ioctl_dev scopes=abstract_unix_socket,signal") &&
				  strstr(line, "missing=none"),
			      "%s", line);
	ll_prepared_close(&p);
	char names[64];
	ll_fs_names(0, names, sizeof(names));
	ck_assert_str_eq(names, "none");
	ll_fs_names(LL_FS_REFER | LL_FS_EXECUTE, names, sizeof(names));
	ck_assert_str_eq(names, "execute,refer");
}
END_TEST

START_TEST(selftest_observes_a_real_denial)
{
	struct sv_err err = {0};
	int rc = ll_selftest_denied_open(&err);
	ck_assert_msg(rc == 2, "self-test: %d %s", rc, err.msg);
	/* The caller itself was not restricted. */
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	close(fd);
}
END_TEST

START_TEST(selftest_fails_when_landlock_is_unavailable)
{
	fake_landlock_errno(EPERM);
	struct sv_err err = {0};
	ck_assert_int_eq(ll_selftest_denied_open(&err), -EPERM);
	ck_assert_msg(strstr(err.msg, "blocked"), "%s", err.msg);
}
END_TEST

START_TEST(relative_path_and_unknown_bits_are_rejected_with_position)
{
	const char *rw[] = {"/tmp", "relative/dir"};
	struct ll_spec s;
	struct ll_prepared p;
	struct sv_err err = {0};
	spec_paths(&s, LL_BEST_EFFORT, NULL, 0, rw, 2);
	ck_assert_int_eq(ll_prepare(&s, &p, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "landlock: read_write[1]: path must be absolute");
	ll_prepared_close(&p);
	spec_paths(&s, LL_BEST_EFFORT, NULL, 0, rw, 1);
	s.fs_rights = 1ULL << 40;
	ck_assert_int_eq(ll_prepare(&s, &p, &err), -EINVAL);
	s.fs_rights = LL_FS_ALL;
	s.scopes = 1ULL << 5;
	ck_assert_int_eq(ll_prepare(&s, &p, &err), -EINVAL);
	ll_prepared_close(&p);
}
END_TEST

START_TEST(ruleset_fd_is_cloexec_and_enforce_is_reusable)
{
	const char *rw[] = {g_rw};
	struct ll_spec s;
	struct ll_prepared p;
	spec_paths(&s, LL_BEST_EFFORT, NULL, 0, rw, 1);
	prepare_ok(&s, &p);
	ck_assert(fcntl(p.ruleset_fd, F_GETFD) & FD_CLOEXEC);
	/* One prepared ruleset serves several children (main process, SSH sessions). */
	ASSERT_BODY(&p, body_rw_dir);
	ASSERT_BODY(&p, body_outside);
	ll_prepared_close(&p);
	ck_assert_int_eq(p.ruleset_fd, -1);
}
END_TEST

static Suite *landlock_suite(void)
{
	Suite *s = suite_create("landlock");
	TCase *tc = tcase_create("landlock");
	tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, abi_probe_reports_the_kernel_version);
	tcase_add_test(tc, probe_names_not_built_disabled_and_blocked);
	tcase_add_test(tc, ro_dir_is_readable_but_not_writable);
	tcase_add_test(tc, rw_dir_allows_create_write_truncate_mkdir_rename_unlink);
	tcase_add_test(tc, file_outside_policy_is_unreadable_even_with_mode_0777);
	tcase_add_test(tc, ro_file_rule_grants_read_only_to_that_file);
	tcase_add_test(tc, truncate_of_world_writable_file_in_ro_dir_is_denied);
	tcase_add_test(tc, abi_capped_at_2_reports_degradation_and_truncate_gap_is_real);
	tcase_add_test(tc, hard_requirement_refuses_below_abi_2_only);
	tcase_add_test(tc, hard_requirement_starts_on_abi_2_to_5_with_a_high_finding);
	tcase_add_test(tc, rename_and_link_across_the_policy_boundary_are_denied);
	tcase_add_test(tc, special_files_can_be_made_in_rw_dirs_only);
	tcase_add_test(tc, device_ioctl_needs_ioctl_dev_from_a_rw_rule);
	tcase_add_test(tc, dev_null_rw_and_urandom_ro_file_rules_work_under_hard_requirement);
	tcase_add_test(tc, abstract_unix_connect_out_of_the_domain_is_denied);
	tcase_add_test(tc, signals_out_of_the_domain_are_denied_with_eperm);
	tcase_add_test(tc, missing_path_is_skipped_and_the_rest_enforced_under_best_effort);
	tcase_add_test(tc, missing_path_fails_hard_requirement_naming_it);
	tcase_add_test(tc, inaccessible_path_is_a_degraded_finding_not_silence);
	tcase_add_test(tc, zero_usable_rules_run_without_landlock_and_say_so_under_best_effort);
	tcase_add_test(tc, zero_usable_rules_fail_hard_requirement);
	tcase_add_test(tc, unavailable_landlock_degrades_best_effort_with_a_high_finding);
	tcase_add_test(tc, unavailable_landlock_fails_hard_requirement);
	tcase_add_test(tc, ruleset_built_as_root_is_enforced_after_the_privilege_drop);
	tcase_add_test(tc, audit_flags_follow_the_abi_and_never_fail_hard_requirement);
	tcase_add_test(tc, report_lists_abi_rights_scopes_rules_and_skips);
	tcase_add_test(tc, selftest_observes_a_real_denial);
	tcase_add_test(tc, selftest_fails_when_landlock_is_unavailable);
	tcase_add_test(tc, relative_path_and_unknown_bits_are_rejected_with_position);
	tcase_add_test(tc, ruleset_fd_is_cloexec_and_enforce_is_reusable);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *why = NULL;
	struct sv_err err = {0};
	if (geteuid() != 0)
		why = "must run as root (rulesets are built as root before the privilege drop)";
	else if (ll_abi_probe(&err) < 1)
		why = err.msg;
	if (why) {
		fprintf(stderr, "test_landlock: SKIP: %s\n", why);
		return ci_strict() ? EXIT_FAILURE : EXIT_SUCCESS;
	}
	SRunner *sr = srunner_create(landlock_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
