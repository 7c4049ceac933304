#!/usr/bin/python3
"""runc tests: the real supervisor as PID 1 of an OCI container built from the integration rootfs.

Usage: run.py [NAME_SUBSTRING...]   (env SUPERVISOR=path overrides build/supervisor)
Each test writes its own bundle (config.json from `runc spec`, edited the way OpenShell's Docker
driver configures the container) over one shared rootfs and runs it under a private `runc --root`
with a unique id; the container is deleted with `runc delete -f` even when the test fails.
Prints `ok N - name` / `not ok N - name` and a last line `N passed, N failed[, N skipped]`.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness as h  # noqa: E402
from harness import check  # noqa: E402

SUPERVISOR = os.environ.get("SUPERVISOR", os.path.join(REPO, "build", "supervisor"))
SPEC = "OPENSHELL_MAIN_PROCESS_SPEC"
# Docker's default capability set, plus what OpenShell's Docker driver adds (CapAdd).
CAPS = ["CAP_" + c for c in (
    "CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE "
    "SYS_CHROOT KILL AUDIT_WRITE SYS_ADMIN NET_ADMIN SYS_PTRACE SYSLOG").split()]
RUNC_CMD_TIMEOUT = 20


class Ctx:
    tmpdir = None
    rootfs = None
    state = None
    runc = None
    seq = 0
    ids = []


CTX = Ctx()
TESTS = []


def test(fn):
    TESTS.append((fn.__name__, fn))
    return fn


def runc(*args, timeout=RUNC_CMD_TIMEOUT):
    return subprocess.run([CTX.runc, "--root", CTX.state] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def bundle(cmd, sv_flags=(), env=None, args=None):
    """Writes a bundle for `supervisor --workdir /sandbox [sv_flags] -- cmd`; returns (dir, id)."""
    CTX.seq += 1
    cid = "sv-it-%d-%d" % (os.getpid(), CTX.seq)
    bdir = os.path.join(CTX.tmpdir, cid)
    os.makedirs(bdir)
    p = subprocess.run([CTX.runc, "spec", "--bundle", bdir], capture_output=True, text=True,
                       timeout=RUNC_CMD_TIMEOUT)
    if p.returncode != 0:
        raise h.Fail("runc spec failed: " + p.stderr)
    path = os.path.join(bdir, "config.json")
    with open(path) as f:
        config = json.load(f)
    proc = config["process"]
    if args is None:
        args = [h.IN_ROOT_SUPERVISOR, "--workdir", "/sandbox"] + list(sv_flags)
        if cmd:
            args += ["--"] + list(cmd)
    proc["args"] = args
    proc["terminal"] = False
    proc["user"] = {"uid": 0, "gid": 0}
    proc["cwd"] = "/"
    proc["env"] = ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/root"]
    proc["env"] += ["%s=%s" % kv for kv in (env or {}).items()]
    proc["capabilities"] = {"bounding": CAPS, "effective": CAPS, "permitted": CAPS}
    config["root"] = {"path": CTX.rootfs, "readonly": False}
    config["hostname"] = "openshell-test"
    with open(path, "w") as f:
        json.dump(config, f, indent=1)
    CTX.ids.append(cid)
    return bdir, cid


def delete(cid):
    try:
        runc("delete", "-f", cid)
    except subprocess.TimeoutExpired:
        pass


def start(cmd, **kw):
    bdir, cid = bundle(cmd, **kw)
    run = h.Run([CTX.runc, "--root", CTX.state, "run", "--bundle", bdir, cid], mode="host",
                env=dict(os.environ))
    run.cid = cid
    return run.start()


def crun(cmd, timeout=15.0, **kw):
    """Run the container in the foreground; returns the Result and deletes the container."""
    run = start(cmd, **kw)
    try:
        return run.finish(timeout)
    finally:
        delete(run.cid)


@test
def escape_battery_passes_under_runc():
    # As in the PID-1 suite: the probe listener is made in the agent's network namespace.
    esc = h.escape_command(CTX.rootfs)
    run = h.Run([CTX.runc, "--root", CTX.state, "run", "--bundle",
                 bundle(["sh", "-c", "read go; exec " + esc])[0], "sv-esc-%d" % os.getpid()],
                mode="host", env=dict(os.environ), stdin="pipe").start()
    CTX.ids.append("sv-esc-%d" % os.getpid())
    probe = None
    try:
        sup = container_pid("sv-esc-%d" % os.getpid())
        probe = h.start_probe_in_netns_of(h.wait_for_child(sup))
        run.stdin_write(b"go\n")
        r = run.finish(60.0)
    finally:
        if probe:
            probe.kill()
            probe.wait()
        delete("sv-esc-%d" % os.getpid())
    last = r.out.strip().splitlines()[-1] if r.out.strip() else ""
    h.check(r.rc == 0 and last.endswith(" 0 failed"), "an escape attempt succeeded", r)
    h.check(int(last.split()[0]) >= 40, "fewer than 40 attempts ran", r)


def container_pid(cid, timeout=10.0):
    """Host pid of the container's init (the supervisor), from `runc state`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = runc("state", cid)
        if p.returncode == 0:
            st = json.loads(p.stdout)
            if st.get("pid", 0) > 0 and st.get("status") == "running":
                return st["pid"]
        time.sleep(0.02)
    raise h.Fail("container %s never ran" % cid)


