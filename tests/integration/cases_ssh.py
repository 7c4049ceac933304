"""Cases: the embedded SSH server (contract §9), driven by Debian's real OpenSSH client straight to
the unix socket of the supervisor running as PID 1 in the test rootfs.

The client reaches the socket through a ProxyCommand (a small Python bridge written to the test's
temporary directory), the way `openshell sandbox connect` reaches it through the gateway relay.
Every client has a timeout; every supervisor started here is killed by the harness.
"""

import os
import pty
import select
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

import harness as h
from harness import check
from suite import CTX, start, test

SOCK_INSIDE = "/run/openshell/ssh.sock"
BRIDGE = r"""import os, socket, sys, threading
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
a = sys.argv[1]
s.connect("\0" + a[1:] if a.startswith("@") else a)
def up():
    while True:
        d = os.read(0, 65536)
        if not d:
            break
        s.sendall(d)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while True:
    d = s.recv(65536)
    if not d:
        break
    os.write(1, d)
"""


def ssh_available():
    return shutil.which("ssh") is not None


def bridge_path():
    path = os.path.join(CTX.tmpdir, "ssh-bridge.py")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(BRIDGE)
    return path


def ssh_argv(sock_host, *args, tty=False, opts=()):
    argv = [h.host_tool("ssh"), "-F", "/dev/null"] + list(opts) + [
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            "-o", "ProxyCommand=/usr/bin/python3 %s %s" % (bridge_path(), sock_host)]
    argv.append("-tt" if tty else "-T")
    return argv + ["sandbox@openshell"] + list(args)


def ssh(sock_host, *args, stdin=b"", timeout=30, opts=()):
    """Run the OpenSSH client once: (rc, stdout bytes, stderr bytes)."""
    p = subprocess.run(ssh_argv(sock_host, *args, opts=opts), input=stdin, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class Sandbox:
    """A supervisor as PID 1 with the SSH socket, its main process sleeping."""

    def __init__(self, main=("sleep", "120"), extra=(), env=None, sock=SOCK_INSIDE, stdin=None):
        e = {"OPENSHELL_SSH_SOCKET_PATH": sock}
        e.update(env or {})
        self.run = start(["--workdir", "/sandbox"] + list(extra) + ["--"] + list(main),
                         extra_env=e, stdin=stdin)
        self.sock = sock if sock.startswith("@") else CTX.path(sock)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.listening():
                return
            if self.run.proc.poll() is not None:
                break
            time.sleep(0.02)
        res = self.run.finish(1)
        raise h.Fail("ssh socket never appeared\n" + res.describe())

    def listening(self):
        """The supervisor's socket accepts (a stale one left by an earlier run refuses)."""
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect("\0" + self.sock[1:] if self.sock.startswith("@") else self.sock)
            return True
        except OSError:
            return False
        finally:
            c.close()

    def ssh(self, *args, **kw):
        return ssh(self.sock, *args, **kw)

    def ssh_argv(self, *args, **kw):
        return ssh_argv(self.sock, *args, **kw)

    def close(self):
        self.run.kill()
        return self.run.finish(10)


def needs_ssh():
    if not ssh_available():
        raise h.Fail("the OpenSSH client is missing (apt-get install openssh-client)")


@test()
def ssh_socket_is_0600_in_a_0700_directory_and_a_stale_socket_is_replaced():
    needs_ssh()
    d = CTX.path("/run/openshell")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(CTX.path(SOCK_INSIDE)):
        os.unlink(CTX.path(SOCK_INSIDE))
    stale.bind(CTX.path(SOCK_INSIDE))
    stale.close()
    sb = Sandbox()
    try:
        st = os.lstat(sb.sock)
        check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600,
              "socket mode is %o" % st.st_mode)
        check(stat.S_IMODE(os.stat(d).st_mode) == 0o700, "parent directory is not 0700")
        rc, out, err = sb.ssh("echo", "hello")
        check(rc == 0 and out == b"hello\n", "exec over the replaced socket failed: rc=%d %r %r"
              % (rc, out, err))
    finally:
        sb.close()


@test()
def ssh_exec_returns_exit_code_and_keeps_stderr_separate():
    needs_ssh()
    sb = Sandbox()
    try:
        rc, out, err = sb.ssh("echo out; echo err >&2; exit 7")
        check(rc == 7, "exit status %d, want 7 (err %r)" % (rc, err))
        check(out == b"out\n", "stdout %r" % out)
        check(b"err\n" in err and b"out" not in err, "stderr %r" % err)
        rc, out, _ = sb.ssh("true")
        check(rc == 0 and out == b"", "true gave rc %d" % rc)
    finally:
        sb.close()


@test()
def ssh_exec_runs_as_the_agent_with_the_sandbox_environment():
    needs_ssh()
    sb = Sandbox()
    try:
        rc, out, err = sb.ssh("id -u; pwd; echo S=$OPENSHELL_SANDBOX; echo P=$HTTPS_PROXY;"
                              " echo T=$TERM; grep -E '^(NoNewPrivs|Seccomp|CapEff):' "
                              "/proc/self/status; env | grep -c '^OPENSHELL_SSH' || true")
        lines = out.decode().split("\n")
        check(rc == 0, "rc %d %r" % (rc, err))
        check(lines[0] == "1000", "not the agent's uid: %r" % out)
        check(lines[1] == "/sandbox", "not in the workdir: %r" % out)
        check("S=1" in lines and "P=http://10.200.0.1:3128" in lines, "environment: %r" % out)
        check("T=dumb" in lines, "TERM without a pty should be dumb: %r" % out)
        check("NoNewPrivs:\t1" in out.decode() and "Seccomp:\t2" in out.decode()
              and "CapEff:\t0000000000000000" in out.decode(), "not sandboxed: %r" % out)
        check(lines[-2] == "0", "driver OPENSHELL_* variables leaked: %r" % out)
    finally:
        sb.close()


