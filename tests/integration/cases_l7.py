"""Cases: TLS termination and REST inspection in the egress proxy (l7 contract §1, §2), with the
supervisor on the host and a fake internet made here: a network namespace holding HTTPS servers
at 10.97.13.2 (8443: a certificate from a test CA; 9443: a self-signed one nobody trusts) and a
plain HTTP server (8080). The test CA is added to "the image's bundle" by running the supervisor
in a private mount namespace with a bundle that ends in it bind-mounted over the system one.

The agent is host curl; it trusts the sandbox CA through CURL_CA_BUNDLE, which the supervisor
sets. Every namespace and link made here is removed at exit.
"""

import atexit
import os
import shutil
import subprocess
import tempfile
import time

import harness as h
from harness import check
from suite import SUPERVISOR, test

NS = "svtest-l7-%d" % os.getpid()
HOST_IF = "svl7h%d" % (os.getpid() % 10000)
IP = "10.97.13.2"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

SERVERS = r"""
import http.server, ssl, sys, threading
IP, D = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        got = self.rfile.read(n) if n else b""
        body = ("%s path=%s host=%s body=%d\n" % (self.command, self.path,
                self.headers.get("Host"), len(got))).encode()
        if self.path.startswith("/ok/big/"):
            body = b"x" * int(self.path.split("/")[3])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = reply
    def log_message(self, *a):
        pass
def serve(port, cert=None, key=None):
    srv = http.server.ThreadingHTTPServer((IP, port), H)
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
serve(8443, D + "/srv.pem", D + "/srv.key")
serve(9443, D + "/self.pem", D + "/self.key")
serve(8080)
print("up", flush=True)
threading.Event().wait()
"""

STATE = {"ready": None, "servers": None, "tmp": None}


def ip(*args, ns=None):
    cmd = [h.host_tool("ip")] + (["netns", "exec", ns, h.host_tool("ip")] if ns else []) + \
        list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10)


def teardown():
    if STATE["servers"]:
        STATE["servers"].kill()
        STATE["servers"].wait()
    ip("link", "del", HOST_IF)
    ip("netns", "del", NS)
    if STATE["tmp"]:
        shutil.rmtree(STATE["tmp"], ignore_errors=True)


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise h.Fail("openssl %s: %s" % (args[0], r.stderr.strip()))


def make_certs(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days", "30",
            "-subj", "/CN=svtest upstream CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-keyout", d + "/srv.key", "-out", d + "/srv.csr", "-subj", "/CN=" + IP)
    with open(d + "/ext", "w") as f:
        f.write("subjectAltName=IP:%s\n" % IP)
    openssl("x509", "-req", "-in", d + "/srv.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
            "-CAcreateserial", "-out", d + "/srv.pem", "-days", "30", "-extfile", d + "/ext")
    openssl("req", "-x509", *ec, "-keyout", d + "/self.key", "-out", d + "/self.pem", "-days",
            "30", "-subj", "/CN=" + IP, "-addext", "subjectAltName=IP:" + IP)
    with open(d + "/bundle.pem", "w") as f:
        with open(SYSTEM_BUNDLE) as s:
            f.write(s.read())
        with open(d + "/ca.pem") as s:
            f.write(s.read())


