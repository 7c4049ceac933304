/* `subsystem openshell-main`: attaching to the canonical main process (contract §9).
 *
 * The main process's output is kept in a byte-bounded ring (1 MiB, oldest chunks dropped) that a
 * new attachment replays before it follows live output. One attachment at a time owns the input
 * lease; a second writer is attached read-only and told so. Ctrl-P Ctrl-Q detaches. When the
 * main process exits every attachment gets what is left, EOF, exit-status and close. Nothing
 * here closes the main process's stdin.
 */
#include "sshd.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "supervisor/log.h"

#define RO_MSG "openshell: canonical main process already has an input owner; attached read-only\n"
#define LAG_FMT \
	"openshell: attachment fell behind by %llu output chunks; reconnect for buffered output\n"
#define DETACH_1 0x10 /* Ctrl-P */
#define DETACH_2 0x11 /* Ctrl-Q */

static struct sshd_main_chunk *chunk_at(struct sshd_main *m, uint64_t seq)
{
	return &m->ring[(m->first + (seq - m->first_seq)) % SSHD_MAIN_CHUNKS];
}

static void ring_drop_oldest(struct sshd_main *m)
{
	struct sshd_main_chunk *c = &m->ring[m->first];
	m->bytes -= c->len;
	free(c->data);
	c->data = NULL;
	m->first = (m->first + 1) % SSHD_MAIN_CHUNKS;
	m->count--;
	m->first_seq++;
}

void sshd_main_free(struct sshd_main *m)
{
	while (m->count)
		ring_drop_oldest(m);
	if (m->in_fd >= 0)
		close(m->in_fd);
	m->in_fd = -1;
}

/* --- one attachment -------------------------------------------------------------------------- */

static void attach_end(struct sshd_chan *ch, int status)
{
	if (ch->finished)
		return;
	ch->finished = true;
	if (ch->conn->srv->main.owner == ch)
		ch->conn->srv->main.owner = NULL;
	sshd_chan_close_all_fds(ch);
	(void)ssh_channel_send_eof(ch->ch);
	(void)ssh_channel_request_send_exit_status(ch->ch, status);
	(void)ssh_channel_close(ch->ch);
	sshd_conn_update(ch->conn);
}

/* Send what the ring holds past the attachment's cursor, as far as the window allows. */
void sshd_main_pump(struct sshd_chan *ch)
{
	struct sshd_main *m = &ch->conn->srv->main;
	if (ch->finished || ch->dead)
		return;
	if (ch->detaching) {
		attach_end(ch, 0);
		return;
	}
	if (ch->lag || ch->cursor < m->first_seq) {
		/* Told once the client's window has room for the notice (it shares the window). */
		if (!ch->lag)
			ch->lag = m->first_seq - ch->cursor;
		char msg[160];
		size_t n = sv_fmt(msg, sizeof(msg), LAG_FMT, (unsigned long long)ch->lag);
		if (ssh_channel_window_size(ch->ch) < n)
			return;
		(void)ssh_channel_write_stderr(ch->ch, msg, (uint32_t)n);
		attach_end(ch, 0);
		return;
	}
	while (ch->cursor < m->next_seq) {
		uint32_t win = ssh_channel_window_size(ch->ch);
		if (win == 0)
			break;
		struct sshd_main_chunk *c = chunk_at(m, ch->cursor);
		size_t left = c->len - ch->cursor_off;
		uint32_t n = left < win ? (uint32_t)left : win;
		int rc = c->stream == 2 && !m->tty
				 ? ssh_channel_write_stderr(ch->ch, c->data + ch->cursor_off, n)
				 : ssh_channel_write(ch->ch, c->data + ch->cursor_off, n);
		if (rc == SSH_ERROR)
			return;
		ch->cursor_off += n;
		if (ch->cursor_off == c->len) {
			ch->cursor++;
			ch->cursor_off = 0;
		}
	}
	if (ch->cursor == m->next_seq && m->exited)
		attach_end(ch, m->code > 0 ? m->code : 0);
	sshd_conn_update(ch->conn);
}

/* Client input: Ctrl-P Ctrl-Q (possibly split across packets) detaches and drops what follows;
 * a lone Ctrl-P followed by anything else is forwarded. Returns how much of @data was taken. */
uint32_t sshd_main_input(struct sshd_chan *ch, const uint8_t *data, uint32_t len)
{
	uint32_t i = 0;
	for (; i < len && !ch->detaching; i++) {
		uint8_t b = data[i];
		if (ch->saw_ctrl_p) {
			if (b == DETACH_2) {
				ch->detaching = true;
				break;
			}
			if (ch->in_open) {
				if (SSHD_INBUF - ch->in_off - ch->in_len < 2)
					break; /* room for the held Ctrl-P and this byte */
				ch->inbuf[ch->in_off + ch->in_len++] = DETACH_1;
			}
			ch->saw_ctrl_p = false;
		}
		if (b == DETACH_1) {
			ch->saw_ctrl_p = true;
			continue;
		}
		if (ch->in_open) {
			if (SSHD_INBUF - ch->in_off - ch->in_len < 1)
				break;
			ch->inbuf[ch->in_off + ch->in_len++] = (char)b;
		}
	}
	if (ch->detaching) {
		char cid[16];
		sv_fmt(cid, sizeof(cid), "%u", ch->conn->id);
		sv_log_kv(SV_LOG_INFO, COMP_SSHD, "ssh_main_detached", "main attach detached",
			  SV_KVS({"conn", cid}));
		if (ch->conn->srv->main.owner == ch)
			ch->conn->srv->main.owner = NULL;
		return len; /* the rest after the sequence is dropped */
	}
	return i;
}

