"""Layer-7 benchmark (issue 13): an HTTPS client run directly and as a sandboxed agent through the
proxy's terminated, inspected tunnel, in one invocation, reported as ratios (never a verdict).

  sudo python3 bench/l7.py build/supervisor [bulk MiB]

Builds a throw-away network namespace with an HTTPS server (Python, a certificate from a test
CA) at 10.96.7.2, runs the supervisor in a private mount namespace whose system bundle ends in
that CA, and measures: keep-alive requests/s on one connection, bulk download MiB/s, and the
latency of the first request on a new connection (CONNECT + both handshakes + one GET), p50/p99.
Three modes: direct, through a `protocol: rest` endpoint (terminated and judged) and through a
`tls: skip` endpoint (raw relay). Everything it creates is removed at exit.
"""

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

IP = "10.96.7.2"
NS = "svl7bench-%d" % os.getpid()
VETH = "svl7b%d" % (os.getpid() % 10000)
PROXY = ("10.200.0.1", 3128)
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
SERVER = r"""
import http.server, ssl, sys, threading
IP, D = sys.argv[1], sys.argv[2]
BULK = b"x" * (1 << 20)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        if self.path.startswith("/bulk/"):
            n = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(n << 20))
            self.end_headers()
            for _ in range(n):
                self.wfile.write(BULK)
            return
        body = b"ok" * 50
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer((IP, 8443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(D + "/srv.pem", D + "/srv.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("up", flush=True)
srv.serve_forever()
"""


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))]


def conn(proxied, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    if proxied:
        c = http.client.HTTPSConnection(PROXY[0], PROXY[1], context=ctx, timeout=30)
        c.set_tunnel(IP, 8443)
    else:
        c = http.client.HTTPSConnection(IP, 8443, context=ctx, timeout=30)
    return c


def get(c, path):
    c.request("GET", path)
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit("GET %s: %d %r" % (path, r.status, data[:200]))
    return len(data)


def client(proxied, cafile, mib):
    out = {}
    # First request on a new connection.
    lat = []
    for _ in range(100):
        t0 = time.perf_counter()
        c = conn(proxied, cafile)
        get(c, "/first")
        lat.append((time.perf_counter() - t0) * 1e6)
        c.close()
    out["first_p50_us"], out["first_p99_us"] = pct(lat, 0.5), pct(lat, 0.99)
    # Keep-alive requests/s on one connection.
    c = conn(proxied, cafile)
    get(c, "/warm")
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 3.0:
        get(c, "/small?i=%d" % n)
        n += 1
    out["keepalive_rps"] = n / (time.perf_counter() - t0)
    # Bulk download.
    t0 = time.perf_counter()
    got = get(c, "/bulk/%d" % mib)
    out["bulk_mib_s"] = got / (1 << 20) / (time.perf_counter() - t0)
    c.close()
    print(json.dumps(out))


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def openssl(*args):
    sh("openssl", *args)


def main():
    if len(sys.argv) > 3 and sys.argv[1] == "client":
        cafile = os.environ.get("SSL_CERT_FILE") if sys.argv[2] == "proxied" else sys.argv[4]
        return client(sys.argv[2] == "proxied", cafile, int(sys.argv[3]))
    sup = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/supervisor")
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    server = None
    tmp = tempfile.mkdtemp(prefix="sv-l7bench-", dir="/run")
    os.chmod(tmp, 0o755)
    try:
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", tmp + "/ca.key", "-out", tmp + "/ca.pem",
                "-days", "2", "-subj", "/CN=l7 bench CA", "-addext",
                "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
        openssl("req", *ec, "-keyout", tmp + "/srv.key", "-out", tmp + "/srv.csr", "-subj",
                "/CN=" + IP)
        with open(tmp + "/ext", "w") as f:
            f.write("subjectAltName=IP:%s\n" % IP)
        openssl("x509", "-req", "-in", tmp + "/srv.csr", "-CA", tmp + "/ca.pem", "-CAkey",
                tmp + "/ca.key", "-CAcreateserial", "-out", tmp + "/srv.pem", "-days", "2",
                "-extfile", tmp + "/ext")
        with open(tmp + "/bundle.pem", "w") as f:
            f.write(open(BUNDLE).read() + open(tmp + "/ca.pem").read())
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", VETH, "type", "veth", "peer", "name", "svl7bf")
        sh("ip", "link", "set", "svl7bf", "netns", NS)
        sh("ip", "addr", "add", "10.96.7.1/24", "dev", VETH)
        sh("ip", "link", "set", VETH, "up")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", IP + "/24", "dev", "svl7bf")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "svl7bf", "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        py = os.path.realpath(sys.executable)
        server = subprocess.Popen(["ip", "netns", "exec", NS, py, "-c", SERVER, IP, tmp],
                                  stdout=subprocess.PIPE)
        assert server.stdout.readline().strip() == b"up"
        here = os.path.join(tmp, "l7.py")
        shutil.copy(os.path.abspath(__file__), here)
        os.chmod(here, 0o644)
        res = {}
        d = subprocess.run([py, here, "client", "direct", str(mib), tmp + "/ca.pem"],
                           capture_output=True, text=True, check=True)
        res["direct"] = json.loads(d.stdout.strip().splitlines()[-1])
        modes = {"inspected": "protocol = rest\nenforcement = enforce\nrule.1.method = GET\n"
                              "rule.1.path = /**\n",
                 "tls_skip": "tls = skip\n"}
        for name, extra in modes.items():
            pol = os.path.join(tmp, name + ".ini")
            with open(pol, "w") as f:
                f.write("[network.b]\nbinary = %s\n\n[network.b.endpoint.e]\nhost = %s\n"
                        "port = 8443\n%s" % (py, IP, extra))
            env = dict(os.environ, OPENSHELL_SANDBOX_UID="65534", OPENSHELL_SANDBOX_GID="65534",
                       OPENSHELL_PROXY_TLS_DIR=tmp + "/tls-" + name)
            script = 'mount --bind "$1" %s && shift && exec "$@"' % BUNDLE
            p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                script, "sh", tmp + "/bundle.pem", sup, "--log-level", "warn",
                                "--policy", pol, "--", py, here, "client", "proxied",
                                str(mib)], capture_output=True, text=True, env=env, cwd=tmp)
            if p.returncode != 0:
                print(p.stderr[-3000:])
                return 1
            res[name] = json.loads(p.stdout.strip().splitlines()[-1])
        d = res["direct"]
        for name in modes:
            p = res[name]
            print("%-9s keep-alive %.0f req/s (%.2fx direct %.0f); bulk %.0f MiB/s (%.2fx direct "
                  "%.0f); first request p50 %.0f us p99 %.0f us (added p50 %.0f us over direct "
                  "%.0f)" % (name, p["keepalive_rps"], p["keepalive_rps"] / d["keepalive_rps"],
                             d["keepalive_rps"], p["bulk_mib_s"],
                             p["bulk_mib_s"] / d["bulk_mib_s"], d["bulk_mib_s"],
                             p["first_p50_us"], p["first_p99_us"],
                             p["first_p50_us"] - d["first_p50_us"], d["first_p50_us"]))
        print(json.dumps(res))
        return 0
    finally:
        if server:
            server.kill()
        subprocess.run(["ip", "link", "del", VETH], capture_output=True)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
