"""Cases: the gateway as policy source, provider environment and log sink, with the real binary
as PID 1 talking to the test gateway (tests/gateway/gateway.py) on 127.0.0.1 over h2c.

The supervisor shares the host's network namespace in these runs (only PID and mount namespaces
are new), so it reaches the in-process gateway; its agent sits in its own namespace behind the
egress proxy. The network case reuses cases_proxy's fake internet (10.99.0.2) as upstream.
"""

import copy
import os
import re
import signal
import sys
import time

import harness as h
from harness import check
from suite import CTX, REPO, start, sv, test

sys.path.insert(0, os.path.join(REPO, "tests", "gateway"))
import gateway as g  # noqa: E402

SANDBOX_ID = "sb-gw-policy"
TOKEN = "it-token-7f3c"
# Enough for busybox sh and the helpers; /etc and /opt deliberately absent.
BASE_RO = ["/usr", "/proc", "/dev/urandom"]
BASE_RW = ["/tmp", "/dev/null"]


def env_for(gw, **more):
    e = {"OPENSHELL_ENDPOINT": gw.endpoint, "OPENSHELL_SANDBOX_ID": SANDBOX_ID,
         "OPENSHELL_SANDBOX_TOKEN": TOKEN, "OPENSHELL_POLICY_POLL_INTERVAL_SECS": "1"}
    e.update(more)
    return e


def fs_policy(ro=(), rw=(), rules=None):
    p = {"filesystem": {"include_workdir": False, "read_only": BASE_RO + list(ro),
                        "read_write": BASE_RW + list(rw)}}
    if rules:
        p["network_policies"] = rules
    return p


def statuses(gw):
    return [e["message"] for e in gw.events("ReportPolicyStatus", "message")]


