/* PID-1 core: signals through a signalfd, reaping through waitid, timers through timerfds.
 *
 * Every process in the sandbox is accounted for: the supervisor exits only when waitid reports
 * no children at all (as PID 1 or subreaper, every descendant ends up ours). It never calls
 * kill(-1, ...) unless it really is PID 1 of its namespace.
 */
#include "run.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>

#include "log.h"
#include "loop.h"
#include "relay.h"
#include "spawn.h"

#define COMP "supervisor"

/* Signals passed on to the main process group (contract §6.4, issue 2). */
static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* Faults raised by the CPU for the faulting thread: blocking them would hide our own bugs. */
static bool sig_is_synchronous(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
	       sig == SIGABRT || sig == SIGTRAP || sig == SIGSYS;
}

void sv_signals_block_all(void)
{
	sigset_t all;
	sigfillset(&all);
	for (int sig = 1; sig < _NSIG; sig++) {
		if (sig_is_synchronous(sig))
			sigdelset(&all, sig);
	}
	(void)sigprocmask(SIG_SETMASK, &all, NULL);
	sv_signals_reset_dispositions();
}

struct run {
	struct sv_loop loop;
	struct sv_watch sigw;
	struct sv_watch pidw;
	struct sv_child main;
	const struct sv_run_opts *opts;
	bool is_pid1;
	bool main_alive;
	int main_code;
	bool children_gone;
	bool stopping; /* SIGTERM sent everywhere, grace running */
	bool killing;  /* grace over: SIGKILL sweeps */
	bool timed_out;
	bool drain_armed;
	bool finishing;        /* services were asked to finish (opts->finish) */
	bool services_pending; /* ... and have not said done yet */
	bool main_exit_told; /* opts->main_exit called */
	struct sv_timer grace, timeout, sweep, drain, pty_eof;
	bool pty_eof_pending; /* our stdin ended: send VEOF once the PTY output is quiet */
	struct sv_relay out, err, in;
	int outputs_open;
	bool tty_raw;
	struct termios saved_tio;
};

static void maybe_finish(struct run *r);

/* Send @sig to every descendant of ours, found by walking /proc (no CONFIG_PROC_CHILDREN
 * needed). Used when we are a subreaper rather than PID 1, where kill(-1) would reach the host. */
