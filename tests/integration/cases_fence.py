"""Cases: the mount fence (docs/security.md "Mount fence"): the agent's own mount namespace in
which only policy paths exist, read_only ones bound read-only, with a procfs that hides PID 1.

Each case would fail without the fence: with Landlock forced off (the degrade helper makes the
Landlock system calls fail with ENOSYS, as a kernel booted with lsm= without landlock does) only
the fence stands between the agent and /srv; pathname sockets are outside Landlock's reach on
every kernel before ABI 9; /proc/1/net is readable by any uid in the container's own procfs.
"""

import os
import socket

import harness as h
from harness import check
from suite import CTX, sv, test

SUPERVISOR_IN_ROOT = "/opt/openshell/bin/openshell-sandbox"
DEGRADE = "/usr/local/bin/degrade"

# Battery lines the fence alone must win (Landlock off). Names as tests/escape prints them, up
# to the first " (" (battery_verdicts cuts there).
FENCE_LINES = (
    "read /opt/secret",
    "read /opt/secret through a symlink made in /tmp",
    "list /root",
    "create a file in read-only /etc/escape",
    "open the world-writable file in /etc for writing",
    "open(O_RDONLY|O_TRUNC) the world-writable file in /etc",
    "truncate() the world-writable file in /etc",
    "reopen a read-only fd of the world-writable file for writing via /proc/self/fd",
    "mkdir in read-only /etc/escape",
    "symlink in read-only /etc/escape",
    "rename a file from /tmp into read-only /etc/escape",
    "rename the world-writable file out of /etc into /tmp",
    "read /proc/1/environ",
    "enter PID 1's root through /proc/1/root",
    "read PID 1's network view /proc/1/net/tcp",
)


def battery_verdicts(text):
    """{attempt name: 'ok'/'not ok'} from the escape battery's output."""
    res = {}
    for line in text.splitlines():
        for tag in ("not ok ", "ok "):
            if line.startswith(tag):
                rest = line[len(tag):].split(" - ", 1)
                if len(rest) == 2:
                    res[rest[1].split(" (")[0].split(": ")[0]] = tag.strip()
                break
    return res


def srv_fixtures():
    """/srv/secret (0644) and a world-writable file, outside every policy path."""
    srv = CTX.path("/srv")
    os.makedirs(srv, exist_ok=True)
    os.chmod(srv, 0o755)
    with open(os.path.join(srv, "secret"), "w") as f:
        f.write("srv-secret-contents\n")
    os.chmod(os.path.join(srv, "secret"), 0o644)
    with open(os.path.join(srv, "open"), "w") as f:
        f.write("original\n")
    os.chmod(os.path.join(srv, "open"), 0o666)


def listen_unix(inside):
    """A 0777 listening socket at @inside (a path in the rootfs), bound from the host."""
    path = CTX.path(inside)
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o777)
    s.listen(8)
    return s


def without_landlock(args, **kw):
    """Run the supervisor with Landlock unavailable (ENOSYS), as on a kernel without it."""
    kw.setdefault("timeout", 60.0)
    return sv(["--no-landlock", "--", SUPERVISOR_IN_ROOT] + args, exe=DEGRADE, **kw)


@test()
def fence_alone_stops_secret_reads_writes_and_truncation_when_landlock_is_off():
    srv_fixtures()
    esc = h.escape_command(CTX.rootfs)
    r = without_landlock(["--workdir", "/sandbox", "--", "sh", "-c",
                          "cat /srv/secret; echo x >/srv/open; (: >/srv/open); "
                          "cat /srv/open; echo ---; " + esc])
    check("[HIGH]" in r.err and "Running WITHOUT Landlock" in r.err,
          "Landlock was not off (no landlock_unavailable finding)", r)
    check("Running WITHOUT the mount fence" not in r.err, "no mount fence was built", r)
    check("srv-secret-contents" not in r.out, "the agent read /srv/secret", r)
    with open(CTX.path("/srv/open")) as f:
        check(f.read() == "original\n", "the agent wrote or truncated /srv/open", r)
    verdicts = battery_verdicts(r.out.split("---", 1)[-1])
    bad = [n for n in FENCE_LINES if verdicts.get(n) != "ok"]
    check(not bad, "the fence let these through with Landlock off: %r" % bad, r)
    with open(CTX.path("/etc/escape/world-writable")) as f:
        check(f.read() == "original\n", "the read-only world-writable file changed", r)
    # What the agent needs still works without Landlock.
    need = ("read /etc/passwd", "fork and exec /bin/true", "list /proc/self", "write /dev/null")
    for n in need:
        check(any(k.startswith(n) and v == "ok" for k, v in verdicts.items()),
              "%s no longer works: %r" % (n, verdicts), r)


