/* End-to-end tests of the gateway transport (session/gw_conn.c, gw_call.c, gw_tls.c) against a
 * real gRPC server: tests/unit/gw_grpc_server.py (Debian's python3-grpcio), h2c and mTLS with
 * certificates made by openssl at test time. Silent and refusing peers are plain sockets here.
 *
 * Each test drives its own sv_loop until a condition holds or a deadline passes.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "session/gateway/gw_conn.h"
#include "session/gateway/gw_int.h"
#include "supervisor/loop.h"
#include "tests/unit/loop_wait.h"
#include "supervisor/worker.h"

#define SERVER_PY "tests/unit/gw_grpc_server.py"

static char g_dir[64]; /* certificates */

/* ------------------------------------------------------------------ helpers */

struct server {
	pid_t pid;
	int stdin_fd;
	int port;
};

/* Start the Python server; it dies with us (PDEATHSIG) or when its stdin closes. */
static void server_start_mode(struct server *s, const char *tls_prefix, const char *mode)
{
	int in[2], out[2];
	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	char ca[128], cert[128], key[128];
	if (tls_prefix) {
		snprintf(ca, sizeof(ca), "%s/ca.pem", g_dir);
		snprintf(cert, sizeof(cert), "%s/%s.pem", g_dir, tls_prefix);
		snprintf(key, sizeof(key), "%s/%s.key", g_dir, tls_prefix);
	}
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		if (tls_prefix)
			execl("/usr/bin/python3", "python3", SERVER_PY, mode, ca, cert, key,
			      (char *)NULL);
		else
			execl("/usr/bin/python3", "python3", SERVER_PY, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	char buf[32] = {0};
	size_t got = 0;
	struct pollfd p = {.fd = out[0], .events = POLLIN};
	while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
		ck_assert_msg(poll(&p, 1, 20000) == 1, "the test gRPC server did not start");
		ssize_t n = read(out[0], buf + got, sizeof(buf) - 1 - got);
		ck_assert_msg(n > 0, "the test gRPC server exited");
		got += (size_t)n;
	}
	close(out[0]);
	s->pid = pid;
	s->stdin_fd = in[1];
	s->port = atoi(buf);
	ck_assert_int_gt(s->port, 0);
}

static void server_start(struct server *s, const char *tls_prefix)
{
	server_start_mode(s, tls_prefix, "--tls");
}

/* Kill first: a closed stdin alone makes the server stop gracefully (statuses of its own). */
static void server_stop(struct server *s)
{
	kill(s->pid, SIGKILL);
	close(s->stdin_fd);
	waitpid(s->pid, NULL, 0);
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

/* Connection events. */
struct conn_rec {
	int ready, closed, err;
	char why[512];
};

static void on_ready(struct gw_conn *c, void *data)
{
	(void)c;
	((struct conn_rec *)data)->ready++;
}

static void on_closed(struct gw_conn *c, int err, const char *why, void *data)
{
	(void)c;
	struct conn_rec *r = data;
	r->closed++;
	r->err = err;
	snprintf(r->why, sizeof(r->why), "%s", why);
}

/* Call events: messages are kept (concatenated with their lengths) for checks. */
struct call_rec {
	struct gw_call *call;
	int done, status;
	char msg[512];
	size_t n_msgs, bytes;
	uint8_t first[256];
	size_t first_len;
	bool pause_on_first, bad_content;
	int writable;
	uint64_t done_at;
};

static void rec_message(struct gw_call *call, const uint8_t *m, size_t len, void *data)
{
	struct call_rec *r = data;
	if (r->n_msgs == 0) {
		r->first_len = len < sizeof(r->first) ? len : sizeof(r->first);
		memcpy(r->first, m, r->first_len);
		if (r->pause_on_first)
			gw_call_pause(call, true);
	}
	for (size_t i = 0; i < len && r->pause_on_first; i++) /* Flood's pattern */
		r->bad_content |= m[i] != (uint8_t)(i % 251);
	r->n_msgs++;
	r->bytes += len;
}

static void rec_writable(struct gw_call *call, void *data)
{
	(void)call;
	((struct call_rec *)data)->writable++;
}

static void rec_status(struct gw_call *call, int status, const char *msg, void *data)
{
	(void)call;
	struct call_rec *r = data;
	r->done++;
	r->status = status;
	r->done_at = now_ms();
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
}

static const struct gw_call_cbs *rec_cbs(struct call_rec *r)
{
	static __thread struct gw_call_cbs cbs;
	cbs = (struct gw_call_cbs){.on_message = rec_message,
				   .on_writable = rec_writable,
				   .on_status = rec_status,
				   .data = r};
	return &cbs;
}

static bool rec_done(void *arg)
{
	return ((struct call_rec *)arg)->done > 0;
}

static bool conn_closed(void *arg)
{
	return ((struct conn_rec *)arg)->closed > 0;
}

static bool conn_ready(void *arg)
{
	return ((struct conn_rec *)arg)->ready > 0;
}

static struct gw_conn *conn_open(struct sv_loop *loop, const struct gw_conn_opts *o,
				 struct conn_rec *cr)
{
	struct gw_conn_cbs cbs = {.on_ready = on_ready, .on_closed = on_closed, .data = cr};
	struct gw_conn *c = NULL;
	struct sv_err err = {0};
	ck_assert_msg(gw_conn_new(loop, o, &cbs, &c, &err) == 0, "%s", err.msg);
	return c;
}

static struct gw_call *call_open(struct gw_conn *c, const char *path, const char *bearer,
				 uint32_t deadline, struct call_rec *r)
{
	struct gw_call *call = NULL;
	struct sv_err err = {0};
	ck_assert_msg(gw_call_start(c, path, bearer, deadline, rec_cbs(r), &call, &err) == 0, "%s",
		      err.msg);
	r->call = call;
	return call;
}

static void unary(struct gw_call *call, const char *req)
{
	ck_assert_int_eq(gw_call_send(call, (const uint8_t *)req, strlen(req)), 0);
	ck_assert_int_eq(gw_call_close_send(call), 0);
}

/* ------------------------------------------------------------------ TLS fixtures */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int r = system(cmd);
	ck_assert_msg(r == 0, "failed: %s", cmd);
}

