/* The mount fence (see fence.h): the plan is computed in the parent; a helper child builds the
 * agent's root on a tmpfs in a new mount namespace and hands fds to the namespace and to that
 * root back over a socketpair. Children join with setns + chroot, which also works where the
 * supervisor itself runs in a chroot or on an initramfs (pivot_root refuses both).
 *
 * The helper never mounts in the supervisor's namespace: its first act is unshare(CLONE_NEWNS)
 * and making every mount private. Between fork and its _exit it makes system calls only.
 */
#include "supervisor/isolation/fence.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor/log.h"

#define COMP "fence"

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* struct mount_attr of <linux/mount.h>, which older libc headers lack. */
struct fence_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

/* Where the helper may mount the agent's root tmpfs (in its own namespace only): the first of
 * these that exists and neither holds nor lies inside a policy path. */
static const char *const fence_staging[] = {"/mnt", "/srv", "/media", "/boot", "/opt", "/home",
					     "/root", "/sys", "/run", "/var", "/tmp", "/dev"};

/* ---- the plan (parent) --------------------------------------------------------------------- */

static bool fence_is_under(const char *path, const char *top)
{
	if (!strcmp(top, "/"))
		return true;
	size_t n = strlen(top);
	return !strncmp(path, top, n) && (path[n] == '/' || path[n] == '\0');
}

static int fence_mount_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sv_fence_mount *)a)->path,
		      ((const struct sv_fence_mount *)b)->path);
}

static int fence_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int fence_plan_add(struct sv_fence_plan *p, const char *path, bool rw, bool dir, bool proc,
			  struct sv_err *err)
{
	for (size_t i = 0; i < p->n; i++) {
		if (!strcmp(p->mounts[i].path, path)) {
			p->mounts[i].rw |= rw; /* both lists: read_write wins, as in Landlock */
			return 0;
		}
	}
	struct sv_fence_mount *m = realloc(p->mounts, (p->n + 1) * sizeof(*m));
	if (!m)
		return sv_err_set(err, ENOMEM, "mount fence: out of memory");
	p->mounts = m;
	char *copy = strdup(path);
	if (!copy)
		return sv_err_set(err, ENOMEM, "mount fence: out of memory");
	p->mounts[p->n++] = (struct sv_fence_mount){copy, rw, dir, proc};
	return 0;
}

static int fence_plan_path(struct sv_fence_plan *p, const char *path, bool rw, struct sv_err *err)
{
	if (path[0] != '/')
		return sv_err_set(err, EINVAL, "mount fence: %s: path must be absolute", path);
	/* /proc is never bound: the agent gets a new procfs (and /proc/self would resolve to the
	 * supervisor here). */
	if (fence_is_under(path, "/proc"))
		return fence_plan_add(p, "/proc", rw, true, true, err);
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(path, real) || stat(real, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			p->n_missing++;
			return 0;
		}
		return sv_err_set(err, errno, "mount fence: %s: %s", path, strerror(errno));
	}
	if (fence_is_under(real, "/proc"))
		return fence_plan_add(p, "/proc", rw, true, true, err);
	return fence_plan_add(p, real, rw, S_ISDIR(st.st_mode), false, err);
}

static int fence_skeleton_add(struct sv_fence_plan *p, const char *dir, struct sv_err *err)
{
	for (size_t i = 0; i < p->n_skeleton; i++)
		if (!strcmp(p->skeleton[i], dir))
			return 0;
	char **v = realloc(p->skeleton, (p->n_skeleton + 1) * sizeof(*v));
	if (!v)
		return sv_err_set(err, ENOMEM, "mount fence: out of memory");
	p->skeleton = v;
	if (!(v[p->n_skeleton] = strdup(dir)))
		return sv_err_set(err, ENOMEM, "mount fence: out of memory");
	p->n_skeleton++;
	return 0;
}

/* Is @dir at or below a bind of the plan (so it is not ours to make)? */
static bool fence_in_bind(const struct sv_fence_plan *p, const char *dir)
{
	for (size_t i = 0; i < p->n; i++)
		if (!p->mounts[i].proc && fence_is_under(dir, p->mounts[i].path))
			return true;
	return false;
}

