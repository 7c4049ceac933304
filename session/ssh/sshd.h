/* The SSH server's private state, shared by session/sshd_*.c only (contract §9).
 *
 * One listening unix socket, connections driven by libssh in non-blocking mode from the
 * supervisor's epoll loop, channels whose children go through the main process's spawn path.
 * Nothing here ever blocks the loop or forks off the loop thread.
 */
#ifndef SSHD_H
#define SSHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "session/session.h"
#include "supervisor/loop.h"
#include "supervisor/spawn.h"

#define COMP_SSHD "sshd"

/* Limits (ours; the contract sets none): past them new connections are closed at accept and new
 * channels refused, both logged. SSHD_CHANS_PER_CONN is OpenSSH's MaxSessions default. */
#define SSHD_MAX_CONNS 64
#define SSHD_MAX_CHANS 256
#define SSHD_CHANS_PER_CONN 10
/* Key exchange and authentication must finish within this (OpenSSH: LoginGraceTime). */
#define SSHD_LOGIN_GRACE_MS 20000
/* Output may trail a session's exit this long without progress (contract §9: 2 s). */
#define SSHD_DRAIN_MS 2000
/* How long the sandbox's end waits for exit reports to reach clients (sshd_server_finish). */
#define SSHD_FINISH_MS (SSHD_DRAIN_MS + 1000)
#define SSHD_FINISH_TICK_MS 10
/* Client input buffered per channel on its way to the child (beyond it libssh keeps the rest and
 * the client's window closes). */
#define SSHD_INBUF ((size_t)64 * 1024)
#define SSHD_READ_CHUNK ((size_t)32 * 1024)

struct sshd_conn;

/* openshell-main output replay (contract §9: 1 MiB, byte-bounded, oldest chunks dropped); the
 * chunk count is bounded too. */
#define SSHD_MAIN_REPLAY ((size_t)1024 * 1024)
#define SSHD_MAIN_CHUNKS 4096

enum sshd_chan_kind {
	SSHD_CHAN_SESSION,
	SSHD_CHAN_TCPIP,
	SSHD_CHAN_MAIN, /* a session channel attached to the main process */
};

struct sshd_main_chunk {
	char *data;
	size_t len;
	int stream; /* 1 stdout (or the PTY), 2 stderr */
};

/* The canonical main process as attachments see it. */
struct sshd_main {
	pid_t pid;
	int in_fd; /* writes to its input (PTY master dup or stdin pipe dup), or -1 */
	bool tty;
	bool exited;
	int code;
	struct sshd_chan *owner; /* holder of the input lease */
	struct sshd_main_chunk ring[SSHD_MAIN_CHUNKS];
	size_t first, count, bytes;
	uint64_t first_seq, next_seq; /* sequence numbers of ring[first] and of the next chunk */
};

struct sshd_chan {
	struct sshd_conn *conn;
	struct sshd_chan *next;
	ssh_channel ch;
	struct ssh_channel_callbacks_struct cb;
	enum sshd_chan_kind kind;
	unsigned id;
	bool dead; /* to be freed once libssh is out of its callbacks */

	/* session channels */
	bool pty;
	char term[64];
	struct winsize ws;
	bool started;
	bool main_ro;       /* env OPENSHELL_MAIN_READ_ONLY=1 */
	pid_t pid;          /* 0: no child; -1: child gone (status known) */
	bool exited;
	int exit_code;      /* valid when exited and !exit_sig */
	int exit_sig;       /* nonzero: killed by this signal */
	bool exit_core;
	bool finished;      /* EOF, exit-status and close sent */
	bool client_eof;
	bool client_closed;
	char *pending_err; /* why the child failed before exec, sent as stderr after the reply */

