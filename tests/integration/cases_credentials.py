"""Cases: provider credentials end to end (l7 contract §3, docs/credentials.md). A test gateway
hands the supervisor a static credential bound to one HTTPS endpoint of cases_l7's fake internet
and one non-secret key; the agent (host curl through the terminated tunnel) sends only the
placeholders it was given, and an upstream that logs every request it receives shows where the
real values arrived.

The upstream (10.97.13.2:8444 terminated REST, :8445 an L4 endpoint, both with the test CA's
certificate) answers "ok <path>" and never echoes a header, so a value the agent could read
would show up in its stdout.
"""

import os
import sys
import subprocess
import time

import harness as h
from harness import check
from suite import REPO, SUPERVISOR, test

import cases_l7 as l7

sys.path.insert(0, os.path.join(REPO, "tests", "gateway"))
import gateway as g  # noqa: E402

SANDBOX_ID = "sb-creds"
IP = l7.IP
URL = "https://%s:8444" % IP
L4_URL = "https://%s:8445" % IP
BEARER = "pv-bound-%d-do-not-log" % os.getpid()
OPEN = "pv-open-%d-do-not-log" % os.getpid()

UPSTREAM = r"""
import http.server, ssl, sys, threading
IP, D, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        with lock, open(LOG, "a") as f:
            f.write("%s %d %s auth=%s x-open=%s\n" % (self.command, self.server.server_port,
                    self.path, self.headers.get("Authorization"), self.headers.get("X-Open")))
        body = ("ok %s\n" % self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = reply
    def log_message(self, *a):
        pass
for port in (8444, 8445):
    srv = http.server.ThreadingHTTPServer((IP, port), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(D + "/srv.pem", D + "/srv.key")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
print("up", flush=True)
threading.Event().wait()
"""

STATE = {"proc": None, "log": None}

POLICY = ("[network.api]\nbinary = /usr/bin/curl\n\n[network.api.endpoint.e]\nhost = %s\n"
          "port = 8444\nprotocol = rest\nenforcement = enforce\nrule.1.method = GET\n"
          "rule.1.path = /**\n\n[network.raw]\nendpoint = %s:8445\nbinary = /usr/bin/curl\n"
          % (IP, IP))