int sv_fence_plan_build(const struct sv_fence_spec *spec, struct sv_fence_plan *p,
			struct sv_err *err)
{
	memset(p, 0, sizeof(*p));
	int r = 0;
	for (size_t i = 0; r >= 0 && i < spec->n_read_only; i++)
		r = fence_plan_path(p, spec->read_only[i], false, err);
	for (size_t i = 0; r >= 0 && i < spec->n_read_write; i++)
		r = fence_plan_path(p, spec->read_write[i], true, err);
	if (r < 0) {
		sv_fence_plan_free(p);
		return r;
	}
	if (p->n)
		qsort(p->mounts, p->n, sizeof(*p->mounts), fence_mount_cmp);
	/* A nested entry is kept only where it widens its ancestors (read_write under read_only);
	 * a recursive bind already shows everything below it. */
	size_t kept = 0;
	for (size_t i = 0; i < p->n; i++) {
		struct sv_fence_mount *m = &p->mounts[i];
		bool drop = false;
		for (size_t j = 0; !m->proc && j < kept; j++) {
			const struct sv_fence_mount *a = &p->mounts[j];
			if (!a->proc && fence_is_under(m->path, a->path) && (a->rw || !m->rw))
				drop = true;
		}
		if (drop) {
			free(m->path);
			continue;
		}
		p->mounts[kept++] = *m;
	}
	p->n = kept;
	if (spec->workdir && spec->workdir[0] == '/' && strcmp(spec->workdir, "/") != 0 &&
	    !fence_in_bind(p, spec->workdir) && p->n &&
	    !(p->workdir_stub = strdup(spec->workdir))) {
		sv_fence_plan_free(p);
		return sv_err_set(err, ENOMEM, "mount fence: out of memory");
	}
	for (size_t i = 0; i <= p->n; i++) {
		const char *path = i < p->n ? p->mounts[i].path : p->workdir_stub;
		if (!path)
			break;
		char dir[PATH_MAX];
		sv_fmt(dir, sizeof(dir), "%s", path);
		for (;;) {
			char *slash = strrchr(dir, '/');
			if (!slash)
				break;
			if (slash == dir)
				slash[1] = '\0';
			else
				*slash = '\0';
			if (!fence_in_bind(p, dir) && (r = fence_skeleton_add(p, dir, err)) < 0) {
				sv_fence_plan_free(p);
				return r;
			}
			if (!strcmp(dir, "/"))
				break;
		}
	}
	if (p->n_skeleton)
		qsort(p->skeleton, p->n_skeleton, sizeof(*p->skeleton), fence_str_cmp);
	return 0;
}

void sv_fence_plan_free(struct sv_fence_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->mounts[i].path);
	for (size_t i = 0; i < p->n_skeleton; i++)
		free(p->skeleton[i]);
	free(p->mounts);
	free(p->skeleton);
	free(p->workdir_stub);
	memset(p, 0, sizeof(*p));
}

/* ---- the helper (child: system calls only) --------------------------------------------------- */

struct fence_msg {
	int code;	/* 0 or a positive errno */
	int proc_errno; /* why /proc could not be restricted, 0 when it is */
	char msg[SV_ERR_MSG_MAX];
};

static char fence_mountinfo[256 * 1024]; /* the helper's, for the remount fallback */

/* @root + @path; "/" maps to @root itself. */
static int fence_join(char *buf, size_t size, const char *prefix, const char *path)
{
	size_t n = sv_fmt(buf, size, "%s%s", prefix, strcmp(path, "/") ? path : "");
	return n >= size - 1 ? -ENAMETOOLONG : 0;
}

static int fence_mkdirs(const char *path, struct sv_err *err)
{
	char buf[PATH_MAX];
	sv_fmt(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		struct stat st;
		if (lstat(buf, &st) < 0 && mkdir(buf, 0755) < 0 && errno != EEXIST)
			return sv_err_set(err, errno, "mkdir %s: %s", buf, strerror(errno));
		*p = c;
		if (!c)
			return 0;
	}
}

static void fence_unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

/* Kernels before 5.12 (no mount_setattr): remount every mount at or below @target on its own,
 * keeping the flags it has. */
