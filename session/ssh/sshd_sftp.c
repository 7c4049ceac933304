/* An SFTP version 3 server (draft-ietf-secsh-filexfer-02, OpenSSH's dialect) run by a sandboxed
 * child over its stdin and stdout, so `sftp` and OpenSSH 9's `scp` work in images without an
 * sftp-server binary.
 *
 * It runs after the spawn hook: as the agent, under its Landlock domain and seccomp filter, never
 * as root. It uses no heap and no stdio (it is forked from the supervisor without exec). Every
 * packet is parsed with bounds checks; a malformed packet gets SSH_FX_BAD_MESSAGE, a
 * malformed frame ends the session.
 */
#include "sshd.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sshd_sftp.h"

enum {
	FXP_INIT = 1,
	FXP_VERSION = 2,
	FXP_OPEN = 3,
	FXP_CLOSE = 4,
	FXP_READ = 5,
	FXP_WRITE = 6,
	FXP_LSTAT = 7,
	FXP_FSTAT = 8,
	FXP_SETSTAT = 9,
	FXP_FSETSTAT = 10,
	FXP_OPENDIR = 11,
	FXP_READDIR = 12,
	FXP_REMOVE = 13,
	FXP_MKDIR = 14,
	FXP_RMDIR = 15,
	FXP_REALPATH = 16,
	FXP_STAT = 17,
	FXP_RENAME = 18,
	FXP_READLINK = 19,
	FXP_SYMLINK = 20,
	FXP_STATUS = 101,
	FXP_HANDLE = 102,
	FXP_DATA = 103,
	FXP_NAME = 104,
	FXP_ATTRS = 105,
	FXP_EXTENDED = 200,
};

enum {
	FX_OK = 0,
	FX_EOF = 1,
	FX_NO_SUCH_FILE = 2,
	FX_PERMISSION_DENIED = 3,
	FX_FAILURE = 4,
	FX_BAD_MESSAGE = 5,
	FX_OP_UNSUPPORTED = 8,
};

#define ATTR_SIZE 0x1u
#define ATTR_UIDGID 0x2u
#define ATTR_PERMISSIONS 0x4u
#define ATTR_ACMODTIME 0x8u
#define ATTR_EXTENDED 0x80000000u

#define PF_READ 0x1u
#define PF_WRITE 0x2u
#define PF_APPEND 0x4u
#define PF_CREAT 0x8u
#define PF_TRUNC 0x10u
#define PF_EXCL 0x20u

/* --- reading a packet ------------------------------------------------------------------------ */

