"""Gateway relay benchmark: the same client through a supervisor relay (test gateway ->
RelayStream -> supervisor -> TCP target in the agent's namespace) and through a plain TCP relay
in the same gateway process, in one invocation, reported as ratios (never a pass/fail verdict).

  sudo /usr/bin/python3 bench/gateway.py build/supervisor [MiB]

The supervisor runs on the host (not PID 1) with the Python test gateway (tests/gateway/) on
127.0.0.1; its agent is a sink/echo server on the agent's loopback. An identical server on the
host's loopback is the plain relay's target. Reports: throughput ratio, supervisor CPU seconds
per GiB relayed, supervisor RSS idle and with 100 open relays, binary size.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "gateway"))
import gateway as g  # noqa: E402

# Port 7001: "N\n" then N bytes, answered with "ok\n" once all arrived. Port 7000: echo.
SERVERS = r"""
import socket, socketserver, sys, threading
class Sink(socketserver.BaseRequestHandler):
    def handle(self):
        f = self.request.makefile("rb")
        n = int(f.readline())
        while n > 0:
            d = f.read1(min(n, 1 << 20))
            if not d: return
            n -= len(d)
        self.request.sendall(b"ok\n")
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(4096)
            if not d: break
            self.request.sendall(d)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
base = int(sys.argv[1])
s = socketserver.ThreadingTCPServer(("127.0.0.1", base + 1), Sink)
e = socketserver.ThreadingTCPServer(("127.0.0.1", base), Echo)
threading.Thread(target=s.serve_forever, daemon=True).start()
print("up", flush=True)
e.serve_forever()
"""


def push(port, mib):
    s = socket.create_connection(("127.0.0.1", port))
    chunk = b"x" * (1 << 20)
    t0 = time.monotonic()
    s.sendall(b"%d\n" % (mib << 20))
    for _ in range(mib):
        s.sendall(chunk)
    ok = s.recv(3) == b"ok\n"
    secs = time.monotonic() - t0
    s.close()
    return secs, ok


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


def main():
    sup = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/supervisor")
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    py = os.path.realpath(sys.executable)
    tmp = tempfile.mkdtemp(prefix="sv-gwbench-")
    os.chmod(tmp, 0o755)
    script = os.path.join(tmp, "servers.py")
    with open(script, "w") as f:
        f.write(SERVERS)
    os.chmod(script, 0o644)
    gw = g.Gateway(sandbox_id="bench", max_workers=400)  # a worker per open stream
    host_srv = subprocess.Popen([py, script, "17000"], stdout=subprocess.PIPE)
    run = None
    try:
        assert host_srv.stdout.readline().strip() == b"up"
        env = dict(os.environ, OPENSHELL_SANDBOX_UID="65534", OPENSHELL_SANDBOX_GID="65534",
                   OPENSHELL_ENDPOINT=gw.endpoint, OPENSHELL_SANDBOX_ID="bench",
                   OPENSHELL_SSH_SOCKET_PATH="/run/openshell/ssh.sock")
        run = subprocess.Popen([sup, "--exit-report-timeout", "1", "--", py, script, "7000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE if os.environ.get("BENCH_QUIET", "1") == "1" else None, env=env,
                               cwd=tmp)
        assert run.stdout.readline().strip() == b"up"
        wait_for(lambda: gw.events("ConnectSupervisor", "hello"), 15, "the supervisor's hello")
        time.sleep(0.5)
        idle = rss_kib(run.pid)

        print("# session up, idle RSS %d KiB" % idle, flush=True)
        relay = gw.open_relay("tcp", "127.0.0.1", 7001)
        assert relay.wait_result(10).get("success") is True
        c0 = cpu_s(run.pid)
        via_secs, ok1 = push(relay.port, mib)
        cpu = cpu_s(run.pid) - c0
        print("# relayed %d MiB through the supervisor" % mib, flush=True)
        plain_port = gw.plain_tcp_relay("127.0.0.1", 17001)
        plain_secs, ok2 = push(plain_port, mib)

        keep = []
        for _ in range(100):
            r = gw.open_relay("tcp", "127.0.0.1", 7000)
            assert r.wait_result(10).get("success") is True
            c = socket.create_connection(("127.0.0.1", r.port))
            c.sendall(b"p")
            assert c.recv(1) == b"p"
            keep.append(c)
        time.sleep(0.5)
        busy = rss_kib(run.pid)
        for c in keep:
            c.close()

        print("relay through supervisor: %d MiB in %.2f s = %.0f MiB/s (ok=%s)" %
              (mib, via_secs, mib / via_secs, ok1))
        print("plain TCP relay in the gateway: %d MiB in %.2f s = %.0f MiB/s (ok=%s)" %
              (mib, plain_secs, mib / plain_secs, ok2))
        print("ratio throughput supervisor-relay/plain-relay = %.2f" % (plain_secs / via_secs))
        print("supervisor CPU: %.2f s per GiB relayed" % (cpu * 1024 / mib))
        print("supervisor RSS: %d KiB idle, %d KiB with 100 open relays (+%d KiB)" %
              (idle, busy, busy - idle))
        print("binary size: %d bytes" % os.path.getsize(sup))
        return 0
    finally:
        if run and run.poll() is None:
            run.terminate()
            try:
                run.wait(20)
            except subprocess.TimeoutExpired:
                run.kill()
        host_srv.kill()
        gw.stop()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