def upstream():
    """The logging upstream in cases_l7's network namespace; returns the log path, emptied."""
    why = l7.fake_internet()
    if why:
        raise h.Fail(why)
    if STATE["proc"] is None:
        STATE["log"] = os.path.join(l7.STATE["tmp"], "creds-upstream.log")
        p = subprocess.Popen([h.host_tool("ip"), "netns", "exec", l7.NS, "/usr/bin/python3",
                              "-c", UPSTREAM, IP, l7.STATE["tmp"], STATE["log"]],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        STATE["proc"] = p
        import atexit
        atexit.register(lambda: (p.kill(), p.wait()))
        if p.stdout.readline().strip() != b"up":
            raise h.Fail("the logging upstream did not start")
    open(STATE["log"], "w").close()
    return STATE["log"]


def gateway(bound_path="/v1/**"):
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    gw.provider_env = {"API_TOKEN": BEARER, "OPEN_TOKEN": OPEN}
    gw.provider_bindings = {"API_TOKEN": {
        "identity": "provider-api", "endpoints": [{"host": IP, "port": 8444,
                                                    "path": bound_path}]}}
    gw.provider_env_revision = 3
    return gw


def agent(gw, script, timeout=40.0):
    """@script (sh) under the supervisor with the gateway for provider credentials and
    cases_l7's policy-file mode for the network."""
    pol = l7.policy(POLICY)
    d = os.path.join(l7.STATE["tmp"], "tls%d" % time.monotonic_ns())
    inner = [SUPERVISOR, "--log-level", "debug", "--policy", pol, "--", "/bin/sh", "-c", script]
    wrap = 'mount --bind "$1" %s && shift && exec "$@"' % l7.SYSTEM_BUNDLE
    argv = [h.host_tool("unshare"), "--mount", "--propagation", "private", h.host_tool("sh"),
            "-c", wrap, "sh", l7.STATE["tmp"] + "/bundle.pem"] + inner
    env = {"OPENSHELL_PROXY_TLS_DIR": d, "OPENSHELL_ENDPOINT": gw.endpoint,
           "OPENSHELL_SANDBOX_ID": SANDBOX_ID, "OPENSHELL_SANDBOX_TOKEN": "it-token-creds"}
    return h.run_host(argv, timeout=timeout, extra_env=env)


def read(path):
    with open(path) as f:
        return f.read()


def no_leak(gw, r, *values):
    for v in values:
        check(v not in r.out, "a provider value reached the agent", r)
        check(v not in r.err, "a provider value reached the supervisor's log", r)
        check(not any(v in line.get("message", "") for line in gw.log_lines()),
              "a provider value was pushed to the gateway", r)


@test(kind="host")
def credential_placeholder_reaches_upstream_as_its_value_only_at_the_bound_endpoint():
    log = upstream()
    gw = gateway()
    try:
        curl = "/usr/bin/curl -sS -m 8 "
        r = agent(gw, (
            'echo "env=$API_TOKEN open=$OPEN_TOKEN"; '
            "echo procleak=$(cat /proc/self/environ | tr '\\0' '\\n' | grep -c pv-); "
            + curl + '-H "Authorization: Bearer $API_TOKEN" %s/v1/models; ' % URL
            + curl + '-i -H "Authorization: Bearer $API_TOKEN" %s/other/x; ' % URL
            + curl + '-H "X-Open: $OPEN_TOKEN" %s/other/open; ' % URL
            + curl + '-i -H "Authorization: Bearer $API_TOKEN" %s/v1/l4; ' % L4_URL
            + curl + '-H "X-Open: $OPEN_TOKEN" %s/l4/open' % L4_URL))
        got = read(log)
        # The agent holds only the placeholders (§3.1: v<revision>_ once the revision is set).
        check("env=openshell:resolve:env:v3_API_TOKEN open=openshell:resolve:env:v3_OPEN_TOKEN"
              in r.out, "the agent's environment does not hold the placeholders", r)
        check("procleak=0" in r.out, "a value is in the agent's /proc/self/environ", r)
        req = gw.events("GetSandboxProviderEnvironment", "message")
        check(req and req[0]["message"].get("supports_static_credential_bindings") is True,
              "the supervisor does not claim supports_static_credential_bindings: %r" % req, r)
        # The bound endpoint gets the value in place of the placeholder.
        check("GET 8444 /v1/models auth=Bearer %s " % BEARER in got and "ok /v1/models" in r.out,
              "the bound endpoint did not receive the credential's value:\n" + got, r)
        # Another path of the same host: the contract's 403, nothing upstream.
        check("HTTP/1.1 403 Forbidden" in r.out and
              '{"error":"credential_endpoint_mismatch","message":"Credential is not authorized '
              'for this request endpoint"}' in r.out,
              "a bound placeholder toward another endpoint did not get the 403", r)
        check("/other/x" not in got, "the mismatched request reached the upstream:\n" + got, r)
        # A non-secret (unbound) key resolves at any inspected endpoint.
        check("GET 8444 /other/open auth=None x-open=%s\n" % OPEN in got,
              "the unbound key was not resolved:\n" + got, r)
        # The passthrough relay of a terminated L4 endpoint substitutes and enforces too.
        check("/v1/l4" not in got and r.out.count("credential_endpoint_mismatch") >= 2,
              "the bound credential reached another port through the L4 relay:\n" + got, r)
        check("GET 8445 /l4/open auth=None x-open=%s\n" % OPEN in got,
              "the L4 relay did not resolve the unbound key:\n" + got, r)
        check("openshell:resolve:env:" not in got and "OPENSHELL-RESOLVE-ENV-" not in got,
              "a placeholder reached the upstream:\n" + got, r)
        no_leak(gw, r, BEARER, OPEN)
    finally:
        gw.stop()


@test(kind="host")
def credential_placeholder_of_an_unknown_key_fails_closed_with_the_500():
    log = upstream()
    gw = gateway()
    try:
        r = agent(gw, "/usr/bin/curl -sS -m 8 -i -H 'Authorization: Bearer "
                  "openshell:resolve:env:v3_NO_SUCH_KEY' %s/v1/x" % URL)
        got = read(log)
        check("HTTP/1.1 500 Internal Server Error" in r.out and
              '{"error":"credential_unavailable","message":"Credential placeholder could not be '
              'resolved"}' in r.out, "an unknown placeholder did not get the 500", r)
        check("/v1/x" not in got, "an unresolvable placeholder reached the upstream:\n" + got, r)
        no_leak(gw, r, BEARER, OPEN)
    finally:
        gw.stop()
