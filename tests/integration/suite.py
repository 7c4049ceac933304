"""What the integration test cases share: the test registry, the run context and small helpers.

Cases register with @test(kind) where kind is "pid1" (needs namespaces) or "host" (runs the
supervisor directly). Helpers here start runs through harness.py and never signal from inside.
"""

import base64
import json
import os
import re
import signal
import time

import harness as h

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SUPERVISOR = os.environ.get("SUPERVISOR", os.path.join(REPO, "build", "supervisor"))
SPEC = "OPENSHELL_MAIN_PROCESS_SPEC"
LEGACY = "OPENSHELL_SANDBOX_COMMAND"
TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"  # RFC 3339, UTC, milliseconds
LOG_RE = re.compile(r"^" + TIME_RE + r" (ERROR|WARN|INFO|DEBUG|TRACE) [A-Za-z0-9_.:/-]+: \S")
OCSF_RE = re.compile(r"^" + TIME_RE + r" OCSF ")


class Ctx:
    rootfs = None
    tmpdir = None
    seq = 0

    def path(self, inside):
        return os.path.join(self.rootfs, inside.lstrip("/"))

    def unique(self, stem):
        """A fresh file name under the rootfs /tmp: (path inside, path on the host)."""
        self.seq += 1
        inside = "/tmp/%s-%d-%d" % (stem, os.getpid(), self.seq)
        return inside, self.path(inside)


CTX = Ctx()
TESTS = []


def test(kind="pid1"):
    def deco(fn):
        TESTS.append((fn.__name__, kind, fn))
        return fn
    return deco


def sv(args, **kw):
    kw.setdefault("timeout", 10.0)
    return h.run_pid1(CTX.rootfs, args, **kw)


def start(args, **kw):
    return h.start_pid1(CTX.rootfs, args, **kw)


def spec(command, tty=False, version=1):
    return json.dumps({"version": version, "command": command, "tty": tty})


def b64url(text):
    return "base64url:" + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def read_host(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def log_lines(err):
    return [l for l in err.splitlines() if LOG_RE.match(l) or OCSF_RE.match(l)]


def levels(err):
    return [LOG_RE.match(l).group(1) for l in err.splitlines() if LOG_RE.match(l)]


def signal_and_time(run, sig, ready, timeout=10.0, ready_timeout=5.0):
    """Wait for `ready` on stdout, send sig to the supervisor; returns (result, seconds after sig)."""
    ok = run.wait_stdout(ready, ready_timeout)
    if not ok:
        res = run.finish(0.1)
        raise h.Fail("main never printed %r\n%s" % (ready, res.describe()))
    run.host_pid()
    t_sig = time.monotonic()
    run.signal(sig)
    res = run.finish(timeout)
    return res, (run.started + res.elapsed) - t_sig


def wait_file_sh(inside, word="ready"):
    """Shell snippet: poll until FILE contains word (bounded by the test's timeout)."""
    return "while ! grep -q %s %s 2>/dev/null; do sleep 0.02; done" % (word, inside)


FORKER = """trap "" TERM
while :; do
	setsid sh -c 'trap "" TERM; exec sleep "$1"' sleeper "$1" </dev/null >/dev/null 2>&1 &
	sleep 0.05
done
"""


def write_forker(host_path):
    """A daemon that ignores SIGTERM and keeps starting new sessions whose sleeps ignore it too."""
    with open(host_path, "w") as f:
        f.write(FORKER)


def host_procs_with_arg(arg):
    """Host pids whose argv contains arg exactly."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if arg.encode() in argv:
            found.append(int(name))
    return found


def kill_leftovers(arg):
    for pid in host_procs_with_arg(arg):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def documented_events():
    """Event names from the catalogue table in docs/usage.md (empty when there is no such doc)."""
    try:
        with open(os.path.join(REPO, "docs", "usage.md")) as f:
            text = f.read()
    except OSError:
        return set()
    start = text.find("### Event catalogue")
    if start < 0:
        return set()
    section = text[start:].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.M))


def files_equal(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()
