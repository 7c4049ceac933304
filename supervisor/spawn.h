/* Starting a sandboxed child: PTY or pipes, a clean signal state, no leaked fds, and an
 * isolation hook that runs in the child between fork and exec.
 *
 * The same path serves the main process now and SSH session children later, so that every
 * child is sandboxed exactly alike. The hook must be async-signal-safe: everything it needs is
 * prepared in the parent before sv_spawn_start.
 */
#ifndef SV_SPAWN_H
#define SV_SPAWN_H

#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "err.h"

/* Exit codes of a child that could not exec (shell conventions, contract §1.4). */
#define SV_EXIT_NOT_FOUND 127
#define SV_EXIT_NOT_EXECUTABLE 126
/* The child failed before exec for another reason (stdio, isolation hook, workdir). */
#define SV_EXIT_CHILD_SETUP 1

#define SV_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct sv_spawn {
	char *const *argv; /* borrowed, NULL-terminated, argv[0] is the program */
	char *const *envp; /* borrowed, the child's complete environment */
	const char *cwd;   /* NULL: keep the supervisor's */
	bool tty;          /* PTY with the child as session leader, else three pipes */
	struct winsize ws; /* initial PTY size */
	bool new_pgrp;     /* pipes only: put the child in its own process group */
	/* Runs in the child after stdio is in place and before the workdir and exec; returns 0
	 * or -errno with @err filled. Async-signal-safe only. */
	int (*hook)(void *ctx, struct sv_err *err);
	void *hook_ctx;
	/* NULL: exec argv. Else, instead of exec, close every fd above stderr and run this in the
	 * child after the hook, the workdir and the signal reset; the child _exit()s with its
	 * result (the SSH server's in-process SFTP server). No exec, so no new Landlock/seccomp
	 * transition: the hook's restrictions already apply. argv is still used for messages. */
	int (*run)(void *ctx);
	void *run_ctx;
};

struct sv_child {
	pid_t pid;
	int pidfd;  /* -1 where the kernel has no pidfd_open */
	int pty_fd; /* PTY master (non-blocking), or -1 */
	int in_fd;  /* write end of the child's stdin pipe, or -1 */
	int out_fd; /* read end of the child's stdout pipe, or -1 */
	int err_fd; /* read end of the child's stderr pipe, or -1 */
};

/* Why a child failed before exec, as reported through the CLOEXEC status pipe. */
struct sv_spawn_failure {
	int exit_code; /* what the child _exit()ed with */
	int errnum;
	char msg[SV_ERR_MSG_MAX];
};

/* Fork and exec. On success returns 0 with @out filled (fds owned by the caller). If the child
 * started but failed before exec, returns 0 too and fills @failure (failure->exit_code != 0);
 * the child still has to be reaped. Returns -errno only when no child could be started. */
int sv_spawn_start(const struct sv_spawn *opts, struct sv_child *out,
		   struct sv_spawn_failure *failure, struct sv_err *err);

void sv_child_close_fds(struct sv_child *c);

/* Raise the supervisor's soft RLIMIT_NOFILE to its hard limit; children get the original back
 * just before exec. Call once at start-up. */
void sv_spawn_raise_nofile(void);

/* Every signal disposition back to SIG_DFL, including those libc reserves (32-34), which a
 * launcher may have left ignored. Async-signal-safe. */
void sv_signals_reset_dispositions(void);

/* In the child only, from a hook: hand @fd to the parent over the status channel (SCM_RIGHTS),
 * which passes it to the sink set with sv_spawn_set_fd_sink (or closes it). The caller still
 * closes its own copy. Async-signal-safe. Returns 0 or -errno. */
int sv_spawn_child_pass_fd(int fd);

/* Where fds passed by children go: @sink takes ownership of each (it must not block: it runs on
 * the caller of sv_spawn_start). NULL: they are closed. Set before the first child starts. */
void sv_spawn_set_fd_sink(void (*sink)(int fd));

/* Send @sig to @c's process, through its pidfd where possible (no PID reuse race). */
int sv_child_signal(const struct sv_child *c, int sig);

#endif
