"""Egress proxy benchmark: the same client run directly and as a sandboxed agent through the
proxy, in one invocation, reported as ratios (never a pass/fail verdict).

  sudo python3 bench/proxy.py build/supervisor [MiB]

Builds a throw-away network namespace holding a sink (counts bytes) and an echo server at
10.97.N.2 (N from the pid: tests and other benches on the host use other subnets) on a veth
from this namespace, then measures: bulk CONNECT throughput (1 GiB by
default), CONNECT set-up latency p50/p99 and connections per second (sequential, in blocks
alternating between the agent through the proxy and this harness directly), a burst of 200 clients
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

NET = "10.97.%d" % (os.getpid() % 250)
IP = NET + ".2"
NS = "svbench-%d" % os.getpid()
VETH = "svbh%d" % (os.getpid() % 100000)
PROXY = ("10.200.0.1", 3128)
RATE_BLOCK, RATE_BLOCKS = 50, 10  # sequential connections: 10 blocks of 50 each way
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


def conn_block(proxied, n):
    """n sequential CONNECT + one echoed byte; per-connection latencies (us) and wall (s)."""
    lat = []
    t0 = time.monotonic()
    for _ in range(n):
        a = time.monotonic()
        s = dial(proxied, 7000)
        s.sendall(b"p")
        s.recv(1)
        lat.append((time.monotonic() - a) * 1e6)
        s.close()
    return {"lat": lat, "wall": time.monotonic() - t0}


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
    if proxied:
        # Sequential connections in blocks, interleaved by the harness with the same blocks
        # made directly, so machine noise hits both alike.
        while True:
            cmd = sys.stdin.readline().split()
            if not cmd or cmd[0] != "block":
                break
            print("BLOCK " + json.dumps(conn_block(True, int(cmd[1]))), flush=True)
    out.update(burst(proxied, 200))
    if proxied:
        # The agent cannot read PID 1's /proc (hidepid): the harness samples the memory of
        # the supervisor and its proxy process when told, and answers on stdin.
        print("RSS idle", flush=True)
        sys.stdin.readline()
        keep = [dial(True, 7000) for _ in range(1000)]
        time.sleep(0.5)
        print("RSS conns", flush=True)
        sys.stdin.readline()
        for s in keep:
            s.close()
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------------------- the harness


def status_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(sup):
    """VmRSS counts the binary's own pages too (file-backed, shared by every sandbox on the node
    through the page cache); RssAnon is what a process alone costs. The supervisor, then its
    proxy process (the child named openshell-proxy), which holds the tunnels."""
    px = 0
    try:
        with open("/proc/%d/task/%d/children" % (sup, sup)) as f:
            for pid in f.read().split():
                with open("/proc/%s/comm" % pid) as c:
                    if c.read().startswith("openshell-proxy"):
                        px = int(pid)
    except OSError:
        pass
    return (status_kib(sup, "VmRSS:"), status_kib(sup, "RssAnon:"),
            status_kib(px, "VmRSS:") if px else 0, status_kib(px, "RssAnon:") if px else 0)


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def main():
    global IP
    if len(sys.argv) > 4 and sys.argv[1] == "client":
        IP = sys.argv[4]  # the harness's, not one made from this process's pid
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
        sh("ip", "addr", "add", NET + ".1/24", "dev", VETH)
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
        direct = subprocess.run([py, here, "client", "direct", str(mib), IP], capture_output=True,
                                text=True)
        if direct.returncode != 0:
            print("the direct client failed:\n" + direct.stderr[-3000:])
            return 1
        env = dict(os.environ, OPENSHELL_SANDBOX_UID="65534", OPENSHELL_SANDBOX_GID="65534")
        prox = subprocess.Popen([sup, "--policy", pol, "--", py, here, "client", "proxied",
                                 str(mib), IP], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)
        mem, last = {}, ""
        rate = {"direct": {"lat": [], "wall": 0.0}, "proxied": {"lat": [], "wall": 0.0}}
        blocks = 0
        prox.stdin.write("block %d\n" % RATE_BLOCK)
        prox.stdin.flush()
        for line in prox.stdout:
            if line.startswith("BLOCK "):
                b = json.loads(line[6:])
                rate["proxied"]["lat"] += b["lat"]
                rate["proxied"]["wall"] += b["wall"]
                b = conn_block(False, RATE_BLOCK)
                rate["direct"]["lat"] += b["lat"]
                rate["direct"]["wall"] += b["wall"]
                blocks += 1
                prox.stdin.write("block %d\n" % RATE_BLOCK if blocks < RATE_BLOCKS else "end\n")
                prox.stdin.flush()
            elif line.startswith("RSS "):
                mem[line.split()[1]] = memory(prox.pid)
                prox.stdin.write("\n")
                prox.stdin.flush()
            elif line.strip():
                last = line
        err = prox.stderr.read()
        if prox.wait() != 0 or not last:
            print(err[-3000:])
            return 1
        d = json.loads(direct.stdout.strip().splitlines()[-1])
        p = json.loads(last)
        for out, r in ((d, rate["direct"]), (p, rate["proxied"])):
            out["conn_per_s"] = len(r["lat"]) / r["wall"]
            out["latency_p50_us"] = pct(r["lat"], 0.5)
            out["latency_p99_us"] = pct(r["lat"], 0.99)
        for when, (sup_rss, sup_anon, px_rss, px_anon) in mem.items():
            key = "idle" if when == "idle" else "1000_conns"
            p["rss_%s_kib" % key], p["anon_%s_kib" % key] = sup_rss, sup_anon
            p["proxy_rss_%s_kib" % key], p["proxy_anon_%s_kib" % key] = px_rss, px_anon
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
        print("proxy process RSS: %d KiB idle, %d KiB with 1000 open tunnels (anonymous: %d, "
              "%d KiB)" % (p["proxy_rss_idle_kib"], p["proxy_rss_1000_conns_kib"],
                           p["proxy_anon_idle_kib"], p["proxy_anon_1000_conns_kib"]))
        return 0
    finally:
        if servers:
            servers.kill()
        subprocess.run(["ip", "link", "del", VETH], capture_output=True)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