def fake_internet():
    if STATE["ready"] is not None:
        return STATE["ready"] or None
    STATE["ready"] = ""
    for tool in ("ip", "curl", "openssl", "unshare", "mount"):
        if shutil.which(tool) is None:
            STATE["ready"] = "needs %s" % tool
            return STATE["ready"]
    if not os.path.isfile(SYSTEM_BUNDLE):
        STATE["ready"] = "no system bundle at " + SYSTEM_BUNDLE
        return STATE["ready"]
    atexit.register(teardown)
    STATE["tmp"] = tempfile.mkdtemp(prefix="svtest-l7-", dir="/run")
    os.chmod(STATE["tmp"], 0o755)
    make_certs(STATE["tmp"])
    steps = [ip("netns", "add", NS),
             ip("link", "add", HOST_IF, "type", "veth", "peer", "name", "svl7f"),
             ip("link", "set", "svl7f", "netns", NS),
             ip("addr", "add", "10.97.13.1/24", "dev", HOST_IF),
             ip("link", "set", HOST_IF, "up"),
             ip("addr", "add", IP + "/24", "dev", "svl7f", ns=NS),
             ip("link", "set", "svl7f", "up", ns=NS),
             ip("link", "set", "lo", "up", ns=NS)]
    bad = [s for s in steps if s.returncode != 0]
    if bad:
        STATE["ready"] = "cannot build the fake internet: " + bad[0].stderr.strip()
        return STATE["ready"]
    STATE["servers"] = subprocess.Popen(
        [h.host_tool("ip"), "netns", "exec", NS, "/usr/bin/python3", "-c", SERVERS, IP,
         STATE["tmp"]], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if STATE["servers"].stdout.readline().strip() != b"up":
        STATE["ready"] = "fake servers did not start"
        return STATE["ready"]
    return None


def policy(text):
    why = fake_internet()
    if why:
        raise h.Fail(why)
    path = os.path.join(STATE["tmp"], "p%d.ini" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write(text)
    return path


def agent(pol, *curl_args, tls_dir=None, timeout=30.0, shell=None):
    """curl (or @shell, a sh -c script) under the supervisor, in a mount namespace where the
    system bundle ends in the test CA."""
    why = fake_internet()
    if why:
        raise h.Fail(why)
    d = tls_dir or os.path.join(STATE["tmp"], "tls%d" % time.monotonic_ns())
    inner = [SUPERVISOR, "--log-level", "info", "--policy", pol, "--"]
    inner += ["/bin/sh", "-c", shell] if shell else \
        ["/usr/bin/curl", "-sS", "-m", "8"] + list(curl_args)
    script = 'mount --bind "$1" %s && shift && exec "$@"' % SYSTEM_BUNDLE
    argv = [h.host_tool("unshare"), "--mount", "--propagation", "private", h.host_tool("sh"),
            "-c", script, "sh", STATE["tmp"] + "/bundle.pem"] + inner
    return h.run_host(argv, timeout=timeout, extra_env={"OPENSHELL_PROXY_TLS_DIR": d})


def rest_policy(extra="", rules=None, enforcement="enforce", port=8443):
    rules = rules if rules is not None else (
        "rule.1.method = GET\nrule.1.path = /ok/**\ndeny.1.method = GET\n"
        "deny.1.path = /ok/secret\n")
    return ("[network.api]\nbinary = /usr/bin/curl\n\n[network.api.endpoint.e]\nhost = %s\n"
            "port = %d\nprotocol = rest\nenforcement = %s\n%s%s" %
            (IP, port, enforcement, rules, extra))


URL = "https://%s:8443" % IP


@test(kind="host")
def l7_allowed_get_is_terminated_and_reaches_the_upstream():
    r = agent(policy(rest_policy()), "-v", URL + "/ok/a?x=1")
    check(r.rc == 0 and "GET path=/ok/a?x=1 host=%s:8443" % IP in r.out,
          "an allowed GET did not reach the upstream through the terminated tunnel", r)
    check("issuer: CN=OpenShell Sandbox CA; O=OpenShell" in r.err and
          "subject: CN=%s" % IP in r.err, "the agent did not see our leaf for the host", r)
    check("ALPN: server accepted http/1.1" in r.err, "ALPN is not http/1.1", r)
    check("L7_REQUEST allow GET %s:8443/ok/a reason=" % IP in r.err,
          "no L7_REQUEST allow line (or the query leaked into it)", r)
    check("x=1" not in r.err.split("L7_REQUEST")[1].split("\n")[0],
          "the query string reached the log", r)


@test(kind="host")
def l7_denied_path_gets_the_403_body_and_nothing_reaches_the_upstream():
    r = agent(policy(rest_policy()), "-i", "--suppress-connect-headers", URL + "/no/x?q=1")
    check(r.out.startswith("HTTP/1.1 403 Forbidden"), "a denied path did not get a 403", r)
    body = r.out.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in r.out else ""
    want = ('{"binary":"/usr/bin/curl","detail":"GET /no/x not permitted by policy",'
            '"error":"policy_denied","host":"%s","layer":"l7","method":"GET",'
            '"next_steps":[],"path":"/no/x","policy":"api","port":8443,"protocol":"rest",'
            '"rule":"GET /no/x","rule_missing":{"binary":"/usr/bin/curl","host":"%s",'
            '"layer":"l7","method":"GET","path":"/no/x","port":8443,"type":"rest_allow"}}'
            % (IP, IP))
    check(body == want, "the 403 body is not the contract's, byte for byte:\n%s\n%s" %
          (body, want), r)
    check("X-OpenShell-Policy: api\r\n" in r.out, "no X-OpenShell-Policy header", r)
    check("L7_REQUEST deny GET %s:8443/no/x reason=GET /no/x not permitted by policy" % IP
          in r.err, "no L7_REQUEST deny line", r)
    r = agent(policy(rest_policy()), "-i", "--suppress-connect-headers", URL + "/ok/secret")
    check(r.out.startswith("HTTP/1.1 403") and "blocked by deny rule" in r.out,
          "a deny rule did not win over an allow rule", r)


@test(kind="host")
def l7_audit_forwards_a_policy_miss_and_logs_audit():
    r = agent(policy(rest_policy(enforcement="audit")), URL + "/no/x")
    check(r.rc == 0 and "GET path=/no/x" in r.out, "audit mode did not forward the miss", r)
    check("L7_REQUEST audit GET %s:8443/no/x" % IP in r.err, "no audit line", r)


@test(kind="host")
def l7_traversal_is_canonicalised_before_matching():
    r = agent(policy(rest_policy()), "--path-as-is", "-i", "--suppress-connect-headers",
              URL + "/ok/../no/x")
    check(r.out.startswith("HTTP/1.1 403") and '"path":"/no/x"' in r.out,
          "a dot-dot path escaped its rule", r)
    r = agent(policy(rest_policy()), "--path-as-is", URL + "/ok/./a")
    check(r.rc == 0 and "GET path=/ok/a" in r.out,
          "the canonical path was not what the upstream saw", r)


@test(kind="host")
def l7_keep_alive_judges_each_request():
    r = agent(policy(rest_policy()), "-sS", URL + "/ok/1", "--next", "-sS", URL + "/ok/2",
              "--next", "-sS", "-i", URL + "/no/3")
    check("GET path=/ok/1" in r.out and "GET path=/ok/2" in r.out,
          "keep-alive requests were not both relayed", r)
    check("HTTP/1.1 403" in r.out and "GET path=/no/3" not in r.out,
          "the third request on the tunnel was not judged", r)
    check(r.err.count("NET:OPEN") >= 1, "no CONNECT decision", r)


@test(kind="host")
def l7_bodies_stream_both_ways_through_the_inspected_tunnel():
    rules = ("rule.1.method = GET\nrule.1.path = /ok/**\nrule.2.method = POST\n"
             "rule.2.path = /ok/**\n")
    r = agent(policy(rest_policy(rules=rules)), shell=(
        "yes y | head -c 300000 | curl -sS -m 20 --data-binary @- %s/ok/up && "
        "echo size=$(curl -sS -m 20 %s/ok/big/5000000 | wc -c) && "
        "curl -sS -m 20 %s/ok/big/3 --next -sS -m 20 %s/ok/after" % (URL, URL, URL, URL)))
    check("POST path=/ok/up host=%s:8443 body=300000" % IP in r.out,
          "a 300 kB request body did not stream through whole", r)
    check("size=5000000" in r.out, "a 5 MB response did not stream through whole", r)
    check("xxxGET path=/ok/after" in r.out, "keep-alive broke after a framed response", r)


@test(kind="host")
def l7_http2_capable_client_speaks_http1_through_the_tunnel():
    r = agent(policy(rest_policy()), "--http2", "-w", "\\nver=%{http_version}\\n", URL + "/ok/h2")
    check(r.rc == 0 and "GET path=/ok/h2" in r.out and "ver=1.1" in r.out,
          "an HTTP/2-capable client did not fall back to http/1.1", r)


@test(kind="host")
def l4_endpoint_tls_is_terminated_and_each_request_logged():
    pol = policy("[network.api]\nendpoint = %s:8443\nbinary = /usr/bin/curl\n" % IP)
    r = agent(pol, URL + "/any?x=1")
    check(r.rc == 0 and "GET path=/any?x=1" in r.out, "an L4 TLS tunnel did not relay", r)
    check("HTTP_REQUEST GET %s:8443/any credentials_injected=false request_num=1" % IP in r.err,
          "no HTTP_REQUEST line for the terminated L4 tunnel", r)


@test(kind="host")
def tls_skip_relays_raw_bytes_with_the_upstream_certificate():
    # The agent's bundle holds the image's (which ends in the test CA): the upstream's own
    # certificate verifies, so the agent talks to it directly.
    pol = policy(rest_policy(extra="tls = skip\n"))
    r = agent(pol, "-v", URL + "/no/x")
    check(r.rc == 0 and "GET path=/no/x" in r.out,
          "a tls: skip endpoint did not relay raw (or it was inspected)", r)
    check("issuer: CN=svtest upstream CA" in r.err, "the agent did not see the upstream's "
          "own certificate", r)
    check("L7_REQUEST" not in r.err, "a tls: skip tunnel was inspected", r)


@test(kind="host")
def untrusted_upstream_certificate_drops_the_tunnel_and_names_the_reason():
    pol = policy("[network.api]\nendpoint = %s:9443\nbinary = /usr/bin/curl\n" % IP)
    r = agent(pol, "-i", "https://%s:9443/x" % IP)
    check(r.rc != 0 and "path=/x" not in r.out, "an untrusted upstream was relayed", r)
    check("TLS relay error: upstream %s:9443: certificate verify failed" % IP in r.err,
          "no OCSF line naming the host and the verification failure", r)


@test(kind="host")
def without_a_ca_every_non_skip_connect_gets_503_before_the_200():
    fake_internet()
    blocker = os.path.join(STATE["tmp"], "blocker")
    open(blocker, "w").close()
    r = agent(policy(rest_policy()), "-i", "-p", "--proxytunnel", URL + "/ok/a",
              tls_dir=os.path.join(blocker, "sub"))
    check("503" in r.out + r.err and "path=/ok/a" not in r.out,
          "a CONNECT without a CA was not refused with 503", r)
    r = agent(policy(rest_policy(extra="tls = skip\n")), "--cacert", "/etc/ssl/certs/"
              "ca-certificates.crt", URL + "/ok/a", tls_dir=os.path.join(blocker, "sub"))
    check(r.rc == 0 and "path=/ok/a" in r.out, "a tls: skip tunnel was refused without a CA", r)
