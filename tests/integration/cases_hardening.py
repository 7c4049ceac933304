"""Cases: attacks from the adversarial pass (issue 17), each reproduced as the agent would run
it, as PID 1 over the test rootfs. Each case fails on a supervisor without the fix.
"""

import datetime
import os
import re
import shutil
import time

import harness as h
from harness import check
from suite import CTX, sv, test

WEIRD_EXE = "/tmp/x -> good:443 [policy:canary"


@test()
def executable_path_in_proxy_log_lines_is_quoted_when_it_could_pass_for_log_syntax():
    # A binary named to forge the rest of an OCSF line: it must appear as one quoted token.
    r = sv(["--", "sh", "-c", "cp /usr/local/bin/proxyconnect '%s' && '%s' 10.0.0.1:443"
            % (WEIRD_EXE, WEIRD_EXE)], timeout=20)
    lines = [l for l in r.err.splitlines() if "NET:OPEN" in l and "DENIED" in l]
    check(lines, "no DENIED line for the CONNECT", r)
    check('DENIED "%s"(' % WEIRD_EXE in lines[0],
          "the executable path is not one quoted token: %r" % lines[0], r)
    check(" -> good:443 [policy:canary(" not in lines[0], "the forged text reads as log syntax",
          r)


# Issue 17 items 2-4: the proxy's identity step under agent-made load. The allowed CONNECT goes
# to 10.0.0.1:443, which nothing answers from the test's namespace: the proxy logs ALLOWED and
# then closes, which is all these cases look at.

