#!/usr/bin/python3
"""Integration tests: the real static supervisor as PID 1 over a rootfs with no libc, judged from outside.

Usage: run.py [NAME_SUBSTRING...]   (env SUPERVISOR=path overrides build/supervisor; KEEP_ROOTFS=1 keeps it)
Prints `ok N - name` / `not ok N - name` per test and a last line `N passed, N failed[, N skipped]`.
Without root or namespaces every test is skipped with the reason; with CI=true a skip is a failure.
The cases live in cases_*.py; signals are always sent from the host, never from inside.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness as h  # noqa: E402
from suite import CTX, SUPERVISOR, TESTS  # noqa: E402
import cases_lifecycle  # noqa: E402,F401  (registration order is run order)
import cases_command  # noqa: E402,F401
import cases_io  # noqa: E402,F401
import cases_isolation  # noqa: E402,F401
import cases_fence  # noqa: E402,F401
import cases_host  # noqa: E402,F401
import cases_selftest  # noqa: E402,F401
import cases_proxy  # noqa: E402,F401
import cases_log  # noqa: E402,F401
import cases_tls  # noqa: E402,F401
import cases_l7  # noqa: E402,F401
import cases_credentials  # noqa: E402,F401
import cases_gateway  # noqa: E402,F401
import cases_gateway_policy  # noqa: E402,F401
import cases_denials  # noqa: E402,F401
import cases_upstream  # noqa: E402,F401
import cases_policy_yaml  # noqa: E402,F401
import cases_gateway_sync  # noqa: E402,F401
import cases_ssh  # noqa: E402,F401
import cases_ssh_relay  # noqa: E402,F401
import cases_hardening  # noqa: E402,F401
import cases_caps  # noqa: E402,F401

ROOTFS_TEST = "rootfs_builds_with_static_helpers_and_no_libc"
MOUNTS_TEST = "no_mount_leaks_onto_the_host"


def build_rootfs(tap):
    """Builds CTX.rootfs; returns None or why the cases cannot run."""
    CTX.rootfs = os.path.join(CTX.tmpdir, "rootfs")
    try:
        p = subprocess.run([os.path.join(HERE, "mkrootfs.sh"), CTX.rootfs, SUPERVISOR],
                           capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        tap.not_ok(ROOTFS_TEST, "mkrootfs.sh took more than 120 s")
        return "rootfs was not built"
    if p.returncode != 0:
        tap.not_ok(ROOTFS_TEST, p.stdout + p.stderr)
        return "rootfs was not built"
    tap.ok(ROOTFS_TEST)
    return None


def run_case(tap, name, fn):
    try:
        fn()
        tap.ok(name)
    except h.Fail as e:
        tap.not_ok(name, str(e))
    except Exception as e:  # a harness error fails this case, not the suite
        tap.not_ok(name, "%s: %s" % (type(e).__name__, e))
    finally:
        h.reap_all()


def main(argv):
    tap = h.Tap()
    wanted = [a for a in argv[1:] if not a.startswith("-")]
    tests = [t for t in TESTS if not wanted or any(w in t[0] for w in wanted)]

    why_not_pid1 = h.preflight()
    why_not_host = None
    if not os.path.isfile(SUPERVISOR):
        why_not_host = why_not_pid1 = "supervisor binary %s not found (run make, or set SUPERVISOR)" % (
            SUPERVISOR)
    if why_not_pid1:
        print("# PID-1 tests cannot run: " + why_not_pid1, flush=True)

    CTX.tmpdir = tempfile.mkdtemp(prefix="sv-it-")
    os.chmod(CTX.tmpdir, 0o755)  # host-mode agents run as nobody and execute helpers from here
    try:
        if why_not_host is None:
            why = build_rootfs(tap)
            if why:
                why_not_host = why_not_pid1 = why
        for name, kind, fn in tests:
            why = why_not_pid1 if kind == "pid1" else why_not_host
            if why:
                tap.skip(name, why)
            else:
                run_case(tap, name, fn)
        if why_not_pid1:
            tap.skip(MOUNTS_TEST, why_not_pid1)
        else:
            left = h.mounts_under(CTX.tmpdir)
            if left:
                tap.not_ok(MOUNTS_TEST, "mounts left on the host: %r" % left)
            else:
                tap.ok(MOUNTS_TEST)
    finally:
        if os.environ.get("KEEP_ROOTFS") == "1":
            print("# kept " + CTX.tmpdir, flush=True)
        else:
            shutil.rmtree(CTX.tmpdir, ignore_errors=True)
    return tap.summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
