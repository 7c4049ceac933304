/* SSH channels: session channels (exec, shell, pty, env, signal, subsystems) and the data pump
 * shared with TCP forwards (contract §9).
 *
 * Every child goes through the main process's spawn path and isolation hook, on the loop thread.
 * Output is read only while the client's window has room, input is buffered up to SSHD_INBUF and
 * the rest left in libssh (so the client's window closes): a slow peer or a hung child stalls
 * only its own channel. Order at the end: all output, EOF, exit-status (or exit-signal), close.
 */
#include "sshd.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "supervisor/log.h"
#include "supervisor/sandbox.h"

/* pull_input: a main attach's read size (through the detach filter, from the stack), and the
 * reads one call makes before it yields to the loop. */
#define SSHD_PULL_CHUNK ((size_t)16 * 1024)
#define SSHD_PULL_ROUNDS 16

struct sig_name {
	const char *name;
	int sig;
};

/* RFC 4254 §6.10 signal names (without "SIG"). */
static const struct sig_name sig_names[] = {
	{"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"FPE", SIGFPE},	 {"HUP", SIGHUP},
	{"ILL", SIGILL},   {"INT", SIGINT},   {"KILL", SIGKILL}, {"PIPE", SIGPIPE},
	{"QUIT", SIGQUIT}, {"SEGV", SIGSEGV}, {"TERM", SIGTERM}, {"USR1", SIGUSR1},
	{"USR2", SIGUSR2},
};

static const char *sig_to_name(int sig)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(sig_names); i++) {
		if (sig_names[i].sig == sig)
			return sig_names[i].name;
	}
	return NULL;
}

static int name_to_sig(const char *name)
{
	for (size_t i = 0; i < SV_ARRAY_SIZE(sig_names); i++) {
		if (strcmp(sig_names[i].name, name) == 0)
			return sig_names[i].sig;
	}
	return 0;
}

static void chan_log(const struct sshd_chan *ch, enum sv_log_level lvl, const char *event,
		     const char *msg, const char *k, const char *v)
{
	char cid[16], chid[16];
	sv_fmt(cid, sizeof(cid), "%u", ch->conn->id);
	sv_fmt(chid, sizeof(chid), "%u", ch->id);
	sv_log_kv(lvl, COMP_SSHD, event, msg, SV_KVS({"conn", cid}, {"channel", chid}, {k, v}));
}

/* --- fds ------------------------------------------------------------------------------------- */

static void watch_close(struct sv_loop *loop, struct sv_watch *w, bool *open)
{
	if (!*open)
		return;
	sv_loop_del(loop, w);
	close(w->fd);
	w->fd = -1;
	*open = false;
}

void sshd_chan_close_all_fds(struct sshd_chan *ch)
{
	struct sv_loop *loop = ch->conn->srv->loop;
	watch_close(loop, &ch->outw, &ch->out_open);
	watch_close(loop, &ch->errw, &ch->err_open);
	watch_close(loop, &ch->inw, &ch->in_open);
	ch->in_armed = false;
	if (ch->connecting) {
		sv_loop_del(loop, &ch->outw);
		close(ch->outw.fd);
		ch->outw.fd = -1;
		ch->connecting = false;
	}
}

static void maybe_finish(struct sshd_chan *ch);

/* The client's side is done (EOF): close the child's stdin once everything is delivered. A PTY
 * has no half-close, so its input simply stops (as in OpenSSH). A main attach gives up its input
 * lease instead (the main's stdin stays open), also only once its input is all delivered: input
 * still buffered here or in libssh when the EOF arrives was dropped before. */
static void maybe_close_input(struct sshd_chan *ch)
{
	if (!ch->client_eof || ch->in_len || ch->lib_pending)
		return;
	if (ch->kind == SSHD_CHAN_MAIN) {
		sshd_main_release(ch);
		return;
	}
	if (!ch->in_open)
		return;
	if (ch->kind == SSHD_CHAN_TCPIP) {
		(void)shutdown(ch->inw.fd, SHUT_WR);
		watch_close(ch->conn->srv->loop, &ch->inw, &ch->in_open);
		maybe_finish(ch);
		return;
	}
	if (ch->pty)
		return;
	watch_close(ch->conn->srv->loop, &ch->inw, &ch->in_open);
}