/* CA + server (SAN gateway.test, localhost) + client, and a second CA signing "rogue". */
static void make_certs(void)
{
	snprintf(g_dir, sizeof(g_dir), "/tmp/gwconn.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
	const char *d = g_dir;
	const char *q = ">/dev/null 2>&1";
	sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
	   "-subj /CN=test-ca %s",
	   d, q);
	sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca2.key -out ca2.pem -days "
	   "2 "
	   "-subj /CN=other-ca %s",
	   d, q);
	sh("cd %s && printf 'subjectAltName=DNS:gateway.test,DNS:localhost\\n"
	   "extendedKeyUsage=serverAuth\\n' > server.ext && "
	   "printf 'extendedKeyUsage=clientAuth\\n' > client.ext",
	   d);
	static const struct {
		const char *name, *ca, *ext;
	} certs[] = {
	    {"server", "ca", "server.ext"},
	    {"client", "ca", "client.ext"},
	    {"rogue", "ca2", "server.ext"},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(certs); i++)
		sh("cd %s && openssl req -newkey rsa:2048 -nodes -keyout %s.key -out %s.csr "
		   "-subj /CN=%s %s && openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key "
		   "-CAcreateserial -days 2 -extfile %s -out %s.pem %s",
		   d, certs[i].name, certs[i].name, certs[i].name, q, certs[i].name, certs[i].ca,
		   certs[i].ca, certs[i].ext, certs[i].name, q);
}

static void remove_certs(void)
{
	if (g_dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", g_dir);
	}
}

static void tls_opts(struct gw_conn_opts *o, char *ca, char *cert, char *key)
{
	sprintf(ca, "%s/ca.pem", g_dir);
	sprintf(cert, "%s/client.pem", g_dir);
	sprintf(key, "%s/client.key", g_dir);
	o->ca_file = ca;
	o->cert_file = cert;
	o->key_file = key;
}

/* ------------------------------------------------------------------ option errors */