def wait_until(fn, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


@test()
def gateway_policy_is_enforced_and_a_path_it_omits_is_unreadable():
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        # /opt is granted and /etc omitted: the opposite of the restrictive default, so only the
        # gateway's policy can explain both results.
        gw.set_policy(fs_policy(ro=["/opt"]))
        r = sv(["--", "sh", "-c", "cat /opt/secret; cat /etc/hostname || echo etc-denied"],
               extra_env=env_for(gw), timeout=20)
        check(r.rc == 0, "sandbox failed", r)
        check("secret" in r.out, "a path the gateway policy grants is unreadable", r)
        check("etc-denied" in r.out and "openshell-test" not in r.out,
              "/etc is readable although the gateway policy omits it", r)
        st = wait_until(lambda: statuses(gw), 5)
        check(st and st[0].get("status") == "POLICY_STATUS_LOADED" and st[0].get("version") == 1,
              "no LOADED status for version 1: %r" % st, r)
        calls = gw.events(what="call")
        check(calls and all(e["metadata"].get("authorization") == "Bearer " + TOKEN
                            for e in calls), "a call without the bearer token", r)
    finally:
        gw.stop()


@test()
def invalid_gateway_policy_reports_failed_and_enforces_the_restrictive_default():
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        bad = fs_policy(ro=["/opt"])
        bad["filesystem"]["read_only"].append("relative/path")
        gw.set_policy(bad)
        r = sv(["--", "sh", "-c", "cat /opt/secret || echo opt-denied; cat /etc/hostname"],
               extra_env=env_for(gw), timeout=20)
        check(r.rc == 0, "sandbox failed", r)
        # The restrictive default (contract §3.2): /etc readable, /opt not.
        check("opt-denied" in r.out and "openshell-test" in r.out,
              "the restrictive default is not what the agent got", r)
        st = wait_until(lambda: statuses(gw), 5)
        check(st and st[0].get("status") == "POLICY_STATUS_FAILED",
              "no FAILED status: %r" % st, r)
        err = st[0].get("load_error", "")
        check("filesystem.read_only[4]" in err and "must be absolute" in err,
              "FAILED status does not name the field: %r" % err, r)
        check("gateway_policy_invalid" in r.err or "invalid gateway policy" in r.err,
              "the supervisor did not say the policy was invalid", r)
    finally:
        gw.stop()


def ck(run, cond, msg):
    """check() for a run still going: on failure the run is ended and described."""
    if not cond:
        r = run.finish(0.1)
        lines = [l for l in r.err.splitlines() if "NET:OPEN" not in l]
        raise h.Fail(msg + "\n" + r.describe(limit=300) + "\n" + "\n".join(lines[-40:]))


def _wait_out_after(run, start_len, needle, timeout):
    needle = needle.encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in run.out.data()[start_len:]:
            return True
        time.sleep(0.05)
    return needle in run.out.data()[start_len:]


@test()
def gateway_network_rule_allows_a_new_connect_within_one_poll():
    import cases_proxy  # the fake internet at 10.99.0.2 (ip netns)
    why = cases_proxy.fake_internet()
    if why:
        raise h.Fail(why)
    target = "%s:8080" % cases_proxy.FAKE_IP
    allow = {"fake": {"endpoints": [{"host": cases_proxy.FAKE_IP, "port": 8080}],
                      "binaries": [{"path": "/usr/local/bin/proxyconnect"}]}}
    other = {"other": {"endpoints": [{"host": "example.com", "port": 443}],
                       "binaries": [{"path": "/usr/local/bin/proxyconnect"}]}}
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    run = r = None
    try:
        gw.set_policy(fs_policy(rules=other))
        loop = "i=0; while [ $i -lt 400 ]; do proxyconnect %s; sleep 0.2; i=$((i+1)); done" % target
        run = start(["--log-level", "info", "--", "sh", "-c", loop], extra_env=env_for(gw))
        if not run.wait_stdout("status=403", 15):
            raise h.Fail("the first CONNECT was not denied\n" + run.finish(0.1).describe())
        # 1. A rule added by the gateway: new CONNECTs allowed within one poll (1 s).
        mark = len(run.out.data())
        t0 = time.monotonic()
        gw.set_policy(fs_policy(rules=dict(other, **allow)))
        ok = _wait_out_after(run, mark, "status=200", 5)
        took = time.monotonic() - t0
        ck(run, ok, "the added rule did not allow a CONNECT within 5 s")
        ck(run, _wait_out_after(run, mark, "tunnel=HTTP/1.0 200", 3),
              "the tunnel did not reach the upstream")
        st = wait_until(lambda: [s for s in statuses(gw) if s.get("version") == 2], 5)
        ck(run, st and st[0]["status"] == "POLICY_STATUS_LOADED", "no LOADED for version 2: %r"
              % statuses(gw))
        ck(run, took < 1.0 + 0.2 + 2.0, "took %.2f s for a 1 s poll" % took)
        # 2. An invalid generation, fail_closed (the default): all egress denied.
        bad = copy.deepcopy(fs_policy(rules=dict(other, **allow)))
        bad["network_policies"]["fake"]["endpoints"][0]["port"] = 0
        mark = len(run.out.data())
        gw.set_policy(bad)
        ck(run, _wait_out_after(run, mark, "status=403", 5),
              "an invalid policy with fail_closed did not deny egress")
        st = wait_until(lambda: [s for s in statuses(gw) if s.get("version") == 3], 5)
        ck(run, st and st[0]["status"] == "POLICY_STATUS_FAILED" and
              "endpoints[0].port" in st[0].get("load_error", ""),
              "no FAILED naming the port for version 3: %r" % statuses(gw))
        # 3. Valid again, then invalid with retain_last_valid: the last valid rules stay.
        mark = len(run.out.data())
        gw.set_policy(fs_policy(rules=dict(other, **allow)))
        ck(run, _wait_out_after(run, mark, "status=200", 5), "a valid policy did not recover")
        gw.set_policy(bad, failure_mode="retain_last_valid")
        st = wait_until(lambda: [s for s in statuses(gw) if s.get("version") == 5], 5)
        ck(run, st and st[0]["status"] == "POLICY_STATUS_FAILED",
           "the invalid generation 5 was not polled and reported FAILED: %r" % statuses(gw))
        mark = len(run.out.data())
        time.sleep(1.0)
        ck(run, _wait_out_after(run, mark, "status=200", 3) and
              b"status=403" not in run.out.data()[mark:],
              "retain_last_valid did not keep the last valid rules")
        run.signal(signal.SIGTERM)
        r = run.finish(10)
        check("gateway_policy_reloaded" in r.err or "gateway policy changed" in r.err,
              "no reload logged", r)
    finally:
        if run and run.proc.poll() is None:
            run.kill()
        gw.stop()


@test()
def gateway_rest_endpoint_loads_and_requests_are_judged_in_the_tunnel_tls_skip_stays_l4():
    import cases_proxy  # the fake internet at 10.99.0.2 (ip netns)
    why = cases_proxy.fake_internet()
    if why:
        raise h.Fail(why)
    target = "%s:8080" % cases_proxy.FAKE_IP
    binary = [{"path": "/usr/local/bin/proxyconnect"}]
    rest = {"api": {"endpoints": [{"host": cases_proxy.FAKE_IP, "port": 8080, "protocol": "rest",
                                   "enforcement": "enforce",
                                   "rules": [{"allow": {"method": "GET", "path": "/**",
                                                        "query": {"q": {"any": ["a*"]}}}}]}],
                    "binaries": binary}}
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        gw.set_policy(fs_policy(rules=rest))
        r = sv(["--", "sh", "-c", "proxyconnect %s" % target], extra_env=env_for(gw), timeout=20)
        # The CONNECT is admitted; the request inside the tunnel is judged by the rest rules
        # (GET / without q=a* is a policy miss under enforce) and denied with the L7 403.
        check("status=200" in r.out and "tunnel=HTTP/1.1 403 Forbidden" in r.out,
              "a request to a rest endpoint was not judged inside the tunnel", r)
        want = "L7_REQUEST deny GET %s/ reason=GET / not permitted by policy" % target
        check(want in r.err, "no L7_REQUEST deny line", r)
        st = wait_until(lambda: statuses(gw), 5)
        check(st and st[0].get("status") == "POLICY_STATUS_LOADED",
              "the rest endpoint did not load: %r" % st, r)
        check("policy_endpoint_dropped" not in r.err, "the endpoint was dropped", r)
        # The L7 denial reaches the gateway's denial summaries (stage l7, its method and path).
        mine = wait_until(lambda: [s for s in gw.analysis_summaries()
                                   if s.get("host") == cases_proxy.FAKE_IP], 5)
        check(mine and mine[0].get("port") == 8080 and mine[0].get("denial_stage") == "l7" and
              any(x.get("method") == "GET" and x.get("path") == "/"
                  for x in mine[0].get("l7_request_samples", [])),
              "the L7 denial is not in the gateway's denial summaries: %r" % mine, r)
    finally:
        gw.stop()
    skip = copy.deepcopy(rest)
    skip["api"]["endpoints"][0]["tls"] = "skip"
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        gw.set_policy(fs_policy(rules=skip))
        r = sv(["--", "sh", "-c", "proxyconnect %s" % target], extra_env=env_for(gw), timeout=20)
        check("status=200" in r.out and "tunnel=HTTP/1.0 200" in r.out,
              "a tls: skip endpoint is not plain L4", r)
    finally:
        gw.stop()


@test()
def provider_environment_reaches_the_agent_and_its_values_stay_out_of_logs():
    secret = "pv-%d-do-not-log" % os.getpid()
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        gw.set_policy(fs_policy())
        gw.provider_env = {"PROVIDER_SECRET": secret, "OPENSHELL_SANDBOX_TOKEN": "leak",
                           "BAD=NAME": "x"}
        r = sv(["--log-level", "debug", "--", "sh", "-c",
                "echo v=$PROVIDER_SECRET t=${OPENSHELL_SANDBOX_TOKEN:-none};"
                " cat /proc/self/environ | tr '\\0' '\\n' | grep -c '%s' || true;"
                " sleep 1.5" % secret],
               extra_env=env_for(gw), timeout=20)
        check(r.rc == 0, "sandbox failed", r)
        # The agent gets the placeholder; the value stays in the supervisor (l7 contract §3.2).
        check(re.search(r"v=openshell:resolve:env:(v[0-9]+_)?PROVIDER_SECRET\b", r.out),
              "the provider variable is not its placeholder in the agent", r)
        check(secret not in r.out, "the provider value reached the agent's environment", r)
        # ... and the proxy process holds the store that resolves it (one variable kept)
        check(re.search(r"provider credentials loaded .*count=1\b", r.err),
              "the proxy process did not load the credential store", r)
        check("credentials_swap_failed" not in r.err and "proxy_control_invalid" not in r.err,
              "the credential store did not reach the proxy process", r)
        check("t=none" in r.out, "a stripped variable reached the agent from the provider", r)
        check(secret not in r.err, "a provider value was logged", r)
        req = gw.events("GetSandboxProviderEnvironment", "message")
        # The relay enforces bindings (cases_credentials), so the capability is claimed; the
        # stripped OPENSHELL_SANDBOX_TOKEN the gateway lists as non-secret did not make the
        # §3.5 check revoke the set (count=1 above).
        check(req and req[0]["message"].get("supports_static_credential_bindings") is True and
              req[0]["message"].get("sandbox_id") == SANDBOX_ID,
              "request lacks sandbox_id or does not claim supports_static_credential_bindings: "
              "%r" % req, r)
        check("provider_credentials_rejected" not in r.err,
              "the static set was rejected: %s" % r.err, r)
        lines = gw.log_lines()
        check(not any(secret in l.get("message", "") for l in lines),
              "a provider value was pushed to the gateway", r)
    finally:
        gw.stop()


@test(kind="host")
def provider_credentials_reach_a_restarted_proxy_process():
    from cases_proxy import proxy_child_of
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    run = None
    try:
        gw.set_policy(fs_policy())
        gw.provider_env = {"PROVIDER_SECRET": "pv-restart-%d" % os.getpid()}
        run = start(["--log-level", "debug", "--", "sh", "-c", "sleep 6"],
                    extra_env=env_for(gw))
        check(run.wait_stderr("provider credentials loaded", timeout=10),
              "the first proxy process did not load the store", None)
        pid = proxy_child_of(run)
        os.kill(pid, 9)
        check(run.wait_stderr("proxy process restarted", timeout=5), "no restart line", None)
        proxy_child_of(run, exclude=pid)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and \
                run.err.data().count(b"provider credentials loaded") < 2:
            time.sleep(0.05)
        check(run.err.data().count(b"provider credentials loaded") >= 2,
              "the restarted proxy process did not get the store again", None)
    finally:
        if run:
            r = run.finish(20)
        gw.stop()
    check(r is not None and "pv-restart-" not in r.err, "a provider value was logged", r)


@test()
def provider_environment_failure_starts_the_agent_without_it():
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        gw.set_policy(fs_policy())
        gw.fail["GetSandboxProviderEnvironment"] = (g.grpc.StatusCode.INTERNAL, "boom")
        r = sv(["--", "sh", "-c", "echo started"], extra_env=env_for(gw), timeout=20)
        check(r.rc == 0 and "started" in r.out, "the agent did not start", r)
        check("provider_env_failed" in r.err or "provider environment unavailable" in r.err,
              "the failure was not logged", r)
    finally:
        gw.stop()


@test()
def supervisor_log_lines_arrive_at_the_gateway():
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        gw.set_policy(fs_policy())
        run = start(["--", "sh", "-c", "sleep 3"], extra_env=env_for(gw))
        got = wait_until(lambda: [l for l in gw.log_lines()
                                  if "Starting sandbox" in l.get("message", "")], 5)
        ocsf = wait_until(lambda: [l for l in gw.log_lines() if l.get("level") == "OCSF"], 3)
        r = run.finish(10)
        check(got, "'Starting sandbox' never reached the gateway", r)
        line = got[0]
        check(line.get("level") == "INFO" and line.get("source") == "sandbox" and
              line.get("sandbox_id") == SANDBOX_ID and int(line.get("timestamp_ms", 0)) > 0,
              "wrong log line fields: %r" % line, r)
        check(line.get("fields", {}).get("event") == "sandbox_starting",
              "the event name is not carried: %r" % line, r)
        check(ocsf, "no OCSF line pushed (Landlock's CONFIG:ENABLED is one)", r)
        # The console level is warn (default) yet info lines are pushed: independent levels.
        check("Starting sandbox" not in r.err, "info reached the console at level warn", r)
        calls = gw.events("PushSandboxLogs", "message")
        check(all(len(e["message"].get("logs", [])) <= 50 for e in calls),
              "a batch of more than 50 lines", r)
        # The lines of the last moments are sent before the supervisor exits.
        last = [l for l in gw.log_lines() if l.get("fields", {}).get("event") ==
                "main_process_exited"]
        check(last, "the main process's exit never reached the gateway", r)
    finally:
        gw.stop()


@test()
def log_push_unauthenticated_disables_it_for_good():
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        gw.set_policy(fs_policy())
        gw.unauthenticated = {"PushSandboxLogs"}
        r = sv(["--", "sh", "-c", "sleep 3"], extra_env=env_for(gw), timeout=20)
        check(r.rc == 0, "sandbox failed", r)
        check("log_push_disabled" in r.err or "log push: disabled" in r.err or
              "refused the log push" in r.err, "the supervisor did not say it disabled the push",
              r)
        n = len(gw.events("PushSandboxLogs", "call"))
        check(n == 1, "the push was retried after Unauthenticated (%d calls)" % n, r)
    finally:
        gw.stop()


@test()
def gateway_unreachable_at_start_is_a_setup_error_after_five_attempts():
    s = __import__("socket").socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    env = {"OPENSHELL_ENDPOINT": "http://127.0.0.1:%d" % port, "OPENSHELL_SANDBOX_ID": SANDBOX_ID,
           "OPENSHELL_SANDBOX_TOKEN": TOKEN}
    r = sv(["--", "sh", "-c", "echo agent-ran"], extra_env=env, timeout=40)
    check(r.rc == 1, "not a setup error", r)
    check("agent-ran" not in r.out, "the agent ran without a policy", r)
    check("GetSandboxConfig failed after 5 attempts" in r.err, "no clear error", r)
    # Sleeps of 1, 2, 4 and 4 s between the attempts (contract §2 step 5).
    check(11.0 <= r.elapsed < 25.0, "retries took %.1f s, expected about 11" % r.elapsed, r)


@test()
def gateway_filesystem_change_is_startup_only_and_reported_so():
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    run = None
    try:
        gw.set_policy(fs_policy(ro=["/opt"]))
        loop = "i=0; while [ $i -lt 100 ]; do cat /opt/secret; sleep 0.2; i=$((i+1)); done"
        run = start(["--", "sh", "-c", loop], extra_env=env_for(gw))
        ck(run, run.wait_stdout("secret", 10), "the startup policy was not enforced")
        gw.set_policy(fs_policy())  # /opt gone: needs a restart to take effect
        st = wait_until(lambda: [s for s in statuses(gw) if s.get("version") == 2], 6)
        ck(run, st and st[0]["status"] == "POLICY_STATUS_LOADED" and
           "restarts" in st[0].get("load_error", ""),
           "the filesystem change was not reported as startup-only: %r" % statuses(gw))
        mark = len(run.out.data())
        ck(run, _wait_out_after(run, mark, "secret", 3),
           "a filesystem change was applied to the running agent")
        run.signal(signal.SIGTERM)
        r = run.finish(10)
        check("policy_static_change_deferred" in r.err or "take effect only when" in r.err,
              "the deferred change was not logged", r)
    finally:
        if run and run.proc.poll() is None:
            run.kill()
        gw.stop()


@test()
def gateway_without_a_policy_syncs_the_local_policy_file_then_enforces_it():
    path = os.path.join(CTX.rootfs, "etc", "openshell", "policy.ini")
    saved = None
    if os.path.exists(path):
        with open(path) as f:
            saved = f.read()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        with open(path, "w") as f:
            f.write("[filesystem]\nread_only = /usr\nread_only = /opt\nread_write = /dev/null\n")
        gw.set_policy(None)  # the gateway has no policy for this sandbox
        r = sv(["--", "sh", "-c", "cat /opt/secret; cat /etc/hostname || echo etc-denied"],
               extra_env=env_for(gw, OPENSHELL_SANDBOX="sb-gw-policy-name"), timeout=20)
        check(r.rc == 0 and "secret" in r.out and "etc-denied" in r.out,
              "the local policy file was not the one enforced", r)
        # Contract §3.4: the discovered policy is synced with UpdateConfig, re-fetched, and the
        # re-fetched revision acknowledged.
        ups = [e["message"] for e in gw.events("UpdateConfig", "message")]
        check(len(ups) == 1 and ups[0].get("name") == "sb-gw-policy-name" and
              "/opt" in ups[0].get("policy", {}).get("filesystem", {}).get("read_only", []),
              "the local policy file was not synced with UpdateConfig: %r" % ups, r)
        check(any(st.get("version") == gw.policy_version and
                  st.get("status") == "POLICY_STATUS_LOADED" for st in statuses(gw)),
              "the synced revision was not acknowledged: %r" % statuses(gw), r)
    finally:
        gw.stop()
        if saved is None:
            os.unlink(path)
        else:
            with open(path, "w") as f:
                f.write(saved)