static void flush_input(struct sshd_chan *ch)
{
	while (ch->in_len && ch->in_open) {
		ssize_t n = write(ch->inw.fd, ch->inbuf + ch->in_off, ch->in_len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (!ch->in_armed &&
				    sv_loop_add(ch->conn->srv->loop, &ch->inw, EPOLLOUT) == 0)
					ch->in_armed = true;
				return;
			}
			/* The child closed its stdin: drop what it will never read. */
			ch->in_len = ch->in_off = 0;
			ch->lib_pending = false;
			ch->in_armed = false;
			sv_loop_del(ch->conn->srv->loop, &ch->inw);
			close(ch->inw.fd);
			ch->in_open = false;
			return;
		}
		ch->in_off += (size_t)n;
		ch->in_len -= (size_t)n;
	}
	if (ch->in_len)
		return;
	ch->in_off = 0;
	if (ch->in_armed) {
		sv_loop_del(ch->conn->srv->loop, &ch->inw);
		ch->in_armed = false;
	}
}

/* One read of what libssh kept back into the input buffer, and a flush. Returns whether another
 * read may follow at once: libssh may hold more and the child's pipe took everything.
 *
 * ssh_channel_read_nonblocking first runs libssh's packet loop, which may call on_data: on_data
 * leaves the data to this read (the room this read is sized for must hold), and the read then
 * takes it too, because with data buffered libssh reads without polling again. So a short read
 * means libssh's buffer is empty. */
static bool pull_once(struct sshd_chan *ch)
{
	size_t room = SSHD_INBUF - ch->in_off - ch->in_len;
	if (!ch->lib_pending || ch->dead || ch->finished || ch->detaching)
		return false;
	/* The main attach's input goes through the detach filter, which may emit a held Ctrl-P:
	 * room for one more. The others read only into an empty buffer. */
	char tmp[SSHD_PULL_CHUNK];
	bool is_main = ch->kind == SSHD_CHAN_MAIN;
	if (is_main ? room < 2 : ch->in_len != 0)
		return false;
	char *dst = is_main ? tmp : ch->inbuf;
	uint32_t want = is_main ? (uint32_t)(room - 1 < sizeof(tmp) ? room - 1 : sizeof(tmp))
			     : (uint32_t)SSHD_INBUF;
	ch->conn->in_dispatch = true;
	ch->pulling = true;
	int n = ssh_channel_read_nonblocking(ch->ch, dst, want, 0);
	ch->pulling = false;
	ch->conn->in_dispatch = false;
	ch->lib_pending = n == (int)want;
	if (n <= 0)
		return false;
	if (is_main)
		(void)sshd_main_input(ch, (const uint8_t *)tmp, (uint32_t)n); /* all: room holds */
	else
		ch->in_len = (size_t)n;
	flush_input(ch);
	return ch->lib_pending && !ch->in_len;
}

/* Take what libssh kept back while our buffer was full, as long as the child takes it: nothing
 * else would come back for the rest once the client has sent everything (it waits for us). After
 * SSHD_PULL_ROUNDS reads the loop yields, the input watch bringing it back on its next turn. */
static void pull_input(struct sshd_chan *ch)
{
	for (unsigned i = 0; i < SSHD_PULL_ROUNDS; i++) {
		if (!pull_once(ch))
			return;
	}
	if (ch->in_open && !ch->in_armed &&
	    sv_loop_add(ch->conn->srv->loop, &ch->inw, EPOLLOUT) == 0)
		ch->in_armed = true;
}

static void on_in_writable(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	struct sshd_chan *ch = w->data;
	flush_input(ch);
	pull_input(ch);
	maybe_close_input(ch);
	sshd_conn_update(ch->conn);
}