@test()
def ssh_exec_large_output_arrives_complete_at_exit():
    needs_ssh()
    sb = Sandbox()
    try:
        n = 8 * 1024 * 1024
        rc, out, err = sb.ssh("head -c %d /dev/zero | tr '\\0' x; echo END; echo E >&2" % n,
                              timeout=60)
        check(rc == 0, "rc %d %r" % (rc, err[-300:]))
        check(len(out) == n + 4 and out.endswith(b"xEND\n"), "got %d bytes, want %d"
              % (len(out), n + 4))
        check(err.endswith(b"E\n"), "stderr tail lost: %r" % err[-50:])
    finally:
        sb.close()


@test()
def ssh_exec_stdin_reaches_the_command_and_eof_ends_it():
    needs_ssh()
    sb = Sandbox()
    try:
        data = os.urandom(3 * 1024 * 1024)
        rc, out, err = sb.ssh("cat", stdin=data, timeout=60)
        check(rc == 0 and out == data, "cat round trip: rc %d, %d of %d bytes back"
              % (rc, len(out), len(data)))
        rc, out, err = sb.ssh("wc -c", stdin=b"12345")
        check(rc == 0 and out.strip() == b"5", "wc -c gave %r" % out)
    finally:
        sb.close()


@test()
def ssh_exec_stdin_left_in_libssh_follows_once_the_pipe_grows():
    needs_ssh()
    # The command reads nothing for 3 s: all 512 KiB and the EOF arrive meanwhile and wait in
    # the 64 KiB pipe, the supervisor's buffer and libssh's. Then the pipe grows to 1 MiB, so
    # each write takes all the supervisor offers. The client only waits by now (no output to
    # acknowledge either), so the supervisor must keep pulling the rest from libssh on its own.
    sb = Sandbox()
    try:
        data = os.urandom(512 * 1024)
        try:
            rc, out, err = sb.ssh("/usr/local/bin/pipegrow 3000 1000 > /sandbox/exec-in",
                                  stdin=data, timeout=30)
        except subprocess.TimeoutExpired:
            rc, out, err = None, b"", b""
        with open(CTX.path("/sandbox/exec-in"), "rb") as f:
            got = f.read()
        check(rc == 0 and got == data, "rc %r, the command got %d of %d bytes %r"
              % (rc, len(got), len(data), err[-300:]))
    finally:
        sb.close()


@test()
def ssh_exec_killed_by_a_signal_gets_exit_signal_like_openssh():
    needs_ssh()
    sb = Sandbox()
    try:
        rc, out, err = sb.ssh("echo before; kill -TERM $$; echo after")
        # OpenSSH's client exits 255 on exit-signal (as with OpenSSH's sshd).
        check(rc == 255 and out == b"before\n", "rc %d out %r err %r" % (rc, out, err))
    finally:
        sb.close()


@test()
def ssh_abstract_socket_and_publickey_auth_work():
    needs_ssh()
    name = "@openshell-test-ssh-%d" % os.getpid()
    sb = Sandbox(sock=name)
    try:
        key = os.path.join(CTX.tmpdir, "id_ed25519")
        if not os.path.exists(key):
            subprocess.run([h.host_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key],
                           check=True, timeout=30)
        rc, out, err = sb.ssh("echo", "pk", opts=["-o", "PreferredAuthentications=publickey",
                                                  "-o", "IdentitiesOnly=yes", "-i", key])
        check(rc == 0 and out == b"pk\n", "publickey auth: rc %d %r %r" % (rc, out, err))
        check(not os.path.exists(CTX.path(name)), "an abstract name made a file")
    finally:
        sb.close()


@test()
def ssh_env_requests_are_accepted_and_ignored():
    needs_ssh()
    sb = Sandbox()
    try:
        rc, out, err = sb.ssh("echo ${FOO-unset}", opts=["-o", "SetEnv=FOO=bar"])
        check(rc == 0 and out == b"unset\n", "env request: rc %d %r %r" % (rc, out, err))
    finally:
        sb.close()


def pty_ssh(sb, cols=80, rows=24, args=(), opts=()):
    """OpenSSH's client on a PTY of ours (as a terminal user runs it): (pid, master fd)."""
    import fcntl
    import struct
    import termios
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(h.host_tool("ssh"), ssh_argv(sb.sock, *args, tty=True, opts=opts))
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return pid, fd


def pty_read_until(fd, needle, timeout=15):
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                d = os.read(fd, 65536)
            except OSError:
                break
            if not d:
                break
            buf += d
    return buf


@test()
def ssh_pty_shell_takes_input_and_follows_window_changes():
    needs_ssh()
    import fcntl
    import struct
    import termios
    sb = Sandbox()
    pid = None
    try:
        pid, fd = pty_ssh(sb, cols=100, rows=30)
        os.write(fd, b"echo TTY=$(tty) T=$TERM; stty size\n")
        out = pty_read_until(fd, b"30 100")
        check(b"30 100" in out and b"TTY=/dev/pts/" in out, "first size/tty: %r" % out[-400:])
        # The client's terminal changes size: ssh sends window-change.
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        time.sleep(0.3)
        os.write(fd, b"stty size\n")
        out = pty_read_until(fd, b"50 132")
        check(b"50 132" in out, "window-change not applied: %r" % out[-400:])
        os.write(fd, b"exit 3\n")
        deadline = time.monotonic() + 15
        status = None
        while time.monotonic() < deadline:
            pty_read_until(fd, b"\x00never", 0.2)
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid:
                status = st
                break
        check(status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3,
              "shell exit status not passed on: %r" % status)
        pid = None
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        sb.close()


