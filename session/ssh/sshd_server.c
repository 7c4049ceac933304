/* The SSH server's socket and connections: libssh in non-blocking mode driven from the epoll
 * loop (contract §9).
 *
 * Each connection's socket is watched by the loop; readiness runs libssh's key exchange, then
 * ssh_event_dopoll(event, 0) on that connection only. Nothing here waits: a stalled client
 * stalls its own connection. Access control is the socket's mode (root only) plus the gateway's
 * authenticated relay, so auth "none" and "publickey" are accepted as OpenShell does.
 */
#include "sshd.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor/log.h"

#define SSHD_BACKLOG 64
#define SSHD_KEX                                                                         \
	"curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384," \
	"ecdh-sha2-nistp521,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,"       \
	"diffie-hellman-group14-sha256"

/* --- the socket ------------------------------------------------------------------------------ */

/* mkdir -p of @dir (absolute), each new level 0700. */
static int mkdir_parents(char *dir, struct sv_err *err)
{
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		int r = mkdir(dir, 0700);
		int e = errno;
		*p = c;
		if (r < 0 && e != EEXIST)
			return sv_err_set(err, e, "%s: cannot create directory: %s", dir,
					  strerror(e));
		if (c == '\0')
			return 0;
	}
}

static int prepare_path(const char *path, struct sv_err *err)
{
	if (path[0] != '/')
		return sv_err_set(err, EINVAL, "%s: '%s' is neither absolute nor @abstract",
				  SSHD_SOCKET_ENV, path);
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	sv_fmt(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (strcmp(dir, "/") != 0) {
		int r = mkdir_parents(dir, err);
		if (r < 0)
			return r;
		/* The parent is ours alone (contract §9: full mode 0700). */
		if (chmod(dir, 0700) < 0)
			return sv_err_set(err, errno, "%s: chmod 0700: %s", dir, strerror(errno));
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return sv_err_set(err, EEXIST, "%s: exists and is not a socket; not replacing it",
					  path);
		if (unlink(path) < 0)
			return sv_err_set(err, errno, "%s: cannot remove the stale socket: %s", path,
					  strerror(errno));
	} else if (errno != ENOENT) {
		return sv_err_set(err, errno, "%s: %s", path, strerror(errno));
	}
	return 0;
}

int sshd_listen(const char *path, struct sv_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;
	bool abstract = path[0] == '@';
	size_t plen = strlen(path);
	if (plen < 2 || plen >= sizeof(sa.sun_path))
		return sv_err_set(err, ENAMETOOLONG, "%s: '%s' must be 2 to %zu bytes long",
				  SSHD_SOCKET_ENV, path, sizeof(sa.sun_path) - 1);
	if (abstract) {
		memcpy(sa.sun_path + 1, path + 1, plen - 1); /* sun_path[0] stays '\0' */
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	} else {
		int r = prepare_path(path, err);
		if (r < 0)
			return r;
		memcpy(sa.sun_path, path, plen + 1);
		len = (socklen_t)sizeof(sa);
	}
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return sv_err_set(err, errno, "ssh socket: %s", strerror(errno));
	/* Created 0600 (the setup phase is single-threaded, so the umask is ours to borrow). */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, len);
	int e = errno;
	umask(old);
	if (r < 0)
		return sv_err_set(err, e, "%s: bind: %s", path, strerror(e));
	if (!abstract && chmod(path, 0600) < 0)
		return sv_err_set(err, errno, "%s: chmod 0600: %s", path, strerror(errno));
	if (listen(fd, SSHD_BACKLOG) < 0)
		return sv_err_set(err, errno, "%s: listen: %s", path, strerror(errno));
	return sv_steal_fd(&fd);
}

/* --- connections ----------------------------------------------------------------------------- */

