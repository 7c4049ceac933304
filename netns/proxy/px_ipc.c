/* Encoding and strict decoding of the PID 1 ↔ proxy process messages (see px_ipc.h).
 *
 * A text on the wire is a u16 length, its bytes and a NUL (0xffff: absent), so a decoder can
 * hand out pointers into the datagram after checking that the NUL is where the length says and
 * nowhere else. Nothing here trusts a length before comparing it with what is left.
 */
#include "netns/proxy/px_ipc.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#define TXT_NULL 0xffffu

/* ------------------------------------------------------------------------------- writing */

struct w {
	uint8_t *buf;
	size_t size, len;
	bool full;
};

static void w_put(struct w *w, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (w->full || w->size - w->len < n) {
		w->full = true;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void w_u8(struct w *w, unsigned v)
{
	uint8_t b = (uint8_t)v;
	w_put(w, &b, 1);
}

static void w_u16(struct w *w, unsigned v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	w_put(w, b, 2);
}

static void w_u32(struct w *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	w_put(w, b, 4);
}

static void w_u64(struct w *w, uint64_t v)
{
	w_u32(w, (uint32_t)v);
	w_u32(w, (uint32_t)(v >> 32));
}

/* At most @max bytes of @s (NULL: absent). */
static void w_txt(struct w *w, const char *s, size_t max)
{
	if (!s) {
		w_u16(w, TXT_NULL);
		return;
	}
	size_t n = strnlen(s, max);
	w_u16(w, (unsigned)n);
	w_put(w, s, n);
	w_u8(w, 0);
}

static void w_begin(struct w *w, uint8_t *buf, size_t size, enum px_msg_type type)
{
	*w = (struct w){.buf = buf, .size = size};
	w_u16(w, type);
	w_u16(w, 0);
	w_u32(w, 0); /* patched by w_end */
}

static int w_end(struct w *w)
{
	if (w->full || w->len > PX_MSG_MAX)
		return -E2BIG;
	uint32_t n = (uint32_t)(w->len - PX_MSG_HDR);
	uint8_t b[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
	memcpy(w->buf + 4, b, 4);
	return (int)w->len;
}

int px_msg_start_encode(uint8_t *buf, size_t size, const struct px_msg_start *m)
{
	struct w w;
	w_begin(&w, buf, size, PX_MSG_START);
	w_u8(&w, m->log_level);
	w_u8(&w, m->log_format);
	w_u8(&w, m->fwd_level);
	w_u8(&w, m->relaxed);
	w_u32(&w, m->uid);
	w_u32(&w, m->gid);
	w_u32(&w, m->upstream ? 1 : 0); /* flags */
	w_u64(&w, m->policy_len);
	if (m->ca_cert_len > PX_CA_DER_MAX || m->ca_key_len > PX_CA_DER_MAX)
		return -E2BIG;
	w_u16(&w, (unsigned)m->ca_cert_len);
	w_put(&w, m->ca_cert, m->ca_cert_len);
	w_u16(&w, (unsigned)m->ca_key_len);
	w_put(&w, m->ca_key, m->ca_key_len);
	return w_end(&w);
}

int px_msg_policy_encode(uint8_t *buf, size_t size, uint64_t len)
{
	struct w w;
	w_begin(&w, buf, size, PX_MSG_POLICY);
	w_u64(&w, len);
	return w_end(&w);
}

int px_msg_creds_encode(uint8_t *buf, size_t size, uint64_t len)
{
	struct w w;
	w_begin(&w, buf, size, PX_MSG_CREDS);
	w_u64(&w, len);
	return w_end(&w);
}

int px_msg_ready_encode(uint8_t *buf, size_t size)
{
	struct w w;
	w_begin(&w, buf, size, PX_MSG_READY);
	return w_end(&w);
}

int px_msg_log_encode(uint8_t *buf, size_t size, const struct sv_log_fwd *rec, uint32_t dropped)
{
	if (size > PX_LOG_WIRE_MAX)
		size = PX_LOG_WIRE_MAX;
	size_t nkv = rec->nkv > PX_LOG_KV_MAX ? PX_LOG_KV_MAX : rec->nkv;
	struct w w;
	w_begin(&w, buf, size, PX_MSG_LOG);
	w_u8(&w, rec->level);
	w_u8(&w, rec->ocsf);
	w_u8(&w, rec->ocsf ? rec->sev : 0);
	w_u8(&w, (unsigned)nkv);
	w_u32(&w, dropped);
	w_txt(&w, rec->ocsf ? NULL : rec->component, PX_LOG_NAME_MAX);
	w_txt(&w, rec->event, PX_LOG_NAME_MAX);
	w_txt(&w, rec->ocsf ? rec->class_activity : NULL, PX_LOG_NAME_MAX);
	w_txt(&w, rec->ocsf ? rec->action : NULL, PX_LOG_NAME_MAX);
	/* Keys first (short), then the message and values share what is left fairly. */
	size_t fixed = w.len + 3 + (3 + PX_LOG_NAME_MAX + 3) * nkv;
	size_t room = size > fixed ? size - fixed : 0;
	size_t each = room / (nkv + 1);
	if (each > PX_LOG_TEXT_MAX)
		each = PX_LOG_TEXT_MAX;
	w_txt(&w, rec->msg ? rec->msg : "", each);
	for (size_t i = 0; i < nkv; i++) {
		w_txt(&w, rec->kv[i].key, PX_LOG_NAME_MAX);
		w_txt(&w, rec->kv[i].val, each);
	}
	return w_end(&w);
}

static void w_addr(struct w *w, const struct sockaddr_storage *ss, uint16_t *port)
{
	uint8_t a[16] = {0};
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		memcpy(a, &in->sin_addr, 4);
		*port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		memcpy(a, &in6->sin6_addr, 16);
		*port = ntohs(in6->sin6_port);
	}
	w_put(w, a, 16);
}

int px_msg_denial_encode(uint8_t *buf, size_t size, const struct px_denial *d, uint32_t dropped)
{
	if (size > PX_MSG_MAX)
		size = PX_MSG_MAX;
	size_t n = d->n_ancestors > PX_DENIAL_ANCESTORS_MAX ? PX_DENIAL_ANCESTORS_MAX
							    : d->n_ancestors;
	struct w w;
	w_begin(&w, buf, size, PX_MSG_DENIAL);
	w_u32(&w, dropped);
	w_u16(&w, d->port);
	size_t count_at = w.len;
	w_u8(&w, (unsigned)n);
	w_txt(&w, d->host ? d->host : "", PX_DENIAL_TEXT_MAX);
	w_txt(&w, d->binary ? d->binary : "", PX_IDENT_PATH_MAX - 1);
	w_txt(&w, d->reason ? d->reason : "", PX_DENIAL_TEXT_MAX);
	w_txt(&w, d->stage ? d->stage : "connect", PX_LOG_NAME_MAX);
	w_txt(&w, d->l7_method, PX_LOG_NAME_MAX);
	w_txt(&w, d->l7_path, PX_DENIAL_TEXT_MAX);
	if (w.full)
		return -E2BIG;
	size_t i = 0;
	for (; i < n; i++) { /* the ancestors that fit */
		size_t before = w.len;
		w_txt(&w, d->ancestors[i] ? d->ancestors[i] : "", PX_IDENT_PATH_MAX - 1);
		if (w.full) {
			w.full = false;
			w.len = before;
			break;
		}
	}
	buf[count_at] = (uint8_t)i;
	return w_end(&w);
}

int px_msg_ident_req_encode(uint8_t *buf, size_t size, const struct px_msg_ident_req *m)
{
	if ((m->peer.ss_family != AF_INET && m->peer.ss_family != AF_INET6) ||
	    m->local.ss_family != m->peer.ss_family)
		return -EAFNOSUPPORT;
	uint8_t addrs[32] = {0};
	uint16_t pport = 0, lport = 0;
	struct w a = {.buf = addrs, .size = sizeof(addrs)};
	w_addr(&a, &m->peer, &pport);
	w_addr(&a, &m->local, &lport);
	struct w w;
	w_begin(&w, buf, size, PX_MSG_IDENT_REQ);
	w_u32(&w, m->seq);
	w_u16(&w, m->peer.ss_family);
	w_u16(&w, pport);
	w_u16(&w, lport);
	w_u16(&w, 0);
	w_put(&w, addrs, sizeof(addrs));
	return w_end(&w);
}

/* Up to @n texts of @v, while @w stays within @limit bytes: how many went in. */
static size_t w_txts(struct w *w, const char *const *v, size_t n, size_t limit)
{
	size_t i = 0;
	for (; i < n; i++) {
		size_t before = w->len;
		w_txt(w, v[i], PX_IDENT_PATH_MAX);
		if (w->full || w->len > limit) {
			w->full = false;
			w->len = before;
			break;
		}
	}
	return i;
}

static void put_u16_at(uint8_t *buf, size_t at, size_t v)
{
	buf[at] = (uint8_t)v;
	buf[at + 1] = (uint8_t)(v >> 8);
}

int px_msg_ident_resp_encode(uint8_t *buf, size_t size, uint32_t seq, enum px_ident_status st,
			     const char *reason, const struct px_ident *id,
			     enum px_creator_state cst, const struct px_creator *cr)
{
	if (size > PX_MSG_MAX)
		size = PX_MSG_MAX;
	bool has_id = st != PX_IDENT_DENY_NONE && id;
	if (!has_id || (cst == PX_CREATOR_FOUND && (!cr || !cr->exe)) || cst > PX_CREATOR_FOUND)
		cst = PX_CREATOR_MISSING;
	bool has_cr = cst == PX_CREATOR_FOUND;
	struct w w;
	w_begin(&w, buf, size, PX_MSG_IDENT_RESP);
	w_u32(&w, seq);
	w_u8(&w, st);
	size_t flag_at = w.len;
	w_u8(&w, 0);
	size_t count_at = w.len;
	w_u16(&w, 0);
	w_u32(&w, has_id ? (uint32_t)id->exe.pid : 0);
	w_u8(&w, cst);
	size_t cflag_at = w.len;
	w_u8(&w, has_cr && cr->too_long ? 1 : 0);
	size_t ccount_at = w.len;
	w_u16(&w, 0);
	w_u32(&w, has_cr ? (uint32_t)cr->pid : 0);
	w_txt(&w, reason ? reason : "", PX_IDENT_REASON_MAX);
	w_txt(&w, has_id ? id->exe.path : "", PX_IDENT_PATH_MAX);
	w_txt(&w, has_cr ? cr->exe : "", PX_IDENT_PATH_MAX);
	if (w.full)
		return -E2BIG;
	const char *anc[PX_IDENT_ANCESTORS_MAX];
	size_t total = has_id ? id->n_ancestors : 0;
	if (total > PX_IDENT_ANCESTORS_MAX)
		total = PX_IDENT_ANCESTORS_MAX;
	for (size_t i = 0; i < total; i++)
		anc[i] = id->ancestors[i].path;
	size_t ctotal = has_cr ? cr->n_ancestors : 0;
	if (ctotal > PX_IDENT_ANCESTORS_MAX)
		ctotal = PX_IDENT_ANCESTORS_MAX;
	size_t n = w_txts(&w, anc, total, has_cr ? w.len + (w.size - w.len) / 2 : w.size);
	size_t cn = w_txts(&w, has_cr ? cr->ancestors : anc, ctotal, w.size);
	buf[flag_at] = n < total;
	put_u16_at(buf, count_at, n);
	buf[cflag_at] |= (uint8_t)(cn < ctotal ? 2 : 0);
	put_u16_at(buf, ccount_at, cn);
	return w_end(&w);
}

/* ------------------------------------------------------------------------------- reading */

struct r {
	const uint8_t *buf;
	size_t len, off;
	const char *what; /* the message's name, for errors */
	struct sv_err *err;
	bool bad;
};

static bool r_fail(struct r *r, const char *fault)
{
	if (!r->bad)
		sv_err_set(r->err, EPROTO, "%s: %s (at byte %zu)", r->what, fault, r->off);
	r->bad = true;
	return false;
}

static bool r_take(struct r *r, void *dst, size_t n)
{
	if (r->bad)
		return false;
	if (r->len - r->off < n)
		return r_fail(r, "message too short");
	memcpy(dst, r->buf + r->off, n);
	r->off += n;
	return true;
}

static unsigned r_u8(struct r *r)
{
	uint8_t b = 0;
	r_take(r, &b, 1);
	return b;
}

static unsigned r_u16(struct r *r)
{
	uint8_t b[2] = {0};
	r_take(r, b, 2);
	return (unsigned)b[0] | (unsigned)b[1] << 8;
}

static uint32_t r_u32(struct r *r)
{
	uint8_t b[4] = {0};
	r_take(r, b, 4);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t r_u64(struct r *r)
{
	uint64_t lo = r_u32(r);
	return lo | (uint64_t)r_u32(r) << 32;
}

/* A text of at most @max bytes without NUL, pointing into the datagram; NULL when absent
 * (only if @may_be_absent). */
static const char *r_txt(struct r *r, size_t max, bool may_be_absent, const char *field)
{
	unsigned n = r_u16(r);
	if (r->bad)
		return NULL;
	if (n == TXT_NULL) {
		if (!may_be_absent)
			r_fail(r, field);
		return NULL;
	}
	if (n > max || r->len - r->off < (size_t)n + 1) {
		r_fail(r, field);
		return NULL;
	}
	const char *s = (const char *)r->buf + r->off;
	if (memchr(s, '\0', n) || s[n] != '\0') {
		r_fail(r, field);
		return NULL;
	}
	r->off += (size_t)n + 1;
	return s;
}

static bool name_ok(const char *s, bool upper)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > PX_LOG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= '0' && c <= '9') || c == '_' || c == ':' ||
			  (upper ? (c >= 'A' && c <= 'Z') : ((c >= 'a' && c <= 'z') || c == '.' || c == '-'));
		if (!ok)
			return false;
	}
	return true;
}