void sshd_chan_set_input(struct sshd_chan *ch, int fd)
{
	ch->inw = (struct sv_watch){.fd = fd, .fn = on_in_writable, .data = ch};
	ch->in_open = fd >= 0;
}

static int on_data(ssh_session session, ssh_channel channel, void *data, uint32_t len,
		   int is_stderr, void *userdata)
{
	(void)session;
	(void)channel;
	struct sshd_chan *ch = userdata;
	/* Inside pull_once's read (libssh's packet loop calls us): taking the data here would put
	 * it before the data the read returns, or take the room the read was sized for. Leave it
	 * in libssh's buffer: that read takes it too. */
	if (ch->pulling && !is_stderr) {
		ch->lib_pending = true;
		return 0;
	}
	if (ch->kind == SSHD_CHAN_MAIN && !is_stderr && !ch->dead && !ch->finished) {
		uint32_t took = sshd_main_input(ch, data, len);
		ch->lib_pending = took < len;
		flush_input(ch);
		return (int)took;
	}
	if (is_stderr || ch->dead || (!ch->in_open && !ch->connecting))
		return (int)len; /* nobody to give it to: drop */
	size_t room = SSHD_INBUF - ch->in_off - ch->in_len;
	size_t take = len < room ? len : room;
	memcpy(ch->inbuf + ch->in_off + ch->in_len, data, take);
	ch->in_len += take;
	ch->lib_pending = take < len;
	flush_input(ch);
	return (int)take;
}

static void arm_drain(struct sshd_chan *ch)
{
	if (ch->exited && ch->drain_init)
		(void)sv_timer_arm(&ch->drain, SSHD_DRAIN_MS, 0);
}

static void pause_output(struct sshd_chan *ch, bool err)
{
	struct sv_watch *w = err ? &ch->errw : &ch->outw;
	bool *paused = err ? &ch->err_paused : &ch->out_paused;
	if (*paused)
		return;
	sv_loop_del(ch->conn->srv->loop, w);
	*paused = true;
}

static void on_output(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)events;
	struct sshd_chan *ch = w->data;
	bool err = w == &ch->errw;
	if (ch->dead)
		return;
	uint32_t win = ssh_channel_window_size(ch->ch);
	if (win == 0) {
		pause_output(ch, err);
		return;
	}
	char buf[SSHD_READ_CHUNK];
	size_t want = win < sizeof(buf) ? win : sizeof(buf);
	ssize_t n = read(w->fd, buf, want);
	if (n > 0) {
		int rc = err ? ssh_channel_write_stderr(ch->ch, buf, (uint32_t)n)
			     : ssh_channel_write(ch->ch, buf, (uint32_t)n);
		arm_drain(ch);
		if (rc == SSH_ERROR) {
			sshd_conn_close(ch->conn, "write failed");
			return;
		}
		sshd_conn_update(ch->conn);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* EOF, or EIO from a PTY master whose slave side is gone. */
	if (err) {
		watch_close(loop, &ch->errw, &ch->err_open);
	} else {
		watch_close(loop, &ch->outw, &ch->out_open);
		if (ch->kind == SSHD_CHAN_TCPIP || ch->pty) {
			/* The master's input dup shares its fate. */
			if (ch->pty)
				watch_close(loop, &ch->inw, &ch->in_open);
			if (ch->kind == SSHD_CHAN_TCPIP)
				(void)ssh_channel_send_eof(ch->ch);
		}
	}
	maybe_finish(ch);
	sshd_conn_update(ch->conn);
}

static void resume_output(struct sshd_chan *ch)
{
	if (ssh_channel_window_size(ch->ch) == 0)
		return;
	struct sv_loop *loop = ch->conn->srv->loop;
	if (ch->out_paused && ch->out_open && sv_loop_add(loop, &ch->outw, EPOLLIN) == 0)
		ch->out_paused = false;
	if (ch->err_paused && ch->err_open && sv_loop_add(loop, &ch->errw, EPOLLIN) == 0)
		ch->err_paused = false;
}