static void signal_descendants(int sig)
{
	DIR *d = opendir("/proc");
	if (!d) {
		sv_warn(COMP, "proc_unavailable", "cannot list /proc to signal descendants: %s",
			strerror(errno));
		return;
	}
	size_t cap = 256, n = 0;
	pid_t(*pairs)[2] = malloc(cap * sizeof(*pairs));
	if (!pairs) {
		closedir(d);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		unsigned long long pid;
		if (sv_parse_uint(de->d_name, 1, 0x7fffffff, &pid) < 0)
			continue;
		char path[64], buf[512];
		sv_fmt(path, sizeof(path), "/proc/%llu/stat", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		char *rp = strrchr(buf, ')'); /* comm may contain anything but ends at the last ')' */
		int ppid;
		if (!rp || sscanf(rp + 1, " %*c %d", &ppid) != 1)
			continue;
		if (n == cap) {
			void *np = realloc(pairs, 2 * cap * sizeof(*pairs));
			if (!np)
				break;
			pairs = np;
			cap *= 2;
		}
		pairs[n][0] = (pid_t)pid;
		pairs[n][1] = ppid;
		n++;
	}
	closedir(d);
	/* Mark descendants: iterate until no new pid joins the set (bounded by n passes). */
	bool *mark = calloc(n ? n : 1, sizeof(bool));
	if (!mark) {
		free(pairs);
		return;
	}
	pid_t self = getpid();
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < n; i++) {
			if (mark[i])
				continue;
			bool parent_marked = pairs[i][1] == self;
			for (size_t k = 0; !parent_marked && k < n; k++)
				parent_marked = mark[k] && pairs[k][0] == pairs[i][1];
			if (parent_marked) {
				mark[i] = true;
				changed = true;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (mark[i])
			(void)kill(pairs[i][0], sig);
	}
	free(mark);
	free(pairs);
}

static void signal_everyone(struct run *r, int sig)
{
	if (r->is_pid1)
		(void)kill(-1, sig); /* every process in our PID namespace but us */
	else
		signal_descendants(sig);
}

static void signal_main_group(struct run *r, int sig)
{
	/* The main process leads its own group (setsid or setpgid in the child). */
	if (kill(-r->main.pid, sig) < 0 && errno == ESRCH && r->main_alive)
		(void)sv_child_signal(&r->main, sig);
}

static void start_grace(struct run *r, uint64_t ms)
{
	if (r->stopping || r->killing)
		return;
	r->stopping = true;
	(void)sv_timer_arm(&r->grace, ms, 0);
}

static void on_grace(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct run *r = t->data;
	if (r->children_gone)
		return;
	sv_info(COMP, "grace_period_expired", "grace period over: killing remaining processes");
	r->killing = true;
	signal_main_group(r, SIGKILL);
	signal_everyone(r, SIGKILL);
	(void)sv_timer_arm(&r->sweep, SV_KILL_SWEEP_MS, SV_KILL_SWEEP_MS);
}

static void on_sweep(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct run *r = t->data;
	if (r->children_gone) {
		(void)sv_timer_disarm(t);
		return;
	}
	signal_everyone(r, SIGKILL); /* catch anything forked since the last sweep */
}

static void on_timeout(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct run *r = t->data;
	if (!r->main_alive)
		return;
	sv_warn(COMP, "timeout_expired", "timeout reached: stopping the main process");
	r->timed_out = true;
	signal_main_group(r, SIGTERM);
	r->stopping = false; /* the timeout's own, shorter grace wins */
	(void)sv_timer_disarm(&r->grace);
	start_grace(r, SV_TIMEOUT_KILL_DELAY_MS);
}

static void on_drain(struct sv_loop *loop, struct sv_timer *t)
{
	struct run *r = t->data;
	sv_debug(COMP, "output_drain_expired", "output still open after all processes exited");
	sv_relay_stop(loop, &r->out);
	sv_relay_stop(loop, &r->err);
	r->outputs_open = 0;
	maybe_finish(r);
}

static void main_exited(struct run *r, const siginfo_t *si)
{
	r->main_alive = false;
	if (si->si_code == CLD_EXITED)
		r->main_code = si->si_status;
	else
		r->main_code = 128 + si->si_status;
	char pid[16], code[16];
	sv_fmt(pid, sizeof(pid), "%d", (int)si->si_pid);
	sv_fmt(code, sizeof(code), "%d", r->main_code);
	sv_log_kv(SV_LOG_INFO, COMP, "main_process_exited", "main process exited",
		  SV_KVS({"pid", pid}, {"code", code},
			 {"signaled", si->si_code == CLD_EXITED ? "false" : "true"}));
	sv_loop_del(&r->loop, &r->pidw);
}

/* Child ownership hook (run.h): a service's own children get their statuses. */
static bool child_claimed(struct run *r, const siginfo_t *si)
{
	const struct sv_run_opts *o = r->opts;
	return o->child_reaped && o->child_reaped(o->services_ctx, si);
}

static bool is_service_child(struct run *r, pid_t pid)
{
	const struct sv_run_opts *o = r->opts;
	return o->is_service_child && o->is_service_child(o->services_ctx, pid);
}

/* Read one /proc/<pid>/task/<tid>/children list; false when it names a sandbox process or
 * cannot be read. */
static bool children_file_only_services(struct run *r, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[4096];
	size_t len = 0;
	bool ok = true;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ok = false;
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		/* Judge every complete pid; keep a partial one for the next read. */
		char *start = buf, *sp;
		while ((sp = strchr(start, ' '))) {
			*sp = '\0';
			unsigned long long pid;
			if (sv_parse_uint(start, 1, 0x7fffffff, &pid) < 0 ||
			    !is_service_child(r, (pid_t)pid))
				ok = false;
			start = sp + 1;
		}
		len = strlen(start);
		memmove(buf, start, len);
		if (n == 0 || !ok)
			break;
		if (len >= sizeof(buf) - 1) {
			ok = false;
			break;
		}
	}
	close(fd);
	return ok && len == 0;
}

/* The same question through every /proc/<pid>/stat (kernels without CONFIG_PROC_CHILDREN). */
static bool stat_scan_only_services(struct run *r)
{
	DIR *d = opendir("/proc");
	if (!d)
		return false;
	pid_t self = getpid();
	bool ok = true;
	struct dirent *de;
	while (ok && (de = readdir(d))) {
		unsigned long long pid;
		if (sv_parse_uint(de->d_name, 1, 0x7fffffff, &pid) < 0)
			continue;
		char path[64], buf[512];
		sv_fmt(path, sizeof(path), "/proc/%llu/stat", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		char *rp = strrchr(buf, ')');
		int ppid;
		if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == self &&
		    !is_service_child(r, (pid_t)pid))
			ok = false;
	}
	closedir(d);
	return ok;
}