struct rd {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static uint32_t rd_u32(struct rd *r)
{
	if (r->left < 4) {
		r->bad = true;
		r->left = 0;
		return 0;
	}
	uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 |
		     r->p[3];
	r->p += 4;
	r->left -= 4;
	return v;
}

static uint64_t rd_u64(struct rd *r)
{
	uint64_t hi = rd_u32(r);
	return hi << 32 | rd_u32(r);
}

/* A string as bytes (not terminated); NULL when the packet is short. */
static const uint8_t *rd_bytes(struct rd *r, uint32_t *len)
{
	*len = rd_u32(r);
	if (r->bad || *len > r->left) {
		r->bad = true;
		r->left = 0;
		*len = 0;
		return NULL;
	}
	const uint8_t *s = r->p;
	r->p += *len;
	r->left -= *len;
	return s;
}

/* A path: copied into @buf and terminated; an embedded NUL or an over-long path is bad. */
static bool rd_path(struct rd *r, char *buf, size_t size)
{
	uint32_t len;
	const uint8_t *s = rd_bytes(r, &len);
	if (!s || len >= size || memchr(s, '\0', len)) {
		r->bad = true;
		return false;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	return true;
}

struct attrs {
	uint32_t flags;
	uint64_t size;
	uint32_t uid, gid, perm, atime, mtime;
};

static void rd_attrs(struct rd *r, struct attrs *a)
{
	memset(a, 0, sizeof(*a));
	a->flags = rd_u32(r);
	if (a->flags & ATTR_SIZE)
		a->size = rd_u64(r);
	if (a->flags & ATTR_UIDGID) {
		a->uid = rd_u32(r);
		a->gid = rd_u32(r);
	}
	if (a->flags & ATTR_PERMISSIONS)
		a->perm = rd_u32(r);
	if (a->flags & ATTR_ACMODTIME) {
		a->atime = rd_u32(r);
		a->mtime = rd_u32(r);
	}
	if (a->flags & ATTR_EXTENDED) {
		uint32_t n = rd_u32(r);
		for (uint32_t i = 0; i < n && !r->bad; i++) {
			uint32_t len;
			(void)rd_bytes(r, &len);
			(void)rd_bytes(r, &len);
		}
	}
}

/* --- writing a reply ------------------------------------------------------------------------- */

static void wr_raw(struct sshd_sftp *s, const void *p, size_t n)
{
	if (s->olen + n > sizeof(s->out)) {
		s->ofull = true;
		return;
	}
	memcpy(s->out + s->olen, p, n);
	s->olen += n;
}

static void wr_u8(struct sshd_sftp *s, uint8_t v)
{
	wr_raw(s, &v, 1);
}

static void wr_u32(struct sshd_sftp *s, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	wr_raw(s, b, 4);
}

static void wr_u64(struct sshd_sftp *s, uint64_t v)
{
	wr_u32(s, (uint32_t)(v >> 32));
	wr_u32(s, (uint32_t)v);
}

static void wr_str(struct sshd_sftp *s, const void *p, size_t n)
{
	wr_u32(s, (uint32_t)n);
	wr_raw(s, p, n);
}

static void wr_cstr(struct sshd_sftp *s, const char *p)
{
	wr_str(s, p, strlen(p));
}

static void begin(struct sshd_sftp *s, uint8_t type, uint32_t id)
{
	s->olen = 0;
	s->ofull = false;
	wr_u32(s, 0); /* length, patched by end() */
	wr_u8(s, type);
	wr_u32(s, id);
}

static void status(struct sshd_sftp *s, uint32_t id, uint32_t code, const char *msg);

static void end(struct sshd_sftp *s)
{
	if (s->ofull) /* cannot happen with the sizes used; answer something valid anyway */
		return;
	uint32_t n = (uint32_t)(s->olen - 4);
	s->out[0] = (uint8_t)(n >> 24);
	s->out[1] = (uint8_t)(n >> 16);
	s->out[2] = (uint8_t)(n >> 8);
	s->out[3] = (uint8_t)n;
	s->ready = true;
}

static void status(struct sshd_sftp *s, uint32_t id, uint32_t code, const char *msg)
{
	begin(s, FXP_STATUS, id);
	wr_u32(s, code);
	wr_cstr(s, msg);
	wr_cstr(s, "");
	end(s);
}

static uint32_t errno_code(int e)
{
	switch (e) {
	case 0:
		return FX_OK;
	case ENOENT:
	case ENOTDIR:
	case EBADF:
	case ELOOP:
		return FX_NO_SUCH_FILE;
	case EACCES:
	case EPERM:
	case EROFS:
		return FX_PERMISSION_DENIED;
	default:
		return FX_FAILURE;
	}
}

static void status_errno(struct sshd_sftp *s, uint32_t id, int e)
{
	status(s, id, errno_code(e), e ? strerror(e) : "Success");
}

static void wr_stat(struct sshd_sftp *s, const struct stat *st)
{
	wr_u32(s, ATTR_SIZE | ATTR_UIDGID | ATTR_PERMISSIONS | ATTR_ACMODTIME);
	wr_u64(s, (uint64_t)st->st_size);
	wr_u32(s, (uint32_t)st->st_uid);
	wr_u32(s, (uint32_t)st->st_gid);
	wr_u32(s, (uint32_t)st->st_mode);
	wr_u32(s, (uint32_t)st->st_atime);
	wr_u32(s, (uint32_t)st->st_mtime);
}

/* `ls -l` style line for READDIR (what sftp's `ls -l` prints). */
static void longname(char *buf, size_t size, const char *name, const struct stat *st)
{
	char mode[11] = "----------";
	switch (st->st_mode & S_IFMT) {
	case S_IFDIR:
		mode[0] = 'd';
		break;
	case S_IFLNK:
		mode[0] = 'l';
		break;
	case S_IFCHR:
		mode[0] = 'c';
		break;
	case S_IFBLK:
		mode[0] = 'b';
		break;
	case S_IFIFO:
		mode[0] = 'p';
		break;
	case S_IFSOCK:
		mode[0] = 's';
		break;
	default:
		break;
	}
	static const char rwx[] = "rwxrwxrwx";
	for (int i = 0; i < 9; i++) {
		if (st->st_mode & (1u << (8 - i)))
			mode[1 + i] = rwx[i];
	}
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	time_t t = st->st_mtime;
	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm));
	sv_fmt(buf, size, "%s %4lu %-8u %-8u %8lld %s %2d %02d:%02d %s", mode,
	       (unsigned long)st->st_nlink, (unsigned)st->st_uid, (unsigned)st->st_gid,
	       (long long)st->st_size, mon[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min,
	       name);
}

/* --- handles --------------------------------------------------------------------------------- */

static int handle_new(struct sshd_sftp *s, int fd, bool dir, bool append)
{
	for (int i = 0; i < SSHD_SFTP_HANDLES; i++) {
		if (!s->h[i].used) {
			s->h[i] = (struct sshd_sftp_handle){.used = true, .fd = fd, .dir = dir,
							    .append = append};
			return i;
		}
	}
	return -1;
}

static struct sshd_sftp_handle *rd_handle(struct sshd_sftp *s, struct rd *r, bool dir)
{
	uint32_t len;
	const uint8_t *p = rd_bytes(r, &len);
	if (!p || len != 4)
		return NULL;
	uint32_t i = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (i >= SSHD_SFTP_HANDLES || !s->h[i].used || s->h[i].dir != dir)
		return NULL;
	return &s->h[i];
}

static void reply_handle(struct sshd_sftp *s, uint32_t id, int i)
{
	uint8_t b[4] = {0, 0, 0, (uint8_t)i};
	begin(s, FXP_HANDLE, id);
	wr_str(s, b, 4);
	end(s);
}

/* --- the file system, through a dry-run switch for the fuzzer -------------------------------- */

static int fs_open(struct sshd_sftp *s, const char *path, int flags, mode_t mode)
{
	if (s->dry)
		return open((flags & O_DIRECTORY) ? "/" : "/dev/null",
			    (flags & O_DIRECTORY) ? O_RDONLY | O_DIRECTORY | O_CLOEXEC
						  : O_RDWR | O_CLOEXEC);
	return open(path, flags | O_CLOEXEC | O_NOCTTY, mode);
}

/* A call that changes the file system: in dry mode it is not made at all (a macro, so the call
 * is never evaluated). */
#define FS_DO(s, call) ((s)->dry ? 0 : (call))

/* --- requests -------------------------------------------------------------------------------- */

static void do_open(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	char path[PATH_MAX];
	struct attrs a;
	if (!rd_path(r, path, sizeof(path)))
		return;
	uint32_t pf = rd_u32(r);
	rd_attrs(r, &a);
	if (r->bad)
		return;
	int flags = 0;
	if ((pf & PF_READ) && (pf & PF_WRITE))
		flags = O_RDWR;
	else if (pf & PF_WRITE)
		flags = O_WRONLY;
	else
		flags = O_RDONLY;
	if (pf & PF_APPEND)
		flags |= O_APPEND;
	if (pf & PF_CREAT)
		flags |= O_CREAT;
	if (pf & PF_TRUNC)
		flags |= O_TRUNC;
	if (pf & PF_EXCL)
		flags |= O_EXCL;
	mode_t mode = (a.flags & ATTR_PERMISSIONS) ? (mode_t)(a.perm & 07777) : 0666;
	int fd = fs_open(s, path, flags, mode);
	if (fd < 0) {
		status_errno(s, id, errno);
		return;
	}
	int h = handle_new(s, fd, false, (pf & PF_APPEND) != 0);
	if (h < 0) {
		close(fd);
		status(s, id, FX_FAILURE, "too many open handles");
		return;
	}
	reply_handle(s, id, h);
}

static void do_opendir(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	char path[PATH_MAX];
	if (!rd_path(r, path, sizeof(path)))
		return;
	int fd = fs_open(s, path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0) {
		status_errno(s, id, errno);
		return;
	}
	int h = handle_new(s, fd, true, false);
	if (h < 0) {
		close(fd);
		status(s, id, FX_FAILURE, "too many open handles");
		return;
	}
	reply_handle(s, id, h);
}

static void do_close(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	struct rd save = *r;
	struct sshd_sftp_handle *h = rd_handle(s, r, false);
	if (!h) {
		*r = save;
		h = rd_handle(s, r, true);
	}
	if (!h) {
		status(s, id, FX_FAILURE, "invalid handle");
		return;
	}
	int rc = close(h->fd);
	h->used = false;
	status_errno(s, id, rc < 0 && errno != EINTR ? errno : 0);
}

static void do_read(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	struct sshd_sftp_handle *h = rd_handle(s, r, false);
	uint64_t off = rd_u64(r);
	uint32_t len = rd_u32(r);
	if (r->bad)
		return;
	if (!h) {
		status(s, id, FX_FAILURE, "invalid handle");
		return;
	}
	if (len > SSHD_SFTP_DATA_MAX)
		len = (uint32_t)SSHD_SFTP_DATA_MAX;
	if (off > (uint64_t)INT64_MAX) {
		status(s, id, FX_EOF, "End of file");
		return;
	}
	begin(s, FXP_DATA, id);
	size_t at = s->olen;
	wr_u32(s, 0);
	ssize_t n;
	do {
		n = pread(h->fd, s->out + s->olen, len, (off_t)off);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		status_errno(s, id, errno);
		return;
	}
	if (n == 0) {
		status(s, id, FX_EOF, "End of file");
		return;
	}
	s->out[at] = (uint8_t)(n >> 24);
	s->out[at + 1] = (uint8_t)(n >> 16);
	s->out[at + 2] = (uint8_t)(n >> 8);
	s->out[at + 3] = (uint8_t)n;
	s->olen += (size_t)n;
	end(s);
}

static void do_write(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	struct sshd_sftp_handle *h = rd_handle(s, r, false);
	uint64_t off = rd_u64(r);
	uint32_t len;
	const uint8_t *data = rd_bytes(r, &len);
	if (r->bad)
		return;
	if (!h) {
		status(s, id, FX_FAILURE, "invalid handle");
		return;
	}
	if (off > (uint64_t)INT64_MAX - len) {
		status(s, id, FX_FAILURE, "offset out of range");
		return;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = h->append ? write(h->fd, data + done, len - done)
				      : pwrite(h->fd, data + done, len - done,
					       (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			status_errno(s, id, n < 0 ? errno : ENOSPC);
			return;
		}
		done += (size_t)n;
	}
	status_errno(s, id, 0);
}

static void reply_stat(struct sshd_sftp *s, uint32_t id, int rc, const struct stat *st)
{
	if (rc < 0) {
		status_errno(s, id, errno);
		return;
	}
	begin(s, FXP_ATTRS, id);
	wr_stat(s, st);
	end(s);
}

static void do_stat(struct sshd_sftp *s, uint32_t id, struct rd *r, bool follow)
{
	char path[PATH_MAX];
	if (!rd_path(r, path, sizeof(path)))
		return;
	struct stat st;
	int rc = follow ? stat(path, &st) : lstat(path, &st);
	reply_stat(s, id, rc, &st);
}

static void do_fstat(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	struct sshd_sftp_handle *h = rd_handle(s, r, false);
	if (r->bad)
		return;
	if (!h) {
		status(s, id, FX_FAILURE, "invalid handle");
		return;
	}
	struct stat st;
	reply_stat(s, id, fstat(h->fd, &st), &st);
}

/* Apply @a to @path, or to @fd when @path is NULL. */
static int apply_attrs(struct sshd_sftp *s, const char *path, int fd, const struct attrs *a)
{
	if (path)
		fd = -1;
	if (a->flags & ATTR_SIZE) {
		if ((uint64_t)a->size > (uint64_t)INT64_MAX)
			return EINVAL;
		int rc = FS_DO(s, !path ? ftruncate(fd, (off_t)a->size)
					 : truncate(path, (off_t)a->size));
		if (rc < 0)
			return errno;
	}
	if (a->flags & ATTR_PERMISSIONS) {
		int rc = FS_DO(s, !path ? fchmod(fd, (mode_t)(a->perm & 07777))
					 : chmod(path, (mode_t)(a->perm & 07777)));
		if (rc < 0)
			return errno;
	}
	if (a->flags & ATTR_ACMODTIME) {
		struct timespec ts[2] = {{.tv_sec = a->atime}, {.tv_sec = a->mtime}};
		int rc = FS_DO(s, !path ? futimens(fd, ts) : utimensat(AT_FDCWD, path, ts, 0));
		if (rc < 0)
			return errno;
	}
	if (a->flags & ATTR_UIDGID) {
		int rc = FS_DO(s, !path ? fchown(fd, a->uid, a->gid)
					 : chown(path, a->uid, a->gid));
		if (rc < 0)
			return errno;
	}
	return 0;
}

static void do_setstat(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	char path[PATH_MAX];
	struct attrs a;
	if (!rd_path(r, path, sizeof(path)))
		return;
	rd_attrs(r, &a);
	if (r->bad)
		return;
	status_errno(s, id, apply_attrs(s, path, -1, &a));
}

static void do_fsetstat(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	struct sshd_sftp_handle *h = rd_handle(s, r, false);
	struct attrs a;
	rd_attrs(r, &a);
	if (r->bad)
		return;
	if (!h) {
		status(s, id, FX_FAILURE, "invalid handle");
		return;
	}
	status_errno(s, id, apply_attrs(s, NULL, h->fd, &a));
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static void do_readdir(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	struct sshd_sftp_handle *h = rd_handle(s, r, true);
	if (r->bad)
		return;
	if (!h) {
		status(s, id, FX_FAILURE, "invalid handle");
		return;
	}
	if (h->dpos >= h->dlen) {
		long n = syscall(SYS_getdents64, h->fd, h->dbuf, sizeof(h->dbuf));
		if (n < 0) {
			status_errno(s, id, errno);
			return;
		}
		if (n == 0) {
			status(s, id, FX_EOF, "End of file");
			return;
		}
		h->dlen = (size_t)n;
		h->dpos = 0;
	}
	begin(s, FXP_NAME, id);
	size_t at = s->olen;
	wr_u32(s, 0);
	uint32_t count = 0;
	while (h->dpos < h->dlen && count < 128 && s->olen < sizeof(s->out) - (size_t)2 * PATH_MAX - 512) {
		struct linux_dirent64 *d = (struct linux_dirent64 *)(void *)(h->dbuf + h->dpos);
		if (d->d_reclen == 0 || h->dpos + d->d_reclen > h->dlen)
			break;
		h->dpos += d->d_reclen;
		size_t nlen = strnlen(d->d_name, d->d_reclen - offsetof(struct linux_dirent64, d_name));
		char name[256];
		if (nlen >= sizeof(name))
			continue;
		memcpy(name, d->d_name, nlen);
		name[nlen] = '\0';
		struct stat st;
		if (fstatat(h->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			memset(&st, 0, sizeof(st));
		char ln[PATH_MAX + 128];
		longname(ln, sizeof(ln), name, &st);
		wr_cstr(s, name);
		wr_cstr(s, ln);
		wr_stat(s, &st);
		count++;
	}
	s->out[at] = (uint8_t)(count >> 24);
	s->out[at + 1] = (uint8_t)(count >> 16);
	s->out[at + 2] = (uint8_t)(count >> 8);
	s->out[at + 3] = (uint8_t)count;
	end(s);
}

static void do_path_op(struct sshd_sftp *s, uint32_t id, struct rd *r, uint8_t type)
{
	char path[PATH_MAX];
	struct attrs a;
	if (!rd_path(r, path, sizeof(path)))
		return;
	int rc;
	switch (type) {
	case FXP_REMOVE:
		rc = FS_DO(s, unlink(path));
		break;
	case FXP_RMDIR:
		rc = FS_DO(s, rmdir(path));
		break;
	default: /* FXP_MKDIR */
		rd_attrs(r, &a);
		if (r->bad)
			return;
		rc = FS_DO(s, mkdir(path, (a.flags & ATTR_PERMISSIONS) ? (mode_t)(a.perm & 07777)
								       : 0777));
		break;
	}
	status_errno(s, id, rc < 0 ? errno : 0);
}

static void do_rename(struct sshd_sftp *s, uint32_t id, struct rd *r, bool posix)
{
	char from[PATH_MAX], to[PATH_MAX];
	if (!rd_path(r, from, sizeof(from)) || !rd_path(r, to, sizeof(to)))
		return;
	int rc;
	if (posix) {
		rc = FS_DO(s, rename(from, to));
	} else {
		/* SFTP v3: an existing target is an error. */
		rc = FS_DO(s, (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 1u));
		if (rc < 0 && errno == EINVAL) {
			struct stat st;
			if (lstat(to, &st) == 0) {
				errno = EEXIST;
				rc = -1;
			} else {
				rc = FS_DO(s, rename(from, to));
			}
		}
	}
	status_errno(s, id, rc < 0 ? errno : 0);
}

static void do_symlink(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	/* OpenSSH's order (the reverse of the draft): target first, then the link's path. */
	char target[PATH_MAX], link[PATH_MAX];
	if (!rd_path(r, target, sizeof(target)) || !rd_path(r, link, sizeof(link)))
		return;
	int rc = FS_DO(s, symlink(target, link));
	status_errno(s, id, rc < 0 ? errno : 0);
}

static void reply_name(struct sshd_sftp *s, uint32_t id, const char *name)
{
	begin(s, FXP_NAME, id);
	wr_u32(s, 1);
	wr_cstr(s, name);
	wr_cstr(s, name);
	wr_u32(s, 0); /* no attributes */
	end(s);
}

static void do_readlink(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	char path[PATH_MAX], target[PATH_MAX];
	if (!rd_path(r, path, sizeof(path)))
		return;
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		status_errno(s, id, errno);
		return;
	}
	target[n] = '\0';
	reply_name(s, id, target);
}

/* Lexical clean-up of an absolute path: no "", ".", ".." components left. */
static void path_clean(char *p)
{
	char *out = p;
	const char *in = p;
	while (*in) {
		while (*in == '/')
			in++;
		const char *seg = in;
		while (*in && *in != '/')
			in++;
		size_t len = (size_t)(in - seg);
		if (len == 0 || (len == 1 && seg[0] == '.'))
			continue;
		if (len == 2 && seg[0] == '.' && seg[1] == '.') {
			while (out > p && *--out != '/')
				;
			continue;
		}
		*out++ = '/';
		memmove(out, seg, len);
		out += len;
	}
	if (out == p)
		*out++ = '/';
	*out = '\0';
}

static void do_realpath(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	char path[PATH_MAX], full[PATH_MAX], res[PATH_MAX];
	if (!rd_path(r, path, sizeof(path)))
		return;
	if (path[0] == '/') {
		memcpy(full, path, strlen(path) + 1);
	} else {
		if (!getcwd(full, sizeof(full))) {
			status_errno(s, id, errno);
			return;
		}
		size_t n = strlen(full);
		if (n + 1 + strlen(path) + 1 > sizeof(full)) {
			status(s, id, FX_FAILURE, "path too long");
			return;
		}
		full[n] = '/';
		memcpy(full + n + 1, path, strlen(path) + 1);
	}
	/* Symlinks resolved where the path exists; a path that does not (yet) is cleaned up
	 * lexically, as OpenSSH's sftp-server answers. */
	if (realpath(full, res)) {
		reply_name(s, id, res);
		return;
	}
	path_clean(full);
	reply_name(s, id, full);
}

static void do_extended(struct sshd_sftp *s, uint32_t id, struct rd *r)
{
	uint32_t len;
	const uint8_t *name = rd_bytes(r, &len);
	if (!name)
		return;
	static const char posix_rename[] = "posix-rename@openssh.com";
	if (len == sizeof(posix_rename) - 1 && memcmp(name, posix_rename, len) == 0) {
		do_rename(s, id, r, true);
		return;
	}
	status(s, id, FX_OP_UNSUPPORTED, "Operation unsupported");
}

void sshd_sftp_init(struct sshd_sftp *s, bool dry)
{
	memset(s, 0, sizeof(*s));
	s->dry = dry;
}

void sshd_sftp_packet(struct sshd_sftp *s, const uint8_t *pkt, size_t len)
{
	struct rd r = {.p = pkt, .left = len};
	s->ready = false;
	uint8_t type = len ? pkt[0] : 0;
	r.p++;
	r.left = len ? len - 1 : 0;
	if (type == FXP_INIT) {
		(void)rd_u32(&r); /* the client's version; we answer 3 whatever it is */
		begin(s, FXP_VERSION, 3);
		wr_cstr(s, "posix-rename@openssh.com");
		wr_cstr(s, "1");
		end(s);
		s->inited = true;
		return;
	}
	uint32_t id = rd_u32(&r);
	if (r.bad)
		return; /* no id to answer to */
	switch (type) {
	case FXP_OPEN:
		do_open(s, id, &r);
		break;
	case FXP_CLOSE:
		do_close(s, id, &r);
		break;
	case FXP_READ:
		do_read(s, id, &r);
		break;
	case FXP_WRITE:
		do_write(s, id, &r);
		break;
	case FXP_LSTAT:
		do_stat(s, id, &r, false);
		break;
	case FXP_STAT:
		do_stat(s, id, &r, true);
		break;
	case FXP_FSTAT:
		do_fstat(s, id, &r);
		break;
	case FXP_SETSTAT:
		do_setstat(s, id, &r);
		break;
	case FXP_FSETSTAT:
		do_fsetstat(s, id, &r);
		break;
	case FXP_OPENDIR:
		do_opendir(s, id, &r);
		break;
	case FXP_READDIR:
		do_readdir(s, id, &r);
		break;
	case FXP_REMOVE:
	case FXP_RMDIR:
	case FXP_MKDIR:
		do_path_op(s, id, &r, type);
		break;
	case FXP_REALPATH:
		do_realpath(s, id, &r);
		break;
	case FXP_RENAME:
		do_rename(s, id, &r, false);
		break;
	case FXP_READLINK:
		do_readlink(s, id, &r);
		break;
	case FXP_SYMLINK:
		do_symlink(s, id, &r);
		break;
	case FXP_EXTENDED:
		do_extended(s, id, &r);
		break;
	default:
		status(s, id, FX_OP_UNSUPPORTED, "Operation unsupported");
		return;
	}
	if (r.bad)
		status(s, id, FX_BAD_MESSAGE, "Bad message");
}

void sshd_sftp_close_all(struct sshd_sftp *s)
{
	for (int i = 0; i < SSHD_SFTP_HANDLES; i++) {
		if (s->h[i].used)
			close(s->h[i].fd);
		s->h[i].used = false;
	}
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The state is static: this runs in a forked child with nothing else to do. */
static struct sshd_sftp g_sftp;
static uint8_t g_in[SSHD_SFTP_PACKET_MAX + 4];
/* Replies to the packets of one read go out in one write: a client keeps many requests in
 * flight, and each write is a wake-up of the channel relay and an SSH packet of its own. */
static uint8_t g_reply[(size_t)4 * (SSHD_SFTP_DATA_MAX + 1024)];
static size_t g_nreply;

static int reply_flush(int out)
{
	int r = g_nreply ? write_all(out, g_reply, g_nreply) : 0;
	g_nreply = 0;
	return r;
}

static int reply_add(int out, const uint8_t *p, size_t n)
{
	if (g_nreply + n > sizeof(g_reply) && reply_flush(out) < 0)
		return -1;
	memcpy(g_reply + g_nreply, p, n); /* n <= sizeof(s->out) < sizeof(g_reply) */
	g_nreply += n;
	return 0;
}

int sshd_sftp_serve(int in, int out)
{
	struct sshd_sftp *s = &g_sftp;
	sshd_sftp_init(s, false);
	size_t have = 0;
	for (;;) {
		ssize_t n = read(in, g_in + have, sizeof(g_in) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		size_t off = 0;
		while (have - off >= 4) {
			const uint8_t *p = g_in + off;
			uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
				       (uint32_t)p[2] << 8 | p[3];
			if (len == 0 || len > SSHD_SFTP_PACKET_MAX) {
				sshd_sftp_close_all(s);
				return 2; /* a broken frame: nothing sensible can follow */
			}
			if (have - off - 4 < len)
				break;
			sshd_sftp_packet(s, p + 4, len);
			off += 4 + len;
			if (s->ready && reply_add(out, s->out, s->olen) < 0) {
				sshd_sftp_close_all(s);
				return 1;
			}
		}
		if (reply_flush(out) < 0) { /* before waiting for more: nothing is held back */
			sshd_sftp_close_all(s);
			return 1;
		}
		memmove(g_in, g_in + off, have - off);
		have -= off;
	}
	sshd_sftp_close_all(s);
	return 0;
}