void sshd_chan_after_io(struct sshd_chan *ch)
{
	if (ch->dead)
		return;
	if (ch->pending_err) {
		/* Written after the request's reply, never before it. */
		(void)ssh_channel_write_stderr(ch->ch, ch->pending_err,
					       (uint32_t)strlen(ch->pending_err));
		free(ch->pending_err);
		ch->pending_err = NULL;
	}
	if (ch->kind == SSHD_CHAN_MAIN) {
		flush_input(ch);
		pull_input(ch);
		maybe_close_input(ch);
		sshd_main_pump(ch);
		return;
	}
	resume_output(ch);
	flush_input(ch);
	pull_input(ch);
	maybe_close_input(ch);
	maybe_finish(ch);
}

int sshd_chan_attach_fds(struct sshd_chan *ch, int out_fd, int err_fd, int in_fd)
{
	struct sv_loop *loop = ch->conn->srv->loop;
	ch->outw = (struct sv_watch){.fd = out_fd, .fn = on_output, .data = ch};
	ch->errw = (struct sv_watch){.fd = err_fd, .fn = on_output, .data = ch};
	ch->inw = (struct sv_watch){.fd = in_fd, .fn = on_in_writable, .data = ch};
	ch->out_open = out_fd >= 0;
	ch->err_open = err_fd >= 0;
	ch->in_open = in_fd >= 0;
	int r = 0;
	if (ch->out_open && (r = sv_loop_add(loop, &ch->outw, EPOLLIN)) < 0)
		return r;
	if (ch->err_open && (r = sv_loop_add(loop, &ch->errw, EPOLLIN)) < 0)
		return r;
	return 0;
}

/* --- the end of a session -------------------------------------------------------------------- */

static void maybe_finish(struct sshd_chan *ch)
{
	if (ch->finished || ch->dead || ch->kind == SSHD_CHAN_MAIN)
		return;
	if (ch->kind == SSHD_CHAN_TCPIP) {
		if (ch->fwd_ready && !ch->out_open && !ch->in_open) {
			ch->finished = true;
			(void)ssh_channel_close(ch->ch);
		}
		return;
	}
	if (!ch->exited || ch->out_open || ch->err_open)
		return;
	ch->finished = true;
	if (ch->drain_init)
		(void)sv_timer_disarm(&ch->drain);
	sshd_chan_close_all_fds(ch);
	(void)ssh_channel_send_eof(ch->ch);
	const char *name = ch->exit_sig ? sig_to_name(ch->exit_sig) : NULL;
	char v[16];
	if (name) {
		/* As OpenSSH's sshd does; openshell-sandbox sends exit-status 1 instead. */
		(void)ssh_channel_request_send_exit_signal(ch->ch, name, ch->exit_core, "", "");
		sv_fmt(v, sizeof(v), "SIG%s", name);
	} else {
		int code = ch->exit_sig ? 128 + ch->exit_sig : ch->exit_code;
		(void)ssh_channel_request_send_exit_status(ch->ch, code);
		sv_fmt(v, sizeof(v), "%d", code);
	}
	(void)ssh_channel_close(ch->ch);
	chan_log(ch, SV_LOG_INFO, "ssh_session_exited", "ssh session process exited", "status", v);
}

static void on_drain(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct sshd_chan *ch = t->data;
	if (ch->finished || ch->dead)
		return;
	/* Blocked by the client's window is not "quiet": that is the client's pace. */
	if ((ch->out_paused || ch->err_paused) && ssh_channel_window_size(ch->ch) == 0) {
		(void)sv_timer_arm(&ch->drain, SSHD_DRAIN_MS, 0);
		return;
	}
	chan_log(ch, SV_LOG_DEBUG, "ssh_output_drain_expired",
		 "output still open after the session process exited", "after_ms", "2000");
	sshd_chan_close_all_fds(ch);
	maybe_finish(ch);
	sshd_conn_update(ch->conn);
}

