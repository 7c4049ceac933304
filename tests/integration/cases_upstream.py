"""Cases: --upstream-proxy (contract §1.2): the egress proxy dials allowed destinations through a
corporate HTTP proxy with CONNECT, after the policy and SSRF checks on the real destination.

The corporate proxy is a small CONNECT proxy in this process on 127.0.0.1 that records every
request head; the destination is cases_proxy's fake internet (10.99.0.2). The supervisor runs
on the host (kind="host"), as cases_proxy's do.
"""

import os
import socket
import tempfile
import threading

import harness as h
from harness import check
from suite import SUPERVISOR, test

import cases_proxy as cp


class CorpProxy:
    """A CONNECT-only HTTP proxy: records heads, answers `status` (200 tunnels)."""

    def __init__(self, status=200):
        self.status = status
        self.heads = []
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _serve(self, c):
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            d = c.recv(4096)
            if not d:
                c.close()
                return
            head += d
        text = head.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        self.heads.append(text)
        line = text.split("\r\n")[0].split()
        if self.status != 200 or len(line) < 2 or line[0] != "CONNECT":
            c.sendall(b"HTTP/1.1 %d Nope\r\nContent-Length: 0\r\n\r\n" % self.status)
            c.close()
            return
        host, port = line[1].rsplit(":", 1)
        try:
            up = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        except OSError:
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            c.close()
            return
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=self._pump, args=(up, c), daemon=True).start()
        self._pump(c, up)

    def stop(self):
        self.srv.close()


def agent(pol, upstream_args, *curl_args):
    return h.run_host([SUPERVISOR, "--log-level", "info", "--policy", pol] + upstream_args +
                      ["--", "/usr/bin/curl", "-sS", "-m", "5"] + list(curl_args), timeout=20)


@test(kind="host")
def upstream_proxy_carries_connect_and_forward_egress_with_basic_auth():
    pol = cp.policy(cp.CURL_POLICY)
    corp = CorpProxy()
    tmp = tempfile.mkdtemp(prefix="sv-upstream-")
    cred = os.path.join(tmp, "cred")
    with open(cred, "w") as f:
        f.write("alice:s3cret-upstream\n")
    try:
        args = ["--upstream-proxy", corp.url, "--upstream-proxy-auth-file", cred,
                "--upstream-proxy-auth-allow-insecure"]
        # Forward (plain http): dialled as a CONNECT to the validated IP through the proxy.
        r = agent(pol, args, "http://%s:8080/fwd" % cp.FAKE_IP)
        check(r.rc == 0 and "path=/fwd" in r.out, "forward request did not come back", r)
        check(any(hd.startswith("CONNECT %s:8080 HTTP/1.1" % cp.FAKE_IP) for hd in corp.heads),
              "the upstream proxy saw no CONNECT to the validated address: %r" % corp.heads, r)
        check(all("Proxy-Authorization: Basic YWxpY2U6czNjcmV0LXVwc3RyZWFt" in hd
                  for hd in corp.heads), "the credential was not sent as Basic auth", r)
        check("s3cret-upstream" not in r.err and "YWxpY2U6" not in r.err,
              "the credential reached a log line", r)
        # CONNECT (curl -p): the tunnel runs through the upstream proxy too.
        n = len(corp.heads)
        r = agent(pol, args, "-p", "http://%s:8080/tun" % cp.FAKE_IP)
        check(r.rc == 0 and "path=/tun" in r.out, "CONNECT tunnel did not come back", r)
        check(len(corp.heads) == n + 1, "the tunnel did not go through the upstream proxy", r)
        # A destination the policy denies never reaches the upstream proxy.
        n = len(corp.heads)
        r = agent(pol, args, "http://%s:9/" % cp.FAKE_IP)
        check("policy_denied" in r.out, "a denied destination was not refused", r)
        check(len(corp.heads) == n, "a denied destination was sent to the upstream proxy", r)
    finally:
        corp.stop()


@test(kind="host")
def upstream_no_proxy_dials_direct_and_a_refusal_is_not_a_tunnel():
    pol = cp.policy(cp.CURL_POLICY)
    corp = CorpProxy()
    try:
        r = agent(pol, ["--upstream-proxy", corp.url, "--upstream-no-proxy", "10.99.0.0/24"],
                  "http://%s:8080/direct" % cp.FAKE_IP)
        check(r.rc == 0 and "path=/direct" in r.out and not corp.heads,
              "a --upstream-no-proxy destination went through the upstream proxy", r)
    finally:
        corp.stop()
    corp = CorpProxy(status=407)
    try:
        r = agent(pol, ["--upstream-proxy", corp.url], "http://%s:8080/x" % cp.FAKE_IP)
        check("path=/x" not in r.out and ("upstream_unreachable" in r.out or r.rc != 0),
              "a refused upstream CONNECT still reached the destination", r)
        check("upstream proxy refused CONNECT" in r.err and "HTTP 407" in r.err,
              "the refusal is not logged", r)
    finally:
        corp.stop()


@test(kind="host")
def upstream_proxy_options_that_are_invalid_are_fatal():
    pol = cp.policy(cp.CURL_POLICY)
    cases = [
        (["--upstream-proxy", "http://proxy.corp:3128/path"], "must not contain a path"),
        (["--upstream-proxy", "https://proxy.corp:3128"], "unsupported proxy scheme"),
        (["--upstream-proxy", "http://u:p@proxy.corp:3128"], "must not embed credentials"),
        (["--upstream-proxy", "http://proxy.corp"], "explicit proxy port"),
        (["--upstream-no-proxy", "a.b"], "no upstream proxy is configured"),
        (["--upstream-proxy", "http://127.0.0.1:3128", "--upstream-proxy-auth-file", "/x"],
         "refusing without --upstream-proxy-auth-allow-insecure"),
    ]
    for args, want in cases:
        r = agent(pol, args, "http://%s:8080/" % cp.FAKE_IP)
        check(r.rc == 1 and want in r.err, "%r: not fatal or not explained" % args, r)
