"""Cases: the egress proxy, end to end, with the supervisor on the host (not PID 1) and a fake
internet: a network namespace made here (`ip netns`, veth) holding an HTTP server and a TCP echo
server at 10.99.0.2, reachable only from the host's namespace, never from the agent's.

The agent is host curl running under the supervisor; it reaches the proxy only through the
proxy variables the supervisor sets. Every namespace and link made here is removed at exit.
"""

import atexit
import os
import shutil
import subprocess
import tempfile
import time

import harness as h
from harness import check
from suite import CTX, SUPERVISOR, test

NS = "svtest-fake-%d" % os.getpid()
HOST_IF = "svfh%d" % (os.getpid() % 100000)
FAKE_IP = "10.99.0.2"
SERVERS = ("import http.server, socketserver, threading, socket, sys\n"
           "class H(http.server.BaseHTTPRequestHandler):\n"
           "    def do_GET(self):\n"
           "        body = ('path=%s host=%s via=%s conn=%s\\n' % (self.path, self.headers.get('Host'),"
           " self.headers.get('Via'), self.headers.get('Connection'))).encode()\n"
           "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
           "        self.end_headers(); self.wfile.write(body)\n"
           "    def log_message(self, *a): pass\n"
           "class Echo(socketserver.BaseRequestHandler):\n"
           "    def handle(self):\n"
           "        while True:\n"
           "            d = self.request.recv(65536)\n"
           "            if not d: break\n"
           "            self.request.sendall(d)\n"
           "socketserver.TCPServer.allow_reuse_address = True\n"
           "web = http.server.ThreadingHTTPServer(('" + FAKE_IP + "', 8080), H)\n"
           "echo = socketserver.ThreadingTCPServer(('" + FAKE_IP + "', 7000), Echo)\n"
           "threading.Thread(target=echo.serve_forever, daemon=True).start()\n"
           "print('up', flush=True)\n"
           "web.serve_forever()\n")

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