bool sshd_chan_child_exited(struct sshd_chan *ch, pid_t pid, int code, int sig, bool core)
{
	if (ch->pid <= 0 || ch->pid != pid)
		return false;
	ch->pid = -1;
	ch->exited = true;
	ch->exit_code = code;
	ch->exit_sig = sig;
	ch->exit_core = core;
	if (ch->dead)
		return true;
	if (!ch->drain_init && sv_timer_init(ch->conn->srv->loop, &ch->drain, on_drain, ch) == 0)
		ch->drain_init = true;
	arm_drain(ch);
	maybe_finish(ch);
	return true;
}

/* --- starting the child ---------------------------------------------------------------------- */

static int sftp_main(void *ctx)
{
	(void)ctx;
	return sshd_sftp_serve(0, 1);
}

/* @cmd: exec's command, NULL for a shell; @sftp: the in-process SFTP server instead of a
 * program. Returns 0 (the request succeeds) or -errno. */
static int chan_start(struct sshd_chan *ch, const char *cmd, bool sftp)
{
	struct sshd_server *s = ch->conn->srv;
	if (ch->started)
		return -EBUSY;
	ch->started = true;
	const char *sh = s->has_bash ? "/bin/bash" : "/bin/sh";
	char *argv[4] = {(char *)sh, NULL, NULL, NULL};
	if (sftp) {
		argv[0] = (char *)"sftp-server";
	} else if (cmd) {
		argv[1] = (char *)"-lc";
		argv[2] = (char *)cmd;
	} else if (ch->pty) {
		argv[1] = (char *)"-il";
	} else {
		argv[1] = (char *)"-l";
	}
	size_t n = 0;
	while (s->env[n])
		n++;
	char **envp = calloc(n + 2, sizeof(char *));
	if (!envp)
		return -ENOMEM;
	memcpy(envp, s->env, n * sizeof(char *));
	char term[sizeof(ch->term) + 8];
	sv_fmt(term, sizeof(term), "TERM=%s",
	       !ch->pty ? "dumb" : ch->term[0] ? ch->term : "xterm-256color");
	envp[n] = term;
	struct sv_spawn sp = {
		.argv = argv,
		.envp = envp,
		.cwd = s->opts.workdir,
		.tty = ch->pty && !sftp,
		.ws = ch->ws,
		.new_pgrp = true,
		.hook = sv_sandbox_child_hook,
		.hook_ctx = (void *)s->opts.sandbox,
		.run = sftp ? sftp_main : NULL,
	};
	if (!sp.ws.ws_row || !sp.ws.ws_col) {
		sp.ws.ws_row = 24;
		sp.ws.ws_col = 80;
	}
	struct sv_child c;
	struct sv_spawn_failure fail;
	struct sv_err err = {0};
	int r = sv_spawn_start(&sp, &c, &fail, &err);
	free(envp);
	if (r < 0) {
		chan_log(ch, SV_LOG_WARN, "ssh_spawn_failed", "cannot start the session process",
			 "error", err.msg);
		return r;
	}
	ch->pid = c.pid;
	if (c.pidfd >= 0)
		close(c.pidfd); /* reaped through run.c's waitid and sshd_server_child_exited */
	char pid[16];
	sv_fmt(pid, sizeof(pid), "%d", (int)c.pid);
	chan_log(ch, SV_LOG_INFO, "ssh_session_started",
		 sftp ? "sftp session started" : cmd ? "ssh exec started" : "ssh shell started",
		 "pid", pid);
	if (fail.exit_code) {
		char line[SV_ERR_MSG_MAX + 16];
		sv_fmt(line, sizeof(line), "openshell: %s\n", fail.msg);
		ch->pending_err = strdup(line);
	}
	if (c.pty_fd >= 0) {
		int in = fcntl(c.pty_fd, F_DUPFD_CLOEXEC, 3);
		r = sshd_chan_attach_fds(ch, c.pty_fd, -1, in);
	} else {
		r = sshd_chan_attach_fds(ch, c.out_fd, c.err_fd, c.in_fd);
	}
	if (r < 0) {
		(void)kill(-ch->pid, SIGKILL);
		sshd_chan_close_all_fds(ch);
	}
	return 0;
}

