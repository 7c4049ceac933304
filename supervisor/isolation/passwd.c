/* Bounded reading of the image's /etc/passwd and /etc/group (contract §6.1).
 *
 * The files belong to the image, so they are hostile input: at most 1 MiB, lines of 8 KiB,
 * fields of 1 KiB, a regular file opened without following a symlink or blocking on a FIFO.
 * Malformed lines are skipped and counted, but a malformed line naming the account being
 * looked up, or two entries for one name, is an error: never guess who the agent is. No NSS.
 * Also turns a user or group spec into an id, refusing root in every spelling.
 */
#include "identity.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "supervisor/log.h"

struct slice {
	const char *p;
	size_t len;
};

#define FIELDS_MAX 7 /* passwd has 7, group 4 */

struct pline {
	unsigned no;
	struct slice name; /* the first field, also for malformed lines */
	struct slice f[FIELDS_MAX];
	uid_t id;	 /* passwd uid or group gid */
	gid_t gid;	 /* passwd gid */
	const char *why; /* why the line is malformed */
};

enum lclass {
	L_BLANK, /* empty line or comment */
	L_OK,
	L_BAD,
};

static bool slice_eq(struct slice s, const char *str)
{
	size_t n = strlen(str);
	return s.len == n && memcmp(s.p, str, n) == 0;
}

static void slice_copy(char *dst, size_t size, struct slice s)
{
	size_t n = s.len < size ? s.len : size - 1;
	if (n > 0)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
}

static bool parse_id(struct slice s, unsigned *out)
{
	char num[16];
	unsigned long long v;
	if (s.len == 0 || s.len >= sizeof(num))
		return false;
	slice_copy(num, sizeof(num), s);
	if (sv_parse_uint(num, 0, SV_ID_MAX, &v) < 0)
		return false;
	*out = (unsigned)v;
	return true;
}

static bool name_is_valid(struct slice s)
{
	if (s.len == 0 || s.p[0] == '+' || s.p[0] == '-') /* NIS compat entries are not accounts */
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c <= ' ' || c == 0x7f)
			return false;
	}
	return true;
}

static enum lclass bad(struct pline *pl, const char *why)
{
	pl->why = why;
	return L_BAD;
}

static enum lclass parse_line(enum sv_acct_kind kind, const char *p, size_t len, struct pline *pl)
{
	size_t want = kind == SV_ACCT_PASSWD ? 7 : 4;
	const char *colon = memchr(p, ':', len);
	pl->name.p = p;
	pl->name.len = colon ? (size_t)(colon - p) : len;
	if (len == 0 || p[0] == '#')
		return L_BLANK;
	if (len > SV_ACCT_LINE_MAX)
		return bad(pl, "line longer than 8192 bytes");
	if (memchr(p, '\0', len))
		return bad(pl, "NUL byte");
	size_t nf = 0;
	const char *end = p + len;
	for (const char *s = p;;) {
		const char *c = memchr(s, ':', (size_t)(end - s));
		const char *fe = c ? c : end;
		if (nf == want)
			return bad(pl, "too many fields");
		if ((size_t)(fe - s) > SV_ACCT_FIELD_MAX)
			return bad(pl, "field longer than 1024 bytes");
		pl->f[nf].p = s;
		pl->f[nf].len = (size_t)(fe - s);
		nf++;
		if (!c)
			break;
		s = c + 1;
	}
	if (nf != want)
		return bad(pl, "too few fields");
	if (!name_is_valid(pl->f[0]))
		return bad(pl, "invalid name");
	unsigned id, gid = 0;
	if (!parse_id(pl->f[2], &id))
		return bad(pl, "invalid numeric id");
	if (kind == SV_ACCT_PASSWD && !parse_id(pl->f[3], &gid))
		return bad(pl, "invalid numeric gid");
	pl->id = id;
	pl->gid = gid;
	return L_OK;
}

/* Iterate over lines; *pos is the byte offset, *no the line number. */
static bool next_line(const struct sv_acct_file *f, size_t *pos, unsigned *no, struct slice *l)
{
	if (!f->buf || *pos >= f->len)
		return false;
	const char *p = f->buf + *pos;
	size_t rest = f->len - *pos;
	const char *nl = memchr(p, '\n', rest);
	size_t len = nl ? (size_t)(nl - p) : rest;
	*pos += len + (nl ? 1 : 0);
	(*no)++;
	if (len > 0 && p[len - 1] == '\r') /* tolerate CRLF files */
		len--;
	l->p = p;
	l->len = len;
	return true;
}