def read_host(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------------


@test
def supervisor_is_pid1_in_container():
    # The container's init is read from the host: the agent's own /proc hides PID 1.
    bdir, cid = bundle(["sh", "-c", 'echo "ppid=$PPID"; cat /proc/1/cmdline >/dev/null 2>&1 '
                        '|| echo PID1-HIDDEN; read go'])
    run = h.Run([CTX.runc, "--root", CTX.state, "run", "--bundle", bdir, cid], mode="host",
                env=dict(os.environ), stdin="pipe").start()
    run.cid = cid
    try:
        with open("/proc/%d/cmdline" % container_pid(run.cid), "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode()
        run.stdin_write(b"go\n")
        r = run.finish(15.0)
    finally:
        delete(run.cid)
    check(r.rc == 0, "expected exit 0", r)
    check(cmdline.startswith(h.IN_ROOT_SUPERVISOR + " "), "PID 1 is not the supervisor: %r"
          % cmdline, r)
    check("ppid=1" in r.out, "main's parent is not PID 1", r)
    check("PID1-HIDDEN" in r.out, "the agent can read PID 1's /proc entry", r)


@test
def exit_code_0_propagates():
    r = crun(["sh", "-c", "exit 0"])
    check(r.rc == 0, "expected 0", r)


@test
def exit_code_7_propagates():
    r = crun(["sh", "-c", "exit 7"])
    check(r.rc == 7, "expected 7", r)


@test
def main_killed_by_sigkill_exits_137():
    r = crun(["sh", "-c", "kill -KILL $$"])
    check(r.rc == 137, "expected 137", r)


@test
def runc_kill_term_reaches_main_and_exit_is_143():
    run = start(["sh", "-c", "echo ready; exec sleep 1000"])
    try:
        if not run.wait_stdout("ready", 10):
            raise h.Fail("main never started\n" + run.finish(0.1).describe())
        t_sig = time.monotonic()
        k = runc("kill", run.cid, "TERM")
        check(k.returncode == 0, "runc kill failed: %s" % k.stderr)
        r = run.finish(15)
        check(r.rc == 143, "expected 143", r)
        check(time.monotonic() - t_sig < 5.0, "too slow after SIGTERM", r)
    finally:
        run.kill()
        delete(run.cid)


@test
def runc_kill_term_with_main_ignoring_it_ends_after_grace_137():
    run = start(["ignterm"], sv_flags=["--grace-period", "1"])
    try:
        if not run.wait_stdout("ready", 10):
            raise h.Fail("main never started\n" + run.finish(0.1).describe())
        t_sig = time.monotonic()
        k = runc("kill", run.cid, "TERM")
        check(k.returncode == 0, "runc kill failed: %s" % k.stderr)
        r = run.finish(15)
        after = time.monotonic() - t_sig
        check(r.rc == 137, "expected 137", r)
        check(1.0 <= after < 5.0, "ended %.2fs after SIGTERM with a 1 s grace" % after, r)
    finally:
        run.kill()
        delete(run.cid)


@test
def fifty_orphans_are_adopted_and_reaped():
    r = crun(["orphans", "50"], timeout=30)
    check(r.rc == 0 and "adopted_by_parent=50 reaped=50" in r.out, "orphans not reaped", r)


@test
def no_zombie_left_after_orphans_exit():
    r = crun(["sh", "-c", "orphans 50 >/dev/null; sleep 0.3; zombies"], timeout=30)
    check("zombies=0" in r.out and r.rc == 0, "zombies left", r)


@test
def setsid_daemon_gets_sigterm_when_main_exits():
    inside = "/tmp/runc-daemon-%d-%d" % (os.getpid(), CTX.seq)
    host = os.path.join(CTX.rootfs, inside.lstrip("/"))
    script = ("setsid sigrecv -o %s -d 300 TERM </dev/null >/dev/null 2>&1 & "
              "while ! grep -q ready %s 2>/dev/null; do sleep 0.02; done; exit 0" % (inside, inside))
    r = crun(["sh", "-c", script])
    log = read_host(host)
    check(r.rc == 0, "expected 0", r)
    check("got TERM" in log and "done" in log, "daemon not terminated gracefully: %r" % log, r)
    check(r.elapsed < 6.0, "took %.2fs" % r.elapsed, r)


@test
def workdir_sandbox_is_child_cwd():
    r = crun(["readlink", "/proc/self/cwd"])
    check(r.rc == 0 and r.out == "/sandbox\n", "cwd is not /sandbox", r)


@test
def spec_tty_true_gets_controlling_pty_in_container():
    r = crun([], env={SPEC: json.dumps({"version": 1, "command": ["ctty"], "tty": True})})
    check(r.rc == 0 and "ctty=yes" in r.out, "no controlling PTY in the container", r)


@test
def default_command_falls_back_to_login_sh():
    r = crun([], env={"PROFILE_PROBE": "5"})
    check(r.rc == 5 and "profile-probe" in r.out, "default login shell did not run", r)
    check(re.search(r"tty=/dev/pts/\d+", r.out) is not None, "default shell not on a PTY", r)


@test
def no_fd_above_2_leaks_into_main():
    r = crun(["fdcheck"])
    check(r.rc == 0 and "leaked=0" in r.out, "fd leaked into the main process", r)


@test
def logs_never_reach_stdout():
    r = crun(["sh", "-c", "echo only-this"], sv_flags=["--log-level", "trace"])
    check(r.rc == 0 and r.out == "only-this\n", "stdout holds more than the child's output", r)


# ---------------------------------------------------------------------------------------------------


def preflight():
    if os.geteuid() != 0:
        return "not root (runc needs root here)"
    path = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        return "runc not installed"
    CTX.runc = path
    if not os.path.isfile(SUPERVISOR):
        return "supervisor binary %s not found (run make, or set SUPERVISOR)" % SUPERVISOR
    return None


def main(argv):
    tap = h.Tap()
    wanted = [a for a in argv[1:] if not a.startswith("-")]
    tests = [t for t in TESTS if not wanted or any(w in t[0] for w in wanted)]
    why = preflight()
    if why:
        print("# runc tests cannot run: " + why, flush=True)
    CTX.tmpdir = tempfile.mkdtemp(prefix="sv-runc-")
    CTX.state = os.path.join(CTX.tmpdir, "state")
    try:
        if why is None:
            CTX.rootfs = os.path.join(CTX.tmpdir, "rootfs")
            p = subprocess.run([os.path.join(REPO, "tests", "integration", "mkrootfs.sh"), CTX.rootfs,
                                SUPERVISOR], capture_output=True, text=True, timeout=120)
            if p.returncode == 0:
                tap.ok("bundle_rootfs_builds_with_no_libc")
            else:
                tap.not_ok("bundle_rootfs_builds_with_no_libc", p.stdout + p.stderr)
                why = "rootfs was not built"
        for name, fn in tests:
            if why:
                tap.skip(name, why)
                continue
            try:
                fn()
                tap.ok(name)
            except h.Fail as e:
                tap.not_ok(name, str(e))
            except Exception as e:
                tap.not_ok(name, "%s: %s" % (type(e).__name__, e))
            finally:
                h.reap_all()
    finally:
        for cid in CTX.ids:
            delete(cid)
        if CTX.runc and os.path.isdir(CTX.state):
            left = runc("list", "-q").stdout.split()
            if left:
                print("# containers left behind: %s" % " ".join(left), flush=True)
                for cid in left:
                    delete(cid)
        if os.environ.get("KEEP_ROOTFS") == "1":
            print("# kept " + CTX.tmpdir, flush=True)
        else:
            shutil.rmtree(CTX.tmpdir, ignore_errors=True)
    return tap.summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
