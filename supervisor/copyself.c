/* `copy-self DEST`: install this binary somewhere else, atomically (contract §1.1).
 *
 * Used by Kubernetes init containers whose image has no `cp` or shell. The copy is written to a
 * temporary file in the target directory, fsynced, made 0755 and renamed over DEST, so a reader
 * never sees a partial binary. It must never follow a half-written file into place.
 */
#include "copyself.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int mkdir_p(const char *path, struct sv_err *err)
{
	char buf[PATH_MAX];
	if (sv_fmt(buf, sizeof(buf), "%s", path) >= sizeof(buf) - 1)
		return sv_err_set(err, ENAMETOOLONG, "%s: path too long", path);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return sv_err_set(err, errno, "cannot create %s: %s", buf,
						  strerror(errno));
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

static int copy_fd(int in, int out)
{
	char buf[64 * 1024];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		int r = sv_write_all(out, buf, (size_t)n);
		if (r < 0)
			return r;
	}
}

int sv_copy_self(const char *dest, struct sv_err *err)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return sv_err_set(err, errno, "cannot find own executable (/proc/self/exe): %s",
				  strerror(errno));
	self[n] = '\0';
	_cleanup_close_ int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return sv_err_set(err, errno, "cannot open own executable: %s", strerror(errno));

	char target[PATH_MAX];
	struct stat st;
	if (stat(dest, &st) == 0 && S_ISDIR(st.st_mode)) {
		const char *base = strrchr(self, '/');
		base = base ? base + 1 : self;
		if (sv_fmt(target, sizeof(target), "%s/%s", dest, base) >= sizeof(target) - 1)
			return sv_err_set(err, ENAMETOOLONG, "%s: path too long", dest);
	} else if (sv_fmt(target, sizeof(target), "%s", dest) >= sizeof(target) - 1) {
		return sv_err_set(err, ENAMETOOLONG, "%s: path too long", dest);
	}

	char dirbuf[PATH_MAX], basebuf[PATH_MAX];
	memcpy(dirbuf, target, sizeof(dirbuf));
	memcpy(basebuf, target, sizeof(basebuf));
	const char *dir = dirname(dirbuf);
	const char *base = basename(basebuf);
	int r = mkdir_p(dir, err);
	if (r < 0)
		return r;

	char tmp[PATH_MAX];
	if (sv_fmt(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base) >= sizeof(tmp) - 1)
		return sv_err_set(err, ENAMETOOLONG, "%s: path too long", target);
	_cleanup_close_ int out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0)
		return sv_err_set(err, errno, "cannot create a temporary file in %s: %s", dir,
				  strerror(errno));
	r = copy_fd(in, out);
	if (r == 0 && fchmod(out, 0755) < 0)
		r = -errno;
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, target) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return sv_err_set(err, r, "cannot install %s: %s", target, strerror(-r));
	}
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd); /* make the rename durable */
	return 0;
}
