/* Policy binary paths resolved through symlinks inside the sandbox's root (contract §8: the
 * kernel reports /proc/<pid>/exe as the canonical target, so a rule naming /usr/bin/python3 must
 * also match /usr/bin/python3.11). Resolution only adds the target next to the link; it never
 * removes or rewrites what the policy says and never leaves the root. Whoever owns a link, it is
 * followed: an agent that can make a link at a rule's path could put any program there anyway.
 */
#include "policy.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/log.h"

#define COMP "policy"

/* Linux's SYMLOOP_MAX (40), as OpenShell's resolver. */
#define POL_SYMLINKS_MAX 40

static const char *root_prefix(const char *root)
{
	return (root && *root && strcmp(root, "/") != 0) ? root : "";
}

/* Drop the last component of @cur ("/a/b" -> "/a", "/a" -> ""); ".." never goes above the
 * root, as in a chroot. */
static void pop_component(char *cur)
{
	char *slash = strrchr(cur, '/');
	if (slash)
		*slash = '\0';
}

int pol_binary_resolve(const char *root, const char *path, char *out, size_t size)
{
	const char *pre = root_prefix(root);
	char cur[PATH_MAX] = ""; /* resolved so far, inside the root, "" = the root */
	char pending[PATH_MAX];	 /* what is still to walk */
	char probe[PATH_MAX];	 /* root prefix + candidate, for lstat/readlink */
	char target[PATH_MAX];
	unsigned links = 0;

	if (!path || path[0] != '/')
		return -EINVAL;
	if (sv_fmt(pending, sizeof(pending), "%s", path) >= sizeof(pending) - 1)
		return -ENAMETOOLONG;
	size_t pos = 0;
	for (;;) {
		while (pending[pos] == '/')
			pos++;
		if (pending[pos] == '\0')
			break;
		size_t len = strcspn(pending + pos, "/");
		const char *comp = pending + pos;
		size_t next = pos + len;
		if (len == 1 && comp[0] == '.') {
			pos = next;
			continue;
		}
		if (len == 2 && comp[0] == '.' && comp[1] == '.') {
			pop_component(cur);
			pos = next;
			continue;
		}
		size_t cl = strlen(cur);
		if (cl + 1 + len >= sizeof(cur))
			return -ENAMETOOLONG;
		char cand[PATH_MAX];
		memcpy(cand, cur, cl);
		cand[cl] = '/';
		memcpy(cand + cl + 1, comp, len);
		cand[cl + 1 + len] = '\0';
		if (sv_fmt(probe, sizeof(probe), "%s%s", pre, cand) >= sizeof(probe) - 1)
			return -ENAMETOOLONG;
		struct stat st;
		if (lstat(probe, &st) < 0)
			return -errno;
		if (!S_ISLNK(st.st_mode)) {
			size_t after = next + strspn(pending + next, "/");
			if (pending[after] != '\0' && !S_ISDIR(st.st_mode))
				return -ENOTDIR;
			memcpy(cur, cand, cl + 1 + len + 1);
			pos = next;
			continue;
		}
		if (++links > POL_SYMLINKS_MAX)
			return -ELOOP;
		ssize_t n = readlink(probe, target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOENT;
		target[n] = '\0';
		/* The rest becomes target + remainder; an absolute target restarts at the root. */
		char rest[PATH_MAX];
		if (sv_fmt(rest, sizeof(rest), "%s%s", target, pending + next) >= sizeof(rest) - 1)
			return -ENAMETOOLONG;
		memcpy(pending, rest, strlen(rest) + 1);
		pos = 0;
		if (target[0] == '/')
			cur[0] = '\0';
	}
	if (sv_fmt(out, size, "%s", cur[0] ? cur : "/") >= size - 1)
		return -ENAMETOOLONG;
	return 0;
}

static const char *why(int r)
{
	switch (r) {
	case -ENOENT:
		return "does not exist in the sandbox (or a link in its chain dangles)";
	case -ELOOP:
		return "symlink loop (more than 40 links)";
	case -ENOTDIR:
		return "a component is not a directory";
	default:
		return strerror(-r);
	}
}

int pol_resolve_binaries(struct pol_policy *p, const char *root)
{
	int added = 0;
	char res[PATH_MAX];
	for (size_t i = 0; i < p->n_rules; i++) {
		struct pol_network_rule *r = &p->rules[i];
		size_t n = r->binaries.n; /* only what the policy named, not what we add */
		for (size_t j = 0; j < n; j++) {
			const char *b = r->binaries.v[j];
			if (!b || strchr(b, '*'))
				continue;
			int rc = pol_binary_resolve(root, b, res, sizeof(res));
			if (rc < 0) {
				sv_log_kv(
				    SV_LOG_WARN, COMP, "policy_binary_unresolved",
				    "policy binary matched literally only",
				    SV_KVS({"rule", r->name}, {"path", b}, {"reason", why(rc)}));
				continue;
			}
			if (strcmp(res, b) == 0 || pol_strv_contains(&r->binaries, res))
				continue;
			/* A target name with '*' would read as a glob: never widen a rule so. */
			struct sv_err e = {0};
			if (strchr(res, '*') || pol_binary_check(res, &e) < 0) {
				sv_log_kv(
				    SV_LOG_WARN, COMP, "policy_binary_unresolved",
				    "policy binary matched literally only",
				    SV_KVS({"rule", r->name}, {"path", b},
					   {"reason", "its target is not a valid policy path"}));
				continue;
			}
			if (r->binaries.n >= POL_RULE_ITEMS_MAX) {
				sv_log_kv(
				    SV_LOG_WARN, COMP, "policy_binary_unresolved",
				    "policy binary matched literally only",
				    SV_KVS({"rule", r->name}, {"path", b},
					   {"reason", "the rule has no room for its target"}));
				continue;
			}
			if (pol_strv_push(&r->binaries, res) < 0)
				return -ENOMEM;
			added++;
			sv_log_kv(SV_LOG_INFO, COMP, "policy_binary_resolved",
				  "policy binary symlink resolved: both paths match",
				  SV_KVS({"rule", r->name}, {"path", b}, {"resolved", res}));
		}
	}
	return added;
}
