/* The public face of session/ for supervisor/main.c: the gateway session and the SSH server.
 *
 * Each block belongs to one part of session/; everything else in the folder is private.
 */
#ifndef SESSION_SESSION_H
#define SESSION_SESSION_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "supervisor/err.h"
#include "supervisor/loop.h"

/* --- SSH server (contract §9, docs/ssh.md) ---------------------------------------------------- */

#define SSHD_SOCKET_ENV "OPENSHELL_SSH_SOCKET_PATH"

struct sshd_server;
struct sv_sandbox;

struct sshd_opts {
	const struct sv_sandbox *sandbox; /* borrowed: the main process's isolation (spawn hook) */
	char *const *envp;                /* borrowed: the main process's environment */
	const char *workdir;              /* borrowed: children start here */
};

/* Setup phase: the listening socket at @path (OPENSHELL_SSH_SOCKET_PATH; "@name" is the abstract
 * socket "\0name"). For a filesystem path the parent directory is created and set to 0700, a
 * stale socket replaced (anything else there is an error) and the socket made 0600. Returns the
 * fd (O_CLOEXEC, non-blocking, owned by the caller) or -errno with @err naming the step. */
int sshd_listen(const char *path, struct sv_err *err);

/* Serve SSH on @listen_fd (consumed, also on failure) from @loop with a fresh Ed25519 host key
 * that never leaves memory. @opts is copied; what it points to is borrowed until
 * sshd_server_free. */
int sshd_server_new(struct sv_loop *loop, int listen_fd, const struct sshd_opts *opts,
		    struct sshd_server **out, struct sv_err *err);

/* A child was reaped (waitid in run.c): returns true when it was one of the server's, whose
 * status then goes to its channel. */
bool sshd_server_child_exited(struct sshd_server *s, const siginfo_t *si);

/* The main process, for `openshell-main` attaches (run.h's main_* hooks); NULL @s is a no-op
 * (@fd is closed). */
void sshd_server_main_started(struct sshd_server *s, pid_t pid);
void sshd_server_main_input(struct sshd_server *s, int fd, bool tty); /* @fd consumed */
void sshd_server_main_output(struct sshd_server *s, int stream, const char *buf, size_t len);
void sshd_server_main_exited(struct sshd_server *s, int code);

/* Close every connection (children get SIGHUP) and the socket. NULL is a no-op. */
void sshd_server_free(struct sshd_server *s);

#endif