static bool r_begin(struct r *r, const uint8_t *buf, size_t len, enum px_msg_type type,
		    const char *what, struct sv_err *err)
{
	*r = (struct r){.buf = buf, .len = len, .what = what, .err = err};
	if (px_msg_type(buf, len) != (int)type)
		return r_fail(r, "not this message type or bad header");
	r->off = PX_MSG_HDR;
	return true;
}

static int r_end(struct r *r)
{
	if (!r->bad && r->off != r->len)
		r_fail(r, "trailing bytes");
	return r->bad ? -EPROTO : 0;
}

int px_msg_type(const uint8_t *buf, size_t len)
{
	if (len < PX_MSG_HDR || len > PX_MSG_MAX)
		return -EPROTO;
	unsigned type = (unsigned)buf[0] | (unsigned)buf[1] << 8;
	unsigned flags = (unsigned)buf[2] | (unsigned)buf[3] << 8;
	uint32_t n = (uint32_t)buf[4] | (uint32_t)buf[5] << 8 | (uint32_t)buf[6] << 16 |
		     (uint32_t)buf[7] << 24;
	if (flags != 0 || n != len - PX_MSG_HDR || type < PX_MSG_START || type > PX_MSG_LAST)
		return -EPROTO;
	return (int)type;
}

int px_msg_start_decode(const uint8_t *buf, size_t len, struct px_msg_start *m,
			struct sv_err *err)
{
	struct r r;
	if (!r_begin(&r, buf, len, PX_MSG_START, "START", err))
		return -EPROTO;
	unsigned lvl = r_u8(&r), fmt = r_u8(&r), fwd = r_u8(&r), relaxed = r_u8(&r);
	m->uid = r_u32(&r);
	m->gid = r_u32(&r);
	uint32_t pad = r_u32(&r);
	m->policy_len = r_u64(&r);
	m->ca_cert_len = r_u16(&r);
	m->ca_cert = r.bad || r.len - r.off < m->ca_cert_len ? NULL : buf + r.off;
	if (m->ca_cert)
		r.off += m->ca_cert_len;
	else
		r_fail(&r, "CA certificate truncated");
	m->ca_key_len = r_u16(&r);
	m->ca_key = r.bad || r.len - r.off < m->ca_key_len ? NULL : buf + r.off;
	if (m->ca_key)
		r.off += m->ca_key_len;
	else
		r_fail(&r, "CA key truncated");
	if (!r.bad && (m->ca_cert_len > PX_CA_DER_MAX || m->ca_key_len > PX_CA_DER_MAX ||
		       (m->ca_cert_len == 0) != (m->ca_key_len == 0)))
		r_fail(&r, "CA certificate and key must come together");
	if (!r.bad && (lvl > SV_LOG_TRACE || fwd > SV_LOG_TRACE || fmt > SV_LOG_JSON ||
		       relaxed > 1 || pad > 1))
		r_fail(&r, "field out of range");
	if (!r.bad && (m->uid == 0 || m->gid == 0 || m->uid == (uint32_t)-1 ||
		       m->gid == (uint32_t)-1))
		r_fail(&r, "proxy identity must not be root");
	m->log_level = (enum sv_log_level)lvl;
	m->log_format = (enum sv_log_format)fmt;
	m->fwd_level = (enum sv_log_level)fwd;
	m->relaxed = relaxed;
	m->upstream = pad == 1;
	return r_end(&r);
}