START_TEST(https_without_a_tls_file_names_the_variable)
{
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ca[128], cert[128], key[128];
	struct gw_conn_opts o = {.endpoint = "https://gateway.test:443"};
	tls_opts(&o, ca, cert, key);
	struct gw_conn_cbs cbs = {0};
	struct gw_conn *c = NULL;
	struct sv_err err = {0};
	static const struct {
		int which; /* 0 ca, 1 cert, 2 key */
		const char *value, *want;
	} cases[] = {
	    {0, NULL, "OPENSHELL_TLS_CA is not set"},
	    {1, "", "OPENSHELL_TLS_CERT is not set"},
	    {2, NULL, "OPENSHELL_TLS_KEY is not set"},
	    {0, "/nonexistent/ca.pem", "OPENSHELL_TLS_CA=/nonexistent/ca.pem: cannot read"},
	    {1, "/nonexistent/c.pem", "OPENSHELL_TLS_CERT=/nonexistent/c.pem: cannot read"},
	    {2, "/nonexistent/k.pem", "OPENSHELL_TLS_KEY=/nonexistent/k.pem: cannot read"},
	    {2, "/etc/hostname", "OPENSHELL_TLS_KEY=/etc/hostname: not a private key"},
	    {0, "/etc/hostname", "OPENSHELL_TLS_CA=/etc/hostname: not a certificate"},
	};
	for (size_t i = 0; i < SV_ARRAY_SIZE(cases); i++) {
		struct gw_conn_opts t = o;
		const char **f = cases[i].which == 0   ? &t.ca_file
				 : cases[i].which == 1 ? &t.cert_file
						       : &t.key_file;
		*f = cases[i].value;
		memset(&err, 0, sizeof(err));
		ck_assert_int_lt(gw_conn_new(&loop, &t, &cbs, &c, &err), 0);
		ck_assert_msg(strstr(err.msg, cases[i].want), "case %zu: %s", i, err.msg);
	}
	/* A key that does not match the certificate. */
	struct gw_conn_opts t = o;
	char other[128];
	sprintf(other, "%s/rogue.key", g_dir);
	t.key_file = other;
	ck_assert_int_lt(gw_conn_new(&loop, &t, &cbs, &c, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "does not match the certificate"));
	/* http:// needs none of them; a bad endpoint is refused before anything starts. */
	t = (struct gw_conn_opts){.endpoint = "http://127.0.0.1:1"};
	ck_assert_int_eq(gw_conn_new(&loop, &t, &cbs, &c, &err), 0);
	gw_conn_free(c);
	t.endpoint = "http://gateway.test:80"; /* a name needs a resolver */
	ck_assert_int_eq(gw_conn_new(&loop, &t, &cbs, &c, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "no resolver was given"));
	t.endpoint = "gateway:443";
	ck_assert_int_eq(gw_conn_new(&loop, &t, &cbs, &c, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "must start with http:// or https://"));
	sv_loop_close(&loop);
}
END_TEST

/* ------------------------------------------------------------------ h2c */

START_TEST(unary_round_trip_carries_bearer_and_grpc_timeout)
{
	struct server s;
	server_start(&s, NULL);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s.port);
	struct gw_conn_opts o = {.endpoint = ep};
	struct conn_rec cr = {0};
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	/* Started before the connection is up: queued until it is. */
	struct call_rec r1 = {0}, r2 = {0};
	unary(call_open(c, "/test.Echo/Unary", "tok-123", 5000, &r1), "hello");
	ck_assert(run_until(&loop, rec_done, &r1, 15000));
	ck_assert_int_eq(cr.ready, 1);
	ck_assert_msg(r1.status == 0, "%d %s", r1.status, r1.msg);
	ck_assert_uint_eq(r1.n_msgs, 1);
	const char *want = "auth=Bearer tok-123;timeout=yes;hello";
	ck_assert_uint_eq(r1.first_len, strlen(want));
	ck_assert_mem_eq(r1.first, want, strlen(want));
	/* No bearer, no deadline: neither header. An empty message is a message. */
	unary(call_open(c, "/test.Echo/Unary", NULL, 0, &r2), "");
	ck_assert(run_until(&loop, rec_done, &r2, 10000));
	ck_assert_int_eq(r2.status, 0);
	want = "auth=;timeout=no;";
	ck_assert_uint_eq(r2.first_len, strlen(want));
	ck_assert_mem_eq(r2.first, want, strlen(want));
	/* An unknown method: UNIMPLEMENTED from the server's trailers. */
	struct call_rec r3 = {0};
	unary(call_open(c, "/test.Echo/Nope", NULL, 0, &r3), "x");
	ck_assert(run_until(&loop, rec_done, &r3, 10000));
	ck_assert_int_eq(r3.status, GW_STATUS_UNIMPLEMENTED);
	ck_assert_int_eq(cr.closed, 0);
	gw_conn_free(c);
	sv_loop_close(&loop);
	server_stop(&s);
}
END_TEST

struct bidi {
	struct call_rec r;
	size_t sent, total;
	uint8_t buf[20000];
};

static size_t bidi_len(size_t i)
{
	return (i * 7919) % 20000;
}

