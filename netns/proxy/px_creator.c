/* The creator table: socket → the binary that called connect(2) on it, with its ancestors.
 *
 * Filled by PID 1's connect monitor thread, read (and emptied) by the proxy's decisions. A
 * fixed array scanned linearly under one mutex: 2048 slots cost about a microsecond a scan.
 * Must never grow without bound and never turn a missing record into an allow.
 */
#include "px_creator.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "netns/proxy/px_policy.h"
#include "supervisor/err.h"

struct slot {
	bool used;
	uint64_t seq; /* insertion order: the smallest is the oldest */
	uint64_t at_ms;
	struct px_creator rec;
};

static bool g_monitored = true; /* atomic */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot g_slots[PX_CREATOR_CAP];
static uint64_t g_seq;
static size_t g_used;

void px_creator_release(struct px_creator *c)
{
	if (!c)
		return;
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

/* Pack @exe and @anc (@n of them) into one buffer; too many bytes → too_long, exe only. */
static int pack(const char *exe, const char *const *anc, size_t n, struct px_creator *out)
{
	if (n > PX_IDENT_ANCESTORS_MAX)
		n = PX_IDENT_ANCESTORS_MAX;
	size_t need = strlen(exe) + 1;
	for (size_t i = 0; i < n; i++)
		need += strlen(anc[i]) + 1;
	if (out->too_long || need > PX_CREATOR_BYTES_MAX) {
		out->too_long = true;
		n = 0;
		need = strlen(exe) + 1;
	}
	out->buf = malloc(need);
	if (!out->buf)
		return -ENOMEM;
	char *p = out->buf;
	size_t l = strlen(exe) + 1;
	memcpy(p, exe, l);
	out->exe = p;
	p += l;
	for (size_t i = 0; i < n; i++) {
		l = strlen(anc[i]) + 1;
		memcpy(p, anc[i], l);
		out->ancestors[i] = p;
		p += l;
	}
	out->n_ancestors = n;
	return 0;
}

int px_creator_from(struct px_creator *out, pid_t pid, bool too_long, const char *exe,
		    const char *const *ancestors, size_t n_ancestors)
{
	memset(out, 0, sizeof(*out));
	out->pid = pid;
	out->too_long = too_long;
	if (pack(exe ? exe : "", ancestors, n_ancestors, out) < 0) {
		px_creator_release(out);
		return -ENOMEM;
	}
	return 0;
}

static void slot_clear(struct slot *s)
{
	px_creator_release(&s->rec);
	s->used = false;
	g_used--;
}

static bool expired(const struct slot *s, uint64_t now_ms)
{
	return now_ms >= s->at_ms && now_ms - s->at_ms > PX_CREATOR_TTL_MS;
}

int px_creator_put(const struct px_ident *id, pid_t pid, unsigned long long cookie,
		   unsigned long long inode, uint64_t now_ms)
{
	struct px_creator rec = {.cookie = cookie, .inode = inode, .pid = pid};
	const char *anc[PX_IDENT_ANCESTORS_MAX] = {0};
	size_t n = id->n_ancestors < PX_IDENT_ANCESTORS_MAX ? id->n_ancestors
							     : PX_IDENT_ANCESTORS_MAX;
	for (size_t i = 0; i < n; i++)
		anc[i] = id->ancestors[i].path;
	if (pack(id->exe.path, anc, n, &rec) < 0)
		return -ENOMEM;
	pthread_mutex_lock(&g_lock);
	struct slot *dst = NULL, *oldest = NULL, *free_slot = NULL;
	int r = 0;
	for (size_t i = 0; i < PX_CREATOR_CAP; i++) {
		struct slot *s = &g_slots[i];
		if (!s->used) {
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (s->rec.inode == inode) {
			if (s->rec.cookie == cookie && !expired(s, now_ms)) {
				r = -EEXIST; /* the first connect on a socket names its creator */
				goto out;
			}
			slot_clear(s); /* a dead socket's inode, or an expired record */
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (expired(s, now_ms)) {
			slot_clear(s);
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (!oldest || s->seq < oldest->seq)
			oldest = s;
	}
	dst = free_slot;
	if (!dst) {
		dst = oldest;
		slot_clear(dst);
	}
	dst->used = true;
	dst->seq = ++g_seq;
	dst->at_ms = now_ms;
	dst->rec = rec;
	rec.buf = NULL;
	g_used++;
out:
	pthread_mutex_unlock(&g_lock);
	px_creator_release(&rec);
	return r;
}

int px_ident_creator_lookup(unsigned long long inode, unsigned long long cookie, uint64_t now_ms,
			    struct px_creator *out)
{
	memset(out, 0, sizeof(*out));
	int r = -ENOENT;
	pthread_mutex_lock(&g_lock);
	for (size_t i = 0; i < PX_CREATOR_CAP; i++) {
		struct slot *s = &g_slots[i];
		if (!s->used || s->rec.inode != inode)
			continue;
		if (expired(s, now_ms) || (cookie && s->rec.cookie != cookie)) {
			slot_clear(s);
			break;
		}
		*out = s->rec;
		s->rec.buf = NULL;
		slot_clear(s);
		r = 0;
		break;
	}
	pthread_mutex_unlock(&g_lock);
	return r;
}

size_t px_creator_count(void)
{
	pthread_mutex_lock(&g_lock);
	size_t n = g_used;
	pthread_mutex_unlock(&g_lock);
	return n;
}

void px_creator_reset(void)
{
	pthread_mutex_lock(&g_lock);
	for (size_t i = 0; i < PX_CREATOR_CAP; i++) {
		if (g_slots[i].used)
			slot_clear(&g_slots[i]);
	}
	g_seq = 0;
	pthread_mutex_unlock(&g_lock);
}

void px_creator_set_monitored(bool on)
{
	__atomic_store_n(&g_monitored, on, __ATOMIC_RELEASE);
}

enum px_creator_state px_creator_take(unsigned long long inode, unsigned long long cookie,
				      uint64_t now_ms, struct px_creator *out)
{
	memset(out, 0, sizeof(*out));
	if (!__atomic_load_n(&g_monitored, __ATOMIC_ACQUIRE))
		return PX_CREATOR_UNAVAILABLE;
	return px_ident_creator_lookup(inode, cookie, now_ms, out) == 0 ? PX_CREATOR_FOUND
									  : PX_CREATOR_MISSING;
}

bool px_creator_allowed(enum px_creator_state st, const struct px_creator *c,
			const struct pol_policy *pol, const char *host, uint16_t port, char *reason,
			size_t size)
{
	if (st == PX_CREATOR_UNAVAILABLE) {
		sv_fmt(reason, size, "%s", PX_CREATOR_REASON_UNAVAILABLE);
		return false;
	}
	if (st != PX_CREATOR_FOUND || !c || !c->exe) {
		sv_fmt(reason, size, "%s", PX_CREATOR_REASON_NONE);
		return false;
	}
	if (c->too_long) {
		sv_fmt(reason, size,
		       "connection created by '%s', whose ancestry is too long to judge", c->exe);
		return false;
	}
	struct px_query q = {
	    .host = host,
	    .port = port,
	    .exe = c->exe,
	    .ancestors = c->ancestors,
	    .n_ancestors = c->n_ancestors,
	};
	struct px_decision d;
	px_policy_decide(pol, &q, &d);
	if (!d.allow)
		sv_fmt(reason, size, "connection created by '%s': %s", c->exe, d.reason);
	return d.allow;
}
