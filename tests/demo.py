"""`make run`: a demo sandbox. Builds a root filesystem with no libc (busybox-static and the
supervisor), runs the supervisor as PID 1 of fresh PID + mount namespaces chrooted into it, and
shows what an operator sees: the main process from OPENSHELL_MAIN_PROCESS_SPEC, who PID 1 is,
exit codes, SIGTERM forwarding and orphan reaping. Needs root; prints, asserts nothing.
"""

import os
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "integration"))
import harness as h  # noqa: E402
from suite import spec  # noqa: E402

SPEC = "OPENSHELL_MAIN_PROCESS_SPEC"


def show(title, res):
    print("\n=== %s" % title)
    print("$ exit status: %d" % res.rc)
    for line in res.out.splitlines():
        print("  stdout| " + line)
    for line in res.err.splitlines():
        print("  stderr| " + line)


def main():
    supervisor = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/supervisor")
    why = h.preflight()
    if why:
        print("demo: cannot run a PID-1 sandbox here: %s" % why)
        return 1
    tmp = tempfile.mkdtemp(prefix="sv-demo-")
    rootfs = os.path.join(tmp, "rootfs")
    subprocess.run([os.path.join(HERE, "integration", "mkrootfs.sh"), rootfs, supervisor],
                   check=True, stdout=subprocess.DEVNULL)
    libc = [n for n in os.listdir(os.path.join(rootfs, "lib")) if "libc" in n or "ld-" in n] \
        if os.path.isdir(os.path.join(rootfs, "lib")) else []
    print("demo: root filesystem %s (libc files in it: %s)" % (rootfs, libc or "none"))

    script = ("echo \"PID 1 is: $(tr '\\0' ' ' </proc/1/cmdline)\"; "
              "echo \"I am pid $$, uid $(id -u), cwd $(pwd), HOME=$HOME\"; "
              "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
              "echo hi > /etc/hacked || echo 'write to /etc: denied (Landlock)'; "
              "cat /root/.profile 2>/dev/null || echo 'read /root: denied'; "
              "echo ok > /tmp/agent-file && echo 'write to /tmp: allowed'; exit 3")
    show("main process from OPENSHELL_MAIN_PROCESS_SPEC (exit 3 propagates)",
         h.run_pid1(rootfs, ["--workdir", "/sandbox", "--log-level", "info"],
                    extra_env={SPEC: spec(["/bin/sh", "-c", script])}))

    run = h.start_pid1(rootfs, ["--grace-period", "2", "--", "/bin/sh", "-c",
                                "trap 'echo got SIGTERM; exit 143' TERM; echo ready; "
                                "while :; do sleep 0.1; done"])
    run.wait_stdout("ready", 5.0)
    run.signal(signal.SIGTERM)
    show("docker stop: SIGTERM to PID 1 reaches the main process (143)", run.finish(10))

    show("50 orphans re-parented to PID 1 are reaped (no zombies)",
         h.run_pid1(rootfs, ["--", "orphans", "50"]))

    show("--self-test: what this kernel and container allow (0 full, 1 degraded, 2 cannot run)",
         h.run_pid1(rootfs, ["--self-test"]))

    show("bad spec: clear error, exit 1",
         h.run_pid1(rootfs, [], extra_env={SPEC: '{"version":2,"command":["x"],"tty":false}'}))
    subprocess.run(["rm", "-rf", tmp])
    return 0


if __name__ == "__main__":
    sys.exit(main())