static void conn_free(struct sshd_conn *c)
{
	struct sshd_server *s = c->srv;
	while (c->chans) {
		struct sshd_chan *ch = c->chans;
		c->chans = ch->next;
		sshd_chan_free(ch);
	}
	sv_timer_close(s->loop, &c->grace);
	sv_loop_del(s->loop, &c->w);
	if (c->event) {
		ssh_event_remove_session(c->event, c->session);
		ssh_event_free(c->event);
	}
	if (c->session) {
		ssh_disconnect(c->session); /* closes the socket */
		ssh_free(c->session);
	}
	for (struct sshd_conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	s->nconns--;
	sv_loop_defer_free(s->loop, c);
}

void sshd_conn_close(struct sshd_conn *c, const char *why)
{
	if (c->dead)
		return;
	c->dead = true;
	char id[16];
	sv_fmt(id, sizeof(id), "%u", c->id);
	sv_log_kv(SV_LOG_INFO, COMP_SSHD, "ssh_connection_closed", "ssh connection closed",
		  SV_KVS({"conn", id}, {"reason", why}));
	if (!c->in_dispatch)
		conn_free(c);
}

/* Watch the socket for output when libssh has some queued (a slow client). */
void sshd_conn_update(struct sshd_conn *c)
{
	if (c->dead)
		return;
	uint32_t ev = EPOLLIN;
	if (ssh_get_poll_flags(c->session) & SSH_WRITE_PENDING)
		ev |= EPOLLOUT;
	if (ev != c->events && sv_loop_mod(c->srv->loop, &c->w, ev) == 0)
		c->events = ev;
}

static void conn_sweep(struct sshd_conn *c)
{
	for (struct sshd_chan **pp = &c->chans; *pp;) {
		struct sshd_chan *ch = *pp;
		if (ch->dead) {
			*pp = ch->next;
			sshd_chan_free(ch);
			continue;
		}
		sshd_chan_after_io(ch);
		pp = &ch->next;
	}
}

static void conn_step(struct sshd_conn *c)
{
	c->in_dispatch = true;
	if (!c->kex_done) {
		int rc = ssh_handle_key_exchange(c->session);
		if (rc == SSH_OK) {
			c->kex_done = true;
			c->event = ssh_event_new();
			if (!c->event || ssh_event_add_session(c->event, c->session) != SSH_OK) {
				c->in_dispatch = false;
				sshd_conn_close(c, "out of memory");
				return;
			}
		} else if (rc != SSH_AGAIN) {
			c->in_dispatch = false;
			sshd_conn_close(c, ssh_get_error(c->session));
			return;
		}
	}
	if (c->kex_done && !c->dead) {
		int rc = ssh_event_dopoll(c->event, 0);
		if (rc == SSH_ERROR && !c->dead) {
			c->in_dispatch = false;
			sshd_conn_close(c, ssh_get_error(c->session));
			return;
		}
	}
	c->in_dispatch = false;
	if (c->dead) {
		conn_free(c);
		return;
	}
	if (ssh_get_status(c->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)) {
		sshd_conn_close(c, "client disconnected");
		return;
	}
	conn_sweep(c);
	if (!c->dead)
		sshd_conn_update(c);
}

static void on_conn(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	conn_step(w->data);
}

static void on_grace(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct sshd_conn *c = t->data;
	if (!c->authed)
		sshd_conn_close(c, "key exchange and authentication took too long");
}

static int auth_none(ssh_session session, const char *user, void *userdata)
{
	(void)session;
	(void)user;
	struct sshd_conn *c = userdata;
	c->authed = true;
	(void)sv_timer_disarm(&c->grace);
	return SSH_AUTH_SUCCESS;
}

static int auth_pubkey(ssh_session session, const char *user, struct ssh_key_struct *pubkey,
		       char signature_state, void *userdata)
{
	(void)pubkey;
	/* A probe ("would this key do?") is answered yes; a signed attempt succeeds (libssh has
	 * verified the signature before calling us). */
	if (signature_state == SSH_PUBLICKEY_STATE_VALID)
		return auth_none(session, user, userdata);
	if (signature_state == SSH_PUBLICKEY_STATE_NONE)
		return SSH_AUTH_SUCCESS;
	return SSH_AUTH_DENIED;
}

/* Everything the callbacks do not cover: direct-tcpip opens are ours; the rest (tcpip-forward,
 * x11, agent forwarding, unknown requests) get libssh's refusal. */
static int on_message(ssh_session session, ssh_message msg, void *userdata)
{
	(void)session;
	struct sshd_conn *c = userdata;
	int type = ssh_message_type(msg), sub = ssh_message_subtype(msg);
	if (type == SSH_REQUEST_CHANNEL_OPEN && sub == SSH_CHANNEL_DIRECT_TCPIP && c->authed)
		return sshd_forward_open(c, msg);
	if (type == SSH_REQUEST_SERVICE) /* ssh-userauth: libssh's default reply accepts it */
		return 1;
	const char *what = type == SSH_REQUEST_GLOBAL	    ? "global request"
			   : type == SSH_REQUEST_CHANNEL_OPEN ? "channel open"
			   : type == SSH_REQUEST_CHANNEL      ? "channel request"
							      : "request";
	const char *name = "-";
	if (type == SSH_REQUEST_GLOBAL && sub == SSH_GLOBAL_REQUEST_TCPIP_FORWARD)
		name = "tcpip-forward";
	else if (type == SSH_REQUEST_CHANNEL_OPEN && sub == SSH_CHANNEL_X11)
		name = "x11";
	else if (type == SSH_REQUEST_CHANNEL_OPEN && sub == SSH_CHANNEL_FORWARDED_TCPIP)
		name = "forwarded-tcpip";
	else if (type == SSH_REQUEST_CHANNEL && sub == SSH_CHANNEL_REQUEST_X11)
		name = "x11-req";
	char t[16], id[16];
	sv_fmt(t, sizeof(t), "%d", sub);
	sv_fmt(id, sizeof(id), "%u", c->id);
	sv_log_ocsf("SSH:REFUSE", SV_SEV_LOW, "DENIED", "ssh_request_refused",
		    "ssh request not supported",
		    SV_KVS({"conn", id}, {"kind", what}, {"request", name}, {"subtype", t}));
	return 1;
}

static void conn_accept(struct sshd_server *s, int fd)
{
	char id[16];
	unsigned cid = ++s->next_conn_id;
	sv_fmt(id, sizeof(id), "%u", cid);
	if (s->nconns >= SSHD_MAX_CONNS) {
		close(fd);
		sv_log_kv(SV_LOG_WARN, COMP_SSHD, "ssh_connection_refused",
			  "too many ssh connections: refused", SV_KVS({"conn", id}, {"limit", "64"}));
		return;
	}
	struct sshd_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->srv = s;
	c->id = cid;
	c->w = (struct sv_watch){.fd = fd, .fn = on_conn, .data = c};
	c->grace.w.fd = -1;
	c->session = ssh_new();
	if (!c->session || ssh_bind_accept_fd(s->bind, c->session, fd) != SSH_OK) {
		sv_log_kv(SV_LOG_WARN, COMP_SSHD, "ssh_accept_failed", "cannot start an ssh session",
			  SV_KVS({"conn", id},
				 {"error", c->session ? ssh_get_error(s->bind) : "out of memory"}));
		if (c->session)
			ssh_free(c->session);
		close(fd);
		free(c);
		return;
	}
	ssh_set_blocking(c->session, 0);
	c->scb = (struct ssh_server_callbacks_struct){
		.userdata = c,
		.auth_none_function = auth_none,
		.auth_pubkey_function = auth_pubkey,
		.channel_open_request_session_function = sshd_chan_open_session,
	};
	ssh_callbacks_init(&c->scb);
	ssh_set_server_callbacks(c->session, &c->scb);
	ssh_set_auth_methods(c->session, SSH_AUTH_METHOD_NONE | SSH_AUTH_METHOD_PUBLICKEY);
	ssh_set_message_callback(c->session, on_message, c);
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	if (sv_timer_init(s->loop, &c->grace, on_grace, c) < 0 ||
	    sv_timer_arm(&c->grace, SSHD_LOGIN_GRACE_MS, 0) < 0 ||
	    sv_loop_add(s->loop, &c->w, EPOLLIN) < 0) {
		sshd_conn_close(c, "out of file descriptors");
		return;
	}
	c->events = EPOLLIN;
	sv_log_kv(SV_LOG_INFO, COMP_SSHD, "ssh_connection_accepted", "ssh connection accepted",
		  SV_KVS({"conn", id}));
	conn_step(c); /* send our banner */
}

static void on_listen(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	struct sshd_server *s = w->data;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				sv_warn(COMP_SSHD, "ssh_accept_failed", "accept: %s",
					strerror(errno));
			return;
		}
		conn_accept(s, fd);
	}
}

