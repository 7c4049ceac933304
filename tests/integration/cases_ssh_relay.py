"""Cases: the embedded SSH server reached the way the OpenShell CLI reaches it, through the gateway:
Debian's OpenSSH client whose ProxyCommand (tests/gateway/ssh_proxy.py) gets a fresh RelayOpen(ssh)
from the test gateway for each connection and bridges to that relay's RelayStream, into the real
binary running as PID 1 in gateway mode with the gateway's policy and provider environment.

Nothing here touches the socket directly: every byte goes ssh -> test gateway -> HTTP/2 ->
supervisor relay -> unix socket -> SSH server, and back.
"""

import hashlib
import os
import re
import pty
import select
import signal
import subprocess
import sys
import time

import harness as h
from harness import check, rss_kib
from suite import CTX, REPO, start, test
from cases_ssh import (MAIN_ATTACH_CMD, SOCK_INSIDE, Pipe, battery_verdicts, main_attach_scenario,
                       needs_ssh, session_ends_on_sigterm, pty_read_until, ssh as ssh_to_socket,
                       start_echo_in_agent_netns, wait_exit)

sys.path.insert(0, os.path.join(REPO, "tests", "gateway"))
try:
    import gateway as g  # noqa: E402
    from ssh_proxy import SshRelays  # noqa: E402
    WHY_NO_GATEWAY = None
except Exception as e:  # python3-grpcio or protoc missing: every case here fails saying so
    g = None
    WHY_NO_GATEWAY = "the test gateway cannot be imported: %s: %s" % (type(e).__name__, e)

SANDBOX_ID = "sb-ssh-relay"
# The gateway's policy: /opt (which the restrictive default leaves out) readable, so a session
# that can read /opt/secret runs under this policy and no other.
POLICY = {"filesystem": {"include_workdir": False,
                         "read_only": ["/usr", "/proc", "/dev/urandom", "/etc", "/opt"],
                         "read_write": ["/sandbox", "/tmp", "/dev/null"]}}


