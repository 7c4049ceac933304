"""Cases: the gateway session (docs/gateway.md, contract §10), the real binary as PID 1 talking to
the Python test gateway (tests/gateway/gateway.py) on 127.0.0.1 of the host's network namespace.

Covered: Hello/SessionAccepted and heartbeats; SessionRejected then retry; the bearer token on
every call (environment, file, Kubernetes SA exchange and refresh) and never in the agent's
environment; reconnect after the gateway is killed, with the backoff growing and then reset; 64 MiB
relayed both ways through a TCP target on the sandbox's loopback; non-loopback targets refused
with the contract's exact error; a stalled target that does not grow the supervisor's RSS; the exit
report (instance id, code) and its bound; https without TLS files; mTLS and a wrong CA.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

import harness as h
from harness import check, rss_kib
from suite import CTX, REPO, start, sv, test

sys.path.insert(0, os.path.join(REPO, "tests", "gateway"))
try:
    import gateway as g  # noqa: E402
    WHY_NO_GATEWAY = None
except Exception as e:  # python3-grpcio or protoc missing: every case here fails saying so
    g = None
    WHY_NO_GATEWAY = "the test gateway cannot be imported: %s: %s" % (type(e).__name__, e)

SANDBOX_ID = "sb-gw-test"
SSH_SOCK = "/run/openshell/ssh.sock"
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# The relay to a target that never reads may not grow the supervisor's RSS by more than this.
RSS_BOUND_KIB = 8 * 1024


def gw_env(gw, **extra):
    env = {"OPENSHELL_ENDPOINT": gw.endpoint if gw else "http://127.0.0.1:1",
           "OPENSHELL_SANDBOX_ID": SANDBOX_ID, "OPENSHELL_SANDBOX": SANDBOX_ID + "-name",
           "OPENSHELL_SSH_SOCKET_PATH": SSH_SOCK}
    env.update(extra)
    return env


def start_sv(gw, argv, extra=None, flags=()):
    return start(["--log-level", "debug", "--log-format", "json"] + list(flags) + ["--"] + argv,
                 extra_env=gw_env(gw, **(extra or {})))


def events_of(text, name):
    """The JSON log lines of @text whose event is @name, as dicts."""
    out = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("event") == name:
            out.append(d)
    return out


def stderr_now(run):
    return run.err.data().decode("utf-8", "replace")


def wait_log(run, name, count=1, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evs = events_of(stderr_now(run), name)
        if len(evs) >= count:
            return evs
        time.sleep(0.05)
    raise h.Fail("fewer than %d %s events within %.0f s\n%s" % (count, name, timeout,
                                                                  stderr_now(run)[-3000:]))


def calls(gw):
    return [e for e in gw.events() if e["type"] == "call"]


def stop_run(run, timeout=10.0):
    """SIGTERM; once only the exit report is left, a second SIGTERM ends the wait for it."""
    if run.proc.poll() is None:
        run.signal(signal.SIGTERM)
        if run.wait_stderr("exit_report_starting", 5) and run.proc.poll() is None:
            time.sleep(0.2)  # let a reachable gateway take the report
            if run.proc.poll() is None:
                try:
                    run.signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
    r = run.finish(timeout)
    check(not r.timed_out, "the supervisor did not stop", r)
    return r


class Gw:
    """A gateway for one test, stopped at the end whatever happens."""

    def __init__(self, **kw):
        self.kw = kw
        self.gw = None

    def __enter__(self):
        if g is None:
            raise h.Fail(WHY_NO_GATEWAY)
        self.gw = g.Gateway(sandbox_id=SANDBOX_ID, **self.kw)
        return self.gw

    def __exit__(self, *a):
        try:
            self.gw.stop()
        except Exception:
            pass


# -- session -------------------------------------------------------------------------------------

@test()
def gateway_hello_carries_ids_then_heartbeats_every_max_interval_5s():
    with Gw() as gw:
        gw.heartbeat_interval_secs = 1  # below the floor: the supervisor uses 5 s
        run = start_sv(gw, ["sleep", "60"], extra={"OPENSHELL_SANDBOX_TOKEN": "tok-hb"})
        hello = gw.wait_event("ConnectSupervisor", "hello", timeout=10)["message"]["hello"]
        check(hello.get("sandbox_id") == SANDBOX_ID, "hello sandbox_id %r" % hello)
        check(UUID4_RE.match(hello.get("instance_id", "")), "instance_id not a UUIDv4: %r" % hello)
        first = gw.wait_event("ConnectSupervisor", "heartbeat", timeout=8)
        second = gw.wait_event("ConnectSupervisor", "heartbeat", after=first["seq"], timeout=8)
        gap = second["time"] - first["time"]
        r = stop_run(run)
        check(4.5 <= gap <= 6.5, "heartbeats %.2f s apart, expected max(1, 5) = 5 s" % gap, r)
        acc = events_of(r.err, "gateway_session_accepted")
        check(acc and acc[0].get("heartbeat_secs") == "5", "no accepted log with 5 s", r)
        check(acc[0].get("instance_id") == hello["instance_id"], "logged instance id differs", r)


@test()
def gateway_mode_supervisor_threads_all_hold_only_the_kept_capabilities():
    # The setup-phase gateway calls use a resolver thread; capabilities are per thread, so
    # it must be gone before the drop and every thread after it holds the kept set only.
    import cases_caps
    with Gw() as gw:
        run = start_sv(gw, ["sleep", "60"], extra={"OPENSHELL_SANDBOX_TOKEN": "tok-caps"})
        gw.wait_event("ConnectSupervisor", "hello", timeout=10)
        pid = run.host_pid()
        tids = os.listdir("/proc/%d/task" % pid)
        for tid in tids:
            t = cases_caps.caps_of_path("/proc/%d/task/%s/status" % (pid, tid))
            check(t["CapEff"] == cases_caps.KEPT and t["CapBnd"] == cases_caps.KEPT,
                  "thread %s keeps %#x / bounding %#x" % (tid, t["CapEff"], t["CapBnd"]))
        stop_run(run)


@test()
def gateway_standalone_without_endpoint_and_no_session_without_ssh_socket():
    r = sv(["--log-level", "info", "--", "sh", "-c", "exit 5"])
    check(r.rc == 5, "standalone exit code changed", r)
    check(r.err.count("running standalone") == 1, "standalone not said exactly once", r)
    with Gw() as gw:
        env = gw_env(gw)
        del env["OPENSHELL_SSH_SOCKET_PATH"]
        r = sv(["--log-level", "info", "--", "sh", "-c", "sleep 1; exit 6"], extra_env=env)
        check(r.rc == 6, "exit code", r)
        check("OPENSHELL_SSH_SOCKET_PATH" in r.err and "no supervisor session" in r.err,
              "the reason the session did not start is not logged", r)
        check(not [e for e in calls(gw) if e["rpc"] == "ConnectSupervisor"],
              "a session was started without an SSH socket path")


@test()
def gateway_rejected_session_is_logged_and_retried():
    with Gw() as gw:
        gw.session_mode = "reject"
        gw.session_reason = "sandbox is being deleted"
        run = start_sv(gw, ["sleep", "60"])
        wait_log(run, "gateway_session_rejected", count=2, timeout=15)
        gw.session_mode = "accept"
        wait_log(run, "gateway_session_accepted", timeout=15)
        r = stop_run(run)
        rej = events_of(r.err, "gateway_session_rejected")
        check(rej[0].get("reason") == "sandbox is being deleted", "reason not logged", r)
        hellos = gw.events("ConnectSupervisor", "hello")
        check(len({e["message"]["hello"]["instance_id"] for e in hellos}) == 1,
              "instance_id changed across reconnects")


# -- one connection ---------------------------------------------------------------------------------

@test()
def gateway_one_tcp_connection_carries_every_call_during_the_run():
    """Setup calls, the session, a relay, the policy poll and the log push share one TCP
    connection; only the exit report opens its own at the end."""
    with Gw(count_connections=True) as gw:
        gw.provider_env = {"ONE_CONN": "1"}
        run = start_sv(gw, ["sh", "-c", "sleep 9; exit 3"],
                       extra={"OPENSHELL_SANDBOX_TOKEN": "tok-one",
                              "OPENSHELL_POLICY_POLL_INTERVAL_SECS": "1"})
        wait_log(run, "gateway_session_accepted", timeout=10)
        relay = gw.open_relay("ssh")
        check(relay.wait_result(10).get("success") is True, "ssh relay refused")
        c = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
        check(c.recv(64).startswith(b"SSH-2.0-"), "no SSH banner through the relay")
        c.close()
        polls = lambda: len(gw.events("GetSandboxConfig", "call"))
        deadline = time.monotonic() + 10
        while polls() < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        gw.wait_event("PushSandboxLogs", "call", timeout=10)
        during = gw.accepted_connections()
        rpcs = {e["rpc"] for e in calls(gw)}
        for rpc in ("GetSandboxConfig", "GetSandboxProviderEnvironment", "ConnectSupervisor",
                    "RelayStream", "PushSandboxLogs"):
            check(rpc in rpcs, "no %s call was made (calls: %r)" % (rpc, sorted(rpcs)))
        check(polls() >= 3, "the policy poll did not run (%d GetSandboxConfig)" % polls())
        check(len(during) == 1, "%d TCP connections accepted during the run, expected 1: %r"
              % (len(during), during))
        gw.wait_event("ReportMainProcessExit", "message", timeout=20)
        r = run.finish(15)
        check(r.rc == 3, "supervisor exit code", r)
        peers = {e["peer"] for e in calls(gw) if e["rpc"] != "ReportMainProcessExit"}
        check(len(peers) == 1, "calls came over %d connections: %r" % (len(peers), peers), r)
        total = gw.accepted_connections()
        check(len(total) == 2, "%d TCP connections over the whole run, expected the run's one "
              "and the exit report's: %r" % (len(total), total), r)


# -- token ----------------------------------------------------------------------------------------

def assert_bearer_everywhere(gw, token, r):
    cs = calls(gw)
    check(cs, "no calls reached the gateway", r)
    for c in cs:
        got = c["metadata"].get("authorization")
        check(got == "Bearer " + token, "%s went with authorization %r" % (c["rpc"], got), r)


@test()
def gateway_bearer_token_from_env_on_every_call_never_in_agent_env_or_logs():
    token = "tok-env-%d" % os.getpid()
    with Gw() as gw:
        gw.accepted_tokens = {token}
        run = start_sv(gw, ["sh", "-c", "env; exec sleep 60"],
                       extra={"OPENSHELL_SANDBOX_TOKEN": token})
        gw.wait_event("ConnectSupervisor", "hello", timeout=10)
        wait_log(run, "gateway_session_accepted")
        # An SSH relay that opens makes a RelayStream call too.
        relay = gw.open_relay("ssh")
        check(relay.wait_result(10).get("success") is True, "ssh relay refused")
        c = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
        check(c.recv(64).startswith(b"SSH-2.0-"), "no SSH banner through the relay")
        c.close()
        r = stop_run(run)
        assert_bearer_everywhere(gw, token, r)
        rpcs = {c["rpc"] for c in calls(gw)}
        for rpc in ("ConnectSupervisor", "RelayStream", "PushSandboxLogs"):
            check(rpc in rpcs, "no %s call was made (calls: %r)" % (rpc, sorted(rpcs)), r)
        check(token not in r.err, "the token appears in the supervisor's log", r)
        check("OPENSHELL_SANDBOX_TOKEN" not in r.out and token not in r.out,
              "the token reached the agent's environment", r)
        check(not any(token in json.dumps(line) for line in gw.log_lines()),
              "the token appears in the pushed log lines", r)


@test()
def gateway_bearer_token_from_file_is_trimmed():
    token = "tok-file-%d" % os.getpid()
    inside, host = CTX.unique("token")
    with open(host, "w") as f:
        f.write("\n  %s \n" % token)
    with Gw() as gw:
        gw.accepted_tokens = {token}
        run = start_sv(gw, ["sh", "-c", "env; exec sleep 60"],
                       extra={"OPENSHELL_SANDBOX_TOKEN_FILE": inside})
        wait_log(run, "gateway_session_accepted", timeout=10)
        r = stop_run(run)
        assert_bearer_everywhere(gw, token, r)
        check("OPENSHELL_SANDBOX_TOKEN_FILE" not in r.out, "the file variable reached the agent", r)


@test()
def gateway_k8s_sa_token_is_exchanged_then_refreshed():
    sa = "sa-token-%d" % os.getpid()
    inside, host = CTX.unique("satoken")
    with open(host, "w") as f:
        f.write(sa + "\n")
    with Gw() as gw:
        gw.issue_token = "issued-%d" % os.getpid()
        gw.token_ttl_ms = 2000  # refresh at 80..89% of 2 s
        gw.accepted_tokens = set()  # issued and refreshed tokens are added by the gateway
        run = start_sv(gw, ["sleep", "60"], extra={"OPENSHELL_K8S_SA_TOKEN_FILE": inside})
        hello = gw.wait_event("ConnectSupervisor", "call", timeout=20)
        check(hello["metadata"].get("authorization") == "Bearer " + gw.issue_token,
              "ConnectSupervisor not called with the issued token")
        issues = gw.events("IssueSandboxToken", "call")
        for e in issues:
            check(e["metadata"].get("authorization") == "Bearer " + sa,
                  "IssueSandboxToken not called with the SA token")
        # One token owner: the exchange made for the setup-phase policy fetch serves the session.
        check(len(issues) == 1, "IssueSandboxToken called %d times, expected once" % len(issues))
        before = [e for e in issues if e["seq"] < hello["seq"]]
        check(before, "no IssueSandboxToken before ConnectSupervisor")
        issue = before[-1]
        for c in calls(gw):
            if c["rpc"] != "IssueSandboxToken":
                check(c["metadata"].get("authorization", "").startswith("Bearer "),
                      "%s went without a bearer" % c["rpc"])
        ref1 = gw.wait_event("RefreshSandboxToken", "call", timeout=10)
        check(ref1["metadata"].get("authorization") == "Bearer " + gw.issue_token,
              "first refresh not with the issued token")
        lag = ref1["time"] - issue["time"]
        check(1.0 <= lag <= 3.0, "refresh %.2f s after issue, expected ~1.6-1.8 s" % lag)
        ref2 = gw.wait_event("RefreshSandboxToken", "call", after=ref1["seq"], timeout=10)
        check(ref2["metadata"].get("authorization") == "Bearer refreshed-1",
              "second refresh not with the refreshed token")
        r = stop_run(run)
        check(sa not in r.err and gw.issue_token not in r.err, "a token was logged", r)


# -- reconnect ------------------------------------------------------------------------------------

@test()
def gateway_restart_reconnects_with_backoff_growing_then_reset():
    with Gw() as gw0:
        port = gw0.port
    # gw0 is stopped: every attempt fails until a gateway listens on that port again
    gw = None
    run = None
    try:
        gw = g.Gateway(sandbox_id=SANDBOX_ID, port=port)
        run = start_sv(gw, ["sleep", "120"])
        wait_log(run, "gateway_session_accepted", timeout=10)
        time.sleep(5.5)  # an accepted session that stays up 5 s resets the backoff
        gw.stop()
        fails = wait_log(run, "gateway_session_failed", count=4, timeout=20)
        delays = [int(e["retry_ms"]) for e in fails[:4]]
        check(delays[0] <= 1000 and delays[1] > delays[0] and delays[2] > delays[1] and
              delays[3] > delays[2], "backoff did not grow: %r" % delays)
        check(1600 <= delays[1] <= 2000 and 3200 <= delays[2] <= 4000,
              "backoff not 1 s doubling with <=20%% jitter: %r" % delays)
        gw = g.Gateway(sandbox_id=SANDBOX_ID, port=port)
        n_acc = len(events_of(stderr_now(run), "gateway_session_accepted"))
        wait_log(run, "gateway_session_accepted", count=n_acc + 1, timeout=20)
        time.sleep(5.5)
        n_fail = len(events_of(stderr_now(run), "gateway_session_failed"))
        gw.stop()
        after = wait_log(run, "gateway_session_failed", count=n_fail + 1, timeout=10)[n_fail]
        check(int(after["retry_ms"]) <= 1000,
              "backoff not reset after a session stayed up: %r" % after)
        gw = None
    finally:
        if gw:
            gw.stop()
        if run:
            stop_run(run)


# -- relays ---------------------------------------------------------------------------------------

def wait_listening(run, port, timeout=10.0):
    check(run.wait_stdout("listening %d" % port, timeout), "tcpsvc did not listen on %d" % port)


@test()
def gateway_tcp_relay_carries_64mib_both_ways_hashes_equal():
    size = 64 * 1024 * 1024
    with Gw() as gw:
        run = start_sv(gw, ["tcpsvc", "echo", "7000"])
        wait_listening(run, 7000)
        wait_log(run, "gateway_session_accepted", timeout=10)
        relay = gw.open_relay("tcp", "localhost", 7000)
        res = relay.wait_result(10)
        check(res.get("success") is True, "relay refused: %r" % res)
        s = socket.create_connection(("127.0.0.1", relay.port), timeout=60)
        data = os.urandom(size)
        sent_hash = hashlib.sha256(data).hexdigest()
        got = hashlib.sha256()
        received = [0]

        def reader():
            while received[0] < size:
                d = s.recv(1 << 20)
                if not d:
                    break
                got.update(d)
                received[0] += len(d)

        t = threading.Thread(target=reader, daemon=True)
        t0 = time.monotonic()
        t.start()
        s.sendall(data)
        t.join(120)
        secs = time.monotonic() - t0
        s.close()
        r = stop_run(run)
        check(received[0] == size, "received %d of %d bytes" % (received[0], size), r)
        check(got.hexdigest() == sent_hash, "hashes differ", r)
        print("# 64 MiB echoed through the relay in %.1f s (%.1f MiB/s each way)" %
              (secs, 64 / secs), flush=True)
        opened = events_of(r.err, "relay_opened")
        check(opened and opened[0].get("target") == "tcp:localhost:7000", "no relay_opened", r)


@test()
def gateway_non_loopback_and_bad_port_targets_refused_with_exact_errors():
    with Gw() as gw:
        run = start_sv(gw, ["sleep", "60"])
        wait_log(run, "gateway_session_accepted", timeout=10)
        cases = [(("tcp", "10.0.0.1", 22), "tcp target host must be loopback"),
                 (("tcp", "example.com", 22), "tcp target host must be loopback"),
                 (("tcp", "127.0.0.1", 0), "tcp target port must be between 1 and 65535"),
                 (("tcp", "localhost", 70000), "tcp target port must be between 1 and 65535")]
        for (kind, host, port), want in cases:
            res = gw.open_relay(kind, host, port).wait_result(10)
            check(res.get("success") is not True and res.get("error") == want,
                  "%s:%s -> %r, want %r" % (host, port, res, want))
        # A loopback port nobody listens on, dialed in the sandbox's namespace.
        res = gw.open_relay("tcp", "127.0.0.1", 7999).wait_result(10)
        check(res.get("success") is not True and "refused" in res.get("error", ""),
              "closed port: %r" % res)
        stop_run(run)


@test()
def gateway_ssh_relay_reaches_the_ssh_server_on_the_socket():
    with Gw() as gw:
        run = start_sv(gw, ["sleep", "60"])
        wait_log(run, "gateway_session_accepted", timeout=10)
        for kind in ("ssh", "none"):  # no target means SSH too
            rel = gw.open_relay(kind)
            res = rel.wait_result(10)
            check(res.get("success") is True, "ssh relay refused: %r" % res)
            c = socket.create_connection(("127.0.0.1", rel.port), timeout=10)
            banner = c.recv(64)
            c.close()
            check(banner.startswith(b"SSH-2.0-"), "ssh relay: no SSH banner but %r" % banner)
        stop_run(run)


@test()
def gateway_relay_to_stalled_target_keeps_rss_bounded_and_other_relays_flowing():
    with Gw() as gw:
        run = start_sv(gw, ["sh", "-c", "tcpsvc stall 7001 & exec tcpsvc echo 7000"])
        wait_listening(run, 7000)
        wait_listening(run, 7001)
        wait_log(run, "gateway_session_accepted", timeout=10)
        pid = run.host_pid()
        before = rss_kib(pid)
        stalled = gw.open_relay("tcp", "127.0.0.1", 7001)
        check(stalled.wait_result(10).get("success") is True, "stall relay refused")
        s = socket.create_connection(("127.0.0.1", stalled.port), timeout=10)
        s.setblocking(False)
        pushed = 0
        chunk = os.urandom(1 << 16)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and pushed < 256 * 1024 * 1024:
            try:
                pushed += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.05)
        peak = rss_kib(pid)
        # while that one is stuck, another relay still works
        other = gw.open_relay("tcp", "127.0.0.1", 7000)
        check(other.wait_result(10).get("success") is True, "second relay refused")
        o = socket.create_connection(("127.0.0.1", other.port), timeout=10)
        # no half-close here: the gateway's end would end the relay (gRPC ends a call with its
        # trailers), before the echo came back
        o.sendall(b"ping-through-the-other-relay")
        back = b""
        while len(back) < 28:
            d = o.recv(100)
            if not d:
                break
            back += d
        o.close()
        s.close()
        r = stop_run(run)
        check(back == b"ping-through-the-other-relay", "the other relay stalled: %r" % back, r)
        check(pushed < 64 * 1024 * 1024,
              "%d bytes went into a target that never reads: no back-pressure" % pushed, r)
        grew = peak - before
        print("# stalled relay: %.1f MiB pushed before back-pressure, supervisor RSS %d -> %d KiB"
              % (pushed / 1048576, before, peak), flush=True)
        check(grew < RSS_BOUND_KIB, "supervisor RSS grew %d KiB (bound %d)" % (grew, RSS_BOUND_KIB),
              r)


@test()
def gateway_relay_to_a_target_that_never_accepts_fails_after_10s():
    with Gw() as gw:
        run = start_sv(gw, ["tcpsvc", "full", "7002"])
        wait_listening(run, 7002)
        wait_log(run, "gateway_session_accepted", timeout=10)
        # the first connections fill the accept queue; later SYNs are dropped
        relays = [gw.open_relay("tcp", "127.0.0.1", 7002) for _ in range(4)]
        t0 = time.monotonic()
        results = [rel.wait_result(15) for rel in relays]
        took = time.monotonic() - t0
        r = stop_run(run)
        failed = [x for x in results if x.get("success") is not True]
        check(failed, "every connection to a full listener succeeded: %r" % results, r)
        check(all("within 10 s" in x.get("error", "") for x in failed),
              "unexpected errors: %r" % failed, r)
        check(9.0 <= took <= 14.0, "the pending relay was given up after %.1f s" % took, r)


# -- exit report ----------------------------------------------------------------------------------

@test()
def gateway_exit_report_carries_hello_instance_id_and_exit_code():
    with Gw() as gw:
        run = start_sv(gw, ["sh", "-c", "sleep 2; exit 7"])
        hello = gw.wait_event("ConnectSupervisor", "hello", timeout=10)["message"]["hello"]
        ev = gw.wait_event("ReportMainProcessExit", "message", timeout=15)["message"]
        r = run.finish(10)
        check(r.rc == 7, "supervisor exit code", r)
        check(ev.get("sandbox_id") == SANDBOX_ID, "exit sandbox_id %r" % ev, r)
        check(ev.get("instance_id") == hello["instance_id"], "exit instance_id %r" % ev, r)
        check(ev.get("exit_code") == 7, "exit code in report %r" % ev, r)
        check(events_of(r.err, "exit_report_sent"), "no exit_report_sent", r)


@test()
def gateway_exit_report_while_gateway_down_gives_up_after_timeout():
    with Gw() as gw:
        run = start(["--log-level", "info", "--log-format", "json", "--exit-report-timeout", "3",
                     "--", "sh", "-c", "sleep 4; exit 3"], extra_env=gw_env(gw))
        wait_log(run, "gateway_session_accepted", timeout=10)
        gw.stop()  # down from here on: the report cannot get through
        check(run.wait_stderr("exit_report_starting", 15), "exit report never started")
        t0 = time.monotonic()
        r = run.finish(20)
        waited = time.monotonic() - t0
        check(r.rc == 3, "supervisor exit code", r)
        check(2.5 <= waited <= 6.0,
              "gave up %.1f s after starting, --exit-report-timeout 3" % waited, r)
        ab = events_of(r.err, "exit_report_abandoned")
        check(ab and int(ab[0]["attempts"]) >= 2, "not retried, or not abandoned loudly", r)
        check(not events_of(r.err, "exit_report_sent"), "a report claims to have been sent", r)


@test()
def gateway_sigterm_during_exit_report_wait_ends_it_at_once():
    with Gw() as gw:
        run = start(["--log-level", "info", "--log-format", "json", "--exit-report-timeout",
                     "60", "--", "sh", "-c", "sleep 3; exit 4"], extra_env=gw_env(gw))
        wait_log(run, "gateway_session_accepted", timeout=10)
        gw.stop()
        check(run.wait_stderr("exit_report_starting", 15), "exit report never started")
        t0 = time.monotonic()
        run.signal(signal.SIGTERM)
        r = run.finish(10)
        check(r.rc == 4, "exit code changed by the interrupted report", r)
        check(time.monotonic() - t0 < 2.0, "SIGTERM did not end the wait promptly", r)
        check(events_of(r.err, "services_wait_interrupted"), "no services_wait_interrupted", r)


# -- TLS ------------------------------------------------------------------------------------------

@test()
def gateway_https_without_tls_files_is_refused_naming_the_variable():
    env = {"OPENSHELL_ENDPOINT": "https://127.0.0.1:1"}
    r = sv(["--", "sh", "-c", "echo ran"], extra_env=gw_env(None, **env))
    check(r.rc == 1 and "OPENSHELL_TLS_CA" in r.err and "ran" not in r.out,
          "https without OPENSHELL_TLS_CA", r)
    inside, host = CTX.unique("ca")
    with open(host, "w") as f:
        f.write("x")
    env.update({"OPENSHELL_TLS_CA": inside, "OPENSHELL_TLS_CERT": "/nonexistent/cert.pem",
                "OPENSHELL_TLS_KEY": inside})
    r = sv(["--", "sh", "-c", "echo ran"], extra_env=gw_env(None, **env))
    check(r.rc == 1 and "OPENSHELL_TLS_CERT" in r.err and "/nonexistent/cert.pem" in r.err,
          "unreadable OPENSHELL_TLS_CERT", r)


def local_policy():
    """A policy file in the rootfs: with it the policy is not fetched from the gateway."""
    path = CTX.path("/etc/openshell/gw-local.ini")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("[filesystem]\nread_only = /usr\n")
    return "/etc/openshell/gw-local.ini"


def pki_in_rootfs():
    tmp = tempfile.mkdtemp(prefix="sv-gw-pki-")
    pki = g.make_pki(tmp)
    inside = {}
    for k in ("ca", "client_cert", "client_key", "other_ca"):
        i, hpath = CTX.unique(k)
        shutil.copy(pki[k], hpath)
        inside[k] = i
    return tmp, pki, inside


@test()
def gateway_mtls_session_works_and_a_wrong_ca_is_refused():
    tmp, pki, inside = pki_in_rootfs()
    try:
        with Gw(tls=pki) as gw:
            tls = {"OPENSHELL_TLS_CA": inside["ca"], "OPENSHELL_TLS_CERT": inside["client_cert"],
                   "OPENSHELL_TLS_KEY": inside["client_key"]}
            run = start_sv(gw, ["sleep", "60"], extra=tls)
            wait_log(run, "gateway_session_accepted", timeout=15)
            r = stop_run(run)
            check(gw.events("ConnectSupervisor", "hello"), "no hello over mTLS", r)
            n = len(gw.events("ConnectSupervisor", "hello"))
            tls["OPENSHELL_TLS_CA"] = inside["other_ca"]
            tls["OPENSHELL_POLICY_FILE"] = local_policy()
            run = start_sv(gw, ["sleep", "60"], extra=tls)
            wait_log(run, "gateway_session_failed", count=2, timeout=15)
            r = stop_run(run)
            check(len(gw.events("ConnectSupervisor", "hello")) == n,
                  "a session went through with the wrong CA", r)
            check(not events_of(r.err, "gateway_session_accepted"), "accepted with a wrong CA", r)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
