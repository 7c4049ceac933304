/* Baseline enrichment (contract §3.3): add the proxy and GPU baseline paths that exist under a
 * root to a loaded policy, plus (ours) the program directories of images that are not
 * merged-/usr. It only stat()s and lists directories, never opens a file for
 * writing, and never takes a path away from the user: an explicit read_only path stays
 * read_only, except /proc, which the GPU baseline promotes.
 */
#include "policy.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns/proxy/l7/px_tls.h"

/* --- baseline enrichment (contract §3.3) --------------------------------------------------- */

static const char *const proxy_ro[] = {"/usr",	   "/lib",  "/etc",	   "/app",
				       "/var/log", "/proc", "/dev/urandom"};
static const char *const proxy_rw[] = {"/tmp"};
/* Ours, not upstream's: in an image that is not merged-/usr (Alpine, busybox) these are real
 * directories holding the shell and the loader, and without them the restrictive default
 * cannot even start /bin/sh. Where they are symlinks into /usr (Debian, Fedora) /usr covers
 * them and they are not added. Independent of the flags: every policy needs its programs. */
static const char *const system_ro[] = {"/bin", "/sbin", "/lib64"};
static const char *const gpu_ro[] = {"/run/nvidia-persistenced", "/usr/lib/wsl"};
static const char *const gpu_rw[] = {
    "/dev/nvidiactl",	   "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset", "/dev/dxg",	      "/proc"};

static const char *root_of(const char *root)
{
	return (root && strcmp(root, "/") != 0) ? root : "";
}

/* Does @path exist under @root? Symlinks are followed, as OpenShell's Path::exists() does. */
static bool exists_under(const char *root, const char *path)
{
	char buf[PATH_MAX];
	struct stat st;
	if (sv_fmt(buf, sizeof(buf), "%s%s", root_of(root), path) >= sizeof(buf) - 1)
		return false;
	return stat(buf, &st) == 0;
}

/* Is @path under @root a directory itself, not a symlink to one? */
static bool real_dir_under(const char *root, const char *path)
{
	char buf[PATH_MAX];
	struct stat st;
	if (sv_fmt(buf, sizeof(buf), "%s%s", root_of(root), path) >= sizeof(buf) - 1)
		return false;
	return lstat(buf, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_gpu_node(const char *name)
{
	if (strncmp(name, "nvidia", 6) != 0 || name[6] == '\0')
		return false;
	for (const char *c = name + 6; *c; c++)
		if (*c < '0' || *c > '9')
			return false;
	return true;
}

static int gpu_node_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t lx = strlen(x), ly = strlen(y);
	return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

/* Append every /dev/nvidia<digits> under @root to @rw, in numeric order. */
static int add_gpu_nodes(const char *root, struct pol_strv *rw)
{
	char dev[PATH_MAX];
	if (sv_fmt(dev, sizeof(dev), "%s/dev", root_of(root)) >= sizeof(dev) - 1)
		return 0;
	int fd = open(dev, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	struct pol_strv found = {0};
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d)))
		if (is_gpu_node(de->d_name)) {
			char path[PATH_MAX];
			sv_fmt(path, sizeof(path), "/dev/%s", de->d_name);
			r = pol_strv_push(&found, path);
		}
	closedir(d);
	if (found.n > 1)
		qsort(found.v, found.n, sizeof(*found.v), gpu_node_cmp);
	for (size_t i = 0; r == 0 && i < found.n; i++)
		if (!pol_strv_contains(rw, found.v[i]))
			r = pol_strv_push(rw, found.v[i]);
	pol_strv_free(&found);
	return r;
}

static int push_all(struct pol_strv *sv, const char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!pol_strv_contains(sv, paths[i]) && pol_strv_push(sv, paths[i]) < 0)
			return -ENOMEM;
	return 0;
}

static void strv_remove(struct pol_strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0) {
			free(sv->v[i]);
			memmove(&sv->v[i], &sv->v[i + 1], (sv->n - i - 1) * sizeof(*sv->v));
			sv->n--;
			return;
		}
}

/* The candidate lists: what the active baselines want read-only and read-write. */
static int baseline_collect(const char *root, unsigned int flags, struct pol_strv *ro,
			    struct pol_strv *rw)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < SV_ARRAY_SIZE(system_ro); i++)
		if (real_dir_under(root, system_ro[i]) && !pol_strv_contains(ro, system_ro[i]))
			r = pol_strv_push(ro, system_ro[i]);
	if (r == 0 && (flags & POL_ENRICH_PROXY)) {
		r = push_all(ro, proxy_ro, SV_ARRAY_SIZE(proxy_ro));
		/* The sandbox CA files the agent is pointed at (l7 contract §1.3). */
		const char *tls_dir = px_tls_dir();
		if (r == 0 && !pol_strv_contains(ro, tls_dir))
			r = pol_strv_push(ro, tls_dir);
		if (r == 0)
			r = push_all(rw, proxy_rw, SV_ARRAY_SIZE(proxy_rw));
	}
	if (r == 0 && (exists_under(root, "/dev/nvidiactl") || exists_under(root, "/dev/dxg"))) {
		r = push_all(ro, gpu_ro, SV_ARRAY_SIZE(gpu_ro));
		if (r == 0)
			r = push_all(rw, gpu_rw, SV_ARRAY_SIZE(gpu_rw));
		if (r == 0)
			r = add_gpu_nodes(root, rw);
	}
	/* A path the baseline wants read-write (/proc for CUDA) is not also wanted read-only. */
	for (size_t i = 0; r == 0 && i < rw->n; i++)
		strv_remove(ro, rw->v[i]);
	return r;
}

static int baseline_apply(struct pol_policy *p, const char *root, const struct pol_strv *ro,
			  const struct pol_strv *rw)
{
	int changes = 0;
	for (size_t i = 0; i < ro->n; i++) {
		const char *path = ro->v[i];
		if (pol_strv_contains(&p->read_only, path) ||
		    pol_strv_contains(&p->read_write, path) || !exists_under(root, path))
			continue;
		if (pol_strv_push(&p->read_only, path) < 0)
			return -ENOMEM;
		changes++;
	}
	for (size_t i = 0; i < rw->n; i++) {
		const char *path = rw->v[i];
		if (pol_strv_contains(&p->read_write, path) || !exists_under(root, path))
			continue;
		if (pol_strv_contains(&p->read_only, path)) {
			/* An explicit read-only path stays read-only (§13 fix 9); only /proc is
			 * promoted, because CUDA writes /proc/<pid>/task/<tid>/comm (§13 fix 10).
			 */
			if (strcmp(path, "/proc") != 0)
				continue;
			strv_remove(&p->read_only, path);
		}
		if (pol_strv_push(&p->read_write, path) < 0)
			return -ENOMEM;
		changes++;
	}
	return changes;
}

int pol_enrich(struct pol_policy *p, const char *root, unsigned int flags, struct sv_err *err)
{
	struct pol_strv ro = {0}, rw = {0};
	int r = baseline_collect(root, flags, &ro, &rw);
	if (r == 0)
		r = baseline_apply(p, root, &ro, &rw);
	pol_strv_free(&ro);
	pol_strv_free(&rw);
	if (r < 0)
		return sv_err_set(err, -r, "baseline enrichment: out of memory");
	return r;
}