int px_msg_policy_decode(const uint8_t *buf, size_t len, uint64_t *policy_len,
			 struct sv_err *err)
{
	struct r r;
	if (!r_begin(&r, buf, len, PX_MSG_POLICY, "POLICY", err))
		return -EPROTO;
	*policy_len = r_u64(&r);
	return r_end(&r);
}

int px_msg_creds_decode(const uint8_t *buf, size_t len, uint64_t *creds_len, struct sv_err *err)
{
	struct r r;
	if (!r_begin(&r, buf, len, PX_MSG_CREDS, "CREDS", err))
		return -EPROTO;
	*creds_len = r_u64(&r);
	return r_end(&r);
}

int px_msg_log_decode(const uint8_t *buf, size_t len, struct px_msg_log *m, struct sv_err *err)
{
	struct r r;
	memset(m, 0, sizeof(*m));
	if (!r_begin(&r, buf, len, PX_MSG_LOG, "LOG", err))
		return -EPROTO;
	unsigned level = r_u8(&r), ocsf = r_u8(&r), sev = r_u8(&r), nkv = r_u8(&r);
	m->dropped = r_u32(&r);
	if (!r.bad && (level > SV_LOG_TRACE || ocsf > 1 || sev > SV_SEV_FATAL ||
		       nkv > PX_LOG_KV_MAX))
		r_fail(&r, "field out of range");
	struct sv_log_fwd *f = &m->rec;
	f->ocsf = ocsf;
	f->level = (enum sv_log_level)level;
	f->sev = (enum sv_sev)sev;
	f->component = r_txt(&r, PX_LOG_NAME_MAX, ocsf, "component invalid");
	f->event = r_txt(&r, PX_LOG_NAME_MAX, false, "event invalid");
	f->class_activity = r_txt(&r, PX_LOG_NAME_MAX, !ocsf, "class invalid");
	f->action = r_txt(&r, PX_LOG_NAME_MAX, !ocsf, "action invalid");
	f->msg = r_txt(&r, PX_LOG_TEXT_MAX, false, "message invalid");
	for (size_t i = 0; i < nkv && !r.bad; i++) {
		m->kv[i].key = r_txt(&r, PX_LOG_NAME_MAX, false, "key invalid");
		m->kv[i].val = r_txt(&r, PX_LOG_TEXT_MAX, true, "value invalid");
		if (!r.bad && !name_ok(m->kv[i].key, false))
			r_fail(&r, "key name invalid");
	}
	f->kv = m->kv;
	f->nkv = nkv;
	if (!r.bad && ocsf) {
		if (f->component || f->class_activity == NULL || f->action == NULL ||
		    !name_ok(f->class_activity, true) || !name_ok(f->action, true))
			r_fail(&r, "OCSF class or action invalid");
		else if (f->level != (f->sev >= SV_SEV_MED ? SV_LOG_WARN : SV_LOG_INFO))
			r_fail(&r, "OCSF level does not match its severity");
		f->component = "ocsf";
	} else if (!r.bad) {
		if (f->class_activity || f->action || f->sev != SV_SEV_INFO ||
		    !name_ok(f->component, false))
			r_fail(&r, "component name invalid");
	}
	if (!r.bad && !name_ok(f->event, false))
		r_fail(&r, "event name invalid");
	return r_end(&r);
}