/* --- the server ------------------------------------------------------------------------------ */

/* The base environment of SSH children (contract §9): the main process's, without the
 * OPENSHELL_* driver variables (OPENSHELL_SANDBOX=1 stays) and without TERM, which each channel
 * sets. */
static int env_build(struct sshd_server *s, char *const *envp)
{
	size_t n = 0;
	for (char *const *e = envp; e && *e; e++)
		n++;
	s->env = calloc(n + 1, sizeof(char *));
	if (!s->env)
		return -ENOMEM;
	size_t k = 0;
	for (char *const *e = envp; e && *e; e++) {
		if (strncmp(*e, "OPENSHELL_", 10) == 0 && strncmp(*e, "OPENSHELL_SANDBOX=", 18) != 0)
			continue;
		if (strncmp(*e, "TERM=", 5) == 0)
			continue;
		if (!(s->env[k++] = strdup(*e)))
			return -ENOMEM;
	}
	return 0;
}

int sshd_server_new(struct sv_loop *loop, int listen_fd, const struct sshd_opts *opts,
		    struct sshd_server **out, struct sv_err *err)
{
	_cleanup_close_ int lfd = listen_fd;
	struct sshd_server *s = calloc(1, sizeof(*s));
	if (!s)
		return sv_err_set(err, ENOMEM, "ssh server: out of memory");
	s->loop = loop;
	s->opts = *opts;
	s->lw = (struct sv_watch){.fd = -1, .fn = on_listen, .data = s};
	s->main.in_fd = -1;
	s->has_bash = access("/bin/bash", X_OK) == 0;
	int r;
	if ((r = env_build(s, opts->envp)) < 0) {
		sshd_server_free(s);
		return sv_err_set(err, -r, "ssh server: out of memory");
	}
	if (ssh_init() != SSH_OK) {
		sshd_server_free(s);
		return sv_err_set(err, EIO, "ssh server: libssh initialisation failed");
	}
	ssh_key key = NULL;
	if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
		sshd_server_free(s);
		return sv_err_set(err, EIO, "ssh server: cannot generate the Ed25519 host key");
	}
	s->bind = ssh_bind_new();
	/* The bind owns the key from here on; it is never written anywhere. */
	if (!s->bind || ssh_bind_options_set(s->bind, SSH_BIND_OPTIONS_IMPORT_KEY, key) != SSH_OK) {
		ssh_key_free(key);
		sshd_server_free(s);
		return sv_err_set(err, EIO, "ssh server: cannot install the host key");
	}
	int verbosity = SSH_LOG_NOLOG;
	(void)ssh_bind_options_set(s->bind, SSH_BIND_OPTIONS_LOG_VERBOSITY, &verbosity);
	/* Nothing from the image's /etc/ssh configures us: no libssh_server_config, and no
	 * group-exchange kex that would read its moduli file. */
	bool no = false;
	if (ssh_bind_options_set(s->bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no) != SSH_OK ||
	    ssh_bind_options_set(s->bind, SSH_BIND_OPTIONS_KEY_EXCHANGE, SSHD_KEX) != SSH_OK) {
		sshd_server_free(s);
		return sv_err_set(err, EINVAL, "ssh server: cannot set the key exchange methods");
	}
	s->lw.fd = sv_steal_fd(&lfd);
	if ((r = sv_loop_add(loop, &s->lw, EPOLLIN)) < 0) {
		sshd_server_free(s);
		return sv_err_set(err, -r, "ssh server: epoll: %s", strerror(-r));
	}
	sv_log_kv(SV_LOG_INFO, COMP_SSHD, "ssh_server_ready", "ssh server accepting connections",
		  SV_KVS({"shell", s->has_bash ? "/bin/bash" : "/bin/sh"}));
	*out = s;
	return 0;
}