/* Queue as much as the send bound allows; the rest goes from on_writable. */
static void bidi_pump(struct bidi *b)
{
	while (b->sent < b->total) {
		size_t len = bidi_len(b->sent);
		memset(b->buf, (int)(b->sent & 0xff), len);
		int r = gw_call_send(b->r.call, b->buf, len);
		if (r == -EAGAIN)
			return;
		ck_assert_int_eq(r, 0);
		b->sent++;
	}
	ck_assert_int_eq(gw_call_close_send(b->r.call), 0);
}

static void bidi_writable(struct gw_call *call, void *data)
{
	rec_writable(call, data);
	bidi_pump(data);
}

START_TEST(bidi_stream_echoes_many_messages_in_order_with_backpressure)
{
	struct server s;
	server_start(&s, NULL);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s.port);
	struct gw_conn_opts o = {.endpoint = ep};
	struct conn_rec cr = {0};
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	static struct bidi b;
	memset(&b, 0, sizeof(b));
	b.total = 2000;
	struct gw_call_cbs cbs = {.on_message = rec_message,
				  .on_writable = bidi_writable,
				  .on_status = rec_status,
				  .data = &b};
	struct sv_err err = {0};
	ck_assert_int_eq(gw_call_start(c, "/test.Echo/Bidi", "t", 0, &cbs, &b.r.call, &err), 0);
	bidi_pump(&b);
	ck_assert_uint_ge(gw_call_queued(b.r.call), GW_SEND_QUEUE_MAX); /* the bound was hit */
	ck_assert(run_until(&loop, rec_done, &b.r, 60000));
	ck_assert_msg(b.r.status == 0, "%d %s", b.r.status, b.r.msg);
	size_t want_bytes = 0;
	for (size_t i = 0; i < b.total; i++)
		want_bytes += bidi_len(i);
	ck_assert_uint_eq(b.r.n_msgs, b.total);
	ck_assert_uint_eq(b.r.bytes, want_bytes);
	ck_assert_int_gt(b.r.writable, 0);
	gw_conn_free(c);
	sv_loop_close(&loop);
	server_stop(&s);
}
END_TEST

START_TEST(trailers_only_status_and_percent_encoded_message_are_delivered)
{
	struct server s;
	server_start(&s, NULL);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s.port);
	struct gw_conn_opts o = {.endpoint = ep};
	struct conn_rec cr = {0};
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	struct call_rec r = {0}, big = {0};
	unary(call_open(c, "/test.Echo/Status", NULL, 0, &r), "x");
	unary(call_open(c, "/test.Echo/Big", NULL, 0, &big), "x");
	ck_assert(run_until(&loop, rec_done, &r, 15000));
	ck_assert_int_eq(r.status, GW_STATUS_NOT_FOUND);
	ck_assert_str_eq(r.msg, "no such thing: \xc3\xbc 100%");
	ck_assert_uint_eq(r.n_msgs, 0);
	/* 5 MiB > GW_MSG_MAX: refused while the connection lives on. */
	ck_assert(run_until(&loop, rec_done, &big, 15000));
	ck_assert_int_eq(big.status, GW_STATUS_RESOURCE_EXHAUSTED);
	ck_assert_msg(strstr(big.msg, "exceeds the limit of 4194304"), "%s", big.msg);
	struct call_rec after = {0};
	unary(call_open(c, "/test.Echo/Unary", NULL, 0, &after), "still here");
	ck_assert(run_until(&loop, rec_done, &after, 10000));
	ck_assert_int_eq(after.status, 0);
	ck_assert_int_eq(cr.closed, 0);
	gw_conn_free(c);
	sv_loop_close(&loop);
	server_stop(&s);
}
END_TEST

struct flood {
	struct call_rec a, b;
};

static bool b_done(void *arg)
{
	return ((struct flood *)arg)->b.done > 0;
}