static void r_addr(struct r *r, int family, uint16_t port, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	uint8_t a[16] = {0};
	r_take(r, a, 16);
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, a, 4);
		*len = sizeof(*in);
		for (int i = 4; i < 16; i++) {
			if (a[i])
				r_fail(r, "IPv4 address with stray bytes");
		}
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(&in6->sin6_addr, a, 16);
		*len = sizeof(*in6);
	}
}

int px_msg_denial_decode(const uint8_t *buf, size_t len, struct px_denial *d, uint32_t *dropped,
			 struct sv_err *err)
{
	struct r r;
	memset(d, 0, sizeof(*d));
	if (!r_begin(&r, buf, len, PX_MSG_DENIAL, "DENIAL", err))
		return -EPROTO;
	*dropped = r_u32(&r);
	d->port = (uint16_t)r_u16(&r);
	unsigned n = r_u8(&r);
	if (!r.bad && (d->port == 0 || n > PX_DENIAL_ANCESTORS_MAX))
		r_fail(&r, "field out of range");
	d->host = r_txt(&r, PX_DENIAL_TEXT_MAX, false, "host invalid");
	d->binary = r_txt(&r, PX_IDENT_PATH_MAX - 1, false, "binary invalid");
	d->reason = r_txt(&r, PX_DENIAL_TEXT_MAX, false, "reason invalid");
	d->stage = r_txt(&r, PX_LOG_NAME_MAX, false, "stage invalid");
	if (!r.bad && !name_ok(d->stage, false))
		r_fail(&r, "stage invalid");
	d->l7_method = r_txt(&r, PX_LOG_NAME_MAX, true, "l7 method invalid");
	d->l7_path = r_txt(&r, PX_DENIAL_TEXT_MAX, true, "l7 path invalid");
	if (!r.bad && (!d->l7_method) != (!d->l7_path))
		r_fail(&r, "l7 method without path");
	for (unsigned i = 0; i < n && !r.bad; i++) {
		d->ancestors[i] = r_txt(&r, PX_IDENT_PATH_MAX - 1, false, "ancestor invalid");
		d->n_ancestors = i + 1;
	}
	if (!r.bad && !d->host[0])
		r_fail(&r, "host empty");
	return r_end(&r);
}