bool sshd_server_child_exited(struct sshd_server *s, const siginfo_t *si)
{
	if (!s)
		return false;
	int code = si->si_code == CLD_EXITED ? si->si_status : 0;
	int sig = si->si_code == CLD_EXITED ? 0 : si->si_status;
	bool core = si->si_code == CLD_DUMPED;
	for (struct sshd_conn *c = s->conns; c; c = c->next) {
		for (struct sshd_chan *ch = c->chans; ch; ch = ch->next) {
			if (sshd_chan_child_exited(ch, si->si_pid, code, sig, core)) {
				if (!c->dead)
					sshd_conn_update(c);
				return true;
			}
		}
	}
	return false;
}

/* Settled: no session channel waits to report its exit, no connection holds unsent bytes. */
static bool server_settled(const struct sshd_server *s)
{
	for (const struct sshd_conn *c = s->conns; c; c = c->next) {
		if (c->dead)
			continue;
		if (ssh_get_poll_flags(c->session) & SSH_WRITE_PENDING)
			return false;
		for (const struct sshd_chan *ch = c->chans; ch; ch = ch->next)
			if (ch->kind == SSHD_CHAN_SESSION && ch->exited && !ch->finished && !ch->dead)
				return false;
	}
	return true;
}

static void on_finish_tick(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct sshd_server *s = t->data;
	if (!s->fin_done)
		return;
	if (!server_settled(s) && --s->fin_ticks > 0)
		return;
	(void)sv_timer_disarm(&s->fin);
	void (*done)(void *) = s->fin_done;
	s->fin_done = NULL;
	done(s->fin_arg);
}