	/* fds: out (stdout, or the PTY master), err (stderr), in (stdin, or a dup of the master);
	 * for a TCP forward, out is the socket and in a dup of it. */
	struct sv_watch outw, errw, inw;
	bool out_open, err_open, in_open;
	bool out_paused, err_paused; /* remote window full: not reading */
	bool in_armed;               /* waiting for EPOLLOUT on in */
	bool lib_pending;            /* libssh holds client data we did not take yet */
	bool pulling;                /* in pull_input: libssh may run its packet loop and call
				      * on_data, which must then leave the data to the read */
	size_t in_off, in_len;
	char *inbuf; /* SSHD_INBUF bytes */
	struct sv_timer drain;
	bool drain_init;

	/* main attach */
	uint64_t cursor;    /* next chunk to send */
	size_t cursor_off;  /* bytes of it already sent */
	bool saw_ctrl_p;
	bool detaching;
	uint64_t lag; /* chunks dropped before they were sent: the attachment is told and closed */

	/* TCP forward */
	bool connecting;
	bool fwd_ready; /* connected: the pump runs */
};

struct sshd_conn {
	struct sshd_server *srv;
	struct sshd_conn *next;
	unsigned id;
	ssh_session session;
	ssh_event event; /* after key exchange */
	struct sv_watch w;
	uint32_t events;
	struct sv_timer grace;
	bool kex_done;
	bool authed;
	bool dead;
	bool in_dispatch; /* inside a libssh call: frees wait */
	struct ssh_server_callbacks_struct scb;
	struct sshd_chan *chans;
	unsigned nchans;
	unsigned next_chan_id;
};

struct sshd_server {
	struct sv_loop *loop;
	struct sv_watch lw;
	ssh_bind bind;
	struct sshd_opts opts; /* borrowed pointers, see session.h */
	char **env;            /* the base environment of SSH children (owned) */
	struct sshd_main main;
	bool has_bash;
	struct sshd_conn *conns;
	unsigned nconns, nchans;
	unsigned next_conn_id;
	struct sv_timer fin;         /* sshd_server_finish's poll */
	bool fin_init;
	unsigned fin_ticks;
	void (*fin_done)(void *);
	void *fin_arg;
};

/* sshd_server.c */
void sshd_conn_update(struct sshd_conn *c);
void sshd_conn_close(struct sshd_conn *c, const char *why);

/* sshd_chan.c: session channels */
ssh_channel sshd_chan_open_session(ssh_session session, void *userdata);
struct sshd_chan *sshd_chan_new(struct sshd_conn *c, enum sshd_chan_kind kind);
void sshd_chan_free(struct sshd_chan *ch);
void sshd_chan_after_io(struct sshd_chan *ch);
bool sshd_chan_child_exited(struct sshd_chan *ch, pid_t pid, int code, int sig, bool core);
/* Start pumping data between @fd (in/out) and the channel; used by forwards. */
int sshd_chan_attach_fds(struct sshd_chan *ch, int out_fd, int err_fd, int in_fd);
void sshd_chan_close_all_fds(struct sshd_chan *ch);

void sshd_chan_set_input(struct sshd_chan *ch, int fd);

/* sshd_main.c: openshell-main */
int sshd_main_attach(struct sshd_chan *ch);
void sshd_main_pump(struct sshd_chan *ch);
uint32_t sshd_main_input(struct sshd_chan *ch, const uint8_t *data, uint32_t len);
void sshd_main_release(struct sshd_chan *ch);
void sshd_main_resize(struct sshd_chan *ch);
void sshd_main_signal(struct sshd_chan *ch, int sig);
void sshd_main_free(struct sshd_main *m);

/* sshd_forward.c: direct-tcpip */
int sshd_forward_open(struct sshd_conn *c, ssh_message msg);
bool sshd_forward_host_is_loopback(const char *host);

/* sshd_sftp.c: the SFTP v3 server run in a sandboxed child over fds @in/@out; returns the
 * child's exit status. Uses no heap and no stdio. */
int sshd_sftp_serve(int in, int out);

#endif