class RelaySandbox:
    """A supervisor as PID 1 in gateway mode (endpoint, sandbox id, SSH socket), its gateway, and
    a relay dispatcher for the client's ProxyCommand."""

    def __init__(self, main=("sleep", "120"), provider_env=None, policy=None):
        if g is None:
            raise h.Fail(WHY_NO_GATEWAY)
        self.gw = g.Gateway(sandbox_id=SANDBOX_ID)
        self.relays = None
        self.run = None
        self.result = None
        try:
            self.gw.set_policy(policy or POLICY)
            self.gw.provider_env = dict(provider_env or {})
            env = {"OPENSHELL_ENDPOINT": self.gw.endpoint, "OPENSHELL_SANDBOX_ID": SANDBOX_ID,
                   "OPENSHELL_SSH_SOCKET_PATH": SOCK_INSIDE}
            self.run = start(["--workdir", "/sandbox", "--"] + list(main), extra_env=env)
            try:
                self.gw.wait_event("ConnectSupervisor", "hello", timeout=15)
            except Exception:
                raise h.Fail("no session hello\n" + self.run.finish(1).describe())
            self.relays = SshRelays(self.gw)
        except BaseException:
            self.close()
            raise

    def ssh_argv(self, *args, opts=(), tty=False):
        return ([h.host_tool("ssh")] + list(opts) + self.relays.ssh_opts() +
                ["-tt" if tty else "-T", "sandbox@openshell"] + list(args))

    def ssh(self, *args, stdin=b"", timeout=30, opts=()):
        """One OpenSSH client run through a fresh relay: (rc, stdout, stderr)."""
        p = subprocess.run(self.ssh_argv(*args, opts=opts), input=stdin, capture_output=True,
                           timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def sftp_batch(self, commands, timeout=60):
        p = subprocess.run([h.host_tool("sftp")] + self.relays.ssh_opts() +
                           ["-b", "-", "sandbox@openshell"], input=commands.encode(),
                           capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def opened(self):
        """(relays opened, how many the supervisor accepted, RelayStreams it started)."""
        n_ok = sum(1 for r in self.relays.results if r.get("success") is True)
        streams = len(self.gw.events("RelayStream", "call"))
        return len(self.relays.relays), n_ok, streams

    def close(self):
        """Kill the supervisor, stop the gateway (again: nothing); the supervisor's Result."""
        if self.run and self.result is None:
            self.run.kill()
            self.result = self.run.finish(10)
        if self.relays:
            self.relays.close()
        if self.gw:
            self.gw.stop()
            self.gw = None
        return self.result


@test()
def ssh_relay_exec_exit_code_and_separate_stderr_one_relay_per_connection():
    needs_ssh()
    sb = RelaySandbox()
    try:
        rc, out, err = sb.ssh("echo out; echo err >&2; exit 7")
        check(rc == 7, "exit status %d, want 7 (err %r)" % (rc, err))
        check(out == b"out\n", "stdout %r" % out)
        check(b"err\n" in err and b"out" not in err, "stderr %r" % err)
        rc, out, err = sb.ssh("true")
        check(rc == 0 and out == b"", "true gave rc %d %r" % (rc, err))
        n, n_ok, streams = sb.opened()
        check(n == 2 and n_ok == 2 and streams == 2,
              "want one accepted relay and RelayStream per ssh run: %d opened, %d accepted, "
              "%d streams" % (n, n_ok, streams))
        for rel in sb.relays.relays:
            check(rel.done.wait(10), "a relay did not end with its ssh client")
            check(rel.to_supervisor > 0 and rel.from_supervisor > 0,
                  "the SSH bytes did not cross the relay (%d up, %d down)"
                  % (rel.to_supervisor, rel.from_supervisor))
    finally:
        sb.close()


@test()
def ssh_relay_sftp_put_get_byte_for_byte_owned_by_the_agent():
    needs_ssh()
    sb = RelaySandbox()
    try:
        src = os.path.join(CTX.tmpdir, "relay-sftp-src.bin")
        back = os.path.join(CTX.tmpdir, "relay-sftp-back.bin")
        data = os.urandom(4 * 1024 * 1024 + 321)
        with open(src, "wb") as f:
            f.write(data)
        for p in (back, CTX.path("/sandbox/relay.bin")):
            if os.path.exists(p):
                os.unlink(p)
        rc, out, err = sb.sftp_batch("put %s /sandbox/relay.bin\n" % src)
        check(rc == 0, "sftp put failed: rc %d\n%s\n%s" % (rc, out, err))
        rc, out, err = sb.sftp_batch("get /sandbox/relay.bin %s\n" % back)
        check(rc == 0, "sftp get failed: rc %d\n%s\n%s" % (rc, out, err))
        host = CTX.path("/sandbox/relay.bin")
        with open(host, "rb") as f:
            check(f.read() == data, "uploaded file differs")
        with open(back, "rb") as f:
            check(f.read() == data, "downloaded file differs")
        st = os.stat(host)
        check(st.st_uid == 1000 and st.st_gid == 1000,
              "uploaded file owned by %d:%d, not the agent" % (st.st_uid, st.st_gid))
        # The gateway's policy binds sftp too: /etc is read-only there.
        rc, out, err = sb.sftp_batch("put %s /etc/relay-escape\n" % src)
        check(rc != 0 and "Permission denied" in err, "write to /etc not refused: %r" % err)
        check(not os.path.exists(CTX.path("/etc/relay-escape")), "/etc/relay-escape written")
        n, n_ok, _ = sb.opened()
        check(n == 3 and n_ok == 3, "%d relays for 3 sftp runs (%d accepted)" % (n, n_ok))
        check(sb.relays.relays[0].to_supervisor > len(data) and
              sb.relays.relays[1].from_supervisor > len(data),
              "the file did not cross the relays")
    finally:
        sb.close()


def seq_bytes(n):
    return b"".join(b"%d\n" % i for i in range(1, n + 1))


@test()
def ssh_relay_large_output_arrives_complete_and_in_order():
    needs_ssh()
    sb = RelaySandbox()
    try:
        n = 4500000  # 34.9 MB of distinct lines: a lost, doubled or reordered chunk shows
        want = seq_bytes(n)
        rc, out, err = sb.ssh("seq 1 %d; echo END >&2; exit 3" % n, timeout=180)
        check(rc == 3, "rc %d %r" % (rc, err[-300:]))
        check(len(out) == len(want) and
              hashlib.sha256(out).digest() == hashlib.sha256(want).digest(),
              "got %d bytes, want %d (tail %r)" % (len(out), len(want), out[-30:]))
        check(err.endswith(b"END\n"), "stderr tail lost: %r" % err[-50:])
    finally:
        sb.close()


@test()
def ssh_relay_client_that_stops_reading_stalls_neither_another_relay_nor_the_main_process():
    needs_ssh()
    sb = RelaySandbox(main=("sh", "-c", "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.1;"
                                        " done"))
    stalled = None
    try:
        pid = sb.run.host_pid()
        before = rss_kib(pid)
        # Relay 1: a client whose stdout nobody reads. Its pipe, the bridge's socket, the
        # gateway's stream and the supervisor's relay fill up; the server must not block.
        stalled = subprocess.Popen(sb.ssh_argv("yes"), stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        time.sleep(4)
        check(stalled.poll() is None, "the stalled client ended early")
        stuck = sb.relays.relays[0]
        check(stuck.from_supervisor > 0 and not stuck.done.is_set(),
              "the stalled relay is not open and carrying output")
        # Relay 2, while relay 1 is stuck.
        t0 = time.monotonic()
        rc, out, err = sb.ssh("echo", "alive", timeout=20)
        took = time.monotonic() - t0
        check(rc == 0 and out == b"alive\n", "second relay's session failed: rc %d %r"
              % (rc, err))
        check(took < 10, "second relay's session took %.1fs" % took)
        ticks = sb.run.out.data().count(b"tick")
        time.sleep(1)
        check(sb.run.out.data().count(b"tick") > ticks, "the main process's output stalled")
        check(sb.run.proc.poll() is None, "the supervisor ended")
        peak = rss_kib(pid)
        print("# stalled ssh relay: %.1f MiB got out before back-pressure, supervisor RSS "
              "%d -> %d KiB" % (stuck.from_supervisor / 1048576, before, peak), flush=True)
        check(peak - before < 16 * 1024, "supervisor RSS grew %d KiB behind a stalled relay"
              % (peak - before))
        # The stalled client reads again: its session is intact and flows.
        got = 0
        deadline = time.monotonic() + 15
        while got < 4 << 20 and time.monotonic() < deadline:
            r, _, _ = select.select([stalled.stdout], [], [], 0.5)
            if r:
                d = os.read(stalled.stdout.fileno(), 1 << 16)
                if not d:
                    break
                got += len(d)
        check(got >= 4 << 20 and stalled.poll() is None,
              "the stalled session did not resume: %d bytes" % got)
    finally:
        if stalled:
            stalled.kill()
            stalled.wait()
        sb.close()


@test()
def ssh_relay_session_gets_the_gateway_policy_provider_env_and_proxy_variables():
    needs_ssh()
    secret = "pv-relay-%d" % os.getpid()
    sb = RelaySandbox(provider_env={"PROVIDER_SECRET": secret, "OPENSHELL_SANDBOX_TOKEN": "leak"})
    try:
        rc, out, err = sb.ssh("id -u; echo v=$PROVIDER_SECRET; echo t=${OPENSHELL_SANDBOX_TOKEN-none};"
                              " echo P=$HTTPS_PROXY; echo p=$http_proxy; echo N=$NO_PROXY;"
                              " cat /opt/secret")
        lines = out.decode().split("\n")
        check(rc == 0, "rc %d %r %r" % (rc, out, err))
        check(lines[0] == "1000", "not the agent: %r" % out)
        check(any(re.fullmatch(r"v=openshell:resolve:env:(v[0-9]+_)?PROVIDER_SECRET", l)
                  for l in lines),
              "provider variable missing or not its placeholder in the SSH session: %r" % out)
        check(secret not in out.decode(), "the provider value reached the SSH session: %r" % out)
        check("t=none" in lines, "a stripped provider variable reached the session: %r" % out)
        check("P=http://10.200.0.1:3128" in lines and "p=http://10.200.0.1:3128" in lines,
              "proxy variables: %r" % out)
        check("N=127.0.0.1,localhost,::1" in lines, "NO_PROXY: %r" % out)
        check("secret" in lines, "the gateway's policy (/opt readable) is not the session's: %r"
              % out)
        req = sb.gw.events("GetSandboxProviderEnvironment", "message")
        check(req and req[0]["message"].get("sandbox_id") == SANDBOX_ID,
              "the provider environment was not asked for this sandbox: %r" % req)
        res = sb.close()
        check(secret not in res.err, "a provider value was logged", res)
    finally:
        sb.close()


@test()
def ssh_relay_scp_both_ways_and_forwarding_to_the_sandbox_loopback():
    needs_ssh()
    sb = RelaySandbox()
    echo = None
    try:
        src = os.path.join(CTX.tmpdir, "relay-scp-src.bin")
        back = os.path.join(CTX.tmpdir, "relay-scp-back.bin")
        data = os.urandom(1024 * 1024 + 99)
        with open(src, "wb") as f:
            f.write(data)
        scp = [h.host_tool("scp")] + sb.relays.ssh_opts()
        p = subprocess.run(scp + [src, "sandbox@openshell:/sandbox/relay-scp.bin"],
                           capture_output=True, timeout=60)
        check(p.returncode == 0, "scp up: %r" % p.stderr)
        p = subprocess.run(scp + ["sandbox@openshell:/sandbox/relay-scp.bin", back],
                           capture_output=True, timeout=60)
        check(p.returncode == 0, "scp down: %r" % p.stderr)
        for path in (CTX.path("/sandbox/relay-scp.bin"), back):
            with open(path, "rb") as f:
                check(f.read() == data, "%s differs" % path)
        # direct-tcpip (ssh -W, as each ssh -L connection) inside one relayed connection.
        echo = start_echo_in_agent_netns(sb, 7017)
        blob = os.urandom(256 * 1024)
        rc, out, err = sb.ssh(opts=["-W", "127.0.0.1:7017"], stdin=blob, timeout=30)
        check(rc == 0 and out == blob, "-W through the relay: rc %d, %d of %d bytes, %r"
              % (rc, len(out), len(blob), err[-300:]))
        rc, out, err = sb.ssh(opts=["-o", "LogLevel=INFO", "-W", "10.200.0.1:3128"], stdin=b"x")
        check(rc != 0 and b"administratively prohibited" in err.lower(),
              "non-loopback forward not refused through the relay: rc %d %r" % (rc, err))
    finally:
        if echo:
            echo.kill()
            echo.wait()
        sb.close()


@test()
def ssh_relay_pty_shell_follows_window_changes_and_passes_its_exit_status():
    needs_ssh()
    import fcntl
    import struct
    import termios
    sb = RelaySandbox()
    pid = None
    try:
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execv(h.host_tool("ssh"), sb.ssh_argv(tty=True))
            finally:
                os._exit(127)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.write(fd, b"echo TTY=$(tty); stty size\n")
        out = pty_read_until(fd, b"30 100", 20)
        check(b"30 100" in out and b"TTY=/dev/pts/" in out, "pty through the relay: %r"
              % out[-400:])
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        time.sleep(0.3)
        os.write(fd, b"stty size\n")
        out = pty_read_until(fd, b"50 132")
        check(b"50 132" in out, "window-change not applied through the relay: %r" % out[-400:])
        os.write(fd, b"exit 3\n")
        st = wait_exit(pid, fd)
        check(st is not None and os.WIFEXITED(st) and os.WEXITSTATUS(st) == 3,
              "shell exit status not passed on: %r" % st)
        pid = None
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        sb.close()


@test()
def ssh_relay_main_attach_replays_leases_input_detaches_and_reports_exit():
    needs_ssh()
    sb = RelaySandbox(main=MAIN_ATTACH_CMD)

    def attach():
        p = subprocess.Popen(sb.ssh_argv("openshell-main", opts=["-s"]), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return p, Pipe(p.stdout), Pipe(p.stderr)

    try:
        main_attach_scenario(sb, attach)
    finally:
        sb.close()


@test()
def ssh_relay_session_ends_with_the_sandbox_and_still_gets_its_exit_signal():
    needs_ssh()
    sb = RelaySandbox()
    try:
        # The exit-signal must cross the relay before the supervisor ends the gateway session
        # for the exit report, and the report must still be sent.
        res = session_ends_on_sigterm(sb)
        reports = sb.gw.events("ReportMainProcessExit", "message")
        check(reports, "the exit report was not sent", res)
    finally:
        sb.close()


@test()
def ssh_relay_exec_escape_battery_matches_the_socket_and_nothing_escapes():
    needs_ssh()
    esc = h.escape_command(CTX.rootfs)
    # The gateway's policy without /opt, which the battery expects to be unreadable.
    pol = {"filesystem": dict(POLICY["filesystem"],
                              read_only=[p for p in POLICY["filesystem"]["read_only"]
                                         if p != "/opt"])}
    sb = RelaySandbox(policy=pol)
    probe = None
    try:
        probe = h.start_probe_in_netns_of(h.wait_for_child(sb.run.host_pid()))
        rc, out, err = sb.ssh(esc, timeout=90)
        relayed = battery_verdicts(out.decode(errors="replace"))
        rc_s, out_s, err_s = ssh_to_socket(CTX.path(SOCK_INSIDE), esc, timeout=90)
        direct = battery_verdicts(out_s.decode(errors="replace"))
        # A relayed session is the same session: the same verdict for every attempt, and no
        # attempt succeeds.
        check(len(relayed) >= 40 and relayed == direct,
              "relayed results differ from the socket's: %r" %
              sorted(set(relayed.items()) ^ set(direct.items()))[:10])
        failed = sorted(k for k, v in relayed.items() if v != "ok")
        check(rc == 0 and not failed, "escape attempts succeeded through the relay: %r\n%s" %
              (failed[:10], err.decode(errors="replace")[-500:]))
    finally:
        if probe:
            probe.kill()
            probe.wait()
        sb.close()