@test()
def pathname_unix_socket_outside_the_policy_is_unreachable():
    srv_fixtures()
    outside = listen_unix("/srv/agent.sock")
    inside = listen_unix("/tmp/fence-ok.sock")  # /tmp is read_write: reachable, as a control
    try:
        for runner in (sv, without_landlock):
            r = runner(["--", "sh", "-c", "escape --connect-unix /srv/agent.sock; "
                        "escape --connect-unix /tmp/fence-ok.sock; ls /srv || echo NO-SRV"])
            check("connect: ENOENT" in r.out and "NO-SRV" in r.out,
                  "the 0777 socket under /srv was reachable (%s)" % runner.__name__, r)
            check("connect: ok" in r.out,
                  "a socket inside the policy was not reachable (%s)" % runner.__name__, r)
    finally:
        outside.close()
        inside.close()


@test()
def agent_proc_shows_its_own_processes_but_not_pid1_or_its_network_view():
    r = sv(["--", "sh", "-c",
            "ls /proc >/dev/null && echo LS-OK; grep -m1 '^Name:' /proc/self/status; "
            "cat /proc/1/net/tcp >/dev/null 2>&1 && echo PID1-NET-READ; "
            "ls /proc/1 >/dev/null 2>&1 && echo PID1-VISIBLE; "
            "ls -d /proc/[0-9]* | wc -l"])
    check(r.rc == 0 and "LS-OK" in r.out and "Name:" in r.out, "/proc does not work", r)
    check("PID1-NET-READ" not in r.out and "PID1-VISIBLE" not in r.out,
          "the agent sees PID 1 or its network view", r)
    # Only the agent's own processes are listed (sh, ls, wc and the subshell at most).
    count = int(r.out.strip().splitlines()[-1])
    check(1 <= count <= 6, "the agent sees %d processes" % count, r)


@test()
def read_only_paths_are_read_only_whatever_the_mode():
    os.makedirs(CTX.path("/data"), exist_ok=True)
    with open(CTX.path("/data/open"), "w") as f:
        f.write("original\n")
    os.chmod(CTX.path("/data/open"), 0o666)
    os.chmod(CTX.path("/data"), 0o777)
    pol = CTX.path("/etc/openshell/fence-ro.ini")
    os.makedirs(os.path.dirname(pol), exist_ok=True)
    with open(pol, "w") as f:
        f.write("[filesystem]\nread_only = /usr\nread_only = /data\nread_write = /tmp\n")
    r = without_landlock(["--policy", "/etc/openshell/fence-ro.ini", "--", "sh", "-c",
                          "cat /data/open; echo x >/data/open; (: >/data/new); echo done"])
    check("original" in r.out and "done" in r.out, "read-only path not readable", r)
    check("Read-only file system" in r.err or "Read-only file system" in r.out,
          "no EROFS from the read-only bind", r)
    with open(CTX.path("/data/open")) as f:
        check(f.read() == "original\n", "a 0666 file in a read_only path was written", r)
    check(not os.path.exists(CTX.path("/data/new")), "a file was created in a read_only path", r)


@test()
def mount_namespace_refused_best_effort_degrades_hard_requirement_refuses():
    r = sv(["--no-mountns", "--", SUPERVISOR_IN_ROOT, "--", "echo", "RAN"], exe=DEGRADE)
    check(r.rc == 0 and "RAN" in r.out, "best_effort did not run without the fence", r)
    check("[HIGH]" in r.err and "Running WITHOUT the mount fence" in r.err,
          "no HIGH finding (mount_fence_unavailable)", r)
    pol = CTX.path("/etc/openshell/fence-hard.ini")
    os.makedirs(os.path.dirname(pol), exist_ok=True)
    with open(pol, "w") as f:
        f.write("[landlock]\ncompatibility = hard_requirement\n")
    r = sv(["--no-mountns", "--", SUPERVISOR_IN_ROOT, "--policy",
            "/etc/openshell/fence-hard.ini", "--", "echo", "RAN"], exe=DEGRADE)
    check(r.rc == 1 and "RAN" not in r.out, "hard_requirement ran without the fence", r)
    check("mount fence" in r.err and "CLONE_NEWNS" in r.err, "error does not say why", r)