int px_msg_ident_req_decode(const uint8_t *buf, size_t len, struct px_msg_ident_req *m,
			    struct sv_err *err)
{
	struct r r;
	if (!r_begin(&r, buf, len, PX_MSG_IDENT_REQ, "IDENT_REQ", err))
		return -EPROTO;
	m->seq = r_u32(&r);
	unsigned family = r_u16(&r), pport = r_u16(&r), lport = r_u16(&r), pad = r_u16(&r);
	if (!r.bad && ((family != AF_INET && family != AF_INET6) || pad != 0))
		r_fail(&r, "address family invalid");
	if (r.bad)
		return -EPROTO;
	r_addr(&r, (int)family, (uint16_t)pport, &m->peer, &m->peer_len);
	r_addr(&r, (int)family, (uint16_t)lport, &m->local, &m->local_len);
	return r_end(&r);
}

int px_msg_ident_resp_decode(const uint8_t *buf, size_t len, struct px_msg_ident_resp *m,
			     struct sv_err *err)
{
	struct r r;
	if (!r_begin(&r, buf, len, PX_MSG_IDENT_RESP, "IDENT_RESP", err))
		return -EPROTO;
	m->seq = r_u32(&r);
	unsigned st = r_u8(&r), trunc = r_u8(&r), n = r_u16(&r);
	m->pid = (pid_t)r_u32(&r);
	unsigned cst = r_u8(&r), cflags = r_u8(&r), cn = r_u16(&r);
	m->creator_pid = (pid_t)r_u32(&r);
	if (!r.bad && (st > PX_IDENT_OK || trunc > 1 || n > PX_IDENT_ANCESTORS_MAX))
		r_fail(&r, "field out of range");
	if (!r.bad && (cst > PX_CREATOR_FOUND || cflags > 3 || cn > PX_IDENT_ANCESTORS_MAX))
		r_fail(&r, "creator field out of range");
	/* A creator only beside an identity; no creator: every creator field zero. */
	if (!r.bad && cst == PX_CREATOR_FOUND && st == PX_IDENT_DENY_NONE)
		r_fail(&r, "creator without an identity");
	if (!r.bad && cst != PX_CREATOR_FOUND && (cflags || cn || m->creator_pid))
		r_fail(&r, "creator fields without a creator");
	m->status = (enum px_ident_status)st;
	m->truncated = trunc;
	m->creator = (enum px_creator_state)cst;
	m->creator_too_long = cflags & 1;
	m->creator_truncated = (cflags & 2) != 0;
	m->reason = r_txt(&r, PX_IDENT_REASON_MAX, false, "reason invalid");
	m->exe = r_txt(&r, PX_IDENT_PATH_MAX - 1, false, "exe invalid");
	m->creator_exe = r_txt(&r, PX_IDENT_PATH_MAX - 1, false, "creator exe invalid");
	if (!r.bad && (cst == PX_CREATOR_FOUND) != (m->creator_exe[0] != '\0'))
		r_fail(&r, "creator exe must be given exactly with a creator");
	m->n_ancestors = 0;
	for (size_t i = 0; i < n && !r.bad; i++) {
		m->ancestors[i] = r_txt(&r, PX_IDENT_PATH_MAX - 1, false, "ancestor invalid");
		m->n_ancestors = i + 1;
	}
	m->n_creator_ancestors = 0;
	for (size_t i = 0; i < cn && !r.bad; i++) {
		m->creator_ancestors[i] =
		    r_txt(&r, PX_IDENT_PATH_MAX - 1, false, "creator ancestor invalid");
		m->n_creator_ancestors = i + 1;
	}
	return r_end(&r);
}