def fake_internet():
    """Build the fake internet once; returns None or why it cannot be built."""
    if STATE["ready"] is not None:
        return STATE["ready"] or None
    STATE["ready"] = ""
    if shutil.which("ip") is None or shutil.which("curl") is None:
        STATE["ready"] = "needs ip (iproute2) and curl"
        return STATE["ready"]
    atexit.register(teardown)
    steps = [ip("netns", "add", NS),
             ip("link", "add", HOST_IF, "type", "veth", "peer", "name", "svff"),
             ip("link", "set", "svff", "netns", NS),
             ip("addr", "add", "10.99.0.1/24", "dev", HOST_IF),
             ip("link", "set", HOST_IF, "up"),
             ip("addr", "add", FAKE_IP + "/24", "dev", "svff", ns=NS),
             ip("link", "set", "svff", "up", ns=NS),
             ip("link", "set", "lo", "up", ns=NS)]
    bad = [s for s in steps if s.returncode != 0]
    if bad:
        STATE["ready"] = "cannot build the fake internet: " + bad[0].stderr.strip()
        return STATE["ready"]
    STATE["servers"] = subprocess.Popen(
        [h.host_tool("ip"), "netns", "exec", NS, "/usr/bin/python3", "-c", SERVERS],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if STATE["servers"].stdout.readline().strip() != b"up":
        STATE["ready"] = "fake servers did not start"
        return STATE["ready"]
    STATE["tmp"] = tempfile.mkdtemp(prefix="sv-proxy-")
    os.chmod(STATE["tmp"], 0o755)
    return None


def policy(text):
    why = fake_internet()
    if why:
        raise h.Fail(why)
    path = os.path.join(STATE["tmp"], "p%d.ini" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write(text)
    return path


CURL_POLICY = "[network.fake]\nendpoint = %s:8080,7000\nbinary = /usr/bin/curl\n" % FAKE_IP


def agent(pol, *curl_args, timeout=20.0):
    why = fake_internet()
    if why:
        raise h.Fail(why)
    return h.run_host([SUPERVISOR, "--log-level", "info", "--policy", pol, "--", "/usr/bin/curl",
                       "-sS", "-m", "5"] +
                      list(curl_args), timeout=timeout)


@test(kind="host")
def forward_http_allowed_reaches_upstream_with_rewritten_head():
    r = agent(policy(CURL_POLICY), "http://%s:8080/a?b=1" % FAKE_IP)
    check(r.rc == 0, "allowed forward request failed", r)
    check("path=/a?b=1 host=%s:8080 via=1.1 openshell-sandbox conn=close" % FAKE_IP in r.out,
          "upstream did not see origin-form, Host, Via, Connection: close", r)
    check("ALLOWED /usr/bin/curl" in r.err, "no ALLOWED line", r)


@test(kind="host")
def connect_allowed_gets_200_and_bytes_flow_both_ways():
    r = agent(policy(CURL_POLICY), "-p", "http://%s:8080/tunnel" % FAKE_IP)
    check(r.rc == 0 and "path=/tunnel" in r.out, "CONNECT tunnel did not carry the request", r)


@test(kind="host")
def connect_to_host_not_in_policy_gets_policy_denied_403():
    r = agent(policy(CURL_POLICY), "-p", "-i", "http://%s:9999/" % FAKE_IP)
    check("403" in r.err or r.rc != 0, "denied CONNECT succeeded", r)
    check("DENIED /usr/bin/curl" in r.err and "endpoint 10.99.0.2:9999 is not allowed by any "
          "policy" in r.err, "no exact deny reason", r)


REST_POLICY = ("[network.fake]\nbinary = /usr/bin/curl\n\n[network.fake.endpoint.api]\n"
               "host = %s\nport = 8080\nprotocol = rest\naccess = read-only\n"
               "enforcement = enforce\n" % FAKE_IP)


@test(kind="host")
def ini_rest_endpoint_judges_tunnel_requests_tls_skip_is_l4():
    # read-only: a GET in the (plaintext) tunnel is allowed and logged, a POST is denied.
    r = agent(policy(REST_POLICY), "-p", "http://%s:8080/tunnel" % FAKE_IP)
    check(r.rc == 0 and "path=/tunnel" in r.out, "an allowed GET did not pass the rest endpoint",
          r)
    check("L7_REQUEST allow GET %s:8080/tunnel" % FAKE_IP in r.err, "no L7_REQUEST line", r)
    r = agent(policy(REST_POLICY), "-p", "-i", "--suppress-connect-headers", "-X", "POST",
              "http://%s:8080/tunnel" % FAKE_IP)
    check(r.out.startswith("HTTP/1.1 403") and '"layer":"l7"' in r.out,
          "a POST on a read-only rest endpoint was not denied", r)
    # Forward-proxy requests get the same rules and the forward-proxy denial body.
    r = agent(policy(REST_POLICY), "-i", "http://%s:8080/x?a=1" % FAKE_IP)
    check("path=/x?a=1" in r.out and "L7_REQUEST allow GET %s:8080/x reason=" % FAKE_IP in r.err,
          "an allowed forward request to a rest endpoint did not pass", r)
    r = agent(policy(REST_POLICY), "-i", "-X", "DELETE", "http://%s:8080/x?a=1" % FAKE_IP)
    body = r.out.split("\r\n\r\n", 1)[-1]
    check(r.out.startswith("HTTP/1.1 403") and "path=/x" not in r.out and
          body == '{"detail":"DELETE %s:8080/x denied by L7 policy: DELETE /x not permitted by '
          'policy","error":"policy_denied"}' % FAKE_IP,
          "a forward DELETE on a read-only rest endpoint was not denied with the L7 body", r)
    r = agent(policy(REST_POLICY + "tls = skip\n"), "-p", "http://%s:8080/tunnel" % FAKE_IP)
    check(r.rc == 0 and "path=/tunnel" in r.out, "a tls: skip endpoint is not plain L4", r)


@test(kind="host")
def forward_to_host_not_in_policy_gets_exact_403_body():
    r = agent(policy(CURL_POLICY), "-i", "http://%s:9999/x" % FAKE_IP)
    check(r.out.startswith("HTTP/1.1 403"), "expected a 403", r)
    check('"error":"policy_denied"' in r.out and
          '"detail":"GET 10.99.0.2:9999/x not permitted by policy"' in r.out,
          "403 body is not the policy_denied JSON", r)


@test(kind="host")
def wrong_binary_is_denied_naming_the_binary():
    pol = policy("[network.fake]\nendpoint = %s:8080\nbinary = /usr/bin/wget\n" % FAKE_IP)
    r = agent(pol, "-i", "http://%s:8080/" % FAKE_IP)
    check(r.out.startswith("HTTP/1.1 403"), "expected a 403", r)
    check("binary '/usr/bin/curl' not allowed in policy 'fake'" in r.err, "no binary reason", r)


@test(kind="host")
def loopback_and_metadata_are_ssrf_denied_even_when_declared():
    pol = policy("[network.meta]\nendpoint = 169.254.169.254:80\nendpoint = 127.0.0.1:8080\n"
                 "endpoint = [::127.0.0.1]:8080\nendpoint = [::ffff:127.0.0.1]:8080\n"
                 "binary = /usr/bin/curl\n")
    # The IPv6 forms that embed an IPv4 address are judged by it: mapped and the deprecated
    # IPv4-compatible one (a sit tunnel would carry it to 127.0.0.1).
    for url in ("http://169.254.169.254/latest", "http://127.0.0.1:8080/",
                "http://[::127.0.0.1]:8080/", "http://[::ffff:127.0.0.1]:8080/"):
        r = agent(pol, "-i", "--noproxy", "", url)  # past NO_PROXY: ask the proxy itself
        check(r.out.startswith("HTTP/1.1 403") and '"error":"ssrf_denied"' in r.out,
              "%s was not ssrf_denied" % url, r)


@test(kind="host")
def hostless_allowed_ips_rule_does_not_shadow_a_rule_naming_the_host():
    # A rule for any host on the port, limited to 10.50.0.0/16, must not turn the exact rule
    # for the fake upstream (outside that range) into a denial.
    pol = policy("[network.a_exact]\nendpoint = %s:8080\nbinary = /usr/bin/curl\n"
                 "[network.z_hostless]\nendpoint = :8080\nallowed_ips = 10.50.0.0/16\n"
                 "binary = /usr/bin/curl\n" % FAKE_IP)
    r = agent(pol, "http://%s:8080/shadow" % FAKE_IP)
    check(r.rc == 0 and "path=/shadow" in r.out, "the exact rule was shadowed", r)


@test(kind="host")
def declared_name_resolving_to_loopback_is_ssrf_denied():
    # The proxy resolves the name itself and refuses the loopback answer, declared or not.
    pol = policy("[network.fake]\nendpoint = localhost:8080\nbinary = /usr/bin/curl\n")
    r = agent(pol, "-i", "--noproxy", "", "http://localhost:8080/")
    check(r.out.startswith("HTTP/1.1 403") and "ssrf_denied" in r.out,
          "localhost was reachable through the proxy", r)


@test(kind="host")
def https_in_forward_form_gets_the_exact_400():
    r = agent(policy(CURL_POLICY), "-i", "--proxy", "http://10.200.0.1:3128",
              "--proxy-insecure", "-X", "GET", "http://%s:8080/" % FAKE_IP, "-H", "X: y",
              "--request-target", "https://%s:8080/" % FAKE_IP)
    check("400 Bad Request" in r.out and "Use CONNECT for HTTPS URLs" in r.out,
          "https forward form not refused with the exact 400", r)


@test(kind="host")
def oversized_request_head_gets_431():
    r = agent(policy(CURL_POLICY), "-i", "-H", "X-Big: " + "a" * 9000,
              "http://%s:8080/" % FAKE_IP)
    check("431" in r.out, "a head over 8 KiB was not refused with 431", r)


@test(kind="host")
def unreachable_upstream_gets_502_for_forward_requests():
    pol = policy("[network.fake]\nendpoint = %s:8081\nbinary = /usr/bin/curl\n" % FAKE_IP)
    r = agent(pol, "-i", "http://%s:8081/" % FAKE_IP)
    check(r.out.startswith("HTTP/1.1 502") and '"error":"upstream_unreachable"' in r.out,
          "no 502 upstream_unreachable", r)


@test(kind="host")
def hostless_endpoint_allows_only_addresses_in_allowed_ips():
    ok = policy("[network.lan]\nendpoint = :8080\nallowed_ips = 10.99.0.0/24\n"
                "binary = /usr/bin/curl\n")
    r = agent(ok, "http://%s:8080/in" % FAKE_IP)
    check(r.rc == 0 and "path=/in" in r.out, "address inside allowed_ips refused", r)
    bad = policy("[network.lan]\nendpoint = :8080\nallowed_ips = 10.98.0.0/24\n"
                 "binary = /usr/bin/curl\n")
    r = agent(bad, "-i", "http://%s:8080/out" % FAKE_IP)
    check(r.out.startswith("HTTP/1.1 403") and "allowed_ips check failed" in r.out,
          "address outside allowed_ips not ssrf_denied", r)


@test(kind="host")
def binary_replaced_in_place_fails_the_integrity_check():
    why = fake_internet()
    if why:
        raise h.Fail(why)
    d = tempfile.mkdtemp(prefix="tool-", dir=STATE["tmp"])
    os.chmod(d, 0o777)
    tool = os.path.join(d, "tool")
    pol = policy("[network.fake]\nendpoint = %s:8080\nbinary = %s\n" % (FAKE_IP, tool))
    url = "http://%s:8080/t" % FAKE_IP
    script = ("cp /usr/bin/curl {t} && {t} -sS -m 5 {u} && echo FIRST-OK; "
              "cat /usr/bin/curl > {t} && printf x >> {t} && "
              "{t} -sS -m 5 -i {u}; echo done").format(t=tool, u=url)
    r = h.run_host([SUPERVISOR, "--log-level", "info", "--policy", pol, "--", "/bin/sh", "-c",
                    script], timeout=30)
    check("FIRST-OK" in r.out, "first use of the tool was not allowed", r)
    check("binary integrity check failed" in r.err, "a rewritten binary passed", r)


# Python agents for what curl cannot do: raw heads, many idle connections.

AGENT_PY = r"""
import os, socket, sys, time
PROXY = ("10.200.0.1", 3128)
def connect_echo():
    s = socket.create_connection(PROXY, timeout=5)
    s.sendall(b"CONNECT 10.99.0.2:7000 HTTP/1.1\r\nHost: 10.99.0.2:7000\r\n\r\n")
    head = s.recv(4096)
    if not head.startswith(b"HTTP/1.1 200"):
        return "refused %r" % head[:40]
    s.sendall(b"ping")
    return "echo=" + s.recv(16).decode()
mode = sys.argv[1]
if mode == "connect":
    s = socket.create_connection(PROXY, timeout=5)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (sys.argv[2], sys.argv[2])).encode())
    print(s.recv(4096).decode(errors="replace"))
elif mode == "malformed":
    s = socket.create_connection(PROXY, timeout=5)
    s.sendall(b"NOT A REQUEST\r\n\r\n")
    print(s.recv(4096).decode(errors="replace"))
elif mode == "idle":
    idle = [socket.create_connection(PROXY, timeout=5) for _ in range(int(sys.argv[2]))]
    time.sleep(0.3)
    print("with-idle", connect_echo(), flush=True)
elif mode == "reuse":
    def tunnel():
        s = socket.create_connection(PROXY, timeout=5)
        s.sendall(b"CONNECT 10.99.0.2:7000 HTTP/1.1\r\nHost: 10.99.0.2:7000\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 200"), head
        return s
    for _ in range(3):  # abandoned unread once every buffer on the way is full, pipes too
        s = tunnel()
        s.settimeout(0.5)
        try:
            s.sendall(b"x" * (64 << 20))
        except socket.timeout:
            pass
        s.close()
    bad = []
    for i in range(30):  # each must get back exactly its own bytes, then the end of stream
        s = tunnel()
        payload = (b"%04d" % i) * 4096
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
        s.close()
        if got != payload:
            bad.append("%d: %d bytes, starts %r" % (i, len(got), got[:8]))
    print("reuse", "ok" if not bad else "mismatch " + "; ".join(bad[:3]), flush=True)
elif mode == "twice":
    print("first", connect_echo(), flush=True)
    sys.stdin.readline()
    print("second", connect_echo(), flush=True)
elif mode == "exhaust":
    idle = []
    for _ in range(int(sys.argv[2])):
        try:
            idle.append(socket.create_connection(PROXY, timeout=2))
        except OSError:
            break
    time.sleep(0.5)
    for s in idle:
        s.close()
    deadline = time.monotonic() + 10
    result = "never"
    while time.monotonic() < deadline:
        try:
            result = connect_echo()
            if result.startswith("echo="):
                break
        except OSError as e:
            result = str(e)
        time.sleep(0.2)
    print("after", result, flush=True)
"""


def py_agent(args, prefix=(), timeout=40.0):
    why = fake_internet()
    if why:
        raise h.Fail(why)
    script = os.path.join(STATE["tmp"], "agent.py")
    with open(script, "w") as f:
        f.write(AGENT_PY)
    os.chmod(script, 0o644)
    py = os.path.realpath("/usr/bin/python3")
    pol = policy("[network.fake]\nendpoint = %s:7000\nbinary = %s\n" % (FAKE_IP, py))
    return h.run_host(list(prefix) + [SUPERVISOR, "--policy", pol, "--", py, script] +
                      list(args), timeout=timeout)


@test(kind="host")
def agent_environment_carries_the_proxy_variables():
    why = fake_internet()
    if why:
        raise h.Fail(why)
    r = h.run_host([SUPERVISOR, "--", "/bin/sh", "-c", "echo $HTTP_PROXY $https_proxy "
                    "$ALL_PROXY $grpc_proxy $NO_PROXY $no_proxy $NODE_USE_ENV_PROXY"])
    u = "http://10.200.0.1:3128"
    check(r.out.split() == [u, u, u, u, "127.0.0.1,localhost,::1", "127.0.0.1,localhost,::1",
                            "1"], "proxy variables missing or wrong", r)


@test(kind="host")
def denied_connect_gets_the_exact_policy_denied_json():
    r = py_agent(["connect", "%s:9999" % FAKE_IP])
    # Keys in alphabetical order, as OpenShell's serde_json writes them.
    body = ('{"detail":"CONNECT %s:9999 not permitted by policy","error":"policy_denied",'
            '"reason":"endpoint %s:9999 is not allowed by any policy"}' % (FAKE_IP, FAKE_IP))
    check(r.out.startswith("HTTP/1.1 403 Forbidden\r\n"), "not a 403", r)
    check("Content-Type: application/json\r\n" in r.out and "Connection: close\r\n" in r.out
          and "Content-Length: %d\r\n" % len(body) in r.out, "403 headers wrong", r)
    check(r.out.rstrip("\n").endswith(body), "403 body is not the exact policy_denied JSON", r)


@test(kind="host")
def malformed_request_head_gets_400():
    r = py_agent(["malformed"])
    check(r.out.startswith("HTTP/1.1 400 Bad Request"), "malformed head not answered 400", r)


@test(kind="host")
def proxy_keeps_serving_with_1000_idle_connections_open():
    r = py_agent(["idle", "1000"])
    check("with-idle echo=ping" in r.out, "proxy stopped serving under 1000 idle connections", r)


@test(kind="host")
def tunnels_after_abandoned_ones_carry_only_their_own_bytes_and_end_cleanly():
    # Relay pipes are kept for reuse only when empty; a half-close still reaches the upstream.
    r = py_agent(["reuse"])
    check("reuse ok" in r.out, "a tunnel got bytes that were not its own, or no clean end", r)


@test(kind="host")
def fd_exhaustion_backs_off_and_recovers():
    # A hard limit of 64 fds: the agent's 200 connections exhaust the supervisor's table.
    r = py_agent(["exhaust", "200"], prefix=[h.host_tool("prlimit"), "--nofile=64:64"])
    check("accept_backoff" in r.err or "backing off" in r.err, "no back-off on EMFILE", r)
    check("after echo=ping" in r.out, "the proxy did not recover after fd exhaustion", r)


# ------------------------------------------------------------------- the proxy process
# The proxy runs in its own process (docs/architecture.md "Processes"): unprivileged, confined,
# and restarted by the supervisor when it dies.


def start_twice_agent():
    why = fake_internet()
    if why:
        raise h.Fail(why)
    script = os.path.join(STATE["tmp"], "agent.py")
    with open(script, "w") as f:
        f.write(AGENT_PY)
    os.chmod(script, 0o644)
    py = os.path.realpath("/usr/bin/python3")
    pol = policy("[network.fake]\nendpoint = %s:7000\nbinary = %s\n" % (FAKE_IP, py))
    extra = dict(h.HOST_IDENTITY)
    return h.Run([SUPERVISOR, "--log-level", "info", "--policy", pol, "--", py, script, "twice"],
                 mode="host", stdin="pipe", extra_env=extra).start()


def proxy_child_of(run, timeout=5.0, exclude=0):
    """The pid of the supervisor's child named openshell-proxy (other than @exclude)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in h.proc_children(run.host_pid()):
            if pid == exclude:
                continue
            try:
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().strip() == "openshell-proxy":
                        return pid
            except OSError:
                pass
        time.sleep(0.02)
    raise h.Fail("no openshell-proxy child of the supervisor")


def status_fields(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


@test(kind="host")
def proxy_process_runs_unprivileged_confined_with_an_empty_environment():
    run = start_twice_agent()
    try:
        check(run.wait_stdout("first echo=ping", timeout=10), "first CONNECT failed")
        pid = proxy_child_of(run)
        st = status_fields(pid)
        uids = st.get("Uid", "0").split()
        check(uids and all(u != "0" for u in uids) and uids[0] in ("65533", "65531"),
              "proxy process runs as root: Uid %r" % st.get("Uid"), None)
        check(all(g != "0" for g in st.get("Gid", "0").split()), "proxy gid is 0", None)
        check(st.get("Groups", "").strip() == "", "proxy keeps supplementary groups", None)
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            check(int(st.get(cap, "1"), 16) == 0, "%s is %s, not 0" % (cap, st.get(cap)), None)
        check(st.get("Seccomp", "").strip() == "2", "no seccomp filter: %r" % st.get("Seccomp"),
              None)
        check(st.get("NoNewPrivs", "").strip() == "1", "no_new_privs unset", None)
        with open("/proc/%d/environ" % pid, "rb") as f:
            check(f.read() == b"", "the proxy process has an environment", None)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            check(f.read() == b"openshell-sandbox\0__proxy\0", "unexpected argv", None)
        check(run.wait_stderr("proxy process confined and serving", timeout=5),
              "no proxy_child_ready line", None)
    finally:
        run.stdin_write(b"go\n")
        r = run.finish(20)
    check(r.rc == 0 and "second echo=ping" in r.out, "the agent did not finish", r)


@test(kind="host")
def proxy_process_killed_from_the_host_is_restarted_and_serves_again():
    run = start_twice_agent()
    try:
        check(run.wait_stdout("first echo=ping", timeout=10), "first CONNECT failed", None)
        pid = proxy_child_of(run)
        os.kill(pid, 9)
        check(run.wait_stderr("the proxy process exited", timeout=5),
              "no proxy_child_exited line", None)
        check(run.wait_stderr("proxy process restarted", timeout=5), "no restart line", None)
        new = proxy_child_of(run, exclude=pid)
        check(new != pid, "the proxy process was not replaced", None)
        run.stdin_write(b"go\n")
        check(run.wait_stdout("second echo=ping", timeout=10),
              "CONNECT after the kill was not served", None)
    finally:
        try:
            run.stdin_write(b"go\n")
        except OSError:
            pass
        r = run.finish(20)
    check(r.rc == 0, "the sandbox did not exit 0", r)
    check('status="signal 9"' in r.err and "proxy process restarted" in r.err,
          "exit status or restart not logged", r)
    check(r.err.count("ALLOWED") >= 2, "both CONNECTs should be logged ALLOWED", r)


@test(kind="host")
def proxy_entry_point_refuses_to_run_outside_the_supervisor():
    r = h.run_host([SUPERVISOR, "__proxy"])
    check(r.rc == 2 and "__proxy is internal" in r.err, "__proxy ran without its sockets", r)


# --------------------------------------------------------------- baseline outside merged /usr
# These run as PID 1, like cases_isolation, over a copy of the test rootfs whose /bin and /sbin
# are real directories (Alpine and busybox images are not merged-/usr).

SPLIT = {"rootfs": None}


def split_rootfs():
    """A copy of the test rootfs with real /bin and /sbin and no policy file at all."""
    if SPLIT["rootfs"]:
        return SPLIT["rootfs"]
    out = os.path.join(CTX.tmpdir, "rootfs-split")
    subprocess.run(["cp", "-a", CTX.rootfs, out], check=True)
    for d in ("bin", "sbin"):
        os.unlink(os.path.join(out, d))
        os.rename(os.path.join(out, "usr", d), os.path.join(out, d))
        os.mkdir(os.path.join(out, "usr", d), 0o755)
    shutil.rmtree(os.path.join(out, "etc", "openshell"), ignore_errors=True)
    SPLIT["rootfs"] = out
    return out


@test()
def split_usr_image_runs_bin_sh_with_no_policy_file():
    root = split_rootfs()
    check(not os.path.islink(os.path.join(root, "bin")), "test rootfs /bin is still a link")
    r = h.run_pid1(root, ["--log-level", "info", "--", "/bin/sh", "-c",
                          "echo started; ls /sbin >/dev/null && echo sbin-readable; "
                          "touch /bin/x 2>/dev/null || echo bin-read-only; "
                          "head -c 1 /dev/zero >/dev/null && echo dev-baseline"])
    check(r.rc == 0 and "started" in r.out, "/bin/sh could not start in a split-/usr image", r)
    check("sbin-readable" in r.out, "/sbin not readable", r)
    check("bin-read-only" in r.out, "/bin is writable", r)
    # The device baseline still applies when enrichment added paths.
    check("dev-baseline" in r.out, "/dev/zero is not readable: device baseline skipped", r)


@test()
def main_command_denied_by_landlock_says_so_and_how_to_fix_it():
    exe = CTX.path("/denied-exe")
    shutil.copy(CTX.path("/usr/bin/busybox"), exe)
    os.chmod(exe, 0o755)
    try:
        r = h.run_pid1(CTX.rootfs, ["--", "/denied-exe"])
    finally:
        os.unlink(exe)
    check(r.rc == 126, "a denied main command did not exit 126", r)
    check("/denied-exe: execution denied by the filesystem policy: /denied-exe is not under any "
          "read_only or read_write path" in r.err, "the denial does not name the policy", r)
    # A file the mode forbids is still a plain "not executable".
    r = h.run_pid1(CTX.rootfs, ["--", "/etc/passwd"])
    check(r.rc == 126 and "filesystem policy" not in r.err and "not executable" in r.err,
          "a mode-denied exec was blamed on the policy", r)


@test()
def agent_core_limit_is_zero_after_exec_and_seccomp_is_on():
    # grep is two execs below the child hook: PR_SET_DUMPABLE 0 did not survive them, the core
    # limit and the filter did (docs/security.md).
    r = h.run_pid1(CTX.rootfs, ["--", "sh", "-c",
                                  "grep -E '^Max core file size' /proc/self/limits; "
                                  "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"])
    lim = [l.split() for l in r.out.splitlines() if l.startswith("Max core file size")]
    check(r.rc == 0 and lim and lim[0][4:6] == ["0", "0"], "core limit is not 0/0 after exec", r)
    check("Seccomp:\t2" in r.out and "NoNewPrivs:\t1" in r.out, "no seccomp filter after exec", r)