@test()
def ssh_client_that_stops_reading_stalls_neither_other_sessions_nor_the_main_process():
    needs_ssh()
    sb = Sandbox(main=("sh", "-c", "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.1; done"))
    stalled = None
    try:
        # A client whose stdout nobody reads: its window fills, the server must not block.
        stalled = subprocess.Popen(ssh_argv(sb.sock, "yes"), stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        time.sleep(3)
        check(stalled.poll() is None, "the stalled client ended early")
        t0 = time.monotonic()
        rc, out, err = sb.ssh("echo", "alive", timeout=20)
        took = time.monotonic() - t0
        check(rc == 0 and out == b"alive\n", "second session failed: rc %d %r" % (rc, err))
        check(took < 10, "second session took %.1fs" % took)
        before = sb.run.out.data().count(b"tick")
        time.sleep(1)
        after = sb.run.out.data().count(b"tick")
        check(after > before, "the main process's output stalled (%d -> %d)" % (before, after))
    finally:
        if stalled:
            stalled.kill()
            stalled.wait()
        sb.close()


@test()
def ssh_connections_beyond_the_cap_are_refused_and_logged():
    needs_ssh()
    sb = Sandbox()
    conns = []
    try:
        for _ in range(64):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(10)
            c.connect(sb.sock)
            conns.append(c)
        for c in conns:
            check(c.recv(64).startswith(b"SSH-2.0-"), "no banner below the cap")
        extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        extra.settimeout(10)
        extra.connect(sb.sock)
        check(extra.recv(64) == b"", "connection 65 was not refused")
        extra.close()
        check(sb.run.wait_stderr("too many ssh connections: refused", 5),
              "refusal not logged: %r" % sb.run.err.data()[-600:])
        for c in conns:
            c.close()
        conns = []
        time.sleep(0.5)
        rc, out, _ = sb.ssh("echo", "again")
        check(rc == 0 and out == b"again\n", "server did not recover below the cap")
    finally:
        for c in conns:
            c.close()
        sb.close()


ECHO_SERVER = ("import socket, sys, threading\n"
               "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
               "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
               "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
               "s.listen(8)\n"
               "print('up', flush=True)\n"
               "def serve(c):\n"
               "    while True:\n"
               "        d = c.recv(65536)\n"
               "        if not d:\n"
               "            break\n"
               "        c.sendall(d)\n"
               "    c.close()\n"
               "while True:\n"
               "    c, _ = s.accept()\n"
               "    threading.Thread(target=serve, args=(c,), daemon=True).start()\n")


def start_echo_in_agent_netns(sb, port):
    """An echo service on 127.0.0.1:port inside the agent's network namespace (the sandbox's
    loopback, which the host's loopback is not)."""
    pid = h.wait_for_child(sb.run.host_pid())
    p = subprocess.Popen([h.host_tool("nsenter"), "--net=/proc/%d/ns/net" % pid,
                          "/usr/bin/python3", "-c", ECHO_SERVER, str(port)],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if p.stdout.readline().strip() != b"up":
        p.kill()
        p.wait()
        raise h.Fail("echo service did not start in the agent's namespace")
    return p


@test()
def ssh_direct_tcpip_reaches_a_service_on_the_sandbox_loopback():
    needs_ssh()
    sb = Sandbox()
    echo = None
    fwd = None
    try:
        echo = start_echo_in_agent_netns(sb, 7007)
        data = os.urandom(512 * 1024)
        # ssh -W opens a direct-tcpip channel, as -L does for each connection.
        rc, out, err = sb.ssh(opts=["-W", "127.0.0.1:7007"], stdin=data, timeout=30)
        check(rc == 0 and out == data, "-W 127.0.0.1: rc %d, %d of %d bytes back, %r"
              % (rc, len(out), len(data), err[-300:]))
        rc, out, err = sb.ssh(opts=["-W", "localhost:7007"], stdin=b"hello")
        check(rc == 0 and out == b"hello", "-W localhost: rc %d %r %r" % (rc, out, err))
        # ssh -L: a local port on the host forwarded into the sandbox.
        lport = 20000 + os.getpid() % 20000
        fwd = subprocess.Popen(ssh_argv(sb.sock, opts=["-N", "-o", "ExitOnForwardFailure=yes",
                                                      "-L", "127.0.0.1:%d:127.0.0.1:7007" % lport]),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        got = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and got is None:
            try:
                c = socket.create_connection(("127.0.0.1", lport), timeout=5)
            except OSError:
                time.sleep(0.1)
                continue
            c.sendall(b"through -L")
            c.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                d = c.recv(4096)
                if not d:
                    break
                got += d
            c.close()
        check(got == b"through -L", "ssh -L round trip gave %r" % got)
    finally:
        for p in (fwd, echo):
            if p:
                p.kill()
                p.wait()
        sb.close()


@test()
def ssh_direct_tcpip_to_a_non_loopback_destination_is_refused():
    needs_ssh()
    sb = Sandbox()
    try:
        for dest in ("10.200.0.1:3128", "192.0.2.1:80", "example.com:443", "[::2]:22"):
            rc, out, err = sb.ssh(opts=["-o", "LogLevel=INFO", "-W", dest], stdin=b"x")
            check(rc != 0 and b"administratively prohibited" in err.lower(),
                  "%s not refused as prohibited: rc %d %r" % (dest, rc, err))
        check(sb.run.wait_stderr("ssh direct-tcpip refused", 5), "refusal not logged")
        # Remote forwarding (tcpip-forward) is refused too.
        rc, out, err = sb.ssh("true", opts=["-o", "ExitOnForwardFailure=yes",
                                            "-R", "127.0.0.1:9999:127.0.0.1:22"])
        check(rc != 0, "tcpip-forward was accepted: rc %d %r" % (rc, err))
    finally:
        sb.close()


# A libssh client (Debian's libssh-dev) opening one direct-tcpip channel with a port that does
# not fit 16 bits, which OpenSSH's client refuses to send. usage: fwdclient SOCKET HOST PORT ->
# prints "open" or "refused".
FWDCLIENT = r"""
#include <libssh/libssh.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
int main(int argc, char **argv)
{
	if (argc != 4) return 2;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) return 3;
	ssh_session s = ssh_new();
	ssh_options_set(s, SSH_OPTIONS_FD, &fd);
	ssh_options_set(s, SSH_OPTIONS_HOST, "sandbox");
	ssh_options_set(s, SSH_OPTIONS_USER, "sandbox");
	if (ssh_connect(s) != SSH_OK) return 4;
	if (ssh_userauth_none(s, NULL) != SSH_AUTH_SUCCESS) return 5;
	ssh_channel c = ssh_channel_new(s);
	/* libssh packs the port as a uint32, as the wire format has it. */
	int rc = ssh_channel_open_forward(c, argv[2], atoi(argv[3]), "127.0.0.1", 40000);
	printf("%s\n", rc == SSH_OK ? "open" : "refused");
	return 0;
}
"""


@test()
def ssh_direct_tcpip_port_above_65535_is_refused_not_truncated():
    # 74536 truncated to 16 bits is 9000: a listener there must see nothing.
    needs_ssh()
    exe = os.path.join(CTX.tmpdir, "fwdclient")
    if not os.path.exists(exe):
        with open(exe + ".c", "w") as f:
            f.write(FWDCLIENT)
        p = subprocess.run(["gcc", "-o", exe, exe + ".c", "-lssh"], capture_output=True,
                           timeout=120)
        if p.returncode != 0:
            raise h.Fail("cannot build the libssh test client (libssh-dev): %r" % p.stderr[-500:])
    sb = Sandbox()
    echo = None
    try:
        echo = start_echo_in_agent_netns(sb, 9000)
        p = subprocess.run([exe, sb.sock, "127.0.0.1", "74536"], capture_output=True, timeout=60)
        check(p.returncode == 0 and p.stdout == b"refused\n",
              "port 74536: rc %d %r %r" % (p.returncode, p.stdout, p.stderr))
        check(sb.run.wait_stderr("port out of range", 5), "refusal not logged")
        # The same client reaches the listener at its real port, so the refusal is the port's.
        p = subprocess.run([exe, sb.sock, "127.0.0.1", "9000"], capture_output=True, timeout=60)
        check(p.returncode == 0 and p.stdout == b"open\n",
              "port 9000: rc %d %r %r" % (p.returncode, p.stdout, p.stderr))
    finally:
        if echo:
            echo.kill()
            echo.wait()
        sb.close()


@test()
def ssh_x11_and_agent_forwarding_are_refused():
    needs_ssh()
    sb = Sandbox(extra=["--log-level", "info"])
    try:
        # The client asks for both when DISPLAY and SSH_AUTH_SOCK are set; without xauth it
        # sends a fake cookie. x11-req wants a reply (the client reports the failure);
        # auth-agent-req does not (libssh answers it with a failure, unlogged), so what is
        # asserted for the agent is what the user sees: no agent socket in the session.
        env = dict(os.environ, DISPLAY="localhost:0", SSH_AUTH_SOCK="/nonexistent/agent")
        argv = ssh_argv(sb.sock, 'echo "display=[$DISPLAY] agent=[$SSH_AUTH_SOCK]"',
                        opts=["-o", "ForwardX11=yes", "-o", "ForwardAgent=yes",
                              "-o", "LogLevel=INFO"])
        p = subprocess.run(argv, capture_output=True, timeout=30, env=env)
        check(p.returncode == 0, "ssh failed: rc %d %r" % (p.returncode, p.stderr))
        check(p.stdout.strip() == b"display=[] agent=[]",
              "forwarding was set up in the session: %r" % p.stdout)
        check(b"x11 forwarding request failed" in p.stderr.lower(),
              "the client was not told X11 forwarding failed: %r" % p.stderr)
        check(sb.run.wait_stderr("request:x11-req", 5),
              "the refused x11-req was not logged: %r" % bytes(sb.run.err.buf))
        check(b"subtype:-1" not in bytes(sb.run.err.buf),
              "the accepted ssh-userauth service request was logged as refused")
    finally:
        sb.close()


def client_opts(sock_host):
    return ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            "-o", "ProxyCommand=/usr/bin/python3 %s %s" % (bridge_path(), sock_host)]


def sftp_batch(sb, commands, timeout=60):
    p = subprocess.run([h.host_tool("sftp")] + client_opts(sb.sock) + ["-b", "-",
                                                                        "sandbox@openshell"],
                       input=commands.encode(), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


@test()
def ssh_sftp_put_get_list_mkdir_rename_symlink_remove_as_the_agent():
    needs_ssh()
    sb = Sandbox()
    try:
        src = os.path.join(CTX.tmpdir, "sftp-src.bin")
        back = os.path.join(CTX.tmpdir, "sftp-back.bin")
        data = os.urandom(5 * 1024 * 1024 + 123)
        with open(src, "wb") as f:
            f.write(data)
        if os.path.exists(back):
            os.unlink(back)
        shutil.rmtree(CTX.path("/sandbox/up"), ignore_errors=True)
        rc, out, err = sftp_batch(sb, "mkdir /sandbox/up\n"
                                      "put %s /sandbox/up/a.bin\n"
                                      "rename /sandbox/up/a.bin /sandbox/up/b.bin\n"
                                      "symlink /sandbox/up/b.bin /sandbox/up/link\n"
                                      "ls -l /sandbox/up\n"
                                      "get /sandbox/up/link %s\n"
                                      "put %s /sandbox/up/gone\n"
                                      "rm /sandbox/up/gone\n" % (src, back, src))
        check(rc == 0, "sftp batch failed: rc %d\n%s\n%s" % (rc, out, err))
        host = CTX.path("/sandbox/up/b.bin")
        with open(host, "rb") as f:
            check(f.read() == data, "uploaded file differs")
        with open(back, "rb") as f:
            check(f.read() == data, "downloaded file differs")
        st = os.stat(host)
        check(st.st_uid == 1000 and st.st_gid == 1000,
              "uploaded file owned by %d:%d, not the agent" % (st.st_uid, st.st_gid))
        check(os.stat(CTX.path("/sandbox/up")).st_uid == 1000, "directory not the agent's")
        check(os.readlink(CTX.path("/sandbox/up/link")) == "/sandbox/up/b.bin", "symlink wrong")
        check(not os.path.exists(CTX.path("/sandbox/up/gone")), "rm did not remove")
        check("b.bin" in out and "link" in out and "-rw-" in out, "listing: %r" % out)
        # Errors come back as SFTP status codes the client names.
        rc, out, err = sftp_batch(sb, "get /sandbox/up/absent %s\n" % back)
        check(rc != 0 and "not found" in err, "missing file: rc %d %r" % (rc, err))
    finally:
        sb.close()


@test()
def ssh_sftp_write_outside_the_policy_is_refused_and_writes_nothing():
    needs_ssh()
    sb = Sandbox()
    try:
        src = os.path.join(CTX.tmpdir, "sftp-small.txt")
        with open(src, "w") as f:
            f.write("x\n")
        for target in ("/usr/sftp-escape", "/etc/sftp-escape"):
            if os.path.exists(CTX.path(target)):
                os.unlink(CTX.path(target))
            rc, out, err = sftp_batch(sb, "put %s %s\n" % (src, target))
            check(rc != 0 and "Permission denied" in err,
                  "write to %s not refused: rc %d %r" % (target, rc, err))
            check(not os.path.exists(CTX.path(target)), "%s was written" % target)
        rc, out, err = sftp_batch(sb, "mkdir /etc/sftp-dir\n")
        check(rc != 0 and not os.path.exists(CTX.path("/etc/sftp-dir")), "mkdir in /etc allowed")
        rc, out, err = sftp_batch(sb, "get /root/.profile %s\n" % os.path.join(CTX.tmpdir, "x"))
        check(rc != 0, "read of /root allowed: %r" % err)
    finally:
        sb.close()


@test()
def ssh_scp_copies_both_ways_without_an_sftp_server_in_the_image():
    needs_ssh()
    check(not os.path.exists(CTX.path("/usr/lib/openssh/sftp-server")), "image has sftp-server")
    sb = Sandbox()
    try:
        src = os.path.join(CTX.tmpdir, "scp-src.bin")
        back = os.path.join(CTX.tmpdir, "scp-back.bin")
        data = os.urandom(2 * 1024 * 1024 + 7)
        with open(src, "wb") as f:
            f.write(data)
        scp = [h.host_tool("scp")] + client_opts(sb.sock)
        p = subprocess.run(scp + [src, "sandbox@openshell:/sandbox/scp.bin"], capture_output=True,
                           timeout=60)
        check(p.returncode == 0, "scp up: %r" % p.stderr)
        with open(CTX.path("/sandbox/scp.bin"), "rb") as f:
            check(f.read() == data, "scp up: contents differ")
        p = subprocess.run(scp + ["sandbox@openshell:/sandbox/scp.bin", back],
                           capture_output=True, timeout=60)
        check(p.returncode == 0, "scp down: %r" % p.stderr)
        with open(back, "rb") as f:
            check(f.read() == data, "scp down: contents differ")
        p = subprocess.run(scp + [src, "sandbox@openshell:/usr/bin/scp-escape"],
                           capture_output=True, timeout=60)
        check(p.returncode != 0 and not os.path.exists(CTX.path("/usr/bin/scp-escape")),
              "scp outside the policy allowed")
    finally:
        sb.close()


def battery_verdicts(text):
    """{attempt name: 'ok'/'not ok'} from the escape battery's output."""
    res = {}
    for line in text.splitlines():
        for tag in ("not ok ", "ok "):
            if line.startswith(tag):
                rest = line[len(tag):].split(" - ", 1)
                if len(rest) == 2:
                    name = rest[1].split(" (")[0].split(": ")[0]
                    res[name] = tag.strip()
                break
    return res


@test()
def ssh_exec_escape_battery_matches_the_main_process():
    needs_ssh()
    esc = h.escape_command(CTX.rootfs)
    sb = Sandbox(main=("sh", "-c", "read go; %s; sleep 120" % esc), stdin="pipe")
    probe = None
    try:
        probe = h.start_probe_in_netns_of(h.wait_for_child(sb.run.host_pid()))
        sb.run.stdin_write(b"go\n")
        check(sb.run.wait_stdout(" failed\n", 60), "main battery did not finish")
        main = battery_verdicts(sb.run.out.data().decode(errors="replace"))
        rc, out, err = sb.ssh(esc, timeout=90)
        over_ssh = battery_verdicts(out.decode(errors="replace"))
        # An SSH session must fare exactly as the main process, and no attempt may succeed.
        check(len(main) >= 40 and main == over_ssh,
              "ssh results differ from the main process's: %r" %
              sorted(set(main.items()) ^ set(over_ssh.items()))[:10])
        failed = sorted(k for k, v in over_ssh.items() if v != "ok")
        check(rc == 0 and not failed, "escape attempts succeeded over ssh: %r" % failed[:10])
    finally:
        if probe:
            probe.kill()
            probe.wait()
        sb.close()


class Pipe:
    """Reads a pipe in the background so a test can wait for text."""

    def __init__(self, f):
        self.buf = b""
        self.cond = threading.Condition()
        self.eof = False
        threading.Thread(target=self._run, args=(f,), daemon=True).start()

    def _run(self, f):
        while True:
            d = os.read(f.fileno(), 65536)
            with self.cond:
                if not d:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.buf += d
                self.cond.notify_all()

    def wait(self, needle, timeout=15):
        deadline = time.monotonic() + timeout
        with self.cond:
            while needle not in self.buf and not self.eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return needle in self.buf


def attach(sb, stdin=subprocess.PIPE, opts=()):
    p = subprocess.Popen(ssh_argv(sb.sock, "openshell-main", opts=["-s"] + list(opts)),
                         stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p, Pipe(p.stdout), Pipe(p.stderr)


RO_MSG = b"openshell: canonical main process already has an input owner; attached read-only\n"


MAIN_ATTACH_CMD = ("sh", "-c", "echo ready; echo warn >&2; while read l; do "
                               "[ \"$l\" = quit ] && break; echo \"in:$l\"; done; "
                               "echo bye; exit 3")


def main_attach_scenario(sb, attach_fn):
    """Replay, input lease, read-only second attach, detach, exit status: @sb runs
    MAIN_ATTACH_CMD; @attach_fn() starts an `openshell-main` attach (Popen, out Pipe, err Pipe)
    the way the caller reaches the server (socket or relay)."""
    procs = []
    try:
        check(sb.run.wait_stdout("ready", 10), "main never started")
        owner, out, err = attach_fn()
        procs.append(owner)
        check(out.wait(b"ready\n") and err.wait(b"warn\n"), "no replay: %r %r"
              % (out.buf, err.buf))
        owner.stdin.write(b"one\n")
        owner.stdin.flush()
        check(out.wait(b"in:one\n"), "owner input not delivered: %r" % out.buf)
        # A second writer is attached read-only, told so, and its input goes nowhere.
        second, out2, err2 = attach_fn()
        procs.append(second)
        check(err2.wait(RO_MSG), "read-only notice missing: %r" % err2.buf)
        check(out2.wait(b"ready\n") and out2.wait(b"in:one\n"),
              "read-only attach got no replay: %r" % out2.buf)
        second.stdin.write(b"two\n\x10")
        second.stdin.flush()
        time.sleep(0.2)
        second.stdin.write(b"\x11")  # the detach sequence split across packets
        second.stdin.flush()
        check(second.wait(timeout=10) == 0, "read-only attach did not detach cleanly: %r"
              % err2.buf)
        time.sleep(0.3)
        check(b"in:two" not in out.buf, "read-only input reached the main process")
        # Ctrl-P Ctrl-Q detaches the owner with status 0; the main process keeps running.
        owner.stdin.write(b"\x10\x11")
        owner.stdin.flush()
        check(owner.wait(timeout=10) == 0, "detach did not end the attach with 0")
        check(sb.run.proc.poll() is None, "the main process ended on detach")
        # The lease is free again; the main's exit reaches the attachment as its status.
        last, out3, _ = attach_fn()
        procs.append(last)
        last.stdin.write(b"three\nquit\n")
        last.stdin.flush()
        check(out3.wait(b"bye\n"), "new owner's input not delivered: %r" % out3.buf)
        check(last.wait(timeout=15) == 3 and b"in:three\n" in out3.buf,
              "main exit status not passed on: rc %r %r" % (last.returncode, out3.buf))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


@test()
def ssh_main_attach_replays_output_leases_input_detaches_and_reports_exit():
    needs_ssh()
    sb = Sandbox(main=MAIN_ATTACH_CMD)
    try:
        main_attach_scenario(sb, lambda: attach(sb))
    finally:
        sb.close()


def wait_exit(pid, fd, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pty_read_until(fd, b"\x00never", 0.2)
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid:
            return st
    return None


@test()
def ssh_main_attach_to_a_pty_main_resizes_it_and_types_into_it():
    needs_ssh()
    sb = Sandbox(extra=("--interactive",),
                 main=("sh", "-c", "echo ready; read l; echo \"got:$l\"; stty size; exit 4"))
    pid = None
    try:
        check(sb.run.wait_stdout("ready", 10), "main never started")
        pid, fd = pty_ssh(sb, cols=120, rows=40, args=("openshell-main",), opts=["-s"])
        out = pty_read_until(fd, b"ready")
        check(b"ready" in out, "no replay on the PTY attach: %r" % out)
        time.sleep(0.3)
        os.write(fd, b"hello\r")
        out += pty_read_until(fd, b"40 120")
        check(b"got:hello" in out and b"40 120" in out,
              "input or pty-req size did not reach the main PTY: %r" % out[-300:])
        st = wait_exit(pid, fd)
        check(st is not None and os.WIFEXITED(st) and os.WEXITSTATUS(st) == 4,
              "main exit status not passed to the attach: %r" % st)
        pid = None
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        sb.close()


@test()
def ssh_pty_exec_output_arrives_complete_at_exit():
    needs_ssh()
    sb = Sandbox()
    try:
        p = subprocess.run(ssh_argv(sb.sock, "seq 1 200000; exit 6", tty=True),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        lines = p.stdout.replace(b"\r\n", b"\n").split(b"\n")
        check(p.returncode == 6, "pty exec status %d" % p.returncode)
        check(lines[0] == b"1" and b"200000" in lines[-3:] and len(lines) >= 200000,
              "pty output incomplete: %d lines, tail %r" % (len(lines), lines[-3:]))
    finally:
        sb.close()


def session_ends_on_sigterm(sb):
    """SIGTERM the sandbox under a running session of @sb (socket or relay): the session's process
    is signalled with the rest and the client must get `exit-signal` for it (OpenSSH: status 255
    and, at debug level, "rtype exit-signal"). Returns the supervisor's Result."""
    argv = sb.ssh_argv("echo up; exec sleep 1000", opts=["-o", "LogLevel=DEBUG1"])
    client = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        out, err = Pipe(client.stdout), Pipe(client.stderr)
        check(out.wait(b"up\n"), "session never started: %r" % err.buf[-500:])
        sb.run.signal(signal.SIGTERM)
        try:
            rc = client.wait(timeout=15)
        except subprocess.TimeoutExpired:
            rc = None
        res = sb.result = sb.run.finish(15)
        check(not res.timed_out and res.rc == 143, "supervisor did not stop on SIGTERM", res)
        err.wait(b"\x00never", 1)  # the rest of the client's stderr
        check(rc == 255 and b"rtype exit-signal" in err.buf,
              "the session did not end with an exit-signal: rc %r %r" % (rc, err.buf[-800:]), res)
        return res
    finally:
        if client.poll() is None:
            client.kill()
        client.wait()


@test()
def ssh_sessions_end_with_the_sandbox_on_sigterm():
    needs_ssh()
    sb = Sandbox()
    try:
        session_ends_on_sigterm(sb)
    finally:
        sb.close()


@test()
def ssh_connection_that_never_authenticates_is_closed_after_the_login_grace():
    needs_ssh()
    sb = Sandbox()
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(40)
        c.connect(sb.sock)
        t0 = time.monotonic()
        check(c.recv(64).startswith(b"SSH-2.0-"), "no banner")
        # Say nothing more: the server must give up on its own (20 s, docs/ssh.md), while
        # serving others meanwhile.
        rc, out, _ = sb.ssh("echo", "meanwhile")
        check(rc == 0 and out == b"meanwhile\n", "a silent client blocked another one")
        data = b""
        try:
            while True:
                d = c.recv(4096)
                if not d:
                    break
                data += d
        except socket.timeout:
            raise h.Fail("the silent connection was still open after 40 s")
        took = time.monotonic() - t0
        check(15 <= took <= 30, "closed after %.1fs, want about 20 s" % took)
        c.close()
    finally:
        sb.close()


# A libssh client (Debian's libssh-dev) for what OpenSSH's client cannot send: `signal`.
# usage: sigclient SOCKET COMMAND|subsystem:NAME SIGNAL -> waits for "up" in the output, sends
# SIGNAL, prints "exit-signal NAME" or "exit-status N".
SIGCLIENT = r"""
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
static char sig[32];
static int status = -1;
static void on_sig(ssh_session s, ssh_channel c, const char *name, int core, const char *msg,
		   const char *lang, void *u)
{ (void)s; (void)c; (void)core; (void)msg; (void)lang; (void)u;
  snprintf(sig, sizeof(sig), "%s", name); }
static void on_status(ssh_session s, ssh_channel c, int st, void *u)
{ (void)s; (void)c; (void)u; status = st; }
int main(int argc, char **argv)
{
	if (argc != 4) return 2;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) return 3;
	ssh_session s = ssh_new();
	ssh_options_set(s, SSH_OPTIONS_FD, &fd);
	ssh_options_set(s, SSH_OPTIONS_HOST, "sandbox");
	ssh_options_set(s, SSH_OPTIONS_USER, "sandbox");
	if (ssh_connect(s) != SSH_OK) { fprintf(stderr, "%s\n", ssh_get_error(s)); return 4; }
	if (ssh_userauth_none(s, NULL) != SSH_AUTH_SUCCESS) return 5;
	ssh_channel c = ssh_channel_new(s);
	struct ssh_channel_callbacks_struct cb = {.channel_exit_signal_function = on_sig,
						  .channel_exit_status_function = on_status};
	ssh_callbacks_init(&cb);
	ssh_set_channel_callbacks(c, &cb);
	if (ssh_channel_open_session(c) != SSH_OK) return 6;
	int rq = strncmp(argv[2], "subsystem:", 10) == 0
			 ? ssh_channel_request_subsystem(c, argv[2] + 10)
			 : ssh_channel_request_exec(c, argv[2]);
	if (rq != SSH_OK) return 7;
	char buf[256];
	int n = ssh_channel_read_timeout(c, buf, sizeof(buf) - 1, 0, 10000);
	if (n <= 0) return 8;
	buf[n] = 0;
	if (!strstr(buf, "up")) return 9;
	if (ssh_channel_request_send_signal(c, argv[3]) != SSH_OK) return 10;
	while (ssh_channel_read_timeout(c, buf, sizeof(buf), 0, 10000) > 0)
		;
	(void)ssh_channel_get_exit_status(c); /* handles packets until exit or close */
	if (sig[0]) printf("exit-signal %s\n", sig);
	else printf("exit-status %d\n", status);
	return 0;
}
"""


def sigclient():
    exe = os.path.join(CTX.tmpdir, "sigclient")
    if not os.path.exists(exe):
        src = exe + ".c"
        with open(src, "w") as f:
            f.write(SIGCLIENT)
        p = subprocess.run(["gcc", "-o", exe, src, "-lssh"], capture_output=True, timeout=120)
        if p.returncode != 0:
            raise h.Fail("cannot build the libssh test client (libssh-dev): %r" % p.stderr[-500:])
    return exe


@test()
def ssh_signal_request_reaches_the_session_process():
    needs_ssh()
    exe = sigclient()
    sb = Sandbox()
    try:
        p = subprocess.run([exe, sb.sock, "echo up; exec sleep 100", "INT"], capture_output=True,
                           timeout=60)
        check(p.returncode == 0 and p.stdout == b"exit-signal INT\n",
              "signal INT: rc %d %r %r" % (p.returncode, p.stdout, p.stderr))
        # A shell that traps the signal exits with its own status instead.
        p = subprocess.run([exe, sb.sock, "trap 'exit 42' TERM; echo up; while :; do sleep 0.1;"
                            " done", "TERM"], capture_output=True, timeout=60)
        check(p.returncode == 0 and p.stdout == b"exit-status 42\n",
              "signal TERM to a trapping shell: rc %d %r %r" % (p.returncode, p.stdout, p.stderr))
    finally:
        sb.close()



@test()
def ssh_main_attach_signal_reaches_the_main_process_group():
    needs_ssh()
    exe = sigclient()
    sb = Sandbox(main=("sh", "-c", "echo up; exec sleep 100"))
    try:
        check(sb.run.wait_stdout("up", 10), "main never started")
        p = subprocess.run([exe, sb.sock, "subsystem:openshell-main", "TERM"],
                           capture_output=True, timeout=60)
        check(p.returncode == 0 and p.stdout == b"exit-status 143\n",
              "main attach signal: rc %d %r %r" % (p.returncode, p.stdout, p.stderr))
        res = sb.run.finish(15)
        check(res.rc == 143, "the supervisor did not exit with the main's status", res)
    finally:
        sb.close()


@test()
def ssh_main_attach_input_of_a_mebibyte_arrives_intact():
    needs_ssh()
    import base64
    n = 1024 * 1024
    sb = Sandbox(main=("sh", "-c", "echo up; head -c %d > /sandbox/attach-in; echo done; exit 9"
                       % n))
    try:
        check(sb.run.wait_stdout("up", 10), "main never started")
        data = base64.b64encode(os.urandom(n))[:n]  # no Ctrl-P in it
        p = subprocess.run(ssh_argv(sb.sock, "openshell-main", opts=["-s"]), input=data,
                           capture_output=True, timeout=60)
        check(p.returncode == 9 and b"done\n" in p.stdout,
              "attach: rc %d %r %r" % (p.returncode, p.stdout[-200:], p.stderr[-300:]))
        with open(CTX.path("/sandbox/attach-in"), "rb") as f:
            check(f.read() == data, "the main process got different input")
    finally:
        sb.close()


@test()
def ssh_main_attach_input_still_buffered_at_the_clients_eof_reaches_a_slow_main():
    needs_ssh()
    # The main reads nothing for 3 s: the client's 512 KiB and its EOF arrive meanwhile, so at
    # the EOF the pipe is full and the rest waits in the supervisor (its buffer and libssh's).
    # The EOF only ends the lease once all of that is delivered.
    n = 512 * 1024
    sb = Sandbox(main=("sh", "-c", "echo up; sleep 3; head -c %d > /sandbox/slow-in; echo done; "
                       "exit 9" % n))
    try:
        check(sb.run.wait_stdout("up", 10), "main never started")
        data = os.urandom(n).replace(b"\x10", b"p")  # no Ctrl-P in it
        try:
            p = subprocess.run(ssh_argv(sb.sock, "openshell-main", opts=["-s"]), input=data,
                               capture_output=True, timeout=30)
            rc, out = p.returncode, p.stdout
        except subprocess.TimeoutExpired:
            rc, out = None, b""
        with open(CTX.path("/sandbox/slow-in"), "rb") as f:
            got = f.read()
        check(rc == 9 and b"done\n" in out and got == data,
              "attach: rc %r, the main got %d of %d bytes" % (rc, len(got), n))
    finally:
        sb.close()


@test()
def ssh_main_attach_that_falls_behind_the_replay_ring_is_told_and_closed():
    needs_ssh()
    sb = Sandbox(main=("sh", "-c", "echo up; read go; head -c 16777216 /dev/zero; echo end; "
                       "exec sleep 100"), stdin="pipe")
    p = None
    try:
        check(sb.run.wait_stdout("up", 10), "main never started")
        # An attachment that does not read while the main writes 16 MiB: its window closes,
        # the 1 MiB ring moves on without it.
        p = subprocess.Popen(ssh_argv(sb.sock, "openshell-main", opts=["-s"]),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        time.sleep(1)
        sb.run.stdin_write(b"go\n")
        check(sb.run.wait_stdout("end", 30), "main output stalled behind a stuck attachment")
        out, err = p.communicate(timeout=30)
        check(b"openshell: attachment fell behind by " in err and
              b" output chunks; reconnect for buffered output\n" in err,
              "no lag notice: rc %r %r" % (p.returncode, err[-300:]))
        check(p.returncode == 0 and len(out) < 16 * 1024 * 1024,
              "lagging attach: rc %r, %d bytes" % (p.returncode, len(out)))
    finally:
        if p and p.poll() is None:
            p.kill()
            p.wait()
        sb.close()