void sv_acct_close(struct sv_acct_file *f)
{
	free(f->buf);
	f->buf = NULL;
	f->len = 0;
}

static int read_bounded(int fd, struct sv_acct_file *f, struct sv_err *err)
{
	f->buf = malloc(SV_ACCT_FILE_MAX + 2);
	if (!f->buf)
		return sv_err_set(err, ENOMEM, "%s: out of memory", f->path);
	size_t total = 0;
	while (total <= SV_ACCT_FILE_MAX) {
		ssize_t n = read(fd, f->buf + total, SV_ACCT_FILE_MAX + 1 - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			sv_acct_close(f);
			return sv_err_set(err, e, "%s: read: %s", f->path, strerror(e));
		}
		if (n == 0)
			break;
		total += (size_t)n;
	}
	if (total > SV_ACCT_FILE_MAX) {
		sv_acct_close(f);
		return sv_err_set(err, EFBIG, "%s: larger than %ld bytes; refusing to parse it",
				  f->path, (long)SV_ACCT_FILE_MAX);
	}
	f->buf[total] = '\0';
	f->len = total;
	return 0;
}

int sv_acct_open(struct sv_acct_file *f, enum sv_acct_kind kind, const char *root, const char *rel,
		 struct sv_err *err)
{
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	if (!root || !*root)
		root = "/";
	size_t rl = strlen(root);
	while (rl > 0 && root[rl - 1] == '/')
		rl--;
	while (*rel == '/')
		rel++;
	if (rl + 1 + strlen(rel) >= sizeof(f->path))
		return sv_err_set(err, ENAMETOOLONG, "image root '%s' is too long", root);
	sv_fmt(f->path, sizeof(f->path), "%.*s/%s", (int)rl, root, rel);

	_cleanup_close_ int fd =
	    open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 && errno == ENOENT) {
		f->missing = true;
		return 0;
	}
	if (fd < 0 && errno == ELOOP)
		return sv_err_set(err, ELOOP, "%s: is a symbolic link; refusing to follow it",
				  f->path);
	if (fd < 0)
		return sv_err_set(err, errno, "%s: open: %s", f->path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sv_err_set(err, errno, "%s: fstat: %s", f->path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return sv_err_set(err, EINVAL, "%s: not a regular file", f->path);
	if (st.st_size > SV_ACCT_FILE_MAX)
		return sv_err_set(err, EFBIG, "%s: larger than %ld bytes; refusing to parse it",
				  f->path, (long)SV_ACCT_FILE_MAX);
	int r = read_bounded(fd, f, err);
	if (r < 0)
		return r;

	size_t pos = 0;
	unsigned no = 0;
	struct slice l;
	while (next_line(f, &pos, &no, &l)) {
		struct pline pl = {.no = no};
		if (parse_line(kind, l.p, l.len, &pl) != L_BAD)
			continue;
		if (f->skipped++ == 0)
			f->first_skipped = no;
	}
	return 0;
}

/* One pass that selects the unique entry named @name; fills @pl_out. */
static int find_by_name(const struct sv_acct_file *f, const char *name, struct pline *out,
			struct sv_err *err)
{
	size_t pos = 0;
	unsigned no = 0;
	struct slice l;
	bool found = false;
	while (next_line(f, &pos, &no, &l)) {
		struct pline pl = {.no = no};
		enum lclass c = parse_line(f->kind, l.p, l.len, &pl);
		if (c == L_BLANK || !slice_eq(pl.name, name))
			continue;
		if (c == L_BAD)
			return sv_err_set(err, EINVAL,
					  "%s:%u: the entry for '%s' is malformed (%s)", f->path,
					  no, name, pl.why);
		if (found)
			return sv_err_set(err, EINVAL,
					  "%s:%u: '%s' is ambiguous: it is also defined at line %u",
					  f->path, no, name, out->no);
		*out = pl;
		found = true;
	}
	return found ? 1 : 0;
}

static void fill_pwent(const struct pline *pl, struct sv_pwent *out)
{
	slice_copy(out->name, sizeof(out->name), pl->f[0]);
	slice_copy(out->dir, sizeof(out->dir), pl->f[5]);
	out->uid = pl->id;
	out->gid = pl->gid;
	out->line = pl->no;
}

int sv_passwd_find_name(const struct sv_acct_file *f, const char *name, struct sv_pwent *out,
			struct sv_err *err)
{
	struct pline pl = {0};
	int r = find_by_name(f, name, &pl, err);
	if (r > 0)
		fill_pwent(&pl, out);
	return r;
}

int sv_passwd_find_uid(const struct sv_acct_file *f, uid_t uid, struct sv_pwent *out,
		       struct sv_err *err)
{
	size_t pos = 0;
	unsigned no = 0;
	struct slice l;
	bool found = false;
	while (next_line(f, &pos, &no, &l)) {
		struct pline pl = {.no = no};
		if (parse_line(f->kind, l.p, l.len, &pl) != L_OK || pl.id != uid)
			continue;
		if (!found) {
			fill_pwent(&pl, out);
			found = true;
		} else if (pl.gid != out->gid) {
			/* Several names for one uid are common; several primary groups are not. */
			return sv_err_set(err, EINVAL,
					  "%s:%u: uid %u is ambiguous: line %u gives it gid %u, "
					  "this line gid %u",
					  f->path, no, (unsigned)uid, out->line, (unsigned)out->gid,
					  (unsigned)pl.gid);
		}
	}
	return found ? 1 : 0;
}

int sv_group_find_name(const struct sv_acct_file *f, const char *name, struct sv_grent *out,
		       struct sv_err *err)
{
	struct pline pl = {0};
	int r = find_by_name(f, name, &pl, err);
	if (r > 0) {
		slice_copy(out->name, sizeof(out->name), pl.f[0]);
		out->gid = pl.id;
		out->line = pl.no;
	}
	return r;
}

static bool members_include(struct slice members, const char *user)
{
	const char *p = members.p, *end = members.p + members.len;
	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		struct slice m = {p, (size_t)((c ? c : end) - p)};
		if (slice_eq(m, user))
			return true;
		if (!c)
			break;
		p = c + 1;
	}
	return false;
}