/* Every child left is a service's helper (run.h is_service_child). Reads the children lists of
 * every thread of ours, or every process's stat where those lists do not exist. */
static bool only_service_children(struct run *r)
{
	if (!r->opts->is_service_child)
		return false;
	char main_children[64];
	sv_fmt(main_children, sizeof(main_children), "/proc/self/task/%d/children", (int)getpid());
	if (access(main_children, R_OK) != 0)
		return stat_scan_only_services(r);
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return false;
	bool ok = true;
	struct dirent *de;
	while (ok && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[96];
		sv_fmt(path, sizeof(path), "/proc/self/task/%s/children", de->d_name);
		ok = children_file_only_services(r, path);
	}
	closedir(d);
	return ok;
}

static void reap(struct run *r)
{
	bool main_was_alive = r->main_alive;
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD */
		}
		if (si.si_pid == 0)
			break;
		if (si.si_pid == r->main.pid && r->main_alive)
			main_exited(r, &si);
		else if (!child_claimed(r, &si))
			sv_debug(COMP, "orphan_reaped", "reaped pid %d", (int)si.si_pid);
	}
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD)
		r->children_gone = true;
	else if (!r->main_alive && r->main.pid > 0)
		r->children_gone = only_service_children(r);
	/* The main process is gone but others remain (daemons, orphans): they get the same
	 * orderly stop as on SIGTERM. */
	if (main_was_alive && !r->main_alive && !r->children_gone && !r->stopping &&
	    !r->killing) {
		signal_everyone(r, SIGTERM);
		start_grace(r, r->opts->grace_ms);
	}
	maybe_finish(r);
}

static void on_pidfd(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	reap(w->data);
}

