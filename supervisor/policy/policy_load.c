/* Policy files: reading one (bounded, from a single open), telling INI from YAML, and choosing
 * which file applies when none is named (contract §3.4, docs/policy.md "Which policy file").
 *
 * An existing file that does not load is always an error: discovery never falls through to a
 * weaker candidate or to the default because the file it found is broken.
 */
#include "policy.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "supervisor/log.h"

#define COMP "policy"

/* Symlinks are followed on purpose: Kubernetes mounts ConfigMap files as symlinks, and the
 * file is read before anything untrusted runs. One open, then everything from the fd. */
static int read_file(const char *path, char **out, size_t *out_len, struct sv_err *err)
{
	if (!path || !*path)
		return sv_err_set(err, EINVAL, "policy file: empty path");
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return sv_err_set(err, errno, "%s: cannot open policy file: %s", path,
				  strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sv_err_set(err, errno, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return sv_err_set(err, EINVAL, "%s: policy file is not a regular file", path);
	if (st.st_size > POL_FILE_MAX)
		return sv_err_set(err, EFBIG, "%s: policy file is larger than %d bytes", path,
				  POL_FILE_MAX);
	/* Read one byte past the limit so a file that grew since fstat is still caught. */
	size_t cap = (size_t)st.st_size + 1, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return sv_err_set(err, ENOMEM, "%s: out of memory", path);
	for (;;) {
		if (len == cap) {
			if (cap > POL_FILE_MAX)
				return sv_err_set(err, EFBIG,
						  "%s: policy file is larger than %d bytes", path,
						  POL_FILE_MAX);
			size_t ncap =
			    cap * 2 > (size_t)POL_FILE_MAX + 1 ? (size_t)POL_FILE_MAX + 1 : cap * 2;
			char *nbuf = realloc(buf, ncap);
			if (!nbuf)
				return sv_err_set(err, ENOMEM, "%s: out of memory", path);
			buf = nbuf;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sv_err_set(err, errno, "%s: read: %s", path, strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > POL_FILE_MAX)
		return sv_err_set(err, EFBIG, "%s: policy file is larger than %d bytes", path,
				  POL_FILE_MAX);
	*out = sv_steal_ptr(&buf);
	*out_len = len;
	return 0;
}

typedef int (*load_fn)(const char *name, const char *buf, size_t len, struct pol_policy *out,
		       struct sv_err *err);

static int load_with(const char *path, load_fn fn, struct pol_policy *out, struct sv_err *err)
{
	pol_init(out);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = read_file(path, &buf, &len, err);
	return r < 0 ? r : fn(path, buf, len, out, err);
}

int pol_load_file(const char *path, struct pol_policy *out, struct sv_err *err)
{
	return load_with(path, pol_load_buffer, out, err);
}

int pol_load_yaml_file(const char *path, struct pol_policy *out, struct sv_err *err)
{
	return load_with(path, pol_load_yaml_buffer, out, err);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

enum pol_format pol_format_guess(const char *path, const char *buf, size_t len)
{
	if (path && (ends_with(path, ".yaml") || ends_with(path, ".yml")))
		return POL_FORMAT_YAML;
	if (path && ends_with(path, ".ini"))
		return POL_FORMAT_INI;
	size_t i = 0;
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len) {
		while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r'))
			i++;
		if (i < len && buf[i] != '\n' && buf[i] != '#' && buf[i] != ';')
			return buf[i] == '[' ? POL_FORMAT_INI : POL_FORMAT_YAML;
		const char *nl = memchr(buf + i, '\n', len - i);
		if (!nl)
			break;
		i = (size_t)(nl - buf) + 1;
	}
	return POL_FORMAT_YAML;
}

int pol_load_path(const char *path, struct pol_policy *out, struct sv_err *err)
{
	pol_init(out);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = read_file(path, &buf, &len, err);
	if (r < 0)
		return r;
	if (pol_format_guess(path, buf, len) == POL_FORMAT_YAML)
		return pol_load_yaml_buffer(path, buf, len, out, err);
	return pol_load_buffer(path, buf, len, out, err);
}

/* Does @path exist (as anything: a broken candidate is reported by loading it)? */
static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 || errno != ENOENT;
}

int pol_load(const char *explicit_path, const char *root, struct pol_policy *out,
	     struct sv_err *err)
{
	if (explicit_path && *explicit_path)
		return pol_load_path(explicit_path, out, err);
	static const char *const candidates[] = {POL_YAML_FILE, POL_LEGACY_YAML_FILE, POL_INI_FILE};
	char path[SV_ARRAY_SIZE(candidates)][PATH_MAX];
	if (!root || !*root || strcmp(root, "/") == 0)
		root = "";
	size_t found = SV_ARRAY_SIZE(candidates);
	for (size_t i = 0; i < SV_ARRAY_SIZE(candidates); i++) {
		if (sv_fmt(path[i], sizeof(path[i]), "%s%s", root, candidates[i]) >=
		    sizeof(path[i]) - 1)
			return sv_err_set(err, ENAMETOOLONG, "policy root is too long");
		if (found == SV_ARRAY_SIZE(candidates) && exists(path[i]))
			found = i;
	}
	if (found == SV_ARRAY_SIZE(candidates)) {
		if (err)
			*err = (struct sv_err){0};
		return pol_set_default(out, err);
	}
	for (size_t i = found + 1; i < SV_ARRAY_SIZE(candidates); i++)
		if (exists(path[i]))
			sv_log_kv(SV_LOG_WARN, COMP, "policy_file_ignored",
				  "policy file ignored: an earlier candidate is in force",
				  SV_KVS({"used", path[found]}, {"ignored", path[i]}));
	if (found == SV_ARRAY_SIZE(candidates) - 1)
		return pol_load_file(path[found], out, err);
	return pol_load_yaml_file(path[found], out, err);
}
