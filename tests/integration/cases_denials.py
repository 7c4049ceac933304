"""Cases: denial summaries (contract §8 "Denial event", §10 SubmitPolicyAnalysis) with the real
binary as PID 1 talking to the test gateway (tests/gateway/gateway.py) on 127.0.0.1 over h2c.

The agent asks the egress proxy for destinations no rule allows; the proxy process hands each
denial to PID 1, which aggregates them per (host, port, binary) and sends them every
OPENSHELL_DENIAL_FLUSH_INTERVAL_SECS with mechanistic proposals. Denials are decided before
any name resolution or dial, so no upstream is needed.
"""

import os
import sys
import time

from harness import check
from suite import REPO, sv, test

sys.path.insert(0, os.path.join(REPO, "tests", "gateway"))
import gateway as g  # noqa: E402

SANDBOX_ID = "sb-denials"
TOKEN = "it-token-denials"
BASE_RO = ["/usr", "/proc", "/dev/urandom"]
BASE_RW = ["/tmp", "/dev/null"]
PROXYCONNECT = "/usr/local/bin/proxyconnect"


def env_for(gw, **more):
    e = {"OPENSHELL_ENDPOINT": gw.endpoint, "OPENSHELL_SANDBOX_ID": SANDBOX_ID,
         "OPENSHELL_SANDBOX_TOKEN": TOKEN, "OPENSHELL_DENIAL_FLUSH_INTERVAL_SECS": "1"}
    e.update(more)
    return e


def policy():
    # One rule for somewhere else: the destinations below are denied by policy ("connect").
    return {"filesystem": {"include_workdir": False, "read_only": BASE_RO,
                           "read_write": BASE_RW},
            "network_policies": {"other": {"endpoints": [{"host": "example.com", "port": 443}],
                                           "binaries": [{"path": PROXYCONNECT}]}}}


def wait_until(fn, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


AGENT = ("proxyconnect denied.example.com:443; proxyconnect denied.example.com:443; "
         "proxyconnect denied.example.com:443; proxyconnect 169.254.169.254:80; sleep 3")


@test()
def denials_reach_the_gateway_as_submit_policy_analysis_with_proposals():
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        gw.set_policy(policy())
        r = sv(["--log-level", "info", "--", "sh", "-c", AGENT],
               extra_env=env_for(gw, OPENSHELL_SANDBOX="my-sandbox"), timeout=30)
        check(r.out.count("status=403") == 4, "the four CONNECTs were not all denied", r)
        calls = wait_until(lambda: gw.events("SubmitPolicyAnalysis", "message"), 5)
        check(calls, "no SubmitPolicyAnalysis reached the gateway", r)
        msgs = [c["message"] for c in calls]
        check(all(m.get("name") == "my-sandbox" for m in msgs),
              "the request does not name the sandbox by --sandbox: %r" % msgs, r)
        check(all(m.get("analysis_mode") == "mechanistic" for m in msgs),
              "analysis_mode is not mechanistic: %r" % msgs, r)
        check(calls[0]["metadata"].get("authorization") == "Bearer " + TOKEN,
              "the call does not carry the sandbox token", r)
        sums = gw.analysis_summaries()
        mine = [s for s in sums if s.get("host") == "denied.example.com"]
        check(mine and sum(int(s.get("count", 0)) for s in mine) == 3,
              "the three denials of one (host, port, binary) are not summed to 3: %r" % sums, r)
        s = mine[0]
        check(s.get("port") == 443 and s.get("binary") == PROXYCONNECT and
              s.get("denial_stage") == "connect" and
              "not allowed by any policy" in s.get("deny_reason", "") and
              int(s.get("first_seen_ms", 0)) > 0,
              "summary fields wrong: %r" % s, r)
        meta = [x for x in sums if x.get("host") == "169.254.169.254"]
        check(meta, "the metadata-address denial is not summarised: %r" % sums, r)
        chunks = [c for m in msgs for c in m.get("proposed_chunks", [])]
        names = [c.get("rule_name") for c in chunks]
        check("allow_denied_example_com_443" in names, "no proposal for the denied host: %r"
              % names, r)
        check("allow_169_254_169_254_80" not in names,
              "an always-blocked destination was proposed: %r" % names, r)
        c = [c for c in chunks if c.get("rule_name") == "allow_denied_example_com_443"][0]
        rule = c.get("proposed_rule", {})
        ep = rule.get("endpoints", [{}])[0]
        check(ep.get("host") == "denied.example.com" and ep.get("ports") == [443] and
              ep.get("advisor_proposed") is True and
              rule.get("binaries", [{}])[0].get("path") == PROXYCONNECT and
              c.get("status") == "pending" and c.get("rationale", "").startswith(
                  "Allow proxyconnect to connect to denied.example.com:443"),
              "proposal wrong: %r" % c, r)
        check("flushed denial analysis to the gateway" in r.err, "the flush is not logged", r)
        check("unsupported option" not in r.err, "--sandbox is still reported unsupported", r)
    finally:
        gw.stop()


@test()
def denials_are_dropped_and_counted_when_the_gateway_refuses_them():
    import grpc
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        gw.set_policy(policy())
        gw.fail = {"SubmitPolicyAnalysis": (grpc.StatusCode.UNAVAILABLE, "busy (test)")}
        r = sv(["--log-level", "info", "--", "sh", "-c",
                "proxyconnect denied.example.com:443; sleep 2.5; "
                "proxyconnect denied.example.com:443; echo still-here"],
               extra_env=env_for(gw), timeout=30)
        check(r.rc == 0 and "still-here" in r.out and r.out.count("status=403") == 2,
              "the sandbox did not keep running with the gateway refusing summaries", r)
        check("denial summaries dropped" in r.err and "UNAVAILABLE" in r.err,
              "the dropped window is not logged with the status", r)
        msgs = [e["message"] for e in gw.events("SubmitPolicyAnalysis", "message")]
        check(msgs and msgs[0].get("name") == SANDBOX_ID,
              "without --sandbox the request is not named by the sandbox id: %r" % msgs, r)
    finally:
        gw.stop()


@test()
def the_last_window_is_sent_before_the_supervisor_exits():
    gw = g.Gateway(sandbox_id=SANDBOX_ID)
    try:
        gw.set_policy(policy())
        r = sv(["--log-level", "info", "--", "sh", "-c", "proxyconnect late.example.com:443"],
               extra_env=env_for(gw, OPENSHELL_DENIAL_FLUSH_INTERVAL_SECS="60"), timeout=30)
        check(r.rc == 0 and "status=403" in r.out, "the CONNECT was not denied", r)
        sums = gw.analysis_summaries()
        check([x for x in sums if x.get("host") == "late.example.com"],
              "a denial of the last window never reached the gateway: %r" % sums, r)
        check(r.elapsed < 10, "the exit waited for the flush interval", r)
    finally:
        gw.stop()


@test(kind="host")
def policy_local_answers_before_the_policy_and_says_proposals_are_off():
    import cases_proxy as cp
    pol = cp.policy(cp.CURL_POLICY)  # no rule for policy.local: a policy decision would deny
    r = cp.agent(pol, "-i", "http://policy.local/v1/policy/current")
    check("HTTP/1.1 404 Not Found" in r.out and '"error":"feature_disabled"' in r.out and
          "agent_policy_proposals_enabled" in r.out and "policy_denied" not in r.out,
          "policy.local did not answer feature_disabled", r)
    r = cp.agent(pol, "-i", "http://policy.local:8080/v1/denials")
    check("HTTP/1.1 400 Bad Request" in r.out and "invalid_policy_local_scheme" in r.out,
          "policy.local on another port was not refused", r)
