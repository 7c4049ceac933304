/* Egress proxy: binary identity of a client connection from /proc (contract §8, fixes 18, 19).
 *
 * Reads /proc/<pid>/net/tcp{,6}, fd links, exe links, task children and status files only.
 * Never reads cmdline or environ, never follows an agent-made symlink when judging " (deleted)",
 * and never returns an identity when an owner of the socket could have been missed.
 */
#include "netns/proxy/px_ident.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DELETED_SUFFIX " (deleted)"

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_fclose_ __attribute__((cleanup(fclosep)))

/* ------------------------------------------------------------------ directories */

/* /proc listings read with getdents64 into the caller's buffer. opendir(3) would allocate (and
 * musl's allocator map and unmap) a buffer for each of the few directories every decision
 * reads; in a process with worker threads each unmap is a TLB shootdown on every CPU. */
struct dir_iter {
	int fd;
	size_t pos, len;
	char buf[4096] __attribute__((aligned(8)));
};

struct dirent64_raw {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static void dir_iter_close(struct dir_iter *it)
{
	if (it->fd >= 0)
		close(it->fd);
	it->fd = -1;
}

#define _cleanup_dir_iter_ __attribute__((cleanup(dir_iter_close)))

/* 0 and @it open, or -errno. */
static int dir_iter_open(struct dir_iter *it, const char *path)
{
	it->pos = it->len = 0;
	it->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return it->fd < 0 ? -errno : 0;
}

/* The next name; NULL at the end (*@err 0) or on a failed read (*@err -errno): a truncated
 * listing must not look complete. */
static const char *dir_iter_next(struct dir_iter *it, int *err)
{
	*err = 0;
	if (it->pos >= it->len) {
		long n = syscall(SYS_getdents64, it->fd, it->buf, sizeof(it->buf));
		if (n < 0)
			*err = -errno;
		if (n <= 0)
			return NULL;
		it->pos = 0;
		it->len = (size_t)n;
	}
	const struct dirent64_raw *de = (const struct dirent64_raw *)(it->buf + it->pos);
	if (de->d_reclen == 0 || it->pos + de->d_reclen > it->len) { /* never from a kernel */
		*err = -EIO;
		return NULL;
	}
	it->pos += de->d_reclen;
	return de->d_name;
}

/* ------------------------------------------------------------------ addresses */

/* An endpoint with IPv4 as v4-mapped IPv6, so both tables compare alike. */
struct ep {
	struct in6_addr a;
	unsigned port;
};

static int ep_from_sockaddr(const struct sockaddr *sa, socklen_t len, struct ep *out)
{
	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in sin;
		if (len < (socklen_t)sizeof(sin))
			return -EINVAL;
		memcpy(&sin, sa, sizeof(sin));
		out->a.s6_addr[10] = 0xff;
		out->a.s6_addr[11] = 0xff;
		memcpy(&out->a.s6_addr[12], &sin.sin_addr, 4);
		out->port = ntohs(sin.sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 sin6;
		if (len < (socklen_t)sizeof(sin6))
			return -EINVAL;
		memcpy(&sin6, sa, sizeof(sin6));
		out->a = sin6.sin6_addr;
		out->port = ntohs(sin6.sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

static void ep_format(const struct ep *e, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	if (IN6_IS_ADDR_V4MAPPED(&e->a)) {
		inet_ntop(AF_INET, &e->a.s6_addr[12], ip, sizeof(ip));
		sv_fmt(buf, size, "%s:%u", ip, e->port);
	} else {
		inet_ntop(AF_INET6, &e->a, ip, sizeof(ip));
		sv_fmt(buf, size, "[%s]:%u", ip, e->port);
	}
}

static bool ep_equal(const struct ep *x, const struct ep *y)
{
	return x->port == y->port && memcmp(&x->a, &y->a, sizeof(x->a)) == 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Exactly @n hex digits (n <= 8). */
static bool hex_parse(const char *s, size_t n, uint32_t *out)
{
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int d = hexval(s[i]);
		if (d < 0)
			return false;
		v = (v << 4) | (uint32_t)d;
	}
	*out = v;
	return true;
}

/* A /proc/net/tcp{,6} address "AABBCCDD:PPPP" or 32 hex digits ":PPPP". The kernel prints each
 * 32-bit word of the address as a host-order integer of the raw network-order word, so copying
 * the parsed integer back into memory restores the address bytes on any endianness. */
static bool tcp_addr_parse(const char *s, size_t len, struct ep *out)
{
	const char *colon = memchr(s, ':', len);
	if (!colon)
		return false;
	size_t alen = (size_t)(colon - s), plen = len - alen - 1;
	uint32_t w, port;
	memset(out, 0, sizeof(*out));
	if (alen == 8) {
		if (!hex_parse(s, 8, &w))
			return false;
		out->a.s6_addr[10] = 0xff;
		out->a.s6_addr[11] = 0xff;
		memcpy(&out->a.s6_addr[12], &w, 4);
	} else if (alen == 32) {
		for (size_t i = 0; i < 4; i++) {
			if (!hex_parse(s + 8 * i, 8, &w))
				return false;
			memcpy(&out->a.s6_addr[4 * i], &w, 4);
		}
	} else {
		return false;
	}
	if (plen < 1 || plen > 4 || !hex_parse(colon + 1, plen, &port))
		return false;
	out->port = port;
	return true;
}

/* ------------------------------------------------------------------ socket inode */

#define TCP_FIELDS 10 /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */

/* 1 and *inode on a match, 0 on none. */
static int tcp_line_match(const char *line, const struct ep *local, const struct ep *remote,
			  unsigned long long *inode)
{
	const char *f[TCP_FIELDS];
	size_t fl[TCP_FIELDS], n = 0;
	const char *p = line;
	while (n < TCP_FIELDS) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '\n')
			break;
		f[n] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n')
			p++;
		fl[n] = (size_t)(p - f[n]);
		n++;
	}
	if (n < TCP_FIELDS || fl[3] != 2 || memcmp(f[3], "01", 2) != 0) /* 01 = ESTABLISHED */
		return 0;
	struct ep l, r;
	if (!tcp_addr_parse(f[1], fl[1], &l) || !tcp_addr_parse(f[2], fl[2], &r))
		return 0;
	if (!ep_equal(&l, local) || !ep_equal(&r, remote))
		return 0;
	char num[24];
	if (fl[9] == 0 || fl[9] >= sizeof(num))
		return 0;
	memcpy(num, f[9], fl[9]);
	num[fl[9]] = '\0';
	unsigned long long v;
	if (sv_parse_uint(num, 1, ULLONG_MAX, &v) < 0)
		return 0;
	*inode = v;
	return 1;
}

static int tcp_file_scan(FILE *f, const struct ep *local, const struct ep *remote,
			 unsigned long long *inode)
{
	char line[512];
	bool header = true, skipping = false;
	while (fgets(line, sizeof(line), f)) {
		bool whole = strchr(line, '\n') != NULL;
		if (skipping || header || !whole) {
			/* the header, or the tail / head of an over-long (malformed) line */
			if (whole)
				header = skipping = false;
			else
				skipping = true;
			continue;
		}
		if (tcp_line_match(line, local, remote, inode))
			return 0;
	}
	return ferror(f) ? -EIO : -ENOENT;
}

int px_ident_socket_inode(pid_t netns_pid, const struct sockaddr *client, socklen_t client_len,
			  const struct sockaddr *proxy, socklen_t proxy_len,
			  unsigned long long *inode, struct sv_err *err)
{
	struct ep c, p;
	int r = ep_from_sockaddr(client, client_len, &c);
	if (r < 0)
		return sv_err_set(err, r, "client address: unsupported or truncated sockaddr");
	r = ep_from_sockaddr(proxy, proxy_len, &p);
	if (r < 0)
		return sv_err_set(err, r, "proxy address: unsupported or truncated sockaddr");

	static const char *const tables[] = {"tcp", "tcp6"};
	int last = ENOENT;
	bool readable = false;
	for (size_t i = 0; i < SV_ARRAY_SIZE(tables); i++) {
		char path[64];
		sv_fmt(path, sizeof(path), "/proc/%d/net/%s", (int)netns_pid, tables[i]);
		_cleanup_fclose_ FILE *f = fopen(path, "re");
		if (!f) {
			last = errno;
			continue;
		}
		readable = true;
		r = tcp_file_scan(f, &c, &p, inode);
		if (r == 0)
			return 0;
		if (r != -ENOENT)
			return sv_err_set(err, r, "cannot read %s: %s", path, strerror(-r));
	}
	if (!readable)
		return sv_err_set(err, last, "cannot read /proc/%d/net/tcp: %s", (int)netns_pid,
				  strerror(last));
	char cs[INET6_ADDRSTRLEN + 16], ps[INET6_ADDRSTRLEN + 16];
	ep_format(&c, cs, sizeof(cs));
	ep_format(&p, ps, sizeof(ps));
	return sv_err_set(err, ENOENT,
			  "no ESTABLISHED TCP connection from %s to %s in /proc/%d/net/tcp{,6}", cs,
			  ps, (int)netns_pid);
}

/* ------------------------------------------------------------------ executables */

/* Is @path, in @pid's root, that very inode? lstat: an agent symlink named "x (deleted)" that
 * points at a /proc/<pid>/exe magic link must not count as the file itself. */
static bool path_is_inode(pid_t pid, const char *path, const struct stat *want)
{
	char buf[PX_IDENT_PATH_MAX + 32];
	if (sv_fmt(buf, sizeof(buf), "/proc/%d/root%s", (int)pid, path) >= sizeof(buf) - 1)
		return false;
	struct stat st;
	if (fstatat(AT_FDCWD, buf, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	return S_ISREG(st.st_mode) && st.st_dev == want->st_dev && st.st_ino == want->st_ino;
}

static char px_root_prefix[1024];

void px_ident_set_root_prefix(const char *prefix)
{
	sv_fmt(px_root_prefix, sizeof(px_root_prefix), "%s",
	       prefix && strcmp(prefix, "/") != 0 ? prefix : "");
}

/* "/<prefix>/usr/bin/x" -> "/usr/bin/x": the path inside the agent's root. */
static void strip_root_prefix(char *path)
{
	size_t pl = strlen(px_root_prefix);
	if (pl && strncmp(path, px_root_prefix, pl) == 0 && path[pl] == '/')
		memmove(path, path + pl, strlen(path + pl) + 1);
}

int px_ident_exe_read(pid_t pid, struct px_ident_bin *out, struct sv_err *err)
{
	char link[64];
	struct stat st1, st2;
	sv_fmt(link, sizeof(link), "/proc/%d/exe", (int)pid);
	if (stat(link, &st1) < 0)
		return sv_err_set(err, errno, "cannot stat %s: %s", link, strerror(errno));
	ssize_t n = readlink(link, out->path, sizeof(out->path));
	if (n < 0)
		return sv_err_set(err, errno, "cannot read %s: %s", link, strerror(errno));
	if ((size_t)n >= sizeof(out->path))
		return sv_err_set(err, ENAMETOOLONG, "%s: target longer than %d bytes", link,
				  PX_IDENT_PATH_MAX - 1);
	out->path[n] = '\0';
	if (stat(link, &st2) < 0)
		return sv_err_set(err, errno, "cannot stat %s: %s", link, strerror(errno));
	if (st1.st_dev != st2.st_dev || st1.st_ino != st2.st_ino)
		return sv_err_set(err, ESTALE, "process %d executed another program meanwhile",
				  (int)pid);
	if (out->path[0] != '/')
		return sv_err_set(err, EINVAL, "%s: not an absolute path", link);
	strip_root_prefix(out->path);
	out->pid = pid;
	out->dev = st1.st_dev;
	out->ino = st1.st_ino;
	out->deleted = false;

	const size_t sl = sizeof(DELETED_SUFFIX) - 1;
	size_t len = (size_t)n;
	/* fix 18: strip only what the kernel added; a live "x (deleted)" is that inode. */
	if (len > sl && memcmp(out->path + len - sl, DELETED_SUFFIX, sl) == 0 &&
	    !path_is_inode(pid, out->path, &st1)) {
		out->path[len - sl] = '\0';
		out->deleted = true;
	}
	return 0;
}

/* ------------------------------------------------------------------ process tree */

static int ppid_read(pid_t pid, pid_t *ppid, struct sv_err *err)
{
	char path[64], buf[4096];
	sv_fmt(path, sizeof(path), "/proc/%d/status", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sv_err_set(err, errno, "cannot open %s: %s", path, strerror(errno));
	size_t len = 0;
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sv_err_set(err, errno, "cannot read %s: %s", path, strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	const char *p = strstr(buf, "\nPPid:");
	if (!p)
		return sv_err_set(err, EINVAL, "%s: no PPid line", path);
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	char num[16];
	size_t k = 0;
	while (p[k] >= '0' && p[k] <= '9' && k < sizeof(num) - 1) {
		num[k] = p[k];
		k++;
	}
	num[k] = '\0';
	unsigned long long v;
	if (sv_parse_uint(num, 0, INT_MAX, &v) < 0)
		return sv_err_set(err, EINVAL, "%s: bad PPid", path);
	*ppid = (pid_t)v;
	return 0;
}

/* @dst->exe and ancestors of @pid: parents up to @entrypoint (kept) or PID 1 or @scope (the
 * supervisor, never kept); none when @pid is the entrypoint. Each step re-reads the child's PPid after reading the parent,
 * so a parent that died (and whose PID might be reused) is noticed as a reparenting. */
static int ident_fill(pid_t pid, pid_t entrypoint, pid_t scope, struct px_ident *dst,
		      struct sv_err *err)
{
	int r = px_ident_exe_read(pid, &dst->exe, err);
	if (r < 0)
		return r;
	dst->n_ancestors = 0;
	pid_t cur = pid;
	while (cur != entrypoint && dst->n_ancestors < PX_IDENT_ANCESTORS_MAX) {
		pid_t pp = 0, again = 0;
		r = ppid_read(cur, &pp, err);
		if (r < 0)
			return r;
		/* PID 1 or @scope is the supervisor (never listed); 0: a parent outside our PID
		 * namespace */
		if (pp <= 1 || pp == cur || pp == scope)
			break;
		r = px_ident_exe_read(pp, &dst->ancestors[dst->n_ancestors], err);
		if (r < 0) {
			sv_err_prefix(err, "ancestor PID %d", (int)pp);
			return r;
		}
		r = ppid_read(cur, &again, err);
		if (r < 0)
			return r;
		if (again != pp)
			return sv_err_set(err, ESTALE, "process %d was reparented meanwhile",
					  (int)cur);
		dst->n_ancestors++;
		cur = pp;
	}
	return 0;
}

int px_ident_lineage(pid_t pid, pid_t scope, struct px_ident *out, struct sv_err *err)
{
	out->n_ancestors = out->n_owners = 0;
	return ident_fill(pid, 0, scope, out, err);
}

static bool bin_same(const struct px_ident_bin *a, const struct px_ident_bin *b)
{
	return a->dev == b->dev && a->ino == b->ino && strcmp(a->path, b->path) == 0;
}

/* Every ancestor of @a other than its own executable is an ancestor of @b. */
static bool ancestors_covered(const struct px_ident *a, const struct px_ident *b)
{
	for (size_t i = 0; i < a->n_ancestors; i++) {
		if (bin_same(&a->ancestors[i], &a->exe))
			continue;
		bool found = false;
		for (size_t j = 0; j < b->n_ancestors && !found; j++)
			found = bin_same(&a->ancestors[i], &b->ancestors[j]);
		if (!found)
			return false;
	}
	return true;
}

/* Would policy judge both alike? It grants on the executable or any ancestor (§8 "Matching"),
 * so the same executable plus the same ancestor set (own executable aside) decides alike. */
static bool ident_same_policy(const struct px_ident *a, const struct px_ident *b)
{
	return bin_same(&a->exe, &b->exe) && ancestors_covered(a, b) && ancestors_covered(b, a);
}

/* ------------------------------------------------------------------ socket owners */

struct scan {
	char target[40]; /* "socket:[<inode>]" */
	size_t target_len;
	pid_t *seen;	 /* open-addressing set, 0 = empty, at most half full */
	size_t seen_cap; /* power of two */
	size_t n_procs;
	pid_t *queue; /* breadth-first order of the tree walks */
	size_t qn, queue_cap;
	int *fds; /* one process's fd numbers, reused */
	size_t fds_cap;
	size_t n_fds;	     /* fd links listed so far: the request's budget */
	size_t n_unexamined; /* processes whose fd table exceeded what was left of it */
	pid_t *owners;
	size_t n_owners, owners_cap;
	struct sv_err *err;
};

static size_t seen_slot(const pid_t *seen, size_t cap, pid_t pid)
{
	size_t mask = cap - 1, i = ((size_t)pid * 2654435761u) & mask;
	while (seen[i] != 0 && seen[i] != pid)
		i = (i + 1) & mask;
	return i;
}

/* Keep the set at most half full: sized for the few processes of a sandbox, grown on demand. */
static int seen_grow(struct scan *s)
{
	if (2 * (s->n_procs + 1) <= s->seen_cap)
		return 0;
	size_t cap = s->seen_cap ? 2 * s->seen_cap : 64;
	pid_t *n = calloc(cap, sizeof(*n));
	if (!n)
		return sv_err_set(s->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < s->seen_cap; i++) {
		if (s->seen[i])
			n[seen_slot(n, cap, s->seen[i])] = s->seen[i];
	}
	free(s->seen);
	s->seen = n;
	s->seen_cap = cap;
	return 0;
}

/* 1 when @pid is new, 0 when seen, -E2BIG past PX_IDENT_MAX_PROCS. */
static int scan_visit(struct scan *s, pid_t pid)
{
	if (s->seen_cap && s->seen[seen_slot(s->seen, s->seen_cap, pid)] == pid)
		return 0;
	int r = seen_grow(s);
	if (r < 0)
		return r;
	size_t mask = s->seen_cap - 1, i = ((size_t)pid * 2654435761u) & mask;
	while (s->seen[i] != 0) {
		if (s->seen[i] == pid)
			return 0;
		i = (i + 1) & mask;
	}
	if (s->n_procs >= PX_IDENT_MAX_PROCS)
		return sv_err_set(s->err, E2BIG, "more than %d processes to examine",
				  PX_IDENT_MAX_PROCS);
	s->seen[i] = pid;
	s->n_procs++;
	return 1;
}

/* Does @pid hold the socket? 1 yes (recorded), 0 no or gone, 2 not examined (its table lists
 * more than PX_IDENT_MAX_FDS_PER_PROC entries, or more than the request has left of
 * PX_IDENT_MAX_FDS_TOTAL), -errno when it cannot be told. */
static int scan_fds(struct scan *s, pid_t pid)
{
	char path[64];
	sv_fmt(path, sizeof(path), "/proc/%d/fd", (int)pid);
	_cleanup_dir_iter_ struct dir_iter d;
	int e = dir_iter_open(&d, path);
	if (e < 0) {
		if (e == -ENOENT || e == -ESRCH) /* exited meanwhile */
			return 0;
		return sv_err_set(s->err, -e, "cannot read %s: %s%s", path, strerror(-e),
				  e == -EACCES || e == -EPERM ? " (CAP_SYS_PTRACE missing?)" : "");
	}
	size_t limit = PX_IDENT_MAX_FDS_TOTAL - s->n_fds;
	if (limit > PX_IDENT_MAX_FDS_PER_PROC)
		limit = PX_IDENT_MAX_FDS_PER_PROC;
	size_t n = 0;
	const char *name_in;
	while ((name_in = dir_iter_next(&d, &e))) {
		unsigned long long fd;
		if (sv_parse_uint(name_in, 0, INT_MAX, &fd) < 0)
			continue;
		if (n >= limit) {
			s->n_unexamined++;
			return 2;
		}
		if (n == s->fds_cap) {
			size_t cap = s->fds_cap ? 2 * s->fds_cap : 64;
			int *v = realloc(s->fds, cap * sizeof(*v));
			if (!v)
				return sv_err_set(s->err, ENOMEM, "out of memory");
			s->fds = v;
			s->fds_cap = cap;
		}
		s->fds[n++] = (int)fd;
	}
	if (e < 0 && e != -ENOENT && e != -ESRCH)
		return sv_err_set(s->err, -e, "cannot list %s: %s", path, strerror(-e));
	s->n_fds += n;
	/* Newest first: a socket just connected is usually the process's highest fd, and one
	 * match is enough for a process. The listing is in ascending order. */
	while (n > 0) {
		char name[16], link[48];
		sv_fmt(name, sizeof(name), "%d", s->fds[--n]);
		ssize_t l = readlinkat(d.fd, name, link, sizeof(link));
		if (l < 0) /* closed meanwhile */
			continue;
		if ((size_t)l != s->target_len || memcmp(link, s->target, s->target_len) != 0)
			continue;
		if (s->n_owners == s->owners_cap) {
			size_t cap = s->owners_cap ? 2 * s->owners_cap : 8;
			pid_t *o = realloc(s->owners, cap * sizeof(*o));
			if (!o)
				return sv_err_set(s->err, ENOMEM, "out of memory");
			s->owners = o;
			s->owners_cap = cap;
		}
		s->owners[s->n_owners++] = pid;
		return 1;
	}
	return 0;
}

/* One PID parsed from a children file: queue it unless seen. */
static int queue_push(struct scan *s, pid_t pid)
{
	if (s->qn == s->queue_cap) {
		size_t cap = s->queue_cap ? 2 * s->queue_cap : 32;
		pid_t *q = realloc(s->queue, cap * sizeof(*q));
		if (!q)
			return sv_err_set(s->err, ENOMEM, "out of memory");
		s->queue = q;
		s->queue_cap = cap;
	}
	s->queue[s->qn++] = pid;
	return 0;
}

static int child_push(struct scan *s, unsigned long long *v, bool *digits)
{
	int r = 0;
	if (*digits && *v > 0 && *v <= INT_MAX) {
		r = scan_visit(s, (pid_t)*v);
		if (r > 0)
			r = queue_push(s, (pid_t)*v);
	}
	*v = 0;
	*digits = false;
	return r < 0 ? r : 0;
}

/* Queue @pid's children (every task's children file) that were not seen yet. */
static int scan_children(struct scan *s, pid_t pid)
{
	char path[64];
	sv_fmt(path, sizeof(path), "/proc/%d/task", (int)pid);
	_cleanup_dir_iter_ struct dir_iter d;
	int e = dir_iter_open(&d, path);
	if (e == -ENOENT || e == -ESRCH)
		return 0; /* gone */
	/* Anything else would hide part of the tree, and with it maybe a second owner. */
	if (e < 0)
		return sv_err_set(s->err, -e, "cannot read %s: %s", path, strerror(-e));
	const char *tid;
	while ((tid = dir_iter_next(&d, &e))) {
		if (tid[0] == '.')
			continue;
		char cpath[96];
		sv_fmt(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)pid, tid);
		_cleanup_close_ int fd = open(cpath, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && (errno == ENOENT || errno == ESRCH))
			continue; /* the thread exited */
		if (fd < 0)
			return sv_err_set(s->err, errno, "cannot read %s: %s", cpath, strerror(errno));
		char buf[1024];
		unsigned long long v = 0;
		bool digits = false;
		int r;
		for (;;) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno != ESRCH) /* ESRCH: the thread exited */
				return sv_err_set(s->err, errno, "cannot read %s: %s", cpath,
						  strerror(errno));
			if (n <= 0)
				break;
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] >= '0' && buf[i] <= '9') {
					if (v <= INT_MAX) /* past it: dropped by child_push */
						v = v * 10 + (unsigned)(buf[i] - '0');
					digits = true;
				} else if ((r = child_push(s, &v, &digits)) < 0) {
					return r;
				}
			}
		}
		if ((r = child_push(s, &v, &digits)) < 0)
			return r;
	}
	if (e < 0 && e != -ENOENT && e != -ESRCH)
		return sv_err_set(s->err, -e, "cannot list %s: %s", path, strerror(-e));
	return 0;
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

/* The number of open files of @pid without reading its table (the size of /proc/<pid>/fd,
 * Linux 6.2 and later); 0 when unknown. Only orders the scan: the listing enforces the bounds. */
static size_t fd_count(pid_t pid)
{
	char path[64];
	struct stat st;
	sv_fmt(path, sizeof(path), "/proc/%d/fd", (int)pid);
	return stat(path, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size : 0;
}

struct by_fds {
	size_t n_fds, order;
	pid_t pid;
};

static int by_fds_cmp(const void *a, const void *b)
{
	const struct by_fds *x = a, *y = b;
	if (x->n_fds != y->n_fds)
		return (x->n_fds > y->n_fds) - (x->n_fds < y->n_fds);
	return (x->order > y->order) - (x->order < y->order);
}

/* The fd tables of the queued processes from @qi on, fewest open files first (ties in
 * breadth-first order): a process holding many files is read last, so it spends its own share
 * of the budget, not that of the processes before it. */
static int scan_queued(struct scan *s, size_t qi)
{
	size_t n = s->qn - qi;
	if (n == 0)
		return 0;
	_cleanup_free_ struct by_fds *v = calloc(n, sizeof(*v));
	if (!v)
		return sv_err_set(s->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		v[i] = (struct by_fds){fd_count(s->queue[qi + i]), i, s->queue[qi + i]};
	qsort(v, n, sizeof(*v), by_fds_cmp);
	for (size_t i = 0; i < n; i++) {
		size_t left = PX_IDENT_MAX_FDS_TOTAL - s->n_fds;
		if (v[i].n_fds > left || v[i].n_fds > PX_IDENT_MAX_FDS_PER_PROC) {
			s->n_unexamined++; /* known too long: not even listed */
			continue;
		}
		int r = scan_fds(s, v[i].pid);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Queue every descendant of the queued processes from @qi on, breadth-first. */
static int walk_tree(struct scan *s, size_t qi)
{
	for (; qi < s->qn; qi++) {
		int r = scan_children(s, s->queue[qi]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Every other /proc/<pid>. */
static int scan_all(struct scan *s)
{
	_cleanup_dir_iter_ struct dir_iter d;
	int e = dir_iter_open(&d, "/proc");
	if (e < 0)
		return sv_err_set(s->err, -e, "cannot read /proc: %s", strerror(-e));
	const char *name;
	while ((name = dir_iter_next(&d, &e))) {
		unsigned long long v;
		if (sv_parse_uint(name, 1, INT_MAX, &v) < 0)
			continue;
		int r = scan_visit(s, (pid_t)v);
		if (r > 0)
			r = scan_fds(s, (pid_t)v);
		if (r < 0)
			return r;
	}
	if (e < 0) /* a truncated listing could hide an owner */
		return sv_err_set(s->err, -e, "cannot list /proc: %s", strerror(-e));
	return 0;
}

/* Every process holding "socket:[inode]", ascending. The sandbox first: the entrypoint's
 * descendants and every other descendant of @scope (the supervisor: PID 1 or a child
 * subreaper, so every process of the sandbox is one; @scope itself holds only the accepted ends
 * and is not read), their fd tables read fewest open files first within the request's budget.
 * @helper (the proxy process) is never read: it holds only the accepted ends. Those are all the
 * processes that share the agent's network namespace. Only when none of them holds the socket
 * and every one was examined (it was passed out of the sandbox) is the rest of /proc read,
 * @scope included. A table past the budget is not examined: with an owner found elsewhere the
 * decision stands on the owners found (the largest tables were left out); with none found it
 * fails closed, which only a process holding more open files than all the others can cause,
 * for its own connections. */
static int owners_find(pid_t entrypoint, pid_t scope, pid_t helper, struct scan *s)
{
	/* The proxy process holds only accepted ends and upstream sockets, thousands of them
	 * under load: marked seen, never read. */
	int r = helper > 0 && helper != entrypoint ? scan_visit(s, helper) : 0;
	if (r >= 0)
		r = scan_visit(s, entrypoint);
	if (r >= 0)
		r = queue_push(s, entrypoint);
	if (r >= 0)
		r = walk_tree(s, 0);
	if (r >= 0 && scope > 0 && scope != entrypoint && (r = scan_visit(s, scope)) > 0) {
		size_t from = s->qn;
		r = scan_children(s, scope);
		if (r >= 0)
			r = walk_tree(s, from);
	}
	if (r >= 0)
		r = scan_queued(s, 0);
	if (r >= 0 && s->n_owners == 0 && s->n_unexamined == 0 && scope > 0 && scope != entrypoint)
		r = scan_fds(s, scope);
	if (r >= 0 && s->n_owners == 0 && s->n_unexamined == 0)
		r = scan_all(s);
	if (r < 0)
		return r;
	if (s->n_owners == 0 && s->n_unexamined > 0)
		return sv_err_set(s->err, E2BIG,
				  "not among the %zu open files examined; %zu processes holding "
				  "more open files were not examined",
				  s->n_fds, s->n_unexamined);
	qsort(s->owners, s->n_owners, sizeof(pid_t), pid_cmp);
	return 0;
}

/* ------------------------------------------------------------------ resolution */

static int deny(struct px_ident *out, struct sv_err *err, const struct sv_err *e, int r)
{
	sv_fmt(out->reason, sizeof(out->reason), "%s", e->msg);
	if (err)
		*err = *e;
	return r;
}

static void owners_list(const pid_t *owners, size_t n, char *buf, size_t size)
{
	size_t len = 0;
	for (size_t i = 0; i < n && i < PX_IDENT_OWNERS_MAX && len < size; i++)
		len += sv_fmt(buf + len, size - len, "%s%d", i ? ", " : "", (int)owners[i]);
	if (n > PX_IDENT_OWNERS_MAX && len < size)
		sv_fmt(buf + len, size - len, ", ... (%zu in all)", n);
}

int px_ident_resolve(const struct px_ident_ctx *ctx, pid_t entrypoint,
		     const struct sockaddr *client, socklen_t client_len,
		     const struct sockaddr *proxy, socklen_t proxy_len, struct px_ident *out,
		     struct sv_err *err)
{
	struct sv_err e = {0};
	/* Not the whole ~270 KiB: only what is read before being written (its pages stay
	 * untouched, and unfaulted, for a short ancestry). */
	out->inode = out->cookie = 0;
	out->n_ancestors = out->n_owners = out->n_unexamined = 0;
	out->reason[0] = '\0';
	if (entrypoint <= 0) {
		sv_err_set(&e, ESRCH, PX_IDENT_REASON_NOT_SPAWNED);
		return deny(out, err, &e, -ESRCH);
	}
	int r = -ENOENT;
	if (ctx && ctx->diag)
		r = px_diag_socket_inode(ctx->diag, client, client_len, proxy, proxy_len, &out->inode,
					 &out->cookie, &e);
	if (!ctx || !ctx->diag || (r < 0 && r != -ENOENT)) /* no netlink: the /proc table */
		r = px_ident_socket_inode(entrypoint, client, client_len, proxy, proxy_len,
					  &out->inode, &e);
	if (r < 0) {
		sv_err_prefix(&e, "failed to resolve peer binary");
		return deny(out, err, &e, r);
	}

	struct scan s = {.err = &e};
	s.target_len = sv_fmt(s.target, sizeof(s.target), "socket:[%llu]", out->inode);
	r = owners_find(entrypoint, ctx ? ctx->scope : 0, ctx ? ctx->helper : 0, &s);
	_cleanup_free_ pid_t *owners = s.owners;
	free(s.seen);
	free(s.queue);
	free(s.fds);
	if (r < 0) {
		sv_err_prefix(&e, "failed to resolve peer binary: socket inode %llu", out->inode);
		return deny(out, err, &e, r);
	}
	if (s.n_owners == 0) {
		sv_err_set(&e, ENOENT,
			   "failed to resolve peer binary: no process found owning socket inode "
			   "%llu (scanned %zu processes)",
			   out->inode, s.n_procs);
		return deny(out, err, &e, -ENOENT);
	}
	out->n_owners = s.n_owners;
	out->n_unexamined = s.n_unexamined;
	for (size_t i = 0; i < s.n_owners && i < PX_IDENT_OWNERS_MAX; i++)
		out->owners[i] = owners[i];

	_cleanup_free_ struct px_ident *other = NULL;
	for (size_t i = 0; i < s.n_owners; i++) {
		struct px_ident *dst = out;
		if (i > 0) {
			if (!other && !(other = malloc(sizeof(*other)))) {
				sv_err_set(&e, ENOMEM,
					   "failed to resolve peer binary: out of memory");
				return deny(out, err, &e, -ENOMEM);
			}
			dst = other;
		}
		r = ident_fill(owners[i], entrypoint, ctx ? ctx->scope : 0, dst, &e);
		if (r < 0) {
			sv_err_prefix(&e, "failed to resolve peer binary for PID %d",
				      (int)owners[i]);
			return deny(out, err, &e, r);
		}
		if (i > 0 && !ident_same_policy(out, other)) {
			char list[256];
			owners_list(owners, s.n_owners, list, sizeof(list));
			sv_err_set(&e, ENOTUNIQ,
				   PX_IDENT_REASON_AMBIGUOUS
				   ": inode %llu is held by PIDs [%s] with "
				   "different policy identities",
				   out->inode, list);
			return deny(out, err, &e, -ENOTUNIQ);
		}
	}
	return 0;
}