/* --- channel requests ------------------------------------------------------------------------ */

static int on_pty_request(ssh_session session, ssh_channel channel, const char *term, int cols,
			  int rows, int py, int px, void *userdata)
{
	(void)session;
	(void)channel;
	struct sshd_chan *ch = userdata;
	if (ch->started)
		return -1;
	ch->pty = true;
	sv_fmt(ch->term, sizeof(ch->term), "%s", term ? term : "");
	ch->ws = (struct winsize){.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols,
				  .ws_xpixel = (unsigned short)px,
				  .ws_ypixel = (unsigned short)py};
	return 0;
}

static int on_window_change(ssh_session session, ssh_channel channel, int cols, int rows, int py,
			    int px, void *userdata)
{
	(void)session;
	(void)channel;
	struct sshd_chan *ch = userdata;
	ch->ws = (struct winsize){.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols,
				  .ws_xpixel = (unsigned short)px,
				  .ws_ypixel = (unsigned short)py};
	if (ch->kind == SSHD_CHAN_MAIN)
		sshd_main_resize(ch);
	else if (ch->pty && ch->out_open)
		(void)ioctl(ch->outw.fd, TIOCSWINSZ, &ch->ws);
	return 0;
}

/* Accepted and ignored (contract §9), except the read-only marker of a main attach. */
static int on_env(ssh_session session, ssh_channel channel, const char *name, const char *value,
		  void *userdata)
{
	(void)session;
	(void)channel;
	struct sshd_chan *ch = userdata;
	if (strcmp(name, "OPENSHELL_MAIN_READ_ONLY") == 0 && strcmp(value, "1") == 0)
		ch->main_ro = true;
	return 0;
}

static bool is_blank(const char *s)
{
	for (; *s; s++) {
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	}
	return true;
}

static int on_exec(ssh_session session, ssh_channel channel, const char *command, void *userdata)
{
	(void)session;
	(void)channel;
	struct sshd_chan *ch = userdata;
	if (ch->started)
		return -1;
	if (!command || is_blank(command)) {
		/* Nothing runs (contract §9); the session ends at once with status 0. */
		ch->started = true;
		ch->exited = true; /* finished after the reply (sshd_chan_after_io) */
		return 0;
	}
	return chan_start(ch, command, false) < 0 ? -1 : 0;
}

static int on_shell(ssh_session session, ssh_channel channel, void *userdata)
{
	(void)session;
	(void)channel;
	return chan_start(userdata, NULL, false) < 0 ? -1 : 0;
}

static int on_subsystem(ssh_session session, ssh_channel channel, const char *name,
			void *userdata)
{
	(void)session;
	(void)channel;
	struct sshd_chan *ch = userdata;
	if (strcmp(name, "sftp") == 0)
		return chan_start(ch, NULL, true) < 0 ? -1 : 0;
	if (strcmp(name, "openshell-main") == 0)
		return sshd_main_attach(ch) < 0 ? -1 : 0;
	char cid[16];
	sv_fmt(cid, sizeof(cid), "%u", ch->conn->id);
	sv_log_ocsf("SSH:REFUSE", SV_SEV_LOW, "DENIED", "ssh_subsystem_refused",
		    "ssh subsystem not supported", SV_KVS({"conn", cid}, {"subsystem", name}));
	return -1;
}

/* OpenSSH's sshd delivers these to the session's process group (openshell-sandbox only to a
 * main attach). */
static void on_signal(ssh_session session, ssh_channel channel, const char *signal,
		      void *userdata)
{
	(void)session;
	(void)channel;
	struct sshd_chan *ch = userdata;
	int sig = signal ? name_to_sig(signal) : 0;
	if (sig && ch->kind == SSHD_CHAN_MAIN)
		sshd_main_signal(ch, sig);
	else if (sig && ch->pid > 0)
		(void)kill(-ch->pid, sig);
}