START_TEST(a_paused_stream_holds_back_while_another_on_the_connection_flows)
{
	struct server s;
	server_start(&s, NULL);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s.port);
	struct gw_conn_opts o = {.endpoint = ep};
	struct conn_rec cr = {0};
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	struct flood f = {0};
	f.a.pause_on_first = true; /* a pauses itself on its first message */
	/* 64 x 64 KiB = 4 MiB each: 4x the stream window, 1/4 of the connection window. */
	unary(call_open(c, "/test.Echo/Flood", NULL, 0, &f.a), "64 65536");
	f.b.pause_on_first = false;
	unary(call_open(c, "/test.Echo/Flood", NULL, 0, &f.b), "64 65536");
	ck_assert(run_until(&loop, b_done, &f, 30000));
	ck_assert_msg(f.b.status == 0, "%d %s", f.b.status, f.b.msg);
	ck_assert_uint_eq(f.b.n_msgs, 64);
	/* Give a time to overrun its window if flow control were broken. */
	run_until(&loop, never, NULL, 300);
	ck_assert_uint_eq(f.a.n_msgs, 1);
	ck_assert_int_eq(f.a.done, 0);
	ck_assert_uint_le(f.a.call->in.len, GW_STREAM_WINDOW);
	ck_assert_uint_gt(f.a.call->in.len, GW_STREAM_WINDOW / 2); /* it was full, not idle */
	gw_call_pause(f.a.call, false);
	ck_assert(run_until(&loop, rec_done, &f.a, 30000));
	ck_assert_msg(f.a.status == 0, "%d %s", f.a.status, f.a.msg);
	ck_assert_uint_eq(f.a.n_msgs, 64);
	ck_assert_uint_eq(f.a.bytes, 64 * 65536);
	ck_assert(!f.a.bad_content);
	gw_conn_free(c);
	sv_loop_close(&loop);
	server_stop(&s);
}
END_TEST

/* More paused streams than the connection window could hold if it were returned only on
 * delivery (24 x 1 MiB > 16 MiB): a fresh stream still completes. */
#define MANY_PAUSED 24
START_TEST(many_paused_streams_never_stall_another_stream)
{
	struct server s;
	server_start(&s, NULL);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s.port);
	struct gw_conn_opts o = {.endpoint = ep};
	struct conn_rec cr = {0};
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	static struct call_rec paused[MANY_PAUSED];
	memset(paused, 0, sizeof(paused));
	for (int i = 0; i < MANY_PAUSED; i++) {
		paused[i].pause_on_first = true;
		/* 32 x 64 KiB = 2 MiB each: twice the stream window. */
		unary(call_open(c, "/test.Echo/Flood", NULL, 0, &paused[i]), "32 65536");
	}
	/* Let every paused stream fill its window before the last one starts. */
	run_until(&loop, never, NULL, 1500);
	struct call_rec b = {0};
	unary(call_open(c, "/test.Echo/Flood", NULL, 0, &b), "64 65536");
	ck_assert_msg(run_until(&loop, rec_done, &b, 30000),
		      "a stream stalled behind %d paused ones", MANY_PAUSED);
	ck_assert_msg(b.status == 0, "%d %s", b.status, b.msg);
	ck_assert_uint_eq(b.n_msgs, 64);
	size_t held = 0;
	for (int i = 0; i < MANY_PAUSED; i++) {
		ck_assert_uint_le(paused[i].call->in.len, GW_STREAM_WINDOW);
		held += paused[i].call->in.len;
	}
	ck_assert_uint_gt(held, (size_t)GW_CONN_WINDOW); /* they really filled it */
	gw_conn_free(c);
	sv_loop_close(&loop);
	server_stop(&s);
}
END_TEST

START_TEST(answered_pings_keep_an_idle_connection_alive)
{
	struct server s;
	server_start(&s, NULL);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s.port);
	struct gw_conn_opts o = {.endpoint = ep, .ping_interval_ms = 50, .ping_timeout_ms = 1000};
	struct conn_rec cr = {0};
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	ck_assert(run_until(&loop, conn_ready, &cr, 15000));
	run_until(&loop, never, NULL, 2000); /* dozens of pings, each answered in time */
	ck_assert_msg(cr.closed == 0, "%s", cr.why);
	ck_assert_uint_eq(c->events, EPOLLIN); /* idle: no EPOLLOUT, no busy loop */
	struct call_rec r = {0};
	unary(call_open(c, "/test.Echo/Unary", NULL, 0, &r), "x");
	ck_assert(run_until(&loop, rec_done, &r, 10000));
	ck_assert_int_eq(r.status, 0);
	gw_conn_free(c);
	sv_loop_close(&loop);
	server_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ failures */