void sshd_main_release(struct sshd_chan *ch)
{
	struct sshd_main *m = &ch->conn->srv->main;
	if (m->owner == ch)
		m->owner = NULL;
	if (ch->in_open) {
		sv_loop_del(ch->conn->srv->loop, &ch->inw);
		close(ch->inw.fd);
		ch->inw.fd = -1;
		ch->in_open = false;
		ch->in_armed = false;
	}
}

int sshd_main_attach(struct sshd_chan *ch)
{
	struct sshd_server *s = ch->conn->srv;
	struct sshd_main *m = &s->main;
	if (ch->started || m->pid <= 0)
		return -ENOENT;
	ch->started = true;
	ch->kind = SSHD_CHAN_MAIN;
	ch->cursor = m->first_seq;
	bool told_ro = false;
	if (!ch->main_ro && !m->exited && m->in_fd >= 0) {
		if (m->owner) {
			told_ro = true;
		} else {
			int fd = fcntl(m->in_fd, F_DUPFD_CLOEXEC, 3);
			if (fd >= 0) {
				(void)fcntl(fd, F_SETFL, O_NONBLOCK);
				ch->inw = (struct sv_watch){.fd = fd, .data = ch};
				sshd_chan_set_input(ch, fd);
				m->owner = ch;
			}
		}
	}
	if (m->tty && m->in_fd >= 0 && ch->pty && ch->ws.ws_row && ch->ws.ws_col)
		(void)ioctl(m->in_fd, TIOCSWINSZ, &ch->ws);
	if (told_ro)
		ch->pending_err = strdup(RO_MSG);
	char cid[16];
	sv_fmt(cid, sizeof(cid), "%u", ch->conn->id);
	sv_log_kv(SV_LOG_INFO, COMP_SSHD, "ssh_main_attached", "main process attached",
		  SV_KVS({"conn", cid}, {"input", m->owner == ch ? "owner" : "read-only"}));
	return 0;
}

void sshd_main_resize(struct sshd_chan *ch)
{
	struct sshd_main *m = &ch->conn->srv->main;
	if (m->tty && m->in_fd >= 0 && ch->ws.ws_row && ch->ws.ws_col)
		(void)ioctl(m->in_fd, TIOCSWINSZ, &ch->ws);
}

void sshd_main_signal(struct sshd_chan *ch, int sig)
{
	struct sshd_main *m = &ch->conn->srv->main;
	if (m->pid <= 0 || m->exited)
		return;
	if (sig == SIGHUP || sig == SIGINT || sig == SIGKILL || sig == SIGQUIT || sig == SIGTERM)
		(void)kill(-m->pid, sig);
}

/* --- the main process's side ----------------------------------------------------------------- */

static void pump_all(struct sshd_server *s)
{
	for (struct sshd_conn *c = s->conns; c; c = c->next) {
		for (struct sshd_chan *ch = c->chans; ch; ch = ch->next) {
			if (ch->kind == SSHD_CHAN_MAIN && ch->started)
				sshd_main_pump(ch);
		}
	}
}

void sshd_server_main_started(struct sshd_server *s, pid_t pid)
{
	if (s)
		s->main.pid = pid;
}

void sshd_server_main_input(struct sshd_server *s, int fd, bool tty)
{
	if (!s) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (s->main.in_fd >= 0)
		close(s->main.in_fd);
	s->main.in_fd = fd;
	s->main.tty = tty;
}

void sshd_server_main_output(struct sshd_server *s, int stream, const char *buf, size_t len)
{
	if (!s || !len)
		return;
	struct sshd_main *m = &s->main;
	char *copy = malloc(len);
	if (!copy)
		return; /* live attachments will see the gap as lag */
	memcpy(copy, buf, len);
	while (m->count && (m->count == SSHD_MAIN_CHUNKS || m->bytes + len > SSHD_MAIN_REPLAY))
		ring_drop_oldest(m);
	struct sshd_main_chunk *c = &m->ring[(m->first + m->count) % SSHD_MAIN_CHUNKS];
	*c = (struct sshd_main_chunk){.data = copy, .len = len, .stream = stream};
	m->count++;
	m->bytes += len;
	m->next_seq++;
	pump_all(s);
}

void sshd_server_main_exited(struct sshd_server *s, int code)
{
	if (!s)
		return;
	s->main.exited = true;
	s->main.code = code;
	pump_all(s);
}