def write_policy(text, name):
    path = CTX.path("/etc/openshell/" + name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return "/etc/openshell/" + name


def allowed_lines(err, exe):
    return [l for l in err.splitlines() if "NET:OPEN" in l and "ALLOWED" in l and exe in l]


@test()
def proxy_pin_cache_is_not_exhausted_by_a_hard_link_farm_of_a_denied_binary():
    # 4200 hard links (more than the 4096 pins a cache holds), each making one denied CONNECT;
    # then an allowed binary's first CONNECT. It used to be refused "Binary identity cache
    # capacity exhausted" until restart.
    pol = write_policy("[network.ok]\nendpoint = 10.0.0.1:443\n"
                       "binary = /usr/local/bin/proxyconnect\n", "hardening-links.ini")
    farm, host_farm = CTX.unique("farm")
    script = ("mkdir %s && identabuse links %s 4200 10.0.0.2:443; "
              "proxyconnect 10.0.0.1:443; rm -rf %s") % (farm, farm, farm)
    t0 = time.monotonic()
    r = sv(["--log-level", "info", "--policy", pol, "--", "sh", "-c", script], timeout=150)
    took = time.monotonic() - t0
    shutil.rmtree(host_farm, ignore_errors=True)
    check("links=4200 ran=4200" in r.out, "the link farm did not run every link", r)
    denied = [l for l in r.err.splitlines() if "NET:OPEN" in l and "DENIED" in l]
    check(len(denied) >= 4200, "expected 4200 denied CONNECTs, saw %d" % len(denied), r)
    check("capacity exhausted" not in r.err, "the pin cache was exhausted", r)
    check(allowed_lines(r.err, "/usr/local/bin/proxyconnect"),
          "the allowed binary's first CONNECT was not allowed after the farm (%.1f s)" % took, r)


@test()
def proxy_huge_executables_making_connects_do_not_delay_an_allowed_connect():
    # A 1.2 GB sparse executable no rule names makes four CONNECTs (it used to be hashed in full
    # by all four decision workers), and a 300 MiB one a rule does name makes four more (hashed
    # once, in the large-file lane); meanwhile another binary's allowed CONNECT is answered in
    # under a second.
    huge, host_huge = CTX.unique("huge")
    large, host_large = CTX.unique("large")
    pol = write_policy("[network.ok]\nendpoint = 10.0.0.1:443\n"
                       "binary = /usr/local/bin/identabuse\n"
                       "[network.large]\nendpoint = 10.0.0.4:443\nbinary = %s\n" % large,
                       "hardening-big.ini")
    script = ("identabuse big {h} 1200 >{h}.out && identabuse big {l} 300 >{l}.out && "
              "identabuse spawn 4 {h} connect 10.0.0.3:443 >>{h}.out && "
              "identabuse spawn 4 {l} connect 10.0.0.4:443 >>{l}.out && sleep 1 && "
              "identabuse connect 10.0.0.1:443; sleep 1; rm -f {h} {l} {h}.out {l}.out"
              ).format(h=huge, l=large)
    try:
        r = sv(["--log-level", "info", "--policy", pol, "--", "sh", "-c", script], timeout=120)
    finally:
        for p in (host_huge, host_large, host_huge + ".out", host_large + ".out"):
            if os.path.exists(p):
                os.unlink(p)
    # The decision's latency: from the agent's CONNECT to the proxy's ALLOWED line, both on the
    # wall clock (the answer itself also waits for the upstream dial, which is not ours).
    m = re.search(r"status=\S+ ms=\d+ start=(\d+)", r.out)
    check(m, "the allowed CONNECT printed no start time", r)
    allowed = allowed_lines(r.err, "/usr/local/bin/identabuse")
    check(allowed, "the allowed CONNECT was not allowed", r)
    when = datetime.datetime.strptime(allowed[0][:23], "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000
    took = when - int(m.group(1))
    net = "\n".join(l[11:23] + " " + l.split("] ", 1)[-1][:90]
                    for l in r.err.splitlines() if "NET:OPEN" in l)
    check(took < 1000, "the allowed CONNECT was decided after %.0f ms; decisions:\n%s"
          % (took, net), r)
    check("another large executable is being hashed" in r.err,
          "the large-file lane was never busy: the test did not overlap the hashes", r)


@test()
def proxy_identity_holds_while_other_processes_hold_many_files():
    # 14 processes holding ~19,000 open files each (over 262144 in all): every allowed CONNECT
    # used to fail "more than 262144 open files to examine".
    pol = write_policy("[network.ok]\nendpoint = 10.0.0.1:443\n"
                       "binary = /usr/local/bin/proxyconnect\n", "hardening-fds.ini")
    marks, host_marks = CTX.unique("fds")
    script = ("mkdir {d}; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do "
              "identabuse spawn 1 /usr/local/bin/identabuse fds 19000 {d}/$i; done; "
              "n=0; while [ $(cat {d}/* 2>&1 | grep -c held=) -lt 14 ] && [ $n -lt 300 ]; do "
              "sleep 0.1; n=$((n+1)); done; cat {d}/*; "
              "proxyconnect 10.0.0.1:443; rm -rf {d}").format(d=marks)
    r = sv(["--log-level", "info", "--policy", pol, "--", "sh", "-c", script], timeout=90)
    shutil.rmtree(host_marks, ignore_errors=True)
    held = [int(x) for x in re.findall(r"held=(\d+)", r.out)]
    check(len(held) == 14 and sum(held) > 262144,
          "the 14 processes did not hold over 262144 files: %r" % held, r)
    check("open files to examine" not in r.err, "identity failed on others' open files", r)
    check(allowed_lines(r.err, "/usr/local/bin/proxyconnect"),
          "the allowed CONNECT was not allowed while others held many files", r)

# Issue 17 item 1. The policy allows holdfd and proxyconnect to 127.0.0.1:9, which the SSRF
# guard then refuses as loopback: a request that got past identity and policy is recognised by
# that reason, and nothing is ever dialled.
BORROW_POLICY = ("[network.lo]\nendpoint = 127.0.0.1:9\nbinary = /usr/local/bin/holdfd\n"
                 "binary = /usr/local/bin/proxyconnect\n")
PAST_IDENTITY = "allowed_ips check failed"


def borrow_policy():
    path = CTX.path("/etc/openshell/borrow.ini")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(BORROW_POLICY)
    return "/etc/openshell/borrow.ini"


def decisions(r):
    return [l for l in r.err.splitlines()
            if "NET:OPEN" in l and ("ALLOWED" in l or "DENIED" in l)]


@test()
def socket_made_by_a_disallowed_binary_cannot_borrow_an_allowed_binarys_identity():
    # The attack as reported: a binary no rule allows connects and sends a partial head, passes
    # the socket to a helper, execs an allowed binary that keeps it; the helper finishes the
    # head while only the allowed binary holds the socket, then takes it back.
    for attempt in range(3):
        r = sv(["--log-level", "info", "--policy", borrow_policy(), "--",
                "/usr/local/bin/borrow", "127.0.0.1:9", "/usr/local/bin/holdfd"], timeout=30)
        lines = decisions(r)
        check("status=" in r.out, "the helper got no answer", r)
        check(lines, "no decision was logged", r)
        check(PAST_IDENTITY not in lines[0] and "DENIED" in lines[0],
              "attempt %d: the borrowed identity got past the policy: %r" % (attempt, lines[0]),
              r)
        check("connection created by '/usr/local/bin/borrow'" in r.err,
              "the denial does not name the creator binary", r)


@test()
def connection_made_by_an_allowed_binary_still_passes_identity():
    r = sv(["--log-level", "info", "--policy", borrow_policy(), "--",
            "/usr/local/bin/proxyconnect", "127.0.0.1:9"], timeout=30)
    lines = decisions(r)
    check(lines and PAST_IDENTITY in lines[0],
          "an allowed binary's own connection did not pass: %r" % lines, r)


@test()
def ssh_session_connections_get_creator_records_and_the_borrow_attack_is_denied():
    # SSH session children go through the same spawn hook: their connects are monitored too.
    from cases_ssh import Sandbox, needs_ssh
    needs_ssh()
    sb = Sandbox(extra=("--log-level", "info", "--policy", borrow_policy()))
    try:
        rc, out, err = sb.ssh("proxyconnect 127.0.0.1:9; "
                              "borrow 127.0.0.1:9 /usr/local/bin/holdfd", timeout=40)
    finally:
        res = sb.close()
    lines = decisions(res)
    check(len(lines) == 2, "want two decisions, got %r (ssh rc %r, %r)" % (lines, rc, err), res)
    check(PAST_IDENTITY in lines[0], "the session's own connection did not pass: %r" % lines[0],
          res)
    check(PAST_IDENTITY not in lines[1] and "DENIED" in lines[1],
          "the borrowed identity got past the policy in a session: %r" % lines[1], res)
    check("connection created by '/usr/local/bin/borrow'" in res.err,
          "the denial does not name the creator binary", res)


@test()
def connection_made_from_a_second_thread_is_recorded_too():
    # connect(2) from a thread that is not its group's leader (runtimes with connection pools).
    r = sv(["--log-level", "info", "--policy", borrow_policy(), "--",
            "/usr/local/bin/proxyconnect", "127.0.0.1:9"],
           extra_env={"PROXYCONNECT_THREAD": "1"}, timeout=30)
    lines = decisions(r)
    check(lines and PAST_IDENTITY in lines[0],
          "a threaded connection did not pass identity: %r" % lines, r)


@test()
def without_the_connect_monitor_every_request_is_denied_and_start_says_degraded():
    # As on a kernel without seccomp user notification (the test-only variable takes the
    # monitor away): the creator of no connection is known, so even an allowed binary's own
    # connection is denied, with the reason saying why, and start logs a DEGRADED finding.
    r = sv(["--log-level", "info", "--policy", borrow_policy(), "--",
            "/usr/local/bin/proxyconnect", "127.0.0.1:9"], timeout=30,
           extra_env={"OPENSHELL_TEST_NO_CONNECT_MONITOR": "1"})
    check("DEGRADED seccomp user notification is not available" in r.err,
          "no DEGRADED finding for the missing connect monitor", r)
    lines = decisions(r)
    check(lines and "DENIED" in lines[0] and PAST_IDENTITY not in lines[0],
          "an unmonitored connection got past identity: %r" % lines, r)
    check("connection creator unknown" in r.err, "the denial does not say why", r)