int sv_group_memberships(const struct sv_acct_file *f, const char *user, gid_t *gids, size_t max,
			 size_t *n, struct sv_err *err)
{
	size_t pos = 0;
	unsigned no = 0;
	struct slice l;
	while (next_line(f, &pos, &no, &l)) {
		struct pline pl = {.no = no};
		if (parse_line(f->kind, l.p, l.len, &pl) != L_OK || !members_include(pl.f[3], user))
			continue;
		if (pl.id == 0)
			return sv_err_set(err, EPERM,
					  "refusing to run the agent as root: '%s' is a member of "
					  "group '%.*s' (gid 0) at %s:%u",
					  user, (int)pl.f[0].len, pl.f[0].p, f->path, no);
		bool dup = false;
		for (size_t i = 0; i < *n && !dup; i++)
			dup = gids[i] == (gid_t)pl.id;
		if (dup)
			continue;
		if (*n >= max)
			return sv_err_set(err, E2BIG,
					  "%s:%u: '%s' is a member of more than %zu groups",
					  f->path, no, user, max);
		gids[(*n)++] = (gid_t)pl.id;
	}
	return 0;
}

/* --- user and group specs ------------------------------------------------------------------ */

#define ROOT_REFUSED "refusing to run the agent as root"

static bool is_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static int validate_spec(const char *v, const char *what, struct sv_err *err)
{
	size_t n = strlen(v);
	if (n == 0 || n > SV_ACCT_FIELD_MAX)
		return sv_err_set(err, EINVAL, "%s: '%.64s' is malformed (1..%d bytes)", what, v,
				  SV_ACCT_FIELD_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c <= ' ' || c == 0x7f || c == ':')
			return sv_err_set(err, EINVAL,
					  "%s: '%.64s' is malformed (byte %zu: whitespace, control "
					  "character or ':')",
					  what, v, i + 1);
	}
	return 0;
}