static void resize_pty(struct run *r)
{
	struct winsize ws;
	if (r->main.pty_fd >= 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
		(void)ioctl(r->main.pty_fd, TIOCSWINSZ, &ws);
}

static void on_signal(struct sv_loop *loop, struct sv_watch *w, uint32_t events)
{
	(void)loop;
	(void)events;
	struct run *r = w->data;
	struct signalfd_siginfo ssi;
	while (read(w->fd, &ssi, sizeof(ssi)) == (ssize_t)sizeof(ssi)) {
		int sig = (int)ssi.ssi_signo;
		if (sig == SIGCHLD) {
			reap(r);
			continue;
		}
		if (sig == SIGWINCH) {
			resize_pty(r);
			continue;
		}
		if ((sig == SIGTERM || sig == SIGINT) && r->services_pending) {
			/* Everyone is gone already; only the exit report was left. Asked to stop
			 * now, the supervisor stops now. */
			sv_log_kv(SV_LOG_WARN, COMP, "services_wait_interrupted",
				  "signal during the wait for services: exiting now",
				  SV_KVS({"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}));
			r->services_pending = false;
			sv_loop_quit(&r->loop);
			return;
		}
		bool fwd = false;
		for (size_t i = 0; i < SV_ARRAY_SIZE(forwarded); i++)
			fwd = fwd || forwarded[i] == sig;
		if (!fwd)
			continue;
		char s[16], from[16];
		sv_fmt(s, sizeof(s), "%d", sig);
		sv_fmt(from, sizeof(from), "%u", ssi.ssi_pid);
		sv_log_kv(SV_LOG_INFO, COMP, "signal_forwarded", "forwarding signal",
			  SV_KVS({"signal", s}, {"sender_pid", from}));
		if (sig == SIGTERM) {
			/* Shutdown: everyone, not only the main group (setsid daemons escape it). */
			signal_everyone(r, SIGTERM);
			if (!r->is_pid1)
				signal_main_group(r, SIGTERM);
			start_grace(r, r->opts->grace_ms);
		} else if (r->main_alive) {
			signal_main_group(r, sig);
		}
	}
}

/* The end of our stdin reaches a program on the PTY as its VEOF character, as script(1) does.
 * It is sent once the program's output has been quiet for SV_PTY_EOF_QUIET_MS: a shell that
 * switches its terminal to raw mode after the input was queued would lose an EOF sent earlier. */
static void on_pty_stdin_done(struct sv_relay *rel, void *data)
{
	struct run *r = data;
	if (!rel->src_eof)
		return; /* the PTY went away, not our input */
	r->pty_eof_pending = true;
	(void)sv_timer_arm(&r->pty_eof, SV_PTY_EOF_QUIET_MS, 0);
}

static void on_pty_output(struct sv_relay *rel, void *data)
{
	(void)rel;
	struct run *r = data;
	if (r->pty_eof_pending)
		(void)sv_timer_arm(&r->pty_eof, SV_PTY_EOF_QUIET_MS, 0);
}

static void on_pty_eof(struct sv_loop *loop, struct sv_timer *t)
{
	(void)loop;
	struct run *r = t->data;
	if (!r->pty_eof_pending || r->out.done)
		return;
	r->pty_eof_pending = false;
	struct termios tio;
	char c = tcgetattr(r->out.src.fd, &tio) == 0 ? (char)tio.c_cc[VEOF] : 4;
	(void)write(r->out.src.fd, &c, 1);
}

/* Attach tap (run.h main_output): each chunk as it was read, before it is relayed. */
static void on_main_output(struct sv_relay *rel, void *data)
{
	struct run *r = data;
	const struct sv_run_opts *o = r->opts;
	if (o->main_output)
		o->main_output(o->services_ctx, rel == &r->err ? 2 : 1, rel->buf + rel->off,
			       rel->len);
	if (rel->src_is_pty)
		on_pty_output(rel, data);
}

/* Attach input (run.h main_input): the PTY master, or the stdin pipe nobody else feeds. */
static void offer_main_input(struct run *r, bool stdin_forwarded)
{
	const struct sv_run_opts *o = r->opts;
	if (!o->main_input)
		return;
	int src = r->main.pty_fd >= 0 ? r->main.pty_fd : stdin_forwarded ? -1 : r->main.in_fd;
	int fd = src >= 0 ? fcntl(src, F_DUPFD_CLOEXEC, 3) : -1;
	o->main_input(o->services_ctx, fd, r->main.pty_fd >= 0);
}

static void on_output_done(struct sv_relay *rel, void *data)
{
	(void)rel;
	struct run *r = data;
	r->outputs_open--;
	maybe_finish(r);
}

static int exit_code(const struct run *r)
{
	return r->timed_out ? SV_EXIT_TIMEOUT : r->main_code;
}

static void services_done(void *arg)
{
	struct run *r = arg;
	r->services_pending = false;
	sv_loop_quit(&r->loop);
}

static void maybe_finish(struct run *r)
{
	/* Attachments hear of the exit once the main's output is all relayed (run.h main_exit). */
	if (!r->main_alive && r->outputs_open == 0 && !r->main_exit_told && r->main.pid > 0) {
		r->main_exit_told = true;
		if (r->opts->main_exit)
			r->opts->main_exit(r->opts->services_ctx, r->main_code);
	}
	if (r->main_alive || !r->children_gone)
		return;
	if (r->outputs_open > 0) {
		if (!r->drain_armed) {
			r->drain_armed = true;
			(void)sv_timer_arm(&r->drain, SV_DRAIN_MS, 0);
		}
		return;
	}
	if (r->finishing) {
		if (!r->services_pending)
			sv_loop_quit(&r->loop);
		return;
	}
	/* Everything is gone: services that still need the loop (the exit report) get it. */
	r->finishing = true;
	const struct sv_run_opts *o = r->opts;
	r->services_pending = true;
	if (!o->finish || !o->finish(o->services_ctx, exit_code(r), services_done, r)) {
		r->services_pending = false;
		sv_loop_quit(&r->loop);
		return;
	}
	if (r->services_pending)
		sv_debug(COMP, "services_finishing", "waiting for services to finish");
}

/* The supervisor's stdin is forwarded unless it is /dev/null or closed: then the child's stdin
 * stays an open, silent pipe (what OpenShell gives its main process). */
static bool stdin_is_forwardable(void)
{
	struct stat st;
	if (fstat(STDIN_FILENO, &st) < 0)
		return false;
	if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3)
		return false;
	return true;
}

static int output_fd(int fd)
{
	int nfd = sv_stdio_reopen_nonblock(fd, O_WRONLY);
	return nfd >= 0 ? nfd : fd;
}

static void relay_init(struct sv_relay *rel, const char *name, struct run *r)
{
	memset(rel, 0, sizeof(*rel));
	rel->name = name;
	rel->data = r;
}

static int setup_stdio(struct run *r)
{
	int rc;
	offer_main_input(r, stdin_is_forwardable());
	relay_init(&r->out, "stdout", r);
	relay_init(&r->err, "stderr", r);
	relay_init(&r->in, "stdin", r);
	int out = output_fd(STDOUT_FILENO);
	r->out.close_src = true;
	r->out.close_dst = out != STDOUT_FILENO;
	r->out.on_done = on_output_done;
	r->out.on_data = on_main_output;
	r->err.on_data = on_main_output;
	if (r->main.pty_fd >= 0) {
		r->out.src_is_pty = true;
		rc = sv_relay_start(&r->loop, &r->out, r->main.pty_fd, out);
		r->main.pty_fd = -1; /* owned by the relay now */
		if (rc < 0)
			return rc;
		r->outputs_open = 1;
	} else {
		int errfd = output_fd(STDERR_FILENO);
		r->err.close_src = true;
		r->err.close_dst = errfd != STDERR_FILENO;
		r->err.on_done = on_output_done;
		rc = sv_relay_start(&r->loop, &r->out, r->main.out_fd, out);
		r->main.out_fd = -1;
		if (rc < 0)
			return rc;
		rc = sv_relay_start(&r->loop, &r->err, r->main.err_fd, errfd);
		r->main.err_fd = -1;
		if (rc < 0)
			return rc;
		r->outputs_open = 2;
	}
	if (!stdin_is_forwardable())
		return 0;
	int in = sv_stdio_reopen_nonblock(STDIN_FILENO, O_RDONLY);
	r->in.close_src = in >= 0;
	if (in < 0)
		in = STDIN_FILENO;
	r->in.close_dst = true;
	int dst;
	if (r->out.src_is_pty) {
		/* A second fd for the PTY master: epoll registers each fd once per direction. */
		dst = fcntl(r->out.src.fd, F_DUPFD_CLOEXEC, 3);
		r->in.on_done = on_pty_stdin_done;
	} else {
		dst = r->main.in_fd;
		r->main.in_fd = -1;
	}
	if (dst < 0 || sv_relay_start(&r->loop, &r->in, in, dst) < 0) {
		sv_debug(COMP, "stdin_not_forwarded", "stdin is not forwarded");
		if (r->in.close_src)
			close(in);
		if (dst >= 0)
			close(dst);
	}
	return 0;
}

static void tty_make_raw(struct run *r)
{
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &r->saved_tio) < 0)
		return;
	struct termios raw = r->saved_tio;
	cfmakeraw(&raw);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
		r->tty_raw = true;
}

static int run_init(struct run *r, const struct sv_run_opts *o, struct sv_err *err)
{
	memset(r, 0, sizeof(*r));
	r->opts = o;
	r->main.pid = -1;
	r->main.pidfd = r->main.pty_fd = r->main.in_fd = r->main.out_fd = r->main.err_fd = -1;
	r->sigw.fd = r->pidw.fd = -1;
	r->grace.w.fd = r->timeout.w.fd = r->sweep.w.fd = r->drain.w.fd = r->pty_eof.w.fd = -1;
	r->is_pid1 = getpid() == 1;
	if (!r->is_pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		sv_warn(COMP, "subreaper_unavailable",
			"not PID 1 and cannot become a subreaper (%s): orphans escape reaping",
			strerror(errno));
	int rc = sv_loop_init(&r->loop, err);
	if (rc < 0)
		return rc;
	sigset_t mask;
	sigprocmask(SIG_SETMASK, NULL, &mask);
	r->sigw.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (r->sigw.fd < 0)
		return sv_err_set(err, errno, "signalfd: %s", strerror(errno));
	r->sigw.fn = on_signal;
	r->sigw.data = r;
	if ((rc = sv_loop_add(&r->loop, &r->sigw, EPOLLIN)) < 0)
		return sv_err_set(err, rc, "epoll: %s", strerror(-rc));
	if ((rc = sv_timer_init(&r->loop, &r->grace, on_grace, r)) < 0 ||
	    (rc = sv_timer_init(&r->loop, &r->timeout, on_timeout, r)) < 0 ||
	    (rc = sv_timer_init(&r->loop, &r->sweep, on_sweep, r)) < 0 ||
	    (rc = sv_timer_init(&r->loop, &r->drain, on_drain, r)) < 0 ||
	    (rc = sv_timer_init(&r->loop, &r->pty_eof, on_pty_eof, r)) < 0)
		return sv_err_set(err, rc, "timerfd: %s", strerror(-rc));
	return 0;
}

static void run_close(struct run *r)
{
	sv_relay_stop(&r->loop, &r->in);
	sv_relay_stop(&r->loop, &r->out);
	sv_relay_stop(&r->loop, &r->err);
	sv_timer_close(&r->loop, &r->grace);
	sv_timer_close(&r->loop, &r->timeout);
	sv_timer_close(&r->loop, &r->sweep);
	sv_timer_close(&r->loop, &r->drain);
	sv_timer_close(&r->loop, &r->pty_eof);
	sv_loop_del(&r->loop, &r->sigw);
	sv_loop_del(&r->loop, &r->pidw);
	if (r->sigw.fd >= 0)
		close(r->sigw.fd);
	sv_child_close_fds(&r->main);
	sv_log_detach(); /* bounded: at most SV_LOG_EXIT_FLUSH_MS */
	sv_loop_close(&r->loop);
	if (r->tty_raw)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &r->saved_tio);
}

static int run_spawn(struct run *r, struct sv_err *err)
{
	const struct sv_run_opts *o = r->opts;
	struct sv_spawn sp = {
		.argv = o->spec->argv,
		.envp = o->envp,
		.cwd = o->workdir,
		.tty = o->spec->tty,
		.ws = {.ws_row = 24, .ws_col = 80},
		.new_pgrp = true,
		.hook = o->hook,
		.hook_ctx = o->hook_ctx,
	};
	if (sp.tty)
		(void)ioctl(STDIN_FILENO, TIOCGWINSZ, &sp.ws);
	struct sv_spawn_failure fail;
	int rc = sv_spawn_start(&sp, &r->main, &fail, err);
	if (rc < 0)
		return rc;
	r->main_alive = true;
	if (fail.exit_code) {
		sv_log_kv(SV_LOG_ERROR, COMP, "main_process_start_failed", fail.msg,
			  SV_KVS({"argv0", o->spec->argv[0]}));
	} else {
		char pid[16];
		sv_fmt(pid, sizeof(pid), "%d", (int)r->main.pid);
		sv_log_kv(SV_LOG_INFO, COMP, "main_process_started", "main process started",
			  SV_KVS({"pid", pid}, {"argv0", o->spec->argv[0]},
				 {"tty", o->spec->tty ? "true" : "false"},
				 {"source", sv_spec_source_name(o->spec->source)}));
	}
	if (r->main.pidfd >= 0) {
		r->pidw = (struct sv_watch){.fd = r->main.pidfd, .fn = on_pidfd, .data = r};
		(void)sv_loop_add(&r->loop, &r->pidw, EPOLLIN);
	}
	return 0;
}

int sv_run_main(const struct sv_run_opts *o, struct sv_err *err)
{
	struct run *r = calloc(1, sizeof(*r));
	if (!r)
		return sv_err_set(err, ENOMEM, "out of memory");
	int rc = run_init(r, o, err);
	struct sv_err lerr = {0};
	if (rc == 0 && sv_log_attach(&r->loop, &lerr) < 0)
		sv_log_kv(SV_LOG_WARN, COMP, "log_attach_failed",
			  "log lines keep being written directly to stderr",
			  SV_KVS({"error", lerr.msg}));
	if (rc == 0 && o->attach)
		rc = o->attach(o->services_ctx, &r->loop, err);
	if (rc == 0)
		rc = run_spawn(r, err);
	if (rc == 0 && o->main_started && r->main.pid > 0)
		o->main_started(o->services_ctx, r->main.pid);
	if (rc < 0) {
		if (o->detach)
			o->detach(o->services_ctx);
		run_close(r);
		free(r);
		return rc;
	}
	if (o->spec->tty)
		tty_make_raw(r);
	if (setup_stdio(r) < 0)
		sv_warn(COMP, "stdio_relay_failed", "cannot relay the main process's output");
	if (o->timeout_ms)
		(void)sv_timer_arm(&r->timeout, o->timeout_ms, 0);
	reap(r); /* a child that failed to exec may already be gone */

	rc = sv_loop_run(&r->loop);
	if (rc < 0)
		sv_error(COMP, "event_loop_failed", "event loop failed: %s", strerror(-rc));
	int code = exit_code(r);
	char c[16];
	sv_fmt(c, sizeof(c), "%d", code);
	sv_log_kv(SV_LOG_INFO, COMP, "supervisor_exiting", "all processes exited",
		  SV_KVS({"exit_code", c}));
	if (o->detach)
		o->detach(o->services_ctx);
	run_close(r);
	free(r);
	return code;
}
