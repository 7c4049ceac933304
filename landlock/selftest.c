/* --self-test probe: prove Landlock denies, not merely that the kernel reports an ABI.
 *
 * Builds a real ruleset through ll_prepare() and enforces it with ll_enforce() in a forked
 * child, which then tries opens that file modes allow. The child only makes async-signal-safe
 * calls and reports through a CLOEXEC pipe; it never restricts the caller.
 */
#include "landlock/landlock.h"

#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* What went wrong at which step, written once by the child. */
enum ll_st_step {
	LL_ST_OK = 0,
	LL_ST_ENFORCE, /* ll_enforce failed: errnum */
	LL_ST_ALLOWED, /* the allowed /dev/null open failed: errnum */
	LL_ST_ROOT,    /* open("/") not denied with EACCES: errnum, 0 when it opened */
	LL_ST_PROC,    /* /proc/self/status not denied with EACCES: likewise */
};

struct ll_st_result {
	int step;
	int errnum;
	int denials;
};

/* Expect @path to be denied with EACCES; returns 0 or -1 with @res saying why not. */
static int ll_st_expect_denied(const char *path, int flags, int step, struct ll_st_result *res)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		res->step = step;
		res->errnum = 0;
		return -1;
	}
	if (errno != EACCES) {
		res->step = step;
		res->errnum = errno;
		return -1;
	}
	res->denials++;
	return 0;
}

static void ll_st_child(const struct ll_prepared *p, int wfd)
{
	struct ll_st_result res = {LL_ST_OK, 0, 0};
	struct sv_err err;
	/* Readable by mode right now; must not be once restricted. */
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	bool proc_ok = fd >= 0;
	if (fd >= 0)
		close(fd);
	if (ll_enforce(p, &err) < 0) {
		res.step = LL_ST_ENFORCE;
		res.errnum = err.code;
		goto out;
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		res.step = LL_ST_ALLOWED;
		res.errnum = errno;
		goto out;
	}
	close(fd);
	if (ll_st_expect_denied("/", O_RDONLY | O_DIRECTORY, LL_ST_ROOT, &res) < 0)
		goto out;
	if (proc_ok)
		(void)ll_st_expect_denied("/proc/self/status", O_RDONLY, LL_ST_PROC, &res);
out:
	(void)sv_write_all(wfd, &res, sizeof(res));
	_exit(0);
}

static int ll_st_report(const struct ll_st_result *res, struct sv_err *err)
{
	const char *what = res->step == LL_ST_ROOT ? "/" : "/proc/self/status";
	switch (res->step) {
	case LL_ST_OK:
		return res->denials;
	case LL_ST_ENFORCE:
		return sv_err_set(err, res->errnum, "landlock self-test: enforce: %s",
				  strerror(res->errnum));
	case LL_ST_ALLOWED:
		return sv_err_set(err, res->errnum,
				  "landlock self-test: /dev/null denied although allowed: %s",
				  strerror(res->errnum));
	default:
		if (res->errnum == 0)
			return sv_err_set(
			    err, ENOTRECOVERABLE,
			    "landlock self-test: %s opened under a domain denying it: "
			    "Landlock is not enforcing",
			    what);
		return sv_err_set(err, res->errnum,
				  "landlock self-test: %s failed with %s instead of EACCES", what,
				  strerror(res->errnum));
	}
}

int ll_selftest_denied_open(struct sv_err *err)
{
	static const char *const allowed[] = {"/dev/null"};
	struct ll_spec spec;
	ll_spec_init(&spec);
	spec.compat = LL_HARD_REQUIREMENT;
	spec.fs_rights = LL_FS_READ_FILE | LL_FS_READ_DIR;
	spec.scopes = 0;
	spec.read_only = allowed;
	spec.n_read_only = SV_ARRAY_SIZE(allowed);
	struct ll_prepared prep;
	int rc = ll_prepare(&spec, &prep, err);
	if (rc < 0) {
		ll_prepared_close(&prep);
		return rc;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		rc = sv_err_set(err, errno, "landlock self-test: pipe: %s", strerror(errno));
		ll_prepared_close(&prep);
		return rc;
	}
	_cleanup_close_ int rd = p[0];
	_cleanup_close_ int wr = p[1];
	pid_t pid = fork();
	if (pid == 0)
		ll_st_child(&prep, wr);
	int fork_errno = errno;
	ll_prepared_close(&prep);
	close(sv_steal_fd(&wr));
	if (pid < 0)
		return sv_err_set(err, fork_errno, "landlock self-test: fork: %s",
				  strerror(fork_errno));

	struct ll_st_result res = {-1, 0, 0};
	size_t got = 0;
	while (got < sizeof(res)) {
		ssize_t n = read(rd, (char *)&res + got, sizeof(res) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got != sizeof(res))
		return sv_err_set(err, EPROTO, "landlock self-test: child died without a result");
	return ll_st_report(&res, err);
}