/* --------------------------------------------------------------------------------- sockets */

int px_ipc_send(int sock, const uint8_t *buf, size_t len, const int *fds, size_t nfds, int flags)
{
	if (nfds > PX_MSG_FDS_MAX)
		return -EINVAL;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	union {
		char b[CMSG_SPACE(sizeof(int) * PX_MSG_FDS_MAX)];
		struct cmsghdr align;
	} cb;
	memset(&cb, 0, sizeof(cb));
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds) {
		mh.msg_control = cb.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		return (size_t)n == len ? 0 : -EPROTO;
	}
}

ssize_t px_ipc_recv(int sock, uint8_t *buf, int *fds, size_t *nfds, int flags)
{
	struct iovec iov = {.iov_base = buf, .iov_len = PX_MSG_MAX};
	union {
		char b[CMSG_SPACE(sizeof(int) * PX_MSG_FDS_MAX)];
		struct cmsghdr align;
	} cb;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fds) {
		mh.msg_control = cb.b;
		mh.msg_controllen = sizeof(cb.b);
	}
	*nfds = 0;
	ssize_t n;
	do
		n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	bool bad = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
	for (struct cmsghdr *c = fds ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			bad = true;
			continue;
		}
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int got[PX_MSG_FDS_MAX * 2];
		if (k > SV_ARRAY_SIZE(got))
			k = SV_ARRAY_SIZE(got);
		memcpy(got, CMSG_DATA(c), k * sizeof(int));
		for (size_t i = 0; i < k; i++) {
			if (*nfds < PX_MSG_FDS_MAX)
				fds[(*nfds)++] = got[i];
			else {
				close(got[i]);
				bad = true;
			}
		}
	}
	if (bad) {
		for (size_t i = 0; i < *nfds; i++)
			close(fds[i]);
		*nfds = 0;
		return -EPROTO;
	}
	return n;
}