static int fence_remount_below(const char *target, unsigned long add, struct sv_err *err)
{
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sv_err_set(err, errno, "read mountinfo: %s", strerror(errno));
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, fence_mountinfo + len, sizeof(fence_mountinfo) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(fence_mountinfo) - 1) {
			close(fd);
			return sv_err_set(err, EFBIG, "mountinfo larger than %zu bytes", len);
		}
	}
	close(fd);
	fence_mountinfo[len] = '\0';
	for (char *line = fence_mountinfo; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *f = line;
		for (int i = 0; i < 4 && f; i++) {
			f = strchr(f, ' ');
			if (f)
				f++;
		}
		char *end = f ? strchr(f, ' ') : NULL;
		if (end) {
			*end = '\0';
			fence_unescape(f);
			if (fence_is_under(f, target)) {
				struct statvfs sv;
				unsigned long keep = 0;
				if (statvfs(f, &sv) == 0)
					keep = sv.f_flag & (ST_NOSUID | ST_NODEV | ST_NOEXEC |
							    ST_NOATIME | ST_NODIRATIME |
							    ST_RELATIME | ST_RDONLY);
				if (mount(NULL, f, NULL, MS_REMOUNT | MS_BIND | keep | add, NULL) < 0)
					return sv_err_set(err, errno, "remount %s: %s", f,
							  strerror(errno));
			}
		}
		line = next;
	}
	return 0;
}

static int fence_set_attr(const char *target, bool rw, struct sv_err *err)
{
	struct fence_mount_attr a = {.attr_set = MOUNT_ATTR_NOSUID | (rw ? 0 : MOUNT_ATTR_RDONLY)};
	if (syscall(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &a, sizeof(a)) == 0)
		return 0;
	if (errno != ENOSYS)
		return sv_err_set(err, errno, "mount_setattr %s: %s", target, strerror(errno));
	return fence_remount_below(target, MS_NOSUID | (rw ? 0 : MS_RDONLY), err);
}

static int fence_bind(const struct sv_fence_mount *m, const char *src, const char *dst,
		      struct sv_err *err)
{
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		return sv_err_set(err, errno, "bind %s: %s", m->path, strerror(errno));
	return fence_set_attr(dst, m->rw, err);
}

/* A new procfs where only processes the reader may ptrace-read are visible (PID 1's
 * /proc/1/net and environ among the hidden). Returns 0, or the errno of the failure after
 * binding the old /proc instead. */
static int fence_proc(const struct sv_fence_mount *m, const char *dst, struct sv_err *err)
{
	unsigned long fl = MS_NOSUID | MS_NODEV | MS_NOEXEC | (m->rw ? 0 : MS_RDONLY);
	if (mount("proc", dst, "proc", fl, "hidepid=invisible") == 0)
		return 0;
	if (errno == EINVAL && mount("proc", dst, "proc", fl, "hidepid=2") == 0)
		return 0; /* before 5.8: the same, by number */
	int e = errno;
	if (fence_bind(m, "/proc", dst, err) < 0)
		return -1;
	return e;
}

/* Give @dir of the new root the symlinks its source directory has (merged-usr /bin, /lib64,
 * /dev/fd, /dev/stdin): names and targets only; a target is reachable only when the fence
 * shows it. */
static int fence_skeleton_links(const char *root, const char *dir, struct sv_err *err)
{
	char dst[PATH_MAX];
	if (fence_join(dst, sizeof(dst), root, dir) < 0)
		return sv_err_set(err, ENAMETOOLONG, "%s: path too long", dir);
	_cleanup_close_ int sfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0 || dfd < 0)
		return 0; /* a skeleton made for a path the source lacks: nothing to copy */
	char buf[4096] __attribute__((aligned(8)));
	for (;;) {
		long n = syscall(SYS_getdents64, sfd, buf, sizeof(buf));
		if (n < 0)
			return sv_err_set(err, errno, "list %s: %s", dir, strerror(errno));
		if (n == 0)
			return 0;
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(void *)(buf + off);
			off += d->d_reclen;
			struct stat st;
			if (d->d_type != DT_LNK &&
			    (d->d_type != DT_UNKNOWN ||
			     fstatat(sfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			     !S_ISLNK(st.st_mode)))
				continue;
			if (fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				continue; /* a policy path of that name is already there */
			char target[PATH_MAX];
			ssize_t tl = readlinkat(sfd, d->d_name, target, sizeof(target) - 1);
			if (tl < 0)
				continue;
			target[tl] = '\0';
			if (symlinkat(target, dfd, d->d_name) < 0)
				return sv_err_set(err, errno, "symlink %s/%s: %s", dir, d->d_name,
						  strerror(errno));
		}
	}
}

