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
s.connect(sys.argv[1])
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


def ssh_argv(sock_host, *args, tty=False):
    argv = [h.host_tool("ssh"), "-F", "/dev/null",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            "-o", "ProxyCommand=/usr/bin/python3 %s %s" % (bridge_path(), sock_host)]
    argv.append("-tt" if tty else "-T")
    return argv + ["sandbox@openshell"] + list(args)


def ssh(sock_host, *args, stdin=b"", timeout=30):
    """Run the OpenSSH client once: (rc, stdout bytes, stderr bytes)."""
    p = subprocess.run(ssh_argv(sock_host, *args), input=stdin, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class Sandbox:
    """A supervisor as PID 1 with the SSH socket, its main process sleeping."""

    def __init__(self, main=("sleep", "120"), extra=(), env=None):
        e = {"OPENSHELL_SSH_SOCKET_PATH": SOCK_INSIDE}
        e.update(env or {})
        self.run = start(["--workdir", "/sandbox"] + list(extra) + ["--"] + list(main),
                         extra_env=e)
        self.sock = CTX.path(SOCK_INSIDE)
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
            c.connect(self.sock)
            return True
        except OSError:
            return False
        finally:
            c.close()

    def ssh(self, *args, **kw):
        return ssh(self.sock, *args, **kw)

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
def ssh_exec_killed_by_a_signal_gets_exit_signal_like_openssh():
    needs_ssh()
    sb = Sandbox()
    try:
        rc, out, err = sb.ssh("echo before; kill -TERM $$; echo after")
        # OpenSSH's client exits 255 on exit-signal (as with OpenSSH's sshd).
        check(rc == 255 and out == b"before\n", "rc %d out %r err %r" % (rc, out, err))
    finally:
        sb.close()