/* A listening socket nobody accepts on: connects complete, nothing ever answers. */
static int silent_listener(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	socklen_t sl = sizeof(a);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

START_TEST(connection_refused_gives_unavailable_then_on_closed)
{
	int port;
	close(silent_listener(&port)); /* nothing listens there now */
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", port);
	struct gw_conn_opts o = {.endpoint = ep};
	struct conn_rec cr = {0};
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	struct call_rec r = {0};
	unary(call_open(c, "/test.Echo/Unary", NULL, 0, &r), "x");
	ck_assert(run_until(&loop, conn_closed, &cr, 10000));
	ck_assert_int_eq(cr.ready, 0);
	ck_assert_int_eq(cr.err, -ECONNREFUSED);
	ck_assert_msg(strstr(cr.why, "cannot connect to gateway 127.0.0.1:"), "%s", cr.why);
	ck_assert_int_eq(r.done, 1);
	ck_assert_int_eq(r.status, GW_STATUS_UNAVAILABLE);
	ck_assert_str_eq(r.msg, cr.why);
	struct gw_call *late;
	struct sv_err err = {0};
	ck_assert_int_eq(gw_call_start(c, "/x/y", NULL, 0, rec_cbs(&r), &late, &err), -ENOTCONN);
	gw_conn_free(c);
	sv_loop_close(&loop);
}
END_TEST

START_TEST(a_silent_peer_is_declared_dead_by_the_ping_timeout)
{
	int port;
	int lfd = silent_listener(&port);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", port);
	struct gw_conn_opts o = {.endpoint = ep, .ping_interval_ms = 100, .ping_timeout_ms = 300};
	struct conn_rec cr = {0};
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	struct call_rec r = {0};
	call_open(c, "/test.Echo/Bidi", NULL, 0, &r);
	uint64_t t0 = now_ms();
	ck_assert(run_until(&loop, conn_closed, &cr, 5000));
	uint64_t took = now_ms() - t0;
	ck_assert_int_eq(cr.ready, 1);
	ck_assert_int_eq(cr.err, -ETIMEDOUT);
	ck_assert_msg(strstr(cr.why, "did not answer an HTTP/2 PING within 300 ms"), "%s", cr.why);
	ck_assert_uint_ge(took, 400); /* first ping at 100 ms, dead 300 ms later */
	ck_assert_int_eq(r.status, GW_STATUS_UNAVAILABLE);
	gw_conn_free(c);
	sv_loop_close(&loop);
	close(lfd);
}
END_TEST

START_TEST(deadlines_are_enforced_locally_and_connect_times_out)
{
	int port;
	int lfd = silent_listener(&port);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[64];
	snprintf(ep, sizeof(ep), "https://127.0.0.1:%d", port); /* TLS: the handshake never ends */
	char ca[128], cert[128], key[128];
	struct gw_conn_opts o = {.endpoint = ep, .connect_timeout_ms = 1500};
	tls_opts(&o, ca, cert, key);
	struct conn_rec cr = {0};
	uint64_t t0 = now_ms(); /* the connect timeout runs from gw_conn_new */
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	struct call_rec r = {0}, nod = {0};
	unary(call_open(c, "/test.Echo/Unary", NULL, 200, &r), "x");
	unary(call_open(c, "/test.Echo/Unary", NULL, 0, &nod), "x");
	ck_assert(run_until(&loop, rec_done, &r, 5000));
	ck_assert_int_eq(r.status, GW_STATUS_DEADLINE_EXCEEDED);
	ck_assert_str_eq(r.msg, "deadline of 200 ms exceeded");
	ck_assert_uint_ge(r.done_at - t0, 200);
	ck_assert_int_eq(nod.done, 0); /* the other call waits for the connection */
	ck_assert_int_eq(cr.closed, 0);
	ck_assert(run_until(&loop, conn_closed, &cr, 5000));
	ck_assert_int_eq(cr.err, -ETIMEDOUT);
	ck_assert_msg(strstr(cr.why, "timed out after 1500 ms"), "%s", cr.why);
	ck_assert_int_eq(nod.status, GW_STATUS_UNAVAILABLE);
	ck_assert_uint_ge(nod.done_at - t0, 1500);
	ck_assert_int_eq(r.done, 1); /* one final status only */
	gw_conn_free(c);
	sv_loop_close(&loop);
	close(lfd);
}
END_TEST

static bool got_a_message(void *arg)
{
	return ((struct call_rec *)arg)->n_msgs > 0;
}

START_TEST(cancel_resets_the_stream_at_the_gateway_and_a_dead_gateway_ends_calls)
{
	struct server s;
	server_start(&s, NULL);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s.port);
	struct gw_conn_opts o = {.endpoint = ep};
	struct conn_rec cr = {0};
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	struct call_rec w = {0};
	unary(call_open(c, "/test.Echo/Watch", NULL, 0, &w), "");
	ck_assert(run_until(&loop, got_a_message, &w, 15000));
	gw_call_cancel(w.call);
	/* The server's handler sees the RST_STREAM: its Watch ends. */
	bool ended = false;
	for (int i = 0; i < 50 && !ended; i++) {
		struct call_rec q = {0};
		unary(call_open(c, "/test.Echo/Ended", NULL, 0, &q), "");
		ck_assert(run_until(&loop, rec_done, &q, 10000));
		ck_assert_int_eq(q.status, 0);
		ended = q.first_len == 1 && q.first[0] == '1';
		if (!ended)
			run_until(&loop, never, NULL, 50);
	}
	ck_assert_msg(ended, "the gateway never saw the cancel");
	ck_assert_int_eq(w.done, 0); /* no status after a cancel */
	/* A gateway that dies mid-call: UNAVAILABLE, then on_closed. */
	struct call_rec w2 = {0};
	unary(call_open(c, "/test.Echo/Watch", NULL, 0, &w2), "");
	ck_assert(run_until(&loop, got_a_message, &w2, 15000));
	server_stop(&s);
	ck_assert(run_until(&loop, conn_closed, &cr, 10000));
	ck_assert_int_eq(w2.status, GW_STATUS_UNAVAILABLE);
	ck_assert_int_eq(cr.err, -ECONNRESET);
	ck_assert_msg(strstr(cr.why, "closed the connection"), "%s", cr.why);
	ck_assert_str_eq(w2.msg, cr.why);
	gw_conn_free(c);
	sv_loop_close(&loop);
}
END_TEST

