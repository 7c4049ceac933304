"""Cases: PID 1's own least privilege (issue 16). After setup the supervisor keeps only the
capabilities of supervisor/isolation/caps.c; each kept one has a case here that breaks when it
is dropped too (the test-only OPENSHELL_TEST_DROP_EXTRA_CAPS), so none can go early unnoticed.
"""

import signal
import time

import harness as h
from harness import check
from suite import CTX, start, sv, test

CAP = {"dac_read_search": 2, "kill": 5, "setgid": 6, "setuid": 7, "setpcap": 8,
       "net_admin": 12, "sys_chroot": 18, "sys_ptrace": 19, "sys_admin": 21}
KEPT = sum(1 << b for b in CAP.values())
FORBIDDEN = {"sys_module": 16, "sys_rawio": 17, "sys_boot": 22, "sys_time": 25, "mknod": 27,
             "net_raw": 13, "linux_immutable": 9, "mac_admin": 33, "mac_override": 32,
             "syslog": 34, "wake_alarm": 35, "block_suspend": 36, "audit_control": 30,
             "bpf": 39, "perfmon": 38, "checkpoint_restore": 40, "sys_pacct": 20,
             "sys_tty_config": 26, "lease": 28, "net_broadcast": 11, "setfcap": 31}


def drop(*names):
    return {"OPENSHELL_TEST_DROP_EXTRA_CAPS": ",".join("cap_" + n for n in names)}


def caps_of(pid):
    return caps_of_path("/proc/%d/status" % pid)


def caps_of_path(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.startswith("Cap"):
                out[k] = int(v.strip(), 16)
    return out


@test()
def supervisor_keeps_only_the_listed_capabilities_after_setup():
    run = start(["--log-level", "info", "--", "sh", "-c", "echo up; exec sleep 30"])
    try:
        check(run.wait_stdout("up", 10), "main never started")
        caps = caps_of(run.host_pid())
        for k in ("CapEff", "CapPrm", "CapBnd"):
            check(caps[k] == KEPT, "%s is %#x, want %#x" % (k, caps[k], KEPT))
        # Capabilities are per thread: every thread of PID 1 holds the same.
        import os
        for tid in os.listdir("/proc/%d/task" % run.host_pid()):
            t = caps_of_path("/proc/%d/task/%s/status" % (run.host_pid(), tid))
            check(t["CapEff"] == KEPT and t["CapBnd"] == KEPT,
                  "thread %s keeps %#x / bounding %#x" % (tid, t["CapEff"], t["CapBnd"]))
        check(caps["CapInh"] == 0 and caps["CapAmb"] == 0, "inheritable/ambient not empty: %r"
              % caps)
        check(bin(caps["CapEff"]).count("1") <= 10, "more than 10 effective")
        for name, bit in FORBIDDEN.items():
            check(not (caps["CapBnd"] >> bit) & 1, "cap_%s is still bounded" % name)
        check(run.wait_stderr("capabilities dropped for the run phase", 2),
              "the drop was not logged")
    finally:
        run.signal(signal.SIGTERM)
        run.finish(15)


@test()
def dropping_cap_kill_too_leaves_the_agent_unsignalled():
    # Used for: signalling the agent's processes (another uid).
    for extra, want_exit in ((None, True), (drop("kill"), False)):
        run = start(["--grace-period", "60s", "--", "sh", "-c", "echo up; exec sleep 30"],
                    extra_env=extra)
        try:
            check(run.wait_stdout("up", 10), "main never started")
            run.signal(signal.SIGTERM)
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline and run.proc.poll() is None:
                time.sleep(0.05)
            exited = run.proc.poll() is not None
            check(exited == want_exit, "with %r the supervisor %s after SIGTERM"
                  % (extra, "exited" if exited else "did not exit"))
        finally:
            run.kill()
            run.finish(10)


@test()
def dropping_an_identity_or_namespace_cap_too_stops_the_main_process_start():
    # Used for: children take the agent's uid, gid and groups, lock securebits and empty
    # their bounding set, join the agent's network namespace and enter the mount fence (setns
    # and chroot); the main process is spawned after the drop, like every SSH session.
    r = sv(["--", "id", "-u"])
    check(r.rc == 0 and r.out.strip() != "0", "the main process did not start", r)
    for cap in ("setuid", "setgid", "setpcap", "sys_admin", "sys_chroot"):
        r = sv(["--", "id", "-u"], extra_env=drop(cap))
        check(r.rc != 0, "the main process started without cap_%s" % cap, r)


# The policy allows the binary to 127.0.0.1:9, which the SSRF guard then refuses as loopback:
# the identity step is judged by the reason, and nothing is ever dialled.
POLICY = ("[network.lo]\nendpoint = 127.0.0.1:9\nbinary = /usr/local/bin/proxyconnect\n"
          "binary = /tmp/pc\n")
PAST_IDENTITY = "allowed_ips check failed"  # the SSRF guard, after identity and policy


def write_policy():
    import os
    path = CTX.path("/etc/openshell/caps.ini")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(POLICY)
    return "/etc/openshell/caps.ini"


def decision(extra, command):
    r = sv(["--log-level", "info", "--policy", write_policy(), "--", "sh", "-c", command],
           extra_env=extra, timeout=30)
    for line in r.err.splitlines():
        if "NET:OPEN" in line and ("ALLOWED" in line or "DENIED" in line):
            return line, r
    return "", r


@test()
def dropping_cap_sys_ptrace_too_breaks_the_proxys_identity_lookup():
    # Used for: /proc/<pid>/fd and exe of the agent's processes.
    line, r = decision(None, "proxyconnect 127.0.0.1:9")
    check(PAST_IDENTITY in line, "the CONNECT did not get past identity and policy: %r" % line, r)
    line, r = decision(drop("sys_ptrace"), "proxyconnect 127.0.0.1:9")
    check("DENIED" in line and PAST_IDENTITY not in line,
          "identity worked without cap_sys_ptrace: %r" % line, r)


@test()
def dropping_cap_net_admin_too_loses_the_sock_diag_lookup():
    # Used for: SIOCGSKNS on the proxy's listener when the loop starts, to open sock_diag in
    # the agent's namespace (without it the proxy falls back to /proc/<pid>/net/tcp).
    for extra, want in ((None, False), (drop("net_admin"), True)):
        r = sv(["--log-level", "info", "--", "true"], extra_env=extra)
        fell_back = "socket owners through /proc/<pid>/net/tcp" in r.err
        check(fell_back == want, "with %r the sock_diag fallback was %s" % (extra, fell_back), r)


@test()
def dropping_cap_dac_read_search_too_breaks_hashing_an_unreadable_binary():
    # Used for: a process running a binary that is not world-readable (mode 0711) is not
    # dumpable, so its /proc/<pid>/fd is not readable without it; the binary's hash needs it too.
    cmd = "cp /usr/local/bin/proxyconnect /tmp/pc && chmod 0711 /tmp/pc && /tmp/pc 127.0.0.1:9"
    line, r = decision(None, cmd)
    check(PAST_IDENTITY in line, "the unreadable allowed binary did not get past identity: %r"
          % line, r)
    line, r = decision(drop("dac_read_search"), cmd)
    check("DENIED" in line and PAST_IDENTITY not in line,
          "an unreadable binary was identified without cap_dac_read_search: %r" % line, r)
