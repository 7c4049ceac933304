"""Egress proxy benchmark: the same client run directly and as a sandboxed agent through the
proxy, in one invocation, reported as ratios (never a pass/fail verdict).

  sudo python3 bench/proxy.py build/supervisor [MiB]

Builds a throw-away network namespace holding a sink (counts bytes) and an echo server at
10.98.0.2 on a veth from this namespace, then measures: bulk CONNECT throughput (1 GiB by
default), CONNECT set-up latency p50/p99, connections per second, a burst of 200 clients
connecting at once (behind one client that connects and sends nothing), and the supervisor's RSS
with 1000 idle tunnels open. Everything it creates is removed at exit.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

IP = "10.98.0.2"
NS = "svbench-%d" % os.getpid()
VETH = "svbh%d" % (os.getpid() % 100000)
PROXY = ("10.200.0.1", 3128)
SERVERS = r"""
import socket, socketserver, threading
class Sink(socketserver.BaseRequestHandler):
    def handle(self):
        n = 0
        while True:
            d = self.request.recv(1 << 20)
            if not d: break
            n += len(d)
        self.request.sendall(str(n).encode())
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(4096)
            if not d: break
            self.request.sendall(d)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer.request_queue_size = 2048
s = socketserver.ThreadingTCPServer((IP, 7001), Sink)
e = socketserver.ThreadingTCPServer((IP, 7000), Echo)
threading.Thread(target=s.serve_forever, daemon=True).start()
print("up", flush=True)
e.serve_forever()
""".replace("IP", repr(IP))


# ------------------------------------------------------------------------------- the client


def dial(proxied, port):
    if not proxied:
        return socket.create_connection((IP, port))
    s = socket.create_connection(PROXY)
    s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (IP.encode(), port,
                                                                  IP.encode(), port))
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        if not d:
            raise OSError("proxy closed: %r" % head)
        head += d
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError("proxy refused: %r" % head)
    return s


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


def burst(proxied, n):
    """n clients released at once, each CONNECT + one echoed byte; one silent client first."""
    silent = socket.create_connection(PROXY if proxied else (IP, 7000))
    gate = threading.Barrier(n + 1)
    lat, errors = [], []

    def one():
        gate.wait()
        a = time.monotonic()
        try:
            s = dial(proxied, 7000)
            s.sendall(b"p")
            s.recv(1)
            s.close()
            lat.append((time.monotonic() - a) * 1e6)
        except OSError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    gate.wait()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    silent.close()
    return {"burst_answered": len(lat), "burst_errors": len(errors),
            "burst_wall_ms": wall * 1e3, "burst_p99_us": pct(lat, 0.99) if lat else 0}


def client(proxied, mib):
    out = {}
    chunk = b"x" * (1 << 20)
    s = dial(proxied, 7001)
    t0 = time.monotonic()
    for _ in range(mib):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    got = int(s.recv(64))
    out["throughput_mib_s"] = mib / (time.monotonic() - t0)
    out["bytes_ok"] = got == mib << 20
    s.close()
    lat = []
    t0 = time.monotonic()
    for _ in range(500):
        a = time.monotonic()
        s = dial(proxied, 7000)
        s.sendall(b"p")
        s.recv(1)
        lat.append((time.monotonic() - a) * 1e6)
        s.close()
    out["conn_per_s"] = 500 / (time.monotonic() - t0)
    out["latency_p50_us"] = pct(lat, 0.5)
    out["latency_p99_us"] = pct(lat, 0.99)
    out.update(burst(proxied, 200))
    if proxied:
        def rss(field="VmRSS:"):
            # -1: the agent's /proc (the mount fence's hidepid) does not show the supervisor.
            try:
                with open("/proc/%d/status" % os.getppid()) as f:
                    for line in f:
                        if line.startswith(field):
                            return int(line.split()[1])
            except OSError:
                return -1
        # VmRSS counts the binary's own pages too (file-backed, shared by every sandbox on
        # the node through the page cache); RssAnon is what this supervisor alone costs.
        out["rss_idle_kib"] = rss()
        out["anon_idle_kib"] = rss("RssAnon:")
        keep = [dial(True, 7000) for _ in range(1000)]
        time.sleep(0.5)
        out["rss_1000_conns_kib"] = rss()
        out["anon_1000_conns_kib"] = rss("RssAnon:")
        for s in keep:
            s.close()
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------------------- the harness


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "client":
        return client(sys.argv[2] == "proxied", int(sys.argv[3]))
    sup = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/supervisor")
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    servers = None
    tmp = tempfile.mkdtemp(prefix="sv-bench-")
    os.chmod(tmp, 0o755)
    try:
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", VETH, "type", "veth", "peer", "name", "svbf")
        sh("ip", "link", "set", "svbf", "netns", NS)
        sh("ip", "addr", "add", "10.98.0.1/24", "dev", VETH)
        sh("ip", "link", "set", VETH, "up")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", IP + "/24", "dev", "svbf")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "svbf", "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        servers = subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-c", SERVERS],
                                   stdout=subprocess.PIPE)
        assert servers.stdout.readline().strip() == b"up"
        py = os.path.realpath(sys.executable)
        pol = os.path.join(tmp, "bench.ini")
        with open(pol, "w") as f:
            f.write("[network.bench]\nendpoint = %s:7000,7001\nbinary = %s\n" % (IP, py))
        here = os.path.join(tmp, "proxy.py")  # inside the agent's workdir (Landlock)
        with open(os.path.abspath(__file__)) as src, open(here, "w") as dst:
            dst.write(src.read())
        os.chmod(here, 0o644)
        direct = subprocess.run([py, here, "client", "direct", str(mib)], capture_output=True,
                                text=True, check=True)
        env = dict(os.environ, OPENSHELL_SANDBOX_UID="65534", OPENSHELL_SANDBOX_GID="65534")
        prox = subprocess.run([sup, "--policy", pol, "--", py, here, "client", "proxied",
                               str(mib)], capture_output=True, text=True, env=env, cwd=tmp)
        if prox.returncode != 0:
            print(prox.stderr[-3000:])
            return 1
        d = json.loads(direct.stdout.strip().splitlines()[-1])
        p = json.loads(prox.stdout.strip().splitlines()[-1])
        print("direct  %s" % json.dumps(d))
        print("proxied %s" % json.dumps(p))
        print("ratio throughput proxied/direct = %.2f (%.0f vs %.0f MiB/s, %d MiB)" % (
            p["throughput_mib_s"] / d["throughput_mib_s"], p["throughput_mib_s"],
            d["throughput_mib_s"], mib))
        print("ratio connections/s proxied/direct = %.2f (%.0f vs %.0f)" % (
            p["conn_per_s"] / d["conn_per_s"], p["conn_per_s"], d["conn_per_s"]))
        print("added latency per connection: p50 %.0f us, p99 %.0f us (proxied %.0f/%.0f, "
              "direct %.0f/%.0f)" % (
                  p["latency_p50_us"] - d["latency_p50_us"],
                  p["latency_p99_us"] - d["latency_p99_us"], p["latency_p50_us"],
                  p["latency_p99_us"], d["latency_p50_us"], d["latency_p99_us"]))
        print("burst of 200 concurrent connects (behind a silent client): proxied %d answered, "
              "%d errors, %.0f ms wall, p99 %.0f us; direct %d answered, %.0f ms wall" % (
                  p["burst_answered"], p["burst_errors"], p["burst_wall_ms"], p["burst_p99_us"],
                  d["burst_answered"], d["burst_wall_ms"]))
        print("supervisor RSS: %d KiB idle, %d KiB with 1000 open tunnels (anonymous: %d, "
              "%d KiB)" % (p["rss_idle_kib"], p["rss_1000_conns_kib"], p["anon_idle_kib"],
                           p["anon_1000_conns_kib"]))
        return 0
    finally:
        if servers:
            servers.kill()
        subprocess.run(["ip", "link", "del", VETH], capture_output=True)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