static struct gw_conn *g_free_me;

static void free_on_message(struct gw_call *call, const uint8_t *m, size_t len, void *data)
{
	rec_message(call, m, len, data);
	gw_conn_free(g_free_me);
}

START_TEST(freeing_the_connection_from_a_callback_is_safe_and_silent)
{
	struct server s;
	server_start(&s, NULL);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", s.port);
	struct gw_conn_opts o = {.endpoint = ep};
	struct conn_rec cr = {0};
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	g_free_me = c;
	struct call_rec a = {0}, b = {0};
	struct gw_call_cbs cbs = {
	    .on_message = free_on_message, .on_status = rec_status, .data = &a};
	struct gw_call *call;
	struct sv_err err = {0};
	ck_assert_int_eq(gw_call_start(c, "/test.Echo/Flood", NULL, 0, &cbs, &call, &err), 0);
	unary(call, "10 1000");
	unary(call_open(c, "/test.Echo/Flood", NULL, 0, &b), "10 1000");
	gw_call_cancel(b.call); /* no status for a cancelled call */
	run_until(&loop, never, NULL, 1500);
	ck_assert_uint_eq(a.n_msgs, 1); /* nothing after the free */
	ck_assert_int_eq(a.done, 0);
	ck_assert_int_eq(b.done, 0);
	ck_assert_int_eq(cr.closed, 0);
	sv_loop_close(&loop);
	server_stop(&s);
}
END_TEST

/* ------------------------------------------------------------------ TLS */

static void tls_call(const char *tls_prefix, const char *host, const char *server_name,
		     bool with_workers, struct conn_rec *cr, struct call_rec *r)
{
	struct server s;
	server_start(&s, tls_prefix);
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	struct sv_workers *w = NULL;
	if (with_workers)
		ck_assert_int_eq(sv_workers_new(&loop, 1, &w, NULL), 0);
	char ep[96], ca[128], cert[128], key[128];
	snprintf(ep, sizeof(ep), "https://%s:%d", host, s.port);
	struct gw_conn_opts o = {.endpoint = ep, .server_name = server_name, .workers = w};
	tls_opts(&o, ca, cert, key);
	struct gw_conn *c = conn_open(&loop, &o, cr);
	unary(call_open(c, "/test.Echo/Unary", "jwt", 0, r), "over tls");
	ck_assert(run_until(&loop, rec_done, r, 20000));
	if (r->status != GW_STATUS_UNAVAILABLE)
		ck_assert_int_eq(cr->closed, 0);
	gw_conn_free(c);
	sv_workers_free(w);
	sv_loop_close(&loop);
	server_stop(&s);
}

START_TEST(mtls_with_the_server_name_override_works)
{
	struct conn_rec cr = {0};
	struct call_rec r = {0};
	tls_call("server", "127.0.0.1", "gateway.test", false, &cr, &r);
	ck_assert_msg(r.status == 0, "%d %s", r.status, r.msg);
	const char *want = "auth=Bearer jwt;timeout=no;over tls";
	ck_assert_uint_eq(r.first_len, strlen(want));
	ck_assert_mem_eq(r.first, want, strlen(want));
}
END_TEST