int sv_acct_parse_id(const char *v, const char *what, const char *kind, unsigned *out,
		     struct sv_err *err)
{
	unsigned long long n;
	int r = sv_parse_uint(v, 0, ULLONG_MAX, &n);
	if (r < 0 && r != -ERANGE)
		return sv_err_set(err, EINVAL, "%s: '%.64s' is not a decimal %s", what, v, kind);
	if (r == 0 && n == 0)
		return sv_err_set(err, EPERM, ROOT_REFUSED ": %s is %s 0", what, kind);
	if (r < 0 || n > SV_ID_MAX)
		return sv_err_set(err, ERANGE, "%s: %s '%.64s' is out of range 1..%u", what, kind,
				  v, SV_ID_MAX);
	*out = (unsigned)n;
	return 0;
}

int sv_acct_ctx_load(struct sv_acct_ctx *c, enum sv_acct_kind kind, struct sv_err *err)
{
	bool passwd = kind == SV_ACCT_PASSWD;
	bool *opened = passwd ? &c->pw_open : &c->gr_open;
	struct sv_acct_file *f = passwd ? &c->pw : &c->gr;
	if (*opened)
		return 0;
	int r = sv_acct_open(f, kind, c->root, passwd ? "etc/passwd" : "etc/group", err);
	if (r < 0)
		return r;
	*opened = true;
	if (f->skipped)
		sv_debug("identity", "account_lines_skipped",
			 "%s: skipped %u malformed line(s), the first at line %u", f->path,
			 f->skipped, f->first_skipped);
	return 0;
}

void sv_acct_ctx_close(struct sv_acct_ctx *c)
{
	if (c->pw_open)
		sv_acct_close(&c->pw);
	if (c->gr_open)
		sv_acct_close(&c->gr);
	c->pw_open = c->gr_open = false;
}

int sv_acct_user_lookup(struct sv_acct_ctx *c, const char *spec, const char *what,
			struct sv_acct_user *out, struct sv_err *err)
{
	memset(out, 0, sizeof(*out));
	int r = validate_spec(spec, what, err);
	if (r < 0)
		return r;
	if (strcmp(spec, "root") == 0)
		return sv_err_set(err, EPERM, ROOT_REFUSED ": %s is 'root'", what);
	if (is_digits(spec)) {
		unsigned id = 0;
		if ((r = sv_acct_parse_id(spec, what, "uid", &id, err)) < 0)
			return r;
		out->uid = id;
		out->numeric = true;
		return 0;
	}
	if ((r = sv_acct_ctx_load(c, SV_ACCT_PASSWD, err)) < 0)
		return r;
	r = sv_passwd_find_name(&c->pw, spec, &out->pw, err);
	if (r < 0)
		return r;
	if (r == 0)
		return sv_err_set(err, ENOENT, "%s: user '%s' not found in %s%s", what, spec,
				  c->pw.path, c->pw.missing ? " (the file does not exist)" : "");
	if (out->pw.uid == 0)
		return sv_err_set(err, EPERM, ROOT_REFUSED ": %s: user '%s' has uid 0 (%s:%u)",
				  what, spec, c->pw.path, out->pw.line);
	out->uid = out->pw.uid;
	return 0;
}

int sv_acct_group_lookup(struct sv_acct_ctx *c, const char *spec, const char *what, gid_t *out,
			 struct sv_err *err)
{
	int r = validate_spec(spec, what, err);
	if (r < 0)
		return r;
	if (strcmp(spec, "root") == 0)
		return sv_err_set(err, EPERM, ROOT_REFUSED ": %s is group 'root'", what);
	if (is_digits(spec)) {
		unsigned id = 0;
		if ((r = sv_acct_parse_id(spec, what, "gid", &id, err)) < 0)
			return r;
		*out = id;
		return 0;
	}
	if ((r = sv_acct_ctx_load(c, SV_ACCT_GROUP, err)) < 0)
		return r;
	struct sv_grent gr;
	r = sv_group_find_name(&c->gr, spec, &gr, err);
	if (r < 0)
		return r;
	if (r == 0)
		return sv_err_set(err, ENOENT, "%s: group '%s' not found in %s%s", what, spec,
				  c->gr.path, c->gr.missing ? " (the file does not exist)" : "");
	if (gr.gid == 0)
		return sv_err_set(err, EPERM, ROOT_REFUSED ": %s: group '%s' has gid 0 (%s:%u)",
				  what, spec, c->gr.path, gr.line);
	*out = gr.gid;
	return 0;
}