static void on_eof(ssh_session session, ssh_channel channel, void *userdata)
{
	(void)session;
	(void)channel;
	struct sshd_chan *ch = userdata;
	ch->client_eof = true;
	maybe_close_input(ch);
}

static void on_close(ssh_session session, ssh_channel channel, void *userdata)
{
	(void)session;
	(void)channel;
	struct sshd_chan *ch = userdata;
	ch->client_closed = true;
	ch->dead = true; /* freed by the connection after this dispatch */
}

/* --- lifetime -------------------------------------------------------------------------------- */

struct sshd_chan *sshd_chan_new(struct sshd_conn *c, enum sshd_chan_kind kind)
{
	struct sshd_server *s = c->srv;
	char cid[16];
	sv_fmt(cid, sizeof(cid), "%u", c->id);
	if (c->nchans >= SSHD_CHANS_PER_CONN || s->nchans >= SSHD_MAX_CHANS) {
		sv_log_kv(SV_LOG_WARN, COMP_SSHD, "ssh_channel_refused",
			  "too many ssh channels: refused",
			  SV_KVS({"conn", cid}, {"per_connection_limit", "10"},
				 {"total_limit", "256"}));
		return NULL;
	}
	struct sshd_chan *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return NULL;
	ch->inbuf = malloc(SSHD_INBUF);
	ch->ch = ssh_channel_new(c->session);
	if (!ch->inbuf || !ch->ch) {
		if (ch->ch)
			ssh_channel_free(ch->ch);
		free(ch->inbuf);
		free(ch);
		return NULL;
	}
	ch->conn = c;
	ch->kind = kind;
	ch->id = ++c->next_chan_id;
	ch->outw.fd = ch->errw.fd = ch->inw.fd = -1;
	ch->drain.w.fd = -1;
	ch->cb = (struct ssh_channel_callbacks_struct){
		.userdata = ch,
		.channel_data_function = on_data,
		.channel_eof_function = on_eof,
		.channel_close_function = on_close,
	};
	if (kind == SSHD_CHAN_SESSION) {
		ch->cb.channel_signal_function = on_signal;
		ch->cb.channel_pty_request_function = on_pty_request;
		ch->cb.channel_shell_request_function = on_shell;
		ch->cb.channel_pty_window_change_function = on_window_change;
		ch->cb.channel_exec_request_function = on_exec;
		ch->cb.channel_env_request_function = on_env;
		ch->cb.channel_subsystem_request_function = on_subsystem;
	}
	ssh_callbacks_init(&ch->cb);
	ssh_set_channel_callbacks(ch->ch, &ch->cb);
	ch->next = c->chans;
	c->chans = ch;
	c->nchans++;
	s->nchans++;
	return ch;
}

ssh_channel sshd_chan_open_session(ssh_session session, void *userdata)
{
	(void)session;
	struct sshd_conn *c = userdata;
	if (!c->authed)
		return NULL;
	struct sshd_chan *ch = sshd_chan_new(c, SSHD_CHAN_SESSION);
	return ch ? ch->ch : NULL;
}

void sshd_chan_free(struct sshd_chan *ch)
{
	struct sshd_conn *c = ch->conn;
	struct sshd_server *s = c->srv;
	/* A session process outliving its channel is hung up on, as a closed terminal would. */
	if (ch->pid > 0) {
		(void)kill(-ch->pid, SIGHUP);
		(void)kill(ch->pid, SIGHUP);
	}
	if (ch->kind == SSHD_CHAN_MAIN)
		sshd_main_release(ch);
	sshd_chan_close_all_fds(ch);
	if (ch->drain_init)
		sv_timer_close(s->loop, &ch->drain);
	if (ch->ch)
		ssh_channel_free(ch->ch);
	free(ch->inbuf);
	free(ch->pending_err);
	c->nchans--;
	s->nchans--;
	sv_loop_defer_free(s->loop, ch);
}