START_TEST(a_host_name_resolves_on_a_worker_and_is_verified)
{
	struct conn_rec cr = {0};
	struct call_rec r = {0};
	tls_call("server", "localhost", NULL, true, &cr, &r);
	ck_assert_msg(r.status == 0, "%d %s", r.status, r.msg);
}
END_TEST

START_TEST(a_name_the_certificate_does_not_carry_is_refused)
{
	struct conn_rec cr = {0};
	struct call_rec r = {0};
	tls_call("server", "127.0.0.1", "other.test", false, &cr, &r);
	ck_assert_int_eq(r.status, GW_STATUS_UNAVAILABLE);
	ck_assert_int_eq(cr.err, -EPERM);
	ck_assert_msg(strstr(cr.why, "certificate does not verify"), "%s", cr.why);
}
END_TEST

START_TEST(a_server_certificate_from_another_ca_is_refused)
{
	struct conn_rec cr = {0};
	struct call_rec r = {0};
	tls_call("rogue", "127.0.0.1", "gateway.test", false, &cr, &r);
	ck_assert_int_eq(r.status, GW_STATUS_UNAVAILABLE);
	ck_assert_int_eq(cr.err, -EPERM);
	ck_assert_msg(strstr(cr.why, "certificate does not verify"), "%s", cr.why);
	ck_assert_int_eq(cr.ready, 0);
}
END_TEST

START_TEST(a_tls_server_without_alpn_h2_is_refused)
{
	struct server s;
	server_start_mode(&s, "server", "--tls-no-alpn");
	struct sv_loop loop;
	ck_assert_int_eq(sv_loop_init(&loop, NULL), 0);
	char ep[96], ca[128], cert[128], key[128];
	snprintf(ep, sizeof(ep), "https://127.0.0.1:%d", s.port);
	struct gw_conn_opts o = {.endpoint = ep, .server_name = "gateway.test"};
	tls_opts(&o, ca, cert, key);
	struct conn_rec cr = {0};
	struct gw_conn *c = conn_open(&loop, &o, &cr);
	struct call_rec r = {0};
	unary(call_open(c, "/test.Echo/Unary", NULL, 0, &r), "x");
	ck_assert(run_until(&loop, conn_closed, &cr, 20000));
	ck_assert_int_eq(cr.ready, 0);
	ck_assert_int_eq(cr.err, -EPROTO);
	ck_assert_msg(strstr(cr.why, "did not negotiate HTTP/2 (ALPN h2)"), "%s", cr.why);
	ck_assert_int_eq(r.status, GW_STATUS_UNAVAILABLE);
	gw_conn_free(c);
	sv_loop_close(&loop);
	server_stop(&s);
}
END_TEST

static Suite *gw_conn_suite(void)
{
	Suite *s = suite_create("gw_conn");
	TCase *tc = tcase_create("conn");
	tcase_add_unchecked_fixture(tc, make_certs, remove_certs);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, https_without_a_tls_file_names_the_variable);
	tcase_add_test(tc, unary_round_trip_carries_bearer_and_grpc_timeout);
	tcase_add_test(tc, bidi_stream_echoes_many_messages_in_order_with_backpressure);
	tcase_add_test(tc, trailers_only_status_and_percent_encoded_message_are_delivered);
	tcase_add_test(tc, a_paused_stream_holds_back_while_another_on_the_connection_flows);
	tcase_add_test(tc, many_paused_streams_never_stall_another_stream);
	tcase_add_test(tc, answered_pings_keep_an_idle_connection_alive);
	tcase_add_test(tc, connection_refused_gives_unavailable_then_on_closed);
	tcase_add_test(tc, a_silent_peer_is_declared_dead_by_the_ping_timeout);
	tcase_add_test(tc, deadlines_are_enforced_locally_and_connect_times_out);
	tcase_add_test(tc, cancel_resets_the_stream_at_the_gateway_and_a_dead_gateway_ends_calls);
	tcase_add_test(tc, freeing_the_connection_from_a_callback_is_safe_and_silent);
	tcase_add_test(tc, mtls_with_the_server_name_override_works);
	tcase_add_test(tc, a_host_name_resolves_on_a_worker_and_is_verified);
	tcase_add_test(tc, a_name_the_certificate_does_not_carry_is_refused);
	tcase_add_test(tc, a_server_certificate_from_another_ca_is_refused);
	tcase_add_test(tc, a_tls_server_without_alpn_h2_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	SRunner *sr = srunner_create(gw_conn_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