static int fence_make_target(const struct sv_fence_mount *m, const char *dst, struct sv_err *err)
{
	struct stat st;
	if (lstat(dst, &st) == 0)
		return 0;
	char parent[PATH_MAX];
	sv_fmt(parent, sizeof(parent), "%s", dst);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		int r = fence_mkdirs(parent, err);
		if (r < 0)
			return r;
	}
	if (m->dir) {
		if (mkdir(dst, 0755) < 0 && errno != EEXIST)
			return sv_err_set(err, errno, "mkdir %s: %s", dst, strerror(errno));
		return 0;
	}
	int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd < 0 && errno != EEXIST)
		return sv_err_set(err, errno, "create %s: %s", dst, strerror(errno));
	if (fd >= 0)
		close(fd);
	return 0;
}

/* A directory to mount the new root on: it must not hide a source (be a policy path or an
 * ancestor of one) and should not lie inside a bind. */
static const char *fence_stage(const struct sv_fence_plan *p)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(fence_staging); i++) {
		const char *s = fence_staging[i];
		struct stat st;
		if (lstat(s, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		bool ok = true;
		for (size_t j = 0; ok && j < p->n; j++) {
			const char *m = p->mounts[j].path;
			if (fence_is_under(m, s) || (strcmp(m, "/") != 0 && fence_is_under(s, m)))
				ok = false;
		}
		if (ok)
			return s;
	}
	return NULL;
}

/* Build the new root on a tmpfs at a staging directory of the helper's private namespace.
 * Sources are read at their own paths, which the staging mount does not cover. */
static int fence_build(const struct sv_fence_plan *p, struct fence_msg *out, int *rootfd,
		       struct sv_err *err)
{
	const char *root = fence_stage(p);
	if (!root)
		return sv_err_set(err, ENOENT, "no directory outside the policy to build the "
					       "agent's root on");
	/* Nothing mounted here may reach the supervisor's namespace. In a chroot "/" is not a
	 * mount point (EINVAL): its mount is then private already or beyond our reach. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 && errno != EINVAL)
		return sv_err_set(err, errno, "make / private: %s", strerror(errno));
	if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
		return sv_err_set(err, errno, "tmpfs root on %s: %s", root, strerror(errno));
	if (mount(NULL, root, NULL, MS_PRIVATE, NULL) < 0)
		return sv_err_set(err, errno, "make %s private: %s", root, strerror(errno));
	bool root_bound = false;
	for (size_t i = 0; i < p->n; i++) {
		const struct sv_fence_mount *m = &p->mounts[i];
		char dst[PATH_MAX];
		if (fence_join(dst, sizeof(dst), root, m->path) < 0)
			return sv_err_set(err, ENAMETOOLONG, "%s: path too long", m->path);
		int r = fence_make_target(m, dst, err);
		if (r < 0)
			return r;
		if (m->proc) {
			out->proc_errno = fence_proc(m, dst, err);
			if (out->proc_errno < 0)
				return -1;
		} else if ((r = fence_bind(m, m->path, dst, err)) < 0) {
			return r;
		}
		root_bound |= !strcmp(m->path, "/");
	}
	if (p->workdir_stub) {
		char dst[PATH_MAX];
		if (fence_join(dst, sizeof(dst), root, p->workdir_stub) < 0)
			return sv_err_set(err, ENAMETOOLONG, "%s: path too long", p->workdir_stub);
		int r = fence_mkdirs(dst, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < p->n_skeleton; i++) {
		int r = fence_skeleton_links(root, p->skeleton[i], err);
		if (r < 0)
			return r;
	}
	/* The skeleton itself: nobody adds to it. */
	if (!root_bound && mount(NULL, root, NULL,
				 MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return sv_err_set(err, errno, "read-only root: %s", strerror(errno));
	*rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*rootfd < 0)
		return sv_err_set(err, errno, "open the new root: %s", strerror(errno));
	return 0;
}

static void fence_send(int sock, const struct fence_msg *m, const int fds[2])
{
	struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof(*m)};
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} c;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fds) {
		memset(&c, 0, sizeof(c));
		msg.msg_control = c.buf;
		msg.msg_controllen = sizeof(c.buf);
		struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(2 * sizeof(int));
		memcpy(CMSG_DATA(h), fds, 2 * sizeof(int));
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void fence_helper(const struct sv_fence_plan *p, int sock) __attribute__((noreturn));
static void fence_helper(const struct sv_fence_plan *p, int sock)
{
	struct fence_msg m;
	memset(&m, 0, sizeof(m));
	struct sv_err err = {0};
	int fds[2] = {-1, -1}; /* the namespace, its root directory */
	if (unshare(CLONE_NEWNS) < 0) {
		sv_err_set(&err, errno, "unshare(CLONE_NEWNS): %s", strerror(errno));
	} else if ((fds[0] = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC)) < 0) {
		sv_err_set(&err, errno, "open /proc/self/ns/mnt: %s", strerror(errno));
	} else if (fence_build(p, &m, &fds[1], &err) < 0) {
		if (!err.code)
			err.code = EIO;
	}
	m.code = err.code;
	sv_fmt(m.msg, sizeof(m.msg), "%s", err.msg);
	fence_send(sock, &m, m.code ? NULL : fds);
	_exit(m.code ? 1 : 0);
}

