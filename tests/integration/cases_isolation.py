"""Cases: process isolation as PID 1 in the test rootfs: the escape battery (tests/escape), the
policy file, identity rules, Landlock best_effort vs hard_requirement.

The battery runs as the sandbox's main process and reports one line per escape attempt; the
abstract-socket probe it connects to is created here, outside the agent's Landlock domain.
"""

import os
import socket

import harness as h
from harness import check
from suite import CTX, start, sv, test


def write_policy(text, name="policy.ini"):
    path = CTX.path("/etc/openshell/" + name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return "/etc/openshell/" + name


@test()
def escape_battery_passes_as_pid1_with_the_default_policy():
    # The main process waits on stdin until the probe listener is up in its network namespace.
    run = start(["--workdir", "/sandbox", "--", "sh", "-c",
                 "read go; exec " + h.escape_command(CTX.rootfs)], stdin="pipe")
    probe = None
    try:
        probe = h.start_probe_in_netns_of(h.wait_for_child(run.host_pid()))
        run.stdin_write(b"go\n")
        r = run.finish(60.0)
    finally:
        if probe:
            probe.kill()
            probe.wait()
    last = r.out.strip().splitlines()[-1] if r.out.strip() else ""
    check(r.rc == 0 and last.endswith(" 0 failed"), "an escape attempt succeeded", r)
    passed = int(last.split()[0]) if last else 0
    check(passed >= 40, "fewer than 40 attempts ran", r)


@test()
def agent_runs_as_sandbox_user_with_no_capabilities():
    r = sv(["--", "sh", "-c", "id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' "
            "/proc/self/status"])
    lines = r.out.split("\n")
    check(r.rc == 0 and lines[0] == "1000" and lines[1] == "1000", "agent is not uid 1000", r)
    check("CapEff:\t0000000000000000" in r.out and "CapBnd:\t0000000000000000" in r.out,
          "agent kept capabilities", r)
    check("NoNewPrivs:\t1" in r.out and "Seccomp:\t2" in r.out, "no NNP or seccomp", r)


@test()
def agent_env_has_identity_home_user_shell():
    r = sv(["--workdir", "/sandbox", "--", "sh", "-c", "echo $HOME $USER $SHELL"])
    # The test image has no bash: SHELL falls back to /bin/sh.
    check(r.rc == 0 and r.out == "/sandbox sandbox /bin/sh\n", "wrong HOME/USER/SHELL", r)


@test()
def policy_file_read_write_path_is_writable_and_others_are_not():
    os.makedirs(CTX.path("/data"), exist_ok=True)
    os.chmod(CTX.path("/data"), 0o777)
    os.makedirs(CTX.path("/other"), exist_ok=True)
    os.chmod(CTX.path("/other"), 0o777)
    pol = write_policy("[filesystem]\nread_write = /data\n")
    r = sv(["--policy", pol, "--", "sh", "-c",
            "echo x > /data/f && echo DATA-OK; echo x > /other/f || echo OTHER-DENIED"])
    check("DATA-OK" in r.out and "OTHER-DENIED" in r.out, "policy paths not enforced", r)


@test()
def policy_env_variable_is_used_like_the_flag():
    pol = write_policy("[process]\nrun_as_user = 1234\nrun_as_group = 1234\n", "env.ini")
    r = sv(["--", "id", "-u"], extra_env={"OPENSHELL_POLICY_FILE": pol})
    check(r.rc == 0 and r.out == "1234\n", "OPENSHELL_POLICY_FILE not used", r)


@test()
def default_policy_file_is_used_when_present():
    write_policy("[process]\nrun_as_user = 2345\nrun_as_group = 2345\n")
    try:
        r = sv(["--", "id", "-u"])
    finally:
        os.unlink(CTX.path("/etc/openshell/policy.ini"))
    check(r.rc == 0 and r.out == "2345\n", "/etc/openshell/policy.ini not used", r)


@test()
def invalid_policy_exits_1_naming_file_and_line():
    pol = write_policy("[filesystem]\nread_only = /usr\nread_only = relative/path\n", "bad.ini")
    r = sv(["--policy", pol, "--", "echo", "RAN"])
    check(r.rc == 1 and "RAN" not in r.out, "invalid policy did not stop the sandbox", r)
    check("bad.ini:3" in r.err, "error does not name file:line", r)


@test()
def missing_explicit_policy_file_exits_1():
    r = sv(["--policy", "/etc/openshell/absent.ini", "--", "echo", "RAN"])
    check(r.rc == 1 and "absent.ini" in r.err and "RAN" not in r.out, "missing policy accepted",
          r)


@test()
def root_identity_is_refused():
    pol = write_policy("[process]\nrun_as_user = root\n", "root.ini")
    r = sv(["--policy", pol, "--", "echo", "RAN"])
    check(r.rc == 1 and "RAN" not in r.out, "agent allowed to run as root", r)
    r = sv(["--", "echo", "RAN"],
           extra_env={"OPENSHELL_SANDBOX_UID": "0", "OPENSHELL_SANDBOX_GID": "0"})
    check(r.rc == 1 and "RAN" not in r.out, "uid 0 from the driver accepted", r)


@test()
def numeric_driver_identity_needs_no_passwd_entry():
    r = sv(["--", "id", "-u"],
           extra_env={"OPENSHELL_SANDBOX_UID": "4321", "OPENSHELL_SANDBOX_GID": "4321"})
    check(r.rc == 0 and r.out == "4321\n", "numeric identity not applied", r)


@test()
def best_effort_skips_a_missing_path_and_still_enforces():
    pol = write_policy("[filesystem]\nread_only = /does/not/exist\n", "missing.ini")
    r = sv(["--policy", pol, "--", "sh", "-c", "cat /opt/secret || echo DENIED"])
    check(r.rc == 0 and "DENIED" in r.out, "Landlock dropped for one missing path", r)


@test()
def hard_requirement_refuses_a_missing_path():
    pol = write_policy("[filesystem]\nread_only = /does/not/exist\n"
                       "[landlock]\ncompatibility = hard_requirement\n", "hard.ini")
    r = sv(["--policy", pol, "--", "echo", "RAN"])
    check(r.rc == 1 and "RAN" not in r.out and "/does/not/exist" in r.err,
          "hard_requirement started with a missing path", r)


@test()
def landlock_unavailable_best_effort_runs_with_high_finding_hard_refuses():
    # degrade installs a seccomp filter making landlock_create_ruleset fail with ENOSYS, then
    # execs the supervisor: the closest we get to a kernel without Landlock.
    r = sv(["--no-landlock", "--", "/opt/openshell/bin/openshell-sandbox", "--", "echo", "RAN"],
           exe="/usr/local/bin/degrade")
    check(r.rc == 0 and "RAN" in r.out, "best_effort did not run without Landlock", r)
    check("[HIGH]" in r.err and "landlock" in r.err.lower(), "no HIGH finding", r)
    pol = write_policy("[landlock]\ncompatibility = hard_requirement\n", "hard2.ini")
    r = sv(["--no-landlock", "--", "/opt/openshell/bin/openshell-sandbox", "--policy", pol,
            "--", "echo", "RAN"], exe="/usr/local/bin/degrade")
    check(r.rc == 1 and "RAN" not in r.out, "hard_requirement ran without Landlock", r)


# Network namespace: the agent reaches only its own loopback.

def host_address():
    """A non-loopback address of this machine, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a source address
        return s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()


@test()
def agent_direct_tcp_and_udp_fail_fast():
    for proto, dest in (("tcp", "192.0.2.1"), ("tcp", "8.8.8.8"), ("udp", "8.8.8.8")):
        r = sv(["--", "netprobe", proto, dest, "53"])
        check(r.rc == 1 and "result=ENETUNREACH" in r.out, "%s to %s not refused" % (proto, dest),
              r)
        ms = int(r.out.split("ms=")[1])
        check(ms < 100, "refusal took %d ms" % ms, r)


@test()
def listener_on_all_addresses_in_the_container_is_unreachable_from_the_agent():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 0))
    srv.listen(8)
    port = str(srv.getsockname()[1])
    try:
        targets = ["127.0.0.1", "10.200.0.1"] + ([host_address()] if host_address() else [])
        for dest in targets:
            r = sv(["--", "netprobe", "tcp", dest, port])
            check(r.rc == 1 and "result=ok" not in r.out,
                  "agent reached the container's listener at %s" % dest, r)
    finally:
        srv.close()


@test()
def network_namespace_failure_refuses_to_start_the_agent():
    # When unshare(CLONE_NEWNET) is refused the supervisor must refuse to start the agent, never
    # fall back to the container's network (contract §13 fix 1).
    r = sv(["--no-netns", "--", "/opt/openshell/bin/openshell-sandbox", "--", "echo", "RAN"],
           exe="/usr/local/bin/degrade")
    check(r.rc == 1 and "RAN" not in r.out, "agent started without its own namespace", r)
    check("network namespace" in r.err, "error does not name the network namespace", r)