bool sshd_server_finish(struct sshd_server *s, void (*done)(void *), void *arg)
{
	if (!s || server_settled(s))
		return false;
	if (!s->fin_init) {
		if (sv_timer_init(s->loop, &s->fin, on_finish_tick, s) < 0)
			return false;
		s->fin_init = true;
	}
	s->fin_done = done;
	s->fin_arg = arg;
	s->fin_ticks = SSHD_FINISH_MS / SSHD_FINISH_TICK_MS;
	if (sv_timer_arm(&s->fin, SSHD_FINISH_TICK_MS, SSHD_FINISH_TICK_MS) < 0) {
		s->fin_done = NULL;
		return false;
	}
	return true;
}

void sshd_server_free(struct sshd_server *s)
{
	if (!s)
		return;
	while (s->conns) {
		struct sshd_conn *c = s->conns;
		c->dead = true;
		conn_free(c);
	}
	if (s->lw.fd >= 0) {
		sv_loop_del(s->loop, &s->lw);
		close(s->lw.fd);
	}
	if (s->fin_init)
		sv_timer_close(s->loop, &s->fin);
	if (s->bind)
		ssh_bind_free(s->bind);
	sshd_main_free(&s->main);
	for (char **e = s->env; e && *e; e++)
		free(*e);
	free(s->env);
	free(s);
}