/* ---- parent ------------------------------------------------------------------------------------ */

static int fence_recv(int sock, struct fence_msg *m, int fds[2])
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = c.buf,
			     .msg_controllen = sizeof(c.buf)};
	ssize_t n;
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	fds[0] = fds[1] = -1;
	for (struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; h; h = CMSG_NXTHDR(&msg, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
		    h->cmsg_len == CMSG_LEN(2 * sizeof(int)))
			memcpy(fds, CMSG_DATA(h), 2 * sizeof(int));
	if (n != (ssize_t)sizeof(*m) || (msg.msg_flags & MSG_CTRUNC)) {
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		fds[0] = fds[1] = -1;
		return -EPROTO;
	}
	m->msg[sizeof(m->msg) - 1] = '\0';
	return 0;
}

static int fence_run_helper(const struct sv_fence_plan *p, struct sv_fence *f,
			    void (*overlap)(void *), void *overlap_ctx, struct sv_err *err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return sv_err_set(err, errno, "socketpair: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return sv_err_set(err, e, "fork: %s", strerror(e));
	}
	if (pid == 0) {
		close(sv[0]);
		fence_helper(p, sv[1]);
	}
	close(sv[1]);
	if (overlap)
		overlap(overlap_ctx);
	struct fence_msg m;
	int fds[2];
	int r = fence_recv(sv[0], &m, fds);
	close(sv[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r < 0)
		return sv_err_set(err, EPROTO, "the fence helper died without a report");
	if (m.code)
		return sv_err_set(err, m.code, "%s", m.msg);
	if (fds[0] < 0 || fds[1] < 0) {
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		return sv_err_set(err, EPROTO, "the fence helper sent no namespace");
	}
	f->mntns_fd = fds[0];
	f->root_fd = fds[1];
	f->proc_restricted = m.proc_errno == 0;
	if (m.proc_errno) {
		char msg[256];
		sv_fmt(msg, sizeof(msg),
		       "/proc could not be mounted with hidepid (%s): the agent sees the "
		       "container's /proc, read-only, including /proc/1",
		       strerror(m.proc_errno));
		sv_log_ocsf("FINDING:OPEN", SV_SEV_HIGH, "DEGRADED", "proc_unrestricted", msg, NULL,
			    0);
	}
	return 0;
}

/* Can a child join? setns(CLONE_NEWNS) and chroot need CAP_SYS_CHROOT as well as CAP_SYS_ADMIN
 * (Podman's driver drops the former): find out now, not in every spawn. While the child sits
 * in the fence, read how our /proc names its root (f->root_seen). */
static int fence_try_join(struct sv_fence *f, struct sv_err *err)
{
	int ready[2], release[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return sv_err_set(err, errno, "pipe: %s", strerror(errno));
	if (pipe2(release, O_CLOEXEC) < 0) {
		int e = errno;
		close(ready[0]);
		close(ready[1]);
		return sv_err_set(err, e, "pipe: %s", strerror(e));
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(ready[0]);
		close(ready[1]);
		close(release[0]);
		close(release[1]);
		return sv_err_set(err, e, "fork: %s", strerror(e));
	}
	if (pid == 0) {
		close(ready[0]);
		close(release[1]);
		struct sv_err e = {0};
		int code = sv_fence_enter(f, &e) < 0 ? (e.code & 0xff ? e.code & 0xff : 1) : 0;
		if (!code) {
			char c = 1;
			(void)sv_write_all(ready[1], &c, 1);
			while (read(release[0], &c, 1) < 0 && errno == EINTR)
				;
		}
		_exit(code);
	}
	close(ready[1]);
	close(release[0]);
	char c;
	ssize_t n;
	do {
		n = read(ready[0], &c, 1);
	} while (n < 0 && errno == EINTR);
	f->root_seen[0] = '\0';
	if (n == 1) {
		char link[64];
		sv_fmt(link, sizeof(link), "/proc/%d/root", (int)pid);
		ssize_t l = readlink(link, f->root_seen, sizeof(f->root_seen) - 1);
		f->root_seen[l > 0 ? l : 0] = '\0';
		if (!strcmp(f->root_seen, "/"))
			f->root_seen[0] = '\0';
	}
	close(ready[0]);
	close(release[1]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	int e = WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : EIO;
	return sv_err_set(err, e,
			  "a child cannot join the agent's mount namespace: %s (setns and chroot "
			  "need CAP_SYS_ADMIN and CAP_SYS_CHROOT)",
			  strerror(e));
}

int sv_fence_prepare(struct sv_fence *f, const struct sv_fence_spec *spec, struct sv_err *err)
{
	*f = (struct sv_fence)SV_FENCE_INIT;
	struct sv_fence_plan p;
	int r = sv_fence_plan_build(spec, &p, err);
	if (r < 0)
		return r;
	if (!p.n) {
		sv_fence_plan_free(&p);
		sv_warn(COMP, "mount_fence_empty", "no policy path exists: no mount fence");
		return 0;
	}
	struct sv_err herr = {0};
	r = fence_run_helper(&p, f, spec->overlap, spec->overlap_ctx, &herr);
	if (r >= 0 && (r = fence_try_join(f, &herr)) < 0)
		sv_fence_close(f);
	size_t n = p.n, nskel = p.n_skeleton, missing = p.n_missing;
	bool has_proc = false;
	for (size_t i = 0; i < p.n; i++)
		has_proc |= p.mounts[i].proc;
	sv_fence_plan_free(&p);
	if (r < 0) {
		if (spec->hard)
			return sv_err_set(err, herr.code,
					  "mount fence (hard_requirement): %s", herr.msg);
		char msg[SV_ERR_MSG_MAX + 96];
		sv_fmt(msg, sizeof(msg),
		       "Running WITHOUT the mount fence: %s; paths outside the policy stay "
		       "visible to the agent",
		       herr.msg);
		sv_log_ocsf("FINDING:OPEN", SV_SEV_HIGH, "DEGRADED", "mount_fence_unavailable", msg,
			    SV_KVS({"compat", "best_effort"}));
		return 0;
	}
	f->n_mounts = n;
	if (!has_proc)
		f->proc_restricted = true; /* no /proc at all in the agent's view */
	char sum[160];
	sv_fmt(sum, sizeof(sum), "mounts=%zu skeleton_dirs=%zu missing=%zu proc=%s", n, nskel,
	       missing, !has_proc ? "absent" : f->proc_restricted ? "hidepid" : "unrestricted");
	sv_log_ocsf("CONFIG:ENABLED", SV_SEV_INFO, "APPLIED", "mount_fence_prepared", sum, NULL,
		    0);
	return 0;
}

int sv_fence_enter(const struct sv_fence *f, struct sv_err *err)
{
	if (!f || f->mntns_fd < 0)
		return 0;
	/* setns puts us at the namespace's own root; the agent's root is the tmpfs inside it. */
	if (setns(f->mntns_fd, CLONE_NEWNS) < 0) {
		int e = errno;
		return sv_err_set(err, e, "cannot join the agent mount namespace: errno %d", e);
	}
	if (fchdir(f->root_fd) < 0 || chroot(".") < 0 || chdir("/") < 0) {
		int e = errno;
		return sv_err_set(err, e, "cannot enter the agent's root: errno %d", e);
	}
	return 0;
}

void sv_fence_close(struct sv_fence *f)
{
	if (!f)
		return;
	if (f->mntns_fd >= 0)
		close(f->mntns_fd);
	if (f->root_fd >= 0)
		close(f->root_fd);
	f->mntns_fd = f->root_fd = -1;
}
